/* test_track: checks lh_track.so as the lower world uses it.  Run by run_track_test.sh with
 * LD_PRELOAD=lh_track.so:libmimalloc.so.2; here the whole process plays the lower world.
 * Prints one line per check ("ok" or "FAIL") and exits 0 only if all pass.
 *
 *   (a) brk never moves: 100k mixed malloc/free up to 4 MiB plus realloc growth
 *   (b) every malloc'd pointer is inside a tracked range
 *   (c) threads: tids listed, stacks tracked with a guard, all signals blocked, cleanup on
 *       join/exit/detach, creator's mask unchanged
 *   (d) munmap splits, MAP_FIXED replaces, mremap moves/shrinks, shmat/shmdt, errno
 *   (e) every /proc/self/maps line of a loaded object is covered
 *   (f) nothing is over-reported: every reported range is mapped, the vDSO and the main stack
 *       are not claimed, the table never dropped a range
 *   (g) concurrent mmap/mremap/munmap from 4 threads, with the tables read from a signal
 *       handler meanwhile: nothing lost, nothing stale, no deadlock
 *   (h) after fork the child lists none of the parent's threads and still tracks its mmaps
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#ifdef TRACK_HOLES_LIB
/* Built a second time as out/test/track_holes.so with 2 MiB segment alignment: ld.so then
 * leaves PROT_NONE gaps between the segments, which (e) checks are reported. */
int track_holes_data[1000] = {1};
int track_holes_fn(void) { return track_holes_data[0]; }
#else

#include "lh_track.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#define P 4096ul

static int failures;

static void check(int ok, const char *name, const char *fmt, ...)
{
    va_list ap;
    printf("%s %-22s ", ok ? "ok  " : "FAIL", name);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
    if (!ok)
        failures++;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- snapshots (static buffers, so that taking one allocates nothing) -------------------- */

static struct lh_range R[65536];
static int nR;

static void snap_ranges(void)
{
    nR = lh_track_ranges(R, (int)(sizeof R / sizeof R[0]));
    if (nR < 0 || nR > (int)(sizeof R / sizeof R[0])) {
        printf("FAIL lh_track_ranges returned %d\n", nR);
        exit(1);
    }
}

static const struct lh_range *range_at(uint64_t a)
{
    for (int i = 0; i < nR; i++)
        if (R[i].start <= a && a < R[i].end)
            return &R[i];
    return NULL;
}

/* Is [lo, hi) covered by the union of the (sorted, merged) snapshot? */
static int covered(uint64_t lo, uint64_t hi)
{
    while (lo < hi) {
        const struct lh_range *r = range_at(lo);
        if (!r)
            return 0;
        lo = r->end;
    }
    return 1;
}

struct mline {
    uint64_t start, end, ino;
    unsigned maj, min;
    char perms[5];
    char path[256];
};
static struct mline M[65536];
static int nM;
static char maps_buf[8 << 20];

static void snap_maps(void)
{
    int fd = open("/proc/self/maps", O_RDONLY);
    size_t len = 0;
    ssize_t n;
    while (fd >= 0 && (n = read(fd, maps_buf + len, sizeof maps_buf - 1 - len)) > 0)
        len += (size_t)n;
    close(fd);
    maps_buf[len] = 0;
    nM = 0;
    for (char *line = maps_buf, *nl; *line && nM < (int)(sizeof M / sizeof M[0]); line = nl + 1) {
        nl = strchr(line, '\n');
        if (!nl)
            break;
        *nl = 0;
        struct mline *m = &M[nM];
        int off = 0;
        if (sscanf(line, "%lx-%lx %4s %*x %x:%x %lu %n", &m->start, &m->end, m->perms, &m->maj,
                   &m->min, &m->ino, &off) < 6)
            continue;
        snprintf(m->path, sizeof m->path, "%s", line + off);
        nM++;
    }
}

static int mapped(uint64_t lo, uint64_t hi)
{
    while (lo < hi) {
        int i;
        for (i = 0; i < nM; i++)
            if (M[i].start <= lo && lo < M[i].end)
                break;
        if (i == nM)
            return 0;
        lo = M[i].end;
    }
    return 1;
}

static int tid_listed(int32_t tid)
{
    static int32_t tids[4096];
    int n = lh_track_tids(tids, 4096);
    for (int i = 0; i < n && i < 4096; i++)
        if (tids[i] == tid)
            return 1;
    return 0;
}

/* ---- (a) + (b): the allocator never moves brk and lives in tracked ranges ---------------- */

static uint64_t rnd_state = 88172645463325252ull;
static uint64_t rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return rnd_state;
}

static void test_malloc(void)
{
    void *brk0 = sbrk(0);
    static char *slot[1024];
    static size_t slot_len[1024];
    long outside = 0, allocs = 0;
    for (int i = 0; i < 100000; i++) {
        int k = (int)(rnd() % 1024);
        free(slot[k]);
        uint64_t r = rnd() % 100;
        size_t len = r < 70 ? 1 + rnd() % 512 : r < 95 ? 1 + rnd() % 65536 : 1 + rnd() % (4 << 20);
        char *p = malloc(len);
        p[0] = p[len - 1] = 1; /* touch both ends */
        slot[k] = p;
        slot_len[k] = len;
        allocs++;
        outside += !lh_track_contains((uint64_t)p) || !lh_track_contains((uint64_t)p + len - 1);
    }
    char *g = NULL;
    size_t glen = 0;
    for (size_t len = 1; len <= (64ul << 20); len = len * 3 / 2 + 1) { /* realloc growth */
        g = realloc(g, len);
        memset(g + glen, 2, len - glen);
        glen = len;
        allocs++;
        outside += !lh_track_contains((uint64_t)g) || !lh_track_contains((uint64_t)g + len - 1);
    }
    void *c = calloc(1000, 1000), *al = aligned_alloc(1 << 16, 1 << 20), *pm = NULL;
    if (posix_memalign(&pm, 4096, 12345) != 0)
        pm = NULL;
    allocs += 3;
    outside += !lh_track_contains((uint64_t)c) + !lh_track_contains((uint64_t)al) +
               !(pm && lh_track_contains((uint64_t)pm));
    free(c);
    free(al);
    free(pm);
    free(g);
    for (int k = 0; k < 1024; k++)
        free(slot[k]);
    (void)slot_len;
    void *brk1 = sbrk(0);
    check(brk0 == brk1, "a: brk unchanged", "sbrk(0) %p before, %p after 100000 mixed "
          "malloc/free (<= 4 MiB) and realloc growth to 64 MiB", brk0, brk1);
    check(outside == 0, "b: malloc in ranges", "%ld of %ld blocks had an end outside every "
          "tracked range", outside, allocs);
}

/* ---- (c) threads --------------------------------------------------------------------------- */

struct tinfo {
    _Atomic int32_t tid;
    _Atomic uint64_t stack_addr, heap_addr;
    _Atomic int go;   /* set by main: finish */
    int how;          /* 0: return, 1: pthread_exit */
};

static void *thread_main(void *p)
{
    struct tinfo *t = p;
    volatile char local = 0;
    void *h = malloc(100); /* mimalloc gives each thread its own heap pages */
    atomic_store(&t->heap_addr, (uint64_t)h);
    atomic_store(&t->stack_addr, (uint64_t)&local);
    atomic_store(&t->tid, gettid());
    while (!atomic_load(&t->go))
        sleep_ms(1);
    free(h);
    if (t->how == 1)
        pthread_exit(NULL);
    return NULL;
}

static uint64_t sigblk(int32_t tid)
{
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/self/task/%d/status", tid);
    int fd = open(path, O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    if (fd >= 0)
        close(fd);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    char *s = strstr(buf, "SigBlk:");
    return s ? strtoull(s + 7, NULL, 16) : 0;
}

static int task_exists(int32_t tid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d", tid);
    return access(path, F_OK) == 0;
}

static void wait_started(struct tinfo *t)
{
    while (!atomic_load(&t->tid))
        sleep_ms(1);
}

static void test_threads(void)
{
    enum { NT = 6 };
    static struct tinfo ti[NT];
    pthread_t th[NT];
    pthread_attr_t small, given, det;
    void *given_stack = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE,
                             MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    pthread_attr_init(&small);
    pthread_attr_setstacksize(&small, 256 << 10);
    pthread_attr_init(&given);
    pthread_attr_setstack(&given, given_stack, 1 << 20);
    pthread_attr_init(&det);
    pthread_attr_setdetachstate(&det, PTHREAD_CREATE_DETACHED);

    /* The creator's own mask must come back unchanged: block SIGUSR1 to have something. */
    sigset_t s, before, after;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &s, NULL);
    pthread_sigmask(SIG_BLOCK, NULL, &before);

    /* 0-2: default attr; 3: 256 KiB stack; 4: caller's stack; 5: detached.  1 and 3 end
     * with pthread_exit. */
    const pthread_attr_t *attrs[NT] = {NULL, NULL, NULL, &small, &given, &det};
    /* glibc's first pthread_create installs its SIGSETXID handler: lh_track puts back what was
     * there, because in the split process the handlers are the upper half's. */
    uint64_t setxid_before[4], setxid_after[4];
    syscall(SYS_rt_sigaction, 33, NULL, setxid_before, 8);
    int rc = 0;
    int at_once = 0;
    for (int i = 0; i < NT; i++) {
        ti[i].how = i % 2;
        int before_n = lh_track_tids(NULL, 0);
        rc |= pthread_create(&th[i], attrs[i], thread_main, &ti[i]);
        at_once += lh_track_tids(NULL, 0) == before_n + 1;
        /* Listed as soon as pthread_create returns: wait for our own record of the tid only. */
        wait_started(&ti[i]);
    }
    pthread_sigmask(SIG_BLOCK, NULL, &after);
    syscall(SYS_rt_sigaction, 33, NULL, setxid_after, 8);
    int same = 1;
    for (int sig = 1; sig < 65; sig++)
        same &= sigismember(&before, sig) == sigismember(&after, sig);
    int handler_kept = memcmp(setxid_before, setxid_after, sizeof setxid_before) == 0;
    check(rc == 0 && same && sigismember(&after, SIGUSR1) && handler_kept,
          "c: creator mask kept", "pthread_create rc %d; SIGUSR1-only mask of the creator %s; "
          "SIGSETXID handler %s", rc, same ? "unchanged" : "CHANGED",
          handler_kept ? "unchanged" : "CHANGED");

    snap_ranges();
    int listed = 0, blocked = 0, stacks = 0, heaps = 0;
    /* Everything but SIGKILL/SIGSTOP (the kernel refuses) and glibc's SIGCANCEL (32, which
     * glibc's pthread_create always leaves open in a new thread). */
    uint64_t want = ~0ull & ~(1ull << (SIGKILL - 1)) & ~(1ull << (SIGSTOP - 1)) & ~(1ull << 31);
    uint64_t seen = 0;
    for (int i = 0; i < NT; i++) {
        listed += tid_listed(ti[i].tid);
        uint64_t b = sigblk(ti[i].tid);
        if ((b & want) == want)
            blocked++;
        if (!seen || (seen & want) == want)
            seen = b; /* show a failing one if there is one */
        const struct lh_range *r = range_at(ti[i].stack_addr);
        heaps += range_at(ti[i].heap_addr) != NULL;
        if (i == 4) /* the caller's stack: it came from the tracked mmap */
            stacks += r && r->kind == LH_RANGE_MMAP;
        else
            stacks += r && r->kind == LH_RANGE_STACK && (r->prot & LH_PROT_MASK) == 3;
    }
    check(listed == NT && at_once == NT, "c: tids listed", "%d of %d threads in lh_track_tids, "
          "%d of %d counted as soon as pthread_create returned", listed, NT, at_once, NT);
    check(blocked == NT, "c: signals blocked", "%d of %d threads block all signals "
          "(SigBlk %016lx: only 9, 19 and glibc's 32 open)", blocked, NT, seen);
    check(stacks == NT && heaps == NT, "c: stacks in ranges", "%d of %d stacks, %d of %d "
          "thread heaps tracked", stacks, NT, heaps, NT);
    const struct lh_range *r = range_at(ti[3].stack_addr);
    const struct lh_range *guard = r ? range_at(r->start - 1) : NULL;
    check(r && r->end - r->start == (256 << 10) && guard && guard->kind == LH_RANGE_STACK &&
              guard->prot == 0 && guard->end - guard->start == P,
          "c: stack size + guard", "attr stacksize 256 KiB -> stack %lu KiB, guard %lu B "
          "PROT_NONE below it", r ? (unsigned long)(r->end - r->start) >> 10 : 0,
          guard ? (unsigned long)(guard->end - guard->start) : 0);

    /* Let them finish; join the joinable ones. */
    for (int i = 0; i < NT; i++)
        atomic_store(&ti[i].go, 1);
    for (int i = 0; i < NT; i++)
        if (i != 5)
            pthread_join(th[i], NULL);
    while (task_exists(ti[5].tid))
        sleep_ms(1);
    /* Creating a thread reaps the stacks of detached threads that are gone. */
    static struct tinfo extra = {.go = 1};
    pthread_t x;
    pthread_create(&x, NULL, thread_main, &extra);
    pthread_join(x, NULL);

    /* The freed stacks' addresses may already hold new mimalloc segments (kind MMAP), so
     * "freed" means: no stack range there any more, and no stack range left at all. */
    int gone = 0, freed = 0, stacks_left = 0;
    snap_ranges();
    for (int i = 0; i < nR; i++)
        stacks_left += R[i].kind == LH_RANGE_STACK;
    for (int i = 0; i < NT; i++) {
        gone += !tid_listed(ti[i].tid);
        const struct lh_range *sr = range_at(ti[i].stack_addr);
        freed += i == 4 ? sr != NULL /* the caller's stack: not ours to free */
                        : sr == NULL || sr->kind != LH_RANGE_STACK;
    }
    check(gone == NT && freed == NT && stacks_left == 0 && !tid_listed(extra.tid),
          "c: exit, join, detach", "%d of %d tids gone after return/pthread_exit/detach; "
          "%d of %d stacks unmapped (the caller-given one kept); %d stack ranges left",
          gone, NT, freed, NT, stacks_left);
    munmap(given_stack, 1 << 20);
    pthread_attr_destroy(&small);
    pthread_attr_destroy(&given);
    pthread_attr_destroy(&det);
}

/* ---- (d) the table follows munmap, MAP_FIXED, mremap, shmat/shmdt; errno ----------------- */

static int pages_tracked(char *base, int from, int to) /* how many of pages [from, to) */
{
    int n = 0;
    for (int i = from; i < to; i++)
        n += lh_track_contains((uint64_t)(base + i * P));
    return n;
}

static void test_table(void)
{
    char *p = mmap(NULL, 16 * P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(p + 4 * P, 4 * P);
    snap_ranges();
    const struct lh_range *lo = range_at((uint64_t)p), *hi = range_at((uint64_t)p + 8 * P);
    check(lo && lo->end == (uint64_t)p + 4 * P && hi && hi->start == (uint64_t)p + 8 * P &&
              pages_tracked(p, 4, 8) == 0 && pages_tracked(p, 0, 4) == 4 &&
              pages_tracked(p, 8, 16) == 8,
          "d: munmap splits", "16 pages, pages 4-7 unmapped -> ranges end at +4 and start at "
          "+8 pages, hole untracked");

    mmap(p + 10 * P, 2 * P, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    snap_ranges();
    const struct lh_range *f = range_at((uint64_t)p + 10 * P);
    check(f && f->start == (uint64_t)p + 10 * P && f->end == (uint64_t)p + 12 * P &&
              (f->prot & LH_PROT_MASK) == PROT_READ && pages_tracked(p, 8, 16) == 8,
          "d: MAP_FIXED replaces", "pages 10-11 remapped read-only -> own range, prot %u",
          f ? f->prot : 99u);

    /* Move pages 0-3 (RW) onto a reserved PROT_NONE area and grow them to 8 pages. */
    char *dst = mmap(NULL, 32 * P, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *q = mremap(p, 4 * P, 8 * P, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
    snap_ranges();
    const struct lh_range *mv = range_at((uint64_t)dst), *rest = range_at((uint64_t)dst + 8 * P);
    check(q == dst && pages_tracked(p, 0, 4) == 0 && mv && mv->start == (uint64_t)dst &&
              mv->end == (uint64_t)dst + 8 * P && (mv->prot & LH_PROT_MASK) == 3 && rest &&
              rest->prot == 0 && rest->end == (uint64_t)dst + 32 * P,
          "d: mremap moves", "4 RW pages moved with MREMAP_FIXED onto a PROT_NONE area and "
          "grown to 8: old range gone, new one RW, rest of the area still PROT_NONE");

    char *s = mremap(dst, 8 * P, 2 * P, 0); /* shrink in place */
    char *m = mremap(s, 2 * P, 64 * P, MREMAP_MAYMOVE); /* grow, probably moving */
    check(s == dst && m != MAP_FAILED && pages_tracked(m, 0, 64) == 64 &&
              (m == s || pages_tracked(s, 0, 2) == 0) && pages_tracked(dst, 2, 8) == 0,
          "d: mremap shrink/grow", "shrink to 2 pages frees the tail; grow to 64 pages%s is "
          "tracked", m == s ? " in place" : " (moved)");

    /* Neighbours with the same kind and prot are one range, as the kernel merges VMAs. */
    char *j = mmap(NULL, 4 * P, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    mmap(j, 2 * P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    mmap(j + 2 * P, 2 * P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    snap_ranges();
    const struct lh_range *jr = range_at((uint64_t)j);
    int merged = jr && jr->start <= (uint64_t)j && jr->end >= (uint64_t)j + 4 * P;
    /* MREMAP_DONTUNMAP moves the pages but leaves the old range mapped (and ours). */
    char *k = mremap(j, 4 * P, 4 * P, MREMAP_MAYMOVE | MREMAP_DONTUNMAP);
    int dontunmap = k != MAP_FAILED && pages_tracked(j, 0, 4) == 4 && pages_tracked(k, 0, 4) == 4;
    check(merged && dontunmap, "d: merge, DONTUNMAP", "two adjacent RW mappings -> one range "
          "%s; MREMAP_DONTUNMAP keeps the old range %s", merged ? "yes" : "NO",
          k == MAP_FAILED ? strerrorname_np(errno) : dontunmap ? "yes" : "NO");
    munmap(j, 4 * P);
    if (k != MAP_FAILED)
        munmap(k, 4 * P);

    /* syscall(SYS_mmap, ...) is how UCX maps memory behind malloc's back: tracked too. */
    char *sc = (char *)syscall(SYS_mmap, NULL, 3 * P, PROT_READ | PROT_WRITE,
                               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int sc_in = pages_tracked(sc, 0, 3);
    char *sc2 = (char *)syscall(SYS_mremap, sc, 3 * P, 6 * P, MREMAP_MAYMOVE, NULL);
    int sc2_in = pages_tracked(sc2, 0, 6);
    long unm = syscall(SYS_munmap, sc2, 6 * P);
    int sc_out = pages_tracked(sc2, 0, 6);
    errno = 0;
    long bad = syscall(SYS_munmap, P + 1, P);
    int bad_errno = errno;
    check(sc_in == 3 && sc2_in == 6 && unm == 0 && sc_out == 0 && bad == -1 &&
              bad_errno == EINVAL, "d: syscall(SYS_mmap)", "syscall() mmap/mremap/munmap "
          "tracked (%d/3, %d/6, %d left); bad munmap -> %ld %s", sc_in, sc2_in, sc_out, bad,
          strerrorname_np(bad_errno));

    /* errno as libc sets it, and no change to the table on failure */
    int before = lh_track_ranges(NULL, 0);
    errno = 0;
    int e1 = munmap((void *)(P + 1), P) == -1 ? errno : 0;
    errno = 0;
    int e2 = mmap(NULL, P, PROT_READ, MAP_PRIVATE, 987, 0) == MAP_FAILED ? errno : 0;
    errno = 0;
    int e3 = mremap(m, 64 * P, 128 * P, 0x40) == MAP_FAILED ? errno : 0; /* bad flag */
    errno = 0;
    int e4 = mmap(NULL, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED ? errno : 0;
    check(e1 == EINVAL && e2 == EBADF && e3 == EINVAL && e4 == EINVAL &&
              lh_track_ranges(NULL, 0) == before,
          "d: errno", "munmap(unaligned) %s, mmap(bad fd) %s, mremap(bad flags) %s, "
          "mmap(len 0) %s; table unchanged", strerrorname_np(e1), strerrorname_np(e2),
          strerrorname_np(e3), strerrorname_np(e4));

    /* File-backed and shared mappings are flagged; SysV segments come and go. */
    int fd = open("/proc/self/exe", O_RDONLY);
    char *fm = mmap(NULL, P, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    snap_ranges();
    const struct lh_range *fr = range_at((uint64_t)fm);
    uint32_t fprot = fr ? fr->prot : 0;
    munmap(fm, P);
    int id = shmget(IPC_PRIVATE, 3 * P + 100, IPC_CREAT | 0600);
    char *sh = shmat(id, NULL, 0);
    snap_ranges();
    const struct lh_range *sr = range_at((uint64_t)sh);
    int sh_ok = sr && sr->start == (uint64_t)sh && sr->end == (uint64_t)sh + 4 * P &&
                (sr->prot & (LH_MAP_SYSV | LH_MAP_SHARED)) == (LH_MAP_SYSV | LH_MAP_SHARED);
    shmdt(sh);
    shmctl(id, IPC_RMID, NULL);
    check((fprot & (LH_MAP_FILE | LH_MAP_SHARED)) == (LH_MAP_FILE | LH_MAP_SHARED) && sh_ok &&
              pages_tracked(sh, 0, 4) == 0,
          "d: file, shared, SysV", "MAP_SHARED file mapping prot %#x; shmat of 3 pages+100 B "
          "-> 4 pages SysV|shared, gone after shmdt", fprot);

    munmap(p, 16 * P);
    munmap(dst, 32 * P);
    munmap(m, 64 * P);
}

/* ---- (g) concurrent updates, with a reader in a signal handler ----------------------------- */

enum { HOLD = 64 };
struct churn {
    char *held[HOLD];
    size_t len[HOLD];
    uint64_t seed;
};

static void churn(struct churn *c, int rounds)
{
    for (int i = 0; i < rounds; i++) {
        c->seed ^= c->seed << 13, c->seed ^= c->seed >> 7, c->seed ^= c->seed << 17;
        int k = (int)(c->seed % HOLD);
        size_t len = (1 + (c->seed >> 8) % 16) * P;
        if (!c->held[k]) {
            c->held[k] = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            c->len[k] = len;
        } else if ((c->seed >> 20) % 3 == 0) { /* move/resize */
            char *n = mremap(c->held[k], c->len[k], len, MREMAP_MAYMOVE);
            if (n != MAP_FAILED)
                c->held[k] = n, c->len[k] = len;
        } else if ((c->seed >> 20) % 3 == 1 && c->len[k] > P) { /* punch out the first page */
            munmap(c->held[k], P);
            c->held[k] += P;
            c->len[k] -= P;
        } else {
            munmap(c->held[k], c->len[k]);
            c->held[k] = NULL;
        }
    }
}

static void *churn_thread(void *p)
{
    churn(p, 20000);
    return NULL;
}

static _Atomic long handler_reads;
static void reader(int sig)
{
    (void)sig;
    static int32_t tids[64];
    int save = errno;
    lh_track_contains((uint64_t)&handler_reads);
    lh_track_tids(tids, 64);
    handler_reads++;
    errno = save;
}

static void test_concurrent(void)
{
    enum { NC = 3 };
    static struct churn c[NC + 1];
    pthread_t th[NC];
    /* SIGALRM every 50 us lands in the main thread (the other threads block everything)
     * while it churns too, often inside the tracker: the handler reads the tables. */
    struct sigaction sa = {.sa_handler = reader, .sa_flags = SA_RESTART};
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, 50}, {0, 50}};
    setitimer(ITIMER_REAL, &it, NULL);
    for (int i = 0; i <= NC; i++)
        c[i].seed = 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1);
    for (int i = 0; i < NC; i++)
        pthread_create(&th[i], NULL, churn_thread, &c[i]);
    churn(&c[NC], 20000);
    for (int i = 0; i < NC; i++)
        pthread_join(th[i], NULL);
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    signal(SIGALRM, SIG_DFL);

    snap_ranges();
    snap_maps();
    int held = 0, lost = 0, stale = 0;
    for (int i = 0; i <= NC; i++)
        for (int k = 0; k < HOLD; k++)
            if (c[i].held[k]) {
                held++;
                lost += !covered((uint64_t)c[i].held[k], (uint64_t)c[i].held[k] + c[i].len[k]);
            }
    for (int i = 0; i < nR; i++)
        stale += !mapped(R[i].start, R[i].end);
    check(lost == 0 && stale == 0, "g: concurrent updates", "4 threads x 20000 mmap/mremap/"
          "munmap: %d regions held, %d untracked, %d stale ranges; %ld reads from a signal "
          "handler", held, lost, stale, (long)handler_reads);
    for (int i = 0; i <= NC; i++)
        for (int k = 0; k < HOLD; k++)
            if (c[i].held[k])
                munmap(c[i].held[k], c[i].len[k]);
}

/* ---- (h) fork: the child has none of the parent's threads and a working tracker ---------- */

static void test_fork(void)
{
    static struct tinfo t;
    pthread_t th;
    pthread_create(&th, NULL, thread_main, &t);
    wait_started(&t);
    pid_t pid = fork();
    if (pid == 0) {
        char *p = mmap(NULL, P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        _exit(lh_track_tids(NULL, 0) == 0 && lh_track_contains((uint64_t)p) ? 0 : 1);
    }
    int status = -1;
    waitpid(pid, &status, 0);
    int parent_sees = tid_listed(t.tid);
    atomic_store(&t.go, 1);
    pthread_join(th, NULL);
    check(WIFEXITED(status) && WEXITSTATUS(status) == 0 && parent_sees, "h: fork",
          "child lists no threads and tracks its mmaps (status %#x); parent still lists its "
          "thread: %s", status, parent_sees ? "yes" : "NO");
}

/* ---- (e) + (f): the snapshot against /proc/self/maps ------------------------------------- */

struct objid {
    dev_t dev;
    ino_t ino;
};
static struct objid objs[4096];
static int nobj;

static int add_obj(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    (void)data;
    struct stat st;
    const char *name = info->dlpi_name[0] ? info->dlpi_name : "/proc/self/exe";
    if (nobj < 4096 && stat(name, &st) == 0)
        objs[nobj++] = (struct objid){st.st_dev, st.st_ino};
    return 0;
}

static int is_object(const struct mline *m)
{
    for (int i = 0; i < nobj; i++)
        if (objs[i].ino == m->ino && major(objs[i].dev) == m->maj &&
            minor(objs[i].dev) == m->min)
            return 1;
    return 0;
}

static void test_maps(void)
{
    /* An object with gaps between its segments, loaded by ld.so (see TRACK_HOLES_LIB). */
    char lib[4096];
    ssize_t n = readlink("/proc/self/exe", lib, sizeof lib - 32);
    lib[n > 0 ? n : 0] = 0;
    char *slash = strrchr(lib, '/');
    strcpy(slash ? slash + 1 : lib, "track_holes.so");
    void *holes = dlopen(lib, RTLD_NOW);
    nobj = 0;
    dl_iterate_phdr(add_obj, NULL);
    snap_ranges(); /* ranges first, then maps: nothing allocates in between */
    snap_maps();
    int lines = 0, bad = 0, gaps = 0;
    char first_bad[300] = "";
    for (int i = 0; i < nM; i++) {
        if (M[i].ino == 0 || !is_object(&M[i]))
            continue;
        lines++;
        gaps += strcmp(M[i].perms, "---p") == 0;
        if (!covered(M[i].start, M[i].end)) {
            if (!bad++)
                snprintf(first_bad, sizeof first_bad, " first: %lx-%lx %s %s", M[i].start,
                         M[i].end, M[i].perms, M[i].path);
        }
    }
    check(holes && gaps > 0 && lines > 0 && bad == 0, "e: objects covered", "%d maps lines "
          "of %d loaded objects (%d of them PROT_NONE gaps between segments), %d not covered%s",
          lines, nobj, gaps, bad, first_bad);

    int stale = 0;
    uint64_t bytes[5] = {0};
    int count[5] = {0};
    for (int i = 0; i < nR; i++) {
        stale += !mapped(R[i].start, R[i].end);
        if (R[i].kind < 5) {
            bytes[R[i].kind] += R[i].end - R[i].start;
            count[R[i].kind]++;
        }
    }
    volatile char on_main_stack = 0;
    uint64_t vdso = getauxval(AT_SYSINFO_EHDR);
    int vdso_claimed = vdso && lh_track_contains(vdso);
    int stack_claimed = lh_track_contains((uint64_t)&on_main_stack);
    check(stale == 0 && !vdso_claimed && !stack_claimed && lh_track_dropped() == 0,
          "f: nothing extra", "%d of %d ranges not fully mapped; vDSO %s, main stack %s; "
          "%lu dropped", stale, nR, vdso_claimed ? "CLAIMED" : "not claimed",
          stack_claimed ? "CLAIMED" : "not claimed", (unsigned long)lh_track_dropped());
    printf("     ranges: %d mmap (%lu KiB), %d stack (%lu KiB), %d object (%lu KiB), "
           "%d table (%lu KiB)\n", count[1], (unsigned long)bytes[1] >> 10, count[2],
           (unsigned long)bytes[2] >> 10, count[3], (unsigned long)bytes[3] >> 10, count[4],
           (unsigned long)bytes[4] >> 10);
}

int main(void)
{
    Dl_info mi = {0}, ti = {0};
    dladdr((void *)malloc, &mi);
    dladdr((void *)mmap, &ti);
    int setup = mi.dli_fname && strstr(mi.dli_fname, "mimalloc") && ti.dli_fname &&
                strstr(ti.dli_fname, "lh_track");
    check(setup, "setup", "malloc from %s, mmap from %s", mi.dli_fname ? mi.dli_fname : "?",
          ti.dli_fname ? ti.dli_fname : "?");
    if (!setup)
        return 1;
    test_malloc();
    test_threads();
    test_table();
    test_maps();
    test_concurrent();
    test_fork();
    printf("%s: %d check(s) failed\n", failures ? "FAIL" : "PASS", failures);
    return failures ? 1 : 0;
}
#endif /* TRACK_HOLES_LIB */
