// CheckpointRound against a small fake RoundHost (the interface is internal and narrow): the
// round's own rules, with real files in a temp checkpoint dir. The fake host plays the agents.
import t from "tap";
import { existsSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CheckpointRound, type ImageFacts, type RoundHost, type RoundPhase } from "../src/coordinator/checkpoint-round.js";
import { commitGeneration, type CommitResult } from "../src/store/generations.js";
import type { Manifest } from "../src/store/manifest.js";
import { procInfo } from "../src/rpc/types.js";
import { removeDir, sleep, tempDir } from "./lib/harness.js";

interface Sent {
  suspend: { gen: number; attempt: string; ids: number[] }[];
  write: { gen: number; attempt: string; targets: { procId: number; path: string }[] }[];
  resume: { gen: number; attempt: string; ids: number[] }[];
}

class FakeHost implements RoundHost {
  readonly jobId = "job-test";
  readonly command = "prog";
  readonly fullEvery = 1; // full images only: these tests are about the round, not the chains
  readonly sent: Sent = { suspend: [], write: [], resume: [] };
  readonly lines: string[] = [];
  phase: RoundPhase | null = null;
  commitDelayMs = 0;
  unreachable: number[] = [];
  constructor(
    readonly ckptDir: string,
    readonly phaseTimeoutMs: number,
  ) {}
  log = (msg: string): void => {
    this.lines.push(msg);
  };
  setPhase(p: RoundPhase | null): void {
    this.phase = p;
  }
  sendSuspend(gen: number, attempt: string, ids: number[]): number[] {
    this.sent.suspend.push({ gen, attempt, ids });
    return this.unreachable;
  }
  sendWrite(gen: number, attempt: string, targets: { procId: number; path: string }[]): { compress: number; unreachable: number[] } {
    this.sent.write.push({ gen, attempt, targets });
    return { compress: 0, unreachable: this.unreachable };
  }
  sendResume(gen: number, attempt: string, ids: number[]): void {
    this.sent.resume.push({ gen, attempt, ids });
  }
  sendKill(): void {}
  describeProc(id: number): string {
    return `process ${id}`;
  }
  inspectImage(file: string): ImageFacts {
    const size = statSync(file).size;
    return { fileSize: size, headerHash: "h", rawBytes: size, storedBytes: size, parent: "", parentGeneration: 0, refBytes: 0 };
  }
  async commit(partialDir: string, manifest: Manifest): Promise<CommitResult> {
    await sleep(this.commitDelayMs);
    return commitGeneration(this.ckptDir, partialDir, manifest);
  }
}

const tmp = tempDir("round");
t.teardown(() => removeDir(tmp));
let n = 0;
const newDir = (): string => join(tmp, `ck${n++}`);
const procs = [procInfo({ procId: 0, pid: 100, host: "h" }), procInfo({ procId: 1, pid: 101, host: "h" })];
const until = async (what: string, ok: () => boolean): Promise<void> => {
  for (let i = 0; i < 400 && !ok(); i++) await sleep(5);
  if (!ok()) throw new Error(`timed out: ${what}`);
};

/** Plays a well-behaved agent for one round: suspend, write the images, resume. */
async function answerAll(h: FakeHost, r: CheckpointRound): Promise<void> {
  await until("suspend", () => h.sent.suspend.length > 0);
  for (const id of r.procIds) r.onSuspended({ procId: id, generation: r.generation, attempt: r.attempt, error: "" });
  await until("write", () => h.sent.write.length > 0);
  for (const tg of (h.sent.write[0] as Sent["write"][number]).targets) {
    writeFileSync(tg.path, `image of ${tg.procId}\n`);
    r.onWritten({ procId: tg.procId, generation: r.generation, attempt: r.attempt, error: "", rawBytes: 10, storedBytes: 10, fileSize: 10, millis: 1 });
  }
  await until("resume", () => h.sent.resume.length > 0);
  for (const id of r.procIds) r.onResumed({ procId: id, generation: r.generation, attempt: r.attempt });
}

t.test("every command carries the round's attempt id", async (t) => {
  const h = new FakeHost(newDir(), 2000);
  const r = new CheckpointRound(h, 1, procs, false);
  await answerAll(h, r);
  const res = await r.done;
  t.ok(res.ok, res.error);
  t.match(r.attempt, /^1\.[0-9a-f]{8}$/);
  t.same([h.sent.suspend[0]?.attempt, h.sent.write[0]?.attempt, h.sent.resume[0]?.attempt], [r.attempt, r.attempt, r.attempt]);
});

t.test("answers of another attempt are ignored; late answers after an abort change nothing", async (t) => {
  const h = new FakeHost(newDir(), 300);
  const r = new CheckpointRound(h, 3, procs, false);
  await until("suspend", () => h.sent.suspend.length > 0);
  // an answer from an earlier, aborted attempt of the same generation number must not count
  for (const id of r.procIds) r.onSuspended({ procId: id, generation: 3, attempt: "3.deadbeef", error: "" });
  await sleep(50);
  t.equal(h.sent.write.length, 0, "stale SUSPENDED answers did not move the round on");
  const res = await r.done; // times out in SUSPENDING
  t.notOk(res.ok);
  t.match(res.error, /timed out .* to suspend/);
  const partials = readdirSync(h.ckptDir).filter((d) => d.startsWith(".gen-"));
  t.same(partials, [], "the partial dir is gone");
  // now the real answers arrive, too late
  for (const id of r.procIds) {
    r.onSuspended({ procId: id, generation: 3, attempt: r.attempt, error: "" });
    r.onWritten({ procId: id, generation: 3, attempt: r.attempt, error: "", rawBytes: 1, storedBytes: 1, fileSize: 1, millis: 1 });
  }
  t.equal(r.written.size, 0, "a late WRITTEN is not recorded");
  t.equal(h.sent.write.length, 0, "nor does it start a write");
  t.notOk(existsSync(join(h.ckptDir, "gen-000003")), "no gen-000003");
  t.same(h.sent.resume.map((x) => x.ids), [[0, 1]], "the suspended processes were resumed once");
});

t.test("a commit slower than the phase timeout is awaited, never cut off", async (t) => {
  const h = new FakeHost(newDir(), 100);
  h.commitDelayMs = 400; // four phase timeouts
  const r = new CheckpointRound(h, 7, procs, false);
  await answerAll(h, r);
  const res = await r.done;
  t.ok(res.ok, `committed (${res.error})`);
  const gen = join(h.ckptDir, "gen-000007");
  t.same(readdirSync(gen).sort(), ["manifest.json", "rank-00000.img", "rank-00001.img"], "gen-000007 has all its files");
  t.equal(readFileSync(join(gen, "rank-00001.img"), "utf8"), "image of 1\n");
  t.equal(readlinkSync(join(h.ckptDir, "latest")), "gen-000007");
  t.same(readdirSync(h.ckptDir).filter((d) => d.startsWith(".")), [], "no partial dir left");
  t.match(h.lines.join("\n"), /takes longer than 0\.1 s; waiting for it/, "the slow commit is reported");
});

t.test("a process without an agent fails the round at once, not at the timeout", async (t) => {
  const h = new FakeHost(newDir(), 60_000);
  const r = new CheckpointRound(h, 2, procs, false);
  await until("suspend", () => h.sent.suspend.length > 0);
  h.unreachable = [1];
  r.onSuspended({ procId: 0, generation: 2, attempt: r.attempt, error: "" });
  r.onSuspended({ procId: 1, generation: 2, attempt: r.attempt, error: "" });
  const started = Date.now();
  const res = await r.done;
  t.notOk(res.ok);
  t.match(res.error, /process 1 cannot be asked to write its image: its agent is gone/);
  t.ok(Date.now() - started < 5000, "no wait for the 60 s phase timeout");
});

t.test("processes that end together during a round are named together, at once", async (t) => {
  const h = new FakeHost(newDir(), 60_000);
  const r = new CheckpointRound(h, 4, procs, false);
  await until("suspend", () => h.sent.suspend.length > 0);
  r.onSuspended({ procId: 0, generation: 4, attempt: r.attempt, error: "" });
  t.equal(r.suspended.size, 1, "one of two suspended (what status shows)");
  const started = Date.now();
  // an MPI launcher ends the other ranks when one dies: their exits arrive within moments
  r.onProcGone(1, "was killed by SIGKILL");
  await sleep(20);
  r.onProcGone(0, "ended");
  const res = await r.done;
  t.notOk(res.ok);
  t.equal(res.error, "checkpoint generation 4 aborted: process 1 was killed by SIGKILL, process 0 ended during the checkpoint");
  t.ok(Date.now() - started < 5000, "no wait for the 60 s phase timeout");
  t.same(readdirSync(h.ckptDir).filter((d) => d.startsWith(".gen-")), [], "the partial dir is gone");
  t.same(h.sent.resume, [], "nobody is left to resume");
});

t.test("a process that ends during the commit leaves a whole generation", async (t) => {
  const h = new FakeHost(newDir(), 60_000);
  h.commitDelayMs = 400; // longer than the wait for others to end too
  const r = new CheckpointRound(h, 5, procs, false);
  await until("suspend", () => h.sent.suspend.length > 0);
  for (const id of r.procIds) r.onSuspended({ procId: id, generation: 5, attempt: r.attempt, error: "" });
  await until("write", () => h.sent.write.length > 0);
  for (const tg of (h.sent.write[0] as Sent["write"][number]).targets) {
    writeFileSync(tg.path, `image of ${tg.procId}\n`);
    r.onWritten({ procId: tg.procId, generation: 5, attempt: r.attempt, error: "", rawBytes: 10, storedBytes: 10, fileSize: 10, millis: 1 });
  }
  await until("commit", () => h.phase === "COMMITTING");
  r.onProcGone(1, "was killed by SIGKILL");
  await until("resume", () => h.sent.resume.length > 0);
  r.onResumed({ procId: 0, generation: 5, attempt: r.attempt });
  const res = await r.done;
  t.ok(res.ok, `committed (${res.error})`);
  t.equal(readlinkSync(join(h.ckptDir, "latest")), "gen-000005");
  t.ok(Date.now() - r.startedMs < 5000, "the round ended without waiting for the gone process to resume");
  t.notMatch(h.lines.join("\n"), /during the checkpoint/, "no abort is logged");
});
