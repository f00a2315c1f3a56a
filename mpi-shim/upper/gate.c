/* The application side of the gate when it makes one MPI call at a time (shim_solo, see
   shim.h): no locked instruction per call, the checkpoint thread pays instead with one
   membarrier() per take_lower. An atomic exchange costs about 20 cycles per call on the
   reference machine, a sixth of what a call through mana adds. */
#include <linux/membarrier.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "shim.h"

#define HIDDEN __attribute__((visibility("hidden")))
HIDDEN int shim_solo;
HIDDEN int shim_busy;

/* Registration belongs to the process: a restarted process registers again, so every use
   registers first (cheap, and idempotent). */
static int barrier_all(void) {
  if (syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) != 0) return -1;
  return (int)syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
}

/* Called by MPI_Init_thread with no thread inside the lower half and no checkpoint possible
   yet, so the way in can change. MPI_THREAD_MULTIPLE keeps the lock: mana answers it with
   SERIALIZED, but a program that asked for it may still call from two threads at once. */
void shim_solo_begin(int required) {
  shim_solo = required < MPI_THREAD_MULTIPLE && barrier_all() == 0;
}

int shim_solo_wait(volatile int *giveup) {
  if (!shim_solo) return 0;
  /* the gate is closed: after the barrier, an application thread entering from now on sees
     it, and one that entered before is seen in shim_busy */
  if (barrier_all() != 0) {
    /* a restart on a kernel without membarrier(): a store the application thread made before
       reading the gate leaves its store buffer within microseconds; look again after that */
    struct timespec ts = {0, 1000000};
    while (__atomic_load_n(&shim_busy, __ATOMIC_ACQUIRE)) {
      if (__atomic_load_n(giveup, __ATOMIC_ACQUIRE)) return -1;
      sched_yield();
    }
    nanosleep(&ts, NULL);
  }
  int spins = 0;
  while (__atomic_load_n(&shim_busy, __ATOMIC_ACQUIRE)) {
    /* the application thread is in MPI_Finalize for good (ckpt.c) */
    if (__atomic_load_n(giveup, __ATOMIC_ACQUIRE)) return -1;
    if (++spins < 100) {
      __builtin_ia32_pause();
    } else {
      struct timespec ts = {0, 50000};
      nanosleep(&ts, NULL);
    }
  }
  return 0;
}
