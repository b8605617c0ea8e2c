//! Helpers Linux keeps in mm/util.c: the overcommit limit.

use super::Kernel;

/// `vm_commit_limit` (overcommit_kbytes unset): `(totalram - hugetlb) *
/// overcommit_ratio / 100 + total_swap_pages`, in pages.
pub fn vm_commit_limit(totalram: u64, hugetlb: u64, overcommit_ratio: u64, swap: u64) -> u64 {
    let allowed = (u128::from(totalram.saturating_sub(hugetlb)) * u128::from(overcommit_ratio)
        / 100)
        .min(u128::from(u64::MAX));
    // The min above keeps the value in range.
    u64::try_from(allowed)
        .unwrap_or(u64::MAX)
        .saturating_add(swap)
}

impl Kernel {
    /// This machine's CommitLimit, in pages (no hugetlb pages are reserved).
    pub fn vm_commit_limit(&self) -> u64 {
        vm_commit_limit(
            self.totalram_pages(),
            0,
            self.sysctl.overcommit_ratio,
            self.swap.total_pages(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// §14.9 of the capture: CommitLimit 12341828 kB = 24683656 kB × 50 %, no swap.
    #[test]
    fn commit_limit_matches_the_capture() {
        assert_eq!(vm_commit_limit(24683656 / 4, 0, 50, 0) * 4, 12341828);
        assert_eq!(vm_commit_limit(1000, 0, 50, 300), 800);
        assert_eq!(vm_commit_limit(1000, 2000, 50, 0), 0);
        assert_eq!(vm_commit_limit(u64::MAX, 0, u64::MAX, 5), u64::MAX);
    }
}
