/* lh_track.so: records which memory and which threads belong to the lower half.
 *
 * Preloaded first into the lower world (LD_PRELOAD=lh_track.so:libmimalloc.so.2), so every
 * call that mimalloc, libmpi and their plugins make to mmap/munmap/mremap/shmat/shmdt and
 * pthread_create through the PLT lands here.  The real work is done with raw syscalls and each
 * resulting range goes into a sorted table that lives in memory this file maps itself (no
 * malloc: the allocator is one of our callers).  See include/lh_track.h for the API and
 * DESIGN.md §2 for why: at checkpoint the upper half leaves exactly these ranges out of the
 * image, and anything we fail to report is saved as upper-half memory (harmless), so when in
 * doubt this file reports less, never more.
 *
 * Concurrency: one spinlock guards the table and the thread records.  Whoever holds it has all
 * signals blocked, so a signal handler on the same thread can never find it held (reads are
 * async-signal-safe) and a thread parked by the checkpointer's signal is never parked holding
 * it.  The syscall itself runs under the lock, so "A unmaps X, B maps X again, A forgets X"
 * cannot reorder.  Internal bookkeeping uses raw syscalls only and no TLS, because in the
 * split process FS may hold either half's thread pointer; only errno (set for our callers,
 * who are lower-half code) touches the lower libc's TLS.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* RTLD_NEXT, MREMAP_*, pthread_*_np */
#endif
#include "lh_track.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <limits.h>
#include <link.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))
#define PAGE 4096ul /* x86_64 only, like the rest of the lower half */
#define MAX_THREADS 1024

static uint64_t page_down(uint64_t a) { return a & ~(PAGE - 1); }
static uint64_t page_up(uint64_t a) { return (a + PAGE - 1) & ~(PAGE - 1); }

/* ---- raw syscalls: no errno, no TLS -------------------------------------------------------- */

static long sys6(long n, long a, long b, long c, long d, long e, long f)
{
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    long ret;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
}
#define SYS(n, a, b, c) sys6((n), (long)(a), (long)(b), (long)(c), 0, 0, 0)
static int is_err(long r) { return r < 0 && r > -4096; }

static void set_mask(const uint64_t *set, uint64_t *old)
{
    sys6(SYS_rt_sigprocmask, SIG_SETMASK, (long)set, (long)old, sizeof *set, 0, 0);
}

/* ---- the lock ------------------------------------------------------------------------------ */

static atomic_flag lock_flag = ATOMIC_FLAG_INIT;

static void lock(uint64_t *saved_mask)
{
    static const uint64_t all = ~0ull;
    set_mask(&all, saved_mask);
    for (unsigned spins = 0; atomic_flag_test_and_set_explicit(&lock_flag, memory_order_acquire);
         spins++) {
        if (spins < 100)
            __builtin_ia32_pause();
        else
            sys6(SYS_sched_yield, 0, 0, 0, 0, 0, 0); /* the holder may be in a slow mmap */
    }
}

static void unlock(const uint64_t *saved_mask)
{
    atomic_flag_clear_explicit(&lock_flag, memory_order_release);
    set_mask(saved_mask, NULL);
}

/* A fork in the lower world copies the lock as it is; if another thread held it, nobody would
 * release it in the child.  (Taking it in a prepare handler instead could deadlock with other
 * libraries' prepare handlers that allocate.)  The other threads' records need no care:
 * lh_track_tids checks each tid against the current process. */
static void fork_child(void) { atomic_flag_clear(&lock_flag); }
__attribute__((constructor)) static void init(void) { pthread_atfork(NULL, NULL, fork_child); }

/* ---- the range table: sorted by start, no overlaps, guarded by the lock ------------------- */

static struct lh_range *tab;
static size_t tab_len, tab_cap;
static uint64_t dropped; /* ranges forgotten because the table could not grow */

static uint64_t tab_bytes(void) { return page_up(tab_cap * sizeof *tab); }

static int tab_reserve(size_t extra)
{
    if (tab_len + extra <= tab_cap)
        return 0;
    size_t ncap = tab_cap ? tab_cap * 2 : 4096; /* 4096 entries = 24 pages */
    while (ncap < tab_len + extra)
        ncap *= 2;
    long p = tab ? sys6(SYS_mremap, (long)tab, tab_bytes(), page_up(ncap * sizeof *tab),
                        MREMAP_MAYMOVE, 0, 0)
                 : sys6(SYS_mmap, 0, page_up(ncap * sizeof *tab), PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (is_err(p))
        return -1;
    tab = (struct lh_range *)p;
    tab_cap = ncap;
    return 0;
}

/* Index of the first entry that ends above addr (tab_len if none). */
static size_t tab_first_after(uint64_t addr)
{
    size_t lo = 0, hi = tab_len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (tab[mid].end <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void tab_delete(size_t i)
{
    memmove(&tab[i], &tab[i + 1], (tab_len - i - 1) * sizeof *tab);
    tab_len--;
}

/* Forget [lo, hi): entries inside go, entries across an edge are trimmed, an entry around the
 * whole hole is split in two. */
static void tab_remove(uint64_t lo, uint64_t hi)
{
    size_t i = tab_first_after(lo);
    while (i < tab_len && tab[i].start < hi) {
        if (tab[i].start < lo && tab[i].end > hi) {
            if (tab_reserve(1) != 0) { /* cannot split: forget all of it (report less) */
                dropped++;
                tab_delete(i);
                return;
            }
            memmove(&tab[i + 1], &tab[i], (tab_len - i) * sizeof *tab);
            tab_len++;
            tab[i].end = lo;
            tab[i + 1].start = hi;
            return;
        }
        if (tab[i].start < lo) {
            tab[i].end = lo;
            i++;
        } else if (tab[i].end > hi) {
            tab[i].start = hi;
            return;
        } else {
            tab_delete(i);
        }
    }
}

/* Neighbours with the same kind and prot become one entry, as the kernel merges VMAs; SysV
 * segments stay whole so that shmdt can find where one starts. */
static int mergeable(const struct lh_range *a, const struct lh_range *b)
{
    return a->end == b->start && a->kind == b->kind && a->prot == b->prot &&
           !(a->prot & LH_MAP_SYSV);
}

/* Record [lo, hi), replacing whatever was recorded there (MAP_FIXED semantics). */
static void tab_add(uint64_t lo, uint64_t hi, uint32_t kind, uint32_t prot)
{
    tab_remove(lo, hi);
    if (lo >= hi)
        return;
    if (tab_reserve(1) != 0) {
        dropped++;
        return;
    }
    size_t i = tab_first_after(lo);
    memmove(&tab[i + 1], &tab[i], (tab_len - i) * sizeof *tab);
    tab_len++;
    tab[i] = (struct lh_range){lo, hi, kind, prot};
    if (i + 1 < tab_len && mergeable(&tab[i], &tab[i + 1])) {
        tab[i].end = tab[i + 1].end;
        tab_delete(i + 1);
    }
    if (i > 0 && mergeable(&tab[i - 1], &tab[i])) {
        tab[i - 1].end = tab[i].end;
        tab_delete(i);
    }
}

static const struct lh_range *tab_find(uint64_t addr)
{
    size_t i = tab_first_after(addr);
    return i < tab_len && tab[i].start <= addr ? &tab[i] : NULL;
}

static uint32_t map_prot(int prot, int flags, int fd)
{
    uint32_t p = (uint32_t)prot & (PROT_READ | PROT_WRITE | PROT_EXEC);
    if (flags & MAP_SHARED) /* also MAP_SHARED_VALIDATE, which contains the bit */
        p |= LH_MAP_SHARED;
    if (!(flags & MAP_ANONYMOUS) && fd >= 0)
        p |= LH_MAP_FILE;
    return p;
}

/* ---- memory interposers -------------------------------------------------------------------- */

/* The tracked calls, shared by the libc-style wrappers and syscall(): raw arguments in, raw
 * result out (-errno on failure). */

static long track_mmap(long addr, long len, long prot, long flags, long fd, long off)
{
    uint64_t m;
    lock(&m);
    long r = sys6(SYS_mmap, addr, len, prot, flags, fd, off);
    if (!is_err(r))
        tab_add((uint64_t)r, (uint64_t)r + page_up((uint64_t)len), LH_RANGE_MMAP,
                map_prot((int)prot, (int)flags, (int)fd));
    unlock(&m);
    return r;
}

static long track_munmap(long addr, long len)
{
    uint64_t m;
    lock(&m);
    long r = SYS(SYS_munmap, addr, len, 0);
    if (!is_err(r))
        tab_remove((uint64_t)addr, (uint64_t)addr + page_up((uint64_t)len));
    unlock(&m);
    return r;
}

static long track_mremap(long old, long old_len, long new_len, long flags, long want)
{
    uint64_t m;
    lock(&m);
    long r = sys6(SYS_mremap, old, old_len, new_len, flags, want, 0);
    if (!is_err(r)) {
        /* The new range is what the old one was.  A source we never saw is still memory the
         * lower world owns (it just moved it), so it is recorded as a plain mapping. */
        uint64_t o = (uint64_t)old;
        const struct lh_range *src = tab_find(o);
        uint32_t kind = src ? src->kind : LH_RANGE_MMAP;
        uint32_t prot = src ? src->prot : PROT_READ | PROT_WRITE;
        /* old_len 0 duplicates a shared mapping; MREMAP_DONTUNMAP leaves the old range mapped. */
        if (old_len != 0 && !(flags & MREMAP_DONTUNMAP))
            tab_remove(o, o + page_up((uint64_t)old_len));
        tab_add((uint64_t)r, (uint64_t)r + page_up((uint64_t)new_len), kind, prot);
    }
    unlock(&m);
    return r;
}

static long track_shmat(long id, long addr, long flags)
{
    uint64_t m;
    lock(&m);
    long r = SYS(SYS_shmat, id, addr, flags);
    if (!is_err(r)) {
        struct shmid_ds ds; /* same layout as the kernel's shmid64_ds on x86_64 */
        if (!is_err(SYS(SYS_shmctl, id, IPC_STAT, &ds))) {
            uint32_t prot = PROT_READ | LH_MAP_SHARED | LH_MAP_SYSV;
            if (!(flags & SHM_RDONLY))
                prot |= PROT_WRITE;
            if (flags & SHM_EXEC)
                prot |= PROT_EXEC;
            tab_add((uint64_t)r, (uint64_t)r + page_up(ds.shm_segsz), LH_RANGE_MMAP, prot);
        } else {
            dropped++; /* size unknown: leave it to the upper half */
        }
    }
    unlock(&m);
    return r;
}

static long track_shmdt(long addr)
{
    uint64_t m;
    lock(&m);
    long r = SYS(SYS_shmdt, addr, 0, 0);
    const struct lh_range *e = tab_find((uint64_t)addr);
    if (!is_err(r) && e && e->start == (uint64_t)addr && (e->prot & LH_MAP_SYSV))
        tab_remove(e->start, e->end);
    unlock(&m);
    return r;
}

/* libc's conventions: -1 or MAP_FAILED (both all ones) with errno set. */
static long libc_result(long r)
{
    if (is_err(r)) {
        errno = (int)-r;
        return -1;
    }
    return r;
}

EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    return (void *)libc_result(track_mmap((long)addr, (long)len, prot, flags, fd, off));
}

/* On x86_64 off_t and off64_t are the same type, as they are inside glibc. */
EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off64_t off)
    __attribute__((alias("mmap")));

EXPORT int munmap(void *addr, size_t len)
{
    return (int)libc_result(track_munmap((long)addr, (long)len));
}

EXPORT void *mremap(void *old, size_t old_len, size_t new_len, int flags, ...)
{
    void *want = NULL;
    if (flags & MREMAP_FIXED) { /* the fifth argument exists only then, as in glibc */
        va_list ap;
        va_start(ap, flags);
        want = va_arg(ap, void *);
        va_end(ap);
    }
    return (void *)libc_result(
        track_mremap((long)old, (long)old_len, (long)new_len, flags, (long)want));
}

EXPORT void *shmat(int id, const void *addr, int flags)
{
    return (void *)libc_result(track_shmat(id, (long)addr, flags));
}

EXPORT int shmdt(const void *addr)
{
    return (int)libc_result(track_shmdt((long)addr));
}

/* Some libraries map memory with syscall(SYS_mmap, ...) to stay clear of malloc hooks (UCX's
 * ucs_sys_realloc does, and so do the "original" paths of UCX's own mmap hooks), so the
 * generic entry point is interposed too.  Like glibc's, it reads six arguments whatever the
 * call number; only the memory calls are tracked, everything else goes straight through. */
EXPORT long syscall(long n, ...)
{
    long a[6];
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < 6; i++)
        a[i] = va_arg(ap, long);
    va_end(ap);
    switch (n) {
    case SYS_mmap: return libc_result(track_mmap(a[0], a[1], a[2], a[3], a[4], a[5]));
    case SYS_munmap: return libc_result(track_munmap(a[0], a[1]));
    case SYS_mremap: return libc_result(track_mremap(a[0], a[1], a[2], a[3], a[4]));
    case SYS_shmat: return libc_result(track_shmat(a[0], a[1], a[2]));
    case SYS_shmdt: return libc_result(track_shmdt(a[0]));
    default: return libc_result(sys6(n, a[0], a[1], a[2], a[3], a[4], a[5]));
    }
}

/* ---- threads ------------------------------------------------------------------------------- */

enum { T_FREE, T_STARTING, T_RUNNING, T_EXITED };

struct thr {
    _Atomic uint32_t state; /* T_*; a futex word while T_STARTING */
    _Atomic int32_t tid;    /* kernel tid; 0 once the thread is known to be gone */
    _Atomic uint64_t self;  /* pthread_t, written by the thread itself */
    int released;           /* joined or detached: the stack may go once the thread is gone */
    uint64_t stack_lo, stack_hi; /* our allocation, guard included; 0 if the caller gave one */
    void *(*fn)(void *);
    void *arg;
};
static struct thr thr[MAX_THREADS]; /* in lh_track's own .bss, reported as an object segment */

static long my_pid(void) { return sys6(SYS_getpid, 0, 0, 0, 0, 0, 0); }

/* True once the kernel is done with the thread: it no longer runs on its stack and has
 * cleared glibc's tid word (CLONE_CHILD_CLEARTID happens before the tid is unhashed).  A tid
 * reused by another of our threads looks alive: the stack is then kept a little longer. */
static int thr_gone(struct thr *t)
{
    int32_t tid = atomic_load(&t->tid);
    if (tid == 0)
        return 1;
    if (SYS(SYS_tgkill, my_pid(), tid, 0) == -ESRCH) {
        atomic_store(&t->tid, 0);
        return 1;
    }
    return 0;
}

/* Called with the lock held. */
static void thr_free(struct thr *t)
{
    if (t->stack_hi) {
        SYS(SYS_munmap, t->stack_lo, t->stack_hi - t->stack_lo, 0);
        tab_remove(t->stack_lo, t->stack_hi);
    }
    t->stack_lo = t->stack_hi = 0;
    atomic_store(&t->state, T_FREE);
}

/* Free the stacks of joined or detached threads that have gone. */
static void reap(void)
{
    uint64_t m;
    lock(&m);
    for (int i = 0; i < MAX_THREADS; i++)
        if (thr[i].released && atomic_load(&thr[i].state) == T_EXITED && thr_gone(&thr[i]))
            thr_free(&thr[i]);
    unlock(&m);
}

static struct thr *thr_find(pthread_t self)
{
    for (int i = 0; i < MAX_THREADS; i++)
        if (atomic_load(&thr[i].state) != T_FREE && atomic_load(&thr[i].self) == (uint64_t)self)
            return &thr[i];
    return NULL;
}

/* The first pthread_create of a libc installs that libc's SIGSETXID handler (glibc's
 * late_init).  Handlers are process-wide and belong to the upper half, whose libc installs its
 * own at its first pthread_create: put back whatever was there (the kernel's own struct, so
 * the restorer and flags come back exactly).  The lower world never calls setuid & co. */
struct ksigaction {
    uint64_t handler, flags, restorer, mask;
};
enum { SIGCANCEL_ = 32, SIGSETXID_ = 33 }; /* glibc's internal signals */

static void save_glibc_handlers(struct ksigaction act[2])
{
    sys6(SYS_rt_sigaction, SIGCANCEL_, 0, (long)&act[0], 8, 0, 0);
    sys6(SYS_rt_sigaction, SIGSETXID_, 0, (long)&act[1], 8, 0, 0);
}

static void restore_glibc_handlers(const struct ksigaction act[2])
{
    for (int i = 0; i < 2; i++) {
        struct ksigaction now;
        sys6(SYS_rt_sigaction, SIGCANCEL_ + i, 0, (long)&now, 8, 0, 0);
        if (memcmp(&now, &act[i], sizeof now) != 0)
            sys6(SYS_rt_sigaction, SIGCANCEL_ + i, (long)&act[i], 0, 8, 0, 0);
    }
}

static void thread_done(void *p)
{
    atomic_store(&((struct thr *)p)->state, T_EXITED);
}

static void *start_wrapper(void *p)
{
    /* glibc's first pthread_create unblocks SIGSETXID in the creator, so the first thread
     * would inherit it open: block again everything but glibc's SIGCANCEL (32). */
    static const uint64_t all_but_cancel = ~0ull & ~(1ull << (SIGCANCEL_ - 1));
    set_mask(&all_but_cancel, NULL);
    struct thr *t = p;
    void *(*fn)(void *) = t->fn;
    void *arg = t->arg;
    atomic_store(&t->self, (uint64_t)pthread_self());
    atomic_store(&t->tid, (int32_t)sys6(SYS_gettid, 0, 0, 0, 0, 0, 0));
    atomic_store(&t->state, T_RUNNING);
    SYS(SYS_futex, &t->state, FUTEX_WAKE_PRIVATE, INT_MAX);
    void *ret;
    pthread_cleanup_push(thread_done, t); /* runs on return and on pthread_exit/cancel */
    ret = fn(arg);
    pthread_cleanup_pop(1);
    return ret;
}

/* A copy of the caller's attributes that we may add a stack to.  The signal mask is not
 * copied: the thread must inherit our all-blocked mask.  An affinity that is "all CPUs" is
 * glibc's answer for "not set" and is not copied either (it would undo a rank's binding). */
static int copy_attr(const pthread_attr_t *src, pthread_attr_t *dst, int *own_stack)
{
    int rc = pthread_attr_init(dst), v;
    size_t sz;
    struct sched_param sp;
    cpu_set_t cs;
    void *stk;
    *own_stack = 0;
    if (rc != 0 || src == NULL)
        return rc;
#define TRY(x) do { if ((rc = (x)) != 0) goto fail; } while (0)
    TRY(pthread_attr_getdetachstate(src, &v));
    TRY(pthread_attr_setdetachstate(dst, v));
    TRY(pthread_attr_getscope(src, &v));
    TRY(pthread_attr_setscope(dst, v));
    TRY(pthread_attr_getinheritsched(src, &v));
    TRY(pthread_attr_setinheritsched(dst, v));
    if (v == PTHREAD_EXPLICIT_SCHED) {
        TRY(pthread_attr_getschedpolicy(src, &v));
        TRY(pthread_attr_setschedpolicy(dst, v));
        TRY(pthread_attr_getschedparam(src, &sp));
        TRY(pthread_attr_setschedparam(dst, &sp));
    }
    TRY(pthread_attr_getguardsize(src, &sz));
    TRY(pthread_attr_setguardsize(dst, sz));
    TRY(pthread_attr_getstacksize(src, &sz));
    TRY(pthread_attr_setstacksize(dst, sz));
    if (pthread_attr_getaffinity_np(src, sizeof cs, &cs) == 0 && CPU_COUNT(&cs) != CPU_SETSIZE)
        TRY(pthread_attr_setaffinity_np(dst, sizeof cs, &cs));
    /* Was a stack given?  glibc's getstack returns (top - size, size) with top NULL when no
     * stack was set, so the two add up to 0 exactly then. */
    TRY(pthread_attr_getstack(src, &stk, &sz));
    if ((uintptr_t)stk + sz != 0) {
        TRY(pthread_attr_setstack(dst, stk, sz));
        *own_stack = 1;
    }
    return 0;
#undef TRY
fail:
    pthread_attr_destroy(dst);
    return rc;
}

/* Map the stack plus a PROT_NONE guard below it (glibc adds no guard to a given stack). */
static int alloc_stack(pthread_attr_t *a, struct thr *t)
{
    size_t size, guard;
    pthread_attr_getstacksize(a, &size); /* glibc's default (RLIMIT_STACK, 8 MiB) if unset */
    pthread_attr_getguardsize(a, &guard);
    size = page_up(size ? size : 8ul << 20);
    guard = page_up(guard);
    uint64_t m;
    lock(&m);
    long p = sys6(SYS_mmap, 0, (long)(size + guard), PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (!is_err(p)) {
        t->stack_lo = (uint64_t)p;
        t->stack_hi = (uint64_t)p + guard + size;
        tab_add(t->stack_lo, t->stack_hi, LH_RANGE_STACK, PROT_READ | PROT_WRITE);
        if (guard && !is_err(SYS(SYS_mprotect, p, guard, PROT_NONE)))
            tab_add(t->stack_lo, t->stack_lo + guard, LH_RANGE_STACK, PROT_NONE);
    }
    unlock(&m);
    if (is_err(p))
        return EAGAIN; /* what glibc's pthread_create says when it cannot map a stack */
    return pthread_attr_setstack(a, (void *)(p + (long)guard), size);
}

typedef int (*create_fn)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);

EXPORT int pthread_create(pthread_t *th, const pthread_attr_t *attr, void *(*fn)(void *),
                          void *arg)
{
    static _Atomic(create_fn) real;
    create_fn real_create = atomic_load(&real);
    if (real_create == NULL) {
        real_create = (create_fn)dlsym(RTLD_NEXT, "pthread_create");
        if (real_create == NULL)
            return EAGAIN;
        atomic_store(&real, real_create);
    }
    reap();

    pthread_attr_t a;
    int own_stack, detached = 0, rc = copy_attr(attr, &a, &own_stack);
    if (rc != 0)
        return rc;
    pthread_attr_getdetachstate(&a, &detached);
    detached = detached == PTHREAD_CREATE_DETACHED;

    uint64_t m;
    struct thr *t = NULL;
    lock(&m);
    for (int i = 0; i < MAX_THREADS && !t; i++)
        if (atomic_load(&thr[i].state) == T_FREE) {
            t = &thr[i];
            *t = (struct thr){.fn = fn, .arg = arg, .released = detached};
            atomic_store(&t->state, T_STARTING);
        }
    unlock(&m);
    if (t == NULL) { /* an untracked lower thread would be saved as an upper one: refuse */
        pthread_attr_destroy(&a);
        return EAGAIN;
    }
    rc = own_stack ? 0 : alloc_stack(&a, t);

    /* The new thread inherits the mask in force when it is created; the process's handlers
     * are the upper half's, so a lower thread must never run one.  (glibc still leaves its
     * internal SIGCANCEL unblocked in the new thread.) */
    if (rc == 0) {
        static const uint64_t all = ~0ull;
        uint64_t old;
        struct ksigaction act[2];
        save_glibc_handlers(act);
        set_mask(&all, &old);
        rc = real_create(th, &a, start_wrapper, t);
        set_mask(&old, NULL);
        restore_glibc_handlers(act);
    }
    pthread_attr_destroy(&a);

    if (rc != 0) { /* glibc has waited for a half-started thread to exit: the stack is free */
        lock(&m);
        thr_free(t);
        unlock(&m);
        return rc;
    }
    /* Wait until the thread has published its tid, so lh_track_tids lists it from now on. */
    while (atomic_load(&t->state) == T_STARTING)
        SYS(SYS_futex, &t->state, FUTEX_WAIT_PRIVATE, T_STARTING);
    return 0;
}

/* After a successful join the thread is gone (glibc waited for the kernel to clear its tid):
 * its stack, which also holds glibc's struct pthread, can be unmapped now. */
static int joined(pthread_t th, int rc)
{
    if (rc == 0) {
        uint64_t m;
        lock(&m);
        struct thr *t = thr_find(th);
        if (t)
            thr_free(t);
        unlock(&m);
    }
    return rc;
}

#define REAL(name, type)                                                                      \
    static _Atomic(type) real_##name;                                                         \
    type r_##name = atomic_load(&real_##name);                                                \
    if (r_##name == NULL) {                                                                   \
        r_##name = (type)dlsym(RTLD_NEXT, #name);                                             \
        if (r_##name == NULL)                                                                 \
            return ENOSYS;                                                                    \
        atomic_store(&real_##name, r_##name);                                                 \
    }

typedef int (*join_fn)(pthread_t, void **);
typedef int (*timedjoin_fn)(pthread_t, void **, const struct timespec *);
typedef int (*clockjoin_fn)(pthread_t, void **, clockid_t, const struct timespec *);
typedef int (*detach_fn)(pthread_t);

EXPORT int pthread_join(pthread_t th, void **ret)
{
    REAL(pthread_join, join_fn);
    return joined(th, r_pthread_join(th, ret));
}

EXPORT int pthread_tryjoin_np(pthread_t th, void **ret)
{
    REAL(pthread_tryjoin_np, join_fn);
    return joined(th, r_pthread_tryjoin_np(th, ret));
}

EXPORT int pthread_timedjoin_np(pthread_t th, void **ret, const struct timespec *abstime)
{
    REAL(pthread_timedjoin_np, timedjoin_fn);
    return joined(th, r_pthread_timedjoin_np(th, ret, abstime));
}

EXPORT int pthread_clockjoin_np(pthread_t th, void **ret, clockid_t clk,
                                const struct timespec *abstime)
{
    REAL(pthread_clockjoin_np, clockjoin_fn);
    return joined(th, r_pthread_clockjoin_np(th, ret, clk, abstime));
}

/* A detached thread frees nothing of ours when it ends; mark it so reap() can, once the
 * kernel is done with it. */
EXPORT int pthread_detach(pthread_t th)
{
    REAL(pthread_detach, detach_fn);
    int rc = r_pthread_detach(th);
    if (rc == 0) {
        uint64_t m;
        lock(&m);
        struct thr *t = thr_find(th);
        if (t)
            t->released = 1;
        unlock(&m);
        reap();
    }
    return rc;
}

/* ---- loaded objects (from the lower ld.so's link map) ------------------------------------ */

struct walk {
    struct lh_range *out; /* collect into out[0..max) and count in n ... */
    int max, n;
    uint64_t addr; /* ... or just look for addr */
    int hit;
};

static void emit(struct walk *w, uint64_t lo, uint64_t hi, uint32_t kind, uint32_t prot)
{
    if (lo >= hi)
        return;
    if (w->addr >= lo && w->addr < hi)
        w->hit = 1;
    if (w->out && w->n < w->max)
        w->out[w->n] = (struct lh_range){lo, hi, kind, prot};
    w->n++;
}

static uint32_t elf_prot(uint32_t pf)
{
    return (pf & PF_R ? PROT_READ : 0) | (pf & PF_W ? PROT_WRITE : 0) |
           (pf & PF_X ? PROT_EXEC : 0);
}

static int each_object(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    uint64_t vdso = getauxval(AT_SYSINFO_EHDR), interp = getauxval(AT_BASE);
    uint64_t first = UINT64_MAX, last = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD)
            continue;
        uint64_t lo = page_down(info->dlpi_addr + ph->p_vaddr);
        uint64_t hi = page_up(info->dlpi_addr + ph->p_vaddr + ph->p_memsz);
        first = lo < first ? lo : first;
        last = hi > last ? hi : last;
    }
    /* The vDSO is mapped by the kernel for both halves; the checkpointer handles it itself. */
    if (first >= last || (vdso >= first && vdso < last))
        return 0;
    /* ld.so reserves an object's whole span and leaves the gaps between segments mapped
     * PROT_NONE; the kernel (main program, ld.so itself: mapped by exec or by our loader)
     * leaves them unmapped, and those gaps must not be claimed. */
    int holes_mapped = info->dlpi_name[0] != '\0' && !(interp >= first && interp < last);
    uint64_t prev_end = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD)
            continue;
        uint64_t lo = page_down(info->dlpi_addr + ph->p_vaddr);
        uint64_t hi = page_up(info->dlpi_addr + ph->p_vaddr + ph->p_memsz);
        if (holes_mapped && prev_end && lo > prev_end)
            emit(data, prev_end, lo, LH_RANGE_OBJECT, PROT_NONE);
        emit(data, lo, hi, LH_RANGE_OBJECT, elf_prot(ph->p_flags));
        prev_end = hi > prev_end ? hi : prev_end;
    }
    return 0;
}

/* ---- the API ------------------------------------------------------------------------------- */

static void sort_and_merge(struct lh_range *r, int *n)
{
    for (int i = 1; i < *n; i++) { /* insertion sort: the table part is already sorted */
        struct lh_range x = r[i];
        int j = i;
        for (; j > 0 && r[j - 1].start > x.start; j--)
            r[j] = r[j - 1];
        r[j] = x;
    }
    int k = 0;
    for (int i = 0; i < *n; i++) {
        if (k > 0 && r[i].start < r[k - 1].end) { /* overlap: one range, kind of the first */
            if (r[i].end > r[k - 1].end)
                r[k - 1].end = r[i].end;
            r[k - 1].prot |= r[i].prot;
        } else if (k > 0 && mergeable(&r[k - 1], &r[i])) {
            r[k - 1].end = r[i].end;
        } else {
            r[k++] = r[i];
        }
    }
    *n = k;
}

EXPORT int lh_track_ranges(struct lh_range *out, int max)
{
    if (max < 0 || (max > 0 && out == NULL)) {
        errno = EINVAL;
        return -1;
    }
    struct walk w = {.out = out, .max = max, .addr = UINT64_MAX};
    uint64_t m;
    lock(&m);
    for (size_t i = 0; i < tab_len; i++)
        emit(&w, tab[i].start, tab[i].end, tab[i].kind, tab[i].prot);
    if (tab)
        emit(&w, (uint64_t)tab, (uint64_t)tab + tab_bytes(), LH_RANGE_TABLE,
             PROT_READ | PROT_WRITE);
    unlock(&m);
    /* Outside our lock: dl_iterate_phdr takes ld.so's, and a dlopen holding that one may be
     * waiting for ours inside malloc -> mmap. */
    dl_iterate_phdr(each_object, &w);
    if (w.n > max)
        return w.n;
    sort_and_merge(out, &w.n);
    return w.n;
}

EXPORT int lh_track_contains(uint64_t addr)
{
    uint64_t m;
    lock(&m);
    int hit = tab_find(addr) != NULL || (tab && addr >= (uint64_t)tab &&
                                         addr < (uint64_t)tab + tab_bytes());
    unlock(&m);
    if (hit)
        return 1;
    struct walk w = {.addr = addr};
    dl_iterate_phdr(each_object, &w);
    return w.hit;
}

EXPORT int lh_track_tids(int32_t *out, int max)
{
    if (max < 0 || (max > 0 && out == NULL)) {
        errno = EINVAL;
        return -1;
    }
    int n = 0;
    uint64_t m;
    lock(&m);
    for (int i = 0; i < MAX_THREADS; i++) {
        uint32_t s = atomic_load(&thr[i].state);
        /* An exited thread still runs glibc's exit path until the kernel reaps it: list it
         * until then, so the checkpointer never mistakes it for an upper-half thread.  (In a
         * forked child the parent's threads are gone at once.) */
        if ((s == T_RUNNING || s == T_EXITED) && !thr_gone(&thr[i])) {
            if (n < max)
                out[n] = atomic_load(&thr[i].tid);
            n++;
        }
    }
    unlock(&m);
    return n;
}

EXPORT uint64_t lh_track_dropped(void)
{
    uint64_t m;
    lock(&m);
    uint64_t d = dropped;
    unlock(&m);
    return d;
}

/* ---- file descriptors opened by the lower world ------------------------------------------
 * The lower half's sockets, pipes, epoll and event fds (its PMI connection, its progress
 * engine) must not be saved: a restart starts a new lower half with its own. Every libc call
 * of the lower world that makes an fd goes through these wrappers (first in LD_PRELOAD);
 * calls glibc makes internally (e.g. shm_open's open, hence the wrapper of shm_open itself) do
 * not, and are then refused by the checkpointer, never silently dropped. */
#define LH_MAX_FD 65536
static _Atomic uint64_t fd_bits[LH_MAX_FD / 64];

static int fd_mark(int fd)
{
    if (fd >= 0 && fd < LH_MAX_FD)
        atomic_fetch_or(&fd_bits[fd / 64], 1ull << (fd % 64));
    return fd;
}

static void fd_clear(int fd)
{
    if (fd >= 0 && fd < LH_MAX_FD)
        atomic_fetch_and(&fd_bits[fd / 64], ~(1ull << (fd % 64)));
}

#define FD_WRAP(ret, name, params, args, type)                                                 \
    typedef ret(*name##_fn) params;                                                            \
    EXPORT ret name params                                                                     \
    {                                                                                          \
        static _Atomic(name##_fn) real;                                                        \
        name##_fn f = atomic_load(&real);                                                      \
        if (!f) {                                                                              \
            f = (name##_fn)dlsym(RTLD_NEXT, #name);                                            \
            if (!f) { errno = ENOSYS; return -1; }                                             \
            atomic_store(&real, f);                                                            \
        }                                                                                      \
        return fd_mark(f args);                                                                \
    }

FD_WRAP(int, socket, (int d, int t, int p), (d, t, p), int)
FD_WRAP(int, accept, (int s, struct sockaddr *a, socklen_t *l), (s, a, l), int)
FD_WRAP(int, accept4, (int s, struct sockaddr *a, socklen_t *l, int fl), (s, a, l, fl), int)
FD_WRAP(int, epoll_create, (int n), (n), int)
FD_WRAP(int, epoll_create1, (int fl), (fl), int)
FD_WRAP(int, eventfd, (unsigned int v, int fl), (v, fl), int)
FD_WRAP(int, timerfd_create, (int c, int fl), (c, fl), int)
FD_WRAP(int, signalfd, (int fd, const sigset_t *m, int fl), (fd, m, fl), int)
FD_WRAP(int, memfd_create, (const char *n, unsigned int fl), (n, fl), int)
/* Open MPI's shmem/posix component keeps the fd of its shm_open segment (unlinked) open: a
   restart on MPICH found it in the image at the fd number Hydra's PMI_FD wanted */
FD_WRAP(int, shm_open, (const char *n, int fl, mode_t m), (n, fl, m), int)
FD_WRAP(int, dup, (int fd), (fd), int)
FD_WRAP(int, dup2, (int a, int b), (a, b), int)
FD_WRAP(int, dup3, (int a, int b, int fl), (a, b, fl), int)
FD_WRAP(int, creat, (const char *p, mode_t m), (p, m), int)
FD_WRAP(int, inotify_init, (void), (), int)
FD_WRAP(int, inotify_init1, (int fl), (fl), int)

typedef int (*open_fn)(const char *, int, ...);
typedef int (*openat_fn)(int, const char *, int, ...);
#define OPEN_WRAP(name)                                                                        \
    EXPORT int name(const char *p, int fl, ...)                                                \
    {                                                                                          \
        static _Atomic(open_fn) real;                                                          \
        open_fn f = atomic_load(&real);                                                        \
        if (!f) { f = (open_fn)dlsym(RTLD_NEXT, #name); if (!f) { errno = ENOSYS; return -1; } \
                  atomic_store(&real, f); }                                                    \
        mode_t m = 0;                                                                          \
        if (fl & (O_CREAT | O_TMPFILE)) { va_list ap; va_start(ap, fl); m = va_arg(ap, mode_t); va_end(ap); } \
        return fd_mark(f(p, fl, m));                                                           \
    }
#define OPENAT_WRAP(name)                                                                      \
    EXPORT int name(int d, const char *p, int fl, ...)                                         \
    {                                                                                          \
        static _Atomic(openat_fn) real;                                                        \
        openat_fn f = atomic_load(&real);                                                      \
        if (!f) { f = (openat_fn)dlsym(RTLD_NEXT, #name); if (!f) { errno = ENOSYS; return -1; } \
                  atomic_store(&real, f); }                                                    \
        mode_t m = 0;                                                                          \
        if (fl & (O_CREAT | O_TMPFILE)) { va_list ap; va_start(ap, fl); m = va_arg(ap, mode_t); va_end(ap); } \
        return fd_mark(f(d, p, fl, m));                                                        \
    }
OPEN_WRAP(open)
OPEN_WRAP(open64)
OPENAT_WRAP(openat)
OPENAT_WRAP(openat64)

typedef int (*pipe_fn)(int[2]);
typedef int (*pipe2_fn)(int[2], int);
typedef int (*socketpair_fn)(int, int, int, int[2]);
EXPORT int pipe(int fds[2])
{
    static _Atomic(pipe_fn) real;
    pipe_fn f = atomic_load(&real);
    if (!f) { f = (pipe_fn)dlsym(RTLD_NEXT, "pipe"); if (!f) { errno = ENOSYS; return -1; } atomic_store(&real, f); }
    int rc = f(fds);
    if (rc == 0) { fd_mark(fds[0]); fd_mark(fds[1]); }
    return rc;
}
EXPORT int pipe2(int fds[2], int fl)
{
    static _Atomic(pipe2_fn) real;
    pipe2_fn f = atomic_load(&real);
    if (!f) { f = (pipe2_fn)dlsym(RTLD_NEXT, "pipe2"); if (!f) { errno = ENOSYS; return -1; } atomic_store(&real, f); }
    int rc = f(fds, fl);
    if (rc == 0) { fd_mark(fds[0]); fd_mark(fds[1]); }
    return rc;
}
EXPORT int socketpair(int d, int t, int p, int fds[2])
{
    static _Atomic(socketpair_fn) real;
    socketpair_fn f = atomic_load(&real);
    if (!f) { f = (socketpair_fn)dlsym(RTLD_NEXT, "socketpair"); if (!f) { errno = ENOSYS; return -1; } atomic_store(&real, f); }
    int rc = f(d, t, p, fds);
    if (rc == 0) { fd_mark(fds[0]); fd_mark(fds[1]); }
    return rc;
}

typedef int (*close_fn)(int);
EXPORT int close(int fd)
{
    static _Atomic(close_fn) real;
    close_fn f = atomic_load(&real);
    if (!f) { f = (close_fn)dlsym(RTLD_NEXT, "close"); if (!f) { errno = ENOSYS; return -1; } atomic_store(&real, f); }
    fd_clear(fd);
    return f(fd);
}

typedef int (*fcntl_fn)(int, int, ...);
EXPORT int fcntl(int fd, int cmd, ...)
{
    static _Atomic(fcntl_fn) real;
    fcntl_fn f = atomic_load(&real);
    if (!f) { f = (fcntl_fn)dlsym(RTLD_NEXT, "fcntl"); if (!f) { errno = ENOSYS; return -1; } atomic_store(&real, f); }
    va_list ap;
    va_start(ap, cmd);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    int rc = f(fd, cmd, arg);
    if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) fd_mark(rc);
    return rc;
}

EXPORT int lh_track_fds(int32_t *out, int max)
{
    int n = 0;
    for (int w = 0; w < LH_MAX_FD / 64; w++) {
        uint64_t b = atomic_load(&fd_bits[w]);
        while (b) {
            int bit = __builtin_ctzll(b);
            b &= b - 1;
            if (n < max) out[n] = w * 64 + bit;
            n++;
        }
    }
    return n;
}
