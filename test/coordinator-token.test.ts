// The per-job token (DESIGN §5) guards every coordinator, loopback included, and writing it
// never changes the permissions of a directory the user named.
import t from "tap";
import { chmodSync, existsSync, lstatSync, mkdirSync, readFileSync, statSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { Coordinator, ensureBuilt, mana, removeDir, tempDir, waitFor } from "./lib/harness.js";

ensureBuilt();
const tmp = tempDir("token");
t.teardown(() => removeDir(tmp));
const runtime = join(tmp, "rt");
mkdirSync(runtime);
const env = { ...process.env, MANA_TMPDIR: runtime };
const uid = process.getuid?.() ?? 0;

t.test("a loopback coordinator refuses a client without the job token", async (t) => {
  const c = await new Coordinator(join(tmp, "ck1"), [], { env }).start();
  t.teardown(() => c.stop());
  const tokenFile = join(runtime, `mana-${uid}`, `coord-${c.port}.token`);
  t.ok(existsSync(tokenFile), "the token is written to the runtime dir on loopback too");
  t.equal(statSync(tokenFile).mode & 0o777, 0o600, "mode 0600");
  const ok = await c.command(["--status", "--json"]);
  t.equal(ok.code, 0, "the job's user (same runtime dir) gets in");

  const other = join(tmp, "other-rt");
  mkdirSync(other);
  const bad = await mana(["command", "--coord-port", String(c.port), "--status"], { env: { ...process.env, MANA_TMPDIR: other } });
  t.equal(bad.code, 1);
  t.equal(
    bad.stderr,
    `mana command: the coordinator at 127.0.0.1:${c.port} refused the request: missing or wrong job token (run as the job's user, or pass --token-file)\n`,
  );
  const viaFile = await mana(["command", "--coord-port", String(c.port), "--status", "--token-file", tokenFile], { env: { ...process.env, MANA_TMPDIR: other } });
  t.equal(viaFile.code, 0, "--token-file lets a client elsewhere in");
});

t.test("--token-file is written without touching its directory", async (t) => {
  const shared = join(tmp, "shared");
  mkdirSync(shared);
  chmodSync(shared, 0o1777);
  const file = join(shared, "job.token");
  const c = await new Coordinator(join(tmp, "ck2"), ["--token-file", file], { env }).start();
  t.teardown(() => c.stop());
  await waitFor("token file", () => (existsSync(file) ? true : undefined));
  t.equal(statSync(shared).mode & 0o7777, 0o1777, "the user's directory keeps its mode");
  t.equal(statSync(file).mode & 0o777, 0o600, "the token file is 0600");
  t.equal(readFileSync(file, "utf8"), readFileSync(join(runtime, `mana-${uid}`, `coord-${c.port}.token`), "utf8"), "same token in both places");
});

t.test("a runtime dir that is a symlink is refused with one line", async (t) => {
  const base = join(tmp, "trap");
  mkdirSync(join(base, "elsewhere"), { recursive: true });
  symlinkSync(join(base, "elsewhere"), join(base, `mana-${uid}`));
  const d = await mana(["coordinator", "--port", "0", "--ckptdir", join(tmp, "ck3")], { env: { ...process.env, MANA_TMPDIR: base }, timeoutMs: 20_000 });
  t.equal(d.code, 1);
  t.match(d.stderr, new RegExp(`^mana coordinator: the runtime dir ${join(base, `mana-${uid}`)} is a symlink; remove it, or set MANA_TMPDIR`));
  t.equal(d.stderr.trim().split("\n").length, 1, "one line");
  t.ok(lstatSync(join(base, `mana-${uid}`)).isSymbolicLink(), "left alone");
});

t.test("a group-writable runtime dir of ours is made private", async (t) => {
  const base = join(tmp, "loose");
  mkdirSync(join(base, `mana-${uid}`), { recursive: true });
  chmodSync(join(base, `mana-${uid}`), 0o777);
  const c = await new Coordinator(join(tmp, "ck4"), [], { env: { ...process.env, MANA_TMPDIR: base } }).start();
  t.teardown(() => c.stop());
  t.equal(statSync(join(base, `mana-${uid}`)).mode & 0o777, 0o700);
});
