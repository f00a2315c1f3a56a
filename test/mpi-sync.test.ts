// Checkpoints while ranks are spread over a call that blocks inside the MPI library until every
// rank has arrived (test/programs/mpi/late.c): rank 0 enters it, the other ranks come 3 s
// later, and the checkpoint is requested in between.
//   split, intercomm, group: the checkpoint commits (before, rank 0 sat inside the lower half and the
//     others' checkpoint threads waited for it forever); the job is SIGKILLed and restarted on
//     the other MPI; the result equals an uninterrupted native run.
//   file-open, file-view, file-sync, file-close: the same for the collectives on a file (a file the
//     ranks write, open at the checkpoint, opened again at the restart);
//   finalize: rank 0 is in MPI_Finalize; the checkpoint is refused with one line (the job is
//     finishing), and the job ends with its result.
import t, { type Test } from 'tap';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Coordinator, ensureBuilt, mana, removeDir, repo, run, sleep, tempDir, waitFor } from './lib/harness.js';
import { have, killJob, launchJob, launcherOf, mpiSkip, nativeEnv, restartJob, waitRanks, type Flavour } from './lib/mpi.js';

ensureBuilt();

const skip = mpiSkip(['mpicc.mpich', 'mpirun.mpich']);
const flavours: Flavour[] = have('mpirun.openmpi') ? ['mpich', 'openmpi'] : ['mpich'];
const other = (f: Flavour): Flavour => (f === 'mpich' && have('mpirun.openmpi') ? 'openmpi' : 'mpich');
const RANKS = '4';
const HOLD_MS = '3000';
const dir = tempDir('mpi-sync');
t.teardown(() => removeDir(dir));
const src = join(repo, 'test', 'programs', 'mpi', 'late.c');
const prog = join(dir, 'late');
const refs = new Map<string, Buffer>();
const MODES = ['split', 'intercomm', 'group', 'finalize', 'file-open', 'file-view', 'file-sync', 'file-close'];
const CALL: Record<string, string> = {
  split: 'MPI_Comm_split', intercomm: 'MPI_Intercomm_create', group: 'MPI_Comm_create_group (the even ranks)', finalize: 'MPI_Finalize',
  'file-open': 'MPI_File_open', 'file-view': 'MPI_File_set_view', 'file-sync': 'MPI_File_sync', 'file-close': 'MPI_File_close',
};

t.before(async () => {
  if (skip) return;
  const b = await mana(['mpicc', '-O2', '-Wall', '-Wextra', '-Werror', '-o', prog, src]);
  if (b.code !== 0) throw new Error(`mana mpicc late.c failed: ${b.stderr}`);
  const native = join(dir, 'late-native');
  const n = await run('mpicc.mpich', ['-O2', '-o', native, src]);
  if (n.code !== 0) throw new Error(`mpicc.mpich late.c failed: ${n.stderr}`);
  for (const mode of MODES) {
    const out = join(dir, `ref-${mode}.out`);
    const r = await run('mpirun.mpich', ['-n', RANKS, native, out, mode, '0'], { timeoutMs: 60_000, env: nativeEnv('mpich') });
    if (r.code !== 0) throw new Error(`the native ${mode} run failed: ${r.stderr}`);
    refs.set(mode, readFileSync(out));
  }
});

async function lateCheckpoint(t: Test, f: Flavour, mode: string): Promise<void> {
  const work = join(dir, `${mode}-${f}`);
  mkdirSync(work, { recursive: true });
  const ckpt = join(work, 'ckpt');
  const out = join(work, 'result.out');
  const c = await new Coordinator(ckpt).start();
  t.teardown(() => c.stop());
  const launch = launchJob(c, ckpt, [launcherOf(f), '-n', RANKS, prog, out, mode, HOLD_MS], work);
  const listed = await waitRanks(c, Number(RANKS));
  await waitFor(`rank 0 to enter ${mode}`, async () => (launch.stderr.includes(`late: rank 0 enters ${mode}`) ? true : undefined), 60_000, 50);
  await sleep(400); // rank 0 inside, the others 2.6 s away
  const started = Date.now();
  const d = await c.command(['--bcheckpoint', '--json'], { timeoutMs: 120_000 });
  const said = `${d.stdout}${d.stderr}`;
  if (mode === 'finalize') {
    t.not(d.code, 0, 'the checkpoint is refused');
    t.match(said, /the job has reached MPI_Finalize \(it is finishing\); no checkpoint taken/, 'the refusal says the job is finishing');
    const l = await launch.done;
    t.equal(l.code, 0, `the job ends normally${l.code === 0 ? '' : `: ${l.stderr}`}`);
    t.ok(existsSync(out) && readFileSync(out).equals(refs.get(mode) ?? Buffer.alloc(0)), 'its result equals the native run');
    return;
  }
  t.equal(d.code, 0, `the checkpoint commits${d.code === 0 ? '' : `: ${said}`}`);
  if (d.code !== 0) {
    await killJob(c, launch, listed);
    return;
  }
  t.ok(Date.now() - started < 60_000, `within a minute (${Date.now() - started} ms: the late ranks arrive after ${HOLD_MS} ms)`);
  const g = JSON.parse(d.stdout) as { dir: string };
  t.equal(readdirSync(g.dir).filter((n) => n.endsWith('.img')).length, Number(RANKS), 'one image per rank');
  await killJob(c, launch, listed);
  await c.stop();
  rmSync(out, { force: true });
  const to = other(f);
  const r = await restartJob(g.dir, join(work, 'ckpt-restart'), work, ['--mpi', to], 90_000);
  t.equal(r.code, 0, `mana restart --mpi ${to} exits 0${r.code === 0 ? '' : `: ${r.stderr.slice(-800)}`}`);
  const got = existsSync(out) ? readFileSync(out) : undefined;
  t.ok(got?.equals(refs.get(mode) ?? Buffer.alloc(0)), `the result equals the native run${got ? `\n got: ${got}\nwant: ${refs.get(mode)}` : ' (no result file)'}`);
}

for (const f of flavours) {
  for (const mode of MODES) {
    t.test(`${f}: rank 0 in ${CALL[mode]}, the others ${HOLD_MS} ms late`, { skip }, (t) => lateCheckpoint(t, f, mode));
  }
}
