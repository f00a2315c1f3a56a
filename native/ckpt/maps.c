/* maps.c — the memory regions of the process, from one snapshot of /proc/self/maps taken
 * before the image writer starts (so its own later mappings are not part of the image). */
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"
#include "rawsys.h"

extern uint64_t mana_vvar_start, mana_vdso_start, mana_vdso_end;
extern uint64_t mana_rw_start, mana_rw_end;

static char *buf;
static uint64_t arena, arena_size, arena_used;
static size_t cap, len;

/* Private anonymous regions without PROT_READ (PROT_NONE, write-only, exec-only) hold live
 * data as often as not (GC barriers, guard tricks): they get PROT_READ added for the write and
 * their own protection back in mana_release_copies, after the writer has copied the last
 * queued chunk. The list is mmap'd once per write, sized by mana_raw_total's count. */
struct unreadable {
  uint64_t start, end;
  int prot;
};
static struct unreadable *unread;
static size_t unread_cap, unread_n, unread_bytes;

static int snapshot(void) {
  if (!buf) {
    cap = 1 << 20;
    void *p = (void *)raw_syscall6(SYS_mmap, 0, cap, PROT_READ | PROT_WRITE,
                                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if ((long)p < 0 && (long)p > -4096) return -1;
    buf = p;
  }
  for (;;) {
    int fd = (int)raw_syscall3(SYS_open, "/proc/self/maps", O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0) return -1;
    len = 0;
    long r;
    while ((r = raw_syscall3(SYS_read, fd, buf + len, cap - 1 - len)) > 0) {
      len += (size_t)r;
      if (len + 1 >= cap) break;
    }
    raw_syscall1(SYS_close, fd);
    if (len + 1 < cap) break;
    void *p = (void *)raw_syscall4(SYS_mremap, buf, cap, cap * 2, MREMAP_MAYMOVE);
    if ((long)p < 0 && (long)p > -4096) return -1;
    buf = p;
    cap *= 2;
  }
  buf[len] = 0;
  return 0;
}

struct line {
  uint64_t start, end, offset;
  int prot, shared;
  int above_guard; /* the line just below is an inaccessible private anonymous one */
  const char *path; /* NUL-terminated inside buf (we cut the newline) */
};

static int changes_while_writing(const struct line *l);

/* Parses the line at *pos and advances; returns 0 at the end. */
static int next_line(size_t *pos, struct line *l) {
  static uint64_t guard_end; /* end of the last PROT_NONE private anonymous line seen */
  if (*pos == 0) guard_end = 0;
  if (*pos >= len) return 0;
  char *p = buf + *pos;
  char *eol = p;
  while (*eol && *eol != '\n') eol++;
  *pos = (size_t)(eol - buf) + 1;
  *eol = 0; /* the snapshot is parsed twice: the second pass sees the same NULs */
  const char *q;
  mana_parse_u64(p, &q, &l->start, 16);
  mana_parse_u64(q + 1, &q, &l->end, 16);
  q++;
  l->prot = (q[0] == 'r' ? PROT_READ : 0) | (q[1] == 'w' ? PROT_WRITE : 0) |
            (q[2] == 'x' ? PROT_EXEC : 0);
  l->shared = q[3] == 's';
  q += 5;
  mana_parse_u64(q, &q, &l->offset, 16);
  /* dev, inode */
  for (int k = 0; k < 2; k++) {
    while (*q == ' ') q++;
    while (*q && *q != ' ') q++;
  }
  while (*q == ' ') q++;
  l->path = q;
  l->above_guard = guard_end && guard_end == l->start;
  guard_end = !l->prot && !l->shared && !q[0] ? l->end : 0;
  return 1;
}

static int ends_with(const char *s, const char *suf) {
  size_t a = mana_strlen(s), b = mana_strlen(suf);
  return a >= b && mana_streq(s + a - b, suf);
}

static int skipped(const struct line *l) {
  return mana_streq(l->path, "[vvar]") || mana_streq(l->path, "[vvar_vclock]") ||
         mana_streq(l->path, "[vdso]") || mana_streq(l->path, "[vsyscall]") ||
         (mana_restart_info.brk_guard && l->start == mana_restart_info.brk_guard);
}

/* Private, not backed by a file ("", [heap], [stack], [anon:NAME]) and not readable: its data
 * is saved by making it readable for the duration of the write. */
static int unreadable_anon(const struct line *l) {
  return !(l->prot & PROT_READ) && !l->shared && l->path[0] != '/';
}

static void classify(const struct line *l, struct mana_img_region *r) {
  memset(r, 0, sizeof *r);
  r->start = l->start;
  r->end = l->end;
  r->prot = (uint32_t)l->prot;
  r->file_offset = l->offset;
  const char *p = l->path;
  int file = p[0] == '/';
  if (!(l->prot & PROT_READ) && (file || l->shared)) {
    /* Not readable and backed by a file: ld.so's gap reservations between a library's
     * segments and the like. Reading them is not safe (a page past the file's end raises
     * SIGBUS) and they hold nothing of their own, so they stay data-less guards. Shared
     * non-readable mappings are kept as guards too. */
    r->kind = MANA_R_GUARD;
    r->flags = MANA_RF_NO_DATA;
  } else if (mana_streq(p, "[heap]")) {
    r->kind = MANA_R_HEAP;
  } else if (mana_streq(p, "[stack]")) {
    r->kind = MANA_R_STACK;
  } else if (l->shared) {
    int anon = !file || mana_strneq(p, "/dev/zero", 9) || mana_strneq(p, "/dev/shm/", 9) ||
               mana_strneq(p, "/SYSV", 5) || ends_with(p, " (deleted)");
    r->kind = anon ? MANA_R_SHARED_ANON : MANA_R_SHARED_FILE;
    if (!anon) r->flags = MANA_RF_NO_DATA;
  } else if (file) {
    r->kind = MANA_R_FILE;
  } else {
    r->kind = MANA_R_ANON;
  }
}

/* Bytes of [start, end) that are saved (not excluded by a plugin). */
static uint64_t saved_bytes(uint64_t start, uint64_t end) {
  uint64_t from = start, ps, pe, n = 0;
  while (mana_plugins_next_piece(&from, end, &ps, &pe)) n += pe - ps;
  return n;
}

uint64_t mana_raw_total(void) {
  /* Forget, never release, what the last write left here: released already in this process,
   * or, in a restored one, a copy of the state mid-write of the image it came from (the copy
   * of libmana's data is taken while that write's arena and list exist), naming memory that
   * was never restored and may be someone else's now. A failed write releases with these. */
  arena = arena_size = arena_used = 0;
  unread = NULL;
  unread_n = unread_bytes = 0;
  mana_vvar_start = mana_vdso_start = mana_vdso_end = 0;
  /* memory the plugins keep out of the image (a lower half), asked once per image, now that
   * the application is parked; mana_add_regions cuts it out of the snapshot's lines */
  mana_plugins_collect_ranges();
  if (snapshot() != 0) {
    len = 0;
    return 0;
  }
  uint64_t total = 0;
  size_t pos = 0;
  unread_cap = 0;
  struct line l;
  while (next_line(&pos, &l)) {
    if (mana_streq(l.path, "[vvar]")) mana_vvar_start = l.start;
    if (mana_streq(l.path, "[vdso]")) {
      mana_vdso_start = l.start;
      mana_vdso_end = l.end;
    }
    if (skipped(&l)) continue;
    uint64_t keep = saved_bytes(l.start, l.end);
    if (!keep) continue;
    total += keep;
    if (unreadable_anon(&l)) unread_cap++;
    if (changes_while_writing(&l)) arena_size += l.end - l.start;
  }
  if (!mana_vvar_start) mana_vvar_start = mana_vdso_start;
  return total;
}

/* The writer hashes a chunk when it is added and copies it to the file later, so memory
 * that changes during the write must be handed over as a copy: the checkpoint thread's own
 * stack (with its TLS, which glibc keeps at the top of the stack mapping), the stacks of the
 * writer's helper threads (pool.c), the stacks of threads plugins keep out of the image
 * (they run on, plugin.c), libmana's data, and, cheaply, every small writable region (ld.so
 * and libc bookkeeping that a library call might touch). One arena holds all copies until
 * mana_imgw_close. When an excluded thread's stack could not be located, every line shaped
 * like a thread stack (private, anonymous, writable, right above a guard) is copied. */
#define SMALL_RW (1ull << 20)
/* (larger lines above a guard are malloc heaps and the like, not stacks) */
#define STACK_LIKE_MAX (64ull << 20)

static int changes_while_writing(const struct line *l) {
  uint64_t sp = (uint64_t)__builtin_frame_address(0);
  if (!(l->prot & PROT_READ)) return 0;
  return (sp >= l->start && sp < l->end) || (l->start < mana_rw_end && mana_rw_start < l->end) ||
         ((l->prot & PROT_WRITE) && l->end - l->start <= SMALL_RW) ||
         mana_pool_stack_in(l->start, l->end) || mana_plugins_stack_in(l->start, l->end) ||
         (mana_plugins_stack_unknown() && l->above_guard && (l->prot & PROT_WRITE) &&
          !l->shared && !l->path[0] && l->end - l->start <= STACK_LIKE_MAX);
}

/* After mana_imgw_close or mana_imgw_abort: frees the copies and gives the unreadable
 * regions their own protection back. */
void mana_release_copies(void) {
  if (arena) raw_syscall2(SYS_munmap, arena, arena_size);
  arena = arena_size = arena_used = 0;
  for (size_t i = 0; i < unread_n; i++)
    raw_syscall3(SYS_mprotect, unread[i].start, unread[i].end - unread[i].start, unread[i].prot);
  if (unread) raw_syscall2(SYS_munmap, unread, unread_bytes);
  unread = NULL;
  unread_n = unread_bytes = 0;
}

static int make_readable(const struct line *l, char *err) {
  struct mana_fmt f;
  if (unread_n >= unread_cap) { /* cannot happen: the same snapshot was counted */
    mana_fmt_init(&f, err, MANA_IMG_ERRLEN);
    mana_fmt_str(&f, "internal error: more unreadable regions than counted");
    return -1;
  }
  long rc = raw_syscall3(SYS_mprotect, l->start, l->end - l->start, l->prot | PROT_READ);
  if (rc != 0) {
    mana_fmt_init(&f, err, MANA_IMG_ERRLEN);
    mana_fmt_str(&f, "cannot make the unreadable region ");
    mana_fmt_x64(&f, l->start);
    mana_fmt_str(&f, "-");
    mana_fmt_x64(&f, l->end);
    mana_fmt_str(&f, " readable to save it (mprotect errno ");
    mana_fmt_u64(&f, (uint64_t)-rc);
    mana_fmt_str(&f, ")");
    return -1;
  }
  unread[unread_n].start = l->start;
  unread[unread_n].end = l->end;
  unread[unread_n].prot = l->prot;
  unread_n++;
  return 0;
}

/* One saved piece [ps, pe) of the snapshot line lp (the whole line when nothing is excluded). */
static int add_piece(mana_img_writer *w, const struct line *lp, uint64_t ps, uint64_t pe,
                     char *err) {
  struct line l = *lp;
  struct mana_img_region r;
  l.offset = lp->offset + (ps - lp->start); /* a file mapping's piece starts further in */
  l.start = ps;
  l.end = pe;
  classify(&l, &r);
  /* A shared file mapping is re-mapped from its file at restart, not saved: write its dirty
   * pages back now so that the file on disk is what the program saw at this checkpoint
   * (also after a node crash). Changes made to the file afterwards are seen at restart. */
  if (r.kind == MANA_R_SHARED_FILE && (r.prot & PROT_WRITE))
    raw_syscall3(SYS_msync, r.start, r.end - r.start, MS_SYNC);
  const char *path = l.path[0] ? l.path : NULL;
  const void *data = (const void *)r.start;
  uint64_t size = r.end - r.start;
  /* the whole line decides, as it did when mana_raw_total sized the arena */
  if (!(r.flags & MANA_RF_NO_DATA) && changes_while_writing(lp) &&
      arena_used + size <= arena_size) {
    void *copy = (void *)(arena + arena_used);
    memcpy(copy, data, size);
    arena_used += size;
    data = copy;
  }
  return mana_imgw_add_region(w, &r, path, data, err);
}

int mana_add_regions(void *wp, char *err) {
  mana_img_writer *w = wp;
  if (len == 0) {
    struct mana_fmt f;
    mana_fmt_init(&f, err, MANA_IMG_ERRLEN);
    mana_fmt_str(&f, "cannot read /proc/self/maps");
    return -1;
  }
  size_t pos = 0;
  struct line l;
  if (arena_size) {
    long a = raw_syscall6(SYS_mmap, 0, arena_size, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (a < 0 && a > -4096) {
      struct mana_fmt f;
      mana_fmt_init(&f, err, MANA_IMG_ERRLEN);
      mana_fmt_str(&f, "out of memory for a copy of the checkpoint thread's own memory");
      arena_size = 0;
      return -1;
    }
    arena = (uint64_t)a;
    arena_used = 0;
  }
  unread_n = 0;
  if (unread_cap) {
    unread_bytes = (unread_cap * sizeof *unread + 4095) & ~(size_t)4095;
    long a = raw_syscall6(SYS_mmap, 0, unread_bytes, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (a < 0 && a > -4096) {
      struct mana_fmt f;
      mana_fmt_init(&f, err, MANA_IMG_ERRLEN);
      mana_fmt_str(&f, "out of memory for the list of unreadable regions");
      unread_bytes = 0;
      return -1;
    }
    unread = (struct unreadable *)a;
  }
  while (next_line(&pos, &l)) {
    if (skipped(&l)) continue;
    uint64_t from = l.start, ps, pe;
    /* A line may be excluded in part (the kernel merges adjacent anonymous mappings, so a
     * plugin's memory can share a line with the application's): only the pieces left are
     * saved, as regions of their own. A line excluded as a whole is not touched at all. */
    if (!mana_plugins_next_piece(&from, l.end, &ps, &pe)) continue;
    if (unreadable_anon(&l) && make_readable(&l, err) != 0) return -1;
    do {
      if (add_piece(w, &l, ps, pe, err) != 0) return -1;
    } while (mana_plugins_next_piece(&from, l.end, &ps, &pe));
  }
  return 0;
}
