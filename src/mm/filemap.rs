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
use super::cputime;
use super::error::{MmError, MmResult};
use super::namei::FileKind;
use super::page_alloc::{FLAG_DIRTY, PageKind};
use super::types::{MmSlot, Order, PAGE_SIZE, Pfn, Vpn};

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
    /// Dirty pages reclaim had to write (NR_VMSCAN_WRITE, file part).
    pub nr_vmscan_write: u64,
}

/// Pages of `[off, off + len)`: first and one-past-last index.
fn page_range(off: u64, len: u64) -> (u64, u64) {
    (off / PAGE_SIZE, (off + len).div_ceil(PAGE_SIZE))
}

impl Kernel {
    /// A regular file's inode, or EISDIR/ENOENT.
    fn regular(&self, ino: u32) -> MmResult<()> {
        match self.vfs.inode(ino)?.kind {
            FileKind::Regular => Ok(()),
            FileKind::Directory => Err(MmError::IsDir(format!("inode {ino} is a directory"))),
        }
    }

    /// `filemap_add_folio`: a new page of `ino` at `index`, on the
    /// inactive file list (GFP_HIGHUSER_MOVABLE, so reclaim may run).
    fn page_cache_alloc(&mut self, ino: u32, index: u64) -> MmResult<Pfn> {
        let zone = self.procs.user_zone;
        let pfn = self
            .alloc_pages(Order(0), zone, PageKind::PageCache)
            .ok_or_else(|| MmError::NoMemory("out of memory: no page for the page cache".into()))?;
        // Reclaim during the allocation may have removed the inode.
        let Ok(inode) = self.vfs.inode_mut(ino) else {
            self.free_kernel_page(pfn);
            return Err(MmError::NotFound(format!("inode {ino} went away")));
        };
        inode.pages.insert(index, pfn);
        self.page_alloc
            .frames
            .set_rmap(pfn, MmSlot(ino), Vpn(index));
        self.vfs.stats.nr_pages += 1;
        self.lru_add_file(pfn);
        Ok(pfn)
    }

    /// Read the disk block behind (ino, index) into `pfn`: a disk read
    /// (iowait) when the block holds bytes.
    fn read_block(&mut self, ino: u32, index: u64, pfn: Pfn) -> MmResult<()> {
        let Some(&block) = self.vfs.inode(ino)?.blocks.get(&index) else {
            return Ok(());
        };
        self.account_iowait(cputime::SWAP_PAGE_IO_NS);
        self.events.pgpgin += PAGE_SIZE / 1024;
        match self.vfs.store.take_copy(block) {
            Ok(Some(bytes)) => self.put_page_bytes(pfn, bytes),
            Ok(None) => {}
            Err(e) => return Err(MmError::Io(format!("/dev/sda1: read error: {e}"))),
        }
        Ok(())
    }

    /// The cached page of (ino, index), read from the disk on a miss with
    /// readahead of the following pages of the file.
    fn filemap_get_page(&mut self, ino: u32, index: u64) -> MmResult<Pfn> {
        if let Some(&pfn) = self.vfs.inode(ino)?.pages.get(&index) {
            self.mark_page_accessed(pfn);
            return Ok(pfn);
        }
        let pfn = self.page_cache_alloc(ino, index)?;
        self.read_block(ino, index, pfn)?;
        // page_cache_sync_readahead: the next pages of the file, if absent.
        let size_pages = self.vfs.inode(ino)?.size.div_ceil(PAGE_SIZE);
        for ra in index + 1..(index + READAHEAD_PAGES).min(size_pages) {
            if self.vfs.inode(ino)?.pages.contains_key(&ra) {
                break;
            }
            let page = self.page_cache_alloc(ino, ra)?;
            self.read_block(ino, ra, page)?;
        }
        Ok(pfn)
    }

    /// `filemap_read`: `len` bytes at `off` (short at end of file).
    pub fn filemap_read(&mut self, ino: u32, off: u64, len: u64) -> MmResult<Vec<u8>> {
        self.regular(ino)?;
        let size = self.vfs.inode(ino)?.size;
        let end = off.saturating_add(len).min(size);
        if off >= end {
            return Ok(Vec::new());
        }
        let mut out = Vec::with_capacity((end - off) as usize);
        let (first, last) = page_range(off, end - off);
        for index in first..last {
            let pfn = self.filemap_get_page(ino, index)?;
            let page_start = index * PAGE_SIZE;
            let from = off.max(page_start) - page_start;
            let to = end.min(page_start + PAGE_SIZE) - page_start;
            match self.page_contents.get(pfn) {
                Some(bytes) => out.extend_from_slice(&bytes[from as usize..to as usize]),
                None => out.resize(out.len() + (to - from) as usize, 0),
            }
        }
        Ok(out)
    }

    /// `generic_perform_write`: write `data` at `off`, extending the file;
    /// pages are dirtied, then `balance_dirty_pages` may write back.
    pub fn filemap_write(&mut self, ino: u32, off: u64, data: &[u8]) -> MmResult<usize> {
        self.regular(ino)?;
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
            let pfn = match self.vfs.inode(ino)?.pages.get(&index) {
                Some(&pfn) => {
                    self.mark_page_accessed(pfn);
                    pfn
                }
                None if whole => self.page_cache_alloc(ino, index)?,
                None => self.filemap_get_page(ino, index)?,
            };
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
        self.balance_dirty_pages()?;
        Ok(data.len())
    }

    /// `folio_mark_dirty`.
    fn set_page_dirty(&mut self, ino: u32, pfn: Pfn) {
        if self.page_alloc.frames.has_flag(pfn, FLAG_DIRTY) {
            return;
        }
        self.page_alloc.frames.set_flag(pfn, FLAG_DIRTY, true);
        let now = self.clock_ns;
        if let Ok(inode) = self.vfs.inode_mut(ino) {
            if inode.nr_dirty == 0 {
                inode.dirtied_when_ns = now;
            }
            inode.nr_dirty += 1;
        }
        self.vfs.stats.nr_dirty += 1;
        self.vfs.stats.nr_dirtied += 1;
    }

    /// Write one dirty page of `ino` to its block (allocated on first
    /// write; ENOSPC when the disk is full). The writer waits (iowait).
    fn writepage(&mut self, ino: u32, index: u64, pfn: Pfn) -> MmResult<()> {
        let block = match self.vfs.inode(ino)?.blocks.get(&index) {
            Some(&b) => b,
            None => {
                let b = self.vfs.alloc_block()?;
                self.vfs.inode_mut(ino)?.blocks.insert(index, b);
                b
            }
        };
        match self.page_contents.get(pfn) {
            Some(bytes) => {
                let dir = self.swap.swapdir.clone();
                let bytes: [u8; PAGE_SIZE as usize] = **bytes;
                self.vfs
                    .store
                    .put(&dir, block, &bytes)
                    .map_err(|e| MmError::Io(format!("/dev/sda1: write error: {e}")))?;
            }
            // A page of zeros is a hole on the disk.
            None => self.vfs.store.discard(block),
        }
        self.account_iowait(cputime::SWAP_PAGE_IO_NS);
        self.page_alloc.frames.set_flag(pfn, FLAG_DIRTY, false);
        let inode = self.vfs.inode_mut(ino)?;
        inode.nr_dirty -= 1;
        self.vfs.stats.nr_dirty -= 1;
        self.vfs.stats.nr_written += 1;
        self.events.pgpgout += PAGE_SIZE / 1024;
        Ok(())
    }

    /// `filemap_write_and_wait`: every dirty page of `ino` to disk.
    pub fn writeback_inode(&mut self, ino: u32) -> MmResult<()> {
        let dirty: Vec<(u64, Pfn)> = {
            let inode = self.vfs.inode(ino)?;
            if inode.nr_dirty == 0 {
                return Ok(());
            }
            inode
                .pages
                .iter()
                .filter(|(_, pfn)| self.page_alloc.frames.has_flag(**pfn, FLAG_DIRTY))
                .map(|(&i, &p)| (i, p))
                .collect()
        };
        for (index, pfn) in dirty {
            self.writepage(ino, index, pfn)?;
        }
        Ok(())
    }

    /// `fsync`.
    pub fn vfs_fsync(&mut self, ino: u32) -> MmResult<()> {
        self.writeback_inode(ino)
    }

    /// `sync`: every dirty page of every file.
    pub fn ksys_sync(&mut self) -> MmResult<()> {
        let inos: Vec<u32> = self
            .vfs
            .iter()
            .filter(|i| i.nr_dirty > 0)
            .map(|i| i.ino)
            .collect();
        for ino in inos {
            self.writeback_inode(ino)?;
        }
        Ok(())
    }

    /// `global_dirtyable_memory`: free pages plus the file LRUs.
    fn dirtyable_memory(&self) -> u64 {
        self.page_alloc.total_free() + self.vfs.stats.nr_pages
    }

    /// `domain_dirty_limits`: (background, limit) thresholds in pages.
    pub fn dirty_thresholds(&self) -> (u64, u64) {
        let dirtyable = self.dirtyable_memory();
        let limit = dirtyable * self.sysctl.dirty_ratio / 100;
        let background =
            (dirtyable * self.sysctl.dirty_background_ratio / 100).min(limit / 2 + limit / 4);
        (background, limit)
    }

    /// `balance_dirty_pages`: a writer above `dirty_ratio` writes back
    /// itself until below it (iowait on its CPU; nothing sleeps).
    fn balance_dirty_pages(&mut self) -> MmResult<()> {
        let (_, limit) = self.dirty_thresholds();
        if self.vfs.stats.nr_dirty <= limit {
            return Ok(());
        }
        let inos: Vec<u32> = self
            .vfs
            .iter()
            .filter(|i| i.nr_dirty > 0)
            .map(|i| i.ino)
            .collect();
        for ino in inos {
            self.writeback_inode(ino)?;
            if self.vfs.stats.nr_dirty <= self.dirty_thresholds().1 / 2 {
                break;
            }
        }
        Ok(())
    }

    /// `wb_workfn`, the flusher: inodes dirty for longer than
    /// `dirty_expire_centisecs`, and everything while above
    /// `dirty_background_ratio`. Runs on `tick`.
    pub fn wb_workfn(&mut self) {
        if self.vfs.stats.nr_dirty == 0 {
            return;
        }
        let expire = self.sysctl.dirty_expire_centisecs * 10_000_000;
        let now = self.clock_ns;
        let (background, _) = self.dirty_thresholds();
        let above = self.vfs.stats.nr_dirty > background;
        let inos: Vec<u32> = self
            .vfs
            .iter()
            .filter(|i| i.nr_dirty > 0 && (above || i.dirtied_when_ns + expire <= now))
            .map(|i| i.ino)
            .collect();
        for ino in inos {
            if let Err(e) = self.writeback_inode(ino) {
                self.printk(format!("flush-8:0: writeback of inode {ino} failed: {e}"));
            }
        }
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
        if size < old {
            self.truncate_inode_pages(ino, size);
            // The last partial page keeps only what lies before the end.
            let index = size / PAGE_SIZE;
            let cut = (size % PAGE_SIZE) as usize;
            if cut > 0
                && let Some(&pfn) = self.vfs.inode(ino)?.pages.get(&index)
                && self.page_contents.get(pfn).is_some()
            {
                self.page_contents.get_or_zero(pfn)[cut..].fill(0);
            }
        }
        let now = self.clock_ns;
        let inode = self.vfs.inode_mut(ino)?;
        inode.size = size;
        inode.mtime_ns = now;
        Ok(())
    }

    /// `truncate_inode_pages`: drop the cached pages and the blocks of
    /// `ino` from byte `from` on (dirty ones are discarded, not written).
    pub(crate) fn truncate_inode_pages(&mut self, ino: u32, from: u64) {
        let first = from.div_ceil(PAGE_SIZE);
        let Ok(inode) = self.vfs.inode_mut(ino) else {
            return;
        };
        let pages: Vec<Pfn> = inode.pages.split_off(&first).into_values().collect();
        let blocks: Vec<u64> = inode.blocks.split_off(&first).into_values().collect();
        for pfn in pages {
            self.delete_from_page_cache(ino, pfn);
        }
        for block in blocks {
            self.vfs.free_block(block);
        }
    }

    /// Take a page out of the cache (already removed from the inode's
    /// index) and free it.
    fn delete_from_page_cache(&mut self, ino: u32, pfn: Pfn) {
        if self.page_alloc.frames.has_flag(pfn, FLAG_DIRTY) {
            self.page_alloc.frames.set_flag(pfn, FLAG_DIRTY, false);
            if let Ok(inode) = self.vfs.inode_mut(ino) {
                inode.nr_dirty -= 1;
            }
            self.vfs.stats.nr_dirty -= 1;
        }
        self.vfs.stats.nr_pages -= 1;
        self.lru_del(pfn);
        self.take_page_bytes(pfn);
        self.free_kernel_page(pfn);
    }

    /// Reclaim one inactive page-cache page (`shrink_folio_list` for a
    /// file folio): a dirty page is written first (`pageout`), then the
    /// page leaves the cache. False when it must stay (write error).
    pub(crate) fn reclaim_file_page(&mut self, pfn: Pfn) -> bool {
        let (slot, index) = self.page_alloc.frames.rmap(pfn);
        let (ino, index) = (slot.0, index.0);
        if self.page_alloc.frames.has_flag(pfn, FLAG_DIRTY) {
            if let Err(e) = self.writepage(ino, index, pfn) {
                let (print, _) = self.swap_write_ratelimit.allow(self.clock_ns);
                if print {
                    self.printk(format!("Buffer I/O error on dev sda1: {e}"));
                }
                return false;
            }
            self.vfs.stats.nr_vmscan_write += 1;
        }
        if let Ok(inode) = self.vfs.inode_mut(ino) {
            inode.pages.remove(&index);
        }
        self.delete_from_page_cache(ino, pfn);
        true
    }

    /// `drop_caches` 1: every clean page-cache page goes (dirty ones stay:
    /// `sync` first, as the kernel documentation says). Returns the pages
    /// dropped.
    pub fn drop_pagecache(&mut self) -> u64 {
        let clean: Vec<(u32, u64, Pfn)> = self
            .vfs
            .iter()
            .flat_map(|i| i.pages.iter().map(move |(&idx, &pfn)| (i.ino, idx, pfn)))
            .filter(|&(_, _, pfn)| !self.page_alloc.frames.has_flag(pfn, FLAG_DIRTY))
            .collect();
        let n = clean.len() as u64;
        for (ino, index, pfn) in clean {
            if let Ok(inode) = self.vfs.inode_mut(ino) {
                inode.pages.remove(&index);
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
            let mut own_dirty = 0;
            for (&index, &pfn) in &inode.pages {
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
            if own_dirty != inode.nr_dirty {
                return Err(format!(
                    "inode {}: {} dirty pages counted as {}",
                    inode.ino, own_dirty, inode.nr_dirty
                ));
            }
            pages += inode.pages.len() as u64;
            dirty += own_dirty;
        }
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
