// Job settings shared by launch, restart and coordinator: flag, else environment, else default.
import * as path from "node:path";
import { COMPRESS_ON_LEVEL, DEFAULT_COMPRESS_LEVEL, DEFAULT_PHASE_TIMEOUT_MS } from "../config.js";
import { UsageError } from "../errors.js";
import { optFlag, optString, parseIntOpt, parseSecondsOpt, type OptSpec, type Parsed } from "./args.js";

export const HELP_OPT: OptSpec = { name: "help", short: "h" };
export const INTERVAL_OPT: OptSpec = { name: "interval", short: "i", value: true };
export const CKPTDIR_OPT: OptSpec = { name: "ckptdir", value: true, aliases: ["ckpt-dir"] };
/** Hidden: per-phase checkpoint timeout (tests set it short). Also MANA_PHASE_TIMEOUT_MS. */
export const PHASE_TIMEOUT_OPT: OptSpec = { name: "phase-timeout-ms", value: true };

export function ckptDir(p: Parsed): string {
  return path.resolve(optString(p, "ckptdir") || process.env.MANA_CHECKPOINT_DIR || process.cwd());
}

/** -i / --interval, else MANA_CHECKPOINT_INTERVAL; undefined when neither is set. */
export function intervalSecs(cmd: string, p: Parsed): number | undefined {
  const v = optString(p, "interval");
  if (v !== undefined) return parseSecondsOpt(cmd, "-i (checkpoint interval in seconds)", v, 365 * 86400);
  const e = process.env.MANA_CHECKPOINT_INTERVAL;
  if (e !== undefined && e !== "") return parseSecondsOpt(cmd, "MANA_CHECKPOINT_INTERVAL", e, 365 * 86400);
  return undefined;
}

/** zstd level from --compress/--no-compress, else MANA_COMPRESS (0-19, yes/no), else the default. */
export function compressLevel(cmd: string, p: Parsed): number {
  if (optFlag(p, "no-compress")) return 0;
  if (optFlag(p, "compress")) return COMPRESS_ON_LEVEL;
  return compressFromEnv(cmd) ?? DEFAULT_COMPRESS_LEVEL;
}

export function compressFromEnv(cmd: string): number | undefined {
  const e = process.env.MANA_COMPRESS;
  if (e === undefined || e === "") return undefined;
  const v = e.trim().toLowerCase();
  if (["yes", "true", "on"].includes(v)) return COMPRESS_ON_LEVEL;
  if (["no", "false", "off"].includes(v)) return 0;
  return parseIntOpt(cmd, "MANA_COMPRESS (a zstd level 0-19, or yes/no)", v, 0, 19);
}

export function phaseTimeoutMs(cmd: string, p: Parsed): number {
  const v = optString(p, "phase-timeout-ms") ?? process.env.MANA_PHASE_TIMEOUT_MS;
  if (v === undefined || v === "") return DEFAULT_PHASE_TIMEOUT_MS;
  return parseIntOpt(cmd, "MANA_PHASE_TIMEOUT_MS", v, 1, 7 * 86400_000);
}

export function requireNoPositionals(cmd: string, p: Parsed): void {
  if (p.positionals.length) throw new UsageError(`unexpected argument ${JSON.stringify(p.positionals[0])} (see mana ${cmd} --help)`);
}
