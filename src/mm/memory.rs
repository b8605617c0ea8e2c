//! Page tables, page faults and process memory access (Linux:
//! mm/memory.c, mm/pgtable-generic.c, arch/x86/mm/fault.c, mm/gup.c).
//!
//! Page tables are real: each table is a simulated page from the buddy
//! allocator (kernel zones, [`PageKind::PageTable`], counted in meminfo
//! PageTables and, below the PGD, in status VmPTE) whose 512 (x86_64) or
//! 1024 (i386 without PAE) entries live in a host array. x86_64 walks four
//! levels (PGD → PUD → PMD → PTE; P4D is folded), i386 two (PGD → PTE).
//!
//! A leaf entry ([`Pte`]) packs the x86 bits PRESENT, RW, USER, ACCESSED,
//! DIRTY and SPECIAL (the shared zero page) with the pfn in bits 12..51, or,
//! when not present, a swap entry: type in bits 59..63, offset in bits
//! 9..58. An upper-level entry holds `_PAGE_TABLE` bits and, in the pfn
//! field, the arena index of the child table (whose simulated pfn is kept
//! next to its entries).
//!
//! Faults follow `handle_pte_fault`: a read of a never-touched page maps
//! the zero page read-only (no new page, not in RSS); a write allocates a
//! page through [`Kernel::alloc_user_page`] (copy-on-write when the zero
//! page was mapped); a swap entry is a major fault that reads the page back.
//! A range is faulted one PTE table at a time: one walk per 512 (or 1024)
//! entries.

use super::Kernel;
use super::cputime;
use super::error::{MmError, MmResult};
use super::page_alloc::{FLAG_REFERENCED, PageKind};
use super::swapfile::SwapEntry;
use super::types::{Arch, MmSlot, Order, PAGE_SHIFT, PAGE_SIZE, Pfn, ix};

/// _PAGE_PRESENT.
pub const PTE_PRESENT: u64 = 1 << 0;
/// _PAGE_RW: writable.
pub const PTE_RW: u64 = 1 << 1;
/// _PAGE_USER.
pub const PTE_USER: u64 = 1 << 2;
/// _PAGE_ACCESSED: the "young" bit the MMU sets on access.
pub const PTE_ACCESSED: u64 = 1 << 5;
/// _PAGE_DIRTY: the MMU sets it on write.
pub const PTE_DIRTY: u64 = 1 << 6;
/// _PAGE_SPECIAL: no struct page behind it (the zero page, `pte_special`).
pub const PTE_SPECIAL: u64 = 1 << 9;
/// First bit of the pfn.
const PTE_PFN_SHIFT: u32 = 12;
/// The pfn bits 12..51 (`PTE_PFN_MASK`).
const PTE_PFN_MASK: u64 = ((1 << 52) - 1) & !((1 << PTE_PFN_SHIFT) - 1);
/// `_PAGE_TABLE`: the bits of an entry that points to a lower table.
const PAGE_TABLE_BITS: u64 = PTE_PRESENT | PTE_RW | PTE_USER | PTE_ACCESSED | PTE_DIRTY;
/// Bits of the swap type (MAX_SWAPFILES_SHIFT).
pub const SWP_TYPE_BITS: u32 = 5;
/// First bit of the swap type in a PTE.
const SWP_TYPE_SHIFT: u32 = 64 - SWP_TYPE_BITS;
/// First bit of the swap offset in a PTE (above _PAGE_PROTNONE, bit 8).
const SWP_OFFSET_SHIFT: u32 = 9;
/// Largest swap offset a PTE can hold.
pub const SWP_OFFSET_MAX: u64 = (1 << (SWP_TYPE_SHIFT - SWP_OFFSET_SHIFT)) - 1;

/// One page-table entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Pte(pub u64);

impl Pte {
    /// The empty entry (`pte_none`).
    pub const NONE: Pte = Pte(0);

    /// A present user page.
    pub fn page(pfn: Pfn, write: bool, dirty: bool) -> Pte {
        let mut bits = PTE_PRESENT | PTE_USER | PTE_ACCESSED | (pfn.0 << PTE_PFN_SHIFT);
        if write {
            bits |= PTE_RW;
        }
        if dirty {
            bits |= PTE_DIRTY;
        }
        Pte(bits)
    }

    /// The shared zero page, mapped read-only (`pte_mkspecial`).
    pub fn zero_page(pfn: Pfn) -> Pte {
        Pte(PTE_PRESENT | PTE_USER | PTE_ACCESSED | PTE_SPECIAL | (pfn.0 << PTE_PFN_SHIFT))
    }

    /// A swap entry (`swp_entry_to_pte(swp_entry(type, offset))`). The
    /// swap code never hands out offset 0 (the header), so the entry is
    /// never mistaken for `pte_none`.
    pub fn from_swap(swap_type: u8, offset: u64) -> Pte {
        debug_assert!(u32::from(swap_type) < (1 << SWP_TYPE_BITS) && offset <= SWP_OFFSET_MAX);
        Pte(((swap_type as u64) << SWP_TYPE_SHIFT)
            | ((offset & SWP_OFFSET_MAX) << SWP_OFFSET_SHIFT))
    }

    /// `pte_none`: nothing was ever mapped here (or it was zapped).
    pub fn is_none(self) -> bool {
        self.0 == 0
    }

    /// `pte_present`.
    pub fn is_present(self) -> bool {
        self.0 & PTE_PRESENT != 0
    }

    /// A swap entry: not present, not none.
    pub fn is_swap(self) -> bool {
        !self.is_present() && !self.is_none()
    }

    /// The swap entry of a swapped-out page: (type, offset).
    pub fn swap_entry(self) -> (u8, u64) {
        (
            (self.0 >> SWP_TYPE_SHIFT) as u8,
            (self.0 >> SWP_OFFSET_SHIFT) & SWP_OFFSET_MAX,
        )
    }

    /// The swap entry as the swap code names it.
    pub fn swp_entry(self) -> SwapEntry {
        let (area, offset) = self.swap_entry();
        SwapEntry { area, offset }
    }

    /// The same entry pointing at another frame (`remove_migration_pte`
    /// keeps the protection, dirty and accessed bits).
    pub fn with_pfn(self, pfn: Pfn) -> Pte {
        Pte((self.0 & !PTE_PFN_MASK) | ((pfn.0 << PTE_PFN_SHIFT) & PTE_PFN_MASK))
    }

    /// The frame of a present entry.
    pub fn pfn(self) -> Pfn {
        Pfn((self.0 & PTE_PFN_MASK) >> PTE_PFN_SHIFT)
    }

    /// Maps the shared zero page.
    pub fn is_zero_page(self) -> bool {
        self.is_present() && self.0 & PTE_SPECIAL != 0
    }

    /// Maps a page of its own (present, not the zero page): counted in RSS.
    pub fn is_page(self) -> bool {
        self.0 & (PTE_PRESENT | PTE_SPECIAL) == PTE_PRESENT
    }

    /// `pte_write`.
    pub fn is_write(self) -> bool {
        self.0 & PTE_RW != 0
    }

    /// `pte_dirty`.
    pub fn is_dirty(self) -> bool {
        self.0 & PTE_DIRTY != 0
    }

    /// `pte_young`.
    pub fn is_young(self) -> bool {
        self.0 & PTE_ACCESSED != 0
    }
}

/// Shape of the page tables of an architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Levels: 4 on x86_64, 2 on i386.
    pub levels: u32,
    /// Index bits per level: 9 (512 entries) or 10 (1024 entries).
    pub bits: u32,
}

impl Geometry {
    /// The geometry of `arch`.
    pub fn of(arch: Arch) -> Geometry {
        match arch {
            Arch::X86_64 => Geometry { levels: 4, bits: 9 },
            Arch::I386 => Geometry {
                levels: 2,
                bits: 10,
            },
        }
    }

    /// Entries per table.
    pub fn entries(self) -> usize {
        1 << self.bits
    }

    /// The index of `vpn` in its PTE table: a mask, not a division (the
    /// table size is only known at run time, and a `%` by it costs a
    /// divide on every fault).
    pub fn pte_index(self, vpn: u64) -> usize {
        (vpn & ((1u64 << self.bits) - 1)) as usize
    }

    /// Pages one entry of a table at `level` covers (level 0 = PTE table).
    pub fn span_pages(self, level: u32) -> u64 {
        1u64 << (self.bits * level)
    }

    /// Index of `vpn` in a table at `level`.
    pub fn index(self, vpn: u64, level: u32) -> usize {
        ((vpn >> (self.bits * level)) as usize) & (self.entries() - 1)
    }
}

/// One page-table page: its simulated frame and its entries.
struct Table {
    pfn: Pfn,
    entries: Box<[u64]>,
}

/// The page tables of one address space: an arena of tables, the PGD at
/// index 0. Freed tables keep their host array for reuse.
pub struct PageTables {
    geometry: Geometry,
    tables: Vec<Table>,
    free_ids: Vec<u32>,
    /// Live tables below the PGD (PUD, PMD and PTE tables): status VmPTE.
    nr_tables: u64,
}

/// Arena index of the PGD.
const ROOT: u32 = 0;

impl PageTables {
    /// Page tables with only a PGD, held in frame `pgd`.
    pub fn new(arch: Arch, pgd: Pfn) -> PageTables {
        let geometry = Geometry::of(arch);
        PageTables {
            geometry,
            tables: vec![Table {
                pfn: pgd,
                entries: vec![0u64; geometry.entries()].into_boxed_slice(),
            }],
            free_ids: Vec::new(),
            nr_tables: 0,
        }
    }

    /// The geometry.
    pub fn geometry(&self) -> Geometry {
        self.geometry
    }

    /// Frame of the PGD.
    pub fn pgd_pfn(&self) -> Pfn {
        self.tables[ix(ROOT)].pfn
    }

    /// Live page-table pages below the PGD (VmPTE / 4 KiB). The PGD counts
    /// in meminfo PageTables but not in VmPTE (`mm_pgtables_bytes`).
    pub fn nr_tables(&self) -> u64 {
        self.nr_tables
    }

    fn child(entry: u64) -> Option<u32> {
        (entry & PTE_PRESENT != 0).then_some((entry >> PTE_PFN_SHIFT) as u32)
    }

    /// The PTE table and index that map `vpn`; None when a table on the
    /// way is missing. Never allocates.
    pub fn walk(&self, vpn: u64) -> Option<(u32, usize)> {
        let g = self.geometry;
        let mut id = ROOT;
        for level in (1..g.levels).rev() {
            let entry = self.tables[ix(id)].entries[g.index(vpn, level)];
            id = Self::child(entry)?;
        }
        Some((id, g.index(vpn, 0)))
    }

    /// Install `pfn` as the first missing table on the way to `vpn`.
    /// Returns false (and leaves `pfn` unused) when nothing is missing.
    pub fn install(&mut self, vpn: u64, pfn: Pfn) -> bool {
        let g = self.geometry;
        let mut id = ROOT;
        for level in (1..g.levels).rev() {
            let index = g.index(vpn, level);
            let entry = self.tables[ix(id)].entries[index];
            match Self::child(entry) {
                Some(child) => id = child,
                None => {
                    let new = self.new_table(pfn);
                    self.tables[ix(id)].entries[index] =
                        ((new as u64) << PTE_PFN_SHIFT) | PAGE_TABLE_BITS;
                    self.nr_tables += 1;
                    return true;
                }
            }
        }
        false
    }

    fn new_table(&mut self, pfn: Pfn) -> u32 {
        match self.free_ids.pop() {
            Some(id) => {
                let table = &mut self.tables[ix(id)];
                table.pfn = pfn;
                table.entries.fill(0);
                id
            }
            None => {
                self.tables.push(Table {
                    pfn,
                    entries: vec![0u64; self.geometry.entries()].into_boxed_slice(),
                });
                (self.tables.len() - 1) as u32
            }
        }
    }

    /// The entry of a PTE table.
    pub fn entry(&self, table: u32, index: usize) -> Pte {
        Pte(self.tables[ix(table)].entries[index])
    }

    /// Set an entry of a PTE table.
    pub fn set_entry(&mut self, table: u32, index: usize, pte: Pte) {
        self.tables[ix(table)].entries[index] = pte.0;
    }

    /// The entries of a PTE table.
    pub fn entries(&self, table: u32) -> &[u64] {
        &self.tables[ix(table)].entries
    }

    /// The entries of a PTE table, for writing.
    pub fn entries_mut(&mut self, table: u32) -> &mut [u64] {
        &mut self.tables[ix(table)].entries
    }

    /// The PTE of `vpn` (none when its table is missing).
    pub fn pte(&self, vpn: u64) -> Pte {
        match self.walk(vpn) {
            Some((table, index)) => self.entry(table, index),
            None => Pte::NONE,
        }
    }

    /// The PTE of `vpn` for writing, without allocating tables.
    pub fn pte_mut(&mut self, vpn: u64) -> Option<&mut u64> {
        let (table, index) = self.walk(vpn)?;
        Some(&mut self.tables[ix(table)].entries[index])
    }

    /// The PTE tables that exist for `[start, end)` (vpns), in address
    /// order: (table, first index, end index, vpn of the first index).
    pub fn pte_tables(&self, start: u64, end: u64) -> Vec<(u32, usize, usize, u64)> {
        let mut out = Vec::new();
        self.for_each_pte_slice(start, end, &mut |table, lo, hi, first| {
            out.push((table, lo, hi, first))
        });
        out
    }

    /// Visit the existing PTE tables of `[start, end)` (vpns) in address
    /// order without allocating: `f(table, first index, end index, vpn of
    /// the first index)`. Missing subtrees are skipped whole.
    pub fn for_each_pte_slice(
        &self,
        start: u64,
        end: u64,
        f: &mut dyn FnMut(u32, usize, usize, u64),
    ) {
        if start < end {
            self.visit(ROOT, self.geometry.levels - 1, 0, start, end, f);
        }
    }

    fn visit(
        &self,
        id: u32,
        level: u32,
        base: u64,
        start: u64,
        end: u64,
        f: &mut dyn FnMut(u32, usize, usize, u64),
    ) {
        let g = self.geometry;
        let span = g.span_pages(level);
        let first = (start.max(base) - base) / span;
        let last = (end - base).div_ceil(span).min(g.entries() as u64);
        if level == 0 {
            f(id, first as usize, last as usize, base + first);
            return;
        }
        let entries = &self.tables[ix(id)].entries;
        for i in first..last {
            if let Some(child) = Self::child(entries[ix(i)]) {
                self.visit(child, level - 1, base + i * span, start, end, f);
            }
        }
    }

    /// `free_pgtables`: free every table below the PGD whose whole span
    /// meets `[start, end)` and no mapping (`in_use(lo, hi)` is false).
    /// Their entries must already be zapped. Returns the freed frames.
    pub fn free_unused(
        &mut self,
        start: u64,
        end: u64,
        in_use: &dyn Fn(u64, u64) -> bool,
    ) -> Vec<Pfn> {
        let mut freed = Vec::new();
        let top = self.geometry.levels - 1;
        self.free_under(ROOT, top, 0, start, end, in_use, &mut freed);
        freed
    }

    #[allow(clippy::too_many_arguments)]
    fn free_under(
        &mut self,
        id: u32,
        level: u32,
        base: u64,
        start: u64,
        end: u64,
        in_use: &dyn Fn(u64, u64) -> bool,
        freed: &mut Vec<Pfn>,
    ) {
        if level == 0 {
            return;
        }
        let g = self.geometry;
        let span = g.span_pages(level);
        let first = (start.max(base) - base) / span;
        let last = (end - base).div_ceil(span).min(g.entries() as u64);
        for i in first..last {
            let Some(child) = Self::child(self.tables[ix(id)].entries[ix(i)]) else {
                continue;
            };
            let lo = base + i * span;
            if in_use(lo, lo + span) {
                self.free_under(child, level - 1, lo, start, end, in_use, freed);
            } else {
                self.tables[ix(id)].entries[ix(i)] = 0;
                self.release_subtree(child, level - 1, freed);
            }
        }
    }

    /// PT_RECLAIM: free every PTE table whose whole span lies in
    /// `[start, end)` (vpns) and whose entries are all none; the tables
    /// above stay. Returns the freed frames.
    pub fn free_empty_pte_tables(&mut self, start: u64, end: u64) -> Vec<Pfn> {
        let mut freed = Vec::new();
        if start < end && self.geometry.levels > 1 {
            let top = self.geometry.levels - 1;
            self.free_empty_under(ROOT, top, 0, start, end, &mut freed);
        }
        freed
    }

    fn free_empty_under(
        &mut self,
        id: u32,
        level: u32,
        base: u64,
        start: u64,
        end: u64,
        freed: &mut Vec<Pfn>,
    ) {
        let g = self.geometry;
        let span = g.span_pages(level);
        let first = (start.max(base) - base) / span;
        let last = (end - base).div_ceil(span).min(g.entries() as u64);
        for i in first..last {
            let Some(child) = Self::child(self.tables[ix(id)].entries[ix(i)]) else {
                continue;
            };
            let lo = base + i * span;
            if level > 1 {
                self.free_empty_under(child, level - 1, lo, start, end, freed);
            } else if lo >= start
                && lo + span <= end
                && self.tables[ix(child)].entries.iter().all(|&e| e == 0)
            {
                self.tables[ix(id)].entries[ix(i)] = 0;
                self.release_subtree(child, 0, freed);
            }
        }
    }

    fn release_subtree(&mut self, id: u32, level: u32, freed: &mut Vec<Pfn>) {
        if level > 0 {
            for i in 0..self.geometry.entries() {
                if let Some(child) = Self::child(self.tables[ix(id)].entries[i]) {
                    self.release_subtree(child, level - 1, freed);
                }
            }
        }
        freed.push(self.tables[ix(id)].pfn);
        self.free_ids.push(id);
        self.nr_tables -= 1;
    }

    /// Every table frame, the PGD included (for exit).
    pub fn all_pfns(&self) -> Vec<Pfn> {
        let mut out = Vec::new();
        self.collect_pfns(ROOT, self.geometry.levels - 1, &mut out);
        out
    }

    fn collect_pfns(&self, id: u32, level: u32, out: &mut Vec<Pfn>) {
        out.push(self.tables[ix(id)].pfn);
        if level == 0 {
            return;
        }
        for &entry in self.tables[ix(id)].entries.iter() {
            if let Some(child) = Self::child(entry) {
                self.collect_pfns(child, level - 1, out);
            }
        }
    }
}

/// Who caused a fault, for the per-task counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultOrigin {
    /// The task itself: counted in its minflt/majflt.
    Task,
    /// Another task through `get_user_pages` (`PID/mem`): counted in
    /// vmstat pgfault but in the accessing task's counters, which live
    /// outside the simulation.
    Remote,
}

/// PSS_SHIFT: Pss is summed in 1/4096ths of a byte.
pub const PSS_SHIFT: u32 = 12;

/// Page counts of one range, as smaps reports them (`smaps_account`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RangeStats {
    /// Pages with a frame mapped (Rss).
    pub resident: u64,
    /// Of those, dirty (PTE dirty bit or frame dirty flag).
    pub dirty: u64,
    /// Of those, referenced (PTE young or frame referenced).
    pub referenced: u64,
    /// Of those, anonymous (Anonymous).
    pub anon: u64,
    /// Mapped more than once, clean / dirty (Shared_Clean, Shared_Dirty).
    pub shared_clean: u64,
    /// See `shared_clean`.
    pub shared_dirty: u64,
    /// Mapped once, clean / dirty (Private_Clean, Private_Dirty).
    pub private_clean: u64,
    /// See `private_clean`.
    pub private_dirty: u64,
    /// Proportional set size in bytes << PSS_SHIFT (each page divided by
    /// its map count); `pss_dirty`, `pss_anon`, `pss_file` its parts.
    pub pss: u64,
    /// See `pss`.
    pub pss_dirty: u64,
    /// See `pss`.
    pub pss_anon: u64,
    /// See `pss`.
    pub pss_file: u64,
    /// See `pss` (shmem pages).
    pub pss_shmem: u64,
    /// Swap entries.
    pub swap: u64,
    /// Swap entries divided by their slots' use counts, bytes <<
    /// PSS_SHIFT (SwapPss).
    pub swap_pss: u64,
}

impl RangeStats {
    /// Add another range's counts.
    pub fn add(&mut self, o: &RangeStats) {
        self.resident += o.resident;
        self.dirty += o.dirty;
        self.referenced += o.referenced;
        self.anon += o.anon;
        self.shared_clean += o.shared_clean;
        self.shared_dirty += o.shared_dirty;
        self.private_clean += o.private_clean;
        self.private_dirty += o.private_dirty;
        self.pss += o.pss;
        self.pss_dirty += o.pss_dirty;
        self.pss_anon += o.pss_anon;
        self.pss_file += o.pss_file;
        self.pss_shmem += o.pss_shmem;
        self.swap += o.swap;
        self.swap_pss += o.swap_pss;
    }
}

/// The x86 error code of a user fault (X86_PF_USER is added by the
/// tracepoint): a write, and whether a page was present (a protection
/// fault: copy-on-write, write notification).
fn pf_code(write: bool, present: bool) -> u64 {
    use super::trace::pf;
    (if write { pf::WRITE } else { 0 }) | (if present { pf::PROT } else { 0 })
}

/// fault_around_bytes (64K) in pages.
const FAULT_AROUND_PAGES: u64 = 16;

/// What a fault in a file VMA needs of the VMA.
#[derive(Clone, Copy, Debug)]
struct FileFault {
    ino: u32,
    pgoff: u64,
    vma_start: u64,
    vma_end: u64,
    shared: bool,
}

impl Kernel {
    /// Allocate a user anonymous page (GFP_HIGHUSER_MOVABLE: HighMem first
    /// on i386): the low watermark, kswapd, min, direct reclaim. Every user
    /// page comes from here so that reclaim and the OOM killer have one hook.
    pub fn alloc_user_page(&mut self) -> MmResult<Pfn> {
        let highest = self.procs.user_zone;
        self.alloc_pages(Order(0), highest, PageKind::UserAnon)
            .ok_or_else(|| {
                MmError::NoMemory(
                    "out of memory: no free page for a user page fault, and reclaim found nothing to free"
                        .into(),
                )
            })
    }

    /// Give a user page back: off the LRU, bytes dropped, to the buddy
    /// allocator.
    pub(crate) fn free_user_page(&mut self, pfn: Pfn) {
        self.lru_del(pfn);
        if !self.page_contents.is_empty() {
            self.drop_page_bytes(pfn);
        }
        if let Err(err) = self.free_pages(pfn, Order(0)) {
            // A bookkeeping bug must not take the daemon down; say it loudly.
            self.printk(format!("BUG: Bad page state: {err}"));
        }
    }

    /// Allocate a page-table page (GFP_PGTABLE_USER: kernel zones only).
    pub(crate) fn alloc_pt_page(&mut self) -> MmResult<Pfn> {
        let zone = self.kernel_zone();
        self.alloc_pages(Order(0), zone, PageKind::PageTable)
            .ok_or_else(|| MmError::NoMemory("out of memory: no free page for a page table".into()))
    }

    /// The PTE of page `vpn` of the address space in `mm_slot`, for the
    /// swap code. Walks without allocating: None when no page table covers
    /// `vpn` (then the PTE is none). A caller that changes a PTE keeps the
    /// counters right, as mm/swap_state.rs does for swap.
    pub fn pte_mut(&mut self, mm_slot: MmSlot, vpn: u64) -> Option<&mut u64> {
        self.procs.get_mut(mm_slot)?.mm.pgtables.pte_mut(vpn)
    }

    /// The PTE of page `vpn` in `mm_slot` (none when unmapped).
    pub fn pte(&self, mm_slot: MmSlot, vpn: u64) -> Pte {
        self.procs
            .get(mm_slot)
            .map(|p| p.mm.pgtables.pte(vpn))
            .unwrap_or(Pte::NONE)
    }

    /// The PTE table mapping `vpn`, allocating missing tables on the way
    /// (`__pte_alloc`).
    pub(crate) fn pte_table_alloc(&mut self, slot: MmSlot, vpn: u64) -> MmResult<u32> {
        loop {
            let process = self.procs.get(slot).ok_or_else(gone)?;
            if let Some((table, _)) = process.mm.pgtables.walk(vpn) {
                return Ok(table);
            }
            let pfn = self.alloc_pt_page()?;
            match self.procs.get_mut(slot) {
                Some(process) => {
                    if !process.mm.pgtables.install(vpn, pfn) {
                        self.free_kernel_page(pfn);
                    }
                }
                None => {
                    self.free_kernel_page(pfn);
                    return Err(gone());
                }
            }
        }
    }

    /// Give back a page-table page.
    pub(crate) fn free_kernel_page(&mut self, pfn: Pfn) {
        if let Err(err) = self.free_pages(pfn, Order(0)) {
            self.printk(format!("BUG: Bad page state: {err}"));
        }
    }

    /// exceptions:page_fault_user for a fault whose page table is missing:
    /// the trap comes before the table is allocated, so its line must come
    /// before that allocation's. True when it was traced here.
    fn trace_fault_before_table(
        &mut self,
        task: bool,
        slot: MmSlot,
        vpn: u64,
        write: bool,
    ) -> bool {
        if !self.trace.on(super::trace::Event::PageFaultUser) || !task {
            return false;
        }
        let missing = self
            .procs
            .get(slot)
            .is_some_and(|p| p.mm.pgtables.walk(vpn).is_none());
        if missing {
            self.trace_page_fault_user(true, vpn, pf_code(write, false));
        }
        missing
    }

    /// exceptions:page_fault_user for a fault of the task (`task`) at
    /// `vpn`: a write or a read, on a present PTE or not.
    pub(crate) fn trace_user_fault(&mut self, task: bool, vpn: u64, write: bool, present: bool) {
        self.trace_page_fault_user(task, vpn, pf_code(write, present));
    }

    /// Count one fault: vmstat pgfault always, the task's counter when the
    /// task caused it (`mm_account_fault`).
    fn account_fault(&mut self, slot: MmSlot, origin: FaultOrigin, major: bool) {
        self.events.pgfault += 1;
        if origin == FaultOrigin::Task
            && let Some(process) = self.procs.get_mut(slot)
        {
            if major {
                process.maj_flt += 1;
            } else {
                process.min_flt += 1;
            }
        }
    }

    /// Access every page of `[start, end)` (vpns) in `slot`, faulting as
    /// needed. The caller has checked that one VMA covers the range and
    /// allows the access; `vma_write` says whether that VMA is writable
    /// (new writable PTEs only then: a forced write through `PID/mem` to a
    /// read-only mapping gets a private read-only page, as with ptrace).
    /// Pages faulted before a failure stay (ENOMEM mid-range).
    pub(crate) fn fault_range(
        &mut self,
        slot: MmSlot,
        start: u64,
        end: u64,
        write: bool,
        vma_write: bool,
        origin: FaultOrigin,
    ) -> MmResult<()> {
        let file = self
            .procs
            .get(slot)
            .and_then(|p| p.mm.vma_lookup(start << PAGE_SHIFT))
            .and_then(|v| {
                v.file.as_ref().map(|f| FileFault {
                    ino: f.ino,
                    pgoff: f.pgoff,
                    vma_start: v.start_vpn(),
                    vma_end: v.end_vpn(),
                    shared: v.is_shared(),
                })
            });
        if let Some(file) = file {
            return self.do_file_faults(slot, start, end, write, vma_write, origin, file);
        }
        let shm = self
            .procs
            .get(slot)
            .and_then(|p| p.mm.vma_lookup(start << PAGE_SHIFT))
            .and_then(|v| v.shm.map(|s| (s, v.start_vpn())));
        if let Some((shm, vma_start)) = shm {
            return self
                .do_shmem_faults(slot, start, end, write, vma_write, origin, shm, vma_start);
        }
        let geometry = self.procs.geometry();
        let per_table = geometry.entries() as u64;
        let zero = Pte::zero_page(self.procs.zero_page);
        let task = origin == FaultOrigin::Task;
        let mut vpn = start;
        while vpn < end {
            let early = self.trace_fault_before_table(task, slot, vpn, write);
            let table = self.pte_table_alloc(slot, vpn)?;
            let table_end = end.min((vpn / per_table + 1) * per_table);
            for v in vpn..table_end {
                let index = geometry.pte_index(v);
                let pte = self
                    .procs
                    .get(slot)
                    .ok_or_else(gone)?
                    .mm
                    .pgtables
                    .entry(table, index);
                // do_wp_page copies a page another PTE maps, or whose swap
                // copy another PTE still holds (it stays in the swap cache
                // for them); else it reuses it (`wp_can_reuse_anon_folio`,
                // which first tries `folio_free_swap`).
                let cow = pte.is_page() && write && !pte.is_write() && self.wp_must_copy(pte.pfn());
                if pte.is_none() && !write {
                    // do_anonymous_page, read: map the zero page.
                    self.trace_page_fault_user(task && !(early && v == vpn), v, 0);
                    let process = self.procs.get_mut(slot).ok_or_else(gone)?;
                    process.mm.pgtables.set_entry(table, index, zero);
                    if task {
                        process.min_flt += 1;
                    }
                    self.events.pgfault += 1;
                    self.account_system(cputime::MINOR_FAULT_NS);
                } else if pte.is_none() || (write && pte.is_zero_page()) {
                    // do_anonymous_page (write) or wp_page_copy from the zero page.
                    self.trace_page_fault_user(
                        task && !(early && v == vpn),
                        v,
                        pf_code(write, !pte.is_none()),
                    );
                    let pfn = match self.alloc_user_page() {
                        Ok(pfn) => pfn,
                        Err(err) => {
                            // A failed fault still counts in pgfault.
                            self.events.pgfault += 1;
                            return Err(err);
                        }
                    };
                    let Some(process) = self.procs.get_mut(slot) else {
                        // The OOM killer chose this very process.
                        self.free_pages(pfn, Order(0)).ok();
                        return Err(gone());
                    };
                    process
                        .mm
                        .pgtables
                        .set_entry(table, index, Pte::page(pfn, vma_write, true));
                    process.mm.rss_anon += 1;
                    if task {
                        process.min_flt += 1;
                    }
                    self.events.pgfault += 1;
                    self.account_system(cputime::MINOR_FAULT_NS);
                    self.page_add_anon_rmap(pfn, slot, v);
                    self.lru_add_anon(pfn);
                } else if pte.is_swap() {
                    self.trace_page_fault_user(
                        task && !(early && v == vpn),
                        v,
                        pf_code(write, false),
                    );
                    self.do_swap_page(slot, table, v, pte, write, vma_write, origin)?;
                } else if cow {
                    // do_wp_page on a page shared since fork: copy it.
                    self.trace_page_fault_user(
                        task && !(early && v == vpn),
                        v,
                        pf_code(true, true),
                    );
                    self.wp_page_copy(slot, table, v, pte.pfn(), vma_write)?;
                    self.account_fault(slot, origin, false);
                    self.account_system(cputime::MINOR_FAULT_NS);
                } else if pte.is_page() {
                    let mut bits = pte.0 | PTE_ACCESSED;
                    if write {
                        if !pte.is_write() && vma_write {
                            // do_wp_page on an exclusive anon page: reuse it.
                            self.trace_page_fault_user(
                                task && !(early && v == vpn),
                                v,
                                pf_code(true, true),
                            );
                            bits |= PTE_RW;
                            if task && let Some(process) = self.procs.get_mut(slot) {
                                process.min_flt += 1;
                            }
                            self.events.pgfault += 1;
                        }
                        bits |= PTE_DIRTY;
                    }
                    if bits != pte.0 {
                        let process = self.procs.get_mut(slot).ok_or_else(gone)?;
                        process.mm.pgtables.set_entry(table, index, Pte(bits));
                    }
                    if bits & PTE_RW != pte.0 & PTE_RW {
                        self.account_system(cputime::MINOR_FAULT_NS);
                    }
                }
                // A read of the zero page needs nothing.
            }
            if task {
                // The task's own loads and stores over the pages.
                self.account_user((table_end - vpn) * cputime::TOUCH_PAGE_NS);
            }
            vpn = table_end;
        }
        Ok(())
    }

    /// Faults over `[start, end)` (vpns) of one file VMA (`do_fault`): a
    /// read fault maps the cached page after fault-around
    /// (`do_read_fault`), a private write copies it into an anonymous page
    /// (`do_cow_fault`, `wp_page_copy`), a shared write maps it writable
    /// and dirties it (`do_shared_fault`, `wp_page_shared`). Pages past
    /// the end of the file are a SIGBUS.
    #[allow(clippy::too_many_arguments)]
    fn do_file_faults(
        &mut self,
        slot: MmSlot,
        start: u64,
        end: u64,
        write: bool,
        vma_write: bool,
        origin: FaultOrigin,
        file: FileFault,
    ) -> MmResult<()> {
        let task = origin == FaultOrigin::Task;
        let mut dirtied = false;
        for v in start..end {
            let early = self.trace_fault_before_table(task, slot, v, write);
            let table = self.pte_table_alloc(slot, v)?;
            let index = file.pgoff + (v - file.vma_start);
            let pte = self.pte(slot, v);
            if pte.is_swap() {
                // A private COW copy that went to swap.
                self.trace_page_fault_user(task && !early, v, pf_code(write, false));
                self.do_swap_page(slot, table, v, pte, write, vma_write, origin)?;
                continue;
            }
            if pte.is_page() {
                let pfn = pte.pfn();
                if self.page_alloc.frames.kind(pfn) != PageKind::PageCache
                    && write
                    && !pte.is_write()
                    && self.page_alloc.frames.mapcount(pfn) > 1
                {
                    // A COW copy shared since fork: copied again.
                    self.trace_page_fault_user(task && !early, v, pf_code(true, true));
                    self.wp_page_copy(slot, table, v, pfn, vma_write)?;
                    self.account_fault(slot, origin, false);
                    self.account_system(cputime::MINOR_FAULT_NS);
                } else if self.page_alloc.frames.kind(pfn) != PageKind::PageCache {
                    // The private anonymous copy: as any anon page.
                    let mut bits = pte.0 | PTE_ACCESSED;
                    if write {
                        if !pte.is_write() && vma_write {
                            self.trace_page_fault_user(task && !early, v, pf_code(true, true));
                            bits |= PTE_RW;
                            self.account_fault(slot, origin, false);
                            self.account_system(cputime::MINOR_FAULT_NS);
                        }
                        bits |= PTE_DIRTY;
                    }
                    self.set_pte_at(slot, table, v, Pte(bits));
                } else if !write {
                    // The young PTE is the reference (no folio_mark_accessed).
                    self.set_pte_at(slot, table, v, Pte(pte.0 | PTE_ACCESSED));
                } else if file.shared {
                    if !pte.is_write() {
                        self.trace_page_fault_user(task && !early, v, pf_code(true, true));
                    }
                    // The write notification of an active swap file fails
                    // (SIGBUS, as measured on Linux 6.18).
                    if !pte.is_write() && self.swap.is_swapfile(file.ino) {
                        self.events.pgfault += 1;
                        return Err(self.swapfile_sigbus(slot, v));
                    }
                    // wp_page_shared: write notification, the page dirties.
                    if !pte.is_write() && vma_write {
                        self.account_fault(slot, origin, false);
                        self.account_system(cputime::MINOR_FAULT_NS);
                    }
                    let bits =
                        pte.0 | PTE_ACCESSED | PTE_DIRTY | if vma_write { PTE_RW } else { 0 };
                    self.set_pte_at(slot, table, v, Pte(bits));
                    self.set_page_dirty(file.ino, pfn);
                    dirtied = true;
                } else {
                    // wp_page_copy: the private mapping gets its own copy.
                    self.trace_page_fault_user(task && !early, v, pf_code(true, true));
                    // Held: reclaim during the copy's allocation must
                    // not unmap and evict the page being copied.
                    self.folio_get(pfn);
                    let copied = self.cow_file_page(slot, table, v, pfn, vma_write, pte);
                    self.folio_put(pfn);
                    copied?;
                    self.account_fault(slot, origin, false);
                    self.account_system(cputime::MINOR_FAULT_NS);
                }
                continue;
            }
            self.trace_page_fault_user(task && !early, v, pf_code(write, false));
            if index >= self.vfs.inode(file.ino)?.size.div_ceil(PAGE_SIZE) {
                self.events.pgfault += 1;
                return Err(self.sigbus(slot, v, index));
            }
            if write && !file.shared {
                // do_cow_fault: read the file page, copy it.
                let (pfn, major) = self.filemap_fault(file.ino, index)?;
                // Held while the copy's page is allocated.
                self.folio_get(pfn);
                let copied = self.cow_file_page(slot, table, v, pfn, vma_write, Pte::NONE);
                self.folio_put(pfn);
                copied?;
                self.account_file_fault(slot, origin, major);
                continue;
            }
            if write && self.swap.is_swapfile(file.ino) {
                self.events.pgfault += 1;
                return Err(self.swapfile_sigbus(slot, v));
            }
            let (pfn, major) = self.filemap_fault(file.ino, index)?;
            if write {
                // do_shared_fault: mapped writable and dirty at once.
                self.map_file_page(slot, table, v, pfn, Pte::page(pfn, vma_write, true));
                self.set_page_dirty(file.ino, pfn);
                dirtied = true;
            } else {
                // do_read_fault: the neighbours already cached are mapped
                // with it (the retry after the read is a fault-around too).
                self.do_fault_around(slot, v, &file);
                if self.pte(slot, v).is_none() {
                    self.map_file_page(slot, table, v, pfn, Pte::page(pfn, false, false));
                }
            }
            self.account_file_fault(slot, origin, major);
        }
        if task {
            self.account_user((end - start) * cputime::TOUCH_PAGE_NS);
        }
        if dirtied {
            self.balance_dirty_pages()?;
        }
        Ok(())
    }

    /// Count one file fault: major when the page was read from the disk
    /// (`VM_FAULT_MAJOR`), the task stalling meanwhile.
    pub(crate) fn account_file_fault(&mut self, slot: MmSlot, origin: FaultOrigin, major: bool) {
        if major {
            self.events.pgmajfault += 1;
        }
        self.account_fault(slot, origin, major);
        self.account_system(cputime::MINOR_FAULT_NS);
    }

    /// Set the PTE of `vpn` (in `table`) of `slot`.
    /// The PTE of `vpn` in its PTE table `table` of `slot` (none when the
    /// process is gone): no walk from the PGD, for paths that hold the table.
    pub(crate) fn pte_at(&self, slot: MmSlot, table: u32, vpn: u64) -> Pte {
        let index = self.procs.geometry().pte_index(vpn);
        self.procs
            .get(slot)
            .map_or(Pte::NONE, |p| p.mm.pgtables.entry(table, index))
    }

    /// Set the PTE of `vpn` in its PTE table `table` of `slot`.
    pub(crate) fn set_pte_at(&mut self, slot: MmSlot, table: u32, vpn: u64, pte: Pte) {
        let index = self.procs.geometry().pte_index(vpn);
        if let Some(p) = self.procs.get_mut(slot) {
            p.mm.pgtables.set_entry(table, index, pte);
        }
    }

    /// Map page-cache page `pfn` at `vpn` with `pte` and account it.
    fn map_file_page(&mut self, slot: MmSlot, table: u32, vpn: u64, pfn: Pfn, pte: Pte) {
        if self.procs.get(slot).is_none() {
            return;
        }
        self.set_pte_at(slot, table, vpn, pte);
        self.page_add_file_rmap(slot, pfn);
    }

    /// `do_fault_around`: map the cached pages of the 16-page aligned
    /// window around `vpn` (fault_around_bytes 64K), inside the VMA, its
    /// PTE table and the file, whose PTEs are empty (`filemap_map_pages`;
    /// young, read-only, no fault counted).
    fn do_fault_around(&mut self, slot: MmSlot, vpn: u64, file: &FileFault) {
        let per_table = self.procs.geometry().entries() as u64;
        let table_start = vpn - vpn % per_table;
        let from = (vpn & !(FAULT_AROUND_PAGES - 1))
            .max(file.vma_start)
            .max(table_start);
        let Ok(inode) = self.vfs.inode(file.ino) else {
            return;
        };
        let file_pages = inode.size.div_ceil(PAGE_SIZE);
        let to = (from + FAULT_AROUND_PAGES)
            .min(file.vma_end)
            .min(table_start + per_table)
            .min(file.vma_start + file_pages.saturating_sub(file.pgoff));
        let Some((table, _)) = self.procs.get(slot).and_then(|p| p.mm.pgtables.walk(vpn)) else {
            return;
        };
        let mut mapped = 0u32;
        for v in from..to {
            if !self.pte(slot, v).is_none() {
                continue;
            }
            let index = file.pgoff + (v - file.vma_start);
            if let Some(pfn) = self.filemap_map_candidate(file.ino, index) {
                self.map_file_page(slot, table, v, pfn, Pte::page(pfn, false, false));
                mapped += 1;
            }
        }
        if let Ok(inode) = self.vfs.inode_mut(file.ino) {
            inode.ra.mmap_miss = inode.ra.mmap_miss.saturating_sub(mapped);
        }
    }

    /// `wp_page_copy` / the copy of `do_cow_fault`: a new anonymous page
    /// with the bytes of page-cache page `file_pfn` replaces `old` (the
    /// file page's PTE, or none) at `vpn`.
    fn cow_file_page(
        &mut self,
        slot: MmSlot,
        table: u32,
        vpn: u64,
        file_pfn: Pfn,
        vma_write: bool,
        old: Pte,
    ) -> MmResult<()> {
        self.anon_vma_prepare(slot, vpn << PAGE_SHIFT)?;
        let pfn = self.alloc_user_page()?;
        if self.procs.get(slot).is_none() {
            self.free_pages(pfn, Order(0)).ok();
            return Err(gone());
        }
        // Reclaim during the allocation may have taken the file page.
        if let Err(err) = self.folio_materialize(&[file_pfn]) {
            self.free_pages(pfn, Order(0)).ok();
            return Err(err);
        }
        let bytes = self.page_contents.get(file_pfn).map(|b| Box::new(**b));
        if let Some(bytes) = bytes {
            self.put_page_bytes(pfn, bytes);
        }
        let current = self.pte(slot, vpn);
        if current.is_page() && old.is_page() && current.pfn() == old.pfn() {
            self.set_pte_at(slot, table, vpn, Pte::NONE);
            self.page_remove_file_rmap(slot, old.pfn(), Pte::NONE);
        }
        self.set_pte_at(slot, table, vpn, Pte::page(pfn, vma_write, true));
        if let Ok(mm) = self.procs.mm_mut(slot) {
            mm.rss_anon += 1;
        }
        self.page_add_anon_rmap(pfn, slot, vpn);
        self.lru_add_anon(pfn);
        Ok(())
    }

    /// `wp_page_copy` of an anonymous page other processes of the family
    /// still map: a new page with its bytes replaces it at `vpn` (writable
    /// when the VMA is), the old page loses one mapping.
    fn wp_page_copy(
        &mut self,
        slot: MmSlot,
        table: u32,
        vpn: u64,
        old: Pfn,
        vma_write: bool,
    ) -> MmResult<()> {
        let pfn = self.alloc_user_page()?;
        if self.procs.get(slot).is_none() {
            self.free_pages(pfn, Order(0)).ok();
            return Err(gone());
        }
        // Reclaim during the allocation may have swapped the old page out
        // (then the fault finds a swap entry next time): check (`pte_same`).
        let current = self.pte_at(slot, table, vpn);
        if !current.is_page() || current.pfn() != old {
            self.free_pages(pfn, Order(0)).ok();
            return Ok(());
        }
        let bytes = self.page_contents.get(old).map(|b| Box::new(**b));
        if let Some(bytes) = bytes {
            self.put_page_bytes(pfn, bytes);
        }
        self.set_pte_at(slot, table, vpn, Pte::page(pfn, vma_write, true));
        if self.page_remove_anon_rmap(old, slot, vpn) {
            // The others went meanwhile: the old page is nobody's (but
            // may stay in the swap cache for their swap entries).
            self.release_anon_page(old);
        }
        self.page_add_anon_rmap(pfn, slot, vpn);
        self.lru_add_anon(pfn);
        Ok(())
    }

    /// A fault past the end of the mapped file: SIGBUS (EFAULT here), the
    /// process lives on, nothing is mapped.
    fn sigbus(&mut self, slot: MmSlot, vpn: u64, index: u64) -> MmError {
        let pid = self.procs.get(slot).map_or(0, |p| p.pid.0);
        MmError::Fault(format!(
            "SIGBUS: pid {pid} touched {:#x}, file page {index}, past the end of the mapped file",
            vpn << PAGE_SHIFT
        ))
    }

    /// `do_swap_page`: map the page of a swap entry again — from the swap
    /// cache (a minor fault) or read with readahead (a major fault; see
    /// mm/swap_state.rs). A write fault that could not map the page
    /// writable (another process holds it too) copies it (`do_wp_page`).
    /// `pte` is the swap entry the fault found at `vpn`.
    #[allow(clippy::too_many_arguments)]
    fn do_swap_page(
        &mut self,
        slot: MmSlot,
        table: u32,
        vpn: u64,
        pte: Pte,
        write: bool,
        vma_write: bool,
        origin: FaultOrigin,
    ) -> MmResult<()> {
        // The task stalls on memory while the page is read (PSI).
        self.psi_memstall_enter();
        let swapin = self.swapin_fault(slot, table, vpn, pte, write, vma_write);
        self.psi_memstall_leave();
        let (major, mapped) = swapin?;
        self.account_system(cputime::MINOR_FAULT_NS);
        if major {
            self.events.pgmajfault += 1;
        }
        self.account_fault(slot, origin, major);
        // The PTE the swap-in set, else whatever is there now.
        let pte = mapped.unwrap_or_else(|| self.pte_at(slot, table, vpn));
        if write && pte.is_page() && !pte.is_write() {
            if self.wp_must_copy(pte.pfn()) {
                self.wp_page_copy(slot, table, vpn, pte.pfn(), vma_write)?;
            } else if let Some(p) = self.pte_mut(slot, vpn) {
                // The other holders went meanwhile: reuse it.
                let rw = if vma_write { PTE_RW } else { 0 };
                *p |= rw | PTE_DIRTY;
            }
        }
        Ok(())
    }

    /// Must a write to anon page `pfn`, mapped read-only, copy it? Yes
    /// when another PTE maps it, or when it is in the swap cache and
    /// `folio_free_swap` cannot take it out (another PTE holds its swap
    /// entry, or its write is in flight).
    fn wp_must_copy(&mut self, pfn: Pfn) -> bool {
        if matches!(
            self.page_alloc.frames.kind(pfn),
            PageKind::PageCache | PageKind::Shmem
        ) {
            return false;
        }
        self.page_alloc.frames.mapcount(pfn) > 1
            || (self.swap.cache.entry_of(pfn).is_some() && !self.folio_free_swap(pfn))
    }

    /// `zap_pte_range` over `[start, end)` (vpns): free the pages, release
    /// the swap slots, clear the entries. Tables stay.
    pub(crate) fn zap_range(&mut self, slot: MmSlot, start: u64, end: u64) {
        let Ok(mm) = self.procs.mm_mut(slot) else {
            return;
        };
        mm.update_hiwater_rss();
        let tables = mm.pgtables.pte_tables(start, end);
        let mut batch = [0u64; 1024];
        for (table, lo, hi, first) in tables {
            // Take the entries out, then free what they mapped.
            let Ok(mm) = self.procs.mm_mut(slot) else {
                return;
            };
            let entries = &mut mm.pgtables.entries_mut(table)[lo..hi];
            let taken = &mut batch[..entries.len()];
            taken.copy_from_slice(entries);
            entries.fill(0);
            let (mut rss, mut swap) = (0, 0);
            let frames = &self.page_alloc.frames;
            for &e in taken.iter() {
                let pte = Pte(e);
                if pte.is_page() {
                    if !matches!(
                        frames.kind(pte.pfn()),
                        PageKind::PageCache | PageKind::Shmem
                    ) {
                        rss += 1;
                    }
                } else if pte.is_swap() {
                    swap += 1;
                }
            }
            mm.rss_anon -= rss;
            mm.swap_ents -= swap;
            let check_bytes = !self.page_contents.is_empty();
            for (i, &e) in taken.iter().enumerate() {
                let pte = Pte(e);
                let vpn = first + i as u64;
                if pte.is_page() {
                    let pfn = pte.pfn();
                    if self.page_alloc.frames.kind(pfn) == PageKind::PageCache {
                        // A file page stays cached; only the mapping goes.
                        self.page_remove_file_rmap(slot, pfn, pte);
                        continue;
                    }
                    if self.page_alloc.frames.kind(pfn) == PageKind::Shmem {
                        // A shmem page stays in its object's index.
                        self.page_remove_shmem_rmap(slot, pfn, pte);
                        continue;
                    }
                    if !self.page_remove_anon_rmap(pfn, slot, vpn) {
                        // Still mapped by another process of the family.
                        continue;
                    }
                    if self.swap.cache.entry_of(pfn).is_some() {
                        // It may stay cached for others' swap entries.
                        self.release_anon_page(pfn);
                        continue;
                    }
                    self.lru_del(pfn);
                    if check_bytes {
                        self.drop_page_bytes(pfn);
                    }
                    if let Err(err) = self.free_pages(pfn, Order(0)) {
                        self.printk(format!("BUG: Bad page state: {err}"));
                    }
                } else if pte.is_swap() {
                    self.swap.free_slot(pte.swp_entry());
                    self.swap_owner_handover(pte.swp_entry(), slot, vpn);
                    self.free_swap_and_cache(pte.swp_entry());
                }
            }
        }
    }

    /// `change_protection` over `[start, end)`: the RW bit of every page of
    /// its own follows `writable` (exclusive anon pages become writable at
    /// once, like `can_change_pte_writable`); the zero page stays read-only.
    pub(crate) fn change_protection(&mut self, slot: MmSlot, start: u64, end: u64, writable: bool) {
        let Ok(mm) = self.procs.mm_mut(slot) else {
            return;
        };
        let frames = &self.page_alloc.frames;
        let swap = &self.swap;
        for (table, lo, hi, _) in mm.pgtables.pte_tables(start, end) {
            for entry in &mut mm.pgtables.entries_mut(table)[lo..hi] {
                if Pte(*entry).is_page() {
                    // A page-cache page stays read-only: the next write
                    // copies it (private) or notifies (shared); so does an
                    // anon page shared since fork (copy-on-write), or one
                    // whose swap copy another process's PTE still holds.
                    let pfn = Pte(*entry).pfn();
                    let swap_shared = swap
                        .cache
                        .entry_of(pfn)
                        .is_some_and(|e| swap.swap_count(e) > 0);
                    if writable && frames.kind(pfn) == PageKind::Shmem {
                        // A shared mapping's page: writable wherever the
                        // VMA is (shmem wants no write notification).
                        *entry |= PTE_RW;
                    } else if writable
                        && frames.kind(pfn) != PageKind::PageCache
                        && frames.mapcount(pfn) <= 1
                        && !swap_shared
                    {
                        *entry |= PTE_RW;
                    } else {
                        *entry &= !PTE_RW;
                    }
                }
            }
        }
    }

    /// smaps' page walk over `[start, end)` (vpns) of `slot`.
    pub fn range_stats(&self, slot: MmSlot, start: u64, end: u64) -> RangeStats {
        let mut stats = RangeStats::default();
        let Some(process) = self.procs.get(slot) else {
            return stats;
        };
        let frames = &self.page_alloc.frames;
        let pt = &process.mm.pgtables;
        pt.for_each_pte_slice(start, end, &mut |table, lo, hi, _| {
            for &entry in &pt.entries(table)[lo..hi] {
                if entry == 0 {
                    continue;
                }
                let pte = Pte(entry);
                if pte.is_page() {
                    stats.resident += 1;
                    let pfn = pte.pfn();
                    let dirty =
                        pte.is_dirty() || frames.has_flag(pfn, super::page_alloc::FLAG_DIRTY);
                    // smaps_account: a young PTE or PG_referenced.
                    if pte.is_young() || frames.has_flag(pfn, FLAG_REFERENCED) {
                        stats.referenced += 1;
                    }
                    let kind = frames.kind(pfn);
                    let mapcount = u64::from(frames.mapcount(pfn).max(1));
                    let pss = (PAGE_SIZE << PSS_SHIFT) / mapcount;
                    stats.pss += pss;
                    if kind == PageKind::PageCache {
                        stats.pss_file += pss;
                    } else if kind == PageKind::Shmem {
                        // smaps_page_accumulate: swap-backed, not anon.
                        stats.pss_shmem += pss;
                    } else {
                        stats.anon += 1;
                        stats.pss_anon += pss;
                    }
                    if dirty {
                        stats.dirty += 1;
                        stats.pss_dirty += pss;
                    }
                    match (mapcount > 1, dirty) {
                        (true, true) => stats.shared_dirty += 1,
                        (true, false) => stats.shared_clean += 1,
                        (false, true) => stats.private_dirty += 1,
                        (false, false) => stats.private_clean += 1,
                    }
                } else if pte.is_swap() {
                    stats.swap += 1;
                    // swp_swapcount: an entry fork duplicated counts half.
                    let count = self.swap.swap_count(pte.swp_entry()).max(1);
                    stats.swap_pss += (PAGE_SIZE << PSS_SHIFT) / count;
                }
            }
        });
        stats
    }

    /// `/proc/PID/pagemap` (fs/proc/task_mmu.c `pagemap_read`): one
    /// little-endian u64 per virtual page, at offset vpn × 8. Present pages:
    /// bit 63, bit 61 for page-cache pages, bit 56 when mapped once (not an
    /// anon page shared since fork, not the zero page), the pfn in bits
    /// 0..54 (the file is root-only, so PFNs show).
    /// Swapped pages: bit 62, type in bits 0..4, offset in bits 5..54.
    /// Holes and untouched pages read 0. EINVAL unless offset and length
    /// are multiples of 8; reading past TASK_SIZE is end of file.
    pub fn read_pagemap(
        &self,
        pid: super::types::Pid,
        offset: u64,
        len: usize,
    ) -> MmResult<Vec<u8>> {
        const PM_PRESENT: u64 = 1 << 63;
        const PM_SWAP: u64 = 1 << 62;
        const PM_MMAP_EXCLUSIVE: u64 = 1 << 56;
        // A page-cache page (or shared anonymous memory): not PageAnon.
        const PM_FILE: u64 = 1 << 61;
        const PM_PFRAME_MASK: u64 = (1 << 55) - 1;
        let slot = self.procs.slot_of(pid)?;
        if !offset.is_multiple_of(8) || !(len as u64).is_multiple_of(8) {
            return Err(MmError::Invalid(format!(
                "pagemap reads are whole 8-byte entries: offset {offset}, length {len}"
            )));
        }
        let mm = self.procs.mm(slot)?;
        let end_vpn = mm.layout.task_size >> PAGE_SHIFT;
        let first = (offset / 8).min(end_vpn);
        let last = first.saturating_add(len as u64 / 8).min(end_vpn);
        let mut out = Vec::with_capacity(((last - first) * 8) as usize);
        for vpn in first..last {
            let pte = mm.pgtables.pte(vpn);
            let entry = if pte.is_page() {
                let pfn = pte.pfn();
                let frames = &self.page_alloc.frames;
                if frames.kind(pfn) == PageKind::PageCache {
                    let once = if frames.mapcount(pfn) == 1 {
                        PM_MMAP_EXCLUSIVE
                    } else {
                        0
                    };
                    PM_PRESENT | PM_FILE | once | (pfn.0 & PM_PFRAME_MASK)
                } else if frames.mapcount(pfn) == 1 {
                    PM_PRESENT | PM_MMAP_EXCLUSIVE | (pfn.0 & PM_PFRAME_MASK)
                } else {
                    PM_PRESENT | (pfn.0 & PM_PFRAME_MASK)
                }
            } else if pte.is_zero_page() {
                PM_PRESENT | (pte.pfn().0 & PM_PFRAME_MASK)
            } else if pte.is_swap() {
                let (swap_type, swap_offset) = pte.swap_entry();
                PM_SWAP | ((swap_type as u64 | (swap_offset << 5)) & PM_PFRAME_MASK)
            } else {
                0
            };
            out.extend_from_slice(&entry.to_le_bytes());
        }
        Ok(out)
    }

    /// `/proc/PID/mem` read: bytes at `addr`, faulting pages in like
    /// `access_remote_vm` (a never-touched page maps the zero page). Stops
    /// at the first address without a mapping: EIO if that is the first.
    pub fn read_mem(&mut self, pid: super::types::Pid, addr: u64, len: usize) -> MmResult<Vec<u8>> {
        let slot = self.procs.slot_of(pid)?;
        let mut out = Vec::with_capacity(len.min(1 << 20));
        let mut at = addr;
        while out.len() < len {
            let Some(pfn) = self.gup_page(slot, at, false) else {
                break;
            };
            let offset = (at % PAGE_SIZE) as usize;
            let n = (PAGE_SIZE as usize - offset).min(len - out.len());
            if let Some(pfn) = pfn {
                self.folio_materialize(&[pfn])?;
            }
            match pfn.and_then(|pfn| self.page_contents.get(pfn)) {
                Some(bytes) => out.extend_from_slice(&bytes[offset..offset + n]),
                None => out.resize(out.len() + n, 0),
            }
            at += n as u64;
        }
        if out.is_empty() && len > 0 {
            return Err(MmError::Io(format!(
                "mem: no mapping at {addr:#x} in process {pid}"
            )));
        }
        Ok(out)
    }

    /// `/proc/PID/mem` write: faults pages in for writing (a private copy
    /// even in a read-only mapping, as ptrace does) and stores the bytes.
    /// Stops at the first address without a mapping: EIO if that is the
    /// first. Returns the bytes written.
    pub fn write_mem(&mut self, pid: super::types::Pid, addr: u64, data: &[u8]) -> MmResult<usize> {
        let slot = self.procs.slot_of(pid)?;
        let mut done = 0;
        let mut at = addr;
        while done < data.len() {
            let Some(Some(pfn)) = self.gup_page(slot, at, true) else {
                break;
            };
            let offset = (at % PAGE_SIZE) as usize;
            let n = (PAGE_SIZE as usize - offset).min(data.len() - done);
            let chunk = &data[done..done + n];
            self.folio_materialize(&[pfn])?;
            if self.page_contents.get(pfn).is_some() || chunk.iter().any(|&b| b != 0) {
                self.page_contents.get_or_zero(pfn)[offset..offset + n].copy_from_slice(chunk);
            }
            done += n;
            at += n as u64;
        }
        if done == 0 && !data.is_empty() {
            return Err(MmError::Io(format!(
                "mem: no mapping at {addr:#x} in process {pid}"
            )));
        }
        Ok(done)
    }

    /// `get_user_pages` of one page with FOLL_FORCE: fault it in and return
    /// its frame (Some(None) for the zero page). None when no VMA covers
    /// `addr` or the fault failed.
    fn gup_page(&mut self, slot: MmSlot, addr: u64, write: bool) -> Option<Option<Pfn>> {
        let vma_write = self.procs.get(slot)?.mm.vma_lookup(addr)?.flags.is_write();
        if write {
            self.anon_vma_prepare(slot, addr).ok()?;
        }
        let vpn = addr >> PAGE_SHIFT;
        self.fault_range(slot, vpn, vpn + 1, write, vma_write, FaultOrigin::Remote)
            .ok()?;
        let pte = self.pte(slot, vpn);
        if pte.is_page() {
            Some(Some(pte.pfn()))
        } else if pte.is_zero_page() {
            Some(None)
        } else {
            None
        }
    }
}

/// The error when a process vanished under an operation (OOM-killed).
fn gone() -> MmError {
    // Only the OOM killer ends a process in the middle of a fault; the
    // command fails with ENOMEM as Linux's faulting task would get SIGKILL.
    MmError::NoMemory("out of memory: the OOM killer killed this process (see dmesg)".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mm::process::testing::*;
    use crate::mm::types::Pid;

    fn rss(k: &Kernel, pid: Pid) -> u64 {
        mm(k, pid).rss_anon
    }

    fn minflt(k: &Kernel, pid: Pid) -> u64 {
        k.procs.by_pid(pid).unwrap().min_flt
    }

    #[test]
    fn a_read_maps_the_zero_page_and_a_write_copies_it() {
        let (mut k, pid) = setup();
        run(&mut k, pid, "mmap 64K name=buf").unwrap();
        let free = k.page_alloc.total_free();
        let (faults, min) = (k.events.pgfault, minflt(&k, pid));
        run(&mut k, pid, "touch buf 64K read").unwrap();
        // Sixteen faults, no page: only the page table (one PTE table;
        // the PUD and PMD of the mmap area are new too).
        assert_eq!(k.events.pgfault, faults + 16);
        assert_eq!(minflt(&k, pid), min + 16);
        assert_eq!(rss(&k, pid), 3);
        let tables = free - k.page_alloc.total_free();
        assert!(tables <= 3, "{tables}");
        let a = addr(&k, pid, "buf");
        assert!(
            k.pte(k.procs.slot_of(pid).unwrap(), a >> PAGE_SHIFT)
                .is_zero_page()
        );
        // Reading again costs nothing.
        run(&mut k, pid, "touch buf 64K read").unwrap();
        assert_eq!(k.events.pgfault, faults + 16);
        // Writing is a copy-on-write fault per page.
        run(&mut k, pid, "touch buf 64K write").unwrap();
        assert_eq!(k.events.pgfault, faults + 32);
        assert_eq!(rss(&k, pid), 3 + 16);
        assert_eq!(k.page_alloc.total_free(), free - tables - 16);
        // Writing again: the MMU only sets dirty bits.
        run(&mut k, pid, "touch buf 64K").unwrap();
        assert_eq!(k.events.pgfault, faults + 32);
    }

    #[test]
    fn the_blank_cheque() {
        // On 1 GiB, heuristic overcommit refuses a single 1 GiB request
        // (more than RAM + swap), as Linux does: use 2 GiB.
        let mut k = boot(Arch::X86_64, 2 << 30);
        let pid = spawn(&mut k, "test");
        let free = k.page_alloc.total_free();
        run(&mut k, pid, "mmap 1G name=big").unwrap();
        assert_eq!(k.page_alloc.total_free(), free);
        assert_eq!(rss(&k, pid), 3);
        run(&mut k, pid, "touch big 512M").unwrap();
        assert_eq!(rss(&k, pid), 3 + (512 << 8));
        // init's stack pages too.
        assert_eq!(k.anon_mapped_pages(), 6 + (512 << 8));
    }

    #[test]
    fn user_pages_come_from_highmem_on_i386() {
        let mut k = boot(Arch::I386, 2 << 30);
        let pid = spawn(&mut k, "x");
        run(&mut k, pid, "mmap 64M name=a").unwrap();
        run(&mut k, pid, "touch a 64M").unwrap();
        let slot = k.procs.slot_of(pid).unwrap();
        let high = k
            .page_alloc
            .zone_index(crate::mm::page_alloc::ZoneType::HighMem)
            .unwrap();
        let a = addr(&k, pid, "a") >> PAGE_SHIFT;
        for vpn in [a, a + 1000, a + (64 << 8) - 1] {
            let pfn = k.pte(slot, vpn).pfn();
            assert_eq!(k.page_alloc.zone_of(pfn), Some(high));
        }
        for pfn in k.procs.get(slot).unwrap().mm.pgtables.all_pfns() {
            assert!(k.page_alloc.zone_of(pfn).unwrap() < high);
        }
        // A 4G mapping cannot fit in 3G of user space; 2G can (once
        // overcommit allows more than RAM).
        assert_eq!(
            run(&mut k, pid, "mmap 2G").unwrap_err().errno(),
            libc::ENOMEM
        );
        k.write_sysctl("vm/overcommit_memory", "1").unwrap();
        assert_eq!(
            run(&mut k, pid, "mmap 4G").unwrap_err().errno(),
            libc::ENOMEM
        );
        assert_eq!(
            run(&mut k, pid, "mmap 3G").unwrap_err().errno(),
            libc::ENOMEM
        );
        run(&mut k, pid, "mmap 2G").unwrap();
    }

    #[test]
    fn a_bad_touch_segfaults_and_changes_nothing() {
        let (mut k, pid) = setup();
        run(&mut k, pid, "mmap 16K name=buf prot=r").unwrap();
        run(&mut k, pid, "touch buf 4K read").unwrap();
        let faults = k.events.pgfault;
        let err = run(&mut k, pid, "touch buf 8K write").unwrap_err();
        assert_eq!(err.errno(), libc::EFAULT);
        let a = addr(&k, pid, "buf");
        // The first page maps the zero page: a protection fault (error 7).
        let records: Vec<_> = k.dmesg.records().collect();
        let line = records[records.len() - 3].text.clone();
        assert_eq!(
            line,
            format!(
                "test[{}]: segfault at {a:x} ip 0000000000000000 sp 0000000000000000 error 7 likely on CPU 0 (core 0, socket 0)",
                pid.0
            )
        );
        assert_eq!(k.events.pgfault, faults);
        // Outside any mapping: error 6 for a write, 4 for a read.
        let err = run(&mut k, pid, "touch 0x1000 1").unwrap_err();
        assert_eq!(err.errno(), libc::EFAULT);
        assert!(k.dmesg.records().any(|r| {
            r.text
                .contains("segfault at 1000 ip 0000000000000000 sp 0000000000000000 error 6")
        }));
        run(&mut k, pid, "touch buf+8K 8K read").unwrap();
        assert_eq!(
            run(&mut k, pid, "touch buf+12K 8K read")
                .unwrap_err()
                .errno(),
            libc::EFAULT
        );
        assert!(k.dmesg.records().any(|r| {
            r.text.contains(&format!("segfault at {:x} ip", a + 16384))
                && r.text.contains("error 4 ")
        }));
        // The process lives on.
        run(&mut k, pid, "touch stack 4K").unwrap();
        assert_eq!(k.user_pids(), vec![pid]);
        // PROT_NONE refuses reads too.
        run(&mut k, pid, "mprotect buf 16K none").unwrap();
        assert_eq!(
            run(&mut k, pid, "touch buf 1 read").unwrap_err().errno(),
            libc::EFAULT
        );
    }

    #[test]
    fn enomem_mid_touch_keeps_the_pages_faulted() {
        let mut k = boot(Arch::X86_64, 64 << 20);
        let pid = spawn(&mut k, "big");
        // Unkillable: the OOM killer has no victim, the fault fails.
        k.write_oom_score_adj(pid, "-1000").unwrap();
        k.write_sysctl("vm/overcommit_memory", "1").unwrap();
        run(&mut k, pid, "mmap 128M name=a").unwrap();
        let err = run(&mut k, pid, "touch a 128M").unwrap_err();
        assert_eq!(err.errno(), libc::ENOMEM);
        let kept = rss(&k, pid);
        assert!(kept > 3 + 1000, "{kept}");
        assert!(kept < 3 + (128 << 8));
        // Freeing gives it all back.
        run(&mut k, pid, "munmap a 128M").unwrap();
        assert_eq!(rss(&k, pid), 3);
    }

    #[test]
    fn mem_round_trip() {
        let (mut k, pid) = setup();
        run(&mut k, pid, "mmap 16K name=buf").unwrap();
        let a = addr(&k, pid, "buf");
        let faults = k.events.pgfault;
        let min = minflt(&k, pid);
        assert_eq!(k.write_mem(pid, a + 4090, b"hello, world").unwrap(), 12);
        // Two pages faulted for the write, counted in vmstat, not in the task.
        assert_eq!(k.events.pgfault, faults + 2);
        assert_eq!(minflt(&k, pid), min);
        assert_eq!(rss(&k, pid), 3 + 2);
        assert_eq!(k.read_mem(pid, a + 4090, 12).unwrap(), b"hello, world");
        // Untouched pages read as zeros (through the zero page).
        assert_eq!(k.read_mem(pid, a + 8192, 4).unwrap(), vec![0; 4]);
        assert_eq!(rss(&k, pid), 3 + 2);
        // Reads stop at the end of the mapping; nothing mapped is EIO.
        assert_eq!(k.read_mem(pid, a + 16384 - 2, 10).unwrap().len(), 2);
        assert_eq!(k.read_mem(pid, 0x1000, 1).unwrap_err().errno(), libc::EIO);
        assert_eq!(
            k.write_mem(pid, 0x1000, b"x").unwrap_err().errno(),
            libc::EIO
        );
        assert_eq!(k.read_mem(Pid(999), a, 1).unwrap_err().errno(), libc::ESRCH);
        // A forced write into a read-only mapping gets a private page, as
        // ptrace does; the mapping stays read-only.
        run(&mut k, pid, "mprotect buf 16K r").unwrap();
        k.write_mem(pid, a + 12288, b"ro").unwrap();
        assert_eq!(k.read_mem(pid, a + 12288, 2).unwrap(), b"ro");
        assert_eq!(
            run(&mut k, pid, "touch buf+12K 1").unwrap_err().errno(),
            libc::EFAULT
        );
        // munmap drops the bytes with the pages.
        run(&mut k, pid, "munmap buf 16K").unwrap();
        assert!(k.page_contents.is_empty());
    }

    #[test]
    fn page_tables_come_and_go_with_the_mappings() {
        let (mut k, pid) = setup();
        let tables = k.page_table_pages();
        // 4 MiB at 1 GiB: a new PUD entry's PMD table and two PTE tables
        // (the PUD table of the low half is new too).
        run(&mut k, pid, "mmap 4M addr=0x40000000").unwrap();
        run(&mut k, pid, "touch 0x40000000 4M").unwrap();
        assert_eq!(k.page_table_pages(), tables + 1 + 1 + 2);
        assert_eq!(mm(&k, pid).pgtables.nr_tables(), 3 + 4);
        // Dropping the pages of whole 2M spans frees their PTE tables
        // (CONFIG_PT_RECLAIM); unmapping frees the rest.
        run(&mut k, pid, "madvise 0x40000000 4M dontneed").unwrap();
        assert_eq!(k.page_table_pages(), tables + 2);
        run(&mut k, pid, "touch 0x40000000 4M").unwrap();
        run(&mut k, pid, "madvise 0x40000000 0x3ff000 dontneed").unwrap();
        assert_eq!(k.page_table_pages(), tables + 3);
        run(&mut k, pid, "munmap 0x40000000 2M").unwrap();
        assert_eq!(k.page_table_pages(), tables + 3);
        run(&mut k, pid, "munmap 0x40200000 2M").unwrap();
        assert_eq!(k.page_table_pages(), tables);
        // A table shared with a remaining mapping stays.
        run(&mut k, pid, "mmap 8K addr=0x40000000").unwrap();
        run(&mut k, pid, "touch 0x40000000 8K").unwrap();
        run(&mut k, pid, "munmap 0x40000000 4K").unwrap();
        assert_eq!(k.page_table_pages(), tables + 3);
    }

    #[test]
    fn pagemap_bits() {
        let (mut k, pid) = setup();
        sys(&mut k, "mkswap /dev/sdc 1M").unwrap();
        sys(&mut k, "swapon /dev/sdc").unwrap();
        run(&mut k, pid, "mmap 16K name=buf").unwrap();
        run(&mut k, pid, "touch buf 4K").unwrap();
        run(&mut k, pid, "touch buf+4K 4K read").unwrap();
        run(&mut k, pid, "touch buf+12K 4K").unwrap();
        let a = addr(&k, pid, "buf");
        let slot = k.procs.slot_of(pid).unwrap();
        let pfn = k.pte(slot, (a >> PAGE_SHIFT) + 3).pfn();
        // Written and unmapped; it stays in the swap cache under writeback.
        assert!(!k.pageout(pfn));
        let bytes = k.read_pagemap(pid, (a >> PAGE_SHIFT) * 8, 32).unwrap();
        let e: Vec<u64> = bytes
            .chunks(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        let page = k.pte(slot, a >> PAGE_SHIFT).pfn().0;
        assert_eq!(e[0], (1 << 63) | (1 << 56) | page);
        assert_eq!(e[1], (1 << 63) | k.procs.zero_page.0);
        assert_eq!(e[2], 0);
        let (t, off) = k.pte(slot, (a >> PAGE_SHIFT) + 3).swap_entry();
        assert_eq!(e[3], (1 << 62) | t as u64 | (off << 5));
        assert_eq!(k.read_pagemap(pid, 4, 8).unwrap_err().errno(), libc::EINVAL);
        assert!(k.read_pagemap(pid, 1 << 40, 8).unwrap().is_empty());
    }

    #[test]
    fn madvise_pageout_and_cold() {
        let (mut k, pid) = setup();
        run(&mut k, pid, "mmap 64K name=buf").unwrap();
        run(&mut k, pid, "touch buf 64K").unwrap();
        // Without swap nothing can go.
        run(&mut k, pid, "madvise buf 64K pageout").unwrap();
        assert_eq!(rss(&k, pid), 3 + 16);
        sys(&mut k, "mkswap /dev/sdd 1M").unwrap();
        sys(&mut k, "swapon /dev/sdd").unwrap();
        run(&mut k, pid, "madvise buf 32K pageout").unwrap();
        assert_eq!(rss(&k, pid), 3 + 8);
        assert_eq!(mm(&k, pid).swap_ents, 8);
        assert_eq!(k.events.pswpout, 8);
        let status =
            crate::procfs::pid::render_pid(&k, pid, crate::procfs::pid::PidFile::Status).unwrap();
        assert!(status.contains("VmSwap:\t      32 kB\n"));
        // cold: active pages are deactivated, all lose their referenced bit.
        use crate::mm::page_alloc::{FLAG_ACTIVE, FLAG_REFERENCED};
        let slot = k.procs.slot_of(pid).unwrap();
        let last = k.pte(slot, (addr(&k, pid, "buf") >> PAGE_SHIFT) + 15).pfn();
        let zone = k.page_alloc.zone_of(last).unwrap();
        k.lru_del(last);
        k.lru_add_anon(last);
        let kk = &mut k.kernel;
        kk.lru.zones[zone]
            .inactive_anon
            .remove(&mut kk.page_alloc.frames, last);
        kk.page_alloc
            .frames
            .set_flag(last, FLAG_ACTIVE | FLAG_REFERENCED, true);
        kk.lru.zones[zone]
            .active_anon
            .push_head(&mut kk.page_alloc.frames, last);
        let deactivated = k.events.pgdeactivate;
        run(&mut k, pid, "madvise buf+32K 32K cold").unwrap();
        assert_eq!(k.lru.zones[zone].inactive_anon.head(), Some(last));
        assert!(
            !k.page_alloc
                .frames
                .has_flag(last, FLAG_ACTIVE | FLAG_REFERENCED)
        );
        // ... and its PTE its young bit.
        let vpn = (addr(&k, pid, "buf") >> PAGE_SHIFT) + 15;
        assert!(k.pte(slot, vpn).is_page() && !k.pte(slot, vpn).is_young());
        assert_eq!(k.events.pgdeactivate, deactivated + 1);
    }

    #[test]
    fn swap_out_and_back_in_through_the_pte() {
        let (mut k, pid) = setup();
        sys(&mut k, "mkswap /dev/sdb 16M").unwrap();
        sys(&mut k, "swapon /dev/sdb").unwrap();
        run(&mut k, pid, "mmap 16K name=buf").unwrap();
        let a = addr(&k, pid, "buf");
        k.write_mem(pid, a, b"kept across swap").unwrap();
        let slot = k.procs.slot_of(pid).unwrap();
        let pfn = k.pte(slot, a >> PAGE_SHIFT).pfn();
        // Written (asynchronously): unmapped, in the swap cache.
        assert!(!k.pageout(pfn));
        k.check_invariants().unwrap();
        let pte = k.pte(slot, a >> PAGE_SHIFT);
        assert!(pte.is_swap());
        assert_eq!(mm(&k, pid).swap_ents, 1);
        assert_eq!(rss(&k, pid), 3);
        assert_eq!(k.swap.cache.lookup(pte.swp_entry()), Some(pfn));
        let smaps =
            crate::procfs::pid::render_pid(&k, pid, crate::procfs::pid::PidFile::Smaps).unwrap();
        assert!(smaps.contains("Swap:                  4 kB\n"));
        // Once the write has completed, reclaim drops the clean page.
        sys(&mut k, "tick").unwrap();
        assert!(k.pageout(pfn));
        assert!(k.swap.cache.is_empty());
        k.check_invariants().unwrap();
        // A touch swaps it back in: a major fault; the slot stays.
        let (maj, pgmaj) = (k.procs.by_pid(pid).unwrap().maj_flt, k.events.pgmajfault);
        run(&mut k, pid, "touch buf 4K read").unwrap();
        assert_eq!(k.procs.by_pid(pid).unwrap().maj_flt, maj + 1);
        assert_eq!(k.events.pgmajfault, pgmaj + 1);
        assert_eq!(mm(&k, pid).swap_ents, 0);
        assert_eq!(k.read_mem(pid, a, 16).unwrap(), b"kept across swap");
        assert_eq!(k.swap.free_pages(), k.swap.total_pages() - 1);
        // Clean and still holding its slot: the next pageout writes nothing.
        let pswpout = k.events.pswpout;
        let pfn = k.pte(slot, a >> PAGE_SHIFT).pfn();
        assert!(k.pageout(pfn));
        assert_eq!(k.events.pswpout, pswpout);
        assert_eq!(k.swap.free_pages(), k.swap.total_pages() - 1);
        // Swapped pages are freed with the mapping, slots included.
        run(&mut k, pid, "munmap buf 16K").unwrap();
        assert_eq!(k.swap.free_pages(), k.swap.total_pages());
        k.check_invariants().unwrap();
    }

    #[test]
    fn pte_encodings_round_trip() {
        let p = Pte::page(Pfn(0x12345), true, true);
        assert!(p.is_present() && p.is_page() && p.is_write() && p.is_dirty());
        assert!(!p.is_swap() && !p.is_zero_page());
        assert_eq!(p.pfn(), Pfn(0x12345));
        let z = Pte::zero_page(Pfn(7));
        assert!(z.is_zero_page() && !z.is_page() && !z.is_write());
        assert_eq!(z.pfn(), Pfn(7));
        let s = Pte::from_swap(31, SWP_OFFSET_MAX);
        assert!(s.is_swap() && !s.is_present() && !s.is_none());
        assert_eq!(s.swap_entry(), (31, SWP_OFFSET_MAX));
        assert_eq!(Pte::from_swap(0, 1).swap_entry(), (0, 1));
        assert!(Pte::NONE.is_none() && !Pte::NONE.is_swap());
    }

    #[test]
    fn walk_install_and_free_tables_x86_64() {
        let mut pt = PageTables::new(Arch::X86_64, Pfn(100));
        let vpn = 0x7fff_ffff_e000u64 >> PAGE_SHIFT;
        assert!(pt.walk(vpn).is_none());
        // PUD, PMD, PTE: three installs, then nothing is missing.
        for pfn in 101..104 {
            assert!(pt.install(vpn, Pfn(pfn)));
        }
        assert!(!pt.install(vpn, Pfn(999)));
        assert_eq!(pt.nr_tables(), 3);
        let (table, index) = pt.walk(vpn).unwrap();
        assert_eq!(index, (vpn % 512) as usize);
        pt.set_entry(table, index, Pte::page(Pfn(5), true, true));
        assert_eq!(pt.pte(vpn).pfn(), Pfn(5));
        // The neighbouring page shares the PTE table.
        assert_eq!(pt.walk(vpn - 1).unwrap().0, table);
        pt.set_entry(table, index, Pte::NONE);
        let freed = pt.free_unused(vpn, vpn + 1, &|_, _| false);
        assert_eq!(freed.len(), 3);
        assert_eq!(pt.nr_tables(), 0);
        assert_eq!(pt.all_pfns(), vec![Pfn(100)]);
    }

    #[test]
    fn i386_has_two_levels_of_1024() {
        let mut pt = PageTables::new(Arch::I386, Pfn(1));
        let vpn = 0xbfff_f000u64 >> PAGE_SHIFT;
        assert!(pt.install(vpn, Pfn(2)));
        assert!(!pt.install(vpn, Pfn(3)));
        let (_, index) = pt.walk(vpn).unwrap();
        assert_eq!(index, (vpn % 1024) as usize);
        assert_eq!(pt.geometry().span_pages(1), 1024);
    }

    #[test]
    fn free_unused_keeps_tables_that_still_serve_a_mapping() {
        let mut pt = PageTables::new(Arch::X86_64, Pfn(1));
        // Two pages 2 MiB apart: two PTE tables under one PMD table.
        let a = 0x4000_0000u64 >> PAGE_SHIFT;
        let b = a + 512;
        let mut next = 10;
        for vpn in [a, b] {
            while pt.install(vpn, Pfn(next)) {
                next += 1;
            }
        }
        assert_eq!(pt.nr_tables(), 4);
        // Unmap around a while a mapping still covers b's 2 MiB.
        let freed = pt.free_unused(a, a + 1, &|lo, hi| lo <= b && b < hi);
        assert_eq!(freed.len(), 1);
        assert_eq!(pt.nr_tables(), 3);
        assert!(pt.walk(a).is_none() && pt.walk(b).is_some());
    }
}
