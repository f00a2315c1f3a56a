/* Checkpoint suite: communicators made by MPI_Comm_idup. One made at the start carries a
   Bcast every step; every third step each rank starts two duplications, of MPI_COMM_WORLD and
   of that first one, even ranks in one order and odd ranks in the other (legal for
   nonblocking calls, a deadlock if a restart replayed them as blocking ones), computes and
   pauses while they are in flight, completes them, reduces on both and frees them.
   usage: idup RESULT_FILE STEPS PAUSE_MS */
#include "suite.h"

static const long M = 1000000007L;

int main(int argc, char **argv) {
  struct run run = suite_start(&argc, &argv, "idup");
  int rank = run.rank, size = run.size;
  MPI_Comm keep;
  MPI_Request r0;
  MPI_Comm_idup(MPI_COMM_WORLD, &keep, &r0);
  MPI_Wait(&r0, MPI_STATUS_IGNORE);
  long x = rank + 1, trail = 0;
  for (long s = 0; s < run.steps; s++) {
    long b = rank == (int)(s % size) ? x : -1;
    MPI_Bcast(&b, 1, MPI_LONG, (int)(s % size), keep);
    long u = 0, v = 0;
    if (s % 3 == 0) {
      MPI_Comm a, c;
      MPI_Request r[2];
      MPI_Status st[2];
      if (rank % 2 == 0) {
        MPI_Comm_idup(MPI_COMM_WORLD, &a, &r[0]);
        MPI_Comm_idup(keep, &c, &r[1]);
      } else {
        MPI_Comm_idup(keep, &c, &r[1]);
        MPI_Comm_idup(MPI_COMM_WORLD, &a, &r[0]);
      }
      for (int k = 0; k < 1000; k++) x = (x * 7 + k) % M;
      suite_pause(&run);
      MPI_Waitall(2, r, st);
      MPI_Allreduce(&x, &u, 1, MPI_LONG, MPI_SUM, a);
      MPI_Allreduce(&b, &v, 1, MPI_LONG, MPI_MAX, c);
      MPI_Comm_free(&a);
      MPI_Comm_free(&c);
    } else {
      suite_pause(&run);
    }
    x = (x * 31 + b * 5 + u * 3 + v + s) % M;
    trail = (trail * 131 + b + u) % M;
  }
  long mine[2] = {x, trail};
  static const char *const keys[] = {"x", "trail"};
  suite_finish(&run, keep, NULL, keys, mine, 2);
  MPI_Comm_free(&keep);
  MPI_Finalize();
  return 0;
}
