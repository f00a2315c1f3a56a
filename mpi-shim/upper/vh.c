/* Virtual handles: the only handles the application ever sees.
 *
 * Predefined objects keep their MPICH-ABI values (MPI_COMM_WORLD is 0x44000000 whatever the
 * lower half is); their real values come from the lower half by position in predef.gen.h.
 * Objects the application creates get 0xC0000000 | code << 26 | index, a range no predefined
 * handle uses, and a slot in a per-kind table holding the real handle. After a restart only
 * the tables change; the application's handles stay valid. */

#include <string.h>

#include "shim.h"
#define PREDEF_UPPER
#define HIDDEN __attribute__((visibility("hidden")))
#include "predef.gen.h"

#define USER_BITS 0xC0000000u
#define IDX_MASK 0x03FFFFFFu
/* MPICH's own object codes where it has one, so handles print familiarly in debuggers. */
static const uint32_t kind_code[VK_COUNT] = {
    [VK_COMM] = 1, [VK_GROUP] = 2, [VK_DATATYPE] = 3, [VK_OP] = 6, [VK_ERRHANDLER] = 5,
    [VK_INFO] = 7, [VK_REQUEST] = 11, [VK_MESSAGE] = 12, [VK_FILE] = 13, [VK_WIN] = 8, [VK_KEYVAL] = 9};
/* The ABI's null handle of each kind. */
static const int64_t abi_null[VK_COUNT] = {
    [VK_COMM] = MPI_COMM_NULL, [VK_GROUP] = MPI_GROUP_NULL, [VK_DATATYPE] = MPI_DATATYPE_NULL,
    [VK_OP] = MPI_OP_NULL, [VK_ERRHANDLER] = MPI_ERRHANDLER_NULL, [VK_INFO] = MPI_INFO_NULL,
    [VK_REQUEST] = MPI_REQUEST_NULL, [VK_MESSAGE] = MPI_MESSAGE_NULL, [VK_FILE] = 0,
    [VK_WIN] = MPI_WIN_NULL, [VK_KEYVAL] = MPI_KEYVAL_INVALID};

struct vh_table {
  uint64_t *real;
  uint32_t *next_free; /* UINT32_MAX-1: live; otherwise the next free slot (UINT32_MAX: none) */
  uint32_t cap, used, free_head;
};
#define LIVE (UINT32_MAX - 1)
/* A freed object's slot is never reused (requests and messages excepted): a restart replays
   every creation in order, and a later record may name a handle freed since (DEAD). */
#define DEAD (UINT32_MAX - 2)
static struct vh_table tables[VK_COUNT];
/* what each request is (parallel to tables[VK_REQUEST]) */
static struct shim_req *req_meta;
static uint64_t req_seq;

static uint64_t predef_real[N_PREDEF];
static uint64_t null_real[VK_COUNT];

/* Open-addressing maps (kind, abi) -> index and (kind, real) -> index over vh_predefs. */
#define HBITS 10
#define HSIZE (1u << HBITS)
static int16_t by_abi[HSIZE], by_real[HSIZE];

static inline uint32_t hash(int kind, uint64_t v) {
  uint64_t x = (v ^ ((uint64_t)kind << 56)) * 0x9E3779B97F4A7C15ull;
  return (uint32_t)(x >> (64 - HBITS));
}

static void put(int16_t *map, int kind, uint64_t v, int idx) {
  for (uint32_t h = hash(kind, v);; h = (h + 1) & (HSIZE - 1)) {
    if (map[h] < 0) { map[h] = (int16_t)idx; return; }
  }
}

static int find_abi(int kind, int64_t v) {
  for (uint32_t h = hash(kind, (uint64_t)v);; h = (h + 1) & (HSIZE - 1)) {
    int i = by_abi[h];
    if (i < 0) return -1;
    if (vh_predefs[i].kind == kind && vh_predefs[i].abi == v) return i;
  }
}

static int find_real(int kind, uint64_t r) {
  for (uint32_t h = hash(kind, r);; h = (h + 1) & (HSIZE - 1)) {
    int i = by_real[h];
    if (i < 0) return -1;
    if (vh_predefs[i].kind == kind && predef_real[i] == r) return i;
  }
}

#define LH_ABSENT_VALUE UINT64_MAX
/* INT64_MIN: no handle of any kind */
HIDDEN struct vh_last vh_last[VK_COUNT] = {[0 ... VK_COUNT - 1] = {INT64_MIN, 0}};

void vh_init(void) {
  for (int k = 0; k < VK_COUNT; k++) vh_last[k].v = INT64_MIN;
  LH_CALL_VOID(lh_predefined, predef_real, N_PREDEF);
  memset(by_abi, 0xff, sizeof by_abi);
  memset(by_real, 0xff, sizeof by_real);
  for (int i = 0; i < N_PREDEF; i++) {
    const struct vh_predef *p = &vh_predefs[i];
    if (find_abi(p->kind, p->abi) < 0) put(by_abi, p->kind, (uint64_t)p->abi, i);
    if (predef_real[i] != LH_ABSENT_VALUE && find_real(p->kind, predef_real[i]) < 0)
      put(by_real, p->kind, predef_real[i], i);
  }
  for (int k = 0; k < VK_COUNT; k++) {
    int i = find_abi(k, abi_null[k]);
    null_real[k] = i >= 0 ? predef_real[i] : 0;
  }
}

uint64_t vh_null(int kind) { return null_real[kind]; }

static inline int is_user(int kind, int64_t v) {
  return ((uint32_t)v & USER_BITS) == USER_BITS && (((uint32_t)v >> 26) & 0xF) == kind_code[kind];
}

uint64_t vh_real_lookup(int kind, int64_t v) {
  if (is_user(kind, v)) {
    struct vh_table *t = &tables[kind];
    uint32_t i = (uint32_t)v & IDX_MASK;
    /* a freed key still names itself while attributes hold it (MPI_Attr_delete after
       MPI_Keyval_free) */
    if (i < t->used && (t->next_free[i] == LIVE || (t->next_free[i] == DEAD && (replay_running || kind == VK_KEYVAL))))
      return t->real[i];
    return null_real[kind]; /* a stale or foreign handle: the real MPI reports the error */
  }
  int i = find_abi(kind, v);
  if (i < 0 || predef_real[i] == LH_ABSENT_VALUE) return null_real[kind];
  vh_last[kind] = (struct vh_last){v, predef_real[i]};
  return predef_real[i];
}

static int64_t vh_alloc(int kind, uint64_t real) {
  struct vh_table *t = &tables[kind];
  uint32_t i;
  if (t->free_head != UINT32_MAX && t->cap) {
    i = t->free_head;
    t->free_head = t->next_free[i];
  } else {
    if (t->used == t->cap) {
      uint32_t cap = t->cap ? t->cap * 2 : 64;
      if (cap > IDX_MASK) shim_die("too many live MPI objects of one kind (%u)", t->cap);
      uint64_t *r = realloc(t->real, cap * sizeof *r);
      uint32_t *n = realloc(t->next_free, cap * sizeof *n);
      if (!r || !n) shim_die("out of memory for MPI handles");
      if (kind == VK_REQUEST) {
        struct shim_req *m = realloc(req_meta, cap * sizeof *m);
        if (!m) shim_die("out of memory for MPI requests");
        req_meta = m;
      }
      t->real = r;
      t->next_free = n;
      if (!t->cap) t->free_head = UINT32_MAX;
      t->cap = cap;
    }
    i = t->used++;
  }
  t->real[i] = real;
  t->next_free[i] = LIVE;
  if (kind == VK_REQUEST) {
    memset(&req_meta[i], 0, sizeof req_meta[i]);
    req_meta[i].seq = ++req_seq;
  }
  return (int64_t)(int32_t)(USER_BITS | kind_code[kind] << 26 | i);
}

int64_t vh_new(int kind, uint64_t real) { return vh_alloc(kind, real); }

void vh_req_reseq(struct shim_req *m) { m->seq = ++req_seq; }

struct shim_req *vh_req_meta(int64_t v) {
  if (!is_user(VK_REQUEST, v)) return NULL;
  uint32_t i = (uint32_t)v & IDX_MASK;
  struct vh_table *t = &tables[VK_REQUEST];
  return i < t->used && t->next_free[i] == LIVE ? &req_meta[i] : NULL;
}

void vh_req_foreach(void (*fn)(int64_t v, uint64_t *real, struct shim_req *m, void *arg), void *arg) {
  struct vh_table *t = &tables[VK_REQUEST];
  for (uint32_t i = 0; i < t->used; i++)
    if (t->next_free[i] == LIVE)
      fn((int64_t)(int32_t)(USER_BITS | kind_code[VK_REQUEST] << 26 | i), &t->real[i], &req_meta[i], arg);
}

void vh_foreach_live(int kind, void (*fn)(int64_t v, void *arg), void *arg) {
  struct vh_table *t = &tables[kind];
  for (uint32_t i = 0; i < t->used; i++)
    if (t->next_free[i] == LIVE) fn((int64_t)(int32_t)(USER_BITS | kind_code[kind] << 26 | i), arg);
}

void vh_alias(int kind, int64_t held, int64_t fresh) {
  if (held == fresh || !is_user(kind, held) || !is_user(kind, fresh)) return;
  struct vh_table *t = &tables[kind];
  uint32_t h = (uint32_t)held & IDX_MASK, f = (uint32_t)fresh & IDX_MASK;
  if (h >= t->used || f >= t->used) return;
  t->real[h] = t->real[f];
  if (t->next_free[h] != DEAD) t->next_free[h] = LIVE;
  t->next_free[f] = t->free_head;
  t->free_head = f;
}

void vh_set_real(int kind, int64_t v, uint64_t real) {
  if (!is_user(kind, v)) return;
  uint32_t i = (uint32_t)v & IDX_MASK;
  if (i < tables[kind].used) tables[kind].real[i] = real;
}

void vh_reset(void) {
  /* the user handles keep their slots; their real values are refilled by the replay */
  for (int k = 0; k < VK_COUNT; k++)
    for (uint32_t i = 0; i < tables[k].used; i++)
      if (tables[k].next_free[i] == LIVE || tables[k].next_free[i] == DEAD) tables[k].real[i] = 0;
  vh_init();
}

int vh_state(int kind, int64_t v) {
  if (!is_user(kind, v)) return VH_OTHER;
  struct vh_table *t = &tables[kind];
  uint32_t i = (uint32_t)v & IDX_MASK;
  return i < t->used && t->next_free[i] == LIVE ? VH_LIVE : VH_DEAD;
}

int64_t vh_index(int kind, int64_t v) {
  if (!is_user(kind, v)) return -1;
  uint32_t i = (uint32_t)v & IDX_MASK;
  return i < tables[kind].used ? (int64_t)i : -1;
}

/* After a restart's replay: the objects the application had freed before the checkpoint, and
   that the replay made again because a later record or another rank needed them (replay.c
   prunes the others from the log), are freed again now, in the order they were made, so the
   new lower half does not keep them for the rest of the run (MPICH reports leaked datatypes
   at MPI_Finalize, and runs out of context ids after a few thousand communicators). Freeing a
   communicator is local in both lower halves, so ranks need not agree on when. Files: a
   closed file is not opened again (fileio.c); keys: no record reads one, so a freed key's
   record is always pruned. */
void vh_free_dead(void) {
  static const int kinds[] = {VK_COMM, VK_DATATYPE, VK_GROUP, VK_OP, VK_ERRHANDLER, VK_INFO};
  for (size_t n = 0; n < sizeof kinds / sizeof kinds[0]; n++) {
    int k = kinds[n];
    struct vh_table *t = &tables[k];
    for (uint32_t i = 0; i < t->used; i++) {
      if (t->next_free[i] != DEAD || t->real[i] == 0 || t->real[i] == null_real[k]) continue;
      uint64_t r = t->real[i];
      switch (k) {
        case VK_COMM: LH_CALL(MPI_Comm_free, &r); break;
        case VK_DATATYPE: LH_CALL(MPI_Type_free, &r); break;
        case VK_GROUP: LH_CALL(MPI_Group_free, &r); break;
        case VK_OP: LH_CALL(MPI_Op_free, &r); break;
        case VK_ERRHANDLER: LH_CALL(MPI_Errhandler_free, &r); break;
        default: LH_CALL(MPI_Info_free, &r); break;
      }
      t->real[i] = 0;
    }
  }
}

int64_t vh_make(int kind, uint64_t real) {
  if (real == null_real[kind]) return abi_null[kind];
  if (kind != VK_REQUEST) {
    int i = find_real(kind, real);
    if (i >= 0) return vh_predefs[i].abi;
  }
  return vh_alloc(kind, real);
}

void vh_update(int kind, int64_t *v, uint64_t real) {
  if (!is_user(kind, *v)) {
    if (real == null_real[kind]) *v = abi_null[kind];
    return;
  }
  struct vh_table *t = &tables[kind];
  uint32_t i = (uint32_t)*v & IDX_MASK;
  if (i >= t->used || t->next_free[i] != LIVE) return;
  if (real == null_real[kind]) {
    if (kind == VK_REQUEST) shim_req_done(&req_meta[i]);
    if (kind == VK_REQUEST && req_meta[i].persist) {
      /* a persistent request completed: it stays, inactive, until MPI_Request_free (and a
         restart must not give it a completed stand-in) */
      req_meta[i].kind = SHIM_REQ_PERSISTENT;
      req_meta[i].done = 0;
      t->real[i] = real;
      return;
    }
    if (kind == VK_REQUEST || kind == VK_MESSAGE) {
      t->next_free[i] = t->free_head;
      t->free_head = i;
    } else {
      t->next_free[i] = DEAD;
    }
    *v = abi_null[kind];
  } else {
    t->real[i] = real;
  }
}

int64_t vh_from_real(int kind, uint64_t real) {
  if (real == null_real[kind]) return abi_null[kind];
  int i = find_real(kind, real);
  if (i >= 0) return vh_predefs[i].abi;
  struct vh_table *t = &tables[kind];
  for (uint32_t k = 0; k < t->used; k++)
    if (t->next_free[k] == LIVE && t->real[k] == real)
      return (int64_t)(int32_t)(USER_BITS | kind_code[kind] << 26 | k);
  return vh_alloc(kind, real);
}
