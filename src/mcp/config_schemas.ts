/**
 * The zod schemas of a config file's entries (boundary only), applied by
 * `config_entries.ts` after other spellings of a key were folded into the
 * snake_case one. A module of their own so that loading the library does not
 * build them: `config_entries.ts` imports this module with `import defer`
 * (docs/performance.md, "Start-up").
 *
 * @module
 */

import { z } from "zod";

const stringList = z.array(z.string());
const stringMap = z.record(z.string(), z.string());
const seconds = z.number().positive();
const envVarEntry = z.union([
  z.string().min(1),
  z.object({ name: z.string().min(1), source: z.string().optional() }),
], { error: "expected a variable name or an object with `name` and optional `source`" });

/** One server entry, after aliases were folded into their snake_case keys. */
export const serverSchema = z.object({
  command: z.string().min(1).optional(),
  args: stringList.optional(),
  env: stringMap.optional(),
  env_vars: z.array(envVarEntry).optional(),
  cwd: z.string().min(1).optional(),
  url: z.string().min(1).optional(),
  http_headers: stringMap.optional(),
  environment: z.string().optional(),
  environment_id: z.string().min(1).optional(),
  startup_timeout_sec: seconds.optional(),
  startup_timeout_ms: z.number().int().positive().optional(),
  tool_timeout_sec: seconds.optional(),
  enabled: z.boolean().optional(),
  disabled: z.boolean().optional(),
  required: z.boolean().optional(),
  enabled_tools: stringList.optional(),
  disabled_tools: stringList.optional(),
  supports_parallel_tool_calls: z.boolean().optional(),
  respawn: z.boolean().optional(),
  max_restarts: z.number().int().positive().optional(),
});

/** One `[[environments]]` entry (or one of JSON's `environments`), aliases folded. */
export const environmentSchema = z.object({
  id: z.string().min(1),
  url: z.string().min(1).optional(),
  auth_bearer_token: z.string().min(1).optional(),
  token_file: z.string().min(1).optional(),
  tls_ca: z.string().min(1).optional(),
  program: z.string().min(1).optional(),
  args: stringList.optional(),
  env: stringMap.optional(),
  cwd: z.string().min(1).optional(),
  connect_timeout_sec: seconds.optional(),
  initialize_timeout_sec: seconds.optional(),
  resume_window_sec: seconds.optional(),
});

/** The `executor` section: the default executor. */
export const executorSchema = z.object({
  url: z.string().min(1).optional(),
  token_file: z.string().min(1).optional(),
  resume_window_sec: seconds.optional(),
});
