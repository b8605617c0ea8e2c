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
    /// When the first of the dirty pages was dirtied (`i_dirtied_when`).
    pub dirtied_when_ns: u64,
    /// Readahead state (Linux keeps it per open file; here per inode).
    pub ra: super::filemap::RaState,
    /// The address spaces that may map it (Linux's `i_mmap` tree of VMAs,
    /// kept here as the set of mms; a stale entry is pruned by the next
    /// reverse-map walk that finds no VMA of this inode there).
    pub i_mmap: BTreeSet<MmSlot>,
    /// The `ext4_inode_cache` object.
    object: Option<SlabObject>,
    /// The `dentry` objects of its names.
    dentries: Vec<SlabObject>,
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
            dirtied_when_ns: 0,
            ra: super::filemap::RaState::default(),
            i_mmap: BTreeSet::new(),
            object: Some(object),
            dentries: vec![dentry],
        }
    }
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
        }
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

    /// Inodes in use.
    pub fn nr_inodes(&self) -> u64 {
        self.iter().count() as u64
    }

    /// Disk blocks in use.
    pub fn blocks_used(&self) -> u64 {
        self.next_block - self.free_blocks.len() as u64
    }

    /// A free disk block (ENOSPC when the disk is full).
    pub fn alloc_block(&mut self) -> MmResult<u64> {
        if let Some(b) = self.free_blocks.pop() {
            return Ok(b);
        }
        if self.next_block >= self.disk_pages {
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
        if next > MAX_INODES {
            return Err(MmError::NoSpace(format!(
                "/dev/sda1: all {} inodes are in use",
                MAX_INODES - 1
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
        self.vfs.insert(Inode::new(
            ROOT_INO,
            FileKind::Directory,
            now,
            object,
            dentry,
        ));
        Ok(())
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
        let object = self.kmem_cache_alloc(slab_common::INODE_CACHE)?;
        let dentry = match self.kmem_cache_alloc(slab_common::DENTRY) {
            Ok(d) => d,
            Err(e) => {
                self.free_object(object);
                return Err(e);
            }
        };
        let now = self.clock_ns;
        self.vfs.insert(Inode::new(ino, kind, now, object, dentry));
        let d = self.vfs.inode_mut(dir)?;
        d.children.insert(name.to_string(), ino);
        d.mtime_ns = now;
        if kind == FileKind::Directory {
            d.nlink += 1;
        }
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
        let d = self.vfs.inode_mut(dir)?;
        d.children.remove(name);
        d.mtime_ns = self.clock_ns;
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
        let d = self.vfs.inode_mut(dir)?;
        d.children.remove(name);
        d.nlink -= 1;
        d.mtime_ns = self.clock_ns;
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
        if let Ok(old) = self.vfs_lookup(new_dir, new_name) {
            if old == ino {
                return Ok(());
            }
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
        self.truncate_inode_pages(ino, 0);
        let inode = self.vfs.inodes[ino as usize]
            .take()
            .expect("looked up above");
        for (_, block) in inode.blocks {
            self.vfs.free_block(block);
        }
        for obj in inode.object.into_iter().chain(inode.dentries) {
            self.free_object(obj);
        }
        self.vfs.free_inodes.insert(ino);
        Ok(())
    }

    /// `statfs` of `/dev/sda1`.
    pub fn vfs_statfs(&self) -> StatFs {
        StatFs {
            bsize: PAGE_SIZE,
            blocks: self.vfs.disk_pages,
            bfree: self.vfs.disk_pages - self.vfs.blocks_used(),
            files: u64::from(MAX_INODES - 1),
            ffree: u64::from(MAX_INODES - 1) - self.vfs.nr_inodes(),
        }
    }
}
