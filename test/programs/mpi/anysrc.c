/* Checkpoint suite: every step, each rank but 0 sends rank 0 a message whose length and tag
   depend on the rank and the step; rank 0 takes them in arrival order with
   MPI_Probe(MPI_ANY_SOURCE, MPI_ANY_TAG) + MPI_Get_count + MPI_Recv, and broadcasts what it
   made of them. The result depends only on what was sent, not on the arrival order.
   usage: anysrc RESULT_FILE STEPS PAUSE_MS */
#include "suite.h"

#define MAXLEN 8
static const long M = 1000000007L;

int main(int argc, char **argv) {
  struct run run = suite_start(&argc, &argv, "anysrc");
  int rank = run.rank, size = run.size;
  long steps = run.steps;
  long x = rank + 1, *persrc = calloc((size_t)size, sizeof(long)), counts = 0;
  for (long s = 0; s < steps; s++) {
    long total = 0;
    if (rank == 0) {
      long stepsum = 0;
      for (int n = 1; n < size; n++) {
        MPI_Status st;
        MPI_Probe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &st);
        int cnt = 0;
        MPI_Get_count(&st, MPI_LONG, &cnt);
        long buf[MAXLEN];
        if (cnt < 1 || cnt > MAXLEN || st.MPI_TAG != (int)((s % 500) * 8 + st.MPI_SOURCE % 8)) {
          fprintf(stderr, "step %ld: %d longs from %d tag %d\n", s, cnt, st.MPI_SOURCE, st.MPI_TAG);
          MPI_Abort(MPI_COMM_WORLD, 4);
        }
        MPI_Recv(buf, cnt, MPI_LONG, st.MPI_SOURCE, st.MPI_TAG, MPI_COMM_WORLD, &st);
        long h = cnt;
        for (int k = 0; k < cnt; k++) h = (h * 1009 + buf[k]) % M;
        persrc[st.MPI_SOURCE] = (persrc[st.MPI_SOURCE] * 131 + h) % M;
        stepsum = (stepsum + h) % M;
        counts += cnt;
      }
      total = (stepsum + x) % M;
    } else {
      int len = 1 + (int)((rank * 7 + s) % MAXLEN);
      long buf[MAXLEN];
      for (int k = 0; k < len; k++) buf[k] = (x * (k + 1) + rank + s) % M;
      MPI_Send(buf, len, MPI_LONG, 0, (int)((s % 500) * 8 + rank % 8), MPI_COMM_WORLD);
    }
    MPI_Bcast(&total, 1, MPI_LONG, 0, MPI_COMM_WORLD);
    x = (x * 17 + total + s) % M;
    suite_pause(&run);
  }
  /* how many messages rank 0 took from each rank, for that rank's line */
  long from = 0;
  MPI_Scatter(persrc, 1, MPI_LONG, &from, 1, MPI_LONG, 0, MPI_COMM_WORLD);
  long mine[2] = {x, from};
  char extra[64];
  snprintf(extra, sizeof extra, "longs %ld", counts);
  static const char *const keys[] = {"x", "from"};
  suite_finish(&run, MPI_COMM_WORLD, extra, keys, mine, 2);
  free(persrc);
  MPI_Finalize();
  return 0;
}
