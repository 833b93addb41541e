/**
 * The differences between execbridge and `codex exec-server` that the Codex
 * interop suites accept, in one table ({@link ALLOWED_DIFFERENCES}), and the
 * structural comparison that uses it ({@link diffValues}).
 *
 * Two normalized values (a digest entry of the interop suite, or the answer
 * of one step of the differential suite) are compared field by field. Where
 * they differ, every entry of the table is asked whether that difference (at
 * that place, with those values) is one it allows; the first that does
 * names it. A difference no entry allows fails the test. Nothing else is
 * skipped: a field that is not in the table must be equal.
 *
 * The table is listed in README.md (a unit test checks that every id is
 * there). Items the lead engineer fixes in src/ are deliberately absent:
 * `sandboxType` in `process/start` results, `sandboxDenied` in
 * `process/exited` and `process/read`, exit codes 128+n after a signal,
 * -32603 for `fs/readDirectory` on a file, -32600 for `fs/writeFile` with
 * bad base64.
 *
 * @module
 */

/** Which suite a difference was found in. */
export type Suite = "interop" | "differential";

/** What a compared value is. */
export type SiteKind =
  /** A distinct request Codex sent, with the answers it got and how often it sent it. */
  | "request"
  /** A process: its output per stream, exit and close notifications. */
  | "process"
  /** A notification other than process and HTTP body ones. */
  | "notification"
  /** The top-level keys of messages of one kind, or of a notification's params. */
  | "envelope"
  /** One step of the differential suite. */
  | "step"
  /** What Codex reported (scenario outcome, tool outputs sent to the model): never allowed to differ. */
  | "outcome";

/** What the comparison knows about the run. */
export interface CompareContext {
  /**
   * Directories the reference puts in front of its children's PATH
   * (normalized): its `prependPathDirs` and its own arg0 helper directory.
   */
  referencePathDirs: string[];
  /** The `environmentInfo.capabilities` execbridge advertised (empty when unknown). */
  execbridgeCapabilities: Record<string, unknown>;
}

/** One place where the two values differ. */
export interface Site {
  suite: Suite;
  kind: SiteKind;
  /** The digest key or the step's name. */
  where: string;
  /** The JSON-RPC method concerned ("" when none). */
  method: string;
  /** The request's params (normalized), when the site is about a request. */
  request?: unknown;
  /** The field path inside the compared value ([] = the whole value). */
  path: string[];
  /** The reference's value here (undefined: absent). */
  reference: unknown;
  /** execbridge's value here (undefined: absent). */
  execbridge: unknown;
  /** The whole compared values (for rules that need their context). */
  referenceEntry: unknown;
  execbridgeEntry: unknown;
  context: CompareContext;
}

/** A difference found, allowed (by the id of a table entry) or not. */
export interface Difference {
  suite: Suite;
  kind: SiteKind;
  where: string;
  method: string;
  /** `a.b.0.c`, or "" for the whole value. */
  path: string;
  reference: unknown;
  execbridge: unknown;
  /** The id of the table entry that allows it, or null: the test fails. */
  allowed: string | null;
}

/** One entry of the table. */
export interface AllowedDifference {
  id: string;
  /** The suites it applies to. */
  suites: Suite[];
  /** What may differ. */
  what: string;
  /** Why (one line). */
  reason: string;
  /** Whether it allows the difference at `site`. */
  matches(site: Site): boolean;
}

/** `environmentInfo` fields that describe the host or the implementation. */
const HOST_FIELDS = new Set([
  "executorVersion",
  "providerId",
  "prependPathDirs",
  "temporaryDirectories",
  "shell",
  "cwd",
]);

/** Requests and notifications that Codex only sends (or gets) when a capability is advertised. */
export const CAPABILITY_GATED: Record<string, string> = {
  "environmentConfig/read": "environmentConfigRead",
  "fs/watchMissing": "fsWatchMissing",
  "fs/unwatchMissing": "fsWatchMissing",
  "fs/missingChanged": "fsWatchMissing",
};

/** Requests without side effects that Codex repeats as it needs (probes, re-reads). */
const REPEATABLE = new Set([
  "fs/getMetadata",
  "fs/readFile",
  "fs/readDirectory",
  "fs/canonicalize",
  "fs/walk",
  "process/read",
  "process/terminate",
]);

/** The text the differential suite writes with `process/write` without a `writeId`. */
export const WRITE_WITHOUT_ID_TEXT = "no-id\n";

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The path below the first `result` segment, or null. */
function resultPath(path: string[]): string[] | null {
  const i = path.indexOf("result");
  return i < 0 ? null : path.slice(i + 1);
}

/** The `environmentInfo` field a site is in (initialize or environment/info), or null. */
function environmentInfoField(site: Site): string | null {
  const rest = resultPath(site.path);
  if (rest === null) return null;
  if (site.method === "initialize" && rest[0] === "environmentInfo" && rest.length >= 2) {
    return rest[1];
  }
  if (site.method === "environment/info" && rest.length >= 1) return rest[0];
  return null;
}

function last(path: string[], n = 1): string[] {
  return path.slice(-n);
}

function sortedJson(values: unknown[]): string {
  return values.map((v) => JSON.stringify(v)).sort().join("\n");
}

/** An error answer's code at `entry.answer.error.code`, or undefined. */
function errorCode(entry: unknown): unknown {
  const answer = isObject(entry) ? entry.answer : undefined;
  return isObject(answer) && isObject(answer.error) ? answer.error.code : undefined;
}

function errorMessage(entry: unknown): string {
  const answer = isObject(entry) ? entry.answer : undefined;
  return isObject(answer) && isObject(answer.error) ? String(answer.error.message ?? "") : "";
}

/** The `answer` of a compared entry. */
function answerOf(entry: unknown): unknown {
  return isObject(entry) ? entry.answer : undefined;
}

/**
 * A site that differs because the answer is an error on one side and a
 * result on the other: the answer itself, or the envelope keys that follow
 * from it (`error`, `error.code`, `error.message`, `error.data`, `result`).
 */
function answerKindSite(site: Site): boolean {
  if (site.path.join(".") === "answer") return true;
  return site.path.length === 2 && site.path[0] === "envelope" &&
    ["error", "error.code", "error.message", "error.data", "result"].includes(site.path[1]);
}

/** A `process/write` answered `accepted`. */
function accepted(answer: unknown): boolean {
  return isObject(answer) && isObject(answer.result) && answer.result.status === "accepted";
}

/** Removes `dir:` (each of `dirs`) from every PATH-like list in `text`. */
function withoutPathDirs(text: string, dirs: string[]): string {
  let out = text;
  for (const dir of dirs) if (dir !== "") out = out.split(`${dir}:`).join("");
  return out;
}

/** The request's path-like params (`path`, `cwd`, `sourcePath`, `destinationPath`). */
function requestPaths(request: unknown): string[] {
  if (!isObject(request)) return [];
  return ["path", "cwd", "sourcePath", "destinationPath"]
    .map((k) => request[k])
    .filter((v): v is string => typeof v === "string");
}

/** Request header lines fetch() adds on its own (`accept-encoding`, `accept-language`), removed. */
function withoutFetchDefaults(text: string): string {
  return text.split("\n").filter((line) => !/^accept-(encoding|language):/i.test(line)).join("\n");
}

/** The answer's result status of a compared entry, or undefined. */
function resultStatus(entry: unknown): unknown {
  const answer = answerOf(entry);
  return isObject(answer) && isObject(answer.result) ? answer.result.status : undefined;
}

/** The table. */
export const ALLOWED_DIFFERENCES: AllowedDifference[] = [
  {
    id: "environment-info-host",
    suites: ["interop", "differential"],
    what:
      "`environmentInfo` (initialize result, environment/info) `executorVersion`, `providerId`, `prependPathDirs`, `temporaryDirectories`, `shell`, `cwd`",
    reason:
      "they describe the host or the implementation (its version, its own helper directories, where it was started), not the protocol",
    matches: (site) => {
      const field = environmentInfoField(site);
      return field !== null && HOST_FIELDS.has(field);
    },
  },
  {
    id: "environment-info-capabilities",
    suites: ["interop", "differential"],
    what:
      "`environmentInfo.capabilities` values, and keys only one side has (execbridge's `sandboxBubblewrap`, keys of other Codex versions)",
    reason:
      "execbridge advertises only what it implements; an absent key reads as false, and Codex then skips the gated calls",
    matches: (site) => environmentInfoField(site) === "capabilities",
  },
  {
    id: "capability-gated-calls",
    suites: ["interop"],
    what:
      "`environmentConfig/read`, `fs/watchMissing` requests and `fs/missingChanged` notifications (and so their params' keys) missing against execbridge",
    reason:
      "Codex sends them only to an executor that advertises `environmentConfigRead` / `fsWatchMissing`, which execbridge does not",
    matches: (site) => {
      if (site.path.length !== 0 || site.execbridge !== undefined) return false;
      if (!["request", "notification", "envelope"].includes(site.kind)) return false;
      const capability = CAPABILITY_GATED[site.method];
      return capability !== undefined && site.context.execbridgeCapabilities[capability] !== true;
    },
  },
  {
    id: "repeat-count",
    suites: ["interop"],
    what:
      "how many times Codex sent an identical side-effect-free request (fs probes and reads, process/read, process/terminate)",
    reason:
      "without `fsWatchMissing` Codex probes again instead of being notified, and a repeated terminate at shutdown depends on timing; the distinct requests and every distinct answer are still compared",
    matches: (site) =>
      site.kind === "request" && REPEATABLE.has(site.method) && site.path.length === 1 &&
      site.path[0] === "count",
  },
  {
    id: "jsonrpc-field",
    suites: ["interop", "differential"],
    what: '`"jsonrpc": "2.0"` on every message execbridge sends',
    reason: "an execbridge extension (plain JSON-RPC 2.0 framing); Codex ignores the field",
    matches: (site) =>
      site.reference === undefined && last(site.path)[0] === "jsonrpc" &&
      (site.kind === "envelope" || site.path[0] === "envelope"),
  },
  {
    id: "exited-signal",
    suites: ["interop", "differential"],
    what: "`signal` in `process/exited` params",
    reason: "an execbridge extension naming the signal that ended the process",
    matches: (site) =>
      site.reference === undefined && last(site.path, 2).join(".") === "exited.signal",
  },
  {
    id: "read-extension-fields",
    suites: ["interop", "differential"],
    what: "`exitSeq`, `exitSignal`, `closedSeq` in `process/read` results",
    reason: "execbridge extensions (where the exit and the close are in the sequence, the signal)",
    matches: (site) =>
      site.method === "process/read" && site.reference === undefined &&
      ["exitSeq", "exitSignal", "closedSeq"].includes(last(site.path)[0] ?? ""),
  },
  {
    id: "initialize-extension-fields",
    suites: ["interop", "differential"],
    what: "`writeNotifications`, `binaryOutput`, `binaryWrites` in the initialize result",
    reason:
      "execbridge extensions telling its own client what the connection supports; Codex ignores them",
    matches: (site) => {
      const rest = resultPath(site.path);
      return site.method === "initialize" && site.reference === undefined && rest !== null &&
        rest.length === 1 &&
        ["writeNotifications", "binaryOutput", "binaryWrites"].includes(rest[0]);
    },
  },
  {
    id: "http-header-order",
    suites: ["interop", "differential"],
    what:
      "the order of `http/request` response headers (names and values must be the same, as a multiset)",
    reason: "execbridge answers through fetch(), whose Headers do not keep the server's order",
    matches: (site) =>
      site.method === "http/request" && last(site.path)[0] === "headers" &&
      Array.isArray(site.reference) && Array.isArray(site.execbridge) &&
      sortedJson(site.reference) === sortedJson(site.execbridge),
  },
  {
    id: "mcp-child-path",
    suites: ["interop"],
    what:
      "`PATH` seen by MCP server processes: the reference's has its `prependPathDirs` entry and its arg0 helper directory in front",
    reason:
      "the reference prepends its own helper directories (codex-path, codex-arg0…) to its children's PATH; execbridge has none",
    matches: (site) =>
      site.kind === "process" && site.where.startsWith("process mcp-") &&
      site.path[0] === "output" && typeof site.reference === "string" &&
      typeof site.execbridge === "string" &&
      withoutPathDirs(site.reference, site.context.referencePathDirs) === site.execbridge,
  },
  {
    id: "error-message",
    suites: ["interop", "differential"],
    what: "the `message` of an error answer (the codes must be equal)",
    reason: "each implementation words its errors its own way; Codex acts on codes",
    matches: (site) => {
      const [a, b] = last(site.path, 2);
      return a === "error" && b === "message";
    },
  },
  {
    id: "output-chunking",
    suites: ["interop"],
    what:
      "how many `process/output` notifications carried a process's output (the bytes per stream must be equal)",
    reason: "chunking follows the timing of the child's writes and of the reads",
    matches: (site) => site.kind === "process" && site.path.join(".") === "outputNotifications",
  },
  {
    id: "april-write-without-writeid",
    suites: ["differential"],
    what:
      "`process/write` without `writeId` is accepted by execbridge (reference: -32602), so its bytes reach the process",
    reason:
      "execbridge also speaks the April dialect, where `writeId` did not exist; the later output has exactly those bytes more",
    matches: (site) => {
      if (site.method === "process/write" && answerKindSite(site)) {
        const request = site.request as Json | undefined;
        return isObject(request) && request.writeId === undefined &&
          errorCode(site.referenceEntry) === -32602 && accepted(answerOf(site.execbridgeEntry));
      }
      // The consequence: the output observed after later steps has the text written without an id.
      return ["process/write", "process/signal"].includes(site.method) &&
        last(site.path, 2).join(".") === "output.stdout" &&
        typeof site.reference === "string" && typeof site.execbridge === "string" &&
        site.execbridge.replace(WRITE_WITHOUT_ID_TEXT, "") === site.reference &&
        site.execbridge !== site.reference;
    },
  },
  {
    id: "april-native-paths",
    suites: ["differential"],
    what:
      "absolute native paths (`/…`, not `file://`) are accepted by execbridge (reference: -32602)",
    reason: "execbridge also speaks the April dialect, where paths were native",
    matches: (site) =>
      answerKindSite(site) && errorCode(site.referenceEntry) === -32602 &&
      isObject(answerOf(site.execbridgeEntry)) &&
      "result" in (answerOf(site.execbridgeEntry) as Json) &&
      requestPaths(site.request).some((p) => p.startsWith("/")),
  },
  {
    id: "file-uri-host",
    suites: ["differential"],
    what:
      "a `file://host/…` URI naming another host: -32602 in execbridge, -32600 in the reference",
    reason: "the project's rule: any unusable path is -32602 (invalid params) naming the field",
    matches: (site) =>
      site.path.join(".") === "answer.error.code" && site.reference === -32600 &&
      site.execbridge === -32602 &&
      requestPaths(site.request).some((p) => /^file:\/\/(?!localhost\/)[^/]+\//i.test(p)),
  },
  {
    id: "fetch-request-headers",
    suites: ["differential"],
    what:
      "the request headers an HTTP server sees from `http/request`: execbridge's carry fetch()'s own `accept-encoding` and `accept-language` when the client sent none (the reference: none, or `zstd,gzip`), so a server may compress an answer the reference got plain (then its `content-length` is absent); the rest must be equal, the body included",
    reason:
      "execbridge sends through Deno's fetch(), which adds them and cannot be told not to; a compressed answer is decoded, as the reference's is",
    matches: (site) => {
      if (
        site.method !== "http/request" ||
        !/headers the server receives|gzip/.test(site.where)
      ) {
        return false;
      }
      const field = last(site.path)[0];
      if (typeof site.reference === "string" && typeof site.execbridge === "string") {
        return withoutFetchDefaults(site.reference) === withoutFetchDefaults(site.execbridge);
      }
      // The body's length follows from those lines.
      return field === "headers" && Array.isArray(site.reference) &&
        Array.isArray(site.execbridge) &&
        sortedJson(site.reference.filter((h) => !/content-length/i.test(JSON.stringify(h)))) ===
          sortedJson(site.execbridge.filter((h) => !/content-length/i.test(JSON.stringify(h))));
    },
  },
  {
    id: "spawn-error-kind",
    suites: ["differential"],
    what:
      "`error.data` `{kind}` on a `process/start` that cannot spawn, which Codex 0.169.0's exec-server does not send",
    reason:
      "execbridge answers as 0.171.0 does (spawnNotFound, spawnPermissionDenied, spawnFailed)",
    matches: (site) =>
      site.method === "process/start" && site.reference === undefined &&
      ((site.path.join(".") === "answer.error.data" && isObject(site.execbridge) &&
        /^spawn/.test(String(site.execbridge.kind))) ||
        (site.path.join(".") === "envelope.error.data" && site.execbridge === true)),
  },
  {
    id: "redirect-default",
    suites: ["differential"],
    what:
      "an `http/request` without `redirectPolicy` that meets a redirect: execbridge answers the 3xx, the reference follows it",
    reason:
      'execbridge follows redirects only when asked (`redirectPolicy: "follow"`); Codex always says which it wants',
    matches: (site) =>
      site.method === "http/request" && isObject(site.request) &&
      site.request.redirectPolicy === undefined &&
      typeof resultStatus(site.referenceEntry) === "number" &&
      typeof resultStatus(site.execbridgeEntry) === "number" &&
      (resultStatus(site.execbridgeEntry) as number) >= 300 &&
      (resultStatus(site.execbridgeEntry) as number) < 400 &&
      (resultStatus(site.referenceEntry) as number) < 300,
  },
  {
    id: "writeblock-read-handle",
    suites: ["differential"],
    what:
      "`fs/writeBlock` on a handle opened to read: -32600 in execbridge, -32603 (EBADF) in the reference",
    reason:
      "execbridge refuses the request itself, with a message saying the handle is read-only, instead of passing on the OS error",
    matches: (site) =>
      site.method === "fs/writeBlock" && site.path.join(".") === "answer.error.code" &&
      site.reference === -32603 && site.execbridge === -32600 &&
      /os error 9|bad file descriptor/i.test(errorMessage(site.referenceEntry)),
  },
];

/** The table entry named `id`. */
export function allowedDifference(id: string): AllowedDifference | undefined {
  return ALLOWED_DIFFERENCES.find((d) => d.id === id);
}

/** What {@link diffValues} needs besides the two values. */
export interface DiffBase {
  suite: Suite;
  kind: SiteKind;
  where: string;
  method: string;
  request?: unknown;
  context: CompareContext;
}

/**
 * Every difference between `reference` and `execbridge`, as deep as they
 * go: at each place where they differ the table is asked first (so an
 * entry can allow a whole sub-value, e.g. a reordered header list), then
 * objects are compared key by key and arrays of the same length element by
 * element; anything else is one difference.
 */
export function diffValues(
  reference: unknown,
  execbridge: unknown,
  base: DiffBase,
  path: string[] = [],
  entries: { reference: unknown; execbridge: unknown } = { reference, execbridge },
): Difference[] {
  if (JSON.stringify(reference) === JSON.stringify(execbridge)) return [];
  const site: Site = {
    ...base,
    path,
    reference,
    execbridge,
    referenceEntry: entries.reference,
    execbridgeEntry: entries.execbridge,
  };
  const rule = base.kind === "outcome"
    ? undefined
    : ALLOWED_DIFFERENCES.find((r) => r.suites.includes(base.suite) && r.matches(site));
  const difference = (allowed: string | null): Difference => ({
    suite: base.suite,
    kind: base.kind,
    where: base.where,
    method: base.method,
    path: path.join("."),
    reference,
    execbridge,
    allowed,
  });
  if (rule !== undefined) return [difference(rule.id)];
  if (isObject(reference) && isObject(execbridge)) {
    const keys = [...new Set([...Object.keys(reference), ...Object.keys(execbridge)])].sort();
    return keys.flatMap((k) =>
      diffValues(reference[k], execbridge[k], base, [...path, k], entries)
    );
  }
  if (Array.isArray(reference) && Array.isArray(execbridge)) {
    // Header lists: what one side has and the other lacks, whatever the order.
    const named = (a: unknown[]) => a.every((v) => isObject(v) && typeof v.name === "string");
    if (named(reference) && named(execbridge) && reference.length + execbridge.length > 0) {
      const only = (a: unknown[], b: unknown[]) => {
        const rest = b.map((v) => JSON.stringify(v));
        return a.filter((v) => {
          const i = rest.indexOf(JSON.stringify(v));
          if (i < 0) return true;
          rest.splice(i, 1);
          return false;
        });
      };
      return [{
        ...difference(null),
        path: `${path.join(".")} (only on each side, in any order)`,
        reference: only(reference, execbridge),
        execbridge: only(execbridge, reference),
      }];
    }
    if (reference.length === execbridge.length) {
      return reference.flatMap((v, i) =>
        diffValues(v, execbridge[i], base, [...path, String(i)], entries)
      );
    }
  }
  return [difference(null)];
}

function show(value: unknown, max: number): string {
  const text = value === undefined ? "(absent)" : JSON.stringify(value);
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

/** One difference as readable text (two or three lines). */
export function describeDifference(d: Difference, max = 400): string {
  const where = d.where.length > 240 ? `${d.where.slice(0, 240)}…` : d.where;
  const head = d.allowed === null ? "DIFFERS" : `allowed (${d.allowed})`;
  const field = d.path === "" ? "" : ` → ${d.path}`;
  return `${head}: ${where}${field}\n      reference:  ${
    show(d.reference, max)
  }\n      execbridge: ${show(d.execbridge, max)}`;
}

/** The ids of the allowed differences in `differences`, with how often each was seen. */
export function allowedSeen(differences: Difference[]): Map<string, number> {
  const seen = new Map<string, number>();
  for (const d of differences) {
    if (d.allowed !== null) seen.set(d.allowed, (seen.get(d.allowed) ?? 0) + 1);
  }
  return seen;
}
