// HDF5 (1.10.7 and later) locks a file while it is open; on parallel filesystems without
// working locks (some Lustre and NFS mounts) the open fails. `data.file_locking = false` turns
// the lock off for the dataset file, as HDF5_USE_FILE_LOCKING=FALSE does for every file; without
// the key the library's default applies, which honours that variable. Dataset files are only
// ever opened read-only, so no rank writes to them either way.

import CHDF5

extension HDF5File {
    /// Runs `open` with a file-access property list that sets `locking` (H5P_DEFAULT when nil).
    static func withFileAccess(locking: Bool?, _ path: String, _ open: (hid_t) -> hid_t) throws -> hid_t {
        guard let locking else { return open(lockstep_h5p_default()) }
        let what = "\(path): cannot set HDF5's file locking (data.file_locking)"
        let access = try check(H5Pcreate(lockstep_h5p_file_access()), what)
        defer { H5Pclose(access) }
        // ignore_when_disabled: where locks are unsupported, opening without one is what was asked.
        try check(H5Pset_file_locking(access, locking, true), what)
        return open(access)
    }
}
