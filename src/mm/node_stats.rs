//! The per-node and global counters the /proc renderers read that do not
//! live in the page allocator (Linux: `enum node_stat_item`, the zone
//! counters kept outside `struct zone`'s free lists, the swap and commit
//! totals of `si_swapinfo` / `vm_committed_as`, and the scheduler counters
//! of /proc/stat).
//!
//! This is the integration point between subsystems and the renderers of
//! /proc/meminfo, /proc/vmstat, /proc/zoneinfo and /proc/stat: a subsystem
//! that starts to simulate something replaces the `0` of its field in
//! [`Kernel::node_stats`] by the real computation. Every field is in pages
//! unless its name or doc says otherwise. A field stays 0 only while
//! nothing in the simulation produces it: the renderers never invent a
//! number.

use super::Kernel;

/// A snapshot of the node's counters (the machine has one node, node 0).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeStats {
    // ---- LRU lists (mm/vmscan.c) -------------------------------------
    /// NR_INACTIVE_ANON: anon pages on the inactive LRU lists.
    pub nr_inactive_anon: u64,
    /// NR_ACTIVE_ANON: anon pages on the active LRU lists.
    pub nr_active_anon: u64,
    /// NR_INACTIVE_FILE: page-cache pages on the inactive lists.
    pub nr_inactive_file: u64,
    /// NR_ACTIVE_FILE: page-cache pages on the active lists.
    pub nr_active_file: u64,
    /// NR_UNEVICTABLE: pages on the unevictable list (mlocked, ramfs).
    pub nr_unevictable: u64,
    /// NR_ZONE_INACTIVE_ANON per zone index.
    pub nr_zone_inactive_anon: Vec<u64>,
    /// NR_ZONE_ACTIVE_ANON per zone index.
    pub nr_zone_active_anon: Vec<u64>,
    /// NR_ZONE_INACTIVE_FILE per zone index.
    pub nr_zone_inactive_file: Vec<u64>,
    /// NR_ZONE_ACTIVE_FILE per zone index.
    pub nr_zone_active_file: Vec<u64>,
    /// NR_ZONE_UNEVICTABLE per zone index.
    pub nr_zone_unevictable: Vec<u64>,
    /// NR_MLOCK per zone index (a zone counter in Linux).
    pub nr_mlock: Vec<u64>,

    // ---- anon, file and swap-cache pages -------------------------------
    /// NR_ANON_MAPPED: anon pages mapped into some process (AnonPages).
    pub nr_anon_pages: u64,
    /// NR_FILE_MAPPED: page-cache pages mapped into some process.
    pub nr_mapped: u64,
    /// NR_FILE_PAGES: page cache, shmem and swap cache together.
    pub nr_file_pages: u64,
    /// Block-device page cache (Buffers).
    pub nr_buffers: u64,
    /// NR_SHMEM: shmem/tmpfs pages.
    pub nr_shmem: u64,
    /// NR_FILE_DIRTY.
    pub nr_dirty: u64,
    /// NR_WRITEBACK.
    pub nr_writeback: u64,
    /// NR_SWAPCACHE: pages in the swap cache.
    pub nr_swapcached: u64,
    /// NR_VMSCAN_WRITE: pages written by reclaim's `pageout()`.
    pub nr_vmscan_write: u64,
    /// NR_DIRTIED: page-cache pages dirtied since boot.
    pub nr_dirtied: u64,
    /// NR_WRITTEN: pages whose writeback completed.
    pub nr_written: u64,
    /// WORKINGSET_REFAULT_ANON.
    pub workingset_refault_anon: u64,

    // ---- kernel memory ---------------------------------------------------
    /// NR_SLAB_RECLAIMABLE_B in pages (SReclaimable).
    pub nr_slab_reclaimable: u64,
    /// NR_SLAB_UNRECLAIMABLE_B in pages (SUnreclaim).
    pub nr_slab_unreclaimable: u64,
    /// NR_KERNEL_STACK_KB: kernel stacks, in **kB**.
    pub nr_kernel_stack: u64,
    /// NR_PAGETABLE: page-table pages.
    pub nr_page_table_pages: u64,
    /// NR_KERNEL_MISC_RECLAIMABLE: other reclaimable kernel pages.
    pub kernel_misc_reclaimable: u64,
    /// VmallocUsed, in kB.
    pub vmalloc_used_kb: u64,
    /// Percpu: memory of the per-cpu allocator, in kB.
    pub percpu_kb: u64,
    /// Huge pages reserved by hugetlbfs (hugetlb_total_pages()).
    pub hugetlb_total_pages: u64,

    // ---- swap and overcommit ---------------------------------------------
    /// total_swap_pages: usable pages of the active swap areas (SwapTotal).
    pub swap_total_pages: u64,
    /// nr_swap_pages: free swap slots (SwapFree).
    pub swap_free_pages: u64,
    /// vm_committed_as: pages promised to accountable mappings (Committed_AS).
    pub committed_as_pages: u64,

    // ---- reclaim state ---------------------------------------------------
    /// kswapd gave up: `pgdat->kswapd_failures >= MAX_RECLAIM_RETRIES`.
    pub node_unreclaimable: bool,

    // ---- scheduler (/proc/stat) --------------------------------------------
    /// Context switches since boot (ctxt).
    pub nr_context_switches: u64,
    /// Runnable tasks (procs_running); the reader itself is one.
    pub nr_running: u64,
    /// Tasks in uninterruptible I/O sleep (procs_blocked).
    pub nr_iowait: u64,
}

impl NodeStats {
    /// Σ NR_MLOCK over the zones (meminfo Mlocked).
    pub fn total_mlock(&self) -> u64 {
        self.nr_mlock.iter().sum()
    }

    /// One zone's value of a per-zone vector (0 past its end).
    pub fn zone(values: &[u64], zone_index: usize) -> u64 {
        values.get(zone_index).copied().unwrap_or(0)
    }
}

impl Kernel {
    /// Collect the node's counters from the subsystems. One line per
    /// field: a subsystem that lands replaces its `0` by the computation
    /// and says where the number comes from.
    pub fn node_stats(&self) -> NodeStats {
        let zones = self.page_alloc.zones.len();
        // Per-zone anon LRU sizes (vmscan.rs keeps one list pair per zone).
        let per_zone = |f: fn(&super::vmscan::ZoneLru) -> u64| -> Vec<u64> {
            (0..zones)
                .map(|i| self.lru.zones.get(i).map(f).unwrap_or(0))
                .collect()
        };
        let nr_zone_active_anon = per_zone(|z| z.active_anon.len());
        let nr_zone_inactive_anon = per_zone(|z| z.inactive_anon.len());
        let nr_active_anon: u64 = nr_zone_active_anon.iter().sum();
        let nr_inactive_anon: u64 = nr_zone_inactive_anon.iter().sum();
        // swap_state.rs: pages in the swap cache (NR_SWAPCACHE).
        let nr_swapcached = self.swap.cache.len();
        NodeStats {
            // vmscan.rs: the anon LRU lists.
            nr_inactive_anon,
            nr_active_anon,
            // vmscan.rs: the file LRU lists (the page cache).
            nr_inactive_file: self.lru.inactive_file(),
            nr_active_file: self.lru.active_file(),
            // Nothing is mlocked yet.
            nr_unevictable: 0,
            nr_zone_inactive_anon,
            nr_zone_active_anon,
            nr_zone_inactive_file: per_zone(|z| z.inactive_file.len()),
            nr_zone_active_file: per_zone(|z| z.active_file.len()),
            nr_zone_unevictable: vec![0; zones],
            nr_mlock: vec![0; zones],
            // process.rs: Σ RssAnon (MM_ANONPAGES) of the processes.
            nr_anon_pages: self.anon_mapped_pages(),
            // rmap.rs: page-cache pages mapped by at least one PTE.
            nr_mapped: self.vfs.stats.nr_mapped + self.shmem.nr_mapped,
            // NR_FILE_PAGES: the page cache (filemap.rs) and the swap cache
            // (Linux add_to_swap_cache).
            // and shmem (shmem.rs: `shmem_add_to_page_cache` counts
            // NR_FILE_PAGES and NR_SHMEM).
            nr_file_pages: self.vfs.stats.nr_pages + nr_swapcached + self.shmem.nr_shmem,
            // buffer.rs: the page cache of /dev/sda1 itself (part of
            // nr_file_pages).
            nr_buffers: self.nr_buffers(),
            // shmem.rs: pages of the shmem objects' indexes.
            nr_shmem: self.shmem.nr_shmem,
            // page_writeback.rs: dirty page-cache pages; writes in flight
            // to the disk (page cache) and to swap (swap_state.rs).
            nr_dirty: self.vfs.stats.nr_dirty,
            nr_writeback: self.vfs.stats.nr_writeback + self.swap.cache.nr_writeback(self.clock_ns),
            nr_swapcached,
            // Every swap write comes from pageout() in reclaim (kswapd,
            // direct, proactive, MADV_PAGEOUT); reclaim never writes
            // page-cache pages (the flusher does).
            nr_vmscan_write: self.events.pswpout,
            nr_written: self.events.pswpout + self.vfs.stats.nr_written,
            nr_dirtied: self.vfs.stats.nr_dirtied,
            // mm/vmstat.rs event counters.
            workingset_refault_anon: self.events.workingset_refault_anon,
            // slab.rs: pages of the slabs of SLAB_RECLAIM_ACCOUNT caches
            // and of the others (kmalloc_large blocks are not counted).
            nr_slab_reclaimable: self.slab.nr_slab_reclaimable(),
            nr_slab_unreclaimable: self.slab.nr_slab_unreclaimable(),
            // process.rs: one THREAD_SIZE stack per process (kB).
            nr_kernel_stack: self.kernel_stack_kb(),
            // process.rs: every page-table page, PGDs included.
            nr_page_table_pages: self.page_table_pages(),
            // No other reclaimable kernel memory.
            kernel_misc_reclaimable: 0,
            // No vmalloc or per-cpu allocations are simulated.
            vmalloc_used_kb: 0,
            percpu_kb: 0,
            // No hugetlbfs pool.
            hugetlb_total_pages: 0,
            // swapfile.rs: the active swap areas.
            swap_total_pages: self.swap.total_pages(),
            swap_free_pages: self.swap.free_pages(),
            // mmap.rs: pages of VM_ACCOUNT mappings (vm_committed_as).
            committed_as_pages: self.committed_as(),
            // kswapd failures are not tracked yet.
            node_unreclaimable: false,
            // cputime.rs: every switch between simulated tasks.
            nr_context_switches: self.sched.nr_switches,
            // The task reading the file; between commands nothing else
            // runs or waits (the simulation is serial).
            nr_running: 1,
            nr_iowait: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::mm::MachineConfig;

    #[test]
    fn fresh_machine_has_per_zone_vectors_and_empty_lists() {
        let k = crate::ctl::Machine::boot(MachineConfig::default()).unwrap();
        k.check_invariants().unwrap();
        let s = k.node_stats();
        let zones = k.page_alloc.zones.len();
        for v in [
            &s.nr_zone_active_anon,
            &s.nr_zone_inactive_anon,
            &s.nr_zone_unevictable,
            &s.nr_mlock,
        ] {
            assert_eq!(v.len(), zones);
        }
        // init's three stack pages.
        assert_eq!(s.nr_active_anon + s.nr_inactive_anon, 3);
        assert_eq!(s.nr_anon_pages, 3);
        assert_eq!(s.swap_total_pages, 0);
        assert_eq!(s.nr_running, 1);
        assert_eq!(super::NodeStats::zone(&s.nr_mlock, zones + 3), 0);
    }
}
