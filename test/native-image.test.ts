// The Node addon over real images: the C test program (native/image/test_image.c) writes a raw
// and a zstd image whose contents it knows, plus fixture.json; here they are read back through
// the addon, then truncated, flipped and patched.
import t from 'tap';
const tap = t;
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, truncateSync, writeSync, closeSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { release, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

interface Region {
  start: string; end: string; size: number; prot: string; kind: string; path: string;
  storedBytes: number; chunks: number; zeroChunks: number; compressedChunks: number;
}
interface Image {
  path: string; version: number; compressed: boolean; fileSize: number; rawBytes: number;
  storedBytes: number; headerHash: string;
  info: {
    pid: number; procId: number; generation: number; createdUnixMs: number; hostname: string;
    kernelRelease: string; kernelVersion: string; glibcVersion: string; exe: string; cwd: string;
    cmdline: string; vdsoSize: number; brkStart: string; brkCur: string;
  };
  threads: { tid: number; main: boolean; ckpt: boolean; helper: boolean; fsBase: string }[];
  regions: Region[];
  fds: { fd: number; kind: string; path: string; offset: number; flags: number; size: number }[];
}
interface Addon {
  readImage(path: string): Image;
  verifyImage(path: string): { ok: boolean; error?: string; chunks: number; rawBytes: number };
  hostFacts(): { kernelRelease: string; kernelVersion: string; glibcVersion: string; vdsoSize: number };
  patchHeaderForTest(path: string, changes: { vdsoSize?: number; kernelRelease?: string }): void;
}

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const addon = createRequire(import.meta.url)('../build/Release/mana_native.node') as Addon;

const MiB = 1024 * 1024;
const CHUNK = 1 * MiB; // what the writer cuts regions into since format version 2
const HEADER = 8192;

execFileSync('make', ['-s', '-C', join(repo, 'native'), '-f', 'image/test.mk', 'out/test_image'], { stdio: 'inherit' });
const dir = mkdtempSync(join(tmpdir(), 'mana-native-image-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const out = execFileSync(join(repo, 'native', 'out', 'test_image'), [dir], { encoding: 'utf8' });
t.match(out, /^\d+ passed, 0 failed$/m, 'C image tests pass');

const fixture = JSON.parse(readFileSync(join(dir, 'fixture.json'), 'utf8')) as {
  raw: { headerHash: string; fileSize: number; storedBytes: number };
  zstd: { headerHash: string; fileSize: number; storedBytes: number };
  rawBytes: number;
  regions: { start: string; end: string; size: number; path: string }[];
};
const rawImg = join(dir, 'raw.img');
const zstdImg = join(dir, 'zstd.img');

const oneLine = (t: { match: typeof tap.match; notMatch: typeof tap.notMatch }, msg: string | undefined, what: string): void => {
  t.match(msg, /^mana: /, `${what}: starts with "mana: "`);
  t.notMatch(msg, /\n/, `${what}: one line`);
};

t.test('readImage: raw image', async (t) => {
  const img = addon.readImage(rawImg);
  t.equal(img.version, 2);
  t.equal(img.path, rawImg);
  t.equal(img.compressed, false);
  t.equal(img.fileSize, fixture.raw.fileSize);
  t.equal(img.fileSize, statSync(rawImg).size);
  t.equal(img.headerHash, fixture.raw.headerHash);
  t.match(img.headerHash, /^[0-9a-f]{16}$/);
  t.equal(img.rawBytes, fixture.rawBytes);
  t.equal(img.storedBytes, fixture.raw.storedBytes);

  t.same(img.info, {
    pid: 4242, procId: 3, generation: 7, createdUnixMs: 1700000000123, hostname: 'testhost',
    kernelRelease: '6.1.0-test-amd64', kernelVersion: '#1 SMP PREEMPT_DYNAMIC Debian 6.1.0',
    glibcVersion: '2.36', exe: '/usr/bin/testapp', cwd: '/tmp', cmdline: 'testapp --size 42',
    vdsoSize: 0x2000, brkStart: '0x555555560000', brkCur: '0x555555581000',
  });
  t.same(img.threads, [
    { tid: 4242, main: true, ckpt: false, helper: false, fsBase: '0x7ffff7d8a740' },
    { tid: 4243, main: false, ckpt: false, helper: false, fsBase: '0x7ffff758b6c0' },
    { tid: 4244, main: false, ckpt: true, helper: false, fsBase: '0x7ffff6d8a6c0' },
  ]);
  t.same(img.fds.map((f) => [f.fd, f.kind, f.path, f.offset, f.size]), [
    [0, 'std', '/dev/pts/0', 0, 0],
    [3, 'regular', '/tmp/data.log', 1234, 99999],
    [4, 'skipped', 'pipe:[123]', 0, 0],
    [5, 'deleted', '/tmp/gone (deleted)', 0, 10],
  ]);

  t.equal(img.regions.length, fixture.regions.length);
  img.regions.forEach((r, i) => {
    const f = fixture.regions[i]!;
    t.same([r.start, r.end, r.size, r.path], [f.start, f.end, f.size, f.path], `region ${i} placement`);
    t.equal(BigInt(r.end) - BigInt(r.start), BigInt(r.size), `region ${i} size matches its bounds`);
  });
  t.same(img.regions.map((r) => r.kind), ['anon', 'heap', 'guard', 'file', 'anon', 'shared-file', 'stack']);
  t.same(img.regions.map((r) => r.prot), ['rw-p', 'rw-p', '---p', 'r--p', 'rw-p', 'rw-s', 'rw-p']);
  const [random, heap, guard, , untouched, shared, stack] = img.regions as Region[] & { length: 7 };
  // 8 MiB + 48 KiB of random bytes: eight full chunks and a partial one, all stored raw.
  t.same([random!.chunks, random!.zeroChunks, random!.compressedChunks, random!.storedBytes], [9, 0, 0, random!.size]);
  // 16 MiB heap with bytes set only in its second chunk.
  t.same([heap!.chunks, heap!.zeroChunks, heap!.storedBytes], [16, 15, CHUNK]);
  t.same([guard!.chunks, guard!.storedBytes], [0, 0], 'guard region stores nothing');
  t.same([shared!.chunks, shared!.storedBytes], [0, 0], 'shared file mapping stores nothing');
  t.same([untouched!.chunks, untouched!.zeroChunks, untouched!.storedBytes], [8, 8, 0], 'untouched memory is all zero chunks');
  t.same([stack!.chunks, stack!.storedBytes], [1, 4096]);
  const stored = img.regions.reduce((s, r) => s + r.storedBytes, 0);
  t.equal(stored, img.storedBytes, 'region stored bytes add up');
  t.ok(img.fileSize > HEADER + stored, 'metadata follows the data');
});

t.test('readImage: zstd image', async (t) => {
  const raw = addon.readImage(rawImg);
  const img = addon.readImage(zstdImg);
  t.equal(img.compressed, true);
  t.equal(img.headerHash, fixture.zstd.headerHash);
  t.not(img.headerHash, raw.headerHash);
  t.equal(img.rawBytes, raw.rawBytes);
  t.equal(img.storedBytes, fixture.zstd.storedBytes);
  const text = img.regions[3]!;
  t.equal(text.path, '/usr/lib/x86_64-linux-gnu/libfake.so.1');
  t.same([text.chunks, text.compressedChunks], [9, 9], 'text compresses chunk by chunk');
  t.ok(text.storedBytes < text.size / 2, `text stored in ${text.storedBytes} of ${text.size} bytes`);
  t.equal(img.regions[0]!.compressedChunks, 0, 'random data is kept raw');
  t.equal(img.regions[0]!.storedBytes, img.regions[0]!.size);
});

t.test('verifyImage: intact images', async (t) => {
  for (const p of [rawImg, zstdImg]) {
    const v = addon.verifyImage(p);
    const img = addon.readImage(p);
    t.same(v, { ok: true, chunks: img.regions.reduce((s, r) => s + r.chunks, 0), rawBytes: img.rawBytes }, p);
    t.equal(v.chunks, 9 + 16 + 9 + 8 + 1);
  }
});

t.test('truncated image', async (t) => {
  for (const [src, cut] of [[rawImg, 1], [zstdImg, 1], [rawImg, 5 * MiB]] as const) {
    const p = join(dir, 'truncated.img');
    copyFileSync(src, p);
    const size = statSync(p).size;
    truncateSync(p, size - cut);
    t.throws(() => addon.readImage(p), {
      message: `mana: image ${p} is truncated (${size - cut} of ${size} bytes); it was not fully written — use an older generation`,
    });
    const v = addon.verifyImage(p);
    t.equal(v.ok, false);
    t.match(v.error, /is truncated \(/);
    oneLine(t, v.error, 'truncated');
    rmSync(p);
  }
});

function flip(p: string, off: number): void {
  const fd = openSync(p, 'r+');
  const b = Buffer.alloc(1);
  readSync(fd, b, 0, 1, off);
  b[0] = b[0]! ^ 0x10;
  writeSync(fd, b, 0, 1, off);
  closeSync(fd);
}

t.test('flipped bytes', async (t) => {
  const p = join(dir, 'flipped.img');
  const img = addon.readImage(rawImg);
  const r0 = img.regions[0]!;

  // In region data: metadata is intact, so reading works and verifying names the chunk.
  copyFileSync(rawImg, p);
  flip(p, HEADER + CHUNK + 777); // region 0 starts the data area: this is its chunk 1
  t.equal(addon.readImage(p).headerHash, img.headerHash);
  const v = addon.verifyImage(p);
  t.equal(v.ok, false);
  t.equal(v.error, `mana: image ${p} is corrupt: region ${r0.start}-${r0.end} (anon) chunk 1 checksum mismatch — use an older generation`);

  // In a compressed chunk: either zstd or the hash notices, naming the file region.
  const z = addon.readImage(zstdImg);
  const before = z.regions.slice(0, 3).reduce((s, r) => s + r.storedBytes, 0);
  copyFileSync(zstdImg, p);
  flip(p, HEADER + before + 100);
  const vz = addon.verifyImage(p);
  t.equal(vz.ok, false);
  t.match(vz.error, /region 0x[0-9a-f]+-0x[0-9a-f]+ \(file \/usr\/lib\/x86_64-linux-gnu\/libfake\.so\.1\) chunk 0 (checksum mismatch|does not decompress)/);
  oneLine(t, vz.error, 'compressed flip');

  // In the metadata (the last bytes are the string table) and in the header.
  copyFileSync(rawImg, p);
  flip(p, statSync(p).size - 2);
  t.throws(() => addon.readImage(p), { message: `mana: image ${p} is corrupt: metadata checksum mismatch — use an older generation` });
  copyFileSync(rawImg, p);
  flip(p, 100);
  t.throws(() => addon.readImage(p), { message: `mana: image ${p} is corrupt: header checksum mismatch — use an older generation` });
  rmSync(p);
});

t.test('other errors are one line naming the file', async (t) => {
  const missing = join(dir, 'nope.img');
  t.throws(() => addon.readImage(missing), { message: `mana: cannot open image ${missing}: No such file or directory` });
  t.throws(() => addon.readImage('/etc/passwd'), { message: /^mana: \/etc\/passwd is not a mana image/ });
  // @ts-expect-error wrong argument type on purpose
  t.throws(() => addon.readImage(42), TypeError);
  const v = addon.verifyImage(missing);
  t.same([v.ok, v.chunks, v.rawBytes], [false, 0, 0]);
  oneLine(t, v.error, 'missing');
});

t.test('hostFacts', async (t) => {
  const h = addon.hostFacts();
  t.equal(h.kernelRelease, release());
  t.match(h.kernelVersion, /\S/);
  t.match(h.glibcVersion, /^\d+\.\d+/);
  t.ok(h.vdsoSize > 0 && h.vdsoSize % 4096 === 0, `vdso size ${h.vdsoSize}`);
});

t.test('patchHeaderForTest', async (t) => {
  const p = join(dir, 'patched.img');
  copyFileSync(zstdImg, p);
  const before = addon.readImage(p);
  addon.patchHeaderForTest(p, { vdsoSize: 0x3000, kernelRelease: '5.10.0-99-fake' });
  const after = addon.readImage(p);
  t.equal(after.info.vdsoSize, 0x3000);
  t.equal(after.info.kernelRelease, '5.10.0-99-fake');
  t.not(after.headerHash, before.headerHash, 'header hash recomputed');
  t.same(after.regions, before.regions);
  t.equal(addon.verifyImage(p).ok, true);
  addon.patchHeaderForTest(p, { kernelRelease: 'x'.repeat(200) });
  t.equal(addon.readImage(p).info.kernelRelease, 'x'.repeat(64), 'long release is cut to the field');
  t.equal(addon.readImage(p).info.vdsoSize, 0x3000, 'unchanged fields stay');
  t.throws(() => addon.patchHeaderForTest('/etc/passwd', { vdsoSize: 1 }), { message: /not a mana image/ });
  rmSync(p);
});
