//! The slab allocator through a real mount: slabinfo read by the real
//! `slabtop`, partial slabs left by interleaved tags, kmalloc_large blocks
//! seen in buddyinfo, and every error of the slab commands with its errno
//! as bash prints it.

mod common;

use common::{Mount, buddy_free_pages, stderr, stdout};

/// Run `echo LINE > $M/ctl` through bash; returns success and bash's stderr.
fn echo_ctl(m: &Mount, line: &str) -> (bool, String) {
    let out = m.bash(&format!("echo '{line}' > $M/ctl"));
    (out.status.success(), stderr(&out))
}

/// The numeric columns of a cache's slabinfo row: active_objs, num_objs,
/// objsize, objperslab, pagesperslab, …, active_slabs, num_slabs.
fn row(slabinfo: &str, name: &str) -> Vec<u64> {
    let line = slabinfo
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("no {name} row in slabinfo:\n{slabinfo}"));
    line.split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect()
}

#[test]
fn slabinfo_is_root_only_and_versioned() {
    let m = Mount::new();
    let out = m.bash("stat -c %a $M/slabinfo");
    assert_eq!(stdout(&out).trim(), "400");
    let text = m.read("slabinfo");
    assert!(text.starts_with("slabinfo - version: 2.1\n# name            <active_objs>"));
    let last: Vec<&str> = text.lines().rev().take(2).collect();
    assert!(last[0].starts_with("kmem_cache "), "{}", last[0]);
    assert!(last[1].starts_with("kmem_cache_node "), "{}", last[1]);
    // task_struct: 4224 bytes, 7 a slab, 8 pages a slab (the capture's geometry).
    assert_eq!(row(&text, "task_struct")[2..5], [4224, 7, 8]);
}

#[test]
fn slabtop_lists_our_caches() {
    let m = Mount::new();
    m.ctl("kmem_cache_create slabtop_probe 300");
    m.ctl("kmem_cache_alloc slabtop_probe count=50 tag=p");
    let out =
        m.bash("unshare -m sh -c 'mount --bind \"$M/slabinfo\" /proc/slabinfo && slabtop -o -s c'");
    assert!(out.status.success(), "slabtop: {}", stderr(&out));
    let text = stdout(&out);
    let caches = m.read("slabinfo").lines().count() - 2;
    assert!(
        text.contains("Active / Total Caches (% used)     : "),
        "{text}"
    );
    let summary = text
        .lines()
        .find(|l| l.contains("Active / Total Caches"))
        .unwrap();
    assert!(
        summary.contains(&format!("/ {caches} ")),
        "{summary} vs {caches} caches"
    );
    for name in [
        "slabtop_probe",
        "task_struct",
        "vm_area_struct",
        "dentry",
        "kmalloc-8k",
    ] {
        assert!(
            text.lines()
                .any(|l| l.split_whitespace().last() == Some(name)),
            "slabtop does not list {name}:\n{text}"
        );
    }
    // Our probe: 50 objects, 300-byte slots, 13 a slab → 4 slabs.
    let probe = text
        .lines()
        .find(|l| l.split_whitespace().last() == Some("slabtop_probe"))
        .unwrap();
    let f: Vec<&str> = probe.split_whitespace().collect();
    assert_eq!((f[0], f[1], f[4], f[5]), ("52", "50", "4", "13"), "{probe}");
    // The host's /proc/slabinfo was never touched.
    assert!(common::mounted(&m.dir));
}

#[test]
fn interleaved_tags_leave_partial_slabs() {
    let m = Mount::new();
    m.ctl("kmem_cache_create pair 256");
    // One write per line, as bash sends them.
    let out = m.bash(
        "for i in $(seq 64); do \
           echo 'kmem_cache_alloc pair tag=x' > $M/ctl || exit 1; \
           echo 'kmem_cache_alloc pair tag=y' > $M/ctl || exit 1; \
         done",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let full = row(&m.read("slabinfo"), "pair");
    assert_eq!((full[0], full[1], full[3]), (128, 128, 16));
    m.ctl("kmem_cache_free tag=x");
    let half = row(&m.read("slabinfo"), "pair");
    // Every slab keeps its y objects: 8 slabs half used.
    assert_eq!((half[0], half[1]), (64, 128));
    assert!(half[0] < half[1]);
    assert_eq!(half[half.len() - 2], 8, "num_slabs");
    m.ctl("kmem_cache_free tag=y");
    let empty = row(&m.read("slabinfo"), "pair");
    assert_eq!(empty[0], 0);
    // Empty slabs beyond min_partial went back to the buddy allocator.
    assert!(empty[1] < 128, "{empty:?}");
    m.ctl("kmem_cache_destroy pair");
    assert!(!m.read("slabinfo").contains("\npair "));
}

#[test]
fn kmalloc_large_takes_one_order_3_block() {
    let m = Mount::new();
    let buddy = m.read("buddyinfo");
    let slabinfo = m.read("slabinfo");
    m.ctl("kmalloc 20000 tag=big");
    let after = m.read("buddyinfo");
    assert_eq!(buddy_free_pages(&after), buddy_free_pages(&buddy) - 8);
    // The block came from the order-3 list (or a split of a larger one):
    // the orders below 3 did not change.
    let low = |text: &str| -> Vec<Vec<String>> {
        text.lines()
            .map(|l| {
                l.split_whitespace()
                    .skip(4)
                    .take(3)
                    .map(str::to_string)
                    .collect()
            })
            .collect()
    };
    assert_eq!(low(&after), low(&buddy));
    // Not a slab: slabinfo did not change.
    assert_eq!(m.read("slabinfo"), slabinfo);
    m.ctl("kfree tag=big");
    assert_eq!(m.read("buddyinfo"), buddy);
    // meminfo Slab = Σ num_slabs × pagesperslab × 4 kB.
    let text = m.read("slabinfo");
    let pages: u64 = text
        .lines()
        .skip(2)
        .map(|l| {
            let f: Vec<u64> = l
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            f[4] * f[f.len() - 2]
        })
        .sum();
    let meminfo = m.read("meminfo");
    let slab_kb: u64 = meminfo
        .lines()
        .find(|l| l.starts_with("Slab:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .expect("meminfo Slab");
    assert_eq!(slab_kb, pages * 4);
}

#[test]
fn every_error_with_its_errno() {
    let m = Mount::new();
    m.ctl("kmem_cache_create mine 64");
    m.ctl("kmem_cache_alloc mine count=3 tag=held");
    let cases = [
        ("kmem_cache_create mine 64", "File exists"),
        ("kmem_cache_create x 0", "Invalid argument"),
        ("kmem_cache_create x 64 align=3", "Invalid argument"),
        ("kmem_cache_destroy nosuch", "No such file or directory"),
        ("kmem_cache_destroy task_struct", "Device or resource busy"),
        ("kmem_cache_destroy mine", "Device or resource busy"),
        ("kmem_cache_alloc nosuch", "No such file or directory"),
        ("kmem_cache_alloc mine count=0", "Invalid argument"),
        ("kmem_cache_free tag=nosuch", "No such file or directory"),
        (
            "kmem_cache_alloc task_struct count=1000000 tag=hog",
            "Cannot allocate memory",
        ),
        ("kmalloc 0", "Invalid argument"),
        ("kmalloc 2M count=1000 tag=hog", "Cannot allocate memory"),
        ("kfree tag=nosuch", "No such file or directory"),
        ("kfree tag=held", "No such file or directory"),
    ];
    for (line, want) in cases {
        let buddy = m.read("buddyinfo");
        let slabinfo = m.read("slabinfo");
        let (ok, err) = echo_ctl(&m, line);
        assert!(!ok, "{line} succeeded");
        assert!(
            err.contains(&format!("write error: {want}")),
            "{line}: {err}"
        );
        if want == "Cannot allocate memory" {
            // Everything taken came back; the reclaim run before failing may
            // have shrunk the reclaimable caches (dentry, inode), as on Linux.
            assert!(
                common::buddy_free_pages(&m.read("buddyinfo")) >= common::buddy_free_pages(&buddy),
                "a failed {line} kept memory"
            );
        } else {
            assert_eq!(m.read("buddyinfo"), buddy, "a failed {line} changed memory");
            assert_eq!(
                m.read("slabinfo"),
                slabinfo,
                "a failed {line} changed slabinfo"
            );
        }
        let dmesg = m.read("dmesg");
        let last = dmesg.lines().last().unwrap();
        assert!(
            last.contains(&format!("\"{line}\"")),
            "dmesg does not quote {line}: {last}"
        );
        if want == "Cannot allocate memory" {
            let (ok, _) = echo_ctl(&m, "kfree tag=hog");
            assert!(!ok, "{line} left objects tagged hog");
            let (ok, _) = echo_ctl(&m, "kmem_cache_free tag=hog");
            assert!(!ok, "{line} left objects tagged hog");
        }
    }
    m.ctl("kmem_cache_free tag=held");
    m.ctl("kmem_cache_destroy mine");
}
