// End to end: a real program under `mana launch`, real checkpoints, SIGKILL, `mana restart`;
// the result file and exit status must equal an uninterrupted native run byte for byte.
import t from 'tap';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import {
  Coordinator, ensureBuilt, manaProc, Proc, removeDir, tempDir, testBin, waitFor, asUser, userExists, sleep,
} from './lib/harness.js';
import {
  checkpointKillRestart, latestGeneration, reference, STEPS, SLEEP_MS, waitNewProc,
} from './lib/scenario.js';

ensureBuilt();

t.test('three checkpoint/SIGKILL/restart cycles give the uninterrupted result', async (t) => {
  const dir = tempDir('cycles');
  t.teardown(() => removeDir(dir));
  const ref = await reference(dir);
  const c = await new Coordinator(join(dir, 'ckpt')).start();
  t.teardown(() => c.stop());
  const r = await checkpointKillRestart(c, dir, 3);
  t.same(r.generations, [1, 2, 3], 'generations are numbered 1, 2, 3');
  t.equal(r.finalCode, ref.code, 'exit status equals the uninterrupted run');
  t.ok(r.out.equals(ref.out), 'result file is byte-identical to the uninterrupted run');
  t.equal(latestGeneration(c.ckptdir), 3, 'latest points at the newest generation');
});

t.test('interval checkpoints (-i 1), SIGKILL, restart from latest', async (t) => {
  const dir = tempDir('interval');
  t.teardown(() => removeDir(dir));
  const ref = await reference(dir);
  const ckpt = join(dir, 'ckpt');
  const c = await new Coordinator(ckpt, ['-i', '1']).start();
  t.teardown(() => c.stop());
  const out = join(dir, 'mana.out');
  const launch = manaProc(['launch', '--join', '--coord-port', String(c.port), '--ckptdir', ckpt, '--',
    testBin('memloop'), out, String(STEPS), String(SLEEP_MS)], { cwd: dir });
  const p = await waitNewProc(c, []);
  await waitFor('two interval generations', () => (latestGeneration(ckpt) >= 2 ? true : undefined), 30_000);
  process.kill(p.pid, 'SIGKILL');
  const killed = await launch.done;
  t.equal(killed.code, 137, 'launch reports the SIGKILL as 128+9');
  // Restart through the script the coordinator keeps in the checkpoint directory.
  const script = join(ckpt, 'mana_restart_script.sh');
  const before = latestGeneration(ckpt);
  const restart = new Proc('/bin/sh', [script, '--join', '--coord-port', String(c.port)], { cwd: dir });
  const d = await restart.done;
  t.equal(d.code, ref.code, 'exit status equals the uninterrupted run');
  t.ok(readFileSync(out).equals(ref.out), 'result file is byte-identical');
  t.ok(latestGeneration(ckpt) > before, 'the restarted job kept writing interval generations into the same directory');
});

t.test('checkpoint without kill: the program runs on to the same result', async (t) => {
  const dir = tempDir('nokill');
  t.teardown(() => removeDir(dir));
  const ref = await reference(dir);
  const c = await new Coordinator(join(dir, 'ckpt')).start();
  t.teardown(() => c.stop());
  const out = join(dir, 'mana.out');
  const launch = manaProc(['launch', '--join', '--coord-port', String(c.port), '--ckptdir', c.ckptdir, '--',
    testBin('memloop'), out, String(STEPS), String(SLEEP_MS)], { cwd: dir });
  await waitNewProc(c, []);
  await sleep(300);
  const g1 = await c.bcheckpoint();
  await sleep(300);
  const g2 = await c.bcheckpoint();
  t.equal(g2.generation, g1.generation + 1, 'two generations in a row');
  const d = await launch.done;
  t.equal(d.code, ref.code, 'exit status unchanged');
  t.ok(readFileSync(out).equals(ref.out), 'result file unchanged');
});

t.test('unprivileged: the same cycles as user nobody', { skip: process.getuid?.() !== 0 || !userExists(65534) ? 'needs root to switch to uid 65534' : false }, async (t) => {
  const dir = tempDir('nobody', 65534);
  t.teardown(() => removeDir(dir));
  const as = asUser(65534, 65534);
  const ref = await reference(dir, [], as);
  const c = await new Coordinator(join(dir, 'ckpt'), [], as).start();
  t.teardown(() => c.stop());
  const r = await checkpointKillRestart(c, dir, 3, as);
  t.equal(r.finalCode, ref.code, 'exit status equals the uninterrupted run');
  t.ok(r.out.equals(ref.out), 'result file is byte-identical');
});

// On this kernel PR_SET_MM_MAP works even unprivileged, so the restore program normally gives
// the kernel's brk back to the image. Where it cannot (older kernels, seccomp), the restored
// glibc's sbrk fails and malloc must fall back to mmap: force that path and check the result.
t.test('restart where the brk cannot be restored: malloc falls back to mmap', async (t) => {
  const dir = tempDir('brkfallback');
  t.teardown(() => removeDir(dir));
  const ref = await reference(dir);
  const env = { ...process.env, MANA_RESTORE_NO_MM_MAP: '1' };
  const c = await new Coordinator(join(dir, 'ckpt')).start();
  t.teardown(() => c.stop());
  const r = await checkpointKillRestart(c, dir, 2, { env });
  t.equal(r.finalCode, ref.code, 'exit status equals the uninterrupted run');
  t.ok(r.out.equals(ref.out), 'result file is byte-identical (memloop mallocs on every step)');
});
