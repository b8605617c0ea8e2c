//! `fork PID` (SPEC §9) as the tools see it: the child in `ps` with its
//! parent, copy-on-write sharing in smaps (Shared_Dirty, Pss) and in
//! psutil's `memory_full_info()` (uss, pss), the copy when the child
//! writes, reparenting to init when the parent goes. Expected shapes from
//! the real 6.18 capture in tests/reference/linux-samples/fork-and-files.

mod common;

use common::Mount;

/// A `Key:   N kB` value of a smaps-like text.
fn kb(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {text}"))
}

/// psutil's memory_full_info() of `pid` under exec: (rss, uss, pss) in kB.
fn psutil_full(m: &Mount, pid: u32) -> (u64, u64, u64) {
    let script = format!(
        "import psutil; i = psutil.Process({pid}).memory_full_info(); print(i.rss // 1024, i.uss // 1024, i.pss // 1024)"
    );
    let (code, out) = m.exec_text(&["python3", "-c", &script]);
    assert_eq!(code, 0, "{out}");
    let v: Vec<u64> = out
        .split_whitespace()
        .map(|w| w.parse().unwrap_or_else(|_| panic!("{out}")))
        .collect();
    (v[0], v[1], v[2])
}

/// Real `smem` (Debian package) under exec: (uss, pss, rss) of `pid` in kB.
fn smem(m: &Mount, pid: u32) -> (u64, u64, u64) {
    let (code, out) = m.exec_text(&["smem", "-H", "-c", "pid uss pss rss"]);
    assert_eq!(code, 0, "{out}");
    let row: Vec<u64> = out
        .lines()
        .map(|l| {
            l.split_whitespace()
                .map(|w| w.parse().unwrap())
                .collect::<Vec<u64>>()
        })
        .find(|r| r[0] == u64::from(pid))
        .unwrap_or_else(|| panic!("no pid {pid} in smem's\n{out}"));
    (row[1], row[2], row[3])
}

/// Σ of a `Key:` over every VMA of a smaps text, kB (how smem adds).
fn sum_kb(smaps: &str, key: &str) -> u64 {
    smaps
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("{key}:")))
        .map(|v| v.split_whitespace().next().unwrap().parse::<u64>().unwrap())
        .sum()
}

#[test]
fn a_forked_child_shares_pages_until_it_writes() {
    let m = Mount::new();
    let parent = m.created("spawn db");
    for line in ["mmap 2M name=anon", "touch anon 2M"] {
        m.write(&format!("{parent}/ctl"), &format!("{line}\n"))
            .unwrap();
    }
    let child = m.created(&format!("fork {parent}"));
    assert_eq!(m.read("sys/kernel/ns_last_pid").trim(), child.to_string());
    let status = m.read(&format!("{child}/status"));
    assert!(status.contains(&format!("\nPPid:\t{parent}\n")), "{status}");
    assert!(status.starts_with("Name:\tdb\n"), "{status}");
    // ps sees the child under its parent.
    let (code, out) = m.exec_text(&["ps", "-o", "pid=,ppid=,comm=", "-p", &child.to_string()]);
    assert_eq!(code, 0, "{out}");
    let cols: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(cols, [child.to_string(), parent.to_string(), "db".into()]);
    // Right after fork (child-after-fork-smaps_rollup: Shared_Dirty 2620
    // kB of Rss 3896 — the anon pages — and Pss about half): every page
    // of both is shared, Pss is half of Rss.
    let rollup = m.read(&format!("{child}/smaps_rollup"));
    let rss = kb(&rollup, "Rss");
    assert_eq!(kb(&rollup, "Shared_Dirty"), rss);
    assert_eq!(kb(&rollup, "Private_Dirty"), 0);
    assert_eq!(kb(&rollup, "Pss"), rss / 2);
    let (ps_rss, uss, pss) = psutil_full(&m, child);
    assert_eq!((ps_rss, uss, pss), (rss, 0, rss / 2));
    // The child writes the first 1M: 256 copies, private to it now
    // (child-after-cow: Private_Dirty 1064 kB = 1024 + its stack).
    m.write(&format!("{child}/ctl"), "touch anon 1M write\n")
        .unwrap();
    let rollup = m.read(&format!("{child}/smaps_rollup"));
    assert_eq!(kb(&rollup, "Private_Dirty"), 1024);
    assert_eq!(kb(&rollup, "Shared_Dirty"), rss - 1024);
    let (_, uss, pss) = psutil_full(&m, child);
    assert_eq!((uss, pss), (1024, 1024 + (rss - 1024) / 2));
    // smem adds smaps' per-VMA lines: it agrees with the file and, here,
    // with psutil (every VMA's Pss is a whole number of kB).
    let smaps = m.read(&format!("{child}/smaps"));
    let files = (
        sum_kb(&smaps, "Private_Clean") + sum_kb(&smaps, "Private_Dirty"),
        sum_kb(&smaps, "Pss"),
        sum_kb(&smaps, "Rss"),
    );
    assert_eq!(smem(&m, child), files);
    assert_eq!(files, (uss, pss, rss));
    // AnonPages counts each page once: 512 + 256 copies + the stacks.
    let meminfo = m.read("meminfo");
    let anon = kb(&meminfo, "AnonPages");
    let parent_rss = kb(&m.read(&format!("{parent}/status")), "RssAnon");
    assert_eq!(anon - kb(&m.read("1/status"), "RssAnon"), parent_rss + 1024);
    // The parent goes: the child is init's now and owns every page.
    m.ctl(&format!("kill {parent}"));
    let status = m.read(&format!("{child}/status"));
    assert!(status.contains("\nPPid:\t1\n"), "{status}");
    let rollup = m.read(&format!("{child}/smaps_rollup"));
    assert_eq!(kb(&rollup, "Shared_Dirty"), 0);
    assert_eq!(kb(&rollup, "Pss"), kb(&rollup, "Rss"));
    // Forking a kernel thread or nobody: EPERM, ESRCH.
    let out = m.bash("echo 'fork 2' > \"$M/ctl\"");
    assert!(String::from_utf8_lossy(&out.stderr).contains("Operation not permitted"));
    let out = m.bash("echo 'fork 4000' > \"$M/ctl\"");
    assert!(String::from_utf8_lossy(&out.stderr).contains("No such process"));
}
