//! The sections of the scale bench after VMA placement (issue 15, items
//! 2–4): bulk control lines, FUSE reads beside a minimal file system, big
//! machines, many processes. Numbers are printed beside their targets.

use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::{boot, cpu_now, exec as run_line, spawn};
use crate::floor::FloorMount;
use crate::mount::Mount;
use mmfs::ctl::{Machine, Scope};
use mmfs::fs::linebuf::LineBuffer;
use mmfs::mm::types::PAGE_SIZE;
use mmfs::procfs::pid::{PidFile, render_pid};
use mmfs::procfs::{GlobalFile, render_global};

/// Run every section `wants` names.
pub fn run(wants: &dyn Fn(&str) -> bool) {
    if wants("ctl") {
        bench_ctl_core();
        bench_ctl_mount();
    }
    if wants("fuse") {
        bench_fuse();
    }
    if wants("boot") {
        bench_boot();
    }
    if wants("touch") {
        bench_touch();
    }
    if wants("procs") {
        bench_procs();
    }
}

/// Resident set size of this process in bytes (/proc/self/statm).
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// One 64 KiB write's worth of `line` (whole lines only) and their count.
fn plan(line: &str) -> (Vec<u8>, usize) {
    let n = (64 << 10) / (line.len() + 1);
    let mut buf = Vec::with_capacity(64 << 10);
    for _ in 0..n {
        buf.extend_from_slice(line.as_bytes());
        buf.push(b'\n');
    }
    (buf, n)
}

/// Commands/s of `writes` 64 KiB writes of `line` through the control
/// files' own path (line assembly, then `Machine::execute_line`), CPU time.
fn ctl_rate(k: &mut Machine, scope: Scope, line: &str, writes: usize) -> f64 {
    let (buf, per_write) = plan(line);
    let mut lines = LineBuffer::new();
    let t = cpu_now();
    for _ in 0..writes {
        lines
            .feed(&buf, |l| {
                k.execute_line(scope, l).map(|_| ()).map_err(|e| e.errno())
            })
            .expect("the plan runs");
    }
    let s = cpu_now() - t;
    (per_write * writes) as f64 / s
}

fn bench_ctl_core() {
    println!(
        "bulk control lines, 64 KiB writes, core (LineBuffer + Machine::execute_line, CPU time):"
    );
    let mut k = boot(4 << 30);
    let pid = spawn(&mut k, "bulk");
    let mut best = [0f64; 2];
    for _ in 0..3 {
        best[0] = best[0].max(ctl_rate(&mut k, Scope::System, "tick", 40));
        best[1] = best[1].max(ctl_rate(&mut k, Scope::Process(pid), "mmap 4K", 40));
    }
    println!(
        "  tick on ctl:          {:>10.0} commands/s   (target ≥ 1,000,000)",
        best[0]
    );
    println!(
        "  mmap 4K on PID/ctl:   {:>10.0} commands/s   (target ≥ 1,000,000)",
        best[1]
    );
}

/// Commands/s through the mount: `writes` 64 KiB writes of `line` to `path`
/// on one descriptor (wall clock: the work is the daemon's).
fn mount_rate(path: &Path, line: &str, writes: usize) -> f64 {
    let (buf, per_write) = plan(line);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open ctl");
    let t = Instant::now();
    for _ in 0..writes {
        f.write_all(&buf).expect("write");
    }
    drop(f);
    (per_write * writes) as f64 / t.elapsed().as_secs_f64()
}

fn bench_ctl_mount() {
    if !can_mount() {
        println!("  through a mount: skipped (needs root and /dev/fuse)");
        return;
    }
    let m = Mount::with_args(&["--mem", "4G"]);
    let pid = {
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(m.path("ctl"))
            .expect("ctl");
        f.write_all(b"spawn bulk\n").expect("spawn");
        let mut back = String::new();
        f.read_to_string(&mut back).expect("pid back");
        back.trim().to_string()
    };
    let pctl = m.path(&format!("{pid}/ctl"));
    let mut best = [0f64; 2];
    for _ in 0..3 {
        best[0] = best[0].max(mount_rate(&m.path("ctl"), "tick", 40));
        best[1] = best[1].max(mount_rate(&pctl, "mmap 4K", 40));
    }
    println!("bulk control lines through a mount (64 KiB writes, wall clock):");
    println!(
        "  tick on MNT/ctl:      {:>10.0} commands/s   (target ≥ 200,000)",
        best[0]
    );
    println!(
        "  mmap 4K on PID/ctl:   {:>10.0} commands/s   (target ≥ 200,000)",
        best[1]
    );
}

fn can_mount() -> bool {
    Path::new("/dev/fuse").exists() && mmfs::fs::mount::is_root()
}

/// Mean µs of open+read-to-EOF+close of `path` over `n` rounds.
fn time_cat(path: &Path, n: u32, buf: &mut Vec<u8>) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        buf.clear();
        let mut f = std::fs::File::open(path).expect("open");
        f.read_to_end(buf).expect("read");
        std::hint::black_box(&buf);
    }
    start.elapsed().as_secs_f64() * 1e6 / f64::from(n)
}

/// Operations/s of `threads` readers doing open+read+close of `path`
/// `n` times each, at once.
fn parallel_rate(path: &Path, threads: usize, n: u32) -> f64 {
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut buf = Vec::with_capacity(4096);
                time_cat(path, n, &mut buf);
            });
        }
    });
    (threads as f64 * f64::from(n)) / start.elapsed().as_secs_f64()
}

fn bench_fuse() {
    println!("FUSE reads (wall clock, best of rounds, the two file systems interleaved):");
    if !can_mount() {
        println!("  skipped (needs root and /dev/fuse)");
        return;
    }
    let m = Mount::with_args(&["--mem", "1G"]);
    let buddy = m.path("buddyinfo");
    let text = std::fs::read(&buddy).expect("buddyinfo");
    let floor = match FloorMount::new(text.clone()) {
        Ok(f) => f,
        Err(e) => {
            println!("  minimal fuser file system: cannot mount ({e})");
            return;
        }
    };
    let constant = floor.file();
    assert_eq!(std::fs::read(&constant).expect("floor file"), text);
    let mut buf = Vec::with_capacity(4096);
    time_cat(&buddy, 2000, &mut buf);
    time_cat(&constant, 2000, &mut buf);
    let (mut ours, mut theirs) = (f64::MAX, f64::MAX);
    let deadline = Instant::now() + Duration::from_secs(20);
    for _ in 0..8 {
        ours = ours.min(time_cat(&buddy, 3000, &mut buf));
        theirs = theirs.min(time_cat(&constant, 3000, &mut buf));
        if Instant::now() > deadline {
            break;
        }
    }
    println!(
        "  cat buddyinfo on mmfs:               {ours:7.2} µs   ({} B)",
        text.len()
    );
    println!("  the same on a minimal fuser fs:      {theirs:7.2} µs   (TTL 0, direct I/O)");
    println!(
        "  ratio mmfs/minimal:                  {:7.3}      (target ≤ 1.0)",
        ours / theirs
    );
    let (mut one, mut two) = (0f64, 0f64);
    for _ in 0..3 {
        one = one.max(parallel_rate(&buddy, 1, 4000));
        two = two.max(parallel_rate(&buddy, 2, 4000));
    }
    println!("  one reader:   {one:9.0} cats/s");
    println!(
        "  two readers:  {two:9.0} cats/s  ×{:.2} one reader's   (target ≥ 1.5×)",
        two / one
    );
    let (mut f1, mut f2) = (0f64, 0f64);
    for _ in 0..3 {
        f1 = f1.max(parallel_rate(&constant, 1, 4000));
        f2 = f2.max(parallel_rate(&constant, 2, 4000));
    }
    println!(
        "  (minimal fs, one worker thread: {f1:.0} cats/s, two readers {f2:.0}, ×{:.2})",
        f2 / f1
    );
    drop(floor);
    drop(m);
}

fn bench_boot() {
    println!("boot (Machine::boot) and host memory (RSS growth):");
    for (label, mem) in [("256G", 256u64 << 30), ("1T", 1 << 40)] {
        let before = rss_bytes();
        let t = Instant::now();
        let k = boot(mem);
        let s = t.elapsed().as_secs_f64();
        let grown = rss_bytes().saturating_sub(before);
        println!(
            "  --mem {label:>4}: {:8.1} ms, {:5.2} B per simulated page   (target < 2 s, ≤ 8.5 B)",
            s * 1e3,
            grown as f64 / (mem / PAGE_SIZE) as f64
        );
        drop(std::hint::black_box(k));
    }
}

fn bench_touch() {
    println!("touch 64 GiB of a 1T machine (one command, CPU time; host memory by RSS):");
    let mut k = boot(1 << 40);
    let pid = spawn(&mut k, "toucher");
    let scope = Scope::Process(pid);
    let pages = (64u64 << 30) / PAGE_SIZE;
    run_line(&mut k, scope, "mmap 64G name=big");
    let before = rss_bytes();
    let t = cpu_now();
    run_line(&mut k, scope, "touch big 64G");
    let fresh = cpu_now() - t;
    let grown = rss_bytes().saturating_sub(before);
    println!(
        "  fresh: {:6.1} M faults/s, {:5.2} B of host memory per touched page   (target ≤ 32 B)",
        pages as f64 / fresh / 1e6,
        grown as f64 / pages as f64
    );
    run_line(&mut k, scope, "munmap big 64G");
    run_line(&mut k, scope, "mmap 64G name=big");
    let t = cpu_now();
    run_line(&mut k, scope, "touch big 64G");
    let warm = cpu_now() - t;
    println!(
        "  warm:  {:6.1} M faults/s (the frames' host memory already in use)",
        pages as f64 / warm / 1e6
    );
}

/// The files `ps aux` reads for every process (procps 4: stat, status,
/// cmdline), and the global ones it reads once.
const PS_FILES: &[PidFile] = &[PidFile::Stat, PidFile::Status, PidFile::Cmdline];

fn bench_procs() {
    println!("10^4 processes:");
    let mut k = boot(16 << 30);
    let t = cpu_now();
    for i in 0..10_000 {
        spawn(&mut k, &format!("p{}", i % 100));
    }
    let s = cpu_now() - t;
    println!(
        "  spawn ×10^4:  {:7.1} ms, {:.2} µs each",
        s * 1e3,
        s / 1e4 * 1e6
    );
    let pids = k.pids();
    let t = cpu_now();
    let mut bytes = 0;
    for global in [GlobalFile::Meminfo, GlobalFile::Uptime, GlobalFile::Stat] {
        bytes += render_global(&k, global).len();
    }
    for &pid in &pids {
        for &file in PS_FILES {
            bytes += render_pid(&k, pid, file).map_or(0, |t| t.len());
        }
    }
    let s = cpu_now() - t;
    println!(
        "  ps aux's files, core renderers: {:7.1} ms for {} pids ({} KiB)   (target < 1 s)",
        s * 1e3,
        pids.len(),
        bytes >> 10
    );
    drop(k);
    if !can_mount() {
        println!("  under mmfs exec: skipped (needs root and /dev/fuse)");
        return;
    }
    let m = Mount::with_args(&["--mem", "16G"]);
    let plan: String = (0..10_000)
        .map(|i| format!("spawn p{}\n", i % 100))
        .collect();
    m.write("ctl", &plan).expect("spawn 10^4");
    let pids: Vec<u32> = std::fs::read_dir(&m.dir)
        .expect("list the mount")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    ps_pattern_floor(&m, &pids);
    ps_under_exec(&m);
}

/// The files procps 4's `ps aux` opens in every /proc/PID, in its order:
/// `ctty` is not a Linux file (ENOENT, on the real /proc too).
const PS_NAMES: &[&str] = &["stat", "status", "environ", "cmdline", "ctty"];

/// Wall time of `ps aux`'s reading pattern over `dirs` (directories below
/// `root`): open, read to EOF and close each of [`PS_NAMES`] that exists.
/// Returns seconds and the files read.
///
/// The files are opened relative to their directory (as under `exec`,
/// where /proc/PID is the mount's PID directory bound there), so the walk
/// does not cross the mount's root for each file.
fn ps_pattern(root: &Path, dirs: &[String]) -> (f64, usize) {
    use std::os::fd::{AsRawFd, FromRawFd};
    let names: Vec<std::ffi::CString> = PS_NAMES
        .iter()
        .map(|n| std::ffi::CString::new(*n).expect("no NUL"))
        .collect();
    let mut buf = Vec::with_capacity(4096);
    let mut files = 0;
    let t = Instant::now();
    for dir in dirs {
        let Ok(d) = std::fs::File::open(root.join(dir)) else {
            continue;
        };
        for name in &names {
            // SAFETY: a valid directory descriptor and C string.
            let fd = unsafe { libc::openat(d.as_raw_fd(), name.as_ptr(), libc::O_RDONLY) };
            if fd < 0 {
                continue;
            }
            // SAFETY: fd was just opened and is owned by the File.
            let mut f = unsafe { std::fs::File::from_raw_fd(fd) };
            buf.clear();
            let _ = f.read_to_end(&mut buf);
            files += 1;
        }
    }
    (t.elapsed().as_secs_f64(), files)
}

/// The same pattern on this host's /proc, the minimal fuser file system
/// and the mount itself (no exec), so the FUSE cost per file shows beside
/// what mmfs adds to it.
fn ps_pattern_floor(m: &Mount, pids: &[u32]) {
    let n = pids.len();
    println!(
        "  ps aux's reading pattern (open+read to EOF+close of stat, status, environ, cmdline; ctty absent) over {n} directories, wall clock:"
    );
    // The host has few processes: its pids, round and round.
    let host: Vec<String> = std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.parse::<u32>().ok().map(|_| name)
        })
        .collect();
    let host_dirs: Vec<String> = host.iter().cycle().take(n).cloned().collect();
    let (s, files) = ps_pattern(Path::new("/proc"), &host_dirs);
    let show = |label: &str, s: f64, files: usize| {
        println!(
            "    {label:44} {:7.1} ms  {:6.1} µs a directory, {:5.1} µs a file",
            s * 1e3,
            s * 1e6 / n as f64,
            s * 1e6 / files.max(1) as f64
        );
    };
    show(
        &format!("real /proc of this host ({} pids cycled)", host.len()),
        s,
        files,
    );
    let text = m.read(&format!("{}/status", pids[pids.len() / 2]));
    let ours: Vec<String> = pids.iter().map(u32::to_string).collect();
    match FloorMount::grid(
        n as u64,
        &["stat", "status", "environ", "cmdline"],
        text.into_bytes(),
        Duration::from_secs(60),
    ) {
        Ok(floor) => {
            // Interleaved, best of two warm passes each: the machine is shared.
            let dirs: Vec<String> = (1..=n).map(|d| d.to_string()).collect();
            let (cold, files) = ps_pattern(floor.dir(), &dirs);
            show("minimal fuser fs, first pass (look-ups)", cold, files);
            let (cold, files) = ps_pattern(&m.dir, &ours);
            show("mmfs mount, first pass (look-ups)", cold, files);
            let (mut floor_warm, mut ours_warm) = ((f64::MAX, 0), (f64::MAX, 0));
            for _ in 0..2 {
                let f = ps_pattern(floor.dir(), &dirs);
                floor_warm = if f.0 < floor_warm.0 { f } else { floor_warm };
                let o = ps_pattern(&m.dir, &ours);
                ours_warm = if o.0 < ours_warm.0 { o } else { ours_warm };
            }
            show(
                "minimal fuser fs, entries cached",
                floor_warm.0,
                floor_warm.1,
            );
            show("mmfs mount, entries cached", ours_warm.0, ours_warm.1);
            println!(
                "    mmfs/minimal, entries cached: ×{:.2}; FUSE's share over the real /proc: {:.1} µs a file",
                ours_warm.0 / floor_warm.0,
                (floor_warm.0 / floor_warm.1.max(1) as f64 - s / files.max(1) as f64) * 1e6
            );
        }
        Err(e) => println!("    minimal fuser file system: cannot mount ({e})"),
    }
}

/// `ps aux` under `mmfs exec`: the whole command, the set-up and end of
/// the namespace alone (`true`), and `ps aux` timed inside (twice: the
/// second finds the entries cached).
fn ps_under_exec(m: &Mount) {
    let exec = |args: &[&str]| {
        let t = Instant::now();
        let out = m.exec(args);
        (t.elapsed().as_secs_f64(), out)
    };
    let (setup, out) = exec(&["true"]);
    println!(
        "  mmfs exec MNT -- true (set-up of 10^4 placeholders and the namespace's end): {:7.1} ms ({})",
        setup * 1e3,
        out.status
    );
    let (all, out) = exec(&["ps", "aux"]);
    let rows = String::from_utf8_lossy(&out.stdout).lines().count();
    println!(
        "  mmfs exec MNT -- ps aux: {:7.1} ms wall, {rows} rows ({})",
        all * 1e3,
        out.status
    );
    let (_, out) = exec(&[
        "bash",
        "-c",
        "TIMEFORMAT=%R; time ps aux >/dev/null; time ps aux >/dev/null",
    ]);
    let times: Vec<f64> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    for (label, s) in ["ps aux inside exec", "again (entries cached)"]
        .iter()
        .zip(&times)
    {
        println!("  {label:24} {:7.1} ms   (target < 1 s)", s * 1e3);
    }
}
