/* The upper half's MPI runtime: what the generated wrappers (out/gen/upper.gen.c) and the
   hand-written ones in upper/ share. */
#ifndef MANA_SHIM_H
#define MANA_SHIM_H

#include <mpi.h>
#include <stdint.h>
#include <stdlib.h>

#include "lh_api.h"
#include "fsbase.h"

/* Kinds of virtual handles. */
enum vh_kind {
  VK_COMM, VK_GROUP, VK_DATATYPE, VK_OP, VK_ERRHANDLER, VK_INFO, VK_REQUEST, VK_MESSAGE,
  VK_FILE, VK_WIN, VK_KEYVAL, VK_COUNT
};
struct vh_predef { int kind; int64_t abi; const char *name; };

/* The lower half's table, its thread pointer, and the upper thread pointer of the thread that
   is currently inside it (MPI calls are serialized: see docs/mpi.md). */
extern const struct lh_api *shim_lh;
extern uint64_t shim_lower_fs;
extern uint64_t shim_upper_fs;
/* The directory this library was loaded from (lh_proxy-*, lh_track.so live beside it). */
extern char shim_self_dir[];

/* Calls one entry point of the lower half with the lower half's thread pointer in FS. */
#define LH_CALL(fn, ...)                                                          \
  ({                                                                              \
    uint64_t up_ = fs_get();                                                      \
    shim_upper_fs = up_;                                                          \
    fs_set(shim_lower_fs);                                                        \
    int r_ = shim_lh->fn(__VA_ARGS__);                                            \
    fs_set(up_);                                                                  \
    r_;                                                                           \
  })
#define LH_CALL_VOID(fn, ...)                                                     \
  do {                                                                            \
    uint64_t up_ = fs_get();                                                      \
    shim_upper_fs = up_;                                                          \
    fs_set(shim_lower_fs);                                                        \
    shim_lh->fn(__VA_ARGS__);                                                     \
    fs_set(up_);                                                                  \
  } while (0)

/* PMPI_X is the same function as MPI_X (the profiling interface). */
#define SHIM_PMPI(name) extern __typeof__(name) P##name __attribute__((alias(#name)));

/* Virtual handles (vh.c). */
void vh_init(void);
uint64_t vh_real(int kind, int64_t v);
int64_t vh_make(int kind, uint64_t real);
void vh_update(int kind, int64_t *v, uint64_t real);
int64_t vh_from_real(int kind, uint64_t real); /* existing virtual handle, no new one */
uint64_t vh_null(int kind);

/* The runtime (shim.c). */
int shim_ensure_lower(void);
int shim_wait(uint64_t *req, struct lh_status *st);
int shim_ret(int rc, const char *fn);
void shim_status_out(const struct lh_status *in, MPI_Status *out);
void shim_status_in(const MPI_Status *in, struct lh_status *out);
void *shim_tmp(size_t n);
_Noreturn void shim_die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* /proc/self/maps with each line marked lower/upper (lower_map.c). */
void shim_dump_maps(const char *where);

/* Hand-written parts (attr.c, errh.c, local.c). */
int shim_attr_copy_upcall(int kind, int slot, uint64_t obj, uint64_t keyval, void *in, void *out, int *flag);
int shim_attr_delete_upcall(int kind, int slot, uint64_t obj, uint64_t keyval, void *val);
void shim_errh_upcall(int kind, int slot, uint64_t obj, int code);
/* the length helpers of spec/mpi.api (@size(comm), ...) */
int shim_len_size(MPI_Comm comm);
int shim_len_indegree(MPI_Comm comm);
int shim_len_outdegree(MPI_Comm comm);
/* MPI_UNWEIGHTED / MPI_WEIGHTS_EMPTY cross the halves as 1 / 2 */
int *shim_weights_in(const int *w);
_Noreturn void shim_unsupported(const char *name);
/* A function of spec/unsupported.txt: it links, and says at the call that mana lacks it. */
#define SHIM_UNSUPPORTED(n)                                                                        \
  __attribute__((visibility("default"), noreturn)) void mana_stub_##n(void) __asm__(#n);          \
  void mana_stub_##n(void) { shim_unsupported(#n); }                                              \
  __attribute__((visibility("default"), noreturn)) extern void mana_pstub_##n(void) __asm__("P" #n) \
      __attribute__((alias(#n)));

/* The lower-half loader (loader.c): returns the table or NULL with *why set. */
const struct lh_api *lh_load(const char *proxy_path, const char **why);

#endif
