// Failure paths of an MPI checkpoint (issue 5), with real ranks of test/programs/mpi/halo.c
// under mpirun.mpich: after one good generation,
//   a. a rank is SIGKILLed while the ranks are held drained in presuspend,
//   b. a rank is SIGKILLed while the ranks are held in the middle of writing their images,
//   c. the coordinator is SIGKILLed during the commit (images and manifest fsynced, before the
//      rename).
// Each time: the blocking checkpoint fails with one line (a, b: at once, not at the phase
// timeout), `latest` still names generation 1, nothing else reads as a generation, `mana
// inspect --verify` passes, no process of the job is left, and `mana restart` of latest ends
// the computation with a result byte-identical to a native run. In (c) the job itself runs on
// and finishes (the agent resumes it when the coordinator link drops).
// Also the per-phase progress of `mana command --status` while a checkpoint is held: ranks
// drained, then bytes written (and the --bcheckpoint progress line on a terminal).
// Holds: MANA_TEST_PRESUSPEND_HOLD_MS (mpi-shim/upper/ckpt.c), MANA_TEST_WRITE_HOLD_MS
// (native/ckpt/wire.c), MANA_TEST_PAUSE_AFTER=fsynced@GEN (src/coordinator/checkpoint-round.ts).
import t, { type Test } from 'tap';
import { existsSync, readFileSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Coordinator, ensureBuilt, mana, manaProc, Proc, removeDir, repo, run, sleep, tempDir, waitFor, type Done } from './lib/harness.js';
import { have, killAll, launcherOf, mpiSkip, ranksOf, restartJob, tree, waitRanks, type Flavour, type ListedProc } from './lib/mpi.js';

ensureBuilt();

const skip = mpiSkip(['mpicc.mpich', 'mpirun.mpich']);
// the kills are repeated under Open MPI's launcher when it is there (its ranks run the same binary)
const killFlavours: Flavour[] = have('mpirun.openmpi') ? ['mpich', 'openmpi'] : ['mpich'];

const STEPS = '200';
const PAUSE_MS = '40';
const HOLD_MS = 2500;
const PHASE_TIMEOUT_MS = '120000';
const dir = tempDir('mpi-failpaths');
t.teardown(() => removeDir(dir));
const src = join(repo, 'test', 'programs', 'mpi', 'halo.c');
const prog = join(dir, 'halo');
let ref = Buffer.alloc(0);

t.before(async () => {
  if (skip) return;
  const b = await mana(['mpicc', '-O2', '-Wall', '-Wextra', '-Werror', '-o', prog, src]);
  if (b.code !== 0) throw new Error(`mana mpicc halo.c failed: ${b.stderr}`);
  const native = join(dir, 'halo-native');
  const n = await run('mpicc.mpich', ['-O2', '-o', native, src]);
  if (n.code !== 0) throw new Error(`mpicc.mpich halo.c failed: ${n.stderr}`);
  const out = join(dir, 'ref.out');
  const r = await run('mpirun.mpich', ['-n', '2', native, out, STEPS, '0'], { timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`the native reference run failed: ${r.stderr}`);
  ref = readFileSync(out);
});

/** A process of the job, known by pid and start time (so a reused pid is not taken for it). */
interface Seen { pid: number; start: string; what: string }

function procStart(pid: number): string | undefined {
  try {
    const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = st.slice(st.lastIndexOf(')') + 2).split(' ');
    return rest[0] === 'Z' ? undefined : rest[19]; // field 22: starttime; a zombie is gone
  } catch {
    return undefined;
  }
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return '';
  }
}

/** Everything under `root` now: mana launch, mpirun, hydra_pmi_proxy, the ranks. */
function snapshot(root: number): Seen[] {
  return tree(root).flatMap((pid) => {
    const start = procStart(pid);
    return start ? [{ pid, start, what: cmdline(pid) }] : [];
  });
}

/**
 * Processes of the job still alive: seen earlier and alive with the same start time, or any
 * process but the test's coordinator whose command line names the work dir (restored ranks).
 */
function leftOver(seen: Seen[], work: string, coordinator: number): string[] {
  const alive = seen.filter((s) => procStart(s.pid) === s.start).map((s) => `${s.pid} ${s.what}`);
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid || Number(e) === coordinator) continue;
    const c = cmdline(Number(e));
    if (c.includes(work) && procStart(Number(e))) alive.push(`${e} ${c}`);
  }
  return [...new Set(alive)];
}

interface Job {
  work: string;
  ckpt: string;
  out: string;
  c: Coordinator;
  launch: Proc;
  ranks: ListedProc[];
  seen: Seen[];
}

async function startJob(t: Test, name: string, rankEnv: Record<string, string>, coordEnv: Record<string, string> = {}, flavour: Flavour = 'mpich'): Promise<Job> {
  const work = join(dir, name);
  const ckpt = join(work, 'ckpt');
  const out = join(work, 'result.out');
  const c = await new Coordinator(ckpt, ['--phase-timeout-ms', PHASE_TIMEOUT_MS], { env: { ...process.env, ...coordEnv } }).start();
  t.teardown(() => c.stop());
  const launch = manaProc(['launch', '--join', '--coord-port', String(c.port), '--ckptdir', ckpt, '--', launcherOf(flavour), '-n', '2', prog, out, STEPS, PAUSE_MS], {
    cwd: work,
    env: { ...process.env, ...rankEnv },
  });
  const listed = await waitRanks(c, 2);
  const seen = snapshot(launch.child.pid ?? 0);
  t.teardown(() => killAll([...seen.map((s) => s.pid), ...tree(launch.child.pid ?? 0)]));
  return { work, ckpt, out, c, launch, ranks: ranksOf(listed), seen };
}

/** Lines of `text` that match re (e.g. a hook's line, once per rank and checkpoint). */
const count = (text: string, re: RegExp): number => text.split('\n').filter((l) => re.test(l)).length;

/** Generation 1, committed normally (with whatever holds the job has, which only slow it). */
async function firstGeneration(t: Test, j: Job): Promise<void> {
  await sleep(800);
  const g = await j.c.bcheckpoint();
  t.equal(g.generation, 1, 'generation 1 committed');
}

/** After a failed generation 2: what is on disk, and what restart makes of it. */
async function afterFailure(t: Test, j: Job, seen: Seen[]): Promise<void> {
  t.equal(readlinkSync(join(j.ckpt, 'latest')), 'gen-000001', 'latest still names generation 1');
  const gens = readdirSync(j.ckpt).filter((n) => /^gen-/.test(n));
  t.same(gens, ['gen-000001'], 'no other generation dir');
  const v = await mana(['inspect', join(j.ckpt, 'latest'), '--verify']);
  t.equal(v.code, 0, `mana inspect --verify latest passes${v.code === 0 ? '' : `: ${v.stderr}`}`);
  t.same(leftOver(seen, j.work, j.c.proc.child.pid ?? 0), [], 'no process of the job is left');

  rmSync(j.out, { force: true });
  const d = await restartJob(join(j.ckpt, 'latest'), j.ckpt, j.work, []);
  t.equal(d.code, 0, `mana restart latest exits 0${d.code === 0 ? '' : ` (${d.stderr})`}`);
  t.ok(existsSync(j.out) && readFileSync(j.out).equals(ref), `the restarted job's result equals the native run${existsSync(j.out) ? '' : ' (no result file)'}`);
  t.same(leftOver(seen, j.work, j.c.proc.child.pid ?? 0), [], 'no process is left after the restart either');
}

/** Rank 1 is SIGKILLed once the hook's line has come `n` times; returns the failed --bcheckpoint. */
async function killRankDuringHold(t: Test, j: Job, hook: RegExp, n: number): Promise<{ d: Done; afterKillMs: number; seen: Seen[] }> {
  const pending = j.c.command(['--bcheckpoint'], { timeoutMs: 150_000 });
  await waitFor(`the hold (${hook})`, () => (count(j.launch.stderr, hook) >= n ? true : undefined), 60_000);
  const seen = [...j.seen, ...snapshot(j.launch.child.pid ?? 0)];
  const partial = readdirSync(j.ckpt).filter((n) => n.startsWith('.gen-000002.partial-'));
  t.equal(partial.length, 1, 'generation 2 is being made in a partial dir');
  t.comment(`in it at the kill: ${partial.map((p) => readdirSync(join(j.ckpt, p)).join(' ') || '(nothing)').join('')}`);
  if (/WRITE/.test(String(hook))) {
    t.same(readdirSync(join(j.ckpt, partial[0] ?? '')).sort(), ['rank-00000.img', 'rank-00001.img'], 'the images are being written');
  }
  const rank1 = j.ranks.find((p) => p.procId === 1);
  t.ok(rank1 && procStart(rank1.pid), 'rank 1 is alive before the kill');
  const killed = Date.now();
  process.kill(rank1?.pid ?? 0, 'SIGKILL');
  const d = await pending;
  const afterKillMs = Date.now() - killed;
  return { d, afterKillMs, seen };
}

async function abortedByKill(t: Test, j: Job, hook: RegExp, n: number, phase: string): Promise<void> {
  const { d, afterKillMs, seen } = await killRankDuringHold(t, j, hook, n);
  t.equal(d.code, 1, '--bcheckpoint exits 1');
  const line = d.stderr.trim();
  t.equal(line.split('\n').length, 1, `one line: ${line}`);
  // the launcher ends rank 0 at once: which exit is reported first is chance, so both are named
  const ended = String.raw`process [01] \(pid \d+ on [^)]*\) (was killed by SIGKILL|ended)`;
  t.match(line, new RegExp(`^mana command: checkpoint generation 2 aborted: ${ended}(, ${ended})? during the checkpoint$`), 'naming the ranks that ended');
  t.match(line, new RegExp(`process 1 \\(pid ${j.ranks.find((p) => p.procId === 1)?.pid} `), 'the killed rank among them');
  t.ok(afterKillMs < 15_000, `aborted ${afterKillMs} ms after the kill, not at the phase timeout`);
  t.match(j.c.proc.stderr, /checkpoint generation 2 aborted: process [01] /, 'the coordinator logs the abort');
  t.notMatch(j.c.proc.stderr, /timed out/, 'no phase timeout');
  const l = await j.launch.done;
  t.not(l.code, 0, `the job ends (mpirun ends the other rank): mana launch exits ${l.code}`);
  const st = await j.c.command(['--status', '--json']);
  const s = JSON.parse(st.stdout) as { state: string; lastError: string; lastGeneration: number };
  t.equal(s.state, 'RUNNING', 'the coordinator is out of the round');
  t.equal(s.lastGeneration, 1);
  t.match(s.lastError, /checkpoint generation 2 aborted: process [01] /, `status shows the error (${phase})`);
  t.same(readdirSync(j.ckpt).filter((n) => n.startsWith('.gen-')), [], 'the partial dir of generation 2 is removed');
  await afterFailure(t, j, seen);
}

for (const f of killFlavours) {
  t.test(`${f}: a rank killed while the ranks are held drained in presuspend`, { skip }, async (t) => {
    const hook = /MANA_TEST_PRESUSPEND_HOLD_MS=\d+: rank \d+ holds presuspend/;
    const j = await startJob(t, `presuspend-${f}`, { MANA_TEST_PRESUSPEND_HOLD_MS: String(HOLD_MS) }, {}, f);
    await firstGeneration(t, j);
    t.equal(count(j.launch.stderr, hook), 2, 'the hook says so once per rank and checkpoint');
    await abortedByKill(t, j, hook, 4, 'presuspend');
  });

  t.test(`${f}: a rank killed while the ranks are held writing their images`, { skip }, async (t) => {
    const hook = /MANA_TEST_WRITE_HOLD_MS: holding the image write/;
    const j = await startJob(t, `write-${f}`, { MANA_TEST_WRITE_HOLD_MS: String(HOLD_MS) }, {}, f);
    await firstGeneration(t, j);
    await abortedByKill(t, j, hook, 4, 'write');
  });
}

t.test('the coordinator killed during the commit (fsynced, before the rename)', { skip }, async (t) => {
  const j = await startJob(t, 'commit', {}, { MANA_TEST_PAUSE_AFTER: 'fsynced@2' });
  await firstGeneration(t, j);
  const pending = j.c.command(['--bcheckpoint'], { timeoutMs: 150_000 });
  await waitFor('the commit to pause', () => (/MANA_TEST_PAUSE_AFTER=fsynced@2: pausing/.test(j.c.proc.stderr) ? true : undefined), 60_000);
  const seen = [...j.seen, ...snapshot(j.launch.child.pid ?? 0)];
  const partial = readdirSync(j.ckpt).filter((n) => n.startsWith('.gen-000002.partial-'));
  t.equal(partial.length, 1, 'generation 2 is a partial dir');
  await j.c.stop(); // SIGKILL
  const d = await pending;
  t.equal(d.code, 1, '--bcheckpoint exits 1');
  t.equal(d.stderr.trim().split('\n').length, 1, `one line: ${d.stderr.trim()}`);
  t.match(d.stderr, /^mana command: the coordinator at \S+ went away during the checkpoint; the last generation it had committed: generation 1 \(\S+gen-000001\)$/m, 'saying the coordinator went away, and what it had committed');

  // the agent resumes the ranks; the job runs to its end without a coordinator
  const l = await j.launch.done;
  t.equal(l.code, 0, `the job runs on and exits 0${l.code === 0 ? '' : ` (${l.stderr})`}`);
  t.match(l.stderr, /lost the coordinator at .*the program keeps running/, 'mana launch says the coordinator is gone');
  t.match(l.stderr, /resuming process [01] .*its checkpoint died with the coordinator link/, 'and that it resumed the ranks');
  t.ok(readFileSync(j.out).equals(ref), 'its result equals the native run');

  // the partial dir (complete, with its manifest) is not a generation to anyone
  const p = join(j.ckpt, partial[0] ?? '');
  t.ok(existsSync(join(p, 'manifest.json')), 'the partial dir has its manifest');
  const r = await mana(['restart', p]);
  t.equal(r.code, 1, 'mana restart refuses the partial dir');
  t.match(r.stderr, /has no committed checkpoint generation/);
  await afterFailure(t, j, seen);
});

t.test('status shows ranks drained, then bytes written, while a checkpoint is held', { skip }, async (t) => {
  // rank 0 alone holds in presuspend: rank 1 is drained and suspended, rank 0 not yet
  const j = await startJob(t, 'status', { MANA_TEST_PRESUSPEND_HOLD_MS: `${HOLD_MS}:0`, MANA_TEST_WRITE_HOLD_MS: String(HOLD_MS) });
  await sleep(800);
  // on a terminal (script(1) gives it one), --bcheckpoint prints a progress line
  const pending = run('script', ['-qefc', `${process.execPath} ${join(repo, 'bin', 'mana')} command --coord-port ${j.c.port} --bcheckpoint`, '/dev/null'], { timeoutMs: 120_000 });
  await waitFor('rank 0 to hold in presuspend', () => (/rank 0 holds presuspend/.test(j.launch.stderr) ? true : undefined), 60_000);
  const s1 = JSON.parse((await j.c.command(['--status', '--json'])).stdout) as Record<string, unknown>;
  t.match(s1, { state: 'SUSPENDING', checkpointInProgress: true, checkpointGeneration: 1, procsSuspended: 1, procsInCheckpoint: 2, procsWritten: 0, mpiFlavour: 'mpich' }, 'JSON: 1 of 2 ranks suspended');
  const h1 = await j.c.command(['--status']);
  t.match(h1.stdout, /checkpoint: +generation 1: SUSPENDING, 1\/2 ranks drained, 0\/2 written/, 'text: 1/2 ranks drained');
  t.match(h1.stdout, /mpi: +mpich/);

  await waitFor('the write to hold', () => (/holding the image write/.test(j.launch.stderr) ? true : undefined), 60_000);
  const s2 = JSON.parse((await j.c.command(['--status', '--json'])).stdout) as { state: string; procsSuspended: number; progressRawDone: number; progressRawTotal: number; procsWritten: number };
  t.match(s2, { state: 'WRITING', procsSuspended: 2, procsWritten: 0 }, 'JSON: writing');
  t.ok(s2.progressRawDone > 0 && s2.progressRawTotal >= s2.progressRawDone, `bytes written so far: ${s2.progressRawDone} of ${s2.progressRawTotal}`);
  const h2 = await j.c.command(['--status']);
  t.match(h2.stdout, /generation 1: WRITING, 2\/2 ranks drained, [01]\/2 written, [\d.]+ [KMG]iB \/ [\d.]+ [KMG]iB/, 'text: bytes written');

  const d = await pending;
  t.equal(d.code, 0, `--bcheckpoint on a terminal exits 0${d.code === 0 ? '' : ` (${d.stdout})`}`);
  t.match(d.stdout, /generation 1: SUSPENDING, 1\/2 ranks drained/, 'its progress line showed the drain');
  t.match(d.stdout, /generation 1: WRITING, 2\/2 ranks drained, [01]\/2 written, [\d.]+ [KMG]iB/, 'then the bytes');
  t.match(d.stdout, /generation 1 committed/);
  const l = await j.launch.done;
  t.equal(l.code, 0, 'the job ends normally');
  t.ok(readFileSync(j.out).equals(ref), 'with the native result');
});
