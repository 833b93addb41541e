/**
 * deploy/: the Containerfile and the Kubernetes manifests keep the invariants docs/deploy.md
 * promises. The checks are functions returning the problems they find
 * ({@link checkContainerfile}, {@link checkDeployment}, {@link checkKustomization}); each is
 * run on the real files (no problem) and on mutated copies (the expected problem), so that a
 * check that stopped checking fails here. The agent example (deploy/agent_example.ts) runs
 * against two local executors.
 */

import assert from "node:assert/strict";
import { parseAllDocuments } from "yaml";
import { parseMcpConfig } from "../mod.ts";
import { connectAll, executorUrls, runTask, startMcpOnEach } from "../deploy/agent_example.ts";
import { fixtureServer } from "./support/cli.ts";
import { startExecutor, TEST_TOKEN } from "./support/executor_process.ts";
import { portOf, rawUpgrade } from "./support/raw_socket.ts";

const ROOT = new URL("../", import.meta.url);
const DEPLOY = new URL("deploy/", ROOT);
const KUBERNETES = new URL("kubernetes/", DEPLOY);

/** The label the NetworkPolicy admits: the agent's pods carry it. */
const AGENT_LABEL = { "app.kubernetes.io/name": "execbridge-agent" } as const;
/** Time a pod needs after the drain to kill what is left and exit, before SIGKILL. */
const GRACE_MARGIN_MS = 5_000;
/** The cloud metadata endpoint (node credentials on most clouds). */
const METADATA_IP = "169.254.169.254";

type Obj = Record<string, unknown>;

function isObj(value: unknown): value is Obj {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function obj(value: unknown): Obj {
  return isObj(value) ? value : {};
}

function list(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

function str(value: unknown): string | undefined {
  return typeof value === "string" ? value : undefined;
}

function clone<T>(value: T): T {
  return structuredClone(value);
}

// ---------------------------------------------------------------------------------------------
// Containerfile

/** What the checks need from a Containerfile (its last stage). */
interface ContainerImage {
  /** The last `FROM` image reference. */
  from: string | null;
  /** The last `USER`, as written. */
  user: string | null;
  /** `ENTRYPOINT` in exec (JSON) form; null when absent or in shell form. */
  entrypoint: string[] | null;
  /** `CMD` in exec (JSON) form; null when absent or in shell form. */
  cmd: string[] | null;
  /** The `EXPOSE`d ports. */
  expose: number[];
  /** Each `RUN` command. */
  runs: string[];
  /** Each `COPY` instruction's arguments. */
  copies: string[];
  /** `ENV` and `ARG` names and values. */
  env: Map<string, string>;
}

/** Splits a Containerfile into instructions: comments dropped, continuation lines joined. */
function containerfileInstructions(text: string): { keyword: string; args: string }[] {
  const instructions: { keyword: string; args: string }[] = [];
  let current = "";
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line.startsWith("#")) continue;
    if (line === "" && current === "") continue;
    const continued = line.endsWith("\\");
    current += (current === "" ? "" : " ") + (continued ? line.slice(0, -1).trim() : line);
    if (continued) continue;
    if (current !== "") {
      const match = /^(\S+)\s*(.*)$/s.exec(current)!;
      instructions.push({ keyword: match[1].toUpperCase(), args: match[2] });
    }
    current = "";
  }
  return instructions;
}

function execForm(args: string): string[] | null {
  try {
    const value = JSON.parse(args);
    return Array.isArray(value) && value.every((item) => typeof item === "string") ? value : null;
  } catch {
    return null;
  }
}

/** Reads the facts {@link checkContainerfile} and {@link checkDeployment} use. */
function readContainerfile(text: string): ContainerImage {
  const image: ContainerImage = {
    from: null,
    user: null,
    entrypoint: null,
    cmd: null,
    expose: [],
    runs: [],
    copies: [],
    env: new Map(),
  };
  for (const { keyword, args } of containerfileInstructions(text)) {
    switch (keyword) {
      case "FROM":
        // A new stage starts over.
        Object.assign(image, {
          from: args.split(/\s+/)[0],
          user: null,
          entrypoint: null,
          cmd: null,
          expose: [],
          runs: [],
          copies: [],
          env: new Map(),
        });
        break;
      case "USER":
        image.user = args.trim();
        break;
      case "ENTRYPOINT":
        image.entrypoint = execForm(args);
        break;
      case "CMD":
        image.cmd = execForm(args);
        break;
      case "EXPOSE":
        image.expose.push(...args.split(/\s+/).map((port) => parseInt(port, 10)));
        break;
      case "RUN":
        image.runs.push(args);
        break;
      case "COPY":
        image.copies.push(args);
        break;
      case "ENV":
      case "ARG":
        for (const match of args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)(?:=("[^"]*"|\S*))?/g)) {
          image.env.set(match[1], (match[2] ?? "").replace(/^"|"$/g, ""));
        }
        break;
    }
  }
  return image;
}

/** The numeric `USER uid:gid` of an image, or null when it is a name or missing. */
function imageUser(image: ContainerImage): { uid: number; gid: number } | null {
  const match = /^(\d+):(\d+)$/.exec(image.user ?? "");
  return match === null ? null : { uid: Number(match[1]), gid: Number(match[2]) };
}

/** The Deno version CI installs: `.ci/run`'s `npm install -g deno@X.Y.Z`. */
function ciDenoVersion(ciScript: string): string {
  const match = /\bdeno@(\d+\.\d+\.\d+)\b/.exec(ciScript);
  if (match === null) throw new Error(".ci/run names no deno@X.Y.Z");
  return match[1];
}

const BOOLEAN_SERVE_FLAGS = new Set(["--no-auth", "--exit-on-stdin-close", "--help"]);

/** `serve`'s flags in `argv` (after `serve` when it is there): name → values, in order. */
function serveFlags(argv: readonly string[]): Map<string, string[]> {
  const at = argv.indexOf("serve");
  const rest = at === -1 ? argv : argv.slice(at + 1);
  const flags = new Map<string, string[]>();
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i];
    if (!arg.startsWith("--")) continue;
    const eq = arg.indexOf("=");
    const name = eq === -1 ? arg : arg.slice(0, eq);
    const value = eq !== -1 ? arg.slice(eq + 1) : BOOLEAN_SERVE_FLAGS.has(name) ? "" : rest[++i];
    flags.set(name, [...(flags.get(name) ?? []), value ?? ""]);
  }
  return flags;
}

function last(flags: Map<string, string[]>, name: string): string | undefined {
  return flags.get(name)?.at(-1);
}

/** The port of a `--listen ws://0.0.0.0:PORT` (or `[::]`), null for another address. */
function listenPort(listen: string | undefined): number | null {
  const match = /^wss?:\/\/(?:0\.0\.0\.0|\[::\]):(\d+)$/.exec(listen ?? "");
  return match === null ? null : Number(match[1]);
}

/**
 * The problems of a Containerfile: the official Deno image at CI's exact version, a numeric
 * non-root user, bubblewrap, dependencies cached from the frozen lockfile, tini as pid 1 and
 * the recommended V8 flag, nothing fetched at run time, serve's default flags, no token.
 */
function checkContainerfile(image: ContainerImage, denoVersion: string): string[] {
  const problems: string[] = [];
  const from = /^denoland\/deno:(?:debian-)?(\d+\.\d+\.\d+)(?:@sha256:[0-9a-f]{64})?$/.exec(
    image.from ?? "",
  );
  if (from === null) {
    problems.push(
      `FROM ${image.from}: the base must be the official Deno image with an exact version tag ` +
        `(denoland/deno:debian-X.Y.Z, optionally @sha256:…)`,
    );
  } else if (from[1] !== denoVersion) {
    problems.push(`FROM ${image.from}: Deno ${from[1]}, but CI uses ${denoVersion} (.ci/run)`);
  }
  const user = imageUser(image);
  if (user === null) {
    problems.push(`USER ${image.user}: the last USER must be a numeric UID:GID (runAsNonRoot)`);
  } else if (user.uid === 0 || user.gid === 0) {
    problems.push(`USER ${image.user}: the executor must not run as root (uid or gid 0)`);
  }
  if (!image.runs.some((run) => /\bapt-get install\b.*\bbubblewrap\b/.test(run))) {
    problems.push("no RUN installs bubblewrap: sandboxed processes would all be refused");
  }
  if (!image.copies.some((copy) => /(^|\s)deno\.lock(\s|$)/.test(copy))) {
    problems.push("deno.lock is not copied into the image");
  }
  if (!image.runs.some((run) => /\bdeno (install|cache)\b.*--frozen\b/.test(run))) {
    problems.push("no RUN caches the dependencies with deno install/cache --frozen");
  }
  const entrypoint = image.entrypoint;
  if (entrypoint === null) {
    problems.push("ENTRYPOINT must be in exec (JSON) form");
  } else {
    if (entrypoint[0] !== "/tini" || entrypoint[1] !== "--") {
      problems.push(
        "ENTRYPOINT must start with /tini --: an init that forwards SIGTERM and reaps orphans",
      );
    }
    const run = entrypoint.indexOf("run");
    if (entrypoint[run - 1] !== "deno" || run === -1) problems.push("ENTRYPOINT must run deno run");
    for (const flag of ["-A", "--v8-flags=--no-short-builtin-calls", "--cached-only", "--frozen"]) {
      if (!entrypoint.includes(flag)) problems.push(`ENTRYPOINT lacks ${flag}`);
    }
    if (entrypoint.slice(-2).join(" ") !== "mod.ts serve") {
      problems.push("ENTRYPOINT must end with mod.ts serve (CMD and Kubernetes args add flags)");
    }
  }
  if (image.cmd === null) {
    problems.push("CMD (serve's default flags) must be in exec (JSON) form");
  } else {
    const flags = serveFlags(image.cmd);
    const port = listenPort(last(flags, "--listen"));
    if (port === null) {
      problems.push(`CMD --listen ${last(flags, "--listen")}: must be ws://0.0.0.0:PORT`);
    } else if (!image.expose.includes(port)) {
      problems.push(`CMD listens on ${port}, but EXPOSE says ${image.expose.join(" ") || "none"}`);
    }
    if (!last(flags, "--token-file")?.startsWith("/")) {
      problems.push("CMD must pass --token-file with an absolute path");
    }
    if (flags.has("--no-auth")) problems.push("CMD must not pass --no-auth");
    if (!/^[1-9]\d*$/.test(last(flags, "--drain-timeout-ms") ?? "")) {
      problems.push("CMD must pass --drain-timeout-ms N (graceful shutdown)");
    }
  }
  for (const [name, value] of image.env) {
    if (/TOKEN/i.test(name)) problems.push(`ENV/ARG ${name}: a token must not be baked in`);
    if (name === "DENO_DIR" && value !== "" && !value.startsWith("/")) {
      problems.push(`ENV DENO_DIR=${value} must be absolute`);
    }
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// Kubernetes manifests

/** Parses a multi-document YAML file as Kubernetes does (YAML 1.1: `0400` is octal). */
function parseManifests(text: string, source: string): Obj[] {
  const docs: Obj[] = [];
  for (const doc of parseAllDocuments(text, { version: "1.1" })) {
    if (doc.errors.length > 0) throw new Error(`${source}: ${doc.errors[0].message}`);
    const value = doc.toJS();
    if (value === null || value === undefined) continue;
    if (!isObj(value)) throw new Error(`${source}: a document is not a mapping`);
    docs.push(value);
  }
  return docs;
}

function ref(doc: Obj): string {
  return `${doc.kind}/${obj(doc.metadata).name}`;
}

function labelsMatch(selector: unknown, labels: unknown): boolean {
  const wanted = obj(selector);
  const have = obj(labels);
  return Object.entries(wanted).every(([key, value]) => have[key] === value);
}

interface Workload {
  ref: string;
  kind: string;
  doc: Obj;
  pod: Obj;
  podLabels: Obj;
}

function workloads(docs: Obj[]): Workload[] {
  const found: Workload[] = [];
  for (const doc of docs) {
    const spec = obj(doc.spec);
    if (doc.kind === "Pod") {
      found.push({
        ref: ref(doc),
        kind: "Pod",
        doc,
        pod: spec,
        podLabels: obj(obj(doc.metadata).labels),
      });
    } else if (
      ["StatefulSet", "Deployment", "DaemonSet", "ReplicaSet"].includes(String(doc.kind))
    ) {
      const template = obj(spec.template);
      found.push({
        ref: ref(doc),
        kind: String(doc.kind),
        doc,
        pod: obj(template.spec),
        podLabels: obj(obj(template.metadata).labels),
      });
    }
  }
  return found;
}

function containerArgv(container: Obj, image: ContainerImage | null): string[] {
  const command = list(container.command).map(String);
  const args = container.args === undefined ? null : list(container.args).map(String);
  if (command.length > 0) return [...command, ...(args ?? [])];
  return [...(image?.entrypoint ?? []), ...(args ?? image?.cmd ?? [])];
}

function runsServe(container: Obj, image: ContainerImage | null): boolean {
  return serveFlags(containerArgv(container, image)).has("--listen");
}

/** The number a container port (a number or a port name) stands for, or null. */
function resolvePort(port: unknown, container: Obj): number | null {
  if (typeof port === "number") return port;
  const named = list(container.ports).map(obj).find((p) => p.name === port);
  return typeof named?.containerPort === "number" ? named.containerPort : null;
}

/** Container fields first, then the pod's. */
function effective(container: Obj, pod: Obj, field: string): unknown {
  const own = obj(container.securityContext)[field];
  return own !== undefined ? own : obj(pod.securityContext)[field];
}

function envNames(container: Obj): Set<string> {
  return new Set(list(container.env).map((e) => String(obj(e).name)));
}

/** The token values in the docs' Secrets (stringData, and data decoded from base64). */
function secretValues(docs: Obj[]): string[] {
  const values: string[] = [];
  for (const doc of docs.filter((d) => d.kind === "Secret")) {
    for (const value of Object.values(obj(doc.stringData))) values.push(String(value));
    for (const value of Object.values(obj(doc.data))) {
      try {
        values.push(atob(String(value)));
      } catch {
        values.push(String(value));
      }
    }
  }
  return values.map((value) => value.trim()).filter((value) => value.length >= 8);
}

function ipv4(address: string): number | null {
  const parts = address.split(".").map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) {
    return null;
  }
  return ((parts[0] << 24) >>> 0) + (parts[1] << 16) + (parts[2] << 8) + parts[3];
}

/** True when the IPv4 `cidr` contains `address`. */
function cidrContains(cidr: string, address: string): boolean {
  const [base, bits] = cidr.split("/");
  const network = ipv4(base);
  const host = ipv4(address);
  const prefix = Number(bits ?? "32");
  if (network === null || host === null || !(prefix >= 0 && prefix <= 32)) return false;
  const mask = prefix === 0 ? 0 : (~0 << (32 - prefix)) >>> 0;
  return ((network & mask) >>> 0) === ((host & mask) >>> 0);
}

function checkSecurityContext(
  where: string,
  container: Obj,
  pod: Obj,
  user: { uid: number; gid: number } | null,
): string[] {
  const problems: string[] = [];
  const context = obj(container.securityContext);
  if (effective(container, pod, "runAsNonRoot") !== true) {
    problems.push(`${where}: runAsNonRoot must be true`);
  }
  for (const [field, want] of [["runAsUser", user?.uid], ["runAsGroup", user?.gid]] as const) {
    const value = effective(container, pod, field);
    if (typeof value !== "number" || value === 0) {
      problems.push(`${where}: ${field} must be a non-zero number, got ${value}`);
    } else if (want !== undefined && value !== want) {
      problems.push(`${where}: ${field} ${value} differs from the image's USER (${want})`);
    }
  }
  if (context.allowPrivilegeEscalation !== false) {
    problems.push(`${where}: allowPrivilegeEscalation must be false`);
  }
  if (context.readOnlyRootFilesystem !== true) {
    problems.push(`${where}: readOnlyRootFilesystem must be true`);
  }
  if (context.privileged === true) problems.push(`${where}: must not be privileged`);
  const capabilities = obj(context.capabilities);
  if (!list(capabilities.drop).includes("ALL")) {
    problems.push(`${where}: capabilities must drop ALL`);
  }
  if (list(capabilities.add).length > 0) {
    problems.push(`${where}: capabilities.add must be empty, got ${list(capabilities.add)}`);
  }
  const seccomp = str(obj(effective(container, pod, "seccompProfile")).type);
  if (seccomp !== "RuntimeDefault" && seccomp !== "Localhost") {
    problems.push(`${where}: seccompProfile must be RuntimeDefault (or a Localhost profile)`);
  }
  const resources = obj(container.resources);
  for (const kind of ["requests", "limits"]) {
    for (const resource of ["cpu", "memory"]) {
      if (obj(resources[kind])[resource] === undefined) {
        problems.push(`${where}: resources.${kind}.${resource} must be set`);
      }
    }
  }
  return problems;
}

/** How a token reaches `--token-file`; problems when it is not from a Secret, privately. */
function checkToken(
  where: string,
  workload: Workload,
  container: Obj,
  tokenFile: string | undefined,
  docs: Obj[],
): string[] {
  const problems: string[] = [];
  const pod = workload.pod;
  const containers = [...list(pod.initContainers), ...list(pod.containers)].map(obj);
  for (const c of containers) {
    for (const env of list(c.env).map(obj)) {
      const name = String(env.name);
      if (/TOKEN/i.test(name) || obj(env.valueFrom).secretKeyRef !== undefined) {
        problems.push(
          `${workload.ref} container ${c.name}: env ${name} — the token must come from a file ` +
            `(--token-file), never from the environment, which every process started inherits`,
        );
      }
    }
    for (const from of list(c.envFrom).map(obj)) {
      if (from.secretRef !== undefined) {
        problems.push(`${workload.ref} container ${c.name}: envFrom a Secret puts it in the env`);
      }
    }
    const argv = [...list(c.command), ...list(c.args)].map(String);
    for (const secret of secretValues(docs)) {
      if (argv.some((arg) => arg.includes(secret))) {
        problems.push(`${workload.ref} container ${c.name}: a token appears in its command line`);
      }
    }
  }
  if (tokenFile === undefined || !tokenFile.startsWith("/")) {
    problems.push(`${where}: --token-file must name an absolute path`);
    return problems;
  }
  const mount = list(container.volumeMounts).map(obj).find((m) =>
    tokenFile.startsWith(String(m.mountPath).replace(/\/$/, "") + "/")
  );
  if (mount === undefined) {
    problems.push(`${where}: --token-file ${tokenFile} is on no volume (it would be in the image)`);
    return problems;
  }
  const volumes = list(pod.volumes).map(obj);
  const volume = volumes.find((v) => v.name === mount.name);
  if (volume === undefined) {
    problems.push(`${where}: the volume ${mount.name} holding --token-file is not defined`);
    return problems;
  }
  if (volume.secret !== undefined) {
    problems.push(
      `${where}: --token-file ${tokenFile} is on the Secret volume ${volume.name}: the kubelet ` +
        `writes its file owned by root (unreadable by a non-root user) or, with fsGroup, mode ` +
        `0440, and serve refuses a group-readable token file; copy it to a private file (mode ` +
        `0600) in a memory emptyDir with an init container`,
    );
    return problems;
  }
  if (volume.emptyDir === undefined) {
    problems.push(
      `${where}: the token volume ${volume.name} must be an emptyDir filled from a Secret`,
    );
    return problems;
  }
  if (obj(volume.emptyDir).medium !== "Memory") {
    problems.push(
      `${where}: the token emptyDir ${volume.name} must be medium: Memory (never on disk)`,
    );
  }
  if (mount.readOnly !== true) {
    problems.push(`${where}: the executor should mount the token volume ${volume.name} readOnly`);
  }
  // The init container that copies the Secret into it.
  const relative = tokenFile.slice(String(mount.mountPath).replace(/\/$/, "").length);
  const secretNames = new Set(
    docs.filter((d) => d.kind === "Secret").map((d) => obj(d.metadata).name),
  );
  const copier = list(pod.initContainers).map(obj).find((init) =>
    list(init.volumeMounts).map(obj).some((m) => m.name === volume.name)
  );
  if (copier === undefined) {
    problems.push(
      `${where}: no init container fills the token volume ${volume.name} from the Secret`,
    );
    return problems;
  }
  const initMounts = list(copier.volumeMounts).map(obj);
  const target =
    String(initMounts.find((m) => m.name === volume.name)!.mountPath).replace(/\/$/, "") +
    relative;
  const secretMount = initMounts.find((m) =>
    obj(volumes.find((v) => v.name === m.name)?.secret).secretName !== undefined
  );
  if (secretMount === undefined) {
    problems.push(`${where}: the init container ${copier.name} mounts no Secret volume`);
    return problems;
  }
  const secretVolume = obj(volumes.find((v) => v.name === secretMount.name)?.secret);
  if (secretNames.size > 0 && !secretNames.has(secretVolume.secretName)) {
    problems.push(
      `${where}: the Secret volume names ${secretVolume.secretName}, which no Secret here is`,
    );
  }
  if (typeof secretVolume.defaultMode === "number" && (secretVolume.defaultMode & 0o007) !== 0) {
    problems.push(`${where}: the Secret volume's defaultMode lets others read the token`);
  }
  const script = [...list(copier.command), ...list(copier.args)].map(String).join(" ");
  if (!script.includes(target) || !/\b(install -m 0?600|chmod 0?600)\b/.test(script)) {
    problems.push(
      `${where}: the init container ${copier.name} must write ${target} with mode 0600 ` +
        `(install -m 0600 …)`,
    );
  }
  return problems;
}

/** The checks of one executor workload; `services` and `policies` are all the docs'. */
function checkWorkload(
  workload: Workload,
  docs: Obj[],
  image: ContainerImage | null,
): string[] {
  const problems: string[] = [];
  const { pod } = workload;
  const spec = obj(workload.doc.spec);
  const user = image === null ? null : imageUser(image);
  if (workload.kind !== "Pod") {
    const selector = obj(spec.selector).matchLabels;
    if (!isObj(selector) || Object.keys(selector).length === 0) {
      problems.push(`${workload.ref}: needs a selector.matchLabels`);
    } else if (!labelsMatch(selector, workload.podLabels)) {
      problems.push(`${workload.ref}: the pod template's labels do not match its selector`);
    }
    if (!labelsMatch(workload.podLabels, obj(workload.doc.metadata).labels)) {
      problems.push(`${workload.ref}: its own labels differ from its pods' labels`);
    }
  }
  if (typeof workload.podLabels["app.kubernetes.io/name"] !== "string") {
    problems.push(`${workload.ref}: its pods need an app.kubernetes.io/name label`);
  }
  for (const field of ["hostNetwork", "hostPID", "hostIPC"]) {
    if (pod[field] === true) problems.push(`${workload.ref}: ${field} must not be true`);
  }
  if (pod.automountServiceAccountToken !== false) {
    problems.push(
      `${workload.ref}: automountServiceAccountToken must be false (clients run commands here)`,
    );
  }
  const servers = list(pod.containers).map(obj).filter((c) => runsServe(c, image));
  if (servers.length !== 1) {
    problems.push(`${workload.ref}: one executor per pod: ${servers.length} containers run serve`);
  }
  for (const c of [...list(pod.initContainers), ...list(pod.containers)].map(obj)) {
    problems.push(...checkSecurityContext(`${workload.ref} container ${c.name}`, c, pod, user));
  }
  const container = servers[0];
  if (container === undefined) return problems;
  const where = `${workload.ref} container ${container.name}`;
  const flags = serveFlags(containerArgv(container, image));
  if (flags.has("--no-auth")) problems.push(`${where}: must not pass --no-auth`);

  // Port: --listen, the container port, the probes.
  const port = listenPort(last(flags, "--listen"));
  const containerPorts = list(container.ports).map(obj);
  if (port === null) {
    problems.push(
      `${where}: --listen ${last(flags, "--listen")} must be ws://0.0.0.0:PORT (the pod's address)`,
    );
  } else if (!containerPorts.some((p) => p.containerPort === port)) {
    problems.push(`${where}: --listen port ${port} is not one of its containerPorts`);
  }
  for (const [probe, path] of [["livenessProbe", "/healthz"], ["readinessProbe", "/readyz"]]) {
    const httpGet = obj(obj(container[probe]).httpGet);
    if (container[probe] === undefined) {
      problems.push(`${where}: needs a ${probe} (${path})`);
      continue;
    }
    if (httpGet.path !== path) {
      problems.push(
        `${where}: the ${probe.replace("Probe", "")} probe must GET ${path}, not ${httpGet.path}`,
      );
    }
    const probePort = resolvePort(httpGet.port, container);
    if (port !== null && probePort !== port) {
      problems.push(`${where}: the ${probe} port ${httpGet.port} is not the executor port ${port}`);
    }
  }

  // Graceful shutdown.
  const drain = last(flags, "--drain-timeout-ms");
  const grace = pod.terminationGracePeriodSeconds;
  if (!/^[1-9]\d*$/.test(drain ?? "")) {
    problems.push(
      `${where}: must pass --drain-timeout-ms N (running processes get N ms on SIGTERM)`,
    );
  } else if (typeof grace !== "number" || grace * 1000 < Number(drain) + GRACE_MARGIN_MS) {
    problems.push(
      `${workload.ref}: terminationGracePeriodSeconds (${grace} s) must exceed ` +
        `--drain-timeout-ms (${drain} ms) by at least ${GRACE_MARGIN_MS / 1000} s`,
    );
  }

  // Host names: every $(VAR) must be defined, and a StatefulSet pod must accept its own name.
  const env = list(container.env).map(obj);
  const defined = envNames(container);
  for (const host of flags.get("--allow-host") ?? []) {
    for (const match of host.matchAll(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g)) {
      if (!defined.has(match[1])) {
        problems.push(
          `${where}: --allow-host ${host} uses $(${match[1]}), which env does not define`,
        );
      }
    }
  }
  if (workload.kind === "StatefulSet") {
    const fieldOf = (name: string) =>
      obj(obj(env.find((e) => e.name === name)?.valueFrom).fieldRef).fieldPath;
    if (
      fieldOf("POD_NAME") !== "metadata.name" || fieldOf("POD_NAMESPACE") !== "metadata.namespace"
    ) {
      problems.push(
        `${where}: POD_NAME and POD_NAMESPACE must come from metadata.name and metadata.namespace`,
      );
    }
    const fqdn = `$(POD_NAME).${spec.serviceName}.$(POD_NAMESPACE).svc.cluster.local`;
    if (!(flags.get("--allow-host") ?? []).includes(fqdn)) {
      problems.push(`${where}: --allow-host ${fqdn} is missing: clients use that name`);
    }
  }

  // Writable places under a read-only root.
  const mounts = list(container.volumeMounts).map(obj);
  const volumes = list(pod.volumes).map(obj);
  const home = image?.env.get("HOME");
  for (const path of ["/tmp", "/workspace", ...(home ? [home] : [])]) {
    const mount = mounts.find((m) => m.mountPath === path);
    const volume = volumes.find((v) => v.name === mount?.name);
    if (mount === undefined || mount.readOnly === true) {
      problems.push(`${where}: ${path} needs a writable volume (the root filesystem is read-only)`);
    } else if (
      volume?.emptyDir === undefined && volume?.persistentVolumeClaim === undefined &&
      volume?.ephemeral === undefined
    ) {
      problems.push(
        `${where}: ${path} should be an emptyDir (or a claim), not ${Object.keys(volume ?? {})}`,
      );
    }
  }

  problems.push(...checkToken(where, workload, container, last(flags, "--token-file"), docs));

  // The Service: selects these pods, ClusterIP, the executor port unchanged.
  const services = docs.filter((d) =>
    d.kind === "Service" && Object.keys(obj(obj(d.spec).selector)).length > 0 &&
    labelsMatch(obj(d.spec).selector, workload.podLabels)
  );
  if (services.length === 0) problems.push(`${workload.ref}: no Service selects its pods`);
  for (const service of services) {
    const serviceSpec = obj(service.spec);
    if ((serviceSpec.type ?? "ClusterIP") !== "ClusterIP") {
      problems.push(
        `${ref(service)}: must be type ClusterIP, not ${serviceSpec.type} (no exposure)`,
      );
    }
    for (const servicePort of list(serviceSpec.ports).map(obj)) {
      const target = resolvePort(servicePort.targetPort ?? servicePort.port, container);
      if (target !== port) {
        problems.push(
          `${ref(service)}: targetPort ${servicePort.targetPort} is not the executor port ${port}`,
        );
      }
      if (servicePort.port !== port) {
        problems.push(
          `${ref(service)}: port ${servicePort.port} must equal the executor port ${port}: ` +
            `the executor accepts an IP-literal Host only with its own port`,
        );
      }
      if ((servicePort.protocol ?? "TCP") !== "TCP") problems.push(`${ref(service)}: must be TCP`);
    }
  }
  if (workload.kind === "StatefulSet") {
    const governing = docs.find((d) =>
      d.kind === "Service" && obj(d.metadata).name === spec.serviceName
    );
    if (governing === undefined) {
      problems.push(`${workload.ref}: serviceName ${spec.serviceName} names no Service here`);
    } else if (obj(governing.spec).clusterIP !== "None") {
      problems.push(
        `${
          ref(governing)
        }: must be headless (clusterIP: None) so that each executor has its own name`,
      );
    } else if (!services.includes(governing)) {
      problems.push(`${ref(governing)}: selects no executor pods`);
    }
  }

  problems.push(...checkNetworkPolicies(workload, docs, port));
  return problems;
}

function policySelects(policy: Obj, workload: Workload): boolean {
  const selector = obj(obj(policy.spec).podSelector);
  if (selector.matchExpressions !== undefined) return true; // be conservative: assume it does
  return labelsMatch(selector.matchLabels, workload.podLabels);
}

function policyTypes(policy: Obj): string[] {
  const spec = obj(policy.spec);
  if (Array.isArray(spec.policyTypes)) return spec.policyTypes.map(String);
  return spec.egress !== undefined ? ["Ingress", "Egress"] : ["Ingress"];
}

function checkNetworkPolicies(workload: Workload, docs: Obj[], port: number | null): string[] {
  const problems: string[] = [];
  const policies = docs.filter((d) => d.kind === "NetworkPolicy" && policySelects(d, workload));
  const ingress = policies.filter((p) => policyTypes(p).includes("Ingress"));
  if (ingress.length === 0) {
    problems.push(`${workload.ref}: no NetworkPolicy restricts ingress to its pods`);
  }
  // Policies add up: every rule of every policy selecting the executors must be narrow.
  for (const policy of ingress) {
    for (const [i, rule] of list(obj(policy.spec).ingress).map(obj).entries()) {
      const where = `${ref(policy)} ingress[${i}]`;
      const from = list(rule.from).map(obj);
      if (from.length === 0) {
        problems.push(`${where}: admits traffic from everyone; it must name the agent pods`);
      }
      for (const peer of from) {
        if (
          peer.ipBlock !== undefined || !labelsMatch(AGENT_LABEL, obj(peer.podSelector).matchLabels)
        ) {
          problems.push(
            `${where}: a peer other than the agent pods (${JSON.stringify(AGENT_LABEL)})`,
          );
        }
      }
      const ports = list(rule.ports).map(obj);
      if (ports.length === 0) problems.push(`${where}: admits every port; name the executor port`);
      for (const p of ports) {
        if ((p.protocol ?? "TCP") !== "TCP" || p.port !== port || p.endPort !== undefined) {
          problems.push(
            `${where}: port ${p.protocol ?? "TCP"}/${p.port} is not the executor port ${port}`,
          );
        }
      }
    }
  }
  for (const policy of policies.filter((p) => policyTypes(p).includes("Egress"))) {
    for (const [i, rule] of list(obj(policy.spec).egress).map(obj).entries()) {
      const to = list(rule.to).map(obj);
      const blocks = to.length === 0 ? [{ cidr: "0.0.0.0/0", except: [] }] : to
        .map((peer) => obj(peer.ipBlock)).filter((block) => block.cidr !== undefined);
      for (const block of blocks) {
        const cidr = String(block.cidr);
        if (!cidrContains(cidr, METADATA_IP)) continue;
        if (!list(block.except).some((except) => cidrContains(String(except), METADATA_IP))) {
          problems.push(
            `${ref(policy)} egress[${i}]: ${cidr} reaches the cloud metadata endpoint ` +
              `${METADATA_IP}; add 169.254.0.0/16 to except`,
          );
        }
      }
    }
  }
  return problems;
}

/**
 * The problems of a set of Kubernetes manifests for executors. `image` (the Containerfile's
 * facts) supplies the ENTRYPOINT/CMD for containers that leave them out, the user the
 * securityContext must match, and $HOME; without it those comparisons are skipped.
 */
function checkDeployment(docs: unknown[], image: ContainerImage | null = null): string[] {
  const problems: string[] = [];
  const objects = docs.filter(isObj);
  if (objects.length !== docs.length) problems.push("a document is not a mapping");
  const executors = workloads(objects).filter((w) =>
    list(w.pod.containers).map(obj).some((c) => runsServe(c, image))
  );
  if (executors.length === 0) problems.push("no workload runs an executor (serve --listen)");
  for (const workload of executors) problems.push(...checkWorkload(workload, objects, image));
  for (const secret of objects.filter((d) => d.kind === "Secret")) {
    for (const value of secretValues([secret])) {
      if (!value.includes("REPLACE_ME")) {
        problems.push(
          `${ref(secret)}: an example Secret must hold a REPLACE_ME placeholder, not a token`,
        );
      }
    }
  }
  return problems;
}

/**
 * The problems of kustomization.yaml: it lists every manifest in `files` but the examples
 * (`*.example.yaml`, never applied) and itself, and its `images` entry renames the image the
 * workloads use.
 */
function checkKustomization(kustomization: Obj, files: string[], docs: Obj[]): string[] {
  const problems: string[] = [];
  const resources = list(kustomization.resources).map(String);
  for (const file of files) {
    if (file === "kustomization.yaml") continue;
    const example = file.endsWith(".example.yaml");
    if (example && resources.includes(file)) {
      problems.push(`kustomization.yaml lists ${file}: an example must never be applied`);
    }
    if (!example && !resources.includes(file)) {
      problems.push(`kustomization.yaml does not list ${file}`);
    }
  }
  const images = new Set(
    workloads(docs).flatMap((w) =>
      [...list(w.pod.initContainers), ...list(w.pod.containers)].map((c) =>
        String(obj(c).image).replace(/[:@].*$/, "")
      )
    ),
  );
  for (const entry of list(kustomization.images).map(obj)) {
    if (!images.has(String(entry.name))) {
      problems.push(`kustomization.yaml images: ${entry.name} is not an image the workloads use`);
    }
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// The real files

async function manifestFiles(): Promise<string[]> {
  const files: string[] = [];
  for await (const entry of Deno.readDir(KUBERNETES)) {
    if (entry.isFile && /\.ya?ml$/.test(entry.name)) files.push(entry.name);
  }
  return files.sort();
}

async function loadManifests(): Promise<Obj[]> {
  const docs: Obj[] = [];
  for (const file of await manifestFiles()) {
    if (file === "kustomization.yaml") continue;
    docs.push(...parseManifests(await Deno.readTextFile(new URL(file, KUBERNETES)), file));
  }
  return docs;
}

const containerfileText = await Deno.readTextFile(new URL("Containerfile", DEPLOY));
const IMAGE = readContainerfile(containerfileText);
const CI_DENO = ciDenoVersion(await Deno.readTextFile(new URL(".ci/run", ROOT)));
const DOCS = await loadManifests();

Deno.test("deploy: CI's Deno version is read from .ci/run and is 2.9.6", () => {
  assert.equal(CI_DENO, "2.9.6");
});

Deno.test("deploy: the Containerfile has no problem", () => {
  assert.deepEqual(checkContainerfile(IMAGE, CI_DENO), []);
  assert.deepEqual(imageUser(IMAGE), { uid: 10001, gid: 10001 });
  assert.equal(IMAGE.from, `denoland/deno:debian-${CI_DENO}`);
});

Deno.test("deploy: the manifests have no problem", () => {
  assert.deepEqual(checkDeployment(DOCS, IMAGE), []);
  const kinds = DOCS.map((d) => d.kind).sort();
  assert.deepEqual(kinds, ["NetworkPolicy", "NetworkPolicy", "Secret", "Service", "StatefulSet"]);
});

Deno.test("deploy: kustomization.yaml lists every manifest but the example Secret", async () => {
  const kustomization = parseManifests(
    await Deno.readTextFile(new URL("kustomization.yaml", KUBERNETES)),
    "kustomization.yaml",
  )[0];
  const files = await manifestFiles();
  assert.deepEqual(checkKustomization(kustomization, files, DOCS), []);
  const listed = clone(kustomization);
  (listed.resources as string[]).push("secret.example.yaml");
  assert.match(checkKustomization(listed, files, DOCS).join("\n"), /example must never be applied/);
  const missing = clone(kustomization);
  missing.resources = (missing.resources as string[]).filter((f) => f !== "networkpolicy.yaml");
  assert.match(checkKustomization(missing, files, DOCS).join("\n"), /does not list networkpolicy/);
  const renamed = clone(kustomization);
  obj(list(renamed.images)[0]).name = "execbridge-old";
  assert.match(checkKustomization(renamed, files, DOCS).join("\n"), /not an image the workloads/);
});

async function kubectlAvailable(): Promise<boolean> {
  try {
    const { success } = await new Deno.Command("kubectl", {
      args: ["version", "--client"],
      stdout: "null",
      stderr: "null",
    }).output();
    return success;
  } catch {
    return false;
  }
}

Deno.test({
  name: "deploy: kubectl kustomize renders manifests that pass the same checks",
  ignore: !(await kubectlAvailable()),
  async fn() {
    const output = await new Deno.Command("kubectl", {
      args: ["kustomize", new URL("kubernetes", DEPLOY).pathname],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(output.success, new TextDecoder().decode(output.stderr));
    const rendered = parseManifests(new TextDecoder().decode(output.stdout), "kustomize");
    // The Secret is not rendered (not listed); the token checks need its name only.
    const secret = DOCS.filter((d) => d.kind === "Secret");
    assert.deepEqual(checkDeployment([...rendered, ...secret], IMAGE), []);
    assert.equal(rendered.filter((d) => d.kind === "Secret").length, 0);
  },
});

// ---------------------------------------------------------------------------------------------
// Each check fails when the file breaks

/** Edits a Containerfile text; the check must then report `expect`. */
const CONTAINERFILE_MUTATIONS: { name: string; edit(text: string): string; expect: RegExp }[] = [
  {
    name: "another Deno version",
    edit: (t) => t.replace(/^FROM .*$/m, "FROM denoland/deno:debian-2.9.5"),
    expect: /Deno 2\.9\.5, but CI uses 2\.9\.6/,
  },
  {
    name: "a floating tag",
    edit: (t) => t.replace(/^FROM .*$/m, "FROM denoland/deno:latest"),
    expect: /exact version tag/,
  },
  { name: "no USER", edit: (t) => t.replace(/^USER .*$/m, ""), expect: /numeric UID:GID/ },
  {
    name: "USER by name",
    edit: (t) => t.replace(/^USER .*$/m, "USER execbridge"),
    expect: /numeric/,
  },
  {
    name: "USER root",
    edit: (t) => t.replace(/^USER .*$/m, "USER 0:0"),
    expect: /not run as root/,
  },
  {
    name: "a later stage without a USER",
    edit: (t) => t + "\nFROM denoland/deno:debian-2.9.6\n",
    expect: /numeric UID:GID/,
  },
  {
    name: "no bubblewrap",
    edit: (t) => t.replace("--no-install-recommends bubblewrap", "--no-install-recommends"),
    expect: /bubblewrap/,
  },
  {
    name: "no --frozen",
    edit: (t) => t.replace("deno install --frozen", "deno install"),
    expect: /--frozen/,
  },
  {
    name: "no lockfile copied",
    edit: (t) => t.replace("COPY deno.json deno.lock mod.ts ./", "COPY deno.json mod.ts ./"),
    expect: /deno\.lock is not copied/,
  },
  {
    name: "no tini",
    edit: (t) => t.replace('ENTRYPOINT ["/tini", "--", ', "ENTRYPOINT ["),
    expect: /\/tini --/,
  },
  {
    name: "no V8 flag",
    edit: (t) => t.replace('"--v8-flags=--no-short-builtin-calls", ', ""),
    expect: /no-short-builtin-calls/,
  },
  {
    name: "no --cached-only",
    edit: (t) => t.replace('"--cached-only", ', ""),
    expect: /--cached-only/,
  },
  {
    name: "shell-form ENTRYPOINT",
    edit: (t) => t.replace(/^ENTRYPOINT .*$/m, "ENTRYPOINT deno run -A mod.ts serve"),
    expect: /exec \(JSON\) form/,
  },
  {
    name: "no drain timeout",
    edit: (t) => t.replace(', "--drain-timeout-ms", "20000"', ""),
    expect: /--drain-timeout-ms/,
  },
  {
    name: "a loopback listener",
    edit: (t) => t.replace('"ws://0.0.0.0:8765"', '"ws://127.0.0.1:8765"'),
    expect: /ws:\/\/0\.0\.0\.0:PORT/,
  },
  {
    name: "another EXPOSE",
    edit: (t) => t.replace("EXPOSE 8765", "EXPOSE 9000"),
    expect: /EXPOSE/,
  },
  {
    name: "a baked-in token",
    edit: (t) => t.replace("ENV HOME=", "ENV EXECBRIDGE_TOKEN=abc HOME="),
    expect: /token must not be baked in/,
  },
  {
    name: "--no-auth",
    edit: (t) => t.replace('CMD ["--listen"', 'CMD ["--no-auth", "--listen"'),
    expect: /--no-auth/,
  },
];

for (const mutation of CONTAINERFILE_MUTATIONS) {
  Deno.test(`deploy: Containerfile check catches ${mutation.name}`, () => {
    const edited = mutation.edit(containerfileText);
    assert.notEqual(edited, containerfileText, "the mutation must change the file");
    const problems = checkContainerfile(readContainerfile(edited), CI_DENO).join("\n");
    assert.match(problems, mutation.expect);
  });
}

function find(docs: Obj[], kind: string, name?: string): Obj {
  const doc = docs.find((d) =>
    d.kind === kind && (name === undefined || obj(d.metadata).name === name)
  );
  if (doc === undefined) throw new Error(`no ${kind} ${name ?? ""}`);
  return doc;
}

function podOf(docs: Obj[]): Obj {
  return obj(obj(obj(find(docs, "StatefulSet").spec).template).spec);
}

function executorOf(docs: Obj[]): Obj {
  return obj(list(podOf(docs).containers)[0]);
}

function initOf(docs: Obj[]): Obj {
  return obj(list(podOf(docs).initContainers)[0]);
}

function argsOf(docs: Obj[]): string[] {
  return executorOf(docs).args as string[];
}

function setFlag(docs: Obj[], flag: string, value: string | null): void {
  const args = argsOf(docs);
  const at = args.indexOf(flag);
  if (value === null) args.splice(at, 2);
  else args[at + 1] = value;
}

function context(container: Obj): Obj {
  return container.securityContext as Obj;
}

function ingressRule(docs: Obj[]): Obj {
  return obj(list(obj(find(docs, "NetworkPolicy", "execbridge-ingress").spec).ingress)[0]);
}

/** Edits a copy of the manifests; the check must then report `expect`. */
const MANIFEST_MUTATIONS: { name: string; edit(docs: Obj[]): void; expect: RegExp }[] = [
  // securityContext
  {
    name: "runAsNonRoot off",
    edit: (d) => {
      obj(podOf(d).securityContext).runAsNonRoot = false;
      delete context(executorOf(d)).runAsNonRoot;
    },
    expect: /container executor: runAsNonRoot must be true/,
  },
  {
    name: "runAsUser 0",
    edit: (d) => context(executorOf(d)).runAsUser = 0,
    expect: /runAsUser must be a non-zero/,
  },
  {
    name: "a runAsUser other than the image's",
    edit: (d) => context(initOf(d)).runAsUser = 1000,
    expect: /install-token: runAsUser 1000 differs from the image's USER \(10001\)/,
  },
  {
    name: "privilege escalation allowed",
    edit: (d) => delete context(executorOf(d)).allowPrivilegeEscalation,
    expect: /allowPrivilegeEscalation must be false/,
  },
  {
    name: "a writable root filesystem",
    edit: (d) => context(initOf(d)).readOnlyRootFilesystem = false,
    expect: /install-token: readOnlyRootFilesystem must be true/,
  },
  {
    name: "capabilities kept",
    edit: (d) => context(executorOf(d)).capabilities = {},
    expect: /capabilities must drop ALL/,
  },
  {
    name: "a capability added",
    edit: (d) => obj(context(executorOf(d)).capabilities).add = ["SYS_ADMIN"],
    expect: /capabilities\.add must be empty/,
  },
  {
    name: "seccomp Unconfined",
    edit: (d) => context(executorOf(d)).seccompProfile = { type: "Unconfined" },
    expect: /seccompProfile must be RuntimeDefault/,
  },
  {
    name: "privileged",
    edit: (d) => context(executorOf(d)).privileged = true,
    expect: /must not be privileged/,
  },
  {
    name: "hostNetwork",
    edit: (d) => podOf(d).hostNetwork = true,
    expect: /hostNetwork must not be true/,
  },
  {
    name: "a service account token",
    edit: (d) => podOf(d).automountServiceAccountToken = true,
    expect: /automountServiceAccountToken must be false/,
  },
  {
    name: "no memory limit",
    edit: (d) => delete obj(obj(executorOf(d).resources).limits).memory,
    expect: /resources\.limits\.memory must be set/,
  },
  // shutdown
  {
    name: "a grace period shorter than the drain",
    edit: (d) => podOf(d).terminationGracePeriodSeconds = 20,
    expect: /terminationGracePeriodSeconds \(20 s\) must exceed --drain-timeout-ms \(20000 ms\)/,
  },
  {
    name: "a drain longer than the grace period",
    edit: (d) => setFlag(d, "--drain-timeout-ms", "40000"),
    expect: /terminationGracePeriodSeconds \(30 s\) must exceed --drain-timeout-ms \(40000 ms\)/,
  },
  {
    name: "no drain timeout",
    edit: (d) => setFlag(d, "--drain-timeout-ms", null),
    expect: /must pass --drain-timeout-ms/,
  },
  // token
  {
    name: "the token in an env var",
    edit: (d) =>
      list(executorOf(d).env).push({
        name: "EXECBRIDGE_TOKEN",
        valueFrom: { secretKeyRef: { name: "execbridge-token", key: "token" } },
      }),
    expect: /env EXECBRIDGE_TOKEN — the token must come from a file/,
  },
  {
    name: "a Secret in envFrom",
    edit: (d) => executorOf(d).envFrom = [{ secretRef: { name: "execbridge-token" } }],
    expect: /envFrom a Secret/,
  },
  {
    name: "the token on the command line",
    edit: (d) => argsOf(d).push("--log-level", "REPLACE_ME-with-the-output-of-openssl-rand-hex-32"),
    expect: /a token appears in its command line/,
  },
  {
    name: "--token-file on the Secret volume itself",
    edit: (d) => {
      const mount = list(executorOf(d).volumeMounts).map(obj).find((m) => m.name === "token")!;
      mount.name = "token-secret";
    },
    expect: /is on the Secret volume token-secret: .*mode 0440/,
  },
  {
    name: "the token copy on disk",
    edit: (d) => {
      const volume = list(podOf(d).volumes).map(obj).find((v) => v.name === "token")!;
      volume.emptyDir = {};
    },
    expect: /must be medium: Memory/,
  },
  {
    name: "no init container",
    edit: (d) => delete podOf(d).initContainers,
    expect: /no init container fills the token volume/,
  },
  {
    name: "a copy readable by others",
    edit: (d) => {
      const command = initOf(d).command as string[];
      command[2] = command[2].replace("install -m 0600", "install -m 0644");
    },
    expect: /must write \/var\/run\/secrets\/execbridge\/token with mode 0600/,
  },
  {
    name: "a Secret volume naming another Secret",
    edit: (d) => {
      const volume = list(podOf(d).volumes).map(obj).find((v) => v.name === "token-secret")!;
      obj(volume.secret).secretName = "other";
    },
    expect: /names other, which no Secret here is/,
  },
  {
    name: "--token-file outside any volume",
    edit: (d) => setFlag(d, "--token-file", "/app/token"),
    expect: /is on no volume/,
  },
  {
    name: "--no-auth",
    edit: (d) => argsOf(d).push("--no-auth"),
    expect: /must not pass --no-auth/,
  },
  {
    name: "a real token in the example Secret",
    edit: (d) => obj(find(d, "Secret").stringData).token = "0123456789abcdef0123456789abcdef",
    expect: /must hold a REPLACE_ME placeholder/,
  },
  // ports and probes
  {
    name: "liveness on /readyz",
    edit: (d) => obj(obj(executorOf(d).livenessProbe).httpGet).path = "/readyz",
    expect: /the liveness probe must GET \/healthz/,
  },
  {
    name: "no readiness probe",
    edit: (d) => delete executorOf(d).readinessProbe,
    expect: /needs a readinessProbe \(\/readyz\)/,
  },
  {
    name: "a probe on another port",
    edit: (d) => obj(obj(executorOf(d).readinessProbe).httpGet).port = 9999,
    expect: /readinessProbe port 9999 is not the executor port 8765/,
  },
  {
    name: "--listen on another port than the container's",
    edit: (d) => setFlag(d, "--listen", "ws://0.0.0.0:9000"),
    expect: /--listen port 9000 is not one of its containerPorts/,
  },
  {
    name: "--listen on loopback",
    edit: (d) => setFlag(d, "--listen", "ws://127.0.0.1:8765"),
    expect: /must be ws:\/\/0\.0\.0\.0:PORT/,
  },
  // Host names
  {
    name: "an --allow-host variable that env does not define",
    edit: (d) => {
      const env = executorOf(d).env as Obj[];
      env.splice(env.findIndex((e) => e.name === "POD_NAME"), 1);
    },
    expect: /uses \$\(POD_NAME\), which env does not define/,
  },
  {
    name: "no --allow-host for the pod's name",
    edit: (d) => {
      const args = argsOf(d);
      for (let at = args.indexOf("--allow-host"); at !== -1; at = args.indexOf("--allow-host")) {
        args.splice(at, 2);
      }
    },
    expect:
      /--allow-host \$\(POD_NAME\)\.execbridge\.\$\(POD_NAMESPACE\)\.svc\.cluster\.local is missing/,
  },
  // one executor per pod, labels, Service
  {
    name: "two executors in a pod",
    edit: (d) => list(podOf(d).containers).push({ ...clone(executorOf(d)), name: "second" }),
    expect: /one executor per pod: 2 containers run serve/,
  },
  {
    name: "pod labels that miss the selector",
    edit: (d) => {
      obj(obj(obj(find(d, "StatefulSet").spec).template).metadata).labels = {
        "app.kubernetes.io/name": "execbridge",
      };
    },
    expect: /pod template's labels do not match its selector/,
  },
  {
    name: "a Service on another targetPort",
    edit: (d) => obj(list(obj(find(d, "Service").spec).ports)[0]).targetPort = 9000,
    expect: /targetPort 9000 is not the executor port 8765/,
  },
  {
    name: "a Service on another port",
    edit: (d) => obj(list(obj(find(d, "Service").spec).ports)[0]).port = 80,
    expect: /port 80 must equal the executor port 8765/,
  },
  {
    name: "a LoadBalancer Service",
    edit: (d) => obj(find(d, "Service").spec).type = "LoadBalancer",
    expect: /must be type ClusterIP, not LoadBalancer/,
  },
  {
    name: "a Service with a virtual IP",
    edit: (d) => delete obj(find(d, "Service").spec).clusterIP,
    expect: /must be headless \(clusterIP: None\)/,
  },
  {
    name: "a Service selecting other pods",
    edit: (d) => obj(obj(find(d, "Service").spec).selector)["app.kubernetes.io/name"] = "other",
    expect: /no Service selects its pods/,
  },
  {
    name: "serviceName naming no Service",
    edit: (d) => obj(find(d, "StatefulSet").spec).serviceName = "nothing",
    expect: /serviceName nothing names no Service here/,
  },
  // NetworkPolicy
  {
    name: "ingress from an IP block",
    edit: (d) => ingressRule(d).from = [{ ipBlock: { cidr: "0.0.0.0/0" } }],
    expect: /a peer other than the agent pods/,
  },
  {
    name: "ingress from every pod",
    edit: (d) => ingressRule(d).from = [{ podSelector: {} }],
    expect: /a peer other than the agent pods/,
  },
  {
    name: "ingress from everyone",
    edit: (d) => delete ingressRule(d).from,
    expect: /admits traffic from everyone/,
  },
  {
    name: "ingress on every port",
    edit: (d) => delete ingressRule(d).ports,
    expect: /admits every port/,
  },
  {
    name: "ingress on another port",
    edit: (d) => obj(list(ingressRule(d).ports)[0]).port = 22,
    expect: /port TCP\/22 is not the executor port 8765/,
  },
  {
    name: "a NetworkPolicy selecting other pods",
    edit: (d) => {
      const spec = obj(find(d, "NetworkPolicy", "execbridge-ingress").spec);
      obj(obj(spec.podSelector).matchLabels)["app.kubernetes.io/component"] = "other";
    },
    expect: /no NetworkPolicy restricts ingress to its pods/,
  },
  {
    name: "another policy that lets everyone in",
    edit: (d) =>
      d.push({
        apiVersion: "networking.k8s.io/v1",
        kind: "NetworkPolicy",
        metadata: { name: "allow-all" },
        spec: { podSelector: {}, ingress: [{}] },
      }),
    expect: /NetworkPolicy\/allow-all ingress\[0\]: admits traffic from everyone/,
  },
  {
    name: "egress to the metadata endpoint",
    edit: (d) => {
      const spec = obj(find(d, "NetworkPolicy", "execbridge-egress").spec);
      const block = obj(obj(list(obj(list(spec.egress)[1]).to)[0]).ipBlock);
      block.except = list(block.except).filter((cidr) => cidr !== "169.254.0.0/16");
    },
    expect: /reaches the cloud metadata endpoint 169\.254\.169\.254/,
  },
  {
    name: "writable places missing",
    edit: (d) => {
      const container = executorOf(d);
      container.volumeMounts = list(container.volumeMounts).filter((m) =>
        obj(m).mountPath !== "/tmp"
      );
    },
    expect: /\/tmp needs a writable volume/,
  },
];

for (const mutation of MANIFEST_MUTATIONS) {
  Deno.test(`deploy: manifest check catches ${mutation.name}`, () => {
    const docs = clone(DOCS);
    mutation.edit(docs);
    assert.notDeepEqual(docs, DOCS, "the mutation must change the manifests");
    const problems = checkDeployment(docs, IMAGE).join("\n");
    assert.match(problems, mutation.expect);
  });
}

Deno.test("deploy: a pinned digest passes the Containerfile check", () => {
  const pinned = containerfileText.replace(
    /^FROM .*$/m,
    `FROM denoland/deno:debian-2.9.6@sha256:${"0".repeat(64)}`,
  );
  assert.deepEqual(checkContainerfile(readContainerfile(pinned), CI_DENO), []);
});

Deno.test("deploy: the manifests without the image's facts still pass", () => {
  // The args alone carry serve's flags: the manifests do not depend on the CMD.
  assert.deepEqual(checkDeployment(DOCS), []);
});

Deno.test("deploy: cidrContains", () => {
  assert.ok(cidrContains("0.0.0.0/0", METADATA_IP));
  assert.ok(cidrContains("169.254.0.0/16", METADATA_IP));
  assert.ok(!cidrContains("10.0.0.0/8", METADATA_IP));
  assert.ok(!cidrContains("::/0", METADATA_IP));
});

// ---------------------------------------------------------------------------------------------
// The agent example

Deno.test("deploy: the agent example's URLs are names the StatefulSet allows", () => {
  const urls = executorUrls({ namespace: "agents", replicas: 2 });
  assert.deepEqual(urls, [
    "ws://execbridge-0.execbridge.agents.svc.cluster.local:8765",
    "ws://execbridge-1.execbridge.agents.svc.cluster.local:8765",
  ]);
  const statefulSet = find(DOCS, "StatefulSet");
  const allowed = (serveFlags(argsOf(DOCS)).get("--allow-host") ?? []).map((host) =>
    host.replace("$(POD_NAME)", `${obj(statefulSet.metadata).name}-1`).replace(
      "$(POD_NAMESPACE)",
      "agents",
    )
  );
  const url = new URL(urls[1]);
  assert.ok(allowed.includes(url.hostname), `${url.hostname} not in ${allowed}`);
  assert.equal(Number(url.port), listenPort(last(serveFlags(argsOf(DOCS)), "--listen")));
});

Deno.test("deploy: the agent example drives two executors (processes and MCP servers)", async () => {
  const servers = await Promise.all([startExecutor(), startExecutor()]);
  const workspace = await Deno.makeTempDir({ prefix: "execbridge-deploy-" });
  try {
    const executors = await connectAll(servers.map((s) => s.url), { token: TEST_TOKEN });
    try {
      const results = await Promise.all(executors.map((executor, ordinal) =>
        runTask(executor, {
          id: `task-${ordinal}`,
          argv: ["sh", "-c", `echo task ${ordinal} in "$PWD"; exit ${ordinal}`],
          cwd: workspace,
        })
      ));
      assert.deepEqual(
        results,
        [0, 1].map((ordinal) => ({
          exitCode: ordinal,
          output: `task ${ordinal} in ${workspace}\n`,
        })),
      );
      const fixture = fixtureServer();
      const config = parseMcpConfig(
        JSON.stringify({
          mcpServers: {
            fixture: { command: fixture.command, args: fixture.args, environment: "remote" },
          },
        }),
        { format: "json", source: "deploy-test" },
      );
      const managers = await startMcpOnEach(executors, config);
      try {
        for (const manager of managers) {
          const result = await manager.callTool("fixture__echo", { message: "hi" });
          assert.deepEqual(result.content, [{ type: "text", text: "ECHOING: hi" }]);
        }
      } finally {
        await Promise.all(managers.map((manager) => manager.close()));
      }
    } finally {
      await Promise.all(executors.map((executor) => executor.close()));
    }
    // An unreachable executor fails the whole set and closes the others.
    const dead = "ws://127.0.0.1:9";
    await assert.rejects(
      connectAll([servers[0].url, dead], { token: TEST_TOKEN }),
      new RegExp(`cannot reach the executor ${dead}`),
    );
  } finally {
    await Promise.all(servers.map((server) => server.stop()));
    await Deno.remove(workspace, { recursive: true });
  }
});

// ---------------------------------------------------------------------------------------------
// The manifests' commands, run here

/** The init container's script with its two paths moved under `dir`. */
function initScript(dir: string): string {
  const command = initOf(DOCS).command as string[];
  assert.deepEqual(command.slice(0, 2), ["/bin/sh", "-c"]);
  return command[2]
    .replaceAll("/var/run/secrets/execbridge-secret/", `${dir}/secret/`)
    .replaceAll("/var/run/secrets/execbridge/", `${dir}/token/`);
}

async function runInitScript(dir: string): Promise<{ code: number; stderr: string }> {
  const output = await new Deno.Command("/bin/sh", {
    args: ["-c", initScript(dir)],
    stdout: "null",
    stderr: "piped",
  }).output();
  return { code: output.code, stderr: new TextDecoder().decode(output.stderr) };
}

Deno.test("deploy: the init container refuses the placeholder and writes a 0600 copy", async () => {
  const dir = await Deno.makeTempDir({ prefix: "execbridge-deploy-" });
  try {
    await Deno.mkdir(`${dir}/secret`);
    await Deno.mkdir(`${dir}/token`);
    const placeholder = String(obj(find(DOCS, "Secret").stringData).token);
    for (const bad of [placeholder, "a".repeat(31)]) {
      await Deno.writeTextFile(`${dir}/secret/token`, bad + "\n", { mode: 0o440 });
      const refused = await runInitScript(dir);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /needs a real token of at least 32 characters/);
      await assert.rejects(Deno.stat(`${dir}/token/token`), Deno.errors.NotFound);
      await Deno.remove(`${dir}/secret/token`);
    }
    await Deno.writeTextFile(`${dir}/secret/token`, TEST_TOKEN + "\n", { mode: 0o440 });
    assert.deepEqual(await runInitScript(dir), { code: 0, stderr: "" });
    assert.equal((await Deno.stat(`${dir}/token/token`)).mode! & 0o777, 0o600);
    assert.equal((await Deno.readTextFile(`${dir}/token/token`)).trim(), TEST_TOKEN);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deploy: the StatefulSet's serve flags run: pod names pass the Host check, SIGTERM drains", async () => {
  const dir = await Deno.makeTempDir({ prefix: "execbridge-deploy-" });
  await Deno.mkdir(`${dir}/secret`);
  await Deno.mkdir(`${dir}/token`);
  await Deno.writeTextFile(`${dir}/secret/token`, TEST_TOKEN + "\n", { mode: 0o440 });
  assert.equal((await runInitScript(dir)).code, 0);
  // The pod's args as Kubernetes expands them, on a free loopback port, the token file where
  // the init container wrote it, and a 1 s drain instead of 20 s.
  const args = argsOf(DOCS).map((arg) =>
    arg.replaceAll("$(POD_NAME)", "execbridge-0").replaceAll("$(POD_NAMESPACE)", "agents")
  );
  const flags = serveFlags(args);
  const set = (flag: string, value: string) => args[args.indexOf(flag) + 1] = value;
  set("--listen", "ws://127.0.0.1:0");
  set("--token-file", `${dir}/token/token`);
  set("--drain-timeout-ms", "1000");
  const server = await startExecutor(args);
  try {
    const port = portOf(server.url);
    const http = `http://127.0.0.1:${port}`;
    for (const host of flags.get("--allow-host")!) {
      const socket = await rawUpgrade(port, {
        Host: `${host}:${port}`,
        Authorization: `Bearer ${TEST_TOKEN}`,
      });
      socket.conn.close();
      assert.equal(socket.status, 101, `Host ${host}`);
    }
    const other = await rawUpgrade(port, {
      Host: `execbridge-1.execbridge.agents.svc.cluster.local:${port}`,
      Authorization: `Bearer ${TEST_TOKEN}`,
    });
    other.conn.close();
    assert.equal(other.status, 403);
    for (const [path, body] of [["/healthz", "ok"], ["/readyz", "ready"]]) {
      const response = await fetch(http + path);
      assert.equal(response.status, 200);
      assert.equal((await response.text()).trim(), body);
    }
    // A running process, then SIGTERM: /readyz says 503 at once, /healthz stays 200 (the
    // liveness probe must not kill a draining pod), and serve exits 0 after the drain.
    const [executor] = await connectAll([server.url], { token: TEST_TOKEN });
    const sleeper = await executor.start({ processId: "sleeper", argv: ["sleep", "30"] });
    Deno.kill(server.pid, "SIGTERM");
    let ready = 200;
    for (let i = 0; i < 50 && ready === 200; i++) {
      const response = await fetch(http + "/readyz");
      ready = response.status;
      await response.body?.cancel();
      if (ready === 200) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.equal(ready, 503);
    const health = await fetch(http + "/healthz");
    await health.body?.cancel();
    assert.equal(health.status, 200);
    const status = await server.status;
    assert.equal(status.code, 0);
    await sleeper.wait().catch(() => {});
    await executor.close();
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
