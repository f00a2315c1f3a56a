// End to end: file descriptors that cannot be restored (pipes, sockets, FIFOs, eventfd & co.)
// make a checkpoint fail with one line naming the fd, unless the job was launched with
// --drop-unrestorable-fds; /dev/null and friends are reopened at restart; MAP_SHARED file
// mappings are re-mapped from the file. Every restarted run must equal an uninterrupted one.
import t from 'tap';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { Coordinator, ensureBuilt, removeDir, runNative, tempDir, testBin } from './lib/harness.js';
import { cycleProgram, failedCheckpoint, latestGeneration, launchProgram, waitNewProc } from './lib/scenario.js';

ensureBuilt();

const STEPS = '40';
// runs that go through checkpoint/kill/restart cycles must outlast them even on a loaded machine
const CYCLE_STEPS = '120';
const MS = '50';

for (const kind of ['pipe', 'socket', 'fifo', 'eventfd', 'epoll', 'timerfd', 'signalfd']) {
  t.test(`a held ${kind} fails the checkpoint with one line; the job runs on`, async (t) => {
    const dir = tempDir(`fd-${kind}`);
    t.teardown(() => removeDir(dir));
    const arg = kind === 'fifo' ? `fifo:${join(dir, 'f.fifo')}` : kind;
    const ref = await runNative(testBin('fdkinds'), [join(dir, 'ref.out'), STEPS, MS, arg]);
    const c = await new Coordinator(join(dir, 'ckpt')).start();
    t.teardown(() => c.stop());
    const launch = launchProgram(c, dir, [testBin('fdkinds'), join(dir, 'mana.out'), STEPS, MS, arg]);
    const p = await waitNewProc(c, []);
    const err = await failedCheckpoint(c);
    const what = { pipe: 'a pipe \\(pipe:\\[', socket: 'a socket \\(socket:\\[', fifo: 'a FIFO \\(/', eventfd: 'an eventfd',
      epoll: 'an epoll instance', timerfd: 'a timerfd', signalfd: 'a signalfd' }[kind];
    t.match(err, new RegExp(`cannot checkpoint pid ${p.pid}: fd \\d+ is ${what}.*close it before checkpointing, or launch with --drop-unrestorable-fds`), err);
    t.notOk(err.includes('\n'), 'one line');
    t.equal(latestGeneration(c.ckptdir), 0, 'no generation was committed');
    const d = await launch.done;
    t.equal(d.code, ref.code, 'the job ran on to its normal exit status');
    t.ok(readFileSync(join(dir, 'mana.out')).equals(readFileSync(join(dir, 'ref.out'))), 'and its normal output');
  });
}

t.test('--drop-unrestorable-fds: the pipe is skipped, the restart warns, the program runs on', async (t) => {
  const dir = tempDir('fd-drop');
  t.teardown(() => removeDir(dir));
  const ref = await runNative(testBin('fdkinds'), [join(dir, 'ref.out'), CYCLE_STEPS, MS, 'pipe']);
  const c = await new Coordinator(join(dir, 'ckpt')).start();
  t.teardown(() => c.stop());
  const r = await cycleProgram(c, dir, [testBin('fdkinds'), join(dir, 'mana.out'), CYCLE_STEPS, MS, 'pipe'],
    { cycles: 2, launchArgs: ['--drop-unrestorable-fds'] });
  t.same(r.generations, [1, 2], 'both checkpoints were committed');
  t.match(r.stderr, /fd \d+ \(pipe:\[\d+\]\) was not restored/, 'the restart says which fd it left closed');
  t.equal(r.finalCode, ref.code, 'exit status equals the uninterrupted run');
  t.ok(readFileSync(join(dir, 'mana.out')).equals(readFileSync(join(dir, 'ref.out'))), 'output is byte-identical');
});

t.test('/dev/null, /dev/zero, /dev/urandom are reopened at restart', async (t) => {
  const dir = tempDir('fd-dev');
  t.teardown(() => removeDir(dir));
  const ref = await runNative(testBin('fdkinds'), [join(dir, 'ref.out'), CYCLE_STEPS, MS, 'devices']);
  const c = await new Coordinator(join(dir, 'ckpt')).start();
  t.teardown(() => c.stop());
  const r = await cycleProgram(c, dir, [testBin('fdkinds'), join(dir, 'mana.out'), CYCLE_STEPS, MS, 'devices'], { cycles: 2 });
  t.same(r.generations, [1, 2]);
  t.notMatch(r.stderr, /\(\/dev\/[a-z]+\) was not restored/, "no device fd was left closed");
  t.equal(r.finalCode, ref.code, 'exit status equals the uninterrupted run (reads and writes on the devices worked)');
  t.ok(readFileSync(join(dir, 'mana.out')).equals(readFileSync(join(dir, 'ref.out'))), 'output is byte-identical');
});

t.test('MAP_SHARED file mapping: writes before and after the checkpoint reach the file', async (t) => {
  const dir = tempDir('fd-shm');
  t.teardown(() => removeDir(dir));
  const ref = await runNative(testBin('sharedmap'), [join(dir, 'ref.out'), join(dir, 'ref.dat'), CYCLE_STEPS, MS]);
  const c = await new Coordinator(join(dir, 'ckpt')).start();
  t.teardown(() => c.stop());
  const r = await cycleProgram(c, dir, [testBin('sharedmap'), join(dir, 'mana.out'), join(dir, 'mana.dat'), CYCLE_STEPS, MS], { cycles: 2 });
  t.same(r.generations, [1, 2]);
  t.equal(r.finalCode, ref.code, 'exit status equals the uninterrupted run');
  t.ok(readFileSync(join(dir, 'mana.out')).equals(readFileSync(join(dir, 'ref.out'))), 'output (with the file checksum) is byte-identical');
  t.ok(readFileSync(join(dir, 'mana.dat')).equals(readFileSync(join(dir, 'ref.dat'))), 'the mapped file is byte-identical');
});

