//! Per-process files: `MOUNT/PID/...` (Linux: fs/proc/base.c, array.c,
//! task_mmu.c). Pure renderers; writes to the writable files go through
//! `ctl::Machine::write_pid_file`.
//!
//! maps and smaps are written byte by byte into one buffer with
//! hand-rolled number formatting: a process may have tens of thousands of
//! VMAs and `pmap -X` reads smaps twice.

use crate::mm::Kernel;
use crate::mm::cputime::task_cpu;
use crate::mm::error::{MmError, MmResult};
use crate::mm::kthread::KThread;
use crate::mm::memory::{PSS_SHIFT, RangeStats};
use crate::mm::mmap::{MmStruct, VM_EXEC, VM_MAYSHARE, VmFlags, Vma};
use crate::mm::oom_kill;
use crate::mm::process::Process;
use crate::mm::types::{Arch, MmSlot, PAGE_SHIFT, Pid};

/// The generated (read-only or read-write text) files of a process directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum PidFile {
    /// /proc/PID/comm (writable: renames the task)
    Comm,
    /// /proc/PID/cmdline
    Cmdline,
    /// /proc/PID/stat
    Stat,
    /// /proc/PID/statm
    Statm,
    /// /proc/PID/status
    Status,
    /// /proc/PID/maps
    Maps,
    /// /proc/PID/smaps
    Smaps,
    /// /proc/PID/smaps_rollup
    SmapsRollup,
    /// /proc/PID/oom_score
    OomScore,
    /// /proc/PID/oom_score_adj (writable)
    OomScoreAdj,
    /// /proc/PID/io: I/O accounting
    Io,
    /// /proc/PID/environ: empty (the simulated processes have none)
    Environ,
    /// /proc/PID/cgroup: the root of the unified hierarchy
    Cgroup,
    /// /proc/PID/limits: the resource limits table
    Limits,
    /// /proc/PID/wchan: where the task sleeps ("0": not told)
    Wchan,
}

/// Name, mode and identity of every generated file in `PID/`, with Linux's
/// modes. The special files `ctl` (write-only commands) and `mem` (byte
/// access at offset = virtual address) are served by the FUSE adapter
/// through `Machine::execute_line`, `Kernel::read_mem` and `Kernel::write_mem`;
/// writes to the 0644 files go through `Machine::write_pid_file`.
pub const PID_FILES: &[(&str, u16, PidFile)] = &[
    ("cgroup", 0o444, PidFile::Cgroup),
    ("cmdline", 0o444, PidFile::Cmdline),
    ("comm", 0o644, PidFile::Comm),
    ("environ", 0o400, PidFile::Environ),
    ("io", 0o400, PidFile::Io),
    ("limits", 0o444, PidFile::Limits),
    ("maps", 0o444, PidFile::Maps),
    ("oom_score", 0o444, PidFile::OomScore),
    ("oom_score_adj", 0o644, PidFile::OomScoreAdj),
    ("smaps", 0o444, PidFile::Smaps),
    ("smaps_rollup", 0o444, PidFile::SmapsRollup),
    ("stat", 0o444, PidFile::Stat),
    ("statm", 0o444, PidFile::Statm),
    ("status", 0o444, PidFile::Status),
    ("wchan", 0o444, PidFile::Wchan),
];

/// Render one file of a process; ESRCH when the process does not exist.
pub fn render_pid(kernel: &Kernel, pid: Pid, file: PidFile) -> MmResult<String> {
    if let Some(t) = kernel.kthreads.get(pid) {
        return render_kthread(kernel, t, file);
    }
    let slot = kernel.procs.slot_of(pid)?;
    let p = kernel
        .procs
        .get(slot)
        .ok_or_else(|| MmError::NoProcess(format!("no process with pid {pid}")))?;
    Ok(match file {
        PidFile::Comm => format!("{}\n", p.comm),
        PidFile::Cmdline => format!("{}\0", p.comm),
        PidFile::Stat => stat(kernel, p),
        PidFile::Statm => statm(p),
        PidFile::Status => status(kernel, p),
        PidFile::Maps => maps(kernel, slot, p, false),
        PidFile::Smaps => maps(kernel, slot, p, true),
        PidFile::SmapsRollup => smaps_rollup(kernel, slot, p),
        PidFile::OomScore => format!("{}\n", oom_score(kernel, p)),
        PidFile::OomScoreAdj => format!("{}\n", p.oom_score_adj),
        PidFile::Io => io(p),
        PidFile::Environ => String::new(),
        // cgroup v2 only, every task in the root cgroup.
        PidFile::Cgroup => "0::/\n".into(),
        PidFile::Limits => limits(kernel),
        // proc_pid_wchan prints "0" when it does not tell the symbol.
        PidFile::Wchan => "0".into(),
    })
}

/// `/proc/PID/io` (fs/proc/base.c `do_io_accounting`). The simulated
/// processes make no read/write system calls, so the character and
/// syscall counts are 0. `read_bytes` is what the task made the block
/// layer fetch: Linux charges a read bio to the task that submits it
/// (`submit_bio` → `task_io_account_read`), which for swap is the task
/// whose own fault swaps the page in — its major faults, a page each
/// (swap-ins by swapoff or by other tasks through `PID/mem` are charged to
/// them). `write_bytes` counts page-cache pages the task dirtied; swap-out
/// is written by reclaim and charged to nobody, so it is 0.
fn io(p: &Process) -> String {
    // Swap-ins count as reads of the task that faulted (swap_read_folio).
    let mut io = p.ioac;
    io.read_bytes += p.maj_flt << PAGE_SHIFT;
    io_text(&io)
}

/// The text of `io` (fs/proc/base.c `do_io_accounting`).
fn io_text(io: &crate::mm::process::IoAccounting) -> String {
    format!(
        "rchar: {}\nwchar: {}\nsyscr: {}\nsyscw: {}\nread_bytes: {}\n\
         write_bytes: {}\ncancelled_write_bytes: 0\n",
        io.rchar, io.wchar, io.syscr, io.syscw, io.read_bytes, io.write_bytes
    )
}

/// One resource limit: name, soft and hard value (`None`: unlimited), unit.
type Rlimit = (&'static str, Option<u64>, Option<u64>, &'static str);

/// The resource limits every simulated task has: init's (`INIT_RLIMITS`,
/// include/asm-generic/resource.h) with RLIMIT_NPROC and
/// RLIMIT_SIGPENDING set at boot to max_threads / 2 (`fork_init`), and
/// the stack limit the simulated stack grows against.
fn rlimits(kernel: &Kernel) -> [Rlimit; 16] {
    let threads = sigpending_limit(kernel);
    let stack = crate::mm::mmap::STACK_RLIMIT;
    // MLOCK_LIMIT: 8 MiB since Linux 5.16.
    let mlock = 8 << 20;
    // MQ_BYTES_MAX.
    let mq = 819_200;
    [
        ("Max cpu time", None, None, "seconds"),
        ("Max file size", None, None, "bytes"),
        ("Max data size", None, None, "bytes"),
        ("Max stack size", Some(stack), None, "bytes"),
        ("Max core file size", Some(0), None, "bytes"),
        ("Max resident set", None, None, "bytes"),
        ("Max processes", Some(threads), Some(threads), "processes"),
        // INR_OPEN_CUR, INR_OPEN_MAX.
        ("Max open files", Some(1024), Some(4096), "files"),
        ("Max locked memory", Some(mlock), Some(mlock), "bytes"),
        ("Max address space", None, None, "bytes"),
        ("Max file locks", None, None, "locks"),
        (
            "Max pending signals",
            Some(threads),
            Some(threads),
            "signals",
        ),
        ("Max msgqueue size", Some(mq), Some(mq), "bytes"),
        ("Max nice priority", Some(0), Some(0), ""),
        ("Max realtime priority", Some(0), Some(0), ""),
        ("Max realtime timeout", None, None, "us"),
    ]
}

/// `/proc/PID/limits` (fs/proc/base.c `proc_pid_limits`): `%-25s %-20s
/// %-20s %-10s` columns, "unlimited" for RLIM_INFINITY, no unit column
/// for the unitless limits.
fn limits(kernel: &Kernel) -> String {
    let mut out = format!(
        "{:<25} {:<20} {:<20} {:<10}\n",
        "Limit", "Soft Limit", "Hard Limit", "Units"
    );
    let value = |v: Option<u64>| v.map_or_else(|| "unlimited".to_string(), |v| v.to_string());
    for (name, soft, hard, unit) in rlimits(kernel) {
        out.push_str(&format!(
            "{name:<25} {:<20} {:<20} ",
            value(soft),
            value(hard)
        ));
        if unit.is_empty() {
            out.push('\n');
        } else {
            out.push_str(&format!("{unit:<10}\n"));
        }
    }
    out
}

/// `/proc/PID/oom_score`: `(1000 + badness × 1000 / totalpages) × 2 / 3`,
/// totalpages = RAM + swap.
fn oom_score(kernel: &Kernel, p: &Process) -> u64 {
    let totalpages = kernel.totalram_pages() + kernel.swap.total_pages();
    let candidate = kernel.oom_candidates().into_iter().find(|c| c.pid == p.pid);
    candidate.map_or(0, |c| oom_kill::oom_score(&c, totalpages))
}

/// Is the address width of maps lines 64-bit?
fn wide(kernel: &Kernel) -> bool {
    kernel.config.arch == Arch::X86_64
}

/// `/proc/PID/statm`: size resident shared text lib data dt, in pages.
fn statm(p: &Process) -> String {
    let mm = &p.mm;
    format!(
        "{} {} {} 0 0 {} 0\n",
        mm.total_vm,
        mm.rss(),
        // shared: file and shmem pages (MM_FILEPAGES + MM_SHMEMPAGES).
        mm.rss_file + mm.rss_shmem,
        mm.data_vm + mm.stack_vm
    )
}

/// `/proc/PID/stat` (fs/proc/array.c `do_task_stat`): 52 fields.
fn stat(kernel: &Kernel, p: &Process) -> String {
    let mm = &p.mm;
    let pid = p.pid.0;
    // USER_HZ = 100: start time in clock ticks since boot.
    let start = p.start_time_ns / 10_000_000;
    let rsslim = if wide(kernel) {
        u64::MAX
    } else {
        u32::MAX as u64
    };
    format!(
        "{pid} ({}) S {} {pid} {pid} 0 -1 {} {} 0 {} 0 {} {} 0 0 20 0 1 0 {start} {} {} {rsslim} 0 0 {} 0 0 0 0 0 0 1 0 0 17 {} 0 0 0 0 0 0 0 {} 0 0 0 0 0\n",
        p.comm,
        p.ppid,
        // PF_RANDOMIZE: an exec'ed program with ASLR, as /proc/self/stat shows.
        4_194_304,
        p.min_flt,
        p.maj_flt,
        ticks(p.cputime.utime_ns),
        ticks(p.cputime.stime_ns),
        mm.total_vm << PAGE_SHIFT,
        mm.rss(),
        mm.start_stack,
        task_cpu(Some(p.pid)),
        mm.start_brk,
    )
}

/// ns → USER_HZ clock ticks (`nsec_to_clock_t`).
fn ticks(ns: u64) -> u64 {
    ns / crate::mm::TICK_NS
}

/// The files of a kernel thread (no mm: empty maps, zero statm, no Vm*
/// lines in status; smaps_rollup is ESRCH as on Linux).
fn render_kthread(kernel: &Kernel, t: &KThread, file: PidFile) -> MmResult<String> {
    let pid = t.pid.0;
    Ok(match file {
        PidFile::Comm => format!("{}\n", t.comm),
        PidFile::Cmdline | PidFile::Maps | PidFile::Smaps => String::new(),
        PidFile::Statm => "0 0 0 0 0 0 0\n".to_string(),
        PidFile::Stat => format!(
            "{pid} ({}) S {} 0 0 0 -1 {} 0 0 0 0 {} {} 0 0 20 0 1 0 {} 0 0 {} 0 0 0 0 0 0 0 2147483647 0 1 0 0 {} {} 0 0 0 0 0 0 0 0 0 0 0 0 0\n",
            t.comm,
            t.ppid,
            t.flags,
            ticks(t.cputime.utime_ns),
            ticks(t.cputime.stime_ns),
            t.start_time_ns / crate::mm::TICK_NS,
            u64::MAX,
            // kthreadd is nobody's child: no exit signal.
            if t.ppid.0 == 0 { 0 } else { 17 },
            task_cpu(Some(t.pid)),
        ),
        PidFile::Status => {
            let mut out = format!(
                "Name:\t{}\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t{pid}\nNgid:\t0\nPid:\t{pid}\nPPid:\t{}\nTracerPid:\t0\n\
                 Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nFDSize:\t{}\nGroups:\t \nNStgid:\t{pid}\nNSpid:\t{pid}\n\
                 NSpgid:\t0\nNSsid:\t0\nKthread:\t1\n",
                t.comm,
                t.ppid,
                if wide(kernel) { 64 } else { 32 },
            );
            status_tail(kernel, &mut out, "ffffffffffffffff", t.cputime.nvcsw);
            out
        }
        PidFile::SmapsRollup => {
            return Err(MmError::NoProcess(format!(
                "pid {pid} is a kernel thread: no address space"
            )));
        }
        PidFile::OomScore | PidFile::OomScoreAdj => "0\n".to_string(),
        // Kernel threads read and write nothing of their own.
        PidFile::Io => io_text(&crate::mm::process::IoAccounting::default()),
        PidFile::Environ => String::new(),
        PidFile::Cgroup => "0::/\n".into(),
        PidFile::Limits => limits(kernel),
        PidFile::Wchan => "0".into(),
    })
}

/// `/proc/PID/status` in 6.18's line order (fs/proc/array.c
/// `proc_pid_status`, task_mmu.c `task_mem`).
fn status(kernel: &Kernel, p: &Process) -> String {
    let mm = &p.mm;
    let pid = p.pid.0;
    let kb = |pages: u64| pages << (PAGE_SHIFT - 10);
    let mut out = String::with_capacity(1600);
    out.push_str(&format!(
        "Name:\t{}\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t{pid}\nNgid:\t0\nPid:\t{pid}\nPPid:\t{}\nTracerPid:\t0\n\
         Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nFDSize:\t{}\nGroups:\t \nNStgid:\t{pid}\nNSpid:\t{pid}\n\
         NSpgid:\t{pid}\nNSsid:\t{pid}\nKthread:\t0\n",
        p.comm,
        p.ppid,
        if wide(kernel) { 64 } else { 32 },
    ));
    // The executable's text is not simulated (VmExe 0): all executable
    // mappings count as VmLib.
    let text = 0u64;
    let lib = kb(mm.exec_vm) - text;
    for (key, value) in [
        ("VmPeak", kb(mm.peak_vm())),
        ("VmSize", kb(mm.total_vm)),
        ("VmLck", 0),
        ("VmPin", 0),
        ("VmHWM", kb(mm.peak_rss())),
        ("VmRSS", kb(mm.rss())),
        ("RssAnon", kb(mm.rss_anon)),
        ("RssFile", kb(mm.rss_file)),
        ("RssShmem", kb(mm.rss_shmem)),
        ("VmData", kb(mm.data_vm)),
        ("VmStk", kb(mm.stack_vm)),
        ("VmExe", text),
        ("VmLib", lib),
        ("VmPTE", kb(mm.pgtables.nr_tables())),
        ("VmSwap", kb(mm.swap_ents)),
        ("HugetlbPages", 0),
    ] {
        out.push_str(&format!("{key}:\t{value:8} kB\n"));
    }
    out.push_str(&format!(
        "CoreDumping:\t0\nTHP_enabled:\t{}\nuntag_mask:\t{}\n",
        // Transparent huge pages need PAE on 32-bit x86 (HAVE_ARCH_TRANSPARENT_HUGEPAGE).
        u8::from(wide(kernel)),
        if wide(kernel) {
            "0xffffffffffffffff"
        } else {
            "0xffffffff"
        },
    ));
    status_tail(kernel, &mut out, "0000000000000000", p.cputime.nvcsw);
    out
}

/// The lines of `status` from `Threads:` on, common to processes and
/// kernel threads (which ignore every signal: SigIgn all ones).
fn status_tail(kernel: &Kernel, out: &mut String, sig_ign: &str, nvcsw: u64) {
    let mems = if wide(kernel) {
        format!("{}00000001", "00000000,".repeat(31))
    } else {
        "1".to_string()
    };
    let cpus = crate::mm::NR_CPUS;
    let cpu_mask = (1u64 << cpus) - 1;
    let cpu_list = if cpus == 1 {
        "0".to_string()
    } else {
        format!("0-{}", cpus - 1)
    };
    out.push_str(&format!(
        "Threads:\t1\nSigQ:\t0/{}\n\
         SigPnd:\t0000000000000000\nShdPnd:\t0000000000000000\nSigBlk:\t0000000000000000\n\
         SigIgn:\t{sig_ign}\nSigCgt:\t0000000000000000\nCapInh:\t0000000000000000\n\
         CapPrm:\t000001ffffffffff\nCapEff:\t000001ffffffffff\nCapBnd:\t000001ffffffffff\n\
         CapAmb:\t0000000000000000\nNoNewPrivs:\t0\nSeccomp:\t0\nSeccomp_filters:\t0\n\
         Speculation_Store_Bypass:\tthread vulnerable\nSpeculationIndirectBranch:\tconditional enabled\n\
         Cpus_allowed:\t{cpu_mask:x}\nCpus_allowed_list:\t{cpu_list}\nMems_allowed:\t{mems}\n\
         Mems_allowed_list:\t0\nvoluntary_ctxt_switches:\t{nvcsw}\nnonvoluntary_ctxt_switches:\t0\n",
        sigpending_limit(kernel),
    ));
}

/// RLIMIT_SIGPENDING of init: max_threads / 2 (`set_max_threads`:
/// totalram × PAGE_SIZE / (THREAD_SIZE × 8), at least 20).
fn sigpending_limit(kernel: &Kernel) -> u64 {
    let thread_size = crate::mm::process::thread_order(kernel.config.arch).pages() << PAGE_SHIFT;
    let threads = (kernel.totalram_pages() << PAGE_SHIFT) / (thread_size * 8);
    threads.clamp(20, 0x3fff_ffff) / 2
}

/// Appends `value` as lowercase hex, at least `width` digits.
fn push_hex(out: &mut Vec<u8>, value: u64, width: usize) {
    let mut digits = [0u8; 16];
    let mut n = 0;
    let mut v = value;
    loop {
        digits[n] = b"0123456789abcdef"[(v & 0xf) as usize];
        n += 1;
        v >>= 4;
        if v == 0 {
            break;
        }
    }
    for _ in n..width {
        out.push(b'0');
    }
    out.extend(digits[..n].iter().rev());
}

/// Appends `value` in decimal, right-aligned in `width` (never cut).
fn push_dec(out: &mut Vec<u8>, value: u64, width: usize) {
    let mut digits = [0u8; 20];
    let mut n = 0;
    let mut v = value;
    loop {
        digits[n] = b'0' + (v % 10) as u8;
        n += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    for _ in n..width {
        out.push(b' ');
    }
    out.extend(digits[..n].iter().rev());
}

/// The name column of a VMA (`get_vma_name`): a file mapping shows its
/// path (`d_path`, with ` (deleted)` once the last name is gone).
fn vma_name(kernel: &Kernel, mm: &MmStruct, vma: &Vma) -> Option<String> {
    if vma.is_anon_shmem() {
        // Shared anonymous memory: its file is the unlinked shmem inode
        // of `shmem_zero_setup`, named `/dev/zero`; a name given with
        // PR_SET_VMA_ANON_NAME replaces the path.
        return Some(match &vma.name {
            Some(n) => format!("[anon_shmem:{n}]"),
            None => "/dev/zero (deleted)".into(),
        });
    }
    if let Some(f) = &vma.file {
        let deleted = kernel.vfs.inode(f.ino).is_ok_and(|i| i.nlink == 0);
        return Some(if deleted {
            format!("{} (deleted)", f.path)
        } else {
            f.path.to_string()
        });
    }
    if mm.is_heap(vma) {
        Some("[heap]".into())
    } else if mm.is_stack(vma) {
        Some("[stack]".into())
    } else {
        vma.name.as_ref().map(|n| format!("[anon:{n}]"))
    }
}

/// The file columns of a maps line: offset, device, inode.
#[derive(Clone, Copy, Default)]
struct MapsFile {
    /// Byte offset into the file (`vm_pgoff << PAGE_SHIFT`).
    offset: u64,
    /// Device major and minor (`08:01` for `/dev/sda1`).
    dev: (u64, u64),
    /// Inode number.
    ino: u64,
}

impl MapsFile {
    /// The columns of `vma` (zeros for anonymous memory).
    fn of(kernel: &Kernel, vma: &Vma) -> MapsFile {
        if let Some(s) = vma.shm {
            // The internal shm mount's device (00:01) and the object's inode.
            return MapsFile {
                offset: s.pgoff << PAGE_SHIFT,
                dev: SHM_DEV,
                ino: kernel.shmem.object(s.id).map_or(0, |o| o.ino),
            };
        }
        vma.file.as_ref().map_or(MapsFile::default(), |f| MapsFile {
            offset: f.pgoff << PAGE_SHIFT,
            dev: ROOT_DEV,
            ino: u64::from(f.ino),
        })
    }
}

/// `/dev/sda1`, the root file system's device.
const ROOT_DEV: (u64, u64) = (8, 1);

/// The kernel's internal shm mount (the first anonymous device, 0:1).
const SHM_DEV: (u64, u64) = (0, 1);

/// `show_vma_header_prefix` + the padded name (`show_map_vma`).
fn push_header(
    out: &mut Vec<u8>,
    wide: bool,
    (start, end): (u64, u64),
    flags: VmFlags,
    file: MapsFile,
    name: Option<&str>,
) {
    let line_start = out.len();
    push_hex(out, start, 8);
    out.push(b'-');
    push_hex(out, end, 8);
    out.push(b' ');
    out.push(if flags.is_read() { b'r' } else { b'-' });
    out.push(if flags.is_write() { b'w' } else { b'-' });
    out.push(if flags.is_exec() { b'x' } else { b'-' });
    out.push(if flags.0 & VM_MAYSHARE != 0 {
        b's'
    } else {
        b'p'
    });
    out.push(b' ');
    push_hex(out, file.offset, 8);
    out.push(b' ');
    push_hex(out, file.dev.0, 2);
    out.push(b':');
    push_hex(out, file.dev.1, 2);
    out.push(b' ');
    push_dec(out, file.ino, 0);
    out.push(b' ');
    if let Some(name) = name {
        // seq_setwidth(25 + 6 * sizeof(void *) - 1), seq_pad(' ').
        let width = if wide { 72 } else { 48 };
        let used = out.len() - line_start;
        for _ in used..width {
            out.push(b' ');
        }
        out.push(b' ');
        out.extend_from_slice(name.as_bytes());
    }
    out.push(b'\n');
}

/// `Key:` padded to 16, `%8lu kB`.
fn push_kb(out: &mut Vec<u8>, key: &[u8], kb: u64) {
    out.extend_from_slice(key);
    for _ in key.len()..16 {
        out.push(b' ');
    }
    push_dec(out, kb, 8);
    out.extend_from_slice(b" kB\n");
}

/// Page counts of one VMA (or a whole mm) as smaps shows them.
#[derive(Default, Clone, Copy)]
struct Smap {
    size_kb: u64,
    r: RangeStats,
}

/// The smaps fields from Rss to Locked. `rollup` adds Pss_Anon/File/Shmem.
fn push_smap_fields(out: &mut Vec<u8>, s: Smap, rollup: bool) {
    let kb = |pages: u64| pages << (PAGE_SHIFT - 10);
    // Pss is kept in bytes << PSS_SHIFT; smaps prints it in kB.
    let pss_kb = |pss: u64| pss >> (PSS_SHIFT + 10);
    let r = s.r;
    push_kb(out, b"Rss:", kb(r.resident));
    push_kb(out, b"Pss:", pss_kb(r.pss));
    push_kb(out, b"Pss_Dirty:", pss_kb(r.pss_dirty));
    if rollup {
        push_kb(out, b"Pss_Anon:", pss_kb(r.pss_anon));
        push_kb(out, b"Pss_File:", pss_kb(r.pss_file));
        push_kb(out, b"Pss_Shmem:", pss_kb(r.pss_shmem));
    }
    push_kb(out, b"Shared_Clean:", kb(r.shared_clean));
    push_kb(out, b"Shared_Dirty:", kb(r.shared_dirty));
    push_kb(out, b"Private_Clean:", kb(r.private_clean));
    push_kb(out, b"Private_Dirty:", kb(r.private_dirty));
    push_kb(out, b"Referenced:", kb(r.referenced));
    push_kb(out, b"Anonymous:", kb(r.anon));
    out.extend_from_slice(
        b"KSM:                   0 kB\n\
LazyFree:              0 kB\n\
AnonHugePages:         0 kB\n\
ShmemPmdMapped:        0 kB\n\
FilePmdMapped:         0 kB\n\
Shared_Hugetlb:        0 kB\n\
Private_Hugetlb:       0 kB\n",
    );
    push_kb(out, b"Swap:", kb(r.swap));
    push_kb(out, b"SwapPss:", pss_kb(r.swap_pss));
    out.extend_from_slice(b"Locked:                0 kB\n");
}

/// One smaps block after its header.
fn push_smap_block(out: &mut Vec<u8>, s: Smap, flags: VmFlags) {
    push_kb(out, b"Size:", s.size_kb);
    out.extend_from_slice(b"KernelPageSize:        4 kB\nMMUPageSize:           4 kB\n");
    push_smap_fields(out, s, false);
    out.extend_from_slice(b"THPeligible:           0\nVmFlags: ");
    out.extend_from_slice(flags.mnemonics().as_bytes());
    out.push(b'\n');
}

fn smap_of(kernel: &Kernel, slot: MmSlot, vma: &Vma) -> Smap {
    let mut r = kernel.range_stats(slot, vma.start_vpn(), vma.end_vpn());
    // A shmem mapping's Swap is its object's pages on swap in its range
    // (`shmem_swap_usage`), not swap PTEs.
    r.swap += kernel.shmem_swap_usage(vma);
    Smap {
        size_kb: (vma.end - vma.start) >> 10,
        r,
    }
}

/// x86_64's `[vsyscall]` gate page: not a VMA of the mm, always listed last.
const VSYSCALL: u64 = 0xffff_ffff_ff60_0000;

/// `/proc/PID/maps` (or smaps with `detail`).
fn maps(kernel: &Kernel, slot: MmSlot, p: &Process, detail: bool) -> String {
    let per_vma = if detail { 1100 } else { 100 };
    let mut out = Vec::with_capacity((p.mm.map_count() + 1) * per_vma);
    maps_records(kernel, slot, p, detail, 0, usize::MAX, &mut out);
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Records of `/proc/PID/maps` (or smaps with `detail`) by position, as
/// seq_file's start/next/show walk them (`m_start`, `m_next`,
/// `show_map`): from the first VMA that ends above `from`, appended to
/// `out` until it holds at least `min_len` bytes or the last record
/// (`[vsyscall]` on x86_64) is out. Returns the address to continue from
/// (the start of the first record not appended, as `m_next` leaves it in
/// `*ppos`; pass it as `from`), or `None` when no record is left. ESRCH when the process does not exist.
pub fn render_maps_records(
    kernel: &Kernel,
    pid: Pid,
    detail: bool,
    from: u64,
    min_len: usize,
    out: &mut Vec<u8>,
) -> MmResult<Option<u64>> {
    if kernel.kthreads.get(pid).is_some() {
        // No mm: no records.
        return Ok(None);
    }
    let slot = kernel.procs.slot_of(pid)?;
    let p = kernel
        .procs
        .get(slot)
        .ok_or_else(|| MmError::NoProcess(format!("no process with pid {pid}")))?;
    Ok(maps_records(kernel, slot, p, detail, from, min_len, out))
}

fn maps_records(
    kernel: &Kernel,
    slot: MmSlot,
    p: &Process,
    detail: bool,
    from: u64,
    min_len: usize,
    out: &mut Vec<u8>,
) -> Option<u64> {
    let wide = wide(kernel);
    let mm = &p.mm;
    // The VMA containing `from` (if it ends above it), then the ones after.
    let first = mm
        .vmas
        .range(..=from)
        .next_back()
        .map(|(_, v)| v)
        .filter(|v| v.end > from)
        .map_or(from, |v| v.start);
    for (_, vma) in mm.vmas.range(first..) {
        if out.len() >= min_len {
            return Some(from.max(vma.start));
        }
        let name = vma_name(kernel, mm, vma);
        push_header(
            out,
            wide,
            (vma.start, vma.end),
            vma.flags,
            MapsFile::of(kernel, vma),
            name.as_deref(),
        );
        if detail {
            push_smap_block(out, smap_of(kernel, slot, vma), vma.flags);
        }
    }
    if wide && from < VSYSCALL + 4096 {
        if out.len() >= min_len {
            return Some(from.max(VSYSCALL));
        }
        let flags = VmFlags(VM_EXEC);
        push_header(
            out,
            wide,
            (VSYSCALL, VSYSCALL + 4096),
            flags,
            MapsFile::default(),
            Some("[vsyscall]"),
        );
        if detail {
            let s = Smap {
                size_kb: 4,
                ..Smap::default()
            };
            push_smap_block(out, s, flags);
        }
    }
    None
}

/// `/proc/PID/smaps_rollup`: one header spanning the mm, the sums.
fn smaps_rollup(kernel: &Kernel, slot: MmSlot, p: &Process) -> String {
    let mm = &p.mm;
    let mut total = Smap::default();
    for vma in mm.vmas() {
        total.r.add(&smap_of(kernel, slot, vma).r);
    }
    let first = mm.vmas().next().map_or(0, |v| v.start);
    let last = mm.vmas().next_back().map_or(0, |v| v.end);
    let mut out = Vec::with_capacity(1200);
    push_header(
        &mut out,
        wide(kernel),
        (first, last),
        VmFlags(0),
        MapsFile::default(),
        Some("[rollup]"),
    );
    push_smap_fields(&mut out, total, true);
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mm::process::testing::*;

    const SELF_STATUS: &str = include_str!("../../tests/reference/linux-samples/self-status");
    const SELF_SMAPS: &str = include_str!("../../tests/reference/linux-samples/self-smaps");
    const SELF_ROLLUP: &str = include_str!("../../tests/reference/linux-samples/self-smaps_rollup");
    const SELF_STAT: &str = include_str!("../../tests/reference/linux-samples/self-stat");
    const SELF_IO: &str = include_str!("../../tests/reference/linux-samples/self-io");
    const SELF_LIMITS: &str = include_str!("../../tests/reference/linux-samples/self-limits");

    const CAP_SMAPS: &str =
        include_str!("../../tests/reference/linux-samples/fork-and-files/parent-before-fork-smaps");

    /// The lines of the smaps block whose header contains `key`, from
    /// Size to Locked.
    fn block<'a>(smaps: &'a str, key: &str) -> Vec<&'a str> {
        smaps
            .split_inclusive('\n')
            .skip_while(|l| !l.contains(key))
            .skip(1)
            .take_while(|l| !l.starts_with("THPeligible"))
            .collect()
    }

    /// The capture's three data.db mappings (real 6.18, cap.c beside it)
    /// rebuilt with the same accesses: every smaps line from Size to
    /// Locked is the kernel's, and the maps columns are offset, 08:01,
    /// the inode, the path.
    #[test]
    fn file_mapping_smaps_blocks_are_the_captures() {
        use crate::mm::namei::{FileKind, ROOT_INO};
        let (mut k, pid) = setup();
        k.swap.swapdir = std::env::temp_dir();
        let ino = k
            .vfs_create(ROOT_INO, "data.db", FileKind::Regular)
            .unwrap();
        k.filemap_write(ino, 0, &vec![b'x'; 4 << 20]).unwrap();
        sys(&mut k, "sync").unwrap();
        for line in [
            "mmap 1M file=/data.db shared name=sh",
            "mmap 1M file=/data.db offset=1M name=pr",
            "mmap 1M file=/data.db offset=2M prot=r name=ro",
            "touch sh 1M write",
            "touch pr 1M read",
            "touch ro 1M read",
            "touch pr 512K write",
        ] {
            run(&mut k, pid, line).unwrap();
        }
        let smaps = render(&k, pid, PidFile::Smaps);
        for (ours, theirs) in [
            ("rw-s 00000000 08:01", "rw-s 00000000 fe:00 10068083"),
            ("rw-p 00100000 08:01", "rw-p 00100000 fe:00 10068083"),
            ("r--p 00200000 08:01", "r--p 00200000 fe:00 10068083"),
        ] {
            let theirs_block: Vec<&str> = block(CAP_SMAPS, theirs)
                .into_iter()
                .filter(|l| !l.starts_with("ProtectionKey"))
                .collect();
            assert_eq!(theirs_block.len(), 22, "{theirs}");
            assert_eq!(block(&smaps, ours), theirs_block, "{ours}");
        }
        let maps = render(&k, pid, PidFile::Maps);
        assert!(
            maps.contains(&format!(
                "rw-s 00000000 08:01 {ino}                          /data.db\n"
            )),
            "{maps}"
        );
        let rollup = render(&k, pid, PidFile::SmapsRollup);
        assert!(rollup.contains("Pss_File:           2560 kB\n"), "{rollup}");
        let status = render(&k, pid, PidFile::Status);
        assert!(status.contains("RssFile:\t    2560 kB\n"), "{status}");
    }

    #[test]
    fn io_limits_and_the_constant_files() {
        let (mut k, pid) = setup();
        let io = render(&k, pid, PidFile::Io);
        let names = |t: &str| {
            t.lines()
                .map(|l| l.split(": ").next().unwrap().to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&io), names(SELF_IO));
        assert!(io.contains("\nread_bytes: 0\n"));
        let slot = k.procs.slot_of(pid).unwrap();
        k.procs.get_mut(slot).unwrap().maj_flt = 3;
        assert!(render(&k, pid, PidFile::Io).contains("\nread_bytes: 12288\n"));
        let limits = render(&k, pid, PidFile::Limits);
        // Same rows, same columns; the values that differ are the
        // machine's (processes, signals) and systemd's (open files).
        assert_eq!(limits.lines().count(), SELF_LIMITS.lines().count());
        for (ours, theirs) in limits.lines().zip(SELF_LIMITS.lines()) {
            assert_eq!(ours[..26], theirs[..26]);
            assert_eq!(ours.len(), theirs.len(), "{ours:?} vs {theirs:?}");
        }
        let stack = limits
            .lines()
            .find(|l| l.starts_with("Max stack size"))
            .unwrap();
        let captured = SELF_LIMITS
            .lines()
            .find(|l| l.starts_with("Max stack size"))
            .unwrap();
        assert_eq!(stack, captured);
        assert!(limits.contains(&format!(
            "Max processes             {:<20} ",
            sigpending_limit(&k)
        )));
        assert_eq!(render(&k, pid, PidFile::Environ), "");
        assert_eq!(render(&k, pid, PidFile::Cgroup), "0::/\n");
        assert_eq!(render(&k, pid, PidFile::Wchan), "0");
    }

    /// The keys of the `Key: value` lines (those starting with an
    /// uppercase letter, as pmap tells them from mapping headers).
    fn keys(text: &str) -> Vec<&str> {
        text.lines()
            .filter(|l| l.starts_with(|c: char| c.is_ascii_uppercase()))
            .filter_map(|l| l.split_once(':').map(|(k, _)| k))
            .collect()
    }

    fn render(k: &Kernel, pid: Pid, file: PidFile) -> String {
        render_pid(k, pid, file).unwrap()
    }

    #[test]
    fn fresh_process_maps() {
        let (k, pid) = setup();
        assert_eq!(
            render(&k, pid, PidFile::Maps),
            "7ffffffde000-7ffffffff000 rw-p 00000000 00:00 0                          [stack]\n\
             ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]\n"
        );
        let mut k = boot(Arch::I386, 256 << 20);
        let pid = spawn(&mut k, "x");
        assert_eq!(
            render(&k, pid, PidFile::Maps),
            "bffdf000-c0000000 rw-p 00000000 00:00 0          [stack]\n"
        );
    }

    #[test]
    fn maps_names_heap_stack_and_anon() {
        let (mut k, pid) = setup();
        run(&mut k, pid, "brk +8K").unwrap();
        run(&mut k, pid, "mmap 8K name=buf").unwrap();
        run(&mut k, pid, "mmap 8K prot=rx").unwrap();
        let maps = render(&k, pid, PidFile::Maps);
        let lines: Vec<&str> = maps.lines().collect();
        assert_eq!(
            lines[0],
            "555555559000-55555555b000 rw-p 00000000 00:00 0                          [heap]"
        );
        assert_eq!(lines[1], "7ffff7ffb000-7ffff7ffd000 r-xp 00000000 00:00 0 ");
        assert_eq!(
            lines[2],
            "7ffff7ffd000-7ffff7fff000 rw-p 00000000 00:00 0                          [anon:buf]"
        );
        assert_eq!(lines.len(), 5);
    }

    /// shmem.out (real 6.18.44): `rw-s 00000000 00:01 INO` and the path
    /// `/dev/zero (deleted)` padded to column 73; a split half shows its
    /// offset into the object. Named: `[anon_shmem:NAME]` (fs/proc/
    /// task_mmu.c `get_vma_name`; the capture's kernel lacks
    /// CONFIG_ANON_VMA_NAME). statm's shared column and RssShmem count
    /// the mapped shmem pages.
    #[test]
    fn shared_anonymous_mappings_in_maps_status_and_statm() {
        let (mut k, pid) = setup();
        run(&mut k, pid, "mmap 1M shared").unwrap();
        run(&mut k, pid, "mmap 256K shared name=db").unwrap();
        let maps = render(&k, pid, PidFile::Maps);
        let lines: Vec<&str> = maps.lines().collect();
        assert_eq!(
            lines[0],
            "7ffff7ebf000-7ffff7eff000 rw-s 00000000 00:01 12                         [anon_shmem:db]"
        );
        assert_eq!(
            lines[1],
            "7ffff7eff000-7ffff7fff000 rw-s 00000000 00:01 11                         /dev/zero (deleted)"
        );
        run(&mut k, pid, "mprotect 0x7ffff7f7f000 512K r").unwrap();
        run(&mut k, pid, "touch 0x7ffff7eff000 64K write").unwrap();
        let maps = render(&k, pid, PidFile::Maps);
        assert!(
            maps.contains(
                "7ffff7f7f000-7ffff7fff000 r--s 00080000 00:01 11                         /dev/zero (deleted)\n"
            ),
            "{maps}"
        );
        let status = render(&k, pid, PidFile::Status);
        assert!(status.contains("RssShmem:\t      64 kB\n"), "{status}");
        let statm = render(&k, pid, PidFile::Statm);
        let shared: u64 = statm.split(' ').nth(2).unwrap().parse().unwrap();
        assert_eq!(shared, 16);
        let rollup = render(&k, pid, PidFile::SmapsRollup);
        assert!(rollup.contains("Pss_Shmem:            64 kB\n"), "{rollup}");
    }

    #[test]
    fn smaps_blocks_have_the_kernels_keys_in_order() {
        let (mut k, pid) = setup();
        run(&mut k, pid, "mmap 64K name=buf").unwrap();
        run(&mut k, pid, "touch buf 16K").unwrap();
        run(&mut k, pid, "touch buf+16K 16K read").unwrap();
        let smaps = render(&k, pid, PidFile::Smaps);
        let reference = keys(SELF_SMAPS);
        let block = &reference[..reference.iter().position(|&k| k == "VmFlags").unwrap() + 1];
        // Every block has the reference's 25 keys in the same order.
        let ours = keys(&smaps);
        assert_eq!(ours.len() % block.len(), 0);
        for chunk in ours.chunks(block.len()) {
            assert_eq!(chunk, block);
        }
        let buf_block = smaps.split("[anon:buf]\n").nth(1).unwrap();
        for line in [
            "Size:                 64 kB\n",
            "Rss:                  16 kB\n",
            "Pss_Dirty:            16 kB\n",
            "Private_Dirty:        16 kB\n",
            "Referenced:           16 kB\n",
            "Anonymous:            16 kB\n",
            "Swap:                  0 kB\n",
            "Private_Hugetlb:       0 kB\n",
            "THPeligible:           0\n",
            "VmFlags: rd wr mr mw me ac \n",
        ] {
            assert!(
                buf_block.starts_with(
                    &buf_block[..buf_block
                        .find(line)
                        .unwrap_or_else(|| panic!("{line:?} in {buf_block}"))]
                )
            );
        }
        // The stack block matches the capture's stack block but for its
        // addresses and the pages touched.
        let stack = smaps.split("[stack]\n").nth(1).unwrap();
        let captured = SELF_SMAPS.split("[stack]\n").nth(1).unwrap();
        let first_lines = |t: &str| t.lines().take(25).map(str::to_string).collect::<Vec<_>>();
        let differing: Vec<_> = first_lines(stack)
            .into_iter()
            .zip(first_lines(captured))
            .filter(|(a, b)| a != b)
            .map(|(a, _)| a)
            .collect();
        assert_eq!(
            differing,
            [
                "Rss:                  12 kB",
                "Pss:                  12 kB",
                "Pss_Dirty:            12 kB",
                "Private_Dirty:        12 kB",
                "Referenced:           12 kB",
                "Anonymous:            12 kB"
            ]
        );
    }

    #[test]
    fn smaps_rollup_sums_the_mm() {
        let (mut k, pid) = setup();
        run(&mut k, pid, "mmap 64K name=buf").unwrap();
        run(&mut k, pid, "touch buf 16K").unwrap();
        let rollup = render(&k, pid, PidFile::SmapsRollup);
        assert_eq!(keys(&rollup), keys(SELF_ROLLUP));
        assert!(rollup.starts_with("7ffff7fef000-7ffffffff000 ---p 00000000 00:00 0                          [rollup]\nRss:                  28 kB\n"));
    }

    #[test]
    fn status_has_the_6_18_lines_in_order() {
        let (mut k, pid) = setup();
        run(&mut k, pid, "mmap 1M name=buf").unwrap();
        run(&mut k, pid, "touch buf 256K").unwrap();
        let status = render(&k, pid, PidFile::Status);
        assert_eq!(keys(&status), keys(SELF_STATUS));
        for line in [
            "Name:\ttest\n",
            "State:\tS (sleeping)\n",
            "VmPeak:\t    1156 kB\n",
            "VmSize:\t    1156 kB\n",
            "VmHWM:\t     268 kB\n",
            "VmRSS:\t     268 kB\n",
            "RssAnon:\t     268 kB\n",
            "VmData:\t    1024 kB\n",
            "VmStk:\t     132 kB\n",
            "VmPTE:\t      16 kB\n",
            "VmSwap:\t       0 kB\n",
            "Groups:\t \n",
            "Cpus_allowed:\t3\n",
        ] {
            assert!(status.contains(line), "{line:?} in\n{status}");
        }
        // VmPeak and VmHWM remember what munmap took away.
        run(&mut k, pid, "munmap buf 1M").unwrap();
        let status = render(&k, pid, PidFile::Status);
        assert!(status.contains("VmPeak:\t    1156 kB\nVmSize:\t     132 kB\n"));
        assert!(status.contains("VmHWM:\t     268 kB\nVmRSS:\t      12 kB\n"));
    }

    #[test]
    fn stat_and_statm() {
        let (mut k, pid) = setup();
        run(&mut k, pid, "mmap 1M name=buf").unwrap();
        run(&mut k, pid, "touch buf 64K").unwrap();
        let stat = render(&k, pid, PidFile::Stat);
        let fields: Vec<&str> = stat.trim_end().split(' ').collect();
        assert_eq!(fields.len(), SELF_STAT.trim_end().split(' ').count());
        assert_eq!(fields.len(), 52);
        assert_eq!(fields[1], "(test)");
        assert_eq!(fields[9], "19"); // minflt: 3 + 16
        assert_eq!(fields[22], (((33 + 256) as u64) << 12).to_string()); // vsize
        assert_eq!(fields[23], "19"); // rss pages
        assert_eq!(fields[24], "18446744073709551615");
        assert_eq!(fields[27], (0x7fff_ffff_e000u64).to_string()); // startstack
        assert_eq!(render(&k, pid, PidFile::Statm), "289 19 0 0 0 289 0\n");
    }

    #[test]
    fn small_files() {
        let (mut k, pid) = setup();
        assert_eq!(render(&k, pid, PidFile::Comm), "test\n");
        assert_eq!(render(&k, pid, PidFile::Cmdline), "test\0");
        assert_eq!(render(&k, pid, PidFile::OomScoreAdj), "0\n");
        // badness = 3 pages + 3 page tables over ~250k pages: (1000 + 0) * 2 / 3.
        assert_eq!(render(&k, pid, PidFile::OomScore), "666\n");
        k.write_oom_score_adj(pid, "500\n").unwrap();
        assert_eq!(render(&k, pid, PidFile::OomScoreAdj), "500\n");
        let total = k.totalram_pages();
        let badness = 6 + 500 * (total / 1000);
        let score = (1000 + badness * 1000 / total) * 2 / 3;
        assert_eq!(render(&k, pid, PidFile::OomScore), format!("{score}\n"));
        assert_eq!(
            render_pid(&k, Pid(77), PidFile::Comm).unwrap_err().errno(),
            libc::ESRCH
        );
    }

    #[test]
    fn number_formatting() {
        let mut out = Vec::new();
        push_hex(&mut out, 0x1000, 8);
        out.push(b' ');
        push_hex(&mut out, 0x7fff_ffff_f000, 8);
        out.push(b' ');
        push_dec(&mut out, 132, 8);
        out.push(b' ');
        push_dec(&mut out, 123_456_789_012, 8);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "00001000 7ffffffff000      132 123456789012"
        );
    }

    #[test]
    fn header_pads_the_name_to_column_73_or_49() {
        let flags = VmFlags::anon(crate::ctl::Prot::RW);
        let mut out = Vec::new();
        push_header(
            &mut out,
            true,
            (0x7ffd_04fe_2000, 0x7ffd_0500_3000),
            flags,
            MapsFile::default(),
            Some("[stack]"),
        );
        let line = String::from_utf8(out).unwrap();
        assert_eq!(
            line,
            "7ffd04fe2000-7ffd05003000 rw-p 00000000 00:00 0                          [stack]\n"
        );
        assert_eq!(line.find('['), Some(73));
        let mut out = Vec::new();
        push_header(
            &mut out,
            false,
            (0xbffdf000, 0xc0000000),
            flags,
            MapsFile::default(),
            Some("[stack]"),
        );
        assert_eq!(String::from_utf8(out).unwrap().find('['), Some(49));
        let mut out = Vec::new();
        push_header(
            &mut out,
            true,
            (0x7fe5_8237_1000, 0x7fe5_8239_3000),
            flags,
            MapsFile::default(),
            None,
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "7fe582371000-7fe582393000 rw-p 00000000 00:00 0 \n"
        );
    }
}
