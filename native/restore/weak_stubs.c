/* weak_stubs.c — glibc's static start files and libc.a call a few optional functions through
 * weak references ("if (f != NULL) f()"). Linked above 4 GiB, a call to an undefined weak
 * symbol (address 0) does not fit a 32-bit displacement, so define each as what its absence
 * means: nothing to do. mana_restore never creates threads with pthreads or cancels them. */
#include "rawsys.h"

void __pthread_initialize_minimal(void);
void __call_tls_dtors(void);
void __cxa_finalize(void *d);
void __pthread_unwind(void *buf);

void __pthread_initialize_minimal(void) {}
void __call_tls_dtors(void) {}
void __cxa_finalize(void *d) { (void)d; }
void __pthread_unwind(void *buf) {
  (void)buf;
  raw_syscall1(SYS_exit_group, 71); /* cancellation cannot happen in mana_restore */
  __builtin_unreachable();
}
