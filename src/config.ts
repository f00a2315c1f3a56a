// Defaults of the control plane, in one place so benchmarks and docs can point at them.

/** DMTCP's default port, so DMTCP users find the coordinator where they expect it. */
export const DEFAULT_COORD_PORT = 7779;
export const DEFAULT_COORD_HOST = "127.0.0.1";

/**
 * zstd level used when the user asks for neither --compress nor --no-compress (and
 * MANA_COMPRESS is unset). 0 = images stored raw. Set from benchmark results (DESIGN §7 B3/B4).
 */
export const DEFAULT_COMPRESS_LEVEL = 0;
/** Level used for --compress / MANA_COMPRESS=yes. */
export const COMPRESS_ON_LEVEL = 1;

/** Each checkpoint phase (suspend, write, commit, resume) must finish within this. */
export const DEFAULT_PHASE_TIMEOUT_MS = 300_000;

/** How often a disconnected agent retries attaching to its coordinator. */
export const AGENT_RECONNECT_MS = 1000;

/**
 * After the last process is gone because its agent vanished (not a reported exit), an
 * --exit-on-last coordinator waits this long for the agent to come back before exiting.
 */
export const LOST_AGENT_GRACE_MS = 10_000;

export const MANA_VERSION = "0.1.0";
