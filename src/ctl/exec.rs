//! Dispatch: a line written to a control file → plain calls on the
//! kernel's own API (`alloc_pages`, `kmem_cache_alloc`, `do_mmap`,
//! `do_touch`, `swapon`, …), with the tags that let the user give back
//! what a command took.
//!
//! The route of `echo "alloc_pages 3" > MOUNT/ctl`: fs (one write) →
//! [`Machine::execute_line`] (validate, [`super::parse_system`]) →
//! [`Machine::apply`] → `Kernel::alloc_pages` (mm/page_alloc.rs).

use std::ops::{Deref, DerefMut};

use super::process::{AddrSpec, BrkArg, ProcessCommand, parse_process};
use super::tags::Tags;
use super::{Command, MAX_LINE, RawGfp, Scope, is_blank, parse_system};
use crate::mm::cputime::ClockMode;
use crate::mm::error::{MmError, MmResult};
use crate::mm::page_alloc::{
    AllocRequest, MIGRATE_MOVABLE, MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE, PageKind,
};
use crate::mm::process::comm_cut;
use crate::mm::types::{MmSlot, Order, Pid, VirtAddr, ZoneIdx};
use crate::mm::{Kernel, MachineConfig};

/// Which `PID/` file a write goes to (the writable ones).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PidWrite {
    /// `PID/comm`.
    Comm,
    /// `PID/oom_score_adj`.
    OomScoreAdj,
}

/// The simulated kernel and what the control files remember beside it
/// (the tags). Dereferences to the [`Kernel`] for reads.
pub struct Machine {
    /// The simulated kernel.
    pub kernel: Kernel,
    /// What the tagged commands took.
    pub tags: Tags,
}

impl Deref for Machine {
    type Target = Kernel;
    fn deref(&self) -> &Kernel {
        &self.kernel
    }
}

impl DerefMut for Machine {
    fn deref_mut(&mut self) -> &mut Kernel {
        &mut self.kernel
    }
}

impl From<Kernel> for Machine {
    fn from(kernel: Kernel) -> Machine {
        Machine {
            kernel,
            tags: Tags::default(),
        }
    }
}

/// The name of a control file in log lines.
fn file_name(scope: Scope) -> String {
    match scope {
        Scope::System => "ctl".to_string(),
        Scope::Process(pid) => format!("{pid}/ctl"),
    }
}

impl Machine {
    /// Boot a machine with no tags.
    pub fn boot(config: MachineConfig) -> MmResult<Machine> {
        Kernel::boot(config).map(Machine::from)
    }

    /// Run one line written to a control file (without its newline): the
    /// one place a line is validated. Blank lines and comments do nothing;
    /// a line that is not UTF-8, longer than [`MAX_LINE`], does not parse,
    /// or fails, logs one dmesg line quoting it and saying why, and
    /// returns the error. kswapd, when woken, runs once the command is over.
    /// Returns the pid of what the line created (`spawn`), for the `ctl`
    /// descriptor to read back.
    pub fn execute_line(&mut self, scope: Scope, line: impl AsRef<[u8]>) -> MmResult<Option<Pid>> {
        let line = line.as_ref();
        let Ok(text) = std::str::from_utf8(line) else {
            if line.len() <= MAX_LINE {
                let quoted: String = String::from_utf8_lossy(line).chars().take(200).collect();
                self.kernel.printk(format!(
                    "mmfs: {}: \"{}\": not UTF-8 text; commands are plain ASCII words",
                    file_name(scope),
                    quoted.trim()
                ));
                return Err(MmError::Invalid("not UTF-8 text".into()));
            }
            return self.execute_text(scope, &String::from_utf8_lossy(line), line.len());
        };
        self.execute_text(scope, text, line.len())
    }

    /// [`Machine::execute_line`] for text; `len` is the line's length in
    /// bytes as written.
    fn execute_text(&mut self, scope: Scope, line: &str, len: usize) -> MmResult<Option<Pid>> {
        // The 4096-byte limit holds for comments and blank lines too (SPEC §3).
        if len <= MAX_LINE && is_blank(line) {
            return Ok(None);
        }
        // The command runs in its process's context (its CPU time), or in
        // the writer's, which is no simulated task.
        let task = match scope {
            Scope::System => None,
            Scope::Process(pid) => Some(pid),
        };
        self.kernel.switch_to(task);
        self.kernel.charge_command();
        let result = if len > MAX_LINE {
            Err(MmError::Invalid(format!(
                "line of {len} bytes exceeds the {MAX_LINE}-byte limit"
            )))
        } else {
            match scope {
                Scope::System => parse_system(line).and_then(|cmd| match cmd {
                    // The one command that creates something: its pid goes back.
                    Command::Spawn { name } => self.kernel.spawn(&name).map(Some),
                    Command::Fork { pid } => self.kernel.do_fork(pid).map(Some),
                    cmd => self.apply(cmd).map(|()| None),
                }),
                Scope::Process(pid) => {
                    self.kernel.current = Some(pid);
                    let result = parse_process(line)
                        .and_then(|cmd| self.apply_process(pid, cmd))
                        .map(|()| None);
                    self.kernel.current = None;
                    result
                }
            }
        };
        self.kernel.switch_to(None);
        // The disk completes the writes due by now — taken after a command
        // that did something: a refused one leaves every file as it was
        // (the next command or tick takes them, at the times they were
        // due).
        if result.is_ok() {
            self.kernel.end_writeback_io(self.kernel.clock_ns);
        }
        // Deferred kernel work: kswapd runs when the operation is over (on
        // the wall clock, the ticker runs it as real time passes).
        if self.kernel.clock_mode == ClockMode::Sim {
            self.kernel.run_kswapd();
            self.kernel.wb_background();
        }
        self.kernel.flush_cputime();
        if let Err(err) = &result {
            let quoted: String = line.trim().chars().take(200).collect();
            self.kernel
                .printk(format!("mmfs: {}: \"{quoted}\": {err}", file_name(scope)));
        }
        result
    }

    /// Run a host access to the simulated file system (`MOUNT/fs/`): the
    /// kernel's own work, done for no simulated task (SPEC §8), so its CPU
    /// and iowait time go to no process. As after a command, kswapd and the
    /// flusher run when the work is over (simulated clock) and the time is
    /// handed out; a disk error (EIO, ENOSPC) leaves a dmesg line, the
    /// ordinary refusals (ENOENT, EEXIST, …) do not: host tools probe for
    /// them.
    pub fn vfs_call<T>(&mut self, f: impl FnOnce(&mut Kernel) -> MmResult<T>) -> MmResult<T> {
        self.kernel.switch_to(None);
        let result = f(&mut self.kernel);
        if result.is_ok() {
            self.kernel.end_writeback_io(self.kernel.clock_ns);
        }
        // The deferred work of a command: kswapd, then the flusher.
        if self.kernel.clock_mode == ClockMode::Sim {
            self.kernel.run_kswapd();
            self.kernel.wb_background();
        }
        self.kernel.flush_cputime();
        if let Err(err @ (MmError::Io(_) | MmError::NoSpace(_))) = &result {
            self.kernel.printk(format!("mmfs: fs: {err}"));
        }
        result
    }

    /// The wall clock's tick: real time has reached `now_ns` (simulated
    /// ns since boot). If the work done so far has not already taken the
    /// clock past it, time passes: LRU ageing, and kswapd reclaiming as
    /// far as that time allows.
    pub fn wall_tick(&mut self, now_ns: u64) {
        if now_ns > self.kernel.clock_ns {
            self.kernel.advance_clock(now_ns, now_ns);
        }
    }

    /// Apply a parsed command of `MOUNT/ctl`.
    pub fn apply(&mut self, command: Command) -> MmResult<()> {
        let k = &mut self.kernel;
        match command {
            Command::AllocPages {
                order,
                count,
                zone,
                tag,
                gfp,
            } => {
                let highest = match zone {
                    Some(name) => k.zone_by_name(&name)?,
                    None => k.kernel_zone(),
                };
                let req = match gfp {
                    None => AllocRequest::new(PageKind::Kernel, MIGRATE_UNMOVABLE),
                    Some(RawGfp::Movable) => AllocRequest::new(PageKind::Kernel, MIGRATE_MOVABLE),
                    Some(RawGfp::Reclaimable) => {
                        AllocRequest::new(PageKind::Kernel, MIGRATE_RECLAIMABLE)
                    }
                    Some(RawGfp::Atomic) => AllocRequest {
                        atomic: true,
                        ..AllocRequest::new(PageKind::Kernel, MIGRATE_UNMOVABLE)
                    },
                };
                let blocks = alloc_pages_bulk(k, order, count, highest, req)?;
                self.tags.pages.add(&tag, blocks);
                Ok(())
            }
            Command::FreePages { tag, count } => self.tags.pages.free(
                &tag,
                count,
                || MmError::NotFound(format!("free_pages: no blocks tagged '{tag}'")),
                |(pfn, order)| k.free_pages(pfn, order),
            ),
            Command::Tick { ticks } => {
                k.tick(ticks);
                Ok(())
            }
            Command::Sync => k.ksys_sync(),
            Command::Mkswap {
                path,
                bytes,
                badpages,
                rotational,
            } => k.mkswap(&path, bytes, &badpages, rotational),
            Command::Swapon { path, prio } => k.swapon(&path, prio),
            Command::Swapoff { path } => k.swapoff(&path),
            Command::Reclaim { bytes, swappiness } => k.user_proactive_reclaim(bytes, swappiness),
            Command::Spawn { name } => k.spawn(&name).map(|_| ()),
            Command::Kill { pid } => k.kill(pid),
            Command::Fork { pid } => k.do_fork(pid).map(|_| ()),
            Command::KmemCacheCreate { name, size, align } => {
                if let Some(id) = find_cache(k, &name) {
                    let taken = k.slab.cache(id).map_or(name.as_str(), |c| c.name());
                    return Err(MmError::Exists(format!(
                        "kmem_cache_create: a cache named '{taken}' already exists (see slabinfo); pick another name"
                    )));
                }
                // Control-file names are cut to 15 bytes, like every name.
                k.kmem_cache_create(comm_cut(&name), size, align)
                    .map(|_| ())
            }
            Command::KmemCacheDestroy { name } => {
                let Some((id, cache)) =
                    find_cache(k, &name).and_then(|id| Some((id, k.slab.cache(id)?)))
                else {
                    return k.kmem_cache_destroy(&name);
                };
                if cache.is_boot() || cache.active_objs() == 0 {
                    let exact = cache.name().to_string();
                    return k.kmem_cache_destroy(&exact);
                }
                // In use: the kernel would refuse too; the tags say where
                // the objects are.
                let tags: Vec<&str> = self
                    .tags
                    .objects
                    .iter()
                    .filter(|(_, objs)| objs.iter().any(|o| o.cache() == id))
                    .map(|(tag, _)| tag)
                    .collect();
                Err(MmError::Busy(format!(
                    "kmem_cache_destroy: {}: Slab cache still has objects ({} in use{}); free them first with kmem_cache_free tag=T",
                    cache.name(),
                    cache.active_objs(),
                    if tags.is_empty() {
                        String::new()
                    } else {
                        format!(", tags: {}", tags.join(", "))
                    }
                )))
            }
            Command::KmemCacheAlloc { name, count, tag } => {
                let id = find_cache(k, &name).ok_or_else(|| {
                    MmError::NotFound(format!(
                        "kmem_cache_alloc: no cache named '{name}' (see slabinfo, or make one with kmem_cache_create)"
                    ))
                })?;
                let objects = k.kmem_cache_alloc_bulk(id, count)?;
                self.tags.objects.add(&tag, objects);
                Ok(())
            }
            Command::KmemCacheFree { tag, count } => {
                let hint = if self.tags.kmalloc.contains(&tag) {
                    " (it holds kmalloc objects: use kfree)"
                } else {
                    ""
                };
                self.tags.objects.free(
                    &tag,
                    count,
                    || {
                        MmError::NotFound(format!(
                            "kmem_cache_free: no objects tagged '{tag}'{hint}"
                        ))
                    },
                    |obj| k.kmem_cache_free(obj),
                )
            }
            Command::Kmalloc { size, count, tag } => {
                let objects = k.kmalloc_bulk(size, count)?;
                self.tags.kmalloc.add(&tag, objects);
                Ok(())
            }
            Command::Kfree { tag, count } => {
                let hint = if self.tags.objects.contains(&tag) {
                    " (it holds kmem_cache_alloc objects: use kmem_cache_free)"
                } else {
                    ""
                };
                self.tags.kmalloc.free(
                    &tag,
                    count,
                    || MmError::NotFound(format!("kfree: no objects tagged '{tag}'{hint}")),
                    |obj| k.kfree(obj),
                )
            }
        }
    }

    /// Apply a parsed command of `MOUNT/PID/ctl`.
    pub fn apply_process(&mut self, pid: Pid, command: ProcessCommand) -> MmResult<()> {
        let k = &mut self.kernel;
        if let Some(t) = k.kthreads.get(pid) {
            return Err(MmError::Permission(format!(
                "pid {pid} ({}) is a kernel thread: it has no address space",
                t.comm
            )));
        }
        let slot = k.procs.slot_of(pid)?;
        match command {
            ProcessCommand::Mmap {
                bytes,
                name,
                addr,
                prot,
                file,
                shared_anon,
            } => {
                let addr = addr.map(|a| resolve_addr(k, slot, &a)).transpose()?;
                if shared_anon {
                    return k
                        .do_mmap_shared(slot, addr, bytes, prot, name.as_deref())
                        .map(|_| ());
                }
                match file {
                    Some(f) => k.do_mmap_file(
                        slot,
                        addr,
                        bytes,
                        prot,
                        name.as_deref(),
                        &f.path,
                        f.offset,
                        f.shared,
                    ),
                    None => k.do_mmap(slot, addr, bytes, prot, name.as_deref()),
                }
                .map(|_| ())
            }
            ProcessCommand::Munmap { addr, bytes } => {
                let addr = resolve_addr(k, slot, &addr)?;
                k.do_munmap(slot, addr, bytes)
            }
            ProcessCommand::Mprotect { addr, bytes, prot } => {
                let addr = resolve_addr(k, slot, &addr)?;
                k.do_mprotect(slot, addr, bytes, prot)
            }
            ProcessCommand::Brk(arg) => {
                let brk = k.procs.mm(slot)?.brk;
                let new = match arg {
                    BrkArg::To(a) => resolve_addr(k, slot, &a)?,
                    BrkArg::Grow(n) => brk.checked_add(n).map(VirtAddr).ok_or_else(|| {
                        MmError::NoMemory(format!("brk +{n}: past the end of the address space"))
                    })?,
                    BrkArg::Shrink(n) => brk
                        .checked_sub(n)
                        .map(VirtAddr)
                        .ok_or_else(|| MmError::Invalid(format!("brk -{n}: below address 0")))?,
                };
                k.do_brk(slot, new)
            }
            ProcessCommand::Touch { addr, bytes, write } => {
                let addr = resolve_addr(k, slot, &addr)?;
                k.do_touch(slot, addr, bytes, write)
            }
            ProcessCommand::Madvise {
                addr,
                bytes,
                advice,
            } => {
                let addr = resolve_addr(k, slot, &addr)?;
                k.do_madvise(slot, addr, bytes, advice)
            }
            ProcessCommand::Read { path, off, bytes } => k.ksys_read(&path, off, bytes).map(drop),
            ProcessCommand::Write {
                path,
                off,
                bytes,
                byte,
            } => k.ksys_write(&path, off, bytes, byte).map(drop),
            ProcessCommand::Fsync { path } => k.ksys_fsync(&path),
        }
    }

    /// Write a sysctl file (`vm/swappiness`, …); a refused value logs a
    /// dmesg line and changes nothing.
    pub fn write_sysctl(&mut self, path: &str, text: &str) -> MmResult<()> {
        let result = self.kernel.sysctl_write(path, text);
        if let Err(err) = &result {
            self.kernel
                .printk(format!("mmfs: sys/{path}: \"{}\": {err}", text.trim()));
        }
        result
    }

    /// Write a writable file of a process directory.
    pub fn write_pid_file(&mut self, pid: Pid, file: PidWrite, text: &str) -> MmResult<()> {
        match file {
            PidWrite::Comm => self.kernel.write_comm(pid, text),
            PidWrite::OomScoreAdj => self.kernel.write_oom_score_adj(pid, text),
        }
    }

    /// The kernel's invariants and the tags'.
    pub fn check_invariants(&self) -> Result<(), String> {
        self.kernel.check_invariants()?;
        self.tags.check(&self.kernel)
    }
}

/// A slab cache by the name given in a command: the exact name, or the
/// cache made from a longer name (control-file names are cut to 15 bytes).
fn find_cache(k: &Kernel, name: &str) -> Option<crate::mm::slub::CacheId> {
    k.slab
        .cache_id(name)
        .or_else(|| k.slab.cache_id(comm_cut(name)))
}

/// `count` raw kernel blocks, all or nothing: on failure every block
/// taken goes back (newest first) and the error says how far it got.
fn alloc_pages_bulk(
    k: &mut Kernel,
    order: Order,
    count: u64,
    highest: ZoneIdx,
    req: AllocRequest,
) -> MmResult<Vec<(crate::mm::types::Pfn, Order)>> {
    let mut taken = Vec::new();
    for _ in 0..count {
        match k.alloc_pages_mt(order, highest, req) {
            Some(pfn) => taken.push((pfn, order)),
            None => {
                let got = taken.len();
                for (pfn, order) in taken.into_iter().rev() {
                    k.free_pages(pfn, order)?;
                }
                return Err(MmError::NoMemory(format!(
                    "alloc_pages: page allocation failure: order:{}, got {got} of {count} blocks below the min watermark; gave them back",
                    order.0
                )));
            }
        }
    }
    Ok(taken)
}

/// Resolve an ADDR of a command against the process's address space.
pub fn resolve_addr(k: &Kernel, slot: MmSlot, spec: &AddrSpec) -> MmResult<VirtAddr> {
    let mm = k.procs.mm(slot)?;
    let (base, offset, what) = match spec {
        AddrSpec::Absolute(a) => return Ok(VirtAddr(*a)),
        AddrSpec::Heap(off) => (mm.start_brk, *off, "heap".to_string()),
        AddrSpec::Stack(off) => {
            let start = mm.stack_vma().map(|v| v.start).ok_or_else(|| {
                MmError::Invalid("the process has no [stack] mapping any more".into())
            })?;
            (start, *off, "stack".to_string())
        }
        AddrSpec::Mapping { name, offset } => {
            let start = mm.named_start(name).ok_or_else(|| {
                MmError::Invalid(format!(
                    "no mapping named '{name}' in process {}",
                    k.procs.pid_of_slot(slot).unwrap_or_default()
                ))
            })?;
            (start, *offset, name.clone())
        }
    };
    base.checked_add_signed(offset)
        .map(VirtAddr)
        .ok_or_else(|| MmError::Invalid(format!("{what}{offset:+} is outside the address space")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kernel() -> Machine {
        let k = Machine::boot(MachineConfig::default()).unwrap();
        k.check_invariants().unwrap();
        k
    }

    fn run(k: &mut Machine, line: &str) -> MmResult<()> {
        let r = k.execute_line(Scope::System, line).map(|_| ());
        k.check_invariants().unwrap();
        r
    }

    #[test]
    fn alloc_then_free_restores_buddyinfo() {
        let mut k = kernel();
        let before = crate::procfs::buddyinfo(&k);
        run(&mut k, "alloc_pages 3 count=10 tag=x").unwrap();
        assert_ne!(crate::procfs::buddyinfo(&k), before);
        run(&mut k, "free_pages tag=x").unwrap();
        assert_eq!(crate::procfs::buddyinfo(&k), before);
    }

    #[test]
    fn failed_alloc_gives_back_what_it_took() {
        let mut k = kernel();
        let free = k.page_alloc.total_free();
        let err = run(&mut k, "alloc_pages 10 count=100000 tag=big").unwrap_err();
        assert_eq!(err.errno(), libc::ENOMEM);
        // Every block taken came back; reclaim (the slab shrinker) may have
        // freed more on the way, as on Linux.
        assert!(k.tags.pages.is_empty());
        assert!(k.page_alloc.total_free() >= free);
        assert!(
            k.dmesg
                .last()
                .unwrap()
                .contains("alloc_pages 10 count=100000")
        );
    }

    #[test]
    fn bad_line_logs_and_changes_nothing() {
        let mut k = kernel();
        let before = crate::procfs::buddyinfo(&k);
        assert_eq!(run(&mut k, "bogus").unwrap_err().errno(), libc::EINVAL);
        assert!(k.dmesg.last().unwrap().contains("\"bogus\""));
        assert_eq!(
            run(&mut k, "free_pages tag=nope").unwrap_err().errno(),
            libc::ENOENT
        );
        assert_eq!(crate::procfs::buddyinfo(&k), before);
    }

    #[test]
    fn free_pages_newest_first() {
        let mut k = kernel();
        run(&mut k, "alloc_pages 0 count=3 tag=t").unwrap();
        let blocks = k.tags.pages.get("t").to_vec();
        run(&mut k, "free_pages tag=t count=1").unwrap();
        assert_eq!(k.tags.pages.get("t"), &blocks[..2]);
    }

    #[test]
    fn zone_option_limits_the_zonelist() {
        let mut k = kernel();
        run(&mut k, "alloc_pages 0 zone=DMA tag=d").unwrap();
        let (pfn, _) = k.tags.pages.get("d")[0];
        assert_eq!(k.page_alloc.zone_of(pfn), Some(0));
        assert_eq!(
            run(&mut k, "alloc_pages 0 zone=HighMem")
                .unwrap_err()
                .errno(),
            libc::EINVAL
        );
    }

    #[test]
    fn same_commands_same_state() {
        let script = [
            "alloc_pages 2 count=7 tag=a",
            "alloc_pages 0 count=5 tag=b",
            "free_pages tag=a count=3",
            "tick 5",
        ];
        let mut a = kernel();
        let mut b = kernel();
        for line in script {
            run(&mut a, line).unwrap();
            run(&mut b, line).unwrap();
        }
        assert_eq!(crate::procfs::buddyinfo(&a), crate::procfs::buddyinfo(&b));
    }
}
