/* sigstate.c — the signal state the kernel keeps outside memory: pending signals (per thread
 * and process-wide), interval timers (setitimer) and POSIX timers (timer_create). Saved into
 * libmana's own data while the threads are parked (so it travels in the image with no format
 * change) and given back to the kernel by the restored process before any application thread
 * runs again. Raw syscalls and static buffers only: other threads are parked.
 *
 * What is not kept: the siginfo of a pending signal (it is re-sent with tgkill/kill, so
 * si_code and si_pid are the restarted process's own), several queued instances of one
 * real-time signal (one is re-sent), timer overrun counts, and POSIX timers that notify a
 * thread (SIGEV_THREAD_ID, which glibc's SIGEV_THREAD timers use) — those get one warning
 * at restart and stay disarmed. */
#include <fcntl.h>
#include <linux/prctl.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "rawsys.h"

#ifndef PR_TIMER_CREATE_RESTORE_IDS
#define PR_TIMER_CREATE_RESTORE_IDS 77 /* Linux 6.17+: timer_create takes the id it is given */
#define PR_TIMER_CREATE_RESTORE_IDS_OFF 0
#define PR_TIMER_CREATE_RESTORE_IDS_ON 1
#endif

#define MAX_TIMERS 64

struct saved_timer {
  int id;
  int clock;
  int signo;
  int notify;       /* SIGEV_SIGNAL or SIGEV_NONE; -1 = unsupported, not re-created */
  uint64_t value;   /* sigev_value */
  struct itimerspec spec; /* remaining time and interval at checkpoint */
};

static uint64_t shared_pending;
static struct itimerval itimers[3];
static struct saved_timer timers[MAX_TIMERS];
static int ntimers;
static char buf[16384];

static ssize_t slurp(const char *path) {
  int fd = (int)raw_syscall3(SYS_open, path, O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0) return -1;
  size_t n = 0;
  for (;;) {
    long r = raw_syscall3(SYS_read, fd, buf + n, sizeof buf - 1 - n);
    if (r <= 0) break;
    n += (size_t)r;
    if (n >= sizeof buf - 1) break;
  }
  raw_syscall1(SYS_close, fd);
  buf[n] = 0;
  return (ssize_t)n;
}

/* The value of "Key:\t<hex>" in a /proc status file, 0 when absent. */
static uint64_t status_hex(const char *key) {
  size_t kl = mana_strlen(key);
  for (const char *p = buf; *p;) {
    if (mana_strneq(p, key, kl)) {
      const char *v = p + kl;
      while (*v == ' ' || *v == '\t') v++;
      uint64_t x = 0;
      mana_parse_u64(v, NULL, &x, 16);
      return x;
    }
    while (*p && *p != '\n') p++;
    if (*p) p++;
  }
  return 0;
}

/* The checkpoint signal is libmana's own; SIGKILL and SIGSTOP are never pending for long. */
static uint64_t app_signals(uint64_t set) {
  set &= ~(1ull << (mana_cfg.ckpt_signal - 1));
  set &= ~(1ull << (SIGKILL - 1));
  set &= ~(1ull << (SIGSTOP - 1));
  return set;
}

static const char *after(const char *p, const char *word) {
  size_t n = mana_strlen(word);
  return mana_strneq(p, word, n) ? p + n : NULL;
}

/* /proc/self/timers: "ID: n\nsignal: s/ptr\nnotify: kind/pid.N|tid.N\nClockID: c\n" each. */
static void save_posix_timers(void) {
  ntimers = 0;
  if (slurp("/proc/self/timers") <= 0) return;
  struct saved_timer *t = NULL;
  for (const char *p = buf; *p;) {
    const char *v;
    uint64_t x = 0;
    if ((v = after(p, "ID: "))) {
      t = ntimers < MAX_TIMERS ? &timers[ntimers++] : NULL;
      if (t) {
        memset(t, 0, sizeof *t);
        mana_parse_u64(v, NULL, &x, 10);
        t->id = (int)x;
      }
    } else if (t && (v = after(p, "signal: "))) {
      const char *e;
      mana_parse_u64(v, &e, &x, 10);
      t->signo = (int)x;
      if (*e == '/') mana_parse_u64(e + 1, NULL, &t->value, 16);
    } else if (t && (v = after(p, "notify: "))) {
      if (after(v, "signal/pid.")) t->notify = SIGEV_SIGNAL;
      else if (after(v, "none/pid.")) t->notify = SIGEV_NONE;
      else t->notify = -1;
    } else if (t && (v = after(p, "ClockID: "))) {
      mana_parse_u64(v, NULL, &x, 10);
      t->clock = (int)x;
    }
    while (*p && *p != '\n') p++;
    if (*p) p++;
  }
  for (int i = 0; i < ntimers; i++)
    if (raw_syscall2(SYS_timer_gettime, timers[i].id, &timers[i].spec) != 0)
      timers[i].notify = -1; /* deleted meanwhile */
}

void mana_sigstate_save(void) {
  shared_pending = slurp("/proc/self/status") > 0 ? app_signals(status_hex("ShdPnd:")) : 0;
  for (int i = 0; i < mana_nslots; i++) {
    struct park_slot *s = &mana_slots[i];
    s->pending = 0;
    if (s->state != SLOT_PARKED) continue;
    char path[64];
    struct mana_fmt f;
    mana_fmt_init(&f, path, sizeof path);
    mana_fmt_str(&f, "/proc/self/task/");
    mana_fmt_u64(&f, (uint64_t)s->tid);
    mana_fmt_str(&f, "/status");
    if (slurp(path) > 0) s->pending = app_signals(status_hex("SigPnd:"));
  }
  for (int w = 0; w < 3; w++) raw_syscall2(SYS_getitimer, w, &itimers[w]);
  save_posix_timers();
}

/* In a restored thread, before it runs application code: its own pending signals. They stay
 * pending (all signals are blocked in the park handler) until the application's mask allows. */
void mana_sigstate_restore_thread(struct park_slot *s) {
  int pid = raw_getpid(), tid = raw_gettid();
  for (int sig = 1; sig <= 64; sig++)
    if (s->pending & (1ull << (sig - 1))) raw_syscall3(SYS_tgkill, pid, tid, sig);
}

static void say(const char *a, int id, const char *b) {
  char line[256];
  struct mana_fmt f;
  mana_fmt_init(&f, line, sizeof line);
  mana_fmt_str(&f, a);
  mana_fmt_u64(&f, (uint64_t)id);
  mana_fmt_str(&f, b);
  raw_syscall3(SYS_write, 2, line, f.len);
}

/* In the restored checkpoint thread, before RESUME: timers and process-wide pending signals. */
void mana_sigstate_restore_process(void) {
  for (int w = 0; w < 3; w++)
    if (itimers[w].it_value.tv_sec || itimers[w].it_value.tv_usec)
      raw_syscall3(SYS_setitimer, w, &itimers[w], 0);
  /* the kernel numbers timers itself; with this switch it uses the number asked for, so the
   * timer_t values the application holds stay valid */
  int by_id = raw_syscall5(SYS_prctl, PR_TIMER_CREATE_RESTORE_IDS, PR_TIMER_CREATE_RESTORE_IDS_ON,
                           0, 0, 0) == 0;
  for (int i = 0; i < ntimers; i++) {
    struct saved_timer *t = &timers[i];
    if (t->notify < 0) {
      say("mana: warning: POSIX timer ", t->id,
          " notifies a thread (SIGEV_THREAD/SIGEV_THREAD_ID); it was not re-armed after the restart\n");
      continue;
    }
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = t->notify;
    sev.sigev_signo = t->signo;
    sev.sigev_value.sival_ptr = (void *)(uintptr_t)t->value;
    int id = t->id;
    long rc = raw_syscall3(SYS_timer_create, t->clock, &sev, &id);
    if (rc != 0 || id != t->id) {
      if (rc == 0) raw_syscall1(SYS_timer_delete, id);
      say("mana: warning: POSIX timer ", t->id,
          by_id ? " could not be re-created after the restart\n"
                : " could not be re-created with its id (the kernel lacks PR_TIMER_CREATE_RESTORE_IDS, Linux 6.17+)\n");
      continue;
    }
    if (t->spec.it_value.tv_sec || t->spec.it_value.tv_nsec)
      raw_syscall4(SYS_timer_settime, id, 0, &t->spec, 0);
  }
  if (by_id)
    raw_syscall5(SYS_prctl, PR_TIMER_CREATE_RESTORE_IDS, PR_TIMER_CREATE_RESTORE_IDS_OFF, 0, 0, 0);
  int pid = raw_getpid();
  for (int sig = 1; sig <= 64; sig++)
    if (shared_pending & (1ull << (sig - 1))) raw_syscall2(SYS_kill, pid, sig);
}
