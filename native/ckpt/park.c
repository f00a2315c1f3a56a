/* park.c — parking application threads in the checkpoint signal's handler, and waking them
 * again after a resume or in a restored process. The checkpoint thread runs this while other
 * threads may hold libc locks, so only raw system calls and static memory are used here. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <signal.h>
#include <string.h>
#include <sys/rseq.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "mana_ctx.h"
#include "rawsys.h"

#ifndef RSEQ_SIG
#define RSEQ_SIG 0x53053053
#endif

struct park_slot mana_slots[MANA_MAX_THREADS];
volatile int mana_nslots;
struct park_slot mana_ckpt_slot;
volatile int mana_resume_seq;
volatile int mana_suspending;
volatile int mana_in_handler;
int mana_ckpt_tid;

static void futex_wait(volatile int *addr, int val) {
  raw_syscall4(SYS_futex, addr, FUTEX_WAIT_PRIVATE, val, 0);
}
static void futex_wake_all(volatile int *addr) {
  raw_syscall3(SYS_futex, addr, FUTEX_WAKE_PRIVATE, 0x7fffffff);
}

void mana_fill_self_slot(struct park_slot *s) {
  s->tid = raw_gettid();
  s->fs_base = mana_get_fs_base();
  s->tid_addr = mana_tid_offset >= 0 ? s->fs_base + (uint64_t)mana_tid_offset : 0;
  uint64_t head = 0, len = 0;
  if (raw_syscall3(SYS_get_robust_list, 0, &head, &len) != 0) head = len = 0;
  s->robust_head = head;
  s->robust_len = len;
  uint64_t mask = 0;
  raw_syscall4(SYS_rt_sigprocmask, SIG_BLOCK, 0, &mask, 8);
  s->sigmask = mask;
  s->altstack_ok = raw_syscall2(SYS_sigaltstack, 0, &s->altstack) == 0;
}

/* After a restart the thread runs in a new process: the kernel knows nothing of the
 * robust-futex list, the rseq area or the alternate signal stack glibc had registered, and
 * glibc's cached tid is the old one. */
void mana_fix_kernel_state(struct park_slot *s) {
  int tid = raw_gettid();
  if (s->tid_addr) *(volatile int *)s->tid_addr = tid;
  s->tid = tid;
  if (s->robust_head) raw_syscall2(SYS_set_robust_list, s->robust_head, s->robust_len);
  if (__rseq_size) {
    void *area = (char *)mana_get_fs_base() + __rseq_offset;
    long rc = raw_syscall4(SYS_rseq, area, __rseq_size, 0, RSEQ_SIG);
    /* glibc 2.35/2.36 register the full 32-byte area even when __rseq_size says less */
    if (rc == -EINVAL) raw_syscall4(SYS_rseq, area, 32, 0, RSEQ_SIG);
  }
  if (s->altstack_ok && !(s->altstack.ss_flags & SS_DISABLE)) {
    stack_t ss = s->altstack;
    ss.ss_flags &= ~SS_ONSTACK;
    raw_syscall2(SYS_sigaltstack, &ss, 0);
  }
}

static void wait_for_resume(struct park_slot *s) {
  while (__atomic_load_n(&mana_resume_seq, __ATOMIC_ACQUIRE) == s->seen_seq)
    futex_wait(&mana_resume_seq, s->seen_seq);
}

static __attribute__((noinline)) void park_normal(struct park_slot *s) {
  __atomic_store_n(&s->state, SLOT_PARKED, __ATOMIC_RELEASE);
  wait_for_resume(s);
}

static __attribute__((noinline)) void park_restarted(struct park_slot *s) {
  mana_fix_kernel_state(s);
  mana_sigstate_restore_thread(s);
  __atomic_fetch_add(&mana_restart_info.threads_out, 1, __ATOMIC_ACQ_REL);
  wait_for_resume(s);
}

static __attribute__((noinline)) void park_here(struct park_slot *volatile s) {
  if (mana_ctx_save(&s->ctx) == 0) park_normal(s);
  else park_restarted(s);
}

/* Park signals are sent with rt_tgsigqueueinfo and carry SI_QUEUE, our pid and a tagged
 * value: MANA_SIG_TAG in the high 32 bits, the round (mana_sig_epoch) in the low ones. A
 * signal that says so was sent by a park round of this process; any other signal of that
 * number (kill, raise, sigqueue by the application or someone else) is the application's. */
#define MANA_SIG_TAG 0x4d414e41u /* "MANA" */
static volatile uint32_t mana_sig_epoch; /* rounds started; in the image, so it survives restart */

static int sent_by_a_round(const siginfo_t *si) {
  if (!si || si->si_code != SI_QUEUE || si->si_pid != raw_getpid()) return 0;
  uint64_t v = (uint64_t)(uintptr_t)si->si_value.sival_ptr;
  uint32_t epoch = (uint32_t)v;
  return (uint32_t)(v >> 32) == MANA_SIG_TAG && epoch != 0 &&
         epoch <= __atomic_load_n(&mana_sig_epoch, __ATOMIC_ACQUIRE);
}

void mana_park_handler(int sig, siginfo_t *si, void *uc) {
  int saved_errno = errno;
  int ours = sent_by_a_round(si);
  if (!__atomic_load_n(&mana_suspending, __ATOMIC_ACQUIRE)) {
    /* A park signal outside a round was sent by a round that failed (SUSPEND timed out while
     * this thread blocked the signal) and arrives only now: the application never sent it. */
    if (!ours) mana_sig_forward(sig, si, uc);
    errno = saved_errno;
    return;
  }
  __atomic_fetch_add(&mana_in_handler, 1, __ATOMIC_ACQ_REL);
  int i = __atomic_fetch_add(&mana_nslots, 1, __ATOMIC_ACQ_REL);
  if (i < MANA_MAX_THREADS) {
    struct park_slot *s = &mana_slots[i];
    mana_fill_self_slot(s);
    s->seen_seq = __atomic_load_n(&mana_resume_seq, __ATOMIC_ACQUIRE);
    s->state = SLOT_CLAIMED;
    park_here(s);
  }
  __atomic_fetch_sub(&mana_in_handler, 1, __ATOMIC_ACQ_REL);
  /* The application's own signal arrived during a round (for a standard signal the kernel
   * merged the park signal into it): the thread parked on it, now the application gets it. */
  if (!ours) mana_sig_forward(sig, si, uc);
  errno = saved_errno;
}

/* ---- the checkpoint thread's side ---- */

static char task_buf[32768];
static int signaled[MANA_MAX_THREADS * 2];
static int nsignaled;
static int laggard; /* a thread seen not parked in the last scan, for the timeout message */

static int was_signaled(int tid) {
  for (int i = 0; i < nsignaled; i++)
    if (signaled[i] == tid) return 1;
  return 0;
}

static int is_parked(int tid) {
  int n = mana_nslots < MANA_MAX_THREADS ? mana_nslots : MANA_MAX_THREADS;
  for (int i = 0; i < n; i++)
    if (__atomic_load_n(&mana_slots[i].state, __ATOMIC_ACQUIRE) == SLOT_PARKED &&
        mana_slots[i].tid == tid)
      return 1;
  return 0;
}

/* One pass over /proc/self/task: signal threads not yet signaled. Returns the number of
 * threads (other than us) seen, or -1; *all_parked tells whether each of them is parked. */
static int scan_tasks(int *all_parked, int *new_signals) {
  int fd = (int)raw_syscall3(SYS_open, "/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
  if (fd < 0) return -1;
  int pid = raw_getpid(), seen = 0;
  *all_parked = 1;
  *new_signals = 0;
  for (;;) {
    long n = raw_syscall3(SYS_getdents64, fd, task_buf, sizeof task_buf);
    if (n <= 0) break;
    for (long off = 0; off < n;) {
      struct dirent64 *d = (struct dirent64 *)(task_buf + off);
      off += d->d_reclen;
      uint64_t tid;
      if (mana_parse_u64(d->d_name, NULL, &tid, 10) != 0) continue;
      /* the writer's helpers block every signal and are never parked (pool.c); a plugin's
         threads (the MPI lower half's) are left alone */
      if ((int)tid == mana_ckpt_tid || mana_pool_is_helper((int)tid)) continue;
      if (mana_plugin_tid_excluded((int)tid)) continue;
      seen++;
      if (!was_signaled((int)tid)) {
        if (nsignaled >= (int)(sizeof signaled / sizeof signaled[0])) {
          raw_syscall1(SYS_close, fd);
          return -1;
        }
        siginfo_t si;
        memset(&si, 0, sizeof si);
        si.si_signo = mana_cfg.ckpt_signal;
        si.si_code = SI_QUEUE;
        si.si_pid = pid;
        si.si_uid = (uid_t)raw_syscall0(SYS_getuid);
        si.si_value.sival_ptr = (void *)(uintptr_t)(((uint64_t)MANA_SIG_TAG << 32) |
                                                     __atomic_load_n(&mana_sig_epoch,
                                                                     __ATOMIC_ACQUIRE));
        long rc = raw_syscall4(SYS_rt_tgsigqueueinfo, pid, (int)tid, mana_cfg.ckpt_signal, &si);
        signaled[nsignaled++] = (int)tid;
        (*new_signals)++;
        if (rc == -ESRCH) continue; /* exited meanwhile */
      }
      if (!is_parked((int)tid)) {
        *all_parked = 0;
        laggard = (int)tid;
      }
    }
  }
  raw_syscall1(SYS_close, fd);
  return seen;
}

int mana_park_all(char *err, size_t errlen) {
  struct mana_fmt f;
  mana_fmt_init(&f, err, errlen);
  for (int i = 0; i < MANA_MAX_THREADS; i++) mana_slots[i].state = SLOT_FREE;
  mana_nslots = 0;
  nsignaled = 0;
  uint32_t e = __atomic_load_n(&mana_sig_epoch, __ATOMIC_ACQUIRE) + 1;
  __atomic_store_n(&mana_sig_epoch, e ? e : 1, __ATOMIC_RELEASE);
  __atomic_store_n(&mana_suspending, 1, __ATOMIC_RELEASE);
  uint64_t deadline = mana_now_ns(CLOCK_MONOTONIC) + 10ull * 1000000000ull;
  int stable = 0;
  for (;;) {
    int all, fresh;
    int seen = scan_tasks(&all, &fresh);
    if (seen < 0) {
      mana_fmt_str(&f, "cannot enumerate /proc/self/task (or more than ");
      mana_fmt_u64(&f, MANA_MAX_THREADS);
      mana_fmt_str(&f, " threads)");
      return -1;
    }
    if (mana_nslots > MANA_MAX_THREADS) {
      mana_fmt_str(&f, "more than ");
      mana_fmt_u64(&f, MANA_MAX_THREADS);
      mana_fmt_str(&f, " threads: not supported");
      return -1;
    }
    /* two consecutive passes with everything parked and nobody new: no thread can be
     * creating threads any more */
    if (all && !fresh) {
      if (++stable >= 2) return 0;
    } else {
      stable = 0;
    }
    if (mana_now_ns(CLOCK_MONOTONIC) > deadline) {
      int parked = 0, n = mana_nslots;
      for (int i = 0; i < n; i++) parked += mana_slots[i].state == SLOT_PARKED;
      mana_fmt_str(&f, "timeout: only ");
      mana_fmt_u64(&f, (uint64_t)parked);
      mana_fmt_str(&f, " of ");
      mana_fmt_u64(&f, (uint64_t)seen);
      mana_fmt_str(&f, " threads parked after 10 s; thread ");
      mana_fmt_u64(&f, (uint64_t)laggard);
      mana_fmt_str(&f, " did not respond to signal ");
      mana_fmt_u64(&f, (uint64_t)mana_cfg.ckpt_signal);
      mana_fmt_str(&f, " (blocked by a library that bypasses sigprocmask? set MANA_CKPT_SIGNAL)");
      return -1;
    }
    struct timespec ts = {0, 1000000};
    raw_syscall2(SYS_nanosleep, &ts, 0);
  }
}

void mana_unpark_all(void) {
  __atomic_store_n(&mana_suspending, 0, __ATOMIC_RELEASE);
  __atomic_fetch_add(&mana_resume_seq, 1, __ATOMIC_ACQ_REL);
  futex_wake_all(&mana_resume_seq);
  /* the slots are reused by the next SUSPEND: let every thread leave the handler first */
  uint64_t deadline = mana_now_ns(CLOCK_MONOTONIC) + 5ull * 1000000000ull;
  while (__atomic_load_n(&mana_in_handler, __ATOMIC_ACQUIRE) > 0 &&
         mana_now_ns(CLOCK_MONOTONIC) < deadline) {
    struct timespec ts = {0, 200000};
    raw_syscall2(SYS_nanosleep, &ts, 0);
  }
}
