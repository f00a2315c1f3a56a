/* The replay log: every call that made an MPI object (communicator, group, datatype, op, ...)
 * or changed one, recorded with its arguments in the order made (upper.gen.c writes the
 * records; the functions written by hand add theirs here). After a restart the log is played
 * against the new lower half, through the same MPI functions, and each object made again is
 * bound to the handle the application already holds. The log lives in the upper half, so it
 * is in every image; each checkpoint drops the records nothing needs any more (prune.c). */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "replay.h"
#include "shim.h"

#define HIDDEN __attribute__((visibility("hidden")))
HIDDEN int replay_running;
HIDDEN struct replay_rec *replay_head;
static struct replay_rec **tail = &replay_head;
HIDDEN uint64_t replay_nrecords;

void *replay_new(int fn, size_t size) {
  struct replay_rec *r = calloc(1, size);
  if (!r) shim_die("out of memory for the MPI replay log");
  r->fn = fn;
  *tail = r;
  tail = &r->next;
  replay_nrecords++;
  return r;
}

void replay_relink(struct replay_rec **last) { tail = last; }

void *replay_copy(const void *p, size_t n) {
  if (!p) return NULL;
  void *c = malloc(n ? n : 1);
  if (!c) shim_die("out of memory for the MPI replay log");
  memcpy(c, p, n);
  return c;
}

char *replay_strdup(const char *s) { return s ? replay_copy(s, strlen(s) + 1) : NULL; }

int *replay_weights(const int *w, int n) {
  if (w == MPI_UNWEIGHTED || w == MPI_WEIGHTS_EMPTY) return (int *)(uintptr_t)w;
  return replay_copy(w, (size_t)(n > 0 ? n : 0) * sizeof(int));
}

int shim_sum(const int *a, int n) {
  int s = 0;
  for (int i = 0; i < n; i++) s += a[i];
  return s;
}

int shim_last(const int *a, int n) { return n > 0 ? a[n - 1] : 0; }

int shim_len_ndims(MPI_Comm comm) {
  int n = 0;
  PMPI_Cartdim_get(comm, &n);
  return n;
}

/* A step of the replay that a hand-written module runs itself (the upper half is restored at
   the same addresses, so the function pointer stays good in an image). */
void *replay_log_call(replay_fn *run, void *arg, const char *name) {
  if (replay_running) return NULL;
  struct replay_call *r = replay_new(REPLAY_CALL, sizeof *r);
  r->run = run;
  r->arg = arg;
  r->name = name;
  return r;
}

void replay_call_dep(void *rec, int role, int kind, int64_t v) {
  struct replay_call *r = rec;
  if (!r) return;
  if (r->ndeps == REPLAY_CALL_DEPS) shim_die("internal: too many dependencies of a replay step (%s)", r->name);
  r->deps[r->ndeps++] = (struct replay_dep){role, kind, v};
}

void replay_call_drop(void *rec, void (*drop)(void *arg)) {
  if (rec) ((struct replay_call *)rec)->drop = drop;
}

void replay_call_supersedable(void *rec) {
  if (rec) ((struct replay_call *)rec)->supersedable = 1;
}

void replay_call_bsend(void *rec, int which) {
  if (rec) ((struct replay_call *)rec)->bsend = which;
}

void *replay_log_idup_start(MPI_Comm parent, MPI_Comm newcomm) {
  struct replay_idup *r = replay_new(REPLAY_IDUP_START, sizeof *r);
  r->parent = parent;
  r->comm = newcomm;
  replay_coll_parent(&r->h, parent, newcomm);
  return r;
}

void replay_log_idup_wait(void *start) {
  if (replay_running) return;
  struct replay_idup_wait *r = replay_new(REPLAY_IDUP_WAIT, sizeof *r);
  r->start = start;
}

static int idup_finish(struct replay_idup *s) {
  if (!s->pending) return MPI_SUCCESS;
  s->pending = 0;
  int rc = shim_wait(&s->req, NULL);
  if (rc == MPI_SUCCESS) vh_set_real(VK_COMM, s->comm, s->real);
  return rc;
}

void replay_log_op_create(int slot, int commute, MPI_Op op) {
  if (replay_running) return;
  struct replay_op *r = replay_new(REPLAY_OP_CREATE, sizeof *r);
  r->slot = slot;
  r->commute = commute;
  r->op = op;
}

static int replay_custom(struct replay_rec *h, char *err, size_t errlen) {
  if (h->fn == REPLAY_CALL) {
    struct replay_call *r = (struct replay_call *)h;
    return r->run(r->arg, err, errlen);
  }
  if (h->fn == REPLAY_OP_CREATE) {
    struct replay_op *r = (struct replay_op *)h;
    uint64_t real = 0;
    int rc = LH_CALL(MPI_Op_create, (void *)r->slot, r->commute, &real);
    if (rc == MPI_SUCCESS) vh_alias(VK_OP, r->op, vh_make(VK_OP, real));
    return rc;
  }
  if (h->fn == REPLAY_IDUP_START) {
    struct replay_idup *r = (struct replay_idup *)h;
    int rc = LH_CALL(MPI_Comm_idup, vh_real(VK_COMM, r->parent), &r->real, &r->req);
    r->pending = rc == MPI_SUCCESS;
    return rc;
  }
  if (h->fn == REPLAY_IDUP_WAIT) return idup_finish(((struct replay_idup_wait *)h)->start);
  return MPI_ERR_INTERN;
}

static const char *custom_name(const struct replay_rec *r) {
  int fn = r->fn;
  if (fn == REPLAY_CALL) return ((const struct replay_call *)r)->name;
  return fn == REPLAY_OP_CREATE ? "MPI_Op_create" : fn == REPLAY_IDUP_START ? "MPI_Comm_idup" : "MPI_Wait (MPI_Comm_idup)";
}

int replay_all(char *err, size_t errlen) {
  replay_running = 1;
  uint64_t i = 0;
  if (errlen) err[0] = 0;
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (struct replay_rec *r = replay_head; r; r = r->next, i++) {
    int rc = r->fn < 0 ? replay_custom(r, err, errlen) : replay_one(r);
    if (rc != MPI_SUCCESS) {
      replay_running = 0;
      if (errlen && err[0]) return -1; /* the step said what went wrong itself */
      char msg[MPI_MAX_ERROR_STRING];
      int len = 0;
      msg[0] = 0;
      PMPI_Error_string(rc, msg, &len);
      snprintf(err, errlen, "replaying %s (call %lu of %lu that made MPI objects) on the new MPI failed: %s",
               r->fn < 0 ? custom_name(r) : replay_name(r->fn), (unsigned long)i + 1, (unsigned long)replay_nrecords, msg);
      return -1;
    }
  }
  /* duplications the application had not seen complete yet */
  for (struct replay_rec *r = replay_head; r; r = r->next) {
    if (r->fn != REPLAY_IDUP_START) continue;
    int rc = idup_finish((struct replay_idup *)r);
    if (rc != MPI_SUCCESS) {
      replay_running = 0;
      snprintf(err, errlen, "completing a replayed MPI_Comm_idup on the new MPI failed (error class %d)", rc);
      return -1;
    }
  }
  /* the state of open files and cached attributes last: a file's view may name datatypes made
     after the file was opened, an attribute a key made after its object */
  int rc = shim_files_restore(err, errlen);
  if (rc == 0) rc = shim_attrs_restore(err, errlen);
  if (rc == 0) vh_free_dead();
  replay_running = 0;
  if (rc == 0) replay_stats_restart(&t0);
  return rc;
}

void shim_state_save(void) {
  shim_files_save();
  shim_attrs_save();
  replay_prune();
}
