// The mana CLI against a real coordinator: --help, one-line errors, --json. Busy ports, no
// coordinator and partial-only dirs are covered by test/e2e-errors.test.ts.
// Real processes only (node bin/mana ...).
import t from "tap";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildIfStale, lines, mana, sleep, startCoordinator } from "./lib/cli.js";

buildIfStale();

const tmp = mkdtempSync(join(process.env.MANA_TEST_TMP ?? tmpdir(), "mana-cli-"));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));

t.test("--help of every command", async (t) => {
  for (const cmd of ["coordinator", "launch", "command", "restart", "inspect"]) {
    const r = await mana([cmd, "--help"]);
    t.equal(r.code, 0, `mana ${cmd} --help exits 0`);
    t.match(r.stdout, new RegExp(`^usage: mana ${cmd}`), `mana ${cmd} --help prints its usage`);
    t.equal(r.stderr, "", `mana ${cmd} --help writes nothing to stderr`);
  }
  const top = await mana(["--help"]);
  t.equal(top.code, 0);
  t.match(top.stdout, /commands:/);
});

t.test("usage errors are one line, exit 2", async (t) => {
  const cases: [string[], RegExp][] = [
    [["command", "--bogus"], /^mana command: unknown option --bogus/],
    [["command"], /^mana command: say what to do/],
    [["command", "--status", "--list"], /^mana command: give only one action/],
    [["launch"], /^mana launch: say which program to run/],
    [["launch", "--join", "--new-coordinator", "--", "/bin/true"], /exclude each other/],
    [["coordinator", "--port", "x"], /^mana coordinator: --port must be a whole number/],
    [["inspect"], /^mana inspect: give one IMAGE or DIR/],
  ];
  for (const [args, re] of cases) {
    const r = await mana(args);
    t.equal(r.code, 2, `mana ${args.join(" ")} exits 2`);
    t.equal(lines(r.stderr).length, 1, `one line: ${r.stderr}`);
    t.match(r.stderr, re);
  }
  const u = await mana(["frobnicate"]);
  t.equal(u.code, 2);
  t.match(u.stderr, /^mana: unknown command "frobnicate"/);
});

t.test("a coordinator answers --status/--list/--interval/--bcheckpoint, --json parses", async (t) => {
  const dir = join(tmp, "coord");
  mkdirSync(dir);
  const c = await startCoordinator(dir);
  t.teardown(c.stop);
  const args = ["command", "--coord-port", String(c.port)];

  const st = await mana([...args, "--status", "--json"]);
  t.equal(st.code, 0, st.stderr);
  const s = JSON.parse(st.stdout) as { state: string; numProcs: number; port: number; ckptDir: string };
  t.equal(s.state, "RUNNING");
  t.equal(s.numProcs, 0);
  t.equal(s.port, c.port);
  t.equal(s.ckptDir, join(dir, "ckpt"));

  const text = await mana([...args, "--status"]);
  t.match(text.stdout, /state:\s+RUNNING/);

  const ls = await mana([...args, "--list", "--json"]);
  t.equal(ls.code, 0);
  t.same(JSON.parse(ls.stdout), { procs: [] });

  const pf = await mana(["command", "--port-file", join(dir, "port"), "--list"]);
  t.equal(pf.code, 0, "--port-file finds the coordinator");
  t.match(pf.stdout, /no processes/);

  const iv = await mana([...args, "--interval", "7", "--json"]);
  t.equal(iv.code, 0);
  t.same(JSON.parse(iv.stdout), { intervalSecs: 7 });
  const st2 = JSON.parse((await mana([...args, "--status", "--json"])).stdout) as { intervalSecs: number };
  t.equal(st2.intervalSecs, 7, "the interval took effect");

  const bc = await mana([...args, "--bcheckpoint"]);
  t.equal(bc.code, 1, "nothing to checkpoint is an error");
  t.equal(lines(bc.stderr).length, 1, `one line: ${bc.stderr}`);
  t.match(bc.stderr, /^mana command: no processes to checkpoint/);
  const bj = await mana([...args, "--bcheckpoint", "--json"]);
  t.equal(bj.code, 1);
  t.equal((JSON.parse(bj.stdout) as { ok: boolean }).ok, false, "--json failure is still JSON");

  const q = await mana([...args, "--quit"]);
  t.equal(q.code, 0);
  for (let i = 0; i < 100; i++) {
    if ((await mana([...args, "--status"])).code === 1) break;
    await sleep(50);
  }
  const gone = await mana([...args, "--status"]);
  t.equal(gone.code, 1, "the coordinator is gone after --quit");
  t.notOk(existsSync(join(dir, "port")), "it removed its port file");
});

t.test("inspect of something that is not an image: one line", async (t) => {
  const f = join(tmp, "junk.img");
  writeFileSync(f, "junk".repeat(100));
  const r = await mana(["inspect", f]);
  t.equal(r.code, 1);
  t.equal(lines(r.stderr).length, 1, `one line: ${r.stderr}`);
  t.match(r.stderr, /^mana inspect: /);
  t.notMatch(r.stderr, /at .*\.js:\d+/, "no stack trace");
});
