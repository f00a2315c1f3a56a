// The coordinator's interactive keys (c s l k q h, as dmtcp_coordinator's), on a real terminal:
// script(1) gives the coordinator a pty and we type into it.
import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureBuilt, manaBin, manaProc, removeDir, tempDir, testBin, waitFor } from './lib/harness.js';
import { latestGeneration } from './lib/scenario.js';

ensureBuilt();

t.test('keys c, l, k and q drive a running job', async (t) => {
  const dir = tempDir('keys');
  t.teardown(() => removeDir(dir));
  const ckpt = join(dir, 'ckpt');
  const portFile = join(dir, 'port');
  const cmd = `${process.execPath} ${manaBin} coordinator --port 0 --port-file ${portFile} --ckptdir ${ckpt}`;
  const term = spawn('script', ['-qfec', cmd, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let screen = '';
  term.stdout.on('data', (d: Buffer) => (screen += d.toString()));
  const closed = new Promise<number | null>((res) => term.on('close', (code) => res(code)));
  t.teardown(() => term.kill('SIGKILL'));
  const see = (re: RegExp, what: string): Promise<true> =>
    waitFor(what, () => (re.test(screen) ? true : undefined), 30_000);

  await see(/keys: c checkpoint/, 'the key help');
  const port = await waitFor('port file', () => (existsSync(portFile) ? Number(readFileSync(portFile, 'utf8')) : undefined));
  const launch = manaProc(['launch', '--join', '--coord-port', String(port), '--ckptdir', ckpt, '--',
    testBin('memloop'), join(dir, 'out'), '100000', '10'], { cwd: dir });

  // l until the list shows the program (it registers a moment after launch starts)
  await waitFor('the process in the list', () => {
    if (/memloop/.test(screen)) return true;
    term.stdin.write('l');
    return undefined;
  }, 30_000, 500);
  term.stdin.write('c');
  await see(/generation 1 committed/, 'a committed checkpoint');
  t.equal(latestGeneration(ckpt), 1, 'c wrote generation 1');
  term.stdin.write('s');
  await see(/last generation:\s+1/, 'the status');
  term.stdin.write('k');
  const killed = await launch.done;
  t.ok(killed.code === 143 || killed.code === 137, `k ended the program with SIGTERM (then SIGKILL if needed): ${killed.code}`);
  term.stdin.write('q');
  t.equal(await closed, 0, 'q ended the coordinator');
});
