// mana rsh: the remote shell mana gives MPI launchers (Hydra's launcher-exec, Open MPI's
// plm_rsh_agent). Called like ssh — [options] HOST COMMAND... — it logs in with ssh2 (host
// key checked against known_hosts) and runs COMMAND, the launcher's daemon, under
// `mana node-agent` on HOST, relaying stdin, stdout, stderr, signals and the exit status.
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { UsageError, UserError } from "../errors.js";
import { directCoordHost, forwardedEnv, loopbackDial, shQuote, NOT_STARTED, remoteCommand, type NodeCoordRoute, RSH_COMPRESS, RSH_COORD_HOST, RSH_COORD_PORT, RSH_JOB_ID, RSH_TOKEN_FILE } from "../launch/remote.js";
import { readClientToken } from "../rpc/token.js";
import type ssh2 from "ssh2";
import { defaultSshAuth, sshConnect } from "../ssh/connect.js";

export const RSH_HELP = `usage: mana rsh [-l USER] [-p PORT] [-n] [ssh options] HOST COMMAND...

The remote shell mana launch hands MPI launchers for ranks on other nodes (docs/multi-node.md):
logs in to HOST with ssh2 and runs COMMAND there under "mana node-agent", which attaches to
the job's coordinator and lets it checkpoint the ranks started on HOST. Not meant to be run
by hand: it reads the job from variables mana launch sets (${RSH_COORD_PORT}, ...).

ssh options: -l USER, -p PORT, -i KEY, -o Port=/User=/IdentityFile= are honoured, other -o
options and -x -X -T -t -q -v -a -A -k -4 -6 -C are accepted and ignored; -n: no stdin.
~/.ssh/config is not read.

environment: MANA_SSH_KEY        private key (default ~/.ssh/id_ed25519, id_ecdsa, id_rsa;
                                 SSH_AUTH_SOCK's agent too)
             MANA_SSH_KNOWN_HOSTS known_hosts files, colon-separated (default
                                 ~/.ssh/known_hosts:/etc/ssh/ssh_known_hosts); an unknown or
                                 changed host key is refused
             MANA_SSH_PORT       port when -p is not given (default 22)
             MANA_REMOTE_MANA    how to run mana on the nodes (default: this node's node
                                 and mana, at the same paths)`;

interface RshArgs {
  user: string;
  port: number;
  host: string;
  noStdin: boolean;
  words: string[];
  /** -i or -o IdentityFile: wins over MANA_SSH_KEY */
  keyFile?: string;
}

const FLAG_ONLY = new Set(["-x", "-X", "-T", "-t", "-q", "-v", "-a", "-A", "-k", "-4", "-6", "-C", "-n", "-f", "-N", "-Y", "-K"]);
const WITH_VALUE = new Set(["-l", "-p", "-o", "-i", "-F", "-E", "-c", "-m", "-b", "-e"]);

export function parseRshArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): RshArgs {
  let user = os.userInfo().username;
  let port = env.MANA_SSH_PORT ? Number(env.MANA_SSH_PORT) : 22;
  let noStdin = false;
  let keyFile: string | undefined;
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i] as string;
    if (!a.startsWith("-") || a === "-") break;
    if (a === "--") {
      i++;
      break;
    }
    const opt = a.slice(0, 2);
    if (WITH_VALUE.has(opt)) {
      const v = a.length > 2 ? a.slice(2) : argv[++i];
      if (v === undefined) throw new UsageError(`${opt} needs a value (see mana rsh --help)`);
      if (opt === "-l") user = v;
      if (opt === "-p") port = Number(v);
      if (opt === "-i") keyFile = v;
      if (opt === "-o") {
        const [k, val = ""] = v.split(/[=\s]+/, 2);
        if (/^port$/i.test(k ?? "")) port = Number(val);
        else if (/^user$/i.test(k ?? "")) user = val;
        else if (/^identityfile$/i.test(k ?? "")) keyFile = val;
      }
    } else if (FLAG_ONLY.has(a) || /^-[xXTtqvaAk46CnfNYK]+$/.test(a)) {
      if (a.includes("n")) noStdin = true;
    } else {
      throw new UsageError(`unknown option ${a} (see mana rsh --help)`);
    }
  }
  let host = argv[i];
  if (host === undefined) throw new UsageError("say which host: mana rsh HOST COMMAND... (see mana rsh --help)");
  const at = host.lastIndexOf("@");
  if (at >= 0) {
    user = host.slice(0, at);
    host = host.slice(at + 1);
  }
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new UsageError(`the ssh port must be 1..65535, not ${port}`);
  const words = argv.slice(i + 1);
  if (words.length === 0) throw new UsageError(`say what to run on ${host}: mana rsh HOST COMMAND... (an interactive login is not supported)`);
  return { user, port, host, noStdin, words, keyFile };
}

/**
 * Hydra's mpiexec waits forever for a proxy whose remote shell failed (it does so with ssh
 * too): when it is our parent, ask it to end the job, so that a refused login ends the launch
 * with our one-line reason instead of a hang. Open MPI's mpirun notices by itself.
 */
function stopHydra(): void {
  try {
    if (path.basename(fs.realpathSync(`/proc/${process.ppid}/exe`)) === "mpiexec.hydra") process.kill(process.ppid, "SIGTERM");
  } catch {
    // not ours to stop, or gone
  }
}

/**
 * A unix socket on the node that sshd forwards to us, each connection relayed to the
 * coordinator on this host's loopback: the coordinator never listens on the network, the
 * job's token crosses it only inside ssh, and no firewall needs opening. The socket is
 * created by sshd with mode 0600 under a name nobody can guess; the node agent removes it.
 */
async function tunnelToCoordinator(client: ssh2.Client, host: string, coord: { host: string; port: number }): Promise<string> {
  const socket = `/tmp/mana-coord-${randomBytes(12).toString("hex")}.sock`;
  await new Promise<void>((resolve, reject) => {
    client.openssh_forwardInStreamLocal(socket, (err) => {
      if (!err) resolve();
      else reject(new UserError(`sshd on ${host} does not forward a unix socket for mana (${err.message}): allow it (AllowStreamLocalForwarding yes, DisableForwarding no in sshd_config), or run the coordinator on an address the nodes reach (mana launch --coord-host ADDR)`));
    });
  });
  client.on("unix connection", (_info, accept) => {
    const ch = accept();
    const tcp = net.connect(coord.port, coord.host);
    tcp.setNoDelay(true); // gRPC's small frames
    ch.pipe(tcp).pipe(ch); // each side's end ends the other, after its data
    const kill = (): void => {
      tcp.destroy();
      ch.destroy();
    };
    tcp.on("error", kill);
    ch.on("error", kill);
  });
  return socket;
}

/** Removes the forwarded socket on the node (sshd leaves it when the node agent could not). */
function removeRemote(client: ssh2.Client, socket: string): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, 2000);
    client.exec(`rm -f ${shQuote(socket)}`, (err, stream) => {
      if (err) {
        clearTimeout(t);
        resolve();
        return;
      }
      stream.on("close", () => {
        clearTimeout(t);
        resolve();
      });
      stream.resume();
    });
  });
}

const SIGNALS: Record<string, string> = { SIGINT: "INT", SIGTERM: "TERM", SIGHUP: "HUP" };
const SIGNAL_GRACE_MS = 2000;

/** ssh's exit status for a remote command: its own, else 128 + the signal that ended it (ssh2 names it "SIGTERM"). */
export function remoteExitStatus(code: number | null, signal?: string): number {
  if (typeof code === "number") return code;
  if (!signal) return NOT_STARTED;
  const name = (signal.startsWith("SIG") ? signal : `SIG${signal}`) as NodeJS.Signals;
  return 128 + (os.constants.signals[name] ?? 0);
}

export async function cmdRsh(argv: string[]): Promise<number> {
  if (argv[0] === "--help" || argv[0] === "-h") {
    process.stdout.write(RSH_HELP + "\n");
    return 0;
  }
  try {
    return await rsh(argv);
  } catch (err) {
    // whatever went wrong, the launcher must not wait for ever (stopHydra)
    const msg = err instanceof UserError ? err.message : `internal error: ${err instanceof Error ? err.message : String(err)}`;
    process.stderr.write(`mana rsh: ${msg}\n`); // before Hydra goes, taking us along
    stopHydra();
    return err instanceof UsageError ? 2 : NOT_STARTED;
  }
}

async function rsh(argv: string[]): Promise<number> {
  const a = parseRshArgs(argv);
  const port = Number(process.env[RSH_COORD_PORT]);
  if (!Number.isInteger(port) || port <= 0) {
    throw new UserError(`${RSH_COORD_PORT} is not set: mana rsh is the remote shell mana launch gives MPI launchers, run it through mana launch`);
  }
  const token = readClientToken(port, process.env[RSH_TOKEN_FILE]);
  if (!token) throw new UserError(`no token for the coordinator on port ${port} (${process.env[RSH_TOKEN_FILE] ?? "no token file"}); is the job's coordinator still running?`);
  const auth = defaultSshAuth();
  if (a.keyFile) auth.keyFile = a.keyFile;
  const conn = await sshConnect({ host: a.host, port: a.port, user: a.user }, auth);
  const headView = process.env[RSH_COORD_HOST];
  const direct = directCoordHost(headView);
  const tunnel = direct ? undefined : await tunnelToCoordinator(conn.client, a.host, { host: loopbackDial(headView), port });
  const coord: NodeCoordRoute = direct ? { host: direct, port } : { socket: tunnel as string };
  const cmd = remoteCommand({
    cwd: process.cwd(),
    env: forwardedEnv(process.env),
    coord,
    jobId: process.env[RSH_JOB_ID] ?? "",
    compress: process.env[RSH_COMPRESS] ?? "-1",
    words: a.words,
    manaCommand: process.env.MANA_REMOTE_MANA,
  });
  return new Promise<number>((resolve) => {
    conn.client.exec(cmd, (err, stream) => {
      if (err) {
        process.stderr.write(`mana rsh: cannot run a command on ${a.host}: ${err.message}\n`);
        conn.client.end();
        stopHydra();
        resolve(NOT_STARTED);
        return;
      }
      let status = NOT_STARTED; // as ssh when the remote side ends without a status
      stream.on("exit", (code: number | null, signal?: string) => {
        status = remoteExitStatus(code, signal);
      });
      stream.on("data", (d: Buffer) => process.stdout.write(d));
      stream.stderr.on("data", (d: Buffer) => process.stderr.write(d));
      stream.write(`${token}\n`);
      if (a.noStdin) stream.end();
      else {
        process.stdin.on("data", (d: Buffer) => stream.write(d));
        process.stdin.on("end", () => stream.end());
        process.stdin.on("error", () => stream.end());
      }
      let done = false;
      const finish = (st: number): void => {
        if (done) return;
        done = true;
        conn.client.end();
        process.stdin.destroy();
        resolve(st);
      };
      const onSignal = (sig: NodeJS.Signals): void => {
        // OpenSSH >= 7.9 delivers it to the node agent, which passes it to the daemon; a
        // channel whose input is closed cannot carry it, and some sshds ignore it: as ssh
        // does, the connection ends anyway (after a grace for the clean way)
        try {
          stream.signal(SIGNALS[sig] as string);
        } catch {
          // the channel is gone already
        }
        setTimeout(() => finish(128 + (os.constants.signals[sig] ?? 0)), SIGNAL_GRACE_MS).unref();
      };
      for (const sig of Object.keys(SIGNALS) as NodeJS.Signals[]) process.on(sig, onSignal);
      stream.on("close", () => {
        if (status === NOT_STARTED) stopHydra();
        if (tunnel) void removeRemote(conn.client, tunnel).then(() => finish(status));
        else finish(status);
      });
    });
  });
}
