//! Page reclaim (Linux: mm/vmscan.c, mm/swap.c): the anon and file LRU
//! lists, get_scan_count, shrink_lruvec, kswapd's balance_pgdat.
//!
//! Every user page sits on its zone's inactive or active anon list, linked
//! through the frame links (no heap object per page). Two bits say a page
//! was used, as in Linux: the young bit of each PTE mapping it (set by
//! every access through a mapping) and the page's PG_referenced
//! (`FLAG_REFERENCED`: set by read()/write() through the page cache, and
//! by reclaim itself). `folio_check_references` reads and clears both: a
//! mapped page needs two looks with a reference in between to be
//! activated; the first spares it for another trip around the inactive
//! list.

use super::Kernel;
use super::cputime;
use super::error::{MmError, MmResult};
use super::filemap::FileReclaim;
use super::mmap::VM_EXEC;
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
    /// Where the cut-off `balance_pgdat` run continues.
    pub kswapd_sc: Option<ScanControl>,
    /// `lruvec->anon_cost`: recent anon reclaim work (see `lru_note_cost`).
    pub anon_cost: u64,
    /// `lruvec->file_cost`: recent file reclaim work.
    pub file_cost: u64,
    /// `lruvec->refaults`: workingset activations (anon, file) at the end
    /// of the last reclaim run.
    pub refaults: [u64; 2],
    /// The super block shrinker's `nr_deferred`: scan work postponed.
    pub slab_nr_deferred: u64,
    /// Page-cache pages a fault or read holds across an allocation (the
    /// reference `folio_get` takes): reclaim keeps them.
    pub pinned: Vec<Pfn>,
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

    /// `folio_get`: hold `pfn` so that reclaim, run by an allocation the
    /// holder makes, keeps it.
    pub(crate) fn folio_get(&mut self, pfn: Pfn) {
        self.lru.pinned.push(pfn);
    }

    /// `folio_put`: drop a hold taken by [`Self::folio_get`].
    pub(crate) fn folio_put(&mut self, pfn: Pfn) {
        if let Some(i) = self.lru.pinned.iter().rposition(|&p| p == pfn) {
            self.lru.pinned.swap_remove(i);
        }
    }

    /// Is `pfn` held by a [`Self::folio_get`]?
    pub(crate) fn folio_pinned(&self, pfn: Pfn) -> bool {
        self.lru.pinned.contains(&pfn)
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

    /// `folio_mark_accessed` (read()/write() through the page cache): the
    /// access sets PG_referenced; a second access of an inactive
    /// page-cache page activates it at once. Accesses through a mapping
    /// set the PTE's young bit instead.
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

/// `enum folio_references`: what reclaim does with an inactive page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FolioReferences {
    /// Reclaim it.
    Reclaim,
    /// Reclaim it if it is clean (an unmapped page-cache page read once).
    ReclaimClean,
    /// Back to the head of the inactive list, not activated.
    Keep,
    /// To the active list (PGACTIVATE).
    Activate,
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
    /// `shrink_active_list` of the anon LRU.
    pub fn shrink_active_list(&mut self, zone: usize, nr_to_scan: u64) {
        self.shrink_active(zone, nr_to_scan, false);
    }

    /// `shrink_inactive_list` of one zone's anon LRU.
    pub fn shrink_inactive_list(
        &mut self,
        zone: usize,
        nr_to_scan: u64,
        who: Reclaimer,
    ) -> ReclaimResult {
        self.shrink_inactive(zone, nr_to_scan, who, false)
    }

    /// `shrink_active_list` (anon or file): every page taken off the
    /// active list's tail moves to the inactive list (PG_workingset: its
    /// shadow will say it was active, workingset.c), except a page-cache
    /// page of an executable mapping with a young PTE, which rotates to the
    /// head. The young bits are cleared on the way (`folio_referenced`);
    /// PG_referenced is left as it is.
    pub(crate) fn shrink_active(&mut self, zone: usize, nr_to_scan: u64, file: bool) {
        let (mut scanned, deactivated) = (0, self.events.pgdeactivate);
        while scanned < nr_to_scan {
            let Some(pfn) = self.lru.zones[zone].lists_mut(file).0.tail() else {
                break;
            };
            scanned += 1;
            let (referenced, vm_flags) = self.folio_referenced(pfn);
            let rotate = referenced > 0 && vm_flags & VM_EXEC != 0 && self.is_file_page(pfn);
            let frames = &mut self.page_alloc.frames;
            let (active, inactive) = self.lru.zones[zone].lists_mut(file);
            active.remove(frames, pfn);
            if rotate {
                active.push_head(frames, pfn);
            } else {
                frames.set_flag(pfn, FLAG_ACTIVE, false);
                frames.set_workingset(pfn, true);
                inactive.push_head(frames, pfn);
                self.events.pgdeactivate += 1;
            }
        }
        self.events.pgrefill += scanned;
        self.account_system(scanned * cputime::RECLAIM_SCAN_NS);
        self.trace_shrink_active(scanned, self.events.pgdeactivate - deactivated, file);
    }

    /// `folio_test_writeback`: a write of page `pfn` is in flight — a
    /// page-cache page's to its file, or a swap-cache page's to its slot.
    pub(crate) fn folio_test_writeback(&self, pfn: Pfn) -> bool {
        let frames = &self.page_alloc.frames;
        if frames.kind(pfn) == super::page_alloc::PageKind::PageCache {
            let (slot, index) = frames.rmap(pfn);
            return self.page_under_writeback(slot.0, index.0);
        }
        self.swap
            .cache
            .entry_of(pfn)
            .is_some_and(|e| self.swap.cache.under_writeback(e, self.clock_ns))
    }

    /// `folio_check_references`: what reclaim does with inactive page
    /// `pfn`, from its young PTEs (cleared here) and its PG_referenced
    /// (cleared, and set again for a page with young PTEs). Every mapped
    /// page starts with the young PTE of the fault that mapped it, so a
    /// page with young PTEs is kept for one more trip around the inactive
    /// list and activated only when referenced again by then — or when two
    /// PTEs are young, or it is the text of an executable mapping. An
    /// unmapped page-cache page read once is reclaimed if clean.
    pub(crate) fn folio_check_references(&mut self, pfn: Pfn) -> FolioReferences {
        let (referenced_ptes, vm_flags) = self.folio_referenced(pfn);
        let file = self.is_file_page(pfn);
        let frames = &mut self.page_alloc.frames;
        let referenced_folio = frames.has_flag(pfn, FLAG_REFERENCED);
        if referenced_ptes > 0 {
            frames.set_flag(pfn, FLAG_REFERENCED, true);
            if referenced_folio || referenced_ptes > 1 || (vm_flags & VM_EXEC != 0 && file) {
                return FolioReferences::Activate;
            }
            return FolioReferences::Keep;
        }
        frames.set_flag(pfn, FLAG_REFERENCED, false);
        if referenced_folio && file {
            return FolioReferences::ReclaimClean;
        }
        FolioReferences::Reclaim
    }

    /// `shrink_inactive_list`: each page's references decide
    /// ([`Self::folio_check_references`]): activated, kept on the inactive
    /// list (back to its head), or reclaimed — an anon page written to
    /// swap (without a free slot it goes back to the head), a clean
    /// page-cache page dropped; dirty and writeback page-cache pages are activated
    /// (PG_reclaim) and left to the flusher.
    fn shrink_inactive(
        &mut self,
        zone: usize,
        nr_to_scan: u64,
        who: Reclaimer,
        file: bool,
    ) -> ReclaimResult {
        let mut result = ReclaimResult::default();
        let (mut kept, mut nr_ref_keep) = (Vec::new(), 0);
        let activated = self.events.pgactivate;
        let (mut unqueued_dirty, mut immediate) = (0, 0);
        if !file {
            // Finished swap writes move to the tail, to be freed first.
            self.swap_writeback_done();
        }
        while result.scanned < nr_to_scan {
            let Some(pfn) = self.lru.zones[zone].lists_mut(file).1.tail() else {
                break;
            };
            result.scanned += 1;
            // shrink_folio_list deals with a folio under writeback before
            // it looks at references: its young bits and PG_referenced
            // are left for a later scan.
            let references = if self.folio_test_writeback(pfn) {
                FolioReferences::Reclaim
            } else {
                self.folio_check_references(pfn)
            };
            match references {
                FolioReferences::Activate => {
                    let frames = &mut self.page_alloc.frames;
                    let (active, inactive) = self.lru.zones[zone].lists_mut(file);
                    inactive.remove(frames, pfn);
                    frames.set_flag(pfn, FLAG_ACTIVE, true);
                    active.push_head(frames, pfn);
                    self.events.pgactivate += 1;
                    continue;
                }
                FolioReferences::Keep => {
                    let frames = &mut self.page_alloc.frames;
                    self.lru.zones[zone].lists_mut(file).1.remove(frames, pfn);
                    kept.push(pfn);
                    nr_ref_keep += 1;
                    continue;
                }
                // RECLAIM_CLEAN differs only for a dirty page, which file
                // reclaim never writes here: it goes the dirty way below.
                FolioReferences::ReclaimClean | FolioReferences::Reclaim => {}
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
        let activated = self.events.pgactivate - activated;
        let failed = kept.len() as u64 - nr_ref_keep;
        self.trace_shrink_inactive(&result, activated, nr_ref_keep, failed, file);
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
}

/// `enum lru_list`: the evictable LRU lists in Linux's order (the index
/// of [`get_scan_count`]'s result).
pub const LRU_INACTIVE_ANON: usize = 0;
/// See [`LRU_INACTIVE_ANON`].
pub const LRU_ACTIVE_ANON: usize = 1;
/// See [`LRU_INACTIVE_ANON`].
pub const LRU_INACTIVE_FILE: usize = 2;
/// See [`LRU_INACTIVE_ANON`].
pub const LRU_ACTIVE_FILE: usize = 3;

/// vm.swappiness's upper bound (MAX_SWAPPINESS).
pub const MAX_SWAPPINESS: u64 = 200;
/// memory.reclaim's `swappiness=max`: reclaim anon pages only.
pub const SWAPPINESS_ANON_ONLY: u64 = MAX_SWAPPINESS + 1;
/// `scan_control.may_deactivate` bits.
pub const DEACTIVATE_ANON: u8 = 1;
/// See [`DEACTIVATE_ANON`].
pub const DEACTIVATE_FILE: u8 = 2;
/// The super block shrinker's batch (`s_shrink->batch` in alloc_super).
const SUPER_SHRINK_BATCH: u64 = 1024;
/// DEFAULT_SEEKS: the cost of recreating a dentry or inode.
const DEFAULT_SEEKS: u64 = 2;

/// `enum scan_balance`: how [`get_scan_count`] splits the pressure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScanBalance {
    /// Both types, each list by its size (close to OOM).
    Equal,
    /// Both types, in proportion to swappiness and the reclaim costs.
    Fract,
    /// Anon lists only.
    Anon,
    /// File lists only.
    File,
}

/// `struct scan_control`: one reclaim invocation's goal, pressure and
/// progress.
#[derive(Clone, Debug)]
pub struct ScanControl {
    /// Pages to reclaim before stopping early.
    pub nr_to_reclaim: u64,
    /// Highest zone whose pages may be taken.
    pub reclaim_idx: usize,
    /// Scan (list size >> priority) pages: DEF_PRIORITY down to 0.
    pub priority: u32,
    /// Who reclaims (counters; Proactive is cgroup reclaim).
    pub who: Reclaimer,
    /// Anon pages may go to swap.
    pub may_swap: bool,
    /// memory.reclaim's `swappiness=` (None: vm.swappiness).
    pub proactive_swappiness: Option<u64>,
    /// DEACTIVATE_ANON / DEACTIVATE_FILE: active lists may be aged.
    pub may_deactivate: u8,
    /// Age both active lists whatever their ratios (the retry).
    pub force_deactivate: bool,
    /// An active list was left alone this pass.
    pub skipped_deactivate: bool,
    /// Plenty of inactive, non-thrashing cache: reclaim only it.
    pub cache_trim_mode: bool,
    /// cache_trim_mode was on in a pass that reclaimed nothing.
    pub cache_trim_mode_failed: bool,
    /// kswapd's restart with cache_trim_mode off.
    pub no_cache_trim_mode: bool,
    /// The file LRU is nearly gone: scan anon only.
    pub file_is_tiny: bool,
    /// The lruvec's anon reclaim cost at the start of the pass.
    pub anon_cost: u64,
    /// The lruvec's file reclaim cost at the start of the pass.
    pub file_cost: u64,
    /// Inactive pages scanned in this priority round.
    pub nr_scanned: u64,
    /// Pages freed so far.
    pub nr_reclaimed: u64,
}

impl ScanControl {
    /// A scan control at DEF_PRIORITY that may swap.
    pub fn new(who: Reclaimer, nr_to_reclaim: u64, reclaim_idx: usize) -> ScanControl {
        ScanControl {
            nr_to_reclaim,
            reclaim_idx,
            priority: DEF_PRIORITY,
            who,
            may_swap: true,
            proactive_swappiness: None,
            may_deactivate: 0,
            force_deactivate: false,
            skipped_deactivate: false,
            cache_trim_mode: false,
            cache_trim_mode_failed: false,
            no_cache_trim_mode: false,
            file_is_tiny: false,
            anon_cost: 0,
            file_cost: 0,
            nr_scanned: 0,
            nr_reclaimed: 0,
        }
    }

    /// `cgroup_reclaim`: reclaim on behalf of a cgroup. `reclaim SIZE` is
    /// memory.reclaim of the root cgroup, which has a target memcg.
    pub fn cgroup_reclaim(&self) -> bool {
        self.who == Reclaimer::Proactive
    }
}

/// `calculate_pressure_balance`: anon and file pressure inversely
/// proportional to their recent reclaim costs, times swappiness (anon)
/// and 200 − swappiness (file). Returns (fraction\[anon, file\], denominator).
pub fn calculate_pressure_balance(
    anon_cost: u64,
    file_cost: u64,
    swappiness: u64,
) -> ([u64; 2], u64) {
    // At least a third of the pressure goes to each side before
    // swappiness: each cost is padded with the total.
    let total = anon_cost + file_cost;
    let anon = total + anon_cost;
    let file = total + file_cost;
    let total = anon + file;
    let ap = swappiness * (total + 1) / (anon + 1);
    let fp = (MAX_SWAPPINESS - swappiness) * (total + 1) / (file + 1);
    ([ap, fp], ap + fp)
}

/// The first of get_scan_count's rules that applies.
fn scan_balance(sc: &ScanControl, swappiness: u64, can_reclaim_anon: bool) -> ScanBalance {
    // No swap space: do not bother scanning anon pages.
    if !sc.may_swap || !can_reclaim_anon {
        return ScanBalance::File;
    }
    // Global reclaim swaps even at swappiness 0 to prevent OOM; cgroup
    // users use it to disable swapping.
    if sc.cgroup_reclaim() && swappiness == 0 {
        return ScanBalance::File;
    }
    // memory.reclaim swappiness=max: anon only.
    if swappiness == SWAPPINESS_ANON_ONLY {
        return ScanBalance::Anon;
    }
    // Close to OOM: no balancing cleverness, unless swappiness forbids.
    if sc.priority == 0 && swappiness != 0 {
        return ScanBalance::Equal;
    }
    // Almost out of file pages: force-scan anon.
    if sc.file_is_tiny {
        return ScanBalance::Anon;
    }
    // Enough inactive cache: leave the anon workingset alone.
    if sc.cache_trim_mode {
        return ScanBalance::File;
    }
    ScanBalance::Fract
}

/// `get_scan_count`: how many pages of each evictable list (indexed by
/// LRU_INACTIVE_ANON..LRU_ACTIVE_FILE) to scan at this priority, from the
/// eligible list sizes. The rules in Linux 6.18's order: no swap (or
/// !may_swap) → file only; cgroup reclaim at swappiness 0 → file only;
/// `swappiness=max` → anon only; priority 0 with swappiness → equal;
/// file_is_tiny → anon only; cache_trim_mode → file only; else fractions.
pub fn get_scan_count(
    sc: &ScanControl,
    swappiness: u64,
    can_reclaim_anon: bool,
    lru_size: [u64; 4],
) -> (ScanBalance, [u64; 4]) {
    let mut fraction = [0u64; 2];
    let mut denominator = 0u64;
    let balance = scan_balance(sc, swappiness, can_reclaim_anon);
    if balance == ScanBalance::Fract {
        (fraction, denominator) =
            calculate_pressure_balance(sc.anon_cost, sc.file_cost, swappiness);
    }
    let mut nr = [0u64; 4];
    for (lru, out) in nr.iter_mut().enumerate() {
        let file = lru >= LRU_INACTIVE_FILE;
        let scan = lru_size[lru] >> sc.priority;
        *out = match balance {
            ScanBalance::Equal => scan,
            // div64_u64: the memcg is online, so rounding down.
            ScanBalance::Fract => match u64::try_from(
                u128::from(scan) * u128::from(fraction[usize::from(file)])
                    / u128::from(denominator.max(1)),
            ) {
                Ok(n) => n,
                Err(_) => scan,
            },
            ScanBalance::File if !file => 0,
            ScanBalance::Anon if file => 0,
            ScanBalance::File | ScanBalance::Anon => scan,
        };
    }
    (balance, nr)
}

/// Split `nr` pages of a node-wide scan among the zones' lists (`sizes`,
/// indexed by zone): in proportion to their sizes, the remainder from the
/// highest zone down. Linux keeps one list per node; its age order mixes
/// the zones as their sizes do.
fn zone_shares(sizes: &[u64], nr: u64) -> Vec<u64> {
    let total: u64 = sizes.iter().sum();
    if total == 0 {
        return vec![0; sizes.len()];
    }
    let nr = nr.min(total);
    let mut shares: Vec<u64> = sizes
        .iter()
        .map(|&s| u64::try_from(u128::from(nr) * u128::from(s) / u128::from(total)).unwrap_or(s))
        .collect();
    let mut left = nr - shares.iter().sum::<u64>();
    for z in (0..sizes.len()).rev() {
        let more = left.min(sizes[z] - shares[z]);
        shares[z] += more;
        left -= more;
    }
    shares
}

impl Kernel {
    /// The size of one evictable list summed over zones 0..=`highest`.
    fn lru_size(&self, lru: usize, highest: usize) -> u64 {
        self.lru
            .zones
            .iter()
            .take(highest + 1)
            .map(|z| match lru {
                LRU_INACTIVE_ANON => z.inactive_anon.len(),
                LRU_ACTIVE_ANON => z.active_anon.len(),
                LRU_INACTIVE_FILE => z.inactive_file.len(),
                _ => z.active_file.len(),
            })
            .sum()
    }

    /// `lruvec_lru_size` of the four evictable lists up to `highest`.
    fn lru_sizes(&self, highest: usize) -> [u64; 4] {
        [0, 1, 2, 3].map(|lru| self.lru_size(lru, highest))
    }

    /// `inactive_is_low` for the node's anon or file LRU: the inactive
    /// list should hold at least 1/ratio of the pages, ratio =
    /// int_sqrt(10 × GiB) (1 below 1 GiB).
    fn inactive_is_low(&self, file: bool) -> bool {
        let top = self.lru.zones.len() - 1;
        let (inactive, active) = if file {
            (
                self.lru_size(LRU_INACTIVE_FILE, top),
                self.lru_size(LRU_ACTIVE_FILE, top),
            )
        } else {
            (
                self.lru_size(LRU_INACTIVE_ANON, top),
                self.lru_size(LRU_ACTIVE_ANON, top),
            )
        };
        let gb = ((inactive + active) * super::types::PAGE_SIZE) >> 30;
        let ratio = if gb > 0 {
            super::page_alloc::int_sqrt(10 * gb)
        } else {
            1
        };
        inactive * ratio < active
    }

    /// `can_age_anon_pages`: ageing the anon LRU helps only with swap.
    fn can_age_anon_pages(&self) -> bool {
        self.swap.total_pages() > 0
    }

    /// `lru_note_cost` (mm/swap.c): reclaim work on one LRU type — I/O
    /// weighs SWAP_CLUSTER_MAX times a rotation — feeds the scan balance;
    /// both costs halve once they exceed a quarter of the LRU pages, a
    /// floating average that weighs recent work more.
    pub fn lru_note_cost(&mut self, file: bool, nr_io: u64, nr_rotated: u64) {
        let cost = nr_io * SWAP_CLUSTER_MAX + nr_rotated;
        if cost == 0 {
            return;
        }
        if file {
            self.lru.file_cost += cost;
        } else {
            self.lru.anon_cost += cost;
        }
        let top = self.lru.zones.len() - 1;
        let lrusize: u64 = self.lru_sizes(top).iter().sum();
        if self.lru.file_cost + self.lru.anon_cost > lrusize / 4 {
            self.lru.file_cost /= 2;
            self.lru.anon_cost /= 2;
        }
    }

    /// `lru_note_cost_refault`: a refault of a page that was in the
    /// workingset costs one I/O on its LRU type.
    pub fn lru_note_cost_refault(&mut self, file: bool) {
        self.lru_note_cost(file, 1, 0);
    }

    /// `snapshot_refaults`: remember the workingset activations at the end
    /// of a reclaim run; new ones since mean a workingset is forming.
    fn snapshot_refaults(&mut self) {
        self.lru.refaults = [
            self.events.workingset_activate_anon,
            self.events.workingset_activate_file,
        ];
    }

    /// `prepare_scan_control`: the costs, which active lists may be aged,
    /// cache_trim_mode and file_is_tiny for this pass.
    fn prepare_scan_control(&self, sc: &mut ScanControl) {
        sc.anon_cost = self.lru.anon_cost;
        sc.file_cost = self.lru.file_cost;
        if sc.force_deactivate {
            sc.may_deactivate = DEACTIVATE_ANON | DEACTIVATE_FILE;
        } else {
            // Refaults mean a new workingset is forming: deactivate to get
            // rid of stale active pages quickly.
            let activations = [
                self.events.workingset_activate_anon,
                self.events.workingset_activate_file,
            ];
            for (file, bit) in [(false, DEACTIVATE_ANON), (true, DEACTIVATE_FILE)] {
                if activations[usize::from(file)] != self.lru.refaults[usize::from(file)]
                    || self.inactive_is_low(file)
                {
                    sc.may_deactivate |= bit;
                } else {
                    sc.may_deactivate &= !bit;
                }
            }
        }
        let top = self.lru.zones.len() - 1;
        let inactive_file = self.lru_size(LRU_INACTIVE_FILE, top);
        sc.cache_trim_mode = inactive_file >> sc.priority != 0
            && sc.may_deactivate & DEACTIVATE_FILE == 0
            && !sc.no_cache_trim_mode;
        if !sc.cgroup_reclaim() {
            // The cache trap: a tiny, thrashing file LRU must not look
            // infinitely more attractive than anon.
            let free = self.page_alloc.total_free();
            let file = inactive_file + self.lru_size(LRU_ACTIVE_FILE, top);
            let total_high_wmark: u64 = self
                .page_alloc
                .zones
                .iter()
                .filter(|z| z.managed > 0)
                .map(|z| z.watermark.high)
                .sum();
            let anon = self.lru_size(LRU_INACTIVE_ANON, top);
            sc.file_is_tiny = file + free <= total_high_wmark
                && sc.may_deactivate & DEACTIVATE_ANON == 0
                && anon >> sc.priority != 0;
        }
    }

    /// `shrink_active_list` over the node: `nr` pages of the anon or file
    /// active lists of zones 0..=`reclaim_idx`.
    fn shrink_active_node(&mut self, file: bool, nr: u64, reclaim_idx: usize) {
        let lru = if file {
            LRU_ACTIVE_FILE
        } else {
            LRU_ACTIVE_ANON
        };
        let sizes: Vec<u64> = (0..=reclaim_idx.min(self.lru.zones.len() - 1))
            .map(|z| self.lru_size(lru, z) - if z > 0 { self.lru_size(lru, z - 1) } else { 0 })
            .collect();
        for (zone, share) in zone_shares(&sizes, nr).into_iter().enumerate() {
            if share > 0 {
                self.shrink_active(zone, share, file);
            }
        }
    }

    /// `shrink_inactive_list` over the node: reclaim from `nr` pages of
    /// the anon or file inactive lists of the eligible zones, and note the
    /// cost (`lru_note_cost`: the pages written, the pages kept).
    fn shrink_inactive_node(&mut self, file: bool, nr: u64, sc: &mut ScanControl) -> u64 {
        let lru = if file {
            LRU_INACTIVE_FILE
        } else {
            LRU_INACTIVE_ANON
        };
        let sizes: Vec<u64> = (0..=sc.reclaim_idx.min(self.lru.zones.len() - 1))
            .map(|z| self.lru_size(lru, z) - if z > 0 { self.lru_size(lru, z - 1) } else { 0 })
            .collect();
        // Reclaim writes no file pages (the flusher does): only swap
        // writes are the pageout cost.
        let io = |k: &Kernel| if file { 0 } else { k.events.pswpout };
        let io_before = io(self);
        let mut total = ReclaimResult::default();
        for (zone, share) in zone_shares(&sizes, nr).into_iter().enumerate() {
            if share > 0 {
                let r = self.shrink_inactive(zone, share, sc.who, file);
                total.scanned += r.scanned;
                total.reclaimed += r.reclaimed;
            }
        }
        sc.nr_scanned += total.scanned;
        let nr_pageout = io(self) - io_before;
        self.lru_note_cost(file, nr_pageout, total.scanned - total.reclaimed);
        total.reclaimed
    }

    /// `shrink_list`: age an active list (when allowed) or reclaim from an
    /// inactive one; returns the pages freed.
    fn shrink_list(&mut self, lru: usize, nr: u64, sc: &mut ScanControl) -> u64 {
        let file = lru >= LRU_INACTIVE_FILE;
        if lru == LRU_ACTIVE_ANON || lru == LRU_ACTIVE_FILE {
            let bit = if file {
                DEACTIVATE_FILE
            } else {
                DEACTIVATE_ANON
            };
            if sc.may_deactivate & bit != 0 {
                self.shrink_active_node(file, nr, sc.reclaim_idx);
            } else {
                sc.skipped_deactivate = true;
            }
            return 0;
        }
        self.shrink_inactive_node(file, nr, sc)
    }

    /// `shrink_lruvec`: scan the four lists in SWAP_CLUSTER_MAX batches
    /// as [`get_scan_count`] says. Once enough is reclaimed (not for direct
    /// reclaim at DEF_PRIORITY), stop the smaller type and cut the other
    /// to the share it would have had; then rebalance the anon lists.
    pub fn shrink_lruvec(&mut self, sc: &mut ScanControl) {
        let swappiness = sc.proactive_swappiness.unwrap_or(self.sysctl.swappiness);
        let sizes = self.lru_sizes(sc.reclaim_idx.min(self.lru.zones.len() - 1));
        let (_, mut nr) = get_scan_count(sc, swappiness, self.swap.has_free_slot(), sizes);
        let targets = nr;
        let proportional_reclaim =
            !sc.cgroup_reclaim() && sc.who != Reclaimer::Kswapd && sc.priority == DEF_PRIORITY;
        let mut nr_reclaimed = 0;
        while nr[LRU_INACTIVE_ANON] > 0 || nr[LRU_ACTIVE_FILE] > 0 || nr[LRU_INACTIVE_FILE] > 0 {
            for (lru, left) in nr.iter_mut().enumerate() {
                if *left > 0 {
                    let n = (*left).min(SWAP_CLUSTER_MAX);
                    *left -= n;
                    nr_reclaimed += self.shrink_list(lru, n, sc);
                }
            }
            if nr_reclaimed < sc.nr_to_reclaim || proportional_reclaim {
                continue;
            }
            let nr_file = nr[LRU_INACTIVE_FILE] + nr[LRU_ACTIVE_FILE];
            let nr_anon = nr[LRU_INACTIVE_ANON] + nr[LRU_ACTIVE_ANON];
            // Attacking the larger once the smaller is done is vindictive.
            if nr_file == 0 || nr_anon == 0 {
                break;
            }
            let (stop, percentage) = if nr_file > nr_anon {
                let target = targets[LRU_INACTIVE_ANON] + targets[LRU_ACTIVE_ANON] + 1;
                (LRU_INACTIVE_ANON, nr_anon * 100 / target)
            } else {
                let target = targets[LRU_INACTIVE_FILE] + targets[LRU_ACTIVE_FILE] + 1;
                (LRU_INACTIVE_FILE, nr_file * 100 / target)
            };
            nr[stop] = 0;
            nr[stop + 1] = 0;
            let other = if stop == LRU_INACTIVE_FILE {
                LRU_INACTIVE_ANON
            } else {
                LRU_INACTIVE_FILE
            };
            for lru in [other, other + 1] {
                let scanned = targets[lru] - nr[lru];
                nr[lru] = targets[lru] * (100 - percentage) / 100;
                nr[lru] -= nr[lru].min(scanned);
            }
        }
        sc.nr_reclaimed += nr_reclaimed;
        // Rebalance the anon lists even when anon was not reclaimed.
        if self.can_age_anon_pages() && self.inactive_is_low(false) {
            self.shrink_active_node(false, SWAP_CLUSTER_MAX, sc.reclaim_idx);
        }
    }

    /// `do_shrink_slab` for the super block shrinker (dentries and inodes):
    /// `freeable` scaled by vfs_cache_pressure (`super_cache_count`),
    /// (freeable >> priority) × 4 / DEFAULT_SEEKS to scan plus the work
    /// deferred by earlier calls, in batches of 1024 (or all when fewer).
    /// Returns the slab pages freed.
    pub fn do_shrink_slab(&mut self, priority: u32) -> u64 {
        let freeable = self.slab.shrinkable_objects() * self.sysctl.vfs_cache_pressure / 100;
        if freeable == 0 {
            return 0;
        }
        let nr = std::mem::take(&mut self.lru.slab_nr_deferred);
        let delta = (freeable >> priority) * 4 / DEFAULT_SEEKS;
        let mut total_scan = ((nr >> priority) + delta).min(2 * freeable);
        let mut scanned = 0;
        let mut freed = 0;
        while total_scan >= SUPER_SHRINK_BATCH || total_scan >= freeable {
            let nr_to_scan = total_scan.min(SUPER_SHRINK_BATCH);
            freed += self.shrink_slab(nr_to_scan);
            total_scan -= nr_to_scan;
            scanned += nr_to_scan;
            if self.slab.shrinkable_objects() == 0 {
                break;
            }
        }
        self.lru.slab_nr_deferred = (nr + delta).saturating_sub(scanned).min(2 * freeable);
        freed
    }

    /// `shrink_node`: one pass over the node's LRUs and the slab shrinker
    /// at `sc.priority`. Any progress revives a dormant kswapd.
    pub fn shrink_node(&mut self, sc: &mut ScanControl) {
        let reclaimed = sc.nr_reclaimed;
        self.trace.reclaim_priority = u64::from(sc.priority);
        self.prepare_scan_control(sc);
        self.shrink_lruvec(sc);
        // flush_reclaim_state: slab pages freed count as reclaimed.
        sc.nr_reclaimed += self.do_shrink_slab(sc.priority);
        if sc.nr_reclaimed > reclaimed {
            self.lru.kswapd_failures = 0;
        } else if sc.cache_trim_mode {
            sc.cache_trim_mode_failed = true;
        }
    }

    /// `do_try_to_free_pages`: shrink the node at rising priority until
    /// `nr_to_reclaim` pages are freed; when nothing was freed because
    /// active lists were left alone, retry deactivating them by force.
    pub fn do_try_to_free_pages(&mut self, sc: &mut ScanControl) -> u64 {
        let initial_priority = sc.priority;
        loop {
            loop {
                sc.nr_scanned = 0;
                self.shrink_node(sc);
                if sc.nr_reclaimed >= sc.nr_to_reclaim || sc.priority == 0 {
                    break;
                }
                sc.priority -= 1;
            }
            self.snapshot_refaults();
            if sc.nr_reclaimed > 0 {
                return sc.nr_reclaimed;
            }
            if !sc.skipped_deactivate {
                return 0;
            }
            sc.priority = initial_priority;
            sc.force_deactivate = true;
            sc.skipped_deactivate = false;
        }
    }

    /// `try_to_free_pages`: direct reclaim for an allocation whose highest
    /// zone is `highest`; SWAP_CLUSTER_MAX pages are the goal.
    pub fn try_to_free_pages(&mut self, highest: usize) -> u64 {
        let mut sc = ScanControl::new(Reclaimer::Direct, SWAP_CLUSTER_MAX, highest);
        self.do_try_to_free_pages(&mut sc)
    }

    /// `user_proactive_reclaim` (cgroup v2 memory.reclaim; `reclaim SIZE
    /// [swappiness=N|max]`): batches of a quarter of what is left, until
    /// done; EAGAIN (the kernel's answer) after MAX_RECLAIM_RETRIES
    /// batches that freed nothing, after doing what it could.
    pub fn user_proactive_reclaim(&mut self, bytes: u64, swappiness: Option<u64>) -> MmResult<()> {
        let nr_to_reclaim = bytes.div_ceil(super::types::PAGE_SIZE);
        let mut nr_reclaimed = 0;
        let mut nr_retries = MAX_RECLAIM_RETRIES;
        let top = self.lru.zones.len() - 1;
        while nr_reclaimed < nr_to_reclaim {
            // Converges on zero; reclaim enforces a minimum.
            let batch_size = (nr_to_reclaim - nr_reclaimed) / 4;
            let mut sc =
                ScanControl::new(Reclaimer::Proactive, batch_size.max(SWAP_CLUSTER_MAX), top);
            sc.proactive_swappiness = swappiness;
            let reclaimed = self.do_try_to_free_pages(&mut sc);
            if reclaimed == 0 {
                // Pages under writeback are freeable once written: wait
                // for the disk (reclaim_throttle) before counting a retry.
                if self.reclaim_throttle() {
                    continue;
                }
                if nr_retries == 0 {
                    return Err(MmError::Again(format!(
                        "reclaimed {nr_reclaimed} of {nr_to_reclaim} pages: {}",
                        if self.swap.has_free_slot() {
                            "the rest is in use"
                        } else {
                            "no free swap space for anon pages"
                        }
                    )));
                }
                nr_retries -= 1;
            }
            nr_reclaimed += reclaimed;
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

    /// `kswapd_age_node`: background ageing of the anon LRU before each
    /// pass, when swap exists and the inactive list is short.
    fn kswapd_age_node(&mut self, reclaim_idx: usize) {
        if self.can_age_anon_pages() && self.inactive_is_low(false) {
            self.shrink_active_node(false, SWAP_CLUSTER_MAX, reclaim_idx);
        }
    }

    /// `kswapd_shrink_node`: aim at the eligible zones' high watermarks;
    /// true when enough was scanned that the priority need not rise.
    fn kswapd_shrink_node(&mut self, sc: &mut ScanControl) -> bool {
        let reclaimed = sc.nr_reclaimed;
        sc.nr_to_reclaim = self
            .page_alloc
            .zones
            .iter()
            .take(sc.reclaim_idx + 1)
            .filter(|z| z.managed > 0)
            .map(|z| z.watermark.high.max(SWAP_CLUSTER_MAX))
            .sum();
        self.shrink_node(sc);
        sc.nr_scanned.max(sc.nr_reclaimed - reclaimed) >= sc.nr_to_reclaim
    }

    /// `balance_pgdat` until the node is balanced or the clock reaches
    /// `deadline`: priority passes from DEF_PRIORITY down to 1, the
    /// priority rising when a pass scanned less than its goal or freed
    /// nothing; a sweep that freed nothing with cache_trim_mode on is
    /// retried without it, and one that still freed nothing is a kswapd
    /// failure. kswapd sweeps again while the node stays unbalanced.
    /// With the wall clock kswapd works beside the workload as real time
    /// passes and keeps its place (the scan control) when its time is up.
    /// Its work is kswapd0's CPU time and a memory stall (PSI).
    pub fn kswapd_run_until(&mut self, deadline: u64) {
        if !self.lru.kswapd_woken || self.node_unreclaimable() {
            self.lru.kswapd_woken = false;
            self.lru.kswapd_running = false;
            self.lru.kswapd_sc = None;
            return;
        }
        let highest = self.lru.kswapd_highest_zone;
        if self.lru.kswapd_sc.is_none() && self.pgdat_balanced(highest) {
            self.lru.kswapd_woken = false;
            if !self.lru.kswapd_running {
                // Woken, but another free already balanced the node.
                self.events.kswapd_low_wmark_hit_quickly += 1;
            }
            self.lru.kswapd_running = false;
            return;
        }
        let prev = self.switch_to(Some(self.kthreads.kswapd));
        self.trace_kswapd_wake(0);
        self.psi_memstall_enter();
        let mut sc = match self.lru.kswapd_sc.take() {
            Some(sc) => sc,
            None => {
                self.events.pageoutrun += 1;
                ScanControl::new(Reclaimer::Kswapd, 0, highest)
            }
        };
        let mut out_of_time = false;
        loop {
            if self.pgdat_balanced(highest) {
                break;
            }
            if self.clock_ns >= deadline {
                out_of_time = true;
                break;
            }
            if sc.priority >= 1 {
                let reclaimed = sc.nr_reclaimed;
                sc.reclaim_idx = highest;
                self.kswapd_age_node(sc.reclaim_idx);
                sc.nr_scanned = 0;
                let raise_priority = !self.kswapd_shrink_node(&mut sc);
                if raise_priority || sc.nr_reclaimed == reclaimed {
                    sc.priority -= 1;
                }
                continue;
            }
            // The sweep went through every priority.
            if sc.nr_reclaimed == 0 && !sc.no_cache_trim_mode && sc.cache_trim_mode_failed {
                sc.no_cache_trim_mode = true;
                sc.priority = DEF_PRIORITY;
                continue;
            }
            self.snapshot_refaults();
            // What is left may be under writeback: wait for the disk
            // (reclaim_throttle) and sweep again rather than give up.
            if sc.nr_reclaimed == 0 && self.reclaim_throttle() {
                sc = ScanControl::new(Reclaimer::Kswapd, 0, highest);
                continue;
            }
            if sc.nr_reclaimed == 0 {
                self.lru.kswapd_failures += 1;
                self.events.kswapd_high_wmark_hit_quickly += 1;
                if self.node_unreclaimable() {
                    break;
                }
            }
            // Not balanced: kswapd cannot sleep and runs balance_pgdat again.
            self.events.pageoutrun += 1;
            sc = ScanControl::new(Reclaimer::Kswapd, 0, highest);
        }
        self.psi_memstall_leave();
        self.switch_to(prev);
        if out_of_time {
            self.lru.kswapd_sc = Some(sc);
            self.lru.kswapd_running = true;
            return;
        }
        self.snapshot_refaults();
        self.lru.kswapd_woken = false;
        self.lru.kswapd_running = false;
        self.trace_kswapd_sleep();
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

#[cfg(test)]
mod tests {
    use super::*;

    const SIZES: [u64; 4] = [16000, 32000, 8000, 24000];

    fn sc(who: Reclaimer, priority: u32) -> ScanControl {
        let mut sc = ScanControl::new(who, SWAP_CLUSTER_MAX, 2);
        sc.priority = priority;
        sc
    }

    /// get_scan_count's rules in Linux 6.18's order, each with numbers
    /// computed by hand from mm/vmscan.c (sizes are the eligible lists:
    /// inactive anon, active anon, inactive file, active file).
    #[test]
    fn get_scan_count_follows_linux_rules_in_order() {
        use ScanBalance::*;
        let direct = sc(Reclaimer::Direct, 4);
        // 1. No free swap: file only, size >> priority.
        assert_eq!(
            get_scan_count(&direct, 60, false, SIZES),
            (File, [0, 0, 500, 1500])
        );
        // ... nor when the reclaimer may not swap.
        let mut no_swap = direct.clone();
        no_swap.may_swap = false;
        assert_eq!(get_scan_count(&no_swap, 200, true, SIZES).0, File);
        // 2. Cgroup reclaim (`reclaim SIZE`) at swappiness 0: file only;
        // global reclaim at swappiness 0 goes on to the fractions.
        let proactive = sc(Reclaimer::Proactive, 4);
        assert_eq!(
            get_scan_count(&proactive, 0, true, SIZES),
            (File, [0, 0, 500, 1500])
        );
        // 3. swappiness=max: anon only.
        assert_eq!(
            get_scan_count(&proactive, SWAPPINESS_ANON_ONLY, true, SIZES),
            (Anon, [1000, 2000, 0, 0])
        );
        // 4. Priority 0 with swappiness: every list by its size...
        let mut oom = sc(Reclaimer::Direct, 0);
        assert_eq!(get_scan_count(&oom, 60, true, SIZES), (Equal, SIZES));
        // ... but not at swappiness 0 (file_is_tiny and cache_trim_mode
        // still come first).
        oom.cache_trim_mode = true;
        assert_eq!(get_scan_count(&oom, 0, true, SIZES).0, File);
        // 5. file_is_tiny beats cache_trim_mode: anon only.
        let mut tiny = direct.clone();
        tiny.file_is_tiny = true;
        tiny.cache_trim_mode = true;
        assert_eq!(
            get_scan_count(&tiny, 60, true, SIZES),
            (Anon, [1000, 2000, 0, 0])
        );
        // 6. cache_trim_mode: file only.
        let mut trim = direct.clone();
        trim.cache_trim_mode = true;
        assert_eq!(get_scan_count(&trim, 60, true, SIZES).0, File);
        // 7. SCAN_FRACT, anon_cost 100, file_cost 300, swappiness 60:
        // total 400; anon 400+100 = 500, file 400+300 = 700, total 1200;
        // ap = 60 × 1201 / 501 = 143, fp = 140 × 1201 / 701 = 239;
        // 1000 × 143 / 382 = 374, 2000 × 143 / 382 = 748,
        // 500 × 239 / 382 = 312, 1500 × 239 / 382 = 938.
        let mut fract = direct.clone();
        fract.anon_cost = 100;
        fract.file_cost = 300;
        assert_eq!(
            get_scan_count(&fract, 60, true, SIZES),
            (Fract, [374, 748, 312, 938])
        );
        assert_eq!(calculate_pressure_balance(100, 300, 60), ([143, 239], 382));
        // Without costs, swappiness 100 halves each list, 0 spares anon,
        // 200 spares file.
        assert_eq!(
            get_scan_count(&direct, 100, true, SIZES),
            (Fract, [500, 1000, 250, 750])
        );
        assert_eq!(
            get_scan_count(&direct, 0, true, SIZES),
            (Fract, [0, 0, 500, 1500])
        );
        assert_eq!(
            get_scan_count(&direct, 200, true, SIZES),
            (Fract, [1000, 2000, 0, 0])
        );
    }

    #[test]
    fn zone_shares_follow_the_list_sizes() {
        assert_eq!(zone_shares(&[100, 300], 32), vec![8, 24]);
        // The remainder goes to the highest zone with room.
        assert_eq!(zone_shares(&[1, 1, 1], 2), vec![0, 1, 1]);
        assert_eq!(zone_shares(&[5, 0], 32), vec![5, 0]);
        assert_eq!(zone_shares(&[0, 0], 32), vec![0, 0]);
    }

    /// lru_note_cost: I/O weighs 32 rotations; the costs halve once they
    /// pass a quarter of the LRU pages.
    #[test]
    fn reclaim_costs_decay() {
        use crate::ctl::Scope;
        let mut k = crate::mm::boot_checked(crate::mm::Arch::X86_64, 256 << 20);
        let pid = k.execute_line(Scope::System, "spawn a").unwrap().unwrap();
        for line in ["mmap 64M name=h", "touch h 64M"] {
            k.execute_line(Scope::Process(pid), line).unwrap();
        }
        let lrusize: u64 = k.lru_sizes(k.lru.zones.len() - 1).iter().sum();
        k.lru_note_cost(false, 1, 5);
        assert_eq!((k.lru.anon_cost, k.lru.file_cost), (37, 0));
        k.lru_note_cost(true, 0, 3);
        assert_eq!((k.lru.anon_cost, k.lru.file_cost), (37, 3));
        // Past lrusize / 4: both halve.
        let big = lrusize / 4 + 1;
        k.lru_note_cost(true, 0, big);
        assert_eq!((k.lru.anon_cost, k.lru.file_cost), (18, (3 + big) / 2));
    }
}

#[cfg(test)]
mod reference_tests {
    use super::*;
    use crate::mm::namei::{FileKind, ROOT_INO};
    use crate::mm::process::testing::*;
    use crate::mm::types::{PAGE_SHIFT, PAGE_SIZE};

    /// Move LRU page `pfn` to the tail of its zone's inactive (or active)
    /// list, where the next scan takes it first. Its zone.
    fn to_tail(k: &mut Kernel, pfn: Pfn, active: bool) -> usize {
        let zone = k.page_alloc.zone_of(pfn).unwrap();
        let file = k.is_file_page(pfn);
        k.lru_del(pfn);
        let frames = &mut k.page_alloc.frames;
        frames.set_flag(pfn, FLAG_LRU, true);
        frames.set_flag(pfn, FLAG_ACTIVE, active);
        let (a, i) = k.lru.zones[zone].lists_mut(file);
        if active { a } else { i }.push_tail(frames, pfn);
        zone
    }

    /// Scan `pfn` alone from the tail of its inactive list.
    fn scan_inactive(k: &mut Kernel, pfn: Pfn) -> ReclaimResult {
        let referenced = k.page_alloc.frames.has_flag(pfn, FLAG_REFERENCED);
        let zone = to_tail(k, pfn, false);
        // lru_del dropped the flag: the page keeps it.
        k.page_alloc
            .frames
            .set_flag(pfn, FLAG_REFERENCED, referenced);
        let file = k.is_file_page(pfn);
        k.shrink_inactive(zone, 1, Reclaimer::Proactive, file)
    }

    fn referenced(k: &Kernel, pfn: Pfn) -> bool {
        k.page_alloc.frames.has_flag(pfn, FLAG_REFERENCED)
    }

    /// A faulted anon page has a young PTE and no PG_referenced: its first
    /// inactive scan keeps it (PG_referenced set, the young bit cleared);
    /// the second activates it if it was touched in between, else
    /// reclaims it (folio_check_references).
    #[test]
    fn a_mapped_anon_page_is_activated_only_when_used_twice() {
        let mut k = boot_with_swap(256 << 20);
        let pid = spawn(&mut k, "a");
        run(&mut k, pid, "mmap 8K name=h").unwrap();
        run(&mut k, pid, "touch h 8K").unwrap();
        let slot = k.procs.slot_of(pid).unwrap();
        let vpn = addr(&k, pid, "h") >> PAGE_SHIFT;
        let (a, b) = (k.pte(slot, vpn).pfn(), k.pte(slot, vpn + 1).pfn());
        assert!(!referenced(&k, a) && k.pte(slot, vpn).is_young());
        for (pfn, v) in [(a, vpn), (b, vpn + 1)] {
            let activated = k.events.pgactivate;
            let r = scan_inactive(&mut k, pfn);
            assert_eq!((r.scanned, r.reclaimed), (1, 0));
            assert_eq!(k.events.pgactivate, activated);
            let zone = k.page_alloc.zone_of(pfn).unwrap();
            assert_eq!(k.lru.zones[zone].inactive_anon.head(), Some(pfn));
            assert!(!k.page_alloc.frames.has_flag(pfn, FLAG_ACTIVE));
            assert!(referenced(&k, pfn));
            assert!(!k.pte(slot, v).is_young());
            k.check_lru().unwrap();
        }
        // Touched again: the second look activates it.
        run(&mut k, pid, "touch h 4K").unwrap();
        assert!(k.pte(slot, vpn).is_young());
        let activated = k.events.pgactivate;
        scan_inactive(&mut k, a);
        assert_eq!(k.events.pgactivate, activated + 1);
        assert!(k.page_alloc.frames.has_flag(a, FLAG_ACTIVE));
        assert!(referenced(&k, a));
        // Not touched: reclaimed (written to swap).
        let pswpout = k.events.pswpout;
        scan_inactive(&mut k, b);
        assert!(k.pte(slot, vpn + 1).is_swap());
        assert_eq!(k.events.pswpout, pswpout + 1);
        k.check_invariants().unwrap();
    }

    /// An unmapped page-cache page read once has PG_referenced and no
    /// young PTE: its first inactive scan reclaims it (RECLAIM_CLEAN).
    #[test]
    fn a_page_cache_page_read_once_is_reclaimed_at_its_first_scan() {
        let mut k = boot_tmp(256 << 20);
        let ino = k.vfs_create(ROOT_INO, "f", FileKind::Regular).unwrap();
        k.filemap_write(ino, 0, &vec![b'x'; PAGE_SIZE as usize])
            .unwrap();
        sys(&mut k, "sync").unwrap();
        k.drop_pagecache();
        k.filemap_read(ino, 0, PAGE_SIZE).unwrap();
        let pfn = k.vfs.inode(ino).unwrap().pages.get(0).unwrap();
        assert!(referenced(&k, pfn));
        assert_eq!(k.folio_referenced(pfn), (0, 0));
        let activated = k.events.pgactivate;
        let r = scan_inactive(&mut k, pfn);
        assert_eq!((r.scanned, r.reclaimed), (1, 1));
        assert_eq!(k.events.pgactivate, activated);
        assert!(k.vfs.inode(ino).unwrap().pages.get(0).is_none());
        k.check_invariants().unwrap();
    }

    /// A mapped file page with one young PTE is kept at its first scan,
    /// unless its mapping is executable: text is activated at once, and
    /// rotates on the active list while its PTE is young.
    #[test]
    fn executable_file_text_is_activated_and_rotates() {
        let mut k = boot_tmp(256 << 20);
        let pid = spawn(&mut k, "a");
        for name in ["text", "data"] {
            let ino = k.vfs_create(ROOT_INO, name, FileKind::Regular).unwrap();
            k.filemap_write(ino, 0, &vec![b'x'; PAGE_SIZE as usize])
                .unwrap();
        }
        sys(&mut k, "sync").unwrap();
        k.drop_pagecache();
        run(&mut k, pid, "mmap 4K file=/text prot=rx name=t").unwrap();
        run(&mut k, pid, "mmap 4K file=/data prot=r name=d").unwrap();
        run(&mut k, pid, "touch t 4K read").unwrap();
        run(&mut k, pid, "touch d 4K read").unwrap();
        let slot = k.procs.slot_of(pid).unwrap();
        let (t, d) = (
            addr(&k, pid, "t") >> PAGE_SHIFT,
            addr(&k, pid, "d") >> PAGE_SHIFT,
        );
        let (text, data) = (k.pte(slot, t).pfn(), k.pte(slot, d).pfn());
        assert!(!referenced(&k, text) && !referenced(&k, data));
        let activated = k.events.pgactivate;
        scan_inactive(&mut k, data);
        assert_eq!(k.events.pgactivate, activated);
        assert!(referenced(&k, data) && !k.page_alloc.frames.has_flag(data, FLAG_ACTIVE));
        scan_inactive(&mut k, text);
        assert_eq!(k.events.pgactivate, activated + 1);
        assert!(k.page_alloc.frames.has_flag(text, FLAG_ACTIVE));
        // Used again: shrink_active_list keeps it active (rotated).
        run(&mut k, pid, "touch t 4K read").unwrap();
        let zone = to_tail(&mut k, text, true);
        let deactivated = k.events.pgdeactivate;
        k.shrink_active(zone, 1, true);
        assert_eq!(k.events.pgdeactivate, deactivated);
        assert_eq!(k.lru.zones[zone].active_file.head(), Some(text));
        assert!(!k.pte(slot, t).is_young());
        // Not used since: deactivated at the next look.
        to_tail(&mut k, text, true);
        k.shrink_active(zone, 1, true);
        assert_eq!(k.events.pgdeactivate, deactivated + 1);
        assert_eq!(k.lru.zones[zone].inactive_file.head(), Some(text));
        k.check_invariants().unwrap();
    }

    /// A page whose write is in flight is dealt with before its
    /// references are looked at (shrink_folio_list checks writeback
    /// first): a swap-cache page mapped again by a read right after
    /// `madvise pageout` keeps its young PTE and gains no PG_referenced.
    #[test]
    fn a_page_under_writeback_keeps_its_references_for_later() {
        let mut k = boot_with_swap(256 << 20);
        let pid = spawn(&mut k, "a");
        run(&mut k, pid, "mmap 4K name=h").unwrap();
        run(&mut k, pid, "touch h 4K").unwrap();
        run(&mut k, pid, "madvise h 4K pageout").unwrap();
        run(&mut k, pid, "touch h 4K read").unwrap();
        let slot = k.procs.slot_of(pid).unwrap();
        let vpn = addr(&k, pid, "h") >> PAGE_SHIFT;
        let pfn = k.pte(slot, vpn).pfn();
        assert!(k.folio_test_writeback(pfn), "the write is in flight");
        assert!(k.pte(slot, vpn).is_young() && !referenced(&k, pfn));
        let r = scan_inactive(&mut k, pfn);
        assert_eq!((r.scanned, r.reclaimed), (1, 0));
        assert!(k.pte(slot, vpn).is_young(), "the young bit is left");
        assert!(!referenced(&k, pfn));
        // Once written, the next scan reads the references: kept once.
        sys(&mut k, "tick 100").unwrap();
        assert!(!k.folio_test_writeback(pfn));
        scan_inactive(&mut k, pfn);
        assert!(!k.pte(slot, vpn).is_young() && referenced(&k, pfn));
        k.check_invariants().unwrap();
    }

    /// shrink_active_list deactivates a page with a young PTE too (only
    /// executable file text rotates), clearing the young bit and setting
    /// PG_workingset; PG_referenced is left alone.
    #[test]
    fn shrink_active_deactivates_a_referenced_anon_page() {
        let mut k = boot_tmp(256 << 20);
        let pid = spawn(&mut k, "a");
        run(&mut k, pid, "mmap 4K name=h").unwrap();
        run(&mut k, pid, "touch h 4K").unwrap();
        let slot = k.procs.slot_of(pid).unwrap();
        let vpn = addr(&k, pid, "h") >> PAGE_SHIFT;
        let pfn = k.pte(slot, vpn).pfn();
        let zone = to_tail(&mut k, pfn, true);
        k.page_alloc.frames.set_flag(pfn, FLAG_REFERENCED, true);
        assert!(k.pte(slot, vpn).is_young());
        let deactivated = k.events.pgdeactivate;
        k.shrink_active_list(zone, 1);
        assert_eq!(k.events.pgdeactivate, deactivated + 1);
        assert_eq!(k.lru.zones[zone].inactive_anon.head(), Some(pfn));
        assert!(!k.page_alloc.frames.has_flag(pfn, FLAG_ACTIVE));
        assert!(k.page_alloc.frames.is_workingset(pfn));
        assert!(referenced(&k, pfn));
        assert!(!k.pte(slot, vpn).is_young());
        k.check_invariants().unwrap();
    }
}
