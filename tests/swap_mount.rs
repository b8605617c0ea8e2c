//! Swap, reclaim and the OOM killer through a real mount, read back with
//! real clients (procfs-core, util-linux swapon), with the cross-file
//! invariants checked after each step.

mod common;

use std::io::{Cursor, Read, Seek, SeekFrom, Write};
use std::process::Command;

use common::{Mount, Scratch};
use procfs_core::{FromBufRead, Meminfo, VmStat};

/// meminfo through procfs-core, which reports bytes.
fn meminfo(m: &Mount) -> Meminfo {
    Meminfo::from_buf_read(Cursor::new(m.read("meminfo"))).expect("procfs-core parses meminfo")
}

/// Bytes to KiB.
fn kb(bytes: u64) -> u64 {
    assert_eq!(bytes % 1024, 0);
    bytes / 1024
}

fn vmstat(m: &Mount) -> VmStat {
    VmStat::from_buf_read(Cursor::new(m.read("vmstat"))).expect("procfs-core parses vmstat")
}

/// (size, used) in KiB per row of `swaps`.
fn swap_rows(m: &Mount) -> Vec<(String, u64, u64)> {
    m.read("swaps")
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (
                f[0].to_string(),
                f[2].parse().unwrap(),
                f[3].parse().unwrap(),
            )
        })
        .collect()
}

/// SwapFree = SwapTotal − Σ Used; Σ VmSwap ≤ Σ Used ≤ Σ VmSwap + SwapCached;
/// MemFree = buddyinfo × 2^order × 4 kB.
fn invariants(m: &Mount) {
    let mi = meminfo(m);
    let rows = swap_rows(m);
    let used: u64 = rows.iter().map(|r| r.2).sum();
    let size: u64 = rows.iter().map(|r| r.1).sum();
    assert_eq!(kb(mi.swap_total), size);
    assert_eq!(kb(mi.swap_free), size - used);
    let mut vmswap = 0;
    for entry in std::fs::read_dir(&m.dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.parse::<u32>().is_ok()
            && let Ok(status) = std::fs::read_to_string(m.dir.join(&name).join("status"))
        {
            vmswap += status
                .lines()
                .find_map(|l| l.strip_prefix("VmSwap:"))
                .map(|v| {
                    v.trim()
                        .trim_end_matches(" kB")
                        .trim()
                        .parse::<u64>()
                        .unwrap()
                })
                .unwrap_or(0);
        }
    }
    assert!(
        vmswap <= used && used <= vmswap + kb(mi.swap_cached),
        "VmSwap {vmswap} Used {used}"
    );
    assert_eq!(
        common::buddy_free_pages(&m.read("buddyinfo")) * 4,
        kb(mi.mem_free)
    );
}

fn pctl(m: &Mount, pid: &str, line: &str) {
    m.write(&format!("{pid}/ctl"), &format!("{line}\n"))
        .unwrap_or_else(|e| panic!("{pid}/ctl {line:?}: {e}"));
    invariants(m);
}

fn spawn(m: &Mount, name: &str) -> String {
    m.ctl(&format!("spawn {name}"));
    m.read("sys/kernel/ns_last_pid").trim().to_string()
}

fn mapping_start(m: &Mount, pid: &str, name: &str) -> u64 {
    let maps = m.read(&format!("{pid}/maps"));
    let line = maps
        .lines()
        .find(|l| l.ends_with(&format!("[anon:{name}]")))
        .unwrap();
    u64::from_str_radix(line.split('-').next().unwrap(), 16).unwrap()
}

#[test]
fn procfs_core_parses_meminfo_and_vmstat() {
    let m = Mount::with_args(&["--mem", "2G"]);
    let mi = meminfo(&m);
    assert!(kb(mi.mem_total) > 1_900_000 && kb(mi.mem_total) < 2 << 20);
    assert!(mi.mem_available.unwrap() <= mi.mem_total);
    assert_eq!(mi.slab, mi.s_reclaimable.unwrap() + mi.s_unreclaim.unwrap());
    let vs = vmstat(&m);
    assert_eq!(vs.0["nr_free_pages"] as u64 * 4, kb(mi.mem_free));
    assert!(vs.0.contains_key("pswpout") && vs.0.contains_key("oom_kill"));
}

#[test]
fn bytes_survive_swap_on_a_host_file_through_the_mount() {
    let m = Mount::new();
    let scratch = Scratch::new("swapfile");
    let file = scratch.path.join("swap.img");
    let path = file.to_str().unwrap();
    m.ctl(&format!("mkswap {path} 32M"));
    m.ctl(&format!("swapon {path} prio=7"));
    invariants(&m);
    let pid = spawn(&m, "writer");
    pctl(&m, &pid, "mmap 2M name=buf");
    let start = mapping_start(&m, &pid, "buf");
    let message = b"bytes that must survive the swap";
    let mut mem = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(m.path(&format!("{pid}/mem")))
        .unwrap();
    mem.seek(SeekFrom::Start(start + 8192 + 17)).unwrap();
    mem.write_all(message).unwrap();
    pctl(&m, &pid, "touch buf 2M");
    pctl(&m, &pid, "madvise buf 2M pageout");
    assert_eq!(swap_rows(&m)[0].2, 2048);
    // The page is in the host file, at slot × 4096 + 17.
    let raw = std::fs::read(&file).unwrap();
    let at = raw
        .windows(message.len())
        .position(|w| w == message)
        .expect("bytes in the swap file");
    assert_eq!(at % 4096, 17);
    assert!(at >= 4096);
    // util-linux reads the table.
    let out = Command::new("swapon")
        .args(["--show=NAME,TYPE,SIZE,USED,PRIO", "--bytes", "--noheadings"])
        .env("LIBMOUNT_SWAPS", m.path("swaps"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let row: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(
        row,
        [
            path,
            "file",
            &(8191u64 * 4096).to_string(),
            &(2048u64 * 1024).to_string(),
            "7"
        ]
    );
    // The writes complete and the clean pages leave the swap cache (a
    // read, then a second pageout that writes nothing).
    m.ctl("tick 100");
    pctl(&m, &pid, "touch buf 2M read");
    pctl(&m, &pid, "madvise buf 2M pageout");
    assert_eq!(m.meminfo_kb("SwapCached"), 0);
    // Swap-in by reading through mem: a major fault.
    let majflt = vmstat(&m).0["pgmajfault"];
    let mut back = vec![0u8; message.len()];
    mem.seek(SeekFrom::Start(start + 8192 + 17)).unwrap();
    mem.read_exact(&mut back).unwrap();
    assert_eq!(back, message);
    assert!(vmstat(&m).0["pgmajfault"] > majflt);
    invariants(&m);
    // Out again, then swapoff brings everything back.
    pctl(&m, &pid, "madvise buf 2M pageout");
    m.ctl(&format!("swapoff {path}"));
    invariants(&m);
    assert!(swap_rows(&m).is_empty());
    mem.seek(SeekFrom::Start(start + 8192 + 17)).unwrap();
    mem.read_exact(&mut back).unwrap();
    assert_eq!(back, message);
}

#[test]
fn kill_frees_every_slot_and_swapoff_that_cannot_fit_fails() {
    let m = Mount::with_args(&["--mem", "256M"]);
    m.ctl("mkswap /dev/sdb1 512M");
    m.ctl("swapon /dev/sdb1");
    let pid = spawn(&m, "big");
    pctl(&m, &pid, "mmap 400M name=b");
    pctl(&m, &pid, "touch b 400M");
    assert!(swap_rows(&m)[0].2 > 0);
    let out = m.bash("echo 'swapoff /dev/sdb1' > \"$M/ctl\"");
    assert!(String::from_utf8_lossy(&out.stderr).contains("Cannot allocate memory"));
    invariants(&m);
    assert_eq!(swap_rows(&m).len(), 1, "the area stays on");
    m.ctl(&format!("kill {pid}"));
    invariants(&m);
    // Only init's swapped stack pages (if any) stay.
    let init_swap: u64 = m
        .read("1/status")
        .lines()
        .find_map(|l| l.strip_prefix("VmSwap:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap();
    assert_eq!(swap_rows(&m)[0].2, init_swap);
    m.ctl("swapoff /dev/sdb1");
}

#[test]
fn oom_killer_takes_the_biggest_and_spares_minus_1000() {
    let m = Mount::with_args(&["--mem", "256M"]);
    let guarded = spawn(&m, "guarded");
    let small = spawn(&m, "small");
    let big = spawn(&m, "big");
    m.write(&format!("{guarded}/oom_score_adj"), "-1000\n")
        .unwrap();
    pctl(&m, &guarded, "mmap 120M name=a");
    pctl(&m, &guarded, "touch a 120M");
    pctl(&m, &small, "mmap 16M name=a");
    pctl(&m, &small, "touch a 16M");
    pctl(&m, &big, "mmap 200M name=a");
    let out = m.bash(&format!("echo 'touch a 200M' > \"$M/{big}/ctl\""));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Cannot allocate memory"));
    invariants(&m);
    assert_eq!(vmstat(&m).0["oom_kill"], 1);
    assert!(!m.path(&big).exists());
    assert!(m.path(&guarded).exists() && m.path(&small).exists());
    let dmesg = m.read("dmesg");
    assert!(dmesg.contains(&format!("Out of memory: Killed process {big} (big)")));
    assert_eq!(m.read(&format!("{guarded}/oom_score")), "0\n");
}
