//! /proc/pagetypeinfo, mode 0400 (mm/vmstat.c `pagetypeinfo_show`).
//!
//! Free blocks per (populated zone, migrate type, order), then pageblocks
//! per migrate type. Block counts walk each zone's span in pageblock steps
//! from its start_pfn, as Linux does, and count a step only where a memmap
//! exists (`pfn_to_online_page`): on x86_64 (SPARSEMEM) a 128 MiB section
//! that holds RAM, on i386 (FLATMEM) any pfn below max_pfn. The pageblock's
//! type comes from `PageAllocator::pageblock_types`.

use std::fmt::Write;

use crate::mm::Kernel;
use crate::mm::page_alloc::{MIGRATE_TYPE_NAMES, MIGRATE_TYPES, PageAllocator, Zone};
use crate::mm::types::{Arch, NR_PAGE_ORDERS, PAGE_SHIFT};

/// Linux stops counting a free list at this many entries and prints `>`.
const FREE_COUNT_CAP: u64 = 100_000;
/// log2 of the pages in a SPARSEMEM section (128 MiB) on x86_64.
const PFN_SECTION_SHIFT: u32 = 27 - PAGE_SHIFT;

/// Does `pfn` have a memmap (`pfn_to_online_page` succeeds)?
fn has_memmap(pa: &PageAllocator, pfn: u64) -> bool {
    if pfn >= pa.max_pfn {
        return false;
    }
    match pa.arch {
        Arch::I386 => true,
        Arch::X86_64 => {
            let section = pfn >> PFN_SECTION_SHIFT;
            pa.zones.iter().any(|z| {
                z.present_ranges.iter().any(|&(start, end)| {
                    start >> PFN_SECTION_SHIFT <= section
                        && section <= (end - 1) >> PFN_SECTION_SHIFT
                })
            })
        }
    }
}

/// Pageblocks of each migrate type in a zone's span.
pub fn pageblock_counts(pa: &PageAllocator, zone: &Zone) -> [u64; MIGRATE_TYPES] {
    let mut count = [0u64; MIGRATE_TYPES];
    let step = 1u64 << pa.pageblock_order;
    let mut pfn = zone.start_pfn;
    while pfn < zone.end_pfn() {
        if has_memmap(pa, pfn) {
            let block = (pfn >> pa.pageblock_order) as usize;
            if let Some(&mt) = pa.pageblock_types.get(block)
                && let Some(slot) = count.get_mut(mt as usize)
            {
                *slot += 1;
            }
        }
        pfn += step;
    }
    count
}

/// One count of the free table: `%6lu `, or `>100000 ` where Linux stops
/// counting a list.
fn free_count_cell(out: &mut String, n: u64) {
    if n >= FREE_COUNT_CAP {
        let _ = write!(out, ">{FREE_COUNT_CAP:6} ");
    } else {
        let _ = write!(out, "{n:6} ");
    }
}

/// Render /proc/pagetypeinfo.
pub fn pagetypeinfo(kernel: &Kernel) -> String {
    let pa = &kernel.page_alloc;
    let mut out = String::with_capacity(4096);
    let _ = writeln!(out, "Page block order: {}", pa.pageblock_order);
    let _ = writeln!(out, "Pages per block:  {}", 1u64 << pa.pageblock_order);
    out.push('\n');
    let _ = write!(out, "{:<43} ", "Free pages count per migrate type at order");
    for order in 0..NR_PAGE_ORDERS {
        let _ = write!(out, "{order:6} ");
    }
    out.push('\n');
    let populated = || pa.zones.iter().filter(|z| z.is_populated());
    for zone in populated() {
        for (mt, name) in MIGRATE_TYPE_NAMES.iter().enumerate() {
            let _ = write!(
                out,
                "Node {:4}, zone {:>8}, type {name:>12} ",
                0,
                zone.zone_type.name()
            );
            for area in &zone.free_area {
                free_count_cell(&mut out, area.nr_free_by_type(mt));
            }
            out.push('\n');
        }
    }
    let _ = write!(out, "\n{:<23}", "Number of blocks type ");
    for name in MIGRATE_TYPE_NAMES {
        let _ = write!(out, "{name:>12} ");
    }
    out.push('\n');
    for zone in populated() {
        let _ = write!(out, "Node 0, zone {:>8} ", zone.zone_type.name());
        for n in pageblock_counts(pa, zone) {
            let _ = write!(out, "{n:12} ");
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctl::Scope;
    use crate::procfs::meminfo::golden::mask_aligned;

    const CAPTURE: &str = include_str!("../../tests/reference/linux-samples/pagetypeinfo");

    fn boot(arch: Arch, mem: u64) -> crate::ctl::Machine {
        crate::mm::boot_checked(arch, mem)
    }

    #[test]
    fn layout_matches_the_capture_byte_for_byte_shape() {
        // 8G: DMA, DMA32 and Normal populated, like the capture.
        let k = boot(Arch::X86_64, 8 << 30);
        let text = pagetypeinfo(&k);
        let ours: Vec<_> = text.lines().map(mask_aligned).collect();
        let theirs: Vec<_> = CAPTURE.lines().map(mask_aligned).collect();
        assert_eq!(ours, theirs);
        for (a, b) in text.lines().zip(CAPTURE.lines()) {
            assert_eq!(a.len(), b.len(), "{a:?}");
        }
    }

    /// Per-type free counts sum to buddyinfo; block counts cover each zone's
    /// online span; the DMA zone of x86_64 has 8 blocks as in the capture.
    #[test]
    fn counts_agree_with_buddyinfo_and_zone_spans() {
        let mut k = boot(Arch::X86_64, 8 << 30);
        k.execute_line(Scope::System, "alloc_pages 0 count=7 tag=p")
            .unwrap();
        k.check_invariants().unwrap();
        let text = pagetypeinfo(&k);
        let buddy = crate::procfs::buddyinfo(&k);
        for (zi, line) in buddy.lines().enumerate() {
            let zone_name = line.split_whitespace().nth(3).unwrap();
            let per_order: Vec<u64> = line
                .split_whitespace()
                .skip(4)
                .map(|n| n.parse().unwrap())
                .collect();
            let mut sums = vec![0u64; NR_PAGE_ORDERS];
            for l in text.lines().filter(|l| {
                l.starts_with("Node    0, zone ") && l.contains(&format!(" {zone_name}, type"))
            }) {
                for (o, n) in l.split_whitespace().skip(6).enumerate() {
                    sums[o] += n.parse::<u64>().unwrap();
                }
            }
            assert_eq!(sums, per_order, "zone {zi} {zone_name}");
        }
        let pa = &k.page_alloc;
        let blocks: Vec<u64> = pa
            .zones
            .iter()
            .filter(|z| z.is_populated())
            .map(|z| pageblock_counts(pa, z).iter().sum())
            .collect();
        assert_eq!(blocks[0], 8);
        // DMA32 up to the PCI hole: 3G - 16M in 2M blocks.
        assert_eq!(blocks[1], ((3u64 << 30) - (16 << 20)) >> 21);
        // Normal: the 5G above 4G.
        assert_eq!(blocks[2], 5 << 9);
        // The kernel image at 16M made DMA32 blocks unmovable.
        assert!(
            text.lines().any(|l| l.starts_with("Node 0, zone    DMA32 ")
                && l.split_whitespace().nth(4) != Some("0"))
        );
    }

    /// A fragmented 64M machine: raw allocations of each type claim and
    /// steal pageblocks, then half the unmovable ones are freed. The free
    /// counts land on the lists of their pageblocks' types and the block
    /// counts move (pinned text; the sums are checked by the test above).
    #[test]
    fn golden_fragmented_state() {
        let mut k = boot(Arch::X86_64, 64 << 20);
        for line in [
            "alloc_pages 0 count=300 tag=u",
            "alloc_pages 0 reclaimable count=300 tag=r",
            "alloc_pages 3 movable count=100 tag=m",
            "alloc_pages 2 atomic count=3 tag=a",
            "free_pages tag=u count=150",
            "free_pages tag=m count=37",
        ] {
            k.execute_line(Scope::System, line).unwrap();
            k.check_invariants().unwrap();
        }
        assert_eq!(pagetypeinfo(&k), GOLDEN_FRAGMENTED);
    }

    const GOLDEN_FRAGMENTED: &str = concat!(
        "Page block order: 9\n",
        "Pages per block:  512\n",
        "\n",
        "Free pages count per migrate type at order       0      1      2      3      4      5      6      7      8      9     10 \n",
        "Node    0, zone      DMA, type    Unmovable      0      0      0      0      0      0      0      0      0      0      0 \n",
        "Node    0, zone      DMA, type      Movable      0      0      0      0      0      0      0      0      1      1      3 \n",
        "Node    0, zone      DMA, type  Reclaimable      0      0      0      0      0      0      0      0      0      0      0 \n",
        "Node    0, zone      DMA, type   HighAtomic      0      0      0      0      0      0      0      0      0      0      0 \n",
        "Node    0, zone      DMA, type      Isolate      0      0      0      0      0      0      0      0      0      0      0 \n",
        "Node    0, zone    DMA32, type    Unmovable      1      1      1      0      1      1      0      0      0      0      0 \n",
        "Node    0, zone    DMA32, type      Movable      1      0      1      0      0      0      0      0      0      0      1 \n",
        "Node    0, zone    DMA32, type  Reclaimable      0      0      0      0      0      1      0      0      1      0      0 \n",
        "Node    0, zone    DMA32, type   HighAtomic      0      0      1      0      1      1      1      1      1      0      0 \n",
        "Node    0, zone    DMA32, type      Isolate      0      0      0      0      0      0      0      0      0      0      0 \n",
        "\n",
        "Number of blocks type     Unmovable      Movable  Reclaimable   HighAtomic      Isolate \n",
        "Node 0, zone      DMA            0            8            0            0            0 \n",
        "Node 0, zone    DMA32           18            3            2            1            0 \n",
    );

    #[test]
    fn i386_uses_order_10_blocks() {
        let k = boot(Arch::I386, 2 << 30);
        let text = pagetypeinfo(&k);
        assert!(text.starts_with("Page block order: 10\nPages per block:  1024\n\n"));
        assert_eq!(
            text.lines()
                .filter(|l| l.starts_with("Node 0, zone"))
                .count(),
            3
        );
        let pa = &k.page_alloc;
        let total: u64 = pa
            .zones
            .iter()
            .filter(|z| z.is_populated())
            .map(|z| pageblock_counts(pa, z).iter().sum::<u64>())
            .sum();
        // Each zone is walked from its own start_pfn: DMA (pfn 1..4096) at
        // 1, 1025, 2049, 3073; Normal [4096, 0x37ffe) takes 220 steps and
        // HighMem [0x37ffe, 2G) 289, so the block holding 0x37ffe counts in
        // both zones, as on Linux.
        assert_eq!(total, 4 + 220 + 289);
    }

    #[test]
    fn huge_free_lists_are_capped_like_linux() {
        let mut line = String::new();
        free_count_cell(&mut line, 123_456);
        free_count_cell(&mut line, 99_999);
        assert_eq!(line, ">100000  99999 ");
    }
}
