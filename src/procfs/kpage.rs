//! `kpagecount` and `kpageflags` (Linux: fs/proc/page.c, documented in
//! Documentation/admin-guide/mm/pagemap.rst): one little-endian `u64` per
//! page frame at offset pfn × 8, generated per read like `PID/pagemap`.
//!
//! Reads follow `kpage_read`: offset and length must be multiples of 8
//! (EINVAL), and the file ends at `get_max_dump_pfn()` — max_pfn rounded up
//! to a 128 MiB memory section on x86_64 (SPARSEMEM: the memmap of a
//! present section is all initialised), max_pfn itself on i386 (FLATMEM).
//!
//! What each simulated frame reads as, chosen as `stable_page_flags()` and
//! `folio_precise_page_mapcount()` would see the matching Linux page:
//!
//! | frame                                   | kpageflags                                                   | kpagecount |
//! |-----------------------------------------|--------------------------------------------------------------|------------|
//! | free block, head and every tail         | BUDDY (tails through `is_free_buddy_page`)                   | 0          |
//! | `UserAnon`                              | ANON, SWAPBACKED, UPTODATE, MMAP if mapped, LRU, ACTIVE, REFERENCED, DIRTY; SWAPCACHE while in the swap cache; OWNER_2 (PG_anon_exclusive) when one writable PTE maps it | PTEs mapping it |
//! | `SwapCache`                             | ANON, SWAPCACHE, SWAPBACKED, UPTODATE, MMAP if mapped, LRU, ACTIVE, REFERENCED, DIRTY | PTEs mapping it |
//! | `PageCache`                             | UPTODATE, MMAP if mapped, LRU, ACTIVE, REFERENCED, DIRTY     | PTEs mapping it |
//! | `ZeroPage`                              | ZERO_PAGE, RESERVED (Linux's zero page lives in the kernel's .bss) | 0    |
//! | `Slab`                                  | SLAB on every page; COMPOUND_HEAD / COMPOUND_TAIL when order > 0 (SLUB allocates with __GFP_COMP) | 0 |
//! | `PageTable`                             | PGTABLE                                                      | 0          |
//! | `KernelStack`                           | nothing: x86_64 stacks are vmalloc'ed order-0 pages (VMAP_STACK), i386 ones a non-compound block | 0 |
//! | `Kernel` (kmalloc_large, alloc_pages)   | COMPOUND_HEAD / COMPOUND_TAIL when order > 0 (kmalloc_large adds __GFP_COMP), else nothing | 0 |
//! | reserved at boot (first MiB, kernel image, struct pages) | RESERVED                                    | 0          |
//! | hole inside a present memory section, or past max_pfn in the last one (`init_unavailable_range`) | RESERVED | 0 |
//! | hole in a section without RAM (the PCI hole) | 0: since 6.15 `kpage_read` only calls `stable_page_flags()` for online pages, so KPF_NOPAGE is never set | 0 |
//!
//! The simulation's frame flags say where Linux's LRU bits are: LRU, ACTIVE,
//! DIRTY and REFERENCED are copied. REFERENCED is PG_referenced, set by
//! `folio_mark_accessed` (read()/write() through the page cache) and by
//! reclaim's `folio_check_references` — not by a fault, whose reference is
//! the young bit of the PTE: so a fresh anonymous page shows no
//! KPF_REFERENCED, as on Linux. Linux adds pages to the LRU through
//! per-CPU batches, so a page faulted a moment ago can lack KPF_LRU there
//! until the batch drains (15 pages); the simulation has no batches.
//! A page-cache page whose write is in flight has WRITEBACK, one reclaim
//! marked for rotation once written RECLAIM (page_writeback.rs).
//! Not modelled, so never set: LOCKED (no page is locked when a command
//! returns), UNEVICTABLE, MLOCKED, PRIVATE (buffer
//! heads), OWNER_2 as PG_mappedtodisk on page-cache pages, IDLE, KSM, THP,
//! HUGE.
//!
//! Real-kernel samples: tests/reference/linux-samples/kpageflags-self.c and
//! its output kpageflags-self.txt (Linux 6.18 on x86_64).

use crate::mm::Kernel;
use crate::mm::error::{MmError, MmResult};
use crate::mm::page_alloc::{
    FLAG_ACTIVE, FLAG_DIRTY, FLAG_LRU, FLAG_REFERENCED, FrameState, PageKind,
};
use crate::mm::types::{Arch, MAX_PAGE_ORDER, Pfn};

/// KPF_* bit numbers (include/uapi/linux/kernel-page-flags.h).
/// `PG_locked`.
pub const KPF_LOCKED: u32 = 0;
/// Obsolete (PG_error was removed); never set.
pub const KPF_ERROR: u32 = 1;
/// `PG_referenced`.
pub const KPF_REFERENCED: u32 = 2;
/// `PG_uptodate`.
pub const KPF_UPTODATE: u32 = 3;
/// `PG_dirty`.
pub const KPF_DIRTY: u32 = 4;
/// `PG_lru`: on an LRU list.
pub const KPF_LRU: u32 = 5;
/// `PG_active`: on an active LRU list.
pub const KPF_ACTIVE: u32 = 6;
/// A slab page (every page of the slab's folio).
pub const KPF_SLAB: u32 = 7;
/// `PG_writeback`.
pub const KPF_WRITEBACK: u32 = 8;
/// `PG_reclaim`.
pub const KPF_RECLAIM: u32 = 9;
/// A free page of the buddy allocator.
pub const KPF_BUDDY: u32 = 10;
/// Mapped by at least one PTE.
pub const KPF_MMAP: u32 = 11;
/// An anonymous page (`PAGE_MAPPING_ANON`).
pub const KPF_ANON: u32 = 12;
/// In the swap cache.
pub const KPF_SWAPCACHE: u32 = 13;
/// `PG_swapbacked`: backed by swap (anonymous and shmem pages).
pub const KPF_SWAPBACKED: u32 = 14;
/// First page of a compound page.
pub const KPF_COMPOUND_HEAD: u32 = 15;
/// Other pages of a compound page.
pub const KPF_COMPOUND_TAIL: u32 = 16;
/// A hugetlbfs page.
pub const KPF_HUGE: u32 = 17;
/// `PG_unevictable`.
pub const KPF_UNEVICTABLE: u32 = 18;
/// `PG_hwpoison`.
pub const KPF_HWPOISON: u32 = 19;
/// No struct page: the pseudo flag of a memory hole.
pub const KPF_NOPAGE: u32 = 20;
/// A KSM page.
pub const KPF_KSM: u32 = 21;
/// A transparent huge page.
pub const KPF_THP: u32 = 22;
/// A logically offline page.
pub const KPF_OFFLINE: u32 = 23;
/// The shared zero page (or the huge zero page).
pub const KPF_ZERO_PAGE: u32 = 24;
/// `PG_idle` (page_idle tracking).
pub const KPF_IDLE: u32 = 25;
/// A page-table page.
pub const KPF_PGTABLE: u32 = 26;
/// `PG_reserved` (include/linux/kernel-page-flags.h: "kernel hacking
/// assistances", bits 32 and up).
pub const KPF_RESERVED: u32 = 32;
/// `PG_mlocked`.
pub const KPF_MLOCKED: u32 = 33;
/// `PG_owner_2`: PG_anon_exclusive on anonymous pages, PG_mappedtodisk on
/// page-cache pages.
pub const KPF_OWNER_2: u32 = 34;
/// `PG_private` (buffer heads and other fs-private data).
pub const KPF_PRIVATE: u32 = 35;

/// Mode of both files (as in Linux: `S_IRUSR`, root only).
pub const KPAGE_MODE: u16 = 0o400;

/// Which of the two files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum KpageFile {
    /// `/proc/kpagecount`: map counts.
    Count,
    /// `/proc/kpageflags`: KPF_* bits.
    Flags,
}

/// The files at the top of the mount, as in /proc.
pub const KPAGE_FILES: &[(&str, KpageFile)] = &[
    ("kpagecount", KpageFile::Count),
    ("kpageflags", KpageFile::Flags),
];

/// Pages per SPARSEMEM memory section on x86_64 (2^27 bytes).
const PAGES_PER_SECTION: u64 = 1 << (27 - 12);

/// One bit.
const fn bit(kpf: u32) -> u64 {
    1 << kpf
}

/// `get_max_dump_pfn()`: the first pfn past the end of the files.
pub fn max_dump_pfn(kernel: &Kernel) -> u64 {
    let max_pfn = kernel.page_alloc.max_pfn;
    match kernel.page_alloc.arch {
        Arch::X86_64 => max_pfn.next_multiple_of(PAGES_PER_SECTION),
        Arch::I386 => max_pfn,
    }
}

/// `kpage_read`: the entries of `file` from byte `offset`, at most `len`
/// bytes. EINVAL unless both are multiples of 8; empty at and after the
/// end.
pub fn read(kernel: &Kernel, file: KpageFile, offset: u64, len: usize) -> MmResult<Vec<u8>> {
    if !offset.is_multiple_of(8) || !(len as u64).is_multiple_of(8) {
        return Err(MmError::Invalid(format!(
            "kpage reads are whole 8-byte entries: offset {offset}, length {len}"
        )));
    }
    let end = max_dump_pfn(kernel);
    let first = (offset / 8).min(end);
    let last = first.saturating_add(len as u64 / 8).min(end);
    let mut out = Vec::with_capacity(((last - first) * 8) as usize);
    for pfn in first..last {
        let value = match file {
            KpageFile::Count => page_count(kernel, Pfn(pfn)),
            KpageFile::Flags => stable_page_flags(kernel, Pfn(pfn)),
        };
        out.extend_from_slice(&value.to_le_bytes());
    }
    Ok(out)
}

/// Where a pfn lies, as the renderers need it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Frame {
    /// Page `pfn` of the block whose head is `head`.
    Block {
        /// The block head.
        head: Pfn,
        /// Free or allocated.
        state: FrameState,
    },
    /// Reserved at boot (each reserved frame is its own head).
    Reserved,
    /// No RAM: a struct page exists (PG_reserved) when its memory section
    /// holds RAM, else none.
    Hole {
        /// True when Linux has a struct page for it.
        has_page: bool,
    },
}

/// The buddy block covering `pfn`: the nearest aligned head below it whose
/// order reaches it (as `is_free_buddy_page` looks for a free one).
fn frame_of(kernel: &Kernel, pfn: Pfn) -> Frame {
    let pa = &kernel.page_alloc;
    if pfn.0 >= pa.max_pfn {
        return Frame::Hole {
            has_page: section_has_page(kernel, pfn),
        };
    }
    let frames = &pa.frames;
    if frames.state(pfn) == FrameState::Reserved {
        return Frame::Reserved;
    }
    for order in 0..=MAX_PAGE_ORDER {
        let head = Pfn(pfn.0 & !((1u64 << order) - 1));
        match frames.state(head) {
            state @ (FrameState::Free | FrameState::Allocated)
                if pfn.0 < head.0 + (1u64 << frames.order(head).0) =>
            {
                return Frame::Block { head, state };
            }
            _ => {}
        }
    }
    Frame::Hole {
        has_page: section_has_page(kernel, pfn),
    }
}

/// `pfn_to_online_page` for a pfn without RAM: x86_64 (SPARSEMEM) has a
/// memmap for every section that holds some RAM; i386 (FLATMEM) for every
/// pfn below max_pfn.
fn section_has_page(kernel: &Kernel, pfn: Pfn) -> bool {
    let pa = &kernel.page_alloc;
    match pa.arch {
        Arch::I386 => pfn.0 < pa.max_pfn,
        Arch::X86_64 => {
            let start = pfn.0 & !(PAGES_PER_SECTION - 1);
            let end = start + PAGES_PER_SECTION;
            pa.zones
                .iter()
                .flat_map(|z| z.present_ranges.iter())
                .any(|&(s, e)| s < end && start < e)
        }
    }
}

/// True for the kinds that processes map (the only ones with a map count).
fn is_user_page(kind: PageKind) -> bool {
    matches!(
        kind,
        PageKind::UserAnon | PageKind::SwapCache | PageKind::PageCache | PageKind::Shmem
    )
}

/// `/proc/kpagecount` of one pfn: the PTEs mapping it. Pages with a page
/// type (buddy, slab, page table) and the zero page (never counted: it is
/// a special PTE) read 0, as do holes.
pub fn page_count(kernel: &Kernel, pfn: Pfn) -> u64 {
    match frame_of(kernel, pfn) {
        Frame::Block {
            head,
            state: FrameState::Allocated,
        } => {
            let frames = &kernel.page_alloc.frames;
            if is_user_page(frames.kind(head)) {
                u64::from(frames.mapcount(head))
            } else {
                0
            }
        }
        _ => 0,
    }
}

/// `stable_page_flags()` of one pfn: the KPF_* bits (see the module table).
pub fn stable_page_flags(kernel: &Kernel, pfn: Pfn) -> u64 {
    let (head, state) = match frame_of(kernel, pfn) {
        Frame::Block { head, state } => (head, state),
        Frame::Reserved => return bit(KPF_RESERVED),
        Frame::Hole { has_page: true } => return bit(KPF_RESERVED),
        Frame::Hole { has_page: false } => return 0,
    };
    if state == FrameState::Free {
        return bit(KPF_BUDDY);
    }
    let frames = &kernel.page_alloc.frames;
    let kind = frames.kind(head);
    let order = frames.order(head).0;
    let compound = |flags: u64| {
        if order == 0 {
            flags
        } else if head == pfn {
            flags | bit(KPF_COMPOUND_HEAD)
        } else {
            flags | bit(KPF_COMPOUND_TAIL)
        }
    };
    match kind {
        PageKind::None | PageKind::KernelStack => 0,
        PageKind::Kernel => compound(0),
        PageKind::Slab => compound(bit(KPF_SLAB)),
        PageKind::PageTable => bit(KPF_PGTABLE),
        PageKind::ZeroPage => bit(KPF_ZERO_PAGE) | bit(KPF_RESERVED),
        PageKind::KernelImage | PageKind::Memmap | PageKind::Firmware => bit(KPF_RESERVED),
        PageKind::UserAnon | PageKind::SwapCache | PageKind::PageCache | PageKind::Shmem => {
            user_page_flags(kernel, head, kind)
        }
    }
}

/// The flags of a page that processes map (order 0 in the simulation).
fn user_page_flags(kernel: &Kernel, pfn: Pfn, kind: PageKind) -> u64 {
    let frames = &kernel.page_alloc.frames;
    let mut u = bit(KPF_UPTODATE);
    let mapcount = frames.mapcount(pfn);
    if mapcount > 0 {
        u |= bit(KPF_MMAP);
    }
    for (flag, kpf) in [
        (FLAG_LRU, KPF_LRU),
        (FLAG_ACTIVE, KPF_ACTIVE),
        (FLAG_DIRTY, KPF_DIRTY),
        (FLAG_REFERENCED, KPF_REFERENCED),
    ] {
        if frames.has_flag(pfn, flag) {
            u |= bit(kpf);
        }
    }
    match kind {
        PageKind::PageCache => {
            // PG_writeback while its write is in flight; PG_reclaim when
            // reclaim marked it for rotation once written.
            let (slot, index) = frames.rmap(pfn);
            if let Ok(inode) = kernel.vfs.inode(slot.0) {
                if inode.writeback.contains(&index.0) {
                    u |= bit(KPF_WRITEBACK);
                }
                if inode.reclaim.contains(&index.0) {
                    u |= bit(KPF_RECLAIM);
                }
            }
        }
        PageKind::SwapCache => {
            u |= bit(KPF_ANON) | bit(KPF_SWAPBACKED) | bit(KPF_SWAPCACHE);
        }
        PageKind::Shmem => {
            // A page of a shmem object's index: swap-backed, not anon
            // (its mapping is the shmem inode); a fault sets no
            // PG_referenced (kpageflags-self.txt: written 0x4818 =
            // UPTODATE DIRTY MMAP SWAPBACKED, read 0x4808, + LRU once
            // the per-CPU batch drains).
            u |= bit(KPF_SWAPBACKED);
        }
        _ => {
            u |= bit(KPF_ANON) | bit(KPF_SWAPBACKED);
            if kernel.swap.cache.entry_of(pfn).is_some() {
                // Mapped again and still holding its swap slot.
                u |= bit(KPF_SWAPCACHE);
            }
            if mapcount == 1 && anon_exclusive(kernel, pfn) {
                u |= bit(KPF_OWNER_2);
            }
        }
    }
    u
}

/// PG_anon_exclusive of a page mapped once: Linux clears it when fork
/// shares the page and sets it again when a write fault reuses it
/// (`wp_can_reuse_anon_folio`) or swap-in maps it writable — exactly when
/// the simulation makes its one PTE writable. (An exclusive page that
/// `mprotect` made read-only stays exclusive in Linux; the simulation
/// cannot tell it from a page still shared in spirit, and says not.)
fn anon_exclusive(kernel: &Kernel, pfn: Pfn) -> bool {
    let (slot, vpn) = kernel.page_alloc.frames.rmap(pfn);
    let pte = kernel.pte(slot, vpn.0);
    pte.is_page() && pte.pfn() == pfn && pte.is_write()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mm::types::Order;

    /// The bit numbers of include/uapi/linux/kernel-page-flags.h and
    /// include/linux/kernel-page-flags.h (Linux 6.18).
    #[test]
    fn bit_numbers_are_the_kernels() {
        let kernel: [(&str, u32, u32); 31] = [
            ("LOCKED", KPF_LOCKED, 0),
            ("ERROR", KPF_ERROR, 1),
            ("REFERENCED", KPF_REFERENCED, 2),
            ("UPTODATE", KPF_UPTODATE, 3),
            ("DIRTY", KPF_DIRTY, 4),
            ("LRU", KPF_LRU, 5),
            ("ACTIVE", KPF_ACTIVE, 6),
            ("SLAB", KPF_SLAB, 7),
            ("WRITEBACK", KPF_WRITEBACK, 8),
            ("RECLAIM", KPF_RECLAIM, 9),
            ("BUDDY", KPF_BUDDY, 10),
            ("MMAP", KPF_MMAP, 11),
            ("ANON", KPF_ANON, 12),
            ("SWAPCACHE", KPF_SWAPCACHE, 13),
            ("SWAPBACKED", KPF_SWAPBACKED, 14),
            ("COMPOUND_HEAD", KPF_COMPOUND_HEAD, 15),
            ("COMPOUND_TAIL", KPF_COMPOUND_TAIL, 16),
            ("HUGE", KPF_HUGE, 17),
            ("UNEVICTABLE", KPF_UNEVICTABLE, 18),
            ("HWPOISON", KPF_HWPOISON, 19),
            ("NOPAGE", KPF_NOPAGE, 20),
            ("KSM", KPF_KSM, 21),
            ("THP", KPF_THP, 22),
            ("OFFLINE", KPF_OFFLINE, 23),
            ("ZERO_PAGE", KPF_ZERO_PAGE, 24),
            ("IDLE", KPF_IDLE, 25),
            ("PGTABLE", KPF_PGTABLE, 26),
            ("RESERVED", KPF_RESERVED, 32),
            ("MLOCKED", KPF_MLOCKED, 33),
            ("OWNER_2", KPF_OWNER_2, 34),
            ("PRIVATE", KPF_PRIVATE, 35),
        ];
        for (name, ours, linux) in kernel {
            assert_eq!(ours, linux, "KPF_{name}");
        }
        // Values read on Linux 6.18 (tests/reference/linux-samples/
        // kpageflags-self.txt), rebuilt from the constants.
        let anon = bit(KPF_UPTODATE)
            | bit(KPF_LRU)
            | bit(KPF_MMAP)
            | bit(KPF_ANON)
            | bit(KPF_SWAPBACKED)
            | bit(KPF_OWNER_2);
        assert_eq!(anon, 0x4_0000_5828);
        assert_eq!(anon & !bit(KPF_OWNER_2), 0x5828, "shared after fork");
        assert_eq!(bit(KPF_ZERO_PAGE) | bit(KPF_RESERVED), 0x1_0100_0000);
        assert_eq!(bit(KPF_BUDDY), 0x400);
        assert_eq!(bit(KPF_RESERVED), 0x1_0000_0000);
        let shmem_written = bit(KPF_UPTODATE) | bit(KPF_DIRTY) | bit(KPF_MMAP);
        assert_eq!(shmem_written | bit(KPF_SWAPBACKED), 0x4818);
    }

    fn kernel() -> Kernel {
        Kernel::boot(crate::mm::MachineConfig::default()).unwrap()
    }

    fn flags(k: &Kernel, pfn: u64) -> u64 {
        stable_page_flags(k, Pfn(pfn))
    }

    #[test]
    fn reads_are_whole_entries_up_to_the_last_section() {
        let k = kernel();
        let end = max_dump_pfn(&k);
        assert_eq!(end % PAGES_PER_SECTION, 0);
        assert!(end >= k.page_alloc.max_pfn && end - k.page_alloc.max_pfn < PAGES_PER_SECTION);
        for (offset, len) in [(4, 8), (0, 4), (8, 12)] {
            let err = read(&k, KpageFile::Flags, offset, len).unwrap_err();
            assert_eq!(err.errno(), libc::EINVAL);
        }
        assert_eq!(read(&k, KpageFile::Count, 0, 64).unwrap().len(), 64);
        assert_eq!(
            read(&k, KpageFile::Flags, (end - 1) * 8, 64).unwrap().len(),
            8
        );
        assert!(read(&k, KpageFile::Flags, end * 8, 64).unwrap().is_empty());
        assert!(
            read(&k, KpageFile::Count, u64::MAX - 7, 8)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn boot_memory_free_blocks_and_holes() {
        let k = kernel();
        // Pfn 0 is not RAM but lies in the first (present) section.
        assert_eq!(flags(&k, 0), bit(KPF_RESERVED));
        // The first MiB and the kernel image are reserved.
        assert_eq!(flags(&k, 0x10), bit(KPF_RESERVED));
        assert_eq!(flags(&k, 0x1000), bit(KPF_RESERVED));
        // Below 1 MiB past the low RAM (pfn 0x9f..0xff): no RAM, but in a
        // present section, so reserved (the real kernel's pfn 0xa0).
        assert_eq!(flags(&k, 0xa0), bit(KPF_RESERVED));
        let max = k.page_alloc.max_pfn;
        // Every page of a free block is BUDDY, the head and the tails.
        let frames = &k.page_alloc.frames;
        let head = (0..max)
            .find(|&p| frames.state(Pfn(p)) == FrameState::Free && frames.order(Pfn(p)).0 >= 2)
            .unwrap();
        for p in head..head + (1 << frames.order(Pfn(head)).0) {
            assert_eq!(flags(&k, p), bit(KPF_BUDDY), "pfn {p:#x}");
            assert_eq!(page_count(&k, Pfn(p)), 0);
        }
        // The zero page.
        let zero = k.procs.zero_page.0;
        assert_eq!(flags(&k, zero), bit(KPF_ZERO_PAGE) | bit(KPF_RESERVED));
        assert_eq!(page_count(&k, Pfn(zero)), 0);
    }

    /// kpageflags-self.txt (real 6.18): a written shmem page 0x4818,
    /// a read one 0x4808, each + LRU here (no per-CPU batch); count 1,
    /// and 2 once a forked child maps it too.
    #[test]
    fn shmem_pages_are_swapbacked_not_anon() {
        use crate::mm::process::testing::*;
        let (mut k, pid) = setup();
        run(&mut k, pid, "mmap 8K shared name=s").unwrap();
        run(&mut k, pid, "touch s 4K write").unwrap();
        let a = addr(&k, pid, "s");
        run(&mut k, pid, &format!("touch {:#x} 4K read", a + 4096)).unwrap();
        let slot = k.procs.slot_of(pid).unwrap();
        let pfn = |k: &Kernel, vpn: u64| k.pte(slot, vpn).pfn();
        let (w, r) = (pfn(&k, a >> 12), pfn(&k, (a >> 12) + 1));
        assert_eq!(flags(&k, w.0) & !bit(KPF_LRU), 0x4818);
        assert_eq!(flags(&k, r.0) & !bit(KPF_LRU), 0x4808);
        assert_eq!(page_count(&k, w), 1);
        sys(&mut k, &format!("fork {pid}")).unwrap();
        let child = crate::mm::types::Pid(k.ns_last_pid);
        run(&mut k, child, "touch s 4K read").unwrap();
        assert_eq!(page_count(&k, w), 2);
    }

    #[test]
    fn the_pci_hole_has_no_struct_page() {
        let k = Kernel::boot(crate::mm::MachineConfig {
            mem_bytes: 6 << 30,
            ..Default::default()
        })
        .unwrap();
        // 3 GiB to 4 GiB: no RAM, no present section. Linux 6.18 writes 0.
        for pfn in [0xc0000, 0xf0000, 0xfffff] {
            assert_eq!(flags(&k, pfn), 0, "pfn {pfn:#x}");
            assert_eq!(page_count(&k, Pfn(pfn)), 0);
        }
        assert_ne!(flags(&k, 0xbffff), 0);
    }

    #[test]
    fn the_last_section_reads_past_max_pfn() {
        // 1 GiB + 4 MiB: max_pfn is not on a 128 MiB section boundary.
        let k = Kernel::boot(crate::mm::MachineConfig {
            mem_bytes: (1 << 30) + (4 << 20),
            ..Default::default()
        })
        .unwrap();
        let max = k.page_alloc.max_pfn;
        assert_eq!(max, 0x40400);
        assert_eq!(max_dump_pfn(&k), 0x48000);
        // init_unavailable_range: struct pages, reserved, never mapped.
        for pfn in [max, 0x47fff] {
            assert_eq!(flags(&k, pfn), bit(KPF_RESERVED));
            assert_eq!(page_count(&k, Pfn(pfn)), 0);
        }
        let tail = read(&k, KpageFile::Flags, 0x47ffe * 8, 64).unwrap();
        assert_eq!(tail.len(), 16);
        // i386 is FLATMEM: the file ends at max_pfn.
        let k = Kernel::boot(crate::mm::MachineConfig {
            arch: Arch::I386,
            mem_bytes: (1 << 30) + (4 << 20),
        })
        .unwrap();
        assert_eq!(max_dump_pfn(&k), k.page_alloc.max_pfn);
    }

    #[test]
    fn slabs_are_compound_page_tables_and_stacks_are_not() {
        let mut k = kernel();
        let frames = &k.page_alloc.frames;
        let max = k.page_alloc.max_pfn;
        let find = |kind: PageKind, min_order: u8| {
            (0..max)
                .find(|&p| {
                    frames.state(Pfn(p)) == FrameState::Allocated
                        && frames.kind(Pfn(p)) == kind
                        && frames.order(Pfn(p)).0 >= min_order
                })
                .unwrap()
        };
        let slab = find(PageKind::Slab, 1);
        assert_eq!(flags(&k, slab), bit(KPF_SLAB) | bit(KPF_COMPOUND_HEAD));
        assert_eq!(flags(&k, slab + 1), bit(KPF_SLAB) | bit(KPF_COMPOUND_TAIL));
        let pt = find(PageKind::PageTable, 0);
        assert_eq!(flags(&k, pt), bit(KPF_PGTABLE));
        assert_eq!(page_count(&k, Pfn(pt)), 0);
        let stack = find(PageKind::KernelStack, 1);
        assert_eq!(flags(&k, stack), 0);
        assert_eq!(flags(&k, stack + 1), 0);
        // kmalloc_large: compound, no other flag.
        let zone = k.kernel_zone();
        let big = k.alloc_pages(Order(2), zone, PageKind::Kernel).unwrap();
        assert_eq!(flags(&k, big.0), bit(KPF_COMPOUND_HEAD));
        assert_eq!(flags(&k, big.0 + 3), bit(KPF_COMPOUND_TAIL));
    }
}
