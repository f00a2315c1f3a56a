/* An MPI test program for mana launch: a nonblocking ring, an allreduce and a split
   communicator, with output that depends only on the rank count (so runs can be compared
   line by line after sorting). Exits with status RING_EXIT (default 0) from every rank, so
   tests can check that the launcher's status comes back through mana launch. RING_WAIT_FILE=F
   keeps every rank waiting until F exists before the final barrier (sleeping outside MPI
   calls, so MPICH's busy polling does not compete with the test for the CPUs). */
#define _DEFAULT_SOURCE /* usleep */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);

  /* Ring: every rank sends its token right and receives from the left, several rounds, with
     nonblocking calls posted receive-first so no ordering between ranks is assumed. */
  int right = (rank + 1) % size, left = (rank + size - 1) % size;
  long token = rank + 1, got = 0, trail = 0;
  for (int round = 0; round < 5; round++) {
    MPI_Request req[2];
    MPI_Status st[2];
    MPI_Irecv(&got, 1, MPI_LONG, left, 100 + round, MPI_COMM_WORLD, &req[0]);
    MPI_Isend(&token, 1, MPI_LONG, right, 100 + round, MPI_COMM_WORLD, &req[1]);
    MPI_Waitall(2, req, st);
    if (st[0].MPI_SOURCE != left || st[0].MPI_TAG != 100 + round) {
      fprintf(stderr, "rank %d: round %d came from %d tag %d\n", rank, round, st[0].MPI_SOURCE, st[0].MPI_TAG);
      MPI_Abort(MPI_COMM_WORLD, 3);
    }
    token = got * 3 + rank;
    trail = trail * 7 + got;
  }

  long sum = 0, max = 0;
  MPI_Allreduce(&token, &sum, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
  MPI_Allreduce(&trail, &max, 1, MPI_LONG, MPI_MAX, MPI_COMM_WORLD);

  /* Even and odd ranks in two communicators, ordered by descending world rank. */
  MPI_Comm half;
  MPI_Comm_split(MPI_COMM_WORLD, rank % 2, size - rank, &half);
  int hrank, hsize, hsum = 0;
  MPI_Comm_rank(half, &hrank);
  MPI_Comm_size(half, &hsize);
  MPI_Allreduce(&rank, &hsum, 1, MPI_INT, MPI_SUM, half);
  MPI_Comm_free(&half);

  printf("rank %d/%d token=%ld trail=%ld sum=%ld max=%ld half=%d:%d/%d hsum=%d\n", rank, size, token, trail, sum, max,
         rank % 2, hrank, hsize, hsum);
  fflush(stdout);
  const char *gate = getenv("RING_WAIT_FILE");
  for (int waited = 0; gate && access(gate, F_OK) != 0 && waited < 1200; waited++) usleep(50000);
  MPI_Barrier(MPI_COMM_WORLD);
  MPI_Finalize();
  const char *e = getenv("RING_EXIT");
  return e ? atoi(e) : 0;
}
