// mana restart: validate a committed generation, join or start a coordinator (whose ckptdir is
// the generation's, so new generations stay next to it), start mana_restore per process, pass
// the coordinator's restart barrier, and exit with the restored program's status.
import * as fs from "node:fs";
import * as path from "node:path";
import { Agent, type AgentMpi } from "../agent/agent.js";
import { UsageError, UserError, errorMessage } from "../errors.js";
import { hostFacts, readImage, verifyImage } from "../native.js";
import { libmanaPath, restoreProgramPath } from "../paths.js";
import {
  checkShim, detectLauncher, LAUNCHER_KINDS, launcherKindOf, mpiRankEnv, mpiRestartArgv, parseFlavour, restartLauncherName, type LauncherKind, type MpiFlavour,
} from "../launch/mpi.js";
import { imageChain } from "../store/chain.js";
import { mpiRankProblem } from "../store/manifest.js";
import { resolveGeneration } from "../store/resolve.js";
import { optFlag, optString, parseArgs, type OptSpec } from "./args.js";
import { COORD_OPTS, coordAddress } from "./coord-address.js";
import { agentLogger, coordMode, quitQuietly, runToExit } from "./cmd-launch.js";
import { jobCoordinator } from "./job-coordinator.js";
import { CKPTDIR_OPT, ckptDir, HELP_OPT, INTERVAL_OPT, intervalSecs, PHASE_TIMEOUT_OPT, phaseTimeoutMs } from "./settings.js";

export const RESTART_HELP = `usage: mana restart [DIR] [--new-coordinator|--join] [--coord-host H] [--coord-port P]
                    [--port-file F] [-i SECS] [--ckptdir D] [--allow-missing-files]
                    [--drop-unrestorable-fds] [--mpi mpich|openmpi] [--launcher mpirun|srun]
                    [--hosts H1,H2|--hostfile F] [--launcher-args ARGS]

Restarts a job from a committed checkpoint generation. DIR is a gen-NNNNNN dir or a checkpoint
dir (then its latest generation); default <ckptdir>/latest. The restored program writes to
this terminal, and mana restart exits with its status. New checkpoints go to the generation's
checkpoint dir (or --ckptdir), so <ckptdir>/latest stays the newest.

options:
  --new-coordinator      always start a coordinator (fails if the port is in use)
  --join                 join a running coordinator (fails if none answers)
  --coord-host H         coordinator host (default $MANA_COORD_HOST, else 127.0.0.1)
  --coord-port P         coordinator port (default $MANA_COORD_PORT, else 7779; 0 = any free port)
  --port-file F          the started coordinator writes its port to F
  --token-file F         per-job token file (default: the one the local coordinator wrote for you)
  -i, --interval SECS    checkpoint every SECS seconds (default $MANA_CHECKPOINT_INTERVAL, else off)
  --ckptdir D            checkpoint directory for new generations (and where DIR defaults from)
  --allow-missing-files  continue when files open at checkpoint time are gone (/dev/null instead)
  --drop-unrestorable-fds  from now on, checkpoint even with pipes/sockets/devices open (they are
                         left closed at the next restart); a job launched with it keeps it
  --verify               read every image (and its parents) once more and check every chunk
                         before starting anything; without it mana_restore still checks every
                         chunk as it loads it, before its point of no return (exit 70, one line)
  --mpi mpich|openmpi    MPI generations: the MPI to restart the ranks over (default: the one
                         they ran over); the other one works too (cross-implementation restart)
  --launcher mpirun|srun MPI generations: the kind of launcher to start (default: the kind the
                         job was launched with); srun only inside a Slurm allocation (salloc,
                         sbatch), whose nodes and limits the restarted job then uses
  --hosts H1,H2          MPI generations: hosts for the new launcher (-hosts for MPICH,
                         --host for Open MPI, --nodelist for srun)
  --hostfile F           MPI generations: a hostfile for the new launcher (-f / --hostfile /
                         --nodefile)
  --launcher-args ARGS   MPI generations: more options for the new launcher, split at blanks
                         (e.g. "-iface ib0" for MPICH, "--mca btl_tcp_if_include 10.1.0.0/16"
                         for Open MPI); the first launch's own options are not replayed
  -h, --help             this help

An MPI generation (mana inspect shows "mpi:") is restarted with a new launcher:
  mpirun.<mpi> -n <ranks> [hosts] mana_restore [--allow-missing-files] <gen-dir>/rank-%r.img
  srun --mpi=pmi2|pmix -n <ranks> [hosts] mana_restore ...     (pmi2 for MPICH, pmix for Open MPI)
where each rank's mana_restore loads the image of its own rank; mana restart exits with the
launcher's status.`;

const SPECS: OptSpec[] = [
  HELP_OPT,
  ...COORD_OPTS,
  { name: "new-coordinator" },
  { name: "join", short: "j", aliases: ["join-coordinator"] },
  INTERVAL_OPT,
  CKPTDIR_OPT,
  { name: "allow-missing-files" },
  { name: "drop-unrestorable-fds" },
  { name: "verify" },
  { name: "no-verify" }, // the old default's opt-out, still accepted; verification is opt-in now
  PHASE_TIMEOUT_OPT,
  { name: "mpi", value: true },
  { name: "launcher", value: true },
  { name: "hosts", value: true, aliases: ["host"] },
  { name: "hostfile", value: true },
  { name: "launcher-args", value: true },
];

/** What an MPI restart runs, from its manifest and options (exported for tests). */
export interface MpiRestart {
  flavour: MpiFlavour;
  argv: string[];
  env: Record<string, string>;
  size: number;
}

/**
 * The launcher command of an MPI generation's restart; throws one line for a generation that
 * cannot restart as a whole or options that do not fit.
 */
export function planMpiRestart(o: {
  genDir: string;
  manifest: import("../store/manifest.js").Manifest;
  mpi?: string;
  launcher?: string;
  hosts?: string;
  hostfile?: string;
  launcherArgs?: string;
  restoreBin: string;
  allowMissingFiles: boolean;
  /** the environment that tells whether we run inside a Slurm allocation */
  env?: NodeJS.ProcessEnv;
}): MpiRestart {
  const m = o.manifest.mpi;
  if (!m) throw new UserError(`${o.genDir} is not an MPI generation`);
  const problem = mpiRankProblem(o.manifest);
  if (problem) throw new UserError(`${o.genDir}: ${problem}; restart an older generation`);
  if (o.hosts !== undefined && o.hostfile !== undefined) throw new UsageError("--hosts and --hostfile exclude each other");
  const hosts = o.hosts?.split(",").map((h) => h.trim()).filter((h) => h !== "");
  if (o.hosts !== undefined && !hosts?.length) throw new UsageError("--hosts needs at least one host name (H1,H2,...)");
  let hostfile: string | undefined;
  if (o.hostfile !== undefined) {
    hostfile = path.resolve(o.hostfile);
    if (!fs.existsSync(hostfile)) throw new UserError(`hostfile ${o.hostfile} does not exist`);
  }
  const flavour = o.mpi !== undefined ? parseFlavour(o.mpi) : m.flavour;
  const kind = o.launcher !== undefined ? parseLauncherKind(o.launcher) : launcherKindOf(m.launcherArgv);
  const launcher = detectLauncher(restartLauncherName(flavour, kind));
  if (kind === "srun" && !(o.env ?? process.env).SLURM_JOB_ID) {
    // The first srun made its own allocation from options mana does not replay (partition,
    // time limit, nodes); the restart runs as a step of an allocation the user made instead.
    throw new UserError(
      `${o.genDir} was ${o.launcher === undefined ? "launched with srun" : "asked to restart with srun"}: run mana restart inside a Slurm allocation (salloc -n ${m.size} mana restart ..., or from an sbatch script), or pass --launcher mpirun`,
    );
  }
  checkShim(flavour);
  const argv = mpiRestartArgv({
    kind,
    flavour,
    launcher: launcher?.path ?? restartLauncherName(flavour, kind),
    size: m.size,
    hosts,
    hostfile,
    extra: o.launcherArgs?.split(/\s+/).filter((a) => a !== "") ?? [],
    restoreBin: o.restoreBin,
    allowMissingFiles: o.allowMissingFiles,
    genDir: o.genDir,
  });
  return { flavour, argv, env: mpiRankEnv(launcher, flavour), size: m.size };
}

function parseLauncherKind(v: string): LauncherKind {
  const k = LAUNCHER_KINDS.find((x) => x === v.trim().toLowerCase());
  if (!k) throw new UsageError(`--launcher must be mpirun or srun, not ${JSON.stringify(v)} (see mana restart --help)`);
  return k;
}

export async function cmdRestart(argv: string[]): Promise<number> {
  const p = parseArgs("restart", argv, SPECS);
  if (optFlag(p, "help")) {
    process.stdout.write(RESTART_HELP + "\n");
    return 0;
  }
  if (p.positionals.length > 1) throw new UsageError(`give at most one DIR, not ${p.positionals.length} (see mana restart --help)`);
  const mode = coordMode("restart", p);
  // default: <ckptdir>/latest (resolveGeneration falls back to the newest gen-NNNNNN)
  const input = p.positionals[0] ?? ckptDir(p);
  const interval = intervalSecs("restart", p);
  const tokenFile = optString(p, "token-file");
  const phaseTimeout = p.opts.has("phase-timeout-ms") || process.env.MANA_PHASE_TIMEOUT_MS ? phaseTimeoutMs("restart", p) : undefined;

  // Validate everything before starting anything.
  const gen = resolveGeneration(input);
  const { manifest } = gen;
  if (manifest.procs.length === 0) throw new UserError(`${gen.dir}/manifest.json lists no processes`);
  if (!manifest.mpi) {
    for (const o of ["mpi", "launcher", "hosts", "hostfile", "launcher-args"]) {
      if (p.opts.has(o)) throw new UsageError(`--${o} applies to MPI generations only; ${gen.dir} holds plain processes`);
    }
  } else {
    const problem = mpiRankProblem(manifest);
    if (problem) throw new UserError(`${gen.dir}: ${problem}; restart an older generation`);
  }
  const allowMissing = optFlag(p, "allow-missing-files");
  // mana_restore verifies each chunk while it loads it, before its point of no return, so a
  // damaged image is refused (exit 70, one line) with one read instead of two (DESIGN §7 B3).
  const verify = optFlag(p, "verify");
  const host = hostFacts();
  const images = manifest.procs.map((mp) => {
    const file = path.join(gen.dir, mp.image);
    if (!fs.existsSync(file)) throw new UserError(`image ${file} of process ${mp.procId} is missing; the generation is damaged, restart an older one`);
    let d;
    try {
      d = readImage(file);
    } catch (err) {
      const msg = errorMessage(err).replace(/^mana: /, "");
      throw new UserError(msg.includes(mp.image) ? msg : `${file}: ${msg}`);
    }
    const chain = imageChain(d);
    if (chain.problem) throw new UserError(`image ${file}: ${chain.problem}`);
    if (host && d.info.vdsoSize !== host.vdsoSize) {
      // The restored process keeps calling into the vdso it had; a different one cannot work.
      throw new UserError(
        `${file} was checkpointed on kernel ${d.info.kernelRelease} (vdso ${d.info.vdsoSize} bytes), but this host runs ${host.kernelRelease} (vdso ${host.vdsoSize} bytes); restart it on a host with kernel ${d.info.kernelRelease}`,
      );
    }
    for (const fd of d.fds) {
      if (fd.kind !== "regular" || !fd.path || fs.existsSync(fd.path)) continue;
      if (!allowMissing) {
        throw new UserError(`file ${fd.path} (fd ${fd.fd} of process ${mp.procId}, open at checkpoint) is missing; put it back, or pass --allow-missing-files to continue without it`);
      }
      process.stderr.write(`mana restart: warning: file ${fd.path} (fd ${fd.fd} of process ${mp.procId}) is missing; continuing without it (--allow-missing-files)\n`);
    }
    if (verify) {
      // Opt-in: catches a damaged image before a coordinator is started, at the cost of reading
      // every image twice.
      const v = verifyImage(file);
      if (!v.ok) {
        const msg = (v.error ?? "verification failed").replace(/^mana: /, "");
        throw new UserError(msg.includes(mp.image) ? msg : `${file}: ${msg}`);
      }
    }
    if (mp.headerHash && d.headerHash !== mp.headerHash) {
      throw new UserError(`image ${file} does not match manifest.json (header hash ${d.headerHash}, manifest says ${mp.headerHash}); restart an older generation`);
    }
    return { procId: mp.procId, file, command: mp.command || d.info.cmdline };
  });
  const restoreBin = restoreProgramPath();
  if (!fs.existsSync(restoreBin)) throw new UserError(`the restore program ${restoreBin} is missing; build it with npm run build (or make -C native)`);
  const libmana = libmanaPath();
  const mpiPlan = manifest.mpi
    ? planMpiRestart({
        genDir: gen.dir,
        manifest,
        mpi: optString(p, "mpi"),
        launcher: optString(p, "launcher"),
        hosts: optString(p, "hosts"),
        hostfile: optString(p, "hostfile"),
        launcherArgs: optString(p, "launcher-args"),
        restoreBin,
        allowMissingFiles: allowMissing,
      })
    : undefined;
  if (mpiPlan && process.env.MANA_DEBUG) process.stderr.write(`mana restart: ${mpiPlan.argv.join(" ")}\n`);

  const address = coordAddress("restart", p, false);
  const job = await jobCoordinator({
    cmd: "restart",
    mode,
    address,
    portFile: optString(p, "port-file"),
    tokenFile,
    ckptDir: optString(p, "ckptdir") ? ckptDir(p) : gen.ckptDir,
    intervalSecs: interval,
    phaseTimeoutMs: phaseTimeout,
  });

  const agent = new Agent({
    coord: job.address,
    tokenFile,
    libmana,
    compress: manifest.compress ?? -1,
    command: manifest.command,
    jobId: manifest.jobId,
    restart: { generation: manifest.generation, procIds: images.map((i) => i.procId) },
    dropFds: optFlag(p, "drop-unrestorable-fds"),
    mpi: mpiPlan
      ? ({ env: mpiPlan.env, flavour: mpiPlan.flavour, size: mpiPlan.size, launcherArgv: mpiPlan.argv, preload: false } satisfies AgentMpi)
      : undefined,
    log: agentLogger("restart"),
  });
  if (mpiPlan) {
    // The new launcher starts mana_restore per rank; each restored rank says HELLO restarted=1
    // as procId = its rank, the barrier opens when all have, and the job's status is the
    // launcher's.
    let launcherProc;
    try {
      await agent.start();
      launcherProc = await agent.spawnProgram(mpiPlan.argv);
    } catch (err) {
      if (job.started) await quitQuietly(job.address, tokenFile);
      await agent.shutdown();
      throw err;
    }
    return runToExit("restart", agent, launcherProc.exitPromise, path.basename(mpiPlan.argv[0] as string));
  }
  const procs = [];
  try {
    await agent.start();
    for (const img of images) {
      procs.push(await agent.spawnRestore(img.procId, restoreBin, img.file, allowMissing, manifest.generation, img.command));
    }
  } catch (err) {
    // As in launch: a coordinator we started for this job must not outlive the failure (it
    // also kills the processes restored so far, which would wait at the barrier forever).
    if (job.started) await quitQuietly(job.address, tokenFile);
    else for (const pr of procs) pr.child?.kill("SIGKILL");
    await agent.shutdown();
    throw err;
  }
  // The job's status: the first non-zero exit among its processes, else 0.
  const all = Promise.all(procs.map((pr) => pr.exitPromise)).then((rs) => rs.find((r) => r.status !== 0) ?? rs[0] ?? { status: 0, signal: "" });
  const first = manifest.command.split(" ")[0] || "the restored program";
  return runToExit("restart", agent, all, first);
}
