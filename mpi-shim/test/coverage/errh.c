/* Error handlers and error classes: ERRORS_RETURN, user handlers called back from the lower
   half, Comm_call_errhandler, user error classes/codes/strings. */
#include "cov.h"

static int calls, last_class;
static MPI_Comm last_comm;
static void handler(MPI_Comm *comm, int *code, ...) {
  calls++;
  last_comm = *comm;
  MPI_Error_class(*code, &last_class);
}
static int fcalls;
static void fhandler(MPI_File *fh, int *code, ...) {
  (void)fh, (void)code;
  fcalls++;
}

int main(int argc, char **argv) {
  cov_init(&argc, &argv);
  int n;
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  MPI_Errhandler eh, got, eh2;
  CHECK(MPI_Comm_get_errhandler(MPI_COMM_WORLD, &got));
  OUT("default fatal %d", got == MPI_ERRORS_ARE_FATAL);
  MPI_Comm dup;
  MPI_Comm_dup(MPI_COMM_WORLD, &dup);
  CHECK(MPI_Comm_set_errhandler(dup, MPI_ERRORS_RETURN));
  int x = 0;
  int rc = MPI_Send(&x, 1, MPI_INT, n + 5, 0, dup);
  int cls = -1;
  MPI_Error_class(rc, &cls);
  OUT("bad rank returns class rank %d", cls == MPI_ERR_RANK);
  rc = MPI_Send(&x, -1, MPI_INT, 0, 0, dup);
  MPI_Error_class(rc, &cls);
  OUT("bad count returns class count %d", cls == MPI_ERR_COUNT);
  /* MPI_Waitall with a truncated receive in the middle, as MPICH: MPI_ERR_IN_STATUS, the
     failed request's error in its status, the later one still pending (MPICH calls
     MPI_COMM_WORLD's handler for it, mana the request's communicator's: both return here) */
  CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
  for (int pass = 0; pass < 2; pass++) {
    int big[4] = {1, 2, 3, 4}, small[3][2];
    MPI_Request rq[3];
    MPI_Status st[3];
    for (int i = 0; i < 3; i++) CHECK(MPI_Irecv(small[i], 2, MPI_INT, (cov_rank + n - 1) % n, i, dup, &rq[i]));
    for (int i = 0; i < 3; i++) CHECK(MPI_Send(big, i == 1 ? 4 : 2, MPI_INT, (cov_rank + 1) % n, i, dup));
    rc = MPI_Waitall(3, rq, pass == 0 ? st : MPI_STATUSES_IGNORE);
    MPI_Error_class(rc, &cls);
    int c[3] = {-1, -1, -1};
    if (pass == 0)
      for (int i = 0; i < 3; i++) MPI_Error_class(st[i].MPI_ERROR, &c[i]);
    OUT("waitall truncated (statuses %d): in_status %d, status classes success %d truncate %d pending %d, left %d",
        pass == 0, cls == MPI_ERR_IN_STATUS, c[0] == MPI_SUCCESS, c[1] == MPI_ERR_TRUNCATE, c[2] == MPI_ERR_PENDING,
        rq[2] != MPI_REQUEST_NULL);
    CHECK(MPI_Wait(&rq[2], MPI_STATUS_IGNORE));
  }
  CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_ARE_FATAL));
  char str[MPI_MAX_ERROR_STRING];
  int len = 0;
  CHECK(MPI_Error_string(MPI_ERR_TRUNCATE, str, &len));
  OUT("error string nonempty %d", len > 0 && (int)strlen(str) == len);
  CHECK(MPI_Comm_create_errhandler(handler, &eh));
  CHECK(MPI_Comm_set_errhandler(dup, eh));
  rc = MPI_Send(&x, 1, MPI_INT, n + 5, 0, dup);
  OUT("user handler calls %d class rank %d comm is dup %d", calls, last_class == MPI_ERR_RANK, last_comm == dup);
  CHECK(MPI_Comm_call_errhandler(dup, MPI_ERR_TAG));
  OUT("call_errhandler calls %d class tag %d", calls, last_class == MPI_ERR_TAG);
  CHECK(MPI_Comm_get_errhandler(dup, &got));
  CHECK(MPI_Errhandler_free(&got));
  /* user error classes and codes */
  int ucls, ucode;
  CHECK(MPI_Add_error_class(&ucls));
  CHECK(MPI_Add_error_code(ucls, &ucode));
  CHECK(MPI_Add_error_string(ucode, "mana coverage error"));
  CHECK(MPI_Error_string(ucode, str, &len));
  int c2 = -1;
  CHECK(MPI_Error_class(ucode, &c2));
  OUT("user code string '%s' class matches %d", str, c2 == ucls);
  CHECK(MPI_Comm_call_errhandler(dup, ucode));
  OUT("call_errhandler user calls %d class matches %d", calls, last_class == ucls);
  /* MPI-1 names */
  CHECK(MPI_Errhandler_create(handler, &eh2));
  CHECK(MPI_Errhandler_set(dup, eh2));
  CHECK(MPI_Errhandler_get(dup, &got));
  CHECK(MPI_Errhandler_free(&got));
  CHECK(MPI_Errhandler_free(&eh2));
  CHECK(MPI_Errhandler_free(&eh));
  OUT("errhandler freed %d", eh == MPI_ERRHANDLER_NULL);
  /* file error handlers: the default for files is ERRORS_RETURN */
  MPI_Errhandler feh;
  CHECK(MPI_File_get_errhandler(MPI_FILE_NULL, &got));
  OUT("file default return %d", got == MPI_ERRORS_RETURN);
  CHECK(MPI_File_create_errhandler(fhandler, &feh));
  CHECK(MPI_File_set_errhandler(MPI_FILE_NULL, feh));
  MPI_File fh;
  rc = MPI_File_open(MPI_COMM_SELF, "/nonexistent-dir/mana/x", MPI_MODE_RDONLY, MPI_INFO_NULL, &fh);
  OUT("file open failure handler calls %d rc nonzero %d", fcalls, rc != MPI_SUCCESS);
  CHECK(MPI_File_set_errhandler(MPI_FILE_NULL, MPI_ERRORS_RETURN));
  CHECK(MPI_Errhandler_free(&feh));
  MPI_Comm_free(&dup);
  cov_done();
  return 0;
}
