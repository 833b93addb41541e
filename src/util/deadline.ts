/**
 * Time limits on promises, with the timer always cleared (a pending timer
 * keeps a program alive and fails `deno test --sanitize-ops`).
 *
 * @module
 */

/**
 * Resolves like `promise`, or rejects with `error()` once `ms` passed first.
 * `onTimeout` runs at that moment (to cancel the work the promise stands for).
 */
export async function withTimeout<T>(
  promise: Promise<T>,
  ms: number,
  options: { error: () => Error; onTimeout?: () => void },
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      options.onTimeout?.();
      reject(options.error());
    }, ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * True when `promise` settles (either way) within `ms`, false otherwise.
 * Never rejects.
 */
export async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), ms));
  try {
    return await Promise.race([promise.then(() => true, () => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Waits `ms`; resolves true then, or false as soon as `signal` aborts (the
 * timer is cleared either way, so an aborted wait leaves nothing pending).
 */
export function delay(ms: number, options: { signal?: AbortSignal } = {}): Promise<boolean> {
  const { signal } = options;
  if (signal?.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve(true);
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
