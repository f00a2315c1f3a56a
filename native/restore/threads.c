/* threads.c — the last steps: hand the kernel the image's memory layout, fill in libmana's
 * restart handoff, recreate the threads with clone, and become the main thread. */
#include <asm/prctl.h>
#include <errno.h>
#include <linux/prctl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/rseq.h>
#include <unistd.h>

#include "rawsys.h"
#include "restore.h"

/* layout known to clone.S: sigmask at 0, ctx at 8 */
struct rthread {
  uint64_t sigmask;
  struct mana_ctx ctx;
  uint64_t fs_base, tid_addr;
  uint32_t flags;
};

static struct rthread rts[1024];
static struct rthread main_rt;

int skip_mm_map;

/* Returns 1 when the kernel now considers the image's heap to be the brk area. */
static int set_mm_layout(const struct mana_img_info *in) {
  if (skip_mm_map) return 0;
  /* an image taken after a restart without PR_SET_MM_MAP has its brk in our own range */
  if (in->brk_cur >= RESERVED_START && in->brk_start < RESERVED_END) return 0;
  struct prctl_mm_map m;
  memset(&m, 0, sizeof m);
  m.start_code = in->start_code;
  m.end_code = in->end_code;
  m.start_data = in->start_data;
  m.end_data = in->end_data;
  m.start_brk = in->brk_start;
  m.brk = in->brk_cur;
  m.start_stack = in->start_stack;
  m.arg_start = in->arg_start;
  m.arg_end = in->arg_end;
  m.env_start = in->env_start;
  m.env_end = in->env_end;
  m.exe_fd = (__u32)-1;
  long rc = raw_syscall5(SYS_prctl, PR_SET_MM, PR_SET_MM_MAP, &m, sizeof m, 0);
  return rc == 0;
}

static void set_comm(const char *exe) {
  const char *base = exe;
  for (const char *p = exe; *p; p++)
    if (*p == '/') base = p + 1;
  char name[16];
  size_t i = 0;
  for (; base[i] && i < 15; i++) name[i] = base[i];
  name[i] = 0;
  if (i) raw_syscall2(SYS_prctl, PR_SET_NAME, name);
}

static void fill_handoff(const struct mana_img_info *in, int brk_ok) {
  struct mana_restart_info *ri = (struct mana_restart_info *)in->restart_info_addr;
  ri->magic = MANA_RESTART_MAGIC;
  ri->restarted++;
  ri->new_pid = (uint32_t)raw_getpid();
  ri->generation = in->generation;
  ri->n_unmap = 0;
  ri->unmap[ri->n_unmap][0] = RESERVED_START;
  ri->unmap[ri->n_unmap++][1] = RESERVED_END;
  const struct own_map *heap = own_map_named("[heap]");
  if (heap && (heap->start < RESERVED_START || heap->end > RESERVED_END)) {
    ri->unmap[ri->n_unmap][0] = heap->start;
    ri->unmap[ri->n_unmap++][1] = heap->end;
  }
  ri->brk_guard = 0;
  if (!brk_ok) ri->brk_guard = ((uint64_t)raw_syscall1(SYS_brk, 0) + 4095) & ~4095ull;
  __atomic_store_n(&ri->threads_out, 0, __ATOMIC_RELEASE);
  memcpy(ri->env, restart_env, sizeof ri->env);
}

static void unregister_own_rseq(void) {
  if (!__rseq_size) return;
  void *area = (char *)__builtin_thread_pointer() + __rseq_offset;
  long rc = raw_syscall4(SYS_rseq, area, __rseq_size, 1 /* RSEQ_FLAG_UNREGISTER */, 0x53053053);
  if (rc == -EINVAL) raw_syscall4(SYS_rseq, area, 32, 1, 0x53053053);
}

void restore_threads(mana_img_reader *r) {
  const struct mana_img_info *in = &mana_imgr_header(r)->info;
  int brk_ok = set_mm_layout(in);
  set_comm(in->exe);
  fill_handoff(in, brk_ok);

  uint64_t n = mana_imgr_nthreads(r);
  int main_idx = -1;
  for (uint64_t i = 0; i < n; i++)
    if (mana_imgr_thread(r, i)->flags & MANA_TF_MAIN) main_idx = (int)i;
  /* the main thread exited: become an application thread, else any but the checkpoint one */
  for (uint64_t i = 0; main_idx < 0 && i < n; i++)
    if (!(mana_imgr_thread(r, i)->flags & (MANA_TF_CKPT | MANA_TF_HELPER))) main_idx = (int)i;
  for (uint64_t i = 0; main_idx < 0 && i < n; i++)
    if (!(mana_imgr_thread(r, i)->flags & MANA_TF_CKPT)) main_idx = (int)i;

  for (uint64_t i = 0; i < n; i++) {
    const struct mana_img_thread *t = mana_imgr_thread(r, i);
    struct rthread *rt = (int)i == main_idx ? &main_rt : &rts[i];
    rt->sigmask = t->sigmask;
    rt->ctx = t->ctx;
    rt->fs_base = t->fs_base;
    rt->tid_addr = t->tid_addr;
    rt->flags = t->flags;
  }
  for (uint64_t i = 0; i < n; i++) {
    if ((int)i == main_idx) continue;
    struct rthread *rt = &rts[i];
    unsigned long flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD |
                          CLONE_SYSVSEM | CLONE_SETTLS;
    if (rt->tid_addr) flags |= CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID;
    /* the child jumps into its context without touching a stack; this is a formality */
    void *stack = (void *)((rt->ctx.rsp - 1024) & ~15ull);
    long rc = mana_clone_thread(flags, stack, (int *)rt->tid_addr, (int *)rt->tid_addr,
                                rt->fs_base, rt);
    if (rc < 0) die_late("clone", rc);
  }

  /* from here on: no libc (its TLS is about to stop being ours) */
  unregister_own_rseq();
  if (main_rt.tid_addr) {
    raw_syscall1(SYS_set_tid_address, main_rt.tid_addr);
    *(volatile int *)main_rt.tid_addr = raw_gettid();
  }
  raw_syscall4(SYS_rt_sigprocmask, SIG_SETMASK, &main_rt.sigmask, 0, 8);
  raw_syscall2(SYS_arch_prctl, ARCH_SET_FS, main_rt.fs_base);
  mana_ctx_resume(&main_rt.ctx);
}
