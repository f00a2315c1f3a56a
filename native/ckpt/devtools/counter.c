/* counter.c — DEV TOOL ONLY: a program to checkpoint by hand with fake_agent.py.
 *   counter OUTFILE N [THREADS]
 * Counts to N (one step per 50 ms), printing each step and appending it to OUTFILE; after
 * every step it also allocates and checks a few MiB of small blocks (exercises malloc's brk
 * or mmap fallback after a restart). Worker threads increment their own counters. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile long work[16];

static void *worker(void *arg) {
  long id = (long)arg;
  for (;;) {
    work[id]++;
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
  }
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 3) return 2;
  int n = atoi(argv[2]);
  int nt = argc > 3 ? atoi(argv[3]) : 0;
  FILE *f = fopen(argv[1], "a");
  if (!f) return 3;
  for (long i = 0; i < nt && i < 16; i++) {
    pthread_t t;
    pthread_create(&t, NULL, worker, (void *)i);
  }
  char **keep = calloc(100000, sizeof *keep);
  size_t nkeep = 0;
  for (int i = 1; i <= n; i++) {
    printf("count %d pid %d\n", i, getpid());
    fflush(stdout);
    fprintf(f, "%d\n", i);
    fflush(f);
    for (int k = 0; k < 200 && nkeep < 100000; k++) {
      char *p = malloc(4000);
      memset(p, (int)(nkeep & 0xff), 4000);
      keep[nkeep++] = p;
    }
    for (size_t k = 0; k < nkeep; k += 97)
      if (keep[k][3999] != (char)(k & 0xff)) {
        printf("heap corrupt at %zu\n", k);
        return 4;
      }
    struct timespec ts = {0, 50000000};
    nanosleep(&ts, NULL);
  }
  long sum = 0;
  for (int i = 0; i < nt; i++) sum += work[i] > 0;
  printf("done %d kept %zu blocks, %ld/%d workers ran\n", n, nkeep, sum, nt);
  fclose(f);
  return 0;
}
