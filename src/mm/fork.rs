//! `fork` (Linux: kernel/fork.c `copy_process`, `dup_mm`, `dup_mmap`;
//! mm/memory.c `copy_page_range`; mm/rmap.c `anon_vma_fork`).
//!
//! The child gets the parent's comm, oom_score_adj and a copy of every VMA
//! (a vm_area_struct each; a VMA with an anon_vma gets an anon_vma of its
//! own and two anon_vma_chains, as `anon_vma_fork` links it to both). Page
//! tables are copied only where Linux copies them (`vma_needs_copy`: VMAs
//! with an anon_vma); other file mappings fault their pages in again.
//! Private anonymous pages become shared and read-only on both sides
//! (copy-on-write); swap entries gain a reference; page-cache pages gain a
//! mapping.

use super::Kernel;
use super::cputime;
use super::error::{MmError, MmResult};
use super::memory::{PTE_DIRTY, PTE_RW, Pte};
use super::mmap::{VM_MAYWRITE, VM_SHARED, Vma};
use super::page_alloc::PageKind;
use super::slab_common;
use super::types::{MmSlot, Pid};

impl Kernel {
    /// `fork PID`: a child of `parent` (see the module doc). The new pid is
    /// in `ns_last_pid`. A failure (ENOMEM for page tables or slab
    /// objects, overcommit in mode 2) leaves no child behind.
    pub fn do_fork(&mut self, parent: Pid) -> MmResult<Pid> {
        if self.kthreads.get(parent).is_some() {
            return Err(MmError::Permission(format!(
                "pid {parent} is a kernel thread: it has no memory to fork"
            )));
        }
        let pslot = self.procs.slot_of(parent)?;
        let child = self.copy_process(pslot)?;
        let cslot = self.procs.slot_of(child)?;
        if let Err(err) = self.dup_mmap(pslot, cslot) {
            self.exit_process(cslot);
            return Err(err);
        }
        self.ns_last_pid = child.0;
        self.forks += 1;
        Ok(child)
    }

    /// `dup_mmap`: every VMA of `parent` into `child`, the page tables of
    /// those with an anon_vma.
    fn dup_mmap(&mut self, parent: MmSlot, child: MmSlot) -> MmResult<()> {
        let (brk, start_brk, start_stack) = {
            let mm = self.procs.mm(parent)?;
            (mm.brk, mm.start_brk, mm.start_stack)
        };
        {
            let cm = self.procs.mm_mut(child)?;
            cm.brk = brk;
            cm.start_brk = start_brk;
            cm.start_stack = start_stack;
        }
        let vmas: Vec<Vma> = self
            .procs
            .mm(parent)?
            .vmas()
            .map(|v| Vma {
                start: v.start,
                end: v.end,
                flags: v.flags,
                name: v.name.clone(),
                anon_vma: v.anon_vma,
                object: None,
                avc: None,
                file: v.file.clone(),
                fork_avc: None,
                shm: v.shm,
            })
            .collect();
        for mut vma in vmas {
            if vma.flags.is_accounted() {
                self.vm_enough_memory(child, vma.pages())?;
            }
            let needs_copy = vma.anon_vma.is_some();
            let pool = self.prealloc(1, if needs_copy { 2 } else { 0 })?;
            let anon_object = if needs_copy {
                match self.kmem_cache_alloc(slab_common::ANON_VMA) {
                    Ok(obj) => Some(obj),
                    Err(err) => {
                        self.release_pool(pool);
                        return Err(err);
                    }
                }
            } else {
                None
            };
            let mut pool = pool;
            vma.object = pool.vmas.pop();
            vma.avc = pool.avcs.pop();
            vma.fork_avc = pool.avcs.pop();
            let (lo, hi, flags) = (vma.start_vpn(), vma.end_vpn(), vma.flags);
            if let Some(f) = &vma.file {
                self.vfs.inode_mut(f.ino)?.i_mmap.insert(child);
            }
            if let Some(s) = vma.shm {
                // Shared mappings stay shared: the child's VMA refers to
                // the same object, and its pages fault in from its index
                // (no page tables copied: `vma_needs_copy`).
                self.shmem.get(s.id);
                self.shmem.add_mapper(s.id, child);
            }
            let cm = self.procs.mm_mut(child)?;
            vma.anon_vma = anon_object.map(|obj| cm.new_anon_vma(Some(obj)));
            cm.insert_vma(vma);
            if needs_copy {
                self.copy_page_range(parent, child, lo, hi, flags.0)?;
            }
        }
        let cm = self.procs.mm_mut(child)?;
        cm.hiwater_rss = cm.rss();
        cm.hiwater_vm = cm.total_vm;
        Ok(())
    }

    /// `copy_page_range` over `[lo, hi)` (vpns): the child's PTEs, its own
    /// page tables. In a private writable mapping (`is_cow_mapping`) both
    /// sides lose write access to anonymous pages; a shared mapping's child
    /// PTEs are clean (`pte_mkclean`).
    ///
    /// Like Linux's `copy_pte_range`, a PTE table at a time: the child's
    /// table is allocated first (the one step that may reclaim, so the
    /// parent's entries are read after it), the entries are worked on in
    /// a local copy, and both tables are written back whole.
    fn copy_page_range(
        &mut self,
        parent: MmSlot,
        child: MmSlot,
        lo: u64,
        hi: u64,
        vm_flags: u64,
    ) -> MmResult<()> {
        let cow = vm_flags & (VM_SHARED | VM_MAYWRITE) == VM_MAYWRITE;
        let shared = vm_flags & VM_SHARED != 0;
        let tables = self.procs.mm(parent)?.pgtables.pte_tables(lo, hi);
        let per_table = self.procs.geometry().entries();
        let mut src = vec![0u64; per_table];
        let mut dst = vec![0u64; per_table];
        let mut copied = 0u64;
        for (table, a, b, first) in tables {
            if self.procs.mm(parent)?.pgtables.entries(table)[a..b]
                .iter()
                .all(|&e| e == 0)
            {
                // Nothing mapped here: no child table (`pmd_none` skips).
                continue;
            }
            let ctable = self.pte_table_alloc(child, first)?;
            let n = b - a;
            // Read after the allocation, which may have reclaimed.
            src[..n].copy_from_slice(&self.procs.mm(parent)?.pgtables.entries(table)[a..b]);
            let (done, result) =
                self.copy_pte_slice(child, first, &mut src[..n], &mut dst[..n], cow, shared);
            copied += dst[..done].iter().filter(|&&e| e != 0).count() as u64;
            self.procs.mm_mut(parent)?.pgtables.entries_mut(table)[a..a + done]
                .copy_from_slice(&src[..done]);
            self.procs.mm_mut(child)?.pgtables.entries_mut(ctable)[a..a + done]
                .copy_from_slice(&dst[..done]);
            result?;
        }
        self.account_system(copied * cputime::TOUCH_PAGE_NS);
        Ok(())
    }

    /// `copy_present_pte` / `copy_nonpresent_pte` over the entries of one
    /// PTE table (`src`, the parent's, starting at `first`): the child's
    /// entries into `dst`, the parent's write-protected in `src`. Returns
    /// how many entries were dealt with and the first error (a swap slot
    /// with too many references); entries after it are left alone.
    fn copy_pte_slice(
        &mut self,
        child: MmSlot,
        first: u64,
        src: &mut [u64],
        dst: &mut [u64],
        cow: bool,
        shared: bool,
    ) -> (usize, MmResult<()>) {
        let (mut anon, mut swap_ents) = (0u64, 0u64);
        let mut result = Ok(());
        let mut done = 0;
        for (i, (s, d)) in src.iter_mut().zip(dst.iter_mut()).enumerate() {
            let mut pte = Pte(*s);
            if pte.is_swap() {
                if !self.swap.swap_duplicate(pte.swp_entry()) {
                    result = Err(MmError::NoMemory(
                        "fork: a swap slot has too many references".into(),
                    ));
                    break;
                }
                swap_ents += 1;
            } else if pte.is_page() {
                let pfn = pte.pfn();
                if self.page_alloc.frames.kind(pfn) == PageKind::PageCache {
                    if shared {
                        pte = Pte(pte.0 & !PTE_DIRTY);
                    }
                    self.page_add_file_rmap(child, pfn);
                } else {
                    if cow && pte.is_write() {
                        *s &= !PTE_RW;
                        pte = Pte(pte.0 & !PTE_RW);
                    }
                    self.page_add_anon_rmap(pfn, child, first + i as u64);
                    anon += 1;
                }
            }
            *d = pte.0;
            done = i + 1;
        }
        if let Ok(cm) = self.procs.mm_mut(child) {
            cm.rss_anon += anon;
            cm.swap_ents += swap_ents;
        }
        (done, result)
    }
}

#[cfg(test)]
mod tests {
    use crate::mm::Kernel;
    use crate::mm::process::testing::*;
    use crate::mm::types::{Arch, PAGE_SHIFT, Pid};

    fn stats(k: &Kernel, pid: Pid, name: &str) -> crate::mm::memory::RangeStats {
        let slot = k.procs.slot_of(pid).unwrap();
        let v = mm(k, pid).vma_lookup(addr(k, pid, name)).unwrap();
        k.range_stats(slot, v.start_vpn(), v.end_vpn())
    }

    #[test]
    fn fork_shares_pages_until_one_side_writes() {
        let mut k = boot(Arch::X86_64, 1 << 30);
        let parent = spawn(&mut k, "parent");
        run(&mut k, parent, "mmap 2M name=anon").unwrap();
        run(&mut k, parent, "touch anon 2M").unwrap();
        let free = k.page_alloc.total_free();
        let child = fork(&mut k, parent);
        let c = k.procs.by_pid(child).unwrap();
        assert_eq!(c.ppid, parent);
        assert_eq!(c.comm, "parent");
        // Nothing copied but page tables: both map the same 512 pages.
        assert_eq!(mm(&k, child).rss_anon, mm(&k, parent).rss_anon);
        assert!(
            free - k.page_alloc.total_free() < 64,
            "only tables and objects"
        );
        // Real 6.18 (fork-and-files/child-after-fork-smaps): the 2M anon
        // mapping right after fork is Shared_Dirty 2048 kB, Pss 1024 kB.
        let s = stats(&k, child, "anon");
        assert_eq!((s.resident, s.shared_dirty, s.private_dirty), (512, 512, 0));
        assert_eq!(s.pss >> (crate::mm::memory::PSS_SHIFT + PAGE_SHIFT), 256);
        // The child writes the first 1M: copy-on-write, 256 new pages.
        let free = k.page_alloc.total_free();
        let minflt = k.procs.by_pid(child).unwrap().min_flt;
        run(&mut k, child, "touch anon 1M write").unwrap();
        assert_eq!(k.procs.by_pid(child).unwrap().min_flt, minflt + 256);
        assert_eq!(free - k.page_alloc.total_free(), 256);
        // child-after-cow-smaps: Private_Dirty 1024 kB, Shared_Dirty 1024 kB.
        let s = stats(&k, child, "anon");
        assert_eq!((s.private_dirty, s.shared_dirty), (256, 256));
        // The child exits: the parent's pages are its own again, and its
        // next write reuses them (no copy).
        sys(&mut k, &format!("kill {child}")).unwrap();
        let s = stats(&k, parent, "anon");
        assert_eq!((s.private_dirty, s.shared_dirty), (512, 0));
        let free = k.page_alloc.total_free();
        run(&mut k, parent, "touch anon 2M write").unwrap();
        assert_eq!(k.page_alloc.total_free(), free);
    }

    #[test]
    fn reclaim_swaps_a_shared_page_out_of_both_and_back_into_both() {
        let mut k = boot_with_swap(1 << 30);
        let parent = spawn(&mut k, "parent");
        run(&mut k, parent, "mmap 64K name=buf").unwrap();
        run(&mut k, parent, "touch buf 64K").unwrap();
        let child = fork(&mut k, parent);
        let before = k.events.pswpout;
        // Every anon page goes: 16 shared ones written once each.
        let _ = sys(&mut k, "reclaim 1G");
        assert!(k.events.pswpout >= before + 16);
        assert_eq!(stats(&k, child, "buf").swap, 16);
        assert_eq!(stats(&k, parent, "buf").swap, 16);
        // Each slot is held by both: SwapPss is half of Swap.
        let swap_pss = stats(&k, parent, "buf").swap_pss;
        assert_eq!(swap_pss >> (crate::mm::memory::PSS_SHIFT + PAGE_SHIFT), 8);
        // The child faults them back (from the swap cache, or read with
        // readahead): each page is read at most once, and only the child
        // maps it; the parent's PTEs still hold the slots.
        let pswpin = k.events.pswpin;
        run(&mut k, child, "touch buf 64K read").unwrap();
        assert!(k.events.pswpin <= pswpin + 16);
        assert_eq!(stats(&k, child, "buf").swap, 0);
        assert_eq!(stats(&k, parent, "buf").swap, 16);
        k.check_invariants().unwrap();
        // The parent finds each page in the swap cache on its own fault:
        // minor faults, no reads, the map count grows to 2.
        let (pswpin, majflt) = (k.events.pswpin, k.procs.by_pid(parent).unwrap().maj_flt);
        run(&mut k, parent, "touch buf 64K read").unwrap();
        assert_eq!(k.events.pswpin, pswpin);
        assert_eq!(k.procs.by_pid(parent).unwrap().maj_flt, majflt);
        let s = stats(&k, parent, "buf");
        assert_eq!((s.swap, s.shared_clean + s.shared_dirty), (0, 16));
        k.check_invariants().unwrap();
        // The parent exits first: the child owns them alone.
        sys(&mut k, &format!("kill {parent}")).unwrap();
        let s = stats(&k, child, "buf");
        assert_eq!(s.private_clean + s.private_dirty, 16);
        assert_eq!(k.procs.by_pid(child).unwrap().ppid, Pid(1));
    }
}
