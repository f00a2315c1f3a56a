/* Checkpoint suite: communicators and datatypes made and freed in every step, as a long job
   does, so that a restart replays only what is still needed (the replay log is pruned at each
   checkpoint: docs/mpi-checkpoint.md). Every step duplicates MPI_COMM_WORLD and builds a vector
   datatype, uses both, and frees both; every step the long-lived communicator is named again;
   every 10 steps a buffer is attached and detached and a file of the rank's own opened and
   closed; every 50 steps a communicator is split and the two halves are joined as an
   intercommunicator and merged, then all freed. Objects that live on
   although what they were made from was freed: a split of a freed duplicate, a vector of a
   freed contiguous type. (No MPI_Comm_create_group: MPICH 4.0.2 crashes in it here, natively
   too, when every rank of MPI_COMM_WORLD calls it.) usage: churn RESULT_FILE STEPS
   PAUSE_MS */
#include "suite.h"

static const long M = 1000000007L;

int main(int argc, char **argv) {
  struct run run = suite_start(&argc, &argv, "churn");
  int rank = run.rank, size = run.size;
  MPI_Comm tmp, keep, half;
  MPI_Comm_dup(MPI_COMM_WORLD, &tmp);
  MPI_Comm_split(tmp, 0, size - rank, &keep); /* reversed order; its parent is freed */
  MPI_Comm_free(&tmp);
  MPI_Comm_split(MPI_COMM_WORLD, rank % 2, rank, &half);
  MPI_Datatype base, pair;
  MPI_Type_contiguous(2, MPI_LONG, &base);
  MPI_Type_vector(2, 1, 2, base, &pair); /* longs 0,1 and 4,5 */
  MPI_Type_commit(&pair);
  MPI_Type_free(&base);
  int krank;
  MPI_Comm_rank(keep, &krank);
  int right = (rank + 1) % size, left = (rank + size - 1) % size;
  long x = rank + 1, trail = 0, made = 0;
  for (long s = 0; s < run.steps; s++) {
    MPI_Comm c;
    MPI_Comm_dup(MPI_COMM_WORLD, &c);
    long sum = 0;
    MPI_Allreduce(&x, &sum, 1, MPI_LONG, MPI_SUM, c);
    MPI_Comm_free(&c);
    MPI_Datatype t;
    MPI_Type_vector(3, 1, 2, MPI_LONG, &t);
    MPI_Type_commit(&t);
    long out[6], in[6] = {0};
    for (int i = 0; i < 6; i++) out[i] = (x + i * s) % M;
    MPI_Sendrecv(out, 1, t, right, 1, in, 1, t, left, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    MPI_Type_free(&t);
    long pin[6] = {0}, kmax = 0;
    MPI_Sendrecv(out, 1, pair, left, 2, pin, 1, pair, right, 2, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    MPI_Allreduce(&x, &kmax, 1, MPI_LONG, MPI_MAX, keep);
    /* a name set again every step (a later one replaces the earlier in the log) */
    char name[32];
    snprintf(name, sizeof name, "keep %ld", s);
    MPI_Comm_set_name(keep, name);
    long r = 0;
    if (s % 10 == 5) {
      /* a buffer attached and detached again, and a file of this rank opened and closed */
      static char bbuf[1024];
      long bin = 0;
      MPI_Buffer_attach(bbuf, sizeof bbuf);
      MPI_Bsend(&x, 1, MPI_LONG, right, 3, MPI_COMM_WORLD);
      MPI_Recv(&bin, 1, MPI_LONG, left, 3, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      void *old;
      int oldsize;
      MPI_Buffer_detach(&old, &oldsize);
      char fname[64];
      snprintf(fname, sizeof fname, "churn-%d.dat", rank);
      MPI_File f;
      MPI_File_open(MPI_COMM_SELF, fname, MPI_MODE_CREATE | MPI_MODE_WRONLY, MPI_INFO_NULL, &f);
      MPI_File_write_at(f, (MPI_Offset)(s / 10) * 8, &bin, 1, MPI_LONG, MPI_STATUS_IGNORE);
      MPI_File_close(&f);
      r += bin % 97;
    }
    if (s % 50 == 25) {
      MPI_Comm sp, ic, merged;
      MPI_Comm_split(MPI_COMM_WORLD, (int)((rank + s) % 3), rank, &sp);
      MPI_Allreduce(&x, &r, 1, MPI_LONG, MPI_MIN, sp);
      MPI_Comm_free(&sp);
      if (size > 1) {
        MPI_Intercomm_create(half, 0, MPI_COMM_WORLD, rank % 2 ? 0 : 1, 7, &ic);
        MPI_Intercomm_merge(ic, rank % 2, &merged);
        long m = 0;
        MPI_Allreduce(&x, &m, 1, MPI_LONG, MPI_SUM, merged);
        r = (r * 3 + m) % M;
        MPI_Comm_free(&merged);
        MPI_Comm_free(&ic);
      }
      made++;
    }
    x = (x * 31 + sum * 3 + in[0] + in[2] * 5 + in[4] * 7 + pin[0] + pin[4] * 11 + kmax + r + s) % M;
    trail = (trail * 131 + sum + in[2]) % M;
    suite_pause(&run);
  }
  char name[MPI_MAX_OBJECT_NAME];
  int namelen = 0;
  MPI_Comm_get_name(keep, name, &namelen);
  long mine[5] = {x, trail, krank, made, atol(name + 5)};
  static const char *const keys[] = {"x", "trail", "keep_rank", "made", "named"};
  suite_finish(&run, keep, NULL, keys, mine, 5);
  MPI_Type_free(&pair);
  MPI_Comm_free(&half);
  MPI_Comm_free(&keep);
  MPI_Finalize();
  return 0;
}
