/* Starting the lower half inside this process: a second instance of the system's ld.so, mapped
 * by hand and started as if the kernel had just executed it with `ld.so lh_proxy-<mpi>`. It
 * loads the proxy, the real MPI library and their own libc into free address space, and the
 * proxy hands back its table of entry points (lh_switch.S). Nothing here is saved in a
 * checkpoint: every range mapped here is reported by lh_ranges() so the checkpointer leaves it
 * out, and a restart simply loads a fresh lower half. */

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shim.h"

#define HIDDEN __attribute__((visibility("hidden")))
HIDDEN uint64_t lh_saved_sp;
HIDDEN uint64_t lh_saved_upper_fs;
HIDDEN const struct lh_api *lh_result;
void lh_enter(uint64_t entry, uint64_t sp);
void lh_return(const struct lh_api *api);

#define LOWER_STACK (8u << 20)
#define PAGE 4096ul
#define PAGE_DOWN(x) ((x) & ~(PAGE - 1))
#define PAGE_UP(x) (((x) + PAGE - 1) & ~(PAGE - 1))

/* The ranges this file mapped (ld.so, the startup stack). */
static struct { uint64_t start, end; } mapped[2];

static int read_at(int fd, void *buf, size_t n, off_t off) {
  return pread(fd, buf, n, off) == (ssize_t)n ? 0 : -1;
}

/* The program interpreter named by the proxy (PT_INTERP). */
static int interp_of(const char *prog, char *out, size_t outsz) {
  int fd = open(prog, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  Elf64_Ehdr eh;
  int rc = -1;
  if (read_at(fd, &eh, sizeof eh, 0) == 0 && memcmp(eh.e_ident, ELFMAG, SELFMAG) == 0) {
    for (int i = 0; i < eh.e_phnum; i++) {
      Elf64_Phdr ph;
      if (read_at(fd, &ph, sizeof ph, (off_t)(eh.e_phoff + (uint64_t)i * eh.e_phentsize))) break;
      if (ph.p_type == PT_INTERP && ph.p_filesz < outsz && read_at(fd, out, ph.p_filesz, (off_t)ph.p_offset) == 0) {
        out[ph.p_filesz] = 0;
        rc = 0;
      }
    }
  }
  close(fd);
  return rc;
}

/* Maps an ELF shared object (ld.so) at an address the kernel picks. */
static int map_elf(const char *path, uint64_t *base_out, Elf64_Ehdr *eh, uint64_t *phdr_addr) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  Elf64_Phdr ph[32];
  if (read_at(fd, eh, sizeof *eh, 0) || eh->e_phnum > 32 ||
      read_at(fd, ph, sizeof(Elf64_Phdr) * eh->e_phnum, (off_t)eh->e_phoff)) {
    close(fd);
    errno = ENOEXEC;
    return -1;
  }
  uint64_t lo = UINT64_MAX, hi = 0;
  for (int i = 0; i < eh->e_phnum; i++) {
    if (ph[i].p_type != PT_LOAD) continue;
    if (PAGE_DOWN(ph[i].p_vaddr) < lo) lo = PAGE_DOWN(ph[i].p_vaddr);
    if (PAGE_UP(ph[i].p_vaddr + ph[i].p_memsz) > hi) hi = PAGE_UP(ph[i].p_vaddr + ph[i].p_memsz);
  }
  void *res = mmap(NULL, hi - lo, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (res == MAP_FAILED) { close(fd); return -1; }
  uint64_t base = (uint64_t)res - lo;
  for (int i = 0; i < eh->e_phnum; i++) {
    if (ph[i].p_type != PT_LOAD) continue;
    int prot = (ph[i].p_flags & PF_R ? PROT_READ : 0) | (ph[i].p_flags & PF_W ? PROT_WRITE : 0) |
               (ph[i].p_flags & PF_X ? PROT_EXEC : 0);
    uint64_t va = base + PAGE_DOWN(ph[i].p_vaddr);
    uint64_t off = PAGE_DOWN(ph[i].p_offset);
    uint64_t file_end = base + ph[i].p_vaddr + ph[i].p_filesz;
    uint64_t mem_end = base + ph[i].p_vaddr + ph[i].p_memsz;
    if (ph[i].p_filesz &&
        mmap((void *)va, file_end - va, prot | (ph[i].p_memsz > ph[i].p_filesz ? PROT_WRITE : 0),
             MAP_PRIVATE | MAP_FIXED, fd, (off_t)off) == MAP_FAILED) {
      close(fd);
      return -1;
    }
    if (mem_end > file_end) {
      /* .bss: zero the rest of the last file page, map anonymous pages beyond it */
      uint64_t zpage = PAGE_UP(file_end);
      if (ph[i].p_filesz) memset((void *)file_end, 0, zpage - file_end);
      if (PAGE_UP(mem_end) > zpage &&
          mmap((void *)zpage, PAGE_UP(mem_end) - zpage, prot, MAP_PRIVATE | MAP_FIXED | MAP_ANONYMOUS, -1, 0) == MAP_FAILED) {
        close(fd);
        return -1;
      }
      if (ph[i].p_filesz && !(prot & PROT_WRITE)) mprotect((void *)va, zpage - va, prot);
    }
  }
  *phdr_addr = 0;
  for (int i = 0; i < eh->e_phnum; i++)
    if (ph[i].p_type == PT_LOAD && ph[i].p_offset <= eh->e_phoff && eh->e_phoff < ph[i].p_offset + ph[i].p_filesz)
      *phdr_addr = base + ph[i].p_vaddr + (eh->e_phoff - ph[i].p_offset);
  close(fd);
  mapped[0].start = base + lo;
  mapped[0].end = base + hi;
  *base_out = base;
  return 0;
}

/* The offset of glibc's cached tid in its thread descriptor (found, not assumed), so the
   kernel's clear-tid address can be put back after the lower libc replaced it. */
static long tid_offset(void) {
  pid_t tid = (pid_t)syscall(SYS_gettid);
  const char *tp = (const char *)fs_get();
  for (long off = 0x100; off < 0x1000; off += 4)
    if (*(const pid_t *)(tp + off) == tid) return off;
  return -1;
}

const struct lh_api *lh_load(const char *proxy, const char *preload_libs, const char **why) {
  static char msg[512];
  char interp[256];
  *why = msg;
  if (access(proxy, X_OK) != 0) {
    snprintf(msg, sizeof msg, "%s: %s", proxy, strerror(errno));
    return NULL;
  }
  if (interp_of(proxy, interp, sizeof interp) != 0) {
    snprintf(msg, sizeof msg, "%s has no program interpreter (not a dynamically linked PIE?)", proxy);
    return NULL;
  }
  uint64_t base, phdr;
  Elf64_Ehdr eh;
  if (map_elf(interp, &base, &eh, &phdr) != 0) {
    snprintf(msg, sizeof msg, "cannot map %s: %s", interp, strerror(errno));
    return NULL;
  }

  /* The lower world's environment: ours, minus what belongs to the upper half (LD_PRELOAD
     carries libmana; LD_LIBRARY_PATH may put this very shim in place of libmpi), plus the
     tracker and an mmap-only allocator, and the address to come back to. */
  extern char **environ;
  size_t nenv = 0;
  while (environ[nenv]) nenv++;
  const char **env = calloc(nenv + 12, sizeof *env);
  char *cb = malloc(64), *preload = malloc(1024);
  if (!env || !cb || !preload) { snprintf(msg, sizeof msg, "out of memory"); return NULL; }
  size_t ne = 0;
  for (size_t i = 0; i < nenv; i++) {
    if (!strncmp(environ[i], "LD_PRELOAD=", 11) || !strncmp(environ[i], "MANA_LH_CALLBACK=", 17)) continue;
    if (!strncmp(environ[i], "LD_LIBRARY_PATH=", 16)) {
      /* the same path without the shim's own directory */
      char *lp = malloc(strlen(environ[i]) + 1), *o = lp;
      if (!lp) continue;
      o += sprintf(o, "LD_LIBRARY_PATH=");
      char *dup = strdup(environ[i] + 16), *save = NULL;
      for (char *d = dup ? strtok_r(dup, ":", &save) : NULL; d; d = strtok_r(NULL, ":", &save))
        if (strcmp(d, shim_self_dir) != 0) o += sprintf(o, "%s%s", o[-1] == '=' ? "" : ":", d);
      free(dup);
      env[ne++] = lp;
      continue;
    }
    env[ne++] = environ[i];
  }
  snprintf(cb, 64, "MANA_LH_CALLBACK=%lx", (unsigned long)(uintptr_t)lh_return);
  env[ne++] = cb;
  if (preload_libs && *preload_libs) {
    snprintf(preload, 1024, "LD_PRELOAD=%s", preload_libs);
    env[ne++] = preload;
  }
  /* Open MPI would install SIGSEGV/SIGBUS handlers of its own; the process's handlers belong
     to the upper half. */
  env[ne++] = "OMPI_MCA_opal_signal=";
  /* UCX (under MPICH) rewrites the GOT entries of mmap/shmat to watch memory for its RDMA
     registration cache, which would hide its shared-memory segments from the tracker; on one
     node there is nothing to register. */
  env[ne++] = "UCX_MEM_MMAP_HOOK_MODE=none";
  env[ne++] = "UCX_MEM_MALLOC_HOOKS=no";
  env[ne] = NULL;

  /* The startup stack, laid out as the kernel lays out a new program's. */
  void *stk = mmap(NULL, LOWER_STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (stk == MAP_FAILED) { snprintf(msg, sizeof msg, "cannot map the lower half's stack: %s", strerror(errno)); return NULL; }
  mapped[1].start = (uint64_t)stk;
  mapped[1].end = (uint64_t)stk + LOWER_STACK;
  char *top = (char *)stk + LOWER_STACK;
#define PUSH_STR(s) ({ size_t l_ = strlen(s) + 1; top -= l_; memcpy(top, s, l_); top; })
  char *a0 = PUSH_STR(interp);
  char *a1 = PUSH_STR(proxy);
  char **envs = malloc((ne + 1) * sizeof *envs);
  if (!envs) { snprintf(msg, sizeof msg, "out of memory"); return NULL; }
  for (size_t i = 0; i < ne; i++) envs[i] = PUSH_STR(env[i]);
  char *plat = PUSH_STR("x86_64");
  top -= 16;
  char *rnd = top;
  if (getrandom(rnd, 16, 0) != 16) memset(rnd, 0x5a, 16);
  uint64_t auxv[][2] = {
      {AT_PHDR, phdr}, {AT_PHENT, sizeof(Elf64_Phdr)}, {AT_PHNUM, eh.e_phnum}, {AT_PAGESZ, PAGE},
      {AT_BASE, 0}, {AT_FLAGS, 0}, {AT_ENTRY, base + eh.e_entry}, {AT_UID, getauxval(AT_UID)},
      {AT_EUID, getauxval(AT_EUID)}, {AT_GID, getauxval(AT_GID)}, {AT_EGID, getauxval(AT_EGID)},
      {AT_SECURE, 0}, {AT_RANDOM, (uint64_t)rnd}, {AT_HWCAP, getauxval(AT_HWCAP)},
      {AT_HWCAP2, getauxval(AT_HWCAP2)}, {AT_CLKTCK, getauxval(AT_CLKTCK)},
      {AT_SYSINFO_EHDR, getauxval(AT_SYSINFO_EHDR)}, {AT_EXECFN, (uint64_t)a1},
      {AT_PLATFORM, (uint64_t)plat}, {AT_MINSIGSTKSZ, getauxval(AT_MINSIGSTKSZ)}, {AT_NULL, 0}};
  size_t nwords = 1 + 3 + (ne + 1) + sizeof auxv / sizeof(uint64_t);
  uint64_t *sp = (uint64_t *)(((uintptr_t)top - nwords * 8) & ~(uintptr_t)15);
  uint64_t *w = sp;
  *w++ = 2;
  *w++ = (uint64_t)a0;
  *w++ = (uint64_t)a1;
  *w++ = 0;
  for (size_t i = 0; i < ne; i++) *w++ = (uint64_t)envs[i];
  *w++ = 0;
  memcpy(w, auxv, sizeof auxv);
  free(envs);

  /* The lower libc registers its own robust list and clear-tid address for this thread;
     both belong to the upper libc. */
  void *robust_head;
  size_t robust_len;
  long have_robust = syscall(SYS_get_robust_list, 0, &robust_head, &robust_len);
  long toff = tid_offset();
  uint64_t upper_fs = fs_get();

  lh_saved_upper_fs = upper_fs;
  lh_result = NULL;
  lh_enter(base + eh.e_entry, (uint64_t)sp);
  /* back from lh_return: upper FS restored */
  if (have_robust == 0) syscall(SYS_set_robust_list, robust_head, robust_len);
  if (toff >= 0) syscall(SYS_set_tid_address, (void *)(upper_fs + (uint64_t)toff));
  free(env);
  if (!lh_result || lh_result->version != LH_API_VERSION || lh_result->size != sizeof(struct lh_api)) {
    snprintf(msg, sizeof msg, "%s was built from another version of mana's MPI spec; rebuild mana", proxy);
    return NULL;
  }
  return lh_result;
}

/* The memory this file mapped for the lower half (the rest is the tracker's to report). */
int lh_loader_ranges(uint64_t (*out)[2], int max) {
  int n = 0;
  for (int i = 0; i < 2 && n < max; i++)
    if (mapped[i].end) { out[n][0] = mapped[i].start; out[n][1] = mapped[i].end; n++; }
  return n;
}
