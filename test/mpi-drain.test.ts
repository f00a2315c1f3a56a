// Messages drained into the upper half at a checkpoint (mpi-shim/upper/msgbuf.c), delivered at
// their edges: test/programs/mpi/drain_edge.c leaves four messages unreceived while the
// checkpoint runs (so it can only succeed by draining them), then receives them too short
// (MPI_Recv; MPI_Irecv + MPI_Wait), ending inside an element of the receive type, and by
// MPI_Improbe + MPI_Imrecv into a vector datatype. The job resumes in place (its error
// handlers, which a restart does not replay yet, stay) and must write what
// docs/mpi-checkpoint.md promises, which is also what a native Open MPI run writes.
import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Coordinator, ensureBuilt, mana, removeDir, repo, sleep, tempDir } from './lib/harness.js';
import { FLAVOURS, killJob, launchJob, launcherOf, mpiSkip, waitRanks } from './lib/mpi.js';

ensureBuilt();
// the messages stay unreceived for 6 s: without draining, the checkpoint would give up after 2
process.env.MANA_MPI_DRAIN_TIMEOUT = '2';
const skip = mpiSkip(['mpirun.mpich', 'mpirun.openmpi']);
const dir = tempDir('mpi-drain');
t.teardown(() => removeDir(dir));
const prog = join(dir, 'drain_edge');

const EXPECTED = [
  'recv truncated=1 data=11,12,13,0',
  'irecv posted=1 wait_truncated=1 data=11,12,0',
  'partial rc=0 count_undefined=1 elements=3 data=11,12,13,0',
  'mprobe vectors=2 msg_null=1 data=11,-1,-1,12,13,-1,-1',
  '',
].join('\n');

t.before(async () => {
  if (skip) return;
  const b = await mana(['mpicc', '-O2', '-Wall', '-Wextra', '-Werror', '-o', prog, join(repo, 'test', 'programs', 'mpi', 'drain_edge.c')]);
  if (b.code !== 0) throw new Error(`mana mpicc drain_edge.c failed: ${b.stderr}`);
});

for (const f of FLAVOURS) {
  t.test(`messages drained at a checkpoint on ${f}: truncation, partial elements, matched probes`, { skip }, async (t) => {
    const work = join(dir, f);
    const ckpt = join(work, 'ckpt');
    const out = join(work, 'result.out');
    const marker = join(work, 'sent');
    const c = await new Coordinator(ckpt).start();
    t.teardown(() => c.stop());
    const launch = launchJob(c, ckpt, [launcherOf(f), '-n', '2', prog, out, marker, '6000'], dir);
    const listed = await waitRanks(c, 2, 120_000);
    for (let i = 0; i < 600 && !existsSync(marker); i++) await sleep(100);
    t.ok(existsSync(marker), 'the messages were sent and wait unreceived');
    try {
      const g = await c.bcheckpoint();
      t.ok(g.dir, `checkpoint generation ${g.generation} with the messages in flight`);
    } catch (e) {
      t.fail((e as Error).message);
      await killJob(c, launch, listed);
      return;
    }
    const d = await launch.done;
    t.equal(d.code, 0, `the job resumes and exits 0${d.code === 0 ? '' : `: ${d.stderr}`}`);
    t.equal(existsSync(out) ? readFileSync(out, 'utf8') : '(no result file)', EXPECTED, 'the drained messages are delivered as documented');
  });
}
