//! Tracing benchmarks (harness = false): prints numbers beside the
//! targets of issue 17, asserts none.
//!
//! - `touch 4G` fault rate with tracing off, and with one event on
//!   (exceptions:page_fault_user): the off number is the one to hold
//!   within 5 % of the same benchmark without tracepoints (`cargo bench
//!   --bench process` on a tree without them: its `touch 4G` line is the
//!   same workload);
//! - an order-0 alloc+free pair through `Kernel::alloc_pages` /
//!   `free_pages` (both carry a tracepoint) with tracing off and on;
//! - events recorded per second with one event on (target ≥ 5 M/s);
//! - `trace_pipe` drained through a real mount with reads of 1 MiB
//!   (target ≥ 100 MB/s; needs root and /dev/fuse, skipped otherwise).
//!
//! Run with `cargo bench --bench trace`. Core times are CPU time of the
//! benchmark thread (the machine is shared); the mount drain is wall time.

mod common;

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use common::cpu_now;
use mmfs::ctl::{Machine, Scope};
use mmfs::mm::MachineConfig;
use mmfs::mm::page_alloc::PageKind;
use mmfs::mm::types::{Arch, Order, Pfn, Pid};
use mmfs::procfs::trace::TraceFile;

fn boot(mem: u64) -> Machine {
    Machine::boot(MachineConfig {
        arch: Arch::X86_64,
        mem_bytes: mem,
    })
    .expect("boot")
}

fn run(k: &mut Machine, pid: Pid, line: &str) {
    k.execute_line(Scope::Process(pid), line)
        .unwrap_or_else(|e| panic!("{line}: {e}"));
}

/// Best `touch 4G` time (s) over 3 warm rounds on an 8 GiB machine.
fn touch_rate(events: &str) -> (f64, u64) {
    let mut k = boot(8 << 30);
    if !events.is_empty() {
        k.write_trace(TraceFile::BufferSizeKb, "65536").unwrap();
        k.write_trace(TraceFile::SetEvent, events).unwrap();
    }
    k.execute_line(Scope::System, "spawn bench").unwrap();
    let pid = Pid(k.ns_last_pid);
    let mut best = f64::MAX;
    for _ in 0..4 {
        run(&mut k, pid, "mmap 4G name=big");
        let t = cpu_now();
        run(&mut k, pid, "touch big 4G");
        best = best.min(cpu_now() - t);
        run(&mut k, pid, "munmap big 4G");
    }
    (best, k.kernel.trace.counts().1)
}

/// ns per alloc+free pair through the Kernel's traced entry points.
fn alloc_free(events: &str) -> f64 {
    let mut k = boot(1 << 30);
    if !events.is_empty() {
        k.write_trace(TraceFile::SetEvent, events).unwrap();
    }
    let zone = k.kernel_zone();
    let n = 2_000_000u32;
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = cpu_now();
        for _ in 0..n {
            let pfn = k
                .kernel
                .alloc_pages(Order(0), zone, PageKind::Kernel)
                .expect("a page");
            k.kernel
                .free_pages(std::hint::black_box(pfn), Order(0))
                .unwrap();
        }
        best = best.min((cpu_now() - t) * 1e9 / f64::from(n));
    }
    best
}

/// Events recorded per second by one enabled tracepoint in a tight loop.
fn record_rate() -> f64 {
    let mut k = boot(1 << 30);
    k.write_trace(TraceFile::SetEvent, "kmem:mm_page_free")
        .unwrap();
    let n = 10_000_000u64;
    let mut best = f64::MAX;
    for _ in 0..3 {
        let t = cpu_now();
        for i in 0..n {
            k.kernel.trace_mm_page_free(Pfn(i & 0xffff), Order(0));
        }
        best = best.min(cpu_now() - t);
    }
    n as f64 / best
}

/// Mount, fill the buffers with ~130 MB of text, drain trace_pipe.
fn drain_through_fuse() -> Option<(f64, u64)> {
    if !Path::new("/dev/fuse").exists() || unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let mmfs = env!("CARGO_BIN_EXE_mmfs");
    let dir = std::env::temp_dir().join(format!("mmfs-bench-trace-{}", std::process::id()));
    std::fs::create_dir_all(&dir).ok()?;
    let ok = Command::new(mmfs)
        .args(["mount", dir.to_str()?, "--mem", "8G"])
        .stdin(Stdio::null())
        .status()
        .ok()?
        .success();
    if !ok {
        return None;
    }
    let w = |rel: &str, text: &str| std::fs::write(dir.join(rel), text).expect(rel);
    w("tracing/buffer_size_kb", "65536\n");
    w(
        "tracing/set_event",
        "exceptions:page_fault_user kmem:mm_page_alloc\n",
    );
    w("ctl", "spawn filler\n");
    // pid 6 runs on CPU 0: its ring fills; 2G of faults write 1M events.
    w("6/ctl", "mmap 2G name=b\ntouch b 2G\n");
    let mut pipe = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(dir.join("tracing/trace_pipe"))
        .expect("open trace_pipe");
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    let t = Instant::now();
    loop {
        match pipe.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => total += n as u64,
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => break,
            Err(e) => panic!("read trace_pipe: {e}"),
        }
    }
    let secs = t.elapsed().as_secs_f64();
    drop(pipe);
    let _ = Command::new(mmfs).args(["umount", dir.to_str()?]).status();
    let _ = std::fs::remove_dir(&dir);
    Some((secs, total))
}

fn main() {
    let pages = (4u64 << 30) >> 12;
    let (off, _) = touch_rate("");
    let (on, events) = touch_rate("exceptions:page_fault_user");
    println!(
        "touch 4G, tracing off:          {:6.1} M faults/s  (hold within 5 % of `--bench process` touch 4G without tracepoints)",
        pages as f64 / off / 1e6
    );
    println!(
        "touch 4G, page_fault_user on:   {:6.1} M faults/s  ({:.1} M events recorded/s; {events} events)",
        pages as f64 / on / 1e6,
        pages as f64 / on / 1e6
    );
    let pair_off = alloc_free("");
    let pair_on = alloc_free("kmem:mm_page_alloc");
    println!("alloc+free order 0, off:        {pair_off:6.1} ns/pair");
    println!(
        "alloc+free order 0, page_alloc: {pair_on:6.1} ns/pair  ({:.1} M events/s)",
        1e3 / pair_on
    );
    println!(
        "record one event (mm_page_free): {:5.1} M events/s   (target >= 5 M/s)",
        record_rate() / 1e6
    );
    match drain_through_fuse() {
        Some((secs, bytes)) => println!(
            "trace_pipe drain through FUSE:  {:6.1} MB/s  ({:.1} MB in {:.2} s; target >= 100 MB/s)",
            bytes as f64 / secs / 1e6,
            bytes as f64 / 1e6,
            secs
        ),
        None => println!("trace_pipe drain through FUSE:  skipped (needs root and /dev/fuse)"),
    }
}
