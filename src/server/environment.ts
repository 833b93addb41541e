/**
 * What the executor says about where it runs (`environment/info`, and the
 * `environmentInfo` of the `initialize` result): its shell, version,
 * directories as `file://` URIs, and the capabilities it implements.
 *
 * @module
 */

import { knownBwrap } from "../sandbox/bwrap.ts";
import { toFileUri } from "../protocol/paths.ts";
import type { EnvironmentInfo } from "../protocol/types.ts";
import { readEnv } from "../util/env.ts";
import { VERSION } from "../version.ts";

/**
 * The reference's capability names. An executor answers each with whether
 * it implements what the name stands for; execbridge says true only for
 * what it does, so that a client never relies on something it lacks.
 */
export const CAPABILITIES = {
  /** Launching the reference's managed network proxy for a process. */
  networkProxyLaunch: false,
  /** The managed proxy's domain review. */
  networkProxyReviewDomains: false,
  /** Transparent TCP through the managed proxy. */
  networkProxyTransparentTcp: false,
  /** Masking credentials in a child's environment and output. */
  credentialMasking: false,
  /** The same with custom providers. */
  credentialMaskingCustomProviders: false,
  /** Sandbox capability discovery. */
  capabilityDiscoverySandbox: false,
  /** Watching paths that do not exist yet. */
  fsWatchMissing: false,
  /** Capability discovery, second version. */
  capabilityDiscoveryV2: false,
  /** Reading the environment's configuration. */
  environmentConfigRead: false,
  /** HTTP headers taken from environment variables. */
  httpHeaderEnvVars: false,
  /** `fs/open` and `fs/readBlock` under a sandbox policy. */
  sandboxedFileStreaming: true,
  /** `fs/open` in `replace` mode and `fs/writeBlock`. */
  fileWriteStreaming: true,
  /** Shell snapshots, second version. */
  shellSnapshotV2: false,
  /** Windows-only sandbox feature. */
  windowsMxc: false,
  /** Linux sandbox detail: root writes keep devices. */
  linuxRootWritePreservesDevices: false,
  /** Linux sandbox detail: approved root writes keep restrictions. */
  linuxApprovedRootWritePreservesRestrictions: false,
} as const satisfies Record<string, boolean>;

/**
 * execbridge's own capability: `process/start` sandboxes are enforced with
 * bubblewrap on this host (without it, a sandbox request is refused).
 */
export const SANDBOX_CAPABILITY = "sandboxBubblewrap";

function uri(path: string | undefined): string | null {
  return path !== undefined && path.startsWith("/") ? toFileUri(path) : null;
}

/** Describes this executor's environment (computed per call: the cwd can change). */
export function environmentInfo(): EnvironmentInfo {
  const shellPath = readEnv("SHELL") ?? "/bin/sh";
  return {
    shell: { name: shellPath.slice(shellPath.lastIndexOf("/") + 1), path: shellPath },
    executorVersion: VERSION,
    cwd: uri(Deno.cwd()),
    userHomeDir: uri(readEnv("HOME")),
    platformOs: Deno.build.os,
    tempDir: uri(readEnv("TMPDIR") ?? "/tmp"),
    prependPathDirs: [],
    temporaryDirectories: [],
    capabilities: { ...CAPABILITIES, [SANDBOX_CAPABILITY]: typeof knownBwrap() === "string" },
  };
}
