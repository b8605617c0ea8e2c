//! debugfs `extfrag/unusable_index` and `extfrag/extfrag_index`
//! (mm/vmstat.c `unusable_show` and `extfrag_show`): per populated zone
//! and order, the share of free memory unusable for that order and the
//! fragmentation index, three decimals each. The formulas live in
//! `mm::compaction` (their one owner); this only prints.

use std::fmt::Write;

use crate::mm::Kernel;
use crate::mm::compaction::{fill_contig_page_info, fragmentation_index, unusable_free_index};
use crate::mm::page_alloc::Zone;
use crate::mm::types::NR_PAGE_ORDERS;

/// Render `extfrag/unusable_index`: `%d.%03d ` per order.
pub fn unusable_index(kernel: &Kernel) -> String {
    render(kernel, |zone, order, out| {
        let index = unusable_free_index(order, &fill_contig_page_info(zone, order));
        let _ = write!(out, "{}.{:03} ", index / 1000, index % 1000);
    })
}

/// Render `extfrag/extfrag_index`: `%2d.%03d ` per order (-1.000 where a
/// block of the order is free).
pub fn extfrag_index(kernel: &Kernel) -> String {
    render(kernel, |zone, order, out| {
        let index = fragmentation_index(order, &fill_contig_page_info(zone, order));
        let _ = write!(out, "{:2}.{:03} ", index / 1000, (index % 1000).abs());
    })
}

/// One line per populated zone: `Node 0, zone %8s ` and the orders.
fn render(kernel: &Kernel, cell: impl Fn(&Zone, u8, &mut String)) -> String {
    let mut out = String::new();
    for zone in kernel.page_alloc.zones.iter().filter(|z| z.is_populated()) {
        let _ = write!(out, "Node 0, zone {:>8} ", zone.zone_type.name());
        for order in 0..NR_PAGE_ORDERS as u8 {
            cell(zone, order, &mut out);
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mm::types::Arch;

    const BUDDYINFO: &str = include_str!("../../tests/reference/linux-samples/extfrag/buddyinfo");
    const UNUSABLE: &str =
        include_str!("../../tests/reference/linux-samples/extfrag/unusable_index");
    const EXTFRAG: &str = include_str!("../../tests/reference/linux-samples/extfrag/extfrag_index");

    /// Give an 8G machine's three zones the free lists of this machine's
    /// kernel (read at the same moment as its debugfs files): both files
    /// come out byte for byte as Linux 6.18 printed them.
    #[test]
    fn matches_this_machines_kernel() {
        let mut k = crate::mm::boot_checked(Arch::X86_64, 8 << 30);
        let counts: Vec<Vec<u64>> = BUDDYINFO
            .lines()
            .map(|l| {
                l.split_whitespace()
                    .skip(4)
                    .map(|n| n.parse().unwrap())
                    .collect()
            })
            .collect();
        let zones: Vec<usize> = (0..k.page_alloc.zones.len())
            .filter(|&z| k.page_alloc.zones[z].is_populated())
            .collect();
        assert_eq!(zones.len(), counts.len());
        for (z, row) in zones.into_iter().zip(counts) {
            let zone = &mut k.page_alloc.zones[z];
            for (o, n) in row.into_iter().enumerate() {
                zone.free_area[o].set_nr_free_for_test(n);
            }
        }
        assert_eq!(unusable_index(&k), UNUSABLE);
        assert_eq!(extfrag_index(&k), EXTFRAG);
    }

    #[test]
    fn fragmented_zone_prints_fractions() {
        let mut k = crate::mm::boot_checked(Arch::X86_64, 1 << 30);
        // 16 free pages: 8 single ones and one order-3 block; order 5:
        // 1000 - (1000 + 16 * 1000 / 32) / 9 = 834.
        let zone = &mut k.page_alloc.zones[1];
        for o in 0..NR_PAGE_ORDERS {
            zone.free_area[o].set_nr_free_for_test(0);
        }
        zone.free_area[0].set_nr_free_for_test(8);
        zone.free_area[3].set_nr_free_for_test(1);
        let text = extfrag_index(&k);
        let dma32 = text.lines().nth(1).unwrap();
        assert_eq!(
            dma32,
            "Node 0, zone    DMA32 -1.000 -1.000 -1.000 -1.000  0.778  0.834  0.862  0.875  0.882  0.886  0.888 "
        );
        let text = unusable_index(&k);
        assert!(
            text.lines()
                .nth(1)
                .unwrap()
                .starts_with("Node 0, zone    DMA32 0.000 0.500 0.500 0.500 1.000 ")
        );
    }
}
