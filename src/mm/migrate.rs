//! Page migration (Linux: mm/migrate.c): move a movable page's contents,
//! state and mappings to another frame, the routine compaction uses.
//!
//! A page is movable here when it is on an LRU list and is a user anon page
//! or a page-cache page of a regular file (`folio_isolate_lru` succeeds and
//! the mapping has a `migrate_folio`). Pages under writeback, in the swap
//! cache or holding the block device's buffers are left where they are
//! (`migrate_folio` of the sync-light mode would wait or fail for them).

use super::Kernel;
use super::buffer::BDEV_INO;
use super::memory::Pte;
use super::page_alloc::{FLAG_ACTIVE, FLAG_LRU, PageKind};
use super::types::{MmSlot, Order, Pfn};

/// Why a page could not be isolated or moved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MigrateSkip {
    /// Not on an LRU list, or of a kind that never moves (kernel pages).
    NotMovable,
    /// Its write to disk is in flight (PG_writeback).
    Writeback,
    /// Held by the swap cache or the block device's buffers.
    Pinned,
}

impl Kernel {
    /// `isolate_migratepages_block`'s test for one allocated order-0 head:
    /// may compaction move it? `writeback` holds the frames in flight.
    pub(crate) fn migratable(
        &self,
        pfn: Pfn,
        writeback: &std::collections::HashSet<u64>,
    ) -> Result<(), MigrateSkip> {
        let frames = &self.page_alloc.frames;
        if !frames.has_flag(pfn, FLAG_LRU) || frames.order(pfn).0 != 0 {
            return Err(MigrateSkip::NotMovable);
        }
        match frames.kind(pfn) {
            PageKind::UserAnon | PageKind::Shmem => {}
            PageKind::PageCache => {
                if frames.rmap(pfn).0.0 == BDEV_INO {
                    return Err(MigrateSkip::Pinned);
                }
            }
            _ => return Err(MigrateSkip::NotMovable),
        }
        if writeback.contains(&pfn.0) {
            return Err(MigrateSkip::Writeback);
        }
        // In the swap cache, or held by a fault across an allocation
        // (folio_get): an extra reference, which migration refuses.
        if self.swap.cache.entry_of(pfn).is_some() || self.folio_pinned(pfn) {
            return Err(MigrateSkip::Pinned);
        }
        Ok(())
    }

    /// `migrate_folio` + `remove_migration_ptes`: move page `old` to the
    /// order-0 frame `new` (already off the free lists, allocated), then
    /// free `old`. The bytes written through `mem`, the LRU position and
    /// flags, the map count, the page index slot of a page-cache page and
    /// every PTE the reverse map finds follow the page.
    pub(crate) fn migrate_page(&mut self, old: Pfn, new: Pfn) {
        let kind = self.page_alloc.frames.kind(old);
        let file = kind == PageKind::PageCache;
        let shmem = kind == PageKind::Shmem;
        let (owner, index) = self.page_alloc.frames.rmap(old);
        // The PTEs first: the walk reads the old frame's reverse map.
        let ptes: Vec<(MmSlot, u64)> = if shmem {
            if self.page_alloc.frames.mapcount(old) == 0 {
                Vec::new()
            } else {
                self.rmap_walk_shmem(super::shmem::ShmemId(owner.0), index.0)
            }
        } else if file {
            if self.page_alloc.frames.mapcount(old) == 0 {
                Vec::new()
            } else {
                self.rmap_walk_file(owner.0, index.0)
            }
        } else {
            self.rmap_walk_anon(old)
        };
        if self.page_alloc.frames.has_flag(old, FLAG_LRU)
            && let Some(zone) = self.page_alloc.zone_of(old)
        {
            let active = self.page_alloc.frames.has_flag(old, FLAG_ACTIVE);
            let (a, i) = self.lru.zones[zone].lists_mut(file);
            let list = if active { a } else { i };
            list.replace(&mut self.page_alloc.frames, old, new);
        }
        self.page_alloc.frames.migrate_frame(old, new);
        if let Some(block) = self.page_contents.lazy_block(old) {
            // Bytes still on the disk: the new page refers to the block.
            self.page_contents.clear(old);
            self.page_contents.set_lazy(new, block);
        } else if let Some(bytes) = self.take_page_bytes(old) {
            self.put_page_bytes(new, bytes);
        }
        if file && let Ok(inode) = self.vfs.inode_mut(owner.0) {
            inode.pages.replace(index.0, new);
        }
        if shmem {
            self.shmem
                .replace_page(super::shmem::ShmemId(owner.0), index.0, new);
        }
        for (slot, vpn) in ptes {
            if let Some(p) = self.pte_mut(slot, vpn) {
                let pte = Pte(*p);
                if pte.is_page() && pte.pfn() == old {
                    *p = pte.with_pfn(new).0;
                }
            }
        }
        // The old frame holds nothing any more: back to the buddy lists.
        let _ = self.free_pages(old, Order(0));
    }
}
