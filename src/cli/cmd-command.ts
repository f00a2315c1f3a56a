// mana command: talk to a running coordinator (DMTCP's dmtcp_command).
import { UsageError, UserError } from "../errors.js";
import { CoordinatorClient, formatAddress, grpcCode, grpcDetails, isUnavailable, type CoordAddress } from "../rpc/client.js";
import type { CheckpointReply } from "../rpc/types.js";
import { optFlag, optString, parseArgs, parseSecondsOpt, type OptSpec } from "./args.js";
import { COORD_OPTS, coordAddress } from "./coord-address.js";
import { formatBytes, formatCheckpointProgress, formatList, formatStatus } from "./format.js";
import { HELP_OPT, requireNoPositionals } from "./settings.js";
import * as grpc from "@grpc/grpc-js";

export const COMMAND_HELP = `usage: mana command [--coord-host H --coord-port P] ACTION [--json]

Sends one request to the coordinator of a running job.

actions (exactly one):
  -s, --status          job state, processes, last generation
  -l, --list            the job's processes (procId, pid, host, state)
  -c, --checkpoint      start a checkpoint and return
  --bcheckpoint         checkpoint and wait until the generation is committed (alias --bc)
  --interval SECS       set the checkpoint interval (0 = off)
  -k, --kill            kill the job's processes
  -q, --quit            kill the job's processes and stop the coordinator

options:
  --coord-host H        coordinator host (default $MANA_COORD_HOST, else 127.0.0.1)
  --coord-port P        coordinator port (default $MANA_COORD_PORT, else 7779)
  --port-file F         read the port from F (as written by --port-file of coordinator/launch)
  --token-file F        per-job token file (default: the one the local coordinator wrote for you)
  --json                machine-readable output
  -h, --help            this help`;

const SPECS: OptSpec[] = [
  HELP_OPT,
  ...COORD_OPTS,
  { name: "status", short: "s" },
  { name: "list", short: "l" },
  { name: "checkpoint", short: "c" },
  { name: "bcheckpoint", aliases: ["bc", "blocking-checkpoint"] },
  { name: "interval", short: "i", value: true },
  { name: "kill", short: "k" },
  { name: "quit", short: "q" },
  { name: "json" },
];

const ACTIONS = ["status", "list", "checkpoint", "bcheckpoint", "interval", "kill", "quit"] as const;

export async function cmdCommand(argv: string[]): Promise<number> {
  const p = parseArgs("command", argv, SPECS);
  if (optFlag(p, "help")) {
    process.stdout.write(COMMAND_HELP + "\n");
    return 0;
  }
  requireNoPositionals("command", p);
  const actions = ACTIONS.filter((a) => p.opts.has(a));
  if (actions.length !== 1) {
    throw new UsageError(
      actions.length === 0
        ? "say what to do: --status, --list, --checkpoint, --bcheckpoint, --interval SECS, --kill or --quit (see mana command --help)"
        : `give only one action, not --${actions.join(" and --")}`,
    );
  }
  const action = actions[0] as (typeof ACTIONS)[number];
  const json = optFlag(p, "json");
  const addr = coordAddress("command", p, true);
  const client = new CoordinatorClient(addr, optString(p, "token-file"));
  const out = (obj: unknown, text: string): void => {
    process.stdout.write(json ? JSON.stringify(obj, null, 2) + "\n" : text + "\n");
  };
  try {
    switch (action) {
      case "status": {
        const s = await client.status();
        out(s, formatStatus(s));
        return 0;
      }
      case "list": {
        const l = await client.list();
        out(l, formatList(l));
        return 0;
      }
      case "checkpoint": {
        const r = await client.checkpoint({ blocking: false, killAfter: false }, 10_000);
        if (!r.ok) return checkpointFailed(r, json);
        out(r, `checkpoint generation ${r.generation} started (${r.numProcs} process(es)); it will be committed to ${r.dir}`);
        return 0;
      }
      case "bcheckpoint":
        return await blockingCheckpoint(client, addr, json);
      case "interval": {
        const secs = parseSecondsOpt("command", "--interval", optString(p, "interval") as string, 365 * 86400);
        const r = await client.setInterval(secs);
        out(r, r.intervalSecs ? `checkpoint interval set to ${r.intervalSecs} s` : "interval checkpoints off");
        return 0;
      }
      case "kill": {
        const r = await client.kill();
        out(r, `killing ${r.numProcs} process(es)`);
        return 0;
      }
      case "quit": {
        await client.quit();
        out({ ok: true }, `coordinator at ${formatAddress(addr)} is quitting`);
        return 0;
      }
    }
  } catch (err) {
    throw rpcError(err, addr);
  } finally {
    client.close();
  }
}

export function rpcError(err: unknown, addr: { host: string; port: number }): Error {
  if (err instanceof UserError) return err;
  if (isUnavailable(err)) {
    return new UserError(`no coordinator at ${formatAddress(addr)} (is the job running? check --coord-port / MANA_COORD_PORT)`);
  }
  if (grpcCode(err) === grpc.status.UNAUTHENTICATED) {
    return new UserError(`the coordinator at ${formatAddress(addr)} refused the request: ${grpcDetails(err)}`);
  }
  return new UserError(`request to the coordinator at ${formatAddress(addr)} failed: ${grpcDetails(err)}`);
}

function checkpointFailed(r: CheckpointReply, json: boolean): number {
  if (json) {
    process.stdout.write(JSON.stringify(r, null, 2) + "\n");
    return 1;
  }
  throw new UserError(r.error || "checkpoint failed");
}

async function blockingCheckpoint(client: CoordinatorClient, addr: CoordAddress, json: boolean): Promise<number> {
  // Asked first so that a coordinator dying during the checkpoint is told from one never there.
  const before = await client.status();
  const tty = process.stderr.isTTY && !json;
  let timer: NodeJS.Timeout | undefined;
  if (tty) {
    // Progress line from the coordinator's status; the checkpoint call itself is unary.
    timer = setInterval(() => {
      client.status(2000).then(
        (s) => {
          if (s.checkpointInProgress) process.stderr.write(`\r\x1b[K${formatCheckpointProgress(s)}`);
        },
        () => undefined,
      );
    }, 250);
  }
  try {
    const r = await client.checkpoint({ blocking: true, killAfter: false }).catch((err: unknown) => {
      if (!isUnavailable(err)) throw err;
      const last = before.lastGeneration ? `generation ${before.lastGeneration} (${before.lastGenerationDir})` : "none";
      throw new UserError(`the coordinator at ${formatAddress(addr)} went away during the checkpoint; the last generation it had committed: ${last}`);
    });
    if (tty) process.stderr.write("\r\x1b[K");
    if (!r.ok) return checkpointFailed(r, json);
    if (json) process.stdout.write(JSON.stringify({ ...r, seconds: r.millis / 1000 }, null, 2) + "\n");
    else process.stdout.write(`generation ${r.generation} committed: ${r.dir} (${r.numProcs} process(es), ${formatBytes(r.bytes)}, ${(r.millis / 1000).toFixed(2)} s)\n`);
    return 0;
  } finally {
    if (timer) clearInterval(timer);
  }
}
