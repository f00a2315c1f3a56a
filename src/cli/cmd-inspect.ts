// mana inspect: what an image (or a whole generation) holds, read with the same C code that
// restores it; --verify reads and hashes every chunk.
import * as fs from "node:fs";
import * as path from "node:path";
import { UsageError, UserError } from "../errors.js";
import { readImage, verifyImage, type ImageDescription, type VerifyResult } from "../native.js";
import { imageChain, type ChainLink } from "../store/chain.js";
import type { ManifestMpi } from "../store/manifest.js";
import { resolveGeneration } from "../store/resolve.js";
import { optFlag, parseArgs, type OptSpec } from "./args.js";
import { formatBytes, table } from "./format.js";
import { HELP_OPT } from "./settings.js";

export const INSPECT_HELP = `usage: mana inspect IMAGE|DIR [--verify] [--json]

Shows what a checkpoint image holds: header facts (process, host, kernel, glibc), memory
regions, threads and open files. For a DIR (a gen-NNNNNN dir, or a checkpoint dir: then its
latest generation) every image of the generation, checked against manifest.json.

options:
  --verify     read every chunk and check its hash, following an incremental image's
               references into its parents (exit status 1 if any fails)
  --json       machine-readable output
  -h, --help   this help`;

const SPECS: OptSpec[] = [HELP_OPT, { name: "verify" }, { name: "json" }];

interface ImageReport {
  image: ImageDescription;
  /** incremental image: its parents, nearest first (each checked against the hash its child recorded) */
  chain: ChainLink[];
  verify?: VerifyResult;
  problems: string[];
}

export async function cmdInspect(argv: string[]): Promise<number> {
  const p = parseArgs("inspect", argv, SPECS);
  if (optFlag(p, "help")) {
    process.stdout.write(INSPECT_HELP + "\n");
    return 0;
  }
  if (p.positionals.length !== 1) throw new UsageError("give one IMAGE or DIR (see mana inspect --help)");
  const target = p.positionals[0] as string;
  const verify = optFlag(p, "verify");
  const json = optFlag(p, "json");
  if (!fs.existsSync(target)) throw new UserError(`${target} does not exist`);

  let reports: ImageReport[];
  let genInfo: { dir: string; generation: number; jobId: string; command: string; created: string; mpi?: ManifestMpi } | undefined;
  if (fs.statSync(target).isDirectory()) {
    const gen = resolveGeneration(target);
    genInfo = { dir: gen.dir, generation: gen.manifest.generation, jobId: gen.manifest.jobId, command: gen.manifest.command, created: gen.manifest.created, ...(gen.manifest.mpi ? { mpi: gen.manifest.mpi } : {}) };
    reports = gen.manifest.procs.map((mp) => {
      const file = path.join(gen.dir, mp.image);
      if (!fs.existsSync(file)) throw new UserError(`image ${file} listed in manifest.json is missing`);
      const r = inspectOne(file, verify);
      if (mp.headerHash && r.image.headerHash !== mp.headerHash) r.problems.push(`header hash ${r.image.headerHash} does not match manifest.json (${mp.headerHash})`);
      if (mp.fileSize && r.image.fileSize !== mp.fileSize) r.problems.push(`file size ${r.image.fileSize} does not match manifest.json (${mp.fileSize})`);
      if (r.image.info.procId !== mp.procId) r.problems.push(`holds process ${r.image.info.procId}, manifest.json says ${mp.procId}`);
      return r;
    });
  } else {
    reports = [inspectOne(target, verify)];
  }

  const ok = reports.every((r) => r.problems.length === 0);
  if (json) {
    const out = genInfo ? { generation: genInfo, ok, images: reports } : { ok, ...reports[0] };
    process.stdout.write(JSON.stringify(out, null, 2) + "\n");
  } else {
    const parts: string[] = [];
    if (genInfo) {
      let head = `generation ${genInfo.generation}: ${genInfo.dir}\n  job ${genInfo.jobId}, created ${genInfo.created}, ${reports.length} image(s)\n  command: ${genInfo.command}`;
      const m = genInfo.mpi;
      if (m) {
        head += `\n  mpi: ${m.size} rank(s) over ${m.flavour === "mpich" ? "MPICH" : "Open MPI"}, launched by: ${m.launcherArgv.join(" ")}`;
        head += `\n  rank hosts: ${m.rankHosts.map((h, r) => `${r}=${h}`).join(" ")}`;
      }
      parts.push(head);
    }
    for (const r of reports) parts.push(formatImage(r));
    process.stdout.write(parts.join("\n\n") + "\n");
  }
  if (!ok) {
    const bad = reports.find((r) => r.problems.length > 0) as ImageReport;
    throw new UserError(`${bad.image.path}: ${bad.problems[0]}`);
  }
  return 0;
}

function inspectOne(file: string, verify: boolean): ImageReport {
  const image = readImage(file);
  const r: ImageReport = { image, chain: [], problems: [] };
  // A missing or replaced parent is a problem even without --verify: a restart needs them all.
  const c = imageChain(image);
  r.chain = c.chain;
  if (c.problem) r.problems.push(c.problem);
  if (verify) {
    r.verify = verifyImage(file);
    if (!r.verify.ok) r.problems.push(`verification failed: ${(r.verify.error ?? "unknown error").replace(/^mana: /, "")}`);
  }
  return r;
}

function formatImage(r: ImageReport): string {
  const d = r.image;
  const i = d.info;
  const lines: string[] = [];
  lines.push(`image ${d.path}`);
  const kv: [string, string][] = [
    ["format", `version ${d.version}, ${formatBytes(d.fileSize)} on disk, ${formatBytes(d.rawBytes)} of memory, ${formatBytes(d.storedBytes)} stored${d.compressed ? " (zstd)" : ""}`],
    ["header hash", d.headerHash],
    ["parent", d.parent ? `${d.parent} (generation ${d.parentGeneration}, header hash ${d.parentHeaderHash}); ${formatBytes(d.storedBytes)} stored here, ${formatBytes(d.refBytes)} referenced` : "none (full image)"],
    ...(r.chain.length ? [["chain", r.chain.map((c) => `gen ${c.generation} (${formatBytes(c.storedBytes)} stored${c.refBytes ? `, ${formatBytes(c.refBytes)} referenced` : ""})`).join(" <- ")] as [string, string]] : []),
    ["process", `procId ${i.procId}, pid ${i.pid}, generation ${i.generation}, created ${new Date(i.createdUnixMs).toISOString()}`],
    ["host", i.hostname],
    ["kernel", `${i.kernelRelease} ${i.kernelVersion}`],
    ["glibc", i.glibcVersion],
    ["vdso size", String(i.vdsoSize)],
    ["exe", i.exe],
    ["cwd", i.cwd],
    ["cmdline", i.cmdline],
    ["brk", `${i.brkStart} .. ${i.brkCur}`],
  ];
  for (const [k, v] of kv) lines.push(`  ${(k + ":").padEnd(13)}${v}`);
  lines.push("", `threads (${d.threads.length}):`);
  lines.push(indent(table([["TID", "ROLE", "FS_BASE"], ...d.threads.map((t) => [String(t.tid), t.main ? "main" : t.ckpt ? "checkpoint" : t.helper ? "writer" : "", t.fsBase])])));
  lines.push("", `regions (${d.regions.length}):`);
  lines.push(
    indent(
      table([
        ["START-END", "SIZE", "PROT", "KIND", "STORED", "CHUNKS", "PATH"],
        ...d.regions.map((g) => [
          `${g.start}-${g.end}`,
          formatBytes(g.size),
          g.prot,
          g.kind,
          formatBytes(g.storedBytes),
          `${g.chunks}${g.zeroChunks ? ` (${g.zeroChunks} zero)` : ""}${g.compressedChunks ? ` (${g.compressedChunks} zstd)` : ""}${g.parentChunks ? ` (${g.parentChunks} in parent)` : ""}`,
          g.path,
        ]),
      ]),
    ),
  );
  lines.push("", `fds (${d.fds.length}):`);
  if (d.fds.length) {
    lines.push(indent(table([["FD", "KIND", "FLAGS", "OFFSET", "SIZE", "PATH"], ...d.fds.map((f) => [String(f.fd), f.kind, `0x${f.flags.toString(16)}`, String(f.offset), String(f.size), f.path])])));
  }
  if (r.verify) {
    const via = r.chain.length ? `, through ${r.chain.length} parent image(s)` : "";
    lines.push("", r.verify.ok ? `verify: ok (${r.verify.chunks} chunks, ${formatBytes(r.verify.rawBytes)}${via})` : `verify: FAILED: ${(r.verify.error ?? "?").replace(/^mana: /, "")}`);
  }
  for (const pr of r.problems) if (!pr.startsWith("verification failed")) lines.push(`problem: ${pr}`);
  return lines.join("\n");
}

function indent(s: string): string {
  return s
    .split("\n")
    .map((l) => "  " + l)
    .join("\n");
}
