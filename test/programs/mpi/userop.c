/* Checkpoint suite: user-defined reduction operators in MPI_Allreduce. A non-commutative one
   composes affine maps x -> a*x + b (mod a prime) in rank order over a contiguous pair type;
   a commutative one keeps the largest value with the lowest rank holding it. Both are made
   with MPI_Op_create at the start (a restart must bring them back in the new MPI).
   usage: userop RESULT_FILE STEPS PAUSE_MS */
#include "suite.h"

static const long M = 1000000007L;

/* inout = in o inout: apply in's map first (in comes from lower ranks) */
static void compose(void *in, void *inout, int *len, MPI_Datatype *dt) {
  (void)dt;
  long *p = in, *q = inout;
  for (int i = 0; i < *len; i++) {
    long a1 = p[2 * i], b1 = p[2 * i + 1], a2 = q[2 * i], b2 = q[2 * i + 1];
    q[2 * i] = a2 * a1 % M;
    q[2 * i + 1] = (a2 * b1 + b2) % M;
  }
}

static void maxloc_low(void *in, void *inout, int *len, MPI_Datatype *dt) {
  (void)dt;
  long *p = in, *q = inout;
  for (int i = 0; i < *len; i++)
    if (p[2 * i] > q[2 * i] || (p[2 * i] == q[2 * i] && p[2 * i + 1] < q[2 * i + 1])) {
      q[2 * i] = p[2 * i];
      q[2 * i + 1] = p[2 * i + 1];
    }
}

int main(int argc, char **argv) {
  struct run run = suite_start(&argc, &argv, "userop");
  int rank = run.rank;
  long steps = run.steps;
  MPI_Datatype pair;
  MPI_Type_contiguous(2, MPI_LONG, &pair);
  MPI_Type_commit(&pair);
  MPI_Op op_compose, op_max;
  MPI_Op_create(compose, 0, &op_compose);
  MPI_Op_create(maxloc_low, 1, &op_max);
  long x = rank + 1, trail = 0;
  for (long s = 0; s < steps; s++) {
    long f[4] = {(x % 1000) + 2, (x * 7 + s) % M, (rank + s) % 97 + 1, x % 13}, g[4];
    MPI_Allreduce(f, g, 2, pair, op_compose, MPI_COMM_WORLD);
    long m[2] = {(x * 3 + s) % 1000, rank}, mm[2];
    MPI_Allreduce(m, mm, 1, pair, op_max, MPI_COMM_WORLD);
    x = (g[0] * x + g[1] + g[2] * 3 + g[3] + mm[0] * 7 + mm[1]) % M;
    trail = (trail * 131 + g[1] + mm[1]) % M;
    suite_pause(&run);
  }
  long mine[2] = {x, trail};
  static const char *const keys[] = {"x", "trail"};
  suite_finish(&run, MPI_COMM_WORLD, NULL, keys, mine, 2);
  MPI_Op_free(&op_compose);
  MPI_Op_free(&op_max);
  MPI_Type_free(&pair);
  MPI_Finalize();
  return 0;
}
