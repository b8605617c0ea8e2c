//! The simulated root file system on `/dev/sda1` (Linux: fs/namei.c,
//! fs/inode.c, fs/dcache.c, much simplified): inodes and directories, each
//! inode holding an `ext4_inode_cache` object and each name a `dentry`
//! object from slab. File data lives in the page cache (filemap.rs) and on
//! the simulated disk, in blocks of one page.
//!
//! An inode number is also the file's *mapping slot*: page-cache frames
//! record (inode, page index) in the frame's reverse-map field, as Linux's
//! `page->mapping`/`page->index` do, so at most [`MAX_INODES`] inodes exist.

use std::collections::{BTreeMap, BTreeSet};

use super::Kernel;
use super::buffer::{BDEV_INO, Ext4Layout};
use super::error::{MmError, MmResult};
use super::slab_common;
use super::slub::SlabObject;
use super::swap_store::DiskStore;
use super::types::{MmSlot, PAGE_SIZE};
use super::xarray::PageIndex;

/// The root directory's inode number (ext4's EXT4_ROOT_INO).
pub const ROOT_INO: u32 = 2;
/// Inode numbers run 2..=MAX_INODES: the frame's owner field holds 15 bits.
pub const MAX_INODES: u32 = (1 << super::page_alloc::OWNER_BITS) - 1;
/// NAME_MAX.
pub const NAME_MAX: usize = 255;
/// Default size of the simulated disk (`--disk`).
pub const DEFAULT_DISK: u64 = 4 << 30;

/// What an inode is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// A regular file.
    Regular,
    /// A directory.
    Directory,
}

/// One inode.
#[derive(Debug)]
pub struct Inode {
    /// Its number.
    pub ino: u32,
    /// File or directory.
    pub kind: FileKind,
    /// Size in bytes (files).
    pub size: u64,
    /// Links: names pointing at it (+ `.` and subdirectories' `..`).
    pub nlink: u32,
    /// Last modification, simulated ns since boot.
    pub mtime_ns: u64,
    /// Directory entries (directories only), by name.
    pub children: BTreeMap<String, u32>,
    /// The page cache: page index → frame, or the shadow entry of an
    /// evicted page (Linux's `i_pages`).
    pub pages: PageIndex,
    /// Disk blocks: page index → block of `/dev/sda1`.
    pub blocks: BTreeMap<u64, u64>,
    /// Indices of the dirty pages in the cache (Linux's dirty xarray mark).
    pub dirty: BTreeSet<u64>,
    /// Indices of the pages under writeback (PG_writeback, the writeback
    /// xarray mark): written to the disk, the I/O not yet complete. A page
    /// may be in both sets (dirtied again while its write is in flight).
    pub writeback: BTreeSet<u64>,
    /// Indices of the pages reclaim marked PG_reclaim (dirty or under
    /// writeback when it found them): rotated to the inactive tail when
    /// their write completes, so the next scan frees them.
    pub reclaim: BTreeSet<u64>,
    /// When the first of the dirty pages was dirtied (`i_dirtied_when`).
    pub dirtied_when_ns: u64,
    /// Readahead state (Linux keeps it per open file; here per inode).
    pub ra: super::filemap::RaState,
    /// The address spaces that may map it (Linux's `i_mmap` tree of VMAs,
    /// kept here as the set of mms; a stale entry is pruned by the next
    /// reverse-map walk that finds no VMA of this inode there).
    pub i_mmap: BTreeSet<MmSlot>,
    /// A directory's hash-tree leaves (`dx_root` in its block 0), by
    /// starting hash; empty while the directory is one linear block.
    pub dx: Vec<DxLeaf>,
    /// Bytes of entries in a linear directory's block (`.` and `..` too).
    pub dir_bytes: u64,
    /// The `ext4_inode_cache` object.
    object: Option<SlabObject>,
    /// The `dentry` objects of its names.
    dentries: Vec<SlabObject>,
    /// The `radix_tree_node` objects of its page index, one per node.
    pub(crate) xa_objects: Vec<SlabObject>,
}

impl Inode {
    /// A new, empty inode holding its `inode_cache` and `dentry` objects:
    /// a directory is one page big with two links (its name and `.`).
    fn new(ino: u32, kind: FileKind, now: u64, object: SlabObject, dentry: SlabObject) -> Inode {
        let dir = kind == FileKind::Directory;
        Inode {
            ino,
            kind,
            size: if dir { PAGE_SIZE } else { 0 },
            nlink: if dir { 2 } else { 1 },
            mtime_ns: now,
            children: BTreeMap::new(),
            pages: PageIndex::new(),
            blocks: BTreeMap::new(),
            dirty: BTreeSet::new(),
            writeback: BTreeSet::new(),
            reclaim: BTreeSet::new(),
            dirtied_when_ns: 0,
            ra: super::filemap::RaState::default(),
            i_mmap: BTreeSet::new(),
            dx: Vec::new(),
            dir_bytes: if dir { 2 * DOT_REC_LEN } else { 0 },
            object: Some(object),
            dentries: vec![dentry],
            xa_objects: Vec::new(),
        }
    }

    /// The block device's inode (`bdev_cache`'s, no name): its page
    /// index is the disk's cache, by disk block (buffer.rs).
    fn bdev(now: u64) -> Inode {
        Inode {
            ino: BDEV_INO,
            kind: FileKind::Regular,
            size: 0,
            nlink: 1,
            mtime_ns: now,
            children: BTreeMap::new(),
            pages: PageIndex::new(),
            blocks: BTreeMap::new(),
            dirty: BTreeSet::new(),
            writeback: BTreeSet::new(),
            reclaim: BTreeSet::new(),
            dirtied_when_ns: 0,
            ra: super::filemap::RaState::default(),
            i_mmap: BTreeSet::new(),
            dx: Vec::new(),
            dir_bytes: 0,
            object: None,
            dentries: Vec::new(),
            xa_objects: Vec::new(),
        }
    }
}

/// One leaf block of a directory's hash tree: the entries whose name
/// hash is at least `hash` (and below the next leaf's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DxLeaf {
    /// Lowest hash of the leaf.
    pub hash: u32,
    /// The leaf's block in the directory (page index).
    pub block: u64,
    /// Bytes of entries in it.
    pub bytes: u64,
}

/// `rec_len` of `.` and `..`.
const DOT_REC_LEN: u64 = 12;

/// `EXT4_DIR_REC_LEN`: an entry's bytes in a directory block.
pub fn dirent_len(name: &str) -> u64 {
    8 + (name.len() as u64).next_multiple_of(4)
}

/// The name hash that orders a directory's hash tree (ext4 uses
/// half-MD4 with a per-file-system random seed, so its leaves differ from
/// mount to mount anyway; FNV-1a keeps the simulation deterministic).
/// The low bit is clear, as ext4's hashes are.
pub fn dx_hash(name: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for &b in name.as_bytes() {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    h & !1
}

/// What `stat` shows of an inode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InodeAttr {
    /// Inode number.
    pub ino: u32,
    /// File or directory.
    pub kind: FileKind,
    /// Size in bytes.
    pub size: u64,
    /// Link count.
    pub nlink: u32,
    /// Disk blocks in use (pages).
    pub blocks: u64,
    /// Last modification, simulated ns since boot.
    pub mtime_ns: u64,
}

/// `statfs` of the file system.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatFs {
    /// Block size (one page).
    pub bsize: u64,
    /// Blocks of the disk.
    pub blocks: u64,
    /// Free blocks.
    pub bfree: u64,
    /// Inodes.
    pub files: u64,
    /// Free inodes.
    pub ffree: u64,
}

/// The file system: inode table, disk blocks and the disk's bytes.
#[derive(Debug)]
pub struct Vfs {
    inodes: Vec<Option<Box<Inode>>>,
    free_inodes: BTreeSet<u32>,
    /// Pages of the disk.
    pub disk_pages: u64,
    free_blocks: Vec<u64>,
    next_block: u64,
    /// The disk's bytes (a sparse unlinked host file in the swap dir).
    pub store: DiskStore,
    /// Page-cache counters.
    pub stats: super::filemap::PageCacheStats,
    /// jbd2's running transaction (buffer.rs).
    pub journal: super::buffer::Journal,
    /// Page writes in flight to the disk and the flusher's work
    /// (page_writeback.rs).
    pub wb: super::page_writeback::Writeback,
}

impl Vfs {
    /// An empty file system on a disk of `disk_bytes`.
    pub fn new(disk_bytes: u64) -> Vfs {
        Vfs {
            inodes: Vec::new(),
            free_inodes: BTreeSet::new(),
            disk_pages: disk_bytes / PAGE_SIZE,
            free_blocks: Vec::new(),
            next_block: 0,
            store: DiskStore::default(),
            stats: super::filemap::PageCacheStats::default(),
            journal: super::buffer::Journal::default(),
            wb: super::page_writeback::Writeback::default(),
        }
    }

    /// The on-disk layout (buffer.rs).
    pub fn layout(&self) -> Ext4Layout {
        Ext4Layout::of(self.disk_pages)
    }

    /// Data blocks of the disk: what `df` counts (the metadata area is
    /// ext4's overhead).
    pub fn data_pages(&self) -> u64 {
        self.disk_pages.saturating_sub(self.layout().first_data)
    }

    /// Inode numbers that may be handed out: 2 up to this.
    pub fn max_ino(&self) -> u32 {
        let count = u32::try_from(self.layout().inodes_count).unwrap_or(u32::MAX);
        count.min(MAX_INODES)
    }

    /// The inode `ino`.
    pub fn inode(&self, ino: u32) -> MmResult<&Inode> {
        self.inodes
            .get(ino as usize)
            .and_then(|i| i.as_deref())
            .ok_or_else(|| MmError::NotFound(format!("no inode {ino}")))
    }

    /// The inode `ino`, for writing.
    pub fn inode_mut(&mut self, ino: u32) -> MmResult<&mut Inode> {
        self.inodes
            .get_mut(ino as usize)
            .and_then(|i| i.as_deref_mut())
            .ok_or_else(|| MmError::NotFound(format!("no inode {ino}")))
    }

    /// Every inode, by number.
    pub fn iter(&self) -> impl Iterator<Item = &Inode> {
        self.inodes.iter().filter_map(|i| i.as_deref())
    }

    /// Page-cache index nodes holding only shadow entries, over every
    /// file (vmstat's `workingset_nodes`; the shadow-node shrinker,
    /// `workingset_nodereclaim`, is not modelled: they go with their
    /// file, a refault or a truncate).
    pub fn workingset_nodes(&self) -> u64 {
        self.iter().map(|i| i.pages.shadow_nodes()).sum()
    }

    /// Inodes in use (the block device's is none of the file system's).
    pub fn nr_inodes(&self) -> u64 {
        self.iter().filter(|i| i.ino != BDEV_INO).count() as u64
    }

    /// Data blocks in use (directory blocks too).
    pub fn blocks_used(&self) -> u64 {
        self.next_block - self.free_blocks.len() as u64
    }

    /// A free disk block (ENOSPC when the disk is full).
    pub fn alloc_block(&mut self) -> MmResult<u64> {
        if let Some(b) = self.free_blocks.pop() {
            return Ok(b);
        }
        if self.next_block >= self.data_pages() {
            return Err(MmError::NoSpace(
                "/dev/sda1: no space left on device".into(),
            ));
        }
        self.next_block += 1;
        Ok(self.next_block - 1)
    }

    /// Give a block back; its bytes are dropped (punched out).
    pub fn free_block(&mut self, block: u64) {
        self.store.discard(block);
        self.free_blocks.push(block);
    }

    fn free_ino(&self) -> MmResult<u32> {
        if let Some(&ino) = self.free_inodes.first() {
            return Ok(ino);
        }
        let next = (self.inodes.len() as u32).max(ROOT_INO);
        if next > self.max_ino() {
            return Err(MmError::NoSpace(format!(
                "/dev/sda1: all {} inodes are in use",
                self.max_ino() - 1
            )));
        }
        Ok(next)
    }

    fn insert(&mut self, inode: Inode) {
        let ino = inode.ino as usize;
        if self.inodes.len() <= ino {
            self.inodes.resize_with(ino + 1, || None);
        }
        self.free_inodes.remove(&inode.ino);
        self.inodes[ino] = Some(Box::new(inode));
    }
}

/// A name must be one path component.
fn check_name(name: &str) -> MmResult<()> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(MmError::Invalid(format!("'{name}' is not a file name")));
    }
    if name.len() > NAME_MAX {
        return Err(MmError::NameTooLong(format!(
            "a name of {} bytes is longer than NAME_MAX ({NAME_MAX})",
            name.len()
        )));
    }
    Ok(())
}

impl Kernel {
    /// Mount the root file system: the root directory.
    pub(crate) fn vfs_init(&mut self) -> MmResult<()> {
        let object = self.kmem_cache_alloc(slab_common::INODE_CACHE)?;
        let dentry = self.kmem_cache_alloc(slab_common::DENTRY)?;
        let now = self.clock_ns;
        self.vfs.insert(Inode::bdev(now));
        let mut root = Inode::new(ROOT_INO, FileKind::Directory, now, object, dentry);
        // mkfs wrote the root directory's block; nothing is cached yet.
        root.blocks.insert(0, self.vfs.alloc_block()?);
        self.vfs.insert(root);
        Ok(())
    }

    /// The disk blocks of directory `dir` that hold or would hold `name`
    /// (`ext4_find_entry`): a linear directory's one block, or the
    /// `dx_root` and the leaf of the name's hash.
    fn dir_blocks_of(&self, dir: u32, name: &str) -> Vec<u64> {
        let layout = self.ext4_layout();
        let Ok(d) = self.vfs.inode(dir) else {
            return Vec::new();
        };
        let mut logical = vec![0];
        if !d.dx.is_empty() {
            logical.push(d.dx[dx_leaf(&d.dx, dx_hash(name))].block);
        }
        logical
            .into_iter()
            .filter_map(|l| d.blocks.get(&l).map(|&b| layout.data_block(b)))
            .collect()
    }

    /// Every disk block of directory `dir`, in directory order.
    fn dir_all_blocks(&self, dir: u32) -> Vec<u64> {
        let layout = self.ext4_layout();
        self.vfs.inode(dir).map_or_else(
            |_| Vec::new(),
            |d| d.blocks.values().map(|&b| layout.data_block(b)).collect(),
        )
    }

    /// A new block at the end of directory `dir` (`ext4_append`): its
    /// block bitmap and the new block itself join the transaction.
    fn dir_append(&mut self, dir: u32) -> MmResult<u64> {
        let block = self.vfs.alloc_block()?;
        let d = self.vfs.inode_mut(dir)?;
        let logical = d.blocks.len() as u64;
        d.blocks.insert(logical, block);
        d.size = (logical + 1) * PAGE_SIZE;
        let layout = self.ext4_layout();
        self.ext4_dirty_meta(layout.block_bitmap_of(block), false);
        self.ext4_dirty_meta(layout.data_block(block), true);
        Ok(logical)
    }

    /// `ext4_add_entry` of `name` (not yet among the children) to `dir`:
    /// into the linear block while it fits; a full linear block becomes a
    /// hash tree (`make_indexed_dir`: `dx_root` in block 0, the entries
    /// split by hash into two new leaves); a full leaf splits, its upper
    /// half by hash moving to a new block (`do_split`). The blocks written
    /// join the transaction. ENOSPC when the directory cannot grow.
    fn ext4_add_entry(&mut self, dir: u32, name: &str) -> MmResult<()> {
        let len = dirent_len(name);
        let hash = dx_hash(name);
        let d = self.vfs.inode_mut(dir)?;
        if d.dx.is_empty() {
            if d.dir_bytes + len <= PAGE_SIZE {
                d.dir_bytes += len;
                let blocks = self.dir_blocks_of(dir, name);
                self.dirty_all(&blocks);
                return Ok(());
            }
            let entries = self.dir_entries_by_hash(dir, name, 0, u32::MAX)?;
            let first = self.dir_append(dir)?;
            let second = self.dir_append(dir)?;
            let (low, high, split) = split_entries(&entries);
            let d = self.vfs.inode_mut(dir)?;
            d.dir_bytes = 2 * DOT_REC_LEN;
            d.dx = vec![
                DxLeaf {
                    hash: 0,
                    block: first,
                    bytes: low,
                },
                DxLeaf {
                    hash: split,
                    block: second,
                    bytes: high,
                },
            ];
            let root = self.dir_all_blocks(dir)[0];
            self.ext4_dirty_meta(root, false);
            return Ok(());
        }
        let i = dx_leaf(&d.dx, hash);
        let leaf = d.dx[i];
        if leaf.bytes + len <= PAGE_SIZE {
            d.dx[i].bytes += len;
            let blocks = self.dir_blocks_of(dir, name);
            self.dirty_all(&blocks);
            return Ok(());
        }
        let end = d.dx.get(i + 1).map_or(u32::MAX, |l| l.hash - 1);
        let entries = self.dir_entries_by_hash(dir, name, leaf.hash, end)?;
        let (low, high, split) = split_entries(&entries);
        if split <= leaf.hash {
            // Every name of the leaf has one hash: ext4 chains such
            // leaves; here the leaf just overfills.
            self.vfs.inode_mut(dir)?.dx[i].bytes += len;
            return Ok(());
        }
        let block = self.dir_append(dir)?;
        let d = self.vfs.inode_mut(dir)?;
        d.dx[i].bytes = low;
        d.dx.insert(
            i + 1,
            DxLeaf {
                hash: split,
                block,
                bytes: high,
            },
        );
        let blocks = self.dir_all_blocks(dir);
        let old = blocks[leaf.block as usize];
        self.dirty_all(&[blocks[0], old]);
        Ok(())
    }

    /// (hash, bytes) of the entries of `dir` whose hash lies in
    /// `[lo, hi]`, with `name` added, by hash.
    fn dir_entries_by_hash(
        &self,
        dir: u32,
        name: &str,
        lo: u32,
        hi: u32,
    ) -> MmResult<Vec<(u32, u64)>> {
        let d = self.vfs.inode(dir)?;
        let mut entries: Vec<(u32, u64)> = d
            .children
            .keys()
            .map(String::as_str)
            .chain([name])
            .map(|n| (dx_hash(n), dirent_len(n)))
            .filter(|&(h, _)| (lo..=hi).contains(&h))
            .collect();
        entries.sort_unstable();
        Ok(entries)
    }

    /// `ext4_delete_entry` of `name` (still among the children) from
    /// `dir`: its block is written (blocks never merge or go).
    fn ext4_delete_entry(&mut self, dir: u32, name: &str) {
        let blocks = self.dir_blocks_of(dir, name);
        let len = dirent_len(name);
        if let Ok(d) = self.vfs.inode_mut(dir) {
            if d.dx.is_empty() {
                d.dir_bytes = d.dir_bytes.saturating_sub(len);
            } else {
                let i = dx_leaf(&d.dx, dx_hash(name));
                d.dx[i].bytes = d.dx[i].bytes.saturating_sub(len);
            }
        }
        self.dirty_all(&blocks);
    }

    /// Metadata `blocks` (read if not cached) join the transaction.
    fn dirty_all(&mut self, blocks: &[u64]) {
        for &b in blocks {
            self.ext4_dirty_meta(b, false);
        }
    }

    /// `ext4_mark_inode_dirty`: the inode-table block of `ino` joins the
    /// transaction.
    pub(crate) fn ext4_dirty_inode(&mut self, ino: u32) {
        let block = self.ext4_layout().itable_block(ino);
        self.ext4_dirty_meta(block, false);
    }

    /// `ext4_iget` from the disk: the inode-table block of `ino`, read
    /// when not cached.
    fn ext4_read_inode(&mut self, ino: u32) {
        let block = self.ext4_layout().itable_block(ino);
        self.ext4_read_meta(&[block]);
    }

    /// `stat` through the file system: the inode's table block is read
    /// into the disk's cache (the model has no inode cache to miss: every
    /// `stat` touches it), then [`Self::vfs_getattr`].
    pub fn ext4_getattr(&mut self, ino: u32) -> MmResult<InodeAttr> {
        let attr = self.vfs_getattr(ino)?;
        self.ext4_read_inode(ino);
        Ok(attr)
    }

    /// `ext4_lookup`: the directory blocks that would hold `name` are
    /// read, then the found inode's table block; ENOENT as
    /// [`Self::vfs_lookup`].
    pub fn ext4_lookup(&mut self, dir: u32, name: &str) -> MmResult<u32> {
        self.dir(dir)?;
        let blocks = self.dir_blocks_of(dir, name);
        self.ext4_read_meta(&blocks);
        let ino = self.vfs_lookup(dir, name)?;
        self.ext4_read_inode(ino);
        Ok(ino)
    }

    /// `ext4_readdir`: every block of the directory is read, then
    /// [`Self::vfs_readdir`].
    pub fn ext4_readdir(&mut self, dir: u32) -> MmResult<Vec<(String, u32, FileKind)>> {
        self.dir(dir)?;
        let blocks = self.dir_all_blocks(dir);
        self.ext4_read_meta(&blocks);
        self.vfs_readdir(dir)
    }

    /// `stat` of an inode.
    pub fn vfs_getattr(&self, ino: u32) -> MmResult<InodeAttr> {
        let i = self.vfs.inode(ino)?;
        Ok(InodeAttr {
            ino,
            kind: i.kind,
            size: i.size,
            nlink: i.nlink,
            blocks: i.blocks.len() as u64,
            mtime_ns: i.mtime_ns,
        })
    }

    /// The directory `dir`, or ENOTDIR.
    fn dir(&self, dir: u32) -> MmResult<&Inode> {
        let d = self.vfs.inode(dir)?;
        if d.kind != FileKind::Directory {
            return Err(MmError::NotDir(format!("inode {dir} is not a directory")));
        }
        Ok(d)
    }

    /// `lookup`: the inode of `name` in `dir` (ENOENT).
    pub fn vfs_lookup(&self, dir: u32, name: &str) -> MmResult<u32> {
        self.dir(dir)?
            .children
            .get(name)
            .copied()
            .ok_or_else(|| MmError::NotFound(format!("no '{name}' in directory {dir}")))
    }

    /// The entries of a directory, by name.
    pub fn vfs_readdir(&self, dir: u32) -> MmResult<Vec<(String, u32, FileKind)>> {
        let d = self.dir(dir)?;
        Ok(d.children
            .iter()
            .map(|(name, &ino)| {
                let kind = self.vfs.inode(ino).map_or(FileKind::Regular, |i| i.kind);
                (name.clone(), ino, kind)
            })
            .collect())
    }

    /// Resolve an absolute path inside the machine (`/data/x`).
    pub fn vfs_resolve(&self, path: &str) -> MmResult<u32> {
        if !path.starts_with('/') {
            return Err(MmError::Invalid(format!(
                "'{path}' is not an absolute path of the simulated file system"
            )));
        }
        let mut ino = ROOT_INO;
        for part in path.split('/').filter(|p| !p.is_empty() && *p != ".") {
            ino = self.vfs_lookup(ino, part)?;
        }
        Ok(ino)
    }

    /// Split `/a/b/c` into the inode of `/a/b` and `c`.
    pub fn vfs_resolve_parent<'p>(&self, path: &'p str) -> MmResult<(u32, &'p str)> {
        let trimmed = path.trim_end_matches('/');
        let (dir, name) = trimmed.rsplit_once('/').ok_or_else(|| {
            MmError::Invalid(format!(
                "'{path}' is not an absolute path of the simulated file system"
            ))
        })?;
        let parent = if dir.is_empty() {
            ROOT_INO
        } else {
            self.vfs_resolve(dir)?
        };
        Ok((parent, name))
    }

    /// `create`/`mkdir`: a new inode named `name` in `dir` (EEXIST).
    pub fn vfs_create(&mut self, dir: u32, name: &str, kind: FileKind) -> MmResult<u32> {
        check_name(name)?;
        if self.dir(dir)?.children.contains_key(name) {
            return Err(MmError::Exists(format!(
                "'{name}' exists in directory {dir}"
            )));
        }
        let ino = self.vfs.free_ino()?;
        // ext4_find_entry: the name must not be there.
        let blocks = self.dir_blocks_of(dir, name);
        self.ext4_read_meta(&blocks);
        let object = self.kmem_cache_alloc(slab_common::INODE_CACHE)?;
        let dentry = match self.kmem_cache_alloc(slab_common::DENTRY) {
            Ok(d) => d,
            Err(e) => {
                self.free_object(object);
                return Err(e);
            }
        };
        if let Err(e) = self.ext4_add_entry(dir, name) {
            self.free_object(object);
            self.free_object(dentry);
            return Err(e);
        }
        let now = self.clock_ns;
        // A table block with no other inode in use is not read first
        // (ext4_get_inode_loc zeroes it).
        let layout = self.ext4_layout();
        let block = layout.itable_block(ino);
        let alone = (0..super::buffer::INODES_PER_BLOCK as u32)
            .map(|i| (block - layout.inode_table) as u32 * 16 + 1 + i)
            .all(|i| i == ino || self.vfs.inode(i).is_err());
        self.vfs.insert(Inode::new(ino, kind, now, object, dentry));
        if kind == FileKind::Directory {
            self.dir_append(ino)?;
        }
        // __ext4_new_inode: the inode bitmap, the group descriptors and
        // the new inode; then the parent's times and links.
        self.ext4_dirty_meta(layout.inode_bitmap, false);
        self.ext4_dirty_meta(0, false);
        self.ext4_dirty_meta(block, alone);
        let d = self.vfs.inode_mut(dir)?;
        d.children.insert(name.to_string(), ino);
        d.mtime_ns = now;
        if kind == FileKind::Directory {
            d.nlink += 1;
        }
        self.ext4_dirty_inode(dir);
        Ok(ino)
    }

    /// `unlink`: remove a file's name; the last name frees the inode, its
    /// pages and its blocks.
    pub fn vfs_unlink(&mut self, dir: u32, name: &str) -> MmResult<()> {
        let ino = self.vfs_lookup(dir, name)?;
        if self.vfs.inode(ino)?.kind == FileKind::Directory {
            return Err(MmError::IsDir(format!("'{name}' is a directory")));
        }
        // may_delete: IS_SWAPFILE.
        if self.swap.is_swapfile(ino) {
            return Err(MmError::Permission(format!(
                "'{name}' is an active swap file; swapoff it first"
            )));
        }
        self.ext4_delete_entry(dir, name);
        let d = self.vfs.inode_mut(dir)?;
        d.children.remove(name);
        d.mtime_ns = self.clock_ns;
        self.ext4_dirty_inode(dir);
        self.ext4_dirty_inode(ino);
        self.iput(ino)
    }

    /// `rmdir`: remove an empty directory (ENOTEMPTY).
    pub fn vfs_rmdir(&mut self, dir: u32, name: &str) -> MmResult<()> {
        let ino = self.vfs_lookup(dir, name)?;
        let target = self.dir(ino)?;
        if !target.children.is_empty() {
            return Err(MmError::NotEmpty(format!(
                "directory '{name}' is not empty"
            )));
        }
        self.ext4_delete_entry(dir, name);
        let d = self.vfs.inode_mut(dir)?;
        d.children.remove(name);
        d.nlink -= 1;
        d.mtime_ns = self.clock_ns;
        self.ext4_dirty_inode(dir);
        self.vfs.inode_mut(ino)?.nlink = 1;
        self.iput(ino)
    }

    /// `rename`: move `name` of `dir` to `new_name` of `new_dir`, replacing
    /// a file there (a directory only by an empty directory).
    pub fn vfs_rename(
        &mut self,
        dir: u32,
        name: &str,
        new_dir: u32,
        new_name: &str,
    ) -> MmResult<()> {
        check_name(new_name)?;
        let ino = self.vfs_lookup(dir, name)?;
        self.dir(new_dir)?;
        // vfs_rename: neither an active swap file nor the file it would
        // replace may move.
        let target = self.vfs_lookup(new_dir, new_name).ok();
        if target != Some(ino)
            && [Some(ino), target]
                .into_iter()
                .flatten()
                .any(|i| self.swap.is_swapfile(i))
        {
            return Err(MmError::Permission(format!(
                "'{name}' or '{new_name}' is an active swap file; swapoff it first"
            )));
        }
        let kind = self.vfs.inode(ino)?.kind;
        if kind == FileKind::Directory {
            // A directory cannot move below itself.
            let mut at = new_dir;
            while at != ROOT_INO {
                if at == ino {
                    return Err(MmError::Invalid(format!(
                        "cannot move directory '{name}' into itself"
                    )));
                }
                at = self.parent_of(at).unwrap_or(ROOT_INO);
            }
        }
        let replaces = self.vfs_lookup(new_dir, new_name).ok();
        if replaces == Some(ino) {
            return Ok(());
        }
        if replaces.is_none() {
            // The new name's entry first: a directory that cannot grow
            // (ENOSPC) leaves everything as it was.
            let blocks = self.dir_blocks_of(new_dir, new_name);
            self.ext4_read_meta(&blocks);
            self.ext4_add_entry(new_dir, new_name)?;
        }
        if let Some(old) = replaces {
            match (kind, self.vfs.inode(old)?.kind) {
                (FileKind::Directory, FileKind::Directory) => self.vfs_rmdir(new_dir, new_name)?,
                (FileKind::Directory, FileKind::Regular) => {
                    return Err(MmError::NotDir(format!("'{new_name}' is not a directory")));
                }
                (FileKind::Regular, FileKind::Directory) => {
                    return Err(MmError::IsDir(format!("'{new_name}' is a directory")));
                }
                (FileKind::Regular, FileKind::Regular) => self.vfs_unlink(new_dir, new_name)?,
            }
        }
        if replaces.is_some() {
            // The replaced name's entry (just deleted) takes the new one.
            let blocks = self.dir_blocks_of(new_dir, new_name);
            if let Ok(d) = self.vfs.inode_mut(new_dir) {
                let len = dirent_len(new_name);
                match d.dx.is_empty() {
                    true => d.dir_bytes += len,
                    false => {
                        let i = dx_leaf(&d.dx, dx_hash(new_name));
                        d.dx[i].bytes += len;
                    }
                }
            }
            self.dirty_all(&blocks);
        }
        self.ext4_delete_entry(dir, name);
        let now = self.clock_ns;
        let d = self.vfs.inode_mut(dir)?;
        d.children.remove(name);
        d.mtime_ns = now;
        if kind == FileKind::Directory {
            d.nlink -= 1;
        }
        let nd = self.vfs.inode_mut(new_dir)?;
        nd.children.insert(new_name.to_string(), ino);
        nd.mtime_ns = now;
        if kind == FileKind::Directory {
            nd.nlink += 1;
        }
        for i in [dir, new_dir, ino] {
            self.ext4_dirty_inode(i);
        }
        Ok(())
    }

    /// The directory holding `ino` (a linear search: used for rename's
    /// loop check only).
    fn parent_of(&self, ino: u32) -> Option<u32> {
        self.vfs
            .iter()
            .find(|d| d.kind == FileKind::Directory && d.children.values().any(|&c| c == ino))
            .map(|d| d.ino)
    }

    /// Drop one link; at zero the inode goes with its pages and blocks,
    /// unless a process still maps it: then it lives on without a name
    /// (maps says `(deleted)`) until its last mapping goes.
    fn iput(&mut self, ino: u32) -> MmResult<()> {
        let inode = self.vfs.inode_mut(ino)?;
        inode.nlink = inode.nlink.saturating_sub(1);
        if inode.nlink > 0 || self.mapping_mapped(ino) {
            return Ok(());
        }
        self.evict(ino)
    }

    /// After mappings of `inos` went away: free those that have no name
    /// and no mapping left (`iput_final` of the last `fput`).
    pub(crate) fn iput_unmapped(&mut self, inos: &[u32]) {
        for &ino in inos {
            let orphan = self
                .vfs
                .inode(ino)
                .is_ok_and(|i| i.nlink == 0 && i.kind == FileKind::Regular);
            if orphan && !self.mapping_mapped(ino) {
                let _ = self.evict(ino);
            }
        }
    }

    /// `evict`: the inode goes with its pages and blocks.
    fn evict(&mut self, ino: u32) -> MmResult<()> {
        let layout = self.ext4_layout();
        let mut bitmaps = BTreeSet::new();
        let inode = self.vfs.inode_mut(ino)?;
        if inode.kind == FileKind::Directory {
            // A directory's blocks are the disk cache's, not its own.
            for (_, block) in std::mem::take(&mut inode.blocks) {
                self.ext4_forget_meta(layout.data_block(block));
                bitmaps.insert(layout.block_bitmap_of(block));
                self.vfs.free_block(block);
            }
        }
        self.truncate_inode_pages(ino, 0);
        let inode = self.vfs.inodes[ino as usize]
            .take()
            .expect("looked up above");
        for (_, block) in inode.blocks {
            self.vfs.free_block(block);
        }
        // ext4_free_inode: the inode (dtime), its bitmap and the group
        // descriptors; the block bitmaps of a directory's blocks (a
        // file's go with truncate_inode_pages).
        bitmaps.extend([layout.itable_block(ino), layout.inode_bitmap, 0]);
        for block in bitmaps {
            self.ext4_dirty_meta(block, false);
        }
        for obj in inode
            .object
            .into_iter()
            .chain(inode.dentries)
            .chain(inode.xa_objects)
        {
            self.free_object(obj);
        }
        self.vfs.free_inodes.insert(ino);
        Ok(())
    }

    /// `statfs` of `/dev/sda1`.
    pub fn vfs_statfs(&self) -> StatFs {
        let data = self.vfs.data_pages();
        let files = u64::from(self.vfs.max_ino() - 1);
        StatFs {
            bsize: PAGE_SIZE,
            blocks: data,
            bfree: data.saturating_sub(self.vfs.blocks_used()),
            files,
            ffree: files.saturating_sub(self.vfs.nr_inodes()),
        }
    }
}

/// The leaf of `dx` (sorted by starting hash, the first at 0) holding
/// `hash` (`dx_probe`).
fn dx_leaf(dx: &[DxLeaf], hash: u32) -> usize {
    dx.partition_point(|l| l.hash <= hash).saturating_sub(1)
}

/// Split entries (hash, bytes) sorted by hash in two halves by bytes, as
/// `dx_make_map`/`do_split` do: (bytes below, bytes above, first hash
/// above).
fn split_entries(entries: &[(u32, u64)]) -> (u64, u64, u32) {
    let total: u64 = entries.iter().map(|e| e.1).sum();
    let mut low = 0;
    let mut at = 0;
    while at < entries.len() && low + entries[at].1 <= total / 2 {
        low += entries[at].1;
        at += 1;
    }
    // Names of one hash stay together.
    while at > 0 && at < entries.len() && entries[at].0 == entries[at - 1].0 {
        at -= 1;
        low -= entries[at].1;
    }
    let split = entries.get(at).map_or(u32::MAX, |e| e.0);
    (low, total - low, split)
}
