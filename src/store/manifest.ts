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

export interface Manifest {
  manaVersion: string;
  jobId: string;
  generation: number;
  command: string;
  created: string; // ISO 8601
  createdUnixMs: number;
  flavour: "none"; // MPI flavour; "none" for plain processes
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
  return o as Manifest;
}
