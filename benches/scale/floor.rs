//! The FUSE floor: a minimal fuser file system with one constant file,
//! served as cheaply as fuser allows (TTL 0, direct I/O, one worker
//! thread, the same mount options as mmfs), so the bench can put `cat
//! buddyinfo` on mmfs beside the same operation where the file system
//! does nothing at all.
//!
//! [`FloorMount::grid`] serves instead `dirs` directories named 1..=dirs,
//! each holding the same constant files (the names `ps` reads), with
//! positive TTLs for entries and attributes and negative entries for other
//! names, as mmfs caches process directories: `ps aux`'s reading pattern
//! where the file system does nothing.

use std::ffi::OsStr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use fuser::{
    BackgroundSession, Config, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags,
    Generation, INodeNo, LockOwner, OpenFlags, ReplyAttr, ReplyData, ReplyEntry, ReplyOpen,
    Request, Session, SessionACL,
};
use mmfs::fs::mount::{Mounted, mount_fuse, unmount};

/// Nothing is cached by the kernel: every stat and open asks.
const TTL: Duration = Duration::ZERO;
const FILE_INO: u64 = 2;
const NAME: &str = "file";

struct Floor {
    text: Vec<u8>,
    time: SystemTime,
    /// Grid mode: the number of directories, their files' names and the
    /// TTL of every entry and attribute (0 directories: one file, TTL 0).
    dirs: u64,
    names: &'static [&'static str],
    ttl: Duration,
}

/// Inode numbers of grid directory `d` (1-based) and its file `i`.
const GRID_BASE: u64 = 1 << 20;
fn grid_dir(d: u64) -> u64 {
    GRID_BASE + d * 16
}

impl Floor {
    fn attr(&self, ino: u64) -> FileAttr {
        let dir = ino == 1 || (ino >= GRID_BASE && ino.is_multiple_of(16));
        FileAttr {
            ino: INodeNo(ino),
            size: 0,
            blocks: 0,
            atime: self.time,
            mtime: self.time,
            ctime: self.time,
            crtime: self.time,
            kind: if dir {
                FileType::Directory
            } else {
                FileType::RegularFile
            },
            perm: if dir { 0o555 } else { 0o444 },
            nlink: if dir { 2 } else { 1 },
            uid: 0,
            gid: 0,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        }
    }
}

impl Filesystem for Floor {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        if self.dirs > 0 {
            let found = if parent == INodeNo::ROOT {
                name.to_str()
                    .and_then(|n| n.parse::<u64>().ok())
                    .filter(|d| (1..=self.dirs).contains(d))
                    .map(grid_dir)
            } else {
                let i = self.names.iter().position(|n| name == *n);
                i.map(|i| parent.0 + 1 + i as u64)
            };
            let ino = found.unwrap_or(0);
            let attr = FileAttr {
                ino: INodeNo(ino),
                ..self.attr(ino)
            };
            // Node 0: a negative entry the kernel keeps for the TTL.
            return reply.entry(&self.ttl, &attr, Generation(0));
        }
        if parent == INodeNo::ROOT && name == NAME {
            reply.entry(&TTL, &self.attr(FILE_INO), Generation(0));
        } else {
            reply.error(Errno::ENOENT);
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match ino.0 {
            _ if self.dirs > 0 => reply.attr(&self.ttl, &self.attr(ino.0)),
            1 | FILE_INO => reply.attr(&TTL, &self.attr(ino.0)),
            _ => reply.error(Errno::ENOENT),
        }
    }

    fn open(&self, _req: &Request, _ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        reply.opened(FileHandle(0), FopenFlags::FOPEN_DIRECT_IO);
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let start = (offset as usize).min(self.text.len());
        let end = (start + size as usize).min(self.text.len());
        reply.data(&self.text[start..end]);
    }
}

/// The minimal file system mounted in a temporary directory; unmounted on
/// drop.
pub struct FloorMount {
    base: PathBuf,
    dir: PathBuf,
    session: Option<BackgroundSession>,
}

impl FloorMount {
    /// Mount it, serving `text` as its one file.
    pub fn new(text: Vec<u8>) -> Result<FloorMount, String> {
        FloorMount::mount(Floor {
            text,
            time: SystemTime::now(),
            dirs: 0,
            names: &[],
            ttl: TTL,
        })
    }

    /// Mount a grid: `dirs` directories 1..=dirs, each holding `names`,
    /// all of them `text`; entries and attributes cached for `ttl`.
    pub fn grid(
        dirs: u64,
        names: &'static [&'static str],
        text: Vec<u8>,
        ttl: Duration,
    ) -> Result<FloorMount, String> {
        assert!(names.len() < 15, "16 inode numbers a directory");
        FloorMount::mount(Floor {
            text,
            time: SystemTime::now(),
            dirs,
            names,
            ttl,
        })
    }

    fn mount(fs: Floor) -> Result<FloorMount, String> {
        static MOUNTS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = MOUNTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let base = std::env::temp_dir().join(format!("mmfs-floor-{}-{n}", std::process::id()));
        let dir = base.join("mnt");
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let fd = match mount_fuse(&dir, false, false).map_err(|e| e.to_string())? {
            Mounted::Fd(fd) => fd,
            Mounted::NeedsFusermount => return Err("not root".into()),
        };
        let mut config = Config::default();
        config.n_threads = Some(1);
        let session = Session::from_fd(fs, fd, SessionACL::Owner, config)
            .and_then(|s| s.spawn())
            .map_err(|e| {
                let _ = unmount(&dir, true);
                e.to_string()
            })?;
        Ok(FloorMount {
            base,
            dir,
            session: Some(session),
        })
    }

    /// The constant file.
    pub fn file(&self) -> PathBuf {
        self.dir.join(NAME)
    }

    /// The mount point.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }
}

impl Drop for FloorMount {
    fn drop(&mut self) {
        let _ = unmount(&self.dir, true);
        if let Some(session) = self.session.take() {
            let _ = session.join();
        }
        let _ = std::fs::remove_dir_all(&self.base);
    }
}
