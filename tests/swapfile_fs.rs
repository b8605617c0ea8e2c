//! A swap file on the simulated disk (SPEC §3): `mkswap MNT/fs/PATH SIZE`
//! on `MOUNT/ctl`, or `dd` and util-linux mkswap(8) through `MOUNT/fs/`,
//! then `swapon`; pages pushed out with MADV_PAGEOUT land in the file's
//! blocks (counted on sda/sda1), `swaps` and `meminfo` agree, the active
//! file refuses what Linux refuses, and after swapoff it is an ordinary
//! file again.

mod common;

use common::{Mount, stderr, stdout};

/// Run a script that must succeed; its stdout.
fn ok(m: &Mount, script: &str) -> String {
    let out = m.bash(script);
    assert!(
        out.status.success(),
        "{script}: {}\n{}",
        stderr(&out),
        m.log_text()
    );
    stdout(&out)
}

/// Run a script that must fail; its stderr.
fn fails(m: &Mount, script: &str) -> String {
    let out = m.bash(script);
    assert!(!out.status.success(), "{script} succeeded");
    stderr(&out)
}

/// A `vmstat` counter.
fn vmstat(m: &Mount, key: &str) -> u64 {
    m.read("vmstat")
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {key}"))
}

/// (reads, writes) of a /proc/diskstats row.
fn disk_io(m: &Mount, name: &str) -> (u64, u64) {
    let text = m.read("diskstats");
    let f: Vec<u64> = text
        .lines()
        .find(|l| l.split_whitespace().nth(2) == Some(name))
        .unwrap_or_else(|| panic!("no {name} in {text}"))
        .split_whitespace()
        .skip(3)
        .map(|w| w.parse().unwrap())
        .collect();
    (f[0], f[4])
}

/// The rows of `swaps`: (name, type, size kB, used kB, priority).
fn swaps(m: &Mount) -> Vec<(String, String, u64, u64, i32)> {
    m.read("swaps")
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (
                f[0].to_string(),
                f[1].to_string(),
                f[2].parse().unwrap(),
                f[3].parse().unwrap(),
                f[4].parse().unwrap(),
            )
        })
        .collect()
}

/// SwapTotal and SwapFree of meminfo agree with the rows of `swaps`.
fn swaps_agree_with_meminfo(m: &Mount) {
    let rows = swaps(m);
    let size: u64 = rows.iter().map(|r| r.2).sum();
    let used: u64 = rows.iter().map(|r| r.3).sum();
    assert_eq!(m.meminfo_kb("SwapTotal"), size);
    assert_eq!(m.meminfo_kb("SwapFree"), size - used);
}

#[test]
fn swap_file_on_the_simulated_disk() {
    let m = Mount::new();

    // 1. Made by mmfs: blocks for all of it (no holes), the header on disk.
    ok(&m, "echo \"mkswap $M/fs/swapfile 64M\" > $M/ctl");
    let st = ok(&m, "stat -c '%s %b' $M/fs/swapfile");
    assert_eq!(
        st.trim(),
        "67108864 131072",
        "64 MiB, every block allocated"
    );
    let magic = ok(&m, "head -c 4096 $M/fs/swapfile | tail -c 10");
    assert_eq!(magic, "SWAPSPACE2");
    let err = fails(&m, "echo \"mkswap $M/fs/swapfile 64M\" > $M/ctl");
    assert!(err.contains("File exists"), "{err}");
    let err = fails(&m, "echo \"mkswap $M/fs/huge 8G\" > $M/ctl");
    assert!(err.contains("No space left on device"), "{err}");
    assert!(!m.path("fs/huge").exists(), "nothing left behind");

    // 2. Made by host tools through the mount: dd, then util-linux mkswap.
    ok(
        &m,
        "dd if=/dev/zero of=$M/fs/sf bs=1M count=16 status=none && mkswap $M/fs/sf",
    );
    // A sparse file has holes: Linux refuses it (EINVAL).
    ok(&m, "truncate -s 16M $M/fs/holey && mkswap $M/fs/holey");
    let err = fails(&m, "echo \"swapon $M/fs/holey\" > $M/ctl");
    assert!(err.contains("Invalid argument"), "{err}");
    assert!(
        m.read("dmesg")
            .contains("swapon: file /holey has unallocated extents")
    );

    ok(&m, "echo \"swapon $M/fs/swapfile prio=5\" > $M/ctl");
    ok(&m, "echo \"swapon $M/fs/sf\" > $M/ctl");
    let err = fails(&m, "echo \"swapon $M/fs/sf\" > $M/ctl");
    assert!(err.contains("Device or resource busy"), "{err}");
    assert_eq!(
        swaps(&m),
        [
            ("/swapfile".into(), "file".into(), 65532, 0, 5),
            ("/sf".into(), "file".into(), 16380, 0, -2),
        ]
    );
    let text = m.read("swaps");
    assert!(
        text.contains("/swapfile                               file\t\t65532\t\t0\t\t5\n"),
        "{text:?}"
    );
    swaps_agree_with_meminfo(&m);

    // 3. Pages pushed out go to the file's blocks: sda1 (and sda) count
    // one write per page, as swap I/O to a file on sda1 does.
    let pid = ok(
        &m,
        "exec 3<>$M/ctl; echo 'spawn pusher' >&3; read p <&3; echo $p",
    );
    let pid = pid.trim();
    ok(&m, "sync; echo sync > $M/ctl");
    let (r0, w0) = disk_io(&m, "sda1");
    let out0 = vmstat(&m, "pswpout");
    ok(
        &m,
        &format!(
            "printf 'mmap 32M name=b\\ntouch b 32M\\nmadvise b 32M pageout\\n' > $M/{pid}/ctl"
        ),
    );
    assert_eq!(vmstat(&m, "pswpout") - out0, 8192);
    let (_, w1) = disk_io(&m, "sda1");
    assert_eq!(w1 - w0, 8192, "one sda1 write per page swapped out");
    assert_eq!(disk_io(&m, "sda"), disk_io(&m, "sda1"));
    let rows = swaps(&m);
    assert_eq!(
        (rows[0].3, rows[1].3),
        (32768, 0),
        "the higher priority first"
    );
    assert_eq!(m.meminfo_kb("SwapFree"), 65532 + 16380 - 32768);
    swaps_agree_with_meminfo(&m);

    // 4. While active, as measured on this machine's real Linux 6.18
    // kernel (8 MiB swap file on ext4): unlink EPERM, rename EPERM (of it
    // and over it), write ETXTBSY, O_TRUNC and truncate to a smaller or
    // equal size ETXTBSY, reads allowed.
    for script in [
        "rm $M/fs/swapfile",
        "mv $M/fs/swapfile $M/fs/moved",
        "mv $M/fs/holey $M/fs/swapfile",
    ] {
        let err = fails(&m, script);
        assert!(err.contains("Operation not permitted"), "{script}: {err}");
    }
    for script in [
        "echo x >> $M/fs/swapfile",
        ": > $M/fs/swapfile",
        "truncate -s 4096 $M/fs/swapfile",
        "truncate -s 64M $M/fs/swapfile",
        "dd if=/dev/zero of=$M/fs/sf bs=4k count=1 conv=notrunc status=none",
        &format!("echo 'write /swapfile 0 4K' > $M/{pid}/ctl"),
    ] {
        let err = fails(&m, script);
        assert!(err.contains("Text file busy"), "{script}: {err}");
    }
    assert!(
        m.read("dmesg").contains("\"write /swapfile 0 4K\""),
        "the rejected line is quoted"
    );
    assert_eq!(
        ok(&m, "head -c 4096 $M/fs/sf | tail -c 10"),
        "SWAPSPACE2",
        "reads are allowed"
    );
    assert_eq!(m.read("swaps").lines().count(), 3, "both still on");

    // 5. swapoff reads every page back; then the files are ordinary.
    // Pages still in the swap cache are mapped from there, the others
    // read.
    let in0 = vmstat(&m, "pswpin");
    let cached = m.meminfo_kb("SwapCached") / 4;
    ok(&m, "echo 'swapoff /swapfile' > $M/ctl");
    ok(&m, "echo \"swapoff $M/fs/sf\" > $M/ctl");
    let swapped_in = vmstat(&m, "pswpin") - in0;
    assert_eq!(swapped_in + cached, 8192);
    assert_eq!(m.meminfo_kb("SwapCached"), 0);
    let (r2, _) = disk_io(&m, "sda1");
    assert!(r2 - r0 >= swapped_in, "swap-ins read sda1: {r0} -> {r2}");
    assert_eq!(m.read("swaps").lines().count(), 1);
    assert_eq!(m.meminfo_kb("SwapTotal"), 0);
    let rss = m.read(&format!("{pid}/status"));
    assert!(rss.contains("VmSwap:\t       0 kB"), "{rss}");
    ok(
        &m,
        "echo x >> $M/fs/sf && mv $M/fs/sf $M/fs/sf2 && rm $M/fs/sf2 $M/fs/swapfile",
    );
    let left = ok(&m, "ls $M/fs");
    assert_eq!(left, "holey\n");

    let out = m.umount();
    assert!(out.status.success(), "{}", stderr(&out));
}
