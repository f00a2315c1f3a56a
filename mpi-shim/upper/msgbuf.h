/* Point-to-point messages a checkpoint received into the upper half (msgbuf.c), and the
   receive-side hooks that deliver them before the lower half is asked. */
#ifndef MANA_MSGBUF_H
#define MANA_MSGBUF_H
#include <mpi.h>
#include <stdint.h>

/* Buffered messages not yet delivered (queued, or matched by MPI_Improbe and awaiting
   MPI_Mrecv). Zero in normal running: every hook below sits behind one test of it. */
extern int64_t shim_mb_live;

/* The checkpoint thread, holding the lower half: receives every message waiting unmatched on
   one of the application's communicators into the buffer; returns how many. */
int64_t mb_drain(MPI_Comm comm);

/* Receive-side hooks, called inside shim_enter when shim_mb_live != 0: each returns the MPI
   return code when a buffered message served the call, -1 when the lower half must. */
int mb_recv(void *buf, int count, MPI_Datatype dt, int source, int tag, MPI_Comm comm, MPI_Status *status);
int mb_irecv(void *buf, int count, MPI_Datatype dt, int source, int tag, MPI_Comm comm, MPI_Request *request);
/* mb_irecv's core for a request the caller already has (MPI_Start of a persistent receive):
   *real becomes a completed stand-in */
int mb_irecv_real(void *buf, int count, MPI_Datatype dt, int source, int tag, MPI_Comm comm, uint64_t *real);
int mb_iprobe(int source, int tag, MPI_Comm comm, int *flag, MPI_Status *status);
int mb_improbe(int source, int tag, MPI_Comm comm, int *flag, MPI_Message *message, MPI_Status *status);
int mb_mrecv(void *buf, int count, MPI_Datatype dt, MPI_Message *message, MPI_Status *status);
int mb_imrecv(void *buf, int count, MPI_Datatype dt, MPI_Message *message, MPI_Request *request);
#endif
