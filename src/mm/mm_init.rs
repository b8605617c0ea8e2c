//! The boot messages Linux prints about memory: the banner
//! (init/version.c), the e820 map and zone ranges (`setup_arch`,
//! `free_area_init`) and `mem_init_print_info`.

use super::Kernel;
use super::page_alloc::{I386_MAX_LOW_PFN, PageKind, ram_ranges, struct_page_size};
use super::types::{Arch, PAGE_SIZE};

/// `linux_banner`: the first line of the boot log and `/proc/version`.
pub fn linux_banner(arch: Arch) -> String {
    format!(
        "Linux version 6.18.44-mmfs ({}) (rustc) #1 SMP PREEMPT_DYNAMIC",
        arch.name()
    )
}

impl Kernel {
    /// printk the boot-time memory lines, as `start_kernel` does.
    pub(crate) fn mem_init_print_info(&mut self) {
        for line in boot_lines(self) {
            self.printk(line);
        }
    }
}

/// The boot-time memory lines, banner first.
fn boot_lines(kernel: &Kernel) -> Vec<String> {
    let arch = kernel.config.arch;
    let pa = &kernel.page_alloc;
    let mut lines: Vec<String> = vec![linux_banner(arch)];
    lines.push("BIOS-provided physical RAM map:".into());
    let ranges = ram_ranges(arch, pa.ram_bytes / PAGE_SIZE);
    let mut prev_end = 0u64;
    for &(start, end) in &ranges {
        let (s, e) = (start * PAGE_SIZE, end * PAGE_SIZE);
        if s > prev_end {
            lines.push(format!(
                "BIOS-e820: [mem {:#018x}-{:#018x}] reserved",
                prev_end,
                s - 1
            ));
        }
        lines.push(format!(
            "BIOS-e820: [mem {:#018x}-{:#018x}] usable",
            s,
            e - 1
        ));
        prev_end = e;
    }
    if arch == Arch::I386 {
        let high: u64 = pa
            .zones
            .iter()
            .filter(|z| z.zone_type.name() == "HighMem")
            .map(|z| z.present)
            .sum();
        let low_end = pa.max_pfn.min(I386_MAX_LOW_PFN);
        if high > 0 {
            lines.push(format!("{}MB HIGHMEM available.", (high * PAGE_SIZE) >> 20));
        }
        lines.push(format!(
            "{}MB LOWMEM available.",
            (low_end * PAGE_SIZE) >> 20
        ));
        lines.push(format!("  mapped low ram: 0 - {:08x}", low_end * PAGE_SIZE));
        lines.push(format!("  low ram: 0 - {:08x}", low_end * PAGE_SIZE));
    }
    lines.push("Zone ranges:".into());
    for zone in pa.zones.iter().filter(|z| z.zone_type.name() != "Movable") {
        if zone.is_populated() {
            lines.push(format!(
                "  {:<8} [mem {:#018x}-{:#018x}]",
                zone.zone_type.name(),
                zone.start_pfn * PAGE_SIZE,
                zone.end_pfn() * PAGE_SIZE - 1
            ));
        } else {
            lines.push(format!("  {:<8} empty", zone.zone_type.name()));
        }
    }
    lines.push("Movable zone start for each node".into());
    lines.push("Early memory node ranges".into());
    for &(start, end) in &ranges {
        lines.push(format!(
            "  node   0: [mem {:#018x}-{:#018x}]",
            start * PAGE_SIZE,
            end * PAGE_SIZE - 1
        ));
    }
    lines.push(format!(
        "Initmem setup node 0 [mem {:#018x}-{:#018x}]",
        ranges[0].0 * PAGE_SIZE,
        pa.max_pfn * PAGE_SIZE - 1
    ));
    for zone in pa.zones.iter().filter(|z| z.is_populated()) {
        let holes = zone.spanned - zone.present;
        if holes > 0 {
            lines.push(format!(
                "On node 0, zone {}: {} pages in unavailable ranges",
                zone.zone_type.name(),
                holes
            ));
        }
    }
    let total_present = pa.total_present();
    let managed = pa.total_managed();
    let img = pa.image;
    let reserved_kb = (total_present - managed) * 4;
    let highmem_kb: u64 = pa
        .zones
        .iter()
        .filter(|z| z.zone_type.name() == "HighMem")
        .map(|z| z.managed * 4)
        .sum();
    let highmem = if arch == Arch::I386 {
        format!(", {highmem_kb}K highmem")
    } else {
        String::new()
    };
    lines.push(format!(
        "Memory: {}K/{}K available ({}K kernel code, {}K rwdata, {}K rodata, {}K init, {}K bss, {}K reserved, 0K cma-reserved{})",
        managed * 4,
        total_present * 4,
        img.code_kb,
        img.rwdata_kb,
        img.rodata_kb,
        img.init_kb,
        img.bss_kb,
        reserved_kb,
        highmem
    ));
    if arch == Arch::I386 {
        let text_start = 0xc100_0000u64;
        let text_end = text_start + img.code_kb * 1024;
        let data_end = text_end + (img.rwdata_kb + img.rodata_kb) * 1024;
        let init_end = data_end + img.init_kb * 1024;
        let lowmem_end = 0xc000_0000u64 + I386_MAX_LOW_PFN * PAGE_SIZE;
        let vmalloc_start = lowmem_end + (8 << 20);
        let pkmap_start = 0xff40_0000u64;
        let vmalloc_end = pkmap_start - 2 * PAGE_SIZE;
        lines.push(format!(
            "virtual kernel memory layout:\n    fixmap  : 0x{:08x} - 0x{:08x}   ({:4} kB)\n  cpu_entry : 0x{:08x} - 0x{:08x}   ({:4} kB)\n    pkmap   : 0x{:08x} - 0x{:08x}   ({:4} kB)\n    vmalloc : 0x{:08x} - 0x{:08x}   ({:4} MB)\n    lowmem  : 0x{:08x} - 0x{:08x}   ({:4} MB)\n      .init : 0x{:08x} - 0x{:08x}   ({:4} kB)\n      .data : 0x{:08x} - 0x{:08x}   ({:4} kB)\n      .text : 0x{:08x} - 0x{:08x}   ({:4} kB)",
            0xfff1_6000u64, 0xffff_f000u64, (0xffff_f000u64 - 0xfff1_6000) >> 10,
            0xff80_0000u64, 0xff93_9000u64, (0xff93_9000u64 - 0xff80_0000) >> 10,
            pkmap_start, 0xff80_0000u64, (0xff80_0000 - pkmap_start) >> 10,
            vmalloc_start, vmalloc_end, (vmalloc_end - vmalloc_start) >> 20,
            0xc000_0000u64, lowmem_end, (lowmem_end - 0xc000_0000) >> 20,
            data_end, init_end, img.init_kb,
            text_end, data_end, img.rwdata_kb + img.rodata_kb,
            text_start, text_end, img.code_kb,
        ));
    }
    let reservations: Vec<String> = pa
        .reservations
        .iter()
        .filter(|r| r.kind == PageKind::Memmap)
        .map(|r| {
            format!(
                "mmfs: struct page array: {} pages x {} bytes, {}K reserved at [mem {:#018x}-{:#018x}]",
                pa.total_present(),
                struct_page_size(arch),
                r.pages * 4,
                r.start * PAGE_SIZE,
                (r.start + r.pages) * PAGE_SIZE - 1
            )
        })
        .collect();
    lines.extend(reservations);
    lines
}
