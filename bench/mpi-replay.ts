// The replay benchmark (docs/benchmarks.md, docs/mpi-checkpoint.md "Pruning the replay log"),
// with bench/mpi/churnjob.c: a job of 4 ranks that made and freed N communicators and N
// datatypes is checkpointed, SIGKILLed and restarted on the same MPI; reported: the restart's
// wall time from `mana restart` to every rank running again (restore → resumed), the records
// each rank replayed and the replay's own time (MANA_MPI_REPLAY_STATS=1); and the checkpoint
// that pruned the log (CLI wall time, and the pruning's own time). "unpruned" is the
// same job with MANA_MPI_REPLAY_PRUNE=0, i.e. the log as it was before pruning existed.
// MANA_BENCH_REPLAY_N=1000,4000 sets the N (default 1000,4000).
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Coordinator, manaProc, Proc, waitFor, type ProcInfo } from '../test/lib/harness.js';
import { killJob, waitRanks } from '../test/lib/mpi.js';
import type { MpiRow } from './mpi.js';

const repo = join(import.meta.dirname, '..');
const RANKS = 4;
const have = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;

interface Result { wall: number; records: number; replayMs: number; ckpt: number; pruneMs: number; error?: string }

async function once(dir: string, bin: string, flavour: 'mpich' | 'openmpi', n: number, prune: boolean): Promise<Result> {
  const work = join(dir, `${flavour}-${n}-${prune ? 'pruned' : 'unpruned'}`);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const env = { ...process.env, MANA_MPI_REPLAY_STATS: '1', MANA_MPI_REPLAY_PRUNE: prune ? '1' : '0' };
  const c = await new Coordinator(join(work, 'ckpt')).start();
  let job: Proc | undefined;
  try {
    job = manaProc(['launch', '--join', '--coord-port', String(c.port), '--ckptdir', c.ckptdir, '--',
      `mpirun.${flavour}`, '-n', String(RANKS), bin, String(n), '3600'], { cwd: work, env });
    const launched = job;
    await waitFor('churnjob ready', () => (launched.stdout.includes('MANA_BENCH ready') ? true : undefined), 600_000, 50);
    const listed = await waitRanks(c, RANKS, 120_000);
    const c0 = process.hrtime.bigint();
    const g = await c.bcheckpoint();
    const ckpt = Number(process.hrtime.bigint() - c0) / 1e9;
    await killJob(c, job, listed);
    const pruned = [...launched.stderr.matchAll(/agreement rounds, ([\d.]+) ms\)/g)].map((m) => Number(m[1]));
    const pruneMs = pruned.length ? Math.max(...pruned) : 0;
    const t0 = process.hrtime.bigint();
    job = new Proc(process.execPath, [join(repo, 'bin', 'mana'), 'restart', g.dir, '--join', '--coord-port', String(c.port)], { cwd: work, env });
    const restarted = job;
    let ended = false;
    void restarted.done.then(() => { ended = true; });
    await waitFor('the restarted ranks', async () => {
      if (ended) return true;
      const l = (await c.list().catch(() => [])) as (ProcInfo & { launcher?: boolean })[];
      const ranks = l.filter((p) => !p.launcher);
      return ranks.length === RANKS && ranks.every((p) => p.connected && p.state === 'running') ? true : undefined;
    }, 600_000, 20);
    const wall = Number(process.hrtime.bigint() - t0) / 1e9;
    const lines = [...restarted.stderr.matchAll(/replayed (\d+) records in ([\d.]+) ms/g)];
    if (ended || lines.length < RANKS) {
      return { wall, records: 0, replayMs: 0, ckpt, pruneMs, error: restarted.stderr.trim().split('\n').filter((l) => /mana|Error|error/.test(l)).slice(-1)[0] ?? 'the restart failed' };
    }
    return { wall, records: Math.max(...lines.map((m) => Number(m[1]))), replayMs: Math.max(...lines.map((m) => Number(m[2]))), ckpt, pruneMs };
  } finally {
    if (job) await killJob(c, job);
    await c.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

export async function mpiReplayBench(root: string, rows: MpiRow[]): Promise<void> {
  const dir = join(root, 'mpi-replay');
  mkdirSync(dir, { recursive: true });
  const bin = join(dir, 'churnjob');
  const cc = spawnSync(join(repo, 'bin', 'mana'), ['mpicc', '-O2', '-o', bin, join(repo, 'bench', 'mpi', 'churnjob.c')], { encoding: 'utf8' });
  if (cc.status !== 0) throw new Error(`mana mpicc churnjob.c failed: ${cc.stderr}`);
  const ns = (process.env.MANA_BENCH_REPLAY_N ?? '1000,4000').split(',').map(Number);
  for (const f of ['mpich', 'openmpi'] as const) {
    if (!have(`mpirun.${f}`)) continue;
    const name = f === 'mpich' ? 'MPICH' : 'Open MPI';
    for (const n of ns) {
      const after = await once(dir, bin, f, n, true);
      const before = await once(dir, bin, f, n, false);
      const show = (r: Result): string => (r.error ? `fails: ${r.error}` : `${r.wall.toFixed(3)} s (${r.records} records, replay ${r.replayMs.toFixed(0)} ms)`);
      rows.push({ id: 'replay', what: `${name}: the checkpoint after ${n} steps (CLI wall time; pruning its log)`,
        value: `${after.ckpt.toFixed(3)} s (prune ${after.pruneMs.toFixed(1)} ms)`, baseline: `unpruned ${before.ckpt.toFixed(3)} s`, ratio: (after.ckpt / before.ckpt).toFixed(2), bar: '—' });
      rows.push({ id: 'replay', what: `${name}: restart after ${n} × (Comm_dup + Comm_free, Type_vector + Type_free), restore → resumed`,
        value: show(after), baseline: `unpruned ${show(before)}`, ratio: after.error || before.error ? '—' : (after.wall / before.wall).toFixed(2), bar: '—' });
    }
  }
  rmSync(dir, { recursive: true, force: true });
}
