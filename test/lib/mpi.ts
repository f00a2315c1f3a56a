// Helpers for the MPI checkpoint tests (test/mpi-ckpt.test.ts, test/mpi-ckpt-suite.test.ts):
// what the machine lacks, the process tree of a launcher, SIGKILL of a whole job, and the
// launch → checkpoint → restart steps against real coordinators and real MPI launchers.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  Coordinator, manaProc, Proc, repo, sleep, waitFor, type Done, type ProcInfo,
} from './harness.js';

export type Flavour = 'mpich' | 'openmpi';
export const FLAVOURS: readonly Flavour[] = ['mpich', 'openmpi'];
export const launcherOf = (f: Flavour): string => `mpirun.${f}`;
export const mpiccOf = (f: Flavour): string => `mpicc.${f}`;
export const shimLib = join(repo, 'mpi-shim', 'out', 'lib');

export const have = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

/** Why MPI tests cannot run here (for tap's skip), or false. */
export function mpiSkip(cmds: string[]): string | false {
  const missing = [
    ...(existsSync(join(shimLib, 'libmpi.so.12')) ? [] : ['mpi-shim is not built (make -C mpi-shim)']),
    ...cmds.filter((c) => !have(c)).map((c) => `${c} is not installed`),
  ];
  return missing.length ? missing.join('; ') : false;
}

/** Environment for running Open MPI's launcher natively (as root, oversubscribed). */
export const nativeEnv = (f: Flavour): NodeJS.ProcessEnv =>
  f === 'openmpi'
    ? { ...process.env, OMPI_ALLOW_RUN_AS_ROOT: '1', OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: '1', OMPI_MCA_rmaps_base_oversubscribe: '1' }
    : process.env;

export type ListedProc = ProcInfo & { launcher?: boolean };
export const ranksOf = (l: ListedProc[]): ListedProc[] => l.filter((p) => !p.launcher);

/** pid and every descendant of it (mpirun's proxies and ranks), from /proc. */
export function tree(root: number): number[] {
  const parent = new Map<number, number>();
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const st = readFileSync(`/proc/${e}/stat`, 'utf8');
      parent.set(Number(e), Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // exited meanwhile
    }
  }
  const out = [root];
  for (let i = 0; i < out.length; i++) for (const [pid, pp] of parent) if (pp === out[i]) out.push(pid);
  return out;
}

export function killAll(pids: number[]): void {
  for (const pid of pids) {
    if (!(pid > 0)) continue;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
}

/** `mana launch --join` of an MPI job under coordinator c, checkpoints into ckpt. */
export function launchJob(c: Coordinator, ckpt: string, launcherArgv: string[], cwd: string): Proc {
  // no --drop-unrestorable-fds: the lower half's own fds (its epoll instance, PMI and shm
  // sockets, pipes) are kept out of the image by the shim's plugin, not dropped by force
  return manaProc(['launch', '--join', '--coord-port', String(c.port), '--ckptdir', ckpt, '--', ...launcherArgv], { cwd });
}

/** Waits until all n ranks have said HELLO and run; returns the listing (launcher included). */
export function waitRanks(c: Coordinator, n: number, timeoutMs = 60_000): Promise<ListedProc[]> {
  return waitFor(`all ${n} ranks to say HELLO`, async () => {
    const l = (await c.list().catch(() => [])) as ListedProc[];
    const ranks = ranksOf(l);
    return ranks.length === n && ranks.every((p) => p.connected && p.state === 'running') ? l : undefined;
  }, timeoutMs, 100);
}

/**
 * SIGKILL of every rank, the launcher (and its proxies / daemons) and mana launch. The ranks'
 * pids come from `known` (a listing taken earlier: asking the coordinator again costs a CLI
 * start, time in which a short job may finish) or else from the coordinator.
 */
export async function killJob(c: Coordinator, launch: Proc, known?: ProcInfo[]): Promise<void> {
  const now = known ?? ((await c.list().catch(() => [])) as ListedProc[]);
  killAll([...tree(launch.child.pid ?? 0), ...now.map((p) => p.pid)]);
  await Promise.race([launch.done, sleep(10_000)]);
}

/** `mana restart GEN --join` under a fresh coordinator; resolves when the restarted job ends. */
export async function restartJob(gen: string, ckpt: string, cwd: string, args: string[], timeoutMs = 180_000): Promise<Done> {
  const c = await new Coordinator(ckpt).start();
  try {
    const p = new Proc(process.execPath, [join(repo, 'bin', 'mana'), 'restart', gen, '--join', '--coord-port', String(c.port), ...args], { cwd });
    const timer = setTimeout(() => killAll(tree(p.child.pid ?? 0)), timeoutMs);
    const d = await p.done;
    clearTimeout(timer);
    return d;
  } finally {
    await c.stop();
  }
}
