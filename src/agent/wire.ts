// Framing of the agent <-> process protocol (native/include/mana_wire.h): a 16-byte
// little-endian header {u32 magic, u16 version, u16 type, u32 payload_len, u32 reserved}
// followed by a UTF-8 payload of "key=value\n" lines.
import {
  MANA_WIRE_HEADER_SIZE,
  MANA_WIRE_MAGIC,
  MANA_WIRE_MAX_PAYLOAD,
  MANA_WIRE_VERSION,
  MSG_TYPES,
  type MsgName,
} from "./wire.gen.js";

export type WireFields = Record<string, string>;

export interface WireMessage {
  type: number;
  /** Name of the type, or "UNKNOWN(n)" for a type this agent does not know. */
  name: MsgName | `UNKNOWN(${number})`;
  fields: WireFields;
}

const NAMES = new Map<number, MsgName>(Object.entries(MSG_TYPES).map(([k, v]) => [v, k as MsgName]));

export function msgName(type: number): WireMessage["name"] {
  return NAMES.get(type) ?? `UNKNOWN(${type})`;
}

export function encodePayload(fields: WireFields): Buffer {
  let text = "";
  for (const [k, v] of Object.entries(fields)) {
    if (!/^[a-z_]+$/.test(k)) throw new Error(`wire: bad key ${JSON.stringify(k)}`);
    if (/[\n\0]/.test(v)) throw new Error(`wire: value of ${k} contains a newline or NUL`);
    text += `${k}=${v}\n`;
  }
  return Buffer.from(text, "utf8");
}

export function decodePayload(buf: Buffer): WireFields {
  const fields: WireFields = {};
  for (const line of buf.toString("utf8").split("\n")) {
    if (!line) continue;
    const eq = line.indexOf("=");
    if (eq <= 0) continue; // tolerate junk lines: new keys may appear without a version bump
    fields[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return fields;
}

export function encodeMessage(type: MsgName | number, fields: WireFields = {}): Buffer {
  const t = typeof type === "number" ? type : MSG_TYPES[type];
  const payload = encodePayload(fields);
  if (payload.length > MANA_WIRE_MAX_PAYLOAD) throw new Error(`wire: payload of ${payload.length} bytes is too large`);
  const hdr = Buffer.alloc(MANA_WIRE_HEADER_SIZE);
  hdr.writeUInt32LE(MANA_WIRE_MAGIC >>> 0, 0);
  hdr.writeUInt16LE(MANA_WIRE_VERSION, 4);
  hdr.writeUInt16LE(t, 6);
  hdr.writeUInt32LE(payload.length, 8);
  hdr.writeUInt32LE(0, 12);
  return Buffer.concat([hdr, payload]);
}

/** Incremental decoder: feed() socket data, get whole messages. Throws on a corrupt stream. */
export class WireDecoder {
  private buf: Buffer = Buffer.alloc(0);

  feed(chunk: Buffer): WireMessage[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const out: WireMessage[] = [];
    while (this.buf.length >= MANA_WIRE_HEADER_SIZE) {
      const magic = this.buf.readUInt32LE(0);
      if (magic !== MANA_WIRE_MAGIC >>> 0) throw new Error(`wire: bad magic 0x${magic.toString(16)}`);
      const version = this.buf.readUInt16LE(4);
      if (version !== MANA_WIRE_VERSION) throw new Error(`wire: protocol version ${version}, agent speaks ${MANA_WIRE_VERSION}`);
      const type = this.buf.readUInt16LE(6);
      const len = this.buf.readUInt32LE(8);
      if (len > MANA_WIRE_MAX_PAYLOAD) throw new Error(`wire: payload of ${len} bytes exceeds ${MANA_WIRE_MAX_PAYLOAD}`);
      if (this.buf.length < MANA_WIRE_HEADER_SIZE + len) break;
      const payload = this.buf.subarray(MANA_WIRE_HEADER_SIZE, MANA_WIRE_HEADER_SIZE + len);
      out.push({ type, name: msgName(type), fields: decodePayload(payload) });
      this.buf = this.buf.subarray(MANA_WIRE_HEADER_SIZE + len);
    }
    return out;
  }
}

export function intField(f: WireFields, key: string, dflt = 0): number {
  const v = f[key];
  if (v === undefined || v === "") return dflt;
  const n = Number(v);
  return Number.isFinite(n) ? n : dflt;
}
