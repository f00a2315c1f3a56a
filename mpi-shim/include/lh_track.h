/* lh_track: what memory and which threads belong to the lower half.
 *
 * lh_track.so is preloaded first into the lower world (the second ld.so instance that runs
 * lh_proxy and the real libmpi).  It interposes mmap/mmap64/munmap/mremap/shmat/shmdt,
 * syscall() for those five calls, pthread_create and the pthread join/detach calls, and
 * answers, at checkpoint time, "which address ranges and which kernel threads are the lower
 * half's?"  Everything it does not report belongs to the upper half
 * (DESIGN.md §2 invariant 1: unknown memory is saved, never dropped), so it errs on the side of
 * reporting less, never more.
 *
 * The interface uses fixed-width C types only, so the upper half can call it through the
 * lower half's entry table without sharing any libc structure.  Call it with the lower half's
 * thread pointer in FS (lh_track_ranges and lh_track_contains walk the lower ld.so's link map
 * with dl_iterate_phdr); lh_track_tids only reads lh_track's own tables.
 */
#ifndef LH_TRACK_H
#define LH_TRACK_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* lh_range.kind (the table merges neighbours of the same kind and prot, as the kernel does) */
enum {
    LH_RANGE_MMAP   = 1, /* made by mmap/mremap/shmat called from the lower world          */
    LH_RANGE_STACK  = 2, /* a thread stack (with its guard page) allocated by lh_track     */
    LH_RANGE_OBJECT = 3, /* a PT_LOAD segment (or the hole between two) of a loaded object */
    LH_RANGE_TABLE  = 4  /* lh_track's own range table                                      */
};

/* lh_range.prot: the PROT_* bits (READ 1, WRITE 2, EXEC 4) the range was created with (later
 * mprotect calls are not followed), plus these flags: */
#define LH_PROT_MASK   0xffu
#define LH_MAP_SHARED  0x100u /* MAP_SHARED or a SysV segment: its contents live outside     */
#define LH_MAP_FILE    0x200u /* backed by a file descriptor (includes /dev/shm segments)    */
#define LH_MAP_SYSV    0x400u /* attached with shmat                                         */

struct lh_range {
    uint64_t start, end; /* [start, end), page aligned */
    uint32_t kind;       /* LH_RANGE_* */
    uint32_t prot;       /* PROT_* | LH_MAP_* */
};

/* Fill out[0..max) with every lower-half range: tracked mappings and thread stacks, every loaded
 * object's PT_LOAD segments (ld.so, libc, libmpi, lh_track, the main program; not the vDSO,
 * which the kernel maps once for both halves) and the tracker's table.  Sorted by start;
 * overlapping ranges are merged into one (kind of the lower start, prot OR-ed).  Returns how
 * many ranges there are.  If that is more than max, out holds an unspecified subset: retry
 * with at least the returned count (plus slack: the lower world keeps running).  -1 on error. */
int lh_track_ranges(struct lh_range *out, int max);

/* Kernel tids of the live threads started through pthread_create in the lower world (every
 * one of them runs with all signals blocked but glibc's SIGCANCEL).  Returns the count; out
 * as for lh_track_ranges.  A tid is listed from the moment pthread_create returns until the
 * kernel has reaped the thread (after its start routine returned or it called pthread_exit). */
int lh_track_tids(int32_t *out, int max);

/* 1 if addr lies in any range lh_track_ranges would report, else 0. */
int lh_track_contains(uint64_t addr);

/* File descriptors the lower world opened through libc and has not closed. Returns the count. */
int lh_track_fds(int32_t *out, int max);

/* How many times the tracker had to forget a range because its table could not grow (each
 * such range is then reported as upper-half memory: safe, but a bug worth knowing about). */
uint64_t lh_track_dropped(void);

#ifdef __cplusplus
}
#endif
#endif
