// A typed client for the Coordinator service, used by the CLI and the agent.
import * as grpc from "@grpc/grpc-js";
import { coordinatorService } from "./proto.js";
import { CLIENT_OPTIONS, TOKEN_METADATA_KEY } from "./options.js";
import { readClientToken } from "./token.js";
import type {
  AgentCommand,
  AgentEvent,
  CheckpointReply,
  CheckpointRequest,
  Empty,
  KillReply,
  ListReply,
  SetIntervalReply,
  SetIntervalRequest,
  StatusReply,
} from "./types.js";

export interface CoordAddress {
  host: string;
  port: number;
}

/** host "unix:/path" (port 0) is a unix socket: a node agent's route through ssh. */
export function formatAddress(a: CoordAddress): string {
  if (a.host.startsWith("unix:")) return a.host;
  return a.host.includes(":") && !a.host.startsWith("[") ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

type UnaryFn<Req, Res> = (
  req: Req,
  md: grpc.Metadata,
  opts: grpc.CallOptions,
  cb: (err: grpc.ServiceError | null, res?: Res) => void,
) => grpc.ClientUnaryCall;

interface RawClient extends grpc.Client {
  status: UnaryFn<Empty, StatusReply>;
  list: UnaryFn<Empty, ListReply>;
  checkpoint: UnaryFn<CheckpointRequest, CheckpointReply>;
  setInterval: UnaryFn<SetIntervalRequest, SetIntervalReply>;
  kill: UnaryFn<Empty, KillReply>;
  quit: UnaryFn<Empty, Empty>;
  attach(md: grpc.Metadata, opts?: grpc.CallOptions): grpc.ClientDuplexStream<AgentEvent, AgentCommand>;
}

export class CoordinatorClient {
  readonly address: CoordAddress;
  private readonly raw: RawClient;
  private readonly tokenFile: string | undefined;

  constructor(address: CoordAddress, tokenFile?: string) {
    this.address = address;
    const Ctor = coordinatorService();
    this.raw = new Ctor(formatAddress(address), grpc.credentials.createInsecure(), CLIENT_OPTIONS) as RawClient;
    this.tokenFile = tokenFile;
  }

  /** Read on every call: a coordinator started again on the same port has a new token. */
  metadata(): grpc.Metadata {
    const md = new grpc.Metadata();
    const token = readClientToken(this.address.port, this.tokenFile);
    if (token) md.set(TOKEN_METADATA_KEY, token);
    return md;
  }

  private unary<Req, Res>(fn: UnaryFn<Req, Res>, req: Req, timeoutMs: number | undefined): Promise<Res> {
    const opts: grpc.CallOptions = {};
    if (timeoutMs !== undefined) opts.deadline = Date.now() + timeoutMs;
    return new Promise((resolve, reject) => {
      fn.call(this.raw, req, this.metadata(), opts, (err, res) => {
        if (err) reject(err);
        else resolve(res as Res);
      });
    });
  }

  status(timeoutMs = 5000): Promise<StatusReply> {
    return this.unary(this.raw.status, {}, timeoutMs);
  }
  list(timeoutMs = 5000): Promise<ListReply> {
    return this.unary(this.raw.list, {}, timeoutMs);
  }
  /** No deadline for blocking checkpoints: the coordinator's phase timeouts bound them. */
  checkpoint(req: CheckpointRequest, timeoutMs?: number): Promise<CheckpointReply> {
    return this.unary(this.raw.checkpoint, req, timeoutMs);
  }
  setInterval(secs: number, timeoutMs = 5000): Promise<SetIntervalReply> {
    return this.unary(this.raw.setInterval, { intervalSecs: secs }, timeoutMs);
  }
  kill(timeoutMs = 5000): Promise<KillReply> {
    return this.unary(this.raw.kill, {}, timeoutMs);
  }
  quit(timeoutMs = 5000): Promise<Empty> {
    return this.unary(this.raw.quit, {}, timeoutMs);
  }
  attach(): grpc.ClientDuplexStream<AgentEvent, AgentCommand> {
    return this.raw.attach(this.metadata());
  }

  /** Resolves true once the channel is connected, false after timeoutMs. */
  waitReady(timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      this.raw.waitForReady(Date.now() + timeoutMs, (err) => resolve(!err));
    });
  }

  close(): void {
    this.raw.close();
  }
}

export function isUnavailable(err: unknown): boolean {
  const code = (err as { code?: number } | null)?.code;
  return code === grpc.status.UNAVAILABLE || code === grpc.status.DEADLINE_EXCEEDED;
}

export function grpcCode(err: unknown): number | undefined {
  return (err as { code?: number } | null)?.code;
}

/** The server-side message of a gRPC error, without grpc-js's "14 UNAVAILABLE: " prefix. */
export function grpcDetails(err: unknown): string {
  const e = err as { details?: string; message?: string } | null;
  return e?.details || e?.message || String(err);
}
