/* The upper half's MPI runtime: choosing and starting the lower half, the wait loop every
 * blocking call goes through, status and error conversion, and the MPI functions that are
 * more than a translation (initialization, the Wait family, Sendrecv, Probe, user ops). */

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>
#include <time.h>
#include <unistd.h>

#include "shim.h"

#define HIDDEN __attribute__((visibility("hidden")))
HIDDEN const struct lh_api *shim_lh;
HIDDEN uint64_t shim_lower_fs;
HIDDEN uint64_t shim_upper_fs;
HIDDEN int fs_fast;
HIDDEN char shim_self_dir[PATH_MAX];

static int state; /* 0 before MPI_Init, 1 initialized, 2 finalized */
static int thread_level = MPI_THREAD_SINGLE;
static char flavour[16];

void fs_detect(void) { fs_fast = (getauxval(AT_HWCAP2) & 2) != 0; }

_Noreturn void shim_die(const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
  va_end(ap);
  if (n < 0) n = 0;
  if (n > (int)sizeof buf - 2) n = (int)sizeof buf - 2;
  buf[n++] = '\n';
  if (write(2, "mana: ", 6) < 0 || write(2, buf, (size_t)n) < 0) { /* nothing left to tell */ }
  _exit(1);
}

void *shim_tmp(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) shim_die("out of memory (%zu bytes) in an MPI call", n);
  return p;
}

/* ------------------------------------------------------------------ choosing the lower half */

static void find_self_dir(void) {
  Dl_info info;
  if (dladdr((void *)find_self_dir, &info) && info.dli_fname) {
    const char *slash = strrchr(info.dli_fname, '/');
    if (slash && (size_t)(slash - info.dli_fname) < sizeof shim_self_dir) {
      if (!realpath(info.dli_fname, shim_self_dir)) {
        memcpy(shim_self_dir, info.dli_fname, (size_t)(slash - info.dli_fname));
        shim_self_dir[slash - info.dli_fname] = 0;
      } else {
        *strrchr(shim_self_dir, '/') = 0;
      }
    }
  }
}

/* MANA_MPI names the lower half (mana launch sets it from the launcher, or --mpi); without it
   the launcher's environment tells: Hydra passes PMI_*, Open MPI's mpirun OMPI_* and PMIX_*. */
static const char *pick_flavour(void) {
  const char *m = getenv("MANA_MPI");
  if (m && *m) return m;
  if (getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK")) return "openmpi";
  return "mpich";
}

static const char *flavour_library(const char *f) {
  if (!strcmp(f, "mpich")) return "libmpich.so.12";
  if (!strcmp(f, "openmpi")) return "libmpi.so.40";
  return NULL;
}

/* Whether the MPI library of a lower half can be found, so a missing MPI is one clear line
   instead of the lower ld.so's own message and exit status 127. */
static int library_present(const char *lib) {
  static const char *dirs[] = {"/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu", "/usr/lib64",
                               "/usr/lib", "/usr/local/lib"};
  char p[PATH_MAX];
  const char *lp = getenv("LD_LIBRARY_PATH");
  if (lp) {
    char *dup = strdup(lp), *save = NULL;
    for (char *d = dup ? strtok_r(dup, ":", &save) : NULL; d; d = strtok_r(NULL, ":", &save)) {
      snprintf(p, sizeof p, "%s/%s", d, lib);
      if (strcmp(d, shim_self_dir) && access(p, R_OK) == 0) { free(dup); return 1; }
    }
    free(dup);
  }
  for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) {
    snprintf(p, sizeof p, "%s/%s", dirs[i], lib);
    if (access(p, R_OK) == 0) return 1;
  }
  return 0;
}

static void op_upcall(int slot, void *in, void *inout, int *len, uint64_t dt);
static const struct lh_upcalls upcalls = {.op = op_upcall,
                                          .attr_copy = shim_attr_copy_upcall,
                                          .attr_delete = shim_attr_delete_upcall,
                                          .errh = shim_errh_upcall,
                                          .greq = shim_greq_upcall};

int shim_ensure_lower(void) {
  if (shim_lh) return 0;
  fs_detect();
  find_self_dir();
  const char *f = pick_flavour();
  snprintf(flavour, sizeof flavour, "%s", f);
  char proxy[PATH_MAX + 32], preload[3 * PATH_MAX];
  const char *given = getenv("MANA_LH_PROXY");
  if (given && *given) {
    snprintf(proxy, sizeof proxy, "%s", given);
  } else {
    const char *lib = flavour_library(f);
    if (!lib) shim_die("MANA_MPI=%s is not an MPI mana knows; use mpich or openmpi", f);
    if (!library_present(lib))
      shim_die("the %s lower half needs %s, which is not installed here; install %s or choose the other MPI (mana launch --mpi)",
               f, lib, !strcmp(f, "mpich") ? "Debian's libmpich12 (mpich)" : "Debian's libopenmpi3 (openmpi-bin)");
    snprintf(proxy, sizeof proxy, "%s/lh_proxy-%s", shim_self_dir, f);
  }
  /* The tracker (lower-half memory for the checkpointer) and mimalloc (so the lower libc never
     moves brk, which belongs to the upper half) go first in the lower world. */
  const char *mim = "/usr/lib/x86_64-linux-gnu/libmimalloc.so.2";
  char track[PATH_MAX + 32];
  snprintf(track, sizeof track, "%s/lh_track.so", shim_self_dir);
  snprintf(preload, sizeof preload, "%s%s%s", access(track, R_OK) == 0 ? track : "",
           access(track, R_OK) == 0 && access(mim, R_OK) == 0 ? ":" : "", access(mim, R_OK) == 0 ? mim : "");
  /* Never setenv here: at a restart environ is borrowed (ckpt.c restart), and glibc's setenv
     would realloc its own array, the process's real environ, behind the borrower's back. */
  const char *given_pre = getenv("MANA_LH_PRELOAD");
  const char *why = NULL;
  const struct lh_api *api = lh_load(proxy, given_pre ? given_pre : preload, &why);
  if (!api) shim_die("cannot start the %s lower half: %s", f, why);
  shim_lh = api;
  int rc = LH_CALL(lh_init, &upcalls);
  if (rc != 0) shim_die("the %s lower half failed to initialize (%d)", f, rc);
  return 0;
}

/* ------------------------------------------------------------------ status, errors, waiting */

void shim_status_out(const struct lh_status *in, MPI_Status *out) {
  out->count_lo = (int)(uint32_t)(uint64_t)in->count;
  out->count_hi_and_cancelled = (int)((uint64_t)in->count >> 32 << 1) | (in->cancelled ? 1 : 0);
  out->MPI_SOURCE = in->source;
  out->MPI_TAG = in->tag;
  if (in->error != LH_UNTOUCHED) out->MPI_ERROR = in->error;
}

void shim_status_in(const MPI_Status *in, struct lh_status *out) {
  out->count = (int64_t)((uint64_t)(uint32_t)in->count_lo | ((uint64_t)(uint32_t)in->count_hi_and_cancelled >> 1 << 32));
  out->cancelled = in->count_hi_and_cancelled & 1;
  out->source = in->MPI_SOURCE;
  out->tag = in->MPI_TAG;
  out->error = in->MPI_ERROR;
}

int shim_ret_err(int rc, const char *fn) {
  (void)fn;
  return rc;
}

/* Blocking calls wait here, in the upper half, testing the request in short bursts inside the
   lower half: a checkpoint can always find this thread outside MPI. */

int shim_wait(uint64_t *req, struct lh_status *st) {
  for (unsigned polls = 0;; shim_wait_turn(&polls, SHIM_SPINS)) {
    int flag = 0;
    int rc = LH_CALL(lh_test_spin, req, &flag, st, SHIM_SPINS);
    if (rc != MPI_SUCCESS || flag) return rc;
  }
}

/* ------------------------------------------------------------------ environment */

int MPI_Init_thread(int *argc, char ***argv, int required, int *provided) {
  if (state != 0) return MPI_ERR_OTHER;
  shim_ensure_lower();
  /* Every upper thread shares the lower half's one thread pointer, so calls must not overlap:
     MPI_THREAD_MULTIPLE is answered with MPI_THREAD_SERIALIZED (docs/mpi.md). */
  int want = required > MPI_THREAD_SERIALIZED ? MPI_THREAD_SERIALIZED : required;
  int got = MPI_THREAD_SINGLE;
  int rc = LH_CALL(MPI_Init_thread, argc, argv, want, &got);
  if (rc != MPI_SUCCESS) return rc;
  shim_solo_begin(required);
  vh_init();
  shim_ckpt_init();
  state = 1;
  const char *maps = getenv("MANA_MPI_MAPS");
  if (maps && *maps) shim_dump_maps(maps);
  thread_level = got;
  if (provided) *provided = got;
  return MPI_SUCCESS;
}
SHIM_PMPI(MPI_Init_thread)

int MPI_Init(int *argc, char ***argv) {
  int provided;
  return MPI_Init_thread(argc, argv, MPI_THREAD_SINGLE, &provided);
}
SHIM_PMPI(MPI_Init)

int MPI_Initialized(int *flag) {
  *flag = state != 0;
  return MPI_SUCCESS;
}
SHIM_PMPI(MPI_Initialized)

int MPI_Finalized(int *flag) {
  *flag = state == 2;
  return MPI_SUCCESS;
}
SHIM_PMPI(MPI_Finalized)

int shim_thread_level(void) { return thread_level; }
void shim_after_init(void) {}

/* The lower half's MPI_Finalize can hang for good once every rank is in it: MPICH 4.0.2 over
   UCX's TCP transport sometimes leaves one rank waiting for an endpoint to close while its
   peer already sits in the PMI barrier and makes no more progress (natively too;
   docs/multi-node.md). The job's work is done by then (every rank has passed the shim's
   barrier), so after MANA_FINALIZE_TIMEOUT seconds (default 60 over MPICH, off over Open MPI;
   0 = wait for ever) the rank says so and exits 0 instead of holding the allocation until the
   wall time. Only write(2) and _exit from the watchdog: another thread may hold a stdio lock. */
static pthread_mutex_t fin_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t fin_cv;
static int fin_returned;

static void *finalize_watchdog(void *arg) {
  long secs = (long)(intptr_t)arg;
  struct timespec until;
  clock_gettime(CLOCK_MONOTONIC, &until);
  until.tv_sec += secs;
  pthread_mutex_lock(&fin_mu);
  int rc = 0;
  while (!fin_returned && rc != ETIMEDOUT) rc = pthread_cond_timedwait(&fin_cv, &fin_mu, &until);
  int hung = !fin_returned;
  pthread_mutex_unlock(&fin_mu);
  if (!hung) return NULL;
  char line[256];
  int n = snprintf(line, sizeof line, "mana: MPI_Finalize in the lower half (%s) has not returned %ld s after every rank reached it; exiting with status 0 (MANA_FINALIZE_TIMEOUT)\n", flavour, secs);
  if (n > 0 && write(2, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1) < 0) {
    /* stderr is gone: nothing more to say */
  }
  _exit(0);
}

static void start_finalize_watchdog(void) {
  const char *e = getenv("MANA_FINALIZE_TIMEOUT");
  long secs = e && *e ? strtol(e, NULL, 10) : strcmp(flavour, "mpich") == 0 ? 60 : 0;
  if (secs <= 0) return;
  if (secs > 366L * 86400) secs = 366L * 86400; /* "for ever" needs no overflow */
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* a clock step must not fire it */
  pthread_cond_init(&fin_cv, &ca);
  pthread_condattr_destroy(&ca);
  pthread_t t;
  if (pthread_create(&t, NULL, finalize_watchdog, (void *)(intptr_t)secs) == 0) pthread_detach(t);
}

static void stop_finalize_watchdog(void) {
  pthread_mutex_lock(&fin_mu);
  fin_returned = 1;
  pthread_cond_broadcast(&fin_cv);
  pthread_mutex_unlock(&fin_mu);
}

int MPI_Finalize(void) {
  if (state != 1) return MPI_ERR_OTHER;
  int all_there = shim_finalize_sync();
  shim_ckpt_stop();
  if (all_there) {
    /* a rank the watchdog ends may take its peers with it (the launcher stops the job):
       what the application printed so far must be out by then (not fflush(NULL): it would
       wait for a thread blocked reading stdin) */
    fflush(stdout);
    fflush(stderr);
    start_finalize_watchdog();
  }
  int rc = LH_CALL(MPI_Finalize);
  stop_finalize_watchdog();
  LH_CALL_VOID(lh_flush);
  state = 2;
  return rc;
}
SHIM_PMPI(MPI_Finalize)

int MPI_Query_thread(int *provided) {
  *provided = thread_level;
  return MPI_SUCCESS;
}
SHIM_PMPI(MPI_Query_thread)

int MPI_Get_version(int *version, int *subversion) {
  /* what mana's mpi.h says (the MPICH 4.0 ABI), whatever the lower half is */
  *version = MPI_VERSION;
  *subversion = MPI_SUBVERSION;
  return MPI_SUCCESS;
}
SHIM_PMPI(MPI_Get_version)

double MPI_Wtime(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
SHIM_PMPI(MPI_Wtime)

double MPI_Wtick(void) {
  struct timespec ts;
  clock_getres(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
SHIM_PMPI(MPI_Wtick)

int MPI_Get_processor_name(char *name, int *resultlen) {
  /* Open MPI writes up to 256 bytes; the ABI promises the caller's buffer holds 128 */
  char buf[1024];
  int len = 0;
  int rc = LH_CALL(MPI_Get_processor_name, buf, &len);
  if (rc != MPI_SUCCESS) return rc;
  if (len >= MPI_MAX_PROCESSOR_NAME) len = MPI_MAX_PROCESSOR_NAME - 1;
  memcpy(name, buf, (size_t)len);
  name[len] = 0;
  *resultlen = len;
  return MPI_SUCCESS;
}
SHIM_PMPI(MPI_Get_processor_name)

int MPI_Test_cancelled(const MPI_Status *status, int *flag) {
  *flag = status->count_hi_and_cancelled & 1;
  return MPI_SUCCESS;
}
SHIM_PMPI(MPI_Test_cancelled)

/* ------------------------------------------------------------------ waiting */

int MPI_Wait(MPI_Request *request, MPI_Status *status) {
  int64_t v = *request;
  struct lh_status s;
  int rc = shim_wait_v(v, status == MPI_STATUS_IGNORE ? NULL : &s);
  if (!vh_req_meta(v)) *request = MPI_REQUEST_NULL; /* completed and released */
  if (status != MPI_STATUS_IGNORE) shim_status_out(&s, status);
  return rc;
}
SHIM_PMPI(MPI_Wait)

/* One request after the other, in the order given, as MPICH's own MPI_Waitall completes
   generalized requests. Testing them all at once (MPI_Testall) goes wrong on MPICH 4.0, natively
   too: it asserts on several of ROMIO's file requests (io/async_any), and ROMIO moves a
   nonblocking collective I/O request on only when that request is tested, starting collectives
   of its own on the file's communicator as it goes, so ranks testing several at once start
   those in different orders and hang (io/i_aggregation1). A failure ends the wait as in MPICH:
   MPI_ERR_IN_STATUS, the failed request's error in its status, the later ones still pending. */
int MPI_Waitall(int count, MPI_Request reqs[], MPI_Status statuses[]) {
  for (int i = 0; i < count; i++) {
    int rc = PMPI_Wait(&reqs[i], statuses == MPI_STATUSES_IGNORE ? MPI_STATUS_IGNORE : &statuses[i]);
    if (rc == MPI_SUCCESS) continue;
    if (statuses != MPI_STATUSES_IGNORE)
      for (int j = 0; j < count; j++) statuses[j].MPI_ERROR = j < i ? MPI_SUCCESS : j == i ? rc : MPI_ERR_PENDING;
    return MPI_ERR_IN_STATUS;
  }
  return MPI_SUCCESS;
}
SHIM_PMPI(MPI_Waitall)

int MPI_Waitany(int count, MPI_Request reqs[], int *indx, MPI_Status *status) {
  for (unsigned polls = 0;; shim_wait_turn(&polls, 1)) {
    int flag = 0;
    int rc = PMPI_Testany(count, reqs, indx, &flag, status);
    if (rc != MPI_SUCCESS || flag) return rc;
  }
}
SHIM_PMPI(MPI_Waitany)

int MPI_Waitsome(int incount, MPI_Request reqs[], int *outcount, int indices[], MPI_Status statuses[]) {
  for (unsigned polls = 0;; shim_wait_turn(&polls, 1)) {
    int rc = PMPI_Testsome(incount, reqs, outcount, indices, statuses);
    if (rc != MPI_SUCCESS || *outcount != 0) return rc;
  }
}
SHIM_PMPI(MPI_Waitsome)

int MPI_Probe(int source, int tag, MPI_Comm comm, MPI_Status *status) {
  for (unsigned polls = 0;; shim_wait_turn(&polls, 1)) {
    int flag = 0;
    int rc = PMPI_Iprobe(source, tag, comm, &flag, status);
    if (rc != MPI_SUCCESS || flag) return rc;
  }
}
SHIM_PMPI(MPI_Probe)

int MPI_Mprobe(int source, int tag, MPI_Comm comm, MPI_Message *message, MPI_Status *status) {
  for (unsigned polls = 0;; shim_wait_turn(&polls, 1)) {
    int flag = 0;
    int rc = PMPI_Improbe(source, tag, comm, &flag, message, status);
    if (rc != MPI_SUCCESS || flag) return rc;
  }
}
SHIM_PMPI(MPI_Mprobe)

int MPI_Sendrecv(const void *sendbuf, int sendcount, MPI_Datatype sendtype, int dest, int sendtag,
                 void *recvbuf, int recvcount, MPI_Datatype recvtype, int source, int recvtag,
                 MPI_Comm comm, MPI_Status *status) {
  MPI_Request r[2];
  MPI_Status st[2];
  int rc = PMPI_Irecv(recvbuf, recvcount, recvtype, source, recvtag, comm, &r[0]);
  if (rc != MPI_SUCCESS) return rc;
  rc = PMPI_Isend(sendbuf, sendcount, sendtype, dest, sendtag, comm, &r[1]);
  if (rc != MPI_SUCCESS) return rc;
  /* both complete, also when the receive fails (a truncated message) */
  int rrc = PMPI_Wait(&r[0], &st[0]);
  rc = PMPI_Wait(&r[1], &st[1]);
  if (rrc != MPI_SUCCESS) rc = rrc;
  if (status != MPI_STATUS_IGNORE) *status = st[0];
  /* MPICH 4.0 may leave source 0 in the status of a receive from MPI_PROC_NULL (its Testall did) */
  if (source == MPI_PROC_NULL && status != MPI_STATUS_IGNORE) {
    status->MPI_SOURCE = MPI_PROC_NULL;
    status->MPI_TAG = MPI_ANY_TAG;
    status->count_lo = 0;
    status->count_hi_and_cancelled &= 1;
  }
  return rc;
}
SHIM_PMPI(MPI_Sendrecv)

int MPI_Sendrecv_replace(void *buf, int count, MPI_Datatype datatype, int dest, int sendtag, int source,
                         int recvtag, MPI_Comm comm, MPI_Status *status) {
  /* the outgoing data is packed aside first, so the receive may land in buf */
  int size = 0, pos = 0;
  int rc = PMPI_Pack_size(count, datatype, comm, &size);
  if (rc != MPI_SUCCESS) return rc;
  void *tmp = shim_tmp((size_t)size);
  rc = PMPI_Pack(buf, count, datatype, tmp, size, &pos, comm);
  if (rc == MPI_SUCCESS)
    rc = MPI_Sendrecv(tmp, pos, MPI_PACKED, dest, sendtag, buf, count, datatype, source, recvtag, comm, status);
  free(tmp);
  return rc;
}
SHIM_PMPI(MPI_Sendrecv_replace)

/* The nonblocking ones (MPI-4) are one request for a send and a receive: a checkpoint waits
   for it like for a send, and its receive is counted when it starts (while it is incomplete
   the job is not quiet, so the early count never makes a drain end too soon). */
static int sendrecv_started(int rc, int dest, int source, uint64_t req, MPI_Request *request, const char *fn) {
  if (rc == MPI_SUCCESS) {
    if (source != MPI_PROC_NULL) shim_nrecvd++;
    *request = (MPI_Request)shim_req_send(req, dest);
  }
  return shim_ret_mpi4(rc, fn);
}

int MPI_Isendrecv(const void *sendbuf, int sendcount, MPI_Datatype sendtype, int dest, int sendtag, void *recvbuf,
                  int recvcount, MPI_Datatype recvtype, int source, int recvtag, MPI_Comm comm, MPI_Request *request) {
  shim_enter();
  uint64_t req = 0;
  int rc = LH_CALL(MPI_Isendrecv, sendbuf, sendcount, vh_real(VK_DATATYPE, sendtype), dest, sendtag, recvbuf, recvcount,
                   vh_real(VK_DATATYPE, recvtype), source, recvtag, vh_real(VK_COMM, comm), &req);
  rc = sendrecv_started(rc, dest, source, req, request, "MPI_Isendrecv");
  shim_leave();
  return rc;
}
SHIM_PMPI(MPI_Isendrecv)

int MPI_Isendrecv_replace(void *buf, int count, MPI_Datatype datatype, int dest, int sendtag, int source, int recvtag,
                          MPI_Comm comm, MPI_Request *request) {
  shim_enter();
  uint64_t req = 0;
  int rc = LH_CALL(MPI_Isendrecv_replace, buf, count, vh_real(VK_DATATYPE, datatype), dest, sendtag, source, recvtag,
                   vh_real(VK_COMM, comm), &req);
  rc = sendrecv_started(rc, dest, source, req, request, "MPI_Isendrecv_replace");
  shim_leave();
  return rc;
}
SHIM_PMPI(MPI_Isendrecv_replace)

/* ------------------------------------------------------------------ user-defined reductions */

#define OP_SLOTS 64
static MPI_User_function *op_fns[OP_SLOTS];

/* Called by the lower half, on this thread, with the lower half's thread pointer in FS. */
__attribute__((no_stack_protector)) static void op_upcall(int slot, void *in, void *inout, int *len, uint64_t dt) {
  uint64_t lower = fs_get();
  fs_set(shim_upper_fs);
  MPI_Datatype v = (MPI_Datatype)vh_from_real(VK_DATATYPE, dt);
  if (slot >= 0 && slot < OP_SLOTS && op_fns[slot]) op_fns[slot](in, inout, len, &v);
  fs_set(lower);
}

int MPI_Op_create(MPI_User_function *user_fn, int commute, MPI_Op *op) {
  /* ops of the same function share its slot (the slot only picks the function), so an
     application making and freeing ops over and over does not run out */
  int slot = 0;
  while (slot < OP_SLOTS && op_fns[slot] && op_fns[slot] != user_fn) slot++;
  if (slot == OP_SLOTS) shim_die("more than %d user-defined MPI_Op at once are not supported", OP_SLOTS);
  uint64_t real = 0;
  int rc = LH_CALL(MPI_Op_create, (void *)(intptr_t)slot, commute, &real);
  if (rc != MPI_SUCCESS) return rc;
  op_fns[slot] = user_fn;
  *op = (MPI_Op)vh_make(VK_OP, real);
  replay_log_op_create(slot, commute, *op);
  return MPI_SUCCESS;
}
SHIM_PMPI(MPI_Op_create)

/* ------------------------------------------------------------------ ABI data */

int MPIR_Dup_fn(MPI_Comm comm, int keyval, void *extra, void *in, void *out, int *flag) {
  (void)comm, (void)keyval, (void)extra;
  *(void **)out = in;
  *flag = 1;
  return MPI_SUCCESS;
}
static int unweighted_mark, weights_empty_mark;
int *const MPI_UNWEIGHTED = &unweighted_mark;
int *const MPI_WEIGHTS_EMPTY = &weights_empty_mark;
static MPI_Fint f_status_ignore[MPI_F_STATUS_SIZE], f_statuses_ignore[MPI_F_STATUS_SIZE];
MPI_Fint *MPI_F_STATUS_IGNORE = f_status_ignore;
MPI_Fint *MPI_F_STATUSES_IGNORE = f_statuses_ignore;
