/* The buffer of buffered sends (MPI_Buffer_attach) is the application's memory, in the upper
 * half, but attached to the lower half's library: a restart attaches it again. Attach and
 * detach are steps of the replay log, in their order, so the new lower half ends with the
 * buffer attached at the checkpoint, if any. (No buffered message is pending then: the
 * checkpoint waited until every message sent was received.) */

#include "shim.h"

struct attached { void *buf; int size; };

static int reattach(void *arg, char *err, size_t errlen) {
  (void)err, (void)errlen;
  struct attached *a = arg;
  return LH_CALL(MPI_Buffer_attach, a->buf, a->size);
}

static int redetach(void *arg, char *err, size_t errlen) {
  (void)arg, (void)err, (void)errlen;
  void *buf = NULL;
  int size = 0;
  return LH_CALL(MPI_Buffer_detach, &buf, &size);
}

int MPI_Buffer_attach(void *buffer, int size) {
  shim_enter();
  int rc = LH_CALL(MPI_Buffer_attach, buffer, size);
  if (rc == MPI_SUCCESS) {
    struct attached *a = shim_tmp(sizeof *a);
    *a = (struct attached){buffer, size};
    void *rec = replay_log_call(reattach, a, "MPI_Buffer_attach");
    replay_call_bsend(rec, 1);
    replay_call_drop(rec, free);
  }
  shim_leave();
  return rc;
}
SHIM_PMPI(MPI_Buffer_attach)

int MPI_Buffer_detach(void *buffer_addr, int *size) {
  /* waits inside the lower half until the buffered messages are sent (docs/mpi-checkpoint.md,
     Limits) */
  shim_enter();
  int rc = LH_CALL(MPI_Buffer_detach, buffer_addr, size);
  if (rc == MPI_SUCCESS) replay_call_bsend(replay_log_call(redetach, NULL, "MPI_Buffer_detach"), 2);
  shim_leave();
  return rc;
}
SHIM_PMPI(MPI_Buffer_detach)
