//! /proc/vmstat (mm/vmstat.c `vmstat_start` / `vmstat_show`), and the
//! counter lists it shares with /proc/zoneinfo.
//!
//! One `"%s %lu\n"` line per counter, in the kernel's `vmstat_text` order:
//! zone counters summed over the zones, NUMA events, node counters, the
//! four system-wide `vm_stat` items, the event counters, and the constant
//! `nr_unstable 0`. Which lines exist depends on the kernel configuration;
//! [`KernelConfig`] says which options the simulated kernel of each
//! architecture is built with.

use std::fmt::Write;

use crate::mm::Kernel;
use crate::mm::node_stats::NodeStats;
use crate::mm::page_alloc::{PageAllocator, ZoneType};
use crate::mm::types::{Arch, PAGE_SIZE};

/// The configuration options that decide which counters Linux prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelConfig {
    /// CONFIG_NUMA: numa_* zone events, zone_reclaim_* events.
    pub numa: bool,
    /// CONFIG_NUMA_BALANCING: pgpromote_* node counters, numa_pte_* events.
    pub numa_balancing: bool,
    /// CONFIG_TRANSPARENT_HUGEPAGE: thp_* events, the *HugePages meminfo lines.
    pub thp: bool,
    /// CONFIG_HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD: thp_split_pud.
    pub thp_pud: bool,
    /// CONFIG_HIGHMEM: HighTotal/HighFree/LowTotal/LowFree in meminfo.
    pub highmem: bool,
}

impl KernelConfig {
    /// x86_64 is configured like the captured 6.18 kernel. i386 is the
    /// non-PAE build: since 6.15 32-bit x86 has no NUMA (hence no NUMA
    /// balancing), and THP needs PAE on 32-bit, so those counters do not
    /// exist there; HIGHMEM does.
    pub fn for_arch(arch: Arch) -> KernelConfig {
        match arch {
            Arch::X86_64 => KernelConfig {
                numa: true,
                numa_balancing: true,
                thp: true,
                thp_pud: true,
                highmem: false,
            },
            Arch::I386 => KernelConfig {
                numa: false,
                numa_balancing: false,
                thp: false,
                thp_pud: false,
                highmem: true,
            },
        }
    }
}

/// `vm_dirty_ratio` default (percent of dirtyable memory).
pub const VM_DIRTY_RATIO: u64 = 20;
/// `dirty_background_ratio` default.
pub const DIRTY_BACKGROUND_RATIO: u64 = 10;

/// `global_dirtyable_memory` (mm/page-writeback.c): free pages minus the
/// kernel's reserve, plus the file LRU, minus what lies in highmem (which
/// is not dirtyable by default), plus one so it is never 0.
pub fn global_dirtyable_memory(
    free: u64,
    totalreserve: u64,
    file_lru: u64,
    highmem_dirtyable: u64,
) -> u64 {
    let mut x = free - free.min(totalreserve);
    x = x.saturating_add(file_lru);
    x -= highmem_dirtyable.min(x);
    x.saturating_add(1)
}

/// `highmem_dirtyable_memory`: per populated highmem zone, free pages above
/// the high watermark plus its file LRU pages, capped at `total`.
pub fn highmem_dirtyable_memory(page_alloc: &PageAllocator, total: u64) -> u64 {
    let x: u64 = page_alloc
        .zones
        .iter()
        .filter(|z| z.zone_type == ZoneType::HighMem && z.is_populated())
        // No page cache is simulated: the zone's file LRU is empty.
        .map(|z| z.free_pages - z.free_pages.min(z.watermark.high))
        .sum();
    x.min(total)
}

/// `domain_dirty_limits` with the default ratios and no `*_bytes`
/// settings: `(dirty_thresh, background_thresh)` in pages. The ratios are
/// first converted to parts per PAGE_SIZE, as the kernel does for
/// precision, so the results match Linux to the page.
pub fn dirty_limits(dirtyable: u64) -> (u64, u64) {
    let ratio = VM_DIRTY_RATIO * PAGE_SIZE / 100;
    let bg_ratio = DIRTY_BACKGROUND_RATIO * PAGE_SIZE / 100;
    let mul = |r: u64| ((r as u128 * dirtyable as u128) / PAGE_SIZE as u128) as u64;
    let thresh = mul(ratio);
    let mut bg_thresh = mul(bg_ratio);
    if bg_thresh >= thresh {
        bg_thresh = thresh / 2;
    }
    (thresh, bg_thresh)
}

/// The zone counters (`enum zone_stat_item`) of zone `index`, in order.
pub fn zone_stat_items(
    kernel: &Kernel,
    stats: &NodeStats,
    index: usize,
) -> Vec<(&'static str, u64)> {
    let pa = &kernel.page_alloc;
    let zone = &pa.zones[index];
    vec![
        ("nr_free_pages", zone.free_pages),
        (
            "nr_free_pages_blocks",
            zone.free_pages_in_blocks(pa.pageblock_order),
        ),
        (
            "nr_zone_inactive_anon",
            NodeStats::zone(&stats.nr_zone_inactive_anon, index),
        ),
        (
            "nr_zone_active_anon",
            NodeStats::zone(&stats.nr_zone_active_anon, index),
        ),
        (
            "nr_zone_inactive_file",
            NodeStats::zone(&stats.nr_zone_inactive_file, index),
        ),
        (
            "nr_zone_active_file",
            NodeStats::zone(&stats.nr_zone_active_file, index),
        ),
        (
            "nr_zone_unevictable",
            NodeStats::zone(&stats.nr_zone_unevictable, index),
        ),
        // Dirty + writeback file pages of the zone.
        (
            "nr_zone_write_pending",
            kernel.vfs.stats.zone_dirty.get(index).copied().unwrap_or(0)
                + kernel
                    .vfs
                    .stats
                    .zone_writeback
                    .get(index)
                    .copied()
                    .unwrap_or(0),
        ),
        ("nr_mlock", NodeStats::zone(&stats.nr_mlock, index)),
        // No zsmalloc (zswap/zram) pool.
        ("nr_zspages", 0),
        // No CMA area.
        ("nr_free_cma", 0),
    ]
}

/// The NUMA events (`enum numa_stat_item`) of zone `index`; empty without
/// CONFIG_NUMA. With one node every allocation is a local hit.
pub fn numa_event_items(kernel: &Kernel, index: usize) -> Vec<(&'static str, u64)> {
    if !KernelConfig::for_arch(kernel.config.arch).numa {
        return Vec::new();
    }
    let hits = kernel.page_alloc.zones[index].numa_hit;
    vec![
        ("numa_hit", hits),
        ("numa_miss", 0),
        ("numa_foreign", 0),
        // No interleave mempolicy is simulated.
        ("numa_interleave", 0),
        ("numa_local", hits),
        ("numa_other", 0),
    ]
}

/// The node counters (`enum node_stat_item`), in order, as zoneinfo's
/// "per-node stats" and vmstat print them.
pub fn node_stat_items(kernel: &Kernel, s: &NodeStats) -> Vec<(&'static str, u64)> {
    let cfg = KernelConfig::for_arch(kernel.config.arch);
    let mut items = vec![
        ("nr_inactive_anon", s.nr_inactive_anon),
        ("nr_active_anon", s.nr_active_anon),
        ("nr_inactive_file", s.nr_inactive_file),
        ("nr_active_file", s.nr_active_file),
        ("nr_unevictable", s.nr_unevictable),
        ("nr_slab_reclaimable", s.nr_slab_reclaimable),
        ("nr_slab_unreclaimable", s.nr_slab_unreclaimable),
        // Pages isolated by reclaim or migration at this instant: none
        // between commands.
        ("nr_isolated_anon", 0),
        ("nr_isolated_file", 0),
        ("workingset_nodes", kernel.vfs.workingset_nodes()),
        ("workingset_refault_anon", s.workingset_refault_anon),
        (
            "workingset_refault_file",
            kernel.events.workingset_refault_file,
        ),
        (
            "workingset_activate_anon",
            kernel.events.workingset_activate_anon,
        ),
        (
            "workingset_activate_file",
            kernel.events.workingset_activate_file,
        ),
        ("workingset_restore_anon", 0),
        (
            "workingset_restore_file",
            kernel.events.workingset_restore_file,
        ),
        ("workingset_nodereclaim", 0),
        ("nr_anon_pages", s.nr_anon_pages),
        ("nr_mapped", s.nr_mapped),
        ("nr_file_pages", s.nr_file_pages),
        ("nr_dirty", s.nr_dirty),
        ("nr_writeback", s.nr_writeback),
        ("nr_shmem", s.nr_shmem),
        // Huge-page counters (in huge pages): no THP is simulated.
        ("nr_shmem_hugepages", 0),
        ("nr_shmem_pmdmapped", 0),
        ("nr_file_hugepages", 0),
        ("nr_file_pmdmapped", 0),
        ("nr_anon_transparent_hugepages", 0),
        ("nr_vmscan_write", s.nr_vmscan_write),
        (
            "nr_vmscan_immediate_reclaim",
            kernel.vfs.stats.nr_vmscan_immediate,
        ),
        ("nr_dirtied", s.nr_dirtied),
        ("nr_written", s.nr_written),
        ("nr_throttled_written", 0),
        ("nr_kernel_misc_reclaimable", s.kernel_misc_reclaimable),
        ("nr_foll_pin_acquired", 0),
        ("nr_foll_pin_released", 0),
        ("nr_kernel_stack", s.nr_kernel_stack),
        ("nr_page_table_pages", s.nr_page_table_pages),
        ("nr_sec_page_table_pages", 0),
        ("nr_iommu_pages", 0),
        ("nr_swapcached", s.nr_swapcached),
    ];
    if cfg.numa_balancing {
        items.extend([
            ("pgpromote_success", 0),
            ("pgpromote_candidate", 0),
            ("pgpromote_candidate_nrl", 0),
        ]);
    }
    items.extend([
        // One node, no memory tiers: nothing is demoted.
        ("pgdemote_kswapd", 0),
        ("pgdemote_direct", 0),
        ("pgdemote_khugepaged", 0),
        ("pgdemote_proactive", 0),
        ("nr_hugetlb", s.hugetlb_total_pages),
        ("nr_balloon_pages", 0),
        ("nr_kernel_file_pages", 0),
    ]);
    items
}

/// The event counters (`enum vm_event_item`), in order; zone-suffixed
/// counters follow the architecture's zones (`pgalloc_high` on i386).
pub fn vm_event_items(kernel: &Kernel) -> Vec<(String, u64)> {
    let cfg = KernelConfig::for_arch(kernel.config.arch);
    let e = &kernel.events;
    let zones = &kernel.page_alloc.zones;
    let mut items: Vec<(String, u64)> = Vec::with_capacity(160);
    let mut add = |name: &str, value: u64| items.push((name.to_string(), value));
    add("pgpgin", e.pgpgin);
    add("pgpgout", e.pgpgout);
    add("pswpin", e.pswpin);
    add("pswpout", e.pswpout);
    for zone in zones {
        add(
            &format!("pgalloc_{}", zone.zone_type.vmstat_suffix()),
            zone.pgalloc,
        );
    }
    for zone in zones {
        add(
            &format!("allocstall_{}", zone.zone_type.vmstat_suffix()),
            zone.allocstall,
        );
    }
    // Reclaim never skips pages of ineligible zones: the LRU is per zone.
    for zone in zones {
        add(&format!("pgskip_{}", zone.zone_type.vmstat_suffix()), 0);
    }
    add("pgfree", kernel.page_alloc.pgfree);
    add("pgactivate", e.pgactivate);
    add("pgdeactivate", e.pgdeactivate);
    add("pglazyfree", 0);
    add("pgfault", e.pgfault);
    add("pgmajfault", e.pgmajfault);
    add("pglazyfreed", 0);
    add("pgrefill", e.pgrefill);
    add("pgreuse", 0);
    add("pgsteal_kswapd", e.pgsteal_kswapd);
    add("pgsteal_direct", e.pgsteal_direct);
    add("pgsteal_khugepaged", 0);
    add("pgsteal_proactive", e.pgsteal_proactive);
    add("pgscan_kswapd", e.pgscan_kswapd);
    add("pgscan_direct", e.pgscan_direct);
    add("pgscan_khugepaged", 0);
    add("pgscan_proactive", e.pgscan_proactive);
    add("pgscan_direct_throttle", 0);
    add("pgscan_anon", e.pgscan_anon);
    add("pgscan_file", e.pgscan_file);
    add("pgsteal_anon", e.pgsteal_anon);
    add("pgsteal_file", e.pgsteal_file);
    if cfg.numa {
        add("zone_reclaim_success", 0);
        add("zone_reclaim_failed", 0);
    }
    add("pginodesteal", 0);
    add("slabs_scanned", e.slabs_scanned);
    add("kswapd_inodesteal", 0);
    add(
        "kswapd_low_wmark_hit_quickly",
        e.kswapd_low_wmark_hit_quickly,
    );
    add(
        "kswapd_high_wmark_hit_quickly",
        e.kswapd_high_wmark_hit_quickly,
    );
    add("pageoutrun", e.pageoutrun);
    add("pgrotated", kernel.vfs.stats.pgrotated);
    add("drop_pagecache", e.drop_pagecache);
    add("drop_slab", e.drop_slab);
    add("oom_kill", e.oom_kill);
    if cfg.numa_balancing {
        for name in [
            "numa_pte_updates",
            "numa_huge_pte_updates",
            "numa_hint_faults",
            "numa_hint_faults_local",
            "numa_pages_migrated",
        ] {
            add(name, 0);
        }
    }
    add("pgmigrate_success", e.pgmigrate_success);
    add("pgmigrate_fail", e.pgmigrate_fail);
    // No THP migrates; no hugetlb pool; nothing is mlocked.
    for name in [
        "thp_migration_success",
        "thp_migration_fail",
        "thp_migration_split",
    ] {
        add(name, 0);
    }
    add("compact_migrate_scanned", e.compact_migrate_scanned);
    add("compact_free_scanned", e.compact_free_scanned);
    add("compact_isolated", e.compact_isolated);
    add("compact_stall", e.compact_stall);
    add("compact_fail", e.compact_fail);
    add("compact_success", e.compact_success);
    add("compact_daemon_wake", e.compact_daemon_wake);
    add(
        "compact_daemon_migrate_scanned",
        e.compact_daemon_migrate_scanned,
    );
    add("compact_daemon_free_scanned", e.compact_daemon_free_scanned);
    for name in [
        "htlb_buddy_alloc_success",
        "htlb_buddy_alloc_fail",
        "unevictable_pgs_culled",
        "unevictable_pgs_scanned",
        "unevictable_pgs_rescued",
        "unevictable_pgs_mlocked",
        "unevictable_pgs_munlocked",
        "unevictable_pgs_cleared",
        "unevictable_pgs_stranded",
    ] {
        add(name, 0);
    }
    if cfg.thp {
        for name in [
            "thp_fault_alloc",
            "thp_fault_fallback",
            "thp_fault_fallback_charge",
            "thp_collapse_alloc",
            "thp_collapse_alloc_failed",
            "thp_file_alloc",
            "thp_file_fallback",
            "thp_file_fallback_charge",
            "thp_file_mapped",
            "thp_split_page",
            "thp_split_page_failed",
            "thp_deferred_split_page",
            "thp_underused_split_page",
            "thp_split_pmd",
            "thp_scan_exceed_none_pte",
            "thp_scan_exceed_swap_pte",
            "thp_scan_exceed_share_pte",
        ] {
            add(name, 0);
        }
        if cfg.thp_pud {
            add("thp_split_pud", 0);
        }
        for name in [
            "thp_zero_page_alloc",
            "thp_zero_page_alloc_failed",
            "thp_swpout",
            "thp_swpout_fallback",
        ] {
            add(name, 0);
        }
    }
    add("balloon_inflate", 0);
    add("balloon_deflate", 0);
    add("balloon_migrate", 0);
    add("swap_ra", e.swap_ra);
    add("swap_ra_hit", e.swap_ra_hit);
    // Zero-filled pages are written to swap like any other.
    add("swpin_zero", 0);
    add("swpout_zero", 0);
    add("ksm_swpin_copy", 0);
    add("cow_ksm", 0);
    add("zswpin", 0);
    add("zswpout", 0);
    add("zswpwb", 0);
    // The direct map is never split or collapsed after boot.
    add("direct_map_level2_splits", 0);
    add("direct_map_level3_splits", 0);
    add("direct_map_level2_collapses", 0);
    add("direct_map_level3_collapses", 0);
    items
}

/// `(nr_dirty_threshold, nr_dirty_background_threshold)` of the machine.
pub fn global_dirty_limits(kernel: &Kernel, stats: &NodeStats) -> (u64, u64) {
    let pa = &kernel.page_alloc;
    let free = pa.total_free();
    let reserve = pa.total_reserve_pages();
    let file = stats.nr_active_file + stats.nr_inactive_file;
    // highmem_dirtyable_memory is applied to the running total (mm/page-writeback.c).
    let before_highmem = global_dirtyable_memory(free, reserve, file, 0) - 1;
    let highmem = highmem_dirtyable_memory(pa, before_highmem);
    dirty_limits(global_dirtyable_memory(free, reserve, file, highmem))
}

/// Render /proc/vmstat.
pub fn vmstat(kernel: &Kernel) -> String {
    let stats = kernel.node_stats();
    let zones = kernel.page_alloc.zones.len();
    let mut out = String::with_capacity(4096);
    let mut line = |name: &str, value: u64| {
        let _ = writeln!(out, "{name} {value}");
    };
    // global_zone_page_state: Σ over the zones.
    let per_zone: Vec<Vec<(&str, u64)>> = (0..zones)
        .map(|i| zone_stat_items(kernel, &stats, i))
        .collect();
    for (item, (name, _)) in per_zone[0].iter().enumerate() {
        line(name, per_zone.iter().map(|z| z[item].1).sum());
    }
    let numa: Vec<Vec<(&str, u64)>> = (0..zones).map(|i| numa_event_items(kernel, i)).collect();
    for (item, (name, _)) in numa[0].iter().enumerate() {
        line(name, numa.iter().map(|z| z[item].1).sum());
    }
    for (name, value) in node_stat_items(kernel, &stats) {
        line(name, value);
    }
    let (thresh, bg_thresh) = global_dirty_limits(kernel, &stats);
    line("nr_dirty_threshold", thresh);
    line("nr_dirty_background_threshold", bg_thresh);
    // The memmap is allocated at boot only (no memory hotplug).
    line("nr_memmap_pages", 0);
    line("nr_memmap_boot_pages", kernel.page_alloc.memmap_pages);
    for (name, value) in vm_event_items(kernel) {
        line(&name, value);
    }
    // Deprecated, always 0 (vmstat_show prints it after the last item).
    line("nr_unstable", 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctl::Scope;

    const CAPTURE: &str = include_str!("../../tests/reference/linux-samples/vmstat");

    fn boot(arch: Arch, mem: u64) -> crate::ctl::Machine {
        crate::mm::boot_checked(arch, mem)
    }

    fn keys(text: &str) -> Vec<String> {
        text.lines()
            .map(|l| l.split(' ').next().unwrap().to_string())
            .collect()
    }

    fn value(text: &str, key: &str) -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no {key}"))
            .parse()
            .unwrap()
    }

    #[test]
    fn x86_64_has_every_key_of_the_capture_in_order() {
        let k = boot(Arch::X86_64, 1 << 30);
        let text = vmstat(&k);
        assert_eq!(keys(&text), keys(CAPTURE));
        assert_eq!(text.lines().count(), 192);
        for line in text.lines() {
            let (name, number) = line.split_once(' ').unwrap();
            assert!(!name.is_empty() && !number.is_empty(), "{line}");
            assert!(number.bytes().all(|b| b.is_ascii_digit()), "{line}");
        }
        assert!(text.ends_with("nr_unstable 0\n"));
        assert!(text.len() < 8192);
    }

    #[test]
    fn i386_follows_its_zones_and_config() {
        let k = boot(Arch::I386, 2 << 30);
        let text = vmstat(&k);
        let got = keys(&text);
        // Zone-suffixed counters follow DMA, Normal, HighMem, Movable.
        let start = got.iter().position(|k| k == "pgalloc_dma").unwrap();
        assert_eq!(
            got[start..start + 12],
            [
                "pgalloc_dma",
                "pgalloc_normal",
                "pgalloc_high",
                "pgalloc_movable",
                "allocstall_dma",
                "allocstall_normal",
                "allocstall_high",
                "allocstall_movable",
                "pgskip_dma",
                "pgskip_normal",
                "pgskip_high",
                "pgskip_movable",
            ]
        );
        // The capture's keys minus what a non-PAE, non-NUMA i386 lacks, in
        // the capture's order.
        let expected: Vec<String> = keys(CAPTURE)
            .into_iter()
            .filter(|k| {
                !(k.starts_with("numa_")
                    || k.starts_with("zone_reclaim_")
                    || k.starts_with("pgpromote_")
                    || (k.starts_with("thp_") && !k.starts_with("thp_migration"))
                    || k.ends_with("_dma32")
                    || k.ends_with("_device"))
            })
            .flat_map(|k| {
                if let Some(stem) = k.strip_suffix("_normal") {
                    vec![k.clone(), format!("{stem}_high")]
                } else {
                    vec![k]
                }
            })
            .collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn counters_follow_the_allocator() {
        let mut k = boot(Arch::X86_64, 1 << 30);
        let before = vmstat(&k);
        k.execute_line(Scope::System, "alloc_pages 2 count=3 tag=a")
            .unwrap();
        k.check_invariants().unwrap();
        let after = vmstat(&k);
        assert_eq!(
            value(&before, "nr_free_pages") - value(&after, "nr_free_pages"),
            12
        );
        assert_eq!(
            value(&after, "pgalloc_dma32"),
            value(&before, "pgalloc_dma32") + 12
        );
        assert_eq!(value(&after, "numa_hit"), value(&before, "numa_hit") + 3);
        assert_eq!(value(&after, "numa_local"), value(&after, "numa_hit"));
        k.execute_line(Scope::System, "free_pages tag=a").unwrap();
        k.check_invariants().unwrap();
        let freed = vmstat(&k);
        assert_eq!(value(&freed, "pgfree"), value(&after, "pgfree") + 12);
        assert_eq!(
            value(&freed, "nr_free_pages"),
            value(&before, "nr_free_pages")
        );
        assert_eq!(value(&freed, "nr_free_pages"), k.page_alloc.total_free());
        assert_eq!(
            value(&freed, "nr_memmap_boot_pages"),
            k.page_alloc.memmap_pages
        );
    }

    /// The capture's thresholds follow from its numbers: MemFree 6098634
    /// pages, totalreserve 30502, file LRU 29881 + 22886 pages.
    #[test]
    fn dirty_thresholds_match_the_capture() {
        let dirtyable = global_dirtyable_memory(6098634, 30502, 29881 + 22886, 0);
        assert_eq!(dirtyable, 6120900);
        assert_eq!(dirty_limits(dirtyable), (1223881, 611193));
        assert_eq!(dirty_limits(1), (0, 0));
    }

    #[test]
    fn dirty_thresholds_are_computed_from_the_state() {
        let k = boot(Arch::X86_64, 1 << 30);
        let text = vmstat(&k);
        let pa = &k.page_alloc;
        let dirtyable = pa.total_free() - pa.total_reserve_pages() + 1;
        assert_eq!(value(&text, "nr_dirty_threshold"), dirtyable * 819 / 4096);
        assert_eq!(
            value(&text, "nr_dirty_background_threshold"),
            dirtyable * 409 / 4096
        );
        // i386: highmem is not dirtyable.
        let k = boot(Arch::I386, 2 << 30);
        let pa = &k.page_alloc;
        let high = pa
            .zones
            .iter()
            .find(|z| z.zone_type == ZoneType::HighMem)
            .unwrap();
        let highmem = high.free_pages - high.watermark.high;
        let dirtyable = pa.total_free() - pa.total_reserve_pages() - highmem + 1;
        let text = vmstat(&k);
        assert_eq!(value(&text, "nr_dirty_threshold"), dirtyable * 819 / 4096);
    }
}
