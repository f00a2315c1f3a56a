/* mana_ctx.h — save and resume a thread's callee-saved context (x86_64 SysV).
 *
 * mana_ctx_save(c) returns 0 after saving; when a context is later resumed with
 * mana_ctx_resume (in the same process, or in a restored one), mana_ctx_save returns 1 a
 * second time in the thread that resumes it. Like setjmp: locals of the calling function that
 * change between the save and the resume hold indeterminate values afterwards, so callers keep
 * the code between the two points in separate noinline functions.
 */
#ifndef MANA_CTX_H
#define MANA_CTX_H

#include "mana_image.h"

int mana_ctx_save(struct mana_ctx *c) __attribute__((returns_twice));
__attribute__((noreturn)) void mana_ctx_resume(const struct mana_ctx *c);

#endif
