//! Zones, watermarks and the buddy allocator (Linux: mm/page_alloc.c).
//!
//! Page frames are compact: two `u32` links and one packed `u64` per frame
//! (16 bytes), in two flat vectors indexed by pfn. The links make the buddy
//! free lists (and, for user pages, the LRU lists) intrusive doubly-linked
//! lists, so removing a buddy during a merge is O(1) and there is no heap
//! object per page. Both vectors come from zeroed allocations, so boot only
//! touches the heads of free blocks and the reserved frames.
//!
//! Choice of block (deterministic): an allocation of order k takes the head
//! of the free list of the smallest order >= k that has a block; a split
//! keeps the lower half and puts the upper half at the head of the next
//! lower list (Linux's `expand`). Freed blocks go to the head of their list
//! after merging with their buddy (`pfn ^ (1 << order)`) as far as possible
//! (`__free_one_page`). Boot fills each list in ascending pfn order, so a
//! fresh machine hands out its lowest free addresses first.

use super::error::{MmError, MmResult};
use super::trace::gfp_of;
use super::types::{
    Arch, MAX_PAGE_ORDER, MmSlot, NR_PAGE_ORDERS, Order, PAGE_SIZE, Pfn, Vpn, ZoneIdx, ix,
};

/// End of the list.
const NIL: u32 = u32::MAX;

/// Zone types, in the kernel's index order for each architecture.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ZoneType {
    /// Below 16 MiB.
    Dma,
    /// 16 MiB to 4 GiB (x86_64).
    Dma32,
    /// Directly mapped memory (above 4 GiB on x86_64, 16-896 MiB on i386).
    Normal,
    /// Above 896 MiB on i386; not permanently mapped.
    HighMem,
    /// Empty by default.
    Movable,
    /// Empty by default (x86_64, ZONE_DEVICE).
    Device,
}

impl ZoneType {
    /// Name as /proc prints it.
    pub fn name(self) -> &'static str {
        match self {
            ZoneType::Dma => "DMA",
            ZoneType::Dma32 => "DMA32",
            ZoneType::Normal => "Normal",
            ZoneType::HighMem => "HighMem",
            ZoneType::Movable => "Movable",
            ZoneType::Device => "Device",
        }
    }

    /// Suffix of per-zone vmstat counters (`pgalloc_dma32`, `pgalloc_high`).
    pub fn vmstat_suffix(self) -> &'static str {
        match self {
            ZoneType::Dma => "dma",
            ZoneType::Dma32 => "dma32",
            ZoneType::Normal => "normal",
            ZoneType::HighMem => "high",
            ZoneType::Movable => "movable",
            ZoneType::Device => "device",
        }
    }
}

/// The zone types of an architecture, in index order (MAX_NR_ZONES of them).
pub fn zone_types(arch: Arch) -> &'static [ZoneType] {
    match arch {
        Arch::X86_64 => &[
            ZoneType::Dma,
            ZoneType::Dma32,
            ZoneType::Normal,
            ZoneType::Movable,
            ZoneType::Device,
        ],
        Arch::I386 => &[
            ZoneType::Dma,
            ZoneType::Normal,
            ZoneType::HighMem,
            ZoneType::Movable,
        ],
    }
}

/// Default `vm.lowmem_reserve_ratio` per zone type (0 = no reserve).
fn lowmem_reserve_ratio(zone_type: ZoneType) -> u64 {
    match zone_type {
        ZoneType::Dma | ZoneType::Dma32 => 256,
        ZoneType::Normal => 32,
        _ => 0,
    }
}

/// Migrate types, in /proc/pagetypeinfo order.
pub const MIGRATE_TYPE_NAMES: [&str; 5] = [
    "Unmovable",
    "Movable",
    "Reclaimable",
    "HighAtomic",
    "Isolate",
];
/// Migrate type of kernel allocations.
pub const MIGRATE_UNMOVABLE: u8 = 0;
/// Migrate type of user pages.
pub const MIGRATE_MOVABLE: u8 = 1;
/// Migrate type of reclaimable kernel allocations (SLAB_RECLAIM_ACCOUNT).
pub const MIGRATE_RECLAIMABLE: u8 = 2;
/// Pageblocks reserved for high-order atomic allocations.
pub const MIGRATE_HIGHATOMIC: u8 = 3;
/// Pageblocks isolated from the allocator (memory offlining, CMA).
pub const MIGRATE_ISOLATE: u8 = 4;
/// The types the per-CPU lists hold and allocations ask for
/// (MIGRATE_PCPTYPES): Unmovable, Movable, Reclaimable.
pub const MIGRATE_PCPTYPES: usize = 3;
/// Number of migrate types shown.
pub const MIGRATE_TYPES: usize = 5;

/// Linux's `fallbacks[]` table (mm/page_alloc.c): where an allocation of
/// each type looks, in order, when its own free lists are empty.
pub const FALLBACKS: [[u8; MIGRATE_PCPTYPES - 1]; MIGRATE_PCPTYPES] = [
    [MIGRATE_RECLAIMABLE, MIGRATE_MOVABLE],
    [MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE],
    [MIGRATE_UNMOVABLE, MIGRATE_MOVABLE],
];

/// The migrate type an allocation of this kind asks for
/// (`gfp_migratetype` of the GFP flags its Linux caller passes): user,
/// shmem, page-cache and swap-cache pages are movable (__GFP_MOVABLE); page
/// tables, stacks, slab and raw `alloc_pages` unmovable. Reclaimable slab
/// caches pass their type explicitly ([`Kernel::alloc_pages_mt`]).
pub fn kind_migratetype(kind: PageKind) -> u8 {
    match kind {
        PageKind::UserAnon | PageKind::Shmem | PageKind::PageCache | PageKind::SwapCache => {
            MIGRATE_MOVABLE
        }
        _ => MIGRATE_UNMOVABLE,
    }
}

/// `migratetype_is_mergeable`: buddies of these types may merge across a
/// pageblock boundary even when their pageblocks differ.
fn migratetype_is_mergeable(mt: u8) -> bool {
    (mt as usize) < MIGRATE_PCPTYPES
}

/// One `mm_page_alloc_extfrag` event: an allocation fell back to another
/// migrate type's free list (recorded by the allocator, traced by the
/// kernel once the allocation returns).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExtfragEvent {
    /// The block handed out.
    pub pfn: Pfn,
    /// Order asked for.
    pub alloc_order: u8,
    /// Order of the free block it came from.
    pub fallback_order: u8,
    /// Migrate type asked for.
    pub alloc_mt: u8,
    /// Migrate type of the list it came from.
    pub fallback_mt: u8,
    /// The pageblock now has the allocation's type (claimed).
    pub change_ownership: bool,
}

/// What an allocated block is used for (shown by physmap, checked by tests).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum PageKind {
    /// Not a block head (free-block interior, allocated tail, or a hole).
    None = 0,
    /// Raw kernel allocation (`alloc_pages`, kmalloc_large).
    Kernel = 1,
    /// Backing a slab.
    Slab = 2,
    /// A page-table page.
    PageTable = 3,
    /// A task's kernel stack.
    KernelStack = 4,
    /// A user anonymous page.
    UserAnon = 5,
    /// The shared zero page.
    ZeroPage = 6,
    /// Kernel image.
    KernelImage = 7,
    /// The struct-page array.
    Memmap = 8,
    /// Firmware / the first MiB.
    Firmware = 9,
    /// A page held only by the swap cache.
    SwapCache = 10,
    /// A page of the page cache (a file's data).
    PageCache = 11,
    /// A page of a shmem object's page index (shared anonymous memory:
    /// swap-backed, on the anon LRU lists; see mm/shmem.rs).
    Shmem = 12,
}

impl PageKind {
    fn from_bits(bits: u64) -> PageKind {
        match bits {
            1 => PageKind::Kernel,
            2 => PageKind::Slab,
            3 => PageKind::PageTable,
            4 => PageKind::KernelStack,
            5 => PageKind::UserAnon,
            6 => PageKind::ZeroPage,
            7 => PageKind::KernelImage,
            8 => PageKind::Memmap,
            9 => PageKind::Firmware,
            10 => PageKind::SwapCache,
            11 => PageKind::PageCache,
            12 => PageKind::Shmem,
            _ => PageKind::None,
        }
    }
}

/// State of a frame as seen from the buddy allocator.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum FrameState {
    /// Interior of a block (free or allocated) or a hole.
    Interior,
    /// Head of a free block on a buddy list.
    Free,
    /// Head of an allocated block.
    Allocated,
    /// Reserved at boot, never managed by the buddy allocator.
    Reserved,
}

// Packed frame word layout.
const STATE_SHIFT: u32 = 0;
const STATE_MASK: u64 = 0b11;
const ORDER_SHIFT: u32 = 2;
const ORDER_MASK: u64 = 0xf;
const KIND_SHIFT: u32 = 6;
const KIND_MASK: u64 = 0xf;
/// Frame flag: on the active LRU list.
pub const FLAG_ACTIVE: u64 = 1 << 10;
/// Frame flag: referenced since the last scan.
pub const FLAG_REFERENCED: u64 = 1 << 11;
/// Frame flag: dirty (differs from its swap copy).
pub const FLAG_DIRTY: u64 = 1 << 12;
/// Frame flag: on an LRU list.
pub const FLAG_LRU: u64 = 1 << 13;
const OWNER_SHIFT: u32 = 14;
/// Bits for the owner's mm slot (reverse map).
pub const OWNER_BITS: u32 = 15;
const OWNER_MASK: u64 = (1 << OWNER_BITS) - 1;
const VPN_SHIFT: u32 = OWNER_SHIFT + OWNER_BITS;
const VPN_MASK: u64 = (1 << (64 - VPN_SHIFT)) - 1;

/// `n` zeroed frame words in one zeroed allocation: untouched frames cost
/// no host memory until written (`vec!` only knows that for plain zeroes).
fn zeroed_words(n: usize) -> Vec<FrameWord> {
    let mut words: Vec<[u64; 2]> = vec![[0u64; 2]; n];
    let (ptr, len, cap) = (words.as_mut_ptr(), words.len(), words.capacity());
    std::mem::forget(words);
    // SAFETY: FrameWord is repr(C) of a [u32; 2] and a u64: 16 bytes,
    // aligned to 8, as [u64; 2]; all-zero bytes are a valid FrameWord; the
    // allocation is handed over whole (same layout, length and capacity).
    unsafe { Vec::from_raw_parts(ptr.cast::<FrameWord>(), len, cap) }
}

/// The page-frame array: 16 bytes a frame, indexed by pfn, plus a map
/// count touched only for pages that processes map from the page cache.
pub struct Frames {
    /// One 16-byte word a frame: its list links and packed state, side by
    /// side so that boot, which writes both for the head of every free
    /// block, touches one host page per 256 frames instead of one in each
    /// of two arrays (half the host page faults and 4 B of host memory per
    /// simulated page instead of 8).
    words: Vec<FrameWord>,
    /// `_mapcount`: PTEs mapping a page-cache page (an anonymous page has
    /// exactly one PTE, its reverse map, and keeps 0 here).
    mapcount: Vec<u32>,
    /// PG_workingset, one bit a frame: the packed word has no bit left,
    /// and only page-cache frames use it (set when reclaim deactivates
    /// them or a refault restores them, read when they are evicted).
    workingset: Vec<u64>,
}

/// The frame word: `[prev, next]` list links (buddy free list or LRU
/// list), and the packed state, order, kind, flags and reverse map.
#[derive(Clone, Copy, Default)]
#[repr(C)]
struct FrameWord {
    links: [u32; 2],
    info: u64,
}

impl Frames {
    fn new(count: u64) -> Frames {
        // vec! of zeroes is a zeroed allocation: untouched frames cost no
        // host memory until written.
        Frames {
            words: zeroed_words(ix(count)),
            mapcount: vec![0u32; ix(count)],
            workingset: vec![0u64; ix(count.div_ceil(64))],
        }
    }

    /// `folio_mapcount`: PTEs mapping the page-cache page `pfn`.
    pub fn mapcount(&self, pfn: Pfn) -> u32 {
        self.mapcount[pfn.index()]
    }

    /// `folio_add_file_rmap_pte`: one more PTE maps `pfn`. True when it is
    /// the first (the page becomes NR_FILE_MAPPED).
    pub fn add_map(&mut self, pfn: Pfn) -> bool {
        let count = &mut self.mapcount[pfn.index()];
        *count += 1;
        *count == 1
    }

    /// `folio_remove_rmap_pte`: one PTE less. True when it was the last.
    pub fn remove_map(&mut self, pfn: Pfn) -> bool {
        let count = &mut self.mapcount[pfn.index()];
        *count = count.saturating_sub(1);
        *count == 0
    }

    /// `folio_migrate_flags` and the mapcount's move: `new` (an order-0
    /// frame taken from the free lists) becomes what `old` was — kind,
    /// flags, reverse map, map count, PG_workingset — and `old` is left an
    /// allocated order-0 frame of the same kind with no flags and no
    /// mappings, ready to be freed.
    pub fn migrate_frame(&mut self, old: Pfn, new: Pfn) {
        let word = self.words[old.index()].info;
        self.words[new.index()].info = word;
        self.mapcount[new.index()] = self.mapcount[old.index()];
        self.mapcount[old.index()] = 0;
        let ws = self.is_workingset(old);
        self.set_workingset(new, ws);
        self.set_workingset(old, false);
        let kind = self.kind(old);
        self.set_head(old, FrameState::Allocated, Order(0), kind);
    }

    /// Number of frames.
    pub fn len(&self) -> u64 {
        self.words.len() as u64
    }

    /// True when there are no frames.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// The raw packed word (for the renderers and the checker).
    pub fn word(&self, pfn: Pfn) -> u64 {
        self.words[pfn.index()].info
    }

    /// Buddy state of a frame.
    pub fn state(&self, pfn: Pfn) -> FrameState {
        match (self.words[pfn.index()].info >> STATE_SHIFT) & STATE_MASK {
            1 => FrameState::Free,
            2 => FrameState::Allocated,
            3 => FrameState::Reserved,
            _ => FrameState::Interior,
        }
    }

    /// Order of a block head.
    pub fn order(&self, pfn: Pfn) -> Order {
        Order(((self.words[pfn.index()].info >> ORDER_SHIFT) & ORDER_MASK) as u8)
    }

    /// What an allocated block head is used for.
    pub fn kind(&self, pfn: Pfn) -> PageKind {
        PageKind::from_bits((self.words[pfn.index()].info >> KIND_SHIFT) & KIND_MASK)
    }

    fn set_head(&mut self, pfn: Pfn, state: FrameState, order: Order, kind: PageKind) {
        let state_bits = match state {
            FrameState::Interior => 0,
            FrameState::Free => 1,
            FrameState::Allocated => 2,
            FrameState::Reserved => 3,
        };
        self.words[pfn.index()].info = (state_bits << STATE_SHIFT)
            | ((order.0 as u64) << ORDER_SHIFT)
            | ((kind as u64) << KIND_SHIFT);
    }

    fn clear(&mut self, pfn: Pfn) {
        self.words[pfn.index()].info = 0;
    }

    /// Change what an allocated head is used for (keeps state and order).
    pub fn set_kind(&mut self, pfn: Pfn, kind: PageKind) {
        let word = &mut self.words[pfn.index()].info;
        *word = (*word & !(KIND_MASK << KIND_SHIFT)) | ((kind as u64) << KIND_SHIFT);
    }

    /// Test frame flags.
    pub fn has_flag(&self, pfn: Pfn, flag: u64) -> bool {
        self.words[pfn.index()].info & flag != 0
    }

    /// Set or clear frame flags.
    pub fn set_flag(&mut self, pfn: Pfn, flag: u64, on: bool) {
        let word = &mut self.words[pfn.index()].info;
        if on {
            *word |= flag;
        } else {
            *word &= !flag;
        }
    }

    /// PG_workingset of a frame.
    pub fn is_workingset(&self, pfn: Pfn) -> bool {
        self.workingset[ix(pfn.0 / 64)] & (1 << (pfn.0 % 64)) != 0
    }

    /// Set or clear PG_workingset.
    pub fn set_workingset(&mut self, pfn: Pfn, on: bool) {
        let word = &mut self.workingset[ix(pfn.0 / 64)];
        if on {
            *word |= 1 << (pfn.0 % 64);
        } else {
            *word &= !(1 << (pfn.0 % 64));
        }
    }

    /// Record the reverse map of a user page: owner mm slot and virtual page.
    pub fn set_rmap(&mut self, pfn: Pfn, mm_slot: MmSlot, vpn: Vpn) {
        let vpn = vpn.0;
        let word = &mut self.words[pfn.index()].info;
        *word &= (1u64 << OWNER_SHIFT) - 1;
        *word |=
            ((u64::from(mm_slot.0) & OWNER_MASK) << OWNER_SHIFT) | ((vpn & VPN_MASK) << VPN_SHIFT);
    }

    /// The reverse map of a user page: (mm slot, virtual page number).
    pub fn rmap(&self, pfn: Pfn) -> (MmSlot, Vpn) {
        let word = self.words[pfn.index()].info;
        (
            MmSlot(((word >> OWNER_SHIFT) & OWNER_MASK) as u32),
            Vpn((word >> VPN_SHIFT) & VPN_MASK),
        )
    }

    /// Previous link.
    pub fn prev(&self, pfn: Pfn) -> Option<Pfn> {
        let p = self.words[pfn.index()].links[0];
        (p != NIL).then_some(Pfn(p as u64))
    }

    /// Next link.
    pub fn next(&self, pfn: Pfn) -> Option<Pfn> {
        let n = self.words[pfn.index()].links[1];
        (n != NIL).then_some(Pfn(n as u64))
    }

    fn set_links(&mut self, pfn: Pfn, prev: u32, next: u32) {
        self.words[pfn.index()].links = [prev, next];
    }
}

/// An intrusive doubly-linked list of frames (buddy free list or LRU).
#[derive(Clone, Copy, Debug)]
pub struct FrameList {
    head: u32,
    tail: u32,
    len: u64,
}

impl Default for FrameList {
    fn default() -> Self {
        FrameList {
            head: NIL,
            tail: NIL,
            len: 0,
        }
    }
}

impl FrameList {
    /// Members.
    pub fn len(&self) -> u64 {
        self.len
    }
    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// First member.
    pub fn head(&self) -> Option<Pfn> {
        (self.head != NIL).then_some(Pfn(self.head as u64))
    }
    /// Last member.
    pub fn tail(&self) -> Option<Pfn> {
        (self.tail != NIL).then_some(Pfn(self.tail as u64))
    }

    /// Insert at the head.
    pub fn push_head(&mut self, frames: &mut Frames, pfn: Pfn) {
        let index = pfn.0 as u32;
        frames.set_links(pfn, NIL, self.head);
        if self.head != NIL {
            frames.words[ix(self.head)].links[0] = index;
        } else {
            self.tail = index;
        }
        self.head = index;
        self.len += 1;
    }

    /// Insert at the tail.
    pub fn push_tail(&mut self, frames: &mut Frames, pfn: Pfn) {
        let index = pfn.0 as u32;
        frames.set_links(pfn, self.tail, NIL);
        if self.tail != NIL {
            frames.words[ix(self.tail)].links[1] = index;
        } else {
            self.head = index;
        }
        self.tail = index;
        self.len += 1;
    }

    /// Put `new` where the member `old` is (`folio_migrate_flags` keeps
    /// a migrated page's LRU position): `old` leaves the list.
    pub fn replace(&mut self, frames: &mut Frames, old: Pfn, new: Pfn) {
        let [prev, next] = frames.words[old.index()].links;
        let index = new.0 as u32;
        frames.set_links(new, prev, next);
        if prev != NIL {
            frames.words[ix(prev)].links[1] = index;
        } else {
            self.head = index;
        }
        if next != NIL {
            frames.words[ix(next)].links[0] = index;
        } else {
            self.tail = index;
        }
        frames.set_links(old, NIL, NIL);
    }

    /// Unlink a member.
    pub fn remove(&mut self, frames: &mut Frames, pfn: Pfn) {
        let [prev, next] = frames.words[pfn.index()].links;
        if prev != NIL {
            frames.words[ix(prev)].links[1] = next;
        } else {
            self.head = next;
        }
        if next != NIL {
            frames.words[ix(next)].links[0] = prev;
        } else {
            self.tail = prev;
        }
        frames.set_links(pfn, NIL, NIL);
        self.len -= 1;
    }
}

/// One order's free blocks in a zone: a list per migrate type, as Linux's
/// `free_area.free_list[MIGRATE_TYPES]`. A free block is always on the list
/// of the type of the pageblock holding its head.
#[derive(Clone, Debug, Default)]
pub struct FreeArea {
    /// The blocks, by migrate type.
    pub lists: [FrameList; MIGRATE_TYPES],
    /// Σ lengths (`nr_free`).
    nr_free: u64,
}

impl FreeArea {
    /// Number of free blocks (buddyinfo).
    #[inline]
    pub fn nr_free(&self) -> u64 {
        self.nr_free
    }
    /// Make `nr_free` read `n` without touching the lists (renderer
    /// tests that feed a real kernel's counts; breaks the invariants).
    #[doc(hidden)]
    pub fn set_nr_free_for_test(&mut self, n: u64) {
        self.nr_free = n;
    }

    /// Free blocks of one migrate type (pagetypeinfo).
    pub fn nr_free_by_type(&self, mt: usize) -> u64 {
        self.lists[mt].len()
    }
    /// `free_area_empty`.
    #[inline]
    pub fn is_empty(&self, mt: u8) -> bool {
        self.lists[mt as usize].is_empty()
    }
}

/// Zone watermarks, in pages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Watermarks {
    /// WMARK_MIN.
    pub min: u64,
    /// WMARK_LOW: kswapd wakes below it.
    pub low: u64,
    /// WMARK_HIGH: kswapd sleeps above it.
    pub high: u64,
    /// WMARK_PROMO.
    pub promo: u64,
}

/// Which watermark an allocation is checked against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WatermarkLevel {
    /// The fast path.
    Low,
    /// The slow path after waking kswapd.
    Min,
}

/// A memory zone.
#[derive(Clone, Debug)]
pub struct Zone {
    /// Which zone.
    pub zone_type: ZoneType,
    /// First pfn of the span.
    pub start_pfn: u64,
    /// end - start, holes included.
    pub spanned: u64,
    /// Physical pages in the span.
    pub present: u64,
    /// Pages the buddy allocator owns (present minus boot reservations).
    pub managed: u64,
    /// Free pages (NR_FREE_PAGES).
    pub free_pages: u64,
    /// min/low/high/promo.
    pub watermark: Watermarks,
    /// Protection against requests whose highest zone is the index.
    pub lowmem_reserve: Vec<u64>,
    /// Buddy free lists, orders 0..=10.
    pub free_area: [FreeArea; NR_PAGE_ORDERS],
    /// Present pfn ranges `[start, end)` inside the span.
    pub present_ranges: Vec<(u64, u64)>,
    /// Pages allocated from this zone (vmstat pgalloc_<zone>).
    pub pgalloc: u64,
    /// Direct-reclaim entries for requests whose highest zone is this one.
    pub allocstall: u64,
    /// Allocations this zone served (zoneinfo/vmstat numa_hit: one node, so
    /// every allocation is a local hit). Counted per request, not per page.
    pub numa_hit: u64,
    /// Pages in pageblocks reserved as HighAtomic (`nr_reserved_highatomic`).
    pub nr_reserved_highatomic: u64,
}

impl Zone {
    /// True when the zone has physical pages.
    pub fn is_populated(&self) -> bool {
        self.present > 0
    }
    /// True when `pfn` lies in the span.
    pub fn contains(&self, pfn: Pfn) -> bool {
        pfn.0 >= self.start_pfn && pfn.0 < self.start_pfn + self.spanned
    }
    /// One past the last pfn of the span.
    pub fn end_pfn(&self) -> u64 {
        self.start_pfn + self.spanned
    }
    /// Free pages in blocks of at least one pageblock (nr_free_pages_blocks).
    pub fn free_pages_in_blocks(&self, pageblock_order: u8) -> u64 {
        (pageblock_order as usize..NR_PAGE_ORDERS)
            .map(|o| self.free_area[o].nr_free() << o)
            .sum()
    }
}

/// One reservation made at boot (memblock_reserve).
#[derive(Clone, Debug)]
pub struct BootReservation {
    /// First pfn.
    pub start: u64,
    /// Pages.
    pub pages: u64,
    /// Used for.
    pub kind: PageKind,
}

/// Sizes of the kernel image sections in KiB, as the boot "Memory:" line prints them.
#[derive(Clone, Copy, Debug)]
pub struct KernelImage {
    /// .text
    pub code_kb: u64,
    /// .data
    pub rwdata_kb: u64,
    /// .rodata
    pub rodata_kb: u64,
    /// .init
    pub init_kb: u64,
    /// .bss
    pub bss_kb: u64,
}

impl KernelImage {
    /// The image of the simulated kernel for an architecture.
    pub fn for_arch(arch: Arch) -> KernelImage {
        match arch {
            Arch::X86_64 => KernelImage {
                code_kb: 14336,
                rwdata_kb: 2816,
                rodata_kb: 5120,
                init_kb: 2816,
                bss_kb: 3584,
            },
            Arch::I386 => KernelImage {
                code_kb: 8192,
                rwdata_kb: 1024,
                rodata_kb: 2048,
                init_kb: 1024,
                bss_kb: 1024,
            },
        }
    }
    /// Total KiB.
    pub fn total_kb(&self) -> u64 {
        self.code_kb + self.rwdata_kb + self.rodata_kb + self.init_kb + self.bss_kb
    }
}

/// Physical address where the kernel is loaded (CONFIG_PHYSICAL_START).
pub const KERNEL_LOAD_PFN: u64 = 0x1000000 / PAGE_SIZE;
/// First pfn of x86_64 ZONE_DMA32 (16 MiB).
pub const DMA_END_PFN: u64 = 4096;
/// 4 GiB in pages: start of ZONE_NORMAL on x86_64.
pub const FOUR_GIB_PFN: u64 = 1 << 20;
/// 3 GiB in pages: where RAM below the PCI hole ends on x86_64.
pub const PCI_HOLE_START_PFN: u64 = 3 << 18;
/// i386 max_low_pfn: lowmem ends at 0x37ffe000 (895 MiB, `lowmem  : 0xc0000000 - 0xf7ffe000`).
pub const I386_MAX_LOW_PFN: u64 = 0x37ffe;
/// Last usable pfn below 640K plus one (the BIOS area above is a hole).
const LOW_RAM_END_PFN: u64 = 159;
/// The first MiB: reserved by Linux on x86 since 5.13.
const FIRST_MIB_PFN: u64 = 256;

/// Bytes of one struct page.
pub fn struct_page_size(arch: Arch) -> u64 {
    match arch {
        Arch::X86_64 => 64,
        Arch::I386 => 32,
    }
}

/// The physical memory of the machine: frames, zones, buddy lists.
pub struct PageAllocator {
    /// Architecture.
    pub arch: Arch,
    /// The frame array.
    pub frames: Frames,
    /// All zones of the node, in index order (empty ones included).
    pub zones: Vec<Zone>,
    /// pageblock_order: 9 on x86_64, 10 on non-PAE i386.
    pub pageblock_order: u8,
    /// Migrate type of each pageblock.
    pub pageblock_types: Vec<u8>,
    /// Boot reservations.
    pub reservations: Vec<BootReservation>,
    /// Kernel image sizes.
    pub image: KernelImage,
    /// Pages of the struct-page array (nr_memmap_boot_pages).
    pub memmap_pages: u64,
    /// RAM the machine was booted with, in bytes.
    pub ram_bytes: u64,
    /// Highest pfn + 1.
    pub max_pfn: u64,
    /// vm.min_free_kbytes.
    pub min_free_kbytes: u64,
    /// vm.watermark_scale_factor.
    pub watermark_scale_factor: u64,
    /// Pages freed (vmstat pgfree).
    pub pgfree: u64,
    /// Allocations that fell back to another migrate type's list
    /// (`mm_page_alloc_extfrag` events).
    pub extfrag_events: u64,
    /// The last fallback, for the kernel to trace after the allocation.
    pub pending_extfrag: Option<ExtfragEvent>,
}

impl PageAllocator {
    /// Lay out RAM, zones and reservations, then hand every other page to
    /// the buddy allocator.
    pub fn boot(arch: Arch, ram_bytes: u64) -> MmResult<PageAllocator> {
        let ram_pages = ram_bytes / PAGE_SIZE;
        let ranges = ram_ranges(arch, ram_pages);
        let max_pfn = ranges.last().map(|r| r.1).unwrap_or(0);
        if max_pfn > u32::MAX as u64 - 1 {
            return Err(MmError::Invalid(format!(
                "{} pages exceed the simulator's 32-bit frame links",
                ram_pages
            )));
        }
        let pageblock_order = match arch {
            Arch::X86_64 => 9,
            Arch::I386 => 10,
        };
        let frames = Frames::new(max_pfn);
        let pageblock_count = max_pfn.div_ceil(1 << pageblock_order) as usize;
        let types = zone_types(arch);
        let mut zones: Vec<Zone> = types
            .iter()
            .map(|&zone_type| Zone {
                zone_type,
                start_pfn: 0,
                spanned: 0,
                present: 0,
                managed: 0,
                free_pages: 0,
                watermark: Watermarks::default(),
                lowmem_reserve: vec![0; types.len()],
                free_area: Default::default(),
                present_ranges: Vec::new(),
                pgalloc: 0,
                allocstall: 0,
                numa_hit: 0,
                nr_reserved_highatomic: 0,
            })
            .collect();
        // Zone spans.
        let zone_limits: Vec<(ZoneType, u64, u64)> = match arch {
            Arch::X86_64 => vec![
                (ZoneType::Dma, 1, DMA_END_PFN),
                (ZoneType::Dma32, DMA_END_PFN, FOUR_GIB_PFN),
                (ZoneType::Normal, FOUR_GIB_PFN, u64::MAX),
            ],
            Arch::I386 => vec![
                (ZoneType::Dma, 1, DMA_END_PFN),
                (ZoneType::Normal, DMA_END_PFN, I386_MAX_LOW_PFN),
                (ZoneType::HighMem, I386_MAX_LOW_PFN, u64::MAX),
            ],
        };
        for (zone_type, lo, hi) in zone_limits {
            let zone = zones
                .iter_mut()
                .find(|z| z.zone_type == zone_type)
                .expect("zone type of this arch");
            let mut first = None;
            let mut last = 0;
            for &(start, end) in &ranges {
                let s = start.max(lo);
                let e = end.min(hi);
                if s < e {
                    zone.present_ranges.push((s, e));
                    zone.present += e - s;
                    first.get_or_insert(s);
                    last = e;
                }
            }
            if let Some(first) = first {
                // The span starts at the zone's boundary and runs to the end
                // of its memory, or to the next zone when that one has memory.
                zone.start_pfn = lo.max(1).min(first);
                let end = if max_pfn > hi { hi } else { last };
                zone.spanned = end - zone.start_pfn;
            }
        }
        let mut allocator = PageAllocator {
            arch,
            frames,
            zones,
            pageblock_order,
            pageblock_types: vec![MIGRATE_MOVABLE; pageblock_count],
            reservations: Vec::new(),
            image: KernelImage::for_arch(arch),
            memmap_pages: 0,
            ram_bytes,
            max_pfn,
            min_free_kbytes: 0,
            watermark_scale_factor: 10,
            pgfree: 0,
            extfrag_events: 0,
            pending_extfrag: None,
        };
        allocator.reserve_boot_memory(&ranges)?;
        allocator.free_all_boot_memory();
        allocator.min_free_kbytes = allocator.default_min_free_kbytes();
        allocator.setup_watermarks();
        Ok(allocator)
    }

    fn reserve_boot_memory(&mut self, ranges: &[(u64, u64)]) -> MmResult<()> {
        // The first MiB (BIOS, real-mode trampoline).
        for &(start, end) in ranges {
            let e = end.min(FIRST_MIB_PFN);
            if start < e {
                self.reservations.push(BootReservation {
                    start,
                    pages: e - start,
                    kind: PageKind::Firmware,
                });
            }
        }
        // The kernel image at 16 MiB.
        let image_pages = self.image.total_kb() / 4;
        self.reservations.push(BootReservation {
            start: KERNEL_LOAD_PFN,
            pages: image_pages,
            kind: PageKind::KernelImage,
        });
        // The struct-page array, allocated top-down like memblock does: from
        // the top of RAM on x86_64, from the top of lowmem on i386.
        self.memmap_pages = match self.arch {
            Arch::X86_64 => {
                // SPARSEMEM: one memmap per 128 MiB section that holds RAM.
                let section_pages = 1u64 << (27 - 12);
                let mut sections = std::collections::BTreeSet::new();
                for &(start, end) in ranges {
                    for s in (start / section_pages)..end.div_ceil(section_pages) {
                        sections.insert(s);
                    }
                }
                (sections.len() as u64 * section_pages * struct_page_size(self.arch))
                    .div_ceil(PAGE_SIZE)
            }
            Arch::I386 => (self.max_pfn * struct_page_size(self.arch)).div_ceil(PAGE_SIZE),
        };
        let ceiling = match self.arch {
            Arch::X86_64 => self.max_pfn,
            Arch::I386 => self.max_pfn.min(I386_MAX_LOW_PFN),
        };
        let mut remaining = self.memmap_pages;
        for &(start, end) in ranges.iter().rev() {
            if remaining == 0 {
                break;
            }
            let end = end.min(ceiling);
            let start = start.max(KERNEL_LOAD_PFN + image_pages);
            if start >= end {
                continue;
            }
            let take = remaining.min(end - start);
            self.reservations.push(BootReservation {
                start: end - take,
                pages: take,
                kind: PageKind::Memmap,
            });
            remaining -= take;
        }
        if remaining > 0 {
            return Err(MmError::Invalid(
                "not enough memory to hold the kernel and its struct-page array".into(),
            ));
        }
        let reservations = self.reservations.clone();
        for r in &reservations {
            for pfn in r.start..r.start + r.pages {
                self.frames
                    .set_head(Pfn(pfn), FrameState::Reserved, Order(0), r.kind);
            }
            // Pageblocks that hold kernel memory are unmovable.
            if r.kind != PageKind::Firmware {
                let first = r.start >> self.pageblock_order;
                let last = (r.start + r.pages - 1) >> self.pageblock_order;
                for block in first..=last {
                    self.pageblock_types[ix(block)] = MIGRATE_UNMOVABLE;
                }
            }
        }
        Ok(())
    }

    /// memblock_free_all: every present, unreserved page goes to the buddy
    /// allocator in maximal aligned blocks, in ascending pfn order.
    fn free_all_boot_memory(&mut self) {
        for zone_index in 0..self.zones.len() {
            let ranges = self.zones[zone_index].present_ranges.clone();
            let mut managed = 0;
            for (start, end) in ranges {
                let mut pfn = start;
                while pfn < end {
                    if self.frames.state(Pfn(pfn)) == FrameState::Reserved {
                        pfn += 1;
                        continue;
                    }
                    // Largest aligned block that fits and holds no reservation.
                    let mut order = MAX_PAGE_ORDER;
                    loop {
                        let size = 1u64 << order;
                        if pfn % size == 0
                            && pfn + size <= end
                            && !self.any_reserved(pfn, pfn + size)
                        {
                            break;
                        }
                        order -= 1;
                    }
                    let size = 1u64 << order;
                    self.frames
                        .set_head(Pfn(pfn), FrameState::Free, Order(order), PageKind::None);
                    self.add_to_free_list(zone_index, Pfn(pfn), Order(order), false);
                    managed += size;
                    pfn += size;
                }
            }
            let zone = &mut self.zones[zone_index];
            zone.managed = managed;
            zone.free_pages = managed;
        }
    }

    fn any_reserved(&self, start: u64, end: u64) -> bool {
        self.reservations
            .iter()
            .any(|r| r.start < end && start < r.start + r.pages)
    }

    /// Migrate type of the pageblock holding `pfn`.
    pub fn pageblock_type(&self, pfn: Pfn) -> u8 {
        self.pageblock_types[(pfn.0 >> self.pageblock_order) as usize]
    }

    /// Index of the zone holding `pfn`.
    pub fn zone_of(&self, pfn: Pfn) -> Option<usize> {
        self.zones
            .iter()
            .position(|z| z.is_populated() && z.contains(pfn))
    }

    /// Index of a zone type in this architecture's zone list.
    pub fn zone_index(&self, zone_type: ZoneType) -> Option<usize> {
        self.zones.iter().position(|z| z.zone_type == zone_type)
    }

    /// Σ managed pages (MemTotal).
    pub fn total_managed(&self) -> u64 {
        self.zones.iter().map(|z| z.managed).sum()
    }

    /// Σ present pages.
    pub fn total_present(&self) -> u64 {
        self.zones.iter().map(|z| z.present).sum()
    }

    /// Σ free pages (MemFree).
    pub fn total_free(&self) -> u64 {
        self.zones.iter().map(|z| z.free_pages).sum()
    }

    /// Managed pages of the zones the kernel maps permanently.
    pub fn lowmem_managed(&self) -> u64 {
        self.zones
            .iter()
            .filter(|z| !matches!(z.zone_type, ZoneType::HighMem | ZoneType::Movable))
            .map(|z| z.managed)
            .sum()
    }

    /// The kernel's default `min_free_kbytes`: `int_sqrt(lowmem_kB * 16)`
    /// clamped to [128, 262144]; on x86_64, where THP is on, khugepaged raises
    /// it to `pageblock_pages * zones * (2 + 3 * 3)`, capped at 5 % of lowmem.
    pub fn default_min_free_kbytes(&self) -> u64 {
        let lowmem_kb = self.lowmem_managed() * 4;
        let mut min = int_sqrt(lowmem_kb * 16).clamp(128, 262144);
        if self.arch == Arch::X86_64 {
            let zones = self
                .zones
                .iter()
                .filter(|z| z.is_populated() && z.zone_type <= ZoneType::Normal)
                .count() as u64;
            let pageblock = 1u64 << self.pageblock_order;
            let recommended = (pageblock * zones * 2 + pageblock * zones * 3 * 3)
                .min(self.lowmem_managed() / 20)
                * 4;
            min = min.max(recommended);
        }
        min
    }

    /// `__setup_per_zone_wmarks` and `setup_per_zone_lowmem_reserve`.
    pub fn setup_watermarks(&mut self) {
        let pages_min = self.min_free_kbytes / 4;
        let lowmem_pages = self.lowmem_managed().max(1);
        for zone in &mut self.zones {
            let tmp = pages_min * zone.managed / lowmem_pages;
            let min = if matches!(zone.zone_type, ZoneType::HighMem | ZoneType::Movable) {
                (zone.managed / 1024).clamp(32, 128)
            } else {
                tmp
            };
            let delta = (tmp / 4).max(zone.managed * self.watermark_scale_factor / 10000);
            zone.watermark = if zone.zone_type == ZoneType::Device {
                Watermarks::default()
            } else {
                Watermarks {
                    min,
                    low: min + delta,
                    high: min + 2 * delta,
                    promo: min + 3 * delta,
                }
            };
        }
        let count = self.zones.len();
        for i in 0..count {
            let ratio = lowmem_reserve_ratio(self.zones[i].zone_type);
            let mut reserve = vec![0u64; count];
            if ratio > 0 && self.zones[i].managed > 0 {
                let mut sum = 0;
                for (j, slot) in reserve.iter_mut().enumerate().skip(i + 1) {
                    sum += self.zones[j].managed;
                    *slot = sum / ratio;
                }
            }
            self.zones[i].lowmem_reserve = reserve;
        }
    }

    /// totalreserve_pages: Σ min(managed, max protection + high).
    pub fn total_reserve_pages(&self) -> u64 {
        self.zones
            .iter()
            .map(|z| {
                let max_reserve = z.lowmem_reserve.iter().copied().max().unwrap_or(0);
                (max_reserve + z.watermark.high).min(z.managed)
            })
            .sum()
    }

    /// `zone_watermark_ok`: may zone `zone_index` serve an order-`order`
    /// request whose highest usable zone is `highest`? For order > 0 a
    /// free block of at least that order must exist on a list the request
    /// may take from (`__zone_watermark_ok`: the per-CPU types; HighAtomic
    /// only for atomic requests, whose reserve is not free for others).
    pub fn watermark_ok(&self, zone_index: usize, order: Order, mark: u64, highest: usize) -> bool {
        self.watermark_ok_flags(zone_index, order, mark, highest, false)
    }

    /// [`Self::watermark_ok`] for an atomic (`ALLOC_HIGHATOMIC`) request or not.
    pub fn watermark_ok_flags(
        &self,
        zone_index: usize,
        order: Order,
        mark: u64,
        highest: usize,
        atomic: bool,
    ) -> bool {
        let zone = &self.zones[zone_index];
        let mut free = zone.free_pages as i64 - (order.pages() as i64 - 1);
        if !atomic {
            // The HighAtomic reserve's free pages are not usable.
            free -= self.highatomic_free(zone) as i64;
        }
        if free <= (mark + zone.lowmem_reserve[highest]) as i64 {
            return false;
        }
        if order.0 == 0 {
            return true;
        }
        zone.free_area[order.0 as usize..].iter().any(|area| {
            (0..MIGRATE_PCPTYPES as u8).any(|mt| !area.is_empty(mt))
                || (atomic && !area.is_empty(MIGRATE_HIGHATOMIC))
        })
    }

    /// Free pages on a zone's HighAtomic lists.
    fn highatomic_free(&self, zone: &Zone) -> u64 {
        if zone.nr_reserved_highatomic == 0 {
            return 0;
        }
        zone.free_area
            .iter()
            .enumerate()
            .map(|(o, a)| a.nr_free_by_type(MIGRATE_HIGHATOMIC as usize) << o)
            .sum()
    }

    /// The zones a request may use, highest first (the zonelist).
    pub fn zonelist(&self, highest: usize) -> impl Iterator<Item = usize> + '_ {
        (0..=highest)
            .rev()
            .filter(move |&i| self.zones[i].is_populated())
    }

    /// `get_page_from_freelist`: the first zone of the zonelist that passes
    /// its watermark gives the block. `None` when none does. The migrate
    /// type is the kind's ([`kind_migratetype`]).
    pub fn get_page_from_freelist(
        &mut self,
        order: Order,
        highest: usize,
        level: WatermarkLevel,
        kind: PageKind,
    ) -> Option<Pfn> {
        let req = AllocRequest::new(kind, kind_migratetype(kind));
        self.get_page_from_freelist_mt(order, highest, level, req)
    }

    /// `alloc_flags_nofragment`: on x86_64, a request whose preferred zone
    /// is Normal while DMA32 has memory first refuses to fragment (no
    /// fallback below pageblock order), then retries allowing it.
    fn alloc_nofragment(&self, highest: usize) -> bool {
        let Some(preferred) = self.zonelist(highest).next() else {
            return false;
        };
        self.zones[preferred].zone_type == ZoneType::Normal
            && preferred > 0
            && self.zones[preferred - 1].zone_type == ZoneType::Dma32
            && self.zones[preferred - 1].is_populated()
    }

    /// [`Self::get_page_from_freelist`] for an explicit request.
    pub fn get_page_from_freelist_mt(
        &mut self,
        order: Order,
        highest: usize,
        level: WatermarkLevel,
        req: AllocRequest,
    ) -> Option<Pfn> {
        let mut nofragment = self.alloc_nofragment(highest);
        loop {
            for zone_index in (0..=highest).rev() {
                if !self.zones[zone_index].is_populated() {
                    continue;
                }
                let wm = self.zones[zone_index].watermark;
                let mark = match level {
                    WatermarkLevel::Low => wm.low,
                    WatermarkLevel::Min => wm.min,
                };
                if !self.watermark_ok_flags(zone_index, order, mark, highest, req.atomic) {
                    continue;
                }
                if let Some(pfn) = self.rmqueue_flags(zone_index, order, req, nofragment) {
                    if req.atomic && order.0 > 0 {
                        self.reserve_highatomic_pageblock(zone_index, pfn);
                    }
                    return Some(pfn);
                }
            }
            if !nofragment {
                return None;
            }
            // `get_page_from_freelist`: "It's possible on a UMA machine to
            // get through all zones that are fragmented. If avoiding
            // fragmentation, reset and try again."
            nofragment = false;
        }
    }

    /// Take a block from one zone ignoring watermarks (`rmqueue` →
    /// `__rmqueue`), of the kind's migrate type, fragmenting if it must.
    pub fn rmqueue(&mut self, zone_index: usize, order: Order, kind: PageKind) -> Option<Pfn> {
        let req = AllocRequest::new(kind, kind_migratetype(kind));
        self.rmqueue_flags(zone_index, order, req, false)
    }

    /// `rmqueue` with its flags: the request's own lists
    /// (`__rmqueue_smallest`), then an atomic request's HighAtomic reserve,
    /// then claiming a whole pageblock of another type (`__rmqueue_claim`),
    /// then, unless `nofragment`, stealing one block (`__rmqueue_steal`).
    pub fn rmqueue_flags(
        &mut self,
        zone_index: usize,
        order: Order,
        req: AllocRequest,
        nofragment: bool,
    ) -> Option<Pfn> {
        let mt = req.mt;
        let pfn = match self.rmqueue_smallest(zone_index, order, mt) {
            Some(pfn) => pfn,
            None => self.rmqueue_fallback(zone_index, order, req, nofragment)?,
        };
        self.frames
            .set_head(pfn, FrameState::Allocated, order, req.kind);
        let zone = &mut self.zones[zone_index];
        zone.free_pages -= order.pages();
        zone.pgalloc += order.pages();
        zone.numa_hit += 1;
        Some(pfn)
    }

    /// The cold half of [`Self::rmqueue_flags`]: the request's own lists
    /// are empty at every order.
    #[cold]
    fn rmqueue_fallback(
        &mut self,
        zone_index: usize,
        order: Order,
        req: AllocRequest,
        nofragment: bool,
    ) -> Option<Pfn> {
        if req.atomic
            && let Some(pfn) = self.rmqueue_smallest(zone_index, order, MIGRATE_HIGHATOMIC)
        {
            return Some(pfn);
        }
        if (req.mt as usize) >= MIGRATE_PCPTYPES {
            return None;
        }
        if let Some(pfn) = self.rmqueue_claim(zone_index, order, req.mt, nofragment) {
            return Some(pfn);
        }
        if nofragment {
            return None;
        }
        self.rmqueue_steal(zone_index, order, req.mt)
    }

    /// `__rmqueue_smallest`: the head of the smallest non-empty list of
    /// type `mt` at order >= `order`, split down (`page_del_and_expand`).
    #[inline]
    fn rmqueue_smallest(&mut self, zone_index: usize, order: Order, mt: u8) -> Option<Pfn> {
        let current = (order.0..=MAX_PAGE_ORDER)
            .find(|&o| !self.zones[zone_index].free_area[ix(o)].is_empty(mt))?;
        let pfn = self.zones[zone_index].free_area[ix(current)].lists[mt as usize]
            .head()
            .expect("non-empty list");
        self.page_del_and_expand(zone_index, pfn, order, current, mt);
        Some(pfn)
    }

    /// `page_del_and_expand`: unlink the free block at `pfn` of order
    /// `high` from list `mt` and give back the upper halves down to `low`
    /// (`expand`: keep the lower half). Each half goes on the list of its
    /// own pageblock's type.
    #[inline]
    fn page_del_and_expand(&mut self, zone_index: usize, pfn: Pfn, low: Order, high: u8, mt: u8) {
        self.del_from_free_list_mt(zone_index, pfn, Order(high), mt);
        let mut high = high;
        while high > low.0 {
            high -= 1;
            let upper = Pfn(pfn.0 + (1u64 << high));
            self.frames
                .set_head(upper, FrameState::Free, Order(high), PageKind::None);
            self.add_to_free_list(zone_index, upper, Order(high), true);
        }
    }

    /// `find_suitable_fallback`: the first type of `FALLBACKS[mt]` with a
    /// free block at `order`; when `claimable` is asked and the
    /// order is too small to claim a pageblock for `mt` (Linux's -2:
    /// [`Fallback::TooSmall`]).
    pub fn find_suitable_fallback(
        &self,
        area: &FreeArea,
        order: u8,
        mt: u8,
        claimable: bool,
    ) -> Fallback {
        if claimable && !should_try_claim_block(order, mt, self.pageblock_order) {
            return Fallback::TooSmall;
        }
        if area.nr_free() == 0 {
            return Fallback::None;
        }
        FALLBACKS[mt as usize]
            .iter()
            .copied()
            .find(|&f| !area.is_empty(f))
            .map_or(Fallback::None, Fallback::Found)
    }

    /// `__rmqueue_claim`: from the largest order down, a block of a
    /// fallback type whose pageblock can be claimed whole for `mt`.
    fn rmqueue_claim(
        &mut self,
        zone_index: usize,
        order: Order,
        mt: u8,
        nofragment: bool,
    ) -> Option<Pfn> {
        let min_order = if order.0 < self.pageblock_order && nofragment {
            self.pageblock_order
        } else {
            order.0
        };
        for current in (min_order..=MAX_PAGE_ORDER).rev() {
            let area = &self.zones[zone_index].free_area[ix(current)];
            let fallback = match self.find_suitable_fallback(area, current, mt, true) {
                Fallback::TooSmall => break,
                Fallback::None => continue,
                Fallback::Found(f) => f,
            };
            let page = area.lists[fallback as usize].head().expect("non-empty");
            if let Some(pfn) =
                self.try_to_claim_block(zone_index, page, current, order, mt, fallback)
            {
                self.record_extfrag(pfn, order, current, mt, fallback);
                return Some(pfn);
            }
        }
        None
    }

    /// `__rmqueue_steal`: from the smallest order up, take one block of a
    /// fallback type and leave its pageblock's type as it is.
    fn rmqueue_steal(&mut self, zone_index: usize, order: Order, mt: u8) -> Option<Pfn> {
        for current in order.0..=MAX_PAGE_ORDER {
            let area = &self.zones[zone_index].free_area[ix(current)];
            let Fallback::Found(fallback) = self.find_suitable_fallback(area, current, mt, false)
            else {
                continue;
            };
            let page = area.lists[fallback as usize].head().expect("non-empty");
            self.page_del_and_expand(zone_index, page, order, current, fallback);
            self.record_extfrag(page, order, current, mt, fallback);
            return Some(page);
        }
        None
    }

    /// Count a fallback and keep it for `mm_page_alloc_extfrag`.
    fn record_extfrag(&mut self, pfn: Pfn, order: Order, current: u8, mt: u8, fallback: u8) {
        self.extfrag_events += 1;
        self.pending_extfrag = Some(ExtfragEvent {
            pfn,
            alloc_order: order.0,
            fallback_order: current,
            alloc_mt: mt,
            fallback_mt: fallback,
            change_ownership: self.pageblock_type(pfn) == mt,
        });
    }

    /// `try_to_claim_block`: take over the pageblock of the free block at
    /// `page` (order `current`, on list `block_type`) for `start_type` when
    /// the block is a pageblock or more, or when at least half the
    /// pageblock is free or already of compatible use; then allocate from
    /// the claimed lists. None leaves everything as it was.
    fn try_to_claim_block(
        &mut self,
        zone_index: usize,
        page: Pfn,
        current: u8,
        order: Order,
        start_type: u8,
        block_type: u8,
    ) -> Option<Pfn> {
        if current >= self.pageblock_order {
            self.del_from_free_list_mt(zone_index, page, Order(current), block_type);
            self.change_pageblock_range(page, current, start_type);
            // expand(): the halves are now of start_type's pageblocks.
            let mut high = current;
            while high > order.0 {
                high -= 1;
                let upper = Pfn(page.0 + (1u64 << high));
                self.frames
                    .set_head(upper, FrameState::Free, Order(high), PageKind::None);
                self.add_to_free_list(zone_index, upper, Order(high), true);
            }
            return Some(page);
        }
        let (start_pfn, free_pages, movable_pages) =
            self.prep_move_freepages_block(zone_index, page)?;
        let pageblock_pages = 1u64 << self.pageblock_order;
        let alike_pages = if start_type == MIGRATE_MOVABLE {
            movable_pages
        } else if block_type == MIGRATE_MOVABLE {
            // Unmovable or reclaimable taking a movable block: every
            // non-movable page in it is compatible.
            pageblock_pages - (free_pages + movable_pages)
        } else {
            // Unmovable vs reclaimable: their pages cannot be told apart.
            0
        };
        if free_pages + alike_pages >= 1 << (self.pageblock_order - 1) {
            self.move_freepages_block(zone_index, start_pfn, block_type, start_type);
            self.pageblock_types[ix(start_pfn >> self.pageblock_order)] = start_type;
            return self.rmqueue_smallest(zone_index, order, start_type);
        }
        None
    }

    /// `prep_move_freepages_block`: the pageblock holding `page` as
    /// (first pfn, free pages, movable pages), None when it crosses the
    /// zone's span. Movable pages are the allocated ones on an LRU list.
    fn prep_move_freepages_block(&self, zone_index: usize, page: Pfn) -> Option<(u64, u64, u64)> {
        let size = 1u64 << self.pageblock_order;
        let start = page.0 & !(size - 1);
        let end = start + size;
        let zone = &self.zones[zone_index];
        if start < zone.start_pfn || end > zone.end_pfn() || end > self.max_pfn {
            return None;
        }
        let (mut free, mut movable) = (0, 0);
        let mut pfn = start;
        while pfn < end {
            let p = Pfn(pfn);
            match self.frames.state(p) {
                FrameState::Free => {
                    let pages = self.frames.order(p).pages();
                    free += pages;
                    pfn += pages;
                }
                FrameState::Allocated => {
                    if self.frames.has_flag(p, FLAG_LRU) {
                        movable += 1;
                    }
                    pfn += 1;
                }
                _ => pfn += 1,
            }
        }
        Some((start, free, movable))
    }

    /// `__move_freepages_block`: every free block with its head in the
    /// pageblock at `start` moves from list `old_mt` to list `new_mt`.
    fn move_freepages_block(&mut self, zone_index: usize, start: u64, old_mt: u8, new_mt: u8) {
        let end = start + (1u64 << self.pageblock_order);
        let mut pfn = start;
        while pfn < end {
            let p = Pfn(pfn);
            if self.frames.state(p) == FrameState::Free {
                let order = self.frames.order(p);
                let area = &mut self.zones[zone_index].free_area[ix(order.0)];
                area.lists[old_mt as usize].remove(&mut self.frames, p);
                area.lists[new_mt as usize].push_tail(&mut self.frames, p);
                pfn += order.pages();
            } else if self.frames.state(p) == FrameState::Allocated {
                pfn += self.frames.order(p).pages();
            } else {
                pfn += 1;
            }
        }
    }

    /// `change_pageblock_range`: every pageblock of the order-`order`
    /// block at `page` becomes `mt`.
    fn change_pageblock_range(&mut self, page: Pfn, order: u8, mt: u8) {
        let first = page.0 >> self.pageblock_order;
        let blocks = 1u64 << order.saturating_sub(self.pageblock_order);
        for b in first..first + blocks {
            self.pageblock_types[ix(b)] = mt;
        }
    }

    /// `set_pageblock_migratetype` with `move_freepages_block`: give the
    /// pageblock holding `pfn` type `mt`, moving its free blocks along.
    pub fn set_pageblock_migratetype(&mut self, pfn: Pfn, mt: u8) {
        let old = self.pageblock_type(pfn);
        if old == mt {
            return;
        }
        let start = pfn.0 & !((1u64 << self.pageblock_order) - 1);
        if let Some(zone_index) = self.zone_of(Pfn(start.max(pfn.0))) {
            self.move_freepages_block_checked(zone_index, start, mt);
        }
        self.pageblock_types[ix(pfn.0 >> self.pageblock_order)] = mt;
    }

    /// Move the free blocks with heads in the pageblock at `start` from
    /// whatever list they are on to `new_mt`'s.
    fn move_freepages_block_checked(&mut self, zone_index: usize, start: u64, new_mt: u8) {
        let end = (start + (1u64 << self.pageblock_order)).min(self.max_pfn);
        let old_mt = self.pageblock_type(Pfn(start));
        let mut pfn = start;
        while pfn < end {
            let p = Pfn(pfn);
            match self.frames.state(p) {
                FrameState::Free if self.zones[zone_index].contains(p) => {
                    let order = self.frames.order(p);
                    let area = &mut self.zones[zone_index].free_area[ix(order.0)];
                    area.lists[old_mt as usize].remove(&mut self.frames, p);
                    area.lists[new_mt as usize].push_tail(&mut self.frames, p);
                    pfn += order.pages();
                }
                FrameState::Free | FrameState::Allocated => {
                    pfn += self.frames.order(p).pages();
                }
                _ => pfn += 1,
            }
        }
    }

    /// `__isolate_free_page` + `split_page` for compaction's free scanner:
    /// take the free block at `pfn` off its list as order-0 allocated
    /// frames (no kind yet). Returns how many pages it held.
    pub fn isolate_free_page(&mut self, zone_index: usize, pfn: Pfn) -> u64 {
        let order = self.frames.order(pfn);
        self.del_from_free_list(zone_index, pfn, order);
        for i in 0..order.pages() {
            self.frames.set_head(
                Pfn(pfn.0 + i),
                FrameState::Allocated,
                Order(0),
                PageKind::None,
            );
        }
        self.zones[zone_index].free_pages -= order.pages();
        order.pages()
    }

    /// `reserve_highatomic_pageblock`: after a high-order atomic
    /// allocation, reserve its pageblock for more of them while the
    /// reserve is under 1 % of the zone (plus one pageblock).
    fn reserve_highatomic_pageblock(&mut self, zone_index: usize, pfn: Pfn) {
        let pageblock = 1u64 << self.pageblock_order;
        let zone = &self.zones[zone_index];
        let max_managed = zone.managed.div_ceil(100) + pageblock;
        if zone.nr_reserved_highatomic >= max_managed {
            return;
        }
        let mt = self.pageblock_type(pfn);
        if mt == MIGRATE_HIGHATOMIC || mt == MIGRATE_ISOLATE {
            return;
        }
        self.set_pageblock_migratetype(pfn, MIGRATE_HIGHATOMIC);
        self.zones[zone_index].nr_reserved_highatomic += pageblock;
    }

    /// `unreserve_highatomic_pageblock`: direct reclaim failed, so give
    /// the HighAtomic pageblocks back to the type asked for (one per zone
    /// per call, as Linux does). True when one was released.
    pub fn unreserve_highatomic_pageblock(&mut self, highest: usize, mt: u8) -> bool {
        let pageblock = 1u64 << self.pageblock_order;
        let mut released = false;
        for zone_index in self.zonelist(highest).collect::<Vec<_>>() {
            if self.zones[zone_index].nr_reserved_highatomic <= pageblock {
                // Linux keeps the last pageblock unless the caller forces.
                continue;
            }
            let head = (0..NR_PAGE_ORDERS).find_map(|o| {
                self.zones[zone_index].free_area[o].lists[MIGRATE_HIGHATOMIC as usize].head()
            });
            if let Some(p) = head {
                self.zones[zone_index].nr_reserved_highatomic -= pageblock;
                self.set_pageblock_migratetype(p, mt);
                released = true;
            }
        }
        released
    }

    fn add_to_free_list(&mut self, zone_index: usize, pfn: Pfn, order: Order, at_head: bool) {
        let mt = self.pageblock_type(pfn) as usize;
        let area = &mut self.zones[zone_index].free_area[ix(order.0)];
        if at_head {
            area.lists[mt].push_head(&mut self.frames, pfn);
        } else {
            area.lists[mt].push_tail(&mut self.frames, pfn);
        }
        area.nr_free += 1;
    }

    #[inline]
    fn del_from_free_list_mt(&mut self, zone_index: usize, pfn: Pfn, order: Order, mt: u8) {
        let area = &mut self.zones[zone_index].free_area[ix(order.0)];
        area.lists[mt as usize].remove(&mut self.frames, pfn);
        area.nr_free -= 1;
    }

    fn del_from_free_list(&mut self, zone_index: usize, pfn: Pfn, order: Order) {
        let mt = self.pageblock_type(pfn);
        self.del_from_free_list_mt(zone_index, pfn, order, mt);
    }

    /// `__free_one_page`: give a block back, merging with free buddies.
    /// Errors when `pfn` is not the head of an allocated block of `order`.
    pub fn free(&mut self, pfn: Pfn, order: Order) -> MmResult<()> {
        if pfn.0 >= self.max_pfn
            || self.frames.state(pfn) != FrameState::Allocated
            || self.frames.order(pfn) != order
        {
            return Err(MmError::Invalid(format!(
                "free of pfn {} order {} that is not an allocated block",
                pfn, order.0
            )));
        }
        if self.frames.mapcount(pfn) != 0 {
            // `bad_page`: "nonzero mapcount"; the page stays allocated.
            return Err(MmError::Invalid(format!(
                "free of pfn {pfn} that {} PTEs still map (nonzero mapcount)",
                self.frames.mapcount(pfn)
            )));
        }
        let zone_index = self.zone_of(pfn).expect("allocated page lies in a zone");
        let mut head = pfn;
        let mut current = order;
        while current.0 < MAX_PAGE_ORDER {
            let buddy = head.buddy(current);
            let zone = &self.zones[zone_index];
            if !zone.contains(buddy)
                || buddy.0 >= self.max_pfn
                || self.frames.state(buddy) != FrameState::Free
                || self.frames.order(buddy) != current
            {
                break;
            }
            if current.0 >= self.pageblock_order {
                // No merging of a HighAtomic or Isolate pageblock with one
                // of another type.
                let (mt, buddy_mt) = (self.pageblock_type(head), self.pageblock_type(buddy));
                if mt != buddy_mt
                    && (!migratetype_is_mergeable(mt) || !migratetype_is_mergeable(buddy_mt))
                {
                    break;
                }
            }
            self.del_from_free_list(zone_index, buddy, current);
            self.frames.clear(buddy);
            self.frames.clear(head);
            head = Pfn(head.0 & buddy.0);
            current = Order(current.0 + 1);
        }
        if head != pfn {
            self.frames.clear(pfn);
        }
        self.frames
            .set_head(head, FrameState::Free, current, PageKind::None);
        self.add_to_free_list(zone_index, head, current, true);
        let zone = &mut self.zones[zone_index];
        zone.free_pages += order.pages();
        self.pgfree += order.pages();
        Ok(())
    }

    /// Walk every zone and check the buddy allocator's invariants: the
    /// present ranges are tiled by free, allocated and reserved blocks (every
    /// pfn in exactly one place), free counts equal the lists, list members
    /// are free heads of the list's order, watermarks are ordered.
    pub fn check_invariants(&self) -> Result<(), String> {
        for zone in &self.zones {
            let name = zone.zone_type.name();
            let mut free = 0u64;
            let mut blocks = [0u64; NR_PAGE_ORDERS];
            let mut reserved = 0u64;
            for &(start, end) in &zone.present_ranges {
                let mut pfn = start;
                while pfn < end {
                    let p = Pfn(pfn);
                    match self.frames.state(p) {
                        FrameState::Free => {
                            let order = self.frames.order(p);
                            if pfn % order.pages() != 0 || pfn + order.pages() > end {
                                return Err(format!(
                                    "{name}: free block {p} order {} misaligned",
                                    order.0
                                ));
                            }
                            free += order.pages();
                            blocks[ix(order.0)] += 1;
                            pfn += order.pages();
                        }
                        FrameState::Allocated => {
                            let order = self.frames.order(p);
                            if pfn % order.pages() != 0 || pfn + order.pages() > end {
                                return Err(format!("{name}: allocated block {p} misaligned"));
                            }
                            pfn += order.pages();
                        }
                        FrameState::Reserved => {
                            reserved += 1;
                            pfn += 1;
                        }
                        FrameState::Interior => {
                            return Err(format!("{name}: pfn {p} belongs to no block"));
                        }
                    }
                }
            }
            if free != zone.free_pages {
                return Err(format!(
                    "{name}: free_pages {} but blocks hold {free}",
                    zone.free_pages
                ));
            }
            if zone.free_pages > zone.managed {
                return Err(format!(
                    "{name}: free {} > managed {}",
                    zone.free_pages, zone.managed
                ));
            }
            if zone.present - reserved != zone.managed {
                return Err(format!(
                    "{name}: managed {} != present {} - reserved {reserved}",
                    zone.managed, zone.present
                ));
            }
            for (order, area) in zone.free_area.iter().enumerate() {
                if area.nr_free() != blocks[order] {
                    return Err(format!(
                        "{name}: order {order} list holds {} blocks, frames say {}",
                        area.nr_free(),
                        blocks[order]
                    ));
                }
                let by_type: u64 = area.lists.iter().map(FrameList::len).sum();
                if by_type != area.nr_free() {
                    return Err(format!(
                        "{name}: order {order} per-type lists hold {by_type}, nr_free {}",
                        area.nr_free()
                    ));
                }
                for (mt, list) in area.lists.iter().enumerate() {
                    let mut cursor = list.head();
                    let mut seen = 0;
                    while let Some(p) = cursor {
                        if self.frames.state(p) != FrameState::Free
                            || self.frames.order(p).0 as usize != order
                            || !zone.contains(p)
                        {
                            return Err(format!("{name}: list order {order} holds bad block {p}"));
                        }
                        // Every free block is on the list of its pageblock's
                        // type (move_freepages_block keeps it so).
                        if self.pageblock_type(p) as usize != mt {
                            return Err(format!(
                                "{name}: free block {p} order {order} on the {} list of a {} pageblock",
                                MIGRATE_TYPE_NAMES[mt],
                                MIGRATE_TYPE_NAMES[ix(self.pageblock_type(p))]
                            ));
                        }
                        seen += 1;
                        cursor = self.frames.next(p);
                    }
                    if seen != list.len() {
                        return Err(format!("{name}: list order {order} length mismatch"));
                    }
                }
            }
            let per_type: u64 = (0..MIGRATE_TYPES)
                .map(|mt| {
                    zone.free_area
                        .iter()
                        .enumerate()
                        .map(|(o, a)| a.nr_free_by_type(mt) << o)
                        .sum::<u64>()
                })
                .sum();
            if per_type != zone.free_pages {
                return Err(format!(
                    "{name}: per-type free counts add up to {per_type}, free_pages {}",
                    zone.free_pages
                ));
            }
            let w = zone.watermark;
            if zone.zone_type != ZoneType::Device
                && !(w.min <= w.low && w.low <= w.high && w.high <= w.promo)
            {
                return Err(format!("{name}: watermarks out of order {w:?}"));
            }
        }
        Ok(())
    }
}

/// `should_try_claim_block`: may a fallback of order `order` for type
/// `start_mt` claim the whole pageblock? Always at pageblock order or half
/// of it; always for unmovable and reclaimable requests (their pages would
/// pollute a movable block for good); never for small movable ones (they
/// steal: compaction can undo that).
pub fn should_try_claim_block(order: u8, start_mt: u8, pageblock_order: u8) -> bool {
    order >= pageblock_order
        || order >= pageblock_order / 2
        || start_mt == MIGRATE_RECLAIMABLE
        || start_mt == MIGRATE_UNMOVABLE
}

/// What `find_suitable_fallback` found at one order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fallback {
    /// A free block on this fallback type's list.
    Found(u8),
    /// No free block of a fallback type at this order.
    None,
    /// The order is too small to claim a pageblock (stop looking).
    TooSmall,
}

/// What an allocation asks the buddy allocator for: the kind of the block
/// (what it is used for), its migrate type (from the GFP flags) and
/// whether it is a high-order atomic request (ALLOC_HIGHATOMIC).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AllocRequest {
    /// What the block is used for.
    pub kind: PageKind,
    /// The migrate type asked for (0..MIGRATE_PCPTYPES).
    pub mt: u8,
    /// GFP_ATOMIC: may use (and reserves) the HighAtomic pageblocks.
    pub atomic: bool,
}

impl AllocRequest {
    /// A non-atomic request.
    pub fn new(kind: PageKind, mt: u8) -> AllocRequest {
        AllocRequest {
            kind,
            mt,
            atomic: false,
        }
    }
}

/// The machine's usable RAM as pfn ranges `[start, end)`, like an e820 map:
/// pfn 0 and 640K-1M are holes; on x86_64 RAM above 3 GiB is remapped above
/// 4 GiB (the PCI hole), as on a PC.
pub fn ram_ranges(arch: Arch, ram_pages: u64) -> Vec<(u64, u64)> {
    let mut ranges = vec![(1, LOW_RAM_END_PFN)];
    match arch {
        Arch::X86_64 if ram_pages > PCI_HOLE_START_PFN => {
            ranges.push((FIRST_MIB_PFN, PCI_HOLE_START_PFN));
            ranges.push((FOUR_GIB_PFN, FOUR_GIB_PFN + ram_pages - PCI_HOLE_START_PFN));
        }
        _ => ranges.push((FIRST_MIB_PFN, ram_pages)),
    }
    ranges
}

/// Integer square root (the kernel's `int_sqrt`).
pub fn int_sqrt(x: u64) -> u64 {
    if x < 2 {
        return x;
    }
    let mut r = (x as f64).sqrt() as u64;
    while r * r > x {
        r -= 1;
    }
    while (r + 1) * (r + 1) <= x {
        r += 1;
    }
    r
}

/// Largest order the allocator tries hard for: above it there is no OOM
/// kill (PAGE_ALLOC_COSTLY_ORDER).
pub const PAGE_ALLOC_COSTLY_ORDER: u8 = 3;

impl super::Kernel {
    /// `alloc_pages`: a block of 2^order pages from the zones up to
    /// `highest`, of the kind's migrate type ([`kind_migratetype`]). The
    /// fast path takes it above the low watermark; below it
    /// [`Kernel::alloc_pages_slowpath`] wakes kswapd, compacts and reclaims
    /// directly and, for orders up to PAGE_ALLOC_COSTLY_ORDER, calls the
    /// OOM killer. None when nothing more can be freed.
    #[inline]
    pub fn alloc_pages(&mut self, order: Order, highest: ZoneIdx, kind: PageKind) -> Option<Pfn> {
        self.alloc_pages_mt(
            order,
            highest,
            AllocRequest::new(kind, kind_migratetype(kind)),
        )
    }

    /// [`Self::alloc_pages`] for an explicit request: a migrate type other
    /// than the kind's (reclaimable slab, `alloc_pages ... movable`) or an
    /// atomic one.
    pub fn alloc_pages_mt(
        &mut self,
        order: Order,
        highest: ZoneIdx,
        req: AllocRequest,
    ) -> Option<Pfn> {
        let highest = highest.0;
        let pfn = match self.page_alloc.get_page_from_freelist_mt(
            order,
            highest,
            WatermarkLevel::Low,
            req,
        ) {
            Some(pfn) => {
                let asleep = !self.lru.kswapd_woken;
                self.check_kswapd_wakeup(highest);
                if asleep && self.lru.kswapd_woken {
                    self.trace_wakeup_kswapd(u64::from(order.0), gfp_of(req.kind, order));
                }
                pfn
            }
            None => self.alloc_pages_slowpath(order, highest, req)?,
        };
        if let Some(event) = self.page_alloc.pending_extfrag.take() {
            self.trace_mm_page_alloc_extfrag(event);
        }
        self.trace_mm_page_alloc(pfn, order, req.kind);
        Some(pfn)
    }

    /// `__alloc_pages_slowpath`: wake kswapd (it runs at once), try low and
    /// min; for costly or non-movable high orders compact first; then
    /// direct reclaim and direct compaction; costly orders give up there,
    /// others go on to the OOM killer while it finds victims.
    #[cold]
    fn alloc_pages_slowpath(
        &mut self,
        order: Order,
        highest: usize,
        req: AllocRequest,
    ) -> Option<Pfn> {
        let kind = req.kind;
        let costly = order.0 > PAGE_ALLOC_COSTLY_ORDER;
        let mut first = true;
        loop {
            // On a real machine kswapd runs on another CPU while the
            // allocating task carries on; on the simulated clock it gets
            // its turn now, so a long operation sees background reclaim
            // before it has to reclaim for itself. On the wall clock it
            // runs as real time passes (the ticker), and a task that
            // outruns it reclaims directly.
            if !self.lru.kswapd_woken {
                self.trace_wakeup_kswapd(u64::from(order.0), gfp_of(kind, order));
            }
            self.wakeup_kswapd(highest);
            if order.0 > 0 {
                // kswapd wakes kcompactd for the order once it has
                // balanced the node (`wakeup_kcompactd`).
                self.wakeup_kcompactd(order.0, highest);
            }
            if self.clock_mode == super::cputime::ClockMode::Sim {
                self.run_kswapd();
            }
            for level in [WatermarkLevel::Low, WatermarkLevel::Min] {
                if let Some(pfn) = self
                    .page_alloc
                    .get_page_from_freelist_mt(order, highest, level, req)
                {
                    return Some(pfn);
                }
            }
            // GFP_ATOMIC cannot sleep: no reclaim, no compaction.
            if req.atomic {
                return None;
            }
            // "For costly allocations, try direct compaction first, as
            // it's likely that we have enough base pages and don't need to
            // reclaim" (and for non-movable high orders).
            if first
                && (costly || (order.0 > 0 && req.mt != MIGRATE_MOVABLE))
                && let Some(pfn) = self.alloc_pages_direct_compact(order, highest, req)
            {
                return Some(pfn);
            }
            first = false;
            if let Some(pfn) = self.alloc_pages_direct_reclaim(order, highest, req) {
                return Some(pfn);
            }
            if let Some(pfn) = self.alloc_pages_direct_compact(order, highest, req) {
                return Some(pfn);
            }
            // Costly orders are not retried (no __GFP_RETRY_MAYFAIL).
            if costly {
                return None;
            }
            if !self.alloc_pages_may_oom(order, kind) {
                return None;
            }
            // The OOM victim's memory is free: the fast path may succeed.
            if let Some(pfn) =
                self.page_alloc
                    .get_page_from_freelist_mt(order, highest, WatermarkLevel::Low, req)
            {
                self.check_kswapd_wakeup(highest);
                return Some(pfn);
            }
        }
    }

    /// `__alloc_pages_direct_reclaim` with its retries
    /// (`should_reclaim_retry`): reclaim (allocstall) and try the min
    /// watermark, up to MAX_RECLAIM_RETRIES rounds without progress; a
    /// costly order gets one round. A failure first gives the HighAtomic
    /// reserve back (`unreserve_highatomic_pageblock`).
    fn alloc_pages_direct_reclaim(
        &mut self,
        order: Order,
        highest: usize,
        req: AllocRequest,
    ) -> Option<Pfn> {
        // The allocating task stalls on memory for the whole attempt (PSI).
        self.psi_memstall_enter();
        let mut page = self.direct_reclaim_retries(order, highest, req);
        if page.is_none()
            && self
                .page_alloc
                .unreserve_highatomic_pageblock(highest, req.mt)
        {
            page =
                self.page_alloc
                    .get_page_from_freelist_mt(order, highest, WatermarkLevel::Min, req);
        }
        self.psi_memstall_leave();
        page
    }

    /// The retry loop of [`Self::alloc_pages_direct_reclaim`].
    fn direct_reclaim_retries(
        &mut self,
        order: Order,
        highest: usize,
        req: AllocRequest,
    ) -> Option<Pfn> {
        let mut failures = 0;
        let gfp = gfp_of(req.kind, order);
        let mut rounds = 0;
        while failures < super::vmscan::MAX_RECLAIM_RETRIES {
            rounds += 1;
            self.page_alloc.zones[highest].allocstall += 1;
            self.trace_direct_reclaim_begin(u64::from(order.0), gfp);
            // Progress also revives a dormant kswapd (shrink_node).
            let reclaimed = self.try_to_free_pages(highest);
            self.trace_direct_reclaim_end(reclaimed);
            if reclaimed == 0 {
                failures += 1;
            }
            if let Some(pfn) =
                self.page_alloc
                    .get_page_from_freelist_mt(order, highest, WatermarkLevel::Min, req)
            {
                return Some(pfn);
            }
            if order.0 > PAGE_ALLOC_COSTLY_ORDER && rounds >= 1 {
                // A costly order reclaims once, then compacts and gives up.
                break;
            }
            self.trace_reclaim_retry(order, highest, failures);
            // Nothing freed: pages under writeback will be freeable once
            // written, so wait for the disk (reclaim_throttle); with none
            // in flight and no swap, retrying cannot help.
            if reclaimed == 0 && !self.reclaim_throttle() && !self.swap.has_free_slot() {
                break;
            }
        }
        None
    }

    /// oom:reclaim_retry_zone for each zone `should_reclaim_retry` weighs:
    /// could reclaiming all it can bring the zone above its min watermark?
    fn trace_reclaim_retry(&mut self, order: Order, highest: usize, loops: u32) {
        if !self.trace.on(super::trace::Event::ReclaimRetryZone) {
            return;
        }
        let can_swap = self.swap.has_free_slot();
        for z in self.page_alloc.zonelist(highest).collect::<Vec<_>>() {
            let lists = &self.lru.zones[z];
            let mut reclaimable = lists.active_file.len() + lists.inactive_file.len();
            if can_swap {
                reclaimable += lists.active_anon.len() + lists.inactive_anon.len();
            }
            let zone = &self.page_alloc.zones[z];
            let available = reclaimable + zone.free_pages;
            let min = zone.watermark.min;
            let ok = available > min + zone.lowmem_reserve.get(highest).copied().unwrap_or(0);
            let (order, loops) = (u64::from(order.0), u64::from(loops));
            self.trace_reclaim_retry_zone(z, order, reclaimable, available, min, loops, ok);
        }
    }

    /// `__alloc_pages_may_oom`: no OOM kill for costly orders or while
    /// swapoff runs (it is the OOM origin); true when a victim was killed.
    fn alloc_pages_may_oom(&mut self, order: Order, kind: PageKind) -> bool {
        order.0 <= PAGE_ALLOC_COSTLY_ORDER
            && !self.swap.swapoff_running
            && self.out_of_memory(order, kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine(arch: Arch, mem: u64) -> PageAllocator {
        let a = PageAllocator::boot(arch, mem).expect("boot");
        a.check_invariants().expect("invariants after boot");
        a
    }

    fn buddy_counts(a: &PageAllocator) -> Vec<Vec<u64>> {
        a.zones
            .iter()
            .map(|z| z.free_area.iter().map(|f| f.nr_free()).collect())
            .collect()
    }

    fn zone_idx(a: &PageAllocator, t: ZoneType) -> usize {
        a.zone_index(t).unwrap()
    }

    #[test]
    fn x86_64_zone_layout() {
        let a = machine(Arch::X86_64, 1 << 30);
        let dma = &a.zones[0];
        assert_eq!(
            (dma.start_pfn, dma.spanned, dma.present, dma.managed),
            (1, 4095, 3998, 3840)
        );
        let dma32 = &a.zones[1];
        assert_eq!(dma32.start_pfn, 4096);
        assert_eq!(dma32.spanned, 262144 - 4096);
        assert!(dma32.managed < dma32.present);
        assert!(!a.zones[2].is_populated());
        assert!(a.total_managed() < a.total_present());
    }

    #[test]
    fn x86_64_big_machine_has_pci_hole_and_normal() {
        let a = machine(Arch::X86_64, 8 << 30);
        let dma32 = &a.zones[1];
        assert_eq!(dma32.spanned, FOUR_GIB_PFN - 4096);
        assert_eq!(dma32.present, PCI_HOLE_START_PFN - DMA_END_PFN);
        let normal = &a.zones[2];
        assert_eq!(normal.start_pfn, FOUR_GIB_PFN);
        assert_eq!(normal.spanned, (8u64 << 18) - PCI_HOLE_START_PFN);
    }

    #[test]
    fn i386_has_highmem() {
        let a = machine(Arch::I386, 2 << 30);
        let names: Vec<_> = a.zones.iter().map(|z| z.zone_type.name()).collect();
        assert_eq!(names, ["DMA", "Normal", "HighMem", "Movable"]);
        assert_eq!(a.zones[2].start_pfn, I386_MAX_LOW_PFN);
        assert_eq!(a.zones[2].present, (2u64 << 18) - I386_MAX_LOW_PFN);
        assert_eq!(a.pageblock_order, 10);
    }

    #[test]
    fn split_and_merge_round_trip() {
        let mut a = machine(Arch::X86_64, 256 << 20);
        let boot = buddy_counts(&a);
        let normal = zone_idx(&a, ZoneType::Dma32);
        let mut got = Vec::new();
        for _ in 0..10 {
            got.push(
                a.get_page_from_freelist(Order(3), normal, WatermarkLevel::Low, PageKind::Kernel)
                    .unwrap(),
            );
            a.check_invariants().unwrap();
        }
        assert_ne!(buddy_counts(&a), boot);
        // Lower half kept: consecutive order-3 blocks are adjacent.
        assert_eq!(got[1].0, got[0].0 + 8);
        for pfn in got.into_iter().rev() {
            a.free(pfn, Order(3)).unwrap();
            a.check_invariants().unwrap();
        }
        assert_eq!(buddy_counts(&a), boot);
    }

    #[test]
    fn every_page_at_order_zero_then_freed_gives_boot_state() {
        let mut a = machine(Arch::X86_64, 64 << 20);
        let boot = buddy_counts(&a);
        let top = zone_idx(&a, ZoneType::Dma32);
        let mut pages = Vec::new();
        for zone in 0..a.zones.len() {
            while let Some(p) = a.rmqueue(zone, Order(0), PageKind::Kernel) {
                pages.push(p);
            }
        }
        assert_eq!(a.total_free(), 0);
        assert!(
            a.get_page_from_freelist(Order(0), top, WatermarkLevel::Min, PageKind::Kernel)
                .is_none()
        );
        a.check_invariants().unwrap();
        for p in pages {
            a.free(p, Order(0)).unwrap();
        }
        a.check_invariants().unwrap();
        assert_eq!(buddy_counts(&a), boot);
    }

    #[test]
    fn double_free_is_refused() {
        let mut a = machine(Arch::X86_64, 64 << 20);
        let p = a
            .get_page_from_freelist(Order(0), 1, WatermarkLevel::Low, PageKind::Kernel)
            .unwrap();
        a.free(p, Order(0)).unwrap();
        assert!(a.free(p, Order(0)).is_err());
        a.check_invariants().unwrap();
    }

    #[test]
    fn kernel_requests_never_take_highmem_user_requests_prefer_it() {
        let mut a = machine(Arch::I386, 2 << 30);
        let normal = zone_idx(&a, ZoneType::Normal);
        let high = zone_idx(&a, ZoneType::HighMem);
        let k = a
            .get_page_from_freelist(Order(0), normal, WatermarkLevel::Low, PageKind::Kernel)
            .unwrap();
        assert_eq!(a.zone_of(k), Some(normal));
        let u = a
            .get_page_from_freelist(Order(0), high, WatermarkLevel::Low, PageKind::UserAnon)
            .unwrap();
        assert_eq!(a.zone_of(u), Some(high));
    }

    #[test]
    fn fallback_respects_lowmem_reserve() {
        let mut a = machine(Arch::X86_64, 256 << 20);
        let dma32 = zone_idx(&a, ZoneType::Dma32);
        // Exhaust DMA32 for kernel requests.
        while a.rmqueue(dma32, Order(0), PageKind::Kernel).is_some() {}
        // DMA's protection against DMA32-bound requests keeps it out of reach
        // when free - reserve is under the watermark.
        let dma = &a.zones[0];
        let reserve = dma.lowmem_reserve[dma32];
        let ok = dma.free_pages > dma.watermark.low + reserve;
        let got = a.get_page_from_freelist(Order(0), dma32, WatermarkLevel::Low, PageKind::Kernel);
        assert_eq!(got.is_some(), ok);
        if let Some(p) = got {
            assert_eq!(a.zone_of(p), Some(0));
        }
        // A DMA-only request checks no reserve.
        assert!(
            a.get_page_from_freelist(Order(0), 0, WatermarkLevel::Low, PageKind::Kernel)
                .is_some()
        );
    }

    /// Feed the captured zone sizes and min_free_kbytes: the watermarks,
    /// protection and totalreserve must equal the reference's worked values.
    #[test]
    fn watermarks_match_the_capture() {
        let mut a = machine(Arch::X86_64, 1 << 30);
        let managed = [3840u64, 772808, 360448, 0, 0];
        for (zone, m) in a.zones.iter_mut().zip(managed) {
            zone.managed = m;
        }
        a.min_free_kbytes = 67584;
        a.setup_watermarks();
        let w: Vec<_> = a
            .zones
            .iter()
            .map(|z| {
                (
                    z.watermark.min,
                    z.watermark.low,
                    z.watermark.high,
                    z.watermark.promo,
                )
            })
            .collect();
        assert_eq!(w[0], (57, 71, 85, 99));
        assert_eq!(w[1], (11483, 14353, 17223, 20093));
        assert_eq!(w[2], (5355, 6693, 8031, 9369));
        assert_eq!(w[3], (32, 32, 32, 32));
        assert_eq!(w[4], (0, 0, 0, 0));
        assert_eq!(a.zones[0].lowmem_reserve, vec![0, 3018, 4426, 4426, 4426]);
        assert_eq!(a.zones[1].lowmem_reserve, vec![0, 0, 1408, 1408, 1408]);
        assert_eq!(a.zones[2].lowmem_reserve, vec![0, 0, 0, 0, 0]);
        // totalreserve = Σ min(managed, max protection + high): DMA is
        // capped at its managed 3840, Movable and Device add nothing.
        let expected = 3840 + (1408 + 17223) + 8031;
        assert_eq!(a.total_reserve_pages(), expected);
        assert_eq!(expected, 30502);
    }

    #[test]
    fn default_min_free_kbytes_follows_the_kernel() {
        let a = machine(Arch::X86_64, 1 << 30);
        // 2 populated zones: 512 * 2 * 11 pages = 45056 kB.
        assert_eq!(a.min_free_kbytes, 45056);
        let b = machine(Arch::I386, 512 << 20);
        assert_eq!(b.min_free_kbytes, int_sqrt(b.lowmem_managed() * 4 * 16));
    }

    /// Linux 6.18's `fallbacks[]` and `should_try_claim_block`, entry by
    /// entry.
    #[test]
    fn fallback_table_and_claim_rule_are_linuxs() {
        assert_eq!(
            FALLBACKS[MIGRATE_UNMOVABLE as usize],
            [MIGRATE_RECLAIMABLE, MIGRATE_MOVABLE]
        );
        assert_eq!(
            FALLBACKS[MIGRATE_MOVABLE as usize],
            [MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE]
        );
        assert_eq!(
            FALLBACKS[MIGRATE_RECLAIMABLE as usize],
            [MIGRATE_UNMOVABLE, MIGRATE_MOVABLE]
        );
        // x86_64, pageblock order 9: movable requests claim from order 4
        // (pageblock_order / 2) up, unmovable and reclaimable always.
        for order in 0..=10u8 {
            assert_eq!(
                should_try_claim_block(order, MIGRATE_MOVABLE, 9),
                order >= 4
            );
            assert!(should_try_claim_block(order, MIGRATE_UNMOVABLE, 9));
            assert!(should_try_claim_block(order, MIGRATE_RECLAIMABLE, 9));
        }
        // i386 without PAE: pageblock order 10, movable claims from 5.
        assert!(!should_try_claim_block(4, MIGRATE_MOVABLE, 10));
        assert!(should_try_claim_block(5, MIGRATE_MOVABLE, 10));
        assert_eq!(kind_migratetype(PageKind::UserAnon), MIGRATE_MOVABLE);
        assert_eq!(kind_migratetype(PageKind::PageCache), MIGRATE_MOVABLE);
        assert_eq!(kind_migratetype(PageKind::PageTable), MIGRATE_UNMOVABLE);
        assert_eq!(kind_migratetype(PageKind::Slab), MIGRATE_UNMOVABLE);
    }

    fn pageblocks_of(a: &PageAllocator, zone: usize) -> [u64; MIGRATE_TYPES] {
        let z = &a.zones[zone];
        let mut n = [0; MIGRATE_TYPES];
        for b in (z.start_pfn >> 9)..z.end_pfn().div_ceil(512) {
            n[a.pageblock_types[b as usize] as usize] += 1;
        }
        n
    }

    /// An unmovable request on a fresh (all movable) zone claims the
    /// largest free block, a whole order-10 block: both its pageblocks
    /// become unmovable and the event says change_ownership.
    #[test]
    fn unmovable_fallback_claims_whole_pageblocks() {
        let mut a = machine(Arch::X86_64, 64 << 20);
        let dma32 = zone_idx(&a, ZoneType::Dma32);
        let before = pageblocks_of(&a, dma32);
        // The pageblocks the kernel image made unmovable may have free
        // pages: take them first so that the fallback runs.
        while a
            .rmqueue_smallest(dma32, Order(0), MIGRATE_UNMOVABLE)
            .is_some()
        {}
        let got = a.rmqueue(dma32, Order(0), PageKind::Kernel).unwrap();
        let e = a.pending_extfrag.take().unwrap();
        assert_eq!((e.alloc_order, e.fallback_order), (0, 10));
        assert_eq!(
            (e.alloc_mt, e.fallback_mt),
            (MIGRATE_UNMOVABLE, MIGRATE_MOVABLE)
        );
        assert!(e.change_ownership);
        assert_eq!(a.pageblock_type(got), MIGRATE_UNMOVABLE);
        let after = pageblocks_of(&a, dma32);
        assert_eq!(after[0], before[0] + 2);
        assert_eq!(after[1], before[1] - 2);
        // The rest of the claimed block is on the unmovable lists now.
        assert!(a.zones[dma32].free_area[9].nr_free_by_type(0) >= 1);
        assert_eq!(a.extfrag_events, 1);
    }

    /// A zone of unmovable pageblocks, every page allocated, then the
    /// pages `keep(offset in block)` says no to freed again.
    fn unmovable_zone(keep: impl Fn(u64) -> bool) -> (PageAllocator, usize, u64) {
        let mut a = machine(Arch::X86_64, 64 << 20);
        let dma32 = zone_idx(&a, ZoneType::Dma32);
        let (start, end) = (a.zones[dma32].start_pfn, a.zones[dma32].end_pfn());
        for b in (start >> 9)..end.div_ceil(512) {
            a.set_pageblock_migratetype(Pfn(b << 9), MIGRATE_UNMOVABLE);
        }
        a.check_invariants().unwrap();
        let mut pages = Vec::new();
        while let Some(p) = a.rmqueue(dma32, Order(0), PageKind::Kernel) {
            pages.push(p);
        }
        assert_eq!(a.zones[dma32].free_pages, 0);
        // The first whole free-able pageblock above the kernel image.
        let block = (start >> 9) + 16;
        for p in pages {
            if p.0 >> 9 == block && !keep(p.0 & 511) {
                a.free(p, Order(0)).unwrap();
            }
        }
        a.check_invariants().unwrap();
        (a, dma32, block << 9)
    }

    /// try_to_claim_block: a movable order-4 request takes the pageblock
    /// when at least half of it (256 pages) is free.
    #[test]
    fn movable_claims_a_half_free_pageblock() {
        let (mut a, dma32, base) = unmovable_zone(|off| off < 200);
        let req = AllocRequest::new(PageKind::UserAnon, MIGRATE_MOVABLE);
        let got = a.rmqueue_flags(dma32, Order(4), req, false).unwrap();
        assert_eq!(got.0 >> 9, base >> 9);
        assert_eq!(a.pageblock_type(Pfn(base)), MIGRATE_MOVABLE);
        let e = a.pending_extfrag.take().unwrap();
        assert!(e.change_ownership);
        assert_eq!(e.fallback_order, 8);
        a.check_invariants().unwrap();
    }

    /// With less than half free, the same request steals one block and
    /// the pageblock stays unmovable (`__rmqueue_steal`).
    #[test]
    fn movable_steals_from_a_mostly_used_pageblock() {
        let (mut a, dma32, base) = unmovable_zone(|off| off < 312);
        let req = AllocRequest::new(PageKind::UserAnon, MIGRATE_MOVABLE);
        let got = a.rmqueue_flags(dma32, Order(4), req, false).unwrap();
        assert_eq!(got.0 >> 9, base >> 9);
        assert_eq!(a.pageblock_type(Pfn(base)), MIGRATE_UNMOVABLE);
        let e = a.pending_extfrag.take().unwrap();
        assert!(!e.change_ownership);
        assert_eq!(e.fallback_mt, MIGRATE_UNMOVABLE);
        // Small movable requests never claim: an order-0 one splits the
        // smallest unmovable free block and leaves its pageblock as it is.
        let small = a.rmqueue_flags(dma32, Order(0), req, false).unwrap();
        assert_eq!(a.pageblock_type(small), MIGRATE_UNMOVABLE);
        // ALLOC_NOFRAGMENT refuses to steal below pageblock order.
        assert!(a.rmqueue_flags(dma32, Order(0), req, true).is_none());
        a.check_invariants().unwrap();
    }

    /// An atomic high-order allocation reserves its pageblock as
    /// HighAtomic; others cannot use the reserve; a failed reclaim gives
    /// it back beyond the last pageblock.
    #[test]
    fn highatomic_reserve() {
        let mut a = machine(Arch::X86_64, 64 << 20);
        let dma32 = zone_idx(&a, ZoneType::Dma32);
        let req = AllocRequest {
            atomic: true,
            ..AllocRequest::new(PageKind::Kernel, MIGRATE_UNMOVABLE)
        };
        let p = a
            .get_page_from_freelist_mt(Order(2), dma32, WatermarkLevel::Low, req)
            .unwrap();
        assert_eq!(a.pageblock_type(p), MIGRATE_HIGHATOMIC);
        assert_eq!(a.zones[dma32].nr_reserved_highatomic, 512);
        a.check_invariants().unwrap();
        // Its free pages are on the HighAtomic lists, out of others' reach.
        let ha: u64 = (0..NR_PAGE_ORDERS)
            .map(|o| a.zones[dma32].free_area[o].nr_free_by_type(3) << o)
            .sum();
        assert_eq!(ha, 512 - 4);
        // The last reserved pageblock is kept.
        assert!(!a.unreserve_highatomic_pageblock(dma32, MIGRATE_UNMOVABLE));
    }

    #[test]
    fn huge_machine_boots_with_small_frames() {
        let a = PageAllocator::boot(Arch::X86_64, 64 << 30).unwrap();
        assert_eq!(
            std::mem::size_of::<[u32; 2]>() + std::mem::size_of::<u64>(),
            16
        );
        assert!(a.total_managed() > (60u64 << 18));
    }
}
