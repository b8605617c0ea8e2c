//! /proc/zoneinfo (mm/vmstat.c `zoneinfo_show_print`), 6.18 layout.
//!
//! Every zone of the architecture is printed, populated or not. The first
//! populated zone carries the node's counters ("per-node stats"). An
//! unpopulated zone ends after its protection line.
//!
//! Pagesets: the simulation has no per-cpu page lists, so `count` is 0 and
//! `high` is 0: Linux starts every pcp at BOOT_PAGESET_HIGH (0) and only the
//! pcp free path raises it. `batch`, `high_min` and `high_max` are what
//! `zone_set_high_and_batch` computes from the zone's size and low watermark
//! (`zone_batchsize`, `zone_highsize`), and "vm stats threshold" is
//! `calculate_normal_threshold` (Linux lowers it while kswapd runs; the
//! simulation shows the normal value); all follow watermark changes like
//! Linux's `zone_pcp_update`.

use std::fmt::Write;

use crate::mm::page_alloc::Zone;
use crate::mm::types::PAGE_SIZE;
use crate::mm::{Kernel, NR_CPUS};

use super::vmstat::{node_stat_items, numa_event_items, zone_stat_items};

/// MIN_PERCPU_PAGELIST_HIGH_FRACTION: high_max is managed / 8 split over CPUs.
const MIN_PERCPU_PAGELIST_HIGH_FRACTION: u64 = 8;

/// Index of the highest set bit plus one (the kernel's `fls`), 0 for 0.
fn fls(x: u64) -> u64 {
    u64::from(64 - x.leading_zeros())
}

/// `zone_batchsize`: ~0.1 % of the zone or 1 MiB, whichever is smaller,
/// quartered and clamped to 2^n − 1; `zone_set_high_and_batch` then makes
/// it at least 1.
pub fn zone_batchsize(managed: u64) -> u64 {
    let mut batch = (managed >> 10).min((1 << 20) / PAGE_SIZE) / 4;
    batch = batch.max(1);
    let n = batch + batch / 2;
    let rounded = 1u64 << (63 - n.leading_zeros());
    (rounded - 1).max(1)
}

/// `zone_highsize`: the pcp high limit, `total / cpus` but at least
/// `4 * batch`, where `total` is the low watermark (high_min) or
/// `managed / 8` (high_max).
pub fn zone_highsize(total_pages: u64, batch: u64, cpus: u64) -> u64 {
    (total_pages / cpus.max(1)).max(batch << 2)
}

/// `calculate_normal_threshold`: 2 × fls(cpus) × (1 + fls(managed / 128 MiB)),
/// at most 125.
pub fn stat_threshold(managed: u64, cpus: u64) -> u64 {
    let mem = managed >> (27 - 12);
    (2 * fls(cpus) * (1 + fls(mem))).min(125)
}

/// `(batch, high_min, high_max)` of a zone's pagesets.
pub fn pageset_limits(zone: &Zone, cpus: u64) -> (u64, u64, u64) {
    let batch = zone_batchsize(zone.managed);
    let high_min = zone_highsize(zone.watermark.low, batch, cpus);
    let high_max = zone_highsize(
        zone.managed / MIN_PERCPU_PAGELIST_HIGH_FRACTION,
        batch,
        cpus,
    );
    (batch, high_min, high_max)
}

/// Render /proc/zoneinfo.
pub fn zoneinfo(kernel: &Kernel) -> String {
    let pa = &kernel.page_alloc;
    let stats = kernel.node_stats();
    let first_populated = pa.zones.iter().position(|z| z.is_populated());
    let mut out = String::with_capacity(8192);
    for (index, zone) in pa.zones.iter().enumerate() {
        let _ = write!(out, "Node 0, zone {:>8}", zone.zone_type.name());
        if first_populated == Some(index) {
            out.push_str("\n  per-node stats");
            for (name, value) in node_stat_items(kernel, &stats) {
                let _ = write!(out, "\n      {name:<12} {value}");
            }
        }
        let w = zone.watermark;
        let _ = write!(
            out,
            "\n  pages free     {}\n        boost    0\n        min      {}\n        low      {}\n        high     {}\n        promo    {}\n        spanned  {}\n        present  {}\n        managed  {}\n        cma      0",
            zone.free_pages,
            w.min,
            w.low,
            w.high,
            w.promo,
            zone.spanned,
            zone.present,
            zone.managed
        );
        let protection: Vec<String> = zone.lowmem_reserve.iter().map(u64::to_string).collect();
        let _ = write!(out, "\n        protection: ({})", protection.join(", "));
        if !zone.is_populated() {
            out.push('\n');
            continue;
        }
        for (name, value) in zone_stat_items(kernel, &stats, index)
            .into_iter()
            .chain(numa_event_items(kernel, index))
        {
            let _ = write!(out, "\n      {name:<12} {value}");
        }
        out.push_str("\n  pagesets");
        let (batch, high_min, high_max) = pageset_limits(zone, NR_CPUS);
        let threshold = stat_threshold(zone.managed, NR_CPUS);
        for cpu in 0..NR_CPUS {
            let _ = write!(
                out,
                "\n    cpu: {cpu}\n              count:    0\n              high:     0\n              batch:    {batch}\n              high_min: {high_min}\n              high_max: {high_max}\n  vm stats threshold: {threshold}"
            );
        }
        let _ = write!(
            out,
            "\n  node_unreclaimable:  {}\n  start_pfn:           {}\n",
            u8::from(stats.node_unreclaimable),
            zone.start_pfn
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctl::Scope;
    use crate::mm::page_alloc::PageAllocator;
    use crate::mm::types::Arch;
    use crate::procfs::meminfo::golden::mask_free;

    const CAPTURE: &str = include_str!("../../tests/reference/linux-samples/zoneinfo");

    fn boot(arch: Arch, mem: u64) -> crate::ctl::Machine {
        crate::mm::boot_checked(arch, mem)
    }

    /// Same lines, labels and padding as the capture; only the numbers
    /// differ (compared with every number masked).
    #[test]
    fn layout_matches_the_capture_line_by_line() {
        // 8G populates DMA, DMA32 and Normal like the captured machine.
        let k = boot(Arch::X86_64, 8 << 30);
        let text = zoneinfo(&k);
        let ours: Vec<_> = text.lines().map(mask_free).collect();
        let theirs: Vec<_> = CAPTURE.lines().map(mask_free).collect();
        assert_eq!(ours.len(), theirs.len());
        for (a, b) in ours.iter().zip(&theirs) {
            assert_eq!(a, b);
        }
        assert!(text.ends_with("protection: (0, 0, 0, 0, 0)\n"));
    }

    #[test]
    fn unpopulated_zones_end_after_protection() {
        let k = boot(Arch::X86_64, 1 << 30);
        let text = zoneinfo(&k);
        let normal = text
            .split("Node 0, zone ")
            .find(|s| s.starts_with("  Normal"))
            .unwrap();
        assert!(normal.ends_with("protection: (0, 0, 0, 0, 0)\n"));
        assert!(!normal.contains("pagesets"));
        // The per-node stats sit in DMA, the first populated zone.
        assert_eq!(text.matches("per-node stats").count(), 1);
        assert!(text.starts_with("Node 0, zone      DMA\n  per-node stats\n"));
    }

    #[test]
    fn i386_prints_its_four_zones_without_numa() {
        let k = boot(Arch::I386, 2 << 30);
        let text = zoneinfo(&k);
        let zones: Vec<_> = text
            .lines()
            .filter_map(|l| l.strip_prefix("Node 0, zone "))
            .map(str::trim)
            .collect();
        assert_eq!(zones, ["DMA", "Normal", "HighMem", "Movable"]);
        assert!(text.contains("protection: (0, "));
        assert!(!text.contains("numa_hit"));
        assert!(!text.contains("pgpromote"));
        assert_eq!(text.matches("pagesets").count(), 3);
    }

    /// The capture's zone sizes and min_free_kbytes give its pagesets.
    #[test]
    fn pagesets_match_the_capture() {
        let mut a = PageAllocator::boot(Arch::X86_64, 1 << 30).unwrap();
        for (zone, m) in a.zones.iter_mut().zip([3840u64, 772808, 360448, 0, 0]) {
            zone.managed = m;
        }
        a.min_free_kbytes = 67584;
        a.setup_watermarks();
        assert_eq!(pageset_limits(&a.zones[0], 2), (1, 35, 240));
        assert_eq!(pageset_limits(&a.zones[1], 2), (63, 7176, 48300));
        assert_eq!(pageset_limits(&a.zones[2], 2), (63, 3346, 22528));
        let thresholds: Vec<_> = a.zones[..3]
            .iter()
            .map(|z| stat_threshold(z.managed, 2))
            .collect();
        assert_eq!(thresholds, [4, 24, 20]);
        assert_eq!(stat_threshold(1 << 30, 64), 125);
        assert_eq!(zone_batchsize(0), 1);
    }

    #[test]
    fn free_counts_agree_with_buddyinfo_and_vmstat() {
        let mut k = boot(Arch::X86_64, 1 << 30);
        k.execute_line(Scope::System, "alloc_pages 1 count=9 tag=z")
            .unwrap();
        k.check_invariants().unwrap();
        let text = zoneinfo(&k);
        let free: Vec<u64> = text
            .lines()
            .filter_map(|l| l.strip_prefix("  pages free     "))
            .map(|n| n.parse().unwrap())
            .collect();
        assert_eq!(free.len(), k.page_alloc.zones.len());
        assert_eq!(free.iter().sum::<u64>(), k.page_alloc.total_free());
        let nr_free: u64 = text
            .lines()
            .filter_map(|l| l.strip_prefix("      nr_free_pages "))
            .map(|n| n.parse::<u64>().unwrap())
            .sum();
        assert_eq!(nr_free, k.page_alloc.total_free());
        let buddy: u64 = crate::procfs::buddyinfo_pages(&crate::procfs::buddyinfo(&k));
        assert_eq!(buddy, nr_free);
        let blocks: u64 = text
            .lines()
            .filter_map(|l| l.strip_prefix("      nr_free_pages_blocks "))
            .map(|n| n.parse::<u64>().unwrap())
            .sum();
        let expected: u64 = k
            .page_alloc
            .zones
            .iter()
            .flat_map(|z| z.free_area.iter().enumerate().skip(9))
            .map(|(o, a)| a.nr_free() << o)
            .sum();
        assert_eq!(blocks, expected);
    }
}
