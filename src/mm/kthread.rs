//! Kernel threads (Linux: kernel/kthread.c): `kthreadd` (pid 2) and the
//! memory manager's daemons it starts at boot — `oom_reaper`,
//! `kcompactd0`, `kswapd0` — in the order a 6.18 boot creates them.
//! They have no address space: a task_struct and a kernel stack, a
//! `MOUNT/PID` directory with `Kthread: 1` and PPid 2, and the CPU time
//! of the work they do (kswapd's reclaim is kswapd0's system time).
//! init (pid 1) is an ordinary user process spawned first; see
//! [`Kernel::kthread_init`].

use super::Kernel;
use super::cputime::TaskTime;
use super::error::{MmError, MmResult};
use super::page_alloc::PageKind;
use super::slab_common;
use super::slub::{CacheId, SlabObject};
use super::types::{Order, Pfn, Pid};

/// kthreadd's pid.
pub const KTHREADD_PID: Pid = Pid(2);
/// The kernel threads a boot starts, in creation order after kthreadd.
const DAEMONS: [&str; 3] = ["oom_reaper", "kcompactd0", "kswapd0"];

/// `task->flags` of each kernel thread as a 6.18 kernel shows them in
/// `stat` (PF_KTHREAD | PF_FORKNOEXEC, kswapd with PF_MEMALLOC |
/// PF_KSWAPD, …; read off this machine's /proc/PID/stat).
fn task_flags(name: &str) -> u32 {
    match name {
        "kthreadd" => 2_129_984,
        "kcompactd0" => 2_162_752,
        "kswapd0" => 2_230_336,
        _ => 2_097_216,
    }
}
/// Kernel objects of a kernel thread: it shares init's credentials and
/// has no files or mm of its own.
const KTHREAD_CACHES: [CacheId; 4] = [
    slab_common::TASK_STRUCT,
    slab_common::PID,
    slab_common::SIGNAL_CACHE,
    slab_common::SIGHAND_CACHE,
];

/// One kernel thread.
#[derive(Debug)]
pub struct KThread {
    /// Its pid.
    pub pid: Pid,
    /// Its name (`[name]` in ps).
    pub comm: String,
    /// Parent: 0 for kthreadd, kthreadd for the rest.
    pub ppid: Pid,
    /// Simulated time of creation, ns since boot.
    pub start_time_ns: u64,
    /// CPU time of the work it did.
    pub cputime: TaskTime,
    /// `task->flags` (PF_*).
    pub flags: u32,
    kernel_stack: Pfn,
    kernel_stack_order: Order,
    objects: Vec<SlabObject>,
}

/// The kernel threads, by pid (a handful, created at boot, never exit).
#[derive(Debug, Default)]
pub struct KThreads {
    threads: Vec<KThread>,
    /// kswapd0's pid (the reclaim daemon of node 0).
    pub kswapd: Pid,
    /// kcompactd0's pid.
    pub kcompactd: Pid,
    /// oom_reaper's pid.
    pub oom_reaper: Pid,
}

impl KThreads {
    /// The kernel thread with `pid`.
    pub fn get(&self, pid: Pid) -> Option<&KThread> {
        self.threads.iter().find(|t| t.pid == pid)
    }

    /// The kernel thread with `pid`, for writing.
    pub fn get_mut(&mut self, pid: Pid) -> Option<&mut KThread> {
        self.threads.iter_mut().find(|t| t.pid == pid)
    }

    /// Every kernel thread, by pid.
    pub fn iter(&self) -> impl Iterator<Item = &KThread> {
        self.threads.iter()
    }

    /// Number of kernel threads.
    pub fn len(&self) -> usize {
        self.threads.len()
    }

    /// No kernel threads (before boot).
    pub fn is_empty(&self) -> bool {
        self.threads.is_empty()
    }

    /// Σ THREAD_SIZE of their stacks, in pages.
    pub fn kernel_stack_pages(&self) -> u64 {
        self.threads
            .iter()
            .map(|t| t.kernel_stack_order.pages())
            .sum()
    }
}

impl Kernel {
    /// `rest_init`: init (pid 1) is spawned as a user process, then
    /// `kthreadd` (pid 2) creates the memory manager's daemons. User
    /// processes take the pids after them.
    pub fn kthread_init(&mut self) -> MmResult<()> {
        let init = self.spawn("init")?;
        debug_assert_eq!(init, Pid(1));
        self.kthread_create("kthreadd", Pid(0))?;
        for name in DAEMONS {
            let pid = self.kthread_create(name, KTHREADD_PID)?;
            match name {
                "kswapd0" => self.kthreads.kswapd = pid,
                "kcompactd0" => self.kthreads.kcompactd = pid,
                _ => self.kthreads.oom_reaper = pid,
            }
        }
        self.procs.pid_floor = self.ns_last_pid + 1;
        Ok(())
    }

    /// `kthread_create`: a task with a kernel stack and no mm.
    fn kthread_create(&mut self, name: &str, ppid: Pid) -> MmResult<Pid> {
        let pid = Pid(self.ns_last_pid + 1);
        let mut objects = Vec::new();
        for cache in KTHREAD_CACHES {
            objects.push(self.kmem_cache_alloc(cache)?);
        }
        let order = super::process::thread_order(self.config.arch);
        let zone = self.kernel_zone();
        let stack = self
            .alloc_pages(order, zone, PageKind::KernelStack)
            .ok_or_else(|| MmError::NoMemory(format!("{name}: no memory for a kernel stack")))?;
        self.kthreads.threads.push(KThread {
            pid,
            comm: name.to_string(),
            ppid,
            start_time_ns: self.clock_ns,
            cputime: TaskTime::default(),
            flags: task_flags(name),
            kernel_stack: stack,
            kernel_stack_order: order,
            objects,
        });
        self.ns_last_pid = pid.0;
        self.forks += 1;
        Ok(pid)
    }

    /// The CPU-time record of task `pid`, user process or kernel thread.
    pub fn task_time_mut(&mut self, pid: Pid) -> Option<&mut TaskTime> {
        if let Some(t) = self.kthreads.get_mut(pid) {
            return Some(&mut t.cputime);
        }
        let slot = self.procs.slot_of(pid).ok()?;
        self.procs.get_mut(slot).map(|p| &mut p.cputime)
    }

    /// Is `pid` a task the user may not kill or drive (init or a kernel
    /// thread)? Signals to them are ignored on Linux.
    pub fn is_unkillable(&self, pid: Pid) -> bool {
        pid == Pid(1) || self.kthreads.get(pid).is_some()
    }

    /// Check that each kernel thread still holds its stack and objects.
    pub fn check_kthreads(&self) -> Result<(), String> {
        for t in self.kthreads.iter() {
            if t.objects.len() != KTHREAD_CACHES.len() {
                return Err(format!("kthread {} lost its objects", t.pid));
            }
            let frames = &self.page_alloc.frames;
            if frames.state(t.kernel_stack) != super::page_alloc::FrameState::Allocated
                || frames.kind(t.kernel_stack) != PageKind::KernelStack
            {
                return Err(format!(
                    "kthread {}: stack {} is free",
                    t.pid, t.kernel_stack
                ));
            }
        }
        Ok(())
    }
}
