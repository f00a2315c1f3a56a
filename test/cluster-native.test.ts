// The multi-node test bed itself (cluster-test/cluster.sh, test/lib/cluster.ts), without mana:
// two namespace nodes with real sshds are reached with OpenSSH and with ssh2 (host keys
// checked), and both native MPIs run one job across them, launched from the head (the root
// namespace) over ssh. The flags each MPI needs are the ones documented in cluster-test/README.md.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { repo, run, tempDir, removeDir, waitFor } from './lib/harness.js';
import { clusterUnsupported, startCluster, type Cluster } from './lib/cluster.js';

const have = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const skip = clusterUnsupported() ?? false;
const noMpich = ['mpicc.mpich', 'mpirun.mpich'].find((c) => !have(c));
const noOmpi = ['mpicc.openmpi', 'mpirun.openmpi'].find((c) => !have(c));

const src = join(repo, 'test', 'programs', 'mpi', 'hostsum.c');
let cl: Cluster;
let tmp = '';

t.before(async () => {
  if (skip) return;
  tmp = tempDir('cluster-native');
  cl = await startCluster(2);
});
t.teardown(async () => {
  if (cl) await cl.down();
  if (tmp) removeDir(tmp);
});

/** ssh with the cluster's config (the wrapper a launcher gets). */
const ssh = (args: string[]) => run(cl.sshWrapper, args, { timeoutMs: 20_000 });

t.test('OpenSSH reaches each node by IP and checks its host key', { skip }, async (t) => {
  for (const [k, node] of cl.nodes.entries()) {
    const r = await ssh([node.ip, 'hostname']);
    t.equal(r.code, 0, `ssh ${node.ip} hostname exits 0 (${r.stderr.trim()})`);
    t.equal(r.stdout.trim(), `node${k + 1}`, `${node.ip} is node${k + 1}`);
  }
  // inside a node, the bed's /etc/hosts names the other nodes and the head
  const hosts = await ssh([cl.nodes[0].ip, 'getent hosts node2 head']);
  t.match(hosts.stdout, new RegExp(`${cl.nodes[1].ip.replace(/\./g, '\\.')}\\s+node2`), 'node1 resolves node2');
  t.match(hosts.stdout, new RegExp(`${cl.headIp.replace(/\./g, '\\.')}\\s+head`), 'node1 resolves head');
  // the node's own enter() prefix runs in its namespaces
  const [cmd, ...args] = cl.enter(1);
  const inside = await run(cmd, [...args, 'hostname']);
  t.equal(inside.stdout.trim(), 'node2', 'enter(1) runs inside node2');

  // node2's key listed for node1's IP: ssh must refuse
  const wrong = join(tmp, 'known_hosts.wrong');
  const keyOf = (name: string): string => {
    const line = readFileSync(cl.knownHosts, 'utf8').split('\n').find((l) => l.startsWith(`${name},`));
    if (!line) throw new Error(`no known_hosts line for ${name}`);
    return line.split(' ').slice(1).join(' ');
  };
  writeFileSync(wrong, `node1,${cl.nodes[0].ip} ${keyOf('node2')}\n`);
  const refused = await ssh(['-o', `UserKnownHostsFile=${wrong}`, cl.nodes[0].ip, 'hostname']);
  t.not(refused.code, 0, 'a host key mismatch is refused');
  t.equal(refused.stdout, '', 'nothing ran on the node');
  t.match(refused.stderr, /HOST IDENTIFICATION HAS CHANGED|Host key verification failed/i, 'ssh says why');
});

/** Runs `cmd` on a node with ssh2, the host key checked against known_hosts. */
function ssh2Exec(ip: string, cmd: string, knownHosts: string, env?: Record<string, string>): Promise<{ out: string; code: number | null }> {
  const allowed = readFileSync(knownHosts, 'utf8')
    .split('\n')
    .filter((l) => l.split(' ')[0]?.split(',').includes(ip))
    .map((l) => Buffer.from(l.split(' ')[2] ?? '', 'base64'));
  return new Promise((resolve, reject) => {
    const c = new ssh2.Client();
    c.on('error', reject);
    c.on('ready', () => {
      c.exec(cmd, env ? { env } : {}, (err, stream) => {
        if (err) return reject(err);
        let out = '';
        stream.on('data', (d: Buffer) => (out += d.toString()));
        stream.stderr.resume();
        stream.on('close', (code: number | null) => {
          c.end();
          resolve({ out, code });
        });
      });
    });
    c.connect({
      host: ip,
      port: 22,
      username: 'root',
      privateKey: readFileSync(cl.key),
      readyTimeout: 10_000,
      // without hostHash, ssh2 passes the raw key blob: the base64 field of known_hosts
      hostVerifier: (key: Buffer): boolean => allowed.some((a) => a.equals(key)),
    });
  });
}

t.test('ssh2 reaches each node, host key verified', { skip }, async (t) => {
  for (const [k, node] of cl.nodes.entries()) {
    const r = await ssh2Exec(node.ip, 'hostname', cl.knownHosts);
    t.equal(r.code, 0, `ssh2 exec on ${node.ip} exits 0`);
    t.equal(r.out.trim(), `node${k + 1}`, `ssh2: ${node.ip} is node${k + 1}`);
  }
  // the sshds accept MANA_*, OMPI_MCA_*, PMIX_MCA_*, UCX_*, FI_*, MPIR_CVAR_* from the client
  const env = await ssh2Exec(cl.nodes[1].ip, 'echo "$MANA_CLUSTER_TEST/$OTHER_VAR"', cl.knownHosts, { MANA_CLUSTER_TEST: 'passed', OTHER_VAR: 'x' });
  t.equal(env.out.trim(), 'passed/', 'ssh2 exec env: MANA_* reaches the node, other names do not');
  const wrong = join(tmp, 'known_hosts.ssh2');
  const lines = readFileSync(cl.knownHosts, 'utf8').split('\n');
  // node1's IP with node2's key
  writeFileSync(wrong, `x,${cl.nodes[0].ip} ${lines[1]?.split(' ').slice(1).join(' ')}\n`);
  await t.rejects(ssh2Exec(cl.nodes[0].ip, 'hostname', wrong), 'ssh2 refuses a wrong host key');
});

/** `rank R of N on HOST sum S` lines, sorted by rank. */
function ranks(out: string): { rank: number; size: number; host: string; sum: number }[] {
  return [...out.matchAll(/^rank (\d+) of (\d+) on (\S+) sum (\d+)$/gm)]
    .map((m) => ({ rank: Number(m[1]), size: Number(m[2]), host: m[3] ?? '', sum: Number(m[4]) }))
    .sort((a, b) => a.rank - b.rank);
}

t.test('native MPICH runs one job across the nodes, launched from the head', { skip: skip || (noMpich && `${noMpich} is not installed`) }, async (t) => {
  const prog = join(tmp, 'hostsum-mpich');
  const cc = await run('mpicc.mpich', ['-o', prog, src]);
  t.equal(cc.code, 0, `mpicc.mpich builds hostsum.c (${cc.stderr})`);
  const hosts = cl.nodes.map((n) => n.ip).join(',');
  // -iface: Hydra's proxies connect back to the head's bridge address (by default mpiexec
  // advertises its hostname, which the nodes cannot resolve). UCX_LOG_LEVEL=info makes UCX
  // name the transport of each endpoint: between nodes it must be TCP over eth0.
  const r = await run('mpirun.mpich', ['-launcher', 'ssh', '-launcher-exec', cl.sshWrapper, '-iface', cl.bridge,
    '-hosts', hosts, '-n', '2', '-genv', 'UCX_LOG_LEVEL', 'info', prog], { timeoutMs: 60_000 });
  t.equal(r.code, 0, `mpirun.mpich exits 0 (${r.stderr.slice(-2000)})`);
  t.same(ranks(r.stdout), [
    { rank: 0, size: 2, host: 'node1', sum: 3 },
    { rank: 1, size: 2, host: 'node2', sum: 3 },
  ], 'one rank on each node, the Allreduce sum is 3');
  t.match(r.stdout + r.stderr, /ep_cfg\[\d+\]: tag\(tcp\/eth0\)/, 'the ranks talk over TCP on eth0, not shared memory');
});

t.test('native Open MPI runs one job across the nodes, launched from the head', { skip: skip || (noOmpi && `${noOmpi} is not installed`) }, async (t) => {
  const prog = join(tmp, 'hostsum-ompi');
  const cc = await run('mpicc.openmpi', ['-o', prog, src]);
  t.equal(cc.code, 0, `mpicc.openmpi builds hostsum.c (${cc.stderr})`);
  const hosts = cl.nodes.map((n) => n.ip).join(',');
  // btl tcp,self (no shared memory between the two ranks possible): the Allreduce must cross
  // the bridge. The *_if_include keep mpirun's and the ranks' sockets on the cluster subnet.
  // PMIX_MCA_psec=^munge: PMIx otherwise retries munged's socket for ~2.3 s in mpirun and in
  // each orted when munge is installed but not running (the bed's ssh forwards PMIX_MCA_*).
  const r = await run('mpirun.openmpi', ['--allow-run-as-root', '--oversubscribe', '--mca', 'plm_rsh_agent', cl.sshWrapper,
    '--mca', 'oob_tcp_if_include', cl.subnet, '--mca', 'btl_tcp_if_include', cl.subnet,
    '--mca', 'pml', 'ob1', '--mca', 'btl', 'tcp,self', '--host', hosts, '-n', '2', prog], { timeoutMs: 60_000, env: { ...process.env, PMIX_MCA_psec: '^munge' } });
  t.equal(r.code, 0, `mpirun.openmpi exits 0 (${r.stderr.slice(-2000)})`);
  t.same(ranks(r.stdout), [
    { rank: 0, size: 2, host: 'node1', sum: 3 },
    { rank: 1, size: 2, host: 'node2', sum: 3 },
  ], 'one rank on each node, the Allreduce sum is 3');
});

t.test('down leaves nothing behind', { skip }, async (t) => {
  const json = JSON.parse(readFileSync(join(cl.dir, 'cluster.json'), 'utf8')) as { nodes: { pid: number; sshdPid: number }[] };
  const pids = json.nodes.flatMap((n) => [n.pid, n.sshdPid]);
  const tag = cl.bridge.slice(3);
  await cl.down();
  const links = await run('ip', ['-br', 'link']);
  const ours = links.stdout.split('\n').filter((l) => l.startsWith(cl.bridge) || l.startsWith(`mcv${tag}`));
  t.same(ours, [], `no link named ${cl.bridge} or mcv${tag}* remains`);
  // a pid is gone once /proc has no live process for it (a zombie waiting for init counts as gone)
  const alive = (pid: number): boolean => {
    try {
      return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
    } catch {
      return false;
    }
  };
  await waitFor('holders and sshds to be gone', () => (pids.some(alive) ? undefined : true), 5_000).catch(() => undefined);
  t.same(pids.filter(alive), [], 'the holder and sshd pids are gone');
  t.notOk(existsSync(cl.dir), 'the cluster directory is removed');
  const again = await run('bash', [join(repo, 'cluster-test', 'cluster.sh'), 'down', cl.dir]);
  t.equal(again.code, 0, 'a second down is harmless');
});
