/* Attribute keys with copy and delete callbacks. The real library calls them inside the
 * lower half, with real handles; its trampolines (lower/extra.c) come back here through
 * struct lh_upcalls, and the application's function runs with the upper thread pointer and
 * virtual handles. The slot of the key's functions travels as the real extra_state. */

#include "shim.h"

struct attr_slot { void *copy, *del, *extra; };
static struct attr_slot *slots;
static int n_slots, cap_slots;

/* Slots are never reused: the real library may call a key's functions after the key is freed,
   for as long as an attribute of it is still attached somewhere. */
static int new_slot(void *copy, void *del, void *extra) {
  if (n_slots == cap_slots) {
    cap_slots = cap_slots ? cap_slots * 2 : 16;
    slots = realloc(slots, (size_t)cap_slots * sizeof *slots);
    if (!slots) shim_die("out of memory for attribute keys");
  }
  slots[n_slots] = (struct attr_slot){copy, del, extra};
  return n_slots++;
}

/* Called by the lower half, on this thread, with the lower half's thread pointer in FS (so no
   stack protector: its canary lives behind FS). */
__attribute__((no_stack_protector)) int shim_attr_copy_upcall(int kind, int slot, uint64_t obj, uint64_t keyval,
                                                                void *in, void *out, int *flag) {
  uint64_t lower = fs_get();
  fs_set(shim_upper_fs);
  int rc = MPI_SUCCESS;
  if (slot >= 0 && slot < n_slots && slots[slot].copy) {
    int key = (int)vh_from_real(VK_KEYVAL, keyval);
    if (kind == 0)
      rc = ((MPI_Comm_copy_attr_function *)slots[slot].copy)((MPI_Comm)vh_from_real(VK_COMM, obj), key,
                                                             slots[slot].extra, in, out, flag);
    else
      rc = ((MPI_Type_copy_attr_function *)slots[slot].copy)((MPI_Datatype)vh_from_real(VK_DATATYPE, obj), key,
                                                             slots[slot].extra, in, out, flag);
  } else {
    *flag = 0;
  }
  fs_set(lower);
  return rc;
}

__attribute__((no_stack_protector)) int shim_attr_delete_upcall(int kind, int slot, uint64_t obj, uint64_t keyval,
                                                                  void *val) {
  uint64_t lower = fs_get();
  fs_set(shim_upper_fs);
  int rc = MPI_SUCCESS;
  if (slot >= 0 && slot < n_slots && slots[slot].del) {
    int key = (int)vh_from_real(VK_KEYVAL, keyval);
    if (kind == 0)
      rc = ((MPI_Comm_delete_attr_function *)slots[slot].del)((MPI_Comm)vh_from_real(VK_COMM, obj), key, val,
                                                              slots[slot].extra);
    else
      rc = ((MPI_Type_delete_attr_function *)slots[slot].del)((MPI_Datatype)vh_from_real(VK_DATATYPE, obj), key,
                                                              val, slots[slot].extra);
  }
  fs_set(lower);
  return rc;
}

/* The lower half gets NULL for a null function (so the real library uses its own) and a
   non-NULL marker for "call the upper half". */
int MPI_Comm_create_keyval(MPI_Comm_copy_attr_function *copy, MPI_Comm_delete_attr_function *del, int *keyval,
                           void *extra) {
  int slot = new_slot((void *)copy, (void *)del, extra);
  uint64_t real = 0;
  int rc = LH_CALL(MPI_Comm_create_keyval, copy ? (void *)1 : NULL, del ? (void *)1 : NULL, &real,
                   (void *)(intptr_t)slot);
  if (rc == MPI_SUCCESS) *keyval = (int)vh_make(VK_KEYVAL, real);
  return rc;
}
SHIM_PMPI(MPI_Comm_create_keyval)

int MPI_Type_create_keyval(MPI_Type_copy_attr_function *copy, MPI_Type_delete_attr_function *del, int *keyval,
                           void *extra) {
  int slot = new_slot((void *)copy, (void *)del, extra);
  uint64_t real = 0;
  int rc = LH_CALL(MPI_Type_create_keyval, copy ? (void *)1 : NULL, del ? (void *)1 : NULL, &real,
                   (void *)(intptr_t)slot);
  if (rc == MPI_SUCCESS) *keyval = (int)vh_make(VK_KEYVAL, real);
  return rc;
}
SHIM_PMPI(MPI_Type_create_keyval)

/* MPI-1's names for the communicator ones. */
int MPI_Keyval_create(MPI_Copy_function *copy, MPI_Delete_function *del, int *keyval, void *extra) {
  return PMPI_Comm_create_keyval(copy, del, keyval, extra);
}
SHIM_PMPI(MPI_Keyval_create)

int MPI_Keyval_free(int *keyval) { return PMPI_Comm_free_keyval(keyval); }
SHIM_PMPI(MPI_Keyval_free)

int MPI_Attr_put(MPI_Comm comm, int keyval, void *val) { return PMPI_Comm_set_attr(comm, keyval, val); }
SHIM_PMPI(MPI_Attr_put)

int MPI_Attr_get(MPI_Comm comm, int keyval, void *val, int *flag) { return PMPI_Comm_get_attr(comm, keyval, val, flag); }
SHIM_PMPI(MPI_Attr_get)

int MPI_Attr_delete(MPI_Comm comm, int keyval) { return PMPI_Comm_delete_attr(comm, keyval); }
SHIM_PMPI(MPI_Attr_delete)
