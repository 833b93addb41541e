/**
 * Binary `process/write` frames: an execbridge extension a client opts into
 * with `initialize { binaryWrites: true }` (the executor says yes in its
 * result). Stdin bytes then travel raw in a binary WebSocket message instead
 * of base64 in JSON: no base64 on either side and no JSON parse of megabyte
 * strings on the executor, whose main thread every write goes through.
 *
 * Layout (big-endian):
 *
 * | offset | size | field |
 * | --- | --- | --- |
 * | 0 | 1 | kind: 2 = process write |
 * | 1 | 1 | flags: bit 0 close stdin after the bytes, bit 1 a request (answered), bit 2 a `writeId` follows the process id |
 * | 2 | 2 | length L of the process id in UTF-8 bytes |
 * | 4 | 8 | the request id, as a float64 (a safe integer; ignored for a notification) |
 * | 12 | L | process id, UTF-8 |
 * | 12+L | 2 + W | with bit 2: the length W of the `writeId`, then the `writeId`, UTF-8 (not empty) |
 * | after | rest | the bytes for stdin |
 *
 * A request is answered like a `process/write` request with that id (a JSON
 * response with `{ status }`); a notification is not answered.
 *
 * @module
 */

/** Frame kind of a process write frame. */
export const WRITE_FRAME_KIND = 2;

const HEADER = 12;
const CLOSE_STDIN = 1;
const REQUEST = 2;
const WRITE_ID = 4;
// ignoreBOM: a process id may itself start with U+FEFF (the default would strip it).
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** A decoded write frame; `data` is a view into the frame. */
export interface WriteFrame {
  /** The process. */
  processId: string;
  /** The request id; null for a notification. */
  requestId: number | null;
  /** Close stdin after the bytes. */
  closeStdin: boolean;
  /** The write's idempotency key, if it has one. */
  writeId: string | null;
  /** The bytes for stdin. */
  data: Uint8Array;
}

/** Options of {@link encodeWriteFrame}. */
export interface WriteFrameOptions {
  /** Make it a request with this id (answered); a notification otherwise. */
  requestId?: number;
  /** Close stdin after the bytes. */
  closeStdin?: boolean;
  /** The write's idempotency key, UTF-8 (not empty, at most 65535 bytes). */
  writeId?: Uint8Array;
}

/** Builds the frame for one write (copies `data` once). `processId` is UTF-8. */
export function encodeWriteFrame(
  processId: Uint8Array,
  data: Uint8Array,
  options: WriteFrameOptions = {},
): Uint8Array {
  if (processId.byteLength > 0xffff) {
    throw new RangeError(
      `a process id of ${processId.byteLength} UTF-8 bytes does not fit a write frame (at most 65535)`,
    );
  }
  const writeId = options.writeId;
  if (writeId !== undefined && (writeId.byteLength === 0 || writeId.byteLength > 0xffff)) {
    throw new RangeError(`a writeId of ${writeId.byteLength} bytes does not fit a write frame`);
  }
  const idEnd = HEADER + processId.byteLength;
  const dataStart = writeId === undefined ? idEnd : idEnd + 2 + writeId.byteLength;
  const frame = new Uint8Array(dataStart + data.byteLength);
  const view = new DataView(frame.buffer);
  frame[0] = WRITE_FRAME_KIND;
  frame[1] = (options.closeStdin ? CLOSE_STDIN : 0) |
    (options.requestId !== undefined ? REQUEST : 0) | (writeId !== undefined ? WRITE_ID : 0);
  view.setUint16(2, processId.byteLength);
  view.setFloat64(4, options.requestId ?? 0);
  frame.set(processId, HEADER);
  if (writeId !== undefined) {
    view.setUint16(idEnd, writeId.byteLength);
    frame.set(writeId, idEnd + 2);
  }
  frame.set(data, dataStart);
  return frame;
}

/**
 * The request id of a frame that at least says it is a request, so that an
 * error about it can be matched to the call; null otherwise.
 */
export function writeFrameRequestId(frame: Uint8Array): number | null {
  if (frame.byteLength < HEADER || (frame[1] & REQUEST) === 0) return null;
  const id = new DataView(frame.buffer, frame.byteOffset, frame.byteLength).getFloat64(4);
  return Number.isSafeInteger(id) ? id : null;
}

/** Decodes a frame; null when it is not a well-formed write frame. */
export function decodeWriteFrame(frame: Uint8Array): WriteFrame | null {
  if (frame.byteLength < HEADER || frame[0] !== WRITE_FRAME_KIND) return null;
  const flags = frame[1];
  if ((flags & ~(CLOSE_STDIN | REQUEST | WRITE_ID)) !== 0) return null;
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const idLength = view.getUint16(2);
  const requestId = view.getFloat64(4);
  const idEnd = HEADER + idLength;
  if (idLength === 0 || idEnd > frame.byteLength) return null;
  const isRequest = (flags & REQUEST) !== 0;
  if (isRequest && !Number.isSafeInteger(requestId)) return null;
  let dataStart = idEnd;
  let writeId: string | null = null;
  try {
    const processId = decoder.decode(frame.subarray(HEADER, idEnd));
    if ((flags & WRITE_ID) !== 0) {
      if (idEnd + 2 > frame.byteLength) return null;
      const length = view.getUint16(idEnd);
      dataStart = idEnd + 2 + length;
      if (length === 0 || dataStart > frame.byteLength) return null;
      writeId = decoder.decode(frame.subarray(idEnd + 2, dataStart));
    }
    return {
      processId,
      requestId: isRequest ? requestId : null,
      closeStdin: (flags & CLOSE_STDIN) !== 0,
      writeId,
      data: frame.subarray(dataStart),
    };
  } catch {
    return null;
  }
}
