/* Messages in flight at a checkpoint, kept in the upper half (DESIGN.md invariant 5).
 *
 * A job whose ranks always have a message on its way that no receive is posted for yet never
 * has a quiet moment. Once no rank is behind on collectives, the checkpoint thread (holding
 * the lower half) takes every such message itself: MPI_Improbe(ANY_SOURCE, ANY_TAG) on each
 * communicator of the application, then MPI_Imrecv of its bytes (MPI_BYTE) into a malloc'd
 * block here, counted as received. The blocks are upper-half memory: they are in the image,
 * survive a restart (on either MPI) and are delivered from here afterwards.
 *
 * Order. Only unexpected messages are taken: a message that matches a receive already posted
 * goes to that receive inside the lower half, as it always did. So a posted receive (one the
 * checkpoint cancels and posts again) can match no buffered message: had one matched it, MPI
 * would have delivered it there instead of leaving it unexpected. Every buffered message was
 * sent before the checkpoint and every message the lower half holds afterwards was sent after
 * it (the drain ends when the global sum of sent minus received is zero), so MPI's
 * non-overtaking rule (messages from one source on one communicator match in the order sent)
 * holds when every receive, probe and matched probe looks here first, takes the first match
 * in arrival order, and goes to the lower half only when nothing here matches. The drain
 * takes a communicator's messages in the order the lower half would have matched them, and a
 * later checkpoint appends behind what is still here. Messages from different sources are not
 * ordered by MPI, so an MPI_ANY_SOURCE receive may take a buffered one first.
 *
 * Delivery unpacks the byte image into the receiver's (count, datatype) with MPI_Unpack (a
 * message received as MPI_BYTE is the packed form of its typed data in a homogeneous job, in
 * both MPICH and Open MPI), so derived datatypes land where they would have; the status
 * carries the byte count, so MPI_Get_count and MPI_Get_elements answer as for any receive. */
#include <limits.h>
#include <string.h>

#include "msgbuf.h"
#include "shim.h"

struct mb_msg {
  struct mb_msg *next;
  int64_t comm;    /* virtual */
  int64_t message; /* the virtual MPI_Message once MPI_Improbe matched it; 0 while queued */
  int source, tag;
  int64_t bytes;
  unsigned char data[];
};

__attribute__((visibility("hidden"))) int64_t shim_mb_live;
/* one queue in arrival order (matching compares the communicator); messages matched by a
   probe wait in `matched` for their MPI_Mrecv */
static struct mb_msg *queue, **queue_end = &queue, *matched;

/* the real value behind a virtual MPI_Message that names a buffered message (never a real
   handle: MPICH's are 32-bit, Open MPI's are user-space pointers) */
#define MB_MESSAGE_REAL 0x6d62000000000000ull

int64_t mb_drain(MPI_Comm comm) {
  uint64_t real = vh_real(VK_COMM, comm);
  /* freed since, or made by an MPI_Comm_idup not complete yet (no real handle to ask: Open MPI
     would take 0 for a communicator and crash); its messages are drained once it completes */
  if (real == 0 || real == vh_null(VK_COMM)) return 0;
  uint64_t byte = vh_real(VK_DATATYPE, MPI_BYTE);
  int64_t n = 0;
  for (;;) {
    int flag = 0;
    uint64_t msg = 0;
    struct lh_status st;
    if (LH_CALL(MPI_Improbe, MPI_ANY_SOURCE, MPI_ANY_TAG, real, &flag, &msg, &st) != MPI_SUCCESS || !flag) break;
    if (st.count < 0 || st.count > INT_MAX)
      shim_die("a message of %lld bytes is in flight at a checkpoint; messages over 2 GiB cannot be drained yet", (long long)st.count);
    struct mb_msg *m = malloc(sizeof *m + (size_t)st.count);
    if (!m) shim_die("out of memory for %lld bytes of an MPI message in flight at a checkpoint", (long long)st.count);
    uint64_t req = 0;
    int rc = LH_CALL(MPI_Imrecv, m->data, (int)st.count, byte, &msg, &req);
    struct lh_status got;
    if (rc == MPI_SUCCESS) rc = shim_wait(&req, &got);
    if (rc != MPI_SUCCESS) shim_die("cannot receive a message in flight at a checkpoint (error class %d)", rc);
    *m = (struct mb_msg){.comm = comm, .source = st.source, .tag = st.tag, .bytes = got.count};
    *queue_end = m;
    queue_end = &m->next;
    shim_mb_live++;
    shim_nrecvd++;
    n++;
  }
  return n;
}

/* the first queued message a receive (source, tag, comm) matches; its link in the queue */
static struct mb_msg **find(int source, int tag, MPI_Comm comm) {
  if (source == MPI_PROC_NULL) return NULL;
  for (struct mb_msg **p = &queue; *p; p = &(*p)->next) {
    struct mb_msg *m = *p;
    if (m->comm == comm && (source == MPI_ANY_SOURCE || source == m->source) && (tag == MPI_ANY_TAG || tag == m->tag))
      return p;
  }
  return NULL;
}

static struct mb_msg *unlink_at(struct mb_msg **p) {
  struct mb_msg *m = *p;
  *p = m->next;
  if (!*p) queue_end = p;
  m->next = NULL;
  return m;
}

static struct lh_status status_of(const struct mb_msg *m, int64_t bytes, int error) {
  return (struct lh_status){.source = m->source, .tag = m->tag, .error = error, .cancelled = 0, .count = bytes};
}

/* The received part of element `k` of (buf, dt) when the message ends inside it (rest bytes of
   it came): MPI_Unpack writes whole elements only, so the element is unpacked twice from
   copies padded differently, onto copies of what buf holds there; a byte on which the two
   agree came from the message (or was left alone), one on which they differ came from the
   padding, and buf keeps its own. */
static int unpack_part(const unsigned char *data, int64_t rest, int tsize, void *buf, int k, MPI_Datatype dt) {
  MPI_Aint lb, extent, tlb, textent;
  int rc = PMPI_Type_get_extent(dt, &lb, &extent);
  if (rc == MPI_SUCCESS) rc = PMPI_Type_get_true_extent(dt, &tlb, &textent);
  if (rc != MPI_SUCCESS) return rc;
  unsigned char *dst = (unsigned char *)buf + (MPI_Aint)k * extent + tlb;
  unsigned char *pad = shim_tmp((size_t)tsize), *copy[2] = {NULL, NULL};
  for (int pass = 0; pass < 2 && rc == MPI_SUCCESS; pass++) {
    copy[pass] = shim_tmp((size_t)textent);
    memcpy(copy[pass], dst, (size_t)textent);
    memcpy(pad, data, (size_t)rest);
    memset(pad + rest, pass ? 0xff : 0, (size_t)(tsize - rest));
    int pos = 0;
    /* the element's true lower bound lands at copy[pass] */
    rc = PMPI_Unpack(pad, tsize, &pos, (void *)((uintptr_t)copy[pass] - (uintptr_t)tlb), 1, dt, MPI_COMM_SELF);
  }
  if (rc == MPI_SUCCESS)
    for (MPI_Aint i = 0; i < textent; i++)
      if (copy[0][i] == copy[1][i]) dst[i] = copy[0][i];
  free(pad), free(copy[0]), free(copy[1]);
  return rc;
}

/* Copies m into (buf, count, dt) and frees it (whatever the outcome: a receive that fails
   consumes its message, as in the lower half); *st tells what was received. MPI_ERR_TRUNCATE
   when it does not fit (the part that fits is received, as MPI does). */
static int deliver(struct mb_msg *m, void *buf, int count, MPI_Datatype dt, struct lh_status *st) {
  int tsize = 0;
  shim_mb_live--;
  int rc = PMPI_Type_size(dt, &tsize);
  if (rc != MPI_SUCCESS) {
    *st = status_of(m, 0, rc);
    free(m);
    return rc;
  }
  int64_t room = (int64_t)tsize * (count > 0 ? count : 0);
  int64_t take = m->bytes <= room ? m->bytes : room;
  int whole = tsize > 0 ? (int)(take / tsize) : 0;
  int64_t rest = take - (int64_t)whole * tsize;
  if (dt == MPI_BYTE || dt == MPI_PACKED || dt == MPI_CHAR) {
    memcpy(buf, m->data, (size_t)take);
  } else {
    int pos = 0;
    if (whole > 0) rc = PMPI_Unpack(m->data, (int)(take - rest), &pos, buf, whole, dt, MPI_COMM_SELF);
    if (rc == MPI_SUCCESS && rest > 0) rc = unpack_part(m->data + take - rest, rest, tsize, buf, whole, dt);
  }
  if (rc == MPI_SUCCESS && m->bytes > room) rc = MPI_ERR_TRUNCATE;
  *st = status_of(m, take, rc == MPI_SUCCESS ? LH_UNTOUCHED : rc);
  free(m);
  return rc;
}

/* A receive completed here: the error goes to the communicator's handler, as the lower half's
   would (MPI_ERRORS_ARE_FATAL ends the job). */
static int report(int rc, MPI_Comm comm) {
  if (rc != MPI_SUCCESS) PMPI_Comm_call_errhandler(comm, rc);
  return rc;
}

static void status_to(const struct lh_status *st, MPI_Status *status) {
  if (status != MPI_STATUS_IGNORE) shim_status_out(st, status);
}

/* a request that is already complete with status st (the stand-in lh_completed makes) */
static MPI_Request completed_request(const struct lh_status *st) {
  uint64_t real = 0;
  int rc = LH_CALL(lh_completed, st, &real);
  if (rc != MPI_SUCCESS) shim_die("cannot make a completed request for a buffered message (error class %d)", rc);
  /* not a receive for the checkpoint's counts: the message was counted when it was drained */
  return (MPI_Request)shim_req_new(real, SHIM_REQ_OTHER);
}

int mb_recv(void *buf, int count, MPI_Datatype dt, int source, int tag, MPI_Comm comm, MPI_Status *status) {
  struct mb_msg **p = find(source, tag, comm);
  if (!p) return -1;
  struct lh_status st;
  int rc = deliver(unlink_at(p), buf, count, dt, &st);
  status_to(&st, status);
  return report(rc, comm);
}

int mb_irecv_real(void *buf, int count, MPI_Datatype dt, int source, int tag, MPI_Comm comm, uint64_t *real) {
  struct mb_msg **p = find(source, tag, comm);
  if (!p) return -1;
  struct lh_status st;
  int rc = deliver(unlink_at(p), buf, count, dt, &st);
  if (rc != MPI_SUCCESS && rc != MPI_ERR_TRUNCATE) return report(rc, comm);
  /* a nonblocking receive tells truncation at its completion, in the status */
  rc = LH_CALL(lh_completed, &st, real);
  if (rc != MPI_SUCCESS) shim_die("cannot make a completed request for a buffered message (error class %d)", rc);
  return MPI_SUCCESS;
}

int mb_irecv(void *buf, int count, MPI_Datatype dt, int source, int tag, MPI_Comm comm, MPI_Request *request) {
  uint64_t real = 0;
  int rc = mb_irecv_real(buf, count, dt, source, tag, comm, &real);
  /* not a receive for the checkpoint's counts: the message was counted when it was drained */
  if (rc == MPI_SUCCESS) *request = (MPI_Request)shim_req_new(real, SHIM_REQ_OTHER);
  return rc;
}

int mb_iprobe(int source, int tag, MPI_Comm comm, int *flag, MPI_Status *status) {
  struct mb_msg **p = find(source, tag, comm);
  if (!p) return -1;
  struct lh_status st = status_of(*p, (*p)->bytes, LH_UNTOUCHED);
  *flag = 1;
  status_to(&st, status);
  return MPI_SUCCESS;
}

int mb_improbe(int source, int tag, MPI_Comm comm, int *flag, MPI_Message *message, MPI_Status *status) {
  struct mb_msg **p = find(source, tag, comm);
  if (!p) return -1;
  struct mb_msg *m = unlink_at(p);
  m->message = vh_make(VK_MESSAGE, MB_MESSAGE_REAL);
  m->next = matched;
  matched = m;
  struct lh_status st = status_of(m, m->bytes, LH_UNTOUCHED);
  *flag = 1;
  *message = (MPI_Message)m->message;
  status_to(&st, status);
  return MPI_SUCCESS;
}

/* the buffered message a virtual MPI_Message names, taken off the matched list */
static struct mb_msg *take_matched(MPI_Message message) {
  for (struct mb_msg **p = &matched; *p; p = &(*p)->next) {
    if ((*p)->message != (int64_t)message) continue;
    struct mb_msg *m = *p;
    *p = m->next;
    int64_t v = m->message;
    vh_update(VK_MESSAGE, &v, vh_null(VK_MESSAGE)); /* releases the handle */
    return m;
  }
  return NULL;
}

int mb_mrecv(void *buf, int count, MPI_Datatype dt, MPI_Message *message, MPI_Status *status) {
  struct mb_msg *m = take_matched(*message);
  if (!m) return -1;
  MPI_Comm comm = (MPI_Comm)m->comm;
  struct lh_status st;
  int rc = deliver(m, buf, count, dt, &st);
  *message = MPI_MESSAGE_NULL;
  status_to(&st, status);
  return report(rc, comm);
}

int mb_imrecv(void *buf, int count, MPI_Datatype dt, MPI_Message *message, MPI_Request *request) {
  struct mb_msg *m = take_matched(*message);
  if (!m) return -1;
  MPI_Comm comm = (MPI_Comm)m->comm;
  struct lh_status st;
  int rc = deliver(m, buf, count, dt, &st);
  *message = MPI_MESSAGE_NULL;
  if (rc != MPI_SUCCESS && rc != MPI_ERR_TRUNCATE) return report(rc, comm);
  *request = completed_request(&st);
  return MPI_SUCCESS;
}
