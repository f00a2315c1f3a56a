// One ssh2 connection to a node, host key checked against known_hosts (never unchecked), and
// the local address the node was reached from: the address that node can reach us back at.
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import ssh2, { type ConnectConfig, type ServerHostKeyAlgorithm } from "ssh2";
import { UserError } from "../errors.js";
import { checkHostKey, knownHostsName, knownKeyTypes, type HostKeyVerdict } from "./known-hosts.js";

export interface SshTarget {
  host: string;
  port: number;
  user: string;
}

/** Where keys and known hosts come from: MANA_SSH_KEY / MANA_SSH_KNOWN_HOSTS, else OpenSSH's defaults. */
export interface SshAuth {
  keyFile?: string;
  agentSocket?: string;
  knownHosts: string[];
}

export function defaultSshAuth(env: NodeJS.ProcessEnv = process.env): SshAuth {
  const home = os.homedir();
  const keyFile =
    env.MANA_SSH_KEY || ["id_ed25519", "id_ecdsa", "id_rsa"].map((k) => path.join(home, ".ssh", k)).find((f) => fs.existsSync(f));
  const knownHosts = env.MANA_SSH_KNOWN_HOSTS ? env.MANA_SSH_KNOWN_HOSTS.split(":").filter(Boolean) : [path.join(home, ".ssh", "known_hosts"), "/etc/ssh/ssh_known_hosts"];
  return { keyFile, agentSocket: env.SSH_AUTH_SOCK || undefined, knownHosts };
}

export interface SshConnection {
  client: ssh2.Client;
  /** our address on the connection: where the node reaches this machine */
  localAddress: string;
}

function refusal(t: SshTarget, verdict: HostKeyVerdict, auth: SshAuth): string {
  const where = auth.knownHosts.join(", ");
  const name = knownHostsName(t.host, t.port);
  if (verdict === "changed") return `the host key of ${name} does not match ${where} (a reinstalled node, or someone in between); check it, then fix its line with ssh-keygen -R ${t.host}`;
  if (verdict === "revoked") return `the host key of ${name} is marked @revoked in ${where}`;
  return `the host key of ${name} is not in ${where}; add it (ssh-keyscan -p ${t.port} ${t.host} >> ~/.ssh/known_hosts, after checking it) or set MANA_SSH_KNOWN_HOSTS`;
}

/**
 * The private key to offer: MANA_SSH_KEY or the first default one. A key with a passphrase
 * is left to the ssh agent when there is one (as ssh would ask for the passphrase instead).
 */
function usableKey(auth: SshAuth): Buffer | undefined {
  if (!auth.keyFile) return undefined;
  let data: Buffer;
  try {
    data = fs.readFileSync(auth.keyFile);
  } catch (err) {
    throw new UserError(`cannot read the ssh key ${auth.keyFile}: ${(err as Error).message} (set MANA_SSH_KEY)`);
  }
  const parsed = ssh2.utils.parseKey(data);
  if (!(parsed instanceof Error)) return data;
  if (auth.agentSocket) return undefined;
  const why = /encrypted/i.test(parsed.message) ? "it has a passphrase; load it into ssh-agent (SSH_AUTH_SOCK)" : parsed.message;
  throw new UserError(`cannot use the ssh key ${auth.keyFile}: ${why}, or set MANA_SSH_KEY to a key without one`);
}

/** Connects and authenticates; every failure is one line naming the host and the fix. */
export function sshConnect(t: SshTarget, auth: SshAuth, timeoutMs = 20_000): Promise<SshConnection> {
  const key = usableKey(auth);
  if (!key && !auth.agentSocket) throw new UserError(`no ssh key to log in to ${t.host} with: none of ~/.ssh/id_ed25519, id_ecdsa, id_rsa exists and SSH_AUTH_SOCK is unset (set MANA_SSH_KEY)`);
  // offer only the host key types known_hosts has for the host, as OpenSSH does: a server
  // that also has another type must not look like a changed key
  const hostKeyTypes = knownKeyTypes(auth.knownHosts, t.host, t.port);
  return new Promise((resolve, reject) => {
    const client = new ssh2.Client();
    let verdict: HostKeyVerdict = "known";
    let settled = false;
    const fail = (msg: string): void => {
      if (settled) return;
      settled = true;
      client.end();
      sock.destroy();
      reject(new UserError(msg));
    };
    const sock = net.connect({ host: t.host, port: t.port });
    sock.setTimeout(timeoutMs, () => fail(`no answer from ${t.host}:${t.port} within ${timeoutMs / 1000} s (is the node up and sshd running?)`));
    sock.once("error", (err: NodeJS.ErrnoException) => {
      const why = err.code === "ECONNREFUSED" ? "connection refused (no sshd there?)" : err.code === "EHOSTUNREACH" || err.code === "ENETUNREACH" ? "unreachable" : err.code === "ENOTFOUND" ? "unknown host name" : err.message;
      fail(`cannot reach ${t.host}:${t.port} over ssh: ${why}`);
    });
    sock.once("connect", () => {
      sock.setTimeout(0);
      const cfg: ConnectConfig = {
        sock,
        username: t.user,
        readyTimeout: timeoutMs,
        // a node that dies must not leave mana rsh (and its launcher) waiting for ever
        keepaliveInterval: 15_000,
        keepaliveCountMax: 4,
        ...(hostKeyTypes.length ? { algorithms: { serverHostKey: hostKeyTypes as ServerHostKeyAlgorithm[] } } : {}),
        hostVerifier: (hostKey: Buffer): boolean => {
          verdict = checkHostKey(auth.knownHosts, t.host, t.port, hostKey);
          return verdict === "known";
        },
        ...(key ? { privateKey: key } : {}),
        ...(auth.agentSocket ? { agent: auth.agentSocket } : {}),
      };
      client.once("ready", () => {
        if (settled) return;
        settled = true;
        resolve({ client, localAddress: sock.localAddress ?? "" });
      });
      client.on("error", (err: Error & { level?: string }) => {
        if (verdict !== "known") fail(refusal(t, verdict, auth));
        else if (err.level === "client-authentication") fail(`${t.user}@${t.host} refused every key offered (${auth.keyFile ?? "ssh-agent"}); add the public key to the node's ~/.ssh/authorized_keys or set MANA_SSH_KEY`);
        else fail(`ssh to ${t.host}:${t.port} failed: ${err.message}`);
      });
      try {
        client.connect(cfg);
      } catch (err) {
        fail(`ssh to ${t.host}:${t.port} failed: ${(err as Error).message}`);
      }
    });
  });
}
