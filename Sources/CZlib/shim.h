// zlib, for reading gzipped IDX files (the Fashion-MNIST distribution format) and .tar.gz archives (CIFAR).
#include <zlib.h>   // gzopen, gzread, gzclose
