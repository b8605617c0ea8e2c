//! The slab allocator, SLUB-like (Linux: mm/slub.c, mm/slab_common.c).
//!
//! A `kmem_cache` hands out objects of one size. It keeps its objects in
//! *slabs*: power-of-two blocks of pages taken from the buddy allocator
//! (`Kernel::alloc_pages`, [`PageKind::Slab`], never HighMem). Each
//! slab is on exactly one of two lists of its cache:
//!
//! ```text
//!   partial: inuse < objects   ← allocations are served from its head
//!   full:    inuse == objects
//! ```
//!
//! As in SLUB, a slab that becomes empty stays on the partial list (an
//! *empty* slab, ready for reuse) while the partial list is shorter than
//! `min_partial`; otherwise its pages go back to the buddy allocator. A
//! full slab that gets an object back goes to the partial list's tail.
//! The slab order comes from [`calculate_order`]:
//! the smallest order up to `slub_max_order` (3) whose leftover is at most
//! 1/16, 1/8, 1/4 then 1/2 of the slab, starting from the order that holds
//! `slub_min_objects = 4 * (fls(nr_cpus) + 1)` objects.
//!
//! Objects are (slab, index) pairs: a slab's free objects form a chain of
//! `u16` indices in one array per cache (the simulated counterpart of
//! SLUB's free pointer stored inside each free object), so allocating and
//! freeing an object is O(1) and allocates nothing on the host. Moving a
//! slab between lists is O(1) too: the lists are intrusive, doubly linked
//! through slab indices.
//!
//! Handles ([`SlabObject`]) carry the serial number of their slab, so a
//! double free or a free of a stale handle is refused with EINVAL instead
//! of corrupting a slab.
//!
//! Simplifications against Linux, on purpose: no per-CPU slabs or sheaves
//! (one node, one list set), no cache merging (`slab_nomerge`: every cache
//! shows under its own name), no debugging metadata, and kmalloc_large
//! blocks are not counted in SUnreclaim.

use std::collections::{BTreeMap, BTreeSet};

use super::Kernel;
use super::error::{MmError, MmResult};
use super::page_alloc::{
    AllocRequest, FrameState, MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE, PageKind,
};
use super::types::{MAX_PAGE_ORDER, Order, PAGE_SIZE, Pfn, ix};

/// `slub_max_order`: PAGE_ALLOC_COSTLY_ORDER.
pub const SLUB_MAX_ORDER: u8 = 3;
/// Most objects one slab may hold (SLUB: `MAX_OBJS_PER_PAGE`, a 15-bit count).
pub const MAX_OBJS_PER_PAGE: u32 = 32767;
/// Smallest `min_partial` of a cache (SLUB `MIN_PARTIAL`).
pub const MIN_PARTIAL: u32 = 5;
/// Largest `min_partial` of a cache (SLUB `MAX_PARTIAL`).
pub const MAX_PARTIAL: u32 = 10;
/// Minimum object alignment (`ARCH_SLAB_MINALIGN`, alignof(u64)).
pub const ARCH_SLAB_MINALIGN: u32 = 8;
/// Largest request the kmalloc-* caches serve (`KMALLOC_MAX_CACHE_SIZE`,
/// two pages); larger ones go to the buddy allocator (`kmalloc_large`).
pub const KMALLOC_MAX_CACHE_SIZE: u64 = 2 * PAGE_SIZE;
/// Largest kmalloc request (`KMALLOC_MAX_SIZE`: one MAX_PAGE_ORDER block).
pub const KMALLOC_MAX_SIZE: u64 = PAGE_SIZE << MAX_PAGE_ORDER;
/// Largest object of a cache made with `kmem_cache_create`: one
/// MAX_PAGE_ORDER block, like [`KMALLOC_MAX_SIZE`].
pub const MAX_OBJECT_SIZE: u64 = KMALLOC_MAX_SIZE;
/// Largest `align=` of `kmem_cache_create`.
pub const MAX_ALIGN: u64 = PAGE_SIZE;

/// End of a slab's free chain.
pub(crate) const OBJ_END: u16 = u16::MAX;
/// Free-chain slot marker of an object in use.
pub(crate) const OBJ_ALLOCATED: u16 = u16::MAX - 1;
/// No slab (list ends).
pub(crate) const NIL: u32 = u32::MAX;

/// `fls`: 1-based index of the highest set bit, 0 for 0.
pub fn fls(x: u32) -> u32 {
    u32::BITS - x.leading_zeros()
}

/// `slub_min_objects` when not set on the command line:
/// `4 * (fls(nr_cpus) + 1)`, 12 on the simulated two-CPU machine.
pub fn slub_min_objects(nr_cpus: u32) -> u32 {
    4 * (fls(nr_cpus) + 1)
}

/// Objects of `size` bytes that fit in a slab of `order`.
pub fn order_objects(order: u8, size: u32) -> u32 {
    ((PAGE_SIZE << order) / size.max(1) as u64) as u32
}

/// `get_order` on a byte count.
pub(crate) fn get_order(bytes: u64) -> u8 {
    Order::for_bytes(bytes).0
}

/// SLUB `calc_slab_order`: the smallest order from `min_order` to
/// `max_order` whose leftover is at most `1/fract_leftover` of the slab;
/// `max_order + 1` (or `min_order` if that is larger) when none is.
pub(crate) fn calc_slab_order(size: u32, min_order: u8, max_order: u8, fract_leftover: u64) -> u8 {
    let mut order = min_order;
    while order <= max_order {
        let slab_size = PAGE_SIZE << order;
        if slab_size % size as u64 <= slab_size / fract_leftover {
            break;
        }
        order += 1;
    }
    order
}

/// SLUB `calculate_order` (Linux 6.18, `slub_min_order` 0): the slab order
/// for objects of `size` bytes. `None` when one object does not fit in a
/// MAX_PAGE_ORDER block.
pub fn calculate_order(size: u32, min_objects: u32) -> Option<u8> {
    if size == 0 {
        return None;
    }
    let max_objects = order_objects(SLUB_MAX_ORDER, size).max(1);
    let min_objects = min_objects.min(max_objects).max(1);
    let min_order = get_order(min_objects as u64 * size as u64);
    if order_objects(min_order, size) > MAX_OBJS_PER_PAGE {
        return Some(get_order(size as u64 * MAX_OBJS_PER_PAGE as u64) - 1);
    }
    // Accept at most 1/16 waste first, then 1/8, 1/4 and 1/2 (which takes
    // any waste as long as the object fits within slub_max_order).
    for fraction in [16, 8, 4, 2] {
        let order = calc_slab_order(size, min_order, SLUB_MAX_ORDER, fraction);
        if order <= SLUB_MAX_ORDER {
            return Some(order);
        }
    }
    let order = get_order(size as u64);
    (order <= MAX_PAGE_ORDER).then_some(order)
}

/// SLUB `calculate_sizes` for a cache without debugging, constructor or
/// RCU: the free pointer lives inside the object, so the slot size is the
/// object size rounded up to a pointer, then to the alignment
/// (`calculate_alignment`: at least ARCH_SLAB_MINALIGN).
pub fn slot_size(object_size: u32, align: u32) -> Option<u32> {
    let align = align.max(ARCH_SLAB_MINALIGN);
    let size = object_size.checked_next_multiple_of(8)?;
    size.checked_next_multiple_of(align)
}

/// SLUB `set_min_partial(s, ilog2(s->size) / 2)`.
pub fn min_partial(size: u32) -> u32 {
    (size.max(1).ilog2() / 2).clamp(MIN_PARTIAL, MAX_PARTIAL)
}

/// Which cache: an index into the allocator's cache table. The kernel's
/// boot caches have fixed ids (the constants below); caches made with
/// `kmem_cache_create` get one from [`SlabAllocator::cache_id`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CacheId(pub u16);

/// A live slab object: which cache, which slab, which slot. Small and
/// `Copy`; give it back with [`Kernel::kmem_cache_free`]. The slab serial
/// makes a stale handle (double free) detectable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SlabObject {
    pub(crate) cache: CacheId,
    pub(crate) index: u16,
    pub(crate) slab: u32,
    pub(crate) serial: u32,
}

impl SlabObject {
    /// The cache the object belongs to.
    pub fn cache(self) -> CacheId {
        self.cache
    }
    /// Index of the object within its slab.
    pub fn index(self) -> u16 {
        self.index
    }
}

/// What `kmalloc` returned: an object of a kmalloc-N cache, or for
/// requests above [`KMALLOC_MAX_CACHE_SIZE`] a block straight from the
/// buddy allocator (`kmalloc_large`). Give it back with [`Kernel::kfree`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum KmallocObject {
    /// An object of a kmalloc-N cache.
    Slab(SlabObject),
    /// A buddy block of `order` pages starting at `pfn` (PageKind::Kernel).
    Large {
        /// First page.
        pfn: Pfn,
        /// Block order, `get_order(size)`.
        order: Order,
    },
}

impl KmallocObject {
    /// Pages the object's memory takes from the buddy allocator directly
    /// (kmalloc_large), 0 for slab objects.
    pub fn large_pages(self) -> u64 {
        match self {
            KmallocObject::Slab(_) => 0,
            KmallocObject::Large { order, .. } => order.pages(),
        }
    }
}

/// Which list a slab is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SlabList {
    Partial,
    Full,
    /// The slot holds no slab (its pages went back to the buddy allocator).
    Vacant,
}

/// One slab: the simulated `struct slab` of its first page.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Slab {
    /// First page of the block.
    pub(crate) pfn: Pfn,
    /// Serial number, unique among slabs alive at the same time.
    pub(crate) serial: u32,
    /// Objects in use.
    pub(crate) inuse: u16,
    /// First free object, [`OBJ_END`] when full.
    pub(crate) freelist: u16,
    /// Which list the slab is on.
    pub(crate) list: SlabList,
    /// List links (slab indices, [`NIL`] at the ends).
    pub(crate) prev: u32,
    pub(crate) next: u32,
}

/// Head of an intrusive slab list.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ListHead {
    pub(crate) head: u32,
    pub(crate) tail: u32,
    pub(crate) len: u32,
}

impl Default for ListHead {
    fn default() -> Self {
        ListHead {
            head: NIL,
            tail: NIL,
            len: 0,
        }
    }
}

/// A cache: the simulated `struct kmem_cache` with its one
/// `kmem_cache_node`.
#[derive(Clone, Debug)]
pub struct KmemCache {
    pub(crate) name: String,
    /// Bytes the user asked for (`object_size`).
    pub(crate) object_size: u32,
    /// Bytes of one slot (`size`, slabinfo's objsize).
    pub(crate) size: u32,
    /// Alignment of the slots.
    pub(crate) align: u32,
    /// Order of every slab.
    pub(crate) order: Order,
    /// Objects per slab.
    pub(crate) objects: u16,
    /// Partial-list length (empty slabs included) above which a slab that
    /// becomes empty goes back to the buddy allocator.
    pub(crate) min_partial: u32,
    /// SLAB_RECLAIM_ACCOUNT: pages count in SReclaimable.
    pub(crate) reclaimable: bool,
    /// One of the kernel's own caches (cannot be destroyed).
    pub(crate) boot: bool,
    /// Slab table; vacant slots are reused.
    pub(crate) slabs: Vec<Slab>,
    /// Vacant slab slots, reused newest first.
    pub(crate) vacant: Vec<u32>,
    /// Free chains: slot `slab * objects + index` holds the next free
    /// index of that slab, or [`OBJ_ALLOCATED`] for an object in use.
    pub(crate) freeptr: Vec<u16>,
    /// Slabs with free objects (empty ones included), allocation order.
    pub(crate) partial: ListHead,
    /// Slabs with no free object.
    pub(crate) full: ListHead,
    /// Slabs on the partial list with no object in use.
    pub(crate) nr_empty: u32,
    /// Objects in use over all slabs.
    pub(crate) active_objs: u64,
    /// The `struct kmem_cache` and `struct kmem_cache_node` objects that
    /// describe this cache (None only while booting the bootstrap caches).
    pub(crate) meta: Option<(SlabObject, SlabObject)>,
}

impl KmemCache {
    pub(crate) fn new(
        name: &str,
        object_size: u32,
        size: u32,
        align: u32,
        reclaimable: bool,
        boot: bool,
    ) -> MmResult<KmemCache> {
        let min_objects = slub_min_objects(super::NR_CPUS as u32);
        let order = calculate_order(size, min_objects).ok_or_else(|| {
            MmError::Invalid(format!(
                "kmem_cache_create: {name}: objects of {size} bytes do not fit in an order-{MAX_PAGE_ORDER} slab"
            ))
        })?;
        let objects = order_objects(order, size).clamp(1, MAX_OBJS_PER_PAGE) as u16;
        Ok(KmemCache {
            name: name.to_string(),
            object_size,
            size,
            align,
            order: Order(order),
            objects,
            min_partial: min_partial(size),
            reclaimable,
            boot,
            slabs: Vec::new(),
            vacant: Vec::new(),
            freeptr: Vec::new(),
            partial: ListHead::default(),
            full: ListHead::default(),
            nr_empty: 0,
            active_objs: 0,
            meta: None,
        })
    }

    /// The cache's name as slabinfo shows it.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Bytes asked for at creation.
    pub fn object_size(&self) -> u32 {
        self.object_size
    }
    /// Bytes of one slot: slabinfo's `<objsize>`.
    pub fn size(&self) -> u32 {
        self.size
    }
    /// Alignment of the slots.
    pub fn align(&self) -> u32 {
        self.align
    }
    /// Slab order.
    pub fn order(&self) -> Order {
        self.order
    }
    /// `<objperslab>`.
    pub fn objperslab(&self) -> u32 {
        self.objects as u32
    }
    /// `<pagesperslab>`.
    pub fn pagesperslab(&self) -> u64 {
        self.order.pages()
    }
    /// `<active_objs>`: objects in use.
    pub fn active_objs(&self) -> u64 {
        self.active_objs
    }
    /// `<num_slabs>` (SLUB: equal to active_slabs).
    pub fn num_slabs(&self) -> u64 {
        (self.partial.len + self.full.len) as u64
    }
    /// `<num_objs>`: slots in all slabs.
    pub fn num_objs(&self) -> u64 {
        self.num_slabs() * self.objects as u64
    }
    /// Pages held by the cache's slabs.
    pub fn pages(&self) -> u64 {
        self.num_slabs() * self.order.pages()
    }
    /// Slabs with some but not all objects in use.
    pub fn partial_slabs(&self) -> u64 {
        (self.partial.len - self.nr_empty) as u64
    }
    /// Slabs with every object in use.
    pub fn full_slabs(&self) -> u64 {
        self.full.len as u64
    }
    /// Slabs with no object in use, kept for reuse.
    pub fn empty_slabs(&self) -> u64 {
        self.nr_empty as u64
    }
    /// The partial-list length from which empty slabs are freed.
    pub fn min_partial(&self) -> u32 {
        self.min_partial
    }
    /// SLAB_RECLAIM_ACCOUNT: counted in SReclaimable.
    pub fn is_reclaimable(&self) -> bool {
        self.reclaimable
    }
    /// One of the kernel's own caches.
    pub fn is_boot(&self) -> bool {
        self.boot
    }

    pub(crate) fn list_head(&mut self, list: SlabList) -> &mut ListHead {
        match list {
            SlabList::Partial => &mut self.partial,
            SlabList::Full => &mut self.full,
            SlabList::Vacant => unreachable!("vacant slots are on no list"),
        }
    }

    /// Unlink a slab from its list. O(1).
    pub(crate) fn unlink(&mut self, s: u32) {
        let Slab {
            prev, next, list, ..
        } = self.slabs[ix(s)];
        if prev == NIL {
            self.list_head(list).head = next;
        } else {
            self.slabs[ix(prev)].next = next;
        }
        if next == NIL {
            self.list_head(list).tail = prev;
        } else {
            self.slabs[ix(next)].prev = prev;
        }
        self.list_head(list).len -= 1;
        let slab = &mut self.slabs[ix(s)];
        slab.prev = NIL;
        slab.next = NIL;
    }

    /// Link a slab at the head or tail of a list. O(1).
    pub(crate) fn link(&mut self, s: u32, list: SlabList, at_head: bool) {
        let head = *self.list_head(list);
        {
            let slab = &mut self.slabs[ix(s)];
            slab.list = list;
            if at_head {
                slab.prev = NIL;
                slab.next = head.head;
            } else {
                slab.prev = head.tail;
                slab.next = NIL;
            }
        }
        if at_head {
            if head.head == NIL {
                self.list_head(list).tail = s;
            } else {
                self.slabs[ix(head.head)].prev = s;
            }
            self.list_head(list).head = s;
        } else {
            if head.tail == NIL {
                self.list_head(list).head = s;
            } else {
                self.slabs[ix(head.tail)].next = s;
            }
            self.list_head(list).tail = s;
        }
        self.list_head(list).len += 1;
    }

    pub(crate) fn relink(&mut self, s: u32, list: SlabList, at_head: bool) {
        self.unlink(s);
        self.link(s, list, at_head);
    }

    /// Take the first free object of slab `s`, moving the slab to the full
    /// list when it was its last one.
    #[inline]
    pub(crate) fn take_object(&mut self, s: u32) -> (u16, u32) {
        let objects = self.objects as usize;
        let slab = &mut self.slabs[ix(s)];
        let index = slab.freelist;
        let slot = s as usize * objects + index as usize;
        slab.freelist = self.freeptr[slot];
        self.freeptr[slot] = OBJ_ALLOCATED;
        let was_empty = slab.inuse == 0;
        slab.inuse += 1;
        let serial = slab.serial;
        let now_full = slab.inuse == self.objects;
        self.active_objs += 1;
        self.nr_empty -= u32::from(was_empty);
        if now_full {
            self.relink(s, SlabList::Full, true);
        }
        (index, serial)
    }

    /// `get_partial`: an object from the slab at the head of the partial
    /// list; `None` when the cache needs a new slab.
    #[inline]
    pub(crate) fn alloc_from_lists(&mut self) -> Option<(u32, u16, u32)> {
        let s = self.partial.head;
        if s == NIL {
            return None;
        }
        let (index, serial) = self.take_object(s);
        Some((s, index, serial))
    }

    /// `allocate_slab`: install a new slab on pages starting at `pfn` and
    /// hand out its first object.
    pub(crate) fn install_slab(&mut self, pfn: Pfn, serial: u32) -> (u32, u16, u32) {
        let objects = self.objects as usize;
        let s = match self.vacant.pop() {
            Some(s) => s,
            None => {
                let s = self.slabs.len() as u32;
                self.slabs.push(Slab {
                    pfn,
                    serial,
                    inuse: 0,
                    freelist: OBJ_END,
                    list: SlabList::Vacant,
                    prev: NIL,
                    next: NIL,
                });
                self.freeptr.resize(self.freeptr.len() + objects, OBJ_END);
                s
            }
        };
        // Chain the free objects in address order, as SLUB's
        // shuffle-less `build_slab_freelist` does.
        let base = s as usize * objects;
        for i in 0..objects {
            self.freeptr[base + i] = if i + 1 < objects {
                (i + 1) as u16
            } else {
                OBJ_END
            };
        }
        self.slabs[ix(s)] = Slab {
            pfn,
            serial,
            inuse: 0,
            freelist: 0,
            list: SlabList::Vacant,
            prev: NIL,
            next: NIL,
        };
        self.link(s, SlabList::Partial, true);
        self.nr_empty += 1;
        let (index, serial) = self.take_object(s);
        (s, index, serial)
    }

    /// Check that `obj` names an object in use of this cache.
    #[inline]
    pub fn check_live(&self, obj: SlabObject) -> Result<usize, &'static str> {
        let slab = self.slabs.get(obj.slab as usize).ok_or("no such slab")?;
        if slab.list == SlabList::Vacant || slab.serial != obj.serial {
            return Err("its slab was already freed");
        }
        if obj.index >= self.objects {
            return Err("index beyond the slab");
        }
        let slot = obj.slab as usize * self.objects as usize + obj.index as usize;
        if self.freeptr[slot] != OBJ_ALLOCATED {
            return Err("the object is already free");
        }
        Ok(slot)
    }

    /// `__slab_free`: put an object back. Returns the slab's pages when the
    /// slab became empty and is discarded: because the partial list already
    /// holds `min_partial` slabs, or because `discard` says so.
    #[inline]
    pub(crate) fn free_object(
        &mut self,
        obj: SlabObject,
        discard: impl Fn(u32) -> bool,
    ) -> Result<Option<Pfn>, &'static str> {
        let slot = self.check_live(obj)?;
        let s = obj.slab;
        let objects = self.objects;
        let slab = &mut self.slabs[ix(s)];
        self.freeptr[slot] = slab.freelist;
        slab.freelist = obj.index;
        let was_full = slab.inuse == objects;
        slab.inuse -= 1;
        let now_empty = slab.inuse == 0;
        let serial = slab.serial;
        self.active_objs -= 1;
        if now_empty {
            // SLUB keeps an empty slab on the partial list unless
            // `nr_partial >= min_partial`, counting the slab itself when it
            // is on the list already (it was partial, not full).
            if self.partial.len >= self.min_partial || discard(serial) {
                let pfn = self.slabs[ix(s)].pfn;
                self.discard_slab(s);
                return Ok(Some(pfn));
            }
            self.nr_empty += 1;
            if was_full {
                // A one-object slab goes from full straight to empty.
                self.relink(s, SlabList::Partial, false);
            }
        } else if was_full {
            // A full slab that gains a free object goes to the tail of the
            // partial list (DEACTIVATE_TO_TAIL in SLUB).
            self.relink(s, SlabList::Partial, false);
        }
        Ok(None)
    }

    /// Take an empty slab off its list and free its slot (`discard_slab`;
    /// the caller gives the pages back).
    pub(crate) fn discard_slab(&mut self, s: u32) {
        self.unlink(s);
        let slab = &mut self.slabs[ix(s)];
        slab.list = SlabList::Vacant;
        slab.freelist = OBJ_END;
        self.vacant.push(s);
    }

    /// Take every empty slab off the cache (`kmem_cache_shrink`, destroy);
    /// returns their first pages in partial-list order.
    pub(crate) fn take_empty_slabs(&mut self) -> Vec<Pfn> {
        let mut pfns = Vec::new();
        let mut cursor = self.partial.head;
        while cursor != NIL {
            let slab = self.slabs[ix(cursor)];
            if slab.inuse == 0 {
                pfns.push(slab.pfn);
                self.discard_slab(cursor);
                self.nr_empty -= 1;
            }
            cursor = slab.next;
        }
        pfns
    }

    /// Check the cache's own structure.
    pub(crate) fn check(&self) -> Result<(), String> {
        let name = &self.name;
        let objects = self.objects as usize;
        let mut active = 0u64;
        let mut on_lists = 0u32;
        let mut empty = 0u32;
        for (list, head) in [
            (SlabList::Partial, self.partial),
            (SlabList::Full, self.full),
        ] {
            let mut cursor = head.head;
            let mut prev = NIL;
            let mut seen = 0u32;
            while cursor != NIL {
                let slab = self.slabs.get(cursor as usize).ok_or_else(|| {
                    format!("{name}: list {list:?} links to slab {cursor} beyond the table")
                })?;
                if slab.list != list || slab.prev != prev {
                    return Err(format!("{name}: slab {cursor} badly linked on {list:?}"));
                }
                let inuse = slab.inuse as usize;
                let ok = match list {
                    SlabList::Partial => inuse < objects,
                    _ => inuse == objects,
                };
                empty += u32::from(inuse == 0);
                if !ok {
                    return Err(format!(
                        "{name}: slab {cursor} with {inuse}/{objects} objects on {list:?}"
                    ));
                }
                seen += 1;
                if seen > self.slabs.len() as u32 {
                    return Err(format!("{name}: list {list:?} has a cycle"));
                }
                prev = cursor;
                cursor = slab.next;
            }
            if seen != head.len || head.tail != prev {
                return Err(format!("{name}: list {list:?} length or tail wrong"));
            }
            on_lists += seen;
        }
        if empty != self.nr_empty {
            return Err(format!(
                "{name}: nr_empty {} but {empty} empty slabs on the lists",
                self.nr_empty
            ));
        }
        let mut vacant = 0u32;
        for (s, slab) in self.slabs.iter().enumerate() {
            if slab.list == SlabList::Vacant {
                vacant += 1;
                continue;
            }
            let chain = &self.freeptr[s * objects..(s + 1) * objects];
            let allocated = chain.iter().filter(|&&v| v == OBJ_ALLOCATED).count();
            if allocated != slab.inuse as usize {
                return Err(format!(
                    "{name}: slab {s} says {} in use, {allocated} objects marked in use",
                    slab.inuse
                ));
            }
            let mut free = 0usize;
            let mut cursor = slab.freelist;
            while cursor != OBJ_END {
                if cursor as usize >= objects || chain[ix(cursor)] == OBJ_ALLOCATED {
                    return Err(format!("{name}: slab {s} free chain reaches a bad object"));
                }
                free += 1;
                if free > objects {
                    return Err(format!("{name}: slab {s} free chain has a cycle"));
                }
                cursor = chain[ix(cursor)];
            }
            if free + allocated != objects {
                return Err(format!(
                    "{name}: slab {s}: {free} free + {allocated} in use != {objects} objects"
                ));
            }
            active += slab.inuse as u64;
        }
        if vacant as usize != self.vacant.len()
            || on_lists as usize + vacant as usize != self.slabs.len()
        {
            return Err(format!("{name}: slab table and lists disagree"));
        }
        if active != self.active_objs {
            return Err(format!(
                "{name}: active_objs {} but slabs hold {active}",
                self.active_objs
            ));
        }
        if self.active_objs > self.num_objs() {
            return Err(format!("{name}: active_objs > num_objs"));
        }
        Ok(())
    }
}

/// The slab allocator's state: every cache and the creation-order list
/// that slabinfo walks.
#[derive(Clone, Debug, Default)]
pub struct SlabAllocator {
    /// Cache table indexed by [`CacheId`]; destroyed caches leave `None`.
    pub(crate) caches: Vec<Option<KmemCache>>,
    /// Live caches in creation order, oldest first (Linux `slab_caches`).
    pub(crate) cache_list: Vec<CacheId>,
    /// Name → cache.
    pub(crate) by_name: BTreeMap<String, CacheId>,
    /// Serial of the next slab.
    pub(crate) next_serial: u32,
    /// Pages of slabs of SLAB_RECLAIM_ACCOUNT caches.
    pub(crate) reclaimable_pages: u64,
    /// Pages of the other slabs.
    pub(crate) unreclaimable_pages: u64,
    /// Pages of kmalloc_large blocks alive.
    pub(crate) kmalloc_large_pages: u64,
    /// Boot objects of reclaimable caches (the dentry and inode LRUs),
    /// oldest first: what the slab shrinker may free under pressure.
    pub(crate) shrinkable: std::collections::VecDeque<SlabObject>,
}

impl SlabAllocator {
    /// Objects the shrinker could still free.
    pub fn shrinkable_objects(&self) -> u64 {
        self.shrinkable.len() as u64
    }

    /// A cache by id.
    pub fn cache(&self, id: CacheId) -> Option<&KmemCache> {
        self.caches.get(id.0 as usize).and_then(Option::as_ref)
    }

    /// The id of the cache called `name`.
    pub fn cache_id(&self, name: &str) -> Option<CacheId> {
        self.by_name.get(name).copied()
    }

    /// Live caches, oldest first (slabinfo prints them newest first).
    pub fn caches(&self) -> impl DoubleEndedIterator<Item = &KmemCache> {
        // cache_list names live caches only (check_slab verifies it).
        self.cache_list.iter().filter_map(|id| self.cache(*id))
    }

    /// Number of live caches.
    pub fn nr_caches(&self) -> usize {
        self.cache_list.len()
    }

    /// NR_SLAB_RECLAIMABLE in pages (SReclaimable, nr_slab_reclaimable).
    pub fn nr_slab_reclaimable(&self) -> u64 {
        self.reclaimable_pages
    }

    /// NR_SLAB_UNRECLAIMABLE in pages (SUnreclaim, nr_slab_unreclaimable).
    pub fn nr_slab_unreclaimable(&self) -> u64 {
        self.unreclaimable_pages
    }

    /// All slab pages (meminfo Slab).
    pub fn nr_slab_pages(&self) -> u64 {
        self.reclaimable_pages + self.unreclaimable_pages
    }

    /// Pages of live kmalloc_large blocks (not counted as Slab here).
    pub fn kmalloc_large_pages(&self) -> u64 {
        self.kmalloc_large_pages
    }

    pub(crate) fn cache_mut(&mut self, id: CacheId) -> MmResult<&mut KmemCache> {
        self.caches
            .get_mut(id.0 as usize)
            .and_then(Option::as_mut)
            .ok_or_else(|| MmError::Invalid(format!("no slab cache with id {}", id.0)))
    }

    /// Register a new cache (no pages yet).
    pub(crate) fn add_cache(&mut self, cache: KmemCache) -> MmResult<CacheId> {
        let index = match self.caches.iter().position(Option::is_none) {
            Some(i) => i,
            None if self.caches.len() < u16::MAX as usize => {
                self.caches.push(None);
                self.caches.len() - 1
            }
            None => {
                return Err(MmError::NoMemory(format!(
                    "kmem_cache_create: {}: the simulator's table of {} caches is full; destroy some",
                    cache.name,
                    u16::MAX
                )));
            }
        };
        let id = CacheId(index as u16);
        self.by_name.insert(cache.name.clone(), id);
        self.cache_list.push(id);
        self.caches[index] = Some(cache);
        Ok(id)
    }

    pub(crate) fn account_pages(&mut self, reclaimable: bool, pages: u64, add: bool) {
        let counter = if reclaimable {
            &mut self.reclaimable_pages
        } else {
            &mut self.unreclaimable_pages
        };
        if add {
            *counter += pages;
        } else {
            *counter -= pages;
        }
    }

    /// Free one object; returns the pages of a discarded slab.
    pub(crate) fn free_object(
        &mut self,
        obj: SlabObject,
        discard: impl Fn(u32) -> bool,
    ) -> MmResult<Option<(Pfn, Order)>> {
        let cache = self
            .caches
            .get_mut(obj.cache.0 as usize)
            .and_then(Option::as_mut)
            .ok_or_else(|| {
                MmError::Invalid(format!(
                    "kmem_cache_free: object of cache id {} that does not exist",
                    obj.cache.0
                ))
            })?;
        let result = cache.free_object(obj, discard).map_err(|why| {
            MmError::Invalid(format!(
                "kmem_cache_free: {}: bad free of object {} of slab {}: {why}",
                cache.name, obj.index, obj.slab
            ))
        })?;
        Ok(match result {
            Some(pfn) => {
                let (order, reclaimable) = (cache.order, cache.reclaimable);
                self.account_pages(reclaimable, order.pages(), false);
                Some((pfn, order))
            }
            None => None,
        })
    }
}

impl Kernel {
    /// `kmem_cache_alloc(cache, GFP_KERNEL)`: one object. Served from the
    /// slab at the head of the partial list, else a new slab from the buddy
    /// allocator (Normal and below, never HighMem). ENOMEM when no page can
    /// be had; EINVAL for an id that names no cache.
    ///
    /// The fast path is O(1) and allocates nothing on the host.
    #[inline]
    pub fn kmem_cache_alloc(&mut self, cache: CacheId) -> MmResult<SlabObject> {
        let obj = self.slab_alloc(cache)?;
        self.trace_kmem_cache_alloc(obj);
        Ok(obj)
    }

    /// `slab_alloc_node`: [`Kernel::kmem_cache_alloc`] without its
    /// tracepoint (kmalloc traces its own event instead).
    #[inline]
    pub(crate) fn slab_alloc(&mut self, cache: CacheId) -> MmResult<SlabObject> {
        let c = self.slab.cache_mut(cache)?;
        match c.alloc_from_lists() {
            Some((slab, index, serial)) => Ok(SlabObject {
                cache,
                index,
                slab,
                serial,
            }),
            None => self.alloc_new_slab(cache),
        }
    }

    /// `new_slab`: pages for one more slab, then its first object.
    #[cold]
    pub(crate) fn alloc_new_slab(&mut self, cache: CacheId) -> MmResult<SlabObject> {
        let (order, reclaimable) = {
            let c = self.slab.cache_mut(cache)?;
            (c.order, c.reclaimable)
        };
        let zone = self.kernel_zone();
        // SLAB_RECLAIM_ACCOUNT caches allocate with __GFP_RECLAIMABLE.
        let mt = if reclaimable {
            MIGRATE_RECLAIMABLE
        } else {
            MIGRATE_UNMOVABLE
        };
        let req = AllocRequest::new(PageKind::Slab, mt);
        let Some(pfn) = self.alloc_pages_mt(order, zone, req) else {
            let name = self.slab.cache(cache).map_or("?", |c| c.name.as_str());
            return Err(MmError::NoMemory(format!(
                "SLUB: Unable to allocate memory: cache {name}, order {} slab: no free block above the min watermark",
                order.0
            )));
        };
        let serial = self.slab.next_serial;
        self.slab.next_serial = serial.wrapping_add(1);
        self.slab.account_pages(reclaimable, order.pages(), true);
        let c = self.slab.cache_mut(cache)?;
        let (slab, index, serial) = c.install_slab(pfn, serial);
        Ok(SlabObject {
            cache,
            index,
            slab,
            serial,
        })
    }

    /// `kmem_cache_free`: give an object back. A slab that becomes empty
    /// while its cache's partial list already holds `min_partial` slabs
    /// goes back to the buddy allocator. EINVAL (and nothing changes) for a
    /// double free or a handle whose slab is gone.
    #[inline]
    pub fn kmem_cache_free(&mut self, obj: SlabObject) -> MmResult<()> {
        self.kmem_cache_free_inner(obj, |_| false)
    }

    pub(crate) fn kmem_cache_free_inner(
        &mut self,
        obj: SlabObject,
        discard: impl Fn(u32) -> bool,
    ) -> MmResult<()> {
        // Linux traces before slab_free, while the object is still there.
        self.trace_kmem_cache_free(obj);
        self.slab_free(obj, discard)
    }

    /// `slab_free`: the object goes back without a tracepoint (kfree
    /// traces its own event instead).
    pub(crate) fn slab_free(
        &mut self,
        obj: SlabObject,
        discard: impl Fn(u32) -> bool,
    ) -> MmResult<()> {
        if let Some((pfn, order)) = self.slab.free_object(obj, discard)? {
            self.free_pages(pfn, order)?;
        }
        Ok(())
    }

    /// The slab allocator's invariants: every cache's lists and free
    /// chains are consistent, active ≤ num, every slab is an allocated
    /// block of its cache's order and PageKind::Slab, Σ num_slabs ×
    /// pagesperslab equals the Slab pages the frames hold and the
    /// SReclaimable/SUnreclaim counters.
    pub fn check_slab(&self) -> Result<(), String> {
        let slab = &self.slab;
        let frames = &self.page_alloc.frames;
        let (mut reclaimable, mut unreclaimable) = (0u64, 0u64);
        let mut seen_ids = BTreeSet::new();
        for &id in &slab.cache_list {
            if !seen_ids.insert(id) {
                return Err(format!("slab: cache id {} listed twice", id.0));
            }
            let cache = slab
                .cache(id)
                .ok_or_else(|| format!("slab: cache_list names dead cache id {}", id.0))?;
            if slab.by_name.get(&cache.name) != Some(&id) {
                return Err(format!("slab: {} missing from the name index", cache.name));
            }
            cache.check()?;
            if cache.objects as u32
                != order_objects(cache.order.0, cache.size).clamp(1, MAX_OBJS_PER_PAGE)
            {
                return Err(format!(
                    "slab: {}: objperslab does not match its order",
                    cache.name
                ));
            }
            for s in cache.slabs.iter().filter(|s| s.list != SlabList::Vacant) {
                if s.pfn.0 >= self.page_alloc.max_pfn
                    || frames.state(s.pfn) != FrameState::Allocated
                    || frames.kind(s.pfn) != PageKind::Slab
                    || frames.order(s.pfn) != cache.order
                {
                    return Err(format!(
                        "slab: {}: slab at pfn {} is not an allocated Slab block of order {}",
                        cache.name, s.pfn, cache.order.0
                    ));
                }
            }
            if cache.reclaimable {
                reclaimable += cache.pages();
            } else {
                unreclaimable += cache.pages();
            }
        }
        let live = slab.caches.iter().filter(|c| c.is_some()).count();
        if live != slab.cache_list.len() || slab.by_name.len() != live {
            return Err(format!(
                "slab: {live} caches in the table, {} listed, {} named",
                slab.cache_list.len(),
                slab.by_name.len()
            ));
        }
        if reclaimable != slab.reclaimable_pages || unreclaimable != slab.unreclaimable_pages {
            return Err(format!(
                "slab: counters say {}+{} pages, caches hold {reclaimable}+{unreclaimable}",
                slab.reclaimable_pages, slab.unreclaimable_pages
            ));
        }
        // Σ num_slabs × pagesperslab = pages of PageKind::Slab blocks.
        let mut slab_pages = 0u64;
        let mut pfn = 0u64;
        while pfn < self.page_alloc.max_pfn {
            let p = Pfn(pfn);
            if frames.state(p) == FrameState::Allocated {
                let pages = frames.order(p).pages();
                if frames.kind(p) == PageKind::Slab {
                    slab_pages += pages;
                }
                pfn += pages;
            } else {
                pfn += 1;
            }
        }
        if slab_pages != reclaimable + unreclaimable {
            return Err(format!(
                "slab: caches hold {} pages but {slab_pages} pages are Slab blocks",
                reclaimable + unreclaimable
            ));
        }
        Ok(())
    }
}

impl Kernel {
    /// `shrink_slab`: free up to `nr_to_scan` cached objects of the
    /// reclaimable caches (oldest first, like the dentry/inode list_lru
    /// shrinkers). Returns the slab pages that went back to the buddy
    /// allocator; counts `slabs_scanned`.
    pub fn shrink_slab(&mut self, nr_to_scan: u64) -> u64 {
        let before = self.slab.nr_slab_reclaimable();
        let items = self.slab.shrinkable.len() as u64;
        self.trace_shrink_slab_start(nr_to_scan, items, self.trace.reclaim_priority);
        let mut scanned = 0;
        while scanned < nr_to_scan {
            let Some(obj) = self.slab.shrinkable.pop_front() else {
                break;
            };
            scanned += 1;
            if let Err(err) = self.kmem_cache_free(obj) {
                self.printk(format!("BUG: slab shrinker: {err}"));
            }
        }
        self.events.slabs_scanned += scanned;
        self.trace_shrink_slab_end(nr_to_scan - scanned, nr_to_scan, scanned);
        before.saturating_sub(self.slab.nr_slab_reclaimable())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctl::Scope;
    use crate::mm::MachineConfig;
    use crate::mm::slab_common::*;

    const CAPTURE: &str = include_str!("../../tests/reference/linux-samples/slabinfo");

    /// (name, active, num, objsize, objperslab, pagesperslab) rows of a slabinfo text.
    fn rows(text: &str) -> Vec<(String, u64, u64, u32, u32, u64)> {
        text.lines()
            .skip(2)
            .map(|line| {
                let f: Vec<&str> = line.split_whitespace().collect();
                (
                    f[0].to_string(),
                    f[1].parse().unwrap(),
                    f[2].parse().unwrap(),
                    f[3].parse().unwrap(),
                    f[4].parse().unwrap(),
                    f[5].parse().unwrap(),
                )
            })
            .collect()
    }

    fn kernel() -> crate::ctl::Machine {
        let k = crate::ctl::Machine::boot(MachineConfig::default()).unwrap();
        k.check_invariants().unwrap();
        k
    }

    /// Run a line, check every invariant, and check that MemFree (the
    /// allocator's count) equals what buddyinfo shows.
    /// Also check the files: meminfo MemFree = buddyinfo, and meminfo Slab
    /// = SReclaimable + SUnreclaim = Σ num_slabs × pagesperslab × 4 kB of
    /// slabinfo.
    fn run(k: &mut crate::ctl::Machine, line: &str) -> MmResult<()> {
        let r = k.execute_line(Scope::System, line).map(|_| ());
        k.check_invariants().unwrap();
        k.check_slab().unwrap();
        let meminfo = crate::procfs::meminfo::meminfo(k);
        let kb = |key: &str| -> u64 {
            meminfo
                .lines()
                .find(|l| l.split(':').next() == Some(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("meminfo {key}"))
        };
        assert_eq!(
            kb("MemFree"),
            buddyinfo_pages(k) * 4,
            "MemFree after {line}"
        );
        let slabinfo_pages: u64 = rows(&crate::procfs::slabinfo::slabinfo(k))
            .iter()
            .map(|r| r.5 * (r.2 / r.4 as u64))
            .sum();
        assert_eq!(kb("Slab"), slabinfo_pages * 4, "Slab after {line}");
        assert_eq!(kb("Slab"), kb("SReclaimable") + kb("SUnreclaim"));
        r
    }

    fn buddyinfo_pages(k: &Kernel) -> u64 {
        crate::procfs::buddyinfo_pages(&crate::procfs::buddyinfo(k))
    }

    fn cache<'a>(k: &'a Kernel, name: &str) -> &'a KmemCache {
        k.slab.cache(k.slab.cache_id(name).unwrap()).unwrap()
    }

    fn slab_pages_kind(k: &Kernel, kind: PageKind) -> u64 {
        let frames = &k.page_alloc.frames;
        let mut pages = 0;
        let mut pfn = 0;
        while pfn < k.page_alloc.max_pfn {
            let p = Pfn(pfn);
            if frames.state(p) == FrameState::Allocated {
                let n = frames.order(p).pages();
                if frames.kind(p) == kind {
                    pages += n;
                }
                pfn += n;
            } else {
                pfn += 1;
            }
        }
        pages
    }

    #[test]
    fn calculate_order_matches_every_captured_cache() {
        let min_objects = slub_min_objects(2);
        assert_eq!(min_objects, 12);
        let mut checked = 0;
        for (name, _, _, objsize, objperslab, pagesperslab) in rows(CAPTURE) {
            let order = calculate_order(objsize, min_objects).unwrap();
            assert_eq!(
                (order_objects(order, objsize), 1u64 << order),
                (objperslab, pagesperslab),
                "{name} objsize {objsize}"
            );
            checked += 1;
        }
        assert_eq!(checked, 235);
    }

    #[test]
    fn boot_caches_have_the_captured_geometry() {
        let k = kernel();
        let capture = rows(CAPTURE);
        let mut matched = 0;
        for c in k.slab.caches() {
            if let Some(row) = capture.iter().find(|r| r.0 == c.name()) {
                assert_eq!(
                    (c.size(), c.objperslab(), c.pagesperslab()),
                    (row.3, row.4, row.5),
                    "{}",
                    c.name()
                );
                matched += 1;
            }
        }
        // Every boot cache but cred_jar (merged away on the capture machine).
        assert_eq!(matched, BOOT_CACHES.len() - 1);
        for (name, size, objs, pages) in [
            ("vm_area_struct", 192, 21, 1),
            ("task_struct", 4224, 7, 8),
            ("mm_struct", 1600, 20, 8),
            ("kmalloc-8", 8, 512, 1),
            ("kmalloc-96", 96, 42, 1),
            ("kmalloc-192", 192, 21, 1),
            ("kmalloc-512", 512, 16, 2),
            ("kmalloc-1k", 1024, 16, 4),
            ("kmalloc-2k", 2048, 16, 8),
            ("kmalloc-4k", 4096, 8, 8),
            ("kmalloc-8k", 8192, 4, 8),
        ] {
            let c = cache(&k, name);
            assert_eq!(
                (c.size(), c.objperslab(), c.pagesperslab()),
                (size, objs, pages),
                "{name}"
            );
        }
    }

    #[test]
    fn boot_baseline_is_exact_and_deterministic() {
        let k = kernel();
        k.check_slab().unwrap();
        let n = BOOT_CACHES.len() as u64;
        for (i, boot) in BOOT_CACHES.iter().enumerate() {
            let c = k.slab.cache(CacheId(i as u16)).unwrap();
            assert_eq!(c.name(), boot.name);
            let (active, total) = if boot.total == PER_CACHE {
                (n, n.next_multiple_of(c.objperslab() as u64))
            } else {
                (boot.active as u64, boot.total as u64)
            };
            assert_eq!(
                (c.active_objs(), c.num_objs()),
                (active, total),
                "{}",
                boot.name
            );
        }
        // Newest first; the capture ends with kmem_cache_node, kmem_cache.
        let text = crate::procfs::slabinfo::slabinfo(&k);
        let names: Vec<_> = rows(&text).into_iter().map(|r| r.0).collect();
        assert_eq!(names[names.len() - 2..], ["kmem_cache_node", "kmem_cache"]);
        assert_eq!(names[0], "uid_cache");
        assert_eq!(text, crate::procfs::slabinfo::slabinfo(&kernel()));
        // Some caches are partial, as on a live machine.
        let c = cache(&k, "vm_area_struct");
        assert!(c.active_objs() < c.num_objs());
        assert!(k.slab.nr_slab_reclaimable() > 0 && k.slab.nr_slab_unreclaimable() > 0);
    }

    #[test]
    fn constants_name_their_caches() {
        let k = kernel();
        for (id, name) in [
            (TASK_STRUCT, "task_struct"),
            (MM_STRUCT, "mm_struct"),
            (VM_AREA_STRUCT, "vm_area_struct"),
            (ANON_VMA, "anon_vma"),
            (ANON_VMA_CHAIN, "anon_vma_chain"),
            (FILES_CACHE, "files_cache"),
            (SIGNAL_CACHE, "signal_cache"),
            (SIGHAND_CACHE, "sighand_cache"),
            (PID, "pid"),
            (CRED_JAR, "cred_jar"),
            (DENTRY, "dentry"),
            (INODE_CACHE, "inode_cache"),
            (FILP, "filp"),
            (MAPLE_NODE, "maple_node"),
            (KMEM_CACHE, "kmem_cache"),
            (KMEM_CACHE_NODE, "kmem_cache_node"),
        ] {
            assert_eq!(k.slab.cache(id).unwrap().name(), name);
            assert_eq!(k.slab.cache_id(name), Some(id));
        }
        assert!(cache(&k, "dentry").is_reclaimable());
        assert!(!cache(&k, "task_struct").is_reclaimable());
    }

    #[test]
    fn kmalloc_size_classes() {
        let k = kernel();
        let name = |size| {
            k.slab
                .cache(kmalloc_cache(size).unwrap())
                .unwrap()
                .name()
                .to_string()
        };
        for (size, want) in [
            (1, "kmalloc-8"),
            (8, "kmalloc-8"),
            (9, "kmalloc-16"),
            (33, "kmalloc-64"),
            (65, "kmalloc-96"),
            (96, "kmalloc-96"),
            (97, "kmalloc-128"),
            (129, "kmalloc-192"),
            (193, "kmalloc-256"),
            (257, "kmalloc-512"),
            (4097, "kmalloc-8k"),
            (8192, "kmalloc-8k"),
        ] {
            assert_eq!(name(size), want, "{size}");
        }
        assert_eq!(kmalloc_cache(0), None);
        assert_eq!(kmalloc_cache(8193), None);
        // The table agrees with "smallest class that holds it" everywhere.
        for size in 1..=KMALLOC_MAX_CACHE_SIZE {
            let smallest = KMALLOC_CACHES
                .iter()
                .find(|(c, _)| size <= *c)
                .map(|(_, id)| *id);
            assert_eq!(kmalloc_cache(size), smallest, "{size}");
        }
    }

    #[test]
    fn user_cache_geometry_follows_calculate_sizes() {
        let mut k = kernel();
        let kmem_before = cache(&k, "kmem_cache").active_objs();
        let node_before = cache(&k, "kmem_cache_node").active_objs();
        run(&mut k, "kmem_cache_create foo 100").unwrap();
        let c = cache(&k, "foo");
        // 100 → 104 (pointer-aligned); 12 × 104 fits order 0 with 40 bytes left.
        assert_eq!((c.size(), c.objperslab(), c.pagesperslab()), (104, 39, 1));
        assert_eq!((c.active_objs(), c.num_objs()), (0, 0));
        assert_eq!(cache(&k, "kmem_cache").active_objs(), kmem_before + 1);
        assert_eq!(cache(&k, "kmem_cache_node").active_objs(), node_before + 1);
        run(&mut k, "kmem_cache_create bar 100 align=64").unwrap();
        let c = cache(&k, "bar");
        assert_eq!((c.size(), c.objperslab(), c.pagesperslab()), (128, 32, 1));
        run(&mut k, "kmem_cache_create big 3000").unwrap();
        let c = cache(&k, "big");
        // 12 × 3000 → order 3: 10 objects, 2768 bytes left ≤ 1/8.
        assert_eq!((c.size(), c.objperslab(), c.pagesperslab()), (3000, 10, 8));
        run(&mut k, "kmem_cache_create huge 1M").unwrap();
        let c = cache(&k, "huge");
        assert_eq!((c.objperslab(), c.pagesperslab()), (1, 256));
        // Newest first in slabinfo.
        let text = crate::procfs::slabinfo::slabinfo(&k);
        let names: Vec<_> = rows(&text).into_iter().map(|r| r.0).take(4).collect();
        assert_eq!(names, ["huge", "big", "bar", "foo"]);
    }

    #[test]
    fn exact_counts_after_alloc_and_free_patterns() {
        let mut k = kernel();
        run(&mut k, "kmem_cache_create obj 200").unwrap();
        // 200 → 200 bytes, order 0: 20 objects a slab.
        assert_eq!(cache(&k, "obj").objperslab(), 20);
        run(&mut k, "kmem_cache_alloc obj count=45 tag=a").unwrap();
        let c = cache(&k, "obj");
        assert_eq!((c.active_objs(), c.num_objs(), c.num_slabs()), (45, 60, 3));
        assert_eq!(
            (c.full_slabs(), c.partial_slabs(), c.empty_slabs()),
            (2, 1, 0)
        );
        run(&mut k, "kmem_cache_free tag=a count=5").unwrap();
        let c = cache(&k, "obj");
        assert_eq!((c.active_objs(), c.num_objs()), (40, 60));
        // The third slab is now empty but kept (min_partial is 5).
        assert_eq!(
            (c.full_slabs(), c.partial_slabs(), c.empty_slabs()),
            (2, 0, 1)
        );
        run(&mut k, "kmem_cache_alloc obj count=1 tag=b").unwrap();
        let c = cache(&k, "obj");
        assert_eq!((c.active_objs(), c.num_objs(), c.num_slabs()), (41, 60, 3));
        run(&mut k, "kmem_cache_free tag=a").unwrap();
        run(&mut k, "kmem_cache_free tag=b").unwrap();
        let c = cache(&k, "obj");
        assert_eq!((c.active_objs(), c.num_objs(), c.empty_slabs()), (0, 60, 3));
        assert_eq!(
            run(&mut k, "kmem_cache_free tag=a").unwrap_err().errno(),
            libc::ENOENT
        );
    }

    #[test]
    fn interleaved_tags_leave_partial_slabs() {
        let mut k = kernel();
        run(&mut k, "kmem_cache_create pair 256").unwrap();
        assert_eq!(cache(&k, "pair").objperslab(), 16);
        for _ in 0..64 {
            run(&mut k, "kmem_cache_alloc pair tag=x").unwrap();
            run(&mut k, "kmem_cache_alloc pair tag=y").unwrap();
        }
        let c = cache(&k, "pair");
        assert_eq!((c.active_objs(), c.num_objs()), (128, 128));
        run(&mut k, "kmem_cache_free tag=x").unwrap();
        let c = cache(&k, "pair");
        // Every slab keeps its y half: 8 half-full slabs.
        assert_eq!(
            (c.active_objs(), c.num_objs(), c.partial_slabs()),
            (64, 128, 8)
        );
    }

    #[test]
    fn empty_slabs_beyond_min_partial_go_back_to_buddy() {
        let mut k = kernel();
        run(&mut k, "kmem_cache_create e 4000").unwrap();
        let c = cache(&k, "e");
        // 4000 bytes: order 3, 8 objects; min_partial = ilog2(4000)/2 = 5.
        assert_eq!(
            (c.objperslab(), c.pagesperslab(), c.min_partial()),
            (8, 8, 5)
        );
        let free0 = k.page_alloc.total_free();
        let slab0 = k.slab.nr_slab_pages();
        run(&mut k, "kmem_cache_alloc e count=80 tag=t").unwrap();
        assert_eq!(cache(&k, "e").num_slabs(), 10);
        assert_eq!(k.slab.nr_slab_pages(), slab0 + 80);
        assert_eq!(k.page_alloc.total_free(), free0 - 80);
        run(&mut k, "kmem_cache_free tag=t").unwrap();
        let c = cache(&k, "e");
        // SLUB discards an empty slab once nr_partial (counting the slab
        // itself) reaches min_partial: min_partial - 1 empty slabs stay.
        assert_eq!((c.num_slabs(), c.empty_slabs()), (4, 4));
        assert_eq!(k.slab.nr_slab_pages(), slab0 + 32);
        assert_eq!(k.page_alloc.total_free(), free0 - 32);
        assert_eq!(slab_pages_kind(&k, PageKind::Slab), k.slab.nr_slab_pages());
        // Destroying gives back the rest, and the struct kmem_cache.
        run(&mut k, "kmem_cache_destroy e").unwrap();
        assert_eq!(k.slab.nr_slab_pages(), slab0);
        assert_eq!(k.page_alloc.total_free(), free0);
        assert!(k.slab.cache_id("e").is_none());
    }

    #[test]
    fn slab_kb_is_num_slabs_times_pagesperslab() {
        let mut k = kernel();
        for line in [
            "kmalloc 100 count=1000 tag=a",
            "kmalloc 3000 count=50 tag=b",
            "kmem_cache_alloc dentry count=500 tag=d",
            "kfree tag=a count=400",
        ] {
            run(&mut k, line).unwrap();
            let text = crate::procfs::slabinfo::slabinfo(&k);
            let pages: u64 = text
                .lines()
                .skip(2)
                .map(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    f[5].parse::<u64>().unwrap() * f[14].parse::<u64>().unwrap()
                })
                .sum();
            let stats = k.node_stats();
            assert_eq!(
                (stats.nr_slab_reclaimable + stats.nr_slab_unreclaimable) * 4,
                pages * 4,
                "Slab kB after {line}"
            );
            assert_eq!(pages, slab_pages_kind(&k, PageKind::Slab));
        }
    }

    #[test]
    fn reclaimable_caches_count_in_sreclaimable() {
        let mut k = kernel();
        let r0 = k.slab.nr_slab_reclaimable();
        let u0 = k.slab.nr_slab_unreclaimable();
        // dentry: 21 a slab; the boot baseline fills its slabs exactly.
        run(&mut k, "kmem_cache_alloc dentry count=21 tag=d").unwrap();
        assert_eq!(k.slab.nr_slab_reclaimable(), r0 + 1);
        assert_eq!(k.slab.nr_slab_unreclaimable(), u0);
        run(&mut k, "kmem_cache_alloc task_struct count=7 tag=t").unwrap();
        assert_eq!(k.slab.nr_slab_unreclaimable(), u0 + 8);
    }

    #[test]
    fn kmalloc_large_goes_to_buddy_not_slab() {
        let mut k = kernel();
        let slab0 = k.slab.nr_slab_pages();
        let before = crate::procfs::buddyinfo(&k);
        let free0 = k.page_alloc.total_free();
        run(&mut k, "kmalloc 20000 tag=big").unwrap();
        assert_eq!(k.slab.nr_slab_pages(), slab0);
        assert_eq!(k.page_alloc.total_free(), free0 - 8);
        assert_eq!(k.slab.kmalloc_large_pages(), 8);
        match k.tags.kmalloc.get("big") {
            [KmallocObject::Large { order, .. }] => assert_eq!(*order, Order(3)),
            other => panic!("{other:?}"),
        }
        run(&mut k, "kfree tag=big").unwrap();
        assert_eq!(crate::procfs::buddyinfo(&k), before);
        assert_eq!(k.slab.kmalloc_large_pages(), 0);
        // 8192 still comes from kmalloc-8k.
        let active = cache(&k, "kmalloc-8k").active_objs();
        run(&mut k, "kmalloc 8K tag=s").unwrap();
        assert_eq!(cache(&k, "kmalloc-8k").active_objs(), active + 1);
    }

    #[test]
    fn failed_multi_alloc_gives_back_everything() {
        let mut k = crate::ctl::Machine::boot(MachineConfig {
            arch: crate::mm::types::Arch::X86_64,
            mem_bytes: 64 << 20,
        })
        .unwrap();
        run(&mut k, "kmem_cache_create hog 2048").unwrap();
        // Reclaim before the failure may shrink the reclaimable caches (as
        // on Linux); what the command took must all come back.
        let hog_row = |k: &Kernel| {
            crate::procfs::slabinfo::slabinfo(k)
                .lines()
                .filter(|l| l.starts_with("hog ") || l.starts_with("kmalloc-4k "))
                .collect::<Vec<_>>()
                .join("\n")
        };
        let before = k.page_alloc.total_free();
        let slabinfo = hog_row(&k);
        let err = run(&mut k, "kmem_cache_alloc hog count=100000 tag=h").unwrap_err();
        assert_eq!(err.errno(), libc::ENOMEM);
        assert!(
            k.dmesg.last().unwrap().contains("gave them back"),
            "{:?}",
            k.dmesg.last()
        );
        assert!(k.page_alloc.total_free() >= before);
        assert_eq!(hog_row(&k), slabinfo);
        assert!(k.tags.objects.get("h").is_empty());
        // Same for kmalloc, slab-backed and large.
        for line in [
            "kmalloc 4000 count=100000 tag=k",
            "kmalloc 100K count=10000 tag=l",
        ] {
            let err = run(&mut k, line).unwrap_err();
            assert_eq!(err.errno(), libc::ENOMEM, "{line}");
            assert!(k.page_alloc.total_free() >= before, "{line}");
            assert_eq!(hog_row(&k), slabinfo, "{line}");
        }
    }

    #[test]
    fn every_errno() {
        let mut k = kernel();
        run(&mut k, "kmem_cache_create mine 64").unwrap();
        let before = crate::procfs::slabinfo::slabinfo(&k);
        let buddy = crate::procfs::buddyinfo(&k);
        for (line, errno) in [
            ("kmem_cache_create mine 64", libc::EEXIST),
            ("kmem_cache_create task_struct 64", libc::EEXIST),
            ("kmem_cache_create kernfs_node_cache 64", libc::EEXIST),
            ("kmem_cache_create x 0", libc::EINVAL),
            ("kmem_cache_create x 5M", libc::EINVAL),
            ("kmem_cache_create x 64 align=3", libc::EINVAL),
            ("kmem_cache_create x 64 align=8192", libc::EINVAL),
            ("kmem_cache_create x", libc::EINVAL),
            ("kmem_cache_create x 64 colour=1", libc::EINVAL),
            ("kmem_cache_create a/b 64", libc::EINVAL),
            ("kmem_cache_destroy nosuch", libc::ENOENT),
            ("kmem_cache_destroy task_struct", libc::EBUSY),
            ("kmem_cache_destroy kmalloc-64", libc::EBUSY),
            ("kmem_cache_alloc nosuch", libc::ENOENT),
            ("kmem_cache_alloc mine count=0", libc::EINVAL),
            ("kmem_cache_free", libc::EINVAL),
            ("kmem_cache_free tag=none", libc::ENOENT),
            ("kmalloc 0", libc::EINVAL),
            ("kmalloc 5M", libc::EINVAL),
            ("kmalloc x", libc::EINVAL),
            ("kfree", libc::EINVAL),
            ("kfree tag=none", libc::ENOENT),
        ] {
            let err = run(&mut k, line).unwrap_err();
            assert_eq!(err.errno(), errno, "{line}: {err}");
            assert!(k.dmesg.last().unwrap().contains(line), "{line}");
        }
        assert_eq!(crate::procfs::slabinfo::slabinfo(&k), before);
        assert_eq!(crate::procfs::buddyinfo(&k), buddy);
        // EBUSY while objects live, with the tag named.
        run(&mut k, "kmem_cache_alloc mine count=3 tag=held").unwrap();
        let err = run(&mut k, "kmem_cache_destroy mine").unwrap_err();
        assert_eq!(err.errno(), libc::EBUSY);
        assert!(err.to_string().contains("held"), "{err}");
        // Tags of the other kind are pointed out.
        let err = run(&mut k, "kfree tag=held").unwrap_err();
        assert_eq!(err.errno(), libc::ENOENT);
        assert!(err.to_string().contains("kmem_cache_free"), "{err}");
        run(&mut k, "kmem_cache_free tag=held").unwrap();
        run(&mut k, "kmem_cache_destroy mine").unwrap();
        assert_eq!(
            run(&mut k, "kmem_cache_destroy mine").unwrap_err().errno(),
            libc::ENOENT
        );
    }

    #[test]
    fn long_names_are_cut_and_still_found() {
        let mut k = kernel();
        run(&mut k, "kmem_cache_create a_very_long_cache_name 32").unwrap();
        assert!(k.slab.cache_id("a_very_long_cac").is_some());
        run(&mut k, "kmem_cache_alloc a_very_long_cache_name tag=l").unwrap();
        assert_eq!(cache(&k, "a_very_long_cac").active_objs(), 1);
        // The kernel's own long names are found whole.
        let before = cache(&k, "kernfs_node_cache").active_objs();
        run(&mut k, "kmem_cache_alloc kernfs_node_cache tag=k").unwrap();
        assert_eq!(cache(&k, "kernfs_node_cache").active_objs(), before + 1);
        assert_eq!(
            run(&mut k, "kmem_cache_destroy skbuff_head_cache")
                .unwrap_err()
                .errno(),
            libc::EBUSY
        );
    }

    #[test]
    fn api_double_free_is_refused() {
        let mut k = kernel();
        let obj = k.kmem_cache_alloc(VM_AREA_STRUCT).unwrap();
        assert_eq!(obj.cache(), VM_AREA_STRUCT);
        k.kmem_cache_free(obj).unwrap();
        assert_eq!(k.kmem_cache_free(obj).unwrap_err().errno(), libc::EINVAL);
        k.check_slab().unwrap();
        let large = k.kmalloc(64 << 10).unwrap();
        assert_eq!(large.large_pages(), 16);
        k.kfree(large).unwrap();
        assert_eq!(k.kfree(large).unwrap_err().errno(), libc::EINVAL);
        let small = k.kmalloc(24).unwrap();
        k.kfree(small).unwrap();
        assert!(k.kfree(small).is_err());
        // A handle whose slab was discarded and reused is stale too.
        k.kmem_cache_create("stale", 4000, 8).unwrap();
        let id = k.slab.cache_id("stale").unwrap();
        let objs: Vec<_> = (0..8 * 7)
            .map(|_| k.kmem_cache_alloc(id).unwrap())
            .collect();
        for &o in objs.iter().rev() {
            k.kmem_cache_free(o).unwrap();
        }
        let fresh: Vec<_> = (0..8 * 7)
            .map(|_| k.kmem_cache_alloc(id).unwrap())
            .collect();
        assert!(k.kmem_cache_free(objs[0]).is_err() || fresh.contains(&objs[0]));
        k.check_slab().unwrap();
    }

    #[test]
    fn slab_pages_never_come_from_highmem() {
        let mut k = crate::ctl::Machine::boot(MachineConfig {
            arch: crate::mm::types::Arch::I386,
            mem_bytes: 2 << 30,
        })
        .unwrap();
        run(&mut k, "kmem_cache_alloc task_struct count=2000 tag=t").unwrap();
        let highmem = k
            .page_alloc
            .zone_index(crate::mm::page_alloc::ZoneType::HighMem)
            .unwrap();
        let c = cache(&k, "task_struct");
        for s in c.slabs.iter().filter(|s| s.list != SlabList::Vacant) {
            assert!(k.page_alloc.zone_of(s.pfn).unwrap() < highmem);
        }
    }
}
