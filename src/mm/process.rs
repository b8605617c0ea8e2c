//! Tasks: pids, spawn and exit, and the per-process commands (Linux:
//! kernel/fork.c, kernel/pid.c, kernel/exit.c, fs/exec.c, arch/x86/mm/fault.c).
//!
//! A process is a task with its own address space. Each lives in an *mm
//! slot* (an index into [`Processes`], 1..=32767): user pages record
//! (mm slot, virtual page) as their reverse map, and swap slots record the
//! same owner, so reclaim and swapoff find the PTE in O(1).

use std::collections::{BTreeMap, BTreeSet};

use super::Kernel;
use super::error::{MmError, MmResult};
use super::memory::{FaultOrigin, Geometry, Pte};
use super::mmap::{
    INITIAL_STACK, INITIAL_STACK_PAGES_TOUCHED, MMAP_MIN_ADDR, MmStruct, STACK_GUARD_GAP,
    STACK_RLIMIT, VM_ACCOUNT, VM_GROWSDOWN, VM_MAYEXEC, VM_MAYREAD, VM_MAYWRITE, VM_READ, VM_WRITE,
    VmFlags, Vma,
};
use super::oom_kill::{OOM_SCORE_ADJ_MAX, OOM_SCORE_ADJ_MIN, OomCandidate};
use super::page_alloc::PageKind;
use super::slab_common;
use super::slub;
use super::slub::SlabObject;
use super::types::{Arch, MmSlot, Order, PAGE_SHIFT, PAGE_SIZE, Pfn, Pid, VirtAddr, Vpn, ZoneIdx};

/// `TASK_COMM_LEN`: a task's name holds at most 15 bytes and a NUL.
pub const TASK_COMM_LEN: usize = 16;

/// What `__set_task_comm` keeps of a name: at most `TASK_COMM_LEN - 1`
/// bytes (cut on a character boundary, so the text stays UTF-8).
pub fn comm_cut(text: &str) -> &str {
    let mut end = text.len().min(TASK_COMM_LEN - 1);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// `pid_max` (Linux's default): pids run 1..PID_MAX.
pub const PID_MAX: u32 = 32768;
/// After wrapping, pids restart here (`RESERVED_PIDS`).
pub const RESERVED_PIDS: u32 = 300;
/// Highest mm slot: the frame's reverse map holds 15 bits.
pub const MAX_MM_SLOT: u32 = (1 << super::page_alloc::OWNER_BITS) - 1;

/// Kernel objects a new task takes from slab (`copy_process`, `mm_alloc`).
const TASK_CACHES: [slub::CacheId; 7] = [
    slab_common::TASK_STRUCT,
    slab_common::PID,
    slab_common::CRED_JAR,
    slab_common::SIGNAL_CACHE,
    slab_common::SIGHAND_CACHE,
    slab_common::FILES_CACHE,
    slab_common::MM_STRUCT,
];

/// `struct task_io_accounting`: what `PID/io` shows beyond swap-ins.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IoAccounting {
    /// Bytes read through read commands.
    pub rchar: u64,
    /// Bytes written through write commands.
    pub wchar: u64,
    /// Read commands.
    pub syscr: u64,
    /// Write commands.
    pub syscw: u64,
    /// Bytes this process caused to be read from the disk.
    pub read_bytes: u64,
    /// Bytes this process wrote back to the disk itself.
    pub write_bytes: u64,
}

/// One simulated process.
pub struct Process {
    /// Its pid.
    pub pid: Pid,
    /// `comm`: the name, at most 15 bytes.
    pub comm: String,
    /// The address space.
    pub mm: MmStruct,
    /// Minor faults it caused.
    pub min_flt: u64,
    /// Major faults (swap-ins) it caused.
    pub maj_flt: u64,
    /// /proc/PID/oom_score_adj, -1000..=1000.
    pub oom_score_adj: i64,
    /// Simulated time of the spawn, in ns since boot.
    pub start_time_ns: u64,
    /// CPU time it used.
    pub cputime: super::cputime::TaskTime,
    /// File I/O it did.
    pub ioac: IoAccounting,
    /// Parent pid (init for processes spawned through `MOUNT/ctl`; 0 for
    /// init itself).
    pub ppid: Pid,
    /// The kernel stack block (THREAD_SIZE).
    pub kernel_stack: Pfn,
    /// Order of the kernel stack block.
    pub kernel_stack_order: Order,
    /// Spawn order: the task list is oldest first.
    pub seq: u64,
    /// The fork family: every process forked from the same spawned
    /// ancestor shares it. Anonymous pages are only ever shared inside a
    /// family, at the same virtual page (fork keeps addresses), which is
    /// how the reverse map finds them (Linux: the anon_vma tree).
    pub family: u32,
    /// task_struct, pid, cred, signal, sighand, files, mm_struct.
    objects: Vec<SlabObject>,
}

/// Every process, by mm slot and by pid.
pub struct Processes {
    slots: Vec<Option<Box<Process>>>,
    free_slots: BTreeSet<MmSlot>,
    by_pid: BTreeMap<Pid, MmSlot>,
    /// The shared zero page.
    pub zero_page: Pfn,
    /// `sysctl_user_reserve_kbytes` in pages (min(3% of free, 128 MiB) at boot).
    pub user_reserve_pages: u64,
    /// `sysctl_admin_reserve_kbytes` in pages (min(3% of free, 8 MiB) at boot).
    pub admin_reserve_pages: u64,
    /// Highest zone of user pages ([`Kernel::user_zone`], kept at hand for
    /// the fault path).
    pub user_zone: ZoneIdx,
    geometry: Geometry,
    next_seq: u64,
    /// Lowest pid a user process may take: the ones below belong to init
    /// and the kernel threads (see `kthread_init`).
    pub pid_floor: u32,
    /// Members of each fork family.
    families: BTreeMap<u32, BTreeSet<MmSlot>>,
    /// NR_ANON_MAPPED: anonymous pages with at least one PTE.
    pub nr_anon_mapped: u64,
    /// The next family id.
    next_family: u32,
    /// Processes that have exited since boot: the FUSE adapter compares it
    /// after each request so that it only looks for stale pid directories
    /// when one may have gone.
    exits: u64,
}

impl Processes {
    /// No processes yet.
    pub fn new(arch: Arch) -> Processes {
        Processes {
            slots: vec![None],
            free_slots: BTreeSet::new(),
            by_pid: BTreeMap::new(),
            zero_page: Pfn(0),
            user_reserve_pages: 0,
            admin_reserve_pages: 0,
            user_zone: ZoneIdx(0),
            geometry: Geometry::of(arch),
            next_seq: 0,
            pid_floor: 1,
            families: BTreeMap::new(),
            nr_anon_mapped: 0,
            next_family: 0,
            exits: 0,
        }
    }

    /// The address spaces of `slot`'s fork family (itself included), the
    /// only ones that can map its anonymous pages.
    pub fn family_of(&self, slot: MmSlot) -> Vec<MmSlot> {
        self.get(slot)
            .and_then(|p| self.families.get(&p.family))
            .map(|f| f.iter().copied().collect())
            .unwrap_or_default()
    }

    /// A new family id (for a spawned process).
    fn new_family(&mut self) -> u32 {
        self.next_family += 1;
        self.next_family
    }

    /// The page-table geometry of the architecture.
    pub fn geometry(&self) -> Geometry {
        self.geometry
    }

    /// The process in mm slot `slot`.
    pub fn get(&self, slot: MmSlot) -> Option<&Process> {
        self.slots.get(slot.index())?.as_deref()
    }

    /// The process in mm slot `slot`, for writing.
    pub fn get_mut(&mut self, slot: MmSlot) -> Option<&mut Process> {
        self.slots.get_mut(slot.index())?.as_deref_mut()
    }

    /// The address space in `slot` (ESRCH when gone).
    pub fn mm(&self, slot: MmSlot) -> MmResult<&MmStruct> {
        self.get(slot)
            .map(|p| &p.mm)
            .ok_or_else(|| MmError::NoProcess(format!("no process in mm slot {slot}")))
    }

    /// The address space in `slot`, for writing.
    pub fn mm_mut(&mut self, slot: MmSlot) -> MmResult<&mut MmStruct> {
        self.get_mut(slot)
            .map(|p| &mut p.mm)
            .ok_or_else(|| MmError::NoProcess(format!("no process in mm slot {slot}")))
    }

    /// The mm slot of `pid` (ESRCH when there is no such process).
    pub fn slot_of(&self, pid: Pid) -> MmResult<MmSlot> {
        self.by_pid
            .get(&pid)
            .copied()
            .ok_or_else(|| MmError::NoProcess(format!("no process with pid {pid}")))
    }

    /// The pid living in mm slot `slot`.
    pub fn pid_of_slot(&self, slot: MmSlot) -> Option<Pid> {
        self.get(slot).map(|p| p.pid)
    }

    /// The process with pid `pid`.
    pub fn by_pid(&self, pid: Pid) -> Option<&Process> {
        self.get(*self.by_pid.get(&pid)?)
    }

    /// Live pids, ascending.
    pub fn pids(&self) -> Vec<Pid> {
        self.by_pid.keys().copied().collect()
    }

    /// Live processes, by pid.
    pub fn iter(&self) -> impl Iterator<Item = &Process> {
        self.by_pid.values().filter_map(|&s| self.get(s))
    }

    /// Every process in mm-slot order: a plain walk of the table, for
    /// scans whose result does not depend on the order (sums, a maximum
    /// with a tie-break of its own).
    pub fn iter_unordered(&self) -> impl Iterator<Item = &Process> {
        self.slots.iter().filter_map(|p| p.as_deref())
    }

    /// (mm slot, process) pairs, by pid.
    pub fn iter_slots(&self) -> impl Iterator<Item = (MmSlot, &Process)> {
        self.by_pid
            .values()
            .filter_map(|&s| self.get(s).map(|p| (s, p)))
    }

    /// How many processes have exited since boot.
    pub fn exits(&self) -> u64 {
        self.exits
    }

    /// True when `pid` names a live process.
    pub fn contains(&self, pid: Pid) -> bool {
        self.by_pid.contains_key(&pid)
    }

    /// Number of live processes.
    pub fn len(&self) -> usize {
        self.by_pid.len()
    }

    /// True when no process lives.
    pub fn is_empty(&self) -> bool {
        self.by_pid.is_empty()
    }

    /// `alloc_pid`: the next free pid after `last`, wrapping at `pid_max`
    /// back to RESERVED_PIDS (`idr_alloc_cyclic`). EAGAIN when all are taken.
    pub fn next_pid(&self, last: u32) -> MmResult<Pid> {
        let cursor = last.saturating_add(1);
        let min = if cursor > RESERVED_PIDS {
            RESERVED_PIDS
        } else {
            self.pid_floor
        };
        let free = |p: &u32| !self.by_pid.contains_key(&Pid(*p));
        (cursor.max(self.pid_floor)..PID_MAX)
            .find(free)
            .or_else(|| (min..cursor.min(PID_MAX)).find(free))
            .map(Pid)
            .ok_or_else(|| {
                MmError::Again(format!(
                    "fork: all {} pids are in use (kernel.pid_max = {PID_MAX})",
                    PID_MAX - self.pid_floor
                ))
            })
    }

    fn free_slot(&self) -> MmResult<MmSlot> {
        if let Some(&slot) = self.free_slots.first() {
            return Ok(slot);
        }
        let next = u32::try_from(self.slots.len()).unwrap_or(u32::MAX);
        if next > MAX_MM_SLOT {
            return Err(MmError::Again(format!(
                "fork: {MAX_MM_SLOT} processes is the most the reverse map can tell apart"
            )));
        }
        Ok(MmSlot(next))
    }

    fn insert(&mut self, slot: MmSlot, process: Process) {
        let pid = process.pid;
        self.families
            .entry(process.family)
            .or_default()
            .insert(slot);
        if slot.index() == self.slots.len() {
            self.slots.push(Some(Box::new(process)));
        } else {
            self.slots[slot.index()] = Some(Box::new(process));
            self.free_slots.remove(&slot);
        }
        self.by_pid.insert(pid, slot);
    }

    fn remove(&mut self, slot: MmSlot) -> Option<Box<Process>> {
        let process = self.slots.get_mut(slot.index())?.take()?;
        self.by_pid.remove(&process.pid);
        self.exits += 1;
        if let Some(members) = self.families.get_mut(&process.family) {
            members.remove(&slot);
            if members.is_empty() {
                self.families.remove(&process.family);
            }
        }
        self.free_slots.insert(slot);
        Some(process)
    }
}

/// THREAD_SIZE as a buddy order: 16 KiB on x86_64, 8 KiB on i386.
pub fn thread_order(arch: Arch) -> Order {
    match arch {
        Arch::X86_64 => Order(2),
        Arch::I386 => Order(1),
    }
}

/// The error-code bits of an x86 page fault.
const PF_PROT: u64 = 1;
const PF_WRITE: u64 = 2;
const PF_USER: u64 = 4;

impl Kernel {
    /// Boot-time setup: the zero page and the overcommit reserves
    /// (`init_user_reserve`, `init_admin_reserve`).
    pub fn mm_init(&mut self) -> MmResult<()> {
        self.procs.user_zone = self.user_zone();
        let zone = self.kernel_zone();
        self.procs.zero_page = self
            .alloc_pages(Order(0), zone, PageKind::ZeroPage)
            .ok_or_else(|| MmError::NoMemory("no page for the zero page".into()))?;
        let free_kb = self.page_alloc.total_free() * 4;
        self.procs.user_reserve_pages = (free_kb / 32).min(1 << 17) / 4;
        self.procs.admin_reserve_pages = (free_kb / 32).min(1 << 13) / 4;
        Ok(())
    }

    /// Pids of the processes started after boot (not init, not the kernel
    /// threads), ascending.
    pub fn user_pids(&self) -> Vec<Pid> {
        let floor = Pid(self.procs.pid_floor);
        self.procs
            .pids()
            .into_iter()
            .filter(|&p| p >= floor)
            .collect()
    }

    /// Pids of the live tasks (processes and kernel threads), ascending.
    pub fn pids(&self) -> Vec<Pid> {
        let mut pids = self.procs.pids();
        pids.extend(self.kthreads.iter().map(|t| t.pid));
        pids.sort_unstable();
        pids
    }

    /// `spawn NAME`: fork + exec of a program with nothing but a stack:
    /// task objects from slab, a kernel stack, a PGD, the `[stack]` VMA
    /// with its top pages touched. The heap is empty until `brk`.
    pub fn spawn(&mut self, name: &str) -> MmResult<Pid> {
        let family = self.procs.new_family();
        let ppid = Pid(u32::from(self.procs.next_pid(self.ns_last_pid)?.0 != 1));
        let (pid, slot) = self.new_task(name, ppid, family, 0)?;
        if let Err(err) = self.setup_arg_pages(slot) {
            self.exit_process(slot);
            return Err(err);
        }
        self.ns_last_pid = pid.0;
        self.forks += 1;
        Ok(pid)
    }

    /// `copy_process` without the memory: a task like `parent`'s (comm,
    /// oom_score_adj, fork family), its child, with an empty mm.
    pub(crate) fn copy_process(&mut self, parent: MmSlot) -> MmResult<Pid> {
        let p = self
            .procs
            .get(parent)
            .ok_or_else(|| MmError::NoProcess(format!("no process in slot {parent}")))?;
        let (comm, ppid, family, adj) = (p.comm.clone(), p.pid, p.family, p.oom_score_adj);
        self.new_task(&comm, ppid, family, adj).map(|(pid, _)| pid)
    }

    /// A new task: pid, slot, task objects from slab, a kernel stack, a
    /// PGD, an empty mm. All or nothing.
    fn new_task(
        &mut self,
        name: &str,
        ppid: Pid,
        family: u32,
        oom_score_adj: i64,
    ) -> MmResult<(Pid, MmSlot)> {
        let pid = self.procs.next_pid(self.ns_last_pid)?;
        let slot = self.procs.free_slot()?;
        let mut objects = Vec::new();
        for cache in TASK_CACHES {
            match self.kmem_cache_alloc(cache) {
                Ok(obj) => objects.push(obj),
                Err(err) => {
                    objects.into_iter().for_each(|o| self.free_object(o));
                    return Err(err);
                }
            }
        }
        let order = thread_order(self.config.arch);
        let zone = self.kernel_zone();
        let Some(stack) = self.alloc_pages(order, zone, PageKind::KernelStack) else {
            objects.into_iter().for_each(|o| self.free_object(o));
            return Err(MmError::NoMemory(
                "fork: no memory for a kernel stack".into(),
            ));
        };
        let pgd = match self.alloc_pt_page() {
            Ok(pfn) => pfn,
            Err(err) => {
                self.free_pages(stack, order).ok();
                objects.into_iter().for_each(|o| self.free_object(o));
                return Err(err);
            }
        };
        let seq = self.procs.next_seq;
        self.procs.next_seq += 1;
        let process = Process {
            pid,
            comm: name.to_string(),
            mm: MmStruct::new(self.config.arch, pgd),
            min_flt: 0,
            maj_flt: 0,
            oom_score_adj,
            start_time_ns: self.clock_ns,
            cputime: super::cputime::TaskTime::default(),
            ioac: IoAccounting::default(),
            ppid,
            kernel_stack: stack,
            kernel_stack_order: order,
            seq,
            family,
            objects,
        };
        self.procs.insert(slot, process);
        Ok((pid, slot))
    }

    /// `setup_arg_pages` and the first touches of the new program: the
    /// `[stack]` VMA below STACK_TOP, its top pages written.
    fn setup_arg_pages(&mut self, slot: MmSlot) -> MmResult<()> {
        let top = self.procs.mm(slot)?.layout.stack_top;
        let start = top - INITIAL_STACK;
        self.vm_enough_memory(slot, INITIAL_STACK >> PAGE_SHIFT)?;
        let flags = VmFlags(
            VM_READ | VM_WRITE | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC | VM_GROWSDOWN | VM_ACCOUNT,
        );
        self.vma_merge_new_range(
            slot,
            Vma {
                start,
                end: top,
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
        self.anon_vma_prepare(slot, start)?;
        let top_vpn = top >> PAGE_SHIFT;
        self.fault_range(
            slot,
            top_vpn - INITIAL_STACK_PAGES_TOUCHED,
            top_vpn,
            true,
            true,
            FaultOrigin::Task,
        )
    }

    /// `kill PID`: the process exits and everything it held goes back.
    pub fn kill(&mut self, pid: Pid) -> MmResult<()> {
        if self.is_unkillable(pid) {
            return Err(MmError::Permission(format!(
                "pid {pid} is {}: it ignores SIGKILL",
                if pid == Pid(1) {
                    "init"
                } else {
                    "a kernel thread"
                }
            )));
        }
        let slot = self.procs.slot_of(pid)?;
        self.exit_process(slot);
        Ok(())
    }

    /// `exit_mmap` + `free_task`: pages, swap entries, VMAs and their slab
    /// objects, page tables, the kernel stack, the task objects.
    pub fn exit_process(&mut self, slot: MmSlot) {
        let Ok(mm) = self.procs.mm(slot) else {
            return;
        };
        let pid = self.procs.pid_of_slot(slot);
        let ranges: Vec<(u64, u64)> = mm.vmas().map(|v| (v.start_vpn(), v.end_vpn())).collect();
        for (lo, hi) in ranges {
            self.zap_range(slot, lo, hi);
        }
        let Ok(mm) = self.procs.mm_mut(slot) else {
            return;
        };
        mm.update_hiwater_vm();
        let vmas = mm.take_all_vmas();
        let files: Vec<u32> = vmas
            .iter()
            .filter_map(|v| v.file.as_ref().map(|f| f.ino))
            .collect();
        for vma in vmas {
            self.release_vma_objects(vma);
        }
        let Ok(mm) = self.procs.mm_mut(slot) else {
            return;
        };
        let anon = mm.take_anon_vma_objects();
        let tables = mm.pgtables.all_pfns();
        for obj in anon {
            self.free_object(obj);
        }
        for pfn in tables {
            self.free_kernel_page(pfn);
        }
        if let Some(process) = self.procs.remove(slot) {
            if let Err(err) = self
                .page_alloc
                .free(process.kernel_stack, process.kernel_stack_order)
            {
                self.printk(format!("BUG: Bad page state: kernel stack: {err}"));
            }
            for obj in process.objects {
                self.free_object(obj);
            }
        }
        self.iput_unmapped(&files);
        // forget_original_parent: the children go to init.
        if let Some(pid) = pid {
            let orphans: Vec<MmSlot> = self
                .procs
                .iter_slots()
                .filter(|(_, p)| p.ppid == pid)
                .map(|(s, _)| s)
                .collect();
            for s in orphans {
                if let Some(p) = self.procs.get_mut(s) {
                    p.ppid = Pid(1);
                }
            }
        }
    }

    /// Free a VMA's own objects at exit (its anon_vma goes with the mm).
    fn release_vma_objects(&mut self, vma: Vma) {
        if let Some(shm) = vma.shm {
            self.shmem_put(shm.id);
        }
        for obj in [vma.object, vma.avc, vma.fork_avc].into_iter().flatten() {
            self.free_object(obj);
        }
    }

    /// `touch ADDR SIZE [read|write]`: the process accesses every page of
    /// the range. The whole range is checked first (VMAs, protection, stack
    /// growth); a bad access is a SIGSEGV with Linux's log line, EFAULT, and
    /// nothing faulted. Then pages fault in, one PTE table at a time; an
    /// ENOMEM keeps the pages faulted before it.
    pub fn do_touch(
        &mut self,
        slot: MmSlot,
        addr: VirtAddr,
        len: u64,
        write: bool,
    ) -> MmResult<()> {
        let addr = addr.0;
        let end = addr.checked_add(len).ok_or_else(|| {
            MmError::Invalid(format!(
                "touch {addr:#x}+{len:#x} wraps around the address space"
            ))
        })?;
        let mut pieces: Vec<(u64, u64, bool)> = Vec::new();
        let mut grow: Option<(u64, u64)> = None;
        let mut at = addr;
        while at < end {
            let page = at & !(PAGE_SIZE - 1);
            let mm = self.procs.mm(slot)?;
            let task_size = mm.layout.task_size;
            let found = mm.find_vma(at).map(|v| (v.start, v.end, v.flags));
            let (vma_start, vma_end, flags) = match found {
                Some((s, e, f)) if s <= at => (s, e, f),
                Some((s, e, f)) if f.is_stack() && grow.is_none() => {
                    match self.stack_growth(slot, s, e, page) {
                        Ok(()) => {
                            grow = Some((s, page));
                            (page, e, f)
                        }
                        Err(why) => return Err(self.segfault(slot, at, write, &why)),
                    }
                }
                _ => {
                    let why = if at >= task_size {
                        "beyond the user address space"
                    } else {
                        "no mapping there"
                    };
                    return Err(self.segfault(slot, at, write, why));
                }
            };
            let allowed = if write {
                flags.is_write()
            } else {
                flags.is_accessible()
            };
            if !allowed {
                let why = format!(
                    "the mapping {vma_start:x}-{vma_end:x} is {}",
                    if flags.is_accessible() {
                        "read-only"
                    } else {
                        "PROT_NONE"
                    }
                );
                return Err(self.segfault(slot, at, write, &why));
            }
            let piece_end = vma_end.min(end);
            pieces.push((
                page >> PAGE_SHIFT,
                piece_end.div_ceil(PAGE_SIZE),
                flags.is_write(),
            ));
            at = piece_end;
        }
        if let Some((old_start, new_start)) = grow {
            self.expand_stack(slot, old_start, new_start)?;
        }
        for (lo, hi, vma_write) in pieces {
            if write {
                self.anon_vma_prepare(slot, lo << PAGE_SHIFT)?;
            }
            self.fault_range(slot, lo, hi, write, vma_write, FaultOrigin::Task)?;
        }
        Ok(())
    }

    /// May the stack VMA `vma` grow down to `new_start`
    /// (`expand_downwards`, `acct_stack_growth`)? The reason if not.
    fn stack_growth(
        &mut self,
        slot: MmSlot,
        start: u64,
        end: u64,
        new_start: u64,
    ) -> Result<(), String> {
        let mm = self.procs.mm(slot).map_err(|e| e.to_string())?;
        if new_start < MMAP_MIN_ADDR {
            return Err("below vm.mmap_min_addr".into());
        }
        if let Some(prev) = mm.prev_vma(start)
            && !prev.flags.is_stack()
            && prev.flags.is_accessible()
            && new_start.saturating_sub(prev.end) < STACK_GUARD_GAP
        {
            return Err(format!(
                "the stack may not grow within {} KiB of the mapping at {:x}",
                STACK_GUARD_GAP >> 10,
                prev.start
            ));
        }
        if end - new_start > STACK_RLIMIT {
            return Err(format!(
                "the stack would pass RLIMIT_STACK ({} KiB)",
                STACK_RLIMIT >> 10
            ));
        }
        let grow = (start - new_start) >> PAGE_SHIFT;
        self.vm_enough_memory(slot, grow)
            .map_err(|_| "overcommit refused the stack growth".to_string())
    }

    /// Move the stack VMA's start down (already checked by `stack_growth`).
    fn expand_stack(&mut self, slot: MmSlot, old_start: u64, new_start: u64) -> MmResult<()> {
        let mm = self.procs.mm_mut(slot)?;
        if let Some(vma) = mm.remove_vma(old_start) {
            mm.insert_vma(Vma {
                start: new_start,
                ..vma
            });
        }
        // A stack that grows down onto another piece of itself (left by a
        // munmap inside it: the guard gap does not apply between stacks)
        // becomes one mapping again.
        self.vma_merge_existing_range(slot, new_start, new_start)
    }

    /// A user access the process may not make: log Linux's segfault line
    /// (`show_signal_msg`) and fail with EFAULT. The process lives on: the
    /// simulation has no program to kill, only the command fails.
    fn segfault(&mut self, slot: MmSlot, addr: u64, write: bool, why: &str) -> MmError {
        let (pid, comm) = self
            .procs
            .get(slot)
            .map(|p| (p.pid, p.comm.clone()))
            .unwrap_or_default();
        let vpn = addr >> PAGE_SHIFT;
        let present = self
            .procs
            .get(slot)
            .and_then(|p| p.mm.vma_lookup(addr))
            .is_some_and(|v| v.flags.is_accessible())
            && self.pte(slot, vpn).is_present();
        let code = PF_USER | if write { PF_WRITE } else { 0 } | if present { PF_PROT } else { 0 };
        let width = match self.config.arch {
            Arch::X86_64 => 16,
            Arch::I386 => 8,
        };
        // ip and sp are not simulated: they print as zeros. ip - 42 is
        // where show_opcodes would have read the code bytes.
        let prologue = 0u64.wrapping_sub(42) & if width == 8 { 0xffff_ffff } else { u64::MAX };
        self.printk(format!(
            "{comm}[{pid}]: segfault at {addr:x} ip {:0width$x} sp {:0width$x} error {code:x} likely on CPU 0 (core 0, socket 0)",
            0, 0
        ));
        self.printk(format!(
            "Code: Unable to access opcode bytes at 0x{prologue:x}."
        ));
        MmError::Fault(format!(
            "{} at {addr:#x}: {why} (SIGSEGV, error {code}; the process lives on)",
            if write { "write" } else { "read" }
        ))
    }

    /// `select_bad_process` without building every candidate: the process
    /// with the highest badness, a newer one winning a tie (the task list
    /// is walked oldest first). None when every process is unkillable.
    pub fn oom_victim(&self, totalpages: u64) -> Option<OomCandidate> {
        let mut best: Option<(i64, u64, &Process)> = None;
        // The tie-break is by seq, so the walk order does not matter.
        for p in self.procs.iter_unordered() {
            // oom_unkillable_task: never the global init.
            if p.oom_score_adj == super::oom_kill::OOM_SCORE_ADJ_MIN || p.pid == Pid(1) {
                continue;
            }
            let points = (p.mm.rss() + p.mm.swap_ents + p.mm.pgtables.nr_tables()) as i64
                + p.oom_score_adj * (totalpages / 1000) as i64;
            if best.is_none_or(|(b, seq, _)| points > b || (points == b && p.seq > seq)) {
                best = Some((points, p.seq, p));
            }
        }
        best.map(|(_, _, p)| oom_candidate(p))
    }

    /// What the OOM killer needs about every process it may kill (all but
    /// init, `oom_unkillable_task`), oldest first.
    pub fn oom_candidates(&self) -> Vec<OomCandidate> {
        let mut list: Vec<&Process> = self.procs.iter().filter(|p| p.pid != Pid(1)).collect();
        list.sort_by_key(|p| p.seq);
        list.into_iter().map(oom_candidate).collect()
    }

    /// `/proc/PID/oom_score_adj` write: an integer in -1000..=1000.
    pub fn write_oom_score_adj(&mut self, pid: Pid, text: &str) -> MmResult<()> {
        let slot = self.procs.slot_of(pid)?;
        let trimmed = text.trim();
        let value: i64 = trimmed.parse().map_err(|_| {
            MmError::Invalid(format!("oom_score_adj: '{trimmed}' is not an integer"))
        })?;
        if !(OOM_SCORE_ADJ_MIN..=OOM_SCORE_ADJ_MAX).contains(&value) {
            return Err(MmError::Invalid(format!(
                "oom_score_adj: {value} out of range -1000..1000"
            )));
        }
        if let Some(p) = self.procs.get_mut(slot) {
            p.oom_score_adj = value;
            self.trace_oom_score_adj_update(slot);
        }
        Ok(())
    }

    /// `/proc/PID/comm` write: the new name, cut to 15 bytes.
    pub fn write_comm(&mut self, pid: Pid, text: &str) -> MmResult<()> {
        let slot = self.procs.slot_of(pid)?;
        let text = text.strip_suffix('\n').unwrap_or(text);
        // strscpy stops at a NUL: a comm never holds one.
        let text = text.split('\0').next().unwrap_or_default();
        if let Some(p) = self.procs.get_mut(slot) {
            p.comm = comm_cut(text).to_string();
        }
        Ok(())
    }

    /// Kernel stacks of all processes, in kB (NR_KERNEL_STACK_KB).
    pub fn kernel_stack_kb(&self) -> u64 {
        let user: u64 = self
            .procs
            .iter()
            .map(|p| p.kernel_stack_order.pages() * 4)
            .sum();
        user + self.kthreads.kernel_stack_pages() * 4
    }

    /// Page-table pages of all processes, PGDs included (NR_PAGETABLE).
    pub fn page_table_pages(&self) -> u64 {
        self.procs
            .iter()
            .map(|p| p.mm.pgtables.nr_tables() + 1)
            .sum()
    }

    /// Anonymous pages mapped by at least one process (NR_ANON_MAPPED:
    /// Σ RssAnon counts a page shared since fork once per process).
    pub fn anon_mapped_pages(&self) -> u64 {
        self.procs.nr_anon_mapped
    }

    /// Check every process: VMAs sorted, aligned, disjoint, unmergeable,
    /// counters equal a recount, every PTE inside a VMA with the right
    /// reverse map, RSS and swap counts equal the page tables, page-table
    /// and kernel-stack frames of the right kind; and globally AnonPages =
    /// Σ RssAnon = the anon LRU, PageTables = Σ (VmPTE + PGD).
    pub fn check_process_invariants(&self) -> Result<(), String> {
        let frames = &self.page_alloc.frames;
        let mut rss_total = 0;
        for (slot, p) in self.procs.iter_slots() {
            let mm = &p.mm;
            let who = format!("pid {} ({})", p.pid, p.comm);
            let mut prev: Option<&Vma> = None;
            for v in mm.vmas() {
                if !v.start.is_multiple_of(PAGE_SIZE)
                    || !v.end.is_multiple_of(PAGE_SIZE)
                    || v.start >= v.end
                {
                    return Err(format!("{who}: bad VMA {:#x}-{:#x}", v.start, v.end));
                }
                if v.end > mm.layout.task_size {
                    return Err(format!("{who}: VMA {:#x} above TASK_SIZE", v.start));
                }
                if v.object.is_none() || v.anon_vma.is_some() != v.avc.is_some() {
                    return Err(format!("{who}: VMA {:#x} lacks its slab objects", v.start));
                }
                if let Some(pv) = prev {
                    if pv.end > v.start {
                        return Err(format!("{who}: VMAs overlap at {:#x}", v.start));
                    }
                    if MmStruct::can_merge(pv, v) {
                        return Err(format!(
                            "{who}: VMAs {:#x} and {:#x} should be merged",
                            pv.start, v.start
                        ));
                    }
                }
                prev = Some(v);
            }
            mm.vmas
                .check()
                .map_err(|e| format!("{who}: maple tree: {e}"))?;
            let recount = mm.recount();
            if recount
                != (
                    mm.total_vm,
                    mm.data_vm,
                    mm.exec_vm,
                    mm.stack_vm,
                    mm.committed,
                )
            {
                return Err(format!(
                    "{who}: vm counters {:?} differ from a recount {recount:?}",
                    (
                        mm.total_vm,
                        mm.data_vm,
                        mm.exec_vm,
                        mm.stack_vm,
                        mm.committed
                    )
                ));
            }
            if !mm.names_consistent() {
                return Err(format!("{who}: anon name index out of date"));
            }
            let mut refs: BTreeMap<u32, u32> = BTreeMap::new();
            for v in mm.vmas() {
                if let Some(id) = v.anon_vma {
                    *refs.entry(id).or_insert(0) += 1;
                }
            }
            let live: BTreeMap<u32, u32> = mm.anon_vma_refs().into_iter().collect();
            if refs != live {
                return Err(format!(
                    "{who}: anon_vma references {live:?}, VMAs hold {refs:?}"
                ));
            }
            let (mut rss, mut swap, mut owned) = (0u64, 0u64, 0u64);
            let pt = &mm.pgtables;
            let task_vpns = mm.layout.task_size >> PAGE_SHIFT;
            for (table, lo, hi, first) in pt.pte_tables(0, task_vpns) {
                for (i, &e) in pt.entries(table)[lo..hi].iter().enumerate() {
                    if e == 0 {
                        continue;
                    }
                    let vpn = first + i as u64;
                    let addr = vpn << PAGE_SHIFT;
                    let Some(vma) = mm.vma_lookup(addr) else {
                        return Err(format!("{who}: PTE at {addr:#x} outside every VMA"));
                    };
                    let pte = Pte(e);
                    let file_page = pte.is_page() && frames.kind(pte.pfn()) == PageKind::PageCache;
                    if file_page {
                        // Page-cache pages: checked by check_rmap.
                        if vma.file.is_none() {
                            return Err(format!(
                                "{who}: page-cache page at {addr:#x} in an anonymous VMA"
                            ));
                        }
                        continue;
                    }
                    if pte.is_page() && frames.kind(pte.pfn()) == PageKind::Shmem {
                        // shmem pages: checked by check_shmem (RssShmem,
                        // the index) and check_rmap (map counts).
                        if vma.shm.is_none() {
                            return Err(format!(
                                "{who}: shmem page at {addr:#x} outside a shared anonymous VMA"
                            ));
                        }
                        continue;
                    }
                    if vma.shm.is_some() {
                        return Err(format!(
                            "{who}: a shared anonymous VMA maps {pte:?} at {addr:#x}, no shmem page"
                        ));
                    }
                    if (pte.is_page() || pte.is_swap()) && vma.anon_vma.is_none() {
                        return Err(format!(
                            "{who}: anon page at {addr:#x} in a VMA without anon_vma"
                        ));
                    }
                    if pte.is_page() {
                        rss += 1;
                        let pfn = pte.pfn();
                        if frames.rmap(pfn) == (slot, Vpn(vpn)) {
                            owned += 1;
                        }
                        if frames.kind(pfn) != PageKind::UserAnon
                            || frames.state(pfn) != super::page_alloc::FrameState::Allocated
                        {
                            return Err(format!(
                                "{who}: PTE at {addr:#x} maps pfn {pfn} that is no user page"
                            ));
                        }
                        let (owner, owner_vpn) = frames.rmap(pfn);
                        let shared = frames.mapcount(pfn) > 1;
                        let owner_ok = if shared {
                            // Any mapper of the family at the same page.
                            owner_vpn == Vpn(vpn)
                                && self.procs.get(owner).is_some_and(|o| o.family == p.family)
                                && self.pte(owner, vpn).is_page()
                                && self.pte(owner, vpn).pfn() == pfn
                        } else {
                            (owner, owner_vpn) == (slot, Vpn(vpn))
                        };
                        if !owner_ok {
                            return Err(format!(
                                "{who}: pfn {pfn} has rmap {:?}, mapped at ({slot}, {vpn:#x})",
                                frames.rmap(pfn)
                            ));
                        }
                        if shared && pte.is_write() {
                            return Err(format!(
                                "{who}: pfn {pfn} is shared by {} PTEs but writable at {addr:#x}",
                                frames.mapcount(pfn)
                            ));
                        }
                    } else if pte.is_zero_page() {
                        if pte.pfn() != self.procs.zero_page || pte.is_write() {
                            return Err(format!("{who}: bad zero-page PTE at {addr:#x}"));
                        }
                    } else if pte.is_swap() {
                        swap += 1;
                    }
                }
            }
            if rss != mm.rss_anon || swap != mm.swap_ents {
                return Err(format!(
                    "{who}: RssAnon {} / swap {} but the page tables map {rss} / {swap}",
                    mm.rss_anon, mm.swap_ents
                ));
            }
            let tables = pt.all_pfns();
            if tables.len() as u64 != pt.nr_tables() + 1 {
                return Err(format!(
                    "{who}: {} table pages but nr_ptes says {}",
                    tables.len(),
                    pt.nr_tables() + 1
                ));
            }
            if let Some(t) = tables
                .iter()
                .find(|&&t| frames.kind(t) != PageKind::PageTable)
            {
                return Err(format!(
                    "{who}: page-table frame {t} is not a PageTable page"
                ));
            }
            if frames.kind(p.kernel_stack) != PageKind::KernelStack
                || frames.order(p.kernel_stack) != p.kernel_stack_order
            {
                return Err(format!("{who}: bad kernel stack block"));
            }
            rss_total += owned;
        }
        let lru = self.lru.active_anon() + self.lru.inactive_anon();
        // Swap-cache pages nobody maps stay on the anon LRU too.
        let unmapped_cached = self
            .swap
            .cache
            .iter()
            .filter(|&(_, pfn)| frames.mapcount(pfn) == 0)
            .count() as u64;
        // shmem pages are swap-backed: on the anon LRU, whether mapped
        // or not (shmem.rs).
        let shmem = self.shmem.nr_shmem;
        if rss_total + unmapped_cached + shmem != lru || rss_total != self.procs.nr_anon_mapped {
            return Err(format!(
                "anon pages mapped {rss_total} (NR_ANON_MAPPED {}) + {unmapped_cached} unmapped \
                 swap-cache pages + {shmem} shmem pages != anon LRU pages {lru}",
                self.procs.nr_anon_mapped
            ));
        }
        let table_frames = (0..self.page_alloc.max_pfn)
            .filter(|&pfn| {
                frames.state(Pfn(pfn)) == super::page_alloc::FrameState::Allocated
                    && frames.kind(Pfn(pfn)) == PageKind::PageTable
            })
            .count() as u64;
        if table_frames != self.page_table_pages() {
            return Err(format!(
                "{table_frames} PageTable frames but Σ (VmPTE + PGD) = {}",
                self.page_table_pages()
            ));
        }
        Ok(())
    }
}

/// The OOM killer's view of one process.
pub(crate) fn oom_candidate(p: &Process) -> OomCandidate {
    OomCandidate {
        pid: p.pid,
        comm: p.comm.clone(),
        rss_pages: p.mm.rss_anon,
        file_rss_pages: p.mm.rss_file,
        shmem_rss_pages: p.mm.rss_shmem,
        swap_pages: p.mm.swap_ents,
        pgtable_pages: p.mm.pgtables.nr_tables(),
        total_vm_pages: p.mm.total_vm,
        oom_score_adj: p.oom_score_adj,
    }
}

/// Helpers for the core tests of processes, VMAs and faults.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use crate::ctl::Scope;
    use crate::mm::MachineConfig;

    /// A booted machine.
    pub fn boot(arch: Arch, mem: u64) -> crate::ctl::Machine {
        let k = crate::ctl::Machine::boot(MachineConfig {
            arch,
            mem_bytes: mem,
        })
        .expect("boot");
        k.check_invariants().expect("invariants at boot");
        k
    }

    /// A line on `MOUNT/ctl`, invariants checked after it.
    pub fn sys(k: &mut crate::ctl::Machine, line: &str) -> MmResult<()> {
        let r = k.execute_line(Scope::System, line).map(|_| ());
        k.check_invariants()
            .unwrap_or_else(|e| panic!("after {line:?}: {e}"));
        r
    }

    /// A line on `MOUNT/PID/ctl`, invariants checked after it.
    pub fn run(k: &mut crate::ctl::Machine, pid: Pid, line: &str) -> MmResult<()> {
        let r = k.execute_line(Scope::Process(pid), line).map(|_| ());
        k.check_invariants()
            .unwrap_or_else(|e| panic!("after {line:?}: {e}"));
        r
    }

    /// vm_area_struct objects in use.
    pub fn vma_objects(k: &Kernel) -> u64 {
        objects(k, slab_common::VM_AREA_STRUCT)
    }

    /// smaps VmFlags of the VMA at `addr`.
    pub fn flags_at(k: &Kernel, pid: Pid, addr: u64) -> String {
        mm(k, pid).vma_lookup(addr).unwrap().flags.mnemonics()
    }

    /// An x86_64 machine of `mem` bytes whose swap files go to the host's
    /// temporary directory.
    pub fn boot_tmp(mem: u64) -> crate::ctl::Machine {
        let mut k = boot(Arch::X86_64, mem);
        k.swap.swapdir = std::env::temp_dir();
        k
    }

    /// [`boot_tmp`] with a 64M swap partition, /dev/sdb1, on.
    pub fn boot_with_swap(mem: u64) -> crate::ctl::Machine {
        let mut k = boot_tmp(mem);
        sys(&mut k, "mkswap /dev/sdb1 64M").expect("mkswap");
        sys(&mut k, "swapon /dev/sdb1").expect("swapon");
        k
    }

    /// `fork PID`, returning the child's pid.
    pub fn fork(k: &mut crate::ctl::Machine, pid: Pid) -> Pid {
        sys(k, &format!("fork {pid}")).expect("fork");
        Pid(k.ns_last_pid)
    }

    /// `spawn NAME`, returning the new pid.
    pub fn spawn(k: &mut crate::ctl::Machine, name: &str) -> Pid {
        sys(k, &format!("spawn {name}")).expect("spawn");
        Pid(k.ns_last_pid)
    }

    /// A default machine with one process.
    pub fn setup() -> (crate::ctl::Machine, Pid) {
        let mut k = boot(Arch::X86_64, 1 << 30);
        let pid = spawn(&mut k, "test");
        (k, pid)
    }

    /// The address space of `pid`.
    pub fn mm(k: &Kernel, pid: Pid) -> &MmStruct {
        &k.procs.by_pid(pid).expect("live pid").mm
    }

    /// Start of the mapping named `name`.
    pub fn addr(k: &Kernel, pid: Pid, name: &str) -> u64 {
        mm(k, pid).named_start(name).expect("named mapping")
    }

    /// The VMAs over `pages` pages from `base`, one character a page: `.`
    /// for a hole, a letter per VMA in address order (the style of the
    /// kernel's tools/testing/vma).
    pub fn layout(k: &Kernel, pid: Pid, base: u64, pages: u64) -> String {
        let mm = mm(k, pid);
        let mut seen: Vec<u64> = Vec::new();
        (0..pages)
            .map(|i| match mm.vma_lookup(base + i * PAGE_SIZE) {
                None => '.',
                Some(v) => {
                    let n = match seen.iter().position(|&s| s == v.start) {
                        Some(n) => n,
                        None => {
                            seen.push(v.start);
                            seen.len() - 1
                        }
                    };
                    (b'A' + n as u8) as char
                }
            })
            .collect()
    }

    /// Live objects of a slab cache.
    pub fn objects(k: &Kernel, cache: slub::CacheId) -> u64 {
        k.slab.cache(cache).expect("boot cache").active_objs()
    }

    /// Free pages plus pages held by slab caches: what must come back after
    /// a process exits (caches may keep empty slabs).
    pub fn free_plus_slab(k: &Kernel) -> u64 {
        k.page_alloc.total_free() + k.slab.nr_slab_pages()
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    #[test]
    fn spawn_builds_a_fresh_process() {
        let (k, pid) = setup();
        // init (1) and the kernel threads (2-5) come first.
        assert_eq!(pid, Pid(6));
        assert_eq!(k.ns_last_pid, 6);
        let p = k.procs.by_pid(pid).unwrap();
        let mm = &p.mm;
        let stack = mm.stack_vma().unwrap();
        assert_eq!(
            (stack.start, stack.end),
            (0x7fff_fffd_e000, 0x7fff_ffff_f000)
        );
        assert_eq!(stack.flags.mnemonics(), "rd wr mr mw me gd ac ");
        assert_eq!(mm.map_count(), 1);
        // The top three pages are touched: three minor faults, 12 kB RSS,
        // and PUD + PMD + PTE tables below the PGD.
        assert_eq!(mm.rss_anon, 3);
        assert_eq!(p.min_flt, 3);
        assert_eq!(mm.pgtables.nr_tables(), 3);
        assert_eq!(mm.stack_vm, 33);
        assert_eq!(mm.committed, 33);
        // Ours, init's and the 4 kernel threads'.
        assert_eq!(k.kernel_stack_kb(), 6 * 16);
        assert_eq!(
            k.page_alloc.frames.kind(p.kernel_stack),
            PageKind::KernelStack
        );
        assert_eq!(mm.brk, mm.start_brk);
        for cache in TASK_CACHES {
            assert!(objects(&k, cache) >= 1);
        }
    }

    #[test]
    fn i386_process_layout() {
        let mut k = boot(Arch::I386, 2 << 30);
        let pid = spawn(&mut k, "x");
        let p = k.procs.by_pid(pid).unwrap();
        let stack = p.mm.stack_vma().unwrap();
        assert_eq!((stack.start, stack.end), (0xbffd_f000, 0xc000_0000));
        assert_eq!(p.mm.pgtables.nr_tables(), 1);
        assert_eq!(p.kernel_stack_order, Order(1));
        // Ours, init's and the 4 kernel threads'.
        assert_eq!(k.kernel_stack_kb(), 6 * 8);
    }

    #[test]
    fn kill_gives_back_every_page() {
        let mut k = boot(Arch::X86_64, 1 << 30);
        let before = free_plus_slab(&k);
        let caches: Vec<slub::CacheId> = TASK_CACHES
            .iter()
            .chain(&[
                slab_common::VM_AREA_STRUCT,
                slab_common::ANON_VMA,
                slab_common::ANON_VMA_CHAIN,
            ])
            .copied()
            .collect();
        let counts: Vec<u64> = caches.iter().map(|&c| objects(&k, c)).collect();
        let pid = spawn(&mut k, "hog");
        for line in [
            "mmap 64M name=big",
            "touch big 40M",
            "mmap 1M name=ro prot=r",
            "touch ro 1M read",
            "mprotect big+4M 8M r",
            "munmap big+20M 4K",
            "brk +1M",
            "touch heap 512K",
            "touch stack-64K 64K",
        ] {
            run(&mut k, pid, line).unwrap();
        }
        let big = addr(&k, pid, "big");
        k.write_mem(pid, big + 5, b"bytes").unwrap();
        assert!(k.page_alloc.total_free() + (40 << 8) < before);
        sys(&mut k, &format!("kill {}", pid.0)).unwrap();
        assert_eq!(free_plus_slab(&k), before);
        assert!(k.page_contents.is_empty());
        assert!(k.user_pids().is_empty());
        for (cache, count) in caches.iter().zip(counts) {
            assert_eq!(objects(&k, *cache), count, "cache {cache:?}");
        }
        // What is left is init's.
        assert_eq!(k.page_table_pages(), 4);
        assert_eq!(k.anon_mapped_pages(), 3);
        assert_eq!(k.committed_as(), 33);
    }

    #[test]
    fn kill_and_ctl_of_unknown_pids_are_esrch() {
        let (mut k, pid) = setup();
        assert_eq!(sys(&mut k, "kill 99").unwrap_err().errno(), libc::ESRCH);
        assert_eq!(
            run(&mut k, Pid(99), "mmap 4K").unwrap_err().errno(),
            libc::ESRCH
        );
        assert_eq!(sys(&mut k, "kill 0").unwrap_err().errno(), libc::EINVAL);
        sys(&mut k, &format!("kill {}", pid.0)).unwrap();
        assert_eq!(
            run(&mut k, pid, "touch stack 4K").unwrap_err().errno(),
            libc::ESRCH
        );
        assert_eq!(
            sys(&mut k, &format!("kill {}", pid.0)).unwrap_err().errno(),
            libc::ESRCH
        );
    }

    #[test]
    fn pids_wrap_past_pid_max_to_reserved_pids() {
        let (mut k, first) = setup();
        k.ns_last_pid = PID_MAX - 2;
        let a = spawn(&mut k, "a");
        assert_eq!(a, Pid(PID_MAX - 1));
        let b = spawn(&mut k, "b");
        assert_eq!(b, Pid(RESERVED_PIDS));
        // Used pids are skipped.
        k.ns_last_pid = RESERVED_PIDS - 1;
        let c = spawn(&mut k, "c");
        assert_eq!(c, Pid(RESERVED_PIDS + 1));
        assert_eq!(k.user_pids(), vec![first, b, c, a]);
        // The mm slot of a killed process is reused, lowest first.
        let slot_b = k.procs.slot_of(b).unwrap();
        sys(&mut k, &format!("kill {}", b.0)).unwrap();
        let d = spawn(&mut k, "d");
        assert_eq!(k.procs.slot_of(d).unwrap(), slot_b);
    }

    #[test]
    fn names_are_cut_to_15_bytes() {
        let mut k = boot(Arch::X86_64, 256 << 20);
        let pid = spawn(&mut k, "a-very-long-process-name");
        assert_eq!(k.procs.by_pid(pid).unwrap().comm, "a-very-long-pro");
        k.write_comm(pid, "renamed\n").unwrap();
        assert_eq!(k.procs.by_pid(pid).unwrap().comm, "renamed");
    }

    #[test]
    fn oom_score_adj_range() {
        let (mut k, pid) = setup();
        assert_eq!(
            k.write_oom_score_adj(pid, "1001").unwrap_err().errno(),
            libc::EINVAL
        );
        assert_eq!(
            k.write_oom_score_adj(pid, "x").unwrap_err().errno(),
            libc::EINVAL
        );
        assert_eq!(
            k.write_oom_score_adj(Pid(77), "0").unwrap_err().errno(),
            libc::ESRCH
        );
        k.write_oom_score_adj(pid, "-1000\n").unwrap();
        assert_eq!(k.procs.by_pid(pid).unwrap().oom_score_adj, -1000);
    }

    #[test]
    fn overcommit_mode_2_refuses_past_commit_limit() {
        let (mut k, pid) = setup();
        sys(&mut k, "# strict accounting").unwrap();
        k.write_sysctl("vm/overcommit_memory", "2").unwrap();
        let ram = k.totalram_pages();
        assert_eq!(k.vm_commit_limit(), ram * 50 / 100);
        let committed = k.committed_as();
        // init's stack and ours.
        assert_eq!(committed, 2 * 33);
        // allowed = CommitLimit - min(total_vm / 32, user reserve); a
        // request passes while committed + pages < allowed.
        let total_vm = mm(&k, pid).total_vm;
        let allowed = k.vm_commit_limit() - (total_vm / 32).min(k.procs.user_reserve_pages);
        let fits = allowed - committed - 1;
        let err = run(&mut k, pid, &format!("mmap {}", (fits + 1) * PAGE_SIZE)).unwrap_err();
        assert_eq!(err.errno(), libc::ENOMEM);
        assert!(k.dmesg.records().any(|r| {
            r.text.starts_with(&format!(
                "__vm_enough_memory: pid: {pid}, comm: test, bytes:"
            ))
        }));
        run(&mut k, pid, &format!("mmap {}", fits * PAGE_SIZE)).unwrap();
        assert_eq!(k.committed_as(), committed + fits);
        // Read-only mappings are not accounted; making them writable is.
        run(&mut k, pid, "mmap 1M name=ro prot=r").unwrap();
        assert_eq!(k.committed_as(), committed + fits);
        assert_eq!(
            run(&mut k, pid, "mprotect ro 1M rw").unwrap_err().errno(),
            libc::ENOMEM
        );
        // The ratio moves the limit.
        k.write_sysctl("vm/overcommit_ratio", "100").unwrap();
        assert_eq!(k.vm_commit_limit(), ram);
        run(&mut k, pid, "mprotect ro 1M rw").unwrap();
        assert_eq!(k.committed_as(), committed + fits + 256);
        // munmap gives the commitment back.
        run(&mut k, pid, "munmap ro 1M").unwrap();
        assert_eq!(k.committed_as(), committed + fits);
    }

    #[test]
    fn overcommit_modes_0_and_1() {
        let (mut k, pid) = setup();
        let ram = k.totalram_pages();
        // Mode 0 refuses one request above RAM + swap, not the sum of many.
        let err = run(&mut k, pid, &format!("mmap {}", (ram + 1) * PAGE_SIZE)).unwrap_err();
        assert_eq!(err.errno(), libc::ENOMEM);
        run(&mut k, pid, &format!("mmap {}", ram * PAGE_SIZE)).unwrap();
        run(&mut k, pid, &format!("mmap {}", ram * PAGE_SIZE)).unwrap();
        // init's stack, ours, and the two mappings.
        assert_eq!(k.committed_as(), 66 + 2 * ram);
        k.write_sysctl("vm/overcommit_memory", "1").unwrap();
        run(&mut k, pid, "mmap 64G").unwrap();
        assert_eq!(k.committed_as(), 66 + 2 * ram + (16 << 20));
    }

    #[test]
    fn a_spawn_that_fails_gives_everything_back() {
        let mut k = boot(Arch::X86_64, 256 << 20);
        k.write_sysctl("vm/overcommit_memory", "2").unwrap();
        k.write_sysctl("vm/overcommit_ratio", "0").unwrap();
        let before = free_plus_slab(&k);
        let err = sys(&mut k, "spawn nope").unwrap_err();
        assert_eq!(err.errno(), libc::ENOMEM);
        assert_eq!(free_plus_slab(&k), before);
        assert!(k.user_pids().is_empty());
        assert_eq!(k.ns_last_pid, 5);
    }

    #[test]
    fn the_oom_killer_may_end_the_faulting_process() {
        let mut k = boot(Arch::X86_64, 128 << 20);
        k.write_sysctl("vm/overcommit_memory", "1").unwrap();
        let small = spawn(&mut k, "small");
        let hog = spawn(&mut k, "hog");
        run(&mut k, hog, "mmap 1G name=a").unwrap();
        let err = run(&mut k, hog, "touch a 1G").unwrap_err();
        assert_eq!(err.errno(), libc::ENOMEM);
        // The biggest process was the victim; the other lives on.
        assert_eq!(k.user_pids(), vec![small]);
        assert!(
            k.dmesg
                .records()
                .any(|r| r.text.contains(&format!("Killed process {hog} (hog)")))
        );
        run(&mut k, small, "touch stack 4K").unwrap();
    }

    #[test]
    fn same_commands_give_identical_files() {
        let script = [
            "mmap 8M name=a",
            "touch a 3M",
            "mmap 1M prot=r",
            "touch a+6M 4K read",
            "mprotect a+1M 1M r",
            "brk +100K",
            "touch heap 50K",
            "madvise a 512K dontneed",
        ];
        let render = || {
            let (mut k, pid) = setup();
            for line in script {
                run(&mut k, pid, line).unwrap();
            }
            use crate::procfs::pid::{PidFile, render_pid};
            [
                PidFile::Maps,
                PidFile::Smaps,
                PidFile::Status,
                PidFile::Stat,
            ]
            .map(|f| render_pid(&k, pid, f).unwrap())
        };
        assert_eq!(render(), render());
    }
}
