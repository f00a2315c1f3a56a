/* User error handlers: the real library calls a per-slot trampoline in the lower half
 * (lower/extra.c), which comes back here; the application's handler gets the virtual handle
 * and the ABI error class. A restart makes each handler again (the replay log), and the
 * replay of MPI_Comm_set_errhandler (generated) and of fileio.c sets them again. */

#include "shim.h"

#define ERRH_SLOTS 64 /* as many trampolines as lower/extra.c has */
static void *errh_fns[2][ERRH_SLOTS];
static int n_errh[2];

__attribute__((no_stack_protector)) void shim_errh_upcall(int kind, int slot, uint64_t obj, int code) {
  uint64_t lower = fs_get();
  fs_set(shim_upper_fs);
  if (kind >= 0 && kind < 2 && slot >= 0 && slot < n_errh[kind] && errh_fns[kind][slot]) {
    if (kind == 0) {
      MPI_Comm c = (MPI_Comm)vh_from_real(VK_COMM, obj);
      ((MPI_Comm_errhandler_function *)errh_fns[0][slot])(&c, &code);
    } else {
      MPI_File f = (MPI_File)(intptr_t)vh_from_real(VK_FILE, obj);
      ((MPI_File_errhandler_function *)errh_fns[1][slot])(&f, &code);
    }
  }
  fs_set(lower);
}

/* A function already registered keeps its slot, so handlers created over and over (and freed)
   do not use the slots up. */
static int errh_slot(int kind, void *fn) {
  for (int i = 0; i < n_errh[kind]; i++)
    if (errh_fns[kind][i] == fn) return i;
  if (n_errh[kind] == ERRH_SLOTS)
    shim_die("more than %d distinct error handler functions are not supported", ERRH_SLOTS);
  errh_fns[kind][n_errh[kind]] = fn;
  return n_errh[kind]++;
}

/* A handler made again in a new lower half (the replay), bound to the application's handle. */
struct made { int kind, slot; int64_t handle; };

static int create(int kind, int slot, uint64_t *real) {
  return kind == 0 ? LH_CALL(MPI_Comm_create_errhandler, (void *)(intptr_t)slot, real)
                   : LH_CALL(MPI_File_create_errhandler, (void *)(intptr_t)slot, real);
}

static int remake(void *arg, char *err, size_t errlen) {
  (void)err, (void)errlen;
  struct made *m = arg;
  uint64_t real = 0;
  int rc = create(m->kind, m->slot, &real);
  if (rc == MPI_SUCCESS) vh_set_real(VK_ERRHANDLER, m->handle, real);
  return rc;
}

static int make(int kind, void *fn, MPI_Errhandler *errhandler) {
  shim_enter(); /* a checkpoint sees the handler made and logged, or neither */
  int slot = errh_slot(kind, fn);
  uint64_t real = 0;
  int rc = create(kind, slot, &real);
  if (rc != MPI_SUCCESS) {
    shim_leave();
    return rc;
  }
  *errhandler = (MPI_Errhandler)vh_new(VK_ERRHANDLER, real);
  struct made *m = malloc(sizeof *m);
  if (!m) shim_die("out of memory for an error handler");
  *m = (struct made){kind, slot, *errhandler};
  void *rec = replay_log_call(remake, m, kind == 0 ? "MPI_Comm_create_errhandler" : "MPI_File_create_errhandler");
  replay_call_dep(rec, RD_MAKE, VK_ERRHANDLER, *errhandler);
  replay_call_drop(rec, free);
  shim_leave();
  return MPI_SUCCESS;
}

int MPI_Comm_create_errhandler(MPI_Comm_errhandler_function *fn, MPI_Errhandler *errhandler) {
  return make(0, (void *)fn, errhandler);
}
SHIM_PMPI(MPI_Comm_create_errhandler)

int MPI_File_create_errhandler(MPI_File_errhandler_function *fn, MPI_Errhandler *errhandler) {
  return make(1, (void *)fn, errhandler);
}
SHIM_PMPI(MPI_File_create_errhandler)

/* MPI-1's names for the communicator ones. */
int MPI_Errhandler_create(MPI_Comm_errhandler_function *fn, MPI_Errhandler *errhandler) {
  return PMPI_Comm_create_errhandler(fn, errhandler);
}
SHIM_PMPI(MPI_Errhandler_create)

int MPI_Errhandler_set(MPI_Comm comm, MPI_Errhandler errhandler) { return PMPI_Comm_set_errhandler(comm, errhandler); }
SHIM_PMPI(MPI_Errhandler_set)

int MPI_Errhandler_get(MPI_Comm comm, MPI_Errhandler *errhandler) { return PMPI_Comm_get_errhandler(comm, errhandler); }
SHIM_PMPI(MPI_Errhandler_get)
