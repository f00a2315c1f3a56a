// Ranks on other nodes (docs/multi-node.md). An MPI launcher starts its daemon on each other
// node (Hydra's hydra_pmi_proxy, Open MPI's orted) through a remote shell; mana gives it
// `mana rsh` as that shell. mana rsh logs in with ssh2 and runs the daemon under
// `mana node-agent`, which attaches to the job's coordinator and adopts the ranks of its node.
// This file is the contract between the three: the environment each passes on, and the
// remote command line.
import * as path from "node:path";
import { MANA_BIN, REPO_ROOT } from "../paths.js";
import { isLoopback } from "../rpc/token.js";
import { MANA_ENV_AGENT_SOCK, MANA_ENV_NODE_SOCK, MANA_ENV_PROC_ID } from "../agent/wire.gen.js";

/** What the head's agent tells mana rsh (through the launcher's environment). */
export const RSH_COORD_HOST = "MANA_RSH_COORD_HOST";
export const RSH_COORD_PORT = "MANA_RSH_COORD_PORT";
export const RSH_TOKEN_FILE = "MANA_RSH_TOKEN_FILE";
export const RSH_JOB_ID = "MANA_RSH_JOB_ID";
export const RSH_COMPRESS = "MANA_RSH_COMPRESS";
/** How mana rsh hands the node agent the job's token: on the remote command's stdin, never argv. */
export const NODE_TOKEN_ENV = "MANA_COORD_TOKEN";

/**
 * The exit status of a remote command that never started the launcher's daemon (ssh's own
 * status for a failed connection): the node agent could not attach, or the login failed.
 */
export const NOT_STARTED = 255;

/** The remote shell given to MPI launchers. */
export const RSH_BIN = path.join(REPO_ROOT, "bin", "mana-rsh");

export function rshEnv(o: { host: string; port: number; tokenFile: string; jobId: string; compress: number }): Record<string, string> {
  return { [RSH_COORD_HOST]: o.host, [RSH_COORD_PORT]: String(o.port), [RSH_TOKEN_FILE]: o.tokenFile, [RSH_JOB_ID]: o.jobId, [RSH_COMPRESS]: String(o.compress) };
}

/**
 * The launcher settings that make it start remote daemons through mana rsh. Left alone: a
 * launcher the user configured, and Hydra inside a Slurm allocation (it starts its proxies
 * with srun there; see docs/multi-node.md, limits).
 */
export function remoteShellEnv(flavour: "mpich" | "openmpi", base: NodeJS.ProcessEnv): Record<string, string> {
  const env: Record<string, string> = {};
  if (flavour === "mpich") {
    if (!base.HYDRA_LAUNCHER && !base.HYDRA_BOOTSTRAP && !base.HYDRA_LAUNCHER_EXEC && !base.SLURM_JOB_ID) {
      env.HYDRA_LAUNCHER = "ssh";
      env.HYDRA_LAUNCHER_EXEC = RSH_BIN;
    }
  } else if (!base.OMPI_MCA_plm_rsh_agent) {
    env.OMPI_MCA_plm_rsh_agent = RSH_BIN;
    // every daemon from the head: a daemon starting others would need its own coordinator route
    if (!base.OMPI_MCA_plm_rsh_no_tree_spawn) env.OMPI_MCA_plm_rsh_no_tree_spawn = "1";
    // orted would daemonize, away from the node agent that must outlive its ranks
    if (!base.OMPI_MCA_orte_leave_session_attached) env.OMPI_MCA_orte_leave_session_attached = "1";
  }
  return env;
}

/**
 * The coordinator address a node agent dials directly: the one the head's agent uses when it
 * is a real address (a coordinator elsewhere, or bound to a chosen interface); undefined when
 * the coordinator is this host's loopback (the default), which nodes reach through mana rsh's
 * ssh connection instead (docs/multi-node.md).
 */
export function directCoordHost(headView: string | undefined): string | undefined {
  if (!headView || headView === "0.0.0.0" || headView === "::" || isLoopback(headView)) return undefined;
  return headView;
}

/** Where the relay on the head dials a coordinator seen as `headView` (a loopback or wildcard address). */
export function loopbackDial(headView: string | undefined): string {
  if (!headView || headView === "0.0.0.0") return "127.0.0.1";
  if (headView === "::") return "::1";
  return headView;
}

/** How the node agent reaches the coordinator: a unix socket forwarded over ssh, or TCP. */
export type NodeCoordRoute = { socket: string } | { host: string; port: number };

/** Variables of a launcher's environment that must not reach another node. */
const NODE_LOCAL = new Set([MANA_ENV_AGENT_SOCK, MANA_ENV_NODE_SOCK, MANA_ENV_PROC_ID, NODE_TOKEN_ENV, RSH_COORD_HOST, RSH_COORD_PORT, RSH_TOKEN_FILE, RSH_JOB_ID, RSH_COMPRESS, "MANA_TOKEN_FILE", "MANA_COORD_HOST", "MANA_COORD_PORT"]);
/**
 * Launcher settings mana made that the remote daemon needs as well; and PMIx's own settings
 * (PMIX_MCA_*), which Open MPI's mpirun does not pass to its orteds itself.
 */
const FORWARDED = ["LD_PRELOAD", "LD_LIBRARY_PATH", "OMPI_ALLOW_RUN_AS_ROOT", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"];

/**
 * The environment mana rsh sets for the remote daemon (and so for its ranks): mana's own
 * variables, the library paths and PMIx settings. The login environment on the node supplies the rest, as
 * with ssh; the launcher passes the application's environment to its ranks itself.
 */
export function forwardedEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) continue;
    if ((k.startsWith("MANA_") && !NODE_LOCAL.has(k)) || k.startsWith("PMIX_MCA_") || FORWARDED.includes(k)) out[k] = v;
  }
  return out;
}

/** Quotes one word for a POSIX shell. */
export function shQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * The command line mana rsh runs on the node, through the login shell as ssh does: read the
 * token from stdin (so it is never in a process's argv), then run the launcher's command
 * (`words`, joined as ssh joins them) under the node agent. MANA_REMOTE_MANA replaces the
 * path of mana on the node (default: this installation's, the same path on every node).
 */
export function remoteCommand(o: {
  cwd: string;
  env: Record<string, string>;
  coord: NodeCoordRoute;
  jobId: string;
  compress: string;
  words: string[];
  manaCommand?: string;
}): string {
  const mana = o.manaCommand?.trim() ? o.manaCommand.trim() : `${shQuote(process.execPath)} ${shQuote(MANA_BIN)}`;
  const route = "socket" in o.coord ? ["--coord-socket", o.coord.socket] : ["--coord-host", o.coord.host, "--coord-port", String(o.coord.port)];
  const agentArgs = ["node-agent", ...route, "--job-id", o.jobId, "--compress", o.compress];
  const envWords = Object.entries(o.env).map(([k, v]) => shQuote(`${k}=${v}`));
  return [
    `cd ${shQuote(o.cwd)} 2>/dev/null;`,
    `IFS= read -r ${NODE_TOKEN_ENV} || exit 255;`,
    `export ${NODE_TOKEN_ENV};`,
    `exec env ${envWords.join(" ")} ${mana} ${agentArgs.map(shQuote).join(" ")} -- /bin/sh -c ${shQuote(o.words.join(" "))}`,
  ].join(" ");
}
