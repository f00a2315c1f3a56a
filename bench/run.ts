// mana benchmarks (DESIGN.md §7). Every machine-dependent figure is a ratio against a baseline
// measured in the same run, and every figure is the median of REPS repetitions, interleaved with
// its baseline so that drifts of the (virtual) disk hit both alike.
//
//   npm run bench                          # B3 at 1 and 4 GiB, B4 at 64 MiB
//   MANA_BENCH_SIZES=1024 MANA_BENCH_REPS=5 npm run bench
//   MANA_BENCH_ONLY=B3 MANA_BENCH_B3=raw,threads npm run bench   # some B3 variants only
//
// B3: image write and read throughput of a process holding SIZE MiB, raw and zstd, against dd of
//     the same size to the same directory (write: conv=fsync; read: of=/dev/null). Reads are
//     measured cold (page cache dropped) when running as root, warm otherwise; both sides alike.
// B4: `--bcheckpoint` latency for a 64 MiB process, coordinator-side (suspend -> committed) and
//     as the user sees it (the CLI's wall time); then for an MPI job of 4 ranks × 64 MiB on each
//     MPI (bench/mpi-ckpt.ts).
// drain: that MPI job's checkpoint while 1 MiB messages are in flight between all pairs, against
//     the idle job's (bench/mpi-ckpt.ts).
// B6: incremental image: a process holding SIZE MiB of random bytes, a full checkpoint, then 5 %
//     of the memory rewritten (fillmem on SIGUSR1: 16 spans), a second checkpoint: bytes written
//     and time against the full one.
// B1/B2: the MPI shim against native MPI on both lower halves (bench/mpi.ts); only when
//     MANA_BENCH_ONLY names them, e.g. MANA_BENCH_ONLY=B1,B2 MANA_BENCH_REPS=5 npm run bench.
// replay: restart time of an MPI job that made and freed N communicators and datatypes, with
//     and without the replay log's pruning (bench/mpi-replay.ts); only when MANA_BENCH_ONLY
//     names it.
// cluster: MPI jobs over 2 nodes of the namespace cluster (bench/cluster.ts): checkpoint time
//     against the same job on one node, and start-up against native mpirun over OpenSSH; only
//     when MANA_BENCH_ONLY names it (root, sshd).
import { spawnSync } from 'node:child_process';
import {
  existsSync, mkdirSync, rmSync, writeFileSync, readdirSync, statSync, openSync, writeSync, closeSync,
} from 'node:fs';
import { randomFillSync } from 'node:crypto';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import {
  Coordinator, manaProc, testBin, waitFor, sleep, ensureBuilt, type Proc,
} from '../test/lib/harness.js';
import { waitNewProc } from '../test/lib/scenario.js';
import { mpiBench, type MpiRow } from './mpi.js';
import { mpiCkptBench } from './mpi-ckpt.js';
import { clusterBench } from './cluster.js';
import { mpiReplayBench } from './mpi-replay.js';

ensureBuilt();
const sizes = (process.env.MANA_BENCH_SIZES ?? '1024,4096').split(',').map(Number);
const reps = Number(process.env.MANA_BENCH_REPS ?? 3);
const root = process.env.MANA_BENCH_DIR ?? join(tmpdir(), `mana-bench-${process.pid}`);
mkdirSync(root, { recursive: true });
const isRoot = process.getuid?.() === 0;

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const now = (): number => Number(process.hrtime.bigint()) / 1e9;

function dropCaches(): void {
  if (!isRoot) return;
  spawnSync('sync');
  try {
    writeFileSync('/proc/sys/vm/drop_caches', '3');
  } catch {
    /* not allowed in this container: reads stay warm on both sides */
  }
}

// DESIGN.md's baseline is dd of the same size; on this VM's virtual disk zeros are written about
// twice as fast as other data, so B3 also reports dd of random bytes (from memory, /dev/shm) as
// the like-for-like baseline.
function randomSource(mib: number): string {
  const f = `/dev/shm/mana-bench-random-${process.pid}`;
  if (existsSync(f) && statSync(f).size === mib * 2 ** 20) return f;
  const fd = openSync(f, 'w', 0o600);
  const block = Buffer.alloc(64 * 2 ** 20);
  for (let done = 0; done < mib; done += 64) writeSync(fd, randomFillSync(block), 0, Math.min(64, mib - done) * 2 ** 20);
  closeSync(fd);
  return f;
}

function ddWrite(file: string, mib: number, from = '/dev/zero'): number {
  const t0 = now();
  const r = spawnSync('dd', [`if=${from}`, `of=${file}`, 'bs=1M', `count=${mib}`, 'conv=fsync'], { stdio: 'ignore' });
  if (r.status !== 0) throw new Error('dd write failed');
  return (mib * 2 ** 20) / (now() - t0);
}

function ddRead(file: string): number {
  dropCaches();
  const t0 = now();
  const r = spawnSync('dd', [`if=${file}`, 'of=/dev/null', 'bs=1M'], { stdio: 'ignore' });
  if (r.status !== 0) throw new Error('dd read failed');
  return statSync(file).size / (now() - t0);
}

// B3 and B4 measure full images: with incremental ones (the default) an idle process's second
// image would be nearly all references to the first, and the cleanup between repetitions would
// delete the parents a restart needs.
const FULL_IMAGES = ['--full-every', '1'];

interface Ckpt {
  generation: number;
  dir: string;
  bytes?: number;
  millis?: number;
}

async function bcheckpoint(c: Coordinator): Promise<{ r: Ckpt; wall: number }> {
  const t0 = now();
  const d = await c.command(['--bcheckpoint', '--json'], { timeoutMs: 600_000 });
  const wall = now() - t0;
  if (d.code !== 0) throw new Error(`bcheckpoint failed: ${d.stderr}`);
  return { r: JSON.parse(d.stdout) as Ckpt, wall };
}

async function holdMemory(c: Coordinator, dir: string, mib: number, kind: string, compress: boolean, threads = 1): Promise<Proc> {
  const p = manaProc(['launch', '--join', '--coord-port', String(c.port), '--ckptdir', c.ckptdir,
    compress ? '--compress' : '--no-compress', '--', testBin('fillmem'), String(mib), kind, '3600', String(threads)], { cwd: dir });
  await waitFor('fillmem ready', () => (p.stdout.includes('ready') ? true : undefined), 300_000);
  return p;
}

function imageOf(gen: string): string {
  const f = readdirSync(gen).find((n) => n.endsWith('.img'));
  if (!f) throw new Error(`no image in ${gen}`);
  return join(gen, f);
}

type Row = MpiRow; // one row type for every benchmark's table
const rows: Row[] = [];
const gbs = (x: number): string => `${(x / 1e9).toFixed(2)} GB/s`;

async function b3(mib: number, compress: boolean, kind: string, threads = 1): Promise<void> {
  const dir = join(root, `b3-${mib}-${compress ? 'zstd' : 'raw'}-${kind}-${threads}t`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const c = await new Coordinator(join(dir, 'ckpt'), FULL_IMAGES).start();
  const writeRatios: number[] = [], readRatios: number[] = [], writeTp: number[] = [], readTp: number[] = [];
  const ddW: number[] = [], ddR: number[] = [], ddRand: number[] = [], randRatios: number[] = [];
  const random = randomSource(mib);
  let stored = 0;
  try {
    let app = await holdMemory(c, dir, mib, kind, compress, threads);
    for (let i = 0; i < reps; i++) {
      const ddFile = join(dir, 'dd.tmp');
      const baseRand = ddWrite(ddFile, mib, random);
      const base = ddWrite(ddFile, mib);
      const { r, wall } = await bcheckpoint(c);
      const secs = (r.millis ?? wall * 1000) / 1000;
      const tp = (mib * 2 ** 20) / secs;
      writeTp.push(tp);
      ddW.push(base);
      writeRatios.push(tp / base);
      ddRand.push(baseRand);
      randRatios.push(tp / baseRand);
      const img = imageOf(join(c.ckptdir, `gen-${String(r.generation).padStart(6, '0')}`));
      stored = statSync(img).size;

      // Read: restart the image in place of the running process, time until it is back.
      const baseR = ddRead(ddFile);
      rmSync(ddFile);
      const [p] = await c.list();
      if (!p) throw new Error('no process');
      process.kill(p.pid, 'SIGKILL');
      await app.done;
      dropCaches();
      const t0 = now();
      app = manaProc(['restart', c.ckptdir, '--join', '--coord-port', String(c.port)], { cwd: dir });
      await waitNewProc(c, [p.pid], 600_000);
      const rsecs = now() - t0;
      const rtp = (mib * 2 ** 20) / rsecs;
      readTp.push(rtp);
      ddR.push(baseR);
      readRatios.push(rtp / baseR);
      // keep only the newest generation on disk
      for (const g of readdirSync(c.ckptdir)) {
        if (/^gen-\d+$/.test(g) && g !== `gen-${String(r.generation).padStart(6, '0')}`) rmSync(join(c.ckptdir, g), { recursive: true });
      }
    }
    const [p] = await c.list();
    if (p) process.kill(p.pid, 'SIGKILL');
    await app.done;
  } finally {
    await c.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  const mode = (compress ? 'zstd' : 'raw') + (threads > 1 ? `, ${threads} threads` : '');
  rows.push({ id: 'B3', what: `write ${mib} MiB ${kind} ${mode} (image ${(stored / 2 ** 20).toFixed(0)} MiB)`,
    value: gbs(median(writeTp)), baseline: `dd zeros ${gbs(median(ddW))}`, ratio: median(writeRatios).toFixed(2), bar: '≥ 0.8' });
  rows.push({ id: 'B3', what: `write ${mib} MiB ${kind} ${mode}, like-for-like`,
    value: gbs(median(writeTp)), baseline: `dd random ${gbs(median(ddRand))}`, ratio: median(randRatios).toFixed(2), bar: '≥ 0.8' });
  rows.push({ id: 'B3', what: `restart (read) ${mib} MiB ${kind} ${mode}`,
    value: gbs(median(readTp)), baseline: `dd ${gbs(median(ddR))}`, ratio: median(readRatios).toFixed(2), bar: '≥ 0.8' });
}

async function b4(): Promise<void> {
  const dir = join(root, 'b4');
  mkdirSync(dir, { recursive: true });
  const c = await new Coordinator(join(dir, 'ckpt'), FULL_IMAGES).start();
  const inner: number[] = [], wall: number[] = [];
  try {
    const app = await holdMemory(c, dir, 64, 'random', false);
    await bcheckpoint(c); // warm-up: first image of a process pays page-cache allocation
    for (let i = 0; i < Math.max(5, reps); i++) {
      const { r, wall: w } = await bcheckpoint(c);
      if (r.millis !== undefined) inner.push(r.millis / 1000);
      wall.push(w);
      await sleep(100);
    }
    const [p] = await c.list();
    if (p) process.kill(p.pid, 'SIGKILL');
    await app.done;
  } finally {
    await c.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  if (inner.length) rows.push({ id: 'B4', what: '--bcheckpoint 64 MiB, suspend → committed', value: `${median(inner).toFixed(3)} s`, baseline: '—', ratio: '—', bar: '< 1 s' });
  rows.push({ id: 'B4', what: '--bcheckpoint 64 MiB, CLI wall time', value: `${median(wall).toFixed(3)} s`, baseline: '—', ratio: '—', bar: '< 1 s' });
}

async function b6(mib: number): Promise<void> {
  const dir = join(root, `b6-${mib}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const c = await new Coordinator(join(dir, 'ckpt')).start();
  const bytes: number[] = [], times: number[] = [];
  try {
    const app = await holdMemory(c, dir, mib, 'random', false);
    const [p] = await c.list();
    if (!p) throw new Error('no process');
    for (let i = 0; i < reps; i++) {
      const full = await c.command(['--bcheckpoint', '--json'], { timeoutMs: 600_000 });
      if (full.code !== 0) throw new Error(`bcheckpoint failed: ${full.stderr}`);
      const f = JSON.parse(full.stdout) as Ckpt;
      const seen = app.stdout.split('changed').length;
      process.kill(p.pid, 'SIGUSR1');
      await waitFor('fillmem changed', () => (app.stdout.split('changed').length > seen ? true : undefined), 60_000);
      const inc = await c.command(['--bcheckpoint', '--json'], { timeoutMs: 600_000 });
      if (inc.code !== 0) throw new Error(`bcheckpoint failed: ${inc.stderr}`);
      const n = JSON.parse(inc.stdout) as Ckpt;
      bytes.push((n.bytes ?? 0) / (f.bytes ?? 1));
      times.push((n.millis ?? 0) / (f.millis ?? 1));
      // the next repetition's first checkpoint must be full again: drop this chain
      for (const g of readdirSync(c.ckptdir)) if (/^gen-\d+$/.test(g)) rmSync(join(c.ckptdir, g), { recursive: true });
    }
    process.kill(p.pid, 'SIGKILL');
    await app.done;
  } finally {
    await c.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  rows.push({ id: 'B6', what: `2nd checkpoint after 5 % of ${mib} MiB changed: bytes written`, value: `${(median(bytes) * 100).toFixed(1)} %`, baseline: 'full checkpoint', ratio: median(bytes).toFixed(3), bar: '≤ 0.10' });
  rows.push({ id: 'B6', what: `2nd checkpoint after 5 % of ${mib} MiB changed: time`, value: `${(median(times) * 100).toFixed(1)} %`, baseline: 'full checkpoint', ratio: median(times).toFixed(3), bar: '—' });
}

function printTable(): void {
  const head = ['id', 'what', 'value (median)', 'baseline (median)', 'ratio (median)', 'bar'];
  console.log(`\n| ${head.join(' | ')} |\n|${head.map(() => '---').join('|')}|`);
  for (const r of rows) console.log(`| ${r.id} | ${r.what} | ${r.value} | ${r.baseline} | ${r.ratio} | ${r.bar} |`);
}

async function main(): Promise<void> {
  console.log(`mana bench: sizes ${sizes.join(', ')} MiB, ${reps} repetitions, in ${root}; reads ${isRoot ? 'cold (caches dropped)' : 'warm'}`);
  const only = process.env.MANA_BENCH_ONLY; // e.g. "B6" or "B3,B6"
  const want = (id: string): boolean => !only || only.split(',').includes(id);
  if (want('B4')) await b4();
  if (want('B4') || want('drain')) await mpiCkptBench(root, Math.max(5, reps), want, rows);
  if (want('B6')) for (const mib of sizes) await b6(mib);
  // MANA_BENCH_B3=raw,zstd,field,threads narrows B3 to some of its variants (default: all)
  const b3only = process.env.MANA_BENCH_B3;
  const b3want = (v: string): boolean => want('B3') && (!b3only || b3only.split(',').includes(v));
  for (const mib of sizes) {
    if (b3want('raw')) await b3(mib, false, 'random');
    if (b3want('zstd')) await b3(mib, true, 'random');
    if (b3want('field')) await b3(mib, true, 'field');
  }
  // issue 3: a 4-thread process holding the largest size, each thread owning a part
  if (b3want('threads') && sizes.length) await b3(Math.max(...sizes), false, 'random', 4);
  const mpi = (only?.split(',') ?? []).filter((id): id is 'B1' | 'B2' => id === 'B1' || id === 'B2');
  if (mpi.length) mpiBench(Math.max(5, reps), (id) => (mpi as string[]).includes(id), rows);
  if (only?.split(',').includes('replay')) await mpiReplayBench(root, rows);
  if (only?.split(',').includes('cluster')) await clusterBench(root, Math.max(5, reps), rows);
  printTable();
  rmSync(root, { recursive: true, force: true });
  rmSync(`/dev/shm/mana-bench-random-${process.pid}`, { force: true });
}

main().catch((e: unknown) => {
  if (rows.length) printTable(); // what was measured before the failure
  console.error(`mana bench: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});

