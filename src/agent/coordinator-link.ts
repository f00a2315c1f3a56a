// The agent's Attach stream to its coordinator. If the coordinator goes away (even SIGKILL),
// the application keeps running: the link says so in one line and retries the same address
// every second, re-registering the agent's processes (with their procIds) when one answers.
import type * as grpc from "@grpc/grpc-js";
import { AGENT_RECONNECT_MS } from "../config.js";
import { UserError } from "../errors.js";
import { BoundedWriter } from "../rpc/bounded-writer.js";
import { CoordinatorClient, formatAddress, grpcDetails, type CoordAddress } from "../rpc/client.js";
import type { AgentCommand, AgentEvent, Register, Registered } from "../rpc/types.js";

/** Events queued towards the coordinator before we consider it stuck (progress is coalesced). */
const EVENT_QUEUE_LIMIT = 10_000;

export interface LinkHandlers {
  /** Builds the Register event; called for every (re)attach. */
  register(): Register;
  onRegistered(r: Registered, reattached: boolean): void;
  onCommand(cmd: AgentCommand): void;
  /** The stream to an attached coordinator broke (not called for a failed first attach). */
  onLost?(): void;
  log(msg: string): void;
}

export class CoordinatorLink {
  private readonly client: CoordinatorClient;
  private call: grpc.ClientDuplexStream<AgentEvent, AgentCommand> | null = null;
  private writer: BoundedWriter<AgentEvent> | null = null;
  private attached = false;
  private everAttached = false;
  private stopped = false;
  private retryTimer: NodeJS.Timeout | null = null;
  private announcedLoss = false;

  constructor(
    readonly address: CoordAddress,
    tokenFile: string | undefined,
    private readonly h: LinkHandlers,
  ) {
    this.client = new CoordinatorClient(address, tokenFile);
  }

  get isAttached(): boolean {
    return this.attached;
  }

  /** First attach: resolves once registered, rejects with a one-line UserError otherwise. */
  connect(timeoutMs = 10_000): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.dropCall();
        reject(new UserError(`the coordinator at ${formatAddress(this.address)} did not accept this agent within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      this.open(
        () => {
          clearTimeout(timer);
          resolve();
        },
        (why) => {
          clearTimeout(timer);
          reject(new UserError(`cannot attach to the coordinator at ${formatAddress(this.address)}: ${why}`));
        },
      );
    });
  }

  /** Sends an event if attached; while detached, events are dropped (re-register resends state). */
  send(ev: AgentEvent, replaceable?: (queued: AgentEvent) => boolean): void {
    if (this.attached && this.writer) this.writer.send(ev, replaceable);
  }

  /** Resolves when queued events have been handed to the transport (or after timeoutMs). */
  async flush(timeoutMs: number): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (this.writer && this.writer.pending > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
  }

  stop(): void {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    const call = this.call;
    this.dropCall();
    call?.end();
    this.client.close();
  }

  private open(onFirst?: () => void, onFirstFail?: (why: string) => void): void {
    const call = this.client.attach();
    this.call = call;
    const writer = new BoundedWriter<AgentEvent>(call, EVENT_QUEUE_LIMIT, () => {
      this.h.log(`the coordinator is not reading events; reattaching`);
      call.cancel();
    });
    this.writer = writer;
    let settled = false;
    call.on("data", (cmd: AgentCommand) => {
      if (cmd.registered) {
        const re = this.everAttached;
        this.attached = true;
        this.everAttached = true;
        if (this.announcedLoss) {
          this.h.log(`re-attached to the coordinator at ${formatAddress(this.address)}`);
          this.announcedLoss = false;
        }
        this.h.onRegistered(cmd.registered, re);
        if (!settled) {
          settled = true;
          onFirst?.();
        }
        return;
      }
      if (cmd.reject) {
        const msg = cmd.reject.message;
        if (!settled) {
          settled = true;
          onFirstFail?.(msg);
        } else this.h.log(`the coordinator refused this agent: ${msg}`);
        return;
      }
      this.h.onCommand(cmd);
    });
    const lost = (why: string): void => {
      if (this.call !== call) return;
      this.dropCall();
      if (!settled && onFirstFail) {
        settled = true;
        onFirstFail(why);
        return;
      }
      if (this.stopped) return;
      // Before the retry: anything the dead coordinator had frozen must not wait for it.
      this.h.onLost?.();
      if (!this.announcedLoss) {
        this.announcedLoss = true;
        this.h.log(`lost the coordinator at ${formatAddress(this.address)} (${why}); the program keeps running; retrying every ${AGENT_RECONNECT_MS / 1000} s`);
      }
      this.retryTimer = setTimeout(() => {
        this.retryTimer = null;
        if (!this.stopped) this.open();
      }, AGENT_RECONNECT_MS);
    };
    call.on("error", (err: Error) => lost(grpcDetails(err)));
    call.on("end", () => lost("stream ended"));
    call.on("status", (s: grpc.StatusObject) => {
      if (s.code !== 0) lost(s.details);
    });
    writer.send({ register: this.h.register() });
  }

  private dropCall(): void {
    this.attached = false;
    this.writer?.close();
    this.writer = null;
    this.call = null;
  }
}
