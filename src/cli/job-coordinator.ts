// Finding or starting the coordinator of a job, for launch and restart.
// The coordinator is always a separate detached process: SIGKILL of it must not touch the
// application, and SIGKILL of the launcher must not take the coordinator with it.
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { randomBytes } from "node:crypto";
import { UserError } from "../errors.js";
import { MANA_BIN, userRuntimeDir } from "../paths.js";
import { CoordinatorClient, formatAddress, type CoordAddress } from "../rpc/client.js";
import { ensurePrivateDir, isLoopback } from "../rpc/token.js";
import { readPortFile } from "./coord-address.js";

export type CoordMode = "auto" | "join" | "new";

export interface JobCoordinatorRequest {
  cmd: string; // "launch" | "restart", for messages
  mode: CoordMode;
  address: CoordAddress;
  portFile?: string;
  tokenFile?: string;
  ckptDir: string;
  intervalSecs?: number;
  phaseTimeoutMs?: number;
}

export interface JobCoordinator {
  address: CoordAddress;
  started: boolean;
}

/** True when a coordinator answers Status at addr within timeoutMs. */
export async function coordinatorAnswers(addr: CoordAddress, tokenFile: string | undefined, timeoutMs: number): Promise<boolean> {
  const c = new CoordinatorClient(addr, tokenFile);
  try {
    await c.status(timeoutMs);
    return true;
  } catch (err) {
    // UNAUTHENTICATED still means "a coordinator is there"
    return (err as { code?: number }).code === 16;
  } finally {
    c.close();
  }
}

export async function jobCoordinator(req: JobCoordinatorRequest): Promise<JobCoordinator> {
  const { address: addr, mode } = req;
  const shown = formatAddress(addr);
  const answers = addr.port !== 0 && (await coordinatorAnswers(addr, req.tokenFile, 1500));
  if (mode === "new" && answers) {
    throw new UserError(`port ${addr.port} is in use by another coordinator; use --join, or pick another --coord-port`);
  }
  if (mode === "join" && !answers) {
    throw new UserError(`no coordinator at ${shown} to join (start one with mana coordinator, or leave out --join)`);
  }
  if (answers) {
    if (req.intervalSecs !== undefined) {
      const c = new CoordinatorClient(addr, req.tokenFile);
      try {
        await c.setInterval(req.intervalSecs);
      } finally {
        c.close();
      }
    }
    return { address: addr, started: false };
  }
  if (!isLoopback(addr.host) && addr.host !== "0.0.0.0") {
    throw new UserError(`no coordinator at ${shown}, and mana starts coordinators only on this host; start one there with mana coordinator --bind`);
  }
  return { address: await startCoordinator(req), started: true };
}

async function startCoordinator(req: JobCoordinatorRequest): Promise<CoordAddress> {
  const addr = req.address;
  let portFile = req.portFile;
  let tempPortFile: string | undefined;
  if (addr.port === 0 && !portFile) {
    const dir = userRuntimeDir();
    ensurePrivateDir(dir);
    tempPortFile = path.join(dir, `port-${process.pid}-${randomBytes(3).toString("hex")}`);
    portFile = tempPortFile;
  }
  const args = [MANA_BIN, "coordinator", "--daemon", "--quiet", "--exit-on-last", "--port", String(addr.port), "--ckptdir", req.ckptDir];
  if (!isLoopback(addr.host)) args.push("--bind", addr.host);
  if (portFile) args.push("--port-file", portFile);
  if (req.tokenFile) args.push("--token-file", req.tokenFile);
  if (req.intervalSecs !== undefined) args.push("--interval", String(req.intervalSecs));
  if (req.phaseTimeoutMs !== undefined) args.push("--phase-timeout-ms", String(req.phaseTimeoutMs));
  const { code, stderr } = await new Promise<{ code: number; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, args, { stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    child.stderr?.setEncoding("utf8");
    child.stderr?.on("data", (d: string) => (err += d));
    child.on("exit", (c) => resolve({ code: c ?? 1, stderr: err }));
    child.on("error", (e) => resolve({ code: 1, stderr: e.message }));
  });
  if (code !== 0) {
    const line = stderr.trim().split("\n").pop() ?? "";
    throw new UserError(`could not start a coordinator on port ${addr.port}: ${line.replace(/^mana coordinator: /, "") || `exit status ${code}`}`);
  }
  let port = addr.port;
  if (portFile && addr.port === 0) port = readPortFile(req.cmd, portFile);
  if (tempPortFile) fs.rmSync(tempPortFile, { force: true });
  return { host: addr.host === "0.0.0.0" ? "127.0.0.1" : addr.host, port };
}
