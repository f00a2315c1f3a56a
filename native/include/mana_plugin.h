/* mana_plugin.h — how a library inside a managed process takes part in checkpoints.
 *
 * The checkpointer knows nothing about MPI; the MPI shim (mpi-shim/) is a client of these
 * events, as DMTCP plugins are of DMTCP's. A plugin registers once (at any time, from any
 * thread; libmana may be absent: look the function up with dlsym(RTLD_DEFAULT, ...)).
 * Every callback runs on libmana's checkpoint thread, in this order:
 *
 *   checkpoint:  presuspend → (all other threads parked) → exclude_ranges, exclude_tids →
 *                image written → resume                       (the same process goes on)
 *   restart:     restart (in the restored process, before any application thread runs
 *                again; the lower half and everything excluded is gone) → resume
 *
 * presuspend may take its time and talk to other processes (an MPI drain); it runs while
 * the application's threads still run. Returning non-zero abandons this checkpoint (the
 * generation fails with err as its reason; resume is still called so the plugin can reopen
 * whatever it closed). exclude_tids is asked before threads are parked: the threads listed
 * are neither signalled nor saved (they must not run upper-half code; the lower half's
 * threads block every signal). exclude_ranges lists memory that is not saved: the image
 * leaves these byte ranges out even when they share a /proc/self/maps line with saved memory.
 */
#ifndef MANA_PLUGIN_H
#define MANA_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* 2 added exclude_fds */
#define MANA_PLUGIN_VERSION 2

struct mana_plugin {
  int version; /* MANA_PLUGIN_VERSION (1: without exclude_fds) */
  const char *name;
  /* 0 to go on, non-zero (with a one-line reason in err) to abandon this checkpoint */
  int (*presuspend)(char *err, size_t errlen);
  /* fills out[i][0..1] with [start, end); returns the count (more than max: call again) */
  int (*exclude_ranges)(uint64_t (*out)[2], int max);
  /* fills out with kernel tids; returns the count */
  int (*exclude_tids)(int32_t *out, int max);
  /* after the image is written (restarted = 0) or after a restart (restarted = 1) */
  void (*resume)(int restarted);
  /* in the restored process, before resume(1): env is the environment the restore program
     was started with (the new launcher's), NULL-terminated; 0 or non-zero with err: the
     process then exits with that line, status 71 */
  int (*restart)(char *const *env, char *err, size_t errlen);
  /* fills out with file descriptors that are not saved (the lower half's sockets, ...);
     returns the count. Asked while the other threads are parked. May be NULL. */
  int (*exclude_fds)(int32_t *out, int max);
};

/* 0, or -1 when libmana is inert (not under mana) or already has a plugin of that name */
int mana_plugin_register(const struct mana_plugin *p);

#ifdef __cplusplus
}
#endif
#endif
