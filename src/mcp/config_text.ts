/**
 * The text of a config file, parsed: JSON with the comments and trailing
 * commas VS Code allows in `mcp.json`, or TOML; errors name the file, and
 * the line and column where the parser stopped.
 *
 * @module
 */

// Deferred: the TOML parser is evaluated on the first TOML config parsed, not when the library's
// entry point loads, which `serve` does (docs/performance.md).
import defer * as toml from "smol-toml";
import { McpConfigError } from "./config_types.ts";

// ---------------------------------------------------------------------------
// text formats

/** Parses JSON, tolerating the comments and trailing commas VS Code allows. */
export function parseJsonText(text: string, source: string): unknown {
  try {
    return JSON.parse(stripJsonExtensions(text));
  } catch (error) {
    throw new McpConfigError(
      `${source}: invalid JSON: ${errorMessage(error)}; fix the syntax there`,
      { cause: error },
    );
  }
}

/** Parses TOML; the message carries smol-toml's line, column and excerpt. */
export function parseTomlText(text: string, source: string): unknown {
  try {
    return toml.parse(text);
  } catch (error) {
    if (error instanceof toml.TomlError) {
      const [first, ...rest] = error.message.split("\n\n");
      const reason = first.replace(/^Invalid TOML document:\s*/, "");
      const excerpt = rest.join("\n\n").trimEnd();
      throw new McpConfigError(
        `${source}: invalid TOML at line ${error.line}, column ${error.column}: ${reason}` +
          (excerpt ? `\n${excerpt}` : ""),
        { cause: error },
      );
    }
    throw new McpConfigError(`${source}: invalid TOML: ${errorMessage(error)}`, { cause: error });
  }
}

/**
 * Blanks out `//` and `/* *\/` comments and trailing commas outside strings,
 * keeping every other character (and so the parser's line and column) where
 * it was. Valid JSON comes back unchanged.
 */
function stripJsonExtensions(text: string): string {
  const blank = (s: string): string => s.replace(/[^\r\n]/g, " ");
  let withoutComments = "";
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === '"') {
      const end = stringEnd(text, i);
      withoutComments += text.slice(i, end);
      i = end;
    } else if (c === "/" && text[i + 1] === "/") {
      let end = text.indexOf("\n", i);
      if (end === -1) end = text.length;
      withoutComments += blank(text.slice(i, end));
      i = end;
    } else if (c === "/" && text[i + 1] === "*") {
      const close = text.indexOf("*/", i + 2);
      const end = close === -1 ? text.length : close + 2;
      withoutComments += blank(text.slice(i, end));
      i = end;
    } else {
      withoutComments += c;
      i++;
    }
  }
  let out = "";
  i = 0;
  while (i < withoutComments.length) {
    const c = withoutComments[i];
    if (c === '"') {
      const end = stringEnd(withoutComments, i);
      out += withoutComments.slice(i, end);
      i = end;
      continue;
    }
    if (c === ",") {
      let j = i + 1;
      while (j < withoutComments.length && /\s/.test(withoutComments[j])) j++;
      const next = withoutComments[j];
      out += next === "}" || next === "]" ? " " : ",";
    } else {
      out += c;
    }
    i++;
  }
  return out;
}

/** The index just past the JSON string that starts at `start` (a `"`). */
function stringEnd(text: string, start: number): number {
  let j = start + 1;
  while (j < text.length && text[j] !== '"' && text[j] !== "\n") {
    j += text[j] === "\\" ? 2 : 1;
  }
  return Math.min(j + 1, text.length);
}

/** The message of an error, or the thrown value as text. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
