//! The FUSE adapter: serves the simulated kernel as a tree of files that
//! behave like procfs.
//!
//! - Generated files behave like seq_files: rendered by the first read at
//!   offset 0 and afresh by every read at offset 0; later reads continue
//!   that pass (one snapshot per pass up to [`SNAPSHOT_MAX`]; maps/smaps
//!   beyond it are rendered record by record through a bounded window).
//!   Opened with `FOPEN_DIRECT_IO` so the page cache never shows stale
//!   text, they report size 0 and are served by offset.
//! - Control files (`ctl`, `PID/ctl`) are transaction files: they assemble
//!   lines per handle ([`linebuf::LineBuffer`]), run them through
//!   `Machine::execute_line`, and a read on the same handle streams back
//!   what they created (one pid a line).
//! - A handle of a process's file is bound to that process (pid and spawn
//!   sequence number): once it has exited, every operation is ESRCH.
//! - One `parking_lot::RwLock<Machine>`: renders and look-ups take it
//!   shared (several worker threads serve readers at once), everything
//!   that changes the machine takes it exclusively; the reply goes out
//!   after the lock is released. Open handles live in a separate table.
//! - Entries and attributes that never change (the global files, `sys/`,
//!   the static directories) are cached by the kernel for [`STATIC_TTL`],
//!   so `cat buddyinfo` costs open, read and release only. Process
//!   directories are cached for [`PID_TTL`]: when a process the kernel may
//!   have cached exits (or its pid is taken by another), its entry and
//!   inode are invalidated by the invalidation thread ([`inval`]) before
//!   the request that ended it is answered, so no stale directory is ever
//!   served. `fs/` and `block/` keep TTL 0: their attributes change.
//!
//! - `fs/` is the simulated root file system (vfs.rs): regular files and
//!   directories, read and written through the simulated page cache.
//!
//! Nothing here knows about memory management: text in, text out.

mod inval;
pub mod linebuf;
pub mod mount;
mod tracepipe;
pub mod tree;
mod vfs;
pub mod wallclock;

use std::collections::{BTreeMap, VecDeque};
use std::ffi::OsStr;
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use fuser::{
    AccessFlags, BsdFileFlags, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags,
    Generation, INodeNo, LockOwner, OpenAccMode, OpenFlags, PollEvents, PollFlags, PollNotifier,
    RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry,
    ReplyOpen, ReplyPoll, ReplyStatfs, ReplyWrite, ReplyXattr, Request, TimeOrNow, WriteFlags,
};
use parking_lot::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::ctl::{Machine, PidWrite, Scope};
use crate::mm::Kernel;
use crate::mm::error::MmError;
use crate::mm::namei::{FileKind, NAME_MAX, ROOT_INO};
use crate::mm::types::Pid;
use crate::procfs::diskstats::{DiskRow, disk_rows, sysfs_dev, sysfs_size, sysfs_stat};
use crate::procfs::kpage::{self, KpageFile};
use crate::procfs::pid::{PidFile, render_maps_records, render_pid};
use crate::procfs::sysfs::{CpuFile, render_cpu};
use crate::procfs::trace::TraceFile;
use crate::procfs::{GlobalFile, render_global};
use linebuf::LineBuffer;
use tree::{BLOCK_FILES, BlockFile, DevT, EntryKind, Node, PidEntry, StaticKind, StaticTree};

/// Extended attribute on the mount's root that holds the daemon's pid, so
/// `mmfs umount` can wait for the daemon to be gone.
pub const PID_XATTR: &str = "user.mmfs.pid";

/// Extended attribute on the mount's root that changes whenever the set of
/// process directories does (processes forked since boot and the number
/// alive), so `mmfs exec`'s watcher lists 10^4 of them only when there is
/// something new to see.
pub const PIDS_XATTR: &str = "user.mmfs.pids";

/// Attributes and entries that change (`fs/`, block devices) are never
/// cached: every stat sees the live tree.
const TTL: Duration = Duration::ZERO;

/// Entries and attributes that never change while mounted (the static
/// tree: global files, `sys/`, `devices/`, the control file).
pub const STATIC_TTL: Duration = Duration::from_secs(3600);

/// Process directories and their files: their attributes never change
/// while the process lives, and an exit is invalidated explicitly.
pub const PID_TTL: Duration = Duration::from_secs(60);

/// Offset cookies of process directories in a root readdir: above any static
/// entry's index, ordered by pid, so a listing that spans several readdir
/// calls neither repeats nor skips a pid when others come and go.
const PID_DIR_OFFSET: u64 = 1 << 32;

/// A whole pass of a generated file up to this size is rendered at once
/// (one consistent snapshot per pass); larger files (maps/smaps of a big
/// process) keep a window of at most about this size per handle.
const SNAPSHOT_MAX: usize = 1 << 20;

/// Records rendered per step once a reader moves past the window.
const WINDOW_STEP: usize = 64 << 10;

/// The spawn sequence number standing for a kernel thread.
const KTHREAD_SEQ: u64 = u64::MAX;

/// The process a handle was opened on: its pid and its spawn sequence
/// number, so a successor that reuses the pid is not mistaken for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ProcId {
    pid: Pid,
    seq: u64,
}

impl ProcId {
    /// The live process `pid`, if any.
    fn of(kernel: &Kernel, pid: Pid) -> Option<ProcId> {
        if kernel.kthreads.get(pid).is_some() {
            // Kernel threads never exit: one identity for ever.
            return Some(ProcId {
                pid,
                seq: KTHREAD_SEQ,
            });
        }
        kernel.procs.by_pid(pid).map(|p| ProcId { pid, seq: p.seq })
    }

    /// ESRCH unless the process the handle was opened on still exists.
    fn check(self, kernel: &Kernel) -> Result<(), Errno> {
        if self.seq == KTHREAD_SEQ && kernel.kthreads.get(self.pid).is_some() {
            return Ok(());
        }
        match kernel.procs.by_pid(self.pid) {
            Some(p) if p.seq == self.seq => Ok(()),
            _ => Err(Errno::ESRCH),
        }
    }
}

/// What a generated file is rendered from.
#[derive(Clone, Copy, Debug)]
enum Source {
    /// A system-wide file.
    Global(GlobalFile),
    /// The constant banner.
    Version,
    /// A path under `sys/` (`vm/swappiness`); writable ones take writes.
    Sysctl(&'static str),
    /// A file of a process directory (`comm` and `oom_score_adj` take writes).
    Pid(ProcId, PidFile),
    /// A file under `devices/system/cpu/`.
    Cpu(u64, CpuFile),
    /// A file of a block device's directory.
    Block(DevT, BlockFile),
    /// A file of `tracing/` (not trace_pipe).
    Trace(TraceFile),
}

impl Source {
    /// maps and smaps are rendered record by record (one VMA a record).
    fn records(self) -> Option<(ProcId, bool)> {
        match self {
            Source::Pid(proc, PidFile::Maps) => Some((proc, false)),
            Source::Pid(proc, PidFile::Smaps) => Some((proc, true)),
            _ => None,
        }
    }

    /// Rendered through a bounded window: maps, smaps, and `trace` (one
    /// event a record; a full buffer is hundreds of MB of text).
    fn windowed(self) -> bool {
        self.records().is_some() || matches!(self, Source::Trace(TraceFile::Trace))
    }
}

/// The read state of a generated file's handle (Linux's `struct seq_file`):
/// a window of rendered text at a file offset. A read at offset 0 renders
/// a new pass; later reads continue it.
#[derive(Debug, Default)]
struct SeqFile {
    /// True once a pass has been rendered.
    started: bool,
    /// File offset of `buf[0]`.
    start: u64,
    /// The rendered window: the whole text when it fits [`SNAPSHOT_MAX`].
    buf: Vec<u8>,
    /// Where the records after `buf` begin (a VMA address, or the number
    /// of the next trace entry), `None` when `buf` reaches the end of the
    /// file.
    next: Option<u64>,
}

/// What an open file handle holds. Cheap to clone (the mutable parts are
/// shared), so a request copies it out and does not hold the table.
#[derive(Clone, Debug)]
enum Handle {
    /// A generated file or a tunable, read like a seq_file.
    File {
        /// What it renders.
        source: Source,
        /// The current pass.
        seq: Arc<Mutex<SeqFile>>,
    },
    /// A control file: the partial line of this handle and the results of
    /// what it wrote.
    Ctl {
        /// Which control file.
        scope: Scope,
        /// For `PID/ctl`, the process it was opened on.
        owner: Option<ProcId>,
        /// Bytes that have not formed a line yet, who wrote them, results.
        buffer: Arc<Mutex<CtlBuffer>>,
    },
    /// `PID/mem`: reads and writes at offset = virtual address.
    Mem(ProcId),
    /// `PID/pagemap`, read at offsets.
    Pagemap(ProcId),
    /// `kpagecount` / `kpageflags`, read at offsets.
    Kpage(KpageFile),
    /// A file of `fs/`, read and written through the simulated page cache.
    Vfs(vfs::VfsFile),
    /// An open directory of `fs/`: its entries as they were at the first
    /// readdir (or the last rewind).
    Dir(Arc<Mutex<Option<Arc<Vec<vfs::DirEntry>>>>>),
    /// `tracing/trace_pipe`: consuming reads; the text of events taken
    /// and not read yet.
    TracePipe(tracepipe::Pending),
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
    /// What reads on the descriptor return: one line per command written
    /// through it that created something (the new pid), not yet read.
    results: VecDeque<u8>,
}

impl CtlBuffer {
    /// Run the complete lines of `data` (or, with `None`, the partial line)
    /// and queue what they created.
    fn run(&mut self, kernel: &mut Machine, scope: Scope, data: Option<&[u8]>) -> Result<(), i32> {
        let CtlBuffer { lines, results, .. } = self;
        let mut run = |line: &[u8]| match kernel.execute_line(scope, line) {
            Ok(created) => {
                if let Some(pid) = created {
                    results.extend(format!("{pid}\n").bytes());
                }
                Ok(())
            }
            Err(e) => Err(e.errno()),
        };
        match data {
            Some(data) => lines.feed(data, &mut run),
            None => lines.finish(&mut run),
        }
    }
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

/// The filesystem: the simulated kernel behind its lock, the tree and the
/// open handles.
pub struct MmFs {
    kernel: Arc<RwLock<Machine>>,
    handles: Mutex<Handles>,
    tree: StaticTree,
    /// Owner of every file: the user who mounted.
    uid: u32,
    gid: u32,
    /// Timestamp shown on every file (when the mount was made).
    time: SystemTime,
    /// The constant `version` text.
    version: Arc<[u8]>,
    /// `-o ro`: every write is EROFS.
    read_only: bool,
    /// `--clock wall`: replies to writes wait for real time.
    wall: Option<wallclock::WallClock>,
    /// Generations of the inodes created under `fs/`.
    vfs_gens: Mutex<vfs::Generations>,
    /// Process directories the kernel may cache, and the invalidations
    /// owed when they go.
    inval: inval::PidCache,
    /// Reads and polls of trace_pipe waiting for events.
    pipes: Arc<tracepipe::TracePipes>,
}

/// The machine under its exclusive lock. Dropping it notes the processes
/// that exited meanwhile, so the reply waits for their invalidation.
struct MachineMut<'a> {
    fs: &'a MmFs,
    guard: RwLockWriteGuard<'a, Machine>,
}

impl std::ops::Deref for MachineMut<'_> {
    type Target = Machine;
    fn deref(&self) -> &Machine {
        &self.guard
    }
}

impl std::ops::DerefMut for MachineMut<'_> {
    fn deref_mut(&mut self) -> &mut Machine {
        &mut self.guard
    }
}

impl Drop for MachineMut<'_> {
    fn drop(&mut self) {
        self.fs
            .inval
            .check_exits(&self.guard, |k, pid| ProcId::of(k, pid).map(|p| p.seq));
        self.fs.pipes.changed(&self.guard);
    }
}

/// Map a kernel error to the errno a file operation returns. A process that
/// is gone makes its files vanish (ENOENT), as in /proc.
fn fs_errno(err: &MmError) -> Errno {
    match err {
        MmError::NoProcess(_) => Errno::ENOENT,
        other => Errno::from_i32(other.errno()),
    }
}

/// The process entry of a node (in `PID/` or `PID/task/PID/`).
fn node_entry(node: Node) -> Result<(Pid, PidEntry), Errno> {
    node.pid_entry().ok_or(Errno::ENOENT)
}

/// Give directory entries their readdir offset cookies: 1, 2, 3, …
/// The root's entry for a process directory: its cookie orders it by pid.
fn pid_dir_entry(pid: Pid) -> (u64, u64, FileType, String) {
    (
        PID_DIR_OFFSET + u64::from(pid.0),
        Node::PidDir(pid).ino(),
        FileType::Directory,
        pid.to_string(),
    )
}

fn numbered(entries: Vec<(u64, FileType, String)>) -> Vec<(u64, u64, FileType, String)> {
    entries
        .into_iter()
        .enumerate()
        .map(|(i, (ino, kind, name))| (i as u64 + 1, ino, kind, name))
        .collect()
}

/// True when an open asks for read access.
fn mode_reads(flags: OpenFlags) -> bool {
    flags.acc_mode() != OpenAccMode::O_WRONLY
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
    /// Put the machine on the wall clock (`--clock wall`): a ticker
    /// thread, and writes paced to real time.
    pub fn start_wall_clock(&mut self) -> std::io::Result<()> {
        self.wall = Some(wallclock::WallClock::start(Arc::clone(&self.kernel))?);
        Ok(())
    }

    pub fn new(kernel: Machine, uid: u32, gid: u32) -> MmFs {
        let version: Arc<[u8]> = crate::procfs::version::version(&kernel).into_bytes().into();
        MmFs {
            kernel: Arc::new(RwLock::new(kernel)),
            handles: Mutex::new(Handles::default()),
            tree: StaticTree::build(),
            uid,
            gid,
            time: SystemTime::now(),
            version,
            read_only: false,
            wall: None,
            vfs_gens: Mutex::default(),
            inval: inval::PidCache::default(),
            pipes: Arc::default(),
        }
    }

    /// The handle that starts the invalidation thread once the session
    /// (and so its notifier) exists.
    pub fn invalidator(&self) -> inval::Invalidator {
        self.inval.invalidator()
    }

    /// The machine, shared: for renders and look-ups.
    fn machine(&self) -> RwLockReadGuard<'_, Machine> {
        self.kernel.read()
    }

    /// The machine, exclusively: for anything that may change it. When
    /// the guard goes, processes that exited meanwhile are noted for
    /// invalidation.
    fn machine_mut(&self) -> MachineMut<'_> {
        MachineMut {
            fs: self,
            guard: self.kernel.write(),
        }
    }

    /// `-o ro`: refuse every write with EROFS (the mount is also made
    /// MS_RDONLY, so the kernel refuses most before they arrive).
    pub fn set_read_only(&mut self, read_only: bool) {
        self.read_only = read_only;
    }

    /// The machine behind the mount (for in-process callers and tests).
    pub fn kernel(&self) -> &RwLock<Machine> {
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
        let kernel = self.machine();
        kernel.procs.contains(pid) || kernel.kthreads.get(pid).is_some()
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
                        // The root also holds fs/.
                        let fs_dir = u32::from(index == 0);
                        let nlink = 2 + self.tree.subdirs(index) as u32 + fs_dir;
                        self.attr(node.ino(), FileType::Directory, n.mode, nlink)
                    }
                    StaticKind::BlockRoot => {
                        let disks = self.disks().iter().filter(|r| r.whole).count();
                        self.attr(node.ino(), FileType::Directory, n.mode, 2 + disks as u32)
                    }
                    _ => self.attr(node.ino(), FileType::RegularFile, n.mode, 1),
                })
            }
            Node::PidDir(pid) => {
                if !self.pid_alive(pid) {
                    return Err(Errno::ENOENT);
                }
                // ., .., task, fd, fdinfo.
                Ok(self.attr(node.ino(), FileType::Directory, tree::DIR_MODE, 5))
            }
            Node::TaskDir(pid) => {
                if !self.pid_alive(pid) {
                    return Err(Errno::ENOENT);
                }
                Ok(self.attr(node.ino(), FileType::Directory, tree::DIR_MODE, 4))
            }
            Node::PidEntry(pid, entry) | Node::TaskEntry(pid, entry) => {
                let (_, mode, _) = tree::pid_entry_info(entry).ok_or(Errno::ENOENT)?;
                if !self.pid_alive(pid) {
                    return Err(Errno::ENOENT);
                }
                Ok(match entry.kind() {
                    EntryKind::File => self.attr(node.ino(), FileType::RegularFile, mode, 1),
                    EntryKind::Link => self.attr(node.ino(), FileType::Symlink, mode, 1),
                    EntryKind::Dir => {
                        let nlink = if entry == PidEntry::Task { 3 } else { 2 };
                        self.attr(node.ino(), FileType::Directory, mode, nlink)
                    }
                })
            }
            Node::BlockDir(dev) => {
                self.disk(dev).ok_or(Errno::ENOENT)?;
                Ok(self.attr(node.ino(), FileType::Directory, tree::DIR_MODE, 2))
            }
            Node::BlockEntry(dev, _) => {
                self.disk(dev).ok_or(Errno::ENOENT)?;
                Ok(self.attr(node.ino(), FileType::RegularFile, 0o444, 1))
            }
            Node::Vfs(ino) => self.vfs_attr(ino),
        }
    }

    /// The simulated block devices, as /proc/partitions lists them.
    fn disks(&self) -> Vec<DiskRow> {
        disk_rows(&self.machine())
    }

    /// The whole disk with this device number.
    fn disk(&self, dev: DevT) -> Option<DiskRow> {
        self.disks()
            .into_iter()
            .find(|r| r.whole && DevT::new(r.major, r.minor) == Some(dev))
    }

    /// How long the kernel may keep a node's entry and attributes.
    fn ttl(&self, node: Node) -> Duration {
        match node {
            // The root's attributes are how `stat MNT` tells a dead or
            // stuck daemon (ENOTCONN, a hang): never cached.
            Node::Static(0) => TTL,
            Node::Static(index) => match self.tree.node(index).map(|n| n.kind) {
                // Its disks come and go: nlink changes.
                Some(StaticKind::BlockRoot) | None => TTL,
                Some(_) => STATIC_TTL,
            },
            Node::PidDir(_) | Node::TaskDir(_) | Node::PidEntry(..) | Node::TaskEntry(..) => {
                PID_TTL
            }
            Node::BlockDir(_) | Node::BlockEntry(..) | Node::Vfs(_) => TTL,
        }
    }

    /// True when `name` can never be in the directory `parent`: a process
    /// directory (or its task) holds the same names whatever the process,
    /// so a name missing from it stays missing for as long as the kernel
    /// may keep the directory, a pid reused or not.
    fn never_in(&self, parent: INodeNo, name: &OsStr) -> bool {
        let known = name.to_str().and_then(tree::pid_entry_by_name);
        match self.decode(parent) {
            Ok(Node::PidDir(_)) => known.is_none(),
            Ok(Node::TaskDir(_)) => known.is_none_or(|(entry, _)| !entry.in_task()),
            _ => false,
        }
    }

    /// The TTL of the node numbered `ino`.
    fn ttl_of(&self, ino: INodeNo) -> Duration {
        self.decode(ino).map_or(TTL, |node| self.ttl(node))
    }

    /// A process directory found by a look-up: its attributes, noted as
    /// cached under the same lock that saw it alive.
    fn lookup_pid_dir(&self, pid: Pid) -> Result<FileAttr, Errno> {
        let kernel = self.machine();
        let proc = ProcId::of(&kernel, pid).ok_or(Errno::ENOENT)?;
        self.inval.note_lookup(pid, proc.seq);
        drop(kernel);
        Ok(self.attr(
            Node::PidDir(pid).ino(),
            FileType::Directory,
            tree::DIR_MODE,
            5,
        ))
    }

    fn decode(&self, ino: INodeNo) -> Result<Node, Errno> {
        tree::decode(&self.tree, ino.0).ok_or(Errno::ENOENT)
    }

    /// `lookup` with the generation of the node (0 outside `fs/`).
    fn do_lookup_gen(&self, parent: INodeNo, name: &OsStr) -> Result<(FileAttr, u64), Errno> {
        match self.decode(parent)? {
            Node::Vfs(dir) => self.vfs_lookup(dir, name),
            _ => self.do_lookup(parent, name).map(|attr| (attr, 0)),
        }
    }

    fn do_lookup(&self, parent: INodeNo, name: &OsStr) -> Result<FileAttr, Errno> {
        if name == tree::VFS_DIR && self.decode(parent)? == Node::Static(0) {
            return self.node_attr(Node::Vfs(ROOT_INO));
        }
        if let Node::Vfs(dir) = self.decode(parent)? {
            return self.vfs_lookup(dir, name).map(|(attr, _)| attr);
        }
        let name = name.to_str().ok_or(Errno::ENOENT)?;
        match self.decode(parent)? {
            Node::Static(index) => {
                let kind = self.static_node(index)?.kind;
                if kind == StaticKind::BlockRoot {
                    let row = self.disks().into_iter().find(|r| r.whole && r.name == name);
                    let dev = row
                        .and_then(|r| DevT::new(r.major, r.minor))
                        .ok_or(Errno::ENOENT)?;
                    return self.node_attr(Node::BlockDir(dev));
                }
                if kind != StaticKind::Dir {
                    return Err(Errno::ENOTDIR);
                }
                if let Some(child) = self.tree.child(index, name) {
                    return self.node_attr(Node::Static(child));
                }
                match tree::parse_pid_name(name) {
                    Some(pid) if index == 0 => self.lookup_pid_dir(pid),
                    _ => Err(Errno::ENOENT),
                }
            }
            Node::PidDir(pid) => {
                let (entry, _) = tree::pid_entry_by_name(name).ok_or(Errno::ENOENT)?;
                self.node_attr(Node::PidEntry(pid, entry))
            }
            Node::TaskDir(pid) => {
                let (entry, _) = tree::pid_entry_by_name(name).ok_or(Errno::ENOENT)?;
                if !entry.in_task() {
                    return Err(Errno::ENOENT);
                }
                self.node_attr(Node::TaskEntry(pid, entry))
            }
            Node::PidEntry(pid, PidEntry::Task) => {
                // The one thread: TID = PID.
                if tree::parse_pid_name(name) != Some(pid) {
                    return Err(Errno::ENOENT);
                }
                self.node_attr(Node::TaskDir(pid))
            }
            node @ (Node::PidEntry(..) | Node::TaskEntry(..)) => {
                // fd/ and fdinfo/ are empty; files and links hold nothing.
                self.node_attr(node)?;
                match node.pid_entry().map(|(_, e)| e.kind()) {
                    Some(EntryKind::Dir) => Err(Errno::ENOENT),
                    _ => Err(Errno::ENOTDIR),
                }
            }
            Node::BlockDir(dev) => {
                self.disk(dev).ok_or(Errno::ENOENT)?;
                let i = BLOCK_FILES
                    .iter()
                    .position(|&(n, _)| n == name)
                    .ok_or(Errno::ENOENT)?;
                self.node_attr(Node::BlockEntry(dev, i))
            }
            Node::BlockEntry(..) => Err(Errno::ENOTDIR),
            // Answered above.
            Node::Vfs(dir) => self.vfs_lookup(dir, OsStr::new(name)).map(|(attr, _)| attr),
        }
    }

    /// Every entry of a directory with its readdir offset cookie, in order.
    fn dir_entries(&self, ino: INodeNo) -> Result<Vec<(u64, u64, FileType, String)>, Errno> {
        self.entries_of(ino, true)
    }

    /// [`Self::dir_entries`]; the root's process directories only when
    /// `with_pids`.
    fn entries_of(
        &self,
        ino: INodeNo,
        with_pids: bool,
    ) -> Result<Vec<(u64, u64, FileType, String)>, Errno> {
        let node = self.decode(ino)?;
        let mut out = Vec::new();
        match node {
            Node::Static(index) => {
                let dir = self.static_node(index)?;
                if !dir.kind.is_dir() {
                    return Err(Errno::ENOTDIR);
                }
                let parent = Node::Static(dir.parent).ino();
                out.push((node.ino(), FileType::Directory, ".".to_string()));
                out.push((parent, FileType::Directory, "..".to_string()));
                for &child in &dir.children {
                    let c = self.static_node(child)?;
                    let kind = if c.kind.is_dir() {
                        FileType::Directory
                    } else {
                        FileType::RegularFile
                    };
                    out.push((Node::Static(child).ino(), kind, c.name.clone()));
                }
                if index == 0 {
                    let ino = Node::Vfs(ROOT_INO).ino();
                    out.push((ino, FileType::Directory, tree::VFS_DIR.to_string()));
                }
                if dir.kind == StaticKind::BlockRoot {
                    for row in self.disks().into_iter().filter(|r| r.whole) {
                        if let Some(dev) = DevT::new(row.major, row.minor) {
                            let ino = Node::BlockDir(dev).ino();
                            out.push((ino, FileType::Directory, row.name));
                        }
                    }
                }
                let mut entries: Vec<(u64, u64, FileType, String)> = out
                    .into_iter()
                    .enumerate()
                    .map(|(i, (ino, kind, name))| (i as u64 + 1, ino, kind, name))
                    .collect();
                if index == 0 && with_pids {
                    let pids = self.machine().pids();
                    for pid in pids {
                        entries.push(pid_dir_entry(pid));
                    }
                }
                Ok(entries)
            }
            Node::PidDir(pid) | Node::TaskDir(pid) => {
                if !self.pid_alive(pid) {
                    return Err(Errno::ENOENT);
                }
                let (parent, entries): (Node, Vec<_>) = match node {
                    Node::PidDir(_) => (Node::Static(0), tree::pid_entries().collect()),
                    _ => (
                        Node::PidEntry(pid, PidEntry::Task),
                        tree::task_entries().collect(),
                    ),
                };
                out.push((node.ino(), FileType::Directory, ".".to_string()));
                out.push((parent.ino(), FileType::Directory, "..".to_string()));
                for (name, entry, _) in entries {
                    let child = match node {
                        Node::PidDir(_) => Node::PidEntry(pid, entry),
                        _ => Node::TaskEntry(pid, entry),
                    };
                    let kind = match entry.kind() {
                        EntryKind::File => FileType::RegularFile,
                        EntryKind::Dir => FileType::Directory,
                        EntryKind::Link => FileType::Symlink,
                    };
                    out.push((child.ino(), kind, name.to_string()));
                }
                Ok(numbered(out))
            }
            Node::PidEntry(pid, entry) | Node::TaskEntry(pid, entry) => {
                if entry.kind() != EntryKind::Dir {
                    return Err(Errno::ENOTDIR);
                }
                if !self.pid_alive(pid) {
                    return Err(Errno::ENOENT);
                }
                let parent = match node {
                    Node::PidEntry(..) => Node::PidDir(pid),
                    _ => Node::TaskDir(pid),
                };
                out.push((node.ino(), FileType::Directory, ".".to_string()));
                out.push((parent.ino(), FileType::Directory, "..".to_string()));
                if entry == PidEntry::Task {
                    let tid = Node::TaskDir(pid).ino();
                    out.push((tid, FileType::Directory, pid.to_string()));
                }
                Ok(numbered(out))
            }
            Node::BlockDir(dev) => {
                self.disk(dev).ok_or(Errno::ENOENT)?;
                let parent = self.tree.find("block").map_or(1, |i| Node::Static(i).ino());
                out.push((node.ino(), FileType::Directory, ".".to_string()));
                out.push((parent, FileType::Directory, "..".to_string()));
                for (i, &(name, _)) in BLOCK_FILES.iter().enumerate() {
                    let ino = Node::BlockEntry(dev, i).ino();
                    out.push((ino, FileType::RegularFile, name.to_string()));
                }
                Ok(numbered(out))
            }
            Node::BlockEntry(..) => Err(Errno::ENOTDIR),
            Node::Vfs(dir) => self.vfs_dir_entries(dir),
        }
    }

    /// Open a node: the handle and the open flags of the reply.
    fn do_open(&self, ino: INodeNo, flags: OpenFlags) -> Result<(Handle, FopenFlags), Errno> {
        let mode = flags.acc_mode();
        let writes = mode != OpenAccMode::O_RDONLY;
        if writes && self.read_only {
            return Err(Errno::EROFS);
        }
        // Writes to generated files take effect at once, so a close has
        // nothing to flush: FOPEN_NOFLUSH spares it the round trip.
        let generated = FopenFlags::FOPEN_DIRECT_IO | FopenFlags::FOPEN_NOFLUSH;
        let file = |source| {
            let seq = Arc::default();
            Ok((Handle::File { source, seq }, generated))
        };
        // Control files are transaction files: what a read returns is a
        // stream, not a position in a text.
        let ctl = |scope, owner| {
            let buffer = Arc::default();
            let flags = FopenFlags::FOPEN_DIRECT_IO
                | FopenFlags::FOPEN_STREAM
                | FopenFlags::FOPEN_NONSEEKABLE;
            Ok((
                Handle::Ctl {
                    scope,
                    owner,
                    buffer,
                },
                flags,
            ))
        };
        let proc_of = |pid| ProcId::of(&self.machine(), pid).ok_or(Errno::ENOENT);
        match self.decode(ino)? {
            Node::Static(index) => match self.static_node(index)?.kind {
                StaticKind::Dir | StaticKind::BlockRoot => Err(Errno::EISDIR),
                StaticKind::Cpu { cpu, file: which } => {
                    if writes {
                        // Taking a simulated CPU offline is not modelled.
                        return Err(Errno::EACCES);
                    }
                    file(Source::Cpu(cpu, which))
                }
                StaticKind::Global(global) => {
                    if writes {
                        return Err(Errno::EACCES);
                    }
                    file(Source::Global(global))
                }
                StaticKind::Version => {
                    if writes {
                        return Err(Errno::EACCES);
                    }
                    file(Source::Version)
                }
                StaticKind::Ctl => ctl(Scope::System, None),
                StaticKind::Trace(which) => {
                    if writes && !which.writable() {
                        return Err(Errno::EACCES);
                    }
                    if writes && flags.0 & libc::O_TRUNC != 0 {
                        self.machine_mut().truncate_trace(which);
                    }
                    if which == TraceFile::TracePipe {
                        // A stream: what was read is gone.
                        let flags = FopenFlags::FOPEN_DIRECT_IO
                            | FopenFlags::FOPEN_STREAM
                            | FopenFlags::FOPEN_NONSEEKABLE;
                        return Ok((Handle::TracePipe(Arc::default()), flags));
                    }
                    file(Source::Trace(which))
                }
                StaticKind::Kpage(which) => {
                    if writes {
                        return Err(Errno::EACCES);
                    }
                    Ok((Handle::Kpage(which), generated))
                }
                StaticKind::Sysctl { path, writable } => {
                    if writes && !writable {
                        return Err(Errno::EACCES);
                    }
                    // Write-only tunables (drop_caches): procfs refuses
                    // reads even to root.
                    let mode = self.static_node(index)?.mode;
                    if mode_reads(flags) && mode & 0o444 == 0 {
                        return Err(Errno::EACCES);
                    }
                    file(Source::Sysctl(path))
                }
            },
            Node::PidDir(_) | Node::TaskDir(_) | Node::BlockDir(_) => Err(Errno::EISDIR),
            Node::Vfs(ino) => self.vfs_open(ino, flags),
            Node::BlockEntry(dev, i) => {
                if writes {
                    return Err(Errno::EACCES);
                }
                self.disk(dev).ok_or(Errno::ENOENT)?;
                let &(_, which) = BLOCK_FILES.get(i).ok_or(Errno::ENOENT)?;
                file(Source::Block(dev, which))
            }
            Node::PidEntry(..) | Node::TaskEntry(..) => {
                let (pid, entry) = node_entry(self.decode(ino)?)?;
                match entry {
                    PidEntry::Ctl => ctl(Scope::Process(pid), Some(proc_of(pid)?)),
                    PidEntry::Mem => Ok((Handle::Mem(proc_of(pid)?), generated)),
                    PidEntry::Pagemap => {
                        if writes {
                            return Err(Errno::EACCES);
                        }
                        Ok((Handle::Pagemap(proc_of(pid)?), generated))
                    }
                    PidEntry::File(i) => {
                        let (_, mode, pid_file) =
                            tree::pid_entry_info(PidEntry::File(i)).ok_or(Errno::ENOENT)?;
                        let pid_file = pid_file.ok_or(Errno::ENOENT)?;
                        if writes && mode & 0o200 == 0 {
                            return Err(Errno::EACCES);
                        }
                        file(Source::Pid(proc_of(pid)?, pid_file))
                    }
                    // The kernel opens what a link points to, never the link.
                    PidEntry::Link(_) => Err(Errno::ELOOP),
                    PidEntry::NoFiles(_) | PidEntry::Task => Err(Errno::EISDIR),
                }
            }
        }
    }

    fn handle(&self, fh: FileHandle) -> Result<Handle, Errno> {
        let handles = self.handles.lock();
        handles.open.get(&fh.0).cloned().ok_or(Errno::EBADF)
    }

    fn do_read(&self, fh: FileHandle, offset: u64, size: u32) -> Result<Vec<u8>, Errno> {
        match self.handle(fh)? {
            Handle::File { source, seq } => self.read_seq(source, &mut seq.lock(), offset, size),
            Handle::Mem(proc) => {
                let mut kernel = self.machine_mut();
                proc.check(&kernel)?;
                kernel
                    .read_mem(proc.pid, offset, size as usize)
                    .map_err(|e| Errno::from_i32(e.errno()))
            }
            // Like /proc/PID/pagemap, generated per read at the offset.
            Handle::Pagemap(proc) => {
                let kernel = self.machine();
                proc.check(&kernel)?;
                kernel
                    .read_pagemap(proc.pid, offset, size as usize)
                    .map_err(|e| Errno::from_i32(e.errno()))
            }
            // Like /proc/kpagecount and /proc/kpageflags: per read.
            Handle::Kpage(which) => {
                let kernel = self.machine();
                kpage::read(&kernel, which, offset, size as usize)
                    .map_err(|e| Errno::from_i32(e.errno()))
            }
            // A stream: the offset means nothing, what was read is gone.
            Handle::Ctl { owner, buffer, .. } => {
                let mut buffer = buffer.lock();
                if let Some(proc) = owner {
                    proc.check(&self.machine())?;
                }
                let n = buffer.results.len().min(size as usize);
                Ok(buffer.results.drain(..n).collect())
            }
            Handle::Vfs(file) => self.vfs_read(file, offset, size),
            Handle::Dir(_) => Err(Errno::EISDIR),
            // Served by `read`, which may park the reply.
            Handle::TracePipe(pending) => {
                Ok(tracepipe::take(&mut self.machine_mut(), &pending, size))
            }
        }
    }

    /// Render the text of a non-record source in one piece.
    fn render(&self, kernel: &Kernel, source: Source) -> Result<Vec<u8>, Errno> {
        Ok(match source {
            Source::Global(file) => render_global(kernel, file).into_bytes(),
            Source::Version => self.version.to_vec(),
            Source::Sysctl(path) => kernel
                .sysctl_read(path)
                .map_err(|e| fs_errno(&e))?
                .into_bytes(),
            Source::Pid(proc, file) => render_pid(kernel, proc.pid, file)
                .map_err(|e| Errno::from_i32(e.errno()))?
                .into_bytes(),
            Source::Cpu(cpu, file) => render_cpu(kernel, cpu, file).into_bytes(),
            // trace_marker is write-only, as in tracefs.
            Source::Trace(TraceFile::TraceMarker) => return Err(Errno::EINVAL),
            Source::Trace(file) => crate::procfs::trace::render(kernel, file).into_bytes(),
            Source::Block(dev, file) => {
                // A disk gone since the open: as sysfs, no such device.
                let row = disk_rows(kernel)
                    .into_iter()
                    .find(|r| r.whole && DevT::new(r.major, r.minor) == Some(dev))
                    .ok_or(Errno::ENODEV)?;
                match file {
                    BlockFile::Dev => sysfs_dev(&row),
                    BlockFile::Size => sysfs_size(&row),
                    BlockFile::Stat => sysfs_stat(&row),
                }
                .into_bytes()
            }
        })
    }

    /// seq_file's `seq_read`: a read at offset 0 (or before the window)
    /// starts a new pass; a pass renders the whole text when it fits
    /// [`SNAPSHOT_MAX`], else (maps/smaps) a window of records that moves
    /// forward, rendered from the kernel as the reader gets there.
    fn read_seq(
        &self,
        source: Source,
        seq: &mut SeqFile,
        offset: u64,
        size: u32,
    ) -> Result<Vec<u8>, Errno> {
        let kernel = self.machine();
        if let Source::Pid(proc, _) = source {
            proc.check(&kernel)?;
        }
        let records = |seq: &mut SeqFile, from: u64, min_len: usize| -> Result<(), Errno> {
            seq.buf.clear();
            if let Source::Trace(_) = source {
                let mut text = String::with_capacity(min_len + 4096);
                seq.next =
                    crate::procfs::trace::render_trace_window(&kernel, from, min_len, &mut text);
                seq.buf = text.into_bytes();
                return Ok(());
            }
            let (proc, detail) = source.records().ok_or(Errno::EIO)?;
            seq.next = render_maps_records(&kernel, proc.pid, detail, from, min_len, &mut seq.buf)
                .map_err(|e| Errno::from_i32(e.errno()))?;
            Ok(())
        };
        if offset == 0 || !seq.started || offset < seq.start {
            seq.started = true;
            seq.start = 0;
            if source.windowed() {
                records(seq, 0, SNAPSHOT_MAX)?;
                seq.buf.shrink_to_fit();
            } else {
                seq.buf = self.render(&kernel, source)?;
                seq.next = None;
            }
        }
        let size = size as usize;
        let mut out = Vec::with_capacity(size.min(seq.buf.len()));
        let mut pos = offset;
        while out.len() < size {
            let end = seq.start + seq.buf.len() as u64;
            if pos < end {
                let i = (pos - seq.start) as usize;
                let n = (size - out.len()).min(seq.buf.len() - i);
                out.extend_from_slice(&seq.buf[i..i + n]);
                pos += n as u64;
                continue;
            }
            let Some(from) = seq.next else { break };
            // The reader moved past the window: the next records.
            seq.start = end;
            records(seq, from, WINDOW_STEP)?;
            if seq.buf.is_empty() {
                break;
            }
        }
        Ok(out)
    }

    fn do_write(
        &self,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        owner: Option<LockOwner>,
    ) -> Result<u32, Errno> {
        let len = u32::try_from(data.len()).map_err(|_| Errno::EINVAL)?;
        match self.handle(fh)? {
            Handle::Ctl {
                scope,
                owner: proc,
                buffer,
            } => {
                let mut buffer = buffer.lock();
                let mut kernel = self.machine_mut();
                if let Some(proc) = proc {
                    proc.check(&kernel)?;
                }
                let result = buffer.run(&mut kernel, scope, Some(data));
                buffer.writer = if buffer.lines.has_partial() {
                    owner
                } else {
                    None
                };
                result.map_err(Errno::from_i32)?;
                Ok(len)
            }
            Handle::File {
                source: Source::Trace(file),
                ..
            } => {
                // trace_marker takes any bytes; a bad name in set_event is
                // refused by the parser with its dmesg line.
                let text = String::from_utf8_lossy(data);
                self.machine_mut()
                    .write_trace(file, &text)
                    .map_err(|e| Errno::from_i32(e.errno()))?;
                Ok(len)
            }
            Handle::File { source, .. } => {
                let text = std::str::from_utf8(data).map_err(|_| Errno::EINVAL)?;
                let mut kernel = self.machine_mut();
                let result = match source {
                    Source::Sysctl(path) => kernel.write_sysctl(path, text),
                    Source::Pid(proc, file) => {
                        // A write to an open file of a dead process: ESRCH.
                        proc.check(&kernel)?;
                        match file {
                            PidFile::Comm => kernel.write_pid_file(proc.pid, PidWrite::Comm, text),
                            PidFile::OomScoreAdj => {
                                kernel.write_pid_file(proc.pid, PidWrite::OomScoreAdj, text)
                            }
                            _ => return Err(Errno::EBADF),
                        }
                    }
                    Source::Global(_)
                    | Source::Version
                    | Source::Cpu(..)
                    | Source::Block(..)
                    | Source::Trace(_) => {
                        return Err(Errno::EBADF);
                    }
                };
                drop(kernel);
                result.map_err(|e| Errno::from_i32(e.errno()))?;
                Ok(len)
            }
            Handle::Mem(proc) => {
                let mut kernel = self.machine_mut();
                proc.check(&kernel)?;
                let written = kernel
                    .write_mem(proc.pid, offset, data)
                    .map_err(|e| Errno::from_i32(e.errno()))?;
                u32::try_from(written).map_err(|_| Errno::EIO)
            }
            Handle::Pagemap(_) | Handle::Kpage(_) | Handle::Dir(_) | Handle::TracePipe(_) => {
                Err(Errno::EBADF)
            }
            Handle::Vfs(file) => self.vfs_write(file, offset, data),
        }
    }

    /// Run the partial line of a control handle at close: at the flush of
    /// the writer's own descriptor (`closer`), or at the final release
    /// (`None`).
    fn finish_ctl(&self, fh: FileHandle, closer: Option<LockOwner>) -> Result<(), Errno> {
        if let Handle::Ctl {
            scope,
            owner,
            buffer,
        } = self.handle(fh)?
        {
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
            let mut kernel = self.machine_mut();
            if let Some(proc) = owner
                && let Err(e) = proc.check(&kernel)
            {
                // The process is gone: the partial line goes with it.
                buffer.lines = LineBuffer::new();
                return Err(e);
            }
            buffer
                .run(&mut kernel, scope, None)
                .map_err(Errno::from_i32)?;
        }
        Ok(())
    }

    /// The target of a process's link; ENOENT for `exe` (no executable
    /// file is simulated) and for links of a process that is gone.
    fn do_readlink(&self, ino: INodeNo) -> Result<&'static str, Errno> {
        match node_entry(self.decode(ino)?) {
            Ok((pid, PidEntry::Link(link))) => {
                if !self.pid_alive(pid) {
                    return Err(Errno::ENOENT);
                }
                link.target().ok_or(Errno::ENOENT)
            }
            _ => Err(Errno::EINVAL),
        }
    }

    /// True when the node takes writes (so truncation is a no-op).
    fn writable(&self, node: Node) -> bool {
        match node {
            Node::Static(index) => match self.tree.node(index).map(|n| n.kind) {
                Some(StaticKind::Ctl | StaticKind::Sysctl { writable: true, .. }) => true,
                Some(StaticKind::Trace(file)) => file.writable(),
                _ => false,
            },
            Node::PidEntry(_, PidEntry::Ctl | PidEntry::Mem)
            | Node::TaskEntry(_, PidEntry::Mem) => true,
            Node::PidEntry(_, entry @ PidEntry::File(_))
            | Node::TaskEntry(_, entry @ PidEntry::File(_)) => {
                tree::pid_entry_info(entry).is_some_and(|(_, mode, _)| mode & 0o200 != 0)
            }
            _ => false,
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
        if let Node::Vfs(ino) = node {
            let changes = mode.is_some() || uid.is_some() || gid.is_some();
            return self.vfs_setattr(ino, changes, size);
        }
        let attr = self.node_attr(node)?;
        if self.read_only && (mode.is_some() || uid.is_some() || gid.is_some() || size.is_some()) {
            return Err(Errno::EROFS);
        }
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
            // `echo > trace` clears the buffer, `echo > set_event` every event.
            if let Node::Static(index) = node
                && let Some(StaticKind::Trace(file)) = self.tree.node(index).map(|n| n.kind)
                && size == Some(0)
            {
                self.machine_mut().truncate_trace(file);
            }
        }
        // Timestamps (touch) are accepted and ignored, as procfs does.
        Ok(attr)
    }
}

impl MmFs {
    /// A read of trace_pipe: events now, EAGAIN for a non-blocking
    /// descriptor, else the reply waits (parked, off this thread) until
    /// events arrive.
    fn read_trace_pipe(
        &self,
        req: &Request,
        pending: tracepipe::Pending,
        size: u32,
        flags: OpenFlags,
        reply: ReplyData,
    ) {
        let data = tracepipe::take(&mut self.machine_mut(), &pending, size);
        if !data.is_empty() {
            return self.inval.reply(move || reply.data(&data));
        }
        if flags.0 & libc::O_NONBLOCK != 0 {
            return reply.error(Errno::EAGAIN);
        }
        self.pipes
            .park(&self.kernel, req.pid(), size, pending, reply);
    }

    /// Answer a request that did simulated work (a write, a read or fsync
    /// of `fs/` that waited for the disk): on the wall clock, only once
    /// real time has caught up with the simulated clock, so the caller
    /// waits as long as its work took; the request thread does not.
    fn reply_paced(&self, reply: impl FnOnce() + Send + 'static) {
        let pace = self
            .wall
            .map_or(Duration::ZERO, |w| w.pace(self.machine().clock_ns));
        if pace.is_zero() {
            self.inval.reply(reply);
            return;
        }
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let parked = std::thread::Builder::new()
            .name("mmfs-pace".into())
            .spawn(move || {
                std::thread::sleep(pace);
                // Sent once the invalidations owed before it are out.
                if rx.recv().is_ok() {
                    reply();
                }
            });
        self.inval.reply(move || {
            let _ = tx.send(());
        });
        if let Err(e) = parked {
            // The reply went with the closure: the caller sees EIO.
            log::warn!("cannot pace a reply: {e}");
        }
    }

    /// `create`: a new regular file of `fs/`, opened. An existing name is
    /// opened unless `O_EXCL` (the kernel sends create when its lookup
    /// missed, which another creator may have raced).
    fn do_create(
        &self,
        parent: INodeNo,
        name: &OsStr,
        flags: i32,
    ) -> Result<(FileAttr, u64, Handle, FopenFlags), Errno> {
        let node = self.decode(parent)?;
        let Node::Vfs(_) = node else {
            return Err(Errno::ENOENT);
        };
        let (attr, generation) = match self.vfs_create(node, name, FileKind::Regular) {
            Err(Errno::EEXIST) if flags & libc::O_EXCL == 0 => self.do_lookup_gen(parent, name)?,
            other => other?,
        };
        let Node::Vfs(ino) = self.decode(attr.ino)? else {
            return Err(Errno::EIO);
        };
        let (handle, open_flags) = self.vfs_open(ino, OpenFlags(flags))?;
        Ok((attr, generation, handle, open_flags))
    }

    /// A readdir of the root at `offset`: the static entries, then the
    /// process directories by pid from the cookie on, each named only if it
    /// goes into this reply. A listing of 10^4 processes takes a dozen
    /// readdir calls; rendering all of them for each call made a listing
    /// quadratic (`mmfs exec`'s watcher lists the root every 100 ms).
    fn readdir_root(&self, offset: u64, mut reply: ReplyDirectory) {
        let statics = match self.entries_of(INodeNo::ROOT, false) {
            Ok(entries) => entries,
            Err(e) => return reply.error(e),
        };
        for (cookie, ino, kind, name) in &statics {
            if *cookie > offset && reply.add(INodeNo(*ino), *cookie, *kind, name) {
                return reply.ok();
            }
        }
        let pids = self.machine().pids();
        let from = pids.partition_point(|&pid| PID_DIR_OFFSET + u64::from(pid.0) <= offset);
        for &pid in &pids[from..] {
            let (cookie, ino, kind, name) = pid_dir_entry(pid);
            if reply.add(INodeNo(ino), cookie, kind, name) {
                break;
            }
        }
        reply.ok();
    }

    /// The entries a readdir at `offset` serves: the snapshot of an open
    /// directory of `fs/` (taken afresh at a rewind to 0), else the live
    /// listing.
    fn listing(
        &self,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
    ) -> Result<Arc<Vec<vfs::DirEntry>>, Errno> {
        if fh.0 != 0
            && let Ok(Handle::Dir(snapshot)) = self.handle(fh)
            && let Node::Vfs(dir) = self.decode(ino)?
        {
            let mut snapshot = snapshot.lock();
            match &*snapshot {
                Some(entries) if offset != 0 => return Ok(Arc::clone(entries)),
                _ => {
                    let entries = Arc::new(self.vfs_dir_entries(dir)?);
                    *snapshot = Some(Arc::clone(&entries));
                    return Ok(entries);
                }
            }
        }
        self.dir_entries(ino).map(Arc::new)
    }
}

impl Filesystem for MmFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        guarded("lookup", || match self.do_lookup_gen(parent, name) {
            Ok((attr, generation)) => {
                let ttl = self.ttl_of(attr.ino);
                reply.entry(&ttl, &attr, Generation(generation));
            }
            Err(Errno::ENOENT) if self.never_in(parent, name) => {
                // A negative entry (node 0) the kernel keeps: `ps` asks
                // every process directory for `ctty` (procps 4), which
                // Linux does not have either.
                let none = FileAttr {
                    ino: INodeNo(0),
                    ..self.attr(0, FileType::RegularFile, 0, 0)
                };
                reply.entry(&PID_TTL, &none, Generation(0));
            }
            Err(e) => reply.error(e),
        });
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        guarded("getattr", || {
            match self
                .decode(ino)
                .and_then(|n| Ok((self.node_attr(n)?, self.ttl(n))))
            {
                Ok((attr, ttl)) => reply.attr(&ttl, &attr),
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
                Ok(attr) => {
                    let ttl = self.ttl_of(ino);
                    self.inval.reply(move || reply.attr(&ttl, &attr));
                }
                Err(e) => reply.error(e),
            }
        });
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        guarded("readlink", || match self.do_readlink(ino) {
            Ok(target) => reply.data(target.as_bytes()),
            Err(e) => reply.error(e),
        });
    }

    fn mknod(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        guarded("mknod", || {
            let result = self.decode(parent).and_then(|node| match node {
                // The simulated file system holds regular files and
                // directories only: no devices, fifos or sockets.
                Node::Vfs(_) if mode & libc::S_IFMT != libc::S_IFREG => Err(Errno::EPERM),
                Node::Vfs(_) => self.vfs_create(node, name, FileKind::Regular),
                // procfs has no create operations: the name stays absent.
                _ => Err(Errno::ENOENT),
            });
            match result {
                Ok((attr, generation)) => self
                    .inval
                    .reply(move || reply.entry(&TTL, &attr, Generation(generation))),
                Err(e) => self.inval.reply(move || reply.error(e)),
            }
        });
    }

    fn mkdir(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        _mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        guarded("mkdir", || {
            let result = self.decode(parent).and_then(|node| match node {
                Node::Vfs(_) => self.vfs_create(node, name, FileKind::Directory),
                _ => Err(Errno::ENOENT),
            });
            match result {
                Ok((attr, generation)) => self
                    .inval
                    .reply(move || reply.entry(&TTL, &attr, Generation(generation))),
                Err(e) => self.inval.reply(move || reply.error(e)),
            }
        });
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        guarded("unlink", || {
            let result = self.decode(parent).and_then(|node| match node {
                Node::Vfs(_) => self.vfs_remove(node, name, false),
                // rm /proc/buddyinfo: "Operation not permitted".
                _ => Err(Errno::EPERM),
            });
            match result {
                Ok(()) => self.inval.reply(move || reply.ok()),
                Err(e) => self.inval.reply(move || reply.error(e)),
            }
        });
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        guarded("rmdir", || {
            let result = self.decode(parent).and_then(|node| match node {
                Node::Vfs(_) => self.vfs_remove(node, name, true),
                _ => Err(Errno::EPERM),
            });
            match result {
                Ok(()) => self.inval.reply(move || reply.ok()),
                Err(e) => self.inval.reply(move || reply.error(e)),
            }
        });
    }

    fn symlink(
        &self,
        _req: &Request,
        parent: INodeNo,
        _link_name: &OsStr,
        _target: &Path,
        reply: ReplyEntry,
    ) {
        // The simulated file system has no symbolic links (as vfat).
        match self.decode(parent) {
            Ok(Node::Vfs(_)) => reply.error(Errno::EPERM),
            _ => reply.error(Errno::ENOENT),
        }
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        guarded("rename", || {
            let result = self.decode(parent).and_then(|from| {
                let to = self.decode(newparent)?;
                match (from, to) {
                    (Node::Vfs(_), _) | (_, Node::Vfs(_)) => {
                        self.vfs_rename(from, name, to, newname, flags)
                    }
                    _ => Err(Errno::ENOENT),
                }
            });
            match result {
                Ok(()) => self.inval.reply(move || reply.ok()),
                Err(e) => self.inval.reply(move || reply.error(e)),
            }
        });
    }

    fn link(
        &self,
        _req: &Request,
        _ino: INodeNo,
        newparent: INodeNo,
        _newname: &OsStr,
        reply: ReplyEntry,
    ) {
        // No hard links on the simulated file system (as vfat).
        match self.decode(newparent) {
            Ok(Node::Vfs(_)) => reply.error(Errno::EPERM),
            _ => reply.error(Errno::ENOENT),
        }
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        _mode: u32,
        _umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        guarded("create", || match self.do_create(parent, name, flags) {
            Ok((attr, generation, handle, open_flags)) => {
                let fh = self.handles.lock().insert(handle);
                self.inval.reply(move || {
                    reply.created(
                        &TTL,
                        &attr,
                        Generation(generation),
                        FileHandle(fh),
                        open_flags,
                    );
                });
            }
            Err(e) => self.inval.reply(move || reply.error(e)),
        });
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        guarded("open", || match self.do_open(ino, flags) {
            Ok((handle, flags)) => {
                let fh = self.handles.lock().insert(handle);
                reply.opened(FileHandle(fh), flags);
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
        if let Ok(Handle::TracePipe(pending)) = self.handle(fh) {
            guarded("read", || {
                self.read_trace_pipe(_req, pending, size, _flags, reply)
            });
            return;
        }
        guarded("read", || match self.do_read(fh, offset, size) {
            // Reads of fs/ may have waited for the disk.
            Ok(data) if matches!(self.handle(fh), Ok(Handle::Vfs(_))) => {
                self.reply_paced(move || reply.data(&data));
            }
            Ok(data) => self.inval.reply(move || reply.data(&data)),
            Err(e) => self.inval.reply(move || reply.error(e)),
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
                Ok(n) => self.reply_paced(move || reply.written(n)),
                Err(e) => self.inval.reply(move || reply.error(e)),
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
            Ok(()) | Err(Errno::EBADF) => self.inval.reply(move || reply.ok()),
            Err(e) => self.inval.reply(move || reply.error(e)),
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
            self.inval.reply(move || reply.ok());
        });
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        guarded("fsync", || match self.decode(ino) {
            Ok(Node::Vfs(ino)) => match self.vfs_fsync(ino) {
                Ok(()) => self.reply_paced(move || reply.ok()),
                Err(e) => self.inval.reply(move || reply.error(e)),
            },
            // Generated files have nothing to write back.
            _ => reply.ok(),
        });
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        // Directories live in memory only: nothing to write back.
        reply.ok();
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        guarded("opendir", || match self.decode(ino) {
            // A directory of fs/ is listed from a snapshot (see vfs.rs).
            Ok(Node::Vfs(dir)) => match self.vfs_attr(dir) {
                Ok(attr) if attr.kind == FileType::Directory => {
                    let fh = self.handles.lock().insert(Handle::Dir(Arc::default()));
                    reply.opened(FileHandle(fh), FopenFlags::empty());
                }
                Ok(_) => reply.error(Errno::ENOTDIR),
                Err(e) => reply.error(e),
            },
            // The rest of the mount is listed live; no handle.
            _ => reply.opened(FileHandle(0), FopenFlags::empty()),
        });
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        if fh.0 != 0 {
            self.handles.lock().open.remove(&fh.0);
        }
        reply.ok();
    }

    fn statfs(&self, _req: &Request, ino: INodeNo, reply: ReplyStatfs) {
        guarded("statfs", || match self.decode(ino) {
            Ok(Node::Vfs(_)) => {
                let st = self.vfs_statfs();
                let (bsize, namelen) = (st.bsize as u32, NAME_MAX as u32);
                reply.statfs(
                    st.blocks, st.bfree, st.bfree, st.files, st.ffree, bsize, namelen, bsize,
                );
            }
            // The generated files take no space (fuser's default answer).
            _ => reply.statfs(0, 0, 0, 0, 0, 512, 255, 0),
        });
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        if ino == INodeNo::ROOT {
            guarded("readdir", || self.readdir_root(offset, reply));
            return;
        }
        guarded("readdir", || match self.listing(ino, fh, offset) {
            Ok(entries) => {
                for (cookie, ino, kind, name) in entries.iter() {
                    if *cookie <= offset {
                        continue;
                    }
                    if reply.add(INodeNo(*ino), *cookie, *kind, name) {
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
            let value = if ino != INodeNo::ROOT {
                None
            } else if name == PID_XATTR {
                Some(std::process::id().to_string())
            } else if name == PIDS_XATTR {
                // A spawn or fork moves `forks`, an exit alone the count.
                let kernel = self.machine();
                let alive = kernel.procs.len() + kernel.kthreads.len();
                Some(format!("{} {alive}", kernel.forks))
            } else {
                None
            };
            let Some(value) = value else {
                reply.error(Errno::NO_XATTR);
                return;
            };
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

    fn poll(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        ph: PollNotifier,
        _events: PollEvents,
        flags: PollFlags,
        reply: ReplyPoll,
    ) {
        guarded("poll", || match self.handle(fh) {
            Ok(Handle::TracePipe(pending)) => {
                let readable = tracepipe::readable(&self.machine(), &pending);
                if readable {
                    reply.poll(PollEvents::POLLIN | PollEvents::POLLRDNORM);
                    return;
                }
                if flags.contains(PollFlags::FUSE_POLL_SCHEDULE_NOTIFY) {
                    self.pipes.poll_later(&self.kernel, ph);
                }
                reply.poll(PollEvents::empty());
            }
            // Every other file is always ready (DEFAULT_POLLMASK), as for
            // files without a poll method.
            Ok(_) => reply.poll(
                PollEvents::POLLIN
                    | PollEvents::POLLOUT
                    | PollEvents::POLLRDNORM
                    | PollEvents::POLLWRNORM,
            ),
            Err(e) => reply.error(e),
        });
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
        let (handle, _) = fs.do_open(INodeNo(Node::Static(index).ino()), OpenFlags(flags))?;
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

    fn open_pid(fs: &MmFs, pid: Pid, name: &str, flags: i32) -> Result<u64, Errno> {
        let (entry, _) = tree::pid_entry_by_name(name).ok_or(Errno::ENOENT)?;
        let ino = INodeNo(Node::PidEntry(pid, entry).ino());
        let (handle, _) = fs.do_open(ino, OpenFlags(flags))?;
        Ok(fs.handles.lock().insert(handle))
    }

    fn write(fs: &MmFs, fh: u64, text: &str) -> Result<u32, Errno> {
        fs.do_write(FileHandle(fh), 0, text.as_bytes(), None)
    }

    /// Spawn through a ctl handle and read the pid back.
    fn spawn(fs: &MmFs, name: &str) -> Pid {
        let ctl = open(fs, "ctl", libc::O_RDWR).unwrap();
        write(fs, ctl, &format!("spawn {name}\n")).unwrap();
        let back = read_all(fs, ctl);
        Pid(back.trim().parse().unwrap())
    }

    #[test]
    fn seq_file_renders_at_a_read_at_offset_0() {
        let fs = fs();
        let boot = crate::procfs::buddyinfo(&Kernel::boot(MachineConfig::default()).unwrap());
        let fh = open(&fs, "buddyinfo", libc::O_RDONLY).unwrap();
        let ctl = open(&fs, "ctl", libc::O_WRONLY).unwrap();
        write(&fs, ctl, "alloc_pages 4 count=3 tag=t\n").unwrap();
        // Nothing was rendered at open: the first read shows the new state.
        let after = read_all(&fs, fh);
        assert_ne!(after, boot);
        assert_eq!(after, crate::procfs::buddyinfo(&fs.kernel.write()));
        // Later offsets continue the pass; offset 0 starts a new one.
        let head = fs.do_read(FileHandle(fh), 0, 5).unwrap();
        write(&fs, ctl, "free_pages tag=t\n").unwrap();
        let mut pass = head;
        loop {
            let chunk = fs.do_read(FileHandle(fh), pass.len() as u64, 7).unwrap();
            if chunk.is_empty() {
                break;
            }
            pass.extend(chunk);
        }
        assert_eq!(String::from_utf8(pass).unwrap(), after);
        assert_eq!(read_all(&fs, fh), boot);
        // Reads past the end return nothing.
        assert!(fs.do_read(FileHandle(fh), 1 << 40, 10).unwrap().is_empty());
    }

    #[test]
    fn big_maps_are_served_through_a_bounded_window() {
        let fs = fs();
        let pid = spawn(&fs, "big");
        let ctl = open_pid(&fs, pid, "ctl", libc::O_WRONLY).unwrap();
        let plan: String = (0..3000)
            .map(|i| {
                if i % 2 == 0 {
                    "mmap 4K prot=r\n"
                } else {
                    "mmap 4K prot=rw\n"
                }
            })
            .collect();
        write(&fs, ctl, &plan).unwrap();
        for file in [PidFile::Maps, PidFile::Smaps] {
            let name = if file == PidFile::Maps {
                "maps"
            } else {
                "smaps"
            };
            let want = render_pid(&fs.kernel.write(), pid, file).unwrap();
            let fh = open_pid(&fs, pid, name, libc::O_RDONLY).unwrap();
            assert_eq!(read_all(&fs, fh), want, "{name}");
            // Odd-sized reads across window edges, then a seek back.
            let mut text = Vec::new();
            loop {
                let chunk = fs.do_read(FileHandle(fh), text.len() as u64, 4093).unwrap();
                if chunk.is_empty() {
                    break;
                }
                text.extend(chunk);
            }
            assert_eq!(String::from_utf8(text).unwrap(), want, "{name}");
            let mid = fs.do_read(FileHandle(fh), 100, 50).unwrap();
            assert_eq!(&mid[..], &want.as_bytes()[100..150]);
            if want.len() > SNAPSHOT_MAX {
                let Handle::File { seq, .. } = fs.handle(FileHandle(fh)).unwrap() else {
                    panic!("not a file handle");
                };
                let cap = seq.lock().buf.capacity();
                assert!(
                    cap <= SNAPSHOT_MAX + (64 << 10),
                    "{name}: window of {cap} bytes"
                );
            }
        }
        // Records stay whole when the mm changes between reads; a VMA
        // unmapped beyond the window is gone when the reader gets there.
        let maps = render_pid(&fs.kernel.write(), pid, PidFile::Maps).unwrap();
        let lines: Vec<&str> = maps.lines().collect();
        let victim = lines[lines.len() * 3 / 4]
            .split('-')
            .next()
            .unwrap()
            .to_string();
        let fh = open_pid(&fs, pid, "smaps", libc::O_RDONLY).unwrap();
        let head = fs.do_read(FileHandle(fh), 0, 4096).unwrap();
        write(&fs, ctl, &format!("munmap 0x{victim} 4K\n")).unwrap();
        let mut text = head;
        loop {
            let chunk = fs.do_read(FileHandle(fh), text.len() as u64, 4096).unwrap();
            if chunk.is_empty() {
                break;
            }
            text.extend(chunk);
        }
        let text = String::from_utf8(text).unwrap();
        let all: Vec<&str> = text.lines().collect();
        let headers: Vec<usize> = (0..all.len())
            .filter(|&i| all[i].split(' ').next().is_some_and(|r| r.contains('-')))
            .collect();
        assert_eq!(headers.len(), lines.len() - 1);
        for &i in &headers {
            assert!(all[i + 1].starts_with("Size:"), "{}", all[i + 1]);
        }
        assert_eq!(text.matches("\nVmFlags:").count(), headers.len());
        assert!(!text.contains(&format!("\n{victim}-")));
        fs.kernel.write().check_invariants().unwrap();
    }

    #[test]
    fn handles_belong_to_a_process_not_a_pid() {
        let fs = fs();
        let pid = spawn(&fs, "first");
        let status = open_pid(&fs, pid, "status", libc::O_RDONLY).unwrap();
        let mem = open_pid(&fs, pid, "mem", libc::O_RDWR).unwrap();
        let adj = open_pid(&fs, pid, "oom_score_adj", libc::O_RDWR).unwrap();
        let comm = open_pid(&fs, pid, "comm", libc::O_RDWR).unwrap();
        let pctl = open_pid(&fs, pid, "ctl", libc::O_RDWR).unwrap();
        let pagemap = open_pid(&fs, pid, "pagemap", libc::O_RDONLY).unwrap();
        assert!(read_all(&fs, status).contains("first"));
        let ctl = open(&fs, "ctl", libc::O_WRONLY).unwrap();
        write(&fs, ctl, &format!("kill {pid}\n")).unwrap();
        // The pid is handed out again.
        fs.kernel.write().ns_last_pid = pid.0 - 1;
        assert_eq!(spawn(&fs, "second"), pid);
        let esrch = Err(Errno::ESRCH);
        let fh = FileHandle;
        assert_eq!(fs.do_read(fh(status), 0, 4096), esrch);
        assert_eq!(fs.do_read(fh(mem), 0x1000, 8), esrch);
        assert_eq!(fs.do_read(fh(pagemap), 0, 8), esrch);
        assert_eq!(fs.do_read(fh(adj), 0, 8), esrch);
        assert_eq!(fs.do_read(fh(pctl), 0, 8), esrch);
        let esrch = Err(Errno::ESRCH);
        assert_eq!(fs.do_write(fh(mem), 0x1000, b"x", None), esrch);
        assert_eq!(write(&fs, adj, "500\n"), esrch);
        assert_eq!(write(&fs, comm, "evil\n"), esrch);
        assert_eq!(write(&fs, pctl, "mmap 4K name=evil\n"), esrch);
        let k = fs.kernel.write();
        let p = k.procs.by_pid(pid).unwrap();
        assert_eq!((p.comm.as_str(), p.oom_score_adj), ("second", 0));
        assert!(!p.mm.has_name("evil"));
    }

    #[test]
    fn ctl_reads_back_what_it_created() {
        let fs = fs();
        let a = open(&fs, "ctl", libc::O_RDWR).unwrap();
        let b = open(&fs, "ctl", libc::O_RDWR).unwrap();
        assert_eq!(fs.do_read(FileHandle(a), 0, 64), Ok(Vec::new()));
        write(&fs, a, "spawn one\nalloc_pages 0 tag=x\n# c\nspawn two\n").unwrap();
        write(&fs, b, "spawn three").unwrap();
        fs.finish_ctl(FileHandle(b), None).unwrap();
        let pids = fs.kernel.write().user_pids();
        let text = |ps: &[Pid]| ps.iter().map(|p| format!("{p}\n")).collect::<String>();
        // Byte by byte, as bash's `read` takes it from a stream.
        let first = fs.do_read(FileHandle(a), 0, 1).unwrap();
        let rest = fs.do_read(FileHandle(a), 0, 64).unwrap();
        assert_eq!([first, rest].concat(), text(&pids[..2]).into_bytes());
        assert_eq!(read_all(&fs, a), "");
        assert_eq!(read_all(&fs, b), text(&pids[2..]));
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
        assert!(!fs.kernel.write().tags.pages.contains("p"));
        assert_eq!(fs.finish_ctl(fh, None), Ok(()));
        assert!(fs.kernel.write().tags.pages.contains("p"));
        assert_eq!(fs.do_write(fh, 0, b"\xff\xfe\n", None), Err(Errno::EINVAL));
        assert!(
            fs.kernel
                .write()
                .dmesg
                .last()
                .unwrap()
                .contains("not UTF-8")
        );
        fs.kernel.write().check_invariants().unwrap();
    }

    #[test]
    fn modes_are_enforced_by_the_adapter() {
        let fs = fs();
        assert_eq!(open(&fs, "buddyinfo", libc::O_WRONLY), Err(Errno::EACCES));
        assert_eq!(open(&fs, "buddyinfo", libc::O_RDWR), Err(Errno::EACCES));
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
            fs.kernel.write().sysctl_read("vm/swappiness").unwrap(),
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
        for &(path, _, _) in crate::procfs::GLOBAL_FILES {
            let name = path.split('/').next().unwrap();
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
    fn fs_dir_serves_the_kernel_vfs() {
        let mut fs = fs();
        let root = fs.do_lookup(INodeNo::ROOT, OsStr::new("fs")).unwrap();
        assert_eq!(root.ino.0, Node::Vfs(ROOT_INO).ino());
        assert_eq!((root.kind, root.perm), (FileType::Directory, 0o755));
        let fs_node = Node::Vfs(ROOT_INO);
        let (a, gen_a) = fs
            .vfs_create(fs_node, OsStr::new("a"), FileKind::Regular)
            .unwrap();
        let Node::Vfs(ino) = fs.decode(a.ino).unwrap() else {
            panic!("not a vfs node");
        };
        let (handle, flags) = fs.vfs_open(ino, OpenFlags(libc::O_RDWR)).unwrap();
        assert_eq!(flags, FopenFlags::FOPEN_DIRECT_IO);
        let fh = FileHandle(fs.handles.lock().insert(handle));
        assert_eq!(fs.do_write(fh, 4090, b"hello world", None), Ok(11));
        assert_eq!(fs.do_read(fh, 4094, 100).unwrap(), b"o world");
        let attr = fs.do_lookup_gen(a.ino, OsStr::new("x")).unwrap_err();
        assert_eq!(attr, Errno::ENOTDIR);
        let (attr, g) = fs.do_lookup_gen(root.ino, OsStr::new("a")).unwrap();
        assert_eq!((attr.size, attr.blocks, g), (4101, 16, gen_a));
        // The listing has . and .., and the root lists fs/.
        let names: Vec<String> = fs
            .dir_entries(root.ino)
            .unwrap()
            .into_iter()
            .map(|e| e.3)
            .collect();
        assert_eq!(names, [".", "..", "a"]);
        let top = fs.dir_entries(INodeNo::ROOT).unwrap();
        assert!(top.iter().any(|e| e.3 == "fs" && e.1 == root.ino.0));
        // Deleted, and its number reused: the old handle is stale.
        fs.vfs_remove(fs_node, OsStr::new("a"), false).unwrap();
        let (b, gen_b) = fs
            .vfs_create(fs_node, OsStr::new("b"), FileKind::Regular)
            .unwrap();
        assert_eq!(b.ino, a.ino);
        assert_ne!(gen_a, gen_b);
        assert_eq!(fs.do_read(fh, 0, 10), Err(Errno::ESTALE));
        fs.kernel.write().check_invariants().unwrap();
        // Read-only: nothing changes.
        fs.set_read_only(true);
        let dir = fs.vfs_create(fs_node, OsStr::new("d"), FileKind::Directory);
        assert_eq!(dir.err(), Some(Errno::EROFS));
        assert_eq!(
            fs.vfs_remove(fs_node, OsStr::new("b"), false),
            Err(Errno::EROFS)
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
