// The restart barrier waits for exactly the processes of the generation being restarted.
import t from "tap";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Coordinator, ensureBuilt, mana, manaProc, removeDir, run, tempDir, testBin, waitFor, waitProcs } from "./lib/harness.js";

ensureBuilt();
const tmp = tempDir("restart");
t.teardown(() => removeDir(tmp));
const STEPS = "300";
const SLEEP = "10";

t.test("two processes of one generation restart under one coordinator and finish", async (t) => {
  const ref = await run(testBin("memloop"), [join(tmp, "ref"), STEPS, "0"]);
  const ck = join(tmp, "ck");
  const c = await new Coordinator(ck).start();
  t.teardown(() => c.stop());
  const outs = [join(tmp, "out0"), join(tmp, "out1")];
  const launches = outs.map((o) => manaProc(["launch", "--join", "--coord-port", String(c.port), "--ckptdir", ck, "--", testBin("memloop"), o, STEPS, SLEEP]));
  t.teardown(() => launches.forEach((l) => l.kill("SIGKILL")));
  const procs = await waitProcs(c, 2);
  const res = await c.bcheckpoint();
  t.equal(res.generation, 1);
  for (const p of procs) process.kill(p.pid, "SIGKILL");
  await Promise.all(launches.map((l) => l.done));

  const r = await mana(["restart", res.dir, "--join", "--coord-port", String(c.port)], { timeoutMs: 90_000 });
  t.equal(r.code, ref.code, `mana restart exits with the program's status (${r.stderr})`);
  for (const o of outs) t.match(readFileSync(o, "utf8"), /\nfinal [0-9a-f]+ usr1 \d+\n$/, `${o} finished`);
});

t.test("mana restart that fails after starting its coordinator stops that coordinator", async (t) => {
  const ck = join(tmp, "ck");
  const gen = join(ck, "gen-000001");
  const notExec = join(tmp, "not-executable");
  writeFileSync(notExec, "#!/bin/sh\n", { mode: 0o644 });
  const portFile = join(tmp, "restart-port");
  const r = await mana(["restart", gen, "--new-coordinator", "--coord-port", "0", "--port-file", portFile], {
    env: { ...process.env, MANA_RESTORE: notExec },
    timeoutMs: 60_000,
  });
  t.equal(r.code, 1);
  t.match(r.stderr, /cannot run .*not-executable: permission denied/);
  // the coordinator removes its port file when it exits
  await waitFor("the started coordinator to exit", () => (existsSync(portFile) ? undefined : true), 10_000);
  t.pass("the coordinator is gone");
});
