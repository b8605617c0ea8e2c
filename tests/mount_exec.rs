//! `mmfs exec`: unmodified procps/util-linux tools inside private
//! namespaces show the simulated machine; their numbers match the files.

mod common;

use common::{MMFS, Mount};
use std::process::Command;

fn exec(m: &Mount, cmd: &[&str]) -> (i32, String) {
    let out = Command::new(MMFS)
        .arg("exec")
        .arg(&m.dir)
        .arg("--")
        .args(cmd)
        .output()
        .expect("run mmfs exec");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

fn key(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

fn setup() -> (Mount, String) {
    let m = Mount::new();
    m.ctl("spawn web");
    m.ctl("spawn db");
    let db = m.read("sys/kernel/ns_last_pid").trim().to_string();
    m.write(&format!("{db}/ctl"), "mmap 64M name=cache\n")
        .unwrap();
    m.write(&format!("{db}/ctl"), "touch cache 32M\n").unwrap();
    m.ctl("mkswap /dev/sdb1 128M");
    m.ctl("swapon /dev/sdb1");
    m.write(&format!("{db}/ctl"), "madvise cache 4M pageout\n")
        .unwrap();
    (m, db)
}

#[test]
fn free_and_vmstat_show_the_simulated_memory() {
    let (m, _) = setup();
    let meminfo = m.read("meminfo");
    let (code, out) = exec(&m, &["free", "-k"]);
    assert_eq!(code, 0, "{out}");
    let mem: Vec<u64> = out
        .lines()
        .find(|l| l.starts_with("Mem:"))
        .unwrap()
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap())
        .collect();
    assert_eq!(mem[0], key(&meminfo, "MemTotal"));
    assert_eq!(mem[2], key(&meminfo, "MemFree"));
    let swap: Vec<u64> = out
        .lines()
        .find(|l| l.starts_with("Swap:"))
        .unwrap()
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap())
        .collect();
    assert_eq!(swap[0], key(&meminfo, "SwapTotal"));
    assert_eq!(swap[1], 4096);
    let (code, out) = exec(&m, &["vmstat", "-s"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("{} K total memory", key(&meminfo, "MemTotal"))),
        "{out}"
    );
    assert!(out.contains("1024 pages swapped out"), "{out}");
}

#[test]
fn swapon_and_slabtop_read_the_simulated_tables() {
    let (m, _) = setup();
    let (code, out) = exec(
        &m,
        &["swapon", "--show=NAME,TYPE,SIZE,USED,PRIO", "--bytes"],
    );
    assert_eq!(code, 0, "{out}");
    let row = out
        .lines()
        .find(|l| l.starts_with("/dev/sdb1"))
        .unwrap_or_else(|| panic!("{out}"));
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cols[1], "partition");
    assert_eq!(cols[2], (32767u64 * 4096).to_string());
    assert_eq!(cols[3], (4096u64 * 1024).to_string());
    assert_eq!(cols[4], "-2");
    let (code, out) = exec(&m, &["slabtop", "-o"]);
    assert_eq!(code, 0, "{out}");
    let caches = m.read("slabinfo").lines().skip(2).count();
    assert!(out.contains(&format!("/ {caches} (")), "{out}");
    assert!(
        out.contains("vm_area_struct") || out.contains("kmalloc"),
        "{out}"
    );
}

#[test]
fn ps_and_pmap_see_the_simulated_processes() {
    let (m, db) = setup();
    let status = m.read(&format!("{db}/status"));
    let (code, out) = exec(&m, &["ps", "-eo", "pid,comm,rss"]);
    assert_eq!(code, 0, "{out}");
    let row = out
        .lines()
        .find(|l| l.split_whitespace().next() == Some(db.as_str()))
        .unwrap_or_else(|| panic!("pid {db} missing: {out}"));
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cols[1], "db");
    assert_eq!(cols[2].parse::<u64>().unwrap(), key(&status, "VmRSS"));
    assert!(
        out.lines()
            .any(|l| l.split_whitespace().nth(1) == Some("web"))
    );
    let (code, out) = exec(&m, &["pmap", "-x", &db]);
    assert_eq!(code, 0, "{out}");
    let total = out
        .lines()
        .find(|l| l.starts_with("total kB"))
        .unwrap_or_else(|| panic!("{out}"));
    let cols: Vec<u64> = total
        .split_whitespace()
        .skip(2)
        .map(|v| v.parse().unwrap())
        .collect();
    // pmap also sums [vsyscall], which maps lists but VmSize (no VMA) does not.
    assert_eq!(cols[0], key(&status, "VmSize") + 4);
    assert_eq!(cols[1], key(&status, "VmRSS"));
    let (code, out) = exec(&m, &["top", "-b", "-n", "1"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(" db"), "{out}");
}

#[test]
fn exit_status_is_the_commands_and_the_host_proc_is_untouched() {
    let (m, _) = setup();
    let host = std::fs::read_to_string("/proc/meminfo").unwrap();
    assert_eq!(exec(&m, &["sh", "-c", "exit 7"]).0, 7);
    assert_eq!(exec(&m, &["/nonexistent/tool"]).0, 127);
    let after = std::fs::read_to_string("/proc/meminfo").unwrap();
    assert_eq!(key(&host, "MemTotal"), key(&after, "MemTotal"));
    assert_ne!(key(&after, "MemTotal"), key(&m.read("meminfo"), "MemTotal"));
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains("/proc/meminfo"),
        "a bind mount leaked to the host"
    );
}
