/* The MPI shim as a client of the checkpointer (native/include/mana_plugin.h).
 *
 * Before the checkpointer parks the threads (presuspend), every rank's checkpoint thread
 * brings the job to a moment where nothing of the application lives only in the lower half:
 *   1. collectives: ranks that are behind on a communicator may start collectives on it until
 *      they have started as many as the rank furthest ahead; the others wait at the start of
 *      their next one (so no rank is saved half-way into a collective, and no trivial barrier
 *      is paid per collective in normal running);
 *   2. point to point: every message sent has been received (the global sum of sent minus
 *      received is zero) and no send or collective request is incomplete; messages no receive
 *      is posted for are received into the upper half to get there (msgbuf.c);
 *   3. receives still posted are then unmatched: they are cancelled and posted again after
 *      the checkpoint (in the same lower half, or in the new one after a restart).
 * The ranks agree on each step through collectives of their own on a private duplicate of
 * MPI_COMM_WORLD, so every rank decides the same. While a rank's checkpoint thread works, the
 * application's threads cannot enter the lower half (the gate in shim.h).
 *
 * After a restart (restart), the shim starts a new lower half with the new launcher's
 * environment, replays the log of calls that made communicators, groups, datatypes, ... so the
 * application's handles name equal objects again, and re-creates the requests. */
#include <dlfcn.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mana_plugin.h"
#include "msgbuf.h"
#include "shim.h"

#define HIDDEN __attribute__((visibility("hidden")))
HIDDEN volatile int shim_gate;
HIDDEN int shim_lock;
HIDDEN __thread int shim_depth;
HIDDEN uint64_t shim_nsent, shim_nrecvd;

/* 1 while ranks may start collectives only up to their targets (step 1 above) */
static volatile int limited;
/* communicators where this rank has started fewer collectives than the rank furthest ahead
   (at the last agreement; both change only under shim_lock) */
static int nbehind;
static uint64_t ck_comm; /* the private duplicate of MPI_COMM_WORLD (a real handle) */
static int ck_ready;

static void pause_briefly(int *spins) {
  if (++*spins < 100) {
    __builtin_ia32_pause();
  } else {
    struct timespec ts = {0, 50000};
    nanosleep(&ts, NULL);
  }
}

/* The pass: an application thread inside a call that blocks in the lower half until every
   member arrives (shim_sync) may be let in by the checkpoint thread while the gate is closed,
   one turn at a time, so that the members already inside get out and their checkpoint threads
   can join the agreement. Its state changes only under shim_lock: the application thread sets
   WAITING, YIELDED and FINISHED holding it; the checkpoint thread sets GRANTED (then lets go
   of it) and takes WAITING/NONE back holding it. */
enum { PASS_NONE, PASS_WAITING, PASS_GRANTED, PASS_YIELDED, PASS_FINISHED };
static volatile int pass_state;
static __thread int pass_mine;

void shim_enter_slow(void) {
  int spins = 0;
  for (;;) {
    if (shim_try_enter()) return;
    if (pass_mine && __atomic_load_n(&pass_state, __ATOMIC_ACQUIRE) == PASS_GRANTED) {
      /* one call at a time (shim_solo): the checkpoint thread waits for shim_busy to drop */
      if (shim_solo) {
        __atomic_store_n(&shim_busy, 1, __ATOMIC_RELAXED);
        return;
      }
      if (!__atomic_exchange_n(&shim_lock, 1, __ATOMIC_ACQUIRE)) return;
    }
    pause_briefly(&spins);
  }
}

/* 1 once this rank's MPI_Finalize has begun: every rank has arrived there, no checkpoint
   can be agreed on any more */
static volatile int finishing;

/* The checkpoint thread takes the lower half for itself, gate closed; -1 (gate open again) if
   the application thread entered MPI_Finalize meanwhile (it holds the lower half for good). */
static int take_lower(void) {
  __atomic_store_n(&shim_gate, 1, __ATOMIC_SEQ_CST);
  int spins = 0;
  while (__atomic_exchange_n(&shim_lock, 1, __ATOMIC_ACQUIRE)) {
    if (__atomic_load_n(&finishing, __ATOMIC_ACQUIRE)) {
      __atomic_store_n(&shim_gate, 0, __ATOMIC_RELEASE);
      return -1;
    }
    pause_briefly(&spins);
  }
  if (shim_solo_wait(&finishing) != 0) {
    __atomic_store_n(&shim_lock, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&shim_gate, 0, __ATOMIC_RELEASE);
    return -1;
  }
  shim_depth = 1;
  return 0;
}

static void give_lower(void) {
  shim_depth = 0;
  __atomic_store_n(&shim_lock, 0, __ATOMIC_RELEASE);
  __atomic_store_n(&shim_gate, 0, __ATOMIC_RELEASE);
}

/* ------------------------------------------------------------------ requests and counts */

int64_t shim_req_new(uint64_t real, int kind) {
  /* a blocking receive (MPI_Mrecv) that completed inside the lower half comes back with no
     request to carry its count: count it here, or the sum of sent minus received never
     reaches zero and no checkpoint can drain */
  if (kind == SHIM_REQ_RECV && real == vh_null(VK_REQUEST)) shim_nrecvd++;
  int64_t v = vh_make(VK_REQUEST, real);
  struct shim_req *m = vh_req_meta(v);
  if (m) m->kind = (uint8_t)kind;
  return v;
}

int64_t shim_req_send(uint64_t real, int dest) {
  shim_count_send(dest);
  return shim_req_new(real, SHIM_REQ_SEND);
}

int64_t shim_req_recv(uint64_t real, void *buf, int count, MPI_Datatype dt, int source, int tag, MPI_Comm comm) {
  /* likewise for MPI_Recv completed at once (the usual case for a message already there) */
  if (real == vh_null(VK_REQUEST)) shim_count_recv(source);
  int64_t v = vh_make(VK_REQUEST, real);
  struct shim_req *m = vh_req_meta(v);
  if (m) {
    m->kind = source == MPI_PROC_NULL ? SHIM_REQ_OTHER : SHIM_REQ_RECV;
    m->buf = buf;
    m->count = count;
    m->datatype = dt;
    m->source = source;
    m->tag = tag;
    m->comm = comm;
  }
  return v;
}

/* A request completed (its real handle came back null). */
void shim_req_done(struct shim_req *m) {
  if (m->kind == SHIM_REQ_IDUP) shim_idup_done(m); /* binds the new communicator */
  if (m->kind == SHIM_REQ_RECV && !m->cancelled && !m->counted) shim_nrecvd++;
  m->counted = 1;
}

int shim_wait_v(int64_t vreq, struct lh_status *st) {
  for (unsigned polls = 0;; shim_wait_turn(&polls, SHIM_SPINS)) {
    shim_enter();
    int64_t v = vreq;
    uint64_t r = vh_real(VK_REQUEST, v);
    int flag = 0;
    int rc = LH_CALL(lh_test_spin, &r, &flag, st, SHIM_SPINS);
    if (rc != MPI_SUCCESS || flag) {
      vh_update(VK_REQUEST, &v, r);
      shim_leave();
      return rc;
    }
    shim_leave();
  }
}

/* ------------------------------------------------------------------ communicators */

struct cinfo {
  int64_t comm; /* virtual; 0: free slot */
  uint64_t gid, ncoll, target, ncreated;
};
static struct cinfo *ctab;
static uint32_t ccap, cused;

static struct cinfo *cinfo_get(int64_t comm, int create) {
  if (ccap == 0) {
    ccap = 64;
    ctab = calloc(ccap, sizeof *ctab);
    if (!ctab) shim_die("out of memory");
  }
  uint32_t h = (uint32_t)((uint64_t)comm * 0x9E3779B97F4A7C15ull >> 40) & (ccap - 1);
  for (;; h = (h + 1) & (ccap - 1)) {
    if (ctab[h].comm == comm) return &ctab[h];
    if (ctab[h].comm == 0) break;
  }
  if (!create) return NULL;
  if ((cused + 1) * 2 > ccap) {
    struct cinfo *old = ctab;
    uint32_t oldcap = ccap;
    ccap *= 2;
    ctab = calloc(ccap, sizeof *ctab);
    if (!ctab) shim_die("out of memory");
    cused = 0;
    for (uint32_t i = 0; i < oldcap; i++)
      if (old[i].comm) *cinfo_get(old[i].comm, 1) = old[i];
    free(old);
    return cinfo_get(comm, 1);
  }
  ctab[h].comm = comm;
  cused++;
  if (comm == MPI_COMM_WORLD) ctab[h].gid = 1;
  return &ctab[h];
}

/* Every member makes a communicator from the same parent in the same order, so (parent's
   identity, how many the parent has made) names it the same on all of them. */
static uint64_t gid_mix(uint64_t a, uint64_t b) {
  uint64_t x = a * 0x100000001B3ull ^ b;
  x ^= x >> 29;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 32;
  return x | 4; /* never 1 (WORLD) or 2 (SELF) */
}

/* The ranks in MPI_COMM_WORLD of a group's ranks in[0..n) (-1 where unknown). */
static void in_world(uint64_t group, int n, const int *in, int *w) {
  uint64_t wg = 0;
  for (int i = 0; i < n; i++) w[i] = -1;
  if (LH_CALL(MPI_Comm_group, vh_real(VK_COMM, MPI_COMM_WORLD), &wg) != MPI_SUCCESS) return;
  LH_CALL(MPI_Group_translate_ranks, group, n, in, wg, w);
  LH_CALL(MPI_Group_free, &wg);
  for (int i = 0; i < n; i++)
    if (w[i] == MPI_UNDEFINED) w[i] = -1;
}

/* The rank in MPI_COMM_WORLD of a group's rank 0. */
static int leader_in_world(uint64_t group) {
  int zero = 0, w = -1;
  in_world(group, 1, &zero, &w);
  return w;
}

/* What tells apart the communicators one call made from the same parent (the colours of a
   split, the two halves of an intercommunicator made from one): their members, named by the
   world rank of the first (of each side). */
static uint64_t members_key(uint64_t real) {
  int inter = 0;
  uint64_t g = 0;
  LH_CALL(MPI_Comm_test_inter, real, &inter);
  if (LH_CALL(MPI_Comm_group, real, &g) != MPI_SUCCESS) return 0;
  uint64_t a = (uint64_t)(uint32_t)leader_in_world(g) + 1;
  LH_CALL(MPI_Group_free, &g);
  if (!inter || LH_CALL(MPI_Comm_remote_group, real, &g) != MPI_SUCCESS) return a;
  uint64_t b = (uint64_t)(uint32_t)leader_in_world(g) + 1;
  LH_CALL(MPI_Group_free, &g);
  return a < b ? a << 32 | b : b << 32 | a;
}

void shim_comm_new(MPI_Comm parent, MPI_Comm comm) {
  /* every member counts the call, also one it gave MPI_COMM_NULL (MPI_Comm_create) */
  struct cinfo *p = cinfo_get(parent, 1);
  uint64_t x = gid_mix(p->gid, ++p->ncreated);
  if (comm == MPI_COMM_NULL) return;
  /* (not for a duplicate still in flight: no real one yet, and the parent's members anyway) */
  uint64_t real = vh_real(VK_COMM, comm);
  if (!replay_running && real != 0) x = gid_mix(x, members_key(real));
  struct cinfo *c = cinfo_get(comm, 1);
  c->gid = x;
  c->ncoll = 0;
}

void shim_coll_begin(MPI_Comm comm) {
  if (comm == MPI_COMM_SELF || replay_running) return;
  struct cinfo *c = cinfo_get(comm, 1);
  int spins = 0;
  /* a rank still behind on some communicator goes on through collectives elsewhere: it may
     have to, to get there (a communicator only some ranks are in, MPI_Comm_create_group's;
     collectives of two communicators interleaved), and stops once it has caught up */
  /* (never from inside the lower half: a collective a callback makes, such as MPI_File_close
     in an attribute's delete function, would let go of the lower half mid-call) */
  while (__atomic_load_n(&limited, __ATOMIC_ACQUIRE) && c->ncoll >= c->target && nbehind == 0 && !pass_mine &&
         shim_depth == 1) {
    /* this rank is as far as any on this communicator: wait for the checkpoint, outside */
    int depth = shim_depth;
    shim_depth = 1;
    shim_leave();
    pause_briefly(&spins);
    shim_enter();
    shim_depth = depth;
    c = cinfo_get(comm, 1);
  }
  if (++c->ncoll == c->target && nbehind > 0) nbehind--;
}

/* MPI_Intercomm_create is collective over two local communicators that count apart: a side
   held at its start (as far as any member of its own communicator) would never come for the
   other side, already in it. So it is counted without waiting; it ends with a communicator
   both sides count alike (shim_intercomm_new), where the next collective waits as usual. */
void shim_coll_count(MPI_Comm comm) {
  if (comm == MPI_COMM_SELF || replay_running) return;
  struct cinfo *c = cinfo_get(comm, 1);
  if (++c->ncoll == c->target && nbehind > 0) nbehind--;
}

/* ------------------------------------------------------------------ calls that block until all arrive */

/* MPI_Comm_split, MPI_Cart_create, ... block inside the lower half until every member has
   entered them. A rank inside one holds the lower half, so its checkpoint thread could not
   join the agreement, while a member the checkpoint stopped before the call never comes: so a
   rank first waits in the upper half, with nonblocking barriers, until every member has
   started the call, and only then goes in. While a checkpoint holds the lower half, the
   members still waiting are let in by the pass, so those inside get out. */

static int64_t fin_v; /* MPI_Finalize's barrier while it is in flight (a virtual request) */

static int64_t post_barrier(MPI_Comm comm) {
  uint64_t r = 0;
  if (LH_CALL(MPI_Ibarrier, vh_real(VK_COMM, comm), &r) != MPI_SUCCESS) return MPI_REQUEST_NULL;
  return shim_req_new(r, SHIM_REQ_COLL);
}

/* One poll of a virtual request, holding the lower half: 1 once it completed (or failed: the
   real call that follows reports the error) and is gone. */
static int polled_done(int64_t *v) {
  if (*v == MPI_REQUEST_NULL) return 1;
  uint64_t r = vh_real(VK_REQUEST, *v);
  int flag = 0;
  if (LH_CALL(lh_test_spin, &r, &flag, NULL, SHIM_SPINS) != MPI_SUCCESS) return 1;
  if (flag) vh_update(VK_REQUEST, v, r);
  return flag;
}

/* Between polls the lower half is let go: a turn granted by the checkpoint thread ends here. */
static void sync_turn(unsigned *polls) {
  if (pass_mine && __atomic_load_n(&pass_state, __ATOMIC_ACQUIRE) == PASS_GRANTED)
    __atomic_store_n(&pass_state, PASS_YIELDED, __ATOMIC_RELEASE);
  shim_leave();
  shim_wait_turn(polls, SHIM_SPINS);
  shim_enter();
}

static void wait_polled(int64_t v, unsigned *polls) {
  while (!polled_done(&v)) sync_turn(polls);
}

/* Whether this call should wait for the others first: only with checkpoints armed, outside
   the replay, and from the application (not from a callback inside the lower half). The
   thread takes the pass for itself (one at a time: MPI calls are serialized anyway). */
static int sync_begin(void) {
  if (!ck_ready || replay_running || shim_depth != 1) return 0;
  int none = PASS_NONE;
  if (__atomic_compare_exchange_n(&pass_state, &none, PASS_WAITING, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) pass_mine = 1;
  return 1;
}

void shim_sync(MPI_Comm comm) {
  /* (a communicator already freed: the call reports it) */
  if (comm == MPI_COMM_SELF || comm == MPI_COMM_NULL || vh_real(VK_COMM, comm) == vh_null(VK_COMM) || !sync_begin()) return;
  /* on an intercommunicator a barrier's completion says only that the other side has
     arrived; after two, this side has too */
  int inter = 0;
  LH_CALL(MPI_Comm_test_inter, vh_real(VK_COMM, comm), &inter);
  unsigned polls = 0;
  for (int k = 0; k < (inter ? 2 : 1); k++) wait_polled(post_barrier(comm), &polls);
}

/* Messages of the meetings below travel on ck_comm, the shim's own duplicate of
   MPI_COMM_WORLD, between world ranks: never seen by the application (whose wildcard receive
   could take one on its own communicator), not counted, not drained. A meeting is never cut
   by a checkpoint (a rank waiting for the pass is not quiet), so none is in flight at one.
   Between two ranks, messages of one tag arrive in the order they were sent, which keeps
   meetings one after the other apart. */
enum { TAG_LEADERS = 31001, TAG_GROUP = 31002 };

/* An empty message to and from world ranks `to` and `from`, waited for with turns. */
static void exchange(int to, int from, int tag, unsigned *polls) {
  uint64_t r[2] = {0, 0};
  char in = 0, out = 0;
  uint64_t byte = vh_real(VK_DATATYPE, MPI_BYTE);
  if (LH_CALL(MPI_Irecv, &in, 0, byte, from, tag, ck_comm, &r[0]) != MPI_SUCCESS) return;
  if (LH_CALL(MPI_Isend, &out, 0, byte, to, tag, ck_comm, &r[1]) != MPI_SUCCESS) {
    /* (a receive left posted would take the next meeting's message) */
    LH_CALL(MPI_Cancel, &r[0]);
    LH_CALL(MPI_Request_free, &r[0]);
    return;
  }
  for (int i = 0; i < 2; i++)
    for (int flag = 0; !flag;) {
      if (LH_CALL(lh_test_spin, &r[i], &flag, NULL, SHIM_SPINS) != MPI_SUCCESS) break;
      if (!flag) sync_turn(polls);
    }
}

/* The two groups meet through their leaders: each leader, once its own group has arrived,
   exchanges an empty message with the other, and a second barrier tells its group. */
void shim_sync_intercomm(MPI_Comm local_comm, int local_leader, MPI_Comm peer_comm, int remote_leader, int tag) {
  (void)tag;
  if (!sync_begin()) return;
  unsigned polls = 0;
  wait_polled(post_barrier(local_comm), &polls);
  int me = -1;
  LH_CALL(MPI_Comm_rank, vh_real(VK_COMM, local_comm), &me);
  if (me == local_leader) {
    uint64_t pg = 0;
    int them = -1, pinter = 0;
    /* (remote_leader is a rank of the remote group if peer_comm is an intercommunicator) */
    LH_CALL(MPI_Comm_test_inter, vh_real(VK_COMM, peer_comm), &pinter);
    if ((pinter ? LH_CALL(MPI_Comm_remote_group, vh_real(VK_COMM, peer_comm), &pg)
                : LH_CALL(MPI_Comm_group, vh_real(VK_COMM, peer_comm), &pg)) == MPI_SUCCESS) {
      in_world(pg, 1, &remote_leader, &them);
      LH_CALL(MPI_Group_free, &pg);
    }
    /* (an unknown leader: the call itself reports the bad argument) */
    if (them >= 0) exchange(them, them, TAG_LEADERS, &polls);
  }
  wait_polled(post_barrier(local_comm), &polls);
}

/* MPI_Comm_create_group involves only the group's members: the parent's count of creations
   stays as the others see it; the members and the tag name the new one. */
void shim_comm_new_group(MPI_Comm parent, MPI_Comm comm, int tag) {
  if (comm == MPI_COMM_NULL) return;
  uint64_t x = gid_mix(cinfo_get(parent, 1)->gid ^ 0x9E3779B97F4A7C15ull, (uint64_t)(uint32_t)tag);
  uint64_t real = vh_real(VK_COMM, comm);
  if (!replay_running && real != 0) x = gid_mix(x, members_key(real));
  /* how many such a rank has made: the same on the members, so two made alike one after the
     other are told apart */
  x = gid_mix(x, shim_count_next(x ^ 0xC0117ull));
  struct cinfo *c = cinfo_get(comm, 1);
  c->gid = x;
  c->ncoll = 0;
}

/* An intercommunicator's two groups made it from different local communicators: each names
   it from its own, then the two names are exchanged over it and combined alike on both sides
   (so a checkpoint counts its collectives as one communicator's). Called inside
   MPI_Intercomm_create, every member still there. */
void shim_intercomm_new(MPI_Comm local_comm, MPI_Comm inter) {
  if (inter == MPI_COMM_NULL) return;
  shim_comm_new(local_comm, inter);
  if (!ck_ready || replay_running || shim_depth != 1) return;
  struct cinfo *c = cinfo_get(inter, 1);
  int64_t mine = (int64_t)c->gid, theirs = 0;
  uint64_t r = 0;
  if (LH_CALL(MPI_Iallreduce, &mine, &theirs, 1, vh_real(VK_DATATYPE, MPI_LONG), vh_real(VK_OP, MPI_MAX),
              vh_real(VK_COMM, inter), &r) != MPI_SUCCESS)
    return;
  unsigned polls = 0;
  for (int flag = 0;;) {
    if (LH_CALL(lh_test_spin, &r, &flag, NULL, SHIM_SPINS) != MPI_SUCCESS) return;
    if (flag) break;
    sync_turn(&polls);
  }
  uint64_t a = (uint64_t)mine, b = (uint64_t)theirs;
  c = cinfo_get(inter, 1);
  c->gid = gid_mix(a < b ? a : b, a < b ? b : a);
}

/* MPI_Comm_create_group: only the group's members take part, so they meet among themselves:
   a dissemination barrier of empty messages (after round k a member has heard, through
   others, from the 2^k members before it). Not counted as a collective of the parent (the
   others never call it): a member the checkpoint holds elsewhere delays the checkpoint, it
   does not hang it. */
void shim_sync_group(MPI_Comm comm, MPI_Group group, int tag) {
  (void)tag;
  uint64_t g = vh_real(VK_GROUP, group);
  int n = 0, me = MPI_UNDEFINED;
  if (g == vh_null(VK_GROUP) || vh_real(VK_COMM, comm) == vh_null(VK_COMM)) return;
  LH_CALL(MPI_Group_size, g, &n);
  LH_CALL(MPI_Group_rank, g, &me);
  if (n < 2 || me < 0 || me >= n || !sync_begin()) return;
  int *in = malloc(sizeof(int) * (size_t)n * 2);
  if (!in) shim_die("out of memory");
  int *w = in + n;
  for (int i = 0; i < n; i++) in[i] = i;
  in_world(g, n, in, w);
  unsigned polls = 0;
  for (int d = 1; d < n; d *= 2) {
    int to = w[(me + d) % n], from = w[(me - d + n) % n];
    if (to >= 0 && from >= 0) exchange(to, from, TAG_GROUP, &polls);
  }
  free(in);
}

void shim_sync_end(void) {
  if (!pass_mine) return;
  pass_mine = 0;
  int granted = __atomic_load_n(&pass_state, __ATOMIC_ACQUIRE) == PASS_GRANTED;
  __atomic_store_n(&pass_state, granted ? PASS_FINISHED : PASS_NONE, __ATOMIC_RELEASE);
}

/* MPI_Finalize blocks in the lower half until every rank is there, for good: a barrier first
   (an ordinary collective, so a checkpoint can land while it is in flight), then `finishing`,
   after which this rank refuses checkpoints and any checkpoint thread still agreeing gives up
   (every rank has arrived, none will agree again). */
int shim_finalize_sync(void) {
  if (!ck_ready) return 0;
  shim_enter();
  shim_coll_begin(MPI_COMM_WORLD);
  /* (no pass: a rank waiting here is at a point to be saved at) */
  fin_v = post_barrier(MPI_COMM_WORLD);
  unsigned polls = 0;
  wait_polled(fin_v, &polls);
  fin_v = 0;
  __atomic_store_n(&finishing, 1, __ATOMIC_RELEASE);
  shim_leave();
  return 1;
}

/* ------------------------------------------------------------------ the drain */

/* Calls the lower half directly: the checkpoint thread holds it already. */
#define CK(fn, ...)                                   \
  ({                                                  \
    uint64_t up_ = fs_get();                          \
    shim_upper_fs = up_;                              \
    fs_set(shim_lower_fs);                            \
    int r_ = shim_lh->fn(__VA_ARGS__);                \
    fs_set(up_);                                      \
    r_;                                               \
  })



/* Lets the application thread waiting in shim_sync take one turn in the lower half (it stops
   at its next poll, or once through its call). */
static void serve_pass(void) {
  if (__atomic_load_n(&pass_state, __ATOMIC_ACQUIRE) != PASS_WAITING) return;
  __atomic_store_n(&pass_state, PASS_GRANTED, __ATOMIC_RELEASE);
  shim_depth = 0;
  /* (with shim_solo the application thread never takes shim_lock: it marks shim_busy) */
  if (!shim_solo) __atomic_store_n(&shim_lock, 0, __ATOMIC_RELEASE);
  int spins = 0, st;
  while ((st = __atomic_load_n(&pass_state, __ATOMIC_ACQUIRE)) == PASS_GRANTED) pause_briefly(&spins);
  if (shim_solo)
    while (__atomic_load_n(&shim_busy, __ATOMIC_ACQUIRE)) pause_briefly(&spins);
  else
    while (__atomic_exchange_n(&shim_lock, 1, __ATOMIC_ACQUIRE)) pause_briefly(&spins);
  shim_depth = 1;
  __atomic_store_n(&pass_state, st == PASS_YIELDED ? PASS_WAITING : PASS_NONE, __ATOMIC_RELEASE);
}

/* MPI_Finalize's barrier has completed here: every rank is in MPI_Finalize or on its way. */
static int finalize_seen(void) {
  if (__atomic_load_n(&finishing, __ATOMIC_ACQUIRE)) return 1;
  if (!fin_v) return 0;
  int flag = 0;
  struct lh_status st;
  return CK(MPI_Request_get_status, vh_real(VK_REQUEST, fin_v), &flag, &st) == MPI_SUCCESS && flag;
}

#define CK_FINISHING (-1)
/* The checkpoint thread's wait on its own request (it holds the lower half): members waiting
   to enter a call that blocks until all arrive get their turns meanwhile. CK_FINISHING when
   the job has reached MPI_Finalize (the agreement will never complete). */
static int ck_wait(uint64_t *r) {
  for (unsigned polls = 0;; shim_wait_turn(&polls, SHIM_SPINS)) {
    int flag = 0;
    int rc = CK(lh_test_spin, r, &flag, NULL, SHIM_SPINS);
    if (rc != MPI_SUCCESS || flag) return rc;
    serve_pass();
    if (finalize_seen()) return CK_FINISHING;
  }
}

struct scan {
  int64_t pending;     /* send, collective and other requests not complete yet */
  int64_t oldest;      /* the collective request started first among those not complete */
  uint64_t oldest_seq;
  int64_t pcoll;       /* persistent collective requests (not supported by checkpoints yet) */
};

static void dbg_req(int64_t v, uint64_t *real, struct shim_req *m, void *arg) {
  (void)arg;
  fprintf(stderr, "  [%d] req %lx real %lx kind %d done %d cancelled %d comm %lx\n", getpid(), (long)v, (long)*real, m->kind, m->done, m->cancelled, (long)m->comm);
}
static void scan_req(int64_t v, uint64_t *real, struct shim_req *m, void *arg) {
  struct scan *s = arg;
  /* an inactive persistent request has nothing in the lower half (an active one is a send or
     a receive like any other: persist.c) */
  if (m->kind == SHIM_REQ_PERSISTENT) return;
  if (m->kind == SHIM_REQ_PCOLL) {
    s->pcoll++;
    return;
  }
  if (m->done || m->cancelled) return;
  int flag = 0;
  struct lh_status st;
  if (v == fin_v) {
    /* MPI_Finalize's barrier: never consumed here (every rank must see it complete the same
       way, and then give up: finalize_seen), and never quiet while it is in flight */
    s->pending++;
    return;
  }
  if (m->kind == SHIM_REQ_COLL) {
    /* the oldest is tested after the walk (test_oldest_coll) */
    s->pending++;
    if (!s->oldest || m->seq < s->oldest_seq) s->oldest = v, s->oldest_seq = m->seq;
    return;
  }
  /* drives progress without consuming the application's request (a receive may be cancelled
     yet; a duplication's completion binds its communicator) */
  if (CK(MPI_Request_get_status, *real, &flag, &st) != MPI_SUCCESS) return;
  if (flag) {
    m->done = 1;
    m->st = st;
    if (m->kind == SHIM_REQ_RECV && !m->counted) {
      shim_nrecvd++;
      m->counted = 1;
    }
  } else if (m->kind != SHIM_REQ_RECV) {
    s->pending++;
  }
}

/* A collective request is tested, not only looked at: MPICH's MPI_Request_get_status never
   advances ROMIO's nonblocking collective I/O, which moves on only when its request is tested,
   starting collectives of its own as it goes. So only the oldest is tested (the order every
   rank started them in, whatever the order of the handles), and once complete it is consumed
   and a completed stand-in with its status takes its place. */
static void test_oldest_coll(struct scan *s) {
  if (!s->oldest) return;
  struct shim_req *m = vh_req_meta(s->oldest);
  uint64_t r = vh_real(VK_REQUEST, s->oldest);
  int flag = 0;
  struct lh_status st;
  if (!m || CK(MPI_Test, &r, &flag, &st) != MPI_SUCCESS || !flag) return;
  m->done = 1;
  m->st = st;
  /* (no stand-in: the null request, which the application's wait takes as complete) */
  vh_set_real(VK_REQUEST, s->oldest, CK(lh_completed, &st, &r) == MPI_SUCCESS ? r : vh_null(VK_REQUEST));
  s->pending--;
}

/* One round of agreement: targets for every communicator, and whether the job is quiet.
   drained: messages this rank drained since the last round; *calm: no rank is behind on a
   collective; *drained_all: the sum of drained over the ranks. */
static int agree(int *quiet, int *calm, int64_t drained, int64_t *drained_all, int over, int *over_all, char *err, size_t errlen) {
  uint64_t dt_long = vh_real(VK_DATATYPE, MPI_LONG), op_max = vh_real(VK_OP, MPI_MAX),
           op_sum = vh_real(VK_OP, MPI_SUM), dt_byte = vh_real(VK_DATATYPE, MPI_BYTE);
  int64_t k = 0;
  for (uint32_t i = 0; i < ccap; i++)
    if (ctab[i].comm && ctab[i].comm != MPI_COMM_SELF && ctab[i].gid) k++;
  int64_t kmax = 0;
  uint64_t r;
  int rc = CK(MPI_Iallreduce, &k, &kmax, 1, dt_long, op_max, ck_comm, &r);
  if (rc == MPI_SUCCESS) rc = ck_wait(&r);
  if (rc != MPI_SUCCESS) goto fail;
  int size = 0;
  CK(MPI_Comm_size, ck_comm, &size);
  int64_t *mine = calloc((size_t)(2 * kmax + 1), sizeof *mine);
  int64_t *all = calloc((size_t)(2 * kmax + 1) * (size_t)size, sizeof *all);
  if (!mine || !all) shim_die("out of memory");
  /* (a pass granted meanwhile may have made communicators: they wait for the next round) */
  int n = 0;
  for (uint32_t i = 0; i < ccap && n < kmax; i++)
    if (ctab[i].comm && ctab[i].comm != MPI_COMM_SELF && ctab[i].gid) {
      mine[2 * n] = (int64_t)ctab[i].gid;
      mine[2 * n + 1] = (int64_t)ctab[i].ncoll;
      n++;
    }
  rc = CK(MPI_Iallgather, mine, (int)(2 * kmax * 8), dt_byte, all, (int)(2 * kmax * 8), dt_byte, ck_comm, &r);
  if (rc == MPI_SUCCESS) rc = ck_wait(&r);
  if (rc != MPI_SUCCESS) { free(mine); free(all); goto fail; }
  int64_t behind = 0;
  for (uint32_t i = 0; i < ccap; i++) {
    struct cinfo *c = &ctab[i];
    if (!c->comm || c->comm == MPI_COMM_SELF || !c->gid) continue;
    uint64_t t = c->ncoll;
    for (int64_t j = 0; j < (int64_t)size * kmax; j++)
      if ((uint64_t)all[2 * j] == c->gid && (uint64_t)all[2 * j + 1] > t) t = (uint64_t)all[2 * j + 1];
    c->target = t;
    if (c->ncoll < t) behind++;
  }
  nbehind = (int)behind;
  free(mine);
  free(all);
  struct scan s = {0};
  vh_req_foreach(scan_req, &s);
  test_oldest_coll(&s);
  /* a member waiting for the pass is not at a point to be saved at */
  if (__atomic_load_n(&pass_state, __ATOMIC_ACQUIRE) == PASS_WAITING) s.pending++;
  if (__atomic_load_n(&finishing, __ATOMIC_ACQUIRE)) s.pending++;
  int64_t local[6] = {behind, s.pending, (int64_t)(shim_nsent - shim_nrecvd), drained, s.pcoll, over}, global[6];
  rc = CK(MPI_Iallreduce, local, global, 6, dt_long, op_sum, ck_comm, &r);
  if (rc == MPI_SUCCESS) rc = ck_wait(&r);
  if (rc != MPI_SUCCESS) goto fail;
  if (global[4] > 0) {
    snprintf(err, errlen, "the job has %ld persistent collective requests (MPI_Allreduce_init, ...); checkpoints of jobs using MPI-4 persistent collectives are not supported yet", (long)global[4]);
    return -1;
  }
  /* MANA_DEBUG_AGREE=1: once a second, what this rank brings to the agreement (a checkpoint
     that does not converge: docs/mpi-checkpoint.md) */
  if (getenv("MANA_DEBUG_AGREE")) {
    static double last;
    double now = MPI_Wtime();
    if (now - last > 1.0) {
      last = now;
      fprintf(stderr, "agree[%d]: behind=%ld pending=%ld inflight=%ld pass=%d | global %ld %ld %ld\n", getpid(), (long)local[0], (long)local[1], (long)local[2], pass_state, (long)global[0], (long)global[1], (long)global[2]);
      vh_req_foreach(dbg_req, NULL);
      for (uint32_t i = 0; i < ccap; i++)
        if (ctab[i].comm && ctab[i].gid && ctab[i].ncoll != ctab[i].target) fprintf(stderr, "  [%d] comm %lx gid %lx ncoll %lu target %lu\n", getpid(), (long)ctab[i].comm, (long)ctab[i].gid, (unsigned long)ctab[i].ncoll, (unsigned long)ctab[i].target);
    }
  }
  *quiet = global[0] == 0 && global[1] == 0 && global[2] == 0;
  *over_all = global[5] > 0;
  *calm = global[0] == 0;
  *drained_all = global[3];
  return 0;
fail:
  if (rc == CK_FINISHING)
    snprintf(err, errlen, "the job has reached MPI_Finalize (it is finishing); no checkpoint taken");
  else
    snprintf(err, errlen, "the MPI library failed during the checkpoint's agreement (error class %d)", rc);
  return -1;
}

#define DRAIN_IDLE 20
/* every communicator of the application (not ck_comm): those the shim has seen made, and
   MPI_COMM_SELF, which is not always among them */
static int64_t drain_all(void) {
  int64_t n = mb_drain(MPI_COMM_SELF);
  for (uint32_t i = 0; i < ccap; i++)
    if (ctab[i].comm && ctab[i].comm != MPI_COMM_SELF) n += mb_drain((MPI_Comm)ctab[i].comm);
  return n;
}

static void cancel_recv(int64_t v, uint64_t *real, struct shim_req *m, void *arg) {
  (void)v, (void)arg;
  if (m->kind != SHIM_REQ_RECV || m->done || m->cancelled) return;
  struct lh_status st;
  uint64_t r = *real;
  CK(MPI_Cancel, &r);
  CK(MPI_Wait, &r, &st);
  if (st.cancelled) {
    m->cancelled = 1;
  } else {
    m->done = 1;
    m->st = st;
    if (!m->counted) shim_nrecvd++;
    m->counted = 1;
    /* its real request is consumed: stand in a completed one */
    CK(lh_completed, &st, &r);
  }
  *real = r;
}

/* Once the job is quiet, no member is behind on any communicator and nothing is in flight: a
   communicator this rank has freed has seen its last collective and message here, so its
   entry goes (the agreement sends every entry to every rank: a program that makes and frees
   communicators all the time would otherwise make each checkpoint slower than the last).
   Not earlier: a member still behind needs this rank's count to know how far to go. */
static void forget_freed_comms(void) {
  uint32_t dead = 0;
  for (uint32_t i = 0; i < ccap; i++)
    if (ctab[i].comm && vh_state(VK_COMM, ctab[i].comm) == VH_DEAD) dead++;
  /* (with the replay log's figures: test/mpi-replay-prune.test.ts) */
  const char *st = getenv("MANA_MPI_REPLAY_STATS");
  if (st && *st && strcmp(st, "0") != 0) {
    int me = -1;
    CK(MPI_Comm_rank, ck_comm, &me);
    fprintf(stderr, "mana: MPI checkpoint of rank %d: collectives counted on %u communicators (%u freed ones forgotten)\n", me,
            cused - dead, dead);
  }
  if (!dead) return;
  struct cinfo *old = ctab;
  uint32_t oldcap = ccap;
  ccap = 64;
  while ((cused - dead + 1) * 2 > ccap) ccap *= 2;
  ctab = calloc(ccap, sizeof *ctab);
  if (!ctab) shim_die("out of memory");
  cused = 0;
  for (uint32_t i = 0; i < oldcap; i++)
    if (old[i].comm && vh_state(VK_COMM, old[i].comm) != VH_DEAD) *cinfo_get(old[i].comm, 1) = old[i];
  free(old);
}

static int finishing_error(char *err, size_t errlen) {
  snprintf(err, errlen, "the job has reached MPI_Finalize (it is finishing); no checkpoint taken");
  return -1;
}

static int presuspend(char *err, size_t errlen) {
  if (__atomic_load_n(&finishing, __ATOMIC_ACQUIRE)) return finishing_error(err, errlen);
  if (!ck_ready) return 0;
  const char *t = getenv("MANA_MPI_DRAIN_TIMEOUT");
  double limit = t && *t ? atof(t) : 60.0;
  double start = MPI_Wtime();
  __atomic_store_n(&limited, 1, __ATOMIC_RELEASE);
  int held = 0, idle = 0;
  int64_t drained = 0, drained_all = 0;
  for (int round = 0;; round++) {
    if (!held && take_lower() != 0) {
      __atomic_store_n(&limited, 0, __ATOMIC_RELEASE);
      return finishing_error(err, errlen);
    }
    int quiet = 0, calm = 0, over_all = 0;
    /* (one rank past the limit: all give up in this round, or the others would wait for it
       in their next agreement for ever) */
    int over = MPI_Wtime() - start > limit && round > 0;
    if (agree(&quiet, &calm, drained, &drained_all, over, &over_all, err, errlen) != 0) {
      give_lower();
      __atomic_store_n(&limited, 0, __ATOMIC_RELEASE);
      return -1;
    }
    if (quiet) break;
    if (over_all) {
      give_lower();
      snprintf(err, errlen, "MPI messages or collectives stayed in flight for %.0f s (MANA_MPI_DRAIN_TIMEOUT); the job goes on", limit);
      __atomic_store_n(&limited, 0, __ATOMIC_RELEASE);
      return -1;
    }
    /* ---- drain (msgbuf.c): no rank is behind, yet messages are in flight; take the ones no
       receive is posted for into the upper half, keeping the lower half (no new sends), until
       the sum is zero. A round that finds nothing anywhere may just be early (a message on its
       way); after DRAIN_IDLE such rounds in a row the application runs a little (it may hold
       a message it matched with MPI_Mprobe and not received yet). Every rank sees the same
       sums, so every rank decides alike. */
    idle = held && drained_all == 0 ? idle + 1 : 0;
    if (calm && idle < DRAIN_IDLE) {
      held = 1;
      drained = drain_all();
      continue;
    }
    held = 0, idle = 0, drained = 0;
    /* ---- end drain */
    give_lower();
    struct timespec ts = {0, 500000};
    nanosleep(&ts, NULL);
  }
  /* quiet: the receives still posted cannot match anything now */
  vh_req_foreach(cancel_recv, NULL);
  forget_freed_comms();
  shim_state_save();
  /* test-only (test/mpi-failpaths.test.ts): MANA_TEST_PRESUSPEND_HOLD_MS=MS[:RANK] keeps every
     rank (or only RANK) drained but not yet suspended for MS ms; one line says so */
  const char *hold = getenv("MANA_TEST_PRESUSPEND_HOLD_MS");
  int me = -1;
  if (hold && *hold && CK(MPI_Comm_rank, ck_comm, &me) == MPI_SUCCESS && (!strchr(hold, ':') || atoi(strchr(hold, ':') + 1) == me)) {
    fprintf(stderr, "mana: test hook MANA_TEST_PRESUSPEND_HOLD_MS=%s: rank %d holds presuspend\n", hold, me);
    long ms = atol(hold);
    struct timespec ts = {ms / 1000, ms % 1000 * 1000000L};
    nanosleep(&ts, NULL);
  }
  return 0; /* the lower half stays held until resume */
}

/* Requests that completed before the checkpoint are made anew in a new lower half (a restart
   dropped their real handles); any other request not to be posted again is gone. */
static void renew(int64_t v, uint64_t *real, struct shim_req *m, void *arg) {
  (void)v, (void)arg;
  if (*real != 0 || m->cancelled) return;
  if (m->done) CK(lh_completed, &m->st, real);
  else *real = vh_null(VK_REQUEST);
}

/* Receives are posted again in their original order (MPI matches in posting order). */
struct order { int64_t v; uint64_t seq; };
static struct order *ord;
static int nord;
static void collect(int64_t v, uint64_t *real, struct shim_req *m, void *arg) {
  (void)real, (void)arg;
  if (m->cancelled) { ord[nord].v = v; ord[nord].seq = m->seq; nord++; }
}
static void count_req(int64_t v, uint64_t *real, struct shim_req *m, void *arg) {
  (void)v, (void)real, (void)m;
  (*(int *)arg)++;
}
static int cmp_order(const void *a, const void *b) {
  const struct order *x = a, *y = b;
  return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void repost_all(void) {
  int n = 0;
  vh_req_foreach(renew, NULL);
  vh_req_foreach(count_req, &n);
  ord = calloc((size_t)n + 1, sizeof *ord);
  if (!ord) shim_die("out of memory");
  nord = 0;
  vh_req_foreach(collect, NULL);
  qsort(ord, (size_t)nord, sizeof *ord, cmp_order);
  for (int i = 0; i < nord; i++) {
    struct shim_req *m = vh_req_meta(ord[i].v);
    if (!m) continue;
    uint64_t r = 0;
    int rc = CK(MPI_Irecv, m->buf, m->count, vh_real(VK_DATATYPE, m->datatype), m->source, m->tag,
                vh_real(VK_COMM, m->comm), &r);
    if (rc != MPI_SUCCESS) shim_die("cannot post a receive again after a checkpoint (error class %d)", rc);
    int64_t v = ord[i].v;
    vh_set_real(VK_REQUEST, v, r);
    m->cancelled = 0;
  }
  free(ord);
  ord = NULL;
}

static void resume(int restarted) {
  (void)restarted;
  if (!ck_ready) return;
  if (shim_depth > 0) {
    repost_all();
    give_lower();
  }
  __atomic_store_n(&limited, 0, __ATOMIC_RELEASE);
}

static int exclude_ranges(uint64_t (*out)[2], int max) {
  if (!shim_lh) return 0;
  int n = mana_mpi_lower_ranges(out, max);
  return n < 0 ? 0 : n;
}

static int exclude_tids(int32_t *out, int max) {
  if (!shim_lh) return 0;
  int n = CK(lh_tids, out, max);
  return n < 0 ? 0 : n;
}

static int exclude_fds(int32_t *out, int max) {
  if (!shim_lh) return 0;
  int n = CK(lh_fds, out, max);
  return n < 0 ? 0 : n;
}

/* ------------------------------------------------------------------ restart */

static void drop_real(int64_t v, uint64_t *real, struct shim_req *m, void *arg) {
  (void)v, (void)m, (void)arg;
  *real = 0;
}

static int restart(char *const *env, char *err, size_t errlen) {
  if (!ck_ready) return 0;
  extern char **environ;
  char **saved = environ;
  environ = (char **)env;
  __atomic_store_n(&limited, 0, __ATOMIC_RELEASE);
  shim_lh = NULL;
  shim_ensure_lower();
  int provided = 0;
  int rc = CK(MPI_Init_thread, NULL, NULL, shim_thread_level(), &provided);
  shim_after_init();
  environ = saved;
  if (rc != MPI_SUCCESS) {
    snprintf(err, errlen, "MPI_Init of the new lower half failed (error class %d)", rc);
    return -1;
  }
  vh_req_foreach(drop_real, NULL);
  vh_reset();
  rc = CK(MPI_Comm_dup, vh_real(VK_COMM, MPI_COMM_WORLD), &ck_comm);
  if (rc != MPI_SUCCESS) {
    snprintf(err, errlen, "cannot duplicate MPI_COMM_WORLD in the new lower half (error class %d)", rc);
    return -1;
  }
  return replay_all(err, errlen);
}

static const struct mana_plugin plugin = {
    .version = MANA_PLUGIN_VERSION,
    .name = "mpi",
    .presuspend = presuspend,
    .exclude_ranges = exclude_ranges,
    .exclude_tids = exclude_tids,
    .resume = resume,
    .restart = restart,
    .exclude_fds = exclude_fds,
};

/* After MPI_Init: the private communicator, and the plugin when libmana is loaded. */
void shim_ckpt_stop(void) { ck_ready = 0; }

void shim_ckpt_init(void) {
  cinfo_get(MPI_COMM_WORLD, 1);
  /* MPI_COMM_SELF is every rank's own: its duplicates must not share names across ranks */
  int wr = 0;
  LH_CALL(MPI_Comm_rank, vh_real(VK_COMM, MPI_COMM_WORLD), &wr);
  cinfo_get(MPI_COMM_SELF, 1)->gid = gid_mix(2, (uint64_t)wr + 1);
  int (*reg)(const struct mana_plugin *) = (int (*)(const struct mana_plugin *))dlsym(RTLD_DEFAULT, "mana_plugin_register");
  if (!reg) return;
  if (LH_CALL(MPI_Comm_dup, vh_real(VK_COMM, MPI_COMM_WORLD), &ck_comm) != MPI_SUCCESS) return;
  if (reg(&plugin) == 0) ck_ready = 1;
}

uint64_t shim_ck_comm(void) { return ck_comm; }
