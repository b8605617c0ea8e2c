//! /proc/meminfo (fs/proc/meminfo.c `meminfo_proc_show`, mm/show_mem.c
//! `si_mem_available`, mm/util.c `vm_commit_limit`, arch/x86/mm/pat/set_memory.c
//! `arch_report_meminfo`).
//!
//! Each line is the key padded to 16 columns, the value `%8lu` (wider
//! numbers push the line), and ` kB`; the HugePages_* counts use `%5lu`
//! without a unit. The keys are those Linux 6.18 prints on x86_64, plus
//! HighTotal/HighFree/LowTotal/LowFree on i386 (CONFIG_HIGHMEM), where the
//! transparent-huge-page lines are absent (THP needs PAE on 32-bit) and the
//! direct map is reported as DirectMap4k/DirectMap4M.

use std::fmt::Write;

use crate::mm::Kernel;
use crate::mm::node_stats::NodeStats;
use crate::mm::page_alloc::{I386_MAX_LOW_PFN, PageAllocator, ZoneType, ram_ranges};
use crate::mm::types::{Arch, PAGE_SIZE};

use super::vmstat::KernelConfig;

/// VMALLOC_TOTAL on x86_64 with 4-level paging: 32 TiB − 1 KiB, in kB.
pub const VMALLOC_TOTAL_X86_64_KB: u64 = 34_359_738_367;
/// i386 PAGE_OFFSET (CONFIG_VMSPLIT_3G).
pub const I386_PAGE_OFFSET: u64 = 0xc000_0000;
/// i386 VMALLOC_OFFSET: the guard gap between lowmem and vmalloc.
pub const I386_VMALLOC_OFFSET: u64 = 8 << 20;
/// i386 PKMAP_BASE of the simulated layout (mm/mm_init.rs prints it).
pub const I386_PKMAP_BASE: u64 = 0xff40_0000;

/// `VMALLOC_END - VMALLOC_START` in kB. On i386 the area runs from
/// `high_memory + VMALLOC_OFFSET` to `PKMAP_BASE - 2 * PAGE_SIZE`, the
/// layout the boot log prints ("vmalloc : 0xf87fe000 - 0xff3fe000").
pub fn vmalloc_total_kb(arch: Arch) -> u64 {
    match arch {
        Arch::X86_64 => VMALLOC_TOTAL_X86_64_KB,
        Arch::I386 => {
            let high_memory = I386_PAGE_OFFSET + I386_MAX_LOW_PFN * PAGE_SIZE;
            let start = high_memory + I386_VMALLOC_OFFSET;
            let end = I386_PKMAP_BASE - 2 * PAGE_SIZE;
            (end - start) >> 10
        }
    }
}

/// The inputs of `si_mem_available`, all in pages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemAvailableInputs {
    /// NR_FREE_PAGES.
    pub free: u64,
    /// totalreserve_pages.
    pub totalreserve: u64,
    /// NR_ACTIVE_FILE + NR_INACTIVE_FILE.
    pub file_lru: u64,
    /// NR_SLAB_RECLAIMABLE + NR_KERNEL_MISC_RECLAIMABLE.
    pub reclaimable: u64,
    /// Σ low watermark over **all** zones (empty Movable's 32 included).
    pub wmark_low: u64,
}

/// `si_mem_available`: free memory minus the kernel's reserve, plus the
/// page cache and reclaimable kernel memory, each minus what reclaim could
/// not take without dipping under the low watermarks (at most half).
pub fn si_mem_available(i: MemAvailableInputs) -> u64 {
    let mut available = i.free as i128 - i.totalreserve as i128;
    available += (i.file_lru - (i.file_lru / 2).min(i.wmark_low)) as i128;
    available += (i.reclaimable - (i.reclaimable / 2).min(i.wmark_low)) as i128;
    available.max(0) as u64
}

/// The `si_mem_available` inputs of the machine.
pub fn mem_available_inputs(pa: &PageAllocator, stats: &NodeStats) -> MemAvailableInputs {
    MemAvailableInputs {
        free: pa.total_free(),
        totalreserve: pa.total_reserve_pages(),
        file_lru: stats.nr_active_file + stats.nr_inactive_file,
        reclaimable: stats.nr_slab_reclaimable + stats.kernel_misc_reclaimable,
        wmark_low: pa.zones.iter().map(|z| z.watermark.low).sum(),
    }
}

/// Pages mapped at each page size of the direct map, as
/// `direct_pages_count[]` holds them: `(4k, 2M-or-4M, 1G)` in pages of
/// that size.
///
/// Rule (Linux `init_mem_mapping` / `split_mem_range`, without the later
/// `set_memory_*` splits): the ISA range [0, 1 MiB) is mapped with 4k pages;
/// every e820 RAM range above 1 MiB, up to max_low_pfn on i386, is split into
/// a 4k head up to the first large-page boundary, large pages (2M on x86_64,
/// 4M with PSE on non-PAE i386) up to the first 1G boundary, 1G pages
/// (x86_64, gbpages) for every whole aligned GiB, then large pages and a 4k
/// tail. The counts cover the direct-mapped RAM exactly.
pub fn direct_map_pages(arch: Arch, ram_bytes: u64) -> (u64, u64, u64) {
    let ram_pages = ram_bytes / PAGE_SIZE;
    let (large, giant, limit) = match arch {
        Arch::X86_64 => (512u64, Some(1u64 << 18), u64::MAX),
        Arch::I386 => (1024u64, None, I386_MAX_LOW_PFN),
    };
    const ISA_END_PFN: u64 = 256;
    let mut counts = (ISA_END_PFN, 0u64, 0u64);
    for (start, end) in ram_ranges(arch, ram_pages) {
        let start = start.max(ISA_END_PFN);
        let end = end.min(limit);
        if start >= end {
            continue;
        }
        let mut pfn = start;
        // 4k head up to the first large-page boundary.
        let head_end = pfn.next_multiple_of(large).min(end);
        counts.0 += head_end - pfn;
        pfn = head_end;
        if let Some(giant) = giant {
            // Large pages up to the first 1G boundary.
            let large_end = pfn.next_multiple_of(giant).min(end / large * large);
            if pfn < large_end {
                counts.1 += (large_end - pfn) / large;
                pfn = large_end;
            }
            // 1G pages.
            let giant_end = end / giant * giant;
            if pfn < giant_end {
                counts.2 += (giant_end - pfn) / giant;
                pfn = giant_end;
            }
        }
        // Large-page tail, then 4k tail.
        let large_end = end / large * large;
        if pfn < large_end {
            counts.1 += (large_end - pfn) / large;
            pfn = large_end;
        }
        counts.0 += end - pfn;
    }
    counts
}

/// Managed and free pages of the highmem zones (`totalhigh`, `freehigh`).
fn highmem_pages(pa: &PageAllocator) -> (u64, u64) {
    pa.zones
        .iter()
        .filter(|z| z.zone_type == ZoneType::HighMem)
        .fold((0, 0), |(t, f), z| (t + z.managed, f + z.free_pages))
}

/// Render /proc/meminfo.
pub fn meminfo(kernel: &Kernel) -> String {
    let arch = kernel.config.arch;
    let cfg = KernelConfig::for_arch(arch);
    let pa = &kernel.page_alloc;
    let s = kernel.node_stats();
    let kb = |pages: u64| pages.saturating_mul(PAGE_SIZE / 1024);
    let mut out = String::with_capacity(1600);
    let mut val = |key: &str, value_kb: u64| {
        let _ = writeln!(out, "{:<16}{value_kb:>8} kB", format!("{key}:"));
    };
    let totalram = pa.total_managed();
    let freeram = pa.total_free();
    let cached = s
        .nr_file_pages
        .saturating_sub(s.nr_swapcached)
        .saturating_sub(s.nr_buffers);
    let available = si_mem_available(mem_available_inputs(pa, &s));
    val("MemTotal", kb(totalram));
    val("MemFree", kb(freeram));
    val("MemAvailable", kb(available));
    val("Buffers", kb(s.nr_buffers));
    val("Cached", kb(cached));
    val("SwapCached", kb(s.nr_swapcached));
    val("Active", kb(s.nr_active_anon + s.nr_active_file));
    val("Inactive", kb(s.nr_inactive_anon + s.nr_inactive_file));
    val("Active(anon)", kb(s.nr_active_anon));
    val("Inactive(anon)", kb(s.nr_inactive_anon));
    val("Active(file)", kb(s.nr_active_file));
    val("Inactive(file)", kb(s.nr_inactive_file));
    val("Unevictable", kb(s.nr_unevictable));
    val("Mlocked", kb(s.total_mlock()));
    if cfg.highmem {
        let (totalhigh, freehigh) = highmem_pages(pa);
        val("HighTotal", kb(totalhigh));
        val("HighFree", kb(freehigh));
        val("LowTotal", kb(totalram - totalhigh));
        val("LowFree", kb(freeram - freehigh));
    }
    val("SwapTotal", kb(s.swap_total_pages));
    val("SwapFree", kb(s.swap_free_pages));
    // No zswap pool.
    val("Zswap", 0);
    val("Zswapped", 0);
    val("Dirty", kb(s.nr_dirty));
    val("Writeback", kb(s.nr_writeback));
    val("AnonPages", kb(s.nr_anon_pages));
    val("Mapped", kb(s.nr_mapped));
    val("Shmem", kb(s.nr_shmem));
    val(
        "KReclaimable",
        kb(s.nr_slab_reclaimable + s.kernel_misc_reclaimable),
    );
    val("Slab", kb(s.nr_slab_reclaimable + s.nr_slab_unreclaimable));
    val("SReclaimable", kb(s.nr_slab_reclaimable));
    val("SUnreclaim", kb(s.nr_slab_unreclaimable));
    val("KernelStack", s.nr_kernel_stack);
    val("PageTables", kb(s.nr_page_table_pages));
    val("SecPageTables", 0);
    val("NFS_Unstable", 0);
    val("Bounce", 0);
    val("WritebackTmp", 0);
    val("CommitLimit", kb(kernel.vm_commit_limit()));
    val("Committed_AS", kb(s.committed_as_pages));
    val("VmallocTotal", vmalloc_total_kb(arch));
    val("VmallocUsed", s.vmalloc_used_kb);
    // Always 0 since Linux 4.2.
    val("VmallocChunk", 0);
    val("Percpu", s.percpu_kb);
    if cfg.thp {
        // No transparent huge pages are simulated.
        for key in [
            "AnonHugePages",
            "ShmemHugePages",
            "ShmemPmdMapped",
            "FileHugePages",
            "FilePmdMapped",
        ] {
            val(key, 0);
        }
    }
    val("Balloon", 0);
    // hugetlb_report_meminfo: the pool is hugetlb_total_pages (0: no
    // hugetlbfs); nothing maps huge pages, so the whole pool is free.
    let huge_kb = match arch {
        Arch::X86_64 => 2048,
        Arch::I386 => 4096,
    };
    let pool = s.hugetlb_total_pages.saturating_mul(PAGE_SIZE / 1024) / huge_kb;
    for key in [
        "HugePages_Total",
        "HugePages_Free",
        "HugePages_Rsvd",
        "HugePages_Surp",
    ] {
        let n = if key == "HugePages_Total" || key == "HugePages_Free" {
            pool
        } else {
            0
        };
        let _ = writeln!(out, "{:<19}{n:>5}", format!("{key}:"));
    }
    let mut val = |key: &str, value_kb: u64| {
        let _ = writeln!(out, "{:<16}{value_kb:>8} kB", format!("{key}:"));
    };
    val("Hugepagesize", huge_kb);
    val("Hugetlb", kb(s.hugetlb_total_pages));
    let (small, large, giant) = direct_map_pages(arch, pa.ram_bytes);
    val("DirectMap4k", small * 4);
    match arch {
        Arch::X86_64 => {
            val("DirectMap2M", large * 2048);
            val("DirectMap1G", giant * 1024 * 1024);
        }
        Arch::I386 => val("DirectMap4M", large * 4096),
    }
    out
}

/// Line-shape helpers for the golden tests of the procfs renderers.
#[cfg(test)]
pub(crate) mod golden {
    /// Every number that stands alone (after a blank or punctuation) becomes
    /// `#`, together with the blanks before it: right-aligned fields keep
    /// their shape whatever the value (`"MemTotal:  123 kB"` and
    /// `"MemTotal:   45 kB"` mask the same).
    pub(crate) fn mask_aligned(line: &str) -> String {
        mask(line, true)
    }

    /// Every number that stands alone becomes `N`; blanks are kept: for
    /// left-aligned `%lu` fields whose width follows the value.
    pub(crate) fn mask_free(line: &str) -> String {
        mask(line, false)
    }

    fn mask(line: &str, aligned: bool) -> String {
        let bytes = line.as_bytes();
        let mut out = String::with_capacity(line.len());
        let mut i = 0;
        while i < bytes.len() {
            let blanks_end = if aligned {
                (i..bytes.len())
                    .find(|&j| bytes[j] != b' ')
                    .unwrap_or(bytes.len())
            } else {
                i
            };
            let digits_end = (blanks_end..bytes.len())
                .find(|&j| !bytes[j].is_ascii_digit())
                .unwrap_or(bytes.len());
            let standalone = blanks_end > i || i == 0 || !bytes[i - 1].is_ascii_alphanumeric();
            let ends_word = digits_end == bytes.len() || !bytes[digits_end].is_ascii_alphanumeric();
            if digits_end > blanks_end && standalone && ends_word {
                if aligned {
                    out.push_str(&"#".repeat(digits_end - i));
                } else {
                    out.push('N');
                }
                i = digits_end;
            } else {
                out.push(bytes[i] as char);
                i += 1;
            }
        }
        out
    }

    #[test]
    fn masks() {
        assert_eq!(mask_aligned("MemTotal:   12 kB"), "MemTotal:##### kB");
        assert_eq!(mask_aligned("DirectMap4k:    5 kB"), "DirectMap4k:##### kB");
        assert_eq!(mask_free("      nr_mapped    2553"), "      nr_mapped    N");
        assert_eq!(mask_free("protection: (0, 30, 4)"), "protection: (N, N, N)");
        assert_eq!(mask_free("pgalloc_dma32 7"), "pgalloc_dma32 N");
    }
}

#[cfg(test)]
mod tests {
    use super::golden::mask_aligned;
    use super::*;
    use crate::ctl::Scope;
    use crate::mm::page_alloc::PageAllocator;

    const CAPTURE: &str = include_str!("../../tests/reference/linux-samples/meminfo");

    fn boot(arch: Arch, mem: u64) -> crate::ctl::Machine {
        crate::mm::boot_checked(arch, mem)
    }

    fn value(text: &str, key: &str) -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
            .unwrap_or_else(|| panic!("no {key}"))
            .trim()
            .trim_end_matches(" kB")
            .parse()
            .unwrap()
    }

    #[test]
    fn x86_64_lines_have_the_captures_keys_order_and_widths() {
        let k = boot(Arch::X86_64, 1 << 30);
        let text = meminfo(&k);
        let ours: Vec<_> = text.lines().map(mask_aligned).collect();
        let theirs: Vec<_> = CAPTURE.lines().map(mask_aligned).collect();
        assert_eq!(ours, theirs);
        // Same byte lengths line by line (all values fit their widths).
        for (a, b) in text.lines().zip(CAPTURE.lines()) {
            assert_eq!(a.len(), b.len(), "{a:?} vs {b:?}");
        }
        assert!(text.ends_with(" kB\n"));
        assert!(text.len() < 8192);
    }

    #[test]
    fn i386_has_highmem_lines_and_4m_direct_map() {
        let k = boot(Arch::I386, 2 << 30);
        let text = meminfo(&k);
        let keys: Vec<_> = text.lines().map(|l| l.split(':').next().unwrap()).collect();
        let expected: Vec<&str> = CAPTURE
            .lines()
            .map(|l| l.split(':').next().unwrap())
            // No transparent huge pages on non-PAE i386.
            .filter(|k| {
                ![
                    "AnonHugePages",
                    "ShmemHugePages",
                    "ShmemPmdMapped",
                    "FileHugePages",
                    "FilePmdMapped",
                ]
                .contains(k)
            })
            .filter(|k| *k != "DirectMap2M" && *k != "DirectMap1G")
            .flat_map(|k| match k {
                "Mlocked" => vec!["Mlocked", "HighTotal", "HighFree", "LowTotal", "LowFree"],
                "DirectMap4k" => vec!["DirectMap4k", "DirectMap4M"],
                _ => vec![k],
            })
            .collect();
        assert_eq!(keys, expected);
        for line in text.lines() {
            assert_eq!(
                line.len(),
                if line.starts_with("HugePages_") {
                    24
                } else {
                    27
                },
                "{line}"
            );
        }
        let high = &k.page_alloc.zones[2];
        assert_eq!(high.zone_type, ZoneType::HighMem);
        assert_eq!(value(&text, "HighTotal"), high.managed * 4);
        assert_eq!(value(&text, "HighFree"), high.free_pages * 4);
        assert_eq!(
            value(&text, "LowTotal") + value(&text, "HighTotal"),
            value(&text, "MemTotal")
        );
        assert_eq!(
            value(&text, "LowFree") + value(&text, "HighFree"),
            value(&text, "MemFree")
        );
        assert_eq!(value(&text, "Hugepagesize"), 4096);
        // The ISA range and lowmem are direct-mapped.
        assert_eq!(
            value(&text, "DirectMap4k") + value(&text, "DirectMap4M"),
            I386_MAX_LOW_PFN * 4
        );
    }

    /// VmallocTotal agrees with the layout the i386 boot log prints.
    #[test]
    fn i386_vmalloc_total_matches_the_boot_log() {
        let k = boot(Arch::I386, 1 << 30);
        let log = crate::procfs::dmesg(&k);
        let line = log
            .lines()
            .find(|l| l.trim_start().starts_with("vmalloc :"))
            .expect("boot log prints the vmalloc area");
        let addrs: Vec<u64> = line
            .split_whitespace()
            .filter_map(|w| w.strip_prefix("0x"))
            .map(|h| u64::from_str_radix(h, 16).unwrap())
            .collect();
        assert_eq!(addrs.len(), 2, "{line}");
        let text = meminfo(&k);
        assert_eq!(value(&text, "VmallocTotal"), (addrs[1] - addrs[0]) >> 10);
        assert_eq!(vmalloc_total_kb(Arch::I386), 110592);
        assert_eq!(
            value(&meminfo(&boot(Arch::X86_64, 1 << 30)), "VmallocTotal"),
            34359738367
        );
    }

    /// §14.5 worked example: the capture's numbers give its MemAvailable.
    #[test]
    fn mem_available_matches_the_capture() {
        let mut a = PageAllocator::boot(Arch::X86_64, 1 << 30).unwrap();
        for (zone, m) in a.zones.iter_mut().zip([3840u64, 772808, 360448, 0, 0]) {
            zone.managed = m;
        }
        a.min_free_kbytes = 67584;
        a.setup_watermarks();
        let wmark_low: u64 = a.zones.iter().map(|z| z.watermark.low).sum();
        assert_eq!(wmark_low, 71 + 14353 + 6693 + 32);
        let inputs = MemAvailableInputs {
            free: 24394536 / 4,
            totalreserve: a.total_reserve_pages(),
            file_lru: (91544 + 119524) / 4,
            reclaimable: 12840 / 4,
            wmark_low,
        };
        assert_eq!(si_mem_available(inputs) * 4, 24405420);
        // Never negative.
        let starved = MemAvailableInputs {
            free: 10,
            totalreserve: 100,
            file_lru: 0,
            reclaimable: 0,
            ..inputs
        };
        assert_eq!(si_mem_available(starved), 0);
    }

    #[test]
    fn derived_values_are_consistent() {
        let mut k = boot(Arch::X86_64, 1 << 30);
        k.execute_line(Scope::System, "alloc_pages 3 count=5 tag=x")
            .unwrap();
        k.check_invariants().unwrap();
        let text = meminfo(&k);
        let pa = &k.page_alloc;
        assert_eq!(value(&text, "MemTotal"), pa.total_managed() * 4);
        assert_eq!(value(&text, "MemFree"), pa.total_free() * 4);
        // SReclaimable counts half-or-more (slab.rs: dentry, inode caches…).
        let rcl = k.slab.nr_slab_reclaimable();
        let wmark_low: u64 = pa.zones.iter().map(|z| z.watermark.low).sum();
        assert_eq!(
            value(&text, "MemAvailable"),
            (pa.total_free() - pa.total_reserve_pages() + rcl - (rcl / 2).min(wmark_low)) * 4
        );
        assert_eq!(
            value(&text, "Slab"),
            value(&text, "SReclaimable") + value(&text, "SUnreclaim")
        );
        assert_eq!(value(&text, "KReclaimable"), value(&text, "SReclaimable"));
        assert_eq!(
            value(&text, "CommitLimit"),
            pa.total_managed() * 50 / 100 * 4
        );
        // buddyinfo × 2^order × 4 = MemFree.
        let buddy: u64 = crate::procfs::buddyinfo_pages(&crate::procfs::buddyinfo(&k));
        assert_eq!(buddy * 4, value(&text, "MemFree"));
        // The direct map covers the ISA hole and all RAM above 1 MiB.
        let direct =
            value(&text, "DirectMap4k") + value(&text, "DirectMap2M") + value(&text, "DirectMap1G");
        assert_eq!(direct, 1 << 20);
    }

    #[test]
    fn direct_map_split_rule() {
        // 1 GiB: ISA 1M + [1M, 2M) in 4k, the rest in 2M pages.
        assert_eq!(direct_map_pages(Arch::X86_64, 1 << 30), (512, 511, 0));
        // 8 GiB: [1M, 3G) and [4G, 9G) after the PCI hole.
        assert_eq!(direct_map_pages(Arch::X86_64, 8 << 30), (512, 511, 2 + 5));
        // A range ending off a 2M boundary gets a 4k tail.
        let (small, large, _) = direct_map_pages(Arch::X86_64, (64 << 20) + (12 << 10));
        assert_eq!((small, large), (512 + 3, 31));
        // i386 512M: [1M, 4M) in 4k, then 4M pages; lowmem caps at 895M.
        assert_eq!(direct_map_pages(Arch::I386, 512 << 20), (1024, 127, 0));
        let (small, large, giant) = direct_map_pages(Arch::I386, 2 << 30);
        assert_eq!(giant, 0);
        assert_eq!(small + large * 1024, I386_MAX_LOW_PFN);
    }

    /// procps reads our files: `free -k`, `vmstat -s` and `vmstat` run in a
    /// private mount namespace with them bound over /proc.
    #[test]
    fn procps_free_and_vmstat_parse_our_files() {
        let k = boot(Arch::X86_64, 1 << 30);
        let dir = std::env::temp_dir().join(format!("mmfs-procps-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let files = [
            ("meminfo", meminfo(&k)),
            ("vmstat", crate::procfs::vmstat::vmstat(&k)),
            ("stat", crate::procfs::stat::stat(&k)),
        ];
        let mut script = String::from("set -e\n");
        for (name, text) in &files {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            script.push_str(&format!("mount --bind {} /proc/{name}\n", path.display()));
        }
        script.push_str("free -k\necho @@\nvmstat -s\necho @@\nvmstat\n");
        let output = std::process::Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", &script])
            .output();
        let _ = std::fs::remove_dir_all(&dir);
        let output = output.expect(
            "cannot run unshare(1): this test needs util-linux unshare, procps free/vmstat and root",
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "unshare -m with bind mounts over /proc failed (the test must run as root): {}{}",
            stdout,
            String::from_utf8_lossy(&output.stderr)
        );
        let mut parts = stdout.split("@@\n");
        let (free, vmstat_s, vmstat) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        let total = k.page_alloc.total_managed() * 4;
        let mem: Vec<u64> = free
            .lines()
            .find(|l| l.starts_with("Mem:"))
            .unwrap()
            .split_whitespace()
            .skip(1)
            .map(|n| n.parse().unwrap())
            .collect();
        assert_eq!(mem[0], total, "{free}");
        assert_eq!(mem[2], k.page_alloc.total_free() * 4, "{free}");
        let stat_line = |label: &str| -> u64 {
            vmstat_s
                .lines()
                .find(|l| l.ends_with(label))
                .unwrap_or_else(|| panic!("no '{label}' in {vmstat_s}"))
                .split_whitespace()
                .next()
                .unwrap()
                .parse()
                .unwrap()
        };
        assert_eq!(stat_line("K total memory"), total);
        assert_eq!(stat_line("boot time"), crate::mm::BOOT_TIME);
        assert_eq!(stat_line("forks"), k.forks);
        assert_eq!(vmstat.lines().count(), 3, "{vmstat}");
        let row: Vec<&str> = vmstat.lines().nth(2).unwrap().split_whitespace().collect();
        // r b swpd free ...: free is MemFree.
        assert_eq!(
            row[3].parse::<u64>().unwrap(),
            k.page_alloc.total_free() * 4
        );
    }
}
