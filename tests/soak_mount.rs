//! Soak through a real mount: 8 concurrent workers (6 Rust threads doing
//! raw open/read/write/close, 2 bash loops) drive one small machine for
//! `MMFS_SOAK_SECS` seconds (default 30; the documented long run is 600):
//!
//! - two process workers: spawn, mmap, touch, `PID/mem` write + read-back,
//!   madvise pageout/cold/dontneed, mprotect, brk, munmap, kill;
//! - a killer: kills random processes (the OOM killer does too);
//! - a swap worker: mkswap/swapon/swapoff on simulated `/dev/` devices;
//! - a slab/page worker: kmem_cache_create/alloc/free/destroy, kmalloc/kfree,
//!   alloc_pages/free_pages, reclaim, tick, sysctl writes;
//! - a reader: every file, whole and in small pieces, each read checked for
//!   well-formedness (whole lines, meminfo/buddyinfo/swaps/vmstat parse);
//! - two bash workers: `cat` of every file, `echo` of commands (some
//!   deliberately bad) to `ctl` and `PID/ctl`.
//!
//! At the end: every worker finished (a watchdog catches deadlocks), only
//! expected errnos were seen, the cross-file identities hold on the quiet
//! machine, the daemon's resident set stayed bounded, and SIGTERM unmounts
//! under load (the time it takes is printed: 2 s is the target, but the
//! test only fails on a hang, so a busy machine cannot fail it).

#[allow(dead_code)] // the kernel-state checks are the core fuzzer's
#[path = "fuzz_common/checks.rs"]
mod checks;
mod common;

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Mount, close, mounted};
use mmfs::fs::mount::wait_for_exit;

/// No progress for this long is a deadlock, not a slow machine.
const HANG: Duration = Duration::from_secs(300);

/// Test duration from `MMFS_SOAK_SECS` (default 30 s).
fn soak_secs() -> u64 {
    std::env::var("MMFS_SOAK_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30)
}

/// What every worker records.
#[derive(Default)]
struct Tally {
    /// (worker, what, errno name) → count; errno name "ok" for success.
    outcomes: BTreeMap<(String, String, String), u64>,
    /// Problems that fail the test, with how often each was seen.
    problems: BTreeMap<String, u64>,
}

struct Shared {
    dir: PathBuf,
    stop: AtomicBool,
    tally: Mutex<Tally>,
    /// Operations done by all workers (progress for the watchdog).
    progress: AtomicU64,
}

impl Shared {
    fn record(&self, worker: &str, what: &str, result: &std::io::Result<()>, expected: &[i32]) {
        self.progress.fetch_add(1, Ordering::Relaxed);
        let name = match result {
            Ok(()) => "ok".to_string(),
            Err(e) => errno_label(e),
        };
        let mut t = self.tally.lock().unwrap();
        *t.outcomes
            .entry((worker.to_string(), what.to_string(), name.clone()))
            .or_default() += 1;
        if let Err(e) = result {
            let ok = e.raw_os_error().is_some_and(|n| expected.contains(&n));
            if !ok {
                *t.problems
                    .entry(format!("{worker}: {what}: unexpected error {e}"))
                    .or_default() += 1;
            }
        }
    }

    fn problem(&self, text: String) {
        let mut t = self.tally.lock().unwrap();
        if t.problems.len() < 100 {
            *t.problems.entry(text).or_default() += 1;
        }
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    /// One control line in one open/write/close, as `echo LINE > FILE`.
    fn ctl(&self, file: &str, line: &str) -> std::io::Result<()> {
        let mut f = OpenOptions::new().write(true).open(self.path(file))?;
        f.write_all(format!("{line}\n").as_bytes())?;
        close(f)
    }
}

fn errno_label(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::ENOMEM) => "ENOMEM".into(),
        Some(libc::ESRCH) => "ESRCH".into(),
        Some(libc::EFAULT) => "EFAULT".into(),
        Some(libc::EBUSY) => "EBUSY".into(),
        Some(libc::ENOENT) => "ENOENT".into(),
        Some(libc::EEXIST) => "EEXIST".into(),
        Some(libc::EINVAL) => "EINVAL".into(),
        Some(libc::EAGAIN) => "EAGAIN".into(),
        Some(libc::EIO) => "EIO".into(),
        Some(libc::EPERM) => "EPERM".into(),
        Some(n) => format!("errno {n}"),
        None => format!("{e}"),
    }
}

const ENOMEM: i32 = libc::ENOMEM;
const ESRCH: i32 = libc::ESRCH;
const ENOENT: i32 = libc::ENOENT;
const EAGAIN: i32 = libc::EAGAIN;

/// A tiny PRNG per worker (xorshift64*), seeded by the worker number.
struct Xs(u64);
impl Xs {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1)
    }
}

/// The pid of the live process named `comm` (names are unique per spawn).
fn find_pid(dir: &Path, comm: &str) -> Option<u32> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(pid) = name.parse::<u32>() else {
            continue;
        };
        if let Ok(c) = std::fs::read_to_string(entry.path().join("comm"))
            && c.trim_end() == comm
        {
            return Some(pid);
        }
    }
    None
}

fn live_pids(dir: &Path) -> Vec<u32> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_string_lossy().parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Process worker: its own processes, their memory checked byte for byte.
fn process_worker(s: &Shared, id: u64) {
    let me = format!("proc{id}");
    let mut rng = Xs(0x9e37_79b9 + id);
    let mut serial = 0u64;
    // Expected: the process may be killed (killer, OOM) at any moment.
    let gone = [ENOMEM, ESRCH, ENOENT, libc::EFAULT, EAGAIN];
    while !s.stopped() {
        serial += 1;
        let comm = format!("p{id}-{serial}");
        let r = s.ctl("ctl", &format!("spawn {comm}"));
        s.record(&me, "spawn", &r, &[ENOMEM, EAGAIN]);
        if r.is_err() {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        let Some(pid) = find_pid(&s.dir, &comm) else {
            // Killed before we found it: fine.
            continue;
        };
        let ctl = format!("{pid}/ctl");
        // Now and then a hog bigger than RAM: kswapd, direct reclaim and,
        // while swap is off, the OOM killer get their turn.
        if rng.below(25) == 0 {
            let r = s.ctl(&ctl, "mmap 300M name=hog");
            s.record(&me, "mmap hog", &r, &gone);
            if r.is_ok() {
                let r = s.ctl(&ctl, "touch hog 300M");
                s.record(&me, "touch hog", &r, &gone);
            }
            let r = s.ctl("ctl", &format!("kill {pid}"));
            s.record(&me, "kill hog", &r, &[ESRCH]);
            continue;
        }
        let mb = 4 + rng.below(28);
        let r = s.ctl(&ctl, &format!("mmap {mb}M name=buf"));
        s.record(&me, "mmap", &r, &gone);
        for round in 0..4 {
            if s.stopped() {
                break;
            }
            let r = s.ctl(&ctl, &format!("touch buf {mb}M write"));
            s.record(&me, "touch", &r, &gone);
            // Bytes through mem survive pageout and swap-in.
            let pattern: Vec<u8> = (0..4096u32)
                .map(|i| (i as u64 * 31 + serial + round) as u8)
                .collect();
            let maps = std::fs::read_to_string(s.path(&format!("{pid}/maps"))).unwrap_or_default();
            let buf_start = maps
                .lines()
                .find(|l| l.ends_with("[anon:buf]"))
                .and_then(|l| l.split('-').next())
                .and_then(|a| u64::from_str_radix(a, 16).ok());
            if let Some(addr) = buf_start {
                let off = rng.below(mb * 256) * 4096;
                let mem = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(s.path(&format!("{pid}/mem")));
                match mem {
                    Ok(f) => {
                        let w = f.write_all_at(&pattern, addr + off);
                        s.record(&me, "mem write", &w, &[libc::EIO, ESRCH, ENOMEM, ENOENT]);
                        let r = s.ctl(&ctl, &format!("madvise buf+{off} 4K pageout"));
                        s.record(&me, "madvise pageout", &r, &gone);
                        let mut back = vec![0u8; 4096];
                        let rr = f.read_exact_at(&mut back, addr + off);
                        s.record(&me, "mem read", &rr, &[libc::EIO, ESRCH, ENOMEM, ENOENT]);
                        if w.is_ok() && rr.is_ok() && back != pattern {
                            // Same process still (unique comm)? Then it is a real mismatch.
                            let still = std::fs::read_to_string(s.path(&format!("{pid}/comm")))
                                .map(|c| c.trim_end() == comm)
                                .unwrap_or(false);
                            if still {
                                s.problem(format!(
                                    "{me}: {pid}/mem at {:#x}: bytes read back differ after pageout",
                                    addr + off
                                ));
                            }
                        }
                    }
                    Err(e) => s.record(&me, "open mem", &Err(e), &[ENOENT, ESRCH]),
                }
            }
            let advice = ["pageout", "cold", "dontneed"][rng.below(3) as usize];
            let r = s.ctl(
                &ctl,
                &format!("madvise buf {}K {advice}", 4 * (1 + rng.below(mb * 256))),
            );
            s.record(&me, "madvise", &r, &gone);
            let r = s.ctl(
                &ctl,
                &format!(
                    "mprotect buf 4K {}",
                    ["r", "rw", "none"][rng.below(3) as usize]
                ),
            );
            s.record(&me, "mprotect", &r, &gone);
            let r = s.ctl(&ctl, &format!("brk +{}K", 4 * (1 + rng.below(64))));
            s.record(&me, "brk", &r, &gone);
            let r = s.ctl(&ctl, "touch heap 4K");
            s.record(&me, "touch heap", &r, &gone);
        }
        if rng.below(4) == 0 {
            let r = s.ctl(&ctl, &format!("munmap buf {mb}M"));
            s.record(&me, "munmap", &r, &gone);
        }
        // Keep some processes alive so memory fills up (the killer and the
        // OOM killer thin them out).
        if rng.below(2) != 0 {
            let r = s.ctl("ctl", &format!("kill {pid}"));
            s.record(&me, "kill", &r, &[ESRCH]);
        }
    }
}

/// Killer: random processes, and every process when memory looks full.
fn killer_worker(s: &Shared) {
    let mut rng = Xs(77);
    while !s.stopped() {
        std::thread::sleep(Duration::from_millis(50));
        let pids = live_pids(&s.dir);
        if pids.len() > 1 {
            let victim = pids[rng.below(pids.len() as u64) as usize];
            let r = s.ctl("ctl", &format!("kill {victim}"));
            // init and the kernel threads ignore SIGKILL: EPERM.
            let expected: &[i32] = if victim <= 5 {
                &[libc::EPERM]
            } else {
                &[ESRCH]
            };
            s.record("killer", "kill", &r, expected);
        }
    }
}

/// Swap worker: simulated devices on and off.
fn swap_worker(s: &Shared) {
    let mut rng = Xs(5);
    let devs = ["/dev/soak0", "/dev/soak1", "/dev/soak2"];
    for (i, d) in devs.iter().enumerate() {
        let r = s.ctl("ctl", &format!("mkswap {d} {}M", 64 * (i + 1)));
        s.record("swap", "mkswap", &r, &[libc::EEXIST]);
    }
    while !s.stopped() {
        let d = devs[rng.below(3) as usize];
        let r = if rng.below(2) == 0 {
            let prio = if rng.below(2) == 0 {
                String::new()
            } else {
                format!(" prio={}", rng.below(10))
            };
            let r = s.ctl("ctl", &format!("swapon {d}{prio}"));
            s.record("swap", "swapon", &r, &[libc::EBUSY]);
            r
        } else {
            let r = s.ctl("ctl", &format!("swapoff {d}"));
            // ENOMEM: its pages do not fit back; ENOENT: it was off.
            s.record("swap", "swapoff", &r, &[ENOMEM, ENOENT]);
            r
        };
        let _ = r;
        // Mostly keep swap on so reclaim has somewhere to go.
        std::thread::sleep(Duration::from_millis(30 + rng.below(100)));
    }
}

/// Slab and page worker, plus tunables and clock.
fn kernel_worker(s: &Shared) {
    let mut rng = Xs(11);
    let r = s.ctl("ctl", "kmem_cache_create soak_obj 200");
    s.record("kernel", "kmem_cache_create", &r, &[libc::EEXIST]);
    while !s.stopped() {
        let lines: &[(&str, &[i32])] = &[
            // ENOENT: the cache was destroyed (it was empty) a moment ago.
            (
                "kmem_cache_alloc soak_obj count=200 tag=soak",
                &[ENOMEM, ENOENT],
            ),
            ("kmalloc 96 count=300 tag=soakk", &[ENOMEM]),
            ("alloc_pages 2 count=16 tag=soakp", &[ENOMEM]),
            ("kfree tag=soakk count=150", &[ENOENT]),
            ("kmem_cache_free tag=soak count=100", &[ENOENT]),
            ("free_pages tag=soakp count=8", &[ENOENT]),
            ("reclaim 4M", &[EAGAIN, ENOMEM]),
            ("tick 50", &[]),
            ("kmem_cache_destroy soak_obj", &[libc::EBUSY, ENOENT]),
            ("kmem_cache_create soak_obj 200", &[libc::EEXIST]),
        ];
        let (line, expected) = lines[rng.below(lines.len() as u64) as usize];
        let r = s.ctl("ctl", line);
        s.record(
            "kernel",
            line.split(' ').next().unwrap_or(line),
            &r,
            expected,
        );
        if rng.below(20) == 0 {
            let v = 40 + rng.below(120);
            let r = std::fs::write(s.path("sys/vm/swappiness"), format!("{v}\n"));
            s.record("kernel", "swappiness", &r, &[]);
        }
        if rng.below(40) == 0 {
            // Deliberately bad: must be EINVAL.
            let r = s.ctl("ctl", "alloc_pages eleven");
            s.record("kernel", "bad line", &r, &[libc::EINVAL]);
            if r.is_ok() {
                s.problem("a bad line was accepted".into());
            }
        }
        if rng.below(50) == 0 {
            // Clean up so the worker does not just hold everything.
            for line in [
                "kfree tag=soakk",
                "kmem_cache_free tag=soak",
                "free_pages tag=soakp",
            ] {
                let r = s.ctl("ctl", line);
                s.record("kernel", "cleanup", &r, &[ENOENT]);
            }
        }
    }
}

/// Check one file's text by name.
fn check_text(name: &str, text: &str) -> Result<(), String> {
    match name {
        "meminfo" => {
            let f = checks::parse_meminfo(text)?;
            let total = checks::meminfo_value(&f, "MemTotal")?;
            let free = checks::meminfo_value(&f, "MemFree")?;
            let st = checks::meminfo_value(&f, "SwapTotal")?;
            let sf = checks::meminfo_value(&f, "SwapFree")?;
            if free > total || sf > st {
                return Err(format!(
                    "meminfo: MemFree {free} / MemTotal {total}, SwapFree {sf} / SwapTotal {st}"
                ));
            }
            Ok(())
        }
        "buddyinfo" => checks::buddyinfo_free_pages(text).map(|_| ()),
        "swaps" => checks::parse_swaps(text).map(|_| ()),
        "vmstat" => checks::check_vmstat(text),
        "dmesg" if text.is_empty() => Ok(()),
        n if n.ends_with("cmdline") => {
            if text.is_empty() || text.ends_with('\0') {
                Ok(())
            } else {
                Err(format!("{n}: not NUL-terminated"))
            }
        }
        n if n.contains('/') && text.is_empty() => Ok(()),
        n => checks::complete_lines(n, text),
    }
}

const TOP_FILES: &[&str] = &[
    "buddyinfo",
    "zoneinfo",
    "pagetypeinfo",
    "slabinfo",
    "swaps",
    "meminfo",
    "vmstat",
    "partitions",
    "stat",
    "dmesg",
    "physmap",
    "sys/vm/swappiness",
    "sys/vm/min_free_kbytes",
    "sys/vm/watermark_scale_factor",
    "sys/vm/overcommit_memory",
    "sys/vm/overcommit_ratio",
    "sys/kernel/ns_last_pid",
];
const PID_FILES: &[&str] = &[
    "comm",
    "cmdline",
    "stat",
    "statm",
    "status",
    "maps",
    "smaps",
    "smaps_rollup",
    "oom_score",
    "oom_score_adj",
];

/// Read a file whole or in `chunk`-byte reads through one open.
fn read_file(path: &Path, chunk: usize) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; chunk];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(out).map_err(|_| std::io::Error::other("file is not UTF-8"))
}

/// Reader: every file, whole and in small pieces; each read checked.
fn reader_worker(s: &Shared) {
    let mut rng = Xs(3);
    while !s.stopped() {
        let chunk = [7, 64, 100, 4096, 131072][rng.below(5) as usize];
        for name in TOP_FILES {
            let r = read_file(&s.path(name), chunk);
            if let Ok(text) = &r
                && let Err(e) = check_text(name, text)
            {
                s.problem(format!("reader: {name} (reads of {chunk}): {e}"));
            }
            s.record("reader", name, &r.map(|_| ()), &[]);
        }
        for pid in live_pids(&s.dir) {
            for file in PID_FILES {
                let rel = format!("{pid}/{file}");
                let r = read_file(&s.path(&rel), chunk);
                if let Ok(text) = &r
                    && let Err(e) = check_text(&rel, text)
                {
                    s.problem(format!("reader: {rel} (reads of {chunk}): {e}"));
                }
                // The process may exit between readdir and open/read.
                s.record(
                    "reader",
                    &format!("PID/{file}"),
                    &r.map(|_| ()),
                    &[ENOENT, ESRCH],
                );
            }
        }
    }
}

/// A bash worker: runs `script` in a loop until the deadline; its stderr
/// lines are classified by the error text bash prints.
fn bash_worker(s: &Shared, name: &str, script: &str, secs: u64) {
    let full =
        format!("end=$((SECONDS+{secs}))\nwhile [ $SECONDS -lt $end ]; do\n{script}\ndone\n");
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(&full)
        .env("M", &s.dir)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run bash");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let allowed = [
        "Cannot allocate memory",
        "No such process",
        "No such file or directory",
        "Invalid argument",
        "Resource temporarily unavailable",
        "Bad address",
        "Device or resource busy",
        "File exists",
    ];
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for line in stderr.lines() {
        let kind = allowed.iter().find(|a| line.contains(*a));
        match kind {
            Some(k) => *counts.entry((*k).to_string()).or_default() += 1,
            None => s.problem(format!("{name}: unexpected stderr: {line}")),
        }
    }
    let mut t = s.tally.lock().unwrap();
    for (k, n) in counts {
        *t.outcomes
            .entry((name.to_string(), "stderr".into(), k))
            .or_default() += n;
    }
    let loops = String::from_utf8_lossy(&out.stdout).lines().count() as u64;
    *t.outcomes
        .entry((name.to_string(), "loops".into(), "ok".into()))
        .or_default() += loops;
}

/// Resident set of a process in kB, from /proc/PID/status.
fn vm_rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

#[test]
fn soak_eight_workers() {
    let secs = soak_secs();
    let m = Mount::with_args(&["--mem", "256M"]);
    let daemon = m.pid;
    let rss_start = vm_rss_kb(daemon);
    let shared = Arc::new(Shared {
        dir: m.dir.clone(),
        stop: AtomicBool::new(false),
        tally: Mutex::new(Tally::default()),
        progress: AtomicU64::new(0),
    });
    let started = Instant::now();
    let mut handles = Vec::new();
    let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
        std::thread::Builder::new()
            .name(name.into())
            .spawn(f)
            .expect("spawn worker")
    };
    for id in 0..2 {
        let s = shared.clone();
        handles.push(spawn("proc", Box::new(move || process_worker(&s, id))));
    }
    let s = shared.clone();
    handles.push(spawn("killer", Box::new(move || killer_worker(&s))));
    let s = shared.clone();
    handles.push(spawn("swap", Box::new(move || swap_worker(&s))));
    let s = shared.clone();
    handles.push(spawn("kernel", Box::new(move || kernel_worker(&s))));
    let s = shared.clone();
    handles.push(spawn("reader", Box::new(move || reader_worker(&s))));
    let s = shared.clone();
    handles.push(spawn(
        "bash-cat",
        Box::new(move || {
            bash_worker(
                &s,
                "bash-cat",
                r#"cat $M/buddyinfo $M/meminfo $M/vmstat $M/swaps $M/zoneinfo $M/slabinfo $M/stat $M/dmesg $M/partitions $M/physmap > /dev/null
for p in $M/[0-9]*; do cat $p/status $p/maps $p/smaps_rollup $p/statm > /dev/null; done
grep -c . $M/meminfo > /dev/null; wc -l $M/zoneinfo > /dev/null; echo loop"#,
                secs,
            )
        }),
    ));
    let s = shared.clone();
    handles.push(spawn(
        "bash-ctl",
        Box::new(move || {
            bash_worker(
                &s,
                "bash-ctl",
                r#"echo "spawn shell$RANDOM" > $M/ctl
p=$(cat $M/sys/kernel/ns_last_pid)
echo "mmap 2M name=sh" > $M/$p/ctl
echo "touch sh 2M" > $M/$p/ctl
echo "madvise sh 1M pageout" > $M/$p/ctl
echo "touch sh 1M read" > $M/$p/ctl
echo "bogus command" > $M/ctl
echo "$((RANDOM % 200))" > $M/sys/vm/swappiness
echo "kill $p" > $M/ctl
echo "tick 10" > $M/ctl; echo loop"#,
                secs,
            )
        }),
    ));
    // Run, then stop; a watchdog fails the test on a deadlock.
    let deadline = started + Duration::from_secs(secs);
    let mut last_progress = 0;
    let mut last_change = Instant::now();
    let mut rss_max = rss_start;
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        rss_max = rss_max.max(vm_rss_kb(daemon));
        let p = shared.progress.load(Ordering::Relaxed);
        if p != last_progress {
            last_progress = p;
            last_change = Instant::now();
        }
        assert!(
            last_change.elapsed() < HANG,
            "no worker made progress for {} s: deadlock? daemon log:\n{}",
            HANG.as_secs(),
            m.log_text()
        );
    }
    shared.stop.store(true, Ordering::SeqCst);
    let join_deadline = Instant::now() + HANG;
    for h in handles {
        while !h.is_finished() {
            assert!(
                Instant::now() < join_deadline,
                "a worker did not finish within {} s of the stop: deadlock?",
                HANG.as_secs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        h.join().expect("worker panicked");
    }
    let elapsed = started.elapsed();
    // The machine is quiet now: the cross-file identities must hold.
    let buddy = m.read("buddyinfo");
    let meminfo = m.read("meminfo");
    let swaps = m.read("swaps");
    let cross = checks::cross_check(&buddy, &meminfo, &swaps);
    let rss_end = vm_rss_kb(daemon);
    // What the load reached: OOM kills, swap traffic, reclaim.
    let vmstat = m.read("vmstat");
    let counter = |name: &str| -> u64 {
        vmstat
            .lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let reached = format!(
        "reached: oom_kill {}, pswpout {}, pswpin {}, pgmajfault {}, pgsteal_kswapd {}, pgsteal_direct {}, pgscan_proactive {}",
        counter("oom_kill"),
        counter("pswpout"),
        counter("pswpin"),
        counter("pgmajfault"),
        counter("pgsteal_kswapd"),
        counter("pgsteal_direct"),
        counter("pgscan_proactive"),
    );
    let tally = shared.tally.lock().unwrap();
    let mut report = format!(
        "soak {secs}s ({:.1}s with joins); daemon VmRSS start {rss_start} kB, max {rss_max} kB, end {rss_end} kB\n",
        elapsed.as_secs_f64()
    );
    let mut total = 0;
    for ((worker, what, errno), n) in &tally.outcomes {
        total += n;
        report.push_str(&format!("  {worker:9} {what:22} {errno:8} {n}\n"));
    }
    report.push_str(&format!("  total operations {total}\n{reached}\n"));
    eprintln!("{report}");
    let problems: Vec<String> = tally
        .problems
        .iter()
        .map(|(p, n)| format!("{n:6} × {p}"))
        .collect();
    assert!(
        problems.is_empty(),
        "problems:\n{}\n{report}",
        problems.join("\n")
    );
    cross.unwrap_or_else(|e| panic!("cross-file check after the soak: {e}\n{report}"));
    // Bounded memory: the daemon holds a 256M machine's bookkeeping and
    // the bytes written through mem, not a growing history.
    assert!(
        rss_end < 512 << 10,
        "daemon VmRSS {rss_end} kB after the soak\n{report}"
    );
    assert!(total > 1000, "only {total} operations in {secs}s\n{report}");
    assert!(
        counter("pswpout") > 0,
        "nothing was swapped out: the soak missed the swap path\n{report}"
    );
    drop(tally);
    // SIGTERM under load unmounts within 2 s: four threads hammer the
    // mount (errors ignored: the mount goes away under them).
    let stop = Arc::new(AtomicBool::new(false));
    let hammers: Vec<_> = (0..4)
        .map(|i| {
            let (s, stop) = (shared.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let _ = match i {
                        0 => read_file(&s.path("zoneinfo"), 100).map(|_| ()),
                        1 => s.ctl("ctl", "tick 5"),
                        2 => s
                            .ctl("ctl", &format!("spawn h{n}"))
                            .and_then(|_| s.ctl("ctl", "kill 0")),
                        _ => read_file(&s.path("meminfo"), 4096).map(|_| ()),
                    };
                    n += 1;
                }
                n
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(1));
    let t = Instant::now();
    // SAFETY: kill has no memory preconditions; the pid is our daemon's.
    assert_eq!(unsafe { libc::kill(daemon as i32, libc::SIGTERM) }, 0);
    let exited = wait_for_exit(daemon, HANG);
    let took = t.elapsed();
    stop.store(true, Ordering::SeqCst);
    let mut hammered = 0;
    for h in hammers {
        hammered += h.join().unwrap_or(0);
    }
    eprintln!(
        "SIGTERM under load ({hammered} hammer ops): exit after {:.3}s (target 2 s)",
        took.as_secs_f64()
    );
    assert!(
        exited,
        "daemon still running {} s after SIGTERM under load: a hang",
        HANG.as_secs()
    );
    assert!(!mounted(&m.dir), "still mounted after SIGTERM");
}
