/* B1 (DESIGN.md §7): ping-pong between ranks 0 and 1 with blocking MPI_Send/MPI_Recv.
 *   pingpong LAT_ITERS BW_ITERS
 * Phase 1: 8-byte messages, latency = half the mean round trip.
 * Phase 2: 1 MiB messages, bandwidth = bytes moved (both directions) / time.
 * Each phase is timed with MPI_Wtime after a warm-up and a barrier, so launcher start-up and
 * first-touch costs stay out of the figure. Rank 0 prints one line for bench/mpi.ts. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double phase(int rank, char *buf, int bytes, int warm, int iters) {
  double t0 = 0;
  for (int i = -warm; i < iters; i++) {
    if (i == 0) {
      MPI_Barrier(MPI_COMM_WORLD);
      t0 = MPI_Wtime();
    }
    if (rank == 0) {
      MPI_Send(buf, bytes, MPI_BYTE, 1, 1, MPI_COMM_WORLD);
      MPI_Recv(buf, bytes, MPI_BYTE, 1, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    } else if (rank == 1) {
      MPI_Recv(buf, bytes, MPI_BYTE, 0, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      MPI_Send(buf, bytes, MPI_BYTE, 0, 1, MPI_COMM_WORLD);
    }
  }
  return MPI_Wtime() - t0;
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (size < 2 || argc < 3) {
    if (rank == 0) fprintf(stderr, "usage: mpirun -n 2 pingpong LAT_ITERS BW_ITERS\n");
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  int lat_iters = atoi(argv[1]), bw_iters = atoi(argv[2]);
  const int big = 1 << 20;
  char *buf = malloc(big);
  if (!buf) MPI_Abort(MPI_COMM_WORLD, 1);
  memset(buf, rank, big);
  double tl = phase(rank, buf, 8, 1000, lat_iters);
  double tb = phase(rank, buf, big, 20, bw_iters);
  if (rank == 0)
    printf("MANA_BENCH lat_us=%.4f bw_MBps=%.1f lat_s=%.3f bw_s=%.3f\n", tl / lat_iters / 2 * 1e6,
           2.0 * big * bw_iters / tb / 1e6, tl, tb);
  free(buf);
  MPI_Finalize();
  return 0;
}
