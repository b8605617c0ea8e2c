//! Page reclaim (Linux: mm/vmscan.c, mm/swap.c): the anon LRU lists.
//!
//! Every user page sits on its zone's inactive or active anon list, linked
//! through the frame links (no heap object per page). Touches set the
//! referenced bit (the PTE "young" bit of real hardware); reclaim gives a
//! referenced page a second chance instead of evicting it.

use super::Kernel;
use super::cputime;
use super::error::{MmError, MmResult};
use super::filemap::FileReclaim;
use super::page_alloc::{FLAG_ACTIVE, FLAG_LRU, FLAG_REFERENCED, FrameList};
use super::types::{Order, Pfn};

/// The anon LRU lists of one zone.
#[derive(Clone, Debug, Default)]
pub struct ZoneLru {
    /// Recently used anon pages.
    pub active_anon: FrameList,
    /// Candidates for reclaim; the tail is the oldest.
    pub inactive_anon: FrameList,
    /// Page-cache pages used more than once.
    pub active_file: FrameList,
    /// Page-cache pages: new ones, and candidates for reclaim.
    pub inactive_file: FrameList,
}

impl ZoneLru {
    /// The (active, inactive) lists of the file or the anon LRU.
    pub fn lists_mut(&mut self, file: bool) -> (&mut FrameList, &mut FrameList) {
        if file {
            (&mut self.active_file, &mut self.inactive_file)
        } else {
            (&mut self.active_anon, &mut self.inactive_anon)
        }
    }
}

/// LRU lists of every zone, indexed like `PageAllocator::zones`, and the
/// state of kswapd.
#[derive(Clone, Debug, Default)]
pub struct Lru {
    /// Per-zone lists.
    pub zones: Vec<ZoneLru>,
    /// kswapd has been woken and will run at the end of the command.
    pub kswapd_woken: bool,
    /// Highest zone index of the allocations that woke kswapd.
    pub kswapd_highest_zone: usize,
    /// Consecutive kswapd runs that reclaimed nothing.
    pub kswapd_failures: u32,
    /// A `balance_pgdat` run was cut off by its deadline and continues.
    pub kswapd_running: bool,
}

impl Lru {
    /// Empty lists for `zones` zones.
    pub fn new(zones: usize) -> Lru {
        Lru {
            zones: vec![ZoneLru::default(); zones],
            ..Lru::default()
        }
    }

    /// Σ active anon pages.
    pub fn active_anon(&self) -> u64 {
        self.zones.iter().map(|z| z.active_anon.len()).sum()
    }

    /// Σ inactive anon pages.
    pub fn inactive_anon(&self) -> u64 {
        self.zones.iter().map(|z| z.inactive_anon.len()).sum()
    }

    /// Σ active file pages.
    pub fn active_file(&self) -> u64 {
        self.zones.iter().map(|z| z.active_file.len()).sum()
    }

    /// Σ inactive file pages.
    pub fn inactive_file(&self) -> u64 {
        self.zones.iter().map(|z| z.inactive_file.len()).sum()
    }
}

impl Kernel {
    /// `folio_add_lru_vma`: a new anon page goes to the head of its zone's
    /// inactive list (since Linux 5.9 new anon pages start inactive).
    pub fn lru_add_anon(&mut self, pfn: Pfn) {
        self.lru_add_inactive(pfn, false);
    }

    /// `filemap_add_folio`'s LRU step: a new page-cache page goes to the
    /// head of its zone's inactive file list.
    pub fn lru_add_file(&mut self, pfn: Pfn) {
        self.lru_add_inactive(pfn, true);
    }

    /// A new page, not referenced, to the head of its zone's inactive
    /// list (file or anon).
    fn lru_add_inactive(&mut self, pfn: Pfn, file: bool) {
        let zone = self
            .page_alloc
            .zone_of(pfn)
            .expect("user page lies in a zone");
        let frames = &mut self.page_alloc.frames;
        frames.set_flag(pfn, FLAG_ACTIVE | FLAG_REFERENCED, false);
        frames.set_flag(pfn, FLAG_LRU, true);
        self.lru.zones[zone]
            .lists_mut(file)
            .1
            .push_head(frames, pfn);
    }

    /// A page-cache page just added to the inactive list goes to the
    /// active one instead (a refault's `folio_set_active` before
    /// `folio_add_lru`; no PGACTIVATE).
    pub fn lru_activate_new_file(&mut self, pfn: Pfn) {
        let zone = self
            .page_alloc
            .zone_of(pfn)
            .expect("page-cache page lies in a zone");
        let frames = &mut self.page_alloc.frames;
        let lists = &mut self.lru.zones[zone];
        lists.inactive_file.remove(frames, pfn);
        frames.set_flag(pfn, FLAG_ACTIVE, true);
        lists.active_file.push_head(frames, pfn);
    }

    /// Is `pfn` a page-cache page (on the file lists)?
    fn is_file_page(&self, pfn: Pfn) -> bool {
        self.page_alloc.frames.kind(pfn) == super::page_alloc::PageKind::PageCache
    }

    /// Take a page off whichever LRU list holds it (before it is freed).
    pub fn lru_del(&mut self, pfn: Pfn) {
        let frames = &mut self.page_alloc.frames;
        if !frames.has_flag(pfn, FLAG_LRU) {
            return;
        }
        let zone = self
            .page_alloc
            .zone_of(pfn)
            .expect("LRU page lies in a zone");
        let file = self.is_file_page(pfn);
        let frames = &mut self.page_alloc.frames;
        let (active, inactive) = self.lru.zones[zone].lists_mut(file);
        if frames.has_flag(pfn, FLAG_ACTIVE) {
            active.remove(frames, pfn);
        } else {
            inactive.remove(frames, pfn);
        }
        frames.set_flag(pfn, FLAG_LRU | FLAG_ACTIVE | FLAG_REFERENCED, false);
    }

    /// `folio_mark_accessed`: a touch sets the referenced bit; a second
    /// access of an inactive page-cache page (read or write through the
    /// file system) activates it at once.
    pub fn mark_page_accessed(&mut self, pfn: Pfn) {
        let frames = &mut self.page_alloc.frames;
        if frames.kind(pfn) == super::page_alloc::PageKind::PageCache
            && frames.has_flag(pfn, FLAG_REFERENCED)
            && frames.has_flag(pfn, FLAG_LRU)
            && !frames.has_flag(pfn, FLAG_ACTIVE)
        {
            let zone = self
                .page_alloc
                .zone_of(pfn)
                .expect("page-cache page lies in a zone");
            let frames = &mut self.page_alloc.frames;
            let lists = &mut self.lru.zones[zone];
            lists.inactive_file.remove(frames, pfn);
            frames.set_flag(pfn, FLAG_REFERENCED, false);
            frames.set_flag(pfn, FLAG_ACTIVE, true);
            lists.active_file.push_head(frames, pfn);
            self.events.pgactivate += 1;
            // workingset_activation: activations age the nonresident
            // clock as evictions do, so refault distances compare with
            // the active list's size.
            self.vfs.stats.nonresident_age += 1;
            return;
        }
        self.page_alloc.frames.set_flag(pfn, FLAG_REFERENCED, true);
    }

    /// Check that the LRU lists hold exactly the frames flagged as on them.
    pub fn check_lru(&self) -> Result<(), String> {
        let frames = &self.page_alloc.frames;
        for (zone, lists) in self.lru.zones.iter().enumerate() {
            for (list, active) in [
                (&lists.active_anon, true),
                (&lists.inactive_anon, false),
                (&lists.active_file, true),
                (&lists.inactive_file, false),
            ] {
                let mut cursor = list.head();
                let mut seen = 0u64;
                while let Some(pfn) = cursor {
                    if !frames.has_flag(pfn, FLAG_LRU)
                        || frames.has_flag(pfn, FLAG_ACTIVE) != active
                        || self.page_alloc.zone_of(pfn) != Some(zone)
                    {
                        return Err(format!("LRU list of zone {zone} holds stray frame {pfn}"));
                    }
                    seen += 1;
                    if seen > list.len() {
                        return Err(format!("LRU list of zone {zone} is cyclic"));
                    }
                    cursor = frames.next(pfn);
                }
                if seen != list.len() {
                    return Err(format!("LRU list of zone {zone} length mismatch"));
                }
            }
        }
        Ok(())
    }
}

/// Pages reclaimed per batch (SWAP_CLUSTER_MAX).
pub const SWAP_CLUSTER_MAX: u64 = 32;
/// Lowest reclaim priority: a full scan of the lists (DEF_PRIORITY is 12).
pub const DEF_PRIORITY: u32 = 12;
/// kswapd gives up after this many runs without progress.
pub const MAX_RECLAIM_RETRIES: u32 = 16;

/// Who is reclaiming: selects the vmstat counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reclaimer {
    /// The background daemon.
    Kswapd,
    /// An allocation that could not wait for kswapd.
    Direct,
    /// `reclaim SIZE` (memory.reclaim).
    Proactive,
}

/// What one reclaim pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReclaimResult {
    /// Pages looked at on the inactive lists.
    pub scanned: u64,
    /// Pages freed.
    pub reclaimed: u64,
}

impl Kernel {
    /// `inactive_is_low`: the inactive list should hold at least
    /// 1/ratio of the anon pages, ratio = int_sqrt(10 × GiB) (1 below 1 GiB).
    fn inactive_is_low(&self, zone: usize) -> bool {
        let lists = &self.lru.zones[zone];
        let total = lists.active_anon.len() + lists.inactive_anon.len();
        let gb = (total * super::types::PAGE_SIZE) >> 30;
        let ratio = if gb > 0 {
            super::page_alloc::int_sqrt(10 * gb)
        } else {
            1
        };
        lists.inactive_anon.len() * ratio < lists.active_anon.len()
    }

    /// `shrink_active_list` of the anon LRU.
    pub fn shrink_active_list(&mut self, zone: usize, nr_to_scan: u64) {
        self.shrink_active(zone, nr_to_scan, false);
    }

    /// `shrink_inactive_list` of the anon LRU.
    pub fn shrink_inactive_list(
        &mut self,
        zone: usize,
        nr_to_scan: u64,
        who: Reclaimer,
    ) -> ReclaimResult {
        self.shrink_inactive(zone, nr_to_scan, who, false)
    }

    /// `shrink_active_list`: second chance on the active list (anon or
    /// file). Referenced pages lose their bit and rotate to the head; the
    /// others move to the inactive list.
    pub(crate) fn shrink_active(&mut self, zone: usize, nr_to_scan: u64, file: bool) {
        let (mut scanned, deactivated) = (0, self.events.pgdeactivate);
        while scanned < nr_to_scan {
            let (active, inactive) = self.lru.zones[zone].lists_mut(file);
            let Some(pfn) = active.tail() else {
                break;
            };
            scanned += 1;
            let frames = &mut self.page_alloc.frames;
            active.remove(frames, pfn);
            if frames.has_flag(pfn, FLAG_REFERENCED) {
                frames.set_flag(pfn, FLAG_REFERENCED, false);
                active.push_head(frames, pfn);
            } else {
                frames.set_flag(pfn, FLAG_ACTIVE, false);
                // A page that was active is part of the workingset: its
                // shadow will say so if it is evicted (workingset.c).
                if file {
                    frames.set_workingset(pfn, true);
                }
                inactive.push_head(frames, pfn);
                self.events.pgdeactivate += 1;
            }
        }
        self.events.pgrefill += scanned;
        self.account_system(scanned * cputime::RECLAIM_SCAN_NS);
        self.trace_shrink_active(scanned, self.events.pgdeactivate - deactivated, file);
    }

    /// `shrink_inactive_list`: referenced pages are activated (second
    /// chance); the others are reclaimed — an anon page written to swap
    /// (without a free slot it goes back to the head), a clean page-cache
    /// page dropped; dirty and writeback page-cache pages are activated
    /// (PG_reclaim) and left to the flusher.
    fn shrink_inactive(
        &mut self,
        zone: usize,
        nr_to_scan: u64,
        who: Reclaimer,
        file: bool,
    ) -> ReclaimResult {
        let mut result = ReclaimResult::default();
        let mut kept = Vec::new();
        let activated = self.events.pgactivate;
        let (mut unqueued_dirty, mut immediate) = (0, 0);
        if !file {
            // Finished swap writes move to the tail, to be freed first.
            self.swap_writeback_done();
        }
        while result.scanned < nr_to_scan {
            let (active, inactive) = self.lru.zones[zone].lists_mut(file);
            let Some(pfn) = inactive.tail() else {
                break;
            };
            result.scanned += 1;
            let frames = &mut self.page_alloc.frames;
            if frames.has_flag(pfn, FLAG_REFERENCED) {
                inactive.remove(frames, pfn);
                frames.set_flag(pfn, FLAG_REFERENCED, false);
                frames.set_flag(pfn, FLAG_ACTIVE, true);
                active.push_head(frames, pfn);
                self.events.pgactivate += 1;
                continue;
            }
            let outcome = if file {
                self.reclaim_file_page(pfn)
            } else if self.pageout(pfn) {
                FileReclaim::Freed
            } else {
                FileReclaim::Keep
            };
            match outcome {
                FileReclaim::Freed => result.reclaimed += 1,
                FileReclaim::Keep => {
                    let frames = &mut self.page_alloc.frames;
                    self.lru.zones[zone].lists_mut(file).1.remove(frames, pfn);
                    kept.push(pfn);
                }
                // activate_locked: dirty and writeback pages go out of the
                // way while reclaim looks for clean ones.
                FileReclaim::Dirty | FileReclaim::Writeback { .. } => {
                    if outcome == FileReclaim::Dirty {
                        unqueued_dirty += 1;
                    }
                    if outcome == (FileReclaim::Writeback { immediate: true }) {
                        immediate += 1;
                    }
                    let frames = &mut self.page_alloc.frames;
                    let (active, inactive) = self.lru.zones[zone].lists_mut(file);
                    inactive.remove(frames, pfn);
                    frames.set_flag(pfn, FLAG_ACTIVE, true);
                    active.push_head(frames, pfn);
                    self.events.pgactivate += 1;
                }
            }
        }
        let (activated, failed) = (self.events.pgactivate - activated, kept.len() as u64);
        self.trace_shrink_inactive(&result, activated, failed, file);
        for &pfn in kept.iter().rev() {
            self.lru.zones[zone]
                .lists_mut(file)
                .1
                .push_head(&mut self.page_alloc.frames, pfn);
        }
        // Once every page is back on a list (a completion may rotate
        // one): a batch of nothing but dirty pages nobody writes means the
        // flusher is behind — wake it (shrink_inactive_list); kswapd
        // meeting pages it marked for immediate reclaim still in flight
        // waits for the disk (shrink_node's reclaim_throttle).
        if file && result.scanned > 0 && unqueued_dirty == result.scanned {
            self.wakeup_flusher_threads();
        }
        if immediate > 0 {
            self.reclaim_throttle();
        }
        if !file && result.reclaimed == 0 {
            // Nothing else freed: wait for the swap writes of this batch.
            result.reclaimed += self.reclaim_wait_writeback(&kept);
        }
        self.account_system(result.scanned * cputime::RECLAIM_SCAN_NS);
        let e = &mut self.events;
        let (scan, steal) = if file {
            (&mut e.pgscan_file, &mut e.pgsteal_file)
        } else {
            (&mut e.pgscan_anon, &mut e.pgsteal_anon)
        };
        *scan += result.scanned;
        *steal += result.reclaimed;
        let (scan, steal) = match who {
            Reclaimer::Kswapd => (&mut e.pgscan_kswapd, &mut e.pgsteal_kswapd),
            Reclaimer::Direct => (&mut e.pgscan_direct, &mut e.pgsteal_direct),
            Reclaimer::Proactive => (&mut e.pgscan_proactive, &mut e.pgsteal_proactive),
        };
        *scan += result.scanned;
        *steal += result.reclaimed;
        result
    }

    /// Reclaim one unreferenced anon page (`shrink_folio_list`'s anon
    /// half, in mm/swap_state.rs): give it a slot in the swap cache, start
    /// its write, unmap it; the page is freed here only when it needs no
    /// write (a clean swap-cache page) — a written one stays under
    /// writeback for a later pass. True when it was freed.
    pub fn pageout(&mut self, pfn: Pfn) -> bool {
        self.trace_write_folio(pfn, false);
        if self.page_alloc.frames.kind(pfn) == super::page_alloc::PageKind::Shmem {
            // Swap-backed but not anon: shmem_writeout through its index.
            return self.shmem_writeout(pfn) == super::shmem::ShmemReclaim::Freed;
        }
        self.shrink_anon_folio(pfn) == super::swap_state::AnonReclaim::Freed
    }

    /// Reclaim from every zone up to `highest` until `target` pages are
    /// freed, raising the scan pressure from DEF_PRIORITY down to 0.
    ///
    /// `get_scan_count`, simplified: the "file" side (page cache and the
    /// reclaimable slab caches) weighs 200 - swappiness, anon weighs
    /// swappiness; without free swap anon cannot be reclaimed and the file
    /// side takes all the pressure; with nothing on the file side, anon
    /// takes it all. swappiness 0 leaves anon alone while file pages exist.
    pub fn shrink_node(&mut self, target: u64, highest: usize, who: Reclaimer) -> ReclaimResult {
        let mut total = ReclaimResult::default();
        let swappiness = self.sysctl.swappiness;
        let top = highest.min(self.lru.zones.len() - 1);
        for priority in (0..=DEF_PRIORITY).rev() {
            self.trace.reclaim_priority = u64::from(priority);
            let objects = self.slab.shrinkable_objects();
            let can_swap = self.swap.has_free_slot();
            let file_weight = if can_swap { 200 - swappiness } else { 200 };
            if objects > 0 {
                // vfs_cache_pressure scales the dentry/inode shrinkers
                // (super_cache_count); 0 never reclaims them.
                let nr = ((objects >> priority).max(SWAP_CLUSTER_MAX) * file_weight).div_ceil(200)
                    * self.sysctl.vfs_cache_pressure
                    / 100;
                if nr > 0 {
                    total.reclaimed += self.shrink_slab(nr);
                    if total.reclaimed >= target {
                        return total;
                    }
                }
            }
            let file_pages: u64 = (0..=top)
                .map(|z| {
                    self.lru.zones[z].active_file.len() + self.lru.zones[z].inactive_file.len()
                })
                .sum();
            if !can_swap && objects == 0 && file_pages == 0 {
                break;
            }
            for zone in (0..=top).rev() {
                let lists = &self.lru.zones[zone];
                let fsize = lists.active_file.len() + lists.inactive_file.len();
                if fsize > 0 && file_weight > 0 {
                    let nr = ((fsize >> priority).max(SWAP_CLUSTER_MAX.min(fsize)) * file_weight)
                        .div_ceil(200);
                    let lists = &self.lru.zones[zone];
                    if lists.inactive_file.len() < lists.active_file.len() {
                        self.shrink_active(zone, nr, true);
                    }
                    let r = self.shrink_inactive(zone, nr, who, true);
                    total.scanned += r.scanned;
                    total.reclaimed += r.reclaimed;
                    if total.reclaimed >= target {
                        return total;
                    }
                }
                if !can_swap {
                    continue;
                }
                let size = self.lru.zones[zone].active_anon.len()
                    + self.lru.zones[zone].inactive_anon.len();
                if size == 0 {
                    continue;
                }
                let mut nr = (size >> priority).max(SWAP_CLUSTER_MAX.min(size));
                if self.slab.shrinkable_objects() > 0 || file_pages > 0 {
                    // swappiness 100 scans both sides alike; 0 spares anon.
                    nr = nr * swappiness / 100;
                    if nr == 0 {
                        continue;
                    }
                }
                if self.inactive_is_low(zone) {
                    self.shrink_active_list(zone, nr);
                }
                let r = self.shrink_inactive_list(zone, nr, who);
                total.scanned += r.scanned;
                total.reclaimed += r.reclaimed;
                if total.reclaimed >= target {
                    return total;
                }
            }
        }
        total
    }

    /// `user_proactive_reclaim` (cgroup v2 memory.reclaim; `reclaim SIZE`): EAGAIN when less than
    /// asked could be reclaimed (the kernel's answer), after doing what it could.
    pub fn user_proactive_reclaim(&mut self, bytes: u64) -> MmResult<()> {
        let target = bytes.div_ceil(super::types::PAGE_SIZE);
        let mut reclaimed = 0;
        // memory.reclaim retries a few times before giving up.
        for _ in 0..MAX_RECLAIM_RETRIES {
            let r = self.shrink_node(
                target - reclaimed,
                self.lru.zones.len() - 1,
                Reclaimer::Proactive,
            );
            reclaimed += r.reclaimed;
            // Nothing freed while pages are under writeback: wait for the
            // disk (reclaim_throttle) and try again.
            if reclaimed >= target || (r.reclaimed == 0 && !self.reclaim_throttle()) {
                break;
            }
        }
        if reclaimed < target {
            return Err(MmError::Again(format!(
                "reclaimed {reclaimed} of {target} pages: {}",
                if self.swap.has_free_slot() {
                    "the rest is in use"
                } else {
                    "no free swap space for anon pages"
                }
            )));
        }
        Ok(())
    }
}

impl Kernel {
    /// The node is unreclaimable after MAX_RECLAIM_RETRIES kswapd runs
    /// without progress (zoneinfo `node_unreclaimable`).
    pub fn node_unreclaimable(&self) -> bool {
        self.lru.kswapd_failures >= MAX_RECLAIM_RETRIES
    }

    /// `wakeup_kswapd`: remember to run kswapd at the end of the operation.
    pub fn wakeup_kswapd(&mut self, highest: usize) {
        if !self.lru.kswapd_woken {
            self.lru.kswapd_highest_zone = highest;
        }
        self.lru.kswapd_highest_zone = self.lru.kswapd_highest_zone.max(highest);
        self.lru.kswapd_woken = true;
    }

    /// `pgdat_balanced`: some eligible zone is above its high watermark.
    pub fn pgdat_balanced(&self, highest: usize) -> bool {
        (0..=highest).any(|z| {
            let zone = &self.page_alloc.zones[z];
            zone.managed > 0
                && self
                    .page_alloc
                    .watermark_ok(z, Order(0), zone.watermark.high, highest)
        })
    }

    /// Run kswapd if it was woken (`balance_pgdat`): reclaim until the node
    /// is balanced or no progress is made. With the simulated clock it runs
    /// at the end of the command that woke it and on `tick`.
    pub fn run_kswapd(&mut self) {
        self.kswapd_run_until(u64::MAX);
    }

    /// `balance_pgdat` until the clock reaches `deadline`: with the wall
    /// clock kswapd works beside the workload as real time passes, and
    /// stays woken when its time is up before the node is balanced. Its
    /// work is kswapd0's CPU time and a memory stall of its own (PSI).
    pub fn kswapd_run_until(&mut self, deadline: u64) {
        if !self.lru.kswapd_woken || self.node_unreclaimable() {
            self.lru.kswapd_woken = false;
            self.lru.kswapd_running = false;
            return;
        }
        let highest = self.lru.kswapd_highest_zone;
        if self.pgdat_balanced(highest) {
            self.lru.kswapd_woken = false;
            if !self.lru.kswapd_running {
                // Woken, but another free already balanced the node.
                self.events.kswapd_low_wmark_hit_quickly += 1;
            }
            self.lru.kswapd_running = false;
            return;
        }
        if !self.lru.kswapd_running {
            self.events.pageoutrun += 1;
        }
        let prev = self.switch_to(Some(self.kthreads.kswapd));
        self.trace_kswapd_wake(0);
        self.psi_memstall_enter();
        let mut progress = false;
        let mut out_of_time = false;
        while !self.pgdat_balanced(highest) {
            if self.clock_ns >= deadline {
                out_of_time = true;
                break;
            }
            let r = self.shrink_node(SWAP_CLUSTER_MAX, highest, Reclaimer::Kswapd);
            if r.reclaimed == 0 {
                // What is left may be under writeback: wait for the disk
                // (reclaim_throttle) rather than give up.
                if self.reclaim_throttle() {
                    continue;
                }
                break;
            }
            progress = true;
        }
        self.psi_memstall_leave();
        self.switch_to(prev);
        if progress {
            self.lru.kswapd_failures = 0;
        }
        if out_of_time {
            self.lru.kswapd_running = true;
            return;
        }
        self.lru.kswapd_woken = false;
        self.lru.kswapd_running = false;
        self.trace_kswapd_sleep();
        if !progress {
            self.lru.kswapd_failures += 1;
            self.events.kswapd_high_wmark_hit_quickly += 1;
        }
    }

    /// Check the zones after an allocation: below low, wake kswapd.
    pub fn check_kswapd_wakeup(&mut self, highest: usize) {
        let below_low = self
            .page_alloc
            .zonelist(highest)
            .any(|z| self.page_alloc.zones[z].free_pages < self.page_alloc.zones[z].watermark.low);
        if below_low {
            self.wakeup_kswapd(highest);
        }
    }
}
