//! Bounds benchmarks (harness = false): how long the work of
//! `tests/bounds_core.rs` takes, beside the wall-clock limits that test
//! used to assert (issue 10, item 7: tests never time themselves).
//!
//! Nothing here fails on a slow machine: each line prints the CPU time of
//! this thread (what the code costs, whatever else the machine runs), the
//! wall-clock time, and the old limit as a target.
//!
//! Run with `cargo bench --bench bounds`.

mod common;

use std::time::Instant;

use common::{boot, cpu_now, sys};
use mmfs::ctl::Scope;
use mmfs::fs::linebuf::LineBuffer;

/// Run `f`, print its CPU and wall time beside `target_secs`, return its value.
fn measure<T>(what: &str, target_secs: f64, f: impl FnOnce() -> T) -> T {
    let (cpu, wall) = (cpu_now(), Instant::now());
    let out = f();
    let (cpu, wall) = (cpu_now() - cpu, wall.elapsed().as_secs_f64());
    println!(
        "{what:34} cpu {cpu:8.2}s   wall {wall:8.2}s   (target < {target_secs}s){}",
        if cpu < target_secs {
            ""
        } else {
            "  ** over target **"
        }
    );
    out
}

/// One write of 1 MiB of short lines through the line buffer.
fn megabyte_plan() {
    let mut k = boot(256 << 20);
    let plan = "alloc_pages 0 tag=plan\n".repeat((1 << 20) / 23 + 1);
    let mut buf = LineBuffer::new();
    let r = measure("1 MiB plan in one write", 10.0, || {
        buf.feed(plan.as_bytes(), |line| {
            k.execute_line(Scope::System, line)
                .map(|_| ())
                .map_err(|e| e.errno())
        })
    });
    assert_eq!(r, Ok(()));
}

/// 10^6 distinct tags through the three tagged allocators.
fn a_million_tags() {
    let mut k = boot(256 << 20);
    sys(&mut k, "kmem_cache_create fz 64");
    measure("10^6 distinct tags", 60.0, || {
        for i in 0..1_000_000u64 {
            let tag = format!("t{i:x}");
            let (alloc, free) = match i % 3 {
                0 => (
                    format!("alloc_pages 0 tag={tag}"),
                    format!("free_pages tag={tag}"),
                ),
                1 => (format!("kmalloc 32 tag={tag}"), format!("kfree tag={tag}")),
                _ => (
                    format!("kmem_cache_alloc fz tag={tag}"),
                    format!("kmem_cache_free tag={tag}"),
                ),
            };
            sys(&mut k, &alloc);
            sys(&mut k, &free);
            let _ = k.execute_line(Scope::System, format!("free_pages tag=n{i:x}"));
            let _ = k.execute_line(Scope::System, format!("kfree tag=n{i:x}"));
        }
    });
}

/// 10^5 spawns on a 1G machine, then kill them all.
fn a_hundred_thousand_spawns() {
    let mut k = boot(1 << 30);
    let ok = measure("10^5 spawns", 60.0, || {
        let mut ok = 0u64;
        for i in 0..100_000 {
            if k.execute_line(Scope::System, format!("spawn p{i}")).is_ok() {
                ok += 1;
            }
        }
        ok
    });
    println!("{:34} {ok} succeeded, {} alive", "", k.pids().len());
    measure("kill them all", 30.0, || {
        for pid in k.pids() {
            sys(&mut k, &format!("kill {pid}"));
        }
    });
}

/// 10^6 `mmap 4K` in one process (stops at vm.max_map_count).
fn a_million_vmas() {
    let mut k = boot(1 << 30);
    sys(&mut k, "spawn many");
    let pid = *k.pids().last().expect("a process");
    let mut refused = 0u64;
    measure("10^6 mmaps (until 1000 refusals)", 120.0, || {
        for i in 0..1_000_000u64 {
            let prot = if i % 2 == 0 { "r" } else { "rw" };
            let line = format!("mmap 4K prot={prot}");
            if k.execute_line(Scope::Process(pid), &line).is_err() {
                refused += 1;
                if refused > 1000 {
                    break;
                }
            }
        }
    });
    measure("kill the process", 30.0, || {
        sys(&mut k, &format!("kill {pid}"))
    });
}

/// `tick 1000000`, idle and with the LRU full.
fn a_million_ticks() {
    let mut k = boot(256 << 20);
    measure("100 × tick 1000000 (idle)", 5.0, || {
        for _ in 0..100 {
            sys(&mut k, "tick 1000000");
        }
    });
    sys(&mut k, "spawn busy");
    let pid = *k.pids().last().expect("a process");
    sys(&mut k, "mkswap /dev/sdb 512M");
    sys(&mut k, "swapon /dev/sdb");
    k.execute_line(Scope::Process(pid), "mmap 300M name=big")
        .expect("mmap 300M");
    let r = measure("touch 300M on a 256M machine", 30.0, || {
        k.execute_line(Scope::Process(pid), "touch big 300M")
    });
    if let Err(e) = r {
        println!("{:34} touch: {e}", "");
    }
    measure("10 × tick 1000000 (busy)", 10.0, || {
        for _ in 0..10 {
            sys(&mut k, "tick 1000000");
        }
    });
}

/// swapon and swapoff of the largest area mkswap(8) allows.
fn largest_swap_device() {
    let mut k = boot(256 << 20);
    sys(&mut k, "mkswap /dev/huge 17179869180K");
    let r = measure("swapon 16T", 10.0, || {
        k.execute_line(Scope::System, "swapon /dev/huge")
    });
    if r.is_ok() {
        measure("swapoff 16T", 10.0, || sys(&mut k, "swapoff /dev/huge"));
    } else {
        println!("{:34} swapon refused: {r:?}", "");
    }
}

fn main() {
    // `cargo bench` passes `--bench`; a name filter picks one group.
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let groups: [(&str, fn()); 6] = [
        ("plan", megabyte_plan),
        ("tags", a_million_tags),
        ("spawns", a_hundred_thousand_spawns),
        ("vmas", a_million_vmas),
        ("ticks", a_million_ticks),
        ("swap", largest_swap_device),
    ];
    for (name, run) in groups {
        if filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str())) {
            run();
        }
    }
}
