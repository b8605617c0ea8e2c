//! The block device's own page cache (Linux: fs/buffer.c, block/bdev.c,
//! fs/jbd2, and the on-disk layout of fs/ext4): meminfo's `Buffers`.
//!
//! ext4 reads and writes its metadata through buffer heads on the page
//! cache of `/dev/sda1` itself: inode-table blocks (256-byte inodes, 16 to
//! a 4K block), directory blocks, bitmaps, the journal's descriptor and
//! commit blocks. Here that cache is a hidden inode, [`BDEV_INO`], whose
//! page index is the disk block number: its pages are PageKind::PageCache
//! frames on the file LRUs like any file's, so reclaim, `drop_caches`,
//! the flusher and `sync` treat them as Linux does.
//!
//! Metadata changes go through the journal as on ext4 (`data=ordered`,
//! `commit=5`): a changed buffer joins the running transaction (pinned,
//! not yet dirty in the page cache); the commit, 5 s after the
//! transaction's first change or at `sync`/`fsync`, writes the buffers,
//! a descriptor block per 254 of them and a commit block to the journal,
//! and only then marks the buffers dirty; the flusher writes them to
//! their home blocks after `dirty_expire_centisecs` like file data. This
//! is what the real kernel shows (tests/reference/linux-samples/buffers):
//! creating 1000 files leaves 0 dirty pages in the disk's cache until the
//! commit, then 75, written at `sync`.
//!
//! Only the metadata blocks' *presence* is modelled, not their bytes: a
//! metadata read or write is disk I/O (diskstats, pgpgin/pgpgout, iowait)
//! without contents.

use std::collections::BTreeSet;

use super::Kernel;
use super::types::{PAGE_SIZE, Pfn};

/// The inode number of the block device's page cache (ext4 keeps inode 1
/// for bad blocks and never hands it out, so it is free for this).
pub const BDEV_INO: u32 = 1;
/// Bytes of an on-disk inode (`mkfs.ext4 -I 256`).
pub const INODE_SIZE: u64 = 256;
/// Inodes in one inode-table block.
pub const INODES_PER_BLOCK: u64 = PAGE_SIZE / INODE_SIZE;
/// Blocks of a block group (one block bitmap block each).
pub const BLOCKS_PER_GROUP: u64 = 8 * PAGE_SIZE;
/// Bytes of disk per inode (mke2fs.conf's `inode_ratio`).
pub const INODE_RATIO: u64 = 16384;
/// jbd2's commit interval (`commit=5`, JBD2_DEFAULT_MAX_COMMIT_AGE).
pub const COMMIT_INTERVAL_NS: u64 = 5_000_000_000;
/// Block tags in a journal descriptor block (4K less its 12-byte header,
/// the first tag's 16-byte UUID and the 4-byte checksum tail, over
/// 16-byte `journal_block_tag3_t`s).
pub const TAGS_PER_DESCRIPTOR: u64 = (PAGE_SIZE - 12 - 16 - 4) / 16;

/// `ext2fs_default_journal_size` (e2fsprogs): the journal `mkfs.ext4`
/// gives a file system of `blocks` 4K blocks (none below 2048 blocks).
pub fn default_journal_blocks(blocks: u64) -> u64 {
    match blocks {
        0..2048 => 0,
        2048..32768 => 1024,
        32768..262144 => 4096,
        262144..524288 => 8192,
        524288..4194304 => 16384,
        4194304..8388608 => 32768,
        8388608..16777216 => 65536,
        16777216..33554432 => 131072,
        _ => 262144,
    }
}

/// Where the metadata sits on `/dev/sda1`: as `mkfs.ext4` with one flex
/// group puts it, everything at the start of the disk, then the data
/// blocks (file data and directory blocks).
/// ```text
/// block 0                superblock + group descriptors
/// 1 ..= groups           block bitmaps, one per 32768 blocks
/// then 1                 inode bitmap
/// then inodes/16         inode table
/// then journal_blocks    the journal
/// first_data ..          data blocks (Vfs::alloc_block's block b is
///                        first_data + b)
/// ```
/// `df` shows the data blocks only (ext4's `statfs` takes the overhead
/// off `f_blocks` too).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ext4Layout {
    /// Block groups.
    pub groups: u64,
    /// First block bitmap.
    pub block_bitmap: u64,
    /// The inode bitmap.
    pub inode_bitmap: u64,
    /// First inode-table block.
    pub inode_table: u64,
    /// Inodes of the file system (a multiple of 16).
    pub inodes_count: u64,
    /// First journal block.
    pub journal: u64,
    /// Journal blocks (0: no journal, metadata is written in place).
    pub journal_blocks: u64,
    /// First data block.
    pub first_data: u64,
}

impl Ext4Layout {
    /// The layout of a disk of `disk_pages` blocks: one inode per
    /// INODE_RATIO bytes, at most as many as inode numbers fit a frame's
    /// owner field.
    pub fn of(disk_pages: u64) -> Ext4Layout {
        let groups = disk_pages.div_ceil(BLOCKS_PER_GROUP).max(1);
        let max = u64::from(super::namei::MAX_INODES) + 1;
        let inodes_count = (disk_pages * PAGE_SIZE / INODE_RATIO)
            .next_multiple_of(INODES_PER_BLOCK)
            .clamp(INODES_PER_BLOCK, max);
        let block_bitmap = 1;
        let inode_bitmap = block_bitmap + groups;
        let inode_table = inode_bitmap + 1;
        let journal = inode_table + inodes_count / INODES_PER_BLOCK;
        let journal_blocks = default_journal_blocks(disk_pages);
        Ext4Layout {
            groups,
            block_bitmap,
            inode_bitmap,
            inode_table,
            inodes_count,
            journal,
            journal_blocks,
            first_data: journal + journal_blocks,
        }
    }

    /// The inode-table block holding inode `ino` (inode 1 is the table's
    /// first slot, as on ext4).
    pub fn itable_block(&self, ino: u32) -> u64 {
        self.inode_table + (u64::from(ino) - 1) / INODES_PER_BLOCK
    }

    /// The disk block of data block `block` (as `Vfs::alloc_block` counts).
    pub fn data_block(&self, block: u64) -> u64 {
        self.first_data + block
    }

    /// The block bitmap covering data block `block`.
    pub fn block_bitmap_of(&self, block: u64) -> u64 {
        self.block_bitmap + self.data_block(block) / BLOCKS_PER_GROUP
    }
}

/// jbd2's running transaction and the journal's head.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Journal {
    /// Buffers changed since the last commit (journaled, pinned in the
    /// cache, not yet dirty there), by disk block.
    pub running: BTreeSet<u64>,
    /// When the running transaction got its first buffer.
    pub started_ns: u64,
    /// Next journal block to write (relative to the journal's start).
    pub head: u64,
    /// Transactions committed.
    pub commits: u64,
}

impl Kernel {
    /// The on-disk layout of `/dev/sda1`.
    pub fn ext4_layout(&self) -> Ext4Layout {
        Ext4Layout::of(self.vfs.disk_pages)
    }

    /// `__bread` (`new` false) or `__getblk` of a block about to be fully
    /// written (`new` true): the block's page in the disk's cache, read
    /// from the disk when not cached and not new. `None` when no page
    /// could be had: the model lets the operation go on without caching.
    fn bdev_getblk(&mut self, block: u64, new: bool) -> Option<Pfn> {
        if let Some(pfn) = self.vfs.inode(BDEV_INO).ok()?.pages.get(block) {
            // touch_buffer.
            self.mark_page_accessed(pfn);
            return Some(pfn);
        }
        let pfn = self.add_to_page_cache(BDEV_INO, block, new).ok()?;
        if !new {
            self.count_metadata_io(1, false);
        }
        Some(pfn)
    }

    /// Disk I/O of `pages` metadata blocks (no contents are kept).
    fn count_metadata_io(&mut self, pages: u64, write: bool) {
        for _ in 0..pages {
            self.account_iowait(super::cputime::SWAP_PAGE_IO_NS);
        }
        if write {
            self.vfs.stats.disk_writes += pages;
            self.events.pgpgout += pages * PAGE_SIZE / 1024;
        } else {
            self.vfs.stats.disk_reads += pages;
            self.events.pgpgin += pages * PAGE_SIZE / 1024;
        }
    }

    /// Read metadata `blocks` (`sb_bread`): cached, or read now.
    pub(crate) fn ext4_read_meta(&mut self, blocks: &[u64]) {
        for &b in blocks {
            self.bdev_getblk(b, false);
        }
    }

    /// `ext4_handle_dirty_metadata`: read `block` if needed (`new`: a
    /// freshly allocated block is not read) and add it to the running
    /// transaction; with no journal it is dirty at once. A transaction
    /// holding a quarter of the journal commits at once, as jbd2 does.
    pub(crate) fn ext4_dirty_meta(&mut self, block: u64, new: bool) {
        let Some(pfn) = self.bdev_getblk(block, new) else {
            return;
        };
        let layout = self.ext4_layout();
        if layout.journal_blocks == 0 {
            self.set_page_dirty(BDEV_INO, pfn);
            return;
        }
        let journal = &mut self.vfs.journal;
        if journal.running.is_empty() {
            journal.started_ns = self.clock_ns;
        }
        journal.running.insert(block);
        if journal.running.len() as u64 >= layout.journal_blocks / 4 {
            self.jbd2_commit();
        }
    }

    /// `bforget`: a freed metadata block (a removed directory's block)
    /// leaves the transaction and the cache unwritten.
    pub(crate) fn ext4_forget_meta(&mut self, block: u64) {
        self.vfs.journal.running.remove(&block);
        let Ok(bdev) = self.vfs.inode_mut(BDEV_INO) else {
            return;
        };
        if let Some(pfn) = bdev.pages.remove(block) {
            self.delete_from_page_cache(BDEV_INO, pfn);
        }
    }

    /// Whether the disk-cache page `pfn` of (ino, index) is pinned by the
    /// running transaction (reclaim and `drop_caches` leave it).
    pub(crate) fn buffer_pinned(&self, ino: u32, index: u64) -> bool {
        ino == BDEV_INO && self.vfs.journal.running.contains(&index)
    }

    /// `jbd2_journal_commit_transaction`: write the running transaction's
    /// buffers, its descriptor blocks and a commit block to the journal
    /// (the descriptor and commit blocks stay in the disk's cache, clean),
    /// then mark the buffers dirty for writeback to their home blocks.
    pub fn jbd2_commit(&mut self) {
        let running = std::mem::take(&mut self.vfs.journal.running);
        if running.is_empty() {
            return;
        }
        let layout = self.ext4_layout();
        let n = running.len() as u64;
        let descriptors = n.div_ceil(TAGS_PER_DESCRIPTOR);
        self.count_metadata_io(n + descriptors + 1, true);
        let head = self.vfs.journal.head;
        let at = |off: u64| layout.journal + (head + off) % layout.journal_blocks;
        for d in 0..descriptors {
            self.bdev_getblk(at(d), true);
        }
        self.bdev_getblk(at(descriptors + n), true);
        let journal = &mut self.vfs.journal;
        journal.head = (head + n + descriptors + 1) % layout.journal_blocks;
        journal.commits += 1;
        for block in running {
            let pfn = self
                .vfs
                .inode(BDEV_INO)
                .ok()
                .and_then(|b| b.pages.get(block));
            if let Some(pfn) = pfn {
                self.set_page_dirty(BDEV_INO, pfn);
            }
        }
    }

    /// kjournald2's timer: commit a transaction older than the commit
    /// interval.
    pub(crate) fn jbd2_tick(&mut self) {
        let j = &self.vfs.journal;
        if !j.running.is_empty() && j.started_ns + COMMIT_INTERVAL_NS <= self.clock_ns {
            let prev = self.switch_to(None);
            self.jbd2_commit();
            self.switch_to(prev);
        }
    }

    /// Pages of the disk's cache (meminfo Buffers).
    pub fn nr_buffers(&self) -> u64 {
        self.vfs.inode(BDEV_INO).map_or(0, |b| b.pages.len())
    }

    /// Check the journal against the disk's cache: every buffer of the
    /// running transaction is cached (pinned), and the disk's cache holds
    /// no page past the disk.
    pub fn check_buffers(&self) -> Result<(), String> {
        let Ok(bdev) = self.vfs.inode(BDEV_INO) else {
            return Err("no block device inode".into());
        };
        if let Some(&block) = self
            .vfs
            .journal
            .running
            .iter()
            .find(|&&b| !bdev.pages.contains(b))
        {
            return Err(format!("journaled block {block} is not cached"));
        }
        if let Some((block, _)) = bdev.pages.iter().find(|&(b, _)| b >= self.vfs.disk_pages) {
            return Err(format!("cached block {block} lies past the disk"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctl::{Machine, Scope};
    use crate::mm::MachineConfig;
    use crate::mm::namei::{FileKind, ROOT_INO};

    fn boot() -> Machine {
        let mut k = Machine::boot(MachineConfig::default()).unwrap();
        k.swap.swapdir = std::env::temp_dir();
        k
    }

    /// Pages of the disk's cache and how many are dirty.
    fn bdev(k: &Kernel) -> (u64, u64) {
        let b = k.vfs.inode(BDEV_INO).unwrap();
        (b.pages.len(), b.dirty.len() as u64)
    }

    /// `stat /d/NAME` for every name: lookups and getattr through ext4.
    fn stat_all(k: &mut Machine, names: &[String]) {
        for name in names {
            let d = k.ext4_lookup(ROOT_INO, "d").unwrap();
            let ino = k.ext4_lookup(d, name).unwrap();
            k.ext4_getattr(ino).unwrap();
        }
    }

    #[test]
    fn the_default_layout_keeps_df_sensible() {
        let l = Ext4Layout::of(crate::mm::namei::DEFAULT_DISK / PAGE_SIZE);
        // 4G: 32 groups, 32768 inodes (8 MiB of table), a 64 MiB journal.
        assert_eq!(
            (l.groups, l.inodes_count, l.journal_blocks),
            (32, 32768, 16384)
        );
        assert_eq!(l.first_data, 1 + 32 + 1 + 2048 + 16384);
        assert_eq!(l.itable_block(2), l.inode_table);
        assert_eq!(l.itable_block(17), l.inode_table + 1);
        let k = boot();
        let st = k.vfs_statfs();
        assert_eq!(st.blocks, (4 << 18) - l.first_data);
        // The root directory's block is the one in use.
        assert_eq!(st.blocks - st.bfree, 1);
    }

    /// Expected numbers from the real kernel (Linux 6.18.44, ext4 on a
    /// loop device, tests/reference/linux-samples/buffers/buffers.txt):
    /// creating 1000 empty files `f0001..f1000` in a directory leaves no
    /// dirty page in the disk's cache until jbd2 commits (`... 1 s
    /// later: dirty=0`, `7 s later: dirty=75`), `sync` writes them; the
    /// directory grows to 7 blocks (`size=28672`); after `drop_caches 3`,
    /// `stat` of all 1000 files reads 71 blocks into Buffers (75 less the
    /// 4 a mounted ext4 pins: superblock, group descriptors, journal
    /// superblock...), which `drop_caches 2` keeps, so a second `stat` of
    /// all reads nothing.
    #[test]
    fn buffers_follow_the_real_kernel_through_create_commit_sync_and_stat() {
        let mut k = boot();
        let d = k.vfs_create(ROOT_INO, "d", FileKind::Directory).unwrap();
        k.ksys_sync().unwrap();
        k.drop_caches(3);
        assert_eq!(bdev(&k), (0, 0));
        let names: Vec<String> = (1..=1000).map(|i| format!("f{i:04}")).collect();
        for name in &names {
            k.vfs_create(d, name, FileKind::Regular).unwrap();
        }
        // Journaled, not dirty: drop_caches cannot take them.
        let (cached, dirty) = bdev(&k);
        assert_eq!(dirty, 0);
        assert_eq!(k.vfs.journal.running.len() as u64, cached);
        k.drop_caches(1);
        assert_eq!(bdev(&k), (cached, 0));
        assert_eq!(k.vfs.inode(d).unwrap().size, 28672);
        // 63 inode-table blocks, 7 directory blocks, the inode and block
        // bitmaps, the group descriptors.
        assert_eq!(cached, 63 + 7 + 3);
        k.execute_line(Scope::System, "tick 100").unwrap();
        assert_eq!(bdev(&k).1, 0);
        let writes = k.vfs.stats.disk_writes;
        k.execute_line(Scope::System, "tick 400").unwrap();
        // The commit: 73 buffers, a descriptor and a commit block to the
        // journal (the real one: 75 + 2); those two stay cached, clean.
        assert_eq!(k.vfs.stats.disk_writes - writes, 73 + 2);
        assert_eq!(bdev(&k), (73 + 2, 73));
        assert_eq!(k.node_stats().nr_dirty, 73);
        k.execute_line(Scope::System, "sync").unwrap();
        assert_eq!(k.vfs.stats.disk_writes - writes, 75 + 73);
        assert_eq!(bdev(&k), (75, 0));
        k.check_invariants().unwrap();

        k.write_sysctl("vm/drop_caches", "3").unwrap();
        assert_eq!(bdev(&k).0, 0);
        let reads = k.vfs.stats.disk_reads;
        stat_all(&mut k, &names);
        // The root directory's block, d's 7 blocks, 63 table blocks.
        assert_eq!(bdev(&k).0, 71);
        assert_eq!(k.vfs.stats.disk_reads - reads, 71);
        let s = k.node_stats();
        assert_eq!((s.nr_buffers, s.nr_file_pages), (71, 71));
        k.write_sysctl("vm/drop_caches", "2").unwrap();
        stat_all(&mut k, &names);
        assert_eq!(k.vfs.stats.disk_reads - reads, 71);
        // Twice touched: active, as the real buffers' pages are.
        assert_eq!(k.node_stats().nr_active_file, 71);
        k.check_invariants().unwrap();
    }

    #[test]
    fn reclaim_takes_clean_buffers_and_leaves_journaled_ones() {
        let mut k = boot();
        for i in 0..200 {
            k.vfs_create(ROOT_INO, &format!("file-{i}"), FileKind::Regular)
                .unwrap();
        }
        k.ksys_sync().unwrap();
        let (cached, _) = bdev(&k);
        // One more change pins a few blocks again.
        k.vfs_create(ROOT_INO, "pinned", FileKind::Regular).unwrap();
        let pinned = k.vfs.journal.running.len() as u64;
        assert!(pinned > 0);
        // More than the cache holds: it all goes but the pinned blocks.
        let err = k.execute_line(Scope::System, "reclaim 64M").unwrap_err();
        assert_eq!(err.errno(), libc::EAGAIN);
        assert_eq!(bdev(&k).0, pinned);
        assert!(cached > pinned);
        // The removed directory's blocks leave the cache unwritten.
        k.vfs_create(ROOT_INO, "gone", FileKind::Directory).unwrap();
        let before = bdev(&k).0;
        k.vfs_rmdir(ROOT_INO, "gone").unwrap();
        assert_eq!(bdev(&k).0, before - 1);
        k.check_invariants().unwrap();
    }
}
