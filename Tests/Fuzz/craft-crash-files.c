#include <hdf5.h>
#include <stdint.h>
/* Valid HDF5 files that Lockstep mishandles (each a few KB: chunked datasets whose chunks were
   never written read back as the fill value, so a tiny file can declare any size). */
static void chunked(hid_t f, const char *name, int rank, const hsize_t *dims, hid_t type) {
  hsize_t chunk[4] = {1, 1, 1, 1};
  hid_t space = H5Screate_simple(rank, dims, NULL);
  hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  H5Pset_chunk(dcpl, rank, chunk);
  hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
  H5Pset_create_intermediate_group(lcpl, 1);
  hid_t d = H5Dcreate2(f, name, type, space, lcpl, dcpl, H5P_DEFAULT);
  H5Dclose(d); H5Pclose(lcpl); H5Pclose(dcpl); H5Sclose(space);
}
int main(void) {
  /* 1. /train/x declares 2 samples of 2^36 uint8 features (128 GiB): HDF5File.read allocates it. */
  hid_t f = H5Fcreate("huge-dataset.h5", H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  hsize_t x1[2] = {2, (hsize_t)1 << 36}, y1[1] = {2};
  chunked(f, "/train/x", 2, x1, H5T_NATIVE_UINT8);
  chunked(f, "/train/y", 1, y1, H5T_NATIVE_UINT8);
  chunked(f, "/test/x", 2, x1, H5T_NATIVE_UINT8);
  chunked(f, "/test/y", 1, y1, H5T_NATIVE_UINT8);
  H5Fclose(f);
  /* 2. /train/x of shape [1, 2^32, 2^32]: the element count overflows Int. */
  f = H5Fcreate("shape-overflow.h5", H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  hsize_t x2[3] = {1, (hsize_t)1 << 32, (hsize_t)1 << 32}, y2[1] = {1};
  chunked(f, "/train/x", 3, x2, H5T_NATIVE_UINT8);
  chunked(f, "/train/y", 1, y2, H5T_NATIVE_UINT8);
  chunked(f, "/test/x", 3, x2, H5T_NATIVE_UINT8);
  chunked(f, "/test/y", 1, y2, H5T_NATIVE_UINT8);
  H5Fclose(f);
  /* 3. a group that contains itself (a hard link cycle, as h5py's f['g/loop'] = f['g']). */
  f = H5Fcreate("group-cycle.h5", H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  hid_t g = H5Gcreate2(f, "/train", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Lcreate_hard(f, "/train", g, "loop", H5P_DEFAULT, H5P_DEFAULT);
  H5Gclose(g); H5Fclose(f);
  /* 4. a dataset whose name is not UTF-8 (HDF5 stores link names as bytes). */
  f = H5Fcreate("non-utf8-name.h5", H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  hsize_t one[1] = {1};
  chunked(f, "/x\xff", 1, one, H5T_NATIVE_UINT8);
  H5Fclose(f);
  return 0;
}
