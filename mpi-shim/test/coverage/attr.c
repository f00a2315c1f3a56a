/* Attributes: keys with copy/delete callbacks (called back from the lower half), predefined
   keys, type attributes, MPI-1 names. */
#include "cov.h"

static int copies, deletes, type_deletes;
static int copy_fn(MPI_Comm comm, int key, void *extra, void *in, void *out, int *flag) {
  int sz;
  MPI_Comm_size(comm, &sz); /* an MPI call from inside the callback, with a virtual handle */
  copies += *(int *)extra + (sz > 0);
  (void)key;
  *(void **)out = (char *)in + 1;
  *flag = 1;
  return MPI_SUCCESS;
}
static int delete_fn(MPI_Comm comm, int key, void *val, void *extra) {
  (void)comm, (void)key, (void)val, (void)extra;
  deletes++;
  return MPI_SUCCESS;
}
static int type_delete_fn(MPI_Datatype t, int key, void *val, void *extra) {
  int sz;
  MPI_Type_size(t, &sz);
  (void)key, (void)extra;
  type_deletes += sz + (int)(intptr_t)val;
  return MPI_SUCCESS;
}

int main(int argc, char **argv) {
  cov_init(&argc, &argv);
  int *tag_ub, flag = 0, *wtg, *appnum;
  CHECK(MPI_Comm_get_attr(MPI_COMM_WORLD, MPI_TAG_UB, &tag_ub, &flag));
  OUT("tag_ub flag %d big %d", flag, flag && *tag_ub >= 32767);
  CHECK(MPI_Comm_get_attr(MPI_COMM_WORLD, MPI_WTIME_IS_GLOBAL, &wtg, &flag));
  CHECK(MPI_Comm_get_attr(MPI_COMM_WORLD, MPI_APPNUM, &appnum, &flag));
  CHECK(MPI_Attr_get(MPI_COMM_WORLD, MPI_TAG_UB, &tag_ub, &flag));
  OUT("attr_get tag_ub flag %d", flag);
  int extra = 10, key, key2, key3;
  CHECK(MPI_Comm_create_keyval(copy_fn, delete_fn, &key, &extra));
  CHECK(MPI_Comm_create_keyval(MPI_COMM_DUP_FN, MPI_COMM_NULL_DELETE_FN, &key2, NULL));
  CHECK(MPI_Keyval_create(MPI_NULL_COPY_FN, MPI_NULL_DELETE_FN, &key3, NULL));
  MPI_Comm c1, c2;
  CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &c1));
  static char base[16];
  CHECK(MPI_Comm_set_attr(c1, key, base));
  CHECK(MPI_Comm_set_attr(c1, key2, base + 5));
  CHECK(MPI_Attr_put(c1, key3, base + 7));
  CHECK(MPI_Comm_dup(c1, &c2));
  void *v = NULL;
  CHECK(MPI_Comm_get_attr(c2, key, &v, &flag));
  OUT("copied attr flag %d offset %d copies %d", flag, flag ? (int)((char *)v - base) : -1, copies);
  CHECK(MPI_Comm_get_attr(c2, key2, &v, &flag));
  OUT("dup_fn attr flag %d offset %d", flag, flag ? (int)((char *)v - base) : -1);
  CHECK(MPI_Comm_get_attr(c2, key3, &v, &flag));
  OUT("null_copy attr flag %d", flag);
  CHECK(MPI_Comm_delete_attr(c1, key));
  OUT("deletes after delete_attr %d", deletes);
  CHECK(MPI_Comm_get_attr(c1, key, &v, &flag));
  OUT("after delete flag %d", flag);
  CHECK(MPI_Comm_free(&c2));
  OUT("deletes after free %d", deletes);
  CHECK(MPI_Comm_free_keyval(&key));
  OUT("keyval freed %d", key == MPI_KEYVAL_INVALID);
  CHECK(MPI_Attr_delete(c1, key3));
  CHECK(MPI_Keyval_free(&key3));
  CHECK(MPI_Comm_free(&c1));
  CHECK(MPI_Comm_free_keyval(&key2));
  /* datatype attributes */
  int tkey;
  MPI_Datatype t;
  CHECK(MPI_Type_create_keyval(MPI_TYPE_NULL_COPY_FN, type_delete_fn, &tkey, NULL));
  CHECK(MPI_Type_contiguous(3, MPI_INT, &t));
  CHECK(MPI_Type_set_attr(t, tkey, (void *)(intptr_t)100));
  CHECK(MPI_Type_get_attr(t, tkey, &v, &flag));
  OUT("type attr flag %d value %d", flag, (int)(intptr_t)v);
  CHECK(MPI_Type_delete_attr(t, tkey));
  CHECK(MPI_Type_set_attr(t, tkey, (void *)(intptr_t)1000));
  CHECK(MPI_Type_free(&t));
  OUT("type deletes %d", type_deletes);
  CHECK(MPI_Type_free_keyval(&tkey));
  /* an attribute on MPI_COMM_SELF is deleted at the start of MPI_Finalize */
  int skey;
  CHECK(MPI_Comm_create_keyval(MPI_COMM_NULL_COPY_FN, delete_fn, &skey, NULL));
  CHECK(MPI_Comm_set_attr(MPI_COMM_SELF, skey, NULL));
  fflush(stdout);
  MPI_Barrier(MPI_COMM_WORLD);
  int before = deletes;
  MPI_Finalize();
  OUT("self attribute deleted at finalize %d", deletes - before);
  return 0;
}
