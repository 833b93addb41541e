/**
 * The executor's metrics, as `GET /metrics` serves them: Prometheus text
 * exposition format (version 0.0.4), following Prometheus naming
 * conventions (`execbridge_` prefix, base units, `_total` counters, a
 * `_seconds` histogram). No label carries an argv, an environment value or a
 * path: there are no per-process labels at all.
 *
 * @module
 */

import type { ProcessMetrics } from "../process/host/process_host.ts";

/** Buckets of the process start latency histogram, in seconds. */
export const START_BUCKETS: readonly number[] = [
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
];

/** The values read at scrape time (gauges). */
export interface GaugeSources {
  /** Processes not yet closed, in every session. */
  processesLive(): number;
  /** Sessions, attached or detached. */
  sessionsLive(): number;
  /** Sessions waiting for a resume. */
  sessionsDetached(): number;
  /** Open client connections. */
  connectionsLive(): number;
  /** Process workers started and idle. */
  workersIdle(): number;
  /** 1 while the executor drains (SIGTERM with a drain timeout), else 0. */
  draining(): number;
}

/** One gauge or counter and its value. */
export interface MetricSample {
  /** Its Prometheus name (`execbridge_…`). */
  name: string;
  /** `gauge` or `counter`. */
  type: "gauge" | "counter";
  /** What it counts. */
  help: string;
  /** Its value now. */
  value: number;
}

/** Counters and a histogram the executor updates as things happen. */
export class ExecutorMetrics implements ProcessMetrics {
  #starts = 0;
  #startFailures = 0;
  #outputBytes = 0;
  #stdinBytes = 0;
  #resumes = 0;
  #expiries = 0;
  #connections = 0;
  readonly #startBuckets = new Array<number>(START_BUCKETS.length).fill(0);
  #startSum = 0;

  /** A process started, `seconds` after it was asked for. */
  started(seconds: number): void {
    this.#starts++;
    this.#startSum += seconds;
    for (let i = 0; i < START_BUCKETS.length; i++) {
      if (seconds <= START_BUCKETS[i]) this.#startBuckets[i]++;
    }
  }

  /** A process could not be started. */
  startFailed(): void {
    this.#startFailures++;
  }

  /** Output bytes a process produced. */
  output(bytes: number): void {
    this.#outputBytes += bytes;
  }

  /** Bytes written to a process's stdin. */
  stdin(bytes: number): void {
    this.#stdinBytes += bytes;
  }

  /** A detached session was resumed. */
  resumed(): void {
    this.#resumes++;
  }

  /** A detached session expired (its processes were killed). */
  expired(): void {
    this.#expiries++;
  }

  /** A client connection was opened. */
  connected(): void {
    this.#connections++;
  }

  /**
   * Every gauge and counter with its value now (the gauges read from
   * `gauges`): one list for the Prometheus text and the OpenTelemetry
   * instruments.
   */
  samples(gauges: GaugeSources): MetricSample[] {
    const gauge = (name: string, help: string, value: number): MetricSample => ({
      name,
      type: "gauge",
      help,
      value,
    });
    const counter = (name: string, help: string, value: number): MetricSample => ({
      name,
      type: "counter",
      help,
      value,
    });
    return [
      gauge("execbridge_processes_live", "Processes not yet closed.", gauges.processesLive()),
      gauge("execbridge_sessions_live", "Sessions, attached or detached.", gauges.sessionsLive()),
      gauge(
        "execbridge_sessions_detached",
        "Sessions waiting for a resume.",
        gauges.sessionsDetached(),
      ),
      gauge("execbridge_connections_live", "Open client connections.", gauges.connectionsLive()),
      gauge("execbridge_workers_idle", "Idle process workers.", gauges.workersIdle()),
      gauge("execbridge_draining", "1 while the executor drains.", gauges.draining()),
      counter("execbridge_connections_total", "Client connections opened.", this.#connections),
      counter("execbridge_process_starts_total", "Processes started.", this.#starts),
      counter(
        "execbridge_process_start_failures_total",
        "Processes that could not be started.",
        this.#startFailures,
      ),
      counter(
        "execbridge_process_output_bytes_total",
        "Bytes of process output (stdout, stderr, pty).",
        this.#outputBytes,
      ),
      counter(
        "execbridge_process_stdin_bytes_total",
        "Bytes written to process stdin.",
        this.#stdinBytes,
      ),
      counter("execbridge_session_resumes_total", "Detached sessions resumed.", this.#resumes),
      counter(
        "execbridge_session_expiries_total",
        "Detached sessions that expired.",
        this.#expiries,
      ),
    ];
  }

  /** The exposition text, with the gauges read from `gauges` now. */
  render(gauges: GaugeSources): string {
    const lines: string[] = [];
    for (const sample of this.samples(gauges)) {
      lines.push(
        `# HELP ${sample.name} ${sample.help}`,
        `# TYPE ${sample.name} ${sample.type}`,
        `${sample.name} ${sample.value}`,
      );
    }
    const name = "execbridge_process_start_duration_seconds";
    lines.push(
      `# HELP ${name} Time from a start request to a running process.`,
      `# TYPE ${name} histogram`,
      ...START_BUCKETS.map((le, i) => `${name}_bucket{le="${le}"} ${this.#startBuckets[i]}`),
      `${name}_bucket{le="+Inf"} ${this.#starts}`,
      `${name}_sum ${this.#startSum}`,
      `${name}_count ${this.#starts}`,
    );
    return lines.join("\n") + "\n";
  }
}
