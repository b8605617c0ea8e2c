//! The FUSE adapter: serves the simulated kernel as a tree of files that
//! behave like procfs.
//!
//! - Generated files are rendered once per open (a consistent snapshot),
//!   opened with `FOPEN_DIRECT_IO` so the page cache never shows stale text,
//!   report size 0 and are served by offset.
//! - Control files (`ctl`, `PID/ctl`) assemble lines per handle
//!   ([`linebuf::LineBuffer`]) and run them through `Machine::execute_line`.
//! - One `parking_lot::Mutex<Machine>` is taken per request; the reply goes
//!   out after the lock is released. Open handles live in a separate table.
//! - Attribute and entry TTLs are zero: process directories come and go.
//!
//! Nothing here knows about memory management: text in, text out.

pub mod linebuf;
pub mod mount;
pub mod tree;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use fuser::{
    AccessFlags, BsdFileFlags, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags,
    Generation, INodeNo, LockOwner, OpenAccMode, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate,
    ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyWrite, ReplyXattr, Request,
    TimeOrNow, WriteFlags,
};
use parking_lot::Mutex;

use crate::ctl::{Machine, PidWrite, Scope};
use crate::mm::error::MmError;
use crate::mm::types::Pid;
use crate::procfs::pid::{PidFile, render_pid};
use crate::procfs::render_global;
use linebuf::LineBuffer;
use tree::{Node, PidEntry, StaticKind, StaticTree};

/// Extended attribute on the mount's root that holds the daemon's pid, so
/// `mmfs umount` can wait for the daemon to be gone.
pub const PID_XATTR: &str = "user.mmfs.pid";

/// Attributes and entries are never cached: every stat sees the live tree.
const TTL: Duration = Duration::ZERO;

/// Offset cookies of process directories in a root readdir: above any static
/// entry's index, ordered by pid, so a listing that spans several readdir
/// calls neither repeats nor skips a pid when others come and go.
const PID_DIR_OFFSET: u64 = 1 << 32;

/// What an open file handle holds.
#[derive(Debug)]
enum Handle {
    /// A generated file: the text rendered at open.
    Snapshot(Arc<[u8]>),
    /// A control file: the partial line of this handle.
    Ctl {
        /// Which control file.
        scope: Scope,
        /// Bytes that have not formed a line yet, and who wrote them.
        buffer: Arc<Mutex<CtlBuffer>>,
    },
    /// A tunable (a sysctl, `PID/oom_score_adj`, `PID/comm`): each write
    /// applies at once; reads come from the snapshot taken at open.
    Tunable {
        /// Which one.
        target: Tunable,
        /// The value at open, when opened for reading.
        snapshot: Option<Arc<[u8]>>,
    },
    /// `PID/mem`: reads and writes at offset = virtual address.
    Mem(Pid),
    /// `PID/pagemap`, read at offsets.
    Pagemap(Pid),
}

/// A file whose writes set a value.
#[derive(Clone, Copy, Debug)]
enum Tunable {
    /// A path under `sys/` (`vm/swappiness`).
    Sysctl(&'static str),
    /// A writable file of a process directory.
    Pid(Pid, PidFile),
}

/// The line buffer of a control-file handle.
#[derive(Debug, Default)]
struct CtlBuffer {
    /// Bytes that have not formed a line yet.
    lines: LineBuffer,
    /// Lock owner (the writer's file table) of the writes that left the
    /// partial line. FUSE sends a flush for every close of a descriptor,
    /// also when a forked child that inherited it execs or exits; only a
    /// close in the writer's own file table runs the partial line before
    /// the final release. (FUSE cannot tell the writer's last close from
    /// the close of a duplicate, so bash's per-command `printf .. >&3`
    /// ends a partial line; `{ printf ..; printf ..; } > ctl` does not.)
    writer: Option<LockOwner>,
}

/// The open handles, numbered from 1.
#[derive(Debug, Default)]
struct Handles {
    next: u64,
    open: BTreeMap<u64, Handle>,
}

impl Handles {
    fn insert(&mut self, handle: Handle) -> u64 {
        self.next = self.next.wrapping_add(1).max(1);
        while self.open.contains_key(&self.next) {
            self.next = self.next.wrapping_add(1).max(1);
        }
        self.open.insert(self.next, handle);
        self.next
    }
}

/// A copy of what a read or write needs from a handle, taken so that the
/// handle table is not held while the kernel works.
enum HandleRef {
    Bytes(Arc<[u8]>),
    Ctl(Scope, Arc<Mutex<CtlBuffer>>),
    Tunable(Tunable, Option<Arc<[u8]>>),
    Mem(Pid),
    /// `PID/pagemap`, read at offsets.
    Pagemap(Pid),
}

/// The filesystem: the simulated kernel behind its lock, the tree and the
/// open handles.
pub struct MmFs {
    kernel: Mutex<Machine>,
    handles: Mutex<Handles>,
    tree: StaticTree,
    /// Owner of every file: the user who mounted.
    uid: u32,
    gid: u32,
    /// Timestamp shown on every file (when the mount was made).
    time: SystemTime,
    /// The constant `version` text.
    version: Arc<[u8]>,
}

/// Map a kernel error to the errno a file operation returns. A process that
/// is gone makes its files vanish (ENOENT), as in /proc.
fn fs_errno(err: &MmError) -> Errno {
    match err {
        MmError::NoProcess(_) => Errno::ENOENT,
        other => Errno::from_i32(other.errno()),
    }
}

/// Run a request handler; a panic is logged and the request fails with EIO
/// (fuser answers a dropped reply with EIO) instead of taking the daemon's
/// worker thread down.
fn guarded(op: &str, f: impl FnOnce()) {
    if let Err(panic) = std::panic::catch_unwind(AssertUnwindSafe(f)) {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        log::error!("{op}: handler panicked: {what}");
    }
}

impl MmFs {
    /// Serve `kernel`, with every file owned by `uid`:`gid`.
    pub fn new(kernel: Machine, uid: u32, gid: u32) -> MmFs {
        let version: Arc<[u8]> = crate::procfs::version::version(&kernel).into_bytes().into();
        MmFs {
            kernel: Mutex::new(kernel),
            handles: Mutex::new(Handles::default()),
            tree: StaticTree::build(),
            uid,
            gid,
            time: SystemTime::now(),
            version,
        }
    }

    /// The machine behind the mount (for in-process callers and tests).
    pub fn kernel(&self) -> &Mutex<Machine> {
        &self.kernel
    }

    fn attr(&self, ino: u64, kind: FileType, perm: u16, nlink: u32) -> FileAttr {
        FileAttr {
            ino: INodeNo(ino),
            size: 0,
            blocks: 0,
            atime: self.time,
            mtime: self.time,
            ctime: self.time,
            crtime: self.time,
            kind,
            perm,
            nlink,
            uid: self.uid,
            gid: self.gid,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        }
    }

    fn pid_alive(&self, pid: Pid) -> bool {
        self.kernel.lock().pids().binary_search(&pid).is_ok()
    }

    fn static_node(&self, index: usize) -> Result<&tree::StaticNode, Errno> {
        self.tree.node(index).ok_or(Errno::ENOENT)
    }

    /// Attributes of a node; ENOENT for the nodes of a process that is gone.
    fn node_attr(&self, node: Node) -> Result<FileAttr, Errno> {
        match node {
            Node::Static(index) => {
                let n = self.static_node(index)?;
                Ok(match n.kind {
                    StaticKind::Dir => {
                        let nlink = 2 + self.tree.subdirs(index) as u32;
                        self.attr(node.ino(), FileType::Directory, n.mode, nlink)
                    }
                    _ => self.attr(node.ino(), FileType::RegularFile, n.mode, 1),
                })
            }
            Node::PidDir(pid) => {
                if !self.pid_alive(pid) {
                    return Err(Errno::ENOENT);
                }
                Ok(self.attr(node.ino(), FileType::Directory, tree::DIR_MODE, 2))
            }
            Node::PidEntry(pid, entry) => {
                let (_, mode, _) = tree::pid_entry_info(entry).ok_or(Errno::ENOENT)?;
                if !self.pid_alive(pid) {
                    return Err(Errno::ENOENT);
                }
                Ok(self.attr(node.ino(), FileType::RegularFile, mode, 1))
            }
        }
    }

    fn decode(&self, ino: INodeNo) -> Result<Node, Errno> {
        tree::decode(&self.tree, ino.0).ok_or(Errno::ENOENT)
    }

    fn do_lookup(&self, parent: INodeNo, name: &OsStr) -> Result<FileAttr, Errno> {
        let name = name.to_str().ok_or(Errno::ENOENT)?;
        match self.decode(parent)? {
            Node::Static(index) => {
                if self.static_node(index)?.kind != StaticKind::Dir {
                    return Err(Errno::ENOTDIR);
                }
                if let Some(child) = self.tree.child(index, name) {
                    return self.node_attr(Node::Static(child));
                }
                match tree::parse_pid_name(name) {
                    Some(pid) if index == 0 => self.node_attr(Node::PidDir(pid)),
                    _ => Err(Errno::ENOENT),
                }
            }
            Node::PidDir(pid) => {
                let (entry, _) = tree::pid_entry_by_name(name).ok_or(Errno::ENOENT)?;
                self.node_attr(Node::PidEntry(pid, entry))
            }
            Node::PidEntry(..) => Err(Errno::ENOTDIR),
        }
    }

    /// Every entry of a directory with its readdir offset cookie, in order.
    fn dir_entries(&self, ino: INodeNo) -> Result<Vec<(u64, u64, FileType, String)>, Errno> {
        let node = self.decode(ino)?;
        let mut out = Vec::new();
        match node {
            Node::Static(index) => {
                let dir = self.static_node(index)?;
                if dir.kind != StaticKind::Dir {
                    return Err(Errno::ENOTDIR);
                }
                let parent = Node::Static(dir.parent).ino();
                out.push((node.ino(), FileType::Directory, ".".to_string()));
                out.push((parent, FileType::Directory, "..".to_string()));
                for &child in &dir.children {
                    let c = self.static_node(child)?;
                    let kind = match c.kind {
                        StaticKind::Dir => FileType::Directory,
                        _ => FileType::RegularFile,
                    };
                    out.push((Node::Static(child).ino(), kind, c.name.clone()));
                }
                let mut entries: Vec<(u64, u64, FileType, String)> = out
                    .into_iter()
                    .enumerate()
                    .map(|(i, (ino, kind, name))| (i as u64 + 1, ino, kind, name))
                    .collect();
                if index == 0 {
                    let pids = self.kernel.lock().pids();
                    for pid in pids {
                        entries.push((
                            PID_DIR_OFFSET + u64::from(pid.0),
                            Node::PidDir(pid).ino(),
                            FileType::Directory,
                            pid.to_string(),
                        ));
                    }
                }
                Ok(entries)
            }
            Node::PidDir(pid) => {
                if !self.pid_alive(pid) {
                    return Err(Errno::ENOENT);
                }
                out.push((node.ino(), FileType::Directory, ".".to_string()));
                out.push((Node::Static(0).ino(), FileType::Directory, "..".to_string()));
                for (name, entry, _) in tree::pid_entries() {
                    out.push((
                        Node::PidEntry(pid, entry).ino(),
                        FileType::RegularFile,
                        name.to_string(),
                    ));
                }
                Ok(out
                    .into_iter()
                    .enumerate()
                    .map(|(i, (ino, kind, name))| (i as u64 + 1, ino, kind, name))
                    .collect())
            }
            Node::PidEntry(..) => Err(Errno::ENOTDIR),
        }
    }

    fn do_open(&self, ino: INodeNo, flags: OpenFlags) -> Result<Handle, Errno> {
        let mode = flags.acc_mode();
        let reads = mode != OpenAccMode::O_WRONLY;
        let writes = mode != OpenAccMode::O_RDONLY;
        match self.decode(ino)? {
            Node::Static(index) => match self.static_node(index)?.kind {
                StaticKind::Dir => Err(Errno::EISDIR),
                StaticKind::Global(file) => {
                    if writes {
                        return Err(Errno::EACCES);
                    }
                    let text = render_global(&self.kernel.lock(), file);
                    Ok(Handle::Snapshot(text.into_bytes().into()))
                }
                StaticKind::Version => {
                    if writes {
                        return Err(Errno::EACCES);
                    }
                    Ok(Handle::Snapshot(self.version.clone()))
                }
                StaticKind::Ctl => {
                    if reads {
                        return Err(Errno::EACCES);
                    }
                    Ok(Handle::Ctl {
                        scope: Scope::System,
                        buffer: Arc::default(),
                    })
                }
                StaticKind::Sysctl { path, writable } => {
                    if writes && !writable {
                        return Err(Errno::EACCES);
                    }
                    let snapshot = if reads {
                        let text = self
                            .kernel
                            .lock()
                            .sysctl_read(path)
                            .map_err(|e| fs_errno(&e))?;
                        Some(text.into_bytes().into())
                    } else {
                        None
                    };
                    Ok(Handle::Tunable {
                        target: Tunable::Sysctl(path),
                        snapshot,
                    })
                }
            },
            Node::PidDir(_) => Err(Errno::EISDIR),
            Node::PidEntry(pid, PidEntry::Ctl) => {
                if reads {
                    return Err(Errno::EACCES);
                }
                if !self.pid_alive(pid) {
                    return Err(Errno::ENOENT);
                }
                Ok(Handle::Ctl {
                    scope: Scope::Process(pid),
                    buffer: Arc::default(),
                })
            }
            Node::PidEntry(pid, PidEntry::Mem) => {
                if !self.pid_alive(pid) {
                    return Err(Errno::ENOENT);
                }
                Ok(Handle::Mem(pid))
            }
            Node::PidEntry(pid, PidEntry::Pagemap) => {
                if writes {
                    return Err(Errno::EACCES);
                }
                if !self.pid_alive(pid) {
                    return Err(Errno::ENOENT);
                }
                Ok(Handle::Pagemap(pid))
            }
            Node::PidEntry(pid, PidEntry::File(i)) => {
                let (_, mode, file) =
                    tree::pid_entry_info(PidEntry::File(i)).ok_or(Errno::ENOENT)?;
                let file = file.ok_or(Errno::ENOENT)?;
                let writable = mode & 0o200 != 0;
                if writes && !writable {
                    return Err(Errno::EACCES);
                }
                let snapshot: Option<Arc<[u8]>> = if reads {
                    let text =
                        render_pid(&self.kernel.lock(), pid, file).map_err(|e| fs_errno(&e))?;
                    Some(text.into_bytes().into())
                } else if self.pid_alive(pid) {
                    None
                } else {
                    return Err(Errno::ENOENT);
                };
                Ok(match (writable, snapshot) {
                    (false, Some(bytes)) => Handle::Snapshot(bytes),
                    (_, snapshot) => Handle::Tunable {
                        target: Tunable::Pid(pid, file),
                        snapshot,
                    },
                })
            }
        }
    }

    fn handle_ref(&self, fh: FileHandle) -> Result<HandleRef, Errno> {
        let handles = self.handles.lock();
        Ok(match handles.open.get(&fh.0).ok_or(Errno::EBADF)? {
            Handle::Snapshot(bytes) => HandleRef::Bytes(bytes.clone()),
            Handle::Ctl { scope, buffer } => HandleRef::Ctl(*scope, buffer.clone()),
            Handle::Tunable { target, snapshot } => HandleRef::Tunable(*target, snapshot.clone()),
            Handle::Mem(pid) => HandleRef::Mem(*pid),
            Handle::Pagemap(pid) => HandleRef::Pagemap(*pid),
        })
    }

    fn do_read(&self, fh: FileHandle, offset: u64, size: u32) -> Result<Vec<u8>, Errno> {
        match self.handle_ref(fh)? {
            HandleRef::Bytes(bytes) | HandleRef::Tunable(_, Some(bytes)) => {
                let start = usize::try_from(offset)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len());
                let end = start.saturating_add(size as usize).min(bytes.len());
                Ok(bytes[start..end].to_vec())
            }
            HandleRef::Mem(pid) => self
                .kernel
                .lock()
                .read_mem(pid, offset, size as usize)
                .map_err(|e| Errno::from_i32(e.errno())),
            // Like /proc/PID/pagemap, generated per read at the offset.
            HandleRef::Pagemap(pid) => self
                .kernel
                .lock()
                .read_pagemap(pid, offset, size as usize)
                .map_err(|e| Errno::from_i32(e.errno())),
            HandleRef::Ctl(..) | HandleRef::Tunable(_, None) => Err(Errno::EBADF),
        }
    }

    fn do_write(
        &self,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        owner: Option<LockOwner>,
    ) -> Result<u32, Errno> {
        let len = u32::try_from(data.len()).map_err(|_| Errno::EINVAL)?;
        match self.handle_ref(fh)? {
            HandleRef::Ctl(scope, buffer) => {
                let mut buffer = buffer.lock();
                let mut kernel = self.kernel.lock();
                let result = buffer.lines.feed(data, |line| {
                    kernel.execute_line(scope, line).map_err(|e| e.errno())
                });
                buffer.writer = if buffer.lines.has_partial() {
                    owner
                } else {
                    None
                };
                result.map_err(Errno::from_i32)?;
                Ok(len)
            }
            HandleRef::Tunable(target, _) => {
                let text = std::str::from_utf8(data).map_err(|_| Errno::EINVAL)?;
                let mut kernel = self.kernel.lock();
                let result = match target {
                    Tunable::Sysctl(path) => kernel.write_sysctl(path, text),
                    // A write to an open file of a dead process: ESRCH.
                    Tunable::Pid(pid, PidFile::Comm) => {
                        kernel.write_pid_file(pid, PidWrite::Comm, text)
                    }
                    Tunable::Pid(pid, PidFile::OomScoreAdj) => {
                        kernel.write_pid_file(pid, PidWrite::OomScoreAdj, text)
                    }
                    Tunable::Pid(pid, file) => {
                        Err(MmError::Permission(format!("{pid}/{file:?} is read-only")))
                    }
                };
                drop(kernel);
                result.map_err(|e| Errno::from_i32(e.errno()))?;
                Ok(len)
            }
            HandleRef::Mem(pid) => {
                let written = self
                    .kernel
                    .lock()
                    .write_mem(pid, offset, data)
                    .map_err(|e| Errno::from_i32(e.errno()))?;
                u32::try_from(written).map_err(|_| Errno::EIO)
            }
            HandleRef::Bytes(_) | HandleRef::Pagemap(_) => Err(Errno::EBADF),
        }
    }

    /// Run the partial line of a control handle at close: at the flush of
    /// the writer's own descriptor (`closer`), or at the final release
    /// (`None`).
    fn finish_ctl(&self, fh: FileHandle, closer: Option<LockOwner>) -> Result<(), Errno> {
        if let HandleRef::Ctl(scope, buffer) = self.handle_ref(fh)? {
            let mut buffer = buffer.lock();
            if !buffer.lines.has_partial() {
                return Ok(());
            }
            if let (Some(writer), Some(closer)) = (buffer.writer, closer)
                && writer != closer
            {
                // Another process closed its inherited copy: keep waiting.
                return Ok(());
            }
            buffer.writer = None;
            let mut kernel = self.kernel.lock();
            buffer
                .lines
                .finish(|line| kernel.execute_line(scope, line).map_err(|e| e.errno()))
                .map_err(Errno::from_i32)?;
        }
        Ok(())
    }

    /// True when the node takes writes (so truncation is a no-op).
    fn writable(&self, node: Node) -> bool {
        match node {
            Node::Static(index) => matches!(
                self.tree.node(index).map(|n| n.kind),
                Some(StaticKind::Ctl | StaticKind::Sysctl { writable: true, .. })
            ),
            Node::PidEntry(_, PidEntry::Ctl | PidEntry::Mem) => true,
            Node::PidEntry(_, entry @ PidEntry::File(_)) => {
                tree::pid_entry_info(entry).is_some_and(|(_, mode, _)| mode & 0o200 != 0)
            }
            Node::PidDir(_) | Node::PidEntry(_, PidEntry::Pagemap) => false,
        }
    }

    fn do_setattr(
        &self,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
    ) -> Result<FileAttr, Errno> {
        let node = self.decode(ino)?;
        let attr = self.node_attr(node)?;
        if mode.is_some_and(|m| (m & 0o7777) as u16 != attr.perm)
            || uid.is_some_and(|u| u != attr.uid)
            || gid.is_some_and(|g| g != attr.gid)
        {
            return Err(Errno::EPERM);
        }
        if size.is_some() {
            if attr.kind == FileType::Directory {
                return Err(Errno::EISDIR);
            }
            // `echo x > ctl` opens with O_TRUNC: truncating a control file or
            // tunable is a no-op, as in /proc/sys. Generated files are read-only.
            if !self.writable(node) {
                return Err(Errno::EACCES);
            }
        }
        // Timestamps (touch) are accepted and ignored, as procfs does.
        Ok(attr)
    }
}

impl Filesystem for MmFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        guarded("lookup", || match self.do_lookup(parent, name) {
            Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
            Err(e) => reply.error(e),
        });
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        guarded("getattr", || {
            match self.decode(ino).and_then(|n| self.node_attr(n)) {
                Ok(attr) => reply.attr(&TTL, &attr),
                Err(e) => reply.error(e),
            }
        });
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        guarded("setattr", || {
            match self.do_setattr(ino, mode, uid, gid, size) {
                Ok(attr) => reply.attr(&TTL, &attr),
                Err(e) => reply.error(e),
            }
        });
    }

    fn mknod(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        // procfs has no create operations: the name stays absent.
        reply.error(Errno::ENOENT);
    }

    fn mkdir(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::ENOENT);
    }

    fn unlink(&self, _req: &Request, _parent: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        // rm /proc/buddyinfo: "Operation not permitted".
        reply.error(Errno::EPERM);
    }

    fn rmdir(&self, _req: &Request, _parent: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(Errno::EPERM);
    }

    fn symlink(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _link_name: &OsStr,
        _target: &Path,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::ENOENT);
    }

    fn rename(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _newparent: INodeNo,
        _newname: &OsStr,
        _flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::ENOENT);
    }

    fn link(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _newparent: INodeNo,
        _newname: &OsStr,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::ENOENT);
    }

    fn create(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        reply.error(Errno::ENOENT);
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        guarded("open", || match self.do_open(ino, flags) {
            Ok(handle) => {
                let fh = self.handles.lock().insert(handle);
                reply.opened(FileHandle(fh), FopenFlags::FOPEN_DIRECT_IO);
            }
            Err(e) => reply.error(e),
        });
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        guarded("read", || match self.do_read(fh, offset, size) {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(e),
        });
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        log::trace!("write fh={} len={} owner={lock_owner:?}", fh.0, data.len());
        guarded("write", || {
            match self.do_write(fh, offset, data, lock_owner) {
                Ok(n) => reply.written(n),
                Err(e) => reply.error(e),
            }
        });
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        // close(): a partial line runs now, and close() reports its error.
        log::trace!("flush fh={} owner={lock_owner:?}", fh.0);
        guarded("flush", || match self.finish_ctl(fh, Some(lock_owner)) {
            Ok(()) | Err(Errno::EBADF) => reply.ok(),
            Err(e) => reply.error(e),
        });
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        guarded("release", || {
            // Normally flush ran the partial line already; nobody is left
            // to hear about an error here.
            if let Err(e) = self.finish_ctl(fh, None)
                && e != Errno::EBADF
            {
                log::debug!("release: partial control line failed: {e:?}");
            }
            self.handles.lock().open.remove(&fh.0);
            reply.ok();
        });
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        guarded("readdir", || match self.dir_entries(ino) {
            Ok(entries) => {
                for (cookie, ino, kind, name) in entries {
                    if cookie <= offset {
                        continue;
                    }
                    if reply.add(INodeNo(ino), cookie, kind, &name) {
                        break;
                    }
                }
                reply.ok();
            }
            Err(e) => reply.error(e),
        });
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        guarded("getxattr", || {
            if ino != INodeNo::ROOT || name != PID_XATTR {
                reply.error(Errno::NO_XATTR);
                return;
            }
            let value = std::process::id().to_string();
            if size == 0 {
                reply.size(value.len() as u32);
            } else if (size as usize) < value.len() {
                reply.error(Errno::ERANGE);
            } else {
                reply.data(value.as_bytes());
            }
        });
    }

    fn listxattr(&self, _req: &Request, _ino: INodeNo, size: u32, reply: ReplyXattr) {
        if size == 0 {
            reply.size(0);
        } else {
            reply.data(&[]);
        }
    }

    fn access(&self, _req: &Request, _ino: INodeNo, _mask: AccessFlags, reply: ReplyEmpty) {
        // default_permissions: the kernel checks modes itself.
        reply.ok();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mm::{Kernel, MachineConfig};

    fn fs() -> MmFs {
        MmFs::new(Machine::boot(MachineConfig::default()).unwrap(), 0, 0)
    }

    fn open(fs: &MmFs, path: &str, flags: i32) -> Result<u64, Errno> {
        let index = fs.tree.find(path).ok_or(Errno::ENOENT)?;
        let handle = fs.do_open(INodeNo(Node::Static(index).ino()), OpenFlags(flags))?;
        Ok(fs.handles.lock().insert(handle))
    }

    fn read_all(fs: &MmFs, fh: u64) -> String {
        let mut out = Vec::new();
        loop {
            let chunk = fs.do_read(FileHandle(fh), out.len() as u64, 7).unwrap();
            if chunk.is_empty() {
                break;
            }
            out.extend(chunk);
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn snapshot_is_taken_at_open() {
        let fs = fs();
        let before = open(&fs, "buddyinfo", libc::O_RDONLY).unwrap();
        let ctl = open(&fs, "ctl", libc::O_WRONLY).unwrap();
        fs.do_write(FileHandle(ctl), 0, b"alloc_pages 4 count=3 tag=t\n", None)
            .unwrap();
        let after = open(&fs, "buddyinfo", libc::O_RDONLY).unwrap();
        let (a, b) = (read_all(&fs, before), read_all(&fs, after));
        assert_ne!(a, b);
        assert_eq!(
            a,
            crate::procfs::buddyinfo(&Kernel::boot(MachineConfig::default()).unwrap())
        );
        // Reads past the end return nothing.
        assert!(
            fs.do_read(FileHandle(before), 1 << 40, 10)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn ctl_errors_and_partial_lines() {
        let fs = fs();
        let ctl = open(&fs, "ctl", libc::O_WRONLY).unwrap();
        let fh = FileHandle(ctl);
        assert_eq!(fs.do_write(fh, 0, b"bogus\n", None), Err(Errno::EINVAL));
        assert_eq!(
            fs.do_write(fh, 0, b"free_pages tag=none\n", None),
            Err(Errno::ENOENT)
        );
        assert_eq!(
            fs.do_write(fh, 0, b"alloc_pages 10 count=100000\n", None),
            Err(Errno::ENOMEM)
        );
        assert_eq!(
            fs.do_write(fh, 0, b"alloc_pages 0 tag=p", Some(LockOwner(1))),
            Ok(19)
        );
        // Another process closing an inherited descriptor does not run it.
        assert_eq!(fs.finish_ctl(fh, Some(LockOwner(2))), Ok(()));
        assert!(!fs.kernel.lock().tags.pages.contains("p"));
        assert_eq!(fs.finish_ctl(fh, None), Ok(()));
        assert!(fs.kernel.lock().tags.pages.contains("p"));
        assert_eq!(fs.do_write(fh, 0, b"\xff\xfe\n", None), Err(Errno::EINVAL));
        assert!(fs.kernel.lock().dmesg.last().unwrap().contains("not UTF-8"));
        fs.kernel.lock().check_invariants().unwrap();
    }

    #[test]
    fn modes_are_enforced_by_the_adapter() {
        let fs = fs();
        assert_eq!(open(&fs, "buddyinfo", libc::O_WRONLY), Err(Errno::EACCES));
        assert_eq!(open(&fs, "buddyinfo", libc::O_RDWR), Err(Errno::EACCES));
        assert_eq!(open(&fs, "ctl", libc::O_RDONLY), Err(Errno::EACCES));
        assert_eq!(open(&fs, "version", libc::O_WRONLY), Err(Errno::EACCES));
        assert_eq!(
            open(&fs, "sys/kernel/ns_last_pid", libc::O_WRONLY),
            Err(Errno::EACCES)
        );
        let sw = open(&fs, "sys/vm/swappiness", libc::O_RDWR).unwrap();
        assert_eq!(read_all(&fs, sw), "60\n");
        assert_eq!(
            fs.do_write(FileHandle(sw), 0, b"300\n", None),
            Err(Errno::EINVAL)
        );
        assert_eq!(fs.do_write(FileHandle(sw), 0, b"100\n", None), Ok(4));
        assert_eq!(
            fs.kernel.lock().sysctl_read("vm/swappiness").unwrap(),
            "100\n"
        );
        let root = INodeNo(1);
        let buddy = INodeNo(Node::Static(fs.tree.find("buddyinfo").unwrap()).ino());
        let ctl = INodeNo(Node::Static(fs.tree.find("ctl").unwrap()).ino());
        assert_eq!(
            fs.do_setattr(buddy, None, None, None, Some(0)).err(),
            Some(Errno::EACCES)
        );
        assert!(fs.do_setattr(ctl, None, None, None, Some(0)).is_ok());
        assert_eq!(
            fs.do_setattr(ctl, Some(0o777), None, None, None).err(),
            Some(Errno::EPERM)
        );
        assert_eq!(
            fs.do_setattr(root, None, Some(5), None, None).err(),
            Some(Errno::EPERM)
        );
    }

    #[test]
    fn lookup_and_readdir() {
        let fs = fs();
        let root = INodeNo::ROOT;
        let names: Vec<String> = fs
            .dir_entries(root)
            .unwrap()
            .into_iter()
            .map(|e| e.3)
            .collect();
        for &(name, _, _) in crate::procfs::GLOBAL_FILES {
            assert!(names.iter().any(|n| n == name), "{name}");
        }
        for name in ["ctl", "version", "sys", ".", ".."] {
            assert!(names.iter().any(|n| n == name), "{name}");
        }
        assert_eq!(
            fs.do_lookup(root, OsStr::new("nope")).err(),
            Some(Errno::ENOENT)
        );
        assert_eq!(
            fs.do_lookup(root, OsStr::new("999")).err(),
            Some(Errno::ENOENT)
        );
        let sys = fs.do_lookup(root, OsStr::new("sys")).unwrap();
        assert_eq!(sys.kind, FileType::Directory);
        let vm = fs.do_lookup(sys.ino, OsStr::new("vm")).unwrap();
        assert_eq!(
            fs.do_lookup(vm.ino, OsStr::new("swappiness")).unwrap().perm,
            0o644
        );
        let buddy = fs.do_lookup(root, OsStr::new("buddyinfo")).unwrap();
        assert_eq!(
            fs.do_lookup(buddy.ino, OsStr::new("x")).err(),
            Some(Errno::ENOTDIR)
        );
        assert_eq!(fs.dir_entries(buddy.ino).err(), Some(Errno::ENOTDIR));
        assert_eq!(
            fs.node_attr(Node::PidDir(Pid(12345))).err(),
            Some(Errno::ENOENT)
        );
    }

    #[test]
    fn version_is_the_banner() {
        let fs = fs();
        let v = fs.version.clone();
        let text = std::str::from_utf8(&v).unwrap();
        assert!(text.starts_with("Linux version 6.18.44-mmfs"));
        assert!(text.contains("x86_64"));
        assert_eq!(text.lines().count(), 1);
    }
}
