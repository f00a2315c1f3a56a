/* protnone.c — DEV TOOL ONLY: data in private anonymous regions without PROT_READ must
 * survive a checkpoint (resume and restart), and the regions must keep their protection.
 *   protnone STEPS [SLEEP_MS]
 * Fills a 3 MiB region with a pattern and makes it PROT_NONE, a 1 MiB region write-only and a
 * 64 KiB region exec-only (both filled first), and reserves 64 MiB PROT_NONE never touched.
 * Then sleeps STEPS x SLEEP_MS (checkpoint / kill / restart meanwhile), checks in
 * /proc/self/maps that each region still has its protection, mprotects them readable and
 * checks the pattern. Exit 0 = all good, 1 = wrong protection, 2 = wrong data.
 * Build: cc -O2 -Wall -Wextra -o /tmp/protnone native/ckpt/devtools/protnone.c */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

struct reg {
  const char *name;
  size_t size;
  int prot;
  const char *perms; /* as /proc/self/maps shows it */
  int fill;
  unsigned char *p;
};

static struct reg regs[] = {
    {"prot_none", 3u << 20, PROT_NONE, "---p", 1, NULL},
    {"write_only", 1u << 20, PROT_WRITE, "-w-p", 1, NULL},
    {"exec_only", 64u << 10, PROT_EXEC, "--xp", 1, NULL},
    {"reserve", 64u << 20, PROT_NONE, "---p", 0, NULL},
};
#define NREG (sizeof regs / sizeof regs[0])

static unsigned char pat(size_t r, size_t i) { return (unsigned char)(i * 31 + r * 7 + (i >> 12)); }

static const char *perms_of(void *addr) {
  static char line[512], perms[8];
  FILE *f = fopen("/proc/self/maps", "r");
  if (!f) return "?";
  perms[0] = 0;
  while (fgets(line, sizeof line, f)) {
    unsigned long s, e;
    if (sscanf(line, "%lx-%lx %7s", &s, &e, perms) == 3 && (unsigned long)addr >= s &&
        (unsigned long)addr < e)
      break;
    perms[0] = 0;
  }
  fclose(f);
  return perms;
}

int main(int argc, char **argv) {
  long steps = argc > 1 ? atol(argv[1]) : 100;
  long ms = argc > 2 ? atol(argv[2]) : 50;
  for (size_t r = 0; r < NREG; r++) {
    struct reg *g = &regs[r];
    /* a guard page on each side keeps the kernel from merging the regions */
    unsigned char *p = mmap(NULL, g->size + 8192, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) return 3;
    munmap(p, 4096);
    munmap(p + 4096 + g->size, 4096);
    g->p = p + 4096;
    if (g->fill) {
      for (size_t i = 0; i < g->size; i++) g->p[i] = pat(r, i);
      /* leave one page untouched in the middle: it must come back as zeros */
      memset(g->p + g->size / 2, 0, 4096);
    }
    if (mprotect(g->p, g->size, g->prot) != 0) return 3;
  }
  for (long i = 0; i < steps; i++) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
  }
  int rc = 0;
  for (size_t r = 0; r < NREG; r++) {
    struct reg *g = &regs[r];
    const char *pp = perms_of(g->p);
    if (strcmp(pp, g->perms) != 0) {
      fprintf(stderr, "protnone: %s at %p has perms %s, expected %s\n", g->name, (void *)g->p,
              pp, g->perms);
      rc = 1;
    }
    mprotect(g->p, g->size, PROT_READ);
    for (size_t i = 0; i < g->size; i++) {
      unsigned char want = g->fill && (i < g->size / 2 || i >= g->size / 2 + 4096) ? pat(r, i) : 0;
      if (g->p[i] != want) {
        fprintf(stderr, "protnone: %s byte %zu is %u, expected %u\n", g->name, i, g->p[i], want);
        if (!rc) rc = 2;
        break;
      }
    }
  }
  printf("protnone: %s\n", rc ? "FAILED" : "all regions intact");
  return rc;
}
