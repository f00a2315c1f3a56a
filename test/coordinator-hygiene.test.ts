// A coordinator starting on a checkpoint dir removes what an interrupted round left there
// (partial generation dirs, temp `latest` links) once they are older than a phase timeout.
import t from "tap";
import { existsSync, lstatSync, lutimesSync, mkdirSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Coordinator, ensureBuilt, removeDir, tempDir, waitFor } from "./lib/harness.js";

ensureBuilt();
const tmp = tempDir("hygiene");
t.teardown(() => removeDir(tmp));

t.test("stale partial dirs and latest temp links are removed at start, young ones kept", async (t) => {
  const ck = join(tmp, "ck");
  const old = join(ck, ".gen-000004.partial-0badc0de");
  const young = join(ck, ".gen-000005.partial-12345678");
  const link = join(ck, ".latest.tmp-cafef00d");
  mkdirSync(old, { recursive: true });
  writeFileSync(join(old, "rank-00000.img"), "half an image");
  mkdirSync(young);
  symlinkSync("gen-000004", link);
  const past = new Date(Date.now() - 3_600_000);
  utimesSync(old, past, past);
  lutimesSync(link, past, past);
  const c = await new Coordinator(ck, ["--phase-timeout-ms", "60000"]).start();
  t.teardown(() => c.stop());
  await waitFor("removal", () => (existsSync(old) ? undefined : true), 10_000);
  await waitFor("link removal", () => (existsSync(link) || isLink(link) ? undefined : true), 10_000);
  t.ok(existsSync(young), "a partial dir younger than the phase timeout is kept");
  // one log line per removal (the line follows the removal, so wait for it)
  await waitFor("log lines", () => (/removed .*\.latest\.tmp-cafef00d/.test(c.proc.stderr) && c.proc.stderr.includes(`removed ${old}, left by an interrupted checkpoint`) ? true : undefined), 5000);
  t.equal(c.proc.stderr.split("\n").filter((l) => /removed /.test(l)).length, 2, "one line per removal");
});

function isLink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}
