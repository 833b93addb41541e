/**
 * The shape of a method handler on the executor, shared by the process and
 * filesystem method tables.
 *
 * @module
 */

import type { Session } from "./session_registry.ts";

/** A result that is already JSON text (spliced into the response as is). */
export class RawJson {
  /** The JSON text. */
  readonly text: string;
  /** Wraps JSON text. */
  constructor(text: string) {
    this.text = text;
  }
}

/** What a handler may return: a value to serialize, or JSON text. */
export type MethodResult = unknown | RawJson;

/** What a handler gets besides its params. */
export interface MethodContext {
  /** The connection's session. */
  session: Session;
}

/** A method handler: validates its params and does the work. */
export type MethodHandler = (params: unknown, context: MethodContext) => Promise<MethodResult>;
