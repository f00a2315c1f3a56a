#!/usr/bin/env node
// Dev script: writes spec/unsupported.txt, the functions MPICH's libmpich.so.12 exports that
// mana's shim does not implement (neither in spec/mpi.api nor by hand in upper/*.c). gen.mjs
// turns each into a stub that says so. Rerun after adding functions:
//   node gen/list-unsupported.mjs [path/to/libmpich.so.12]
import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { readSpec } from "./spec.mjs";

const shim = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");
const lib = process.argv[2] ?? "/usr/lib/x86_64-linux-gnu/libmpich.so.12";
const nm = execFileSync("nm", ["-D", "--defined-only", lib], { encoding: "utf8", maxBuffer: 1 << 26 });
const exported = new Set();
for (const line of nm.split("\n")) {
  const [, type, name] = line.trim().split(/\s+/);
  if (!name || !/^[TW]$/.test(type)) continue; // functions only; data symbols are in mpi.h.in
  const m = /^P?(MPI_\w+)$/.exec(name);
  if (m) exported.add(m[1]);
}
const { byName } = readSpec(shim);
const hand = new Set();
for (const f of readdirSync(path.join(shim, "upper")).filter((f) => f.endsWith(".c")))
  for (const m of readFileSync(path.join(shim, "upper", f), "utf8").matchAll(/SHIM_PMPI\((MPI_\w+)\)/g)) hand.add(m[1]);
const names = [...exported].filter((n) => !byName.has(n) && !hand.has(n)).sort();
writeFileSync(path.join(shim, "spec", "unsupported.txt"),
  `# MPI functions of ${path.basename(lib)} that mana's shim does not provide: each is a stub printing\n` +
  `# "mana: MPI_Xxx is not supported" and exiting (docs/mpi.md says why). Written by gen/list-unsupported.mjs.\n` +
  names.join("\n") + "\n");
console.log(`spec/unsupported.txt: ${names.length} functions`);
