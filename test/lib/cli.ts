// Helpers of the CLI tests (test/cli-*.test.ts): the CLI run as a child process with extra
// environment, and a coordinator on a free port. Real processes only.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const manaBin = join(repo, "bin", "mana");

/** Compiles src/ when dist/ is missing or older than the sources (the CLI runs from dist/). */
export function buildIfStale(): void {
  const main = join(repo, "dist", "cli", "main.js");
  const newest = (d: string): number =>
    readdirSync(d, { withFileTypes: true }).reduce(
      (m, e) => Math.max(m, e.isDirectory() ? newest(join(d, e.name)) : statSync(join(d, e.name)).mtimeMs),
      0,
    );
  if (existsSync(main) && statSync(main).mtimeMs >= newest(join(repo, "src"))) return;
  spawnSync(process.execPath, [join(repo, "scripts", "gen-wire.mjs")], { stdio: "inherit" });
  const r = spawnSync(process.execPath, [join(repo, "node_modules", "typescript", "bin", "tsc"), "-p", join(repo, "tsconfig.json")], { stdio: "inherit" });
  if (r.status !== 0) throw new Error("tsc failed");
}

export interface Done { code: number | null; stdout: string; stderr: string }

export function mana(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 60_000): Promise<Done> {
  return new Promise((res) => {
    const c = spawn(process.execPath, [manaBin, ...args], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    c.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    c.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => c.kill("SIGKILL"), timeoutMs);
    c.on("close", (code) => {
      clearTimeout(timer);
      res({ code, stdout, stderr });
    });
  });
}

export const lines = (s: string): string[] => s.split("\n").filter((l) => l.trim() !== "");
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A real coordinator on --port 0; the port comes from --port-file. */
export async function startCoordinator(dir: string, env: NodeJS.ProcessEnv = {}): Promise<{ port: number; stop: () => Promise<void> }> {
  const portFile = join(dir, "port");
  const c = spawn(process.execPath, [manaBin, "coordinator", "--port", "0", "--port-file", portFile, "--ckptdir", join(dir, "ckpt")], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "ignore", "pipe"],
  });
  const exited = new Promise<void>((r) => c.on("close", () => r()));
  for (let i = 0; i < 200 && !existsSync(portFile); i++) await sleep(50);
  const port = Number(readFileSync(portFile, "utf8").trim());
  return {
    port,
    stop: async () => {
      c.kill("SIGKILL");
      await exited;
    },
  };
}
