// The job's coordinator: agents and their processes, the checkpoint state machine
//   RUNNING -> SUSPENDING -> WRITING -> COMMITTING -> RESUMING -> RUNNING   (ABORTING on error)
// plus RESTARTING (the restart barrier), interval checkpoints, kill and quit.
import { randomBytes } from "node:crypto";
import * as os from "node:os";
import { LOST_AGENT_GRACE_MS, MANA_VERSION } from "../config.js";
import { BoundedWriter } from "../rpc/bounded-writer.js";
import type {
  AgentCommand,
  AgentEvent,
  CheckpointReply,
  ListReply,
  MpiJob,
  ProcInfo,
  Register,
  StatusReply,
} from "../rpc/types.js";
import { readImage } from "../native.js";
import type { Manifest } from "../store/manifest.js";
import { commitGeneration, listGenerations, genDirName, nextGeneration, removeStale, type CommitResult } from "../store/generations.js";
import { CheckpointRound, testPause, type ImageFacts, type RoundHost, type RoundPhase } from "./checkpoint-round.js";
import type { Logger } from "./log.js";
import * as path from "node:path";

export interface CoordinatorOptions {
  ckptDir: string;
  intervalSecs: number;
  exitOnLast: boolean;
  killAfterCkpt: boolean;
  phaseTimeoutMs: number;
  /** zstd level for agents that did not ask for one. */
  compress: number;
  /** A full image every N generations (default $MANA_FULL_EVERY, else 8; 1 = never incremental). */
  fullEvery?: number;
  host: string;
  port: number;
  log: Logger;
  /** Called once when the coordinator decides to exit (quit, or last process gone). */
  onExit: (code: number) => void;
}

/** The outgoing half of an agent's Attach stream. */
export interface AgentSink {
  write(cmd: AgentCommand, cb?: (err?: Error | null) => void): boolean;
  once(event: "drain", listener: () => void): unknown;
  end(): void;
}

interface AgentConn {
  id: string;
  host: string;
  compress: number;
  writer: BoundedWriter<AgentCommand>;
  sink: AgentSink;
  registered: boolean;
}

interface ProcRecord {
  info: ProcInfo;
  agentId: string;
  lost: boolean;
}

/** Process states (as agents report them) in which the application is frozen by a checkpoint. */
const FROZEN_STATES = new Set(["suspending", "suspended", "writing", "written"]);

/**
 * procIds of MPI launchers start here: ranks are procIds 0..N-1 (their MPI rank), so the
 * launcher that starts them must not take one of those numbers.
 */
export const LAUNCHER_PROC_ID_BASE = 1 << 30;

/** Max commands queued to one agent before it is considered stuck and dropped. */
const AGENT_QUEUE_LIMIT = 10_000;

export class Coordinator implements RoundHost {
  readonly ckptDir: string;
  readonly phaseTimeoutMs: number;
  readonly fullEvery: number;
  readonly log: Logger;
  jobId = "";
  command = "";
  private readonly opts: CoordinatorOptions;
  private readonly startedMs = Date.now();
  private readonly agents = new Map<string, AgentConn>();
  private readonly procs = new Map<number, ProcRecord>();
  private nextProcId = 0;
  private nextLauncherId = LAUNCHER_PROC_ID_BASE;
  /** The MPI job this coordinator runs (from its launcher's agent), else null. */
  private mpi: MpiJob | null = null;
  private hadProcs = false;
  private intervalSecs: number;
  private intervalTimer: NodeJS.Timeout | null = null;
  private lostTimer: NodeJS.Timeout | null = null;
  private round: CheckpointRound | null = null;
  private phase: RoundPhase | null = null;
  private lastGeneration = 0;
  /** Highest generation number ever tried here, committed or not: numbers are never reused. */
  private lastAttempted = 0;
  private lastGenerationDir = "";
  private lastError = "";
  /** expected: the manifest's procIds; the barrier opens when exactly these are restored. */
  private restart: { generation: number; expected: Set<number>; ready: Set<number>; timer: NodeJS.Timeout } | null = null;
  /** Checkpoint requests that arrived during the restart barrier wait for its end. */
  private restartWaiters: (() => void)[] = [];
  private exiting = false;

  constructor(opts: CoordinatorOptions) {
    this.opts = opts;
    this.ckptDir = opts.ckptDir;
    this.phaseTimeoutMs = opts.phaseTimeoutMs;
    this.fullEvery = opts.fullEvery ?? fullEveryFromEnv();
    this.log = opts.log;
    this.intervalSecs = opts.intervalSecs;
    const gens = listGenerations(this.ckptDir);
    if (gens.length) {
      this.lastGeneration = gens[gens.length - 1] as number;
      this.lastGenerationDir = path.join(this.ckptDir, genDirName(this.lastGeneration));
    }
    this.scheduleInterval();
    // A round that died with an earlier coordinator owns nothing any more; its partial dir is
    // ours to remove (older than a phase timeout, so never one of a live coordinator's rounds).
    void removeStale(this.ckptDir, this.phaseTimeoutMs, this.log);
  }

  // ---------- state ----------

  get state(): string {
    if (this.phase) return this.phase;
    if (this.restart) return "RESTARTING";
    return "RUNNING";
  }

  /** The port actually bound (differs from opts.port for --port 0). */
  setListenPort(port: number): void {
    this.opts.port = port;
  }

  setPhase(phase: RoundPhase | null): void {
    this.phase = phase;
  }

  private liveProcs(): ProcRecord[] {
    return [...this.procs.values()].filter((p) => !p.lost).sort((a, b) => a.info.procId - b.info.procId);
  }

  /** What a checkpoint round saves: every live process but MPI launchers. */
  private checkpointable(): ProcRecord[] {
    return this.liveProcs().filter((p) => !p.info.launcher);
  }

  /** The MPI job, for the manifest (RoundHost); null for plain processes. */
  mpiJob(): MpiJob | null {
    return this.mpi;
  }

  /**
   * Why an MPI job cannot be checkpointed right now (one line), or undefined. Every rank of
   * MPI_COMM_WORLD must be in the round: a generation of some ranks could never restart.
   */
  private mpiNotReady(): string | undefined {
    if (!this.mpi) return undefined;
    const live = this.liveProcs();
    const ranks = live.filter((r) => !r.info.launcher && r.info.connected);
    const launchers = live.filter((r) => r.info.launcher);
    // the ranks' own count (MPI_COMM_WORLD's size) beats the launcher's command line
    const told = ranks.map((r) => r.info.mpiSize).filter((n) => n > 0);
    const size = told.length ? Math.max(...told) : this.mpi.size || Math.max(0, ...launchers.map((r) => r.info.mpiSize));
    if (launchers.length === 0 && ranks.length === 0) return undefined; // nothing left: the generic message
    if (size === 0) return `no MPI rank has started yet; try again`;
    if (ranks.length < size) {
      const gone = this.mpiRanksEnded;
      if (gone.size > 0) return `MPI rank ${[...gone][0]} has ended; a job with ${ranks.length} of its ${size} ranks left cannot be checkpointed`;
      // a node that died takes its agent along: its ranks are lost, not late
      const lost = [...this.procs.values()].find((r) => r.lost && !r.info.launcher && r.info.procId < size);
      if (lost) return `MPI rank ${lost.info.procId} (pid ${lost.info.pid || "?"} on ${lost.info.host || "?"}) lost its agent (the node or its mana node-agent died); restart from the last generation to checkpoint again`;
      return `only ${ranks.length} of ${size} MPI ranks have started; try again`;
    }
    const bad = ranks.find((r) => r.info.procId >= size);
    if (bad || ranks.length > size) return `the MPI job has ${size} ranks, but ${ranks.length} processes say they are ranks${bad ? ` (one says rank ${bad.info.procId})` : ""}`;
    return undefined;
  }

  /** Ranks of the MPI job that ended since it (re)started. */
  private readonly mpiRanksEnded = new Set<number>();

  describeProc(procId: number): string {
    const r = this.procs.get(procId);
    if (!r) return `process ${procId}`;
    const where = `pid ${r.info.pid || "?"} on ${r.info.host || "?"}`;
    const why = r.lost
      ? ", its agent is gone"
      : r.info.connected
        ? ""
        : ", not connected to its agent: is libmana preloaded into it?";
    return `process ${procId} (${where}${why})`;
  }

  // ---------- agents ----------

  /** A new Attach stream. Returns the handler for its events and for its end. */
  attachAgent(sink: AgentSink): { onEvent: (ev: AgentEvent) => void; onEnd: (why: string) => void } {
    const conn: AgentConn = {
      id: "",
      host: "",
      compress: -1,
      sink,
      registered: false,
      writer: new BoundedWriter<AgentCommand>(sink, AGENT_QUEUE_LIMIT, () => {
        this.log(`agent ${conn.id || "?"} on ${conn.host || "?"} is not reading its commands; dropping it`);
        sink.end();
      }),
    };
    const onEvent = (ev: AgentEvent): void => {
      try {
        this.handleEvent(conn, ev);
      } catch (err) {
        this.log(`agent ${conn.id}: bad event: ${err instanceof Error ? err.message : String(err)}`);
      }
    };
    const onEnd = (why: string): void => this.agentGone(conn, why);
    return { onEvent, onEnd };
  }

  private send(conn: AgentConn, cmd: AgentCommand): void {
    conn.writer.send(cmd);
  }

  private handleEvent(conn: AgentConn, ev: AgentEvent): void {
    if (ev.register) {
      this.register(conn, ev.register);
      return;
    }
    if (!conn.registered) {
      this.send(conn, { reject: { message: "first event must be register" } });
      conn.sink.end();
      return;
    }
    if (ev.allocProcIds) {
      const n = Math.max(0, Math.min(ev.allocProcIds.count, 1 << 20));
      const ids: number[] = [];
      for (let i = 0; i < n; i++) ids.push(ev.allocProcIds.launcher ? this.nextLauncherId++ : this.nextProcId++);
      this.send(conn, { procIdsAllocated: { requestId: ev.allocProcIds.requestId, procIds: ids } });
    } else if (ev.procUpdate?.proc) {
      this.procUpdate(conn, ev.procUpdate.proc);
    } else if (ev.suspended) {
      // The round drops answers that name another attempt (late answers to an aborted one).
      this.round?.onSuspended(ev.suspended);
    } else if (ev.progress) {
      this.round?.onProgress(ev.progress);
    } else if (ev.written) {
      this.round?.onWritten(ev.written);
    } else if (ev.resumed) {
      const r = this.procs.get(ev.resumed.procId);
      if (r) r.info.state = "running";
      this.round?.onResumed(ev.resumed);
    } else if (ev.exited) {
      this.procExited(ev.exited.procId, ev.exited.status, ev.exited.signal);
    } else if (ev.error) {
      const who = ev.error.procId >= 0 ? this.describeProc(ev.error.procId) : `agent ${conn.id} on ${conn.host}`;
      this.log(`${who}: ${ev.error.message}`);
    }
  }

  private register(conn: AgentConn, reg: Register): void {
    if (reg.jobId && this.jobId && reg.jobId !== this.jobId && this.liveProcs().length > 0) {
      this.send(conn, { reject: { message: `this coordinator runs job ${this.jobId}, not ${reg.jobId}; start another with --new-coordinator --coord-port` } });
      conn.sink.end();
      return;
    }
    const old = this.agents.get(reg.agentId);
    if (old && old !== conn) {
      old.writer.close();
      old.sink.end();
    }
    conn.id = reg.agentId || `agent-${randomBytes(3).toString("hex")}`;
    conn.host = reg.host;
    conn.compress = reg.compress;
    conn.registered = true;
    this.agents.set(conn.id, conn);
    if (!this.jobId || this.liveProcs().length === 0) {
      if (reg.jobId) this.jobId = reg.jobId;
    }
    if (!this.jobId) this.jobId = newJobId();
    if (reg.command && !this.command) this.command = reg.command;
    if (reg.mpi?.flavour) {
      // a restart's launcher replaces the old one's: the next generations record the new one
      if (reg.restartTotal > 0 || !this.mpi) this.mpiRanksEnded.clear();
      if (reg.restartTotal > 0 || !this.mpi) this.mpi = { flavour: reg.mpi.flavour, size: reg.mpi.size, launcherArgv: [...reg.mpi.launcherArgv] };
    }
    for (const p of reg.procs) {
      if (p.procId < 0) continue;
      this.adoptProc(conn, p);
    }
    if (reg.restartTotal > 0) this.beginRestartBarrier(reg.restartGeneration, reg.restartProcIds);
    this.cancelLostTimer();
    this.log(`agent ${conn.id} on ${conn.host} attached with ${reg.procs.length} process(es)${reg.restartTotal > 0 ? ` (restart of generation ${reg.restartGeneration})` : ""}`);
    this.send(conn, { registered: { jobId: this.jobId, ckptDir: this.ckptDir } });
    this.resumeOrphans(conn, reg.procs);
    this.checkRestartBarrier();
  }

  /**
   * Processes that come back suspended (their round died with the previous coordinator, and
   * their agent did not get to resume them) are resumed unless a round of ours has them.
   */
  private resumeOrphans(conn: AgentConn, procs: ProcInfo[]): void {
    if (this.round) return;
    const frozen = procs.filter((p) => p.procId >= 0 && FROZEN_STATES.has(p.state)).map((p) => p.procId);
    if (frozen.length === 0) return;
    this.log(`resuming ${frozen.length} process(es) of agent ${conn.id} left suspended by an earlier checkpoint`);
    this.send(conn, { resume: { generation: 0, procIds: frozen, attempt: "" } });
  }

  private adoptProc(conn: AgentConn, p: ProcInfo): void {
    const info: ProcInfo = { ...p, agentId: conn.id, host: p.host || conn.host, state: p.state || (p.connected ? "running" : "starting") };
    this.procs.set(p.procId, { info, agentId: conn.id, lost: false });
    if (p.launcher) this.nextLauncherId = Math.max(this.nextLauncherId, p.procId + 1);
    else this.nextProcId = Math.max(this.nextProcId, p.procId + 1);
    this.hadProcs = true;
  }

  private procUpdate(conn: AgentConn, p: ProcInfo): void {
    const r = this.procs.get(p.procId);
    if (!r) {
      this.adoptProc(conn, p);
    } else {
      const state = p.state || (p.connected ? "running" : r.info.state);
      r.info = { ...r.info, ...p, agentId: conn.id, host: p.host || conn.host, state };
      r.agentId = conn.id;
      r.lost = false;
    }
    this.checkRestartBarrier();
  }

  private procExited(procId: number, status: number, signal: string): void {
    const r = this.procs.get(procId);
    // status -1: an MPI rank whose status only its launcher knows
    const why = signal ? `was killed by ${signal}` : status < 0 ? "ended" : `exited with status ${status}`;
    const who = r ? (r.info.launcher ? `the MPI launcher (pid ${r.info.pid} on ${r.info.host})` : describeShort(r.info)) : `process ${procId}`;
    this.log(`${who} ${why}`);
    this.round?.onProcGone(procId, why); // before the delete: the round describes it by pid
    this.procs.delete(procId);
    if (r && !r.info.launcher && this.mpi) this.mpiRanksEnded.add(procId);
    if (this.restart && this.restart.expected.has(procId) && !this.restart.ready.has(procId)) {
      this.failRestart(`${who} ${why} before it was restored`);
    } else if (this.restart && r?.info.launcher) {
      // the ranks it was to start will never say HELLO (mana_restore refused, mpirun failed)
      this.failRestart(`${who} ${why} before all ${this.restart.expected.size} ranks were restored (${this.restart.ready.size} were)`);
    }
    this.checkLast();
  }

  private agentGone(conn: AgentConn, why: string): void {
    conn.writer.close();
    if (!conn.registered || this.agents.get(conn.id) !== conn) return;
    this.agents.delete(conn.id);
    this.log(`agent ${conn.id} on ${conn.host} detached (${why})`);
    for (const r of this.procs.values()) {
      if (r.agentId !== conn.id) continue;
      r.lost = true;
      r.info.state = "lost";
      this.round?.onProcGone(r.info.procId, "lost its agent");
    }
    this.checkLast();
  }

  private checkLast(): void {
    if (!this.opts.exitOnLast || !this.hadProcs || this.exiting) return;
    if (this.liveProcs().length > 0) return;
    if (this.procs.size === 0) {
      this.log("last process is gone; exiting (--exit-on-last)");
      this.exit(0);
      return;
    }
    // Only lost processes remain: their agent may come back (network blip), so wait a little.
    if (!this.lostTimer) {
      this.lostTimer = setTimeout(() => {
        this.lostTimer = null;
        if (this.liveProcs().length === 0) {
          this.log(`no agent came back within ${LOST_AGENT_GRACE_MS / 1000} s; exiting (--exit-on-last)`);
          this.exit(0);
        }
      }, LOST_AGENT_GRACE_MS);
    }
  }

  private cancelLostTimer(): void {
    if (this.lostTimer) clearTimeout(this.lostTimer);
    this.lostTimer = null;
  }

  // ---------- restart barrier ----------

  private beginRestartBarrier(generation: number, procIds: number[]): void {
    if (this.restart) {
      // Another agent of the same restart (one per node): each sends the whole manifest's list.
      if (this.restart.generation !== generation) this.log(`an agent restarts generation ${generation} while generation ${this.restart.generation} is being restored; it waits for the next barrier`);
      return;
    }
    const timer = setTimeout(() => {
      const b = this.restart;
      if (b?.timer === timer) {
        const missing = [...b.expected].filter((id) => !b.ready.has(id));
        const who = missing[0] !== undefined ? this.describeProc(missing[0]) : "a process";
        const more = missing.length > 1 ? ` (and ${missing.length - 1} more)` : "";
        this.failRestart(`timed out after ${(this.phaseTimeoutMs / 1000).toFixed(1)} s waiting for ${who}${more} to be restored`);
      }
    }, this.phaseTimeoutMs);
    this.restart = { generation, expected: new Set(procIds), ready: new Set(), timer };
  }

  private checkRestartBarrier(): void {
    const b = this.restart;
    if (!b) return;
    // Only the procIds of this generation's manifest count, and only once their restored
    // libmana said HELLO restarted=1 for this very generation.
    for (const id of b.expected) {
      const r = this.procs.get(id);
      if (r && !r.lost && r.info.restarted && r.info.connected && r.info.generation === b.generation) b.ready.add(id);
    }
    if (b.ready.size < b.expected.size) return;
    clearTimeout(b.timer);
    this.restart = null;
    this.log(`restart of generation ${b.generation}: all ${b.expected.size} process(es) restored; resuming`);
    this.sendResume(b.generation, "", [...b.ready]);
    this.scheduleInterval();
    this.releaseRestartWaiters();
  }

  private failRestart(message: string): void {
    const b = this.restart;
    if (!b) return;
    clearTimeout(b.timer);
    this.restart = null;
    this.lastError = `restart failed: ${message}`;
    this.log(`${this.lastError}; killing the other restored processes`);
    this.sendKill(this.liveProcs().map((r) => r.info.procId), "SIGKILL");
    this.releaseRestartWaiters();
  }

  private releaseRestartWaiters(): void {
    const w = this.restartWaiters;
    this.restartWaiters = [];
    for (const f of w) f();
  }

  // ---------- commands to agents (RoundHost) ----------

  private byAgent(procIds: number[]): Map<AgentConn, number[]> {
    const m = new Map<AgentConn, number[]>();
    for (const id of procIds) {
      const r = this.procs.get(id);
      const conn = r && !r.lost ? this.agents.get(r.agentId) : undefined;
      if (!conn) continue;
      const list = m.get(conn) ?? [];
      list.push(id);
      m.set(conn, list);
    }
    return m;
  }

  /** procIds among `procIds` that have no live agent to send to. */
  private unreachable(procIds: number[], reached: Map<AgentConn, number[]>): number[] {
    const sent = new Set([...reached.values()].flat());
    return procIds.filter((id) => !sent.has(id));
  }

  sendSuspend(generation: number, attempt: string, procIds: number[]): number[] {
    const groups = this.byAgent(procIds);
    for (const [conn, ids] of groups) {
      for (const id of ids) {
        const r = this.procs.get(id);
        if (r) r.info.state = "suspending";
      }
      this.send(conn, { suspend: { generation, procIds: ids, attempt } });
    }
    return this.unreachable(procIds, groups);
  }

  sendWrite(generation: number, attempt: string, targets: { procId: number; path: string; parent?: string }[]): { compress: number; unreachable: number[] } {
    const byId = new Map(targets.map((t) => [t.procId, t]));
    let level = this.opts.compress;
    const ids0 = targets.map((t) => t.procId);
    const groups = this.byAgent(ids0);
    for (const [conn, ids] of groups) {
      const compress = conn.compress >= 0 ? conn.compress : this.opts.compress;
      level = compress;
      this.send(conn, { write: { generation, compress, attempt, targets: ids.map((id) => byId.get(id) as { procId: number; path: string; parent?: string }) } });
    }
    return { compress: level, unreachable: this.unreachable(ids0, groups) };
  }

  sendResume(generation: number, attempt: string, procIds: number[]): void {
    for (const [conn, ids] of this.byAgent(procIds)) this.send(conn, { resume: { generation, procIds: ids, attempt } });
  }

  inspectImage(file: string): ImageFacts {
    const d = readImage(file);
    return { fileSize: d.fileSize, headerHash: d.headerHash, rawBytes: d.rawBytes, storedBytes: d.storedBytes, parent: d.parent, parentGeneration: d.parentGeneration, refBytes: d.refBytes };
  }

  commit(partialDir: string, manifest: Manifest): Promise<CommitResult> {
    return commitGeneration(this.ckptDir, partialDir, manifest, () => testPause("fsynced", this, manifest.generation));
  }

  sendKill(procIds: number[], signal = "SIGTERM"): void {
    for (const [conn, ids] of this.byAgent(procIds)) this.send(conn, { kill: { procIds: ids, signal } });
  }

  // ---------- CLI operations ----------

  status(): StatusReply {
    const round = this.round;
    let done = 0;
    let total = 0;
    if (round) {
      for (const p of round.progress.values()) {
        done += p.rawDone;
        total += p.rawTotal;
      }
    }
    return {
      jobId: this.jobId,
      state: this.state,
      numProcs: this.liveProcs().length,
      numAgents: this.agents.size,
      lastGeneration: this.lastGeneration,
      lastGenerationDir: this.lastGenerationDir,
      ckptDir: this.ckptDir,
      intervalSecs: this.intervalSecs,
      host: this.opts.host,
      port: this.opts.port,
      pid: process.pid,
      version: MANA_VERSION,
      lastError: this.lastError,
      uptimeMs: Date.now() - this.startedMs,
      command: this.command,
      checkpointInProgress: round !== null,
      checkpointGeneration: round?.generation ?? 0,
      progressRawDone: done,
      progressRawTotal: total,
      procsSuspended: round?.suspended.size ?? 0,
      procsWritten: round?.written.size ?? 0,
      procsInCheckpoint: round?.procs.length ?? 0,
      checkpointElapsedMs: round ? Date.now() - round.startedMs : 0,
      mpiFlavour: this.mpi?.flavour ?? "",
    };
  }

  list(): ListReply {
    return { procs: [...this.procs.values()].sort((a, b) => a.info.procId - b.info.procId).map((r) => ({ ...r.info })) };
  }

  /** Starts a generation (or joins the one running). blocking: resolves when it is committed. */
  async checkpoint(blocking: boolean, killAfter = false): Promise<CheckpointReply> {
    const fail = (error: string): CheckpointReply => ({ ok: false, error, generation: 0, dir: "", bytes: 0, millis: 0, numProcs: 0 });
    if (this.exiting) return fail("the coordinator is shutting down");
    if (!this.round && this.restart) {
      // A checkpoint asked for while the job is being restored is taken once it runs again.
      await new Promise<void>((resolve) => this.restartWaiters.push(resolve));
      if (this.exiting) return fail("the coordinator is shutting down");
    }
    let round = this.round;
    if (!round) {
      if (this.restart) return fail(`the job is restarting (generation ${this.restart.generation}); checkpoint once it runs`);
      const notReady = this.mpiNotReady();
      if (notReady) {
        this.lastError = notReady;
        return fail(notReady);
      }
      const live = this.checkpointable();
      if (live.length === 0) return fail("no processes to checkpoint (none has attached to this coordinator)");
      const gen = nextGeneration(this.ckptDir, Math.max(this.lastGeneration, this.lastAttempted));
      this.lastAttempted = gen;
      round = new CheckpointRound(this, gen, live.map((r) => ({ ...r.info })), killAfter || this.opts.killAfterCkpt);
      this.round = round;
      const started = round;
      void started.done.then((res) => this.roundFinished(started, res));
    }
    if (!blocking) {
      return { ok: true, error: "", generation: round.generation, dir: path.join(this.ckptDir, genDirName(round.generation)), bytes: 0, millis: 0, numProcs: round.procs.length };
    }
    return round.done;
  }

  private roundFinished(round: CheckpointRound, res: CheckpointReply): void {
    if (this.round === round) this.round = null;
    if (res.ok) {
      this.lastGeneration = res.generation;
      this.lastGenerationDir = res.dir;
      this.lastError = "";
    } else {
      this.lastError = res.error;
    }
    this.scheduleInterval();
  }

  setIntervalSecs(secs: number): number {
    this.intervalSecs = secs >= 0.1 ? secs : 0;
    this.log(`checkpoint interval ${this.intervalSecs ? `${this.intervalSecs} s` : "off"}`);
    this.scheduleInterval();
    return this.intervalSecs;
  }

  /** DMTCP counts the interval from the end of the last checkpoint; so do we. */
  private scheduleInterval(): void {
    if (this.intervalTimer) clearTimeout(this.intervalTimer);
    this.intervalTimer = null;
    if (this.intervalSecs <= 0 || this.exiting) return;
    this.intervalTimer = setTimeout(() => {
      this.intervalTimer = null;
      if (this.round || this.restart || this.liveProcs().length === 0) {
        this.scheduleInterval();
        return;
      }
      this.log(`interval checkpoint (every ${this.intervalSecs} s)`);
      void this.checkpoint(false);
    }, this.intervalSecs * 1000);
    this.intervalTimer.unref();
  }

  kill(): number {
    const ids = this.liveProcs().map((r) => r.info.procId);
    this.log(`kill requested: ${ids.length} process(es)`);
    this.sendKill(ids);
    return ids.length;
  }

  /** Kills the job's processes (as DMTCP's `q`), then exits once they are gone or after 3 s. */
  quit(): void {
    if (this.exiting) return;
    const n = this.kill();
    this.log("quit requested");
    if (n === 0) {
      this.exit(0);
      return;
    }
    const started = Date.now();
    const poll = setInterval(() => {
      if (this.liveProcs().length === 0 || Date.now() - started > 3000) {
        clearInterval(poll);
        this.exit(0);
      }
    }, 50);
  }

  private exit(code: number): void {
    if (this.exiting) return;
    this.exiting = true;
    if (this.intervalTimer) clearTimeout(this.intervalTimer);
    this.cancelLostTimer();
    for (const a of this.agents.values()) {
      a.writer.close();
      a.sink.end();
    }
    this.opts.onExit(code);
  }
}

function newJobId(): string {
  const t = new Date().toISOString().replace(/[-:]/g, "").replace(/\..*/, "").replace("T", "-");
  return `${os.hostname()}-${t}-${randomBytes(2).toString("hex")}`;
}

function describeShort(p: ProcInfo): string {
  return `process ${p.procId} (pid ${p.pid} on ${p.host})`;
}

/** Default chain bound: MANA_FULL_EVERY (a positive integer), else a full image every 8 generations. */
export function fullEveryFromEnv(): number {
  const v = process.env.MANA_FULL_EVERY;
  if (v === undefined || v === "") return 8;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`MANA_FULL_EVERY=${v} is not a positive integer`);
  return n;
}
