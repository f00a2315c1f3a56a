// MPI jobs under Slurm (issues 4 and 5, and the mission's "before a Slurm wall-time limit"):
// `mana launch srun --mpi=pmi2|pmix` runs ranks over MPICH / Open MPI to the native result; a
// job checkpointed mid-run and killed with scancel restarts with `mana restart` inside a new
// allocation (salloc), on srun again, also on the other MPI and from an mpirun-launched job
// (--launcher srun); docs/slurm-job.sh, the batch script of docs/slurm.md, checkpoints when
// Slurm's wall-time warning (USR1) arrives, requeues itself and resumes to the same result.
//
// Needs a Slurm that answers (scripts/setup-slurm.sh, which scripts/setup.sh runs as root):
// as root the test starts it itself when srun is installed but no node is up; otherwise it
// skips with the reason. MANA_TEST_FULL=1 also waits for a real one-minute time limit.
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Coordinator, ensureBuilt, mana, manaBin, removeDir, repo, run, sleep, tempDir, waitFor, type Done } from './lib/harness.js';
import { launcherKindOf, lowerHalf, srunPluginFromArgv } from '../src/launch/mpi.js';
import { have, killJob, launchJob, mpiSkip, ranksOf, waitRanks, type Flavour } from './lib/mpi.js';

ensureBuilt();

const FULL = process.env.MANA_TEST_FULL === '1';
const nodeUp = (): boolean => /^(idle|mixed|allocated|completing)/m.test(spawnSync('sinfo', ['-h', '-N', '-o', '%T'], { encoding: 'utf8', timeout: 10_000 }).stdout ?? '');

/** Why the Slurm tests cannot run here, or false; as root, brings Slurm up first. */
function slurmSkip(): string | false {
  const mpi = mpiSkip(['mpicc.mpich', 'mpicc.openmpi']);
  if (mpi) return mpi;
  if (!have('srun')) return 'Slurm is not installed (bash scripts/setup-slurm.sh as root sets up a one-node Slurm)';
  if (nodeUp()) return false;
  if (process.getuid?.() !== 0) return 'Slurm answers with no node up, and only root can start it (scripts/setup-slurm.sh)';
  const s = spawnSync('bash', [join(repo, 'scripts', 'setup-slurm.sh')], { encoding: 'utf8', timeout: 180_000 });
  if (s.status !== 0 || !nodeUp()) throw new Error(`scripts/setup-slurm.sh did not bring Slurm up: ${s.stdout}${s.stderr}`);
  return false;
}
const skip = slurmSkip();

const dir = tempDir('mpi-slurm');
t.teardown(() => removeDir(dir));
const RANKS = 3;
const STEPS = 120;
const PAUSE = 25; // ms per step: about 3 s of running, checkpointed about 1 s in
const src = join(repo, 'test', 'programs', 'mpi', 'ring_ahead.c');
const prog = join(dir, 'ring_ahead'); // mana mpicc: runs over either MPI
const native = (f: Flavour): string => join(dir, `ring_ahead-${f}`);
const PLUGIN: Record<Flavour, string> = { mpich: 'pmi2', openmpi: 'pmix' };
let ref: Buffer = Buffer.alloc(0);

const tail = (s: string): string => s.trim().split('\n').slice(-20).join('\n');
/** Slurm job names of this test run, so cleanup cancels only its own jobs. */
const jobName = (what: string): string => `mana-test-${process.pid}-${what}`;
const jobIdsOf = (name: string): string[] =>
  (spawnSync('squeue', ['-h', '-n', name, '-o', '%i'], { encoding: 'utf8' }).stdout ?? '').split('\n').filter((s) => s !== '');
const cancel = (name: string, signal = 'KILL'): void => {
  for (const id of jobIdsOf(name)) spawnSync('scancel', ['-s', signal, id]);
};

t.before(async () => {
  if (skip) return;
  const builds = await Promise.all([
    mana(['mpicc', '-O2', '-o', prog, src], { timeoutMs: 180_000 }),
    run('mpicc.mpich', ['-O2', '-o', native('mpich'), src], { timeoutMs: 180_000 }),
    run('mpicc.openmpi', ['-O2', '-o', native('openmpi'), src], { timeoutMs: 180_000 }),
  ]);
  for (const b of builds) if (b.code !== 0) throw new Error(`building ring_ahead failed: ${b.stderr}`);
  // the reference: native runs under srun over each MPI, which must agree
  const outs: Buffer[] = [];
  for (const f of ['mpich', 'openmpi'] as const) {
    const out = join(dir, `ref-${f}.out`);
    const r = await run('srun', [`--mpi=${PLUGIN[f]}`, '-J', jobName('ref'), '-n', String(RANKS), native(f), out, String(STEPS), '0'], { timeoutMs: 120_000 });
    if (r.code !== 0 || !existsSync(out)) throw new Error(`the native srun --mpi=${PLUGIN[f]} run failed: ${r.stderr}`);
    outs.push(readFileSync(out));
  }
  if (!outs[0]!.equals(outs[1]!)) throw new Error(`native MPICH and Open MPI runs under srun differ:\n${outs.join('\n')}`);
  ref = outs[0]!;
});

const sameAsRef = (t: Test, out: string, what: string): void => {
  const got = existsSync(out) ? readFileSync(out) : undefined;
  t.ok(got?.equals(ref), `${what}: the result equals the native run${got ? (got.equals(ref) ? '' : `\n got: ${got}\nwant: ${ref}`) : ' (no result file)'}`);
};

t.test('mana launch srun runs to the native result on both MPIs', { skip }, async (t) => {
  for (const f of ['mpich', 'openmpi'] as const) {
    const out = join(dir, `launch-${f}.out`);
    const d = await mana(['launch', '--coord-port', '0', '--ckptdir', join(dir, `ck-launch-${f}`), 'srun', `--mpi=${PLUGIN[f]}`, '-J', jobName('launch'), '-n', String(RANKS), prog, out, String(STEPS), '0'], { timeoutMs: 120_000 });
    t.equal(d.code, 0, `mana launch srun --mpi=${PLUGIN[f]} exits 0${d.code ? `: ${tail(d.stderr)}` : ''}`);
    sameAsRef(t, out, `srun --mpi=${PLUGIN[f]} (lower half ${f})`);
  }
});

t.test("srun's --mpi plugin picks the lower half (no Slurm needed)", async (t) => {
  const srun = { name: 'srun', kind: 'srun', path: '/usr/bin/srun', realPath: '/usr/bin/srun' } as const;
  const env = {};
  t.equal(srunPluginFromArgv(['srun', '--mpi=pmix', '-n', '2', '/bin/true'], env), 'pmix');
  t.equal(srunPluginFromArgv(['srun', '-n', '2', '--mpi', 'pmi2', '/bin/true'], env), 'pmi2');
  t.equal(srunPluginFromArgv(['srun', '-n', '2', '/bin/true', '--mpi=pmix'], env), undefined, "the program's own --mpi is not srun's");
  t.equal(srunPluginFromArgv(['srun', '-n', '2', '/bin/true'], { SLURM_MPI_TYPE: 'pmix_v4' }), 'pmix_v4', 'else $SLURM_MPI_TYPE');
  t.equal(lowerHalf({ ...srun, srunPlugin: 'pmix_v4' }, undefined), 'openmpi', 'pmix_v4: Open MPI');
  t.equal(lowerHalf({ ...srun, srunPlugin: 'pmi2' }, undefined), 'mpich', 'pmi2: MPICH');
  t.equal(lowerHalf(srun, undefined), 'mpich', 'no plugin named: MPICH');
  t.equal(lowerHalf(srun, 'openmpi'), 'openmpi', 'no plugin named: --mpi decides');
  t.throws(() => lowerHalf({ ...srun, srunPlugin: 'pmi2' }, 'openmpi'),
    /--mpi openmpi does not match srun --mpi=pmi2, which serves MPICH: Open MPI's ranks need srun --mpi=pmix/);
  t.equal(launcherKindOf(['/usr/bin/srun', '-n', '2']), 'srun');
  t.equal(launcherKindOf(['mpirun.mpich', '-n', '2']), 'mpirun');
});

/** Launch argv under mana, checkpoint about 1 s in, kill the job; the generation dir. */
async function checkpointAndKill(t: Test, work: string, argv: string[], name: string): Promise<string> {
  const ckpt = join(work, 'ckpt');
  const c = await new Coordinator(ckpt).start();
  try {
    const launch = launchJob(c, ckpt, argv, work);
    const listed = await waitRanks(c, RANKS, 120_000);
    await sleep(1000);
    const g = await c.bcheckpoint();
    // scancel is what ends a Slurm job (its ranks are slurmstepd's children, not srun's);
    // the kill of everything mana knows covers an mpirun-launched job
    cancel(name);
    await killJob(c, launch, ranksOf(listed));
    t.equal(readdirSync(g.dir).filter((f) => f.endsWith('.img')).length, RANKS, `generation ${g.generation}: one image per rank`);
    return g.dir;
  } finally {
    await c.stop();
  }
}

/** `salloc -n RANKS mana restart GEN --join ...` under a fresh coordinator: the restart inside a new allocation. */
async function restartInAllocation(work: string, gen: string, args: string[], name: string): Promise<Done> {
  const c = await new Coordinator(join(work, 'ckpt-restart')).start();
  try {
    const p = run('salloc', ['-n', String(RANKS), '-J', name, process.execPath, manaBin, 'restart', gen, '--join', '--coord-port', String(c.port), ...args], { cwd: work, timeoutMs: 120_000 });
    const d = await p;
    if (d.code !== 0) cancel(name);
    return d;
  } finally {
    await c.stop();
  }
}

for (const f of ['mpich', 'openmpi'] as const) {
  const other: Flavour = f === 'mpich' ? 'openmpi' : 'mpich';
  t.test(`srun --mpi=${PLUGIN[f]} (${f}): checkpoint, scancel, mana restart in a new allocation`, { skip }, async (t) => {
    const work = join(dir, `ckpt-${f}`);
    mkdirSync(work, { recursive: true });
    const out = join(work, 'result.out');
    const name = jobName(`run-${f}`);
    const gen = await checkpointAndKill(t, work, ['srun', `--mpi=${PLUGIN[f]}`, '-J', name, '-n', String(RANKS), prog, out, String(STEPS), String(PAUSE)], name);
    if (existsSync(out)) t.comment('the job had finished before scancel (a loaded machine); the restart still starts from the image');

    // outside an allocation: one line, nothing started
    const env = { ...process.env };
    for (const k of Object.keys(env)) if (k.startsWith('SLURM_')) delete env[k];
    const outside = await mana(['restart', gen, '--coord-port', '0'], { env });
    t.equal(outside.code, 1, 'outside an allocation: exit status 1');
    t.equal(outside.stderr.trim().split('\n').length, 1, `one line: ${outside.stderr}`);
    t.match(outside.stderr, /was launched with srun: run mana restart inside a Slurm allocation \(salloc -n 3 mana restart \.\.\., or from an sbatch script\), or pass --launcher mpirun/);

    for (const target of [f, other]) {
      rmSync(out, { force: true });
      const d = await restartInAllocation(work, gen, target === f ? [] : ['--mpi', target], jobName(`restart-${f}-${target}`));
      t.equal(d.code, 0, `salloc mana restart${target === f ? '' : ` --mpi ${target}`} exits 0${d.code ? `: ${tail(d.stderr)}` : ''}`);
      sameAsRef(t, out, `${f} → srun --mpi=${PLUGIN[target]}`);
    }
  });
}

t.test('an mpirun-launched job restarts under srun (--launcher srun)', { skip }, async (t) => {
  const work = join(dir, 'ckpt-mpirun');
  mkdirSync(work, { recursive: true });
  const out = join(work, 'result.out');
  const gen = await checkpointAndKill(t, work, ['mpirun.mpich', '-n', String(RANKS), prog, out, String(STEPS), String(PAUSE)], jobName('mpirun'));
  rmSync(out, { force: true });
  const d = await restartInAllocation(work, gen, ['--launcher', 'srun'], jobName('restart-mpirun'));
  t.equal(d.code, 0, `salloc mana restart --launcher srun exits 0${d.code ? `: ${tail(d.stderr)}` : ''}`);
  sameAsRef(t, out, 'mpirun.mpich → srun --mpi=pmi2');

  const bad = await mana(['restart', gen, '--launcher', 'aprun', '--coord-port', '0']);
  t.equal(bad.code, 2, '--launcher aprun: usage error');
  t.match(bad.stderr, /--launcher must be mpirun or srun, not "aprun"/);
  const noSrun = await mana(['restart', gen, '--launcher', 'srun', '--coord-port', '0'], {
    env: { ...process.env, PATH: '/nonexistent', SLURM_JOB_ID: '1' },
  });
  t.equal(noSrun.code, 1, 'srun not installed: exit status 1');
  t.equal(noSrun.stderr.trim(), "mana restart: srun: Slurm's srun is not installed here (not found on PATH); run the job with mpirun or mpiexec instead");
});

/** The ```bash block of docs/slurm.md that shows docs/slurm-job.sh. */
function docScript(): string | undefined {
  const md = readFileSync(join(repo, 'docs', 'slurm.md'), 'utf8');
  return /```bash\n(#!\/bin\/bash\n# sbatch [^\n]*docs\/slurm-job\.sh[\s\S]*?)```/.exec(md)?.[1];
}

const jobState = (id: string): string => /JobState=(\w+)/.exec(spawnSync('scontrol', ['show', 'job', id], { encoding: 'utf8' }).stdout ?? '')?.[1] ?? 'GONE';

/**
 * sbatch docs/slurm-job.sh with the ring program; `limit` delivers the wall-time warning (or
 * waits for it); then the requeued job must resume and end with the native result.
 */
async function batchJob(t: Test, what: string, steps: number, sbatchOpts: string[], limit: (id: string, ckpt: string) => Promise<void>): Promise<void> {
  const work = join(dir, `sbatch-${what}`);
  mkdirSync(work, { recursive: true });
  const out = join(work, 'result.out');
  const name = jobName(`sbatch-${what}`);
  t.teardown(() => cancel(name));
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${join(repo, 'bin')}:${process.env.PATH ?? ''}`, MANA_CHECKPOINT_INTERVAL: '0' };
  for (const k of Object.keys(env)) if (k.startsWith('SLURM_') || k.startsWith('MANA_COORD')) delete env[k];
  const sb = await run('sbatch', ['--parsable', '-J', name, '--ntasks', String(RANKS), '--chdir', work, ...sbatchOpts,
    join(repo, 'docs', 'slurm-job.sh'), prog, out, String(steps), String(PAUSE)], { env, cwd: work });
  t.equal(sb.code, 0, `sbatch exits 0 ${sb.stderr}`);
  const id = sb.stdout.trim().split(';')[0] as string;
  const ckpt = join(work, `ckpt-${id}`);
  const log = join(work, `${name}-${id}.out`);
  const logText = (): string => (existsSync(log) ? readFileSync(log, 'utf8') : '(no output file)');
  // running once the ranks have said HELLO to the job's coordinator (port 20000 + id % 20000)
  const port = 20000 + (Number(id) % 20000);
  await waitFor('the batch job ranks', async () => {
    const l = await mana(['command', '--coord-port', String(port), '--list', '--json'], { env });
    if (l.code !== 0) return undefined;
    const procs = (JSON.parse(l.stdout) as { procs: { launcher?: boolean; state: string }[] }).procs;
    return procs.filter((p) => !p.launcher && p.state === 'running').length === RANKS ? true : undefined;
  }, 120_000, 250);
  await limit(id, ckpt);
  await waitFor('the requeued job', () => (existsSync(join(ckpt, 'latest')) && jobState(id) === 'PENDING' ? true : undefined), 60_000, 250);
  t.notOk(existsSync(out), 'the first run ended before the program did');
  // Slurm holds a requeued job for a while (BeginTime); let it start now, but only once slurmd
  // is done with the first run and a second has passed: a credential made in the second the
  // first run's was revoked is refused ("Job credential revoked") and the job fails
  await waitFor('the node to finish the first run', () => (nodeUp() && !/completing/.test(spawnSync('sinfo', ['-h', '-N', '-o', '%T'], { encoding: 'utf8' }).stdout ?? '') ? true : undefined), 60_000, 250);
  await sleep(2000);
  // and with a longer limit, so that the resumed run ends before another warning
  spawnSync('scontrol', ['update', `jobid=${id}`, 'TimeLimit=10']);
  spawnSync('scontrol', ['update', `jobid=${id}`, 'StartTime=now']);
  await waitFor('the requeued job to end', () => (['COMPLETED', 'FAILED', 'CANCELLED', 'TIMEOUT', 'GONE'].includes(jobState(id)) ? true : undefined), 180_000, 500);
  t.equal(jobState(id), 'COMPLETED', `the job completes\n${tail(logText())}`);
  t.match(logText(), /mana job: wall-time limit near, checkpointing[\s\S]*generation 1 committed[\s\S]*mana job: restart 1 from gen-000001[\s\S]*mana job: done, status 0/, 'checkpointed at the warning, restarted once, ended with status 0');
  const want = await run('srun', ['--mpi=pmi2', '-J', name, '-n', String(RANKS), native('mpich'), join(work, 'ref.out'), String(steps), '0']);
  t.equal(want.code, 0, want.stderr);
  const got = existsSync(out) ? readFileSync(out) : Buffer.alloc(0);
  t.ok(got.equals(readFileSync(join(work, 'ref.out'))), `the result equals the native run\n got: ${got}`);
}

t.test('docs/slurm-job.sh: the wall-time warning checkpoints, requeues, and the job resumes', { skip }, async (t) => {
  t.equal(docScript(), readFileSync(join(repo, 'docs', 'slurm-job.sh'), 'utf8'), 'docs/slurm.md shows docs/slurm-job.sh as it is');
  // the signal Slurm sends at --signal=B:USR1@N before the limit, sent now
  await batchJob(t, 'signal', 400, ['--time=10'], async (id) => {
    await sleep(1000);
    const s = spawnSync('scancel', ['--batch', '--signal=USR1', id], { encoding: 'utf8' });
    t.equal(s.status, 0, `scancel --batch --signal=USR1 ${s.stderr}`);
  });
});

t.test('a real one-minute wall-time limit', { skip: skip || (FULL ? false : 'MANA_TEST_FULL=1 runs it (about 2 minutes)') }, async (t) => {
  // the warning is due 10 s into the job, and slurmctld looks every 30 s or so: the ring runs
  // 2000 × 25 ms = 50 s, so the warning finds it running and the limit would kill it
  await batchJob(t, 'timelimit', 2000, ['--time=1', '--signal=B:USR1@50'], async () => {});
});

t.teardown(() => {
  for (const what of ['ref', 'launch', 'run-mpich', 'run-openmpi', 'mpirun']) cancel(jobName(what));
});
