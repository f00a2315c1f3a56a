/* fds.c — the open file descriptors: regular files are reopened by path at restart, the
 * standard streams are rebound to the restarting terminal, everything else is listed as
 * skipped so that `mana inspect` can say what was not restored. */
#include <dirent.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"
#include "rawsys.h"

static char dents[16384];
static char linkbuf[4096];

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
      if (fd == dfd || fd == mana_sock_fd) continue;
      struct stat st;
      if (fstat(fd, &st) != 0) continue;
      if (have_img && st.st_dev == img.st_dev && st.st_ino == img.st_ino) continue;
      char name[32];
      struct mana_fmt f;
      mana_fmt_init(&f, name, sizeof name);
      mana_fmt_str(&f, "/proc/self/fd/");
      mana_fmt_u64(&f, (uint64_t)fd);
      ssize_t ln = readlink(name, linkbuf, sizeof linkbuf - 1);
      linkbuf[ln > 0 ? ln : 0] = 0;
      struct mana_img_fd r;
      memset(&r, 0, sizeof r);
      r.fd = fd;
      r.flags = (uint32_t)fcntl(fd, F_GETFL);
      r.fd_flags = (uint32_t)fcntl(fd, F_GETFD);
      r.mode = st.st_mode;
      r.size = (uint64_t)st.st_size;
      if (fd <= 2) {
        r.kind = MANA_FD_STD;
      } else if (S_ISREG(st.st_mode)) {
        size_t l = mana_strlen(linkbuf);
        int deleted = l > 10 && mana_streq(linkbuf + l - 10, " (deleted)");
        r.kind = deleted ? MANA_FD_DELETED : MANA_FD_REGULAR;
        off_t pos = lseek(fd, 0, SEEK_CUR);
        r.offset = pos < 0 ? 0 : (uint64_t)pos;
      } else {
        r.kind = MANA_FD_SKIPPED;
      }
      if (mana_imgw_add_fd(w, &r, linkbuf, err) != 0) rc = -1;
    }
    if (rc) break;
  }
  raw_syscall1(SYS_close, dfd);
  return rc;
}
