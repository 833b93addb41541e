/**
 * `environment/*` methods: what the executor's environment is, and whether
 * it takes work.
 *
 * @module
 */

import { Method } from "../protocol/methods.ts";
import defer * as schemas from "../protocol/schemas.ts";
import { environmentInfo } from "./environment.ts";
import { type SessionMethod, sessionMethod } from "./methods.ts";

/** Handlers of the `environment/*` methods, by name. */
export const environmentMethods: Record<string, SessionMethod> = {
  [Method.environmentInfo]: sessionMethod({
    family: "environment",
    params: () => schemas.noParams,
    run: () => environmentInfo(),
  }),
  [Method.environmentStatus]: sessionMethod({
    family: "environment",
    params: () => schemas.noParams,
    run: () => ({ status: "ready" }),
  }),
};
