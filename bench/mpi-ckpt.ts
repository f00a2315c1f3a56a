// B4 for MPI jobs and the drain benchmark (DESIGN.md §7), with bench/mpi/ckptjob.c:
//   B4:    `--bcheckpoint` to committed for 4 ranks × 64 MiB of random bytes, idle between
//          small allreduces (coordinator-side time and the CLI's wall time);
//   drain: the same job and memory while every pair of ranks has 1 MiB messages in flight with
//          no receive posted most of the time (each step: Isend to all, 20 ms, Irecv, Waitall);
//          reported as the checkpoint time against the idle job's, measured in the same run.
// One job per (MPI, shape); the checkpoints are taken one after another in it, full images.
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Coordinator, manaProc, sleep, waitFor, type Proc } from '../test/lib/harness.js';
import { killJob, waitRanks } from '../test/lib/mpi.js';
import type { MpiRow } from './mpi.js';

const repo = join(import.meta.dirname, '..');
export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const have = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;

export const RANKS = 4;
export const MIB = Number(process.env.MANA_BENCH_B4_MIB ?? 64);

export interface Times { inner: number[]; wall: number[] }

/** Where the ranks run: this host (default), or other nodes (bench/cluster.ts). */
export interface Placement {
  name: string;
  /** launcher options before -n: hosts and network choice */
  launcherOpts: string[];
  env?: NodeJS.ProcessEnv;
  coordArgs?: string[];
}

export async function checkpoints(root: string, flavour: 'mpich' | 'openmpi', bin: string, shape: 'idle' | 'inflight', reps: number, where?: Placement): Promise<Times> {
  const dir = join(root, `${flavour}-${shape}${where ? `-${where.name}` : ''}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const c = await new Coordinator(join(dir, 'ckpt'), ['--full-every', '1', ...(where?.coordArgs ?? [])]).start();
  let job: Proc | undefined;
  const t: Times = { inner: [], wall: [] };
  try {
    job = manaProc(['launch', '--join', '--coord-port', String(c.port), '--ckptdir', c.ckptdir, '--no-compress', '--',
      `mpirun.${flavour}`, ...(where?.launcherOpts ?? []), '-n', String(RANKS), bin, String(MIB), '3600', shape], { cwd: dir, ...(where?.env ? { env: where.env } : {}) });
    await waitFor('ckptjob ready', () => (job!.stdout.includes('MANA_BENCH ready') ? true : undefined), 300_000);
    await waitRanks(c, RANKS, 120_000);
    for (let i = -1; i < reps; i++) { // i = -1: warm-up (first images pay page-cache allocation)
      await sleep(50 + Math.floor(Math.random() * 100)); // a different moment of the step each time
      const t0 = process.hrtime.bigint();
      const d = await c.command(['--bcheckpoint', '--json'], { timeoutMs: 600_000 });
      const wall = Number(process.hrtime.bigint() - t0) / 1e9;
      if (d.code !== 0) throw new Error(`bcheckpoint of the ${flavour} ${shape} job failed: ${d.stderr.trim()}`);
      const r = JSON.parse(d.stdout) as { millis?: number; generation: number };
      if (i >= 0) {
        if (r.millis !== undefined) t.inner.push(r.millis / 1000);
        t.wall.push(wall);
      }
      // keep the disk from filling: only the newest generation stays
      rmSync(join(c.ckptdir, `gen-${String(r.generation - 1).padStart(6, '0')}`), { recursive: true, force: true });
    }
  } finally {
    if (job) await killJob(c, job);
    await c.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  return t;
}

export async function mpiCkptBench(root: string, reps: number, want: (id: string) => boolean, rows: MpiRow[]): Promise<void> {
  const dir = join(root, 'mpi-ckpt');
  mkdirSync(dir, { recursive: true });
  const bin = join(dir, 'ckptjob');
  const cc = spawnSync(join(repo, 'bin', 'mana'), ['mpicc', '-O2', '-o', bin, join(repo, 'bench', 'mpi', 'ckptjob.c')], { encoding: 'utf8' });
  if (cc.status !== 0) throw new Error(`mana mpicc ckptjob.c failed: ${cc.stderr}`);
  for (const f of ['mpich', 'openmpi'] as const) {
    if (!have(`mpirun.${f}`)) continue;
    const name = f === 'mpich' ? 'MPICH' : 'Open MPI';
    const idle = await checkpoints(dir, f, bin, 'idle', reps);
    if (want('B4')) {
      rows.push({ id: 'B4', what: `${name}: --bcheckpoint ${RANKS} ranks × ${MIB} MiB, suspend → committed`,
        value: `${median(idle.inner).toFixed(3)} s`, baseline: '—', ratio: '—', bar: '< 1 s' });
      rows.push({ id: 'B4', what: `${name}: --bcheckpoint ${RANKS} ranks × ${MIB} MiB, CLI wall time`,
        value: `${median(idle.wall).toFixed(3)} s`, baseline: '—', ratio: '—', bar: '< 1 s' });
    }
    if (want('drain')) {
      const busy = await checkpoints(dir, f, bin, 'inflight', reps);
      rows.push({ id: 'drain', what: `${name}: --bcheckpoint ${RANKS} ranks × ${MIB} MiB, 1 MiB messages in flight between all pairs`,
        value: `${median(busy.inner).toFixed(3)} s`, baseline: `idle job ${median(idle.inner).toFixed(3)} s`,
        ratio: (median(busy.inner) / median(idle.inner)).toFixed(2), bar: '—' });
    }
  }
  rmSync(dir, { recursive: true, force: true });
}
