//! The shape of the mount: inode numbers, the static part of the tree
//! (built once from the renderer tables) and the per-process directories
//! (which come and go with the simulated pids).
//!
//! Inode numbers are stable and carry their meaning, so a request never needs
//! a lookup table: static nodes are numbered from 1 (the root) in table
//! order; a process node is [`PID_INO_BASE`] + pid × 256 + slot.

use crate::mm::sysctl::SYSCTL_TABLE;
use crate::mm::types::Pid;
use crate::procfs::pid::{PID_FILES, PidFile};
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
/// Slot of `PID_FILES[0]`.
const SLOT_FILES: u64 = 4;

// Every PID file needs a slot.
const _: () = assert!((PID_FILES.len() as u64) + SLOT_FILES <= PID_SLOTS);

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
    /// A file under `sys/`; the path is the one `Kernel::sysctl_read` takes.
    Sysctl {
        /// `vm/swappiness`, `kernel/ns_last_pid`, …
        path: &'static str,
        /// True when writes apply (`sysctl_write`).
        writable: bool,
    },
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
}

impl Node {
    /// The inode number of the node.
    pub fn ino(self) -> u64 {
        match self {
            Node::Static(index) => index as u64 + 1,
            Node::PidDir(pid) => pid_ino(pid, SLOT_DIR),
            Node::PidEntry(pid, PidEntry::Ctl) => pid_ino(pid, SLOT_CTL),
            Node::PidEntry(pid, PidEntry::Mem) => pid_ino(pid, SLOT_MEM),
            Node::PidEntry(pid, PidEntry::Pagemap) => pid_ino(pid, SLOT_PAGEMAP),
            Node::PidEntry(pid, PidEntry::File(i)) => pid_ino(pid, SLOT_FILES + i as u64),
        }
    }
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
    ]
    .into_iter()
    .chain(files)
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
    }
}

/// Decode an inode number; `None` for numbers the tree never hands out.
pub fn decode(tree: &StaticTree, ino: u64) -> Option<Node> {
    if ino == 0 {
        return None;
    }
    if ino < PID_INO_BASE {
        let index = usize::try_from(ino - 1).ok()?;
        return (index < tree.nodes.len()).then_some(Node::Static(index));
    }
    let rel = ino - PID_INO_BASE;
    let pid = u32::try_from(rel / PID_SLOTS).ok()?;
    if pid == 0 || pid > PID_INO_MAX {
        return None;
    }
    let pid = Pid(pid);
    match rel % PID_SLOTS {
        SLOT_DIR => Some(Node::PidDir(pid)),
        SLOT_CTL => Some(Node::PidEntry(pid, PidEntry::Ctl)),
        SLOT_MEM => Some(Node::PidEntry(pid, PidEntry::Mem)),
        SLOT_PAGEMAP => Some(Node::PidEntry(pid, PidEntry::Pagemap)),
        slot => {
            let i = usize::try_from(slot - SLOT_FILES).ok()?;
            (i < PID_FILES.len()).then_some(Node::PidEntry(pid, PidEntry::File(i)))
        }
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
                .filter(|&&c| self.nodes[c].kind == StaticKind::Dir)
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
            nodes.push(Node::PidDir(Pid(pid)));
        }
        for node in nodes {
            assert_eq!(decode(&tree, node.ino()), Some(node), "{node:?}");
        }
        assert_eq!(Node::Static(0).ino(), 1);
        assert_eq!(decode(&tree, 0), None);
        assert_eq!(decode(&tree, tree.nodes.len() as u64 + 1), None);
        assert_eq!(decode(&tree, PID_INO_BASE), None);
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
