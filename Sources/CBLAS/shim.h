// OpenBLAS ships its own cblas.h (there is no cblas.pc); pkg-config "openblas" points at it.
#include <cblas.h>   // cblas_sgemm, cblas_sdot, openblas_set_num_threads
