//! mmap(2) of a generated file: MAP_SHARED is ENODEV (direct I/O files
//! cannot be shared-mapped). A MAP_PRIVATE mapping cannot be refused
//! through FUSE with direct I/O; the file reports size 0, so the mapping
//! has no readable page (README: "Deviations").

mod common;

use std::os::fd::AsRawFd;

use common::Mount;

#[test]
fn shared_mappings_of_generated_files_are_enodev() {
    let m = Mount::new();
    for name in ["meminfo", "buddyinfo", "version"] {
        let file = std::fs::File::open(m.path(name)).unwrap();
        // SAFETY: a fresh mapping request on an open descriptor; the result
        // is checked and never dereferenced.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        let err = std::io::Error::last_os_error();
        assert_eq!(p, libc::MAP_FAILED, "{name}: MAP_SHARED was accepted");
        assert_eq!(err.raw_os_error(), Some(libc::ENODEV), "{name}: {err}");
    }
    let out = m.umount();
    assert!(out.status.success());
}
