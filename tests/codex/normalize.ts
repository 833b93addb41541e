/**
 * Normalization of what two executors answered, so that a run against
 * execbridge can be compared with a run against `codex exec-server`: ids,
 * seqs, session and process ids, timestamps, pids, per-run temporary paths
 * and implementation identity (version, provider id) are replaced by
 * placeholders, and a captured conversation is reduced to entries that do
 * not depend on timing ({@link protocolDigest}), compared entry by entry and
 * field by field ({@link compareDigests}) with the allowlist of
 * allowed_differences.ts.
 *
 * @module
 */

import {
  type CompareContext,
  type Difference,
  diffValues,
  type SiteKind,
} from "./allowed_differences.ts";
import type { Exchange, Frame } from "./ws_logger.ts";

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi;

/** Keys whose values are timestamps or durations. */
const TIME_KEYS = new Set([
  "createdAtMs",
  "modifiedAtMs",
  "startedAtMs",
  "completedAtMs",
  "durationMs",
  "createdAt",
  "updatedAt",
  "recencyAt",
  "startedAt",
  "completedAt",
  "t",
]);
/** Keys whose values identify one run, not behaviour. */
const VOLATILE_KEYS: Record<string, string> = {
  sessionId: "<session>",
  executorVersion: "<version>",
  providerId: "<provider>",
  osPid: "<pid>",
  hostname: "<host>",
  threadId: "<thread>",
  toolCallId: "<call>",
};

/** What to replace in strings: longest paths first. */
export interface NormalizeContext {
  /** Literal text → placeholder (temporary directories, ports…). */
  replacements: Record<string, string>;
}

/** Normalizes one string. */
export function normalizeText(text: string, context: NormalizeContext): string {
  let out = text;
  const entries = Object.entries(context.replacements).filter(([from]) => from !== "")
    .sort((a, b) => b[0].length - a[0].length);
  for (const [from, to] of entries) out = out.split(from).join(to);
  out = out.replace(/\b\d+-(?=[0-9a-f]{8}-)/gi, "<pid>-");
  out = out.replace(UUID, "<uuid>");
  out = out.replace(/Chunk ID: [0-9a-f]+/g, "Chunk ID: <chunk>");
  out = out.replace(/Wall time: [0-9.]+ seconds/g, "Wall time: <t> seconds");
  out = out.replace(/session ID \d+/g, "session ID <n>");
  out = out.replace(/127\.0\.0\.1:\d+/g, "127.0.0.1:<port>");
  // The reference's per-run helper directory (prepended to its children's PATH).
  out = out.replace(/codex-arg0[A-Za-z0-9]+/g, "codex-arg0<tmp>");
  return out;
}

/** Normalizes a JSON value (deep copy). */
export function normalizeValue(value: unknown, context: NormalizeContext, key = ""): unknown {
  if (TIME_KEYS.has(key) && (typeof value === "number" || typeof value === "string")) return "<ts>";
  if (key in VOLATILE_KEYS && value !== null && value !== undefined) return VOLATILE_KEYS[key];
  if (key === "processId" && typeof value === "string" && /^\d+$/.test(value)) return "<pid>";
  if (typeof value === "string") return normalizeText(value, context);
  if (Array.isArray(value)) return value.map((v) => normalizeValue(v, context));
  if (typeof value === "object" && value !== null) {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value).sort()) {
      out[k] = normalizeValue((value as Record<string, unknown>)[k], context, k);
    }
    return out;
  }
  return value;
}

/** Errors that are part of normal operation: Codex probes for files that do not exist. */
export function isExpectedError(exchange: Exchange): boolean {
  return exchange.error !== null && exchange.error.code === -32004 &&
    exchange.method.startsWith("fs/");
}

/** Requests answered with an error other than an expected not-found probe. */
export function unexpectedErrors(exchanges: Exchange[]): Exchange[] {
  return exchanges.filter((e) => e.error !== null && !isExpectedError(e));
}

/** One line for a failure message: the request and its error. */
export function describeExchange(exchange: Exchange, maxChars = 600): string {
  const params = JSON.stringify(exchange.params);
  const shown = params.length > maxChars ? `${params.slice(0, maxChars)}…` : params;
  const answer = exchange.error !== null
    ? `error ${exchange.error.code}: ${exchange.error.message}`
    : exchange.response === null
    ? "(no answer)"
    : JSON.stringify(exchange.response.result).slice(0, maxChars);
  return `${exchange.method} ${shown}\n    => ${answer}`;
}

function decode(base64: string): string {
  try {
    return new TextDecoder().decode(Uint8Array.fromBase64(base64));
  } catch {
    return `<bad base64 ${base64.slice(0, 20)}>`;
  }
}

/** JSON-RPC ids and progress tokens inside MCP bodies (they depend on request order). */
function normalizeJsonRpcIds(text: string): string {
  return text.replace(/"id":\s*\d+/g, '"id":<n>').replace(
    /"progressToken":\s*\d+/g,
    '"progressToken":<n>',
  )
    .replace(/^id: .*$/gm, "id: <event>");
}

/**
 * An MCP server's stdout (JSON-RPC lines) with ids normalized and the lines
 * sorted: answers to concurrent requests come in either order. Other output
 * is kept as it is.
 */
function jsonLinesInOrder(text: string): string {
  const lines = text.split("\n");
  const last = lines.pop();
  if (lines.length === 0 || !lines.every((l) => l.startsWith("{"))) return text;
  return [...lines.map(normalizeJsonRpcIds).sort(), last ?? ""].join("\n");
}

/** Headers whose values change from run to run: compared as present, not by value. */
const VOLATILE_HEADERS: Record<string, string> = { date: "<date>" };

/** The params of a request, normalized (the digest key). */
export function normalizeParams(
  method: string,
  params: unknown,
  context: NormalizeContext,
): unknown {
  const p = structuredClone(params) as Record<string, unknown> | null;
  if (p && typeof p === "object") {
    if (method === "process/write" && typeof p.chunk === "string") {
      p.chunk = normalizeJsonRpcIds(decode(p.chunk));
    }
    // Write ids count writes: their order follows concurrent requests.
    if (method === "process/write" && typeof p.writeId === "string" && /^\d+$/.test(p.writeId)) {
      p.writeId = "<n>";
    }
    // A poll's position and wait depend on what the client had already received.
    if (method === "process/read") {
      delete p.afterSeq;
      delete p.maxBytes;
      delete p.waitMs;
    }
    if (method === "http/request" && typeof p.bodyBase64 === "string") {
      p.bodyBase64 = decode(p.bodyBase64);
    }
    if (method === "http/request") {
      delete p.timeoutMs;
      delete p.requestId;
      if (typeof p.bodyBase64 === "string") p.bodyBase64 = normalizeJsonRpcIds(p.bodyBase64);
    }
    if (method === "fs/writeFile" && typeof p.dataBase64 === "string") {
      p.dataBase64 = decode(p.dataBase64).slice(0, 2000);
    }
    if (method === "process/start" && p.env && typeof p.env === "object") {
      // Codex's own variables, whose values identify the run.
      const env = p.env as Record<string, string>;
      for (const k of ["CODEX_THREAD_ID", "CODEX_SESSION_ID", "CODEX_TOOL_CALL_ID"]) {
        if (k in env) env[k] = "<id>";
      }
    }
    if (method === "process/start" && typeof p.processId === "string") {
      p.processId = p.processId.replace(/^\d+-.*/, "<pid>-<uuid>");
    }
  }
  return normalizeValue(p, context);
}

/** A result, normalized (file contents decoded, volatile headers, process/read's timing). */
export function normalizeResult(
  method: string,
  result: unknown,
  context: NormalizeContext,
): unknown {
  const r = structuredClone(result) as Record<string, unknown> | null;
  if (r && typeof r === "object") {
    if (method === "fs/readFile" && typeof r.dataBase64 === "string") {
      const text = decode(r.dataBase64);
      r.dataBase64 = text.length > 2000 ? `<${text.length} chars>` : text;
    }
    if (method === "http/request" && Array.isArray(r.headers)) {
      r.headers = (r.headers as { name: string; value: string }[]).map((h) => {
        const name = h.name.toLowerCase();
        return { name, value: VOLATILE_HEADERS[name] ?? h.value };
      });
    }
    if (method === "http/request" && typeof r.bodyBase64 === "string") {
      r.bodyBase64 = normalizeJsonRpcIds(decode(r.bodyBase64));
    }
    // Which chunks a poll returns depends on what was already delivered by notifications;
    // the output itself is compared per process.
    if (method === "process/read") {
      delete r.chunks;
      delete r.nextSeq;
    }
  }
  return normalizeValue(r, context);
}

/** Requests whose repeats are answered according to timing: only the first answer is compared. */
const FIRST_ANSWER_ONLY = new Set(["process/terminate", "process/read"]);

/** How a digest entry is compared. */
export interface DigestEntry {
  kind: SiteKind;
  /** The method concerned ("" for envelopes of several). */
  method: string;
  /** The request's normalized params (request entries). */
  params?: unknown;
  /** The compared value. */
  value: unknown;
}

/** A conversation reduced to what does not depend on timing, by key. */
export type Digest = Map<string, DigestEntry>;

/** A request's digest key: method and normalized params. */
export function requestKey(exchange: Exchange, context: NormalizeContext): string {
  return `${exchange.method} ${
    JSON.stringify(normalizeParams(exchange.method, exchange.params, context))
  }`;
}

/** An answer, normalized: `{result}`, `{error: {code, message, data?}}` or `"(no answer)"`. */
function normalizedAnswer(
  exchange: Exchange,
  context: NormalizeContext,
  streamedBody: string | undefined,
): unknown {
  if (exchange.error !== null) {
    const data = (exchange.response?.error as Record<string, unknown> | undefined)?.data;
    return {
      error: {
        code: exchange.error.code,
        message: normalizeText(exchange.error.message, context),
        ...(data === undefined ? {} : { data: normalizeValue(data, context) }),
      },
    };
  }
  if (exchange.response === null) return "(no answer)";
  const result = normalizeResult(exchange.method, exchange.response.result, context);
  if (streamedBody !== undefined && result && typeof result === "object") {
    (result as Record<string, unknown>).streamedBody = normalizeJsonRpcIds(
      normalizeText(streamedBody, context),
    );
  }
  return { result };
}

/** The kind of a message, for its envelope. */
function messageKind(m: Record<string, unknown>): string {
  if (typeof m.method === "string") return m.id === undefined ? "notification" : "request";
  return m.error !== undefined ? "error answer" : "answer";
}

/**
 * A conversation as entries that do not depend on timing:
 *
 * - `request METHOD PARAMS`: every distinct request (normalized), with its
 *   answer (`answer`, or `answers` when a repeat got another one; for
 *   process/terminate and process/read only the first answer) and how
 *   often it was sent (`count`); `http/request` answers carry their
 *   streamed body;
 * - `process ID`: a process's output per stream (chunks joined; an MCP
 *   server's JSON lines sorted), how many output notifications carried it,
 *   its `process/exited` and `process/closed` params (without ids and seqs);
 * - `notification METHOD PARAMS`: other notifications, with their count;
 * - `envelope DIR KIND`: the top-level keys of the messages of that
 *   direction and kind (request, notification, answer, error answer, with
 *   the error's keys), and `envelope s2c params of METHOD`: the params'
 *   keys of each kind of notification (process/exited and /closed are in
 *   the process entries);
 * - `http body error`: errors in streamed HTTP bodies.
 */
export function protocolDigest(
  frames: Frame[],
  exchanges: Exchange[],
  notifications: Frame[],
  context: NormalizeContext,
): Digest {
  const digest: Digest = new Map();
  const bodiesByRequest = new Map<string, string>();
  for (const frame of notifications) {
    const m = frame.json!;
    if (m.method !== "http/request/bodyDelta") continue;
    const params = (m.params ?? {}) as Record<string, unknown>;
    const id = String(params.requestId);
    bodiesByRequest.set(
      id,
      (bodiesByRequest.get(id) ?? "") + decode(String(params.deltaBase64 ?? "")),
    );
  }
  const answers = new Map<string, { method: string; params: unknown; answers: string[] }>();
  for (const e of exchanges) {
    const key = `request ${requestKey(e, context)}`;
    const requestId = e.method === "http/request"
      ? String((e.params as Record<string, unknown>)?.requestId ?? "")
      : "";
    const body = bodiesByRequest.get(requestId);
    const answer = JSON.stringify(
      normalizedAnswer(e, context, body === "" ? undefined : body),
    );
    let entry = answers.get(key);
    if (entry === undefined) {
      entry = {
        method: e.method,
        params: normalizeParams(e.method, e.params, context),
        answers: [],
      };
      answers.set(key, entry);
    }
    entry.answers.push(answer);
  }
  for (const [key, entry] of answers) {
    // A repeated terminate or poll is answered according to whether the process had exited by
    // then (timing): only the first answer counts. Other repeats must get the same answers.
    const compared = FIRST_ANSWER_ONLY.has(entry.method)
      ? entry.answers.slice(0, 1)
      : entry.answers;
    const distinct = [...new Set(compared)].sort().map((a) => JSON.parse(a));
    digest.set(key, {
      kind: "request",
      method: entry.method,
      params: entry.params,
      value: distinct.length === 1
        ? { answer: distinct[0], count: entry.answers.length }
        : { answers: distinct, count: entry.answers.length },
    });
  }
  const processes = new Map<
    string,
    {
      out: Record<string, string>;
      outputNotifications: number;
      exited: unknown;
      closed: unknown;
    }
  >();
  const proc = (id: string) => {
    let p = processes.get(id);
    if (p === undefined) {
      processes.set(id, p = { out: {}, outputNotifications: 0, exited: null, closed: null });
    }
    return p;
  };
  const rest = (params: Record<string, unknown>) => {
    const { processId: _id, seq: _seq, ...others } = params;
    return normalizeValue(others, context);
  };
  for (const frame of notifications) {
    const m = frame.json!;
    const method = String(m.method);
    const params = (m.params ?? {}) as Record<string, unknown>;
    const id = normalizeText(String(params.processId ?? ""), context);
    if (method === "process/output") {
      const p = proc(id);
      const stream = String(params.stream);
      p.out[stream] = (p.out[stream] ?? "") + decode(String(params.chunk));
      p.outputNotifications++;
    } else if (method === "process/exited") {
      proc(id).exited = rest(params);
    } else if (method === "process/closed") {
      proc(id).closed = rest(params);
    } else if (method === "http/request/bodyDelta") {
      // Joined to its request above; only errors are kept here.
      if (params.error) {
        digest.set(`http body error ${JSON.stringify(normalizeValue(params.error, context))}`, {
          kind: "notification",
          method,
          value: true,
        });
      }
    } else {
      const key = `notification ${method} ${JSON.stringify(normalizeValue(params, context))}`;
      const count = ((digest.get(key)?.value as { count?: number } | undefined)?.count ?? 0) + 1;
      digest.set(key, { kind: "notification", method, value: { count } });
    }
  }
  for (const [id, p] of processes) {
    digest.set(`process ${id}`, {
      kind: "process",
      method: "",
      value: {
        output: normalizeValue(
          Object.fromEntries(Object.entries(p.out).map(([k, v]) => [k, jsonLinesInOrder(v)])),
          context,
        ),
        outputNotifications: p.outputNotifications,
        exited: p.exited,
        closed: p.closed,
      },
    });
  }
  // Envelopes: which keys the messages have.
  const envelope = (key: string, method: string, keys: string[]) => {
    const entry = digest.get(key);
    const value = (entry?.value ?? {}) as Record<string, true>;
    for (const k of keys) value[k] = true;
    digest.set(key, { kind: "envelope", method, value });
  };
  for (const frame of frames) {
    if (frame.json === null) {
      envelope(`envelope ${frame.dir} non-JSON frames`, "", ["(binary or non-JSON frame)"]);
      continue;
    }
    const m = frame.json;
    const keys = Object.keys(m);
    if (m.error && typeof m.error === "object") {
      keys.push(...Object.keys(m.error).map((k) => `error.${k}`));
    }
    envelope(`envelope ${frame.dir} ${messageKind(m)}`, "", keys);
    const method = typeof m.method === "string" ? m.method : "";
    if (
      frame.dir === "s2c" && messageKind(m) === "notification" &&
      method !== "process/exited" && method !== "process/closed" &&
      m.params && typeof m.params === "object"
    ) {
      envelope(`envelope s2c params of ${method}`, method, Object.keys(m.params));
    }
  }
  return digest;
}

/** A digest as sorted text lines (`KEY => VALUE`), for capture files. */
export function digestLines(digest: Digest): string[] {
  return [...digest.entries()].map(([key, e]) => `${key} => ${JSON.stringify(e.value)}`).sort();
}

/**
 * Every difference between the reference's digest and execbridge's, each
 * allowed by the table of allowed_differences.ts or not.
 */
export function compareDigests(
  reference: Digest,
  execbridge: Digest,
  context: CompareContext,
): Difference[] {
  const keys = [...new Set([...reference.keys(), ...execbridge.keys()])].sort();
  const out: Difference[] = [];
  for (const key of keys) {
    const a = reference.get(key);
    const b = execbridge.get(key);
    const entry = (a ?? b)!;
    out.push(...diffValues(a?.value, b?.value, {
      suite: "interop",
      kind: entry.kind,
      where: key,
      method: entry.method,
      request: entry.params,
      context,
    }));
  }
  return out;
}

/**
 * execbridge's error answers that the reference did not give to the same
 * request (same normalized method and params, same code).
 */
export function errorsUnlikeReference(
  execbridge: Exchange[],
  execbridgeContext: NormalizeContext,
  reference: Exchange[],
  referenceContext: NormalizeContext,
): Exchange[] {
  const referenceErrors = new Set(
    reference.filter((e) => e.error !== null).map((e) =>
      `${requestKey(e, referenceContext)} ${e.error!.code}`
    ),
  );
  return execbridge.filter((e) =>
    e.error !== null && !referenceErrors.has(`${requestKey(e, execbridgeContext)} ${e.error.code}`)
  );
}
