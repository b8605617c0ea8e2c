//! /proc/cpuinfo of the simulated CPUs (arch/x86/kernel/cpu/proc.c
//! `show_cpuinfo`): [`NR_CPUS`] cores of one package, one thread each, a
//! fixed model so that the same machine always reads the same.

use std::fmt::Write;

use crate::mm::types::Arch;
use crate::mm::{Kernel, NR_CPUS};

/// The simulated CPU model (what CPUID would report).
struct CpuModel {
    vendor: &'static str,
    family: u32,
    model: u32,
    name: &'static str,
    stepping: u32,
    mhz: u32,
    cache_kb: u32,
    cpuid_level: u32,
    flags: &'static str,
    phys_bits: u32,
    virt_bits: u32,
}

/// An x86_64 core of the SSE4.2/AVX generation: what the fault and copy
/// costs of `mm::cputime` stand for.
const X86_64: CpuModel = CpuModel {
    vendor: "GenuineIntel",
    family: 6,
    model: 85,
    name: "mmfs simulated CPU @ 2.00GHz",
    stepping: 7,
    mhz: 2000,
    cache_kb: 16384,
    cpuid_level: 13,
    flags: "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush \
            mmx fxsr sse sse2 ht syscall nx pdpe1gb rdtscp lm constant_tsc rep_good nopl \
            xtopology cpuid tsc_known_freq pni pclmulqdq ssse3 fma cx16 pcid sse4_1 sse4_2 \
            x2apic movbe popcnt tsc_deadline_timer aes xsave avx f16c rdrand lahf_lm abm \
            3dnowprefetch fsgsbase bmi1 avx2 smep bmi2 erms invpcid xsaveopt arat",
    phys_bits: 46,
    virt_bits: 48,
};

/// A 32-bit core without PAE (the i386 machine has no PAE: no `pae`, no
/// `nx`, 32-bit physical addresses).
const I386: CpuModel = CpuModel {
    vendor: "GenuineIntel",
    family: 6,
    model: 13,
    name: "mmfs simulated 32-bit CPU @ 2.00GHz",
    stepping: 6,
    mhz: 2000,
    cache_kb: 2048,
    cpuid_level: 2,
    flags: "fpu vme de pse tsc msr mce cx8 apic sep mtrr pge mca cmov pat clflush mmx fxsr \
            sse sse2 ss tm pbe constant_tsc cpuid",
    phys_bits: 32,
    virt_bits: 32,
};

/// /proc/cpuinfo: one block per CPU, a blank line after each.
pub fn cpuinfo(kernel: &Kernel) -> String {
    let arch = kernel.config.arch;
    let m = match arch {
        Arch::X86_64 => &X86_64,
        Arch::I386 => &I386,
    };
    let flags: Vec<&str> = m.flags.split_whitespace().collect();
    let mut out = String::new();
    for cpu in 0..NR_CPUS {
        let _ = write!(
            out,
            "processor\t: {cpu}\nvendor_id\t: {}\ncpu family\t: {}\nmodel\t\t: {}\n\
             model name\t: {}\nstepping\t: {}\ncpu MHz\t\t: {}.000\ncache size\t: {} KB\n\
             physical id\t: 0\nsiblings\t: {NR_CPUS}\ncore id\t\t: {cpu}\ncpu cores\t: {NR_CPUS}\n\
             apicid\t\t: {cpu}\ninitial apicid\t: {cpu}\n",
            m.vendor, m.family, m.model, m.name, m.stepping, m.mhz, m.cache_kb,
        );
        // show_cpuinfo_misc: 32-bit kernels also report the old Pentium bugs.
        if arch == Arch::I386 {
            out.push_str("fdiv_bug\t: no\nf00f_bug\t: no\ncoma_bug\t: no\n");
        }
        let _ = write!(
            out,
            "fpu\t\t: yes\nfpu_exception\t: yes\ncpuid level\t: {}\nwp\t\t: yes\nflags\t\t: {}\n\
             bugs\t\t:\nbogomips\t: {}.00\nclflush size\t: 64\ncache_alignment\t: 64\n\
             address sizes\t: {} bits physical, {} bits virtual\npower management:\n\n",
            m.cpuid_level,
            flags.join(" "),
            m.mhz * 2,
            m.phys_bits,
            m.virt_bits,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mm::MachineConfig;

    const CAPTURE: &str = include_str!("../../tests/reference/linux-samples/cpuinfo");

    /// The keys of one processor block.
    fn keys(block: &str) -> Vec<&str> {
        block
            .lines()
            .map(|l| l.split(':').next().unwrap())
            .collect()
    }

    #[test]
    fn blocks_have_the_captures_keys_and_layout() {
        let k = crate::ctl::Machine::boot(MachineConfig::default()).unwrap();
        let text = cpuinfo(&k);
        let blocks: Vec<&str> = text.split("\n\n").filter(|b| !b.is_empty()).collect();
        assert_eq!(blocks.len(), NR_CPUS as usize);
        assert!(text.ends_with("power management:\n\n"));
        let captured: Vec<&str> = CAPTURE.split("\n\n").filter(|b| !b.is_empty()).collect();
        // The capture (an AMD guest) has microcode and TLB size lines,
        // which Linux prints only when the CPU reports them.
        let want: Vec<&str> = keys(captured[0])
            .into_iter()
            .filter(|k| !k.starts_with("microcode") && !k.starts_with("TLB size"))
            .collect();
        for block in &blocks {
            assert_eq!(keys(block), want);
        }
        assert!(blocks[1].starts_with("processor\t: 1\n"));
        assert!(blocks[1].contains("\ncore id\t\t: 1\n"));
        let i386 = crate::ctl::Machine::boot(MachineConfig {
            arch: Arch::I386,
            mem_bytes: 256 << 20,
        })
        .unwrap();
        let text = cpuinfo(&i386);
        assert!(text.contains("\nf00f_bug\t: no\ncoma_bug\t: no\nfpu\t\t: yes\n"));
        assert!(text.contains("32 bits physical, 32 bits virtual"));
        assert!(!text.contains(" pae ") && !text.contains(" lm "));
    }
}
