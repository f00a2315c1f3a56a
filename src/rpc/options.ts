// gRPC channel/server options shared by every side, so keepalive agrees (DESIGN §6: a server
// rejects pings more frequent than its min_ping_interval and then closes the connection with
// ENHANCE_YOUR_CALM; so the server permits exactly what clients send).

/** Clients ping every 20 s, even with no call active (the agent's stream may be idle for hours). */
export const KEEPALIVE_TIME_MS = 20_000;
export const KEEPALIVE_TIMEOUT_MS = 10_000;

export const CLIENT_OPTIONS = {
  "grpc.keepalive_time_ms": KEEPALIVE_TIME_MS,
  "grpc.keepalive_timeout_ms": KEEPALIVE_TIMEOUT_MS,
  "grpc.keepalive_permit_without_calls": 1,
  // reconnect quickly: the agent has its own retry loop and wants the channel to follow it
  "grpc.initial_reconnect_backoff_ms": 200,
  "grpc.max_reconnect_backoff_ms": 1000,
  "grpc.enable_retries": 0,
} as const;

export const SERVER_OPTIONS = {
  "grpc.keepalive_time_ms": KEEPALIVE_TIME_MS,
  "grpc.keepalive_timeout_ms": KEEPALIVE_TIMEOUT_MS,
  "grpc.keepalive_permit_without_calls": 1,
  // accept client pings at our clients' rate (with margin), without active calls too
  "grpc.http2.min_ping_interval_without_data_ms": KEEPALIVE_TIME_MS / 2,
  "grpc.http2.max_pings_without_data": 0,
} as const;

/** Metadata key carrying the per-job token (DESIGN §5). */
export const TOKEN_METADATA_KEY = "mana-token";
