// Test harness: runs the real mana CLI, real coordinators and real programs. Nothing is mocked;
// each helper only saves the tests from repeating spawn/wait/cleanup boilerplate.
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, chmodSync, chownSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const manaBin = join(repo, 'bin', 'mana');
export const testBin = (name: string): string => join(repo, 'native', 'out', 'test', name);

export interface Done {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** A running child whose output is collected and whose end can be awaited. */
export class Proc {
  readonly child: ChildProcess;
  readonly done: Promise<Done>;
  stdout = '';
  stderr = '';
  constructor(cmd: string, args: string[], opts: SpawnOptions = {}) {
    if (opts.uid !== undefined) {
      // tap re-injects its NODE_OPTIONS at spawn time; env(1) drops them again so that node
      // processes of another user don't try to write into tap's root-owned .tap/ directory.
      [cmd, args] = ['/usr/bin/env', ['-u', 'NODE_OPTIONS', cmd, ...args]];
    }
    this.child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    this.child.stdout?.on('data', (d: Buffer) => (this.stdout += d.toString()));
    this.child.stderr?.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.done = new Promise((res) => {
      this.child.on('close', (code, signal) =>
        res({ code, signal, stdout: this.stdout, stderr: this.stderr }),
      );
    });
  }
  kill(sig: NodeJS.Signals = 'SIGKILL'): void {
    try {
      this.child.kill(sig);
    } catch {
      /* already gone */
    }
  }
}

/** Runs a command to completion with a time limit; never throws on a non-zero exit. */
export async function run(
  cmd: string,
  args: string[],
  opts: SpawnOptions & { timeoutMs?: number } = {},
): Promise<Done> {
  const p = new Proc(cmd, args, opts);
  const limit = opts.timeoutMs ?? 120_000;
  const timer = setTimeout(() => p.kill('SIGKILL'), limit);
  const d = await p.done;
  clearTimeout(timer);
  return d;
}

export function mana(args: string[], opts: SpawnOptions & { timeoutMs?: number } = {}): Promise<Done> {
  return run(process.execPath, [manaBin, ...args], opts);
}

export function manaProc(args: string[], opts: SpawnOptions = {}): Proc {
  return new Proc(process.execPath, [manaBin, ...args], opts);
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 30_000,
  everyMs = 50,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

export function tempDir(prefix: string, owner?: number): string {
  const d = mkdtempSync(join(process.env.MANA_TEST_TMP ?? tmpdir(), `mana-${prefix}-`));
  if (owner !== undefined) {
    chmodSync(d, 0o755);
    chownSync(d, owner, owner);
  }
  return d;
}

export function removeDir(d: string): void {
  rmSync(d, { recursive: true, force: true });
}

/** A coordinator of its own for one test, on a free port. */
export class Coordinator {
  proc!: Proc;
  port = 0;
  constructor(
    readonly ckptdir: string,
    readonly extra: string[] = [],
    readonly spawnOpts: SpawnOptions = {},
  ) {}
  async start(): Promise<this> {
    const portFile = join(this.ckptdir, `.port-${process.pid}-${Date.now()}`);
    this.proc = manaProc(
      ['coordinator', '--port', '0', '--port-file', portFile, '--ckptdir', this.ckptdir, ...this.extra],
      this.spawnOpts,
    );
    this.port = await waitFor('coordinator port file', () => {
      if (!existsSync(portFile)) return undefined;
      const n = Number(readFileSync(portFile, 'utf8').trim());
      return n > 0 ? n : undefined;
    });
    return this;
  }
  command(args: string[], opts: SpawnOptions & { timeoutMs?: number } = {}): Promise<Done> {
    return mana(['command', '--coord-port', String(this.port), ...args], { ...this.spawnOpts, ...opts });
  }
  async list(): Promise<ProcInfo[]> {
    const d = await this.command(['--list', '--json']);
    if (d.code !== 0) throw new Error(`mana command --list failed: ${d.stderr}`);
    return parseList(d.stdout);
  }
  async bcheckpoint(): Promise<CheckpointResult> {
    const d = await this.command(['--bcheckpoint', '--json'], { timeoutMs: 120_000 });
    if (d.code !== 0) throw new Error(`mana command --bcheckpoint failed (${d.code}): ${d.stderr} ${d.stdout}`);
    return JSON.parse(d.stdout) as CheckpointResult;
  }
  async stop(): Promise<void> {
    this.proc.kill('SIGKILL');
    await this.proc.done;
  }
}

export interface ProcInfo {
  procId: number;
  pid: number;
  host: string;
  connected?: boolean;
  state?: string;
}

/** A process that is attached and running, so that a checkpoint can include it. */
export const isLive = (p: ProcInfo): boolean => p.pid > 0 && p.connected === true && p.state === 'running';
export interface CheckpointResult {
  generation: number;
  dir: string;
  bytes?: number;
}

export function parseList(stdout: string): ProcInfo[] {
  const v = JSON.parse(stdout) as { procs?: ProcInfo[] };
  if (!Array.isArray(v.procs)) throw new Error(`mana command --list --json: no "procs" array in ${stdout}`);
  return v.procs;
}

/** Waits until the coordinator lists `n` live processes and returns them. */
export function waitProcs(c: Coordinator, n: number, timeoutMs = 30_000): Promise<ProcInfo[]> {
  return waitFor(`${n} process(es) registered`, async () => {
    const l = await c.list().catch(() => []);
    return l.length === n && l.every(isLive) ? l : undefined;
  }, timeoutMs, 100);
}

export function ensureBuilt(): void {
  for (const f of [manaBin, join(repo, 'dist', 'cli', 'main.js'), join(repo, 'native', 'out', 'lib', 'libmana.so'),
    join(repo, 'native', 'out', 'bin', 'mana_restore'), testBin('memloop')]) {
    if (!existsSync(f)) throw new Error(`${f} is missing: run npm run build`);
  }
}

/** Runs a program natively (no mana) to get the reference result. */
export function runNative(cmd: string, args: string[], opts: SpawnOptions = {}): Promise<Done> {
  return run(cmd, args, opts);
}

export function userExists(uid: number): boolean {
  return spawnSync('getent', ['passwd', String(uid)]).status === 0;
}

/** Spawn options that run a command as another user (for the unprivileged tests). */
export function asUser(uid: number, gid: number): SpawnOptions {
  return { uid, gid, env: { ...process.env, HOME: '/tmp' } };
}
