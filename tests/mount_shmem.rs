//! Shared anonymous memory (`mmap SIZE shared`, SPEC §9) through the
//! mount, driven by bash as a user would: maps, smaps, smaps_rollup,
//! status, statm and meminfo against the numbers this machine's real
//! Linux 6.18.44 kernel gave for the same steps
//! (tests/reference/linux-samples/shmem/shmem.c, its output shmem.out):
//! a 1M and a 256K `MAP_SHARED | MAP_ANONYMOUS` mapping, the 1M written
//! whole and 128K of the other, fork, the child writes both whole. Then
//! the pages go to swap under memory pressure and come back.

mod common;

use common::{Mount, stdout};

/// A `Key:   N kB` value of a smaps/status/meminfo-like text.
fn kb(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {text}"))
}

/// The smaps block of the mapping whose maps line ends with `name`.
/// The smaps block of the shmem object with inode `ino` (`00:01 INO
/// /dev/zero (deleted)`).
fn zero_block(smaps: &str, ino: u32) -> String {
    block(smaps, &format!("00:01 {ino:<27}/dev/zero (deleted)"))
}

fn block(smaps: &str, name: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for line in smaps.lines() {
        let header = line.split_whitespace().next().is_some_and(|w| {
            w.contains('-') && w.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
        });
        if header {
            inside = line.ends_with(name);
        }
        if inside {
            out.push_str(line);
            out.push('\n');
        }
    }
    assert!(!out.is_empty(), "no {name} in {smaps}");
    out
}

/// (Rss, Pss, Shared_Dirty, Private_Dirty) of a smaps block, kB.
fn rss_pss(b: &str) -> (u64, u64, u64, u64) {
    (
        kb(b, "Rss"),
        kb(b, "Pss"),
        kb(b, "Shared_Dirty"),
        kb(b, "Private_Dirty"),
    )
}

/// Run a bash script with `$M` the mount point; it must succeed.
fn sh(m: &Mount, script: &str) -> String {
    let out = m.bash(script);
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout(&out)
}

/// statm's shared column (pages).
fn statm_shared(m: &Mount, pid: u32) -> u64 {
    m.read(&format!("{pid}/statm"))
        .split_whitespace()
        .nth(2)
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn shared_anonymous_memory_as_the_real_kernel_shows_it() {
    let m = Mount::new();
    let parent = m.created("spawn shmem");
    let shmem0 = m.meminfo_kb("Shmem");
    let cached0 = m.meminfo_kb("Cached");
    let mapped0 = m.meminfo_kb("Mapped");
    let shared0 = statm_shared(&m, parent);
    sh(
        &m,
        &format!(
            "echo 'mmap 1M shared' > \"$M/{parent}/ctl\" && \
             echo 'mmap 256K shared' > \"$M/{parent}/ctl\""
        ),
    );
    // shmem.out "parent mapped": `/dev/zero (deleted)`, rw-s, device
    // 00:01, inode numbers in mmap order, the second mapping right below
    // the first (no 2M alignment), the name column padded as Linux pads.
    let maps = m.read(&format!("{parent}/maps"));
    let lines: Vec<&str> = maps.lines().filter(|l| l.contains("00:01")).collect();
    assert_eq!(lines.len(), 2, "{maps}");
    let tail = |l: &str| l.split_once(' ').unwrap().1.to_string();
    assert_eq!(
        tail(lines[0]),
        "rw-s 00000000 00:01 12                         /dev/zero (deleted)"
    );
    assert_eq!(
        tail(lines[1]),
        "rw-s 00000000 00:01 11                         /dev/zero (deleted)"
    );
    let range = |l: &str| {
        let (a, b) = l.split_once(' ').unwrap().0.split_once('-').unwrap();
        (
            u64::from_str_radix(a, 16).unwrap(),
            u64::from_str_radix(b, 16).unwrap(),
        )
    };
    let (small, big) = (range(lines[0]), range(lines[1]));
    assert_eq!((small.1 - small.0, big.1 - big.0), (256 << 10, 1 << 20));
    assert_eq!(small.1, big.0, "placed right below, as on the real kernel");
    // "parent written".
    sh(
        &m,
        &format!(
            "echo 'touch {:#x} 1M write' > \"$M/{parent}/ctl\" && \
             echo 'touch {:#x} 128K write' > \"$M/{parent}/ctl\"",
            big.0, small.0
        ),
    );
    let smaps = m.read(&format!("{parent}/smaps"));
    let b = zero_block(&smaps, 11);
    assert_eq!(rss_pss(&b), (1024, 1024, 0, 1024));
    assert_eq!((kb(&b, "Anonymous"), kb(&b, "Referenced")), (0, 1024));
    let s = zero_block(&smaps, 12);
    assert_eq!(rss_pss(&s), (128, 128, 0, 128));
    let status = m.read(&format!("{parent}/status"));
    assert_eq!(kb(&status, "RssShmem"), 1152);
    assert_eq!(statm_shared(&m, parent) - shared0, 288);
    let rollup = m.read(&format!("{parent}/smaps_rollup"));
    assert_eq!(kb(&rollup, "Pss_Shmem"), 1152);
    assert_eq!(m.meminfo_kb("Shmem") - shmem0, 1152);
    // Shmem is page cache: Cached and Mapped grow with it.
    assert_eq!(m.meminfo_kb("Cached") - cached0, 1152);
    assert_eq!(m.meminfo_kb("Mapped") - mapped0, 1152);

    // "child after-fork": nothing mapped yet (no page tables copied).
    let child = m.created(&format!("fork {parent}"));
    let smaps = m.read(&format!("{child}/smaps"));
    let b = zero_block(&smaps, 11);
    assert_eq!(rss_pss(&b), (0, 0, 0, 0));
    assert_eq!(kb(&m.read(&format!("{child}/status")), "RssShmem"), 0);
    // "child written": both write, nothing is copied; Pss halves.
    sh(
        &m,
        &format!(
            "echo 'touch {:#x} 1M write' > \"$M/{child}/ctl\" && \
             echo 'touch {:#x} 256K write' > \"$M/{child}/ctl\"",
            big.0, small.0
        ),
    );
    let smaps = m.read(&format!("{child}/smaps"));
    let b = zero_block(&smaps, 11);
    assert_eq!(rss_pss(&b), (1024, 512, 1024, 0));
    let s = zero_block(&smaps, 12);
    assert_eq!(rss_pss(&s), (256, 192, 128, 128));
    assert_eq!(kb(&m.read(&format!("{child}/status")), "RssShmem"), 1280);
    let smaps = m.read(&format!("{parent}/smaps"));
    let s = zero_block(&smaps, 12);
    assert_eq!(rss_pss(&s), (128, 64, 128, 0));
    // Shmem counts a page once however many map it.
    assert_eq!(m.meminfo_kb("Shmem") - shmem0, 1280);
    // "parent child-exited", "parent unmapped".
    m.ctl(&format!("kill {child}"));
    let smaps = m.read(&format!("{parent}/smaps"));
    let b = zero_block(&smaps, 11);
    assert_eq!(rss_pss(&b), (1024, 1024, 0, 1024));
    sh(
        &m,
        &format!("echo 'munmap {:#x} 1M' > \"$M/{parent}/ctl\"", big.0),
    );
    assert_eq!(m.meminfo_kb("Shmem") - shmem0, 256);
    // "parent unmapped": RssShmem 128 kB (the child's 128K more stay in
    // the object, mapped by nobody now).
    assert_eq!(kb(&m.read(&format!("{parent}/status")), "RssShmem"), 128);
    // Bad input: EINVAL and a dmesg line, nothing changed.
    let out = m.bash(&format!(
        "echo 'mmap 4K shared offset=4K' > \"$M/{parent}/ctl\""
    ));
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Invalid argument"),
        "{out:?}"
    );
    assert!(m.read("dmesg").contains("offset= needs file=PATH"));
}

#[test]
fn shared_memory_swaps_out_under_pressure_and_comes_back() {
    let m = Mount::with_args(&["--mem", "256M"]);
    m.ctl("mkswap /dev/sdb 512M");
    m.ctl("swapon /dev/sdb");
    let a = m.created("spawn a");
    sh(
        &m,
        &format!(
            "echo 'mmap 64M shared name=shm' > \"$M/{a}/ctl\" && \
             echo 'touch shm 64M write' > \"$M/{a}/ctl\""
        ),
    );
    let b = m.created(&format!("fork {a}"));
    sh(&m, &format!("echo 'touch shm 64M read' > \"$M/{b}/ctl\""));
    let shmem = m.meminfo_kb("Shmem");
    assert!(shmem >= 65536, "{shmem}");
    // Memory pressure: another process wants most of the machine. The
    // shared pages, young in both mappers, are activated at their first
    // scan (folio_check_references: two young PTEs); time ages them back
    // to the inactive list, their young bits cleared; the hog, using its
    // pages again, has them activated, and the pressure takes shared ones.
    let hog = m.created("spawn hog");
    sh(
        &m,
        &format!(
            "echo 'mmap 200M name=h' > \"$M/{hog}/ctl\" && \
             echo 'touch h 200M write' > \"$M/{hog}/ctl\""
        ),
    );
    m.ctl("tick 1000000");
    sh(&m, &format!("echo 'touch h 200M write' > \"$M/{hog}/ctl\""));
    // Some shared pages went to swap, from both mappers at once: each
    // one's Swap in smaps is the object's swapped pages in its range.
    let sa = block(&m.read(&format!("{a}/smaps")), "[anon_shmem:shm]");
    let sb = block(&m.read(&format!("{b}/smaps")), "[anon_shmem:shm]");
    let swapped = kb(&sa, "Swap");
    assert!(swapped > 0, "{sa}");
    assert_eq!(kb(&sb, "Swap"), swapped);
    assert_eq!(kb(&sa, "Rss") + swapped, 65536);
    assert_eq!(kb(&sb, "Rss") + swapped, 65536);
    assert!(m.meminfo_kb("Shmem") < shmem);
    // shmem on swap is no swap PTE: VmSwap leaves it out.
    assert!(kb(&m.read(&format!("{a}/status")), "VmSwap") < swapped);
    // The hog goes; a reads it all back (major faults for what left the
    // swap cache), and b finds it in the shared index.
    m.ctl(&format!("kill {hog}"));
    sh(&m, &format!("echo 'touch shm 64M read' > \"$M/{a}/ctl\""));
    let sa = block(&m.read(&format!("{a}/smaps")), "[anon_shmem:shm]");
    assert_eq!((kb(&sa, "Rss"), kb(&sa, "Swap")), (65536, 0));
    let sb = block(&m.read(&format!("{b}/smaps")), "[anon_shmem:shm]");
    assert_eq!(kb(&sb, "Swap"), 0);
    assert!(m.meminfo_kb("Shmem") >= 65536);
    // swapoff finds nothing of the object left on the device.
    m.ctl("swapoff /dev/sdb");
    // Both go: the object and its pages with the last mapping.
    m.ctl(&format!("kill {a}"));
    assert!(m.meminfo_kb("Shmem") >= 65536, "b still maps it");
    m.ctl(&format!("kill {b}"));
    assert!(m.meminfo_kb("Shmem") < 1024);
}
