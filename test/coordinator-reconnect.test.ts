// SIGKILL of the coordinator must not kill the application: the agent (mana launch) retries
// the same address every second and re-registers its process, with its procId, when a new
// coordinator listens there; --exit-on-last then ends that coordinator with the job.
import t from "tap";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const manaBin = join(repo, "bin", "mana");
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const tmp = mkdtempSync(join(process.env.MANA_TEST_TMP ?? tmpdir(), "mana-reconnect-"));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));

function run(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [manaBin, ...args], { encoding: "utf8", timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Any preload library works here; a silent one keeps the test independent of native/. */
function preload(): string | undefined {
  const so = join(tmp, "libsilent.so");
  writeFileSync(join(tmp, "s.c"), "int mana_test_silent_marker;\n");
  if (spawnSync("cc", ["-shared", "-fPIC", "-o", so, join(tmp, "s.c")]).status === 0) return so;
  const real = join(repo, "native", "out", "lib", "libmana.so");
  return existsSync(real) ? real : undefined;
}

const lib = preload();
// tap 21: t.skip(name) would declare a skipped subtest; the option skips this one with a reason
t.test("the program outlives its coordinator and re-attaches to the next one", { skip: lib ? false : "neither a C compiler nor libmana.so" }, async (t) => {
  if (!lib) return;
  const portFile = join(tmp, "port");
  const marker = join(tmp, "ticks");
  const launch = spawn(process.execPath, [manaBin, "launch", "--new-coordinator", "--coord-port", "0", "--port-file", portFile, "--ckptdir", tmp, "--",
    "sh", "-c", `i=0; while [ $i -lt 40 ]; do echo $i >> ${marker}; i=$((i+1)); sleep 0.1; done; exit 5`], {
    env: { ...process.env, MANA_LIBMANA: lib },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let err = "";
  launch.stderr.on("data", (d: Buffer) => (err += d.toString()));
  const done = new Promise<number | null>((r) => launch.on("close", (c) => r(c)));
  for (let i = 0; i < 200 && !existsSync(portFile); i++) await sleep(25);
  const port = readFileSync(portFile, "utf8").trim();
  const cmd = ["command", "--coord-port", port];
  let st = { pid: 0, numProcs: 0, jobId: "" };
  for (let i = 0; i < 100 && st.numProcs === 0; i++) {
    st = JSON.parse(run([...cmd, "--status", "--json"]).stdout) as typeof st;
    if (st.numProcs === 0) await sleep(50);
  }
  t.equal(st.numProcs, 1, "one process under the first coordinator");
  process.kill(st.pid, "SIGKILL");
  await sleep(600);
  const n1 = readFileSync(marker, "utf8").split("\n").length;
  await sleep(400);
  t.ok(readFileSync(marker, "utf8").split("\n").length > n1, "the program keeps running without a coordinator");

  const c2 = spawn(process.execPath, [manaBin, "coordinator", "--port", port, "--ckptdir", tmp, "--exit-on-last"], { stdio: "ignore" });
  const c2done = new Promise<number | null>((r) => c2.on("close", (c) => r(c)));
  let procs: { procId: number; pid: number }[] = [];
  for (let i = 0; i < 100 && procs.length === 0; i++) {
    const l = run([...cmd, "--list", "--json"]);
    if (l.code === 0) procs = (JSON.parse(l.stdout) as { procs: typeof procs }).procs;
    if (procs.length === 0) await sleep(100);
  }
  t.equal(procs.length, 1, "the agent re-registered its process");
  t.equal(procs[0]?.procId, 0, "with the same procId");
  const st2 = JSON.parse(run([...cmd, "--status", "--json"]).stdout) as typeof st;
  t.equal(st2.jobId, st.jobId, "the new coordinator took over the job id");

  t.equal(await done, 5, "mana launch exits with the program's status");
  t.equal(err.split("\n").filter((l) => /lost the coordinator/.test(l)).length, 1, "one line when the coordinator was lost");
  t.match(err, /re-attached to the coordinator/);
  t.equal(await c2done, 0, "--exit-on-last: the coordinator exits with the job");
});
