// The agent's unix socket, where libmana in each managed process connects and speaks
// mana_wire.h. It lives in the user's 0700 runtime dir (DESIGN §5), so only the user's own
// processes can reach it.
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { UserError } from "../errors.js";
import { userRuntimeDir } from "../paths.js";
import { ensurePrivateDir } from "../rpc/token.js";
import { encodeMessage, WireDecoder, type WireMessage } from "./wire.js";
import type { MsgName } from "./wire.gen.js";

/** One process's connection. */
export class ProcConnection {
  private readonly decoder = new WireDecoder();
  closed = false;

  constructor(
    readonly socket: net.Socket,
    private readonly onMessage: (conn: ProcConnection, msg: WireMessage) => void,
    private readonly onClose: (conn: ProcConnection, why: string) => void,
  ) {
    socket.on("data", (chunk: Buffer) => {
      let msgs: WireMessage[];
      try {
        msgs = this.decoder.feed(chunk);
      } catch (err) {
        this.close(err instanceof Error ? err.message : String(err));
        return;
      }
      for (const m of msgs) this.onMessage(this, m);
    });
    socket.on("error", (err) => this.close(err.message));
    socket.on("close", () => this.close("closed"));
  }

  send(type: MsgName, fields: Record<string, string> = {}): boolean {
    if (this.closed) return false;
    // The protocol is a handful of small messages per checkpoint; the kernel buffer holds them.
    this.socket.write(encodeMessage(type, fields));
    return true;
  }

  close(why: string): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.destroy();
    this.onClose(this, why);
  }
}

export class ProcSocketServer {
  readonly path: string;
  private readonly server: net.Server;
  private readonly conns = new Set<ProcConnection>();

  private constructor(sockPath: string, server: net.Server) {
    this.path = sockPath;
    this.server = server;
  }

  static async listen(
    onMessage: (conn: ProcConnection, msg: WireMessage) => void,
    onClose: (conn: ProcConnection, why: string) => void,
  ): Promise<ProcSocketServer> {
    const dir = userRuntimeDir();
    try {
      ensurePrivateDir(dir);
    } catch (err) {
      throw new UserError(`cannot create the private runtime dir ${dir}: ${err instanceof Error ? err.message : String(err)} (set MANA_TMPDIR to a writable dir)`);
    }
    const sockPath = path.join(dir, `agent-${process.pid}-${randomBytes(4).toString("hex")}.sock`);
    if (Buffer.byteLength(sockPath) > 107) {
      throw new UserError(`agent socket path ${sockPath} is longer than a unix socket allows (108 bytes); set MANA_TMPDIR to a shorter dir`);
    }
    let self: ProcSocketServer | undefined;
    const server = net.createServer((socket) => {
      const conn = new ProcConnection(socket, onMessage, (c, why) => {
        self?.conns.delete(c);
        onClose(c, why);
      });
      self?.conns.add(conn);
    });
    self = new ProcSocketServer(sockPath, server);
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(sockPath, () => {
        server.off("error", reject);
        resolve();
      });
    });
    fs.chmodSync(sockPath, 0o600);
    return self;
  }

  close(): void {
    for (const c of this.conns) c.close("agent exiting");
    this.server.close();
    try {
      fs.unlinkSync(this.path);
    } catch {
      // already gone
    }
  }
}
