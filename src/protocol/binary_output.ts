/**
 * Binary `process/output` frames: an execbridge extension a client opts into
 * with `initialize { binaryOutput: true }`. Output then travels as binary
 * WebSocket messages carrying the raw bytes, instead of JSON text with
 * base64 — no base64 on either side, no JSON parse of megabyte strings, a
 * third fewer bytes on the wire. Everything else stays JSON-RPC.
 *
 * Layout (big-endian):
 *
 * | offset | size | field |
 * | --- | --- | --- |
 * | 0 | 1 | kind: 1 = process output |
 * | 1 | 1 | stream: 0 stdout, 1 stderr, 2 pty |
 * | 2 | 2 | length L of the process id in UTF-8 bytes |
 * | 4 | 8 | seq, as a float64 (exact up to 2^53) |
 * | 12 | L | process id, UTF-8 |
 * | 12+L | rest | the output bytes |
 *
 * @module
 */

import { outputNotification, paramsPrefix } from "./notifications.ts";
import type { ProcessStream } from "./types.ts";

/** The stream codes of the frame, by code: its own table, so the wire format is fixed here. */
const STREAM_CODES: readonly ProcessStream[] = ["stdout", "stderr", "pty"];

/** Frame kind of a process output frame. */
export const OUTPUT_FRAME_KIND = 1;

const HEADER = 12;
const encoder = new TextEncoder();
// ignoreBOM: a process id may itself start with U+FEFF (the default would strip it).
const decoder = new TextDecoder("utf-8", { ignoreBOM: true });

/** A decoded output frame; `chunk` is a view into the frame. */
export interface OutputFrame {
  /** The process. */
  processId: string;
  /** Sequence number. */
  seq: number;
  /** Source stream. */
  stream: ProcessStream;
  /** The bytes. */
  chunk: Uint8Array;
}

/**
 * Builds the frame for one output chunk (copies `data` once): at the start of
 * `into` when it is big enough, in a new buffer otherwise.
 */
export function encodeOutputFrame(
  processId: Uint8Array,
  output: { seq: number; stream: ProcessStream; data: Uint8Array },
  into?: ArrayBuffer,
): Uint8Array {
  const size = HEADER + processId.byteLength + output.data.byteLength;
  const frame = into !== undefined && into.byteLength >= size
    ? new Uint8Array(into, 0, size)
    : new Uint8Array(size);
  const view = new DataView(frame.buffer);
  frame[0] = OUTPUT_FRAME_KIND;
  frame[1] = STREAM_CODES.indexOf(output.stream);
  view.setUint16(2, processId.byteLength);
  view.setFloat64(4, output.seq);
  frame.set(processId, HEADER);
  frame.set(output.data, HEADER + processId.byteLength);
  return frame;
}

/** The UTF-8 bytes of a process id, for {@link encodeOutputFrame}. */
export function encodeProcessId(processId: string): Uint8Array {
  return encoder.encode(processId);
}

/** Decodes a frame; null when it is not a well-formed output frame. */
export function decodeOutputFrame(frame: Uint8Array): OutputFrame | null {
  if (frame.byteLength < HEADER || frame[0] !== OUTPUT_FRAME_KIND) return null;
  const stream: ProcessStream | undefined = STREAM_CODES[frame[1]];
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const idLength = view.getUint16(2);
  const seq = view.getFloat64(4);
  if (stream === undefined || !Number.isSafeInteger(seq) || seq < 1) return null;
  if (HEADER + idLength > frame.byteLength) return null;
  return {
    processId: decoder.decode(frame.subarray(HEADER, HEADER + idLength)),
    seq,
    stream,
    chunk: frame.subarray(HEADER + idLength),
  };
}

/** The JSON-RPC text of the same notification, for a client that did not opt in. */
export function outputFrameToJson(frame: OutputFrame): string {
  return outputNotification(paramsPrefix(frame.processId), {
    seq: frame.seq,
    stream: frame.stream,
    chunkBase64: frame.chunk.toBase64(),
  });
}
