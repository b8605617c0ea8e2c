//! /proc/slabinfo, version 2.1 (Linux: mm/slab_common.c
//! `print_slabinfo_header`, `cache_show`; SLUB's `get_slabinfo`).

use crate::mm::Kernel;

/// The two header lines, byte for byte.
pub const HEADER: &str = "slabinfo - version: 2.1\n\
# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>\n";

/// Bytes of a typical row, to size the buffer once.
const ROW_BYTES: usize = 112;

/// Render /proc/slabinfo: the header, then one row per cache, newest cache
/// first (the order of Linux's `slab_caches` list). SLUB has no tunables
/// and no shared arrays (`0 0 0`, sharedavail 0) and every slab is active
/// (active_slabs == num_slabs).
///
/// A row is `"%-17s %6lu %6lu %6u %4u %4d : tunables %4u %4u %4u :
/// slabdata %6lu %6lu %6lu\n"`; the numbers are written by hand into one
/// pre-sized buffer because `format!` machinery costs more than the rest of
/// the file together (200 caches must render well under 50 µs).
pub fn slabinfo(kernel: &Kernel) -> String {
    let slab = &kernel.slab;
    let mut out: Vec<u8> = Vec::with_capacity(HEADER.len() + ROW_BYTES * slab.nr_caches());
    out.extend_from_slice(HEADER.as_bytes());
    for cache in slab.caches().rev() {
        let num_slabs = cache.num_slabs();
        let name = cache.name().as_bytes();
        out.extend_from_slice(name);
        out.extend_from_slice(&SPACES[..17usize.saturating_sub(name.len()) + 1]);
        push_num(&mut out, cache.active_objs(), 6);
        out.push(b' ');
        push_num(&mut out, cache.num_objs(), 6);
        out.push(b' ');
        push_num(&mut out, cache.size() as u64, 6);
        out.push(b' ');
        push_num(&mut out, cache.objperslab() as u64, 4);
        out.push(b' ');
        push_num(&mut out, cache.pagesperslab(), 4);
        out.extend_from_slice(b" : tunables    0    0    0 : slabdata ");
        push_num(&mut out, num_slabs, 6);
        out.push(b' ');
        push_num(&mut out, num_slabs, 6);
        out.extend_from_slice(b"      0\n");
    }
    // Only whole `&str`s and ASCII went in, so this never replaces anything.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Spaces to pad with (the widest field is 17).
const SPACES: &[u8; 32] = b"                                ";

/// Append `value` in decimal, right-aligned in `width` (`%Nlu`).
fn push_num(out: &mut Vec<u8>, value: u64, width: usize) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    let mut v = value;
    loop {
        start -= 1;
        digits[start] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let len = digits.len() - start;
    out.extend_from_slice(&SPACES[..width.saturating_sub(len)]);
    out.extend_from_slice(&digits[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mm::MachineConfig;

    const CAPTURE: &str = include_str!("../../tests/reference/linux-samples/slabinfo");

    #[test]
    fn header_is_byte_exact() {
        let capture_header: String = CAPTURE.split_inclusive('\n').take(2).collect();
        assert_eq!(HEADER, capture_header);
    }

    #[test]
    fn rows_have_the_kernel_layout() {
        let k = crate::ctl::Machine::boot(MachineConfig::default()).unwrap();
        let text = slabinfo(&k);
        assert!(text.starts_with(HEADER));
        let rows: Vec<&str> = text.lines().skip(2).collect();
        assert_eq!(rows.len(), k.slab.nr_caches());
        // Rows of names shorter than 17 bytes line up with the capture's
        // columns exactly: same fixed width to the last column.
        let capture_row = CAPTURE
            .lines()
            .find(|l| l.starts_with("vm_area_struct "))
            .unwrap();
        let ours = rows
            .iter()
            .find(|l| l.starts_with("vm_area_struct "))
            .unwrap();
        assert_eq!(ours.len(), capture_row.len());
        for (a, b) in ours.split(':').zip(capture_row.split(':')).skip(1) {
            assert_eq!(a.len(), b.len());
        }
        assert!(
            ours.ends_with(" : tunables    0    0    0 : slabdata     21     21      0"),
            "{ours}"
        );
        let kmem = rows.last().unwrap();
        assert!(kmem.starts_with("kmem_cache           "), "{kmem}");
        for row in &rows {
            let f: Vec<&str> = row.split_whitespace().collect();
            assert_eq!(f.len(), 16, "{row}");
            assert_eq!(f[13], f[14], "active_slabs == num_slabs: {row}");
            let active: u64 = f[1].parse().unwrap();
            let num: u64 = f[2].parse().unwrap();
            assert!(active <= num, "{row}");
            assert_eq!(
                num,
                f[4].parse::<u64>().unwrap() * f[14].parse::<u64>().unwrap()
            );
        }
    }

    /// The hand-written row equals the kernel's printf format.
    #[test]
    fn rows_equal_the_printf_format() {
        let mut k = crate::ctl::Machine::boot(MachineConfig::default()).unwrap();
        k.kmem_cache_create("a_name_longer_than_17", 100, 8)
            .unwrap();
        k.kmalloc(100).unwrap();
        let mut expected = String::from(HEADER);
        for c in k.slab.caches().rev() {
            expected.push_str(&format!(
                "{:<17} {:>6} {:>6} {:>6} {:>4} {:>4} : tunables {:>4} {:>4} {:>4} : slabdata {:>6} {:>6} {:>6}\n",
                c.name(),
                c.active_objs(),
                c.num_objs(),
                c.size(),
                c.objperslab(),
                c.pagesperslab(),
                0,
                0,
                0,
                c.num_slabs(),
                c.num_slabs(),
                0
            ));
        }
        assert_eq!(slabinfo(&k), expected);
        let mut s = Vec::new();
        push_num(&mut s, 0, 6);
        push_num(&mut s, u64::MAX, 6);
        assert_eq!(String::from_utf8(s).unwrap(), format!("     0{}", u64::MAX));
    }

    #[test]
    fn long_names_push_columns_right() {
        let mut k = crate::ctl::Machine::boot(MachineConfig::default()).unwrap();
        k.kmem_cache_create("request_sock_subflow_v6", 392, 8)
            .unwrap();
        let text = slabinfo(&k);
        let row = text.lines().nth(2).unwrap();
        let capture_row = CAPTURE
            .lines()
            .find(|l| l.starts_with("request_sock_subflow_v6 "))
            .unwrap();
        assert_eq!(row, capture_row);
    }
}
