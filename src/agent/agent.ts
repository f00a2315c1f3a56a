// The node agent: starts the managed processes (or mana_restore for them), relays the
// coordinator's commands to their libmana over the unix socket, and reports back. For an MPI
// job it starts the launcher (mpirun, mpiexec, srun) and adopts the ranks the launcher starts:
// each says HELLO with mpi_rank/mpi_size and becomes the managed process procId = rank.
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import { constants as osConstants } from "node:os";
import { UserError } from "../errors.js";
import { rshEnv } from "../launch/remote.js";
import { CoordinatorClient, type CoordAddress } from "../rpc/client.js";
import { defaultTokenFile } from "../rpc/token.js";
import { procInfo, type AgentCommand, type ProcInfo, type Register, type Registered } from "../rpc/types.js";
import { CoordinatorLink } from "./coordinator-link.js";
import { ProcSocketServer, type ProcConnection } from "./proc-socket.js";
import { MANA_ENV_AGENT_SOCK, MANA_ENV_DROP_FDS, MANA_ENV_MPI_JOB, MANA_ENV_PROC_ID } from "./wire.gen.js";
import { intField, type WireMessage } from "./wire.js";

/** Where a managed process is in the checkpoint conversation (mana_wire.h). */
type ProcPhase = "running" | "suspending" | "suspended" | "writing" | "written" | "resuming" | "restoring";

/** Phases in which the application's threads are parked by a checkpoint. */
const FROZEN: ReadonlySet<ProcPhase> = new Set(["suspending", "suspended", "writing", "written"]);

/**
 * A request sent to libmana and not yet answered. libmana's checkpoint thread answers its
 * requests one by one, in order, without echoing which checkpoint attempt they belong to; this
 * FIFO lets the agent stamp each answer with the attempt of the request it answers.
 */
interface Outstanding {
  msg: "SUSPEND" | "WRITE" | "RESUME";
  generation: number;
  attempt: string;
}

export interface ManagedProc {
  procId: number;
  pid: number;
  command: string;
  restarted: boolean;
  generation: number;
  /** null for an adopted MPI rank (a child of the launcher, not of this agent) */
  child: ChildProcess | null;
  /** an MPI launcher: tracked for the job's exit, never checkpointed */
  launcher: boolean;
  /** MPI: the job's rank count as the rank (or the launcher's -n) says, 0 = unknown */
  mpiSize: number;
  conn: ProcConnection | null;
  phase: ProcPhase;
  /** SUSPEND asked for before libmana said HELLO: sent on HELLO. */
  pendingSuspend: { generation: number; attempt: string } | null;
  outstanding: Outstanding[];
  exited: { status: number; signal: string } | null;
  exitPromise: Promise<{ status: number; signal: string }>;
}

export interface AgentOptions {
  coord: CoordAddress;
  tokenFile?: string;
  libmana: string;
  /** zstd level for this agent's images, -1 = the coordinator's default. */
  compress: number;
  command: string;
  jobId?: string;
  /** procIds: every procId of the manifest being restarted (the coordinator's barrier). */
  restart?: { generation: number; procIds: number[] };
  /** --drop-unrestorable-fds: libmana records pipes, sockets, ... as skipped instead of refusing. */
  dropFds?: boolean;
  /** The job is an MPI job: see AgentMpi. */
  mpi?: AgentMpi;
  /**
   * A node agent (mana node-agent): on another node of an MPI job, it adopts the ranks the
   * launcher's daemon there starts; the job's launcher and its record belong to the head's
   * agent, and a restored rank is adopted as the rank its image names.
   */
  node?: boolean;
  log: (msg: string) => void;
}

/**
 * An MPI job. The program this agent starts is the launcher, with `env` (the rank environment
 * of launch/mpi.ts) and MANA_MPI_JOB=1 added: libmana, preloaded into the launcher when
 * `preload` (launch; at restart the ranks are the static mana_restore), stays inert in every
 * process without a rank variable and passes the environment on; each rank connects with
 * mpi_rank/mpi_size in its HELLO and is adopted as procId = rank. The launcher itself gets an
 * id from the coordinator's launcher range and is never checkpointed.
 */
export interface AgentMpi {
  env: Record<string, string>;
  flavour: string;
  /** rank count from the launcher's command line (0 = unknown) */
  size: number;
  launcherArgv: string[];
  preload: boolean;
  /**
   * --mpi with a program and no launcher: the program is the job's one rank (an MPI
   * singleton), started and checkpointed as a plain process (procId 0) with `env` added.
   */
  singleton?: boolean;
}

/**
 * How a rank that is not our child ended: the exit code of a zombie still in /proc (its parent,
 * the launcher's proxy, reaps it soon after), else -1 (unknown: the launcher reports it).
 */
function rankExitStatus(pid: number): { status: number; signal: string } {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // rest[0] is field 3 (state); exit_code is field 52 (Linux >= 3.5)
    if (rest[0] === "Z" && rest.length >= 50) {
      const w = Number(rest[49]);
      if (Number.isInteger(w)) {
        const sig = w & 0x7f;
        if (sig === 0) return { status: (w >> 8) & 0xff, signal: "" };
        const name = Object.entries(osConstants.signals).find(([, n]) => n === sig)?.[0] ?? "";
        return { status: 128 + sig, signal: name };
      }
    }
  } catch {
    // already reaped
  }
  return { status: -1, signal: "" };
}

/** The rank's own command line (what it runs), for display and the manifest. */
function procCmdline(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter((a) => a !== "").join(" ");
  } catch {
    return "";
  }
}

/** Time between SIGTERM and SIGKILL when the coordinator kills the job. */
const KILL_GRACE_MS = 3000;

export class Agent {
  readonly host = os.hostname();
  readonly id = `${os.hostname()}-${process.pid}-${randomBytes(2).toString("hex")}`;
  private readonly procs = new Map<number, ManagedProc>();
  private sock: ProcSocketServer | null = null;
  private link: CoordinatorLink;
  private jobId: string;
  private restartPending: boolean;
  private nextRequest = 1;
  private readonly allocWaiters = new Map<number, (ids: number[]) => void>();
  /** Descendants of a managed process that inherited its MANA_PROC_ID (logged once each). */
  private readonly ignoredPids = new Set<number>();
  private readonly connProc = new WeakMap<ProcConnection, number>();

  constructor(private readonly opts: AgentOptions) {
    this.jobId = opts.jobId ?? "";
    this.restartPending = !!opts.restart;
    this.link = new CoordinatorLink(opts.coord, opts.tokenFile, {
      register: () => this.registerEvent(),
      onRegistered: (r, re) => this.onRegistered(r, re),
      onCommand: (c) => this.onCommand(c),
      onLost: () => this.resumeFrozen(),
      log: opts.log,
    });
  }

  async start(): Promise<void> {
    this.sock = await ProcSocketServer.listen(
      (c, m) => this.onProcMessage(c, m),
      (c, why) => this.onProcClose(c, why),
    );
    await this.link.connect();
  }

  get socketPath(): string {
    return this.sock?.path ?? "";
  }

  /** Environment of a managed process: libmana preloaded ahead of any LD_PRELOAD it had. */
  private procEnv(procId: number): NodeJS.ProcessEnv {
    const prev = process.env.LD_PRELOAD;
    const mpi = this.opts.mpi;
    if (mpi && !mpi.singleton) {
      // no MANA_PROC_ID: a rank's procId is its rank (and a restored rank keeps its image's)
      return {
        ...process.env,
        ...mpi.env,
        ...(mpi.preload ? { LD_PRELOAD: prev ? `${this.opts.libmana}:${prev}` : this.opts.libmana } : {}),
        [MANA_ENV_MPI_JOB]: "1",
        [MANA_ENV_AGENT_SOCK]: this.socketPath,
        ...(this.opts.dropFds ? { [MANA_ENV_DROP_FDS]: "1" } : {}),
        ...rshEnv({ host: this.opts.coord.host, port: this.opts.coord.port, tokenFile: this.opts.tokenFile ?? defaultTokenFile(this.opts.coord.port), jobId: this.jobId, compress: this.opts.compress }),
      };
    }
    return {
      ...process.env,
      ...(mpi?.env ?? {}),
      LD_PRELOAD: prev ? `${this.opts.libmana}:${prev}` : this.opts.libmana,
      [MANA_ENV_AGENT_SOCK]: this.socketPath,
      [MANA_ENV_PROC_ID]: String(procId),
      // after a restart, libmana keeps the setting of its launch unless this one says so
      ...(this.opts.dropFds ? { [MANA_ENV_DROP_FDS]: "1" } : {}),
    };
  }

  /** Asks the coordinator for procIds (it numbers the job's processes across nodes). */
  allocProcIds(count: number, launcher = false): Promise<number[]> {
    const requestId = this.nextRequest++;
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.allocWaiters.delete(requestId);
        reject(new UserError(`the coordinator at ${this.opts.coord.host}:${this.opts.coord.port} did not assign process ids`));
      }, 10_000);
      this.allocWaiters.set(requestId, (ids) => {
        clearTimeout(t);
        resolve(ids);
      });
      this.link.send({ allocProcIds: { requestId, count, launcher } });
    });
  }

  /** Starts a new managed process with inherited stdio (for an MPI job: its launcher). */
  async spawnProgram(argv: string[]): Promise<ManagedProc> {
    const launcher = !!this.opts.mpi && !this.opts.mpi.singleton;
    const [procId] = await this.allocProcIds(1, launcher);
    return this.spawnManaged(procId as number, argv[0] as string, argv.slice(1), argv.join(" "), false, 0, launcher);
  }

  /** Starts mana_restore for one image; the restored process keeps mana_restore's pid. */
  spawnRestore(procId: number, restoreBin: string, image: string, allowMissingFiles: boolean, generation: number, command: string): Promise<ManagedProc> {
    const args = [...(allowMissingFiles ? ["--allow-missing-files"] : []), image];
    return this.spawnManaged(procId, restoreBin, args, command, true, generation);
  }

  private spawnManaged(procId: number, file: string, args: string[], command: string, restarted: boolean, generation: number, launcher = false): Promise<ManagedProc> {
    return new Promise((resolve, reject) => {
      const child = spawn(file, args, { stdio: "inherit", env: this.procEnv(procId) });
      let resolveExit: (v: { status: number; signal: string }) => void = () => undefined;
      const exitPromise = new Promise<{ status: number; signal: string }>((r) => (resolveExit = r));
      const p: ManagedProc = {
        procId,
        pid: 0,
        command,
        restarted,
        generation,
        child,
        launcher,
        mpiSize: launcher ? (this.opts.mpi?.size ?? 0) : 0,
        conn: null,
        phase: restarted ? "restoring" : "running",
        pendingSuspend: null,
        outstanding: [],
        exited: null,
        exitPromise,
      };
      child.once("error", (err: NodeJS.ErrnoException) => {
        const why = err.code === "ENOENT" ? "no such program (check the name and PATH)" : err.code === "EACCES" ? "permission denied (not executable?)" : err.message;
        reject(new UserError(`cannot run ${file}: ${why}`));
      });
      child.once("spawn", () => {
        p.pid = child.pid ?? 0;
        this.procs.set(procId, p);
        this.link.send({ procUpdate: { proc: this.info(p) } });
        resolve(p);
      });
      child.once("exit", (code, signal) => {
        const status = signal ? 128 + (osConstants.signals[signal] ?? 0) : code ?? 0;
        p.exited = { status, signal: signal ?? "" };
        p.conn?.close("process exited");
        this.procs.delete(procId);
        this.link.send({ exited: { procId, status, signal: signal ?? "" } });
        resolveExit(p.exited);
      });
    });
  }

  /**
   * Forwards a signal to every process this agent started (an MPI launcher passes it on to
   * its ranks, as it would without mana).
   */
  signalAll(sig: NodeJS.Signals): void {
    for (const p of this.procs.values()) {
      try {
        p.child?.kill(sig);
      } catch {
        // already gone
      }
    }
  }

  /** Sends a signal to a managed process, started or adopted; false when it is gone. */
  private signal(p: ManagedProc, sig: NodeJS.Signals): boolean {
    try {
      if (p.child) return p.child.kill(sig);
      process.kill(p.pid, sig);
      return true;
    } catch {
      return false;
    }
  }

  /** Resolves once no managed process is left (or after timeoutMs). */
  async idle(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const live = [...this.procs.values()].filter((p) => !p.exited).map((p) => p.exitPromise);
    await Promise.race([Promise.all(live), new Promise((r) => (timer = setTimeout(r, timeoutMs)))]);
    clearTimeout(timer);
  }

  async shutdown(): Promise<void> {
    await this.link.flush(1000);
    this.link.stop();
    this.sock?.close();
  }

  private info(p: ManagedProc): ProcInfo {
    return procInfo({
      procId: p.procId,
      pid: p.pid,
      host: this.host,
      command: p.command,
      restarted: p.restarted,
      generation: p.generation,
      connected: p.conn !== null,
      state: p.phase === "restoring" ? "restoring" : p.phase,
      agentId: this.id,
      launcher: p.launcher,
      mpiSize: p.mpiSize,
    });
  }

  private registerEvent(): Register {
    return {
      host: this.host,
      agentId: this.id,
      procs: [...this.procs.values()].filter((p) => !p.exited).map((p) => this.info(p)),
      jobId: this.jobId,
      command: this.opts.command,
      compress: this.opts.compress,
      restartTotal: this.restartPending && this.opts.restart ? this.opts.restart.procIds.length : 0,
      restartGeneration: this.opts.restart?.generation ?? 0,
      restartProcIds: this.restartPending && this.opts.restart ? this.opts.restart.procIds : [],
      mpi: this.opts.mpi && !this.opts.node ? { flavour: this.opts.mpi.flavour, size: this.opts.mpi.size, launcherArgv: this.opts.mpi.launcherArgv } : null,
    };
  }

  /** Sends a request to libmana and remembers which attempt its answer will belong to. */
  private request(p: ManagedProc, conn: ProcConnection, msg: Outstanding["msg"], generation: number, attempt: string, fields: Record<string, string> = {}): void {
    p.outstanding.push({ msg, generation, attempt });
    conn.send(msg, { generation: String(generation), ...fields });
  }

  /** The request an answer of kind `msg` answers (skipping any that can no longer be answered). */
  private answered(p: ManagedProc, msg: Outstanding["msg"], peek = false): Outstanding {
    const i = p.outstanding.findIndex((o) => o.msg === msg);
    if (i < 0) return { msg, generation: 0, attempt: "" }; // unsolicited: matches no attempt
    const o = p.outstanding[i] as Outstanding;
    if (!peek) p.outstanding.splice(0, i + 1);
    return o;
  }

  /**
   * The coordinator link dropped: whatever round had these processes parked is dead with it,
   * and nobody else would ever resume them. Resume now so the application never stays frozen;
   * the coordinator removes the round's partial dir when it starts again.
   */
  private resumeFrozen(): void {
    for (const p of this.procs.values()) {
      p.pendingSuspend = null;
      if (!FROZEN.has(p.phase) || !p.conn) continue;
      this.opts.log(`resuming process ${p.procId} (pid ${p.pid}): its checkpoint died with the coordinator link`);
      p.phase = "resuming";
      this.request(p, p.conn, "RESUME", 0, "");
    }
  }

  private onRegistered(r: Registered, _reattached: boolean): void {
    this.jobId = r.jobId;
  }

  // ---------- coordinator -> processes ----------

  private onCommand(cmd: AgentCommand): void {
    if (cmd.procIdsAllocated) {
      const w = this.allocWaiters.get(cmd.procIdsAllocated.requestId);
      this.allocWaiters.delete(cmd.procIdsAllocated.requestId);
      w?.(cmd.procIdsAllocated.procIds);
    } else if (cmd.suspend) {
      const { generation: gen, attempt } = cmd.suspend;
      for (const id of cmd.suspend.procIds) {
        const p = this.procs.get(id);
        if (!p) {
          this.link.send({ suspended: { procId: id, generation: gen, attempt, error: "no such process on this agent (it exited)" } });
          continue;
        }
        if (p.launcher) {
          // the coordinator never includes launchers; an older one might: refuse at once
          // rather than wait for a HELLO that never comes (the update undoes "suspending")
          this.link.send({ suspended: { procId: id, generation: gen, attempt, error: "it is the MPI launcher, which is not checkpointed" } });
          this.link.send({ procUpdate: { proc: this.info(p) } });
        } else if (p.conn) {
          p.phase = "suspending";
          this.request(p, p.conn, "SUSPEND", gen, attempt);
        } else {
          // libmana has not said HELLO yet (just started, or between exec's): ask once it does
          p.pendingSuspend = { generation: gen, attempt };
        }
      }
    } else if (cmd.write) {
      const { generation, compress, attempt } = cmd.write;
      for (const t of cmd.write.targets) {
        const p = this.procs.get(t.procId);
        if (!p?.conn) {
          this.link.send({ written: { procId: t.procId, generation, attempt, error: "the process is no longer connected to its agent", rawBytes: 0, storedBytes: 0, fileSize: 0, millis: 0 } });
          continue;
        }
        p.phase = "writing";
        this.request(p, p.conn, "WRITE", generation, attempt, { path: t.path, compress: String(compress), ...(t.parent ? { parent: t.parent } : {}) });
      }
    } else if (cmd.resume) {
      for (const id of cmd.resume.procIds) {
        const p = this.procs.get(id);
        if (!p) continue;
        if (p.pendingSuspend !== null && p.phase === "running") {
          p.pendingSuspend = null; // never sent: nothing to undo
          continue;
        }
        if (p.phase === "running" || p.phase === "resuming") continue; // e.g. resumed by us after a SUSPEND error
        if (p.phase === "restoring") this.restartPending = false;
        p.phase = "resuming";
        if (p.conn) this.request(p, p.conn, "RESUME", cmd.resume.generation, cmd.resume.attempt);
      }
    } else if (cmd.kill) {
      const sig = (cmd.kill.signal || "SIGTERM") as NodeJS.Signals;
      for (const id of cmd.kill.procIds) {
        const p = this.procs.get(id);
        if (!p) continue;
        if (!this.signal(p, sig)) continue;
        if (sig !== "SIGKILL") {
          const t = setTimeout(() => {
            if (!p.exited) this.signal(p, "SIGKILL");
          }, KILL_GRACE_MS);
          t.unref();
        }
      }
    }
  }

  // ---------- processes -> coordinator ----------

  private onProcMessage(conn: ProcConnection, m: WireMessage): void {
    const f = m.fields;
    if (m.name === "HELLO") {
      const procId = intField(f, "proc_id", -1);
      const pid = intField(f, "pid");
      let p = this.procs.get(procId);
      if (!p || p.pid !== pid) p = this.adoptRank(f, pid, procId);
      if (!p) {
        // A child of a managed process inherits its environment (and libmana); only the
        // process we started is checkpointed here. Keep the connection open and silent.
        if (!this.ignoredPids.has(pid)) {
          this.ignoredPids.add(pid);
          if (process.env.MANA_DEBUG) this.opts.log(`ignoring HELLO from pid ${pid} (proc_id ${procId}): not a process this agent started`);
        }
        return;
      }
      if (p.conn && p.conn !== conn) p.conn.close("replaced by a new connection");
      p.conn = conn;
      p.outstanding = []; // a new libmana connection answers nothing sent on the old one
      this.connProc.set(conn, procId);
      if (f.mpi_size) p.mpiSize = intField(f, "mpi_size", p.mpiSize);
      if (f.restarted === "1") {
        p.restarted = true;
        p.generation = intField(f, "generation", p.generation);
        p.phase = "restoring";
      }
      this.link.send({ procUpdate: { proc: this.info(p) } });
      if (p.pendingSuspend !== null) {
        const { generation, attempt } = p.pendingSuspend;
        p.pendingSuspend = null;
        p.phase = "suspending";
        this.request(p, conn, "SUSPEND", generation, attempt);
      }
      return;
    }
    const p = this.procOf(conn);
    if (!p) return;
    switch (m.name) {
      case "SUSPENDED": {
        const { generation, attempt } = this.answered(p, "SUSPEND");
        if (f.ok === "1") {
          p.phase = "suspended";
          this.link.send({ suspended: { procId: p.procId, generation, attempt, error: "" } });
        } else {
          // mana_wire.h: a refused SUSPEND is answered with RESUME by the agent
          p.phase = "running";
          this.request(p, conn, "RESUME", generation, attempt);
          this.link.send({ suspended: { procId: p.procId, generation, attempt, error: f.error || "refused without a reason" } });
        }
        break;
      }
      case "PROGRESS": {
        const { generation, attempt } = this.answered(p, "WRITE", true);
        this.link.send(
          { progress: { procId: p.procId, generation, attempt, rawDone: intField(f, "raw_done"), storedDone: intField(f, "stored_done"), rawTotal: intField(f, "raw_total") } },
          (q) => q.progress?.procId === p.procId, // newer progress replaces a queued one
        );
        break;
      }
      case "WRITTEN": {
        const { generation, attempt } = this.answered(p, "WRITE");
        p.phase = f.ok === "1" ? "written" : "suspended";
        this.link.send({
          written: {
            procId: p.procId,
            generation,
            attempt,
            error: f.ok === "1" ? "" : f.error || "write failed without a reason",
            rawBytes: intField(f, "raw_bytes"),
            storedBytes: intField(f, "stored_bytes"),
            fileSize: intField(f, "file_size"),
            millis: intField(f, "millis"),
          },
        });
        break;
      }
      case "CKPT_REQUEST":
        this.checkpointFor(p, conn, f.request ?? "0");
        break;
      case "RESUMED": {
        const { generation, attempt } = this.answered(p, "RESUME");
        p.phase = "running";
        this.link.send({ resumed: { procId: p.procId, generation, attempt } });
        this.link.send({ procUpdate: { proc: this.info(p) } });
        break;
      }
      default:
        this.link.send({ error: { procId: p.procId, message: `unexpected ${m.name} message from the process` } });
    }
  }

  /**
   * mana_checkpoint() in the application: a blocking checkpoint of the whole job, exactly as
   * `mana command --bcheckpoint` asks for it; the answer goes back on the connection that
   * asked (a restarted process has a new one and learns of its restart by itself).
   */
  private checkpointFor(p: ManagedProc, conn: ProcConnection, request: string): void {
    const client = new CoordinatorClient(this.opts.coord, this.opts.tokenFile);
    client
      .checkpoint({ blocking: true, killAfter: false })
      .then((r): Record<string, string> => (r.ok ? { ok: "1", generation: String(r.generation) } : { error: r.error || "the checkpoint failed" }))
      .catch((err: Error): Record<string, string> => ({ error: `the coordinator did not answer the checkpoint request: ${err.message}` }))
      .then((fields) => {
        client.close();
        if (fields.error) this.opts.log(`mana_checkpoint() of process ${p.procId} (pid ${p.pid}) failed: ${fields.error}`);
        conn.send("CKPT_REPLY", { request, ...fields });
      });
  }

  /**
   * An MPI rank started by the launcher (not by us) says HELLO: it becomes the managed process
   * procId = its rank. A fresh rank names its rank (mpi_rank); a restored one may only have the
   * proc_id of its image, which is its rank too, and counts when this restart expects it.
   */
  private adoptRank(f: Record<string, string>, pid: number, procId: number): ManagedProc | undefined {
    const mpi = this.opts.mpi;
    if (!mpi || pid <= 0) return undefined;
    const restarted = f.restarted === "1";
    let rank = f.mpi_rank !== undefined && f.mpi_rank !== "" ? intField(f, "mpi_rank", -1) : -1;
    // A node agent does not know the restarted generation's ranks; the coordinator's barrier
    // does, and a restored process's proc_id is the rank its image (chosen by its launcher
    // rank) holds, so it is taken as is there.
    if (rank < 0 && restarted && (this.opts.node || this.opts.restart?.procIds.includes(procId))) rank = procId;
    if (rank < 0) return undefined;
    const old = this.procs.get(rank);
    if (old && !old.exited && old.pid !== pid) {
      if (old.launcher || old.conn) {
        this.opts.log(`pid ${pid} says it is MPI rank ${rank}, but pid ${old.pid} is already; ignoring it`);
        return undefined;
      }
      // an earlier rank of that number that lost its connection is gone
      this.rankGone(old);
    }
    let resolveExit: (v: { status: number; signal: string }) => void = () => undefined;
    const exitPromise = new Promise<{ status: number; signal: string }>((r) => (resolveExit = r));
    const p: ManagedProc = {
      procId: rank,
      pid,
      command: procCmdline(pid) || this.opts.command,
      restarted,
      generation: restarted ? intField(f, "generation", 0) : 0,
      child: null,
      launcher: false,
      mpiSize: intField(f, "mpi_size", mpi.size),
      conn: null,
      phase: restarted ? "restoring" : "running",
      pendingSuspend: null,
      outstanding: [],
      exited: null,
      exitPromise,
    };
    this.rankExit.set(p, resolveExit);
    this.procs.set(rank, p);
    if (process.env.MANA_DEBUG) this.opts.log(`adopted MPI rank ${rank}${p.mpiSize ? ` of ${p.mpiSize}` : ""} (pid ${pid})${restarted ? ", restored" : ""}`);
    return p;
  }

  private readonly rankExit = new WeakMap<ManagedProc, (v: { status: number; signal: string }) => void>();

  /** An adopted rank closed its connection: it has ended (its launcher reaps it, not us). */
  private rankGone(p: ManagedProc): void {
    if (p.exited) return;
    p.exited = rankExitStatus(p.pid);
    p.conn = null;
    if (this.procs.get(p.procId) === p) this.procs.delete(p.procId);
    this.link.send({ exited: { procId: p.procId, status: p.exited.status, signal: p.exited.signal } });
    this.rankExit.get(p)?.(p.exited);
  }

  private procOf(conn: ProcConnection): ManagedProc | undefined {
    const id = this.connProc.get(conn);
    if (id === undefined) return undefined;
    const p = this.procs.get(id);
    return p?.conn === conn ? p : undefined;
  }

  private onProcClose(conn: ProcConnection, why: string): void {
    const p = this.procOf(conn);
    if (!p) return;
    p.conn = null;
    const open = p.outstanding;
    p.outstanding = [];
    if (p.exited) return;
    if (!p.child) {
      // an adopted rank: its connection lasts as long as its libmana, i.e. the process; the
      // round (if any) learns of it as of any exit
      this.rankGone(p);
      return;
    }
    // Fail a checkpoint in flight at once rather than at the phase timeout.
    const last = open[open.length - 1];
    const { generation, attempt } = last ?? { generation: 0, attempt: "" };
    if (p.phase === "suspending") {
      this.link.send({ suspended: { procId: p.procId, generation, attempt, error: `it closed its agent connection (${why})` } });
    } else if (p.phase === "writing") {
      this.link.send({ written: { procId: p.procId, generation, attempt, error: `it closed its agent connection (${why})`, rawBytes: 0, storedBytes: 0, fileSize: 0, millis: 0 } });
    }
    if (p.phase !== "restoring") p.phase = "running";
    this.link.send({ procUpdate: { proc: this.info(p) } });
  }
}
