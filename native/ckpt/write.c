/* write.c — assembles one image while every application thread is parked: process facts,
 * threads, fds, then memory. No malloc or stdio here (see HARD RULE in docs/restart.md);
 * the image writer allocates with mmap. */
#include <fcntl.h>
#include <gnu/libc-version.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "rawsys.h"

void mana_set_progress_total(uint64_t total);
void (*mana_progress_fn(void))(void *, uint64_t, uint64_t);

static struct mana_img_info info;
static char statbuf[4096];
static int warned_tid;

static ssize_t read_file(const char *path, char *buf, size_t cap) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  size_t n = 0;
  while (n + 1 < cap) {
    ssize_t r = read(fd, buf + n, cap - 1 - n);
    if (r <= 0) break;
    n += (size_t)r;
  }
  close(fd);
  buf[n] = 0;
  return (ssize_t)n;
}

/* Fields of /proc/self/stat, counted from 1, after the parenthesised comm. */
static void stat_fields(void) {
  ssize_t n = read_file("/proc/self/stat", statbuf, sizeof statbuf);
  if (n <= 0) return;
  char *p = statbuf + n;
  while (p > statbuf && *p != ')') p--;
  if (*p != ')') return;
  p++;
  uint64_t v[64] = {0};
  int field = 2;
  while (*p && field < 63) {
    while (*p == ' ') p++;
    field++;
    const char *s = p;
    while (*p && *p != ' ') p++;
    if (*s == '-') continue;
    mana_parse_u64(s, NULL, &v[field], 10);
  }
  info.start_code = v[26];
  info.end_code = v[27];
  info.start_stack = v[28];
  info.start_data = v[45];
  info.end_data = v[46];
  info.brk_start = v[47];
  info.arg_start = v[48];
  info.arg_end = v[49];
  info.env_start = v[50];
  info.env_end = v[51];
}

static void fill_info(uint64_t generation) {
  memset(&info, 0, sizeof info);
  info.pid = (uint32_t)raw_getpid();
  info.proc_id = (uint32_t)mana_cfg.proc_id;
  info.generation = generation;
  info.created_unix_ns = mana_now_ns(CLOCK_REALTIME);
  struct utsname u;
  if (uname(&u) == 0) {
    mana_img_strlcpy(info.hostname, u.nodename, sizeof info.hostname);
    mana_img_strlcpy(info.kernel_release, u.release, sizeof info.kernel_release);
    mana_img_strlcpy(info.kernel_version, u.version, sizeof info.kernel_version);
  }
  mana_img_strlcpy(info.glibc_version, gnu_get_libc_version(), sizeof info.glibc_version);
  ssize_t n = readlink("/proc/self/exe", info.exe, sizeof info.exe - 1);
  info.exe[n > 0 ? n : 0] = 0;
  if (raw_syscall2(SYS_getcwd, info.cwd, sizeof info.cwd) < 0) info.cwd[0] = 0;
  n = read_file("/proc/self/cmdline", info.cmdline, sizeof info.cmdline);
  for (ssize_t i = 0; i + 1 < n; i++)
    if (!info.cmdline[i]) info.cmdline[i] = ' ';
  info.brk_cur = (uint64_t)raw_syscall1(SYS_brk, 0);
  stat_fields();
  info.restart_info_addr = (uint64_t)&mana_restart_info;
  info.ctx_version = 1;
  for (int s = 1; s <= MANA_NSIG; s++)
    raw_syscall4(SYS_rt_sigaction, s, 0, &info.sigactions[s - 1], 8);
  mode_t m = umask(0);
  umask(m);
  info.umask = m;
}

static void thread_rec(struct mana_img_thread *t, const struct park_slot *s, uint32_t flags) {
  memset(t, 0, sizeof *t);
  t->tid = (uint32_t)s->tid;
  t->flags = flags;
  t->fs_base = s->fs_base;
  t->tid_addr = s->tid_addr;
  t->sigmask = s->sigmask;
  t->ctx = s->ctx;
}

/* vvar/vdso addresses come from the maps scan (maps.c fills these) */
uint64_t mana_vvar_start, mana_vdso_start, mana_vdso_end;
uint64_t mana_raw_total(void);
void mana_release_copies(void);

static int write_image(const char *path, int compress, uint64_t generation, const char *parent,
                       char *err, struct mana_img_header *hdr);

int mana_write_image(const char *path, int compress, uint64_t generation, const char *parent,
                     char *err, size_t errlen, struct mana_img_header *hdr) {
  if (mana_tid_offset < 0 && !warned_tid) {
    static const char msg[] = "mana: warning: cannot locate glibc's cached thread id; "
                              "pthread_kill/raise may misbehave after restart\n";
    warned_tid = 1;
    if (write(2, msg, sizeof msg - 1) < 0) {
    }
  }
  /* before anything is written: a refusal leaves no partial image behind */
  if (mana_check_children(err, errlen) != 0) return -1;
  /* The helpers save their contexts now, before the memory map is read (pool.c). */
  mana_pool_begin();
  int rc = write_image(path, compress, generation, parent, err, hdr);
  mana_pool_end();
  return rc;
}

static void report_stats(const struct mana_img_write_stats *st) {
  char line[256];
  struct mana_fmt f;
  mana_fmt_init(&f, line, sizeof line);
  mana_fmt_str(&f, "mana: image written by ");
  mana_fmt_u64(&f, st->threads);
  mana_fmt_str(&f, " thread(s) in ");
  mana_fmt_u64(&f, st->wall_ns / 1000000);
  mana_fmt_str(&f, " ms: cpu ");
  mana_fmt_u64(&f, st->cpu_ns / 1000000);
  mana_fmt_str(&f, " ms, write ");
  mana_fmt_u64(&f, st->io_ns / 1000000);
  mana_fmt_str(&f, " ms (summed over threads), metadata+fsync ");
  mana_fmt_u64(&f, st->sync_ns / 1000000);
  mana_fmt_str(&f, " ms\n");
  if (write(2, line, f.len) < 0) {
  }
}

static int write_image(const char *path, int compress, uint64_t generation, const char *parent,
                       char *err, struct mana_img_header *hdr) {
  fill_info(generation);
  mana_plugins_collect_fds();
  mana_copy_deleted_fds(); /* new anonymous regions: before the memory map is read */
  uint64_t total = mana_raw_total(); /* also finds vvar/vdso */
  info.vvar_start = mana_vvar_start;
  info.vdso_start = mana_vdso_start;
  info.vdso_end = mana_vdso_end;
  info.vdso_size = mana_vdso_end - mana_vdso_start;
  mana_set_progress_total(total);

  struct mana_img_write_stats stats;
  struct mana_img_workers workers = {mana_pool_n + 1, mana_pool_run, NULL};
  struct mana_img_write_opts opts = {
      .compress_level = compress,
      .fsync = 1,
      .progress = mana_progress_fn(),
      .parent = parent,
      .stats = &stats,
      .workers = &workers,
      .direct = mana_cfg.write_direct,
  };
  mana_img_writer *w = NULL;
  if (mana_imgw_open(&w, path, &info, &opts, &mana_img_mmap_alloc, err) != 0) {
    mana_release_deleted();
    return -1;
  }
  struct mana_img_thread t;
  int n = mana_nslots;
  for (int i = 0; i < n; i++) {
    const struct park_slot *s = &mana_slots[i];
    if (s->state != SLOT_PARKED) continue;
    thread_rec(&t, s, s->tid == (int)info.pid ? MANA_TF_MAIN : 0);
    if (mana_imgw_add_thread(w, &t, err) != 0) goto fail;
  }
  thread_rec(&t, &mana_ckpt_slot, MANA_TF_CKPT);
  t.sigmask = ~0ull;
  if (mana_imgw_add_thread(w, &t, err) != 0) goto fail;
  for (int i = 0; i < mana_pool_n; i++) {
    thread_rec(&t, &mana_pool_slots[i], MANA_TF_HELPER);
    t.sigmask = ~0ull;
    if (mana_imgw_add_thread(w, &t, err) != 0) goto fail;
  }
  if (mana_add_fds(w, path, err) != 0) goto fail;
  mana_sigstate_save(); /* into libmana's data, which the regions below carry */
  if (mana_add_regions(w, err) != 0) goto fail;
  int rc = mana_imgw_close(w, hdr, err);
  mana_release_copies();
  mana_release_deleted();
  if (rc == 0 && mana_cfg.write_stats) report_stats(&stats);
  return rc;
fail:
  mana_imgw_abort(w);
  mana_release_copies();
  mana_release_deleted();
  return -1;
}
