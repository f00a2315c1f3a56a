/* Derived datatypes: constructors, envelopes and contents, extents, sizes, names, packing. */
#include "cov.h"

static void show(const char *what, MPI_Datatype t) {
  int size, ni, na, nd, comb;
  MPI_Aint lb, ext, tlb, text;
  MPI_Count sx, lbx, extx, tlbx, textx;
  CHECK(MPI_Type_size(t, &size));
  CHECK(MPI_Type_get_extent(t, &lb, &ext));
  CHECK(MPI_Type_get_true_extent(t, &tlb, &text));
  CHECK(MPI_Type_size_x(t, &sx));
  CHECK(MPI_Type_get_extent_x(t, &lbx, &extx));
  CHECK(MPI_Type_get_true_extent_x(t, &tlbx, &textx));
  CHECK(MPI_Type_get_envelope(t, &ni, &na, &nd, &comb));
  OUT("%s size %d lb %ld extent %ld true %ld %ld x %ld %ld %ld %ld %ld envelope %d %d %d combiner %d", what, size,
      (long)lb, (long)ext, (long)tlb, (long)text, (long)sx, (long)lbx, (long)extx, (long)tlbx, (long)textx, ni, na, nd,
      comb == MPI_COMBINER_CONTIGUOUS ? 1 : comb == MPI_COMBINER_VECTOR ? 2 : comb == MPI_COMBINER_HVECTOR ? 3 :
      comb == MPI_COMBINER_INDEXED ? 4 : comb == MPI_COMBINER_HINDEXED ? 5 : comb == MPI_COMBINER_INDEXED_BLOCK ? 6 :
      comb == MPI_COMBINER_HINDEXED_BLOCK ? 7 : comb == MPI_COMBINER_STRUCT ? 8 : comb == MPI_COMBINER_SUBARRAY ? 9 :
      comb == MPI_COMBINER_DARRAY ? 10 : comb == MPI_COMBINER_RESIZED ? 11 : comb == MPI_COMBINER_DUP ? 12 :
      comb == MPI_COMBINER_NAMED ? 13 : -comb);
  if (comb != MPI_COMBINER_NAMED) {
    int ints[64];
    MPI_Aint addrs[16];
    MPI_Datatype types[16];
    CHECK(MPI_Type_get_contents(t, ni, na, nd, ints, addrs, types));
    char buf[512];
    int o = 0;
    for (int i = 0; i < ni && i < 64; i++) {
      int v = ints[i];
      /* enum values in subarray/darray contents, as portable names */
      if (v == MPI_ORDER_C) v = -1001; else if (v == MPI_ORDER_FORTRAN && comb == MPI_COMBINER_SUBARRAY && i == ni - 1) v = -1002;
      if (comb == MPI_COMBINER_DARRAY && i >= 3) {
        if (ints[i] == MPI_DISTRIBUTE_BLOCK) v = -2001; else if (ints[i] == MPI_DISTRIBUTE_CYCLIC) v = -2002;
        else if (ints[i] == MPI_DISTRIBUTE_NONE) v = -2003; else if (ints[i] == MPI_DISTRIBUTE_DFLT_DARG) v = -2004;
      }
      o += snprintf(buf + o, sizeof buf - (size_t)o, " %d", v);
    }
    for (int i = 0; i < na; i++) o += snprintf(buf + o, sizeof buf - (size_t)o, " a%ld", (long)addrs[i]);
    for (int i = 0; i < nd; i++) {
      int s2 = 0;
      MPI_Type_size(types[i], &s2);
      int pni, pna, pnd, pc;
      MPI_Type_get_envelope(types[i], &pni, &pna, &pnd, &pc);
      o += snprintf(buf + o, sizeof buf - (size_t)o, " t%d%s", s2, pc == MPI_COMBINER_NAMED ? (types[i] == MPI_INT ? "int" : types[i] == MPI_DOUBLE ? "double" : "named") : "derived");
      if (pc != MPI_COMBINER_NAMED) MPI_Type_free(&types[i]);
    }
    OUT("%s contents%s", what, buf);
  }
}

int main(int argc, char **argv) {
  cov_init(&argc, &argv);
  MPI_Datatype t[20];
  int k = 0;
  int bl[3] = {1, 2, 3}, dis[3] = {0, 4, 10};
  MPI_Aint adis[3] = {0, 16, 40};
  MPI_Datatype sty[3] = {MPI_INT, MPI_DOUBLE, MPI_CHAR};
  CHECK(MPI_Type_contiguous(3, MPI_INT, &t[k])); show("contiguous", t[k++]);
  CHECK(MPI_Type_vector(3, 2, 4, MPI_INT, &t[k])); show("vector", t[k++]);
  CHECK(MPI_Type_create_hvector(3, 2, 20, MPI_INT, &t[k])); show("hvector", t[k++]);
  CHECK(MPI_Type_indexed(3, bl, dis, MPI_INT, &t[k])); show("indexed", t[k++]);
  CHECK(MPI_Type_create_hindexed(3, bl, adis, MPI_INT, &t[k])); show("hindexed", t[k++]);
  CHECK(MPI_Type_create_indexed_block(3, 2, dis, MPI_INT, &t[k])); show("indexed_block", t[k++]);
  CHECK(MPI_Type_create_hindexed_block(3, 2, adis, MPI_INT, &t[k])); show("hindexed_block", t[k++]);
  CHECK(MPI_Type_create_struct(3, bl, adis, sty, &t[k])); show("struct", t[k++]);
  int sizes[2] = {6, 8}, subs[2] = {2, 3}, starts[2] = {1, 2};
  CHECK(MPI_Type_create_subarray(2, sizes, subs, starts, MPI_ORDER_C, MPI_INT, &t[k])); show("subarray", t[k++]);
  CHECK(MPI_Type_create_subarray(2, sizes, subs, starts, MPI_ORDER_FORTRAN, MPI_DOUBLE, &t[k])); show("subarray_f", t[k++]);
  int gs[2] = {8, 8}, di[2] = {MPI_DISTRIBUTE_BLOCK, MPI_DISTRIBUTE_CYCLIC}, da[2] = {MPI_DISTRIBUTE_DFLT_DARG, 2}, ps[2] = {2, 2};
  CHECK(MPI_Type_create_darray(4, cov_rank, 2, gs, di, da, ps, MPI_ORDER_C, MPI_INT, &t[k])); show("darray", t[k++]);
  CHECK(MPI_Type_create_resized(MPI_INT, -4, 16, &t[k])); show("resized", t[k++]);
  CHECK(MPI_Type_dup(t[1], &t[k])); show("dup", t[k++]);
  CHECK(MPI_Type_create_struct(2, bl, adis, t, &t[k])); show("struct_of_derived", t[k++]);
  show("named", MPI_INT);
  MPI_Datatype m;
  CHECK(MPI_Type_match_size(MPI_TYPECLASS_INTEGER, 4, &m));
  int ms;
  MPI_Type_size(m, &ms);
  OUT("match_size integer 4 -> size %d", ms);
  CHECK(MPI_Type_match_size(MPI_TYPECLASS_REAL, 8, &m));
  OUT("match_size real 8 -> double %d", m == MPI_DOUBLE);
  char name[MPI_MAX_OBJECT_NAME];
  int len;
  CHECK(MPI_Type_get_name(MPI_INT, name, &len));
  OUT("name %s", name);
  CHECK(MPI_Type_set_name(t[0], "three ints"));
  CHECK(MPI_Type_get_name(t[0], name, &len));
  OUT("name %s %d", name, len);
  /* sending with a derived type */
  CHECK(MPI_Type_commit(&t[1]));
  int src[24], dst[24];
  for (int i = 0; i < 24; i++) { src[i] = i; dst[i] = -1; }
  MPI_Status st;
  CHECK(MPI_Sendrecv(src, 1, t[1], 0, 0, dst, 6, MPI_INT, 0, 0, MPI_COMM_SELF, &st));
  int cnt, el;
  CHECK(MPI_Get_count(&st, MPI_INT, &cnt));
  CHECK(MPI_Get_elements(&st, t[1], &el));
  OUT("vector sendrecv %d %d %d %d %d %d count %d elements %d", dst[0], dst[1], dst[2], dst[3], dst[4], dst[5], cnt, el);
  /* pack / unpack, external32 */
  int psz;
  CHECK(MPI_Pack_size(1, t[1], MPI_COMM_WORLD, &psz));
  char pbuf[256];
  int pos = 0;
  CHECK(MPI_Pack(src, 1, t[1], pbuf, sizeof pbuf, &pos, MPI_COMM_WORLD));
  int back[6], upos = 0;
  CHECK(MPI_Unpack(pbuf, pos, &upos, back, 6, MPI_INT, MPI_COMM_WORLD));
  OUT("pack size>=%d pos %d back %d %d", psz >= pos, pos, back[0], back[5]);
  MPI_Aint esz, epos = 0, upos2 = 0;
  CHECK(MPI_Pack_external_size("external32", 3, MPI_INT, &esz));
  int three[3] = {1, 256, 65536}, three_back[3];
  CHECK(MPI_Pack_external("external32", three, 3, MPI_INT, pbuf, sizeof pbuf, &epos));
  CHECK(MPI_Unpack_external("external32", pbuf, epos, &upos2, three_back, 3, MPI_INT));
  OUT("external32 size %ld pos %ld bytes %d %d %d %d back %d %d %d", (long)esz, (long)epos, pbuf[0], pbuf[1], pbuf[2], pbuf[3], three_back[0], three_back[1], three_back[2]);
  /* MPI-1 names */
  MPI_Aint ext, lb, ub;
  CHECK(MPI_Type_extent(t[11], &ext));
  CHECK(MPI_Type_lb(t[11], &lb));
  CHECK(MPI_Type_ub(t[11], &ub));
  OUT("mpi1 extent %ld lb %ld ub %ld", (long)ext, (long)lb, (long)ub);
  for (int i = 0; i < k; i++) CHECK(MPI_Type_free(&t[i]));
  OUT("freed %d", t[0] == MPI_DATATYPE_NULL);
  cov_done();
  return 0;
}
