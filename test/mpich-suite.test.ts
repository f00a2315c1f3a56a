// MPICH's own test suite (test/mpi of Debian's mpich source package, fetched at test time,
// never committed): the npm-test subset (test/mpich-suite/subset.txt) natively and under mana,
// on both lower halves, built with mana mpicc and with plain mpicc.mpich. Every test that
// passes natively must pass under mana (scripts/mpich-suite.sh exits non-zero otherwise).
// Then the checkpoint-restart subset (test/mpich-suite/subset-ckpt.txt) with every test
// checkpointed in its middle, killed and restarted on the other MPI (all four launch/restart
// pairs with MANA_TEST_FULL=1). The full suite: `npm run test:full` runs this file with --full.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repo, run } from './lib/harness.js';

const full = process.env.MANA_TEST_FULL === '1';
const suite = join(repo, 'scripts', 'mpich-suite.sh');

t.test(`MPICH's test suite (${full ? 'full' : 'subset'}) passes under mana wherever it passes natively`, async (t) => {
  const args = [suite, '--timeout', full ? '60' : '20', ...(full ? ['--full'] : [])];
  const r = await run('bash', args, { timeoutMs: full ? 4 * 3600_000 : 900_000 });
  t.equal(r.code, 0, r.stdout.slice(-4000) + r.stderr.slice(-2000));
  t.match(r.stdout, /passes natively but fails under mana: 0/);
  const pass = /^pass\s*\|(.*)$/m.exec(r.stdout)?.[1]?.split('|').map((x) => Number(x.trim())) ?? [];
  t.equal(pass.length, 5, 'five modes: MPICH and Open MPI natively, mana on both, and the plain mpicc.mpich binaries under mana');
  t.ok(pass.every((n) => n > 0 && n === pass[0]), `the same number of tests pass in every mode (${pass.join(', ')})`);
});

t.test(`MPICH's test suite, checkpointed in the middle of each test and restarted (${full ? 'four launch/restart pairs' : 'one launch/restart pair'})`, async (t) => {
  const subset = join(repo, 'test', 'mpich-suite', 'subset-ckpt.txt');
  const n = readFileSync(subset, 'utf8').split('\n').filter((l) => /^[a-z]/.test(l)).length;
  const modes = full ? ['mana-mpich-ckpt', 'mana-openmpi-ckpt', 'mana-mpich-ckpt-openmpi', 'mana-openmpi-ckpt-mpich'] : ['mana-mpich-ckpt-openmpi'];
  const r = await run('bash', [suite, '--subset', subset, '--modes', modes.join(','), '--timeout', '60', '-q'], { timeoutMs: 3600_000 });
  t.equal(r.code, 0, r.stdout.slice(-4000) + r.stderr.slice(-2000));
  t.match(r.stdout, /passes natively but fails under mana: 0/);
  for (const m of modes) {
    // every test really checkpointed and restarted, and passed
    const line = new RegExp(`^  ${m} \\(.*\\): ${n}/${n} 100% \\[restarted ${n}, pass-nockpt 0, fail-nockpt 0, ckpt-fail 0\\]`, 'm');
    t.match(r.stdout, line, `${m}: ${n} of ${n} tests checkpointed, restarted and passed`);
  }
});
