/** What every command does with its common options. */

import assert from "node:assert/strict";
import { runCli } from "./support/cli.ts";

/** Each command, given `options` where its options go. */
const COMMANDS: { name: string; args(options: string[]): string[] }[] = [
  { name: "serve", args: (options) => ["serve", ...options] },
  {
    name: "bridge",
    args: (options) => ["bridge", "--executor", "ws://127.0.0.1:9", ...options, "--", "true"],
  },
  { name: "mcp", args: (options) => ["mcp", "list", "--config", "/none.toml", ...options] },
];

for (const command of COMMANDS) {
  Deno.test(`cli ${command.name}: an unknown --log-level is refused, naming the levels`, async () => {
    const output = await runCli(command.args(["--log-level", "eror"]));
    assert.equal(output.code, 1);
    assert.match(
      output.stderr,
      /--log-level must be one of error, warn, info, debug, got "eror"/,
    );
    assert.equal(output.stdout, "");
  });
}

Deno.test("cli serve: --help lists every limit with its default", async () => {
  const output = await runCli(["serve", "--help"]);
  assert.equal(output.code, 0);
  for (
    const line of [
      /--session-ttl-ms N\s+keep a detached session this long \(default 60000\)/,
      /--max-idle-workers N\s+.*\(default 256\)/,
      /--max-frame-bytes N\s+.*\(default 67108864\)/,
    ]
  ) {
    assert.match(output.stdout, line);
  }
});
