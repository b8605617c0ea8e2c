//! Process benchmarks (harness = false): prints numbers against the
//! targets of issue 4.
//!
//! - `touch` of 4 GiB in one command: ≥ 20 M faults/s
//! - munmap: ≤ 20 ns a page
//! - maps + smaps of a process with 10,000 VMAs: ≤ 5 ms
//!
//! Run with `cargo bench --bench process`. Times are CPU time of the
//! benchmark thread (the machine is shared).

mod common;

use common::{Cpu, best_of, boot, run, spawn};
use mmfs::procfs::pid::{PidFile, render_pid};

fn main() {
    const GIB4: u64 = 4 << 30;
    let pages = GIB4 >> 12;

    // touch 4G, then munmap it, on an 8 GiB machine. The first round of a
    // fresh boot also pays the host's first touch of the simulator's own
    // frame array and page-table arena ("cold"); later rounds reuse them.
    let mut k = boot(8 << 30);
    let pid = spawn(&mut k, "bench");
    let mut rounds = Vec::new();
    for _ in 0..4 {
        run(&mut k, pid, "mmap 4G name=big");
        let faults = k.events.pgfault;
        let t = Cpu::start();
        run(&mut k, pid, "touch big 4G");
        let touch = t.elapsed();
        assert_eq!(k.events.pgfault - faults, pages);
        let t = Cpu::start();
        run(&mut k, pid, "munmap big 4G");
        rounds.push((touch, t.elapsed()));
    }
    let (cold_touch, cold_munmap) = rounds[0];
    let touch_s = rounds[1..].iter().map(|r| r.0).fold(f64::MAX, f64::min);
    let munmap_s = rounds[1..].iter().map(|r| r.1).fold(f64::MAX, f64::min);
    println!(
        "touch 4G:      {:8.1} ms  {:6.1} M faults/s   (target >= 20 M/s; cold boot {:.1} M/s)",
        touch_s * 1e3,
        pages as f64 / touch_s / 1e6,
        pages as f64 / cold_touch / 1e6
    );
    println!(
        "munmap 4G:     {:8.1} ms  {:6.1} ns/page      (target <= 20 ns; cold boot {:.1} ns)",
        munmap_s * 1e3,
        munmap_s * 1e9 / pages as f64,
        cold_munmap * 1e9 / pages as f64
    );

    // Read faults: the zero page.
    let (read_s, _) = best_of(3, || {
        let mut k = boot(2 << 30);
        let pid = spawn(&mut k, "bench");
        run(&mut k, pid, "mmap 1G name=big");
        let t = Cpu::start();
        run(&mut k, pid, "touch big 1G read");
        (t.elapsed(), ())
    });
    println!(
        "touch 1G read: {:8.1} ms  {:6.1} M faults/s   (zero page)",
        read_s * 1e3,
        (1u64 << 18) as f64 / read_s / 1e6
    );

    // 10,000 VMAs: alternate protections so that neighbours never merge;
    // each gets one touched page.
    let mut k = boot(2 << 30);
    let pid = spawn(&mut k, "bench");
    let t = Cpu::start();
    for i in 0..10_000u64 {
        let prot = if i % 2 == 0 { "rw" } else { "r" };
        run(
            &mut k,
            pid,
            &format!("mmap 16K prot={prot} addr={:#x}", 0x1000_0000 + i * 16384),
        );
        run(
            &mut k,
            pid,
            &format!("touch {:#x} 4K read", 0x1000_0000 + i * 16384),
        );
    }
    let setup = t.elapsed();
    let (render_s, bytes) = best_of(20, || {
        let t = Cpu::start();
        let maps = render_pid(&k, pid, PidFile::Maps).expect("maps");
        let smaps = render_pid(&k, pid, PidFile::Smaps).expect("smaps");
        (t.elapsed(), maps.len() + smaps.len())
    });
    println!(
        "maps+smaps:    {:8.2} ms  for 10,000 VMAs, {} KiB (target <= 5 ms; setup {:.0} ms)",
        render_s * 1e3,
        bytes >> 10,
        setup * 1e3
    );
    let (status_s, _) = best_of(20, || {
        let t = Cpu::start();
        let s = render_pid(&k, pid, PidFile::Status).expect("status");
        (t.elapsed(), s.len())
    });
    println!("status:        {:8.3} ms", status_s * 1e3);
}
