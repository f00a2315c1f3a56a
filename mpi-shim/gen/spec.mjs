// Reading mpi-shim/spec/: the one description of the MPI functions (mpi.api) and of the ABI's
// constants (abi.txt). Shared by every generator (gen.mjs: C; others may follow).
import { readFileSync } from "node:fs";
import * as path from "node:path";

// ---------------------------------------------------------------- the ABI constants
export function readAbi(shim) {
  const abi = [];
  for (const line of readFileSync(path.join(shim, "spec", "abi.txt"), "utf8").split("\n")) {
    const t = line.trim();
    if (!t || t.startsWith("#")) continue;
    const [cls, name, value] = t.split(/\s+/);
    abi.push({ cls, name, value: BigInt(value) });
  }
  return abi;
}

/** Handle kinds: C type, the shim's kind enum, the constant class in abi.txt. */
export const HANDLES = {
  MPI_Comm: "VK_COMM", MPI_Group: "VK_GROUP", MPI_Datatype: "VK_DATATYPE", MPI_Op: "VK_OP",
  MPI_Errhandler: "VK_ERRHANDLER", MPI_Info: "VK_INFO", MPI_Request: "VK_REQUEST",
  MPI_Message: "VK_MESSAGE", MPI_File: "VK_FILE", MPI_Win: "VK_WIN",
};
export const CLASS_KIND = {
  comm: "VK_COMM", group: "VK_GROUP", datatype: "VK_DATATYPE", op: "VK_OP", errhandler: "VK_ERRHANDLER",
  info: "VK_INFO", request: "VK_REQUEST", message: "VK_MESSAGE", file: "VK_FILE", win: "VK_WIN", keyval: "VK_KEYVAL",
};
const INT64 = new Set(["MPI_Aint", "MPI_Count", "MPI_Offset"]);
const RANK_NAMES = new Set(["dest", "source", "root"]);

// ---------------------------------------------------------------- the function spec
function parseParam(text) {
  let t = text.trim();
  // annotations follow the declaration, each after a colon (C declarations have none)
  const parts = t.split(":");
  t = parts[0].trim();
  const anns = parts.slice(1).map((a) => a.trim()).filter(Boolean);
  const ann = anns.join(":");
  const m = /^(.*?)([A-Za-z_][A-Za-z0-9_]*)\s*(\[([^\]]*)\])?((?:\[[^\]]*\])*)$/.exec(t);
  if (!m) throw new Error(`cannot parse parameter '${text}'`);
  const typeText = m[1].trim();
  const name = m[2];
  const isArray = m[3] !== undefined;
  const len = m[4] ?? "";
  const dims = m[5] ?? ""; /* further dimensions, e.g. [3] of int ranges[][3] */
  const isConst = /\bconst\b/.test(typeText);
  const stars = (typeText.match(/\*/g) ?? []).length;
  const base = typeText.replace(/\bconst\b/g, "").replace(/\*/g, "").trim();
  const p = { text: `${typeText} ${name}${isArray ? "[]" : ""}${dims}`.replace(/\* /g, "*"), typeText, name, isArray, len, dims, isConst, stars, base, ann, anns, kind: "", hkind: "" };
  p.hkind = anns.includes("keyval") ? "VK_KEYVAL" : HANDLES[base] ?? "";
  p.kind = classify(p);
  return p;
}

function classify(p) {
  const enumA = p.anns.map((a) => /^enum\((\w+)\)$/.exec(a)).find(Boolean);
  p.family = enumA ? enumA[1] : "";
  const inout = p.anns.includes("inout");
  if (HANDLES[p.base] || p.anns.includes("keyval")) {
    if (p.isArray) return inout ? "h_arr_inout" : p.isConst ? "h_arr_in" : "h_arr_out";
    if (p.stars === 0) return "h_in";
    if (p.stars === 1) return inout ? "h_inout" : "h_out";
  }
  if (p.anns.includes("value")) return "plain";
  if (p.anns.includes("weights")) return "weights";
  if (p.isArray && p.family) return p.isConst ? "enum_arr_in" : "enum_arr_out";
  if (p.isArray && p.anns.includes("rank")) return p.isConst ? "rank_arr_in" : "rank_arr_out";
  if (p.base === "int" && p.stars === 1 && !p.isArray && p.anns.includes("rank")) return "rank_out";
  if (p.base === "MPI_Status") {
    if (p.isArray) return "st_arr";
    return p.isConst ? "st_in" : "st_out";
  }
  if (p.base === "void" && p.stars === 1 && !p.isArray) return "buf";
  if (/_function$|_fn$/.test(p.base)) return "fnptr";
  if (p.family) return p.stars === 0 && !p.isArray ? "enum_in" : "enum_out";
  if (p.base === "int" && p.stars === 0 && !p.isArray && (p.anns.includes("rank") || RANK_NAMES.has(p.name))) return "rank";
  if (INT64.has(p.base)) return p.stars === 0 && !p.isArray ? "i64" : "i64p";
  return "plain";
}

export function parseSpec(text) {
  const fns = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const m = /^(\w+)\s+(MPI_\w+)\((.*)\)\s*(.*)$/.exec(line);
    if (!m) throw new Error(`cannot parse spec line: ${line}`);
    const [, ret, name, paramText, flagText] = m;
    const params = paramText.trim() === "void" || paramText.trim() === "" ? [] : splitTop(paramText).map(parseParam);
    const flags = {};
    for (const f of flagText.split(/\s+/).filter(Boolean)) {
      const [k, v] = f.split("=");
      flags[k] = v ?? true;
    }
    fns.push({ ret, name, short: name.slice(4), params, flags });
  }
  return fns;
}

function splitTop(s) {
  const out = [];
  let depth = 0, cur = "";
  for (const ch of s) {
    if (ch === "(" || ch === "[") depth++;
    if (ch === ")" || ch === "]") depth--;
    if (ch === "," && depth === 0) { out.push(cur); cur = ""; } else cur += ch;
  }
  if (cur.trim()) out.push(cur);
  return out;
}


/** The functions of spec/mpi.api, checked. */
export function readSpec(shim) {
  const fns = parseSpec(readFileSync(path.join(shim, "spec", "mpi.api"), "utf8"));
  const byName = new Map(fns.map((f) => [f.name, f]));
  for (const f of fns) {
    if (f.ret !== "int" && !(f.flags.upper && f.flags.local)) throw new Error(`${f.name}: only int-returning functions cross the halves; make it 'upper local'`);
    if (f.flags.blocking && !byName.has(f.flags.blocking)) throw new Error(`${f.name}: blocking twin ${f.flags.blocking} is not in the spec`);
  }
  return { fns, byName };
}

/** spec/unsupported.txt: the MPI functions mana provides only as a stub that says so. */
export function readUnsupported(shim) {
  let text = "";
  try { text = readFileSync(path.join(shim, "spec", "unsupported.txt"), "utf8"); } catch { return []; }
  return text.split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#"));
}
