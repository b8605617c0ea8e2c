//! Benchmarks (numbers printed, never asserted):
//!
//! 1. an order-0 alloc+free pair through `PageAllocator::alloc/free`;
//! 2. boot time and host RSS growth for `--mem` 1G, 64G and 256G;
//! 3. open+read+close of `MOUNT/buddyinfo` against the constant
//!    `MOUNT/version` on a real mount (needs root and /dev/fuse).
//!
//! Run: `cargo bench --bench mmfs` (a plain binary, `harness = false`).

use std::hint::black_box;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mmfs::ctl::Machine;
use mmfs::mm::MachineConfig;
use mmfs::mm::page_alloc::{PageKind, WatermarkLevel};
use mmfs::mm::types::{Arch, Order, PAGE_SIZE};

/// Resident set size of this process in bytes (/proc/self/statm field 2).
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64;
    pages * page
}

fn bench_alloc_free() {
    let mut kernel = Machine::boot(MachineConfig::default()).expect("boot 1G");
    let highest = kernel.kernel_zone().0;
    let pa = &mut kernel.page_alloc;
    let pair = |pa: &mut mmfs::mm::page_alloc::PageAllocator| {
        let pfn = pa
            .get_page_from_freelist(Order(0), highest, WatermarkLevel::Low, PageKind::Kernel)
            .expect("a free page");
        pa.free(black_box(pfn), Order(0)).expect("free");
    };
    for _ in 0..100_000 {
        pair(pa);
    }
    let mut best = f64::MAX;
    let n = 2_000_000u32;
    for _ in 0..5 {
        let start = Instant::now();
        for _ in 0..n {
            pair(pa);
        }
        best = best.min(start.elapsed().as_nanos() as f64 / f64::from(n));
    }
    // With a few pages held, the freed page's buddy is busy and the pair no
    // longer splits and merges all the way to order 10 each time.
    let held: Vec<_> = (0..1)
        .filter_map(|_| {
            pa.get_page_from_freelist(Order(0), highest, WatermarkLevel::Low, PageKind::Kernel)
        })
        .collect();
    let mut steady = f64::MAX;
    for _ in 0..5 {
        let start = Instant::now();
        for _ in 0..n {
            pair(pa);
        }
        steady = steady.min(start.elapsed().as_nanos() as f64 / f64::from(n));
    }
    for pfn in held {
        let _ = pa.free(pfn, Order(0));
    }
    println!("order-0 alloc+free pair (1G x86_64):");
    println!("  from a fully merged zone (split/merge 10 levels): {best:8.1} ns/op");
    println!("  with its buddy held (no merge):                   {steady:8.1} ns/op");
}

fn bench_boot() {
    println!("boot (Kernel::boot) and host memory:");
    for (label, mem) in [("1G", 1u64 << 30), ("64G", 64 << 30), ("256G", 256 << 30)] {
        let before = rss_bytes();
        let start = Instant::now();
        let kernel = Machine::boot(MachineConfig {
            arch: Arch::X86_64,
            mem_bytes: mem,
        })
        .expect("boot");
        let elapsed = start.elapsed();
        let after = rss_bytes();
        let pages = mem / PAGE_SIZE;
        let delta = after.saturating_sub(before);
        println!(
            "  --mem {label:>4}: {:8.1} ms, RSS +{:7.1} MiB = {:5.2} B per simulated page",
            elapsed.as_secs_f64() * 1e3,
            delta as f64 / (1 << 20) as f64,
            delta as f64 / pages as f64
        );
        drop(black_box(kernel));
    }
}

/// A temporary mount of the release binary, unmounted on drop.
struct BenchMount {
    base: PathBuf,
    dir: PathBuf,
}

impl BenchMount {
    fn new() -> Result<BenchMount, String> {
        if !Path::new("/dev/fuse").exists() {
            return Err("no /dev/fuse".into());
        }
        let base = std::env::temp_dir().join(format!("mmfs-bench-{}", std::process::id()));
        let dir = base.join("mnt");
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let out = Command::new(env!("CARGO_BIN_EXE_mmfs"))
            .arg("mount")
            .arg(&dir)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            let _ = std::fs::remove_dir_all(&base);
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        Ok(BenchMount { base, dir })
    }
}

impl Drop for BenchMount {
    fn drop(&mut self) {
        let _ = Command::new(env!("CARGO_BIN_EXE_mmfs"))
            .arg("umount")
            .arg(&self.dir)
            .output();
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

/// Mean µs of open+read-to-EOF+close over `n` rounds.
fn time_reads(path: &Path, n: u32, buf: &mut Vec<u8>) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        buf.clear();
        let mut f = std::fs::File::open(path).expect("open");
        f.read_to_end(buf).expect("read");
        black_box(&buf);
    }
    start.elapsed().as_secs_f64() * 1e6 / f64::from(n)
}

fn bench_mount() {
    println!("open+read+close on a real mount (1G x86_64):");
    let mount = match BenchMount::new() {
        Ok(m) => m,
        Err(e) => {
            println!("  not measured: cannot mount ({e})");
            return;
        }
    };
    let buddy = mount.dir.join("buddyinfo");
    let version = mount.dir.join("version");
    let mut buf = Vec::with_capacity(64 << 10);
    let sizes = (
        std::fs::read(&buddy).map(|v| v.len()).unwrap_or(0),
        std::fs::read(&version).map(|v| v.len()).unwrap_or(0),
    );
    // Warm up, then interleave rounds so drift hits both alike; keep the best.
    time_reads(&buddy, 2000, &mut buf);
    time_reads(&version, 2000, &mut buf);
    let (mut b, mut v) = (f64::MAX, f64::MAX);
    let deadline = Instant::now() + Duration::from_secs(20);
    for _ in 0..8 {
        b = b.min(time_reads(&buddy, 3000, &mut buf));
        v = v.min(time_reads(&version, 3000, &mut buf));
        if Instant::now() > deadline {
            break;
        }
    }
    println!("  buddyinfo ({:4} B): {b:7.2} µs/op", sizes.0);
    println!("  version   ({:4} B): {v:7.2} µs/op", sizes.1);
    println!("  ratio buddyinfo/version: {:.3}", b / v);
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing
    // useful either: both run everything.
    bench_alloc_free();
    bench_boot();
    bench_mount();
}
