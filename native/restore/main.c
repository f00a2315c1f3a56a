/* main.c — mana_restore [--allow-missing-files] [--check] IMAGE
 *
 * Rebuilds a checkpointed process inside this process: everything that can fail for a
 * reason the user can fix is checked before the point of no return (exit 70 with one line
 * on stderr); after it, the address space is the image's and failure is fatal (exit 71).
 * --check runs those checks only and exits 0 (silently) or 70 (the same line).
 *
 * MPI restart: an MPI launcher starts this program once per rank with the same arguments,
 * so "%r" in IMAGE stands for the rank, zero-padded to 5 digits as in rank-NNNNN.img; the
 * rank is the first of PMI_RANK (Hydra), OMPI_COMM_WORLD_RANK (Open MPI), PMIX_RANK,
 * SLURM_PROCID (srun; only inside a job step) that is set. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "rawsys.h"
#include "restore.h"

struct own_map own_maps[256];
int n_own_maps;
int allow_missing_files;
int check_only;
char restart_env[MANA_RESTART_ENV_SIZE];

char image_path[4096];
/* the restorer runs on this stack so that it can unmap the kernel-provided [stack] */
static char stack[1 << 20] __attribute__((aligned(64)));

/* One line "mana restart: PREFIX..." on stderr (before the point of no return only: stdio). */
static void say(const char *prefix, const char *fmt, va_list ap) {
  char buf[1024];
  vsnprintf(buf, sizeof buf, fmt, ap);
  fprintf(stderr, "mana restart: %s%s\n", prefix, buf);
  fflush(stderr);
}

void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  say("", fmt, ap);
  va_end(ap);
  _exit(EXIT_RESTART_FAILED);
}

void warnx1(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  say("warning: ", fmt, ap);
  va_end(ap);
}

/* After the point of no return stdio's buffers may be gone, the vdso moved and FS (with errno)
 * switched: these write the line themselves with one raw write(2). */
const char *late_num(char buf[24], long v) {
  char t[24];
  int k = 0;
  unsigned long u = (unsigned long)(v < 0 ? -v : v);
  do t[k++] = (char)('0' + u % 10); while ((u /= 10) && k < 21);
  int n = 0;
  if (v < 0) buf[n++] = '-';
  while (k) buf[n++] = t[--k];
  buf[n] = 0;
  return buf;
}

void warn_late(const char *first, ...) {
  char buf[1024];
  size_t n = 0;
  const char *lead = "mana restart: warning: ";
  for (const char *p = lead; *p; p++) buf[n++] = *p;
  va_list ap;
  va_start(ap, first);
  for (const char *s = first; s; s = va_arg(ap, const char *))
    for (; *s && n < sizeof buf - 1; s++) buf[n++] = (unsigned char)*s < 0x20 ? '?' : *s;
  va_end(ap);
  buf[n++] = '\n';
  raw_syscall3(SYS_write, 2, buf, n);
}

/* After the point of no return: stdio's buffers may be gone and the vdso moved. */
void die_late(const char *what, long err) {
  char buf[512];
  size_t n = 0;
  if (strncmp(what, "mana: ", 6) == 0) what += 6;
  const char *parts[] = {"mana restart: ", what, err ? " failed (errno " : "", NULL};
  for (int i = 0; parts[i]; i++)
    for (const char *p = parts[i]; *p && n < sizeof buf - 128; p++) buf[n++] = *p;
  if (err) {
    char num[24];
    int k = 0;
    unsigned long e = (unsigned long)(err < 0 ? -err : err);
    do num[k++] = (char)('0' + e % 10); while ((e /= 10) && k < 20);
    while (k) buf[n++] = num[--k];
    buf[n++] = ')';
  }
  const char *tail = " after the point of no return; this restart is lost (exit 71)\n";
  for (const char *p = tail; *p; p++) buf[n++] = *p;
  raw_syscall3(SYS_write, 2, buf, n);
  raw_syscall1(SYS_exit_group, EXIT_RESTART_BROKEN);
  __builtin_unreachable();
}

void read_own_maps(void) {
  FILE *f = fopen("/proc/self/maps", "re");
  if (!f) die("cannot read /proc/self/maps; is /proc mounted?");
  char line[1024];
  n_own_maps = 0;
  while (fgets(line, sizeof line, f) && n_own_maps < 256) {
    struct own_map *m = &own_maps[n_own_maps++];
    unsigned long s, e;
    char name[512] = "";
    if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %511s", &s, &e, name) < 2) {
      n_own_maps--;
      continue;
    }
    m->start = s;
    m->end = e;
    snprintf(m->name, sizeof m->name, "%s", name[0] == '[' ? name : "");
  }
  fclose(f);
}

const struct own_map *own_map_named(const char *name) {
  for (int i = 0; i < n_own_maps; i++)
    if (strcmp(own_maps[i].name, name) == 0) return &own_maps[i];
  return NULL;
}

/* MANA_* first: if the environment does not fit, those are the ones libmana needs. */
static void save_env(void) {
  size_t n = 0;
  for (int pass = 0; pass < 2; pass++) {
    for (char **e = environ; *e; e++) {
      int mana = strncmp(*e, "MANA_", 5) == 0;
      if (mana != (pass == 0)) continue;
      size_t l = strlen(*e) + 1;
      if (n + l + 1 > sizeof restart_env) {
        if (mana) die("environment variable %.40s... is too long for the restart handoff", *e);
        continue;
      }
      memcpy(restart_env + n, *e, l);
      n += l;
    }
  }
  restart_env[n] = 0;
}

__attribute__((noreturn)) void restore_main(void);
__attribute__((noreturn)) void restore_main(void) {
  if (bump_init() != 0)
    die("cannot reserve bookkeeping memory at 0x%llx (%s); is something else mapped there?",
        ALLOC_BASE, strerror(errno));
  char err[MANA_IMG_ERRLEN];
  mana_img_reader *r = NULL;
  if (mana_imgr_open(&r, image_path, &bump_alloc, err) != 0)
    die("%s", strncmp(err, "mana: ", 6) == 0 ? err + 6 : err);
  check_image(r);
  if (check_only) _exit(0);
  /* One read of the image: regions are filled (and their chunks verified) while a bad chunk
   * can still be refused with exit 70, not after the old address space is gone. */
  prefill_memory(r);
  warn_before_restart(r);
  /* ---- point of no return ---- */
  restore_memory(r);
  restore_fds(r);
  restore_process_state(r);
  restore_threads(r);
}

/* The rank this process has under its MPI launcher, or -1 (none set); dies on garbage. */
static long launcher_rank(const char **which) {
  static const char *const vars[] = {"PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "SLURM_PROCID"};
  for (size_t k = 0; k < sizeof vars / sizeof vars[0]; k++) {
    /* as in libmana (native/ckpt/init.c): a batch script has SLURM_PROCID too, a step's task
       also SLURM_STEP_ID */
    if (!strcmp(vars[k], "SLURM_PROCID") && !getenv("SLURM_STEP_ID")) continue;
    const char *v = getenv(vars[k]);
    if (!v || !*v) continue;
    char *end;
    errno = 0;
    long r = strtol(v, &end, 10);
    if (errno || *end || r < 0 || r > 9999999)
      die("%s=%.20s is not a rank number; cannot choose this rank's image", vars[k], v);
    *which = vars[k];
    return r;
  }
  return -1;
}

/* image_path = arg with every "%r" replaced by this process's rank (5 digits, zero-padded). */
static void select_image(const char *arg) {
  if (!strstr(arg, "%r")) {
    if (strlen(arg) >= sizeof image_path) die("image path too long: %.60s...", arg);
    strcpy(image_path, arg);
    return;
  }
  const char *which = NULL;
  long rank = launcher_rank(&which);
  if (rank < 0)
    die("%s names the image by MPI rank (%%r), but none of PMI_RANK, OMPI_COMM_WORLD_RANK, "
        "PMIX_RANK, SLURM_PROCID (with SLURM_STEP_ID) is set; run it under an MPI launcher, or "
        "name the image",
        arg);
  char num[16];
  snprintf(num, sizeof num, "%05ld", rank);
  size_t n = 0;
  for (const char *p = arg; *p;) {
    const char *piece = p;
    size_t len = 1;
    if (p[0] == '%' && p[1] == 'r') {
      piece = num;
      len = strlen(num);
      p += 2;
    } else {
      p++;
    }
    if (n + len >= sizeof image_path) die("image path too long: %.60s...", arg);
    memcpy(image_path + n, piece, len);
    n += len;
  }
  image_path[n] = 0;
  if (access(image_path, F_OK) != 0)
    die("there is no image %s for MPI rank %ld (%s); was the job started with more ranks "
        "than the checkpoint has?", image_path, rank, which);
}

int main(int argc, char **argv) {
  int i = 1;
  for (; i < argc && argv[i][0] == '-'; i++) {
    if (strcmp(argv[i], "--allow-missing-files") == 0) allow_missing_files = 1;
    else if (strcmp(argv[i], "--check") == 0) check_only = 1;
    else if (strcmp(argv[i], "--") == 0) { i++; break; }
    else die("unknown option %s; usage: mana_restore [--allow-missing-files] [--check] IMAGE",
             argv[i]);
  }
  if (i != argc - 1) die("usage: mana_restore [--allow-missing-files] [--check] IMAGE");
  select_image(argv[i]);
  save_env();
  skip_mm_map = getenv("MANA_RESTORE_NO_MM_MAP") != NULL;
  __asm__ volatile("movq %0, %%rsp\n\t"
                   "call restore_main\n\t"
                   "ud2"
                   :
                   : "r"(stack + sizeof stack)
                   : "memory");
  __builtin_unreachable();
}
