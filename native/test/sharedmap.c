/* sharedmap — writes through a MAP_SHARED file mapping on every step (a plain C program that
 * knows nothing of mana).
 *
 *   sharedmap OUT DATAFILE STEPS SLEEP_MS
 *
 * DATAFILE is created with 16 pages and mapped MAP_SHARED; step i reads the slot that step i-1
 * wrote through the mapping and writes its own slot (STRIDE bytes apart, over all 16 pages),
 * so both directions (memory -> file, file -> memory) must survive a restart. A restarted
 * process redoes the steps after its checkpoint and sees the file as it is then (mana re-maps
 * the file, as DMTCP does); each step depends only on the slots of earlier steps, so redoing
 * one gives the same result. At the end it unmaps, reads DATAFILE with read(2) and appends
 * its checksum to OUT. STEPS must be at most SIZE / STRIDE.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define SIZE (16 * 4096)
#define STRIDE 1600

static void die(const char *what) {
  perror(what);
  exit(99);
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: sharedmap OUT DATAFILE STEPS SLEEP_MS\n");
    return 2;
  }
  FILE *out = fopen(argv[1], "w");
  if (!out) die(argv[1]);
  long steps = atol(argv[3]), ms = atol(argv[4]);
  int fd = open(argv[2], O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) die(argv[2]);
  if (ftruncate(fd, SIZE) != 0) die("ftruncate");
  char *m = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (m == MAP_FAILED) die("mmap");
  close(fd); /* only the mapping keeps the file: it must be re-mapped from its path */
  uint64_t sum = 0;
  for (long i = 0; i < steps; i++) {
    size_t pos = (size_t)i * STRIDE;
    if (pos + STRIDE > SIZE) {
      fprintf(stderr, "sharedmap: at most %d steps\n", SIZE / STRIDE);
      return 2;
    }
    if (i > 0)
      for (size_t k = pos - STRIDE; k < pos; k++) sum = sum * 131 + (unsigned char)m[k];
    snprintf(m + pos, 48, "step %ld sum %llu|", i, (unsigned long long)sum);
    fprintf(out, "step %ld sum %llu\n", i, (unsigned long long)sum);
    fflush(out);
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
  }
  if (munmap(m, SIZE) != 0) die("munmap");
  fd = open(argv[2], O_RDONLY);
  if (fd < 0) die(argv[2]);
  static char buf[SIZE];
  if (read(fd, buf, SIZE) != SIZE) die("read back");
  close(fd);
  uint64_t h = 1469598103934665603ull;
  for (size_t k = 0; k < SIZE; k++) h = (h ^ (unsigned char)buf[k]) * 1099511628211ull;
  fprintf(out, "file fnv1a %016llx\n", (unsigned long long)h);
  fclose(out);
  return (int)(sum % 200);
}
