/* Checkpoint suite: attribute caching. A communicator key with copy and delete callbacks and
   a datatype key; values cached on MPI_COMM_WORLD, on a duplicate of it, and on a derived
   datatype, changed every step and read back; in the first and the last steps a duplicate of
   the duplicate (its value comes through the copy callback) is made and freed (the delete
   callback runs). Not in the middle, where the checkpoint lands: MPI_Comm_dup waits inside
   the lower half (docs/mpi-checkpoint.md, Limits).
   The callbacks count their calls; the counts and values feed the result.
   usage: attrs RESULT_FILE STEPS PAUSE_MS */
#include "suite.h"

#include <stdint.h>

static const long M = 1000000007L;
static long copies, deletes;

static int copy_fn(MPI_Comm comm, int key, void *extra, void *in, void *out, int *flag) {
  (void)comm, (void)key, (void)extra;
  copies++;
  *(void **)out = (void *)((intptr_t)in + 1000);
  *flag = 1;
  return MPI_SUCCESS;
}

static int delete_fn(MPI_Comm comm, int key, void *val, void *extra) {
  (void)comm, (void)key, (void)val, (void)extra;
  deletes++;
  return MPI_SUCCESS;
}

static long get(MPI_Comm comm, int key) {
  void *v = NULL;
  int flag = 0;
  MPI_Comm_get_attr(comm, key, &v, &flag);
  if (!flag) {
    fprintf(stderr, "attrs: an attribute is missing\n");
    MPI_Abort(MPI_COMM_WORLD, 4);
  }
  return (long)(intptr_t)v;
}

int main(int argc, char **argv) {
  struct run run = suite_start(&argc, &argv, "attrs");
  int rank = run.rank;
  long steps = run.steps;
  int ckey, tkey;
  MPI_Comm_create_keyval(copy_fn, delete_fn, &ckey, NULL);
  MPI_Type_create_keyval(MPI_TYPE_NULL_COPY_FN, MPI_TYPE_NULL_DELETE_FN, &tkey, NULL);
  MPI_Comm dup;
  MPI_Comm_dup(MPI_COMM_WORLD, &dup);
  MPI_Datatype pair;
  MPI_Type_contiguous(2, MPI_LONG, &pair);
  MPI_Type_commit(&pair);
  MPI_Comm_set_attr(MPI_COMM_WORLD, ckey, (void *)(intptr_t)(rank + 1));
  long x = rank + 1, seen = 0;
  for (long s = 0; s < steps; s++) {
    MPI_Comm_set_attr(dup, ckey, (void *)(intptr_t)(x % 100000)); /* the old value's delete runs */
    MPI_Type_set_attr(pair, tkey, (void *)(intptr_t)(s + 7));
    long w = get(MPI_COMM_WORLD, ckey), d = get(dup, ckey);
    void *tv = NULL;
    int flag = 0;
    MPI_Type_get_attr(pair, tkey, &tv, &flag);
    if (!flag || (long)(intptr_t)tv != s + 7 || d != x % 100000) {
      fprintf(stderr, "attrs: step %ld: wrong values\n", s);
      MPI_Abort(MPI_COMM_WORLD, 4);
    }
    if (s < 3 || s >= steps - 3) {
      MPI_Comm dd;
      MPI_Comm_dup(dup, &dd);
      seen = (seen * 7 + get(dd, ckey)) % M;
      MPI_Comm_free(&dd);
    }
    long pairv[2] = {x, w}, sum[2] = {0, 0};
    MPI_Allreduce(pairv, sum, 2, MPI_LONG, MPI_SUM, dup);
    x = (x * 31 + sum[0] + sum[1] + s) % M;
    suite_pause(&run);
  }
  long mine[4] = {x, seen, copies, deletes};
  static const char *const keys[] = {"x", "seen", "copies", "deletes"};
  suite_finish(&run, MPI_COMM_WORLD, NULL, keys, mine, 4);
  MPI_Comm_free(&dup);
  MPI_Type_free(&pair);
  MPI_Finalize();
  return 0;
}
