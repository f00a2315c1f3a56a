/* Checkpoint suite: a job that is never quiet. Every step each rank sends its right neighbour
   messages of mixed tags and sizes (MPI_Isend of longs, MPI_Send of a vector datatype, MPI_Isend
   of ints, every 16 steps a large MPI_Isend that needs its receive posted), and rank 0 also
   floods every other rank; the receives trail the sends by LAG steps, so at any moment
   messages are in flight with no receive posted for them. They are taken with a specific
   source and tag (MPI_Recv), MPI_Probe(ANY_SOURCE) + MPI_Get_count, MPI_Mprobe/MPI_Improbe +
   MPI_Mrecv/MPI_Imrecv, MPI_Iprobe + MPI_Irecv, MPI_Irecv(source, ANY_TAG), the receive side of
   MPI_Sendrecv/MPI_Sendrecv_replace, and MPI_Recv(ANY_SOURCE) on an intercommunicator. Every
   receive on a communicator but the intercommunicator has one possible match (MPI matches each
   source's messages in the order sent), so each rank hashes what it received in program
   order; what comes over the intercommunicator is summed, in whatever order it arrives. The
   result is deterministic. 2 to 8 ranks.
   usage: flood RESULT_FILE STEPS PAUSE_MS */
#include "suite.h"

#define LAG 3              /* steps between a message's send and its receive */
#define NSLOT (LAG + 2)    /* send buffers in use at once */
#define MAXA 12
#define BIG 40000          /* longs: past both MPIs' eager limits */
static const long M = 1000000007L;

#define MAXRANKS 8
struct slot {
  long a[MAXA], flood[MAXRANKS][3], *big, pair[2];
  int inter[2];
  int c[8], vec[5 * 2 * 2];
  MPI_Request req[64];
  int nreq;
};

static long mix(long h, long v) { return (h * 1000003 + (v % M + M)) % M; }

static void check(int ok, long step, const char *what) {
  if (!ok) {
    fprintf(stderr, "flood: step %ld: %s\n", step, what);
    MPI_Abort(MPI_COMM_WORLD, 4);
  }
}

int main(int argc, char **argv) {
  struct run run = suite_start(&argc, &argv, "flood");
  int rank = run.rank, size = run.size;
  long steps = run.steps;
  int dst = (rank + 1) % size, src = (rank + size - 1) % size;
  MPI_Comm comm = MPI_COMM_WORLD;
  /* 2 blocks of 2 ints, stride 5: 4 ints of a 7-int span; sent 2 at a time */
  MPI_Datatype vec;
  MPI_Type_vector(2, 2, 5, MPI_INT, &vec);
  MPI_Type_commit(&vec);
  struct slot slots[NSLOT] = {0};
  for (int k = 0; k < NSLOT; k++) slots[k].big = malloc(sizeof(long) * BIG);
  long *bigin = malloc(sizeof(long) * BIG);
  if (size < 2 || size > MAXRANKS) {
    fprintf(stderr, "flood: runs on 2 to %d ranks\n", MAXRANKS);
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  /* even and odd ranks, joined by an intercommunicator */
  MPI_Comm half, inter;
  MPI_Comm_split(comm, rank % 2, rank, &half);
  MPI_Intercomm_create(half, 0, comm, rank % 2 == 0 ? 1 : 0, 77, &inter);
  int lrank, lsize, rsize;
  MPI_Comm_rank(half, &lrank);
  MPI_Comm_size(half, &lsize);
  MPI_Comm_remote_size(inter, &rsize);
  int inter_from = 0; /* remote ranks q sending to this rank: q % lsize == lrank */
  for (int q = 0; q < rsize; q++) inter_from += q % lsize == lrank;
  long h = rank + 1, nrecv = 0, bytes = 0, hinter = 0;
  MPI_Status sts[64];

  for (long s = 0; s < steps + LAG; s++) {
    if (s < steps) {
      /* ---- sends of step s */
      struct slot *sl = &slots[s % NSLOT];
      MPI_Waitall(sl->nreq, sl->req, sts);
      sl->nreq = 0;
      int alen = 1 + (int)((rank * 5 + s) % MAXA);
      for (int k = 0; k < alen; k++) sl->a[k] = (s * 31 + rank * 7 + k) % M;
      MPI_Isend(sl->a, alen, MPI_LONG, dst, 100 + (int)(s % 5), comm, &sl->req[sl->nreq++]);
      int v[2 * 2 * 5 + 2];
      for (int k = 0; k < (int)(sizeof v / sizeof *v); k++) v[k] = (int)((s * 13 + rank + k * 3) % 10007);
      MPI_Send(v, 2, vec, dst, 200, comm);
      int clen = 4 + (int)(s % 3);
      for (int k = 0; k < clen; k++) sl->c[k] = (int)((s + k * rank + 11) % 9973);
      MPI_Isend(sl->c, clen, MPI_INT, dst, 300, comm, &sl->req[sl->nreq++]);
      if (rank == 0)
        for (int q = 1; q < size; q++) {
          sl->flood[q][0] = s, sl->flood[q][1] = q, sl->flood[q][2] = s * q % 101;
          MPI_Isend(sl->flood[q], 3, MPI_LONG, q, 400 + q, comm, &sl->req[sl->nreq++]);
        }
      sl->pair[0] = s * 3 + rank, sl->pair[1] = s ^ rank;
      MPI_Isend(sl->pair, 2, MPI_LONG, dst, 600, comm, &sl->req[sl->nreq++]);
      sl->inter[0] = (int)(s % 1000), sl->inter[1] = rank;
      MPI_Isend(sl->inter, 2, MPI_INT, lrank % rsize, 700, inter, &sl->req[sl->nreq++]);
      if (s % 16 == 0) {
        for (int k = 0; k < BIG; k++) sl->big[k] = (s + k * 17 + rank) % 65521;
        MPI_Isend(sl->big, BIG, MPI_LONG, dst, 500, comm, &sl->req[sl->nreq++]);
      }
    }
    long t = s - LAG;
    if (t >= 0) {
      /* ---- receives of step t's messages */
      MPI_Status st;
      int n = 0;
      long a[MAXA];
      MPI_Recv(a, MAXA, MPI_LONG, src, 100 + (int)(t % 5), comm, &st);
      MPI_Get_count(&st, MPI_LONG, &n);
      check(n == 1 + (int)((src * 5 + t) % MAXA) && st.MPI_SOURCE == src, t, "longs from the left");
      for (int k = 0; k < n; k++) h = mix(h, a[k]);
      bytes += n * 8;

      MPI_Probe(MPI_ANY_SOURCE, 200, comm, &st);
      MPI_Get_count(&st, vec, &n);
      check(n == 2 && st.MPI_SOURCE == src, t, "a vector message probed");
      int v[2 * 2 * 5 + 2];
      for (int k = 0; k < (int)(sizeof v / sizeof *v); k++) v[k] = -1;
      MPI_Recv(v, 2, vec, st.MPI_SOURCE, 200, comm, &st);
      MPI_Get_elements(&st, MPI_INT, &n);
      check(n == 8, t, "8 ints in a vector message");
      for (int k = 0; k < (int)(sizeof v / sizeof *v); k++) h = mix(h, v[k]); /* gaps stay -1 */

      int c[8] = {0}, flag = 0;
      MPI_Message msg;
      MPI_Request r;
      if (t % 3 == 0) {
        MPI_Mprobe(src, 300, comm, &msg, &st);
        MPI_Get_count(&st, MPI_INT, &n);
        MPI_Mrecv(c, n, MPI_INT, &msg, &st);
      } else if (t % 3 == 1) {
        while (!flag) MPI_Improbe(src, 300, comm, &flag, &msg, &st);
        MPI_Get_count(&st, MPI_INT, &n);
        MPI_Imrecv(c, 8, MPI_INT, &msg, &r);
        MPI_Wait(&r, &st);
      } else {
        while (!flag) MPI_Iprobe(src, 300, comm, &flag, &st);
        MPI_Get_count(&st, MPI_INT, &n);
        MPI_Irecv(c, 8, MPI_INT, src, 300, comm, &r);
        MPI_Wait(&r, &st);
      }
      MPI_Get_count(&st, MPI_INT, &n);
      check(n == 4 + (int)(t % 3) && st.MPI_TAG == 300, t, "ints by matched probe or Irecv");
      for (int k = 0; k < n; k++) h = mix(h, c[k]);

      if (rank != 0) {
        /* rank 0's flood message is the first of its messages not received yet */
        long f[3];
        if (src == 0) {
          MPI_Recv(f, 3, MPI_LONG, 0, 400 + rank, comm, &st);
        } else {
          MPI_Irecv(f, 3, MPI_LONG, 0, MPI_ANY_TAG, comm, &r);
          MPI_Wait(&r, &st);
        }
        check(st.MPI_TAG == 400 + rank && f[0] == t && f[1] == rank, t, "the flood from rank 0");
        h = mix(h, f[2]);
      }
      if (t % 16 == 0) {
        MPI_Recv(bigin, BIG, MPI_LONG, src, 500, comm, &st);
        MPI_Get_count(&st, MPI_LONG, &n);
        check(n == BIG, t, "the large message");
        long bh = 0;
        for (int k = 0; k < BIG; k++) bh = (bh * 31 + bigin[k]) % M;
        h = mix(h, bh);
        bytes += (long)BIG * 8;
      }
      /* the receive side of Sendrecv takes step t's pair; its send is taken right after */
      long pair[2] = {0, 0}, back[2] = {0, 0};
      if (t % 2 == 0) {
        long mine = t * 7 + rank;
        MPI_Sendrecv(&mine, 1, MPI_LONG, dst, 601, pair, 2, MPI_LONG, src, 600, comm, &st);
      } else {
        pair[0] = t * 7 + rank;
        MPI_Sendrecv_replace(pair, 2, MPI_LONG, dst, 601, src, 600, comm, &st);
      }
      MPI_Get_count(&st, MPI_LONG, &n);
      check(n == 2 && pair[0] == t * 3 + src && st.MPI_SOURCE == src, t, "a pair by Sendrecv");
      h = mix(h, pair[1]);
      MPI_Recv(back, 2, MPI_LONG, src, 601, comm, &st); /* Sendrecv_replace sends 2 */
      check(back[0] == t * 7 + src, t, "the other half of a Sendrecv");
      for (int k = 0; k < inter_from; k++) {
        int in[2];
        MPI_Recv(in, 2, MPI_INT, MPI_ANY_SOURCE, 700, inter, &st);
        /* from any of the senders, and of any step (one sender may be ahead of another):
           only the sum over all of them is the same from run to run */
        check(in[0] >= 0 && in[0] < 1000 && in[1] % 2 != rank % 2, t, "a message over the intercommunicator");
        hinter = (hinter + (long)(in[0] + 1) * (in[1] + 1)) % M;
      }
      nrecv++;
    }
    if (s % 8 == 7) {
      /* a collective now and then: the ranks stay within a few steps of each other */
      long g = 0;
      MPI_Allreduce(&h, &g, 1, MPI_LONG, MPI_SUM, comm);
      h = mix(h, g % M);
    }
    suite_pause(&run);
  }
  for (int k = 0; k < NSLOT; k++) MPI_Waitall(slots[k].nreq, slots[k].req, sts);
  long mine[4] = {h, hinter, nrecv, bytes};
  static const char *const keys[] = {"h", "inter", "steps_received", "bytes"};
  suite_finish(&run, comm, NULL, keys, mine, 4);
  MPI_Comm_free(&inter);
  MPI_Comm_free(&half);
  for (int k = 0; k < NSLOT; k++) free(slots[k].big);
  free(bigin);
  MPI_Type_free(&vec);
  MPI_Finalize();
  return 0;
}
