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
    /// `madvise(start, len, advice)` (`madvise_walk_vmas`): the advice goes
    /// to every mapped part of the range, VMA by VMA; a hole anywhere in
    /// the range makes the call fail with ENOMEM afterwards, as on Linux.
    /// Length 0 does nothing.
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
        let mm = self.mm_of(slot)?;
        // The mapped pieces of [start, end), in address order.
        let mut pieces = Vec::new();
        if let Some(v) = mm.vma_lookup(start) {
            pieces.push((start, v.end.min(end)));
        }
        for v in mm.vmas.range(start..end).map(|(_, v)| v) {
            if v.start > start {
                pieces.push((v.start, v.end.min(end)));
            }
        }
        let mut hole = None;
        let mut at = start;
        for &(a, b) in &pieces {
            if a > at && hole.is_none() {
                hole = Some(at);
            }
            at = b;
        }
        if at < end && hole.is_none() {
            hole = Some(at);
        }
        for (a, b) in pieces {
            let (lo, hi) = (a >> PAGE_SHIFT, b >> PAGE_SHIFT);
            match advice {
                Advice::DontNeed => {
                    self.zap_range(slot, lo, hi);
                    self.reclaim_pt(slot, lo, hi);
                }
                Advice::PageOut => self.madvise_pageout(slot, lo, hi),
                Advice::Cold => self.madvise_cold(slot, lo, hi),
            }
        }
        match hole {
            Some(at) => Err(MmError::NoMemory(format!(
                "madvise: {at:#x} is not mapped (range {start:#x}-{end:#x}; the mapped parts were advised)"
            ))),
            None => Ok(()),
        }
    }

    /// CONFIG_PT_RECLAIM (x86_64): after MADV_DONTNEED zapped `[lo, hi)`
    /// (vpns) of one VMA, the PTE tables whose whole span lies in the range
    /// are empty and go back to the buddy allocator (`zap_pte_range` with
    /// `reclaim_pt_is_enabled`: `end - start >= PMD_SIZE`).
    fn reclaim_pt(&mut self, slot: MmSlot, lo: u64, hi: u64) {
        if self.config.arch != super::types::Arch::X86_64 {
            return;
        }
        let Ok(mm) = self.procs.mm_mut(slot) else {
            return;
        };
        for pfn in mm.pgtables.free_empty_pte_tables(lo, hi) {
            self.free_kernel_page(pfn);
        }
    }

    /// The frames mapped (pages of their own) in `[lo, hi)` of `slot`.
    pub(crate) fn mapped_pages(&self, slot: MmSlot, lo: u64, hi: u64) -> Vec<super::types::Pfn> {
        self.mapped_ptes(slot, lo, hi)
            .into_iter()
            .map(|(_, pfn)| pfn)
            .collect()
    }

    /// (vpn, frame) of each PTE mapping a page of its own in `[lo, hi)` of
    /// `slot`.
    fn mapped_ptes(&self, slot: MmSlot, lo: u64, hi: u64) -> Vec<(u64, super::types::Pfn)> {
        let Ok(mm) = self.mm_of(slot) else {
            return Vec::new();
        };
        let pt = &mm.pgtables;
        let mut out = Vec::new();
        for (table, a, b, first) in pt.pte_tables(lo, hi) {
            for (i, &e) in pt.entries(table)[a..b].iter().enumerate() {
                let pte = super::memory::Pte(e);
                if pte.is_page() {
                    out.push((first + i as u64, pte.pfn()));
                }
            }
        }
        out
    }

    /// MADV_PAGEOUT (`madvise_cold_or_pageout_pte_range` + `reclaim_pages`):
    /// write every mapped page of the range to swap now, referenced or
    /// not. Pages stay when no swap slot is free.
    fn madvise_pageout(&mut self, slot: MmSlot, lo: u64, hi: u64) {
        use super::page_alloc::{FLAG_DIRTY, PageKind};
        for pfn in self.mapped_pages(slot, lo, hi) {
            let frames = &mut self.page_alloc.frames;
            if frames.kind(pfn) == PageKind::PageCache {
                // A file page mapped elsewhere too is left alone
                // (`folio_maybe_mapped_shared`); else it is unmapped and,
                // when clean, dropped (reclaim_pages does not write dirty
                // file pages outside kswapd: they stay, unmapped).
                if frames.mapcount(pfn) > 1 {
                    continue;
                }
                frames.set_flag(pfn, super::page_alloc::FLAG_REFERENCED, false);
                if frames.has_flag(pfn, super::page_alloc::FLAG_ACTIVE) {
                    // Its shadow will say it was active.
                    frames.set_workingset(pfn, true);
                }
                if self.try_to_unmap_file(pfn) && !self.page_alloc.frames.has_flag(pfn, FLAG_DIRTY)
                {
                    self.reclaim_file_page(pfn);
                }
                continue;
            }
            if frames.mapcount(pfn) > 1 {
                // Shared since fork: left alone (`folio_maybe_mapped_shared`).
                continue;
            }
            frames.set_flag(pfn, super::page_alloc::FLAG_REFERENCED, false);
            self.pageout(pfn);
        }
    }

    /// MADV_COLD (`madvise_cold_or_pageout_pte_range`, `lru_deactivate_fn`):
    /// every page of the range loses its young PTE and its PG_referenced;
    /// active ones (PG_workingset) move to the head of the inactive list,
    /// so reclaim may take them without a second chance.
    fn madvise_cold(&mut self, slot: MmSlot, lo: u64, hi: u64) {
        use super::page_alloc::{FLAG_ACTIVE, FLAG_LRU, FLAG_REFERENCED};
        for (vpn, pfn) in self.mapped_ptes(slot, lo, hi) {
            let frames = &mut self.page_alloc.frames;
            if frames.mapcount(pfn) > 1 {
                // Shared with another process: left alone, as Linux does.
                continue;
            }
            frames.set_flag(pfn, FLAG_REFERENCED, false);
            if let Some(p) = self.pte_mut(slot, vpn) {
                *p &= !super::memory::PTE_ACCESSED;
            }
            let frames = &mut self.page_alloc.frames;
            if !frames.has_flag(pfn, FLAG_LRU) || !frames.has_flag(pfn, FLAG_ACTIVE) {
                continue;
            }
            frames.set_workingset(pfn, true);
            let Some(zone) = self.page_alloc.zone_of(pfn) else {
                continue;
            };
            let file = self.page_alloc.frames.kind(pfn) == super::page_alloc::PageKind::PageCache;
            self.lru_del(pfn);
            let frames = &mut self.page_alloc.frames;
            frames.set_flag(pfn, FLAG_LRU, true);
            self.lru.zones[zone]
                .lists_mut(file)
                .1
                .push_head(frames, pfn);
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

    /// Checked on this machine's Linux 6.18 kernel: 3 written pages with
    /// the middle one unmapped; MADV_DONTNEED over all three failed ENOMEM
    /// and both mapped pages read back 0 (dropped); the same from a start
    /// inside a hole below; length 0 succeeded, misaligned EINVAL.
    #[test]
    fn madvise_over_a_hole_advises_every_mapped_part() {
        let (mut k, pid) = setup();
        run(&mut k, pid, "mmap 12K addr=0x500000000").unwrap();
        run(&mut k, pid, "touch 0x500000000 12K").unwrap();
        run(&mut k, pid, "munmap 0x500001000 4K").unwrap();
        let rss = mm(&k, pid).rss_anon;
        let err = run(&mut k, pid, "madvise 0x500000000 12K dontneed").unwrap_err();
        assert_eq!(err.errno(), libc::ENOMEM);
        assert_eq!(mm(&k, pid).rss_anon, rss - 2);
        run(&mut k, pid, "touch 0x500000000 4K").unwrap();
        run(&mut k, pid, "touch 0x500002000 4K").unwrap();
        let err = run(&mut k, pid, "madvise 0x4ffffe000 24K dontneed").unwrap_err();
        assert_eq!(err.errno(), libc::ENOMEM);
        assert_eq!(mm(&k, pid).rss_anon, rss - 2);
        run(&mut k, pid, "touch 0x500000000 4K").unwrap();
        run(&mut k, pid, "madvise 0x500000000 0 dontneed").unwrap();
        run(&mut k, pid, "madvise 0x600000000 0 pageout").unwrap();
        assert_eq!(mm(&k, pid).rss_anon, rss - 1);
        for line in [
            "madvise 0x500000001 0 dontneed",
            "madvise 0x500000000 0 free",
        ] {
            let err = run(&mut k, pid, line).unwrap_err();
            assert_eq!(err.errno(), libc::EINVAL, "{line}");
        }
        assert_eq!(mm(&k, pid).rss_anon, rss - 1);
    }

    /// CONFIG_PT_RECLAIM. Checked on this machine's Linux 6.18 kernel (C
    /// program, MADV_NOHUGEPAGE, 8M at 0x600000000, every page written):
    /// VmPTE 60 -> 80 kB after touching (4 PTE tables and a PMD table);
    /// MADV_DONTNEED of the whole 8M -> 64 kB (the 4 PTE tables freed, the
    /// PMD table kept). Touched again: dontneed of 2M not aligned to 2M
    /// frees nothing (80), an aligned 2M frees one table (76), the last 4M
    /// but its first page frees one more (72), munmap frees the rest (60).
    #[test]
    fn dontneed_frees_empty_pte_tables() {
        let (mut k, pid) = setup();
        let tables = |k: &crate::ctl::Machine| mm(k, pid).pgtables.nr_tables();
        let t0 = tables(&k);
        run(&mut k, pid, "mmap 8M name=b addr=0x600000000").unwrap();
        run(&mut k, pid, "touch b 8M").unwrap();
        let t1 = tables(&k);
        assert!(t1 >= t0 + 5, "{t0} {t1}");
        let pt = k.page_table_pages();
        run(&mut k, pid, "madvise b 8M dontneed").unwrap();
        assert_eq!(tables(&k), t1 - 4);
        assert_eq!(k.page_table_pages(), pt - 4);
        run(&mut k, pid, "touch b 8M").unwrap();
        assert_eq!(tables(&k), t1);
        run(&mut k, pid, "madvise b+4K 2M dontneed").unwrap();
        assert_eq!(tables(&k), t1);
        run(&mut k, pid, "madvise b+2M 2M dontneed").unwrap();
        assert_eq!(tables(&k), t1 - 1);
        run(&mut k, pid, "madvise b+0x401000 0x3ff000 dontneed").unwrap();
        assert_eq!(tables(&k), t1 - 2);
        run(&mut k, pid, "munmap b 8M").unwrap();
        assert_eq!(tables(&k), t0);
        // Per VMA: two 1M VMAs filling one 2M table keep it.
        run(&mut k, pid, "mmap 1M name=lo addr=0x600000000").unwrap();
        run(&mut k, pid, "mmap 1M name=hi addr=0x600100000").unwrap();
        run(&mut k, pid, "touch lo 1M").unwrap();
        run(&mut k, pid, "touch hi 1M").unwrap();
        let t2 = tables(&k);
        run(&mut k, pid, "madvise lo 2M dontneed").unwrap();
        assert_eq!(tables(&k), t2);
    }
}
