// End to end: in-process plugins (native/include/mana_plugin.h) and MPI rank mode of libmana.
// plugin_probe registers a plugin that keeps 64 MiB of "lower-half" memory and a thread that
// blocks every signal out of the image, and rebuilds both in restart(); the callbacks it gets
// are logged to a file. Rank mode is checked at the C level: a process without a rank variable
// stays inert, a rank says HELLO with its rank to a stand-in agent socket.
import t from 'tap';
import { join } from 'node:path';
import { createServer, type Server, type Socket } from 'node:net';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import {
  Coordinator, ensureBuilt, mana, manaProc, removeDir, repo, run, runNative, sleep, tempDir, testBin, waitFor,
  type Done,
} from './lib/harness.js';
import { failedCheckpoint, launchProgram, waitNewProc } from './lib/scenario.js';

ensureBuilt();

const probe = testBin('plugin_probe');
const libmana = join(repo, 'native', 'out', 'lib', 'libmana.so');
const STEPS = 800; // 8 s and more: outlasts the checkpoints and inspections below on a loaded machine
const MiB = 1 << 20;

interface ImageFacts {
  rawBytes: number;
  threads: { tid: number; main?: boolean; ckpt?: boolean; helper?: boolean }[];
}

async function inspect(ckptdir: string): Promise<ImageFacts> {
  const d = await mana(['inspect', '--json', ckptdir]);
  if (d.code !== 0) throw new Error(`mana inspect failed: ${d.stderr}`);
  const v = JSON.parse(d.stdout) as { images: { image: ImageFacts }[] };
  return v.images[0]!.image;
}

const logLines = (f: string): string[] => (existsSync(f) ? readFileSync(f, 'utf8').split('\n').filter((l) => l) : []);
/** The callbacks in the log, without their details ("presuspend step=12" -> "presuspend"). */
const events = (f: string): string[] => logLines(f).map((l) => l.replace(/ (step|helper|max)=.*$/, ''));

t.test('a plugin keeps memory and a thread out of the image and rebuilds them at restart', async (t) => {
  const dir = tempDir('plugin');
  t.teardown(() => removeDir(dir));
  const refDone = runNative(probe, [join(dir, 'ref.out'), String(STEPS), '10']); // meanwhile
  const c = await new Coordinator(join(dir, 'ckpt')).start();
  t.teardown(() => c.stop());

  // the same program saving everything (its helper thread is still left out, or SUSPEND
  // would time out on it)
  const plainLog = join(dir, 'plain.log');
  const plainRun = launchProgram(c, dir, [probe, join(dir, 'plain.out'), String(STEPS), '10'], [],
    { env: { ...process.env, PROBE_LOG: plainLog, PROBE_NO_RANGES: '1' } });
  const p0 = await waitNewProc(c, []);
  await sleep(200);
  await c.bcheckpoint();
  const plain = await inspect(c.ckptdir);
  process.kill(p0.pid, 'SIGKILL');
  await plainRun.done;

  const log = join(dir, 'probe.log');
  const out = join(dir, 'mana.out');
  const launch = launchProgram(c, dir, [probe, out, String(STEPS), '10'], [], { env: { ...process.env, PROBE_LOG: log } });
  const p = await waitNewProc(c, [p0.pid]);
  await sleep(300);
  await c.bcheckpoint();
  const img = await inspect(c.ckptdir);
  const saved = plain.rawBytes - img.rawBytes;
  t.ok(saved >= 64 * MiB && saved < 66 * MiB, `the image is 64 MiB smaller (${plain.rawBytes} - ${img.rawBytes} = ${saved} bytes)`);
  // (libmana's own image-writer helpers are in every image; the plugin's thread is not)
  t.equal(img.threads.filter((x) => !x.helper).length, 2, 'the image holds the main and the checkpoint thread, not the helper');
  t.ok(img.threads.some((x) => x.main) && img.threads.some((x) => x.ckpt));
  t.same(events(log), ['register 0', 'presuspend', 'presuspend done', 'exclude_tids', 'exclude_ranges', 'resume 0'],
    'checkpoint: presuspend, exclude_tids (before parking), exclude_ranges (parked), resume(0)');
  const before = Number(/presuspend step=(\d+)/.exec(readFileSync(log, 'utf8'))?.[1]);
  const after = Number(/presuspend done step=(\d+)/.exec(readFileSync(log, 'utf8'))?.[1]);
  t.ok(after > before, `the application ran on during presuspend (step ${before} -> ${after})`);

  process.kill(p.pid, 'SIGKILL');
  await launch.done;
  const r = await manaProc(['restart', c.ckptdir, '--join', '--coord-port', String(c.port)],
    { cwd: dir, env: { ...process.env, PROBE_RESTART_VAR: 'from-the-restart' } }).done;
  t.equal(r.code, 0, `the restarted program exits normally: ${r.stderr}`);
  t.equal((await refDone).code, 0);
  t.same(events(log).slice(6), ['restart PROBE_RESTART_VAR=from-the-restart', 'restart done', 'resume 1'],
    'restart: restart(env of the restart), then resume(1)');
  t.equal(readFileSync(out, 'utf8'), readFileSync(join(dir, 'ref.out'), 'utf8'),
    'the output equals the uninterrupted run (border pages kept, excluded range and helper rebuilt)');
});

// The kernel writes into an excluded thread's stack mapping while the image is written (the
// rseq area of its thread descriptor); this helper also writes its own stack all the time, so
// a chunk of that stack hashed before and written after a change fails verification.
t.test('an excluded thread that writes its stack during the write: every image verifies, the restart completes', async (t) => {
  const dir = tempDir('plugin-busy');
  t.teardown(() => removeDir(dir));
  const env = { ...process.env, PROBE_HELPER_BUSY: '1' };
  const refDone = runNative(probe, [join(dir, 'ref.out'), String(STEPS), '10'], { env });
  const c = await new Coordinator(join(dir, 'ckpt')).start();
  t.teardown(() => c.stop());
  const out = join(dir, 'mana.out');
  const launch = launchProgram(c, dir, [probe, out, String(STEPS), '10'], [], { env });
  const p = await waitNewProc(c, []);
  await sleep(200);
  for (let k = 1; k <= 3; k++) {
    await c.bcheckpoint();
    const v = await mana(['inspect', '--verify', c.ckptdir]);
    t.equal(v.code, 0, `checkpoint ${k}: mana inspect --verify passes ${v.stderr}`);
  }
  process.kill(p.pid, 'SIGKILL');
  await launch.done;
  const r = await manaProc(['restart', c.ckptdir, '--join', '--coord-port', String(c.port)], { cwd: dir, env }).done;
  t.equal(r.code, 0, `the restarted program exits normally: ${r.stderr}`);
  t.equal((await refDone).code, 0);
  t.equal(readFileSync(out, 'utf8'), readFileSync(join(dir, 'ref.out'), 'utf8'), 'the output equals the uninterrupted run');
});

t.test('presuspend fails: the checkpoint fails with its reason, the program runs on', async (t) => {
  const dir = tempDir('plugin-fail');
  t.teardown(() => removeDir(dir));
  const refDone = runNative(probe, [join(dir, 'ref.out'), String(STEPS), '10']);
  const c = await new Coordinator(join(dir, 'ckpt')).start();
  t.teardown(() => c.stop());
  const log = join(dir, 'probe.log');
  const fail = join(dir, 'fail');
  writeFileSync(fail, 'probe: the drain was refused by the test\n');
  const out = join(dir, 'mana.out');
  const launch = launchProgram(c, dir, [probe, out, String(STEPS), '10'], [],
    { env: { ...process.env, PROBE_LOG: log, PROBE_FAIL_FILE: fail } });
  await waitNewProc(c, []);
  await sleep(200);
  const err = await failedCheckpoint(c);
  t.match(err, /probe: the drain was refused by the test/, 'the generation fails with the plugin\'s reason');
  await waitFor('resume(0) after the failed round', () => (events(log).includes('resume 0') ? true : undefined), 10_000);
  t.same(events(log), ['register 0', 'presuspend', 'presuspend failed: probe: the drain was refused by the test', 'resume 0'],
    'nothing was excluded or parked; resume(0) closed the round');
  rmSync(fail);
  const g = await c.bcheckpoint();
  t.ok(g.generation >= 1, 'a later checkpoint succeeds');
  t.same(events(log).slice(4), ['presuspend', 'presuspend done', 'exclude_tids', 'exclude_ranges', 'resume 0']);
  const d = await launch.done;
  t.equal(d.code, 0);
  t.equal((await refDone).code, 0);
  t.equal(readFileSync(out, 'utf8'), readFileSync(join(dir, 'ref.out'), 'utf8'), 'the output is unaffected');
});

t.test('restart() fails: the restored process exits 71 with its reason', async (t) => {
  const dir = tempDir('plugin-restartfail');
  t.teardown(() => removeDir(dir));
  const c = await new Coordinator(join(dir, 'ckpt')).start();
  t.teardown(() => c.stop());
  const launch = launchProgram(c, dir, [probe, join(dir, 'mana.out'), String(STEPS), '10']);
  const p = await waitNewProc(c, []);
  await sleep(200);
  await c.bcheckpoint();
  process.kill(p.pid, 'SIGKILL');
  await launch.done;
  const r = await manaProc(['restart', c.ckptdir, '--join', '--coord-port', String(c.port)],
    { cwd: dir, env: { ...process.env, PROBE_RESTART_FAIL: '1' } }).done;
  t.not(r.code, 0, 'mana restart fails');
  t.match(r.stderr, /mana restart: probe: told to fail \(PROBE_RESTART_FAIL=1\)/, 'with the plugin\'s line');
});

// ---- MPI rank mode, at the C level: libmana in a process of an MPI job, and a stand-in agent ----

interface FakeAgent {
  path: string;
  hellos: Record<string, string>[];
  server: Server;
}

async function fakeAgent(dir: string): Promise<FakeAgent> {
  const path = join(dir, 'agent.sock');
  const hellos: Record<string, string>[] = [];
  const sockets: Socket[] = [];
  const server = createServer((s) => {
    sockets.push(s);
    let buf = Buffer.alloc(0);
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 16) {
        const type = buf.readUInt16LE(6);
        const n = buf.readUInt32LE(8);
        if (buf.length < 16 + n) break;
        const payload = buf.subarray(16, 16 + n).toString();
        buf = buf.subarray(16 + n);
        if (type === 1) {
          hellos.push(Object.fromEntries(payload.split('\n').filter((l) => l.includes('='))
            .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)])));
        }
      }
    });
    s.on('error', () => undefined);
  });
  await new Promise<void>((res) => server.listen(path, res));
  server.on('close', () => sockets.forEach((s) => s.destroy()));
  return { path, hellos, server };
}

function envProbe(a: FakeAgent, extra: Record<string, string>): Promise<Done> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !/^(PMI_|PMIX_|OMPI_|SLURM_|MANA_)/.test(k)) env[k] = v;
  }
  return run(probe, ['--env'], {
    env: { ...env, LD_PRELOAD: libmana, MANA_AGENT_SOCK: a.path, MANA_PROC_ID: '7', PROBE_WAIT_MS: '300', ...extra },
    timeoutMs: 20_000,
  });
}

const field = (d: Done, k: string): string | undefined => new RegExp(`^${k}=(.*)$`, 'm').exec(d.stdout)?.[1];

t.test('rank mode: launchers and daemons stay inert and pass the environment on', async (t) => {
  const dir = tempDir('rank-inert');
  t.teardown(() => removeDir(dir));
  const a = await fakeAgent(dir);
  t.teardown(() => a.server.close());
  const extras: Record<string, string>[] = [{}, { SLURM_PROCID: '2', SLURM_NTASKS: '4' } /* a batch script, not a step */];
  for (const extra of extras) {
    const d = await envProbe(a, { MANA_MPI_JOB: '1', ...extra });
    t.equal(d.code, 0, d.stderr);
    t.equal(field(d, 'LD_PRELOAD'), libmana, 'LD_PRELOAD is left for the children');
    t.equal(field(d, 'MANA_AGENT_SOCK'), a.path, 'MANA_AGENT_SOCK is left');
    t.equal(field(d, 'MANA_PROC_ID'), '7', 'MANA_PROC_ID is left');
    t.equal(field(d, 'tasks'), '1', 'no checkpoint thread');
    t.equal(field(d, 'register'), '-1', 'mana_plugin_register says inert');
    t.equal(d.stderr, '', 'nothing said');
  }
  t.equal(a.hellos.length, 0, 'no process connected to the agent');
  // the same through a shell, as a launcher starts its daemons: the environment is inherited
  const sh = await run('/bin/sh', ['-c', `${probe} --env`], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LD_PRELOAD: libmana, MANA_AGENT_SOCK: a.path, MANA_MPI_JOB: '1', PROBE_WAIT_MS: '0' },
  });
  t.equal(field(sh, 'LD_PRELOAD'), libmana, 'a grandchild still has LD_PRELOAD');
  t.equal(field(sh, 'tasks'), '1');
});

t.test('rank mode: a rank is managed with its rank as proc_id and says so in HELLO', async (t) => {
  const dir = tempDir('rank-hello');
  t.teardown(() => removeDir(dir));
  const cases: { env: Record<string, string>; rank: string; size?: string }[] = [
    { env: { PMI_RANK: '3', PMI_SIZE: '4' }, rank: '3', size: '4' },
    { env: { OMPI_COMM_WORLD_RANK: '1', OMPI_COMM_WORLD_SIZE: '2' }, rank: '1', size: '2' },
    { env: { PMIX_RANK: '5' }, rank: '5' },
    { env: { SLURM_PROCID: '2', SLURM_STEP_ID: '0', SLURM_NTASKS: '6' }, rank: '2', size: '6' },
    // PMI_RANK comes first
    { env: { PMI_RANK: '0', PMI_SIZE: '2', SLURM_PROCID: '9', SLURM_STEP_ID: '0', SLURM_NTASKS: '10' }, rank: '0', size: '2' },
  ];
  for (const c of cases) {
    const a = await fakeAgent(dir);
    const d = await envProbe(a, { MANA_MPI_JOB: '1', ...c.env });
    await waitFor('HELLO', () => (a.hellos.length ? true : undefined), 5000).catch(() => undefined);
    await new Promise<void>((res) => a.server.close(() => res()));
    const what = JSON.stringify(c.env);
    t.equal(d.code, 0, d.stderr);
    t.equal(a.hellos.length, 1, `${what}: one HELLO`);
    const h = a.hellos[0] ?? {};
    t.equal(h.proc_id, c.rank, `${what}: proc_id is the rank, not MANA_PROC_ID`);
    t.equal(h.mpi_rank, c.rank, `${what}: mpi_rank`);
    t.equal(h.mpi_size, c.size, `${what}: mpi_size`);
    t.equal(field(d, 'LD_PRELOAD'), '(unset)', `${what}: the rank's own children run unmanaged`);
    t.equal(field(d, 'MANA_AGENT_SOCK'), '(unset)');
    t.ok(Number(field(d, 'tasks')) >= 2, 'the checkpoint thread runs (and, after HELLO, the image writer helpers)');
    t.equal(field(d, 'register'), '0', 'a plugin can register');
  }
  // without MANA_MPI_JOB nothing changes: MANA_PROC_ID, and no MPI keys
  const a = await fakeAgent(dir);
  const d = await envProbe(a, { PMI_RANK: '3', PMI_SIZE: '4' });
  await waitFor('HELLO', () => (a.hellos.length ? true : undefined), 5000).catch(() => undefined);
  await new Promise<void>((res) => a.server.close(() => res()));
  t.equal(d.code, 0);
  t.equal(a.hellos[0]?.proc_id, '7', 'not an MPI job: MANA_PROC_ID');
  t.equal(a.hellos[0]?.mpi_rank, undefined, 'no mpi_rank');
});
