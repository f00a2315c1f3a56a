/* Checkpoint suite: derived datatypes in point-to-point messages. A strided column of a
   matrix (MPI_Type_vector) and an array of structs (MPI_Type_create_struct, resized to the C
   struct's extent) go around a ring with Isend/Irecv/Waitall every step; a vector type with a
   step-dependent stride is made, used and freed every few steps (so a restart replays
   creations of freed types). The doubles hold integers, so every MPI gives the same bits.
   usage: dtypes RESULT_FILE STEPS PAUSE_MS */
#include <stddef.h>

#include "suite.h"

#define R 8
#define C 6
#define NS 3
static const long M = 1000000007L;

struct rec {
  int id;
  double val;
  long seq[2];
  char tag;
};

int main(int argc, char **argv) {
  struct run run = suite_start(&argc, &argv, "dtypes");
  int rank = run.rank, size = run.size;
  long steps = run.steps;
  int right = (rank + 1) % size, left = (rank + size - 1) % size;

  MPI_Datatype column, rec_raw, rec_t;
  MPI_Type_vector(R, 1, C, MPI_LONG, &column);
  MPI_Type_commit(&column);
  int bl[4] = {1, 1, 2, 1};
  MPI_Aint disp[4] = {offsetof(struct rec, id), offsetof(struct rec, val), offsetof(struct rec, seq), offsetof(struct rec, tag)};
  MPI_Datatype types[4] = {MPI_INT, MPI_DOUBLE, MPI_LONG, MPI_CHAR};
  MPI_Type_create_struct(4, bl, disp, types, &rec_raw);
  MPI_Type_create_resized(rec_raw, 0, sizeof(struct rec), &rec_t);
  MPI_Type_commit(&rec_t);
  MPI_Type_free(&rec_raw);

  long a[R][C], b[R][C];
  for (int i = 0; i < R; i++)
    for (int j = 0; j < C; j++) a[i][j] = (rank + 1) * 1000 + i * C + j;
  struct rec out[NS], in[NS];
  long trail = 0;
  for (long s = 0; s < steps; s++) {
    for (int k = 0; k < NS; k++) {
      out[k].id = rank * 100 + k;
      out[k].val = (double)((a[k][0] + s) % 1000000);
      out[k].seq[0] = a[k][1];
      out[k].seq[1] = s * 3 + k;
      out[k].tag = (char)('a' + (rank + k + s) % 26);
    }
    int col = (int)(s % C);
    for (int i = 0; i < R; i++) b[i][col] = -1;
    MPI_Request rq[4];
    /* the column col of a goes to the right neighbour's column col of b */
    MPI_Irecv(&b[0][col], 1, column, left, 1, MPI_COMM_WORLD, &rq[0]);
    MPI_Irecv(in, NS, rec_t, left, 2, MPI_COMM_WORLD, &rq[1]);
    MPI_Isend(&a[0][col], 1, column, right, 1, MPI_COMM_WORLD, &rq[2]);
    MPI_Isend(out, NS, rec_t, right, 2, MPI_COMM_WORLD, &rq[3]);
    MPI_Status sts[4]; /* not MPI_STATUSES_IGNORE: gcc 12 warns on MPICH's header */
    MPI_Waitall(4, rq, sts);
    long h = 0;
    for (int i = 0; i < R; i++) h = (h * 31 + b[i][col]) % M;
    for (int k = 0; k < NS; k++)
      h = (h * 37 + in[k].id + (long)in[k].val + in[k].seq[0] * 3 + in[k].seq[1] + in[k].tag) % M;
    if (s % 4 == 0) {
      /* every other row of the first two columns, as one short-lived type */
      MPI_Datatype every;
      long got[R / 2][2];
      MPI_Type_vector(R / 2, 2, 2 * C, MPI_LONG, &every);
      MPI_Type_commit(&every);
      MPI_Sendrecv(&a[0][0], 1, every, right, 3, got, R, MPI_LONG, left, 3, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      MPI_Type_free(&every);
      for (int i = 0; i < R / 2; i++) h = (h * 41 + got[i][0] + 2 * got[i][1]) % M;
    }
    for (int i = 0; i < R; i++)
      for (int j = 0; j < C; j++) a[i][j] = (a[i][j] * 7 + h + i + j) % M;
    trail = (trail * 131 + h) % M;
    suite_pause(&run);
  }
  long sum = 0;
  for (int i = 0; i < R; i++)
    for (int j = 0; j < C; j++) sum = (sum * 3 + a[i][j]) % M;
  long mine[2] = {sum, trail};
  static const char *const keys[] = {"a", "trail"};
  suite_finish(&run, MPI_COMM_WORLD, NULL, keys, mine, 2);
  MPI_Type_free(&rec_t);
  MPI_Type_free(&column);
  MPI_Finalize();
  return 0;
}
