// zlib, for reading gzipped IDX files (the Fashion-MNIST distribution format).
#include <zlib.h>   // gzopen, gzread, gzclose
