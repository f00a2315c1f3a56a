/* The lower half's hand-written proxies beyond the basics of lh_proxy.c: arrays that must
   outlive a nonblocking call, the length helpers of spec/mpi.api (@size, @indegree,
   @outdegree), attribute and error-handler callbacks going back up, and
   MPI_Type_get_contents. Included by lh_proxy.c, so it is compiled against each real MPI. */

/* ------------------------------------------------------------------ kept arrays */

/* A nonblocking call may read its (translated) datatype arrays until it completes, so they
   stay here, keyed by the real request, until a test or wait sees that request complete. */
struct kept { MPI_Request req; void *p; };
static struct kept *kept;
static int n_kept, cap_kept;

void lh_keep(MPI_Request req, void *p) {
  if (n_kept == cap_kept) {
    cap_kept = cap_kept ? cap_kept * 2 : 16;
    kept = realloc(kept, (size_t)cap_kept * sizeof *kept);
    if (!kept) abort();
  }
  kept[n_kept].req = req;
  kept[n_kept++].p = p;
}

void lh_req_done(MPI_Request before, MPI_Request after) {
  if (!n_kept || before == MPI_REQUEST_NULL || after != MPI_REQUEST_NULL) return;
  for (int i = 0; i < n_kept;) {
    if (kept[i].req == before) {
      free(kept[i].p);
      kept[i] = kept[--n_kept];
    } else {
      i++;
    }
  }
}

/* ------------------------------------------------------------------ lengths */

int lh_len_size(MPI_Comm comm) {
  int inter = 0, n = 0;
  if (MPI_Comm_test_inter(comm, &inter) != MPI_SUCCESS) return 0;
  if ((inter ? MPI_Comm_remote_size(comm, &n) : MPI_Comm_size(comm, &n)) != MPI_SUCCESS) return 0;
  return n;
}

static int degree(MPI_Comm comm, int in) {
  int topo = MPI_UNDEFINED, n = 0;
  if (MPI_Topo_test(comm, &topo) != MPI_SUCCESS) return 0;
  if (topo == MPI_CART) {
    if (MPI_Cartdim_get(comm, &n) != MPI_SUCCESS) return 0;
    return 2 * n;
  }
  if (topo == MPI_GRAPH) {
    int rank = 0;
    MPI_Comm_rank(comm, &rank);
    if (MPI_Graph_neighbors_count(comm, rank, &n) != MPI_SUCCESS) return 0;
    return n;
  }
  if (topo == MPI_DIST_GRAPH) {
    int indeg = 0, outdeg = 0, w = 0;
    if (MPI_Dist_graph_neighbors_count(comm, &indeg, &outdeg, &w) != MPI_SUCCESS) return 0;
    return in ? indeg : outdeg;
  }
  return 0;
}
int lh_len_indegree(MPI_Comm comm) { return degree(comm, 1); }
int lh_len_outdegree(MPI_Comm comm) { return degree(comm, 0); }

/* ------------------------------------------------------------------ attributes */

/* The upper half's slot travels as the real library's extra_state; one trampoline per kind. */
static int comm_copy_tramp(MPI_Comm c, int key, void *extra, void *in, void *out, int *flag) {
  return lh_enum_in(LH_FAM_errclass, lh_up->attr_copy(0, (int)(intptr_t)extra, U(c), UK(key), in, out, flag));
}
static int comm_delete_tramp(MPI_Comm c, int key, void *val, void *extra) {
  return lh_enum_in(LH_FAM_errclass, lh_up->attr_delete(0, (int)(intptr_t)extra, U(c), UK(key), val));
}
static int type_copy_tramp(MPI_Datatype t, int key, void *extra, void *in, void *out, int *flag) {
  return lh_enum_in(LH_FAM_errclass, lh_up->attr_copy(1, (int)(intptr_t)extra, U(t), UK(key), in, out, flag));
}
static int type_delete_tramp(MPI_Datatype t, int key, void *val, void *extra) {
  return lh_enum_in(LH_FAM_errclass, lh_up->attr_delete(1, (int)(intptr_t)extra, U(t), UK(key), val));
}

/* copy / del: NULL for the null function, anything else for "call the upper half" */
static int p_MPI_Comm_create_keyval(void *copy, void *del, uint64_t *keyval, void *slot) {
  int k = 0;
  int rc = MPI_Comm_create_keyval(copy ? comm_copy_tramp : MPI_COMM_NULL_COPY_FN,
                                  del ? comm_delete_tramp : MPI_COMM_NULL_DELETE_FN, &k, slot);
  *keyval = UK(k);
  return lh_err(rc);
}

static int p_MPI_Type_create_keyval(void *copy, void *del, uint64_t *keyval, void *slot) {
  int k = 0;
  int rc = MPI_Type_create_keyval(copy ? type_copy_tramp : MPI_TYPE_NULL_COPY_FN,
                                  del ? type_delete_tramp : MPI_TYPE_NULL_DELETE_FN, &k, slot);
  *keyval = UK(k);
  return lh_err(rc);
}

/* ------------------------------------------------------------------ error handlers */

/* A handler gets the ABI class of a predefined error, and a code the application added
   (MPI_Add_error_code) unchanged: only it knows that code. */
static int errh_code(int code) {
  int cls = MPI_ERR_OTHER;
  if (MPI_Error_class(code, &cls) == MPI_SUCCESS && cls > MPI_ERR_LASTCODE) return code;
  return lh_err(code);
}

/* Inside the start of a blocking call made as its nonblocking twin (p_*_spin, proxy.gen.c), the
   application's handler is called once, as by the blocking call: MPICH's nonblocking file calls
   call it twice for one error (MPI_File_iread_all of a write-only file). -1: not in one. */
static int errh_once = -1;
static int errh_deliver(void) { return errh_once < 0 || errh_once++ == 0; }

/* No extra_state here: one trampoline per slot, as for user reductions. */
#define ERRH_SLOTS 64
#define ETRAMP(k)                                                                                \
  static void comm_errh_##k(MPI_Comm *c, int *code, ...) {                                       \
    if (errh_deliver()) lh_up->errh(0, k, U(*c), errh_code(*code));                              \
  }                                                                                              \
  static void file_errh_##k(MPI_File *f, int *code, ...) {                                       \
    if (errh_deliver()) lh_up->errh(1, k, U(*f), errh_code(*code));                              \
  }
#define ETRAMP8(a) ETRAMP(a##0) ETRAMP(a##1) ETRAMP(a##2) ETRAMP(a##3) ETRAMP(a##4) ETRAMP(a##5) ETRAMP(a##6) ETRAMP(a##7)
ETRAMP(0) ETRAMP(1) ETRAMP(2) ETRAMP(3) ETRAMP(4) ETRAMP(5) ETRAMP(6) ETRAMP(7)
ETRAMP8(1) ETRAMP8(2) ETRAMP8(3) ETRAMP8(4) ETRAMP8(5) ETRAMP8(6) ETRAMP8(7)
#define EC8(a) comm_errh_##a##0, comm_errh_##a##1, comm_errh_##a##2, comm_errh_##a##3, comm_errh_##a##4, comm_errh_##a##5, comm_errh_##a##6, comm_errh_##a##7
#define EF8(a) file_errh_##a##0, file_errh_##a##1, file_errh_##a##2, file_errh_##a##3, file_errh_##a##4, file_errh_##a##5, file_errh_##a##6, file_errh_##a##7
static MPI_Comm_errhandler_function *const comm_errh[ERRH_SLOTS] = {
    comm_errh_0, comm_errh_1, comm_errh_2, comm_errh_3, comm_errh_4, comm_errh_5, comm_errh_6, comm_errh_7,
    EC8(1), EC8(2), EC8(3), EC8(4), EC8(5), EC8(6), EC8(7)};
static MPI_File_errhandler_function *const file_errh[ERRH_SLOTS] = {
    file_errh_0, file_errh_1, file_errh_2, file_errh_3, file_errh_4, file_errh_5, file_errh_6, file_errh_7,
    EF8(1), EF8(2), EF8(3), EF8(4), EF8(5), EF8(6), EF8(7)};

static int p_MPI_Comm_create_errhandler(void *slot, uint64_t *errhandler) {
  intptr_t k = (intptr_t)slot;
  if (k < 0 || k >= ERRH_SLOTS) return lh_err(MPI_ERR_ARG);
  MPI_Errhandler r;
  int rc = MPI_Comm_create_errhandler(comm_errh[k], &r);
  *errhandler = U(r);
  return lh_err(rc);
}

static int p_MPI_File_create_errhandler(void *slot, uint64_t *errhandler) {
  intptr_t k = (intptr_t)slot;
  if (k < 0 || k >= ERRH_SLOTS) return lh_err(MPI_ERR_ARG);
  MPI_Errhandler r;
  int rc = MPI_File_create_errhandler(file_errh[k], &r);
  *errhandler = U(r);
  return lh_err(rc);
}

/* ------------------------------------------------------------------ datatype contents */

/* The integers of a subarray or darray include the order and the distributions, whose values
   differ between implementations. */
static int p_MPI_Type_get_contents(uint64_t datatype, int max_integers, int max_addresses, int max_datatypes,
                                   int *ints, int64_t *addrs, uint64_t *types) {
  MPI_Datatype dt = H(MPI_Datatype, datatype);
  MPI_Datatype *r = (MPI_Datatype *)lh_tmp((size_t)(max_datatypes > 0 ? max_datatypes : 1) * sizeof *r);
  int rc = MPI_Type_get_contents(dt, max_integers, max_addresses, max_datatypes, ints, (MPI_Aint *)addrs, r);
  if (rc == MPI_SUCCESS) {
    for (int k = 0; k < max_datatypes; k++) types[k] = U(r[k]);
    int ni = 0, na = 0, nd = 0, comb = 0;
    MPI_Type_get_envelope(dt, &ni, &na, &nd, &comb);
    if (comb == MPI_COMBINER_SUBARRAY && ni >= 1 && max_integers >= 3 * ints[0] + 2) {
      int n = ints[0];
      ints[3 * n + 1] = lh_enum_out(LH_FAM_order, ints[3 * n + 1]);
    } else if (comb == MPI_COMBINER_DARRAY && ni >= 3 && max_integers >= 4 * ints[2] + 4) {
      int n = ints[2];
      for (int k = 0; k < n; k++) {
        ints[3 + n + k] = lh_enum_out(LH_FAM_distribute, ints[3 + n + k]);
        ints[3 + 2 * n + k] = lh_enum_out(LH_FAM_darg, ints[3 + 2 * n + k]);
      }
      ints[3 + 4 * n] = lh_enum_out(LH_FAM_order, ints[3 + 4 * n]);
    }
  }
  free(r);
  return lh_err(rc);
}

/* ------------------------------------------------------------------ nonblocking duplication */

/* The real library may write the new communicator only when the duplication completes, so it
   writes into the upper half's cell (which lives until then), not into a proxy local. The cell
   is read in the upper half as a neutral handle: an int handle (MPICH) lands in its low half,
   and MPICH's communicator handles all have the top bit set, which U() sign-extends, so the
   high half is set now to what U() would give. */
static int p_MPI_Comm_idup(uint64_t comm, uint64_t *newcomm, uint64_t *request) {
  *newcomm = sizeof(MPI_Comm) < sizeof(uint64_t) ? ~(uint64_t)0 << 32 : 0;
  MPI_Request r;
  int rc = MPI_Comm_idup(H(MPI_Comm, comm), (MPI_Comm *)newcomm, &r);
  *request = U(r);
  return lh_err(rc);
}

/* ------------------------------------------------------------------ MPI-4 send-receive */

/* MPICH 4.0 has the nonblocking send-receives; Open MPI 4.1 has neither, and one request
   cannot stand for two here, so that lower half declines them. */
static int p_MPI_Isendrecv(const void *sendbuf, int sendcount, uint64_t sendtype, int dest, int sendtag,
                           void *recvbuf, int recvcount, uint64_t recvtype, int source, int recvtag, uint64_t comm,
                           uint64_t *request) {
#if defined(OPEN_MPI)
  (void)sendbuf, (void)sendcount, (void)sendtype, (void)dest, (void)sendtag, (void)recvbuf, (void)recvcount,
      (void)recvtype, (void)source, (void)recvtag, (void)comm, (void)request;
  return lh_err(MPI_ERR_UNSUPPORTED_OPERATION);
#else
  MPI_Request r;
  int rc = MPI_Isendrecv(LH_BUF(sendbuf), sendcount, H(MPI_Datatype, sendtype), lh_rank_in(dest), sendtag, recvbuf,
                         recvcount, H(MPI_Datatype, recvtype), lh_rank_in(source), recvtag, H(MPI_Comm, comm), &r);
  *request = U(r);
  return lh_err(rc);
#endif
}

static int p_MPI_Isendrecv_replace(void *buf, int count, uint64_t datatype, int dest, int sendtag, int source,
                                   int recvtag, uint64_t comm, uint64_t *request) {
#if defined(OPEN_MPI)
  (void)buf, (void)count, (void)datatype, (void)dest, (void)sendtag, (void)source, (void)recvtag, (void)comm,
      (void)request;
  return lh_err(MPI_ERR_UNSUPPORTED_OPERATION);
#else
  MPI_Request r;
  int rc = MPI_Isendrecv_replace(buf, count, H(MPI_Datatype, datatype), lh_rank_in(dest), sendtag, lh_rank_in(source),
                                 recvtag, H(MPI_Comm, comm), &r);
  *request = U(r);
  return lh_err(rc);
#endif
}

/* ------------------------------------------------------------------ generalized requests */

/* The slot of the application's functions travels as extra_state. */
static int ugreq_query(void *extra, MPI_Status *st) {
  struct lh_status s = {0};
  int rc = lh_up->greq(0, (int)(intptr_t)extra, &s, 0);
  lh_status_in(&s, st);
  return rc == 0 ? MPI_SUCCESS : lh_enum_in(LH_FAM_errclass, rc);
}
static int ugreq_free(void *extra) {
  int rc = lh_up->greq(1, (int)(intptr_t)extra, NULL, 0);
  return rc == 0 ? MPI_SUCCESS : lh_enum_in(LH_FAM_errclass, rc);
}
static int ugreq_cancel(void *extra, int complete) {
  int rc = lh_up->greq(2, (int)(intptr_t)extra, NULL, complete);
  return rc == 0 ? MPI_SUCCESS : lh_enum_in(LH_FAM_errclass, rc);
}

static int p_MPI_Grequest_start(void *query, void *free_fn, void *cancel, void *slot, uint64_t *request) {
  (void)query, (void)free_fn, (void)cancel;
  MPI_Request r;
  int rc = MPI_Grequest_start(ugreq_query, ugreq_free, ugreq_cancel, slot, &r);
  *request = U(r);
  return lh_err(rc);
}
