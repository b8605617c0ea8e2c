//! One file, one swap area: the same host file under other spellings
//! (`DIR//x`, `DIR/./x`, `DIR/sub/../x`), through a hard link, through a
//! symlinked directory, or from a second machine is EBUSY, and every byte
//! written through `PID/mem` comes back after pageout and swap-in. Also the
//! header checks swapon makes (a file shorter than its header, an area
//! below 10 pages) and simulated partitions whose bytes live on the disk.

use mmfs::ctl::{Machine, Scope};
use mmfs::mm::MachineConfig;
use mmfs::mm::types::{Arch, Pid};

fn boot() -> Machine {
    Machine::boot(MachineConfig {
        arch: Arch::X86_64,
        mem_bytes: 256 << 20,
    })
    .unwrap()
}

fn sys(k: &mut Machine, line: &str) {
    k.execute_line(Scope::System, line)
        .unwrap_or_else(|e| panic!("{line}: {e}"));
    k.check_invariants().unwrap();
}

fn errno(k: &mut Machine, line: &str) -> i32 {
    let e = k
        .execute_line(Scope::System, line)
        .err()
        .map_or(0, |e| e.errno());
    k.check_invariants().unwrap();
    e
}

fn run(k: &mut Machine, pid: Pid, line: &str) {
    k.execute_line(Scope::Process(pid), line)
        .unwrap_or_else(|e| panic!("{line}: {e}"));
    k.check_invariants().unwrap();
}

struct Dir(std::path::PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("mmfs-swapid-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("sub")).unwrap();
        Dir(d)
    }
    fn at(&self, rel: &str) -> String {
        format!("{}/{rel}", self.0.display())
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A page pattern that differs per page.
fn pattern(page: u64) -> Vec<u8> {
    (0..4096u64)
        .map(|i| ((page * 131 + i * 7) % 251) as u8)
        .collect()
}

#[test]
fn one_file_one_area_and_every_byte_comes_back() {
    let dir = Dir::new("one");
    let file = dir.at("x");
    let mut k = boot();
    sys(&mut k, &format!("mkswap {file} 4M"));
    sys(&mut k, &format!("swapon {file}"));
    let link = dir.at("hard");
    std::fs::hard_link(&file, &link).unwrap();
    std::os::unix::fs::symlink(&dir.0, dir.at("dirlink")).unwrap();
    let base = dir.0.display().to_string();
    for spelling in [
        format!("{base}//x"),
        format!("{base}/./x"),
        format!("{base}/sub/../x"),
        dir.at("dirlink/x"),
        link.clone(),
    ] {
        assert_eq!(
            errno(&mut k, &format!("swapon {spelling}")),
            libc::EBUSY,
            "{spelling}"
        );
    }
    // A second machine (another mmfs) is kept out by the flock.
    let mut other = boot();
    assert_eq!(errno(&mut other, &format!("swapon {file}")), libc::EBUSY);
    assert_eq!(errno(&mut other, &format!("swapon {link}")), libc::EBUSY);
    assert!(
        other.dmesg.last().unwrap().contains("another process"),
        "{}",
        other.dmesg.last().unwrap()
    );
    // 256 pages with distinct bytes go out and come back intact.
    sys(&mut k, "spawn w");
    let pid = Pid(k.ns_last_pid);
    run(&mut k, pid, "mmap 1M name=buf");
    let start = k.procs.by_pid(pid).unwrap().mm.named_start("buf").unwrap();
    for page in 0..256u64 {
        k.write_mem(pid, start + page * 4096, &pattern(page))
            .unwrap();
    }
    run(&mut k, pid, "madvise buf 1M pageout");
    assert_eq!(k.events.pswpout, 256, "every page went to the file");
    run(&mut k, pid, "touch buf 1M read");
    for page in 0..256u64 {
        let got = k.read_mem(pid, start + page * 4096, 4096).unwrap();
        assert_eq!(got, pattern(page), "page {page}");
    }
    // swapoff finds the file under another spelling, as Linux does; after
    // it the file is free again, for this machine or another.
    sys(&mut k, &format!("swapoff {base}//x"));
    assert_eq!(k.swap.total_pages(), 0);
    sys(&mut other, &format!("swapon {link}"));
    assert_eq!(errno(&mut k, &format!("swapon {file}")), libc::EBUSY);
}

#[test]
fn headers_that_do_not_fit_the_file_are_refused() {
    let dir = Dir::new("hdr");
    let mut k = boot();
    // Truncated below its header's last_page: EINVAL, not a silent cut.
    let short = dir.at("short");
    sys(&mut k, &format!("mkswap {short} 1M"));
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&short)
        .unwrap();
    f.set_len(128 * 4096).unwrap();
    drop(f);
    assert_eq!(errno(&mut k, &format!("swapon {short}")), libc::EINVAL);
    assert!(k.dmesg.last().unwrap().contains("truncated"));
    // A header of 9 pages (below mkswap's 40 KiB): EINVAL.
    let tiny = dir.at("tiny");
    sys(&mut k, &format!("mkswap {tiny} 40K"));
    let f = std::fs::OpenOptions::new().write(true).open(&tiny).unwrap();
    use std::os::unix::fs::FileExt;
    f.write_all_at(&8u32.to_ne_bytes(), 1028).unwrap();
    drop(f);
    assert_eq!(errno(&mut k, &format!("swapon {tiny}")), libc::EINVAL);
    assert!(k.dmesg.last().unwrap().contains("40 KiB"));
    assert_eq!(k.swap.total_pages(), 0);
}

#[test]
fn partition_bytes_live_in_a_sparse_host_file() {
    let mut k = boot();
    sys(&mut k, "mkswap /dev/sdb1 64M");
    sys(&mut k, "swapon /dev/sdb1");
    sys(&mut k, "spawn w");
    let pid = Pid(k.ns_last_pid);
    run(&mut k, pid, "mmap 8M name=buf");
    let start = k.procs.by_pid(pid).unwrap().mm.named_start("buf").unwrap();
    for page in 0..2048u64 {
        k.write_mem(pid, start + page * 4096, &pattern(page))
            .unwrap();
    }
    run(&mut k, pid, "madvise buf 8M pageout");
    let disk = &k.swap.disks["/dev/sdb1"];
    assert_eq!(disk.stored.len(), 2048);
    assert!(
        disk.stored.disk_bytes() >= 8 << 20,
        "the bytes are on the host disk: {}",
        disk.stored.disk_bytes()
    );
    // The writes complete; the clean pages leave the swap cache at a
    // second pageout, and come back from the host file.
    sys(&mut k, "tick 100");
    run(&mut k, pid, "touch buf 8M read");
    run(&mut k, pid, "madvise buf 8M pageout");
    assert!(k.swap.cache.is_empty());
    run(&mut k, pid, "touch buf 8M read");
    for page in (0..2048u64).step_by(97) {
        let got = k.read_mem(pid, start + page * 4096, 4096).unwrap();
        assert_eq!(got, pattern(page), "page {page}");
    }
    // Swapped-in pages keep their slots until the mapping goes.
    let disk = &k.swap.disks["/dev/sdb1"];
    assert_eq!(disk.stored.len(), 2048);
    run(&mut k, pid, "munmap buf 8M");
    let disk = &k.swap.disks["/dev/sdb1"];
    assert!(disk.stored.is_empty());
    assert!(
        disk.stored.disk_bytes() < 1 << 20,
        "freed slots give their blocks back: {}",
        disk.stored.disk_bytes()
    );
}

#[test]
fn names_with_nul_are_refused() {
    let mut k = boot();
    assert_eq!(errno(&mut k, "spawn a\0b"), libc::EINVAL);
    assert_eq!(errno(&mut k, "kmalloc 8 tag=x\0y"), libc::EINVAL);
    sys(&mut k, "spawn ok");
    let pid = Pid(k.ns_last_pid);
    k.write_comm(pid, "ab\0cd\n").unwrap();
    assert_eq!(k.procs.by_pid(pid).unwrap().comm, "ab");
}

#[test]
fn min_free_kbytes_is_an_int() {
    let mut k = boot();
    assert_eq!(
        k.write_sysctl("vm/min_free_kbytes", "2147483648")
            .unwrap_err()
            .errno(),
        libc::EINVAL
    );
    k.write_sysctl("vm/min_free_kbytes", "2147483647")
        .unwrap_or_else(|e| {
            // A reserve larger than memory is accepted by Linux too.
            panic!("INT_MAX refused: {e}")
        });
}
