// MPI launchers under `mana launch`: which MPI a launcher belongs to, and the environment its
// ranks need to run over mana's MPI shim (mpi-shim/). The shim is an MPICH-ABI libmpi that
// loads the real MPI (the "lower half") inside each rank; that lower half must be the MPI of
// the launcher, because only it speaks the launcher's process-management protocol (Hydra's
// PMI for MPICH, PMIx/ORTE for Open MPI).
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { UsageError, UserError } from "../errors.js";
import { mpiShimLibDir } from "../paths.js";
import { remoteShellEnv } from "./remote.js";

export type MpiFlavour = "mpich" | "openmpi";
export const MPI_FLAVOURS: readonly MpiFlavour[] = ["mpich", "openmpi"];

const FLAVOUR_NAME: Record<MpiFlavour, string> = { mpich: "MPICH", openmpi: "Open MPI" };
/** The Debian package that brings each MPI's launcher, for "not installed" messages. */
const FLAVOUR_PACKAGE: Record<MpiFlavour, string> = { mpich: "mpich", openmpi: "openmpi-bin" };

/** Launcher names whose flavour the name alone tells (Debian's alternatives and the real binaries). */
const NAMED = new Map<string, MpiFlavour>([
  ["mpirun.mpich", "mpich"],
  ["mpiexec.mpich", "mpich"],
  ["mpiexec.hydra", "mpich"],
  ["mpirun.hydra", "mpich"],
  ["mpirun.openmpi", "openmpi"],
  ["mpiexec.openmpi", "openmpi"],
  ["orterun", "openmpi"],
  ["prterun", "openmpi"],
]);
/**
 * Other launcher names (mpirun, mpiexec, and suffixed ones such as mpiexec.intel): the flavour
 * comes from where the name leads (symlinks, Debian's alternatives) or from --version.
 */
const GENERIC = /^(mpirun|mpiexec)(\.[\w.-]+)?$/;

/** "mpirun" covers mpirun/mpiexec of both MPIs; "srun" is Slurm's */
export type LauncherKind = "mpirun" | "srun";
export const LAUNCHER_KINDS: readonly LauncherKind[] = ["mpirun", "srun"];

export interface MpiLauncher {
  /** what the user typed, e.g. "mpirun" */
  name: string;
  kind: LauncherKind;
  /** the executable found on PATH (or as given), and where its symlinks lead */
  path: string;
  realPath: string;
  /** the launcher's own MPI; undefined for srun, which launches either */
  flavour?: MpiFlavour;
  /** srun only: its PMI plugin (--mpi=X, else $SLURM_MPI_TYPE), which tells the lower half */
  srunPlugin?: string;
}

/**
 * Slurm's PMI plugin that serves each lower half: mpi/pmi2 also answers the PMI-1 wire
 * protocol Debian's MPICH speaks; Open MPI's ranks bootstrap over PMIx only.
 */
const SRUN_PLUGIN: Record<MpiFlavour, string> = { mpich: "pmi2", openmpi: "pmix" };

/** The lower half an srun PMI plugin serves (pmix, pmix_v4 → Open MPI; pmi2 → MPICH). */
export function flavourOfSrunPlugin(plugin: string): MpiFlavour | undefined {
  if (/^pmix/i.test(plugin)) return "openmpi";
  if (/^pmi2?$/i.test(plugin)) return "mpich";
  return undefined;
}

/**
 * srun's --mpi=X (or --mpi X) ahead of the program, else $SLURM_MPI_TYPE (which srun reads
 * too); undefined when neither says, i.e. slurm.conf's MpiDefault applies.
 */
export function srunPluginFromArgv(argv: string[], env: NodeJS.ProcessEnv = process.env, pathVar = process.env.PATH ?? ""): string | undefined {
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i] as string;
    if (!a.startsWith("-")) {
      if (findExecutable(a, pathVar)) break;
      continue;
    }
    if (a === "--mpi") return argv[i + 1];
    if (a.startsWith("--mpi=")) return a.slice("--mpi=".length);
  }
  return env.SLURM_MPI_TYPE || undefined;
}

/** Whether argv0 names an MPI launcher (by its base name; the file need not exist). */
export function isMpiLauncherName(argv0: string): boolean {
  const base = path.basename(argv0);
  return NAMED.has(base) || GENERIC.test(base) || base === "srun";
}

/** An executable as execvp would find it; undefined when there is none. */
export function findExecutable(name: string, pathVar = process.env.PATH ?? ""): string | undefined {
  const ok = (f: string): boolean => {
    try {
      fs.accessSync(f, fs.constants.X_OK);
      return fs.statSync(f).isFile();
    } catch {
      return false;
    }
  };
  if (name.includes("/")) return ok(name) ? path.resolve(name) : undefined;
  for (const dir of pathVar.split(":")) {
    const f = path.join(dir || ".", name);
    if (ok(f)) return path.resolve(f);
  }
  return undefined;
}

export function parseFlavour(v: string, what = "--mpi"): MpiFlavour {
  const f = v.trim().toLowerCase().replace(/[\s_-]/g, "");
  if (f === "mpich" || f === "hydra") return "mpich";
  if (f === "openmpi" || f === "ompi") return "openmpi";
  throw new UsageError(`${what} must be mpich or openmpi, not ${JSON.stringify(v)} (see mana launch --help)`);
}

/** The flavour a launcher's --version output names (Hydra is MPICH's, OpenRTE/PRRTE Open MPI's). */
export function flavourFromVersion(text: string): MpiFlavour | undefined {
  if (/HYDRA/i.test(text)) return "mpich";
  if (/Open MPI|OpenRTE|\bPRRTE\b|\bprterun\b/i.test(text)) return "openmpi";
  return undefined;
}

function askVersion(file: string): MpiFlavour | undefined {
  const r = spawnSync(file, ["--version"], { encoding: "utf8", timeout: 10_000, stdio: ["ignore", "pipe", "pipe"] });
  return flavourFromVersion(`${r.stdout ?? ""}\n${r.stderr ?? ""}`);
}

/**
 * Finds and classifies the launcher argv0 names. Returns undefined when argv0 is not an MPI
 * launcher at all; throws a one-line UserError when it is one that cannot be run here.
 */
export function detectLauncher(argv0: string, pathVar = process.env.PATH ?? ""): MpiLauncher | undefined {
  if (!isMpiLauncherName(argv0)) return undefined;
  const name = path.basename(argv0);
  const file = findExecutable(argv0, pathVar);
  if (name === "srun") {
    if (!file && argv0.includes("/")) throw new UserError(`${argv0}: no such file (Slurm's srun is not there)`);
    if (!file) throw new UserError(`${argv0}: Slurm's srun is not installed here (not found on PATH); run the job with mpirun or mpiexec instead`);
    return { name, kind: "srun", path: file, realPath: fs.realpathSync(file) };
  }
  const named = NAMED.get(name);
  if (!file && argv0.includes("/")) throw new UserError(`${argv0}: no such MPI launcher (no executable file there)`);
  if (!file) {
    const which = named ? `${FLAVOUR_NAME[named]} does not seem to be installed here (Debian package ${FLAVOUR_PACKAGE[named]})` : "no MPI launcher of that name is installed here";
    throw new UserError(`${argv0}: not found on PATH; ${which}`);
  }
  const realPath = fs.realpathSync(file);
  // mpirun -> /etc/alternatives/mpirun -> /usr/bin/mpirun.openmpi -> orterun: the end says it
  const flavour = named ?? NAMED.get(path.basename(realPath)) ?? askVersion(file);
  if (!flavour) throw new UserError(`cannot tell which MPI ${argv0} (${realPath}) belongs to: its --version names neither Hydra (MPICH) nor Open MPI; say --mpi mpich or --mpi openmpi`);
  return { name, kind: "mpirun", path: file, realPath, flavour };
}

/**
 * The lower half to use: the launcher's MPI unless --mpi says otherwise, which is only
 * allowed where the launcher does not fix it (srun, or a program run without a launcher).
 */
export function lowerHalf(launcher: MpiLauncher | undefined, requested: MpiFlavour | undefined): MpiFlavour {
  if (launcher?.kind === "srun") {
    const plugin = launcher.srunPlugin;
    const served = plugin ? flavourOfSrunPlugin(plugin) : undefined;
    if (requested && served && requested !== served) {
      throw new UsageError(
        `--mpi ${requested} does not match srun --mpi=${plugin}, which serves ${FLAVOUR_NAME[served]}: ${FLAVOUR_NAME[requested]}'s ranks need srun --mpi=${SRUN_PLUGIN[requested]}`,
      );
    }
    // no plugin named: Slurm's PMI2 is what MPICH speaks out of the box
    return requested ?? served ?? "mpich";
  }
  const own = launcher?.flavour;
  if (own && requested && requested !== own) {
    throw new UsageError(
      `--mpi ${requested} does not match ${launcher.name}, which is ${FLAVOUR_NAME[own]}'s launcher: the lower half must speak its launcher's PMI (use ${requested === "mpich" ? "mpirun.mpich" : "mpirun.openmpi"}, or drop --mpi)`,
    );
  }
  return own ?? requested ?? "mpich";
}

/** The shim's files that a rank over `flavour` needs; throws one line when one is missing. */
export function checkShim(flavour: MpiFlavour): void {
  const lib = path.join(mpiShimLibDir(), "libmpi.so.12");
  if (!fs.existsSync(lib)) throw new UserError(`mana's MPI shim ${lib} is missing; build it with npm run build (or make -C mpi-shim)`);
  const proxy = path.join(mpiShimLibDir(), `lh_proxy-${flavour}`);
  if (!fs.existsSync(proxy)) {
    throw new UserError(`the ${FLAVOUR_NAME[flavour]} lower half ${proxy} is not built (was ${FLAVOUR_NAME[flavour]} installed when mpi-shim was built?); install it and run make -C mpi-shim`);
  }
}

/**
 * What the launcher (and through it every local rank) gets on top of the user's environment:
 * the shim ahead on LD_LIBRARY_PATH, so binaries linked against libmpich.so.12 or
 * libmpi.so.12 get mana's; MANA_MPI for the shim's choice of lower half; and for Open MPI the
 * settings its mpirun needs on a small machine run as root. Variables the user set win, except
 * LD_LIBRARY_PATH, which keeps the user's entries after the shim's.
 */
export function mpiRankEnv(launcher: MpiLauncher | undefined, flavour: MpiFlavour, base: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const shim = mpiShimLibDir();
  const prev = (base.LD_LIBRARY_PATH ?? "").split(":").filter((d) => d !== "" && path.resolve(d) !== shim);
  const env: Record<string, string> = {
    LD_LIBRARY_PATH: [shim, ...prev].join(":"),
    MANA_MPI: flavour,
  };
  const setDefault = (k: string, v: string): void => {
    if (base[k] === undefined || base[k] === "") env[k] = v;
  };
  if (flavour === "openmpi" && launcher?.kind !== "srun") {
    if (typeof process.getuid === "function" && process.getuid() === 0) {
      setDefault("OMPI_ALLOW_RUN_AS_ROOT", "1");
      setDefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1");
    }
    // more ranks than cores is the normal case on a laptop or a 2-core test VM
    setDefault("OMPI_MCA_rmaps_base_oversubscribe", "1");
  }
  if (launcher?.kind === "mpirun") Object.assign(env, remoteShellEnv(flavour, base));
  return env;
}

/**
 * The rank count a launcher's command line asks for (-n N, -np N, --np N, -c N, --ntasks=N,
 * -nN), 0 when it does not say. Only a hint for messages before the ranks start: each rank's
 * own MPI_COMM_WORLD size is what counts. The scan stops at the program (the first argument
 * that is an executable file), whose own options are not the launcher's.
 */
export function rankCountFromArgv(argv: string[], pathVar = process.env.PATH ?? ""): number {
  const num = (v: string | undefined): number => (v !== undefined && /^\d+$/.test(v) ? Number(v) : 0);
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i] as string;
    if (!a.startsWith("-")) {
      if (findExecutable(a, pathVar)) break;
      continue;
    }
    if (["-n", "-np", "--np", "--n", "-c", "--ntasks", "-ntasks"].includes(a)) {
      const n = num(argv[i + 1]);
      if (n) return n;
      continue;
    }
    const eq = /^(?:-n|-np|--np|--n|--ntasks|-c)=(\d+)$/.exec(a) ?? /^-n(\d+)$/.exec(a);
    if (eq) return Number(eq[1]);
  }
  return 0;
}

/** The launcher `mana restart` starts for a flavour (Debian's names; both are on PATH here). */
export function restartLauncherName(flavour: MpiFlavour, kind: LauncherKind = "mpirun"): string {
  if (kind === "srun") return "srun";
  return flavour === "mpich" ? "mpirun.mpich" : "mpirun.openmpi";
}

/** The kind of launcher a job was started with, from the argv its manifest recorded. */
export function launcherKindOf(launcherArgv: readonly string[] | undefined): LauncherKind {
  return path.basename(launcherArgv?.[0] ?? "") === "srun" ? "srun" : "mpirun";
}

export interface MpiRestartPlan {
  /** argv of the new launcher: mpirun.<flavour> -n N [hosts] mana_restore [...] <gen>/rank-%r.img */
  argv: string[];
  flavour: MpiFlavour;
}

/**
 * The command line that restarts an MPI generation: a new launcher of `flavour` starting
 * `size` copies of mana_restore, each of which picks its image by its rank (%r, see
 * native/restore). Hosts: Hydra takes -hosts a,b / -f FILE; Open MPI --host a,b / --hostfile F;
 * srun --nodelist a,b / --nodefile F, and --mpi=<the plugin of the lower half>.
 */
export function mpiRestartArgv(o: {
  kind?: LauncherKind;
  flavour: MpiFlavour;
  launcher: string;
  size: number;
  hosts?: string[];
  hostfile?: string;
  /** the user's own launcher options (mana restart --launcher-args) */
  extra?: string[];
  restoreBin: string;
  allowMissingFiles: boolean;
  genDir: string;
}): string[] {
  const srun = o.kind === "srun";
  const hostOpts: string[] = [];
  if (o.hosts?.length) hostOpts.push(srun ? "--nodelist" : o.flavour === "mpich" ? "-hosts" : "--host", o.hosts.join(","));
  if (o.hostfile) hostOpts.push(srun ? "--nodefile" : o.flavour === "mpich" ? "-f" : "--hostfile", o.hostfile);
  return [
    o.launcher,
    ...(srun ? [`--mpi=${SRUN_PLUGIN[o.flavour]}`] : []),
    "-n",
    String(o.size),
    ...hostOpts,
    ...(o.extra ?? []),
    o.restoreBin,
    ...(o.allowMissingFiles ? ["--allow-missing-files"] : []),
    path.join(o.genDir, "rank-%r.img"),
  ];
}

export function flavourName(f: MpiFlavour): string {
  return FLAVOUR_NAME[f];
}
