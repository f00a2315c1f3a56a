/* alloc.c — the image reader's allocator in the restore program: a bump allocator over one
 * reservation inside the restorer's own address range, so nothing it hands out can collide
 * with the image's regions. */
#include <errno.h>
#include <stddef.h>
#include <sys/mman.h>

#include "rawsys.h"
#include "restore.h"

static uint64_t top = ALLOC_BASE;

static void *bump(void *ctx, size_t size) {
  (void)ctx;
  size = (size + 63) & ~(size_t)63;
  if (top + size > ALLOC_BASE + ALLOC_SIZE) return NULL;
  void *p = (void *)top;
  top += size;
  return p;
}

static void unbump(void *ctx, void *ptr, size_t size) {
  (void)ctx;
  size = (size + 63) & ~(size_t)63;
  if ((uint64_t)ptr + size == top) top -= size; /* only the most recent block comes back */
}

const struct mana_img_alloc bump_alloc = {bump, unbump, NULL};

int bump_init(void) {
  long p = raw_syscall6(SYS_mmap, ALLOC_BASE, ALLOC_SIZE, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
  if (p < 0) {
    errno = (int)-p;
    return -1;
  }
  return 0;
}
