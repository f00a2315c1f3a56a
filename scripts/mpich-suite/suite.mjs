#!/usr/bin/env node
// Helper for scripts/mpich-suite.sh (plain Node, no dependencies).
//
//   node suite.mjs select --src SRCDIR --build BUILDDIR --list-name NAME [--dry] SELECTION_FILE
//       Resolves a selection file against the suite's testlist files and writes (unless --dry)
//       into BUILDDIR/<dir>/NAME the runtests list for every directory involved. Prints a JSON
//       manifest {dirs:[...], tests:[{id,dir,prog,ranks,args,env}]} on stdout.
//   node suite.mjs report --manifest M1.json[,M2.json...] --runs RUNS.json --out REPORT.json [--timeout N]
//       Reads the JUnit files runtests wrote for each mode, writes the JSON report and prints
//       the side-by-side table. Exit status 1 if a test that passed natively (or, without a
//       native run, that is expected to pass) does not pass under mana; else 0.
//
// Selection file: one entry per line, '#' starts a comment.
//   DIR                      every test of DIR's testlist
//   DIR/PROG                 every testlist line of PROG in DIR
//   DIR/PROG NP [k=v ...]    the testlist lines of PROG with NP ranks (and these keys)
import { readFileSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";

function die(msg, code = 2) {
  process.stderr.write(`mpich-suite: ${msg}\n`);
  process.exit(code);
}

function parseArgs(argv) {
  const opts = { _: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--dry") opts.dry = true;
    else if (a.startsWith("--")) opts[a.slice(2)] = argv[++i];
    else opts._.push(a);
  }
  return opts;
}

// A runtests list line: program [np [key=value ...]] ('#' comments, '!' build lines skipped).
function parseListLine(line) {
  const s = line.replace(/#.*/, "").trim();
  if (!s || s.startsWith("!")) return null;
  const tok = s.split(/\s+/);
  const prog = tok[0];
  const ranks = tok.length > 1 && /^\d+$/.test(tok[1]) ? Number(tok[1]) : 2; // runtests default np
  const keys = tok.slice(2).filter((t) => t.includes("="));
  const args = keys.filter((k) => k.startsWith("arg=")).map((k) => k.slice(4));
  const env = keys.filter((k) => k.startsWith("env=")).map((k) => k.slice(4));
  const xfail = keys.some((k) => k.startsWith("xfail="));
  return { line: s, prog, ranks, keys, args, env, xfail, tokens: tok };
}

// The id runtests' JUnit output lets us reconstruct: "dir/prog np argvalues... envs...".
function testId(dir, t) {
  return [`${dir}/${t.prog}`, String(t.ranks), ...t.args, ...t.env].join(" ");
}

function readTestlist(src, build, dir) {
  // configure writes DIR/testlist into the build tree for testlist.in; otherwise the source one.
  for (const f of [join(build, dir, "testlist"), join(src, dir, "testlist")]) {
    if (existsSync(f)) return readFileSync(f, "utf8").split("\n").map(parseListLine).filter(Boolean);
  }
  die(`no testlist for directory ${dir} (in ${build} or ${src})`);
}

function cmdSelect(opts) {
  const [selFile] = opts._;
  if (!selFile || !opts.src || !opts.build || !opts["list-name"]) die("select: missing arguments");
  const lists = new Map(); // dir -> parsed testlist
  const chosen = new Map(); // dir -> Set(line)
  const entries = readFileSync(selFile, "utf8").split("\n");
  let lineNo = 0;
  for (const raw of entries) {
    lineNo++;
    const s = raw.replace(/#.*/, "").trim();
    if (!s) continue;
    const tok = s.split(/\s+/);
    const path = tok[0].replace(/^\.\//, "").replace(/\/$/, "");
    const slash = path.indexOf("/");
    const dir = slash < 0 ? path : path.slice(0, slash);
    const prog = slash < 0 ? null : path.slice(slash + 1);
    if (!/^[A-Za-z0-9_.-]+$/.test(dir) || (prog !== null && !/^[A-Za-z0-9_.-]+$/.test(prog)))
      die(`${selFile}:${lineNo}: bad entry "${s}" (want DIR, DIR/PROG or DIR/PROG NP [k=v...])`);
    if (!lists.has(dir)) lists.set(dir, readTestlist(opts.src, opts.build, dir));
    const list = lists.get(dir);
    const want = tok.slice(1);
    const hits = list.filter((t) => {
      if (prog !== null && t.prog !== prog) return false;
      if (prog === null) return true;
      if (want.length && /^\d+$/.test(want[0]) && Number(want[0]) !== t.ranks) return false;
      return want.filter((w) => w.includes("=")).every((w) => t.keys.includes(w));
    });
    // "DIR/PROG NP" without keys picks the plain line when there are variants with keys
    let picked = hits;
    if (prog !== null && want.length && !want.some((w) => w.includes("="))) {
      const plain = hits.filter((t) => t.keys.length === 0);
      if (plain.length) picked = plain;
    }
    if (!picked.length) die(`${selFile}:${lineNo}: "${s}" matches no test in ${dir}/testlist`);
    if (!chosen.has(dir)) chosen.set(dir, new Set());
    for (const t of picked) chosen.get(dir).add(t.line);
  }
  const manifest = { dirs: [], tests: [] };
  for (const [dir, lines] of chosen) {
    const parsed = lists.get(dir).filter((t) => lines.has(t.line));
    // keep the testlist's own order, drop duplicates
    const seen = new Set();
    const uniq = parsed.filter((t) => (seen.has(t.line) ? false : (seen.add(t.line), true)));
    if (!opts.dry) writeFileSync(join(opts.build, dir, opts["list-name"]), uniq.map((t) => t.line).join("\n") + "\n");
    manifest.dirs.push(dir);
    for (const t of uniq) {
      manifest.tests.push({
        id: testId(dir, t),
        dir,
        prog: t.prog,
        name: `${dir}/${t.prog}`,
        ranks: t.ranks,
        args: t.args,
        env: t.env,
        xfail: t.xfail,
        line: t.line,
      });
    }
  }
  process.stdout.write(JSON.stringify(manifest, null, 1) + "\n");
}

// ---------------------------------------------------------------------------------------
// JUnit as written by runtests (not always well-formed XML: parse it loosely).
function parseJunit(text) {
  const out = new Map();
  const re = /<testcase name="([^"]*)"(?: time="([^"]*)")?>([\s\S]*?)<\/testcase>/g;
  let m;
  while ((m = re.exec(text))) {
    const name = m[1].replace(/^\s*\d*\s*-\s*/, "").trim().replace(/^\.\//, "").split(/\s+/).join(" ");
    const seconds = m[2] ? Number(m[2]) : null;
    const body = m[3];
    let result = "pass";
    let output = "";
    let timeout = null;
    if (/<skipped/.test(body)) {
      result = "skip";
      const r = /SKIP ([^\]]*)\]\]>/.exec(body);
      output = r ? r[1] : "";
    } else if (/<failure/.test(body)) {
      result = "fail";
      const c = /<!\[CDATA\[([\s\S]*?)\]\]>/.exec(body);
      const cdata = c ? c[1] : "";
      const t = /Timeout: (\d+)/.exec(cdata);
      if (t) timeout = Number(t[1]);
      output = cdata
        .split("\n")
        .filter((l) => l.startsWith("## "))
        .slice(1)
        .map((l) => l.slice(3))
        .join("\n");
      if (/^\s*Failed to build/.test(output)) result = "build-fail";
      else if (timeout !== null && seconds !== null && seconds >= timeout - 1) result = "timeout";
    }
    // the same id can appear twice only if the list has duplicate lines; keep the first
    if (!out.has(name)) out.set(name, { result, seconds: seconds === null ? null : Number(seconds.toFixed(3)), output: trimOutput(output) });
  }
  return out;
}

function buildFail(results, name) {
  for (const [id, got] of results) {
    if (got.result === "build-fail" && id.split(" ")[0] === name) return got;
  }
  return undefined;
}

function trimOutput(s) {
  const lines = s.split("\n").filter((l) => l.trim() !== "");
  const max = 25;
  if (lines.length <= max) return lines.join("\n");
  return [...lines.slice(0, max), `... (${lines.length - max} more lines)`].join("\n");
}

// mana mode -> the native mode it is compared with
const PAIRS = [
  ["native-mpich", "mana-mpich"],
  ["native-mpich", "mana-mpich-plainbin"],
  ["native-openmpi", "mana-openmpi"],
  ["native-mpich", "mana-mpich-ckpt"],
  ["native-openmpi", "mana-openmpi-ckpt"],
  ["native-mpich", "mana-mpich-ckpt-openmpi"],
  ["native-openmpi", "mana-openmpi-ckpt-mpich"],
];
// results of a checkpoint-restart mode that are not a failure
const OK = new Set(["pass", "pass-nockpt"]);
// results that do not count in a checkpoint-restart mode's pass rate: no checkpoint was taken
const NOCKPT = new Set(["pass-nockpt", "fail-nockpt"]);

// A ckpt mode's per-job records (mpiexec.sh, MANA_SUITE_CKPTRESULTS), in the order runtests
// ran them: dir prog np args status exit detail.
function readCkptResults(file) {
  if (!file || !existsSync(file)) return [];
  return readFileSync(file, "utf8").split("\n").filter(Boolean).map((l) => {
    const [dir, prog, np, args, status, exit, detail] = l.split("\t");
    return { key: [`${dir}/${prog}`, np, ...(args ? args.split(" ") : [])].join(" "), status, exit: Number(exit), detail: detail ?? "", used: false };
  });
}

// runtests' verdict and whether the job was checkpointed and restarted -> one result
function withCkpt(got, rec) {
  const ckpt = { status: rec.status, exit: rec.exit, detail: rec.detail };
  let result = got.result;
  if (rec.status === "not-taken") result = result === "pass" ? "pass-nockpt" : result === "fail" ? "fail-nockpt" : result;
  else if (rec.status === "failed" && (result === "fail" || result === "timeout")) result = "ckpt-fail";
  return { ...got, result, ckpt };
}

const SHORT = {
  "native-mpich": "nat-mpich",
  "native-openmpi": "nat-ompi",
  "mana-mpich": "mana-mpich",
  "mana-mpich-plainbin": "mana-plain",
  "mana-openmpi": "mana-ompi",
  "mana-mpich-ckpt": "ckpt-mpich",
  "mana-openmpi-ckpt": "ckpt-ompi",
  "mana-mpich-ckpt-openmpi": "ckpt-mpich>ompi",
  "mana-openmpi-ckpt-mpich": "ckpt-ompi>mpich",
};

function cmdReport(opts) {
  // one manifest per mode (the flavours' configured testlists normally agree): union by id
  const manifest = { dirs: [], tests: [] };
  const known = new Set();
  for (const f of String(opts.manifest).split(",").filter(Boolean)) {
    const m = JSON.parse(readFileSync(f, "utf8"));
    for (const d of m.dirs) if (!manifest.dirs.includes(d)) manifest.dirs.push(d);
    for (const t of m.tests) if (!known.has(t.id)) (known.add(t.id), manifest.tests.push(t));
  }
  const runs = JSON.parse(readFileSync(opts.runs, "utf8"));
  const modes = runs.modes.map((r) => r.mode);
  const parsed = {};
  for (const r of runs.modes) {
    parsed[r.mode] = r.junit && existsSync(r.junit) ? parseJunit(readFileSync(r.junit, "utf8")) : new Map();
  }
  const ckptRecs = Object.fromEntries(runs.modes.map((r) => [r.mode, readCkptResults(r.ckptResults)]));
  const tests = manifest.tests.map((t) => {
    const results = {};
    const key = [t.name, String(t.ranks), ...t.args].join(" ");
    for (const r of runs.modes) {
      // a program that fails to build is reported under a mangled id ("dir/prog [np] [args]")
      const got = parsed[r.mode].get(t.id) || buildFail(parsed[r.mode], t.name);
      const rec = got && ckptRecs[r.mode].find((c) => !c.used && c.key === key);
      if (rec) rec.used = true;
      if (got) results[r.mode] = rec ? withCkpt(got, rec) : got;
      else {
        const result = r.status === "ran" ? "not-run" : r.status === "build-failed" ? "build-fail" : "unavailable";
        results[r.mode] = { result, seconds: null, output: r.status === "ran" ? "" : r.message };
      }
    }
    return { name: t.name, ranks: t.ranks, args: t.args, env: t.env, id: t.id, results };
  });
  // tests in the JUnit output that the manifest does not know (should not happen)
  for (const r of runs.modes) {
    for (const [id, got] of parsed[r.mode]) {
      const first = id.split(" ")[0];
      if (!manifest.tests.some((t) => t.id === id || (got.result === "build-fail" && t.name === first))) {
        process.stderr.write(`mpich-suite: note: ${r.mode} reported unknown test "${id}" (${got.result})\n`);
      }
    }
  }
  const totals = {};
  for (const m of modes) {
    const c = { pass: 0, "pass-nockpt": 0, fail: 0, "fail-nockpt": 0, "ckpt-fail": 0, timeout: 0, "build-fail": 0, skip: 0, "not-run": 0, unavailable: 0 };
    let secs = 0;
    let restarted = 0;
    for (const t of tests) {
      c[t.results[m].result] = (c[t.results[m].result] || 0) + 1;
      secs += t.results[m].seconds || 0;
      if (t.results[m].ckpt?.status === "restarted") restarted++;
    }
    // the pass rate of a ckpt mode counts only the jobs a checkpoint was taken (or tried) in
    const counted = tests.length - c.skip - c["pass-nockpt"] - c["fail-nockpt"];
    const isCkpt = runs.modes.find((r) => r.mode === m)?.restartMpi != null;
    totals[m] = {
      ...c, total: tests.length, counted, rate: counted ? Number((c.pass / counted).toFixed(4)) : null,
      ...(isCkpt ? { restarted } : {}), testSeconds: Number(secs.toFixed(1)),
    };
  }
  const regressions = [];
  const comparisons = [];
  // a mana flavour that does not build counts against mana, test by test
  const ran = new Set(runs.modes.filter((r) => r.status === "ran" || r.status === "build-failed").map((r) => r.mode));
  for (const [nat, mana] of PAIRS) {
    if (!ran.has(mana)) continue; // an unavailable mode is reported above, not per test
    const haveBase = ran.has(nat);
    comparisons.push({ native: nat, mana, baseline: haveBase ? "measured" : "assumed-pass" });
    for (const t of tests) {
      const n = haveBase ? t.results[nat].result : "pass";
      const g = t.results[mana].result;
      if (n === "pass" && !OK.has(g)) {
        regressions.push({ test: t.id, native: nat, mana, nativeResult: n, manaResult: g, baseline: haveBase ? "measured" : "assumed-pass" });
      }
    }
  }
  const report = {
    suite: runs.suite,
    selection: runs.selection,
    timeout: runs.timeout,
    startedAt: runs.startedAt,
    finishedAt: new Date().toISOString(),
    host: runs.host,
    modes: Object.fromEntries(runs.modes.map((r) => [r.mode, { ...r, totals: totals[r.mode] }])),
    comparisons,
    tests,
    regressions,
  };
  writeFileSync(opts.out, JSON.stringify(report, null, 1) + "\n");

  // ---- text table
  const w0 = Math.min(60, Math.max(24, ...tests.map((t) => t.id.length)));
  const cols = modes.map((m) => Math.max((SHORT[m] || m).length, 10));
  const timed = new Set(["pass", "fail", "timeout", "pass-nockpt", "fail-nockpt", "ckpt-fail"]);
  const cell = (r) => (timed.has(r.result) ? `${r.result} ${fmtSec(r.seconds)}` : r.result);
  const pad = (s, n) => (s.length > n ? s.slice(0, n - 1) + "~" : s.padEnd(n));
  const lines = [];
  lines.push([pad("test", w0), ...modes.map((m, i) => pad(SHORT[m] || m, cols[i] + 7))].join(" | "));
  lines.push("-".repeat(lines[0].length));
  for (const t of tests) {
    lines.push([pad(t.id, w0), ...modes.map((m, i) => pad(cell(t.results[m]), cols[i] + 7))].join(" | "));
  }
  lines.push("-".repeat(lines[0].length));
  for (const key of ["pass", "pass-nockpt", "fail", "fail-nockpt", "ckpt-fail", "timeout", "build-fail", "skip", "not-run", "unavailable"]) {
    if (!modes.some((m) => totals[m][key])) continue;
    lines.push([pad(key, w0), ...modes.map((m, i) => pad(String(totals[m][key]), cols[i] + 7))].join(" | "));
  }
  const rateCell = (m) => (totals[m].rate == null ? "-" : `${totals[m].pass}/${totals[m].counted} ${(100 * totals[m].rate).toFixed(0)}%`);
  lines.push([pad("pass rate (pass/counted)", w0), ...modes.map((m, i) => pad(rateCell(m), cols[i] + 7))].join(" | "));
  lines.push([pad("configure+build seconds", w0), ...runs.modes.map((r, i) => pad(r.buildSeconds == null ? "-" : String(r.buildSeconds), cols[i] + 7))].join(" | "));
  if (runs.modes.some((r) => r.restartMpi != null)) {
    lines.push([pad("checkpointed + restarted", w0), ...modes.map((m, i) => pad(totals[m].restarted == null ? "-" : String(totals[m].restarted), cols[i] + 7))].join(" | "));
  }
  if (runs.modes.some((r) => r.checkpoints != null && r.restartMpi == null)) {
    lines.push([pad("checkpoint generations", w0), ...runs.modes.map((r, i) => pad(r.checkpoints == null ? "-" : String(r.checkpoints), cols[i] + 7))].join(" | "));
  }
  lines.push([pad("run seconds (mode)", w0), ...runs.modes.map((r, i) => pad(r.seconds == null ? "-" : String(r.seconds), cols[i] + 7))].join(" | "));
  process.stdout.write(lines.join("\n") + "\n");
  const notRun = runs.modes.filter((r) => r.status !== "ran");
  if (notRun.length) process.stdout.write("\n");
  for (const r of notRun) process.stdout.write(`${r.mode}: NOT RUN (${r.status}): ${r.message}\n`);
  if (!comparisons.length && modes.some((m) => m.startsWith("mana-"))) {
    process.stdout.write(`\npasses natively but fails under mana: no mana mode ran\n`);
  } else if (comparisons.length) {
    process.stdout.write(`\npasses natively but fails under mana: ${regressions.length}\n`);
    const failedBuild = new Set(runs.modes.filter((r) => r.status === "build-failed").map((r) => r.mode));
    for (const m of failedBuild) {
      const n = regressions.filter((g) => g.mana === m).length;
      process.stdout.write(`  ${m}: ${n} tests, because the suite does not build with mana (see above)\n`);
    }
    for (const g of regressions) {
      if (failedBuild.has(g.mana)) continue;
      process.stdout.write(`  ${g.test}  [${g.mana}: ${g.manaResult}; ${g.native}: ${g.baseline === "measured" ? g.nativeResult : "not run, assumed pass"}]\n`);
    }
  }
  const ckptModes = runs.modes.filter((r) => r.restartMpi != null && r.status === "ran").map((r) => r.mode);
  if (ckptModes.length) {
    process.stdout.write(`\ncheckpoint-restart pass rate (only jobs really checkpointed in their middle and restarted count;\n` +
      `pass-nockpt/fail-nockpt: the job ended before its checkpoint, not counted):\n`);
    for (const m of ckptModes) {
      const r = runs.modes.find((x) => x.mode === m);
      const base = r.launcher;
      const others = [`mana-${base}`, `native-${base}`].filter((x) => totals[x]).map((x) => `${x} ${rateCell(x)}`);
      const t = totals[m];
      process.stdout.write(`  ${m} (launch ${r.launcher}, restart ${r.restartMpi}): ${rateCell(m)}` +
        ` [restarted ${t.restarted}, pass-nockpt ${t["pass-nockpt"]}, fail-nockpt ${t["fail-nockpt"]}, ckpt-fail ${t["ckpt-fail"]}]` +
        (others.length ? `; no checkpoint: ${others.join(", ")}` : "") + "\n");
    }
  }
  process.stdout.write(`\nJSON report: ${opts.out}\n`);
  process.exit(regressions.length ? 1 : 0);
}

function fmtSec(s) {
  if (s === null || s === undefined) return "";
  return s < 10 ? s.toFixed(1) + "s" : Math.round(s) + "s";
}

const [cmd, ...rest] = process.argv.slice(2);
const opts = parseArgs(rest);
if (cmd === "select") cmdSelect(opts);
else if (cmd === "report") cmdReport(opts);
else die(`usage: suite.mjs select|report ...`);
