#!/usr/bin/env node
// Generates everything that follows from mpi-shim/spec/mpi.api and spec/abi.txt:
//   include/mpi.h            the MPICH-ABI header applications compile against
//   out/gen/lh_api.h         the table of entry points between the halves (neutral types only)
//   out/gen/upper.gen.c      the upper half's MPI_ functions (virtual handles, FS switch)
//   out/gen/proxy.gen.c      the lower half's proxies (neutral values to the real MPI's types)
//   out/gen/predef.gen.h     the predefined handles, in one order both halves share
// Usage: node gen.mjs SHIM_DIR
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import * as path from "node:path";

const shim = path.resolve(process.argv[2] ?? path.join(path.dirname(new URL(import.meta.url).pathname), ".."));
const outDir = path.join(shim, "out", "gen");
mkdirSync(outDir, { recursive: true });

// ---------------------------------------------------------------- the ABI constants
const abi = [];
for (const line of readFileSync(path.join(shim, "spec", "abi.txt"), "utf8").split("\n")) {
  const t = line.trim();
  if (!t || t.startsWith("#")) continue;
  const [cls, name, value] = t.split(/\s+/);
  abi.push({ cls, name, value: BigInt(value) });
}

/** Handle kinds: C type, the shim's kind enum, the constant class in abi.txt. */
const HANDLES = {
  MPI_Comm: "VK_COMM", MPI_Group: "VK_GROUP", MPI_Datatype: "VK_DATATYPE", MPI_Op: "VK_OP",
  MPI_Errhandler: "VK_ERRHANDLER", MPI_Info: "VK_INFO", MPI_Request: "VK_REQUEST",
  MPI_Message: "VK_MESSAGE", MPI_File: "VK_FILE", MPI_Win: "VK_WIN",
};
const CLASS_KIND = {
  comm: "VK_COMM", group: "VK_GROUP", datatype: "VK_DATATYPE", op: "VK_OP", errhandler: "VK_ERRHANDLER",
  info: "VK_INFO", request: "VK_REQUEST", message: "VK_MESSAGE", file: "VK_FILE", win: "VK_WIN", keyval: "VK_KEYVAL",
};
const INT64 = new Set(["MPI_Aint", "MPI_Count", "MPI_Offset"]);
const RANK_NAMES = new Set(["dest", "source", "root"]);

// ---------------------------------------------------------------- the function spec
function parseParam(text) {
  let t = text.trim();
  let ann = "";
  const colon = t.lastIndexOf(":");
  if (colon > 0 && !t.slice(colon).includes(" ")) {
    ann = t.slice(colon + 1);
    t = t.slice(0, colon).trim();
  }
  const m = /^(.*?)([A-Za-z_][A-Za-z0-9_]*)\s*(\[([^\]]*)\])?$/.exec(t);
  if (!m) throw new Error(`cannot parse parameter '${text}'`);
  const typeText = m[1].trim();
  const name = m[2];
  const isArray = m[3] !== undefined;
  const len = m[4] ?? "";
  const isConst = /\bconst\b/.test(typeText);
  const stars = (typeText.match(/\*/g) ?? []).length;
  const base = typeText.replace(/\bconst\b/g, "").replace(/\*/g, "").trim();
  const p = { text: `${typeText} ${name}${isArray ? "[]" : ""}`.replace(/\* /g, "*"), typeText, name, isArray, len, isConst, stars, base, ann, kind: "" };
  p.kind = classify(p);
  return p;
}

function classify(p) {
  const enumM = /^enum\((\w+)\)$/.exec(p.ann);
  if (HANDLES[p.base]) {
    if (p.isArray) return p.ann === "inout" ? "h_arr_inout" : p.isConst ? "h_arr_in" : "h_arr_out";
    if (p.stars === 0) return "h_in";
    if (p.stars === 1) return p.ann === "inout" ? "h_inout" : "h_out";
  }
  if (p.base === "MPI_Status") {
    if (p.isArray) return "st_arr";
    return p.isConst ? "st_in" : "st_out";
  }
  if (p.base === "void" && p.stars === 1 && !p.isArray) return "buf";
  if (/_function$|_fn$/.test(p.base)) return "fnptr";
  if (enumM) return p.stars === 0 && !p.isArray ? "enum_in" : "enum_out";
  if (p.base === "int" && p.stars === 0 && !p.isArray && (p.ann === "rank" || RANK_NAMES.has(p.name))) return "rank";
  if (INT64.has(p.base)) return p.stars === 0 && !p.isArray ? "i64" : "i64p";
  return "plain";
}

function parseSpec(text) {
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

const fns = parseSpec(readFileSync(path.join(shim, "spec", "mpi.api"), "utf8"));
const byName = new Map(fns.map((f) => [f.name, f]));
for (const f of fns) {
  if (f.flags.blocking && !byName.has(f.flags.blocking)) throw new Error(`${f.name}: blocking twin ${f.flags.blocking} is not in the spec`);
}
const tableFns = fns.filter((f) => !f.flags.local);

// ---------------------------------------------------------------- neutral (between-halves) types
function neutralType(p) {
  const c = p.isConst ? "const " : "";
  switch (p.kind) {
    case "h_in": return "uint64_t";
    case "h_out": case "h_inout": case "h_arr_out": case "h_arr_inout": return "uint64_t *";
    case "h_arr_in": return "const uint64_t *";
    case "st_out": case "st_arr": return "struct lh_status *";
    case "st_in": return "const struct lh_status *";
    case "buf": return `${c}void *`;
    case "rank": case "enum_in": return "int";
    case "enum_out": return "int *";
    case "i64": return "int64_t";
    case "i64p": return `${c}int64_t *`;
    case "fnptr": return "void *";
    default: {
      const base = p.base === "MPI_Fint" ? "int" : p.base;
      if (p.isArray) return `${c}${base} ${"*".repeat(p.stars)}*`;
      return `${c}${base}${p.stars ? " " + "*".repeat(p.stars) : ""}`;
    }
  }
}
const retNeutral = (f) => (f.ret === "MPI_Aint" ? "int64_t" : f.ret);
const proto = (f, name, typer) => `${retNeutral(f)} ${name}(${f.params.length ? f.params.map((p) => `${typer(p)} ${p.name}`).join(", ") : "void"})`;

// ---------------------------------------------------------------- lh_api.h
const GEN = "/* Generated by mpi-shim/gen/gen.mjs from spec/mpi.api and spec/abi.txt. Do not edit. */\n";
{
  const o = [GEN, "#ifndef MANA_LH_API_H", "#define MANA_LH_API_H", "#include <stdint.h>", "",
    "/* Bumped whenever the table's layout changes; both halves must agree. */",
    `#define LH_API_VERSION ${tableFns.length * 1000 + abi.length}`, "",
    "/* A status as both halves understand it: values in the MPICH ABI's terms, count in bytes. */",
    "struct lh_status { int source, tag, error, cancelled; int64_t count; };",
    "/* error field of a status the MPI library did not touch */",
    "#define LH_UNTOUCHED 0x7fffffff", "",
    "/* Callbacks from the lower half into the upper half (user functions of the application). */",
    "struct lh_upcalls {",
    "  void (*op)(int slot, void *in, void *inout, int *len, uint64_t datatype);",
    "};", "",
    "struct lh_api {",
    "  uint32_t version, size;",
    "  int (*lh_init)(const struct lh_upcalls *up);",
    "  /* the predefined handles' real values, in predef.gen.h's order */",
    "  void (*lh_predefined)(uint64_t *out, int n);",
    "  /* the real library's error string for an ABI error class */",
    "  void (*lh_flush)(void);",
    "  int (*lh_test_spin)(uint64_t *request, int *flag, struct lh_status *status, int spins);",
  ];
  for (const f of tableFns) o.push(`  ${proto(f, `(*${f.name})`, neutralType)};`);
  o.push("};", "", "#endif", "");
  writeFileSync(path.join(outDir, "lh_api.h"), o.join("\n"));
}

// ---------------------------------------------------------------- predef.gen.h
const predefs = abi.filter((c) => CLASS_KIND[c.cls]);
{
  const o = [GEN, "/* kind, ABI value, name: the predefined handles. */", `#define N_PREDEF ${predefs.length}`,
    "#ifdef PREDEF_UPPER",
    "static const struct vh_predef vh_predefs[N_PREDEF] = {"];
  for (const c of predefs) o.push(`  {${CLASS_KIND[c.cls]}, ${c.value}LL, "${c.name}"},`);
  o.push("};", "#endif", "");
  writeFileSync(path.join(outDir, "predef.gen.h"), o.join("\n"));
}

// ---------------------------------------------------------------- include/mpi.h
{
  const tmpl = readFileSync(path.join(shim, "gen", "mpi.h.in"), "utf8");
  const consts = [];
  for (const c of abi) {
    const v = c.value < 0n ? `(${c.value})` : `0x${c.value.toString(16)}`;
    if (c.cls.startsWith("ptr:")) consts.push(`#define ${c.name} ((${c.cls.slice(4).replace("*", " *")})${c.value < 0n ? `(${c.value})` : c.value})`);
    else if (c.cls === "file") consts.push(`#define ${c.name} ((MPI_File)${c.value})`);
    else if (CLASS_KIND[c.cls] && c.cls !== "keyval") {
      const t = Object.keys(HANDLES).find((k) => HANDLES[k] === CLASS_KIND[c.cls]);
      consts.push(`#define ${c.name} ((${t})${v})`);
    } else consts.push(`#define ${c.name} ${c.value < 0n ? `(${c.value})` : c.value.toString()}`);
  }
  const protos = [];
  for (const f of fns) {
    const ps = f.params.length ? f.params.map((p) => p.text).join(", ") : "void";
    protos.push(`${f.ret} ${f.name}(${ps}) MPI_SHIM_API;`);
    protos.push(`${f.ret} P${f.name}(${ps}) MPI_SHIM_API;`);
  }
  const out = tmpl.replace("@CONSTANTS@", consts.join("\n")).replace("@PROTOTYPES@", protos.join("\n"));
  writeFileSync(path.join(shim, "include", "mpi.h"), GEN.replace("*/", "(from gen/mpi.h.in) */") + out);
}

// ---------------------------------------------------------------- upper.gen.c
function upperBody(f) {
  const pre = [], post = [], args = [], cleanup = [];
  let statusParam = null;
  const call = f.flags.blocking ? byName.get(f.flags.blocking) : f;
  f.params.forEach((p, i) => {
    const a = `a${i}`;
    switch (p.kind) {
      case "h_in": pre.push(`uint64_t ${a} = vh_real(${HANDLES[p.base]}, (int64_t)${castInt(p)}${p.name});`); args.push(a); break;
      case "h_out": pre.push(`uint64_t ${a} = 0;`); post.push(`if (rc == MPI_SUCCESS) *${p.name} = (${p.base})${handleCast(p)}vh_make(${HANDLES[p.base]}, ${a});`); args.push(`&${a}`); break;
      case "h_inout": pre.push(`uint64_t ${a} = vh_real(${HANDLES[p.base]}, (int64_t)${castInt(p)}*${p.name});`);
        post.push(`{ int64_t v_ = (int64_t)${castInt(p)}*${p.name}; vh_update(${HANDLES[p.base]}, &v_, ${a}); *${p.name} = (${p.base})${handleCast(p)}v_; }`); args.push(`&${a}`); break;
      case "h_arr_in": case "h_arr_inout": case "h_arr_out": {
        const n = p.len || "0";
        pre.push(`uint64_t ${a}s[16]; int ${a}n = ${n}; uint64_t *${a} = ${a}n <= 16 ? ${a}s : (uint64_t *)shim_tmp((size_t)${a}n * 8);`);
        if (p.kind !== "h_arr_out") pre.push(`for (int k = 0; k < ${a}n; k++) ${a}[k] = vh_real(${HANDLES[p.base]}, (int64_t)${castInt(p)}${p.name}[k]);`);
        if (p.kind === "h_arr_inout") post.push(`for (int k = 0; k < ${a}n; k++) { int64_t v_ = (int64_t)${castInt(p)}${p.name}[k]; vh_update(${HANDLES[p.base]}, &v_, ${a}[k]); ${p.name}[k] = (${p.base})${handleCast(p)}v_; }`);
        if (p.kind === "h_arr_out") post.push(`if (rc == MPI_SUCCESS) for (int k = 0; k < ${a}n; k++) ${p.name}[k] = (${p.base})${handleCast(p)}vh_make(${HANDLES[p.base]}, ${a}[k]);`);
        cleanup.push(`if (${a} != ${a}s) free(${a});`);
        args.push(a);
        break;
      }
      case "st_out": pre.push(`struct lh_status ${a}s, *${a} = ${p.name} == MPI_STATUS_IGNORE ? NULL : &${a}s;`);
        post.push(`if (${a}) shim_status_out(${a}, ${p.name});`); args.push(a); statusParam = a; break;
      case "st_arr": {
        const n = p.len || "0";
        pre.push(`int ${a}n = ${n}; struct lh_status *${a} = ${p.name} == MPI_STATUSES_IGNORE ? NULL : (struct lh_status *)shim_tmp((size_t)(${a}n > 0 ? ${a}n : 1) * sizeof(struct lh_status));`);
        post.push(`if (${a}) for (int k = 0; k < ${a}n; k++) shim_status_out(&${a}[k], &${p.name}[k]);`);
        cleanup.push(`free(${a});`); args.push(a); break;
      }
      case "st_in": pre.push(`struct lh_status ${a}; shim_status_in(${p.name}, &${a});`); args.push(`&${a}`); break;
      case "i64p": args.push(`(${p.isConst ? "const " : ""}int64_t *)${p.name}`); break;
      case "fnptr": throw new Error(`${f.name}: function-pointer argument '${p.name}' needs a hand-written wrapper (flag: upper proxy)`);
      default: args.push(p.name);
    }
  });
  const lines = [...pre];
  if (f.flags.blocking) {
    // the nonblocking twin takes the same arguments, minus the status, plus a request
    const callArgs = args.filter((x) => x !== statusParam);
    lines.push("uint64_t req = 0;");
    lines.push(`int rc = LH_CALL(${call.name}, ${[...callArgs, "&req"].join(", ")});`);
    lines.push(`if (rc == MPI_SUCCESS) rc = shim_wait(&req, ${statusParam ?? "NULL"});`);
  } else {
    lines.push(`int rc = LH_CALL(${f.name}${args.length ? ", " + args.join(", ") : ""});`);
  }
  lines.push(...post, ...cleanup, `return shim_ret(rc, "${f.name}");`);
  return lines;
}
function castInt(p) { return p.base === "MPI_File" ? "(intptr_t)" : ""; }
function handleCast(p) { return p.base === "MPI_File" ? "(intptr_t)" : ""; }

{
  const o = [GEN, '#include "shim.h"', ""];
  for (const f of fns) {
    if (f.flags.upper) continue;
    const ps = f.params.length ? f.params.map((p) => p.text).join(", ") : "void";
    o.push(`${f.ret} ${f.name}(${ps}) {`, ...upperBody(f).map((l) => "  " + l), "}", `SHIM_PMPI(${f.name})`, "");
  }
  // the unsupported-call check needs the table slot names; the table is filled by the proxy
  writeFileSync(path.join(outDir, "upper.gen.c"), o.join("\n"));
}

// ---------------------------------------------------------------- proxy.gen.c
function proxyBody(f) {
  const pre = [], post = [], args = [], cleanup = [];
  f.params.forEach((p, i) => {
    const r = `r${i}`;
    const T = p.base;
    switch (p.kind) {
      case "h_in": args.push(`H(${T}, ${p.name})`); break;
      case "h_out": pre.push(`${T} ${r};`); args.push(`&${r}`); post.push(`*${p.name} = U(${r});`); break;
      case "h_inout": pre.push(`${T} ${r} = H(${T}, *${p.name});`); args.push(`&${r}`); post.push(`*${p.name} = U(${r});`); break;
      case "h_arr_in": case "h_arr_inout": case "h_arr_out": {
        const n = p.len || "0";
        pre.push(`int ${r}n = ${n}; ${T} *${r} = (${T} *)lh_tmp((size_t)(${r}n > 0 ? ${r}n : 1) * sizeof(${T}));`);
        if (p.kind !== "h_arr_out") pre.push(`for (int k = 0; k < ${r}n; k++) ${r}[k] = H(${T}, ${p.name}[k]);`);
        if (p.kind !== "h_arr_in") post.push(`for (int k = 0; k < ${r}n; k++) ${p.name}[k] = U(${r}[k]);`);
        cleanup.push(`free(${r});`); args.push(r); break;
      }
      case "st_out": pre.push(`MPI_Status ${r}; ${r}.MPI_ERROR = LH_UNTOUCHED;`); args.push(`${p.name} ? &${r} : MPI_STATUS_IGNORE`); post.push(`if (${p.name}) lh_status_out(&${r}, ${p.name});`); break;
      case "st_arr": {
        const n = p.len || "0";
        pre.push(`int ${r}n = ${n}; MPI_Status *${r} = ${p.name} ? (MPI_Status *)lh_tmp((size_t)(${r}n > 0 ? ${r}n : 1) * sizeof(MPI_Status)) : MPI_STATUSES_IGNORE;`);
        pre.push(`if (${p.name}) for (int k = 0; k < ${r}n; k++) ${r}[k].MPI_ERROR = LH_UNTOUCHED;`);
        post.push(`if (${p.name}) { for (int k = 0; k < ${r}n; k++) lh_status_out(&${r}[k], &${p.name}[k]); free(${r}); }`); args.push(r); break;
      }
      case "st_in": pre.push(`MPI_Status ${r}; lh_status_in(${p.name}, &${r});`); args.push(`&${r}`); break;
      case "buf": args.push(`LH_BUF(${p.name})`); break;
      case "rank": args.push(`lh_rank_in(${p.name})`); break;
      case "enum_in": args.push(`lh_enum_in(LH_FAM_${/^enum\((\w+)\)$/.exec(p.ann)[1]}, ${p.name})`); break;
      case "enum_out": { const fam = /^enum\((\w+)\)$/.exec(p.ann)[1]; pre.push(`int ${r} = 0;`); args.push(`&${r}`); post.push(`if (rc == MPI_SUCCESS) *${p.name} = lh_enum_out(LH_FAM_${fam}, ${r});`); break; }
      case "i64p": args.push(`(${p.isConst ? "const " : ""}${T} *)${p.name}`); break;
      case "fnptr": throw new Error(`${f.name}: function-pointer argument needs a hand-written proxy`);
      default: args.push(p.name);
    }
  });
  return [...pre, `int rc = ${f.name}(${args.join(", ")});`, ...post, ...cleanup, "return lh_err(rc);"];
}
{
  const o = [GEN, '#include "proxy.h"', ""];
  for (const f of tableFns) {
    if (f.flags.proxy) continue;
    if (f.ret !== "int") continue;
    o.push(`static ${proto(f, `p_${f.name}`, neutralType)} {`, ...proxyBody(f).map((l) => "  " + l), "}", "");
  }
  // Families of integers whose values differ between implementations.
  const fams = new Map();
  for (const c of abi) if (c.cls.startsWith("enum:")) {
    const fam = c.cls.slice(5);
    if (!fams.has(fam)) fams.set(fam, []);
    fams.get(fam).push(c);
  }
  o.push("const struct lh_enum_entry lh_enum_table[] = {");
  [...fams.keys()].forEach((fam) => {
    for (const c of fams.get(fam)) o.push(`  {LH_FAM_${fam}, ${c.value}, ${c.name}},`);
  });
  o.push("  {-1, 0, 0},", "};", "");
  o.push("void lh_fill_predefined(uint64_t *out, int n) {", `  if (n != ${predefs.length}) return;`);
  predefs.forEach((c, i) => {
    if (c.cls === "keyval") o.push(`  out[${i}] = U(${c.name});`);
    else o.push(`#ifdef ${c.name}\n  out[${i}] = U(${c.name});\n#else\n  out[${i}] = LH_ABSENT;\n#endif`);
  });
  o.push("}", "");
  o.push("void lh_fill_api(struct lh_api *api) {");
  for (const f of tableFns) {
    if (f.ret !== "int") { o.push(`  api->${f.name} = p_${f.name};`); continue; }
    o.push(`  api->${f.name} = p_${f.name};`);
  }
  o.push("}", "");
  writeFileSync(path.join(outDir, "proxy.gen.c"), o.join("\n"));
  // the families, numbered, for proxy.h
  const h = [GEN, "enum lh_family {", ...[...fams.keys()].map((f, i) => `  LH_FAM_${f} = ${i},`), "  LH_FAM_COUNT", "};", ""];
  writeFileSync(path.join(outDir, "families.gen.h"), h.join("\n") + "\n");
}
console.log(`mpi-shim: generated ${fns.length} functions, ${abi.length} constants into ${path.relative(process.cwd(), outDir) || outDir}`);
