// mana coordinator: run the job's coordinator in the foreground (interactive keys on a TTY)
// or, with --daemon, as a detached process that logs to <ckptdir>/mana_coordinator.log.
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { DEFAULT_COORD_HOST, DEFAULT_COORD_PORT } from "../config.js";
import { UserError, errorMessage } from "../errors.js";
import { Coordinator } from "../coordinator/coordinator.js";
import { startInteractive, stopInteractive } from "../coordinator/interactive.js";
import { makeLogger } from "../coordinator/log.js";
import { startServer } from "../coordinator/server.js";
import { MANA_BIN } from "../paths.js";
import { defaultTokenFile, newToken, writeTokenFile } from "../rpc/token.js";
import { writeFileAtomic } from "../fs-atomic.js";
import { compressFromEnv, CKPTDIR_OPT, ckptDir, HELP_OPT, intervalSecs, PHASE_TIMEOUT_OPT, phaseTimeoutMs, requireNoPositionals } from "./settings.js";
import { optFlag, optString, parseArgs, parseIntOpt, type OptSpec } from "./args.js";
import { DEFAULT_COMPRESS_LEVEL } from "../config.js";

export const COORDINATOR_HELP = `usage: mana coordinator [--port N|0] [--port-file F] [-i SECS] [--ckptdir D]
                        [--exit-on-last] [--kill-after-ckpt] [--daemon] [--bind ADDR]

Runs the coordinator of one job: it tells the job's processes when to checkpoint, and commits
each checkpoint generation under the checkpoint directory.

options:
  --port N            port to listen on (default $MANA_COORD_PORT, else ${DEFAULT_COORD_PORT}); 0 picks a free one
  --port-file F       write the port to F once listening (use with --port 0)
  -i, --interval SECS checkpoint every SECS seconds (default $MANA_CHECKPOINT_INTERVAL, else off)
  --ckptdir D         where generations go (default $MANA_CHECKPOINT_DIR, else the current dir)
  --exit-on-last      exit when the last process of the job is gone
  --kill-after-ckpt   kill the job once a checkpoint is committed
  --daemon            run in the background (log: <ckptdir>/mana_coordinator.log); returns once listening
  --bind ADDR         address to listen on (default ${DEFAULT_COORD_HOST})
  --full-every N      write a full image every N generations, incremental ones (only the
                      chunks that changed since the previous generation) in between
                      (default $MANA_FULL_EVERY, else 8; 1 = always full)
  --token-file F      also write the per-job token here (0600); every client must present it.
                      It is always written to $MANA_TMPDIR/mana-<uid>/coord-<port>.token, where
                      the same user's clients on this host find it
  -h, --help          this help

interactive keys (foreground, on a terminal): c checkpoint  s status  l list  k kill  q quit  h help
environment: MANA_COORD_PORT MANA_CHECKPOINT_DIR MANA_CHECKPOINT_INTERVAL MANA_COMPRESS MANA_TMPDIR
             MANA_FULL_EVERY`;

const SPECS: OptSpec[] = [
  HELP_OPT,
  { name: "port", short: "p", value: true, aliases: ["coord-port"] },
  { name: "port-file", value: true },
  { name: "token-file", value: true },
  { name: "bind", value: true },
  { name: "exit-on-last", aliases: ["exit-on-last-client"] },
  { name: "kill-after-ckpt", aliases: ["kill-after-checkpoint"] },
  { name: "daemon" },
  { name: "quiet", short: "q" },
  { name: "compress-level", value: true }, // hidden: default zstd level for agents without one
  { name: "full-every", value: true },
  CKPTDIR_OPT,
  { name: "interval", short: "i", value: true },
  PHASE_TIMEOUT_OPT,
];

const DAEMON_CHILD_ENV = "MANA_COORDINATOR_DAEMON_CHILD";

export async function cmdCoordinator(argv: string[]): Promise<number> {
  const p = parseArgs("coordinator", argv, SPECS);
  if (optFlag(p, "help")) {
    process.stdout.write(COORDINATOR_HELP + "\n");
    return 0;
  }
  requireNoPositionals("coordinator", p);
  const portArg = optString(p, "port") ?? process.env.MANA_COORD_PORT;
  const port = portArg !== undefined && portArg !== "" ? parseIntOpt("coordinator", "--port", portArg, 0, 65535) : DEFAULT_COORD_PORT;
  const bind = optString(p, "bind") || DEFAULT_COORD_HOST;
  const dir = ckptDir(p);
  const interval = intervalSecs("coordinator", p) ?? 0;
  const timeoutMs = phaseTimeoutMs("coordinator", p);
  const levelArg = optString(p, "compress-level");
  const compress = levelArg !== undefined ? parseIntOpt("coordinator", "--compress-level", levelArg, 0, 19) : compressFromEnv("coordinator") ?? DEFAULT_COMPRESS_LEVEL;
  const portFile = optString(p, "port-file");
  const fullEveryArg = optString(p, "full-every") ?? process.env.MANA_FULL_EVERY;
  const fullEvery = fullEveryArg !== undefined && fullEveryArg !== "" ? parseIntOpt("coordinator", "--full-every", fullEveryArg, 1, 1_000_000) : 8;

  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (err) {
    throw new UserError(`cannot create checkpoint directory ${dir}: ${errorMessage(err)} (pick another with --ckptdir)`);
  }

  if (optFlag(p, "daemon") && process.env[DAEMON_CHILD_ENV] !== "1") {
    return daemonize(argv, dir, optFlag(p, "quiet"));
  }

  const log = makeLogger("mana coordinator");
  let exitCode: number | null = null;
  let shutdown: (code: number) => void = (code) => {
    exitCode = code;
  };
  const coord = new Coordinator({
    ckptDir: dir,
    intervalSecs: interval,
    exitOnLast: optFlag(p, "exit-on-last"),
    killAfterCkpt: optFlag(p, "kill-after-ckpt"),
    phaseTimeoutMs: timeoutMs,
    compress,
    fullEvery,
    host: bind,
    port,
    log,
    onExit: (code) => shutdown(code),
  });

  // Every listener needs the token, loopback too: other users of this host reach 127.0.0.1.
  const token = newToken();
  let started;
  try {
    started = await startServer(coord, bind, port, token);
  } catch (err) {
    const msg = errorMessage(err);
    if (port !== 0 && /No address added|EADDRINUSE|address already in use/i.test(msg)) {
      throw new UserError(`port ${port} on ${bind} is in use (another coordinator?); pick another with --port, or --port 0`);
    }
    throw new UserError(`cannot listen on ${bind}:${port}: ${msg}`);
  }
  const actualPort = started.port;
  coord.setListenPort(actualPort);

  // The runtime dir copy is where local clients of this user look; --token-file is for others.
  const tokenFiles = [defaultTokenFile(actualPort)];
  const userTokenFile = optString(p, "token-file");
  if (userTokenFile && path.resolve(userTokenFile) !== path.resolve(tokenFiles[0] as string)) tokenFiles.push(userTokenFile);
  try {
    for (const f of tokenFiles) writeTokenFile(f, token);
    if (portFile) writeFileAtomic(portFile, `${actualPort}\n`, { fsync: true });
  } catch (err) {
    started.server.forceShutdown();
    for (const f of tokenFiles) removeIfContains(f, `${token}\n`);
    throw err instanceof UserError ? err : new UserError(errorMessage(err));
  }
  const tokenFile = tokenFiles[tokenFiles.length - 1];

  const cleanup = (): void => {
    if (portFile) removeIfContains(portFile, `${actualPort}\n`);
    for (const f of tokenFiles) removeIfContains(f, `${token}\n`);
  };
  shutdown = (code) => {
    stopInteractive();
    cleanup();
    const force = setTimeout(() => process.exit(code), 1000);
    force.unref();
    started.server.tryShutdown(() => process.exit(code));
  };
  if (exitCode !== null) shutdown(exitCode);

  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.on(sig, () => {
      // The job's processes keep running; their agents retry attaching to this address.
      log(`${sig}: exiting (the job's processes keep running)`);
      shutdown(0);
    });
  }

  log(`listening on ${bind}:${actualPort} (pid ${process.pid}, ckptdir ${dir}${interval ? `, interval ${interval} s` : ""}${tokenFile ? `, token in ${tokenFile}` : ""})`);
  if (process.send) {
    process.send({ port: actualPort });
    process.disconnect?.();
  }
  if (!optFlag(p, "daemon")) startInteractive(coord);
  // keep running until shutdown() exits the process
  return new Promise<number>(() => undefined);
}

/** Starts this same command detached; returns once the child listens (or says why it can't). */
async function daemonize(argv: string[], dir: string, quiet: boolean): Promise<number> {
  const logPath = path.join(dir, "mana_coordinator.log");
  let logFd: number;
  try {
    logFd = fs.openSync(logPath, "a", 0o600);
  } catch (err) {
    throw new UserError(`cannot open log ${logPath}: ${errorMessage(err)} (pick another --ckptdir)`);
  }
  const child = spawn(process.execPath, [MANA_BIN, "coordinator", ...argv], {
    detached: true,
    stdio: ["ignore", logFd, logFd, "ipc"],
    env: { ...process.env, [DAEMON_CHILD_ENV]: "1" },
  });
  fs.closeSync(logFd);
  const port = await new Promise<number>((resolve, reject) => {
    child.once("message", (m: unknown) => {
      const port = (m as { port?: number } | null)?.port;
      if (typeof port === "number") resolve(port);
      else reject(new UserError(`background coordinator sent an unexpected message; see ${logPath}`));
    });
    child.once("exit", (code) => {
      reject(new UserError(`background coordinator exited with status ${code ?? "?"} before listening: ${lastLogLine(logPath)}`));
    });
    child.once("error", (err) => reject(new UserError(`cannot start the background coordinator: ${err.message}`)));
  });
  child.removeAllListeners();
  if (child.connected) child.disconnect();
  child.unref();
  if (!quiet) process.stderr.write(`mana coordinator: running in the background on port ${port} (pid ${child.pid}); log: ${logPath}\n`);
  return 0;
}

function lastLogLine(logPath: string): string {
  try {
    const lines = fs.readFileSync(logPath, "utf8").trim().split("\n");
    return (lines[lines.length - 1] ?? "").replace(/^mana coordinator: /, "") || `see ${logPath}`;
  } catch {
    return `see ${logPath}`;
  }
}

function removeIfContains(file: string, text: string): void {
  try {
    if (fs.readFileSync(file, "utf8") === text) fs.unlinkSync(file);
  } catch {
    // already gone
  }
}
