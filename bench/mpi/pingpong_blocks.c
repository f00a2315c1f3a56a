/* B1's 8-byte ping-pong timed in blocks, for a machine that cannot be kept idle:
 *   mpirun -n 2 pingpong_blocks BLOCKS ROUND_TRIPS_PER_BLOCK
 * Rank 0 prints the smallest, 10th-percentile and median block latency (half round trip, µs).
 * A block the scheduler disturbed is slow; the undisturbed ones give the latency itself, so
 * the low percentiles of interleaved native and mana runs compare well even under load. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

static int by_value(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (size < 2 || argc < 3 || atoi(argv[1]) < 1 || atoi(argv[2]) < 1) {
    if (rank == 0) fprintf(stderr, "usage: mpirun -n 2 pingpong_blocks BLOCKS ROUND_TRIPS_PER_BLOCK\n");
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  int blocks = atoi(argv[1]), per = atoi(argv[2]);
  char buf[8] = {0};
  double *t = malloc(sizeof(double) * (size_t)blocks);
  if (!t) MPI_Abort(MPI_COMM_WORLD, 1);
  for (int k = -10; k < blocks; k++) { /* ten blocks of warm-up */
    double t0 = MPI_Wtime();
    for (int i = 0; i < per; i++) {
      if (rank == 0) {
        MPI_Send(buf, 8, MPI_BYTE, 1, 1, MPI_COMM_WORLD);
        MPI_Recv(buf, 8, MPI_BYTE, 1, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      } else if (rank == 1) {
        MPI_Recv(buf, 8, MPI_BYTE, 0, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        MPI_Send(buf, 8, MPI_BYTE, 0, 1, MPI_COMM_WORLD);
      }
    }
    if (k >= 0) t[k] = (MPI_Wtime() - t0) / per / 2 * 1e6;
  }
  qsort(t, (size_t)blocks, sizeof *t, by_value);
  if (rank == 0) printf("lat_us min %.4f p10 %.4f p50 %.4f\n", t[0], t[blocks / 10], t[blocks / 2]);
  free(t);
  MPI_Finalize();
  return 0;
}
