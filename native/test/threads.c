/* threads — a multithreaded program for the checkpointer (knows nothing of mana).
 *
 *   threads OUT ROUNDS [WORKERS]
 *
 * WORKERS threads (default 4) meet the main thread twice a round at a barrier; between meetings each adds its
 * deterministic share into a mutex-protected total and into its own thread-local sum, and a
 * producer/consumer pair hands tokens through a condition variable. Alongside: a detached
 * ticker thread, a thread parked in read() on stdin, threads
 * created and joined in every round (so some are born after a restart), and pthread_kill/raise
 * against live threads (glibc's cached TIDs must be right after a restart). Every round writes a
 * line to OUT; the exit status is derived from the totals.
 */
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int rounds, workers;
static pthread_barrier_t barrier;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static uint64_t total, handed, received;
static int token_ready;
static _Thread_local uint64_t tls_sum;
static uint64_t tls_report[64];
static volatile sig_atomic_t usr1_hits;

static void on_usr1(int s) {
  (void)s;
  usr1_hits++;
}

static void die(const char *what, int err) {
  fprintf(stderr, "threads: %s: %s\n", what, strerror(err));
  exit(99);
}

static void nap_ms(long ms) {
  struct timespec ts = {0, ms * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

static void meet(void) {
  int rc = pthread_barrier_wait(&barrier);
  if (rc != 0 && rc != PTHREAD_BARRIER_SERIAL_THREAD) die("barrier", rc);
}

static void *worker(void *arg) {
  int id = (int)(intptr_t)arg;
  for (int r = 0; r < rounds; r++) {
    uint64_t share = (uint64_t)(r + 1) * (uint64_t)(id + 3) * 2654435761u;
    tls_sum += share;
    pthread_mutex_lock(&lock);
    total += share;
    pthread_mutex_unlock(&lock);
    nap_ms(2);
    meet(); /* shares of round r are in */
    meet(); /* main has read the total */
  }
  tls_report[id] = tls_sum;
  return NULL;
}

static void *producer(void *arg) {
  (void)arg;
  for (int i = 1; i <= rounds * 4; i++) {
    pthread_mutex_lock(&lock);
    while (token_ready) pthread_cond_wait(&cond, &lock);
    token_ready = 1;
    handed += (uint64_t)i;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
  }
  return NULL;
}

static void *consumer(void *arg) {
  (void)arg;
  for (int i = 1; i <= rounds * 4; i++) {
    pthread_mutex_lock(&lock);
    while (!token_ready) pthread_cond_wait(&cond, &lock);
    token_ready = 0;
    received += (uint64_t)i;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
    nap_ms(1);
  }
  return NULL;
}

static void *ticker(void *arg) {
  (void)arg;
  for (;;) nap_ms(5); /* detached, never joined: must survive restarts harmlessly */
  return NULL;
}

static void *reader(void *arg) {
  (void)arg;
  /* Blocked in read() on stdin for the whole run when stdin is a pipe nobody writes to (stdin
   * is rebound to the restarting terminal): the interrupted read must restart, not fail. With
   * stdin at EOF it simply ends. Its result is not part of the output: exit() ends it. */
  char buf[64];
  while (read(0, buf, sizeof buf) > 0) {
  }
  return NULL;
}

static void *short_lived(void *arg) {
  uint64_t *slot = arg;
  *slot = *slot * 6364136223846793005ULL + 1442695040888963407ULL;
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: threads OUT ROUNDS [WORKERS]\n");
    return 2;
  }
  FILE *out = fopen(argv[1], "w");
  if (!out) die(argv[1], 2);
  rounds = atoi(argv[2]);
  workers = argc > 3 ? atoi(argv[3]) : 4;
  if (workers < 1 || workers > 32) die("workers", 22);

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr1;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGUSR1, &sa, NULL);

  int rc;
  if ((rc = pthread_barrier_init(&barrier, NULL, (unsigned)workers + 1))) die("barrier_init", rc);
  pthread_t w[32], prod, cons, tick, rd;
  for (int i = 0; i < workers; i++)
    if ((rc = pthread_create(&w[i], NULL, worker, (void *)(intptr_t)i))) die("create", rc);
  if ((rc = pthread_create(&prod, NULL, producer, NULL))) die("create", rc);
  if ((rc = pthread_create(&cons, NULL, consumer, NULL))) die("create", rc);
  if ((rc = pthread_create(&rd, NULL, reader, NULL))) die("create", rc);
  pthread_attr_t det;
  pthread_attr_init(&det);
  pthread_attr_setdetachstate(&det, PTHREAD_CREATE_DETACHED);
  if ((rc = pthread_create(&tick, &det, ticker, NULL))) die("create", rc);

  uint64_t chain = 1;
  for (int r = 0; r < rounds; r++) {
    meet();
    pthread_t s;
    if ((rc = pthread_create(&s, NULL, short_lived, &chain))) die("create short", rc);
    if ((rc = pthread_join(s, NULL))) die("join short", rc);
    if ((rc = pthread_kill(w[r % workers], SIGUSR1))) die("pthread_kill", rc);
    if (raise(SIGUSR1) != 0) die("raise", 0);
    pthread_mutex_lock(&lock);
    uint64_t t = total;
    pthread_mutex_unlock(&lock);
    meet();
    fprintf(out, "round %d total %016" PRIx64 " chain %016" PRIx64 "\n", r, t, chain);
    fflush(out);
    nap_ms(10);
  }
  for (int i = 0; i < workers; i++)
    if ((rc = pthread_join(w[i], NULL))) die("join", rc);
  if ((rc = pthread_join(prod, NULL)) || (rc = pthread_join(cons, NULL))) die("join pc", rc);

  uint64_t tls_all = 0;
  for (int i = 0; i < workers; i++) tls_all += tls_report[i];
  /* usr1_hits is not printed: raise() and pthread_kill() may coalesce while a signal is pending */
  fprintf(out, "final total %016" PRIx64 " tls %016" PRIx64 " handed %" PRIu64 " received %" PRIu64
               " ok %d\n",
          total, tls_all, handed, received, tls_all == total && handed == received);
  fclose(out);
  return (int)((total ^ chain) % 50) + 10;
}
