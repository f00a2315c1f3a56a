/* fmt.c — tiny string helpers for the checkpoint thread. snprintf and friends may take
 * locale locks that a parked thread could hold, so messages are assembled by hand. */
#include <time.h>

#include "internal.h"

void fmt_init(struct fmt *f, char *buf, size_t cap) {
  f->buf = buf;
  f->cap = cap;
  f->len = 0;
  if (cap) buf[0] = 0;
}

void fmt_str(struct fmt *f, const char *s) {
  while (s && *s && f->len + 1 < f->cap) f->buf[f->len++] = *s++;
  if (f->cap) f->buf[f->len] = 0;
}

void fmt_u64(struct fmt *f, uint64_t v) {
  char tmp[24];
  int n = 0;
  do {
    tmp[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  char out[24];
  for (int i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
  out[n] = 0;
  fmt_str(f, out);
}

void fmt_x64(struct fmt *f, uint64_t v) {
  char out[20];
  int n = 0;
  char tmp[16];
  do {
    tmp[n++] = "0123456789abcdef"[v & 15];
    v >>= 4;
  } while (v);
  for (int i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
  out[n] = 0;
  fmt_str(f, out);
}

void fmt_i64(struct fmt *f, int64_t v) {
  if (v < 0) {
    fmt_str(f, "-");
    fmt_u64(f, (uint64_t)(-(v + 1)) + 1);
  } else {
    fmt_u64(f, (uint64_t)v);
  }
}

void fmt_kv_str(struct fmt *f, const char *k, const char *v) {
  fmt_str(f, k);
  fmt_str(f, "=");
  /* values must not contain newlines (wire protocol) */
  while (v && *v && f->len + 1 < f->cap) {
    f->buf[f->len++] = (*v == '\n') ? ' ' : *v;
    v++;
  }
  f->buf[f->len] = 0;
  fmt_str(f, "\n");
}

void fmt_kv_u64(struct fmt *f, const char *k, uint64_t v) {
  fmt_str(f, k);
  fmt_str(f, "=");
  fmt_u64(f, v);
  fmt_str(f, "\n");
}

int mana_streq(const char *a, const char *b) {
  while (*a && *a == *b) a++, b++;
  return *a == *b;
}

int mana_strneq(const char *a, const char *b, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (a[i] != b[i]) return 0;
    if (!a[i]) return 1;
  }
  return 1;
}

size_t mana_strlen(const char *s) {
  size_t n = 0;
  while (s[n]) n++;
  return n;
}

void mana_strlcpy(char *dst, const char *src, size_t cap) {
  size_t i = 0;
  if (!cap) return;
  for (; src[i] && i + 1 < cap; i++) dst[i] = src[i];
  dst[i] = 0;
}

int mana_parse_u64(const char *s, const char **end, uint64_t *out, int base) {
  uint64_t v = 0;
  int any = 0;
  for (;; s++) {
    int d;
    if (*s >= '0' && *s <= '9') d = *s - '0';
    else if (base == 16 && *s >= 'a' && *s <= 'f') d = *s - 'a' + 10;
    else if (base == 16 && *s >= 'A' && *s <= 'F') d = *s - 'A' + 10;
    else break;
    v = v * (uint64_t)base + (uint64_t)d;
    any = 1;
  }
  if (end) *end = s;
  *out = v;
  return any ? 0 : -1;
}

void mana_msleep(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

uint64_t mana_now_ns(int clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
