/* threads.c — DEV TOOL ONLY: thread state that must survive a restart.
 *   threads N
 * A worker waits on a condition variable, another sleeps in the kernel; the main
 * thread raises SIGUSR1 at itself (glibc's cached tid), pthread_kills the workers, and joins
 * them at the end (CLONE_CHILD_CLEARTID on glibc's tid field). */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static volatile int stop;
static volatile long ticks;
static volatile sig_atomic_t got;

static void on_usr1(int s) { (void)s; got++; }

static void *waiter(void *a) {
  (void)a;
  pthread_mutex_lock(&mu);
  while (!stop) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 10000000;
    if (ts.tv_nsec >= 1000000000) ts.tv_sec++, ts.tv_nsec -= 1000000000;
    pthread_cond_timedwait(&cv, &mu, &ts);
    ticks++;
  }
  pthread_mutex_unlock(&mu);
  return NULL;
}

/* sleeps in the kernel across checkpoints; ended by pthread_cancel (a tgkill to its tid) */
static void *sleeper(void *a) {
  (void)a;
  for (;;) sleep(1000);
  return NULL;
}

int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 50;
  signal(SIGUSR1, on_usr1);
  pthread_t a, b;
  pthread_create(&a, NULL, waiter, NULL);
  pthread_create(&b, NULL, sleeper, NULL);
  for (int i = 1; i <= n; i++) {
    raise(SIGUSR1);
    if (pthread_kill(a, 0) != 0 || pthread_kill(b, 0) != 0) { printf("pthread_kill failed\n"); return 3; }
    printf("step %d pid %d tid-ok ticks>0:%d signals %d\n", i, getpid(), ticks > 0,
           (int)got);
    fflush(stdout);
    struct timespec ts = {0, 50000000};
    nanosleep(&ts, NULL);
  }
  pthread_mutex_lock(&mu);
  stop = 1;
  pthread_cond_broadcast(&cv);
  pthread_mutex_unlock(&mu);
  pthread_cancel(b);
  pthread_join(a, NULL);
  pthread_join(b, NULL);
  printf("joined; signals %d of %d\n", (int)got, n);
  return got == n ? 0 : 1;
}
