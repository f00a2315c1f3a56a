/* Checkpoint suite: persistent requests (MPI_Send_init/MPI_Recv_init, MPI_Startall) in a
   ring, and an Allreduce each step. Checkpoints of such a job are refused (docs/
   mpi-checkpoint.md, Limits); the test checks that the refusal is one clear line and that
   the job runs on to the right result.
   usage: persist RESULT_FILE STEPS PAUSE_MS */
#include "suite.h"

static const long M = 1000000007L;

int main(int argc, char **argv) {
  struct run run = suite_start(&argc, &argv, "persist");
  int rank = run.rank, size = run.size;
  long steps = run.steps;
  int right = (rank + 1) % size, left = (rank + size - 1) % size;
  long out = 0, in = 0, x = rank + 1, trail = 0;
  MPI_Request rq[2];
  MPI_Recv_init(&in, 1, MPI_LONG, left, 7, MPI_COMM_WORLD, &rq[0]);
  MPI_Send_init(&out, 1, MPI_LONG, right, 7, MPI_COMM_WORLD, &rq[1]);
  for (long s = 0; s < steps; s++) {
    out = x;
    MPI_Startall(2, rq);
    MPI_Status sts[2]; /* not MPI_STATUSES_IGNORE: gcc 12 warns on MPICH's header */
    MPI_Waitall(2, rq, sts);
    long sum = 0;
    MPI_Allreduce(&x, &sum, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
    x = (x * 31 + in * 7 + sum + s) % M;
    trail = (trail * 131 + in) % M;
    suite_pause(&run);
  }
  MPI_Request_free(&rq[0]);
  MPI_Request_free(&rq[1]);
  long mine[2] = {x, trail};
  static const char *const keys[] = {"x", "trail"};
  suite_finish(&run, MPI_COMM_WORLD, NULL, keys, mine, 2);
  MPI_Finalize();
  return 0;
}
