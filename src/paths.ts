// Where the repository's own artifacts live. Everything is found relative to this file
// (dist/paths.js or src/paths.ts), so mana works from a checkout without installation.
import { existsSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
/** dist/ and src/ are both one level below the repository root. */
export const REPO_ROOT = path.resolve(here, "..");

export const PROTO_PATH = path.join(REPO_ROOT, "proto", "mana.proto");
export const ADDON_PATH = path.join(REPO_ROOT, "build", "Release", "mana_native.node");
export const MANA_BIN = path.join(REPO_ROOT, "bin", "mana");

/** MANA_LIBMANA overrides the preloaded library (tests, and users with a separate build). */
export function libmanaPath(): string {
  return process.env.MANA_LIBMANA || path.join(REPO_ROOT, "native", "out", "lib", "libmana.so");
}

/** MANA_RESTORE overrides the restore program, like MANA_LIBMANA. */
export function restoreProgramPath(): string {
  return process.env.MANA_RESTORE || path.join(REPO_ROOT, "native", "out", "bin", "mana_restore");
}

/** mana's MPI shim (mpi-shim/); MANA_MPI_SHIM points at another build of it, like MANA_LIBMANA. */
export function mpiShimDir(): string {
  return path.resolve(process.env.MANA_MPI_SHIM || path.join(REPO_ROOT, "mpi-shim"));
}

/** libmpi.so.12 (+ libmpich.so.12), lh_proxy-<mpi>, and libmpifort.so.12 once Fortran is built. */
export function mpiShimLibDir(): string {
  return path.join(mpiShimDir(), "out", "lib");
}

/** The shim's mpi.h (and mpif.h). */
export function mpiShimIncludeDir(): string {
  return path.join(mpiShimDir(), "include");
}

/** Where the Fortran module (mpi.mod) may be: the build output first, then the headers' dir. */
export function mpiShimModuleDirs(): string[] {
  const d = mpiShimDir();
  return [path.join(d, "out", "include"), path.join(d, "out", "mod"), path.join(d, "out", "fortran"), path.join(d, "out", "lib"), mpiShimIncludeDir()];
}

/** The per-user runtime directory (agent sockets, coordinator tokens): 0700. */
export function userRuntimeDir(): string {
  const base = process.env.MANA_TMPDIR || os.tmpdir();
  const uid = typeof process.getuid === "function" ? process.getuid() : 0;
  return path.join(base, `mana-${uid}`);
}

export function fileExists(p: string): boolean {
  return existsSync(p);
}
