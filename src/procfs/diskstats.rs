//! The simulated block devices as the block layer shows them:
//! /proc/diskstats (block/genhd.c `diskstats_show`) and the rows that
//! /proc/partitions and `MOUNT/block/` share.

use std::fmt::Write;

use crate::mm::Kernel;
use crate::mm::swapfile::{DiskIo, SECTORS_PER_PAGE, sd_devt, sd_name};

/// One block device: a simulated disk or partition, or the whole disk
/// `sdX` that partitions `sdXN` imply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskRow {
    /// Major device number.
    pub major: u32,
    /// Minor device number.
    pub minor: u32,
    /// Name without `/dev/`.
    pub name: String,
    /// Size in pages (a whole disk: the sum of its partitions).
    pub pages: u64,
    /// Completed I/O (a whole disk: its own plus its partitions', as the
    /// block layer accounts a partition's I/O to its disk too).
    pub io: DiskIo,
    /// True for a whole disk (listed in /sys/block), false for a partition.
    pub whole: bool,
}

/// The root file system's partition (SPEC §8): `/dev/sda1`, the first
/// partition of the root disk `sda`.
pub const ROOT_PARTITION: &str = "/dev/sda1";

/// Every block device, by device number: a partition `sdXN` comes after
/// its whole disk `sdX`. The root disk `sda` (8:0) with its partition
/// `sda1`, the simulated file system, comes first.
pub fn disk_rows(kernel: &Kernel) -> Vec<DiskRow> {
    let mut rows: Vec<DiskRow> = Vec::new();
    // sda1's I/O is the page cache's (reads of missing pages, writeback)
    // and that of swap files on it, which bypasses the cache.
    let stats = kernel.vfs.stats;
    let mut root_io = DiskIo {
        reads: stats.disk_reads,
        writes: stats.disk_writes,
    };
    root_io.add(kernel.swap.fs_io);
    let root = (
        ROOT_PARTITION,
        sd_devt(0, 1),
        kernel.vfs.disk_pages,
        root_io,
    );
    let swap_disks = kernel
        .swap
        .disks
        .values()
        .map(|d| (d.path.as_str(), (d.major, d.minor), d.pages, d.io));
    for (path, (major, minor), pages, io) in std::iter::once(root).chain(swap_disks) {
        let name = path.trim_start_matches("/dev/");
        let part = sd_name(name).filter(|&(_, part)| part > 0);
        rows.push(DiskRow {
            major,
            minor,
            name: name.to_string(),
            pages,
            io,
            whole: part.is_none(),
        });
        if let Some((index, _)) = part {
            let (major, minor) = sd_devt(index, 0);
            match rows
                .iter_mut()
                .find(|r| (r.major, r.minor) == (major, minor))
            {
                Some(whole) => {
                    whole.pages += pages;
                    whole.io.add(io);
                }
                None => rows.push(DiskRow {
                    major,
                    minor,
                    name: format!("sd{}", char::from(b'a' + index as u8)),
                    pages,
                    io,
                    whole: true,
                }),
            }
        }
    }
    rows.sort_by_key(|r| (r.major, r.minor));
    rows
}

/// Milliseconds from nanoseconds, truncated (`div_u64(nsecs, NSEC_PER_MSEC)`).
fn ms(ns: u64) -> u64 {
    ns / 1_000_000
}

/// One /proc/diskstats line: `%4u %7u %s` and the 17 counters of Linux
/// 6.18 (reads, writes, discards, flushes). Swap I/O is one page per
/// request: nothing merges, nothing is in flight between commands, no
/// discards or flushes; the disk is busy for the time of its I/Os.
pub fn diskstats_row(row: &DiskRow) -> String {
    let io = row.io;
    let (read_ms, write_ms) = (ms(io.read_ns()), ms(io.write_ns()));
    let busy_ms = ms(io.read_ns() + io.write_ns());
    format!(
        "{:4} {:7} {} {} 0 {} {read_ms} {} 0 {} {write_ms} 0 {busy_ms} {busy_ms} 0 0 0 0 0 0\n",
        row.major,
        row.minor,
        row.name,
        io.reads,
        io.read_sectors(),
        io.writes,
        io.write_sectors(),
    )
}

/// /proc/diskstats: one line per block device.
pub fn diskstats(kernel: &Kernel) -> String {
    disk_rows(kernel).iter().map(diskstats_row).collect()
}

/// `/sys/block/NAME/stat` (block/genhd.c `part_stat_show`): the same
/// 17 counters, each right-aligned in 8 columns (`%8lu` and `%8u`).
pub fn sysfs_stat(row: &DiskRow) -> String {
    let line = diskstats_row(row);
    let mut out = String::new();
    for field in line.split_whitespace().skip(3) {
        let _ = write!(out, "{field:>8} ");
    }
    out.pop();
    out.push('\n');
    out
}

/// `/sys/block/NAME/size`: 512-byte sectors.
pub fn sysfs_size(row: &DiskRow) -> String {
    format!("{}\n", row.pages * SECTORS_PER_PAGE)
}

/// `/sys/block/NAME/dev`: `major:minor`.
pub fn sysfs_dev(row: &DiskRow) -> String {
    format!("{}:{}\n", row.major, row.minor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mm::MachineConfig;

    const CAPTURE: &str = include_str!("../../tests/reference/linux-samples/diskstats");

    #[test]
    fn lines_have_the_6_18_fields() {
        let mut k = crate::ctl::Machine::boot(MachineConfig::default()).unwrap();
        // The root disk and its file system's partition, from boot.
        assert_eq!(
            diskstats(&k),
            "   8       0 sda 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n\
             \x20  8       1 sda1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
        );
        k.swap.mkswap_partition("/dev/sdb1", 4 << 20).unwrap();
        k.swap.mkswap_partition("/dev/zram0", 4 << 20).unwrap();
        let text = diskstats(&k);
        let fields = CAPTURE.lines().next().unwrap().split_whitespace().count();
        assert_eq!(fields, 20);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[2..],
            [
                "   8      16 sdb 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0",
                "   8      17 sdb1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0",
                " 259       0 zram0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0",
            ]
        );
        // Same columns as the capture's idle loop devices.
        let idle = CAPTURE.lines().find(|l| l.contains(" loop0 ")).unwrap();
        assert_eq!(idle.find("loop0"), lines[2].find("sdb"));
    }

    #[test]
    fn the_page_cache_is_sda1s_io() {
        let mut k = crate::ctl::Machine::boot(MachineConfig::default()).unwrap();
        k.vfs.disk_pages = 4096;
        let ino = k
            .vfs_create(
                crate::mm::namei::ROOT_INO,
                "f",
                crate::mm::namei::FileKind::Regular,
            )
            .unwrap();
        k.filemap_write(ino, 0, &[7u8; 3 * 4096]).unwrap();
        k.vfs_fsync(ino).unwrap();
        k.drop_caches(1);
        assert_eq!(k.filemap_read(ino, 0, 4096).unwrap(), vec![7u8; 4096]);
        k.swap.mkswap_partition("/dev/sda2", 4 << 20).unwrap();
        let rows = disk_rows(&k);
        let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["sda", "sda1", "sda2"]);
        // The whole disk: the file system and the swap partition.
        assert_eq!(rows[0].pages, 4096 + 1024);
        assert_eq!((rows[1].major, rows[1].minor), (8, 1));
        // Three pages written back, three read again (with readahead);
        // the create read 4 metadata blocks (root directory, inode table,
        // inode bitmap, group descriptors), and fsync's journal commit
        // wrote them with a descriptor and a commit block.
        assert_eq!(
            rows[1].io,
            DiskIo {
                reads: 3 + 4,
                writes: 3 + 4 + 2
            }
        );
        assert_eq!(rows[0].io, rows[1].io);
    }

    #[test]
    fn swap_io_counts_on_the_partition_and_its_disk() {
        let mut k = crate::ctl::Machine::boot(MachineConfig::default()).unwrap();
        k.swap.mkswap_partition("/dev/sdb1", 4 << 20).unwrap();
        k.swap.enable_swap_info("/dev/sdb1", None).unwrap();
        let mut entries = Vec::new();
        for _ in 0..3 {
            let e = k.swap.get_swap_page(0).unwrap();
            k.swap.write_page(e, None).unwrap();
            entries.push(e);
        }
        k.swap.read_page(entries[0]).unwrap();
        let io_ms = crate::mm::cputime::SWAP_PAGE_IO_NS / 1_000_000;
        let rows = disk_rows(&k);
        let text = diskstats(&k);
        let line = |name: &str| {
            text.lines()
                .find(|l| l.split_whitespace().nth(2) == Some(name))
                .unwrap()
                .split_whitespace()
                .skip(3)
                .map(|f| f.parse::<u64>().unwrap())
                .collect::<Vec<_>>()
        };
        for name in ["sdb", "sdb1"] {
            let f = line(name);
            assert_eq!(&f[..8], [1, 0, 8, io_ms, 3, 0, 24, 3 * io_ms], "{name}");
            assert_eq!(f[8], 0);
            assert_eq!(f[9], 4 * io_ms);
        }
        let rows = &rows[2..];
        assert!(rows[0].whole && !rows[1].whole);
        assert_eq!(sysfs_dev(&rows[0]), "8:16\n");
        assert_eq!(sysfs_size(&rows[0]), "8192\n");
        let stat = sysfs_stat(&rows[0]);
        assert_eq!(stat.split_whitespace().count(), 17);
        assert!(stat.starts_with("       1        0        8 "), "{stat:?}");
    }
}
