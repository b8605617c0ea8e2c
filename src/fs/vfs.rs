//! `MOUNT/fs/`: the simulated machine's root file system (SPEC §8) served
//! as an ordinary directory tree. Every request is one call into the
//! kernel's VFS (mm/namei.rs, mm/filemap.rs) under the machine lock, made
//! through [`Machine::vfs_call`] when it changes anything: host access
//! counts as the kernel's work, for no simulated process.
//!
//! - A node's FUSE inode number is [`tree::VFS_INO_BASE`] + the kernel's
//!   inode number. The kernel reuses the numbers of deleted inodes, so
//!   each creation through the mount gets a new generation: the FUSE
//!   kernel module then never mistakes a new file for an old one it
//!   still caches.
//! - Files are opened with `FOPEN_DIRECT_IO`: the host's page cache
//!   never answers for the simulated one, every read and write reaches
//!   `filemap_read`/`filemap_write`.
//! - Directory listings are snapshots taken at opendir (and at a rewind),
//!   so `rm -r` deleting while it lists neither skips nor repeats.
//! - chmod, chown and utimes are accepted and ignored (as on a file
//!   system without those attributes, mounted `quiet`): `cp -a`,
//!   `tar -x` and `rsync -a` set them on every file they make and would
//!   fail on an error. Modes stay 0644/0755, owner the mounting user.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::time::Duration;

use fuser::{Errno, FileAttr, FileType, FopenFlags, INodeNo, OpenAccMode, OpenFlags, RenameFlags};

use super::tree::{self, Node};
use super::{Handle, MmFs, fs_errno};
use crate::ctl::Machine;
use crate::mm::Kernel;
use crate::mm::buffer::BDEV_INO;
use crate::mm::error::MmResult;
use crate::mm::namei::{FileKind, InodeAttr, NAME_MAX, ROOT_INO, StatFs};
use crate::mm::types::PAGE_SIZE;

/// One directory entry: offset cookie, FUSE inode number, type, name.
pub(super) type DirEntry = (u64, u64, FileType, String);

/// Generations of the kernel inode numbers created through the mount.
#[derive(Debug, Default)]
pub(super) struct Generations {
    next: u64,
    by_ino: HashMap<u32, u64>,
}

impl Generations {
    /// The generation of `ino` (0 for inodes the mount did not create).
    fn get(&self, ino: u32) -> u64 {
        self.by_ino.get(&ino).copied().unwrap_or(0)
    }

    /// A new generation for a just-created inode.
    fn bump(&mut self, ino: u32) -> u64 {
        self.next += 1;
        self.by_ino.insert(ino, self.next);
        self.next
    }
}

/// What an open file of `fs/` holds: the inode and its generation, so a
/// handle whose file was deleted (and the number reused) is stale.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct VfsFile {
    ino: u32,
    generation: u64,
}

/// The name of a request as the kernel's VFS takes it: UTF-8 (the
/// simulated file system keeps `String` names) within NAME_MAX.
fn vfs_name(name: &OsStr) -> Result<&str, Errno> {
    let name = name.to_str().ok_or(Errno::EINVAL)?;
    if name.len() > NAME_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    Ok(name)
}

/// The kernel inode of a node under `fs/`; ENOENT for any other node,
/// EXDEV when it is part of the mount but not of the file system.
fn vfs_ino(node: Node) -> Result<u32, Errno> {
    match node {
        Node::Vfs(ino) => Ok(ino),
        _ => Err(Errno::EXDEV),
    }
}

fn file_type(kind: FileKind) -> FileType {
    match kind {
        FileKind::Regular => FileType::RegularFile,
        FileKind::Directory => FileType::Directory,
    }
}

/// Dirty pages of `ino` that have no disk block yet: like ext4's delayed
/// allocation, they count in `st_blocks` and against free space before
/// writeback gives them a block.
fn delalloc_pages(kernel: &Kernel, ino: u32) -> u64 {
    let Ok(inode) = kernel.vfs.inode(ino) else {
        return 0;
    };
    inode
        .dirty
        .iter()
        .filter(|index| !inode.blocks.contains_key(index))
        .count() as u64
}

/// `statfs` of the simulated disk with the delayed allocations taken off
/// the free blocks, as ext4 reports them.
fn statfs_now(kernel: &Kernel) -> StatFs {
    let mut st = kernel.vfs_statfs();
    let pending: u64 = kernel
        .vfs
        .iter()
        // The disk's cache writes to its own (metadata) blocks.
        .filter(|i| !i.dirty.is_empty() && i.ino != BDEV_INO)
        .map(|i| delalloc_pages(kernel, i.ino))
        .sum();
    st.bfree = st.bfree.saturating_sub(pending);
    st
}

/// ENOSPC when a write of `len` bytes at `off` of `ino` needs more disk
/// blocks than are free once the pending (delayed) allocations are set
/// aside: ext4 reserves blocks at write time, so a full disk fails the
/// write(2) itself rather than the later writeback, and data the disk
/// could never hold does not pile up in the page cache.
fn reserve_blocks(kernel: &Kernel, ino: u32, off: u64, len: u64) -> Result<(), Errno> {
    if len == 0 {
        return Ok(());
    }
    let (first, last) = (off / PAGE_SIZE, (off + len).div_ceil(PAGE_SIZE));
    let vfs = &kernel.vfs;
    // Cheap bound first: every dirty page might still need a block.
    let free = vfs.data_pages().saturating_sub(vfs.blocks_used());
    if vfs.stats.nr_dirty + (last - first) <= free {
        return Ok(());
    }
    let Ok(inode) = vfs.inode(ino) else {
        return Ok(());
    };
    // Dirty pages without a block are reserved already.
    let needed = (first..last)
        .filter(|index| !inode.blocks.contains_key(index) && !inode.dirty.contains(index))
        .count() as u64;
    if needed > statfs_now(kernel).bfree {
        return Err(Errno::ENOSPC);
    }
    Ok(())
}

impl MmFs {
    /// The attributes of a kernel inode as `stat` shows them.
    fn vfs_file_attr(&self, kernel: &Kernel, a: &InodeAttr) -> FileAttr {
        let (kind, perm) = match a.kind {
            FileKind::Regular => (FileType::RegularFile, tree::VFS_FILE_MODE),
            FileKind::Directory => (FileType::Directory, tree::VFS_DIR_MODE),
        };
        // The simulated clock starts at the mount.
        let mtime = self.time + Duration::from_nanos(a.mtime_ns);
        let pages = a.blocks + delalloc_pages(kernel, a.ino);
        FileAttr {
            ino: INodeNo(Node::Vfs(a.ino).ino()),
            size: a.size,
            blocks: pages * (PAGE_SIZE / 512),
            atime: mtime,
            mtime,
            ctime: mtime,
            crtime: mtime,
            kind,
            perm,
            nlink: a.nlink,
            uid: self.uid,
            gid: self.gid,
            rdev: 0,
            blksize: PAGE_SIZE as u32,
            flags: 0,
        }
    }

    /// Attributes and generation of kernel inode `ino`.
    fn vfs_entry(&self, kernel: &Kernel, ino: u32) -> Result<(FileAttr, u64), Errno> {
        let a = kernel.vfs_getattr(ino).map_err(|e| fs_errno(&e))?;
        let generation = self.vfs_gens.lock().get(ino);
        Ok((self.vfs_file_attr(kernel, &a), generation))
    }

    /// `getattr` of a node under `fs/`.
    pub(super) fn vfs_attr(&self, ino: u32) -> Result<FileAttr, Errno> {
        let mut machine = self.machine_mut();
        // Through ext4: the inode's table block is read into Buffers.
        Machine::vfs_call(&mut machine, |k| k.ext4_getattr(ino)).map_err(|e| fs_errno(&e))?;
        self.vfs_entry(&machine, ino).map(|(attr, _)| attr)
    }

    /// `lookup` of `name` in directory `dir` of `fs/`.
    pub(super) fn vfs_lookup(&self, dir: u32, name: &OsStr) -> Result<(FileAttr, u64), Errno> {
        let name = vfs_name(name)?;
        let mut machine = self.machine_mut();
        // ext4_lookup reads the directory and inode-table blocks.
        let ino = Machine::vfs_call(&mut machine, |k| k.ext4_lookup(dir, name))
            .map_err(|e| fs_errno(&e))?;
        self.vfs_entry(&machine, ino)
    }

    /// The entries of directory `dir` of `fs/`, with `.` and `..`.
    pub(super) fn vfs_dir_entries(&self, dir: u32) -> Result<Vec<DirEntry>, Errno> {
        let mut machine = self.machine_mut();
        // ext4_readdir reads the directory's blocks.
        let entries =
            Machine::vfs_call(&mut machine, |k| k.ext4_readdir(dir)).map_err(|e| fs_errno(&e))?;
        let kernel: &Machine = &machine;
        let parent = if dir == ROOT_INO {
            // `fs/..` is the mount's root.
            Node::Static(0).ino()
        } else {
            kernel
                .vfs
                .iter()
                .find(|d| d.kind == FileKind::Directory && d.children.values().any(|&c| c == dir))
                .map_or(Node::Vfs(ROOT_INO).ino(), |d| Node::Vfs(d.ino).ino())
        };
        let mut out = vec![
            (
                1,
                Node::Vfs(dir).ino(),
                FileType::Directory,
                ".".to_string(),
            ),
            (2, parent, FileType::Directory, "..".to_string()),
        ];
        for (i, (name, ino, kind)) in entries.into_iter().enumerate() {
            out.push((i as u64 + 3, Node::Vfs(ino).ino(), file_type(kind), name));
        }
        Ok(out)
    }

    /// Run `f` on the machine as the kernel's work; EROFS on a read-only
    /// mount when it would change something.
    fn vfs_change<T>(&self, f: impl FnOnce(&mut Kernel) -> MmResult<T>) -> Result<T, Errno> {
        if self.read_only {
            return Err(Errno::EROFS);
        }
        let mut machine = self.machine_mut();
        Machine::vfs_call(&mut machine, f).map_err(|e| fs_errno(&e))
    }

    /// `create`/`mknod`/`mkdir`: a new inode in `dir`, its attributes and
    /// its generation.
    pub(super) fn vfs_create(
        &self,
        parent: Node,
        name: &OsStr,
        kind: FileKind,
    ) -> Result<(FileAttr, u64), Errno> {
        let dir = vfs_ino(parent).map_err(|_| Errno::EPERM)?;
        let name = vfs_name(name)?;
        if self.read_only {
            return Err(Errno::EROFS);
        }
        let mut machine = self.machine_mut();
        let ino = Machine::vfs_call(&mut machine, |k| k.vfs_create(dir, name, kind))
            .map_err(|e| fs_errno(&e))?;
        let generation = self.vfs_gens.lock().bump(ino);
        let a = machine.vfs_getattr(ino).map_err(|e| fs_errno(&e))?;
        Ok((self.vfs_file_attr(&machine, &a), generation))
    }

    /// `unlink` (`dir_op` false) or `rmdir` (true).
    pub(super) fn vfs_remove(&self, parent: Node, name: &OsStr, dir_op: bool) -> Result<(), Errno> {
        let dir = vfs_ino(parent).map_err(|_| Errno::EPERM)?;
        let name = vfs_name(name)?;
        self.vfs_change(|k| {
            if dir_op {
                k.vfs_rmdir(dir, name)
            } else {
                k.vfs_unlink(dir, name)
            }
        })
    }

    /// `rename` (flags 0 or RENAME_NOREPLACE; exchange and whiteout are
    /// not supported: EINVAL, as file systems without them answer).
    pub(super) fn vfs_rename(
        &self,
        parent: Node,
        name: &OsStr,
        new_parent: Node,
        new_name: &OsStr,
        flags: RenameFlags,
    ) -> Result<(), Errno> {
        let (dir, new_dir) = match (parent, new_parent) {
            (Node::Vfs(a), Node::Vfs(b)) => (a, b),
            // Between fs/ and the rest of the mount.
            (Node::Vfs(_), _) | (_, Node::Vfs(_)) => return Err(Errno::EXDEV),
            _ => return Err(Errno::EPERM),
        };
        let (name, new_name) = (vfs_name(name)?, vfs_name(new_name)?);
        if !(flags - RenameFlags::RENAME_NOREPLACE).is_empty() {
            return Err(Errno::EINVAL);
        }
        let noreplace = flags.contains(RenameFlags::RENAME_NOREPLACE);
        self.vfs_change(|k| {
            if noreplace && k.vfs_lookup(new_dir, new_name).is_ok() {
                return Err(crate::mm::error::MmError::Exists(format!(
                    "'{new_name}' exists in directory {new_dir}"
                )));
            }
            k.vfs_rename(dir, name, new_dir, new_name)
        })
    }

    /// Open a file of `fs/` (directories go through opendir). `O_TRUNC`
    /// truncates here too, for kernels that pass it with the open.
    pub(super) fn vfs_open(
        &self,
        ino: u32,
        flags: OpenFlags,
    ) -> Result<(Handle, FopenFlags), Errno> {
        let writes = flags.acc_mode() != OpenAccMode::O_RDONLY;
        let mut machine = self.machine_mut();
        let a = machine.vfs_getattr(ino).map_err(|e| fs_errno(&e))?;
        if a.kind == FileKind::Directory {
            return Err(Errno::EISDIR);
        }
        if writes && flags.0 & libc::O_TRUNC != 0 && a.size > 0 {
            Machine::vfs_call(&mut machine, |k| k.vfs_truncate(ino, 0))
                .map_err(|e| fs_errno(&e))?;
        }
        let generation = self.vfs_gens.lock().get(ino);
        let file = VfsFile { ino, generation };
        Ok((Handle::Vfs(file), FopenFlags::FOPEN_DIRECT_IO))
    }

    /// ENOENT unless the handle's file still exists (not deleted and its
    /// number handed to a new file).
    fn vfs_check(&self, kernel: &Kernel, file: VfsFile) -> Result<(), Errno> {
        kernel.vfs.inode(file.ino).map_err(|e| fs_errno(&e))?;
        if self.vfs_gens.lock().get(file.ino) != file.generation {
            return Err(Errno::ESTALE);
        }
        Ok(())
    }

    /// `read` through the simulated page cache.
    pub(super) fn vfs_read(&self, file: VfsFile, offset: u64, size: u32) -> Result<Vec<u8>, Errno> {
        let mut machine = self.machine_mut();
        self.vfs_check(&machine, file)?;
        Machine::vfs_call(&mut machine, |k| {
            k.filemap_read(file.ino, offset, u64::from(size))
        })
        .map_err(|e| fs_errno(&e))
    }

    /// `write` through the simulated page cache.
    pub(super) fn vfs_write(&self, file: VfsFile, offset: u64, data: &[u8]) -> Result<u32, Errno> {
        if self.read_only {
            return Err(Errno::EROFS);
        }
        let mut machine = self.machine_mut();
        self.vfs_check(&machine, file)?;
        reserve_blocks(&machine, file.ino, offset, data.len() as u64)?;
        let n = Machine::vfs_call(&mut machine, |k| k.filemap_write(file.ino, offset, data))
            .map_err(|e| fs_errno(&e))?;
        u32::try_from(n).map_err(|_| Errno::EIO)
    }

    /// `fsync`: the file's dirty pages to the simulated disk.
    pub(super) fn vfs_fsync(&self, ino: u32) -> Result<(), Errno> {
        let mut machine = self.machine_mut();
        // Nothing to write on a read-only mount (nothing was dirtied).
        Machine::vfs_call(&mut machine, |k| k.vfs_fsync(ino)).map_err(|e| fs_errno(&e))
    }

    /// `setattr`: a new size truncates; mode, owner and times are
    /// accepted and ignored (see the module comment).
    pub(super) fn vfs_setattr(
        &self,
        ino: u32,
        changes: bool,
        size: Option<u64>,
    ) -> Result<FileAttr, Errno> {
        if self.read_only && (changes || size.is_some()) {
            return Err(Errno::EROFS);
        }
        let mut machine = self.machine_mut();
        if let Some(size) = size {
            Machine::vfs_call(&mut machine, |k| k.vfs_truncate(ino, size))
                .map_err(|e| fs_errno(&e))?;
        }
        self.vfs_entry(&machine, ino).map(|(attr, _)| attr)
    }

    /// `statfs` of `fs/`: the simulated disk, so `df MOUNT/fs` shows it.
    pub(super) fn vfs_statfs(&self) -> StatFs {
        statfs_now(&self.machine())
    }
}
