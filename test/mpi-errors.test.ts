// Bad input around MPI jobs, each answered with one line and a non-zero status: an unknown
// --mpi, an --mpi the launcher cannot speak, an MPI or srun that is not installed, a launcher
// name that does not exist or cannot be classified, a shim that is not built, and the shim's
// own refusals inside the ranks (a lower half that cannot be loaded, an unknown MANA_MPI).
// Also the launcher detection that needs no MPI at all (fake srun and mpirun scripts), and
// mana mpicc/mpicxx/mpif90's command lines and exit statuses.
import t, { type Test } from "tap";
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildIfStale, lines, mana, repo, startCoordinator } from "./lib/cli.js";

buildIfStale();

const tmp = mkdtempSync(join(process.env.MANA_TEST_TMP ?? tmpdir(), "mana-mpierr-"));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
const shimLib = join(repo, "mpi-shim", "out", "lib");
const shimInc = join(repo, "mpi-shim", "include");
const shimBuilt = existsSync(join(shimLib, "libmpi.so.12")) && existsSync(join(shimLib, "lh_proxy-mpich")) && existsSync(join(shimLib, "lh_proxy-openmpi"));
const have = (cmd: string): boolean => spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;

// One coordinator for the jobs that do start (one per launch would cost seconds each).
let coordPort = 0;
t.before(async () => {
  const c = await startCoordinator(tmp);
  coordPort = c.port;
  t.teardown(c.stop);
});
const launchJoin = (args: string[], env: NodeJS.ProcessEnv = {}) => mana(["launch", "--join", "--coord-port", String(coordPort), ...args], env);

/** A directory for PATH holding only the named commands (as symlinks) and scripts. */
function pathDir(name: string, links: string[], scripts: Record<string, string> = {}): string {
  const d = join(tmp, name);
  mkdirSync(d);
  for (const l of links) {
    const found = spawnSync("sh", ["-c", `command -v ${l}`], { encoding: "utf8" }).stdout.trim();
    if (found) symlinkSync(found, join(d, l));
  }
  for (const [n, body] of Object.entries(scripts)) {
    writeFileSync(join(d, n), `#!/bin/sh\n${body}\n`);
    chmodSync(join(d, n), 0o755);
  }
  return d;
}

/** mana launch that must fail before any coordinator or program starts. */
async function refused(t: Test, args: string[], env: NodeJS.ProcessEnv, code: number, want: string | RegExp): Promise<void> {
  const r = await mana(["launch", "--coord-port", "0", "--ckptdir", tmp, ...args], env);
  t.equal(r.code, code, `exit status ${code} for ${args.join(" ")}`);
  t.equal(lines(r.stderr).length, 1, `one line: ${r.stderr}`);
  if (typeof want === "string") t.equal(r.stderr.trim(), want);
  else t.match(r.stderr.trim(), want);
  t.equal(r.stdout, "", "nothing on stdout");
}

t.test("launch refuses bad MPI input with one line", { skip: shimBuilt ? false : "mpi-shim is not built" }, async (t) => {
  await refused(t, ["--mpi", "lam", "--", "/bin/true"], {}, 2, 'mana launch: --mpi must be mpich or openmpi, not "lam" (see mana launch --help)');
  await refused(t, ["--mpi=", "--", "mpirun.mpich", "-n", "2", "/bin/true"], {}, 2, /^mana launch: --mpi must be mpich or openmpi, not ""/);
  if (have("mpirun.mpich")) {
    await refused(
      t,
      ["--mpi", "openmpi", "--", "mpirun.mpich", "-n", "2", "/bin/true"],
      {},
      2,
      "mana launch: --mpi openmpi does not match mpirun.mpich, which is MPICH's launcher: the lower half must speak its launcher's PMI (use mpirun.openmpi, or drop --mpi)",
    );
  }
  // a host without Open MPI: a PATH on which only MPICH's launcher is found
  const onlyMpich = pathDir("only-mpich", ["mpirun.mpich", "mpiexec.hydra"]);
  await refused(
    t,
    ["--mpi", "openmpi", "--", "mpirun.openmpi", "-n", "2", "/bin/true"],
    { PATH: onlyMpich },
    1,
    "mana launch: mpirun.openmpi: not found on PATH; Open MPI does not seem to be installed here (Debian package openmpi-bin)",
  );
  await refused(t, ["--", "mpiexec.mpich", "-n", "2", "/bin/true"], { PATH: pathDir("no-mpi", []) }, 1, "mana launch: mpiexec.mpich: not found on PATH; MPICH does not seem to be installed here (Debian package mpich)");
  // srun is not installed on this machine (and hidden in case it is)
  await refused(t, ["--", "srun", "-n", "2", "/bin/true"], { PATH: onlyMpich }, 1, "mana launch: srun: Slurm's srun is not installed here (not found on PATH); run the job with mpirun or mpiexec instead");
  // a launcher name that does not exist anywhere
  await refused(t, ["--", "mpiexec.nosuch", "-n", "2", "/bin/true"], {}, 1, "mana launch: mpiexec.nosuch: not found on PATH; no MPI launcher of that name is installed here");
  await refused(t, ["--", join(tmp, "nowhere", "mpirun"), "-n", "2", "/bin/true"], {}, 1, /^mana launch: \/.*\/nowhere\/mpirun: no such MPI launcher \(no executable file there\)$/);
  // an mpirun whose --version names no MPI
  const odd = pathDir("odd", [], { mpirun: 'echo "some launcher 1.0"; exit 0' });
  await refused(t, ["--", "mpirun", "-n", "2", "/bin/true"], { PATH: `${odd}:/usr/bin:/bin` }, 1, /^mana launch: cannot tell which MPI mpirun \(.*\/odd\/mpirun\) belongs to: .*say --mpi mpich or --mpi openmpi$/);
  // the shim not built (another build dir)
  const empty = join(tmp, "no-shim");
  mkdirSync(empty);
  await refused(t, ["--", "mpirun.mpich", "-n", "2", "/bin/true"], { MANA_MPI_SHIM: empty }, 1, `mana launch: mana's MPI shim ${empty}/out/lib/libmpi.so.12 is missing; build it with npm run build (or make -C mpi-shim)`);
});

t.test("launcher detection without a real MPI: fake srun and mpirun", { skip: shimBuilt ? false : "mpi-shim is not built" }, async (t) => {
  const show = 'echo "mpi=$MANA_MPI lib=${LD_LIBRARY_PATH%%:*} over=$OMPI_MCA_rmaps_base_oversubscribe args=$*"';
  const fake = pathDir("fake", ["sh", "env"], {
    srun: show,
    // an mpirun the name does not classify: --version decides (Hydra = MPICH)
    mpirun: `if [ "$1" = --version ]; then echo "HYDRA build details:"; echo "    Version: 4.0.2"; exit 0; fi\n${show}`,
    mpiexec: `if [ "$1" = --version ]; then echo "mpiexec (OpenRTE) 4.1.4"; exit 0; fi\n${show}`,
  });
  const env = { PATH: fake };
  const launch = (args: string[]) => launchJoin(args, env);
  const s = await launch(["--", "srun", "-n", "2", "./app"]);
  t.equal(s.code, 0, s.stderr);
  t.equal(s.stdout, `mpi=mpich lib=${shimLib} over= args=-n 2 ./app\n`, "srun: the MPICH lower half by default (Slurm's PMI2)");
  const so = await launch(["--mpi", "openmpi", "--", "srun", "--mpi=pmix", "./app"]);
  t.equal(so.code, 0, so.stderr);
  t.equal(so.stdout, `mpi=openmpi lib=${shimLib} over= args=--mpi=pmix ./app\n`, "srun with --mpi openmpi");
  const h = await launch(["--", "mpirun", "-n", "2", "./app"]);
  t.equal(h.stdout, `mpi=mpich lib=${shimLib} over= args=-n 2 ./app\n`, "an mpirun whose --version says HYDRA is MPICH's");
  const o = await launch(["--", "mpiexec", "-n", "2", "./app"]);
  t.equal(o.stdout, `mpi=openmpi lib=${shimLib} over=1 args=-n 2 ./app\n`, "an mpiexec whose --version says OpenRTE is Open MPI's");
});

t.test("the shim's own errors reach the user as one line per rank", { skip: shimBuilt && have("mpirun.mpich") && have("mpicc.mpich") ? false : "needs mpi-shim, mpirun.mpich and mpicc.mpich" }, async (t) => {
  const prog = join(tmp, "ring-native");
  const cc = spawnSync("mpicc.mpich", ["-o", prog, join(repo, "test", "programs", "mpi", "ring.c")], { encoding: "utf8" });
  t.equal(cc.status, 0, cc.stderr);
  const launch = (args: string[], env: NodeJS.ProcessEnv = {}) => launchJoin(["--", ...args], env);
  const gone = join(tmp, "no-such-lh_proxy");
  const p = await launch(["mpirun.mpich", "-n", "1", prog], { MANA_LH_PROXY: gone });
  t.not(p.code, 0, "a lower half that cannot be loaded fails the job");
  t.equal(p.stdout, "", "the program never runs");
  t.same(lines(p.stderr), [`mana: cannot start the mpich lower half: ${gone}: No such file or directory`], "one line from the rank");
  const b = await launch(["mpirun.mpich", "-n", "1", "env", "MANA_MPI=bogus", prog]);
  t.not(b.code, 0);
  t.same(lines(b.stderr), ["mana: MANA_MPI=bogus is not an MPI mana knows; use mpich or openmpi"], "an unknown MANA_MPI in a rank is one line");
});

t.test("mana mpicc, mpicxx, mpif90", async (t) => {
  const link = `-L${shimLib} -lmpi -Wl,-rpath,${shimLib}`;
  const c = await mana(["mpicc", "-show", "-O2", "-o", "app", "app.c"]);
  t.equal(c.code, 0);
  t.equal(c.stdout, `cc -I${shimInc} -O2 -o app app.c ${link}\n`, "mpicc -show: include, then the user's args, then the shim's libmpi");
  const only = await mana(["mpicc", "-show", "-c", "app.c"]);
  t.equal(only.stdout, `cc -I${shimInc} -c app.c\n`, "no link flags with -c");
  const pre = await mana(["mpicxx", "-show", "-E", "app.cc"], { MANA_CXX: "g++ -std=c++17" });
  t.equal(pre.stdout, `g++ -std=c++17 -I${shimInc} -E app.cc\n`, "mpicxx uses $MANA_CXX; no link flags with -E");
  const f = await mana(["mpif90", "-show", "-o", "app", "app.f90"]);
  t.equal(f.code, 0);
  if (existsSync(join(shimLib, "libmpifort.so.12"))) {
    t.match(f.stdout, new RegExp(`^gfortran -I${shimInc}.* -o app app\\.f90 -L${shimLib} -lmpifort -lmpi `), "mpif90 links the Fortran bindings");
  } else {
    t.equal(f.stdout, `gfortran -I${shimInc} -o app app.f90 ${link}\n`);
    t.match(f.stderr, /^mana mpif90: mana's Fortran MPI bindings are not built \(.*libmpifort\.so\.12 is missing\)/, "mpif90 says the Fortran bindings are missing");
  }
  for (const w of ["mpicc", "mpicxx", "mpif90"]) {
    const h = await mana([w, "--help"]);
    t.equal(h.code, 0);
    t.match(h.stdout, new RegExp(`^usage: mana ${w} `), `${w} --help`);
  }
  // the compiler's exit status is the wrapper's
  const seven = join(tmp, "cc-seven");
  writeFileSync(seven, "#!/bin/sh\nexit 7\n");
  chmodSync(seven, 0o755);
  const s = await mana(["mpicc", "app.c"], { MANA_CC: seven });
  t.equal(s.code, 7, "exit status of $MANA_CC");
  const none = await mana(["mpicc", "app.c"], { MANA_CC: join(tmp, "no-cc") });
  t.equal(none.code, 1);
  t.same(lines(none.stderr), [`mana mpicc: cannot run the compiler ${join(tmp, "no-cc")}: not found (install it, or set $MANA_CC)`]);
  if (have("cc") && shimBuilt) {
    const bad = join(tmp, "bad.c");
    writeFileSync(bad, "#include <mpi.h>\nint main(void) { return MPI_No_such_call(); }\n");
    const r = await mana(["mpicc", "-Werror=implicit-function-declaration", "-o", join(tmp, "bad"), bad]);
    t.equal(r.code, 1, "a compile error is the compiler's status 1");
  }
});
