/* The lower half's proxy: compiled once against each real MPI (MPICH, Open MPI). It converts
   the neutral values of lh_api.h (64-bit handles, MPICH-ABI constants) to the real library's
   types and back. */
#ifndef MANA_PROXY_H
#define MANA_PROXY_H
#include <mpi.h>
#include <stdint.h>
#include <stdlib.h>

#include "lh_api.h"

/* Constants of the ABI that a real library lacks get values it never produces. */
#if defined(OPEN_MPI)
#define MPI_COMBINER_HVECTOR_INTEGER (-100001)
#define MPI_COMBINER_HINDEXED_INTEGER (-100002)
#define MPI_COMBINER_STRUCT_INTEGER (-100003)
#endif
#include "families.gen.h"

/* A real handle to and from its neutral 64-bit form (ints in MPICH, pointers in Open MPI). */
#define H(T, v) ((T)(uintptr_t)(v))
#define U(r) ((uint64_t)(uintptr_t)(r))
#define LH_ABSENT UINT64_MAX
/* Keyvals are ints in both libraries; -1 (Open MPI's invalid keyval) must stay 0xffffffff. */
#define UK(k) ((uint64_t)(uint32_t)(k))
/* MPI_UNWEIGHTED / MPI_WEIGHTS_EMPTY cross as 1 / 2 (upper/local.c: shim_weights_in). */
#define LH_WEIGHTS(p)                                                                           \
  ((uintptr_t)(p) == 1 ? (int *)MPI_UNWEIGHTED : (uintptr_t)(p) == 2 ? (int *)MPI_WEIGHTS_EMPTY \
                                                                     : (int *)(uintptr_t)(p))

/* MPI_IN_PLACE is (void *)-1 in the ABI, (void *)1 in Open MPI. */
#define LH_BUF(p) ((p) == (const void *)-1 ? MPI_IN_PLACE : (void *)(uintptr_t)(p))

struct lh_enum_entry { int family; int abi; int real; };
extern const struct lh_enum_entry lh_enum_table[];

int lh_enum_in(int family, int abi);
int lh_enum_out(int family, int real);
int lh_rank_in(int abi);
int lh_rank_out(int real);
/* lower/extra.c */
void lh_keep(MPI_Request req, void *p);
void lh_req_done(MPI_Request before, MPI_Request after);
int lh_len_size(MPI_Comm comm);
int lh_len_indegree(MPI_Comm comm);
int lh_len_outdegree(MPI_Comm comm);
int lh_err(int rc);
void lh_status_out(const MPI_Status *r, struct lh_status *out);
void lh_status_in(const struct lh_status *in, MPI_Status *r);
void *lh_tmp(size_t n);

void lh_fill_api(struct lh_api *api);
void lh_fill_predefined(uint64_t *out, int n);
extern const struct lh_upcalls *lh_up;
#endif
