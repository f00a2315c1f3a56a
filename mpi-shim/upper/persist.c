/* Persistent requests live in the upper half alone. MPI_Send_init and the others keep the
 * arguments under a virtual request whose real handle is the null request (to the lower half,
 * MPI_Test and MPI_Wait of an inactive persistent request are those of a null one: at once,
 * empty status); MPI_Start posts the matching nonblocking call and binds its request to the
 * same virtual handle. So a checkpoint meets only ordinary sends and receives: an active send
 * is counted once per start and drained, an active receive is cancelled and posted again in
 * its place in the posting order, and an inactive one needs nothing made again after a
 * restart. When the real request completes, vh_update keeps the virtual one, inactive. */

#include "msgbuf.h"
#include "shim.h"

enum { P_SEND = 1, P_SSEND, P_BSEND, P_RSEND, P_RECV };

static int make(int op, const void *buf, int count, MPI_Datatype datatype, int peer, int tag, MPI_Comm comm,
                MPI_Request *request) {
  if (count < 0) return MPI_ERR_COUNT;
  shim_enter();
  if (vh_real(VK_COMM, comm) == vh_null(VK_COMM)) {
    shim_leave();
    return MPI_ERR_COMM;
  }
  int64_t v = vh_new(VK_REQUEST, vh_null(VK_REQUEST));
  struct shim_req *m = vh_req_meta(v);
  m->kind = SHIM_REQ_PERSISTENT;
  m->persist = (uint8_t)op;
  m->buf = (void *)(uintptr_t)buf;
  m->count = count;
  m->datatype = datatype;
  m->source = peer;
  m->tag = tag;
  m->comm = comm;
  *request = (MPI_Request)v;
  shim_leave();
  return MPI_SUCCESS;
}

int MPI_Send_init(const void *buf, int count, MPI_Datatype datatype, int dest, int tag, MPI_Comm comm, MPI_Request *request) {
  return make(P_SEND, buf, count, datatype, dest, tag, comm, request);
}
SHIM_PMPI(MPI_Send_init)

int MPI_Ssend_init(const void *buf, int count, MPI_Datatype datatype, int dest, int tag, MPI_Comm comm, MPI_Request *request) {
  return make(P_SSEND, buf, count, datatype, dest, tag, comm, request);
}
SHIM_PMPI(MPI_Ssend_init)

int MPI_Bsend_init(const void *buf, int count, MPI_Datatype datatype, int dest, int tag, MPI_Comm comm, MPI_Request *request) {
  return make(P_BSEND, buf, count, datatype, dest, tag, comm, request);
}
SHIM_PMPI(MPI_Bsend_init)

int MPI_Rsend_init(const void *buf, int count, MPI_Datatype datatype, int dest, int tag, MPI_Comm comm, MPI_Request *request) {
  return make(P_RSEND, buf, count, datatype, dest, tag, comm, request);
}
SHIM_PMPI(MPI_Rsend_init)

int MPI_Recv_init(void *buf, int count, MPI_Datatype datatype, int source, int tag, MPI_Comm comm, MPI_Request *request) {
  return make(P_RECV, buf, count, datatype, source, tag, comm, request);
}
SHIM_PMPI(MPI_Recv_init)

/* Called holding the lower half (shim_enter), so a checkpoint sees the start whole: posted and
   counted, or neither. */
static int start_one(MPI_Request request) {
  struct shim_req *m = vh_req_meta(request);
  if (!m || !m->persist || m->kind != SHIM_REQ_PERSISTENT) return MPI_ERR_REQUEST; /* not persistent, or active */
  uint64_t dt = vh_real(VK_DATATYPE, m->datatype), comm = vh_real(VK_COMM, m->comm), r = 0;
  int rc;
  switch (m->persist) {
    case P_SEND: rc = LH_CALL(MPI_Isend, m->buf, m->count, dt, m->source, m->tag, comm, &r); break;
    case P_SSEND: rc = LH_CALL(MPI_Issend, m->buf, m->count, dt, m->source, m->tag, comm, &r); break;
    case P_BSEND: rc = LH_CALL(MPI_Ibsend, m->buf, m->count, dt, m->source, m->tag, comm, &r); break;
    case P_RSEND: rc = LH_CALL(MPI_Irsend, m->buf, m->count, dt, m->source, m->tag, comm, &r); break;
    default:
      /* a message a checkpoint drained into the upper half comes before the lower half's */
      if (shim_mb_live && (rc = mb_irecv_real(m->buf, m->count, m->datatype, m->source, m->tag, m->comm, &r)) >= 0) {
        if (rc != MPI_SUCCESS) return rc;
        m->cancelled = m->done = 0;
        m->counted = 1; /* counted when it was drained */
        vh_req_reseq(m);
        vh_set_real(VK_REQUEST, request, r);
        m->kind = SHIM_REQ_OTHER;
        return MPI_SUCCESS;
      }
      rc = LH_CALL(MPI_Irecv, m->buf, m->count, dt, m->source, m->tag, comm, &r);
      break;
  }
  if (rc != MPI_SUCCESS) return rc;
  m->cancelled = m->done = m->counted = 0;
  vh_req_reseq(m);
  vh_set_real(VK_REQUEST, request, r);
  if (m->persist != P_RECV) {
    if (m->source != MPI_PROC_NULL) shim_nsent++; /* each start is one message */
    m->kind = SHIM_REQ_SEND;
  } else {
    m->kind = m->source == MPI_PROC_NULL ? SHIM_REQ_OTHER : SHIM_REQ_RECV;
  }
  /* a call with MPI_PROC_NULL may be complete at once: then it is inactive again already, and a
     wait on it returns at once */
  if (r == vh_null(VK_REQUEST)) m->kind = SHIM_REQ_PERSISTENT;
  return MPI_SUCCESS;
}

int MPI_Start(MPI_Request *request) {
  shim_enter();
  int rc = start_one(*request);
  shim_leave();
  return rc;
}
SHIM_PMPI(MPI_Start)

int MPI_Startall(int count, MPI_Request requests[]) {
  shim_enter();
  int rc = MPI_SUCCESS;
  for (int i = 0; i < count && rc == MPI_SUCCESS; i++) rc = start_one(requests[i]);
  shim_leave();
  return rc;
}
SHIM_PMPI(MPI_Startall)

int MPI_Request_free(MPI_Request *request) {
  shim_enter();
  int64_t v = *request;
  struct shim_req *m = vh_req_meta(v);
  uint64_t r = vh_real(VK_REQUEST, v);
  int rc = MPI_SUCCESS;
  if (m && m->persist) {
    /* an active one completes on its own, as any request freed while active */
    if (r != vh_null(VK_REQUEST)) rc = LH_CALL(MPI_Request_free, &r);
    if (rc == MPI_SUCCESS) {
      m->persist = 0;
      vh_update(VK_REQUEST, &v, vh_null(VK_REQUEST));
    }
  } else {
    rc = LH_CALL(MPI_Request_free, &r);
    vh_update(VK_REQUEST, &v, r);
  }
  *request = (MPI_Request)v;
  shim_leave();
  return rc;
}
SHIM_PMPI(MPI_Request_free)

/* A receive the application cancels brings no message, so it must not count as received: the
   checkpoint's sum of sent minus received would stay below zero and no checkpoint could drain
   again. Both libraries cancel a receive at once, so its status can be read right away
   (without consuming the request); one that is not cancelled yet counts when it completes. */
int MPI_Cancel(MPI_Request *request) {
  shim_enter();
  int64_t v = *request;
  uint64_t r = vh_real(VK_REQUEST, v);
  int rc = LH_CALL(MPI_Cancel, &r);
  struct shim_req *m = vh_req_meta(v);
  if (rc == MPI_SUCCESS && m && m->kind == SHIM_REQ_RECV && !m->counted) {
    int flag = 0;
    struct lh_status st;
    if (LH_CALL(MPI_Request_get_status, r, &flag, &st) == MPI_SUCCESS && flag && st.cancelled) m->counted = 1;
  }
  vh_update(VK_REQUEST, &v, r);
  *request = (MPI_Request)v;
  shim_leave();
  return rc;
}
SHIM_PMPI(MPI_Cancel)
