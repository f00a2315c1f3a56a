// Where the coordinator is, from flags, then the environment, then DMTCP's defaults.
import * as fs from "node:fs";
import { DEFAULT_COORD_HOST, DEFAULT_COORD_PORT } from "../config.js";
import { UsageError, UserError } from "../errors.js";
import type { CoordAddress } from "../rpc/client.js";
import { optString, parseIntOpt, type OptSpec, type Parsed } from "./args.js";

export const COORD_OPTS: OptSpec[] = [
  { name: "coord-host", value: true, aliases: ["host"] },
  { name: "coord-port", value: true, aliases: ["port"], short: "p" },
  { name: "port-file", value: true },
  { name: "token-file", value: true },
];

export function readPortFile(cmd: string, file: string): number {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8").trim();
  } catch {
    throw new UserError(`cannot read port file ${file} (was the coordinator started with --port-file ${file}?)`);
  }
  if (!/^\d+$/.test(text)) throw new UserError(`port file ${file} does not hold a port number`);
  return parseIntOpt(cmd, "port in " + file, text, 1, 65535);
}

/** portFromFile: a client reads --port-file when no --coord-port is given. */
export function coordAddress(cmd: string, p: Parsed, portFromFile: boolean): CoordAddress {
  const host = optString(p, "coord-host") || process.env.MANA_COORD_HOST || DEFAULT_COORD_HOST;
  const portArg = optString(p, "coord-port");
  const portFile = optString(p, "port-file");
  let port: number;
  if (portArg !== undefined) port = parseIntOpt(cmd, "--coord-port", portArg, 0, 65535);
  else if (portFromFile && portFile && fs.existsSync(portFile)) port = readPortFile(cmd, portFile);
  else if (process.env.MANA_COORD_PORT) {
    const v = process.env.MANA_COORD_PORT;
    if (!/^\d+$/.test(v)) throw new UsageError(`MANA_COORD_PORT must be a port number, not ${JSON.stringify(v)}`);
    port = parseIntOpt(cmd, "MANA_COORD_PORT", v, 0, 65535);
  } else port = DEFAULT_COORD_PORT;
  return { host, port };
}
