// One checkpoint generation, from SUSPEND to commit and RESUME. Any error, process exit or
// phase timeout before the commit aborts it: the partial dir is removed, the suspended
// processes are resumed, `latest` is untouched, and the error goes to whoever waits (a
// --bcheckpoint client). Each round is one *attempt* with an id of its own; answers carrying
// another attempt's id (late answers to an aborted round) are ignored.
import { randomBytes } from "node:crypto";
import * as path from "node:path";
import { MANA_VERSION } from "../config.js";
import { errorMessage } from "../errors.js";
import * as fs from "node:fs";
import { createPartialDir, genDirName, listGenerations, removeDirQuietly, writeRestartScript, type CommitResult } from "../store/generations.js";
import { MANA_BIN } from "../paths.js";
import { imageName, MANIFEST_NAME, parseManifest, type Manifest, type ManifestMpi, type ManifestProc } from "../store/manifest.js";
import type { CheckpointReply, MpiJob, Progress, ProcInfo, Resumed, Suspended, Written } from "../rpc/types.js";
import type { Logger } from "./log.js";

/** How long a round waits after a process is gone for others to go too (one error names all). */
const GONE_SETTLE_MS = 200;
/** Gone processes an error names one by one. */
const GONE_LISTED = 4;

export type RoundPhase = "SUSPENDING" | "WRITING" | "COMMITTING" | "RESUMING" | "ABORTING";

/** What a round needs from the coordinator (kept narrow so the round can be read alone). */
export interface RoundHost {
  readonly ckptDir: string;
  readonly jobId: string;
  readonly command: string;
  readonly phaseTimeoutMs: number;
  /** A full image every N generations per process, incremental ones in between (1 = always full). */
  readonly fullEvery: number;
  /** The MPI job (flavour, launcher) for the manifest; null for plain processes. */
  mpiJob?(): MpiJob | null;
  setPhase(phase: RoundPhase | null): void;
  /** Returns the procIds that could not be sent to (their agent is gone). */
  sendSuspend(generation: number, attempt: string, procIds: number[]): number[];
  /** Returns the compress level used and the procIds that could not be sent to. */
  sendWrite(generation: number, attempt: string, targets: { procId: number; path: string; parent?: string }[]): { compress: number; unreachable: number[] };
  sendResume(generation: number, attempt: string, procIds: number[]): void;
  sendKill(procIds: number[]): void;
  /** Header facts of a written image (the coordinator reads it with the native reader). */
  inspectImage(file: string): ImageFacts;
  /**
   * Makes the partial dir generation N (store/generations.ts commitGeneration). The round
   * never cuts it off: once started, the rename may happen at any moment, so removing the
   * partial dir before the promise settles could leave a gen-N without its images.
   */
  commit(partialDir: string, manifest: Manifest): Promise<CommitResult>;
  /** One-line description for error messages: "process 0 (pid 123 on node1, ...)". */
  describeProc(procId: number): string;
  log: Logger;
}

export interface ImageFacts {
  fileSize: number;
  headerHash: string;
  rawBytes: number;
  storedBytes: number;
  /** "" for a full image */
  parent: string;
  parentGeneration: number;
  refBytes: number;
}

interface PhaseWait {
  what: string; // "suspend", "write its image", "resume"
  pending: Set<number>;
  resolve: () => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

export class CheckpointRound {
  readonly startedMs = Date.now();
  phase: RoundPhase = "SUSPENDING";
  partialDir = "";
  readonly progress = new Map<number, { rawDone: number; rawTotal: number }>();
  /** Processes that answered SUSPEND (an MPI rank does so once drained and parked). */
  readonly suspended = new Set<number>();
  readonly written = new Map<number, Written>();
  readonly done: Promise<CheckpointReply>;
  /** Sent with every command of this round and echoed by the agents: "<generation>.<nonce>". */
  readonly attempt: string;
  private finished = false;
  private wait: PhaseWait | null = null;
  /** procId -> "process 1 (pid 123 on node1) was killed by SIGKILL", in the order reported */
  private readonly gone = new Map<number, string>();
  private goneTimer: NodeJS.Timeout | null = null;
  private suspendSent: number[] = [];

  constructor(
    private readonly host: RoundHost,
    readonly generation: number,
    readonly procs: ProcInfo[],
    private readonly killAfter: boolean,
  ) {
    this.attempt = `${generation}.${randomBytes(4).toString("hex")}`;
    this.done = this.run();
  }

  /** An answer belongs to this round only if it names this attempt and the round is live. */
  private mine(attempt: string): boolean {
    return !this.finished && attempt === this.attempt;
  }

  get procIds(): number[] {
    return this.procs.map((p) => p.procId);
  }

  onSuspended(s: Suspended): void {
    if (!this.mine(s.attempt)) return;
    if (s.error) this.fail(`${this.host.describeProc(s.procId)} could not suspend: ${s.error}`);
    else {
      this.suspended.add(s.procId);
      this.arrived("SUSPENDING", s.procId);
    }
  }

  onProgress(p: Progress): void {
    if (!this.mine(p.attempt)) return;
    this.progress.set(p.procId, { rawDone: p.rawDone, rawTotal: p.rawTotal });
  }

  onWritten(w: Written): void {
    if (!this.mine(w.attempt)) return;
    if (w.error) {
      this.fail(`${this.host.describeProc(w.procId)} could not write its image: ${w.error}`);
      return;
    }
    this.written.set(w.procId, w);
    this.progress.set(w.procId, { rawDone: w.rawBytes, rawTotal: w.rawBytes });
    this.arrived("WRITING", w.procId);
  }

  onResumed(r: Resumed): void {
    if (!this.mine(r.attempt)) return;
    this.arrived("RESUMING", r.procId);
  }

  /** A process exited or its agent vanished (called while the host still knows the process). */
  onProcGone(procId: number, why: string): void {
    if (this.finished || !this.procIds.includes(procId)) return;
    this.gone.set(procId, `${this.host.describeProc(procId)} ${why}`);
    if (this.phase === "RESUMING" || this.phase === "ABORTING") {
      this.arrived(this.phase, procId);
      return;
    }
    // The ranks of an MPI job die together (the launcher ends the others): a moment's wait lets
    // the error name them all, not only whichever exit happened to be reported first.
    // Gone during the commit: the images are whole, the commit goes on (and RESUMING skips it).
    this.goneTimer ??= setTimeout(() => {
      if (this.phase !== "RESUMING" && this.phase !== "ABORTING") this.fail(this.goneMessage());
    }, GONE_SETTLE_MS);
  }

  private goneMessage(): string {
    const all = [...this.gone.values()];
    const more = all.length > GONE_LISTED ? ` (and ${all.length - GONE_LISTED} more processes ended)` : "";
    return `${all.slice(0, GONE_LISTED).join(", ")}${more} during the checkpoint`;
  }

  private arrived(phase: RoundPhase, procId: number): void {
    if (this.phase !== phase || !this.wait) return;
    this.wait.pending.delete(procId);
    if (this.wait.pending.size === 0) {
      const w = this.wait;
      this.wait = null;
      clearTimeout(w.timer);
      w.resolve();
    }
  }

  private fail(message: string): void {
    if (!this.wait) return; // between phases: the next await will notice via `gone`
    const w = this.wait;
    this.wait = null;
    clearTimeout(w.timer);
    w.reject(new Error(message));
  }

  private waitFor(phase: RoundPhase, what: string, procIds: number[]): Promise<void> {
    const pending = new Set(procIds.filter((id) => !this.gone.has(id)));
    if (phase !== "RESUMING") {
      if (procIds.some((id) => this.gone.has(id))) return Promise.reject(new Error(this.goneMessage()));
    }
    if (pending.size === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const timeoutMs = this.host.phaseTimeoutMs;
      const timer = setTimeout(() => {
        if (this.wait?.timer !== timer) return;
        this.wait = null;
        const first = [...pending][0] as number;
        const more = pending.size > 1 ? ` (and ${pending.size - 1} more)` : "";
        reject(
          new Error(
            `timed out after ${(timeoutMs / 1000).toFixed(1)} s waiting for ${this.host.describeProc(first)}${more} to ${what}`,
          ),
        );
      }, timeoutMs);
      this.wait = { what, pending, resolve, reject, timer };
    });
  }

  /** ms spent in each phase, logged at commit (control-plane cost vs. image I/O). */
  readonly phaseMs: Partial<Record<RoundPhase, number>> = {};
  private phaseStart = Date.now();

  private setPhase(phase: RoundPhase): void {
    const now = Date.now();
    this.phaseMs[this.phase] = now - this.phaseStart;
    this.phaseStart = now;
    this.phase = phase;
    this.host.setPhase(phase);
  }

  private async run(): Promise<CheckpointReply> {
    const gen = this.generation;
    const ids = this.procIds;
    const h = this.host;
    h.log(`checkpoint generation ${gen}: ${ids.length} process(es)`);
    try {
      this.partialDir = await createPartialDir(h.ckptDir, gen);

      this.setPhase("SUSPENDING");
      const suspended = this.waitFor("SUSPENDING", "suspend", ids);
      this.suspendSent = ids;
      this.unreachable(h.sendSuspend(gen, this.attempt, ids), "suspend");
      await suspended;
      await testPause("suspended", h, gen);

      this.setPhase("WRITING");
      this.planned = this.planParents();
      const targets = ids.map((procId) => ({ procId, path: path.join(this.partialDir, imageName(procId)), parent: this.planned.get(procId)?.rel ?? "" }));
      const written = this.waitFor("WRITING", "write its image", ids);
      const sent = h.sendWrite(gen, this.attempt, targets);
      this.unreachable(sent.unreachable, "write its image");
      await written;

      this.setPhase("COMMITTING");
      const manifest = this.buildManifest(sent.compress);
      // No timeout here (see RoundHost.commit): a slow commit is only reported.
      const slow = setTimeout(
        () => h.log(`checkpoint generation ${gen}: the commit (fsync of ${this.partialDir}) takes longer than ${(h.phaseTimeoutMs / 1000).toFixed(1)} s; waiting for it`),
        h.phaseTimeoutMs,
      );
      let commit: CommitResult;
      try {
        commit = await h.commit(this.partialDir, manifest);
      } finally {
        clearTimeout(slow);
      }
      this.partialDir = "";
      const commitMs = Date.now() - this.startedMs;
      this.phaseMs.COMMITTING = Date.now() - this.phaseStart;
      const ph = this.phaseMs;
      h.log(
        `checkpoint generation ${gen}: committed ${commit.dir} (${commit.totalBytes} bytes, ${commitMs} ms: suspend ${ph.SUSPENDING ?? 0}, write ${ph.WRITING ?? 0}, commit ${ph.COMMITTING} ms)`,
      );
      await writeRestartScript(h.ckptDir, MANA_BIN, h.jobId).catch((err: unknown) =>
        h.log(`could not write the restart script in ${h.ckptDir}: ${errorMessage(err)}`),
      );

      if (this.killAfter) {
        h.sendKill(ids);
      } else {
        this.setPhase("RESUMING");
        const resumed = this.waitFor("RESUMING", "resume", ids);
        h.sendResume(gen, this.attempt, ids);
        // The generation is durable already; a slow resume is reported, not fatal.
        await resumed.catch((err: unknown) => h.log(`checkpoint generation ${gen}: ${errorMessage(err)}`));
      }
      return {
        ok: true,
        error: "",
        generation: gen,
        dir: commit.dir,
        bytes: commit.totalBytes,
        millis: Date.now() - this.startedMs,
        numProcs: ids.length,
      };
    } catch (err) {
      const msg = errorMessage(err).replace(/^mana: /, "");
      this.phase = "ABORTING";
      h.setPhase("ABORTING");
      if (this.partialDir) await removeDirQuietly(this.partialDir);
      const toResume = this.suspendSent.filter((id) => !this.gone.has(id));
      if (toResume.length) h.sendResume(gen, this.attempt, toResume);
      h.log(`checkpoint generation ${gen} aborted: ${msg}`);
      return { ok: false, error: `checkpoint generation ${gen} aborted: ${msg}`, generation: gen, dir: "", bytes: 0, millis: Date.now() - this.startedMs, numProcs: ids.length };
    } finally {
      this.finished = true;
      if (this.goneTimer) clearTimeout(this.goneTimer);
      if (this.wait) clearTimeout(this.wait.timer);
      this.wait = null;
      h.setPhase(null);
    }
  }

  /** A process whose agent is gone cannot answer: fail now rather than at the phase timeout. */
  private unreachable(ids: number[], what: string): void {
    const first = ids[0];
    if (first === undefined) return;
    const more = ids.length > 1 ? ` (and ${ids.length - 1} more)` : "";
    this.fail(`${this.host.describeProc(first)}${more} cannot be asked to ${what}: its agent is gone`);
  }

  /** Parent image and resulting chain depth per process, for incremental images. */
  private planned = new Map<number, { rel: string; depth: number }>();

  /**
   * The previous committed generation's image of each process becomes its parent unless the
   * chain would reach fullEvery images. Read from disk (its manifest), so it also holds after a
   * coordinator restart. A parent that turns out unusable only makes libmana write a full image.
   */
  private planParents(): Map<number, { rel: string; depth: number }> {
    const plan = new Map<number, { rel: string; depth: number }>();
    const fullEvery = this.host.fullEvery;
    if (fullEvery <= 1) return plan;
    const prev = listGenerations(this.host.ckptDir).filter((g) => g < this.generation).pop();
    if (prev === undefined) return plan;
    const mfile = path.join(this.host.ckptDir, genDirName(prev), MANIFEST_NAME);
    let m: Manifest;
    try {
      m = parseManifest(fs.readFileSync(mfile, "utf8"), mfile);
    } catch {
      return plan; // a damaged previous generation: full images
    }
    for (const mp of m.procs) {
      const depth = (mp.chainDepth ?? 0) + 1;
      if (depth >= fullEvery || !this.procIds.includes(mp.procId)) continue;
      // relative to the image's own dir: a sibling of the final gen dir, like the partial dir
      plan.set(mp.procId, { rel: path.join("..", genDirName(prev), mp.image), depth });
    }
    return plan;
  }

  private buildManifest(compress: number): Manifest {
    const h = this.host;
    const procs: ManifestProc[] = this.procs.map((p) => {
      const image = imageName(p.procId);
      const file = path.join(this.partialDir, image);
      // The native reader validates the header as the restore program will; a bad image aborts here.
      const d = h.inspectImage(file);
      const w = this.written.get(p.procId);
      return {
        procId: p.procId,
        host: p.host,
        pid: p.pid,
        image,
        fileSize: d.fileSize,
        headerHash: d.headerHash,
        rawBytes: d.rawBytes,
        storedBytes: w?.storedBytes ?? d.storedBytes,
        command: p.command,
        // libmana falls back to a full image when the parent cannot be used: trust the header
        parentGeneration: d.parent ? d.parentGeneration : null,
        chainDepth: d.parent ? (this.planned.get(p.procId)?.depth ?? 1) : 0,
        refBytes: d.refBytes,
      };
    });
    const now = Date.now();
    const job = h.mpiJob?.();
    const flavour: ManifestMpi["flavour"] | undefined = job?.flavour === "mpich" || job?.flavour === "openmpi" ? job.flavour : undefined;
    // an MPI generation: procs are the ranks, procId = rank (the coordinator checked 0..N-1)
    const mpi: ManifestMpi | undefined = flavour
      ? { flavour, size: procs.length, launcherArgv: job?.launcherArgv ?? [], rankHosts: [...procs].sort((a, b) => a.procId - b.procId).map((p) => p.host) }
      : undefined;
    return {
      manaVersion: MANA_VERSION,
      jobId: h.jobId,
      generation: this.generation,
      command: h.command,
      created: new Date(now).toISOString(),
      createdUnixMs: now,
      flavour: flavour ?? "none",
      ...(mpi ? { mpi } : {}),
      numProcs: procs.length,
      hosts: [...new Set(procs.map((p) => p.host))],
      procs,
      totalBytes: procs.reduce((s, p) => s + p.fileSize, 0),
      compress,
    };
  }
}

/**
 * Test-only hook: MANA_TEST_PAUSE_AFTER=POINT[@GEN] makes a round (of generation GEN only, if
 * given) wait up to its phase timeout at POINT, so tests can kill the coordinator there:
 * "suspended" (every process suspended), "fsynced" (the commit has the manifest and images
 * fsynced, right before the rename). Logs one line so a forgotten setting is visible.
 */
export async function testPause(point: string, h: Pick<RoundHost, "log" | "phaseTimeoutMs">, generation: number): Promise<void> {
  const v = process.env.MANA_TEST_PAUSE_AFTER;
  if (v !== point && v !== `${point}@${generation}`) return;
  h.log(`test hook MANA_TEST_PAUSE_AFTER=${v}: pausing ${h.phaseTimeoutMs} ms`);
  await new Promise((r) => setTimeout(r, h.phaseTimeoutMs));
}
