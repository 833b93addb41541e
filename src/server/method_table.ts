/**
 * The executor's methods by name: the one place a method is registered.
 * A connection decodes each message (JSON text or a binary frame) into a
 * call, looks its method up here, checks the handshake and the params
 * against the entry, and runs it. A new method is a new entry (its handler
 * next to its family's, in `process_methods.ts` or `fs_methods.ts`).
 *
 * @module
 */

import { Method } from "../protocol/methods.ts";
import defer * as schemas from "../protocol/schemas.ts";
import { environmentMethods } from "./environment_methods.ts";
import { fsMethods } from "./fs_methods.ts";
import { httpMethods } from "./http_methods.ts";
import type { MethodEntry } from "./methods.ts";
import { processMethods } from "./process_methods.ts";

/** Every method the executor serves. */
export const methodTable: ReadonlyMap<string, MethodEntry> = new Map<string, MethodEntry>([
  [Method.initialize, {
    family: "handshake",
    params: () => schemas.initializeParams,
    run: (params, connection) => connection.initialize(params),
  }],
  ...Object.entries(processMethods),
  ...Object.entries(fsMethods),
  ...Object.entries(environmentMethods),
  ...Object.entries(httpMethods),
]);
