/**
 * Tracing through Deno's built-in OpenTelemetry: with `OTEL_DENO=true` (and
 * the standard `OTEL_*` variables for the exporter), Deno provides the
 * tracer behind `@opentelemetry/api` and exports what is recorded; without
 * it, nothing here allocates a span (the checks below are a boolean).
 *
 * Spans: one per JSON-RPC request the executor answers (`rpc.method`), one
 * per process lifetime (start to close, with its exit code), and one per
 * MCP tool call on the client side. Attributes never carry an argv, an
 * environment value or a path.
 *
 * @module
 */

import type { Span, Tracer } from "@opentelemetry/api";
import { readEnv } from "./env.ts";

/** Whether spans are recorded: Deno's OpenTelemetry is on (`OTEL_DENO=true`). */
export const TRACING: boolean = readEnv("OTEL_DENO") === "true";

// Loaded only when tracing: nothing else pays for it.
const api = TRACING ? await import("@opentelemetry/api") : null;

let tracer: Tracer | null = null;

/** The execbridge tracer (only called when {@link TRACING}). */
function getTracer(): Tracer {
  tracer ??= api!.trace.getTracer("execbridge");
  return tracer;
}

/** What a span records about its work. */
export type SpanAttributes = Record<string, string | number | boolean>;

/**
 * Runs `work` in a span named `name` (when tracing), ending it when the
 * promise settles; an error marks the span failed and is rethrown.
 */
export async function inSpan<T>(
  name: string,
  options: { kind: "server" | "client" | "internal"; attributes?: SpanAttributes },
  work: () => Promise<T>,
): Promise<T> {
  if (api === null) return await work();
  const { SpanKind, SpanStatusCode } = api;
  return await getTracer().startActiveSpan(name, {
    kind: options.kind === "server"
      ? SpanKind.SERVER
      : options.kind === "client"
      ? SpanKind.CLIENT
      : SpanKind.INTERNAL,
    attributes: options.attributes,
  }, async (span) => {
    try {
      return await work();
    } catch (error) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error)?.message });
      throw error;
    } finally {
      span.end();
    }
  });
}

/** A span that outlives a call (a process's lifetime): end it with {@link endSpan}. */
export function startSpan(name: string, attributes?: SpanAttributes): Span | null {
  if (api === null) return null;
  return getTracer().startSpan(name, { kind: api.SpanKind.INTERNAL, attributes });
}

/** Ends a span from {@link startSpan} (null: not tracing), with more attributes and whether it failed. */
export function endSpan(
  span: Span | null,
  options: { attributes?: SpanAttributes; error?: string } = {},
): void {
  if (span === null) return;
  if (options.attributes !== undefined) span.setAttributes(options.attributes);
  if (options.error !== undefined) {
    span.setStatus({ code: api!.SpanStatusCode.ERROR, message: options.error });
  }
  span.end();
}

/** A value OpenTelemetry reads at each collection. */
export interface ObservedValue {
  /** The instrument's name. */
  name: string;
  /** `gauge` (a level) or `counter` (a monotonic total). */
  type: "gauge" | "counter";
  /** What it measures. */
  description: string;
}

/**
 * Exports `values` as OpenTelemetry observable instruments (when tracing:
 * Deno's built-in exporter sends them with the `OTEL_*` settings);
 * `read(name)` gives each one's value at collection time.
 */
export function observeValues(values: ObservedValue[], read: (name: string) => number): void {
  if (api === null) return;
  const meter = api.metrics.getMeter("execbridge");
  for (const value of values) {
    const options = { description: value.description };
    const instrument = value.type === "gauge"
      ? meter.createObservableGauge(value.name, options)
      : meter.createObservableCounter(value.name, options);
    instrument.addCallback((result) => result.observe(read(value.name)));
  }
}
