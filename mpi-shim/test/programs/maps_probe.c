/* Starts MPI, exchanges one message with a neighbour (so the MPI library sets up its
   shared-memory transport) and exits; run with MANA_MPI_MAPS=FILE to get the lower/upper
   classification of every mapping (test/mpi-shim.test.ts). */
#include <mpi.h>
#include <stdio.h>

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, size, x = 0, y = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  x = rank;
  MPI_Sendrecv(&x, 1, MPI_INT, (rank + 1) % size, 0, &y, 1, MPI_INT, (rank + size - 1) % size, 0,
               MPI_COMM_WORLD, MPI_STATUS_IGNORE);
  MPI_Finalize();
  printf("rank %d got %d\n", rank, y);
  return 0;
}
