/* MPI-IO across checkpoints. The data of a file is the file system's, not the checkpoint's;
 * what lives in the MPI library is the open file: its view, atomicity and file pointers. So
 *   - MPI_File_open puts a step in the replay log that opens the file again after a restart
 *     (if it was still open at the checkpoint), binding the new file to the application's
 *     handle; MPI_File_set_view, MPI_File_set_atomicity and MPI_File_set_errhandler keep
 *     their last arguments;
 *   - at a checkpoint (the job quiet, the lower half held) each open file is synced and its
 *     individual and shared pointers are read;
 *   - after the replay of a restart, each file gets its view, error handler, atomicity and
 *     pointers back.
 * A file that cannot be opened again at a restart (moved, deleted) stops the restart with one
 * line naming it. Nonblocking I/O needs nothing here: its requests are drained like others. */

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "shim.h"

struct mfile {
  struct mfile *next;
  int64_t fh, comm, info; /* virtual handles, as the application gave them */
  char *name, *path;      /* as given; absolute, for messages */
  int amode;
  int open;               /* still open at the last checkpoint */
  int has_view;
  MPI_Offset disp;
  int64_t etype, filetype, vinfo;
  char *datarep;
  int atomic;
  int has_errh;
  int64_t errh;
  MPI_Offset pos, shared; /* at the last checkpoint, in etypes of the view */
  int has_shared;
};
/* newest first: lookups are mostly for files opened lately */
static struct mfile *files;

static struct mfile *find(MPI_File fh) {
  for (struct mfile *f = files; f; f = f->next)
    if (f->fh == (int64_t)(intptr_t)fh) return f;
  return NULL;
}

static char *absolute(const char *name) {
  char cwd[4096];
  size_t n = strlen(name) + 1;
  if (name[0] == '/' || !getcwd(cwd, sizeof cwd)) return replay_copy(name, n);
  char *p = shim_tmp(strlen(cwd) + 1 + n);
  sprintf(p, "%s/%s", cwd, name);
  return p;
}

static int reopen(void *arg, char *err, size_t errlen) {
  struct mfile *f = arg;
  if (!f->open) return MPI_SUCCESS; /* closed before the checkpoint */
  /* the file exists since before the checkpoint: creating it now would hide its loss */
  int amode = f->amode & ~(MPI_MODE_CREATE | MPI_MODE_EXCL);
  uint64_t real = 0;
  int rc = LH_CALL(MPI_File_open, vh_real(VK_COMM, f->comm), f->name, amode, vh_real(VK_INFO, f->info), &real);
  if (rc != MPI_SUCCESS) {
    const char *why = access(f->path, F_OK) != 0 ? strerror(errno) : "the MPI library cannot open it";
    snprintf(err, errlen,
             "cannot open MPI file %s again after the restart (%s): it was open at the checkpoint, and files are not part of "
             "checkpoints; put it back as it was, then restart again",
             f->path, why);
    return rc;
  }
  vh_set_real(VK_FILE, f->fh, real);
  return MPI_SUCCESS;
}

/* A closed file's record was pruned from the replay log: the file is forgotten. */
static void forget(void *arg) {
  for (struct mfile **p = &files; *p; p = &(*p)->next)
    if (*p == arg) {
      struct mfile *f = *p;
      *p = f->next;
      free(f->name);
      free(f->path);
      free(f->datarep);
      free(f);
      return;
    }
}

/* What an open file's state names, which a restart sets after the replay: the objects must be
   made again even if no record still in the log needs them. */
void shim_files_pins(replay_dep_fn *fn, void *arg) {
  for (struct mfile *f = files; f; f = f->next) {
    if (vh_state(VK_FILE, f->fh) != VH_LIVE) continue;
    if (f->has_view) {
      fn(arg, RD_USE, VK_DATATYPE, f->etype);
      fn(arg, RD_USE, VK_DATATYPE, f->filetype);
      fn(arg, RD_USE, VK_INFO, f->vinfo);
    }
    if (f->has_errh) fn(arg, RD_USE, VK_ERRHANDLER, f->errh);
  }
}

/* The collectives on a file block inside the lower half until every member of its
   communicator is there (ROMIO's own barriers and reductions), like MPI_Comm_split: they are
   counted and met (shim_sync) on the communicator the file was opened on, so a checkpoint
   never waits for a rank stuck inside one. A communicator the application has freed since
   (allowed: the file keeps its own) can be met on no more; such a file's calls go in
   unmet, as before. Reads and writes need none of this: they are nonblocking calls and a
   wait in the upper half, drained like other collectives. */
void shim_sync_file(MPI_File fh) {
  struct mfile *f = find(fh);
  if (!f || vh_state(VK_COMM, f->comm) == VH_DEAD) return;
  shim_coll_begin((MPI_Comm)f->comm);
  shim_sync((MPI_Comm)f->comm);
}

int MPI_File_open(MPI_Comm comm, const char *filename, int amode, MPI_Info info, MPI_File *fh) {
  shim_enter();
  shim_coll_begin(comm);
  shim_sync(comm);
  uint64_t real = 0;
  int rc = LH_CALL(MPI_File_open, vh_real(VK_COMM, comm), filename, amode, vh_real(VK_INFO, info), &real);
  if (rc == MPI_SUCCESS) {
    int64_t v = vh_make(VK_FILE, real);
    *fh = (MPI_File)(intptr_t)v;
    struct mfile *f = calloc(1, sizeof *f);
    if (!f) shim_die("out of memory for an MPI file");
    f->fh = v;
    f->comm = comm;
    f->info = info;
    f->name = replay_strdup(filename);
    f->path = absolute(filename);
    f->amode = amode;
    f->open = 1;
    f->next = files;
    files = f;
    /* a local record: the step opens nothing for a file closed at the checkpoint */
    void *rec = replay_log_call(reopen, f, "MPI_File_open");
    replay_call_dep(rec, RD_MAKE, VK_FILE, v);
    replay_call_dep(rec, RD_USE, VK_COMM, comm);
    replay_call_dep(rec, RD_USE, VK_INFO, info);
    replay_call_dep(rec, RD_USE, VK_FILE, 0); /* the default error handler of files */
    replay_call_drop(rec, forget);
  }
  shim_sync_end();
  shim_leave();
  return rc;
}
SHIM_PMPI(MPI_File_open)

int MPI_File_set_view(MPI_File fh, MPI_Offset disp, MPI_Datatype etype, MPI_Datatype filetype, const char *datarep,
                      MPI_Info info) {
  shim_enter();
  shim_sync_file(fh);
  int rc = LH_CALL(MPI_File_set_view, vh_real(VK_FILE, (intptr_t)fh), disp, vh_real(VK_DATATYPE, etype),
                   vh_real(VK_DATATYPE, filetype), datarep, vh_real(VK_INFO, info));
  struct mfile *f = rc == MPI_SUCCESS ? find(fh) : NULL;
  if (f) {
    /* the datatypes and info may be freed now: their handles still name them in a replay */
    free(f->datarep);
    f->datarep = replay_strdup(datarep ? datarep : "native");
    f->has_view = 1;
    f->disp = disp;
    f->etype = etype;
    f->filetype = filetype;
    f->vinfo = info;
  }
  shim_sync_end();
  shim_leave();
  return rc;
}
SHIM_PMPI(MPI_File_set_view)

int MPI_File_set_atomicity(MPI_File fh, int flag) {
  shim_enter();
  shim_sync_file(fh);
  int rc = LH_CALL(MPI_File_set_atomicity, vh_real(VK_FILE, (intptr_t)fh), flag);
  struct mfile *f = rc == MPI_SUCCESS ? find(fh) : NULL;
  if (f) f->atomic = flag != 0;
  shim_sync_end();
  shim_leave();
  return rc;
}
SHIM_PMPI(MPI_File_set_atomicity)

/* The default handler of files (set on MPI_FILE_NULL) is set again in its place in the
   replay, before the files opened after it are; a file's own handler with its other state. */
static int set_default_errh(void *arg, char *err, size_t errlen) {
  (void)err, (void)errlen;
  return LH_CALL(MPI_File_set_errhandler, vh_null(VK_FILE), vh_real(VK_ERRHANDLER, *(int64_t *)arg));
}

int MPI_File_set_errhandler(MPI_File fh, MPI_Errhandler errhandler) {
  shim_enter();
  int rc = LH_CALL(MPI_File_set_errhandler, vh_real(VK_FILE, (intptr_t)fh), vh_real(VK_ERRHANDLER, errhandler));
  if (rc == MPI_SUCCESS && fh == MPI_FILE_NULL) {
    int64_t *h = replay_copy(&(int64_t){errhandler}, sizeof(int64_t));
    void *rec = replay_log_call(set_default_errh, h, "MPI_File_set_errhandler");
    replay_call_dep(rec, RD_TARGET, VK_FILE, 0);
    replay_call_dep(rec, RD_USE, VK_ERRHANDLER, errhandler);
    replay_call_supersedable(rec);
    replay_call_drop(rec, free);
  } else if (rc == MPI_SUCCESS) {
    struct mfile *f = find(fh);
    if (f) {
      f->has_errh = 1;
      f->errh = errhandler;
    }
  }
  shim_leave();
  return rc;
}
SHIM_PMPI(MPI_File_set_errhandler)

/* Called holding the lower half, every rank at once (File_sync is collective; members of a
   file's communicator opened their files in the same order, so they meet in the same one). */
void shim_files_save(void) {
  for (struct mfile *f = files; f; f = f->next) {
    uint64_t r = vh_real(VK_FILE, f->fh);
    f->open = r != vh_null(VK_FILE);
    if (!f->open) continue;
    /* written data reaches the file system before the image is written */
    if (f->amode & (MPI_MODE_WRONLY | MPI_MODE_RDWR)) LH_CALL(MPI_File_sync, r);
    f->pos = 0;
    LH_CALL(MPI_File_get_position, r, &f->pos);
    /* MPICH 4.0.2 says -1 at the start of a view whose filetype has a lower bound (io/resized2;
       natively too), where its pointer is at the view's first etype: 0 for a seek */
    if (f->pos < 0) f->pos = 0;
    /* the shared pointer of a file never used with one stays 0: nothing to restore, and no
       seek (a collective) at the restart */
    MPI_Offset sh = 0;
    f->has_shared = !(f->amode & MPI_MODE_SEQUENTIAL) && LH_CALL(MPI_File_get_position_shared, r, &sh) == MPI_SUCCESS && sh != 0;
    f->shared = sh < 0 ? 0 : sh;
  }
}

static int restore_one(struct mfile *f, char *err, size_t errlen) {
  uint64_t r = vh_real(VK_FILE, f->fh);
  int rc = MPI_SUCCESS;
  const char *what = "";
  if (f->has_view) {
    what = "MPI_File_set_view";
    rc = LH_CALL(MPI_File_set_view, r, f->disp, vh_real(VK_DATATYPE, f->etype), vh_real(VK_DATATYPE, f->filetype),
                 f->datarep, vh_real(VK_INFO, f->vinfo));
  }
  if (rc == MPI_SUCCESS && f->has_errh) {
    what = "MPI_File_set_errhandler";
    rc = LH_CALL(MPI_File_set_errhandler, r, vh_real(VK_ERRHANDLER, f->errh));
  }
  if (rc == MPI_SUCCESS && f->atomic) {
    what = "MPI_File_set_atomicity";
    rc = LH_CALL(MPI_File_set_atomicity, r, 1);
  }
  if (rc == MPI_SUCCESS) {
    what = "MPI_File_seek";
    rc = LH_CALL(MPI_File_seek, r, f->pos, MPI_SEEK_SET);
  }
  if (rc == MPI_SUCCESS && f->has_shared) {
    what = "MPI_File_seek_shared";
    rc = LH_CALL(MPI_File_seek_shared, r, f->shared, MPI_SEEK_SET);
  }
  if (rc != MPI_SUCCESS)
    snprintf(err, errlen, "cannot set MPI file %s back as it was at the checkpoint: %s failed on the new MPI (error class %d)",
             f->path, what, rc);
  return rc;
}

/* Oldest first: the order the members of a communicator opened them in. */
int shim_files_restore(char *err, size_t errlen) {
  size_t n = 0;
  for (struct mfile *f = files; f; f = f->next) n++;
  struct mfile **all = shim_tmp(n * sizeof *all);
  size_t k = n;
  for (struct mfile *f = files; f; f = f->next) all[--k] = f;
  int rc = MPI_SUCCESS;
  for (size_t i = 0; i < n && rc == MPI_SUCCESS; i++)
    if (all[i]->open) rc = restore_one(all[i], err, errlen);
  free(all);
  return rc == MPI_SUCCESS ? 0 : -1;
}
