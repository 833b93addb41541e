/**
 * The shape of the executor's methods: what a handler declares (its params
 * schema, its family, whether it may come as a notification) and what it
 * gets. The handlers live in `process_methods.ts` and `fs_methods.ts`; the
 * table that registers them by name is `method_table.ts`.
 *
 * @module
 */

import type { z } from "zod";
import type { InitializeParams, InitializeResult } from "../protocol/schemas.ts";
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

/**
 * Thrown by a handler when the connection itself must go: the client broke
 * a rule it cannot be answered for (it floods stdin with notifications).
 */
export class CloseConnection extends Error {
  /** The WebSocket close code. */
  readonly code: number;

  /** Creates the request to close with `code`; `reason` goes to the client and the log. */
  constructor(code: number, reason: string) {
    super(reason);
    this.name = "CloseConnection";
    this.code = code;
  }
}

/**
 * A result whose response must go out before more work starts (a streamed
 * HTTP body's notifications follow the response to its request).
 */
export class ResponseThen {
  /** The result to answer with. */
  readonly result: unknown;
  /** What to run once the response was sent (also when it could not be: the connection ended). */
  readonly after: () => void;

  /** Wraps a result and what follows it. */
  constructor(result: unknown, after: () => void) {
    this.result = result;
    this.after = after;
  }
}

/** What a method may use of its connection. */
export interface ConnectionContext {
  /** Sends a notification (JSON-RPC text) on this connection. */
  notify(text: string): void;
  /** Resolves once the connection's outgoing queue is below its high-water mark. */
  drained(): Promise<void>;
  /** Aborted when the connection ends. */
  readonly signal: AbortSignal;
  /** This connection's streaming HTTP responses, by `requestId` (abort one to stop it). */
  readonly httpStreams: Map<string, AbortController>;
}

/** What a session method gets besides its params. */
export interface MethodContext {
  /** The connection's session. */
  session: Session;
  /** True when the call came as a notification: nobody will see the result. */
  notification: boolean;
  /** The connection the call came on. */
  connection: ConnectionContext;
}

/** What the `initialize` handler gets: the connection, which owns its session. */
export interface HandshakeContext {
  /** Opens or resumes the connection's session. */
  initialize(params: InitializeParams): InitializeResult;
}

/** A handler's result: a value to serialize or JSON text, now or later. */
export type MethodResult = unknown;

/** A method that works on the connection's session. */
export interface SessionMethod<S extends z.ZodType = z.ZodType> {
  /** Which family's handshake message a call before `initialized` gets. */
  family: "exec" | "filesystem" | "environment" | "http";
  /**
   * The schema that validates and decodes the params (JSON params, or a
   * binary frame's decoded fields). A function: the schemas are evaluated on
   * first use, not when the executor starts (docs/performance.md, "Start-up").
   */
  params: () => S;
  /** May come as a notification (an execbridge extension): run, and not answered. */
  notifiable?: boolean;
  /** Does the work. */
  run(params: z.output<S>, context: MethodContext): MethodResult | Promise<MethodResult>;
}

/** The `initialize` method: the one that runs before there is a session. */
export interface HandshakeMethod {
  /** Marks it. */
  family: "handshake";
  /** The schema that validates the params (a function, as {@link SessionMethod.params}). */
  params: () => z.ZodType<InitializeParams>;
  /** Does the work. */
  run(params: InitializeParams, context: HandshakeContext): InitializeResult;
}

/** An entry of the method table. */
export type MethodEntry = SessionMethod | HandshakeMethod;

/** Declares a session method (infers its params type from the schema). */
export function sessionMethod<S extends z.ZodType>(method: SessionMethod<S>): SessionMethod {
  return method as unknown as SessionMethod;
}
