/* plugin_probe — a program with a mana plugin (mana_plugin.h) that plays a tiny "lower half".
 *
 *   plugin_probe OUT STEPS [SLEEP_MS]
 *   plugin_probe --env            prints what libmana left of its environment (rank mode tests)
 *
 * It maps 64 MiB + 2 pages and keeps the middle 64 MiB ("lower-half memory", a fixed pattern)
 * out of every image (exclude_ranges reports it 100 bytes too wide on each side: libmana must
 * keep the partly covered border pages, which hold live data), and runs a helper thread that
 * blocks every signal with a raw system call and spins (exclude_tids). restart() maps the
 * middle again at the same address, refills it, starts a new helper and logs a variable of the
 * restart environment. Each step appends a line that depends on the border pages and checks a
 * sample of the middle, so a restart that lost either shows in OUT.
 *
 * The plugin is looked up with dlsym, so the program runs natively too (the reference).
 * Environment: PROBE_LOG (a file: one line per callback), PROBE_NO_RANGES=1 (exclude nothing),
 * PROBE_FAIL_FILE (while that file exists, presuspend fails with its contents as the reason),
 * PROBE_PRESUSPEND_MS (how long presuspend takes, default 300), PROBE_HELPER_BUSY=1 (the
 * helper spins writing its own stack instead of sleeping), and in the restart
 * environment PROBE_RESTART_VAR (logged) and PROBE_RESTART_FAIL=1 (restart() fails).
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../include/mana_plugin.h"

#define PAGE 4096ul
#define MID_SIZE (64ul << 20)
#define TOTAL (MID_SIZE + 2 * PAGE)

static unsigned char *base; /* border page, MID_SIZE of "lower half", border page */
static uint64_t *mid;
static volatile int helper_tid;
static volatile uint64_t helper_count;
static volatile long step_now;
static char log_path[4096];
static char fail_path[4096];
static int no_ranges;
static long presuspend_ms = 300;

static void logf_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logf_(const char *fmt, ...) {
  if (!log_path[0]) return;
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line - 1, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if (n > (int)sizeof line - 2) n = (int)sizeof line - 2;
  line[n++] = '\n';
  int fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return;
  if (write(fd, line, (size_t)n) < 0) {
  }
  close(fd);
}

static uint64_t pattern(size_t i) { return (i + 1) * 0x9E3779B97F4A7C15ull; }

static void fill_mid(void) {
  for (size_t i = 0; i < MID_SIZE / 8; i++) mid[i] = pattern(i);
}

/* every page's first word, or every word */
static int mid_ok(int full) {
  size_t stride = full ? 1 : PAGE / 8;
  for (size_t i = 0; i < MID_SIZE / 8; i += stride)
    if (mid[i] != pattern(i)) return 0;
  return 1;
}

static long rawsys2(long n, long a, long b) {
  long r;
  __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b) : "rcx", "r11", "memory");
  return r;
}
static long rawsys4(long n, long a, long b, long c, long d) {
  long r;
  register long r10 __asm__("r10") = d;
  __asm__ volatile("syscall"
                   : "=a"(r)
                   : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10)
                   : "rcx", "r11", "memory");
  return r;
}

static const struct timespec one_ms = {0, 1000000};

/* Like a lower-half thread: every signal blocked (set by its creator with a raw system call,
 * which libmana's sigprocmask wrapper cannot soften), and it keeps running through a
 * checkpoint. It touches only helper_count (small, so libmana copies it) and, unless busy, no
 * stack (the kernel still writes the rseq area in its thread descriptor, at the top of its
 * stack mapping, when it moves to another CPU). */
static int helper_busy; /* PROBE_HELPER_BUSY=1: the helper also keeps writing its own stack */

static void *helper(void *arg) {
  (void)arg;
  helper_tid = (int)syscall(SYS_gettid);
  volatile uint64_t own[512] __attribute__((unused)); /* 4 KiB of the helper's stack that change all the time */
  for (uint64_t n = 0; helper_busy; n++) {
    own[n % 512] = n;
    if (n % 4096 == 0) __atomic_fetch_add(&helper_count, 1, __ATOMIC_RELAXED);
  }
  for (;;) {
    __atomic_fetch_add(&helper_count, 1, __ATOMIC_RELAXED);
    rawsys2(SYS_nanosleep, (long)&one_ms, 0);
  }
  return NULL;
}

static int start_helper(void) {
  uint64_t all = ~0ull, old = 0;
  rawsys4(SYS_rt_sigprocmask, SIG_SETMASK, (long)&all, (long)&old, 8);
  pthread_t th;
  pthread_attr_t a;
  pthread_attr_init(&a);
  pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
  helper_tid = 0;
  int rc = pthread_create(&th, &a, helper, NULL);
  pthread_attr_destroy(&a);
  rawsys4(SYS_rt_sigprocmask, SIG_SETMASK, (long)&old, 0, 8);
  if (rc != 0) return -1;
  while (!__atomic_load_n(&helper_tid, __ATOMIC_ACQUIRE)) rawsys2(SYS_nanosleep, (long)&one_ms, 0);
  return 0;
}

/* ---- the plugin ---- */

static int on_presuspend(char *err, size_t errlen) {
  long before = step_now;
  logf_("presuspend step=%ld", before);
  if (fail_path[0]) {
    FILE *f = fopen(fail_path, "r");
    if (f) {
      size_t n = fread(err, 1, errlen - 1, f);
      fclose(f);
      err[n] = 0;
      while (n && (err[n - 1] == '\n' || err[n - 1] == ' ')) err[--n] = 0;
      logf_("presuspend failed: %s", err);
      return 1;
    }
  }
  struct timespec ts = {presuspend_ms / 1000, (presuspend_ms % 1000) * 1000000L};
  nanosleep(&ts, NULL); /* a drain: the application runs on meanwhile */
  logf_("presuspend done step=%ld", step_now);
  return 0;
}

static int on_exclude_ranges(uint64_t (*out)[2], int max) {
  logf_("exclude_ranges max=%d", max);
  if (no_ranges) return 0;
  if (max < 1) return 1;
  /* 100 bytes too wide on each side: the border pages hold data and must be kept */
  out[0][0] = (uint64_t)(uintptr_t)mid - 100;
  out[0][1] = (uint64_t)(uintptr_t)mid + MID_SIZE + 100;
  return 1;
}

static int on_exclude_tids(int32_t *out, int max) {
  int tid = helper_tid;
  logf_("exclude_tids helper=%s", tid ? "yes" : "no");
  if (!tid) return 0;
  if (max < 1) return 1;
  out[0] = tid;
  return 1;
}

static void on_resume(int restarted) { logf_("resume %d step=%ld", restarted, step_now); }

static int on_restart(char *const *env, char *err, size_t errlen) {
  const char *var = NULL;
  int fail = 0;
  for (char *const *e = env; *e; e++) {
    if (strncmp(*e, "PROBE_RESTART_VAR=", 18) == 0) var = *e + 18;
    if (strcmp(*e, "PROBE_RESTART_FAIL=1") == 0) fail = 1;
  }
  logf_("restart PROBE_RESTART_VAR=%s", var ? var : "(unset)");
  if (fail) {
    snprintf(err, errlen, "probe: told to fail (PROBE_RESTART_FAIL=1)");
    return 1;
  }
  if (!no_ranges) {
    void *p = mmap(mid, MID_SIZE, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (p != (void *)mid) {
      snprintf(err, errlen, "probe: cannot map the excluded range again at %p (%s)", (void *)mid,
               p == MAP_FAILED ? strerror(errno) : "elsewhere");
      return 1;
    }
    fill_mid();
  } else if (!mid_ok(1)) {
    snprintf(err, errlen, "probe: the region was saved but came back wrong");
    return 1;
  }
  if (start_helper() != 0) {
    snprintf(err, errlen, "probe: cannot start a new helper thread");
    return 1;
  }
  logf_("restart done");
  return 0;
}

static const struct mana_plugin probe = {
    .version = MANA_PLUGIN_VERSION,
    .name = "probe",
    .presuspend = on_presuspend,
    .exclude_ranges = on_exclude_ranges,
    .exclude_tids = on_exclude_tids,
    .resume = on_resume,
    .restart = on_restart,
};

typedef int (*register_fn)(const struct mana_plugin *);

static int count_tasks(void) {
  DIR *d = opendir("/proc/self/task");
  int n = 0;
  struct dirent *e;
  while (d && (e = readdir(d)))
    if (e->d_name[0] != '.') n++;
  if (d) closedir(d);
  return n;
}

static int env_mode(void) {
  int tasks = count_tasks();
  register_fn reg = (register_fn)dlsym(RTLD_DEFAULT, "mana_plugin_register");
  const char *vars[] = {"LD_PRELOAD", "MANA_AGENT_SOCK", "MANA_PROC_ID", "MANA_MPI_JOB"};
  for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) {
    const char *v = getenv(vars[i]);
    printf("%s=%s\n", vars[i], v ? v : "(unset)");
  }
  printf("tasks=%d\n", tasks);
  printf("register=%s\n", !reg ? "none" : reg(&probe) == 0 ? "0" : "-1");
  fflush(stdout);
  const char *w = getenv("PROBE_WAIT_MS");
  long ms = w ? atol(w) : 0;
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
  return 0;
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "--env") == 0) return env_mode();
  if (argc < 3) {
    fprintf(stderr, "usage: plugin_probe OUT STEPS [SLEEP_MS] | plugin_probe --env\n");
    return 2;
  }
  long steps = atol(argv[2]);
  long sleep_each = argc > 3 ? atol(argv[3]) : 10;
  const char *s;
  if ((s = getenv("PROBE_LOG"))) snprintf(log_path, sizeof log_path, "%s", s);
  if ((s = getenv("PROBE_FAIL_FILE"))) snprintf(fail_path, sizeof fail_path, "%s", s);
  if ((s = getenv("PROBE_PRESUSPEND_MS"))) presuspend_ms = atol(s);
  helper_busy = getenv("PROBE_HELPER_BUSY") && strcmp(getenv("PROBE_HELPER_BUSY"), "1") == 0;
  no_ranges = getenv("PROBE_NO_RANGES") && strcmp(getenv("PROBE_NO_RANGES"), "1") == 0;

  base = mmap(NULL, TOTAL, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED) {
    perror("mmap");
    return 99;
  }
  mid = (uint64_t *)(base + PAGE);
  fill_mid();
  uint64_t *lo = (uint64_t *)base;                          /* first border page */
  uint64_t *hi = (uint64_t *)(base + PAGE + MID_SIZE);      /* last border page */
  memset(base, 0xa5, PAGE);
  memset(base + PAGE + MID_SIZE, 0x5a, PAGE);
  lo[0] = 1;
  hi[PAGE / 8 - 1] = 7;
  if (start_helper() != 0) {
    fprintf(stderr, "plugin_probe: pthread_create failed\n");
    return 99;
  }

  register_fn reg = (register_fn)dlsym(RTLD_DEFAULT, "mana_plugin_register");
  int rc = reg ? reg(&probe) : -2;
  logf_("register %d", rc);
  if (reg && rc == 0 && reg(&probe) != -1) logf_("second register with the same name succeeded");

  FILE *out = fopen(argv[1], "w");
  if (!out) {
    perror(argv[1]);
    return 99;
  }
  for (long i = 0; i < steps; i++) {
    step_now = i;
    lo[0] = lo[0] * 6364136223846793005ull + (uint64_t)i;
    hi[PAGE / 8 - 1] ^= lo[0] >> 7;
    /* the bytes next to the excluded range, inside the border pages */
    base[PAGE - 1] = (unsigned char)(base[PAGE - 1] + 3);
    base[PAGE + MID_SIZE] = (unsigned char)(base[PAGE + MID_SIZE] ^ (unsigned char)i);
    fprintf(out, "step %ld lo=%016llx hi=%016llx edges=%02x%02x mid=%s\n", i,
            (unsigned long long)lo[0], (unsigned long long)hi[PAGE / 8 - 1], base[PAGE - 1],
            base[PAGE + MID_SIZE], mid_ok(0) ? "ok" : "BAD");
    fflush(out);
    struct timespec ts = {sleep_each / 1000, (sleep_each % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
  }
  /* the helper (the original or the one restart() started) is alive */
  uint64_t c0 = helper_count;
  int alive = 0;
  for (int k = 0; k < 2000 && !alive; k++) {
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
    alive = helper_count != c0;
  }
  fprintf(out, "mid=%s helper=%s\n", mid_ok(1) ? "ok" : "BAD", alive ? "alive" : "DEAD");
  fclose(out);
  return 0;
}
