/* sigcheck — pending signals and timers across a checkpoint (a plain C program that knows
 * nothing of mana).
 *
 *   sigcheck OUT STEPS SLEEP_MS
 *
 * At the start: SIGUSR1 is blocked in every thread and sent to the process (process-directed,
 * pending); a worker thread blocks SIGWINCH and gets one with pthread_kill (thread-directed,
 * pending); ITIMER_REAL fires once at 1.5 s; a POSIX timer (CLOCK_MONOTONIC, SIGRTMIN) fires
 * once at 2 s; a second POSIX timer (CLOCK_REALTIME, SIGEV_NONE) and ITIMER_VIRTUAL are armed
 * far in the future with an interval. Then STEPS steps of SLEEP_MS (checkpoints land here).
 * At the end it reports, deterministically: what is still pending, the timers' intervals
 * (kept) and ids (unchanged), then unblocks and waits for every signal to be handled.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t got_usr1, got_winch, got_alrm, got_rt;

static void on_sig(int sig) {
  if (sig == SIGUSR1) got_usr1++;
  else if (sig == SIGWINCH) got_winch++;
  else if (sig == SIGALRM) got_alrm++;
  else if (sig == SIGRTMIN) got_rt++;
}

static void nap(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

static volatile int worker_go, worker_done;
static int worker_pending_winch;

static void *worker(void *arg) {
  (void)arg;
  while (!worker_go) nap(1);
  sigset_t s;
  sigpending(&s);
  worker_pending_winch = sigismember(&s, SIGWINCH);
  sigset_t w;
  sigemptyset(&w);
  sigaddset(&w, SIGWINCH);
  pthread_sigmask(SIG_UNBLOCK, &w, NULL);
  for (int i = 0; i < 2000 && !got_winch; i++) nap(1);
  worker_done = 1;
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: sigcheck OUT STEPS SLEEP_MS\n");
    return 2;
  }
  FILE *out = fopen(argv[1], "w");
  if (!out) return 99;
  long steps = atol(argv[2]), ms = atol(argv[3]);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sig;
  int sigs[] = {SIGUSR1, SIGWINCH, SIGALRM, SIGRTMIN};
  for (int i = 0; i < 4; i++) sigaction(sigs[i], &sa, NULL);

  sigset_t b;
  sigemptyset(&b);
  sigaddset(&b, SIGUSR1);
  sigaddset(&b, SIGWINCH);
  pthread_sigmask(SIG_BLOCK, &b, NULL); /* the worker inherits both */
  pthread_t th;
  pthread_create(&th, NULL, worker, NULL);
  sigdelset(&b, SIGUSR1);
  pthread_sigmask(SIG_UNBLOCK, &b, NULL); /* main: only SIGUSR1 blocked */
  kill(getpid(), SIGUSR1);
  pthread_kill(th, SIGWINCH);

  struct itimerval real = {{0, 0}, {1, 500000}};
  setitimer(ITIMER_REAL, &real, NULL);
  struct itimerval virt = {{7, 0}, {1000, 0}};
  setitimer(ITIMER_VIRTUAL, &virt, NULL);
  struct sigevent sev;
  memset(&sev, 0, sizeof sev);
  sev.sigev_notify = SIGEV_SIGNAL;
  sev.sigev_signo = SIGRTMIN;
  timer_t t1, t2;
  timer_create(CLOCK_MONOTONIC, &sev, &t1);
  struct itimerspec once = {{0, 0}, {2, 0}};
  timer_settime(t1, 0, &once, NULL);
  sev.sigev_notify = SIGEV_NONE;
  timer_create(CLOCK_REALTIME, &sev, &t2);
  struct itimerspec far = {{0, 250000000}, {3600, 0}};
  timer_settime(t2, 0, &far, NULL);
  fprintf(out, "armed\n");
  fflush(out);

  for (long i = 0; i < steps; i++) {
    fprintf(out, "step %ld\n", i);
    fflush(out);
    nap(ms);
  }

  sigset_t p;
  sigpending(&p);
  fprintf(out, "pending SIGUSR1 %d\n", sigismember(&p, SIGUSR1));
  struct itimerval v;
  getitimer(ITIMER_VIRTUAL, &v);
  fprintf(out, "ITIMER_VIRTUAL interval %ld.%06ld armed %d\n", (long)v.it_interval.tv_sec,
          (long)v.it_interval.tv_usec, v.it_value.tv_sec > 0);
  struct itimerspec s2;
  int rc = timer_gettime(t2, &s2);
  fprintf(out, "timer2 gettime %d interval %ld.%09ld armed %d\n", rc, (long)s2.it_interval.tv_sec,
          s2.it_interval.tv_nsec, s2.it_value.tv_sec > 0);
  worker_go = 1;
  pthread_sigmask(SIG_UNBLOCK, &(sigset_t){0}, NULL);
  sigset_t u;
  sigemptyset(&u);
  sigaddset(&u, SIGUSR1);
  pthread_sigmask(SIG_UNBLOCK, &u, NULL);
  for (int i = 0; i < 5000 && !(got_alrm && got_rt && got_usr1 && worker_done); i++) nap(1);
  pthread_join(th, NULL);
  fprintf(out, "worker saw SIGWINCH pending %d\n", worker_pending_winch);
  fprintf(out, "handled SIGUSR1 %d SIGWINCH %d SIGALRM %d timer1 %d\n", (int)got_usr1,
          (int)got_winch, (int)got_alrm, (int)got_rt);
  fclose(out);
  return 0;
}
