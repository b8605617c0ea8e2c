//! `-o swapdir=DIR`: simulated partitions keep the bytes of their pages in
//! an unlinked sparse file in DIR (default /var/tmp), not in the daemon's
//! memory.

mod common;

use common::{MMFS, Mount, Scratch, stderr};

/// The daemon's open files whose link target lies in `dir`.
fn files_in(pid: u32, dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .map(|t| t.display().to_string())
        .filter(|t| t.starts_with(&dir.display().to_string()))
        .collect()
}

#[test]
fn partition_bytes_go_to_an_unlinked_file_in_swapdir() {
    let scratch = Scratch::new("swapdir");
    let dir = scratch.path.canonicalize().unwrap();
    let m = Mount::with_args(&["-o", &format!("swapdir={}", dir.display())]);
    m.ctl("mkswap /dev/sdb1 64M");
    m.ctl("swapon /dev/sdb1");
    m.ctl("spawn w");
    let pid = m.read("sys/kernel/ns_last_pid").trim().to_string();
    m.write(&format!("{pid}/ctl"), "mmap 4M name=b\n").unwrap();
    let maps = m.read(&format!("{pid}/maps"));
    let start = maps
        .lines()
        .find(|l| l.contains("[anon:b]"))
        .and_then(|l| u64::from_str_radix(l.split('-').next()?, 16).ok())
        .unwrap();
    let mem = std::fs::OpenOptions::new()
        .write(true)
        .open(m.path(&format!("{pid}/mem")))
        .unwrap();
    use std::os::unix::fs::FileExt;
    mem.write_all_at(&vec![0x5a; 4 << 20], start).unwrap();
    drop(mem);
    assert!(files_in(m.pid, &dir).is_empty(), "created on first use");
    m.write(&format!("{pid}/ctl"), "madvise b 4M pageout\n")
        .unwrap();
    let files = files_in(m.pid, &dir);
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].ends_with("(deleted)"), "unlinked: {files:?}");
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        0,
        "nothing left in DIR"
    );
    m.write(&format!("{pid}/ctl"), "touch b 4M read\n").unwrap();
    let mem = std::fs::File::open(m.path(&format!("{pid}/mem"))).unwrap();
    let mut buf = vec![0u8; 4 << 20];
    mem.read_exact_at(&mut buf, start).unwrap();
    assert!(buf.iter().all(|&b| b == 0x5a), "every byte came back");
    drop(mem);
    let out = m.umount();
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn a_bad_swapdir_fails_the_mount() {
    let scratch = Scratch::new("badswapdir");
    let mnt = scratch.path.join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let out = std::process::Command::new(MMFS)
        .arg("mount")
        .arg(&mnt)
        .args(["-o", "swapdir=/nonexistent/dir"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("swapdir"), "{}", stderr(&out));
    assert!(!common::mounted(&mnt));
}
