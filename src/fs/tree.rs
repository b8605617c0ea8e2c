//! The shape of the mount: inode numbers, the static part of the tree
//! (built once from the renderer tables) and the per-process directories
//! (which come and go with the simulated pids).
//!
//! Inode numbers are stable and carry their meaning, so a request never needs
//! a lookup table: static nodes are numbered from 1 (the root) in table
//! order; a process node is [`PID_INO_BASE`] + pid × 256 + slot (slots
//! below [`TASK_SLOTS`] for `PID/` itself, the rest for `PID/task/PID/`);
//! a block device's node is [`BLOCK_INO_BASE`] + (major << 20 | minor) × 8
//! + slot.
//!
//! A node of the simulated root file system (`fs/`) is [`VFS_INO_BASE`] +
//! its kernel inode number (`fs/` itself is the kernel's root inode).

use crate::mm::NR_CPUS;
use crate::mm::sysctl::SYSCTL_TABLE;
use crate::mm::types::Pid;
use crate::procfs::kpage::{KPAGE_FILES, KPAGE_MODE, KpageFile};
use crate::procfs::pid::{PID_FILES, PidFile};
use crate::procfs::sysfs::{CPU_DIR_FILES, CpuFile, TOPOLOGY_FILES};
use crate::procfs::trace::{self as tracefs, TraceFile};
use crate::procfs::{GLOBAL_FILES, GlobalFile};

/// First inode number of the per-process nodes (above any static node).
pub const PID_INO_BASE: u64 = 1 << 40;
/// Slots per process: the directory, `ctl`, `mem` and the [`PID_FILES`].
const PID_SLOTS: u64 = 256;
/// Slot of the process directory itself.
const SLOT_DIR: u64 = 0;
/// Slot of `PID/ctl`.
const SLOT_CTL: u64 = 1;
/// Slot of `PID/mem`.
const SLOT_MEM: u64 = 2;
/// Slot of `PID/pagemap`.
const SLOT_PAGEMAP: u64 = 3;
/// Slot of `PID/exe`.
const SLOT_EXE: u64 = 4;
/// Slot of `PID/cwd`.
const SLOT_CWD: u64 = 5;
/// Slot of `PID/root`.
const SLOT_ROOT: u64 = 6;
/// Slot of `PID/fd/`.
const SLOT_FD: u64 = 7;
/// Slot of `PID/fdinfo/`.
const SLOT_FDINFO: u64 = 8;
/// Slot of `PID/task/`.
const SLOT_TASK: u64 = 9;
/// Slot of `PID_FILES[0]`.
const SLOT_FILES: u64 = 16;
/// Slots from here on are `PID/task/PID/` (its directory at this slot, its
/// entries at this slot + their slot in `PID/`).
const TASK_SLOTS: u64 = PID_SLOTS / 2;

// Every PID file needs a slot, in the process directory and in the task's.
const _: () = assert!((PID_FILES.len() as u64) + SLOT_FILES <= TASK_SLOTS);

/// First inode number of the block device nodes (between the static and
/// the process nodes).
pub const BLOCK_INO_BASE: u64 = 1 << 39;
/// Slots per block device: its directory and [`BLOCK_FILES`].
const BLOCK_SLOTS: u64 = 8;

/// First inode number of the nodes under `fs/` (above every process node:
/// PID_INO_BASE + PID_INO_MAX × 256 is below 2^49).
pub const VFS_INO_BASE: u64 = 1 << 50;

/// The name of the simulated root file system's directory in the mount.
pub const VFS_DIR: &str = "fs";

/// Mode of the files under `fs/`.
pub const VFS_FILE_MODE: u16 = 0o644;
/// Mode of the directories under `fs/`.
pub const VFS_DIR_MODE: u16 = 0o755;

/// Largest pid the inode scheme can hold (Linux's PID_MAX_LIMIT is 2^22).
pub const PID_INO_MAX: u32 = 1 << 30;

/// Mode of `ctl` files: transaction files (write commands, read back what
/// they created on the same descriptor), owner only.
pub const CTL_MODE: u16 = 0o600;
/// Mode of `PID/mem` (as /proc/PID/mem).
pub const MEM_MODE: u16 = 0o600;
/// Mode of `PID/pagemap` (as /proc/PID/pagemap: root only).
pub const PAGEMAP_MODE: u16 = 0o400;
/// Mode of directories (as /proc).
pub const DIR_MODE: u16 = 0o555;
/// Mode of the constant `version` file.
pub const VERSION_MODE: u16 = 0o444;

/// What a static node is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StaticKind {
    /// A directory (the root, `sys`, `sys/vm`, …).
    Dir,
    /// A generated system-wide file.
    Global(GlobalFile),
    /// `MOUNT/ctl`.
    Ctl,
    /// `MOUNT/version`, the constant banner.
    Version,
    /// `kpagecount` or `kpageflags`: binary, read at offsets.
    Kpage(KpageFile),
    /// A file under `devices/system/cpu/`, for CPU `cpu`.
    Cpu {
        /// The CPU a per-CPU file describes (0 for the others).
        cpu: u64,
        /// Which file.
        file: CpuFile,
    },
    /// `block/`: one directory per whole simulated disk.
    BlockRoot,
    /// A file of `tracing/`.
    Trace(TraceFile),
    /// A file under `sys/`; the path is the one `Kernel::sysctl_read` takes.
    Sysctl {
        /// `vm/swappiness`, `kernel/ns_last_pid`, …
        path: &'static str,
        /// True when writes apply (`sysctl_write`).
        writable: bool,
    },
}

impl StaticKind {
    /// True for the directories (`block/` lists the disks).
    pub fn is_dir(self) -> bool {
        matches!(self, StaticKind::Dir | StaticKind::BlockRoot)
    }
}

/// One node of the static tree.
#[derive(Clone, Debug)]
pub struct StaticNode {
    /// File name within its parent ("" for the root).
    pub name: String,
    /// Index of the parent node (the root is its own parent).
    pub parent: usize,
    /// What it is.
    pub kind: StaticKind,
    /// Permission bits.
    pub mode: u16,
    /// Children in directory order (directories only).
    pub children: Vec<usize>,
}

/// The part of the tree that does not change while mounted.
#[derive(Clone, Debug)]
pub struct StaticTree {
    nodes: Vec<StaticNode>,
}

/// What one of a process's entries is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PidEntry {
    /// `PID/ctl`.
    Ctl,
    /// `PID/mem`.
    Mem,
    /// `PID/pagemap`: 8 bytes per virtual page, Linux's bit layout.
    Pagemap,
    /// A generated file: index into [`PID_FILES`].
    File(usize),
    /// A symbolic link (`exe`, `cwd`, `root`).
    Link(PidLink),
    /// `fd/` or `fdinfo/`: the simulated processes have no open files, so
    /// these directories are empty.
    NoFiles(NoFilesDir),
    /// `task/`: one entry, the only thread (TID = PID).
    Task,
}

/// The symbolic links of a process directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PidLink {
    /// `exe`: the simulated processes run no executable file; readlink is
    /// ENOENT, as for a kernel thread (psutil's `exe()` reads "").
    Exe,
    /// `cwd`: "/".
    Cwd,
    /// `root`: "/".
    Root,
}

impl PidLink {
    /// The target readlink returns; `None` for a link with no target.
    pub fn target(self) -> Option<&'static str> {
        match self {
            PidLink::Exe => None,
            PidLink::Cwd | PidLink::Root => Some("/"),
        }
    }
}

/// The empty directories of a process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoFilesDir {
    /// `fd/`
    Fd,
    /// `fdinfo/`
    Fdinfo,
}

/// What kind of file a process entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Link,
}

impl PidEntry {
    /// Directory, link or file.
    pub fn kind(self) -> EntryKind {
        match self {
            PidEntry::NoFiles(_) | PidEntry::Task => EntryKind::Dir,
            PidEntry::Link(_) => EntryKind::Link,
            PidEntry::Ctl | PidEntry::Mem | PidEntry::Pagemap | PidEntry::File(_) => {
                EntryKind::File
            }
        }
    }

    /// The entry's slot within a process directory.
    fn slot(self) -> u64 {
        match self {
            PidEntry::Ctl => SLOT_CTL,
            PidEntry::Mem => SLOT_MEM,
            PidEntry::Pagemap => SLOT_PAGEMAP,
            PidEntry::Link(PidLink::Exe) => SLOT_EXE,
            PidEntry::Link(PidLink::Cwd) => SLOT_CWD,
            PidEntry::Link(PidLink::Root) => SLOT_ROOT,
            PidEntry::NoFiles(NoFilesDir::Fd) => SLOT_FD,
            PidEntry::NoFiles(NoFilesDir::Fdinfo) => SLOT_FDINFO,
            PidEntry::Task => SLOT_TASK,
            PidEntry::File(i) => SLOT_FILES + i as u64,
        }
    }

    /// The entry at a slot within a process directory.
    fn from_slot(slot: u64) -> Option<PidEntry> {
        Some(match slot {
            SLOT_CTL => PidEntry::Ctl,
            SLOT_MEM => PidEntry::Mem,
            SLOT_PAGEMAP => PidEntry::Pagemap,
            SLOT_EXE => PidEntry::Link(PidLink::Exe),
            SLOT_CWD => PidEntry::Link(PidLink::Cwd),
            SLOT_ROOT => PidEntry::Link(PidLink::Root),
            SLOT_FD => PidEntry::NoFiles(NoFilesDir::Fd),
            SLOT_FDINFO => PidEntry::NoFiles(NoFilesDir::Fdinfo),
            SLOT_TASK => PidEntry::Task,
            slot if slot >= SLOT_FILES => {
                let i = usize::try_from(slot - SLOT_FILES).ok()?;
                if i >= PID_FILES.len() {
                    return None;
                }
                PidEntry::File(i)
            }
            _ => return None,
        })
    }

    /// True for the entries `PID/task/PID/` repeats (all but `ctl`, an
    /// mmfs file, and `task/` itself).
    pub fn in_task(self) -> bool {
        !matches!(self, PidEntry::Ctl | PidEntry::Task)
    }
}

/// The files of a block device's directory (`/sys/block/NAME/`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockFile {
    /// `dev`: `major:minor`.
    Dev,
    /// `size`: 512-byte sectors.
    Size,
    /// `stat`: the I/O counters.
    Stat,
}

/// Name and identity of every file of a block device's directory.
pub const BLOCK_FILES: &[(&str, BlockFile)] = &[
    ("dev", BlockFile::Dev),
    ("size", BlockFile::Size),
    ("stat", BlockFile::Stat),
];

// Slot 0 is the directory.
const _: () = assert!((BLOCK_FILES.len() as u64) < BLOCK_SLOTS);

/// A block device by number (major << 20 | minor, the kernel's dev_t).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct DevT(pub u32);

impl DevT {
    /// From major and minor numbers (minor below 2^20, major below 2^12).
    pub fn new(major: u32, minor: u32) -> Option<DevT> {
        (major < (1 << 12) && minor < (1 << 20)).then_some(DevT((major << 20) | minor))
    }

    /// (major, minor).
    pub fn split(self) -> (u32, u32) {
        (self.0 >> 20, self.0 & ((1 << 20) - 1))
    }
}

/// A node of the mount, decoded from its inode number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Node {
    /// Index into the static tree.
    Static(usize),
    /// `MOUNT/PID`.
    PidDir(Pid),
    /// An entry of `MOUNT/PID`.
    PidEntry(Pid, PidEntry),
    /// `MOUNT/PID/task/PID`: the process's one thread.
    TaskDir(Pid),
    /// An entry of `MOUNT/PID/task/PID` (one of [`PidEntry::in_task`]).
    TaskEntry(Pid, PidEntry),
    /// `MOUNT/block/NAME`: a whole simulated disk.
    BlockDir(DevT),
    /// A file of `MOUNT/block/NAME`: index into [`BLOCK_FILES`].
    BlockEntry(DevT, usize),
    /// A file or directory of `MOUNT/fs/`: the kernel's inode number
    /// (`fs/` itself is `namei::ROOT_INO`).
    Vfs(u32),
}

impl Node {
    /// The inode number of the node.
    pub fn ino(self) -> u64 {
        match self {
            Node::Static(index) => index as u64 + 1,
            Node::PidDir(pid) => pid_ino(pid, SLOT_DIR),
            Node::PidEntry(pid, entry) => pid_ino(pid, entry.slot()),
            Node::TaskDir(pid) => pid_ino(pid, TASK_SLOTS + SLOT_DIR),
            Node::TaskEntry(pid, entry) => pid_ino(pid, TASK_SLOTS + entry.slot()),
            Node::BlockDir(dev) => block_ino(dev, 0),
            Node::BlockEntry(dev, i) => block_ino(dev, i as u64 + 1),
            Node::Vfs(ino) => VFS_INO_BASE + u64::from(ino),
        }
    }

    /// The process entry a node serves, in `PID/` or in `PID/task/PID/`
    /// (the same files: a process has one thread).
    pub fn pid_entry(self) -> Option<(Pid, PidEntry)> {
        match self {
            Node::PidEntry(pid, entry) | Node::TaskEntry(pid, entry) => Some((pid, entry)),
            _ => None,
        }
    }
}

fn block_ino(dev: DevT, slot: u64) -> u64 {
    BLOCK_INO_BASE + u64::from(dev.0) * BLOCK_SLOTS + slot
}

fn pid_ino(pid: Pid, slot: u64) -> u64 {
    PID_INO_BASE + u64::from(pid.0) * PID_SLOTS + slot
}

/// Parse a directory name as a pid the way procfs does (`name_to_int`):
/// decimal digits only, no leading zero, within the inode scheme.
pub fn parse_pid_name(name: &str) -> Option<Pid> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if name.len() > 1 && name.starts_with('0') {
        return None;
    }
    let value: u32 = name.parse().ok()?;
    (value > 0 && value <= PID_INO_MAX).then_some(Pid(value))
}

/// Mode of the symbolic links (as in /proc).
pub const LINK_MODE: u16 = 0o777;
/// Mode of `fd/` (as /proc/PID/fd: owner only).
pub const FD_MODE: u16 = 0o500;

/// The entries of a process directory, in directory order.
pub fn pid_entries() -> impl Iterator<Item = (&'static str, PidEntry, u16)> {
    let files = PID_FILES
        .iter()
        .enumerate()
        .map(|(i, &(name, mode, _))| (name, PidEntry::File(i), mode));
    [
        ("ctl", PidEntry::Ctl, CTL_MODE),
        ("mem", PidEntry::Mem, MEM_MODE),
        ("pagemap", PidEntry::Pagemap, PAGEMAP_MODE),
        ("exe", PidEntry::Link(PidLink::Exe), LINK_MODE),
        ("cwd", PidEntry::Link(PidLink::Cwd), LINK_MODE),
        ("root", PidEntry::Link(PidLink::Root), LINK_MODE),
        ("fd", PidEntry::NoFiles(NoFilesDir::Fd), FD_MODE),
        ("fdinfo", PidEntry::NoFiles(NoFilesDir::Fdinfo), DIR_MODE),
        ("task", PidEntry::Task, DIR_MODE),
    ]
    .into_iter()
    .chain(files)
}

/// The entries of `PID/task/PID/`, in directory order.
pub fn task_entries() -> impl Iterator<Item = (&'static str, PidEntry, u16)> {
    pid_entries().filter(|(_, entry, _)| entry.in_task())
}

/// Find an entry of a process directory by name.
pub fn pid_entry_by_name(name: &str) -> Option<(PidEntry, u16)> {
    pid_entries()
        .find(|(n, _, _)| *n == name)
        .map(|(_, entry, mode)| (entry, mode))
}

/// The mode and identity of a process entry.
pub fn pid_entry_info(entry: PidEntry) -> Option<(&'static str, u16, Option<PidFile>)> {
    match entry {
        PidEntry::Ctl => Some(("ctl", CTL_MODE, None)),
        PidEntry::Mem => Some(("mem", MEM_MODE, None)),
        PidEntry::Pagemap => Some(("pagemap", PAGEMAP_MODE, None)),
        PidEntry::File(i) => PID_FILES
            .get(i)
            .map(|&(name, mode, file)| (name, mode, Some(file))),
        other => pid_entries()
            .find(|(_, entry, _)| *entry == other)
            .map(|(name, _, mode)| (name, mode, None)),
    }
}

/// Decode an inode number; `None` for numbers the tree never hands out.
pub fn decode(tree: &StaticTree, ino: u64) -> Option<Node> {
    if ino == 0 {
        return None;
    }
    if ino < BLOCK_INO_BASE {
        let index = usize::try_from(ino - 1).ok()?;
        return (index < tree.nodes.len()).then_some(Node::Static(index));
    }
    if ino < PID_INO_BASE {
        let rel = ino - BLOCK_INO_BASE;
        let dev = DevT(u32::try_from(rel / BLOCK_SLOTS).ok()?);
        return match rel % BLOCK_SLOTS {
            0 => Some(Node::BlockDir(dev)),
            slot => {
                let i = usize::try_from(slot - 1).ok()?;
                (i < BLOCK_FILES.len()).then_some(Node::BlockEntry(dev, i))
            }
        };
    }
    if ino >= VFS_INO_BASE {
        return u32::try_from(ino - VFS_INO_BASE).ok().map(Node::Vfs);
    }
    let rel = ino - PID_INO_BASE;
    let pid = u32::try_from(rel / PID_SLOTS).ok()?;
    if pid == 0 || pid > PID_INO_MAX {
        return None;
    }
    let pid = Pid(pid);
    match rel % PID_SLOTS {
        SLOT_DIR => Some(Node::PidDir(pid)),
        slot if slot == TASK_SLOTS + SLOT_DIR => Some(Node::TaskDir(pid)),
        slot if slot > TASK_SLOTS => PidEntry::from_slot(slot - TASK_SLOTS)
            .filter(|e| e.in_task())
            .map(|e| Node::TaskEntry(pid, e)),
        slot => PidEntry::from_slot(slot).map(|e| Node::PidEntry(pid, e)),
    }
}

impl StaticTree {
    /// Build the tree from the renderer tables: the root holds every
    /// [`GLOBAL_FILES`] entry, `ctl`, `version` and `sys/`, and `sys/`
    /// holds every [`SYSCTL_TABLE`] entry.
    /// A name a table repeats (or that clashes with `ctl`/`version`/`sys`)
    /// is served once, first come first served.
    pub fn build() -> StaticTree {
        let mut tree = StaticTree {
            nodes: vec![StaticNode {
                name: String::new(),
                parent: 0,
                kind: StaticKind::Dir,
                mode: DIR_MODE,
                children: Vec::new(),
            }],
        };
        for &(path, mode, file) in GLOBAL_FILES {
            // `pressure/memory`: directories on the way, as in /proc.
            let mut parts: Vec<&str> = path.split('/').collect();
            let Some(name) = parts.pop() else { continue };
            let mut dir = 0;
            for part in parts {
                dir = tree.add_dir(dir, part);
            }
            tree.add(dir, name, StaticKind::Global(file), mode);
        }
        tree.add(0, "ctl", StaticKind::Ctl, CTL_MODE);
        tree.add(0, "version", StaticKind::Version, VERSION_MODE);
        for &(name, file) in KPAGE_FILES {
            tree.add(0, name, StaticKind::Kpage(file), KPAGE_MODE);
        }
        // /sys/devices/system/cpu and /sys/block, at the same places under
        // the mount as under /sys.
        let devices = tree.add_dir(0, "devices");
        let system = tree.add_dir(devices, "system");
        let cpu_dir = tree.add_dir(system, "cpu");
        for cpu in 0..NR_CPUS {
            let dir = tree.add_dir(cpu_dir, &format!("cpu{cpu}"));
            // x86 cannot take cpu0 offline: it has no `online` file.
            if cpu > 0 {
                let file = CpuFile::Online;
                tree.add(dir, "online", StaticKind::Cpu { cpu, file }, 0o644);
            }
            let topology = tree.add_dir(dir, "topology");
            for &(name, t) in TOPOLOGY_FILES {
                let file = CpuFile::Topology(t);
                tree.add(topology, name, StaticKind::Cpu { cpu, file }, 0o444);
            }
        }
        for &(name, file) in CPU_DIR_FILES {
            tree.add(cpu_dir, name, StaticKind::Cpu { cpu: 0, file }, 0o444);
        }
        tree.add(0, "block", StaticKind::BlockRoot, DIR_MODE);
        tree.add_tracing();
        let sys = tree.add_dir(0, "sys");
        for entry in SYSCTL_TABLE {
            let path = entry.procname;
            let mut parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
            let Some(file) = parts.pop() else { continue };
            let mut dir = sys;
            for part in parts {
                dir = tree.add_dir(dir, part);
            }
            // Open for writing wherever Linux's mode allows it; writes to
            // the unmodelled tunables then fail with EPERM and a dmesg line.
            let writable = entry.mode & 0o200 != 0;
            tree.add(dir, file, StaticKind::Sysctl { path, writable }, entry.mode);
        }
        tree
    }

    /// `tracing/`: tracefs's files, `events/` with a directory per system
    /// and per event (`enable`, `format`, `id`).
    fn add_tracing(&mut self) {
        let dir = |t: &mut StaticTree, parent, name: &str| {
            t.add(parent, name, StaticKind::Dir, tracefs::DIR_MODE)
        };
        let tracing = dir(self, 0, "tracing");
        for &(name, mode, file) in tracefs::TOP_FILES {
            self.add(tracing, name, StaticKind::Trace(file), mode);
        }
        let events = dir(self, tracing, "events");
        let all = StaticKind::Trace(TraceFile::EventsEnable);
        self.add(events, "enable", all, tracefs::RW_MODE);
        let mut system_dirs = Vec::new();
        for (i, system) in crate::mm::trace::systems().into_iter().enumerate() {
            let d = dir(self, events, system);
            let kind = StaticKind::Trace(TraceFile::SystemEnable(i));
            self.add(d, "enable", kind, tracefs::RW_MODE);
            system_dirs.push(d);
        }
        for (s, event) in crate::ctl::trace::tree_events() {
            let d = dir(self, system_dirs[s], event.info().name);
            let files = [
                ("enable", TraceFile::EventEnable(event), tracefs::RW_MODE),
                ("format", TraceFile::EventFormat(event), tracefs::RO_MODE),
                ("id", TraceFile::EventId(event), tracefs::RO_MODE),
            ];
            for (name, file, mode) in files {
                self.add(d, name, StaticKind::Trace(file), mode);
            }
        }
    }

    /// Add a node unless the directory already has that name; returns the
    /// index of the node holding the name.
    fn add(&mut self, parent: usize, name: &str, kind: StaticKind, mode: u16) -> usize {
        if let Some(existing) = self.child(parent, name) {
            log::warn!("duplicate entry {name:?} in the mmfs tree tables; serving the first");
            return existing;
        }
        let index = self.nodes.len();
        self.nodes.push(StaticNode {
            name: name.to_string(),
            parent,
            kind,
            mode,
            children: Vec::new(),
        });
        self.nodes[parent].children.push(index);
        index
    }

    /// The directory `name` under `parent`, created if missing.
    fn add_dir(&mut self, parent: usize, name: &str) -> usize {
        match self.child(parent, name) {
            Some(index) if self.nodes[index].kind == StaticKind::Dir => index,
            _ => self.add(parent, name, StaticKind::Dir, DIR_MODE),
        }
    }

    /// The node at `index`.
    pub fn node(&self, index: usize) -> Option<&StaticNode> {
        self.nodes.get(index)
    }

    /// The child of a directory by name.
    pub fn child(&self, parent: usize, name: &str) -> Option<usize> {
        self.nodes
            .get(parent)?
            .children
            .iter()
            .copied()
            .find(|&c| self.nodes[c].name == name)
    }

    /// Number of subdirectories of a directory (for its link count).
    pub fn subdirs(&self, index: usize) -> usize {
        self.nodes.get(index).map_or(0, |n| {
            n.children
                .iter()
                .filter(|&&c| self.nodes[c].kind.is_dir())
                .count()
        })
    }

    /// Find a static node by its path from the root ("sys/vm/swappiness").
    pub fn find(&self, path: &str) -> Option<usize> {
        path.split('/')
            .filter(|p| !p.is_empty())
            .try_fold(0, |dir, part| self.child(dir, part))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_driven_by_the_tables() {
        let tree = StaticTree::build();
        for &(name, mode, file) in GLOBAL_FILES {
            let i = tree.find(name).expect(name);
            assert_eq!(tree.node(i).unwrap().kind, StaticKind::Global(file));
            assert_eq!(tree.node(i).unwrap().mode, mode);
        }
        for entry in SYSCTL_TABLE {
            let path = entry.procname;
            let i = tree.find(&format!("sys/{path}")).expect(path);
            assert_eq!(tree.node(i).unwrap().mode, entry.mode);
        }
        let pid = tree.find("sys/kernel/ns_last_pid").unwrap();
        assert_eq!(tree.node(pid).unwrap().mode, 0o444);
        assert_eq!(tree.node(tree.find("ctl").unwrap()).unwrap().mode, 0o600);
        assert!(tree.find("version").is_some());
        assert!(tree.find("nonexistent").is_none());
    }

    #[test]
    fn inode_numbers_round_trip() {
        let tree = StaticTree::build();
        let mut nodes = vec![Node::Static(0), Node::PidDir(Pid(1))];
        for i in 0..tree.nodes.len() {
            nodes.push(Node::Static(i));
        }
        for pid in [1, 2, 4_194_304, PID_INO_MAX] {
            for (_, entry, _) in pid_entries() {
                nodes.push(Node::PidEntry(Pid(pid), entry));
            }
            for (_, entry, _) in task_entries() {
                nodes.push(Node::TaskEntry(Pid(pid), entry));
            }
            nodes.push(Node::PidDir(Pid(pid)));
            nodes.push(Node::TaskDir(Pid(pid)));
        }
        for (major, minor) in [(8, 0), (8, 17), (259, 3), (4095, (1 << 20) - 1)] {
            let dev = DevT::new(major, minor).unwrap();
            assert_eq!(dev.split(), (major, minor));
            nodes.push(Node::BlockDir(dev));
            for i in 0..BLOCK_FILES.len() {
                nodes.push(Node::BlockEntry(dev, i));
            }
        }
        assert_eq!(DevT::new(4096, 0), None);
        for ino in [2, 3, crate::mm::namei::MAX_INODES, u32::MAX] {
            nodes.push(Node::Vfs(ino));
        }
        // The last process node stays below the file system's.
        assert!(pid_ino(Pid(PID_INO_MAX), PID_SLOTS - 1) < VFS_INO_BASE);
        for node in nodes {
            assert_eq!(decode(&tree, node.ino()), Some(node), "{node:?}");
        }
        assert_eq!(Node::Static(0).ino(), 1);
        assert_eq!(decode(&tree, 0), None);
        assert_eq!(decode(&tree, tree.nodes.len() as u64 + 1), None);
        assert_eq!(decode(&tree, PID_INO_BASE), None);
        // No task entry for ctl or task/ itself; no block slot past the files.
        let ctl_in_task = pid_ino(Pid(3), TASK_SLOTS + SLOT_CTL);
        assert_eq!(decode(&tree, ctl_in_task), None);
        assert_eq!(decode(&tree, pid_ino(Pid(3), TASK_SLOTS + SLOT_TASK)), None);
        assert_eq!(decode(&tree, block_ino(DevT(0), BLOCK_SLOTS - 1)), None);
        // Every process entry has a distinct slot.
        let mut slots: Vec<u64> = pid_entries().map(|(_, e, _)| e.slot()).collect();
        slots.sort_unstable();
        slots.dedup();
        assert_eq!(slots.len(), pid_entries().count());
        assert_eq!(decode(&tree, VFS_INO_BASE + (1 << 32)), None);
        assert_eq!(decode(&tree, u64::MAX), None);
    }

    #[test]
    fn pid_names_parse_like_procfs() {
        assert_eq!(parse_pid_name("42"), Some(Pid(42)));
        for bad in ["", "0", "042", "4a", "-1", "+3", "99999999999"] {
            assert_eq!(parse_pid_name(bad), None, "{bad}");
        }
    }
}
