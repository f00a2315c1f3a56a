/* Attribute keys with copy and delete callbacks. The real library calls them inside the
 * lower half, with real handles; its trampolines (lower/extra.c) come back here through
 * struct lh_upcalls, and the application's function runs with the upper thread pointer and
 * virtual handles. The slot of the key's functions travels as the real extra_state. */

#include <stdio.h>

#include "shim.h"

/* handle: the application's keyval, given to its functions: the real library calls a delete
   function after the key is freed too (attributes on MPI_COMM_SELF at MPI_Finalize), when the
   real keyval no longer maps to a virtual one */
struct attr_slot { void *copy, *del, *extra; int64_t handle; };
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
  slots[n_slots] = (struct attr_slot){copy, del, extra, 0};
  return n_slots++;
}

/* Each slot belongs to one key (slots are never reused). */
static int slot_key(int slot, uint64_t keyval) {
  return slots[slot].handle ? (int)slots[slot].handle : (int)vh_from_real(VK_KEYVAL, keyval);
}

/* Called by the lower half, on this thread, with the lower half's thread pointer in FS (so no
   stack protector: its canary lives behind FS). */
__attribute__((no_stack_protector)) int shim_attr_copy_upcall(int kind, int slot, uint64_t obj, uint64_t keyval,
                                                                void *in, void *out, int *flag) {
  uint64_t lower = fs_get();
  fs_set(shim_upper_fs);
  int rc = MPI_SUCCESS;
  if (slot >= 0 && slot < n_slots && slots[slot].copy) {
    int key = slot_key(slot, keyval);
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
    int key = slot_key(slot, keyval);
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
static int create_key(int kind, int slot, uint64_t *real) {
  void *copy = slots[slot].copy ? (void *)1 : NULL, *del = slots[slot].del ? (void *)1 : NULL;
  return kind == 0 ? LH_CALL(MPI_Comm_create_keyval, copy, del, real, (void *)(intptr_t)slot)
                   : LH_CALL(MPI_Type_create_keyval, copy, del, real, (void *)(intptr_t)slot);
}

/* Every key made (0: communicators, 1: datatypes), for the replay and the checkpoint. */
struct key { struct key *next; int kind, slot; int64_t handle; };
static struct key *keys;

static int remake(void *arg, char *err, size_t errlen) {
  (void)err, (void)errlen;
  struct key *k = arg;
  uint64_t real = 0;
  int rc = create_key(k->kind, k->slot, &real);
  if (rc == MPI_SUCCESS) vh_set_real(VK_KEYVAL, k->handle, real);
  return rc;
}

/* A freed key's record was pruned from the replay log (its slot stays: the real library may
   still call its functions in this lower half). */
static void forget_key(void *arg) {
  for (struct key **p = &keys; *p; p = &(*p)->next)
    if (*p == arg) {
      *p = (*p)->next;
      free(arg);
      return;
    }
}

static int make_key(int kind, void *copy, void *del, void *extra, int *keyval) {
  shim_enter(); /* a checkpoint sees the key made and logged, or neither */
  int slot = new_slot(copy, del, extra);
  uint64_t real = 0;
  int rc = create_key(kind, slot, &real);
  if (rc == MPI_SUCCESS) {
    *keyval = (int)vh_new(VK_KEYVAL, real);
    slots[slot].handle = *keyval;
    struct key *k = malloc(sizeof *k);
    if (!k) shim_die("out of memory for attribute keys");
    *k = (struct key){keys, kind, slot, *keyval};
    keys = k;
    void *rec = replay_log_call(remake, k, kind == 0 ? "MPI_Comm_create_keyval" : "MPI_Type_create_keyval");
    replay_call_dep(rec, RD_MAKE, VK_KEYVAL, *keyval);
    replay_call_drop(rec, forget_key);
  }
  shim_leave();
  return rc;
}

int MPI_Comm_create_keyval(MPI_Comm_copy_attr_function *copy, MPI_Comm_delete_attr_function *del, int *keyval,
                           void *extra) {
  return make_key(0, (void *)copy, (void *)del, extra, keyval);
}
SHIM_PMPI(MPI_Comm_create_keyval)

int MPI_Type_create_keyval(MPI_Type_copy_attr_function *copy, MPI_Type_delete_attr_function *del, int *keyval,
                           void *extra) {
  return make_key(1, (void *)copy, (void *)del, extra, keyval);
}
SHIM_PMPI(MPI_Type_create_keyval)

/* ------------------------------------------------------------------ across a restart */

/* The values cached on objects live in the real library, which copies them on its own (a
   communicator's duplicate gets them through the copy callbacks), so they are read from it at
   the checkpoint rather than followed call by call: every live key on every live object of
   its kind (and on MPI_COMM_WORLD and MPI_COMM_SELF). After the replay of a restart, which
   made the keys and objects again without any attribute, each value is set again: no copy or
   delete callback runs for it. */
struct cached { int kind; int64_t obj, key; void *val; uint64_t seq; size_t idx; };
static struct cached *cache;
static size_t n_cache, cap_cache;

/* The order a communicator's attributes were set in: MPI_Finalize deletes those of
   MPI_COMM_SELF in the reverse order (MPI 2.2), which libraries rely on to shut down in turn;
   a restart sets them again in that order. seq 0: not set through MPI_Comm_set_attr (copied by
   MPI_Comm_dup), set again after the others, in key order. */
struct setorder { int64_t comm, key; uint64_t seq; };
static struct setorder *order;
static size_t n_order, cap_order;
static uint64_t next_seq = 1;

static struct setorder *order_find(int64_t comm, int64_t key) {
  for (size_t i = 0; i < n_order; i++)
    if (order[i].comm == comm && order[i].key == key) return &order[i];
  return NULL;
}

static void order_add(int64_t comm, int64_t key, uint64_t seq) {
  if (n_order == cap_order) {
    cap_order = cap_order ? cap_order * 2 : 16;
    order = realloc(order, cap_order * sizeof *order);
    if (!order) shim_die("out of memory for attribute order");
  }
  order[n_order++] = (struct setorder){comm, key, seq};
}

int MPI_Comm_set_attr(MPI_Comm comm, int keyval, void *val) {
  shim_enter();
  int rc = LH_CALL(MPI_Comm_set_attr, vh_real(VK_COMM, comm), vh_real(VK_KEYVAL, keyval), val);
  /* a value replaced keeps its place */
  if (rc == MPI_SUCCESS && !order_find(comm, keyval)) order_add(comm, keyval, next_seq++);
  shim_leave();
  return shim_ret(rc, "MPI_Comm_set_attr");
}
SHIM_PMPI(MPI_Comm_set_attr)

int MPI_Comm_delete_attr(MPI_Comm comm, int keyval) {
  shim_enter();
  int rc = LH_CALL(MPI_Comm_delete_attr, vh_real(VK_COMM, comm), vh_real(VK_KEYVAL, keyval));
  struct setorder *o = rc == MPI_SUCCESS ? order_find(comm, keyval) : NULL;
  if (o) *o = order[--n_order];
  shim_leave();
  return shim_ret(rc, "MPI_Comm_delete_attr");
}
SHIM_PMPI(MPI_Comm_delete_attr)

struct probe { struct key *k; };

static void probe_obj(int64_t obj, void *arg) {
  struct key *k = ((struct probe *)arg)->k;
  void *val = NULL;
  int flag = 0;
  uint64_t ro = vh_real(k->kind == 0 ? VK_COMM : VK_DATATYPE, obj), rk = vh_real(VK_KEYVAL, k->handle);
  int rc = k->kind == 0 ? LH_CALL(MPI_Comm_get_attr, ro, rk, &val, &flag) : LH_CALL(MPI_Type_get_attr, ro, rk, &val, &flag);
  if (rc != MPI_SUCCESS || !flag) return;
  if (n_cache == cap_cache) {
    cap_cache = cap_cache ? cap_cache * 2 : 16;
    cache = realloc(cache, cap_cache * sizeof *cache);
    if (!cache) shim_die("out of memory for cached attributes");
  }
  struct setorder *o = k->kind == 0 ? order_find(obj, k->handle) : NULL;
  cache[n_cache] = (struct cached){k->kind, obj, k->handle, val, o ? o->seq : 0, n_cache};
  n_cache++;
}

/* Set order first; then (copied attributes) the oldest key first: keys is newest first, so a
   higher index in the cache is an older key. */
static int by_order(const void *a, const void *b) {
  const struct cached *x = a, *y = b;
  uint64_t sx = x->seq ? x->seq : UINT64_MAX, sy = y->seq ? y->seq : UINT64_MAX;
  if (sx != sy) return sx < sy ? -1 : 1;
  return x->idx < y->idx ? 1 : x->idx > y->idx ? -1 : 0;
}

/* The keys of the values cached at this checkpoint (a freed key too, while a value still
   holds it): a restart sets the values again, so their keys must be made again. */
void shim_attrs_pins(replay_dep_fn *fn, void *arg) {
  for (size_t i = 0; i < n_cache; i++) fn(arg, RD_USE, VK_KEYVAL, cache[i].key);
}

void shim_attrs_save(void) {
  n_cache = 0;
  for (struct key *k = keys; k; k = k->next) {
    if (vh_real(VK_KEYVAL, k->handle) == vh_null(VK_KEYVAL)) continue; /* freed */
    struct probe p = {k};
    if (k->kind == 0) {
      probe_obj(MPI_COMM_WORLD, &p);
      probe_obj(MPI_COMM_SELF, &p);
    }
    vh_foreach_live(k->kind == 0 ? VK_COMM : VK_DATATYPE, probe_obj, &p);
  }
  /* the order of attributes gone since (their communicator freed) is forgotten */
  n_order = 0;
  for (size_t i = 0; i < n_cache; i++)
    if (cache[i].seq) order_add(cache[i].obj, cache[i].key, cache[i].seq);
}

int shim_attrs_restore(char *err, size_t errlen) {
  qsort(cache, n_cache, sizeof *cache, by_order);
  for (size_t i = 0; i < n_cache; i++) {
    struct cached *c = &cache[i];
    uint64_t rk = vh_real(VK_KEYVAL, c->key);
    int rc = c->kind == 0 ? LH_CALL(MPI_Comm_set_attr, vh_real(VK_COMM, c->obj), rk, c->val)
                          : LH_CALL(MPI_Type_set_attr, vh_real(VK_DATATYPE, c->obj), rk, c->val);
    if (rc != MPI_SUCCESS) {
      snprintf(err, errlen, "cannot cache an attribute on a %s again after the restart (error class %d)",
               c->kind == 0 ? "communicator" : "datatype", rc);
      return -1;
    }
  }
  return 0;
}

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
