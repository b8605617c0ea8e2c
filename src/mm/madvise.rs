//! Advice about a range of memory (Linux: mm/madvise.c).

use super::Kernel;
use super::error::{MmError, MmResult};
use super::mmap::*;
use super::types::{MmSlot, PAGE_SHIFT, PAGE_SIZE, VirtAddr};

/// `madvise` advice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Advice {
    /// MADV_DONTNEED: drop the pages (and swap entries) of the range.
    DontNeed,
    /// MADV_PAGEOUT: reclaim the range now (swap it out).
    PageOut,
    /// MADV_COLD: deactivate the range (reclaim it first).
    Cold,
}

impl Kernel {
    /// `madvise(start, len, advice)`. The whole range must be mapped
    /// (ENOMEM, nothing done, otherwise).
    pub fn do_madvise(
        &mut self,
        slot: MmSlot,
        start: VirtAddr,
        len: u64,
        advice: Advice,
    ) -> MmResult<()> {
        let start = start.0;
        if !start.is_multiple_of(PAGE_SIZE) {
            return Err(MmError::Invalid(format!(
                "madvise address {start:#x} is not page aligned"
            )));
        }
        let end = page_align(len)
            .and_then(|l| start.checked_add(l))
            .ok_or_else(|| {
                MmError::Invalid(format!("madvise range {start:#x}+{len:#x} overflows"))
            })?;
        self.require_mapped(slot, start, end, "madvise")?;
        let (lo, hi) = (start >> PAGE_SHIFT, end >> PAGE_SHIFT);
        match advice {
            Advice::DontNeed => {
                self.zap_range(slot, lo, hi);
                Ok(())
            }
            Advice::PageOut => {
                self.madvise_pageout(slot, lo, hi);
                Ok(())
            }
            Advice::Cold => {
                self.madvise_cold(slot, lo, hi);
                Ok(())
            }
        }
    }

    /// The frames mapped (pages of their own) in `[lo, hi)` of `slot`.
    pub(crate) fn mapped_pages(&self, slot: MmSlot, lo: u64, hi: u64) -> Vec<super::types::Pfn> {
        let Ok(mm) = self.mm_of(slot) else {
            return Vec::new();
        };
        let pt = &mm.pgtables;
        let mut out = Vec::new();
        for (table, a, b, _) in pt.pte_tables(lo, hi) {
            for &e in &pt.entries(table)[a..b] {
                let pte = super::memory::Pte(e);
                if pte.is_page() {
                    out.push(pte.pfn());
                }
            }
        }
        out
    }

    /// MADV_PAGEOUT (`madvise_cold_or_pageout_pte_range` + `reclaim_pages`):
    /// write every mapped page of the range to swap now, referenced or
    /// not. Pages stay when no swap slot is free.
    fn madvise_pageout(&mut self, slot: MmSlot, lo: u64, hi: u64) {
        for pfn in self.mapped_pages(slot, lo, hi) {
            self.page_alloc
                .frames
                .set_flag(pfn, super::page_alloc::FLAG_REFERENCED, false);
            self.pageout(pfn);
        }
    }

    /// MADV_COLD (`madvise_cold_or_pageout_pte_range`, `lru_deactivate_fn`):
    /// every page of the range loses its referenced bit; active ones move
    /// to the head of the inactive list, so reclaim may take them without
    /// a second chance.
    fn madvise_cold(&mut self, slot: MmSlot, lo: u64, hi: u64) {
        use super::page_alloc::{FLAG_ACTIVE, FLAG_LRU, FLAG_REFERENCED};
        for pfn in self.mapped_pages(slot, lo, hi) {
            let frames = &mut self.page_alloc.frames;
            frames.set_flag(pfn, FLAG_REFERENCED, false);
            if !frames.has_flag(pfn, FLAG_LRU) || !frames.has_flag(pfn, FLAG_ACTIVE) {
                continue;
            }
            let Some(zone) = self.page_alloc.zone_of(pfn) else {
                continue;
            };
            self.lru_del(pfn);
            let frames = &mut self.page_alloc.frames;
            frames.set_flag(pfn, FLAG_LRU, true);
            self.lru.zones[zone].inactive_anon.push_head(frames, pfn);
            self.events.pgdeactivate += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::mm::process::testing::*;

    #[test]
    fn madvise_dontneed_drops_pages_and_keeps_the_vma() {
        let (mut k, pid) = setup();
        run(&mut k, pid, "mmap 64K name=buf").unwrap();
        run(&mut k, pid, "touch buf 64K").unwrap();
        let hwm = mm(&k, pid).peak_rss();
        run(&mut k, pid, "madvise buf+16K 32K dontneed").unwrap();
        assert_eq!(mm(&k, pid).rss_anon, 3 + 8);
        assert_eq!(mm(&k, pid).peak_rss(), hwm);
        assert_eq!(mm(&k, pid).map_count(), 2);
        assert_eq!(
            run(&mut k, pid, "madvise buf+1 4K dontneed")
                .unwrap_err()
                .errno(),
            libc::EINVAL
        );
        assert_eq!(
            run(&mut k, pid, "madvise buf-4K 8K dontneed")
                .unwrap_err()
                .errno(),
            libc::ENOMEM
        );
        // cold moves the pages to the inactive list, unreferenced.
        run(&mut k, pid, "madvise buf 64K cold").unwrap();
    }
}
