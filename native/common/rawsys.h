/* rawsys.h — system calls without glibc: no errno (which lives in TLS), no cancellation
 * points, no locks. Used where TLS may not be ours (the restore program after switching FS)
 * or where another thread may hold a libc lock (libmana while threads are parked).
 * Return values are the kernel's: negative errno on failure. */
#ifndef MANA_RAWSYS_H
#define MANA_RAWSYS_H

#include <stdint.h>
#include <sys/syscall.h>

static inline long raw_syscall6(long n, long a, long b, long c, long d, long e, long f) {
  long ret;
  register long r10 __asm__("r10") = d;
  register long r8 __asm__("r8") = e;
  register long r9 __asm__("r9") = f;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  return ret;
}
#define raw_syscall0(n) raw_syscall6((n), 0, 0, 0, 0, 0, 0)
#define raw_syscall1(n, a) raw_syscall6((n), (long)(a), 0, 0, 0, 0, 0)
#define raw_syscall2(n, a, b) raw_syscall6((n), (long)(a), (long)(b), 0, 0, 0, 0)
#define raw_syscall3(n, a, b, c) raw_syscall6((n), (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define raw_syscall4(n, a, b, c, d) \
  raw_syscall6((n), (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)
#define raw_syscall5(n, a, b, c, d, e) \
  raw_syscall6((n), (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), 0)

static inline int raw_gettid(void) { return (int)raw_syscall0(SYS_gettid); }
static inline int raw_getpid(void) { return (int)raw_syscall0(SYS_getpid); }

#endif
