/**
 * What an HTTP request to the executor may do, decided before anything runs:
 * health probes answer without auth; a WebSocket upgrade needs an allowed
 * `Host` (DNS rebinding), no `Origin` or an allowed one (browsers), and the
 * bearer token. Everything else is 404.
 *
 * @module
 */

import { bearerMatches } from "../auth/bearer.ts";

/** The executor's request policy. */
export interface RequestPolicy {
  /** Required bearer token, or null with `--no-auth`. */
  token: string | null;
  /** Origins allowed to open a WebSocket (`scheme://host[:port]`, exact). */
  allowOrigins: readonly string[];
  /** Extra host names accepted in the `Host` header. */
  allowHosts: readonly string[];
  /** The address the executor listens on. */
  listenHostname: string;
  /** The bound port. */
  port: number;
  /** Whether the executor is ready (for `/readyz`). */
  ready(): boolean;
}

/** The outcome: a response to send, the metrics to serve (the token checked), or `upgrade`. */
export type GuardDecision = { kind: "respond"; response: Response; log?: string } | {
  kind: "metrics";
} | {
  kind: "upgrade";
};

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

/** True for 127.0.0.0/8 and ::1. */
export function isLoopback(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, "");
  return h === "::1" || (IPV4.test(h) && h.startsWith("127."));
}

function isIpLiteral(hostname: string): boolean {
  return IPV4.test(hostname) || hostname.includes(":");
}

function splitHost(host: string): { hostname: string; port: string | null } {
  if (host.startsWith("[")) {
    const end = host.indexOf("]");
    return { hostname: host.slice(1, end), port: host.slice(end + 2) || null };
  }
  const colon = host.lastIndexOf(":");
  return colon === -1
    ? { hostname: host, port: null }
    : { hostname: host.slice(0, colon), port: host.slice(colon + 1) };
}

/**
 * True when `Host` names this executor: an IP literal (a DNS-rebinding
 * attack always carries a DNS name) with our port, `localhost:PORT` when
 * listening on loopback, or a name given with `--allow-host`.
 */
export function hostAllowed(host: string | null, policy: RequestPolicy): boolean {
  if (host === null) return false;
  const { hostname, port } = splitHost(host.toLowerCase());
  if (policy.allowHosts.some((allowed) => allowed.toLowerCase() === hostname)) return true;
  if (port !== String(policy.port)) return false;
  if (isIpLiteral(hostname)) return true;
  return hostname === "localhost" && isLoopback(policy.listenHostname);
}

function text(status: number, body: string, headers: HeadersInit = {}): Response {
  return new Response(body + "\n", {
    status,
    headers: { "content-type": "text/plain", ...headers },
  });
}

/** Decides what to do with a request. */
export function guardRequest(request: Request, policy: RequestPolicy): GuardDecision {
  const url = new URL(request.url);
  const upgrade = request.headers.get("upgrade")?.toLowerCase() === "websocket";
  if (!upgrade && request.method === "GET") {
    if (url.pathname === "/healthz") return { kind: "respond", response: text(200, "ok") };
    if (url.pathname === "/readyz") {
      return {
        kind: "respond",
        response: policy.ready() ? text(200, "ready") : text(503, "not ready"),
      };
    }
  }
  if (!hostAllowed(request.headers.get("host"), policy)) {
    return {
      kind: "respond",
      response: text(403, "forbidden: unexpected Host header"),
      log: `refused a request with Host ${JSON.stringify(request.headers.get("host"))}` +
        " (pass --allow-host NAME to accept it)",
    };
  }
  const origin = request.headers.get("origin");
  if (origin !== null && !policy.allowOrigins.includes(origin)) {
    return {
      kind: "respond",
      response: text(403, "forbidden: origin not allowed"),
      log: `refused a request from origin ${JSON.stringify(origin)}` +
        " (pass --allow-origin ORIGIN to accept it)",
    };
  }
  if (policy.token !== null && !bearerMatches(request.headers.get("authorization"), policy.token)) {
    return {
      kind: "respond",
      response: text(401, "unauthorized: send Authorization: Bearer <token>", {
        "www-authenticate": "Bearer",
      }),
      log: "refused a request without the right bearer token",
    };
  }
  if (!upgrade) {
    if (request.method === "GET" && url.pathname === "/metrics") return { kind: "metrics" };
    return { kind: "respond", response: text(404, "not found") };
  }
  return { kind: "upgrade" };
}
