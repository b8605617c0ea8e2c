//! The `/proc/sys` tunables the simulation serves, in one table (Linux:
//! kernel/sysctl.c and mm/'s `vm_table`, each entry's `proc_handler`).
//!
//! The table drives everything: the files of the tree, what a read shows,
//! which writes apply, their range and what a write sets off
//! (`min_free_kbytes_sysctl_handler` recomputes the watermarks). Every file
//! of Linux 6.18's /proc/sys/vm is here: the ones mmfs does not model read
//! the kernel's default (or the value the kernel derives for this machine)
//! and refuse writes with EPERM.

use super::Kernel;
use super::error::{MmError, MmResult};

/// The `/proc/sys/vm` tunables not owned by a subsystem.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sysctl {
    /// vm.swappiness, 0..=200.
    pub swappiness: u64,
    /// vm.overcommit_memory, 0..=2.
    pub overcommit_memory: u64,
    /// vm.overcommit_ratio, >= 0.
    pub overcommit_ratio: u64,
    /// vm.dirty_ratio, 0..=100.
    pub dirty_ratio: u64,
    /// vm.dirty_background_ratio, 0..=100.
    pub dirty_background_ratio: u64,
    /// vm.dirty_expire_centisecs.
    pub dirty_expire_centisecs: u64,
    /// vm.dirty_writeback_centisecs.
    pub dirty_writeback_centisecs: u64,
    /// vm.vfs_cache_pressure: how hard reclaim presses dentries and inodes
    /// against the page cache (100 = fair).
    pub vfs_cache_pressure: u64,
    /// vm.page-cluster, 0..=31: swap readahead reads up to 2^n pages.
    pub page_cluster: u64,
}

impl Default for Sysctl {
    fn default() -> Self {
        Sysctl {
            swappiness: 60,
            overcommit_memory: 0,
            overcommit_ratio: 50,
            dirty_ratio: 20,
            dirty_background_ratio: 10,
            dirty_expire_centisecs: 3000,
            dirty_writeback_centisecs: 500,
            vfs_cache_pressure: 100,
            page_cluster: super::swap_state::DEFAULT_PAGE_CLUSTER,
        }
    }
}

/// What a read of an entry shows.
#[derive(Clone, Copy)]
pub enum Show {
    /// A number of the simulation.
    Num(fn(&Kernel) -> u64),
    /// Text the kernel derives (one line, without its newline).
    Text(fn(&Kernel) -> String),
    /// Linux 6.18's default of a tunable mmfs does not model.
    Fixed(&'static str),
}

/// One entry of the table (`struct ctl_table`).
pub struct CtlTable {
    /// Path under `/proc/sys` (`vm/swappiness`).
    pub procname: &'static str,
    /// File mode, as Linux's (0644, 0444, write-only 0200, 0600).
    pub mode: u16,
    /// Smallest value a write may set (`extra1`).
    pub min: u64,
    /// Largest value a write may set (`extra2`).
    pub max: u64,
    /// The current value.
    pub show: Show,
    /// The `proc_handler`'s effect of a write in range; None: writes are
    /// refused (EPERM for the modes that allow them).
    pub set: Option<fn(&mut Kernel, u64)>,
}

impl CtlTable {
    /// True when writes apply (the tunables mmfs models).
    pub fn writable(&self) -> bool {
        self.set.is_some()
    }

    /// A value the kernel derives for this machine; writes refused.
    const fn derived(procname: &'static str, show: Show) -> CtlTable {
        CtlTable {
            procname,
            mode: 0o644,
            min: 0,
            max: 0,
            show,
            set: None,
        }
    }

    /// An unmodelled tunable: Linux's mode and default, writes refused.
    const fn fixed(procname: &'static str, mode: u16, value: &'static str) -> CtlTable {
        CtlTable {
            procname,
            mode,
            min: 0,
            max: 0,
            show: Show::Fixed(value),
            set: None,
        }
    }
}

/// `INT_MAX`: the top of `proc_dointvec_minmax` ranges.
const INT_MAX: u64 = i32::MAX as u64;

/// Every sysctl the tree serves, in directory order.
pub static SYSCTL_TABLE: &[CtlTable] = &[
    CtlTable {
        procname: "vm/min_free_kbytes",
        mode: 0o644,
        min: 0,
        max: INT_MAX,
        show: Show::Num(|k| k.page_alloc.min_free_kbytes),
        set: Some(|k, v| {
            k.page_alloc.min_free_kbytes = v;
            k.page_alloc.setup_watermarks();
        }),
    },
    CtlTable {
        procname: "vm/watermark_scale_factor",
        mode: 0o644,
        min: 1,
        max: 3000,
        show: Show::Num(|k| k.page_alloc.watermark_scale_factor),
        set: Some(|k, v| {
            k.page_alloc.watermark_scale_factor = v;
            k.page_alloc.setup_watermarks();
        }),
    },
    CtlTable {
        procname: "vm/swappiness",
        mode: 0o644,
        min: 0,
        max: 200,
        show: Show::Num(|k| k.sysctl.swappiness),
        set: Some(|k, v| k.sysctl.swappiness = v),
    },
    CtlTable {
        procname: "vm/overcommit_memory",
        mode: 0o644,
        min: 0,
        max: 2,
        show: Show::Num(|k| k.sysctl.overcommit_memory),
        set: Some(|k, v| k.sysctl.overcommit_memory = v),
    },
    CtlTable {
        procname: "vm/overcommit_ratio",
        mode: 0o644,
        min: 0,
        max: INT_MAX,
        show: Show::Num(|k| k.sysctl.overcommit_ratio),
        set: Some(|k, v| k.sysctl.overcommit_ratio = v),
    },
    CtlTable::derived(
        "vm/admin_reserve_kbytes",
        Show::Num(|k| k.procs.admin_reserve_pages * 4),
    ),
    CtlTable::derived(
        "vm/user_reserve_kbytes",
        Show::Num(|k| k.procs.user_reserve_pages * 4),
    ),
    CtlTable::derived(
        "vm/max_map_count",
        Show::Num(|_| super::mmap::MAX_MAP_COUNT as u64),
    ),
    CtlTable::derived(
        "vm/mmap_min_addr",
        Show::Num(|_| super::mmap::MMAP_MIN_ADDR),
    ),
    CtlTable::derived(
        "vm/lowmem_reserve_ratio",
        // One ratio per configured zone (DMA, DMA32, Normal, Movable,
        // Device on x86_64; DMA, Normal, HighMem, Movable on i386), tab
        // separated as proc_dointvec prints arrays.
        Show::Text(|k| match k.config.arch {
            super::types::Arch::X86_64 => "256\t256\t32\t0\t0".to_string(),
            super::types::Arch::I386 => "256\t32\t0\t0".to_string(),
        }),
    ),
    CtlTable {
        // sysctl_compaction_handler: any value but 1 is EINVAL.
        procname: "vm/compact_memory",
        mode: 0o200,
        min: 1,
        max: 1,
        show: Show::Fixed(""),
        set: Some(|k, _| k.compact_nodes()),
    },
    CtlTable::fixed("vm/compact_unevictable_allowed", 0o644, "1"),
    CtlTable {
        procname: "vm/compaction_proactiveness",
        mode: 0o644,
        min: 0,
        max: 100,
        show: Show::Num(|k| k.compaction.proactiveness),
        set: Some(|k, v| k.compaction.proactiveness = v),
    },
    CtlTable::fixed("vm/defrag_mode", 0o644, "0"),
    CtlTable::fixed("vm/dirty_background_bytes", 0o644, "0"),
    CtlTable {
        procname: "vm/dirty_background_ratio",
        mode: 0o644,
        min: 0,
        max: 100,
        show: Show::Num(|k| k.sysctl.dirty_background_ratio),
        set: Some(|k, v| k.sysctl.dirty_background_ratio = v),
    },
    CtlTable::fixed("vm/dirty_bytes", 0o644, "0"),
    CtlTable {
        procname: "vm/dirty_expire_centisecs",
        mode: 0o644,
        min: 0,
        max: INT_MAX,
        show: Show::Num(|k| k.sysctl.dirty_expire_centisecs),
        set: Some(|k, v| k.sysctl.dirty_expire_centisecs = v),
    },
    CtlTable {
        procname: "vm/dirty_ratio",
        mode: 0o644,
        min: 0,
        max: 100,
        show: Show::Num(|k| k.sysctl.dirty_ratio),
        set: Some(|k, v| k.sysctl.dirty_ratio = v),
    },
    CtlTable {
        procname: "vm/dirty_writeback_centisecs",
        mode: 0o644,
        min: 0,
        max: INT_MAX,
        show: Show::Num(|k| k.sysctl.dirty_writeback_centisecs),
        set: Some(|k, v| k.sysctl.dirty_writeback_centisecs = v),
    },
    CtlTable::fixed("vm/dirtytime_expire_seconds", 0o644, "43200"),
    // Write-only: 1 drops the clean page cache, 2 the reclaimable slab
    // objects, 3 both (fs/drop_caches.c).
    CtlTable {
        procname: "vm/drop_caches",
        mode: 0o200,
        min: 1,
        max: 3,
        show: Show::Fixed(""),
        set: Some(|k, v| k.drop_caches(v)),
    },
    CtlTable {
        procname: "vm/extfrag_threshold",
        mode: 0o644,
        min: 0,
        max: 1000,
        show: Show::Num(|k| k.compaction.extfrag_threshold),
        set: Some(|k, v| k.compaction.extfrag_threshold = v),
    },
    CtlTable::fixed("vm/hugetlb_optimize_vmemmap", 0o644, "0"),
    CtlTable::fixed("vm/hugetlb_shm_group", 0o644, "0"),
    CtlTable::fixed("vm/laptop_mode", 0o644, "0"),
    CtlTable::fixed("vm/legacy_va_layout", 0o644, "0"),
    CtlTable::fixed("vm/memfd_noexec", 0o644, "0"),
    CtlTable::fixed("vm/min_slab_ratio", 0o644, "5"),
    CtlTable::fixed("vm/min_unmapped_ratio", 0o644, "1"),
    CtlTable::fixed("vm/mmap_rnd_bits", 0o600, "28"),
    CtlTable::fixed("vm/mmap_rnd_compat_bits", 0o600, "8"),
    CtlTable::fixed("vm/nr_hugepages", 0o644, "0"),
    CtlTable::fixed("vm/nr_hugepages_mempolicy", 0o644, "0"),
    CtlTable::fixed("vm/nr_overcommit_hugepages", 0o644, "0"),
    CtlTable::fixed("vm/numa_stat", 0o644, "1"),
    CtlTable::fixed("vm/numa_zonelist_order", 0o644, "Node"),
    CtlTable::fixed("vm/oom_dump_tasks", 0o644, "1"),
    CtlTable::fixed("vm/oom_kill_allocating_task", 0o644, "0"),
    CtlTable::fixed("vm/overcommit_kbytes", 0o644, "0"),
    CtlTable {
        // Swap readahead's order (mm/swap_state.rs); Linux 6.18 caps it
        // at page_cluster_max, 31.
        procname: "vm/page-cluster",
        mode: 0o644,
        min: 0,
        max: super::swap_state::PAGE_CLUSTER_MAX,
        show: Show::Num(|k| k.sysctl.page_cluster),
        set: Some(|k, v| k.sysctl.page_cluster = v),
    },
    CtlTable::fixed("vm/page_lock_unfairness", 0o644, "5"),
    CtlTable::fixed("vm/panic_on_oom", 0o644, "0"),
    CtlTable::fixed("vm/percpu_pagelist_high_fraction", 0o644, "0"),
    CtlTable::fixed("vm/shrink_inodes_with_pagecache", 0o644, "0"),
    CtlTable::fixed("vm/stat_interval", 0o644, "1"),
    CtlTable::fixed("vm/stat_refresh", 0o600, ""),
    CtlTable::fixed("vm/unprivileged_userfaultfd", 0o644, "0"),
    CtlTable {
        procname: "vm/vfs_cache_pressure",
        mode: 0o644,
        min: 0,
        max: INT_MAX,
        show: Show::Num(|k| k.sysctl.vfs_cache_pressure),
        set: Some(|k, v| k.sysctl.vfs_cache_pressure = v),
    },
    CtlTable::fixed("vm/vfs_cache_pressure_denom", 0o644, "100"),
    CtlTable::fixed("vm/watermark_boost_factor", 0o644, "15000"),
    CtlTable::fixed("vm/zone_reclaim_mode", 0o644, "0"),
    CtlTable {
        procname: "kernel/ns_last_pid",
        mode: 0o444,
        min: 0,
        max: 0,
        show: Show::Num(|k| u64::from(k.ns_last_pid)),
        set: None,
    },
];

/// The paths of the tunables that take writes and read back, in table
/// order.
pub fn writable_sysctls() -> impl Iterator<Item = &'static str> {
    // Tunables read back what was written; write-only actions
    // (drop_caches) are not among them.
    SYSCTL_TABLE
        .iter()
        .filter(|t| t.writable() && t.mode & 0o444 != 0)
        .map(|t| t.procname)
}

/// The table entry for `path`.
pub fn find_sysctl(path: &str) -> Option<&'static CtlTable> {
    SYSCTL_TABLE.iter().find(|t| t.procname == path)
}

impl Kernel {
    /// Read a sysctl (`vm/swappiness` …) as its file shows it.
    pub fn sysctl_read(&self, path: &str) -> MmResult<String> {
        let entry =
            find_sysctl(path).ok_or_else(|| MmError::NotFound(format!("no sysctl {path}")))?;
        Ok(match entry.show {
            // Write-only files (drop_caches, compact_memory) have nothing to show.
            Show::Fixed("") => String::new(),
            Show::Fixed(text) => format!("{text}\n"),
            Show::Num(get) => format!("{}\n", get(self)),
            Show::Text(get) => format!("{}\n", get(self)),
        })
    }

    /// Write a sysctl (`proc_dointvec_minmax`): a decimal integer in the
    /// entry's range, else EINVAL and nothing changes; EPERM when read-only.
    pub fn sysctl_write(&mut self, path: &str, text: &str) -> MmResult<()> {
        let entry =
            find_sysctl(path).ok_or_else(|| MmError::NotFound(format!("no sysctl {path}")))?;
        let Some(set) = entry.set else {
            return Err(MmError::Permission(if entry.mode & 0o200 != 0 {
                format!(
                    "vm tunable {path} is not modelled by mmfs (it reads Linux 6.18's default); writes are refused"
                )
            } else {
                format!("sys/{path} is read-only")
            }));
        };
        let trimmed = text.trim();
        let value: u64 = trimmed.parse().map_err(|_| {
            MmError::Invalid(format!("expected a decimal integer, got '{trimmed}'"))
        })?;
        if value < entry.min || value > entry.max {
            return Err(MmError::Invalid(format!(
                "{value} out of range {}..{}",
                entry.min, entry.max
            )));
        }
        set(self, value);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mm::MachineConfig;

    #[test]
    fn ranges_and_handlers() {
        let mut k = Kernel::boot(MachineConfig::default()).unwrap();
        assert!(k.sysctl_write("vm/swappiness", "201").is_err());
        k.sysctl_write("vm/swappiness", "100\n").unwrap();
        assert_eq!(k.sysctl_read("vm/swappiness").unwrap(), "100\n");
        let low = k.page_alloc.zones[1].watermark.low;
        k.sysctl_write("vm/min_free_kbytes", "90000").unwrap();
        assert!(k.page_alloc.zones[1].watermark.low > low);
        assert!(k.sysctl_write("vm/watermark_scale_factor", "0").is_err());
        assert!(k.sysctl_write("vm/overcommit_memory", "3").is_err());
        // min_free_kbytes is an int: 0..INT_MAX, as proc_dointvec_minmax.
        assert_eq!(
            k.sysctl_write("vm/min_free_kbytes", "2147483648")
                .unwrap_err()
                .errno(),
            libc::EINVAL
        );
        assert_eq!(
            k.sysctl_write("kernel/ns_last_pid", "5")
                .unwrap_err()
                .errno(),
            libc::EPERM
        );
        // The last kernel thread of the boot (kswapd0).
        assert_eq!(k.sysctl_read("kernel/ns_last_pid").unwrap(), "5\n");
    }

    #[test]
    fn names_are_unique() {
        for (i, a) in SYSCTL_TABLE.iter().enumerate() {
            assert!(SYSCTL_TABLE[..i].iter().all(|b| b.procname != a.procname));
            assert!(!a.writable() || a.mode & 0o200 != 0, "{}", a.procname);
        }
    }
}
