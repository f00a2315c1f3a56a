/* plugin.c — mana_plugin.h: registration, and the dispatchers the checkpoint thread calls
 * (wire.c: presuspend, exclude_tids, resume, restart; park.c and fds.c: excluded tids;
 * maps.c: excluded ranges).
 *
 * Registration may happen on any application thread at any moment, also while the checkpoint
 * thread is in the middle of a round: a slot is filled under a lock that only registrants take,
 * with every signal blocked (so a registrant is never parked holding it), and published with a
 * release store. The checkpoint thread never takes that lock; it only reads published slots.
 * The plugins that take part in a round are those published when its presuspend starts.
 * exclude_ranges runs while the application is parked: the lists live in mmap'd memory grown
 * with raw system calls, never malloc. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>

#include "internal.h"
#include "mana_plugin.h"
#include "rawsys.h"

#define MAX_PLUGINS 4

struct plugin_slot {
  volatile int ready;  /* published: p and name are valid */
  int in_round;        /* taking part in the current round (published when it began) */
  int presuspended;    /* presuspend called and resume(0) still owed */
  struct mana_plugin p;
  char name[64];
};

static struct plugin_slot plugins[MAX_PLUGINS];
static volatile int reg_lock;

int mana_plugin_register(const struct mana_plugin *p) {
  if (!p || p->version < 1 || !p->name || !p->name[0]) return -1;
  /* A library linked into the program runs its constructors before the preloaded libmana
   * runs its own: then ask init.c whether libmana is going to be active. */
  if (!(mana_init_done ? mana_cfg.enabled : mana_will_be_enabled())) return -1;
  sigset_t all, old;
  sigfillset(&all);
  mana_real_sigmask(SIG_BLOCK, &all, &old);
  while (__atomic_exchange_n(&reg_lock, 1, __ATOMIC_ACQUIRE)) {
    struct timespec ts = {0, 100000};
    raw_syscall2(SYS_nanosleep, &ts, 0);
  }
  int rc = -1, free_slot = -1;
  for (int i = 0; i < MAX_PLUGINS; i++) {
    if (!__atomic_load_n(&plugins[i].ready, __ATOMIC_ACQUIRE)) {
      if (free_slot < 0) free_slot = i;
    } else if (mana_strneq(plugins[i].name, p->name, sizeof plugins[i].name - 1)) {
      free_slot = -2; /* already registered under that name */
      break;
    }
  }
  if (free_slot >= 0) {
    struct plugin_slot *s = &plugins[free_slot];
    memset(&s->p, 0, sizeof s->p);
    /* version 1's fields; a later version only adds fields at the end */
    s->p.version = MANA_PLUGIN_VERSION;
    s->p.presuspend = p->presuspend;
    s->p.exclude_ranges = p->exclude_ranges;
    s->p.exclude_tids = p->exclude_tids;
    s->p.resume = p->resume;
    s->p.restart = p->restart;
    if (p->version >= 2) s->p.exclude_fds = p->exclude_fds;
    mana_img_strlcpy(s->name, p->name, sizeof s->name);
    s->p.name = s->name;
    s->in_round = 0;
    s->presuspended = 0;
    __atomic_store_n(&s->ready, 1, __ATOMIC_RELEASE);
    rc = 0;
  }
  __atomic_store_n(&reg_lock, 0, __ATOMIC_RELEASE);
  mana_real_sigmask(SIG_SETMASK, &old, NULL);
  return rc;
}

static int ready(int i) { return __atomic_load_n(&plugins[i].ready, __ATOMIC_ACQUIRE); }

/* The reason goes into a "key=value\n" line: no newlines, never empty. */
static void clean_reason(char *err, size_t errlen, const char *name, const char *what) {
  if (errlen == 0) return;
  err[errlen - 1] = 0;
  for (char *c = err; *c; c++)
    if (*c == '\n' || *c == '\r') *c = ' ';
  if (!err[0]) {
    struct mana_fmt f;
    mana_fmt_init(&f, err, errlen);
    mana_fmt_str(&f, "plugin ");
    mana_fmt_str(&f, name);
    mana_fmt_str(&f, what);
  }
}

int mana_plugins_presuspend(char *err, size_t errlen) {
  for (int i = 0; i < MAX_PLUGINS; i++) plugins[i].in_round = ready(i);
  for (int i = 0; i < MAX_PLUGINS; i++) {
    struct plugin_slot *s = &plugins[i];
    if (!s->in_round) continue;
    s->presuspended = 1;
    if (!s->p.presuspend) continue;
    err[0] = 0;
    if (s->p.presuspend(err, errlen) != 0) {
      clean_reason(err, errlen, s->name, " refused the checkpoint (no reason given)");
      return -1;
    }
  }
  err[0] = 0;
  return 0;
}

void mana_plugins_resume(int restarted) {
  for (int i = 0; i < MAX_PLUGINS; i++) {
    struct plugin_slot *s = &plugins[i];
    if (!ready(i)) continue;
    /* after a restart every plugin hears of it; otherwise those presuspended this round */
    int call = restarted || s->presuspended;
    s->presuspended = 0;
    s->in_round = 0;
    if (call && s->p.resume) s->p.resume(restarted);
  }
}

/* ---- growable lists in mmap'd memory (usable while the application is parked) ---- */

struct list {
  void *mem;
  size_t bytes;
};

static int list_reserve(struct list *l, size_t bytes) {
  if (bytes <= l->bytes) return 0;
  size_t want = (bytes + 65535) & ~(size_t)65535;
  long p;
  if (l->mem)
    p = raw_syscall4(SYS_mremap, l->mem, l->bytes, want, MREMAP_MAYMOVE);
  else
    p = raw_syscall6(SYS_mmap, 0, want, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
                     0);
  if (p < 0 && p > -4096) return -1;
  l->mem = (void *)p;
  l->bytes = want;
  return 0;
}

/* ---- threads ---- */

static struct list tid_list;
static int ntids;
static int collect_sps(char *err, size_t errlen);

int mana_plugins_collect_tids(char *err, size_t errlen) {
  ntids = 0;
  for (int i = 0; i < MAX_PLUGINS; i++) {
    struct plugin_slot *s = &plugins[i];
    if (!s->in_round || !s->p.exclude_tids) continue;
    int room = (int)(tid_list.bytes / sizeof(int32_t)) - ntids;
    for (int tries = 0; tries < 8; tries++) {
      int n = room > 0 ? s->p.exclude_tids((int32_t *)tid_list.mem + ntids, room) : 0;
      if (room > 0 && n <= room) {
        if (n > 0) ntids += n;
        break;
      }
      /* more than fits (or nothing allocated yet): grow and ask again */
      if (list_reserve(&tid_list, ((size_t)ntids + (size_t)(n > 256 ? n : 256)) * sizeof(int32_t)) != 0) {
        struct mana_fmt f;
        mana_fmt_init(&f, err, errlen);
        mana_fmt_str(&f, "out of memory for the threads plugin ");
        mana_fmt_str(&f, s->name);
        mana_fmt_str(&f, " keeps out of the checkpoint");
        return -1;
      }
      room = (int)(tid_list.bytes / sizeof(int32_t)) - ntids;
    }
  }
  return collect_sps(err, errlen);
}

/* Where each excluded thread's stack is. Such a thread runs on while the image is written,
 * and the kernel writes into the top of its stack mapping even when the thread itself does
 * not (glibc's thread descriptor there holds its rseq area, whose cpu_id changes when the
 * thread moves to another CPU, and the tid cleared at its exit): maps.c hands those lines to
 * the writer as copies, or a chunk's bytes could change between its hash and its write. The
 * stack pointer comes from /proc/self/task/TID/syscall, which shows it while the thread is
 * blocked (in a system call, or stopped); a runnable thread shows "running" and is asked again
 * for up to SP_TRIES ms. */
#define SP_TRIES 100

static struct list sp_list;
static int sp_unknown; /* a thread ran through every try: maps.c copies what looks like a stack */

/* 1 and *sp, 0 while the thread runs (or is runnable), -1 when it is gone (nothing of it
   changes any more), -2 when its stack pointer cannot be read (no such file, no permission,
   an unknown format): then it is not known where the thread's stack is. */
static int read_sp(int tid, uint64_t *sp) {
  char path[64], b[256];
  struct mana_fmt f;
  mana_fmt_init(&f, path, sizeof path);
  mana_fmt_str(&f, "/proc/self/task/");
  mana_fmt_u64(&f, (uint64_t)tid);
  mana_fmt_str(&f, "/syscall");
  int fd = (int)raw_syscall3(SYS_open, path, O_RDONLY | O_CLOEXEC, 0);
  long n = fd >= 0 ? raw_syscall3(SYS_read, fd, b, sizeof b - 1) : -1;
  if (fd >= 0) raw_syscall1(SYS_close, fd);
  if (n <= 0) /* (signal 0: only asks whether the thread exists) */
    return raw_syscall3(SYS_tgkill, raw_syscall0(SYS_getpid), tid, 0) == -ESRCH ? -1 : -2;
  b[n] = 0;
  if (mana_strneq(b, "running", 7)) return 0;
  /* "NR ARG1..ARG6 SP PC" in a system call, "-1 SP PC" outside one: SP is the last but one */
  const char *w[9];
  int nw = 0;
  for (char *q = b; *q && nw < 9;) {
    while (*q == ' ' || *q == '\n') q++;
    if (!*q) break;
    w[nw++] = q;
    while (*q && *q != ' ' && *q != '\n') q++;
  }
  if (nw < 3 || w[nw - 2][0] != '0' || w[nw - 2][1] != 'x') return -2;
  return mana_parse_u64(w[nw - 2] + 2, NULL, sp, 16) == 0 ? 1 : -2;
}

static int collect_sps(char *err, size_t errlen) {
  sp_unknown = 0;
  if (!ntids) return 0;
  if (list_reserve(&sp_list, (size_t)ntids * sizeof(uint64_t)) != 0) {
    struct mana_fmt f;
    mana_fmt_init(&f, err, errlen);
    mana_fmt_str(&f, "out of memory for the stacks of the threads plugins keep out of the checkpoint");
    return -1;
  }
  uint64_t *sp = sp_list.mem;
  const int32_t *t = tid_list.mem;
  for (int i = 0; i < ntids; i++) {
    int rc = 0;
    for (int k = 0; k < SP_TRIES && (rc = read_sp(t[i], &sp[i])) == 0; k++) mana_msleep(1);
    if (rc != 1) sp[i] = 0;
    if (rc == 0 || rc == -2) sp_unknown = 1;
  }
  return 0;
}

int mana_plugins_stack_in(uint64_t start, uint64_t end) {
  const uint64_t *sp = sp_list.mem;
  for (int i = 0; i < ntids; i++)
    if (sp[i] >= start && sp[i] < end) return 1;
  return 0;
}

int mana_plugins_stack_unknown(void) { return sp_unknown; }

int mana_plugin_tid_excluded(int tid) {
  const int32_t *t = tid_list.mem;
  for (int i = 0; i < ntids; i++)
    if (t[i] == tid) return 1;
  return 0;
}

/* ---- file descriptors ---- */

static int32_t fd_excl[4096];
static int nfds;

/* Asked while the other threads are parked (fds.c, before it reads /proc/self/fd). */
void mana_plugins_collect_fds(void) {
  nfds = 0;
  for (int i = 0; i < MAX_PLUGINS; i++) {
    struct plugin_slot *s = &plugins[i];
    if (!s->in_round || !s->p.exclude_fds) continue;
    int room = (int)(sizeof fd_excl / sizeof *fd_excl) - nfds;
    int n = room > 0 ? s->p.exclude_fds(fd_excl + nfds, room) : 0;
    if (n > 0) nfds += n < room ? n : room;
  }
}

int mana_plugin_fd_excluded(int fd) {
  for (int i = 0; i < nfds; i++)
    if (fd_excl[i] == fd) return 1;
  return 0;
}

/* ---- memory ranges ---- */

static struct list range_list;
static int nranges;

static void sift(uint64_t (*a)[2], int root, int n) {
  for (;;) {
    int c = 2 * root + 1;
    if (c >= n) return;
    if (c + 1 < n && a[c + 1][0] > a[c][0]) c++;
    if (a[root][0] >= a[c][0]) return;
    uint64_t t0 = a[root][0], t1 = a[root][1];
    a[root][0] = a[c][0];
    a[root][1] = a[c][1];
    a[c][0] = t0;
    a[c][1] = t1;
    root = c;
  }
}

/* Heapsort by start (no malloc, no recursion, n log n for trackers that report thousands). */
static void sort_ranges(uint64_t (*a)[2], int n) {
  for (int i = n / 2 - 1; i >= 0; i--) sift(a, i, n);
  for (int end = n - 1; end > 0; end--) {
    uint64_t t0 = a[0][0], t1 = a[0][1];
    a[0][0] = a[end][0];
    a[0][1] = a[end][1];
    a[end][0] = t0;
    a[end][1] = t1;
    sift(a, 0, end);
  }
}

int mana_plugins_collect_ranges(void) {
  nranges = 0;
  for (int i = 0; i < MAX_PLUGINS; i++) {
    struct plugin_slot *s = &plugins[i];
    if (!s->in_round || !s->p.exclude_ranges) continue;
    int room = (int)(range_list.bytes / 16) - nranges;
    for (int tries = 0; tries < 8; tries++) {
      int n = room > 0 ? s->p.exclude_ranges((uint64_t (*)[2])range_list.mem + nranges, room) : 0;
      if (room > 0 && n <= room) {
        if (n > 0) nranges += n; /* a negative count (the plugin failed) excludes nothing */
        break;
      }
      if (list_reserve(&range_list, ((size_t)nranges + (size_t)(n > 1024 ? n : 1024)) * 16) != 0)
        break; /* out of memory: this plugin's ranges are saved (more memory, never less) */
      room = (int)(range_list.bytes / 16) - nranges;
    }
  }
  if (!nranges) return 0;
  /* only whole pages are left out: a page partly excluded is saved */
  uint64_t (*r)[2] = range_list.mem;
  int k = 0;
  for (int i = 0; i < nranges; i++) {
    uint64_t s = (r[i][0] + 4095) & ~4095ull, e = r[i][1] & ~4095ull;
    if (r[i][0] > ~4095ull) continue; /* rounding up would wrap */
    if (s >= e) continue;
    r[k][0] = s;
    r[k][1] = e;
    k++;
  }
  sort_ranges(r, k);
  int m = 0;
  for (int i = 0; i < k; i++) {
    if (m && r[i][0] <= r[m - 1][1]) {
      if (r[i][1] > r[m - 1][1]) r[m - 1][1] = r[i][1];
    } else {
      r[m][0] = r[i][0];
      r[m][1] = r[i][1];
      m++;
    }
  }
  nranges = m;
  return nranges;
}

/* The first piece of [*from, end) that is not excluded: 1 with [*ps, *pe), or 0 when the rest
 * of the range is excluded. *from moves past the piece. */
int mana_plugins_next_piece(uint64_t *from, uint64_t end, uint64_t *ps, uint64_t *pe) {
  const uint64_t (*r)[2] = range_list.mem;
  uint64_t s = *from;
  while (s < end) {
    /* the first excluded range that ends after s (binary search: ranges are sorted, disjoint) */
    int lo = 0, hi = nranges;
    while (lo < hi) {
      int mid = (lo + hi) / 2;
      if (r[mid][1] <= s) lo = mid + 1;
      else hi = mid;
    }
    if (lo == nranges || r[lo][0] >= end) {
      *ps = s;
      *pe = end;
      *from = end;
      return 1;
    }
    if (r[lo][0] > s) {
      *ps = s;
      *pe = r[lo][0];
      *from = r[lo][0];
      return 1;
    }
    s = r[lo][1]; /* s lies inside an excluded range: skip it */
  }
  *from = end;
  return 0;
}

/* ---- restart ---- */

/* The NULL-terminated array handed to restart(): pointers into mana_restart_info.env. Static,
 * because glibc's malloc may be locked by a thread parked at checkpoint time. Every entry has
 * at least "K=" and its NUL, so this many pointers always suffice. */
static char *restart_envp[MANA_RESTART_ENV_SIZE / 3 + 2];

int mana_plugins_restart(char *err, size_t errlen) {
  int n = 0;
  for (char *p = mana_restart_info.env; *p && n < (int)(sizeof restart_envp / sizeof *restart_envp) - 1;
       p += mana_strlen(p) + 1)
    restart_envp[n++] = p;
  restart_envp[n] = NULL;
  for (int i = 0; i < MAX_PLUGINS; i++) {
    struct plugin_slot *s = &plugins[i];
    if (!ready(i) || !s->p.restart) continue;
    err[0] = 0;
    if (s->p.restart(restart_envp, err, errlen) != 0) {
      clean_reason(err, errlen, s->name, " could not restart (no reason given)");
      return -1;
    }
  }
  err[0] = 0;
  return 0;
}
