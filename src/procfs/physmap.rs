//! `physmap`: a picture of physical memory, zone by zone, one character per
//! block of pages, so that `watch cat physmap` shows fragmentation and
//! reclaim as they happen. Not a Linux file; an mmfs teaching aid.

use std::fmt::Write;

use crate::mm::Kernel;
use crate::mm::page_alloc::{FrameState, MIGRATE_TYPE_NAMES, MIGRATE_TYPES, PageKind, Zone};
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
        let (first_cell, counts) = cell_counts(kernel, zone, per_char);
        for (row, chunk) in counts.chunks(MAP_COLUMNS as usize).enumerate() {
            let addr = (first_cell + row as u64 * MAP_COLUMNS) * per_char * PAGE_SIZE;
            let _ = write!(out, "{addr:#014x} ");
            for cell in chunk {
                out.push(dominant(cell));
            }
            out.push('\n');
        }
    }
    out
}

/// Pages of each use in each cell of `per_char` pages of the zone's span,
/// counted by walking block heads: (the first cell's index, the counts).
fn cell_counts(kernel: &Kernel, zone: &Zone, per_char: u64) -> (u64, Vec<[u64; USES.len()]>) {
    let pa = &kernel.page_alloc;
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
    (first_cell, counts)
}

/// The most common use of a cell; ties go to the more notable use.
fn dominant(cell: &[u64; USES.len()]) -> char {
    let (best, _) = cell
        .iter()
        .enumerate()
        .max_by_key(|&(i, n)| (*n, i))
        .expect("non-empty");
    USES[best].1
}

/// Pageblocks per row of `physmap_migratetype`.
const BLOCK_COLUMNS: usize = 32;
/// One character per migrate type, in MIGRATE_TYPE_NAMES order.
const MIGRATE_CHARS: [char; MIGRATE_TYPES] = ['U', 'M', 'R', 'H', 'I'];

/// `physmap_migratetype`: one character per pageblock, its most common
/// use (physmap's legend) beside its migrate type, so unmovable pages
/// pinning movable pageblocks (and the reverse) show at a glance.
pub fn physmap_migratetype(kernel: &Kernel) -> String {
    let pa = &kernel.page_alloc;
    let per_char = 1u64 << pa.pageblock_order;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "physmap_migratetype: 1 char = 1 pageblock ({per_char} pages, {}K): its most common use | its migrate type",
        per_char * PAGE_SIZE / 1024
    );
    let mut line = String::from("use:");
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
            line = " ".repeat("use:".len());
        }
        line.push_str(&item);
    }
    out.push_str(&line);
    out.push_str("\ntype:");
    for (c, name) in MIGRATE_CHARS.iter().zip(MIGRATE_TYPE_NAMES) {
        let _ = write!(out, "  {c} {name}");
    }
    out.push('\n');
    for zone in pa.zones.iter().filter(|z| z.is_populated()) {
        let _ = writeln!(
            out,
            "\nNode 0, zone {:>8}  [mem {:#018x}-{:#018x}]",
            zone.zone_type.name(),
            zone.start_pfn * PAGE_SIZE,
            zone.end_pfn() * PAGE_SIZE - 1,
        );
        let (first_cell, counts) = cell_counts(kernel, zone, per_char);
        for (row, chunk) in counts.chunks(BLOCK_COLUMNS).enumerate() {
            let first = first_cell + (row * BLOCK_COLUMNS) as u64;
            let _ = write!(out, "{:#014x} ", first * per_char * PAGE_SIZE);
            for cell in chunk {
                out.push(dominant(cell));
            }
            out.push_str(&" ".repeat(BLOCK_COLUMNS - chunk.len()));
            out.push_str(" | ");
            for i in 0..chunk.len() as u64 {
                let block = (first + i) as usize;
                let mt = pa.pageblock_types.get(block).copied().unwrap_or(0);
                out.push(MIGRATE_CHARS[mt as usize]);
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

    /// An unmovable allocation on a fresh machine claims pageblocks: the
    /// type column shows them beside the use column.
    #[test]
    fn migratetype_picture_moves_with_claims() {
        let mut k = crate::ctl::Machine::boot(MachineConfig::default()).unwrap();
        let before = physmap_migratetype(&k);
        assert!(before.lines().all(|l| l.chars().count() <= 100), "{before}");
        let rows = |t: &str| t.lines().filter(|l| l.starts_with("0x")).count();
        // 1G: 8 DMA pageblocks (one row) and 504 of DMA32 (16 rows).
        assert_eq!(rows(&before), 1 + 16);
        let count = |t: &str, c: char| {
            t.lines()
                .filter_map(|l| l.split_once(" | "))
                .map(|(_, types)| types.matches(c).count())
                .sum::<usize>()
        };
        let u = count(&before, 'U');
        k.execute_line(Scope::System, "alloc_pages 10 count=4 tag=x")
            .unwrap();
        let after = physmap_migratetype(&k);
        assert!(count(&after, 'U') > u, "{after}");
        assert_eq!(
            count(&after, 'U') + count(&after, 'M'),
            count(&before, 'U') + count(&before, 'M')
        );
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
