/* init.c — libmana's constructor: configuration, environment scrubbing, the park handler
 * and the checkpoint thread. Without MANA_AGENT_SOCK the library stays completely inert. */
#include <asm/prctl.h>
#include <dirent.h>
#include <sys/stat.h>
#include <errno.h>
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"
#include "mana.h"
#include "mana_wire.h"
#include "rawsys.h"

struct mana_config mana_cfg = {.ckpt_signal = SIGUSR2, .mpi_rank = -1, .mpi_size = -1};
struct mana_restart_info mana_restart_info;
long mana_tid_offset = -1;
uint64_t mana_rw_start, mana_rw_end; /* libmana's own writable segment(s) */

/* Runs once in the constructor: dl_iterate_phdr takes the loader lock, which a parked thread
 * could hold at checkpoint time. */
static int find_rw(struct dl_phdr_info *i, size_t size, void *arg) {
  (void)size;
  uint64_t me = (uint64_t)arg;
  int ours = 0;
  for (int k = 0; k < i->dlpi_phnum; k++) {
    const ElfW(Phdr) *p = &i->dlpi_phdr[k];
    uint64_t s = i->dlpi_addr + p->p_vaddr;
    if (p->p_type == PT_LOAD && me >= s && me < s + p->p_memsz) ours = 1;
  }
  if (!ours) return 0;
  for (int k = 0; k < i->dlpi_phnum; k++) {
    const ElfW(Phdr) *p = &i->dlpi_phdr[k];
    if (p->p_type != PT_LOAD || !(p->p_flags & PF_W)) continue;
    uint64_t s = (i->dlpi_addr + p->p_vaddr) & ~4095ull;
    uint64_t e = (i->dlpi_addr + p->p_vaddr + p->p_memsz + 4095) & ~4095ull;
    if (!mana_rw_start || s < mana_rw_start) mana_rw_start = s;
    if (e > mana_rw_end) mana_rw_end = e;
  }
  return 1;
}
int mana_sock_fd = -1;
struct mana_inherited_fd mana_inherited[MANA_MAX_INHERITED];
int mana_ninherited;

int mana_is_enabled(void) { return mana_cfg.enabled; }

uint64_t mana_get_fs_base(void) {
  uint64_t fs = 0;
  /* arch_prctl works everywhere; rdfsbase would need AT_HWCAP2 checks for one syscall saved */
  raw_syscall2(SYS_arch_prctl, ARCH_GET_FS, &fs);
  return fs;
}

/* glibc keeps the kernel tid in struct pthread (at the thread pointer); its offset is not
 * ABI, so find it by looking for our own tid. Both the main thread and the checkpoint thread
 * must agree, which rules out a coincidental match. */
static long find_tid_offset(void) {
  const int *p = (const int *)pthread_self();
  int tid = raw_gettid();
  for (long off = 0; off < 1024; off += 4)
    if (p[off / 4] == tid) return off;
  return -1;
}

static void drop_from_preload(void) {
  const char *pre = getenv("LD_PRELOAD");
  if (!pre) return;
  size_t n = strlen(pre);
  char *out = malloc(n + 1);
  if (!out) return;
  size_t o = 0;
  const char *s = pre;
  while (*s) {
    while (*s == ':' || *s == ' ') s++;
    const char *e = s;
    while (*e && *e != ':' && *e != ' ') e++;
    if (e == s) break;
    const char *base = s;
    for (const char *q = s; q < e; q++)
      if (*q == '/') base = q + 1;
    int ours = (size_t)(e - base) >= 9 && strncmp(base, "libmana.so", 10) == 0;
    if (!ours) {
      if (o) out[o++] = ':';
      memcpy(out + o, s, (size_t)(e - s));
      o += (size_t)(e - s);
    }
    s = e;
  }
  out[o] = 0;
  if (o) setenv("LD_PRELOAD", out, 1);
  else unsetenv("LD_PRELOAD");
  free(out);
}

static void atfork_child(void) {
  /* the child has no checkpoint thread; it behaves as if never managed */
  if (mana_sock_fd >= 0) close(mana_sock_fd);
  mana_sock_fd = -1;
  mana_cfg.enabled = 0;
}

static void *ckpt_thread_start(void *arg) {
  long off = find_tid_offset();
  if (off != mana_tid_offset) mana_tid_offset = -1;
  return mana_ckpt_thread_main(arg);
}

/* MPI rank mode. LD_PRELOAD reaches the launcher, its daemons (hydra_pmi_proxy, orted,
 * slurmstepd's children...) and the ranks alike; only a rank carries one of these. The first
 * one set wins; SLURM_PROCID counts only inside a job step (SLURM_STEP_ID), since a batch
 * script has it too. */
static const char *const rank_vars[][2] = {
    {"PMI_RANK", "PMI_SIZE"},
    {"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"},
    {"PMIX_RANK", "PMIX_SIZE"},
    {"SLURM_PROCID", "SLURM_NTASKS"},
};

static int parse_nonneg(const char *s) {
  uint64_t v;
  const char *end;
  if (!s || !*s || mana_parse_u64(s, &end, &v, 10) != 0 || *end || v > 0x7fffffff) return -1;
  return (int)v;
}

int mana_mpi_rank_from(const char *(*get)(const char *key, void *arg), void *arg, int *rank,
                       int *size) {
  int n = (int)(sizeof rank_vars / sizeof rank_vars[0]);
  for (int i = 0; i < n; i++) {
    if (i == n - 1 && !get("SLURM_STEP_ID", arg)) continue;
    int r = parse_nonneg(get(rank_vars[i][0], arg));
    if (r < 0) continue;
    *rank = r;
    /* the size that goes with the rank's own variable, else any the launcher set */
    *size = parse_nonneg(get(rank_vars[i][1], arg));
    for (int k = 0; k < n && *size < 0; k++) *size = parse_nonneg(get(rank_vars[k][1], arg));
    return 0;
  }
  return -1;
}

static const char *get_env(const char *key, void *arg) {
  (void)arg;
  return getenv(key);
}

volatile int mana_init_done;

/* The agent socket: this node's agent's when there is one (MANA_ENV_NODE_SOCK). */
static const char *agent_sock(void) {
  const char *node = getenv(MANA_ENV_NODE_SOCK);
  return node && *node ? node : getenv(MANA_ENV_AGENT_SOCK);
}

/* 1 when the environment makes libmana active: an agent socket and, in an MPI job, a rank. */
static int env_says_enabled(int *rank, int *size) {
  const char *sock = agent_sock();
  if (!sock || !*sock) return 0;
  const char *mpi = getenv(MANA_ENV_MPI_JOB);
  if (mpi && strcmp(mpi, "1") == 0 && mana_mpi_rank_from(get_env, NULL, rank, size) != 0)
    return 0; /* a launcher or one of its daemons: inert, and the environment stays for the ranks */
  return 1;
}

int mana_will_be_enabled(void) {
  int rank = -1, size = -1;
  return env_says_enabled(&rank, &size);
}

static void mana_init_body(void);

__attribute__((constructor)) static void mana_init(void) {
  mana_init_body();
  __atomic_store_n(&mana_init_done, 1, __ATOMIC_RELEASE);
}

static void mana_init_body(void) {
  int rank = -1, size = -1;
  if (!env_says_enabled(&rank, &size)) return;
  const char *sock = agent_sock();
  if (strlen(sock) >= sizeof mana_cfg.sock_path) {
    fprintf(stderr, "mana: the agent socket path %s is too long; running without checkpoints\n", sock);
    return;
  }
  strcpy(mana_cfg.sock_path, sock);
  const char *id = getenv(MANA_ENV_PROC_ID);
  mana_cfg.proc_id = id ? atoi(id) : 0;
  if (rank >= 0) {
    mana_cfg.proc_id = rank; /* one MANA_PROC_ID reaches every rank: the rank is the id */
    mana_cfg.mpi_rank = rank;
    mana_cfg.mpi_size = size;
  }
  const char *sig = getenv(MANA_ENV_CKPT_SIGNAL);
  if (sig && *sig) {
    int s = atoi(sig);
    if (s > 0 && s < 65 && s != SIGKILL && s != SIGSTOP) mana_cfg.ckpt_signal = s;
  }
  /* Threads that write an image (the checkpoint thread included) and whether raw data goes
   * around the page cache: docs/decisions.md has the measurements behind the defaults. */
  const char *wt = getenv("MANA_WRITE_THREADS");
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  mana_cfg.write_threads = wt && *wt ? atoi(wt) : (ncpu >= 2 ? 2 : 1);
  if (mana_cfg.write_threads < 1) mana_cfg.write_threads = 1;
  const char *direct = getenv("MANA_WRITE_DIRECT");
  mana_cfg.write_direct = !(direct && strcmp(direct, "0") == 0);
  const char *stats = getenv("MANA_WRITE_STATS");
  mana_cfg.write_stats = stats && strcmp(stats, "1") == 0;
  const char *hold = getenv("MANA_TEST_WRITE_HOLD_MS");
  mana_cfg.test_write_hold_ms = hold ? atoi(hold) : 0;
  const char *drop = getenv(MANA_ENV_DROP_FDS);
  mana_cfg.drop_fds = drop && strcmp(drop, "1") == 0;
  unsetenv(MANA_ENV_DROP_FDS);
  unsetenv(MANA_ENV_AGENT_SOCK);
  unsetenv(MANA_ENV_NODE_SOCK); /* node-local: stale in an image restarted elsewhere */
  unsetenv(MANA_ENV_PROC_ID);
  drop_from_preload();
  mana_record_inherited();

  mana_tid_offset = find_tid_offset();
  dl_iterate_phdr(find_rw, (void *)(uintptr_t)&mana_cfg);

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = mana_park_handler;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigfillset(&sa.sa_mask);
  if (mana_real_sigaction(mana_cfg.ckpt_signal, &sa, NULL) != 0) {
    fprintf(stderr, "mana: cannot install the checkpoint signal handler (%s); running without "
                    "checkpoints\n", strerror(errno));
    return;
  }
  mana_cfg.enabled = 1;
  pthread_atfork(NULL, NULL, atfork_child);

  /* the new thread inherits this mask: it must never take the park signal or app signals */
  sigset_t all, old;
  sigfillset(&all);
  mana_real_sigmask(SIG_SETMASK, &all, &old);
  pthread_t th;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  int rc = pthread_create(&th, &attr, ckpt_thread_start, NULL);
  pthread_attr_destroy(&attr);
  mana_real_sigmask(SIG_SETMASK, &old, NULL);
  if (rc != 0) {
    fprintf(stderr, "mana: cannot create the checkpoint thread (%s); running without "
                    "checkpoints\n", strerror(rc));
    mana_cfg.enabled = 0;
  }
}
