//! Watching the machine live: `vmstat 1`, `free -s 1` and `top -d 1` under
//! `mmfs exec` while a workload runs; `--clock wall` with kswapd reclaiming
//! while nobody writes; kswapd0's CPU time in `top` and PSI after memory
//! pressure. No test times itself: every wait is a poll with a generous
//! limit, and the checks are on what the tools print.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Mount, stderr, stdout};

/// A machine of `mem` with a 1G swap partition and one process with a
/// named mapping `h` of `size`; returns the pid.
fn pressure_machine(m: &Mount, size: &str) -> u32 {
    m.ctl("mkswap /dev/sdb 1G");
    m.ctl("swapon /dev/sdb");
    m.ctl("spawn hog");
    let pid: u32 = m.read("sys/kernel/ns_last_pid").trim().parse().unwrap();
    m.ctl_pid(pid, &format!("mmap {size} name=h"));
    pid
}

/// A workload in the background: touch the mapping again and again until
/// the returned guard is dropped.
struct Workload(Child);

impl Workload {
    /// Touch the mapping of `mib` MiB 16M at a time, round and round.
    fn start(m: &Mount, pid: u32, mib: u32) -> Workload {
        let child = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "while :; do for ((o = 0; o < {mib}; o += 16)); do \
                 echo \"touch h+${{o}}M 16M\" > $M/{pid}/ctl || exit 1; done; done"
            ))
            .env("M", &m.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the workload");
        Workload(child)
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

trait PidCtl {
    fn ctl_pid(&self, pid: u32, line: &str);
}

impl PidCtl for Mount {
    fn ctl_pid(&self, pid: u32, line: &str) {
        self.write(&format!("{pid}/ctl"), &format!("{line}\n"))
            .unwrap_or_else(|e| panic!("{pid}/ctl {line:?}: {e}"));
    }
}

fn vmstat_key(m: &Mount, key: &str) -> u64 {
    m.read("vmstat")
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key} ")))
        .unwrap_or_else(|| panic!("no {key}"))
        .parse()
        .unwrap()
}

/// The data rows of `vmstat N COUNT` as numbers.
fn vmstat_rows(text: &str) -> Vec<Vec<u64>> {
    text.lines()
        .filter(|l| l.trim_start().starts_with(|c: char| c.is_ascii_digit()))
        .map(|l| l.split_whitespace().map(|w| w.parse().unwrap()).collect())
        .collect()
}

#[test]
fn vmstat_free_and_top_sample_a_changing_machine() {
    // On the wall clock a write is answered when real time has caught up
    // with its work, so the workload runs at the simulated machine's speed
    // (vmstat divides by its own sleep, in real seconds).
    let m = Mount::with_args(&["--mem", "256M", "-o", "clock=wall"]);
    let pid = pressure_machine(&m, "400M");
    let _load = Workload::start(&m, pid, 400);
    // vmstat 1 3: the first row is since boot, the next two per interval.
    let out = m.exec(&["vmstat", "1", "3"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let rows = vmstat_rows(&text);
    assert_eq!(rows.len(), 3, "{text}");
    let header: Vec<&str> = text.lines().nth(1).unwrap().split_whitespace().collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    // The machine changed between samples (the workload is swapping).
    assert!(rows[1] != rows[2] || rows[0] != rows[1], "{text}");
    for row in &rows {
        // Rates are per simulated second: the disk moves one page per
        // SWAP_PAGE_IO_NS (100 µs), 40000 kB/s in and out together; a
        // sample may hold one 16M command more than a second's work.
        // (Unpaced, or with a clock stuck at 0, these were millions.)
        let (si, so) = (row[col("si")], row[col("so")]);
        assert!(si + so <= 100_000, "si {si} so {so}:\n{text}");
        let cpu: u64 = ["us", "sy", "id", "wa", "st"]
            .iter()
            .map(|c| row[col(c)])
            .sum();
        assert!(
            (98..=102).contains(&cpu),
            "cpu columns sum to {cpu}:\n{text}"
        );
    }
    // free -s 1 -c 3: three samples of the simulated total.
    let out = m.exec(&["free", "-k", "-s", "1", "-c", "3"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let mem: Vec<&str> = text.lines().filter(|l| l.starts_with("Mem:")).collect();
    assert_eq!(mem.len(), 3, "{text}");
    let total: u64 = mem[0].split_whitespace().nth(1).unwrap().parse().unwrap();
    assert_eq!(total, m.meminfo_kb("MemTotal"));
    // top -b -d 1 -n 2: two frames, both listing the workload's process.
    let out = m.exec(&["top", "-b", "-d", "1", "-n", "2", "-w", "200"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(text.matches("top - ").count(), 2, "{text}");
    assert_eq!(text.matches(" hog").count(), 2, "{text}");
}

#[test]
fn after_pressure_top_shows_kswapd_busy_and_psi_counts_the_stalls() {
    let m = Mount::with_args(&["--mem", "256M"]);
    let pid = pressure_machine(&m, "400M");
    for _ in 0..3 {
        m.ctl_pid(pid, "touch h 400M");
    }
    // ps lists the kernel threads in brackets, children of kthreadd.
    let out = m.exec(&["ps", "-eo", "pid,ppid,time,args"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let kswapd = text
        .lines()
        .find(|l| l.ends_with("[kswapd0]"))
        .unwrap_or_else(|| panic!("no [kswapd0] in ps:\n{text}"));
    let f: Vec<&str> = kswapd.split_whitespace().collect();
    assert_eq!((f[0], f[1]), ("5", "2"), "{kswapd}");
    for name in ["[kthreadd]", "[oom_reaper]", "[kcompactd0]"] {
        assert!(text.contains(name), "no {name}:\n{text}");
    }
    // top: kswapd0 did the reclaim, so it has CPU time (TIME+ > 0).
    let out = m.exec(&["top", "-b", "-n", "1", "-w", "200"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let line = text
        .lines()
        .find(|l| l.ends_with("kswapd0"))
        .unwrap_or_else(|| panic!("no kswapd0 in top:\n{text}"));
    let time = line.split_whitespace().nth(10).unwrap();
    assert_ne!(time, "0:00.00", "kswapd0 has no CPU time: {line}");
    // Its stat agrees: stime in clock ticks.
    let stat = m.read("5/stat");
    let stime: u64 = stat.split(' ').nth(14).unwrap().parse().unwrap();
    assert!(stime > 0, "{stat}");
    // PSI: the swap-ins stalled the workload (full) and kswapd (some).
    let psi = m.read("pressure/memory");
    let totals: Vec<u64> = psi
        .lines()
        .map(|l| l.rsplit("total=").next().unwrap().parse().unwrap())
        .collect();
    assert!(totals[0] > 0 && totals[1] > 0, "{psi}");
    assert!(totals[0] >= totals[1], "{psi}");
    let out = m.exec(&["cat", "/proc/pressure/memory", "/proc/loadavg"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).starts_with(&psi), "{}", stdout(&out));
}

#[test]
fn on_the_wall_clock_kswapd_reclaims_while_nobody_writes() {
    let m = Mount::with_args(&["--mem", "256M", "-o", "clock=wall"]);
    let pid = pressure_machine(&m, "400M");
    // One write: the task outruns kswapd and reclaims directly; memory ends
    // near the min watermark with kswapd woken.
    m.ctl_pid(pid, "touch h 300M");
    let scanned = vmstat_key(&m, "pgscan_kswapd");
    let free = m.meminfo_kb("MemFree");
    // Nothing more is written: kswapd catches up as real time passes.
    let start = Instant::now();
    loop {
        if vmstat_key(&m, "pgscan_kswapd") > scanned && m.meminfo_kb("MemFree") > free {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "kswapd did not run on its own: pgscan_kswapd {scanned}, MemFree {free} kB"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The clock follows real time: uptime moves while idle.
    let up = |m: &Mount| -> f64 {
        m.read("uptime")
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let before = up(&m);
    let start = Instant::now();
    while up(&m) <= before {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "uptime stuck at {before}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn clock_option_is_checked() {
    let scratch = common::Scratch::new("clock");
    let out = common::mmfs([
        "mount".as_ref(),
        scratch.path.as_os_str(),
        "--clock".as_ref(),
        "sundial".as_ref(),
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("'sim'"), "{}", stderr(&out));
}
