//! The one simulated clock and what work costs on it (Linux:
//! kernel/sched/cputime.c). Every fault, allocation, swap I/O and reclaim
//! scan advances `Kernel::clock_ns` by a documented cost and is charged to
//! the user, system or iowait time of the CPU the task runs on and to the
//! task itself, so /proc/stat, uptime, loadavg, PSI, dmesg stamps and
//! `PID/stat` all follow one clock.
//!
//! The model: the simulation is serial, so at any moment one task runs —
//! a user process whose `PID/ctl` command is executing, a kernel thread
//! (kswapd0 reclaiming), or nobody (a `MOUNT/ctl` command runs in the
//! writer's context, which is no simulated task). A task runs on CPU
//! `pid % NR_CPUS`; the other CPU idles meanwhile. Idle time is what is
//! left of the clock on each CPU. Work is gathered in a pending account
//! (a few additions on the hot fault path) and handed to the task, the
//! CPU, the load average and PSI at every switch and at the end of every
//! command ([`Kernel::flush_cputime`]).
//!
//! The costs are round numbers close to what this class of machine pays
//! (2 cores, a SATA-class disk); they are the one table of them.

use super::Kernel;
use super::types::Pid;
use super::{NR_CPUS, TICK_NS};

/// One control command's own syscall work (system time).
pub const COMMAND_NS: u64 = 1_000;
/// A minor fault: the trap, the PTE, a zeroed page (system time).
pub const MINOR_FAULT_NS: u64 = 250;
/// User code touching one already-mapped page (4 KiB of stores).
pub const TOUCH_PAGE_NS: u64 = 100;
/// One page from the buddy allocator outside a fault (system time).
pub const PAGE_ALLOC_NS: u64 = 100;
/// One slab object (system time).
pub const SLAB_ALLOC_NS: u64 = 50;
/// Reclaim looking at one LRU page: isolate, check references (system
/// time of the reclaimer: kswapd or the allocating task).
pub const RECLAIM_SCAN_NS: u64 = 100;
/// Reclaim's CPU work to swap one page out: rmap walk, unmap, TLB flush,
/// swap slot, bio (system time).
pub const PAGEOUT_NS: u64 = 2_000;
/// One 4 KiB page read from or written to a swap device or the disk:
/// the task waits (iowait); the disk is busy this long (diskstats).
pub const SWAP_PAGE_IO_NS: u64 = 100_000;
/// The boot itself: the machine answers its first command 1 s after
/// power-on (so rates computed from /proc/stat never divide by zero).
pub const BOOT_NS: u64 = 1_000_000_000;

/// What drives the clock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ClockMode {
    /// Only work and `tick` move it; kswapd runs at the end of the command
    /// that woke it. Fully deterministic.
    #[default]
    Sim,
    /// It follows real time as well (`--clock wall`): a ticker lets time
    /// pass, and kswapd reclaims beside the workload as it does.
    Wall,
}

/// Time of one CPU, in ns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuStat {
    /// Running user code.
    pub user_ns: u64,
    /// Running kernel code.
    pub system_ns: u64,
    /// Idle while a task of this CPU waits for I/O.
    pub iowait_ns: u64,
}

impl CpuStat {
    /// Busy (not idle) time: user + system + iowait.
    pub fn busy_ns(&self) -> u64 {
        self.user_ns + self.system_ns + self.iowait_ns
    }
}

/// CPU time of one task (`task_struct` utime/stime), in ns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TaskTime {
    /// User time.
    pub utime_ns: u64,
    /// System time.
    pub stime_ns: u64,
    /// Times it was switched to (voluntary context switches).
    pub nvcsw: u64,
}

/// Work done since the last flush by the running task.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Pending {
    user_ns: u64,
    system_ns: u64,
    iowait_ns: u64,
    /// Part of the above spent stalled on memory (PSI `some`).
    stall_some_ns: u64,
    /// Part stalled with no other task able to run (PSI `full`).
    stall_full_ns: u64,
}

/// Scheduler accounting: per-CPU times, the running task, context
/// switches, and the load average and PSI fed from them.
#[derive(Clone, Debug)]
pub struct Sched {
    /// Per-CPU times.
    pub cpus: [CpuStat; NR_CPUS as usize],
    /// The task the pending work belongs to (None: no simulated task).
    running: Option<Pid>,
    pending: Pending,
    /// Nesting depth of `psi_memstall_enter`.
    memstall: u32,
    /// Context switches since boot (/proc/stat ctxt).
    pub nr_switches: u64,
    /// The load average.
    pub loadavg: super::loadavg::LoadAvg,
    /// Memory pressure stall information.
    pub psi: super::psi::Psi,
}

impl Default for Sched {
    fn default() -> Self {
        Sched {
            cpus: [CpuStat::default(); NR_CPUS as usize],
            running: None,
            pending: Pending::default(),
            memstall: 0,
            nr_switches: 0,
            loadavg: super::loadavg::LoadAvg::default(),
            psi: super::psi::Psi::default(),
        }
    }
}

/// The CPU a task runs on (`task_cpu`): pid modulo the CPUs; work outside
/// any simulated task runs on CPU 0.
pub fn task_cpu(task: Option<Pid>) -> usize {
    task.map_or(0, |pid| (u64::from(pid.0) % NR_CPUS) as usize)
}

/// How a stall counts in PSI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stall {
    /// A task stalled while others may run (kswapd: `some` only).
    Some,
    /// The stalled task is the only one with work (direct reclaim,
    /// swap-in): `some` and `full`.
    Full,
}

impl Kernel {
    /// `account_user_time`: user code of the running task.
    pub fn account_user(&mut self, ns: u64) {
        self.clock_ns = self.clock_ns.saturating_add(ns);
        self.sched.pending.user_ns += ns;
        self.account_stall(ns);
    }

    /// `account_system_time`: kernel work of (or for) the running task.
    pub fn account_system(&mut self, ns: u64) {
        self.clock_ns = self.clock_ns.saturating_add(ns);
        self.sched.pending.system_ns += ns;
        self.account_stall(ns);
    }

    /// `io_schedule`: the running task waits for I/O; its CPU is iowait.
    pub fn account_iowait(&mut self, ns: u64) {
        self.clock_ns = self.clock_ns.saturating_add(ns);
        self.sched.pending.iowait_ns += ns;
        self.account_stall(ns);
    }

    fn account_stall(&mut self, ns: u64) {
        match self.sched.memstall {
            0 => {}
            _ if self.sched.running == Some(self.kthreads.kswapd) => {
                self.sched.pending.stall_some_ns += ns;
            }
            _ => {
                self.sched.pending.stall_some_ns += ns;
                self.sched.pending.stall_full_ns += ns;
            }
        }
    }

    /// `psi_memstall_enter`: the running task starts waiting on memory
    /// (reclaim, swap-in, compaction); nests.
    pub fn psi_memstall_enter(&mut self) {
        self.sched.memstall += 1;
    }

    /// `psi_memstall_leave`.
    pub fn psi_memstall_leave(&mut self) {
        self.sched.memstall = self.sched.memstall.saturating_sub(1);
    }

    /// The task whose work is being accounted.
    pub fn running_task(&self) -> Option<Pid> {
        self.sched.running
    }

    /// `context_switch`: hand the pending work to the task that did it and
    /// run `next`; returns the task switched away from.
    pub fn switch_to(&mut self, next: Option<Pid>) -> Option<Pid> {
        let prev = self.sched.running;
        if prev == next {
            return prev;
        }
        self.flush_cputime();
        self.trace_save_cmdline(next);
        self.sched.running = next;
        self.sched.nr_switches += 1;
        if let Some(pid) = next
            && let Some(t) = self.task_time_mut(pid)
        {
            t.nvcsw += 1;
        }
        prev
    }

    /// Hand the pending work to the running task and its CPU, and bring
    /// the load average and PSI up to the clock.
    pub fn flush_cputime(&mut self) {
        let p = std::mem::take(&mut self.sched.pending);
        if p != Pending::default() {
            let task = self.sched.running;
            let cpu = &mut self.sched.cpus[task_cpu(task)];
            cpu.user_ns += p.user_ns;
            cpu.system_ns += p.system_ns;
            cpu.iowait_ns += p.iowait_ns;
            if let Some(pid) = task
                && let Some(t) = self.task_time_mut(pid)
            {
                t.utime_ns += p.user_ns;
                t.stime_ns += p.system_ns;
            }
            // A running or I/O-blocked task counts in the load.
            self.sched
                .loadavg
                .add_active(p.user_ns + p.system_ns + p.iowait_ns);
            self.sched.psi.add(p.stall_some_ns, p.stall_full_ns);
        }
        let now = self.clock_ns;
        self.sched.loadavg.advance(now);
        self.sched.psi.advance(now);
    }

    /// Let time pass with nothing to do until `target` (idle CPUs).
    pub fn idle_until(&mut self, target: u64) {
        if target > self.clock_ns {
            self.clock_ns = target;
        }
        self.flush_cputime();
    }

    /// Σ idle time of the CPUs (the second field of /proc/uptime).
    pub fn idle_ns(&self) -> u64 {
        self.sched
            .cpus
            .iter()
            .map(|c| self.clock_ns.saturating_sub(c.busy_ns()))
            .sum()
    }

    /// Jiffies since boot (HZ = 100).
    pub fn jiffies(&self) -> u64 {
        self.clock_ns / TICK_NS
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctl::Scope;
    use crate::mm::MachineConfig;

    #[test]
    fn every_cpu_accounts_for_the_whole_clock() {
        let mut k = crate::ctl::Machine::boot(MachineConfig::default()).unwrap();
        let pid = k.execute_line(Scope::System, "spawn a").unwrap().unwrap();
        k.execute_line(Scope::Process(pid), "mmap 8M name=h")
            .unwrap();
        k.execute_line(Scope::Process(pid), "touch h 8M").unwrap();
        k.execute_line(Scope::System, "tick 3").unwrap();
        let t = k.procs.by_pid(pid).unwrap().cputime;
        // 2048 write faults of MINOR_FAULT_NS and 2048 pages of stores.
        assert!(t.stime_ns >= 2048 * MINOR_FAULT_NS);
        assert!(t.utime_ns >= 2048 * TOUCH_PAGE_NS);
        let cpu = k.sched.cpus[task_cpu(Some(pid))];
        assert!(cpu.user_ns >= t.utime_ns && cpu.system_ns >= t.stime_ns);
        for c in k.sched.cpus {
            assert!(c.busy_ns() <= k.clock_ns);
        }
        assert!(k.clock_ns >= BOOT_NS + 3 * TICK_NS);
    }
}
