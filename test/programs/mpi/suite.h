/* What every program of the MPI checkpoint suite shares: the command line
   (RESULT_FILE STEPS PAUSE_MS), the pause that lets a checkpoint land mid-run, and the result
   file rank 0 writes from numbers gathered from every rank. Deterministic integers only, so
   results compare byte for byte, across MPI implementations too. */
#ifndef MANA_TEST_SUITE_H
#define MANA_TEST_SUITE_H
#define _DEFAULT_SOURCE /* usleep */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

struct run {
  const char *name, *out;
  long steps;
  int pause_ms, rank, size;
};

static inline struct run suite_start(int *argc, char ***argv, const char *name) {
  MPI_Init(argc, argv);
  struct run r = {.name = name};
  if (*argc != 4) {
    fprintf(stderr, "usage: %s RESULT_FILE STEPS PAUSE_MS\n", name);
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  MPI_Comm_rank(MPI_COMM_WORLD, &r.rank);
  MPI_Comm_size(MPI_COMM_WORLD, &r.size);
  r.out = (*argv)[1];
  r.steps = atol((*argv)[2]);
  r.pause_ms = atoi((*argv)[3]);
  return r;
}

static inline void suite_pause(const struct run *r) {
  if (r->pause_ms > 0) usleep((useconds_t)r->pause_ms * 1000);
}

/* Gathers n numbers of every rank of comm at its rank 0, which writes
   "NAME size S steps T EXTRA" and then one line per rank: "rank R key=value ...". */
static inline void suite_finish(const struct run *r, MPI_Comm comm, const char *extra,
                                const char *const *keys, const long *mine, int n) {
  int crank, csize;
  MPI_Comm_rank(comm, &crank);
  MPI_Comm_size(comm, &csize);
  long *all = crank == 0 ? malloc(sizeof(long) * (size_t)n * (size_t)csize) : NULL;
  MPI_Gather(mine, n, MPI_LONG, all, n, MPI_LONG, 0, comm);
  if (crank == 0) {
    FILE *f = fopen(r->out, "w");
    if (!f) {
      perror(r->out);
      MPI_Abort(MPI_COMM_WORLD, 3);
    }
    fprintf(f, "%s size %d steps %ld%s%s\n", r->name, r->size, r->steps, extra ? " " : "", extra ? extra : "");
    for (int q = 0; q < csize; q++) {
      fprintf(f, "rank %d", q);
      for (int k = 0; k < n; k++) fprintf(f, " %s=%ld", keys[k], all[(size_t)q * (size_t)n + (size_t)k]);
      fprintf(f, "\n");
    }
    fclose(f);
    free(all);
  }
}
#endif
