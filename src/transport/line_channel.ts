/**
 * A {@link TextChannel} over byte streams with one message per line
 * (`\n`-terminated, trailing `\r` trimmed): `serve --listen stdio`, or a
 * client talking to an executor started over ssh.
 *
 * @module
 */

import { LineSplitter, LineTooLongError, readLines } from "../util/lines.ts";
import { makeChannel, type TextChannel } from "./channel.ts";

/** Makes a line channel; a line over `maxLineBytes` (default 64 MiB) ends it. */
export function lineChannel(
  readable: ReadableStream<Uint8Array>,
  writable: WritableStream<Uint8Array>,
  options: { peer?: string; maxLineBytes?: number } = {},
): TextChannel {
  const encoder = new TextEncoder();
  const writer = writable.getWriter();
  const reader = readable.getReader();
  let buffered = 0;
  let closed = false;
  let pending: Promise<void> = Promise.resolve();
  let finished: Promise<void> = Promise.resolve();
  const { channel, deliver, end } = makeChannel({
    peer: options.peer ?? "stdio",
    binary: false,
    buffered: () => buffered,
    send(text) {
      if (closed) return;
      const bytes = encoder.encode(text + "\n");
      buffered += bytes.byteLength;
      pending = pending.then(() => writer.write(bytes)).then(
        () => {
          buffered -= bytes.byteLength;
        },
        () => stop("write failed"),
      );
    },
    sendBinary() {
      throw new Error("a line channel carries text only");
    },
    close() {
      stop("closed");
      return finished;
    },
  });
  function stop(reason: string): void {
    if (closed) return;
    closed = true;
    finished = Promise.all([
      reader.cancel().catch(() => {}),
      pending.then(() => writer.close()).catch(() => {}),
    ]).then(() => {});
    end(reason);
  }
  const decoder = new TextDecoder();
  readLines(reader, new LineSplitter(options.maxLineBytes ?? 64 * 1024 * 1024), (line) => {
    const text = decoder.decode(line).trim();
    if (text.length > 0) deliver(text);
  }).then(
    () => stop("end of input"),
    (error) =>
      stop(
        error instanceof LineTooLongError
          ? error.message
          : `read failed: ${error instanceof Error ? error.message : error}`,
      ),
  );
  return channel;
}
