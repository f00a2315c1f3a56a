/* mana_wire.h — the agent <-> process protocol on the agent's unix socket.
 *
 * This header is the single source of truth for the protocol: src/agent/wire.gen.ts is
 * generated from the MANA_WIRE_* / MANA_MSG_* defines below by scripts/gen-wire.mjs.
 *
 * Every message is a 16-byte header followed by payload_len bytes of payload. The payload is
 * UTF-8 text of "key=value\n" lines (keys [a-z_]+, values without newlines), so it is easy to
 * read in C, TypeScript and strace alike, and new keys can be added without a version bump.
 *
 * Conversation (one socket per process, the process connects):
 *   proc  -> HELLO      proc_id, pid, host, restarted (0|1), generation (of the restored image)
 *                       [mpi_rank, mpi_size]: only in MPI rank mode (MANA_MPI_JOB=1): the rank a
 *                       launcher the agent did not start gave this process (then proc_id equals
 *                       it) and the job's size (absent when the launcher did not say); the agent
 *                       adopts such a process although it is not its child
 *   agent -> SUSPEND    generation                 proc parks all its threads
 *   proc  -> SUSPENDED  ok=1 | error=...
 *   agent -> WRITE      generation, path, compress (zstd level, 0 = raw)
 *   proc  -> PROGRESS   raw_done, stored_done, raw_total (at most every 64 MiB; optional)
 *   proc  -> WRITTEN    ok=1, raw_bytes, stored_bytes, file_size, millis | error=...
 *   agent -> RESUME                                 proc unparks its threads
 *   proc  -> RESUMED
 * Application API (mana.h): mana_checkpoint() asks for a checkpoint of the whole job:
 *   proc  -> CKPT_REQUEST  request (a number chosen by the process)
 *   agent -> CKPT_REPLY    request, ok=1, generation | request, error=...   (once the
 *                          checkpoint is committed or failed; in between, the usual SUSPEND..
 *                          RESUME conversation runs)
 * While the application has checkpoints disabled (mana_disable_ckpt), the process answers
 * SUSPEND only once they are enabled again, or with error=... as soon as the agent sends
 * anything else (the coordinator gave up on the round at its phase timeout).
 * After a restart the restored process connects anew, sends HELLO with restarted=1, and waits
 * for RESUME before any application thread runs again. SUSPEND may also be answered with
 * error=... (for example an unsupported resource); the agent then sends RESUME.
 */
#ifndef MANA_WIRE_H
#define MANA_WIRE_H

#include <stdint.h>

#define MANA_WIRE_MAGIC 0x414e414du /* "MANA" little-endian */
#define MANA_WIRE_VERSION 1
#define MANA_WIRE_HEADER_SIZE 16
#define MANA_WIRE_MAX_PAYLOAD 65536

#define MANA_MSG_HELLO 1
#define MANA_MSG_SUSPEND 2
#define MANA_MSG_SUSPENDED 3
#define MANA_MSG_WRITE 4
#define MANA_MSG_PROGRESS 5
#define MANA_MSG_WRITTEN 6
#define MANA_MSG_RESUME 7
#define MANA_MSG_RESUMED 8
#define MANA_MSG_CKPT_REQUEST 9
#define MANA_MSG_CKPT_REPLY 10

struct mana_wire_header {
  uint32_t magic;       /* MANA_WIRE_MAGIC */
  uint16_t version;     /* MANA_WIRE_VERSION */
  uint16_t type;        /* MANA_MSG_* */
  uint32_t payload_len; /* <= MANA_WIRE_MAX_PAYLOAD */
  uint32_t reserved;    /* 0 */
};

/* Environment understood by libmana (set by the agent for the processes it starts). */
#define MANA_ENV_AGENT_SOCK "MANA_AGENT_SOCK" /* path of the agent's unix socket */
/* the socket of the agent on this node, set by `mana node-agent` on another node of an MPI
 * job: wins over MANA_AGENT_SOCK, which MPICH's launcher hands every rank as it was at the
 * head node (docs/multi-node.md) */
#define MANA_ENV_NODE_SOCK "MANA_NODE_SOCK"
#define MANA_ENV_PROC_ID "MANA_PROC_ID"       /* stable process number */
#define MANA_ENV_CKPT_SIGNAL "MANA_CKPT_SIGNAL" /* signal used to park threads, default SIGUSR2 */
/* "1": fds that cannot be restored (pipes, sockets, devices, eventfd, ...) are recorded as
 * SKIPPED instead of failing the checkpoint (mana launch --drop-unrestorable-fds) */
#define MANA_ENV_DROP_FDS "MANA_DROP_FDS"
/* "1": MPI rank mode. libmana is preloaded into an MPI launcher and inherited by its daemons
 * and ranks: a process with no rank variable (PMI_RANK, OMPI_COMM_WORLD_RANK, PMIX_RANK,
 * SLURM_PROCID with SLURM_STEP_ID) stays inert and leaves the environment alone; a rank uses
 * its rank as proc_id (MANA_PROC_ID is ignored) and names it in HELLO */
#define MANA_ENV_MPI_JOB "MANA_MPI_JOB"

#endif
