/* A long-running deterministic MPI program for checkpoint/restart tests: STEPS iterations of
   a ring exchange (nonblocking, receive posted first) and an allreduce, with a pause between
   steps spent outside MPI (so a checkpoint lands mid-run, and MPICH's busy polling does not
   compete with the test for the CPUs). Integer arithmetic only, so every MPI gives the same
   numbers. Rank 0 writes the result file at the end; every rank's state goes into it.
   usage: steps RESULT_FILE STEPS PAUSE_MS */
#define _DEFAULT_SOURCE /* usleep */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  if (argc != 4) {
    fprintf(stderr, "usage: steps RESULT_FILE STEPS PAUSE_MS\n");
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  long steps = atol(argv[2]);
  int pause_ms = atoi(argv[3]);
  const long M = 1000000007L;
  int right = (rank + 1) % size, left = (rank + size - 1) % size;
  long x = rank + 1, trail = 0, total = 0;
  for (long step = 0; step < steps; step++) {
    long got = 0;
    MPI_Request req[2];
    MPI_Status st[2];
    MPI_Irecv(&got, 1, MPI_LONG, left, (int)(step % 1000), MPI_COMM_WORLD, &req[0]);
    MPI_Isend(&x, 1, MPI_LONG, right, (int)(step % 1000), MPI_COMM_WORLD, &req[1]);
    MPI_Waitall(2, req, st);
    long sum = 0;
    MPI_Allreduce(&x, &sum, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
    x = (x * 31 + got * 7 + sum + step) % M;
    trail = (trail * 131 + got) % M;
    total = (total + sum) % M;
    if (pause_ms > 0) usleep((useconds_t)pause_ms * 1000);
  }
  long mine[3] = {x, trail, total};
  long *all = rank == 0 ? malloc(sizeof(long) * 3 * (size_t)size) : NULL;
  MPI_Gather(mine, 3, MPI_LONG, all, 3, MPI_LONG, 0, MPI_COMM_WORLD);
  if (rank == 0) {
    FILE *f = fopen(argv[1], "w");
    if (!f) {
      perror(argv[1]);
      MPI_Abort(MPI_COMM_WORLD, 3);
    }
    fprintf(f, "size %d steps %ld\n", size, steps);
    for (int r = 0; r < size; r++) fprintf(f, "rank %d x=%ld trail=%ld total=%ld\n", r, all[3 * r], all[3 * r + 1], all[3 * r + 2]);
    fclose(f);
    free(all);
  }
  MPI_Finalize();
  return 0;
}
