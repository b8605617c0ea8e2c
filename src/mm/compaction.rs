//! Memory compaction (Linux: mm/compaction.c): a migrate scanner walks a
//! zone up from its start isolating movable pages, a free scanner walks
//! down from its end isolating free pages in movable pageblocks, and each
//! isolated page moves to a free one ([`Kernel::migrate_page`]) until the
//! scanners meet or the zone has a free block of the order wanted.
//!
//! Who compacts: `echo 1 > sys/vm/compact_memory` (every zone, whole),
//! direct compaction in the allocation slow path (order > 0, counted as
//! compact_stall / compact_success / compact_fail, deferred after
//! failures), kcompactd woken by a failed high-order allocation, and
//! proactive compaction on `tick` while the node's fragmentation score is
//! above what `vm.compaction_proactiveness` allows.
//!
//! Simplifications: one mode (sync-light: every pageblock is a migration
//! source, pages under writeback are skipped rather than waited for), no
//! cached scanner positions between runs and no pageblock skip bits, so a
//! run starts from the zone's ends each time.

use std::collections::HashSet;

use super::Kernel;
use super::page_alloc::{
    Fallback, FrameState, MIGRATE_MOVABLE, PAGE_ALLOC_COSTLY_ORDER, WatermarkLevel, Zone,
};
use super::types::{MAX_PAGE_ORDER, NR_PAGE_ORDERS, Order, Pfn, ix};

/// Pages isolated per round (COMPACT_CLUSTER_MAX = SWAP_CLUSTER_MAX).
pub const COMPACT_CLUSTER_MAX: usize = 32;
/// Deferral grows to 1 << this many skipped attempts.
pub const COMPACT_MAX_DEFER_SHIFT: u32 = 6;
/// The order proactive compaction scores (COMPACTION_HPAGE_ORDER).
pub const COMPACTION_HPAGE_ORDER: u8 = 9;
/// kcompactd's proactive check period (HZ / 2).
pub const PROACTIVE_PERIOD_NS: u64 = 500_000_000;
/// Simulated CPU time a migrated page costs (copy 4 KiB, rewrite PTEs).
pub const MIGRATE_PAGE_NS: u64 = 500;

/// Who runs a compaction (what counters it feeds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compactor {
    /// `sys/vm/compact_memory`.
    Manual,
    /// Direct compaction in the allocation slow path.
    Direct,
    /// kcompactd, for a failed high-order allocation.
    Kcompactd,
    /// kcompactd's proactive compaction.
    Proactive,
}

/// `enum compact_result`, the cases the simulation tells apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompactResult {
    /// Compaction was deferred (recent failures).
    Deferred,
    /// Too little free memory to compact (`compaction_suitable` failed).
    Skipped,
    /// The fragmentation index says the failure is from low memory.
    NotSuitableZone,
    /// The scanners met: the whole zone was compacted.
    Complete,
    /// A free block of the wanted order exists.
    Success,
}

impl CompactResult {
    /// The `enum compact_result` value the trace event prints.
    pub fn status(self) -> u64 {
        match self {
            CompactResult::NotSuitableZone => 0,
            CompactResult::Skipped => 1,
            CompactResult::Deferred => 2,
            CompactResult::Complete => 5,
            CompactResult::Success => 8,
        }
    }
}

/// A zone's first pfn (for the trace events).
fn z_start(k: &Kernel, zone: usize) -> u64 {
    k.page_alloc.zones[zone].start_pfn
}

/// Per-zone compaction state (`zone->compact_*`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ZoneCompact {
    /// Attempts since the last deferral (`compact_considered`).
    pub considered: u64,
    /// Attempts are skipped until `considered` reaches 1 << this.
    pub defer_shift: u32,
    /// Lowest order that failed (`compact_order_failed`).
    pub order_failed: u8,
}

/// Compaction's tunables and the state of kcompactd.
#[derive(Clone, Debug)]
pub struct CompactState {
    /// Per zone, by index.
    pub zones: Vec<ZoneCompact>,
    /// vm.extfrag_threshold, 0..=1000.
    pub extfrag_threshold: u64,
    /// vm.compaction_proactiveness, 0..=100.
    pub proactiveness: u64,
    /// kcompactd's pending request: (order, highest zone).
    pub kcompactd_request: Option<(u8, usize)>,
    /// When kcompactd next checks the fragmentation score.
    pub next_proactive_ns: u64,
}

impl CompactState {
    /// Boot state for `zones` zones.
    pub fn new(zones: usize) -> CompactState {
        CompactState {
            zones: vec![ZoneCompact::default(); zones],
            extfrag_threshold: 500,
            proactiveness: 20,
            kcompactd_request: None,
            next_proactive_ns: PROACTIVE_PERIOD_NS,
        }
    }
}

/// `struct contig_page_info` (mm/vmstat.c): a zone's free blocks as the
/// fragmentation indices see them for one order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ContigPageInfo {
    /// Free pages.
    pub free_pages: u64,
    /// Free blocks of any order.
    pub free_blocks_total: u64,
    /// Blocks of the order asked about that the free blocks could give.
    pub free_blocks_suitable: u64,
}

/// `fill_contig_page_info`.
pub fn fill_contig_page_info(zone: &Zone, suitable_order: u8) -> ContigPageInfo {
    let mut info = ContigPageInfo::default();
    for order in 0..NR_PAGE_ORDERS {
        let blocks = zone.free_area[order].nr_free();
        info.free_blocks_total += blocks;
        info.free_pages += blocks << order;
        if order >= suitable_order as usize {
            info.free_blocks_suitable += blocks << (order - suitable_order as usize);
        }
    }
    info
}

/// `__fragmentation_index`, in thousandths: -1000 when a block of the
/// order is free; towards 0 a failure would be for lack of memory,
/// towards 1000 for fragmentation.
pub fn fragmentation_index(order: u8, info: &ContigPageInfo) -> i64 {
    if info.free_blocks_total == 0 {
        return 0;
    }
    if info.free_blocks_suitable > 0 {
        return -1000;
    }
    let requested = 1u64 << order;
    1000 - ((1000 + info.free_pages * 1000 / requested) / info.free_blocks_total) as i64
}

/// `unusable_free_index`, in thousandths: the share of free memory in
/// blocks too small for the order.
pub fn unusable_free_index(order: u8, info: &ContigPageInfo) -> u64 {
    if info.free_pages == 0 {
        return 1000;
    }
    (info.free_pages - (info.free_blocks_suitable << order)) * 1000 / info.free_pages
}

/// `extfrag_for_order`, in percent: the share of free memory in blocks
/// smaller than the order.
pub fn extfrag_for_order(zone: &Zone, order: u8) -> u64 {
    let info = fill_contig_page_info(zone, order);
    if info.free_pages == 0 {
        return 0;
    }
    (info.free_pages - (info.free_blocks_suitable << order)) * 100 / info.free_pages
}

/// `fragmentation_score_wmark`: proactive compaction starts above the
/// high mark and stops at the low one.
pub fn fragmentation_score_wmark(proactiveness: u64, low: bool) -> u64 {
    let wmark_low = 100u64.saturating_sub(proactiveness).max(5);
    if low {
        wmark_low
    } else {
        (wmark_low + 10).min(100)
    }
}

/// One compaction run over one zone (`struct compact_control`).
struct CompactControl {
    zone: usize,
    /// None: compact the whole zone (`compact_memory`, proactive).
    order: Option<u8>,
    highest: usize,
    /// The migrate type of the allocation compacted for.
    mt: u8,
    who: Compactor,
    migrate_pfn: u64,
    free_pfn: u64,
    /// Free frames isolated by the free scanner, order 0, allocated.
    freepages: Vec<Pfn>,
    migrate_scanned: u64,
    free_scanned: u64,
    migrated: u64,
}

impl Kernel {
    /// `compaction_suitable`: is there enough free memory above the
    /// watermark (plus twice the request, `compact_gap`) for compaction
    /// to have room, and for costly orders does the fragmentation index
    /// blame fragmentation rather than low memory?
    pub fn compaction_suitable(&self, zone: usize, order: u8, highest: usize) -> CompactResult {
        let pa = &self.page_alloc;
        let z = &pa.zones[zone];
        let mark = if order > PAGE_ALLOC_COSTLY_ORDER {
            z.watermark.low
        } else {
            z.watermark.min
        } + (2u64 << order);
        if !pa.watermark_ok(zone, Order(0), mark, highest) {
            return CompactResult::Skipped;
        }
        if order > PAGE_ALLOC_COSTLY_ORDER {
            let index = fragmentation_index(order, &fill_contig_page_info(z, order));
            if index >= 0 && index as u64 <= self.compaction.extfrag_threshold {
                return CompactResult::NotSuitableZone;
            }
        }
        CompactResult::Success
    }

    /// `compaction_deferred`: skip this attempt after recent failures?
    fn compaction_deferred(&mut self, zone: usize, order: u8) -> bool {
        let z = &mut self.compaction.zones[zone];
        let limit = 1u64 << z.defer_shift;
        if order < z.order_failed {
            return false;
        }
        z.considered += 1;
        if z.considered >= limit {
            z.considered = limit;
            return false;
        }
        true
    }

    /// `defer_compaction`: a failure doubles how many attempts are skipped.
    fn defer_compaction(&mut self, zone: usize, order: u8) {
        let z = &mut self.compaction.zones[zone];
        z.considered = 0;
        z.defer_shift = (z.defer_shift + 1).min(COMPACT_MAX_DEFER_SHIFT);
        if order < z.order_failed {
            z.order_failed = order;
        }
    }

    /// `compaction_defer_reset`.
    fn compaction_defer_reset(&mut self, zone: usize, order: u8, alloc_success: bool) {
        let z = &mut self.compaction.zones[zone];
        if alloc_success {
            z.considered = 0;
            z.defer_shift = 0;
        }
        if order >= z.order_failed {
            z.order_failed = order + 1;
        }
    }

    /// `__alloc_pages_direct_compact`: compact the zones of the zonelist
    /// (`try_to_compact_pages`), then try the free lists. Counts a stall
    /// when some zone was compacted, then a success or a failure.
    pub(crate) fn alloc_pages_direct_compact(
        &mut self,
        order: Order,
        highest: usize,
        req: super::page_alloc::AllocRequest,
    ) -> Option<Pfn> {
        if order.0 == 0 {
            return None;
        }
        let mut compacted = false;
        let zones: Vec<usize> = self.page_alloc.zonelist(highest).collect();
        self.psi_memstall_enter();
        for zone in zones {
            if self.compaction_deferred(zone, order.0) {
                continue;
            }
            let result =
                self.compact_zone_order(zone, Some(order.0), highest, req.mt, Compactor::Direct);
            match result {
                CompactResult::Success => {
                    compacted = true;
                    self.compaction_defer_reset(zone, order.0, false);
                    break;
                }
                CompactResult::Complete => {
                    compacted = true;
                    self.defer_compaction(zone, order.0);
                }
                _ => {}
            }
        }
        self.psi_memstall_leave();
        if !compacted {
            return None;
        }
        self.events.compact_stall += 1;
        let page =
            self.page_alloc
                .get_page_from_freelist_mt(order, highest, WatermarkLevel::Min, req);
        match page {
            Some(pfn) => {
                if let Some(zone) = self.page_alloc.zone_of(pfn) {
                    self.compaction_defer_reset(zone, order.0, true);
                }
                self.events.compact_success += 1;
            }
            None => self.events.compact_fail += 1,
        }
        page
    }

    /// `compact_zone_order` with its checks: nothing to do when the
    /// watermark for the order is met already, skipped when compaction
    /// cannot help; else [`Self::compact_zone`].
    fn compact_zone_order(
        &mut self,
        zone: usize,
        order: Option<u8>,
        highest: usize,
        mt: u8,
        who: Compactor,
    ) -> CompactResult {
        if let Some(order) = order {
            let mark = self.page_alloc.zones[zone].watermark.min;
            if self
                .page_alloc
                .watermark_ok(zone, Order(order), mark, highest)
            {
                return CompactResult::Success;
            }
            match self.compaction_suitable(zone, order, highest) {
                CompactResult::Success => {}
                other => return other,
            }
        }
        self.compact_zone(zone, order, highest, mt, who)
    }

    /// `compact_memory` (`echo 1 > sys/vm/compact_memory`): compact every
    /// populated zone whole.
    pub fn compact_nodes(&mut self) {
        let zones: Vec<usize> = self
            .page_alloc
            .zonelist(self.page_alloc.zones.len() - 1)
            .collect();
        for zone in zones.into_iter().rev() {
            self.compact_zone(zone, None, zone, MIGRATE_MOVABLE, Compactor::Manual);
        }
    }

    /// `compact_zone`: run the two scanners over the zone until they meet
    /// or (for an order) a block of that order is free.
    fn compact_zone(
        &mut self,
        zone: usize,
        order: Option<u8>,
        highest: usize,
        mt: u8,
        who: Compactor,
    ) -> CompactResult {
        let pageblock = 1u64 << self.page_alloc.pageblock_order;
        let z = &self.page_alloc.zones[zone];
        let top = z.present_ranges.last().map_or(z.start_pfn, |r| r.1);
        let mut cc = CompactControl {
            zone,
            order,
            highest,
            mt,
            who,
            migrate_pfn: z.start_pfn,
            // The free scanner starts at the last pageblock of the zone.
            free_pfn: top.saturating_sub(1) & !(pageblock - 1),
            freepages: Vec::new(),
            migrate_scanned: 0,
            free_scanned: 0,
            migrated: 0,
        };
        let zone_end = self.page_alloc.zones[zone].end_pfn();
        let sync = who != Compactor::Direct;
        self.trace_compaction(
            None,
            [z_start(self, zone), cc.migrate_pfn, cc.free_pfn, zone_end],
            sync,
        );
        let writeback: HashSet<u64> = self.vfs.wb.pfns_in_flight().map(|p| p.0).collect();
        let result = loop {
            if let Some(result) = self.compact_finished(&cc) {
                break result;
            }
            let isolated = self.isolate_migratepages(&mut cc, &writeback);
            if !isolated.is_empty() {
                self.migrate_pages(&mut cc, isolated);
            }
        };
        // Unused free pages go back (`release_free_list`).
        for pfn in std::mem::take(&mut cc.freepages) {
            let _ = self.free_pages(pfn, Order(0));
        }
        self.events.compact_migrate_scanned += cc.migrate_scanned;
        self.events.compact_free_scanned += cc.free_scanned;
        if matches!(cc.who, Compactor::Kcompactd | Compactor::Proactive) {
            self.events.compact_daemon_migrate_scanned += cc.migrate_scanned;
            self.events.compact_daemon_free_scanned += cc.free_scanned;
        }
        self.account_system(cc.migrated * MIGRATE_PAGE_NS);
        self.trace_compaction(
            Some(result.status()),
            [z_start(self, zone), cc.migrate_pfn, cc.free_pfn, zone_end],
            sync,
        );
        result
    }

    /// `__compact_finished`: the scanners met (Complete); for an order, a
    /// free block of it on a list the request could use, looked at only
    /// when the migrate scanner is at a pageblock boundary (Success); for
    /// proactive compaction, the zone's score at the low mark.
    fn compact_finished(&self, cc: &CompactControl) -> Option<CompactResult> {
        if cc.free_pfn <= cc.migrate_pfn {
            return Some(CompactResult::Complete);
        }
        let pageblock = 1u64 << self.page_alloc.pageblock_order;
        if cc.who == Compactor::Proactive {
            let score = extfrag_for_order(&self.page_alloc.zones[cc.zone], COMPACTION_HPAGE_ORDER);
            let low = fragmentation_score_wmark(self.compaction.proactiveness, true);
            return (score <= low).then_some(CompactResult::Success);
        }
        let order = cc.order?;
        if !cc.migrate_pfn.is_multiple_of(pageblock) {
            return None;
        }
        let pa = &self.page_alloc;
        let mark = pa.zones[cc.zone].watermark.min;
        if !pa.watermark_ok(cc.zone, Order(0), mark, cc.highest) {
            return None;
        }
        let zone = &pa.zones[cc.zone];
        for o in order..=MAX_PAGE_ORDER {
            let area = &zone.free_area[ix(o)];
            if !area.is_empty(cc.mt) {
                return Some(CompactResult::Success);
            }
            if let Fallback::Found(_) = pa.find_suitable_fallback(area, o, cc.mt, true) {
                return Some(CompactResult::Success);
            }
        }
        None
    }

    /// `isolate_migratepages`: from the migrate scanner's position, take up
    /// to COMPACT_CLUSTER_MAX movable pages off their LRU positions (they
    /// stay linked; migration swaps the frame in place), stopping at the
    /// end of the pageblock so the finish check runs at boundaries.
    fn isolate_migratepages(
        &mut self,
        cc: &mut CompactControl,
        writeback: &HashSet<u64>,
    ) -> Vec<Pfn> {
        let pageblock = 1u64 << self.page_alloc.pageblock_order;
        let block_end = ((cc.migrate_pfn / pageblock) + 1) * pageblock;
        let end = block_end.min(cc.free_pfn);
        let mut out = Vec::new();
        let mut pfn = cc.migrate_pfn;
        while pfn < end && out.len() < COMPACT_CLUSTER_MAX {
            let p = Pfn(pfn);
            cc.migrate_scanned += 1;
            match self.page_alloc.frames.state(p) {
                FrameState::Free => {
                    let pages = self.page_alloc.frames.order(p).pages();
                    pfn += pages;
                    continue;
                }
                FrameState::Allocated => {
                    let order = self.page_alloc.frames.order(p);
                    if self.migratable(p, writeback).is_ok() {
                        out.push(p);
                    }
                    pfn += order.pages();
                    continue;
                }
                _ => pfn += 1,
            }
        }
        cc.migrate_pfn = pfn.min(end.max(cc.migrate_pfn));
        if pfn >= end {
            cc.migrate_pfn = end;
        }
        self.events.compact_isolated += out.len() as u64;
        out
    }

    /// `isolate_freepages`: walk pageblocks down from the free scanner's
    /// position taking free blocks of movable pageblocks (or free blocks of
    /// a pageblock or more, `suitable_migration_target`), split to order 0,
    /// until `want` pages are held or the scanners meet.
    fn isolate_freepages(&mut self, cc: &mut CompactControl, want: usize) {
        let pageblock = 1u64 << self.page_alloc.pageblock_order;
        let zone_start = self.page_alloc.zones[cc.zone].start_pfn;
        let zone_end = self.page_alloc.zones[cc.zone].end_pfn();
        // Never take free pages from the pageblock the migrate scanner is in.
        let low = (cc.migrate_pfn / pageblock + 1) * pageblock;
        while cc.freepages.len() < want && cc.free_pfn >= low {
            let block = cc.free_pfn;
            let start = block.max(zone_start);
            let end = (block + pageblock)
                .min(zone_end)
                .min(self.page_alloc.max_pfn);
            let suitable = self.page_alloc.pageblock_type(Pfn(block)) == MIGRATE_MOVABLE;
            let mut pfn = start;
            while pfn < end && cc.freepages.len() < want {
                let p = Pfn(pfn);
                cc.free_scanned += 1;
                match self.page_alloc.frames.state(p) {
                    FrameState::Free => {
                        let order = self.page_alloc.frames.order(p);
                        if suitable || order.0 >= self.page_alloc.pageblock_order {
                            let n = self.page_alloc.isolate_free_page(cc.zone, p);
                            self.events.compact_isolated += n;
                            for i in 0..n {
                                cc.freepages.push(Pfn(pfn + i));
                            }
                        }
                        pfn += order.pages();
                    }
                    FrameState::Allocated => pfn += self.page_alloc.frames.order(p).pages(),
                    _ => pfn += 1,
                }
            }
            if pfn >= end {
                // The block is done: go down one.
                if block < pageblock {
                    break;
                }
                cc.free_pfn = block - pageblock;
            } else {
                break;
            }
        }
        // pop() hands out the highest pfn first: the top of the zone fills
        // from its end down, as the free scanner walks.
        cc.freepages.sort_unstable();
    }

    /// `migrate_pages`: move each isolated page to an isolated free page.
    fn migrate_pages(&mut self, cc: &mut CompactControl, pages: Vec<Pfn>) {
        for old in pages {
            if cc.freepages.is_empty() {
                self.isolate_freepages(cc, COMPACT_CLUSTER_MAX);
            }
            let Some(new) = cc.freepages.pop() else {
                // No room left above the migrate scanner: the run ends.
                self.events.pgmigrate_fail += 1;
                cc.free_pfn = cc.migrate_pfn;
                continue;
            };
            if new.0 <= old.0 {
                // Moving down would undo the work: give the page back.
                let _ = self.free_pages(new, Order(0));
                self.events.pgmigrate_fail += 1;
                continue;
            }
            self.migrate_page(old, new);
            self.events.pgmigrate_success += 1;
            cc.migrated += 1;
        }
    }

    /// kcompactd: a failed high-order allocation asked for it
    /// (`wakeup_kcompactd`); it runs when time passes.
    pub(crate) fn wakeup_kcompactd(&mut self, order: u8, highest: usize) {
        let req = self
            .compaction
            .kcompactd_request
            .get_or_insert((order, highest));
        req.0 = req.0.max(order);
        req.1 = req.1.max(highest);
    }

    /// kcompactd's turn while time passes up to `now`: its pending
    /// request (`kcompactd_do_work`), then every 500 ms the proactive
    /// check (`should_proactive_compact_node`).
    pub(crate) fn kcompactd_run(&mut self, now: u64) {
        if let Some((order, highest)) = self.compaction.kcompactd_request.take() {
            let prev = self.switch_to(Some(self.kthreads.kcompactd));
            self.kcompactd_do_work(order, highest);
            self.switch_to(prev);
        }
        if self.compaction.proactiveness == 0 {
            return;
        }
        while self.compaction.next_proactive_ns <= now {
            self.compaction.next_proactive_ns += PROACTIVE_PERIOD_NS;
            if self.lru.kswapd_woken {
                continue;
            }
            let high = fragmentation_score_wmark(self.compaction.proactiveness, false);
            let score = self.fragmentation_score_node();
            if score <= high {
                continue;
            }
            let prev = self.switch_to(Some(self.kthreads.kcompactd));
            let zones: Vec<usize> = self
                .page_alloc
                .zonelist(self.page_alloc.zones.len() - 1)
                .collect();
            for zone in zones.into_iter().rev() {
                self.compact_zone(zone, None, zone, MIGRATE_MOVABLE, Compactor::Proactive);
            }
            self.switch_to(prev);
            if self.fragmentation_score_node() >= score {
                // No progress: back off (default_timeout << COMPACT_MAX_DEFER_SHIFT).
                self.compaction.next_proactive_ns +=
                    PROACTIVE_PERIOD_NS * ((1 << COMPACT_MAX_DEFER_SHIFT) - 1);
            }
        }
    }

    /// `kcompactd_do_work`: compact the zones up to `highest` for `order`.
    fn kcompactd_do_work(&mut self, order: u8, highest: usize) {
        self.events.compact_daemon_wake += 1;
        let zones: Vec<usize> = self.page_alloc.zonelist(highest).collect();
        for zone in zones.into_iter().rev() {
            if self.compaction_deferred(zone, order) {
                continue;
            }
            let mark = self.page_alloc.zones[zone].watermark.min;
            if self.page_alloc.watermark_ok(zone, Order(order), mark, zone) {
                continue;
            }
            if self.compaction_suitable(zone, order, zone) != CompactResult::Success {
                continue;
            }
            match self.compact_zone(
                zone,
                Some(order),
                zone,
                MIGRATE_MOVABLE,
                Compactor::Kcompactd,
            ) {
                CompactResult::Success => self.compaction_defer_reset(zone, order, false),
                CompactResult::Complete => self.defer_compaction(zone, order),
                _ => {}
            }
        }
    }

    /// `fragmentation_score_node`: Σ over zones of the order-9 extfrag
    /// score weighted by present pages.
    pub fn fragmentation_score_node(&self) -> u64 {
        let pa = &self.page_alloc;
        let present: u64 = pa.total_present().max(1);
        pa.zones
            .iter()
            .filter(|z| z.is_populated())
            .map(|z| z.present * extfrag_for_order(z, COMPACTION_HPAGE_ORDER) / present)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctl::Scope;
    use crate::mm::page_alloc::{MIGRATE_UNMOVABLE, PageKind, ZoneType};
    use crate::mm::types::{Arch, PAGE_SIZE, Vpn};

    const A: u64 = 0x1000_0000;
    const B: u64 = 0x8000_0000;

    /// A machine whose DMA32 zone has no free block of a pageblock or
    /// more: one process's two mappings touched in turn, page by page, so
    /// `a` holds every other frame, then `b` unmapped. Returns the pid and
    /// the pages of `a`.
    fn fragmented(mem: u64) -> (crate::ctl::Machine, crate::mm::types::Pid, u64) {
        let mut k = crate::mm::boot_checked(Arch::X86_64, mem);
        let pid = k
            .execute_line(Scope::System, "spawn frag")
            .unwrap()
            .unwrap();
        let p = Scope::Process(pid);
        k.execute_line(p, format!("mmap {}M addr={A:#x} name=a", mem >> 21))
            .unwrap();
        k.execute_line(p, format!("mmap {}M addr={B:#x} name=b", mem >> 21))
            .unwrap();
        let dma32 = k.page_alloc.zone_index(ZoneType::Dma32).unwrap();
        let mut pages = 0;
        while k.page_alloc.zones[dma32].free_pages > k.page_alloc.zones[dma32].watermark.high + 64 {
            k.execute_line(p, format!("touch a+{} 4K", pages * PAGE_SIZE))
                .unwrap();
            k.execute_line(p, format!("touch b+{} 4K", pages * PAGE_SIZE))
                .unwrap();
            pages += 1;
        }
        // What is left in big blocks the kernel keeps (unmovable), in
        // DMA too, so that nothing of order 9 is free anywhere.
        for zone in 0..=dma32 {
            while k.page_alloc.zones[zone].free_area[9..]
                .iter()
                .any(|a| a.nr_free() > 0)
            {
                k.page_alloc
                    .rmqueue(zone, Order(9), PageKind::Kernel)
                    .unwrap();
            }
        }
        k.execute_line(p, format!("munmap b {}M", mem >> 21))
            .unwrap();
        k.check_invariants().unwrap();
        (k, pid, pages)
    }

    /// Direct compaction makes an order-9 allocation succeed that the free
    /// lists alone could not serve; every page it moved keeps its bytes
    /// and its PTE follows it.
    #[test]
    fn direct_compaction_serves_order_9_and_keeps_pages_intact() {
        let (mut k, pid, pages) = fragmented(256 << 20);
        let slot = k.procs.slot_of(pid).unwrap();
        // A signature in every page of `a`.
        for i in 0..pages {
            let sig = format!("page {i} of a");
            k.write_mem(pid, A + i * PAGE_SIZE + 100, sig.as_bytes())
                .unwrap();
        }
        let before: Vec<Pfn> = (0..pages)
            .map(|i| k.pte(slot, (A >> 12) + i).pfn())
            .collect();
        let dma32 = k.page_alloc.zone_index(ZoneType::Dma32).unwrap();
        let free = k.page_alloc.zones[dma32].free_pages;
        assert!(free > 4 * 512, "plenty free: {free} pages");
        // Without compaction the free lists have nothing of order 9.
        assert!(
            k.page_alloc
                .get_page_from_freelist(Order(9), dma32, WatermarkLevel::Min, PageKind::Kernel)
                .is_none()
        );
        k.execute_line(Scope::System, "alloc_pages 9 zone=DMA32 tag=huge")
            .unwrap();
        k.check_invariants().unwrap();
        let e = &k.events;
        assert_eq!(
            (e.compact_stall, e.compact_success, e.compact_fail),
            (1, 1, 0)
        );
        assert!(e.pgmigrate_success > 0);
        assert!(e.compact_migrate_scanned > 0 && e.compact_free_scanned > 0);
        let mut moved = 0;
        for i in 0..pages {
            let vpn = (A >> 12) + i;
            let pte = k.pte(slot, vpn);
            assert!(pte.is_page(), "page {i} still mapped");
            let pfn = pte.pfn();
            moved += u64::from(pfn != before[i as usize]);
            assert_eq!(k.page_alloc.frames.kind(pfn), PageKind::UserAnon);
            assert_eq!(k.page_alloc.frames.rmap(pfn), (slot, Vpn(vpn)));
            let sig = format!("page {i} of a");
            let got = k.read_mem(pid, A + i * PAGE_SIZE + 100, sig.len()).unwrap();
            assert_eq!(got, sig.as_bytes(), "page {i} kept its bytes");
        }
        // The rest of the migrations moved the process's stack pages.
        assert!(moved > 0 && moved <= k.events.pgmigrate_success);
        // The block went to an unmovable request: its pageblock was claimed.
        let (_, blocks) = k.tags.pages.iter().next().unwrap();
        let (pfn, order) = blocks[0];
        assert_eq!(order, Order(9));
        assert_eq!(k.page_alloc.pageblock_type(pfn), MIGRATE_UNMOVABLE);
    }

    /// `compact_memory` moves the whole zone's movable pages up, so the
    /// free memory ends in pageblocks: the order-9 fragmentation score
    /// falls and the vmstat counters move.
    #[test]
    fn compact_memory_defragments_the_zone() {
        let (mut k, _pid, _) = fragmented(128 << 20);
        let dma32 = k.page_alloc.zone_index(ZoneType::Dma32).unwrap();
        let before = extfrag_for_order(&k.page_alloc.zones[dma32], 9);
        assert!(before > 90, "{before}");
        k.sysctl_write("vm/compact_memory", "1").unwrap();
        k.check_invariants().unwrap();
        let after = extfrag_for_order(&k.page_alloc.zones[dma32], 9);
        assert!(after < 30, "{before} -> {after}");
        assert!(k.events.pgmigrate_success > 1000);
        assert_eq!(k.events.compact_stall, 0);
        assert_eq!(
            k.sysctl_write("vm/compact_memory", "2")
                .unwrap_err()
                .errno(),
            libc::EINVAL
        );
        assert_eq!(
            k.sysctl_write("vm/extfrag_threshold", "1001")
                .unwrap_err()
                .errno(),
            libc::EINVAL
        );
        assert_eq!(
            k.sysctl_write("vm/compaction_proactiveness", "101")
                .unwrap_err()
                .errno(),
            libc::EINVAL
        );
    }

    /// Page-cache pages move too: the file's page index and the PTEs of
    /// a shared mapping follow them, and their bytes stay.
    #[test]
    fn compaction_moves_page_cache_and_fixes_the_index() {
        let mut k = crate::mm::boot_checked(Arch::X86_64, 128 << 20);
        let pid = k.execute_line(Scope::System, "spawn f").unwrap().unwrap();
        let p = Scope::Process(pid);
        k.execute_line(p, "write /f 0 4M").unwrap();
        k.execute_line(p, format!("mmap 4M file=/f shared addr={A:#x} name=m"))
            .unwrap();
        k.execute_line(p, "touch m 4M read").unwrap();
        k.write_mem(pid, A + 5 * PAGE_SIZE, b"file bytes").unwrap();
        let ino = k.vfs_resolve("/f").unwrap();
        let before: Vec<Pfn> = (0..1024)
            .map(|i| k.vfs.inode(ino).unwrap().pages.get(i).unwrap())
            .collect();
        k.sysctl_write("vm/compact_memory", "1").unwrap();
        k.check_invariants().unwrap();
        let slot = k.procs.slot_of(pid).unwrap();
        let mut moved = 0;
        for i in 0..1024u64 {
            let pfn = k.vfs.inode(ino).unwrap().pages.get(i).unwrap();
            moved += u64::from(pfn != before[i as usize]);
            assert_eq!(k.pte(slot, (A >> 12) + i).pfn(), pfn, "page {i}");
        }
        assert!(moved > 0, "some file pages moved");
        assert_eq!(
            k.read_mem(pid, A + 5 * PAGE_SIZE, 10).unwrap(),
            b"file bytes"
        );
    }

    /// Shmem pages move too: the object's page index and the PTEs of
    /// every process mapping it (here parent and forked child) follow
    /// them, and their bytes stay.
    #[test]
    fn compaction_moves_shmem_pages_for_every_mapper() {
        use crate::mm::shmem::ShmemSlot;
        let mut k = crate::mm::boot_checked(Arch::X86_64, 128 << 20);
        let pid = k.execute_line(Scope::System, "spawn s").unwrap().unwrap();
        let p = Scope::Process(pid);
        k.execute_line(p, format!("mmap 4M shared addr={A:#x} name=m"))
            .unwrap();
        k.execute_line(p, "touch m 4M write").unwrap();
        k.write_mem(pid, A + 7 * PAGE_SIZE, b"shmem bytes").unwrap();
        let child = k
            .execute_line(Scope::System, format!("fork {pid}"))
            .unwrap();
        let child = child.unwrap_or(crate::mm::types::Pid(k.ns_last_pid));
        k.execute_line(Scope::Process(child), "touch m 4M read")
            .unwrap();
        let (id, _) = k.shmem.iter().next().unwrap();
        let page = |k: &crate::ctl::Machine, i: u64| match k.shmem.lookup(id, i) {
            Some(ShmemSlot::Page(pfn)) => pfn,
            other => panic!("page {i}: {other:?}"),
        };
        let before: Vec<Pfn> = (0..1024).map(|i| page(&k, i)).collect();
        k.sysctl_write("vm/compact_memory", "1").unwrap();
        k.check_invariants().unwrap();
        let mut moved = 0;
        for who in [pid, child] {
            let slot = k.procs.slot_of(who).unwrap();
            for i in 0..1024u64 {
                let pfn = page(&k, i);
                moved += u64::from(pfn != before[i as usize]);
                assert_eq!(k.pte(slot, (A >> 12) + i).pfn(), pfn, "pid {who} page {i}");
            }
            assert_eq!(
                k.read_mem(who, A + 7 * PAGE_SIZE, 11).unwrap(),
                b"shmem bytes"
            );
        }
        assert!(moved > 0, "some shmem pages moved");
    }

    /// Linux's formulas: a zone with 8 free order-0 pages and one free
    /// order-3 block.
    #[test]
    fn fragmentation_indices_follow_vmstat_c() {
        let info = ContigPageInfo {
            free_pages: 16,
            free_blocks_total: 9,
            free_blocks_suitable: 0,
        };
        // 1000 - (1000 + 16 * 1000 / 16) / 9 = 1000 - 222.
        assert_eq!(fragmentation_index(4, &info), 778);
        let suitable = ContigPageInfo {
            free_blocks_suitable: 1,
            ..info
        };
        assert_eq!(fragmentation_index(3, &suitable), -1000);
        // Half the free pages are in blocks too small for order 3.
        assert_eq!(unusable_free_index(3, &suitable), 500);
        assert_eq!(unusable_free_index(0, &ContigPageInfo::default()), 1000);
        assert_eq!(fragmentation_score_wmark(20, true), 80);
        assert_eq!(fragmentation_score_wmark(20, false), 90);
        assert_eq!(fragmentation_score_wmark(100, true), 5);
    }
}
