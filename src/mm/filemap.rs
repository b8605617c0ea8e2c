//! The page cache (Linux: mm/filemap.c, mm/readahead.c, mm/truncate.c,
//! mm/page-writeback.c): every read and write of the simulated file system
//! goes through cached pages. A miss reads the block from the disk and
//! reads ahead (VM_READAHEAD_PAGES, 128K); a hit marks the page accessed
//! (a second access activates it); a write dirties pages, which the
//! flusher writes back after `dirty_expire_centisecs` or above
//! `dirty_background_ratio`, and the writer itself above `dirty_ratio`.
//!
//! Frames of the page cache are PageKind::PageCache; their reverse-map
//! field holds (inode, page index), like `folio->mapping`/`folio->index`.
//! Their bytes live in `page_contents` while cached and in the disk store
//! (a sparse unlinked host file) once written back.

use super::Kernel;
use super::buffer::BDEV_INO;
use super::cputime;
use super::error::{MmError, MmResult};
use super::namei::FileKind;
use super::page_alloc::{FLAG_DIRTY, PageKind};
use super::types::{MmSlot, Order, PAGE_SIZE, Pfn, Vpn};
use super::xarray::Shadow;

/// VM_READAHEAD_PAGES: 128K of readahead on a miss.
pub const READAHEAD_PAGES: u64 = 32;
/// Largest file: the page index must fit the frame's index field.
pub const MAX_FILE_SIZE: u64 = 1 << 44;

/// Counters of the page cache (node_stat_item NR_FILE_PAGES, NR_FILE_DIRTY,
/// NR_DIRTIED, NR_WRITTEN).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PageCacheStats {
    /// Pages in the cache.
    pub nr_pages: u64,
    /// Dirty pages.
    pub nr_dirty: u64,
    /// Pages dirtied since boot.
    pub nr_dirtied: u64,
    /// Pages written back since boot.
    pub nr_written: u64,
    /// Pages mapped by at least one PTE (NR_FILE_MAPPED, meminfo Mapped).
    pub nr_mapped: u64,
    /// Pages under writeback (NR_WRITEBACK).
    pub nr_writeback: u64,
    /// Dirty pages reclaim marked for immediate reclaim once written
    /// (NR_VMSCAN_IMMEDIATE).
    pub nr_vmscan_immediate: u64,
    /// Pages rotated to the inactive tail when their write completed
    /// (PGROTATED).
    pub pgrotated: u64,
    /// Dirty pages per zone index (part of NR_ZONE_WRITE_PENDING).
    pub zone_dirty: [u64; super::page_writeback::MAX_NR_ZONES],
    /// Pages under writeback per zone index (the rest of it).
    pub zone_writeback: [u64; super::page_writeback::MAX_NR_ZONES],
    /// Page reads from `/dev/sda1` (its /proc/diskstats reads).
    pub disk_reads: u64,
    /// Page writes to `/dev/sda1` (its /proc/diskstats writes).
    pub disk_writes: u64,
    /// `lruvec->nonresident_age`: evictions so far, the clock of refault
    /// distances.
    pub nonresident_age: u64,
}

/// What reclaim did with one inactive page-cache page
/// ([`Kernel::reclaim_file_page`]), as `shrink_folio_list` counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileReclaim {
    /// Evicted and freed.
    Freed,
    /// Back to the inactive list (`keep_locked`): pinned or still mapped.
    Keep,
    /// Dirty and not queued for I/O (`nr_unqueued_dirty`): activated,
    /// PG_reclaim, left to the flusher.
    Dirty,
    /// Under writeback (`nr_writeback`): activated, PG_reclaim;
    /// `immediate` when kswapd met it marked already (`nr_immediate`: the
    /// LRU cycles faster than the disk writes).
    Writeback {
        /// Case 1 of shrink_folio_list: kswapd should throttle.
        immediate: bool,
    },
}

/// `struct file_ra_state`: the last readahead window and where the
/// previous read ended. `marker` is the page carrying PG_readahead.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RaState {
    /// First page of the window.
    pub start: u64,
    /// Pages in the window.
    pub size: u64,
    /// Pages left when the next window is started (the marker's place).
    pub async_size: u64,
    /// Page index of the last byte of the previous read.
    pub prev_index: Option<u64>,
    /// The page with PG_readahead set, if any.
    pub marker: Option<u64>,
    /// `mmap_miss`: page faults that missed the cache, less the hits;
    /// above MMAP_LOTSAMISS mmap read-around stops.
    pub mmap_miss: u32,
}

/// MMAP_LOTSAMISS: misses after which mmap read-around gives up.
const MMAP_LOTSAMISS: u32 = 100;

/// `get_init_ra_size`: the first window for a read of `size` pages.
pub fn get_init_ra_size(size: u64, max: u64) -> u64 {
    let newsize = size.max(1).next_power_of_two();
    if newsize <= max / 32 {
        newsize * 4
    } else if newsize <= max / 4 {
        newsize * 2
    } else {
        max
    }
}

/// `get_next_ra_size`: ramp the window up (×4 while small, then ×2).
pub fn get_next_ra_size(cur: u64, max: u64) -> u64 {
    if cur < max / 16 {
        4 * cur
    } else if cur <= max / 2 {
        2 * cur
    } else {
        max
    }
}

/// Pages of `[off, off + len)`: first and one-past-last index.
fn page_range(off: u64, len: u64) -> (u64, u64) {
    (off / PAGE_SIZE, (off + len).div_ceil(PAGE_SIZE))
}

impl Kernel {
    /// A regular file's inode, or EISDIR/ENOENT.
    fn regular(&self, ino: u32) -> MmResult<()> {
        if ino == BDEV_INO {
            return Err(MmError::NotFound(format!("no inode {ino}")));
        }
        match self.vfs.inode(ino)?.kind {
            FileKind::Regular => Ok(()),
            FileKind::Directory => Err(MmError::IsDir(format!("inode {ino} is a directory"))),
        }
    }

    /// `filemap_add_folio` with `__GFP_WRITE` when `write`: a page about
    /// to be overwritten is no refault (the kernel does not let data that
    /// will be replaced push the workingset out).
    pub(crate) fn add_to_page_cache(&mut self, ino: u32, index: u64, write: bool) -> MmResult<Pfn> {
        let pfn = self.alloc_cache_page()?;
        self.filemap_add_folio(ino, index, pfn, write)
    }

    /// A page for the page cache (GFP_HIGHUSER_MOVABLE, so reclaim may
    /// run), in no page index and on no LRU yet: reclaim cannot take it
    /// while it is being filled (Linux keeps it locked).
    fn alloc_cache_page(&mut self) -> MmResult<Pfn> {
        let zone = self.procs.user_zone;
        self.alloc_pages(Order(0), zone, PageKind::PageCache)
            .ok_or_else(|| MmError::NoMemory("out of memory: no page for the page cache".into()))
    }

    /// Free a page [`Self::alloc_cache_page`] gave that never entered the
    /// cache, with any bytes read into it.
    fn free_unused_cache_page(&mut self, pfn: Pfn) {
        self.drop_page_bytes(pfn);
        self.free_kernel_page(pfn);
    }

    /// `filemap_add_folio`: the new page `pfn` (allocated and filled) goes
    /// into the page index of `ino` at `index` and onto the inactive file
    /// list; a shadow entry in its slot is a refault (unless `write`).
    /// Returns the page cached there: `pfn`, or the one that reclaim
    /// during the allocation put there (the disk's cache: an evicted
    /// inode's bitmaps), ours then freed. NotFound (ours freed) when the
    /// inode went away meanwhile.
    fn filemap_add_folio(&mut self, ino: u32, index: u64, pfn: Pfn, write: bool) -> MmResult<Pfn> {
        let Ok(inode) = self.vfs.inode_mut(ino) else {
            self.free_unused_cache_page(pfn);
            return Err(MmError::NotFound(format!("inode {ino} went away")));
        };
        if let Some(cached) = inode.pages.get(index) {
            self.free_unused_cache_page(pfn);
            return Ok(cached);
        }
        let shadow = inode.pages.insert(index, pfn);
        let frames = &mut self.page_alloc.frames;
        frames.set_rmap(pfn, MmSlot(ino), Vpn(index));
        frames.set_workingset(pfn, false);
        self.vfs.stats.nr_pages += 1;
        // The index's nodes come from slab, whose allocation may reclaim:
        // the page joins the LRU only afterwards, so that reclaim cannot
        // evict and free it before the caller has used it. (It could when
        // it was on the LRU first: a freed page came back from here, and
        // a write then dirtied it — "marked dirty but not cached".)
        self.xa_sync(ino);
        self.lru_add_file(pfn);
        self.trace_filemap(true, ino, pfn, index);
        if let Some(shadow) = shadow.filter(|_| !write) {
            self.workingset_refault(pfn, shadow);
        }
        Ok(pfn)
    }

    /// Charge the page index of `ino` to the `radix_tree_node` cache: one
    /// object per node, allocated as nodes appear and freed as they go
    /// (`xas_alloc` / `xa_node_free`). A failed allocation leaves the index
    /// undercharged rather than failing the page-cache operation.
    pub(crate) fn xa_sync(&mut self, ino: u32) {
        loop {
            let Ok(inode) = self.vfs.inode_mut(ino) else {
                return;
            };
            let want = inode.pages.nr_nodes() as usize;
            let have = inode.xa_objects.len();
            if have > want {
                if let Some(obj) = inode.xa_objects.pop() {
                    self.free_object(obj);
                }
                continue;
            }
            if have == want {
                return;
            }
            match self.kmem_cache_alloc(super::slab_common::RADIX_TREE_NODE) {
                Ok(obj) => match self.vfs.inode_mut(ino) {
                    Ok(inode) => inode.xa_objects.push(obj),
                    Err(_) => {
                        self.free_object(obj);
                        return;
                    }
                },
                Err(_) => return,
            }
        }
    }

    /// `workingset_refault`: a page evicted `distance` ages ago (the
    /// node's nonresident age counts evictions and activations) comes
    /// back. If the distance fits in what is active (the workingset the
    /// page competed with), the page would have stayed with a bigger
    /// inactive list: it is activated at once, which ages the node too.
    /// If it had been active before its eviction (PG_workingset in the
    /// shadow), it is a *restore*: the page gets PG_workingset again.
    fn workingset_refault(&mut self, pfn: Pfn, shadow: Shadow) {
        self.events.workingset_refault_file += 1;
        let distance = self.vfs.stats.nonresident_age - shadow.eviction;
        let mut workingset = self.lru.active_file();
        if self.swap.has_free_slot() {
            workingset += self.lru.active_anon() + self.lru.inactive_anon();
        }
        if distance > workingset {
            return;
        }
        // folio_set_active before folio_add_lru: onto the active list,
        // no PGACTIVATE.
        self.lru_activate_new_file(pfn);
        self.vfs.stats.nonresident_age += 1;
        self.events.workingset_activate_file += 1;
        if shadow.workingset {
            self.page_alloc.frames.set_workingset(pfn, true);
            self.lru_note_cost_refault(true);
            self.events.workingset_restore_file += 1;
        }
    }

    /// `filemap_read_folio` of a page not cached: allocated, read from
    /// its disk block (if it has one), then added to the cache (a shadow
    /// in its slot is a refault). Returns the page cached at `index`.
    fn read_cache_page(&mut self, ino: u32, index: u64) -> MmResult<Pfn> {
        let pfn = self.alloc_cache_page()?;
        if let Err(e) = self.read_blocks(ino, &[(index, pfn)]) {
            self.free_unused_cache_page(pfn);
            return Err(e);
        }
        self.filemap_add_folio(ino, index, pfn, false)
    }

    /// The cached page of (ino, index) for a read of `req` pages from
    /// here (`filemap_get_pages`): a miss starts synchronous readahead, a
    /// hit on the PG_readahead marker the next (asynchronous) window.
    fn filemap_get_page(&mut self, ino: u32, index: u64, req: u64) -> MmResult<Pfn> {
        if let Some(pfn) = self.vfs.inode(ino)?.pages.get(index) {
            if self.vfs.inode(ino)?.ra.marker == Some(index) {
                self.vfs.inode_mut(ino)?.ra.marker = None;
                // Held: the readahead's allocations may reclaim.
                self.folio_get(pfn);
                let ra = self.ondemand_readahead(ino, index, req, true);
                self.folio_put(pfn);
                ra?;
            }
            self.mark_page_accessed(pfn);
            return Ok(pfn);
        }
        self.ondemand_readahead(ino, index, req, false)?;
        match self.vfs.inode(ino)?.pages.get(index) {
            Some(pfn) => {
                // filemap_read marks every folio it copies, read or hit.
                self.mark_page_accessed(pfn);
                Ok(pfn)
            }
            None => {
                // Past the end of the file (a write's read-modify-write).
                self.read_cache_page(ino, index)
            }
        }
    }

    /// `page_cache_sync_ra` / `page_cache_async_ra` (mm/readahead.c) with
    /// order-0 pages: a read at the expected place pushes the window
    /// forward and ramps it up; a first read, a read right after the
    /// previous one or a big one starts a window of `get_init_ra_size`; a
    /// small random read reads just itself.
    fn ondemand_readahead(
        &mut self,
        ino: u32,
        index: u64,
        req: u64,
        hit_marker: bool,
    ) -> MmResult<()> {
        let max = READAHEAD_PAGES;
        let mut ra = self.vfs.inode(ino)?.ra;
        let expected = index != 0
            && (index == ra.start + ra.size - ra.async_size || index == ra.start + ra.size);
        if expected && (hit_marker || ra.size > 0) {
            ra.start += ra.size;
            ra.size = get_next_ra_size(ra.size, max);
            ra.async_size = ra.size;
        } else {
            let sequential = index == 0
                || req > max
                || ra.prev_index.is_some_and(|p| index.wrapping_sub(p) <= 1);
            if !hit_marker && !sequential {
                // Standalone small read: as is, the state untouched.
                return self.read_pages(ino, index, req.min(max));
            }
            ra.start = index;
            ra.size = get_init_ra_size(req, max);
            ra.async_size = if ra.size > req {
                ra.size - req
            } else {
                ra.size
            };
        }
        let marker = ra.start + ra.size - ra.async_size;
        ra.marker = None;
        self.vfs.inode_mut(ino)?.ra = ra;
        let newly = self.read_window(ino, ra.start, ra.size)?;
        if newly.contains(&marker) {
            self.vfs.inode_mut(ino)?.ra.marker = Some(marker);
        }
        Ok(())
    }

    /// Read `count` pages from `index` that are not cached (no state).
    fn read_pages(&mut self, ino: u32, index: u64, count: u64) -> MmResult<()> {
        self.read_window(ino, index, count).map(drop)
    }

    /// `page_cache_ra_unbounded`: allocate and read the absent pages of
    /// `[start, start + size)` that lie inside the file; returns them.
    ///
    /// Every page is allocated first — reclaim may run then and evict
    /// pages of this very file, but not these, which are in no index and
    /// on no LRU — then the window is read from the disk with one read
    /// per run of consecutive blocks, then the pages join the cache. A
    /// failure (no memory, a read error) frees them all: nothing is half
    /// added.
    fn read_window(&mut self, ino: u32, start: u64, size: u64) -> MmResult<Vec<u64>> {
        let inode = self.vfs.inode(ino)?;
        let end = (start + size).min(inode.size.div_ceil(PAGE_SIZE));
        let absent: Vec<u64> = (start..end).filter(|&i| !inode.pages.contains(i)).collect();
        let mut pages = Vec::with_capacity(absent.len());
        for index in absent {
            match self.alloc_cache_page() {
                Ok(pfn) => pages.push((index, pfn)),
                Err(e) => {
                    for (_, pfn) in pages {
                        self.free_unused_cache_page(pfn);
                    }
                    return Err(e);
                }
            }
        }
        if let Err(e) = self.read_blocks(ino, &pages) {
            for (_, pfn) in pages {
                self.free_unused_cache_page(pfn);
            }
            return Err(e);
        }
        let mut newly = Vec::with_capacity(pages.len());
        let mut rest = pages.into_iter();
        while let Some((index, pfn)) = rest.next() {
            match self.filemap_add_folio(ino, index, pfn, false) {
                Ok(cached) if cached == pfn => newly.push(index),
                // Cached meanwhile by reclaim's own work: ours is freed.
                Ok(_) => {}
                Err(e) => {
                    for (_, pfn) in rest {
                        self.free_unused_cache_page(pfn);
                    }
                    return Err(e);
                }
            }
        }
        Ok(newly)
    }

    /// `read_pages` → `submit_bio` for the new pages `pages` of `ino`: a
    /// page whose index has a disk block costs a disk read (iowait,
    /// pgpgin, the task's read_bytes); the blocks that hold bytes are read
    /// from the disk store in runs of consecutive blocks, one host read
    /// each. Holes and blocks of zeros are not read and get no bytes.
    fn read_blocks(&mut self, ino: u32, pages: &[(u64, Pfn)]) -> MmResult<()> {
        let inode = self.vfs.inode(ino)?;
        // The pages come in ascending index order: one walk of the block
        // map over their range, not a lookup each.
        let mut blocks: Vec<(u64, Pfn)> = Vec::with_capacity(pages.len());
        if let (Some(&(lo, _)), Some(&(hi, _))) = (pages.first(), pages.last()) {
            debug_assert!(pages.is_sorted_by_key(|&(index, _)| index));
            let mut mapped = inode.blocks.range(lo..=hi).peekable();
            for &(index, pfn) in pages {
                while mapped.next_if(|&(&i, _)| i < index).is_some() {}
                if let Some((_, &b)) = mapped.next_if(|&(&i, _)| i == index) {
                    blocks.push((b, pfn));
                }
            }
        }
        let n = blocks.len() as u64;
        if n == 0 {
            return Ok(());
        }
        self.account_iowait(n * cputime::SWAP_PAGE_IO_NS);
        self.vfs.stats.disk_reads += n;
        self.events.pgpgin += n * PAGE_SIZE / 1024;
        if let Some(io) = self.running_ioac() {
            io.read_bytes += n * PAGE_SIZE;
        }
        blocks.retain(|&(b, _)| self.vfs.store.contains(b));
        // The bytes stay on the disk until a reader looks (lazy): the
        // simulated read is charged above, the host copy happens once,
        // when and if the bytes are wanted (`folio_materialize`).
        blocks.retain(|&(b, pfn)| !self.page_contents.set_lazy(pfn, b));
        self.read_into_slots(&mut blocks)
    }

    /// Read the disk blocks of `blocks` (block, page) into the pages'
    /// slots, one host read per run of consecutive blocks.
    fn read_into_slots(&mut self, blocks: &mut [(u64, Pfn)]) -> MmResult<()> {
        blocks.sort_unstable_by_key(|&(b, _)| b);
        for run in blocks.chunk_by(|a, b| a.0 + 1 == b.0) {
            let pfns: Vec<Pfn> = run.iter().map(|&(_, pfn)| pfn).collect();
            let store = &self.vfs.store;
            self.page_contents
                .fill_with(&pfns, |slots| store.read_run_into(run[0].0, slots))
                .map_err(|e| MmError::Io(format!("/dev/sda1: read error: {e}")))?;
        }
        Ok(())
    }

    /// Give lazy pages their bytes before anyone reads or changes them:
    /// the distinct pages `pfns` that still have their bytes on the disk
    /// read them now, in runs of consecutive blocks.
    pub(crate) fn folio_materialize(&mut self, pfns: &[Pfn]) -> MmResult<()> {
        let mut blocks: Vec<(u64, Pfn)> = pfns
            .iter()
            .filter_map(|&pfn| Some((self.page_contents.lazy_block(pfn)?, pfn)))
            .collect();
        if blocks.is_empty() {
            return Ok(());
        }
        self.read_into_slots(&mut blocks)
    }

    /// [`Self::folio_materialize`] of the cached pages of `ino` from
    /// `first` up to `last`, for a reader about to copy them out.
    fn materialize_cached(&mut self, ino: u32, first: u64, last: u64) -> MmResult<()> {
        let inode = self.vfs.inode(ino)?;
        let pfns: Vec<Pfn> = (first..last).filter_map(|i| inode.pages.get(i)).collect();
        self.folio_materialize(&pfns)
    }

    /// `filemap_fault`: the cached page of file page `index` for a page
    /// fault, and whether it had to be read first (a major fault). A hit
    /// on the PG_readahead page starts the next window
    /// (`do_async_mmap_readahead`); a miss reads around the page
    /// (`do_sync_mmap_readahead`: `ra_pages` starting `ra_pages / 2`
    /// before it, the last quarter asynchronous), or only the page once
    /// faults have missed more than MMAP_LOTSAMISS times.
    pub(crate) fn filemap_fault(&mut self, ino: u32, index: u64) -> MmResult<(Pfn, bool)> {
        let inode = self.vfs.inode_mut(ino)?;
        if let Some(pfn) = inode.pages.get(index) {
            inode.ra.mmap_miss = inode.ra.mmap_miss.saturating_sub(1);
            if inode.ra.marker == Some(index) {
                inode.ra.marker = None;
                // Held: the readahead's allocations may reclaim.
                self.folio_get(pfn);
                let ra = self.ondemand_readahead(ino, index, 1, true);
                self.folio_put(pfn);
                ra?;
            }
            return Ok((pfn, false));
        }
        if inode.ra.mmap_miss < MMAP_LOTSAMISS * 10 {
            inode.ra.mmap_miss += 1;
        }
        if inode.ra.mmap_miss <= MMAP_LOTSAMISS {
            let ra = RaState {
                start: index.saturating_sub(READAHEAD_PAGES / 2),
                size: READAHEAD_PAGES,
                async_size: READAHEAD_PAGES / 4,
                prev_index: inode.ra.prev_index,
                marker: None,
                mmap_miss: inode.ra.mmap_miss,
            };
            inode.ra = ra;
            let newly = self.read_window(ino, ra.start, ra.size)?;
            let marker = ra.start + ra.size - ra.async_size;
            if newly.contains(&marker) {
                self.vfs.inode_mut(ino)?.ra.marker = Some(marker);
            }
        }
        let pfn = match self.vfs.inode(ino)?.pages.get(index) {
            Some(pfn) => pfn,
            None => self.read_cache_page(ino, index)?,
        };
        Ok((pfn, true))
    }

    /// The cached page of file page `index` that fault-around may map
    /// (`next_uptodate_folio`: present, and not the PG_readahead page,
    /// which is left to fault and start the next window).
    pub(crate) fn filemap_map_candidate(&self, ino: u32, index: u64) -> Option<Pfn> {
        let inode = self.vfs.inode(ino).ok()?;
        if inode.ra.marker == Some(index) {
            return None;
        }
        inode.pages.get(index)
    }

    /// `filemap_read`: `len` bytes at `off` (short at end of file).
    pub fn filemap_read(&mut self, ino: u32, off: u64, len: u64) -> MmResult<Vec<u8>> {
        let mut out = Vec::new();
        self.filemap_read_into(ino, off, len, Some(&mut out))?;
        Ok(out)
    }

    /// The read path; the bytes go to `out` when given (a `read` command
    /// of the control language only wants the cache's work). Returns the
    /// bytes read.
    fn filemap_read_into(
        &mut self,
        ino: u32,
        off: u64,
        len: u64,
        mut out: Option<&mut Vec<u8>>,
    ) -> MmResult<u64> {
        self.regular(ino)?;
        let size = self.vfs.inode(ino)?.size;
        let end = off.saturating_add(len).min(size);
        if off >= end {
            return Ok(0);
        }
        if self.swap.is_swapfile(ino) {
            return self.swapfile_read(ino, off, end, out);
        }
        let (first, last) = page_range(off, end - off);
        for index in first..last {
            let pfn = self.filemap_get_page(ino, index, last - index)?;
            // The copy to the reader: kernel time.
            self.account_system(cputime::TOUCH_PAGE_NS);
            let Some(out) = out.as_deref_mut() else {
                continue;
            };
            let page_start = index * PAGE_SIZE;
            let from = off.max(page_start) - page_start;
            let to = end.min(page_start + PAGE_SIZE) - page_start;
            if self.page_contents.lazy_block(pfn).is_some() {
                // This page and the cached ones after it, in one go.
                self.materialize_cached(ino, index, last)?;
            }
            match self.page_contents.get(pfn) {
                Some(bytes) => out.extend_from_slice(&bytes[from as usize..to as usize]),
                None => out.resize(out.len() + (to - from) as usize, 0),
            }
        }
        self.vfs.inode_mut(ino)?.ra.prev_index = Some((end - 1) / PAGE_SIZE);
        Ok(end - off)
    }

    /// `read PATH OFF SIZE` by the running process: through the cache,
    /// counted in its `io` (rchar, syscr).
    pub fn ksys_read(&mut self, path: &str, off: u64, len: u64) -> MmResult<u64> {
        let ino = self.vfs_resolve(path)?;
        let n = self.filemap_read_into(ino, off, len, None)?;
        if let Some(io) = self.running_ioac() {
            io.rchar += n;
            io.syscr += 1;
        }
        Ok(n)
    }

    /// `write PATH OFF SIZE [byte=B]` by the running process: the file is
    /// created if missing (its directory must exist) and extended.
    pub fn ksys_write(&mut self, path: &str, off: u64, len: u64, byte: u8) -> MmResult<u64> {
        let ino = match self.vfs_resolve(path) {
            Ok(ino) => ino,
            Err(MmError::NotFound(_)) => {
                let (dir, name) = self.vfs_resolve_parent(path)?;
                self.vfs_create(dir, name, FileKind::Regular)?
            }
            Err(e) => return Err(e),
        };
        let chunk = [byte; PAGE_SIZE as usize];
        let mut done = 0;
        while done < len {
            // Page by page: a 1G write needs no 1G buffer.
            let at = off + done;
            let n = (PAGE_SIZE - at % PAGE_SIZE).min(len - done);
            self.filemap_write(ino, at, &chunk[..n as usize])?;
            done += n;
        }
        if let Some(io) = self.running_ioac() {
            io.wchar += len;
            io.syscw += 1;
        }
        Ok(len)
    }

    /// `fsync PATH`.
    pub fn ksys_fsync(&mut self, path: &str) -> MmResult<()> {
        let ino = self.vfs_resolve(path)?;
        self.regular(ino)?;
        self.vfs_fsync(ino)
    }

    /// The I/O accounting of the running user process, if one runs.
    pub(crate) fn running_ioac(&mut self) -> Option<&mut super::process::IoAccounting> {
        let pid = self.running_task()?;
        let slot = self.procs.slot_of(pid).ok()?;
        self.procs.get_mut(slot).map(|p| &mut p.ioac)
    }

    /// `generic_perform_write`: write `data` at `off`, extending the file;
    /// pages are dirtied, then `balance_dirty_pages` may write back.
    pub fn filemap_write(&mut self, ino: u32, off: u64, data: &[u8]) -> MmResult<usize> {
        self.regular(ino)?;
        // generic_write_checks: swap I/O owns the blocks of an active swap file.
        if self.swap.is_swapfile(ino) {
            return Err(MmError::TextBusy(format!(
                "inode {ino} is an active swap file; swapoff it before writing"
            )));
        }
        let end = off
            .checked_add(data.len() as u64)
            .filter(|&e| e <= MAX_FILE_SIZE)
            .ok_or_else(|| MmError::TooBig(format!("a file may not pass {MAX_FILE_SIZE} bytes")))?;
        if data.is_empty() {
            return Ok(0);
        }
        let size = self.vfs.inode(ino)?.size;
        let (first, last) = page_range(off, data.len() as u64);
        for index in first..last {
            let page_start = index * PAGE_SIZE;
            let from = off.max(page_start) - page_start;
            let to = end.min(page_start + PAGE_SIZE) - page_start;
            // A partial page keeps what it had: read it first.
            let whole = from == 0 && (to == PAGE_SIZE || page_start + to >= size);
            let pfn = match self.vfs.inode(ino)?.pages.get(index) {
                Some(pfn) => {
                    self.mark_page_accessed(pfn);
                    pfn
                }
                None if whole => self.add_to_page_cache(ino, index, true)?,
                None => self.filemap_get_page(ino, index, 1)?,
            };
            self.folio_materialize(&[pfn])?;
            let src = &data[(page_start + from - off) as usize..(page_start + to - off) as usize];
            if src.iter().any(|&b| b != 0) || self.page_contents.get(pfn).is_some() {
                let bytes = self.page_contents.get_or_zero(pfn);
                bytes[from as usize..to as usize].copy_from_slice(src);
            }
            self.set_page_dirty(ino, pfn);
            // The copy itself: kernel time.
            self.account_system(cputime::TOUCH_PAGE_NS);
        }
        let now = self.clock_ns;
        let inode = self.vfs.inode_mut(ino)?;
        inode.size = inode.size.max(end);
        inode.mtime_ns = now;
        // file_update_time / i_size_write: the inode joins the journal.
        self.ext4_dirty_inode(ino);
        self.balance_dirty_pages()?;
        Ok(data.len())
    }

    /// `truncate`: cut or extend a file; pages and blocks past the end go.
    pub fn vfs_truncate(&mut self, ino: u32, size: u64) -> MmResult<()> {
        self.regular(ino)?;
        if size > MAX_FILE_SIZE {
            return Err(MmError::TooBig(format!(
                "a file may not pass {MAX_FILE_SIZE} bytes"
            )));
        }
        let old = self.vfs.inode(ino)?.size;
        // inode_newsize_ok: an active swap file may grow, never shrink
        // (nor be "truncated" to its own size).
        if size <= old && self.swap.is_swapfile(ino) {
            return Err(MmError::TextBusy(format!(
                "inode {ino} is an active swap file; swapoff it before truncating"
            )));
        }
        if size < old {
            self.truncate_inode_pages(ino, size);
            // The last partial page keeps only what lies before the end.
            let index = size / PAGE_SIZE;
            let cut = (size % PAGE_SIZE) as usize;
            if cut > 0
                && let Some(pfn) = self.vfs.inode(ino)?.pages.get(index)
                && self.folio_materialize(&[pfn]).is_ok()
                && self.page_contents.get(pfn).is_some()
            {
                self.page_contents.get_or_zero(pfn)[cut..].fill(0);
            }
        }
        let now = self.clock_ns;
        let inode = self.vfs.inode_mut(ino)?;
        inode.size = size;
        inode.mtime_ns = now;
        self.ext4_dirty_inode(ino);
        Ok(())
    }

    /// `truncate_inode_pages`: drop the cached pages and the blocks of
    /// `ino` from byte `from` on (dirty ones are discarded, not written).
    pub(crate) fn truncate_inode_pages(&mut self, ino: u32, from: u64) {
        let first = from.div_ceil(PAGE_SIZE);
        // truncate_pagecache: unmap first (private COW copies too), so a
        // later access past the new end is a SIGBUS.
        self.unmap_mapping_range(ino, first);
        // A page leaves the cache only once its write is done.
        self.wait_on_writeback_from(ino, first);
        let Ok(inode) = self.vfs.inode_mut(ino) else {
            return;
        };
        let pages = inode.pages.truncate(first);
        let blocks: Vec<u64> = inode.blocks.split_off(&first).into_values().collect();
        for pfn in pages {
            self.delete_from_page_cache(ino, pfn);
        }
        // Shadow-only nodes past the end went too.
        self.xa_sync(ino);
        // ext4_free_blocks: the bitmaps of the freed blocks.
        let layout = self.ext4_layout();
        let bitmaps: std::collections::BTreeSet<u64> =
            blocks.iter().map(|&b| layout.block_bitmap_of(b)).collect();
        for block in blocks {
            self.vfs.free_block(block);
        }
        for bitmap in bitmaps {
            self.ext4_dirty_meta(bitmap, false);
        }
    }

    /// Take a page out of the cache (already removed from the inode's
    /// index) and free it; a write in flight is waited for first
    /// (callers wait before they unlink the page from the index, so this
    /// is their safety net).
    pub(crate) fn delete_from_page_cache(&mut self, ino: u32, pfn: Pfn) {
        self.trace_filemap(false, ino, pfn, self.page_alloc.frames.rmap(pfn).1.0);
        let index = self.page_alloc.frames.rmap(pfn).1.0;
        self.folio_wait_writeback(ino, index);
        self.clear_page_dirty(ino, index, pfn);
        if let Ok(inode) = self.vfs.inode_mut(ino) {
            inode.reclaim.remove(&index);
        }
        self.vfs.stats.nr_pages -= 1;
        self.lru_del(pfn);
        self.drop_page_bytes(pfn);
        self.free_kernel_page(pfn);
        self.xa_sync(ino);
    }

    /// Reclaim one inactive page-cache page (`shrink_folio_list` for a
    /// file folio, Linux 6.18):
    /// - under writeback: marked PG_reclaim and activated, so reclaim
    ///   goes on looking for clean pages; its completion rotates it to the
    ///   inactive tail (case 1 when kswapd finds it marked already:
    ///   `nr_immediate`, the caller throttles; case 2 otherwise);
    /// - a journaled buffer is pinned until its commit: kept;
    /// - mapped: unmapped first (its dirty PTEs make it dirty); kept when
    ///   that fails;
    /// - dirty: reclaim does not write file pages (`pageout` answers
    ///   PAGE_ACTIVATE for them; only the flusher writes): marked
    ///   PG_reclaim (NR_VMSCAN_IMMEDIATE) and activated;
    /// - clean: evicted, leaving a shadow entry (`__remove_mapping`).
    pub(crate) fn reclaim_file_page(&mut self, pfn: Pfn) -> FileReclaim {
        let (slot, index) = self.page_alloc.frames.rmap(pfn);
        let (ino, index) = (slot.0, index.0);
        if self.page_under_writeback(ino, index) {
            let kswapd = self.running_task() == Some(self.kthreads.kswapd);
            let Ok(inode) = self.vfs.inode_mut(ino) else {
                return FileReclaim::Keep;
            };
            let marked = !inode.reclaim.insert(index);
            return FileReclaim::Writeback {
                immediate: kswapd && marked,
            };
        }
        // A journaled buffer is pinned until its commit; a page a fault
        // or read holds is kept (its extra reference).
        if self.buffer_pinned(ino, index) || self.folio_pinned(pfn) {
            return FileReclaim::Keep;
        }
        // try_to_unmap: a mapped page leaves every page table first (its
        // dirty PTEs make it dirty).
        if self.page_alloc.frames.mapcount(pfn) > 0 && !self.try_to_unmap_file(pfn) {
            return FileReclaim::Keep;
        }
        if self.page_alloc.frames.has_flag(pfn, FLAG_DIRTY) {
            self.vfs.stats.nr_vmscan_immediate += 1;
            if let Ok(inode) = self.vfs.inode_mut(ino) {
                inode.reclaim.insert(index);
            }
            return FileReclaim::Dirty;
        }
        // workingset_eviction: a shadow remembers when the page left and
        // whether it was part of the workingset.
        let shadow = Shadow {
            eviction: self.vfs.stats.nonresident_age,
            workingset: self.page_alloc.frames.is_workingset(pfn),
        };
        self.vfs.stats.nonresident_age += 1;
        if let Ok(inode) = self.vfs.inode_mut(ino) {
            inode.pages.evict(index, shadow);
        }
        self.delete_from_page_cache(ino, pfn);
        FileReclaim::Freed
    }

    /// `drop_caches` 1: every clean page-cache page no process maps goes
    /// (dirty ones stay: `sync` first, as the kernel documentation says). Returns the pages
    /// dropped.
    pub fn drop_pagecache(&mut self) -> u64 {
        let clean: Vec<(u32, u64, Pfn)> = self
            .vfs
            .iter()
            .flat_map(|i| i.pages.iter().map(move |(idx, pfn)| (i.ino, idx, pfn)))
            // invalidate_mapping_pages skips dirty, writeback and mapped
            // pages.
            .filter(|&(ino, index, pfn)| {
                !self.page_alloc.frames.has_flag(pfn, FLAG_DIRTY)
                    && !self.page_under_writeback(ino, index)
                    && self.page_alloc.frames.mapcount(pfn) == 0
                    && !self.buffer_pinned(ino, index)
            })
            .collect();
        let n = clean.len() as u64;
        for (ino, index, pfn) in clean {
            if let Ok(inode) = self.vfs.inode_mut(ino) {
                inode.pages.remove(index);
            }
            self.delete_from_page_cache(ino, pfn);
        }
        self.events.drop_pagecache += 1;
        n
    }

    /// Check the page cache against the frames: every cached page is a
    /// PageCache frame with the right reverse map, and the counters add up.
    pub fn check_page_cache(&self) -> Result<(), String> {
        let (mut pages, mut dirty) = (0, 0);
        for inode in self.vfs.iter() {
            if inode.xa_objects.len() as u64 > inode.pages.nr_nodes() {
                return Err(format!(
                    "inode {}: {} radix_tree_node objects for {} index nodes",
                    inode.ino,
                    inode.xa_objects.len(),
                    inode.pages.nr_nodes()
                ));
            }
            let mut own_dirty = 0;
            for (index, pfn) in inode.pages.iter() {
                let frames = &self.page_alloc.frames;
                if frames.kind(pfn) != PageKind::PageCache {
                    return Err(format!(
                        "inode {} page {index}: pfn {pfn} is not page cache",
                        inode.ino
                    ));
                }
                if frames.rmap(pfn) != (MmSlot(inode.ino), Vpn(index)) {
                    return Err(format!(
                        "inode {} page {index}: pfn {pfn} maps elsewhere",
                        inode.ino
                    ));
                }
                if frames.has_flag(pfn, FLAG_DIRTY) {
                    own_dirty += 1;
                }
            }
            if own_dirty != inode.dirty.len() as u64 {
                return Err(format!(
                    "inode {}: {} dirty pages counted as {}",
                    inode.ino,
                    own_dirty,
                    inode.dirty.len()
                ));
            }
            pages += inode.pages.len();
            dirty += own_dirty;
        }
        self.check_buffers()?;
        self.check_writeback()?;
        if pages != self.vfs.stats.nr_pages || dirty != self.vfs.stats.nr_dirty {
            return Err(format!(
                "page cache holds {pages} pages ({dirty} dirty), counted {:?}",
                self.vfs.stats
            ));
        }
        Ok(())
    }
}

impl Kernel {
    /// `drop_caches` (fs/drop_caches.c): 1 the clean page cache, 2 the
    /// reclaimable slab objects (dentries, inodes), 3 both.
    pub fn drop_caches(&mut self, mode: u64) {
        if mode & 1 != 0 {
            self.drop_pagecache();
        }
        if mode & 2 != 0 {
            let objects = self.slab.shrinkable_objects();
            self.shrink_slab(objects);
            self.events.drop_slab += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctl::{Machine, Scope};
    use crate::mm::buffer::BDEV_INO;
    use crate::mm::namei::ROOT_INO;
    use crate::mm::process::testing::boot_tmp as boot;

    fn cached(k: &Kernel, ino: u32) -> u64 {
        k.vfs.inode(ino).unwrap().pages.len()
    }

    /// A file of `pages` pages of bytes 0..251, written back and dropped
    /// from the cache.
    fn cold_file(k: &mut Machine, name: &str, pages: u64) -> u32 {
        let ino = k.vfs_create(ROOT_INO, name, FileKind::Regular).unwrap();
        let data: Vec<u8> = (0..pages * PAGE_SIZE).map(|i| (i % 251) as u8).collect();
        k.filemap_write(ino, 0, &data).unwrap();
        k.ksys_sync().unwrap();
        k.drop_pagecache();
        assert_eq!(cached(k, ino), 0);
        k.check_invariants().unwrap();
        ino
    }

    /// A cold read leaves the pages' bytes on the disk (lazy) and every
    /// reader still sees the file: a read copying out, a partial write
    /// (the rest of the page kept), a shared mapping's write fault and its
    /// writeback (the block keeps its bytes), PID/mem.
    #[test]
    fn lazily_read_pages_show_their_bytes_to_every_reader() {
        use crate::mm::process::testing::{run, spawn};
        let mut k = boot(1 << 30);
        let ino = cold_file(&mut k, "lazy", 8);
        let want: Vec<u8> = (0..8 * PAGE_SIZE).map(|i| (i % 251) as u8).collect();
        // `read` of the control language: the cache's work, no copy.
        k.filemap_read_into(ino, 0, 8 * PAGE_SIZE, None).unwrap();
        let pfn = |k: &Kernel, i: u64| k.vfs.inode(ino).unwrap().pages.get(i).unwrap();
        assert!((0..8).all(|i| k.page_contents.lazy_block(pfn(&k, i)).is_some()));
        k.check_invariants().unwrap();
        // A reader copying out gets the file.
        assert_eq!(k.filemap_read(ino, 0, 2 * PAGE_SIZE).unwrap(), want[..8192]);
        assert!(k.page_contents.lazy_block(pfn(&k, 1)).is_none());
        // A partial write into a lazy page keeps the rest of it.
        assert!(k.page_contents.lazy_block(pfn(&k, 3)).is_some());
        k.filemap_write(ino, 3 * PAGE_SIZE + 10, b"xyz").unwrap();
        let mut want = want;
        want[3 * 4096 + 10..3 * 4096 + 13].copy_from_slice(b"xyz");
        // A shared mapping dirties lazy page 5 without changing a byte;
        // PID/mem reads page 6 through it.
        let pid = spawn(&mut k, "p");
        run(&mut k, pid, "mmap 32K file=/lazy shared name=f").unwrap();
        assert!(k.page_contents.lazy_block(pfn(&k, 5)).is_some());
        let base = k
            .procs
            .by_pid(pid)
            .unwrap()
            .mm
            .vmas()
            .find(|v| v.file.is_some())
            .unwrap()
            .start;
        run(
            &mut k,
            pid,
            &format!("touch {:#x} 4K write", base + 5 * PAGE_SIZE),
        )
        .unwrap();
        assert_eq!(
            k.read_mem(pid, base + 6 * PAGE_SIZE, 4096).unwrap(),
            want[6 * 4096..7 * 4096]
        );
        k.ksys_sync().unwrap();
        k.check_invariants().unwrap();
        run(&mut k, pid, "munmap f 32K").unwrap();
        k.drop_pagecache();
        assert_eq!(cached(&k, ino), 0);
        assert_eq!(k.filemap_read(ino, 0, 8 * PAGE_SIZE).unwrap(), want);
    }

    /// The page index is charged to `radix_tree_node`, one object per
    /// 64-slot node, as the xarray allocates its nodes from that cache.
    #[test]
    fn index_nodes_come_from_the_radix_tree_node_cache() {
        use crate::mm::slab_common::RADIX_TREE_NODE;
        let mut k = boot(1 << 30);
        let objects = |k: &Kernel| k.slab.cache(RADIX_TREE_NODE).unwrap().active_objs();
        let charged = |k: &Kernel| -> u64 { k.vfs.iter().map(|i| i.xa_objects.len() as u64).sum() };
        // Boot's objects plus one per index node of every file (the
        // disk's own cache of metadata, Buffers, included).
        let base = objects(&k) - charged(&k);
        let ino = k.vfs_create(ROOT_INO, "f", FileKind::Regular).unwrap();
        let nodes = |k: &Kernel| k.vfs.inode(ino).unwrap().xa_objects.len();
        k.filemap_write(ino, 0, &vec![7u8; 65 * PAGE_SIZE as usize])
            .unwrap();
        assert_eq!(nodes(&k), 2, "pages 0..63 and 64");
        assert_eq!(objects(&k), base + charged(&k));
        k.vfs_truncate(ino, 64 * PAGE_SIZE).unwrap();
        assert_eq!(nodes(&k), 1);
        k.vfs_truncate(ino, 0).unwrap();
        assert_eq!(nodes(&k), 0);
        assert_eq!(objects(&k), base + charged(&k));
        k.check_invariants().unwrap();
    }

    #[test]
    fn bytes_survive_writeback_and_a_dropped_cache() {
        let mut k = boot(1 << 30);
        let ino = k.vfs_create(ROOT_INO, "f", FileKind::Regular).unwrap();
        let data: Vec<u8> = (0..3 * PAGE_SIZE + 100)
            .map(|i| (i * 7 % 256) as u8)
            .collect();
        assert_eq!(k.filemap_write(ino, 5, &data).unwrap(), data.len());
        let s = k.node_stats();
        assert_eq!(s.nr_dirty, 4);
        // Buffers: the inode bitmap, the group descriptors, the inode
        // table block and the root directory's block, journaled (pinned,
        // not yet dirty).
        assert_eq!(s.nr_buffers, 4);
        assert_eq!(s.nr_file_pages, 4 + 4);
        // drop_caches leaves dirty and journaled pages; sync, then they go.
        assert_eq!(k.drop_pagecache(), 0);
        k.execute_line(Scope::System, "sync").unwrap();
        assert_eq!(k.node_stats().nr_dirty, 0);
        k.write_sysctl("vm/drop_caches", "1").unwrap();
        assert_eq!(k.node_stats().nr_file_pages, 0);
        let pgpgin = k.events.pgpgin;
        let back = k.filemap_read(ino, 5, data.len() as u64).unwrap();
        assert_eq!(back, data);
        assert!(k.events.pgpgin > pgpgin);
        assert_eq!(k.filemap_read(ino, 0, 5).unwrap(), [0; 5]);
        k.check_invariants().unwrap();
    }

    /// Expected numbers from the real kernel on this machine (6.18, ext4,
    /// read_ahead_kb set to 128 for the run): reading a cold 4 MiB file
    /// page by page from its start leaves 4 pages cached after the first
    /// read, 12 after the second, still 12 after the fourth; one page read
    /// in the middle of a cold file caches just that page. (Longer streams
    /// diverge: the host's ext4 reads ahead in large folios.)
    #[test]
    fn readahead_windows_match_the_real_kernel() {
        let mut k = boot(1 << 30);
        let ino = cold_file(&mut k, "ra", 1024);
        let mut seen = Vec::new();
        for page in 0..4 {
            k.filemap_read(ino, page * PAGE_SIZE, PAGE_SIZE).unwrap();
            seen.push(cached(&k, ino));
        }
        assert_eq!(seen, [4, 12, 12, 12]);
        let other = cold_file(&mut k, "random", 1024);
        k.filemap_read(other, 100 * PAGE_SIZE, PAGE_SIZE).unwrap();
        assert_eq!(cached(&k, other), 1);
        // Readahead stops at the end of the file.
        let small = cold_file(&mut k, "small", 2);
        k.filemap_read(small, 0, 1).unwrap();
        assert_eq!(cached(&k, small), 2);
        k.check_invariants().unwrap();
    }

    #[test]
    fn a_second_access_activates_a_cached_page() {
        let mut k = boot(1 << 30);
        let ino = cold_file(&mut k, "hot", 1);
        k.filemap_read(ino, 0, 1).unwrap();
        assert_eq!(k.node_stats().nr_inactive_file, 1);
        k.filemap_read(ino, 0, 1).unwrap();
        k.filemap_read(ino, 0, 1).unwrap();
        let s = k.node_stats();
        assert_eq!((s.nr_active_file, s.nr_inactive_file), (1, 0));
        k.check_invariants().unwrap();
    }

    #[test]
    fn refaults_of_recently_evicted_pages_are_activated() {
        let mut k = boot(256 << 20);
        let hot = cold_file(&mut k, "hot", 2048);
        for _ in 0..2 {
            k.filemap_read(hot, 0, 2048 * PAGE_SIZE).unwrap();
        }
        assert_eq!(k.node_stats().nr_active_file, 2048);
        // Reclaim deactivates and evicts part of it, leaving shadows.
        k.execute_line(Scope::System, "reclaim 2M").unwrap();
        let evicted = 2048 - cached(&k, hot);
        // (The reclaimable slab caches give some of the 2M.)
        assert!(evicted >= 256, "{evicted}");
        assert_eq!(k.vfs.inode(hot).unwrap().pages.nr_shadows(), evicted);
        // Read again: every evicted page refaults, and with most of the
        // file still active, the distance is short: they come back active.
        k.filemap_read(hot, 0, 2048 * PAGE_SIZE).unwrap();
        assert_eq!(k.events.workingset_refault_file, evicted);
        assert_eq!(k.events.workingset_activate_file, evicted);
        // Every refaulted page is active again; deactivated pages that
        // were not evicted are only referenced now.
        let s = k.node_stats();
        assert!(s.nr_active_file >= evicted, "{} active", s.nr_active_file);
        assert_eq!(s.nr_active_file + s.nr_inactive_file, 2048);
        assert_eq!(k.vfs.inode(hot).unwrap().pages.nr_shadows(), 0);
        k.check_invariants().unwrap();
    }

    /// Evict pages `range` of `ino` as reclaim would (shadow entries).
    fn evict(k: &mut Machine, ino: u32, range: std::ops::Range<u64>) {
        for index in range {
            let pfn = k.vfs.inode(ino).unwrap().pages.get(index).unwrap();
            assert_eq!(k.reclaim_file_page(pfn), FileReclaim::Freed);
        }
    }

    /// A vmstat counter as the file shows it.
    fn vmstat(k: &Kernel, key: &str) -> u64 {
        crate::procfs::vmstat::vmstat(k)
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key} ")))
            .unwrap()
            .parse()
            .unwrap()
    }

    /// workingset.c by hand. `ws` (128 pages = index nodes 0 and 1) is
    /// made active, then deactivated by reclaim (PG_workingset); `once`
    /// (64 pages, node 0) is read once (inactive, not workingset); `big`
    /// (256 pages) stays active. Ages count evictions and activations.
    /// ```text
    ///   ws:   [0 ...... 31 | 32 ..... 63]  [64 ............ 127]
    ///          shadow(ws)    pages          shadow(ws)  <- shadow-only node
    ///   once: [0 ............ 63]
    ///          shadow(!ws)                              <- shadow-only node
    /// ```
    #[test]
    fn refaults_restore_the_workingset_and_shadow_only_nodes_are_counted() {
        let mut k = boot(256 << 20);
        let ws = cold_file(&mut k, "ws", 128);
        let once = cold_file(&mut k, "once", 64);
        let big = cold_file(&mut k, "big", 256);
        let age0 = k.vfs.stats.nonresident_age;
        for _ in 0..2 {
            k.filemap_read(ws, 0, 128 * PAGE_SIZE).unwrap();
        }
        // 128 activations age the clock.
        assert_eq!(k.vfs.stats.nonresident_age, age0 + 128);
        let zone = k
            .page_alloc
            .zone_of(k.vfs.inode(ws).unwrap().pages.get(0).unwrap())
            .unwrap();
        k.shrink_active(zone, 128, true);
        assert_eq!(k.node_stats().nr_active_file, 0);
        k.filemap_read(once, 0, 64 * PAGE_SIZE).unwrap();
        for _ in 0..2 {
            k.filemap_read(big, 0, 256 * PAGE_SIZE).unwrap();
        }
        let base = age0 + 128 + 256;
        assert_eq!(k.vfs.stats.nonresident_age, base);
        evict(&mut k, ws, 64..128);
        evict(&mut k, ws, 0..32);
        evict(&mut k, once, 0..64);
        assert_eq!(k.vfs.stats.nonresident_age, base + 160);
        let shadow = k.vfs.inode(ws).unwrap().pages.shadow(64).unwrap();
        assert_eq!((shadow.eviction, shadow.workingset), (base, true));
        let shadow = k.vfs.inode(once).unwrap().pages.shadow(63).unwrap();
        assert_eq!((shadow.eviction, shadow.workingset), (base + 159, false));
        // ws's node 1 and once's node 0 hold shadows only.
        assert_eq!(vmstat(&k, "workingset_nodes"), 2);

        // ws 64..127 refault: distance 160 (each activation moves both the
        // clock and the active list by one) against 256 active pages:
        // activated, and restored, since they were workingset.
        k.filemap_read(ws, 64 * PAGE_SIZE, 64 * PAGE_SIZE).unwrap();
        assert_eq!(vmstat(&k, "workingset_refault_file"), 64);
        assert_eq!(vmstat(&k, "workingset_activate_file"), 64);
        assert_eq!(vmstat(&k, "workingset_restore_file"), 64);
        assert_eq!(vmstat(&k, "workingset_nodes"), 1);
        assert_eq!(k.node_stats().nr_active_file, 256 + 64);
        let pfn = k.vfs.inode(ws).unwrap().pages.get(64).unwrap();
        assert!(k.page_alloc.frames.is_workingset(pfn));

        // once 0..63: distance 224 - 96 = 128 <= 320 active: activated,
        // but never active before: no restore.
        k.filemap_read(once, 0, 64 * PAGE_SIZE).unwrap();
        assert_eq!(vmstat(&k, "workingset_refault_file"), 128);
        assert_eq!(vmstat(&k, "workingset_activate_file"), 128);
        assert_eq!(vmstat(&k, "workingset_restore_file"), 64);
        assert_eq!(vmstat(&k, "workingset_nodes"), 0);
        assert_eq!(k.vfs.stats.nonresident_age, base + 160 + 128);

        // Overwriting evicted pages is no refault (__GFP_WRITE).
        k.filemap_write(ws, 0, &[1; 32 * PAGE_SIZE as usize])
            .unwrap();
        assert_eq!(vmstat(&k, "workingset_refault_file"), 128);
        assert_eq!(k.vfs.inode(ws).unwrap().pages.nr_shadows(), 0);

        // A refault from further back than the workingset is not
        // activated: evict once's 64 pages again, age the clock by 400
        // activations of a fourth file, then shrink the active list so
        // that nothing is active.
        evict(&mut k, once, 0..64);
        let far = cold_file(&mut k, "far", 400);
        for _ in 0..2 {
            k.filemap_read(far, 0, 400 * PAGE_SIZE).unwrap();
        }
        let active = k.node_stats().nr_active_file;
        k.shrink_active(zone, active, true);
        assert_eq!(k.node_stats().nr_active_file, 0);
        k.filemap_read(once, 0, 64 * PAGE_SIZE).unwrap();
        assert_eq!(vmstat(&k, "workingset_refault_file"), 192);
        assert_eq!(vmstat(&k, "workingset_activate_file"), 128);
        k.check_invariants().unwrap();
    }

    #[test]
    fn vfs_cache_pressure_0_keeps_dentries_and_inodes() {
        let mut k = boot(256 << 20);
        k.write_sysctl("vm/vfs_cache_pressure", "0").unwrap();
        let objects = k.slab.shrinkable_objects();
        let f = cold_file(&mut k, "c", 4096);
        k.filemap_read(f, 0, 4096 * PAGE_SIZE).unwrap();
        k.execute_line(Scope::System, "reclaim 8M").unwrap();
        assert_eq!(k.slab.shrinkable_objects(), objects);
        assert!(k.events.pgsteal_file >= 2048);
        k.check_invariants().unwrap();
    }

    #[test]
    fn writers_above_dirty_ratio_write_back_themselves_and_the_flusher_the_rest() {
        let mut k = boot(256 << 20);
        k.write_sysctl("vm/dirty_ratio", "5").unwrap();
        let ino = k.vfs_create(ROOT_INO, "big", FileKind::Regular).unwrap();
        k.ksys_write("/big", 0, 64 << 20, b'x').unwrap();
        let (background, limit) = k.dirty_thresholds();
        let s = k.node_stats();
        assert!(s.nr_dirty <= limit, "{} dirty, limit {limit}", s.nr_dirty);
        assert!(s.nr_written > 0);
        assert_eq!(k.vfs.inode(ino).unwrap().size, 64 << 20);
        // Older than dirty_expire_centisecs (30 s): the flusher writes them.
        assert!(s.nr_dirty > 0 && s.nr_dirty <= background.max(limit));
        k.execute_line(Scope::System, "tick 3001").unwrap();
        // What stays dirty is metadata: the journal committed it within
        // those 30 s, and it expires 30 s after that.
        let bdev = k.vfs.inode(BDEV_INO).unwrap().dirty.len() as u64;
        assert_eq!(k.node_stats().nr_dirty, bdev);
        k.execute_line(Scope::System, "tick 3001").unwrap();
        assert_eq!(k.node_stats().nr_dirty, 0);
        k.check_invariants().unwrap();
    }

    #[test]
    fn swappiness_0_reclaims_the_cache_and_spares_anon() {
        let mut k = boot(512 << 20);
        k.execute_line(Scope::System, "mkswap /dev/sdb 256M")
            .unwrap();
        k.execute_line(Scope::System, "swapon /dev/sdb").unwrap();
        let pid = k.execute_line(Scope::System, "spawn a").unwrap().unwrap();
        k.execute_line(Scope::Process(pid), "mmap 100M name=h")
            .unwrap();
        k.execute_line(Scope::Process(pid), "touch h 100M").unwrap();
        k.execute_line(Scope::Process(pid), "write /cache 0 200M")
            .unwrap();
        k.execute_line(Scope::System, "sync").unwrap();
        k.write_sysctl("vm/swappiness", "0").unwrap();
        let anon = k.node_stats().nr_anon_pages;
        let file = k.node_stats().nr_file_pages;
        let slab = k.slab.nr_slab_pages();
        k.execute_line(Scope::System, "reclaim 150M").unwrap();
        let s = k.node_stats();
        assert_eq!(s.nr_anon_pages, anon, "anon stays");
        // memory.reclaim counts the slab pages the shrinker freed too.
        let freed = file - s.nr_file_pages + slab - k.slab.nr_slab_pages();
        assert!(freed >= 150 << 8, "the cache goes: {freed} pages");
        assert!(file - s.nr_file_pages >= 140 << 8);
        assert_eq!(k.events.pswpout, 0);
        assert!(k.events.pgsteal_file >= 140 << 8);
        k.check_invariants().unwrap();
    }

    #[test]
    fn unlink_and_truncate_give_pages_and_blocks_back() {
        let mut k = boot(1 << 30);
        // Slab may keep the pages of the inode's and dentry's slabs.
        let free = |k: &Kernel| k.page_alloc.total_free() + k.slab.nr_slab_pages();
        let before = free(&k);
        // The root directory's block.
        assert_eq!(k.vfs.blocks_used(), 1);
        let ino = k.vfs_create(ROOT_INO, "t", FileKind::Regular).unwrap();
        k.filemap_write(ino, 0, &[1u8; 40960]).unwrap();
        k.vfs_fsync(ino).unwrap();
        assert_eq!(k.vfs.blocks_used(), 1 + 10);
        k.vfs_truncate(ino, 4097).unwrap();
        assert_eq!(k.vfs.blocks_used(), 1 + 2);
        assert_eq!(cached(&k, ino), 2);
        assert_eq!(k.filemap_read(ino, 4095, 10).unwrap(), [1, 1]);
        k.vfs_unlink(ROOT_INO, "t").unwrap();
        assert_eq!(k.vfs.blocks_used(), 1);
        // The metadata it touched stays cached (Buffers): the inode
        // bitmap, the group descriptors, the inode table block, the root
        // directory's block, the block bitmap, and the descriptor and
        // commit blocks of fsync's journal commit.
        assert_eq!(k.nr_buffers(), 7);
        assert_eq!(k.node_stats().nr_file_pages, 7);
        assert_eq!(free(&k) + 7, before);
        k.check_invariants().unwrap();
    }

    #[test]
    fn a_full_disk_is_enospc_and_stays_consistent() {
        let mut k = boot(256 << 20);
        k.vfs.disk_pages = 256;
        // A 1M disk: 64 inodes (4 table blocks), no journal, 249 data
        // blocks, the root directory's one of them.
        assert_eq!(k.vfs.data_pages(), 249);
        let pid = k.execute_line(Scope::System, "spawn w").unwrap().unwrap();
        let err = k
            .execute_line(Scope::Process(pid), "write /f 0 2M")
            .and_then(|_| k.execute_line(Scope::System, "sync"))
            .unwrap_err();
        assert_eq!(err.errno(), libc::ENOSPC);
        assert_eq!(k.vfs.blocks_used(), 249);
        k.check_invariants().unwrap();
        k.execute_line(Scope::Process(pid), "read /f 0 2M").unwrap();
        let io = k.procs.by_pid(pid).unwrap().ioac;
        assert_eq!((io.wchar, io.rchar), (2 << 20, 2 << 20));
    }
}
