// Coordinator log lines: "mana coordinator: <time> <message>" on stderr (the log file when
// daemonized), so a user tailing mana_coordinator.log sees what happened when.

export type Logger = (msg: string) => void;

export function makeLogger(prefix: string, stream: NodeJS.WritableStream = process.stderr): Logger {
  return (msg: string) => {
    const t = new Date().toISOString().replace("T", " ").replace("Z", "");
    stream.write(`${prefix}: ${t} ${msg}\n`);
  };
}
