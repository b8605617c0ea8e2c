//! The swap cache and swap-in readahead (Linux: mm/swap_state.c, with the
//! anon half of mm/vmscan.c's `shrink_folio_list` and the swap-cache
//! helpers of mm/swapfile.c: `folio_free_swap`, `free_swap_and_cache`,
//! `try_to_unuse`).
//!
//! A page that has a swap slot and is in memory is in the swap cache: an
//! index from slot to page (Linux's swap address space, here a BTreeMap)
//! that holds one reference to the slot of its own (SWAP_HAS_CACHE), so a
//! slot's count is its swap PTEs plus one while its page is cached.
//!
//! Reclaim gives an anon page a slot and puts it in the cache
//! (`add_to_swap`), starts the write (`swap_writepage`; the page is
//! PG_writeback until the device has worked through its queue on the
//! simulated clock) and unmaps it: every PTE becomes the swap entry. A
//! later reclaim pass finds the write complete and frees the clean,
//! unmapped page (`__remove_mapping`). A fault on a swap entry whose page
//! is still cached maps it again — a minor fault, no I/O; otherwise it
//! reads the page and the neighbours readahead chooses into the cache — a
//! major fault. The slot stays after swap-in, so a clean page can be
//! dropped again without a write, until `folio_free_swap` lets it go (a
//! write fault on an exclusive page, swap more than half full, the last
//! mapping gone).

use std::collections::{BTreeMap, VecDeque};

use super::Kernel;
use super::cputime;
use super::error::{MmError, MmResult};
use super::memory::Pte;
use super::page_alloc::{FLAG_ACTIVE, FLAG_DIRTY, FLAG_LRU, PageKind};
use super::swapfile::{SWAP_MAP_MAX, SwapEntry, pack_owner};
use super::types::{MmSlot, PAGE_SHIFT, PAGE_SIZE, Pfn, Vpn};

/// `SWAP_RA_ORDER_CEILING` (64-bit): VMA readahead reads at most 2^5 pages.
pub const SWAP_RA_ORDER_CEILING: u64 = 5;
/// Bits of the hit count in the readahead state (`SWAP_RA_WIN_SHIFT`,
/// PAGE_SHIFT / 2).
const SWAP_RA_WIN_SHIFT: u32 = PAGE_SHIFT / 2;
/// `SWAP_RA_HITS_MASK`.
const SWAP_RA_HITS_MASK: u64 = (1 << SWAP_RA_WIN_SHIFT) - 1;
/// `SWAP_RA_WIN_MASK`: the bits between the hits and the page address.
const SWAP_RA_WIN_MASK: u64 = (PAGE_SIZE - 1) & !SWAP_RA_HITS_MASK;
/// `vm.page-cluster`'s default: readahead of up to 2^3 pages.
pub const DEFAULT_PAGE_CLUSTER: u64 = 3;
/// `page_cluster_max`: the largest value a write may set.
pub const PAGE_CLUSTER_MAX: u64 = 31;

/// One page of the swap cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct CachedPage {
    /// The page.
    pfn: Pfn,
    /// When its write completes on the simulated clock (PG_writeback
    /// until then); 0 when no write was started.
    writeback_until: u64,
    /// PG_readahead: read ahead of a fault and not hit yet.
    readahead: bool,
}

/// Slots a chunk of the index covers (Linux's swap cluster, SWAPFILE_CLUSTER).
const INDEX_CHUNK: usize = 512;
/// An empty index entry (no pfn reaches it: pfns are below 2^52).
const NO_PAGE: u64 = u64::MAX;
/// PG_readahead's bit beside the pfn in an index entry.
const RA_BIT: u64 = 1 << 63;

/// One entry of the index: the page (with PG_readahead in its top bit)
/// and when its write completes, 16 bytes.
#[derive(Clone, Copy, Debug)]
struct IndexEntry {
    pfn_ra: u64,
    writeback_until: u64,
}

const EMPTY_ENTRY: IndexEntry = IndexEntry {
    pfn_ra: NO_PAGE,
    writeback_until: 0,
};

/// Something [`Chunks`] can hold, with the value that marks a free entry.
trait ChunkEntry: Copy {
    /// A free entry.
    const EMPTY: Self;
    /// Is this entry free?
    fn is_empty(&self) -> bool;
}

impl ChunkEntry for IndexEntry {
    const EMPTY: Self = EMPTY_ENTRY;
    fn is_empty(&self) -> bool {
        self.pfn_ra == NO_PAGE
    }
}

impl ChunkEntry for u64 {
    const EMPTY: Self = 0;
    fn is_empty(&self) -> bool {
        *self == 0
    }
}

/// A sparse array in chunks of [`INDEX_CHUNK`] entries, each allocated
/// while one of its entries is in use and freed with its last: a look-up
/// is two array reads, and host memory follows what is stored, not the
/// range of indices. Both swap-cache indexes (slot → page, page → slot)
/// are made of it.
#[derive(Debug)]
struct Chunks<T> {
    /// By chunk: (entries in use, the entries).
    chunks: Vec<(u32, Option<Box<[T; INDEX_CHUNK]>>)>,
}

impl<T> Default for Chunks<T> {
    fn default() -> Self {
        Chunks { chunks: Vec::new() }
    }
}

impl<T: ChunkEntry> Chunks<T> {
    /// The entry at `i`, if in use.
    fn get(&self, i: usize) -> Option<&T> {
        let e = &self.chunks.get(i / INDEX_CHUNK)?.1.as_ref()?[i % INDEX_CHUNK];
        (!e.is_empty()).then_some(e)
    }

    /// The entry at `i`, if in use, for writing (it must stay in use).
    fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        let e = &mut self.chunks.get_mut(i / INDEX_CHUNK)?.1.as_mut()?[i % INDEX_CHUNK];
        (!e.is_empty()).then_some(e)
    }

    /// Put `value` (not [`ChunkEntry::EMPTY`]) at `i`; true when `i` was
    /// free.
    fn insert(&mut self, i: usize, value: T) -> bool {
        if self.chunks.len() <= i / INDEX_CHUNK {
            self.chunks.resize_with(i / INDEX_CHUNK + 1, || (0, None));
        }
        let (used, chunk) = &mut self.chunks[i / INDEX_CHUNK];
        let e =
            &mut chunk.get_or_insert_with(|| Box::new([T::EMPTY; INDEX_CHUNK]))[i % INDEX_CHUNK];
        let was_free = e.is_empty();
        if was_free {
            *used += 1;
        }
        *e = value;
        was_free
    }

    /// Take the entry at `i` out, if in use.
    fn remove(&mut self, i: usize) -> Option<T> {
        let (used, chunk) = self.chunks.get_mut(i / INDEX_CHUNK)?;
        let e = std::mem::replace(&mut chunk.as_mut()?[i % INDEX_CHUNK], T::EMPTY);
        if e.is_empty() {
            return None;
        }
        *used -= 1;
        if *used == 0 {
            *chunk = None;
        }
        Some(e)
    }

    /// Every entry in use, by index.
    fn iter(&self) -> impl Iterator<Item = (usize, &T)> + '_ {
        self.chunks.iter().enumerate().flat_map(|(c, (_, chunk))| {
            chunk.iter().flat_map(move |chunk| {
                chunk
                    .iter()
                    .enumerate()
                    .filter(|(_, e)| !e.is_empty())
                    .map(move |(i, e)| (c * INDEX_CHUNK + i, e))
            })
        })
    }
}

/// Slot → page, as Linux's swap address space indexes it (an xarray per
/// area by offset): a fault finds its page with two array reads instead
/// of a tree search; chunks of 512 slots (Linux's swap cluster) exist only
/// while one of their slots is cached.
#[derive(Debug, Default)]
struct SwapIndex {
    /// By area, by offset.
    areas: Vec<Chunks<IndexEntry>>,
    len: u64,
}

impl SwapIndex {
    fn slot(&self, entry: SwapEntry) -> Option<&IndexEntry> {
        self.areas
            .get(usize::from(entry.area))?
            .get(entry.offset as usize)
    }

    fn slot_mut(&mut self, entry: SwapEntry) -> Option<&mut IndexEntry> {
        self.areas
            .get_mut(usize::from(entry.area))?
            .get_mut(entry.offset as usize)
    }

    fn get(&self, entry: SwapEntry) -> Option<CachedPage> {
        self.slot(entry).map(|e| CachedPage {
            pfn: Pfn(e.pfn_ra & !RA_BIT),
            writeback_until: e.writeback_until,
            readahead: e.pfn_ra & RA_BIT != 0,
        })
    }

    /// Put `page` at `entry` (which must be empty).
    fn insert(&mut self, entry: SwapEntry, page: CachedPage) {
        let a = usize::from(entry.area);
        if self.areas.len() <= a {
            self.areas.resize_with(a + 1, Chunks::default);
        }
        let fresh = self.areas[a].insert(
            entry.offset as usize,
            IndexEntry {
                pfn_ra: page.pfn.0 | if page.readahead { RA_BIT } else { 0 },
                writeback_until: page.writeback_until,
            },
        );
        debug_assert!(fresh, "slot {entry:?} cached twice");
        self.len += 1;
    }

    fn remove(&mut self, entry: SwapEntry) -> Option<CachedPage> {
        let page = self.get(entry)?;
        self.areas[usize::from(entry.area)].remove(entry.offset as usize);
        self.len -= 1;
        Some(page)
    }

    /// Every cached (slot, page), by slot.
    fn iter(&self) -> impl Iterator<Item = (SwapEntry, Pfn)> + '_ {
        self.areas.iter().enumerate().flat_map(|(a, chunks)| {
            chunks.iter().map(move |(offset, e)| {
                (
                    SwapEntry {
                        area: a as u8,
                        offset: offset as u64,
                    },
                    Pfn(e.pfn_ra & !RA_BIT),
                )
            })
        })
    }
}

/// A dead entry of a [`WriteQueue`]: its page left the swap cache, or
/// was written again, before the write completed.
const DEAD: u64 = u64::MAX;

/// The writes in flight on one swap area, in completion order: a device
/// writes one page after another, so completion times only grow, and a
/// queue replaces the ordered set a search per write cost. An entry
/// whose page goes early is marked dead where it is (found by binary
/// search) and dropped when it reaches an end.
#[derive(Debug, Default)]
struct WriteQueue {
    /// (completion time, pfn or [`DEAD`]), completion times increasing.
    q: VecDeque<(u64, u64)>,
    /// Dead entries in `q`.
    dead: u64,
    /// When the queue drains: the last write's completion time.
    end: u64,
}

impl WriteQueue {
    /// Mark the write (`until`, `pfn`) dead, if it is still queued.
    fn kill(&mut self, until: u64, pfn: u64) {
        if let Ok(i) = self.q.binary_search_by_key(&until, |&(t, _)| t)
            && self.q[i].1 == pfn
        {
            self.q[i].1 = DEAD;
            self.dead += 1;
            while self.q.back().is_some_and(|&(_, p)| p == DEAD) {
                self.q.pop_back();
                self.dead -= 1;
            }
            while self.q.front().is_some_and(|&(_, p)| p == DEAD) {
                self.q.pop_front();
                self.dead -= 1;
            }
        }
    }

    /// Live writes still in flight at `now`.
    fn in_flight(&self, now: u64) -> u64 {
        let done = self.q.partition_point(|&(t, _)| t <= now);
        let dead_done = self.q.range(..done).filter(|&&(_, p)| p == DEAD).count() as u64;
        (self.q.len() - done) as u64 - (self.dead - dead_done)
    }
}

/// Page → slot (`folio->swap`), by pfn: a look-up is two array reads
/// next to the ones before it (reclaim and faults go through pages in pfn
/// order), where the hash map this replaces missed the host's caches at
/// every look into a big swap cache.
#[derive(Debug, Default)]
struct PfnSlots(Chunks<u64>);

impl PfnSlots {
    /// A slot as one word: offsets start at 1 (slot 0 is the swap
    /// header), so 0 stays free to mean "not cached".
    fn pack(entry: SwapEntry) -> u64 {
        (u64::from(entry.area) << 56) | entry.offset
    }

    fn unpack(word: u64) -> SwapEntry {
        SwapEntry {
            area: (word >> 56) as u8,
            offset: word & ((1 << 56) - 1),
        }
    }

    fn get(&self, pfn: Pfn) -> Option<SwapEntry> {
        self.0.get(pfn.index()).map(|&w| Self::unpack(w))
    }

    fn insert(&mut self, pfn: Pfn, entry: SwapEntry) {
        debug_assert!(entry.offset > 0, "slot 0 is the swap header");
        self.0.insert(pfn.index(), Self::pack(entry));
    }

    fn remove(&mut self, pfn: Pfn) {
        self.0.remove(pfn.index());
    }
}

/// The swap cache of every area (Linux: the swap address spaces, one
/// xarray per 64M of each area) and the global state of cluster readahead.
#[derive(Debug)]
pub struct SwapCache {
    /// Slot → page.
    pages: SwapIndex,
    /// Page → slot (`folio->swap`).
    by_pfn: PfnSlots,
    /// Writes in flight, a queue per area (indexed by swap type): for
    /// `Writeback` in meminfo and to rotate finished pages to the tail of
    /// the inactive list (`folio_rotate_reclaimable`).
    writeback: Vec<WriteQueue>,
    /// `swapin_readahead_hits`: cluster readahead's hits since its last
    /// window (starts at 4, as Linux's ATOMIC_INIT(4)).
    readahead_hits: u64,
    /// `swapin_nr_pages`' `prev_offset`.
    prev_offset: u64,
    /// `swapin_nr_pages`' `last_readahead_pages`.
    last_readahead_pages: u64,
}

impl Default for SwapCache {
    fn default() -> Self {
        SwapCache {
            pages: SwapIndex::default(),
            by_pfn: PfnSlots::default(),
            writeback: Vec::new(),
            readahead_hits: 4,
            prev_offset: 0,
            last_readahead_pages: 0,
        }
    }
}

impl SwapCache {
    /// Pages in the swap cache (NR_SWAPCACHE, meminfo SwapCached).
    pub fn len(&self) -> u64 {
        self.pages.len
    }

    /// True when no page is cached.
    pub fn is_empty(&self) -> bool {
        self.pages.len == 0
    }

    /// The cached page of `entry` (`swap_cache_get_folio`).
    pub fn lookup(&self, entry: SwapEntry) -> Option<Pfn> {
        self.pages.get(entry).map(|c| c.pfn)
    }

    /// The slot of a cached page (`folio->swap`).
    pub fn entry_of(&self, pfn: Pfn) -> Option<SwapEntry> {
        self.by_pfn.get(pfn)
    }

    /// Every cached (slot, page), by slot.
    pub fn iter(&self) -> impl Iterator<Item = (SwapEntry, Pfn)> + '_ {
        self.pages.iter()
    }

    /// PG_writeback of `entry`'s page at time `now`.
    pub fn under_writeback(&self, entry: SwapEntry, now: u64) -> bool {
        self.pages
            .slot(entry)
            .is_some_and(|c| c.writeback_until > now)
    }

    /// When the write of `entry`'s page completes, if it is in flight at `now`.
    pub fn writeback_until(&self, entry: SwapEntry, now: u64) -> Option<u64> {
        self.pages
            .slot(entry)
            .map(|c| c.writeback_until)
            .filter(|&t| t > now)
    }

    /// When the last write in flight completes (None when none ever
    /// started or all are done by the time asked about).
    pub fn last_writeback_end(&self) -> Option<u64> {
        self.writeback
            .iter()
            .filter_map(|w| w.q.back().map(|&(t, _)| t))
            .max()
    }

    /// Pages under writeback at `now` (NR_WRITEBACK's swap part).
    pub fn nr_writeback(&self, now: u64) -> u64 {
        self.writeback.iter().map(|w| w.in_flight(now)).sum()
    }

    fn insert(&mut self, entry: SwapEntry, pfn: Pfn, readahead: bool) {
        // One page a slot: the callers look the slot up first, but an
        // index must never keep a stale reverse entry.
        if let Some(old) = self.remove(entry) {
            debug_assert_eq!(old.pfn, pfn, "slot {entry:?} cached twice");
        }
        self.pages.insert(
            entry,
            CachedPage {
                pfn,
                writeback_until: 0,
                readahead,
            },
        );
        self.by_pfn.insert(pfn, entry);
    }

    fn remove(&mut self, entry: SwapEntry) -> Option<CachedPage> {
        let page = self.pages.remove(entry)?;
        self.by_pfn.remove(page.pfn);
        if page.writeback_until != 0
            && let Some(w) = self.writeback.get_mut(usize::from(entry.area))
        {
            w.kill(page.writeback_until, page.pfn.0);
        }
        Some(page)
    }

    /// Queue the write of `entry`'s page on its device at `now`: it
    /// completes one page time after the device's queue drains.
    fn start_writeback(&mut self, entry: SwapEntry, now: u64) -> u64 {
        let area = usize::from(entry.area);
        if self.writeback.len() <= area {
            self.writeback.resize_with(area + 1, WriteQueue::default);
        }
        let w = &mut self.writeback[area];
        let until = w.end.max(now) + cputime::SWAP_PAGE_IO_NS;
        w.end = until;
        if let Some(page) = self.pages.slot_mut(entry) {
            let pfn = page.pfn_ra & !RA_BIT;
            if page.writeback_until != 0 {
                w.kill(page.writeback_until, pfn);
            }
            page.writeback_until = until;
            w.q.push_back((until, pfn));
        }
        until
    }

    /// A fault's look at the cache: `entry`'s page and whether it was
    /// PG_readahead, which the hit clears (`folio_test_clear_readahead`).
    pub(crate) fn lookup_hit(&mut self, entry: SwapEntry) -> Option<(Pfn, bool)> {
        self.pages.slot_mut(entry).map(|c| {
            let readahead = c.pfn_ra & RA_BIT != 0;
            c.pfn_ra &= !RA_BIT;
            (Pfn(c.pfn_ra), readahead)
        })
    }

    /// Writes that completed by `now`, oldest first, taken off the list.
    fn completed(&mut self, now: u64) -> Vec<Pfn> {
        let mut done = Vec::new();
        for w in &mut self.writeback {
            while let Some(&(until, pfn)) = w.q.front() {
                if until > now {
                    break;
                }
                w.q.pop_front();
                if pfn == DEAD {
                    w.dead -= 1;
                } else {
                    done.push((until, pfn));
                }
            }
        }
        // Oldest first across the areas, as one ordered list gave them.
        done.sort_unstable();
        done.into_iter().map(|(_, pfn)| Pfn(pfn)).collect()
    }
}

/// `__swapin_nr_pages`: the readahead window after `hits` readahead hits,
/// for a fault at `offset` after one at `prev_offset` whose window was
/// `prev_win`: hits + 2 rounded up to a power of two (at least 4), or 2
/// without hits when the faults are adjacent, else 1; never more than
/// `max_pages`, and not below half the previous window.
pub fn swapin_nr_pages_for(
    prev_offset: u64,
    offset: u64,
    hits: u64,
    max_pages: u64,
    prev_win: u64,
) -> u64 {
    let mut pages = hits + 2;
    if pages == 2 {
        if offset != prev_offset.wrapping_add(1) && offset != prev_offset.wrapping_sub(1) {
            pages = 1;
        }
    } else {
        let mut roundup = 4;
        while roundup < pages {
            roundup <<= 1;
        }
        pages = roundup;
    }
    pages = pages.min(max_pages);
    // Don't shrink readahead too fast.
    pages.max(prev_win / 2)
}

/// `SWAP_RA_VAL`: a VMA's readahead state packed as Linux packs it (page
/// address, window, hits) in one word.
pub fn swap_ra_val(vpn: u64, win: u64, hits: u64) -> u64 {
    (vpn << PAGE_SHIFT)
        | ((win << SWAP_RA_WIN_SHIFT) & SWAP_RA_WIN_MASK)
        | (hits & SWAP_RA_HITS_MASK)
}

/// `GET_SWAP_RA_VAL` unpacked as (previous fault's vpn, window, hits): a
/// state never set reads as 4 hits, "to start up with a small window".
pub fn swap_ra_unpack(val: u64) -> (u64, u64, u64) {
    let val = if val == 0 { 4 } else { val };
    (
        val >> PAGE_SHIFT,
        (val & SWAP_RA_WIN_MASK) >> SWAP_RA_WIN_SHIFT,
        val & SWAP_RA_HITS_MASK,
    )
}

/// What reclaim did with one anon page (the anon outcomes of
/// `shrink_folio_list`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnonReclaim {
    /// The page is free.
    Freed,
    /// Its write is in flight: it stays in the swap cache, unmapped.
    Writeback,
    /// Kept as it was (no free slot, a failed write, too many mappers).
    Keep,
}

impl Kernel {
    /// `add_to_swap_cache`: `pfn`, just read from `entry`'s slot or given
    /// that slot, enters the swap cache (NR_FILE_PAGES and NR_SWAPCACHE
    /// count it). `own_ref`: the caller hands over the slot reference the
    /// cache holds (`add_to_swap`'s fresh slot); else the cache takes one.
    pub(crate) fn add_to_swap_cache(
        &mut self,
        entry: SwapEntry,
        pfn: Pfn,
        readahead: bool,
        own_ref: bool,
    ) -> bool {
        if !own_ref && !self.swap.swap_duplicate(entry) {
            return false;
        }
        self.swap.cache.insert(entry, pfn, readahead);
        true
    }

    /// `delete_from_swap_cache` + `put_swap_folio`: `pfn` leaves the swap
    /// cache and its reference to the slot goes (the last frees the slot).
    /// The caller makes sure no write is in flight.
    pub(crate) fn delete_from_swap_cache(&mut self, pfn: Pfn) {
        let Some(entry) = self.swap.cache.entry_of(pfn) else {
            return;
        };
        self.swap.cache.remove(entry);
        self.swap.free_slot(entry);
    }

    /// `folio_free_swap`: drop `pfn`'s swap slot and leave the swap cache
    /// when nothing else needs the copy on disk — no write in flight and
    /// no PTE holding the entry. The page is dirty then (no copy is
    /// left). True when it left.
    pub(crate) fn folio_free_swap(&mut self, pfn: Pfn) -> bool {
        let Some(entry) = self.swap.cache.entry_of(pfn) else {
            return false;
        };
        if self.swap.cache.under_writeback(entry, self.clock_ns) || self.swap.swap_count(entry) > 0
        {
            return false;
        }
        self.delete_from_swap_cache(pfn);
        self.page_alloc.frames.set_flag(pfn, FLAG_DIRTY, true);
        true
    }

    /// The last PTE mapping anon page `pfn` is gone (`page_remove_anon_rmap`
    /// said so): free it, or, while its swap copy is still needed (other
    /// PTEs hold the entry, or its write is in flight), leave it in the
    /// swap cache for reclaim (`free_swap_cache` + `folio_put`).
    pub(crate) fn release_anon_page(&mut self, pfn: Pfn) {
        if self.swap.cache.entry_of(pfn).is_some() && !self.folio_free_swap(pfn) {
            self.page_alloc.frames.set_kind(pfn, PageKind::SwapCache);
            return;
        }
        self.free_user_page(pfn);
    }

    /// `free_swap_and_cache`: a PTE holding `entry` was just zapped (its
    /// reference dropped). When only the swap cache holds the slot now
    /// and nobody maps its page, the page and the slot go.
    pub(crate) fn free_swap_and_cache(&mut self, entry: SwapEntry) {
        let Some(pfn) = self.swap.cache.lookup(entry) else {
            return;
        };
        if self.swap.swap_count(entry) == 0
            && self.page_alloc.frames.mapcount(pfn) == 0
            && !self.swap.cache.under_writeback(entry, self.clock_ns)
        {
            self.delete_from_swap_cache(pfn);
            self.free_user_page(pfn);
        }
    }

    /// The anon half of `shrink_folio_list` for one page (reclaim and
    /// MADV_PAGEOUT): a page whose write is in flight stays; a page
    /// without a slot gets one and enters the swap cache dirty
    /// (`add_to_swap`); a dirty page is written (`pageout`: asynchronous,
    /// it stays under writeback); every PTE mapping it becomes the swap
    /// entry (`try_to_unmap`); a clean, unmapped page leaves the cache and
    /// is freed (`__remove_mapping`) — a second pageout of a page that was
    /// read back and not written costs no I/O.
    pub(crate) fn shrink_anon_folio(&mut self, pfn: Pfn) -> AnonReclaim {
        let now = self.clock_ns;
        let cached = self.swap.cache.entry_of(pfn);
        if let Some(entry) = cached
            && self.swap.cache.under_writeback(entry, now)
        {
            return AnonReclaim::Writeback;
        }
        let mappers = if self.page_alloc.frames.mapcount(pfn) > 0 {
            self.rmap_walk_anon(pfn)
        } else {
            Vec::new()
        };
        // Each PTE takes a slot reference, the cache one more: all of them
        // must fit in the slot's count, or none is taken.
        let held = cached.map_or(1, |e| self.swap.swap_map_count(e));
        if held + mappers.len() as u64 > SWAP_MAP_MAX {
            return AnonReclaim::Keep;
        }
        let entry = match cached {
            Some(entry) => entry,
            None => {
                if mappers.is_empty() {
                    return AnonReclaim::Keep;
                }
                let (mm_slot, vpn) = self.page_alloc.frames.rmap(pfn);
                let Some(entry) = self.swap.get_swap_page(pack_owner(mm_slot, vpn)) else {
                    return AnonReclaim::Keep;
                };
                // add_to_swap: the new slot's reference is the cache's,
                // and the page has no copy on disk yet.
                self.add_to_swap_cache(entry, pfn, false, true);
                self.page_alloc.frames.set_flag(pfn, FLAG_DIRTY, true);
                entry
            }
        };
        if mappers.is_empty() && self.swap.swap_count(entry) == 0 {
            // Nobody needs the copy any more (its PTEs were zapped while
            // the write was in flight): drop the page without writing.
            self.delete_from_swap_cache(pfn);
            self.free_user_page(pfn);
            return AnonReclaim::Freed;
        }
        // try_to_unmap moves the PTEs' dirty bits to the page; read them
        // first, so that a failed write leaves the page mapped as it was.
        let dirty = self.page_alloc.frames.has_flag(pfn, FLAG_DIRTY)
            || mappers.iter().any(|&(m, v)| self.pte(m, v).is_dirty());
        if dirty && !self.swap_writeout(pfn, entry) {
            if cached.is_none() {
                self.delete_from_swap_cache(pfn);
            }
            return AnonReclaim::Keep;
        }
        self.try_to_unmap_anon(pfn, entry, &mappers);
        if dirty {
            return AnonReclaim::Writeback;
        }
        self.delete_from_swap_cache(pfn);
        self.free_user_page(pfn);
        AnonReclaim::Freed
    }

    /// `swap_writepage` of a swap-cache page: its bytes are copied to the
    /// slot now (the page keeps them) and the write is queued on the
    /// device; the page is clean and under writeback until it completes.
    /// False when the write fails (dmesg says why, rate limited).
    pub(crate) fn swap_writeout(&mut self, pfn: Pfn, entry: SwapEntry) -> bool {
        let bytes = self.page_contents.get(pfn).map(|b| Box::new(**b));
        if let Err((err, _)) = self.swap_writepage(entry, bytes) {
            // pr_alert_ratelimited: a full disk must not evict the boot log.
            let (print, suppressed) = self.swap_write_ratelimit.allow(self.clock_ns);
            if suppressed > 0 {
                self.printk(format!(
                    "__end_swap_bio_write: {suppressed} callbacks suppressed"
                ));
            }
            if print {
                self.printk(format!(
                    "Write-error on swap-device: {err}; page kept in memory"
                ));
            }
            return false;
        }
        self.page_alloc.frames.set_flag(pfn, FLAG_DIRTY, false);
        self.swap.cache.start_writeback(entry, self.clock_ns);
        self.account_system(cputime::PAGEOUT_NS);
        self.events.pswpout += 1;
        self.events.pgpgout += PAGE_SIZE / 1024;
        true
    }

    /// `try_to_unmap` of a swap-cache page: each PTE in `mappers` becomes
    /// `entry` with a slot reference of its own (`swap_duplicate`), RSS
    /// and swap counts follow; the page stays in the cache, unmapped.
    fn try_to_unmap_anon(&mut self, pfn: Pfn, entry: SwapEntry, mappers: &[(MmSlot, u64)]) {
        for &(slot, vpn) in mappers {
            self.swap.swap_duplicate(entry);
            if let Some(p) = self.pte_mut(slot, vpn) {
                *p = Pte::from_swap(entry.area, entry.offset).0;
            }
            if let Ok(mm) = self.procs.mm_mut(slot) {
                mm.update_hiwater_rss();
                mm.rss_anon -= 1;
                mm.swap_ents += 1;
            }
            self.page_alloc.frames.remove_map(pfn);
        }
        if let Some(&(slot, vpn)) = mappers.first() {
            self.procs.nr_anon_mapped -= 1;
            self.page_alloc.frames.set_kind(pfn, PageKind::SwapCache);
            // swapoff walks slots by owner: name one that holds it.
            self.swap.set_owner(entry, pack_owner(slot, Vpn(vpn)));
        }
    }

    /// `folio_rotate_reclaimable`, done when reclaim next looks: pages
    /// whose writes have completed move to the tail of their inactive
    /// list, so the next scan frees them first.
    pub(crate) fn swap_writeback_done(&mut self) {
        for pfn in self.swap.cache.completed(self.clock_ns) {
            let frames = &self.page_alloc.frames;
            if self.swap.cache.entry_of(pfn).is_none()
                || frames.mapcount(pfn) > 0
                || !frames.has_flag(pfn, FLAG_LRU)
                || frames.has_flag(pfn, FLAG_ACTIVE)
            {
                continue;
            }
            let Some(zone) = self.page_alloc.zone_of(pfn) else {
                continue;
            };
            let frames = &mut self.page_alloc.frames;
            let inactive = &mut self.lru.zones[zone].inactive_anon;
            inactive.remove(frames, pfn);
            inactive.push_tail(frames, pfn);
        }
    }

    /// Reclaim that freed nothing waits for the writes it started
    /// (`reclaim_throttle(VMSCAN_THROTTLE_WRITEBACK)`): the clock moves to
    /// the last completion among `pages` (iowait of the reclaiming task),
    /// then the pages that are now clean and unmapped are freed. Returns
    /// the pages freed.
    pub(crate) fn reclaim_wait_writeback(&mut self, pages: &[Pfn]) -> u64 {
        let now = self.clock_ns;
        let last = pages
            .iter()
            .filter_map(|&pfn| {
                let entry = self.swap.cache.entry_of(pfn)?;
                self.swap.cache.writeback_until(entry, now)
            })
            .max();
        let Some(last) = last else {
            return 0;
        };
        self.account_iowait(last - now);
        let mut freed = 0;
        for &pfn in pages {
            if self.swap.cache.entry_of(pfn).is_some()
                && self.page_alloc.frames.mapcount(pfn) == 0
                && self.shrink_anon_folio(pfn) == AnonReclaim::Freed
            {
                freed += 1;
            }
        }
        freed
    }

    /// The swap half of `do_swap_page` for the swap entry at `vpn` of
    /// `slot`: the page from the swap cache (a minor fault), or read with
    /// readahead (`swapin_readahead`, a major fault), then mapped. True
    /// for a major fault.
    pub(crate) fn swapin_fault(
        &mut self,
        slot: MmSlot,
        table: u32,
        vpn: u64,
        pte: Pte,
        write: bool,
        vma_write: bool,
    ) -> MmResult<(bool, Option<Pte>)> {
        if !pte.is_swap() {
            return Ok((false, None));
        }
        let entry = pte.swp_entry();
        // The common case, a hit, in one look at the index
        // (`swap_cache_get_folio` + `folio_test_clear_readahead`).
        if let Some((pfn, readahead)) = self.swap.cache.lookup_hit(entry) {
            self.swap_update_readahead(readahead, Some((slot, vpn)));
            let mapped = self.map_swapcache_page(slot, table, vpn, entry, pfn, write, vma_write)?;
            return Ok((false, Some(mapped)));
        }
        self.swapin_readahead(entry, slot, vpn)?;
        // The fault waits for its own page; the rest of the batch is read
        // in the same request.
        self.account_iowait(cputime::SWAP_PAGE_IO_NS);
        let major = true;
        // Allocations for the readahead may have reclaimed the page just
        // read (clean and unmapped): read it again alone then.
        let pfn = match self.swap.cache.lookup(entry) {
            Some(pfn) => pfn,
            None => match self.read_swap_cache_async(entry, (slot, vpn))? {
                Some(pfn) => pfn,
                None => return Ok((major, None)),
            },
        };
        // Reclaim may have run meanwhile: the PTE must still hold the
        // entry (`pte_same`), else there is nothing to map.
        if self.pte_at(slot, table, vpn) != pte {
            return Ok((major, None));
        }
        let mapped = self.map_swapcache_page(slot, table, vpn, entry, pfn, write, vma_write)?;
        Ok((major, Some(mapped)))
    }

    /// The mapping half of `do_swap_page` (also swapoff's `unuse_pte`):
    /// the PTE at `vpn` of `slot`, holding `entry`, maps the cached page
    /// `pfn` instead and drops its slot reference (`swap_free`). The page
    /// is exclusive when no other PTE maps it or holds the entry; then it
    /// is mapped writable if the VMA is (dirty on a write fault), else
    /// read-only (copy-on-write). `should_try_to_free_swap`: a write fault
    /// on an exclusive page, or swap more than half full, frees the slot.
    /// Returns the PTE set.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn map_swapcache_page(
        &mut self,
        slot: MmSlot,
        table: u32,
        vpn: u64,
        entry: SwapEntry,
        pfn: Pfn,
        write: bool,
        vma_write: bool,
    ) -> MmResult<Pte> {
        let was_mapped = self.page_alloc.frames.mapcount(pfn) > 0;
        // The page is cached, so one of the references left is the
        // cache's own (SWAP_HAS_CACHE): the rest are other PTEs.
        debug_assert_eq!(self.swap.cache.lookup(entry), Some(pfn));
        let others = self.swap.free_slot(entry).saturating_sub(1);
        if others > 0 {
            self.swap_owner_handover(entry, slot, vpn);
        }
        let exclusive = !was_mapped && others == 0;
        if self.swap.vm_swap_full() || (write && exclusive) {
            self.folio_free_swap(pfn);
        }
        let writable = vma_write && exclusive;
        let pte = Pte::page(pfn, writable, write && writable);
        let index = self.procs.geometry().pte_index(vpn);
        // One look at the process for the entry and both counters: this
        // is the hot half of every swap-cache hit.
        let mm = self.procs.mm_mut(slot)?;
        mm.pgtables.set_entry(table, index, pte);
        mm.rss_anon += 1;
        mm.swap_ents -= 1;
        self.page_add_anon_rmap(pfn, slot, vpn);
        self.page_alloc.frames.set_kind(pfn, PageKind::UserAnon);
        Ok(pte)
    }

    /// `swap_update_readahead`: a fault found its page in the swap cache.
    /// A readahead page's first hit counts (swap_ra_hit) and feeds the
    /// next window: the VMA's hits (VMA readahead, a fault in a VMA) or
    /// the global count (cluster readahead, or no VMA: shmem). VMA
    /// readahead remembers the fault's address. `readahead`: the page was
    /// PG_readahead (now cleared); `vma`: the faulting (slot, vpn), None
    /// for shmem's index (`swap_update_readahead(folio, NULL, 0)`).
    pub(crate) fn swap_update_readahead(&mut self, readahead: bool, vma: Option<(MmSlot, u64)>) {
        let vma_ra = self.swap.nr_rotate_swap() == 0 && vma.is_some();
        if vma_ra
            && let Some((slot, vpn)) = vma
            && let Ok(mm) = self.procs.mm_mut(slot)
        {
            let (_, win, mut hits) = swap_ra_unpack(mm.swap_ra);
            if readahead {
                hits = (hits + 1).min(SWAP_RA_HITS_MASK);
            }
            mm.swap_ra = swap_ra_val(vpn, win, hits);
        }
        if readahead {
            self.events.swap_ra_hit += 1;
            if !vma_ra {
                self.swap.cache.readahead_hits += 1;
            }
        }
    }

    /// `__read_swap_cache_async` + `swap_read_folio`: a new page for
    /// `entry`, read from its slot into the swap cache (inactive anon LRU,
    /// pswpin). None when the entry is cached already or its slot is no
    /// longer used. `owner` is a PTE holding the entry (the page's reverse
    /// map until a fault maps it).
    pub(crate) fn read_swap_cache_async(
        &mut self,
        entry: SwapEntry,
        owner: (MmSlot, u64),
    ) -> MmResult<Option<Pfn>> {
        if self.swap.cache.lookup(entry).is_some() || self.swap.swap_count(entry) == 0 {
            return Ok(None);
        }
        let pfn = self.alloc_user_page()?;
        // The allocation may have reclaimed, or the OOM killer may have
        // freed the slot: look again.
        if self.swap.cache.lookup(entry).is_some() || self.swap.swap_count(entry) == 0 {
            self.free_kernel_page(pfn);
            return Ok(None);
        }
        let bytes = match self.swap_read_folio(entry) {
            Ok(bytes) => bytes,
            Err(err) => {
                self.free_kernel_page(pfn);
                return Err(err);
            }
        };
        if !self.add_to_swap_cache(entry, pfn, false, false) {
            self.free_kernel_page(pfn);
            return Err(MmError::NoMemory(format!(
                "swap slot {} of area {} has too many references",
                entry.offset, entry.area
            )));
        }
        if let Some(bytes) = bytes {
            self.put_page_bytes(pfn, bytes);
        }
        let frames = &mut self.page_alloc.frames;
        frames.set_kind(pfn, PageKind::SwapCache);
        frames.set_flag(pfn, FLAG_DIRTY, false);
        frames.set_rmap(pfn, owner.0, Vpn(owner.1));
        self.lru_add_anon(pfn);
        self.events.pswpin += 1;
        self.events.pgpgin += PAGE_SIZE / 1024;
        Ok(Some(pfn))
    }

    /// `swapin_readahead`: read `entry`'s page (faulted at `vpn` of
    /// `slot`) and the pages readahead picks into the swap cache — VMA
    /// readahead when no rotational area is on, cluster readahead
    /// otherwise (`swap_use_vma_readahead`).
    fn swapin_readahead(&mut self, entry: SwapEntry, slot: MmSlot, vpn: u64) -> MmResult<()> {
        if self.swap.nr_rotate_swap() == 0 {
            self.swap_vma_readahead(entry, slot, vpn)
        } else {
            self.swap_cluster_readahead(entry, slot, vpn)
        }
    }

    /// One page of a readahead batch: read it, and unless it is the
    /// faulting page mark it PG_readahead (swap_ra). A failure to read a
    /// neighbour ends the batch quietly (false); the faulting page's
    /// failure is the fault's.
    fn readahead_one(
        &mut self,
        entry: SwapEntry,
        owner: (MmSlot, u64),
        target: bool,
    ) -> MmResult<bool> {
        match self.read_swap_cache_async(entry, owner) {
            Ok(Some(_)) => {
                if !target {
                    if let Some(c) = self.swap.cache.pages.slot_mut(entry) {
                        c.pfn_ra |= RA_BIT;
                    }
                    self.events.swap_ra += 1;
                }
                Ok(true)
            }
            Ok(None) => Ok(true),
            Err(err) if target => Err(err),
            Err(_) => Ok(false),
        }
    }

    /// `swap_vma_ra_win` + `swap_vma_readahead`: the window of virtual
    /// pages around the fault that `swapin_nr_pages` sizes from the
    /// readahead hits of this address space — ahead of the fault when it
    /// follows the previous one, behind it when it precedes it, centred
    /// otherwise — inside the VMA and the fault's page-table page; every
    /// swap entry in it is read.
    fn swap_vma_readahead(&mut self, entry: SwapEntry, slot: MmSlot, vpn: u64) -> MmResult<()> {
        let max_win = 1u64 << self.sysctl.page_cluster.min(SWAP_RA_ORDER_CEILING);
        let (vma_start, vma_end) = self
            .procs
            .get(slot)
            .and_then(|p| p.mm.vma_lookup(vpn << PAGE_SHIFT))
            .map(|v| (v.start_vpn(), v.end_vpn()))
            .unwrap_or((vpn, vpn + 1));
        let mut window = (vpn, vpn + 1);
        if max_win > 1 {
            let per_table = self.procs.geometry().entries() as u64;
            let mm = self.procs.mm_mut(slot)?;
            let (prev, prev_win, hits) = swap_ra_unpack(mm.swap_ra);
            let win = swapin_nr_pages_for(prev, vpn, hits, max_win, prev_win);
            mm.swap_ra = swap_ra_val(vpn, win, 0);
            if win > 1 {
                let (v, w) = (vpn as i64, win as i64);
                let left = if vpn == prev.wrapping_add(1) {
                    v
                } else if prev == vpn + 1 {
                    v - w + 1
                } else {
                    v - (w - 1) / 2
                };
                let right = (left + w).max(0) as u64;
                let left = left.max(0) as u64;
                let pmd = vpn / per_table * per_table;
                window = (
                    left.max(vma_start).max(pmd),
                    right.min(vma_end).min(pmd + per_table),
                );
            }
        }
        for v in window.0..window.1 {
            let pte = if v == vpn {
                Pte::from_swap(entry.area, entry.offset)
            } else {
                self.pte(slot, v)
            };
            if !pte.is_swap() {
                continue;
            }
            if !self.readahead_one(pte.swp_entry(), (slot, v), v == vpn)? {
                break;
            }
        }
        Ok(())
    }

    /// `swapin_nr_pages` for cluster readahead: the window from the global
    /// hit count (taken and reset) and the previous fault's offset.
    fn swapin_nr_pages(&mut self, offset: u64) -> u64 {
        let max_pages = 1u64 << self.sysctl.page_cluster;
        if max_pages <= 1 {
            return 1;
        }
        let cache = &mut self.swap.cache;
        let hits = std::mem::take(&mut cache.readahead_hits);
        let pages = swapin_nr_pages_for(
            cache.prev_offset,
            offset,
            hits,
            max_pages,
            cache.last_readahead_pages,
        );
        if hits == 0 {
            cache.prev_offset = offset;
        }
        cache.last_readahead_pages = pages;
        pages
    }

    /// `swap_cluster_readahead`: the aligned block of 2^n slots around the
    /// faulting one (n from `swapin_nr_pages`, at most `page-cluster`),
    /// whatever the pages are — neighbouring slots were written together.
    pub(crate) fn swap_cluster_readahead(
        &mut self,
        entry: SwapEntry,
        slot: MmSlot,
        vpn: u64,
    ) -> MmResult<()> {
        let offset = entry.offset;
        let mask = self.swapin_nr_pages(offset) - 1;
        let max = self
            .swap
            .areas
            .get(usize::from(entry.area))
            .and_then(Option::as_ref)
            .map_or(offset + 1, |a| a.max);
        let (mut start, mut end) = (offset, offset);
        if mask > 0 {
            start = (offset & !mask).max(1);
            end = (offset | mask).min(max - 1);
        }
        for off in start..=end {
            let e = SwapEntry {
                area: entry.area,
                offset: off,
            };
            let owner = if off == offset {
                Some((slot, vpn))
            } else {
                self.swap
                    .areas
                    .get(usize::from(entry.area))
                    .and_then(Option::as_ref)
                    .and_then(|a| a.owner(off))
                    .map(|(m, v)| (m, v.0))
            };
            let Some(owner) = owner else {
                continue;
            };
            if !self.readahead_one(e, owner, off == offset)? {
                break;
            }
        }
        Ok(())
    }

    /// swapoff's `unuse_pte_range` + `try_to_unuse` for one slot whose
    /// recorded owner is `owner`: its page (from the swap cache, or read)
    /// is mapped into every PTE of the owner's family that holds the
    /// entry, then leaves the swap cache, which frees the slot (waiting
    /// for a write in flight first). A cached page nobody maps is freed.
    pub(crate) fn unuse_swap_entry(
        &mut self,
        entry: SwapEntry,
        owner: (MmSlot, Vpn),
    ) -> MmResult<()> {
        if self.shmem_unuse(entry)? {
            // A shmem index held it: the page is back there.
            return Ok(());
        }
        let (mut slot, Vpn(vpn)) = owner;
        let swp = Pte::from_swap(entry.area, entry.offset);
        if self.swap.swap_count(entry) > 0 && self.pte(slot, vpn) != swp {
            // The recorded owner let go (or is gone): any process whose
            // PTE at that page holds the entry will do (entries are only
            // shared at the same address).
            if let Some(other) = self
                .procs
                .iter_slots()
                .map(|(m, _)| m)
                .find(|&m| self.pte(m, vpn) == swp)
            {
                slot = other;
            }
        }
        if self.swap.swap_count(entry) > 0 && self.pte(slot, vpn) == swp {
            let pfn = match self.swap.cache.lookup(entry) {
                Some(pfn) => Some(pfn),
                None => self.read_swap_cache_async(entry, (slot, vpn))?,
            };
            if let Some(pfn) = pfn {
                let holders: Vec<MmSlot> = self
                    .procs
                    .family_of(slot)
                    .into_iter()
                    .filter(|&m| self.pte(m, vpn) == swp)
                    .collect();
                for m in holders {
                    let Some((vma_write, table)) = self.procs.get(m).and_then(|p| {
                        let table = p.mm.pgtables.walk(vpn)?.0;
                        let vma = p.mm.vma_lookup(vpn << PAGE_SHIFT);
                        Some((vma.is_some_and(|v| v.flags.is_write()), table))
                    }) else {
                        continue;
                    };
                    // unuse_pte maps it old: nobody touched it.
                    let pte =
                        self.map_swapcache_page(m, table, vpn, entry, pfn, false, vma_write)?;
                    self.set_pte_at(m, table, vpn, Pte(pte.0 & !super::memory::PTE_ACCESSED));
                }
            }
        }
        if let Some(pfn) = self.swap.cache.lookup(entry) {
            if let Some(until) = self.swap.cache.writeback_until(entry, self.clock_ns) {
                self.account_iowait(until - self.clock_ns);
            }
            if self.swap.swap_count(entry) > 0 {
                // A PTE the walk did not reach still holds it: leave the
                // page cached; swapoff's page-table walk finds that PTE.
                return Ok(());
            }
            self.delete_from_swap_cache(pfn);
            self.page_alloc.frames.set_flag(pfn, FLAG_DIRTY, true);
            if self.page_alloc.frames.mapcount(pfn) == 0 {
                self.free_user_page(pfn);
            }
        }
        Ok(())
    }

    /// `try_to_unuse`'s last resort: walk every page table for PTEs that
    /// still hold a slot of area `index` (their recorded owner was stale)
    /// and bring those pages back the same way; then drop whatever the
    /// swap cache still holds of the area.
    pub(crate) fn unuse_area_by_walk(&mut self, index: usize) -> MmResult<()> {
        let mut found: Vec<(SwapEntry, MmSlot, u64)> = Vec::new();
        for (m, p) in self.procs.iter_slots() {
            let pt = &p.mm.pgtables;
            let task_vpns = p.mm.layout.task_size >> PAGE_SHIFT;
            for (table, lo, hi, first) in pt.pte_tables(0, task_vpns) {
                for (i, &e) in pt.entries(table)[lo..hi].iter().enumerate() {
                    let pte = Pte(e);
                    if pte.is_swap() && usize::from(pte.swp_entry().area) == index {
                        found.push((pte.swp_entry(), m, first + i as u64));
                    }
                }
            }
        }
        for (entry, m, vpn) in found {
            self.unuse_swap_entry(entry, (m, Vpn(vpn)))?;
        }
        let left: Vec<(SwapEntry, Pfn)> = self
            .swap
            .cache
            .iter()
            .filter(|(e, _)| usize::from(e.area) == index)
            .collect();
        for (entry, _) in left {
            self.unuse_swap_entry(entry, (MmSlot(0), Vpn(0)))?;
        }
        Ok(())
    }

    /// Check the swap cache: every cached page is an allocated page on
    /// the anon LRU, mapped (UserAnon) or not (SwapCache kind), indexed
    /// both ways; every used slot counts its swap PTEs plus one for a
    /// cached page (`swap_map` = PTEs + SWAP_HAS_CACHE).
    pub fn check_swap_cache(&self) -> Result<(), String> {
        let frames = &self.page_alloc.frames;
        for (entry, pfn) in self.swap.cache.iter() {
            if self.swap.cache.entry_of(pfn) != Some(entry) {
                return Err(format!("swap cache: pfn {pfn} indexed under another slot"));
            }
            if frames.state(pfn) != super::page_alloc::FrameState::Allocated
                || !frames.has_flag(pfn, FLAG_LRU)
            {
                return Err(format!(
                    "swap cache: pfn {pfn} is not an allocated LRU page"
                ));
            }
            let want = if frames.mapcount(pfn) > 0 {
                PageKind::UserAnon
            } else {
                PageKind::SwapCache
            };
            if frames.kind(pfn) != want {
                return Err(format!(
                    "swap cache: pfn {pfn} with map count {} is a {:?} page",
                    frames.mapcount(pfn),
                    frames.kind(pfn)
                ));
            }
            if self.swap.swap_map_count(entry) == 0 {
                return Err(format!("swap cache: pfn {pfn} holds free slot {entry:?}"));
            }
        }
        let mut ptes: BTreeMap<SwapEntry, u64> = BTreeMap::new();
        for p in self.procs.iter() {
            let pt = &p.mm.pgtables;
            let task_vpns = p.mm.layout.task_size >> PAGE_SHIFT;
            for (table, lo, hi, _) in pt.pte_tables(0, task_vpns) {
                for &e in &pt.entries(table)[lo..hi] {
                    if Pte(e).is_swap() {
                        *ptes.entry(Pte(e).swp_entry()).or_default() += 1;
                    }
                }
            }
        }
        // A shmem index holding a swap entry holds one reference too.
        for entry in self.shmem.swap_refs() {
            *ptes.entry(entry).or_default() += 1;
        }
        for (area_index, area) in self.swap.areas.iter().enumerate() {
            let Some(area) = area else {
                continue;
            };
            for (offset, _) in area.used_slots() {
                let entry = SwapEntry {
                    area: area_index as u8,
                    offset,
                };
                let want = ptes.get(&entry).copied().unwrap_or(0)
                    + u64::from(self.swap.cache.lookup(entry).is_some());
                if area.count(offset) != want {
                    return Err(format!(
                        "swap slot {entry:?}: count {} but {} PTEs and {} cached page",
                        area.count(offset),
                        ptes.get(&entry).copied().unwrap_or(0),
                        u64::from(self.swap.cache.lookup(entry).is_some())
                    ));
                }
            }
        }
        if let Some((entry, _)) = ptes
            .iter()
            .find(|(e, _)| self.swap.swap_map_count(**e) == 0)
        {
            return Err(format!("a PTE holds free swap slot {entry:?}"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mm::process::testing::*;
    use crate::mm::types::Pid;

    /// The write queues give what one ordered set of (completion, pfn)
    /// gave: oldest first across areas, a write whose page went early
    /// neither counted in flight nor reported done, the count right on
    /// either side of `now`.
    #[test]
    fn write_queues_complete_oldest_first_and_forget_pages_gone() {
        let mut c = SwapCache::default();
        let e = |area: u8, offset: u64| SwapEntry { area, offset };
        for (i, entry) in [e(0, 1), e(1, 1), e(0, 2), e(0, 3), e(1, 2)]
            .into_iter()
            .enumerate()
        {
            c.insert(entry, Pfn(100 + i as u64), false);
        }
        let io = cputime::SWAP_PAGE_IO_NS;
        // Area 0 writes 1, 2, 3 at io, 2io, 3io; area 1 writes its two at
        // io, 2io (a device of its own), the second started late at 5io.
        for entry in [e(0, 1), e(1, 1), e(0, 2), e(0, 3)] {
            c.start_writeback(entry, 0);
        }
        c.start_writeback(e(1, 2), 5 * io);
        assert_eq!(c.nr_writeback(0), 5);
        assert_eq!(c.last_writeback_end(), Some(6 * io));
        // The page of (0, 2) leaves the cache mid-write; (0, 3) starts over.
        c.remove(e(0, 2));
        c.start_writeback(e(0, 3), io);
        assert_eq!(c.nr_writeback(0), 4);
        assert_eq!(c.nr_writeback(io), 2, "(0, 3) again, and (1, 2)");
        assert_eq!(c.completed(io), vec![Pfn(100), Pfn(101)]);
        assert_eq!(c.completed(4 * io), vec![Pfn(103)]);
        assert_eq!(c.nr_writeback(4 * io), 1);
        assert_eq!(c.completed(6 * io), vec![Pfn(104)]);
        assert_eq!(c.nr_writeback(6 * io), 0);
        assert!(c.writeback.iter().all(|w| w.q.is_empty() && w.dead == 0));
    }

    /// The counters the reference program prints after each step.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    struct Step {
        minflt: u64,
        majflt: u64,
        pswpin: u64,
        pswpout: u64,
        swap_ra: u64,
        swap_ra_hit: u64,
        swap_cached_kb: u64,
        swap_used_kb: u64,
    }

    fn counters(k: &Kernel, pid: Pid) -> Step {
        let p = k.procs.by_pid(pid).unwrap();
        Step {
            minflt: p.min_flt,
            majflt: p.maj_flt,
            pswpin: k.events.pswpin,
            pswpout: k.events.pswpout,
            swap_ra: k.events.swap_ra,
            swap_ra_hit: k.events.swap_ra_hit,
            swap_cached_kb: k.swap.cache.len() * 4,
            swap_used_kb: (k.swap.total_pages() - k.swap.free_pages()) * 4,
        }
    }

    /// Run one step, returning the deltas (and the levels after it).
    fn step(k: &mut crate::ctl::Machine, pid: Pid, line: &str) -> Step {
        let a = counters(k, pid);
        run(k, pid, line).unwrap();
        let b = counters(k, pid);
        Step {
            minflt: b.minflt - a.minflt,
            majflt: b.majflt - a.majflt,
            pswpin: b.pswpin - a.pswpin,
            pswpout: b.pswpout - a.pswpout,
            swap_ra: b.swap_ra - a.swap_ra,
            swap_ra_hit: b.swap_ra_hit - a.swap_ra_hit,
            ..b
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn want(
        minflt: u64,
        majflt: u64,
        pswpin: u64,
        pswpout: u64,
        swap_ra: u64,
        swap_ra_hit: u64,
        swap_cached_kb: u64,
        swap_used_kb: u64,
    ) -> Step {
        Step {
            minflt,
            majflt,
            pswpin,
            pswpout,
            swap_ra,
            swap_ra_hit,
            swap_cached_kb,
            swap_used_kb,
        }
    }

    /// tests/reference/linux-samples/swap-cache.c in a new process, in a
    /// 1 MiB region on a 2M boundary: the five steps' counters.
    fn experiment(k: &mut crate::ctl::Machine, name: &str) -> [Step; 5] {
        let pid = spawn(k, name);
        run(k, pid, "mmap 1M name=buf addr=0x40000000").unwrap();
        let write = step(k, pid, "touch buf 1M write");
        let pageout = step(k, pid, "madvise buf 1M pageout");
        // The program sleeps a second: the writes complete meanwhile.
        sys(k, "tick 100").unwrap();
        let read = step(k, pid, "touch buf 1M read");
        let pageout2 = step(k, pid, "madvise buf 1M pageout");
        let write2 = step(k, pid, "touch buf 1M write");
        sys(k, &format!("kill {pid}")).unwrap();
        [write, pageout, read, pageout2, write2]
    }

    /// The swap-cache experiment on a non-rotational device, against this
    /// machine's Linux 6.18 (tests/reference/linux-samples/swap-cache.txt,
    /// case A, three identical runs): MADV_PAGEOUT writes 256 pages that
    /// stay in the swap cache; reading them back is 256 minor faults with
    /// pswpin 0 and the slots held; a second MADV_PAGEOUT writes nothing
    /// and drops them; writing them sequentially is 33 major faults with
    /// 223 pages of VMA readahead, all hit, and frees every slot.
    #[test]
    fn swap_cache_experiment_matches_the_real_kernel_vma_readahead() {
        let mut k = boot(crate::mm::types::Arch::X86_64, 1 << 30);
        k.swap.swapdir = std::env::temp_dir();
        sys(&mut k, "mkswap /dev/sdb 256M").unwrap();
        sys(&mut k, "swapon /dev/sdb").unwrap();
        let [write, pageout, read, pageout2, write2] = experiment(&mut k, "ref");
        assert_eq!(write, want(256, 0, 0, 0, 0, 0, 0, 0));
        assert_eq!(pageout, want(0, 0, 0, 256, 0, 0, 1024, 1024));
        assert_eq!(read, want(256, 0, 0, 0, 0, 0, 1024, 1024));
        assert_eq!(pageout2, want(0, 0, 0, 0, 0, 0, 0, 1024));
        assert_eq!(write2, want(223, 33, 256, 0, 223, 223, 0, 0));
    }

    /// The same on a rotational device: cluster readahead with its global
    /// hit count (case B of swap-cache.txt). The first swap-in since boot
    /// starts from 4 hits and slots 1..256: 33 major faults, 223 read
    /// ahead; the next run starts from what that left (no hits, a window
    /// of 8) in slots 257..512: 34 and 222.
    #[test]
    fn swap_cache_experiment_matches_the_real_kernel_cluster_readahead() {
        let mut k = boot(crate::mm::types::Arch::X86_64, 1 << 30);
        k.swap.swapdir = std::env::temp_dir();
        sys(&mut k, "mkswap /dev/sdb 256M rotational").unwrap();
        sys(&mut k, "swapon /dev/sdb").unwrap();
        let first = experiment(&mut k, "ref1");
        assert_eq!(first[1], want(0, 0, 0, 256, 0, 0, 1024, 1024));
        assert_eq!(first[2], want(256, 0, 0, 0, 0, 0, 1024, 1024));
        assert_eq!(first[3], want(0, 0, 0, 0, 0, 0, 0, 1024));
        assert_eq!(first[4], want(223, 33, 256, 0, 223, 223, 0, 0));
        let second = experiment(&mut k, "ref2");
        assert_eq!(second[4], want(222, 34, 256, 0, 222, 222, 0, 0));
    }

    #[test]
    fn window_sizes_follow_swapin_nr_pages() {
        // No hits: 2 pages for an adjacent fault, else 1.
        assert_eq!(swapin_nr_pages_for(10, 11, 0, 8, 0), 2);
        assert_eq!(swapin_nr_pages_for(10, 9, 0, 8, 0), 2);
        assert_eq!(swapin_nr_pages_for(10, 20, 0, 8, 0), 1);
        // Hits + 2 rounded up to a power of two, at least 4, at most max.
        assert_eq!(swapin_nr_pages_for(0, 50, 1, 8, 0), 4);
        assert_eq!(swapin_nr_pages_for(0, 50, 3, 8, 0), 8);
        assert_eq!(swapin_nr_pages_for(0, 50, 7, 8, 0), 8);
        assert_eq!(swapin_nr_pages_for(0, 50, 7, 32, 0), 16);
        // Never below half the last window.
        assert_eq!(swapin_nr_pages_for(10, 20, 0, 8, 8), 4);
        // The packed state: never set reads as 4 hits.
        assert_eq!(swap_ra_unpack(0), (0, 0, 4));
        assert_eq!(swap_ra_unpack(swap_ra_val(0x1234, 8, 5)), (0x1234, 8, 5));
    }

    #[test]
    fn page_cluster_zero_reads_one_page_a_fault() {
        let mut k = boot(crate::mm::types::Arch::X86_64, 1 << 30);
        k.swap.swapdir = std::env::temp_dir();
        sys(&mut k, "mkswap /dev/sdb 16M").unwrap();
        sys(&mut k, "swapon /dev/sdb").unwrap();
        k.sysctl_write("vm/page-cluster", "0").unwrap();
        let pid = spawn(&mut k, "p");
        run(&mut k, pid, "mmap 64K name=buf").unwrap();
        run(&mut k, pid, "touch buf 64K").unwrap();
        run(&mut k, pid, "madvise buf 64K pageout").unwrap();
        sys(&mut k, "tick").unwrap();
        run(&mut k, pid, "touch buf 64K read").unwrap();
        run(&mut k, pid, "madvise buf 64K pageout").unwrap();
        let s = step(&mut k, pid, "touch buf 64K read");
        assert_eq!((s.majflt, s.swap_ra, s.pswpin), (16, 0, 16));
        // Read faults keep the slots (swap is far from half full).
        assert_eq!(s.swap_used_kb, 64);
        assert_eq!(s.swap_cached_kb, 64);
    }

    #[test]
    fn a_write_right_after_pageout_is_a_minor_fault_and_frees_the_slot() {
        let (mut k, pid) = setup();
        k.swap.swapdir = std::env::temp_dir();
        sys(&mut k, "mkswap /dev/sdb 16M").unwrap();
        sys(&mut k, "swapon /dev/sdb").unwrap();
        run(&mut k, pid, "mmap 16K name=buf").unwrap();
        let a = addr(&k, pid, "buf");
        k.write_mem(pid, a, b"still here").unwrap();
        run(&mut k, pid, "touch buf 16K").unwrap();
        run(&mut k, pid, "madvise buf 16K pageout").unwrap();
        // The writes are in flight: Writeback in meminfo.
        assert_eq!(k.node_stats().nr_writeback, 4);
        let s = step(&mut k, pid, "touch buf 16K write");
        assert_eq!((s.minflt, s.majflt, s.pswpin), (4, 0, 0));
        // A write fault on an exclusive page frees its slot, but not while
        // its write is in flight: the slots go with a later fault or
        // reclaim. Here they are still held.
        assert_eq!(s.swap_used_kb, 16);
        assert_eq!(k.read_mem(pid, a, 10).unwrap(), b"still here");
        sys(&mut k, "tick").unwrap();
        assert_eq!(k.node_stats().nr_writeback, 0);
        // Dirty again: the next pageout writes them to the same slots.
        let s = step(&mut k, pid, "madvise buf 16K pageout");
        assert_eq!((s.pswpout, s.swap_used_kb), (4, 16));
        sys(&mut k, "tick").unwrap();
        // Anon only. The slab shrinker's pages count as reclaimed too, and
        // get_scan_count scans a few pages of a short list per pass, so a
        // small reclaim may take a few rounds; completed writes were
        // rotated to the tail, so these pages go first.
        for _ in 0..64 {
            if k.swap.cache.is_empty() {
                break;
            }
            let _ = sys(&mut k, "reclaim 32K swappiness=max");
        }
        assert!(k.swap.cache.is_empty());
        let s = step(&mut k, pid, "touch buf 16K write");
        assert_eq!((s.majflt, s.swap_used_kb, s.swap_cached_kb), (1, 0, 0));
        assert_eq!(k.read_mem(pid, a, 10).unwrap(), b"still here");
    }

    #[test]
    fn swapoff_takes_pages_from_the_swap_cache() {
        let mut k = boot(crate::mm::types::Arch::X86_64, 1 << 30);
        k.swap.swapdir = std::env::temp_dir();
        sys(&mut k, "mkswap /dev/sdb 16M").unwrap();
        sys(&mut k, "swapon /dev/sdb").unwrap();
        let parent = spawn(&mut k, "parent");
        run(&mut k, parent, "mmap 64K name=buf").unwrap();
        run(&mut k, parent, "touch buf 64K").unwrap();
        let a = addr(&k, parent, "buf");
        k.write_mem(parent, a, b"bytes").unwrap();
        sys(&mut k, &format!("fork {parent}")).unwrap();
        let child = Pid(k.ns_last_pid);
        // Half the pages in the cache under writeback, half read back.
        run(&mut k, parent, "madvise buf 64K pageout").unwrap();
        run(&mut k, child, "madvise buf 64K pageout").unwrap();
        let _ = sys(&mut k, "reclaim 1G");
        run(&mut k, child, "touch buf 32K read").unwrap();
        assert!(!k.swap.cache.is_empty());
        let pswpin = k.events.pswpin;
        sys(&mut k, "swapoff /dev/sdb").unwrap();
        assert!(k.swap.cache.is_empty());
        assert_eq!(mm(&k, parent).swap_ents + mm(&k, child).swap_ents, 0);
        assert!(k.events.pswpin <= pswpin + 16);
        assert_eq!(k.read_mem(parent, a, 5).unwrap(), b"bytes");
        assert_eq!(k.read_mem(child, a, 5).unwrap(), b"bytes");
        // Shared by both again: a write copies.
        run(&mut k, child, "touch buf 4K write").unwrap();
        k.write_mem(child, a, b"child").unwrap();
        assert_eq!(k.read_mem(parent, a, 5).unwrap(), b"bytes");
    }
}
