//! sysfs files of the simulated machine: `/sys/devices/system/cpu`
//! (drivers/base/cpu.c, drivers/base/topology.c) for [`NR_CPUS`] cores of
//! one package, one thread each. The block devices' sysfs files are in
//! [`super::diskstats`].

use crate::mm::types::Arch;
use crate::mm::{Kernel, NR_CPUS};

// Masks print as one hex word.
const _: () = assert!(NR_CPUS >= 1 && NR_CPUS <= 32);

/// A file under `devices/system/cpu/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuFile {
    /// `online`, `possible`, `present`: every CPU.
    AllList,
    /// `offline`, `isolated`: none.
    NoneList,
    /// `kernel_max`: CONFIG_NR_CPUS - 1.
    KernelMax,
    /// `cpuN/online` (not for cpu0, which x86 cannot unplug).
    Online,
    /// `cpuN/topology/FILE`.
    Topology(Topology),
}

/// The files of `cpuN/topology/` (Documentation/admin-guide/cputopology.rst).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Topology {
    /// `core_id`: the CPU's own number.
    CoreId,
    /// `physical_package_id`, `die_id`: 0.
    Zero,
    /// `cluster_id`: none known (65535, as x86 prints it).
    ClusterId,
    /// `thread_siblings`, `core_cpus`, `cluster_cpus`: the CPU alone.
    SelfMask,
    /// Their `_list` forms.
    SelfList,
    /// `core_siblings`, `die_cpus`, `package_cpus`: every CPU.
    AllMask,
    /// Their `_list` forms.
    AllList,
}

/// Every file of a `cpuN/topology/` directory.
pub const TOPOLOGY_FILES: &[(&str, Topology)] = &[
    ("cluster_cpus", Topology::SelfMask),
    ("cluster_cpus_list", Topology::SelfList),
    ("cluster_id", Topology::ClusterId),
    ("core_cpus", Topology::SelfMask),
    ("core_cpus_list", Topology::SelfList),
    ("core_id", Topology::CoreId),
    ("core_siblings", Topology::AllMask),
    ("core_siblings_list", Topology::AllList),
    ("die_cpus", Topology::AllMask),
    ("die_cpus_list", Topology::AllList),
    ("die_id", Topology::Zero),
    ("package_cpus", Topology::AllMask),
    ("package_cpus_list", Topology::AllList),
    ("physical_package_id", Topology::Zero),
    ("thread_siblings", Topology::SelfMask),
    ("thread_siblings_list", Topology::SelfList),
];

/// The files directly under `devices/system/cpu/`.
pub const CPU_DIR_FILES: &[(&str, CpuFile)] = &[
    ("isolated", CpuFile::NoneList),
    ("kernel_max", CpuFile::KernelMax),
    ("offline", CpuFile::NoneList),
    ("online", CpuFile::AllList),
    ("possible", CpuFile::AllList),
    ("present", CpuFile::AllList),
];

/// A CPU list as `%*pbl` prints it ("0-1", "0").
pub fn cpu_list(first: u64, last: u64) -> String {
    if first == last {
        first.to_string()
    } else {
        format!("{first}-{last}")
    }
}

/// Render `cpu`'s file (the CPU number matters for per-CPU files only).
pub fn render_cpu(kernel: &Kernel, cpu: u64, file: CpuFile) -> String {
    let all_mask = (1u64 << NR_CPUS) - 1;
    let text = match file {
        CpuFile::AllList => cpu_list(0, NR_CPUS - 1),
        CpuFile::NoneList => String::new(),
        // CONFIG_NR_CPUS: 8192 would be a distro x86_64 kernel; the
        // defconfigs' 64 (x86_64) and 8 (i386) fit a small machine.
        CpuFile::KernelMax => match kernel.config.arch {
            Arch::X86_64 => "63".into(),
            Arch::I386 => "7".into(),
        },
        CpuFile::Online => "1".into(),
        CpuFile::Topology(t) => match t {
            Topology::CoreId => cpu.to_string(),
            Topology::Zero => "0".into(),
            Topology::ClusterId => "65535".into(),
            Topology::SelfMask => format!("{:x}", 1u64 << cpu),
            Topology::SelfList => cpu.to_string(),
            Topology::AllMask => format!("{all_mask:x}"),
            Topology::AllList => cpu_list(0, NR_CPUS - 1),
        },
    };
    text + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mm::MachineConfig;

    #[test]
    fn two_cores_of_one_package() {
        let k = crate::ctl::Machine::boot(MachineConfig::default()).unwrap();
        assert_eq!(render_cpu(&k, 0, CpuFile::AllList), "0-1\n");
        assert_eq!(render_cpu(&k, 0, CpuFile::NoneList), "\n");
        let topo = |cpu, t| render_cpu(&k, cpu, CpuFile::Topology(t));
        assert_eq!(topo(1, Topology::SelfMask), "2\n");
        assert_eq!(topo(1, Topology::SelfList), "1\n");
        assert_eq!(topo(1, Topology::AllMask), "3\n");
        assert_eq!(topo(0, Topology::AllList), "0-1\n");
        assert_eq!(topo(1, Topology::CoreId), "1\n");
        assert_eq!(cpu_list(0, 0), "0");
    }
}
