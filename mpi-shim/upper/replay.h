/* What replay.c (the log and its replay) and prune.c (naming and pruning records) share. */
#ifndef MANA_REPLAY_H
#define MANA_REPLAY_H
#include <time.h>

#include "shim.h"

/* Records of the functions written by hand (negative ids). */
enum { REPLAY_OP_CREATE = -1, REPLAY_CALL = -2, REPLAY_IDUP_START = -3, REPLAY_IDUP_WAIT = -4 };
struct replay_op { struct replay_rec h; intptr_t slot; int commute; int64_t op; };
/* a duplication is started and completed where the run did; `real` and `req` belong to the
   replay in progress */
struct replay_idup { struct replay_rec h; int64_t parent, comm; uint64_t real, req; int pending; };
struct replay_idup_wait { struct replay_rec h; struct replay_idup *start; };

struct replay_dep { int role, kind; int64_t v; };
#define REPLAY_CALL_DEPS 6
struct replay_call {
  struct replay_rec h;
  replay_fn *run;
  void *arg;
  const char *name;
  void (*drop)(void *arg);
  int ndeps, supersedable, bsend;
  struct replay_dep deps[REPLAY_CALL_DEPS];
};

extern struct replay_rec *replay_head;
extern uint64_t replay_nrecords;
/* the list was cut: *last is its new end */
void replay_relink(struct replay_rec **last);
/* at a restart: says how much the replay does, when asked to (MANA_MPI_REPLAY_STATS) */
void replay_stats_restart(const struct timespec *start);
#endif
