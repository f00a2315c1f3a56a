// End to end: a file deleted while open is saved with the image and recreated at restart as
// an unlinked file with the same contents, offsets and flags.
import t from 'tap';
import { join } from 'node:path';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { Coordinator, ensureBuilt, removeDir, runNative, tempDir, testBin } from './lib/harness.js';
import { cycleProgram } from './lib/scenario.js';

ensureBuilt();

t.test('a deleted file read and appended to across two checkpoint/SIGKILL/restart cycles', async (t) => {
  const dir = tempDir('deleted');
  t.teardown(() => removeDir(dir));
  for (const d of ['ref', 'mana']) mkdirSync(join(dir, d));
  const ref = await runNative(testBin('deleted'), [join(dir, 'ref.out'), '100', '50', join(dir, 'ref')]);
  const c = await new Coordinator(join(dir, 'ckpt')).start();
  t.teardown(() => c.stop());
  const r = await cycleProgram(c, dir, [testBin('deleted'), join(dir, 'mana.out'), '100', '50', join(dir, 'mana')], { cycles: 2 });
  t.same(r.generations, [1, 2]);
  t.notMatch(r.stderr, /\(deleted\)\) was not restored|could not recreate/, 'the deleted file was not left closed');
  t.equal(r.finalCode, ref.code, 'exit status equals the uninterrupted run');
  t.equal(readFileSync(join(dir, 'mana.out'), 'utf8'), readFileSync(join(dir, 'ref.out'), 'utf8'), 'report is identical');
  t.same(readdirSync(join(dir, 'mana')), [], 'nothing was left in the directory (the file stays unlinked)');
});
