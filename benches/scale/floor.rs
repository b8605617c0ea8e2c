//! The FUSE floor: a minimal fuser file system with one constant file,
//! served as cheaply as fuser allows (TTL 0, direct I/O, one worker
//! thread, the same mount options as mmfs), so the bench can put `cat
//! buddyinfo` on mmfs beside the same operation where the file system
//! does nothing at all.

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
}

impl Floor {
    fn attr(&self, ino: u64) -> FileAttr {
        let dir = ino == 1;
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
        if parent == INodeNo::ROOT && name == NAME {
            reply.entry(&TTL, &self.attr(FILE_INO), Generation(0));
        } else {
            reply.error(Errno::ENOENT);
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match ino.0 {
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
        let base = std::env::temp_dir().join(format!("mmfs-floor-{}", std::process::id()));
        let dir = base.join("mnt");
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let fd = match mount_fuse(&dir, false, false).map_err(|e| e.to_string())? {
            Mounted::Fd(fd) => fd,
            Mounted::NeedsFusermount => return Err("not root".into()),
        };
        let fs = Floor {
            text,
            time: SystemTime::now(),
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
