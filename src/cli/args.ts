// A small, strict option parser: DMTCP-style flags, "--opt value" and "--opt=value", "--" ends
// options, and (for launch) the first non-option word starts the program's own argv.
import { UsageError } from "../errors.js";

export interface OptSpec {
  /** long name without dashes, e.g. "coord-port" */
  name: string;
  /** short alias without dash, e.g. "i" */
  short?: string;
  /** true: takes a value */
  value?: boolean;
  /** other long names accepted for this option */
  aliases?: string[];
}

export interface Parsed {
  opts: Map<string, string | true>;
  positionals: string[];
}

export function parseArgs(cmd: string, argv: string[], specs: OptSpec[], stopAtPositional = false): Parsed {
  const byLong = new Map<string, OptSpec>();
  const byShort = new Map<string, OptSpec>();
  for (const s of specs) {
    byLong.set(s.name, s);
    for (const a of s.aliases ?? []) byLong.set(a, s);
    if (s.short) byShort.set(s.short, s);
  }
  const opts = new Map<string, string | true>();
  const positionals: string[] = [];
  let i = 0;
  for (; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === "--") {
      i++;
      break;
    }
    if (arg.startsWith("-") && arg !== "-") {
      let name: string;
      let inline: string | undefined;
      let spec: OptSpec | undefined;
      if (arg.startsWith("--")) {
        const eq = arg.indexOf("=");
        name = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
        inline = eq >= 0 ? arg.slice(eq + 1) : undefined;
        spec = byLong.get(name);
      } else {
        name = arg.slice(1);
        spec = byShort.get(name) ?? byLong.get(name); // DMTCP also accepts single-dash long names
      }
      if (!spec) throw new UsageError(`unknown option ${arg} (see mana ${cmd} --help)`);
      if (spec.value) {
        let v = inline;
        if (v === undefined) {
          if (i + 1 >= argv.length) throw new UsageError(`option ${arg} needs a value (see mana ${cmd} --help)`);
          v = argv[++i] as string;
        }
        opts.set(spec.name, v);
      } else {
        if (inline !== undefined) throw new UsageError(`option --${name} takes no value`);
        opts.set(spec.name, true);
      }
      continue;
    }
    positionals.push(arg);
    if (stopAtPositional) {
      i++;
      break;
    }
  }
  positionals.push(...argv.slice(i));
  return { opts, positionals };
}

export function optString(p: Parsed, name: string): string | undefined {
  const v = p.opts.get(name);
  return typeof v === "string" ? v : undefined;
}

export function optFlag(p: Parsed, name: string): boolean {
  return p.opts.get(name) === true;
}

/** Seconds for checkpoint intervals: 0 (off) or a decimal number of at least 0.1. */
export function parseSecondsOpt(cmd: string, what: string, v: string, max: number): number {
  if (!/^\d+(\.\d+)?$/.test(v.trim())) throw new UsageError(`${what} must be a number of seconds, not ${JSON.stringify(v)} (see mana ${cmd} --help)`);
  const n = Number(v.trim());
  if ((n !== 0 && n < 0.1) || n > max) throw new UsageError(`${what} must be 0 (off) or between 0.1 and ${max} seconds, not ${n}`);
  return n;
}

export function parseIntOpt(cmd: string, what: string, v: string, min: number, max: number): number {
  if (!/^\d+$/.test(v.trim())) throw new UsageError(`${what} must be a whole number, not ${JSON.stringify(v)} (see mana ${cmd} --help)`);
  const n = Number(v.trim());
  if (n < min || n > max) throw new UsageError(`${what} must be between ${min} and ${max}, not ${n}`);
  return n;
}
