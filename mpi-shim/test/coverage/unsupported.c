/* Calls an RMA function, which mana does not support: it must exit with its message. */
#include <mpi.h>
int MPI_Win_fence(int assert, int win); /* not in mana's mpi.h: unsupported functions have no prototype */
int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  MPI_Win_fence(0, 0);
  MPI_Finalize();
  return 0;
}
