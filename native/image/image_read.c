/* image_read.c — opens, validates and reads mana images.
 *
 * Used by the static restore program before it has a heap (so: no malloc, no stdio; memory
 * from the caller's mana_img_alloc) and by the Node addon. open() checks everything that does
 * not need the region data — header, sizes, metadata hash, every index and offset — so that
 * later code can index the arrays without checks, and a truncated or damaged image is
 * reported before the restore program has destroyed anything. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "image_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define OLDER_GEN "use an older generation"

struct mana_img_reader {
  struct mana_img_alloc a; /* our own copy: zstd's customMem points at it */
  int fd;
  char path[MANA_PATH_MAX];
  struct mana_img_header hdr;
  unsigned char *meta; /* the whole metadata block */
  size_t meta_cap;
  struct mana_img_meta m;
  const struct mana_img_thread *threads;
  const struct mana_img_region *regions;
  const struct mana_img_chunk *chunks;
  const struct mana_img_fd *fds;
  const char *strtab;
  ZSTD_DCtx *dctx;       /* created on the first compressed chunk */
  unsigned char *zbuf;   /* compressed bytes of one chunk */
  size_t zbuf_cap;
  unsigned char *vbuf;   /* one chunk's raw bytes, for verify */
  size_t vbuf_cap;
  mana_img_reader *parent; /* opened on the first MANA_C_PARENT chunk */
  int depth;               /* 0 for the image opened by the caller, +1 per parent */
  uint64_t parent_hint;    /* mana_imgr_find_chunk cursor into the parent */
};

static void reader_free(mana_img_reader *r) {
  struct mana_img_alloc a = r->a;
  if (r->parent) reader_free(r->parent);
  if (r->fd >= 0) close(r->fd);
  if (r->dctx) ZSTD_freeDCtx(r->dctx);
  if (r->zbuf) a.free(a.ctx, r->zbuf, r->zbuf_cap);
  if (r->vbuf) a.free(a.ctx, r->vbuf, r->vbuf_cap);
  if (r->meta) a.free(a.ctx, r->meta, r->meta_cap);
  a.free(a.ctx, r, sizeof *r);
}

/* Checks that are about the file as a whole; fills r->hdr. */
static int check_header(mana_img_reader *r, uint64_t st_size, char *err) {
  const char *p = r->path;
  struct mana_img_header *h = &r->hdr;
  if (st_size == 0)
    return mana_img_err(err, "mana: image %s is empty; it was not fully written — " OLDER_GEN,
                        p);
  int rc = mana_img_pread_full(r->fd, h, sizeof *h, 0);
  if (rc < 0) return mana_img_err(err, "mana: cannot read image %s: %e", p, errno);
  if (rc > 0 || st_size < MANA_IMG_HEADER_SIZE) {
    if (memcmp(h->magic, MANA_IMG_MAGIC, sizeof h->magic))
      return mana_img_err(err, "mana: %s is not a mana image (%u bytes, too short for one)", p,
                          st_size);
    return mana_img_err(err,
                        "mana: image %s is truncated (%u bytes, less than its %u-byte header); "
                        "it was not fully written — " OLDER_GEN,
                        p, st_size, (uint64_t)MANA_IMG_HEADER_SIZE);
  }
  if (memcmp(h->magic, MANA_IMG_MAGIC, sizeof h->magic)) {
    /* The writer puts the header in last, so a zero header means an interrupted write. */
    if (mana_img_is_zero(h, sizeof *h))
      return mana_img_err(err, "mana: image %s has no header; it was not fully written — "
                          OLDER_GEN, p);
    return mana_img_err(err, "mana: %s is not a mana image (bad magic)", p);
  }
  if (h->version != MANA_IMG_VERSION && h->version != 1)
    return mana_img_err(err, "mana: image %s has format version %u; this mana reads versions 1 "
                        "to %u (use the mana release that wrote it)",
                        p, (uint64_t)h->version, (uint64_t)MANA_IMG_VERSION);
  if (h->header_size != MANA_IMG_HEADER_SIZE)
    return mana_img_err(err, "mana: image %s is corrupt: header size %u, expected %u", p,
                        (uint64_t)h->header_size, (uint64_t)MANA_IMG_HEADER_SIZE);
  if (h->version == 1) {
    /* Version 1 ends with header_hash right after info: the parent fields did not exist. */
    const size_t v1 = offsetof(struct mana_img_header, parent_header_hash);
    uint64_t stored;
    memcpy(&stored, (const unsigned char *)h + v1, sizeof stored);
    if (mana_img_hash(h, v1) != stored)
      return mana_img_err(err, "mana: image %s is corrupt: header checksum mismatch — "
                          OLDER_GEN, p);
    memset((unsigned char *)h + v1, 0, offsetof(struct mana_img_header, header_hash) - v1);
    h->header_hash = stored;
  } else if (mana_img_header_hash(h) != h->header_hash) {
    return mana_img_err(err, "mana: image %s is corrupt: header checksum mismatch — " OLDER_GEN,
                        p);
  }
  h->parent[sizeof h->parent - 1] = 0;
  if (h->parent_header_hash && !h->parent[0])
    return mana_img_err(err, "mana: image %s is corrupt: it is incremental but names no parent",
                        p);
  if (st_size < h->file_size)
    return mana_img_err(err, "mana: image %s is truncated (%u of %u bytes); it was not fully "
                        "written — " OLDER_GEN, p, st_size, h->file_size);
  if (st_size > h->file_size)
    return mana_img_err(err, "mana: image %s is corrupt: %u bytes but its header says %u", p,
                        st_size, h->file_size);
  if (h->meta_offset < MANA_IMG_HEADER_SIZE || h->meta_offset > h->file_size ||
      h->meta_size != h->file_size - h->meta_offset || h->meta_size < sizeof(struct mana_img_meta))
    return mana_img_err(err, "mana: image %s is corrupt: metadata at %u (%u bytes) is outside "
                        "the file (%u bytes)", p, h->meta_offset, h->meta_size, h->file_size);
  if (h->stored_bytes != h->meta_offset - MANA_IMG_HEADER_SIZE)
    return mana_img_err(err, "mana: image %s is corrupt: %u bytes of region data recorded, "
                        "%u present", p, h->stored_bytes, h->meta_offset - MANA_IMG_HEADER_SIZE);
  /* The writer terminates these; forcing it here keeps a reader's strlen inside the field. */
  mana_img_info_terminate(&h->info);
  return 0;
}

/* a * b + *acc without overflow; 0 on overflow. */
static int add_mul(uint64_t *acc, uint64_t a, uint64_t b) {
  if (a && b > UINT64_MAX / a) return 0;
  if (*acc > UINT64_MAX - a * b) return 0;
  *acc += a * b;
  return 1;
}

static int check_meta(mana_img_reader *r, char *err) {
  const char *p = r->path;
  const struct mana_img_header *h = &r->hdr;
  if (h->meta_size > SIZE_MAX / 2)
    return mana_img_err(err, "mana: image %s: metadata of %u bytes is too large", p,
                        h->meta_size);
  r->meta_cap = (size_t)h->meta_size;
  r->meta = r->a.alloc(r->a.ctx, r->meta_cap);
  if (!r->meta)
    return mana_img_err(err, "mana: out of memory reading the metadata of image %s (%u bytes)",
                        p, h->meta_size);
  int rc = mana_img_pread_full(r->fd, r->meta, r->meta_cap, h->meta_offset);
  if (rc < 0) return mana_img_err(err, "mana: cannot read image %s: %e", p, errno);
  if (rc > 0)
    return mana_img_err(err, "mana: image %s is truncated (shrank while being read) — "
                        OLDER_GEN, p);
  if (mana_img_hash(r->meta, r->meta_cap) != h->meta_hash)
    return mana_img_err(err, "mana: image %s is corrupt: metadata checksum mismatch — " OLDER_GEN,
                        p);
  memcpy(&r->m, r->meta, sizeof r->m);
  const struct mana_img_meta *m = &r->m;
  uint64_t need = sizeof *m;
  if (!add_mul(&need, m->nthreads, sizeof(struct mana_img_thread)) ||
      !add_mul(&need, m->nregions, sizeof(struct mana_img_region)) ||
      !add_mul(&need, m->nchunks, sizeof(struct mana_img_chunk)) ||
      !add_mul(&need, m->nfds, sizeof(struct mana_img_fd)) || !add_mul(&need, m->strtab_size, 1) ||
      need != h->meta_size)
    return mana_img_err(err, "mana: image %s is corrupt: metadata counts (%u threads, %u "
                        "regions, %u chunks, %u fds, %u string bytes) do not fit its %u bytes",
                        p, m->nthreads, m->nregions, m->nchunks, m->nfds, m->strtab_size,
                        h->meta_size);
  /* Every record size is a multiple of 8 and the block is page-aligned: arrays are aligned. */
  unsigned char *q = r->meta + sizeof *m;
  r->threads = (const void *)q;
  q += m->nthreads * sizeof(struct mana_img_thread);
  r->regions = (const void *)q;
  q += m->nregions * sizeof(struct mana_img_region);
  r->chunks = (const void *)q;
  q += m->nchunks * sizeof(struct mana_img_chunk);
  r->fds = (const void *)q;
  q += m->nfds * sizeof(struct mana_img_fd);
  r->strtab = (const char *)q;
  if (m->strtab_size < 1 || r->strtab[0] || r->strtab[m->strtab_size - 1])
    return mana_img_err(err, "mana: image %s is corrupt: string table is not terminated", p);

  uint64_t raw = 0;
  for (uint64_t i = 0; i < m->nchunks; i++) {
    const struct mana_img_chunk *c = &r->chunks[i];
    int ok = c->raw_len > 0 && c->raw_len <= MANA_IMG_CHUNK_SIZE &&
             c->file_off >= MANA_IMG_HEADER_SIZE && c->file_off <= h->meta_offset &&
             c->stored_len <= h->meta_offset - c->file_off;
    if (ok) {
      switch (c->enc) {
        case MANA_C_RAW: ok = c->stored_len == c->raw_len; break;
        case MANA_C_ZSTD: ok = c->stored_len > 0 && c->stored_len < c->raw_len; break;
        case MANA_C_ZERO: ok = c->stored_len == 0; break;
        case MANA_C_PARENT: ok = c->stored_len == 0 && h->parent[0]; break;
        default: ok = 0;
      }
    }
    if (!ok)
      return mana_img_err(err, "mana: image %s is corrupt: chunk %u (encoding %u, %u of %u "
                          "bytes at %u) is out of bounds", p, i, (uint64_t)c->enc,
                          (uint64_t)c->stored_len, (uint64_t)c->raw_len, c->file_off);
  }
  for (uint64_t i = 0; i < m->nregions; i++) {
    const struct mana_img_region *g = &r->regions[i];
    const char *gp = g->path_off < m->strtab_size ? r->strtab + g->path_off : "";
    if (g->path_off >= m->strtab_size)
      return mana_img_err(err, "mana: image %s is corrupt: %R has a path outside the string "
                          "table", p, g, gp);
    if (g->start >= g->end || g->kind > MANA_R_GUARD)
      return mana_img_err(err, "mana: image %s is corrupt: %R is empty or of unknown kind %u",
                          p, g, gp, (uint64_t)g->kind);
    if (g->first_chunk > m->nchunks || g->nchunks > m->nchunks - g->first_chunk)
      return mana_img_err(err, "mana: image %s is corrupt: %R refers to chunks %u..%u of %u", p,
                          g, gp, g->first_chunk, g->first_chunk + g->nchunks, m->nchunks);
    uint64_t cover = 0, stored = 0;
    for (uint64_t k = 0; k < g->nchunks; k++) {
      cover += r->chunks[g->first_chunk + k].raw_len;
      stored += r->chunks[g->first_chunk + k].stored_len;
    }
    uint64_t want = (g->flags & MANA_RF_NO_DATA) ? 0 : g->end - g->start;
    if (cover != want || stored != g->stored_bytes)
      return mana_img_err(err, "mana: image %s is corrupt: %R has chunks for %u of %u bytes", p,
                          g, gp, cover, want);
    raw += cover;
  }
  if (raw != h->raw_bytes)
    return mana_img_err(err, "mana: image %s is corrupt: regions cover %u bytes, header says %u",
                        p, raw, h->raw_bytes);
  for (uint64_t i = 0; i < m->nfds; i++)
    if (r->fds[i].path_off >= m->strtab_size)
      return mana_img_err(err, "mana: image %s is corrupt: fd %d has a path outside the string "
                          "table", p, r->fds[i].fd);
  return 0;
}

int mana_imgr_open(mana_img_reader **rp, const char *path, const struct mana_img_alloc *a,
                   char err[MANA_IMG_ERRLEN]) {
  *rp = NULL;
  if (!a) a = &mana_img_mmap_alloc;
  if (!path || !*path) return mana_img_err(err, "mana: no image path given");
  if (strlen(path) >= MANA_PATH_MAX)
    return mana_img_err(err, "mana: image path is too long: %s", path);
  mana_img_reader *r = a->alloc(a->ctx, sizeof *r);
  if (!r) return mana_img_err(err, "mana: out of memory opening image %s", path);
  memset(r, 0, sizeof *r);
  r->a = *a;
  mana_img_strlcpy(r->path, path, sizeof r->path);
  r->fd = open(path, O_RDONLY | O_CLOEXEC);
  if (r->fd < 0) {
    int e = errno;
    reader_free(r);
    return mana_img_err(err, "mana: cannot open image %s: %e", path, e);
  }
  struct stat st;
  if (fstat(r->fd, &st) < 0) {
    int e = errno;
    reader_free(r);
    return mana_img_err(err, "mana: cannot stat image %s: %e", path, e);
  }
  if (!S_ISREG(st.st_mode)) {
    reader_free(r);
    return mana_img_err(err, "mana: %s is not a regular file, so not a mana image", path);
  }
  if (check_header(r, (uint64_t)st.st_size, err) < 0 || check_meta(r, err) < 0) {
    reader_free(r);
    return -1;
  }
  *rp = r;
  return 0;
}

const struct mana_img_header *mana_imgr_header(const mana_img_reader *r) { return &r->hdr; }
uint64_t mana_imgr_nthreads(const mana_img_reader *r) { return r->m.nthreads; }
const struct mana_img_thread *mana_imgr_thread(const mana_img_reader *r, uint64_t i) {
  return i < r->m.nthreads ? &r->threads[i] : NULL;
}
uint64_t mana_imgr_nregions(const mana_img_reader *r) { return r->m.nregions; }
const struct mana_img_region *mana_imgr_region(const mana_img_reader *r, uint64_t i) {
  return i < r->m.nregions ? &r->regions[i] : NULL;
}
const struct mana_img_chunk *mana_imgr_chunk(const mana_img_reader *r, uint64_t i) {
  return i < r->m.nchunks ? &r->chunks[i] : NULL;
}
uint64_t mana_imgr_nfds(const mana_img_reader *r) { return r->m.nfds; }
const struct mana_img_fd *mana_imgr_fd(const mana_img_reader *r, uint64_t i) {
  return i < r->m.nfds ? &r->fds[i] : NULL;
}
const char *mana_imgr_str(const mana_img_reader *r, uint32_t off) {
  return off < r->m.strtab_size ? r->strtab + off : "";
}
int mana_imgr_fd_of(const mana_img_reader *r) { return r->fd; }

const char *mana_imgr_path(const mana_img_reader *r) { return r->path; }

int64_t mana_imgr_find_chunk(const mana_img_reader *r, uint64_t addr, uint32_t raw_len,
                             uint64_t *hint) {
  uint64_t n = r->m.nregions, i = *hint < n ? *hint : 0;
  /* Regions come in address order from /proc/self/maps: scan on from the last hit, wrap once. */
  for (uint64_t tries = 0; tries < n; tries++, i = i + 1 < n ? i + 1 : 0) {
    const struct mana_img_region *g = &r->regions[i];
    if (addr < g->start || addr >= g->end) continue;
    *hint = i;
    if (!g->nchunks) return -1;
    uint64_t cs = r->chunks[g->first_chunk].raw_len; /* every chunk but the last is full */
    uint64_t off = addr - g->start;
    if (off % cs || off / cs >= g->nchunks) return -1;
    uint64_t k = g->first_chunk + off / cs;
    return r->chunks[k].raw_len == raw_len ? (int64_t)k : -1;
  }
  return -1;
}

int mana_imgr_parent(mana_img_reader *r, mana_img_reader **pp, char err[MANA_IMG_ERRLEN]) {
  *pp = NULL;
  if (!r->hdr.parent[0]) return 0;
  if (r->parent) {
    *pp = r->parent;
    return 0;
  }
  if (r->depth + 1 >= MANA_IMG_MAX_CHAIN)
    return mana_img_err(err, "mana: image %s has a chain of more than %u parent images (a loop?)",
                        r->path, (uint64_t)MANA_IMG_MAX_CHAIN);
  /* parent is relative to this image's directory (absolute paths are taken as they are) */
  char path[MANA_PATH_MAX];
  struct mana_fmt f;
  mana_fmt_init(&f, path, sizeof path);
  const char *rel = r->hdr.parent;
  if (rel[0] != '/') {
    const char *slash = strrchr(r->path, '/');
    size_t dirlen = slash ? (size_t)(slash - r->path + 1) : 0;
    /* "a/gen-3/" + "../gen-2/x.img" -> "a/gen-2/x.img": messages name the parent plainly.
     * Generation dirs are real directories (never symlinks), so dropping "dir/.." is exact. */
    while (rel[0] == '.' && rel[1] == '.' && rel[2] == '/' && dirlen >= 2) {
      size_t k = dirlen - 1; /* at the '/' ending the last component */
      while (k > 0 && r->path[k - 1] != '/') k--;
      size_t clen = dirlen - 1 - k;
      if (clen == 0 || (clen == 2 && r->path[k] == '.' && r->path[k + 1] == '.') ||
          (clen == 1 && r->path[k] == '.'))
        break;
      dirlen = k;
      rel += 3;
    }
    for (size_t q = 0; q < dirlen; q++) mana_fmt_c(&f, r->path[q]);
  }
  mana_fmt_str(&f, rel);
  mana_img_reader *p = NULL;
  if (mana_imgr_open(&p, path, &r->a, err) < 0) return -1;
  p->depth = r->depth + 1;
  if (p->hdr.header_hash != r->hdr.parent_header_hash) {
    mana_img_err(err, "mana: parent image %s of %s has header hash %x, the child recorded %x "
                 "(the parent was replaced) — " OLDER_GEN, path, r->path, p->hdr.header_hash,
                 r->hdr.parent_header_hash);
    reader_free(p);
    return -1;
  }
  r->parent = p;
  *pp = p;
  return 0;
}

static int read_chunk(mana_img_reader *r, const struct mana_img_region *g, uint64_t k,
                      uint64_t addr, unsigned char *dst, int zero_fill, char *err);

/* A MANA_C_PARENT chunk: the parent's chunk at the same address, read (and verified) there. */
static int read_parent_chunk(mana_img_reader *r, const struct mana_img_region *g, uint64_t k,
                             uint64_t addr, unsigned char *dst, int zero_fill, char *err) {
  const struct mana_img_chunk *c = &r->chunks[g->first_chunk + k];
  const char *gp = mana_imgr_str(r, g->path_off);
  mana_img_reader *p;
  if (mana_imgr_parent(r, &p, err) < 0) return -1;
  int64_t pk = mana_imgr_find_chunk(p, addr, c->raw_len, &r->parent_hint);
  if (pk < 0 || p->chunks[pk].hash != c->hash)
    return mana_img_err(err, "mana: parent image %s does not hold %R chunk %u of image %s (at "
                        "%x) — " OLDER_GEN, p->path, g, gp, k, r->path, addr);
  const struct mana_img_region *pg = &p->regions[r->parent_hint];
  return read_chunk(p, pg, (uint64_t)pk - pg->first_chunk, addr, dst, zero_fill, err);
}

/* Reads chunk k of region g (starting at memory address addr) into dst (raw_len bytes) and
 * checks its hash. Zero chunks are written only when zero_fill; they have nothing in the file
 * that could be damaged. */
static int read_chunk(mana_img_reader *r, const struct mana_img_region *g, uint64_t k,
                      uint64_t addr, unsigned char *dst, int zero_fill, char *err) {
  const struct mana_img_chunk *c = &r->chunks[g->first_chunk + k];
  const char *gp = mana_imgr_str(r, g->path_off);
  int rc;
  switch (c->enc) {
    case MANA_C_ZERO:
      if (zero_fill) memset(dst, 0, c->raw_len);
      return 0;
    case MANA_C_PARENT:
      return read_parent_chunk(r, g, k, addr, dst, zero_fill, err);
    case MANA_C_RAW:
      rc = mana_img_pread_full(r->fd, dst, c->raw_len, c->file_off);
      break;
    default: /* MANA_C_ZSTD; open() rejected anything else */
      if (!r->dctx) {
        r->dctx = ZSTD_createDCtx_advanced(mana_img_zstd_mem(&r->a));
        r->zbuf_cap = MANA_IMG_CHUNK_SIZE; /* stored_len < raw_len <= chunk size */
        r->zbuf = r->dctx ? r->a.alloc(r->a.ctx, r->zbuf_cap) : NULL;
        if (!r->zbuf)
          return mana_img_err(err, "mana: out of memory for the zstd decompressor reading "
                              "image %s", r->path);
      }
      rc = mana_img_pread_full(r->fd, r->zbuf, c->stored_len, c->file_off);
      if (rc == 0) {
        size_t n = ZSTD_decompressDCtx(r->dctx, dst, c->raw_len, r->zbuf, c->stored_len);
        if (ZSTD_isError(n) || n != c->raw_len)
          return mana_img_err(err, "mana: image %s is corrupt: %R chunk %u does not decompress "
                              "(%s) — " OLDER_GEN, r->path, g, gp, k,
                              ZSTD_isError(n) ? ZSTD_getErrorName(n) : "short frame");
      }
      break;
  }
  if (rc < 0)
    return mana_img_err(err, "mana: cannot read image %s: %R chunk %u at offset %u: %e",
                        r->path, g, gp, k, c->file_off, errno);
  if (rc > 0)
    return mana_img_err(err, "mana: image %s is truncated at %R chunk %u (offset %u) — "
                        OLDER_GEN, r->path, g, gp, k, c->file_off);
  if (mana_img_hash(dst, c->raw_len) != c->hash)
    return mana_img_err(err, "mana: image %s is corrupt: %R chunk %u checksum mismatch — "
                        OLDER_GEN, r->path, g, gp, k);
  return 0;
}

int mana_imgr_read_region(mana_img_reader *r, uint64_t i, void *dst, int zero_fill,
                          char err[MANA_IMG_ERRLEN]) {
  if (i >= r->m.nregions)
    return mana_img_err(err, "mana: image %s has no region %u (it has %u)", r->path, i,
                        r->m.nregions);
  const struct mana_img_region *g = &r->regions[i];
  unsigned char *d = dst;
  uint64_t addr = g->start;
  for (uint64_t k = 0; k < g->nchunks; k++) {
    if (read_chunk(r, g, k, addr, d, zero_fill, err) < 0) return -1;
    d += r->chunks[g->first_chunk + k].raw_len;
    addr += r->chunks[g->first_chunk + k].raw_len;
  }
  return 0;
}

int mana_imgr_verify(mana_img_reader *r, char err[MANA_IMG_ERRLEN]) {
  if (!r->vbuf) {
    r->vbuf_cap = MANA_IMG_CHUNK_SIZE;
    r->vbuf = r->a.alloc(r->a.ctx, r->vbuf_cap);
    if (!r->vbuf)
      return mana_img_err(err, "mana: out of memory verifying image %s", r->path);
  }
  for (uint64_t i = 0; i < r->m.nregions; i++) {
    const struct mana_img_region *g = &r->regions[i];
    uint64_t addr = g->start;
    for (uint64_t k = 0; k < g->nchunks; k++) {
      if (read_chunk(r, g, k, addr, r->vbuf, 0, err) < 0) return -1;
      addr += r->chunks[g->first_chunk + k].raw_len;
    }
  }
  return 0;
}

void mana_imgr_close(mana_img_reader *r) {
  if (r) reader_free(r);
}
