/* Cartesian, graph and distributed-graph topologies. */
#include "cov.h"

int main(int argc, char **argv) {
  cov_init(&argc, &argv);
  int n, r = cov_rank;
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  int dims[2] = {0, 0};
  CHECK(MPI_Dims_create(n, 2, dims));
  OUT("dims %d %d", dims[0], dims[1]);
  int d3[3] = {0, 2, 0};
  CHECK(MPI_Dims_create(n * 3, 3, d3));
  OUT("dims3 %d %d %d", d3[0], d3[1], d3[2]);
  MPI_Comm cart, sub;
  int periods[2] = {1, 0};
  CHECK(MPI_Cart_create(MPI_COMM_WORLD, 2, dims, periods, 0, &cart));
  int t, nd, gd[2], gp[2], gc[2], cr, co[2];
  CHECK(MPI_Topo_test(cart, &t));
  CHECK(MPI_Cartdim_get(cart, &nd));
  CHECK(MPI_Cart_get(cart, 2, gd, gp, gc));
  CHECK(MPI_Cart_rank(cart, gc, &cr));
  CHECK(MPI_Cart_coords(cart, r, 2, co));
  OUT("cart topo %d ndims %d dims %d %d periods %d %d coords %d %d rank %d", t == MPI_CART, nd, gd[0], gd[1], gp[0], gp[1], co[0], co[1], cr);
  int src, dst;
  CHECK(MPI_Cart_shift(cart, 0, 1, &src, &dst));
  OUT("shift0 %d %d", src, dst);
  CHECK(MPI_Cart_shift(cart, 1, 1, &src, &dst));
  OUT("shift1 %d %d", src == MPI_PROC_NULL ? -99 : src, dst == MPI_PROC_NULL ? -99 : dst);
  /* a send to MPI_PROC_NULL returned by Cart_shift completes at once */
  int v = r, got = -5;
  MPI_Status st;
  CHECK(MPI_Sendrecv(&v, 1, MPI_INT, dst, 0, &got, 1, MPI_INT, src, 0, cart, &st));
  OUT("shift sendrecv %d source %d", got, st.MPI_SOURCE == MPI_PROC_NULL ? -99 : st.MPI_SOURCE);
  int remain[2] = {0, 1};
  CHECK(MPI_Cart_sub(cart, remain, &sub));
  int ss, srk;
  MPI_Comm_size(sub, &ss);
  MPI_Comm_rank(sub, &srk);
  OUT("cart_sub size %d rank %d", ss, srk);
  int nr;
  CHECK(MPI_Cart_map(MPI_COMM_WORLD, 2, dims, periods, &nr));
  OUT("cart_map %d", nr);
  MPI_Comm_free(&sub);
  MPI_Comm_free(&cart);
  /* graph: a ring */
  int index[64], edges[128];
  for (int i = 0; i < n; i++) {
    index[i] = 2 * (i + 1);
    edges[2 * i] = (i + n - 1) % n;
    edges[2 * i + 1] = (i + 1) % n;
  }
  MPI_Comm graph;
  CHECK(MPI_Graph_create(MPI_COMM_WORLD, n, index, edges, 0, &graph));
  int nn, ne, nc, nb[8];
  CHECK(MPI_Topo_test(graph, &t));
  CHECK(MPI_Graphdims_get(graph, &nn, &ne));
  CHECK(MPI_Graph_neighbors_count(graph, r, &nc));
  CHECK(MPI_Graph_neighbors(graph, r, 8, nb));
  OUT("graph topo %d nnodes %d nedges %d count %d neighbors %d %d", t == MPI_GRAPH, nn, ne, nc, nb[0], nb[1]);
  int gi[64], ge[128];
  CHECK(MPI_Graph_get(graph, n, 2 * n, gi, ge));
  OUT("graph_get %d %d %d", gi[n - 1], ge[0], ge[2 * n - 1]);
  CHECK(MPI_Graph_map(MPI_COMM_WORLD, n, index, edges, &nr));
  OUT("graph_map %d", nr);
  int ng[2];
  CHECK(MPI_Neighbor_allgather(&r, 1, MPI_INT, ng, 1, MPI_INT, graph));
  OUT("graph neighbor_allgather %d %d", ng[0], ng[1]);
  MPI_Comm_free(&graph);
  /* distributed graph: each rank points to the next two, weighted and not */
  MPI_Comm dg, dga, dgu;
  int dests[2] = {(r + 1) % n, (r + 2) % n}, w[2] = {r, r + 1}, deg = 2;
  CHECK(MPI_Dist_graph_create(MPI_COMM_WORLD, 1, &r, &deg, dests, w, MPI_INFO_NULL, 0, &dg));
  int indeg, outdeg, weighted;
  CHECK(MPI_Topo_test(dg, &t));
  CHECK(MPI_Dist_graph_neighbors_count(dg, &indeg, &outdeg, &weighted));
  int srcs[8], sw[8], dsts[8], dw[8];
  CHECK(MPI_Dist_graph_neighbors(dg, indeg, srcs, sw, outdeg, dsts, dw));
  OUT("dist_graph topo %d in %d out %d weighted %d", t == MPI_DIST_GRAPH, indeg, outdeg, weighted);
  /* the order of neighbours is up to the implementation: print them sorted */
  int a = srcs[0] < srcs[1] ? 0 : 1;
  OUT("dist_graph sources %d(%d) %d(%d) dests %d %d", srcs[a], sw[a], srcs[1 - a], sw[1 - a], dsts[0] < dsts[1] ? dsts[0] : dsts[1], dsts[0] < dsts[1] ? dsts[1] : dsts[0]);
  int ins[2] = {(r + n - 1) % n, (r + n - 2) % n};
  CHECK(MPI_Dist_graph_create_adjacent(MPI_COMM_WORLD, 2, ins, MPI_UNWEIGHTED, 2, dests, MPI_UNWEIGHTED, MPI_INFO_NULL, 0, &dga));
  CHECK(MPI_Dist_graph_neighbors_count(dga, &indeg, &outdeg, &weighted));
  CHECK(MPI_Dist_graph_neighbors(dga, indeg, srcs, MPI_UNWEIGHTED, outdeg, dsts, MPI_UNWEIGHTED));
  OUT("adjacent in %d out %d weighted %d sources %d %d dests %d %d", indeg, outdeg, weighted, srcs[0], srcs[1], dsts[0], dsts[1]);
  int sb[2] = {r * 10, r * 10 + 1}, rb[2] = {-1, -1};
  CHECK(MPI_Neighbor_alltoall(sb, 1, MPI_INT, rb, 1, MPI_INT, dga));
  OUT("adjacent neighbor_alltoall %d %d", rb[0], rb[1]);
  CHECK(MPI_Dist_graph_create_adjacent(MPI_COMM_WORLD, 0, NULL, MPI_WEIGHTS_EMPTY, 0, NULL, MPI_WEIGHTS_EMPTY, MPI_INFO_NULL, 0, &dgu));
  CHECK(MPI_Dist_graph_neighbors_count(dgu, &indeg, &outdeg, &weighted));
  OUT("empty in %d out %d weighted %d", indeg, outdeg, weighted);
  MPI_Comm_free(&dg);
  MPI_Comm_free(&dga);
  MPI_Comm_free(&dgu);
  CHECK(MPI_Topo_test(MPI_COMM_WORLD, &t));
  OUT("world topo undefined %d", t == MPI_UNDEFINED);
  cov_done();
  return 0;
}
