/* B4 and the drain benchmark (DESIGN.md §7): a rank that holds MIB MiB of random bytes and runs
 * SECS seconds in one of two shapes, so a checkpoint can be taken at any moment of it:
 *   ckptjob MIB SECS idle       each step: a small allreduce, then 10 ms of "compute"
 *   ckptjob MIB SECS inflight   each step: an MPI_Isend of 1 MiB to every other rank, 20 ms of
 *                               "compute" before the matching receives are posted, then
 *                               Waitall: 1 MiB messages between all pairs are in flight, with
 *                               no receive posted, most of the time
 * Rank 0 prints "MANA_BENCH ready" once every rank holds its memory (the harness checkpoints
 * after that line) and "MANA_BENCH steps=N checksum=X" at the end. */
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MSG (1 << 20)

static void compute(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (argc < 4 || (strcmp(argv[3], "idle") && strcmp(argv[3], "inflight"))) {
    if (rank == 0) fprintf(stderr, "usage: mpirun -n P ckptjob MIB SECS idle|inflight\n");
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  size_t bytes = (size_t)atol(argv[1]) << 20;
  double secs = atof(argv[2]);
  int inflight = !strcmp(argv[3], "inflight");

  /* random bytes, so neither compression nor zero-page tricks shrink the image */
  uint64_t *mem = malloc(bytes + 8), x = 0x9e3779b97f4a7c15ull * (uint64_t)(rank + 1);
  char *sbuf = malloc((size_t)size * MSG), *rbuf = malloc((size_t)size * MSG);
  MPI_Request *req = malloc(sizeof *req * 2 * (size_t)size);
  if (!mem || !sbuf || !rbuf || !req) MPI_Abort(MPI_COMM_WORLD, 1);
  for (size_t i = 0; i < bytes / 8; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    mem[i] = x;
  }
  memset(sbuf, rank + 1, (size_t)size * MSG);
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank == 0) {
    printf("MANA_BENCH ready\n");
    fflush(stdout);
  }

  double t0 = MPI_Wtime();
  long steps = 0, sum = 0;
  for (int go = 1; go; steps++) {
    if (inflight) {
      int n = 0;
      for (int p = 0; p < size; p++)
        if (p != rank) MPI_Isend(sbuf + (size_t)p * MSG, MSG, MPI_BYTE, p, (int)(steps & 0x7fff), MPI_COMM_WORLD, &req[n++]);
      compute(20);
      for (int p = 0; p < size; p++)
        if (p != rank) MPI_Irecv(rbuf + (size_t)p * MSG, MSG, MPI_BYTE, p, (int)(steps & 0x7fff), MPI_COMM_WORLD, &req[n++]);
      MPI_Waitall(n, req, MPI_STATUSES_IGNORE);
      for (int p = 0; p < size; p++)
        if (p != rank) sum += rbuf[(size_t)p * MSG + (size_t)(steps % MSG)];
    } else {
      compute(10);
    }
    /* everyone agrees on when to stop */
    int more = MPI_Wtime() - t0 < secs, all;
    MPI_Allreduce(&more, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    go = all;
  }
  long total = 0;
  MPI_Reduce(&sum, &total, 1, MPI_LONG, MPI_SUM, 0, MPI_COMM_WORLD);
  if (rank == 0) printf("MANA_BENCH steps=%ld checksum=%ld\n", steps, total + (long)(mem[bytes / 16] & 0xff));
  free(mem), free(sbuf), free(rbuf), free(req);
  MPI_Finalize();
  return 0;
}
