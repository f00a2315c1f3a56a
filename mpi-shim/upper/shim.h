/* The upper half's MPI runtime: what the generated wrappers (out/gen/upper.gen.c) and the
   hand-written ones in upper/ share. */
#ifndef MANA_SHIM_H
#define MANA_SHIM_H

#include <mpi.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>

#include "lh_api.h"
#include "fsbase.h"

/* Kinds of virtual handles. */
enum vh_kind {
  VK_COMM, VK_GROUP, VK_DATATYPE, VK_OP, VK_ERRHANDLER, VK_INFO, VK_REQUEST, VK_MESSAGE,
  VK_FILE, VK_WIN, VK_KEYVAL, VK_COUNT
};
struct vh_predef { int kind; int64_t abi; const char *name; };

/* The lower half's table, its thread pointer, and the upper thread pointer of the thread that
   is currently inside it (MPI calls are serialized: see docs/mpi.md). */
extern const struct lh_api *shim_lh;
extern uint64_t shim_lower_fs;
extern uint64_t shim_upper_fs;
/* The directory this library was loaded from (lh_proxy-*, lh_track.so live beside it). */
extern char shim_self_dir[];

/* Only one thread at a time is inside the lower half (they share its one thread pointer),
   and none while a checkpoint holds the gate (upper/ckpt.c): shim_enter waits, in the upper
   half, until both allow it. A thread already inside (an upcall calling MPI) goes straight in.
   Two ways to keep the application's threads apart (upper/gate.c):
   - shim_lock, an atomic exchange per call, when the application asked for
     MPI_THREAD_MULTIPLE (it may call from several threads at once, although it was told
     SERIALIZED) or the kernel lacks membarrier();
   - otherwise (shim_solo) the application promised one call at a time, and the only other
     thread to keep out is the checkpoint's: the application thread marks itself inside
     (shim_busy) with a plain store, then reads the gate; the checkpoint thread closes the gate,
     makes every thread pass a full barrier (membarrier) and then waits for shim_busy to drop.
     One of the two always sees the other, without a locked instruction on the fast path. */
extern volatile int shim_gate;
extern int shim_lock;
extern int shim_solo, shim_busy;
/* initial-exec: a plain %fs-relative access, where the default model for a shared library
   calls __tls_get_addr twice per MPI call */
extern __thread int shim_depth __attribute__((tls_model("initial-exec")));
void shim_enter_slow(void);
static inline __attribute__((always_inline)) int shim_try_enter(void) {
  if (__builtin_expect(shim_solo, 1)) {
    __atomic_store_n(&shim_busy, 1, __ATOMIC_RELAXED);
    /* no fence: the checkpoint thread's membarrier() orders this store before the load */
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    if (__builtin_expect(!__atomic_load_n(&shim_gate, __ATOMIC_ACQUIRE), 1)) return 1;
    __atomic_store_n(&shim_busy, 0, __ATOMIC_RELEASE);
    return 0;
  }
  if (!__atomic_load_n(&shim_gate, __ATOMIC_ACQUIRE) && !__atomic_exchange_n(&shim_lock, 1, __ATOMIC_ACQUIRE)) {
    if (!__atomic_load_n(&shim_gate, __ATOMIC_ACQUIRE)) return 1;
    __atomic_store_n(&shim_lock, 0, __ATOMIC_RELEASE);
  }
  return 0;
}
static inline __attribute__((always_inline)) void shim_enter(void) {
  if (shim_depth++ > 0) return;
  if (__builtin_expect(shim_try_enter(), 1)) return;
  shim_enter_slow();
}
static inline __attribute__((always_inline)) void shim_leave(void) {
  if (--shim_depth == 0) __atomic_store_n(shim_solo ? &shim_busy : &shim_lock, 0, __ATOMIC_RELEASE);
}
/* gate.c: after MPI_Init (thread level asked for); and for take_lower in ckpt.c, once it holds
   shim_lock: waits until no application thread is inside */
void shim_solo_begin(int required);
int shim_solo_wait(volatile int *giveup); /* -1 once *giveup is set */

/* Calls one entry point of the lower half with the lower half's thread pointer in FS, from a
   thread that holds the lower half already (shim_enter). The two FS writes are most of what a
   call through mana costs (about 90 cycles on the reference machine's AMD EPYC). */
#define LH_CROSS(fn, ...)                                                         \
  ({                                                                              \
    uint64_t up_ = fs_get();                                                      \
    shim_upper_fs = up_;                                                          \
    fs_set(shim_lower_fs);                                                        \
    int r_ = shim_lh->fn(__VA_ARGS__);                                            \
    fs_set(up_);                                                                  \
    r_;                                                                           \
  })
#define LH_CROSS_VOID(fn, ...)                                                    \
  do {                                                                            \
    uint64_t up_ = fs_get();                                                      \
    shim_upper_fs = up_;                                                          \
    fs_set(shim_lower_fs);                                                        \
    shim_lh->fn(__VA_ARGS__);                                                     \
    fs_set(up_);                                                                  \
  } while (0)
/* The same from anywhere: takes and lets go of the lower half around the call. */
#define LH_CALL(fn, ...)                                                          \
  ({                                                                              \
    shim_enter();                                                                 \
    int rc_ = LH_CROSS(fn, __VA_ARGS__);                                          \
    shim_leave();                                                                 \
    rc_;                                                                          \
  })
#define LH_CALL_VOID(fn, ...)                                                     \
  do {                                                                            \
    shim_enter();                                                                 \
    LH_CROSS_VOID(fn, __VA_ARGS__);                                               \
    shim_leave();                                                                 \
  } while (0)

/* PMPI_X is the same function as MPI_X (the profiling interface). */
#define SHIM_PMPI(name) extern __typeof__(name) P##name __attribute__((alias(#name)));

/* Virtual handles (vh.c). */
void vh_init(void);
void vh_free_dead(void); /* after a restart's replay */
/* VH_OTHER: not an object the application made (predefined, null); VH_LIVE; VH_DEAD: freed */
enum { VH_OTHER, VH_LIVE, VH_DEAD };
int vh_state(int kind, int64_t v);
/* the slot of an object the application made, or -1 */
int64_t vh_index(int kind, int64_t v);
uint64_t vh_real_lookup(int kind, int64_t v);
/* The last predefined handle of each kind translated, and its real handle: most programs pass
   the same MPI_COMM_WORLD and MPI_DOUBLE call after call. Only predefined handles go in (their
   real handles change only when vh_init fills the table again), never one the program made. */
struct vh_last { int64_t v; uint64_t real; };
extern struct vh_last vh_last[VK_COUNT];
static inline uint64_t vh_real(int kind, int64_t v) {
  if (__builtin_expect(vh_last[kind].v == v, 1)) return vh_last[kind].real;
  return vh_real_lookup(kind, v);
}
int64_t vh_make(int kind, uint64_t real);
void vh_update(int kind, int64_t *v, uint64_t real);
int64_t vh_from_real(int kind, uint64_t real); /* existing virtual handle, no new one */
uint64_t vh_null(int kind);

/* The runtime (shim.c). */
int shim_ensure_lower(void);
/* how many times a request is tested per crossing into the lower half */
#define SHIM_SPINS 64
int shim_wait(uint64_t *req, struct lh_status *st);
/* Waiting loops give the core away every ~1000 polls of the real library, as MPICH's own
   progress loop does: on an oversubscribed machine the rank waited for may need it. */
static inline void shim_wait_turn(unsigned *polls, unsigned n) {
  if ((*polls += n) >= 1024) {
    *polls = 0;
    sched_yield();
  }
}
/* waits on a virtual request (re-reading its real one each turn: a checkpoint may replace it) */
int shim_wait_v(int64_t vreq, struct lh_status *st);

/* Requests, by what the checkpoint drain must do with them (vh.c, ckpt.c). An inactive
   persistent request (SHIM_REQ_PERSISTENT) has nothing in the lower half: its real handle is
   the null request; an active one is the send or receive its MPI_Start posted (persist.c).
   A persistent collective (SHIM_REQ_PCOLL, MPI_Allreduce_init, ...) is a real lower-half
   request that checkpoints do not support yet. */
enum { SHIM_REQ_OTHER, SHIM_REQ_SEND, SHIM_REQ_RECV, SHIM_REQ_COLL, SHIM_REQ_PERSISTENT, SHIM_REQ_IDUP, SHIM_REQ_PCOLL };
struct shim_req {
  uint8_t kind;
  uint8_t cancelled; /* a receive cancelled for a checkpoint, to be posted again */
  uint8_t done;      /* complete in the lower half before a checkpoint (st holds its status) */
  uint8_t counted;   /* a receive already counted as received */
  uint8_t persist;   /* a persistent request: which call its MPI_Start makes (persist.c) */
  struct lh_status st;
  uint64_t seq;      /* posting order */
  void *buf;
  int count, source, tag; /* source: the destination of a persistent send */
  int64_t datatype, comm;
};
int64_t shim_req_new(uint64_t real, int kind);
int64_t shim_req_send(uint64_t real, int dest);
int64_t shim_req_recv(uint64_t real, void *buf, int count, MPI_Datatype dt, int source, int tag, MPI_Comm comm);
struct shim_req *vh_req_meta(int64_t v);
/* a new virtual handle even for the null real one (an inactive persistent request) */
int64_t vh_new(int kind, uint64_t real);
/* calls fn for every live object the application made of this kind */
void vh_foreach_live(int kind, void (*fn)(int64_t v, void *arg), void *arg);
/* the request is posted now: it goes after every receive posted so far */
void vh_req_reseq(struct shim_req *m);
/* calls fn for every live virtual request */
void vh_req_foreach(void (*fn)(int64_t v, uint64_t *real, struct shim_req *m, void *arg), void *arg);
/* the checkpoint's counters (ckpt.c): messages sent and received; MPI_PROC_NULL moves none */
extern uint64_t shim_nsent, shim_nrecvd;
static inline void shim_count_send(int dest) {
  if (dest != MPI_PROC_NULL) shim_nsent++;
}
static inline void shim_count_recv(int source) {
  if (source != MPI_PROC_NULL) shim_nrecvd++;
}
void shim_coll_begin(MPI_Comm comm);
void shim_coll_count(MPI_Comm comm); /* counts it without waiting (MPI_Intercomm_create) */
void shim_comm_new(MPI_Comm parent, MPI_Comm comm);
/* Calls that block inside the lower half until every member has arrived (MPI_Comm_split,
   MPI_Cart_create, ...): the wrapper, holding the lower half after shim_coll_begin, first waits
   in the upper half until every member has started the call (shim_sync), then makes it, then
   says so (shim_sync_end). See "the pass" in ckpt.c. */
void shim_sync(MPI_Comm comm);
void shim_sync_intercomm(MPI_Comm local_comm, int local_leader, MPI_Comm peer_comm, int remote_leader, int tag);
void shim_sync_group(MPI_Comm comm, MPI_Group group, int tag);
void shim_sync_file(MPI_File fh); /* fileio.c */
void shim_sync_end(void);
void shim_intercomm_new(MPI_Comm local_comm, MPI_Comm inter); /* replaces shim_comm_new there */
void shim_comm_new_group(MPI_Comm parent, MPI_Comm comm, int tag); /* and for MPI_Comm_create_group */
uint64_t shim_count_next(uint64_t key); /* prune.c: 1, 2, ... per key */
/* MPI_Finalize's start: every rank arrives before any enters the lower half's MPI_Finalize */
int shim_finalize_sync(void); /* 1: every rank has reached MPI_Finalize */
/* a request's completion (vh.c calls it when a real request comes back null) */
void shim_req_done(struct shim_req *m);

/* After a restart: bind the virtual handle the application holds to the object just made
   again under the virtual handle `fresh` (which is released). */
void vh_alias(int kind, int64_t held, int64_t fresh);
/* forget every real handle (a new lower half is coming) and refresh the predefined ones */
void vh_reset(void);
void vh_set_real(int kind, int64_t v, uint64_t real);
/* checkpoints (ckpt.c) */
void shim_ckpt_init(void);
void shim_ckpt_stop(void);
int shim_thread_level(void);
void shim_after_init(void); /* what follows the lower MPI_Init: predefined handles, ... */
int mana_mpi_lower_ranges(uint64_t (*out)[2], int max);

/* The replay log (replay.c; records generated in upper.gen.c). A collective record (one that
   all members of a group make together, such as MPI_Comm_split) carries a name its
   participants agree on and their number (nparts > 0); a local one nparts 0; one never to be
   pruned -1. */
struct replay_rec { struct replay_rec *next; int fn; int nparts; uint64_t name; int idx; };
extern int replay_running;
void *replay_new(int fn, size_t size);
void *replay_copy(const void *p, size_t n);
char *replay_strdup(const char *s);
int *replay_weights(const int *w, int n);
int replay_one(struct replay_rec *h);
const char *replay_name(int fn);
int replay_all(char *err, size_t errlen);
/* a hand-written replay step: returns an MPI error class, and may put its own line in err */
typedef int replay_fn(void *arg, char *err, size_t errlen);
/* returns the record (NULL while the replay runs), for the calls below */
void *replay_log_call(replay_fn *run, void *arg, const char *name);
/* What a record makes and uses, so that the log can be pruned (replay.c, docs/mpi-checkpoint.md):
   RD_MAKE an object it makes, RD_USE one it reads, RD_TARGET the object it changes (a record
   with a target is kept exactly when the record that made the target is). */
enum { RD_MAKE, RD_USE, RD_TARGET };
typedef void replay_dep_fn(void *arg, int role, int kind, int64_t v);
void replay_call_dep(void *rec, int role, int kind, int64_t v);
/* called with the step's arg when its record is pruned */
void replay_call_drop(void *rec, void (*drop)(void *arg));
/* a later step of the same function on the same target replaces this one (if nothing read
   the target in between) */
void replay_call_supersedable(void *rec);
/* MPI_Buffer_attach (1) and MPI_Buffer_detach (2): a detach cancels the attach before it */
void replay_call_bsend(void *rec, int which);
/* generated (upper.gen.c): the dependencies of a generated record, its flags, and freeing it */
int replay_gen_deps(struct replay_rec *h, replay_dep_fn *fn, void *arg);
int replay_gen_supersedable(int fn);
void replay_gen_free(struct replay_rec *h);
/* names of collective records (replay.c): made from every member of parent; by the members of
   group within comm (MPI_Comm_create_group); or an intercommunicator made by its two groups */
void replay_coll_parent(struct replay_rec *h, MPI_Comm parent, MPI_Comm made);
void replay_coll_group(struct replay_rec *h, MPI_Comm comm, MPI_Group group, MPI_Comm made);
void replay_coll_pair(struct replay_rec *h, MPI_Comm made, uint64_t tag);
uint64_t replay_hash_str(const char *s);
/* at a checkpoint, every rank at once: drops the records nothing needs any more */
void replay_prune(void);
/* objects the replay must make although no record still in the log needs them (open files'
   views, requests' datatypes) */
void shim_files_pins(replay_dep_fn *fn, void *arg);
void shim_attrs_pins(replay_dep_fn *fn, void *arg);
/* the checkpoint's private duplicate of MPI_COMM_WORLD (real handle; ckpt.c) */
uint64_t shim_ck_comm(void);
/* MPI-IO (fileio.c): at a checkpoint, each open file's pointers; after a restart's replay,
   views, atomicity and pointers set again */
void shim_files_save(void);
int shim_files_restore(char *err, size_t errlen);
/* cached attributes (attr.c): read at a checkpoint, set again after a restart's replay */
void shim_attrs_save(void);
int shim_attrs_restore(char *err, size_t errlen);
/* what the checkpoint keeps of objects whose state only the lower half knows, and the pruning
   of the replay log (replay.c, prune.c): called holding the lower half, the job quiet, by every
   rank at once (the pruning agrees over the checkpoint's communicator) */
void shim_state_save(void);
int shim_sum(const int *a, int n);
int shim_last(const int *a, int n);
void replay_log_op_create(int slot, int commute, MPI_Op op);
/* MPI_Comm_idup (local.c): its start and its completion are both in the log, so a replay
   starts and completes duplications where the run did (ranks may interleave them) */
void *replay_log_idup_start(MPI_Comm parent, MPI_Comm newcomm);
void replay_log_idup_wait(void *start);
void shim_idup_done(struct shim_req *m);
int shim_len_ndims(MPI_Comm comm);
/* what an MPI call returns: errors go through shim_ret_err (one place for error handling) */
int shim_ret_err(int rc, const char *fn);
static inline int shim_ret(int rc, const char *fn) {
  return __builtin_expect(rc == MPI_SUCCESS, 1) ? rc : shim_ret_err(rc, fn);
}
/* the return of an MPI-4 call (spec flag mpi4): says once when the lower half lacks it */
int shim_ret_mpi4(int rc, const char *fn);
void shim_status_out(const struct lh_status *in, MPI_Status *out);
void shim_status_in(const MPI_Status *in, struct lh_status *out);
void *shim_tmp(size_t n);
_Noreturn void shim_die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* /proc/self/maps with each line marked lower/upper (lower_map.c). */
void shim_dump_maps(const char *where);

/* Hand-written parts (attr.c, errh.c, local.c). */
int shim_attr_copy_upcall(int kind, int slot, uint64_t obj, uint64_t keyval, void *in, void *out, int *flag);
int shim_attr_delete_upcall(int kind, int slot, uint64_t obj, uint64_t keyval, void *val);
void shim_errh_upcall(int kind, int slot, uint64_t obj, int code);
int shim_greq_upcall(int what, int slot, struct lh_status *st, int arg); /* greq.c */
/* the length helpers of spec/mpi.api (@size(comm), ...) */
int shim_len_size(MPI_Comm comm);
int shim_len_indegree(MPI_Comm comm);
int shim_len_outdegree(MPI_Comm comm);
/* MPI_UNWEIGHTED / MPI_WEIGHTS_EMPTY cross the halves as 1 / 2 */
int *shim_weights_in(const int *w);
/* loads the lower half for a call made before MPI_Init (spec flag preinit) */
void shim_preinit(void);
_Noreturn void shim_unsupported(const char *name);
/* A function of spec/unsupported.txt: it links, and says at the call that mana lacks it. */
#define SHIM_UNSUPPORTED(n)                                                                        \
  __attribute__((visibility("default"), noreturn)) void mana_stub_##n(void) __asm__(#n);          \
  void mana_stub_##n(void) { shim_unsupported(#n); }                                              \
  __attribute__((visibility("default"), noreturn)) extern void mana_pstub_##n(void) __asm__("P" #n) \
      __attribute__((alias(#n)));

/* The lower-half loader (loader.c): starts proxy_path with LD_PRELOAD=preload ("" for none)
   in the lower world; returns the table or NULL with *why set. */
const struct lh_api *lh_load(const char *proxy_path, const char *preload, const char **why);

#endif
