// A multi-node test bed on this machine (cluster-test/cluster.sh): N nodes, each a set of Linux
// namespaces with its own hostname, IP and a real OpenSSH sshd, joined by a bridge in the root
// namespace (the "head"). Tests start one with startCluster() and tear it down with down().
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repo, run, tempDir, removeDir } from './harness.js';

export const clusterScript = join(repo, 'cluster-test', 'cluster.sh');

export interface ClusterNode {
  name: string;
  ip: string;
  /** pid of the process holding the node's namespaces */
  pid: number;
}

export interface Cluster {
  dir: string;
  headIp: string;
  /** e.g. "10.77.3.0/24" */
  subnet: string;
  bridge: string;
  nodes: ClusterNode[];
  /** private key path (its public key is authorized on every node) */
  key: string;
  knownHosts: string;
  /** executable: ssh with the cluster's ssh_config (for a launcher's remote shell) */
  sshWrapper: string;
  /** argv prefix that runs a command inside node k (0-based) */
  enter(k: number): string[];
  down(): Promise<void>;
}

/** Why this machine cannot run the bed, or undefined when it can. */
export function clusterUnsupported(): string | undefined {
  if (process.platform !== 'linux') return 'the cluster test bed needs Linux namespaces';
  if (process.getuid?.() !== 0) return 'the cluster test bed needs root (namespaces, veths, a bridge)';
  const tools: [string, string][] = [
    ['/usr/sbin/sshd', 'openssh-server'],
    ['ssh', 'openssh-client'],
    ['ssh-keygen', 'openssh-client'],
    ['ip', 'iproute2'],
    ['unshare', 'util-linux'],
    ['nsenter', 'util-linux'],
  ];
  for (const [tool, pkg] of tools) {
    const found = tool.startsWith('/')
      ? existsSync(tool)
      : spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
    if (!found) return `${tool} is missing (apt-get install ${pkg})`;
  }
  return undefined;
}

interface ClusterJson {
  dir: string;
  subnet: string;
  headIp: string;
  bridge: string;
  nodes: { name: string; ip: string; pid: number; sshdPid: number }[];
}

/** Starts an n-node cluster in a fresh temporary directory. */
export async function startCluster(n: number): Promise<Cluster> {
  const dir = tempDir('cluster');
  const up = await run('bash', [clusterScript, 'up', dir, String(n)], { timeoutMs: 60_000 });
  if (up.code !== 0) {
    removeDir(dir);
    throw new Error(`cluster.sh up ${n} failed (${up.code}): ${up.stderr.trim()}`);
  }
  const info = JSON.parse(readFileSync(join(dir, 'cluster.json'), 'utf8')) as ClusterJson;
  let isDown = false;
  return {
    dir,
    headIp: info.headIp,
    subnet: `${info.subnet}.0/24`,
    bridge: info.bridge,
    nodes: info.nodes.map(({ name, ip, pid }) => ({ name, ip, pid })),
    key: join(dir, 'id_ed25519'),
    knownHosts: join(dir, 'known_hosts'),
    sshWrapper: join(dir, 'ssh'),
    enter(k: number): string[] {
      const node = info.nodes[k];
      if (!node) throw new Error(`no node ${k} (0-based) in a ${info.nodes.length}-node cluster`);
      return ['nsenter', '-t', String(node.pid), '-n', '-u', '-m', '--'];
    },
    async down(): Promise<void> {
      if (isDown) return;
      const r = await run('bash', [clusterScript, 'down', dir], { timeoutMs: 60_000 });
      if (r.code !== 0) throw new Error(`cluster.sh down failed (${r.code}): ${r.stderr.trim()}`);
      isDown = true;
      removeDir(dir);
    },
  };
}
