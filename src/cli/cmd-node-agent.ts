// mana node-agent: the agent of an MPI job on a node other than the launcher's. mana rsh
// starts it there with the launcher's daemon as COMMAND: it attaches to the job's
// coordinator, runs COMMAND with its own socket as MANA_NODE_SOCK (which the ranks' libmana
// prefers to the launcher's MANA_AGENT_SOCK), adopts the ranks that say HELLO, and exits
// with COMMAND's status once their exits are reported.
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import { constants as osConstants, hostname } from "node:os";
import * as path from "node:path";
import { Agent } from "../agent/agent.js";
import { MANA_ENV_NODE_SOCK } from "../agent/wire.gen.js";
import { UsageError, UserError } from "../errors.js";
import { NODE_TOKEN_ENV, NOT_STARTED } from "../launch/remote.js";
import { libmanaPath, userRuntimeDir } from "../paths.js";
import { ensurePrivateDir, writeTokenFile } from "../rpc/token.js";
import { optString, parseArgs, parseIntOpt, type OptSpec } from "./args.js";
import { agentLogger } from "./cmd-launch.js";
import { HELP_OPT } from "./settings.js";

export const NODE_AGENT_HELP = `usage: mana node-agent (--coord-socket S | --coord-host H --coord-port P) [--job-id J] [--compress N]
                       -- COMMAND...

Started by mana rsh on another node of an MPI job (docs/multi-node.md); not meant to be run by
hand. Attaches to the job's coordinator through S (a unix socket that mana rsh's ssh
connection forwards to it; removed at exit) or at H:P, with the token read from $${NODE_TOKEN_ENV},
runs COMMAND (the MPI launcher's daemon), and lets the coordinator checkpoint the ranks it
starts on this node. Exits with COMMAND's exit status.`;

const SPECS: OptSpec[] = [HELP_OPT, { name: "coord-socket", value: true }, { name: "coord-host", value: true }, { name: "coord-port", value: true }, { name: "job-id", value: true }, { name: "compress", value: true }];

export async function cmdNodeAgent(argv: string[]): Promise<number> {
  const p = parseArgs("node-agent", argv, SPECS, true);
  if (p.opts.has("help")) {
    process.stdout.write(NODE_AGENT_HELP + "\n");
    return 0;
  }
  const socket = optString(p, "coord-socket");
  const host = optString(p, "coord-host");
  const portArg = optString(p, "coord-port");
  if (!socket && (!host || !portArg)) throw new UsageError("--coord-socket, or --coord-host and --coord-port, are required (see mana node-agent --help)");
  if (socket) process.on("exit", () => fs.rmSync(socket, { force: true }));
  const coord = socket ? { host: `unix:${socket}`, port: 0 } : { host: host as string, port: parseIntOpt("node-agent", "--coord-port", portArg as string, 1, 65535) };
  const compress = parseIntOpt("node-agent", "--compress", optString(p, "compress") ?? "-1", -1, 19);
  const command = p.positionals;
  if (command.length === 0) throw new UsageError("say what to run: mana node-agent ... -- COMMAND (see mana node-agent --help)");
  const token = process.env[NODE_TOKEN_ENV];
  delete process.env[NODE_TOKEN_ENV];
  if (!token) throw new UserError(`no job token in $${NODE_TOKEN_ENV} (mana rsh passes it on stdin)`, NOT_STARTED);

  // mana rsh's end of stdout/stderr may go first (the launcher killed it): never die of EPIPE
  for (const s of [process.stdout, process.stderr]) s.on("error", () => undefined);
  // the token as a 0600 file in this user's 0700 runtime dir, for the agent's gRPC client,
  // removed however this process ends short of SIGKILL
  const dir = userRuntimeDir();
  ensurePrivateDir(dir);
  const tokenFile = path.join(dir, `node-agent-${process.pid}-${randomBytes(4).toString("hex")}.token`);
  process.on("exit", () => fs.rmSync(tokenFile, { force: true }));
  writeTokenFile(tokenFile, token);

  // signals go to the daemon's whole process group (sh -c may not exec it); before the
  // daemon runs, they end this process
  let child: ChildProcess | undefined;
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.on(sig, () => {
      if (!child?.pid) process.exit(128 + (osConstants.signals[sig] ?? 0));
      try {
        process.kill(-child.pid, sig);
      } catch {
        // gone
      }
    });
  }
  const log = agentLogger(`node-agent on ${hostname()}`);
  const agent = new Agent({
    coord,
    tokenFile,
    libmana: libmanaPath(),
    compress,
    command: command.join(" "),
    jobId: optString(p, "job-id") || undefined,
    mpi: { env: {}, flavour: process.env.MANA_MPI ?? "", size: 0, launcherArgv: [], preload: false },
    node: true,
    log,
  });
  try {
    await agent.start();
  } catch (err) {
    await agent.shutdown();
    const why = err instanceof Error ? err.message : String(err);
    throw new UserError(`on ${hostname()}: ${why}`, NOT_STARTED);
  }
  const daemon = spawn(command[0] as string, command.slice(1), { stdio: "inherit", detached: true, env: { ...process.env, [MANA_ENV_NODE_SOCK]: agent.socketPath } });
  child = daemon;
  const status = await new Promise<number>((resolve) => {
    daemon.once("error", (err) => {
      log(`cannot run ${command[0]}: ${err.message}`);
      resolve(127);
    });
    daemon.once("exit", (code, signal) => resolve(signal ? 128 + (osConstants.signals[signal] ?? 0) : (code ?? 0)));
  });
  // the daemon reaped its ranks: let their connections' ends reach the coordinator
  await agent.idle(2000);
  await agent.shutdown();
  return status;
}
