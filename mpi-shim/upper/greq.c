/* Generalized requests. The real library calls the query, free and cancel functions inside
 * the lower half; its trampolines (lower/extra.c) come back here through struct lh_upcalls
 * with the slot of the request's functions, and the application's function runs with the
 * upper thread pointer and an ABI status. */

#include "shim.h"

struct greq_slot { MPI_Grequest_query_function *query; MPI_Grequest_free_function *free;
                   MPI_Grequest_cancel_function *cancel; void *extra; };
static struct greq_slot *slots;
static int n_slots, cap_slots, free_head = -1; /* free slots chain through .extra */

static int new_slot(MPI_Grequest_query_function *q, MPI_Grequest_free_function *f, MPI_Grequest_cancel_function *c,
                    void *extra) {
  int k;
  if (free_head >= 0) {
    k = free_head;
    free_head = (int)(intptr_t)slots[k].extra;
  } else {
    if (n_slots == cap_slots) {
      cap_slots = cap_slots ? cap_slots * 2 : 16;
      slots = realloc(slots, (size_t)cap_slots * sizeof *slots);
      if (!slots) shim_die("out of memory for generalized requests");
    }
    k = n_slots++;
  }
  slots[k] = (struct greq_slot){q, f, c, extra};
  return k;
}

/* Called by the lower half, on this thread, with the lower half's thread pointer in FS (so no
   stack protector: its canary lives behind FS). */
__attribute__((no_stack_protector)) int shim_greq_upcall(int what, int slot, struct lh_status *st, int arg) {
  uint64_t lower = fs_get();
  fs_set(shim_upper_fs);
  int rc = MPI_SUCCESS;
  if (slot >= 0 && slot < n_slots) {
    struct greq_slot *g = &slots[slot];
    if (what == 0) {
      MPI_Status s = {0};
      s.MPI_ERROR = MPI_SUCCESS;
      rc = g->query(g->extra, &s);
      shim_status_in(&s, st);
    } else if (what == 1) {
      rc = g->free(g->extra);
      g->extra = (void *)(intptr_t)free_head;
      free_head = slot;
    } else {
      rc = g->cancel(g->extra, arg);
    }
  }
  fs_set(lower);
  return rc;
}

int MPI_Grequest_start(MPI_Grequest_query_function *query_fn, MPI_Grequest_free_function *free_fn,
                       MPI_Grequest_cancel_function *cancel_fn, void *extra_state, MPI_Request *request) {
  shim_enter();
  int slot = new_slot(query_fn, free_fn, cancel_fn, extra_state);
  uint64_t real = 0;
  int rc = LH_CALL(MPI_Grequest_start, NULL, NULL, NULL, (void *)(intptr_t)slot, &real);
  if (rc == MPI_SUCCESS) {
    *request = (MPI_Request)shim_req_new(real, SHIM_REQ_OTHER);
  } else {
    slots[slot].extra = (void *)(intptr_t)free_head;
    free_head = slot;
  }
  shim_leave();
  return rc;
}
SHIM_PMPI(MPI_Grequest_start)
