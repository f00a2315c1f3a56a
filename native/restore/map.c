/* map.c — checks on the image, then the address space: vdso move, regions, fds, signal
 * actions and the kernel's view of the memory layout. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/prctl.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "mana_fmt.h"
#include "rawsys.h"
#include "restore.h"

static uint64_t cur_vvar, cur_vdso, cur_vdso_end; /* this process's [vvar] .. [vdso] */

static int overlaps(uint64_t a, uint64_t b, uint64_t c, uint64_t d) { return a < d && c < b; }

static int movable(const struct own_map *m) {
  return strcmp(m->name, "[stack]") == 0 || strcmp(m->name, "[vdso]") == 0 ||
         strcmp(m->name, "[vvar]") == 0 || strcmp(m->name, "[vvar_vclock]") == 0 ||
         strcmp(m->name, "[vsyscall]") == 0;
}

static const char *kind_name(uint32_t k) {
  static const char *n[] = {"anon", "file", "heap", "stack", "shared file", "shared anon", "guard"};
  return k < 7 ? n[k] : "?";
}

/* Inherited fds that mana_restore leaves open for the restored program: the ones listed in
 * MANA_KEEP_FDS (comma-separated) and PMI_FD, which MPI launchers pass (Hydra's PMI socket). */
static int keep_fds[64];
static const char *keep_src[64]; /* string literals: still mapped after the point of no return */
static int n_keep;

static void parse_keep_fds(void) {
  n_keep = 0;
  const char *vars[] = {"MANA_KEEP_FDS", "PMI_FD"};
  for (int v = 0; v < 2; v++) {
    const char *s = getenv(vars[v]);
    if (!s || !*s) continue;
    const char *p = s;
    while (*p) {
      char *end;
      errno = 0;
      long fd = strtol(p, &end, 10);
      if (end == p || errno || fd < 0 || fd > 0x7fffffff || (*end && *end != ','))
        die("%s=%s is not a comma-separated list of fd numbers", vars[v], s);
      if (v == 1 && *end) die("PMI_FD=%s is not an fd number", s);
      if (fd > 2) {
        if (n_keep >= (int)(sizeof keep_fds / sizeof keep_fds[0]))
          die("%s lists more than %d fds to keep", vars[v], (int)(sizeof keep_fds / sizeof keep_fds[0]));
        keep_src[n_keep] = v == 0 ? "MANA_KEEP_FDS" : "PMI_FD";
        keep_fds[n_keep++] = (int)fd;
      }
      p = *end ? end + 1 : end;
    }
  }
}

/* Also used after the point of no return, where the environment (on the old stack) is gone. */
static const char *kept_by(int fd) {
  const char *by = NULL;
  for (int i = 0; i < n_keep; i++)
    if (keep_fds[i] == fd) by = keep_src[i]; /* PMI_FD, parsed last, wins */
  return by;
}

static int fd_is_open(int fd) { return fcntl(fd, F_GETFD) >= 0; }

/* A restored fd must not take the number of an inherited fd kept for the launcher. */
static void check_fds(mana_img_reader *r) {
  parse_keep_fds();
  uint64_t nfds = mana_imgr_nfds(r);
  for (uint64_t i = 0; i < nfds; i++) {
    const struct mana_img_fd *f = mana_imgr_fd(r, i);
    const char *kept = kept_by(f->fd);
    if ((f->kind == MANA_FD_REGULAR || f->kind == MANA_FD_DEVICE ||
         f->kind == MANA_FD_DELETED_SAVED) && kept && fd_is_open(f->fd))
      die("fd %d (%s) of the image would replace inherited fd %d, which %s asks to keep for the "
          "launcher; restart with a launcher that uses another fd number", f->fd,
          mana_imgr_str(r, f->path_off), f->fd, kept);
  }
}

/* Once every check passed (so that a refusal stays one line): what will not be as it was,
 * one line each. Not printed by --check, whose caller runs the restart afterwards. */
void warn_before_restart(mana_img_reader *r) {
  if (check_only) return;
  struct utsname u;
  uname(&u);
  const char *kernel_then = mana_imgr_header(r)->info.kernel_release, *kernel_now = u.release;
  if (strcmp(kernel_then, kernel_now) != 0)
    warnx1("image was taken on kernel %s, this host runs %s (same vdso size: continuing)",
           kernel_then, kernel_now);
  uint64_t nfds = mana_imgr_nfds(r);
  for (uint64_t i = 0; i < nfds; i++) {
    const struct mana_img_fd *f = mana_imgr_fd(r, i);
    const char *p = mana_imgr_str(r, f->path_off);
    const char *kept = kept_by(f->fd);
    if (f->kind == MANA_FD_SKIPPED || f->kind == MANA_FD_DELETED) {
      if (kept && fd_is_open(f->fd))
        warnx1("fd %d (%s) was not restored; the program will find the launcher's fd %d "
               "(kept by %s) there instead", f->fd, p, f->fd, kept);
      else
        warnx1("fd %d (%s) was not restored; the program will get EBADF on it", f->fd, p);
    }
  }
}

void check_image(mana_img_reader *r) {
  const struct mana_img_header *h = mana_imgr_header(r);
  const struct mana_img_info *in = &h->info;
  read_own_maps();
  const struct own_map *vvar = own_map_named("[vvar]"), *vdso = own_map_named("[vdso]");
  if (!vdso) die("this process has no [vdso] mapping; cannot restart here");
  cur_vdso = vdso->start;
  cur_vdso_end = vdso->end;
  cur_vvar = vvar ? vvar->start : vdso->start;
  struct utsname u;
  uname(&u);
  uint64_t vsize = cur_vdso_end - cur_vdso;
  if (in->vdso_size != vsize || in->vdso_start - in->vvar_start != cur_vdso - cur_vvar)
    die("image was taken on kernel %s (vdso %llu bytes); this host runs %s (vdso %llu bytes); "
        "restart on a node with kernel %s",
        in->kernel_release, (unsigned long long)in->vdso_size, u.release,
        (unsigned long long)vsize, in->kernel_release);

  uint64_t nthreads = mana_imgr_nthreads(r), nmain = 0, nckpt = 0;
  for (uint64_t i = 0; i < nthreads; i++) {
    const struct mana_img_thread *t = mana_imgr_thread(r, i);
    nmain += !!(t->flags & MANA_TF_MAIN);
    nckpt += !!(t->flags & MANA_TF_CKPT);
  }
  if (nckpt != 1 || nthreads < 2)
    die("image %s has %llu threads and %llu checkpoint threads; it was not written by libmana",
        image_path, (unsigned long long)nthreads, (unsigned long long)nckpt);
  if (nthreads > 1024) die("image has %llu threads; at most 1024 are supported",
                           (unsigned long long)nthreads);

  uint64_t n = mana_imgr_nregions(r);
  int info_ok = 0;
  for (uint64_t i = 0; i < n; i++) {
    const struct mana_img_region *g = mana_imgr_region(r, i);
    if (overlaps(g->start, g->end, RESERVED_START, RESERVED_END))
      die("image region %#llx-%#llx (%s) lies in [%#llx, %#llx), which mana_restore reserves "
          "for itself; this image cannot be restarted by this mana_restore",
          (unsigned long long)g->start, (unsigned long long)g->end, kind_name(g->kind),
          RESERVED_START, RESERVED_END);
    for (int k = 0; k < n_own_maps; k++)
      if (!movable(&own_maps[k]) && overlaps(g->start, g->end, own_maps[k].start, own_maps[k].end))
        die("image region %#llx-%#llx (%s) overlaps mana_restore's mapping %#llx-%#llx %s; "
            "cannot restart this image",
            (unsigned long long)g->start, (unsigned long long)g->end, kind_name(g->kind),
            (unsigned long long)own_maps[k].start, (unsigned long long)own_maps[k].end,
            own_maps[k].name);
    if (overlaps(g->start, g->end, in->vvar_start, in->vdso_end))
      die("image region %#llx-%#llx overlaps the image's own vdso; the image is corrupt",
          (unsigned long long)g->start, (unsigned long long)g->end);
    if (g->kind == MANA_R_SHARED_FILE) {
      const char *p = mana_imgr_str(r, g->path_off);
      if (access(p, F_OK) != 0)
        die("file %s (shared mapping at %#llx) was mapped at checkpoint and is missing; "
            "restore it and retry", p, (unsigned long long)g->start);
    }
    if (in->restart_info_addr >= g->start &&
        in->restart_info_addr + sizeof(struct mana_restart_info) <= g->end &&
        (g->prot & PROT_WRITE))
      info_ok = 1;
  }
  if (!info_ok)
    die("the image's restart handoff area (%#llx) is not in a writable region; was the image "
        "written by libmana?", (unsigned long long)in->restart_info_addr);
  for (int k = 0; k < n_own_maps; k++)
    if (!movable(&own_maps[k]) &&
        overlaps(in->vvar_start, in->vdso_end, own_maps[k].start, own_maps[k].end))
      die("the image's vdso %#llx-%#llx overlaps mana_restore's mapping %#llx-%#llx; cannot "
          "restart this image", (unsigned long long)in->vvar_start,
          (unsigned long long)in->vdso_end, (unsigned long long)own_maps[k].start,
          (unsigned long long)own_maps[k].end);

  uint64_t nfds = mana_imgr_nfds(r);
  for (uint64_t i = 0; i < nfds; i++) {
    const struct mana_img_fd *f = mana_imgr_fd(r, i);
    if (f->kind != MANA_FD_REGULAR && f->kind != MANA_FD_DEVICE) continue;
    const char *p = mana_imgr_str(r, f->path_off);
    struct stat st;
    if (stat(p, &st) != 0 && !allow_missing_files)
      die("file %s (fd %d) was open at checkpoint and is missing; restore it, or pass "
          "--allow-missing-files to get /dev/null instead", p, f->fd);
  }
  check_fds(r);
  if (in->cwd[0] && chdir(in->cwd) != 0)
    die("working directory %s of the checkpointed process is missing (%s); create it and retry",
        in->cwd, strerror(errno));
}

static void move_one(uint64_t from, uint64_t len, uint64_t to, const char *what) {
  if (from == to) return;
  long p = raw_syscall5(SYS_mremap, from, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, to);
  if (p < 0) die_late(what, p);
}

/* vvar, vvar_vclock and vdso are separate mappings that must keep their relative layout:
 * glibc and the vdso find each other by fixed offsets. */
static void move_vdso(const struct mana_img_info *in) {
  uint64_t delta_to = in->vvar_start;
  uint64_t len = cur_vdso_end - cur_vvar;
  if (delta_to == cur_vvar) return;
  uint64_t via = cur_vvar;
  if (overlaps(cur_vvar, cur_vdso_end, delta_to, delta_to + len)) {
    for (int k = 0; k < n_own_maps; k++) {
      const struct own_map *m = &own_maps[k];
      if (m->start >= cur_vvar && m->end <= cur_vdso_end)
        move_one(m->start, m->end - m->start, VDSO_TEMP + (m->start - cur_vvar), "moving the vdso");
    }
    via = VDSO_TEMP;
  }
  for (int k = 0; k < n_own_maps; k++) {
    const struct own_map *m = &own_maps[k];
    if (m->start >= cur_vvar && m->end <= cur_vdso_end)
      move_one(via + (m->start - cur_vvar), m->end - m->start, delta_to + (m->start - cur_vvar),
               "moving the vdso");
  }
}

/* Maps region i and fills it from the image (chunk hashes checked as they are read).
 * Returns 0, or -1 with a one-line message in err and nothing of the region left mapped. */
static int map_region(mana_img_reader *r, uint64_t i, char err[MANA_IMG_ERRLEN]) {
  const struct mana_img_region *g = mana_imgr_region(r, i);
  uint64_t len = g->end - g->start;
  long p;
  char num[24];
  const char *what;
  if (g->kind == MANA_R_SHARED_FILE) {
    const char *path = mana_imgr_str(r, g->path_off);
    long fd = raw_syscall3(SYS_open, path, (g->prot & PROT_WRITE) ? O_RDWR : O_RDONLY, 0);
    if (fd < 0) {
      p = fd;
      what = "opening a shared file mapping";
      goto fail;
    }
    p = raw_syscall6(SYS_mmap, g->start, len, g->prot, MAP_SHARED | MAP_FIXED_NOREPLACE, fd,
                     g->file_offset);
    raw_syscall1(SYS_close, fd);
    what = "mapping a shared file";
    if (p < 0) goto fail;
    return 0;
  }
  if ((g->flags & MANA_RF_NO_DATA) || g->kind == MANA_R_GUARD) {
    p = raw_syscall6(SYS_mmap, g->start, len, PROT_NONE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE | MAP_NORESERVE, -1, 0);
    what = "mapping a guard region";
    if (p < 0) goto fail;
    return 0;
  }
  /* the main stack stays growable, as the kernel's [stack] was */
  int grows = g->kind == MANA_R_STACK ? MAP_GROWSDOWN : 0;
  p = raw_syscall6(SYS_mmap, g->start, len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE | grows, -1, 0);
  what = "mapping a region";
  if (p < 0) goto fail;
  if (mana_imgr_read_region(r, i, (void *)g->start, 0, err) != 0) {
    raw_syscall2(SYS_munmap, g->start, len);
    return -1;
  }
  if (g->prot != (PROT_READ | PROT_WRITE)) {
    p = raw_syscall3(SYS_mprotect, g->start, len, g->prot);
    what = "mprotect of a region";
    if (p < 0) {
      raw_syscall2(SYS_munmap, g->start, len);
      goto fail;
    }
  }
  return 0;
fail:;
  /* no stdio: this also runs after the point of no return */
  struct mana_fmt f;
  mana_fmt_init(&f, err, MANA_IMG_ERRLEN);
  mana_fmt_str(&f, what);
  mana_fmt_str(&f, " at ");
  mana_fmt_x64(&f, g->start);
  mana_fmt_str(&f, " failed: ");
  const char *d = strerrordesc_np((int)-p); /* a table lookup: no locale, no errno */
  mana_fmt_str(&f, d ? d : late_num(num, -p));
  return -1;
}

/* Per region: already mapped and filled before the point of no return. From bump_alloc, which
 * lives in the restorer's reserved range and so survives the switch. */
static unsigned char *prefilled;

void prefill_memory(mana_img_reader *r) {
  uint64_t n = mana_imgr_nregions(r);
  prefilled = bump_alloc.alloc(NULL, n ? n : 1);
  if (!prefilled) die("out of bookkeeping memory for %llu regions", (unsigned long long)n);
  memset(prefilled, 0, n ? n : 1);
  const struct own_map *st = own_map_named("[stack]");
  char err[MANA_IMG_ERRLEN];
  for (uint64_t i = 0; i < n; i++) {
    const struct mana_img_region *g = mana_imgr_region(r, i);
    /* These ranges are still ours: they are freed (stack) or moved (vdso) only after the point
     * of no return, so their regions are filled then. */
    if ((st && overlaps(g->start, g->end, st->start, st->end)) ||
        overlaps(g->start, g->end, cur_vvar, cur_vdso_end))
      continue;
    if (map_region(r, i, err) != 0) {
      for (uint64_t k = 0; k < i; k++)
        if (prefilled[k]) {
          const struct mana_img_region *m = mana_imgr_region(r, k);
          raw_syscall2(SYS_munmap, m->start, m->end - m->start);
        }
      die("%s", strncmp(err, "mana: ", 6) == 0 ? err + 6 : err);
    }
    prefilled[i] = 1;
  }
}

void restore_memory(mana_img_reader *r) {
  const struct mana_img_info *in = &mana_imgr_header(r)->info;
  uint64_t all = ~0ull;
  raw_syscall4(SYS_rt_sigprocmask, SIG_SETMASK, &all, 0, 8);
  const struct own_map *st = own_map_named("[stack]");
  if (st) raw_syscall2(SYS_munmap, st->start, st->end - st->start);
  move_vdso(in);
  char err[MANA_IMG_ERRLEN];
  uint64_t n = mana_imgr_nregions(r);
  for (uint64_t i = 0; i < n; i++)
    if (!prefilled[i] && map_region(r, i, err) != 0) die_late(err, 0);
}

static char dents[8192];

void restore_fds(mana_img_reader *r) {
  /* the reader's tables stay in the bump area after its fd is closed below */
  uint64_t nfds = mana_imgr_nfds(r);
  int dfd = (int)raw_syscall3(SYS_open, "/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
  if (dfd >= 0) {
    long n;
    while ((n = raw_syscall3(SYS_getdents64, dfd, dents, sizeof dents)) > 0) {
      for (long off = 0; off < n;) {
        struct dirent64 *d = (struct dirent64 *)(dents + off);
        off += d->d_reclen;
        int fd = atoi(d->d_name);
        if (d->d_name[0] < '0' || d->d_name[0] > '9' || fd <= 2 || fd == dfd) continue;
        if (kept_by(fd)) continue; /* the launcher's (check_fds made sure no fd is restored there) */
        raw_syscall1(SYS_close, fd); /* includes the image */
      }
    }
    raw_syscall1(SYS_close, dfd);
  }
  for (uint64_t i = 0; i < nfds; i++) {
    const struct mana_img_fd *f = mana_imgr_fd(r, i);
    if (f->kind != MANA_FD_REGULAR && f->kind != MANA_FD_DEVICE) continue;
    int flags = (int)f->flags & ~(O_CREAT | O_TRUNC | O_EXCL);
    const char *path = mana_imgr_str(r, f->path_off);
    long fd = raw_syscall3(SYS_open, path, flags, 0);
    if (fd < 0) {
      /* checked before the point of no return: missing only with --allow-missing-files, or
       * removed since */
      if (!allow_missing_files) {
        char num[24], e[24];
        const char *d = strerrordesc_np((int)-fd); /* a table lookup: no locale, no errno */
        warn_late("file ", path, " (fd ", late_num(num, f->fd), ") could not be reopened (",
                  d ? d : "errno ", d ? "" : late_num(e, -fd), "); using /dev/null", NULL);
      }
      fd = raw_syscall3(SYS_open, "/dev/null", O_RDWR, 0);
    }
    if (fd < 0) die_late("reopening a file", fd);
    if (fd != f->fd) {
      long rc = raw_syscall3(SYS_dup3, fd, f->fd, 0);
      if (rc < 0) die_late("dup3", rc);
      raw_syscall1(SYS_close, fd);
    }
    if (f->fd_flags & FD_CLOEXEC) raw_syscall3(SYS_fcntl, f->fd, F_SETFD, FD_CLOEXEC);
    raw_syscall3(SYS_lseek, f->fd, f->offset, SEEK_SET);
  }
}

void restore_process_state(mana_img_reader *r) {
  const struct mana_img_info *in = &mana_imgr_header(r)->info;
  for (int s = 1; s <= MANA_NSIG; s++) {
    if (s == SIGKILL || s == SIGSTOP) continue;
    raw_syscall4(SYS_rt_sigaction, s, &in->sigactions[s - 1], 0, 8);
  }
  umask((mode_t)in->umask);
}
