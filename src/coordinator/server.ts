// The coordinator's gRPC server: binds the Coordinator service to a Coordinator, checks the
// per-job token on every call (DESIGN §5), and uses the shared keepalive options.
import * as grpc from "@grpc/grpc-js";
import { timingSafeEqual } from "node:crypto";
import { coordinatorService } from "../rpc/proto.js";
import { SERVER_OPTIONS, TOKEN_METADATA_KEY } from "../rpc/options.js";
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
} from "../rpc/types.js";
import type { Coordinator } from "./coordinator.js";

function tokenOk(md: grpc.Metadata, token: string): boolean {
  const got = md.get(TOKEN_METADATA_KEY)[0];
  if (typeof got !== "string") return false;
  const a = Buffer.from(got);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

const UNAUTH = {
  code: grpc.status.UNAUTHENTICATED,
  details: "missing or wrong job token (run as the job's user, or pass --token-file)",
};

type Unary<Req, Res> = (call: grpc.ServerUnaryCall<Req, Res>, cb: grpc.sendUnaryData<Res>) => void;

function unary<Req, Res>(token: string, fn: (req: Req) => Res | Promise<Res>): Unary<Req, Res> {
  return (call, cb) => {
    if (!tokenOk(call.metadata, token)) {
      cb(UNAUTH);
      return;
    }
    Promise.resolve()
      .then(() => fn(call.request))
      .then(
        (res) => cb(null, res),
        (err: unknown) => cb({ code: grpc.status.INTERNAL, details: err instanceof Error ? err.message : String(err) }),
      );
  };
}

export interface StartedServer {
  server: grpc.Server;
  port: number;
}

/** token: the per-job token every call must carry (DESIGN §5), on loopback too. */
export async function startServer(coord: Coordinator, host: string, port: number, token: string): Promise<StartedServer> {
  const server = new grpc.Server(SERVER_OPTIONS);
  const svc = coordinatorService().service;
  server.addService(svc, {
    attach: (call: grpc.ServerDuplexStream<AgentEvent, AgentCommand>) => {
      if (!tokenOk(call.metadata, token)) {
        call.emit("error", UNAUTH);
        return;
      }
      const { onEvent, onEnd } = coord.attachAgent(call);
      let ended = false;
      const end = (why: string): void => {
        if (ended) return;
        ended = true;
        onEnd(why);
      };
      call.on("data", onEvent);
      call.on("end", () => {
        end("stream closed");
        call.end();
      });
      call.on("error", (err: Error) => end(err.message));
      call.on("cancelled", () => end("cancelled"));
      call.on("close", () => end("connection closed"));
    },
    status: unary<Empty, StatusReply>(token, () => coord.status()),
    list: unary<Empty, ListReply>(token, () => coord.list()),
    checkpoint: unary<CheckpointRequest, CheckpointReply>(token, (req) => coord.checkpoint(req.blocking, req.killAfter)),
    setInterval: unary<SetIntervalRequest, SetIntervalReply>(token, (req) => ({ intervalSecs: coord.setIntervalSecs(req.intervalSecs) })),
    kill: unary<Empty, KillReply>(token, () => ({ numProcs: coord.kill() })),
    quit: unary<Empty, Empty>(token, () => {
      // reply first, then go: the client should see its request succeed
      setImmediate(() => coord.quit());
      return {};
    }),
  });
  const addr = host.includes(":") && !host.startsWith("[") ? `[${host}]:${port}` : `${host}:${port}`;
  const bound = await new Promise<number>((resolve, reject) => {
    server.bindAsync(addr, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
  });
  return { server, port: bound };
}
