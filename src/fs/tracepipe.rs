//! `tracing/trace_pipe`: consuming reads that block while the buffer is
//! empty, and `poll` that reports when it is not.
//!
//! A read that finds nothing is never answered by its request thread: its
//! reply is parked here and the request thread goes back to serve others.
//! One thread (`mmfs-trace`, started at the first park) answers parked
//! reads when events arrive: it is kicked whenever a change to the machine
//! recorded events, and looks every [`RECHECK`] as long as anything is
//! parked (the wall clock's ticker changes the machine behind no request,
//! and a kick may race the parking). The same thread notifies the pollers.
//!
//! A reader killed while it waits leaves nothing behind: the kernel waits
//! for the answer to a request already sent even when its caller got a
//! fatal signal (fuser does not pass FUSE_INTERRUPT on), so each look also
//! asks /proc whether the reader is gone or has SIGKILL pending, and
//! answers its read EINTR.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use fuser::{Errno, PollNotifier, ReplyData};
use parking_lot::{Condvar, Mutex, RwLock};

use crate::ctl::Machine;

/// How often parked reads and pollers are looked at without a kick.
const RECHECK: Duration = Duration::from_millis(50);

/// Text rendered for a trace_pipe descriptor and not read yet (a read
/// takes whole events and may render more than it asked for).
pub type Pending = Arc<Mutex<Vec<u8>>>;

/// A read waiting for events.
struct Parked {
    /// Bytes asked for.
    size: u32,
    /// The reader (thread id), to notice it being killed.
    pid: u32,
    pending: Pending,
    reply: ReplyData,
}

#[derive(Default)]
struct State {
    parked: Vec<Parked>,
    polls: Vec<PollNotifier>,
    running: bool,
}

/// The parked reads and pollers of every trace_pipe descriptor.
#[derive(Default)]
pub struct TracePipes {
    state: Mutex<State>,
    kick: Condvar,
    /// True while reads or pollers wait: the fast path of [`Self::changed`].
    waiting: AtomicBool,
    /// The trace generation at the last kick.
    seen: AtomicU64,
}

/// Take up to `size` bytes for a reader: first what an earlier read left,
/// then freshly consumed events. Empty when there is nothing.
pub fn take(machine: &mut Machine, pending: &Pending, size: u32) -> Vec<u8> {
    let size = size as usize;
    let mut pending = pending.lock();
    if pending.is_empty() {
        *pending = machine.trace_pipe_take(size).into_bytes();
    }
    let n = size.min(pending.len());
    let rest = pending.split_off(n);
    std::mem::replace(&mut *pending, rest)
}

/// True when a descriptor has something to read.
pub fn readable(machine: &Machine, pending: &Pending) -> bool {
    !pending.lock().is_empty() || !machine.kernel.trace.is_empty()
}

/// The reader is gone or dying (SIGKILL pending, or a fatal signal the
/// kernel turned into one).
fn reader_killed(pid: u32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return true;
    };
    const SIGKILL_BIT: u64 = 1 << (libc::SIGKILL - 1);
    status.lines().any(|line| {
        let Some((key, value)) = line.split_once(':') else {
            return false;
        };
        matches!(key, "SigPnd" | "ShdPnd")
            && u64::from_str_radix(value.trim(), 16).is_ok_and(|m| m & SIGKILL_BIT != 0)
    }) || status
        .lines()
        .any(|l| l.starts_with("State:") && (l.contains("zombie") || l.contains("dead")))
}

impl TracePipes {
    /// Park a read until events arrive; the thread answering it starts
    /// with the first.
    pub fn park(
        self: &Arc<Self>,
        machine: &Arc<RwLock<Machine>>,
        pid: u32,
        size: u32,
        pending: Pending,
        reply: ReplyData,
    ) {
        let mut state = self.state.lock();
        state.parked.push(Parked {
            size,
            pid,
            pending,
            reply,
        });
        self.waiting.store(true, Ordering::Release);
        self.start(&mut state, machine);
        self.kick.notify_one();
    }

    /// Notify `ph` once the buffer holds events.
    pub fn poll_later(self: &Arc<Self>, machine: &Arc<RwLock<Machine>>, ph: PollNotifier) {
        let mut state = self.state.lock();
        // The kernel polls a descriptor again and again (each select with
        // a timeout); its handle is the same, so it is kept once.
        if !state.polls.iter().any(|p| p.handle().0 == ph.handle().0) {
            state.polls.push(ph);
        }
        self.waiting.store(true, Ordering::Release);
        self.start(&mut state, machine);
    }

    /// After a change to the machine: wake the thread if events were
    /// recorded and anyone waits. A load and a branch when nobody does.
    pub fn changed(&self, machine: &Machine) {
        if !self.waiting.load(Ordering::Acquire) {
            return;
        }
        let generation = machine.kernel.trace.generation();
        if self.seen.swap(generation, Ordering::AcqRel) != generation {
            self.kick.notify_one();
        }
    }

    fn start(self: &Arc<Self>, state: &mut State, machine: &Arc<RwLock<Machine>>) {
        if state.running {
            return;
        }
        let pipes = Arc::clone(self);
        let machine = Arc::clone(machine);
        let spawned = std::thread::Builder::new()
            .name("mmfs-trace".into())
            .spawn(move || pipes.serve(&machine));
        match spawned {
            Ok(_) => state.running = true,
            Err(e) => {
                // Nobody would answer: fail the parked reads now.
                log::warn!("cannot start the trace_pipe thread: {e}");
                for p in state.parked.drain(..) {
                    p.reply.error(Errno::EIO);
                }
            }
        }
    }

    /// The thread: answer parked reads and pollers as events arrive.
    fn serve(&self, machine: &RwLock<Machine>) {
        loop {
            let (parked, polls) = {
                let mut state = self.state.lock();
                if state.parked.is_empty() && state.polls.is_empty() {
                    self.waiting.store(false, Ordering::Release);
                    self.kick.wait(&mut state);
                } else {
                    self.kick.wait_for(&mut state, RECHECK);
                }
                (
                    std::mem::take(&mut state.parked),
                    std::mem::take(&mut state.polls),
                )
            };
            let mut still = Vec::new();
            let mut polls_left = Vec::new();
            let has_events = !machine.read().kernel.trace.is_empty();
            // Killed readers first, without the machine's lock (/proc reads).
            let parked: Vec<Parked> = parked
                .into_iter()
                .filter_map(|p| {
                    if reader_killed(p.pid) {
                        p.reply.error(Errno::EINTR);
                        None
                    } else {
                        Some(p)
                    }
                })
                .collect();
            if !parked.is_empty() {
                let mut m = (has_events || parked.iter().any(|p| !p.pending.lock().is_empty()))
                    .then(|| machine.write());
                for p in parked {
                    let data = match m.as_mut() {
                        Some(m) => take(m, &p.pending, p.size),
                        None => Vec::new(),
                    };
                    if data.is_empty() {
                        still.push(p);
                    } else {
                        p.reply.data(&data);
                    }
                }
            }
            for ph in polls {
                if has_events {
                    if let Err(e) = ph.notify() {
                        log::trace!("poll notify: {e}");
                    }
                } else {
                    polls_left.push(ph);
                }
            }
            if !still.is_empty() || !polls_left.is_empty() {
                let mut state = self.state.lock();
                state.parked.extend(still);
                state.polls.extend(polls_left);
                self.waiting.store(true, Ordering::Release);
            }
        }
    }
}
