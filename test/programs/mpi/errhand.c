/* Checkpoint suite: error handlers. MPI_COMM_WORLD gets MPI_ERRORS_RETURN and a duplicate of
   it a user handler (freed at once: it stays attached); a file gets a user file handler. Each
   step makes errors on purpose: a send to a rank that does not exist on each communicator
   (on WORLD it must come back as MPI_ERR_RANK instead of ending the job), an explicit
   MPI_Comm_call_errhandler and MPI_File_call_errhandler, and a read of the write-only file,
   which calls the file's handler once (MPICH's nonblocking reads call it twice: the shim's
   blocking read must not show it). Not a collective read: natively, Open MPI's
   MPI_File_read_at_all of a write-only file succeeds on 3 ranks (MPICH's fails).
   The handlers count their calls; the counts and error classes feed the result.
   usage: errhand RESULT_FILE STEPS PAUSE_MS */
#include "suite.h"

static const long M = 1000000007L;
static long comm_calls, comm_rank_errs, file_calls;

static void on_comm(MPI_Comm *comm, int *code, ...) {
  (void)comm;
  int cls = 0;
  MPI_Error_class(*code, &cls);
  comm_calls++;
  if (cls == MPI_ERR_RANK) comm_rank_errs++;
}

static void on_file(MPI_File *fh, int *code, ...) {
  (void)fh, (void)code;
  file_calls++;
}

int main(int argc, char **argv) {
  struct run run = suite_start(&argc, &argv, "errhand");
  int rank = run.rank, size = run.size;
  long steps = run.steps;
  MPI_Comm dup;
  MPI_Comm_dup(MPI_COMM_WORLD, &dup);
  MPI_Errhandler eh, feh;
  MPI_Comm_create_errhandler(on_comm, &eh);
  MPI_Comm_set_errhandler(dup, eh);
  MPI_Errhandler_free(&eh);
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_File fh;
  if (MPI_File_open(MPI_COMM_WORLD, "errhand.dat", MPI_MODE_CREATE | MPI_MODE_WRONLY, MPI_INFO_NULL, &fh) != MPI_SUCCESS) {
    fprintf(stderr, "errhand: cannot open errhand.dat\n");
    MPI_Abort(MPI_COMM_WORLD, 3);
  }
  MPI_File_create_errhandler(on_file, &feh);
  MPI_File_set_errhandler(fh, feh);
  MPI_Errhandler_free(&feh);
  long x = rank + 1, world_rank_errs = 0;
  for (long s = 0; s < steps; s++) {
    int cls = 0, rc = MPI_Send(&x, 1, MPI_LONG, size + 3, 0, MPI_COMM_WORLD);
    MPI_Error_class(rc, &cls);
    if (rc != MPI_SUCCESS && cls == MPI_ERR_RANK) world_rank_errs++;
    MPI_Send(&x, 1, MPI_LONG, size + 3, 0, dup); /* the user handler counts it */
    if (s % 3 == rank % 3) MPI_Comm_call_errhandler(dup, MPI_ERR_OTHER);
    if (s % 2 == 0) MPI_File_call_errhandler(fh, MPI_ERR_IO);
    char in[8];
    MPI_Status st;
    if (s % 4 == 1) MPI_File_read_at(fh, 0, in, 8, MPI_BYTE, &st);
    long sum = 0, mine = x + comm_calls + file_calls;
    MPI_Allreduce(&mine, &sum, 1, MPI_LONG, MPI_SUM, dup);
    x = (x * 31 + sum + s) % M;
    suite_pause(&run);
  }
  MPI_File_close(&fh);
  long out[5] = {x, world_rank_errs, comm_calls, comm_rank_errs, file_calls};
  static const char *const keys[] = {"x", "world_rank_errors", "handler_calls", "handler_rank_errors", "file_handler_calls"};
  suite_finish(&run, MPI_COMM_WORLD, NULL, keys, out, 5);
  MPI_Comm_free(&dup);
  MPI_Finalize();
  return 0;
}
