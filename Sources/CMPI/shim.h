// OpenMPI's handles (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM, ...) are macros casting addresses of
// incomplete structs, which Swift cannot import; each gets a static inline accessor here.
#include <mpi.h>   // MPI_* functions and handle types

static inline MPI_Comm lockstep_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Datatype lockstep_type_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype lockstep_type_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype lockstep_type_int64(void) { return MPI_INT64_T; }
static inline MPI_Datatype lockstep_type_uint64(void) { return MPI_UINT64_T; }
static inline MPI_Datatype lockstep_type_byte(void) { return MPI_BYTE; }
static inline MPI_Op lockstep_op_sum(void) { return MPI_SUM; }
static inline MPI_Op lockstep_op_max(void) { return MPI_MAX; }
static inline MPI_Op lockstep_op_min(void) { return MPI_MIN; }
static inline void *lockstep_in_place(void) { return MPI_IN_PLACE; }
static inline int lockstep_max_library_version_string(void) { return MPI_MAX_LIBRARY_VERSION_STRING; }
static inline MPI_Info lockstep_info_null(void) { return MPI_INFO_NULL; }
static inline int lockstep_comm_type_shared(void) { return MPI_COMM_TYPE_SHARED; }
