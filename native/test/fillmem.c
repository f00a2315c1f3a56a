/* fillmem — a process that holds SIZE_MiB of memory for the image benchmarks (B3, B4).
 *
 *   fillmem SIZE_MIB random|field [SECONDS]
 *
 * "random" fills the memory with incompressible bytes (the worst case for zstd); "field" with a
 * smooth float64 field like a simulation's state (what compression is for). It prints "ready"
 * once the memory is filled, then idles until SECONDS have passed (default 600) or it is killed.
 * On SIGUSR1 it rewrites 5 % of the memory with new random bytes, as 16 spans spread over it at
 * unaligned offsets (a solver updating some of its arrays), and prints "changed" (benchmark B6:
 * incremental images).
 */
#include <math.h>
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

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: fillmem SIZE_MIB random|field [SECONDS]\n");
    return 2;
  }
  size_t bytes = (size_t)atol(argv[1]) << 20;
  int field = strcmp(argv[2], "field") == 0;
  long seconds = argc > 3 ? atol(argv[3]) : 600;
  uint64_t *m = malloc(bytes);
  if (!m) {
    perror("malloc");
    return 1;
  }
  size_t n = bytes / 8;
  uint64_t s = 88172645463325252ULL;
  for (size_t i = 0; i < n; i++) {
    if (field) {
      double v = sin((double)i * 1e-4) * 300.0 + 273.15;
      memcpy(&m[i], &v, 8);
    } else {
      s ^= s << 13;
      s ^= s >> 7;
      s ^= s << 17;
      m[i] = s;
    }
  }
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
