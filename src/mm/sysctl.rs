//! The `/proc/sys` tunables the simulation serves, in one table (Linux:
//! kernel/sysctl.c and mm/'s `vm_table`, each entry's `proc_handler`).
//!
//! The table drives everything: the files of the tree, what a read shows,
//! which writes apply, their range and what a write sets off
//! (`min_free_kbytes_sysctl_handler` recomputes the watermarks).

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

/// One entry of the table (`struct ctl_table`).
pub struct CtlTable {
    /// Path under `/proc/sys` (`vm/swappiness`).
    pub procname: &'static str,
    /// File mode: 0644 when writes apply, 0444 when read-only.
    pub mode: u16,
    /// Smallest value a write may set (`extra1`).
    pub min: u64,
    /// Largest value a write may set (`extra2`).
    pub max: u64,
    /// The current value.
    pub get: fn(&Kernel) -> u64,
    /// The `proc_handler`'s effect of a write in range; None: read-only.
    pub set: Option<fn(&mut Kernel, u64)>,
}

impl CtlTable {
    /// True when writes apply.
    pub fn writable(&self) -> bool {
        self.set.is_some()
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
        get: |k| k.page_alloc.min_free_kbytes,
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
        get: |k| k.page_alloc.watermark_scale_factor,
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
        get: |k| k.sysctl.swappiness,
        set: Some(|k, v| k.sysctl.swappiness = v),
    },
    CtlTable {
        procname: "vm/overcommit_memory",
        mode: 0o644,
        min: 0,
        max: 2,
        get: |k| k.sysctl.overcommit_memory,
        set: Some(|k, v| k.sysctl.overcommit_memory = v),
    },
    CtlTable {
        procname: "vm/overcommit_ratio",
        mode: 0o644,
        min: 0,
        max: INT_MAX,
        get: |k| k.sysctl.overcommit_ratio,
        set: Some(|k, v| k.sysctl.overcommit_ratio = v),
    },
    CtlTable {
        procname: "kernel/ns_last_pid",
        mode: 0o444,
        min: 0,
        max: 0,
        get: |k| u64::from(k.ns_last_pid),
        set: None,
    },
];

/// The paths of the sysctls that take writes, in table order.
pub fn writable_sysctls() -> impl Iterator<Item = &'static str> {
    SYSCTL_TABLE
        .iter()
        .filter(|t| t.writable())
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
        Ok(format!("{}\n", (entry.get)(self)))
    }

    /// Write a sysctl (`proc_dointvec_minmax`): a decimal integer in the
    /// entry's range, else EINVAL and nothing changes; EPERM when read-only.
    pub fn sysctl_write(&mut self, path: &str, text: &str) -> MmResult<()> {
        let entry =
            find_sysctl(path).ok_or_else(|| MmError::NotFound(format!("no sysctl {path}")))?;
        let Some(set) = entry.set else {
            return Err(MmError::Permission(format!("sys/{path} is read-only")));
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
        assert_eq!(k.sysctl_read("kernel/ns_last_pid").unwrap(), "1\n");
    }

    #[test]
    fn names_are_unique() {
        for (i, a) in SYSCTL_TABLE.iter().enumerate() {
            assert!(SYSCTL_TABLE[..i].iter().all(|b| b.procname != a.procname));
            assert_eq!(a.writable(), a.mode & 0o200 != 0, "{}", a.procname);
        }
    }
}
