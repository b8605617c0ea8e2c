//! Unmodified procps tools read the simulated files when they stand over
//! /proc in a private mount namespace; per-process directories follow the
//! simulated pids.

mod common;

use std::io::Write;

use common::{Mount, stderr, stdout};
use mmfs::procfs::GLOBAL_FILES;

fn served(name: &str) -> bool {
    GLOBAL_FILES.iter().any(|(n, _, _)| *n == name)
}

/// The value of a meminfo key in kB.
fn meminfo_kb(text: &str, key: &str) -> u64 {
    text.lines()
        .find(|l| l.starts_with(&format!("{key}:")))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in meminfo:\n{text}"))
}

#[test]
fn free_and_vmstat_show_the_simulated_machine() {
    let missing: Vec<&str> = ["meminfo", "vmstat", "stat"]
        .into_iter()
        .filter(|n| !served(n))
        .collect();
    assert!(
        missing.is_empty(),
        "GLOBAL_FILES lacks {missing:?}: free/vmstat cannot be checked"
    );
    // A size the host is unlikely to have, so the numbers are ours.
    let m = Mount::with_args(&["--mem", "3G"]);
    let meminfo = m.read("meminfo");
    let total = meminfo_kb(&meminfo, "MemTotal");
    assert!(
        total < 3 << 20 && total > (3 << 20) * 9 / 10,
        "MemTotal {total}"
    );
    let out = m.bash(
        "unshare -m sh -c 'for f in meminfo vmstat stat; do mount --bind $M/$f /proc/$f || exit 1; done; \
         echo ==free; free -k; echo ==vmstat; vmstat -s; echo ==vmstat1; vmstat'",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let free_mem = text
        .lines()
        .find(|l| l.starts_with("Mem:"))
        .unwrap_or_else(|| panic!("no Mem: line:\n{text}"));
    let free_total: u64 = free_mem.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert_eq!(free_total, total, "free -k:\n{text}");
    let free_free: u64 = free_mem.split_whitespace().nth(3).unwrap().parse().unwrap();
    assert_eq!(
        free_free,
        meminfo_kb(&meminfo, "MemFree"),
        "free -k:\n{text}"
    );
    let vm_total = text
        .lines()
        .find(|l| l.ends_with("K total memory"))
        .unwrap_or_else(|| panic!("no total memory in vmstat -s:\n{text}"));
    assert_eq!(
        vm_total
            .split_whitespace()
            .next()
            .unwrap()
            .parse::<u64>()
            .unwrap(),
        total
    );
    // The host's own /proc is untouched outside the namespace.
    let host = std::fs::read_to_string("/proc/meminfo").unwrap();
    assert_ne!(host, meminfo);
}

#[test]
fn process_directories_follow_the_pids() {
    let m = Mount::new();
    m.ctl("spawn probe");
    let pid = m.read("sys/kernel/ns_last_pid").trim().to_string();
    let dir = m.path(&pid);
    assert!(dir.is_dir(), "no directory for pid {pid}");
    let listed: Vec<String> = std::fs::read_dir(&m.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(listed.contains(&pid), "ls does not show {pid}: {listed:?}");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    // The generated files, ctl, mem, pagemap, the links and directories.
    let mut want: Vec<String> = mmfs::fs::tree::pid_entries()
        .map(|(n, _, _)| n.to_string())
        .collect();
    want.sort();
    assert_eq!(names, want);
    if mmfs::procfs::pid::PID_FILES
        .iter()
        .any(|(n, _, _)| *n == "comm")
    {
        assert_eq!(m.read(&format!("{pid}/comm")), "probe\n");
    }
    // Memory written through PID/mem reads back at the same address.
    m.write(&format!("{pid}/ctl"), "mmap 64K name=buf\n")
        .unwrap();
    {
        let maps = m.read(&format!("{pid}/maps"));
        let line = maps
            .lines()
            .find(|l| l.contains("[anon:buf]"))
            .unwrap_or_else(|| panic!("no [anon:buf] in maps:\n{maps}"));
        let start = u64::from_str_radix(line.split('-').next().unwrap(), 16).unwrap();
        use std::os::unix::fs::FileExt;
        let mem = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(m.path(&format!("{pid}/mem")))
            .unwrap();
        mem.write_all_at(b"hello, mmfs", start + 100).unwrap();
        let mut back = [0u8; 11];
        mem.read_exact_at(&mut back, start + 100).unwrap();
        assert_eq!(&back, b"hello, mmfs");
    }
    // Writable process files take writes; ranges are the kernel's.
    let writable: Vec<&str> = mmfs::procfs::pid::PID_FILES
        .iter()
        .filter(|(_, mode, _)| mode & 0o200 != 0)
        .map(|(n, _, _)| *n)
        .collect();
    if writable.contains(&"oom_score_adj") {
        let out = m.bash(&format!(
            "echo 500 > $M/{pid}/oom_score_adj && cat $M/{pid}/oom_score_adj"
        ));
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(stdout(&out), "500\n");
        let out = m.bash(&format!("echo 1001 > $M/{pid}/oom_score_adj"));
        assert!(
            stderr(&out).contains("Invalid argument"),
            "{}",
            stderr(&out)
        );
        assert_eq!(m.read(&format!("{pid}/oom_score_adj")), "500\n");
    }
    if writable.contains(&"comm") {
        let out = m.bash(&format!("echo renamed > $M/{pid}/comm"));
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(m.read(&format!("{pid}/comm")), "renamed\n");
    }
    for (name, mode, _) in mmfs::procfs::pid::PID_FILES {
        if mode & 0o200 == 0 {
            let err = std::fs::OpenOptions::new()
                .write(true)
                .open(m.path(&format!("{pid}/{name}")))
                .unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::EACCES), "{pid}/{name}");
        }
    }
    // An open file of a process that is gone: ESRCH, as in /proc.
    let held = std::fs::OpenOptions::new()
        .write(true)
        .open(m.path(&format!("{pid}/ctl")))
        .unwrap();
    m.ctl(&format!("kill {pid}"));
    let err = (&held).write_all(b"brk +4K\n").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ESRCH));
    drop(held);
    assert!(!dir.exists(), "directory of a killed process remains");
    let err = m.write(&format!("{pid}/ctl"), "brk +4K\n").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
}
