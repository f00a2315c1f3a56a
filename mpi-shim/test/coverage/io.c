/* MPI-IO: individual and collective access, explicit offsets, views, nonblocking I/O, file
   pointers, sizes, modes, info, shared and ordered access. */
#include "cov.h"

static int file_errs;
static void count_file_err(MPI_File *fh, int *code, ...) {
  (void)fh, (void)code;
  file_errs++;
}

int main(int argc, char **argv) {
  cov_init(&argc, &argv);
  int n, r = cov_rank;
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  char path[256];
  const char *dir = getenv("COV_TMPDIR") ? getenv("COV_TMPDIR") : "/tmp";
  snprintf(path, sizeof path, "%s/mana-cov-io.%s", dir, getenv("COV_TAG") ? getenv("COV_TAG") : "x");
  if (r == 0) MPI_File_delete(path, MPI_INFO_NULL);
  MPI_Barrier(MPI_COMM_WORLD);
  MPI_File fh;
  CHECK(MPI_File_open(MPI_COMM_WORLD, path, MPI_MODE_CREATE | MPI_MODE_RDWR, MPI_INFO_NULL, &fh));
  int amode = 0;
  CHECK(MPI_File_get_amode(fh, &amode));
  OUT("amode create|rdwr %d", amode == (MPI_MODE_CREATE | MPI_MODE_RDWR));
  int buf[8], in[8];
  for (int i = 0; i < 8; i++) buf[i] = r * 100 + i;
  MPI_Status st;
  /* explicit offsets: rank r writes ints [8r, 8r+8) */
  CHECK(MPI_File_write_at(fh, (MPI_Offset)r * 32, buf, 4, MPI_INT, &st));
  int cnt = -1;
  MPI_Get_count(&st, MPI_INT, &cnt);
  CHECK(MPI_File_write_at_all(fh, (MPI_Offset)r * 32 + 16, buf + 4, 4, MPI_INT, &st));
  OUT("write_at count %d", cnt);
  CHECK(MPI_File_sync(fh));
  MPI_Barrier(MPI_COMM_WORLD);
  MPI_Offset size = 0;
  CHECK(MPI_File_get_size(fh, &size));
  OUT("size %ld", (long)size);
  memset(in, 0, sizeof in);
  CHECK(MPI_File_read_at(fh, (MPI_Offset)((r + 1) % n) * 32, in, 8, MPI_INT, &st));
  MPI_Get_count(&st, MPI_INT, &cnt);
  OUT("read_at %d %d %d count %d", in[0], in[4], in[7], cnt);
  CHECK(MPI_File_read_at_all(fh, 0, in, 2, MPI_INT, &st));
  OUT("read_at_all %d %d", in[0], in[1]);
  /* individual file pointer */
  CHECK(MPI_File_seek(fh, (MPI_Offset)r * 32 + 8, MPI_SEEK_SET));
  CHECK(MPI_File_read(fh, in, 2, MPI_INT, &st));
  MPI_Offset pos = 0;
  CHECK(MPI_File_get_position(fh, &pos));
  OUT("seek/read %d %d position %ld", in[0], in[1], (long)pos);
  CHECK(MPI_File_seek(fh, -4, MPI_SEEK_CUR));
  CHECK(MPI_File_read(fh, in, 1, MPI_INT, &st));
  OUT("seek_cur read %d", in[0]);
  CHECK(MPI_File_seek(fh, -4, MPI_SEEK_END));
  CHECK(MPI_File_read(fh, in, 1, MPI_INT, &st));
  OUT("seek_end read %d", in[0]);
  /* a view: each rank sees every n-th int starting at its rank, after a 1024-byte header */
  MPI_Datatype ftype, vec;
  MPI_Type_vector(1, 1, n, MPI_INT, &vec);
  MPI_Type_create_resized(vec, 0, (MPI_Aint)(n * sizeof(int)), &ftype);
  MPI_Type_commit(&ftype);
  CHECK(MPI_File_set_view(fh, 1024 + (MPI_Offset)r * 4, MPI_INT, ftype, "native", MPI_INFO_NULL));
  for (int i = 0; i < 8; i++) buf[i] = i * n + r;
  CHECK(MPI_File_write_all(fh, buf, 8, MPI_INT, &st));
  MPI_Get_count(&st, MPI_INT, &cnt);
  OUT("write_all count %d", cnt);
  MPI_Offset disp = -1, boff = -1;
  MPI_Datatype et, ft;
  char rep[MPI_MAX_DATAREP_STRING];
  CHECK(MPI_File_get_view(fh, &disp, &et, &ft, rep));
  CHECK(MPI_File_get_byte_offset(fh, 3, &boff));
  OUT("view disp %ld etype int %d datarep %s byte_offset(3) %ld", (long)disp, et == MPI_INT, rep, (long)boff);
  int fni, fna, fnd, fc;
  MPI_Type_get_envelope(ft, &fni, &fna, &fnd, &fc);
  if (fc != MPI_COMBINER_NAMED) MPI_Type_free(&ft);
  MPI_Aint fext;
  CHECK(MPI_File_get_type_extent(fh, ftype, &fext));
  OUT("type_extent %ld", (long)fext);
  MPI_Barrier(MPI_COMM_WORLD);
  CHECK(MPI_File_set_view(fh, 1024, MPI_INT, MPI_INT, "native", MPI_INFO_NULL));
  CHECK(MPI_File_read_all(fh, in, 8, MPI_INT, &st));
  OUT("read_all after view %d %d %d %d %d %d %d %d", in[0], in[1], in[2], in[3], in[4], in[5], in[6], in[7]);
  /* nonblocking */
  MPI_Request rq[2];
  int nb[2] = {r, -r}, nbi[2] = {0, 0};
  CHECK(MPI_File_set_view(fh, 0, MPI_BYTE, MPI_BYTE, "native", MPI_INFO_NULL));
  CHECK(MPI_File_iwrite_at(fh, 4096 + (MPI_Offset)r * 8, nb, 2, MPI_INT, &rq[0]));
  CHECK(MPI_Wait(&rq[0], &st));
  MPI_Barrier(MPI_COMM_WORLD);
  CHECK(MPI_File_iread_at(fh, 4096 + (MPI_Offset)((r + 1) % n) * 8, nbi, 2, MPI_INT, &rq[1]));
  CHECK(MPI_Wait(&rq[1], &st));
  MPI_Get_count(&st, MPI_INT, &cnt);
  OUT("iread_at %d %d count %d", nbi[0], nbi[1], cnt);
  CHECK(MPI_File_seek(fh, 8192 + (MPI_Offset)r * 4, MPI_SEEK_SET));
  CHECK(MPI_File_iwrite(fh, &r, 1, MPI_INT, &rq[0]));
  CHECK(MPI_Waitall(1, rq, MPI_STATUSES_IGNORE));
  CHECK(MPI_File_iwrite_at_all(fh, 8300 + (MPI_Offset)r * 4, &r, 1, MPI_INT, &rq[0]));
  CHECK(MPI_Wait(&rq[0], MPI_STATUS_IGNORE));
  MPI_Barrier(MPI_COMM_WORLD);
  int all[64] = {0};
  CHECK(MPI_File_iread_at_all(fh, 8300, all, n, MPI_INT, &rq[0]));
  CHECK(MPI_Wait(&rq[0], MPI_STATUS_IGNORE));
  OUT("iread_at_all %d %d", all[0], all[n - 1]);
  CHECK(MPI_File_seek(fh, 8192, MPI_SEEK_SET));
  CHECK(MPI_File_iread(fh, all, n, MPI_INT, &rq[0]));
  CHECK(MPI_Wait(&rq[0], MPI_STATUS_IGNORE));
  OUT("iread %d %d", all[0], all[n - 1]);
  CHECK(MPI_File_seek(fh, 8192, MPI_SEEK_SET));
  CHECK(MPI_File_iread_all(fh, all, n, MPI_INT, &rq[0]));
  CHECK(MPI_Wait(&rq[0], MPI_STATUS_IGNORE));
  CHECK(MPI_File_iwrite_all(fh, all, 0, MPI_INT, &rq[1]));
  CHECK(MPI_Wait(&rq[1], MPI_STATUS_IGNORE));
  OUT("iread_all %d %d", all[0], all[n - 1]);
#ifdef IO_EXTRA
  /* sizes, atomicity, shared and ordered access: io_extra.c (Open MPI 4.1's own MPI-IO fails
     or hangs on these natively, so run.sh runs them on MPICH only) */
  CHECK(MPI_File_preallocate(fh, 20000));
  CHECK(MPI_File_get_size(fh, &size));
  OUT("preallocated size>=20000 %d", size >= 20000);
  CHECK(MPI_File_set_size(fh, 10000));
  CHECK(MPI_File_get_size(fh, &size));
  OUT("set_size %ld", (long)size);
  int atom = -1;
  CHECK(MPI_File_set_atomicity(fh, 1));
  CHECK(MPI_File_get_atomicity(fh, &atom));
  OUT("atomicity %d", atom);
  CHECK(MPI_File_set_atomicity(fh, 0));
#endif
  MPI_Info info;
  CHECK(MPI_File_get_info(fh, &info));
  CHECK(MPI_Info_free(&info));
  MPI_Info_create(&info);
  MPI_Info_set(info, "access_style", "read_mostly");
  CHECK(MPI_File_set_info(fh, info));
  MPI_Info_free(&info);
  MPI_Group g;
  int gs;
  CHECK(MPI_File_get_group(fh, &g));
  MPI_Group_size(g, &gs);
  MPI_Group_free(&g);
  OUT("group size %d", gs);
#ifdef IO_EXTRA
  /* shared file pointer and ordered access */
  CHECK(MPI_File_seek_shared(fh, 0, MPI_SEEK_SET));
  int o = 1000 + r;
  CHECK(MPI_File_write_ordered(fh, &o, 1, MPI_INT, &st));
  MPI_Offset sp = -1;
  MPI_Barrier(MPI_COMM_WORLD); /* the last rank moves the shared pointer */
  CHECK(MPI_File_get_position_shared(fh, &sp));
  OUT("shared position after ordered valid %d", sp >= 0 && sp <= 16); /* ROMIO updates it lazily */
  CHECK(MPI_File_seek_shared(fh, 0, MPI_SEEK_SET));
  int oi = -1;
  CHECK(MPI_File_read_ordered(fh, &oi, 1, MPI_INT, &st));
  OUT("read_ordered %d", oi);
  MPI_Barrier(MPI_COMM_WORLD);
  if (r == 0) {
    CHECK(MPI_File_seek_shared(fh, 0, MPI_SEEK_END));
  } else {
    CHECK(MPI_File_seek_shared(fh, 0, MPI_SEEK_END));
  }
  CHECK(MPI_File_write_shared(fh, &o, 1, MPI_INT, &st));
  MPI_Barrier(MPI_COMM_WORLD);
  CHECK(MPI_File_get_size(fh, &size));
  OUT("size after shared writes %ld", (long)size);
#endif
  CHECK(MPI_File_close(&fh));
  OUT("closed null %d", fh == MPI_FILE_NULL);
  MPI_Type_free(&ftype);
  MPI_Type_free(&vec);
  /* read-only reopen, then delete */
  CHECK(MPI_File_open(MPI_COMM_WORLD, path, MPI_MODE_RDONLY, MPI_INFO_NULL, &fh));
  CHECK(MPI_File_read_at(fh, 4, in, 1, MPI_INT, &st));
  OUT("reopen read %d", in[0]);
  /* a user handler runs once per failed call (MPICH's nonblocking file calls, which mana's
     blocking collective ones start, call it twice) */
  MPI_Errhandler feh;
  CHECK(MPI_File_create_errhandler(count_file_err, &feh));
  CHECK(MPI_File_set_errhandler(fh, feh));
  CHECK(MPI_Errhandler_free(&feh));
  int wrc = MPI_File_write_at(fh, 0, in, 1, MPI_INT, &st);
  int wcls = -1;
  MPI_Error_class(wrc, &wcls);
  OUT("write to read-only fails %d, handler calls %d", wrc != MPI_SUCCESS, file_errs);
#ifdef IO_EXTRA
  /* Open MPI 4.1's collective write of a read-only file succeeds on some ranks natively */
  file_errs = 0;
  int arc = MPI_File_write_at_all(fh, 0, in, 1, MPI_INT, &st);
  int src = MPI_File_write_shared(fh, in, 1, MPI_INT, &st);
  OUT("collective and shared writes to read-only fail %d %d, handler calls %d", arc != MPI_SUCCESS,
      src != MPI_SUCCESS, file_errs);
#endif
  CHECK(MPI_File_close(&fh));
  MPI_Barrier(MPI_COMM_WORLD);
  if (r == 0) CHECK(MPI_File_delete(path, MPI_INFO_NULL));
  cov_done();
  return 0;
}
