/* Rank 0 enters a call that blocks until every rank has arrived, the others HOLD_MS later:
   a checkpoint requested meanwhile finds rank 0 waiting for them. MODE is the call:
     split     MPI_Comm_split, then an allreduce on each half (the result file);
     intercomm MPI_Intercomm_create between the even and odd ranks (a receive from any
               source posted on MPI_COMM_WORLD, the peer communicator, meanwhile), then
               MPI_Intercomm_merge and an allreduce on the merged communicator;
     group     MPI_Comm_create_group of the even ranks only, then an allreduce on it;
     finalize  the result file first, then MPI_Finalize (a checkpoint then is refused: the job
               is finishing);
     file-open, file-view, file-sync, file-close
               a file RESULT_FILE.dat on MPI_COMM_WORLD: MPI_File_open, MPI_File_set_view,
               each rank's value written at its place, MPI_File_sync, MPI_File_close; rank 0
               arrives early at the named one; then each rank reads its neighbour's value.
   Rank 0 says "late: rank 0 enters MODE" on stderr just before the call.
   usage: late RESULT_FILE MODE HOLD_MS */
#define _DEFAULT_SOURCE /* usleep */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void arrive(int rank, const char *mode, long hold_ms) {
  if (rank == 0) {
    fprintf(stderr, "late: rank 0 enters %s\n", mode);
    fflush(stderr);
  } else {
    usleep((useconds_t)hold_ms * 1000);
  }
}

static void result(const char *path, int rank, int size, long v) {
  long *all = malloc(sizeof(long) * (size_t)size);
  MPI_Gather(&v, 1, MPI_LONG, all, 1, MPI_LONG, 0, MPI_COMM_WORLD);
  if (rank == 0) {
    FILE *f = fopen(path, "w");
    if (!f) {
      perror(path);
      MPI_Abort(MPI_COMM_WORLD, 3);
    }
    for (int q = 0; q < size; q++) fprintf(f, "rank %d v=%ld\n", q, all[q]);
    fclose(f);
  }
  free(all);
}

static long file_flow(const char *result, int rank, int size, long v, const char *mode, long hold_ms) {
  char path[4096];
  snprintf(path, sizeof path, "%s.dat", result);
  const char *at = mode + 5; /* "open", "view", "sync", "close" */
  int known = 0;
  MPI_File fh;
  if (strcmp(at, "open") == 0) known = 1, arrive(rank, mode, hold_ms);
  MPI_File_open(MPI_COMM_WORLD, path, MPI_MODE_CREATE | MPI_MODE_RDWR, MPI_INFO_NULL, &fh);
  if (strcmp(at, "view") == 0) known = 1, arrive(rank, mode, hold_ms);
  MPI_File_set_view(fh, 0, MPI_LONG, MPI_LONG, "native", MPI_INFO_NULL);
  long mine = v * 1000 + size;
  MPI_File_write_at(fh, rank, &mine, 1, MPI_LONG, MPI_STATUS_IGNORE);
  if (strcmp(at, "sync") == 0) known = 1, arrive(rank, mode, hold_ms);
  MPI_File_sync(fh);
  if (strcmp(at, "close") == 0) known = 1, arrive(rank, mode, hold_ms);
  MPI_File_close(&fh);
  MPI_Barrier(MPI_COMM_WORLD);
  long theirs = -1;
  FILE *f = fopen(path, "rb");
  if (!f || fseek(f, (long)sizeof(long) * ((rank + 1) % size), SEEK_SET) != 0 || fread(&theirs, sizeof theirs, 1, f) != 1) theirs = -2;
  if (f) fclose(f);
  return known ? theirs : -3; /* (-3: an unknown file-MODE) */
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  if (argc != 4) {
    fprintf(stderr, "usage: late RESULT_FILE split|intercomm|group|finalize|file-open|file-view|file-sync|file-close HOLD_MS\n");
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  const char *mode = argv[2];
  long hold = atol(argv[3]);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  long v = rank + 1, s = 0;
  MPI_Allreduce(&v, &s, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
  if (strcmp(mode, "split") == 0) {
    MPI_Comm half;
    arrive(rank, mode, hold);
    MPI_Comm_split(MPI_COMM_WORLD, rank % 2, size - rank, &half);
    MPI_Allreduce(&v, &s, 1, MPI_LONG, MPI_SUM, half);
    int hr;
    MPI_Comm_rank(half, &hr);
    result(argv[1], rank, size, s * 100 + hr);
    MPI_Comm_free(&half);
  } else if (strcmp(mode, "intercomm") == 0) {
    MPI_Comm side, inter, merged;
    MPI_Comm_split(MPI_COMM_WORLD, rank % 2, rank, &side);
    /* a receive from any source on the peer communicator stays posted through the creation:
       only the message sent for it afterwards may match it (not MPI_ANY_TAG: Open MPI's
       leaders exchange on the peer communicator with the call's tag, natively too) */
    long got = -1;
    MPI_Request wild;
    MPI_Irecv(&got, 1, MPI_LONG, MPI_ANY_SOURCE, 3, MPI_COMM_WORLD, &wild);
    arrive(rank, mode, hold);
    MPI_Intercomm_create(side, 0, MPI_COMM_WORLD, rank % 2 ? 0 : 1, 9, &inter);
    MPI_Intercomm_merge(inter, rank % 2, &merged);
    int mr;
    MPI_Comm_rank(merged, &mr);
    MPI_Allreduce(&v, &s, 1, MPI_LONG, MPI_SUM, merged);
    long mine = 7L * rank;
    MPI_Send(&mine, 1, MPI_LONG, (rank + 1) % size, 3, MPI_COMM_WORLD);
    MPI_Wait(&wild, MPI_STATUS_IGNORE);
    result(argv[1], rank, size, (s * 100 + mr) * 1000 + got);
    MPI_Comm_free(&merged);
    MPI_Comm_free(&inter);
    MPI_Comm_free(&side);
  } else if (strcmp(mode, "group") == 0) {
    /* only the even ranks make it (the odd ones never call it) */
    MPI_Group world, evens;
    MPI_Comm_group(MPI_COMM_WORLD, &world);
    int range[1][3] = {{0, size - 1, 2}};
    MPI_Group_range_incl(world, 1, range, &evens);
    long r = -1;
    if (rank % 2 == 0) {
      MPI_Comm ev;
      arrive(rank, mode, hold);
      MPI_Comm_create_group(MPI_COMM_WORLD, evens, 5, &ev);
      int er;
      MPI_Comm_rank(ev, &er);
      MPI_Allreduce(&v, &s, 1, MPI_LONG, MPI_SUM, ev);
      r = s * 100 + er;
      MPI_Comm_free(&ev);
    }
    /* the odd ranks wait here for the even ones (so the job is not finishing meanwhile) */
    MPI_Barrier(MPI_COMM_WORLD);
    result(argv[1], rank, size, r);
    MPI_Group_free(&evens);
    MPI_Group_free(&world);
  } else if (strncmp(mode, "file-", 5) == 0) {
    long r = file_flow(argv[1], rank, size, v, mode, hold);
    if (r == -3) {
      fprintf(stderr, "late: unknown mode %s\n", mode);
      MPI_Abort(MPI_COMM_WORLD, 2);
    }
    result(argv[1], rank, size, r);
  } else if (strcmp(mode, "finalize") == 0) {
    result(argv[1], rank, size, s);
    arrive(rank, mode, hold);
  } else {
    fprintf(stderr, "late: unknown mode %s\n", mode);
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  MPI_Finalize();
  return 0;
}
