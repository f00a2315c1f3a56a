/* Checkpoint suite: a 2-D periodic halo-exchange stencil on a Cartesian communicator
   (Dims_create, Cart_create, Cart_shift), halos exchanged with Isend/Irecv/Waitall, an
   Allreduce of the residual each step. Integer (fixed-point) arithmetic, so every MPI gives
   the same numbers bit for bit.
   usage: halo RESULT_FILE STEPS PAUSE_MS */
#include "suite.h"
#include <string.h>

#define N 24 /* local block N x N, plus a halo of one cell */
#define AT(a, i, j) a[(i) * (N + 2) + (j)]

int main(int argc, char **argv) {
  struct run run = suite_start(&argc, &argv, "halo");
  long steps = run.steps;
  int size = run.size, rank;
  int dims[2] = {0, 0}, periods[2] = {1, 1}, coords[2];
  MPI_Dims_create(size, 2, dims);
  MPI_Comm cart;
  MPI_Cart_create(MPI_COMM_WORLD, 2, dims, periods, 0, &cart);
  MPI_Comm_rank(cart, &rank);
  MPI_Cart_coords(cart, rank, 2, coords);
  int up, down, west, east;
  MPI_Cart_shift(cart, 0, 1, &up, &down);
  MPI_Cart_shift(cart, 1, 1, &west, &east);
  long *u = calloc((N + 2) * (N + 2), sizeof *u), *v = calloc((N + 2) * (N + 2), sizeof *v);
  long sbuf[4][N], rbuf[4][N];
  for (int i = 1; i <= N; i++)
    for (int j = 1; j <= N; j++) AT(u, i, j) = ((coords[0] * N + i) * 7919L + (coords[1] * N + j) * 104729L) % 65536 * 1024;
  long trail = 0;
  for (long s = 0; s < steps; s++) {
    for (int k = 0; k < N; k++) {
      sbuf[0][k] = AT(u, 1, k + 1); /* to up */
      sbuf[1][k] = AT(u, N, k + 1); /* to down */
      sbuf[2][k] = AT(u, k + 1, 1); /* to west */
      sbuf[3][k] = AT(u, k + 1, N); /* to east */
    }
    MPI_Request rq[8];
    /* receive from down what down sent up (tag 0), etc. */
    MPI_Irecv(rbuf[0], N, MPI_LONG, down, 0, cart, &rq[0]);
    MPI_Irecv(rbuf[1], N, MPI_LONG, up, 1, cart, &rq[1]);
    MPI_Irecv(rbuf[2], N, MPI_LONG, east, 2, cart, &rq[2]);
    MPI_Irecv(rbuf[3], N, MPI_LONG, west, 3, cart, &rq[3]);
    MPI_Isend(sbuf[0], N, MPI_LONG, up, 0, cart, &rq[4]);
    MPI_Isend(sbuf[1], N, MPI_LONG, down, 1, cart, &rq[5]);
    MPI_Isend(sbuf[2], N, MPI_LONG, west, 2, cart, &rq[6]);
    MPI_Isend(sbuf[3], N, MPI_LONG, east, 3, cart, &rq[7]);
    MPI_Status sts[8]; /* not MPI_STATUSES_IGNORE: gcc 12 warns on MPICH's header */
    MPI_Waitall(8, rq, sts);
    for (int k = 0; k < N; k++) {
      AT(u, N + 1, k + 1) = rbuf[0][k];
      AT(u, 0, k + 1) = rbuf[1][k];
      AT(u, k + 1, N + 1) = rbuf[2][k];
      AT(u, k + 1, 0) = rbuf[3][k];
    }
    long res = 0;
    for (int i = 1; i <= N; i++)
      for (int j = 1; j <= N; j++) {
        long n = AT(u, i - 1, j) + AT(u, i + 1, j) + AT(u, i, j - 1) + AT(u, i, j + 1);
        long nv = (4 * AT(u, i, j) + n) / 8 + ((i * 31 + j * 17 + s) % 7 == 0 ? 3 : 0);
        res += labs(nv - AT(u, i, j));
        AT(v, i, j) = nv;
      }
    long *w = u;
    u = v;
    v = w;
    long gres = 0;
    MPI_Allreduce(&res, &gres, 1, MPI_LONG, MPI_SUM, cart);
    trail = (trail * 131 + gres) % 1000000007L;
    suite_pause(&run);
  }
  long sum = 0, mix = 0;
  for (int i = 1; i <= N; i++)
    for (int j = 1; j <= N; j++) {
      sum += AT(u, i, j);
      mix = (mix * 31 + AT(u, i, j)) % 1000000007L;
    }
  long mine[5] = {coords[0], coords[1], sum, mix, trail};
  char extra[64];
  snprintf(extra, sizeof extra, "dims %dx%d", dims[0], dims[1]);
  static const char *const keys[] = {"x", "y", "sum", "mix", "residuals"};
  suite_finish(&run, cart, extra, keys, mine, 5);
  free(u);
  free(v);
  MPI_Comm_free(&cart);
  MPI_Finalize();
  return 0;
}
