/* mana_restart.h — what the restore program hands to the restored libmana.
 *
 * libmana keeps one struct mana_restart_info in its data; its address is recorded in the image
 * header (info.restart_info_addr). After mapping the image, the restore program fills it in
 * before it resumes any thread, because the restored process must use the environment of the
 * restart (new agent socket, new host), never the environment saved in its own memory.
 */
#ifndef MANA_RESTART_H
#define MANA_RESTART_H

#include <stdint.h>

#define MANA_RESTART_MAGIC 0x5453524d414e414dull /* "MANAMRST" */
#define MANA_RESTART_MAX_UNMAP 16
#define MANA_RESTART_ENV_SIZE 8192

struct mana_restart_info {
  uint64_t magic;        /* MANA_RESTART_MAGIC once filled in by the restore program */
  uint32_t restarted;    /* number of restarts this process has been through */
  uint32_t new_pid;
  uint64_t generation;   /* generation of the image restored */
  /* ranges the restore program leaves mapped (its text, data, heap, stack, bookkeeping):
   * the restored checkpoint thread munmaps them once every thread has left restorer code */
  uint32_t n_unmap;
  uint32_t threads_out;  /* incremented (atomically) by each restored thread once it runs
                            libmana code again */
  uint64_t unmap[MANA_RESTART_MAX_UNMAP][2]; /* [start, end) */
  /* when the restore program could not hand the kernel brk back to the image (no
   * PR_SET_MM_MAP), the kernel brk still ends inside the restorer's range: the checkpoint
   * thread maps one PROT_NONE page here so that sbrk fails and glibc's malloc uses mmap,
   * instead of growing a heap where the next restore program must live. 0 = nothing to do.
   * libmana leaves this page out of later images. */
  uint64_t brk_guard;
  /* MANA_* and other variables of the restart environment, "KEY=VALUE\0KEY=VALUE\0\0" */
  char env[MANA_RESTART_ENV_SIZE];
};

#endif
