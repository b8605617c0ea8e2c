//! Bounds of the core (no FUSE): over-long lines, huge writes, a million
//! tags, 10^5 spawns, a million VMAs, a million ticks. Each must end with a
//! clear error or graceful handling, and the test process's memory
//! (resident set, from /proc/self/statm) must stay bounded.
//!
//! These tests assert behaviour only, never speed: how long the same work
//! takes is measured by `benches/bounds.rs` (`cargo bench --bench bounds`),
//! so a busy machine cannot fail them. A watchdog aborts the process only
//! when no progress is made for ten minutes (a real hang).
//!
//! The tests share the process's resident-set measurement, so they run one
//! at a time (a global lock). Loop sizes are the issue's in release
//! builds (`cargo test --release`) and a tenth in debug builds.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mmfs::ctl::Machine;
use mmfs::ctl::{MAX_LINE, Scope};
use mmfs::fs::linebuf::LineBuffer;
use mmfs::mm::MachineConfig;
use mmfs::mm::types::Pid;
use mmfs::procfs::{GLOBAL_FILES, render_global, without_clock};

static SERIAL: Mutex<()> = Mutex::new(());

/// Resident set of this test process, in KiB.
fn rss_kb() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("read /proc/self/statm");
    let resident: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("statm resident field");
    // SAFETY: sysconf has no memory preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64;
    resident * page / 1024
}

/// `n` in release builds, `n / 10` in debug builds.
fn scaled(n: u64) -> u64 {
    if cfg!(debug_assertions) { n / 10 } else { n }
}

fn boot(mem: u64) -> Machine {
    let k = Machine::boot(MachineConfig {
        mem_bytes: mem,
        ..MachineConfig::default()
    })
    .expect("boot");
    k.check_invariants().expect("invariants after boot");
    k
}

fn errno<T>(r: Result<T, mmfs::mm::error::MmError>) -> i32 {
    r.err().map(|e| e.errno()).unwrap_or(0)
}

/// Every system file but dmesg and stat (which move with the clock).
fn state(k: &Machine) -> Vec<String> {
    GLOBAL_FILES
        .iter()
        .filter_map(|(_, _, f)| without_clock(*f, &render_global(k, *f)))
        .collect()
}

/// `prefix` padded with spaces to exactly `len` bytes.
fn padded(prefix: &str, len: usize) -> String {
    let mut s = prefix.to_string();
    s.extend(std::iter::repeat_n(' ', len.saturating_sub(prefix.len())));
    s
}

/// Free pages as the buddy lists count them (the vmstat and zoneinfo
/// event counters move with every allocation, so round trips compare this).
fn free_pages(k: &Machine) -> u64 {
    k.page_alloc.total_free()
}

/// Bytes of text the kernel log holds (without rendering it).
fn dmesg_bytes(k: &Machine) -> usize {
    k.dmesg.records().map(|r| r.text.len() + 1).sum()
}

/// Steps done by the running test, for the watchdog.
static PROGRESS: AtomicU64 = AtomicU64::new(0);

/// No progress for this long is a hang, not a slow machine.
const HANG: Duration = Duration::from_secs(600);

/// Note progress, and start the hang watchdog on first use: a thread that
/// aborts the process when [`PROGRESS`] has not moved for [`HANG`]. It
/// bounds nothing but a real hang; no operation has a time limit.
fn progress() {
    static WATCHDOG: std::sync::Once = std::sync::Once::new();
    WATCHDOG.call_once(|| {
        std::thread::spawn(|| {
            let mut last = PROGRESS.load(Ordering::Relaxed);
            let mut since = Instant::now();
            loop {
                std::thread::sleep(Duration::from_secs(1));
                let now = PROGRESS.load(Ordering::Relaxed);
                if now != last {
                    (last, since) = (now, Instant::now());
                } else if since.elapsed() > HANG {
                    eprintln!(
                        "bounds_core watchdog: no progress for {} s after step {now}: a hang",
                        HANG.as_secs()
                    );
                    std::process::abort();
                }
            }
        });
    });
    PROGRESS.fetch_add(1, Ordering::Relaxed);
}

/// Hold the serial lock (and note progress) for one test.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    let guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    progress();
    guard
}

#[test]
fn lines_over_4096_bytes_are_einval_and_change_nothing() {
    let _serial = serial();
    let mut k = boot(256 << 20);
    let before = state(&k);
    for len in [MAX_LINE + 1, 10_000, 1 << 20] {
        // A valid command padded past the limit: the limit wins.
        let line = padded("alloc_pages 0 tag=long", len);
        assert_eq!(line.len(), len);
        assert_eq!(
            errno(k.execute_line(Scope::System, &line)),
            libc::EINVAL,
            "{len}-byte line"
        );
        let long_tag = format!("alloc_pages 0 tag={}", "t".repeat(len));
        assert_eq!(
            errno(k.execute_line(Scope::System, &long_tag)),
            libc::EINVAL
        );
        // The same for a process's ctl, whether or not the pid exists.
        let pline = padded("mmap 4K", len);
        let e = errno(k.execute_line(Scope::Process(Pid(1)), &pline));
        assert!(
            e == libc::EINVAL || e == libc::ESRCH,
            "{len}-byte pid line: errno {e}"
        );
        k.check_invariants().unwrap();
        // The refusal is logged, but the quote stays short.
        let last = k.dmesg.last().unwrap_or("");
        assert!(
            last.len() < 1024,
            "dmesg quotes {} bytes of a rejected line",
            last.len()
        );
    }
    assert_eq!(state(&k), before, "a refused over-long line changed state");
    // Exactly at the limit is still a line.
    let free = free_pages(&k);
    let line = padded("alloc_pages 0 tag=edge", MAX_LINE);
    assert_eq!(errno(k.execute_line(Scope::System, &line)), 0);
    assert_eq!(free_pages(&k), free - 1);
    assert_eq!(
        errno(k.execute_line(Scope::System, "free_pages tag=edge")),
        0
    );
    assert_eq!(free_pages(&k), free);
}

/// SPEC §3: "A line longer than 4096 bytes is EINVAL" — comments and blank
/// lines included (the FUSE adapter enforces it for them; the core should
/// too, so every caller of `execute_line` gets the same answer).
#[test]
fn over_long_comment_and_blank_lines_are_einval() {
    let _serial = serial();
    let mut k = boot(64 << 20);
    let comment = format!("#{}", "c".repeat(MAX_LINE));
    let blank = " ".repeat(MAX_LINE + 1);
    assert_eq!(
        errno(k.execute_line(Scope::System, &comment)),
        libc::EINVAL,
        "over-long comment accepted"
    );
    assert_eq!(
        errno(k.execute_line(Scope::System, &blank)),
        libc::EINVAL,
        "over-long blank line accepted"
    );
}

/// A single write of over 1 MiB: one line with no newline is refused and
/// its bytes are not kept; a megabyte of short lines all run.
#[test]
fn one_write_over_a_megabyte() {
    let _serial = serial();
    let mut k = boot(256 << 20);
    let before = state(&k);
    let rss0 = rss_kb();
    let mut buf = LineBuffer::new();
    let huge = vec![b'x'; 2 << 20];
    let mut ran = Vec::new();
    for _ in 0..64 {
        let r = buf.feed(&huge, |line| {
            ran.push(line.len());
            k.execute_line(Scope::System, line)
                .map(|_| ())
                .map_err(|e| e.errno())
        });
        assert!(r == Err(libc::EINVAL) || r == Ok(()), "{r:?}");
    }
    assert!(
        ran.iter().all(|&n| n <= MAX_LINE + 1),
        "a line of {:?} bytes reached the kernel",
        ran.iter().max()
    );
    let r = buf.finish(|line| {
        k.execute_line(Scope::System, line)
            .map(|_| ())
            .map_err(|e| e.errno())
    });
    assert_eq!(r, Ok(()), "the discarded tail ran at close");
    assert_eq!(state(&k), before);
    // 1 MiB of valid lines in one write: every line runs.
    let free = free_pages(&k);
    let plan = "alloc_pages 0 tag=plan\n".repeat((1 << 20) / 23 + 1);
    let lines = plan.lines().count() as u64;
    let mut buf = LineBuffer::new();
    let r = buf.feed(plan.as_bytes(), |line| {
        progress();
        k.execute_line(Scope::System, std::str::from_utf8(line).unwrap())
            .map(|_| ())
            .map_err(|e| e.errno())
    });
    assert_eq!(r, Ok(()));
    let held = k.tags.pages.get("plan").len() as u64;
    assert_eq!(held, lines);
    k.execute_line(Scope::System, "free_pages tag=plan")
        .unwrap();
    k.check_invariants().unwrap();
    assert_eq!(free_pages(&k), free);
    let grown = rss_kb().saturating_sub(rss0);
    assert!(
        grown < 64 << 10,
        "RSS grew {grown} KiB over 128 MiB of writes"
    );
}

/// 10^6 distinct tags, through every tagged allocator: per-tag state must
/// go away with the last object, and failed lookups must not create any.
#[test]
fn a_million_distinct_tags_leave_no_state() {
    let _serial = serial();
    let n = scaled(1_000_000);
    let mut k = boot(256 << 20);
    // Warm up every allocator once, so lazily created caches are there.
    for line in [
        "alloc_pages 0 tag=w",
        "free_pages tag=w",
        "kmalloc 8 tag=w",
        "kfree tag=w",
    ] {
        k.execute_line(Scope::System, line).unwrap();
    }
    k.execute_line(Scope::System, "kmem_cache_create fz 64")
        .unwrap();
    k.execute_line(Scope::System, "kmem_cache_alloc fz tag=w")
        .unwrap();
    k.execute_line(Scope::System, "kmem_cache_free tag=w")
        .unwrap();
    let free = free_pages(&k);
    let rss0 = rss_kb();
    {
        for i in 0..n {
            progress();
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
            k.execute_line(Scope::System, &alloc).unwrap();
            k.execute_line(Scope::System, &free).unwrap();
            // Unknown tags: ENOENT, and no entry is created for them.
            let missing = format!("free_pages tag=n{i:x}");
            assert_eq!(errno(k.execute_line(Scope::System, &missing)), libc::ENOENT);
            let missing = format!("kfree tag=n{i:x}");
            assert_eq!(errno(k.execute_line(Scope::System, &missing)), libc::ENOENT);
        }
    }
    k.check_invariants().unwrap();
    assert!(
        k.tags.pages.is_empty(),
        "{} page tags left behind",
        k.tags.pages.len()
    );
    // Empty slabs may stay on the partial lists (SLUB's min_partial): allow
    // a few pages, not one per tag.
    let kept = free.saturating_sub(free_pages(&k));
    assert!(
        kept < 256,
        "{kept} pages not given back after {n} alloc/free pairs"
    );
    let grown = rss_kb().saturating_sub(rss0);
    eprintln!("RSS growth after {n} tags: {grown} KiB");
    assert!(
        grown < 32 << 10,
        "RSS grew {grown} KiB: per-tag state is kept"
    );
    // Many tags held at once cost host memory in proportion to the objects,
    // not more: 10^5 kmalloc-8 objects under distinct tags.
    let held = scaled(100_000);
    let rss1 = rss_kb();
    for i in 0..held {
        progress();
        k.execute_line(Scope::System, format!("kmalloc 8 tag=h{i:x}"))
            .unwrap();
    }
    let per_tag = (rss_kb().saturating_sub(rss1) * 1024) / held;
    eprintln!("host bytes per held tag: {per_tag}");
    assert!(
        per_tag < 1024,
        "{per_tag} host bytes per tagged 8-byte object"
    );
    for i in 0..held {
        progress();
        k.execute_line(Scope::System, format!("kfree tag=h{i:x}"))
            .unwrap();
    }
    k.check_invariants().unwrap();
}

/// 10^5 spawns: EAGAIN once pid_max (32768) is reached, or ENOMEM when
/// memory runs out first; every spawn answers (the loop runs to the end,
/// however long that takes on a busy machine), host memory and the kernel
/// log stay bounded, and killing them all gives the memory back.
#[test]
fn a_hundred_thousand_spawns() {
    let _serial = serial();
    let n = scaled(100_000);
    let mut k = boot(1 << 30);
    let before = state(&k);
    let rss0 = rss_kb();
    let mut errors = std::collections::BTreeMap::new();
    let mut done = 0;
    let mut stopped = "";
    for i in 0..n {
        progress();
        let e = errno(k.execute_line(Scope::System, format!("spawn p{i}")));
        *errors.entry(e).or_insert(0u64) += 1;
        done += 1;
        // Stop early rather than eat the test machine's memory when the
        // kernel does not bound itself (a behaviour bound, not a time one).
        if e == libc::EINVAL {
            break;
        }
        if i % 100 == 0 && (dmesg_bytes(&k) > 64 << 20 || rss_kb().saturating_sub(rss0) > 2 << 20) {
            stopped = "dmesg or the test's RSS grew without bound";
            break;
        }
    }
    let dmesg_bytes = dmesg_bytes(&k);
    eprintln!(
        "{done} spawns; dmesg {dmesg_bytes} bytes; RSS growth {} KiB",
        rss_kb().saturating_sub(rss0)
    );
    k.check_invariants().unwrap();
    eprintln!(
        "spawn outcomes (errno → count): {errors:?}, live {}",
        k.pids().len()
    );
    assert!(
        !errors.contains_key(&libc::EINVAL),
        "spawn is not implemented: {}",
        k.dmesg.last().unwrap_or("")
    );
    let live = k.pids().len() as u64;
    assert!(live > 0);
    // Every spawn ran, and the kernel log is bounded in bytes as Linux's
    // log_buf is (each OOM kill logs the task table).
    let mut broken = Vec::new();
    if done < n {
        broken.push(format!("only {done} of {n} spawns: {stopped}"));
    }
    if dmesg_bytes >= 16 << 20 {
        broken.push(format!(
            "dmesg holds {dmesg_bytes} bytes in {} records after a spawn storm",
            k.dmesg.records().count()
        ));
    }
    assert!(
        broken.is_empty(),
        "{} ({errors:?}, {} OOM kills)",
        broken.join("; "),
        k.events.oom_kill
    );
    if n >= 40_000 {
        // Memory or pid_max runs out: a clear errno, or the OOM killer
        // makes room as Linux's would.
        assert!(
            errors.contains_key(&libc::EAGAIN)
                || errors.contains_key(&libc::ENOMEM)
                || k.events.oom_kill > 0,
            "{n} spawns all succeeded without any limit ({errors:?})"
        );
    }
    assert!(live <= 32768, "{live} processes alive: more than pid_max");
    eprintln!(
        "RSS growth with {live} processes: {} KiB",
        rss_kb().saturating_sub(rss0)
    );
    for pid in k.user_pids() {
        progress();
        k.execute_line(Scope::System, format!("kill {pid}"))
            .unwrap();
    }
    k.check_invariants().unwrap();
    assert!(k.user_pids().is_empty());
    // The processes' memory is back (slab caches may keep some partial
    // slabs, so compare free memory in MemFree with some slack).
    let free = |s: &[String]| -> u64 {
        let meminfo = s
            .iter()
            .find(|t| t.starts_with("MemTotal:"))
            .expect("meminfo");
        meminfo
            .lines()
            .find(|l| l.starts_with("MemFree:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .expect("MemFree")
    };
    let lost = free(&before).saturating_sub(free(&state(&k)));
    assert!(
        lost < 16 << 10,
        "{lost} kB not given back after killing every process"
    );
}

/// A million VMAs in one process: Linux stops at vm.max_map_count (65530)
/// with ENOMEM; in any case it must not hang or blow up.
#[test]
fn a_million_vmas_in_one_process() {
    let _serial = serial();
    let n = scaled(1_000_000);
    let mut k = boot(1 << 30);
    k.execute_line(Scope::System, "spawn many")
        .expect("spawn (processes not implemented yet?)");
    let pid = *k.pids().last().expect("a process");
    let rss0 = rss_kb();
    let mut errors = std::collections::BTreeMap::new();
    let mut made = 0u64;
    {
        for i in 0..n {
            progress();
            // Alternate protections so neighbours cannot merge.
            let prot = if i % 2 == 0 { "r" } else { "rw" };
            let e = errno(k.execute_line(Scope::Process(pid), format!("mmap 4K prot={prot}")));
            *errors.entry(e).or_insert(0u64) += 1;
            if e == 0 {
                made += 1;
            } else if errors[&e] > 1000 {
                break;
            }
        }
    }
    k.check_invariants().unwrap();
    eprintln!(
        "mmap outcomes {errors:?}; {made} mappings; RSS growth {} KiB",
        rss_kb().saturating_sub(rss0)
    );
    if n >= 100_000 {
        assert!(
            made <= 65_530,
            "{made} mappings made: vm.max_map_count (65530) is not enforced"
        );
        assert!(errors.contains_key(&libc::ENOMEM), "{errors:?}");
    }
    let grown = rss_kb().saturating_sub(rss0);
    assert!(
        grown < 512 << 10,
        "RSS grew {grown} KiB for {made} mappings"
    );
    progress();
    k.execute_line(Scope::System, format!("kill {pid}"))
        .unwrap();
    k.check_invariants().unwrap();
}

/// `tick 1000000` works, idle or with full LRU lists (its speed is
/// measured by `benches/bounds.rs`), and `tick 1000001` is EINVAL.
#[test]
fn a_million_ticks() {
    let _serial = serial();
    let mut k = boot(256 << 20);
    for _ in 0..100 {
        progress();
        k.execute_line(Scope::System, "tick 1000000").unwrap();
    }
    k.check_invariants().unwrap();
    assert_eq!(
        errno(k.execute_line(Scope::System, "tick 1000001")),
        libc::EINVAL
    );
    // With the LRU full of anonymous pages and swap to age them into.
    if k.execute_line(Scope::System, "spawn busy").is_ok() {
        let pid = *k.pids().last().expect("a process");
        k.execute_line(Scope::System, "mkswap /dev/sdb 512M")
            .unwrap();
        k.execute_line(Scope::System, "swapon /dev/sdb").unwrap();
        k.execute_line(Scope::Process(pid), "mmap 300M name=big")
            .unwrap();
        progress();
        let r = k.execute_line(Scope::Process(pid), "touch big 300M");
        eprintln!("touch: {r:?}");
        k.check_invariants().unwrap();
        for _ in 0..10 {
            progress();
            k.execute_line(Scope::System, "tick 1000000").unwrap();
        }
        k.check_invariants().unwrap();
    }
}

/// The largest swap area mkswap(8) allows (2^32 − 1 pages, 16 TiB) on a
/// simulated device: swapon must either work with memory in proportion to
/// what is used or fail cleanly (ENOMEM/EINVAL), and swapoff must work.
/// The slot map is allocated chunk by chunk, so it costs little until
/// pages go there.
#[test]
fn largest_swap_device() {
    let _serial = serial();
    let mut k = boot(256 << 20);
    let rss0 = rss_kb();
    k.execute_line(Scope::System, "mkswap /dev/huge 17179869180K")
        .expect("mkswap 2^32-1 pages");
    progress();
    let r = k.execute_line(Scope::System, "swapon /dev/huge");
    eprintln!(
        "swapon: {r:?}; RSS growth {} KiB",
        rss_kb().saturating_sub(rss0)
    );
    k.check_invariants().unwrap();
    if r.is_ok() {
        assert!(
            rss_kb().saturating_sub(rss0) < 256 << 10,
            "swapon of an empty 16T area took RSS"
        );
        progress();
        k.execute_line(Scope::System, "swapoff /dev/huge").unwrap();
    } else {
        let e = errno(r);
        assert!(e == libc::ENOMEM || e == libc::EINVAL, "errno {e}");
    }
    k.check_invariants().unwrap();
}
