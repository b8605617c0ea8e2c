//! The one simulated clock and what work costs on it (Linux:
//! kernel/sched/cputime.c). Every fault, allocation, swap I/O and reclaim
//! scan advances `Kernel::clock_ns` by a documented cost and is charged to
//! the user, system or iowait time of the CPU the task runs on and to the
//! task itself, so /proc/stat, uptime, loadavg, PSI, dmesg stamps and
//! `PID/stat` all follow one clock.
//!
//! The costs are round numbers close to what this class of machine pays
//! (2 cores, a SATA-class disk); they are the one table of them.

/// One control command's own syscall work (system time).
pub const COMMAND_NS: u64 = 1_000;
/// A minor fault: the trap, the PTE, a zeroed page (system time).
pub const MINOR_FAULT_NS: u64 = 250;
/// User code touching one already-mapped page (4 KiB of stores).
pub const TOUCH_PAGE_NS: u64 = 100;
/// One page from the buddy allocator outside a fault (system time).
pub const PAGE_ALLOC_NS: u64 = 100;
/// One slab object (system time).
pub const SLAB_ALLOC_NS: u64 = 50;
/// Reclaim looking at one LRU page: isolate, check references, unmap
/// (system time of the reclaimer: kswapd or the allocating task).
pub const RECLAIM_SCAN_NS: u64 = 50;
/// One 4 KiB page read from or written to a swap device or the disk:
/// the task waits (iowait); the disk is busy this long (diskstats).
pub const SWAP_PAGE_IO_NS: u64 = 100_000;
