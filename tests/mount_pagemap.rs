//! `PID/pagemap`: 8 bytes a virtual page, Linux's bit layout, mode 0400.

mod common;

use common::Mount;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::PermissionsExt;

#[test]
fn pagemap_shows_present_pages_with_their_pfn() {
    let m = Mount::new();
    m.ctl("spawn mapper");
    let pid = m.read("sys/kernel/ns_last_pid").trim().to_string();
    m.write(&format!("{pid}/ctl"), "mmap 1M name=b\n").unwrap();
    m.write(&format!("{pid}/ctl"), "touch b 8K\n").unwrap();
    m.write(&format!("{pid}/ctl"), "touch b+8K 4K read\n")
        .unwrap();
    let maps = m.read(&format!("{pid}/maps"));
    let line = maps.lines().find(|l| l.ends_with("[anon:b]")).unwrap();
    let start = u64::from_str_radix(line.split('-').next().unwrap(), 16).unwrap();
    let path = m.path(&format!("{pid}/pagemap"));
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o400
    );
    let mut file = std::fs::File::open(&path).unwrap();
    file.seek(SeekFrom::Start(start / 4096 * 8)).unwrap();
    let mut raw = [0u8; 32];
    file.read_exact(&mut raw).unwrap();
    let entries: Vec<u64> = raw
        .chunks(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    for e in &entries[..2] {
        assert_eq!(e >> 63, 1, "written page present: {e:#x}");
        assert_eq!((e >> 56) & 1, 1, "exclusively mapped");
        assert_ne!(e & ((1 << 55) - 1), 0, "root sees the pfn");
    }
    assert_ne!(entries[0] & ((1 << 55) - 1), entries[1] & ((1 << 55) - 1));
    // The zero page is mapped for the read, an untouched page reads as 0.
    assert_eq!(entries[3], 0);
    // The pfn agrees with physmap's idea of memory: inside RAM.
    let pfn = entries[0] & ((1 << 55) - 1);
    assert!(pfn < (1 << 18));
}
