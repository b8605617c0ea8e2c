//! The simulated kernel memory manager. Deterministic, no I/O except swap
//! files. Modules are named after their Linux counterparts in mm/.

pub mod error;
pub mod memory;
pub mod mmap;
pub mod node_stats;
pub mod oom_kill;
pub mod page_alloc;
pub mod page_contents;
pub mod printk;
pub mod process;
pub mod slab;
pub mod swapfile;
pub mod types;
pub mod vmscan;
pub mod vmstat;

use std::collections::BTreeMap;

use crate::ctl::{self, Command, Scope};
use error::{MmError, MmResult};
use page_alloc::{PageAllocator, PageKind, ZoneType};
use printk::Dmesg;
use types::{Arch, Order, PAGE_SIZE, Pfn};
use vmstat::VmEvents;

/// Smallest machine.
pub const MIN_MEM: u64 = 64 << 20;
/// Largest x86_64 machine.
pub const MAX_MEM_X86_64: u64 = 1 << 40;
/// Largest i386 machine (no PAE).
pub const MAX_MEM_I386: u64 = 4 << 30;
/// Simulated nanoseconds per `tick` (one jiffy at HZ=100).
pub const TICK_NS: u64 = 10_000_000;
/// Simulated nanoseconds every command costs, so log stamps advance.
pub const COMMAND_NS: u64 = 1_000;
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

/// The `/proc/sys/vm` tunables not owned by a subsystem.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sysctl {
    /// vm.swappiness, 0..=200.
    pub swappiness: u64,
    /// vm.overcommit_memory, 0..=2.
    pub overcommit_memory: u64,
    /// vm.overcommit_ratio, >= 0.
    pub overcommit_ratio: u64,
}

impl Default for Sysctl {
    fn default() -> Self {
        Sysctl {
            swappiness: 60,
            overcommit_memory: 0,
            overcommit_ratio: 50,
        }
    }
}

/// The `/proc/sys` files the simulation serves.
pub const SYSCTL_FILES: &[&str] = &[
    "vm/min_free_kbytes",
    "vm/watermark_scale_factor",
    "vm/swappiness",
    "vm/overcommit_memory",
    "vm/overcommit_ratio",
];

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
    /// Ticks the CPUs spent busy in the kernel (for /proc/stat).
    pub system_ticks: u64,
    /// vm tunables.
    pub sysctl: Sysctl,
    /// Event counters.
    pub events: VmEvents,
    /// Raw kernel allocations by tag, oldest first.
    pub tagged_pages: BTreeMap<String, Vec<(Pfn, Order)>>,
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
    /// The slab allocator: kmem caches, kmalloc, their tags.
    pub slab: slab::SlabAllocator,
    /// The process whose `PID/ctl` command is running (the OOM killer
    /// names it as the task that invoked it).
    pub current: Option<types::Pid>,
    /// `oom_rs`: the OOM report header and task table are rate limited
    /// (10 per 5 s of simulated time, DEFAULT_RATELIMIT_*), as on Linux.
    pub oom_ratelimit: printk::RateLimit,
}

impl Kernel {
    /// Boot a machine.
    pub fn boot(config: MachineConfig) -> MmResult<Kernel> {
        config.validate()?;
        let page_alloc = PageAllocator::boot(config.arch, config.mem_bytes)?;
        let lru = vmscan::Lru::new(page_alloc.zones.len());
        let mut kernel = Kernel {
            config,
            page_alloc,
            dmesg: Dmesg::default(),
            clock_ns: 0,
            system_ticks: 0,
            sysctl: Sysctl::default(),
            events: VmEvents::default(),
            tagged_pages: BTreeMap::new(),
            ns_last_pid: 1,
            forks: 1,
            lru,
            swap: swapfile::SwapState::default(),
            page_contents: page_contents::PageContents::default(),
            procs: process::Processes::new(config.arch),
            slab: slab::SlabAllocator::default(),
            current: None,
            oom_ratelimit: printk::RateLimit::new(5_000_000_000, 10),
        };
        crate::procfs::boot_log::log_boot(&mut kernel);
        kernel.kmem_cache_init()?;
        kernel.mm_init()?;
        Ok(kernel)
    }

    /// Append a kernel log record stamped with the simulated clock.
    pub fn printk(&mut self, text: impl Into<String>) {
        self.dmesg.log(self.clock_ns, text);
    }

    /// Run one line written to a control file: parse, validate, apply.
    /// Blank lines and comments do nothing. A failure logs one dmesg line
    /// quoting the line and saying why.
    pub fn execute_line(&mut self, scope: Scope, line: &str) -> MmResult<()> {
        // The 4096-byte limit holds for comments and blank lines too (SPEC §3).
        if ctl::is_blank(line) && line.len() <= ctl::MAX_LINE {
            return Ok(());
        }
        self.clock_ns += COMMAND_NS;
        let result = if line.len() > ctl::MAX_LINE {
            Err(MmError::Invalid(format!(
                "line of {} bytes exceeds the {}-byte limit",
                line.len(),
                ctl::MAX_LINE
            )))
        } else {
            match scope {
                Scope::System => ctl::parse_system(line).and_then(|cmd| self.apply(cmd)),
                Scope::Process(pid) => {
                    self.current = Some(pid);
                    let result =
                        ctl::parse_process(line).and_then(|cmd| self.apply_process(pid, cmd));
                    self.current = None;
                    result
                }
            }
        };
        // Deferred kernel work: kswapd runs when the operation is over.
        self.run_kswapd();
        if let Err(err) = &result {
            let quoted: String = line.trim().chars().take(200).collect();
            let file = match scope {
                Scope::System => "ctl".to_string(),
                Scope::Process(pid) => format!("{pid}/ctl"),
            };
            self.printk(format!("mmfs: {file}: \"{quoted}\": {err}"));
        }
        result
    }

    /// Apply a parsed command.
    pub fn apply(&mut self, command: Command) -> MmResult<()> {
        match command {
            Command::AllocPages {
                order,
                count,
                zone,
                tag,
            } => self.alloc_pages_command(order, count, zone.as_deref(), &tag),
            Command::FreePages { tag, count } => self.free_pages_command(&tag, count),
            Command::Tick { ticks } => {
                self.tick(ticks);
                Ok(())
            }
            Command::Mkswap {
                path,
                bytes,
                badpages,
            } => self.mkswap(&path, bytes, &badpages),
            Command::Swapon { path, prio } => self.swapon(&path, prio),
            Command::Swapoff { path } => self.swapoff(&path),
            Command::Reclaim { bytes } => self.reclaim_command(bytes),
            Command::Spawn { name } => self.spawn(&name).map(|_| ()),
            Command::Kill { pid } => self.kill(pid),
            Command::KmemCacheCreate { name, size, align } => {
                self.kmem_cache_create_command(&name, size, align)
            }
            Command::KmemCacheDestroy { name } => self.kmem_cache_destroy(&name),
            Command::KmemCacheAlloc { name, count, tag } => {
                self.kmem_cache_alloc_command(&name, count, &tag)
            }
            Command::KmemCacheFree { tag, count } => self.kmem_cache_free_command(&tag, count),
            Command::Kmalloc { size, count, tag } => self.kmalloc_command(size, count, &tag),
            Command::Kfree { tag, count } => self.kfree_command(&tag, count),
        }
    }

    /// Highest zone index a request may use, from a zone name.
    pub fn zone_by_name(&self, name: &str) -> MmResult<usize> {
        self.page_alloc
            .zones
            .iter()
            .position(|z| z.zone_type.name().eq_ignore_ascii_case(name) && z.is_populated())
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
    pub fn kernel_zone(&self) -> usize {
        self.page_alloc
            .zone_index(ZoneType::Normal)
            .expect("every arch has ZONE_NORMAL")
    }

    /// Highest zone of GFP_HIGHUSER_MOVABLE requests.
    pub fn user_zone(&self) -> usize {
        self.page_alloc
            .zone_index(ZoneType::Movable)
            .expect("every arch has ZONE_MOVABLE")
    }

    /// The page allocator's slow path for a kernel request: the low
    /// watermark, kswapd, min, direct reclaim. `None` when memory is exhausted.
    pub fn alloc_kernel_block(
        &mut self,
        order: Order,
        highest: usize,
        kind: PageKind,
    ) -> Option<Pfn> {
        self.alloc_pages_oom(order, highest, kind)
    }

    fn alloc_pages_command(
        &mut self,
        order: Order,
        count: u64,
        zone: Option<&str>,
        tag: &str,
    ) -> MmResult<()> {
        let highest = match zone {
            Some(name) => self.zone_by_name(name)?,
            None => self.kernel_zone(),
        };
        let mut taken = Vec::new();
        for _ in 0..count {
            match self.alloc_kernel_block(order, highest, PageKind::Kernel) {
                Some(pfn) => taken.push((pfn, order)),
                None => {
                    // All or nothing: give back what this command took.
                    let got = taken.len();
                    for (pfn, order) in taken.into_iter().rev() {
                        self.page_alloc.free(pfn, order).expect("block just taken");
                    }
                    return Err(MmError::NoMemory(format!(
                        "alloc_pages: page allocation failure: order:{}, got {got} of {count} blocks below the min watermark; gave them back",
                        order.0
                    )));
                }
            }
        }
        self.tagged_pages
            .entry(tag.to_string())
            .or_default()
            .extend(taken);
        Ok(())
    }

    fn free_pages_command(&mut self, tag: &str, count: Option<u64>) -> MmResult<()> {
        let blocks = self
            .tagged_pages
            .get_mut(tag)
            .ok_or_else(|| MmError::NotFound(format!("free_pages: no blocks tagged '{tag}'")))?;
        let n = count
            .unwrap_or(blocks.len() as u64)
            .min(blocks.len() as u64) as usize;
        let freed: Vec<_> = blocks.split_off(blocks.len() - n);
        if blocks.is_empty() {
            self.tagged_pages.remove(tag);
        }
        for (pfn, order) in freed.into_iter().rev() {
            self.page_alloc.free(pfn, order)?;
        }
        Ok(())
    }

    /// Advance the simulated clock. Idle ticks only move the clock.
    /// Each tick ages the active lists by one batch (second chance: clear
    /// referenced bits, deactivate the unreferenced) and lets kswapd run.
    /// Once the lists stop changing the remaining ticks only move the clock.
    pub fn tick(&mut self, ticks: u64) {
        self.clock_ns += ticks * TICK_NS;
        let longest = self
            .lru
            .zones
            .iter()
            .map(|z| z.active_anon.len())
            .max()
            .unwrap_or(0);
        // Two passes over the longest list settle every page.
        let rounds = ticks.min((2 * longest).div_ceil(vmscan::SWAP_CLUSTER_MAX) + 1);
        for _ in 0..rounds {
            for zone in 0..self.lru.zones.len() {
                if !self.lru.zones[zone].active_anon.is_empty() {
                    self.shrink_active_list(zone, vmscan::SWAP_CLUSTER_MAX);
                }
            }
            if self.lru.kswapd_woken {
                self.run_kswapd();
            }
        }
        self.run_kswapd();
    }

    /// Read a sysctl (`vm/swappiness` …) as its file shows it.
    pub fn read_sysctl(&self, name: &str) -> MmResult<String> {
        let value = match name {
            "vm/min_free_kbytes" => self.page_alloc.min_free_kbytes,
            "vm/watermark_scale_factor" => self.page_alloc.watermark_scale_factor,
            "vm/swappiness" => self.sysctl.swappiness,
            "vm/overcommit_memory" => self.sysctl.overcommit_memory,
            "vm/overcommit_ratio" => self.sysctl.overcommit_ratio,
            "kernel/ns_last_pid" => self.ns_last_pid as u64,
            _ => return Err(MmError::NotFound(format!("no sysctl {name}"))),
        };
        Ok(format!("{value}\n"))
    }

    /// Write a sysctl; values outside the kernel's range are EINVAL and
    /// change nothing.
    pub fn write_sysctl(&mut self, name: &str, text: &str) -> MmResult<()> {
        let result = self.write_sysctl_inner(name, text);
        if let Err(err) = &result {
            self.printk(format!("mmfs: sys/{name}: \"{}\": {err}", text.trim()));
        }
        result
    }

    fn write_sysctl_inner(&mut self, name: &str, text: &str) -> MmResult<()> {
        let trimmed = text.trim();
        let value: u64 = trimmed.parse().map_err(|_| {
            MmError::Invalid(format!("expected a decimal integer, got '{trimmed}'"))
        })?;
        let (lo, hi) = match name {
            "vm/min_free_kbytes" => (0, 1 << 40),
            "vm/watermark_scale_factor" => (1, 3000),
            "vm/swappiness" => (0, 200),
            "vm/overcommit_memory" => (0, 2),
            "vm/overcommit_ratio" => (0, i32::MAX as u64),
            _ => return Err(MmError::Permission(format!("sys/{name} is read-only"))),
        };
        if value < lo || value > hi {
            return Err(MmError::Invalid(format!("{value} out of range {lo}..{hi}")));
        }
        match name {
            "vm/min_free_kbytes" => {
                self.page_alloc.min_free_kbytes = value;
                self.page_alloc.setup_watermarks();
            }
            "vm/watermark_scale_factor" => {
                self.page_alloc.watermark_scale_factor = value;
                self.page_alloc.setup_watermarks();
            }
            "vm/swappiness" => self.sysctl.swappiness = value,
            "vm/overcommit_memory" => self.sysctl.overcommit_memory = value,
            _ => self.sysctl.overcommit_ratio = value,
        }
        Ok(())
    }

    /// Check every cross-subsystem invariant; tests call it after each command.
    pub fn check_invariants(&self) -> Result<(), String> {
        self.page_alloc.check_invariants()?;
        self.check_lru()?;
        self.check_slab()?;
        self.check_process_invariants()?;
        let tagged: u64 = self
            .tagged_pages
            .values()
            .flatten()
            .map(|(_, order)| order.pages())
            .sum();
        let managed = self.page_alloc.total_managed();
        let free = self.page_alloc.total_free();
        if free + tagged > managed {
            return Err(format!("free {free} + tagged {tagged} > managed {managed}"));
        }
        for (pfn, order) in self.tagged_pages.values().flatten() {
            if self.page_alloc.frames.state(*pfn) != page_alloc::FrameState::Allocated
                || self.page_alloc.frames.order(*pfn) != *order
            {
                return Err(format!(
                    "tagged block {pfn} is not allocated at order {}",
                    order.0
                ));
            }
        }
        Ok(())
    }
}

/// Boot a machine and check its invariants (unit tests across modules).
#[cfg(test)]
pub(crate) fn boot_checked(arch: Arch, mem_bytes: u64) -> Kernel {
    let k = Kernel::boot(MachineConfig { arch, mem_bytes }).expect("boot");
    k.check_invariants().expect("invariants after boot");
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kernel() -> Kernel {
        let k = Kernel::boot(MachineConfig::default()).unwrap();
        k.check_invariants().unwrap();
        k
    }

    fn run(k: &mut Kernel, line: &str) -> MmResult<()> {
        let r = k.execute_line(Scope::System, line);
        k.check_invariants().unwrap();
        r
    }

    #[test]
    fn alloc_then_free_restores_buddyinfo() {
        let mut k = kernel();
        let before = crate::procfs::buddyinfo(&k);
        run(&mut k, "alloc_pages 3 count=10 tag=x").unwrap();
        assert_ne!(crate::procfs::buddyinfo(&k), before);
        run(&mut k, "free_pages tag=x").unwrap();
        assert_eq!(crate::procfs::buddyinfo(&k), before);
    }

    #[test]
    fn failed_alloc_gives_back_what_it_took() {
        let mut k = kernel();
        let free = k.page_alloc.total_free();
        let err = run(&mut k, "alloc_pages 10 count=100000 tag=big").unwrap_err();
        assert_eq!(err.errno(), libc::ENOMEM);
        // Every block taken came back; reclaim (the slab shrinker) may have
        // freed more on the way, as on Linux.
        assert!(k.tagged_pages.is_empty());
        assert!(k.page_alloc.total_free() >= free);
        assert!(
            k.dmesg
                .last()
                .unwrap()
                .contains("alloc_pages 10 count=100000")
        );
    }

    #[test]
    fn bad_line_logs_and_changes_nothing() {
        let mut k = kernel();
        let before = crate::procfs::buddyinfo(&k);
        assert_eq!(run(&mut k, "bogus").unwrap_err().errno(), libc::EINVAL);
        assert!(k.dmesg.last().unwrap().contains("\"bogus\""));
        assert_eq!(
            run(&mut k, "free_pages tag=nope").unwrap_err().errno(),
            libc::ENOENT
        );
        assert_eq!(crate::procfs::buddyinfo(&k), before);
    }

    #[test]
    fn free_pages_newest_first() {
        let mut k = kernel();
        run(&mut k, "alloc_pages 0 count=3 tag=t").unwrap();
        let blocks = k.tagged_pages["t"].clone();
        run(&mut k, "free_pages tag=t count=1").unwrap();
        assert_eq!(k.tagged_pages["t"], blocks[..2]);
    }

    #[test]
    fn zone_option_limits_the_zonelist() {
        let mut k = kernel();
        run(&mut k, "alloc_pages 0 zone=DMA tag=d").unwrap();
        let (pfn, _) = k.tagged_pages["d"][0];
        assert_eq!(k.page_alloc.zone_of(pfn), Some(0));
        assert_eq!(
            run(&mut k, "alloc_pages 0 zone=HighMem")
                .unwrap_err()
                .errno(),
            libc::EINVAL
        );
    }

    #[test]
    fn sysctl_ranges() {
        let mut k = kernel();
        assert!(k.write_sysctl("vm/swappiness", "201").is_err());
        k.write_sysctl("vm/swappiness", "100\n").unwrap();
        assert_eq!(k.read_sysctl("vm/swappiness").unwrap(), "100\n");
        let low = k.page_alloc.zones[1].watermark.low;
        k.write_sysctl("vm/min_free_kbytes", "90000").unwrap();
        assert!(k.page_alloc.zones[1].watermark.low > low);
        assert!(k.write_sysctl("vm/watermark_scale_factor", "0").is_err());
        assert!(k.write_sysctl("vm/overcommit_memory", "3").is_err());
    }

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

    #[test]
    fn same_commands_same_state() {
        let script = [
            "alloc_pages 2 count=7 tag=a",
            "alloc_pages 0 count=5 tag=b",
            "free_pages tag=a count=3",
            "tick 5",
        ];
        let mut a = kernel();
        let mut b = kernel();
        for line in script {
            run(&mut a, line).unwrap();
            run(&mut b, line).unwrap();
        }
        assert_eq!(crate::procfs::buddyinfo(&a), crate::procfs::buddyinfo(&b));
    }
}
