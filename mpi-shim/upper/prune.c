/* Pruning the replay log (docs/mpi-checkpoint.md, "Pruning the replay log").
 *
 * A job that makes and frees communicators and datatypes every step would otherwise replay
 * every one of them at each restart. At each checkpoint (the job quiet, every rank here at
 * once) the records nothing needs any more are dropped:
 *   - a record that makes objects is needed when one of them is live (or pinned: an open
 *     file's view, a request's datatype), or when a needed record reads one of them;
 *   - a record that changes an object (commit, names, error handler, info) is kept exactly
 *     when the record that made the object is, unless a later call of the same function on
 *     the same object replaced it with nothing reading the object in between;
 *   - an MPI_Comm_idup's completion goes with its start; a Buffer_attach followed by a
 *     Buffer_detach goes away with it.
 * A local record (datatype, group, op, info, error handler, key) is dropped on this rank's
 * word alone. A collective one (a communicator made by several ranks together) must be kept or
 * dropped by all its participants alike, or the replay would call the collective on some of
 * them only. Whether a communicator is live is no help for that: MPI_Comm_free does not
 * synchronize, so at a checkpoint one member may have freed it and another not yet, and a
 * member that got MPI_COMM_NULL (MPI_Comm_split with MPI_UNDEFINED) never holds it at all.
 * So each collective record carries a name all its participants computed alike when it was
 * made, and their number; the ranks exchange the names of the collective records each of
 * them could drop, and a record is dropped only where all its participants offered it. Names:
 *   - made by every member of a parent communicator P (split, create, dup, idup, cart, graph,
 *     merge of an intercommunicator): hash(name(P), how many such records P has had), which
 *     every member of P counts alike because they call them in the same order (MPI's rule for
 *     collectives on one communicator); participants: P's size (plus its remote size);
 *   - MPI_Comm_create_group(P, G): only G's members call it, in the same order among
 *     themselves: hash(name(P), G's MPI_COMM_WORLD ranks, how many such records (P, G) has
 *     had); participants: G's size;
 *   - an intercommunicator (MPI_Intercomm_create, ..._from_groups): its two groups' WORLD
 *     ranks (unordered) and the tag, counted per such pair; participants: both sizes.
 * MPI_COMM_WORLD's name is 1, MPI_COMM_SELF's is its rank's own (records made from it have one
 * participant); a communicator of unknown origin (MPI_Comm_get_parent) has none, and records
 * made from it are never dropped. Dropping a record can make its inputs' records droppable,
 * and keeping one (because another participant needs it) can make its inputs needed: the
 * exchange is repeated until no rank's offer changes (usually one exchange and one check). A
 * name offered by the wrong ranks fails safe: too few offers keep the record. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "replay.h"

static uint64_t mix(uint64_t x) {
  x ^= x >> 30;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 27;
  x *= 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}
static uint64_t mix2(uint64_t a, uint64_t b) { return mix(a * 0x9E3779B97F4A7C15ull ^ mix(b + 0x632BE59BD9B4E019ull)); }

uint64_t replay_hash_str(const char *s) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (; s && *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001B3ull;
  return h;
}

/* ------------------------------------------------------------------ names */

/* The name of each communicator and how many collective records were made from it, by its
   virtual slot (slots are never reused). Upper-half memory: it survives restarts. */
struct cname { uint64_t name, made; };
static struct cname *cnames;
static size_t ncnames;
static struct cname world_name = {1, 0}, self_name;
static int my_rank = -1;

static int world_rank(void) {
  if (my_rank < 0) {
    int r = 0;
    LH_CALL(MPI_Comm_rank, vh_real(VK_COMM, MPI_COMM_WORLD), &r);
    my_rank = r;
  }
  return my_rank;
}

static struct cname *cname_of(MPI_Comm c) {
  if (c == MPI_COMM_WORLD) return &world_name;
  if (c == MPI_COMM_SELF) {
    if (!self_name.name) self_name.name = mix2(2, (uint64_t)world_rank() + 1);
    return &self_name;
  }
  int64_t i = vh_index(VK_COMM, c);
  if (i < 0) return NULL;
  if ((size_t)i >= ncnames) {
    size_t n = ncnames ? ncnames : 64;
    while (n <= (size_t)i) n *= 2;
    struct cname *p = realloc(cnames, n * sizeof *p);
    if (!p) shim_die("out of memory for the MPI replay log");
    memset(p + ncnames, 0, (n - ncnames) * sizeof *p);
    cnames = p;
    ncnames = n;
  }
  return &cnames[i];
}

static void name_made(MPI_Comm made, uint64_t name) {
  struct cname *c = made == MPI_COMM_NULL ? NULL : cname_of(made);
  if (c) c->name = name;
}

/* Counters of the records made by a group within a parent, or by a pair of groups (and, for
   ckpt.c, of the communicators MPI_Comm_create_group made alike: shim_count_next). */
static struct { uint64_t key, n; } *counters;
static size_t ccap, cused;

uint64_t shim_count_next(uint64_t key) {
  if (!key) key = 1;
  if ((cused + 1) * 2 > ccap) {
    size_t oc = ccap;
    __typeof__(counters) old = counters;
    ccap = ccap ? ccap * 2 : 64;
    counters = calloc(ccap, sizeof *counters);
    if (!counters) shim_die("out of memory for the MPI replay log");
    cused = 0;
    for (size_t i = 0; i < oc; i++)
      if (old[i].key) {
        size_t h = old[i].key & (ccap - 1);
        while (counters[h].key) h = (h + 1) & (ccap - 1);
        counters[h] = old[i];
        cused++;
      }
    free(old);
  }
  size_t h = key & (ccap - 1);
  while (counters[h].key && counters[h].key != key) h = (h + 1) & (ccap - 1);
  if (!counters[h].key) {
    counters[h].key = key;
    cused++;
  }
  return ++counters[h].n;
}

/* a hash of a group's members as MPI_COMM_WORLD ranks, in the group's order */
static uint64_t group_hash(uint64_t group, int *size) {
  int n = 0;
  *size = -1;
  if (LH_CALL(MPI_Group_size, group, &n) != MPI_SUCCESS) return 0;
  uint64_t wg = 0;
  if (LH_CALL(MPI_Comm_group, vh_real(VK_COMM, MPI_COMM_WORLD), &wg) != MPI_SUCCESS) return 0;
  int *in = shim_tmp(2 * (size_t)(n > 0 ? n : 1) * sizeof(int)), *out = in + n;
  for (int i = 0; i < n; i++) in[i] = i;
  int rc = LH_CALL(MPI_Group_translate_ranks, group, n, in, wg, out);
  LH_CALL(MPI_Group_free, &wg);
  uint64_t h = mix2(0x67, (uint64_t)n);
  for (int i = 0; i < n; i++) h = mix2(h, (uint64_t)(uint32_t)out[i]);
  free(in);
  if (rc == MPI_SUCCESS) *size = n;
  return h;
}

void replay_coll_parent(struct replay_rec *h, MPI_Comm parent, MPI_Comm made) {
  struct cname *p = cname_of(parent);
  uint64_t r = vh_real(VK_COMM, parent);
  int n = 0, inter = 0, rn = 0;
  if (!p || !p->name || LH_CALL(MPI_Comm_size, r, &n) != MPI_SUCCESS) {
    h->nparts = -1; /* of unknown origin: never dropped */
    return;
  }
  if (LH_CALL(MPI_Comm_test_inter, r, &inter) == MPI_SUCCESS && inter && LH_CALL(MPI_Comm_remote_size, r, &rn) == MPI_SUCCESS)
    n += rn;
  h->name = mix2(p->name, ++p->made);
  h->nparts = n;
  name_made(made, h->name);
}

void replay_coll_group(struct replay_rec *h, MPI_Comm comm, MPI_Group group, MPI_Comm made) {
  struct cname *p = cname_of(comm);
  int n = -1;
  uint64_t g = p && p->name ? group_hash(vh_real(VK_GROUP, group), &n) : 0;
  if (n <= 0) {
    h->nparts = -1;
    return;
  }
  uint64_t key = mix2(mix2(p->name, 0x6367), g);
  h->name = mix2(key, shim_count_next(key));
  h->nparts = n;
  name_made(made, h->name);
}

void replay_coll_pair(struct replay_rec *h, MPI_Comm made, uint64_t tag) {
  h->nparts = -1;
  if (made == MPI_COMM_NULL) return;
  uint64_t r = vh_real(VK_COMM, made), lg = 0, rg = 0;
  if (LH_CALL(MPI_Comm_group, r, &lg) != MPI_SUCCESS) return;
  if (LH_CALL(MPI_Comm_remote_group, r, &rg) != MPI_SUCCESS) {
    LH_CALL(MPI_Group_free, &lg);
    return;
  }
  int nl = -1, nr = -1;
  uint64_t hl = group_hash(lg, &nl), hr = group_hash(rg, &nr);
  LH_CALL(MPI_Group_free, &lg);
  LH_CALL(MPI_Group_free, &rg);
  if (nl <= 0 || nr <= 0) return;
  uint64_t key = mix2(mix2(0x6963, tag), mix2(hl < hr ? hl : hr, hl < hr ? hr : hl));
  h->name = mix2(key, shim_count_next(key));
  h->nparts = nl + nr;
  name_made(made, h->name);
}

/* ------------------------------------------------------------------ the dependency graph */

enum { ST_ROOT = 1, ST_SUPERSEDED = 2, ST_KEPT = 4, ST_COLL = 8, ST_OFFER = 16, ST_FORCED = 32 };

struct obj { int kind; int64_t v; int producer, last_change; };
struct graph {
  struct replay_rec **recs;
  int n;
  unsigned char *st;
  /* i needs the record that made each object it reads (req) and takes along the records that
     change the objects it makes (att); linked lists in one pool */
  int *req_head, *att_head, *link_to, *link_next;
  size_t nlinks, caplinks;
  struct obj *objs;
  size_t ocap, oused;
  /* the record being read */
  int cur, makes, wanted, has_target, target_kind;
  int64_t target_v;
};

static size_t obj_slot(const struct graph *g, int kind, int64_t v) {
  size_t h = mix2((uint64_t)kind, (uint64_t)v) & (g->ocap - 1);
  while (g->objs[h].kind >= 0 && (g->objs[h].kind != kind || g->objs[h].v != v)) h = (h + 1) & (g->ocap - 1);
  return h;
}

static struct obj *obj_get(struct graph *g, int kind, int64_t v) {
  if ((g->oused + 1) * 2 > g->ocap) {
    struct obj *old = g->objs;
    size_t oc = g->ocap;
    g->ocap = g->ocap ? g->ocap * 2 : 1024;
    g->objs = malloc(g->ocap * sizeof *g->objs);
    if (!g->objs) shim_die("out of memory pruning the MPI replay log");
    for (size_t i = 0; i < g->ocap; i++) g->objs[i].kind = -1;
    for (size_t i = 0; i < oc; i++)
      if (old[i].kind >= 0) g->objs[obj_slot(g, old[i].kind, old[i].v)] = old[i];
    free(old);
  }
  size_t s = obj_slot(g, kind, v);
  struct obj *o = &g->objs[s];
  if (o->kind < 0) {
    *o = (struct obj){kind, v, -1, -1};
    g->oused++;
  }
  return o;
}

static void link_add(struct graph *g, int *head, int from, int to) {
  if (g->nlinks == g->caplinks) {
    g->caplinks = g->caplinks ? g->caplinks * 2 : 1024;
    g->link_to = realloc(g->link_to, g->caplinks * sizeof(int));
    g->link_next = realloc(g->link_next, g->caplinks * sizeof(int));
    if (!g->link_to || !g->link_next) shim_die("out of memory pruning the MPI replay log");
  }
  g->link_to[g->nlinks] = to;
  g->link_next[g->nlinks] = head[from];
  head[from] = (int)g->nlinks++;
}

/* pinned objects get a producer of -2 until a record makes them */
static void pin(void *arg, int role, int kind, int64_t v) {
  (void)role;
  if (vh_state(kind, v) == VH_OTHER) return;
  obj_get(arg, kind, v)->producer = -2;
}

static void pin_req(int64_t v, uint64_t *real, struct shim_req *m, void *arg) {
  (void)v, (void)real;
  if (m->datatype) pin(arg, RD_USE, VK_DATATYPE, m->datatype);
  if (m->comm) pin(arg, RD_USE, VK_COMM, m->comm);
}

static void on_dep(void *arg, int role, int kind, int64_t v) {
  struct graph *g = arg;
  if (role == RD_TARGET) {
    g->has_target = 1;
    g->target_kind = kind;
    g->target_v = v;
    return;
  }
  int state = vh_state(kind, v);
  struct obj *o = obj_get(g, kind, v);
  if (role == RD_MAKE) {
    g->makes++;
    if (state == VH_OTHER) return;
    if (state == VH_LIVE || o->producer == -2) g->wanted = 1;
    o->producer = g->cur;
    o->last_change = -1;
    return;
  }
  o->last_change = -1; /* read: a change before this one is not replaced by a later one */
  if (o->producer >= 0) link_add(g, g->req_head, g->cur, o->producer);
}

static void custom_deps(struct replay_rec *h, replay_dep_fn *d, void *a) {
  if (h->fn == REPLAY_OP_CREATE) {
    d(a, RD_MAKE, VK_OP, ((struct replay_op *)h)->op);
  } else if (h->fn == REPLAY_IDUP_START) {
    struct replay_idup *r = (struct replay_idup *)h;
    d(a, RD_USE, VK_COMM, r->parent);
    d(a, RD_MAKE, VK_COMM, r->comm);
  } else if (h->fn == REPLAY_CALL) {
    struct replay_call *r = (struct replay_call *)h;
    for (int k = 0; k < r->ndeps; k++) d(a, r->deps[k].role, r->deps[k].kind, r->deps[k].v);
  }
}

static int same_step(const struct replay_rec *a, const struct replay_rec *b) {
  if (a->fn != b->fn) return 0;
  if (a->fn > 0) return replay_gen_supersedable(a->fn);
  if (a->fn != REPLAY_CALL) return 0;
  const struct replay_call *x = (const void *)a, *y = (const void *)b;
  return x->supersedable && y->supersedable && x->run == y->run;
}

static void build(struct graph *g) {
  int n = 0;
  for (struct replay_rec *r = replay_head; r; r = r->next) n++;
  g->n = n;
  g->recs = malloc((size_t)(n + 1) * sizeof *g->recs);
  g->st = calloc((size_t)n + 1, 1);
  g->req_head = malloc((size_t)(n + 1) * sizeof(int));
  g->att_head = malloc((size_t)(n + 1) * sizeof(int));
  if (!g->recs || !g->st || !g->req_head || !g->att_head) shim_die("out of memory pruning the MPI replay log");
  int i = 0;
  for (struct replay_rec *r = replay_head; r; r = r->next, i++) {
    g->recs[i] = r;
    r->idx = i;
    g->req_head[i] = g->att_head[i] = -1;
  }
  shim_files_pins(pin, g);
  shim_attrs_pins(pin, g);
  vh_req_foreach(pin_req, g);
  int open_attach = -1;
  for (i = 0; i < n; i++) {
    struct replay_rec *r = g->recs[i];
    g->cur = i;
    g->makes = g->wanted = g->has_target = 0;
    if (r->fn > 0) replay_gen_deps(r, on_dep, g);
    else custom_deps(r, on_dep, g);
    const struct replay_call *call = r->fn == REPLAY_CALL ? (const void *)r : NULL;
    if (g->has_target) {
      struct obj *o = obj_get(g, g->target_kind, g->target_v);
      if (o->last_change >= 0 && same_step(g->recs[o->last_change], r)) g->st[o->last_change] |= ST_SUPERSEDED;
      o->last_change = i;
      if (o->producer >= 0) link_add(g, g->att_head, o->producer, i);
      else g->st[i] |= ST_ROOT; /* a predefined object's */
    } else if (r->fn == REPLAY_IDUP_WAIT) {
      link_add(g, g->att_head, ((struct replay_idup_wait *)r)->start->h.idx, i);
    } else if (call && call->bsend == 1) {
      open_attach = i;
      g->st[i] |= ST_ROOT;
    } else if (call && call->bsend == 2) {
      if (open_attach >= 0) g->st[open_attach] &= (unsigned char)~ST_ROOT; /* the pair cancels out */
      else g->st[i] |= ST_ROOT;
      open_attach = -1;
    } else if (g->makes || r->nparts != 0) {
      if (g->wanted || r->nparts < 0) g->st[i] |= ST_ROOT;
      else if (r->nparts > 0) g->st[i] |= ST_COLL;
    } else {
      g->st[i] |= ST_ROOT; /* a step that says nothing of itself */
    }
  }
}

/* Marks what the roots (and the records forced by other ranks) need; returns how many records
   are kept. */
static int close_over(struct graph *g) {
  int *stack = malloc((size_t)(g->n + 1) * sizeof(int)), sp = 0, kept = 0;
  if (!stack) shim_die("out of memory pruning the MPI replay log");
  for (int i = 0; i < g->n; i++) g->st[i] &= (unsigned char)~ST_KEPT;
  for (int i = 0; i < g->n; i++)
    if ((g->st[i] & (ST_ROOT | ST_FORCED)) && !(g->st[i] & ST_SUPERSEDED)) {
      g->st[i] |= ST_KEPT;
      stack[sp++] = i;
    }
  while (sp > 0) {
    int j = stack[--sp];
    kept++;
    for (int l = g->req_head[j]; l >= 0; l = g->link_next[l]) {
      int k = g->link_to[l];
      if (!(g->st[k] & (ST_KEPT | ST_SUPERSEDED))) { g->st[k] |= ST_KEPT; stack[sp++] = k; }
    }
    for (int l = g->att_head[j]; l >= 0; l = g->link_next[l]) {
      int k = g->link_to[l];
      if (!(g->st[k] & (ST_KEPT | ST_SUPERSEDED))) { g->st[k] |= ST_KEPT; stack[sp++] = k; }
    }
  }
  free(stack);
  return kept;
}

/* ------------------------------------------------------------------ the agreement */

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

#define CHECK(call)                     \
  do {                                  \
    if ((call) != MPI_SUCCESS) goto out; \
  } while (0)

/* Offers this rank's droppable collective records (ST_COLL and not kept) to all ranks; those
   every participant offered get ST_OFFER, the others ST_FORCED. 0 on success. */
static int exchange(struct graph *g, uint64_t comm) {
  int rc = -1, size = 0, mine = 0;
  uint64_t req = 0, dt_int = vh_real(VK_DATATYPE, MPI_INT), dt_byte = vh_real(VK_DATATYPE, MPI_BYTE);
  for (int i = 0; i < g->n; i++)
    if ((g->st[i] & ST_COLL) && !(g->st[i] & ST_KEPT)) mine++;
  uint64_t *names = malloc((size_t)(mine + 1) * sizeof *names), *all = NULL;
  int *counts = NULL, *displs = NULL;
  int k = 0;
  for (int i = 0; i < g->n; i++)
    if ((g->st[i] & ST_COLL) && !(g->st[i] & ST_KEPT)) names[k++] = g->recs[i]->name;
  CHECK(LH_CALL(MPI_Comm_size, comm, &size));
  counts = malloc((size_t)size * sizeof(int));
  displs = malloc((size_t)size * sizeof(int));
  if (!names || !counts || !displs) shim_die("out of memory pruning the MPI replay log");
  CHECK(LH_CALL(MPI_Iallgather, &mine, 1, dt_int, counts, 1, dt_int, comm, &req));
  CHECK(shim_wait(&req, NULL));
  int64_t total = 0;
  for (int p = 0; p < size; p++) {
    displs[p] = (int)(total * 8);
    total += counts[p];
    counts[p] *= 8;
  }
  if (total * 8 > 0x7fffffff) goto out;
  all = malloc((size_t)(total + 1) * sizeof *all);
  if (!all) shim_die("out of memory pruning the MPI replay log");
  CHECK(LH_CALL(MPI_Iallgatherv, names, mine * 8, dt_byte, all, counts, displs, dt_byte, comm, &req));
  CHECK(shim_wait(&req, NULL));
  qsort(all, (size_t)total, sizeof *all, cmp_u64);
  for (int i = 0; i < g->n; i++) {
    if (!(g->st[i] & ST_COLL)) continue;
    g->st[i] &= (unsigned char)~(ST_OFFER | ST_FORCED);
    int offered = 0;
    if (!(g->st[i] & ST_KEPT)) {
      uint64_t nm = g->recs[i]->name;
      size_t lo = 0, hi = (size_t)total;
      while (lo < hi) { size_t mid = (lo + hi) / 2; if (all[mid] < nm) lo = mid + 1; else hi = mid; }
      size_t c = 0;
      while (lo + c < (size_t)total && all[lo + c] == nm) c++;
      offered = c == (size_t)g->recs[i]->nparts;
    }
    g->st[i] |= offered ? ST_OFFER : ST_FORCED;
  }
  rc = 0;
out:
  free(names);
  free(all);
  free(counts);
  free(displs);
  return rc;
}

/* ------------------------------------------------------------------ dropping */

static void drop_rec(struct replay_rec *r) {
  if (r->fn > 0) {
    replay_gen_free(r);
    return;
  }
  if (r->fn == REPLAY_CALL) {
    struct replay_call *c = (struct replay_call *)r;
    if (c->drop) c->drop(c->arg);
  }
  free(r);
}

static int stats_on(void) {
  const char *s = getenv("MANA_MPI_REPLAY_STATS");
  return s && *s && strcmp(s, "0") != 0;
}

#define MAX_ROUNDS 8

void replay_prune(void) {
  /* diagnostics only (docs/mpi-checkpoint.md): the log as it was before pruning existed */
  const char *off = getenv("MANA_MPI_REPLAY_PRUNE");
  if (off && strcmp(off, "0") == 0) return;
  uint64_t comm = shim_ck_comm();
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  struct graph g = {0};
  build(&g);
  close_over(&g);
  int rounds = 0, ok = comm != 0;
  /* every rank runs the same rounds: the loop ends on a value all of them reduced */
  while (ok) {
    if (exchange(&g, comm) != 0) { ok = 0; break; }
    rounds++;
    close_over(&g);
    int changed = 0, any = 0;
    for (int i = 0; i < g.n; i++)
      if ((g.st[i] & ST_OFFER) && (g.st[i] & ST_KEPT)) changed = 1; /* needed after all */
    uint64_t req = 0;
    if (LH_CALL(MPI_Iallreduce, &changed, &any, 1, vh_real(VK_DATATYPE, MPI_INT), vh_real(VK_OP, MPI_MAX), comm, &req) != MPI_SUCCESS ||
        shim_wait(&req, NULL) != MPI_SUCCESS) {
      ok = 0;
      break;
    }
    if (!any) break;
    if (rounds == MAX_ROUNDS) { ok = 0; break; }
  }
  if (!ok) {
    /* no agreement: every collective record stays, local ones may still go */
    for (int i = 0; i < g.n; i++)
      if (g.st[i] & ST_COLL) g.st[i] |= ST_FORCED;
    close_over(&g);
  }
  uint64_t before = replay_nrecords;
  struct replay_rec **pp = &replay_head, *last = NULL;
  for (int i = 0; i < g.n; i++) {
    struct replay_rec *r = g.recs[i];
    if (g.st[i] & ST_KEPT) {
      *pp = r;
      pp = &r->next;
      last = r;
    } else {
      drop_rec(r);
      replay_nrecords--;
    }
  }
  *pp = NULL;
  replay_relink(last ? &last->next : &replay_head);
  if (stats_on()) {
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    fprintf(stderr, "mana: MPI replay log of rank %d: %lu records kept, %lu dropped at this checkpoint (%d agreement rounds, %.1f ms)\n",
            world_rank(), (unsigned long)replay_nrecords, (unsigned long)(before - replay_nrecords), rounds, ms);
  }
  free(g.recs);
  free(g.st);
  free(g.req_head);
  free(g.att_head);
  free(g.link_to);
  free(g.link_next);
  free(g.objs);
}

void replay_stats_restart(const struct timespec *start) {
  if (!stats_on()) return;
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  double ms = (double)(now.tv_sec - start->tv_sec) * 1e3 + (double)(now.tv_nsec - start->tv_nsec) / 1e6;
  fprintf(stderr, "mana: MPI restart of rank %d replayed %lu records in %.1f ms\n", world_rank(), (unsigned long)replay_nrecords, ms);
}
