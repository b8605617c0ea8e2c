//! Tracepoints and the ftrace ring buffer (Linux: kernel/trace/ and the
//! `TRACE_EVENT`s of include/trace/events/{kmem,vmscan,oom,filemap,
//! compaction,writeback}.h,
//! arch/x86/include/asm/trace/exceptions.h).
//!
//! A tracepoint is one call with typed fields, guarded by one test of a
//! bit in [`Trace::active`] — the enabled events, or nothing while
//! `tracing_on` is 0 — so with tracing off a tracepoint costs a load and a
//! branch. An event that fires becomes one fixed-size binary
//! [`TraceEntry`] (the clock, the task, the event id and six words of
//! fields) in the ring buffer of the CPU the task runs on; the text is
//! made only when `trace` or `trace_pipe` is read (src/procfs/trace.rs),
//! from the same print formats as Linux's.
//!
//! Each CPU's ring holds `buffer_size_kb` KiB of entries; when it is full
//! the oldest entry is overwritten (ftrace's overwrite mode) and counted
//! in `entries-written` only. Entries of the two rings are merged by
//! timestamp, and equal timestamps by the order they were recorded in (a
//! global sequence number), so the text is the order things happened in
//! and the same commands on a fresh boot give the same bytes.

use std::collections::BTreeMap;

use super::Kernel;
use super::NR_CPUS;
use super::cputime::task_cpu;
use super::page_alloc::PageKind;
use super::slub::SlabObject;
use super::types::{Order, Pfn, Pid};

/// A traceable event. The discriminant is the bit in the enabled mask and
/// the index into [`EVENTS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u16)]
pub enum Event {
    /// exceptions:page_fault_user
    PageFaultUser,
    /// filemap:mm_filemap_add_to_page_cache
    FilemapAdd,
    /// filemap:mm_filemap_delete_from_page_cache
    FilemapDelete,
    /// oom:finish_task_reaping
    FinishTaskReaping,
    /// oom:start_task_reaping
    StartTaskReaping,
    /// oom:wake_reaper
    WakeReaper,
    /// oom:mark_victim
    MarkVictim,
    /// oom:reclaim_retry_zone
    ReclaimRetryZone,
    /// oom:oom_score_adj_update
    OomScoreAdjUpdate,
    /// vmscan:mm_vmscan_lru_shrink_active
    LruShrinkActive,
    /// vmscan:mm_vmscan_lru_shrink_inactive
    LruShrinkInactive,
    /// vmscan:mm_vmscan_write_folio
    WriteFolio,
    /// vmscan:mm_shrink_slab_end
    ShrinkSlabEnd,
    /// vmscan:mm_shrink_slab_start
    ShrinkSlabStart,
    /// vmscan:mm_vmscan_direct_reclaim_end
    DirectReclaimEnd,
    /// vmscan:mm_vmscan_direct_reclaim_begin
    DirectReclaimBegin,
    /// vmscan:mm_vmscan_wakeup_kswapd
    WakeupKswapd,
    /// vmscan:mm_vmscan_kswapd_wake
    KswapdWake,
    /// vmscan:mm_vmscan_kswapd_sleep
    KswapdSleep,
    /// kmem:mm_page_alloc_zone_locked
    MmPageAllocZoneLocked,
    /// kmem:mm_page_alloc
    MmPageAlloc,
    /// kmem:mm_page_free
    MmPageFree,
    /// kmem:kmem_cache_free
    KmemCacheFree,
    /// kmem:kfree
    Kfree,
    /// kmem:kmalloc
    Kmalloc,
    /// kmem:kmem_cache_alloc
    KmemCacheAlloc,
    /// kmem:mm_page_alloc_extfrag
    MmPageAllocExtfrag,
    /// compaction:mm_compaction_begin
    CompactionBegin,
    /// compaction:mm_compaction_end
    CompactionEnd,
    /// writeback:folio_wait_writeback
    FolioWaitWriteback,
    /// writeback:writeback_dirty_folio
    WritebackDirtyFolio,
    /// ftrace:print — `trace_marker` writes (`tracing_mark_write: TEXT`);
    /// not an event one enables, as in Linux.
    Print,
}

/// How the five flag columns of a line read (irqs-off, need-resched,
/// hardirq/softirq, preempt-depth, migrate-disable), as a 6.18 kernel
/// prints them for each event in the same context.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Ctx {
    /// `.....`: process context.
    Task = 0,
    /// `d....`: the page-fault exception, interrupts off.
    IrqsOff = 1,
    /// `d..1.`: under a spinlock with interrupts off.
    Locked1 = 2,
    /// `d..2.`: under two (the i_pages lock inside the lruvec lock).
    Locked2 = 3,
    /// `d..3.`: the zone lock while refilling the per-CPU lists.
    Locked3 = 4,
    /// `...1.`: preemption off (trace_marker).
    Preempt1 = 5,
}

impl Ctx {
    /// The five flag characters.
    pub fn columns(self) -> &'static str {
        match self {
            Ctx::Task => ".....",
            Ctx::IrqsOff => "d....",
            Ctx::Locked1 => "d..1.",
            Ctx::Locked2 => "d..2.",
            Ctx::Locked3 => "d..3.",
            Ctx::Preempt1 => "...1.",
        }
    }

    fn from_u8(v: u8) -> Ctx {
        match v {
            1 => Ctx::IrqsOff,
            2 => Ctx::Locked1,
            3 => Ctx::Locked2,
            4 => Ctx::Locked3,
            5 => Ctx::Preempt1,
            _ => Ctx::Task,
        }
    }
}

/// What the tree and the renderer know of an event.
#[derive(Clone, Copy, Debug)]
pub struct EventInfo {
    /// The event.
    pub event: Event,
    /// Its system (directory under `events/`).
    pub system: &'static str,
    /// Its name.
    pub name: &'static str,
    /// The `format` file, as Linux 6.18 serves it.
    pub format: &'static str,
}

macro_rules! format_file {
    ($file:literal) => {
        include_str!(concat!(
            "../../tests/reference/linux-samples/trace/formats/",
            $file
        ))
    };
}

/// Every event, in [`Event`] order: the order of Linux's event list, which
/// `available_events` and `set_event` follow.
pub const EVENTS: [EventInfo; 32] = [
    ev(
        Event::PageFaultUser,
        "exceptions",
        "page_fault_user",
        format_file!("exceptions:page_fault_user"),
    ),
    ev(
        Event::FilemapAdd,
        "filemap",
        "mm_filemap_add_to_page_cache",
        format_file!("filemap:mm_filemap_add_to_page_cache"),
    ),
    ev(
        Event::FilemapDelete,
        "filemap",
        "mm_filemap_delete_from_page_cache",
        format_file!("filemap:mm_filemap_delete_from_page_cache"),
    ),
    ev(
        Event::FinishTaskReaping,
        "oom",
        "finish_task_reaping",
        format_file!("oom:finish_task_reaping"),
    ),
    ev(
        Event::StartTaskReaping,
        "oom",
        "start_task_reaping",
        format_file!("oom:start_task_reaping"),
    ),
    ev(
        Event::WakeReaper,
        "oom",
        "wake_reaper",
        format_file!("oom:wake_reaper"),
    ),
    ev(
        Event::MarkVictim,
        "oom",
        "mark_victim",
        format_file!("oom:mark_victim"),
    ),
    ev(
        Event::ReclaimRetryZone,
        "oom",
        "reclaim_retry_zone",
        format_file!("oom:reclaim_retry_zone"),
    ),
    ev(
        Event::OomScoreAdjUpdate,
        "oom",
        "oom_score_adj_update",
        format_file!("oom:oom_score_adj_update"),
    ),
    ev(
        Event::LruShrinkActive,
        "vmscan",
        "mm_vmscan_lru_shrink_active",
        format_file!("vmscan:mm_vmscan_lru_shrink_active"),
    ),
    ev(
        Event::LruShrinkInactive,
        "vmscan",
        "mm_vmscan_lru_shrink_inactive",
        format_file!("vmscan:mm_vmscan_lru_shrink_inactive"),
    ),
    ev(
        Event::WriteFolio,
        "vmscan",
        "mm_vmscan_write_folio",
        format_file!("vmscan:mm_vmscan_write_folio"),
    ),
    ev(
        Event::ShrinkSlabEnd,
        "vmscan",
        "mm_shrink_slab_end",
        format_file!("vmscan:mm_shrink_slab_end"),
    ),
    ev(
        Event::ShrinkSlabStart,
        "vmscan",
        "mm_shrink_slab_start",
        format_file!("vmscan:mm_shrink_slab_start"),
    ),
    ev(
        Event::DirectReclaimEnd,
        "vmscan",
        "mm_vmscan_direct_reclaim_end",
        format_file!("vmscan:mm_vmscan_direct_reclaim_end"),
    ),
    ev(
        Event::DirectReclaimBegin,
        "vmscan",
        "mm_vmscan_direct_reclaim_begin",
        format_file!("vmscan:mm_vmscan_direct_reclaim_begin"),
    ),
    ev(
        Event::WakeupKswapd,
        "vmscan",
        "mm_vmscan_wakeup_kswapd",
        format_file!("vmscan:mm_vmscan_wakeup_kswapd"),
    ),
    ev(
        Event::KswapdWake,
        "vmscan",
        "mm_vmscan_kswapd_wake",
        format_file!("vmscan:mm_vmscan_kswapd_wake"),
    ),
    ev(
        Event::KswapdSleep,
        "vmscan",
        "mm_vmscan_kswapd_sleep",
        format_file!("vmscan:mm_vmscan_kswapd_sleep"),
    ),
    ev(
        Event::MmPageAllocZoneLocked,
        "kmem",
        "mm_page_alloc_zone_locked",
        format_file!("kmem:mm_page_alloc_zone_locked"),
    ),
    ev(
        Event::MmPageAlloc,
        "kmem",
        "mm_page_alloc",
        format_file!("kmem:mm_page_alloc"),
    ),
    ev(
        Event::MmPageFree,
        "kmem",
        "mm_page_free",
        format_file!("kmem:mm_page_free"),
    ),
    ev(
        Event::KmemCacheFree,
        "kmem",
        "kmem_cache_free",
        format_file!("kmem:kmem_cache_free"),
    ),
    ev(Event::Kfree, "kmem", "kfree", format_file!("kmem:kfree")),
    ev(
        Event::Kmalloc,
        "kmem",
        "kmalloc",
        format_file!("kmem:kmalloc"),
    ),
    ev(
        Event::KmemCacheAlloc,
        "kmem",
        "kmem_cache_alloc",
        format_file!("kmem:kmem_cache_alloc"),
    ),
    ev(
        Event::MmPageAllocExtfrag,
        "kmem",
        "mm_page_alloc_extfrag",
        format_file!("kmem:mm_page_alloc_extfrag"),
    ),
    ev(
        Event::CompactionBegin,
        "compaction",
        "mm_compaction_begin",
        format_file!("compaction:mm_compaction_begin"),
    ),
    ev(
        Event::CompactionEnd,
        "compaction",
        "mm_compaction_end",
        format_file!("compaction:mm_compaction_end"),
    ),
    ev(
        Event::FolioWaitWriteback,
        "writeback",
        "folio_wait_writeback",
        format_file!("writeback:folio_wait_writeback"),
    ),
    ev(
        Event::WritebackDirtyFolio,
        "writeback",
        "writeback_dirty_folio",
        format_file!("writeback:writeback_dirty_folio"),
    ),
    ev(
        Event::Print,
        "ftrace",
        "print",
        format_file!("ftrace:print"),
    ),
];

const fn ev(
    event: Event,
    system: &'static str,
    name: &'static str,
    format: &'static str,
) -> EventInfo {
    EventInfo {
        event,
        system,
        name,
        format,
    }
}

impl Event {
    /// Its entry in [`EVENTS`].
    pub fn info(self) -> &'static EventInfo {
        &EVENTS[self as usize]
    }

    /// The event with id `id` (an entry's `event` field).
    pub fn from_id(id: u16) -> Option<Event> {
        EVENTS.get(usize::from(id)).map(|i| i.event)
    }

    /// True for the events `set_event` and `enable` take (all but
    /// ftrace:print, which trace_marker writes whenever tracing is on).
    pub fn enableable(self) -> bool {
        self != Event::Print
    }

    fn bit(self) -> u64 {
        1 << (self as u32)
    }
}

/// The events `available_events`, `set_event` and `events/` show.
pub fn enableable_events() -> impl Iterator<Item = &'static EventInfo> {
    EVENTS.iter().filter(|i| i.event.enableable())
}

/// The systems under `events/`, in the order of their first event.
pub fn systems() -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for info in enableable_events() {
        if !out.contains(&info.system) {
            out.push(info.system);
        }
    }
    out
}

/// One recorded event: 72 bytes, no heap. What the fields mean depends on
/// the event (see the `trace_*` functions and src/procfs/trace.rs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct TraceEntry {
    /// The simulated clock, ns since boot.
    pub ts: u64,
    /// Recording order since boot. The clock never goes back, so this is
    /// also time order: the rings merge by it, and a reader of `trace`
    /// continues from it.
    pub seq: u64,
    /// The task that caused it (0: no simulated task).
    pub pid: u32,
    /// [`Event`] id.
    pub event: u16,
    /// [`Ctx`]: the flag columns.
    pub ctx: u8,
    /// The CPU whose ring holds it.
    pub cpu: u8,
    /// The event's fields.
    pub args: [u64; 6],
}

impl TraceEntry {
    /// The event, if the id is known.
    pub fn kind(&self) -> Option<Event> {
        Event::from_id(self.event)
    }

    /// The flag columns.
    pub fn ctx(&self) -> Ctx {
        Ctx::from_u8(self.ctx)
    }

    /// True when the entry carries a string kept beside the rings.
    fn has_text(&self) -> bool {
        matches!(
            self.kind(),
            Some(Event::Print | Event::MarkVictim | Event::OomScoreAdjUpdate)
        )
    }
}

/// Default `buffer_size_kb` once expanded (ftrace's 1408 KiB per CPU).
pub const DEFAULT_BUFFER_KB: u64 = 1408;
/// Size the buffer shows before the first event is enabled (Linux
/// allocates a minimal ring until tracing is first used).
pub const UNEXPANDED_BUFFER_KB: u64 = 7;
/// Largest `buffer_size_kb` (per CPU) mmfs takes.
pub const MAX_BUFFER_KB: u64 = 65536;
/// `trace_marker` writes longer than this are cut (TRACE_MARKER_MAX_SIZE
/// less the header ftrace keeps in the same buffer page).
pub const MARKER_MAX: usize = 4096;

/// One CPU's ring of entries.
#[derive(Clone, Debug, Default)]
struct CpuRing {
    /// `cap` slots once the ring is first written (zeroed memory: the
    /// host backs it as it fills), empty before.
    buf: Vec<TraceEntry>,
    /// Index of the oldest entry.
    head: usize,
    /// Entries held.
    len: usize,
    /// Entries the ring holds at most.
    cap: usize,
    /// Entries written since the last clear (held + overwritten).
    written: u64,
}

impl CpuRing {
    fn oldest(&self) -> Option<&TraceEntry> {
        (self.len > 0).then(|| &self.buf[self.head])
    }

    /// The `i`th oldest entry (`i < len`).
    fn get(&self, i: usize) -> &TraceEntry {
        let mut at = self.head + i;
        if at >= self.cap {
            at -= self.cap;
        }
        &self.buf[at]
    }

    /// Add an entry; returns the one it overwrote, if the ring was full.
    #[inline]
    fn push(&mut self, e: TraceEntry) -> Option<TraceEntry> {
        if self.buf.len() != self.cap {
            self.buf = vec![TraceEntry::default(); self.cap];
        }
        self.written += 1;
        if self.len < self.cap {
            let mut at = self.head + self.len;
            if at >= self.cap {
                at -= self.cap;
            }
            self.buf[at] = e;
            self.len += 1;
            return None;
        }
        let old = std::mem::replace(&mut self.buf[self.head], e);
        self.head += 1;
        if self.head == self.cap {
            self.head = 0;
        }
        Some(old)
    }

    fn pop(&mut self) -> Option<TraceEntry> {
        let e = *self.oldest()?;
        self.head += 1;
        if self.head == self.cap {
            self.head = 0;
        }
        self.len -= 1;
        Some(e)
    }

    /// A new capacity; keeps the newest entries that fit and returns the
    /// ones dropped.
    fn resize(&mut self, cap: usize) -> Vec<TraceEntry> {
        let mut kept: Vec<TraceEntry> = (0..self.len).map(|i| *self.get(i)).collect();
        let dropped = kept.len().saturating_sub(cap);
        let gone: Vec<TraceEntry> = kept.drain(..dropped).collect();
        self.len = kept.len();
        self.head = 0;
        self.cap = cap;
        self.buf = if self.len > 0 {
            kept.resize(cap, TraceEntry::default());
            kept
        } else {
            Vec::new()
        };
        gone
    }
}

/// The tracing state: what is enabled, the rings, and the strings some
/// entries carry.
#[derive(Clone, Debug)]
pub struct Trace {
    /// Enabled events (bit = [`Event`] id), whether or not tracing is on.
    enabled: u64,
    /// What tracepoints test: `enabled`, or 0 while `tracing_on` is 0.
    active: u64,
    /// `tracing_on`.
    tracing_on: bool,
    /// `buffer_size_kb` per CPU.
    buffer_kb: u64,
    /// False until the first event is enabled or a size is set.
    expanded: bool,
    rings: [CpuRing; NR_CPUS as usize],
    /// Next sequence number.
    seq: u64,
    /// Texts of entries that carry one (markers, comms), by sequence.
    texts: BTreeMap<u64, Box<str>>,
    /// saved_cmdlines: the comm of each task that ran while tracing.
    cmdlines: BTreeMap<u32, Box<str>>,
    /// Slab cache names, interned: entries hold an index.
    names: Vec<Box<str>>,
    /// Cache id → index into `names` (u32::MAX: none yet).
    cache_names: Vec<u32>,
    /// Bumped whenever entries are added or taken (readers wait on it).
    generation: u64,
    /// The priority of the reclaim pass running (vmscan events print it;
    /// shrink_node sets it, DEF_PRIORITY outside any pass).
    pub reclaim_priority: u64,
}

impl Default for Trace {
    fn default() -> Self {
        Trace {
            enabled: 0,
            active: 0,
            tracing_on: true,
            buffer_kb: DEFAULT_BUFFER_KB,
            expanded: false,
            rings: Default::default(),
            seq: 0,
            texts: BTreeMap::new(),
            cmdlines: BTreeMap::new(),
            names: Vec::new(),
            cache_names: Vec::new(),
            generation: 0,
            reclaim_priority: 12,
        }
    }
}

fn ring_cap(kb: u64) -> usize {
    usize::try_from(kb * 1024 / std::mem::size_of::<TraceEntry>() as u64)
        .unwrap_or(usize::MAX)
        .max(1)
}

impl Trace {
    /// True when `event` is to be recorded now: one load and one branch
    /// at every tracepoint.
    #[inline(always)]
    pub fn on(&self, event: Event) -> bool {
        self.active & event.bit() != 0
    }

    /// True when any event is being recorded.
    #[inline(always)]
    pub fn any_on(&self) -> bool {
        self.active != 0
    }

    /// Is `event` enabled (its `enable` file)?
    pub fn is_enabled(&self, event: Event) -> bool {
        self.enabled & event.bit() != 0
    }

    /// Enable or disable one event. The first enable expands the buffer.
    pub fn set_enabled(&mut self, event: Event, on: bool) {
        if !event.enableable() {
            return;
        }
        if on {
            self.enabled |= event.bit();
            self.expand();
        } else {
            self.enabled &= !event.bit();
        }
        self.update_active();
    }

    /// Disable every event (`echo > set_event`).
    pub fn disable_all(&mut self) {
        self.enabled = 0;
        self.update_active();
    }

    /// `tracing_on`.
    pub fn tracing_on(&self) -> bool {
        self.tracing_on
    }

    /// Write `tracing_on`: recording stops or resumes; enabled events stay.
    pub fn set_tracing_on(&mut self, on: bool) {
        self.tracing_on = on;
        self.update_active();
    }

    fn update_active(&mut self) {
        self.active = if self.tracing_on { self.enabled } else { 0 };
    }

    fn expand(&mut self) {
        if !self.expanded {
            self.expanded = true;
            let cap = ring_cap(self.buffer_kb);
            for ring in &mut self.rings {
                ring.cap = cap;
            }
        }
    }

    /// `buffer_size_kb` as it reads: `7 (expanded: 1408)` until tracing is
    /// first used, as on a freshly booted Linux.
    pub fn buffer_size_text(&self) -> String {
        if self.expanded {
            format!("{}\n", self.buffer_kb)
        } else {
            format!("{UNEXPANDED_BUFFER_KB} (expanded: {})\n", self.buffer_kb)
        }
    }

    /// `buffer_total_size_kb`: every CPU's.
    pub fn buffer_total_text(&self) -> String {
        if self.expanded {
            format!("{}\n", self.buffer_kb * NR_CPUS)
        } else {
            format!(
                "{} (expanded: {})\n",
                UNEXPANDED_BUFFER_KB * NR_CPUS,
                self.buffer_kb * NR_CPUS
            )
        }
    }

    /// The per-CPU size, KiB.
    pub fn buffer_kb(&self) -> u64 {
        self.buffer_kb
    }

    /// Set the per-CPU size (1..=[`MAX_BUFFER_KB`], checked by the caller):
    /// each ring keeps its newest entries that fit.
    pub fn set_buffer_kb(&mut self, kb: u64) {
        self.buffer_kb = kb.clamp(1, MAX_BUFFER_KB);
        self.expanded = true;
        let cap = ring_cap(self.buffer_kb);
        let mut gone = Vec::new();
        for ring in &mut self.rings {
            gone.extend(ring.resize(cap));
        }
        for e in gone {
            self.forget(&e);
        }
        self.generation += 1;
    }

    /// `echo > trace`: empty the rings and reset the counts.
    pub fn clear(&mut self) {
        for ring in &mut self.rings {
            ring.head = 0;
            ring.len = 0;
            ring.written = 0;
        }
        self.texts.clear();
        self.generation += 1;
    }

    /// (entries in the buffers, entries written since the last clear).
    pub fn counts(&self) -> (u64, u64) {
        self.rings.iter().fold((0, 0), |(held, written), r| {
            (held + r.len as u64, written + r.written)
        })
    }

    /// Changes whenever entries are added or consumed.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// True when no entry is held.
    pub fn is_empty(&self) -> bool {
        self.rings.iter().all(|r| r.len == 0)
    }

    /// The text kept for an entry (marker text, a comm).
    pub fn text(&self, e: &TraceEntry) -> &str {
        self.texts.get(&e.seq).map_or("", |t| t)
    }

    /// The comm saved for `pid`, if it ran while tracing.
    pub fn saved_comm(&self, pid: u32) -> Option<&str> {
        self.cmdlines.get(&pid).map(|c| &**c)
    }

    /// An interned cache name.
    pub fn name(&self, index: u64) -> &str {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.names.get(i))
            .map_or("", |n| n)
    }

    /// Remember `comm` as the name of `pid` (saved_cmdlines).
    pub fn save_cmdline(&mut self, pid: u32, comm: &str) {
        if self.cmdlines.get(&pid).is_none_or(|c| &**c != comm) {
            self.cmdlines.insert(pid, comm.into());
        }
    }

    /// The interned index of a cache's name.
    fn intern_cache(&mut self, cache: u16, name: &str) -> u64 {
        let slot = usize::from(cache);
        if self.cache_names.len() <= slot {
            self.cache_names.resize(slot + 1, u32::MAX);
        }
        let current = self.cache_names[slot];
        if let Some(n) = self.names.get(current as usize)
            && &**n == name
        {
            return u64::from(current);
        }
        // A new cache, or a cache id reused under another name.
        let index = match self.names.iter().position(|n| &**n == name) {
            Some(i) => i,
            None => {
                self.names.push(name.into());
                self.names.len() - 1
            }
        };
        self.cache_names[slot] = index as u32;
        index as u64
    }

    /// Every entry held, oldest first across the CPUs (merged by
    /// recording order, which is time order).
    pub fn entries(&self) -> impl Iterator<Item = &TraceEntry> {
        self.entries_from(0)
    }

    /// The entries recorded as number `seq` or later that are still held,
    /// oldest first: where a reader of `trace` continues.
    pub fn entries_from(&self, seq: u64) -> impl Iterator<Item = &TraceEntry> {
        // Each ring is in recording order: find its first such entry.
        let mut next = [0usize; NR_CPUS as usize];
        for (cpu, ring) in self.rings.iter().enumerate() {
            let (mut lo, mut hi) = (0, ring.len);
            while lo < hi {
                let mid = (lo + hi) / 2;
                if ring.get(mid).seq < seq {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            next[cpu] = lo;
        }
        std::iter::from_fn(move || {
            let mut best: Option<usize> = None;
            for (cpu, ring) in self.rings.iter().enumerate() {
                if next[cpu] >= ring.len {
                    continue;
                }
                let e = ring.get(next[cpu]);
                if best.is_none_or(|b| before(e, self.rings[b].get(next[b]))) {
                    best = Some(cpu);
                }
            }
            let cpu = best?;
            let e = self.rings[cpu].get(next[cpu]);
            next[cpu] += 1;
            Some(e)
        })
    }

    /// Take the oldest entry (trace_pipe's consuming read), with its text.
    pub fn pop(&mut self) -> Option<(TraceEntry, Option<Box<str>>)> {
        let mut best: Option<usize> = None;
        for (cpu, ring) in self.rings.iter().enumerate() {
            if let Some(e) = ring.oldest()
                && best.is_none_or(|b| self.rings[b].oldest().is_none_or(|other| before(e, other)))
            {
                best = Some(cpu);
            }
        }
        let e = self.rings[best?].pop()?;
        self.generation += 1;
        let text = if e.has_text() {
            self.texts.remove(&e.seq)
        } else {
            None
        };
        Some((e, text))
    }

    fn forget(&mut self, e: &TraceEntry) {
        if e.has_text() {
            self.texts.remove(&e.seq);
        }
    }

    /// Record an entry in `cpu`'s ring.
    #[inline]
    fn record(&mut self, e: TraceEntry) {
        let cpu = e.cpu as usize % self.rings.len();
        if self.rings[cpu].cap == 0 {
            self.expand();
        }
        if let Some(old) = self.rings[cpu].push(e) {
            self.forget(&old);
        }
        self.generation += 1;
    }

    fn next_seq(&mut self) -> u64 {
        let seq = self.seq;
        self.seq = seq + 1;
        seq
    }
}

/// Ring order: recorded first (and so never later in time).
fn before(a: &TraceEntry, b: &TraceEntry) -> bool {
    a.seq < b.seq
}

/// GFP bits (include/linux/gfp_types.h), as the entries store them.
pub mod gfp {
    /// __GFP_DMA
    pub const DMA: u64 = 1 << 0;
    /// __GFP_HIGHMEM
    pub const HIGHMEM: u64 = 1 << 1;
    /// __GFP_DMA32
    pub const DMA32: u64 = 1 << 2;
    /// __GFP_MOVABLE
    pub const MOVABLE: u64 = 1 << 3;
    /// __GFP_RECLAIMABLE
    pub const RECLAIMABLE: u64 = 1 << 4;
    /// __GFP_HIGH
    pub const HIGH: u64 = 1 << 5;
    /// __GFP_IO
    pub const IO: u64 = 1 << 6;
    /// __GFP_FS
    pub const FS: u64 = 1 << 7;
    /// __GFP_ZERO
    pub const ZERO: u64 = 1 << 8;
    /// __GFP_DIRECT_RECLAIM
    pub const DIRECT_RECLAIM: u64 = 1 << 10;
    /// __GFP_KSWAPD_RECLAIM
    pub const KSWAPD_RECLAIM: u64 = 1 << 11;
    /// __GFP_WRITE
    pub const WRITE: u64 = 1 << 12;
    /// __GFP_NOWARN
    pub const NOWARN: u64 = 1 << 13;
    /// __GFP_RETRY_MAYFAIL
    pub const RETRY_MAYFAIL: u64 = 1 << 14;
    /// __GFP_NOFAIL
    pub const NOFAIL: u64 = 1 << 15;
    /// __GFP_NORETRY
    pub const NORETRY: u64 = 1 << 16;
    /// __GFP_MEMALLOC
    pub const MEMALLOC: u64 = 1 << 17;
    /// __GFP_COMP
    pub const COMP: u64 = 1 << 18;
    /// __GFP_NOMEMALLOC
    pub const NOMEMALLOC: u64 = 1 << 19;
    /// __GFP_HARDWALL
    pub const HARDWALL: u64 = 1 << 20;
    /// __GFP_THISNODE
    pub const THISNODE: u64 = 1 << 21;
    /// __GFP_ACCOUNT
    pub const ACCOUNT: u64 = 1 << 22;
    /// __GFP_ZEROTAGS
    pub const ZEROTAGS: u64 = 1 << 23;
    /// __GFP_NO_OBJ_EXT
    pub const NO_OBJ_EXT: u64 = 1 << 24;
    /// __GFP_RECLAIM
    pub const RECLAIM: u64 = DIRECT_RECLAIM | KSWAPD_RECLAIM;
    /// GFP_KERNEL
    pub const KERNEL: u64 = RECLAIM | IO | FS;
    /// GFP_KERNEL_ACCOUNT
    pub const KERNEL_ACCOUNT: u64 = KERNEL | ACCOUNT;
    /// GFP_NOFS
    pub const NOFS: u64 = RECLAIM | IO;
    /// GFP_NOIO
    pub const NOIO: u64 = RECLAIM;
    /// GFP_ATOMIC
    pub const ATOMIC: u64 = HIGH | KSWAPD_RECLAIM;
    /// GFP_NOWAIT
    pub const NOWAIT: u64 = KSWAPD_RECLAIM | NOWARN;
    /// GFP_USER
    pub const USER: u64 = RECLAIM | IO | FS | HARDWALL;
    /// GFP_HIGHUSER
    pub const HIGHUSER: u64 = USER | HIGHMEM;
    /// GFP_HIGHUSER_MOVABLE
    pub const HIGHUSER_MOVABLE: u64 = HIGHUSER | MOVABLE;
    /// GFP_TRANSHUGE_LIGHT
    pub const TRANSHUGE_LIGHT: u64 = (HIGHUSER_MOVABLE | COMP | NOMEMALLOC | NOWARN) & !RECLAIM;
    /// GFP_TRANSHUGE
    pub const TRANSHUGE: u64 = TRANSHUGE_LIGHT | DIRECT_RECLAIM;
}

/// The GFP flags Linux passes for an allocation of this kind and order
/// (what `mm_page_alloc` prints).
pub fn gfp_of(kind: PageKind, order: Order) -> u64 {
    let comp = if order.0 > 0 { gfp::COMP } else { 0 };
    match kind {
        // vma_alloc_folio / swapin / the page cache: folios are compound.
        PageKind::UserAnon | PageKind::SwapCache | PageKind::PageCache | PageKind::Shmem => {
            gfp::HIGHUSER_MOVABLE | gfp::COMP
        }
        // GFP_PGTABLE_USER; pagetable_alloc adds __GFP_COMP.
        PageKind::PageTable => gfp::KERNEL_ACCOUNT | gfp::ZERO | gfp::COMP,
        // THREADINFO_GFP.
        PageKind::KernelStack => gfp::KERNEL_ACCOUNT | gfp::ZERO | comp,
        _ => gfp::KERNEL | comp,
    }
}

/// `gfp_migratetype`.
pub fn gfp_migratetype(gfp: u64) -> u64 {
    if gfp & gfp::MOVABLE != 0 {
        1
    } else if gfp & gfp::RECLAIMABLE != 0 {
        2
    } else {
        0
    }
}

/// Reclaim flags of the vmscan events (`trace_reclaim_flags`).
pub mod reclaim_flags {
    /// RECLAIM_WB_ANON
    pub const ANON: u64 = 0x0001;
    /// RECLAIM_WB_FILE
    pub const FILE: u64 = 0x0002;
    /// RECLAIM_WB_SYNC
    pub const SYNC: u64 = 0x0004;
    /// RECLAIM_WB_ASYNC
    pub const ASYNC: u64 = 0x0008;
    /// RECLAIM_WB_MIXED
    pub const MIXED: u64 = 0x0010;

    /// The flags of a list: file or anon, asynchronous write-back.
    pub fn of(file: bool) -> u64 {
        (if file { FILE } else { ANON }) | ASYNC
    }
}

/// x86 page-fault error code bits (X86_PF_*).
pub mod pf {
    /// The page was present (a protection fault).
    pub const PROT: u64 = 1 << 0;
    /// A write.
    pub const WRITE: u64 = 1 << 1;
    /// From user mode.
    pub const USER: u64 = 1 << 2;
}

/// Direct-map address of a pfn (x86_64 page_offset_base, no KASLR).
pub const PAGE_OFFSET: u64 = 0xffff_8880_0000_0000;

/// Pack two u32 values into one field word.
#[inline(always)]
pub fn pack(lo: u64, hi: u64) -> u64 {
    (lo & 0xffff_ffff) | (hi << 32)
}

/// The low half of a packed word.
#[inline(always)]
pub fn lo(w: u64) -> u64 {
    w & 0xffff_ffff
}

/// The high half of a packed word.
#[inline(always)]
pub fn hi(w: u64) -> u64 {
    w >> 32
}

/// Fields of `mm_vmscan_lru_shrink_inactive`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShrinkInactive {
    /// Pages scanned.
    pub nr_scanned: u64,
    /// Pages freed.
    pub nr_reclaimed: u64,
    /// Dirty pages met.
    pub nr_dirty: u64,
    /// Pages under write-back met.
    pub nr_writeback: u64,
    /// Anon pages activated.
    pub nr_activate_anon: u64,
    /// File pages activated.
    pub nr_activate_file: u64,
    /// Referenced pages kept on the inactive list.
    pub nr_ref_keep: u64,
    /// Pages that could not be unmapped.
    pub nr_unmap_fail: u64,
    /// Scan priority.
    pub priority: u64,
    /// File or anon list.
    pub file: bool,
}

/// Fields of `mm_vmscan_lru_shrink_active`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShrinkActive {
    /// Pages taken off the active list.
    pub nr_taken: u64,
    /// Pages put back on it.
    pub nr_active: u64,
    /// Pages moved to the inactive list.
    pub nr_deactivated: u64,
    /// Pages found referenced.
    pub nr_referenced: u64,
    /// Scan priority.
    pub priority: u64,
    /// File or anon list.
    pub file: bool,
}

impl Kernel {
    /// Record `event` for the running task (the CPU it runs on, the clock
    /// now). The caller has checked `self.trace.on(event)`.
    #[inline]
    pub fn trace_record(&mut self, event: Event, ctx: Ctx, args: [u64; 6]) {
        let pid = self.running_task();
        self.trace_record_as(pid, event, ctx, args);
    }

    /// Record `event` on behalf of task `pid` (a kernel thread doing work
    /// the simulation runs inline, such as the OOM reaper).
    #[inline]
    pub fn trace_record_as(&mut self, pid: Option<Pid>, event: Event, ctx: Ctx, args: [u64; 6]) {
        let seq = self.trace.next_seq();
        let e = TraceEntry {
            ts: self.clock_ns,
            seq,
            pid: pid.map_or(0, |p| p.0),
            event: event as u16,
            ctx: ctx as u8,
            cpu: task_cpu(pid) as u8,
            args,
        };
        self.trace.record(e);
    }

    /// Record an entry that carries a text (kept beside the ring).
    fn trace_record_text(
        &mut self,
        pid: Option<Pid>,
        event: Event,
        ctx: Ctx,
        args: [u64; 6],
        text: &str,
    ) {
        let seq = self.trace.seq;
        self.trace_record_as(pid, event, ctx, args);
        self.trace.texts.insert(seq, text.into());
    }

    /// saved_cmdlines: note the comm of the task switched to, so lines
    /// name it after it has gone (Linux records it at sched_switch).
    #[inline]
    pub fn trace_save_cmdline(&mut self, pid: Option<Pid>) {
        if !self.trace.any_on() {
            return;
        }
        let Some(pid) = pid else { return };
        let comm = match self.procs.by_pid(pid) {
            Some(p) => p.comm.as_str(),
            None => match self.kthreads.get(pid) {
                Some(t) => t.comm.as_str(),
                None => return,
            },
        };
        self.trace.save_cmdline(pid.0, comm);
    }

    /// `trace_marker`: a `tracing_mark_write: TEXT` line (ftrace:print),
    /// recorded whenever tracing is on; the text is cut at
    /// [`MARKER_MAX`] bytes and ends without its newline.
    pub fn trace_marker(&mut self, text: &str) {
        if !self.trace.tracing_on {
            return;
        }
        let mut end = text.len().min(MARKER_MAX);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let text = text[..end].strip_suffix('\n').unwrap_or(&text[..end]);
        let pid = self.running_task();
        self.trace_record_text(pid, Event::Print, Ctx::Preempt1, [0; 6], text);
    }

    /// kmem:mm_page_alloc (with mm_page_alloc_zone_locked before it: every
    /// simulated allocation takes its block from the buddy lists).
    #[inline]
    pub fn trace_mm_page_alloc(&mut self, pfn: Pfn, order: Order, kind: PageKind) {
        if self.trace.active & (Event::MmPageAlloc.bit() | Event::MmPageAllocZoneLocked.bit()) == 0
        {
            return;
        }
        let gfp = gfp_of(kind, order);
        let mt = gfp_migratetype(gfp);
        let order = u64::from(order.0);
        if self.trace.on(Event::MmPageAllocZoneLocked) {
            // __rmqueue_smallest: percpu_refill when the order is one the
            // per-CPU lists hold (refilled under the zone lock, d..3.).
            let pcp = order <= 3;
            let ctx = if pcp { Ctx::Locked3 } else { Ctx::Locked1 };
            let args = [pfn.0, order, mt, u64::from(pcp), 0, 0];
            self.trace_record(Event::MmPageAllocZoneLocked, ctx, args);
        }
        if self.trace.on(Event::MmPageAlloc) {
            self.trace_record(Event::MmPageAlloc, Ctx::Task, [pfn.0, order, mt, gfp, 0, 0]);
        }
    }

    /// kmem:mm_page_alloc_extfrag: an allocation fell back to another
    /// migrate type's free list (`__rmqueue_claim` / `__rmqueue_steal`).
    pub fn trace_mm_page_alloc_extfrag(&mut self, e: super::page_alloc::ExtfragEvent) {
        if self.trace.on(Event::MmPageAllocExtfrag) {
            let args = [
                e.pfn.0,
                u64::from(e.alloc_order),
                u64::from(e.fallback_order),
                u64::from(e.alloc_mt),
                u64::from(e.fallback_mt),
                u64::from(e.change_ownership),
            ];
            self.trace_record(Event::MmPageAllocExtfrag, Ctx::Locked1, args);
        }
    }

    /// compaction:mm_compaction_begin / mm_compaction_end: zone start,
    /// migrate and free scanner positions, zone end, sync mode and (end)
    /// the result's `enum compact_result` value.
    pub fn trace_compaction(&mut self, end: Option<u64>, pfns: [u64; 4], sync: bool) {
        let event = if end.is_some() {
            Event::CompactionEnd
        } else {
            Event::CompactionBegin
        };
        if self.trace.on(event) {
            let args = [
                pfns[0],
                pfns[1],
                pfns[2],
                pfns[3],
                u64::from(sync),
                end.unwrap_or(0),
            ];
            self.trace_record(event, Ctx::Task, args);
        }
    }

    /// kmem:mm_page_free.
    #[inline]
    pub fn trace_mm_page_free(&mut self, pfn: Pfn, order: Order) {
        if self.trace.on(Event::MmPageFree) {
            let args = [pfn.0, u64::from(order.0), 0, 0, 0, 0];
            self.trace_record(Event::MmPageFree, Ctx::Task, args);
        }
    }

    /// `__free_pages`: give a block back to the buddy allocator, traced.
    pub fn free_pages(&mut self, pfn: Pfn, order: Order) -> super::error::MmResult<()> {
        self.page_alloc.free(pfn, order)?;
        self.trace_mm_page_free(pfn, order);
        Ok(())
    }

    /// kmem:kmem_cache_alloc.
    #[inline]
    pub fn trace_kmem_cache_alloc(&mut self, obj: SlabObject) {
        if self.trace.on(Event::KmemCacheAlloc) {
            self.trace_slab_object(Event::KmemCacheAlloc, obj, None);
        }
    }

    /// kmem:kmem_cache_free (before the object goes).
    #[inline]
    pub fn trace_kmem_cache_free(&mut self, obj: SlabObject) {
        if self.trace.on(Event::KmemCacheFree) {
            self.trace_slab_object(Event::KmemCacheFree, obj, None);
        }
    }

    /// kmem:kmalloc of `size` bytes from a kmalloc-N cache.
    #[inline]
    pub fn trace_kmalloc(&mut self, size: u64, obj: SlabObject) {
        if self.trace.on(Event::Kmalloc) {
            self.trace_slab_object(Event::Kmalloc, obj, Some(size));
        }
    }

    /// kmem:kfree of a kmalloc-N object (before it goes).
    #[inline]
    pub fn trace_kfree(&mut self, obj: SlabObject) {
        if self.trace.on(Event::Kfree) {
            self.trace_slab_object(Event::Kfree, obj, None);
        }
    }

    /// kmem:kmalloc / kmem:kfree of a kmalloc_large block.
    #[inline]
    pub fn trace_kmalloc_large(&mut self, alloc: Option<u64>, pfn: Pfn, order: Order) {
        let event = if alloc.is_some() {
            Event::Kmalloc
        } else {
            Event::Kfree
        };
        if self.trace.on(event) {
            let ptr = PAGE_OFFSET + (pfn.0 << 12);
            let size = alloc.unwrap_or(0);
            let bytes = order.pages() << 12;
            let args = [ptr, size, bytes, gfp::KERNEL | gfp::COMP, u64::MAX, 0];
            self.trace_record(event, Ctx::Task, args);
        }
    }

    /// The fields of the four slab events: ptr, bytes_req, bytes_alloc,
    /// gfp, name index.
    fn trace_slab_object(&mut self, event: Event, obj: SlabObject, req: Option<u64>) {
        let Some(c) = self.slab.cache(obj.cache) else {
            return;
        };
        let size = u64::from(c.size());
        let object_size = u64::from(c.object_size());
        let slab_pfn = c.slabs.get(obj.slab as usize).map_or(0, |s| s.pfn.0);
        let name = self.trace.intern_cache(obj.cache.0, c.name());
        let ptr = PAGE_OFFSET + (slab_pfn << 12) + u64::from(obj.index) * size;
        let args = [ptr, req.unwrap_or(object_size), size, gfp::KERNEL, name, 0];
        self.trace_record(event, Ctx::Task, args);
    }

    /// exceptions:page_fault_user: the trap of a user access at `vpn`.
    #[inline]
    pub fn trace_page_fault_user(&mut self, user: bool, vpn: u64, error_code: u64) {
        // A fault outside any running task is the kernel setting up a new
        // process's stack (get_user_pages, no trap): not traced.
        if self.trace.on(Event::PageFaultUser) && user && self.running_task().is_some() {
            let args = [vpn << 12, 0, error_code | pf::USER, 0, 0, 0];
            self.trace_record(Event::PageFaultUser, Ctx::IrqsOff, args);
        }
    }

    /// filemap:mm_filemap_add_to_page_cache / delete_from_page_cache.
    #[inline]
    pub fn trace_filemap(&mut self, add: bool, ino: u32, pfn: Pfn, index: u64) {
        let event = if add {
            Event::FilemapAdd
        } else {
            Event::FilemapDelete
        };
        if self.trace.on(event) {
            // /dev/sda1: 8:1 as the kernel's dev_t (major << 20 | minor).
            let dev = (8 << 20) | 1;
            let ctx = if add { Ctx::Task } else { Ctx::Locked2 };
            self.trace_record(event, ctx, [dev, u64::from(ino), pfn.0, index, 0, 0]);
        }
    }

    /// writeback:writeback_dirty_folio (`folio_account_dirtied`, under
    /// the i_pages lock: `d..1.`) and writeback:folio_wait_writeback (a
    /// task waiting for PG_writeback): page `index` of `ino` on the bdi
    /// of /dev/sda, 8:0.
    pub fn trace_writeback_folio(&mut self, dirty: bool, ino: u32, index: u64) {
        let event = if dirty {
            Event::WritebackDirtyFolio
        } else {
            Event::FolioWaitWriteback
        };
        if self.trace.on(event) {
            let ctx = if dirty { Ctx::Locked1 } else { Ctx::Task };
            self.trace_record(event, ctx, [8, 0, u64::from(ino), index, 0, 0]);
        }
    }

    /// vmscan:mm_vmscan_wakeup_kswapd.
    #[inline]
    pub fn trace_wakeup_kswapd(&mut self, order: u64, gfp_flags: u64) {
        if self.trace.on(Event::WakeupKswapd) {
            self.trace_record(
                Event::WakeupKswapd,
                Ctx::Task,
                [0, order, gfp_flags, 0, 0, 0],
            );
        }
    }

    /// vmscan:mm_vmscan_kswapd_wake, by kswapd0.
    #[inline]
    pub fn trace_kswapd_wake(&mut self, order: u64) {
        // A run the wall clock cut short goes on: kswapd did not sleep.
        if self.trace.on(Event::KswapdWake) && !self.lru.kswapd_running {
            let pid = Some(self.kthreads.kswapd);
            self.trace_record_as(pid, Event::KswapdWake, Ctx::Task, [0, order, 0, 0, 0, 0]);
        }
    }

    /// vmscan:mm_vmscan_kswapd_sleep, by kswapd0.
    #[inline]
    pub fn trace_kswapd_sleep(&mut self) {
        if self.trace.on(Event::KswapdSleep) {
            let pid = Some(self.kthreads.kswapd);
            self.trace_record_as(pid, Event::KswapdSleep, Ctx::Task, [0; 6]);
        }
    }

    /// vmscan:mm_vmscan_direct_reclaim_begin.
    #[inline]
    pub fn trace_direct_reclaim_begin(&mut self, order: u64, gfp_flags: u64) {
        if self.trace.on(Event::DirectReclaimBegin) {
            let args = [order, gfp_flags, 0, 0, 0, 0];
            self.trace_record(Event::DirectReclaimBegin, Ctx::Task, args);
        }
    }

    /// vmscan:mm_vmscan_direct_reclaim_end.
    #[inline]
    pub fn trace_direct_reclaim_end(&mut self, nr_reclaimed: u64) {
        if self.trace.on(Event::DirectReclaimEnd) {
            let args = [nr_reclaimed, 0, 0, 0, 0, 0];
            self.trace_record(Event::DirectReclaimEnd, Ctx::Task, args);
        }
    }

    /// vmscan:mm_vmscan_lru_shrink_inactive.
    #[inline]
    pub fn trace_lru_shrink_inactive(&mut self, s: &ShrinkInactive) {
        if self.trace.on(Event::LruShrinkInactive) {
            let args = [
                pack(s.nr_scanned, s.nr_reclaimed),
                pack(s.nr_dirty, s.nr_writeback),
                pack(s.nr_activate_anon, s.nr_activate_file),
                pack(s.nr_ref_keep, s.nr_unmap_fail),
                pack(s.priority, reclaim_flags::of(s.file)),
                0,
            ];
            self.trace_record(Event::LruShrinkInactive, Ctx::Task, args);
        }
    }

    /// vmscan:mm_vmscan_lru_shrink_active.
    #[inline]
    pub fn trace_lru_shrink_active(&mut self, s: &ShrinkActive) {
        if self.trace.on(Event::LruShrinkActive) {
            let args = [
                pack(s.nr_taken, s.nr_active),
                pack(s.nr_deactivated, s.nr_referenced),
                pack(s.priority, reclaim_flags::of(s.file)),
                0,
                0,
                0,
            ];
            self.trace_record(Event::LruShrinkActive, Ctx::Task, args);
        }
    }

    /// mm_vmscan_lru_shrink_active from what one pass over an active list
    /// did (called at its end).
    #[inline]
    pub fn trace_shrink_active(&mut self, scanned: u64, deactivated: u64, file: bool) {
        if self.trace.on(Event::LruShrinkActive) {
            let s = ShrinkActive {
                nr_taken: scanned,
                nr_active: scanned - deactivated,
                nr_deactivated: deactivated,
                nr_referenced: scanned - deactivated,
                priority: self.trace.reclaim_priority,
                file,
            };
            self.trace_lru_shrink_active(&s);
        }
    }

    /// mm_vmscan_lru_shrink_inactive from what one pass over an inactive
    /// list did (called at its end).
    #[inline]
    pub fn trace_shrink_inactive(
        &mut self,
        r: &super::vmscan::ReclaimResult,
        activated: u64,
        ref_keep: u64,
        unmap_fail: u64,
        file: bool,
    ) {
        if self.trace.on(Event::LruShrinkInactive) {
            let (anon, files) = if file { (0, activated) } else { (activated, 0) };
            let s = ShrinkInactive {
                nr_scanned: r.scanned,
                nr_reclaimed: r.reclaimed,
                nr_activate_anon: anon,
                nr_activate_file: files,
                nr_ref_keep: ref_keep,
                nr_unmap_fail: unmap_fail,
                priority: self.trace.reclaim_priority,
                file,
                ..ShrinkInactive::default()
            };
            self.trace_lru_shrink_inactive(&s);
        }
    }

    /// vmscan:mm_vmscan_write_folio: reclaim writes a page out.
    #[inline]
    pub fn trace_write_folio(&mut self, pfn: Pfn, file: bool) {
        if self.trace.on(Event::WriteFolio) {
            let args = [pfn.0, reclaim_flags::of(file), 0, 0, 0, 0];
            self.trace_record(Event::WriteFolio, Ctx::Task, args);
        }
    }

    /// vmscan:mm_shrink_slab_start: the dentry/inode shrinker
    /// (super_cache_scan) is asked for `nr` of `cache_items` objects.
    #[inline]
    pub fn trace_shrink_slab_start(&mut self, nr: u64, cache_items: u64, priority: u64) {
        if self.trace.on(Event::ShrinkSlabStart) {
            // Nothing deferred from earlier calls: delta and total_scan
            // are this call's request.
            let args = [0, gfp::KERNEL, cache_items, nr, nr, priority];
            self.trace_record(Event::ShrinkSlabStart, Ctx::Task, args);
        }
    }

    /// vmscan:mm_shrink_slab_end: it freed `freed`.
    #[inline]
    pub fn trace_shrink_slab_end(&mut self, unused: u64, total_scan: u64, freed: u64) {
        if self.trace.on(Event::ShrinkSlabEnd) {
            let args = [unused, 0, total_scan, freed, 0, 0];
            self.trace_record(Event::ShrinkSlabEnd, Ctx::Task, args);
        }
    }

    /// oom:reclaim_retry_zone (`should_reclaim_retry`, per zone).
    #[inline]
    #[allow(clippy::too_many_arguments)]
    pub fn trace_reclaim_retry_zone(
        &mut self,
        zone: usize,
        order: u64,
        reclaimable: u64,
        available: u64,
        min_wmark: u64,
        no_progress_loops: u64,
        wmark_check: bool,
    ) {
        if self.trace.on(Event::ReclaimRetryZone) {
            let args = [
                zone as u64,
                order,
                reclaimable,
                available,
                min_wmark,
                pack(no_progress_loops, u64::from(wmark_check)),
            ];
            self.trace_record(Event::ReclaimRetryZone, Ctx::Task, args);
        }
    }

    /// oom:mark_victim: the OOM killer chose `v`.
    pub fn trace_mark_victim(&mut self, v: &super::oom_kill::OomCandidate) {
        if self.trace.on(Event::MarkVictim) {
            let args = [
                u64::from(v.pid.0),
                v.total_vm_pages * 4,
                v.rss_pages * 4,
                // file-rss and shmem-rss in kB share a field (each < 2^32
                // kB: 4 TiB, past the largest machine).
                (v.file_rss_pages * 4) | ((v.shmem_rss_pages * 4) << 32),
                v.pgtable_pages * 4,
                v.oom_score_adj as u64,
            ];
            let pid = self.running_task();
            self.trace_record_text(pid, Event::MarkVictim, Ctx::Task, args, &v.comm);
        }
    }

    /// oom:wake_reaper, oom:start_task_reaping, oom:finish_task_reaping
    /// for victim `pid`; the reaping ones by oom_reaper.
    #[inline]
    pub fn trace_oom_reaper(&mut self, event: Event, pid: Pid) {
        if self.trace.on(event) {
            let task = match event {
                Event::WakeReaper => self.running_task(),
                _ => Some(self.kthreads.oom_reaper),
            };
            let args = [u64::from(pid.0), 0, 0, 0, 0, 0];
            self.trace_record_as(task, event, Ctx::Task, args);
        }
    }

    /// oom:oom_score_adj_update: the process in `slot` has a new value.
    pub fn trace_oom_score_adj_update(&mut self, slot: super::types::MmSlot) {
        if self.trace.on(Event::OomScoreAdjUpdate) {
            let Some(p) = self.procs.get(slot) else {
                return;
            };
            let args = [u64::from(p.pid.0), p.oom_score_adj as u64, 0, 0, 0, 0];
            let comm = p.comm.clone();
            let task = self.running_task();
            self.trace_record_text(task, Event::OomScoreAdjUpdate, Ctx::Task, args, &comm);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(ts: u64, seq: u64, cpu: u8) -> TraceEntry {
        TraceEntry {
            ts,
            seq,
            cpu,
            event: Event::MmPageFree as u16,
            ..TraceEntry::default()
        }
    }

    #[test]
    fn entries_are_72_bytes() {
        assert_eq!(std::mem::size_of::<TraceEntry>(), 72);
    }

    #[test]
    fn event_table_matches_the_enum_and_the_formats() {
        for (i, info) in EVENTS.iter().enumerate() {
            assert_eq!(info.event as usize, i);
            assert!(
                info.format.starts_with(&format!("name: {}\n", info.name)),
                "{}",
                info.name
            );
            assert!(info.format.contains("print fmt: "), "{}", info.name);
        }
        assert_eq!(enableable_events().count(), 31);
        assert_eq!(
            systems(),
            [
                "exceptions",
                "filemap",
                "oom",
                "vmscan",
                "kmem",
                "compaction",
                "writeback"
            ]
        );
    }

    #[test]
    fn rings_overwrite_the_oldest_and_count_it() {
        let mut t = Trace::default();
        t.set_enabled(Event::MmPageFree, true);
        t.set_buffer_kb(1);
        let cap = ring_cap(1);
        for i in 0..(cap as u64 + 5) {
            t.record(entry(i, i, 0));
        }
        assert_eq!(t.counts(), (cap as u64, cap as u64 + 5));
        assert_eq!(t.entries().next().unwrap().seq, 5);
        // Consumed to empty and refilled: the new entries, not old slots.
        while t.pop().is_some() {}
        t.record(entry(100, 100, 0));
        t.record(entry(101, 101, 0));
        let seqs: Vec<u64> = t.entries().map(|e| e.seq).collect();
        assert_eq!(seqs, [100, 101]);
        t.clear();
        assert_eq!(t.counts(), (0, 0));
        assert!(t.is_empty());
    }

    #[test]
    fn cpus_merge_by_time_then_recording_order() {
        let mut t = Trace::default();
        t.set_enabled(Event::MmPageFree, true);
        t.record(entry(10, 0, 1));
        t.record(entry(10, 1, 0));
        t.record(entry(12, 2, 0));
        t.record(entry(15, 3, 1));
        t.record(entry(20, 4, 0));
        let seqs: Vec<u64> = t.entries().map(|e| e.seq).collect();
        // Equal times in recording order, across the CPUs.
        assert_eq!(seqs, [0, 1, 2, 3, 4]);
        let from: Vec<u64> = t.entries_from(3).map(|e| e.seq).collect();
        assert_eq!(from, [3, 4]);
        assert_eq!(t.entries_from(5).count(), 0);
        let popped: Vec<u64> = std::iter::from_fn(|| t.pop()).map(|(e, _)| e.seq).collect();
        assert_eq!(popped, [0, 1, 2, 3, 4]);
        t.record(entry(30, 5, 0));
        let seqs: Vec<u64> = t.entries().map(|e| e.seq).collect();
        assert_eq!(seqs, [5]);
    }

    #[test]
    fn tracing_off_records_nothing_but_keeps_the_events() {
        let mut t = Trace::default();
        t.set_enabled(Event::Kfree, true);
        assert!(t.on(Event::Kfree));
        t.set_tracing_on(false);
        assert!(!t.on(Event::Kfree) && t.is_enabled(Event::Kfree));
        t.set_tracing_on(true);
        assert!(t.on(Event::Kfree));
        assert!(!t.on(Event::Kmalloc));
        t.set_enabled(Event::Print, true);
        assert!(!t.is_enabled(Event::Print));
    }

    #[test]
    fn buffer_size_reads_unexpanded_until_first_use() {
        let mut t = Trace::default();
        assert_eq!(t.buffer_size_text(), "7 (expanded: 1408)\n");
        assert_eq!(t.buffer_total_text(), "14 (expanded: 2816)\n");
        t.set_enabled(Event::Kfree, true);
        assert_eq!(t.buffer_size_text(), "1408\n");
        t.set_buffer_kb(4);
        assert_eq!(t.buffer_total_text(), "8\n");
    }

    #[test]
    fn shrinking_keeps_the_newest_and_drops_their_texts() {
        let mut k = Kernel::boot(super::super::MachineConfig::default()).unwrap();
        k.trace.set_enabled(Event::Kfree, true);
        for i in 0..100 {
            k.trace_marker(&format!("m{i}\n"));
        }
        assert_eq!(k.trace.texts.len(), 100);
        k.trace.set_buffer_kb(1);
        let cap = ring_cap(1);
        assert_eq!(k.trace.texts.len(), cap);
        let last = k.trace.entries().last().copied().unwrap();
        assert_eq!(k.trace.text(&last), "m99");
    }
}
