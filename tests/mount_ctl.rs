//! Control files and tunables through a real mount: errno texts as bash
//! prints them, plans through `cat`, lines split over writes, partial lines
//! at close, concurrent readers and writers.

mod common;

use std::io::{Read, Write};
use std::sync::{Arc, Barrier};

use common::{Mount, Scratch, buddy_free_pages, close, stderr};

/// Run `echo LINE > $M/ctl` through bash; returns bash's stderr.
fn echo_ctl(m: &Mount, line: &str) -> (bool, String) {
    let out = m.bash(&format!("echo '{line}' > $M/ctl"));
    (out.status.success(), stderr(&out))
}

#[test]
fn good_and_bad_lines_through_bash() {
    let m = Mount::new();
    let boot = m.read("buddyinfo");
    let (ok, err) = echo_ctl(&m, "alloc_pages 3 count=10 tag=x");
    assert!(ok, "{err}");
    assert_eq!(
        buddy_free_pages(&m.read("buddyinfo")),
        buddy_free_pages(&boot) - 80
    );
    let cases = [
        ("bogus", "Invalid argument"),
        ("alloc_pages eleven", "Invalid argument"),
        ("alloc_pages 3 count=0x", "Invalid argument"),
        ("alloc_pages 10 count=100000", "Cannot allocate memory"),
        ("free_pages tag=nosuchtag", "No such file or directory"),
    ];
    for (line, want) in cases {
        let before = m.read("buddyinfo");
        let (ok, err) = echo_ctl(&m, line);
        assert!(!ok, "{line} succeeded");
        assert!(
            err.contains(&format!("write error: {want}")),
            "{line}: {err}"
        );
        if want == "Cannot allocate memory" {
            // What the command took came back; the reclaim it ran before
            // failing (the slab shrinker) may have freed more, as on Linux.
            assert!(
                buddy_free_pages(&m.read("buddyinfo")) >= buddy_free_pages(&before),
                "a failed {line} kept memory"
            );
        } else {
            assert_eq!(
                m.read("buddyinfo"),
                before,
                "a failed {line} changed memory"
            );
        }
        let dmesg = m.read("dmesg");
        let last = dmesg.lines().last().unwrap();
        assert!(
            last.contains(&format!("\"{line}\"")),
            "dmesg does not quote {line}: {last}"
        );
    }
    // Blank lines and comments are no-ops.
    let (ok, err) = echo_ctl(&m, "# just a comment");
    assert!(ok, "{err}");
    let out = m.bash("printf '\\n\\n   \\n' > $M/ctl");
    assert!(out.status.success(), "{}", stderr(&out));
    let (ok, err) = echo_ctl(&m, "free_pages tag=x");
    assert!(ok, "{err}");
    // Back to boot, plus whatever the failed alloc's reclaim freed (the
    // exact round trip is alloc_free_round_trip_restores_boot_buddyinfo).
    assert!(buddy_free_pages(&m.read("buddyinfo")) >= buddy_free_pages(&boot));
}

#[test]
fn alloc_free_round_trip_restores_boot_buddyinfo() {
    let m = Mount::new();
    let boot = m.read("buddyinfo");
    m.ctl("alloc_pages 3 count=10 tag=x");
    m.ctl("alloc_pages 0 count=33 tag=y");
    m.ctl("alloc_pages 10 count=2 zone=DMA32 tag=z");
    assert_ne!(m.read("buddyinfo"), boot);
    m.ctl("free_pages tag=y");
    m.ctl("free_pages tag=x count=4");
    m.ctl("free_pages tag=z");
    m.ctl("free_pages tag=x");
    assert_eq!(m.read("buddyinfo"), boot);
}

#[test]
fn a_plan_through_cat_spans_many_writes() {
    let m = Mount::new();
    let scratch = Scratch::new("plan");
    let boot = m.read("buddyinfo");
    // ~190 KB: more than one FUSE write, so lines are cut between writes.
    let n = 6000;
    let mut plan = String::from("# a plan: comments and blank lines are skipped\n\n");
    for i in 0..n {
        plan.push_str(&format!("alloc_pages 0 tag=plan count=1\n# page {i}\n"));
        if i % 1000 == 0 {
            plan.push_str("\n# checkpoint\ntick\n");
        }
    }
    assert!(plan.len() > 150_000);
    let path = scratch.path.join("plan.txt");
    std::fs::write(&path, &plan).unwrap();
    let out = m.bash(&format!("cat {} > $M/ctl", path.display()));
    assert!(out.status.success(), "{}", stderr(&out));
    let free = buddy_free_pages(&m.read("buddyinfo"));
    assert_eq!(
        free,
        buddy_free_pages(&boot) - n,
        "every line of the plan ran once"
    );
    m.ctl("free_pages tag=plan");
    assert_eq!(m.read("buddyinfo"), boot);

    // A failing line stops the plan there: lines before it stay done.
    let plan =
        "alloc_pages 0 tag=a\nalloc_pages 0 tag=a\nfree_pages tag=missing\nalloc_pages 0 tag=b\n";
    std::fs::write(&path, plan).unwrap();
    let out = m.bash(&format!("cat {} > $M/ctl", path.display()));
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("No such file or directory"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        buddy_free_pages(&m.read("buddyinfo")),
        buddy_free_pages(&boot) - 2
    );
    let err = m.write("ctl", "free_pages tag=b\n").unwrap_err();
    assert_eq!(
        err.raw_os_error(),
        Some(libc::ENOENT),
        "the line after the failure ran"
    );
    m.ctl("free_pages tag=a");
    assert_eq!(m.read("buddyinfo"), boot);
}

#[test]
fn a_line_split_over_two_writes() {
    let m = Mount::new();
    let boot = buddy_free_pages(&m.read("buddyinfo"));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(m.path("ctl"))
        .unwrap();
    // Two write() calls; the first ends mid-word.
    let first = b"tick\nalloc_pages 2 co";
    assert_eq!(file.write(first).unwrap(), first.len());
    assert_eq!(
        buddy_free_pages(&m.read("buddyinfo")),
        boot,
        "half a line ran"
    );
    let second = b"unt=3 tag=split\nalloc_pages 0 tag=split\n";
    assert_eq!(file.write(second).unwrap(), second.len());
    assert_eq!(buddy_free_pages(&m.read("buddyinfo")), boot - 13);
    // A partial line waits for close, whose result reports it.
    file.write_all(b"free_pages tag=split").unwrap();
    assert_eq!(buddy_free_pages(&m.read("buddyinfo")), boot - 13);
    close(file).unwrap();
    assert_eq!(buddy_free_pages(&m.read("buddyinfo")), boot);

    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(m.path("ctl"))
        .unwrap();
    file.write_all(b"bogus-at-close").unwrap();
    let err = close(file).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
    assert!(m.read("dmesg").contains("bogus-at-close"));
}

#[test]
fn a_child_closing_an_inherited_descriptor_leaves_the_partial_line() {
    // FUSE flushes on every close of a descriptor, also when a child that
    // inherited it execs or exits; only the writer's own close ends the
    // line. Here the children of the group hold stdout = ctl.
    let m = Mount::new();
    let out = m.bash(
        "{ printf 'alloc_pages 1 '; /bin/true; sh -c 'exit 0'; printf 'count=2 tag=fork\\n'; } > $M/ctl",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    m.ctl("free_pages tag=fork count=2");
}

#[test]
fn first_failing_line_fails_the_write() {
    let m = Mount::new();
    let err = m
        .write("ctl", "alloc_pages 0 tag=a\nbogus\nalloc_pages 0 tag=b\n")
        .unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
    m.ctl("free_pages tag=a");
    let err = m.write("ctl", "free_pages tag=b\n").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
}

#[test]
fn overlong_lines_are_einval() {
    let m = Mount::new();
    let long = "x".repeat(5000);
    let err = m.write("ctl", &format!("{long}\n")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
    // A partial line growing past 4096 bytes is refused without waiting.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(m.path("ctl"))
        .unwrap();
    file.write_all(&[b'y'; 3000]).unwrap();
    let err = file.write(&[b'y'; 3000]).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
    // The rest of that line is skipped; the next line runs.
    file.write_all(b"yyy\nalloc_pages 0 tag=after\n").unwrap();
    close(file).unwrap();
    m.ctl("free_pages tag=after");
    assert!(m.read("dmesg").contains("4096"));
    // The daemon is fine.
    assert!(m.read("buddyinfo").starts_with("Node 0"));
}

#[test]
fn garbage_never_kills_the_daemon() {
    let m = Mount::new();
    let junk: Vec<u8> = (0..20_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    for chunk in junk.chunks(1500) {
        let _ = m.write("ctl", &String::from_utf8_lossy(chunk));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(m.path("ctl"))
            .unwrap();
        let _ = f.write(chunk);
        let _ = close(f);
    }
    for line in [
        "alloc_pages 99",
        "alloc_pages 0 count=99999999999999999999",
        "tick 99999999999",
        "alloc_pages -1",
        "free_pages",
        "alloc_pages 0 zone=",
        "=",
        "alloc_pages 0 tag=",
    ] {
        let _ = m.write("ctl", &format!("{line}\n"));
    }
    let mut f = std::fs::File::open(m.path("buddyinfo")).unwrap();
    let mut buf = [0u8; 64];
    // Reads far past the end are empty, not errors.
    use std::os::unix::fs::FileExt;
    assert_eq!(f.read_at(&mut buf, 1 << 40).unwrap(), 0);
    assert!(f.read(&mut buf).unwrap() > 0);
    assert!(common::mounted(&m.dir));
    assert!(mmfs::fs::mount::process_alive(m.pid));
    assert!(m.read("buddyinfo").starts_with("Node 0"));
}

#[test]
fn sysctls_read_and_write() {
    let m = Mount::new();
    assert_eq!(m.read("sys/vm/swappiness"), "60\n");
    let out = m.bash("echo 100 > $M/sys/vm/swappiness && cat $M/sys/vm/swappiness");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(common::stdout(&out), "100\n");
    for (file, bad) in [
        ("swappiness", "201"),
        ("swappiness", "-1"),
        ("swappiness", "abc"),
        ("overcommit_memory", "3"),
        ("watermark_scale_factor", "0"),
        ("watermark_scale_factor", "3001"),
    ] {
        let before = m.read(&format!("sys/vm/{file}"));
        let out = m.bash(&format!("echo {bad} > $M/sys/vm/{file}"));
        assert!(
            stderr(&out).contains("write error: Invalid argument"),
            "{file}={bad}: {}",
            stderr(&out)
        );
        assert_eq!(m.read(&format!("sys/vm/{file}")), before);
    }
    // min_free_kbytes moves the watermarks zoneinfo shows.
    let before = m.read("zoneinfo");
    let out = m.bash("echo 20000 > $M/sys/vm/min_free_kbytes");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(m.read("sys/vm/min_free_kbytes"), "20000\n");
    assert_ne!(m.read("zoneinfo"), before, "watermarks did not move");
    let out = m.bash("truncate -s 0 $M/sys/vm/swappiness && : > $M/ctl");
    assert!(
        out.status.success(),
        "O_TRUNC on tunables and ctl: {}",
        stderr(&out)
    );
}

#[test]
fn readers_see_whole_snapshots_while_writers_run() {
    let m = Arc::new(Mount::new());
    let boot_text = m.read("buddyinfo");
    let boot = buddy_free_pages(&boot_text);
    let zones = boot_text.lines().count();
    let writers = 3;
    let rounds = 150;
    let block = 8; // pages per writer allocation (order 3)
    let barrier = Arc::new(Barrier::new(writers + 3));
    let mut threads = Vec::new();
    for w in 0..writers {
        let (m, barrier) = (m.clone(), barrier.clone());
        threads.push(std::thread::spawn(move || {
            barrier.wait();
            for _ in 0..rounds {
                m.ctl(&format!("alloc_pages 3 tag=w{w}"));
                m.ctl(&format!("free_pages tag=w{w}"));
            }
        }));
    }
    for _ in 0..3 {
        let (m, barrier) = (m.clone(), barrier.clone());
        threads.push(std::thread::spawn(move || {
            barrier.wait();
            for _ in 0..rounds {
                // Small reads: many FUSE reads at growing offsets of one open.
                let mut f = std::fs::File::open(m.path("buddyinfo")).unwrap();
                let mut text = Vec::new();
                let mut buf = [0u8; 16];
                loop {
                    let n = f.read(&mut buf).unwrap();
                    if n == 0 {
                        break;
                    }
                    text.extend_from_slice(&buf[..n]);
                }
                let text = String::from_utf8(text).unwrap();
                assert_eq!(text.lines().count(), zones, "torn read: {text}");
                for line in text.lines() {
                    assert!(line.starts_with("Node 0, zone "), "{line}");
                    assert_eq!(line.split_whitespace().count(), 4 + 11, "{line}");
                }
                let free = buddy_free_pages(&text);
                assert!(
                    free <= boot && free >= boot - (writers as u64) * block,
                    "inconsistent snapshot: {free} free of {boot}"
                );
            }
        }));
    }
    for t in threads {
        t.join().expect("thread panicked");
    }
    assert_eq!(m.read("buddyinfo"), boot_text);
}

#[test]
fn one_open_is_one_snapshot() {
    let m = Mount::new();
    let before = m.read("buddyinfo");
    let mut f = std::fs::File::open(m.path("buddyinfo")).unwrap();
    let mut head = [0u8; 10];
    f.read_exact(&mut head).unwrap();
    m.ctl("alloc_pages 5 count=9 tag=s");
    let mut rest = String::new();
    f.read_to_string(&mut rest).unwrap();
    assert_eq!(format!("{}{rest}", String::from_utf8_lossy(&head)), before);
    // A new open sees the new state at once (no stale page cache).
    assert_ne!(m.read("buddyinfo"), before);
}
