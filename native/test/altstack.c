/* altstack — alternate signal stacks across a checkpoint (a plain C program).
 *
 *   altstack OUT STEPS SLEEP_MS
 *
 * The main thread and a worker each register their own sigaltstack (per-thread kernel state a
 * restart must give back) and SIGUSR1 is handled with SA_ONSTACK. Every step raises SIGUSR1 in
 * both threads; the handler records whether it really ran on the calling thread's alternate
 * stack. Each step writes "step N main-on-altstack W worker-on-altstack W" to OUT.
 */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define ALT_SIZE (64 * 1024)

static _Thread_local char *alt_base;
static _Thread_local volatile int on_alt, hits;
static pthread_barrier_t step_done;
static volatile int steps_total;

static void on_usr1(int sig) {
  (void)sig;
  char here;
  on_alt = alt_base && &here >= alt_base && &here < alt_base + ALT_SIZE;
  hits++;
}

static void use_altstack(void) {
  alt_base = malloc(ALT_SIZE);
  stack_t ss = {.ss_sp = alt_base, .ss_size = ALT_SIZE, .ss_flags = 0};
  if (!alt_base || sigaltstack(&ss, NULL) != 0) {
    perror("sigaltstack");
    exit(99);
  }
}

static void nap(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

static volatile int worker_on_alt;

static void *worker(void *arg) {
  (void)arg;
  use_altstack();
  pthread_barrier_wait(&step_done); /* registered */
  for (int i = 0; i < steps_total; i++) {
    pthread_barrier_wait(&step_done); /* main has signalled us */
    worker_on_alt = on_alt;
    on_alt = 0;
    pthread_barrier_wait(&step_done);
  }
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: altstack OUT STEPS SLEEP_MS\n");
    return 2;
  }
  FILE *out = fopen(argv[1], "w");
  if (!out) return 99;
  steps_total = atoi(argv[2]);
  long ms = atol(argv[3]);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr1;
  sa.sa_flags = SA_ONSTACK | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGUSR1, &sa, NULL);
  use_altstack();
  pthread_barrier_init(&step_done, NULL, 2);
  pthread_t w;
  if (pthread_create(&w, NULL, worker, NULL) != 0) return 99;
  pthread_barrier_wait(&step_done);
  int all = 1;
  for (int i = 0; i < steps_total; i++) {
    raise(SIGUSR1);
    int main_on_alt = on_alt;
    on_alt = 0;
    pthread_kill(w, SIGUSR1);
    nap(1); /* let the worker take its signal before it looks */
    pthread_barrier_wait(&step_done);
    pthread_barrier_wait(&step_done);
    fprintf(out, "step %d main-on-altstack %d worker-on-altstack %d\n", i, main_on_alt, worker_on_alt);
    fflush(out);
    all &= main_on_alt && worker_on_alt;
    nap(ms);
  }
  pthread_join(w, NULL);
  fclose(out);
  return all ? 0 : 1;
}
