// The pieces of MPI checkpoint/restart that need no working MPI drain: mana_restore's choice
// of image by rank (%r), the manifest's MPI record and what `mana restart` makes of it (the new
// launcher's command line, refusals before anything starts), `mana inspect` of an MPI
// generation, and the coordinator's refusal to checkpoint before every rank has started.
// Real files throughout: a real single-process image from a checkpointed native test program.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  Coordinator, ensureBuilt, manaProc, mana, removeDir, repo, sleep, tempDir, testBin, waitFor,
} from './lib/harness.js';
import { waitNewProc } from './lib/scenario.js';
import { mpiRestartArgv, rankCountFromArgv } from '../src/launch/mpi.js';
import { mpiRankProblem, parseManifest, type Manifest } from '../src/store/manifest.js';

ensureBuilt();

const restoreBin = join(repo, 'native', 'out', 'bin', 'mana_restore');
const have = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const RANK_VARS = ['PMI_RANK', 'OMPI_COMM_WORLD_RANK', 'PMIX_RANK', 'SLURM_PROCID', 'SLURM_STEP_ID'];

/** The environment without any launcher's rank variable. */
function noRankEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const v of RANK_VARS) delete env[v];
  return { ...env, ...extra };
}

function restoreCheck(image: string, env: Record<string, string>): { code: number | null; stderr: string } {
  const r = spawnSync(restoreBin, ['--check', image], { env: noRankEnv(env), encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, stderr: r.stderr ?? '' };
}

const dir = tempDir('mpi-ckpt');
t.teardown(() => removeDir(dir));
let genDir = '';

t.before(async () => {
  // one real image: memloop checkpointed once, then killed
  const c = await new Coordinator(join(dir, 'ckpt')).start();
  try {
    const out = join(dir, 'memloop.out');
    const launch = manaProc(['launch', '--join', '--coord-port', String(c.port), '--ckptdir', c.ckptdir, '--',
      testBin('memloop'), out, '6000', '10'], { cwd: dir });
    await waitNewProc(c, []);
    const g = await c.bcheckpoint();
    genDir = g.dir;
    await c.command(['--kill']);
    await launch.done;
  } finally {
    await c.stop();
  }
});

t.test('mana_restore picks the image of its rank for %r', async (t) => {
  const pattern = join(genDir, 'rank-%r.img');
  t.ok(existsSync(join(genDir, 'rank-00000.img')), 'the generation has rank-00000.img');
  t.same(restoreCheck(pattern, { PMI_RANK: '0' }), { code: 0, stderr: '' }, 'PMI_RANK=0 (Hydra): rank-00000.img, checks pass');
  t.same(restoreCheck(pattern, { OMPI_COMM_WORLD_RANK: '0' }), { code: 0, stderr: '' }, 'OMPI_COMM_WORLD_RANK=0 (Open MPI)');
  t.same(restoreCheck(pattern, { PMIX_RANK: '0' }), { code: 0, stderr: '' }, 'PMIX_RANK=0');
  t.same(restoreCheck(pattern, { SLURM_PROCID: '0', SLURM_STEP_ID: '0' }), { code: 0, stderr: '' }, 'SLURM_PROCID=0 in a job step (srun)');
  t.equal(restoreCheck(pattern, { SLURM_PROCID: '0' }).code, 70, "a batch script's SLURM_PROCID (no SLURM_STEP_ID) is no rank");
  // the first that is set wins: PMI_RANK before OMPI_COMM_WORLD_RANK
  t.equal(restoreCheck(pattern, { PMI_RANK: '0', OMPI_COMM_WORLD_RANK: '1' }).code, 0, 'PMI_RANK comes first');

  const none = restoreCheck(pattern, {});
  t.equal(none.code, 70, 'no rank variable: refused with exit 70');
  t.equal(none.stderr.trim().split('\n').length, 1, `one line: ${none.stderr}`);
  t.match(none.stderr, /rank-%r\.img names the image by MPI rank \(%r\), but none of PMI_RANK, OMPI_COMM_WORLD_RANK, PMIX_RANK, SLURM_PROCID \(with SLURM_STEP_ID\) is set/);

  const one = restoreCheck(pattern, { PMI_RANK: '1' });
  t.equal(one.code, 70, 'rank 1 has no image: exit 70');
  t.match(one.stderr, /^mana restart: there is no image .*rank-00001\.img for MPI rank 1 \(PMI_RANK\)/);
  t.equal(one.stderr.trim().split('\n').length, 1, 'one line');

  const junk = restoreCheck(pattern, { PMI_RANK: 'x1' });
  t.equal(junk.code, 70, 'a rank that is not a number: exit 70');
  t.match(junk.stderr, /PMI_RANK=x1 is not a rank number/);

  // without %r the rank variables do not matter
  t.equal(restoreCheck(join(genDir, 'rank-00000.img'), { PMI_RANK: '7' }).code, 0, 'a plain image path ignores the rank');
});

/** A copy of the generation whose manifest says it is an MPI job of `size` ranks. */
function mpiGeneration(name: string, size: number, flavour: 'mpich' | 'openmpi' = 'mpich'): string {
  const d = join(dir, name, 'gen-000001');
  mkdirSync(join(dir, name), { recursive: true });
  cpSync(genDir, d, { recursive: true });
  const mfile = join(d, 'manifest.json');
  const m = JSON.parse(readFileSync(mfile, 'utf8')) as Manifest;
  m.flavour = flavour;
  m.mpi = { flavour, size, launcherArgv: [`mpirun.${flavour}`, '-n', String(size), './app'], rankHosts: m.procs.map((p) => p.host) };
  writeFileSync(mfile, JSON.stringify(m, null, 2));
  return d;
}

t.test('the manifest of an MPI generation', async (t) => {
  const d = mpiGeneration('one-rank', 1);
  const m = parseManifest(readFileSync(join(d, 'manifest.json'), 'utf8'), 'manifest.json');
  t.equal(mpiRankProblem(m), undefined, 'one rank, one image rank-00000.img: restartable');
  t.match(mpiRankProblem({ ...m, mpi: { ...m.mpi!, size: 3 } }), /the MPI job had 3 ranks, but the generation has images of 1 \(none of rank 1, 2\)/);
  t.throws(() => parseManifest(JSON.stringify({ ...m, mpi: { flavour: 'lam', size: 1, launcherArgv: [], rankHosts: [] } }), 'f.json'), /malformed mpi entry/);

  const i = await mana(['inspect', d]);
  t.equal(i.code, 0, i.stderr);
  t.match(i.stdout, /\n {2}mpi: 1 rank\(s\) over MPICH, launched by: mpirun\.mpich -n 1 \.\/app\n {2}rank hosts: 0=\S+/, 'mana inspect shows the MPI record');
});

t.test('the command line of an MPI restart', async (t) => {
  const base = { size: 4, restoreBin: '/r/mana_restore', allowMissingFiles: false, genDir: '/c/gen-000007' };
  t.same(mpiRestartArgv({ ...base, flavour: 'mpich', launcher: 'mpirun.mpich' }),
    ['mpirun.mpich', '-n', '4', '/r/mana_restore', '/c/gen-000007/rank-%r.img']);
  t.same(mpiRestartArgv({ ...base, flavour: 'mpich', launcher: 'mpirun.mpich', hosts: ['a', 'b'], allowMissingFiles: true }),
    ['mpirun.mpich', '-n', '4', '-hosts', 'a,b', '/r/mana_restore', '--allow-missing-files', '/c/gen-000007/rank-%r.img'], 'Hydra: -hosts');
  t.same(mpiRestartArgv({ ...base, flavour: 'openmpi', launcher: 'mpirun.openmpi', hosts: ['a', 'b'] }).slice(0, 5),
    ['mpirun.openmpi', '-n', '4', '--host', 'a,b'], 'Open MPI: --host');
  t.same(mpiRestartArgv({ ...base, flavour: 'mpich', launcher: 'mpirun.mpich', hostfile: '/h' }).slice(3, 5), ['-f', '/h'], 'Hydra: -f');
  t.same(mpiRestartArgv({ ...base, flavour: 'openmpi', launcher: 'mpirun.openmpi', hostfile: '/h' }).slice(3, 5), ['--hostfile', '/h'], 'Open MPI: --hostfile');
  t.same(mpiRestartArgv({ ...base, kind: 'srun', flavour: 'mpich', launcher: 'srun', hosts: ['a', 'b'] }),
    ['srun', '--mpi=pmi2', '-n', '4', '--nodelist', 'a,b', '/r/mana_restore', '/c/gen-000007/rank-%r.img'], 'srun: --mpi=pmi2 for MPICH, --nodelist');
  t.same(mpiRestartArgv({ ...base, kind: 'srun', flavour: 'openmpi', launcher: 'srun', hostfile: '/h' }).slice(0, 6),
    ['srun', '--mpi=pmix', '-n', '4', '--nodefile', '/h'], 'srun: --mpi=pmix for Open MPI, --nodefile');

  t.equal(rankCountFromArgv(['mpirun', '-n', '3', '/bin/true']), 3);
  t.equal(rankCountFromArgv(['mpirun', '-np', '5', '/bin/true', '-n', '9']), 5);
  t.equal(rankCountFromArgv(['srun', '--ntasks=6', '/bin/true']), 6);
  t.equal(rankCountFromArgv(['mpirun', '/bin/true', '-n', '9']), 0, "the program's own -n is not the launcher's");
});

t.test('mana restart refuses a bad MPI generation before starting anything', async (t) => {
  const short = mpiGeneration('short', 2);
  const r = await mana(['restart', short, '--coord-port', '0']);
  t.equal(r.code, 1, 'exit status 1');
  t.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
  t.match(r.stderr, /the MPI job had 2 ranks, but the generation has images of 1 \(none of rank 1\); restart an older generation/);

  const plain = await mana(['restart', genDir, '--mpi', 'openmpi', '--coord-port', '0']);
  t.not(plain.code, 0);
  t.match(plain.stderr, /--mpi applies to MPI generations only/);

  const ok = mpiGeneration('ok', 1);
  const bad = await mana(['restart', ok, '--mpi', 'lam', '--coord-port', '0']);
  t.not(bad.code, 0);
  t.match(bad.stderr, /--mpi must be mpich or openmpi/);
  const both = await mana(['restart', ok, '--hosts', 'a', '--hostfile', '/etc/hostname', '--coord-port', '0']);
  t.match(both.stderr, /--hosts and --hostfile exclude each other/);
  const nofile = await mana(['restart', ok, '--hostfile', join(dir, 'nope'), '--coord-port', '0']);
  t.match(nofile.stderr, /hostfile .*nope does not exist/);
});

const noMpi = ['mpirun.mpich', 'cc'].filter((c) => !have(c));
t.test('a checkpoint before every rank has started fails at once', { skip: noMpi.length ? `${noMpi.join(', ')} missing` : false }, async (t) => {
  // ranks that never say HELLO: a static program ignores the preloaded libmana
  const src = join(dir, 'sleeper.c');
  const bin = join(dir, 'sleeper');
  writeFileSync(src, '#include <unistd.h>\nint main(void) { for (int i = 0; i < 600 && access("go", F_OK) != 0; i++) usleep(50000); return 0; }\n');
  const cc = spawnSync('cc', ['-static', '-O2', '-o', bin, src], { encoding: 'utf8' });
  t.equal(cc.status, 0, `a static test program links (${cc.stderr})`);
  if (cc.status !== 0) return;
  const c = await new Coordinator(join(dir, 'ckpt-early')).start();
  t.teardown(() => c.stop());
  const job = manaProc(['launch', '--join', '--coord-port', String(c.port), '--', 'mpirun.mpich', '-n', '2', bin], { cwd: dir });
  t.teardown(() => writeFileSync(join(dir, 'go'), ''));
  await waitFor('the launcher to register', async () => ((await c.list().catch(() => [])).length > 0 ? true : undefined));
  const t0 = Date.now();
  const b = await c.command(['--bcheckpoint'], { timeoutMs: 20_000 });
  t.equal(b.code, 1, '--bcheckpoint fails');
  t.equal(b.stderr.trim().split('\n').length, 1, `one line: ${b.stderr}`);
  t.match(b.stderr, /only 0 of 2 MPI ranks have started; try again/);
  t.ok(Date.now() - t0 < 5000, 'at once');
  const l = await c.command(['--list']);
  t.match(l.stdout, /^launcher\s/m, 'mana command --list shows the launcher as such');
  writeFileSync(join(dir, 'go'), '');
  const d = await job.done;
  t.equal(d.code, 0, `the job ran to its end (${d.stderr})`);
  await sleep(10);
});
