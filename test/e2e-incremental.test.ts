// Incremental images (DESIGN §7 B6): the second and later checkpoints of a process store only
// the chunks that changed and reference the rest in the previous generation's image. A restart
// from the newest image of such a chain must be exactly as good as from a full image, and a
// damaged parent must be refused in one line that names the parent.
import t from 'tap';
import { join } from 'node:path';
import {
  cpSync, readFileSync, openSync, readSync, writeSync, closeSync, readlinkSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import {
  Coordinator, ensureBuilt, mana, manaProc, removeDir, repo, sleep, tempDir, testBin,
} from './lib/harness.js';
import { reference, waitNewProc, latestGeneration, STEPS, SLEEP_MS } from './lib/scenario.js';

ensureBuilt();

interface Desc {
  parent: string;
  parentGeneration: number;
  refBytes: number;
  storedBytes: number;
  rawBytes: number;
  regions: { start: string; storedBytes: number; chunks: number; parentChunks: number }[];
}
interface Addon {
  readImage(path: string): Desc;
}
const addon = createRequire(import.meta.url)(join(repo, 'build', 'Release', 'mana_native.node')) as Addon;
const lines = (s: string): string[] => s.split('\n').filter((l) => l.trim() !== '');
const img = 'rank-00000.img';
const genDir = (ckpt: string, g: number): string => join(ckpt, `gen-${String(g).padStart(6, '0')}`);

t.test('three checkpoints, kill, restart from the incremental latest', async (t) => {
  const dir = tempDir('incr');
  t.teardown(() => removeDir(dir));
  const ref = await reference(dir);
  const ckpt = join(dir, 'ckpt');
  const c = await new Coordinator(ckpt).start();
  t.teardown(() => c.stop());
  const out = join(dir, 'mana.out');
  const launch = manaProc(['launch', '--join', '--coord-port', String(c.port), '--ckptdir', ckpt, '--no-compress', '--',
    testBin('memloop'), out, String(STEPS), String(SLEEP_MS)], { cwd: dir });
  const p = await waitNewProc(c, []);
  for (let i = 0; i < 3; i++) {
    await sleep(300);
    await c.bcheckpoint();
  }
  process.kill(p.pid, 'SIGKILL');
  await launch.done;
  t.equal(latestGeneration(ckpt), 3, 'three generations');

  const full = addon.readImage(join(genDir(ckpt, 1), img));
  t.equal(full.parent, '', 'generation 1 is a full image');
  for (const g of [2, 3]) {
    const d = addon.readImage(join(genDir(ckpt, g), img));
    t.equal(d.parent, `../gen-${String(g - 1).padStart(6, '0')}/${img}`, `generation ${g} names its parent`);
    t.equal(d.parentGeneration, g - 1, `generation ${g} records the parent generation`);
    t.ok(d.refBytes > 0 && d.storedBytes < full.storedBytes, `generation ${g} stores ${d.storedBytes} of ${full.storedBytes} bytes, references ${d.refBytes}`);
    const m = JSON.parse(readFileSync(join(genDir(ckpt, g), 'manifest.json'), 'utf8')) as { procs: { parentGeneration: number; chainDepth: number }[] };
    t.equal(m.procs[0]?.parentGeneration, g - 1, `manifest of generation ${g} lists the parent generation`);
    t.equal(m.procs[0]?.chainDepth, g - 1, `chain depth ${g - 1}`);
  }
  const v = await mana(['inspect', '--verify', join(genDir(ckpt, 3), img)]);
  t.equal(v.code, 0, `inspect --verify passes the whole chain: ${v.stderr}`);
  t.match(v.stdout, /through 2 parent image/, 'inspect shows the chain it verified');

  // keep a pristine copy of the chain for the corruption case below
  cpSync(ckpt, join(dir, 'damaged'), { recursive: true, verbatimSymlinks: true });

  const restart = manaProc(['restart', ckpt, '--join', '--coord-port', String(c.port)], { cwd: dir });
  const d = await restart.done;
  t.equal(d.code, ref.code, 'exit status equals the uninterrupted run');
  t.ok(readFileSync(out).equals(ref.out), 'result file is byte-identical to the uninterrupted run');

  await t.test('a corrupted parent is refused in one line naming it', async (t) => {
    const dmg = join(dir, 'damaged');
    t.equal(readlinkSync(join(dmg, 'latest')), 'gen-000003', 'the copy points at generation 3');
    // Flip a byte in generation 1's data of a region that generations 2 and 3 only reference
    // (the program's own mapped file never changes). Without compression a region's stored
    // chunks follow the previous regions' in the file, after the 8192-byte header.
    const [g1, g2, g3] = [1, 2, 3].map((g) => addon.readImage(join(genDir(dmg, g), img)));
    const refd = (d: Desc, start: string): boolean => d.regions.some((r) => r.start === start && r.chunks > 0 && r.parentChunks === r.chunks);
    let at = 8192;
    let found = -1;
    for (const r of g1!.regions) {
      if (r.storedBytes > 0 && refd(g2!, r.start) && refd(g3!, r.start)) {
        found = at + Math.floor(r.storedBytes / 2);
        break;
      }
      at += r.storedBytes;
    }
    t.ok(found > 0, 'generation 3 references stored data of generation 1 through generation 2');
    const f = join(genDir(dmg, 1), img);
    const fd = openSync(f, 'r+');
    at = found;
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, at);
    b[0] = b[0]! ^ 0x40;
    writeSync(fd, b, 0, 1, at);
    closeSync(fd);
    const vi = await mana(['inspect', '--verify', join(genDir(dmg, 3), img)]);
    t.not(vi.code, 0, 'inspect --verify of generation 3 fails');
    t.match(vi.stderr + vi.stdout, /gen-000001\/rank-00000\.img/, 'inspect names the damaged parent');
    const r = await mana(['restart', dmg, '--new-coordinator', '--coord-port', '0']);
    t.not(r.code, 0, 'restart refuses');
    t.equal(lines(r.stderr).length, 1, `one line: ${r.stderr}`);
    t.match(r.stderr, /gen-000001\/rank-00000\.img/, 'names the parent image');
    t.match(r.stderr, /checksum|corrupt/i, 'says corrupt');
  });
});
