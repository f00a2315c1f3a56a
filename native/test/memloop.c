/* memloop — the walking skeleton's acceptance program (a plain C program that knows nothing of
 * mana).
 *
 *   memloop OUT STEPS [SLEEP_MS] [INPUT]
 *
 * It keeps ~80 MiB of state in every kind of memory a checkpointer must get right: thousands of
 * small malloc blocks (brk heap), one big malloc (an mmap'd chunk), an anonymous mmap, a private
 * writable mapping of a file it creates, and its stack. Each step mixes all of them with a
 * deterministic generator, appends a line to OUT through stdio (so unflushed buffers and the file
 * offset cross the checkpoint), churns malloc/free (after a restart sbrk may fail and glibc must
 * fall back to mmap), and raises SIGUSR1 (raise() needs glibc's cached TID to be right after a
 * restart). With INPUT, it keeps that file open and reads a byte of it per step. The exit status
 * is derived from the final state, so a run that went wrong anywhere exits differently.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define SMALL_BLOCKS 4096
#define SMALL_SIZE 4096                 /* 16 MiB in brk-heap blocks */
#define BIG_SIZE (24u << 20)            /* one malloc above the mmap threshold */
#define ANON_SIZE (32u << 20)           /* anonymous private mapping */
#define FILEMAP_SIZE (8u << 20)         /* private writable file mapping */

static volatile sig_atomic_t usr1_count;

static void on_usr1(int sig) {
  (void)sig;
  usr1_count++;
}

static uint64_t next(uint64_t *s) {
  /* xorshift64*: deterministic, fast, and different on every step */
  uint64_t x = *s;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *s = x;
  return x * 0x2545F4914F6CDD1DULL;
}

static void die(const char *what) {
  perror(what);
  exit(99);
}

static void mix(uint64_t *words, size_t n, uint64_t *seed, uint64_t *sum, size_t touches) {
  for (size_t i = 0; i < touches; i++) {
    uint64_t r = next(seed);
    size_t at = (size_t)(r % n);
    words[at] = words[at] * 31 + r;
    *sum += words[at];
  }
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: memloop OUT STEPS [SLEEP_MS] [INPUT]\n");
    return 2;
  }
  const char *out_path = argv[1];
  long steps = atol(argv[2]);
  long sleep_each = argc > 3 ? atol(argv[3]) : 10;
  FILE *in = NULL;
  if (argc > 4 && !(in = fopen(argv[4], "r"))) die(argv[4]);

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr1;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGUSR1, &sa, NULL) != 0) die("sigaction");

  FILE *out = fopen(out_path, "w");
  if (!out) die(out_path);

  uint64_t seed = 0x9E3779B97F4A7C15ULL, sum = 0;
  uint64_t *small[SMALL_BLOCKS];
  for (int i = 0; i < SMALL_BLOCKS; i++) {
    small[i] = malloc(SMALL_SIZE);
    if (!small[i]) die("malloc small");
    for (size_t j = 0; j < SMALL_SIZE / 8; j++) small[i][j] = next(&seed);
  }
  uint64_t *big = malloc(BIG_SIZE);
  if (!big) die("malloc big");
  for (size_t j = 0; j < BIG_SIZE / 8; j++) big[j] = next(&seed);
  uint64_t *anon = mmap(NULL, ANON_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (anon == MAP_FAILED) die("mmap anon");
  for (size_t j = 0; j < ANON_SIZE / 8; j += 3) anon[j] = next(&seed); /* leave some pages sparse */

  char map_path[4096];
  snprintf(map_path, sizeof map_path, "%s.map", out_path);
  int mfd = open(map_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (mfd < 0 || ftruncate(mfd, FILEMAP_SIZE) != 0) die(map_path);
  uint64_t *fmap = mmap(NULL, FILEMAP_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE, mfd, 0);
  if (fmap == MAP_FAILED) die("mmap file");
  close(mfd);
  for (size_t j = 0; j < FILEMAP_SIZE / 8; j += 7) fmap[j] = next(&seed);

  uint64_t stack_state[512];
  for (int i = 0; i < 512; i++) stack_state[i] = next(&seed);

  for (long step = 0; step < steps; step++) {
    mix(small[step % SMALL_BLOCKS], SMALL_SIZE / 8, &seed, &sum, 64);
    mix(big, BIG_SIZE / 8, &seed, &sum, 4096);
    mix(anon, ANON_SIZE / 8, &seed, &sum, 4096);
    mix(fmap, FILEMAP_SIZE / 8, &seed, &sum, 1024);
    mix(stack_state, 512, &seed, &sum, 64);

    /* malloc churn of varied sizes: new brk growth and mmap chunks after a restart */
    size_t churn_n = 64 + (size_t)(next(&seed) % 64);
    void *churn[128];
    for (size_t i = 0; i < churn_n; i++) {
      size_t sz = 16 + (size_t)(next(&seed) % (i % 8 == 0 ? 300000 : 2000));
      churn[i] = malloc(sz);
      if (!churn[i]) die("malloc churn");
      memset(churn[i], (int)(i & 0xff), sz);
    }
    for (size_t i = 0; i < churn_n; i += 2) free(churn[i]);
    for (size_t i = 1; i < churn_n; i += 2) free(churn[i]);

    if (raise(SIGUSR1) != 0) die("raise");
    int c = in ? fgetc(in) : 0;
    if (c == EOF) rewind(in), c = 0;

    fprintf(out, "step %ld sum %016" PRIx64 " usr1 %d in %d\n", step, sum, (int)usr1_count, c);
    if (step % 8 == 0) fflush(out);
    sleep_ms(sleep_each);
  }

  uint64_t final = sum;
  for (int i = 0; i < SMALL_BLOCKS; i += 97) final += small[i][0];
  final += big[12345] + anon[777] + fmap[4242] + stack_state[7];
  fprintf(out, "final %016" PRIx64 " usr1 %d\n", final, (int)usr1_count);
  if (fclose(out) != 0) die("fclose");
  unlink(map_path);
  printf("memloop done: %016" PRIx64 "\n", final);
  return 10 + (int)(final % 50);
}
