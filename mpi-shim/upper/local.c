/* MPI functions the upper half answers alone (addresses, memory, statuses, Fortran handle
 * conversion, MPI-1 names removed in MPI-3), the length helpers of spec/mpi.api, and the
 * message of the unsupported-call stubs. */

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "shim.h"

_Noreturn void shim_unsupported(const char *name) { shim_die("%s is not supported", name); }

/* ------------------------------------------------------------------ length helpers */

int shim_len_size(MPI_Comm comm) {
  int inter = 0, n = 0;
  if (PMPI_Comm_test_inter(comm, &inter) != MPI_SUCCESS) return 0;
  if ((inter ? PMPI_Comm_remote_size(comm, &n) : PMPI_Comm_size(comm, &n)) != MPI_SUCCESS) return 0;
  return n;
}

static int degree(MPI_Comm comm, int in) {
  int topo = MPI_UNDEFINED, n = 0;
  if (PMPI_Topo_test(comm, &topo) != MPI_SUCCESS) return 0;
  if (topo == MPI_CART) return PMPI_Cartdim_get(comm, &n) == MPI_SUCCESS ? 2 * n : 0;
  if (topo == MPI_GRAPH) {
    int rank = 0;
    PMPI_Comm_rank(comm, &rank);
    return PMPI_Graph_neighbors_count(comm, rank, &n) == MPI_SUCCESS ? n : 0;
  }
  if (topo == MPI_DIST_GRAPH) {
    int indeg = 0, outdeg = 0, w = 0;
    if (PMPI_Dist_graph_neighbors_count(comm, &indeg, &outdeg, &w) != MPI_SUCCESS) return 0;
    return in ? indeg : outdeg;
  }
  return 0;
}
int shim_len_indegree(MPI_Comm comm) { return degree(comm, 1); }
int shim_len_outdegree(MPI_Comm comm) { return degree(comm, 0); }

int *shim_weights_in(const int *w) {
  if (w == MPI_UNWEIGHTED) return (int *)1;
  if (w == MPI_WEIGHTS_EMPTY) return (int *)2;
  return (int *)(uintptr_t)w;
}

/* ------------------------------------------------------------------ addresses and memory */

int MPI_Get_address(const void *location, MPI_Aint *address) {
  *address = (MPI_Aint)(uintptr_t)location;
  return MPI_SUCCESS;
}
SHIM_PMPI(MPI_Get_address)

int MPI_Address(void *location, MPI_Aint *address) { return PMPI_Get_address(location, address); }
SHIM_PMPI(MPI_Address)

MPI_Aint MPI_Aint_add(MPI_Aint base, MPI_Aint disp) { return (MPI_Aint)((uintptr_t)base + (uintptr_t)disp); }
SHIM_PMPI(MPI_Aint_add)

MPI_Aint MPI_Aint_diff(MPI_Aint addr1, MPI_Aint addr2) { return (MPI_Aint)((uintptr_t)addr1 - (uintptr_t)addr2); }
SHIM_PMPI(MPI_Aint_diff)

/* The upper half's heap: memory the application owns is checkpointed with it. */
int MPI_Alloc_mem(MPI_Aint size, MPI_Info info, void *baseptr) {
  (void)info;
  if (size < 0) return MPI_ERR_SIZE;
  void *p = malloc(size ? (size_t)size : 1);
  if (!p) return MPI_ERR_NO_MEM;
  memcpy(baseptr, &p, sizeof p);
  return MPI_SUCCESS;
}
SHIM_PMPI(MPI_Alloc_mem)

int MPI_Free_mem(void *base) {
  free(base);
  return MPI_SUCCESS;
}
SHIM_PMPI(MPI_Free_mem)

/* ------------------------------------------------------------------ statuses (ABI layout) */

int MPI_Status_set_elements_x(MPI_Status *status, MPI_Datatype datatype, MPI_Count count) {
  int size = 0;
  int rc = PMPI_Type_size(datatype, &size);
  if (rc != MPI_SUCCESS) return rc;
  uint64_t bytes = (uint64_t)count * (uint64_t)size;
  status->count_lo = (int)(uint32_t)bytes;
  status->count_hi_and_cancelled = (int)((bytes >> 32) << 1) | (status->count_hi_and_cancelled & 1);
  return MPI_SUCCESS;
}
SHIM_PMPI(MPI_Status_set_elements_x)

int MPI_Status_set_elements(MPI_Status *status, MPI_Datatype datatype, int count) {
  return PMPI_Status_set_elements_x(status, datatype, count);
}
SHIM_PMPI(MPI_Status_set_elements)

int MPI_Status_set_cancelled(MPI_Status *status, int flag) {
  status->count_hi_and_cancelled = (status->count_hi_and_cancelled & ~1) | (flag ? 1 : 0);
  return MPI_SUCCESS;
}
SHIM_PMPI(MPI_Status_set_cancelled)

/* A Fortran status is the C one, int by int, in the MPICH ABI. */
int MPI_Status_c2f(const MPI_Status *c, MPI_Fint *f) {
  memcpy(f, c, sizeof *c);
  return MPI_SUCCESS;
}
SHIM_PMPI(MPI_Status_c2f)

int MPI_Status_f2c(const MPI_Fint *f, MPI_Status *c) {
  memcpy(c, f, sizeof *c);
  return MPI_SUCCESS;
}
SHIM_PMPI(MPI_Status_f2c)

/* ------------------------------------------------------------------ Fortran handles */

/* mpi.h makes these macros (a Fortran handle is the C handle); binaries built elsewhere may
   still call the functions. */
#define C2F(T, N)                                                                                   \
  __attribute__((visibility("default"))) MPI_Fint MPI_##N##_c2f(T h) { return (MPI_Fint)h; }        \
  __attribute__((visibility("default"))) T MPI_##N##_f2c(MPI_Fint h) { return (T)h; }               \
  __attribute__((visibility("default"))) extern __typeof__(MPI_##N##_c2f) PMPI_##N##_c2f            \
      __attribute__((alias("MPI_" #N "_c2f")));                                                     \
  __attribute__((visibility("default"))) extern __typeof__(MPI_##N##_f2c) PMPI_##N##_f2c            \
      __attribute__((alias("MPI_" #N "_f2c")));
#undef MPI_Comm_c2f
#undef MPI_Comm_f2c
#undef MPI_Type_c2f
#undef MPI_Type_f2c
#undef MPI_Group_c2f
#undef MPI_Group_f2c
#undef MPI_Info_c2f
#undef MPI_Info_f2c
#undef MPI_Request_c2f
#undef MPI_Request_f2c
#undef MPI_Op_c2f
#undef MPI_Op_f2c
#undef MPI_Errhandler_c2f
#undef MPI_Errhandler_f2c
#undef MPI_Win_c2f
#undef MPI_Win_f2c
#undef MPI_Message_c2f
#undef MPI_Message_f2c
C2F(MPI_Comm, Comm)
C2F(MPI_Datatype, Type)
C2F(MPI_Group, Group)
C2F(MPI_Info, Info)
C2F(MPI_Request, Request)
C2F(MPI_Op, Op)
C2F(MPI_Errhandler, Errhandler)
C2F(MPI_Win, Win)
C2F(MPI_Message, Message)
/* for gen/list-unsupported.mjs, which skips what upper/ defines:
   SHIM_PMPI(MPI_Comm_c2f) SHIM_PMPI(MPI_Comm_f2c) SHIM_PMPI(MPI_Type_c2f) SHIM_PMPI(MPI_Type_f2c)
   SHIM_PMPI(MPI_Group_c2f) SHIM_PMPI(MPI_Group_f2c) SHIM_PMPI(MPI_Info_c2f) SHIM_PMPI(MPI_Info_f2c)
   SHIM_PMPI(MPI_Request_c2f) SHIM_PMPI(MPI_Request_f2c) SHIM_PMPI(MPI_Op_c2f) SHIM_PMPI(MPI_Op_f2c)
   SHIM_PMPI(MPI_Errhandler_c2f) SHIM_PMPI(MPI_Errhandler_f2c) SHIM_PMPI(MPI_Win_c2f) SHIM_PMPI(MPI_Win_f2c)
   SHIM_PMPI(MPI_Message_c2f) SHIM_PMPI(MPI_Message_f2c) */

/* A file's virtual handle is an int widened to a pointer. */
MPI_Fint MPI_File_c2f(MPI_File file) { return (MPI_Fint)(intptr_t)file; }
SHIM_PMPI(MPI_File_c2f)

MPI_File MPI_File_f2c(MPI_Fint file) { return (MPI_File)(intptr_t)file; }
SHIM_PMPI(MPI_File_f2c)

int MPI_Pcontrol(const int level, ...) {
  (void)level; /* no profiling library to tell */
  return MPI_SUCCESS;
}
SHIM_PMPI(MPI_Pcontrol)

/* ------------------------------------------------------------------ MPI-1 datatype names */

int MPI_Type_hvector(int count, int blocklength, MPI_Aint stride, MPI_Datatype oldtype, MPI_Datatype *newtype) {
  return PMPI_Type_create_hvector(count, blocklength, stride, oldtype, newtype);
}
SHIM_PMPI(MPI_Type_hvector)

int MPI_Type_hindexed(int count, int blocklengths[], MPI_Aint displs[], MPI_Datatype oldtype, MPI_Datatype *newtype) {
  return PMPI_Type_create_hindexed(count, blocklengths, displs, oldtype, newtype);
}
SHIM_PMPI(MPI_Type_hindexed)

int MPI_Type_struct(int count, int blocklengths[], MPI_Aint displs[], MPI_Datatype types[], MPI_Datatype *newtype) {
  return PMPI_Type_create_struct(count, blocklengths, displs, types, newtype);
}
SHIM_PMPI(MPI_Type_struct)

int MPI_Type_extent(MPI_Datatype datatype, MPI_Aint *extent) {
  MPI_Aint lb;
  return PMPI_Type_get_extent(datatype, &lb, extent);
}
SHIM_PMPI(MPI_Type_extent)

int MPI_Type_lb(MPI_Datatype datatype, MPI_Aint *displacement) {
  MPI_Aint extent;
  return PMPI_Type_get_extent(datatype, displacement, &extent);
}
SHIM_PMPI(MPI_Type_lb)

int MPI_Type_ub(MPI_Datatype datatype, MPI_Aint *displacement) {
  MPI_Aint lb = 0, extent = 0;
  int rc = PMPI_Type_get_extent(datatype, &lb, &extent);
  *displacement = lb + extent;
  return rc;
}
SHIM_PMPI(MPI_Type_ub)

/* ------------------------------------------------------------------ communicators */

/* Nonblocking duplication. The virtual communicator exists at once: it is named for the
   checkpoint (shim_comm_new) and its start is logged for a restart's replay in the order
   every member starts it; the request's completion (shim_idup_done) binds it to the real one,
   which the real library writes into `real` whenever it likes until then. A checkpoint waits
   for a duplication in flight like for any other collective request. */
struct shim_idup {
  uint64_t real;  /* first: the lower half writes the new communicator here */
  void *rec;      /* the replay record of the start */
  MPI_Info info;  /* MPI_Comm_idup_with_info's hints, set at completion (a duplicate) */
};

static int idup(MPI_Comm comm, MPI_Info info, MPI_Comm *newcomm, MPI_Request *request) {
  struct shim_idup *d = shim_tmp(sizeof *d);
  d->info = MPI_INFO_NULL;
  if (info != MPI_INFO_NULL) {
    int rc = PMPI_Info_dup(info, &d->info);
    if (rc != MPI_SUCCESS) { free(d); return rc; }
  }
  shim_enter();
  shim_coll_begin(comm);
  uint64_t req = 0;
  int rc = LH_CALL(MPI_Comm_idup, vh_real(VK_COMM, comm), &d->real, &req);
  if (rc != MPI_SUCCESS) {
    shim_leave();
    if (d->info != MPI_INFO_NULL) PMPI_Info_free(&d->info);
    free(d);
    return rc;
  }
  MPI_Comm nc = (MPI_Comm)vh_make(VK_COMM, 0);
  shim_comm_new(comm, nc);
  d->rec = replay_log_idup_start(comm, nc);
  int64_t v = shim_req_new(req, SHIM_REQ_IDUP);
  struct shim_req *m = vh_req_meta(v);
  m->buf = d;
  m->comm = nc;
  shim_leave();
  *newcomm = nc;
  *request = (MPI_Request)v;
  return MPI_SUCCESS;
}

int MPI_Comm_idup(MPI_Comm comm, MPI_Comm *newcomm, MPI_Request *request) {
  return idup(comm, MPI_INFO_NULL, newcomm, request);
}
SHIM_PMPI(MPI_Comm_idup)

/* A blocking duplication is a nonblocking one waited for in the upper half (DESIGN.md
   invariant 2): a rank inside MPI_Comm_dup never waits in the lower half for a rank that a
   checkpoint holds at the gate, which would hang the checkpoint's agreement. */
int MPI_Comm_dup(MPI_Comm comm, MPI_Comm *newcomm) {
  MPI_Request r = MPI_REQUEST_NULL;
  MPI_Comm nc = MPI_COMM_NULL;
  int rc = idup(comm, MPI_INFO_NULL, &nc, &r);
  if (rc == MPI_SUCCESS) rc = PMPI_Wait(&r, MPI_STATUS_IGNORE);
  *newcomm = rc == MPI_SUCCESS ? nc : MPI_COMM_NULL;
  return rc;
}
SHIM_PMPI(MPI_Comm_dup)

/* Both lower halves have MPI_Comm_idup (Open MPI 4.1 lacks the _with_info one): the hints are
   set on the new communicator when it is complete. */
int MPI_Comm_idup_with_info(MPI_Comm comm, MPI_Info info, MPI_Comm *newcomm, MPI_Request *request) {
  return idup(comm, info, newcomm, request);
}
SHIM_PMPI(MPI_Comm_idup_with_info)

/* The duplication's request completed (called from vh_update, inside the wrapper that saw
   it). After a restart the replay has bound the communicator already. */
void shim_idup_done(struct shim_req *m) {
  struct shim_idup *d = m->buf;
  if (!d) return;
  m->buf = NULL;
  if (vh_real(VK_COMM, m->comm) == 0) vh_set_real(VK_COMM, m->comm, d->real);
  replay_log_idup_wait(d->rec);
  if (d->info != MPI_INFO_NULL) {
    PMPI_Comm_set_info((MPI_Comm)m->comm, d->info);
    PMPI_Info_free(&d->info);
  }
  free(d);
}

/* ------------------------------------------------------------------ MPI-4 info calls */

void shim_preinit(void) {
  shim_ensure_lower();
  vh_init();
}

/* buflen counts the terminating NUL, and comes back as the value's full length plus one. */
int MPI_Info_get_string(MPI_Info info, const char *key, int *buflen, char *value, int *flag) {
  int len = 0;
  int rc = PMPI_Info_get_valuelen(info, key, &len, flag);
  if (rc != MPI_SUCCESS || !*flag) return rc;
  if (*buflen > 0) {
    char *tmp = shim_tmp((size_t)len + 1);
    rc = PMPI_Info_get(info, key, len, tmp, flag);
    if (rc == MPI_SUCCESS && *flag) {
      int n = len < *buflen - 1 ? len : *buflen - 1;
      memcpy(value, tmp, (size_t)n);
      value[n] = 0;
    }
    free(tmp);
  }
  *buflen = len + 1;
  return rc;
}
SHIM_PMPI(MPI_Info_get_string)

/* What the process was started with: its command, arguments and working directory (the
   launcher's maxprocs, host, ... are not known to a rank). */
int MPI_Info_create_env(int argc, char *argv[], MPI_Info *info) {
  int rc = PMPI_Info_create(info);
  if (rc != MPI_SUCCESS) return rc;
  if (argc > 0 && argv && argv[0]) PMPI_Info_set(*info, "command", argv[0]);
  if (argc > 1 && argv) {
    size_t n = 1;
    for (int i = 1; i < argc; i++) n += strlen(argv[i]) + 1;
    char *all = shim_tmp(n), *p = all;
    for (int i = 1; i < argc; i++) p += sprintf(p, "%s%s", i > 1 ? " " : "", argv[i]);
    *p = 0;
    PMPI_Info_set(*info, "argv", all);
    free(all);
  }
  char cwd[4096];
  if (getcwd(cwd, sizeof cwd)) PMPI_Info_set(*info, "wdir", cwd);
  return MPI_SUCCESS;
}
SHIM_PMPI(MPI_Info_create_env)

/* ------------------------------------------------------------------ MPI-4 calls */

int shim_ret_mpi4(int rc, const char *fn) {
  static int told;
  if (rc == MPI_ERR_UNSUPPORTED_OPERATION && !told++)
    fprintf(stderr, "mana: %s is an MPI-4 call the Open MPI lower half (4.1) lacks; run on MPICH (mana launch/restart --mpi mpich)\n", fn);
  return rc;
}
