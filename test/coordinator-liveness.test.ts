// A coordinator that dies in the middle of a checkpoint must not leave the application frozen:
// the agent resumes its parked processes as soon as the link drops.
import t from "tap";
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { Coordinator, ensureBuilt, manaProc, removeDir, sleep, tempDir, testBin, waitFor, waitProcs } from "./lib/harness.js";

ensureBuilt();
const tmp = tempDir("liveness");
t.teardown(() => removeDir(tmp));

t.test("SIGKILL of the coordinator right after SUSPENDED: the program runs on", async (t) => {
  const ck = join(tmp, "ck");
  // MANA_TEST_PAUSE_AFTER (test-only) holds the round once every process is suspended.
  const c = await new Coordinator(ck, ["--phase-timeout-ms", "60000"], {
    env: { ...process.env, MANA_TEST_PAUSE_AFTER: "suspended" },
  }).start();
  t.teardown(() => c.stop());
  const out = join(tmp, "out");
  const launch = manaProc(["launch", "--join", "--coord-port", String(c.port), "--ckptdir", ck, "--", testBin("memloop"), out, "100000", "10"]);
  t.teardown(() => launch.kill("SIGKILL"));
  const [proc] = await waitProcs(c, 1);
  // the program outlives mana launch's SIGKILL (and holds its pipes): end it by pid
  t.teardown(() => {
    try {
      if (proc) process.kill(proc.pid, "SIGKILL");
    } catch {
      // already gone
    }
  });
  await waitFor("output", () => (existsSync(out) && statSync(out).size > 0 ? true : undefined));

  const ckpt = c.command(["--bcheckpoint"], { timeoutMs: 90_000 });
  await waitFor("the round to pause after SUSPENDED", () => (/MANA_TEST_PAUSE_AFTER=suspended: pausing/.test(c.proc.stderr) ? true : undefined));
  // parked: the output must stand still while the round holds
  const frozen = statSync(out).size;
  await sleep(300);
  t.equal(statSync(out).size, frozen, "the program is suspended while the round holds");

  await c.stop(); // SIGKILL
  const r = await ckpt;
  t.not(r.code, 0, "the blocking checkpoint fails with its coordinator");
  await waitFor("output to grow again", () => (statSync(out).size > frozen ? true : undefined), 10_000);
  const a = statSync(out).size;
  await sleep(500);
  t.ok(statSync(out).size > a, "and keeps growing");
  t.match(launch.stderr, /resuming process 0 .*its checkpoint died with the coordinator link/);
  t.equal(readFileSync(out, "utf8").includes("final"), false, "still running (not finished)");
});
