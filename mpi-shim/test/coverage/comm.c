/* Communicators, groups, names, info. */
#include "cov.h"

int main(int argc, char **argv) {
  cov_init(&argc, &argv);
  int n, r = cov_rank, x;
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  MPI_Comm dup, idup, split, stype, created, cgroup, inter, merged, parent;
  MPI_Request req;
  CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &dup));
  CHECK(MPI_Comm_idup(MPI_COMM_WORLD, &idup, &req));
  CHECK(MPI_Wait(&req, MPI_STATUS_IGNORE));
  int c1, c2, c3;
  CHECK(MPI_Comm_compare(dup, MPI_COMM_WORLD, &c1));
  CHECK(MPI_Comm_compare(idup, idup, &c2));
  CHECK(MPI_Comm_split(MPI_COMM_WORLD, r % 2, -r, &split));
  CHECK(MPI_Comm_compare(split, MPI_COMM_WORLD, &c3));
  OUT("compare congruent=%d ident=%d unequal=%d", c1 == MPI_CONGRUENT, c2 == MPI_IDENT, c3 == MPI_UNEQUAL);
  int sr, ss;
  MPI_Comm_rank(split, &sr);
  MPI_Comm_size(split, &ss);
  OUT("split rank %d size %d", sr, ss);
  CHECK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, r, MPI_INFO_NULL, &stype));
  MPI_Comm_size(stype, &x);
  OUT("split_type shared size %d", x);
  MPI_Comm und;
  CHECK(MPI_Comm_split(MPI_COMM_WORLD, r == 0 ? MPI_UNDEFINED : 1, 0, &und));
  OUT("split undefined null %d", und == MPI_COMM_NULL);
  if (und != MPI_COMM_NULL) MPI_Comm_free(&und);
  /* groups */
  MPI_Group world, even, odd, uni, inter_g, diff, rin, rex, g2;
  CHECK(MPI_Comm_group(MPI_COMM_WORLD, &world));
  int ranges[1][3] = {{0, n - 1, 2}};
  CHECK(MPI_Group_range_incl(world, 1, ranges, &even));
  CHECK(MPI_Group_range_excl(world, 1, ranges, &odd));
  CHECK(MPI_Group_union(odd, even, &uni));
  CHECK(MPI_Group_intersection(world, even, &inter_g));
  CHECK(MPI_Group_difference(world, even, &diff));
  int ex[1] = {0};
  CHECK(MPI_Group_excl(world, 1, ex, &rex));
  int inc[2] = {n - 1, 0};
  CHECK(MPI_Group_incl(world, 2, inc, &rin));
  int se, so, su, si, sd, gr;
  MPI_Group_size(even, &se); MPI_Group_size(odd, &so); MPI_Group_size(uni, &su);
  MPI_Group_size(inter_g, &si); MPI_Group_size(diff, &sd);
  MPI_Group_rank(uni, &gr);
  OUT("groups even %d odd %d union %d inter %d diff %d union_rank %d", se, so, su, si, sd, gr);
  int gc1, gc2, gc3;
  CHECK(MPI_Group_compare(world, uni, &gc1));
  CHECK(MPI_Group_compare(world, world, &gc2));
  CHECK(MPI_Group_compare(even, odd, &gc3));
  OUT("group_compare similar=%d ident=%d unequal=%d", gc1 == MPI_SIMILAR, gc2 == MPI_IDENT, gc3 == MPI_UNEQUAL);
  int tr_in[4] = {0, 1, MPI_PROC_NULL, n - 1}, tr_out[4];
  CHECK(MPI_Group_translate_ranks(world, 4, tr_in, rin, tr_out));
  OUT("translate %d %d %d %d", tr_out[0], tr_out[1] == MPI_UNDEFINED ? -99 : tr_out[1], tr_out[2] == MPI_PROC_NULL ? -77 : tr_out[2], tr_out[3]);
  CHECK(MPI_Comm_create(MPI_COMM_WORLD, even, &created));
  if (created != MPI_COMM_NULL) { MPI_Comm_size(created, &x); OUT("create size %d", x); MPI_Comm_free(&created); }
  else OUT("create null");
  if (r % 2 == 0) {
    CHECK(MPI_Comm_create_group(MPI_COMM_WORLD, even, 7, &cgroup));
    MPI_Comm_rank(cgroup, &x);
    OUT("create_group rank %d", x);
    MPI_Comm_free(&cgroup);
  }
  /* intercommunicator between the even and odd halves of split */
  MPI_Comm half;
  CHECK(MPI_Comm_split(MPI_COMM_WORLD, r % 2, r, &half));
  CHECK(MPI_Intercomm_create(half, 0, MPI_COMM_WORLD, r % 2 == 0 ? 1 : 0, 42, &inter));
  int ti = 0, rs = 0, ti2 = 1;
  CHECK(MPI_Comm_test_inter(inter, &ti));
  CHECK(MPI_Comm_test_inter(MPI_COMM_WORLD, &ti2));
  CHECK(MPI_Comm_remote_size(inter, &rs));
  MPI_Group rg;
  CHECK(MPI_Comm_remote_group(inter, &rg));
  int rgs;
  MPI_Group_size(rg, &rgs);
  OUT("inter test %d %d remote_size %d remote_group %d", ti, ti2, rs, rgs);
  int bsum = 0, one = 1;
  /* an intercommunicator allreduce sums the remote group's values */
  CHECK(MPI_Allreduce(&one, &bsum, 1, MPI_INT, MPI_SUM, inter));
  OUT("inter allreduce %d", bsum);
  CHECK(MPI_Intercomm_merge(inter, r % 2, &merged));
  MPI_Comm_rank(merged, &x);
  OUT("merged rank %d", x);
  MPI_Group_free(&rg);
  MPI_Comm_free(&merged);
  MPI_Comm_free(&inter);
  MPI_Comm_free(&half);
  /* names */
  char name[MPI_MAX_OBJECT_NAME];
  int len;
  CHECK(MPI_Comm_get_name(MPI_COMM_WORLD, name, &len));
  OUT("world name %s %d", name, len);
  CHECK(MPI_Comm_set_name(dup, "my dup"));
  CHECK(MPI_Comm_get_name(dup, name, &len));
  OUT("dup name %s %d", name, len);
  CHECK(MPI_Comm_get_parent(&parent));
  OUT("parent null %d", parent == MPI_COMM_NULL);
  /* info */
  MPI_Info info, info2;
  CHECK(MPI_Info_create(&info));
  CHECK(MPI_Info_set(info, "alpha", "one"));
  CHECK(MPI_Info_set(info, "beta", "two2"));
  CHECK(MPI_Info_set(info, "gamma", "3"));
  CHECK(MPI_Info_delete(info, "gamma"));
  CHECK(MPI_Info_dup(info, &info2));
  int nk, flag, vl;
  CHECK(MPI_Info_get_nkeys(info2, &nk));
  char key[MPI_MAX_INFO_KEY + 1], val[MPI_MAX_INFO_VAL + 1];
  CHECK(MPI_Info_get_nthkey(info2, 1, key));
  CHECK(MPI_Info_get(info2, "beta", MPI_MAX_INFO_VAL, val, &flag));
  CHECK(MPI_Info_get_valuelen(info2, "alpha", &vl, &flag));
  OUT("info nkeys %d key1 %s beta %s alpha_len %d", nk, key, val, vl);
  CHECK(MPI_Info_get(info2, "gamma", MPI_MAX_INFO_VAL, val, &flag));
  OUT("info gamma flag %d", flag);
  CHECK(MPI_Info_free(&info));
  CHECK(MPI_Info_free(&info2));
  OUT("info freed %d", info2 == MPI_INFO_NULL);
  CHECK(MPI_Info_get_nkeys(MPI_INFO_ENV, &nk));
  MPI_Info ci;
  CHECK(MPI_Comm_set_info(dup, MPI_INFO_NULL == 0 ? MPI_INFO_NULL : MPI_INFO_ENV));
  CHECK(MPI_Comm_get_info(dup, &ci));
  CHECK(MPI_Info_free(&ci));
  MPI_Comm dwi;
  MPI_Info_create(&info);
  CHECK(MPI_Comm_dup_with_info(dup, info, &dwi));
  MPI_Info_free(&info);
  MPI_Comm_size(dwi, &x);
  OUT("dup_with_info size %d", x);
  MPI_Group gs[] = {even, odd, uni, inter_g, diff, rin, rex, world};
  for (unsigned i = 0; i < sizeof gs / sizeof *gs; i++) CHECK(MPI_Group_free(&gs[i]));
  OUT("group freed %d", gs[0] == MPI_GROUP_NULL);
  (void)g2;
  MPI_Comm cs[] = {dup, idup, split, stype, dwi};
  for (unsigned i = 0; i < sizeof cs / sizeof *cs; i++) CHECK(MPI_Comm_free(&cs[i]));
  OUT("comm freed %d", cs[0] == MPI_COMM_NULL);
  cov_done();
  return 0;
}
