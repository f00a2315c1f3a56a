// The per-job token (DESIGN §5): a coordinator listening on anything but loopback accepts only
// calls carrying it as "mana-token" metadata. It is kept in a 0600 file in the user's 0700
// runtime dir, named by port, where local clients find it; remote clients get it through
// --token-file / MANA_TOKEN_FILE (e.g. on a shared home).
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { userRuntimeDir } from "../paths.js";

export function ensurePrivateDir(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = fs.statSync(dir);
  if ((st.mode & 0o077) !== 0) fs.chmodSync(dir, 0o700);
}

export function defaultTokenFile(port: number): string {
  return path.join(userRuntimeDir(), `coord-${port}.token`);
}

export function newToken(): string {
  return randomBytes(24).toString("hex");
}

/** Writes the token with mode 0600 (created exclusively via a temp name, then renamed). */
export function writeTokenFile(file: string, token: string): void {
  ensurePrivateDir(path.dirname(file));
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, token + "\n", { mode: 0o600, flag: "w" });
  fs.chmodSync(tmp, 0o600);
  fs.renameSync(tmp, file);
}

/** The token a client should present: --token-file, MANA_TOKEN_FILE, else the per-port file. */
export function readClientToken(port: number, tokenFile?: string): string | undefined {
  const candidates = [tokenFile, process.env.MANA_TOKEN_FILE, defaultTokenFile(port)];
  for (const f of candidates) {
    if (!f) continue;
    try {
      const t = fs.readFileSync(f, "utf8").trim();
      if (t) return t;
    } catch {
      // missing or unreadable: try the next one
    }
  }
  return undefined;
}

export function isLoopback(addr: string): boolean {
  return addr === "localhost" || addr === "::1" || addr === "[::1]" || /^127\./.test(addr);
}
