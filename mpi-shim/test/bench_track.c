/* bench_track: what lh_track.so costs.  Run once with LD_PRELOAD=libmimalloc.so.2 and once
 * with LD_PRELOAD=lh_track.so:libmimalloc.so.2 (run_track_test.sh does both); prints
 * nanoseconds per operation:
 *   malloc_free   1M malloc/free pairs, sizes 16 B .. 64 KiB (what MPI libraries do all day)
 *   mmap_munmap   100k mmap+munmap pairs of 64 KiB (every one goes through the tracker)
 *   thread        2000 pthread_create+join pairs
 * An optional argument runs only the named one.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

/* The machine is shared (other builds run on its 2 cores): the single-thread loops are timed
 * in this thread's CPU time (user + system), which preemption does not inflate; thread
 * creation, which waits for another thread, in wall time. */
static double clock_ns(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}
static double cpu(void) { return clock_ns(CLOCK_THREAD_CPUTIME_ID); }
static double wall(void) { return clock_ns(CLOCK_MONOTONIC); }

static void *nothing(void *p) { return p; }

int main(int argc, char **argv)
{
    const char *only = argc > 1 ? argv[1] : NULL;
    volatile char sink = 0;
    if (!only || !strcmp(only, "malloc_free")) {
        enum { N = 1000000 };
        static const size_t sizes[] = {16, 48, 100, 256, 1000, 4096, 20000, 65536};
        double t0 = cpu();
        for (int i = 0; i < N; i++) {
            char *p = malloc(sizes[i & 7]);
            p[0] = (char)i;
            sink += p[0];
            free(p);
        }
        printf("malloc_free %.1f\n", (cpu() - t0) / N);
    }
    if (!only || !strcmp(only, "mmap_munmap")) {
        enum { N = 100000 };
        double t0 = cpu();
        for (int i = 0; i < N; i++) {
            char *p = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (p == MAP_FAILED)
                return 1;
            munmap(p, 65536);
        }
        printf("mmap_munmap %.1f\n", (cpu() - t0) / N);
    }
    if (!only || !strcmp(only, "thread")) {
        enum { N = 2000 };
        double t0 = wall();
        for (int i = 0; i < N; i++) {
            pthread_t t;
            if (pthread_create(&t, NULL, nothing, NULL) != 0)
                return 1;
            pthread_join(t, NULL);
        }
        printf("thread %.1f\n", (wall() - t0) / N);
    }
    (void)sink;
    return 0;
}
