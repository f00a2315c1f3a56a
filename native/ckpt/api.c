/* api.c — the application API of mana.h: mana_checkpoint, mana_disable_ckpt/enable_ckpt.
 * (mana_is_enabled lives in init.c.) */
#include <errno.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>

#include "internal.h"
#include "mana_wire.h"
#include "rawsys.h"

volatile int mana_api_disabled;
volatile int mana_api_gate;
volatile uint64_t mana_api_reply_seq;
volatile int mana_api_reply_ok;
static volatile uint64_t request_seq;

#define MANA_CHECKPOINTED 1
#define MANA_RESTARTED 2

static void nap(void) {
  struct timespec ts = {0, 1000000}; /* 1 ms: these waits last a checkpoint, not a hot loop */
  raw_syscall2(SYS_nanosleep, &ts, 0);
}

/* The checkpoint thread sets the gate, then waits for the count to drop to 0; a thread that
 * finds the gate set backs out and waits, so no thread enters a critical section once the
 * checkpoint thread has seen the count at 0 (both sides use sequentially consistent
 * atomics: one of them always sees the other's write). */
int mana_disable_ckpt(void) {
  if (!mana_cfg.enabled) return 0;
  for (;;) {
    __atomic_add_fetch(&mana_api_disabled, 1, __ATOMIC_SEQ_CST);
    if (!__atomic_load_n(&mana_api_gate, __ATOMIC_SEQ_CST)) return 0;
    __atomic_sub_fetch(&mana_api_disabled, 1, __ATOMIC_SEQ_CST);
    while (__atomic_load_n(&mana_api_gate, __ATOMIC_SEQ_CST)) nap();
  }
}

int mana_enable_ckpt(void) {
  if (!mana_cfg.enabled) return 0;
  if (__atomic_sub_fetch(&mana_api_disabled, 1, __ATOMIC_SEQ_CST) < 0)
    __atomic_store_n(&mana_api_disabled, 0, __ATOMIC_SEQ_CST); /* unbalanced enable: ignore */
  return 0;
}

int mana_checkpoint(void) {
  if (!mana_cfg.enabled) {
    errno = ENOSYS;
    return -1;
  }
  uint32_t restarts = __atomic_load_n(&mana_restart_info.restarted, __ATOMIC_ACQUIRE);
  uint64_t seq = __atomic_add_fetch(&request_seq, 1, __ATOMIC_SEQ_CST);
  char buf[64];
  struct mana_fmt f;
  mana_fmt_init(&f, buf, sizeof buf);
  fmt_kv_u64(&f, "request", seq);
  if (mana_send_from_app(MANA_MSG_CKPT_REQUEST, buf) != 0) {
    errno = ENOTCONN;
    return -1;
  }
  /* This thread is parked while the image is written; a restarted process resumes it right
   * here, with the restore program's count of restarts one higher. */
  for (;;) {
    if (__atomic_load_n(&mana_restart_info.restarted, __ATOMIC_ACQUIRE) != restarts)
      return MANA_RESTARTED;
    if (__atomic_load_n(&mana_api_reply_seq, __ATOMIC_ACQUIRE) >= seq) {
      if (__atomic_load_n(&mana_api_reply_ok, __ATOMIC_ACQUIRE)) return MANA_CHECKPOINTED;
      errno = EIO;
      return -1;
    }
    if (mana_sock_fd < 0) { /* the agent went away: no answer will come */
      errno = ENOTCONN;
      return -1;
    }
    nap();
  }
}
