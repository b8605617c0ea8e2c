//! The simulated kernel memory manager. Deterministic, no I/O except swap
//! files. Modules are named after their Linux counterparts in mm/.

pub mod buffer;
pub mod compaction;
pub mod cputime;
pub mod error;
pub mod filemap;
pub mod fork;
pub mod kthread;
pub mod loadavg;
pub mod madvise;
pub mod maple_tree;
pub mod memory;
pub mod migrate;
pub mod mm_init;
pub mod mmap;
pub mod mprotect;
pub mod namei;
pub mod node_stats;
pub mod oom_kill;
pub mod page_alloc;
pub mod page_contents;
pub mod page_io;
pub mod page_writeback;
pub mod printk;
pub mod process;
pub mod psi;
pub mod rmap;
pub mod shmem;
pub mod slab_common;
pub mod slub;
pub mod swap_state;
pub mod swap_store;
pub mod swapfile;
pub mod sysctl;
pub mod trace;
pub mod types;
pub mod util;
pub mod vma;
pub mod vmscan;
pub mod vmstat;
pub mod xarray;

use error::{MmError, MmResult};
use page_alloc::{PageAllocator, ZoneType};
use printk::Dmesg;
pub use sysctl::Sysctl;
use types::{Arch, PAGE_SIZE, ZoneIdx};
use vmstat::VmEvents;

/// Smallest machine.
pub const MIN_MEM: u64 = 64 << 20;
/// Largest x86_64 machine.
pub const MAX_MEM_X86_64: u64 = 1 << 40;
/// Largest i386 machine (no PAE).
pub const MAX_MEM_I386: u64 = 4 << 30;
/// Simulated nanoseconds per `tick` (one jiffy at HZ=100).
pub const TICK_NS: u64 = 10_000_000;
/// Number of simulated CPUs (for /proc/stat).
pub const NR_CPUS: u64 = 2;
/// Fixed boot time (seconds since the epoch) shown as `btime`.
pub const BOOT_TIME: u64 = 1_795_633_740;

/// What the machine is booted with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MachineConfig {
    /// CPU architecture.
    pub arch: Arch,
    /// RAM in bytes.
    pub mem_bytes: u64,
}

impl Default for MachineConfig {
    fn default() -> Self {
        MachineConfig {
            arch: Arch::X86_64,
            mem_bytes: 1 << 30,
        }
    }
}

impl MachineConfig {
    /// Check the size against the architecture's limits.
    pub fn validate(&self) -> MmResult<()> {
        let max = match self.arch {
            Arch::X86_64 => MAX_MEM_X86_64,
            Arch::I386 => MAX_MEM_I386,
        };
        if self.mem_bytes < MIN_MEM || self.mem_bytes > max {
            return Err(MmError::Invalid(format!(
                "--mem {}M out of range: {} takes 64M to {}",
                self.mem_bytes >> 20,
                self.arch.name(),
                if max >= 1 << 40 { "1T" } else { "4G" }
            )));
        }
        if !self.mem_bytes.is_multiple_of(PAGE_SIZE) {
            return Err(MmError::Invalid("--mem must be a multiple of 4K".into()));
        }
        Ok(())
    }
}

/// The whole simulated machine.
pub struct Kernel {
    /// Boot parameters.
    pub config: MachineConfig,
    /// Physical memory: zones and the buddy allocator.
    pub page_alloc: PageAllocator,
    /// The kernel log.
    pub dmesg: Dmesg,
    /// Simulated time since boot, in ns.
    pub clock_ns: u64,
    /// CPU accounting on the clock: per-CPU and per-task times, load
    /// average, PSI.
    pub sched: cputime::Sched,
    /// Kernel threads (kthreadd, kswapd0, …).
    pub kthreads: kthread::KThreads,
    /// What drives the clock.
    pub clock_mode: cputime::ClockMode,
    /// The root file system on /dev/sda1 and its page cache.
    pub vfs: namei::Vfs,
    /// vm tunables.
    pub sysctl: Sysctl,
    /// Event counters.
    pub events: VmEvents,
    /// The last pid handed out.
    pub ns_last_pid: u32,
    /// Processes forked since boot.
    pub forks: u64,
    /// Anon LRU lists per zone.
    pub lru: vmscan::Lru,
    /// Swap areas and simulated disks.
    pub swap: swapfile::SwapState,
    /// Bytes of pages written through `PID/mem`.
    pub page_contents: page_contents::PageContents,
    /// Processes and their address spaces.
    pub procs: process::Processes,
    /// The slab allocator: kmem caches and kmalloc.
    pub slab: slub::SlabAllocator,
    /// The process whose `PID/ctl` command is running (the OOM killer
    /// names it as the task that invoked it).
    pub current: Option<types::Pid>,
    /// `oom_rs`: the OOM report header and task table are rate limited
    /// (10 per 5 s of simulated time, DEFAULT_RATELIMIT_*), as on Linux.
    pub oom_ratelimit: printk::RateLimit,
    /// The "Write-error on swap-device" alert's limit (10 per 5 s, the
    /// default of `pr_alert_ratelimited`).
    pub swap_write_ratelimit: printk::RateLimit,
    /// Tracepoints and the ftrace ring buffers (`MOUNT/tracing`).
    pub trace: trace::Trace,
    /// Compaction: per-zone deferral, tunables, kcompactd.
    pub compaction: compaction::CompactState,
    /// Shared anonymous memory: the shmem objects and their page indexes.
    pub shmem: shmem::ShmemState,
}

impl Kernel {
    /// Boot a machine.
    pub fn boot(config: MachineConfig) -> MmResult<Kernel> {
        config.validate()?;
        let page_alloc = PageAllocator::boot(config.arch, config.mem_bytes)?;
        let lru = vmscan::Lru::new(page_alloc.zones.len());
        let compaction = compaction::CompactState::new(page_alloc.zones.len());
        let mut kernel = Kernel {
            config,
            page_alloc,
            dmesg: Dmesg::default(),
            clock_ns: 0,
            sched: cputime::Sched::default(),
            kthreads: kthread::KThreads::default(),
            clock_mode: cputime::ClockMode::Sim,
            vfs: namei::Vfs::new(namei::DEFAULT_DISK),
            sysctl: Sysctl::default(),
            events: VmEvents::default(),
            ns_last_pid: 0,
            forks: 0,
            lru,
            swap: swapfile::SwapState::default(),
            page_contents: page_contents::PageContents::default(),
            procs: process::Processes::new(config.arch),
            slab: slub::SlabAllocator::default(),
            current: None,
            oom_ratelimit: printk::RateLimit::new(5_000_000_000, 10),
            swap_write_ratelimit: printk::RateLimit::new(5_000_000_000, 10),
            trace: trace::Trace::default(),
            compaction,
            shmem: shmem::ShmemState::default(),
        };
        kernel.mem_init_print_info();
        kernel.kmem_cache_init()?;
        kernel.mm_init()?;
        kernel.kthread_init()?;
        kernel.vfs_init()?;
        kernel.kmem_cache_fill_baseline()?;
        kernel.idle_until(cputime::BOOT_NS);
        Ok(kernel)
    }

    /// Append a kernel log record stamped with the simulated clock.
    pub fn printk(&mut self, text: impl Into<String>) {
        self.dmesg.log(self.clock_ns, text);
    }

    /// Account one command's own cost on the simulated clock.
    pub fn charge_command(&mut self) {
        self.account_system(cputime::COMMAND_NS);
    }

    /// Highest zone index a request may use, from a zone name.
    pub fn zone_by_name(&self, name: &str) -> MmResult<ZoneIdx> {
        self.page_alloc
            .zones
            .iter()
            .position(|z| z.zone_type.name().eq_ignore_ascii_case(name) && z.is_populated())
            .map(ZoneIdx)
            .ok_or_else(|| {
                let names: Vec<_> = self
                    .page_alloc
                    .zones
                    .iter()
                    .filter(|z| z.is_populated())
                    .map(|z| z.zone_type.name())
                    .collect();
                MmError::Invalid(format!(
                    "no populated zone '{name}' (zones: {})",
                    names.join(", ")
                ))
            })
    }

    /// Highest zone of GFP_KERNEL requests (Normal; never HighMem).
    pub fn kernel_zone(&self) -> ZoneIdx {
        ZoneIdx(
            self.page_alloc
                .zone_index(ZoneType::Normal)
                .expect("every arch has ZONE_NORMAL"),
        )
    }

    /// Highest zone of GFP_HIGHUSER_MOVABLE requests.
    pub fn user_zone(&self) -> ZoneIdx {
        ZoneIdx(
            self.page_alloc
                .zone_index(ZoneType::Movable)
                .expect("every arch has ZONE_MOVABLE"),
        )
    }

    /// `tick N`: N jiffies pass. Each ages the active lists by one batch
    /// of its anon pages (`shrink_active_list`: to the inactive list)
    /// and lets kswapd run; once the lists stop changing the remaining
    /// ticks only move the clock. The work happens within the ticks: the
    /// clock ends at now + N jiffies, or later if the work took longer.
    pub fn tick(&mut self, ticks: u64) {
        let target = self.clock_ns.saturating_add(ticks.saturating_mul(TICK_NS));
        self.advance_clock(target, u64::MAX);
    }

    /// Let time pass until `target`: LRU ageing and kswapd, whose work may
    /// go on until `kswapd_deadline` (the wall clock's ticker passes the
    /// target itself, so kswapd keeps pace with real time).
    pub fn advance_clock(&mut self, target: u64, kswapd_deadline: u64) {
        let ticks = target.saturating_sub(self.clock_ns) / TICK_NS;
        let longest = self
            .lru
            .zones
            .iter()
            .map(|z| z.active_anon.len())
            .max()
            .unwrap_or(0);
        // Two passes over the longest list settle every page.
        let rounds = ticks.min((2 * longest).div_ceil(vmscan::SWAP_CLUSTER_MAX) + 1);
        if rounds > 0 {
            // Ageing is reclaim work: kswapd0's.
            let prev = self.switch_to(Some(self.kthreads.kswapd));
            for _ in 0..rounds {
                for zone in 0..self.lru.zones.len() {
                    if !self.lru.zones[zone].active_anon.is_empty() {
                        self.shrink_active_list(zone, vmscan::SWAP_CLUSTER_MAX);
                    }
                }
                if self.lru.kswapd_woken {
                    self.kswapd_run_until(kswapd_deadline);
                }
            }
            self.switch_to(prev);
        }
        self.kswapd_run_until(kswapd_deadline);
        // kcompactd runs after kswapd (woken by it or by failed high-order
        // allocations) and every 500 ms checks the fragmentation score.
        self.kcompactd_run(target);
        self.idle_until(target);
        // The disk completes the writes due within the interval (the
        // flusher refilling its queue as they do).
        self.end_writeback_io(self.clock_ns);
        // The flusher wakes every dirty_writeback_centisecs; at the end of
        // the interval it finds every inode that expired within it and
        // submits their pages, which complete as time passes on.
        self.wb_workfn();
        self.flush_cputime();
    }

    /// Check every cross-subsystem invariant; tests call it after each command.
    pub fn check_invariants(&self) -> Result<(), String> {
        self.page_alloc.check_invariants()?;
        self.check_lru()?;
        self.check_slab()?;
        self.check_process_invariants()?;
        self.check_kthreads()?;
        self.check_page_cache()?;
        self.check_rmap()?;
        self.check_swapfiles()?;
        self.check_swap_cache()?;
        self.check_shmem()?;
        Ok(())
    }
}

/// Boot a machine and check its invariants (unit tests across modules).
#[cfg(test)]
pub(crate) fn boot_checked(arch: Arch, mem_bytes: u64) -> crate::ctl::Machine {
    let k = crate::ctl::Machine::boot(MachineConfig { arch, mem_bytes }).expect("boot");
    k.check_invariants().expect("invariants after boot");
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mem_limits() {
        for (arch, mem) in [
            (Arch::X86_64, 32 << 20),
            (Arch::I386, 8 << 30),
            (Arch::X86_64, 2 << 40),
        ] {
            assert!(
                Kernel::boot(MachineConfig {
                    arch,
                    mem_bytes: mem
                })
                .is_err()
            );
        }
    }
}
