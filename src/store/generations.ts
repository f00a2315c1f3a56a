// Generations on disk (DESIGN invariant 7: a generation is either whole or absent).
//   <ckptdir>/gen-NNNNNN/            committed generation (manifest.json + rank-*.img)
//   <ckptdir>/.gen-NNNNNN.partial-R/ being written; never matches GEN_RE, removed on abort
//   <ckptdir>/latest -> gen-NNNNNN   replaced atomically (rename) after the rename is durable
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { writeFileAtomic } from "../fs-atomic.js";
import { MANIFEST_NAME, type Manifest } from "./manifest.js";

export const GEN_RE = /^gen-(\d{6})$/;
export const LATEST = "latest";
export const RESTART_SCRIPT = "mana_restart_script.sh";

export function genDirName(gen: number): string {
  return `gen-${String(gen).padStart(6, "0")}`;
}

/** Committed generation numbers in ckptdir, ascending. */
export function listGenerations(ckptDir: string): number[] {
  let names: string[];
  try {
    names = fs.readdirSync(ckptDir);
  } catch {
    return [];
  }
  const gens: number[] = [];
  for (const n of names) {
    const m = GEN_RE.exec(n);
    if (m) gens.push(Number(m[1]));
  }
  return gens.sort((a, b) => a - b);
}

export function nextGeneration(ckptDir: string, atLeast = 0): number {
  const gens = listGenerations(ckptDir);
  const max = gens.length ? (gens[gens.length - 1] as number) : 0;
  return Math.max(max, atLeast) + 1;
}

export async function createPartialDir(ckptDir: string, gen: number): Promise<string> {
  await fsp.mkdir(ckptDir, { recursive: true });
  const dir = path.join(ckptDir, `.${genDirName(gen)}.partial-${randomBytes(4).toString("hex")}`);
  await fsp.mkdir(dir, { mode: 0o700 });
  return dir;
}

export async function removeDirQuietly(dir: string): Promise<void> {
  await fsp.rm(dir, { recursive: true, force: true }).catch(() => undefined);
}

async function fsyncPath(p: string): Promise<void> {
  const fh = await fsp.open(p, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export interface CommitResult {
  dir: string;
  totalBytes: number;
}

/**
 * Makes a partial dir a committed generation: manifest, fsync of every file and the dir,
 * rename, fsync of ckptdir, then `latest`. beforeRename: a test hook's pause point. Throws on any failure (the caller removes the
 * partial dir; a failure after the rename leaves a complete generation, which is fine).
 */
export async function commitGeneration(ckptDir: string, partialDir: string, manifest: Manifest, beforeRename?: () => Promise<void>): Promise<CommitResult> {
  const manifestPath = path.join(partialDir, MANIFEST_NAME);
  await fsp.writeFile(manifestPath, JSON.stringify(manifest, null, 2) + "\n", { mode: 0o600 });
  let totalBytes = 0;
  for (const name of await fsp.readdir(partialDir)) {
    const p = path.join(partialDir, name);
    totalBytes += (await fsp.stat(p)).size;
    await fsyncPath(p);
  }
  await fsyncPath(partialDir);
  await beforeRename?.();
  const finalDir = path.join(ckptDir, genDirName(manifest.generation));
  await fsp.rename(partialDir, finalDir);
  await fsyncPath(ckptDir);
  await updateLatest(ckptDir, genDirName(manifest.generation));
  return { dir: finalDir, totalBytes };
}

/** Points <ckptdir>/latest at target with a symlink to a temp name renamed over it. */
export async function updateLatest(ckptDir: string, target: string): Promise<void> {
  const tmp = path.join(ckptDir, `.latest.tmp-${randomBytes(4).toString("hex")}`);
  await fsp.symlink(target, tmp);
  try {
    await fsp.rename(tmp, path.join(ckptDir, LATEST));
  } catch (err) {
    await fsp.unlink(tmp).catch(() => undefined);
    throw err;
  }
  await fsyncPath(ckptDir);
}

function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** <ckptdir>/mana_restart_script.sh: runnable as is, passes its arguments on to mana restart. */
export async function writeRestartScript(ckptDir: string, manaBin: string, jobId: string): Promise<string> {
  const script = path.join(ckptDir, RESTART_SCRIPT);
  const latest = path.join(ckptDir, LATEST);
  const text = [
    "#!/bin/sh",
    `# Written by the mana coordinator for job ${jobId.replace(/\n/g, " ")}.`,
    "# Restarts the newest committed checkpoint generation; arguments go to `mana restart`",
    "# (e.g. --coord-port P, --allow-missing-files; for MPI jobs --mpi mpich|openmpi, --hostfile F).",
    `exec ${shQuote(manaBin)} restart ${shQuote(latest)} "$@"`,
    "",
  ].join("\n");
  // fsynced: after a crash the script must be whole or the previous one, like `latest`
  writeFileAtomic(script, text, { mode: 0o755, fsync: true });
  return script;
}

const PARTIAL_RE = /^\.gen-\d{6}\.partial-[0-9a-f]+$/;
const LATEST_TMP_RE = /^\.latest\.tmp-[0-9a-f]+$/;

/**
 * Removes what an earlier coordinator left behind when it died mid-round: partial generation
 * dirs and temp `latest` links older than olderThanMs (younger ones may belong to a coordinator
 * still running on the same dir). Returns the removed paths.
 */
export async function removeStale(ckptDir: string, olderThanMs: number, log: (msg: string) => void): Promise<string[]> {
  let names: string[];
  try {
    names = await fsp.readdir(ckptDir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  const now = Date.now();
  for (const n of names) {
    if (!PARTIAL_RE.test(n) && !LATEST_TMP_RE.test(n)) continue;
    const p = path.join(ckptDir, n);
    try {
      const st = await fsp.lstat(p);
      if (now - st.mtimeMs < olderThanMs) continue;
      await fsp.rm(p, { recursive: true, force: true });
      log(`removed ${p}, left by an interrupted checkpoint`);
      removed.push(p);
    } catch (err) {
      log(`could not remove ${p}: ${(err as Error).message}`);
    }
  }
  return removed;
}
