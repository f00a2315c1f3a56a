/* image_internal.h — shared by the image writer and reader; not part of the public contract.
 *
 * Everything here must stay usable from a checkpoint thread whose siblings may hold libc
 * locks, and from the static restore program: no malloc, no stdio, no locale. */
#ifndef MANA_IMAGE_INTERNAL_H
#define MANA_IMAGE_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "mana_fmt.h"
#include "mana_image.h"

/* zstd's allocation hooks, routed to a mana_img_alloc. */
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>

#define MANA_PATH_MAX 4096

/* The image format is only defined for these sizes; a change is a format version bump. */
_Static_assert(sizeof(struct mana_img_header) <= MANA_IMG_HEADER_SIZE, "header fits its slot");
_Static_assert(sizeof(struct mana_img_thread) == 104, "thread record size is part of format v1");
_Static_assert(sizeof(struct mana_img_region) == 64, "region record size is part of format v1");
_Static_assert(sizeof(struct mana_img_chunk) == 32, "chunk record size is part of format v1");
_Static_assert(sizeof(struct mana_img_fd) == 40, "fd record size is part of format v1");
_Static_assert(sizeof(struct mana_img_meta) == 40, "meta record size is part of format v1");

/* Index of the chunk of r that starts at addr and covers raw_len bytes (what a MANA_C_PARENT
 * chunk of a child refers to), or -1. *hint speeds up ascending lookups (start with 0). */
int64_t mana_imgr_find_chunk(const mana_img_reader *r, uint64_t addr, uint32_t raw_len,
                             uint64_t *hint);

/* Formats a one-line message into err (MANA_IMG_ERRLEN bytes, truncated, never overflows).
 * Specifiers (arguments must have exactly these types):
 *   %s const char * (control characters shown as '?', so a path cannot break the line)
 *   %u uint64_t decimal     %x uint64_t as 0x-hex     %d int decimal
 *   %e int errno, as its English description
 *   %R const struct mana_img_region *, const char *path: "region 0x..-0x.. (kind path)"
 *   %% a percent sign
 * Returns -1 so that callers can `return mana_img_err(...)`. err may be NULL. */
int mana_img_err(char *err, const char *fmt, ...);
int mana_img_verr(char *err, const char *fmt, va_list ap);

/* Nonzero if all n bytes at p are zero; stops at the first nonzero word. */
int mana_img_is_zero(const void *p, size_t n);

/* zstd customMem over a mana_img_alloc: each block carries its size in a 16-byte prefix
 * because zstd frees without a size. `a` must outlive the zstd context. */
ZSTD_customMem mana_img_zstd_mem(const struct mana_img_alloc *a);

/* A growable byte array in allocator memory (doubles; for the metadata arrays). */
struct mana_vec {
  unsigned char *p;
  size_t len, cap;
};
/* Appends n bytes from src, or n zero bytes when src is NULL. */
int mana_vec_append(struct mana_vec *v, const struct mana_img_alloc *a, const void *src,
                    size_t n);
void mana_vec_free(struct mana_vec *v, const struct mana_img_alloc *a);

/* mana_img_strlcpy and the string builder live in mana_fmt.h (libmana uses them too). */

/* Forces a NUL at the end of every string field of info (writer before writing, reader after
 * reading: a reader's strlen must stay inside the field). */
void mana_img_info_terminate(struct mana_img_info *in);

/* pread/pwrite of exactly n bytes, retrying on EINTR and short transfers. Return 0 when
 * done, -1 with errno set on error, and for pread 1 when end of file came first. */
int mana_img_pread_full(int fd, void *buf, size_t n, uint64_t off);
int mana_img_pwrite_full(int fd, const void *buf, size_t n, uint64_t off);
/* pwritev of everything in iov[0..n) at off; consumes (modifies) the iovec array. */
struct iovec;
int mana_img_pwritev_full(int fd, struct iovec *iov, int n, uint64_t off);
/* XXH3-64 of the concatenation of the n spans (the metadata block is written as spans). */
uint64_t mana_img_hash_iov(const struct iovec *iov, int n);

#endif
