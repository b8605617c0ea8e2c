//! `physmap`: a picture of physical memory, zone by zone, one character per
//! block of pages, so that `watch cat physmap` shows fragmentation and
//! reclaim as they happen. Not a Linux file; an mmfs teaching aid.

use std::fmt::Write;

use crate::mm::Kernel;
use crate::mm::page_alloc::{FrameState, PageKind};
use crate::mm::types::{PAGE_SIZE, Pfn};

/// Characters of map per row.
pub const MAP_COLUMNS: u64 = 64;
/// Rows the whole machine aims to fit in.
const TARGET_ROWS: u64 = 48;

/// What one page is, for the picture. Order = precedence on ties.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Use {
    Free,
    User,
    PageTable,
    Slab,
    KernelStack,
    Kernel,
    Reserved,
    ZeroPage,
    SwapCache,
    PageCache,
    Hole,
}

const USES: [(Use, char, &str); 11] = [
    (Use::Free, '.', "free"),
    (Use::User, 'U', "user anon"),
    (Use::PageTable, 'P', "page table"),
    (Use::Slab, 'S', "slab"),
    (Use::KernelStack, 'K', "kernel stack"),
    (
        Use::Kernel,
        'k',
        "other kernel (alloc_pages, kmalloc_large)",
    ),
    (
        Use::Reserved,
        'R',
        "reserved at boot (first MiB, kernel image, struct pages)",
    ),
    (Use::ZeroPage, 'Z', "zero page"),
    (Use::SwapCache, 'C', "swap cache"),
    (Use::PageCache, 'F', "page cache (file data)"),
    (Use::Hole, ' ', "hole (no RAM)"),
];

fn use_of(kind: PageKind) -> Use {
    match kind {
        PageKind::UserAnon => Use::User,
        PageKind::PageTable => Use::PageTable,
        PageKind::Slab => Use::Slab,
        PageKind::KernelStack => Use::KernelStack,
        PageKind::ZeroPage => Use::ZeroPage,
        PageKind::SwapCache => Use::SwapCache,
        // shmem pages are page cache too (Cached counts them).
        PageKind::PageCache | PageKind::Shmem => Use::PageCache,
        PageKind::KernelImage | PageKind::Memmap | PageKind::Firmware => Use::Reserved,
        PageKind::Kernel | PageKind::None => Use::Kernel,
    }
}

/// Render the picture.
pub fn physmap(kernel: &Kernel) -> String {
    let pa = &kernel.page_alloc;
    let spanned: u64 = pa.zones.iter().map(|z| z.spanned).sum();
    let per_char = spanned
        .div_ceil(MAP_COLUMNS * TARGET_ROWS)
        .max(1)
        .next_power_of_two();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "physmap: 1 char = {per_char} page{} ({}K); the most common use of the block is shown",
        if per_char == 1 { "" } else { "s" },
        per_char * PAGE_SIZE / 1024
    );
    // The legend, wrapped to stay inside 100 columns.
    let mut line = String::from("legend:");
    for (_, c, name) in USES {
        let shown = if c == ' ' {
            "' '".to_string()
        } else {
            c.to_string()
        };
        let item = format!("  {shown} {name}");
        if line.len() + item.len() > 100 {
            out.push_str(&line);
            out.push('\n');
            line = " ".repeat("legend:".len());
        }
        line.push_str(&item);
    }
    out.push_str(&line);
    out.push('\n');
    for zone in pa.zones.iter().filter(|z| z.is_populated()) {
        let _ = writeln!(
            out,
            "\nNode 0, zone {:>8}  [mem {:#018x}-{:#018x}]  free {} of {} pages",
            zone.zone_type.name(),
            zone.start_pfn * PAGE_SIZE,
            zone.end_pfn() * PAGE_SIZE - 1,
            zone.free_pages,
            zone.present
        );
        // Count uses per character cell by walking block heads.
        let first_cell = zone.start_pfn / per_char;
        let last_cell = (zone.end_pfn() - 1) / per_char;
        let cells = (last_cell - first_cell + 1) as usize;
        let mut counts = vec![[0u64; USES.len()]; cells];
        let mut add = |start: u64, pages: u64, what: Use| {
            let mut pfn = start;
            let end = start + pages;
            while pfn < end {
                let cell = pfn / per_char;
                let cell_end = ((cell + 1) * per_char).min(end);
                counts[(cell - first_cell) as usize][what as usize] += cell_end - pfn;
                pfn = cell_end;
            }
        };
        let mut pfn = zone.start_pfn;
        let mut ranges = zone.present_ranges.iter().peekable();
        while pfn < zone.end_pfn() {
            match ranges.peek() {
                Some(&&(start, end)) if pfn >= start && pfn < end => {
                    let p = Pfn(pfn);
                    let (pages, what) = match pa.frames.state(p) {
                        FrameState::Free => (pa.frames.order(p).pages(), Use::Free),
                        FrameState::Allocated => {
                            (pa.frames.order(p).pages(), use_of(pa.frames.kind(p)))
                        }
                        FrameState::Reserved => (1, Use::Reserved),
                        FrameState::Interior => (1, Use::Hole),
                    };
                    let pages = pages.min(end - pfn);
                    add(pfn, pages, what);
                    pfn += pages;
                }
                Some(&&(start, end)) => {
                    if pfn >= end {
                        ranges.next();
                        continue;
                    }
                    add(pfn, start - pfn, Use::Hole);
                    pfn = start;
                }
                None => {
                    add(pfn, zone.end_pfn() - pfn, Use::Hole);
                    pfn = zone.end_pfn();
                }
            }
        }
        for (row, chunk) in counts.chunks(MAP_COLUMNS as usize).enumerate() {
            let addr = (first_cell + row as u64 * MAP_COLUMNS) * per_char * PAGE_SIZE;
            let _ = write!(out, "{addr:#014x} ");
            for cell in chunk {
                // The most common use wins; ties go to the more notable use.
                let (best, _) = cell
                    .iter()
                    .enumerate()
                    .max_by_key(|&(i, n)| (*n, i))
                    .expect("non-empty");
                out.push(USES[best].1);
            }
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctl::Scope;
    use crate::mm::MachineConfig;

    #[test]
    fn lines_fit_in_100_columns_and_show_allocations() {
        let mut k = crate::ctl::Machine::boot(MachineConfig::default()).unwrap();
        let before = physmap(&k);
        assert!(before.lines().all(|l| l.chars().count() <= 100), "{before}");
        assert!(before.contains('R') && before.contains('.'));
        k.execute_line(Scope::System, "alloc_pages 10 count=8 tag=x")
            .unwrap();
        let after = physmap(&k);
        assert!(after.matches('k').count() > before.matches('k').count());
        k.execute_line(Scope::System, "free_pages tag=x").unwrap();
        assert_eq!(physmap(&k), before);
    }

    #[test]
    fn huge_machine_stays_small() {
        let k = crate::ctl::Machine::boot(MachineConfig {
            arch: crate::mm::types::Arch::X86_64,
            mem_bytes: 64 << 30,
        })
        .unwrap();
        let text = physmap(&k);
        assert!(text.lines().count() < 80, "{}", text.lines().count());
        assert!(text.contains(' '));
    }
}
