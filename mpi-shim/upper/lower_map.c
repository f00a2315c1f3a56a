/* Which memory of this process belongs to the lower half: what the loader mapped (ld.so, the
 * startup stack) plus what the tracker in the lower world reports (its libraries, mmaps,
 * thread stacks). A checkpoint leaves exactly these ranges out; anything else is the upper
 * half's and is saved (DESIGN.md invariant 1). MANA_MPI_MAPS=FILE (or "-" for stderr) writes
 * /proc/self/maps with each line classified, after MPI_Init: the debugging view of it ("%r" in
 * FILE is replaced by the rank). */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lh_track.h"
#include "shim.h"

int lh_loader_ranges(uint64_t (*out)[2], int max);

/* Exported for the checkpointer: fills out with [start, end) pairs, sorted, returns the count
   (more than max means out was too small), -1 before the lower half exists. */
__attribute__((visibility("default"))) int mana_mpi_lower_ranges(uint64_t (*out)[2], int max) {
  if (!shim_lh) return -1;
  /* a static buffer: the checkpointer asks while the other threads are parked, when malloc
     may be locked by one of them */
  static struct lh_range tr[16384];
  int cap = (int)(sizeof tr / sizeof *tr);
  int n = lh_loader_ranges(out, max);
  int got = LH_CALL(lh_ranges, tr, cap);
  for (int i = 0; i < got && i < cap; i++, n++)
    if (n < max) { out[n][0] = tr[i].start; out[n][1] = tr[i].end; }
  /* sort (insertion: the tracker's list is sorted already, the loader's two go in place) */
  int m = n < max ? n : max;
  for (int i = 1; i < m; i++)
    for (int j = i; j > 0 && out[j - 1][0] > out[j][0]; j--) {
      uint64_t a = out[j][0], b = out[j][1];
      out[j][0] = out[j - 1][0], out[j][1] = out[j - 1][1];
      out[j - 1][0] = a, out[j - 1][1] = b;
    }
  return n;
}

/* How much of [s, e) the ranges cover: 0 none, 1 part, 2 all. */
static int coverage(uint64_t s, uint64_t e, uint64_t (*r)[2], int n) {
  uint64_t covered = 0;
  for (int i = 0; i < n; i++) {
    uint64_t a = r[i][0] > s ? r[i][0] : s, b = r[i][1] < e ? r[i][1] : e;
    if (a < b) covered += b - a;
  }
  return covered == 0 ? 0 : covered >= e - s ? 2 : 1;
}

void shim_dump_maps(const char *where) {
  int max = 8192;
  uint64_t (*r)[2] = shim_tmp(sizeof *r * (size_t)max);
  int n = mana_mpi_lower_ranges(r, max);
  if (n > max) n = max;
  /* "%r" in the name becomes the rank, so the ranks of a job write a file each */
  char path[4096];
  const char *pr = strstr(where, "%r");
  if (pr) {
    int rank = 0;
    PMPI_Comm_rank(MPI_COMM_WORLD, &rank);
    snprintf(path, sizeof path, "%.*s%d%s", (int)(pr - where), where, rank, pr + 2);
    where = path;
  }
  FILE *out = strcmp(where, "-") == 0 ? stderr : fopen(where, "w");
  FILE *maps = fopen("/proc/self/maps", "r");
  if (out && maps) {
    char line[4096];
    while (fgets(line, sizeof line, maps)) {
      unsigned long s, e;
      if (sscanf(line, "%lx-%lx", &s, &e) != 2) continue;
      int c = n > 0 ? coverage(s, e, r, n) : 0;
      fprintf(out, "%s %s", c == 2 ? "lower" : c == 1 ? "mixed" : "upper", line);
    }
  }
  if (maps) fclose(maps);
  if (out && out != stderr) fclose(out);
  free(r);
}
