/* Checkpoint suite: persistent requests in a ring. Each step starts three pairs of Recv_init
   and a send init (Send_init, Bsend_init with an attached buffer, Ssend_init) together
   (MPI_Startall) and waits for them; a fourth pair (Recv_init from MPI_ANY_SOURCE and
   Rsend_init, tag 9) runs a step ahead: the receive is started at the end of a step and
   completed in the next (so it is posted before the ready send of the next step: the
   Allreduce of each step follows it), the ready send is started in a step and waited for only
   in the next, so a checkpoint in the pause finds an active persistent receive and an active
   (or complete, not yet waited for) persistent send. Each step also starts a persistent
   receive nothing matches and cancels it (a cancelled receive must not count as received, or
   no later checkpoint could drain). An Allreduce each step.
   usage: persist RESULT_FILE STEPS PAUSE_MS */
#include "suite.h"

static const long M = 1000000007L;

int main(int argc, char **argv) {
  struct run run = suite_start(&argc, &argv, "persist");
  int rank = run.rank, size = run.size;
  long steps = run.steps;
  int right = (rank + 1) % size, left = (rank + size - 1) % size;
  long out = 0, in = 0, x = rank + 1, trail = 0, aout = 0, ain = 0, atrail = 0, bout = 0, bin = 0, sout = 0, sin = 0;
  MPI_Request rq[6], ahead_recv, ahead_send, never;
  MPI_Status sts[6]; /* not MPI_STATUSES_IGNORE: gcc 12 warns on MPICH's header */
  MPI_Status st;
  int bsize = 0;
  MPI_Pack_size(1, MPI_LONG, MPI_COMM_WORLD, &bsize);
  bsize = 2 * (bsize + MPI_BSEND_OVERHEAD);
  char *bbuf = malloc((size_t)bsize);
  MPI_Buffer_attach(bbuf, bsize);
  MPI_Recv_init(&in, 1, MPI_LONG, left, 7, MPI_COMM_WORLD, &rq[0]);
  MPI_Send_init(&out, 1, MPI_LONG, right, 7, MPI_COMM_WORLD, &rq[1]);
  MPI_Recv_init(&bin, 1, MPI_LONG, left, 11, MPI_COMM_WORLD, &rq[2]);
  MPI_Bsend_init(&bout, 1, MPI_LONG, right, 11, MPI_COMM_WORLD, &rq[3]);
  MPI_Recv_init(&sin, 1, MPI_LONG, right, 13, MPI_COMM_WORLD, &rq[4]);
  MPI_Ssend_init(&sout, 1, MPI_LONG, left, 13, MPI_COMM_WORLD, &rq[5]);
  MPI_Recv_init(&ain, 1, MPI_LONG, MPI_ANY_SOURCE, 9, MPI_COMM_WORLD, &ahead_recv);
  MPI_Rsend_init(&aout, 1, MPI_LONG, right, 9, MPI_COMM_WORLD, &ahead_send);
  long nothing = 0;
  MPI_Recv_init(&nothing, 1, MPI_LONG, left, 99, MPI_COMM_WORLD, &never);
  MPI_Start(&ahead_recv);
  for (long s = 0; s < steps; s++) {
    out = x;
    bout = (x * 3 + s) % M;
    sout = (x * 5 + rank) % M;
    MPI_Startall(6, rq);
    MPI_Waitall(6, rq, sts);
    int cancelled = 0;
    MPI_Start(&never);
    MPI_Cancel(&never);
    MPI_Wait(&never, &st);
    MPI_Test_cancelled(&st, &cancelled);
    if (!cancelled) {
      fprintf(stderr, "persist: a receive nothing matches was not cancelled\n");
      MPI_Abort(MPI_COMM_WORLD, 4);
    }
    if (s > 0) MPI_Wait(&ahead_send, &st); /* started in the step before */
    aout = x + s;
    MPI_Start(&ahead_send);
    MPI_Wait(&ahead_recv, &st);
    if (st.MPI_SOURCE != left || st.MPI_TAG != 9) {
      fprintf(stderr, "persist: ahead message from %d tag %d, want %d tag 9\n", st.MPI_SOURCE, st.MPI_TAG, left);
      MPI_Abort(MPI_COMM_WORLD, 4);
    }
    atrail = (atrail * 137 + ain) % M;
    if (s + 1 < steps) MPI_Start(&ahead_recv); /* for the next step: active during the pause */
    long sum = 0;
    MPI_Allreduce(&x, &sum, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
    x = (x * 31 + in * 7 + sum + s) % M;
    trail = (trail * 131 + in + bin * 3 + sin * 5) % M;
    suite_pause(&run);
  }
  MPI_Wait(&ahead_send, &st);
  for (int i = 0; i < 6; i++) MPI_Request_free(&rq[i]);
  void *detached = NULL;
  MPI_Buffer_detach(&detached, &bsize);
  free(detached);
  MPI_Request_free(&ahead_recv);
  MPI_Request_free(&ahead_send);
  MPI_Request_free(&never);
  long mine[3] = {x, trail, atrail};
  static const char *const keys[] = {"x", "trail", "ahead"};
  suite_finish(&run, MPI_COMM_WORLD, NULL, keys, mine, 3);
  MPI_Finalize();
  return 0;
}
