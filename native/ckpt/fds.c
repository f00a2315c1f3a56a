/* fds.c — the open file descriptors: regular files are reopened by path at restart, the
 * standard streams are rebound to the restarting terminal, the harmless character devices
 * (/dev/null and friends) are reopened by path. Everything else (pipes, sockets, other
 * devices, eventfd/timerfd/signalfd/epoll, ...) cannot be rebuilt, so the checkpoint is
 * refused with one line naming the fd, unless the job was launched with
 * --drop-unrestorable-fds (MANA_DROP_FDS=1): then it is listed as SKIPPED and the restart
 * warns about it. Fds the program inherited at start (not its own) are skipped too. Also: the live-children check, which reads /proc the same way. */
#include <dirent.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"
#include "rawsys.h"

static char dents[16384];
static char linkbuf[4096];

/* linkbuf := the target of /proc/self/fd/FD ("" if unreadable); no malloc, threads may be parked */
static void read_fd_link(int fd) {
  char name[32];
  struct mana_fmt f;
  mana_fmt_init(&f, name, sizeof name);
  mana_fmt_str(&f, "/proc/self/fd/");
  mana_fmt_u64(&f, (uint64_t)fd);
  ssize_t ln = readlink(name, linkbuf, sizeof linkbuf - 1);
  linkbuf[ln > 0 ? ln : 0] = 0;
}

/* the kernel marks the link of an unlinked file with this suffix */
static int link_is_deleted(void) {
  size_t l = mana_strlen(linkbuf);
  return l > 10 && mana_streq(linkbuf + l - 10, " (deleted)");
}

/* Character devices whose path is the same on every Linux node and whose state is nothing
 * but the open flags: reopening them by path restores them exactly. */
static int stable_device(const char *path) {
  static const char *const ok[] = {"/dev/null", "/dev/zero", "/dev/full", "/dev/random",
                                   "/dev/urandom"};
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
    if (mana_streq(path, ok[i])) return 1;
  return 0;
}

/* What an fd that cannot be restored is, in words for the refusal ("a pipe"). */
static const char *unrestorable_what(const struct stat *st, const char *link) {
  if (S_ISREG(st->st_mode)) return "a file deleted while open (more than 32, or out of memory)";
  if (S_ISFIFO(st->st_mode)) return mana_strneq(link, "pipe:", 5) ? "a pipe" : "a FIFO";
  if (S_ISSOCK(st->st_mode)) return "a socket";
  if (S_ISCHR(st->st_mode)) return "a character device";
  if (S_ISBLK(st->st_mode)) return "a block device";
  if (mana_strneq(link, "anon_inode:", 11)) {
    const char *k = link + 11;
    if (mana_streq(k, "[eventfd]")) return "an eventfd";
    if (mana_streq(k, "[timerfd]")) return "a timerfd";
    if (mana_streq(k, "[signalfd]")) return "a signalfd";
    if (mana_streq(k, "[eventpoll]")) return "an epoll instance";
    if (mana_streq(k, "inotify")) return "an inotify instance";
    if (mana_streq(k, "[pidfd]")) return "a pidfd";
    return "an anonymous inode";
  }
  return NULL; /* directories and the rest: skipped silently, as before */
}

/* Pipes and sockets that leak into the program from its starter (a CI runner's or test
 * framework's pipe, make's jobserver, an MPI launcher's PMI socket) are not the program's own
 * state, and refusing every checkpoint because of them would help no one: they are skipped.
 * Recorded at load time and again in a restored process, where the launcher is a new one and
 * the fds open before the restored program runs again are the ones mana_restore kept for it
 * (its own are closed; the image's pipes and sockets were never restored). Raw syscalls and
 * static buffers: at a restart the application's threads are parked. */
void mana_record_inherited(void) {
  mana_ninherited = 0;
  int dfd = (int)raw_syscall3(SYS_open, "/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
  if (dfd < 0) return;
  long n;
  while ((n = raw_syscall3(SYS_getdents64, dfd, dents, sizeof dents)) > 0) {
    for (long off = 0; off < n && mana_ninherited < MANA_MAX_INHERITED;) {
      struct dirent64 *d = (struct dirent64 *)(dents + off);
      off += d->d_reclen;
      uint64_t v;
      if (mana_parse_u64(d->d_name, NULL, &v, 10) != 0) continue;
      int fd = (int)v;
      struct stat st;
      if (fd <= 2 || fd == dfd || raw_syscall2(SYS_fstat, fd, &st) != 0) continue;
      mana_inherited[mana_ninherited].fd = fd;
      mana_inherited[mana_ninherited].dev = st.st_dev;
      mana_inherited[mana_ninherited].ino = st.st_ino;
      mana_ninherited++;
    }
  }
  raw_syscall1(SYS_close, dfd);
}

static int inherited(int fd, const struct stat *st) {
  for (int i = 0; i < mana_ninherited; i++)
    if (mana_inherited[i].fd == fd && mana_inherited[i].dev == st->st_dev &&
        mana_inherited[i].ino == st->st_ino)
      return 1;
  return 0;
}

/* A file deleted while open exists only through its fds: its contents are copied into an
 * anonymous mapping, which the image carries like any memory, and the restored process
 * writes them into a new unlinked file (O_TMPFILE) at the same fd, offset and flags. */
#define MAX_DELETED 32
struct deleted_copy {
  int fd;
  int same_as;      /* index of an earlier fd of the same file (no copy of its own), or -1 */
  uint64_t dev, ino;
  uint32_t flags, fd_flags;
  uint64_t offset, size, addr, maplen;
  char dir[512];
};
static struct deleted_copy dcopies[MAX_DELETED];
static int ndeleted;

static int save_deleted(int fd, const struct stat *st, const char *link, uint32_t flags,
                        uint32_t fd_flags) {
  if (ndeleted >= MAX_DELETED) return -1;
  struct deleted_copy *d = &dcopies[ndeleted];
  memset(d, 0, sizeof *d);
  d->fd = fd;
  d->flags = flags;
  d->fd_flags = fd_flags;
  off_t pos = lseek(fd, 0, SEEK_CUR);
  d->offset = pos < 0 ? 0 : (uint64_t)pos;
  d->size = (uint64_t)st->st_size;
  d->dev = st->st_dev;
  d->ino = st->st_ino;
  d->same_as = -1;
  for (int i = 0; i < ndeleted; i++)
    if (dcopies[i].dev == d->dev && dcopies[i].ino == d->ino) d->same_as = i;
  if (d->same_as >= 0) { /* another fd of a file already copied: share it at restart */
    ndeleted++;
    return 0;
  }
  /* the directory it lived in: the link reads "/dir/name (deleted)" */
  size_t n = 0, slash = 0;
  for (; link[n] && n + 1 < sizeof d->dir; n++)
    if (link[n] == '/') slash = n;
  if (link[0] == '/') {
    memcpy(d->dir, link, slash ? slash : 1);
    d->dir[slash ? slash : 1] = 0;
  }
  if (d->size) {
    d->maplen = (d->size + 4095) & ~4095ull;
    long a = raw_syscall6(SYS_mmap, 0, d->maplen, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (a < 0) return -1;
    d->addr = (uint64_t)a;
    for (uint64_t done = 0; done < d->size;) {
      long r = raw_syscall4(SYS_pread64, fd, d->addr + done, d->size - done, done);
      if (r <= 0) break; /* unreadable (O_WRONLY): saved as zeros up to its size */
      done += (uint64_t)r;
    }
  }
  ndeleted++;
  return 0;
}

static const struct deleted_copy *copy_of(int fd) {
  for (int i = 0; i < ndeleted; i++)
    if (dcopies[i].fd == fd) return &dcopies[i];
  return NULL;
}

/* Before the memory map is read (the copies must be in it): every fd > 2 of a regular file
 * deleted while open. */
void mana_copy_deleted_fds(void) {
  ndeleted = 0;
  int dfd = (int)raw_syscall3(SYS_open, "/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
  if (dfd < 0) return;
  long n;
  while ((n = raw_syscall3(SYS_getdents64, dfd, dents, sizeof dents)) > 0) {
    for (long off = 0; off < n;) {
      struct dirent64 *d = (struct dirent64 *)(dents + off);
      off += d->d_reclen;
      uint64_t v;
      if (mana_parse_u64(d->d_name, NULL, &v, 10) != 0) continue;
      int fd = (int)v;
      struct stat st;
      if (fd <= 2 || fd == dfd || fd == mana_sock_fd || mana_plugin_fd_excluded(fd) || fstat(fd, &st) != 0 ||
          !S_ISREG(st.st_mode))
        continue;
      read_fd_link(fd);
      if (link_is_deleted())
        save_deleted(fd, &st, linkbuf, (uint32_t)fcntl(fd, F_GETFL), (uint32_t)fcntl(fd, F_GETFD));
    }
  }
  raw_syscall1(SYS_close, dfd);
}

void mana_release_deleted(void) {
  for (int i = 0; i < ndeleted; i++)
    if (dcopies[i].addr) raw_syscall2(SYS_munmap, dcopies[i].addr, dcopies[i].maplen);
  ndeleted = 0;
}

static int tmpfile_in(const char *dir) {
  return (int)raw_syscall3(SYS_open, dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
}

static void warn_deleted(int fd, const char *why) {
  char line[256];
  struct mana_fmt f;
  mana_fmt_init(&f, line, sizeof line);
  mana_fmt_str(&f, "mana: warning: could not recreate the deleted file of fd ");
  mana_fmt_u64(&f, (uint64_t)fd);
  mana_fmt_str(&f, " (");
  mana_fmt_str(&f, why);
  mana_fmt_str(&f, "); the program will get EBADF on it\n");
  raw_syscall3(SYS_write, 2, line, f.len);
}

void mana_recreate_deleted(void) {
  const char *tmp = "/tmp";
  for (const char *p = mana_restart_info.env; *p; p += mana_strlen(p) + 1)
    if (mana_strneq(p, "TMPDIR=", 7) && p[7]) tmp = p + 7;
  for (int i = 0; i < ndeleted; i++) {
    struct deleted_copy *d = &dcopies[i];
    int t;
    char path[48];
    struct mana_fmt f;
    if (d->same_as >= 0) {
      /* the same inode as an earlier fd (recreated above): open it again through that one */
      mana_fmt_init(&f, path, sizeof path);
      mana_fmt_str(&f, "/proc/self/fd/");
      mana_fmt_u64(&f, (uint64_t)dcopies[d->same_as].fd);
      t = (int)raw_syscall3(SYS_open, path, O_RDWR | O_CLOEXEC, 0);
      if (t < 0) t = (int)raw_syscall3(SYS_open, path, O_RDONLY | O_CLOEXEC, 0);
      if (t < 0) {
        warn_deleted(d->fd, "the fd it shared the file with was not recreated");
        continue;
      }
    } else {
      t = d->dir[0] ? tmpfile_in(d->dir) : -1;
      if (t < 0) t = tmpfile_in(tmp);
    }
    if (t < 0) {
      warn_deleted(d->fd, "O_TMPFILE failed in its directory and in $TMPDIR");
      continue;
    }
    int ok = 1;
    for (uint64_t done = 0; d->same_as < 0 && done < d->size && ok;) {
      long w = raw_syscall4(SYS_pwrite64, t, d->addr + done, d->size - done, done);
      if (w <= 0) ok = 0;
      else done += (uint64_t)w;
    }
    if (!ok) {
      raw_syscall1(SYS_close, t);
      warn_deleted(d->fd, "cannot write its contents");
      continue;
    }
    /* a second open file description of the same inode, with the program's own access mode
     * and flags (O_APPEND, O_RDONLY, ...) */
    mana_fmt_init(&f, path, sizeof path);
    mana_fmt_str(&f, "/proc/self/fd/");
    mana_fmt_u64(&f, (uint64_t)t);
    int fl = (int)d->flags & ~(O_CREAT | O_TRUNC | O_EXCL | O_TMPFILE | O_NOCTTY);
    int n = (int)raw_syscall3(SYS_open, path, fl | O_CLOEXEC, 0);
    raw_syscall1(SYS_close, t);
    if (n < 0) {
      warn_deleted(d->fd, "cannot reopen it with its flags");
      continue;
    }
    if (n != d->fd) {
      raw_syscall3(SYS_dup3, n, d->fd, (d->fd_flags & FD_CLOEXEC) ? O_CLOEXEC : 0);
      raw_syscall1(SYS_close, n);
    } else if (!(d->fd_flags & FD_CLOEXEC)) {
      raw_syscall3(SYS_fcntl, n, F_SETFD, 0);
    }
    raw_syscall3(SYS_lseek, d->fd, d->offset, SEEK_SET);
  }
  mana_release_deleted();
}

static void refuse(char *err, int fd, const char *what, const char *link) {
  struct mana_fmt f;
  mana_fmt_init(&f, err, MANA_IMG_ERRLEN);
  mana_fmt_str(&f, "mana: cannot checkpoint pid ");
  mana_fmt_u64(&f, (uint64_t)raw_getpid());
  mana_fmt_str(&f, ": fd ");
  mana_fmt_u64(&f, (uint64_t)fd);
  mana_fmt_str(&f, " is ");
  mana_fmt_str(&f, what);
  mana_fmt_str(&f, " (");
  mana_fmt_str_safe(&f, link);
  mana_fmt_str(&f, "); close it before checkpointing, or launch with --drop-unrestorable-fds");
}

int mana_add_fds(void *wp, const char *image_path, char *err) {
  mana_img_writer *w = wp;
  struct stat img;
  int have_img = stat(image_path, &img) == 0;
  int dfd = (int)raw_syscall3(SYS_open, "/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
  if (dfd < 0) {
    struct mana_fmt f;
    mana_fmt_init(&f, err, MANA_IMG_ERRLEN);
    mana_fmt_str(&f, "cannot open /proc/self/fd");
    return -1;
  }
  int rc = 0;
  for (;;) {
    long n = raw_syscall3(SYS_getdents64, dfd, dents, sizeof dents);
    if (n <= 0) break;
    for (long off = 0; off < n && rc == 0;) {
      struct dirent64 *d = (struct dirent64 *)(dents + off);
      off += d->d_reclen;
      uint64_t v;
      if (mana_parse_u64(d->d_name, NULL, &v, 10) != 0) continue;
      int fd = (int)v;
      /* a plugin's own fds (the MPI lower half's sockets) are neither saved nor refused */
      if (fd == dfd || fd == mana_sock_fd || mana_plugin_fd_excluded(fd)) continue;
      struct stat st;
      if (fstat(fd, &st) != 0) continue;
      if (have_img && st.st_dev == img.st_dev && st.st_ino == img.st_ino) continue;
      /* the last generation's image, read by an incremental write: a restart from this image
         would reopen it for the program, which never had it, and so would every image after */
      if (fd == mana_imgw_parent_fd(w)) continue;
      read_fd_link(fd);
      struct mana_img_fd r;
      memset(&r, 0, sizeof r);
      r.fd = fd;
      r.flags = (uint32_t)fcntl(fd, F_GETFL);
      r.fd_flags = (uint32_t)fcntl(fd, F_GETFD);
      r.mode = st.st_mode;
      r.size = (uint64_t)st.st_size;
      int deleted = 0;
      if (S_ISREG(st.st_mode)) {
        deleted = link_is_deleted();
      }
      if (fd <= 2) {
        r.kind = MANA_FD_STD;
      } else if (S_ISREG(st.st_mode) && !deleted) {
        r.kind = MANA_FD_REGULAR;
        off_t pos = lseek(fd, 0, SEEK_CUR);
        r.offset = pos < 0 ? 0 : (uint64_t)pos;
      } else if (S_ISCHR(st.st_mode) && stable_device(linkbuf)) {
        r.kind = MANA_FD_DEVICE;
      } else if (deleted && copy_of(fd)) {
        r.kind = MANA_FD_DELETED_SAVED;
        r.offset = copy_of(fd)->offset;
      } else {
        r.kind = deleted ? MANA_FD_DELETED : MANA_FD_SKIPPED;
        const char *what = unrestorable_what(&st, linkbuf);
        if (what && !mana_cfg.drop_fds && !inherited(fd, &st)) {
          refuse(err, fd, what, linkbuf);
          rc = -1;
          break;
        }
        /* an MPI rank's inherited pipes and sockets are its launcher's plumbing (PMI, output
           forwarding): the new launcher of a restart brings its own, so they are not even
           recorded (no restart warning for each) */
        if (what && mana_cfg.mpi_rank >= 0 && inherited(fd, &st)) continue;
      }
      if (mana_imgw_add_fd(w, &r, linkbuf, err) != 0) rc = -1;
    }
    if (rc) break;
  }
  raw_syscall1(SYS_close, dfd);
  return rc;
}

static char childbuf[4096];
static char commbuf[64];

static ssize_t slurp(const char *path, char *buf, size_t cap) {
  int fd = (int)raw_syscall3(SYS_open, path, O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0) return -1;
  ssize_t n = raw_syscall3(SYS_read, fd, buf, cap - 1);
  raw_syscall1(SYS_close, fd);
  buf[n > 0 ? n : 0] = 0;
  return n;
}

/* A child is a process the restored one could not wait for (its pid is gone, and the child
 * itself is not in the image), so a process with live children is refused until process trees
 * are supported. /proc/self/task/TID/children lists the children each thread forked. */
int mana_check_children(char *err, size_t errlen) {
  int dfd = (int)raw_syscall3(SYS_open, "/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
  if (dfd < 0) return 0; /* no /proc: nothing to say (the fd scan fails loudly anyway) */
  struct mana_fmt f;
  mana_fmt_init(&f, err, errlen);
  int nchild = 0;
  long n;
  while ((n = raw_syscall3(SYS_getdents64, dfd, dents, sizeof dents)) > 0) {
    for (long off = 0; off < n;) {
      struct dirent64 *d = (struct dirent64 *)(dents + off);
      off += d->d_reclen;
      if (d->d_name[0] < '0' || d->d_name[0] > '9') continue;
      uint64_t tid;
      /* children of a thread a plugin keeps out (a lower half's) are the plugin's business */
      if (mana_parse_u64(d->d_name, NULL, &tid, 10) == 0 && mana_plugin_tid_excluded((int)tid))
        continue;
      char path[64];
      struct mana_fmt p;
      mana_fmt_init(&p, path, sizeof path);
      mana_fmt_str(&p, "/proc/self/task/");
      mana_fmt_str(&p, d->d_name);
      mana_fmt_str(&p, "/children");
      if (slurp(path, childbuf, sizeof childbuf) <= 0) continue;
      for (const char *c = childbuf; *c;) {
        while (*c == ' ' || *c == '\n') c++;
        if (!*c) break;
        uint64_t pid;
        const char *e;
        if (mana_parse_u64(c, &e, &pid, 10) != 0 || e == c) break;
        c = e;
        if (nchild == 0) {
          mana_fmt_str(&f, "mana: cannot checkpoint pid ");
          mana_fmt_u64(&f, (uint64_t)raw_getpid());
          mana_fmt_str(&f, ": it has live child processes (");
        } else {
          mana_fmt_str(&f, ", ");
        }
        nchild++;
        if (nchild > 8) continue; /* counted, not named: the line stays readable */
        mana_fmt_str(&f, "pid ");
        mana_fmt_u64(&f, pid);
        mana_fmt_init(&p, path, sizeof path);
        mana_fmt_str(&p, "/proc/");
        mana_fmt_u64(&p, pid);
        mana_fmt_str(&p, "/comm");
        if (slurp(path, commbuf, sizeof commbuf) > 0) {
          for (char *q = commbuf; *q; q++)
            if (*q == '\n') *q = 0;
          mana_fmt_c(&f, ' ');
          mana_fmt_str_safe(&f, commbuf);
        }
      }
    }
  }
  raw_syscall1(SYS_close, dfd);
  if (nchild == 0) {
    err[0] = 0;
    return 0;
  }
  if (nchild > 8) {
    mana_fmt_str(&f, "... ");
    mana_fmt_u64(&f, (uint64_t)nchild);
    mana_fmt_str(&f, " in all");
  }
  mana_fmt_str(&f, "); process trees are not supported yet: checkpoint when the program has no "
                   "children running (e.g. exec or wait for them)");
  return -1;
}
