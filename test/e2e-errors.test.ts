// Bad input and lost parts: each case gets one clear line naming the thing, and never loses the
// checkpoint data it was given.
import t from 'tap';
import { join } from 'node:path';
import {
  cpSync, mkdirSync, readFileSync, writeFileSync, truncateSync, statSync, openSync, readSync,
  writeSync, closeSync, rmSync, readlinkSync, existsSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { createHash } from 'node:crypto';
import {
  Coordinator, ensureBuilt, isLive, mana, manaProc, removeDir, repo, sleep, tempDir, testBin, waitFor,
} from './lib/harness.js';
import { reference, waitNewProc, STEPS, SLEEP_MS } from './lib/scenario.js';

ensureBuilt();

interface Addon {
  patchHeaderForTest(path: string, changes: { vdsoSize?: number; kernelRelease?: string }): void;
  hostFacts(): { vdsoSize: number; kernelRelease: string };
}
const addon = createRequire(import.meta.url)(join(repo, 'build', 'Release', 'mana_native.node')) as Addon;

const lines = (s: string): string[] => s.split('\n').filter((l) => l.trim() !== '');
const sha256 = (f: string): string => createHash('sha256').update(readFileSync(f)).digest('hex');

/** One committed generation of memloop with an input file held open, the process then killed. */
async function oneGeneration(dir: string): Promise<{ ckpt: string; gen: string; input: string }> {
  const ckpt = join(dir, 'ckpt');
  const input = join(dir, 'input.txt');
  writeFileSync(input, 'abcdefghijklmnopqrstuvwxyz\n'.repeat(50));
  const c = await new Coordinator(ckpt).start();
  const launch = manaProc(['launch', '--join', '--coord-port', String(c.port), '--ckptdir', ckpt, '--no-compress', '--',
    testBin('memloop'), join(dir, 'out'), String(STEPS), String(SLEEP_MS), input], { cwd: dir });
  const p = await waitNewProc(c, []);
  await sleep(300);
  await c.bcheckpoint();
  process.kill(p.pid, 'SIGKILL');
  await launch.done;
  await c.stop();
  return { ckpt, gen: join(ckpt, readlinkSync(join(ckpt, 'latest'))), input };
}

/** A copy of a generation dir as its own checkpoint dir, so each case damages its own copy. */
function copyGeneration(gen: string, dir: string, name: string): string {
  const d = join(dir, name);
  mkdirSync(d);
  cpSync(gen, join(d, 'gen-000001'), { recursive: true });
  return join(d, 'gen-000001');
}

t.test('damaged and foreign images, missing files, missing generations', async (t) => {
  const dir = tempDir('errors');
  t.teardown(() => removeDir(dir));
  const { gen, input } = await oneGeneration(dir);
  const img = 'rank-00000.img';
  t.ok(existsSync(join(gen, img)), 'the generation holds rank-00000.img');

  await t.test('truncated image', async (t) => {
    const g = copyGeneration(gen, dir, 'truncated');
    const size = statSync(join(g, img)).size;
    truncateSync(join(g, img), Math.floor(size / 2));
    const v = await mana(['inspect', '--verify', g]);
    t.not(v.code, 0, 'inspect --verify fails');
    t.match(v.stderr + v.stdout, /truncated/i, 'inspect says truncated');
    const r = await mana(['restart', g, '--new-coordinator', '--coord-port', '0']);
    t.not(r.code, 0, 'restart refuses');
    t.equal(lines(r.stderr).length, 1, `one line: ${r.stderr}`);
    t.match(r.stderr, /rank-00000\.img/, 'names the image');
    t.match(r.stderr, /truncated/i, 'says truncated');
  });

  await t.test('a flipped byte in a region fails its checksum', async (t) => {
    const g = copyGeneration(gen, dir, 'flipped');
    const f = join(g, img);
    const fd = openSync(f, 'r+');
    const at = 4096 + 100_000; // inside the first regions' data, past the header
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, at);
    b[0] = b[0]! ^ 0x40;
    writeSync(fd, b, 0, 1, at);
    closeSync(fd);
    const v = await mana(['inspect', '--verify', f]);
    t.not(v.code, 0, 'inspect --verify fails');
    t.match(v.stderr + v.stdout, /checksum/i, 'names a checksum mismatch');
    const r = await mana(['restart', g, '--new-coordinator', '--coord-port', '0']);
    t.not(r.code, 0, 'restart refuses');
    t.equal(lines(r.stderr).length, 1, `one line: ${r.stderr}`);
    t.match(r.stderr, /checksum|corrupt/i, 'says corrupt');
  });

  await t.test('a directory with only a partial generation is not a checkpoint', async (t) => {
    const d = join(dir, 'partial');
    mkdirSync(d);
    cpSync(gen, join(d, '.gen-000002.partial-x1y2'), { recursive: true });
    rmSync(join(d, '.gen-000002.partial-x1y2', 'manifest.json'), { force: true });
    const r = await mana(['restart', d, '--new-coordinator', '--coord-port', '0']);
    t.not(r.code, 0, 'restart refuses');
    t.equal(lines(r.stderr).length, 1, `one line: ${r.stderr}`);
    t.match(r.stderr, /no committed/i, 'says there is no committed generation');
  });

  await t.test('an image from another kernel is refused with an explanation', async (t) => {
    const g = copyGeneration(gen, dir, 'foreign');
    const host = addon.hostFacts();
    addon.patchHeaderForTest(join(g, img), { vdsoSize: host.vdsoSize + 4096, kernelRelease: '5.10.0-other' });
    const r = await mana(['restart', g, '--new-coordinator', '--coord-port', '0']);
    t.not(r.code, 0, 'restart refuses');
    t.equal(lines(r.stderr).length, 1, `one line: ${r.stderr}`);
    t.match(r.stderr, /5\.10\.0-other/, 'names the kernel the image came from');
    t.match(r.stderr, new RegExp(host.kernelRelease.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')), 'names this kernel');
  });

  await t.test('a file open at checkpoint and gone at restart', async (t) => {
    const g = copyGeneration(gen, dir, 'missing');
    const before = sha256(join(g, img));
    rmSync(input);
    const r = await mana(['restart', g, '--new-coordinator', '--coord-port', '0']);
    t.not(r.code, 0, 'restart refuses');
    t.equal(lines(r.stderr).length, 1, `one line: ${r.stderr}`);
    t.match(r.stderr, new RegExp(input.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')), 'names the missing file');
    t.match(r.stderr, /--allow-missing-files/, 'says how to go on anyway');
    t.equal(sha256(join(g, img)), before, 'the image is untouched');
    const r2 = await mana(['restart', g, '--new-coordinator', '--coord-port', '0', '--allow-missing-files'], { timeoutMs: 60_000 });
    t.match(r2.stderr, /input\.txt/, 'warns about the file it replaced');
    // memloop's result does not depend on what it reads, so it must still finish exactly as an
    // uninterrupted run does, reading /dev/null in place of the lost file.
    const ref = await reference(dir, [], {}, STEPS, 'reference-missing.out');
    t.equal(r2.code, ref.code, 'the program ran on to the uninterrupted exit status');
  });
});

t.test('mana command with no coordinator running', async (t) => {
  const r = await mana(['command', '--coord-port', '1', '--status']);
  t.equal(r.code, 1, 'exit status 1');
  t.equal(lines(r.stderr).length, 1, `one line: ${r.stderr}`);
  t.match(r.stderr, /no coordinator/i, 'says there is no coordinator');
});

t.test('a second coordinator on a busy port', async (t) => {
  const dir = tempDir('busy');
  t.teardown(() => removeDir(dir));
  const c = await new Coordinator(dir).start();
  t.teardown(() => c.stop());
  const r = await mana(['launch', '--new-coordinator', '--coord-port', String(c.port), '--', '/bin/true']);
  t.not(r.code, 0, 'launch refuses');
  t.equal(lines(r.stderr).length, 1, `one line: ${r.stderr}`);
  t.match(r.stderr, new RegExp(`${c.port}`), 'names the port');
  t.match(r.stderr, /--join/, 'suggests --join');
});

t.test('SIGKILL of the coordinator does not kill the application', async (t) => {
  const dir = tempDir('coordloss');
  t.teardown(() => removeDir(dir));
  const ref = await reference(dir);
  const ckpt = join(dir, 'ckpt');
  const c1 = await new Coordinator(ckpt).start();
  const out = join(dir, 'mana.out');
  const launch = manaProc(['launch', '--join', '--coord-port', String(c1.port), '--ckptdir', ckpt, '--',
    testBin('memloop'), out, String(STEPS * 2), String(SLEEP_MS)], { cwd: dir });
  const p = await waitNewProc(c1, []);
  await c1.stop();
  await sleep(500);
  const size1 = statSync(out).size;
  await sleep(500);
  t.ok(statSync(out).size > size1, 'the application keeps running without its coordinator');
  process.kill(p.pid, 0);

  // A new coordinator on the same port: the agent re-attaches, checkpoints work again, and a
  // second program can join the job.
  const c2 = new Coordinator(ckpt);
  c2.port = c1.port;
  c2.proc = manaProc(['coordinator', '--port', String(c1.port), '--ckptdir', ckpt]);
  t.teardown(() => c2.stop());
  await waitNewProc(c2, [], 30_000);
  const out2 = join(dir, 'second.out');
  const second = manaProc(['launch', '--join', '--coord-port', String(c2.port), '--ckptdir', ckpt, '--',
    testBin('memloop'), out2, String(STEPS), String(SLEEP_MS)], { cwd: dir });
  await waitFor('two processes', async () => ((await c2.list().catch(() => [])).filter(isLive).length === 2 ? true : undefined));
  const g = await c2.bcheckpoint();
  t.equal(g.generation, 1, 'first generation after the coordinator came back');
  const procs = await c2.list();
  for (const q of procs) process.kill(q.pid, 'SIGKILL');
  await launch.done;
  await second.done;

  // Both programs come back from generation 1 under one `mana restart` and finish as if never
  // interrupted.
  const restart = manaProc(['restart', ckpt, '--join', '--coord-port', String(c2.port)], { cwd: dir });
  const d = await restart.done;
  const ref2 = await reference(dir, [], {}, STEPS * 2, 'reference-long.out');
  t.ok(readFileSync(out).equals(ref2.out), 'the first program finished byte-identical');
  t.ok(readFileSync(out2).equals(ref.out), 'the second program finished byte-identical');
  t.ok(d.code === ref.code || d.code === ref2.code, `mana restart exits with a program's status (${d.code})`);
});
