/**
 * execbridge's version, as `environment/info` reports it (`executorVersion`).
 * It is deno.json's `version` (a test keeps the two equal).
 *
 * @module
 */

/** The version of this execbridge. */
export const VERSION = "0.1.0";
