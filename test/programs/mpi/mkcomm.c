/* Checkpoint suite: communicators made by calls that block inside the MPI library until every
   member has arrived (Comm_split, Comm_create, Cart_create, Cart_sub, Dist_graph_create_adjacent,
   Intercomm_create, Intercomm_merge, Comm_dup_with_info), with the ranks arriving at different
   times, so a checkpoint usually finds some ranks inside one and the others still on their way.
   Ranks also reach MPI_Finalize at different times.
   usage: mkcomm RESULT_FILE STEPS PAUSE_MS */
#include "suite.h"

static const long M = 1000000007L;

static long sum_on(MPI_Comm c, long v) {
  long s = 0;
  MPI_Allreduce(&v, &s, 1, MPI_LONG, MPI_SUM, c);
  return s;
}

/* the rank's late arrival at step s: a different rank is last each step */
static void skew(const struct run *r, long s) {
  int late = (int)((r->rank + s) % r->size);
  if (r->pause_ms > 0) usleep((useconds_t)(late * r->pause_ms * 1000 / r->size));
}

int main(int argc, char **argv) {
  struct run run = suite_start(&argc, &argv, "mkcomm");
  int rank = run.rank, size = run.size;
  long x = rank + 1, trail = 0;
  MPI_Group world_group;
  MPI_Comm_group(MPI_COMM_WORLD, &world_group);
  for (long s = 0; s < run.steps; s++) {
    long v = 0;
    skew(&run, s);
    switch (s % 6) {
    case 0: { /* split, key reversed */
      MPI_Comm c;
      MPI_Comm_split(MPI_COMM_WORLD, (int)((rank + s) % 2), size - rank, &c);
      int cr;
      MPI_Comm_rank(c, &cr);
      v = sum_on(c, x * (cr + 1));
      MPI_Comm_free(&c);
      break;
    }
    case 1: { /* create from a group without the last rank (which gets MPI_COMM_NULL) */
      MPI_Group g;
      int excl = size - 1;
      MPI_Group_excl(world_group, 1, &excl, &g);
      MPI_Comm c;
      MPI_Comm_create(MPI_COMM_WORLD, g, &c);
      if (c != MPI_COMM_NULL) {
        v = sum_on(c, x);
        MPI_Comm_free(&c);
      } else {
        v = -1;
      }
      MPI_Group_free(&g);
      break;
    }
    case 2: { /* a periodic 1-D ring, then a sub-grid of it */
      int dims[1] = {size}, periods[1] = {1}, remain[1] = {1};
      MPI_Comm cart, sub;
      MPI_Cart_create(MPI_COMM_WORLD, 1, dims, periods, 0, &cart);
      int src, dst;
      MPI_Cart_shift(cart, 0, 1, &src, &dst);
      long got = 0;
      MPI_Sendrecv(&x, 1, MPI_LONG, dst, 7, &got, 1, MPI_LONG, src, 7, cart, MPI_STATUS_IGNORE);
      MPI_Cart_sub(cart, remain, &sub);
      v = got + sum_on(sub, got);
      MPI_Comm_free(&sub);
      MPI_Comm_free(&cart);
      break;
    }
    case 3: { /* a directed ring as a distributed graph */
      int from = (rank + size - 1) % size, to = (rank + 1) % size;
      MPI_Comm g;
      MPI_Dist_graph_create_adjacent(MPI_COMM_WORLD, 1, &from, MPI_UNWEIGHTED, 1, &to, MPI_UNWEIGHTED, MPI_INFO_NULL, 0, &g);
      long got = 0;
      MPI_Neighbor_allgather(&x, 1, MPI_LONG, &got, 1, MPI_LONG, g);
      v = got;
      MPI_Comm_free(&g);
      break;
    }
    case 4: { /* even and odd ranks as the two sides of an intercommunicator, then merged */
      MPI_Comm side, inter, merged;
      MPI_Comm_split(MPI_COMM_WORLD, rank % 2, rank, &side);
      MPI_Intercomm_create(side, 0, MPI_COMM_WORLD, rank % 2 ? 0 : 1, 42, &inter);
      MPI_Intercomm_merge(inter, rank % 2, &merged);
      int mr;
      MPI_Comm_rank(merged, &mr);
      v = sum_on(merged, x * (mr + 1));
      MPI_Comm_free(&merged);
      MPI_Comm_free(&inter);
      MPI_Comm_free(&side);
      break;
    }
    default: { /* a blocking duplicate with hints */
      MPI_Comm d;
      MPI_Comm_dup_with_info(MPI_COMM_WORLD, MPI_INFO_NULL, &d);
      v = sum_on(d, x + s);
      MPI_Comm_free(&d);
      break;
    }
    }
    x = (x * 31 + v % M + M + s) % M;
    trail = (trail * 131 + v % M + M) % M;
  }
  long mine[2] = {x, trail};
  static const char *const keys[] = {"x", "trail"};
  suite_finish(&run, MPI_COMM_WORLD, NULL, keys, mine, 2);
  MPI_Group_free(&world_group);
  skew(&run, run.steps);
  MPI_Finalize();
  return 0;
}
