// MPI jobs over several nodes (docs/multi-node.md), on the namespace cluster of cluster-test/
// (2 nodes on this machine: the same cores and disk as one node, so the ratios show what the
// distribution costs, not a faster network):
//   cluster-ckpt:  `--bcheckpoint` of 4 ranks × 64 MiB placed 2 per node, against the same job
//                  with its 4 ranks on this host, measured in the same run (bench/mpi-ckpt.ts);
//   cluster-start: wall time of a tiny MPI job (start, one allreduce, exit), one rank on each
//                  node, under mana launch (mana rsh, node agents, a coordinator) against the
//                  same launcher natively with OpenSSH as its remote shell. (One rank per node:
//                  with two, MPICH 4.0.2 over UCX's TCP transport sometimes hangs in
//                  MPI_Finalize, natively too; docs/multi-node.md.)
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { clusterUnsupported, startCluster, type Cluster } from '../test/lib/cluster.js';
import { manaBin, run } from '../test/lib/harness.js';
import { checkpoints, median, MIB, RANKS, type Placement } from './mpi-ckpt.js';
import type { MpiRow } from './mpi.js';

const repo = join(import.meta.dirname, '..');
type Flavour = 'mpich' | 'openmpi';
const NAME: Record<Flavour, string> = { mpich: 'MPICH', openmpi: 'Open MPI' };

function env(c: Cluster): NodeJS.ProcessEnv {
  return { ...process.env, MANA_SSH_KEY: c.key, MANA_SSH_KNOWN_HOSTS: c.knownHosts, PMIX_MCA_psec: '^munge', OMPI_ALLOW_RUN_AS_ROOT: '1', OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: '1' };
}

/** hosts with `perNode` slots each, and the options that keep the launcher on the cluster's network */
function launcherOpts(c: Cluster, f: Flavour, perNode: number): string[] {
  const hosts = c.nodes.map((n) => `${n.ip}:${perNode}`).join(',');
  return f === 'mpich'
    ? ['-hosts', hosts, '-iface', c.bridge]
    : ['--host', hosts, '--mca', 'oob_tcp_if_include', c.subnet, '--mca', 'btl_tcp_if_include', c.subnet];
}

async function wall(cmd: string, args: string[], e: NodeJS.ProcessEnv, cwd: string): Promise<number> {
  const t0 = process.hrtime.bigint();
  const d = await run(cmd, args, { env: e, cwd, timeoutMs: 120_000 });
  if (d.code !== 0) throw new Error(`${[cmd, ...args].join(' ')} failed (${d.code}): ${d.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

export async function clusterBench(root: string, reps: number, rows: MpiRow[]): Promise<void> {
  const why = clusterUnsupported();
  if (why) {
    console.log(`mana bench: cluster benchmarks skipped: ${why}`);
    return;
  }
  const dir = join(root, 'cluster');
  mkdirSync(dir, { recursive: true });
  const ckptjob = join(dir, 'ckptjob');
  const hostsum = join(dir, 'hostsum');
  for (const [out, src] of [[ckptjob, join(repo, 'bench', 'mpi', 'ckptjob.c')], [hostsum, join(repo, 'test', 'programs', 'mpi', 'hostsum.c')]] as const) {
    const cc = spawnSync(manaBin, ['mpicc', '-O2', '-o', out, src], { encoding: 'utf8' });
    if (cc.status !== 0) throw new Error(`mana mpicc ${src} failed: ${cc.stderr}`);
  }
  const nativeSum = { mpich: join(dir, 'hostsum-mpich'), openmpi: join(dir, 'hostsum-openmpi') };
  for (const f of ['mpich', 'openmpi'] as const) {
    const cc = spawnSync(`mpicc.${f}`, ['-O2', '-o', nativeSum[f], join(repo, 'test', 'programs', 'mpi', 'hostsum.c')], { encoding: 'utf8' });
    if (cc.status !== 0) throw new Error(`mpicc.${f} hostsum.c failed: ${cc.stderr}`);
  }
  const c = await startCluster(2);
  try {
    for (const f of ['mpich', 'openmpi'] as const) {
      const e = env(c);
      const where: Placement = { name: 'nodes', launcherOpts: launcherOpts(c, f, RANKS / 2), env: e, coordArgs: ['--bind', '0.0.0.0'] };
      const local = await checkpoints(dir, f, ckptjob, 'idle', reps);
      const spread = await checkpoints(dir, f, ckptjob, 'idle', reps, where);
      rows.push({
        id: 'cluster-ckpt', what: `${NAME[f]}: --bcheckpoint ${RANKS} ranks × ${MIB} MiB on 2 nodes (2 each), suspend → committed`,
        value: `${median(spread.inner).toFixed(3)} s`, baseline: `one node ${median(local.inner).toFixed(3)} s`,
        ratio: (median(spread.inner) / median(local.inner)).toFixed(2), bar: '< 1 s',
      });

      // start-up: native with OpenSSH against mana launch with mana rsh, 4 ranks over 2 nodes
      const shell = f === 'mpich' ? ['-launcher', 'ssh', '-launcher-exec', c.sshWrapper] : ['--mca', 'plm_rsh_agent', c.sshWrapper];
      const native: number[] = [];
      const mana: number[] = [];
      for (let i = 0; i < reps; i++) {
        native.push(await wall(`mpirun.${f}`, [...shell, ...launcherOpts(c, f, 1), '-n', '2', nativeSum[f]], e, dir));
        mana.push(await wall(manaBin, ['launch', '--coord-port', '0', '--ckptdir', join(dir, 'ckpt-start'), '--', `mpirun.${f}`, ...launcherOpts(c, f, 1), '-n', '2', hostsum], e, dir));
      }
      rows.push({
        id: 'cluster-start', what: `${NAME[f]}: a 2-rank job over 2 nodes (start, allreduce, exit), wall time`,
        value: `${median(mana).toFixed(3)} s`, baseline: `native, OpenSSH ${median(native).toFixed(3)} s`,
        ratio: (median(mana) / median(native)).toFixed(2), bar: '—',
      });
    }
  } finally {
    await c.down();
    rmSync(dir, { recursive: true, force: true });
  }
}
