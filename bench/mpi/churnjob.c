/* The replay benchmark (docs/benchmarks.md, "replay"): N steps that each make and free a
 * communicator (MPI_Comm_dup) and a datatype (MPI_Type_vector + commit), as a long job does,
 * then an idle loop (a small allreduce every 10 ms) for SECS seconds in which the harness
 * checkpoints and restarts it. Rank 0 prints "MANA_BENCH ready" after the N steps.
 * usage: mpirun -n P churnjob N SECS */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (argc < 3) {
    if (rank == 0) fprintf(stderr, "usage: mpirun -n P churnjob N SECS\n");
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  long n = atol(argv[1]);
  double secs = atof(argv[2]);
  long x = rank + 1, sum = 0;
  for (long s = 0; s < n; s++) {
    MPI_Comm c;
    MPI_Datatype t;
    MPI_Comm_dup(MPI_COMM_WORLD, &c);
    MPI_Allreduce(&x, &sum, 1, MPI_LONG, MPI_SUM, c);
    MPI_Comm_free(&c);
    MPI_Type_vector(2, 1, 2, MPI_LONG, &t);
    MPI_Type_commit(&t);
    MPI_Type_free(&t);
    x = (x * 31 + sum) % 1000003;
  }
  if (rank == 0) {
    printf("MANA_BENCH ready\n");
    fflush(stdout);
  }
  double end = MPI_Wtime() + secs;
  while (MPI_Wtime() < end) {
    MPI_Allreduce(&x, &sum, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
    struct timespec ts = {0, 10000000};
    nanosleep(&ts, NULL);
  }
  if (rank == 0) printf("MANA_BENCH x=%ld\n", x);
  MPI_Finalize();
  return 0;
}
