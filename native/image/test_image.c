/* test_image.c — round-trip and damage tests for the image library, plus a throughput bench.
 *
 *   test_image [DIR]                       run the tests; images go to DIR (kept) or a temp dir
 *   test_image --bench DIR MIB LEVEL [random|mixed] [THREADS]
 *                                          write MIB MiB with zstd LEVEL (0 = raw) and fsync
 *                                          (with THREADS writing threads, default 1), then
 *                                          read it back; prints MB/s for both and where the
 *                                          write's time went
 *
 * With DIR, the test leaves raw.img and zstd.img there together with fixture.json describing
 * what they must contain; test/native-image.test.ts reads them through the Node addon.
 * This is a test program: it may use stdio and malloc, the library under test may not. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mana_image.h"

static int passed, failed;

#define CHECK(cond, ...)                                   \
  do {                                                     \
    if (cond) {                                            \
      passed++;                                            \
    } else {                                               \
      failed++;                                            \
      fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
      fprintf(stderr, __VA_ARGS__);                        \
      fputc('\n', stderr);                                 \
    }                                                      \
  } while (0)

/* ---------- an allocator that counts, to catch leaks and size mismatches ---------- */
struct counting {
  long live_blocks;
  long long live_bytes;
};
static void *c_alloc(void *ctx, size_t n) {
  struct counting *c = ctx;
  void *p = mana_img_mmap_alloc.alloc(NULL, n);
  if (p) {
    c->live_blocks++;
    c->live_bytes += (long long)n;
  }
  return p;
}
static void c_free(void *ctx, void *p, size_t n) {
  struct counting *c = ctx;
  if (!p) return;
  c->live_blocks--;
  c->live_bytes -= (long long)n;
  mana_img_mmap_alloc.free(NULL, p, n);
}

/* ---------- data ---------- */
static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next_rand(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}
static void fill_random(void *p, size_t n) {
  uint64_t *w = p;
  for (size_t i = 0; i < n / 8; i++) w[i] = next_rand();
}
/* Compressible but not trivial: words from a small vocabulary with random numbers. */
static void fill_mixed(void *p, size_t n) {
  static const char *words[] = {"checkpoint ", "restart ", "region ", "0x7f3a ", "rank ",
                                "mpi ", "heap\n", "stack "};
  char *s = p;
  size_t i = 0;
  while (i < n) {
    uint64_t r = next_rand();
    const char *w = words[r & 7];
    char num[24];
    int k = snprintf(num, sizeof num, "%u ", (unsigned)(r >> 40) % 1000);
    for (const char *q = w; *q && i < n; q++) s[i++] = *q;
    for (int j = 0; j < k && i < n; j++) s[i++] = num[j];
  }
}

static void *map(size_t n) {
  void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    perror("mmap");
    exit(2);
  }
  return p;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---------- the image the tests write ---------- */
#define MiB (1024u * 1024u)
enum { NREG = 7 };
struct reg {
  struct mana_img_region r;
  const char *path;
  unsigned char *data; /* NULL for no-data regions */
};
static struct reg regs[NREG];

static void build_regions(void) {
  /* Addresses are the process's own for most regions; one uses a fake address to check
   * that the writer reads from `data`, not from r->start. */
  size_t n;
  /* 0: random, ends with a partial chunk */
  n = 8 * MiB + 12 * 4096;
  regs[0].data = map(n);
  fill_random(regs[0].data, n);
  regs[0].r = (struct mana_img_region){.start = (uint64_t)(uintptr_t)regs[0].data,
                                       .prot = PROT_READ | PROT_WRITE,
                                       .kind = MANA_R_ANON};
  regs[0].r.end = regs[0].r.start + n;
  /* 1: heap-like: zero chunks around a chunk with a few bytes set */
  n = 16 * MiB;
  regs[1].data = map(n);
  memset(regs[1].data, 0, n);
  regs[1].data[MANA_IMG_WRITE_CHUNK_SIZE + 12345] = 0x5a;
  regs[1].data[2 * MANA_IMG_WRITE_CHUNK_SIZE - 1] = 0xa5;
  regs[1].r = (struct mana_img_region){.start = 0x7f0000000000ull, .end = 0x7f0000000000ull + n,
                                       .prot = PROT_READ | PROT_WRITE, .kind = MANA_R_HEAP};
  /* 2: guard page range, nothing stored */
  regs[2].r = (struct mana_img_region){.start = 0x7f0001000000ull, .end = 0x7f0001010000ull,
                                       .prot = PROT_NONE, .kind = MANA_R_GUARD,
                                       .flags = MANA_RF_NO_DATA};
  /* 3: compressible text, private file mapping */
  n = 9 * MiB;
  regs[3].data = map(n);
  fill_mixed(regs[3].data, n);
  regs[3].path = "/usr/lib/x86_64-linux-gnu/libfake.so.1";
  regs[3].r = (struct mana_img_region){.start = (uint64_t)(uintptr_t)regs[3].data,
                                       .prot = PROT_READ, .kind = MANA_R_FILE,
                                       .file_offset = 0x2000};
  regs[3].r.end = regs[3].r.start + n;
  /* 4: never touched anonymous memory: reads as the zero page */
  n = 8 * MiB;
  regs[4].data = map(n);
  regs[4].r = (struct mana_img_region){.start = (uint64_t)(uintptr_t)regs[4].data,
                                       .prot = PROT_READ | PROT_WRITE, .kind = MANA_R_ANON};
  regs[4].r.end = regs[4].r.start + n;
  /* 5: shared file mapping: re-mapped at restart, no data */
  regs[5].path = "/dev/shm/mana-test-segment";
  regs[5].r = (struct mana_img_region){.start = 0x7f0002000000ull, .end = 0x7f0002100000ull,
                                       .prot = PROT_READ | PROT_WRITE,
                                       .kind = MANA_R_SHARED_FILE, .flags = MANA_RF_NO_DATA};
  /* 6: a one-page stack */
  regs[6].data = map(4096);
  fill_random(regs[6].data, 4096);
  regs[6].r = (struct mana_img_region){.start = 0x7ffd00000000ull, .end = 0x7ffd00001000ull,
                                       .prot = PROT_READ | PROT_WRITE, .kind = MANA_R_STACK};
}

static struct mana_img_info make_info(void) {
  struct mana_img_info in;
  memset(&in, 0, sizeof in);
  in.pid = 4242;
  in.proc_id = 3;
  in.generation = 7;
  in.created_unix_ns = 1700000000123456789ull;
  strcpy(in.hostname, "testhost");
  strcpy(in.kernel_release, "6.1.0-test-amd64");
  strcpy(in.kernel_version, "#1 SMP PREEMPT_DYNAMIC Debian 6.1.0");
  strcpy(in.glibc_version, "2.36");
  strcpy(in.exe, "/usr/bin/testapp");
  strcpy(in.cwd, "/tmp");
  strcpy(in.cmdline, "testapp --size 42");
  in.vvar_start = 0x7ffff7fc0000ull;
  in.vdso_start = 0x7ffff7fc4000ull;
  in.vdso_end = 0x7ffff7fc6000ull;
  in.vdso_size = 0x2000;
  in.brk_start = 0x555555560000ull;
  in.brk_cur = 0x555555581000ull;
  in.ctx_version = 1;
  in.sigactions[10].handler = 0x401000;
  in.umask = 022;
  return in;
}

static const struct mana_img_thread threads[3] = {
    {.tid = 4242, .flags = MANA_TF_MAIN, .fs_base = 0x7ffff7d8a740ull, .sigmask = 0,
     .ctx = {.rsp = 0x7ffd00000f00ull, .rip = 0x401234, .mxcsr = 0x1f80, .fpucw = 0x37f}},
    {.tid = 4243, .flags = 0, .fs_base = 0x7ffff758b6c0ull, .tid_addr = 0x7ffff758b990ull},
    {.tid = 4244, .flags = MANA_TF_CKPT, .fs_base = 0x7ffff6d8a6c0ull},
};

struct fdspec {
  struct mana_img_fd f;
  const char *path;
};
static const struct fdspec fds[4] = {
    {{.fd = 0, .kind = MANA_FD_STD, .flags = O_RDWR}, "/dev/pts/0"},
    {{.fd = 3, .kind = MANA_FD_REGULAR, .flags = O_RDWR | O_APPEND, .offset = 1234,
      .mode = 0100644, .size = 99999}, "/tmp/data.log"},
    {{.fd = 4, .kind = MANA_FD_SKIPPED, .flags = O_RDONLY}, "pipe:[123]"},
    {{.fd = 5, .kind = MANA_FD_DELETED, .flags = O_RDONLY, .size = 10}, "/tmp/gone (deleted)"},
};

struct progress {
  int calls, monotonic;
  uint64_t raw, stored;
};
static void on_progress(void *arg, uint64_t raw, uint64_t stored) {
  struct progress *p = arg;
  p->monotonic = p->calls == 0 ? 1 : p->monotonic && raw > p->raw && stored >= p->stored;
  p->calls++;
  p->raw = raw;
  p->stored = stored;
}

/* ---------- helper threads for the writer (a test may create threads at will) ---------- */
struct pt_call {
  void (*fn)(void *, int);
  void *arg;
  int k;
};
static void *pt_main(void *p) {
  struct pt_call *c = p;
  c->fn(c->arg, c->k);
  return NULL;
}
static void pt_run(void *ctx, void (*fn)(void *, int), void *arg) {
  int n = *(int *)ctx;
  pthread_t th[MANA_IMG_MAX_WORKERS];
  struct pt_call calls[MANA_IMG_MAX_WORKERS];
  for (int k = 1; k < n; k++) {
    calls[k] = (struct pt_call){fn, arg, k};
    if (pthread_create(&th[k], NULL, pt_main, &calls[k]) != 0) abort();
  }
  fn(arg, 0);
  for (int k = 1; k < n; k++) pthread_join(th[k], NULL);
}
static int pt_n;
static struct mana_img_workers pt_workers = {0, pt_run, &pt_n};
static const struct mana_img_workers *workers_of(int n) {
  pt_n = pt_workers.n = n;
  return n > 1 ? &pt_workers : NULL;
}

static int use_direct; /* O_DIRECT for aligned raw data (check_parallel's last pass) */
static int write_image_n(const char *path, int level, const struct mana_img_alloc *a,
                         struct mana_img_header *hdr, int nthreads) {
  char err[MANA_IMG_ERRLEN];
  struct mana_img_info info = make_info();
  struct progress pr = {0, 0, 0, 0};
  struct mana_img_write_stats stats;
  memset(&stats, 0xff, sizeof stats);
  struct mana_img_write_opts o = {.compress_level = level, .fsync = 1, .progress = on_progress,
                                  .progress_arg = &pr, .stats = &stats,
                                  .workers = workers_of(nthreads), .direct = use_direct};
  mana_img_writer *w;
  if (mana_imgw_open(&w, path, &info, &o, a, err)) {
    fprintf(stderr, "%s\n", err);
    return -1;
  }
  for (int i = 0; i < 3; i++)
    if (mana_imgw_add_thread(w, &threads[i], err)) goto fail;
  for (int i = 0; i < NREG; i++)
    if (mana_imgw_add_region(w, &regs[i].r, regs[i].path, regs[i].data, err)) goto fail;
  for (int i = 0; i < 4; i++)
    if (mana_imgw_add_fd(w, &fds[i].f, fds[i].path, err)) goto fail;
  if (mana_imgw_close(w, hdr, err)) {
    fprintf(stderr, "%s\n", err);
    return -1;
  }
  CHECK(pr.calls > 0 && pr.monotonic && pr.raw == hdr->raw_bytes && pr.stored == hdr->stored_bytes,
        "progress: %d calls, raw %llu stored %llu", pr.calls, (unsigned long long)pr.raw,
        (unsigned long long)pr.stored);
  CHECK(stats.threads == (uint32_t)(nthreads > 1 ? nthreads : 1) && stats.cpu_ns > 0 &&
            stats.io_ns > 0 && stats.wall_ns >= stats.sync_ns,
        "write stats: %u threads, cpu %llu io %llu sync %llu wall %llu", stats.threads,
        (unsigned long long)stats.cpu_ns, (unsigned long long)stats.io_ns,
        (unsigned long long)stats.sync_ns, (unsigned long long)stats.wall_ns);
  return 0;
fail:
  fprintf(stderr, "%s\n", err);
  mana_imgw_abort(w);
  return -1;
}

static int write_image(const char *path, int level, const struct mana_img_alloc *a,
                       struct mana_img_header *hdr) {
  return write_image_n(path, level, a, hdr, 1);
}

static int one_line(const char *e) {
  return strncmp(e, "mana: ", 6) == 0 && !strchr(e, '\n') && strlen(e) < MANA_IMG_ERRLEN;
}

/* Reads the image back and compares everything with what was written. */
static void check_roundtrip(const char *path, int compressed, const struct mana_img_alloc *a,
                            const struct mana_img_header *whdr) {
  char err[MANA_IMG_ERRLEN];
  mana_img_reader *r;
  int rc = mana_imgr_open(&r, path, a, err);
  CHECK(rc == 0, "open %s: %s", path, err);
  if (rc) return;
  const struct mana_img_header *h = mana_imgr_header(r);
  CHECK(memcmp(h, whdr, sizeof *h) == 0, "header read back differs from header written");
  struct mana_img_info info = make_info();
  CHECK(h->info.pid == 4242 && h->info.generation == 7 && h->info.vdso_size == 0x2000 &&
            strcmp(h->info.cmdline, info.cmdline) == 0 && h->info.sigactions[10].handler == 0x401000,
        "info fields");
  CHECK(!!(h->flags & MANA_IMG_F_COMPRESSED) == compressed, "compressed flag %llu",
        (unsigned long long)h->flags);
  struct stat st;
  stat(path, &st);
  CHECK((uint64_t)st.st_size == h->file_size, "file_size");
  CHECK((st.st_mode & 0777) == 0600, "image mode is %o", st.st_mode & 0777);

  CHECK(mana_imgr_nthreads(r) == 3, "nthreads");
  for (uint64_t i = 0; i < 3 && i < mana_imgr_nthreads(r); i++)
    CHECK(memcmp(mana_imgr_thread(r, i), &threads[i], sizeof threads[i]) == 0, "thread %d",
          (int)i);
  CHECK(mana_imgr_nfds(r) == 4, "nfds");
  for (uint64_t i = 0; i < 4 && i < mana_imgr_nfds(r); i++) {
    const struct mana_img_fd *f = mana_imgr_fd(r, i);
    CHECK(f->fd == fds[i].f.fd && f->kind == fds[i].f.kind && f->offset == fds[i].f.offset &&
              strcmp(mana_imgr_str(r, f->path_off), fds[i].path) == 0,
          "fd %d", (int)i);
  }
  CHECK(mana_imgr_nregions(r) == NREG, "nregions");
  uint64_t raw = 0;
  for (int i = 0; i < NREG && (uint64_t)i < mana_imgr_nregions(r); i++) {
    const struct mana_img_region *g = mana_imgr_region(r, (uint64_t)i);
    size_t n = g->end - g->start;
    CHECK(g->start == regs[i].r.start && g->end == regs[i].r.end && g->kind == regs[i].r.kind &&
              g->prot == regs[i].r.prot && g->file_offset == regs[i].r.file_offset,
          "region %d fields", i);
    CHECK(strcmp(mana_imgr_str(r, g->path_off), regs[i].path ? regs[i].path : "") == 0,
          "region %d path", i);
    if (!regs[i].data) {
      CHECK(g->nchunks == 0 && g->stored_bytes == 0, "no-data region %d has chunks", i);
      continue;
    }
    raw += n;
    CHECK(g->nchunks == (n + MANA_IMG_WRITE_CHUNK_SIZE - 1) / MANA_IMG_WRITE_CHUNK_SIZE, "region %d chunks",
          i);
    /* Into fresh memory without zero fill, and into dirty memory with it. */
    unsigned char *fresh = map(n);
    rc = mana_imgr_read_region(r, (uint64_t)i, fresh, 0, err);
    CHECK(rc == 0, "read region %d: %s", i, err);
    CHECK(memcmp(fresh, regs[i].data, n) == 0, "region %d bytes differ (fresh)", i);
    memset(fresh, 0xee, n);
    rc = mana_imgr_read_region(r, (uint64_t)i, fresh, 1, err);
    CHECK(rc == 0, "read region %d zero_fill: %s", i, err);
    CHECK(memcmp(fresh, regs[i].data, n) == 0, "region %d bytes differ (zero_fill)", i);
    munmap(fresh, n);
  }
  CHECK(h->raw_bytes == raw, "raw_bytes %llu vs %llu", (unsigned long long)h->raw_bytes,
        (unsigned long long)raw);

  /* Encodings: the heap's first chunk and the untouched region are zero, random data raw,
   * text compressed when asked. */
  const struct mana_img_region *heap = mana_imgr_region(r, 1);
  CHECK(mana_imgr_chunk(r, heap->first_chunk)->enc == MANA_C_ZERO, "heap chunk 0 zero");
  CHECK(mana_imgr_chunk(r, heap->first_chunk + 1)->enc != MANA_C_ZERO, "heap chunk 1 data");
  CHECK(mana_imgr_chunk(r, heap->first_chunk + 3)->enc == MANA_C_ZERO, "heap chunk 3 zero");
  const struct mana_img_region *untouched = mana_imgr_region(r, 4);
  CHECK(untouched->stored_bytes == 0, "untouched region stores %llu bytes",
        (unsigned long long)untouched->stored_bytes);
  const struct mana_img_region *rnd = mana_imgr_region(r, 0);
  for (uint64_t k = 0; k < rnd->nchunks; k++)
    CHECK(mana_imgr_chunk(r, rnd->first_chunk + k)->enc == MANA_C_RAW, "random chunk %d raw",
          (int)k);
  CHECK(mana_imgr_chunk(r, rnd->first_chunk + rnd->nchunks - 1)->raw_len == 12 * 4096,
        "partial last chunk");
  const struct mana_img_region *txt = mana_imgr_region(r, 3);
  int nz = 0;
  for (uint64_t k = 0; k < txt->nchunks; k++)
    nz += mana_imgr_chunk(r, txt->first_chunk + k)->enc == MANA_C_ZSTD;
  CHECK(compressed ? nz == (int)txt->nchunks : nz == 0, "text chunks compressed: %d", nz);
  if (compressed)
    CHECK(txt->stored_bytes < (txt->end - txt->start) / 2, "text compresses to %llu",
          (unsigned long long)txt->stored_bytes);

  rc = mana_imgr_verify(r, err);
  CHECK(rc == 0, "verify: %s", err);
  mana_imgr_close(r);
}

/* ---------- damage ---------- */
/* The same image written by 2 and 3 threads, and by 2 with O_DIRECT: same records and chunks
 * (encoding, sizes, hashes, in memory order), only the chunks' file offsets may differ; reads
 * back the same. */
static void check_parallel(const char *dir, const char *seq_path,
                           const struct mana_img_alloc *a, int level) {
  char err[MANA_IMG_ERRLEN], path[4096];
  for (int pass = 0; pass < 3; pass++) {
    int n = pass == 0 ? 2 : 3;
    use_direct = pass == 2;
    if (use_direct) n = 2;
    snprintf(path, sizeof path, "%s/par%d-%d-%d.img", dir, n, level, use_direct);
    unlink(path);
    struct mana_img_header h;
    CHECK(write_image_n(path, level, a, &h, n) == 0, "write with %d threads", n);
    check_roundtrip(path, level > 0, a, &h);
    mana_img_reader *rs, *rp;
    if (mana_imgr_open(&rs, seq_path, a, err) != 0) {
      CHECK(0, "open %s: %s", seq_path, err);
      continue;
    }
    if (mana_imgr_open(&rp, path, a, err) != 0) {
      CHECK(0, "open %s: %s", path, err);
      mana_imgr_close(rs);
      continue;
    }
    const struct mana_img_header *hs = mana_imgr_header(rs), *hp = mana_imgr_header(rp);
    CHECK(hs->file_size == hp->file_size && hs->stored_bytes == hp->stored_bytes &&
              hs->raw_bytes == hp->raw_bytes,
          "%d threads: sizes differ from one thread's image", n);
    int same = 1, reordered = 0;
    uint64_t nreg = mana_imgr_nregions(rs);
    for (uint64_t i = 0; i < nreg; i++) {
      const struct mana_img_region *gs = mana_imgr_region(rs, i), *gp = mana_imgr_region(rp, i);
      same &= gs->first_chunk == gp->first_chunk && gs->nchunks == gp->nchunks &&
              gs->stored_bytes == gp->stored_bytes;
      for (uint64_t k = 0; same && k < gs->nchunks; k++) {
        const struct mana_img_chunk *cs = mana_imgr_chunk(rs, gs->first_chunk + k);
        const struct mana_img_chunk *cp = mana_imgr_chunk(rp, gp->first_chunk + k);
        same &= cs->enc == cp->enc && cs->hash == cp->hash && cs->raw_len == cp->raw_len &&
                cs->stored_len == cp->stored_len;
        reordered |= cs->file_off != cp->file_off;
      }
    }
    CHECK(same, "%d threads, level %d: chunk records differ from one thread's", n, level);
    (void)reordered; /* allowed either way: the file order depends on scheduling */
    CHECK(mana_imgr_verify(rp, err) == 0, "verify %d threads: %s", n, err);
    mana_imgr_close(rp);
    mana_imgr_close(rs);
    unlink(path);
  }
  use_direct = 0;
}

/* An incremental image written by 2 threads against a parent written by one: unchanged
 * chunks become references, one changed chunk is stored, and the region reads back. */
static void check_parallel_incremental(const char *dir, const struct mana_img_alloc *a) {
  char err[MANA_IMG_ERRLEN], parent[4096], child[4096];
  snprintf(parent, sizeof parent, "%s/inc-parent.img", dir);
  snprintf(child, sizeof child, "%s/inc-child.img", dir);
  unlink(parent);
  unlink(child);
  struct mana_img_header hp, hc;
  CHECK(write_image(parent, 0, a, &hp) == 0, "write parent");
  unsigned char saved[64];
  unsigned char *p = regs[0].data + 2 * MANA_IMG_WRITE_CHUNK_SIZE + 777;
  memcpy(saved, p, sizeof saved);
  memset(p, 0x42, sizeof saved);
  struct mana_img_info info = make_info();
  struct mana_img_write_opts o = {.compress_level = 0, .fsync = 1, .parent = "inc-parent.img",
                                  .workers = workers_of(2)};
  mana_img_writer *w;
  int rc = mana_imgw_open(&w, child, &info, &o, a, err);
  for (int i = 0; rc == 0 && i < 3; i++) rc = mana_imgw_add_thread(w, &threads[i], err);
  for (int i = 0; rc == 0 && i < NREG; i++)
    rc = mana_imgw_add_region(w, &regs[i].r, regs[i].path, regs[i].data, err);
  if (rc == 0) rc = mana_imgw_close(w, &hc, err);
  else mana_imgw_abort(w);
  CHECK(rc == 0, "write incremental with 2 threads: %s", err);
  mana_img_reader *r;
  if (rc == 0 && mana_imgr_open(&r, child, a, err) == 0) {
    const struct mana_img_region *g = mana_imgr_region(r, 0);
    int raw = 0, refs = 0;
    for (uint64_t k = 0; k < g->nchunks; k++) {
      uint32_t e = mana_imgr_chunk(r, g->first_chunk + k)->enc;
      raw += e == MANA_C_RAW;
      refs += e == MANA_C_PARENT;
    }
    CHECK(raw == 1 && refs == (int)g->nchunks - 1 && mana_imgr_chunk(r, g->first_chunk + 2)->enc
              == MANA_C_RAW, "incremental region 0: %d raw, %d refs of %llu", raw, refs,
          (unsigned long long)g->nchunks);
    CHECK(hc.ref_bytes > 0 && hc.stored_bytes < hp.stored_bytes, "incremental stores %llu of %llu",
          (unsigned long long)hc.stored_bytes, (unsigned long long)hp.stored_bytes);
    size_t n = g->end - g->start;
    unsigned char *fresh = map(n);
    CHECK(mana_imgr_read_region(r, 0, fresh, 0, err) == 0, "read incremental: %s", err);
    CHECK(memcmp(fresh, regs[0].data, n) == 0, "incremental region 0 differs");
    munmap(fresh, n);
    CHECK(mana_imgr_verify(r, err) == 0, "verify incremental: %s", err);
    mana_imgr_close(r);
  } else {
    CHECK(0, "open incremental: %s", err);
  }
  memcpy(p, saved, sizeof saved);
  unlink(child);
  unlink(parent);
}

static void copy_file(const char *from, const char *to, off_t keep) {
  int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  char buf[1 << 16];
  ssize_t n;
  off_t done = 0;
  while ((n = read(in, buf, sizeof buf)) > 0) {
    if (keep >= 0 && done + n > keep) n = keep - done;
    if (n > 0 && write(out, buf, (size_t)n) != n) exit(2);
    done += n;
    if (keep >= 0 && done >= keep) break;
  }
  close(in);
  close(out);
}

static void poke(const char *path, off_t off, int xor_mask) {
  int fd = open(path, O_RDWR);
  unsigned char b;
  if (pread(fd, &b, 1, off) != 1) exit(2);
  b ^= (unsigned char)xor_mask;
  if (pwrite(fd, &b, 1, off) != 1) exit(2);
  close(fd);
}

static int open_fails_with(const char *path, const char *needle, char *err) {
  mana_img_reader *r;
  if (mana_imgr_open(&r, path, NULL, err) == 0) {
    mana_imgr_close(r);
    strcpy(err, "(opened fine)");
    return 0;
  }
  return strstr(err, needle) && strstr(err, path) && one_line(err);
}

static void check_damage(const char *dir, const char *img) {
  char p[4096], err[MANA_IMG_ERRLEN];
  struct stat st;
  stat(img, &st);

  /* Truncated by one byte, and cut in the middle of the data. */
  snprintf(p, sizeof p, "%s/trunc.img", dir);
  copy_file(img, p, st.st_size - 1);
  CHECK(open_fails_with(p, "is truncated (", err) && strstr(err, "older generation"),
        "truncated by 1: %s", err);
  copy_file(img, p, st.st_size / 2);
  CHECK(open_fails_with(p, "is truncated (", err), "truncated at half: %s", err);
  copy_file(img, p, 100);
  CHECK(open_fails_with(p, "truncated", err), "truncated to 100 bytes: %s", err);
  unlink(p);

  /* An interrupted write: data and metadata present, header still zero. */
  snprintf(p, sizeof p, "%s/noheader.img", dir);
  copy_file(img, p, -1);
  {
    int fd = open(p, O_WRONLY);
    static const unsigned char zero[MANA_IMG_HEADER_SIZE];
    if (pwrite(fd, zero, sizeof zero, 0) != (ssize_t)sizeof zero) exit(2);
    close(fd);
  }
  CHECK(open_fails_with(p, "has no header", err), "zero header: %s", err);
  unlink(p);

  /* Flipped bytes: header, metadata, then region data (found through the chunk table). */
  mana_img_reader *r;
  if (mana_imgr_open(&r, img, NULL, err)) {
    CHECK(0, "reopen: %s", err);
    return;
  }
  struct mana_img_header h = *mana_imgr_header(r);
  const struct mana_img_region *g0 = mana_imgr_region(r, 0);
  struct mana_img_region reg0 = *g0;
  const struct mana_img_chunk c2 = *mana_imgr_chunk(r, g0->first_chunk + 2);
  const struct mana_img_region *g3 = mana_imgr_region(r, 3);
  const struct mana_img_chunk c31 = *mana_imgr_chunk(r, g3->first_chunk + 1);
  mana_imgr_close(r);

  snprintf(p, sizeof p, "%s/flip.img", dir);
  copy_file(img, p, -1);
  poke(p, 40, 0x01); /* raw_bytes */
  CHECK(open_fails_with(p, "header checksum mismatch", err), "header flip: %s", err);
  copy_file(img, p, -1);
  poke(p, (off_t)(h.meta_offset + h.meta_size - 3), 0x20); /* inside a string */
  CHECK(open_fails_with(p, "metadata checksum mismatch", err), "meta flip: %s", err);

  copy_file(img, p, -1);
  poke(p, (off_t)(c2.file_off + c2.stored_len / 2), 0x80);
  if (mana_imgr_open(&r, p, NULL, err) == 0) {
    char want[128];
    snprintf(want, sizeof want, "region 0x%llx-0x%llx (anon) chunk 2 ",
             (unsigned long long)reg0.start, (unsigned long long)reg0.end);
    int rc = mana_imgr_verify(r, err);
    CHECK(rc < 0 && strstr(err, want) && strstr(err, "checksum mismatch") && strstr(err, p) &&
              one_line(err),
          "data flip, verify: %s", err);
    unsigned char *dst = map(reg0.end - reg0.start);
    rc = mana_imgr_read_region(r, 0, dst, 0, err);
    CHECK(rc < 0 && strstr(err, want) && one_line(err), "data flip, read: %s", err);
    munmap(dst, reg0.end - reg0.start);
    /* The other regions are still readable. */
    dst = map(8 * MiB);
    CHECK(mana_imgr_read_region(r, 6, dst, 0, err) == 0, "undamaged region: %s", err);
    munmap(dst, 8 * MiB);
    mana_imgr_close(r);
  } else {
    CHECK(0, "data flip: open failed: %s", err);
  }

  if (c31.enc == MANA_C_ZSTD) {
    copy_file(img, p, -1);
    poke(p, (off_t)(c31.file_off + c31.stored_len / 2), 0x04);
    if (mana_imgr_open(&r, p, NULL, err) == 0) {
      int rc = mana_imgr_verify(r, err);
      CHECK(rc < 0 && strstr(err, "chunk 1 ") && strstr(err, "libfake.so.1") &&
                (strstr(err, "checksum mismatch") || strstr(err, "does not decompress")) &&
                one_line(err),
            "compressed flip: %s", err);
      mana_imgr_close(r);
    } else {
      CHECK(0, "compressed flip: open failed: %s", err);
    }
  }
  unlink(p);

  snprintf(p, sizeof p, "%s/not-an-image.img", dir);
  copy_file("/bin/sh", p, 20000);
  CHECK(open_fails_with(p, "is not a mana image", err), "not an image: %s", err);
  unlink(p);
  CHECK(open_fails_with("/nonexistent/x.img", "No such file", err), "missing: %s", err);
}

static void check_writer_errors(const char *dir, const char *existing) {
  char err[MANA_IMG_ERRLEN], p[4096];
  mana_img_writer *w;
  struct mana_img_info info = make_info();
  CHECK(mana_imgw_open(&w, existing, &info, NULL, NULL, err) < 0 &&
            strstr(err, "already exists") && one_line(err),
        "overwrite refused: %s", err);

  snprintf(p, sizeof p, "%s/bad.img", dir);
  unlink(p);
  if (mana_imgw_open(&w, p, &info, NULL, NULL, err)) {
    CHECK(0, "open bad.img: %s", err);
    return;
  }
  struct mana_img_region bad = {.start = 0x1000, .end = 0x1800, .kind = MANA_R_ANON};
  CHECK(mana_imgw_add_region(w, &bad, NULL, regs[0].data, err) < 0 &&
            strstr(err, "region 0x1000-0x1800 (anon)") && one_line(err),
        "unaligned region: %s", err);
  CHECK(mana_imgw_close(w, NULL, err) < 0 && one_line(err), "close after error: %s", err);
  CHECK(access(p, F_OK) < 0, "failed image was not removed");

  /* Abandoning a half-written image removes it. */
  snprintf(p, sizeof p, "%s/abandoned.img", dir);
  unlink(p);
  if (mana_imgw_open(&w, p, &info, NULL, NULL, err) == 0) {
    CHECK(mana_imgw_add_region(w, &regs[0].r, NULL, regs[0].data, err) == 0, "add: %s", err);
    mana_imgw_abort(w);
    CHECK(access(p, F_OK) < 0, "abandoned image was not removed");
  } else {
    CHECK(0, "open abandoned.img: %s", err);
  }

  /* A directory that does not exist. */
  snprintf(p, sizeof p, "%s/no/such/dir/x.img", dir);
  CHECK(mana_imgw_open(&w, p, &info, NULL, NULL, err) < 0 && strstr(err, p) && one_line(err),
        "bad dir: %s", err);
}

static void write_fixture(const char *dir, const struct mana_img_header *hr,
                          const struct mana_img_header *hz) {
  char p[4096];
  snprintf(p, sizeof p, "%s/fixture.json", dir);
  FILE *f = fopen(p, "w");
  if (!f) return;
  fprintf(f, "{\n  \"raw\": {\"headerHash\": \"%016llx\", \"fileSize\": %llu, \"storedBytes\": %llu},\n",
          (unsigned long long)hr->header_hash, (unsigned long long)hr->file_size,
          (unsigned long long)hr->stored_bytes);
  fprintf(f, "  \"zstd\": {\"headerHash\": \"%016llx\", \"fileSize\": %llu, \"storedBytes\": %llu},\n",
          (unsigned long long)hz->header_hash, (unsigned long long)hz->file_size,
          (unsigned long long)hz->stored_bytes);
  fprintf(f, "  \"rawBytes\": %llu,\n  \"regions\": [\n", (unsigned long long)hr->raw_bytes);
  for (int i = 0; i < NREG; i++)
    fprintf(f, "    {\"start\": \"0x%llx\", \"end\": \"0x%llx\", \"size\": %llu, \"path\": \"%s\"}%s\n",
            (unsigned long long)regs[i].r.start, (unsigned long long)regs[i].r.end,
            (unsigned long long)(regs[i].r.end - regs[i].r.start),
            regs[i].path ? regs[i].path : "", i + 1 < NREG ? "," : "");
  fprintf(f, "  ]\n}\n");
  fclose(f);
}

/* ---------- bench ---------- */
static int bench(const char *dir, unsigned mib, int level, const char *kind, int nthreads) {
  size_t n = (size_t)mib * MiB;
  unsigned char *buf = map(n);
  if (strcmp(kind, "mixed") == 0)
    fill_mixed(buf, n);
  else
    fill_random(buf, n);
  char p[4096], err[MANA_IMG_ERRLEN];
  snprintf(p, sizeof p, "%s/bench.img", dir);
  unlink(p);
  struct mana_img_region r = {.start = (uint64_t)(uintptr_t)buf,
                              .end = (uint64_t)(uintptr_t)buf + n,
                              .prot = PROT_READ | PROT_WRITE, .kind = MANA_R_ANON};
  struct mana_img_info info = make_info();
  struct mana_img_write_stats st;
  struct mana_img_write_opts o = {.compress_level = level, .fsync = 1, .stats = &st,
                                  .workers = workers_of(nthreads),
                                  .direct = getenv("BENCH_DIRECT") != NULL};
  struct mana_img_header h;
  double t0 = now();
  mana_img_writer *w;
  if (mana_imgw_open(&w, p, &info, &o, NULL, err) || mana_imgw_add_region(w, &r, NULL, buf, err) ||
      mana_imgw_close(w, &h, err)) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  double tw = now() - t0;
  /* Read from disk, not from the page cache the write just filled. */
  sync();
  int dc = open("/proc/sys/vm/drop_caches", O_WRONLY);
  if (dc >= 0) {
    if (write(dc, "3", 1) != 1) perror("drop_caches");
    close(dc);
  }
  memset(buf, 0, n);
  t0 = now();
  mana_img_reader *rd;
  if (mana_imgr_open(&rd, p, NULL, err) || mana_imgr_read_region(rd, 0, buf, 0, err)) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  double tr = now() - t0;
  mana_imgr_close(rd);
  printf("bench %u MiB %s level %d threads %d: write %.0f MB/s (stored %.0f MiB in %.2fs: cpu "
         "%.2fs io %.2fs sync %.2fs summed over threads), read %.0f MB/s (%s)\n",
         mib, kind, level, nthreads, n / tw / 1e6, h.stored_bytes / (double)MiB, tw,
         st.cpu_ns / 1e9, st.io_ns / 1e9, st.sync_ns / 1e9, n / tr / 1e6,
         dc >= 0 ? "cold cache" : "warm cache");
  unlink(p);
  return 0;
}

int main(int argc, char **argv) {
  if (argc >= 5 && strcmp(argv[1], "--bench") == 0)
    return bench(argv[2], (unsigned)atoi(argv[3]), atoi(argv[4]), argc > 5 ? argv[5] : "random",
                 argc > 6 ? atoi(argv[6]) : 1);

  char tmpl[] = "/tmp/mana-test-image-XXXXXX";
  const char *dir = argc > 1 ? argv[1] : mkdtemp(tmpl);
  int keep = argc > 1;
  if (!dir) {
    perror("mkdtemp");
    return 2;
  }
  mkdir(dir, 0700);
  build_regions();

  char raw[4096], zst[4096];
  snprintf(raw, sizeof raw, "%s/raw.img", dir);
  snprintf(zst, sizeof zst, "%s/zstd.img", dir);
  unlink(raw);
  unlink(zst);

  struct counting cnt = {0, 0};
  struct mana_img_alloc counted = {c_alloc, c_free, &cnt};
  struct mana_img_header hr, hz;
  CHECK(write_image(raw, 0, &counted, &hr) == 0, "write raw image");
  CHECK(cnt.live_blocks == 0 && cnt.live_bytes == 0, "writer leaks %ld blocks %lld bytes",
        cnt.live_blocks, cnt.live_bytes);
  CHECK(write_image(zst, 3, &counted, &hz) == 0, "write zstd image");
  CHECK(cnt.live_blocks == 0 && cnt.live_bytes == 0, "zstd writer leaks %ld blocks %lld bytes",
        cnt.live_blocks, cnt.live_bytes);
  CHECK(hz.stored_bytes < hr.stored_bytes, "compression saved nothing");

  check_roundtrip(raw, 0, &counted, &hr);
  check_roundtrip(zst, 1, &counted, &hz);
  CHECK(cnt.live_blocks == 0 && cnt.live_bytes == 0, "reader leaks %ld blocks %lld bytes",
        cnt.live_blocks, cnt.live_bytes);

  check_parallel(dir, raw, &counted, 0);
  check_parallel(dir, zst, &counted, 3);
  CHECK(cnt.live_blocks == 0 && cnt.live_bytes == 0, "parallel writer leaks %ld blocks %lld bytes",
        cnt.live_blocks, cnt.live_bytes);
  check_parallel_incremental(dir, &counted);

  check_damage(dir, raw);
  check_damage(dir, zst);
  check_writer_errors(dir, raw);

  if (keep) {
    write_fixture(dir, &hr, &hz);
  } else {
    unlink(raw);
    unlink(zst);
    rmdir(dir);
  }
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
