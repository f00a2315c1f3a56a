/* stalesig.c — DEV TOOL ONLY: a SUSPEND that times out must not leave the park signal to
 * reach the application later, and the application's own signals of that number must still
 * reach its handler.
 *   stalesig [BLOCK_SECS]   (default 13; SUSPEND times out after 10 s)
 * A thread blocks SIGUSR2 with a raw rt_sigprocmask (bypassing libmana's sigprocmask) for
 * BLOCK_SECS, then unblocks it: a park signal of the failed round would arrive then. Drive it
 * with fake_agent.py SOCK --ckpt /tmp/x.img:1:resume (SUSPEND fails, fake_agent resumes).
 * Then the program sends itself SIGUSR2 with kill, raise and sigqueue, and also once while
 * a thread is blocked (counted after). Exit 0 = the handler ran exactly for the 3 own signals.
 * Build: cc -O2 -Wall -Wextra -pthread -o /tmp/stalesig native/ckpt/devtools/stalesig.c */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static volatile int hits;
static volatile int codes[16];

static void on_usr2(int sig, siginfo_t *si, void *uc) {
  (void)sig;
  (void)uc;
  if (hits < 16) codes[hits] = si->si_code;
  hits++;
}

static long block_secs = 13;

static void *blocker(void *arg) {
  (void)arg;
  unsigned long set = 1ul << (SIGUSR2 - 1), none = 0;
  syscall(SYS_rt_sigprocmask, SIG_BLOCK, &set, NULL, 8);
  sleep((unsigned)block_secs);
  syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, 8);
  sleep(1); /* a pending signal is delivered on the way out of the syscall */
  return NULL;
}

int main(int argc, char **argv) {
  if (argc > 1) block_secs = atol(argv[1]);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_usr2;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigaction(SIGUSR2, &sa, NULL);
  pthread_t t;
  pthread_create(&t, NULL, blocker, NULL);
  pthread_join(t, NULL);
  int stale = hits;
  kill(getpid(), SIGUSR2);
  raise(SIGUSR2);
  union sigval v = {.sival_int = 42};
  sigqueue(getpid(), SIGUSR2, v);
  struct timespec ts = {0, 200000000};
  nanosleep(&ts, NULL);
  printf("stalesig: %d stale signal(s) before, %d handler call(s) in all (codes", stale, hits);
  for (int i = 0; i < hits && i < 16; i++) printf(" %d", codes[i]);
  printf(")\n");
  return stale == 0 && hits == 3 ? 0 : 1;
}
