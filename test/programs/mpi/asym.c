/* The replay log's agreement across an intercommunicator that one side frees at once and the
   other keeps (legal: MPI_Comm_free does not synchronize). Each half of MPI_COMM_WORLD duplicates
   its half, joins the other half through the duplicate, and frees the duplicate; the even side
   frees the intercommunicator at once, the odd side keeps it to the end (it reads its remote
   group). At a checkpoint the even side has nothing left of it, yet must replay its part of the
   MPI_Intercomm_create for the odd side, and with it the duplicate and the split it came from:
   the ranks need a second round of agreement to find that out (docs/mpi-checkpoint.md).
   usage: asym RESULT_FILE STEPS PAUSE_MS */
#include "suite.h"

int main(int argc, char **argv) {
  struct run run = suite_start(&argc, &argv, "asym");
  int rank = run.rank, size = run.size;
  if (size < 2 || size % 2) {
    fprintf(stderr, "asym needs an even number of ranks\n");
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  MPI_Comm half, lc, ic = MPI_COMM_NULL;
  MPI_Comm_split(MPI_COMM_WORLD, rank % 2, rank, &half);
  MPI_Comm_dup(half, &lc);
  MPI_Comm_free(&half);
  MPI_Intercomm_create(lc, 0, MPI_COMM_WORLD, rank % 2 ? 0 : 1, 9, &ic);
  MPI_Comm_free(&lc);
  if (rank % 2 == 0) MPI_Comm_free(&ic);
  long x = rank + 1, remote = 0;
  for (long s = 0; s < run.steps; s++) {
    long sum = 0;
    MPI_Allreduce(&x, &sum, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
    x = (x * 17 + sum + s) % 1000003;
    suite_pause(&run);
  }
  if (ic != MPI_COMM_NULL) {
    int rs = 0, inter = 0;
    MPI_Comm_remote_size(ic, &rs);
    MPI_Comm_test_inter(ic, &inter);
    remote = rs * 10 + inter;
    MPI_Comm_free(&ic);
  }
  long mine[2] = {x, remote};
  static const char *const keys[] = {"x", "remote"};
  suite_finish(&run, MPI_COMM_WORLD, NULL, keys, mine, 2);
  MPI_Finalize();
  return 0;
}
