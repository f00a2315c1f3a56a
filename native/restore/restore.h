/* restore.h — the parts of mana_restore. */
#ifndef MANA_RESTORE_H
#define MANA_RESTORE_H

#include <stdint.h>

#include "mana_image.h"
#include "mana_ctx.h"
#include "mana_restart.h"

/* The restore program lives in [RESERVED_START, RESERVED_END): linked at the start (see
 * RESTORE_BASE in the Makefile), its bookkeeping allocator further up. Images never have
 * regions here, so the restorer can map the image around itself. */
#define RESERVED_START 0x200000000000ull
#define RESERVED_END 0x210000000000ull
#define ALLOC_BASE 0x208000000000ull
#define ALLOC_SIZE (1ull << 30)
#define VDSO_TEMP 0x20f000000000ull

#define EXIT_RESTART_FAILED 70 /* refused before touching the address space */
#define EXIT_RESTART_BROKEN 71 /* failed after the point of no return */

/* one mapping of the restore program itself */
struct own_map {
  uint64_t start, end;
  char name[32]; /* "[stack]", "[vdso]", ... or "" */
};

extern struct own_map own_maps[256];
extern int n_own_maps;
extern const struct mana_img_alloc bump_alloc;
extern int allow_missing_files;
extern int check_only; /* --check: run the checks, touch nothing, exit 0 or 70 */
extern int skip_mm_map; /* MANA_RESTORE_NO_MM_MAP=1: test the brk fallback */
extern char restart_env[MANA_RESTART_ENV_SIZE];

__attribute__((noreturn, format(printf, 1, 2))) void die(const char *fmt, ...);
__attribute__((noreturn)) void die_late(const char *what, long err);
void warnx1(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* After the point of no return (no stdio, no errno): strings up to a NULL, one line. */
void warn_late(const char *first, ...) __attribute__((sentinel));
const char *late_num(char buf[24], long v);
extern char image_path[4096];

int bump_init(void);
void read_own_maps(void);
const struct own_map *own_map_named(const char *name);

/* map.c */
void check_image(mana_img_reader *r);
/* What will not be as it was, one line each; after every check and the prefill passed. */
void warn_before_restart(mana_img_reader *r);
/* Before the point of no return: maps and fills (verifying) every region whose range is free
 * now; on failure unmaps them again and exits 70. */
void prefill_memory(mana_img_reader *r);
/* After it: the regions that overlapped the restorer's [stack] or the vdso. */
void restore_memory(mana_img_reader *r);
void restore_fds(mana_img_reader *r);
void restore_process_state(mana_img_reader *r);

/* threads.c */
__attribute__((noreturn)) void restore_threads(mana_img_reader *r);
long mana_clone_thread(unsigned long flags, void *stack, int *ptid, int *ctid, unsigned long tls,
                       const void *rthread);

#endif
