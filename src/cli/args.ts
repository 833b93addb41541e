/**
 * A small command-line parser: `--name value`, `--name=value`, boolean
 * switches, repeatable options, and `--` ending the options.
 *
 * @module
 */

/** What a command accepts. */
export interface ArgSpec {
  /** Options that take a value (last one wins). */
  string?: readonly string[];
  /** Options that take a value and may repeat. */
  multiple?: readonly string[];
  /** Switches without a value. */
  boolean?: readonly string[];
}

/** Parsed arguments. */
export interface ParsedArgs {
  /** Single-valued options. */
  strings: Map<string, string>;
  /** Repeated options, in order. */
  lists: Map<string, string[]>;
  /** Switches that were given. */
  flags: Set<string>;
  /** Positional arguments before `--`. */
  positional: string[];
  /** Everything after `--`. */
  rest: string[];
}

/** Parses `args`; throws a readable error for unknown options or missing values. */
export function parseArgs(args: readonly string[], spec: ArgSpec): ParsedArgs {
  const parsed: ParsedArgs = {
    strings: new Map(),
    lists: new Map(),
    flags: new Set(),
    positional: [],
    rest: [],
  };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--") {
      parsed.rest = args.slice(i + 1);
      break;
    }
    if (!arg.startsWith("--") || arg === "-") {
      parsed.positional.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const name = arg.slice(2, eq === -1 ? undefined : eq);
    if (spec.boolean?.includes(name)) {
      if (eq !== -1) throw new Error(`--${name} takes no value`);
      parsed.flags.add(name);
      continue;
    }
    const single = spec.string?.includes(name) ?? false;
    const multiple = spec.multiple?.includes(name) ?? false;
    if (!single && !multiple) throw new Error(`unknown option --${name}`);
    let value: string;
    if (eq !== -1) {
      value = arg.slice(eq + 1);
    } else {
      if (i + 1 >= args.length) throw new Error(`--${name} needs a value`);
      value = args[++i];
    }
    if (single) parsed.strings.set(name, value);
    else parsed.lists.set(name, [...(parsed.lists.get(name) ?? []), value]);
  }
  return parsed;
}

/** Reads an option as a non-negative integer; throws naming the option otherwise. */
export function intOption(parsed: ParsedArgs, name: string): number | undefined {
  const value = parsed.strings.get(name);
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) {
    throw new Error(`--${name} must be a non-negative integer, got ${JSON.stringify(value)}`);
  }
  return n;
}
