/* Collectives: v-variants, alltoallw, reduce_scatter(_block), scan/exscan, their nonblocking
   forms, Reduce_local / Op_commutative, neighbourhood collectives on a ring. */
#include "cov.h"

static void mymax(void *in, void *inout, int *len, MPI_Datatype *dt) {
  (void)dt;
  for (int i = 0; i < *len; i++) if (((int *)in)[i] > ((int *)inout)[i]) ((int *)inout)[i] = ((int *)in)[i];
}

static void print_arr(const char *what, const int *a, int n) {
  char buf[1024]; int o = 0;
  for (int i = 0; i < n; i++) o += snprintf(buf + o, sizeof buf - (size_t)o, " %d", a[i]);
  OUT("%s%s", what, buf);
}

int main(int argc, char **argv) {
  cov_init(&argc, &argv);
  int n, r = cov_rank;
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  int counts[64], displs[64], sendv[256], recvv[256];
  for (int i = 0; i < n; i++) { counts[i] = i + 1; displs[i] = i * (i + 1) / 2; }
  int total = n * (n + 1) / 2;
  for (int i = 0; i < r + 1; i++) sendv[i] = 100 * r + i;
  memset(recvv, 0, sizeof recvv);
  CHECK(MPI_Gatherv(sendv, r + 1, MPI_INT, recvv, counts, displs, MPI_INT, 0, MPI_COMM_WORLD));
  if (r == 0) print_arr("gatherv", recvv, total);
  memset(recvv, 0, sizeof recvv);
  CHECK(MPI_Allgatherv(sendv, r + 1, MPI_INT, recvv, counts, displs, MPI_INT, MPI_COMM_WORLD));
  print_arr("allgatherv", recvv, total);
  for (int i = 0; i < total; i++) sendv[i] = i * 7;
  memset(recvv, 0, sizeof recvv);
  CHECK(MPI_Scatterv(sendv, counts, displs, MPI_INT, recvv, r + 1, MPI_INT, 1 % n, MPI_COMM_WORLD));
  print_arr("scatterv", recvv, r + 1);
  /* alltoallv: send i+1 ints to rank i */
  int scounts[64], sdispls[64], rcounts[64], rdispls[64], so = 0, ro = 0;
  for (int i = 0; i < n; i++) {
    scounts[i] = i + 1; sdispls[i] = so; so += i + 1;
    rcounts[i] = r + 1; rdispls[i] = ro; ro += r + 1;
  }
  for (int i = 0; i < so; i++) sendv[i] = r * 1000 + i;
  memset(recvv, 0, sizeof recvv);
  CHECK(MPI_Alltoallv(sendv, scounts, sdispls, MPI_INT, recvv, rcounts, rdispls, MPI_INT, MPI_COMM_WORLD));
  print_arr("alltoallv", recvv, ro);
  /* alltoallw: to rank i one int, as MPI_INT; byte displacements; from rank i a short */
  int wsc[64], wsd[64], wrc[64], wrd[64];
  MPI_Datatype wst[64], wrt[64];
  short sh[64];
  for (int i = 0; i < n; i++) {
    wsc[i] = 1; wsd[i] = i * (int)sizeof(int); wst[i] = MPI_INT;
    wrc[i] = 1; wrd[i] = i * (int)sizeof(int); wrt[i] = MPI_INT;
    sendv[i] = r * 10 + i;
  }
  (void)sh;
  memset(recvv, 0, sizeof recvv);
  CHECK(MPI_Alltoallw(sendv, wsc, wsd, wst, recvv, wrc, wrd, wrt, MPI_COMM_WORLD));
  print_arr("alltoallw", recvv, n);
  /* with a derived type in the middle of the type array */
  MPI_Datatype pair;
  MPI_Type_contiguous(2, MPI_INT, &pair);
  MPI_Type_commit(&pair);
  for (int i = 0; i < n; i++) { wst[i] = pair; wrt[i] = pair; wsd[i] = wrd[i] = i * 2 * (int)sizeof(int); }
  for (int i = 0; i < 2 * n; i++) sendv[i] = r * 100 + i;
  MPI_Request req;
  CHECK(MPI_Ialltoallw(sendv, wsc, wsd, wst, recvv, wrc, wrd, wrt, MPI_COMM_WORLD, &req));
  CHECK(MPI_Wait(&req, MPI_STATUS_IGNORE));
  print_arr("ialltoallw", recvv, 2 * n);
  MPI_Type_free(&pair);
  /* reductions */
  for (int i = 0; i < total; i++) sendv[i] = r + i;
  CHECK(MPI_Reduce_scatter(sendv, recvv, counts, MPI_INT, MPI_SUM, MPI_COMM_WORLD));
  print_arr("reduce_scatter", recvv, r + 1);
  CHECK(MPI_Reduce_scatter_block(sendv, recvv, 2, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
  print_arr("reduce_scatter_block", recvv, 2);
  int v = r + 1, s = 0, e = -1;
  CHECK(MPI_Scan(&v, &s, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD));
  CHECK(MPI_Exscan(&v, &e, 1, MPI_INT, MPI_PROD, MPI_COMM_WORLD));
  OUT("scan %d exscan %d", s, r == 0 ? 0 : e);
  MPI_Request rq[6];
  int a1 = 0, a2 = 0, a3[64], a4[2];
  CHECK(MPI_Iscan(&v, &a1, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD, &rq[0]));
  CHECK(MPI_Iexscan(&v, &a2, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD, &rq[1]));
  CHECK(MPI_Iallgatherv(sendv, r + 1, MPI_INT, a3, counts, displs, MPI_INT, MPI_COMM_WORLD, &rq[2]));
  CHECK(MPI_Ireduce_scatter_block(sendv, a4, 2, MPI_INT, MPI_SUM, MPI_COMM_WORLD, &rq[3]));
  CHECK(MPI_Waitall(4, rq, MPI_STATUSES_IGNORE));
  OUT("iscan %d iexscan %d", a1, r == 0 ? 0 : a2);
  print_arr("iallgatherv", a3, total);
  print_arr("ireduce_scatter_block", a4, 2);
  /* in place */
  int ip[4] = {r, r * 2, r * 3, r * 4};
  CHECK(MPI_Allreduce(MPI_IN_PLACE, ip, 4, MPI_INT, MPI_SUM, MPI_COMM_WORLD));
  print_arr("allreduce_in_place", ip, 4);
  /* user op, Reduce_local, Op_commutative */
  MPI_Op op;
  CHECK(MPI_Op_create(mymax, 0, &op));
  int comm = -1;
  CHECK(MPI_Op_commutative(op, &comm));
  int c2 = -1;
  CHECK(MPI_Op_commutative(MPI_SUM, &c2));
  int la[3] = {1, 9, 3}, lb[3] = {4, 2, 8};
  CHECK(MPI_Reduce_local(la, lb, 3, MPI_INT, op));
  OUT("op_commutative %d %d reduce_local %d %d %d", comm, c2, lb[0], lb[1], lb[2]);
  int mx = 0;
  CHECK(MPI_Allreduce(&r, &mx, 1, MPI_INT, op, MPI_COMM_WORLD));
  OUT("user_max %d", mx);
  MPI_Op_free(&op);
  /* neighbourhood collectives on a periodic ring */
  MPI_Comm ring;
  int dims[1] = {n}, per[1] = {1};
  CHECK(MPI_Cart_create(MPI_COMM_WORLD, 1, dims, per, 0, &ring));
  int nb[2] = {-1, -1};
  CHECK(MPI_Neighbor_allgather(&r, 1, MPI_INT, nb, 1, MPI_INT, ring));
  OUT("neighbor_allgather %d %d", nb[0], nb[1]);
  int snb[2] = {r * 10, r * 10 + 1}, rnb[2] = {-1, -1};
  CHECK(MPI_Neighbor_alltoall(snb, 1, MPI_INT, rnb, 1, MPI_INT, ring));
  OUT("neighbor_alltoall %d %d", rnb[0], rnb[1]);
  int nc[2] = {1, 1}, nd[2] = {0, 1};
  CHECK(MPI_Neighbor_allgatherv(&r, 1, MPI_INT, nb, nc, nd, MPI_INT, ring));
  OUT("neighbor_allgatherv %d %d", nb[0], nb[1]);
  CHECK(MPI_Neighbor_alltoallv(snb, nc, nd, MPI_INT, rnb, nc, nd, MPI_INT, ring));
  OUT("neighbor_alltoallv %d %d", rnb[0], rnb[1]);
  MPI_Aint ad[2] = {0, sizeof(int)};
  MPI_Datatype nt[2] = {MPI_INT, MPI_INT};
  CHECK(MPI_Neighbor_alltoallw(snb, nc, ad, nt, rnb, nc, ad, nt, ring));
  OUT("neighbor_alltoallw %d %d", rnb[0], rnb[1]);
  CHECK(MPI_Ineighbor_alltoallw(snb, nc, ad, nt, rnb, nc, ad, nt, ring, &req));
  CHECK(MPI_Wait(&req, MPI_STATUS_IGNORE));
  OUT("ineighbor_alltoallw %d %d", rnb[0], rnb[1]);
  MPI_Comm_free(&ring);
  /* Igatherv, Iscatterv, Ialltoallv, Ireduce_scatter */
  for (int i = 0; i < total; i++) sendv[i] = i + r;
  int g[256] = {0}, sc[64] = {0}, av[256] = {0}, rsc[64] = {0};
  CHECK(MPI_Igatherv(sendv, r + 1, MPI_INT, g, counts, displs, MPI_INT, n - 1, MPI_COMM_WORLD, &rq[0]));
  CHECK(MPI_Iscatterv(sendv, counts, displs, MPI_INT, sc, r + 1, MPI_INT, 0, MPI_COMM_WORLD, &rq[1]));
  CHECK(MPI_Ialltoallv(sendv, scounts, sdispls, MPI_INT, av, rcounts, rdispls, MPI_INT, MPI_COMM_WORLD, &rq[2]));
  CHECK(MPI_Ireduce_scatter(sendv, rsc, counts, MPI_INT, MPI_SUM, MPI_COMM_WORLD, &rq[3]));
  int idx = -1, done = 0;
  while (done < 4) { CHECK(MPI_Waitany(4, rq, &idx, MPI_STATUS_IGNORE)); done++; }
  if (r == n - 1) print_arr("igatherv", g, total);
  print_arr("iscatterv", sc, r + 1);
  print_arr("ialltoallv", av, ro);
  print_arr("ireduce_scatter", rsc, r + 1);
  cov_done();
  return 0;
}
