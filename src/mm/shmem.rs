//! Shared anonymous memory (Linux: mm/shmem.c for `MAP_SHARED |
//! MAP_ANONYMOUS`, `shmem_zero_setup`).
//!
//! A shared anonymous mapping is backed by a shmem object, an unlinked
//! inode of the kernel's internal tmpfs mount (maps shows it as
//! `/dev/zero (deleted)`, device 00:01). Its pages live in the object's
//! page index, not in a process's anon_vma, so every process that maps it
//! — the creator, and the children fork gives the same VMA — sees the same
//! pages: fork copies no page tables for it (`vma_needs_copy`), the child
//! faults the pages in from the index, and a write on either side is seen
//! by both (no copy-on-write).
//!
//! Counting, as Linux counts shmem: a page in an index is NR_SHMEM and
//! NR_FILE_PAGES (so `Cached` includes it); mapped, it is NR_FILE_MAPPED
//! (`Mapped`) and the mapper's MM_SHMEMPAGES (`RssShmem`, statm's shared
//! column, the OOM report's shmem-rss). It is swap-backed: on the anon LRU
//! lists, PG_swapbacked in kpageflags, Pss_Shmem in smaps_rollup.
//!
//! Reclaim (`shmem_writeout`): the page is unmapped from every mapper
//! first (`try_to_unmap` through the objects' mappers, the reverse map of
//! the index); a clean page (read, never written: zeros) is dropped and
//! the index slot becomes a hole again; a dirty one gets a swap slot,
//! enters the swap cache, and its index slot holds the swap entry instead
//! of the page (`shmem_delete_from_page_cache`) — from then on it is an
//! unmapped swap-cache page like an anon one, written asynchronously and
//! freed by a later reclaim pass. A fault on such a slot takes the page
//! back from the swap cache (minor) or reads it with cluster readahead
//! (major, pswpin; `shmem_swapin_cluster`) and frees the slot
//! (`shmem_swapin_folio`: shmem never keeps a swap copy of a page in its
//! index). swapoff brings such pages back into their index
//! (`shmem_unuse`). The object and its pages go when the last VMA that
//! refers to it goes.

use std::collections::{BTreeMap, BTreeSet};

use super::Kernel;
use super::cputime;
use super::error::{MmError, MmResult};
use super::memory::{PTE_DIRTY, Pte};
use super::page_alloc::{FLAG_DIRTY, FLAG_LRU, PageKind};
use super::swapfile::{SwapEntry, pack_owner};
use super::types::{MmSlot, PAGE_SHIFT, Pfn, Vpn};

/// The owner a swap area records for a shmem page's slot: no process
/// (the object's index knows whose it is, `ShmemState::swap_owner`).
const SHMEM_SLOT_OWNER: (MmSlot, Vpn) = (MmSlot(0), Vpn(0));

/// The first inode number of the internal shm mount's objects. Linux hands
/// them out per CPU in batches (`shmem_reserve_inode`, SHMEM_INO_BATCH), so
/// the number depends on what the system made before; 11 is what the first
/// shared anonymous mapping of the real capture in
/// ../shared/reference/linux-samples/fork-and-files got.
pub const FIRST_SHMEM_INO: u64 = 11;

/// Largest number of live shmem objects: the frame's reverse-map owner
/// field holds the object id (15 bits, as it holds an mm slot).
pub const MAX_SHMEM_OBJECTS: u32 = (1 << super::page_alloc::OWNER_BITS) - 1;

/// A shmem object's id (index in the object table; the reverse map of its
/// pages records it).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ShmemId(pub u32);

/// What a VMA records of its shmem object (`vm_file` and `vm_pgoff`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct VmShm {
    /// The object.
    pub id: ShmemId,
    /// The index page the VMA's first page maps.
    pub pgoff: u64,
}

impl VmShm {
    /// The same object, `pages` further in (the upper part of a split).
    pub fn advanced(self, pages: u64) -> VmShm {
        VmShm {
            pgoff: self.pgoff + pages,
            ..self
        }
    }
}

/// One slot of a shmem page index: a page in memory, or the swap entry of
/// a page written out (Linux keeps `swp_to_radix_entry` in the xarray).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ShmemSlot {
    /// The page is in memory.
    Page(Pfn),
    /// The page is on swap (possibly still in the swap cache).
    Swap(SwapEntry),
}

/// One shmem object (`struct shmem_inode_info` and its mapping).
#[derive(Debug)]
pub struct ShmemInode {
    /// The inode number maps shows.
    pub ino: u64,
    /// Size in pages (`i_size`), what `shmem_acct_size` charged.
    pub size_pages: u64,
    /// The page index (`mapping->i_pages`).
    pub pages: BTreeMap<u64, ShmemSlot>,
    /// VMAs referring to the object (its file's references): the object
    /// goes with the last.
    vmas: u32,
    /// Address spaces that may map it (`i_mmap`, by mm); pruned when a
    /// walk finds one that no longer does.
    mappers: BTreeSet<MmSlot>,
    /// Pages of the index on swap (`info->swapped`).
    pub swapped: u64,
}

/// Every shmem object of the machine and the counters of all of them.
#[derive(Debug)]
pub struct ShmemState {
    objects: Vec<Option<ShmemInode>>,
    free_ids: Vec<u32>,
    next_ino: u64,
    /// NR_SHMEM: pages in the indexes (in memory).
    pub nr_shmem: u64,
    /// Pages of every index on swap (`shmem_swapped`).
    pub nr_swapped: u64,
    /// Index pages mapped by at least one PTE (their part of
    /// NR_FILE_MAPPED).
    pub nr_mapped: u64,
    /// Committed_AS of the objects (`shmem_acct_size`).
    pub committed: u64,
    /// Which object and index holds each swap entry (swapoff finds them
    /// here; Linux's `shmem_unuse` walks the indexes).
    swap_owners: BTreeMap<SwapEntry, (ShmemId, u64)>,
}

impl Default for ShmemState {
    fn default() -> Self {
        ShmemState {
            objects: Vec::new(),
            free_ids: Vec::new(),
            next_ino: FIRST_SHMEM_INO,
            nr_shmem: 0,
            nr_swapped: 0,
            nr_mapped: 0,
            committed: 0,
            swap_owners: BTreeMap::new(),
        }
    }
}

impl ShmemState {
    /// The object `id`.
    pub fn object(&self, id: ShmemId) -> Option<&ShmemInode> {
        self.objects.get(id.0 as usize).and_then(Option::as_ref)
    }

    fn object_mut(&mut self, id: ShmemId) -> Option<&mut ShmemInode> {
        self.objects.get_mut(id.0 as usize).and_then(Option::as_mut)
    }

    /// Migration: page `index` of `id` now lives in frame `new`.
    pub(crate) fn replace_page(&mut self, id: ShmemId, index: u64, new: Pfn) {
        if let Some(o) = self.object_mut(id)
            && let Some(ShmemSlot::Page(pfn)) = o.pages.get_mut(&index)
        {
            *pfn = new;
        }
    }

    /// Live objects.
    pub fn iter(&self) -> impl Iterator<Item = (ShmemId, &ShmemInode)> {
        self.objects
            .iter()
            .enumerate()
            .filter_map(|(i, o)| o.as_ref().map(|o| (ShmemId(i as u32), o)))
    }

    /// One more VMA refers to `id` (a split, a fork).
    pub fn get(&mut self, id: ShmemId) {
        if let Some(o) = self.object_mut(id) {
            o.vmas += 1;
        }
    }

    /// `slot` may map `id` now (a fork's child).
    pub fn add_mapper(&mut self, id: ShmemId, slot: MmSlot) {
        if let Some(o) = self.object_mut(id) {
            o.mappers.insert(slot);
        }
    }

    /// The object and index whose slot holds swap `entry`.
    pub fn swap_owner(&self, entry: SwapEntry) -> Option<(ShmemId, u64)> {
        self.swap_owners.get(&entry).copied()
    }

    /// The index slot `index` of `id`.
    pub fn lookup(&self, id: ShmemId, index: u64) -> Option<ShmemSlot> {
        self.object(id).and_then(|o| o.pages.get(&index).copied())
    }

    /// Swap-slot references held by the indexes, by entry (one each; the
    /// swap-cache invariant adds them to the PTEs').
    pub fn swap_refs(&self) -> impl Iterator<Item = SwapEntry> + '_ {
        self.swap_owners.keys().copied()
    }
}

/// Outcome of reclaiming one shmem page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ShmemReclaim {
    /// A clean page was dropped (it held zeros).
    Freed,
    /// It went to the swap cache with its write in flight.
    Writeback,
    /// Kept (no swap slot, a failed write).
    Keep,
}

impl Kernel {
    /// `shmem_zero_setup` for an mmap of `pages` pages: a new object,
    /// charged to Committed_AS (`shmem_acct_size`; ENOMEM when the
    /// overcommit policy refuses, as for a private writable mapping).
    pub(crate) fn shmem_zero_setup(&mut self, slot: MmSlot, pages: u64) -> MmResult<ShmemId> {
        let live = self.shmem.objects.len() - self.shmem.free_ids.len();
        if live as u32 >= MAX_SHMEM_OBJECTS {
            return Err(MmError::NoMemory(format!(
                "mmap shared: {live} shmem objects are the most mmfs keeps"
            )));
        }
        self.vm_enough_memory(slot, pages)?;
        let ino = self.shmem.next_ino;
        self.shmem.next_ino += 1;
        let object = ShmemInode {
            ino,
            size_pages: pages,
            pages: BTreeMap::new(),
            vmas: 1,
            mappers: BTreeSet::from([slot]),
            swapped: 0,
        };
        self.shmem.committed += pages;
        let id = match self.shmem.free_ids.pop() {
            Some(id) => {
                self.shmem.objects[id as usize] = Some(object);
                id
            }
            None => {
                self.shmem.objects.push(Some(object));
                (self.shmem.objects.len() - 1) as u32
            }
        };
        Ok(ShmemId(id))
    }

    /// `mmap SIZE shared`: `mmap(addr, len, prot, MAP_SHARED |
    /// MAP_ANONYMOUS)` (+ `PR_SET_VMA_ANON_NAME` with `name`): a VMA
    /// backed by a new shmem object. Placement is the plain top-down
    /// search (`shmem_get_unmapped_area` with shmem THP off: no 2M
    /// alignment, as the real capture shows). Nothing is allocated but
    /// the object and the vm_area_struct.
    pub fn do_mmap_shared(
        &mut self,
        slot: MmSlot,
        addr: Option<super::types::VirtAddr>,
        len: u64,
        prot: super::mprotect::Prot,
        name: Option<&str>,
    ) -> MmResult<super::types::VirtAddr> {
        let pages = super::mmap::page_align(len).map_or(0, |l| l >> PAGE_SHIFT);
        if len == 0 {
            return Err(MmError::Invalid("mmap of 0 bytes".into()));
        }
        let id = self.shmem_zero_setup(slot, pages)?;
        let flags = super::mmap::VmFlags::file(prot, true);
        let result = self.mmap_region(
            slot,
            addr,
            len,
            flags,
            name,
            None,
            Some(VmShm { id, pgoff: 0 }),
        );
        if result.is_err() {
            // Nothing refers to the object: it goes with its charge, and
            // its inode number is handed out again (nothing changed).
            self.shmem_put(id);
            self.shmem.next_ino -= 1;
        }
        result
    }

    /// A VMA referring to `id` is gone; the last one frees the object:
    /// its pages (all unmapped by then) and its swap slots.
    pub(crate) fn shmem_put(&mut self, id: ShmemId) {
        let Some(o) = self.shmem.object_mut(id) else {
            return;
        };
        o.vmas = o.vmas.saturating_sub(1);
        if o.vmas > 0 {
            return;
        }
        let o = self.shmem.objects[id.0 as usize]
            .take()
            .expect("present above");
        self.shmem.free_ids.push(id.0);
        self.shmem.committed -= o.size_pages;
        for (_, slot) in o.pages {
            match slot {
                ShmemSlot::Page(pfn) => {
                    self.shmem.nr_shmem -= 1;
                    if self.page_alloc.frames.mapcount(pfn) > 0 {
                        // A bookkeeping bug: a PTE still maps it.
                        self.printk(format!(
                            "BUG: shmem: freeing pfn {pfn} with map count {}",
                            self.page_alloc.frames.mapcount(pfn)
                        ));
                        continue;
                    }
                    self.free_user_page(pfn);
                }
                ShmemSlot::Swap(entry) => {
                    self.shmem.nr_swapped -= 1;
                    self.shmem.swap_owners.remove(&entry);
                    self.swap.free_slot(entry);
                    // A page still in the swap cache goes with it (or,
                    // while its write is in flight, at the next reclaim).
                    self.free_swap_and_cache(entry);
                }
            }
        }
    }

    /// The PTEs mapping page `index` of `id`, as (mm, virtual page)
    /// (`rmap_walk_file` over the object's mappers). Mappers that no
    /// longer map it are pruned.
    pub(crate) fn rmap_walk_shmem(&mut self, id: ShmemId, index: u64) -> Vec<(MmSlot, u64)> {
        let Some(o) = self.shmem.object(id) else {
            return Vec::new();
        };
        let mappers: Vec<MmSlot> = o.mappers.iter().copied().collect();
        let mut out = Vec::new();
        let mut stale = Vec::new();
        for slot in mappers {
            let mut maps = false;
            if let Some(p) = self.procs.get(slot) {
                for vma in p.mm.vmas() {
                    let Some(s) = vma.shm.filter(|s| s.id == id) else {
                        continue;
                    };
                    maps = true;
                    if index >= s.pgoff && index - s.pgoff < vma.pages() {
                        out.push((slot, vma.start_vpn() + (index - s.pgoff)));
                    }
                }
            }
            if !maps {
                stale.push(slot);
            }
        }
        if let Some(o) = self.shmem.object_mut(id) {
            for slot in stale {
                o.mappers.remove(&slot);
            }
        }
        out
    }

    /// `folio_add_file_rmap_pte` + `inc_mm_counter(MM_SHMEMPAGES)`: the
    /// PTE just set in `slot` maps shmem page `pfn`.
    pub(crate) fn page_add_shmem_rmap(&mut self, slot: MmSlot, pfn: Pfn) {
        if self.page_alloc.frames.add_map(pfn) {
            self.shmem.nr_mapped += 1;
        }
        if let Ok(mm) = self.procs.mm_mut(slot) {
            mm.rss_shmem += 1;
        }
    }

    /// `folio_remove_rmap_pte` for a shmem page: a PTE of `slot` mapping
    /// `pfn` was cleared; its dirty bit moves to the page.
    pub(crate) fn page_remove_shmem_rmap(&mut self, slot: MmSlot, pfn: Pfn, pte: Pte) {
        if pte.is_dirty() {
            self.page_alloc.frames.set_flag(pfn, FLAG_DIRTY, true);
        }
        if self.page_alloc.frames.remove_map(pfn) {
            self.shmem.nr_mapped -= 1;
        }
        if let Ok(mm) = self.procs.mm_mut(slot) {
            mm.update_hiwater_rss();
            mm.rss_shmem -= 1;
        }
    }

    /// `shmem_get_folio` for a fault: the page at `index` of `id` — from
    /// the index (minor), a new zeroed page (`shmem_alloc_and_add_folio`,
    /// minor), or back from swap (`shmem_swapin_folio`: from the swap
    /// cache, minor; read, major). Returns the page and whether it was a
    /// major fault.
    pub(crate) fn shmem_get_page(&mut self, id: ShmemId, index: u64) -> MmResult<(Pfn, bool)> {
        loop {
            match self.shmem.lookup(id, index) {
                Some(ShmemSlot::Page(pfn)) => return Ok((pfn, false)),
                Some(ShmemSlot::Swap(entry)) => {
                    if let Some(r) = self.shmem_swapin(id, index, entry)? {
                        return Ok(r);
                    }
                    // Reclaim during the allocation changed the slot.
                }
                None => {
                    if self.shmem.object(id).is_none() {
                        return Err(MmError::Fault("shmem object gone".into()));
                    }
                    let pfn = self.alloc_user_page()?;
                    if self.shmem.object(id).is_none() || self.shmem.lookup(id, index).is_some() {
                        // The OOM killer ended the mappers, or another
                        // path filled the slot meanwhile.
                        self.free_user_page(pfn);
                        if self.shmem.object(id).is_none() {
                            return Err(MmError::Fault("shmem object gone".into()));
                        }
                        continue;
                    }
                    self.shmem_add_page(id, index, pfn);
                    self.lru_add_anon(pfn);
                    return Ok((pfn, false));
                }
            }
        }
    }

    /// `shmem_add_to_page_cache`: `pfn` becomes page `index` of `id`.
    fn shmem_add_page(&mut self, id: ShmemId, index: u64, pfn: Pfn) {
        let frames = &mut self.page_alloc.frames;
        frames.set_kind(pfn, PageKind::Shmem);
        // The reverse map of a shmem page: its object and index.
        frames.set_rmap(pfn, MmSlot(id.0), Vpn(index));
        if let Some(o) = self.shmem.object_mut(id) {
            o.pages.insert(index, ShmemSlot::Page(pfn));
        }
        self.shmem.nr_shmem += 1;
    }

    /// `shmem_swapin_folio`: the page of `entry` (slot `index` of `id`)
    /// back into the index — from the swap cache (waiting for its write if
    /// one is in flight; a readahead page counts its hit globally,
    /// `swap_update_readahead(folio, NULL, 0)`), else read with cluster
    /// readahead whatever the device (`shmem_swapin_cluster`: shmem has
    /// no VMA to read around), a major fault. The slot is freed and the
    /// page dirty: shmem keeps no swap copy. None when the slot changed
    /// while memory was found for the read.
    fn shmem_swapin(
        &mut self,
        id: ShmemId,
        index: u64,
        entry: SwapEntry,
    ) -> MmResult<Option<(Pfn, bool)>> {
        let (pfn, major) = match self.swap.cache.lookup_hit(entry) {
            Some((pfn, readahead)) => {
                self.swap_update_readahead(readahead, None);
                (pfn, false)
            }
            None => {
                // The area records shmem's slots under no process (the
                // index knows their owner): so do the pages read for them.
                let (owner, Vpn(vpn)) = SHMEM_SLOT_OWNER;
                self.swap_cluster_readahead(entry, owner, vpn)?;
                self.account_iowait(cputime::SWAP_PAGE_IO_NS);
                if self.shmem.lookup(id, index) != Some(ShmemSlot::Swap(entry)) {
                    // The allocations changed the slot (swapoff's walk).
                    return Ok(None);
                }
                // The readahead's allocations may have reclaimed the page
                // just read (clean, in no index): read it alone then.
                let pfn = match self.swap.cache.lookup(entry) {
                    Some(pfn) => pfn,
                    None => match self.read_swap_cache_async(entry, (owner, vpn))? {
                        Some(pfn) => pfn,
                        None => return Ok(None),
                    },
                };
                (pfn, true)
            }
        };
        if let Some(until) = self.swap.cache.writeback_until(entry, self.clock_ns) {
            // folio_wait_writeback.
            self.account_iowait(until - self.clock_ns);
        }
        self.delete_from_swap_cache(pfn);
        self.shmem_slot_back_to_page(id, index, entry, pfn);
        Ok(Some((pfn, major)))
    }

    /// Slot `index` of `id` holds page `pfn` again instead of swap
    /// `entry`: the index's reference to the slot goes (the last one:
    /// shmem keeps no swap copy) and the page is dirty.
    fn shmem_slot_back_to_page(&mut self, id: ShmemId, index: u64, entry: SwapEntry, pfn: Pfn) {
        self.swap.free_slot(entry);
        self.shmem.swap_owners.remove(&entry);
        self.shmem.nr_swapped -= 1;
        if let Some(o) = self.shmem.object_mut(id) {
            o.swapped -= 1;
        }
        self.shmem_add_page(id, index, pfn);
        self.page_alloc.frames.set_flag(pfn, FLAG_DIRTY, true);
    }

    /// `try_to_unmap` of a shmem page: clear every PTE mapping it, their
    /// dirty bits moving to the page. True when none is left.
    pub(crate) fn try_to_unmap_shmem(&mut self, pfn: Pfn) -> bool {
        let (owner, Vpn(index)) = self.page_alloc.frames.rmap(pfn);
        for (slot, vpn) in self.rmap_walk_shmem(ShmemId(owner.0), index) {
            let Some(p) = self.pte_mut(slot, vpn) else {
                continue;
            };
            let pte = Pte(*p);
            if !pte.is_page() || pte.pfn() != pfn {
                continue;
            }
            *p = 0;
            self.page_remove_shmem_rmap(slot, pfn, pte);
        }
        self.page_alloc.frames.mapcount(pfn) == 0
    }

    /// Reclaim of one shmem page (`shrink_folio_list` + `shmem_writeout`;
    /// reclaim and MADV_PAGEOUT). See the module doc.
    pub(crate) fn shmem_writeout(&mut self, pfn: Pfn) -> ShmemReclaim {
        let (owner, Vpn(index)) = self.page_alloc.frames.rmap(pfn);
        let id = ShmemId(owner.0);
        if self.shmem.lookup(id, index) != Some(ShmemSlot::Page(pfn)) {
            return ShmemReclaim::Keep;
        }
        let dirty = self.page_alloc.frames.has_flag(pfn, FLAG_DIRTY)
            || self
                .rmap_walk_shmem(id, index)
                .iter()
                .any(|&(m, v)| self.pte(m, v).0 & PTE_DIRTY != 0 && self.pte(m, v).pfn() == pfn);
        if dirty && !self.swap.has_free_slot() {
            // No swap: the page stays, mapped as it was.
            return ShmemReclaim::Keep;
        }
        if !self.try_to_unmap_shmem(pfn) {
            return ShmemReclaim::Keep;
        }
        let dirty = dirty || self.page_alloc.frames.has_flag(pfn, FLAG_DIRTY);
        if !dirty {
            // Never written: it held zeros; the slot is a hole again.
            if let Some(o) = self.shmem.object_mut(id) {
                o.pages.remove(&index);
            }
            self.shmem.nr_shmem -= 1;
            self.free_user_page(pfn);
            return ShmemReclaim::Freed;
        }
        let Some(entry) = self
            .swap
            .get_swap_page(pack_owner(SHMEM_SLOT_OWNER.0, SHMEM_SLOT_OWNER.1))
        else {
            return ShmemReclaim::Keep;
        };
        // folio_alloc_swap + add_to_swap_cache: the fresh slot's reference
        // is the swap cache's; the index takes one of its own.
        self.add_to_swap_cache(entry, pfn, false, true);
        self.swap.swap_duplicate(entry);
        // shmem_delete_from_page_cache: the index holds the entry now.
        if let Some(o) = self.shmem.object_mut(id) {
            o.pages.insert(index, ShmemSlot::Swap(entry));
            o.swapped += 1;
        }
        self.shmem.swap_owners.insert(entry, (id, index));
        self.shmem.nr_shmem -= 1;
        self.shmem.nr_swapped += 1;
        self.page_alloc.frames.set_kind(pfn, PageKind::SwapCache);
        self.page_alloc.frames.set_flag(pfn, FLAG_DIRTY, true);
        if !self.swap_writeout(pfn, entry) {
            // The write failed: the page goes back into the index.
            self.delete_from_swap_cache(pfn);
            self.shmem_slot_back_to_page(id, index, entry, pfn);
            return ShmemReclaim::Keep;
        }
        ShmemReclaim::Writeback
    }

    /// `shmem_unuse` for one swap entry an index holds (swapoff): the
    /// page back into its index (from the swap cache or read).
    pub(crate) fn shmem_unuse(&mut self, entry: SwapEntry) -> MmResult<bool> {
        let Some((id, index)) = self.shmem.swap_owner(entry) else {
            return Ok(false);
        };
        self.shmem_swapin(id, index, entry)?;
        Ok(true)
    }

    /// Faults over `[start, end)` (vpns) of a shmem VMA (`shmem_fault`
    /// through `do_read_fault` / `do_shared_fault`): the page comes from
    /// the object's index; a read maps it with the PTE writable when the
    /// VMA is (shmem wants no write notification), clean; a write maps it
    /// dirty; a write to a clean mapped page only dirties the PTE (the
    /// MMU does that, no fault).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn do_shmem_faults(
        &mut self,
        slot: MmSlot,
        start: u64,
        end: u64,
        write: bool,
        vma_write: bool,
        origin: super::memory::FaultOrigin,
        shm: VmShm,
        vma_start: u64,
    ) -> MmResult<()> {
        let task = origin == super::memory::FaultOrigin::Task;
        for v in start..end {
            let table = self.pte_table_alloc(slot, v)?;
            let pte = self.pte(slot, v);
            if pte.is_page() {
                let mut bits = pte.0 | super::memory::PTE_ACCESSED;
                if write {
                    if !pte.is_write() && vma_write {
                        // A read-only PTE (mprotect since): wp_page_reuse.
                        self.trace_user_fault(task, v, true, true);
                        bits |= super::memory::PTE_RW;
                        self.account_file_fault(slot, origin, false);
                    }
                    bits |= PTE_DIRTY;
                }
                self.set_pte_at(slot, table, v, Pte(bits));
                continue;
            }
            self.trace_user_fault(task, v, write, false);
            let index = shm.pgoff + (v - vma_start);
            let (pfn, major) = match self.shmem_get_page(shm.id, index) {
                Ok(r) => r,
                Err(err) => {
                    self.events.pgfault += 1;
                    return Err(err);
                }
            };
            if self.procs.get(slot).is_none() {
                return Err(MmError::NotFound("the process was killed".into()));
            }
            // The allocation may have reclaimed this very range: the PTE
            // may hold something now only if another path mapped it.
            if self.pte(slot, v).is_none() {
                let writable = vma_write;
                self.set_pte_at(slot, table, v, Pte::page(pfn, writable, write));
                self.page_add_shmem_rmap(slot, pfn);
            }
            if write {
                self.page_alloc.frames.set_flag(pfn, FLAG_DIRTY, true);
            }
            self.account_file_fault(slot, origin, major);
        }
        if task {
            self.account_user((end - start) * cputime::TOUCH_PAGE_NS);
        }
        Ok(())
    }

    /// `shmem_swap_usage`: pages of `vma`'s object in its range that are
    /// on swap (smaps' Swap of a shared anonymous mapping); 0 for others.
    pub fn shmem_swap_usage(&self, vma: &super::mmap::Vma) -> u64 {
        let Some(s) = vma.shm else {
            return 0;
        };
        self.shmem.object(s.id).map_or(0, |o| {
            if o.swapped == 0 {
                return 0;
            }
            o.pages
                .range(s.pgoff..s.pgoff + vma.pages())
                .filter(|(_, slot)| matches!(slot, ShmemSlot::Swap(_)))
                .count() as u64
        })
    }

    /// Check the shmem objects: every index page is an allocated Shmem
    /// frame on an LRU whose reverse map names its slot, NR_SHMEM is the
    /// pages of every index, every swap entry of an index is a used slot
    /// recorded as its, and each mm's RssShmem is its PTEs mapping shmem
    /// pages.
    pub fn check_shmem(&self) -> Result<(), String> {
        let frames = &self.page_alloc.frames;
        let (mut pages, mut swapped, mut mapped) = (0u64, 0u64, 0u64);
        for (id, o) in self.shmem.iter() {
            if o.vmas == 0 {
                return Err(format!("shmem object {} has no VMA", o.ino));
            }
            let mut own_swapped = 0;
            for (&index, &slot) in &o.pages {
                match slot {
                    ShmemSlot::Page(pfn) => {
                        pages += 1;
                        mapped += u64::from(frames.mapcount(pfn) > 0);
                        if frames.kind(pfn) != PageKind::Shmem
                            || !frames.has_flag(pfn, FLAG_LRU)
                            || frames.rmap(pfn) != (MmSlot(id.0), Vpn(index))
                        {
                            return Err(format!(
                                "shmem {} index {index}: pfn {pfn} is a {:?} page with rmap {:?}",
                                o.ino,
                                frames.kind(pfn),
                                frames.rmap(pfn)
                            ));
                        }
                    }
                    ShmemSlot::Swap(entry) => {
                        own_swapped += 1;
                        if self.shmem.swap_owner(entry) != Some((id, index))
                            || self.swap.swap_map_count(entry) == 0
                        {
                            return Err(format!(
                                "shmem {} index {index}: swap entry {entry:?} not owned or free",
                                o.ino
                            ));
                        }
                    }
                }
            }
            if own_swapped != o.swapped {
                return Err(format!(
                    "shmem {}: {own_swapped} swap entries, swapped says {}",
                    o.ino, o.swapped
                ));
            }
            swapped += own_swapped;
        }
        if mapped != self.shmem.nr_mapped {
            return Err(format!(
                "{mapped} shmem pages are mapped, the counter says {}",
                self.shmem.nr_mapped
            ));
        }
        if pages != self.shmem.nr_shmem {
            return Err(format!(
                "Σ shmem index pages {pages} but NR_SHMEM {}",
                self.shmem.nr_shmem
            ));
        }
        if swapped != self.shmem.nr_swapped || swapped != self.shmem.swap_owners.len() as u64 {
            return Err(format!(
                "shmem swapped {swapped}, counter {}, owners {}",
                self.shmem.nr_swapped,
                self.shmem.swap_owners.len()
            ));
        }
        for p in self.procs.iter() {
            let pt = &p.mm.pgtables;
            let mut rss = 0;
            for vma in p.mm.vmas() {
                pt.for_each_pte_slice(vma.start_vpn(), vma.end_vpn(), &mut |table, lo, hi, _| {
                    for &e in &pt.entries(table)[lo..hi] {
                        let pte = Pte(e);
                        if pte.is_page() && frames.kind(pte.pfn()) == PageKind::Shmem {
                            rss += 1;
                        }
                    }
                });
                if let Some(s) = vma.shm
                    && self.shmem.object(s.id).is_none()
                {
                    return Err(format!(
                        "pid {}: a VMA refers to a freed shmem object",
                        p.pid
                    ));
                }
            }
            if rss != p.mm.rss_shmem {
                return Err(format!(
                    "pid {}: RssShmem {} but the page tables map {rss} shmem pages",
                    p.pid, p.mm.rss_shmem
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mm::memory::{PSS_SHIFT, RangeStats};
    use crate::mm::process::testing::*;
    use crate::mm::types::{Arch, Pid};

    fn stats(k: &Kernel, pid: Pid, name: &str) -> RangeStats {
        let slot = k.procs.slot_of(pid).unwrap();
        let v = mm(k, pid).vma_lookup(addr(k, pid, name)).unwrap();
        let mut r = k.range_stats(slot, v.start_vpn(), v.end_vpn());
        r.swap += k.shmem_swap_usage(v);
        r
    }

    /// (Rss, Pss, Shared_Dirty, Private_Dirty) in kB.
    fn kb(r: &RangeStats) -> (u64, u64, u64, u64) {
        (
            r.resident * 4,
            r.pss >> (PSS_SHIFT + 10),
            r.shared_dirty * 4,
            r.private_dirty * 4,
        )
    }

    fn rss_shmem_kb(k: &Kernel, pid: Pid) -> u64 {
        mm(k, pid).rss_shmem * 4
    }

    /// The numbers of the real kernel on this machine (Linux 6.18.44,
    /// tests/reference/linux-samples/shmem/shmem.c and shmem.out): a 1M
    /// and a 256K shared anonymous mapping, the 1M written whole and the
    /// first 128K of the other; fork; the child writes both whole.
    #[test]
    fn shared_mappings_count_and_share_as_the_real_kernel_shows() {
        let mut k = boot(Arch::X86_64, 1 << 30);
        let parent = spawn(&mut k, "shmem");
        let committed = k.committed_as();
        run(&mut k, parent, "mmap 1M shared name=big").unwrap();
        run(&mut k, parent, "mmap 256K shared name=db").unwrap();
        // shmem_acct_size charges the size at mmap time.
        assert_eq!(k.committed_as(), committed + 256 + 64);
        // Placed top-down with no 2M alignment, the second right below.
        assert_eq!(
            addr(&k, parent, "db") + (256 << 10),
            addr(&k, parent, "big")
        );
        // Inode numbers in mmap order.
        let ino = |k: &Kernel, pid, name| {
            let v = mm(k, pid).vma_lookup(addr(k, pid, name)).unwrap();
            k.shmem.object(v.shm.unwrap().id).unwrap().ino
        };
        assert_eq!(ino(&k, parent, "big"), FIRST_SHMEM_INO);
        assert_eq!(ino(&k, parent, "db"), FIRST_SHMEM_INO + 1);
        // Nothing yet: "parent mapped" Rss 0.
        assert_eq!(kb(&stats(&k, parent, "big")), (0, 0, 0, 0));
        let (shmem, mapped, file) = {
            let s = k.node_stats();
            (s.nr_shmem, s.nr_mapped, s.nr_file_pages)
        };
        run(&mut k, parent, "touch big 1M write").unwrap();
        run(&mut k, parent, "touch db 128K write").unwrap();
        // "parent written": Rss = Pss = Private_Dirty 1024 and 128 kB,
        // Anonymous 0, RssShmem 1152 kB, statm shared + 288 pages.
        let big = stats(&k, parent, "big");
        assert_eq!(kb(&big), (1024, 1024, 0, 1024));
        assert_eq!((big.anon, big.referenced), (0, 256));
        assert_eq!(big.pss_shmem >> (PSS_SHIFT + 10), 1024);
        assert_eq!(kb(&stats(&k, parent, "db")), (128, 128, 0, 128));
        assert_eq!(rss_shmem_kb(&k, parent), 1152);
        assert_eq!(mm(&k, parent).rss_anon, 3, "only the stack's pages");
        // Shmem, Mapped and Cached (NR_FILE_PAGES) grow by the 288 pages.
        let s = k.node_stats();
        assert_eq!(s.nr_shmem - shmem, 288);
        assert_eq!(s.nr_mapped - mapped, 288);
        assert_eq!(s.nr_file_pages - file, 288);

        // "child after-fork": no page tables copied, Rss 0 on both.
        let child = fork(&mut k, parent);
        assert_eq!(kb(&stats(&k, child, "big")), (0, 0, 0, 0));
        assert_eq!(kb(&stats(&k, child, "db")), (0, 0, 0, 0));
        assert_eq!(rss_shmem_kb(&k, child), 0);
        // The child writes both whole: minor faults, no copy.
        let free = k.page_alloc.total_free();
        run(&mut k, child, "touch big 1M write").unwrap();
        // No page copied: one PTE table is all the child allocates.
        assert_eq!(free - k.page_alloc.total_free(), 1);
        run(&mut k, child, "touch db 256K write").unwrap();
        // "child written": big Rss 1024 Pss 512 Shared_Dirty 1024; db Rss
        // 256 Pss 192 Shared_Dirty 128 Private_Dirty 128; RssShmem 1280.
        assert_eq!(kb(&stats(&k, child, "big")), (1024, 512, 1024, 0));
        assert_eq!(kb(&stats(&k, child, "db")), (256, 192, 128, 128));
        assert_eq!(rss_shmem_kb(&k, child), 1280);
        // "parent child-written": big Pss 512, db Rss 128 Pss 64.
        assert_eq!(kb(&stats(&k, parent, "big")), (1024, 512, 1024, 0));
        assert_eq!(kb(&stats(&k, parent, "db")), (128, 64, 128, 0));
        // Shmem counts each page once: 1024 + 256 kB in all.
        assert_eq!(k.node_stats().nr_shmem - shmem, 320);
        // Both see the same bytes.
        let at = addr(&k, child, "db");
        k.write_mem(child, at + 7, b"seen").unwrap();
        assert_eq!(k.read_mem(parent, at + 7, 4).unwrap(), b"seen");

        // "parent child-exited": its pages are private again.
        sys(&mut k, &format!("kill {child}")).unwrap();
        assert_eq!(kb(&stats(&k, parent, "big")), (1024, 1024, 0, 1024));
        assert_eq!(kb(&stats(&k, parent, "db")), (128, 128, 0, 128));
        assert_eq!(k.node_stats().nr_shmem - shmem, 320, "the pages stay");
        // "parent unmapped": the 1M object goes with its last mapping.
        run(&mut k, parent, "munmap big 1M").unwrap();
        assert_eq!(k.node_stats().nr_shmem - shmem, 64);
        assert_eq!(rss_shmem_kb(&k, parent), 128);
        assert_eq!(k.committed_as(), committed + 64);
        sys(&mut k, &format!("kill {parent}")).unwrap();
        assert_eq!(k.node_stats().nr_shmem, shmem);
        assert_eq!(k.shmem.committed, 0);
    }

    #[test]
    fn a_read_fault_maps_a_clean_writable_page_and_split_halves_share_it() {
        let (mut k, pid) = setup();
        run(&mut k, pid, "mmap 64K shared name=s").unwrap();
        run(&mut k, pid, "touch s 64K read").unwrap();
        let s = stats(&k, pid, "s");
        // A page each (no zero page for shmem), clean.
        assert_eq!((s.resident, s.private_clean, s.dirty), (16, 16, 0));
        // Writable already: the write needs no fault (no write notify).
        let minflt = k.procs.by_pid(pid).unwrap().min_flt;
        run(&mut k, pid, "touch s 64K write").unwrap();
        assert_eq!(k.procs.by_pid(pid).unwrap().min_flt, minflt);
        assert_eq!(stats(&k, pid, "s").private_dirty, 16);
        // mprotect splits the VMA; both halves refer to the object.
        let a = addr(&k, pid, "s");
        let vmas = mm(&k, pid).map_count();
        run(&mut k, pid, &format!("mprotect {:#x} 32K r", a + 0x8000)).unwrap();
        assert_eq!(mm(&k, pid).map_count(), vmas + 1);
        run(&mut k, pid, &format!("munmap {a:#x} 32K")).unwrap();
        assert_eq!(k.shmem.nr_shmem, 16, "the upper half still refers to it");
        run(&mut k, pid, &format!("munmap {:#x} 32K", a + 0x8000)).unwrap();
        assert_eq!(k.shmem.nr_shmem, 0);
        assert_eq!(k.shmem.iter().count(), 0);
    }

    /// Reclaim writes shmem pages to swap through the swap cache: both
    /// mappers lose their PTEs, the index holds the entries, smaps shows
    /// them as Swap; touching again takes them back (a minor fault while
    /// the page is still in the swap cache, a major one once it was
    /// freed); swapoff brings the rest back into the index.
    #[test]
    fn shmem_swaps_out_of_every_mapper_and_back() {
        let mut k = boot_with_swap(1 << 30);
        let parent = spawn(&mut k, "parent");
        run(&mut k, parent, "mmap 256K shared name=s").unwrap();
        run(&mut k, parent, "touch s 256K write").unwrap();
        let at = addr(&k, parent, "s");
        k.write_mem(parent, at + 5, b"kept").unwrap();
        let child = fork(&mut k, parent);
        run(&mut k, child, "touch s 256K read").unwrap();
        assert_eq!(kb(&stats(&k, child, "s")), (256, 128, 256, 0));
        let pswpout = k.events.pswpout;
        let _ = sys(&mut k, "reclaim 1G");
        // Each shmem page written once (and the two stacks' 3 pages each).
        assert_eq!(k.events.pswpout - pswpout, 64 + 6);
        assert_eq!(k.shmem.nr_shmem, 0);
        assert_eq!(k.shmem.nr_swapped, 64);
        for pid in [parent, child] {
            let s = stats(&k, pid, "s");
            assert_eq!((s.resident, s.swap), (0, 64));
            assert_eq!(mm(&k, pid).rss_shmem, 0);
            // shmem swap is no swap PTE: VmSwap counts the stack's 3.
            assert_eq!(mm(&k, pid).swap_ents, 3);
        }
        // Written out, and freed from the swap cache by reclaim once the
        // writes completed: a read is a major fault that reads its slot's
        // cluster (the neighbours wait in the swap cache, PG_readahead),
        // and the faulting page's slot is freed (shmem keeps no swap copy).
        sys(&mut k, "tick 100").unwrap();
        let _ = sys(&mut k, "reclaim 1G");
        assert_eq!(k.swap.cache.len(), 0);
        let (pswpin, majflt) = (k.events.pswpin, k.procs.by_pid(child).unwrap().maj_flt);
        let used = k.swap.total_pages() - k.swap.free_pages();
        let swap_ra = k.events.swap_ra;
        run(&mut k, child, "touch s 4K read").unwrap();
        let read = k.events.pswpin - pswpin;
        assert!((2..=8).contains(&read), "a cluster read: pswpin {read}");
        assert_eq!(k.events.swap_ra, swap_ra + read - 1);
        assert_eq!(k.swap.cache.len(), read - 1);
        assert_eq!(k.procs.by_pid(child).unwrap().maj_flt, majflt + 1);
        assert_eq!(k.swap.total_pages() - k.swap.free_pages(), used - 1);
        assert_eq!(k.shmem.nr_swapped, 63);
        assert_eq!(k.read_mem(parent, at + 5, 4).unwrap(), b"kept");
        // The parent's fault on the same page finds it in the index.
        assert_eq!(stats(&k, parent, "s").resident, 1);
        // swapoff brings every page back into the index.
        sys(&mut k, "swapoff /dev/sdb1").unwrap();
        assert_eq!(k.shmem.nr_swapped, 0);
        assert_eq!(k.shmem.nr_shmem, 64);
        assert_eq!(stats(&k, child, "s").swap, 0);
        run(&mut k, parent, "touch s 256K read").unwrap();
        assert_eq!(k.procs.by_pid(parent).unwrap().maj_flt, 0);
    }

    /// Real kernel (tests/reference/linux-samples/shmem/shmem-swapin.txt,
    /// this machine's 6.18, page-cluster 3): 1M of shmem paged out, read
    /// back from the swap cache (256 minor faults, the slots freed at
    /// once), paged out again and dropped from the swap cache, then read
    /// sequentially: 32–34 major and 216–222 minor faults, pswpin 242–247,
    /// swap_ra ≈ swap_ra_hit 208–216 — cluster readahead reads a block of
    /// eight slots at each major fault.
    #[test]
    fn shmem_swapin_reads_ahead_a_cluster_as_the_real_kernel_does() {
        let mut k = boot_with_swap(1 << 30);
        let pid = spawn(&mut k, "p");
        run(&mut k, pid, "mmap 1M shared name=s").unwrap();
        run(&mut k, pid, "touch s 1M write").unwrap();
        run(&mut k, pid, "madvise s 1M pageout").unwrap();
        let faults = |k: &Kernel| {
            let p = k.procs.by_pid(pid).unwrap();
            (p.min_flt, p.maj_flt)
        };
        let used = |k: &Kernel| k.swap.total_pages() - k.swap.free_pages();
        let (f0, pswpin) = (faults(&k), k.events.pswpin);
        run(&mut k, pid, "touch s 1M read").unwrap();
        assert_eq!(faults(&k), (f0.0 + 256, f0.1), "from the swap cache");
        assert_eq!(k.events.pswpin, pswpin);
        assert_eq!(k.shmem.nr_swapped, 0, "the slots are freed at once");
        run(&mut k, pid, "madvise s 1M pageout").unwrap();
        sys(&mut k, "tick 100").unwrap();
        let mut passes = 0;
        while !k.swap.cache.is_empty() && passes < 100 {
            // EAGAIN when less than asked could be reclaimed: fine here.
            let _ = sys(&mut k, "reclaim 8M swappiness=max");
            passes += 1;
        }
        assert_eq!(k.swap.cache.len(), 0);
        assert_eq!(k.shmem.nr_swapped, 256);
        let (f0, pswpin) = (faults(&k), k.events.pswpin);
        let (ra, ra_hit) = (k.events.swap_ra, k.events.swap_ra_hit);
        let used_before = used(&k);
        run(&mut k, pid, "touch s 1M read").unwrap();
        let (minor, major) = (faults(&k).0 - f0.0, faults(&k).1 - f0.1);
        let (ra, ra_hit) = (k.events.swap_ra - ra, k.events.swap_ra_hit - ra_hit);
        let read = k.events.pswpin - pswpin;
        assert!((28..=40).contains(&major), "{major} major faults");
        assert_eq!(minor + major, 256);
        // Every page read once, and the cluster around the last faults
        // reaches the stack's slots next to them, as on the real kernel.
        assert!((256..=256 + 8).contains(&read), "pswpin {read}");
        assert_eq!(ra, read - major, "the rest read ahead");
        assert_eq!(ra_hit, 256 - major, "every page of the region a hit");
        assert_eq!((k.shmem.nr_swapped, k.shmem.nr_shmem), (0, 256));
        assert_eq!(used(&k), used_before - 256, "the region's slots freed");
        assert_eq!(k.swap.cache.len(), read - 256, "the neighbours stay cached");
    }

    #[test]
    fn a_touch_right_after_pageout_finds_the_swap_cache() {
        let mut k = boot_with_swap(1 << 30);
        let pid = spawn(&mut k, "p");
        run(&mut k, pid, "mmap 64K shared name=s").unwrap();
        run(&mut k, pid, "touch s 64K write").unwrap();
        run(&mut k, pid, "madvise s 64K pageout").unwrap();
        assert_eq!(k.shmem.nr_swapped, 16);
        assert_eq!(k.swap.cache.len(), 16, "the writes are in flight");
        let (pswpin, majflt) = (k.events.pswpin, k.procs.by_pid(pid).unwrap().maj_flt);
        run(&mut k, pid, "touch s 64K read").unwrap();
        assert_eq!(k.events.pswpin, pswpin);
        assert_eq!(k.procs.by_pid(pid).unwrap().maj_flt, majflt);
        // Back in the index, dirty, the slots free again.
        assert_eq!((k.shmem.nr_swapped, k.shmem.nr_shmem), (0, 16));
        assert_eq!(k.swap.cache.len(), 0);
        assert_eq!(stats(&k, pid, "s").private_dirty, 16);
    }

    #[test]
    fn a_clean_page_is_dropped_and_reads_as_a_hole_again() {
        let mut k = boot_with_swap(1 << 30);
        let pid = spawn(&mut k, "p");
        run(&mut k, pid, "mmap 64K shared name=s").unwrap();
        run(&mut k, pid, "touch s 64K read").unwrap();
        let pswpout = k.events.pswpout;
        run(&mut k, pid, "madvise s 64K pageout").unwrap();
        assert_eq!(k.events.pswpout, pswpout, "zeros need no write");
        assert_eq!((k.shmem.nr_shmem, k.shmem.nr_swapped), (0, 0));
        assert_eq!(mm(&k, pid).rss_shmem, 0);
    }

    /// The OOM killer counts shmem in a process's RSS (`get_mm_rss`
    /// includes MM_SHMEMPAGES) and its report prints shmem-rss.
    #[test]
    fn oom_badness_and_report_count_shmem_rss() {
        let (mut k, pid) = setup();
        run(&mut k, pid, "mmap 1M shared name=s").unwrap();
        run(&mut k, pid, "touch s 1M write").unwrap();
        let c = crate::mm::process::oom_candidate(k.procs.by_pid(pid).unwrap());
        assert_eq!(c.shmem_rss_pages, 256);
        let line = crate::mm::oom_kill::killed_line(&c);
        assert!(line.contains("file-rss:0kB, shmem-rss:1024kB,"), "{line}");
        let without = crate::mm::oom_kill::OomCandidate {
            shmem_rss_pages: 0,
            ..c.clone()
        };
        let total = k.totalram_pages();
        assert!(
            crate::mm::oom_kill::badness(&c, total) > crate::mm::oom_kill::badness(&without, total)
        );
    }

    #[test]
    fn bad_shared_mappings_change_nothing() {
        let (mut k, pid) = setup();
        run(&mut k, pid, "mmap 4K shared name=s").unwrap();
        let (vmas, committed) = (mm(&k, pid).map_count(), k.committed_as());
        for (line, errno) in [
            ("mmap 0 shared", libc::EINVAL),
            ("mmap 4K shared offset=4K", libc::EINVAL),
            ("mmap 4K shared name=s", libc::EEXIST),
            ("mmap 4K shared addr=s", libc::EEXIST),
            ("mmap 4K shared shared", libc::EINVAL),
            ("mmap 300T shared", libc::ENOMEM),
        ] {
            assert_eq!(run(&mut k, pid, line).unwrap_err().errno(), errno, "{line}");
        }
        assert_eq!(mm(&k, pid).map_count(), vmas);
        assert_eq!(k.committed_as(), committed);
        // The inode numbers of failed attempts are handed out again.
        run(&mut k, pid, "mmap 4K shared name=t").unwrap();
        let v = mm(&k, pid).vma_lookup(addr(&k, pid, "t")).unwrap();
        assert_eq!(
            k.shmem.object(v.shm.unwrap().id).unwrap().ino,
            FIRST_SHMEM_INO + 1
        );
    }
}
