// MPI jobs under mana launch, with the real launchers of both MPIs and a real MPI program
// (test/programs/mpi/ring.c) built with mana mpicc and with Debian's mpicc.mpich: the output
// must equal a native MPICH run, the launcher's exit status must come back, the ranks must get
// mana's libmpi and the environment the shim needs. Checkpoints of MPI jobs: mpi-ckpt*.test.ts.
import t from "tap";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildIfStale, lines, mana, repo, startCoordinator } from "./lib/cli.js";

buildIfStale();

const shimLib = join(repo, "mpi-shim", "out", "lib");
const have = (cmd: string): boolean => spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;
const missing = [
  ...(existsSync(join(shimLib, "libmpi.so.12")) ? [] : ["mpi-shim is not built (make -C mpi-shim)"]),
  ...["mpicc.mpich", "mpirun.mpich", "mpirun.openmpi", "cc"].filter((c) => !have(c)).map((c) => `${c} is not installed`),
];
const skip = missing.length ? missing.join("; ") : false;

const tmp = mkdtempSync(join(process.env.MANA_TEST_TMP ?? tmpdir(), "mana-mpi-"));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));

const ringSrc = join(repo, "test", "programs", "mpi", "ring.c");
const ringMana = join(tmp, "ring-mana");
const ringNative = join(tmp, "ring-native");
const sorted = (s: string): string[] => lines(s).sort();

/** Runs a command without mana (the reference run). */
function runPlain(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { env: { ...process.env, ...env }, encoding: "utf8", timeout: 60_000 });
  return { code: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}

// One coordinator for the jobs of this file (each is started after the previous one ended):
// starting one per launch would cost seconds each.
let coordPort = 0;
t.before(async () => {
  if (skip) return;
  const c = await startCoordinator(tmp);
  coordPort = c.port;
  t.teardown(c.stop);
});
const launch = (args: string[], env: NodeJS.ProcessEnv = {}, opts: string[] = []) =>
  mana(["launch", "--join", "--coord-port", String(coordPort), ...opts, "--", ...args], env, 60_000);

t.test("MPI jobs under mana launch", { skip }, async (t) => {
  const built = await mana(["mpicc", "-O2", "-Wall", "-Wextra", "-Werror", "-o", ringMana, ringSrc]);
  t.equal(built.code, 0, `mana mpicc builds ring.c (${built.stderr})`);
  const native = runPlain("mpicc.mpich", ["-O2", "-o", ringNative, ringSrc]);
  t.equal(native.code, 0, `mpicc.mpich builds ring.c (${native.stderr})`);
  const readelf = runPlain("readelf", ["-d", ringMana]);
  if (readelf.code === 0) t.match(readelf.stdout, /NEEDED.*\[libmpi\.so\.12\]/, "mana mpicc links the shim's libmpi.so.12");

  const ref = runPlain("mpirun.mpich", ["-n", "3", ringNative]);
  t.equal(ref.code, 0, `the native MPICH run works (${ref.stderr})`);
  const want = sorted(ref.stdout);
  t.equal(want.length, 3, "three ranks report");

  const runs: [string, string, string][] = [
    ["mpirun.mpich", "mana mpicc", ringMana],
    ["mpirun.mpich", "mpicc.mpich", ringNative],
    ["mpirun.openmpi", "mana mpicc", ringMana],
    ["mpirun.openmpi", "mpicc.mpich", ringNative],
  ];
  for (const [launcher, how, prog] of runs) {
    const r = await launch([launcher, "-n", "3", prog]);
    t.equal(r.code, 0, `${launcher} -n 3 (built with ${how}) exits 0 (${r.stderr})`);
    t.same(sorted(r.stdout), want, `${launcher} -n 3 (built with ${how}) prints what the native run prints`);
  }

  // the launcher's status is mana launch's
  const five = await launch(["mpirun.mpich", "-n", "3", ringMana], { RING_EXIT: "5" });
  t.equal(five.code, 5, "mpirun.mpich's exit status 5 comes back");
  t.same(sorted(five.stdout), want);
  const seven = await launch(["mpirun.openmpi", "-n", "2", ringNative], { RING_EXIT: "7" });
  t.equal(seven.code, 7, "mpirun.openmpi's exit status 7 comes back");
});

t.test("what the ranks get", { skip }, async (t) => {
  const show = ["sh", "-c", 'echo "mpi=$MANA_MPI ldpath=$LD_LIBRARY_PATH over=$OMPI_MCA_rmaps_base_oversubscribe root=$OMPI_ALLOW_RUN_AS_ROOT preload=$LD_PRELOAD"'];
  const m = await launch(["mpirun.mpich", "-n", "1", ...show], { LD_LIBRARY_PATH: "/opt/x", LD_PRELOAD: "" });
  t.equal(m.code, 0, m.stderr);
  t.equal(m.stdout, `mpi=mpich ldpath=${shimLib}:/opt/x over= root= preload=\n`, "MPICH: the shim first on LD_LIBRARY_PATH, MANA_MPI=mpich, no libmana preloaded");
  const o = await launch(["mpirun.openmpi", "-n", "1", ...show], { LD_LIBRARY_PATH: "", LD_PRELOAD: "" });
  t.equal(o.code, 0, o.stderr);
  const root = process.getuid?.() === 0 ? "1" : "";
  t.equal(o.stdout, `mpi=openmpi ldpath=${shimLib} over=1 root=${root} preload=\n`, "Open MPI: also oversubscription (and run-as-root when root)");
  // Debian's alternatives: mpirun -> /etc/alternatives/mpirun -> mpirun.<flavour>
  if (have("mpirun")) {
    const real = runPlain("readlink", ["-f", spawnSync("sh", ["-c", "command -v mpirun"], { encoding: "utf8" }).stdout.trim()]).stdout.trim();
    const flavour = /orterun|openmpi|prterun/.test(real) ? "openmpi" : /hydra|mpich/.test(real) ? "mpich" : "";
    if (flavour) {
      const g = await launch(["mpirun", "-n", "1", "sh", "-c", "echo $MANA_MPI"], { LD_PRELOAD: "" });
      t.equal(g.stdout, `${flavour}\n`, `plain mpirun (${real}) is recognised as ${flavour}`);
    }
  }
  // --mpi naming the launcher's own MPI is accepted
  const same = await launch(["mpiexec.openmpi", "-n", "1", "sh", "-c", "echo $MANA_MPI"], {}, ["--mpi", "openmpi"]);
  t.equal(same.code, 0, same.stderr);
  t.equal(same.stdout, "openmpi\n", "--mpi openmpi with mpiexec.openmpi");
  // --mpi without a launcher: an MPI program run as a singleton over the chosen lower half
  if (existsSync(ringNative)) {
    const single = await launch([ringNative], {}, ["--mpi", "openmpi"]);
    t.equal(single.code, 0, single.stderr);
    t.match(single.stdout, /^rank 0\/1 /, "--mpi openmpi with a program and no launcher runs it as a singleton");
  }
  // a binary built with mpicc.mpich loads mana's libmpich.so.12 in the ranks
  if (existsSync(ringNative) && have("ldd")) {
    const l = await launch(["mpirun.openmpi", "-n", "1", "sh", "-c", `ldd ${ringNative} | grep libmpich`]);
    t.match(l.stdout, new RegExp(`libmpich\\.so\\.12 => ${shimLib.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}/libmpich\\.so\\.12`), "libmpich.so.12 resolves to the shim");
  }
});


