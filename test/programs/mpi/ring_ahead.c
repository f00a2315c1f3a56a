/* Checkpoint suite (test/mpi-ckpt-suite.test.ts): a nonblocking ring whose receives are posted
   DEPTH steps ahead, so a checkpoint finds receives pending (some unmatched, some already
   matched by a neighbour that is ahead), and whose send of a step is waited for only in the
   next step (pending across the pause). No collectives until the end: ranks are coupled only
   by the ring. Integer arithmetic: every MPI gives the same numbers.
   usage: ring_ahead RESULT_FILE STEPS PAUSE_MS */
#include "suite.h"

#define DEPTH 3
#define LEN 4
static const long M = 1000000007L;

int main(int argc, char **argv) {
  struct run run = suite_start(&argc, &argv, "ring_ahead");
  int rank = run.rank, size = run.size;
  long steps = run.steps;
  int right = (rank + 1) % size, left = (rank + size - 1) % size;
  long in[DEPTH][LEN], out[2][LEN];
  MPI_Request rreq[DEPTH], sreq = MPI_REQUEST_NULL;
  for (long s = 0; s < DEPTH && s < steps; s++)
    MPI_Irecv(in[s % DEPTH], LEN, MPI_LONG, left, (int)(s % 1000), MPI_COMM_WORLD, &rreq[s % DEPTH]);
  long x = rank + 1, trail = 0;
  for (long s = 0; s < steps; s++) {
    long *o = out[s % 2];
    MPI_Wait(&sreq, MPI_STATUS_IGNORE); /* the previous step's send, pending over the pause */
    for (int k = 0; k < LEN; k++) o[k] = (x * (k + 3) + s) % M;
    MPI_Isend(o, LEN, MPI_LONG, right, (int)(s % 1000), MPI_COMM_WORLD, &sreq);
    MPI_Status st;
    MPI_Wait(&rreq[s % DEPTH], &st);
    if (st.MPI_SOURCE != left || st.MPI_TAG != (int)(s % 1000)) {
      fprintf(stderr, "rank %d step %ld: message from %d tag %d\n", rank, s, st.MPI_SOURCE, st.MPI_TAG);
      MPI_Abort(MPI_COMM_WORLD, 4);
    }
    long *g = in[s % DEPTH];
    x = (x * 31 + g[0] * 7 + g[1] * 3 + g[2] + g[3] * 11 + s) % M;
    trail = (trail * 131 + g[LEN - 1]) % M;
    if (s + DEPTH < steps)
      MPI_Irecv(in[s % DEPTH], LEN, MPI_LONG, left, (int)((s + DEPTH) % 1000), MPI_COMM_WORLD, &rreq[s % DEPTH]);
    suite_pause(&run);
  }
  MPI_Wait(&sreq, MPI_STATUS_IGNORE);
  long mine[2] = {x, trail};
  static const char *const keys[] = {"x", "trail"};
  suite_finish(&run, MPI_COMM_WORLD, NULL, keys, mine, 2);
  MPI_Finalize();
  return 0;
}
