// manifest.json of a generation: what was checkpointed, so restart and inspect need nothing else.

export interface ManifestProc {
  procId: number;
  host: string;
  pid: number;
  image: string; // file name inside the generation dir
  fileSize: number;
  headerHash: string;
  rawBytes: number;
  storedBytes: number;
  command: string;
  /**
   * Incremental image: the generation whose image of this process it references (its path is
   * in the image header). Retention must keep every generation a kept image refers to,
   * transitively (docs/decisions.md). null or absent: a full image.
   */
  parentGeneration?: number | null;
  /** 0 for a full image, else 1 + the parent's chainDepth */
  chainDepth?: number;
  /** memory bytes held as references to the parent */
  refBytes?: number;
}

/**
 * An MPI job's generation: what `mana restart` needs to start a new launcher for it. Each rank
 * is one process of the manifest with procId = its rank (image rank-NNNNN.img), so procs hold
 * exactly procIds 0..size-1.
 */
export interface ManifestMpi {
  /** the lower half the ranks ran over at checkpoint (restart may choose the other one) */
  flavour: "mpich" | "openmpi";
  size: number;
  /** the launcher's command line as it was started (mpirun.mpich -n 4 ./app ...) */
  launcherArgv: string[];
  /** the host of each rank, by rank */
  rankHosts: string[];
}

export interface Manifest {
  manaVersion: string;
  jobId: string;
  generation: number;
  command: string;
  created: string; // ISO 8601
  createdUnixMs: number;
  flavour: "none" | "mpich" | "openmpi"; // MPI flavour; "none" for plain processes
  mpi?: ManifestMpi; // MPI jobs only
  numProcs: number;
  hosts: string[];
  procs: ManifestProc[];
  totalBytes: number;
  compress: number;
}

export const MANIFEST_NAME = "manifest.json";

export function imageName(procId: number): string {
  return `rank-${String(procId).padStart(5, "0")}.img`;
}

/** Parses and sanity-checks a manifest; throws Error(one line) naming the file. */
export function parseManifest(text: string, file: string): Manifest {
  let m: unknown;
  try {
    m = JSON.parse(text);
  } catch (err) {
    throw new Error(`${file} is not valid JSON (${err instanceof Error ? err.message : String(err)})`);
  }
  const o = m as Partial<Manifest>;
  if (typeof o !== "object" || o === null || !Array.isArray(o.procs) || typeof o.generation !== "number") {
    throw new Error(`${file} is not a mana manifest (missing generation or procs)`);
  }
  for (const p of o.procs) {
    if (typeof p?.procId !== "number" || typeof p?.image !== "string" || p.image.includes("/")) {
      throw new Error(`${file} has a malformed process entry`);
    }
  }
  if (o.mpi !== undefined) {
    const mpi = o.mpi as Partial<ManifestMpi> | null;
    if (
      typeof mpi !== "object" || mpi === null ||
      (mpi.flavour !== "mpich" && mpi.flavour !== "openmpi") ||
      typeof mpi.size !== "number" || !Number.isInteger(mpi.size) || mpi.size < 1 ||
      !Array.isArray(mpi.launcherArgv) || !Array.isArray(mpi.rankHosts)
    ) {
      throw new Error(`${file} has a malformed mpi entry (flavour, size, launcherArgv, rankHosts)`);
    }
  }
  return o as Manifest;
}

/**
 * Why an MPI generation cannot be restarted as a whole (one line), or undefined: its ranks
 * must be exactly procIds 0..size-1, one image each.
 */
export function mpiRankProblem(m: Manifest): string | undefined {
  const mpi = m.mpi;
  if (!mpi) return undefined;
  const ids = new Set(m.procs.map((p) => p.procId));
  const missing: number[] = [];
  for (let r = 0; r < mpi.size; r++) if (!ids.has(r)) missing.push(r);
  const extra = [...ids].filter((id) => id < 0 || id >= mpi.size).sort((a, b) => a - b);
  if (missing.length) {
    const list = missing.length > 4 ? `${missing.slice(0, 4).join(", ")}, ... (${missing.length} in all)` : missing.join(", ");
    return `the MPI job had ${mpi.size} ranks, but the generation has images of ${ids.size} (none of rank ${list})`;
  }
  if (extra.length || ids.size !== m.procs.length) {
    return `the MPI job had ${mpi.size} ranks, but the generation lists ${m.procs.length} images${extra.length ? ` (process ${extra[0]} is not a rank)` : " (a rank twice)"}`;
  }
  return undefined;
}
