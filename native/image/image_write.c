/* image_write.c — writes a mana image from the checkpoint thread.
 *
 * Runs while every other thread is parked in a signal handler, so: no malloc, no stdio, no
 * locks; memory comes from the caller's mana_img_alloc. Raw chunks are written straight from
 * the process's memory (no copy) and consecutive ones are gathered into one pwritev, so the
 * uncompressed path costs one hash pass plus what the kernel needs for the write itself.
 * The header goes in last: a file whose write was interrupted has a zero header and is
 * rejected by the reader instead of being half-trusted.
 *
 * Large regions can be shared with helper threads the caller owns (mana_img_workers): each
 * thread takes the region's next chunk from an atomic counter, classifies, hashes and
 * compresses it with its own state (struct wstate), reserves the chunk's bytes in the file
 * with an atomic add on data_off and pwrites them there. Chunks stay independent and carry
 * their file offset, so readers need no change; only the order of chunks in the file may
 * differ from memory order. Small regions stay on the calling thread (waking helpers costs
 * more than hashing a few pages). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "image_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* One chunk: the kernel then copies bytes that hashing has just pulled into the cache.
 * Gathering 32 MiB per call instead made the copy read DRAM again and cost 1.7 s instead of
 * 0.9 s per 4 GiB here; syscalls per 4 MiB are noise either way. */
#ifndef PEND_FLUSH_BYTES
#define PEND_FLUSH_BYTES MANA_IMG_WRITE_CHUNK_SIZE
#endif
#define CHUNK MANA_IMG_WRITE_CHUNK_SIZE
#define PEND_MAX_IOV 64
/* Regions of fewer chunks are stored by the calling thread alone. */
#define PAR_MIN_CHUNKS 8

/* What one storing thread owns: nothing here is shared, so helpers need no locks. */
struct wstate {
  ZSTD_CCtx *cctx;
  unsigned char *cbuf;
  size_t cbuf_cap;
  uint64_t zero_hash; /* hash of a full zero chunk, learnt from the first one seen */
  int have_zero_hash;
  uint64_t parent_hint; /* ascending lookups in the parent's chunk table */
  uint64_t cpu_ns, io_ns;
};

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

struct mana_img_writer {
  struct mana_img_alloc a; /* our own copy: zstd's customMem points at it */
  struct mana_img_write_opts opts;
  int fd;
  int dfd;    /* the same file opened O_DIRECT for aligned raw data, or -1 */
  int direct; /* atomic: dfd is used; a helper that finds O_DIRECT refused clears it */
  int failed; /* an add_* failed: the file is incomplete and close must not bless it */
  char path[MANA_PATH_MAX];
  struct mana_vec threads, regions, chunks, fds, strtab;
  uint64_t data_off;   /* file offset of the next stored byte */
  uint64_t pend_off;   /* file offset of the first byte gathered in iov */
  uint64_t pend_len;
  int niov;
  struct iovec iov[PEND_MAX_IOV];
  int nworkers;        /* threads that store chunks: ws[0] is the calling thread's */
  struct wstate ws[MANA_IMG_MAX_WORKERS];
  uint64_t raw_done, stored_done, img_flags;
  mana_img_reader *parent; /* incremental image: the previous one (metadata only) */
  uint64_t ref_bytes;
  uint64_t t_open, sync_ns;
  union {
    struct mana_img_header h;
    unsigned char bytes[MANA_IMG_HEADER_SIZE];
  } hdr;
};

static void writer_free(mana_img_writer *w) {
  struct mana_img_alloc a = w->a;
  if (w->dfd >= 0) close(w->dfd);
  if (w->parent) mana_imgr_close(w->parent);
  for (int k = 0; k < MANA_IMG_MAX_WORKERS; k++) {
    if (w->ws[k].cctx) ZSTD_freeCCtx(w->ws[k].cctx);
    if (w->ws[k].cbuf) a.free(a.ctx, w->ws[k].cbuf, w->ws[k].cbuf_cap);
  }
  mana_vec_free(&w->threads, &a);
  mana_vec_free(&w->regions, &a);
  mana_vec_free(&w->chunks, &a);
  mana_vec_free(&w->fds, &a);
  mana_vec_free(&w->strtab, &a);
  a.free(a.ctx, w, sizeof *w);
}

static int io_err(mana_img_writer *w, char *err, const char *what, uint64_t off, int e) {
  __atomic_store_n(&w->failed, 1, __ATOMIC_RELAXED); /* helpers may fail at the same time */
  if (e == ENOSPC || e == EDQUOT)
    return mana_img_err(err,
                        "mana: cannot %s image %s at offset %u: %e; free space there or "
                        "checkpoint to another directory (--ckptdir, MANA_CHECKPOINT_DIR)",
                        what, w->path, off, e);
  return mana_img_err(err, "mana: cannot %s image %s at offset %u: %e", what, w->path, off, e);
}

static int oom(mana_img_writer *w, char *err, const char *what) {
  w->failed = 1;
  return mana_img_err(err, "mana: out of memory while writing image %s (%s)", w->path, what);
}

/* Writes n spans at off. Spans whose addresses, lengths and offset are all 4 KiB aligned go
 * through the O_DIRECT descriptor: the bytes then go from the process's memory to the device
 * without a copy into the page cache, whose fresh pages are what buffered writes of large
 * images mostly pay for (docs/benchmarks.md). A filesystem or device that refuses (EINVAL)
 * turns O_DIRECT off for the rest of the image and the span is written buffered. A partial
 * direct write followed by the buffered retry rewrites the same bytes at the same offsets. Returns 0,
 * or -1 with errno. Leaves iov unchanged. */
static int write_span(mana_img_writer *w, const struct iovec *iov, int n, uint64_t off) {
  struct iovec tmp[PEND_MAX_IOV];
  int aligned = __atomic_load_n(&w->direct, __ATOMIC_ACQUIRE) && !(off & 4095);
  for (int i = 0; aligned && i < n; i++)
    aligned = !((uintptr_t)iov[i].iov_base & 4095) && !(iov[i].iov_len & 4095);
  if (aligned) {
    memcpy(tmp, iov, (size_t)n * sizeof *iov);
    if (mana_img_pwritev_full(w->dfd, tmp, n, off) == 0) return 0;
    /* EFAULT: memory the kernel cannot pin for DMA (a private mapping of device memory);
     * a buffered copy of it works, and the next span may go direct again. */
    if (errno != EINVAL && errno != EFAULT && errno != EOPNOTSUPP) return -1;
    if (errno != EFAULT) __atomic_store_n(&w->direct, 0, __ATOMIC_RELEASE);
  }
  memcpy(tmp, iov, (size_t)n * sizeof *iov);
  return mana_img_pwritev_full(w->fd, tmp, n, off);
}

static int flush(mana_img_writer *w, char *err) {
  if (!w->niov) return 0;
  uint64_t t0 = now_ns();
  int rc = write_span(w, w->iov, w->niov, w->pend_off);
  w->ws[0].io_ns += now_ns() - t0;
  if (rc < 0) return io_err(w, err, "write", w->pend_off, errno);
  w->pend_off += w->pend_len;
  w->pend_len = 0;
  w->niov = 0;
  return 0;
}

/* Appends n bytes at p to the data area. The bytes must stay valid until the next flush. */
static int queue(mana_img_writer *w, const void *p, size_t n, char *err) {
  struct iovec *last = w->niov ? &w->iov[w->niov - 1] : NULL;
  if (last && (const unsigned char *)last->iov_base + last->iov_len == p) {
    last->iov_len += n; /* the next chunk of the same region: one span */
  } else {
    if (w->niov == PEND_MAX_IOV && flush(w, err) < 0) return -1;
    w->iov[w->niov].iov_base = (void *)p;
    w->iov[w->niov].iov_len = n;
    w->niov++;
  }
  w->pend_len += n;
  w->data_off += n;
  if (w->pend_len >= PEND_FLUSH_BYTES) return flush(w, err);
  return 0;
}

static int add_str(mana_img_writer *w, const char *s, uint32_t *off, char *err) {
  *off = 0;
  if (!s || !*s) return 0;
  size_t n = strlen(s) + 1;
  if (w->strtab.len + n > UINT32_MAX) return oom(w, err, "string table over 4 GiB");
  *off = (uint32_t)w->strtab.len;
  if (mana_vec_append(&w->strtab, &w->a, s, n) < 0) return oom(w, err, "string table");
  return 0;
}

int mana_imgw_parent_fd(const mana_img_writer *w) {
  return w->parent ? mana_imgr_fd_of(w->parent) : -1;
}

/* Opens the parent named in the options (relative to path's directory) with the reader; any
 * failure leaves w->parent NULL and the image becomes a full one: a damaged or vanished parent
 * must never stop a checkpoint. The reader checks the parent's header and metadata hashes. */
static void open_parent(mana_img_writer *w, const char *path) {
  const char *rel = w->opts.parent;
  struct mana_img_header *h = &w->hdr.h;
  if (strlen(rel) >= sizeof h->parent) return;
  char full[MANA_PATH_MAX], err[MANA_IMG_ERRLEN];
  struct mana_fmt f;
  mana_fmt_init(&f, full, sizeof full);
  const char *slash = rel[0] == '/' ? NULL : strrchr(path, '/');
  for (const char *q = path; slash && q <= slash; q++) mana_fmt_c(&f, *q);
  mana_fmt_str(&f, rel);
  if (f.len + 1 >= sizeof full) return;
  if (mana_imgr_open(&w->parent, full, &w->a, err) < 0) {
    w->parent = NULL;
    return;
  }
  const struct mana_img_header *ph = mana_imgr_header(w->parent);
  mana_img_strlcpy(h->parent, rel, sizeof h->parent);
  h->parent_header_hash = ph->header_hash;
  h->parent_generation = ph->info.generation;
}

int mana_imgw_open(mana_img_writer **wp, const char *path, const struct mana_img_info *info,
                   const struct mana_img_write_opts *opts, const struct mana_img_alloc *a,
                   char err[MANA_IMG_ERRLEN]) {
  *wp = NULL;
  if (!a) a = &mana_img_mmap_alloc;
  if (!path || !*path) return mana_img_err(err, "mana: no image path given");
  if (strlen(path) >= MANA_PATH_MAX)
    return mana_img_err(err, "mana: image path is too long (%u bytes): %s",
                        (uint64_t)strlen(path), path);
  mana_img_writer *w = a->alloc(a->ctx, sizeof *w);
  if (!w) return mana_img_err(err, "mana: out of memory opening image %s", path);
  memset(w, 0, sizeof *w);
  w->a = *a;
  w->fd = w->dfd = -1;
  if (opts) w->opts = *opts;
  mana_img_strlcpy(w->path, path, sizeof w->path);
  w->data_off = w->pend_off = MANA_IMG_HEADER_SIZE;

  struct mana_img_header *h = &w->hdr.h;
  if (info) memcpy(&h->info, info, sizeof *info);
  /* Readers print these fields; a missing terminator must not leak into the next field. */
  mana_img_info_terminate(&h->info);

  static const char empty = 0;
  if (mana_vec_append(&w->strtab, &w->a, &empty, 1) < 0) {
    writer_free(w);
    return mana_img_err(err, "mana: out of memory opening image %s", path);
  }
  if (w->opts.parent && w->opts.parent[0]) open_parent(w, path);
  w->t_open = now_ns();
  w->nworkers = 1;
  if (w->opts.workers && w->opts.workers->run && w->opts.workers->n > 1)
    w->nworkers = w->opts.workers->n < MANA_IMG_MAX_WORKERS ? w->opts.workers->n
                                                            : MANA_IMG_MAX_WORKERS;
  for (int k = 0; k < w->nworkers && w->opts.compress_level > 0; k++) {
    struct wstate *ws = &w->ws[k];
    ws->cctx = ZSTD_createCCtx_advanced(mana_img_zstd_mem(&w->a));
    ws->cbuf_cap = ZSTD_compressBound(CHUNK);
    ws->cbuf = ws->cctx ? a->alloc(a->ctx, ws->cbuf_cap) : NULL;
    if (!ws->cbuf) {
      writer_free(w);
      return mana_img_err(err, "mana: out of memory for the zstd compressor of image %s",
                          path);
    }
  }
  w->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (w->fd < 0) {
    int e = errno;
    writer_free(w);
    if (e == EEXIST)
      return mana_img_err(err, "mana: cannot create image %s: it already exists (images are "
                          "never overwritten; remove it or use a new generation directory)",
                          path);
    return mana_img_err(err, "mana: cannot create image %s: %e", path, e);
  }
  if (w->opts.direct) {
    /* A filesystem without O_DIRECT (EINVAL) just means buffered writes. */
    w->dfd = open(path, O_WRONLY | O_DIRECT | O_CLOEXEC);
    w->direct = w->dfd >= 0;
  }
  *wp = w;
  return 0;
}

int mana_imgw_add_thread(mana_img_writer *w, const struct mana_img_thread *t,
                         char err[MANA_IMG_ERRLEN]) {
  if (mana_vec_append(&w->threads, &w->a, t, sizeof *t) < 0) return oom(w, err, "thread table");
  return 0;
}

int mana_imgw_add_fd(mana_img_writer *w, const struct mana_img_fd *f, const char *path,
                     char err[MANA_IMG_ERRLEN]) {
  struct mana_img_fd rec = *f;
  if (add_str(w, path, &rec.path_off, err) < 0) return -1;
  if (mana_vec_append(&w->fds, &w->a, &rec, sizeof rec) < 0) return oom(w, err, "fd table");
  return 0;
}

/* Decides how one chunk is stored and fills c (all but file_off); *out is what goes to the
 * file (c->stored_len bytes: the chunk itself or ws->cbuf), nothing for zero and parent
 * chunks. Only reads w's shared state (parent, opts), so helpers may run it concurrently. */
static int classify(mana_img_writer *w, struct wstate *ws, const unsigned char *src, size_t len,
                    uint64_t addr, const struct mana_img_region *r, const char *path,
                    struct mana_img_chunk *c, const void **out, char *err) {
  memset(c, 0, sizeof *c);
  c->raw_len = (uint32_t)len;
  *out = NULL;
  if (mana_img_is_zero(src, len)) {
    /* Most zero chunks are full-sized (untouched heap, big buffers): hash zeros once. */
    if (len == CHUNK && ws->have_zero_hash) {
      c->hash = ws->zero_hash;
    } else {
      c->hash = mana_img_hash(src, len);
      if (len == CHUNK) {
        ws->zero_hash = c->hash;
        ws->have_zero_hash = 1;
      }
    }
    c->enc = MANA_C_ZERO;
    return 0;
  }
  c->hash = mana_img_hash(src, len);
  if (w->parent) {
    /* Same address, size and content hash as the parent's chunk: keep a reference. XXH3-64
     * makes an accidental match of different bytes a 2^-64 event per chunk. */
    int64_t k = mana_imgr_find_chunk(w->parent, addr, (uint32_t)len, &ws->parent_hint);
    const struct mana_img_chunk *pc = k >= 0 ? mana_imgr_chunk(w->parent, (uint64_t)k) : NULL;
    if (pc && pc->hash == c->hash && pc->enc != MANA_C_ZERO) {
      c->enc = MANA_C_PARENT;
      return 0;
    }
  }
  if (ws->cctx) {
    size_t n = ZSTD_compressCCtx(ws->cctx, ws->cbuf, ws->cbuf_cap, src, len,
                                 w->opts.compress_level);
    if (ZSTD_isError(n))
      return mana_img_err(err, "mana: cannot compress %R of image %s: %s", r, path, w->path,
                          ZSTD_getErrorName(n));
    if (n < len) {
      c->enc = MANA_C_ZSTD;
      c->stored_len = (uint32_t)n;
      *out = ws->cbuf;
      return 0;
    }
  }
  c->enc = MANA_C_RAW;
  c->stored_len = (uint32_t)len;
  *out = src;
  return 0;
}

/* Stores one chunk of a region on the calling thread; fills c. */
static int put_chunk(mana_img_writer *w, const unsigned char *src, size_t len, uint64_t addr,
                     const struct mana_img_region *r, const char *path,
                     struct mana_img_chunk *c, char *err) {
  struct wstate *ws = &w->ws[0];
  const void *out;
  uint64_t t0 = now_ns();
  int rc = classify(w, ws, src, len, addr, r, path, c, &out, err);
  ws->cpu_ns += now_ns() - t0;
  if (rc < 0) {
    w->failed = 1;
    return -1;
  }
  c->file_off = w->data_off;
  if (!c->stored_len) return 0;
  /* cbuf is reused for the next chunk, so a compressed frame must reach the file now. */
  if (queue(w, out, c->stored_len, err) < 0) return -1;
  return c->enc == MANA_C_ZSTD ? flush(w, err) : 0;
}

/* One large region shared by the workers. */
struct par_job {
  mana_img_writer *w;
  const struct mana_img_region *r;
  const char *path;
  const unsigned char *src;
  uint64_t size, nch;
  size_t first; /* index of the region's first chunk in w->chunks */
  uint64_t next;   /* atomic: the next chunk to take */
  int failed;      /* atomic: set by the first thread that fails; the others stop */
  char err[MANA_IMG_ERRLEN];
};

static void par_fail(struct par_job *j, const char *msg) {
  if (__atomic_exchange_n(&j->failed, 1, __ATOMIC_ACQ_REL) == 0)
    memcpy(j->err, msg, MANA_IMG_ERRLEN);
}

/* Runs on worker k (0 = the calling thread, which also reports progress). */
static void par_work(void *arg, int k) {
  struct par_job *j = arg;
  mana_img_writer *w = j->w;
  struct wstate *ws = &w->ws[k];
  char err[MANA_IMG_ERRLEN];
  for (;;) {
    if (__atomic_load_n(&j->failed, __ATOMIC_ACQUIRE)) return;
    uint64_t i = __atomic_fetch_add(&j->next, 1, __ATOMIC_ACQ_REL);
    if (i >= j->nch) return;
    uint64_t o = i * CHUNK;
    size_t len = j->size - o < CHUNK ? (size_t)(j->size - o) : CHUNK;
    /* w->chunks is not resized while the job runs: its slots were reserved before. */
    struct mana_img_chunk *c = (struct mana_img_chunk *)w->chunks.p + j->first + i;
    const void *out;
    uint64_t t0 = now_ns();
    int rc = classify(w, ws, j->src + o, len, j->r->start + o, j->r, j->path, c, &out, err);
    uint64_t t1 = now_ns();
    ws->cpu_ns += t1 - t0;
    if (rc < 0) {
      par_fail(j, err);
      return;
    }
    c->file_off = __atomic_fetch_add(&w->data_off, c->stored_len, __ATOMIC_ACQ_REL);
    if (c->stored_len) {
      struct iovec v = {(void *)out, c->stored_len};
      if (write_span(w, &v, 1, c->file_off) < 0) {
        int e = errno;
        io_err(w, err, "write", c->file_off, e);
        par_fail(j, err);
        return;
      }
      ws->io_ns += now_ns() - t1;
    }
    uint64_t raw = __atomic_add_fetch(&w->raw_done, len, __ATOMIC_ACQ_REL);
    uint64_t st = __atomic_add_fetch(&w->stored_done, c->stored_len, __ATOMIC_ACQ_REL);
    if (k == 0 && w->opts.progress) w->opts.progress(w->opts.progress_arg, raw, st);
  }
}

static int add_region_parallel(mana_img_writer *w, struct mana_img_region *rec,
                               const char *path, const unsigned char *src, char *err) {
  /* Everything queued so far goes first, so that data_off is the only cursor. */
  if (flush(w, err) < 0) return -1;
  struct par_job j;
  memset(&j, 0, sizeof j);
  j.w = w;
  j.r = rec;
  j.path = path;
  j.src = src;
  j.size = rec->end - rec->start;
  j.nch = (j.size + CHUNK - 1) / CHUNK;
  j.first = w->chunks.len / sizeof(struct mana_img_chunk);
  if (mana_vec_append(&w->chunks, &w->a, NULL, j.nch * sizeof(struct mana_img_chunk)) < 0)
    return oom(w, err, "chunk table");
  const struct mana_img_workers *p = w->opts.workers;
  p->run(p->ctx, par_work, &j);
  if (j.failed) {
    w->failed = 1;
    memcpy(err, j.err, MANA_IMG_ERRLEN);
    return -1;
  }
  w->pend_off = w->data_off;
  const struct mana_img_chunk *c = (const struct mana_img_chunk *)w->chunks.p + j.first;
  for (uint64_t i = 0; i < j.nch; i++) {
    if (c[i].enc == MANA_C_ZSTD) w->img_flags |= MANA_IMG_F_COMPRESSED;
    if (c[i].enc == MANA_C_PARENT) w->ref_bytes += c[i].raw_len;
    rec->stored_bytes += c[i].stored_len;
  }
  rec->nchunks = j.nch;
  return 0;
}

int mana_imgw_add_region(mana_img_writer *w, const struct mana_img_region *r, const char *path,
                         const void *data, char err[MANA_IMG_ERRLEN]) {
  if (w->failed)
    return mana_img_err(err, "mana: image %s: not adding %R after an earlier error", w->path,
                        r, path);
  if (r->start >= r->end || (r->start & 4095) || (r->end & 4095)) {
    w->failed = 1;
    return mana_img_err(err, "mana: image %s: %R is empty or not page-aligned", w->path, r,
                        path);
  }
  if (r->kind > MANA_R_GUARD) {
    w->failed = 1;
    return mana_img_err(err, "mana: image %s: %R has unknown kind %u", w->path, r, path,
                        (uint64_t)r->kind);
  }
  int nodata = (r->flags & MANA_RF_NO_DATA) != 0;
  if (!nodata && !data) {
    w->failed = 1;
    return mana_img_err(err, "mana: image %s: %R has no data pointer", w->path, r, path);
  }
  struct mana_img_region rec = *r;
  if (add_str(w, path, &rec.path_off, err) < 0) return -1;
  rec.first_chunk = w->chunks.len / sizeof(struct mana_img_chunk);
  rec.nchunks = 0;
  rec.stored_bytes = 0;
  uint64_t size = r->end - r->start;
  if (!nodata && w->nworkers > 1 && size >= PAR_MIN_CHUNKS * (uint64_t)CHUNK) {
    if (add_region_parallel(w, &rec, path, data, err) < 0) return -1;
  } else if (!nodata) {
    const unsigned char *src = data;
    for (uint64_t o = 0; o < size; o += CHUNK) {
      size_t len = size - o < CHUNK ? (size_t)(size - o) : CHUNK;
      struct mana_img_chunk c;
      if (put_chunk(w, src + o, len, r->start + o, r, path, &c, err) < 0) return -1;
      if (mana_vec_append(&w->chunks, &w->a, &c, sizeof c) < 0)
        return oom(w, err, "chunk table");
      if (c.enc == MANA_C_ZSTD) w->img_flags |= MANA_IMG_F_COMPRESSED;
      if (c.enc == MANA_C_PARENT) w->ref_bytes += len;
      rec.nchunks++;
      rec.stored_bytes += c.stored_len;
      w->raw_done += len;
      w->stored_done += c.stored_len;
      if (w->opts.progress) w->opts.progress(w->opts.progress_arg, w->raw_done, w->stored_done);
    }
  }
  if (mana_vec_append(&w->regions, &w->a, &rec, sizeof rec) < 0)
    return oom(w, err, "region table");
  return 0;
}

static int finish(mana_img_writer *w, char *err) {
  if (w->failed)
    return mana_img_err(err, "mana: image %s is incomplete after an earlier error; not "
                        "finishing it", w->path);
  if (flush(w, err) < 0) return -1;
  uint64_t t_sync = now_ns();

  struct mana_img_meta m = {
      .nthreads = w->threads.len / sizeof(struct mana_img_thread),
      .nregions = w->regions.len / sizeof(struct mana_img_region),
      .nchunks = w->chunks.len / sizeof(struct mana_img_chunk),
      .nfds = w->fds.len / sizeof(struct mana_img_fd),
      .strtab_size = w->strtab.len,
  };
  struct iovec iov[6] = {
      {&m, sizeof m},
      {w->threads.p, w->threads.len},
      {w->regions.p, w->regions.len},
      {w->chunks.p, w->chunks.len},
      {w->fds.p, w->fds.len},
      {w->strtab.p, w->strtab.len},
  };
  uint64_t meta_size = 0;
  for (int i = 0; i < 6; i++) meta_size += iov[i].iov_len;

  struct mana_img_header *h = &w->hdr.h;
  memcpy(h->magic, MANA_IMG_MAGIC, sizeof h->magic);
  h->version = MANA_IMG_VERSION;
  h->header_size = MANA_IMG_HEADER_SIZE;
  h->flags = w->img_flags;
  h->meta_offset = w->data_off;
  h->meta_size = meta_size;
  h->meta_hash = mana_img_hash_iov(iov, 6);
  h->raw_bytes = w->raw_done;
  h->stored_bytes = w->stored_done;
  h->file_size = h->meta_offset + meta_size;
  h->ref_bytes = w->ref_bytes;
  if (!w->ref_bytes) { /* nothing referenced: a full image, readable without its parent */
    memset(h->parent, 0, sizeof h->parent);
    h->parent_header_hash = h->parent_generation = 0;
  }
  h->header_hash = mana_img_header_hash(h);

  if (mana_img_pwritev_full(w->fd, iov, 6, h->meta_offset) < 0)
    return io_err(w, err, "write metadata of", h->meta_offset, errno);
  /* Data before header on disk too: after a crash a valid header then promises valid data.
   * The second fsync only has the header page left to flush. */
  if (w->opts.fsync && fsync(w->fd) < 0) return io_err(w, err, "fsync", h->meta_offset, errno);
  if (mana_img_pwrite_full(w->fd, w->hdr.bytes, sizeof w->hdr.bytes, 0) < 0)
    return io_err(w, err, "write header of", 0, errno);
  if (w->opts.fsync && fsync(w->fd) < 0) return io_err(w, err, "fsync", 0, errno);
  int fd = w->fd;
  w->fd = -1;
  /* close reports delayed write errors on NFS and the like: the image is not durable then. */
  if (close(fd) < 0) return io_err(w, err, "close", h->file_size, errno);
  w->sync_ns = now_ns() - t_sync;
  return 0;
}

int mana_imgw_close(mana_img_writer *w, struct mana_img_header *hdr_out,
                    char err[MANA_IMG_ERRLEN]) {
  if (!w) return mana_img_err(err, "mana: no image writer to close");
  if (finish(w, err) < 0) {
    mana_imgw_abort(w);
    return -1;
  }
  if (hdr_out) *hdr_out = w->hdr.h;
  if (w->opts.stats) {
    struct mana_img_write_stats *st = w->opts.stats;
    memset(st, 0, sizeof *st);
    for (int k = 0; k < w->nworkers; k++) {
      st->cpu_ns += w->ws[k].cpu_ns;
      st->io_ns += w->ws[k].io_ns;
    }
    st->sync_ns = w->sync_ns;
    st->wall_ns = now_ns() - w->t_open;
    st->threads = (uint32_t)w->nworkers;
  }
  writer_free(w);
  return 0;
}

void mana_imgw_abort(mana_img_writer *w) {
  if (!w) return;
  if (w->fd >= 0) close(w->fd);
  unlink(w->path);
  writer_free(w);
}
