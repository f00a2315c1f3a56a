/* deleted — keeps reading and appending to a file it deleted (a plain C program that knows
 * nothing of mana).
 *
 *   deleted OUT STEPS SLEEP_MS DIR
 *
 * Creates DIR/scratch with 100 KB of data, opens it twice (O_RDONLY, and O_WRONLY|O_APPEND)
 * and unlinks it. Each step reads 64 bytes through the first fd (its offset advances) and
 * appends a line through the second. At the end it reports the offsets, the flags, and a
 * checksum of the whole file read back with pread.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what) {
  perror(what);
  exit(99);
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: deleted OUT STEPS SLEEP_MS DIR\n");
    return 2;
  }
  FILE *out = fopen(argv[1], "w");
  if (!out) die(argv[1]);
  long steps = atol(argv[2]), ms = atol(argv[3]);
  char path[4096];
  snprintf(path, sizeof path, "%s/scratch", argv[4]);
  int w = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (w < 0) die(path);
  static char data[100 * 1024];
  for (size_t i = 0; i < sizeof data; i++) data[i] = (char)('a' + (i * 7 + i / 13) % 26);
  if (write(w, data, sizeof data) != (ssize_t)sizeof data) die("write");
  close(w);
  int r = open(path, O_RDONLY);
  int a = open(path, O_WRONLY | O_APPEND);
  if (r < 0 || a < 0) die("open");
  if (unlink(path) != 0) die("unlink");
  uint64_t sum = 0;
  for (long i = 0; i < steps; i++) {
    char b[64];
    ssize_t n = read(r, b, sizeof b);
    for (ssize_t k = 0; k < n; k++) sum = sum * 31 + (unsigned char)b[k];
    char line[64];
    int l = snprintf(line, sizeof line, "appended %ld\n", i);
    if (write(a, line, (size_t)l) != l) die("append");
    fprintf(out, "step %ld read %zd sum %llu\n", i, n, (unsigned long long)sum);
    fflush(out);
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
  }
  struct stat st;
  fstat(r, &st);
  static char all[200 * 1024];
  ssize_t n = pread(r, all, sizeof all, 0);
  uint64_t h = 1469598103934665603ull;
  for (ssize_t k = 0; k < n; k++) h = (h ^ (unsigned char)all[k]) * 1099511628211ull;
  fprintf(out, "size %lld links %lu read offset %lld append offset %lld\n", (long long)st.st_size,
          (unsigned long)st.st_nlink, (long long)lseek(r, 0, SEEK_CUR),
          (long long)lseek(a, 0, SEEK_CUR));
  fprintf(out, "flags rdonly %d append %d\n", (fcntl(r, F_GETFL) & O_ACCMODE) == O_RDONLY,
          (fcntl(a, F_GETFL) & O_APPEND) != 0);
  fprintf(out, "fnv1a %016llx\n", (unsigned long long)h);
  fclose(out);
  return (int)(sum % 200);
}
