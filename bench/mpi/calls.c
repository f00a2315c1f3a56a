/* What one MPI call costs through mana, without any waiting: one rank, a tight loop of
 *   calls N MODE
 *   1: MPI_Comm_rank (one crossing and one handle translation)
 *   2: MPI_Isend to itself, MPI_Recv, MPI_Wait (the blocking receive completes at once)
 *   3: MPI_Irecv, MPI_Send to itself, MPI_Wait (the blocking send completes at once)
 *   4: MPI_Send and MPI_Recv of MPI_PROC_NULL
 * Count it with `perf stat -e cycles:u,instructions:u`, natively and on mana's library, and
 * subtract a run with N = 0: the counts are stable on a loaded machine, where wall time is not.
 * Start it as a singleton (no launcher). */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  if (argc < 3) {
    fprintf(stderr, "usage: calls N MODE (1..4)\n");
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  long n = atol(argv[1]);
  int mode = atoi(argv[2]), rank, x = 0;
  char a[8] = {0}, b[8] = {0};
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  double t0 = MPI_Wtime();
  for (long i = 0; i < n; i++) {
    MPI_Request r;
    switch (mode) {
      case 1:
        MPI_Comm_rank(MPI_COMM_WORLD, &x);
        break;
      case 2:
        MPI_Isend(a, 8, MPI_BYTE, rank, 1, MPI_COMM_WORLD, &r);
        MPI_Recv(b, 8, MPI_BYTE, rank, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        MPI_Wait(&r, MPI_STATUS_IGNORE);
        break;
      case 3:
        MPI_Irecv(b, 8, MPI_BYTE, rank, 1, MPI_COMM_WORLD, &r);
        MPI_Send(a, 8, MPI_BYTE, rank, 1, MPI_COMM_WORLD);
        MPI_Wait(&r, MPI_STATUS_IGNORE);
        break;
      case 4:
        MPI_Send(a, 8, MPI_BYTE, MPI_PROC_NULL, 1, MPI_COMM_WORLD);
        MPI_Recv(b, 8, MPI_BYTE, MPI_PROC_NULL, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        break;
      default:
        fprintf(stderr, "calls: MODE must be 1..4, not %d\n", mode);
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
  }
  if (n > 0) printf("mode %d: %.1f ns per iteration\n", mode, (MPI_Wtime() - t0) / (double)n * 1e9);
  MPI_Finalize();
  return 0;
}
