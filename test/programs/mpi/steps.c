/* A long-running deterministic MPI program for checkpoint/restart tests: STEPS iterations of
   a ring exchange (nonblocking, receive posted first) and an allreduce, with a pause between
   steps spent outside MPI (so a checkpoint lands mid-run, and MPICH's busy polling does not
   compete with the test for the CPUs). Integer arithmetic only, so every MPI gives the same
   numbers. Rank 0 writes the result file at the end; every rank's state goes into it.
   usage: steps RESULT_FILE STEPS PAUSE_MS */
#include "suite.h"

int main(int argc, char **argv) {
  struct run run = suite_start(&argc, &argv, "steps");
  int rank = run.rank, size = run.size;
  long steps = run.steps;
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
    suite_pause(&run);
  }
  long mine[3] = {x, trail, total};
  static const char *const keys[] = {"x", "trail", "total"};
  suite_finish(&run, MPI_COMM_WORLD, NULL, keys, mine, 3);
  MPI_Finalize();
  return 0;
}
