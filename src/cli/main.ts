// mana: command-line entry point. Every user error is one line "mana <cmd>: ...", exit 1
// (2 for usage errors); MANA_DEBUG=1 adds stack traces for unexpected errors.
import { MANA_VERSION } from "../config.js";
import { UserError, errorMessage } from "../errors.js";

const COMMANDS: Record<string, () => Promise<(argv: string[]) => Promise<number>>> = {
  coordinator: async () => (await import("./cmd-coordinator.js")).cmdCoordinator,
  launch: async () => (await import("./cmd-launch.js")).cmdLaunch,
  command: async () => (await import("./cmd-command.js")).cmdCommand,
  restart: async () => (await import("./cmd-restart.js")).cmdRestart,
  inspect: async () => (await import("./cmd-inspect.js")).cmdInspect,
  rsh: async () => (await import("./cmd-rsh.js")).cmdRsh,
  "node-agent": async () => (await import("./cmd-node-agent.js")).cmdNodeAgent,
  mpicc: async () => (await import("./cmd-mpicc.js")).wrapperMain("mpicc"),
  mpicxx: async () => (await import("./cmd-mpicc.js")).wrapperMain("mpicxx"),
  mpif90: async () => (await import("./cmd-mpicc.js")).wrapperMain("mpif90"),
};

const HELP = `usage: mana COMMAND [OPTIONS]

Transparent checkpoint/restart of Linux processes and MPI jobs (DMTCP-style).

commands:
  coordinator   run a job's coordinator (checkpoint state machine, generations)
  launch        run a program under mana:  mana launch [-i SECS] [--] PROGRAM ARGS...
                (or an MPI job: mana launch mpirun -n 4 ./app)
  command       ask the running coordinator: --status --list --checkpoint --bcheckpoint ...
  restart       restart the job from a checkpoint generation (default <ckptdir>/latest)
  inspect       show (and --verify) a checkpoint image or generation
  rsh, node-agent
                ranks on other nodes: the remote shell mana gives MPI launchers, and
                the agent it starts on each node (docs/multi-node.md)
  mpicc, mpicxx, mpif90
                compile MPI programs against mana's MPI shim (-show prints the command)

Run "mana COMMAND --help" for a command's options. Version ${MANA_VERSION}.`;

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === "--help" || cmd === "-h" || cmd === "help") {
    process.stdout.write(HELP + "\n");
    return cmd === undefined ? 2 : 0;
  }
  if (cmd === "--version" || cmd === "-V") {
    process.stdout.write(`mana ${MANA_VERSION}\n`);
    return 0;
  }
  const load = COMMANDS[cmd];
  if (!load) {
    process.stderr.write(`mana: unknown command ${JSON.stringify(cmd)} (commands: ${Object.keys(COMMANDS).join(", ")}; see mana --help)\n`);
    return 2;
  }
  try {
    const run = await load();
    return await run(rest);
  } catch (err) {
    if (err instanceof UserError) {
      const msg = err.message.replace(/^mana: /, "");
      process.stderr.write(`mana ${cmd}: ${msg}\n`);
      return err.exitCode;
    }
    process.stderr.write(`mana ${cmd}: internal error: ${errorMessage(err)} (MANA_DEBUG=1 shows details)\n`);
    if (process.env.MANA_DEBUG) process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
    return 1;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Leftover handles (a gRPC channel closing, a retry timer) must not hold the exit back.
    setTimeout(() => process.exit(code), 200).unref();
  },
  (err: unknown) => {
    process.stderr.write(`mana: internal error: ${errorMessage(err)}\n`);
    process.exitCode = 1;
  },
);
