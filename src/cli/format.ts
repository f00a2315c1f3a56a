// Human-readable renderings of coordinator replies (the --json forms print the replies as is).
import type { ListReply, StatusReply } from "../rpc/types.js";

export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(1)} ${units[u]}`;
}

export function formatDuration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 120) return `${(ms / 1000).toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 120) return `${m} min ${s % 60} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

export function formatStatus(s: StatusReply): string {
  const rows: [string, string][] = [
    ["job", s.jobId || "(none yet)"],
    ["state", s.state],
    ["processes", `${s.numProcs} (${s.numAgents} agent${s.numAgents === 1 ? "" : "s"})`],
    ["coordinator", `${s.host}:${s.port} (pid ${s.pid}, up ${formatDuration(s.uptimeMs)}, mana ${s.version})`],
    ["ckptdir", s.ckptDir],
    ["interval", s.intervalSecs ? `${s.intervalSecs} s` : "off"],
    ["last generation", s.lastGeneration ? `${s.lastGeneration} (${s.lastGenerationDir})` : "none"],
  ];
  if (s.command) rows.push(["command", s.command]);
  if (s.mpiFlavour) rows.push(["mpi", s.mpiFlavour]);
  if (s.checkpointInProgress) rows.push(["checkpoint", formatCheckpointProgress(s)]);
  if (s.lastError) rows.push(["last error", s.lastError]);
  return rows.map(([k, v]) => `${(k + ":").padEnd(17)}${v}`).join("\n");
}

/**
 * The checkpoint in progress by phase, as status and the --bcheckpoint progress line show it:
 * "generation 3: SUSPENDING, 1/2 ranks drained, 0/2 written, 0 B, 2.1 s". An MPI rank counts
 * as drained once its messages are quiet and its threads are parked.
 */
export function formatCheckpointProgress(s: StatusReply): string {
  const n = s.procsInCheckpoint;
  const suspended = s.mpiFlavour ? `${s.procsSuspended}/${n} ranks drained` : `${s.procsSuspended}/${n} suspended`;
  const bytes = s.progressRawTotal ? `${formatBytes(s.progressRawDone)} / ${formatBytes(s.progressRawTotal)}` : formatBytes(s.progressRawDone);
  return `generation ${s.checkpointGeneration}: ${s.state}, ${suspended}, ${s.procsWritten}/${n} written, ${bytes}, ${formatDuration(s.checkpointElapsedMs)}`;
}

export function formatList(l: ListReply): string {
  if (l.procs.length === 0) return "no processes";
  const header = ["PROCID", "PID", "HOST", "STATE", "RESTARTED", "COMMAND"];
  const rows = l.procs.map((p) => [
    p.launcher ? "launcher" : String(p.procId),
    String(p.pid),
    p.host,
    // a launcher never connects: it is not checkpointed, only watched
    p.launcher ? p.state : p.state + (p.connected ? "" : " (not connected)"),
    p.restarted ? `gen ${p.generation}` : "no",
    p.command,
  ]);
  return table([header, ...rows]);
}

export function table(rows: string[][]): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows
    .map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join("  ").trimEnd())
    .join("\n");
}
