/* Checkpoint suite: persistent requests (MPI_Send_init/MPI_Recv_init, MPI_Startall) in a
   ring, and an Allreduce each step. Checkpoints of such a job are refused (docs/
   mpi-checkpoint.md, Limits); the test checks that the refusal is one clear line and that
   the job runs on to the right result.
   usage: persist RESULT_FILE STEPS PAUSE_MS */
#define _DEFAULT_SOURCE /* usleep */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static const long M = 1000000007L;

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  if (argc != 4) {
    fprintf(stderr, "usage: persist RESULT_FILE STEPS PAUSE_MS\n");
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  long steps = atol(argv[2]);
  int pause_ms = atoi(argv[3]);
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
    if (pause_ms > 0) usleep((useconds_t)pause_ms * 1000);
  }
  MPI_Request_free(&rq[0]);
  MPI_Request_free(&rq[1]);
  long mine[2] = {x, trail};
  long *all = rank == 0 ? malloc(sizeof(long) * 2 * (size_t)size) : NULL;
  MPI_Gather(mine, 2, MPI_LONG, all, 2, MPI_LONG, 0, MPI_COMM_WORLD);
  if (rank == 0) {
    FILE *f = fopen(argv[1], "w");
    if (!f) {
      perror(argv[1]);
      MPI_Abort(MPI_COMM_WORLD, 3);
    }
    fprintf(f, "persist size %d steps %ld\n", size, steps);
    for (int r = 0; r < size; r++) fprintf(f, "rank %d x=%ld trail=%ld\n", r, all[2 * r], all[2 * r + 1]);
    fclose(f);
    free(all);
  }
  MPI_Finalize();
  return 0;
}
