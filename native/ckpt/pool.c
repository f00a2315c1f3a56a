/* pool.c — helper threads that write image chunks next to the checkpoint thread (issue 3).
 *
 * Hazards and how they are met:
 * - Creating threads (pthread_create, malloc) while application threads are parked can
 *   deadlock on a lock a parked thread holds. The helpers are therefore created once, when the
 *   checkpoint thread starts and nothing is parked, and sleep on a futex when idle.
 * - The park round must not wait for them: they block every signal (inherited from the
 *   checkpoint thread) and park.c skips their tids (mana_pool_is_helper).
 * - They are in the image, like every thread, and must come back in a sane state after a
 *   restart. Each helper saves its context (mana_ctx_save) at the start of every write
 *   session, in helper_session's frame, and then does all its work in deeper frames, so the
 *   frames at and above the saved stack pointer do not change until the session ends, which
 *   is after the image is closed. Their stack regions are handed to the writer as copies
 *   (maps.c), so the image holds one consistent snapshot. A restored helper resumes in
 *   helper_session with mana_ctx_save returning 1: it re-registers its kernel state like a
 *   parked thread, counts itself in mana_restart_info.threads_out (the restored checkpoint
 *   thread waits for that before unmapping the restorer) and goes back to waiting for the
 *   next session. The restored checkpoint thread resets the session state (mana_pool_reset),
 *   which was captured mid-session.
 * The alternative, leaving helpers out of the image and creating new ones after a restart,
 * would leave glibc's thread list naming threads that no longer exist and would need
 * pthread_create while the application is still parked.
 *
 * Everything here uses raw futexes and atomics: no locks, no allocation after creation. */
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "mana_ctx.h"
#include "rawsys.h"

struct park_slot mana_pool_slots[MANA_POOL_MAX];
int mana_pool_n; /* helpers that exist (they never exit) */

static volatile int session;      /* bumped to start a write session (helpers wait on it) */
static volatile int session_open; /* 0 tells helpers in a session to leave it */
static volatile int job_seq;      /* bumped for each job and at the end of a session */
static volatile int ready;        /* helpers that saved their context for this session */
static volatile int done;         /* helpers that finished the current job */
static volatile int left;         /* helpers that left the session */
static void (*job_fn)(void *, int);
static void *job_arg;

static void futex_wait(volatile int *addr, int val) {
  raw_syscall4(SYS_futex, addr, FUTEX_WAIT_PRIVATE, val, 0);
}
static void futex_wake(volatile int *addr) {
  raw_syscall3(SYS_futex, addr, FUTEX_WAKE_PRIVATE, 0x7fffffff);
}
/* The checkpoint thread waits for helpers to count up to n. */
static void wait_count(volatile int *c, int n) {
  int v;
  while ((v = __atomic_load_n(c, __ATOMIC_ACQUIRE)) < n) futex_wait(c, v);
}
static void count_up(volatile int *c) {
  __atomic_fetch_add(c, 1, __ATOMIC_ACQ_REL);
  futex_wake(c);
}

int mana_pool_is_helper(int tid) {
  for (int i = 0; i < mana_pool_n; i++)
    if (__atomic_load_n(&mana_pool_slots[i].tid, __ATOMIC_ACQUIRE) == tid) return 1;
  return 0;
}

/* Serves jobs until the session closes. Runs below helper_session's frame. */
static __attribute__((noinline)) void serve(int k) {
  int seen = __atomic_load_n(&job_seq, __ATOMIC_ACQUIRE);
  count_up(&ready);
  for (;;) {
    int j;
    while ((j = __atomic_load_n(&job_seq, __ATOMIC_ACQUIRE)) == seen) futex_wait(&job_seq, seen);
    seen = j;
    if (!__atomic_load_n(&session_open, __ATOMIC_ACQUIRE)) break;
    job_fn(job_arg, k);
    count_up(&done);
  }
  count_up(&left);
}

static __attribute__((noinline)) void restarted(struct park_slot *s) {
  mana_fix_kernel_state(s);
  __atomic_fetch_add(&mana_restart_info.threads_out, 1, __ATOMIC_ACQ_REL);
}

/* The save point: the frame of this function stays as it is for the whole session. */
static __attribute__((noinline)) void helper_session(struct park_slot *volatile s, int k) {
  mana_fill_self_slot(s);
  if (mana_ctx_save(&s->ctx) == 0) serve(k);
  else restarted(s);
}

static void *helper_main(void *arg) {
  int k = (int)(intptr_t)arg; /* worker number: 1.. (0 is the checkpoint thread) */
  struct park_slot *s = &mana_pool_slots[k - 1];
  int seen = __atomic_load_n(&session, __ATOMIC_ACQUIRE);
  __atomic_store_n(&s->tid, raw_gettid(), __ATOMIC_RELEASE);
  for (;;) {
    while (__atomic_load_n(&session, __ATOMIC_ACQUIRE) == seen) futex_wait(&session, seen);
    seen = __atomic_load_n(&session, __ATOMIC_ACQUIRE);
    /* A restored helper comes back out of this call with seen = the session the image was
     * written in, which is also the restored value of `session`: it waits for the next. */
    helper_session(s, k);
  }
  return NULL;
}

/* Called by the checkpoint thread when it starts, before anything can be parked. Creates up
 * to n - 1 helpers (n counts the checkpoint thread); fewer if creation fails (the checkpoint
 * works with whatever exists). Does not wait for them to run: see mana_pool_started. */
void mana_pool_start(int n) {
  if (n > MANA_POOL_MAX + 1) n = MANA_POOL_MAX + 1;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  /* Small stacks: a helper needs a few KiB (zstd, hashing, one error line) */
  pthread_attr_setstacksize(&attr, 256 * 1024);
  for (int k = 1; k < n; k++) {
    pthread_t th;
    if (pthread_create(&th, &attr, helper_main, (void *)(intptr_t)k) != 0) break;
    mana_pool_n = k;
  }
  pthread_attr_destroy(&attr);
}

/* Before a park round: the round skips helpers by tid, so every helper must have published
 * its tid. Normally long done; waiting here instead of in mana_pool_start keeps a busy
 * machine's scheduling delay out of the process's start (its HELLO to the agent). */
void mana_pool_started(void) {
  for (int i = 0; i < mana_pool_n; i++)
    while (!__atomic_load_n(&mana_pool_slots[i].tid, __ATOMIC_ACQUIRE)) {
      struct timespec ts = {0, 100000};
      raw_syscall2(SYS_nanosleep, &ts, 0);
    }
}

/* Starts a write session: every helper saves its context (into its slot, which write.c puts
 * into the image's thread table) and then waits for jobs. */
void mana_pool_begin(void) {
  if (!mana_pool_n) return;
  __atomic_store_n(&ready, 0, __ATOMIC_RELEASE);
  __atomic_store_n(&left, 0, __ATOMIC_RELEASE);
  __atomic_store_n(&session_open, 1, __ATOMIC_RELEASE);
  __atomic_fetch_add(&session, 1, __ATOMIC_ACQ_REL);
  futex_wake(&session);
  wait_count(&ready, mana_pool_n);
}

/* mana_img_workers.run: fn(arg, 0) here, fn(arg, k) on helper k. */
void mana_pool_run(void *ctx, void (*fn)(void *, int), void *arg) {
  (void)ctx;
  job_fn = fn;
  job_arg = arg;
  __atomic_store_n(&done, 0, __ATOMIC_RELEASE);
  __atomic_fetch_add(&job_seq, 1, __ATOMIC_ACQ_REL);
  futex_wake(&job_seq);
  fn(arg, 0);
  wait_count(&done, mana_pool_n);
}

/* Ends the session once the image is closed; the helpers return to their idle wait. */
void mana_pool_end(void) {
  if (!mana_pool_n) return;
  __atomic_store_n(&session_open, 0, __ATOMIC_RELEASE);
  __atomic_fetch_add(&job_seq, 1, __ATOMIC_ACQ_REL);
  futex_wake(&job_seq);
  wait_count(&left, mana_pool_n);
}

/* In the restored process: the session the image was written in never ends there (the
 * helpers resumed from its start), so its state is reset for the next one. */
void mana_pool_reset(void) {
  __atomic_store_n(&session_open, 0, __ATOMIC_RELEASE);
  __atomic_store_n(&ready, 0, __ATOMIC_RELEASE);
  __atomic_store_n(&done, 0, __ATOMIC_RELEASE);
  __atomic_store_n(&left, 0, __ATOMIC_RELEASE);
}

/* The stack pointer a helper had when it saved its context (maps.c copies that stack). */
int mana_pool_stack_in(uint64_t start, uint64_t end) {
  for (int i = 0; i < mana_pool_n; i++) {
    uint64_t sp = mana_pool_slots[i].ctx.rsp;
    if (sp >= start && sp < end) return 1;
  }
  return 0;
}
