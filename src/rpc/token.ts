// The per-job token (DESIGN §5): every coordinator, loopback included (a shared login node has
// other users on 127.0.0.1), accepts only calls carrying it as "mana-token" metadata. It is
// kept in a 0600 file in the user's 0700 runtime dir, named by port, where local clients of
// the same user find it; remote clients get it through --token-file / MANA_TOKEN_FILE.
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { UserError } from "../errors.js";
import { writeFileAtomic } from "../fs-atomic.js";
import { userRuntimeDir } from "../paths.js";

/**
 * Creates or checks a runtime dir that must be private to this user. Only call it on the
 * runtime dir itself, never on a directory a user named (chmod'ing /tmp as root would be bad).
 * A symlink or a dir of another user there could be a trap set by someone else: refuse it.
 */
export function ensurePrivateDir(dir: string): void {
  try {
    fs.mkdirSync(dir, { mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") {
      fs.mkdirSync(path.dirname(dir), { recursive: true });
      fs.mkdirSync(dir, { mode: 0o700 });
    } else if ((err as NodeJS.ErrnoException).code !== "EEXIST") {
      throw new UserError(`cannot create the runtime dir ${dir}: ${(err as Error).message} (set MANA_TMPDIR to another place)`);
    }
  }
  const st = fs.lstatSync(dir);
  const uid = typeof process.getuid === "function" ? process.getuid() : st.uid;
  if (st.isSymbolicLink() || !st.isDirectory() || st.uid !== uid) {
    const what = st.isSymbolicLink() ? "is a symlink" : !st.isDirectory() ? "is not a directory" : `belongs to uid ${st.uid}, not ${uid}`;
    throw new UserError(`the runtime dir ${dir} ${what}; remove it, or set MANA_TMPDIR to a directory of your own`);
  }
  if ((st.mode & 0o077) !== 0) fs.chmodSync(dir, 0o700);
}

export function defaultTokenFile(port: number): string {
  return path.join(userRuntimeDir(), `coord-${port}.token`);
}

export function newToken(): string {
  return randomBytes(24).toString("hex");
}

/**
 * Writes the token with mode 0600 through an exclusively created temp file beside `file`.
 * The runtime dir is made private first; a user-given file's directory is left as it is.
 */
export function writeTokenFile(file: string, token: string): void {
  if (path.resolve(path.dirname(file)) === path.resolve(userRuntimeDir())) ensurePrivateDir(userRuntimeDir());
  writeFileAtomic(file, token + "\n", { mode: 0o600, fsync: true });
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
