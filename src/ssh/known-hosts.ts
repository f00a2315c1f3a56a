// Host-key checking against OpenSSH known_hosts files (DESIGN §5: ssh2 accepts any key unless
// told otherwise). Understood: plain and hashed (|1|salt|hmac) host patterns, [host]:port for
// other ports, * and ? wildcards, !negation, and the @revoked marker; @cert-authority lines
// are skipped (mana does not check host certificates).
import { createHmac } from "node:crypto";
import * as fs from "node:fs";

export type HostKeyVerdict = "known" | "unknown" | "changed" | "revoked";

interface Entry {
  marker: "" | "@revoked" | "@cert-authority";
  patterns: string;
  type: string;
  key: Buffer;
}

function parse(text: string): Entry[] {
  const out: Entry[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const f = line.split(/\s+/);
    let marker: Entry["marker"] = "";
    if (f[0] === "@revoked" || f[0] === "@cert-authority") marker = f.shift() as Entry["marker"];
    if (f.length < 3) continue;
    out.push({ marker, patterns: f[0] as string, type: f[1] as string, key: Buffer.from(f[2] as string, "base64") });
  }
  return out;
}

/** How OpenSSH names a host in known_hosts: the bare name on port 22, else [name]:port. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

function globMatch(pattern: string, name: string): boolean {
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".")}$`, "i");
  return re.test(name);
}

function hashedMatch(pattern: string, name: string): boolean {
  const [, magic, salt, hash] = pattern.split("|");
  if (magic !== "1" || !salt || !hash) return false;
  return createHmac("sha1", Buffer.from(salt, "base64")).update(name).digest("base64") === hash;
}

function entryNames(e: Entry, name: string): boolean {
  if (e.patterns.startsWith("|")) return hashedMatch(e.patterns, name);
  let hit = false;
  for (const p of e.patterns.split(",")) {
    if (p.startsWith("!")) {
      if (globMatch(p.slice(1), name)) return false;
    } else if (globMatch(p, name)) {
      hit = true;
    }
  }
  return hit;
}

function readEntries(files: string[]): Entry[] {
  return files.flatMap((f) => {
    try {
      return parse(fs.readFileSync(f, "utf8"));
    } catch {
      return [];
    }
  });
}

/** The host key algorithms known_hosts has keys of for a host (an RSA key allows its SHA-2 signatures). */
export function knownKeyTypes(files: string[], host: string, port: number): string[] {
  const name = knownHostsName(host, port);
  const types = new Set<string>();
  for (const e of readEntries(files)) {
    if (e.marker !== "" || !entryNames(e, name)) continue;
    if (e.type === "ssh-rsa") ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"].forEach((x) => types.add(x));
    else types.add(e.type);
  }
  return [...types];
}

/**
 * What the known_hosts files say about `key` (the host key blob as the server sent it) for a
 * host reached as `host` on `port`: known (a line names the host with this key), changed (lines
 * name the host, with other keys only), revoked, or unknown. Unreadable files count as empty.
 */
export function checkHostKey(files: string[], host: string, port: number, key: Buffer): HostKeyVerdict {
  const name = knownHostsName(host, port);
  const entries = readEntries(files);
  // a revoked key is refused whatever else lists it
  if (entries.some((e) => e.marker === "@revoked" && e.key.equals(key))) return "revoked";
  const named = entries.filter((e) => e.marker === "" && entryNames(e, name));
  if (named.some((e) => e.key.equals(key))) return "known";
  return named.length ? "changed" : "unknown";
}
