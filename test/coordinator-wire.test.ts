// The agent <-> process framing (mana_wire.h) and its generated constants.
import t from "tap";
import { readFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { encodeMessage, WireDecoder, decodePayload } from "../src/agent/wire.js";
import { MANA_WIRE_MAGIC, MSG_TYPES } from "../src/agent/wire.gen.js";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..");

t.test("wire.gen.ts is what gen-wire.mjs makes of mana_wire.h", async (t) => {
  const before = readFileSync(join(repo, "src", "agent", "wire.gen.ts"), "utf8");
  const r = spawnSync(process.execPath, [join(repo, "scripts", "gen-wire.mjs")]);
  t.equal(r.status, 0, r.stderr.toString());
  t.equal(readFileSync(join(repo, "src", "agent", "wire.gen.ts"), "utf8"), before, "regenerating changes nothing");
  const h = readFileSync(join(repo, "native", "include", "mana_wire.h"), "utf8");
  for (const [name, v] of Object.entries(MSG_TYPES)) {
    t.match(h, new RegExp(`#define MANA_MSG_${name} ${v}\\b`), `MANA_MSG_${name} = ${v}`);
  }
});

t.test("header layout: 16 bytes little-endian, then key=value lines", async (t) => {
  const b = encodeMessage("WRITE", { generation: "3", path: "/x/rank-00000.img", compress: "1" });
  t.equal(b.readUInt32LE(0), MANA_WIRE_MAGIC);
  t.equal(b.subarray(0, 4).toString("latin1"), "MANA");
  t.equal(b.readUInt16LE(4), 1, "version");
  t.equal(b.readUInt16LE(6), MSG_TYPES.WRITE, "type");
  const payload = "generation=3\npath=/x/rank-00000.img\ncompress=1\n";
  t.equal(b.readUInt32LE(8), payload.length, "payload_len");
  t.equal(b.readUInt32LE(12), 0, "reserved");
  t.equal(b.subarray(16).toString(), payload);
});

t.test("decoder: split and coalesced chunks, unknown keys, errors", async (t) => {
  const a = encodeMessage("HELLO", { proc_id: "0", pid: "42", host: "n1", restarted: "0" });
  const b = encodeMessage("SUSPENDED", { ok: "1" });
  const all = Buffer.concat([a, b]);
  const d = new WireDecoder();
  const got = [];
  for (let i = 0; i < all.length; i += 5) got.push(...d.feed(all.subarray(i, i + 5)));
  t.same(got.map((m) => m.name), ["HELLO", "SUSPENDED"]);
  t.same(got[0]?.fields, { proc_id: "0", pid: "42", host: "n1", restarted: "0" });
  t.same(new WireDecoder().feed(all).length, 2, "two messages in one chunk");
  t.same(decodePayload(Buffer.from("a=1\njunk\nb=x=y\n")), { a: "1", b: "x=y" }, "tolerant of junk, '=' in values");
  const bad = Buffer.from(a);
  bad.writeUInt32LE(0xdeadbeef, 0);
  t.throws(() => new WireDecoder().feed(bad), /bad magic/);
  const big = Buffer.from(a);
  big.writeUInt32LE(1 << 20, 8);
  t.throws(() => new WireDecoder().feed(big), /exceeds/);
  t.throws(() => encodeMessage("HELLO", { host: "a\nb" }), /newline/);
  t.equal(new WireDecoder().feed(encodeMessage(99)).at(0)?.name, "UNKNOWN(99)");
});
