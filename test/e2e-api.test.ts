// End to end: the application API of mana.h. mana_checkpoint() returns "checkpointed" in the
// original process and "restarted" in a process restarted from that checkpoint;
// mana_disable_ckpt()/mana_enable_ckpt() hold a checkpoint back until the section is over.
import t from 'tap';
import { join } from 'node:path';
import { existsSync, readFileSync } from 'node:fs';
import { Coordinator, ensureBuilt, manaProc, removeDir, runNative, tempDir, testBin, waitFor } from './lib/harness.js';
import { latestGeneration, launchProgram, waitNewProc } from './lib/scenario.js';

ensureBuilt();

const STEPS = 30;
const AT = 10;
const expected = (result: string): string => {
  let s = '';
  for (let i = 0; i < STEPS; i++) {
    s += `step ${i}\n`;
    if (i === AT) s += `mana_checkpoint: ${result}\n`;
  }
  return s;
};
const fileHas = (f: string, what: string): true | undefined =>
  existsSync(f) && readFileSync(f, 'utf8').includes(what) ? true : undefined;

t.test('without mana the API is inert: mana_checkpoint fails with ENOSYS', async (t) => {
  const dir = tempDir('api-native');
  t.teardown(() => removeDir(dir));
  const d = await runNative(testBin('apicheck'), [join(dir, 'o'), String(STEPS), '1', String(AT), 'checkpoint']);
  t.equal(d.code, 0);
  t.equal(readFileSync(join(dir, 'o'), 'utf8'), expected('failed: ENOSYS'));
});

t.test('mana_checkpoint: "checkpointed", then after SIGKILL and restart "restarted"', async (t) => {
  const dir = tempDir('api-ckpt');
  t.teardown(() => removeDir(dir));
  const c = await new Coordinator(join(dir, 'ckpt')).start();
  t.teardown(() => c.stop());
  const out = join(dir, 'mana.out');
  const launch = launchProgram(c, dir, [testBin('apicheck'), out, String(STEPS), '100', String(AT), 'checkpoint']);
  const p = await waitNewProc(c, []);
  await waitFor('the checkpointed return', () => fileHas(out, 'mana_checkpoint: checkpointed'), 30_000);
  t.equal(latestGeneration(c.ckptdir), 1, 'the checkpoint the program asked for is committed');
  process.kill(p.pid, 'SIGKILL');
  await launch.done;
  const r = await manaProc(['restart', c.ckptdir, '--join', '--coord-port', String(c.port)], { cwd: dir }).done;
  t.equal(r.code, 0, 'the restarted program exits normally');
  t.equal(readFileSync(out, 'utf8'), expected('restarted'), 'the restarted process got MANA_RESTARTED');
});

t.test('mana_checkpoint without a kill: "checkpointed", and the program runs on', async (t) => {
  const dir = tempDir('api-nokill');
  t.teardown(() => removeDir(dir));
  const c = await new Coordinator(join(dir, 'ckpt')).start();
  t.teardown(() => c.stop());
  const out = join(dir, 'mana.out');
  const d = await launchProgram(c, dir, [testBin('apicheck'), out, String(STEPS), '10', String(AT), 'checkpoint']).done;
  t.equal(d.code, 0);
  t.equal(readFileSync(out, 'utf8'), expected('checkpointed'));
});

t.test('mana_disable_ckpt: a checkpoint waits until the section is over', async (t) => {
  const dir = tempDir('api-critical');
  t.teardown(() => removeDir(dir));
  const c = await new Coordinator(join(dir, 'ckpt')).start();
  t.teardown(() => c.stop());
  const out = join(dir, 'mana.out');
  const launch = launchProgram(c, dir, [testBin('apicheck'), out, String(STEPS), '50', String(AT), 'critical']);
  await waitNewProc(c, []);
  await waitFor('the critical section', () => fileHas(out, 'critical begin'), 30_000, 10);
  const g = await c.bcheckpoint();
  t.equal(g.generation, 1);
  t.ok(readFileSync(out, 'utf8').includes('critical end'), 'the checkpoint completed only after the (nested) section ended');
  const d = await launch.done;
  t.equal(d.code, 0);
});
