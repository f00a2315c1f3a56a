/* apicheck — uses the optional application API of mana.h (built without libmana: the API is
 * weak, so the same binary runs natively).
 *
 *   apicheck OUT STEPS SLEEP_MS AT MODE
 *
 * MODE checkpoint: at step AT calls mana_checkpoint() and writes which return it got
 *   ("checkpointed", "restarted", or "failed: <errno name>").
 * MODE critical: at step AT disables checkpoints for one second (two nested sections),
 *   writing "critical begin" and "critical end" around it.
 * Every step writes "step N" to OUT (flushed), so a restart resumes in the middle of it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../include/mana.h"

static void nap(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: apicheck OUT STEPS SLEEP_MS AT checkpoint|critical\n");
    return 2;
  }
  FILE *out = fopen(argv[1], "w");
  if (!out) {
    perror(argv[1]);
    return 99;
  }
  long steps = atol(argv[2]), ms = atol(argv[3]), at = atol(argv[4]);
  const char *mode = argv[5];
  for (long i = 0; i < steps; i++) {
    fprintf(out, "step %ld\n", i);
    fflush(out);
    if (i == at && strcmp(mode, "checkpoint") == 0) {
      int r = mana_api_checkpoint();
      if (r == MANA_CHECKPOINTED) fprintf(out, "mana_checkpoint: checkpointed\n");
      else if (r == MANA_RESTARTED) fprintf(out, "mana_checkpoint: restarted\n");
      else fprintf(out, "mana_checkpoint: failed: %s\n", errno == ENOSYS ? "ENOSYS" : strerror(errno));
      fflush(out);
    } else if (i == at && strcmp(mode, "critical") == 0) {
      mana_api_disable_ckpt();
      mana_api_disable_ckpt();
      fprintf(out, "critical begin\n");
      fflush(out);
      nap(500);
      mana_api_enable_ckpt();
      nap(500);
      fprintf(out, "critical end\n");
      fflush(out);
      mana_api_enable_ckpt();
    }
    nap(ms);
  }
  fclose(out);
  return 0;
}
