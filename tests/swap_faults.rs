//! Fault injection on host swap files: a disk that fills up, a file
//! truncated underneath. Swap-out failures keep the page in memory and say
//! why in dmesg; a swap-in read error fails the command with EIO; the state
//! stays consistent throughout.

use std::process::Command;

use mmfs::ctl::Machine;
use mmfs::ctl::Scope;
use mmfs::mm::MachineConfig;
use mmfs::mm::types::{Arch, Pid};
use mmfs::procfs::pid::{PidFile, render_pid};
use mmfs::procfs::{GlobalFile, render_global};

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

fn status_kb(k: &Machine, pid: Pid, key: &str) -> u64 {
    render_pid(k, pid, PidFile::Status)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .map(|v| v.trim().trim_end_matches(" kB").trim().parse().unwrap())
        .unwrap()
}

/// A small tmpfs, unmounted on drop.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn new(size: &str) -> Tmpfs {
        let dir = std::env::temp_dir().join(format!("mmfs-tmpfs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status()
            .expect("mount(8)")
            .success();
        assert!(ok, "mounting a tmpfs needs root");
        Tmpfs(dir)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[test]
fn a_full_disk_keeps_pages_in_memory_and_says_why() {
    let fs = Tmpfs::new("128k");
    let path = fs.0.join("swap.img");
    let path = path.to_str().unwrap();
    let mut k = boot();
    sys(&mut k, &format!("mkswap {path} 16M"));
    sys(&mut k, &format!("swapon {path}"));
    sys(&mut k, "spawn writer");
    let pid = Pid(k.ns_last_pid);
    k.execute_line(Scope::Process(pid), "mmap 1M name=b")
        .unwrap();
    let maps = render_pid(&k, pid, PidFile::Maps).unwrap();
    let start = u64::from_str_radix(
        maps.lines()
            .find(|l| l.ends_with("[anon:b]"))
            .unwrap()
            .split('-')
            .next()
            .unwrap(),
        16,
    )
    .unwrap();
    k.write_mem(pid, start + 4096 * 200, b"still here").unwrap();
    k.execute_line(Scope::Process(pid), "touch b 1M").unwrap();
    let rss = status_kb(&k, pid, "RssAnon");
    // The tmpfs holds 32 pages: the rest of the pageout fails cleanly.
    k.execute_line(Scope::Process(pid), "madvise b 1M pageout")
        .unwrap();
    k.check_invariants().unwrap();
    let swapped = status_kb(&k, pid, "VmSwap");
    assert!(swapped > 0 && swapped < 1024, "VmSwap {swapped}");
    assert_eq!(status_kb(&k, pid, "RssAnon") + swapped, rss);
    let dmesg = render_global(&k, GlobalFile::Dmesg);
    assert!(
        dmesg.contains("Write-error on swap-device") && dmesg.contains("page kept in memory"),
        "{dmesg}"
    );
    // pr_alert_ratelimited: at most 10 alerts per 5 s, so a full disk
    // cannot push the boot log out.
    let alerts = dmesg.matches("Write-error on swap-device").count();
    assert!((1..=10).contains(&alerts), "{alerts} alerts");
    assert!(dmesg.contains("Linux version"), "the boot log survives");
    // /proc/swaps counts only the pages really written.
    let swaps = render_global(&k, GlobalFile::Swaps);
    let used: u64 = swaps
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .nth(3)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(used, swapped);
    // Every byte is still readable.
    assert_eq!(
        k.read_mem(pid, start + 4096 * 200, 10).unwrap(),
        b"still here"
    );
    k.check_invariants().unwrap();
    sys(&mut k, &format!("kill {pid}"));
    sys(&mut k, &format!("swapoff {path}"));
}

#[test]
fn a_truncated_file_fails_swap_in_with_eio_and_stays_consistent() {
    let dir = std::env::temp_dir().join(format!("mmfs-trunc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("swap.img");
    let path_s = path.to_str().unwrap().to_string();
    let mut k = boot();
    sys(&mut k, &format!("mkswap {path_s} 16M"));
    sys(&mut k, &format!("swapon {path_s}"));
    sys(&mut k, "spawn victim");
    let pid = Pid(k.ns_last_pid);
    k.execute_line(Scope::Process(pid), "mmap 64K name=b")
        .unwrap();
    k.execute_line(Scope::Process(pid), "touch b 64K").unwrap();
    k.execute_line(Scope::Process(pid), "madvise b 64K pageout")
        .unwrap();
    // Once the writes complete, a read and a second pageout drop the
    // clean pages from the swap cache: the next touch must read the file.
    sys(&mut k, "tick 100");
    for line in ["touch b 64K read", "madvise b 64K pageout"] {
        k.execute_line(Scope::Process(pid), line).unwrap();
    }
    assert!(k.swap.cache.is_empty());
    assert_eq!(status_kb(&k, pid, "VmSwap"), 64);
    // Someone truncates the swap file underneath the daemon.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(4096)
        .unwrap();
    let err = k
        .execute_line(Scope::Process(pid), "touch b 64K read")
        .unwrap_err();
    assert_eq!(err.errno(), libc::EIO);
    k.check_invariants().unwrap();
    assert!(render_global(&k, GlobalFile::Dmesg).contains("read error on swap file"));
    // Still swapped, still accounted; killing the process frees the slots.
    assert_eq!(status_kb(&k, pid, "VmSwap"), 64);
    sys(&mut k, &format!("kill {pid}"));
    let swaps = render_global(&k, GlobalFile::Swaps);
    assert_eq!(
        swaps.lines().nth(1).unwrap().split_whitespace().nth(3),
        Some("0")
    );
    sys(&mut k, &format!("swapoff {path_s}"));
    std::fs::remove_dir_all(&dir).unwrap();
}
