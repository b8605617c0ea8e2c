//! /proc/stat (fs/proc/stat.c `show_stat`), enough for procps `vmstat`.
//!
//! Model: two CPUs and a periodic tick at HZ = USER_HZ = 100, so one
//! simulated jiffy (`tick`, 10 ms) is one clock tick of every CPU.
//! - cpu lines: each CPU lived `clock_ns / 10 ms` ticks; user, system and
//!   iowait are what the simulated tasks on it did (mm/cputime.rs), idle
//!   is what is left. nice, irq, softirq, steal and guest stay 0.
//! - intr: the only interrupts are the local APIC timer ticks (one per CPU
//!   per jiffy). They count in the total but, as on Linux, have no IRQ
//!   number, so the per-IRQ columns are 0. The number of columns is
//!   `nr_irqs` as `arch_probe_nr_irqs` computes it for one 24-pin IO-APIC.
//! - ctxt, procs_running, procs_blocked come from the scheduler counters of
//!   [`NodeStats`](crate::mm::node_stats::NodeStats); processes is
//!   `Kernel::forks`; btime is the fixed [`BOOT_TIME`].
//! - softirq: no softirq work is simulated, all 0 (10 types).

use std::fmt::Write;

use crate::mm::{BOOT_TIME, Kernel, NR_CPUS, TICK_NS};

/// GSIs of the simulated IO-APIC (one chip, 24 pins).
const GSI_TOP: u64 = 24;
/// NR_IRQS_LEGACY: the ISA interrupts.
const NR_IRQS_LEGACY: u64 = 16;
/// NR_VECTORS on x86.
const NR_VECTORS: u64 = 256;
/// NR_SOFTIRQS: HI TIMER NET_TX NET_RX BLOCK IRQ_POLL TASKLET SCHED HRTIMER RCU.
const NR_SOFTIRQS: usize = 10;

/// `arch_probe_nr_irqs` (arch/x86/kernel/apic/vector.c) with PCI MSI:
/// `min(NR_VECTORS * cpus, gsi_top + legacy + 8 * cpus + 16 * gsi_top)`.
pub fn nr_irqs(cpus: u64) -> u64 {
    let mut nr = GSI_TOP + NR_IRQS_LEGACY + 8 * cpus;
    nr += if GSI_TOP <= NR_IRQS_LEGACY {
        8 * cpus
    } else {
        GSI_TOP * 16
    };
    nr.min(NR_VECTORS * cpus)
}

/// The ten columns of one cpu line, in USER_HZ ticks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuTimes {
    /// user
    pub user: u64,
    /// nice
    pub nice: u64,
    /// system
    pub system: u64,
    /// idle
    pub idle: u64,
    /// iowait
    pub iowait: u64,
    /// irq
    pub irq: u64,
    /// softirq
    pub softirq: u64,
    /// steal
    pub steal: u64,
    /// guest
    pub guest: u64,
    /// guest_nice
    pub guest_nice: u64,
}

impl CpuTimes {
    fn columns(&self) -> [u64; 10] {
        [
            self.user,
            self.nice,
            self.system,
            self.idle,
            self.iowait,
            self.irq,
            self.softirq,
            self.steal,
            self.guest,
            self.guest_nice,
        ]
    }
}

/// The cpu times of each CPU: user, system and iowait as accounted on the
/// clock ([`crate::mm::cputime`]), idle the rest, in USER_HZ ticks.
pub fn cpu_times(kernel: &Kernel) -> Vec<CpuTimes> {
    let elapsed = kernel.jiffies();
    kernel
        .sched
        .cpus
        .iter()
        .map(|c| {
            let user = c.user_ns / TICK_NS;
            let system = c.system_ns / TICK_NS;
            let iowait = c.iowait_ns / TICK_NS;
            CpuTimes {
                user,
                system,
                iowait,
                idle: elapsed.saturating_sub(user + system + iowait),
                ..CpuTimes::default()
            }
        })
        .collect()
}

/// Render /proc/stat.
pub fn stat(kernel: &Kernel) -> String {
    let stats = kernel.node_stats();
    let cpus = cpu_times(kernel);
    let mut out = String::with_capacity(2048);
    let mut total = [0u64; 10];
    for cpu in &cpus {
        for (sum, v) in total.iter_mut().zip(cpu.columns()) {
            *sum = sum.saturating_add(v);
        }
    }
    out.push_str("cpu ");
    for v in total {
        let _ = write!(out, " {v}");
    }
    out.push('\n');
    for (i, cpu) in cpus.iter().enumerate() {
        let _ = write!(out, "cpu{i}");
        for v in cpu.columns() {
            let _ = write!(out, " {v}");
        }
        out.push('\n');
    }
    // Local timer interrupts: one per CPU per jiffy.
    let jiffies = kernel.clock_ns / TICK_NS;
    let _ = write!(out, "intr {}", jiffies.saturating_mul(NR_CPUS));
    for _ in 0..nr_irqs(NR_CPUS) {
        out.push_str(" 0");
    }
    let _ = write!(
        out,
        "\nctxt {}\nbtime {}\nprocesses {}\nprocs_running {}\nprocs_blocked {}\n",
        stats.nr_context_switches, BOOT_TIME, kernel.forks, stats.nr_running, stats.nr_iowait
    );
    out.push_str("softirq 0");
    for _ in 0..NR_SOFTIRQS {
        out.push_str(" 0");
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctl::Scope;
    use crate::mm::MachineConfig;
    use crate::procfs::meminfo::golden::mask_free;

    const CAPTURE: &str = include_str!("../../tests/reference/linux-samples/stat");

    fn fields(line: &str) -> Vec<u64> {
        line.split(' ')
            .skip(1)
            .filter(|w| !w.is_empty())
            .map(|w| w.parse().unwrap())
            .collect()
    }

    #[test]
    fn lines_have_the_captures_shape() {
        let k = crate::ctl::Machine::boot(MachineConfig::default()).unwrap();
        let text = stat(&k);
        assert_eq!(text.lines().count(), CAPTURE.lines().count());
        for (ours, theirs) in text.lines().zip(CAPTURE.lines()) {
            if ours.starts_with("intr ") {
                // The capture's machine had 424 IRQs, ours 440.
                assert_eq!(fields(ours).len(), 1 + nr_irqs(2) as usize);
                assert_eq!(nr_irqs(2), 440);
                continue;
            }
            assert_eq!(mask_free(ours), mask_free(theirs));
        }
        assert!(text.starts_with("cpu  "));
        assert!(text.contains(&format!("\nbtime {BOOT_TIME}\n")));
    }

    #[test]
    fn cpu_times_follow_the_clock() {
        let mut k = crate::ctl::Machine::boot(MachineConfig {
            mem_bytes: 2 << 30,
            ..MachineConfig::default()
        })
        .unwrap();
        let pid = k.execute_line(Scope::System, "spawn w").unwrap().unwrap();
        k.execute_line(Scope::Process(pid), "mmap 1G name=h")
            .unwrap();
        k.execute_line(Scope::Process(pid), "touch h 1G").unwrap();
        k.execute_line(Scope::System, "tick 250").unwrap();
        k.check_invariants().unwrap();
        let text = stat(&k);
        let lines: Vec<&str> = text.lines().collect();
        let elapsed = k.clock_ns / TICK_NS;
        let cpu = |i: usize| fields(lines[1 + i]);
        let mine = cpu(crate::mm::cputime::task_cpu(Some(pid)));
        // 262144 pages: stores at 100 ns (2.6 ticks) and faults at 250 ns
        // (6.6 ticks), on the process's CPU.
        assert!(mine[0] >= 2 && mine[2] >= 6, "{mine:?}");
        let all = fields(lines[0]);
        for (col, sum) in all.iter().enumerate() {
            assert_eq!(*sum, cpu(0)[col] + cpu(1)[col]);
        }
        // Every CPU accounts for the elapsed ticks (less rounding of 3
        // columns).
        for i in 0..2 {
            let sum: u64 = cpu(i).iter().sum();
            assert!(sum <= elapsed && sum + 3 >= elapsed, "{sum} {elapsed}");
        }
        assert_eq!(fields(lines[3])[0], 2 * elapsed);
        assert_eq!(
            fields(text.lines().find(|l| l.starts_with("processes")).unwrap()),
            [k.forks]
        );
    }
}
