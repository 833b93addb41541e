/**
 * Validation of params at the boundary, against a schema of `schemas.ts`.
 * It needs no zod of its own (a schema brings its own `safeParse`), so the
 * modules that call it can import the schemas with `import defer`: zod and
 * the schemas are then evaluated on the first message, not at start-up
 * (docs/performance.md, "Start-up").
 *
 * @module
 */

import type { z } from "zod";
import { INVALID_PARAMS, RpcError } from "./errors.ts";

/**
 * Validates params against a schema; throws -32602 with a readable message
 * naming the offending fields.
 */
export function parseParams<T extends z.ZodType>(
  schema: T,
  params: unknown,
  options: { method: string },
): z.output<T> {
  const result = schema.safeParse(params ?? {});
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const path = issue.path.length > 0 ? `${issue.path.join(".")}: ` : "";
    return `${path}${issue.message}`;
  });
  throw new RpcError(
    INVALID_PARAMS,
    `invalid params for ${options.method}: ${problems.join("; ")}`,
  );
}
