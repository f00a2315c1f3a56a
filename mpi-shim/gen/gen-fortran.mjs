#!/usr/bin/env node
// Generates mana's Fortran bindings from the same description as the C ones (spec/mpi.api,
// spec/abi.txt), so the two can never disagree:
//   out/gen/fortran.gen.c   mpi_xxx_ (and the other manglings, pmpi_ too) for every function of
//                           the spec it can bind: arguments by reference, INTEGER ierror last,
//                           hidden CHARACTER lengths after it; calls the C MPI_Xxx
//   out/include/mpif.h      constants and the sentinel COMMON blocks, usable in fixed and free form
//   out/gen/mpi.f90         `module mpi`: the same constants plus explicit interfaces for the
//                           routines without a choice buffer (choice buffers stay implicit, as in
//                           MPICH's `use mpi` without TKR checks)
// The Fortran ABI is MPICH's (so binaries built with Debian's mpif90.mpich run on the result):
// a Fortran handle is the C handle, MPI_Status is INTEGER(5) laid out as the C struct, and
// MPI_BOTTOM, MPI_IN_PLACE, MPI_STATUS(ES)_IGNORE, ... are variables in COMMON blocks
// /MPIPRIV1/, /MPIPRIV2/, /MPIPRIVC/, /MPIFCMB5/, /MPIFCMB9/ whose addresses the wrappers
// recognise. Functions it cannot bind yet are listed, with the reason, at the end of the C file.
// Usage: node gen-fortran.mjs SHIM_DIR
import { writeFileSync, mkdirSync } from "node:fs";
import * as path from "node:path";
import { readAbi, readSpec, readUnsupported } from "./spec.mjs";

const shim = path.resolve(process.argv[2] ?? path.join(path.dirname(new URL(import.meta.url).pathname), ".."));
const genDir = path.join(shim, "out", "gen");
const incDir = path.join(shim, "out", "include");
mkdirSync(genDir, { recursive: true });
mkdirSync(incDir, { recursive: true });
const abi = readAbi(shim);
const { fns } = readSpec(shim);

// ---------------------------------------------------------------- Fortran facts of the MPICH ABI
// Predefined attribute keys are the C value + 1 in Fortran: the odd value tells MPICH the
// caller wants the attribute as a Fortran INTEGER rather than a pointer to one.
const KEYVAL_F_OFFSET = 1n;
// String-length limits exclude the C terminator in Fortran.
const MAXLEN_NAMES = new Set(["MPI_MAX_PROCESSOR_NAME", "MPI_MAX_LIBRARY_VERSION_STRING", "MPI_MAX_ERROR_STRING",
  "MPI_MAX_PORT_NAME", "MPI_MAX_OBJECT_NAME", "MPI_MAX_INFO_KEY", "MPI_MAX_INFO_VAL", "MPI_MAX_DATAREP_STRING"]);
// Arguments that are LOGICAL in Fortran and int in C.
const LOGICAL_NAMES = new Set(["flag", "commute", "reorder", "periods", "remain_dims", "weighted"]);
// void * arguments that are not choice buffers: no MPI_BOTTOM / MPI_IN_PLACE mapping.
const RAW_POINTERS = new Set(["baseptr", "location"]);
const AINT_KIND = { MPI_Aint: "MPI_ADDRESS_KIND", MPI_Count: "MPI_COUNT_KIND", MPI_Offset: "MPI_OFFSET_KIND" };
// Routines MPICH's Fortran library has beyond the C ones: the predefined attribute callbacks and
// helpers mpif.h names EXTERNAL.
const FORTRAN_ONLY = ["MPI_Null_copy_fn", "MPI_Null_delete_fn", "MPI_Dup_fn", "MPI_Comm_null_copy_fn",
  "MPI_Comm_null_delete_fn", "MPI_Comm_dup_fn", "MPI_Type_null_copy_fn", "MPI_Type_null_delete_fn",
  "MPI_Type_dup_fn", "MPI_Win_null_copy_fn", "MPI_Win_null_delete_fn", "MPI_Win_dup_fn",
  "MPI_Conversion_fn_null", "MPI_F_sync_reg", "MPI_Pcontrol"];
const predefKeyvals = abi.filter((c) => c.cls === "keyval" && c.name !== "MPI_KEYVAL_INVALID");

/** The Fortran value of an abi.txt constant, or null if it has no Fortran counterpart. */
function fortranValue(c) {
  if (c.cls.startsWith("ptr:") || c.name.startsWith("MPI_F_")) return null;
  if (c.cls === "keyval" && c.name !== "MPI_KEYVAL_INVALID") return c.value + KEYVAL_F_OFFSET;
  if (MAXLEN_NAMES.has(c.name)) return c.value - 1n;
  return c.value;
}
const fStatus = (n) => abi.find((c) => c.name === n)?.value ?? null;
// Fortran-only constants (status indices are 1-based).
const F_EXTRA = [
  ["integer", "MPI_STATUS_SIZE", fStatus("MPI_F_STATUS_SIZE") ?? 5n],
  ["integer", "MPI_SOURCE", (fStatus("MPI_F_SOURCE") ?? 2n) + 1n],
  ["integer", "MPI_TAG", (fStatus("MPI_F_TAG") ?? 3n) + 1n],
  ["integer", "MPI_ERROR", (fStatus("MPI_F_ERROR") ?? 4n) + 1n],
  ["integer", "MPI_ADDRESS_KIND", 8n], ["integer", "MPI_OFFSET_KIND", 8n], ["integer", "MPI_COUNT_KIND", 8n],
  ["integer", "MPI_INTEGER_KIND", 4n],
];
const F_LOGICAL = [["MPI_SUBARRAYS_SUPPORTED", ".FALSE."], ["MPI_ASYNC_PROTECTS_NONBLOCKING", ".FALSE."]];
// Constants whose Fortran type is wider than INTEGER.
const F_WIDE = { MPI_DISPLACEMENT_CURRENT: "MPI_OFFSET_KIND" };

// ---------------------------------------------------------------- what each argument becomes
const isString = (p) => p.base === "char" && p.stars + (p.isArray ? 1 : 0) === 1;
const isAttrFn = (f) => f.params.some((p) => p.name === "attribute_val");
const attrIsGet = (f) => /_get_attr$|^MPI_Attr_get$/.test(f.name);
// MPI-1's MPI_ATTR_GET/PUT take a default INTEGER value, the MPI-2 ones INTEGER(ADDRESS_KIND).
const attrWide = (f) => !/^MPI_Attr_/.test(f.name);

/** Why f cannot be bound (yet), or "". */
function unbindable(f) {
  if (!["int", "double", "MPI_Aint"].includes(f.ret)) return `returns ${f.ret} (C-only)`;
  for (const p of f.params) {
    if (p.base === "MPI_Fint") return "C-Fortran conversion function (C-only)";
    if (p.kind === "fnptr" && p.base !== "MPI_User_function") return `callback argument ${p.name} (${p.base}) needs Fortran callback trampolines`;
    if (p.base === "char" && p.stars + (p.isArray ? 1 : 0) > 1 && !(f.name.startsWith("MPI_Init") && p.name === "argv"))
      return `string array argument ${p.name}`;
    if (p.base === "void" && p.name === "extra_state") return "extra_state of a callback";
  }
  return "";
}

// For the C wrapper: the Fortran-side C parameter, the expression passed to MPI_Xxx, code before
// and after the call.
function cArg(f, p, st) {
  const n = p.name;
  const mutable = !p.isConst;
  if (f.name.startsWith("MPI_Init") && (n === "argc" || n === "argv")) return { arg: "NULL" };
  if (p.name === "attribute_val") {
    const t = attrWide(f) ? "MPI_Aint" : "MPI_Fint";
    if (attrIsGet(f)) {
      st.pre.push(`void *${n}_c = NULL;`);
      // A predefined attribute's value is a pointer to an int; a Fortran-set one is the value.
      st.post.push(`if (rc == MPI_SUCCESS && *flag) *${n} = (${t})(f_keyval_predefined(*${f.params[1].name}) ? *(int *)${n}_c : (MPI_Aint)${n}_c);`);
      return { decl: `${t} *${n}`, arg: `&${n}_c` };
    }
    return { decl: `${t} *${n}`, arg: `(void *)(MPI_Aint)*${n}` };
  }
  if (f.name === "MPI_Buffer_detach" && n === "buffer_addr") {
    // C hands back the buffer's address; Fortran has nowhere to put it.
    st.pre.push(`void *${n}_c = NULL;`);
    return { decl: `void *${n}`, arg: `&${n}_c`, unused: n };
  }
  if (p.kind === "fnptr") return { decl: `${p.base} *${n}`, arg: n };
  if (p.kind === "buf") {
    if (RAW_POINTERS.has(n)) return { decl: `${p.isConst ? "const " : ""}void *${n}`, arg: n };
    return { decl: `${p.isConst ? "const " : ""}void *${n}`, arg: `f_buf(${n})` };
  }
  if (isString(p)) {
    st.lens.push(`size_t ${n}_len`);
    if (p.isConst) {
      st.pre.push(`char *${n}_c = f_str_in(${n}, ${n}_len);`);
      st.post.push(`free(${n}_c);`);
    } else {
      const extra = f.params.filter((q) => q.base === "int" && q.stars === 0 && !q.isArray && /len$/.test(q.name));
      const size = [`${n}_len`, "8193", ...extra.map((q) => `(*${q.name} > 0 ? (size_t)*${q.name} : 0)`)].join(" + ");
      st.pre.push(`char *${n}_c = f_xalloc(${size});`);
      st.post.push(`if (rc == MPI_SUCCESS) f_str_out(${n}, ${n}_len, ${n}_c);`, `free(${n}_c);`);
    }
    return { decl: `${p.isConst ? "const " : ""}char *${n}`, arg: `${n}_c` };
  }
  if (p.base === "MPI_File") {
    if (p.kind === "h_in") return { decl: `MPI_Fint *${n}`, arg: `MPI_File_f2c(*${n})` };
    st.pre.push(`MPI_File ${n}_c = ${p.kind === "h_inout" ? `MPI_File_f2c(*${n})` : "NULL"};`);
    st.post.push(`*${n} = MPI_File_c2f(${n}_c);`);
    return { decl: `MPI_Fint *${n}`, arg: `&${n}_c` };
  }
  switch (p.kind) {
    case "h_in":
      if (p.anns.includes("keyval")) return { decl: `MPI_Fint *${n}`, arg: `f_keyval(*${n})` };
      return { decl: `MPI_Fint *${n}`, arg: `(${p.base})*${n}` };
    case "h_out": case "h_inout": case "h_arr_in": case "h_arr_out": case "h_arr_inout":
      return { decl: `${p.isConst ? "const " : ""}MPI_Fint *${n}`, arg: `(${p.isConst ? "const " : ""}${p.base} *)${n}` };
    case "st_in": return { decl: "const MPI_Fint *" + n, arg: `(const MPI_Status *)${n}` };
    case "st_out": return { decl: `MPI_Fint *${n}`, arg: `f_status(${n})` };
    case "st_arr": return { decl: `MPI_Fint *${n}`, arg: `f_statuses(${n})` };
    case "weights": return { decl: `${p.isConst ? "const " : ""}MPI_Fint *${n}`, arg: `(${p.isConst ? "const " : ""}int *)f_weights(${n})` };
    case "i64": return { decl: `${p.base} *${n}`, arg: `*${n}` };
    case "i64p": return { decl: `${p.isConst ? "const " : ""}${p.base} *${n}`, arg: n };
    default: break;
  }
  if (p.base === "int" || p.base === "MPI_Fint") {
    if (p.stars === 0 && !p.isArray) {
      if (LOGICAL_NAMES.has(n)) return { decl: `MPI_Fint *${n}`, arg: `*${n} != 0` };
      return { decl: `MPI_Fint *${n}`, arg: `*${n}` };
    }
    // Fortran LOGICAL(4) is 0/1 in gfortran, bit-identical to C's int flags: normalise outputs.
    if (LOGICAL_NAMES.has(n) && !p.isArray && mutable) st.post.push(`if (rc == MPI_SUCCESS) *${n} = *${n} ? 1 : 0;`);
    // Fortran counts request indices from 1.
    if (n === "indx" && !p.isArray && mutable) st.post.push(`if (rc == MPI_SUCCESS && *${n} >= 0) ++*${n};`);
    if (n === "array_of_indices" && mutable)
      st.post.push(`if ((rc == MPI_SUCCESS || rc == MPI_ERR_IN_STATUS) && *outcount > 0) for (int i = 0; i < *outcount; i++) ++${n}[i];`);
    // int x[][3]: Fortran's x(3,*) has the same layout
    if (p.dims) return { decl: `${p.isConst ? "const " : ""}MPI_Fint *${n}`, arg: `(${p.isConst ? "const " : ""}int (*)${p.dims})${n}` };
    return { decl: `${p.isConst ? "const " : ""}MPI_Fint *${n}`, arg: n };
  }
  throw new Error(`${f.name}: no Fortran mapping for ${p.text}`);
}

// ---------------------------------------------------------------- fortran.gen.c
const GEN_C = "/* Generated by mpi-shim/gen/gen-fortran.mjs from spec/mpi.api and spec/abi.txt. Do not edit. */\n";
const manglings = (lower) => [`${lower}_`, `${lower}__`, lower, lower.toUpperCase()];
// An alias's C identifier is a counter and its symbol an asm label: MPI_NULL_COPY_FN and the
// like are macros of mpi.h.
let aliases = 0;
const alias = (target, sym) => `F_ALIAS(${target}, f_alias_${++aliases}, "${sym}")`;
const skipped = [];
const bound = [];
{
  const o = [GEN_C, '#include "fortran.h"', ""];
  o.push("/* Fortran values of the predefined attribute keys (C value + 1). */");
  o.push("static const MPI_Fint f_predef_keyvals[] = {" + predefKeyvals.map((c) => `${c.value + KEYVAL_F_OFFSET}`).join(", ") + "};");
  o.push("static inline int f_keyval_predefined(MPI_Fint k) {",
    "  for (size_t i = 0; i < sizeof f_predef_keyvals / sizeof f_predef_keyvals[0]; i++)",
    "    if (f_predef_keyvals[i] == k) return 1;", "  return 0;", "}",
    "static inline int f_keyval(MPI_Fint k) { return f_keyval_predefined(k) ? k - 1 : k; }", "");
  for (const f of fns) {
    const why = unbindable(f);
    if (why) { skipped.push([f.name, why]); continue; }
    const st = { pre: [], post: [], lens: [] };
    const args = f.params.map((p) => ({ p, ...cArg(f, p, st) }));
    const lower = "pmpi_" + f.short.toLowerCase();
    const decls = args.filter((a) => a.decl).map((a) => a.decl);
    const isFn = f.ret !== "int";
    if (!isFn) decls.push("MPI_Fint *ierror");
    decls.push(...st.lens);
    const ret = f.ret === "double" ? "double" : f.ret === "MPI_Aint" ? "MPI_Aint" : "void";
    o.push(`${ret} ${lower}_(${decls.length ? decls.join(", ") : "void"}) F_API;`);
    o.push(`${ret} ${lower}_(${decls.length ? decls.join(", ") : "void"}) {`);
    for (const a of args) if (a.unused) o.push(`  (void)${a.unused};`);
    for (const l of st.pre) o.push("  " + l);
    const call = `${f.name}(${args.map((a) => a.arg).join(", ")})`;
    if (isFn) {
      o.push(`  return ${call};`);
    } else {
      o.push(`  int rc = ${call};`);
      for (const l of st.post) o.push("  " + l);
      o.push("  *ierror = rc;");
    }
    o.push("}");
    // pmpi_xxx_ is the definition; every other spelling, and mpi_xxx_ itself, is a weak alias
    // so a Fortran profiling library can still define mpi_xxx_.
    const names = [...manglings(lower).slice(1), ...manglings("mpi_" + f.short.toLowerCase())];
    for (const n of names) o.push(alias(`${lower}_`, n));
    o.push("");
    bound.push(f);
  }
  // Everything else a binary built against MPICH's Fortran library may name exists too, as a stub
  // that says at the call (not at load time: EXTERNAL callbacks are resolved then) what is
  // missing, like the C side's spec/unsupported.txt stubs.
  const stubs = [...skipped.filter(([, why]) => !why.includes("C-only")).map(([n]) => n),
    ...readUnsupported(shim).filter((n) => !/_c$|^MPI_T_|^MPIX_|_c2f|_f2c|f08/.test(n)),
    ...FORTRAN_ONLY].filter((n, i, all) => all.indexOf(n) === i && !bound.some((f) => f.name === n));
  o.push("/* Not bound (no Fortran wrapper generated); the first ones get a stub below:");
  for (const [n, why] of skipped) o.push(` *   ${n}: ${why}`);
  o.push(" */");
  for (const n of stubs) {
    const lower = "pmpi_" + n.slice(4).toLowerCase();
    o.push(`void ${lower}_(void) F_API;`, `void ${lower}_(void) { f_unsupported("${n.toUpperCase()}"); }`);
    for (const a of [...manglings(lower).slice(1), ...manglings("mpi_" + n.slice(4).toLowerCase())]) o.push(alias(`${lower}_`, a));
  }
  o.push("");
  writeFileSync(path.join(genDir, "fortran.gen.c"), o.join("\n"));
}

// ---------------------------------------------------------------- Fortran declarations
// Lines start in column 7 and stay within 72 columns so mpif.h works in fixed and free form.
function fline(s, out) {
  const l = "      " + s;
  if (l.length > 72) throw new Error(`Fortran line too long: ${l}`);
  out.push(l);
}
function constantDecls(out) {
  for (const [t, n, v] of F_EXTRA) { fline(`${t.toUpperCase()} ${n}`, out); fline(`PARAMETER (${n}=${v})`, out); }
  for (const [n, v] of F_LOGICAL) { fline(`LOGICAL ${n}`, out); fline(`PARAMETER (${n}=${v})`, out); }
  for (const c of abi) {
    const v = fortranValue(c);
    if (v === null) continue;
    fline(F_WIDE[c.name] ? `INTEGER(KIND=${F_WIDE[c.name]}) ${c.name}` : `INTEGER ${c.name}`, out);
    fline(`PARAMETER (${c.name}=${v})`, out);
  }
  // MPICH's mpif.h names MPI_INTEGER16 although this ABI has no such type.
  if (!abi.some((c) => c.name === "MPI_INTEGER16")) { fline("INTEGER MPI_INTEGER16", out); fline("PARAMETER (MPI_INTEGER16=MPI_DATATYPE_NULL)", out); }
}
// The sentinels: their addresses are what the wrappers recognise (fortran/fortran.h has the C
// side of the same layout).
function commonDecls(out) {
  for (const l of ["INTEGER MPI_BOTTOM, MPI_IN_PLACE", "INTEGER MPI_STATUS_IGNORE(MPI_STATUS_SIZE)",
    "INTEGER MPI_STATUSES_IGNORE(MPI_STATUS_SIZE,1)", "INTEGER MPI_ERRCODES_IGNORE(1)",
    "CHARACTER*1 MPI_ARGVS_NULL(1,1), MPI_ARGV_NULL(1)", "INTEGER MPI_UNWEIGHTED, MPI_WEIGHTS_EMPTY",
    "COMMON /MPIPRIV1/ MPI_BOTTOM, MPI_IN_PLACE, MPI_STATUS_IGNORE",
    "COMMON /MPIPRIV2/ MPI_STATUSES_IGNORE, MPI_ERRCODES_IGNORE",
    "COMMON /MPIPRIVC/ MPI_ARGVS_NULL, MPI_ARGV_NULL",
    "COMMON /MPIFCMB5/ MPI_UNWEIGHTED", "COMMON /MPIFCMB9/ MPI_WEIGHTS_EMPTY",
    "SAVE /MPIPRIV1/, /MPIPRIV2/, /MPIPRIVC/, /MPIFCMB5/, /MPIFCMB9/"]) fline(l, out);
}
const fnType = (f) => (f.ret === "double" ? "DOUBLE PRECISION" : "INTEGER(KIND=MPI_ADDRESS_KIND)");
const HEAD_F = "! Generated by mpi-shim/gen/gen-fortran.mjs from spec/mpi.api and spec/abi.txt. Do not edit.";

{
  const o = [HEAD_F, "! mana's mpif.h: MPICH's Fortran ABI (constants as in C except where Fortran differs).", "!"];
  constantDecls(o);
  commonDecls(o);
  for (const f of bound.filter((g) => g.ret !== "int")) {
    fline(`EXTERNAL ${f.name.toUpperCase()}, P${f.name.toUpperCase()}`, o);
    fline(`${fnType(f)} ${f.name.toUpperCase()}, P${f.name.toUpperCase()}`, o);
  }
  writeFileSync(path.join(incDir, "mpif.h"), o.join("\n") + "\n");
}

// ---------------------------------------------------------------- mpi.f90
function ftype(f, p) {
  if (p.name === "attribute_val") return attrWide(f) ? "INTEGER(KIND=MPI_ADDRESS_KIND)" : "INTEGER";
  if (isString(p)) return "CHARACTER(LEN=*)";
  if (p.base === "MPI_Status") return "INTEGER";
  if (AINT_KIND[p.base]) return `INTEGER(KIND=${AINT_KIND[p.base]})`;
  if (LOGICAL_NAMES.has(p.name)) return "LOGICAL";
  return "INTEGER";
}
function fdims(p) {
  if (p.base === "MPI_Status") return p.isArray ? "(MPI_STATUS_SIZE,*)" : "(MPI_STATUS_SIZE)";
  if (isString(p)) return "";
  if (p.dims) return `(${[...p.dims.matchAll(/\[([^\]]*)\]/g)].map((m) => m[1]).reverse().join(",")},*)`;
  return p.isArray ? "(*)" : "";
}
/** Whether the module gets an explicit interface for f: not for choice buffers (any type is
 *  fine there), callbacks or arguments that take a scalar sentinel where an array is declared. */
/** A free-form line split after commas with & continuations (the limit is 132 columns). */
function freeWrap(line) {
  const out = [];
  let rest = line;
  while (rest.length > 100) {
    const cut = rest.lastIndexOf(",", 100) + 1;
    out.push(rest.slice(0, cut) + " &");
    rest = "        " + rest.slice(cut).trimStart();
  }
  out.push(rest);
  return out;
}
const wantsInterface = (f) => !f.params.some((p) => p.kind === "buf" || p.kind === "fnptr" || p.kind === "weights");
{
  const o = [HEAD_F, "! `use mpi` for mana: the constants of mpif.h plus explicit interfaces for the routines",
    "! without choice buffers.", "module mpi", "  implicit none"];
  const decl = [];
  constantDecls(decl);
  commonDecls(decl);
  o.push(...decl.map((l) => "  " + l.trimStart()));
  o.push("  interface");
  for (const f of bound) {
    if (!wantsInterface(f) && f.ret === "int") continue;
    for (const prefix of ["", "P"]) {
      const fname = prefix + f.name.toUpperCase();
      const dummies = f.params.filter((p) => !(f.name.startsWith("MPI_Init") && (p.name === "argc" || p.name === "argv")));
      const names = dummies.map((p) => p.name);
      if (f.ret === "int") names.push("ierror");
      const used = new Set(dummies.flatMap((p) => [ftype(f, p), fdims(p)].join(" ").match(/MPI_\w+_KIND|MPI_STATUS_SIZE/g) ?? []));
      for (const k of (f.ret !== "int" ? fnType(f).match(/MPI_\w+_KIND/g) : null) ?? []) used.add(k);
      o.push(...freeWrap(f.ret === "int" ? `    subroutine ${fname}(${names.join(", ")})` : `    function ${fname}(${names.join(", ")})`));
      if (used.size) o.push(`      import :: ${[...used].join(", ")}`);
      o.push("      implicit none");
      if (f.ret !== "int") o.push(`      ${fnType(f)} :: ${fname}`);
      for (const p of dummies) o.push(`      ${ftype(f, p)} :: ${p.name}${fdims(p)}`);
      if (f.ret === "int") o.push("      INTEGER :: ierror", `    end subroutine ${fname}`);
      else o.push(`    end function ${fname}`);
    }
  }
  o.push("  end interface", "end module mpi", "");
  writeFileSync(path.join(genDir, "mpi.f90"), o.join("\n"));
}
console.log(`gen-fortran: ${bound.length} functions bound, ${skipped.length} skipped`);
