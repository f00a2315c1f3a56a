// mana launch: run a program under mana. This process is the program's agent: it joins or
// starts the job's coordinator, starts the program with libmana preloaded, relays checkpoint
// requests, forwards SIGINT/SIGTERM/SIGHUP, and exits with the program's status.
import * as fs from "node:fs";
import { Agent, type AgentMpi } from "../agent/agent.js";
import { UsageError, UserError } from "../errors.js";
import { checkShim, detectLauncher, lowerHalf, mpiRankEnv, parseFlavour, rankCountFromArgv, srunPluginFromArgv } from "../launch/mpi.js";
import { libmanaPath } from "../paths.js";
import { CoordinatorClient, type CoordAddress } from "../rpc/client.js";
import { optFlag, optString, parseArgs, type OptSpec, type Parsed } from "./args.js";
import { COORD_OPTS, coordAddress } from "./coord-address.js";
import { jobCoordinator, type CoordMode } from "./job-coordinator.js";
import { CKPTDIR_OPT, ckptDir, compressLevel, HELP_OPT, INTERVAL_OPT, intervalSecs, PHASE_TIMEOUT_OPT, phaseTimeoutMs } from "./settings.js";

export const LAUNCH_HELP = `usage: mana launch [--new-coordinator|--join] [--coord-host H] [--coord-port P] [--port-file F]
                   [-i SECS] [--ckptdir D] [--no-compress|--compress] [--drop-unrestorable-fds]
                   [--mpi mpich|openmpi] [--] PROGRAM ARGS...

Runs PROGRAM under mana so that it can be checkpointed (mana command --bcheckpoint) and
restarted (mana restart). Joins the coordinator at the address if one answers there, else
starts one in the background (it exits with the job). Exits with PROGRAM's exit status
(128+N if it died of signal N).

options:
  --new-coordinator   always start a coordinator (fails if the port is in use)
  --join              join a running coordinator (fails if none answers)
  --coord-host H      coordinator host (default $MANA_COORD_HOST, else 127.0.0.1)
  --coord-port P      coordinator port (default $MANA_COORD_PORT, else 7779; 0 = any free port)
  --port-file F       the started coordinator writes its port to F
  --token-file F      per-job token file (default: the one the local coordinator wrote for you)
  -i, --interval SECS checkpoint every SECS seconds (default $MANA_CHECKPOINT_INTERVAL, else off)
  --ckptdir D         checkpoint directory (default $MANA_CHECKPOINT_DIR, else the current dir)
  --compress          zstd-compress images (level 1);  --no-compress: store raw
                      (default $MANA_COMPRESS: yes/no or a zstd level)
  --drop-unrestorable-fds
                      checkpoint even when the program holds pipes, sockets, devices,
                      eventfd/timerfd/signalfd/epoll fds: they are left closed at restart
                      (default: such a checkpoint fails, naming the fd)
  --mpi mpich|openmpi the MPI under mana's shim (the lower half) for an MPI job; by default the
                      launcher's own (see "MPI jobs" below)
  -h, --help          this help

MPI jobs: when PROGRAM is mpirun, mpiexec (or mpirun.mpich, mpiexec.hydra, mpirun.openmpi,
orterun, ...) or srun, mana tells MPICH's launcher from Open MPI's (symlinks, else --version)
(srun: its --mpi=pmi2 serves MPICH, --mpi=pmix Open MPI; without --mpi, MPICH) and starts it
with mana's MPI shim first on LD_LIBRARY_PATH, so ranks built with mana mpicc or
with Debian's mpicc.mpich load mana's libmpi, and MANA_MPI naming the lower half (for Open MPI
also OMPI_MCA_rmaps_base_oversubscribe=1, and OMPI_ALLOW_RUN_AS_ROOT(_CONFIRM)=1 as root).
libmana is preloaded with MANA_MPI_JOB=1: it stays inert in the launcher and its helpers, and
each rank joins the job as process <its rank>. The ranks are checkpointed as a set (images
rank-NNNNN.img by rank); a checkpoint asked for before every rank has started fails at once.
mana restart starts a new launcher for them, of either MPI (mana restart --mpi).
Ranks on other nodes (mpirun -hosts/--host/-f ...): the launcher starts its daemons there
through mana rsh, over ssh with your keys and known_hosts, and each node gets an agent that
reaches the coordinator through that ssh connection. See docs/multi-node.md.

environment: MANA_COORD_HOST MANA_COORD_PORT MANA_CHECKPOINT_DIR MANA_CHECKPOINT_INTERVAL
             MANA_COMPRESS MANA_TMPDIR`;

const SPECS: OptSpec[] = [
  HELP_OPT,
  ...COORD_OPTS,
  { name: "new-coordinator" },
  { name: "join", short: "j", aliases: ["join-coordinator"] },
  INTERVAL_OPT,
  CKPTDIR_OPT,
  { name: "compress" },
  { name: "drop-unrestorable-fds" },
  { name: "no-compress" },
  PHASE_TIMEOUT_OPT,
  { name: "mpi", value: true },
];

export function coordMode(cmd: string, p: Parsed): CoordMode {
  const n = optFlag(p, "new-coordinator");
  const j = optFlag(p, "join");
  if (n && j) throw new UsageError(`--new-coordinator and --join exclude each other (see mana ${cmd} --help)`);
  return n ? "new" : j ? "join" : "auto";
}

/** Prefixed one-line messages from the agent side of launch/restart. */
export function agentLogger(cmd: string): (msg: string) => void {
  return (msg) => process.stderr.write(`mana ${cmd}: ${msg}\n`);
}

export async function cmdLaunch(argv: string[]): Promise<number> {
  const p = parseArgs("launch", argv, SPECS, true);
  if (optFlag(p, "help")) {
    process.stdout.write(LAUNCH_HELP + "\n");
    return 0;
  }
  const program = p.positionals;
  if (program.length === 0) throw new UsageError("say which program to run: mana launch [OPTIONS] [--] PROGRAM ARGS... (see mana launch --help)");
  if (optFlag(p, "compress") && optFlag(p, "no-compress")) throw new UsageError("--compress and --no-compress exclude each other");
  const mode = coordMode("launch", p);
  const dir = ckptDir(p);
  const interval = intervalSecs("launch", p);
  const compress = compressLevel("launch", p);
  const tokenFile = optString(p, "token-file");
  const phaseTimeout = p.opts.has("phase-timeout-ms") || process.env.MANA_PHASE_TIMEOUT_MS ? phaseTimeoutMs("launch", p) : undefined;

  // An MPI job is classified before any coordinator starts, so bad input leaves nothing behind.
  const mpiOpt = optString(p, "mpi");
  const requested = mpiOpt === undefined ? undefined : parseFlavour(mpiOpt);
  const launcher = detectLauncher(program[0] as string);
  if (launcher?.kind === "srun") launcher.srunPlugin = srunPluginFromArgv(program);
  let mpi: AgentMpi | undefined;
  if (launcher || requested) {
    const flavour = lowerHalf(launcher, requested);
    checkShim(flavour);
    // without a launcher (--mpi with a program) the program is the one rank: a singleton
    mpi = {
      env: mpiRankEnv(launcher, flavour),
      flavour,
      size: launcher ? rankCountFromArgv(program) : 1,
      launcherArgv: [...program],
      preload: true,
      singleton: !launcher,
    };
    if (process.env.MANA_DEBUG) {
      const via = launcher ? `${launcher.name} (${launcher.realPath})` : "no launcher";
      process.stderr.write(`mana launch: MPI job via ${via}, lower half ${flavour}: ${Object.entries(mpi.env).map(([k, v]) => `${k}=${v}`).join(" ")}\n`);
    }
  }

  const libmana = libmanaPath();
  if (!fs.existsSync(libmana)) {
    throw new UserError(`the checkpointer ${libmana} is missing; build it with npm run build (or make -C native)`);
  }

  const address = coordAddress("launch", p, false);
  const job = await jobCoordinator({
    cmd: "launch",
    mode,
    address,
    portFile: optString(p, "port-file"),
    tokenFile,
    ckptDir: dir,
    intervalSecs: interval,
    phaseTimeoutMs: phaseTimeout,
  });

  const log = agentLogger("launch");
  const agent = new Agent({ coord: job.address, tokenFile, libmana, compress, command: program.join(" "), dropFds: optFlag(p, "drop-unrestorable-fds"), mpi, log });
  let proc;
  try {
    await agent.start();
    proc = await agent.spawnProgram(program);
  } catch (err) {
    await agent.shutdown();
    if (job.started) await quitQuietly(job.address, tokenFile);
    throw err;
  }
  return runToExit("launch", agent, proc.exitPromise, program[0] as string);
}

/** Forwards signals to the managed processes and exits as the program did. */
export async function runToExit(cmd: string, agent: Agent, exit: Promise<{ status: number; signal: string }>, what: string): Promise<number> {
  const forward = (sig: NodeJS.Signals) => () => agent.signalAll(sig);
  const handlers = (["SIGINT", "SIGTERM", "SIGHUP"] as const).map((sig) => {
    const h = forward(sig);
    process.on(sig, h);
    return [sig, h] as const;
  });
  const { status, signal } = await exit;
  for (const [sig, h] of handlers) process.off(sig, h);
  if (signal) process.stderr.write(`mana ${cmd}: ${what} was killed by ${signal} (exit status ${status})\n`);
  await agent.shutdown();
  return status;
}

/** Stops a coordinator this command started (it kills the job's processes too). */
export async function quitQuietly(addr: CoordAddress, tokenFile: string | undefined): Promise<void> {
  const c = new CoordinatorClient(addr, tokenFile);
  try {
    await c.quit(2000);
  } catch {
    // it exits by itself with the job anyway
  } finally {
    c.close();
  }
}
