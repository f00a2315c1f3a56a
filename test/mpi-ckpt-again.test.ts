// Checkpoints of an MPI job that was restarted already: a job of weeks is checkpointed again
// and again, across restarts, possibly on the other MPI each time. A restored rank has a new
// launcher (its PMI socket), a new lower half started from the restart's environment, and
// libmana state copied in the middle of the write that made its image; each of these once
// broke the next checkpoint (a SIGSEGV, or a refused socket).
//
// 1. launch → checkpoint → SIGKILL → restart → checkpoint → SIGKILL → restart → the end, on
//    MPICH → Open MPI → MPICH (halo) and Open MPI → MPICH → Open MPI (flood, whose messages in
//    flight are drained at each checkpoint and carried across two images): the result file
//    equals an uninterrupted native run byte for byte.
// 2. restart → two checkpoints the job survives in place → the end: the same result, and the
//    generations restart.
// Real launchers, real ranks, real coordinators throughout.
import t, { type Test } from 'tap';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  Coordinator, ensureBuilt, mana, manaBin, Proc, removeDir, repo, run, sleep, tempDir, type CheckpointResult,
} from './lib/harness.js';
import {
  killJob, launchJob, launcherOf, mpiccOf, mpiSkip, nativeEnv, waitRanks, type Flavour,
} from './lib/mpi.js';

ensureBuilt();

const skip = mpiSkip(['mpicc.openmpi', 'mpirun.mpich', 'mpirun.openmpi']);

interface Program {
  name: string;
  ranks: number;
  steps: number;
  pauseMs: number;
}
// about 4 s of running: room for a checkpoint in each of three incarnations
const HALO: Program = { name: 'halo', ranks: 4, steps: 160, pauseMs: 25 };
const FLOOD: Program = { name: 'flood', ranks: 3, steps: 160, pauseMs: 25 };

const dir = tempDir('mpi-ckpt-again');
t.teardown(() => removeDir(dir));
const bin = (p: Program): string => join(dir, p.name);
const refs = new Map<string, Buffer>();

t.before(async () => {
  if (skip) return;
  for (const p of [HALO, FLOOD]) {
    const src = join(repo, 'test', 'programs', 'mpi', `${p.name}.c`);
    const b = await mana(['mpicc', '-O2', '-o', bin(p), src], { timeoutMs: 180_000 });
    if (b.code !== 0) throw new Error(`mana mpicc ${p.name}.c failed: ${b.stderr}`);
    // the reference: Open MPI natively (the suite checks that MPICH's native run agrees)
    const nat = join(dir, `${p.name}-native`);
    const n = await run(mpiccOf('openmpi'), ['-O2', '-o', nat, src], { timeoutMs: 180_000 });
    if (n.code !== 0) throw new Error(`${mpiccOf('openmpi')} ${p.name}.c failed: ${n.stderr}`);
    const out = join(dir, `${p.name}-ref.out`);
    const r = await run(launcherOf('openmpi'), ['-n', String(p.ranks), nat, out, String(p.steps), '0'], { timeoutMs: 120_000, env: nativeEnv('openmpi') });
    if (r.code !== 0 || !existsSync(out)) throw new Error(`the native run of ${p.name} failed: ${r.stderr}`);
    refs.set(p.name, readFileSync(out));
  }
});

const tail = (s: string): string => s.trim().split('\n').slice(-20).join('\n');

/** `mana restart GEN --join` of the job under c, on MPI target; the running restart. */
function restart(c: Coordinator, gen: string, target: Flavour, cwd: string): Proc {
  return new Proc(process.execPath, [manaBin, 'restart', gen, '--join', '--coord-port', String(c.port), '--mpi', target], { cwd });
}

async function checkpoint(t: Test, c: Coordinator, job: Proc, what: string): Promise<CheckpointResult | undefined> {
  try {
    const g = await c.bcheckpoint();
    t.pass(`${what}: generation ${g.generation} committed`);
    return g;
  } catch (e) {
    t.fail(`${what}: ${(e as Error).message}\njob: ${tail(job.stderr)}`);
    return undefined;
  }
}

function sameAsNative(t: Test, p: Program, out: string, what: string): void {
  const got = existsSync(out) ? readFileSync(out) : undefined;
  const want = refs.get(p.name) ?? Buffer.alloc(0);
  t.ok(got?.equals(want), `${what}: the result equals the uninterrupted native run${got ? (got.equals(want) ? '' : `\n got: ${got}\nwant: ${want}`) : ' (no result file)'}`);
}

/** launch on chain[0]; for each later MPI: checkpoint, SIGKILL, restart on it; then the end. */
async function killChain(t: Test, p: Program, chain: Flavour[]): Promise<void> {
  const work = join(dir, `${p.name}-${chain.join('-')}`);
  mkdirSync(work, { recursive: true });
  const ckpt = join(work, 'ckpt');
  const out = join(work, 'result.out');
  const c = await new Coordinator(ckpt).start();
  t.teardown(() => c.stop());
  let job = launchJob(c, ckpt, [launcherOf(chain[0]), '-n', String(p.ranks), bin(p), out, String(p.steps), String(p.pauseMs)], work);
  for (let i = 1; i < chain.length; i++) {
    const listed = await waitRanks(c, p.ranks, 120_000);
    await sleep(700);
    const g = await checkpoint(t, c, job, `checkpoint ${i} (on ${chain[i - 1]}${i > 1 ? ', after a restart' : ''})`);
    await killJob(c, job, listed);
    if (!g) return;
    t.equal(readdirSync(g.dir).filter((f) => f.endsWith('.img')).length, p.ranks, 'one image per rank');
    // an incremental image reads its parent through an fd of the writer's, not the program's
    const ins = await mana(['inspect', join(g.dir, 'rank-00000.img')]);
    const fds = ins.stdout.slice(ins.stdout.indexOf('\nfds'));
    t.notMatch(fds, /\.img\s*$/m, `generation ${g.generation} records no image file among the program's fds`);
    rmSync(out, { force: true }); // made anew by the restarted job
    job = restart(c, g.dir, chain[i], work);
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const d = await Promise.race([job.done, new Promise<undefined>((r) => { timer = setTimeout(() => r(undefined), 120_000); })]);
  clearTimeout(timer);
  if (!d) await killJob(c, job);
  t.equal(d?.code, 0, `the last restart (on ${chain[chain.length - 1]}) runs to the end and exits 0${d && d.code !== 0 ? `: ${tail(d.stderr)}` : ''}`);
  sameAsNative(t, p, out, chain.join(' → '));
  removeDir(work);
}

t.test(`halo: checkpoint, SIGKILL and restart twice, MPICH → Open MPI → MPICH`, { skip }, (t) =>
  killChain(t, HALO, ['mpich', 'openmpi', 'mpich']));

t.test(`flood (drained messages carried across two images): Open MPI → MPICH → Open MPI`, { skip }, (t) =>
  killChain(t, FLOOD, ['openmpi', 'mpich', 'openmpi']));

t.test('halo restarted on Open MPI, checkpointed twice in place, runs to the end; both generations restart', { skip }, async (t) => {
  const p = HALO;
  const work = join(dir, 'inplace');
  mkdirSync(work, { recursive: true });
  const ckpt = join(work, 'ckpt');
  const out = join(work, 'result.out');
  const c = await new Coordinator(ckpt).start();
  t.teardown(() => c.stop());
  const launch = launchJob(c, ckpt, [launcherOf('mpich'), '-n', String(p.ranks), bin(p), out, String(p.steps), String(p.pauseMs)], work);
  const listed = await waitRanks(c, p.ranks, 120_000);
  await sleep(500);
  const g1 = await checkpoint(t, c, launch, 'checkpoint on MPICH');
  await killJob(c, launch, listed);
  if (!g1) return;
  rmSync(out, { force: true });
  const job = restart(c, g1.dir, 'openmpi', work);
  await waitRanks(c, p.ranks, 120_000);
  const gens: CheckpointResult[] = [];
  for (const k of [1, 2]) {
    await sleep(400);
    const g = await checkpoint(t, c, job, `in-place checkpoint ${k} after the restart`);
    if (g) gens.push(g);
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const d = await Promise.race([job.done, new Promise<undefined>((r) => { timer = setTimeout(() => r(undefined), 120_000); })]);
  clearTimeout(timer);
  if (!d) await killJob(c, job);
  t.equal(d?.code, 0, `the restarted job runs on after its checkpoints and exits 0${d && d.code !== 0 ? `: ${tail(d.stderr)}` : ''}`);
  sameAsNative(t, p, out, 'after two in-place checkpoints');
  // the second in-place generation restarts too (on MPICH): the images are whole
  const last = gens[gens.length - 1];
  if (last) {
    rmSync(out, { force: true });
    const r = restart(c, last.dir, 'mpich', work);
    const e = await Promise.race([r.done, new Promise<undefined>((res) => { timer = setTimeout(() => res(undefined), 120_000); })]);
    clearTimeout(timer);
    if (!e) await killJob(c, r);
    t.equal(e?.code, 0, `a restart of generation ${last.generation} on MPICH exits 0${e && e.code !== 0 ? `: ${tail(e.stderr)}` : ''}`);
    sameAsNative(t, p, out, `restart of generation ${last.generation}`);
  }
  removeDir(work);
});
