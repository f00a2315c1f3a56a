// mana mpicc | mpicxx | mpif90: compiler wrappers that build against mana's MPI shim (its
// MPICH-ABI mpi.h and libmpi.so.12) the way MPICH's own wrappers build against MPICH. A binary
// built this way runs under either MPI's mpirun through `mana launch`.
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { constants as osConstants } from "node:os";
import { UserError } from "../errors.js";
import { mpiShimIncludeDir, mpiShimLibDir, mpiShimModuleDirs } from "../paths.js";

export type WrapperLang = "c" | "c++" | "fortran";

const WRAPPERS: Record<string, { lang: WrapperLang; envVar: string; compiler: string }> = {
  mpicc: { lang: "c", envVar: "MANA_CC", compiler: "cc" },
  mpicxx: { lang: "c++", envVar: "MANA_CXX", compiler: "c++" },
  mpif90: { lang: "fortran", envVar: "MANA_FC", compiler: "gfortran" },
};

function help(name: string): string {
  const w = WRAPPERS[name] as (typeof WRAPPERS)[string];
  const fortran =
    w.lang === "fortran"
      ? `
Fortran: adds -lmpifort and the directory of mpi.mod when mana's Fortran bindings are built
(libmpifort.so.12 in ${mpiShimLibDir()}); without them, only C-interoperable
code links, and mpif90 says so on stderr.`
      : "";
  return `usage: mana ${name} [-show] [COMPILER ARGS...]

Compiles and links ${w.lang === "c" ? "C" : w.lang === "c++" ? "C++" : "Fortran"} MPI programs against mana's MPI shim (MPICH ABI): runs
$${w.envVar} (default ${w.compiler}) with
  -I${mpiShimIncludeDir()}
  -L${mpiShimLibDir()} -lmpi -Wl,-rpath,${mpiShimLibDir()}
added (no link flags when only compiling: -c, -E, -S, -M, -MM). Exits with the compiler's status.
Programs built with it, or with Debian's mpicc.mpich, run under mana launch mpirun ...${fortran}

options (the rest goes to the compiler unchanged):
  -show, --show    print the compiler command instead of running it
  -h, --help       this help`;
}

/** Whether the compiler only compiles/preprocesses (then link flags would only cause warnings). */
function compileOnly(args: string[]): boolean {
  return args.some((a) => a === "-c" || a === "-E" || a === "-S" || a === "-M" || a === "-MM" || a === "-fsyntax-only");
}

/** The compiler argv for `name` with the user's args, and warnings worth showing. */
export function wrapperCommand(name: string, args: string[], env: NodeJS.ProcessEnv = process.env): { argv: string[]; notes: string[] } {
  const w = WRAPPERS[name];
  if (!w) throw new UserError(`unknown compiler wrapper ${name}`);
  const lib = mpiShimLibDir();
  const compiler = (env[w.envVar] || w.compiler).split(/\s+/).filter((s) => s !== "");
  const notes: string[] = [];
  const pre = [`-I${mpiShimIncludeDir()}`];
  let libs = ["-lmpi"];
  if (w.lang === "fortran") {
    const fortLib = path.join(lib, "libmpifort.so.12");
    const modDir = mpiShimModuleDirs().find((d) => fs.existsSync(path.join(d, "mpi.mod")));
    if (modDir && modDir !== mpiShimIncludeDir()) pre.push(`-I${modDir}`);
    // one choice buffer passed as several types in a file is normal MPI Fortran; gfortran >= 10
    // rejects it unless told (Debian's mpif90.mpich says the same)
    if (path.basename(compiler[0] ?? "").includes("gfortran")) pre.push("-fallow-argument-mismatch");
    if (fs.existsSync(fortLib)) libs = ["-lmpifort", "-lmpi"];
    else if (!compileOnly(args)) notes.push(`mana's Fortran MPI bindings are not built (${fortLib} is missing), so Fortran MPI calls will not link; build them with make -C mpi-shim`);
    if (!modDir && !fs.existsSync(path.join(mpiShimIncludeDir(), "mpif.h"))) notes.push(`no mpi.mod or mpif.h in ${mpiShimIncludeDir()} yet: "use mpi" and "include 'mpif.h'" will not compile`);
  }
  const link = compileOnly(args) ? [] : [`-L${lib}`, ...libs, `-Wl,-rpath,${lib}`];
  // user args first (sources, -o), then the libraries, as MPICH's wrappers order them
  return { argv: [...compiler, ...pre, ...args, ...link], notes };
}

function shellQuote(a: string): string {
  return /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, "'\\''")}'`;
}

export function wrapperMain(name: string): (argv: string[]) => Promise<number> {
  return async (argv: string[]): Promise<number> => {
    if (argv.length === 0 || argv.some((a) => a === "--help" || a === "-h" || a === "-help")) {
      process.stdout.write(help(name) + "\n");
      return argv.length === 0 ? 2 : 0;
    }
    const show = argv.some((a) => a === "-show" || a === "--show");
    const args = argv.filter((a) => a !== "-show" && a !== "--show");
    const { argv: cmd, notes } = wrapperCommand(name, args);
    for (const n of notes) process.stderr.write(`mana ${name}: ${n}\n`);
    if (show) {
      process.stdout.write(cmd.map(shellQuote).join(" ") + "\n");
      return 0;
    }
    if (!fs.existsSync(path.join(mpiShimLibDir(), "libmpi.so.12")) && !compileOnly(args)) {
      throw new UserError(`mana's MPI shim ${path.join(mpiShimLibDir(), "libmpi.so.12")} is missing; build it with npm run build (or make -C mpi-shim)`);
    }
    const [file, ...rest] = cmd as [string, ...string[]];
    return new Promise((resolve, reject) => {
      const child = spawn(file, rest, { stdio: "inherit" });
      child.once("error", (err: NodeJS.ErrnoException) => {
        const w = WRAPPERS[name] as (typeof WRAPPERS)[string];
        const why = err.code === "ENOENT" ? `not found (install it, or set $${w.envVar})` : err.message;
        reject(new UserError(`cannot run the compiler ${file}: ${why}`));
      });
      child.once("exit", (code, signal) => resolve(signal ? 128 + (osConstants.signals[signal] ?? 0) : code ?? 1));
    });
  };
}
