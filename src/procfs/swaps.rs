//! /proc/swaps (mm/swapfile.c `swap_show`) and /proc/partitions
//! (block/genhd.c `show_partition`) for the simulated disks.

use std::fmt::Write;

use crate::mm::Kernel;
use crate::mm::swapfile::SwapInfo;
use crate::procfs::diskstats::disk_rows;

/// The header line, printed even when no swap is on.
pub const SWAPS_HEADER: &str = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n";

/// Escape a path like `seq_file_path(m, file, " \t\n\\")`: those four
/// characters become 3-digit octal escapes.
pub fn escape_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        match c {
            ' ' | '\t' | '\n' | '\\' => {
                let _ = write!(out, "\\{:03o}", c as u32);
            }
            _ => out.push(c),
        }
    }
    out
}

/// One /proc/swaps row: the name padded to column 40 (at least one space),
/// `partition` or `file\t`, and an extra tab after Size and Used when they
/// are below 10000000.
pub fn swaps_row(area: &SwapInfo) -> String {
    let name = escape_path(&area.path);
    let pad = if name.len() < 40 { 40 - name.len() } else { 1 };
    let kind = if area.backing.is_file() {
        "file\t"
    } else {
        "partition"
    };
    let size = area.pages * 4;
    let used = area.inuse_pages * 4;
    format!(
        "{name}{:pad$}{kind}\t{size}\t{}{used}\t{}{}\n",
        "",
        if size < 10_000_000 { "\t" } else { "" },
        if used < 10_000_000 { "\t" } else { "" },
        area.prio
    )
}

/// /proc/swaps: rows in swap_info (type) order.
pub fn swaps(kernel: &Kernel) -> String {
    let mut out = String::from(SWAPS_HEADER);
    for area in kernel.swap.active() {
        out.push_str(&swaps_row(area));
    }
    out
}

/// /proc/partitions: `major minor  #blocks  name` of the simulated disks,
/// by device number. A partition `sdXN` comes after its whole disk `sdX`,
/// listed with the sum of its partitions' sizes.
pub fn partitions(kernel: &Kernel) -> String {
    let mut out = String::from("major minor  #blocks  name\n\n");
    for row in disk_rows(kernel) {
        let blocks = row.pages * 4;
        let _ = writeln!(
            out,
            "{:4}  {:7} {blocks:10} {}",
            row.major, row.minor, row.name
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mm::MachineConfig;

    #[test]
    fn escapes_like_seq_file_path() {
        assert_eq!(escape_path("/a b\tc\\d\ne"), "/a\\040b\\011c\\134d\\012e");
    }

    /// The rows of `linux-samples/synthetic/swaps`, rebuilt from state.
    #[test]
    fn rows_match_the_synthetic_capture() {
        let mut k = crate::ctl::Machine::boot(MachineConfig::default()).unwrap();
        k.swap
            .mkswap_partition("/dev/sda2", (8388604 + 4) * 1024)
            .unwrap();
        k.swap.enable_swap_info("/dev/sda2", None).unwrap();
        let text = swaps(&k);
        assert_eq!(
            text,
            "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n/dev/sda2                               partition\t8388604\t\t0\t\t-2\n"
        );
        let capture = include_str!("../../tests/reference/linux-samples/synthetic/swaps");
        let rows: Vec<&str> = capture.lines().collect();
        assert_eq!(rows[0], SWAPS_HEADER.trim_end());
        assert_eq!(rows[1], text.lines().nth(1).unwrap());
        // A file row with 1024 KiB used, and one with a space in its path.
        let dir = std::env::temp_dir().join(format!("mmfs-swaps-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("swapfile");
        let file = file.to_str().unwrap();
        k.swap.mkswap_file(file, (2097148 + 4) * 1024).unwrap();
        let i = k.swap.enable_swap_info(file, None).unwrap();
        // Keep the higher-priority partition out of the way.
        k.swap.disable(0);
        for _ in 0..256 {
            k.swap.get_swap_page(0).unwrap();
        }
        let row = swaps_row(k.swap.areas[i].as_ref().unwrap());
        let expected = rows[2].replacen("/swapfile", file, 1);
        let pad = 40usize.saturating_sub(file.len()).max(1);
        let expected = expected.replacen(&" ".repeat(31), &" ".repeat(pad), 1);
        assert_eq!(row.trim_end(), expected);
        let spaced = dir.join("my swap");
        let spaced = spaced.to_str().unwrap();
        k.swap.mkswap_file(spaced, (1048572 + 4) * 1024).unwrap();
        let j = k.swap.enable_swap_info(spaced, Some(32767)).unwrap();
        let row = swaps_row(k.swap.areas[j].as_ref().unwrap());
        assert!(row.contains("my\\040swap"));
        assert!(row.ends_with("file\t\t1048572\t\t0\t\t32767\n"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn big_numbers_lose_the_extra_tab() {
        let mut k = crate::ctl::Machine::boot(MachineConfig::default()).unwrap();
        k.swap
            .mkswap_partition("/dev/big", (10485756 + 4) * 1024)
            .unwrap();
        let i = k.swap.enable_swap_info("/dev/big", Some(5)).unwrap();
        let row = swaps_row(k.swap.areas[i].as_ref().unwrap());
        assert!(row.ends_with("partition\t10485756\t0\t\t5\n"), "{row:?}");
    }

    #[test]
    fn partitions_format() {
        let mut k = crate::ctl::Machine::boot(MachineConfig::default()).unwrap();
        // The root disk of the simulated file system, from boot.
        let root = "   8        0    4194304 sda\n   8        1    4194304 sda1\n";
        assert_eq!(
            partitions(&k),
            format!("major minor  #blocks  name\n\n{root}")
        );
        k.swap.mkswap_partition("/dev/sdb1", 256 << 20).unwrap();
        assert_eq!(
            partitions(&k),
            format!(
                "major minor  #blocks  name\n\n{root}   8       16     262144 sdb\n   8       17     262144 sdb1\n"
            )
        );
    }

    /// SPEC §3 "Device names": sdX disks major 8, minor 16 × index +
    /// partition, the whole disk first with the sum of its partitions;
    /// other names major 259 (blkext), minors in creation order.
    #[test]
    fn device_numbers_follow_linux() {
        let mut k = crate::ctl::Machine::boot(MachineConfig::default()).unwrap();
        k.vfs.disk_pages = 4096;
        for (path, mib) in [
            ("/dev/sda3", 2),
            ("/dev/zram0", 1),
            ("/dev/sdc2", 2),
            ("/dev/sdb1", 1),
            ("/dev/nvme0n1p3", 1),
            ("/dev/sdc1", 4),
            ("/dev/sdq1", 1),
            ("/dev/sdd", 8),
            ("/dev/low", 1),
            ("/dev/sde16", 1),
        ] {
            k.swap.mkswap_partition(path, mib << 20).unwrap();
        }
        assert_eq!(
            partitions(&k),
            "major minor  #blocks  name\n\n\
            \x20  8        0      18432 sda\n\
            \x20  8        1      16384 sda1\n\
            \x20  8        3       2048 sda3\n\
            \x20  8       16       1024 sdb\n\
            \x20  8       17       1024 sdb1\n\
            \x20  8       32       6144 sdc\n\
            \x20  8       33       4096 sdc1\n\
            \x20  8       34       2048 sdc2\n\
            \x20  8       48       8192 sdd\n\
            \x20 65        0       1024 sdq\n\
            \x20 65        1       1024 sdq1\n\
            \x20259        0       1024 zram0\n\
            \x20259        1       1024 nvme0n1p3\n\
            \x20259        2       1024 low\n\
            \x20259        3       1024 sde16\n"
        );
        // A whole disk and its partitions cannot both be swap devices.
        for path in ["/dev/sdb", "/dev/sdd1"] {
            let err = k.swap.mkswap_partition(path, 1 << 20).unwrap_err();
            assert_eq!(err.errno(), libc::EEXIST, "{path}");
        }
        // The root file system's disk and partition are in use.
        for path in ["/dev/sda", "/dev/sda1"] {
            let err = k.mkswap(path, 1 << 20, &[], false).unwrap_err();
            assert_eq!(err.errno(), libc::EBUSY, "{path}");
        }
    }
}
