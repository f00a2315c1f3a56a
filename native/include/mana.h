/* mana.h — optional application API of the mana checkpointer (libmana.so).
 *
 * Every function is declared weak: a program built against this header runs unchanged without
 * mana (no -lmana needed). Call them through the mana_* inline wrappers below, which return 0
 * (or -1 with errno ENOSYS for mana_checkpoint) when libmana is not loaded. Under mana
 * launch, libmana (LD_PRELOADed) provides the real functions.
 */
#ifndef MANA_H
#define MANA_H

#ifdef __cplusplus
extern "C" {
#endif

#define MANA_CHECKPOINTED 1 /* mana_checkpoint: the checkpoint was committed, running on */
#define MANA_RESTARTED 2    /* mana_checkpoint: this process was restarted from it */

/* 1 when this process runs under mana (libmana loaded and connected to an agent), else 0. */
int mana_is_enabled(void) __attribute__((weak));
/* Asks the coordinator for a checkpoint of the whole job and returns after it:
 * MANA_CHECKPOINTED in the original process, MANA_RESTARTED in a process restarted from that
 * checkpoint, -1 with errno when not managed (ENOSYS), or when the checkpoint failed (EIO; the
 * reason is in the coordinator's log). Must not be called with checkpoints disabled. */
int mana_checkpoint(void) __attribute__((weak));
/* Nestable: while disabled (more disable than enable calls), a checkpoint waits, bounded by
 * the coordinator's phase timeout. Return 0. */
int mana_disable_ckpt(void) __attribute__((weak));
int mana_enable_ckpt(void) __attribute__((weak));

#ifdef __cplusplus
}
#endif

/* Safe to call with or without libmana. */
#include <errno.h>
static inline int mana_api_is_enabled(void) { return mana_is_enabled ? mana_is_enabled() : 0; }
static inline int mana_api_checkpoint(void) {
  if (!mana_checkpoint) {
    errno = ENOSYS;
    return -1;
  }
  return mana_checkpoint();
}
static inline int mana_api_disable_ckpt(void) { return mana_disable_ckpt ? mana_disable_ckpt() : 0; }
static inline int mana_api_enable_ckpt(void) { return mana_enable_ckpt ? mana_enable_ckpt() : 0; }
#endif
