/**
 * Entry point of a process worker: one Web Worker per executor process.
 * See `src/process/worker/runner.ts` for what it does.
 *
 * @module
 */

import { runProcessWorker, type WorkerScope } from "../src/process/worker/runner.ts";

runProcessWorker(self as unknown as WorkerScope);
