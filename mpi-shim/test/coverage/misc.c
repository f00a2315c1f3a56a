/* Upper-half functions: addresses, memory, statuses, versions, time, Fortran handles, plus
   persistent requests, probes and the environment queries. */
#include "cov.h"

int main(int argc, char **argv) {
  int provided = -1;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  MPI_Comm_rank(MPI_COMM_WORLD, &cov_rank);
  int n, r = cov_rank;
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  OUT("thread level >= serialized %d", provided >= MPI_THREAD_SERIALIZED);
  int arr[4];
  MPI_Aint a0, a2;
  CHECK(MPI_Get_address(&arr[0], &a0));
  CHECK(MPI_Get_address(&arr[2], &a2));
  OUT("address diff %ld add %d", (long)MPI_Aint_diff(a2, a0), MPI_Aint_add(a0, 8) == a2);
  int *mem = NULL;
  CHECK(MPI_Alloc_mem(64, MPI_INFO_NULL, &mem));
  mem[15] = 7;
  CHECK(MPI_Free_mem(mem));
  OUT("alloc_mem ok");
  MPI_Status st;
  memset(&st, 0, sizeof st);
  CHECK(MPI_Status_set_elements(&st, MPI_DOUBLE, 3));
  int cnt = -1, el = -1, canc = -1;
  MPI_Count elx = -1;
  CHECK(MPI_Get_count(&st, MPI_DOUBLE, &cnt));
  CHECK(MPI_Get_elements(&st, MPI_INT, &el));
  CHECK(MPI_Status_set_elements_x(&st, MPI_INT, 5));
  CHECK(MPI_Get_elements_x(&st, MPI_INT, &elx));
  CHECK(MPI_Status_set_cancelled(&st, 1));
  CHECK(MPI_Test_cancelled(&st, &canc));
  OUT("status count %d elements %d elements_x %ld cancelled %d", cnt, el, (long)elx, canc);
  int v, sv;
  CHECK(MPI_Get_version(&v, &sv));
  OUT("version at least 3.1 %d", v > 3 || (v == 3 && sv >= 1)); /* mana and MPICH say 4.0, Open MPI 4.1 3.1 */
  double t0 = MPI_Wtime(), tick = MPI_Wtick();
  OUT("wtime positive %d tick positive %d", t0 > 0, tick > 0 && tick < 1);
  OUT("c2f comm %d", MPI_Comm_f2c(MPI_Comm_c2f(MPI_COMM_WORLD)) == MPI_COMM_WORLD);
  MPI_Fint fst[MPI_F_STATUS_SIZE];
  MPI_Status back;
  CHECK(MPI_Status_c2f(&st, fst));
  CHECK(MPI_Status_f2c(fst, &back));
  OUT("status c2f/f2c %d", memcmp(&st, &back, sizeof st) == 0);
  MPI_Pcontrol(1);
  int flag = -1;
  CHECK(MPI_Is_thread_main(&flag));
  OUT("is_thread_main %d", flag);
  /* persistent requests around a ring */
  int to = (r + 1) % n, from = (r + n - 1) % n, sbuf = r, rbuf = -1;
  MPI_Request pr[2];
  CHECK(MPI_Send_init(&sbuf, 1, MPI_INT, to, 5, MPI_COMM_WORLD, &pr[0]));
  CHECK(MPI_Recv_init(&rbuf, 1, MPI_INT, from, 5, MPI_COMM_WORLD, &pr[1]));
  int sum = 0;
  for (int it = 0; it < 3; it++) {
    sbuf = r * 10 + it;
    CHECK(MPI_Startall(2, pr));
    CHECK(MPI_Waitall(2, pr, MPI_STATUSES_IGNORE));
    sum += rbuf;
  }
  CHECK(MPI_Request_free(&pr[0]));
  CHECK(MPI_Request_free(&pr[1]));
  OUT("persistent sum %d", sum);
  /* matched probe and receive */
  MPI_Message msg;
  int x = r * 3, y = -1;
  MPI_Request sr;
  CHECK(MPI_Isend(&x, 1, MPI_INT, to, 9, MPI_COMM_WORLD, &sr));
  CHECK(MPI_Mprobe(from, 9, MPI_COMM_WORLD, &msg, &st));
  CHECK(MPI_Mrecv(&y, 1, MPI_INT, &msg, &st));
  CHECK(MPI_Wait(&sr, MPI_STATUS_IGNORE));
  OUT("mrecv %d source %d tag %d msg null %d", y, st.MPI_SOURCE, st.MPI_TAG, msg == MPI_MESSAGE_NULL);
  /* cancel a receive nobody matches */
  CHECK(MPI_Irecv(&y, 1, MPI_INT, MPI_ANY_SOURCE, 12345, MPI_COMM_WORLD, &sr));
  CHECK(MPI_Cancel(&sr));
  CHECK(MPI_Wait(&sr, &st));
  CHECK(MPI_Test_cancelled(&st, &canc));
  OUT("cancelled %d", canc);
  /* Bsend */
  int bsz = 1024 + MPI_BSEND_OVERHEAD;
  void *bb = malloc((size_t)bsz);
  CHECK(MPI_Buffer_attach(bb, bsz));
  CHECK(MPI_Bsend(&x, 1, MPI_INT, to, 3, MPI_COMM_WORLD));
  CHECK(MPI_Recv(&y, 1, MPI_INT, from, 3, MPI_COMM_WORLD, &st));
  void *det;
  int dsz;
  CHECK(MPI_Buffer_detach(&det, &dsz));
  OUT("bsend %d detached same %d size %d", y, det == bb, dsz == bsz);
  free(bb);
  int init = 0, fin = 1;
  MPI_Initialized(&init);
  MPI_Finalized(&fin);
  OUT("initialized %d finalized %d", init, fin);
  cov_done();
  return 0;
}
