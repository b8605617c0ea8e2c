//! The swap cache and swap readahead through the mount (SPEC §9): the
//! experiment of tests/reference/linux-samples/swap-cache.c, read from
//! the files a user would read (PID/stat's minflt and majflt, vmstat's
//! pswpin, pswpout, swap_ra and swap_ra_hit, meminfo's SwapCached, swaps'
//! Used), against the counts this machine's Linux 6.18 gave.

mod common;

use common::Mount;

/// The counters after a step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Counters {
    minflt: u64,
    majflt: u64,
    pswpin: u64,
    pswpout: u64,
    swap_ra: u64,
    swap_ra_hit: u64,
}

fn counters(m: &Mount, pid: u32) -> Counters {
    let stat = m.read(&format!("{pid}/stat"));
    // Fields after the comm's closing parenthesis, from field 3 (state).
    let rest: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let vmstat = m.read("vmstat");
    let ev = |key: &str| -> u64 {
        vmstat
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key} ")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in vmstat"))
    };
    Counters {
        minflt: rest[7].parse().unwrap(),
        majflt: rest[9].parse().unwrap(),
        pswpin: ev("pswpin"),
        pswpout: ev("pswpout"),
        swap_ra: ev("swap_ra"),
        swap_ra_hit: ev("swap_ra_hit"),
    }
}

/// Run `line` on PID/ctl; the counters' deltas.
fn step(m: &Mount, pid: u32, line: &str) -> Counters {
    let a = counters(m, pid);
    m.write(&format!("{pid}/ctl"), &format!("{line}\n"))
        .unwrap_or_else(|e| panic!("{line}: {e}"));
    let b = counters(m, pid);
    Counters {
        minflt: b.minflt - a.minflt,
        majflt: b.majflt - a.majflt,
        pswpin: b.pswpin - a.pswpin,
        pswpout: b.pswpout - a.pswpout,
        swap_ra: b.swap_ra - a.swap_ra,
        swap_ra_hit: b.swap_ra_hit - a.swap_ra_hit,
    }
}

/// swaps' Used column, summed, in kB.
fn swap_used_kb(m: &Mount) -> u64 {
    m.read("swaps")
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().nth(3).unwrap().parse::<u64>().unwrap())
        .sum()
}

fn c(minflt: u64, majflt: u64, pswpin: u64, pswpout: u64, ra: u64, hit: u64) -> Counters {
    Counters {
        minflt,
        majflt,
        pswpin,
        pswpout,
        swap_ra: ra,
        swap_ra_hit: hit,
    }
}

#[test]
fn page_out_touch_again_shows_the_swap_cache_and_readahead() {
    let m = Mount::new();
    m.ctl("mkswap /dev/sdb 256M");
    m.ctl("swapon /dev/sdb");
    assert!(m.read("dmesg").contains("across:262140k SS"));
    let pid = m.created("spawn ref");
    m.write(&format!("{pid}/ctl"), "mmap 1M name=buf addr=0x40000000\n")
        .unwrap();
    assert_eq!(step(&m, pid, "touch buf 1M write"), c(256, 0, 0, 0, 0, 0));
    // Linux: pswpout 256, SwapCached 1024 kB, swap used 1024 kB.
    assert_eq!(
        step(&m, pid, "madvise buf 1M pageout"),
        c(0, 0, 0, 256, 0, 0)
    );
    assert_eq!(m.meminfo_kb("SwapCached"), 1024);
    assert!(m.meminfo_kb("Writeback") > 0, "the writes are in flight");
    assert_eq!(swap_used_kb(&m), 1024);
    m.ctl("tick 100");
    assert_eq!(m.meminfo_kb("Writeback"), 0);
    // Linux: 256 minor faults, pswpin 0, the slots held.
    assert_eq!(step(&m, pid, "touch buf 1M read"), c(256, 0, 0, 0, 0, 0));
    assert_eq!(m.meminfo_kb("SwapCached"), 1024);
    assert_eq!(swap_used_kb(&m), 1024);
    // Linux: no write; the clean pages leave the cache, the slots stay.
    assert_eq!(step(&m, pid, "madvise buf 1M pageout"), c(0, 0, 0, 0, 0, 0));
    assert_eq!(m.meminfo_kb("SwapCached"), 0);
    assert_eq!(swap_used_kb(&m), 1024);
    // Linux (VMA readahead, non-rotational swap): 33 major faults, 223
    // pages read ahead and hit, every slot freed.
    assert_eq!(
        step(&m, pid, "touch buf 1M write"),
        c(223, 33, 256, 0, 223, 223)
    );
    assert_eq!(m.meminfo_kb("SwapCached"), 0);
    assert_eq!(swap_used_kb(&m), 0);
    assert!(m.umount().status.success());
}

#[test]
fn a_rotational_device_reads_ahead_by_slot_clusters() {
    let m = Mount::new();
    m.ctl("mkswap /dev/sdb 256M rotational");
    m.ctl("swapon /dev/sdb");
    // No SS (SWP_SOLIDSTATE) in the swapon line of a spinning disk.
    assert!(m.read("dmesg").contains("across:262140k \n"));
    let pid = m.created("spawn ref");
    let ctl = format!("{pid}/ctl");
    for line in [
        "mmap 1M name=buf addr=0x40000000",
        "touch buf 1M write",
        "madvise buf 1M pageout",
    ] {
        m.write(&ctl, &format!("{line}\n")).unwrap();
    }
    m.ctl("tick 100");
    for line in ["touch buf 1M read", "madvise buf 1M pageout"] {
        m.write(&ctl, &format!("{line}\n")).unwrap();
    }
    // Linux (cluster readahead, the first swap-in since boot): 33 and 223.
    assert_eq!(
        step(&m, pid, "touch buf 1M write"),
        c(223, 33, 256, 0, 223, 223)
    );
    assert!(m.umount().status.success());
}
