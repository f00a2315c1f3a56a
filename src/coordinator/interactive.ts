// Interactive keys when the coordinator runs in the foreground on a terminal (as DMTCP's):
// c checkpoint, s status, l list, k kill, q quit, h help.
import type { Coordinator } from "./coordinator.js";
import { formatList, formatStatus } from "../cli/format.js";

const HELP = "keys: c checkpoint  s status  l list  k kill  q quit  h help";

export function startInteractive(coord: Coordinator, out: NodeJS.WritableStream = process.stdout): void {
  const stdin = process.stdin;
  if (!stdin.isTTY) return;
  stdin.setRawMode(true);
  stdin.setEncoding("utf8");
  out.write(`${HELP}\n`);
  stdin.on("data", (data: string) => {
    for (const ch of data) {
      switch (ch) {
        case "c":
          out.write("checkpoint requested\n");
          void coord.checkpoint(true).then((r) =>
            out.write(r.ok ? `generation ${r.generation} committed: ${r.dir} (${r.bytes} bytes, ${(r.millis / 1000).toFixed(2)} s)\n` : `${r.error}\n`),
          );
          break;
        case "s":
          out.write(formatStatus(coord.status()) + "\n");
          break;
        case "l":
          out.write(formatList(coord.list()) + "\n");
          break;
        case "k":
          out.write(`killing ${coord.kill()} process(es)\n`);
          break;
        case "q":
          out.write("quitting\n");
          coord.quit();
          break;
        case "\u0003": // Ctrl-C in raw mode: leave the job running, as SIGINT does
          process.kill(process.pid, "SIGINT");
          break;
        case "h":
        case "?":
          out.write(`${HELP}\n`);
          break;
        case "\r":
        case "\n":
          break;
        default:
          out.write(`unknown key ${JSON.stringify(ch)}; ${HELP}\n`);
      }
    }
  });
}

export function stopInteractive(): void {
  if (process.stdin.isTTY) {
    process.stdin.setRawMode(false);
    process.stdin.pause();
  }
}
