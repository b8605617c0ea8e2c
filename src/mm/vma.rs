//! Splitting and merging VMAs (Linux: mm/vma.c).

use super::Kernel;
use super::error::MmResult;
use super::mmap::*;
use super::slab_common;
use super::types::MmSlot;

impl Kernel {
    /// `__split_vma`: cut the VMA containing `at` in two at `at` (a page
    /// boundary strictly inside it). The upper part takes a preallocated
    /// vm_area_struct and, with an anon_vma, an anon_vma_chain.
    pub(crate) fn split_vma(&mut self, slot: MmSlot, at: u64, pool: &mut ObjPool) -> MmResult<()> {
        let mm = self.procs.mm_mut(slot)?;
        let Some(start) = mm.vma_lookup(at).filter(|v| v.start < at).map(|v| v.start) else {
            return Ok(());
        };
        let lower = mm.remove_vma(start).expect("found above");
        let avc = match lower.anon_vma {
            Some(id) => {
                mm.get_anon_vma(id);
                pool.avcs.pop()
            }
            None => None,
        };
        let upper = Vma {
            start: at,
            end: lower.end,
            flags: lower.flags,
            name: lower.name.clone(),
            anon_vma: lower.anon_vma,
            object: pool.vmas.pop(),
            avc,
            file: lower
                .file
                .as_ref()
                .map(|f| f.advanced((at - lower.start) >> super::types::PAGE_SHIFT)),
            fork_avc: None,
            shm: lower
                .shm
                .map(|s| s.advanced((at - lower.start) >> super::types::PAGE_SHIFT)),
        };
        if let Some(s) = upper.shm {
            // The upper part is one more VMA referring to the object.
            self.shmem.get(s.id);
        }
        let mm = self.procs.mm_mut(slot)?;
        let lower = Vma { end: at, ..lower };
        mm.insert_vma(lower);
        mm.insert_vma(upper);
        Ok(())
    }

    /// Merge every mergeable pair of neighbours among the VMAs that meet
    /// `[lo, hi]` and their outer neighbours (`vma_merge` after a change).
    pub(crate) fn vma_merge_existing_range(
        &mut self,
        slot: MmSlot,
        lo: u64,
        hi: u64,
    ) -> MmResult<()> {
        let mm = self.procs.mm(slot)?;
        let first = mm.prev_vma(lo).map(|v| v.start).unwrap_or(lo);
        let mut starts: Vec<u64> = mm.vmas.range(first..=hi).map(|(s, _)| *s).collect();
        if let Some((s, _)) = mm.vmas.range(hi.saturating_add(1)..).next() {
            starts.push(*s);
        }
        let mut i = 0;
        while i + 1 < starts.len() {
            let mm = self.procs.mm_mut(slot)?;
            let (a, b) = (starts[i], starts[i + 1]);
            let mergeable = match (mm.vmas.get(&a), mm.vmas.get(&b)) {
                (Some(va), Some(vb)) => MmStruct::can_merge(va, vb),
                _ => false,
            };
            if !mergeable {
                i += 1;
                continue;
            }
            let lower = mm.remove_vma(a).expect("present");
            let upper = mm.remove_vma(b).expect("present");
            let mut merged = Vma {
                end: upper.end,
                ..lower
            };
            let mut dead = upper;
            if merged.object.is_none() {
                // A new range merging into its upper neighbour keeps the
                // neighbour's vm_area_struct.
                merged.object = dead.object.take();
            }
            if merged.anon_vma.is_none() {
                // The survivor adopts the upper part's anon_vma and chain.
                merged.anon_vma = dead.anon_vma.take();
                merged.avc = dead.avc.take();
            }
            mm.insert_vma(merged);
            self.release_vma(slot, dead);
            starts.remove(i + 1);
        }
        Ok(())
    }

    /// Insert a new VMA (its range is free), merging it with compatible
    /// neighbours (`vma_merge_new_range`) or giving it a vm_area_struct.
    pub(crate) fn vma_merge_new_range(&mut self, slot: MmSlot, mut vma: Vma) -> MmResult<()> {
        let mm = self.mm_of(slot)?;
        let prev_merge = mm
            .prev_vma(vma.start)
            .is_some_and(|p| MmStruct::can_merge(p, &vma));
        let next_merge = mm
            .vmas
            .get(&vma.end)
            .is_some_and(|n| MmStruct::can_merge(&vma, n));
        if !prev_merge && !next_merge {
            vma.object = Some(self.kmem_cache_alloc(slab_common::VM_AREA_STRUCT)?);
        }
        let (start, end) = (vma.start, vma.end);
        let Ok(mm) = self.procs.mm_mut(slot) else {
            // Killed by the OOM killer while the object was allocated.
            if let Some(obj) = vma.object {
                self.free_object(obj);
            }
            return self.procs.mm(slot).map(|_| ());
        };
        if prev_merge || next_merge {
            // A temporary piece without an object, merged away at once.
            mm.insert_vma(vma);
            self.vma_merge_existing_range(slot, start, end)?;
            // If the neighbours' anon_vmas kept prev and next apart, the
            // piece joined one of them; it never stays alone here.
        } else {
            mm.insert_vma(vma);
        }
        Ok(())
    }
}
