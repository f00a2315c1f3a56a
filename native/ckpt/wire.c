/* wire.c — the checkpoint thread: talks mana_wire.h to the agent and drives park, write,
 * resume, and the reconnection after a restart. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "mana_ctx.h"
#include "mana_wire.h"
#include "rawsys.h"

#define RESTARTED 2

static int suspended;
static int presuspended; /* the plugins' presuspend ran this round: resume(0) is owed */

extern void *__curbrk; /* glibc's cached program break (exported by libc.so.6) */

static char rx[MANA_WIRE_MAX_PAYLOAD + 1];
static char tx[4096];
static char line[1024];
static uint64_t last_progress;
static uint64_t progress_total;

static void say(const char *s) {
  /* stderr via write(2): stdio may be locked by a parked thread */
  size_t n = mana_strlen(s);
  while (n) {
    ssize_t w = write(2, s, n);
    if (w <= 0) break;
    s += w;
    n -= (size_t)w;
  }
}

static int write_all(int fd, const void *p, size_t n) {
  const char *c = p;
  while (n) {
    ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    c += w;
    n -= (size_t)w;
  }
  return 0;
}

static int read_all(int fd, void *p, size_t n) {
  char *c = p;
  while (n) {
    ssize_t r = read(fd, c, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    c += r;
    n -= (size_t)r;
  }
  return 0;
}

/* Application threads send too (mana_checkpoint): one sender at a time, so that messages
 * never interleave. An application thread holds the lock only with every signal blocked, so
 * it is never parked while holding it. */
static volatile int send_lock;

static int send_msg(int type, const char *payload) {
  struct mana_wire_header h = {MANA_WIRE_MAGIC, MANA_WIRE_VERSION, (uint16_t)type,
                               (uint32_t)mana_strlen(payload), 0};
  if (mana_sock_fd < 0) return -1;
  while (__atomic_exchange_n(&send_lock, 1, __ATOMIC_ACQUIRE)) {
    struct timespec ts = {0, 100000};
    raw_syscall2(SYS_nanosleep, &ts, 0);
  }
  int rc = write_all(mana_sock_fd, &h, sizeof h);
  if (rc == 0) rc = write_all(mana_sock_fd, payload, h.payload_len);
  __atomic_store_n(&send_lock, 0, __ATOMIC_RELEASE);
  return rc;
}

int mana_send_from_app(int type, const char *payload) {
  sigset_t all, old;
  sigfillset(&all);
  mana_real_sigmask(SIG_BLOCK, &all, &old);
  int rc = send_msg(type, payload);
  mana_real_sigmask(SIG_SETMASK, &old, NULL);
  return rc;
}

/* The end of a checkpoint round (resumed, refused, or the agent gone): threads may enter
 * mana_disable_ckpt sections again. */
static void round_over(void) {
  suspended = 0;
  __atomic_store_n(&mana_api_gate, 0, __ATOMIC_SEQ_CST);
}

/* Before parking: wait while the application has checkpoints disabled. Gives up (-1) as soon
 * as the agent sends anything, which means the coordinator abandoned the round (its phase
 * timeout bounds the wait); the message stays unread for the main loop. */
static int wait_enabled(void) {
  __atomic_store_n(&mana_api_gate, 1, __ATOMIC_SEQ_CST);
  while (__atomic_load_n(&mana_api_disabled, __ATOMIC_SEQ_CST) > 0) {
    struct pollfd pfd = {mana_sock_fd, POLLIN, 0};
    if (poll(&pfd, 1, 1) > 0) return -1;
  }
  return 0;
}

/* Returns the message type, or -1 when the agent went away or spoke garbage. */
static int recv_msg(void) {
  struct mana_wire_header h;
  if (read_all(mana_sock_fd, &h, sizeof h) != 0) return -1;
  if (h.magic != MANA_WIRE_MAGIC || h.payload_len > MANA_WIRE_MAX_PAYLOAD) return -1;
  if (read_all(mana_sock_fd, rx, h.payload_len) != 0) return -1;
  rx[h.payload_len] = 0;
  return h.type;
}

/* Copies the value of key from the received payload; "" when absent. */
static const char *kv(const char *key, char *out, size_t cap) {
  size_t kl = mana_strlen(key);
  out[0] = 0;
  for (const char *p = rx; *p;) {
    const char *e = p;
    while (*e && *e != '\n') e++;
    if ((size_t)(e - p) > kl && mana_strneq(p, key, kl) && p[kl] == '=') {
      size_t n = (size_t)(e - p) - kl - 1;
      if (n >= cap) n = cap - 1;
      memcpy(out, p + kl + 1, n);
      out[n] = 0;
      break;
    }
    p = *e ? e + 1 : e;
  }
  return out;
}

static uint64_t kv_u64(const char *key) {
  char v[32];
  uint64_t x = 0;
  mana_parse_u64(kv(key, v, sizeof v), NULL, &x, 10);
  return x;
}

static int connect_agent(int quiet_fail) {
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  if (mana_strlen(mana_cfg.sock_path) >= sizeof sa.sun_path) {
    errno = ENAMETOOLONG;
  } else {
    mana_img_strlcpy(sa.sun_path, mana_cfg.sock_path, sizeof sa.sun_path);
    for (int i = 0; i < 40; i++) {
      int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (fd < 0) break;
      if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
        mana_sock_fd = fd;
        return 0;
      }
      int e = errno;
      close(fd);
      errno = e;
      mana_msleep(50);
    }
  }
  if (!quiet_fail) {
    struct mana_fmt f;
    mana_fmt_init(&f, line, sizeof line);
    mana_fmt_str(&f, "mana: cannot reach the agent at ");
    mana_fmt_str(&f, mana_cfg.sock_path);
    mana_fmt_str(&f, " (");
    mana_fmt_str(&f, errno == ENOENT ? "no such socket" : errno == ECONNREFUSED ? "connection refused"
                 : errno == EACCES ? "permission denied" : "connect failed, errno ");
    if (errno != ENOENT && errno != ECONNREFUSED && errno != EACCES) mana_fmt_u64(&f, (uint64_t)errno);
    mana_fmt_str(&f, "); running without checkpoints\n");
    say(line);
  }
  return -1;
}

static int send_hello(int restarted, uint64_t generation) {
  struct utsname u;
  struct mana_fmt f;
  mana_fmt_init(&f, tx, sizeof tx);
  fmt_kv_u64(&f, "proc_id", (uint64_t)mana_cfg.proc_id);
  fmt_kv_u64(&f, "pid", (uint64_t)raw_getpid());
  fmt_kv_str(&f, "host", uname(&u) == 0 ? u.nodename : "");
  fmt_kv_u64(&f, "restarted", (uint64_t)restarted);
  fmt_kv_u64(&f, "generation", generation);
  if (mana_cfg.mpi_rank >= 0) {
    fmt_kv_u64(&f, "mpi_rank", (uint64_t)mana_cfg.mpi_rank);
    if (mana_cfg.mpi_size >= 0) fmt_kv_u64(&f, "mpi_size", (uint64_t)mana_cfg.mpi_size);
  }
  return send_msg(MANA_MSG_HELLO, tx);
}

static void progress_cb(void *arg, uint64_t raw_done, uint64_t stored_done) {
  (void)arg;
  /* test-only (test/mpi-failpaths.test.ts): a write held open, part of the image on disk */
  int hold = mana_cfg.test_write_hold_ms > 0 && last_progress == 0 && raw_done > 0;
  if (!hold && raw_done - last_progress < (64ull << 20)) return;
  last_progress = raw_done;
  struct mana_fmt f;
  char buf[256];
  mana_fmt_init(&f, buf, sizeof buf);
  fmt_kv_u64(&f, "raw_done", raw_done);
  fmt_kv_u64(&f, "stored_done", stored_done);
  fmt_kv_u64(&f, "raw_total", progress_total);
  send_msg(MANA_MSG_PROGRESS, buf);
  if (hold) {
    say("mana: test hook MANA_TEST_WRITE_HOLD_MS: holding the image write\n");
    mana_msleep(mana_cfg.test_write_hold_ms);
  }
}

void mana_set_progress_total(uint64_t total) { progress_total = total; }
void (*mana_progress_fn(void))(void *, uint64_t, uint64_t) { return progress_cb; }

/* Lookup in the restart environment ("K=V\0K=V\0\0"). */
static const char *restart_env_get(const char *key, void *arg) {
  (void)arg;
  size_t kl = mana_strlen(key);
  for (const char *p = mana_restart_info.env; *p; p += mana_strlen(p) + 1)
    if (mana_strneq(p, key, kl) && p[kl] == '=') return p + kl + 1;
  return NULL;
}

/* The restored checkpoint thread takes over from the restore program: it waits until every
 * application thread has left restorer code, removes the restorer, and rejoins an agent. */
static __attribute__((noinline)) void restart_path(void) {
  mana_fix_kernel_state(&mana_ckpt_slot);
  mana_ckpt_tid = mana_ckpt_slot.tid;
  mana_sock_fd = -1; /* the old socket was not restored; its number may be an app fd now */
  int want = mana_nslots + mana_pool_n; /* the writer's helpers count themselves too */
  while ((int)__atomic_load_n(&mana_restart_info.threads_out, __ATOMIC_ACQUIRE) < want) {
    struct timespec ts = {0, 500000};
    raw_syscall2(SYS_nanosleep, &ts, 0);
  }
  mana_pool_reset();
  for (uint32_t i = 0; i < mana_restart_info.n_unmap && i < MANA_RESTART_MAX_UNMAP; i++)
    raw_syscall2(SYS_munmap, mana_restart_info.unmap[i][0],
                 mana_restart_info.unmap[i][1] - mana_restart_info.unmap[i][0]);
  if (mana_restart_info.brk_guard) {
    raw_syscall6(SYS_mmap, mana_restart_info.brk_guard, 4096, PROT_NONE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    /* glibc's sbrk trusts its cached break: left stale, a kernel break that happens to lie
     * above it would look like a successful sbrk of memory that is not there */
    __curbrk = (void *)raw_syscall1(SYS_brk, 0);
  }
  /* the new launcher's fds (PMI), not the first one's: before any fd of ours is opened */
  mana_record_inherited();
  mana_recreate_deleted(); /* before any new fd (the agent socket) can take its number */
  mana_sigstate_restore_process();
  /* the restart environment, never the restored environ */
  for (const char *p = mana_restart_info.env; *p; p += mana_strlen(p) + 1) {
    if (mana_strneq(p, "MANA_AGENT_SOCK=", 16))
      mana_img_strlcpy(mana_cfg.sock_path, p + 16, sizeof mana_cfg.sock_path);
    else if (mana_strneq(p, "MANA_DROP_FDS=", 14))
      mana_cfg.drop_fds = mana_streq(p + 14, "1"); /* absent: the launch's setting stays */
    else if (mana_strneq(p, "MANA_PROC_ID=", 13)) {
      uint64_t id;
      if (mana_parse_u64(p + 13, NULL, &id, 10) == 0) mana_cfg.proc_id = (int)id;
    }
  }
  const char *node_sock = restart_env_get(MANA_ENV_NODE_SOCK, NULL);
  if (node_sock && *node_sock) mana_img_strlcpy(mana_cfg.sock_path, node_sock, sizeof mana_cfg.sock_path);
  /* restarted by an MPI launcher: the rank it gave the restore program is the id */
  const char *mpi = restart_env_get("MANA_MPI_JOB", NULL);
  int rank, size;
  if (mpi && mana_streq(mpi, "1") && mana_mpi_rank_from(restart_env_get, NULL, &rank, &size) == 0) {
    mana_cfg.proc_id = rank;
    mana_cfg.mpi_rank = rank;
    mana_cfg.mpi_size = size;
  }
}

static void exit_now(int status) {
  raw_syscall1(SYS_exit_group, status);
  for (;;) {
  }
}

static __attribute__((noinline)) int do_write(const char *path, int compress, uint64_t gen,
                                              const char *parent, char *err, size_t errlen,
                                              struct mana_img_header *hdr) {
  mana_fill_self_slot(&mana_ckpt_slot);
  if (mana_ctx_save(&mana_ckpt_slot.ctx) == 0)
    return mana_write_image(path, compress, gen, parent, err, errlen, hdr);
  restart_path();
  return RESTARTED;
}

static void handle_write(void) {
  static char path[4096], parent[4096], err[MANA_IMG_ERRLEN], gen_s[32];
  static struct mana_img_header hdr;
  struct mana_fmt f;
  mana_fmt_init(&f, tx, sizeof tx);
  kv("path", path, sizeof path);
  kv("parent", parent, sizeof parent); /* "" (absent): a full image */
  if (!suspended) {
    fmt_kv_str(&f, "error", "WRITE before SUSPEND");
    send_msg(MANA_MSG_WRITTEN, tx);
    return;
  }
  uint64_t gen = kv_u64("generation");
  (void)gen_s;
  int compress = (int)kv_u64("compress");
  last_progress = 0;
  uint64_t t0 = mana_now_ns(CLOCK_MONOTONIC);
  err[0] = 0;
  int rc = do_write(path, compress, gen, parent, err, sizeof err, &hdr);
  if (rc == RESTARTED) {
    presuspended = 0; /* resume(1) replaces this round's resume(0) */
    /* we are now the restored process: the plugins rebuild what was left out (a lower half,
     * its threads) from the new environment, before anything else */
    if (mana_plugins_restart(err, sizeof err) != 0) {
      /* one write: the ranks of a job share a stderr, and their lines must not interleave */
      static char line[sizeof err + 32];
      struct mana_fmt f;
      mana_fmt_init(&f, line, sizeof line);
      mana_fmt_str(&f, "mana restart: ");
      mana_fmt_str(&f, err);
      mana_fmt_str(&f, "\n");
      say(line);
      exit_now(71); /* not exit(): atexit handlers and stdio may block on a parked thread */
    }
    /* rejoin an agent and wait for RESUME */
    if (connect_agent(0) != 0) {
      /* nobody will ever resume us: let the application run unmanaged */
      mana_plugins_resume(1);
      mana_unpark_all();
      round_over();
      mana_cfg.enabled = 0;
      return;
    }
    send_hello(1, mana_restart_info.generation);
    for (;;) {
      int t = recv_msg();
      if (t < 0) {
        say("mana: the agent closed the connection before RESUME after restart; resuming "
            "without checkpoints\n");
        mana_plugins_resume(1);
        mana_unpark_all();
        round_over();
        mana_cfg.enabled = 0;
        return;
      }
      if (t == MANA_MSG_RESUME) break;
      if (t == MANA_MSG_SUSPEND) send_msg(MANA_MSG_SUSPENDED, "ok=1\n"); /* already parked */
      if (t == MANA_MSG_WRITE) send_msg(MANA_MSG_WRITTEN, "error=WRITE before RESUME after restart\n");
    }
    mana_plugins_resume(1);
    mana_unpark_all();
    round_over(); /* the gate was set when the image was written */
    send_msg(MANA_MSG_RESUMED, "");
    return;
  }
  if (rc != 0) {
    fmt_kv_str(&f, "error", err[0] ? err : "image write failed");
  } else {
    fmt_kv_u64(&f, "ok", 1);
    fmt_kv_u64(&f, "raw_bytes", hdr.raw_bytes);
    fmt_kv_u64(&f, "stored_bytes", hdr.stored_bytes);
    fmt_kv_u64(&f, "file_size", hdr.file_size);
    fmt_kv_u64(&f, "millis", (mana_now_ns(CLOCK_MONOTONIC) - t0) / 1000000ull);
  }
  send_msg(MANA_MSG_WRITTEN, tx);
}

void *mana_ckpt_thread_main(void *arg) {
  (void)arg;
  mana_ckpt_tid = raw_gettid();
  if (connect_agent(0) != 0) {
    mana_cfg.enabled = 0;
    return NULL;
  }
  send_hello(0, 0);
  /* Nothing is parked before the first SUSPEND, which this thread reads only after this:
   * the only moment at which creating threads is safe. */
  mana_pool_start(mana_cfg.write_threads);
  for (;;) {
    int t = recv_msg();
    if (t < 0) break;
    switch (t) {
      case MANA_MSG_SUSPEND: {
        static char err[512];
        struct mana_fmt f;
        mana_fmt_init(&f, tx, sizeof tx);
        mana_pool_started(); /* the park round skips the helpers by tid */
        if (suspended) {
          fmt_kv_u64(&f, "ok", 1);
          send_msg(MANA_MSG_SUSPENDED, tx);
          break;
        }
        if (presuspended) {
          /* the last round's RESUME never came: close it for the plugins first */
          mana_plugins_resume(0);
          presuspended = 0;
        }
        if (wait_enabled() != 0) {
          round_over();
          fmt_kv_str(&f, "error", "mana: the application has checkpoints disabled "
                     "(mana_disable_ckpt) and did not enable them before the coordinator's "
                     "phase timeout; shorten the critical section or raise --phase-timeout-ms");
          send_msg(MANA_MSG_SUSPENDED, tx);
          break;
        }
        /* the plugins' presuspend (an MPI drain: may take seconds and talk to other
         * processes while the application runs on), then the threads they keep out */
        presuspended = 1;
        if (mana_plugins_presuspend(err, sizeof err) != 0 ||
            mana_plugins_collect_tids(err, sizeof err) != 0) {
          /* nothing is parked; the agent's RESUME calls resume(0) of the plugins */
          round_over();
          fmt_kv_str(&f, "error", err);
        } else if (mana_park_all(err, sizeof err) == 0) {
          suspended = 1;
          fmt_kv_u64(&f, "ok", 1);
        } else {
          /* some threads are parked; the agent's RESUME releases them. A laggard's park
           * signal stays pending and arrives after RESUME: the handler recognises it by its
           * round tag (park.c) and drops it instead of calling the application's handler. */
          suspended = 1;
          fmt_kv_str(&f, "error", err);
        }
        send_msg(MANA_MSG_SUSPENDED, tx);
        break;
      }
      case MANA_MSG_WRITE:
        handle_write();
        if (!mana_cfg.enabled) return NULL;
        break;
      case MANA_MSG_RESUME:
        if (presuspended) mana_plugins_resume(0); /* before any application thread runs */
        presuspended = 0;
        if (suspended) mana_unpark_all();
        round_over();
        send_msg(MANA_MSG_RESUMED, "");
        break;
      case MANA_MSG_CKPT_REPLY: {
        char v[32];
        __atomic_store_n(&mana_api_reply_ok, mana_streq(kv("ok", v, sizeof v), "1"), __ATOMIC_RELEASE);
        __atomic_store_n(&mana_api_reply_seq, kv_u64("request"), __ATOMIC_RELEASE);
        break;
      }
      default:
        break; /* unknown messages are ignored: newer agents may send more */
    }
  }
  /* the agent went away: never leave the application parked */
  if (presuspended) mana_plugins_resume(0);
  presuspended = 0;
  if (suspended) mana_unpark_all();
  round_over();
  if (mana_sock_fd >= 0) close(mana_sock_fd);
  mana_sock_fd = -1;
  return NULL;
}
