/* Checkpoint suite (test/mpi-ckpt-suite.test.ts): a nonblocking ring whose receives are posted
   DEPTH steps ahead, so a checkpoint finds receives pending (some unmatched, some already
   matched by a neighbour that is ahead), and whose send of a step is waited for only in the
   next step (pending across the pause). No collectives until the end: ranks are coupled only
   by the ring. Integer arithmetic: every MPI gives the same numbers.
   usage: ring_ahead RESULT_FILE STEPS PAUSE_MS */
#define _DEFAULT_SOURCE /* usleep */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define DEPTH 3
#define LEN 4
static const long M = 1000000007L;

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  if (argc != 4) {
    fprintf(stderr, "usage: ring_ahead RESULT_FILE STEPS PAUSE_MS\n");
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  long steps = atol(argv[2]);
  int pause_ms = atoi(argv[3]);
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
    if (pause_ms > 0) usleep((useconds_t)pause_ms * 1000);
  }
  MPI_Wait(&sreq, MPI_STATUS_IGNORE);
  long mine[2] = {x, trail};
  long *all = rank == 0 ? malloc(sizeof(long) * 2 * (size_t)size) : NULL;
  MPI_Gather(mine, 2, MPI_LONG, all, 2, MPI_LONG, 0, MPI_COMM_WORLD);
  if (rank == 0) {
    FILE *f = fopen(argv[1], "w");
    if (!f) {
      perror(argv[1]);
      MPI_Abort(MPI_COMM_WORLD, 3);
    }
    fprintf(f, "ring_ahead size %d steps %ld\n", size, steps);
    for (int r = 0; r < size; r++) fprintf(f, "rank %d x=%ld trail=%ld\n", r, all[2 * r], all[2 * r + 1]);
    fclose(f);
    free(all);
  }
  MPI_Finalize();
  return 0;
}
