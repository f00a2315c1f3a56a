/* sig.c — keeps the application from taking over or blocking the checkpoint signal.
 * Its handler for that signal is virtual: stored, reported back, and called if the signal
 * arrives while no checkpoint is in progress. */
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <string.h>

#include "internal.h"

typedef int (*sigaction_fn)(int, const struct sigaction *, struct sigaction *);
typedef sighandler_t (*signal_fn)(int, sighandler_t);
typedef int (*sigmask_fn)(int, const sigset_t *, sigset_t *);

static sigaction_fn real_sigaction;
static signal_fn real_signal;
static sigmask_fn real_sigprocmask;
static sigmask_fn real_pthread_sigmask;

static struct sigaction virt_action; /* the application's action for the checkpoint signal */

static void resolve(void) {
  if (!real_sigaction) real_sigaction = (sigaction_fn)dlsym(RTLD_NEXT, "sigaction");
  if (!real_signal) real_signal = (signal_fn)dlsym(RTLD_NEXT, "signal");
  if (!real_sigprocmask) real_sigprocmask = (sigmask_fn)dlsym(RTLD_NEXT, "sigprocmask");
  if (!real_pthread_sigmask)
    real_pthread_sigmask = (sigmask_fn)dlsym(RTLD_NEXT, "pthread_sigmask");
}

int mana_real_sigaction(int sig, const struct sigaction *act, struct sigaction *old) {
  resolve();
  return real_sigaction(sig, act, old);
}

void mana_sig_forward(int sig, siginfo_t *si, void *uc) {
  struct sigaction a = virt_action;
  if (a.sa_flags & SA_SIGINFO) {
    if (a.sa_sigaction) a.sa_sigaction(sig, si, uc);
  } else if (a.sa_handler != SIG_DFL && a.sa_handler != SIG_IGN && a.sa_handler) {
    a.sa_handler(sig);
  }
  /* SIG_DFL of SIGUSR2 would kill the process; while managed the signal is simply dropped */
}

static int is_ours(int sig) { return mana_cfg.enabled && sig == mana_cfg.ckpt_signal; }

int sigaction(int sig, const struct sigaction *act, struct sigaction *old) {
  resolve();
  if (!is_ours(sig)) return real_sigaction(sig, act, old);
  if (old) *old = virt_action;
  if (act) virt_action = *act;
  return 0;
}

sighandler_t signal(int sig, sighandler_t h) {
  resolve();
  if (!is_ours(sig)) return real_signal(sig, h);
  if (h == SIG_ERR) {
    errno = EINVAL;
    return SIG_ERR;
  }
  sighandler_t prev = (virt_action.sa_flags & SA_SIGINFO) ? (sighandler_t)(void (*)(void))virt_action.sa_sigaction
                                                           : virt_action.sa_handler;
  memset(&virt_action, 0, sizeof virt_action);
  virt_action.sa_handler = h;
  virt_action.sa_flags = SA_RESTART;
  return prev;
}

static const sigset_t *filter(int how, const sigset_t *set, sigset_t *copy) {
  if (!mana_cfg.enabled || !set || how == SIG_UNBLOCK) return set;
  *copy = *set;
  sigdelset(copy, mana_cfg.ckpt_signal);
  return copy;
}

int sigprocmask(int how, const sigset_t *set, sigset_t *old) {
  resolve();
  sigset_t copy;
  return real_sigprocmask(how, filter(how, set, &copy), old);
}

int pthread_sigmask(int how, const sigset_t *set, sigset_t *old) {
  resolve();
  sigset_t copy;
  return real_pthread_sigmask(how, filter(how, set, &copy), old);
}

int mana_real_sigmask(int how, const sigset_t *set, sigset_t *old) {
  resolve();
  return real_pthread_sigmask(how, set, old);
}
