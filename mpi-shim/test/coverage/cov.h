/* Shared by the coverage tests: every line a rank prints starts with its rank, so the runner
   can compare sorted output between mana (either lower half) and native MPICH. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int cov_rank;
/* one write per line, so lines of different ranks never interleave */
#define OUT(...)                                                                              \
  do {                                                                                        \
    char l_[2048];                                                                            \
    int o_ = snprintf(l_, sizeof l_ - 1, "%d ", cov_rank);                                    \
    o_ += snprintf(l_ + o_, sizeof l_ - 1 - (size_t)o_, __VA_ARGS__);                         \
    if (o_ > (int)sizeof l_ - 2) o_ = (int)sizeof l_ - 2;                                     \
    l_[o_++] = '\n';                                                                          \
    if (write(1, l_, (size_t)o_) < 0) abort();                                                \
  } while (0)
#define CHECK(call)                                                          \
  do {                                                                       \
    int rc_ = (call);                                                        \
    if (rc_ != MPI_SUCCESS) {                                                \
      int cls_ = -1;                                                         \
      MPI_Error_class(rc_, &cls_);                                           \
      OUT("FAIL %s:%d %s -> class %d", __FILE__, __LINE__, #call, cls_);     \
    }                                                                        \
  } while (0)
static inline void cov_init(int *argc, char ***argv) {
  MPI_Init(argc, argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &cov_rank);
}
static inline void cov_done(void) {
  fflush(stdout);
  MPI_Barrier(MPI_COMM_WORLD);
  MPI_Finalize();
}
