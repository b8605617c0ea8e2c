//! The text of the tracefs files (`MOUNT/tracing/`): the ftrace header of
//! the nop tracer, one line per recorded event formatted as the event's
//! `print fmt` in Linux 6.18 formats it, and the control files' contents.
//!
//! A line is `TASK-PID [CPU] FLAGS TIMESTAMP: EVENT: FIELDS`, with
//! ftrace's widths (`%16s-%-7d [%03d] %s %5lu.%06lu: `). Pointers (`%p`)
//! print hashed, as Linux does by default: 16 hex digits of which the low
//! 8 are a keyed hash of the address (8 digits on i386); the key is fixed,
//! so a fresh boot hashes alike. `%pS` call sites name the Linux function
//! that makes such an object (offsets from the reference capture where it
//! shows one, else `+0x0/0x0`), `0x0` for objects the control files make.

use std::fmt::Write;

use crate::mm::Kernel;
use crate::mm::trace::{
    EVENTS, Event, TraceEntry, enableable_events, gfp, hi, lo, reclaim_flags, systems,
};
use crate::mm::types::Arch;

/// A file of `tracing/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceFile {
    /// `available_events`: `system:event` per line.
    AvailableEvents,
    /// `available_tracers`: only nop.
    AvailableTracers,
    /// `current_tracer`: nop.
    CurrentTracer,
    /// `buffer_size_kb` (per CPU).
    BufferSizeKb,
    /// `buffer_total_size_kb`.
    BufferTotalSizeKb,
    /// `set_event`: the enabled events; takes names, `!name` disables.
    SetEvent,
    /// `trace`: the header and every held event.
    Trace,
    /// `trace_marker` (write only).
    TraceMarker,
    /// `trace_pipe`: consuming reads.
    TracePipe,
    /// `tracing_on`.
    TracingOn,
    /// `events/enable`.
    EventsEnable,
    /// `events/SYSTEM/enable` (index into [`systems`]).
    SystemEnable(usize),
    /// `events/SYSTEM/EVENT/enable`.
    EventEnable(Event),
    /// `events/SYSTEM/EVENT/format`.
    EventFormat(Event),
    /// `events/SYSTEM/EVENT/id`.
    EventId(Event),
}

impl TraceFile {
    /// True for the files that take writes.
    pub fn writable(self) -> bool {
        matches!(
            self,
            TraceFile::BufferSizeKb
                | TraceFile::SetEvent
                | TraceFile::Trace
                | TraceFile::TraceMarker
                | TraceFile::TracingOn
                | TraceFile::EventsEnable
                | TraceFile::SystemEnable(_)
                | TraceFile::EventEnable(_)
        )
    }
}

/// Mode of the read-write files (tracefs drops the bits for others).
pub const RW_MODE: u16 = 0o640;
/// Mode of the read-only files.
pub const RO_MODE: u16 = 0o440;
/// Mode of trace_marker.
pub const MARKER_MODE: u16 = 0o220;
/// Mode of the directories.
pub const DIR_MODE: u16 = 0o750;

/// The files directly under `tracing/`, in directory order.
pub const TOP_FILES: &[(&str, u16, TraceFile)] = &[
    ("available_events", RO_MODE, TraceFile::AvailableEvents),
    ("available_tracers", RO_MODE, TraceFile::AvailableTracers),
    ("buffer_size_kb", RW_MODE, TraceFile::BufferSizeKb),
    (
        "buffer_total_size_kb",
        RO_MODE,
        TraceFile::BufferTotalSizeKb,
    ),
    ("current_tracer", RO_MODE, TraceFile::CurrentTracer),
    ("set_event", RW_MODE, TraceFile::SetEvent),
    ("trace", RW_MODE, TraceFile::Trace),
    ("trace_marker", MARKER_MODE, TraceFile::TraceMarker),
    ("trace_pipe", RO_MODE, TraceFile::TracePipe),
    ("tracing_on", RW_MODE, TraceFile::TracingOn),
];

/// The ftrace header of the nop tracer, as 6.18 prints it on 2 CPUs.
pub fn header(k: &Kernel) -> String {
    let (held, written) = k.trace.counts();
    format!(
        "# tracer: nop\n\
         #\n\
         # entries-in-buffer/entries-written: {held}/{written}   #P:{cpus}\n\
         #\n\
         #                                _-----=> irqs-off/BH-disabled\n\
         #                               / _----=> need-resched\n\
         #                              | / _---=> hardirq/softirq\n\
         #                              || / _--=> preempt-depth\n\
         #                              ||| / _-=> migrate-disable\n\
         #                              |||| /     delay\n\
         #           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION\n\
         #              | |         |   |||||     |         |\n",
        cpus = crate::mm::NR_CPUS
    )
}

/// The text of a read-only or read-write file (not trace_pipe, which
/// consumes, nor trace_marker, which has none).
pub fn render(k: &Kernel, file: TraceFile) -> String {
    match file {
        TraceFile::AvailableEvents => enableable_events()
            .map(|i| format!("{}:{}\n", i.system, i.name))
            .collect(),
        TraceFile::AvailableTracers => "nop\n".into(),
        TraceFile::CurrentTracer => "nop\n".into(),
        TraceFile::BufferSizeKb => k.trace.buffer_size_text(),
        TraceFile::BufferTotalSizeKb => k.trace.buffer_total_text(),
        TraceFile::SetEvent => enableable_events()
            .filter(|i| k.trace.is_enabled(i.event))
            .map(|i| format!("{}:{}\n", i.system, i.name))
            .collect(),
        TraceFile::Trace => {
            let mut out = header(k);
            for e in k.trace.entries() {
                render_entry(k, e, k.trace.text(e), &mut out);
            }
            out
        }
        TraceFile::TraceMarker | TraceFile::TracePipe => String::new(),
        TraceFile::TracingOn => format!("{}\n", u8::from(k.trace.tracing_on())),
        TraceFile::EventsEnable => enable_state(k, |_| true),
        TraceFile::SystemEnable(s) => {
            let system = systems().get(s).copied().unwrap_or("");
            enable_state(k, |e| e.info().system == system)
        }
        TraceFile::EventEnable(e) => format!("{}\n", u8::from(k.trace.is_enabled(e))),
        TraceFile::EventFormat(e) => e.info().format.to_string(),
        TraceFile::EventId(e) => {
            let id = e
                .info()
                .format
                .lines()
                .find_map(|l| l.strip_prefix("ID: "))
                .unwrap_or("0");
            format!("{id}\n")
        }
    }
}

/// `0`, `1`, or `X` when the events a file covers are mixed.
fn enable_state(k: &Kernel, covers: impl Fn(Event) -> bool) -> String {
    let (mut on, mut off) = (false, false);
    for info in enableable_events().filter(|i| covers(i.event)) {
        if k.trace.is_enabled(info.event) {
            on = true;
        } else {
            off = true;
        }
    }
    match (on, off) {
        (true, true) => "X\n",
        (true, false) => "1\n",
        _ => "0\n",
    }
    .into()
}

/// The TASK of a line: `<idle>` for pid 0, the comm saved while the task
/// ran, else the live task's, else `<...>` (as ftrace when the comm was
/// not saved).
fn comm(k: &Kernel, pid: u32) -> &str {
    if pid == 0 {
        return "<idle>";
    }
    if let Some(c) = k.trace.saved_comm(pid) {
        return c;
    }
    let p = crate::mm::types::Pid(pid);
    if let Some(proc) = k.procs.by_pid(p) {
        return &proc.comm;
    }
    k.kthreads.get(p).map_or("<...>", |t| &t.comm)
}

/// Key of the pointer hash: fixed, so a fresh boot hashes alike.
const PTR_KEY: u64 = 0x6d6d_6673_7472_6163;

/// `%p`: the hashed id of a pointer (ptr_to_id); NULL prints as zeros.
fn ptr(out: &mut String, arch: Arch, addr: u64) {
    let hash = if addr == 0 {
        0
    } else {
        // splitmix64 of the keyed address, low 32 bits (Linux keeps 32 of
        // siphash's on 64-bit machines too).
        let mut z = addr ^ PTR_KEY;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) & 0xffff_ffff
    };
    let _ = match arch {
        Arch::X86_64 => write!(out, "{hash:016x}"),
        Arch::I386 => write!(out, "{hash:08x}"),
    };
}

/// vmemmap_base: the `struct page` array (x86_64, no KASLR).
const VMEMMAP_BASE: u64 = 0xffff_ea00_0000_0000;

/// `%p` of the struct page of `pfn`.
fn page(out: &mut String, arch: Arch, pfn: u64) {
    ptr(out, arch, VMEMMAP_BASE + pfn * 64);
}

/// `__print_flags(gfp_flags, "|", …)` with the table of the format files.
fn gfp_flags(out: &mut String, flags: u64) {
    const TABLE: &[(u64, &str)] = &[
        (gfp::TRANSHUGE, "GFP_TRANSHUGE"),
        (gfp::TRANSHUGE_LIGHT, "GFP_TRANSHUGE_LIGHT"),
        (gfp::HIGHUSER_MOVABLE, "GFP_HIGHUSER_MOVABLE"),
        (gfp::HIGHUSER, "GFP_HIGHUSER"),
        (gfp::USER, "GFP_USER"),
        (gfp::KERNEL_ACCOUNT, "GFP_KERNEL_ACCOUNT"),
        (gfp::KERNEL, "GFP_KERNEL"),
        (gfp::NOFS, "GFP_NOFS"),
        (gfp::ATOMIC, "GFP_ATOMIC"),
        (gfp::NOIO, "GFP_NOIO"),
        (gfp::NOWAIT, "GFP_NOWAIT"),
        (gfp::DMA, "GFP_DMA"),
        (gfp::DMA32, "GFP_DMA32"),
        (gfp::RECLAIM, "__GFP_RECLAIM"),
        (gfp::DMA, "__GFP_DMA"),
        (gfp::HIGHMEM, "__GFP_HIGHMEM"),
        (gfp::DMA32, "__GFP_DMA32"),
        (gfp::MOVABLE, "__GFP_MOVABLE"),
        (gfp::RECLAIMABLE, "__GFP_RECLAIMABLE"),
        (gfp::HIGH, "__GFP_HIGH"),
        (gfp::IO, "__GFP_IO"),
        (gfp::FS, "__GFP_FS"),
        (gfp::ZERO, "__GFP_ZERO"),
        (gfp::DIRECT_RECLAIM, "__GFP_DIRECT_RECLAIM"),
        (gfp::KSWAPD_RECLAIM, "__GFP_KSWAPD_RECLAIM"),
        (gfp::WRITE, "__GFP_WRITE"),
        (gfp::NOWARN, "__GFP_NOWARN"),
        (gfp::RETRY_MAYFAIL, "__GFP_RETRY_MAYFAIL"),
        (gfp::NOFAIL, "__GFP_NOFAIL"),
        (gfp::NORETRY, "__GFP_NORETRY"),
        (gfp::MEMALLOC, "__GFP_MEMALLOC"),
        (gfp::COMP, "__GFP_COMP"),
        (gfp::NOMEMALLOC, "__GFP_NOMEMALLOC"),
        (gfp::HARDWALL, "__GFP_HARDWALL"),
        (gfp::THISNODE, "__GFP_THISNODE"),
        (gfp::ACCOUNT, "__GFP_ACCOUNT"),
        (gfp::ZEROTAGS, "__GFP_ZEROTAGS"),
        (gfp::NO_OBJ_EXT, "__GFP_NO_OBJ_EXT"),
    ];
    print_flags(out, flags, TABLE, "none");
}

/// `__print_flags(reclaim_flags, "|", …)` of the vmscan events.
fn reclaim(out: &mut String, flags: u64) {
    const TABLE: &[(u64, &str)] = &[
        (reclaim_flags::ANON, "RECLAIM_WB_ANON"),
        (reclaim_flags::FILE, "RECLAIM_WB_FILE"),
        (reclaim_flags::MIXED, "RECLAIM_WB_MIXED"),
        (reclaim_flags::SYNC, "RECLAIM_WB_SYNC"),
        (reclaim_flags::ASYNC, "RECLAIM_WB_ASYNC"),
    ];
    print_flags(out, flags, TABLE, "RECLAIM_WB_NONE");
}

/// trace_print_flags_seq: each table entry whose bits are all set, in
/// table order, its bits then taken away; what is left as `0x…`.
fn print_flags(out: &mut String, mut flags: u64, table: &[(u64, &str)], none: &str) {
    if flags == 0 {
        out.push_str(none);
        return;
    }
    let mut first = true;
    for &(mask, name) in table {
        if mask != 0 && flags & mask == mask {
            if !first {
                out.push('|');
            }
            out.push_str(name);
            first = false;
            flags &= !mask;
            if flags == 0 {
                break;
            }
        }
    }
    if flags != 0 {
        if !first {
            out.push('|');
        }
        let _ = write!(out, "0x{flags:x}");
    }
}

/// The Linux function a boot cache's objects are allocated from, and
/// whether the cache is SLAB_ACCOUNT (`accounted=`).
fn cache_site(name: &str) -> (&'static str, bool) {
    match name {
        "task_struct" => ("copy_process+0x1a5/0x1da0", true),
        "pid" => ("alloc_pid+0x0/0x0", true),
        "cred_jar" => ("prepare_creds+0x1c/0x2e0", true),
        "files_cache" => ("dup_fd+0x2a/0x3b0", true),
        "sighand_cache" => ("copy_process+0xa7a/0x1da0", true),
        "signal_cache" => ("copy_process+0xaee/0x1da0", true),
        "mm_struct" => ("mm_alloc+0x16/0x60", true),
        "vm_area_struct" => ("vm_area_alloc+0x1a/0x80", true),
        "anon_vma" => ("__anon_vma_prepare+0x11f/0x1e0", true),
        "anon_vma_chain" => ("__anon_vma_prepare+0x40/0x1e0", true),
        "maple_node" => ("mas_preallocate+0x442/0x480", false),
        "filp" => ("alloc_empty_file+0x3c/0x110", true),
        "dentry" => ("__d_alloc+0x0/0x0", true),
        "inode_cache" => ("alloc_inode+0x0/0x0", true),
        "radix_tree_node" => ("xas_alloc+0x0/0x0", true),
        "kmem_cache" | "kmem_cache_node" => ("__kmem_cache_create_args+0x0/0x0", false),
        _ => ("0x0", false),
    }
}

/// Append one event line (with its newline).
pub fn render_entry(k: &Kernel, e: &TraceEntry, text: &str, out: &mut String) {
    let Some(event) = e.kind() else { return };
    let arch = k.config.arch;
    let secs = e.ts / 1_000_000_000;
    let usecs = e.ts % 1_000_000_000 / 1000;
    let _ = write!(
        out,
        "{:>16}-{:<7} [{:03}] {} {:>5}.{:06}: ",
        comm(k, e.pid),
        e.pid,
        e.cpu,
        e.ctx().columns(),
        secs,
        usecs
    );
    if event != Event::Print {
        out.push_str(event.info().name);
        out.push_str(": ");
    }
    let a = &e.args;
    let _ = match event {
        Event::Print => write!(out, "tracing_mark_write: {text}"),
        Event::MmPageAlloc => {
            out.push_str("page=");
            page(out, arch, a[0]);
            let _ = write!(
                out,
                " pfn=0x{:x} order={} migratetype={} gfp_flags=",
                a[0], a[1], a[2]
            );
            gfp_flags(out, a[3]);
            Ok(())
        }
        Event::MmPageAllocZoneLocked => {
            out.push_str("page=");
            page(out, arch, a[0]);
            write!(
                out,
                " pfn=0x{:x} order={} migratetype={} percpu_refill={}",
                a[0], a[1], a[2], a[3]
            )
        }
        Event::MmPageAllocExtfrag => {
            out.push_str("page=");
            page(out, arch, a[0]);
            let pageblock_order = k.page_alloc.pageblock_order.min(10);
            write!(
                out,
                " pfn=0x{:x} alloc_order={} fallback_order={} pageblock_order={} alloc_migratetype={} fallback_migratetype={} fragmenting={} change_ownership={}",
                a[0],
                a[1],
                a[2],
                pageblock_order,
                a[3],
                a[4],
                u8::from(a[2] < u64::from(pageblock_order)),
                a[5]
            )
        }
        Event::FolioWaitWriteback | Event::WritebackDirtyFolio => {
            write!(out, "bdi {}:{}: ino={} index={}", a[0], a[1], a[2], a[3])
        }
        Event::CompactionBegin | Event::CompactionEnd => {
            let mode = if a[4] != 0 { "sync" } else { "async" };
            let _ = write!(
                out,
                "zone_start=0x{:x} migrate_pfn=0x{:x} free_pfn=0x{:x} zone_end=0x{:x}, mode={mode}",
                a[0], a[1], a[2], a[3]
            );
            if event == Event::CompactionEnd {
                let status = match a[5] {
                    0 => "not_suitable_zone",
                    1 => "skipped",
                    2 => "deferred",
                    3 => "no_suitable_page",
                    4 => "continue",
                    5 => "complete",
                    6 => "partial_skipped",
                    7 => "contended",
                    _ => "success",
                };
                let _ = write!(out, " status={status}");
            }
            Ok(())
        }
        Event::MmPageFree => {
            out.push_str("page=");
            page(out, arch, a[0]);
            write!(out, " pfn=0x{:x} order={}", a[0], a[1])
        }
        Event::KmemCacheAlloc | Event::Kmalloc | Event::KmemCacheFree | Event::Kfree => {
            let name = k.trace.name(a[4]);
            let (site, accounted) = if a[4] == u64::MAX {
                // kmalloc_large from a control file.
                ("0x0", false)
            } else if matches!(event, Event::Kmalloc | Event::Kfree) {
                ("0x0", a[3] & gfp::ACCOUNT != 0)
            } else {
                cache_site(name)
            };
            let _ = write!(out, "call_site={site} ptr=");
            ptr(out, arch, a[0]);
            if matches!(event, Event::KmemCacheAlloc | Event::KmemCacheFree) {
                let _ = write!(out, " name={name}");
            }
            if matches!(event, Event::KmemCacheAlloc | Event::Kmalloc) {
                let _ = write!(out, " bytes_req={} bytes_alloc={} gfp_flags=", a[1], a[2]);
                gfp_flags(out, a[3]);
                let _ = write!(out, " node=-1 accounted={accounted}");
            }
            Ok(())
        }
        Event::PageFaultUser => write!(
            out,
            "address=0x{:x} ip=0x{:x} error_code=0x{:x}",
            a[0], a[1], a[2]
        ),
        Event::FilemapAdd | Event::FilemapDelete => write!(
            out,
            "dev {}:{} ino {:x} pfn=0x{:x} ofs={} order=0",
            a[0] >> 20,
            a[0] & ((1 << 20) - 1),
            a[1],
            a[2],
            a[3] << 12
        ),
        Event::FinishTaskReaping | Event::StartTaskReaping | Event::WakeReaper => {
            write!(out, "pid={}", a[0])
        }
        Event::MarkVictim => write!(
            out,
            "pid={} comm={text} total-vm={}kB anon-rss={}kB file-rss:{}kB shmem-rss:{}kB uid=0 pgtables={}kB oom_score_adj={}",
            a[0],
            a[1],
            a[2],
            a[3] & 0xffff_ffff,
            a[3] >> 32,
            a[4],
            a[5] as i64
        ),
        Event::OomScoreAdjUpdate => write!(
            out,
            "pid={} comm={text} oom_score_adj={}",
            a[0], a[1] as i64
        ),
        Event::ReclaimRetryZone => {
            let zone = k
                .page_alloc
                .zones
                .get(a[0] as usize)
                .map_or("", |z| z.zone_type.name());
            write!(
                out,
                "node=0 zone={zone:<8} order={} reclaimable={} available={} min_wmark={} no_progress_loops={} wmark_check={}",
                a[1],
                a[2],
                a[3],
                a[4],
                lo(a[5]),
                hi(a[5])
            )
        }
        Event::LruShrinkActive => {
            let _ = write!(
                out,
                "nid=0 nr_taken={} nr_active={} nr_deactivated={} nr_referenced={} priority={} flags=",
                lo(a[0]),
                hi(a[0]),
                lo(a[1]),
                hi(a[1]),
                lo(a[2])
            );
            reclaim(out, hi(a[2]));
            Ok(())
        }
        Event::LruShrinkInactive => {
            let _ = write!(
                out,
                "nid=0 nr_scanned={} nr_reclaimed={} nr_dirty={} nr_writeback={} nr_congested=0 nr_immediate=0 nr_activate_anon={} nr_activate_file={} nr_ref_keep={} nr_unmap_fail={} priority={} flags=",
                lo(a[0]),
                hi(a[0]),
                lo(a[1]),
                hi(a[1]),
                lo(a[2]),
                hi(a[2]),
                lo(a[3]),
                hi(a[3]),
                lo(a[4])
            );
            reclaim(out, hi(a[4]));
            Ok(())
        }
        Event::WriteFolio => {
            out.push_str("page=");
            page(out, arch, a[0]);
            let _ = write!(out, " pfn=0x{:x} flags=", a[0]);
            reclaim(out, a[1]);
            Ok(())
        }
        Event::ShrinkSlabStart => {
            out.push_str("super_cache_scan+0x0/0x210 ");
            ptr(out, arch, SHRINKER);
            let _ = write!(out, ": nid: 0 objects to shrink {} gfp_flags ", a[0]);
            gfp_flags(out, a[1]);
            write!(
                out,
                " cache items {} delta {} total_scan {} priority {}",
                a[2], a[3], a[4], a[5]
            )
        }
        Event::ShrinkSlabEnd => {
            out.push_str("super_cache_scan+0x0/0x210 ");
            ptr(out, arch, SHRINKER);
            write!(
                out,
                ": nid: 0 unused scan count {} new scan count {} total_scan {} last shrinker return val {}",
                a[0], a[1], a[2], a[3]
            )
        }
        Event::DirectReclaimBegin => {
            let _ = write!(out, "order={} gfp_flags=", a[0]);
            gfp_flags(out, a[1]);
            Ok(())
        }
        Event::DirectReclaimEnd => write!(out, "nr_reclaimed={}", a[0]),
        Event::WakeupKswapd => {
            let _ = write!(out, "nid=0 order={} gfp_flags=", a[1]);
            gfp_flags(out, a[2]);
            Ok(())
        }
        Event::KswapdWake => write!(out, "nid=0 order={}", a[1]),
        Event::KswapdSleep => write!(out, "nid=0"),
    };
    out.push('\n');
}

/// Address of the root file system's superblock shrinker (`%p` of `shr`).
const SHRINKER: u64 = 0xffff_8880_0420_0000;

/// A window of `trace` (seq_file style): from entry number `from` (the
/// header first when `from` is 0) until at least `min_len` bytes; returns
/// where the next window starts, `None` at the end.
pub fn render_trace_window(k: &Kernel, from: u64, min_len: usize, out: &mut String) -> Option<u64> {
    if from == 0 {
        out.push_str(&header(k));
    }
    let mut entries = k.trace.entries_from(from).peekable();
    while let Some(e) = entries.next() {
        render_entry(k, e, k.trace.text(e), out);
        if out.len() >= min_len {
            return entries.peek().map(|next| next.seq);
        }
    }
    None
}

/// Every event line held, oldest first, without the header.
pub fn render_lines(k: &Kernel) -> String {
    let mut out = String::new();
    for e in k.trace.entries() {
        render_entry(k, e, k.trace.text(e), &mut out);
    }
    out
}

/// The events a `set_event` token names: `event`, `system:event`,
/// `system` (all of it), `system:*`, `*:event`, `*` or `*:*`.
pub fn match_events(token: &str) -> Vec<Event> {
    let (system, name) = match token.split_once(':') {
        Some((s, n)) => (Some(s), n),
        None => (None, token),
    };
    let name = if name.is_empty() { "*" } else { name };
    enableable_events()
        .filter(|i| match system {
            Some(s) => (s == "*" || s == i.system) && (name == "*" || name == i.name),
            None => name == "*" || name == i.name || name == i.system,
        })
        .map(|i| i.event)
        .collect()
}

/// Index of a system in [`systems`].
pub fn system_index(name: &str) -> Option<usize> {
    systems().iter().position(|s| *s == name)
}

/// The event with this system and name.
pub fn event_by_name(system: &str, name: &str) -> Option<Event> {
    EVENTS
        .iter()
        .find(|i| i.system == system && i.name == name && i.event.enableable())
        .map(|i| i.event)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_print_like_print_flags() {
        let mut s = String::new();
        gfp_flags(&mut s, gfp::HIGHUSER_MOVABLE | gfp::COMP);
        assert_eq!(s, "GFP_HIGHUSER_MOVABLE|__GFP_COMP");
        s.clear();
        gfp_flags(&mut s, gfp::KERNEL_ACCOUNT | gfp::ZERO | gfp::COMP);
        assert_eq!(s, "GFP_KERNEL_ACCOUNT|__GFP_ZERO|__GFP_COMP");
        s.clear();
        gfp_flags(&mut s, gfp::NOWAIT);
        assert_eq!(s, "GFP_NOWAIT");
        s.clear();
        gfp_flags(&mut s, 0);
        assert_eq!(s, "none");
        s.clear();
        gfp_flags(&mut s, 1 << 30);
        assert_eq!(s, "0x40000000");
        s.clear();
        reclaim(&mut s, reclaim_flags::of(true));
        assert_eq!(s, "RECLAIM_WB_FILE|RECLAIM_WB_ASYNC");
    }

    #[test]
    fn pointers_hash_to_16_digits_with_8_significant() {
        let mut s = String::new();
        ptr(&mut s, Arch::X86_64, 0xffff_8880_1234_5000);
        assert_eq!(s.len(), 16);
        assert!(s.starts_with("00000000"));
        let mut t = String::new();
        ptr(&mut t, Arch::X86_64, 0xffff_8880_1234_5000);
        assert_eq!(s, t);
        t.clear();
        ptr(&mut t, Arch::X86_64, 0);
        assert_eq!(t, "0000000000000000");
    }

    #[test]
    fn set_event_tokens() {
        assert_eq!(match_events("kfree"), [Event::Kfree]);
        assert_eq!(match_events("kmem:kfree"), [Event::Kfree]);
        assert_eq!(match_events("oom").len(), 6);
        assert_eq!(match_events("oom:*").len(), 6);
        assert_eq!(match_events("*:mark_victim"), [Event::MarkVictim]);
        assert_eq!(match_events("*").len(), 31);
        assert_eq!(match_events("compaction").len(), 2);
        assert_eq!(match_events("writeback").len(), 2);
        assert!(match_events("bogus").is_empty());
        assert!(match_events("kmem:bogus").is_empty());
        assert!(match_events("ftrace:print").is_empty());
    }
}
