import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import {
  DEFAULT_STARTUP_TIMEOUT_MS,
  DEFAULT_TOOL_TIMEOUT_MS,
  loadMcpConfig,
  type McpConfig,
  McpConfigError,
  type McpServerConfig,
  parseMcpConfig,
  resolveExecutor,
  validatePlacement,
} from "../src/mcp/config.ts";
import { DEFAULT_RESPAWN_POLICY } from "../src/mcp/server_supervisor.ts";

/** Writes `text` to a fresh temp file ending in `suffix`, runs `body`, then removes the file. */
async function withConfigFile<T>(
  suffix: string,
  text: string,
  body: (path: string) => Promise<T>,
): Promise<T> {
  const path = await Deno.makeTempFile({ prefix: "execbridge_mcp_", suffix });
  try {
    await Deno.writeTextFile(path, text);
    return await body(path);
  } finally {
    await Deno.remove(path);
  }
}

/** A stdio server with every default, overridden by `fields`. */
function stdio(
  name: string,
  command: string,
  fields: Partial<McpServerConfig> = {},
): McpServerConfig {
  return {
    name,
    transport: "stdio",
    command,
    args: [],
    env: {},
    envVars: [],
    headers: {},
    environment: "local",
    startupTimeoutMs: DEFAULT_STARTUP_TIMEOUT_MS,
    toolTimeoutMs: DEFAULT_TOOL_TIMEOUT_MS,
    enabled: true,
    required: false,
    supportsParallelToolCalls: false,
    respawn: true,
    maxRestarts: DEFAULT_RESPAWN_POLICY.maxRestarts,
    ...fields,
  };
}

function toml(text: string): McpConfig {
  return parseMcpConfig(text, { format: "toml", source: "codex.toml" });
}

function json(value: unknown): McpConfig {
  return parseMcpConfig(JSON.stringify(value), { format: "json", source: "mcp.json" });
}

/** A check that an error is an McpConfigError whose message contains every fragment. */
function configError(fragments: string[]): (error: unknown) => true {
  return (error) => {
    assert.ok(error instanceof McpConfigError, `expected McpConfigError, got ${error}`);
    for (const fragment of fragments) {
      assert.ok(
        error.message.includes(fragment),
        `message ${JSON.stringify(error.message)} lacks ${JSON.stringify(fragment)}`,
      );
    }
    return true;
  };
}

/** Asserts that `fn` throws an McpConfigError whose message contains every fragment. */
function assertConfigError(fn: () => unknown, ...fragments: string[]): void {
  assert.throws(fn, configError(fragments));
}

/** The same for a promise. */
async function assertConfigErrorAsync(
  promise: Promise<unknown>,
  ...fragments: string[]
): Promise<void> {
  await assert.rejects(promise, configError(fragments));
}

// ---------------------------------------------------------------------------
// formats

Deno.test("loads a Claude Desktop JSON config, mapping disabled and ignoring extra keys", async () => {
  const text = JSON.stringify({
    globalShortcut: "Ctrl+Space",
    mcpServers: {
      filesystem: {
        command: "npx",
        args: ["-y", "@modelcontextprotocol/server-filesystem", "/Users/me/Desktop"],
        env: { DEBUG: "1" },
        type: "stdio",
        autoApprove: ["read_file"],
      },
      "old-one": { command: "uvx", args: ["mcp-server-git"], disabled: true },
    },
  });
  await withConfigFile(".json", text, async (path) => {
    const config = await loadMcpConfig(path);
    assert.deepStrictEqual(config, {
      source: path,
      environments: [],
      servers: [
        stdio("filesystem", "npx", {
          args: ["-y", "@modelcontextprotocol/server-filesystem", "/Users/me/Desktop"],
          env: { DEBUG: "1" },
        }),
        stdio("old-one", "uvx", { args: ["mcp-server-git"], enabled: false }),
      ],
    });
  });
});

Deno.test("loads a VS Code mcp.json with `servers`, comments, trailing commas and http servers", async () => {
  const text = `{
  // VS Code allows comments and trailing commas in mcp.json
  "inputs": [{ "type": "promptString", "id": "token", "password": true }],
  "servers": {
    /* a local stdio server */
    "github": {
      "type": "stdio",
      "command": "docker",
      "args": ["run", "-i", "--rm", "ghcr.io/github/github-mcp-server", "// not a comment",],
      "env": { "URL": "http://x/*y*/" },
    },
    "remote-api": {
      "type": "http",
      "url": "https://api.example.com/mcp",
      "headers": { "Authorization": "Bearer abc" },
    },
  },
}`;
  await withConfigFile(".json", text, async (path) => {
    const config = await loadMcpConfig(path);
    assert.equal(config.executor, undefined);
    assert.deepStrictEqual(config.servers, [
      stdio("github", "docker", {
        args: ["run", "-i", "--rm", "ghcr.io/github/github-mcp-server", "// not a comment"],
        env: { URL: "http://x/*y*/" },
      }),
      {
        name: "remote-api",
        transport: "http",
        url: "https://api.example.com/mcp",
        args: [],
        env: {},
        envVars: [],
        headers: { Authorization: "Bearer abc" },
        environment: "local",
        startupTimeoutMs: DEFAULT_STARTUP_TIMEOUT_MS,
        toolTimeoutMs: DEFAULT_TOOL_TIMEOUT_MS,
        enabled: true,
        required: false,
        supportsParallelToolCalls: false,
        respawn: false,
        maxRestarts: DEFAULT_RESPAWN_POLICY.maxRestarts,
      },
    ]);
  });
});

Deno.test("JSON accepts `mcpServers` and `servers` together, but not one name in both", () => {
  const config = json({
    mcpServers: { a: { command: "a" } },
    servers: { b: { command: "b" } },
  });
  assert.deepStrictEqual(config.servers.map((s) => s.name), ["a", "b"]);
  assertConfigError(
    () => json({ mcpServers: { a: { command: "a" } }, servers: { a: { command: "b" } } }),
    "mcp.json",
    "`a` is defined in both `mcpServers` and `servers`",
  );
});

Deno.test("loads a Codex TOML config with every key and an [executor] table", async () => {
  const text = `
model = "o3"  # unrelated Codex settings are ignored

[executor]
url = "ws://devbox:8765"
token_file = "secrets/token"

[mcp_servers.docs]
command = "deno"
args = ["run", "-A", "server.ts"]
env = { LOG = "debug" }
env_vars = ["GITHUB_TOKEN", { name = "AWS_PROFILE", source = "local" }, { name = "PATH_EXTRA", source = "remote" }]
cwd = "/srv/docs"
experimental_environment = "remote"
startup_timeout_sec = 12.5
tool_timeout_sec = 300
enabled = true
required = true
enabled_tools = ["search", "fetch"]
disabled_tools = ["delete"]
supports_parallel_tool_calls = true
respawn = true
max_restarts = 3
default_tools_approval_mode = "prompt"
name = "legacy, ignored"

[mcp_servers.docs.tools.search]
approval_mode = "auto"

[mcp_servers.web]
url = "http://127.0.0.1:3000/mcp"
http_headers = { "X-Team" = "infra" }
bearer_token_env_var = "WEB_TOKEN"
environment = "local"
startup_timeout_ms = 4500
enabled = false
`;
  await withConfigFile(".toml", text, async (path) => {
    const config = await loadMcpConfig(path);
    assert.equal(config.source, path);
    assert.deepStrictEqual(config.executor, {
      url: "ws://devbox:8765",
      tokenFile: join(dirname(path), "secrets/token"),
    });
    assert.deepStrictEqual(config.servers, [
      stdio("docs", "deno", {
        args: ["run", "-A", "server.ts"],
        env: { LOG: "debug" },
        envVars: [
          { name: "GITHUB_TOKEN", source: "local" },
          { name: "AWS_PROFILE", source: "local" },
          { name: "PATH_EXTRA", source: "remote" },
        ],
        cwd: "/srv/docs",
        environment: "remote",
        startupTimeoutMs: 12_500,
        toolTimeoutMs: 300_000,
        required: true,
        enabledTools: ["search", "fetch"],
        disabledTools: ["delete"],
        supportsParallelToolCalls: true,
        maxRestarts: 3,
      }),
      {
        name: "web",
        transport: "http",
        url: "http://127.0.0.1:3000/mcp",
        args: [],
        env: {},
        envVars: [],
        headers: { "X-Team": "infra" },
        environment: "local",
        startupTimeoutMs: 4500,
        toolTimeoutMs: DEFAULT_TOOL_TIMEOUT_MS,
        enabled: false,
        required: false,
        supportsParallelToolCalls: false,
        respawn: false,
        maxRestarts: DEFAULT_RESPAWN_POLICY.maxRestarts,
      },
    ]);
  });
});

Deno.test("token_file: absolute kept, ~ expanded from env.HOME, kept as written by parseMcpConfig", async () => {
  const absolute = '[executor]\ntoken_file = "/etc/execbridge/token"\n';
  await withConfigFile(".toml", absolute, async (path) => {
    assert.deepStrictEqual((await loadMcpConfig(path)).executor, {
      tokenFile: "/etc/execbridge/token",
    });
  });
  const home = '[executor]\ntoken_file = "~/.execbridge/token"\n';
  await withConfigFile(".toml", home, async (path) => {
    const config = await loadMcpConfig(path, { env: { HOME: "/home/someone" } });
    assert.deepStrictEqual(config.executor, { tokenFile: "/home/someone/.execbridge/token" });
  });
  assert.deepStrictEqual(toml('[executor]\ntoken_file = "rel/token"\n').executor, {
    tokenFile: "rel/token",
  });
});

Deno.test("experimental_environment is an alias of environment", () => {
  const fromToml = toml('[mcp_servers.a]\ncommand = "a"\nexperimental_environment = "remote"\n');
  assert.equal(fromToml.servers[0].environment, "remote");
  const fromJson = json({
    mcpServers: { a: { command: "a", experimental_environment: "remote" } },
  });
  assert.equal(fromJson.servers[0].environment, "remote");
  const both = json({
    mcpServers: { a: { command: "a", environment: "remote", experimental_environment: "remote" } },
  });
  assert.equal(both.servers[0].environment, "remote");
  assertConfigError(
    () =>
      json({
        mcpServers: {
          a: { command: "a", environment: "local", experimental_environment: "remote" },
        },
      }),
    "mcp.json",
    "MCP server `a`",
    "sets both `environment` and `experimental_environment`",
  );
});

Deno.test("defaults for a minimal server, and an empty config", () => {
  const config = toml('[mcp_servers.min]\ncommand = "mcp-min"\n');
  assert.deepStrictEqual(config, {
    source: "codex.toml",
    servers: [stdio("min", "mcp-min")],
    environments: [],
  });
  assert.equal(config.servers[0].startupTimeoutMs, 30_000);
  assert.equal(config.servers[0].toolTimeoutMs, 120_000);
  assert.deepStrictEqual(toml(""), { source: "codex.toml", servers: [], environments: [] });
  assert.deepStrictEqual(json({}), { source: "mcp.json", servers: [], environments: [] });
  assert.equal(
    parseMcpConfig("{}", { format: "json" }).source,
    "<inline MCP config>",
  );
});

Deno.test("startup timeout: _ms alone, _sec wins over _ms, null means unset", () => {
  const ms = toml('[mcp_servers.a]\ncommand = "a"\nstartup_timeout_ms = 2500\n');
  assert.equal(ms.servers[0].startupTimeoutMs, 2500);
  const both = toml(
    '[mcp_servers.a]\ncommand = "a"\nstartup_timeout_ms = 2500\nstartup_timeout_sec = 7\n',
  );
  assert.equal(both.servers[0].startupTimeoutMs, 7000);
  const nulls = json({ mcpServers: { a: { command: "a", cwd: null, startup_timeout_sec: null } } });
  assert.deepStrictEqual(nulls.servers[0], stdio("a", "a"));
});

Deno.test("camelCase spellings are accepted in JSON", () => {
  const config = json({
    mcpServers: {
      a: {
        command: "a",
        envVars: ["TOKEN"],
        startupTimeoutSec: 5,
        toolTimeoutSec: 9,
        enabledTools: ["x"],
        disabledTools: ["y"],
        supportsParallelToolCalls: true,
        maxRestarts: 2,
      },
    },
  });
  assert.deepStrictEqual(
    config.servers[0],
    stdio("a", "a", {
      envVars: [{ name: "TOKEN", source: "local" }],
      startupTimeoutMs: 5000,
      toolTimeoutMs: 9000,
      enabledTools: ["x"],
      disabledTools: ["y"],
      supportsParallelToolCalls: true,
      maxRestarts: 2,
    }),
  );
  const executor = json({ executor: { url: "wss://box/x", tokenFile: "/t" } }).executor;
  assert.deepStrictEqual(executor, { url: "wss://box/x", tokenFile: "/t" });
});

Deno.test("respawn: on by default with 5 restarts; off with respawn = false; max_restarts", () => {
  const [on, off, limited] = toml(
    '[mcp_servers.on]\ncommand = "a"\n' +
      '[mcp_servers.off]\ncommand = "a"\nrespawn = false\n' +
      '[mcp_servers.limited]\ncommand = "a"\nmax_restarts = 2\n',
  ).servers;
  assert.deepStrictEqual([on.respawn, on.maxRestarts], [true, 5]);
  assert.deepStrictEqual([off.respawn, off.maxRestarts], [false, 5]);
  assert.deepStrictEqual([limited.respawn, limited.maxRestarts], [true, 2]);
  const fromJson = json({ mcpServers: { a: { command: "a", respawn: false } } });
  assert.equal(fromJson.servers[0].respawn, false);
  const http = json({ mcpServers: { h: { url: "https://h/mcp" } } });
  assert.equal(http.servers[0].respawn, false);
});

Deno.test("a remote-source env var is accepted on a remote server", () => {
  const config = json({
    mcpServers: {
      a: { command: "a", environment: "remote", env_vars: [{ name: "PATH", source: "remote" }] },
    },
  });
  assert.deepStrictEqual(config.servers[0].envVars, [{ name: "PATH", source: "remote" }]);
});

// ---------------------------------------------------------------------------
// errors

Deno.test("error: unreadable file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "execbridge_mcp_" });
  try {
    const missing = join(dir, "missing.json");
    await assertConfigErrorAsync(loadMcpConfig(missing), missing, "not found");
    const directory = join(dir, "dir.toml");
    await Deno.mkdir(directory);
    await assertConfigErrorAsync(loadMcpConfig(directory), directory, "cannot read MCP config");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("error: unknown extension", async () => {
  await withConfigFile(".yaml", "mcpServers: {}\n", async (path) => {
    await assertConfigErrorAsync(
      loadMcpConfig(path),
      path,
      "unsupported MCP config file",
      ".json",
      ".toml",
    );
  });
});

Deno.test("error: invalid JSON carries the parser's line", async () => {
  await withConfigFile(
    ".json",
    '{\n  "mcpServers": {\n    "a": { "command" "x" }\n  }\n}\n',
    async (path) => {
      await assertConfigErrorAsync(loadMcpConfig(path), path, "invalid JSON", "line 3");
    },
  );
});

Deno.test("error: invalid TOML carries the parser's line and column", async () => {
  await withConfigFile(".toml", '[mcp_servers.a]\ncommand = "x"\nargs = [1,\n', async (path) => {
    await assertConfigErrorAsync(loadMcpConfig(path), path, "invalid TOML at line");
  });
});

/** Configs that must be refused: a name, the parse, and fragments the message must contain. */
const INVALID_CONFIGS: [name: string, parse: () => McpConfig, ...fragments: string[]][] = [
  [
    "bad server name (TOML)",
    () => toml('[mcp_servers."x y"]\ncommand = "x"\n'),
    "invalid MCP server name `x y` in codex.toml: use letters, digits, _ and -",
  ],
  [
    "bad server name (JSON)",
    () => json({ mcpServers: { "a.b": { command: "x" } } }),
    "invalid MCP server name `a.b` in mcp.json",
  ],
  [
    "both command and url",
    () => json({ mcpServers: { both: { command: "x", url: "http://h/mcp" } } }),
    "mcp.json",
    "MCP server `both`",
    "both `command` and `url`",
  ],
  [
    "neither command nor url",
    () => toml("[mcp_servers.none]\nargs = []\n"),
    "codex.toml",
    "MCP server `none`",
    "neither `command` nor `url`",
  ],
  [
    "unknown environment",
    () => toml('[mcp_servers.n]\ncommand = "x"\nenvironment = "cloud"\n'),
    "codex.toml",
    "unsupported environment `cloud` for MCP server `n`; expected `local` or `remote`",
  ],
  [
    "unknown experimental_environment",
    () => toml('[mcp_servers.n]\ncommand = "x"\nexperimental_environment = "docker"\n'),
    "unsupported environment `docker` for MCP server `n`",
  ],
  [
    "unknown env_vars source",
    () => toml('[mcp_servers.n]\ncommand = "x"\nenv_vars = [{ name = "A", source = "vault" }]\n'),
    "codex.toml",
    "MCP server `n`",
    "unsupported env_vars source `vault`; expected `local` or `remote`",
  ],
  [
    "remote env_vars source on a local server",
    () =>
      toml('[mcp_servers.n]\ncommand = "x"\nenv_vars = [{ name = "TOKEN", source = "remote" }]\n'),
    "codex.toml",
    "MCP server `n`",
    "env_vars entry `TOKEN` uses source `remote`, which requires remote MCP stdio",
  ],
  ...(
    [
      ["env", { A: "1" }],
      ["cwd", "/tmp"],
      ["args", ["x"]],
      ["env_vars", ["A"]],
      ["respawn", false],
      ["max_restarts", 3],
    ] as const
  ).map(([field, value]): [string, () => McpConfig, ...string[]] => [
    `${field} on an http server`,
    () => json({ mcpServers: { h: { url: "https://h/mcp", [field]: value } } }),
    "mcp.json",
    "MCP server `h`",
    `${field} is not supported for streamable_http`,
  ]),
  [
    "headers on a stdio server",
    () => json({ mcpServers: { s: { command: "x", headers: { A: "1" } } } }),
    "mcp.json",
    "MCP server `s`",
    "headers is not supported for stdio",
  ],
  [
    "http_headers on a stdio server",
    () => toml('[mcp_servers.s]\ncommand = "x"\nhttp_headers = { A = "1" }\n'),
    "http_headers is not supported for stdio",
  ],
  [
    "a wrong type in a list names the zod path",
    () => json({ mcpServers: { t: { command: "x", args: ["ok", 3] } } }),
    "mcp.json",
    "MCP server `t`",
    "args.1:",
  ],
  [
    "a string where a list goes",
    () => toml('[mcp_servers.t]\ncommand = "x"\nargs = "--flag"\n'),
    "MCP server `t`",
    "args:",
  ],
  [
    "a number in env",
    () => json({ mcpServers: { t: { command: "x", env: { A: 1 } } } }),
    "env.A:",
  ],
  [
    "a wrong type under a camelCase spelling keeps the spelling",
    () => json({ mcpServers: { t: { command: "x", startupTimeoutSec: "soon" } } }),
    "startupTimeoutSec:",
  ],
  [
    "a string where a boolean goes",
    () => json({ mcpServers: { t: { command: "x", enabled: "yes" } } }),
    "enabled:",
  ],
  [
    "max_restarts of 0",
    () => toml('[mcp_servers.t]\ncommand = "x"\nmax_restarts = 0\n'),
    "MCP server `t`",
    "max_restarts:",
  ],
  [
    "a fractional maxRestarts keeps the spelling",
    () => json({ mcpServers: { t: { command: "x", maxRestarts: 1.5 } } }),
    "maxRestarts:",
  ],
  [
    "a string where respawn's boolean goes",
    () => json({ mcpServers: { t: { command: "x", respawn: "yes" } } }),
    "respawn:",
  ],
  [
    "max_restarts with respawn = false",
    () => toml('[mcp_servers.t]\ncommand = "x"\nrespawn = false\nmax_restarts = 2\n'),
    "codex.toml",
    "MCP server `t`",
    "max_restarts has no effect with `respawn = false`",
  ],
  [
    "a number in env_vars",
    () => toml('[mcp_servers.t]\ncommand = "x"\nenv_vars = [1]\n'),
    "env_vars.0: expected a variable name or an object with `name`",
  ],
  [
    "a server that is a string",
    () => json({ mcpServers: { t: "npx foo" } }),
    "MCP server `t`",
    "object",
  ],
  ["mcpServers that is a list", () => json({ mcpServers: [] }), "`mcpServers` must be an object"],
  ["a top level that is a list", () => json([1]), "mcp.json", "top level must be an object"],
  [
    "an ftp url",
    () => json({ mcpServers: { t: { url: "ftp://h/x" } } }),
    "url `ftp://h/x` is not an http:// or https:// URL",
  ],
  [
    "an http executor url",
    () => json({ executor: { url: "http://box:1" } }),
    "executor URL `http://box:1` from executor.url in mcp.json is not a ws:// or wss:// URL",
  ],
  ["a number as executor url", () => json({ executor: { url: 5 } }), "executor", "url:"],
  [
    "invalid TOML carries the line and column",
    () => toml('[mcp_servers.a]\ncommand = "x"\n[mcp_servers\n'),
    "codex.toml",
    "invalid TOML at line 3, column",
  ],
];

for (const [name, parse, ...fragments] of INVALID_CONFIGS) {
  Deno.test(`error: ${name}`, () => assertConfigError(parse, ...fragments));
}

// ---------------------------------------------------------------------------
// executor and placement

Deno.test("resolveExecutor: --executor, then EXECBRIDGE_EXECUTOR_URL, then the config", () => {
  const withConfig = json({ executor: { url: "ws://config:1", token_file: "/config-token" } });
  const env = { EXECBRIDGE_EXECUTOR_URL: "ws://env:2" };

  assert.deepStrictEqual(
    resolveExecutor(withConfig, { executor: "ws://flag:3", tokenFile: "/flag-token", env }),
    { url: "ws://flag:3", tokenFile: "/flag-token" },
  );
  // The config's token file belongs to the config's URL, not to an override.
  assert.deepStrictEqual(resolveExecutor(withConfig, { executor: "ws://flag:3", env }), {
    url: "ws://flag:3",
  });
  assert.deepStrictEqual(resolveExecutor(withConfig, { env }), { url: "ws://env:2" });
  assert.deepStrictEqual(resolveExecutor(withConfig, { env: {} }), {
    url: "ws://config:1",
    tokenFile: "/config-token",
  });
  assert.deepStrictEqual(
    resolveExecutor(withConfig, { env: { EXECBRIDGE_EXECUTOR_URL: "" }, tokenFile: "/t" }),
    { url: "ws://config:1", tokenFile: "/t" },
  );

  // A token file without a URL in the config applies to whichever executor is chosen.
  const tokenOnly = json({ executor: { token_file: "/only-token" } });
  assert.deepStrictEqual(resolveExecutor(tokenOnly, { env }), {
    url: "ws://env:2",
    tokenFile: "/only-token",
  });
  assert.equal(resolveExecutor(tokenOnly, { env: {} }), null);
  assert.equal(resolveExecutor(json({}), { env: {}, tokenFile: "/t" }), null);

  assertConfigError(
    () => resolveExecutor(json({}), { executor: "localhost:8765", env: {} }),
    "executor URL `localhost:8765` from --executor is not a ws:// or wss:// URL",
  );
  assertConfigError(
    () => resolveExecutor(json({}), { env: { EXECBRIDGE_EXECUTOR_URL: "https://x" } }),
    "from EXECBRIDGE_EXECUTOR_URL",
  );
});

Deno.test("validatePlacement: remote servers, stdio or http, need an executor", () => {
  const config = json({
    mcpServers: {
      here: { command: "a" },
      there: { command: "b", environment: "remote" },
      off: { url: "https://h/mcp", environment: "remote", disabled: true },
    },
  });
  validatePlacement(config, { url: "ws://box:1" });
  assertConfigError(
    () => validatePlacement(config, null),
    "mcp.json",
    "remote MCP server `there` requires an executor: " +
      "pass --executor URL or set EXECBRIDGE_EXECUTOR_URL",
  );

  const localOnly = json({ mcpServers: { here: { command: "a" }, web: { url: "https://h/mcp" } } });
  validatePlacement(localOnly, null);

  const remoteHttp = json({ mcpServers: { web: { url: "https://h/mcp", environment: "remote" } } });
  validatePlacement(remoteHttp, { url: "ws://box:1" });
  assertConfigError(
    () => validatePlacement(remoteHttp, null),
    "mcp.json",
    "remote MCP server `web` requires an executor",
  );

  // Only enabled servers are checked.
  const disabled = json({
    mcpServers: { there: { command: "b", environment: "remote", enabled: false } },
  });
  validatePlacement(disabled, null);
});
