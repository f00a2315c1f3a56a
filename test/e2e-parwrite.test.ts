// Parallel image writing (issue 3): libmana's checkpoint thread shares large regions with
// helper threads created before any freeze (native/ckpt/pool.c). The helpers are part of every
// image and are restored like parked threads, so a restored process writes its next images with
// restored helpers. These tests force the number of writing threads with MANA_WRITE_THREADS and
// check that restarts give exactly the uninterrupted run's output, with O_DIRECT on and off,
// compressed and raw, and that helpers neither leak nor disappear across restarts.
import t from 'tap';
import { join } from 'node:path';
import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import {
  Coordinator, ensureBuilt, manaProc, removeDir, repo, sleep, tempDir, testBin, waitFor,
} from './lib/harness.js';
import {
  reference, cycleProgram, waitNewProc, latestGeneration, STEPS, SLEEP_MS,
} from './lib/scenario.js';

ensureBuilt();

interface Desc {
  threads: { tid: number; main: boolean; ckpt: boolean; helper: boolean }[];
}
const addon = createRequire(import.meta.url)(join(repo, 'build', 'Release', 'mana_native.node')) as {
  readImage(path: string): Desc;
};
const image = (ckpt: string, g: number): string => join(ckpt, `gen-${String(g).padStart(6, '0')}`, 'rank-00000.img');

const variants: { name: string; env: Record<string, string>; helpers: number; launchArgs: string[] }[] = [
  { name: '1 writer (no helpers)', env: { MANA_WRITE_THREADS: '1' }, helpers: 0, launchArgs: ['--no-compress'] },
  { name: '2 writers, raw, O_DIRECT', env: { MANA_WRITE_THREADS: '2' }, helpers: 1, launchArgs: ['--no-compress'] },
  { name: '4 writers, raw, buffered', env: { MANA_WRITE_THREADS: '4', MANA_WRITE_DIRECT: '0' }, helpers: 3, launchArgs: ['--no-compress'] },
  { name: '3 writers, zstd', env: { MANA_WRITE_THREADS: '3' }, helpers: 2, launchArgs: ['--compress'] },
];

for (const v of variants) {
  t.test(`memloop, three checkpoint/kill/restart cycles with ${v.name}: byte-identical output`, async (t) => {
    const dir = tempDir('parw');
    t.teardown(() => removeDir(dir));
    // twice the usual run, so that three cycles fit even on a busy 2-core machine
    const steps = STEPS * 2;
    const ref = await reference(dir, [], {}, steps);
    const c = await new Coordinator(join(dir, 'ckpt')).start();
    t.teardown(() => c.stop());
    const env = { ...process.env, ...v.env };
    const out = join(dir, 'mana.out');
    const r = await cycleProgram(c, dir, [testBin('memloop'), out, String(steps), String(SLEEP_MS)],
      { cycles: 3, spawn: { env }, launchArgs: v.launchArgs });
    t.same(r.generations, [1, 2, 3], 'three generations');
    t.equal(r.finalCode, ref.code, 'exit status equals the uninterrupted run');
    t.ok(readFileSync(out).equals(ref.out), 'output is byte-identical to the uninterrupted run');
    // Generation 1 was written by the launched process, 2 and 3 by restored ones (with
    // restored helpers): every image names the same number of helpers.
    for (const g of [1, 2, 3]) {
      const d = addon.readImage(image(c.ckptdir, g));
      t.equal(d.threads.filter((x) => x.helper).length, v.helpers, `generation ${g}: ${v.helpers} writer helper(s) in the image`);
      t.equal(d.threads.filter((x) => x.ckpt).length, 1, `generation ${g}: one checkpoint thread`);
    }
  });
}

t.test('helpers come back after a restart and are not duplicated (thread count)', async (t) => {
  const dir = tempDir('parw');
  t.teardown(() => removeDir(dir));
  const c = await new Coordinator(join(dir, 'ckpt')).start();
  t.teardown(() => c.stop());
  const env = { ...process.env, MANA_WRITE_THREADS: '3' };
  const out = join(dir, 'mana.out');
  const launch = manaProc(['launch', '--join', '--coord-port', String(c.port), '--ckptdir', c.ckptdir, '--',
    testBin('memloop'), out, String(STEPS * 10), String(SLEEP_MS)], { cwd: dir, env });
  const p = await waitNewProc(c, []);
  const before = readdirSync(`/proc/${p.pid}/task`).length;
  t.equal(before, 1 + 1 + 2, 'main + checkpoint thread + 2 helpers');
  await c.bcheckpoint();
  process.kill(p.pid, 'SIGKILL');
  await launch.done;
  const restart = manaProc(['restart', c.ckptdir, '--join', '--coord-port', String(c.port)], { cwd: dir, env });
  const q = await waitNewProc(c, [p.pid]);
  t.equal(readdirSync(`/proc/${q.pid}/task`).length, before, 'the restored process has the same threads');
  // the restored helpers write the next images; a restart from those works again
  await c.bcheckpoint();
  await c.bcheckpoint();
  process.kill(q.pid, 'SIGKILL');
  await restart.done;
  const again = manaProc(['restart', c.ckptdir, '--join', '--coord-port', String(c.port)], { cwd: dir, env });
  const s = await waitNewProc(c, [p.pid, q.pid]);
  t.equal(readdirSync(`/proc/${s.pid}/task`).length, before, 'and after a second restart');
  process.kill(s.pid, 'SIGKILL');
  await again.done;
});

t.test('stress: 30 interval checkpoints (0.2 s) with 3 writers, restart, 10 more, restart', async (t) => {
  const dir = tempDir('parw');
  t.teardown(() => removeDir(dir));
  const steps = STEPS * 3;
  const ref = await reference(dir, [], {}, steps);
  const c = await new Coordinator(join(dir, 'ckpt'), ['-i', '0.2']).start();
  t.teardown(() => c.stop());
  const env = { ...process.env, MANA_WRITE_THREADS: '3' };
  const out = join(dir, 'mana.out');
  const launch = manaProc(['launch', '--join', '--coord-port', String(c.port), '--ckptdir', c.ckptdir, '--',
    testBin('memloop'), out, String(steps), String(SLEEP_MS)], { cwd: dir, env });
  const p = await waitNewProc(c, []);
  await waitFor('30 generations', () => (latestGeneration(c.ckptdir) >= 30 ? true : undefined), 120_000, 50);
  process.kill(p.pid, 'SIGKILL');
  await launch.done;
  const first = latestGeneration(c.ckptdir);
  const r1 = manaProc(['restart', c.ckptdir, '--join', '--coord-port', String(c.port)], { cwd: dir, env });
  const q = await waitNewProc(c, [p.pid]);
  await waitFor('10 more generations', () => (latestGeneration(c.ckptdir) >= first + 10 ? true : undefined), 120_000, 50);
  process.kill(q.pid, 'SIGKILL');
  await r1.done;
  await sleep(300); // let a round that lost its process be aborted before the restart
  const r2 = manaProc(['restart', c.ckptdir, '--join', '--coord-port', String(c.port)], { cwd: dir, env });
  const d = await r2.done;
  t.equal(d.code, ref.code, 'exit status equals the uninterrupted run');
  t.ok(readFileSync(out).equals(ref.out), 'output is byte-identical to the uninterrupted run');
});
