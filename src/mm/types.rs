//! Unit newtypes: page frame numbers, orders, pids, addresses.

use std::fmt;

/// Bytes in a page (4 KiB on x86).
pub const PAGE_SIZE: u64 = 4096;
/// log2 of [`PAGE_SIZE`].
pub const PAGE_SHIFT: u32 = 12;
/// Largest buddy order (MAX_PAGE_ORDER): blocks of 2^10 pages = 4 MiB.
pub const MAX_PAGE_ORDER: u8 = 10;
/// Number of buddy orders (NR_PAGE_ORDERS).
pub const NR_PAGE_ORDERS: usize = MAX_PAGE_ORDER as usize + 1;

/// A page frame number: physical address >> PAGE_SHIFT.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Pfn(pub u64);

impl Pfn {
    /// The physical byte address of the frame.
    pub fn phys(self) -> u64 {
        self.0 << PAGE_SHIFT
    }
    /// The pfn of the buddy of a block of `order` starting here.
    pub fn buddy(self, order: Order) -> Pfn {
        Pfn(self.0 ^ (1u64 << order.0))
    }
    /// Index into per-frame arrays.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for Pfn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// A buddy order: a block of 2^order pages.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Order(pub u8);

impl Order {
    /// Pages in a block of this order.
    pub fn pages(self) -> u64 {
        1u64 << self.0
    }
    /// `get_order(size)`: the smallest order whose block holds `bytes`.
    pub fn for_bytes(bytes: u64) -> Order {
        let pages = bytes.div_ceil(PAGE_SIZE).max(1);
        Order(pages.next_power_of_two().trailing_zeros() as u8)
    }
}

/// A process id.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Pid(pub u32);

impl fmt::Display for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An id or count as a Vec index: u32 and u64 values of the simulation
/// always fit usize on the 64-bit hosts mmfs runs on (checked, saturating).
#[inline]
pub fn ix(i: impl Into<u64>) -> usize {
    usize::try_from(i.into()).unwrap_or(usize::MAX)
}

/// An mm slot: the index of an address space in the process table, what
/// the reverse map of a user page and a swap slot's owner record (1..=32767).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct MmSlot(pub u32);

impl MmSlot {
    /// The slot as a table index.
    pub fn index(self) -> usize {
        // u32 always fits in usize on the 32- and 64-bit hosts mmfs builds for.
        self.0 as usize
    }
}

impl fmt::Display for MmSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An index into the node's zones (0 = DMA, …): the highest zone a request
/// may use, as a GFP zone modifier names it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ZoneIdx(pub usize);

/// A user virtual page number (address >> PAGE_SHIFT), what the reverse
/// map and a swap slot's owner record.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Vpn(pub u64);

impl Vpn {
    /// The page's first address.
    pub fn addr(self) -> VirtAddr {
        VirtAddr(self.0 << PAGE_SHIFT)
    }
}

impl fmt::Display for Vpn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// A user virtual address.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct VirtAddr(pub u64);

impl VirtAddr {
    /// Virtual page number.
    pub fn vpn(self) -> Vpn {
        Vpn(self.0 >> PAGE_SHIFT)
    }
    /// True when the address is page aligned.
    pub fn is_page_aligned(self) -> bool {
        self.0.is_multiple_of(PAGE_SIZE)
    }
    /// Checked addition of a byte count.
    pub fn checked_add(self, bytes: u64) -> Option<VirtAddr> {
        self.0.checked_add(bytes).map(VirtAddr)
    }
}

impl fmt::Display for VirtAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}", self.0)
    }
}

/// Simulated CPU architecture.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Arch {
    /// 64-bit: zones DMA, DMA32, Normal; 4-level page tables.
    X86_64,
    /// 32-bit non-PAE: zones DMA, Normal, HighMem; 2-level page tables.
    I386,
}

impl Arch {
    /// Name as `uname -m` prints it.
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::I386 => "i386",
        }
    }
}

/// Pages to KiB.
pub fn pages_to_kb(pages: u64) -> u64 {
    pages << (PAGE_SHIFT - 10)
}

/// Parse a size the way the kernel's `memparse` does: decimal or 0x hex,
/// optional K/M/G/T suffix (powers of 1024, case-insensitive).
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let (digits, shift) = match text.as_bytes()[text.len() - 1].to_ascii_lowercase() {
        b'k' => (&text[..text.len() - 1], 10),
        b'm' => (&text[..text.len() - 1], 20),
        b'g' => (&text[..text.len() - 1], 30),
        b't' => (&text[..text.len() - 1], 40),
        _ => (text, 0),
    };
    let value = parse_number(digits)?;
    value.checked_mul(1u64 << shift)
}

/// Parse a decimal or `0x` hex unsigned number.
pub fn parse_number(text: &str) -> Option<u64> {
    if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        if hex.is_empty() {
            return None;
        }
        u64::from_str_radix(hex, 16).ok()
    } else {
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        text.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_like_memparse() {
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("64M"), Some(64 << 20));
        assert_eq!(parse_size("1g"), Some(1 << 30));
        assert_eq!(parse_size("0x1000"), Some(4096));
        assert_eq!(parse_size("2T"), Some(2 << 40));
        assert_eq!(parse_size("M"), None);
        assert_eq!(parse_size("-1"), None);
        assert_eq!(parse_size("99999999999999999999"), None);
    }

    #[test]
    fn get_order_rounds_up() {
        assert_eq!(Order::for_bytes(1), Order(0));
        assert_eq!(Order::for_bytes(4096), Order(0));
        assert_eq!(Order::for_bytes(4097), Order(1));
        assert_eq!(Order::for_bytes(20000), Order(3));
    }

    #[test]
    fn buddy_is_xor() {
        assert_eq!(Pfn(8).buddy(Order(3)), Pfn(0));
        assert_eq!(Pfn(0).buddy(Order(0)), Pfn(1));
    }
}
