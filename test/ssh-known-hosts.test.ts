// Host-key checking of mana rsh against known_hosts files written and hashed by OpenSSH's own
// ssh-keygen (real keys, real hashing), and mana rsh's one-line refusals.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkHostKey } from '../src/ssh/known-hosts.js';
import { parseRshArgs } from '../src/cli/cmd-rsh.js';
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
});

t.test('mana rsh parses ssh-style command lines', async (t) => {
  t.same(parseRshArgs(['-x', '10.1.2.3', '/usr/bin/hydra_pmi_proxy', '--control-port', 'h:1'], {}).words, ['/usr/bin/hydra_pmi_proxy', '--control-port', 'h:1']);
  const a = parseRshArgs(['-l', 'alice', '-p', '2222', '-o', 'BatchMode=yes', '-n', 'node1', 'orted', '-mca', 'x'], {});
  t.same([a.user, a.port, a.host, a.noStdin], ['alice', 2222, 'node1', true]);
  t.equal(parseRshArgs(['bob@node2', 'true'], {}).user, 'bob');
  t.throws(() => parseRshArgs(['node1'], {}), /say what to run on node1/);
  t.throws(() => parseRshArgs(['-Z', 'node1', 'true'], {}), /unknown option -Z/);
});

t.test('mana rsh outside a job, and to a host with no sshd, says so in one line', async (t) => {
  const env = { ...process.env };
  delete env.MANA_RSH_COORD_PORT;
  const r = await run(manaBin, ['rsh', 'node1', 'true'], { env });
  t.equal(r.code, 1);
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
  t.equal(r2.code, 1);
  t.match(r2.stderr, /^mana rsh: cannot reach 127\.0\.0\.1:1 over ssh: connection refused \(no sshd there\?\)\n$/);
});
