/* image_common.c — allocator, hashing, messages and I/O helpers shared by writer and reader.
 *
 * Nothing here may take a libc lock: the writer runs while other threads are parked in a
 * signal handler (one may hold the malloc lock), and the reader runs in the static restore
 * program before it has a usable heap. Hence the tiny formatter instead of snprintf and
 * strerrordesc_np (a table lookup) instead of strerror (locale, possibly malloc). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strerrordesc_np, when built outside native/Makefile */
#endif
#include "image_internal.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

/* ---------- allocator ---------- */

static size_t page_round(size_t n) {
  const size_t pg = 4096;
  if (n == 0) n = 1;
  return (n + pg - 1) & ~(pg - 1);
}

static void *mmap_alloc(void *ctx, size_t size) {
  (void)ctx;
  if (size > (SIZE_MAX >> 1)) return NULL;
  void *p = mmap(NULL, page_round(size), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                 -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

static void mmap_free(void *ctx, void *ptr, size_t size) {
  (void)ctx;
  if (ptr) munmap(ptr, page_round(size));
}

const struct mana_img_alloc mana_img_mmap_alloc = {mmap_alloc, mmap_free, NULL};

/* 16 bytes rather than 8 keep zstd's blocks as aligned as malloc's would be. */
#define ZPREFIX 16

static void *zstd_alloc(void *opaque, size_t size) {
  const struct mana_img_alloc *a = opaque;
  if (size > SIZE_MAX - ZPREFIX) return NULL;
  size_t total = size + ZPREFIX;
  unsigned char *p = a->alloc(a->ctx, total);
  if (!p) return NULL;
  memcpy(p, &total, sizeof total);
  return p + ZPREFIX;
}

static void zstd_free(void *opaque, void *ptr) {
  const struct mana_img_alloc *a = opaque;
  if (!ptr) return;
  unsigned char *p = (unsigned char *)ptr - ZPREFIX;
  size_t total;
  memcpy(&total, p, sizeof total);
  a->free(a->ctx, p, total);
}

ZSTD_customMem mana_img_zstd_mem(const struct mana_img_alloc *a) {
  ZSTD_customMem m = {zstd_alloc, zstd_free, (void *)a};
  return m;
}

int mana_vec_append(struct mana_vec *v, const struct mana_img_alloc *a, const void *src,
                    size_t n) {
  if (n > SIZE_MAX / 4 - v->len) return -1;
  if (v->len + n > v->cap) {
    size_t cap = v->cap ? v->cap : 4096;
    while (cap < v->len + n) cap *= 2;
    unsigned char *p = a->alloc(a->ctx, cap);
    if (!p) return -1;
    if (v->len) memcpy(p, v->p, v->len);
    if (v->p) a->free(a->ctx, v->p, v->cap);
    v->p = p;
    v->cap = cap;
  }
  if (n && src) memcpy(v->p + v->len, src, n);
  else if (n) memset(v->p + v->len, 0, n); /* src NULL: reserve n zero bytes */
  v->len += n;
  return 0;
}

void mana_vec_free(struct mana_vec *v, const struct mana_img_alloc *a) {
  if (v->p) a->free(a->ctx, v->p, v->cap);
  v->p = NULL;
  v->len = v->cap = 0;
}

/* ---------- hashing and zero detection ---------- */

uint64_t mana_img_hash(const void *p, size_t n) { return XXH3_64bits(p, n); }

uint64_t mana_img_hash_iov(const struct iovec *iov, int n) {
  XXH3_state_t st;
  XXH3_INITSTATE(&st);
  XXH3_64bits_reset(&st);
  for (int i = 0; i < n; i++) XXH3_64bits_update(&st, iov[i].iov_base, iov[i].iov_len);
  return XXH3_64bits_digest(&st);
}

uint64_t mana_img_header_hash(const struct mana_img_header *h) {
  return XXH3_64bits(h, offsetof(struct mana_img_header, header_hash));
}

/* Region memory has whatever effective type the application gave it. */
typedef uint64_t __attribute__((may_alias)) word_alias;

int mana_img_is_zero(const void *p, size_t n) {
  const unsigned char *b = p;
  size_t i = 0;
  /* Checking the first word alone settles most non-zero chunks without a loop. */
  if (n >= 8 && *(const word_alias *)b) return 0;
  /* Eight words per test: the OR-reduction vectorises and the branch is taken rarely. */
  for (; i + 64 <= n; i += 64) {
    const word_alias *w = (const word_alias *)(b + i);
    if (w[0] | w[1] | w[2] | w[3] | w[4] | w[5] | w[6] | w[7]) return 0;
  }
  for (; i < n; i++)
    if (b[i]) return 0;
  return 1;
}

/* ---------- names ---------- */

const char *mana_img_region_kind_name(uint32_t kind) {
  static const char *const names[] = {"anon",        "file",        "heap", "stack",
                                      "shared-file", "shared-anon", "guard"};
  return kind < sizeof names / sizeof names[0] ? names[kind] : "?";
}

const char *mana_img_fd_kind_name(uint32_t kind) {
  static const char *const names[] = {"regular", "std", "skipped", "deleted", "device", "deleted-saved"};
  return kind < sizeof names / sizeof names[0] ? names[kind] : "?";
}

/* ---------- string building (mana_fmt.h) ---------- */

void mana_fmt_init(struct mana_fmt *f, char *buf, size_t cap) {
  f->buf = buf;
  f->cap = cap;
  f->len = 0;
  if (cap) buf[0] = '\0';
}

void mana_fmt_c(struct mana_fmt *f, char c) {
  if (f->len + 1 >= f->cap) return;
  f->buf[f->len++] = c;
  f->buf[f->len] = '\0';
}

void mana_fmt_str(struct mana_fmt *f, const char *s) {
  for (; s && *s; s++) mana_fmt_c(f, *s);
}

void mana_fmt_str_safe(struct mana_fmt *f, const char *s) {
  if (!s) s = "(null)";
  for (; *s; s++) mana_fmt_c(f, (unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s);
}

void mana_fmt_u64(struct mana_fmt *f, uint64_t v) {
  char t[24];
  int n = 0;
  do {
    t[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  while (n) mana_fmt_c(f, t[--n]);
}

void mana_fmt_i64(struct mana_fmt *f, int64_t v) {
  if (v < 0) mana_fmt_c(f, '-');
  mana_fmt_u64(f, v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v);
}

void mana_fmt_x64(struct mana_fmt *f, uint64_t v) {
  char t[20];
  int n = 0;
  do {
    t[n++] = "0123456789abcdef"[v & 15];
    v >>= 4;
  } while (v);
  mana_fmt_str(f, "0x");
  while (n) mana_fmt_c(f, t[--n]);
}

size_t mana_img_strlcpy(char *dst, const char *src, size_t cap) {
  size_t n = 0;
  if (!cap) return 0;
  if (src)
    for (; n + 1 < cap && src[n]; n++) dst[n] = src[n];
  dst[n] = '\0';
  return n;
}

void mana_img_info_terminate(struct mana_img_info *in) {
  in->hostname[sizeof in->hostname - 1] = 0;
  in->kernel_release[sizeof in->kernel_release - 1] = 0;
  in->kernel_version[sizeof in->kernel_version - 1] = 0;
  in->glibc_version[sizeof in->glibc_version - 1] = 0;
  in->exe[sizeof in->exe - 1] = 0;
  in->cwd[sizeof in->cwd - 1] = 0;
  in->cmdline[sizeof in->cmdline - 1] = 0;
}

/* ---------- messages ---------- */

int mana_img_verr(char *err, const char *fmt, va_list ap) {
  if (!err) return -1;
  struct mana_fmt m;
  mana_fmt_init(&m, err, MANA_IMG_ERRLEN);
  for (const char *f = fmt; *f; f++) {
    if (*f != '%' || !f[1]) {
      mana_fmt_c(&m, *f);
      continue;
    }
    switch (*++f) {
      case 's': mana_fmt_str_safe(&m, va_arg(ap, const char *)); break;
      case 'u': mana_fmt_u64(&m, va_arg(ap, uint64_t)); break;
      case 'x': mana_fmt_x64(&m, va_arg(ap, uint64_t)); break;
      case 'd': mana_fmt_i64(&m, va_arg(ap, int)); break;
      case 'e': {
        int e = va_arg(ap, int);
        const char *d = strerrordesc_np(e);
        if (d) {
          mana_fmt_str_safe(&m, d);
        } else {
          mana_fmt_str_safe(&m, "errno ");
          mana_fmt_u64(&m, (uint64_t)(unsigned)e);
        }
        break;
      }
      case 'R': {
        const struct mana_img_region *r = va_arg(ap, const struct mana_img_region *);
        const char *path = va_arg(ap, const char *);
        mana_fmt_str_safe(&m, "region ");
        mana_fmt_x64(&m, r->start);
        mana_fmt_c(&m, '-');
        mana_fmt_x64(&m, r->end);
        mana_fmt_str_safe(&m, " (");
        mana_fmt_str_safe(&m, mana_img_region_kind_name(r->kind));
        if (path && *path) {
          mana_fmt_c(&m, ' ');
          mana_fmt_str_safe(&m, path);
        }
        mana_fmt_c(&m, ')');
        break;
      }
      default: mana_fmt_c(&m, *f); break;
    }
  }
  return -1;
}

int mana_img_err(char *err, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  mana_img_verr(err, fmt, ap);
  va_end(ap);
  return -1;
}

/* ---------- I/O ---------- */

int mana_img_pread_full(int fd, void *buf, size_t n, uint64_t off) {
  unsigned char *p = buf;
  while (n) {
    ssize_t k = pread(fd, p, n, (off_t)off);
    if (k < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (k == 0) return 1;
    p += k;
    n -= (size_t)k;
    off += (uint64_t)k;
  }
  return 0;
}

int mana_img_pwrite_full(int fd, const void *buf, size_t n, uint64_t off) {
  const unsigned char *p = buf;
  while (n) {
    ssize_t k = pwrite(fd, p, n, (off_t)off);
    if (k < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (k == 0) {
      errno = EIO;
      return -1;
    }
    p += k;
    n -= (size_t)k;
    off += (uint64_t)k;
  }
  return 0;
}

int mana_img_pwritev_full(int fd, struct iovec *iov, int n, uint64_t off) {
  while (n > 0) {
    /* The kernel caps one call at IOV_MAX spans and about 2 GiB; loop over what is left. */
    ssize_t k = pwritev(fd, iov, n > 1024 ? 1024 : n, (off_t)off);
    if (k < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (k == 0) {
      errno = EIO;
      return -1;
    }
    off += (uint64_t)k;
    size_t left = (size_t)k;
    while (n > 0 && left >= iov->iov_len) {
      left -= iov->iov_len;
      iov++;
      n--;
    }
    if (n > 0) {
      iov->iov_base = (unsigned char *)iov->iov_base + left;
      iov->iov_len -= left;
    }
  }
  return 0;
}
