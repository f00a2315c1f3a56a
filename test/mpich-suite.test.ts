// MPICH's own test suite (test/mpi of Debian's mpich source package, fetched at test time,
// never committed): the npm-test subset (test/mpich-suite/subset.txt) natively and under mana,
// on both lower halves, built with mana mpicc and with plain mpicc.mpich. Every test that
// passes natively must pass under mana (scripts/mpich-suite.sh exits non-zero otherwise).
// The full suite: `npm run test:full` runs this file with --full.
import t from 'tap';
import { join } from 'node:path';
import { repo, run } from './lib/harness.js';

const full = process.env.MANA_TEST_FULL === '1';

t.test(`MPICH's test suite (${full ? 'full' : 'subset'}) passes under mana wherever it passes natively`, async (t) => {
  const args = [join(repo, 'scripts', 'mpich-suite.sh'), '--timeout', full ? '60' : '20', ...(full ? ['--full'] : [])];
  const r = await run('bash', args, { timeoutMs: full ? 4 * 3600_000 : 900_000 });
  t.equal(r.code, 0, r.stdout.slice(-4000) + r.stderr.slice(-2000));
  t.match(r.stdout, /passes natively but fails under mana: 0/);
  const pass = /^pass\s*\|(.*)$/m.exec(r.stdout)?.[1]?.split('|').map((x) => Number(x.trim())) ?? [];
  t.equal(pass.length, 5, 'five modes: MPICH and Open MPI natively, mana on both, and the plain mpicc.mpich binaries under mana');
  t.ok(pass.every((n) => n > 0 && n === pass[0]), `the same number of tests pass in every mode (${pass.join(', ')})`);
});
