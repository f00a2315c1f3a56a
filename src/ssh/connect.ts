// One ssh2 connection to a node, host key checked against known_hosts (never unchecked), and
// the local address the node was reached from: the address that node can reach us back at.
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { Client, type ConnectConfig } from "ssh2";
import { UserError } from "../errors.js";
import { checkHostKey, knownHostsName, type HostKeyVerdict } from "./known-hosts.js";

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
  client: Client;
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

/** Connects and authenticates; every failure is one line naming the host and the fix. */
export function sshConnect(t: SshTarget, auth: SshAuth, timeoutMs = 20_000): Promise<SshConnection> {
  let key: Buffer | undefined;
  if (auth.keyFile) {
    try {
      key = fs.readFileSync(auth.keyFile);
    } catch (err) {
      throw new UserError(`cannot read the ssh key ${auth.keyFile}: ${(err as Error).message} (set MANA_SSH_KEY)`);
    }
  }
  if (!key && !auth.agentSocket) throw new UserError(`no ssh key to log in to ${t.host} with: none of ~/.ssh/id_ed25519, id_ecdsa, id_rsa exists and SSH_AUTH_SOCK is unset (set MANA_SSH_KEY)`);
  return new Promise((resolve, reject) => {
    const client = new Client();
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
      client.once("error", (err: Error & { level?: string }) => {
        if (verdict !== "known") fail(refusal(t, verdict, auth));
        else if (err.level === "client-authentication") fail(`${t.user}@${t.host} refused every key offered (${auth.keyFile ?? "ssh-agent"}); add the public key to the node's ~/.ssh/authorized_keys or set MANA_SSH_KEY`);
        else fail(`ssh to ${t.host}:${t.port} failed: ${err.message}`);
      });
      client.connect(cfg);
    });
  });
}
