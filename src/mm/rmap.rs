//! The reverse map of page-cache pages (Linux: mm/rmap.c, the file half,
//! and `unmap_mapping_range` of mm/memory.c).
//!
//! A page-cache frame knows its (inode, index); the inode knows which
//! address spaces may map it (`Inode::i_mmap`), and each of those its VMAs
//! of that inode: so the PTEs mapping a page are found from the page, as
//! `rmap_walk_file` finds them through `mapping->i_mmap`. The frame's map
//! count says how many there are; NR_FILE_MAPPED counts the pages with at
//! least one.

use super::Kernel;
use super::memory::{PTE_ACCESSED, PTE_DIRTY, PTE_RW, Pte};
use super::page_alloc::PageKind;
use super::swapfile::SwapEntry;
use super::types::{MmSlot, Pfn, Vpn};

impl Kernel {
    /// `folio_add_anon_rmap_pte`: the PTE of (`slot`, `vpn`) maps anon
    /// page `pfn`. The first mapper becomes the page's reverse-map owner.
    pub(crate) fn page_add_anon_rmap(&mut self, pfn: Pfn, slot: MmSlot, vpn: u64) {
        if self.page_alloc.frames.add_map(pfn) {
            self.page_alloc.frames.set_rmap(pfn, slot, Vpn(vpn));
            self.procs.nr_anon_mapped += 1;
        }
    }

    /// `folio_remove_rmap_pte` for an anon page whose PTE in (`slot`,
    /// `vpn`) was just cleared or replaced. True when that was the last
    /// mapping (the caller frees the page); else, if this mapper was the
    /// reverse-map owner, another one of the family takes over.
    pub(crate) fn page_remove_anon_rmap(&mut self, pfn: Pfn, slot: MmSlot, vpn: u64) -> bool {
        if self.page_alloc.frames.remove_map(pfn) {
            self.procs.nr_anon_mapped -= 1;
            return true;
        }
        if self.page_alloc.frames.rmap(pfn) == (slot, Vpn(vpn))
            && let Some(other) =
                self.other_in_family(slot, vpn, |pte| pte.is_page() && pte.pfn() == pfn)
        {
            self.page_alloc.frames.set_rmap(pfn, other, Vpn(vpn));
        }
        false
    }

    /// Another member of `slot`'s fork family whose PTE at `vpn` is what
    /// `want` looks for (who takes over a page's or a slot's ownership).
    fn other_in_family(
        &self,
        slot: MmSlot,
        vpn: u64,
        want: impl Fn(Pte) -> bool,
    ) -> Option<MmSlot> {
        self.procs
            .family_of(slot)
            .into_iter()
            .find(|&m| m != slot && want(self.pte(m, vpn)))
    }

    /// The PTEs mapping anon page `pfn` (`rmap_walk_anon`): in its owner's
    /// fork family, at its owner's virtual page.
    pub(crate) fn rmap_walk_anon(&self, pfn: Pfn) -> Vec<(MmSlot, u64)> {
        let (owner, Vpn(vpn)) = self.page_alloc.frames.rmap(pfn);
        self.rmap_walk_anon_at(owner, vpn, pfn)
    }

    /// The members of `slot`'s family whose PTE at `vpn` maps `pfn`.
    fn rmap_walk_anon_at(&self, slot: MmSlot, vpn: u64, pfn: Pfn) -> Vec<(MmSlot, u64)> {
        let mut out = Vec::new();
        if self.page_alloc.frames.mapcount(pfn) <= 1 {
            // The common case: the owner alone.
            let pte = self.pte(slot, vpn);
            if pte.is_page() && pte.pfn() == pfn {
                out.push((slot, vpn));
            }
            return out;
        }
        for m in self.procs.family_of(slot) {
            let pte = self.pte(m, vpn);
            if pte.is_page() && pte.pfn() == pfn {
                out.push((m, vpn));
            }
        }
        out
    }

    /// After the mapper (`slot`, `vpn`) dropped its reference to swap
    /// `entry`: if it was the slot's recorded owner and others still hold
    /// the entry, record one of them (swapoff walks by owner).
    pub(crate) fn swap_owner_handover(&mut self, entry: SwapEntry, slot: MmSlot, vpn: u64) {
        if self.swap.swap_count(entry) == 0 {
            return;
        }
        let owner_is_leaving = self
            .swap
            .areas
            .get(entry.area as usize)
            .and_then(Option::as_ref)
            .and_then(|a| a.owner(entry.offset))
            == Some((slot, Vpn(vpn)));
        if !owner_is_leaving {
            return;
        }
        let swp = Pte::from_swap(entry.area, entry.offset);
        if let Some(other) = self.other_in_family(slot, vpn, |pte| pte == swp) {
            self.swap
                .set_owner(entry, super::swapfile::pack_owner(other, Vpn(vpn)));
        }
    }

    /// `folio_referenced`: how many PTEs mapping `pfn` are young, clearing
    /// the young bit of each (`ptep_clear_flush_young`), and the flags of
    /// the VMAs holding them (Linux's `vm_flags` out-parameter; looked up
    /// only for page-cache pages, the one kind reclaim asks VM_EXEC of).
    /// An unmapped page costs no walk.
    pub(crate) fn folio_referenced(&mut self, pfn: Pfn) -> (u32, u64) {
        let frames = &self.page_alloc.frames;
        if frames.mapcount(pfn) == 0 {
            return (0, 0);
        }
        let kind = frames.kind(pfn);
        let (owner, Vpn(index)) = frames.rmap(pfn);
        let mappers = match kind {
            PageKind::UserAnon | PageKind::SwapCache => self.rmap_walk_anon(pfn),
            PageKind::PageCache => self.rmap_walk_file(owner.0, index),
            PageKind::Shmem => self.rmap_walk_shmem(super::shmem::ShmemId(owner.0), index),
            _ => return (0, 0),
        };
        let (mut young, mut vm_flags) = (0, 0);
        for (slot, vpn) in mappers {
            let Some(p) = self.pte_mut(slot, vpn) else {
                continue;
            };
            let pte = Pte(*p);
            if !pte.is_page() || pte.pfn() != pfn || !pte.is_young() {
                continue;
            }
            *p &= !PTE_ACCESSED;
            young += 1;
            if kind == PageKind::PageCache
                && let Some(vma) = self
                    .procs
                    .get(slot)
                    .and_then(|p| p.mm.vma_lookup(vpn << super::types::PAGE_SHIFT))
            {
                vm_flags |= vma.flags.0;
            }
        }
        (young, vm_flags)
    }

    /// `folio_add_file_rmap_pte` + `add_mm_counter(MM_FILEPAGES)`: the PTE
    /// just set in `slot` maps page-cache page `pfn`.
    pub(crate) fn page_add_file_rmap(&mut self, slot: MmSlot, pfn: Pfn) {
        if self.page_alloc.frames.add_map(pfn) {
            self.vfs.stats.nr_mapped += 1;
        }
        if let Ok(mm) = self.procs.mm_mut(slot) {
            mm.rss_file += 1;
        }
    }

    /// `folio_remove_rmap_pte` + the counter: a PTE of `slot` mapping the
    /// page-cache page `pfn` was cleared. A dirty PTE leaves the page
    /// dirty (`zap_present_pte`: `folio_mark_dirty`).
    pub(crate) fn page_remove_file_rmap(&mut self, slot: MmSlot, pfn: Pfn, pte: Pte) {
        if pte.is_dirty() {
            let ino = self.page_alloc.frames.rmap(pfn).0.0;
            self.set_page_dirty(ino, pfn);
        }
        if self.page_alloc.frames.remove_map(pfn) {
            self.vfs.stats.nr_mapped -= 1;
        }
        if let Ok(mm) = self.procs.mm_mut(slot) {
            mm.update_hiwater_rss();
            mm.rss_file -= 1;
        }
    }

    /// The VMAs mapping page `index` of `ino`, as (mm slot, virtual page)
    /// (`vma_interval_tree_foreach` over `i_mmap`).
    pub(crate) fn rmap_walk_file(&mut self, ino: u32, index: u64) -> Vec<(MmSlot, u64)> {
        self.i_mmap_vmas(ino)
            .into_iter()
            .filter(|v| index >= v.pgoff && index - v.pgoff < v.pages)
            .map(|v| (v.slot, v.start_vpn + (index - v.pgoff)))
            .collect()
    }

    /// Every VMA of `ino` in every address space that maps it. Address
    /// spaces that no longer map it are pruned from its `i_mmap`.
    fn i_mmap_vmas(&mut self, ino: u32) -> Vec<FileVma> {
        let Ok(inode) = self.vfs.inode(ino) else {
            return Vec::new();
        };
        let slots: Vec<MmSlot> = inode.i_mmap.iter().copied().collect();
        let mut out = Vec::new();
        let mut stale = Vec::new();
        for slot in slots {
            let before = out.len();
            if let Some(p) = self.procs.get(slot) {
                for vma in p.mm.vmas() {
                    if let Some(f) = &vma.file
                        && f.ino == ino
                    {
                        out.push(FileVma {
                            slot,
                            start_vpn: vma.start_vpn(),
                            pgoff: f.pgoff,
                            pages: vma.pages(),
                        });
                    }
                }
            }
            if out.len() == before {
                stale.push(slot);
            }
        }
        if let Ok(inode) = self.vfs.inode_mut(ino) {
            for slot in stale {
                inode.i_mmap.remove(&slot);
            }
        }
        out
    }

    /// Does any VMA map `ino` (`mapping_mapped`)?
    pub(crate) fn mapping_mapped(&mut self, ino: u32) -> bool {
        !self.i_mmap_vmas(ino).is_empty()
    }

    /// `try_to_unmap` of a page-cache page: clear every PTE that maps it,
    /// moving their dirty bits to the page. True when no PTE is left.
    pub(crate) fn try_to_unmap_file(&mut self, pfn: Pfn) -> bool {
        let (owner, index) = self.page_alloc.frames.rmap(pfn);
        for (slot, vpn) in self.rmap_walk_file(owner.0, index.0) {
            let Some(p) = self.pte_mut(slot, vpn) else {
                continue;
            };
            let pte = Pte(*p);
            if !pte.is_page() || pte.pfn() != pfn {
                // A private COW copy or nothing faulted there yet.
                continue;
            }
            *p = 0;
            self.page_remove_file_rmap(slot, pfn, pte);
        }
        self.page_alloc.frames.mapcount(pfn) == 0
    }

    /// `folio_mkclean`: after a write-back, the PTEs mapping `pfn` lose
    /// their dirty and write bits, so the next write through a shared
    /// mapping faults and dirties the page again (write notification).
    pub(crate) fn page_mkclean(&mut self, pfn: Pfn) {
        if self.page_alloc.frames.mapcount(pfn) == 0 {
            return;
        }
        let (owner, index) = self.page_alloc.frames.rmap(pfn);
        for (slot, vpn) in self.rmap_walk_file(owner.0, index.0) {
            if let Some(p) = self.pte_mut(slot, vpn)
                && Pte(*p).is_page()
                && Pte(*p).pfn() == pfn
            {
                *p &= !(PTE_DIRTY | PTE_RW);
            }
        }
    }

    /// `unmap_mapping_range(mapping, from, 0, even_cows = 1)` for a
    /// truncate: zap every PTE of every VMA of `ino` at file pages `from`
    /// and above, the private COW copies included.
    pub(crate) fn unmap_mapping_range(&mut self, ino: u32, from: u64) {
        let ranges: Vec<(MmSlot, u64, u64)> = self
            .i_mmap_vmas(ino)
            .into_iter()
            .filter(|v| v.pgoff + v.pages > from)
            .map(|v| {
                let first = from.max(v.pgoff) - v.pgoff;
                (v.slot, v.start_vpn + first, v.start_vpn + v.pages)
            })
            .collect();
        for (slot, lo, hi) in ranges {
            self.zap_range(slot, lo, hi);
        }
    }

    /// Every present PTE of every process, as `(pfn, PTEs mapping it)`
    /// sorted by pfn: the one page-table walk of the reverse-map checks
    /// ([`Kernel::check_rmap`], [`Kernel::check_pss`]). Checks each
    /// mm's RssFile (its page-cache PTEs) on the way.
    fn mapped_runs(&self) -> Result<Vec<(u64, u32)>, String> {
        let frames = &self.page_alloc.frames;
        // A sorted Vec, not a map: this runs after every test command.
        let mut pfns = Vec::new();
        for p in self.procs.iter() {
            let pt = &p.mm.pgtables;
            let task_vpns = p.mm.layout.task_size >> super::types::PAGE_SHIFT;
            let mut rss_file = 0;
            pt.for_each_pte_slice(0, task_vpns, &mut |table, lo, hi, _| {
                for &e in &pt.entries(table)[lo..hi] {
                    let pte = Pte(e);
                    if pte.is_page() {
                        pfns.push(pte.pfn().0);
                        if frames.kind(pte.pfn()) == PageKind::PageCache {
                            rss_file += 1;
                        }
                    }
                }
            });
            if rss_file != p.mm.rss_file {
                return Err(format!(
                    "pid {}: RssFile {} but the page tables map {rss_file} page-cache pages",
                    p.pid, p.mm.rss_file
                ));
            }
        }
        pfns.sort_unstable();
        let mut runs: Vec<(u64, u32)> = Vec::new();
        for pfn in pfns {
            match runs.last_mut() {
                Some((last, n)) if *last == pfn => *n += 1,
                _ => runs.push((pfn, 1)),
            }
        }
        Ok(runs)
    }

    /// The reverse map over `runs`: every mapped frame's map count equals
    /// the PTEs that map it (Σ mapcounts = PTEs), and NR_FILE_MAPPED the
    /// page-cache pages mapped at least once.
    fn check_rmap_runs(&self, runs: &[(u64, u32)]) -> Result<(), String> {
        let frames = &self.page_alloc.frames;
        let mut file_runs = 0u64;
        for &(pfn, n) in runs {
            if frames.kind(Pfn(pfn)) == PageKind::PageCache {
                file_runs += 1;
            } else if frames.mapcount(Pfn(pfn)) != n {
                return Err(format!(
                    "anon pfn {pfn}: mapcount {} but {n} PTEs map it",
                    frames.mapcount(Pfn(pfn))
                ));
            }
        }
        let ptes_of = |pfn: Pfn| {
            runs.binary_search_by_key(&pfn.0, |&(p, _)| p)
                .map_or(0, |i| runs[i].1)
        };
        let mut mapped = 0;
        for inode in self.vfs.iter() {
            for (_, pfn) in inode.pages.iter() {
                let want = if frames.kind(pfn) == PageKind::PageCache {
                    ptes_of(pfn)
                } else {
                    0
                };
                if frames.mapcount(pfn) != want {
                    return Err(format!(
                        "inode {} pfn {pfn}: mapcount {} but {want} PTEs map it",
                        inode.ino,
                        frames.mapcount(pfn)
                    ));
                }
                if want > 0 {
                    mapped += 1;
                }
            }
        }
        if mapped != file_runs {
            // Some page-cache pfn is mapped but cached by no file: name it.
            let cached: std::collections::BTreeSet<u64> = self
                .vfs
                .iter()
                .flat_map(|i| i.pages.iter().map(|(_, pfn)| pfn.0))
                .collect();
            let (pfn, n) = runs
                .iter()
                .find(|&&(pfn, _)| {
                    frames.kind(Pfn(pfn)) == PageKind::PageCache && !cached.contains(&pfn)
                })
                .copied()
                .unwrap_or_default();
            return Err(format!("{n} PTEs map pfn {pfn}, which no file caches"));
        }
        if mapped != self.vfs.stats.nr_mapped {
            return Err(format!(
                "{mapped} page-cache pages are mapped, NR_FILE_MAPPED says {}",
                self.vfs.stats.nr_mapped
            ));
        }
        Ok(())
    }

    /// Check proportional sizes: Σ Pss over every VMA of every process
    /// (what smaps reports) is the pages mapped at least once, each
    /// counted once however many PTEs share it. Each PTE's share is
    /// `(PAGE_SIZE << PSS_SHIFT) / mapcount`, rounded down as Linux does,
    /// so the sum may fall short by less than one unit a PTE.
    pub fn check_pss(&self) -> Result<(), String> {
        self.check_pss_runs(&self.mapped_runs()?)
    }

    fn check_pss_runs(&self, runs: &[(u64, u32)]) -> Result<(), String> {
        use super::memory::PSS_SHIFT;
        use super::types::PAGE_SIZE;
        let mut pss = 0u64;
        for (slot, p) in self.procs.iter_slots() {
            for vma in p.mm.vmas() {
                pss += self.range_stats(slot, vma.start_vpn(), vma.end_vpn()).pss;
            }
        }
        let ptes: u64 = runs.iter().map(|&(_, n)| u64::from(n)).sum();
        let want = runs.len() as u64 * (PAGE_SIZE << PSS_SHIFT);
        if pss > want || want - pss >= ptes.max(1) {
            return Err(format!(
                "Σ Pss {} B but {} pages are mapped ({} PTEs)",
                pss >> PSS_SHIFT,
                runs.len(),
                ptes
            ));
        }
        Ok(())
    }

    /// Check the reverse map over one walk of the page tables: each mm's
    /// RssFile is its page-cache PTEs, every mapped frame's map count the
    /// PTEs that map it, NR_FILE_MAPPED the page-cache pages mapped at
    /// least once, and Σ Pss the pages mapped ([`Kernel::check_pss`]).
    pub fn check_rmap(&self) -> Result<(), String> {
        let runs = self.mapped_runs()?;
        self.check_rmap_runs(&runs)?;
        self.check_pss_runs(&runs)
    }
}

/// One VMA of a file, as the reverse map needs it.
struct FileVma {
    slot: MmSlot,
    start_vpn: u64,
    pgoff: u64,
    pages: u64,
}

#[cfg(test)]
mod tests {
    use crate::mm::Kernel;
    use crate::mm::namei::{FileKind, ROOT_INO};
    use crate::mm::process::testing::*;
    use crate::mm::types::{Arch, PAGE_SHIFT, PAGE_SIZE, Pid};

    /// A machine with one process and a written-back, uncached file
    /// `/data.db` of `pages` pages of 'x'.
    fn with_file(pages: u64) -> (crate::ctl::Machine, Pid, u32) {
        let mut k = boot(Arch::X86_64, 1 << 30);
        k.swap.swapdir = std::env::temp_dir();
        let pid = spawn(&mut k, "cap");
        let ino = k
            .vfs_create(ROOT_INO, "data.db", FileKind::Regular)
            .unwrap();
        k.filemap_write(ino, 0, &vec![b'x'; (pages * PAGE_SIZE) as usize])
            .unwrap();
        sys(&mut k, "sync").unwrap();
        k.drop_pagecache();
        (k, pid, ino)
    }

    fn cached(k: &Kernel, ino: u32) -> u64 {
        k.vfs.inode(ino).unwrap().pages.len()
    }

    fn majflt(k: &Kernel, pid: Pid) -> u64 {
        k.procs.by_pid(pid).unwrap().maj_flt
    }

    fn stats(k: &Kernel, pid: Pid, name: &str) -> crate::mm::memory::RangeStats {
        let slot = k.procs.slot_of(pid).unwrap();
        let v = mm(k, pid).vma_lookup(addr(k, pid, name)).unwrap();
        k.range_stats(slot, v.start_vpn(), v.end_vpn())
    }

    /// ../shared/reference/linux-samples/fork-and-files (real 6.18): a
    /// 4 MiB file mapped shared at 0 (written), private at 1M (read, then
    /// the first half written), read-only private at 2M (read). The
    /// capture's smaps: shared Private_Dirty 1024 kB; private
    /// Private_Clean 512, Private_Dirty 512, Anonymous 512; read-only
    /// Private_Clean 1024; VmFlags as below; maps offsets 0, 1M, 2M.
    #[test]
    fn the_three_file_mappings_of_the_capture() {
        let (mut k, pid, ino) = with_file(1024);
        run(&mut k, pid, "mmap 1M file=/data.db shared name=sh").unwrap();
        run(&mut k, pid, "mmap 1M file=/data.db offset=1M name=pr").unwrap();
        run(
            &mut k,
            pid,
            "mmap 1M file=/data.db offset=2M prot=r name=ro",
        )
        .unwrap();
        run(&mut k, pid, "touch sh 1M write").unwrap();
        run(&mut k, pid, "touch pr 1M read").unwrap();
        run(&mut k, pid, "touch ro 1M read").unwrap();
        run(&mut k, pid, "touch pr 512K write").unwrap();
        let sh = stats(&k, pid, "sh");
        assert_eq!((sh.resident, sh.private_dirty, sh.anon), (256, 256, 0));
        let pr = stats(&k, pid, "pr");
        assert_eq!(
            (pr.resident, pr.private_clean, pr.private_dirty, pr.anon),
            (256, 128, 128, 128)
        );
        let ro = stats(&k, pid, "ro");
        assert_eq!((ro.resident, ro.private_clean, ro.anon), (256, 256, 0));
        assert_eq!(
            flags_at(&k, pid, addr(&k, pid, "sh")),
            "rd wr sh mr mw me ms "
        );
        assert_eq!(flags_at(&k, pid, addr(&k, pid, "pr")), "rd wr mr mw me ac ");
        assert_eq!(flags_at(&k, pid, addr(&k, pid, "ro")), "rd mr mw me ");
        let offsets: Vec<u64> = ["sh", "pr", "ro"]
            .iter()
            .map(|n| {
                let v = mm(&k, pid).vma_lookup(addr(&k, pid, n)).unwrap();
                v.file.as_ref().unwrap().pgoff << PAGE_SHIFT
            })
            .collect();
        assert_eq!(offsets, [0, 1 << 20, 2 << 20]);
        let m = mm(&k, pid);
        // 256 + 128 + 256 page-cache pages mapped; 128 COW copies.
        assert_eq!(m.rss_file, 640);
        assert_eq!(k.vfs.stats.nr_mapped, 640);
        // The shared writes dirtied 256 pages of the file.
        assert_eq!(k.vfs.inode(ino).unwrap().dirty.len(), 256);
        // VmData counts the private writable mapping (rw-p), not rw-s.
        assert!(m.data_vm >= 256);
    }

    /// Expected numbers from the real kernel on this machine (6.18.44,
    /// ext2 on a loop device with read_ahead_kb 128, a cold 1024-page file
    /// mapped read-only): touching page 100 is one major fault, 32 pages
    /// read (84..115) and 15 mapped (96..111 less PG_readahead page 108);
    /// page 101 is already mapped; page 120 is a major fault reading 20
    /// more (104..135) and mapping 16; page 500 a major fault, 32 read, 15
    /// mapped (its readahead page 508 skipped).
    #[test]
    fn mmap_read_around_and_fault_around_match_the_real_kernel() {
        let (mut k, pid, ino) = with_file(1024);
        run(&mut k, pid, "mmap 4M file=/data.db prot=r name=f").unwrap();
        let base = addr(&k, pid, "f");
        let mut seen = Vec::new();
        for page in [100u64, 101, 120, 500] {
            let before = majflt(&k, pid);
            run(
                &mut k,
                pid,
                &format!("touch {:#x} 1 read", base + page * PAGE_SIZE),
            )
            .unwrap();
            seen.push((
                majflt(&k, pid) - before,
                cached(&k, ino),
                mm(&k, pid).rss_file,
            ));
        }
        assert_eq!(seen, [(1, 32, 15), (0, 32, 15), (1, 52, 31), (1, 84, 46)]);
    }

    #[test]
    fn reclaim_unmaps_file_pages_from_every_process() {
        let (mut k, a, ino) = with_file(64);
        let b = spawn(&mut k, "b");
        for pid in [a, b] {
            run(&mut k, pid, "mmap 256K file=/data.db prot=r name=f").unwrap();
            run(&mut k, pid, "touch f 256K read").unwrap();
        }
        let pfn = k.vfs.inode(ino).unwrap().pages.get(3).unwrap();
        assert_eq!(k.page_alloc.frames.mapcount(pfn), 2);
        // Shared by two: Pss is half of Rss.
        let s = stats(&k, a, "f");
        assert_eq!((s.resident, s.shared_clean), (64, 64));
        assert_eq!(s.pss >> (super::super::memory::PSS_SHIFT + PAGE_SHIFT), 32);
        assert_eq!(k.vfs.stats.nr_mapped, 64);
        // drop_caches leaves mapped pages alone.
        k.drop_pagecache();
        assert_eq!(cached(&k, ino), 64);
        // Reclaim takes them from both page tables, then from the cache
        // (no swap: 1G cannot be found, EAGAIN as memory.reclaim says).
        assert_eq!(sys(&mut k, "reclaim 1G").unwrap_err().errno(), libc::EAGAIN);
        assert_eq!(cached(&k, ino), 0);
        assert_eq!(k.vfs.stats.nr_mapped, 0);
        assert_eq!((mm(&k, a).rss_file, mm(&k, b).rss_file), (0, 0));
        // Touching again refaults.
        run(&mut k, a, "touch f 4K read").unwrap();
        assert_eq!(mm(&k, a).rss_file, 16);
    }

    #[test]
    fn pss_adds_up_to_the_mapped_pages_and_a_wrong_map_count_shows() {
        // Three mappers of the same 64 file pages: each PTE's share is
        // 1/3 of a page, rounded down, and Σ Pss is the 64 pages.
        let (mut k, a, ino) = with_file(64);
        let b = spawn(&mut k, "b");
        let c = spawn(&mut k, "c");
        for pid in [a, b, c] {
            run(&mut k, pid, "mmap 256K file=/data.db prot=r name=f").unwrap();
            run(&mut k, pid, "touch f 256K read").unwrap();
        }
        k.check_pss().unwrap();
        let total: u64 = [a, b, c].iter().map(|&p| stats(&k, p, "f").pss).sum();
        let page = PAGE_SIZE << super::super::memory::PSS_SHIFT;
        assert_eq!(total, 64 * 3 * (page / 3));
        // A map count that disagrees with the PTEs makes Σ Pss wrong.
        let pfn = k.vfs.inode(ino).unwrap().pages.get(0).unwrap();
        k.page_alloc.frames.add_map(pfn);
        assert!(k.check_pss().is_err());
    }

    #[test]
    fn a_mapped_file_outlives_its_name_and_truncate_is_a_sigbus() {
        let (mut k, pid, ino) = with_file(16);
        let used = k.vfs.blocks_used();
        run(&mut k, pid, "mmap 64K file=/data.db name=f").unwrap();
        run(&mut k, pid, "touch f 64K read").unwrap();
        k.vfs_unlink(ROOT_INO, "data.db").unwrap();
        assert!(k.vfs.inode(ino).is_ok(), "a mapped inode stays");
        run(&mut k, pid, "touch f 64K write").unwrap();
        assert_eq!(mm(&k, pid).rss_anon - 3, 16);
        run(&mut k, pid, "munmap f 64K").unwrap();
        assert!(k.vfs.inode(ino).is_err(), "the last mapping frees it");
        assert_eq!(k.vfs.blocks_used(), used - 16);

        let (mut k, pid, ino) = with_file(16);
        run(&mut k, pid, "mmap 64K file=/data.db shared name=f").unwrap();
        run(&mut k, pid, "touch f 64K write").unwrap();
        k.vfs_truncate(ino, 8 * PAGE_SIZE).unwrap();
        k.check_invariants().unwrap();
        assert_eq!(mm(&k, pid).rss_file, 8);
        let err = run(&mut k, pid, "touch f+32K 4K read").unwrap_err();
        assert_eq!(err.errno(), libc::EFAULT);
        assert!(err.to_string().contains("SIGBUS"), "{err}");
        assert_eq!(mm(&k, pid).rss_file, 8);
    }

    #[test]
    fn shared_writes_reach_the_file_and_private_ones_do_not() {
        let (mut k, pid, ino) = with_file(4);
        run(&mut k, pid, "mmap 16K file=/data.db shared name=sh").unwrap();
        run(&mut k, pid, "mmap 16K file=/data.db name=pr").unwrap();
        let sh = addr(&k, pid, "sh");
        let pr = addr(&k, pid, "pr");
        k.write_mem(pid, sh + 10, b"shared").unwrap();
        k.write_mem(pid, pr + 20, b"private").unwrap();
        assert_eq!(
            k.filemap_read(ino, 8, 16).unwrap(),
            b"xxshared\x78\x78\x78\x78\x78\x78\x78\x78"
        );
        assert_eq!(k.read_mem(pid, pr + 20, 7).unwrap(), b"private");
        assert_eq!(k.filemap_read(ino, 20, 7).unwrap(), b"xxxxxxx");
        // The shared page stays dirty until written back, then is clean
        // and write-protected: the next write faults and dirties it again.
        sys(&mut k, "sync").unwrap();
        assert_eq!(k.vfs.stats.nr_dirty, 0);
        assert_eq!(stats(&k, pid, "sh").dirty, 0);
        let min = k.procs.by_pid(pid).unwrap().min_flt;
        run(&mut k, pid, "touch sh 4K write").unwrap();
        assert_eq!(k.procs.by_pid(pid).unwrap().min_flt, min + 1);
        assert_eq!(k.vfs.stats.nr_dirty, 1);
    }

    #[test]
    fn bad_file_mappings_change_nothing() {
        let (mut k, pid, _) = with_file(4);
        k.vfs_create(ROOT_INO, "dir", FileKind::Directory).unwrap();
        let vmas = mm(&k, pid).map_count();
        for (line, errno) in [
            ("mmap 4K file=/nope", libc::ENOENT),
            ("mmap 4K file=/dir", libc::ENODEV),
            ("mmap 4K file=/data.db offset=100", libc::EINVAL),
            ("mmap 4K file=data.db", libc::EINVAL),
            ("mmap 4K offset=4K", libc::EINVAL),
            ("mmap 4K file=/data.db sharde", libc::EINVAL),
        ] {
            assert_eq!(run(&mut k, pid, line).unwrap_err().errno(), errno, "{line}");
        }
        assert_eq!(mm(&k, pid).map_count(), vmas);
    }

    /// Expected addresses from the real kernel on this machine (6.18.44
    /// x86_64, ext4, `setarch -R`, mmaps of one file in this order): ext4's
    /// thp_get_unmapped_area places a mapping holding a whole aligned PMD
    /// of the file PMD-congruent to its offset.
    #[test]
    fn file_mappings_are_placed_as_ext4_places_them() {
        let (mut k, pid, _) = with_file(4096);
        // The real run's free space: a one-page hole at 0x7ffff7fbf000
        // (libc below it, ld.so above) and everything below libc's start
        // at 0x7ffff7dd2000. Blockers give the process the same.
        run(&mut k, pid, "mmap 0x3f000 addr=0x7ffff7fc0000 prot=r").unwrap();
        run(&mut k, pid, "mmap 0x1ed000 addr=0x7ffff7dd2000 prot=r").unwrap();
        let real_kernel: [(&str, u64); 8] = [
            ("4K", 0x7fff_f7fb_f000),
            ("1M", 0x7fff_f7cd_2000),
            ("2M", 0x7fff_f7a0_0000),
            ("0x201000", 0x7fff_f760_0000),
            ("3M", 0x7fff_f720_0000),
            ("4M", 0x7fff_f6e0_0000),
            ("4M offset=1M", 0x7fff_f690_0000),
            ("4M offset=4K", 0x7fff_f640_1000),
        ];
        for (i, (args, want)) in real_kernel.iter().enumerate() {
            run(
                &mut k,
                pid,
                &format!("mmap {args} file=/data.db prot=r name=m{i}"),
            )
            .unwrap();
            assert_eq!(addr(&k, pid, &format!("m{i}")), *want, "mmap {args}");
        }
    }
}
