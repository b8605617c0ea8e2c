//! Invalidation of cached process directories.
//!
//! Process directories are answered with a positive TTL, so the kernel
//! keeps their dentries and attributes. When such a process exits (or its
//! pid is handed to another), the kernel must forget them before anyone
//! can see the stale entry: the request that ended the process is answered
//! only after `FUSE_NOTIFY_INVAL_ENTRY` (root, "PID") and
//! `FUSE_NOTIFY_INVAL_INODE` (the directory) have been sent.
//!
//! Those notifications are sent by a thread of their own, never by a
//! request thread: the kernel handles an entry invalidation under the
//! parent directory's lock, which a look-up waiting for a worker thread
//! may hold — sent from inside a handler, that would deadlock.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, OnceLock};

use fuser::{INodeNo, Notifier};
use parking_lot::Mutex;

use super::tree::Node;
use crate::mm::Kernel;
use crate::mm::types::Pid;

/// A reply held back until the invalidations before it are sent.
type Reply = Box<dyn FnOnce() + Send>;

/// What the invalidation thread does: forget these pids' directories,
/// then send the reply.
struct Job {
    pids: Vec<Pid>,
    reply: Reply,
}

/// The process directories the kernel may have cached, by pid, with the
/// spawn sequence number of the process they showed.
#[derive(Default)]
pub struct PidCache {
    /// Looked-up pid directories: pid → spawn sequence (kernel threads:
    /// `u64::MAX`).
    cached: Mutex<BTreeMap<Pid, u64>>,
    /// `Processes::exits` when the cache was last checked.
    seen_exits: AtomicU64,
    /// Pids whose directories must be invalidated before the next reply.
    stale: Mutex<Vec<Pid>>,
    /// True while `stale` may hold pids: the replies' fast path.
    owed: AtomicBool,
    /// The invalidation thread's queue, once it runs.
    queue: Arc<OnceLock<Sender<Job>>>,
}

impl PidCache {
    /// The kernel is about to cache the directory of `pid` (a process of
    /// spawn sequence `seq`). Called under the machine's lock, so an exit
    /// cannot slip between the look-up and this note.
    pub fn note_lookup(&self, pid: Pid, seq: u64) {
        self.cached.lock().insert(pid, seq);
    }

    /// After a change to the machine (under its exclusive lock): if any
    /// process exited, queue the cached directories that no longer show
    /// the process they showed.
    pub fn check_exits(&self, kernel: &Kernel, seq_of: impl Fn(&Kernel, Pid) -> Option<u64>) {
        let exits = kernel.procs.exits();
        if self.seen_exits.swap(exits, Ordering::Relaxed) == exits {
            return;
        }
        let mut cached = self.cached.lock();
        let gone: Vec<Pid> = cached
            .iter()
            .filter(|&(&pid, &seq)| seq_of(kernel, pid) != Some(seq))
            .map(|(&pid, _)| pid)
            .collect();
        if gone.is_empty() {
            return;
        }
        for pid in &gone {
            cached.remove(pid);
        }
        self.stale.lock().extend(gone);
        self.owed.store(true, Ordering::Release);
    }

    /// Send `reply` now, or, when directories are owed an invalidation
    /// and the invalidation thread runs, after it has sent them.
    pub fn reply(&self, reply: impl FnOnce() + Send + 'static) {
        if !self.owed.load(Ordering::Acquire) {
            return reply();
        }
        let pids = {
            let mut stale = self.stale.lock();
            if stale.is_empty() {
                drop(stale);
                return reply();
            }
            self.owed.store(false, Ordering::Release);
            std::mem::take(&mut *stale)
        };
        match self.queue.get() {
            Some(queue) => {
                let job = Job {
                    pids,
                    reply: Box::new(reply),
                };
                if let Err(failed) = queue.send(job) {
                    // The thread is gone (the session is ending).
                    (failed.0.reply)();
                }
            }
            // No session (in-process tests): nothing is cached.
            None => reply(),
        }
    }

    /// The handle that starts the invalidation thread.
    pub fn invalidator(&self) -> Invalidator {
        Invalidator {
            queue: Arc::clone(&self.queue),
        }
    }
}

/// Starts the invalidation thread once the FUSE session exists.
pub struct Invalidator {
    queue: Arc<OnceLock<Sender<Job>>>,
}

impl Invalidator {
    /// Run the invalidation thread, sending through `notifier`.
    pub fn start(self, notifier: Notifier) -> std::io::Result<()> {
        let (tx, rx) = channel::<Job>();
        std::thread::Builder::new()
            .name("mmfs-inval".into())
            .spawn(move || {
                for job in rx {
                    for pid in job.pids {
                        let name = pid.to_string();
                        // ENOENT: the kernel had already dropped it.
                        if let Err(e) = notifier.inval_entry(INodeNo::ROOT, OsStr::new(&name)) {
                            log::trace!("inval_entry {name}: {e}");
                        }
                        let ino = INodeNo(Node::PidDir(pid).ino());
                        if let Err(e) = notifier.inval_inode(ino, 0, 0) {
                            log::trace!("inval_inode {name}: {e}");
                        }
                    }
                    (job.reply)();
                }
            })?;
        // Started once per session; a second start keeps the first queue.
        let _ = self.queue.set(tx);
        Ok(())
    }
}
