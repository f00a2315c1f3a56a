// mana launch with real programs: exit statuses, signals, the libmana check, and a
// --bcheckpoint against a process that never connects (it must fail on a short phase timeout,
// leave no partial generation behind, and leave the program running).
import t from "tap";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildIfStale, lines, mana, manaBin, repo, sleep, startCoordinator } from "./lib/cli.js";

buildIfStale();

const tmp = mkdtempSync(join(process.env.MANA_TEST_TMP ?? tmpdir(), "mana-launch-"));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));

const realLibmana = join(repo, "native", "out", "lib", "libmana.so");

/** A preload library that does nothing: the program then never says HELLO to its agent. */
function silentLibrary(): string | undefined {
  const src = join(tmp, "silent.c");
  const so = join(tmp, "libsilent.so");
  writeFileSync(src, "int mana_test_silent_marker;\n");
  const r = spawnSync("cc", ["-shared", "-fPIC", "-o", so, src]);
  return r.status === 0 ? so : undefined;
}

t.test("launch exit statuses", { skip: existsSync(realLibmana) ? false : "native/out/lib/libmana.so is not built" }, async (t) => {
  const ok = await mana(["launch", "--coord-port", "0", "--ckptdir", tmp, "--", "/bin/true"]);
  t.equal(ok.code, 0, `/bin/true exits 0 (${ok.stderr})`);
  const three = await mana(["launch", "--coord-port", "0", "--ckptdir", tmp, "--", "sh", "-c", "exit 3"]);
  t.equal(three.code, 3, `sh -c 'exit 3' exits 3 (${three.stderr})`);
  t.equal(three.stderr, "", "nothing on stderr");
  const out = await mana(["launch", "--coord-port", "0", "--ckptdir", tmp, "sh", "-c", "echo hello; echo err >&2"]);
  t.equal(out.code, 0);
  t.equal(out.stdout, "hello\n", "the program's stdout is inherited");
  t.equal(out.stderr, "err\n", "the program's stderr is inherited");
  const killed = await mana(["launch", "--coord-port", "0", "--ckptdir", tmp, "--", "sh", "-c", "kill -9 $$"]);
  t.equal(killed.code, 137, "death by SIGKILL is 128+9");
  t.equal(lines(killed.stderr).length, 1);
  t.match(killed.stderr, /^mana launch: sh was killed by SIGKILL \(exit status 137\)/);
  // libmana scrubs its variables from the environment it hands on, so look with a silent library
  const silent = silentLibrary();
  if (silent) {
    const env = await mana(["launch", "--coord-port", "0", "--ckptdir", tmp, "--", "sh", "-c", 'test "$LD_PRELOAD" = "$WANT:/x.so" && test -S "$MANA_AGENT_SOCK" && test "$MANA_PROC_ID" = 0'], {
      MANA_LIBMANA: silent,
      WANT: silent,
      LD_PRELOAD: "/x.so",
    });
    t.equal(env.code, 0, "LD_PRELOAD (prepended), MANA_AGENT_SOCK and MANA_PROC_ID are set for the program");
  }
  const nope = await mana(["launch", "--coord-port", "0", "--ckptdir", tmp, "--", join(tmp, "no-such-program")]);
  t.equal(nope.code, 1);
  t.equal(lines(nope.stderr).length, 1, `one line: ${nope.stderr}`);
  t.match(nope.stderr, /^mana launch: cannot run .*no-such-program: no such program/);
});

t.test("launch without libmana fails with one clear line", async (t) => {
  const missing = join(tmp, "not-built", "libmana.so");
  const r = await mana(["launch", "--coord-port", "0", "--", "/bin/true"], { MANA_LIBMANA: missing });
  t.equal(r.code, 1);
  t.equal(lines(r.stderr).length, 1, `one line: ${r.stderr}`);
  t.equal(r.stderr.trim(), `mana launch: the checkpointer ${missing} is missing; build it with npm run build (or make -C native)`);
  if (!existsSync(realLibmana)) {
    const d = await mana(["launch", "--coord-port", "0", "--", "/bin/true"]);
    t.equal(d.code, 1);
    t.match(d.stderr, /^mana launch: the checkpointer .*libmana\.so is missing/);
  }
});

const silent = silentLibrary();
// tap 21: t.skip(name) would declare a skipped subtest; the option skips this one with a reason
t.test("--bcheckpoint of a process that never connects times out cleanly", { skip: silent ? false : "no C compiler for the silent preload library" }, async (t) => {
  if (!silent) return;
  const dir = join(tmp, "timeout");
  mkdirSync(dir);
  const ckpt = join(dir, "ckpt");
  const c = await startCoordinator(dir, { MANA_PHASE_TIMEOUT_MS: "800" });
  t.teardown(c.stop);
  const launch = spawn(process.execPath, [manaBin, "launch", "--join", "--coord-port", String(c.port), "--", "sleep", "60"], {
    env: { ...process.env, MANA_LIBMANA: silent },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let launchErr = "";
  launch.stderr.on("data", (d: Buffer) => (launchErr += d.toString()));
  const launchDone = new Promise<number | null>((r) => launch.on("close", (code) => r(code)));
  const args = ["command", "--coord-port", String(c.port)];
  let procs: { procId: number; pid: number; connected: boolean }[] = [];
  for (let i = 0; i < 200 && procs.length === 0; i++) {
    const l = await mana([...args, "--list", "--json"]);
    procs = (JSON.parse(l.stdout) as { procs: typeof procs }).procs.filter((p) => p.pid > 0);
    if (procs.length === 0) await sleep(50);
  }
  t.equal(procs.length, 1, "the program is registered");
  t.equal(procs[0]?.procId, 0, "with procId 0");
  t.equal(procs[0]?.connected, false, "but not connected (no libmana in it)");

  const started = Date.now();
  const bc = await mana([...args, "--bcheckpoint"]);
  const took = Date.now() - started;
  t.equal(bc.code, 1, "--bcheckpoint fails");
  t.equal(lines(bc.stderr).length, 1, `one line: ${bc.stderr}`);
  t.match(bc.stderr, /^mana command: checkpoint generation 1 aborted: timed out after 0\.8 s waiting for process 0 \(pid \d+ on .*not connected to its agent.*\) to suspend$/m);
  t.ok(took < 10_000, `it took ${took} ms, not the default 300 s`);
  const left = readdirSync(ckpt).filter((n) => n.startsWith("gen-") || n.startsWith(".gen-") || n === "latest");
  t.same(left, [], "no generation, no partial dir, no latest");

  const st = JSON.parse((await mana([...args, "--status", "--json"])).stdout) as { state: string; lastError: string; numProcs: number; lastGeneration: number };
  t.equal(st.state, "RUNNING", "the coordinator is back to RUNNING");
  t.equal(st.numProcs, 1, "the program still runs");
  t.equal(st.lastGeneration, 0);
  t.match(st.lastError, /timed out/);

  const k = await mana([...args, "--kill"]);
  t.equal(k.code, 0);
  t.equal(await launchDone, 143, "kill ends the program with SIGTERM (128+15)");
  t.match(launchErr, /sleep was killed by SIGTERM/);
});
