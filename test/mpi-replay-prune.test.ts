// A restart replays only the MPI calls whose objects are still needed (issue 5, week-long
// jobs): test/programs/mpi/churn.c makes and frees a communicator (MPI_Comm_dup) and a
// datatype (MPI_Type_vector) in every step, and every 50 steps a split, a communicator made
// from a group and an intercommunicator merged, all freed again; a few objects live on made
// from freed ones. Real launchers, real ranks, real coordinators:
// 1. launch on MPICH / Open MPI, checkpoint mid-run, SIGKILL, restart on the other MPI: the
//    result equals an uninterrupted native run byte for byte; every rank's log was cut at the
//    checkpoint (hundreds of records dropped, a few dozen kept) and the restart replays only
//    those (MANA_MPI_REPLAY_STATS=1 makes each rank say how many);
// 2. a chain MPICH → Open MPI → MPICH (checkpoint, SIGKILL, restart, twice): the same, and the
//    second restart replays no more than the first;
// 3. test/programs/mpi/asym.c: an intercommunicator that the even side frees at once and the
//    odd side keeps: two rounds of agreement at the checkpoint, the native result after a
//    restart on the other MPI.
import t, { type Test } from 'tap';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Coordinator, ensureBuilt, mana, manaBin, Proc, removeDir, repo, run, sleep, tempDir, waitFor } from './lib/harness.js';
import { killJob, launchJob, launcherOf, mpiccOf, mpiSkip, nativeEnv, waitRanks, type Flavour } from './lib/mpi.js';

ensureBuilt();

const skip = mpiSkip(['mpicc.openmpi', 'mpirun.mpich', 'mpirun.openmpi']);
// the ranks inherit it from mana launch (and keep it in their images)
process.env.MANA_MPI_REPLAY_STATS = '1';

const RANKS = 4;
interface Program {
  name: string;
  steps: number;
  pauseMs: number;
  /** records a rank may keep: the long-lived objects, their parents, and what a step holds */
  keptMax: number;
  /** records each rank must have dropped at the first checkpoint */
  droppedMin: number;
  /** agreement rounds each rank must have needed at the first checkpoint */
  roundsMin: number;
}
const CHURN: Program = { name: 'churn', steps: 1200, pauseMs: 2, keptMax: 40, droppedMin: 100, roundsMin: 1 };
// the even side replays an MPI_Intercomm_create only the odd side needs, and with it what its
// local communicator was made from: a second round of agreement finds that out
const ASYM: Program = { name: 'asym', steps: 300, pauseMs: 10, keptMax: 12, droppedMin: 0, roundsMin: 2 };

const dir = tempDir('mpi-replay-prune');
t.teardown(() => removeDir(dir));
const bin = (p: Program): string => join(dir, p.name);
const refs = new Map<string, Buffer>();

t.before(async () => {
  if (skip) return;
  for (const p of [CHURN, ASYM]) {
    const src = join(repo, 'test', 'programs', 'mpi', `${p.name}.c`);
    const b = await mana(['mpicc', '-O2', '-Wall', '-Wextra', '-Werror', '-o', bin(p), src], { timeoutMs: 180_000 });
    if (b.code !== 0) throw new Error(`mana mpicc ${p.name}.c failed: ${b.stderr}`);
    const nat = join(dir, `${p.name}-native`);
    const n = await run(mpiccOf('openmpi'), ['-O2', '-o', nat, src], { timeoutMs: 180_000 });
    if (n.code !== 0) throw new Error(`${mpiccOf('openmpi')} ${p.name}.c failed: ${n.stderr}`);
    const out = join(dir, `${p.name}-ref.out`);
    const r = await run(launcherOf('openmpi'), ['-n', String(RANKS), nat, out, String(p.steps), '0'], { timeoutMs: 120_000, env: nativeEnv('openmpi'), cwd: dir }); // its data files go there
    if (r.code !== 0 || !existsSync(out)) throw new Error(`the native run of ${p.name} failed: ${r.stderr}`);
    refs.set(p.name, readFileSync(out));
  }
});

const tail = (s: string): string => s.trim().split('\n').slice(-20).join('\n');

/** rank → [kept, dropped, agreement rounds] from a job's checkpoint lines (the last one wins) */
function pruneLines(stderr: string): Map<number, [number, number, number]> {
  const m = new Map<number, [number, number, number]>();
  for (const x of stderr.matchAll(/MPI replay log of rank (\d+): (\d+) records kept, (\d+) dropped at this checkpoint \((\d+) agreement rounds/g))
    m.set(Number(x[1]), [Number(x[2]), Number(x[3]), Number(x[4])]);
  return m;
}

/** rank → communicators whose collectives a checkpoint still counts (the last one wins) */
function commLines(stderr: string): Map<number, number> {
  const m = new Map<number, number>();
  for (const x of stderr.matchAll(/MPI checkpoint of rank (\d+): collectives counted on (\d+) communicators/g)) m.set(Number(x[1]), Number(x[2]));
  return m;
}

/** rank → records replayed at the restart */
function replayLines(stderr: string): Map<number, number> {
  const m = new Map<number, number>();
  for (const x of stderr.matchAll(/MPI restart of rank (\d+) replayed (\d+) records/g)) m.set(Number(x[1]), Number(x[2]));
  return m;
}

function restart(c: Coordinator, gen: string, target: Flavour, cwd: string): Proc {
  return new Proc(process.execPath, [manaBin, 'restart', gen, '--join', '--coord-port', String(c.port), '--mpi', target], { cwd });
}

async function chain(t: Test, p: Program, flavours: Flavour[], delayMs: number): Promise<void> {
  const work = join(dir, `${p.name}-${flavours.join('-')}`);
  mkdirSync(work, { recursive: true });
  const ckpt = join(work, 'ckpt');
  const out = join(work, 'result.out');
  const c = await new Coordinator(ckpt).start();
  t.teardown(() => c.stop());
  let job = launchJob(c, ckpt, [launcherOf(flavours[0]), '-n', String(RANKS), bin(p), out, String(p.steps), String(p.pauseMs)], work);
  let replayed = Infinity;
  for (let i = 1; i < flavours.length; i++) {
    const listed = await waitRanks(c, RANKS, 120_000);
    await sleep(delayMs);
    let g;
    try {
      g = await c.bcheckpoint();
    } catch (e) {
      t.fail(`checkpoint ${i}: ${(e as Error).message}\njob: ${tail(job.stderr)}`);
      await killJob(c, job, listed);
      return;
    }
    await killJob(c, job, listed);
    // the lines of this checkpoint (a restarted job's stderr also has its restart's)
    const lines = pruneLines(job.stderr);
    t.equal(lines.size, RANKS, `checkpoint ${i} on ${flavours[i - 1]}: every rank pruned its replay log${lines.size === RANKS ? '' : `\n${tail(job.stderr)}`}`);
    const comms = commLines(job.stderr);
    t.equal(comms.size, RANKS, `checkpoint ${i}: every rank says how many communicators it counts collectives on`);
    t.ok(Math.max(...comms.values()) <= p.keptMax, `checkpoint ${i}: freed communicators are forgotten (${[...comms.values()].join(', ')} left, ≤ ${p.keptMax})`);
    for (const [rank, [kept, dropped, rounds]] of lines) {
      t.ok(kept <= p.keptMax, `rank ${rank} keeps ${kept} records (≤ ${p.keptMax})`);
      if (i === 1) t.ok(dropped >= p.droppedMin, `rank ${rank} dropped ${dropped} records of objects freed before checkpoint ${i} (≥ ${p.droppedMin})`);
      if (i === 1) t.ok(rounds >= p.roundsMin, `rank ${rank}: ${rounds} agreement rounds (≥ ${p.roundsMin})`);
    }
    rmSync(out, { force: true });
    job = restart(c, g.dir, flavours[i], work);
    const restarted = job;
    let ended = false;
    void restarted.done.then(() => { ended = true; });
    // each rank says it once its replay is done; a job that ended without saying it failed
    await waitFor(`the ${RANKS} ranks' replay lines`, async () => (replayLines(restarted.stderr).size === RANKS || ended ? true : undefined), 120_000, 100)
      .catch(async (e: Error) => { t.fail(`${e.message}
${tail(restarted.stderr)}`); await killJob(c, restarted); });
    if (ended && replayLines(restarted.stderr).size < RANKS) t.comment(`the restarted job ended: ${tail(restarted.stderr)}`);
    const counts = replayLines(job.stderr);
    t.equal(counts.size, RANKS, `restart ${i} on ${flavours[i]}: every rank says how much it replayed${counts.size === RANKS ? '' : `\n${tail(job.stderr)}`}`);
    const most = Math.max(...counts.values());
    t.ok(most <= p.keptMax, `restart ${i}: at most ${most} records replayed per rank (≤ ${p.keptMax}), not one per object ever made`);
    for (const [rank, n] of counts) t.equal(n, lines.get(rank)?.[0], `rank ${rank} replays the ${n} records its image kept`);
    t.ok(most <= replayed + 5, `restart ${i} replays no more than the one before (${most})`);
    replayed = most;
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const d = await Promise.race([job.done, new Promise<undefined>((r) => { timer = setTimeout(() => r(undefined), 180_000); })]);
  clearTimeout(timer);
  if (!d) await killJob(c, job);
  t.equal(d?.code, 0, `the last restart (on ${flavours[flavours.length - 1]}) runs to the end and exits 0${d && d.code !== 0 ? `: ${tail(d.stderr)}` : ''}`);
  const got = existsSync(out) ? readFileSync(out) : undefined;
  const ref = refs.get(p.name) ?? Buffer.alloc(0);
  t.ok(got?.equals(ref), `${flavours.join(' → ')}: the result equals the uninterrupted native run${got ? (got.equals(ref) ? '' : `\n got: ${got}\nwant: ${ref}`) : ' (no result file)'}`);
  removeDir(work);
}

t.test('churn checkpointed on MPICH, restarted on Open MPI: bounded replay, native result', { skip }, (t) => chain(t, CHURN, ['mpich', 'openmpi'], 1500));
t.test('churn checkpointed on Open MPI, restarted on MPICH: bounded replay, native result', { skip }, (t) => chain(t, CHURN, ['openmpi', 'mpich'], 1500));
t.test('churn MPICH → Open MPI → MPICH (two checkpoints, SIGKILL, restarts)', { skip }, (t) => chain(t, CHURN, ['mpich', 'openmpi', 'mpich'], 1200));
t.test('asym: an intercommunicator one side freed at once, the other kept; Open MPI → MPICH', { skip }, (t) => chain(t, ASYM, ['openmpi', 'mpich'], 1000));
