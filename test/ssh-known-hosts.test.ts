// Host-key checking of mana rsh against known_hosts files written and hashed by OpenSSH's own
// ssh-keygen (real keys, real hashing), and mana rsh's one-line refusals.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkHostKey, knownKeyTypes } from '../src/ssh/known-hosts.js';
import { parseRshArgs, remoteExitStatus } from '../src/cli/cmd-rsh.js';
import { directCoordHost, forwardedEnv, remoteCommand } from '../src/launch/remote.js';
import { manaBin, run } from './lib/harness.js';

const haveKeygen = spawnSync('ssh-keygen', ['-?'], { encoding: 'utf8' }).error === undefined;

function newKey(dir: string, name: string): { line: string; blob: Buffer } {
  const f = join(dir, name);
  const r = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', f], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  const pub = readFileSync(`${f}.pub`, 'utf8').trim().split(/\s+/);
  return { line: `${pub[0]} ${pub[1]}`, blob: Buffer.from(pub[1] as string, 'base64') };
}

t.test('known_hosts: plain, [host]:port, wildcards, negation, hashed, revoked', { skip: haveKeygen ? false : 'no ssh-keygen' }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mana-kh-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const a = newKey(dir, 'a');
  const b = newKey(dir, 'b');
  const c = newKey(dir, 'c');
  const kh = join(dir, 'known_hosts');
  writeFileSync(kh, [`# comment`, `node1,10.0.0.11 ${a.line}`, `[node2]:2222 ${b.line}`, `*.cluster,!bad.cluster ${c.line}`, `@revoked * ${b.line}`, ''].join('\n'));
  t.equal(checkHostKey([kh], 'node1', 22, a.blob), 'known');
  t.equal(checkHostKey([kh], '10.0.0.11', 22, a.blob), 'known');
  t.equal(checkHostKey([kh], 'node1', 22, c.blob), 'changed', 'a listed host with another key');
  t.equal(checkHostKey([kh], 'node9', 22, a.blob), 'unknown');
  t.equal(checkHostKey([kh], 'node1', 2222, a.blob), 'unknown', 'another port is another entry');
  t.equal(checkHostKey([kh], 'n7.cluster', 22, c.blob), 'known', 'wildcard');
  t.equal(checkHostKey([kh], 'bad.cluster', 22, c.blob), 'unknown', 'negated pattern');
  t.equal(checkHostKey([kh], 'node2', 2222, b.blob), 'revoked');
  t.equal(checkHostKey([join(dir, 'missing'), kh], 'node1', 22, a.blob), 'known', 'unreadable files count as empty');

  // ssh-keygen -H hashes every name: the same answers must come out
  const hashed = join(dir, 'known_hosts_hashed');
  writeFileSync(hashed, `node1,10.0.0.11 ${a.line}\n`);
  const h = spawnSync('ssh-keygen', ['-H', '-f', hashed], { encoding: 'utf8' });
  t.equal(h.status, 0, h.stderr);
  t.match(readFileSync(hashed, 'utf8'), /^\|1\|/, 'the file is hashed');
  t.equal(checkHostKey([hashed], 'node1', 22, a.blob), 'known');
  t.equal(checkHostKey([hashed], '10.0.0.11', 22, a.blob), 'known');
  t.equal(checkHostKey([hashed], 'node1', 22, b.blob), 'changed');
  t.equal(checkHostKey([hashed], 'node3', 22, a.blob), 'unknown');

  // the host key types offered to the server: those known_hosts has for the host
  const rsa = join(dir, 'r');
  spawnSync('ssh-keygen', ['-q', '-t', 'rsa', '-b', '2048', '-N', '', '-f', rsa]);
  const rsaPub = readFileSync(`${rsa}.pub`, 'utf8').trim().split(/\s+/).slice(0, 2).join(' ');
  const mixed = join(dir, 'mixed');
  writeFileSync(mixed, `node1 ${a.line}\nnode1 ${rsaPub}\n[node2]:2222 ${b.line}\n`);
  t.same(knownKeyTypes([mixed], 'node1', 22), ['ssh-ed25519', 'rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa']);
  t.same(knownKeyTypes([mixed], 'node2', 2222), ['ssh-ed25519']);
  t.same(knownKeyTypes([mixed], 'node2', 22), [], 'none known: the client offers its defaults');
});

t.test('mana rsh parses ssh-style command lines', async (t) => {
  t.same(parseRshArgs(['-x', '10.1.2.3', '/usr/bin/hydra_pmi_proxy', '--control-port', 'h:1'], {}).words, ['/usr/bin/hydra_pmi_proxy', '--control-port', 'h:1']);
  const a = parseRshArgs(['-l', 'alice', '-p', '2222', '-o', 'BatchMode=yes', '-n', 'node1', 'orted', '-mca', 'x'], {});
  t.same([a.user, a.port, a.host, a.noStdin], ['alice', 2222, 'node1', true]);
  t.equal(parseRshArgs(['bob@node2', 'true'], {}).user, 'bob');
  t.throws(() => parseRshArgs(['node1'], {}), /say what to run on node1/);
  t.throws(() => parseRshArgs(['-Z', 'node1', 'true'], {}), /unknown option -Z/);
  const o = parseRshArgs(['-o', 'Port=2200', '-o', 'User=carol', '-i', '/k', 'n1', 'true'], {});
  t.same([o.port, o.user, o.keyFile], [2200, 'carol', '/k']);
  t.equal(remoteExitStatus(3), 3);
  t.equal(remoteExitStatus(null, 'SIGTERM'), 143, 'ssh2 names signals SIGTERM');
  t.equal(remoteExitStatus(null, 'KILL'), 137);
  t.equal(remoteExitStatus(null), 255, 'no status at all: as ssh');
});

t.test('the remote command: where nodes dial, what is forwarded, and quoting that survives a shell', async (t) => {
  t.equal(directCoordHost('127.0.0.1'), undefined, 'a loopback coordinator is reached through the ssh connection');
  t.equal(directCoordHost('0.0.0.0'), undefined);
  t.equal(directCoordHost('10.9.9.9'), '10.9.9.9', 'a coordinator at a real address is dialled there');
  const fwd = forwardedEnv({ MANA_MPI: 'mpich', MANA_AGENT_SOCK: '/s', MANA_NODE_SOCK: '/n', MANA_COORD_TOKEN: 'secret', MANA_RSH_TOKEN_FILE: '/t', LD_PRELOAD: '/l.so', HOME: '/root', OMPI_MCA_x: '1', PMIX_MCA_psec: '^munge' });
  t.same(fwd, { MANA_MPI: 'mpich', LD_PRELOAD: '/l.so', PMIX_MCA_psec: '^munge' }, 'mana settings, library paths and PMIx settings only; never a socket, token or token file');

  // run the command line through a real sh, with a stand-in for mana that prints its argv
  const dir = mkdtempSync(join(tmpdir(), "mana-q'$(touch pwned)-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // MANA_REMOTE_MANA is the user's own command prefix (a shell word list): a plain path
  const bin = mkdtempSync(join(tmpdir(), 'mana-fake-'));
  t.teardown(() => rmSync(bin, { recursive: true, force: true }));
  const fake = join(bin, 'fake-mana');
  writeFileSync(fake, '#!/bin/sh\nprintf "%s\\n" "TOKEN=$MANA_COORD_TOKEN" "V=$EVIL" "$@"\n', { mode: 0o755 });
  const words = ['/usr/bin/hydra_pmi_proxy', '--wdir', "'/a b'", '$(touch pwned2)'];
  const cmd = remoteCommand({ cwd: dir, env: { EVIL: "x'; touch pwned3; '$(id)" }, coord: { host: '10.0.0.1', port: 4000 }, jobId: 'j1', compress: '-1', words, manaCommand: fake });
  const r = spawnSync('sh', ['-c', cmd], { input: 'tok123\nrest\n', encoding: 'utf8', cwd: dir });
  t.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  t.equal(lines[0], 'TOKEN=tok123', 'the token comes from the first line of stdin');
  t.equal(lines[1], "V=x'; touch pwned3; '$(id)", 'values arrive verbatim');
  t.same(lines.slice(2), ['node-agent', '--coord-host', '10.0.0.1', '--coord-port', '4000', '--job-id', 'j1', '--compress', '-1', '--', '/bin/sh', '-c', words.join(' ')]);
  t.notOk(cmd.includes('tok123'), 'the token is not in the command line');
  const viaSsh = remoteCommand({ cwd: '/', env: {}, coord: { socket: '/tmp/mana-coord-x.sock' }, jobId: 'j1', compress: '0', words: ['true'], manaCommand: fake });
  const r2 = spawnSync('sh', ['-c', viaSsh], { input: 'tok\n', encoding: 'utf8' });
  t.match(r2.stdout, /^node-agent\n--coord-socket\n\/tmp\/mana-coord-x\.sock\n--job-id\n/m, 'or through a socket forwarded by ssh');
  for (const f of ['pwned', 'pwned2', 'pwned3']) t.notOk(existsSync(join(dir, f)) || existsSync(f), `nothing ran: ${f}`);
});

t.test('mana rsh outside a job, and to a host with no sshd, says so in one line', async (t) => {
  const env = { ...process.env };
  delete env.MANA_RSH_COORD_PORT;
  const r = await run(manaBin, ['rsh', 'node1', 'true'], { env });
  t.equal(r.code, 255);
  t.match(r.stderr, /^mana rsh: MANA_RSH_COORD_PORT is not set: mana rsh is the remote shell mana launch gives MPI launchers/);
  t.equal(r.stderr.trim().split('\n').length, 1);

  const dir = mkdtempSync(join(tmpdir(), 'mana-rsh-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const tok = join(dir, 'token');
  writeFileSync(tok, 'x'.repeat(48) + '\n', { mode: 0o600 });
  const key = join(dir, 'id');
  if (haveKeygen) spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
  // port 1 on loopback: nothing listens there
  const r2 = await run(manaBin, ['rsh', '-p', '1', '127.0.0.1', 'true'], { env: { ...env, MANA_RSH_COORD_PORT: '7779', MANA_RSH_TOKEN_FILE: tok, MANA_SSH_KEY: key } });
  t.equal(r2.code, 255, "ssh's status for a connection that never ran the command");
  t.match(r2.stderr, /^mana rsh: cannot reach 127\.0\.0\.1:1 over ssh: connection refused \(no sshd there\?\)\n$/);

  // a key with a passphrase and no ssh-agent: one line saying what to do
  const locked = join(dir, 'locked');
  spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'secret phrase', '-f', locked]);
  const e3: NodeJS.ProcessEnv = { ...env, MANA_RSH_COORD_PORT: '7779', MANA_RSH_TOKEN_FILE: tok, MANA_SSH_KEY: locked };
  delete e3.SSH_AUTH_SOCK;
  const r3 = await run(manaBin, ['rsh', '-p', '1', '127.0.0.1', 'true'], { env: e3 });
  t.equal(r3.code, 255);
  t.match(r3.stderr, /^mana rsh: cannot use the ssh key \S+locked: it has a passphrase; load it into ssh-agent \(SSH_AUTH_SOCK\), or set MANA_SSH_KEY to a key without one\n$/);
});
