/* io.c with preallocate/set_size/atomicity and shared/ordered access (see io.c). */
#define IO_EXTRA 1
#include "io.c"
