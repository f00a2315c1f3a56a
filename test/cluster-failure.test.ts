// A node lost in the middle of an MPI job over two nodes (cluster-test/): its node agent is
// SIGKILLed, as when the node dies. The next checkpoint fails with one line naming the rank
// there, the generation committed before stays `latest` and restartable, and the restart of
// it on the nodes still gives the uninterrupted run's result.
import t from 'tap';
import { existsSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Coordinator, ensureBuilt, mana, manaProc, Proc, removeDir, repo, run, sleep, tempDir, waitFor } from './lib/harness.js';
import { clusterUnsupported, startCluster, type Cluster } from './lib/cluster.js';
import { killAll, killJob, mpiSkip, ranksOf, tree, waitRanks } from './lib/mpi.js';

ensureBuilt();

const skip = clusterUnsupported() ?? mpiSkip(['mpicc.mpich', 'mpirun.mpich', 'mpirun.openmpi']);
const dir = tempDir('cluster-failure');
t.teardown(() => removeDir(dir));
let cl: Cluster | undefined;
t.teardown(async () => {
  await cl?.down();
});

/** pids of `mana node-agent` processes inside node k's network namespace */
function nodeAgents(c: Cluster, k: number): number[] {
  const net = readlinkSync(`/proc/${c.nodes[k]?.pid}/ns/net`);
  return readdirSync('/proc').filter((e) => /^\d+$/.test(e)).map(Number).filter((pid) => {
    try {
      return readlinkSync(`/proc/${pid}/ns/net`) === net && readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes('node-agent');
    } catch {
      return false;
    }
  });
}

// SIGKILL of the job (mana rsh included) leaves the node's forwarded socket, as a dead node
// would: remove those this test made
const socketsIn = (): string[] => readdirSync('/tmp').filter((f) => /^mana-coord-[0-9a-f]+\.sock$/.test(f));
const before = new Set(socketsIn());
t.teardown(() => {
  for (const f of socketsIn()) if (!before.has(f)) rmSync(join('/tmp', f), { force: true });
});

t.test('a node agent killed mid-job: the checkpoint fails with one line, latest stays restartable', { skip }, async (t) => {
  cl = await startCluster(2);
  const c0 = cl;
  const src = join(repo, 'test', 'programs', 'mpi', 'steps.c');
  const prog = join(dir, 'steps');
  t.equal((await mana(['mpicc', '-O2', '-o', prog, src])).code, 0, 'mana mpicc steps.c');
  const native = join(dir, 'steps-native');
  t.equal((await run('mpicc.mpich', ['-O2', '-o', native, src])).code, 0, 'mpicc.mpich steps.c');
  const refOut = join(dir, 'ref.out');
  t.equal((await run('mpirun.mpich', ['-n', '2', native, refOut, '200', '0'], { timeoutMs: 120_000 })).code, 0, 'native reference run');

  const env = { ...process.env, MANA_SSH_KEY: c0.key, MANA_SSH_KNOWN_HOSTS: c0.knownHosts, PMIX_MCA_psec: '^munge', MANA_FINALIZE_TIMEOUT: '5' };
  const ips = c0.nodes.map((n) => n.ip);
  const ckpt = join(dir, 'ckpt');
  const out = join(dir, 'result.out');
  const c = await new Coordinator(ckpt, ['--phase-timeout-ms', '20000']).start();
  t.teardown(() => c.stop());
  const launch = manaProc(['launch', '--join', '--coord-port', String(c.port), '--ckptdir', ckpt, '--', 'mpirun.openmpi', '--host', ips.join(','), '--mca', 'oob_tcp_if_include', c0.subnet, '--mca', 'btl_tcp_if_include', c0.subnet, '-n', '2', prog, out, '200', '40'], { cwd: dir, env });
  const listed = await waitRanks(c, 2, 120_000);
  await sleep(1000);
  const g1 = await c.bcheckpoint();
  t.equal(g1.generation, 1, 'generation 1 committed');

  const agents = nodeAgents(c0, 1);
  t.equal(agents.length, 1, 'node2 runs one node agent');
  killAll(agents);
  const rank1 = ranksOf(listed).find((p) => p.procId === 1);
  await waitFor('rank 1 to be lost', async () => ((await c.list()).find((p) => p.procId === 1)?.state === 'lost' ? true : undefined), 20_000);
  t.pass(`rank 1 (pid ${rank1?.pid}) is listed as lost`);
  const d = await c.command(['--bcheckpoint'], { timeoutMs: 60_000 });
  t.not(d.code, 0, 'the next checkpoint fails');
  t.match(d.stderr, /^mana command: MPI rank 1 \(pid \d+ on node2\) lost its agent \(the node or its mana node-agent died\); restart from the last generation to checkpoint again\n$/, 'one line naming the rank, its node and what to do');
  t.equal(readlinkSync(join(ckpt, 'latest')), 'gen-000001', 'latest is still generation 1');
  await killJob(c, launch, listed);
  await c.stop();

  const c2 = await new Coordinator(ckpt).start();
  t.teardown(() => c2.stop());
  const restart = new Proc(process.execPath, [join(repo, 'bin', 'mana'), 'restart', join(ckpt, 'latest'), '--join', '--coord-port', String(c2.port), '--hosts', ips.join(','), '--launcher-args', `--mca oob_tcp_if_include ${c0.subnet} --mca btl_tcp_if_include ${c0.subnet}`], { cwd: dir, env });
  const timer = setTimeout(() => killAll(tree(restart.child.pid ?? 0)), 180_000);
  const r = await restart.done;
  clearTimeout(timer);
  t.equal(r.code, 0, `mana restart of generation 1 exits 0${r.code === 0 ? '' : ` (${r.stderr})`}`);
  t.ok(existsSync(out) && readFileSync(out).equals(readFileSync(refOut)), 'the result equals the uninterrupted run');
});
