//! Event counters of /proc/vmstat (Linux: mm/vmstat.c, vm_event_item.h).
//! State counters (nr_*) are derived from the subsystems when rendered.

/// Monotonic event counters the simulation increments.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VmEvents {
    /// Page faults handled (minor and major).
    pub pgfault: u64,
    /// `echo 1|3 > drop_caches`.
    pub drop_pagecache: u64,
    /// `echo 2|3 > drop_caches`.
    pub drop_slab: u64,
    /// File pages scanned by reclaim.
    pub pgscan_file: u64,
    /// File pages reclaimed.
    pub pgsteal_file: u64,
    /// Faults that needed I/O (swap-in).
    pub pgmajfault: u64,
    /// Pages read from swap.
    pub pswpin: u64,
    /// Pages written to swap.
    pub pswpout: u64,
    /// KiB read from block devices (swap included).
    pub pgpgin: u64,
    /// KiB written to block devices.
    pub pgpgout: u64,
    /// Pages moved inactive → active.
    pub pgactivate: u64,
    /// Pages moved active → inactive.
    pub pgdeactivate: u64,
    /// Active-list pages scanned.
    pub pgrefill: u64,
    /// Pages scanned by kswapd.
    pub pgscan_kswapd: u64,
    /// Pages scanned by direct reclaim.
    pub pgscan_direct: u64,
    /// Pages scanned by proactive reclaim.
    pub pgscan_proactive: u64,
    /// Pages reclaimed by kswapd.
    pub pgsteal_kswapd: u64,
    /// Pages reclaimed by direct reclaim.
    pub pgsteal_direct: u64,
    /// Pages reclaimed by proactive reclaim.
    pub pgsteal_proactive: u64,
    /// Anon pages scanned.
    pub pgscan_anon: u64,
    /// Anon pages reclaimed.
    pub pgsteal_anon: u64,
    /// Slab objects scanned by shrinkers.
    pub slabs_scanned: u64,
    /// kswapd balance passes.
    pub pageoutrun: u64,
    /// kswapd woken during its nap.
    pub kswapd_low_wmark_hit_quickly: u64,
    /// kswapd not balanced after its nap.
    pub kswapd_high_wmark_hit_quickly: u64,
    /// OOM kills.
    pub oom_kill: u64,
    /// Swap readahead pages.
    pub swap_ra: u64,
    /// Swap readahead hits.
    pub swap_ra_hit: u64,
    /// Anon refaults.
    pub workingset_refault_anon: u64,
    /// Page-cache pages read again after reclaim evicted them.
    pub workingset_refault_file: u64,
    /// Anon refaults close enough to be activated at once.
    pub workingset_activate_anon: u64,
    /// Of those, refaults close enough to be activated at once.
    pub workingset_activate_file: u64,
    /// Refaults of pages that had been active before their eviction
    /// (WORKINGSET_RESTORE_FILE).
    pub workingset_restore_file: u64,
    /// Pages migrated.
    pub pgmigrate_success: u64,
    /// Pages that could not be migrated.
    pub pgmigrate_fail: u64,
    /// Pages the migrate scanner looked at.
    pub compact_migrate_scanned: u64,
    /// Pages the free scanner looked at.
    pub compact_free_scanned: u64,
    /// Pages isolated by either scanner.
    pub compact_isolated: u64,
    /// Direct compaction attempts that compacted a zone.
    pub compact_stall: u64,
    /// Of those, the ones after which the allocation still failed.
    pub compact_fail: u64,
    /// Of those, the ones after which it succeeded.
    pub compact_success: u64,
    /// kcompactd woken for work.
    pub compact_daemon_wake: u64,
    /// Pages kcompactd's migrate scanner looked at.
    pub compact_daemon_migrate_scanned: u64,
    /// Pages kcompactd's free scanner looked at.
    pub compact_daemon_free_scanned: u64,
}
