//! Page reclaim (Linux: mm/vmscan.c, mm/swap.c): the anon LRU lists.
//!
//! Every user page sits on its zone's inactive or active anon list, linked
//! through the frame links (no heap object per page). Touches set the
//! referenced bit (the PTE "young" bit of real hardware); reclaim gives a
//! referenced page a second chance instead of evicting it.

use super::Kernel;
use super::page_alloc::{FLAG_ACTIVE, FLAG_LRU, FLAG_REFERENCED, FrameList};
use super::types::Pfn;

/// The anon LRU lists of one zone.
#[derive(Clone, Debug, Default)]
pub struct ZoneLru {
    /// Recently used anon pages.
    pub active_anon: FrameList,
    /// Candidates for reclaim; the tail is the oldest.
    pub inactive_anon: FrameList,
}

/// LRU lists of every zone, indexed like `PageAllocator::zones`.
#[derive(Clone, Debug, Default)]
pub struct Lru {
    /// Per-zone lists.
    pub zones: Vec<ZoneLru>,
}

impl Lru {
    /// Empty lists for `zones` zones.
    pub fn new(zones: usize) -> Lru {
        Lru {
            zones: vec![ZoneLru::default(); zones],
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
}

impl Kernel {
    /// `folio_add_lru_vma`: a new anon page goes to the head of its zone's
    /// inactive list (since Linux 5.9 new anon pages start inactive).
    pub fn lru_add_anon(&mut self, pfn: Pfn) {
        let zone = self
            .page_alloc
            .zone_of(pfn)
            .expect("user page lies in a zone");
        let frames = &mut self.page_alloc.frames;
        frames.set_flag(pfn, FLAG_ACTIVE | FLAG_REFERENCED, false);
        frames.set_flag(pfn, FLAG_LRU, true);
        self.lru.zones[zone].inactive_anon.push_head(frames, pfn);
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
        let frames = &mut self.page_alloc.frames;
        let lists = &mut self.lru.zones[zone];
        if frames.has_flag(pfn, FLAG_ACTIVE) {
            lists.active_anon.remove(frames, pfn);
        } else {
            lists.inactive_anon.remove(frames, pfn);
        }
        frames.set_flag(pfn, FLAG_LRU | FLAG_ACTIVE | FLAG_REFERENCED, false);
    }

    /// A touch of a mapped page: set its referenced bit.
    pub fn mark_page_accessed(&mut self, pfn: Pfn) {
        self.page_alloc.frames.set_flag(pfn, FLAG_REFERENCED, true);
    }

    /// Check that the LRU lists hold exactly the frames flagged as on them.
    pub fn check_lru(&self) -> Result<(), String> {
        let frames = &self.page_alloc.frames;
        for (zone, lists) in self.lru.zones.iter().enumerate() {
            for (list, active) in [(&lists.active_anon, true), (&lists.inactive_anon, false)] {
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
