// B1 and B2 (DESIGN.md §7): the split-process MPI runtime (mpi-shim/) against the same program
// without it, on both lower halves, in the same run.
//
// What is compared (the programs are bench/mpi/*.c, built into a temporary directory):
//   MPICH lower half:    one binary built with mpicc.mpich, run by mpirun.mpich, natively (Debian's
//                        libmpich.so.12) and with LD_LIBRARY_PATH=mpi-shim/out/lib (mana's
//                        libmpich.so.12 over the lh_proxy-mpich lower half).
//   Open MPI lower half: native = the program built with mpicc.openmpi under mpirun.openmpi;
//                        mana = the mpicc.mpich binary under mpirun.openmpi with
//                        LD_LIBRARY_PATH=mpi-shim/out/lib and MANA_MPI=openmpi (lh_proxy-openmpi).
// B2 also runs the mana side armed: under `mana launch` with a coordinator, so libmana's
// checkpoint thread and the shim's checkpoint bookkeeping are live (DESIGN.md invariant 6: no
// barrier per collective). MANA_BENCH_B2_ARMED=0 leaves that out.
// Each program times its own loop with MPI_Wtime after a barrier (launcher start-up excluded) and
// rank 0 prints one "MANA_BENCH key=value ..." line. Native and mana runs alternate (the order
// flips every repetition) and each figure is the median of the per-pair ratios.
//
// Busy polling on a 2-core machine is very sensitive to other load, so before each pair the
// module waits (up to MANA_BENCH_QUIET_WAIT seconds, default 120) until the machine has been
// nearly idle for a second, and counts the pairs that ran without that. MANA_BENCH_NICE=-20 (as
// root) runs both sides at that priority in a session of their own (with autogroup scheduling
// nice alone only ranks processes within one session), for a machine that cannot be kept idle.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';

export interface MpiRow {
  id: string;
  what: string;
  value: string;
  baseline: string;
  ratio: string;
  bar: string;
}

const repo = join(import.meta.dirname, '..');
const shimLib = join(repo, 'mpi-shim', 'out', 'lib');
const src = join(repo, 'bench', 'mpi');

// Sizes chosen so that each timed loop takes about 2-5 s natively on the 2-core reference VM
// (`LAT_ITERS,BW_ITERS` and `N_OR_L,ITERS`). Four busy-polling ranks on two cores progress at the
// pace of the scheduler; MPICH (ch4:ucx) never yields in a collective, Open MPI does when it
// sees oversubscription, hence far fewer MPICH allreduce iterations.
const sizesOf = (name: string, mpich: string, ompi: string): Record<string, string[]> => ({
  MPICH: (process.env[`MANA_BENCH_${name}`] ?? mpich).split(','),
  'Open MPI': (process.env[`MANA_BENCH_${name}`] ?? ompi).split(','),
});
const PINGPONG = sizesOf('PINGPONG', '4000000,8000', '2000000,8000');
const STENCIL = sizesOf('STENCIL', '1024,500', '1024,8000');
const ALLREDUCE = sizesOf('ALLREDUCE', '4096,100', '4096,200000');

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

const ompiEnv = {
  OMPI_ALLOW_RUN_AS_ROOT: '1', OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: '1', OMPI_MCA_rmaps_base_oversubscribe: '1',
};

interface Flavour {
  name: string; // as the table shows it
  mpirun: string;
  nativeBin: (prog: string) => string;
  manaBin: (prog: string) => string;
  manaEnv: Record<string, string>;
  manaArgs: string[]; // launcher options that pass the environment on
  env: Record<string, string>;
}

function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

function build(dir: string, flavours: string[]): void {
  const flags = ['-std=c11', '-O2', '-Wall', '-Wextra', '-Werror',
    // MPICH's MPI_STATUSES_IGNORE is (MPI_Status *)1, which GCC 12 takes for a zero-sized array
    '-Wno-stringop-overflow'];
  for (const prog of ['pingpong', 'stencil', 'allreduce']) {
    for (const f of flavours) {
      const cc = f === 'mpich' ? 'mpicc.mpich' : 'mpicc.openmpi';
      const r = spawnSync(cc, [...flags, '-o', join(dir, `${prog}-${f}`), join(src, `${prog}.c`)], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`${cc} ${prog}.c failed: ${r.stderr}`);
    }
  }
}

// Fraction of CPU time not idle over `ms` milliseconds, from /proc/stat.
function busy(ms: number): number {
  const read = (): [number, number] => {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const idle = f[3]! + (f[4] ?? 0);
    return [f.reduce((a, b) => a + b, 0), idle];
  };
  const [t0, i0] = read();
  spawnSync('sleep', [String(ms / 1000)]);
  const [t1, i1] = read();
  return t1 === t0 ? 0 : 1 - (i1 - i0) / (t1 - t0);
}

let disturbed = 0, pairs = 0;
function waitQuiet(): void {
  const limit = Number(process.env.MANA_BENCH_QUIET_WAIT ?? 120) * 1000;
  const t0 = Date.now();
  pairs++;
  while (busy(1000) > 0.1) {
    if (Date.now() - t0 > limit) {
      disturbed++;
      return;
    }
  }
}

// How a side runs: natively; with mana's shim only (LD_LIBRARY_PATH); or armed, i.e. under
// `mana launch` with a coordinator of its own (libmana's checkpoint thread, the shim's plugin
// counting collectives and messages), ready for a checkpoint that this run never asks for.
export type Side = 'native' | 'shim' | 'armed';

function runOnce(f: Flavour, side: Side, ranks: number, prog: string, args: string[]): Record<string, number> {
  const mana = side !== 'native';
  const env = { ...process.env, ...f.env, ...(mana ? f.manaEnv : {}) };
  const bin = mana ? f.manaBin(prog) : f.nativeBin(prog);
  const argv = ['-n', String(ranks), ...(side === 'shim' ? f.manaArgs : []), bin, ...args];
  const ckptdir = side === 'armed' ? mkdtempSync(join(tmpdir(), 'mana-bench-armed-')) : '';
  const cmd = side === 'armed'
    ? [process.execPath, join(repo, 'bin', 'mana'), 'launch', '--new-coordinator', '--coord-port', '0', '--ckptdir', ckptdir,
      '--mpi', f.name === 'MPICH' ? 'mpich' : 'openmpi', '--', f.mpirun, ...argv]
    : [f.mpirun, ...argv];
  const nice = process.env.MANA_BENCH_NICE;
  const r = nice
    ? spawnSync('setsid', ['sh', '-c', `echo ${Number(nice)} > /proc/self/autogroup 2>/dev/null; exec nice -n ${Number(nice)} "$@"`,
      'sh', ...cmd], { env, encoding: 'utf8', timeout: 300_000 })
    : spawnSync(cmd[0]!, cmd.slice(1), { env, encoding: 'utf8', timeout: 300_000 });
  if (ckptdir) rmSync(ckptdir, { recursive: true, force: true });
  const line = r.stdout?.split('\n').find((l) => l.startsWith('MANA_BENCH '));
  if (r.status !== 0 || !line) {
    throw new Error(`${cmd.join(' ')} (${side}) failed (${r.status ?? r.signal}): ${r.stderr}`);
  }
  const out: Record<string, number> = {};
  for (const kv of line.slice(11).trim().split(/\s+/)) {
    const [k, v] = kv.split('=');
    if (k && v !== undefined) out[k] = Number(v);
  }
  return out;
}

// Runs native and the mana side alternately `reps` times; returns the per-run results of each.
function pairs_(f: Flavour, ranks: number, prog: string, args: string[], reps: number, side: Side = 'shim'): { n: Record<string, number>[]; m: Record<string, number>[] } {
  const n: Record<string, number>[] = [], m: Record<string, number>[] = [];
  runOnce(f, 'native', ranks, prog, args.map((a, i) => (i === args.length - 1 ? String(Math.max(1, Math.floor(Number(a) / 20))) : a))); // warm the page cache and the launcher
  for (let i = 0; i < reps; i++) {
    waitQuiet();
    if (i % 2 === 0) {
      n.push(runOnce(f, 'native', ranks, prog, args));
      m.push(runOnce(f, side, ranks, prog, args));
    } else {
      m.push(runOnce(f, side, ranks, prog, args));
      n.push(runOnce(f, 'native', ranks, prog, args));
    }
  }
  return { n, m };
}

const ratios = (a: Record<string, number>[], b: Record<string, number>[], k: string): number[] => a.map((x, i) => x[k]! / b[i]![k]!);
const col = (a: Record<string, number>[], k: string): number => median(a.map((x) => x[k]!));

// Appends to `rows` as it goes, so a failure keeps what was measured before it.
export function mpiBench(reps: number, want: (id: string) => boolean, rows: MpiRow[]): void {
  if (!existsSync(join(shimLib, 'libmpich.so.12'))) throw new Error('mpi-shim/out/lib/libmpich.so.12 is missing: run make -C mpi-shim');
  const dir = mkdtempSync(join(tmpdir(), 'mana-bench-mpi-'));
  const flavours: Flavour[] = [];
  if (have('mpicc.mpich') && have('mpirun.mpich')) {
    flavours.push({
      name: 'MPICH', mpirun: 'mpirun.mpich', env: {},
      nativeBin: (p) => join(dir, `${p}-mpich`), manaBin: (p) => join(dir, `${p}-mpich`),
      manaEnv: { LD_LIBRARY_PATH: shimLib, MANA_MPI: 'mpich' }, manaArgs: [],
    });
  }
  if (flavours.length && have('mpicc.openmpi') && have('mpirun.openmpi')) {
    flavours.push({
      name: 'Open MPI', mpirun: 'mpirun.openmpi', env: ompiEnv,
      nativeBin: (p) => join(dir, `${p}-openmpi`), manaBin: (p) => join(dir, `${p}-mpich`),
      manaEnv: { LD_LIBRARY_PATH: shimLib, MANA_MPI: 'openmpi' }, manaArgs: ['-x', 'LD_LIBRARY_PATH', '-x', 'MANA_MPI'],
    });
  }
  if (!flavours.length) throw new Error('B1/B2 need MPICH (mpicc.mpich, mpirun.mpich)');
  try {
    build(dir, flavours.map((f) => (f.name === 'MPICH' ? 'mpich' : 'openmpi')));
    for (const f of flavours) {
      if (want('B1')) {
        const { n, m } = pairs_(f, 2, 'pingpong', PINGPONG[f.name]!, reps);
        const lat = ratios(m, n, 'lat_us');
        rows.push({ id: 'B1', what: `${f.name}: ping-pong latency, 8 B, 2 ranks (half round trip)`,
          value: `${col(m, 'lat_us').toFixed(3)} µs`, baseline: `native ${col(n, 'lat_us').toFixed(3)} µs`,
          ratio: `${median(lat).toFixed(3)} (+${((median(lat) - 1) * 100).toFixed(1)} %)`, bar: '≤ 1.05' });
        rows.push({ id: 'B1', what: `${f.name}: ping-pong bandwidth, 1 MiB, 2 ranks`,
          value: `${(col(m, 'bw_MBps') / 1000).toFixed(2)} GB/s`, baseline: `native ${(col(n, 'bw_MBps') / 1000).toFixed(2)} GB/s`,
          ratio: median(ratios(m, n, 'bw_MBps')).toFixed(3), bar: '≥ 0.98' });
      }
      if (want('B2')) {
        const st = STENCIL[f.name]!, ar = ALLREDUCE[f.name]!;
        const sides: Side[] = process.env.MANA_BENCH_B2_ARMED === '0' ? ['shim'] : ['shim', 'armed'];
        for (const [prog, what, args] of [
          ['stencil', `2-D stencil ${st[0]}² doubles, ${st[1]} halo exchanges (Isend/Irecv/Waitall)`, st],
          ['allreduce', `allreduce loop, ${ar[1]} × (2+8 doubles), ${ar[0]} doubles of compute`, ar],
        ] as const) for (const side of sides) {
          const { n, m } = pairs_(f, 4, prog, [...args], reps, side);
          const same = n.every((x, i) => Math.abs(x.checksum! - m[i]!.checksum!) <= 1e-9 * Math.abs(x.checksum!));
          const how = side === 'armed' ? ', under mana launch (checkpointing armed)' : '';
          rows.push({ id: 'B2', what: `${f.name}: ${what}${how}, 4 ranks on ${String(navigatorCores())} cores${same ? '' : ' (checksums differ!)'}`,
            value: `${col(m, 'time_s').toFixed(3)} s`, baseline: `native ${col(n, 'time_s').toFixed(3)} s`,
            ratio: median(ratios(m, n, 'time_s')).toFixed(3), bar: '≤ 1.01' });
        }
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  if (disturbed) console.log(`mana bench: ${disturbed} of ${pairs} MPI pairs ran on a machine that was not idle (waited ${process.env.MANA_BENCH_QUIET_WAIT ?? 120} s)`);
}

function navigatorCores(): number {
  return readFileSync('/proc/cpuinfo', 'utf8').split('\n').filter((l) => l.startsWith('processor')).length;
}
