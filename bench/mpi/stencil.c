/* B2 (DESIGN.md §7): a 2-D Jacobi stencil on an N x N global grid split over a Px x Py process
 * grid, one halo row/column exchanged per iteration with MPI_Irecv/MPI_Isend/MPI_Waitall, then a
 * 5-point update of the local block.
 *   stencil N ITERS
 * Rank 0 prints the slowest rank's time for the timed loop (MPI_Wtime, after a barrier) and a
 * checksum, so a wrong halo exchange shows as a differing sum between native and mana. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (argc < 3) {
    if (rank == 0) fprintf(stderr, "usage: mpirun -n P stencil N ITERS\n");
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  int n = atoi(argv[1]), iters = atoi(argv[2]);
  /* the most square Px x Py = size */
  int px = 1;
  for (int d = 1; d * d <= size; d++)
    if (size % d == 0) px = d;
  int py = size / px, cx = rank % px, cy = rank / px;
  int nx = n / px, ny = n / py, w = nx + 2; /* local block with a one-cell halo */
  double *a = calloc((size_t)w * (ny + 2), sizeof *a), *b = calloc((size_t)w * (ny + 2), sizeof *b);
  double *sendbuf = malloc(sizeof(double) * 2 * (nx + ny)), *recvbuf = malloc(sizeof(double) * 2 * (nx + ny));
  if (!a || !b || !sendbuf || !recvbuf) MPI_Abort(MPI_COMM_WORLD, 1);
  for (int j = 1; j <= ny; j++)
    for (int i = 1; i <= nx; i++) a[j * w + i] = (double)((cx * nx + i) * 7 + (cy * ny + j) * 3 % 11) / 11.0;
  int nb[4] = {cy > 0 ? rank - px : MPI_PROC_NULL, cy < py - 1 ? rank + px : MPI_PROC_NULL,
               cx > 0 ? rank - 1 : MPI_PROC_NULL, cx < px - 1 ? rank + 1 : MPI_PROC_NULL};
  int len[4] = {nx, nx, ny, ny}, off[4] = {0, nx, 2 * nx, 2 * nx + ny};

  MPI_Barrier(MPI_COMM_WORLD);
  double t0 = MPI_Wtime();
  for (int it = 0; it < iters; it++) {
    MPI_Request req[8];
    for (int k = 0; k < 4; k++)
      MPI_Irecv(recvbuf + off[k], len[k], MPI_DOUBLE, nb[k], k ^ 1, MPI_COMM_WORLD, &req[k]);
    /* pack: north row, south row, west column, east column */
    for (int i = 0; i < nx; i++) {
      sendbuf[off[0] + i] = a[1 * w + 1 + i];
      sendbuf[off[1] + i] = a[ny * w + 1 + i];
    }
    for (int j = 0; j < ny; j++) {
      sendbuf[off[2] + j] = a[(1 + j) * w + 1];
      sendbuf[off[3] + j] = a[(1 + j) * w + nx];
    }
    for (int k = 0; k < 4; k++)
      MPI_Isend(sendbuf + off[k], len[k], MPI_DOUBLE, nb[k], k, MPI_COMM_WORLD, &req[4 + k]);
    MPI_Waitall(8, req, MPI_STATUSES_IGNORE);
    if (nb[0] != MPI_PROC_NULL) for (int i = 0; i < nx; i++) a[0 * w + 1 + i] = recvbuf[off[0] + i];
    if (nb[1] != MPI_PROC_NULL) for (int i = 0; i < nx; i++) a[(ny + 1) * w + 1 + i] = recvbuf[off[1] + i];
    if (nb[2] != MPI_PROC_NULL) for (int j = 0; j < ny; j++) a[(1 + j) * w + 0] = recvbuf[off[2] + j];
    if (nb[3] != MPI_PROC_NULL) for (int j = 0; j < ny; j++) a[(1 + j) * w + nx + 1] = recvbuf[off[3] + j];
    for (int j = 1; j <= ny; j++)
      for (int i = 1; i <= nx; i++)
        b[j * w + i] = 0.2 * (a[j * w + i] + a[j * w + i - 1] + a[j * w + i + 1] + a[(j - 1) * w + i] + a[(j + 1) * w + i]);
    double *t = a;
    a = b;
    b = t;
  }
  double el = MPI_Wtime() - t0, slowest = 0, sum = 0, all = 0;
  for (int j = 1; j <= ny; j++)
    for (int i = 1; i <= nx; i++) sum += a[j * w + i];
  MPI_Reduce(&el, &slowest, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
  MPI_Reduce(&sum, &all, 1, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD);
  if (rank == 0) printf("MANA_BENCH time_s=%.4f checksum=%.10e grid=%dx%d\n", slowest, all, px, py);
  free(a), free(b), free(sendbuf), free(recvbuf);
  MPI_Finalize();
  return 0;
}
