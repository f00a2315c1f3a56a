// Real programs nobody wrote for mana: pthreads, OpenMP (libgomp), Debian's CPython (with a
// thread; with numpy when python3-numpy is installed). Each goes through three checkpoint,
// SIGKILL and restart cycles and must end byte-identical to an uninterrupted native run.
import t from 'tap';
import { join } from 'node:path';
import { readFileSync, readdirSync } from 'node:fs';
import { spawnSync, type SpawnOptions } from 'node:child_process';
import {
  Coordinator, ensureBuilt, manaProc, removeDir, repo, runNative, sleep, tempDir, testBin, waitFor,
} from './lib/harness.js';
import { cycleProgram, latestGeneration, waitNewProc } from './lib/scenario.js';

ensureBuilt();

const python = '/usr/bin/python3';
const hasNumpy = spawnSync(python, ['-c', 'import numpy']).status === 0;
// a stdin that stays open and silent: threads parks a thread in read(0) for the whole run
const openStdin: SpawnOptions = { stdio: ['pipe', 'pipe', 'pipe'] };

interface Case {
  name: string;
  argv: (out: string) => string[];
  opts?: SpawnOptions;
}

const cases: Case[] = [
  { name: 'pthreads: barrier, mutex/condvar, TLS, detached, blocked read, threads born after restart',
    argv: (out) => [testBin('threads'), out, '500', '4'], opts: openStdin },
  { name: 'alternate signal stacks of two threads (SA_ONSTACK handlers keep running on them)',
    argv: (out) => [testBin('altstack'), out, '200', '20'] },
  { name: 'OpenMP parallel loop with its thread pool alive', argv: (out) => [testBin('omp_loop'), out, '400', '4'] },
  { name: 'CPython: pure-Python loop with a threading.Thread', argv: (out) => [python, join(repo, 'test', 'programs', 'pyloop.py'), out, '400'] },
];
if (hasNumpy) {
  cases.push({ name: 'CPython with numpy', argv: (out) => [python, join(repo, 'test', 'programs', 'pynumpy.py'), out, '300'] });
}

for (const k of cases) {
  t.test(k.name, async (t) => {
    const dir = tempDir('prog');
    t.teardown(() => removeDir(dir));
    const refOut = join(dir, 'reference.out');
    const ref = await runNative(k.argv(refOut)[0]!, k.argv(refOut).slice(1), { cwd: dir });
    t.equal(ref.stderr, '', 'the uninterrupted run is clean');
    const c = await new Coordinator(join(dir, 'ckpt')).start();
    t.teardown(() => c.stop());
    const out = join(dir, 'mana.out');
    const r = await cycleProgram(c, dir, k.argv(out), { cycles: 3, spawn: k.opts ?? {} });
    t.same(r.generations, [1, 2, 3], 'three generations');
    t.equal(r.finalCode, ref.code, 'exit status equals the uninterrupted run');
    t.ok(readFileSync(out).equals(readFileSync(refOut)), 'output is byte-identical');
  });
}

t.test('python3-numpy present (installed by scripts/setup.sh)', async (t) => {
  t.ok(hasNumpy, 'numpy imports in Debian python3, so the numpy case ran');
});

/** Threads of a process, sampled a few times; the minimum hides short-lived ones. */
async function steadyThreads(pid: number): Promise<number> {
  let min = Infinity;
  for (let i = 0; i < 8; i++) {
    min = Math.min(min, readdirSync(`/proc/${pid}/task`).length);
    await sleep(25);
  }
  return min;
}

t.test('stress: 50 interval checkpoints (0.2 s) of a multithreaded program, then SIGKILL and restart', async (t) => {
  const dir = tempDir('stress');
  t.teardown(() => removeDir(dir));
  const refOut = join(dir, 'reference.out');
  const rounds = '1600';
  const ref = await runNative(testBin('threads'), [refOut, rounds, '4'], { cwd: dir });
  const ckpt = join(dir, 'ckpt');
  const c = await new Coordinator(ckpt, ['-i', '0.2']).start();
  t.teardown(() => c.stop());
  const out = join(dir, 'mana.out');
  const launch = manaProc(['launch', '--join', '--coord-port', String(c.port), '--ckptdir', ckpt, '--',
    testBin('threads'), out, rounds, '4'], { cwd: dir, ...openStdin });
  const p = await waitNewProc(c, []);
  await waitFor('50 generations', () => (latestGeneration(ckpt) >= 50 ? true : undefined), 120_000, 50);
  const before = await steadyThreads(p.pid);
  process.kill(p.pid, 'SIGKILL');
  t.equal((await launch.done).code, 137, 'killed');
  const last = latestGeneration(ckpt);
  const restart = manaProc(['restart', ckpt, '--join', '--coord-port', String(c.port)], { cwd: dir, ...openStdin });
  const q = await waitNewProc(c, [p.pid]);
  const after = await steadyThreads(q.pid);
  t.equal(after, before, `the restarted process has the same threads as before (${after}): none leaked`);
  const d = await restart.done;
  t.ok(last >= 50, `restarted from generation ${last}`);
  t.equal(d.code, ref.code, 'exit status equals the uninterrupted run');
  t.ok(readFileSync(out).equals(readFileSync(refOut)), 'output is byte-identical');
});
