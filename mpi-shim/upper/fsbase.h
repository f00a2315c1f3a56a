/* Reading and writing the FS base (the thread pointer) without libc: rdfsbase/wrfsbase where
   the CPU and kernel allow them (AT_HWCAP2 bit 1), arch_prctl otherwise. Nothing here may
   touch TLS, errno included: these run while FS points into the other half. */
#ifndef MANA_FSBASE_H
#define MANA_FSBASE_H
#include <stdint.h>
#include <asm/prctl.h>
#include <sys/syscall.h>

extern int fs_fast; /* set by fs_detect() */
void fs_detect(void);

static inline uint64_t fs_get(void) {
  uint64_t v;
  if (__builtin_expect(fs_fast, 1)) {
    __asm__ volatile("rdfsbase %0" : "=r"(v));
  } else {
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "0"((long)SYS_arch_prctl), "D"((long)ARCH_GET_FS), "S"(&v)
                     : "rcx", "r11", "memory");
  }
  return v;
}

static inline void fs_set(uint64_t v) {
  if (__builtin_expect(fs_fast, 1)) {
    __asm__ volatile("wrfsbase %0" : : "r"(v) : "memory");
  } else {
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "0"((long)SYS_arch_prctl), "D"((long)ARCH_SET_FS), "S"(v)
                     : "rcx", "r11", "memory");
  }
}
#endif
