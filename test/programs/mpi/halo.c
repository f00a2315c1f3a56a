/* Checkpoint suite: a 2-D periodic halo-exchange stencil on a Cartesian communicator
   (Dims_create, Cart_create, Cart_shift), halos exchanged with Isend/Irecv/Waitall, an
   Allreduce of the residual each step. Integer (fixed-point) arithmetic, so every MPI gives
   the same numbers bit for bit.
   usage: halo RESULT_FILE STEPS PAUSE_MS */
#define _DEFAULT_SOURCE /* usleep */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define N 24 /* local block N x N, plus a halo of one cell */
#define AT(a, i, j) a[(i) * (N + 2) + (j)]

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  if (argc != 4) {
    fprintf(stderr, "usage: halo RESULT_FILE STEPS PAUSE_MS\n");
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  long steps = atol(argv[2]);
  int pause_ms = atoi(argv[3]);
  int size, rank;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
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
    if (pause_ms > 0) usleep((useconds_t)pause_ms * 1000);
  }
  long sum = 0, mix = 0;
  for (int i = 1; i <= N; i++)
    for (int j = 1; j <= N; j++) {
      sum += AT(u, i, j);
      mix = (mix * 31 + AT(u, i, j)) % 1000000007L;
    }
  long mine[5] = {coords[0], coords[1], sum, mix, trail};
  long *all = rank == 0 ? malloc(sizeof(long) * 5 * (size_t)size) : NULL;
  MPI_Gather(mine, 5, MPI_LONG, all, 5, MPI_LONG, 0, cart);
  if (rank == 0) {
    FILE *f = fopen(argv[1], "w");
    if (!f) {
      perror(argv[1]);
      MPI_Abort(MPI_COMM_WORLD, 3);
    }
    fprintf(f, "halo size %d dims %dx%d steps %ld\n", size, dims[0], dims[1], steps);
    for (int r = 0; r < size; r++)
      fprintf(f, "rank %d (%ld,%ld) sum=%ld mix=%ld residuals=%ld\n", r, all[5 * r], all[5 * r + 1], all[5 * r + 2], all[5 * r + 3], all[5 * r + 4]);
    fclose(f);
    free(all);
  }
  free(u);
  free(v);
  MPI_Comm_free(&cart);
  MPI_Finalize();
  return 0;
}
