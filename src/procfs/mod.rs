//! Pure renderers: kernel state → the exact text of the matching /proc file.
//! Nothing here changes state or does I/O.

pub mod cpuinfo;
pub mod diskstats;
pub mod extfrag;
pub mod kpage;
pub mod meminfo;
pub mod pagetypeinfo;
pub mod physmap;
pub mod pid;
pub mod sched;
pub mod slabinfo;
pub mod stat;
pub mod swaps;
pub mod sysfs;
pub mod trace;
pub mod version;
pub mod vmstat;
pub mod zoneinfo;

use std::fmt::Write;

use crate::mm::Kernel;

/// The system-wide files at the top of the mount.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum GlobalFile {
    /// /proc/buddyinfo
    Buddyinfo,
    /// /proc/dmesg as dmesg(1) prints it
    Dmesg,
    /// /proc/zoneinfo
    Zoneinfo,
    /// /proc/pagetypeinfo (root only)
    Pagetypeinfo,
    /// /proc/meminfo
    Meminfo,
    /// /proc/vmstat
    Vmstat,
    /// /proc/stat
    Stat,
    /// /proc/slabinfo (root only)
    Slabinfo,
    /// /proc/swaps
    Swaps,
    /// /proc/partitions (the simulated disks)
    Partitions,
    /// A picture of physical memory
    Physmap,
    /// /proc/uptime
    Uptime,
    /// /proc/loadavg
    Loadavg,
    /// /proc/pressure/memory
    PressureMemory,
    /// /proc/diskstats (the simulated disks)
    Diskstats,
    /// /proc/cpuinfo (the simulated CPUs)
    Cpuinfo,
    /// debugfs extfrag/unusable_index
    UnusableIndex,
    /// debugfs extfrag/extfrag_index
    ExtfragIndex,
    /// The pageblocks' migrate types, drawn beside the physmap picture
    PhysmapMigratetype,
}

/// Name, mode and identity of every system-wide file, in directory order.
pub const GLOBAL_FILES: &[(&str, u16, GlobalFile)] = &[
    ("buddyinfo", 0o444, GlobalFile::Buddyinfo),
    ("dmesg", 0o444, GlobalFile::Dmesg),
    ("zoneinfo", 0o444, GlobalFile::Zoneinfo),
    ("pagetypeinfo", 0o400, GlobalFile::Pagetypeinfo),
    ("meminfo", 0o444, GlobalFile::Meminfo),
    ("vmstat", 0o444, GlobalFile::Vmstat),
    ("stat", 0o444, GlobalFile::Stat),
    ("slabinfo", 0o400, GlobalFile::Slabinfo),
    ("swaps", 0o444, GlobalFile::Swaps),
    ("partitions", 0o444, GlobalFile::Partitions),
    ("physmap", 0o444, GlobalFile::Physmap),
    ("uptime", 0o444, GlobalFile::Uptime),
    ("loadavg", 0o444, GlobalFile::Loadavg),
    ("pressure/memory", 0o444, GlobalFile::PressureMemory),
    ("diskstats", 0o444, GlobalFile::Diskstats),
    ("cpuinfo", 0o444, GlobalFile::Cpuinfo),
    ("extfrag/unusable_index", 0o444, GlobalFile::UnusableIndex),
    ("extfrag/extfrag_index", 0o444, GlobalFile::ExtfragIndex),
    ("physmap_migratetype", 0o444, GlobalFile::PhysmapMigratetype),
];

/// Render a system-wide file.
pub fn render_global(kernel: &Kernel, file: GlobalFile) -> String {
    match file {
        GlobalFile::Buddyinfo => buddyinfo(kernel),
        GlobalFile::Dmesg => dmesg(kernel),
        GlobalFile::Zoneinfo => zoneinfo::zoneinfo(kernel),
        GlobalFile::Pagetypeinfo => pagetypeinfo::pagetypeinfo(kernel),
        GlobalFile::Meminfo => meminfo::meminfo(kernel),
        GlobalFile::Vmstat => vmstat::vmstat(kernel),
        GlobalFile::Stat => stat::stat(kernel),
        GlobalFile::Slabinfo => slabinfo::slabinfo(kernel),
        GlobalFile::Swaps => swaps::swaps(kernel),
        GlobalFile::Partitions => swaps::partitions(kernel),
        GlobalFile::Physmap => physmap::physmap(kernel),
        GlobalFile::Uptime => sched::uptime(kernel),
        GlobalFile::Loadavg => sched::loadavg(kernel),
        GlobalFile::PressureMemory => sched::pressure_memory(kernel),
        GlobalFile::Diskstats => diskstats::diskstats(kernel),
        GlobalFile::Cpuinfo => cpuinfo::cpuinfo(kernel),
        GlobalFile::UnusableIndex => extfrag::unusable_index(kernel),
        GlobalFile::ExtfragIndex => extfrag::extfrag_index(kernel),
        GlobalFile::PhysmapMigratetype => physmap::physmap_migratetype(kernel),
    }
}

/// /proc/buddyinfo: one line per populated zone, `%6lu ` per order and a
/// trailing space before the newline (mm/vmstat.c `frag_show_print`).
pub fn buddyinfo(kernel: &Kernel) -> String {
    let mut out = String::new();
    for zone in kernel.page_alloc.zones.iter().filter(|z| z.is_populated()) {
        let _ = write!(out, "Node 0, zone {:>8} ", zone.zone_type.name());
        for area in &zone.free_area {
            let _ = write!(out, "{:6} ", area.nr_free());
        }
        out.push('\n');
    }
    out
}

/// Free pages a buddyinfo text shows: Σ count × 2^order over every zone
/// (what the cross-file checks compare with MemFree).
pub fn buddyinfo_pages(text: &str) -> u64 {
    text.lines()
        .flat_map(|line| {
            line.split_whitespace()
                .skip(4)
                .enumerate()
                .map(|(order, n)| n.parse::<u64>().unwrap_or(0) << order)
        })
        .sum()
}

/// The kernel log as `dmesg` prints it: `[sssss.uuuuuu] text`, continuation
/// lines of a record indented under the text.
pub fn dmesg(kernel: &Kernel) -> String {
    let mut out = String::new();
    for record in kernel.dmesg.records() {
        let secs = record.time_ns / 1_000_000_000;
        let micros = (record.time_ns % 1_000_000_000) / 1000;
        let prefix = format!("[{secs:5}.{micros:06}] ");
        for (i, line) in record.text.lines().enumerate() {
            if i == 0 {
                out.push_str(&prefix);
            } else {
                out.push_str(&" ".repeat(prefix.len()));
            }
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// The part of a system file that does not follow the clock: every
/// command costs simulated time, so a command that changes nothing else
/// still moves these (dmesg, uptime, loadavg and PSI wholly; the cpu,
/// intr and ctxt lines of stat). None when nothing is left.
pub fn without_clock(file: GlobalFile, text: &str) -> Option<String> {
    match file {
        GlobalFile::Dmesg
        | GlobalFile::Uptime
        | GlobalFile::Loadavg
        | GlobalFile::PressureMemory => None,
        GlobalFile::Stat => Some(
            text.lines()
                .filter(|l| {
                    !l.starts_with("cpu") && !l.starts_with("intr") && !l.starts_with("ctxt")
                })
                .map(|l| format!("{l}\n"))
                .collect(),
        ),
        _ => Some(text.to_string()),
    }
}

/// The part of a process file that does not follow the clock: stat
/// without utime and stime, status without the context switches.
pub fn pid_without_clock(file: pid::PidFile, text: &str) -> String {
    match file {
        pid::PidFile::Stat => text
            .split(' ')
            .enumerate()
            .map(|(i, f)| if i == 13 || i == 14 { "-" } else { f })
            .collect::<Vec<_>>()
            .join(" "),
        pid::PidFile::Status => text
            .lines()
            .filter(|l| !l.starts_with("voluntary_ctxt_switches"))
            .map(|l| format!("{l}\n"))
            .collect(),
        _ => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mm::MachineConfig;

    #[test]
    fn buddyinfo_format() {
        let k = crate::ctl::Machine::boot(MachineConfig::default()).unwrap();
        let text = buddyinfo(&k);
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("Node 0, zone      DMA "));
        assert!(lines[1].starts_with("Node 0, zone    DMA32 "));
        assert!(lines[0].ends_with(' '));
        // 11 columns of width 6 plus a space each.
        assert_eq!(lines[0].len(), "Node 0, zone      DMA ".len() + 11 * 7);
        // buddyinfo × 2^order = MemFree.
        let free = buddyinfo_pages(&text);
        assert_eq!(free, k.page_alloc.total_free());
    }
}
