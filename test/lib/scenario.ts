// The checkpoint -> SIGKILL -> restart scenario shared by the end-to-end tests.
import { readFileSync, readlinkSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { SpawnOptions } from 'node:child_process';
import {
  Coordinator, isLive, manaProc, runNative, sleep, testBin, waitFor, type Proc, type ProcInfo,
} from './harness.js';

export const STEPS = 600;
export const SLEEP_MS = 10;

export interface Reference {
  code: number | null;
  out: Buffer;
}

/** The uninterrupted run, natively, without mana. */
export async function reference(
  dir: string, args: string[] = [], opts: SpawnOptions = {}, steps = STEPS, name = 'reference.out',
): Promise<Reference> {
  const out = join(dir, name);
  const d = await runNative(testBin('memloop'), [out, String(steps), String(SLEEP_MS), ...args], opts);
  return { code: d.code, out: readFileSync(out) };
}

/** Waits for one live process whose pid is not among `gone`. */
export function waitNewProc(c: Coordinator, gone: number[], timeoutMs = 30_000): Promise<ProcInfo> {
  return waitFor('a live process to register', async () => {
    const l = await c.list().catch((): ProcInfo[] => []);
    const p = l.find((x) => isLive(x) && !gone.includes(x.pid));
    return p;
  }, timeoutMs, 50);
}

export const randomMs = (lo: number, hi: number): number => lo + Math.floor(Math.random() * (hi - lo));

export function latestGeneration(ckptdir: string): number {
  const l = join(ckptdir, 'latest');
  if (!existsSync(l)) return 0;
  const m = /gen-(\d+)/.exec(readlinkSync(l));
  return m ? Number(m[1]) : 0;
}

export interface CycleResult {
  finalCode: number | null;
  out: Buffer;
  generations: number[];
  stderr: string;
}

/**
 * Launches memloop under mana, then `cycles` times: checkpoint at a random moment with
 * --bcheckpoint, SIGKILL the process, restart it. Finally lets it run to the end.
 */
export async function checkpointKillRestart(
  c: Coordinator,
  workdir: string,
  cycles: number,
  opts: SpawnOptions = {},
  programArgs: string[] = [],
): Promise<CycleResult> {
  const out = join(workdir, 'mana.out');
  const r = await cycleProgram(c, workdir,
    [testBin('memloop'), out, String(STEPS), String(SLEEP_MS), ...programArgs], { cycles, spawn: opts });
  return { ...r, out: readFileSync(out) };
}

export interface ProgramCycleOptions {
  cycles?: number;
  /** extra `mana launch` options (before `--`) */
  launchArgs?: string[];
  /** extra `mana restart` options */
  restartArgs?: string[];
  spawn?: SpawnOptions;
  /** random wait before each checkpoint, [lo, hi) ms */
  waitMs?: [number, number];
}

/** Starts `argv` under `mana launch --join` of coordinator c. */
export function launchProgram(c: Coordinator, workdir: string, argv: string[], launchArgs: string[] = [], opts: SpawnOptions = {}): Proc {
  return manaProc(
    ['launch', '--join', '--coord-port', String(c.port), '--ckptdir', c.ckptdir, ...launchArgs, '--', ...argv],
    { cwd: workdir, ...opts },
  );
}

/**
 * checkpointKillRestart for any program: launch argv, then `cycles` times checkpoint at a
 * random moment, SIGKILL, `mana restart`; finally let it run to the end. The caller reads the
 * program's own output files.
 */
export async function cycleProgram(
  c: Coordinator, workdir: string, argv: string[], o: ProgramCycleOptions = {},
): Promise<Omit<CycleResult, 'out'>> {
  const opts = o.spawn ?? {};
  const [lo, hi] = o.waitMs ?? [100, 500];
  let cur = launchProgram(c, workdir, argv, o.launchArgs ?? [], opts);
  const gone: number[] = [];
  const generations: number[] = [];
  let stderr = '';
  for (let i = 0; i < (o.cycles ?? 1); i++) {
    const p = await waitNewProc(c, gone);
    await sleep(randomMs(lo, hi));
    const r = await c.bcheckpoint();
    generations.push(r.generation);
    process.kill(p.pid, 'SIGKILL');
    gone.push(p.pid);
    const d = await cur.done;
    stderr += d.stderr;
    if (d.code !== 137 && d.signal !== 'SIGKILL') {
      throw new Error(`killed run ended with ${d.code}/${d.signal}, not SIGKILL: ${d.stderr}`);
    }
    cur = manaProc(['restart', c.ckptdir, '--join', '--coord-port', String(c.port), ...(o.restartArgs ?? [])], { cwd: workdir, ...opts });
  }
  const d = await cur.done;
  stderr += d.stderr;
  return { finalCode: d.code, generations, stderr };
}

/** A checkpoint that is expected to fail: its one-line error (from --bcheckpoint --json). */
export async function failedCheckpoint(c: Coordinator): Promise<string> {
  const d = await c.command(['--bcheckpoint', '--json'], { timeoutMs: 120_000 });
  if (d.code === 0) throw new Error(`the checkpoint succeeded, a failure was expected: ${d.stdout}`);
  const v = JSON.parse(d.stdout) as { ok?: boolean; error?: string };
  return v.error ?? '';
}
