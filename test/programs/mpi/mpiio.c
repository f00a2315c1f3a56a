/* Checkpoint suite: MPI-IO with file pointers. Two files in the working directory:
   - mpiio.dat, a view per rank (etype MPI_LONG, a filetype that gives rank r every size-th
     long from r; freed once the view is set): each step a rank writes one long with
     MPI_File_write_all and one with MPI_File_write through its individual pointer, seeks
     back one and reads the latter again with MPI_File_read (the collective write may reach
     the file through another rank, later: MPI's consistency rules);
   - mpiio-log.dat, atomic mode, no view: each step every rank appends one long through the
     shared pointer (MPI_File_write_shared; the order between ranks varies, the sum does not).
   At the end each rank reports its state and its two file positions, and rank 0 checksums
   both files: a restart that lost a pointer, a view or data written before the checkpoint
   gives other numbers.
   usage: mpiio RESULT_FILE STEPS PAUSE_MS */
#include "suite.h"

static const long M = 1000000007L;

static void check(int rc, const char *what) {
  if (rc != MPI_SUCCESS) {
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    fprintf(stderr, "mpiio: %s: %s\n", what, msg);
    MPI_Abort(MPI_COMM_WORLD, 5);
  }
}

int main(int argc, char **argv) {
  struct run run = suite_start(&argc, &argv, "mpiio");
  int rank = run.rank, size = run.size;
  long steps = run.steps;
  MPI_File data, logf;
  check(MPI_File_open(MPI_COMM_WORLD, "mpiio.dat", MPI_MODE_CREATE | MPI_MODE_RDWR, MPI_INFO_NULL, &data), "open mpiio.dat");
  check(MPI_File_set_size(data, 0), "truncate mpiio.dat");
  check(MPI_File_open(MPI_COMM_WORLD, "mpiio-log.dat", MPI_MODE_CREATE | MPI_MODE_RDWR, MPI_INFO_NULL, &logf), "open mpiio-log.dat");
  check(MPI_File_set_size(logf, 0), "truncate mpiio-log.dat");
  check(MPI_File_set_atomicity(logf, 1), "atomicity");
  MPI_Datatype every;
  MPI_Type_create_resized(MPI_LONG, 0, (MPI_Aint)(size * (int)sizeof(long)), &every);
  MPI_Type_commit(&every);
  check(MPI_File_set_view(data, (MPI_Offset)rank * (MPI_Offset)sizeof(long), MPI_LONG, every, "native", MPI_INFO_NULL), "set_view");
  MPI_Type_free(&every);

  long x = rank + 1, trail = 0;
  for (long s = 0; s < steps; s++) {
    long a = (x * 7 + s) % M, b = (x * 13 + rank) % M, back = 0;
    MPI_Status st;
    check(MPI_File_write_all(data, &b, 1, MPI_LONG, &st), "write_all");
    check(MPI_File_write(data, &a, 1, MPI_LONG, &st), "write");
    check(MPI_File_seek(data, -1, MPI_SEEK_CUR), "seek");
    check(MPI_File_read(data, &back, 1, MPI_LONG, &st), "read");
    if (back != a) {
      fprintf(stderr, "mpiio: rank %d step %ld read %ld, wrote %ld\n", rank, s, back, a);
      MPI_Abort(MPI_COMM_WORLD, 4);
    }
    long entry = (long)rank * 1000003L + s;
    check(MPI_File_write_shared(logf, &entry, 1, MPI_LONG, &st), "write_shared");
    long sum = 0;
    MPI_Allreduce(&a, &sum, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
    x = (x * 31 + sum + s) % M;
    trail = (trail * 131 + back + b) % M;
    suite_pause(&run);
  }
  MPI_Offset pos = 0, shpos = 0;
  int atomic = 0;
  check(MPI_File_get_position(data, &pos), "get_position");
  check(MPI_File_get_position_shared(logf, &shpos), "get_position_shared");
  check(MPI_File_get_atomicity(logf, &atomic), "get_atomicity");
  /* MPI's sync-barrier-sync: every rank's writes visible to rank 0 */
  check(MPI_File_sync(data), "sync");
  MPI_Barrier(MPI_COMM_WORLD);
  check(MPI_File_sync(data), "sync");
  /* rank 0 reads both files whole, through views of plain longs */
  long dsum = 0, lsum = 0, dlen = 0, llen = 0;
  if (rank == 0) {
    MPI_Offset bytes = 0;
    long v;
    MPI_Status st;
    check(MPI_File_set_view(data, 0, MPI_LONG, MPI_LONG, "native", MPI_INFO_NULL), "plain view");
    check(MPI_File_get_size(data, &bytes), "size");
    dlen = (long)(bytes / (MPI_Offset)sizeof(long));
    for (long i = 0; i < dlen; i++) {
      check(MPI_File_read_at(data, i, &v, 1, MPI_LONG, &st), "read_at mpiio.dat");
      dsum = (dsum * 31 + v) % M;
    }
    check(MPI_File_get_size(logf, &bytes), "size");
    llen = (long)(bytes / (MPI_Offset)sizeof(long));
    for (long i = 0; i < llen; i++) {
      check(MPI_File_read_at(logf, (MPI_Offset)i * (MPI_Offset)sizeof(long), &v, 1, MPI_LONG, &st), "read_at mpiio-log.dat");
      lsum = (lsum + v) % M;
    }
  } else {
    check(MPI_File_set_view(data, 0, MPI_LONG, MPI_LONG, "native", MPI_INFO_NULL), "plain view");
  }
  MPI_File_close(&data);
  MPI_File_close(&logf);
  long mine[8] = {x, trail, (long)pos, (long)shpos, atomic, dlen, dsum, llen * M + lsum};
  static const char *const keys[] = {"x", "trail", "pos", "shared", "atomic", "longs", "data", "log"};
  suite_finish(&run, MPI_COMM_WORLD, NULL, keys, mine, 8);
  MPI_Finalize();
  return 0;
}
