/* lh_proxy-<mpi>: the program the lower half's ld.so starts inside an MPI rank. Its main()
   hands the upper half the table of entry points and never returns (see upper/loader.c). */

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "proxy.h"

const struct lh_upcalls *lh_up;

/* zeroed: the real headers mark some array arguments read-only, and GCC then wants to see
   them initialized even when the count is zero */
void *lh_tmp(size_t n) {
  void *p = calloc(1, n ? n : 1);
  if (!p) abort();
  return p;
}

/* ------------------------------------------------------------------ constants */

int lh_enum_in(int family, int abi) {
  if (family == LH_FAM_amode) {
    int r = 0;
    for (const struct lh_enum_entry *e = lh_enum_table; e->family >= 0; e++)
      if (e->family == family && (abi & e->abi)) r |= e->real;
    return r;
  }
  for (const struct lh_enum_entry *e = lh_enum_table; e->family >= 0; e++)
    if (e->family == family && e->abi == abi) return e->real;
  return abi;
}

int lh_enum_out(int family, int real) {
  if (family == LH_FAM_amode) {
    int r = 0;
    for (const struct lh_enum_entry *e = lh_enum_table; e->family >= 0; e++)
      if (e->family == family && (real & e->real)) r |= e->abi;
    return r;
  }
  for (const struct lh_enum_entry *e = lh_enum_table; e->family >= 0; e++)
    if (e->family == family && e->real == real) return e->abi;
  return real;
}

/* The ABI's special ranks are -1 (PROC_NULL), -2 (ANY_SOURCE), -3 (ROOT). */
int lh_rank_in(int abi) {
  if (abi >= 0) return abi;
  return lh_enum_in(LH_FAM_rank, abi);
}

int lh_rank_out(int real) {
  if (real >= 0) return real;
  return lh_enum_out(LH_FAM_rank, real);
}

/* Error codes cross as the ABI's error classes. */
int lh_err(int rc) {
  if (rc == MPI_SUCCESS) return 0;
  int cls = MPI_ERR_OTHER;
  if (MPI_Error_class(rc, &cls) != MPI_SUCCESS) cls = MPI_ERR_OTHER;
  return lh_enum_out(LH_FAM_errclass, cls);
}

/* ------------------------------------------------------------------ statuses */

void lh_status_out(const MPI_Status *r, struct lh_status *out) {
#if defined(OPEN_MPI)
  out->count = (int64_t)r->_ucount;
  out->cancelled = r->_cancelled;
#elif defined(MPICH)
  out->count = (int64_t)((uint64_t)(uint32_t)r->count_lo | ((uint64_t)(uint32_t)r->count_hi_and_cancelled >> 1 << 32));
  out->cancelled = r->count_hi_and_cancelled & 1;
#else
  MPI_Count c = 0;
  int flag = 0;
  MPI_Get_elements_x(r, MPI_BYTE, &c);
  MPI_Test_cancelled(r, &flag);
  out->count = c;
  out->cancelled = flag;
#endif
  out->source = lh_rank_out(r->MPI_SOURCE);
  out->tag = r->MPI_TAG;
  out->error = r->MPI_ERROR == LH_UNTOUCHED || r->MPI_ERROR == MPI_SUCCESS ? r->MPI_ERROR : lh_err(r->MPI_ERROR);
}

void lh_status_in(const struct lh_status *in, MPI_Status *r) {
  memset(r, 0, sizeof *r);
  MPI_Status_set_elements_x(r, MPI_BYTE, (MPI_Count)in->count);
  MPI_Status_set_cancelled(r, in->cancelled);
  r->MPI_SOURCE = in->source >= 0 ? in->source : lh_rank_in(in->source);
  r->MPI_TAG = in->tag;
  r->MPI_ERROR = in->error == LH_UNTOUCHED ? MPI_SUCCESS : lh_enum_in(LH_FAM_errclass, in->error);
}

/* ------------------------------------------------------------------ hand-written entries */

static int p_lh_init(const struct lh_upcalls *up) {
  lh_up = up;
  return 0;
}

static void p_lh_predefined(uint64_t *out, int n) { lh_fill_predefined(out, n); }

static void p_lh_flush(void) { fflush(NULL); }

/* Tests a request up to `spins` times: the upper half's wait loop comes back out between
   bursts, so a checkpoint never finds a thread in here for long. */
static int p_lh_test_spin(uint64_t *request, int *flag, struct lh_status *status, int spins) {
  MPI_Request r = H(MPI_Request, *request);
  MPI_Status s;
  s.MPI_ERROR = LH_UNTOUCHED;
  int rc = MPI_SUCCESS;
  for (int i = 0; i < spins; i++) {
    rc = MPI_Test(&r, flag, status ? &s : MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS || *flag) break;
  }
  lh_req_done(H(MPI_Request, *request), r);
  *request = U(r);
  if (status && *flag) lh_status_out(&s, status);
  return lh_err(rc);
}

/* The tracker is preloaded into this world (upper/shim.c); found at run time so a lower half
   started without it still works, only without a memory classification. */
static int p_lh_ranges(void *out, int max) {
  int (*f)(void *, int) = (int (*)(void *, int))dlsym(RTLD_DEFAULT, "lh_track_ranges");
  return f ? f(out, max) : -1;
}

static int p_lh_fds(int32_t *out, int max) {
  int (*f)(int32_t *, int) = (int (*)(int32_t *, int))dlsym(RTLD_DEFAULT, "lh_track_fds");
  return f ? f(out, max) : -1;
}

static int p_lh_tids(int32_t *out, int max) {
  int (*f)(int32_t *, int) = (int (*)(int32_t *, int))dlsym(RTLD_DEFAULT, "lh_track_tids");
  return f ? f(out, max) : -1;
}

/* A generalized request completed at once, whose status is the one given: what a receive
   that had completed before a checkpoint becomes in a new lower half. */
static int greq_query(void *extra, MPI_Status *st) {
  lh_status_in((const struct lh_status *)extra, st);
  /* the receive's error (a truncated message drained at a checkpoint, upper/msgbuf.c) is what
     MPI_Wait/MPI_Test return, as for the receive itself */
  return st->MPI_ERROR;
}
static int greq_free(void *extra) {
  free(extra);
  return MPI_SUCCESS;
}
static int greq_cancel(void *extra, int complete) {
  (void)extra, (void)complete;
  return MPI_SUCCESS;
}

static int p_lh_completed(const struct lh_status *status, uint64_t *request) {
  struct lh_status *copy = lh_tmp(sizeof *copy);
  *copy = *status;
  MPI_Request r;
  int rc = MPI_Grequest_start(greq_query, greq_free, greq_cancel, copy, &r);
  if (rc == MPI_SUCCESS) rc = MPI_Grequest_complete(r);
  *request = U(r);
  return lh_err(rc);
}

/* User reductions: the real library calls a trampoline per slot, which calls the upper half. */
#define OP_SLOTS 64
#define TRAMP(k)                                                                                 \
  static void op_tramp_##k(void *in, void *inout, int *len, MPI_Datatype *dt) {                  \
    lh_up->op(k, in, inout, len, U(*dt));                                                        \
  }
#define TRAMP8(a) TRAMP(a##0) TRAMP(a##1) TRAMP(a##2) TRAMP(a##3) TRAMP(a##4) TRAMP(a##5) TRAMP(a##6) TRAMP(a##7)
TRAMP(0) TRAMP(1) TRAMP(2) TRAMP(3) TRAMP(4) TRAMP(5) TRAMP(6) TRAMP(7)
TRAMP8(1) TRAMP8(2) TRAMP8(3) TRAMP8(4) TRAMP8(5) TRAMP8(6) TRAMP8(7)
#define T8(a) op_tramp_##a##0, op_tramp_##a##1, op_tramp_##a##2, op_tramp_##a##3, op_tramp_##a##4, op_tramp_##a##5, op_tramp_##a##6, op_tramp_##a##7
static MPI_User_function *const op_tramps[OP_SLOTS] = {
    op_tramp_0, op_tramp_1, op_tramp_2, op_tramp_3, op_tramp_4, op_tramp_5, op_tramp_6, op_tramp_7,
    T8(1), T8(2), T8(3), T8(4), T8(5), T8(6), T8(7)};

static int p_MPI_Op_create(void *slot, int commute, uint64_t *op) {
  intptr_t k = (intptr_t)slot;
  if (k < 0 || k >= OP_SLOTS) return lh_err(MPI_ERR_ARG);
  MPI_Op r;
  int rc = MPI_Op_create(op_tramps[k], commute, &r);
  *op = U(r);
  return lh_err(rc);
}

#include "extra.c"
#include "proxy.gen.c"

static struct lh_api api;

int main(void) {
  const char *cb = getenv("MANA_LH_CALLBACK");
  if (!cb) {
    fprintf(stderr, "lh_proxy: this program is started by mana's MPI shim inside an MPI rank, not by hand\n");
    return 2;
  }
  void (*back)(const struct lh_api *) = (void (*)(const struct lh_api *))(uintptr_t)strtoull(cb, NULL, 16);
  api.version = LH_API_VERSION;
  api.size = sizeof api;
  api.lh_init = p_lh_init;
  api.lh_predefined = p_lh_predefined;
  api.lh_flush = p_lh_flush;
  api.lh_test_spin = p_lh_test_spin;
  api.lh_ranges = p_lh_ranges;
  api.lh_tids = p_lh_tids;
  api.lh_fds = p_lh_fds;
  api.lh_completed = p_lh_completed;
  lh_fill_api(&api);
  back(&api);
  abort();
}
