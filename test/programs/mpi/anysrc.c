/* Checkpoint suite: every step, each rank but 0 sends rank 0 a message whose length and tag
   depend on the rank and the step; rank 0 takes them in arrival order with
   MPI_Probe(MPI_ANY_SOURCE, MPI_ANY_TAG) + MPI_Get_count + MPI_Recv, and broadcasts what it
   made of them. The result depends only on what was sent, not on the arrival order.
   usage: anysrc RESULT_FILE STEPS PAUSE_MS */
#define _DEFAULT_SOURCE /* usleep */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define MAXLEN 8
static const long M = 1000000007L;

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  if (argc != 4) {
    fprintf(stderr, "usage: anysrc RESULT_FILE STEPS PAUSE_MS\n");
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  long steps = atol(argv[2]);
  int pause_ms = atoi(argv[3]);
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
    if (pause_ms > 0) usleep((useconds_t)pause_ms * 1000);
  }
  long *all = rank == 0 ? malloc(sizeof(long) * (size_t)size) : NULL;
  MPI_Gather(&x, 1, MPI_LONG, all, 1, MPI_LONG, 0, MPI_COMM_WORLD);
  if (rank == 0) {
    FILE *f = fopen(argv[1], "w");
    if (!f) {
      perror(argv[1]);
      MPI_Abort(MPI_COMM_WORLD, 3);
    }
    fprintf(f, "anysrc size %d steps %ld longs %ld\n", size, steps, counts);
    for (int r = 0; r < size; r++) fprintf(f, "rank %d x=%ld from=%ld\n", r, all[r], persrc[r]);
    fclose(f);
    free(all);
  }
  free(persrc);
  MPI_Finalize();
  return 0;
}
