/* B2 (DESIGN.md §7): an allreduce-heavy loop shaped like conjugate gradient's inner product
 * phase: each iteration updates a local vector of L doubles and reduces two scalars across all
 * ranks with MPI_Allreduce (MPI_SUM), then one 8-double MPI_MAX reduction.
 *   allreduce L ITERS
 * Rank 0 prints the slowest rank's time for the timed loop and a checksum. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (argc < 3) {
    if (rank == 0) fprintf(stderr, "usage: mpirun -n P allreduce L ITERS\n");
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  int l = atoi(argv[1]), iters = atoi(argv[2]);
  double *x = malloc(sizeof(double) * l), *p = malloc(sizeof(double) * l);
  if (!x || !p) MPI_Abort(MPI_COMM_WORLD, 1);
  for (int i = 0; i < l; i++) x[i] = 1.0 / (1 + i + rank), p[i] = (i % 7) * 0.1;
  double alpha = 0.5, acc = 0;
  MPI_Barrier(MPI_COMM_WORLD);
  double t0 = MPI_Wtime();
  for (int it = 0; it < iters; it++) {
    double loc[2] = {0, 0}, glob[2], m[8], gm[8];
    for (int i = 0; i < l; i++) {
      x[i] = x[i] * 0.999 + alpha * p[i] * 1e-3;
      loc[0] += x[i] * x[i];
      loc[1] += x[i] * p[i];
    }
    MPI_Allreduce(loc, glob, 2, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    alpha = glob[1] / (glob[0] + 1.0);
    for (int k = 0; k < 8; k++) m[k] = x[(k * 131 + it) % l];
    MPI_Allreduce(m, gm, 8, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    acc += gm[it % 8];
  }
  double el = MPI_Wtime() - t0, slowest = 0;
  MPI_Reduce(&el, &slowest, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
  if (rank == 0) printf("MANA_BENCH time_s=%.4f checksum=%.10e\n", slowest, acc + alpha);
  free(x), free(p);
  MPI_Finalize();
  return 0;
}
