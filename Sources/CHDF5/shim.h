// HDF5's predefined type ids and flags are macros that call H5open(); Swift cannot import
// them, so each gets a static inline accessor here.
#include <hdf5.h>   // H5F/H5D/H5S/H5T/H5A/H5G/H5P APIs

static inline hid_t lockstep_h5t_native_float(void) { return H5T_NATIVE_FLOAT; }
static inline hid_t lockstep_h5t_native_double(void) { return H5T_NATIVE_DOUBLE; }
static inline hid_t lockstep_h5t_native_uint8(void) { return H5T_NATIVE_UINT8; }
static inline hid_t lockstep_h5t_native_int32(void) { return H5T_NATIVE_INT32; }
static inline hid_t lockstep_h5t_native_int64(void) { return H5T_NATIVE_INT64; }
static inline hid_t lockstep_h5t_native_uint64(void) { return H5T_NATIVE_UINT64; }
static inline hid_t lockstep_h5t_c_s1(void) { return H5T_C_S1; }
static inline unsigned lockstep_h5f_acc_trunc(void) { return H5F_ACC_TRUNC; }
static inline unsigned lockstep_h5f_acc_excl(void) { return H5F_ACC_EXCL; }
static inline unsigned lockstep_h5f_acc_rdonly(void) { return H5F_ACC_RDONLY; }
static inline hid_t lockstep_h5p_default(void) { return H5P_DEFAULT; }
static inline hid_t lockstep_h5s_all(void) { return H5S_ALL; }
static inline hid_t lockstep_h5p_file_access(void) { return H5P_FILE_ACCESS; }

// Silences HDF5's default error-stack printing: Lockstep reports errors itself, in one line.
static inline void lockstep_h5_silence_errors(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }
static inline hid_t lockstep_h5p_link_create(void) { return H5P_LINK_CREATE; }
// The calling thread's error stack, which Lockstep walks to say why a call failed.
static inline hid_t lockstep_h5e_default(void) { return H5E_DEFAULT; }
static inline hid_t lockstep_h5p_dataset_access(void) { return H5P_DATASET_ACCESS; }
// Dataset creation properties: chunking and gzip for `lockstep import --chunk-rows/--compression`.
static inline hid_t lockstep_h5p_dataset_create(void) { return H5P_DATASET_CREATE; }
