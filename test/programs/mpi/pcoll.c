/* MPI-4 persistent collectives (MPI_Allreduce_init + MPI_Start/MPI_Wait each step), which
   checkpoints do not support yet: test/mpi-ckpt.test.ts checks that a checkpoint is refused
   with one line and that the job runs on to the right result (MPICH lower half only: Open MPI
   4.1 has no persistent collectives).
   usage: pcoll RESULT_FILE STEPS PAUSE_MS */
#include "suite.h"

#define LEN 8
static const long M = 1000000007L;

int main(int argc, char **argv) {
  struct run run = suite_start(&argc, &argv, "pcoll");
  long v[LEN], sum[LEN], x = run.rank + 1;
  MPI_Request rq;
  MPI_Allreduce_init(v, sum, LEN, MPI_LONG, MPI_SUM, MPI_COMM_WORLD, MPI_INFO_NULL, &rq);
  for (long s = 0; s < run.steps; s++) {
    for (int k = 0; k < LEN; k++) v[k] = (x + k * s) % 65536;
    MPI_Start(&rq);
    suite_pause(&run);
    MPI_Wait(&rq, MPI_STATUS_IGNORE);
    for (int k = 0; k < LEN; k++) x = (x * 31 + sum[k]) % M;
  }
  MPI_Request_free(&rq);
  long mine[1] = {x};
  static const char *const keys[] = {"x"};
  suite_finish(&run, MPI_COMM_WORLD, NULL, keys, mine, 1);
  MPI_Finalize();
  return 0;
}
