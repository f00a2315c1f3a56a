/* fmt.c — small helpers for the checkpoint thread. snprintf and friends may take locale locks
 * that a parked thread could hold, so messages are assembled by hand with mana_fmt.h (the
 * image library's string builder, shared with it); the key=value payloads of the wire
 * protocol are built here. */
#include <time.h>

#include "internal.h"

void fmt_kv_str(struct mana_fmt *f, const char *k, const char *v) {
  mana_fmt_str(f, k);
  mana_fmt_str(f, "=");
  /* values must not contain newlines (wire protocol) */
  for (; v && *v; v++) mana_fmt_c(f, *v == '\n' ? ' ' : *v);
  mana_fmt_str(f, "\n");
}

void fmt_kv_u64(struct mana_fmt *f, const char *k, uint64_t v) {
  mana_fmt_str(f, k);
  mana_fmt_str(f, "=");
  mana_fmt_u64(f, v);
  mana_fmt_str(f, "\n");
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
