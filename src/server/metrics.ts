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

  /** The exposition text, with the gauges read from `gauges` now. */
  render(gauges: GaugeSources): string {
    const lines: string[] = [];
    const metric = (name: string, type: string, help: string, values: string[]) => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, ...values);
    };
    const one = (name: string, type: string, help: string, value: number) =>
      metric(name, type, help, [`${name} ${value}`]);
    one("execbridge_processes_live", "gauge", "Processes not yet closed.", gauges.processesLive());
    one(
      "execbridge_sessions_live",
      "gauge",
      "Sessions, attached or detached.",
      gauges.sessionsLive(),
    );
    one(
      "execbridge_sessions_detached",
      "gauge",
      "Sessions waiting for a resume.",
      gauges.sessionsDetached(),
    );
    one(
      "execbridge_connections_live",
      "gauge",
      "Open client connections.",
      gauges.connectionsLive(),
    );
    one("execbridge_workers_idle", "gauge", "Idle process workers.", gauges.workersIdle());
    one("execbridge_draining", "gauge", "1 while the executor drains.", gauges.draining());
    one(
      "execbridge_connections_total",
      "counter",
      "Client connections opened.",
      this.#connections,
    );
    one("execbridge_process_starts_total", "counter", "Processes started.", this.#starts);
    one(
      "execbridge_process_start_failures_total",
      "counter",
      "Processes that could not be started.",
      this.#startFailures,
    );
    one(
      "execbridge_process_output_bytes_total",
      "counter",
      "Bytes of process output (stdout, stderr, pty).",
      this.#outputBytes,
    );
    one(
      "execbridge_process_stdin_bytes_total",
      "counter",
      "Bytes written to process stdin.",
      this.#stdinBytes,
    );
    one(
      "execbridge_session_resumes_total",
      "counter",
      "Detached sessions resumed.",
      this.#resumes,
    );
    one(
      "execbridge_session_expiries_total",
      "counter",
      "Detached sessions that expired.",
      this.#expiries,
    );
    const name = "execbridge_process_start_duration_seconds";
    metric(name, "histogram", "Time from a start request to a running process.", [
      ...START_BUCKETS.map((le, i) => `${name}_bucket{le="${le}"} ${this.#startBuckets[i]}`),
      `${name}_bucket{le="+Inf"} ${this.#starts}`,
      `${name}_sum ${this.#startSum}`,
      `${name}_count ${this.#starts}`,
    ]);
    return lines.join("\n") + "\n";
  }
}
