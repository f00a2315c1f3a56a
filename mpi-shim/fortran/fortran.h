/*
 * The C side of mana's Fortran bindings (out/gen/fortran.gen.c is generated from spec/mpi.api
 * by gen/gen-fortran.mjs and includes this). The layout is MPICH's Fortran ABI, so binaries
 * built with Debian's mpif90.mpich find here everything they look for in libmpichfort.so.12.
 */
#ifndef MANA_FORTRAN_H
#define MANA_FORTRAN_H
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "mpi.h"

/* The library is built with hidden visibility; only the Fortran entry points and the COMMON
   blocks are exported. */
#define F_API __attribute__((visibility("default")))
#define F_ALIAS(target, cname, sym) \
  extern __typeof__(target) cname __asm__(sym) __attribute__((weak, alias(#target), visibility("default")));

/* The COMMON blocks of mpif.h / module mpi. Fortran passes the ADDRESS of MPI_BOTTOM,
   MPI_STATUS_IGNORE, ... as an ordinary argument, so the wrappers compare addresses. An executable
   whose Fortran code names a block usually holds its own copy (copy relocation or its own common
   definition); these definitions are preemptible (default visibility, reached through the GOT),
   so the library compares against whichever copy the dynamic linker chose. Sizes match MPICH's
   (28, 24, 2, 4, 4 bytes) so copy relocations agree with binaries built against it. */
struct f_mpipriv1 { MPI_Fint bottom, in_place, status_ignore[MPI_F_STATUS_SIZE]; };
struct f_mpipriv2 { MPI_Fint statuses_ignore[MPI_F_STATUS_SIZE], errcodes_ignore[1]; };
struct f_mpiprivc { char argvs_null[1], argv_null[1]; };
extern struct f_mpipriv1 mpipriv1_ F_API;
extern struct f_mpipriv2 mpipriv2_ F_API;
extern struct f_mpiprivc mpiprivc_ F_API;
extern MPI_Fint mpifcmb5_ F_API; /* MPI_UNWEIGHTED */
extern MPI_Fint mpifcmb9_ F_API; /* MPI_WEIGHTS_EMPTY */

/* A choice buffer: the Fortran sentinels become the C ones. */
static inline void *f_buf(const void *p) {
  if (p == &mpipriv1_.bottom) return MPI_BOTTOM;
  if (p == &mpipriv1_.in_place) return MPI_IN_PLACE;
  return (void *)p;
}
/* An INTEGER(MPI_STATUS_SIZE) is an MPI_Status: same five ints in the same order. */
static inline MPI_Status *f_status(MPI_Fint *s) {
  return s == mpipriv1_.status_ignore ? MPI_STATUS_IGNORE : (MPI_Status *)s;
}
static inline MPI_Status *f_statuses(MPI_Fint *s) {
  return s == mpipriv2_.statuses_ignore ? MPI_STATUSES_IGNORE : (MPI_Status *)s;
}
static inline int *f_weights(const MPI_Fint *w) {
  if (w == &mpifcmb5_) return MPI_UNWEIGHTED;
  if (w == &mpifcmb9_) return MPI_WEIGHTS_EMPTY;
  return (int *)w;
}

/* CHARACTER arguments: no terminator, blank-padded to their hidden length. */
void *f_xalloc(size_t n);
/* A Fortran routine mana does not provide: says so and exits, like the C stubs. */
_Noreturn void f_unsupported(const char *name);
char *f_str_in(const char *s, size_t len);
void f_str_out(char *dst, size_t len, const char *src);

#endif
