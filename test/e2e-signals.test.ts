// End to end: pending signals (process- and thread-directed, blocked at checkpoint time),
// setitimer timers and POSIX timers (timer_create) survive SIGKILL + restart: the pending
// signals are delivered once unblocked, the timers fire with their remaining time, keep their
// intervals, and the timer_t the program holds stays valid.
import t from 'tap';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { Coordinator, ensureBuilt, removeDir, runNative, tempDir, testBin } from './lib/harness.js';
import { cycleProgram } from './lib/scenario.js';

ensureBuilt();

t.test('pending signals and timers across two checkpoint/SIGKILL/restart cycles', async (t) => {
  const dir = tempDir('signals');
  t.teardown(() => removeDir(dir));
  const args = (o: string): string[] => [join(dir, o), '100', '50']; // outlasts 2 cycles on a loaded machine
  const ref = await runNative(testBin('sigcheck'), args('ref.out'));
  const c = await new Coordinator(join(dir, 'ckpt')).start();
  t.teardown(() => c.stop());
  // both checkpoints land before the timers' deadlines (1.5 s and 2 s after the start)
  const r = await cycleProgram(c, dir, [testBin('sigcheck'), ...args('mana.out')], { cycles: 2, waitMs: [100, 400] });
  t.same(r.generations, [1, 2]);
  t.notMatch(r.stderr, /POSIX timer/, 'no timer warning');
  t.equal(r.finalCode, ref.code, 'exit status equals the uninterrupted run');
  t.equal(readFileSync(join(dir, 'mana.out'), 'utf8'), readFileSync(join(dir, 'ref.out'), 'utf8'), 'report is identical');
});
