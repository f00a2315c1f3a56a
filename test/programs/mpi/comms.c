/* Checkpoint suite: communicators made by MPI_Comm_split and MPI_Comm_dup (at the start, and
   a short-lived one made and freed every few steps, so a restart replays creations of freed
   communicators too), with collectives on each: Allreduce on the halves, Bcast on the
   duplicate, Allgather on a split of the duplicate, Reduce on the short-lived one.
   usage: comms RESULT_FILE STEPS PAUSE_MS */
#include "suite.h"

static const long M = 1000000007L;

int main(int argc, char **argv) {
  struct run run = suite_start(&argc, &argv, "comms");
  int rank = run.rank, size = run.size;
  long steps = run.steps;
  MPI_Comm half, dup, pairs;
  MPI_Comm_split(MPI_COMM_WORLD, rank % 2, size - rank, &half); /* reversed order inside */
  MPI_Comm_dup(MPI_COMM_WORLD, &dup);
  MPI_Comm_split(dup, rank / 2, rank, &pairs);
  int hrank, hsize, prank, psize;
  MPI_Comm_rank(half, &hrank);
  MPI_Comm_size(half, &hsize);
  MPI_Comm_rank(pairs, &prank);
  MPI_Comm_size(pairs, &psize);
  long x = rank + 1, trail = 0;
  long *g = malloc(sizeof(long) * (size_t)size);
  for (long s = 0; s < steps; s++) {
    long hsum = 0, b = rank == (int)(s % size) ? x : -1;
    MPI_Allreduce(&x, &hsum, 1, MPI_LONG, MPI_SUM, half);
    MPI_Bcast(&b, 1, MPI_LONG, (int)(s % size), dup);
    MPI_Allgather(&x, 1, MPI_LONG, g, 1, MPI_LONG, pairs);
    long p = 0;
    for (int k = 0; k < psize; k++) p = (p * 7 + g[k]) % M;
    long r = 0;
    if (s % 5 == 0) {
      /* a communicator for a few steps: split by step, then freed */
      MPI_Comm tmp;
      MPI_Comm_split(MPI_COMM_WORLD, (int)((rank + s) % 2), rank, &tmp);
      MPI_Reduce(&x, &r, 1, MPI_LONG, MPI_MAX, 0, tmp);
      MPI_Bcast(&r, 1, MPI_LONG, 0, tmp);
      MPI_Comm_free(&tmp);
    }
    x = (x * 31 + hsum * 3 + b * 5 + p + r + hrank * 11 + s) % M;
    trail = (trail * 131 + hsum + b) % M;
    suite_pause(&run);
  }
  long mine[5] = {x, trail, hrank, hsize, prank};
  static const char *const keys[] = {"x", "trail", "half_rank", "half_size", "pair"};
  suite_finish(&run, dup, NULL, keys, mine, 5);
  free(g);
  MPI_Comm_free(&pairs);
  MPI_Comm_free(&dup);
  MPI_Comm_free(&half);
  MPI_Finalize();
  return 0;
}
