/* hold.c — libmanasuite_hold.so, preloaded into the ranks of the checkpoint-restart modes of
 * scripts/mpich-suite.sh, so that a checkpoint lands in the middle of a test that takes well
 * under a second: far less than it takes `mana command` to start and ask for one.
 *
 * Every MPI call (hold.gen.c wraps all int-returning functions of mpi-shim/spec/mpi.api
 * except MPI_Init*, MPI_Finalize and rank/size/thread/version queries) is counted per rank.
 *   count mode (MANA_SUITE_HOLD_DIR set, no MANA_SUITE_HOLD_AT): at MPI_Finalize the rank
 *     writes its count to DIR/count.RANK.
 *   hold mode (MANA_SUITE_HOLD_AT="k0,k1,..." per rank): before its k-th call the rank writes
 *     "PID K" to DIR/held.RANK and waits (outside MPI) until a checkpoint begins: this
 *     library is a mana plugin registered before the MPI shim's, so its presuspend, which
 *     lets the rank go on, runs before the shim drains the job (the shim may need this rank to
 *     reach a collective or a receive that others wait for). The rank runs on for at most the
 *     time the shim's agreement rounds take before its lower half is gated: the checkpoint is
 *     taken at the k-th call or a few calls later. It waits at most MANA_SUITE_HOLD_MAX
 *     seconds (default 30), then goes on and writes DIR/timeout.RANK.
 * After a restart nothing is held again. Outside a rank (mpirun, Hydra's proxies, orted)
 * MPI_Init is never called and nothing happens. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mpi.h>

#include "mana_plugin.h"

void hold_point(void);

static const char *dir;      /* MANA_SUITE_HOLD_DIR, or NULL: inert */
static const char *at_list;  /* MANA_SUITE_HOLD_AT */
static int rank = -1;        /* set after MPI_Init, -1 again at MPI_Finalize */
static long hold_at;         /* this rank's k; 0: never hold */
static long calls;
static int released;         /* a checkpoint began (or the process was restarted) */
static double hold_max = 30;

static void put_file(const char *name, const char *text) {
  char path[4096], tmp[4200];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return;
  ssize_t len = (ssize_t)strlen(text);
  int ok = write(fd, text, (size_t)len) == len;
  close(fd);
  if (!ok || rename(tmp, path) != 0) unlink(tmp); /* the harness sees a whole file or none */
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int on_presuspend(char *err, size_t errlen) {
  (void)err;
  (void)errlen;
  __atomic_store_n(&released, 1, __ATOMIC_RELEASE);
  return 0;
}
/* In the checkpointed job, the checkpoint thread stays here (the application's threads stay
 * parked) until the harness kills the job: nothing the job would print after the checkpoint
 * (and the restarted job prints again) can reach the test's output, and stdio buffers saved
 * in the image are never flushed by this process too. Bounded, in case nobody kills it. */
static void on_resume(int restarted) {
  __atomic_store_n(&released, 1, __ATOMIC_RELEASE);
  if (restarted) return;
  double until = now() + hold_max;
  while (now() < until) {
    struct timespec ts = {0, 10000000};
    nanosleep(&ts, NULL);
  }
}
static int on_restart(char *const *env, char *err, size_t errlen) {
  (void)env;
  (void)err;
  (void)errlen;
  __atomic_store_n(&released, 1, __ATOMIC_RELEASE);
  return 0;
}

static const struct mana_plugin plugin = {
    .version = MANA_PLUGIN_VERSION,
    .name = "mpich-suite-hold",
    .presuspend = on_presuspend,
    .resume = on_resume,
    .restart = on_restart,
};

/* A constructor, so that the plugin is registered before the shim registers its own in
 * MPI_Init: presuspend callbacks run in registration order. */
__attribute__((constructor)) static void hold_init(void) {
  dir = getenv("MANA_SUITE_HOLD_DIR");
  if (dir && !dir[0]) dir = NULL;
  at_list = getenv("MANA_SUITE_HOLD_AT");
  const char *m = getenv("MANA_SUITE_HOLD_MAX");
  if (m && atof(m) > 0) hold_max = atof(m);
  if (!dir || !at_list) return;
  int (*reg)(const struct mana_plugin *) =
      (int (*)(const struct mana_plugin *))dlsym(RTLD_DEFAULT, "mana_plugin_register");
  if (!reg || reg(&plugin) != 0) at_list = NULL; /* not under mana: never hold */
}

void hold_point(void) {
  if (rank < 0) return;
  long k = __atomic_add_fetch(&calls, 1, __ATOMIC_RELAXED);
  if (k != hold_at || __atomic_load_n(&released, __ATOMIC_ACQUIRE)) return;
  char name[64], text[64];
  snprintf(name, sizeof name, "held.%d", rank);
  snprintf(text, sizeof text, "%d %ld\n", (int)getpid(), k);
  put_file(name, text);
  double until = now() + hold_max;
  while (!__atomic_load_n(&released, __ATOMIC_ACQUIRE)) {
    if (now() > until) {
      snprintf(name, sizeof name, "timeout.%d", rank);
      put_file(name, text);
      return;
    }
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
  }
}

static void after_init(void) {
  if (!dir) return;
  int r = -1;
  if (PMPI_Comm_rank(MPI_COMM_WORLD, &r) != MPI_SUCCESS || r < 0) return;
  if (at_list) {
    /* the r-th comma-separated number */
    const char *p = at_list;
    for (int i = 0; i < r && p; i++) {
      p = strchr(p, ',');
      if (p) p++;
    }
    hold_at = p ? strtol(p, NULL, 10) : 0;
  }
  rank = r;
}

int MPI_Init(int *argc, char ***argv) {
  int rc = PMPI_Init(argc, argv);
  if (rc == MPI_SUCCESS) after_init();
  return rc;
}

int MPI_Init_thread(int *argc, char ***argv, int required, int *provided) {
  int rc = PMPI_Init_thread(argc, argv, required, provided);
  if (rc == MPI_SUCCESS) after_init();
  return rc;
}

int MPI_Finalize(void) {
  if (rank >= 0 && !at_list) {
    char name[64], text[64];
    snprintf(name, sizeof name, "count.%d", rank);
    snprintf(text, sizeof text, "%ld\n", __atomic_load_n(&calls, __ATOMIC_RELAXED));
    put_file(name, text);
  }
  rank = -1;
  return PMPI_Finalize();
}
