// The split-process runtime itself, below the CLI: which memory belongs to the lower half
// (invariant 1), on each lower half, with the real launchers.
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repo, run } from './lib/harness.js';

const shim = join(repo, 'mpi-shim');
const lib = join(shim, 'out', 'lib');
const dir = mkdtempSync(join(tmpdir(), 'mana-shim-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const ompiEnv = { OMPI_ALLOW_RUN_AS_ROOT: '1', OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: '1', OMPI_MCA_rmaps_base_oversubscribe: '1' };
const launchers = [
  { flavour: 'mpich', cmd: 'mpirun.mpich', lib: /libmpich\.so\.12/ },
  { flavour: 'openmpi', cmd: 'mpirun.openmpi', lib: /libmpi\.so\.40/ },
];

t.before(async () => {
  const cc = await run('cc', ['-I', join(shim, 'include'), '-o', join(dir, 'maps_probe'), join(shim, 'test', 'programs', 'maps_probe.c'),
    '-L', lib, '-lmpi', `-Wl,-rpath,${lib}`]);
  if (cc.code !== 0) throw new Error(`cc failed: ${cc.stderr}`);
});

for (const l of launchers) {
  t.test(`memory of a rank on the ${l.flavour} lower half is classified`, async (t) => {
    const maps = join(dir, `maps-${l.flavour}-0`);
    const r = await run(l.cmd, ['-n', '2', join(dir, 'maps_probe')], {
      env: { ...process.env, ...ompiEnv, MANA_MPI_MAPS: join(dir, `maps-${l.flavour}-%r`) },
      timeoutMs: 60_000,
    });
    t.equal(r.code, 0, r.stderr);
    t.match(r.stdout, /rank 0 got 1/);
    const lines = readFileSync(maps, 'utf8').trim().split('\n');
    const cls = (re: RegExp): string[] => lines.filter((x) => re.test(x)).map((x) => x.split(' ')[0] ?? '');
    t.ok(cls(l.lib).length > 0 && cls(l.lib).every((c) => c === 'lower'), `${l.lib} is lower-half memory`);
    t.ok(cls(/lh_proxy-/).every((c) => c === 'lower'), 'the proxy is lower-half memory');
    t.ok(cls(/maps_probe$/).length > 0 && cls(/maps_probe$/).every((c) => c === 'upper'), 'the application is upper-half memory');
    t.ok(cls(/libmpi\.so\.12$/).every((c) => c === 'upper'), "mana's shim is upper-half memory");
    const libc = cls(/libc\.so\.6$/);
    t.ok(libc.includes('upper') && libc.includes('lower'), 'two copies of libc: one per half');
    t.same(cls(/\[heap\]|\[stack\]/).filter((c) => c !== 'upper'), [], 'brk heap and main stack are the upper half');
    t.same(cls(/\/dev\/shm\/|SYSV/).filter((c) => c !== 'lower'), [], "the MPI library's shared memory is the lower half");
  });
}

// Every function group of the supported surface, on both lower halves, against native MPICH
// (mpi-shim/test/coverage/run.sh compares sorted outputs; unsupported calls give one line).
t.test('the supported MPI surface gives native results on both lower halves', async (t) => {
  const r = await run('bash', [join(shim, 'test', 'coverage', 'run.sh')], { timeoutMs: 600_000, env: { ...process.env, ...ompiEnv } });
  t.equal(r.code, 0, r.stdout + r.stderr);
  t.match(r.stdout, /coverage: [1-9]\d* passed, 0 failed/);
  t.match(r.stdout, /ok +unsupported on mpich/);
  t.match(r.stdout, /ok +unsupported on openmpi/);
});

// The lower world's tracker: brk never moves, every lower mapping and thread is known.
t.test('lh_track sees all lower-world memory and threads', async (t) => {
  const r = await run('bash', [join(shim, 'test', 'run_track_test.sh'), '--no-bench'], { timeoutMs: 300_000 });
  t.equal(r.code, 0, r.stdout + r.stderr);
  t.match(r.stdout, /PASS run_track_test/);
  t.notMatch(r.stdout, /^not ok/m);
});

// Fortran (mpif.h and `use mpi`), built against mana and with Debian's mpif90.mpich, on both
// lower halves, against the native MPICH run.
t.test('Fortran programs give native results on both lower halves', async (t) => {
  const r = await run('bash', [join(shim, 'test', 'fortran', 'run.sh')], { timeoutMs: 300_000, env: { ...process.env, ...ompiEnv } });
  t.equal(r.code, 0, r.stdout + r.stderr);
  t.match(r.stdout, /\d+ passed, 0 failed/);
});
