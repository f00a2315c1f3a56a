/* fillmem — a process that holds SIZE_MiB of memory for the image benchmarks (B3, B4).
 *
 *   fillmem SIZE_MIB random|field [SECONDS] [THREADS]
 *
 * With THREADS > 1 the memory is split into THREADS parts, each allocated and filled by its own
 * thread (so it lives in that thread's malloc arena), and the threads stay alive and idle: the
 * "4-thread process holding 4 GiB" of issue 3's benchmarks.
 *
 * "random" fills the memory with incompressible bytes (the worst case for zstd); "field" with a
 * smooth float64 field like a simulation's state (what compression is for). It prints "ready"
 * once the memory is filled, then idles until SECONDS have passed (default 600) or it is killed.
 * On SIGUSR1 it rewrites 5 % of the memory with new random bytes, as 16 spans spread over it at
 * unaligned offsets (a solver updating some of its arrays), and prints "changed" (benchmark B6:
 * incremental images).
 */
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t change_requested;
static void on_usr1(int sig) {
  (void)sig;
  change_requested = 1;
}

/* 5 % of n words, in 16 spans, one in each sixteenth, at an odd offset inside it. */
static void change_5_percent(uint64_t *m, size_t n, uint64_t *s) {
  size_t span = n / 20 / 16, part = n / 16;
  for (size_t k = 0; k < 16; k++) {
    size_t at = k * part + (part - span) / 3 + 12345 * (k + 1) % 4099;
    for (size_t i = 0; i < span; i++) {
      *s ^= *s << 13;
      *s ^= *s >> 7;
      *s ^= *s << 17;
      m[at + i] = *s;
    }
  }
}

struct part {
  size_t bytes;
  int field;
  uint64_t seed;
  uint64_t *m;
};

static pthread_barrier_t filled;

static uint64_t *fill(struct part *p) {
  uint64_t *m = malloc(p->bytes);
  if (!m) {
    perror("malloc");
    exit(1);
  }
  size_t n = p->bytes / 8;
  uint64_t s = p->seed;
  for (size_t i = 0; i < n; i++) {
    if (p->field) {
      double v = sin((double)i * 1e-4) * 300.0 + 273.15;
      memcpy(&m[i], &v, 8);
    } else {
      s ^= s << 13;
      s ^= s >> 7;
      s ^= s << 17;
      m[i] = s;
    }
  }
  p->seed = s;
  return m;
}

static void *holder(void *arg) {
  struct part *p = arg;
  p->m = fill(p);
  pthread_barrier_wait(&filled);
  for (;;) pause(); /* idle, holding its part, until the process ends */
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: fillmem SIZE_MIB random|field [SECONDS] [THREADS]\n");
    return 2;
  }
  size_t bytes = (size_t)atol(argv[1]) << 20;
  int field = strcmp(argv[2], "field") == 0;
  long seconds = argc > 3 ? atol(argv[3]) : 600;
  int threads = argc > 4 ? atoi(argv[4]) : 1;
  if (threads < 1 || threads > 64) return 2;
  struct part parts[64];
  pthread_barrier_init(&filled, NULL, (unsigned)threads);
  for (int k = 0; k < threads; k++)
    parts[k] = (struct part){bytes / (size_t)threads, field, 88172645463325252ULL + (uint64_t)k * 7919, NULL};
  pthread_t tid;
  for (int k = 1; k < threads; k++)
    if (pthread_create(&tid, NULL, holder, &parts[k]) != 0) return 1;
  uint64_t *m = fill(&parts[0]);
  pthread_barrier_wait(&filled);
  size_t n = parts[0].bytes / 8;
  uint64_t s = parts[0].seed;
  signal(SIGUSR1, on_usr1);
  printf("ready\n");
  fflush(stdout);
  for (long t = 0; t < seconds * 10; t++) {
    usleep(100000);
    if (change_requested) {
      change_requested = 0;
      change_5_percent(m, n, &s);
      printf("changed\n");
      fflush(stdout);
    }
  }
  return (int)(m[n / 2] & 1);
}
