/* Checkpoint suite: nonblocking collectives overlapped with computation. Each step starts an
   MPI_Iallreduce and an MPI_Ibcast, computes, pauses (the collectives still pending, so a
   checkpoint finds them incomplete) and only then waits for both.
   usage: nbcoll RESULT_FILE STEPS PAUSE_MS */
#include "suite.h"

#define LEN 16
static const long M = 1000000007L;

int main(int argc, char **argv) {
  struct run run = suite_start(&argc, &argv, "nbcoll");
  int rank = run.rank, size = run.size;
  long steps = run.steps;
  long v[LEN], sum[LEN], bc[LEN], x = rank + 1, trail = 0;
  for (int k = 0; k < LEN; k++) v[k] = (rank + 1) * (k + 1);
  for (long s = 0; s < steps; s++) {
    int root = (int)(s % size);
    for (int k = 0; k < LEN; k++) bc[k] = rank == root ? (x + k * s) % M : -1;
    MPI_Request rq[2];
    MPI_Iallreduce(v, sum, LEN, MPI_LONG, MPI_SUM, MPI_COMM_WORLD, &rq[0]);
    MPI_Ibcast(bc, LEN, MPI_LONG, root, MPI_COMM_WORLD, &rq[1]);
    /* computation that does not touch the buffers in flight */
    long c = x;
    for (int i = 0; i < 20000; i++) c = (c * 48271 + i) % 2147483647L;
    suite_pause(&run);
    MPI_Status sts[2]; /* not MPI_STATUSES_IGNORE: gcc 12 warns on MPICH's header */
    MPI_Waitall(2, rq, sts);
    long h = c;
    for (int k = 0; k < LEN; k++) {
      h = (h * 31 + sum[k] * 3 + bc[k]) % M;
      v[k] = (v[k] * 5 + sum[k] + bc[k] + k) % 65536;
    }
    x = (x * 17 + h) % M;
    trail = (trail * 131 + sum[0] + bc[LEN - 1]) % M;
  }
  long mine[2] = {x, trail};
  static const char *const keys[] = {"x", "trail"};
  suite_finish(&run, MPI_COMM_WORLD, NULL, keys, mine, 2);
  MPI_Finalize();
  return 0;
}
