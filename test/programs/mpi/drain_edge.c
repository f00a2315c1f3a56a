/* Messages drained at a checkpoint, received in ways that test their delivery's edges: too
   short a receive (MPI_Recv, and MPI_Irecv + MPI_Wait), a message ending inside an element of
   the receive type, and MPI_Improbe + MPI_Imrecv into a vector datatype. Rank 0 sends, both
   ranks meet in a barrier, rank 1 writes MARKER_FILE (the test checkpoints after that, while
   the messages wait unreceived) and sleeps SLEEP_MS, then receives and writes RESULT_FILE.
   Errors are returned, not fatal: the job checks them. 2 ranks.
   usage: drain_edge RESULT_FILE MARKER_FILE SLEEP_MS */
#define _DEFAULT_SOURCE /* usleep */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (argc != 4) {
    fprintf(stderr, "usage: %s RESULT_FILE MARKER_FILE SLEEP_MS\n", argv[0]);
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  MPI_Comm c;
  MPI_Comm_dup(MPI_COMM_WORLD, &c);
  MPI_Comm_set_errhandler(c, MPI_ERRORS_RETURN);
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Datatype two, vec;
  MPI_Type_contiguous(2, MPI_INT, &two);
  MPI_Type_commit(&two);
  MPI_Type_vector(2, 1, 3, MPI_INT, &vec); /* ints 0 and 3 of a 4-int span */
  MPI_Type_commit(&vec);
  int v[8] = {11, 12, 13, 14, 15, 16, 17, 18};
  if (rank == 0) {
    MPI_Send(v, 5, MPI_INT, 1, 1, c);
    MPI_Send(v, 5, MPI_INT, 1, 2, c);
    MPI_Send(v, 3, MPI_INT, 1, 3, c);
    MPI_Send(v, 4, MPI_INT, 1, 4, c);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank == 1) {
    FILE *m = fopen(argv[2], "w");
    if (m) fclose(m);
  }
  usleep((useconds_t)atoi(argv[3]) * 1000);
  if (rank == 1) {
    FILE *f = fopen(argv[1], "w");
    if (!f) MPI_Abort(MPI_COMM_WORLD, 3);
    MPI_Status st;
    int cls = 0, n = -1, e = -1;
    int b[5] = {0};
    int rc = MPI_Recv(b, 3, MPI_INT, 0, 1, c, &st);
    MPI_Error_class(rc, &cls);
    fprintf(f, "recv truncated=%d data=%d,%d,%d,%d\n", cls == MPI_ERR_TRUNCATE, b[0], b[1], b[2], b[3]);
    MPI_Request r;
    int b2[5] = {0};
    rc = MPI_Irecv(b2, 2, MPI_INT, 0, 2, c, &r);
    int wrc = MPI_Wait(&r, &st);
    MPI_Error_class(wrc, &cls);
    fprintf(f, "irecv posted=%d wait_truncated=%d data=%d,%d,%d\n", rc == MPI_SUCCESS, cls == MPI_ERR_TRUNCATE, b2[0], b2[1], b2[2]);
    int b3[4] = {0};
    rc = MPI_Recv(b3, 2, two, 0, 3, c, &st);
    MPI_Get_count(&st, two, &n);
    MPI_Get_elements(&st, two, &e);
    fprintf(f, "partial rc=%d count_undefined=%d elements=%d data=%d,%d,%d,%d\n", rc, n == MPI_UNDEFINED, e, b3[0], b3[1], b3[2], b3[3]);
    int flag = 0, b4[8];
    for (int k = 0; k < 8; k++) b4[k] = -1;
    MPI_Message msg;
    while (!flag) MPI_Improbe(0, 4, c, &flag, &msg, &st);
    MPI_Get_count(&st, vec, &n);
    MPI_Imrecv(b4, 2, vec, &msg, &r);
    MPI_Wait(&r, &st);
    fprintf(f, "mprobe vectors=%d msg_null=%d data=%d,%d,%d,%d,%d,%d,%d\n", n, msg == MPI_MESSAGE_NULL, b4[0], b4[1], b4[2], b4[3], b4[4], b4[5], b4[6]);
    fclose(f);
  }
  MPI_Type_free(&two);
  MPI_Type_free(&vec);
  MPI_Comm_free(&c);
  MPI_Finalize();
  return 0;
}
