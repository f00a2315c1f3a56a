/* omp_loop — an OpenMP (libgomp) solver-like loop whose thread pool is alive at checkpoint.
 *
 *   omp_loop OUT ROUNDS [THREADS]
 *
 * Each round relaxes a 1-D field in a parallel loop. The per-thread partial sums are combined
 * in thread order (not with reduction(+), whose combination order varies from run to run), so
 * the output is bit-identical between runs with the same thread count.
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define N (1 << 21)
#define MAXT 64

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: omp_loop OUT ROUNDS [THREADS]\n");
    return 2;
  }
  FILE *out = fopen(argv[1], "w");
  if (!out) {
    perror(argv[1]);
    return 99;
  }
  int rounds = atoi(argv[2]);
  int nt = argc > 3 ? atoi(argv[3]) : 4;
  if (nt < 1 || nt > MAXT) return 2;
  double *a = malloc(N * sizeof *a), *b = malloc(N * sizeof *b);
  if (!a || !b) return 99;
  for (int i = 0; i < N; i++) a[i] = (double)(i % 1000) * 0.001;
  for (int r = 0; r < rounds; r++) {
    double part[MAXT] = {0};
#pragma omp parallel num_threads(nt)
    {
      int t = omp_get_thread_num();
      double s = 0;
#pragma omp for schedule(static)
      for (int i = 1; i < N - 1; i++) {
        b[i] = 0.25 * a[i - 1] + 0.5 * a[i] + 0.25 * a[i + 1] + 1e-6 * r;
        s += b[i];
      }
      part[t] = s;
    }
    double sum = 0;
    for (int t = 0; t < nt; t++) sum += part[t];
    double *tmp = a;
    a = b;
    b = tmp;
    a[0] = a[1];
    a[N - 1] = a[N - 2];
    fprintf(out, "round %d sum %.17g\n", r, sum);
    fflush(out);
    struct timespec ts = {0, 10000000};
    nanosleep(&ts, NULL);
  }
  fclose(out);
  return 20 + (int)(a[N / 2] * 1000) % 30;
}
