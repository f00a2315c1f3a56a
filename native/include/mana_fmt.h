/* mana_fmt.h — the one string builder without stdio, malloc or locale, shared by the image
 * library (its error messages) and libmana (protocol payloads and messages written while
 * other threads are parked and may hold libc locks). Implemented in image/image_common.c.
 * Internal to native/: not part of the image library's public contract (mana_image.h). */
#ifndef MANA_FMT_H
#define MANA_FMT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Appends into buf[cap], truncating; buf is NUL-terminated after every call (cap > 0). */
struct mana_fmt {
  char *buf;
  size_t cap, len;
};
void mana_fmt_init(struct mana_fmt *f, char *buf, size_t cap);
void mana_fmt_c(struct mana_fmt *f, char c);
void mana_fmt_str(struct mana_fmt *f, const char *s);      /* as is; NULL appends nothing */
void mana_fmt_str_safe(struct mana_fmt *f, const char *s); /* control chars as '?', NULL as "(null)" */
void mana_fmt_u64(struct mana_fmt *f, uint64_t v);         /* decimal */
void mana_fmt_i64(struct mana_fmt *f, int64_t v);          /* decimal, with '-' */
void mana_fmt_x64(struct mana_fmt *f, uint64_t v);         /* 0x-prefixed lowercase hex */

/* Copies a NUL-terminated string (NULL = "") into dst[cap], truncating; returns the length
 * copied. */
size_t mana_img_strlcpy(char *dst, const char *src, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
