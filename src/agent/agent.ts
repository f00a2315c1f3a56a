// The node agent: starts the managed processes (or mana_restore for them), relays the
// coordinator's commands to their libmana over the unix socket, and reports back.
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as os from "node:os";
import { constants as osConstants } from "node:os";
import { UserError } from "../errors.js";
import type { CoordAddress } from "../rpc/client.js";
import { procInfo, type AgentCommand, type ProcInfo, type Register, type Registered } from "../rpc/types.js";
import { CoordinatorLink } from "./coordinator-link.js";
import { ProcSocketServer, type ProcConnection } from "./proc-socket.js";
import { MANA_ENV_AGENT_SOCK, MANA_ENV_PROC_ID } from "./wire.gen.js";
import { intField, type WireMessage } from "./wire.js";

/** Where a managed process is in the checkpoint conversation (mana_wire.h). */
type ProcPhase = "running" | "suspending" | "suspended" | "writing" | "written" | "resuming" | "restoring";

export interface ManagedProc {
  procId: number;
  pid: number;
  command: string;
  restarted: boolean;
  generation: number;
  child: ChildProcess;
  conn: ProcConnection | null;
  phase: ProcPhase;
  /** SUSPEND asked for before libmana said HELLO: sent on HELLO. */
  pendingSuspend: number | null;
  curGeneration: number;
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
  restart?: { generation: number; total: number };
  log: (msg: string) => void;
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
    return {
      ...process.env,
      LD_PRELOAD: prev ? `${this.opts.libmana}:${prev}` : this.opts.libmana,
      [MANA_ENV_AGENT_SOCK]: this.socketPath,
      [MANA_ENV_PROC_ID]: String(procId),
    };
  }

  /** Asks the coordinator for procIds (it numbers the job's processes across nodes). */
  allocProcIds(count: number): Promise<number[]> {
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
      this.link.send({ allocProcIds: { requestId, count } });
    });
  }

  /** Starts a new managed process with inherited stdio. */
  async spawnProgram(argv: string[]): Promise<ManagedProc> {
    const [procId] = await this.allocProcIds(1);
    return this.spawnManaged(procId as number, argv[0] as string, argv.slice(1), argv.join(" "), false, 0);
  }

  /** Starts mana_restore for one image; the restored process keeps mana_restore's pid. */
  spawnRestore(procId: number, restoreBin: string, image: string, allowMissingFiles: boolean, generation: number, command: string): Promise<ManagedProc> {
    const args = [...(allowMissingFiles ? ["--allow-missing-files"] : []), image];
    return this.spawnManaged(procId, restoreBin, args, command, true, generation);
  }

  private spawnManaged(procId: number, file: string, args: string[], command: string, restarted: boolean, generation: number): Promise<ManagedProc> {
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
        conn: null,
        phase: restarted ? "restoring" : "running",
        pendingSuspend: null,
        curGeneration: 0,
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

  /** Forwards a signal to every managed process. */
  signalAll(sig: NodeJS.Signals): void {
    for (const p of this.procs.values()) {
      try {
        p.child.kill(sig);
      } catch {
        // already gone
      }
    }
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
      restartTotal: this.restartPending && this.opts.restart ? this.opts.restart.total : 0,
      restartGeneration: this.opts.restart?.generation ?? 0,
    };
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
      const gen = cmd.suspend.generation;
      for (const id of cmd.suspend.procIds) {
        const p = this.procs.get(id);
        if (!p) {
          this.link.send({ suspended: { procId: id, generation: gen, error: "no such process on this agent (it exited)" } });
          continue;
        }
        p.curGeneration = gen;
        if (p.conn) {
          p.phase = "suspending";
          p.conn.send("SUSPEND", { generation: String(gen) });
        } else {
          // libmana has not said HELLO yet (just started, or between exec's): ask once it does
          p.pendingSuspend = gen;
        }
      }
    } else if (cmd.write) {
      const { generation, compress } = cmd.write;
      for (const t of cmd.write.targets) {
        const p = this.procs.get(t.procId);
        if (!p?.conn) {
          this.link.send({ written: { procId: t.procId, generation, error: "the process is no longer connected to its agent", rawBytes: 0, storedBytes: 0, fileSize: 0, millis: 0 } });
          continue;
        }
        p.phase = "writing";
        p.conn.send("WRITE", { generation: String(generation), path: t.path, compress: String(compress) });
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
        p.conn?.send("RESUME", { generation: String(cmd.resume.generation) });
      }
    } else if (cmd.kill) {
      const sig = (cmd.kill.signal || "SIGTERM") as NodeJS.Signals;
      for (const id of cmd.kill.procIds) {
        const p = this.procs.get(id);
        if (!p) continue;
        try {
          p.child.kill(sig);
        } catch {
          continue;
        }
        if (sig !== "SIGKILL") {
          const t = setTimeout(() => {
            if (!p.exited) p.child.kill("SIGKILL");
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
      const p = this.procs.get(procId);
      if (!p || p.pid !== pid) {
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
      this.connProc.set(conn, procId);
      if (f.restarted === "1") {
        p.restarted = true;
        p.generation = intField(f, "generation", p.generation);
        p.phase = "restoring";
      }
      this.link.send({ procUpdate: { proc: this.info(p) } });
      if (p.pendingSuspend !== null) {
        const gen = p.pendingSuspend;
        p.pendingSuspend = null;
        p.phase = "suspending";
        conn.send("SUSPEND", { generation: String(gen) });
      }
      return;
    }
    const p = this.procOf(conn);
    if (!p) return;
    const generation = p.curGeneration;
    switch (m.name) {
      case "SUSPENDED":
        if (f.ok === "1") {
          p.phase = "suspended";
          this.link.send({ suspended: { procId: p.procId, generation, error: "" } });
        } else {
          // mana_wire.h: a refused SUSPEND is answered with RESUME by the agent
          p.phase = "running";
          conn.send("RESUME", { generation: String(generation) });
          this.link.send({ suspended: { procId: p.procId, generation, error: f.error || "refused without a reason" } });
        }
        break;
      case "PROGRESS":
        this.link.send(
          { progress: { procId: p.procId, generation, rawDone: intField(f, "raw_done"), storedDone: intField(f, "stored_done"), rawTotal: intField(f, "raw_total") } },
          (q) => q.progress?.procId === p.procId, // newer progress replaces a queued one
        );
        break;
      case "WRITTEN":
        p.phase = f.ok === "1" ? "written" : "suspended";
        this.link.send({
          written: {
            procId: p.procId,
            generation,
            error: f.ok === "1" ? "" : f.error || "write failed without a reason",
            rawBytes: intField(f, "raw_bytes"),
            storedBytes: intField(f, "stored_bytes"),
            fileSize: intField(f, "file_size"),
            millis: intField(f, "millis"),
          },
        });
        break;
      case "RESUMED":
        p.phase = "running";
        this.link.send({ resumed: { procId: p.procId, generation } });
        this.link.send({ procUpdate: { proc: this.info(p) } });
        break;
      default:
        this.link.send({ error: { procId: p.procId, message: `unexpected ${m.name} message from the process` } });
    }
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
    if (p.exited) return;
    const gen = p.curGeneration;
    // Fail a checkpoint in flight at once rather than at the phase timeout.
    if (p.phase === "suspending") {
      this.link.send({ suspended: { procId: p.procId, generation: gen, error: `it closed its agent connection (${why})` } });
    } else if (p.phase === "writing") {
      this.link.send({ written: { procId: p.procId, generation: gen, error: `it closed its agent connection (${why})`, rawBytes: 0, storedBytes: 0, fileSize: 0, millis: 0 } });
    }
    if (p.phase !== "restoring") p.phase = "running";
    this.link.send({ procUpdate: { proc: this.info(p) } });
  }
}
