//! Virtual memory areas and the operations on them (Linux: mm/mmap.c,
//! mm/vma.c, mm/mprotect.c, mm/madvise.c, mm/util.c).
//!
//! An address space is an ordered set of VMAs by start, the kernel's maple
//! tree ([`MapleTree`]: each subtree knows its largest gap, so placing a
//! mapping is O(log n)). Invariants (checked by
//! [`Kernel::check_process_invariants`]): VMAs are page aligned, do not
//! overlap, lie below `task_size`, and no two neighbours could be merged
//! (`vma_merge` keeps it so). The per-mm counters total_vm, data_vm,
//! exec_vm, stack_vm and the committed pages change only in
//! [`MmStruct::insert_vma`] and [`MmStruct::remove_vma`], so they always
//! equal a recount.
//!
//! Every VMA holds a `vm_area_struct` from slab, and once it has pages an
//! `anon_vma_chain` linking it to an `anon_vma` (shared with the VMAs split
//! from it, as `anon_vma_clone` does).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::Kernel;
use super::error::{MmError, MmResult};
use super::maple_tree::{self, MapleTree};
use super::mprotect::{Prot, prot_bits};
use super::slab_common;
use super::slub::SlabObject;
use super::types::{Arch, MmSlot, PAGE_SHIFT, PAGE_SIZE, VirtAddr};

/// VM_READ.
pub const VM_READ: u64 = 0x1;
/// VM_WRITE.
pub const VM_WRITE: u64 = 0x2;
/// VM_EXEC.
pub const VM_EXEC: u64 = 0x4;
/// VM_SHARED.
pub const VM_SHARED: u64 = 0x8;
/// VM_MAYREAD.
pub const VM_MAYREAD: u64 = 0x10;
/// VM_MAYWRITE.
pub const VM_MAYWRITE: u64 = 0x20;
/// VM_MAYEXEC.
pub const VM_MAYEXEC: u64 = 0x40;
/// VM_MAYSHARE.
pub const VM_MAYSHARE: u64 = 0x80;
/// VM_GROWSDOWN: the stack (VM_STACK on x86).
pub const VM_GROWSDOWN: u64 = 0x100;
/// VM_ACCOUNT: counted in Committed_AS.
pub const VM_ACCOUNT: u64 = 0x0010_0000;
/// The protection bits.
pub const VM_ACCESS_FLAGS: u64 = VM_READ | VM_WRITE | VM_EXEC;

/// smaps `VmFlags` mnemonics of the flags the simulation sets, in bit order
/// (fs/proc/task_mmu.c `show_smap_vma_flags`).
pub(crate) const MNEMONICS: [(u64, &str); 10] = [
    (VM_READ, "rd"),
    (VM_WRITE, "wr"),
    (VM_EXEC, "ex"),
    (VM_SHARED, "sh"),
    (VM_MAYREAD, "mr"),
    (VM_MAYWRITE, "mw"),
    (VM_MAYEXEC, "me"),
    (VM_MAYSHARE, "ms"),
    (VM_GROWSDOWN, "gd"),
    (VM_ACCOUNT, "ac"),
];

/// `vm_flags` of a VMA.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct VmFlags(pub u64);

impl VmFlags {
    /// Flags of a private anonymous mapping with `prot` (`calc_vm_prot_bits`
    /// plus VM_MAY*; VM_ACCOUNT when writable, `accountable_mapping`).
    pub fn anon(prot: Prot) -> VmFlags {
        let mut bits = VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC | prot_bits(prot);
        if prot.write {
            bits |= VM_ACCOUNT;
        }
        VmFlags(bits)
    }
    /// Flags of a file mapping with `prot` (`do_mmap`: VM_MAY* always, as
    /// the file is open read-write; VM_SHARED | VM_MAYSHARE for MAP_SHARED;
    /// VM_ACCOUNT only for a private writable one, `accountable_mapping`).
    pub fn file(prot: Prot, shared: bool) -> VmFlags {
        let mut bits = VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC | prot_bits(prot);
        if shared {
            bits |= VM_SHARED | VM_MAYSHARE;
        } else if prot.write {
            bits |= VM_ACCOUNT;
        }
        VmFlags(bits)
    }
    /// VM_READ.
    pub fn is_read(self) -> bool {
        self.0 & VM_READ != 0
    }
    /// VM_WRITE.
    pub fn is_write(self) -> bool {
        self.0 & VM_WRITE != 0
    }
    /// VM_EXEC.
    pub fn is_exec(self) -> bool {
        self.0 & VM_EXEC != 0
    }
    /// VM_GROWSDOWN.
    pub fn is_stack(self) -> bool {
        self.0 & VM_GROWSDOWN != 0
    }
    /// VM_ACCOUNT.
    pub fn is_accounted(self) -> bool {
        self.0 & VM_ACCOUNT != 0
    }
    /// `vma_is_accessible`: some access allowed.
    pub fn is_accessible(self) -> bool {
        self.0 & VM_ACCESS_FLAGS != 0
    }
    /// The smaps `VmFlags:` value: each mnemonic followed by a space.
    pub fn mnemonics(self) -> String {
        let mut out = String::new();
        for (bit, name) in MNEMONICS {
            if self.0 & bit != 0 {
                out.push_str(name);
                out.push(' ');
            }
        }
        out
    }
}

/// One virtual memory area.
#[derive(Debug)]
pub struct Vma {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
    /// vm_flags.
    pub flags: VmFlags,
    /// `[anon:NAME]` (prctl PR_SET_VMA_ANON_NAME).
    pub name: Option<Arc<str>>,
    /// Index of its anon_vma in the mm, once it has pages.
    pub anon_vma: Option<u32>,
    /// Its vm_area_struct.
    pub(crate) object: Option<SlabObject>,
    /// Its anon_vma_chain (present with `anon_vma`).
    pub(crate) avc: Option<SlabObject>,
    /// The mapped file (`vm_file`, `vm_pgoff`), None for anonymous memory.
    pub file: Option<VmFile>,
    /// A forked VMA's second anon_vma_chain (`anon_vma_fork` links the
    /// child's VMA to the parent's anon_vma and to its own).
    pub(crate) fork_avc: Option<SlabObject>,
    /// The shmem object of a shared anonymous mapping (`vm_file` of
    /// `shmem_zero_setup`), None otherwise.
    pub shm: Option<super::shmem::VmShm>,
}

/// A file mapping's file: which inode of `/dev/sda1`, the file page that
/// the VMA's first page maps (`vm_pgoff`), and the path maps shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VmFile {
    /// Inode number.
    pub ino: u32,
    /// File page of the VMA's first page.
    pub pgoff: u64,
    /// The path inside the machine when it was mapped (`d_path`; a later
    /// rename is not followed).
    pub path: Arc<str>,
}

impl VmFile {
    /// The same file, `pages` further in (the upper part of a split).
    pub fn advanced(&self, pages: u64) -> VmFile {
        VmFile {
            pgoff: self.pgoff + pages,
            ..self.clone()
        }
    }
}

impl Vma {
    /// Pages covered.
    pub fn pages(&self) -> u64 {
        (self.end - self.start) >> PAGE_SHIFT
    }
    /// First virtual page.
    pub fn start_vpn(&self) -> u64 {
        self.start >> PAGE_SHIFT
    }
    /// One past the last virtual page.
    pub fn end_vpn(&self) -> u64 {
        self.end >> PAGE_SHIFT
    }
    /// The file page that virtual page `vpn` (inside) maps, for a file VMA
    /// (`linear_page_index`).
    pub fn file_index(&self, vpn: u64) -> Option<u64> {
        self.file
            .as_ref()
            .map(|f| f.pgoff + (vpn - self.start_vpn()))
    }
    /// `vma_is_anon_shmem`: a shared anonymous mapping.
    pub fn is_anon_shmem(&self) -> bool {
        self.shm.is_some()
    }
    /// The shmem page index that virtual page `vpn` (inside) maps.
    pub fn shmem_index(&self, vpn: u64) -> Option<u64> {
        self.shm.map(|s| s.pgoff + (vpn - self.start_vpn()))
    }
    /// VM_SHARED.
    pub fn is_shared(&self) -> bool {
        self.flags.0 & VM_SHARED != 0
    }
    /// True when `addr` lies inside.
    pub fn contains(&self, addr: u64) -> bool {
        self.start <= addr && addr < self.end
    }
}

/// An anon_vma and the number of VMAs linked to it.
#[derive(Debug)]
pub(crate) struct AnonVma {
    pub(crate) refs: u32,
    pub(crate) object: Option<SlabObject>,
}

/// Fixed layout of an address space (no randomisation: determinism).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// TASK_SIZE: first address above user space.
    pub task_size: u64,
    /// STACK_TOP: the stack grows down from here.
    pub stack_top: u64,
    /// mmap_base: top-down mmap starts below it (TASK_SIZE minus a 128 MiB
    /// gap, as `mmap_base()` gives without randomisation).
    pub mmap_base: u64,
    /// TASK_UNMAPPED_BASE: where the bottom-up fallback search starts.
    pub legacy_base: u64,
    /// start_brk: the heap begins here, after the (unsimulated) program.
    pub start_brk: u64,
    /// CONFIG_TRANSPARENT_HUGEPAGE on a 64-bit kernel: `__get_unmapped_area`
    /// puts anonymous private mappings whose length is a multiple of
    /// PMD_SIZE on a PMD boundary (`thp_get_unmapped_area_vmflags`). Off on
    /// i386 (`__thp_get_unmapped_area` returns 0 without CONFIG_64BIT).
    pub thp_align: bool,
}

impl Layout {
    /// The layout of `arch`: x86_64 47-bit user space (the addresses of a
    /// PIE program with ASLR off), i386 with the 3G/1G split.
    pub fn of(arch: Arch) -> Layout {
        match arch {
            Arch::X86_64 => Layout {
                task_size: 0x7fff_ffff_f000,
                stack_top: 0x7fff_ffff_f000,
                mmap_base: 0x7fff_f7ff_f000,
                legacy_base: 0x2aaa_aaaa_a000,
                start_brk: 0x5555_5555_9000,
                thp_align: true,
            },
            Arch::I386 => Layout {
                task_size: 0xc000_0000,
                stack_top: 0xc000_0000,
                mmap_base: 0xb800_0000,
                legacy_base: 0x4000_0000,
                start_brk: 0x0804_c000,
                thp_align: false,
            },
        }
    }
}

/// `stack_guard_gap`: 256 pages kept free below a stack.
pub const STACK_GUARD_GAP: u64 = 256 * PAGE_SIZE;
/// PMD_SIZE on x86_64 (a PMD-mapped THP): the alignment
/// `thp_get_unmapped_area_vmflags` gives anonymous mappings of a multiple
/// of it.
pub const PMD_SIZE: u64 = 2 << 20;
/// vm.mmap_min_addr.
pub const MMAP_MIN_ADDR: u64 = 65536;
/// vm.max_map_count.
pub const MAX_MAP_COUNT: usize = 65530;
/// RLIMIT_STACK default (8 MiB).
pub const STACK_RLIMIT: u64 = 8 << 20;
/// Size of the `[stack]` VMA of a fresh process: one page of arguments
/// plus the 128 KiB `setup_arg_pages` adds.
pub const INITIAL_STACK: u64 = PAGE_SIZE + (128 << 10);
/// Pages at the top of the stack a fresh process has touched (arguments,
/// environment, auxv, the first frames).
pub const INITIAL_STACK_PAGES_TOUCHED: u64 = 3;

/// The memory descriptor of a process (`struct mm_struct`).
pub struct MmStruct {
    /// VMAs by start address, with their gaps.
    pub(crate) vmas: MapleTree,
    /// The page tables.
    pub pgtables: super::memory::PageTables,
    /// The address-space layout.
    pub layout: Layout,
    /// MM_ANONPAGES: resident anon pages.
    pub rss_anon: u64,
    /// MM_FILEPAGES: resident page-cache pages mapped here.
    pub rss_file: u64,
    /// MM_SHMEMPAGES: resident shmem pages mapped here.
    pub rss_shmem: u64,
    /// MM_SWAPENTS: swap entries in the page tables.
    pub swap_ents: u64,
    /// VMA swap readahead state (`swap_readahead_info`, packed as Linux
    /// packs it: see [`super::swap_state::swap_ra_val`]). Linux keeps one
    /// per VMA; one per address space is what a fault stream in one
    /// mapping at a time needs.
    pub swap_ra: u64,
    /// Peak RSS, updated before RSS drops (VmHWM).
    pub hiwater_rss: u64,
    /// Peak total_vm, updated before total_vm drops (VmPeak).
    pub hiwater_vm: u64,
    /// Pages mapped (VmSize).
    pub total_vm: u64,
    /// Private writable non-stack pages (VmData).
    pub data_vm: u64,
    /// Executable non-writable pages (VmExe + VmLib).
    pub exec_vm: u64,
    /// Stack pages (VmStk).
    pub stack_vm: u64,
    /// Pages of VM_ACCOUNT VMAs: this mm's part of Committed_AS.
    pub committed: u64,
    /// start_brk.
    pub start_brk: u64,
    /// The program break (may be unaligned).
    pub brk: u64,
    /// start_stack: where argc sits (stat field 28).
    pub start_stack: u64,
    pub(crate) anon_vmas: Vec<Option<AnonVma>>,
    pub(crate) free_anon_vmas: Vec<u32>,
    /// Number of VMAs carrying each anon name.
    pub(crate) names: BTreeMap<Arc<str>, u32>,
}

/// `vm_stat_account`'s classes of a VMA.
pub(crate) fn stat_class(flags: VmFlags) -> (bool, bool, bool) {
    let f = flags.0;
    let exec = f & (VM_EXEC | VM_WRITE | VM_GROWSDOWN) == VM_EXEC;
    let stack = !exec && f & VM_GROWSDOWN != 0;
    let data = !exec && !stack && f & (VM_WRITE | VM_SHARED | VM_GROWSDOWN) == VM_WRITE;
    (exec, stack, data)
}

impl MmStruct {
    /// An empty address space whose page tables start with `pgd`.
    pub fn new(arch: Arch, pgd: super::types::Pfn) -> MmStruct {
        let layout = Layout::of(arch);
        MmStruct {
            vmas: MapleTree::new(),
            pgtables: super::memory::PageTables::new(arch, pgd),
            layout,
            rss_anon: 0,
            rss_file: 0,
            rss_shmem: 0,
            swap_ents: 0,
            swap_ra: 0,
            hiwater_rss: 0,
            hiwater_vm: 0,
            total_vm: 0,
            data_vm: 0,
            exec_vm: 0,
            stack_vm: 0,
            committed: 0,
            start_brk: layout.start_brk,
            brk: layout.start_brk,
            start_stack: layout.stack_top - PAGE_SIZE,
            anon_vmas: Vec::new(),
            free_anon_vmas: Vec::new(),
            names: BTreeMap::new(),
        }
    }

    /// The VMAs in address order.
    pub fn vmas(&self) -> impl DoubleEndedIterator<Item = &Vma> {
        self.vmas.values()
    }

    /// Number of VMAs (map_count).
    pub fn map_count(&self) -> usize {
        self.vmas.len()
    }

    /// The VMA containing `addr`.
    pub fn vma_lookup(&self, addr: u64) -> Option<&Vma> {
        self.vmas.lookup(addr)
    }

    /// Linux's `find_vma`: the first VMA that ends above `addr`.
    pub fn find_vma(&self, addr: u64) -> Option<&Vma> {
        if let Some(v) = self.vma_lookup(addr) {
            return Some(v);
        }
        self.vmas.range(addr..).next().map(|(_, v)| v)
    }

    /// The last VMA that starts below `addr`.
    pub fn prev_vma(&self, addr: u64) -> Option<&Vma> {
        self.vmas.range(..addr).next_back().map(|(_, v)| v)
    }

    /// True when some VMA meets `[start, end)`.
    pub fn intersects(&self, start: u64, end: u64) -> bool {
        self.find_vma(start).is_some_and(|v| v.start < end)
    }

    /// A VMA carries the anon name `name`.
    pub fn has_name(&self, name: &str) -> bool {
        self.names.contains_key(name)
    }

    /// Start of the lowest VMA named `name`.
    pub fn named_start(&self, name: &str) -> Option<u64> {
        if !self.has_name(name) {
            return None;
        }
        self.vmas
            .values()
            .find(|v| v.name.as_deref() == Some(name))
            .map(|v| v.start)
    }

    /// The `[stack]` VMA (`vma_is_initial_stack`).
    pub fn stack_vma(&self) -> Option<&Vma> {
        self.vma_lookup(self.start_stack)
    }

    /// `vma_is_initial_heap`.
    pub fn is_heap(&self, vma: &Vma) -> bool {
        vma.start <= self.brk && vma.end >= self.start_brk
    }

    /// `vma_is_initial_stack`.
    pub fn is_stack(&self, vma: &Vma) -> bool {
        vma.start <= self.start_stack && vma.end >= self.start_stack
    }

    /// Add a VMA and account it (`vm_stat_account`, committed, names).
    pub(crate) fn insert_vma(&mut self, vma: Vma) {
        let pages = vma.pages();
        self.account(vma.flags, pages as i64);
        if let Some(name) = &vma.name {
            *self.names.entry(name.clone()).or_insert(0) += 1;
        }
        let replaced = self.vmas.insert(vma);
        debug_assert!(replaced.is_none(), "two VMAs at one start");
    }

    /// Take a VMA out (starting at `start`) and unaccount it.
    pub(crate) fn remove_vma(&mut self, start: u64) -> Option<Vma> {
        let vma = self.vmas.remove(&start)?;
        self.account(vma.flags, -(vma.pages() as i64));
        if let Some(name) = &vma.name
            && let Some(count) = self.names.get_mut(name)
        {
            *count -= 1;
            if *count == 0 {
                self.names.remove(name);
            }
        }
        Some(vma)
    }

    pub(crate) fn account(&mut self, flags: VmFlags, pages: i64) {
        let add = |counter: &mut u64| *counter = counter.wrapping_add_signed(pages);
        add(&mut self.total_vm);
        let (exec, stack, data) = stat_class(flags);
        if exec {
            add(&mut self.exec_vm);
        } else if stack {
            add(&mut self.stack_vm);
        } else if data {
            add(&mut self.data_vm);
        }
        if flags.is_accounted() {
            add(&mut self.committed);
        }
    }

    /// `get_mm_rss`: resident pages, anonymous, file and shmem.
    pub fn rss(&self) -> u64 {
        self.rss_anon + self.rss_file + self.rss_shmem
    }

    /// `update_hiwater_rss`: remember the peak before RSS drops.
    pub fn update_hiwater_rss(&mut self) {
        self.hiwater_rss = self.hiwater_rss.max(self.rss());
    }

    /// `update_hiwater_vm`: remember the peak before total_vm drops.
    pub fn update_hiwater_vm(&mut self) {
        self.hiwater_vm = self.hiwater_vm.max(self.total_vm);
    }

    /// VmPeak in pages.
    pub fn peak_vm(&self) -> u64 {
        self.hiwater_vm.max(self.total_vm)
    }

    /// VmHWM in pages.
    pub fn peak_rss(&self) -> u64 {
        self.hiwater_rss.max(self.rss())
    }

    /// Can `a` (below) and `b` (above, adjacent) be one VMA? Same flags,
    /// same anon name, the same file at contiguous offsets, compatible
    /// anon_vmas (`is_mergeable_vma` and
    /// `is_mergeable_anon_vma`; every anon_vma chain here is singular).
    pub fn can_merge(a: &Vma, b: &Vma) -> bool {
        a.end == b.start
            && a.flags == b.flags
            && a.name == b.name
            && match (&a.file, &b.file) {
                (None, None) => true,
                (Some(fa), Some(fb)) => fa.ino == fb.ino && fb.pgoff == fa.pgoff + a.pages(),
                _ => false,
            }
            && match (a.shm, b.shm) {
                (None, None) => true,
                (Some(sa), Some(sb)) => sa.id == sb.id && sb.pgoff == sa.pgoff + a.pages(),
                _ => false,
            }
            && (a.anon_vma.is_none() || b.anon_vma.is_none() || a.anon_vma == b.anon_vma)
    }

    /// `vm_start_gap`: the start of a VMA including its stack guard gap.
    pub(crate) fn start_gap(vma: &Vma) -> u64 {
        maple_tree::start_gap(vma)
    }

    /// `unmapped_area_topdown`: the highest free range of `len` bytes in
    /// `[low, high)`, keeping stack guard gaps. O(log n) (the tree keeps
    /// every subtree's largest gap).
    pub fn unmapped_area_topdown(&self, len: u64, low: u64, high: u64) -> Option<u64> {
        self.vmas.unmapped_area_topdown(len, low, high)
    }

    /// `unmapped_area`: the lowest free range of `len` bytes in `[low, high)`.
    /// O(log n).
    pub fn unmapped_area(&self, len: u64, low: u64, high: u64) -> Option<u64> {
        self.vmas.unmapped_area(len, low, high)
    }

    /// `mm_get_unmapped_area` without a hint on an MMF_TOPDOWN mm (x86's
    /// `arch_get_unmapped_area_topdown`): the highest free range below
    /// mmap_base, else (its `bottomup:` fallback, `arch_get_unmapped_area`)
    /// the lowest from TASK_UNMAPPED_BASE up.
    pub fn mm_get_unmapped_area(&self, len: u64) -> Option<u64> {
        let layout = self.layout;
        self.unmapped_area_topdown(len, PAGE_SIZE, layout.mmap_base)
            .or_else(|| self.unmapped_area(len, layout.legacy_base, layout.task_size))
    }

    /// `__get_unmapped_area(NULL, 0, len, 0, MAP_PRIVATE | MAP_ANONYMOUS)`:
    /// where an anonymous private mapping without an address goes. Linux
    /// 6.18 sends it through `thp_get_unmapped_area_vmflags` when THP is
    /// configured, there is no hint and `IS_ALIGNED(len, PMD_SIZE)` —
    /// whatever `transparent_hugepage/enabled` says — so it starts on a 2M
    /// boundary; the search for the padded length can leave a gap above it
    /// that keeps it from merging with its neighbour.
    pub fn get_unmapped_area(&self, len: u64) -> Option<u64> {
        if self.layout.thp_align && len.is_multiple_of(PMD_SIZE) {
            // thp_get_unmapped_area_vmflags: the aligned try, then the
            // normal search (the padding may be what failed).
            if let Some(addr) = self.thp_get_unmapped_area(len, 0) {
                return Some(addr);
            }
        }
        self.mm_get_unmapped_area(len)
    }

    /// `__thp_get_unmapped_area(file, 0, len, off, flags, PMD_SIZE)`:
    /// search for `len + PMD_SIZE`, then move up so that the address and
    /// the file offset `off` (bytes; 0 for anonymous memory) agree modulo
    /// PMD_SIZE; `None` is its `return 0` (the caller retries unpadded).
    fn thp_get_unmapped_area(&self, len: u64, off: u64) -> Option<u64> {
        let size = PMD_SIZE;
        // Without a whole aligned PMD inside [off, off + len) nothing could
        // ever be mapped huge: give up.
        let off_end = off.checked_add(len)? & !(size - 1);
        let off_align = off.checked_add(size - 1)? & !(size - 1);
        if off_end <= off_align || off_end - off_align < size {
            return None;
        }
        let len_pad = len.checked_add(size)?;
        off.checked_add(len_pad)?;
        let ret = self.mm_get_unmapped_area(len_pad)?;
        // `ret == addr` cannot happen: addr is 0 (no hint).
        let off_sub = off.wrapping_sub(ret) & (size - 1);
        // MMF_TOPDOWN (the only layout simulated): an already aligned
        // range is used from its top, so the mapping ends where the padded
        // range ends (against the mapping above, if any).
        if off_sub == 0 {
            return Some(ret + size);
        }
        Some(ret + off_sub)
    }

    /// Where a file mapping of `len` bytes at file offset `off` goes
    /// without a hint: ext4's `get_unmapped_area` is
    /// `thp_get_unmapped_area`, so any mapping holding a whole aligned PMD
    /// of the file is placed PMD-congruent to its offset (measured on this
    /// machine's 6.18 kernel: 2M+4K at offset 0 starts on a 2M boundary,
    /// 4M at offset 1M at an address ≡ 1M mod 2M).
    pub fn get_unmapped_area_file(&self, len: u64, off: u64) -> Option<u64> {
        if self.layout.thp_align
            && let Some(addr) = self.thp_get_unmapped_area(len, off)
        {
            return Some(addr);
        }
        self.mm_get_unmapped_area(len)
    }

    pub(crate) fn new_anon_vma(&mut self, object: Option<SlabObject>) -> u32 {
        let anon = AnonVma { refs: 1, object };
        match self.free_anon_vmas.pop() {
            Some(id) => {
                self.anon_vmas[id as usize] = Some(anon);
                id
            }
            None => {
                self.anon_vmas.push(Some(anon));
                (self.anon_vmas.len() - 1) as u32
            }
        }
    }

    /// Drop one reference; returns the anon_vma object when it was the last.
    pub(crate) fn put_anon_vma(&mut self, id: u32) -> Option<SlabObject> {
        let slot = self.anon_vmas.get_mut(id as usize)?;
        let anon = slot.as_mut()?;
        anon.refs -= 1;
        if anon.refs > 0 {
            return None;
        }
        let object = slot.take().and_then(|a| a.object);
        self.free_anon_vmas.push(id);
        object
    }

    pub(crate) fn get_anon_vma(&mut self, id: u32) {
        if let Some(Some(anon)) = self.anon_vmas.get_mut(id as usize) {
            anon.refs += 1;
        }
    }

    /// Live anon_vmas and the references the VMAs hold on them.
    pub(crate) fn anon_vma_refs(&self) -> Vec<(u32, u32)> {
        self.anon_vmas
            .iter()
            .enumerate()
            .filter_map(|(i, a)| a.as_ref().map(|a| (i as u32, a.refs)))
            .collect()
    }

    /// Every anon_vma object (for exit).
    pub(crate) fn take_anon_vma_objects(&mut self) -> Vec<SlabObject> {
        let out = self
            .anon_vmas
            .iter_mut()
            .filter_map(|a| a.take().and_then(|a| a.object))
            .collect();
        self.anon_vmas.clear();
        self.free_anon_vmas.clear();
        out
    }

    /// Take every VMA out (for exit), unaccounting them.
    pub(crate) fn take_all_vmas(&mut self) -> Vec<Vma> {
        let starts: Vec<u64> = self.vmas.keys().copied().collect();
        starts
            .into_iter()
            .filter_map(|s| self.remove_vma(s))
            .collect()
    }

    /// Recount the counters from the VMAs: (total, data, exec, stack, committed).
    pub(crate) fn recount(&self) -> (u64, u64, u64, u64, u64) {
        let mut c = (0, 0, 0, 0, 0);
        for v in self.vmas.values() {
            let pages = v.pages();
            c.0 += pages;
            let (exec, stack, data) = stat_class(v.flags);
            if exec {
                c.2 += pages;
            } else if stack {
                c.3 += pages;
            } else if data {
                c.1 += pages;
            }
            if v.flags.is_accounted() {
                c.4 += pages;
            }
        }
        c
    }

    /// The name index agrees with the VMAs.
    pub(crate) fn names_consistent(&self) -> bool {
        let mut counts: BTreeMap<&str, u32> = BTreeMap::new();
        for v in self.vmas.values() {
            if let Some(n) = &v.name {
                *counts.entry(n).or_insert(0) += 1;
            }
        }
        counts.len() == self.names.len()
            && self
                .names
                .iter()
                .all(|(n, c)| counts.get(n.as_ref()) == Some(c))
    }
}

/// Round up to a page: None on overflow.
pub fn page_align(bytes: u64) -> Option<u64> {
    bytes
        .checked_add(PAGE_SIZE - 1)
        .map(|b| b & !(PAGE_SIZE - 1))
}

/// Slab objects taken before an operation changes anything, so that a
/// failure to get them changes nothing.
#[derive(Default)]
pub(crate) struct ObjPool {
    pub(crate) vmas: Vec<SlabObject>,
    pub(crate) avcs: Vec<SlabObject>,
}

impl Kernel {
    /// The memory descriptor of `slot`.
    pub(crate) fn mm_of(&self, slot: MmSlot) -> MmResult<&MmStruct> {
        self.procs.mm(slot)
    }

    /// Take `vmas` vm_area_structs and `avcs` anon_vma_chains from slab,
    /// all or nothing.
    pub(crate) fn prealloc(&mut self, vmas: usize, avcs: usize) -> MmResult<ObjPool> {
        let mut pool = ObjPool::default();
        for (count, cache, avc) in [
            (vmas, slab_common::VM_AREA_STRUCT, false),
            (avcs, slab_common::ANON_VMA_CHAIN, true),
        ] {
            for _ in 0..count {
                match self.kmem_cache_alloc(cache) {
                    Ok(obj) => {
                        if avc {
                            pool.avcs.push(obj)
                        } else {
                            pool.vmas.push(obj)
                        }
                    }
                    Err(err) => {
                        self.release_pool(pool);
                        return Err(err);
                    }
                }
            }
        }
        Ok(pool)
    }

    /// Give back what an operation did not use.
    pub(crate) fn release_pool(&mut self, pool: ObjPool) {
        for obj in pool.vmas.into_iter().chain(pool.avcs) {
            self.free_object(obj);
        }
    }

    /// Free a slab object; a failure is a bookkeeping bug worth a log line,
    /// never a panic.
    pub(crate) fn free_object(&mut self, obj: SlabObject) {
        if let Err(err) = self.kmem_cache_free(obj) {
            self.printk(format!("BUG: kmem_cache_free: {err}"));
        }
    }

    /// Free a VMA's objects and drop its anon_vma reference.
    pub(crate) fn release_vma(&mut self, slot: MmSlot, vma: Vma) {
        if let Some(shm) = vma.shm {
            self.shmem_put(shm.id);
        }
        if let Some(obj) = vma.object {
            self.free_object(obj);
        }
        for avc in [vma.avc, vma.fork_avc].into_iter().flatten() {
            self.free_object(avc);
        }
        if let Some(id) = vma.anon_vma
            && let Ok(mm) = self.procs.mm_mut(slot)
            && let Some(obj) = mm.put_anon_vma(id)
        {
            self.free_object(obj);
        }
    }

    /// `anon_vma_prepare`: give the VMA containing `addr` an anon_vma before
    /// its first page, reusing a compatible neighbour's
    /// (`find_mergeable_anon_vma`), and link it with an anon_vma_chain.
    pub(crate) fn anon_vma_prepare(&mut self, slot: MmSlot, addr: u64) -> MmResult<()> {
        let mm = self.procs.mm(slot)?;
        let Some(vma) = mm.vma_lookup(addr) else {
            return Ok(());
        };
        // A shared anonymous mapping never has anonymous pages: its pages
        // are its shmem object's (so fork copies no page tables for it).
        if vma.anon_vma.is_some() || vma.is_anon_shmem() {
            return Ok(());
        }
        let start = vma.start;
        let compatible = |other: &Vma| {
            (other.flags.0 ^ vma.flags.0) & !VM_ACCESS_FLAGS == 0 && other.anon_vma.is_some()
        };
        let reuse = mm
            .prev_vma(start)
            .filter(|p| p.end == vma.start && compatible(p))
            .or_else(|| mm.vmas.get(&vma.end).filter(|n| compatible(n)))
            .and_then(|v| v.anon_vma);
        let avc = self.kmem_cache_alloc(slab_common::ANON_VMA_CHAIN)?;
        let anon_object = match reuse {
            Some(_) => None,
            None => match self.kmem_cache_alloc(slab_common::ANON_VMA) {
                Ok(obj) => Some(obj),
                Err(err) => {
                    self.free_object(avc);
                    return Err(err);
                }
            },
        };
        // The allocations may have run the OOM killer: look again.
        let present = self
            .procs
            .mm(slot)
            .is_ok_and(|mm| mm.vmas.get(&start).is_some_and(|v| v.anon_vma.is_none()));
        if !present {
            self.free_object(avc);
            if let Some(obj) = anon_object {
                self.free_object(obj);
            }
            return self.procs.mm(slot).map(|_| ());
        }
        let mm = self.procs.mm_mut(slot)?;
        let id = match reuse {
            Some(id) => {
                mm.get_anon_vma(id);
                id
            }
            None => mm.new_anon_vma(anon_object),
        };
        if let Some(mut vma) = mm.vmas.get_mut(&start) {
            vma.anon_vma = Some(id);
            vma.avc = Some(avc);
        }
        Ok(())
    }

    /// totalram_pages(): pages the buddy allocator manages.
    pub fn totalram_pages(&self) -> u64 {
        self.page_alloc.total_managed()
    }

    /// vm_committed_as: pages of every accountable mapping (Committed_AS).
    pub fn committed_as(&self) -> u64 {
        // shmem objects are charged for their size (`shmem_acct_size`).
        self.procs
            .iter_unordered()
            .map(|p| p.mm.committed)
            .sum::<u64>()
            + self.shmem.committed
    }

    /// `__vm_enough_memory`: may `slot` commit `pages` more pages? Mode 0
    /// refuses only a single request above RAM + swap, mode 1 never, mode
    /// 2 anything that would reach CommitLimit minus the user reserve (the
    /// simulated processes run as root: no admin reserve). A refusal logs
    /// Linux's line and is ENOMEM.
    pub fn vm_enough_memory(&mut self, slot: MmSlot, pages: u64) -> MmResult<()> {
        let refused = match self.sysctl.overcommit_memory {
            1 => false,
            2 => {
                // Only strict mode needs vm_committed_as (a walk of every mm).
                let committed = self.committed_as() + pages;
                let total_vm = self.mm_of(slot).map(|m| m.total_vm).unwrap_or(0);
                let allowed = self
                    .vm_commit_limit()
                    .saturating_sub((total_vm / 32).min(self.procs.user_reserve_pages));
                committed >= allowed
            }
            _ => pages > self.totalram_pages() + self.swap.total_pages(),
        };
        if !refused {
            return Ok(());
        }
        let (pid, comm) = self
            .procs
            .get(slot)
            .map(|p| (p.pid.0, p.comm.clone()))
            .unwrap_or_default();
        let bytes = pages << PAGE_SHIFT;
        self.printk(format!(
            "__vm_enough_memory: pid: {pid}, comm: {comm}, bytes: {bytes} not enough memory for the allocation"
        ));
        Err(MmError::NoMemory(format!(
            "overcommit refused {bytes} bytes (vm.overcommit_memory={}, Committed_AS {} kB, CommitLimit {} kB)",
            self.sysctl.overcommit_memory,
            self.committed_as() * 4,
            self.vm_commit_limit() * 4
        )))
    }

    /// `mmap(addr, len, prot, MAP_PRIVATE | MAP_ANONYMOUS [| MAP_FIXED_NOREPLACE])`
    /// plus `prctl(PR_SET_VMA_ANON_NAME)`. Returns the address. Nothing is
    /// allocated but the vm_area_struct (unless it merges with a neighbour).
    pub fn do_mmap(
        &mut self,
        slot: MmSlot,
        addr: Option<VirtAddr>,
        len: u64,
        prot: Prot,
        name: Option<&str>,
    ) -> MmResult<VirtAddr> {
        self.mmap_region(slot, addr, len, VmFlags::anon(prot), name, None, None)
    }

    /// `mmap(addr, len, prot, MAP_SHARED or MAP_PRIVATE, fd, offset)` of
    /// the file at `path` (inside the machine). ENOENT for a missing file,
    /// ENODEV for a directory (no `mmap` file operation), EINVAL for an
    /// offset that is not page aligned, EOVERFLOW when offset + length
    /// pass the largest page index. `name` only names the mapping for
    /// later commands; maps shows the path.
    #[allow(clippy::too_many_arguments)]
    pub fn do_mmap_file(
        &mut self,
        slot: MmSlot,
        addr: Option<VirtAddr>,
        len: u64,
        prot: Prot,
        name: Option<&str>,
        path: &str,
        offset: u64,
        shared: bool,
    ) -> MmResult<VirtAddr> {
        let ino = self.vfs_resolve(path)?;
        if self.vfs.inode(ino)?.kind != super::namei::FileKind::Regular {
            return Err(MmError::NoDevice(format!(
                "{path} is a directory: only regular files can be mapped"
            )));
        }
        if !offset.is_multiple_of(PAGE_SIZE) {
            return Err(MmError::Invalid(format!(
                "mmap offset {offset:#x} is not page aligned"
            )));
        }
        let pages = page_align(len).map_or(u64::MAX, |l| l >> PAGE_SHIFT);
        if (offset >> PAGE_SHIFT)
            .checked_add(pages)
            .is_none_or(|end| end > super::filemap::MAX_FILE_SIZE >> PAGE_SHIFT)
        {
            return Err(MmError::Overflow(format!(
                "mmap of {len} bytes at offset {offset:#x} passes the largest file offset"
            )));
        }
        // do_mmap: swap I/O owns an active swap file's blocks.
        if shared && prot.write && self.swap.is_swapfile(ino) {
            return Err(MmError::TextBusy(format!(
                "{path} is an active swap file: no shared writable mapping"
            )));
        }
        let file = VmFile {
            ino,
            pgoff: offset >> PAGE_SHIFT,
            path: Arc::from(path),
        };
        let start = self.mmap_region(
            slot,
            addr,
            len,
            VmFlags::file(prot, shared),
            name,
            Some(file),
            None,
        )?;
        // i_mmap: the inode learns that this mm maps it.
        self.vfs.inode_mut(ino)?.i_mmap.insert(slot);
        Ok(start)
    }

    /// The common part of every mmap: checks (nothing changes on a
    /// failure), placement, overcommit, the VMA (merged if it can be).
    /// `shm`: the shmem object of a shared anonymous mapping, made by the
    /// caller (`shmem_zero_setup`), which takes it back on a failure.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn mmap_region(
        &mut self,
        slot: MmSlot,
        addr: Option<VirtAddr>,
        len: u64,
        flags: VmFlags,
        name: Option<&str>,
        file: Option<VmFile>,
        shm: Option<super::shmem::VmShm>,
    ) -> MmResult<VirtAddr> {
        let addr = addr.map(|a| a.0);
        let mm = self.mm_of(slot)?;
        let layout = mm.layout;
        if len == 0 {
            return Err(MmError::Invalid("mmap of 0 bytes".into()));
        }
        let len = page_align(len)
            .filter(|&l| l <= layout.task_size - MMAP_MIN_ADDR)
            .ok_or_else(|| {
                MmError::NoMemory(format!(
                    "mmap of {len} bytes: larger than the {} MiB user address space",
                    layout.task_size >> 20
                ))
            })?;
        if let Some(name) = name
            && mm.has_name(name)
        {
            return Err(MmError::Exists(format!(
                "a mapping named '{name}' already exists"
            )));
        }
        if mm.map_count() >= MAX_MAP_COUNT {
            return Err(MmError::NoMemory(format!(
                "mmap: {} mappings reached vm.max_map_count",
                mm.map_count()
            )));
        }
        let start = match addr {
            Some(a) => {
                if !a.is_multiple_of(PAGE_SIZE) {
                    return Err(MmError::Invalid(format!(
                        "mmap addr {a:#x} is not page aligned"
                    )));
                }
                if a < MMAP_MIN_ADDR {
                    return Err(MmError::Invalid(format!(
                        "mmap addr {a:#x} is below vm.mmap_min_addr ({MMAP_MIN_ADDR})"
                    )));
                }
                let end = a
                    .checked_add(len)
                    .filter(|&e| e <= layout.task_size)
                    .ok_or_else(|| {
                        MmError::NoMemory(format!(
                            "mmap at {a:#x}: {len} bytes do not fit below {:#x}",
                            layout.task_size
                        ))
                    })?;
                if mm.intersects(a, end) {
                    // MAP_FIXED_NOREPLACE never replaces a mapping.
                    let v = mm.find_vma(a).expect("intersects");
                    return Err(MmError::Exists(format!(
                        "mmap at {a:#x}-{end:#x}: overlaps the mapping {:#x}-{:#x} (addr= never replaces one; munmap it first)",
                        v.start, v.end
                    )));
                }
                a
            }
            None => match &file {
                Some(f) => mm.get_unmapped_area_file(len, f.pgoff << PAGE_SHIFT),
                None => mm.get_unmapped_area(len),
            }
            .ok_or_else(|| {
                MmError::NoMemory(format!(
                    "mmap: no free range of {} kB in the address space",
                    len >> 10
                ))
            })?,
        };
        if flags.is_accounted() {
            self.vm_enough_memory(slot, len >> PAGE_SHIFT)?;
        }
        let vma = Vma {
            start,
            end: start + len,
            flags,
            name: name.map(Arc::from),
            anon_vma: None,
            object: None,
            avc: None,
            file,
            fork_avc: None,
            shm,
        };
        self.vma_merge_new_range(slot, vma)?;
        Ok(VirtAddr(start))
    }

    /// `munmap(start, len)`: split at the edges, then remove every VMA in
    /// the range with its pages, swap entries and unused page tables.
    pub fn do_munmap(&mut self, slot: MmSlot, start: VirtAddr, len: u64) -> MmResult<()> {
        let start = start.0;
        let mm = self.mm_of(slot)?;
        let task_size = mm.layout.task_size;
        if !start.is_multiple_of(PAGE_SIZE) {
            return Err(MmError::Invalid(format!(
                "munmap address {start:#x} is not page aligned"
            )));
        }
        let end = page_align(len)
            .and_then(|l| start.checked_add(l))
            .filter(|&e| e <= task_size)
            .ok_or_else(|| {
                MmError::Invalid(format!(
                    "munmap range {start:#x}+{len:#x} goes past TASK_SIZE"
                ))
            })?;
        if end == start {
            return Err(MmError::Invalid("munmap of 0 bytes".into()));
        }
        let (vmas, avcs) = self.split_needs(slot, start, end)?;
        let mm = self.mm_of(slot)?;
        // Unmapping the middle of one VMA leaves one more behind.
        let hole = mm
            .vma_lookup(start)
            .is_some_and(|v| v.start < start && v.end > end);
        if hole && mm.map_count() >= MAX_MAP_COUNT {
            return Err(MmError::NoMemory(
                "munmap: the split would pass vm.max_map_count".into(),
            ));
        }
        self.split_edges(slot, start, end, vmas, avcs)?;
        self.remove_range(slot, start, end)
    }

    /// Split the VMAs at `start` and `end` with `vmas`/`avcs` objects taken
    /// first (all or nothing); unused objects go back.
    pub(crate) fn split_edges(
        &mut self,
        slot: MmSlot,
        start: u64,
        end: u64,
        vmas: usize,
        avcs: usize,
    ) -> MmResult<()> {
        let mut pool = self.prealloc(vmas, avcs)?;
        let result = self
            .split_vma(slot, start, &mut pool)
            .and_then(|()| self.split_vma(slot, end, &mut pool));
        self.release_pool(pool);
        result
    }

    /// Splits `[start, end)` needs at its edges: (vm_area_structs, chains).
    pub(crate) fn split_needs(
        &self,
        slot: MmSlot,
        start: u64,
        end: u64,
    ) -> MmResult<(usize, usize)> {
        let mm = self.mm_of(slot)?;
        let mut vmas = 0;
        let mut avcs = 0;
        for at in [start, end] {
            if let Some(v) = mm.vma_lookup(at).filter(|v| v.start < at) {
                vmas += 1;
                if v.anon_vma.is_some() {
                    avcs += 1;
                }
            }
        }
        Ok((vmas, avcs))
    }

    /// Remove the VMAs inside `[start, end)` (already split at its edges).
    pub(crate) fn remove_range(&mut self, slot: MmSlot, start: u64, end: u64) -> MmResult<()> {
        let mm = self.procs.mm_mut(slot)?;
        mm.update_hiwater_vm();
        let starts: Vec<u64> = mm.vmas.range(start..end).map(|(s, _)| *s).collect();
        let mut files = Vec::new();
        for s in starts {
            let Some(vma) = self.procs.mm_mut(slot)?.remove_vma(s) else {
                continue;
            };
            self.zap_range(slot, vma.start_vpn(), vma.end_vpn());
            files.extend(vma.file.as_ref().map(|f| f.ino));
            self.release_vma(slot, vma);
        }
        self.free_pgtables(slot, start >> PAGE_SHIFT, end >> PAGE_SHIFT);
        self.iput_unmapped(&files);
        Ok(())
    }

    /// `free_pgtables`: give back the page tables whose whole span meets
    /// `[start, end)` (vpns) and no VMA any more.
    pub(crate) fn free_pgtables(&mut self, slot: MmSlot, start: u64, end: u64) {
        let Ok(mm) = self.procs.mm_mut(slot) else {
            return;
        };
        let MmStruct { vmas, pgtables, .. } = mm;
        let in_use = |lo: u64, hi: u64| {
            let (lo, hi) = (lo << PAGE_SHIFT, hi << PAGE_SHIFT);
            let below = vmas
                .range(..lo)
                .next_back()
                .is_some_and(|(_, v)| v.end > lo);
            below || vmas.range(lo..hi).next().is_some()
        };
        let freed = pgtables.free_unused(start, end, &in_use);
        for pfn in freed {
            self.free_kernel_page(pfn);
        }
    }

    /// `brk`: move the program break; `[heap]` follows (created, grown by
    /// merging with the previous heap VMA, or cut back).
    pub fn do_brk(&mut self, slot: MmSlot, new_brk: VirtAddr) -> MmResult<()> {
        let new_brk = new_brk.0;
        let mm = self.mm_of(slot)?;
        let (start_brk, old_brk, task_size) = (mm.start_brk, mm.brk, mm.layout.task_size);
        if new_brk < start_brk {
            return Err(MmError::Invalid(format!(
                "brk {new_brk:#x} is below the start of the heap {start_brk:#x}"
            )));
        }
        let new_end = page_align(new_brk)
            .filter(|&e| e <= task_size)
            .ok_or_else(|| MmError::NoMemory(format!("brk {new_brk:#x} is past TASK_SIZE")))?;
        let old_end = page_align(old_brk).expect("current brk is sane");
        if new_end == old_end {
            self.procs.mm_mut(slot)?.brk = new_brk;
            return Ok(());
        }
        if new_brk <= old_brk {
            // Shrink: unmap the pages above the new break.
            let (vmas, avcs) = self.split_needs(slot, new_end, old_end)?;
            self.split_edges(slot, new_end, old_end, vmas, avcs)?;
            self.procs.mm_mut(slot)?.brk = new_brk;
            return self.remove_range(slot, new_end, old_end);
        }
        // Grow: the new pages plus one guard page must stay clear of the
        // next mapping (and of a stack's guard gap).
        let mm = self.mm_of(slot)?;
        if let Some(next) = mm.find_vma(old_end) {
            let limit = MmStruct::start_gap(next);
            if next.start < new_end || new_end + PAGE_SIZE > limit {
                return Err(MmError::NoMemory(format!(
                    "brk {new_brk:#x}: the heap would run into the mapping at {:#x}",
                    next.start
                )));
            }
        }
        if mm.map_count() >= MAX_MAP_COUNT {
            return Err(MmError::NoMemory("brk: vm.max_map_count reached".into()));
        }
        let pages = (new_end - old_end) >> PAGE_SHIFT;
        self.vm_enough_memory(slot, pages)?;
        let flags =
            VmFlags(VM_READ | VM_WRITE | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC | VM_ACCOUNT);
        // do_brk_flags extends the compatible anonymous VMA that ends right
        // at the break (the heap, or on the first brk any unnamed mapping
        // right below start_brk); otherwise the heap is a new VMA.
        self.vma_merge_new_range(
            slot,
            Vma {
                start: old_end,
                end: new_end,
                flags,
                name: None,
                anon_vma: None,
                object: None,
                avc: None,
                file: None,
                fork_avc: None,
                shm: None,
            },
        )?;
        self.procs.mm_mut(slot)?.brk = new_brk;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mm::process::testing::*;

    #[test]
    fn anonymous_mmaps_go_top_down_and_merge() {
        let (mut k, pid) = setup();
        let objs = vma_objects(&k);
        run(&mut k, pid, "mmap 1M").unwrap();
        run(&mut k, pid, "mmap 1M").unwrap();
        let base = 0x7fff_f7ff_f000 - (2 << 20);
        //  mmap_base
        //  <--1M--><--1M-->|
        //  AAAAAAAAAAAAAAAA|
        assert_eq!(layout(&k, pid, base, 512), "A".repeat(512));
        assert_eq!(mm(&k, pid).map_count(), 2);
        assert_eq!(vma_objects(&k), objs + 1);
        // Nothing physical yet: the blank cheque.
        assert_eq!(mm(&k, pid).rss_anon, 3);
    }

    /// tests/reference/linux-samples/thp-align.c, run with `setarch -R` on
    /// the capture machine (Linux 6.18.44 x86_64, THP `madvise`): expected
    /// from the real kernel on this machine, thp-align.txt. Its lowest
    /// mapping near mmap_base (libc) started at 0x7ffff7dd2000; a blocker
    /// there gives the simulated process the same free space.
    #[test]
    fn pmd_multiple_mappings_are_thp_aligned_as_on_the_real_kernel() {
        let (mut k, pid) = setup();
        run(&mut k, pid, "mmap 0x22d000 addr=0x7ffff7dd2000 prot=r").unwrap();
        let real_kernel: [(u64, u64); 9] = [
            (4096, 0x7fff_f780_0000),     // 2M-aligned, 0x1d2000 gap above
            (2048, 0x7fff_f760_0000),     // aligned, adjacent (ret + size)
            (6144, 0x7fff_f700_0000),     // aligned, adjacent
            (3072, 0x7fff_f6d0_0000),     // not a 2M multiple: plain search
            (2048, 0x7fff_f6a0_0000),     // aligned: a 1M gap above it
            (2048, 0x7fff_f680_0000),     // aligned, adjacent
            (2048 + 4, 0x7fff_f65f_f000), // plain search, adjacent
            (2048, 0x7fff_f620_0000),     // aligned: 0x1ff000 gap above
            (2048, 0x7fff_f600_0000),     // aligned, adjacent
        ];
        for (i, &(kb, want)) in real_kernel.iter().enumerate() {
            run(&mut k, pid, &format!("mmap {kb}K name=m{i}")).unwrap();
            assert_eq!(addr(&k, pid, &format!("m{i}")), want, "mmap {kb}K (#{i})");
        }
        // The VMAs the real kernel's maps showed, unnamed: adjacent ones
        // merge, the alignment gaps keep the three groups apart.
        let (mut k, pid) = setup();
        run(&mut k, pid, "mmap 0x22d000 addr=0x7ffff7dd2000 prot=r").unwrap();
        for &(kb, want) in &real_kernel {
            run(&mut k, pid, &format!("mmap {kb}K")).unwrap();
            assert!(mm(&k, pid).vma_lookup(want).is_some(), "mmap {kb}K");
        }
        let vmas: Vec<(u64, u64)> = mm(&k, pid)
            .vmas()
            .filter(|v| (0x7fff_f600_0000..0x7fff_f7c0_0000).contains(&v.start))
            .map(|v| (v.start, v.end))
            .collect();
        assert_eq!(
            vmas,
            [
                (0x7fff_f600_0000, 0x7fff_f640_0000),
                (0x7fff_f65f_f000, 0x7fff_f6c0_0000),
                (0x7fff_f6d0_0000, 0x7fff_f7c0_0000),
            ]
        );
    }

    #[test]
    fn thp_alignment_from_mmap_base_and_its_fallbacks() {
        let (mut k, pid) = setup();
        let base = 0x7fff_f7ff_f000u64;
        // Nothing below mmap_base yet: the 4M+2M search ends at mmap_base,
        // the mapping moves up to the 2M boundary, leaving 0x1ff000 free.
        run(&mut k, pid, "mmap 4M name=a").unwrap();
        assert_eq!(addr(&k, pid, "a"), 0x7fff_f7a0_0000);
        assert_eq!(
            mm(&k, pid).unmapped_area_topdown(PAGE_SIZE, PAGE_SIZE, base),
            Some(base - PAGE_SIZE)
        );
        // A small mapping takes that gap, as on Linux.
        run(&mut k, pid, "mmap 4K name=b").unwrap();
        assert_eq!(addr(&k, pid, "b"), base - PAGE_SIZE);
        // addr= (MAP_FIXED_NOREPLACE) is taken as given.
        run(&mut k, pid, "mmap 2M addr=0x40001000 name=c").unwrap();
        assert_eq!(addr(&k, pid, "c"), 0x4000_1000);

        // Only 2M left below mmap_base and nothing free above it: the
        // padded search fails both ways and the plain one takes the hole.
        let (mut k, pid) = setup();
        let stack = mm(&k, pid).stack_vma().unwrap().start;
        let hole = base - PMD_SIZE;
        run(
            &mut k,
            pid,
            &format!("mmap {} addr=0x10000 prot=none", hole - 0x10000),
        )
        .unwrap();
        run(
            &mut k,
            pid,
            &format!(
                "mmap {} addr={base:#x} prot=none",
                stack - STACK_GUARD_GAP - base
            ),
        )
        .unwrap();
        run(&mut k, pid, "mmap 2M name=last").unwrap();
        assert_eq!(addr(&k, pid, "last"), hole);
        assert_eq!(hole % PMD_SIZE, PMD_SIZE - PAGE_SIZE);
    }

    #[test]
    fn no_thp_alignment_on_i386() {
        let mut k = boot(Arch::I386, 1 << 30);
        let pid = spawn(&mut k, "test");
        run(&mut k, pid, "mmap 4K name=a").unwrap();
        run(&mut k, pid, "mmap 4M name=b").unwrap();
        // CONFIG_64BIT is off: __thp_get_unmapped_area gives up at once.
        assert_eq!(addr(&k, pid, "b"), 0xb800_0000 - PAGE_SIZE - (4 << 20));
        // x86_64 aligns the same sequence.
        let (mut k, pid) = setup();
        run(&mut k, pid, "mmap 4K name=a").unwrap();
        run(&mut k, pid, "mmap 4M name=b").unwrap();
        assert_eq!(addr(&k, pid, "b"), 0x7fff_f7a0_0000);
    }

    #[test]
    fn named_mappings_stay_apart_and_names_are_unique() {
        let (mut k, pid) = setup();
        run(&mut k, pid, "mmap 8K name=a").unwrap();
        run(&mut k, pid, "mmap 8K name=b").unwrap();
        let b = addr(&k, pid, "b");
        assert_eq!(addr(&k, pid, "a"), b + 8192);
        // bbaa
        assert_eq!(layout(&k, pid, b, 4), "AABB");
        assert_eq!(
            run(&mut k, pid, "mmap 4K name=a").unwrap_err().errno(),
            libc::EEXIST
        );
        assert_eq!(
            run(&mut k, pid, "touch nope 4K").unwrap_err().errno(),
            libc::EINVAL
        );
        run(&mut k, pid, "munmap a 8K").unwrap();
        run(&mut k, pid, "mmap 4K name=a").unwrap();
    }

    #[test]
    fn munmap_in_the_middle_splits() {
        let (mut k, pid) = setup();
        run(&mut k, pid, "mmap 32K name=buf").unwrap();
        run(&mut k, pid, "touch buf 32K").unwrap();
        let base = addr(&k, pid, "buf");
        let objs = vma_objects(&k);
        let chains = objects(&k, slab_common::ANON_VMA_CHAIN);
        // 01234567
        // AAAAAAAA
        assert_eq!(layout(&k, pid, base, 8), "AAAAAAAA");
        run(&mut k, pid, "munmap buf+12K 8K").unwrap();
        //    <>
        // AAA..BBB
        assert_eq!(layout(&k, pid, base, 8), "AAA..BBB");
        assert_eq!(vma_objects(&k), objs + 1);
        // The new piece shares the anon_vma through a chain of its own.
        assert_eq!(objects(&k, slab_common::ANON_VMA_CHAIN), chains + 1);
        assert_eq!(mm(&k, pid).rss_anon, 3 + 6);
        // Unmapping a hole is fine; unaligned is not.
        run(&mut k, pid, "munmap buf+12K 8K").unwrap();
        assert_eq!(
            run(&mut k, pid, "munmap buf+1 4K").unwrap_err().errno(),
            libc::EINVAL
        );
        // Both pieces at once, across the hole.
        run(&mut k, pid, "munmap buf 32K").unwrap();
        assert_eq!(layout(&k, pid, base, 8), "........");
        assert_eq!(vma_objects(&k), objs - 1);
        assert_eq!(mm(&k, pid).rss_anon, 3);
    }

    #[test]
    fn filling_a_hole_merges_three_ways() {
        let (mut k, pid) = setup();
        let objs = vma_objects(&k);
        run(&mut k, pid, "mmap 8K addr=0x40000000").unwrap();
        run(&mut k, pid, "mmap 8K addr=0x40004000").unwrap();
        // AA..BB
        assert_eq!(layout(&k, pid, 0x4000_0000, 6), "AA..BB");
        assert_eq!(vma_objects(&k), objs + 2);
        run(&mut k, pid, "mmap 8K addr=0x40002000").unwrap();
        // AAAAAA
        assert_eq!(layout(&k, pid, 0x4000_0000, 6), "AAAAAA");
        assert_eq!(vma_objects(&k), objs + 1);
    }

    #[test]
    fn different_anon_vmas_keep_neighbours_apart() {
        let (mut k, pid) = setup();
        run(&mut k, pid, "mmap 8K addr=0x40000000").unwrap();
        run(&mut k, pid, "touch 0x40000000 8K").unwrap();
        run(&mut k, pid, "mmap 8K addr=0x40004000").unwrap();
        run(&mut k, pid, "touch 0x40004000 8K").unwrap();
        let anon = objects(&k, slab_common::ANON_VMA);
        // Each has its own anon_vma: the middle piece can merge with one
        // neighbour only (is_mergeable_anon_vma), the lower one first.
        run(&mut k, pid, "mmap 8K addr=0x40002000").unwrap();
        // AAAABB
        assert_eq!(layout(&k, pid, 0x4000_0000, 6), "AAAABB");
        assert_eq!(objects(&k, slab_common::ANON_VMA), anon);
    }

    #[test]
    fn a_new_vma_reuses_a_neighbours_anon_vma() {
        let (mut k, pid) = setup();
        // A written mapping made read-only (its anon_vma keeps VM_ACCOUNT)
        // next to a fresh writable one: only the protection differs.
        run(&mut k, pid, "mmap 8K addr=0x40000000").unwrap();
        run(&mut k, pid, "touch 0x40000000 8K").unwrap();
        run(&mut k, pid, "mprotect 0x40000000 8K r").unwrap();
        run(&mut k, pid, "mmap 8K addr=0x40002000").unwrap();
        // AABB
        assert_eq!(layout(&k, pid, 0x4000_0000, 4), "AABB");
        let anon = objects(&k, slab_common::ANON_VMA);
        let chains = objects(&k, slab_common::ANON_VMA_CHAIN);
        // find_mergeable_anon_vma: only the protection differs.
        k.write_mem(pid, 0x4000_2000, b"x").unwrap();
        assert_eq!(objects(&k, slab_common::ANON_VMA), anon);
        assert_eq!(objects(&k, slab_common::ANON_VMA_CHAIN), chains + 1);
    }

    #[test]
    fn mmap_validation() {
        let (mut k, pid) = setup();
        let before = mm(&k, pid).map_count();
        for (line, errno) in [
            ("mmap 4K addr=0x10001", libc::EINVAL),
            ("mmap 4K addr=0x1000", libc::EINVAL),
            ("mmap 4K addr=0x7ffffffff000", libc::ENOMEM),
            // Over the stack: MAP_FIXED_NOREPLACE says EEXIST.
            ("mmap 8K addr=0x7fffffffd000", libc::EEXIST),
            ("mmap 256T", libc::ENOMEM),
        ] {
            assert_eq!(run(&mut k, pid, line).unwrap_err().errno(), errno, "{line}");
        }
        assert_eq!(mm(&k, pid).map_count(), before);
        // Rounded up to whole pages.
        run(&mut k, pid, "mmap 1 name=tiny").unwrap();
        let a = addr(&k, pid, "tiny");
        assert_eq!(mm(&k, pid).vma_lookup(a).unwrap().pages(), 1);
    }

    #[test]
    fn brk_grows_merges_and_shrinks_the_heap() {
        let (mut k, pid) = setup();
        let start = mm(&k, pid).start_brk;
        assert_eq!(start, 0x5555_5555_9000);
        assert!(mm(&k, pid).vma_lookup(start).is_none());
        run(&mut k, pid, "brk +100").unwrap();
        assert_eq!(mm(&k, pid).brk, start + 100);
        // A
        assert_eq!(layout(&k, pid, start, 2), "A.");
        run(&mut k, pid, "brk +64K").unwrap();
        assert_eq!(layout(&k, pid, start, 18), format!("{}.", "A".repeat(17)));
        assert_eq!(mm(&k, pid).map_count(), 2);
        run(&mut k, pid, "touch heap 68K").unwrap();
        run(&mut k, pid, "brk -60K").unwrap();
        assert_eq!(
            layout(&k, pid, start, 18),
            format!("{}{}", "A".repeat(2), ".".repeat(16))
        );
        assert_eq!(mm(&k, pid).rss_anon, 3 + 2);
        assert_eq!(
            run(&mut k, pid, "brk heap-4K").unwrap_err().errno(),
            libc::EINVAL
        );
        run(&mut k, pid, "brk heap").unwrap();
        assert_eq!(mm(&k, pid).map_count(), 1);
        // The heap may not run into another mapping.
        run(&mut k, pid, "mmap 4K addr=0x555555600000").unwrap();
        assert_eq!(
            run(&mut k, pid, "brk +1M").unwrap_err().errno(),
            libc::ENOMEM
        );
        run(&mut k, pid, "brk 0x5555555ff000").unwrap();
    }

    #[test]
    fn first_brk_merges_into_an_anonymous_mapping_right_below() {
        let (mut k, pid) = setup();
        let start = mm(&k, pid).start_brk;
        run(&mut k, pid, "mmap 4K addr=heap-4096").unwrap();
        // A.        one page right below start_brk
        assert_eq!(layout(&k, pid, start - 4096, 2), "A.");
        run(&mut k, pid, "brk +4K").unwrap();
        // AA        do_brk_flags expanded it: one VMA, shown as [heap]
        assert_eq!(layout(&k, pid, start - 4096, 3), "AA.");
        assert_eq!(mm(&k, pid).vma_lookup(start).unwrap().start, start - 4096);
        k.check_invariants().unwrap();
    }

    #[test]
    fn the_stack_grows_down_on_touch() {
        let (mut k, pid) = setup();
        run(&mut k, pid, "touch stack-8K 8K").unwrap();
        let stack = mm(&k, pid).stack_vma().unwrap();
        assert_eq!(stack.start, 0x7fff_fffd_c000);
        assert_eq!(mm(&k, pid).stack_vm, 35);
        assert_eq!(mm(&k, pid).rss_anon, 5);
        // Not within the guard gap of another mapping.
        run(&mut k, pid, "mmap 4K addr=0x7ffffff00000").unwrap();
        let err = run(&mut k, pid, "touch stack-4K 4K").unwrap_err();
        assert_eq!(err.errno(), libc::EFAULT);
        assert_eq!(mm(&k, pid).stack_vma().unwrap().start, 0x7fff_fffd_c000);
        // Nor past RLIMIT_STACK.
        run(&mut k, pid, "munmap 0x7ffffff00000 4K").unwrap();
        let err = run(&mut k, pid, "touch stack-8M 4K").unwrap_err();
        assert_eq!(err.errno(), libc::EFAULT);
    }

    #[test]
    fn topdown_search_skips_the_stack_guard_gap() {
        let (k, pid) = setup();
        let mm = mm(&k, pid);
        let stack = mm.stack_vma().unwrap();
        // Asking for the range right below the stack leaves the guard gap.
        let got = mm
            .unmapped_area_topdown(PAGE_SIZE, PAGE_SIZE, stack.end)
            .unwrap();
        assert_eq!(got, stack.start - STACK_GUARD_GAP - PAGE_SIZE);
        assert_eq!(
            mm.unmapped_area_topdown(1 << 50, PAGE_SIZE, stack.end),
            None
        );
        assert_eq!(
            mm.unmapped_area(PAGE_SIZE, 0x1000_0000, mm.layout.task_size),
            Some(0x1000_0000)
        );
    }
}
