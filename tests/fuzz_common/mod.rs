//! The seeded command fuzzer over the simulated kernel (no FUSE).
//!
//! [`Fuzzer`] boots small machines (64M..256M, x86_64 and i386, so reclaim,
//! swap and the OOM killer are reached quickly) and drives them with
//! operations drawn from the SPEC §3 grammar: every `ctl` and `PID/ctl`
//! command with plausible and implausible arguments, garbage and over-long
//! lines, byte-level writes through the FUSE adapter's line buffer,
//! sysctl writes, renders of every procfs file and `PID/mem` reads and
//! writes. After every operation:
//! - nothing panicked (each operation runs under `catch_unwind`);
//! - `Kernel::check_invariants` is Ok;
//! - on a sample of failing commands whose errno means "rejected before
//!   doing anything" (EINVAL, ENOENT, EEXIST, EBUSY, ESRCH, EPERM), every
//!   rendered file is byte-identical to before (dmesg and the clock-derived
//!   lines of stat excepted);
//! - on a sample of states, every file renders as whole lines and the
//!   cross-file identities hold (buddyinfo × 4 = MemFree, swaps vs meminfo).
//!
//! Everything is a function of the seed, so a failure report (seed, boot
//! number, operation index and the operations since that boot) is an exact
//! reproducer. Host swap files are only ever created inside a scratch
//! directory the fuzzer owns; every other swap path is under `/dev/`
//! (simulated partitions) or relative (refused).

#![allow(dead_code)]

pub mod checks;
pub mod rng;

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mmfs::ctl::Machine;
use mmfs::ctl::{self, Command, Scope};
use mmfs::fs::linebuf::LineBuffer;
use mmfs::mm::MachineConfig;
use mmfs::mm::sysctl::writable_sysctls;
use mmfs::mm::types::{Arch, Pid};
use mmfs::procfs::pid::{PID_FILES, render_pid};
use mmfs::procfs::{GLOBAL_FILES, GlobalFile, render_global};

use rng::Rng;

/// Operations that take longer than this are counted in the summary (a
/// hint of an unbounded loop on some input). Only counted, never a
/// failure: on a loaded machine any operation can be slow. Real hangs are
/// the watchdog's ([`start_watchdog`]).
pub const SLOW_OP: Duration = Duration::from_secs(2);
/// Failures kept in full (the rest are only counted).
const MAX_FAILURES: usize = 20;
/// Operations of the current boot kept for a reproducer.
const TRACE_KEEP: usize = 100_000;

/// One fuzzer step.
#[derive(Clone, Debug)]
pub enum Op {
    /// Boot a fresh machine.
    Boot(MachineConfig),
    /// One line to a control file through `Kernel::execute_line`.
    Ctl(Scope, String),
    /// The same, and if the line is refused with a validation errno, check
    /// that every rendered file is unchanged.
    CtlChecked(Scope, String),
    /// Raw `write()`s to one open control file, then close, through the
    /// FUSE adapter's [`LineBuffer`] (lines split across writes, not UTF-8).
    Writes(Scope, Vec<Vec<u8>>),
    /// Write a sysctl file.
    Sysctl(String, String),
    /// Render one system-wide file.
    ReadGlobal(GlobalFile),
    /// Render one per-process file (by index into `PID_FILES`).
    ReadPid(Pid, usize),
    /// Render everything and check the cross-file identities.
    ReadAll,
    /// `PID/mem` read.
    ReadMem(Pid, u64, usize),
    /// `PID/mem` write; with `true`, read the bytes back.
    WriteMem(Pid, u64, Vec<u8>, bool),
    /// Write a writable per-process file (`oom_score_adj`, `comm`).
    PidWrite(Pid, &'static str, String),
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scope = |s: &Scope| match s {
            Scope::System => "ctl".to_string(),
            Scope::Process(p) => format!("{p}/ctl"),
        };
        match self {
            Op::Boot(c) => write!(
                f,
                "boot --arch {} --mem {}K",
                c.arch.name(),
                c.mem_bytes >> 10
            ),
            Op::Ctl(s, line) => write!(f, "{} <- {:?}", scope(s), line),
            Op::CtlChecked(s, line) => write!(f, "{} <- {:?}  (no-change check)", scope(s), line),
            Op::Writes(s, writes) => {
                write!(f, "{} <- writes[", scope(s))?;
                for (i, w) in writes.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    if w.len() > 300 {
                        write!(
                            f,
                            "{:?}..({} bytes)",
                            String::from_utf8_lossy(&w[..300]),
                            w.len()
                        )?;
                    } else {
                        write!(f, "{:?}", String::from_utf8_lossy(w))?;
                    }
                }
                write!(f, "] close")
            }
            Op::Sysctl(n, v) => write!(f, "sys/{n} <- {v:?}"),
            Op::ReadGlobal(g) => write!(f, "read {g:?}"),
            Op::ReadPid(p, i) => write!(f, "read {p}/{}", PID_FILES[*i].0),
            Op::ReadAll => write!(f, "read all + cross-check"),
            Op::ReadMem(p, a, n) => write!(f, "read {p}/mem at {a:#x} len {n}"),
            Op::WriteMem(p, a, d, _) => write!(f, "write {p}/mem at {a:#x} len {}", d.len()),
            Op::PidWrite(p, file, text) => write!(f, "{p}/{file} <- {text:?}"),
        }
    }
}

/// What went wrong, with everything needed to reproduce it.
#[derive(Clone, Debug)]
pub struct Failure {
    /// panic, invariant, validation-changed-state, file-check, contract.
    pub kind: &'static str,
    /// The message (panic text, invariant error, diff).
    pub message: String,
    /// The fuzzer's seed.
    pub seed: u64,
    /// Global operation index (0-based) of the failing operation.
    pub op_index: u64,
    /// The boot operation and the operations since, the failing one last
    /// (at most [`TRACE_KEEP`]).
    pub trace: Vec<Op>,
    /// A shorter sequence (boot first) that fails the same way, when the
    /// minimizer found one.
    pub minimized: Option<Vec<Op>>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} at op #{} (seed {}): {}",
            self.kind, self.op_index, self.seed, self.message
        )?;
        writeln!(
            f,
            "  reproduce: cargo run --release --example fuzz -- --seed {} --ops {} --trace-from {}",
            self.seed,
            self.op_index + 1,
            (self.op_index + 2).saturating_sub(self.trace.len() as u64)
        )?;
        if let Some(min) = &self.minimized {
            writeln!(
                f,
                "  minimal reproducer ({} of {} ops, same failure):",
                min.len(),
                self.trace.len()
            )?;
            for op in min {
                writeln!(f, "    {op}")?;
            }
            return Ok(());
        }
        let shown = 40;
        if self.trace.len() > shown {
            writeln!(f, "  {}", self.trace[0])?;
            writeln!(
                f,
                "  ... {} earlier ops since boot ...",
                self.trace.len() - shown
            )?;
        }
        for op in self
            .trace
            .iter()
            .skip(self.trace.len().saturating_sub(shown))
        {
            writeln!(f, "  {op}")?;
        }
        Ok(())
    }
}

/// Counters of a run.
#[derive(Debug, Default)]
pub struct Stats {
    /// Operations run.
    pub ops: u64,
    /// Control lines run (Ctl ops and lines within Writes).
    pub commands: u64,
    /// Machines booted.
    pub boots: u64,
    /// (verb, errno or 0 for success) → count.
    pub outcomes: BTreeMap<(String, i32), u64>,
    /// Failures seen (kept in full up to [`MAX_FAILURES`]).
    pub failures: Vec<Failure>,
    /// Failures seen, kept or not.
    pub failure_count: u64,
    /// Failures by kind and message head, to see the distinct bugs.
    pub distinct: BTreeMap<String, u64>,
    /// "Changes nothing" comparisons made.
    pub validation_checks: u64,
    /// Cross-file checks made.
    pub file_checks: u64,
    /// Most processes alive at once.
    pub max_pids: usize,
    /// Slowest operation.
    pub slowest: (Duration, String),
    /// Operations that took longer than [`SLOW_OP`] (wall clock).
    pub slow_ops: u64,
    /// Time spent.
    pub elapsed: Duration,
}

impl Stats {
    /// A readable summary.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        s.push_str(&format!(
            "ops {} ({:.0}/s), control lines {} ({:.0}/s), boots {}, elapsed {:.1}s\n",
            self.ops,
            self.ops as f64 / secs,
            self.commands,
            self.commands as f64 / secs,
            self.boots,
            secs
        ));
        s.push_str(&format!(
            "validation no-change checks {}, cross-file checks {}, most processes alive {}\n",
            self.validation_checks, self.file_checks, self.max_pids
        ));
        s.push_str(&format!(
            "slowest op {:.3}s: {}; ops over {}s: {}\n",
            self.slowest.0.as_secs_f64(),
            self.slowest.1,
            SLOW_OP.as_secs(),
            self.slow_ops
        ));
        s.push_str(&format!("failures {}\n", self.failure_count));
        for (what, n) in &self.distinct {
            s.push_str(&format!("  {n:7} × {what}\n"));
        }
        s.push_str("outcomes by verb (errno 0 = success):\n");
        let mut by_verb: BTreeMap<&str, Vec<(i32, u64)>> = BTreeMap::new();
        for ((verb, errno), n) in &self.outcomes {
            by_verb.entry(verb).or_default().push((*errno, *n));
        }
        for (verb, list) in by_verb {
            let parts: Vec<String> = list
                .iter()
                .map(|(e, n)| format!("{}={n}", errno_name(*e)))
                .collect();
            s.push_str(&format!("  {verb:20} {}\n", parts.join(" ")));
        }
        s
    }
}

/// Short errno names for the summary.
pub fn errno_name(e: i32) -> &'static str {
    match e {
        0 => "ok",
        libc::EINVAL => "EINVAL",
        libc::ENOMEM => "ENOMEM",
        libc::EFAULT => "EFAULT",
        libc::ESRCH => "ESRCH",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::ENOENT => "ENOENT",
        libc::EIO => "EIO",
        libc::EAGAIN => "EAGAIN",
        libc::EPERM => "EPERM",
        _ => "other",
    }
}

/// Errnos that mean the command was refused before it did anything.
fn is_validation_errno(e: i32) -> bool {
    matches!(
        e,
        libc::EINVAL | libc::ENOENT | libc::EEXIST | libc::EBUSY | libc::ESRCH | libc::EPERM
    )
}

/// Knobs of a run.
#[derive(Clone, Debug)]
pub struct FuzzConfig {
    /// The seed: the whole run is a function of it.
    pub seed: u64,
    /// Operations to run (at most).
    pub ops: u64,
    /// Stop once this many control lines have run (None: no limit).
    pub commands: Option<u64>,
    /// One in this many failing-validation commands is checked for "changes
    /// nothing" (0: never).
    pub validation_sample: u64,
    /// One in this many operations renders everything and cross-checks.
    pub file_check_sample: u64,
    /// Print every operation as it runs, from this operation index on.
    pub trace_from: Option<u64>,
    /// Scratch directory for host swap files (created and emptied here).
    pub swap_dir: PathBuf,
    /// Time to spend shrinking each distinct failure's reproducer (zero:
    /// report the full trace).
    pub minimize_budget: Duration,
}

thread_local! {
    /// Set while an operation runs under `catch_unwind` on this thread: the
    /// panic hook then records the message instead of printing it.
    static IN_OP: Cell<bool> = const { Cell::new(false) };
    /// The last panic message and location on this thread.
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}
/// Operations started, for the watchdog.
pub static PROGRESS: AtomicU64 = AtomicU64::new(0);
/// The operation now running, for the watchdog.
pub static CURRENT: Mutex<String> = Mutex::new(String::new());

/// The message of the last panic on this thread.
fn take_panic() -> String {
    LAST_PANIC
        .with(|p| p.borrow_mut().take())
        .unwrap_or_else(|| "panic".into())
}

/// Install the recording panic hook (once per process).
pub fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if IN_OP.with(Cell::get) {
                let msg = info
                    .payload()
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| info.payload().downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "non-string panic".into());
                let loc = info
                    .location()
                    .map(|l| format!("{}:{}", l.file(), l.line()))
                    .unwrap_or_default();
                LAST_PANIC.with(|p| *p.borrow_mut() = Some(format!("{msg} at {loc}")));
            } else {
                default(info);
            }
        }));
    });
}

/// Abort the process with the current operation printed if no operation
/// starts for `limit` (a hang). Runs until the process ends.
pub fn start_watchdog(limit: Duration) {
    static STARTED: AtomicBool = AtomicBool::new(false);
    if STARTED.swap(true, Ordering::SeqCst) {
        return;
    }
    std::thread::spawn(move || {
        let mut last = PROGRESS.load(Ordering::SeqCst);
        let mut since = Instant::now();
        loop {
            std::thread::sleep(Duration::from_millis(500));
            let now = PROGRESS.load(Ordering::SeqCst);
            if now != last {
                last = now;
                since = Instant::now();
            } else if since.elapsed() > limit {
                let op = CURRENT.lock().unwrap_or_else(|e| e.into_inner()).clone();
                eprintln!(
                    "fuzz watchdog: operation #{now} has run for over {}s (hang?): {op}",
                    limit.as_secs()
                );
                std::process::exit(3);
            }
        }
    });
}

/// A random name pool entry, sometimes something odd.
fn name_text(rng: &mut Rng, pool: &[&str]) -> String {
    match rng.weighted(&[85, 3, 3, 3, 2, 2, 2]) {
        0 => rng.pick(pool).to_string(),
        // Longer than 15 bytes: cut, and two such names may collide.
        1 => format!("{}{}", rng.pick(pool), "_long_name_beyond_comm_len"),
        2 => "tâche-ünïcødé-名前".to_string(),
        3 => "a/b".to_string(),
        4 => "x".repeat(rng.range(1, 300) as usize),
        5 => "\u{200b}zero\u{feff}width".to_string(),
        _ => rng
            .pick(&["-", "=", "+", "#", "0x10", "heap", "stack", "[heap]"])
            .to_string(),
    }
}

const TAGS: &[&str] = &["t0", "t1", "t2", "t3", "slab", "pages", "default"];
const CACHES: &[&str] = &[
    "fz_a",
    "fz_b",
    "fz_c",
    "kmalloc-64",
    "kmalloc-8k",
    "task_struct",
    "vm_area_struct",
    "mm_struct",
    "kmem_cache",
    "dentry",
    "nosuchcache",
];
const MAPPING_NAMES: &[&str] = &["m0", "m1", "m2", "buf", "arena"];
const PROC_NAMES: &[&str] = &["bash", "worker", "db", "cc1", "a", "init"];
const ZONES: &[&str] = &[
    "DMA", "DMA32", "Normal", "HighMem", "Movable", "dma32", "normal", "Device", "",
];

/// SIZE text: mostly page-ish sizes, with boundaries, overflow and garbage.
fn size_text(rng: &mut Rng, scale_pages: u64) -> String {
    match rng.weighted(&[40, 12, 8, 8, 6, 6, 8, 6, 6]) {
        0 => {
            let pages = rng.small(scale_pages);
            if rng.chance(1, 2) {
                format!("{}K", pages * 4)
            } else {
                format!("{}", pages * 4096)
            }
        }
        1 => format!("{}{}", rng.small(64), rng.pick(&["M", "m", "K", "k"])),
        2 => format!("{:#x}", rng.small(scale_pages) * 4096),
        3 => rng
            .pick(&[
                "0", "1", "4095", "4096", "4097", "40K", "39K", "8191", "2G", "1T", "1g", "0x0",
                "4k",
            ])
            .to_string(),
        4 => rng
            .pick(&[
                "18446744073709551615",
                "18446744073709551616",
                "0xffffffffffffffff",
                "0xfffffffffffff000",
                "16777215T",
                "16777216T",
                "17179869183G",
                "9223372036854775807",
                "99999999999999999999999",
                "8E",
                "16T",
                "15T",
            ])
            .to_string(),
        5 => rng
            .pick(&[
                "", "K", "-4K", "1.5M", "4k4", "1KB", "0x", "+4096", "1e6", "٤٠٩٦", "4K\0",
                "4096\r", "0b101", "0o7", "00004096", "0x1000K",
            ])
            .to_string(),
        6 => format!("{}", rng.range(1, 1 << 20)),
        7 => format!("{}K", rng.range(1, 4096)),
        _ => format!("{}", rng.next_u64() >> rng.below(64)),
    }
}

/// A number (count, order, prio, align, tick count).
fn number_text(rng: &mut Rng, typical_max: u64) -> String {
    match rng.weighted(&[70, 8, 8, 7, 7]) {
        0 => format!("{}", rng.small(typical_max)),
        1 => format!("{:#x}", rng.small(typical_max)),
        2 => rng
            .pick(&[
                "0",
                "1",
                "-1",
                "4294967295",
                "4294967296",
                "18446744073709551615",
                "18446744073709551616",
            ])
            .to_string(),
        3 => rng
            .pick(&["", "x", "0x", "1.0", "+1", "1K", "١", "0 ", "07"])
            .to_string(),
        _ => format!("{}", rng.next_u64() >> rng.below(64)),
    }
}

fn prot_text(rng: &mut Rng) -> String {
    if rng.chance(85, 100) {
        rng.pick(&["r", "rw", "rx", "rwx", "none"]).to_string()
    } else {
        rng.pick(&[
            "w", "x", "wr", "RW", "rwxx", "", "---", "r-x", "rw-p", "NONE", "xwr", "wx",
        ])
        .to_string()
    }
}

/// Knowledge of one process's address space, from its `maps` file.
#[derive(Clone, Debug, Default)]
struct AddressSpace {
    /// (start, end) of every mapping.
    vmas: Vec<(u64, u64)>,
}

/// The fuzzer: a machine, a generator and the checks.
pub struct Fuzzer {
    cfg: FuzzConfig,
    rng: Rng,
    kernel: Option<Machine>,
    trace: Vec<Op>,
    ops_left_in_boot: u64,
    spaces: BTreeMap<u32, AddressSpace>,
    /// Operations queued by the generator to run next (clean-ups).
    pending: VecDeque<Op>,
    /// The line being generated already has its `tag=`.
    tag_given: bool,
    /// Replay mode of the minimizer: no invariant check after each
    /// operation and no no-change snapshots.
    light: bool,
    /// The statistics of the run.
    pub stats: Stats,
}

impl Fuzzer {
    /// A fuzzer for `cfg`; the first operation boots a machine.
    pub fn new(cfg: FuzzConfig) -> Fuzzer {
        install_panic_hook();
        let rng = Rng::new(cfg.seed);
        Fuzzer {
            cfg,
            rng,
            kernel: None,
            trace: Vec::new(),
            ops_left_in_boot: 0,
            spaces: BTreeMap::new(),
            pending: VecDeque::new(),
            tag_given: false,
            light: false,
            stats: Stats::default(),
        }
    }

    /// Run the configured operations; returns the statistics and removes
    /// the scratch directory.
    pub fn run(mut self) -> Stats {
        self.run_ops();
        // Shrink the reproducers once the run's own machine is gone (the
        // replays reuse its scratch directory).
        self.kernel = None;
        if !self.cfg.minimize_budget.is_zero() {
            let mut failures = std::mem::take(&mut self.stats.failures);
            for f in &mut failures {
                f.minimized = minimize(&self.cfg, &f.trace, f.kind, &f.message);
            }
            self.stats.failures = failures;
        }
        let _ = std::fs::remove_dir_all(&self.cfg.swap_dir);
        self.stats
    }

    /// Run `cfg.ops` operations (or until `cfg.commands` control lines).
    pub fn run_ops(&mut self) {
        let start = Instant::now();
        for i in 0..self.cfg.ops {
            if self.cfg.commands.is_some_and(|n| self.stats.commands >= n) {
                break;
            }
            self.step(i);
        }
        self.stats.elapsed += start.elapsed();
    }

    /// Every file of the current machine, dmesg included (empty when no
    /// machine is booted).
    pub fn final_snapshot(&self) -> Vec<(String, String)> {
        let Some(k) = &self.kernel else {
            return Vec::new();
        };
        let mut out = snapshot(k);
        out.push(("dmesg".into(), render_global(k, GlobalFile::Dmesg)));
        out
    }

    /// Generate `n` operations without running them (no machine booted).
    pub fn sample_ops(&mut self, n: usize) -> Vec<Op> {
        (0..n).map(|_| self.generate()).collect()
    }

    fn reset_swap_dir(&self) {
        let _ = std::fs::remove_dir_all(&self.cfg.swap_dir);
        std::fs::create_dir_all(&self.cfg.swap_dir).expect("create the fuzzer's swap directory");
    }

    fn boot_config(&mut self) -> MachineConfig {
        let arch = if self.rng.chance(1, 4) {
            Arch::I386
        } else {
            Arch::X86_64
        };
        let mem_bytes = match self.rng.below(3) {
            0 => *self
                .rng
                .pick(&[64u64 << 20, 96 << 20, 128 << 20, 192 << 20, 256 << 20]),
            _ => self.rng.range((64 << 20) >> 12, (256 << 20) >> 12) << 12,
        };
        MachineConfig { arch, mem_bytes }
    }

    /// One operation: choose, run under catch_unwind, check.
    fn step(&mut self, index: u64) {
        if self.kernel.is_none() || self.ops_left_in_boot == 0 {
            let config = self.boot_config();
            self.ops_left_in_boot = self.rng.range(300, 20_000);
            self.spaces.clear();
            self.pending.clear();
            self.stats.boots += 1;
            self.trace.clear();
            self.trace.push(Op::Boot(config));
            if let Err((kind, message)) = self.boot(config) {
                self.fail(index, kind, message);
                return;
            }
        }
        self.ops_left_in_boot -= 1;
        let op = self.generate();
        self.stats.ops += 1;
        if self.trace.len() < TRACE_KEEP {
            self.trace.push(op.clone());
        }
        if self.cfg.trace_from.is_some_and(|from| index >= from) {
            eprintln!("#{index}: {op}");
        }
        PROGRESS.fetch_add(1, Ordering::SeqCst);
        *CURRENT.lock().unwrap_or_else(|e| e.into_inner()) =
            format!("#{index} (seed {}): {op}", self.cfg.seed);
        if let Err((kind, message)) = self.run_op(&op) {
            self.fail(index, kind, message);
        }
        if let Some(k) = &self.kernel {
            self.stats.max_pids = self.stats.max_pids.max(k.pids().len());
        }
    }

    /// Boot a machine (emptying the scratch directory first).
    fn boot(&mut self, config: MachineConfig) -> Result<(), (&'static str, String)> {
        self.kernel = None;
        self.reset_swap_dir();
        let kernel =
            Machine::boot(config).map_err(|e| ("boot", format!("boot {config:?} failed: {e}")))?;
        kernel
            .check_invariants()
            .map_err(|e| ("invariant", format!("right after boot: {e}")))?;
        self.kernel = Some(kernel);
        Ok(())
    }

    /// Run one operation with every check. After a panic or a broken
    /// invariant the machine is dropped (its state is undefined).
    fn run_op(&mut self, op: &Op) -> Result<(), (&'static str, String)> {
        let started = Instant::now();
        IN_OP.with(|f| f.set(true));
        let result = {
            let this = &mut *self;
            catch_unwind(AssertUnwindSafe(|| this.execute(op)))
        };
        IN_OP.with(|f| f.set(false));
        let took = started.elapsed();
        if took > self.stats.slowest.0 {
            self.stats.slowest = (took, op.to_string());
        }
        let mut outcome = Ok(());
        match result {
            Err(_) => {
                self.kernel = None;
                return Err(("panic", take_panic()));
            }
            Ok(Err(message)) => outcome = Err(("check", message)),
            Ok(Ok(())) => {}
        }
        if took > SLOW_OP {
            self.stats.slow_ops += 1;
        }
        if self.light {
            return outcome;
        }
        let invariants = {
            let kernel = self.kernel.as_ref().expect("booted");
            IN_OP.with(|f| f.set(true));
            let r = catch_unwind(AssertUnwindSafe(|| kernel.check_invariants()));
            IN_OP.with(|f| f.set(false));
            r
        };
        match invariants {
            Ok(Ok(())) => outcome,
            Ok(Err(e)) => {
                self.kernel = None;
                Err(("invariant", e))
            }
            Err(_) => {
                self.kernel = None;
                Err(("panic in check_invariants", take_panic()))
            }
        }
    }

    fn kernel(&mut self) -> &mut Machine {
        self.kernel.as_mut().expect("a booted machine")
    }

    fn fail(&mut self, index: u64, kind: &'static str, message: String) {
        self.stats.failure_count += 1;
        let key = failure_key(kind, &message);
        let seen = self.stats.distinct.entry(key).or_default();
        *seen += 1;
        if *seen == 1 && self.stats.failures.len() < MAX_FAILURES {
            self.stats.failures.push(Failure {
                kind,
                message,
                seed: self.cfg.seed,
                op_index: index,
                trace: self.trace.clone(),
                minimized: None,
            });
        }
    }

    // ---------------------------------------------------------------
    // Generation
    // ---------------------------------------------------------------

    fn generate(&mut self) -> Op {
        if let Some(op) = self.pending.pop_front() {
            return op;
        }
        if self.rng.chance(1, 300) {
            // Now and then give back everything tagged: keeps the object
            // count (and so the cost of each invariant check) moderate.
            for tag in TAGS {
                for verb in ["kfree", "kmem_cache_free", "free_pages"] {
                    self.pending
                        .push_back(Op::Ctl(Scope::System, format!("{verb} tag={tag}")));
                }
            }
        }
        let pids = self.kernel.as_ref().map(|k| k.pids()).unwrap_or_default();
        let have_pids = !pids.is_empty();
        let w = [
            38,                             // system ctl
            if have_pids { 34 } else { 6 }, // process ctl
            3,                              // raw writes
            3,                              // sysctl
            5,                              // read a global file
            if have_pids { 5 } else { 1 },  // read a pid file
            1,                              // read all + cross check (sampled below)
            if have_pids { 4 } else { 1 },  // read mem
            if have_pids { 5 } else { 1 },  // write mem
            if have_pids { 2 } else { 1 },  // oom_score_adj / comm
        ];
        match self.rng.weighted(&w) {
            0 => {
                let line = self.system_line(&pids);
                self.ctl_op(Scope::System, line)
            }
            1 => {
                let pid = self.pid(&pids);
                let line = self.process_line(pid);
                self.ctl_op(Scope::Process(pid), line)
            }
            2 => self.raw_writes(&pids),
            3 => self.sysctl_write(),
            4 => Op::ReadGlobal(self.rng.pick(GLOBAL_FILES).2),
            5 => {
                let pid = self.pid(&pids);
                Op::ReadPid(pid, self.rng.below(PID_FILES.len() as u64) as usize)
            }
            6 if self.cfg.file_check_sample > 0
                && self.rng.chance(1, self.cfg.file_check_sample) =>
            {
                Op::ReadAll
            }
            6 => Op::ReadGlobal(self.rng.pick(GLOBAL_FILES).2),
            7 => {
                let pid = self.pid(&pids);
                let addr = self.mem_addr(pid);
                let len = match self.rng.below(10) {
                    0 => 0,
                    1 => self.rng.range(4096, 1 << 20) as usize,
                    _ => self.rng.small(8192) as usize,
                };
                Op::ReadMem(pid, addr, len)
            }
            9 => {
                let pid = self.pid(&pids);
                if self.rng.chance(1, 2) {
                    let text = rng_pick_string(
                        &mut self.rng,
                        &[
                            "0\n",
                            "1000\n",
                            "-1000\n",
                            "500",
                            "-17\n",
                            "1001\n",
                            "-1001\n",
                            "x\n",
                            "",
                            " 5 \n",
                            "99999999999999999999\n",
                            "+3\n",
                        ],
                    );
                    Op::PidWrite(pid, "oom_score_adj", text)
                } else {
                    let text = name_text(&mut self.rng, PROC_NAMES) + "\n";
                    Op::PidWrite(pid, "comm", text)
                }
            }
            _ => {
                let pid = self.pid(&pids);
                let addr = self.mem_addr(pid);
                let len = match self.rng.below(10) {
                    0 => 0,
                    1 => self.rng.range(4096, 64 << 10) as usize,
                    _ => self.rng.small(8192) as usize,
                };
                let fill = self.rng.next_u64() as u8;
                let data = (0..len).map(|i| fill.wrapping_add(i as u8)).collect();
                Op::WriteMem(pid, addr, data, self.rng.chance(1, 4))
            }
        }
    }

    /// A control-line operation, sampled for the no-change check.
    fn ctl_op(&mut self, scope: Scope, line: String) -> Op {
        if self.cfg.validation_sample > 0 && self.rng.chance(1, self.cfg.validation_sample) {
            Op::CtlChecked(scope, line)
        } else {
            Op::Ctl(scope, line)
        }
    }

    /// An existing pid mostly, else one that does not exist.
    fn pid(&mut self, pids: &[Pid]) -> Pid {
        if !pids.is_empty() && self.rng.chance(9, 10) {
            *self.rng.pick(pids)
        } else {
            let last = self.kernel.as_ref().map(|k| k.ns_last_pid).unwrap_or(1);
            Pid(*self
                .rng
                .pick(&[0, 1, 2, last, last.wrapping_add(1), 32768, 99999, u32::MAX]))
        }
    }

    fn pid_text(&mut self, pids: &[Pid]) -> String {
        match self.rng.below(10) {
            0 => number_text(&mut self.rng, 40000),
            _ => self.pid(pids).0.to_string(),
        }
    }

    fn tag_opt(&mut self) -> String {
        if std::mem::take(&mut self.tag_given) {
            return String::new();
        }
        if self.rng.chance(3, 4) {
            format!(" tag={}", name_text(&mut self.rng, TAGS))
        } else {
            String::new()
        }
    }

    /// `count=N`: mostly absent or small; rarely huge (those mostly fail
    /// with ENOMEM, and state with millions of objects makes every
    /// invariant check slow).
    fn count_opt(&mut self, typical: u64) -> String {
        match self.rng.below(100) {
            0..=49 => String::new(),
            50..=94 => format!(" count={}", self.rng.small(typical)),
            95..=97 => format!(" count={}", self.rng.small(typical * 64)),
            _ => {
                // Held under their own tag and given back right after.
                self.pending
                    .push_back(Op::Ctl(Scope::System, "kfree tag=huge".into()));
                self.pending
                    .push_back(Op::Ctl(Scope::System, "kmem_cache_free tag=huge".into()));
                self.pending
                    .push_back(Op::Ctl(Scope::System, "free_pages tag=huge".into()));
                self.tag_given = true;
                format!(" count={} tag=huge", number_text(&mut self.rng, 1 << 25))
            }
        }
    }

    fn swap_path(&mut self) -> String {
        match self.rng.weighted(&[50, 25, 5, 5, 5, 5, 5]) {
            0 => format!(
                "/dev/{}",
                self.rng
                    .pick(&["sda2", "sdb", "vdb1", "zram0", "nvme0n1p3"])
            ),
            1 => {
                let n = self.rng.below(3);
                format!("{}/swap{n}", self.cfg.swap_dir.display())
            }
            2 => rng_pick_string(
                &mut self.rng,
                &[
                    "/dev/",
                    "/dev//x",
                    "/dev/a/b",
                    "/dev/.",
                    "/dev/\u{e9}t\u{e9}",
                ],
            ),
            3 => format!("/dev/{}", "d".repeat(self.rng.range(20, 40) as usize)),
            4 => rng_pick_string(
                &mut self.rng,
                &["swapfile", "dev/sda", "./swap", "~/swap", ""],
            ),
            // A directory and a non-swap file inside the scratch dir.
            5 => {
                let dir = self.cfg.swap_dir.display().to_string();
                if self.rng.chance(1, 2) {
                    dir
                } else {
                    format!("{dir}/notswap")
                }
            }
            _ => format!("/dev/{}", self.rng.range(0, 40)),
        }
    }

    fn system_line(&mut self, pids: &[Pid]) -> String {
        self.tag_given = false;
        let r = &mut self.rng;
        let verb = r.weighted(&[
            8,  // spawn
            4,  // kill
            3,  // mkswap
            4,  // swapon
            3,  // swapoff
            3,  // reclaim
            10, // alloc_pages
            7,  // free_pages
            3,  // kmem_cache_create
            2,  // kmem_cache_destroy
            5,  // kmem_cache_alloc
            4,  // kmem_cache_free
            6,  // kmalloc
            5,  // kfree
            5,  // tick
            4,  // garbage / odd
        ]);
        match verb {
            0 => match self.rng.below(12) {
                0 => "spawn".into(),
                1 => "spawn a b".into(),
                2 => format!("spawn {} name=x", name_text(&mut self.rng, PROC_NAMES)),
                _ => format!("spawn {}", name_text(&mut self.rng, PROC_NAMES)),
            },
            1 => format!("kill {}", self.pid_text(pids)),
            2 => {
                let path = self.swap_path();
                let size = match self.rng.below(20) {
                    0 => {
                        // Areas over 64G are left to tests/bounds_core.rs
                        // (largest_swap_device): swapon of one allocates a
                        // slot map of 8 bytes per page up front, which can
                        // abort the process.
                        let text = size_text(&mut self.rng, 1 << 20);
                        match mmfs::mm::types::parse_size(&text) {
                            Some(b) if b > 64 << 30 => "16T".into(),
                            _ => text,
                        }
                    }
                    1 => "16T".into(),
                    _ => format!("{}K", self.rng.range(40, 128 << 10) & !3),
                };
                format!("mkswap {path} {size}")
            }
            3 => {
                let path = self.swap_path();
                match self.rng.below(4) {
                    0 => format!("swapon {path}"),
                    1 => format!("swapon {path} prio={}", number_text(&mut self.rng, 40000)),
                    2 => format!("swapon {path} prio=-1"),
                    _ => format!("swapon {path} prio={}", self.rng.below(5)),
                }
            }
            4 => format!("swapoff {}", self.swap_path()),
            5 => format!("reclaim {}", size_text(&mut self.rng, 16384)),
            6 => {
                let order = if self.rng.chance(9, 10) {
                    self.rng.below(11).to_string()
                } else {
                    number_text(&mut self.rng, 20)
                };
                let mut line = format!("alloc_pages {order}");
                line += &self.count_opt(64);
                if self.rng.chance(1, 4) {
                    line += &format!(" zone={}", self.rng.pick(ZONES));
                }
                line += &self.tag_opt();
                line
            }
            7 => {
                let mut line = "free_pages".to_string();
                line += &self.tag_opt();
                line += &self.count_opt(16);
                line
            }
            8 => {
                let name = name_text(&mut self.rng, CACHES);
                let size = if self.rng.chance(3, 4) {
                    self.rng.small(8192).to_string()
                } else {
                    size_text(&mut self.rng, 2048)
                };
                let mut line = format!("kmem_cache_create {name} {size}");
                if self.rng.chance(1, 3) {
                    line += &format!(
                        " align={}",
                        rng_pick_string(
                            &mut self.rng,
                            &["0", "1", "3", "8", "16", "64", "4096", "8192", "0x40", "x"]
                        )
                    );
                }
                line
            }
            9 => format!("kmem_cache_destroy {}", name_text(&mut self.rng, CACHES)),
            10 => {
                let mut line = format!("kmem_cache_alloc {}", name_text(&mut self.rng, CACHES));
                line += &self.count_opt(32);
                line += &self.tag_opt();
                line
            }
            11 => {
                let mut line = "kmem_cache_free".to_string();
                line += &self.tag_opt();
                line += &self.count_opt(64);
                line
            }
            12 => {
                let size = if self.rng.chance(3, 4) {
                    self.rng.small(16384).to_string()
                } else {
                    size_text(&mut self.rng, 1024)
                };
                let mut line = format!("kmalloc {size}");
                line += &self.count_opt(32);
                line += &self.tag_opt();
                line
            }
            13 => {
                let mut line = "kfree".to_string();
                line += &self.tag_opt();
                line += &self.count_opt(64);
                line
            }
            14 => match self.rng.below(10) {
                0 => "tick".into(),
                1 => format!("tick {}", number_text(&mut self.rng, 1_000_000)),
                2 => "tick 1000000".into(),
                _ => format!("tick {}", self.rng.small(200)),
            },
            _ => self.garbage_line(),
        }
    }

    /// An address for `pid`: inside or near a known mapping, symbolic, or
    /// a raw number.
    fn addr_text(&mut self, pid: Pid) -> String {
        let vmas = self.address_space(pid);
        match self.rng.weighted(&[35, 10, 10, 10, 8, 8, 8]) {
            0 if !vmas.is_empty() => {
                let &(start, end) = self.rng.pick(&vmas);
                let pages = ((end - start) >> 12).max(1);
                let addr = start + (self.rng.below(pages + 1) << 12);
                if self.rng.chance(1, 2) {
                    format!("{addr:#x}")
                } else {
                    addr.to_string()
                }
            }
            1 => {
                let off = self.offset_text();
                format!("heap{off}")
            }
            2 => {
                let off = self.offset_text();
                format!("stack{off}")
            }
            3 => {
                let name = name_text(&mut self.rng, MAPPING_NAMES);
                let off = self.offset_text();
                format!("{name}{off}")
            }
            4 => rng_pick_string(
                &mut self.rng,
                &[
                    "0",
                    "0x1000",
                    "0x400000",
                    "0x10000",
                    "0x7fffffffe000",
                    "0x7ffffffff000",
                    "0x800000000000",
                    "0xffffffffffffffff",
                    "0xc0000000",
                    "0xbffff000",
                    "0x1001",
                    "0xfff",
                ],
            ),
            5 => rng_pick_string(
                &mut self.rng,
                &[
                    "",
                    "+4096",
                    "heap+",
                    "heap-4096",
                    "heap+-1",
                    "stack+0xffffffffffffffff",
                    "[heap]",
                    "heap+4K+4K",
                    "0x",
                    "-1",
                ],
            ),
            _ => format!(
                "{:#x}",
                (self.rng.next_u64() >> self.rng.below(64)) & !0xfff
            ),
        }
    }

    fn offset_text(&mut self) -> String {
        match self.rng.below(6) {
            0 | 1 => String::new(),
            2 => format!("+{}", self.rng.small(64) * 4096),
            3 => format!("+{:#x}", self.rng.small(64) * 4096),
            4 => format!("+{}", size_text(&mut self.rng, 64)),
            _ => format!("+{}", self.rng.below(8192)),
        }
    }

    /// The mappings of `pid` as its `maps` file lists them (refreshed now
    /// and then; empty while the process files are not implemented).
    fn address_space(&mut self, pid: Pid) -> Vec<(u64, u64)> {
        let refresh = !self.spaces.contains_key(&pid.0) || self.rng.chance(1, 4);
        if refresh {
            let mut space = AddressSpace::default();
            if let (Some(k), Some(maps)) = (&self.kernel, PID_FILES.iter().find(|f| f.0 == "maps"))
                && let Ok(text) = render_pid(k, pid, maps.2)
            {
                for line in text.lines() {
                    let range = line.split_whitespace().next().unwrap_or("");
                    if let Some((a, b)) = range.split_once('-')
                        && let (Ok(a), Ok(b)) =
                            (u64::from_str_radix(a, 16), u64::from_str_radix(b, 16))
                    {
                        space.vmas.push((a, b));
                    }
                }
            }
            self.spaces.insert(pid.0, space);
        }
        self.spaces[&pid.0].vmas.clone()
    }

    fn mem_addr(&mut self, pid: Pid) -> u64 {
        let vmas = self.address_space(pid);
        if !vmas.is_empty() && self.rng.chance(4, 5) {
            let &(start, end) = self.rng.pick(&vmas);
            let len = (end - start).max(1);
            // Near the end too, so accesses straddle the mapping's end.
            start + self.rng.below(len + 64)
        } else {
            *self.rng.pick(&[
                0,
                4096,
                0x400000,
                0x7fff_ffff_f000,
                u64::MAX - 10,
                u64::MAX,
                0xc000_0000,
            ])
        }
    }

    fn process_line(&mut self, pid: Pid) -> String {
        match self.rng.weighted(&[22, 8, 8, 8, 25, 14, 5, 3]) {
            0 => {
                let size = if self.rng.chance(4, 5) {
                    format!("{}K", self.rng.small(4096) * 4)
                } else {
                    size_text(&mut self.rng, 1 << 20)
                };
                let mut line = format!("mmap {size}");
                if self.rng.chance(1, 2) {
                    line += &format!(" name={}", name_text(&mut self.rng, MAPPING_NAMES));
                }
                if self.rng.chance(1, 5) {
                    line += &format!(" addr={}", self.addr_text(pid));
                }
                if self.rng.chance(1, 3) {
                    line += &format!(" prot={}", prot_text(&mut self.rng));
                }
                if self.rng.chance(1, 30) {
                    line += " flags=fixed";
                }
                line
            }
            1 => {
                let addr = self.addr_text(pid);
                format!("munmap {addr} {}", self.range_size())
            }
            2 => {
                let addr = self.addr_text(pid);
                let size = self.range_size();
                format!("mprotect {addr} {size} {}", prot_text(&mut self.rng))
            }
            3 => match self.rng.below(5) {
                0 => format!("brk {}", self.addr_text(pid)),
                1 | 2 => format!("brk +{}", size_text(&mut self.rng, 256)),
                3 => format!("brk -{}", size_text(&mut self.rng, 256)),
                _ => rng_pick_string(
                    &mut self.rng,
                    &["brk", "brk +", "brk 0", "brk heap", "brk +1 +2", "brk --4K"],
                ),
            },
            4 => {
                let addr = self.addr_text(pid);
                let size = self.range_size();
                let mode = rng_pick_string(
                    &mut self.rng,
                    &["", " read", " write", " write", " exec", " read write"],
                );
                format!("touch {addr} {size}{mode}")
            }
            5 => {
                let addr = self.addr_text(pid);
                let size = self.range_size();
                let advice = rng_pick_string(
                    &mut self.rng,
                    &[
                        "pageout",
                        "pageout",
                        "cold",
                        "dontneed",
                        "willneed",
                        "",
                        "PAGEOUT",
                        "pageout cold",
                    ],
                );
                format!("madvise {addr} {size} {advice}")
            }
            6 => {
                // A system command in a process's ctl, and vice versa.
                let pids = self.kernel.as_ref().map(|k| k.pids()).unwrap_or_default();
                self.system_line(&pids)
            }
            _ => self.garbage_line(),
        }
    }

    /// A range length for munmap/mprotect/touch/madvise: mostly small.
    fn range_size(&mut self) -> String {
        match self.rng.below(20) {
            0 => size_text(&mut self.rng, 1 << 16),
            1 => rng_pick_string(&mut self.rng, &["1M", "16M", "64M", "128M"]),
            _ => format!("{}K", self.rng.small(512) * 4),
        }
    }

    /// Lines no grammar accepts, or that test the line rules.
    fn garbage_line(&mut self) -> String {
        match self.rng.below(14) {
            0 => String::new(),
            1 => "   \t  ".into(),
            2 => "# a comment alloc_pages 3".into(),
            3 => {
                // Just over the limit, with a valid command in front.
                let n = self.rng.range(4097, 9000) as usize;
                let mut s = "tick 1".to_string();
                while s.len() < n {
                    s.push(' ');
                }
                s
            }
            4 => {
                // Exactly at the limit: still a valid line.
                let mut s = "tick 1".to_string();
                while s.len() < ctl::MAX_LINE {
                    s.push(' ');
                }
                s
            }
            5 => {
                // Random characters, including NUL, controls and non-ASCII.
                let n = self.rng.small(200) as usize;
                (0..n)
                    .map(|_| match self.rng.below(6) {
                        0 => char::from_u32(self.rng.below(0x20) as u32).unwrap_or('?'),
                        1 => char::from_u32(self.rng.range(0x80, 0x2fff) as u32).unwrap_or('?'),
                        2 => ' ',
                        3 => '=',
                        _ => (b'a' + self.rng.below(26) as u8) as char,
                    })
                    .collect()
            }
            6 => "alloc_pages\0 1".into(),
            7 => "ALLOC_PAGES 1".into(),
            8 => "\u{feff}tick".into(),
            9 => "alloc_pages 1 count=1 count=2".into(),
            10 => "alloc_pages 1 =x".into(),
            11 => "alloc_pages 1 tag=".into(),
            12 => {
                // Over the limit and a comment: the limit still applies.
                format!("#{}", "c".repeat(self.rng.range(4097, 6000) as usize))
            }
            _ => "tick\r".into(),
        }
    }

    fn raw_writes(&mut self, pids: &[Pid]) -> Op {
        let scope = if pids.is_empty() || self.rng.chance(1, 2) {
            Scope::System
        } else {
            Scope::Process(self.pid(pids))
        };
        // A small plan, cut at random places into writes.
        let mut plan = Vec::new();
        let lines = self.rng.range(1, 6);
        for _ in 0..lines {
            let line = match scope {
                Scope::System => self.system_line(pids),
                Scope::Process(p) => self.process_line(p),
            };
            plan.extend_from_slice(line.as_bytes());
            if self.rng.chance(9, 10) {
                plan.push(b'\n');
            }
        }
        match self.rng.below(8) {
            0 => plan.extend_from_slice(b"\xff\xfe tick\n"),
            1 => plan.extend(std::iter::repeat_n(
                b'x',
                self.rng.range(4000, 10000) as usize,
            )),
            _ => {}
        }
        let mut writes = Vec::new();
        let mut rest = &plan[..];
        while !rest.is_empty() {
            let cut = (self.rng.range(1, rest.len().max(1) as u64) as usize).min(rest.len());
            writes.push(rest[..cut].to_vec());
            rest = &rest[cut..];
        }
        Op::Writes(scope, writes)
    }

    fn sysctl_write(&mut self) -> Op {
        let name = if self.rng.chance(9, 10) {
            self.rng
                .pick(&writable_sysctls().collect::<Vec<_>>())
                .to_string()
        } else {
            rng_pick_string(
                &mut self.rng,
                &["kernel/ns_last_pid", "vm/nope", "", "vm/../vm/swappiness"],
            )
        };
        let value = match self.rng.below(10) {
            0..=5 => match name.as_str() {
                "vm/swappiness" => format!("{}\n", self.rng.below(201)),
                "vm/overcommit_memory" => format!("{}\n", self.rng.below(3)),
                "vm/overcommit_ratio" => format!("{}\n", self.rng.below(150)),
                "vm/watermark_scale_factor" => format!("{}\n", self.rng.range(1, 3000)),
                // Keep min_free_kbytes mostly sane: huge values starve everything.
                "vm/min_free_kbytes" => format!("{}\n", self.rng.range(128, 16384)),
                _ => format!("{}\n", self.rng.below(100)),
            },
            6 => format!("{}\n", number_text(&mut self.rng, 100_000)),
            7 => rng_pick_string(
                &mut self.rng,
                &[
                    "-1\n", "", "\n", " 60 \n", "60 70\n", "0x10\n", "1e3\n", "201\n", "3\n", "0\n",
                ],
            ),
            8 => format!(
                "{}\n",
                rng_pick_string(
                    &mut self.rng,
                    &[
                        "1099511627776",
                        "1099511627777",
                        "2147483647",
                        "2147483648",
                        "18446744073709551615"
                    ]
                )
            ),
            _ => "60".into(),
        };
        Op::Sysctl(name, value)
    }

    // ---------------------------------------------------------------
    // Execution and checks
    // ---------------------------------------------------------------

    fn execute(&mut self, op: &Op) -> Result<(), String> {
        match op {
            Op::Boot(_) => Ok(()),
            Op::Ctl(scope, line) => self.execute_ctl(*scope, line, false),
            Op::CtlChecked(scope, line) if self.light => {
                self.kernel().run_kswapd();
                self.execute_ctl(*scope, line, false)
            }
            Op::CtlChecked(scope, line) => self.execute_ctl(*scope, line, true),
            Op::PidWrite(pid, file, text) => {
                let k = self.kernel();
                let r = match *file {
                    "oom_score_adj" => k.write_oom_score_adj(*pid, text),
                    _ => k.write_comm(*pid, text),
                };
                let key = (
                    format!("write {file}"),
                    r.as_ref().err().map(|e| e.errno()).unwrap_or(0),
                );
                *self.stats.outcomes.entry(key).or_default() += 1;
                Ok(())
            }
            Op::Writes(scope, writes) => {
                let scope = *scope;
                let mut buf = LineBuffer::new();
                let mut lines = 0u64;
                let kernel = self.kernel.as_mut().expect("booted");
                let mut run = |line: &[u8]| -> Result<(), i32> {
                    lines += 1;
                    let r = match std::str::from_utf8(line) {
                        Ok(text) => kernel
                            .execute_line(scope, text)
                            .map(|_| ())
                            .map_err(|e| e.errno()),
                        Err(_) => Err(libc::EINVAL),
                    };
                    if line.len() > ctl::MAX_LINE && r.is_ok() {
                        return Err(libc::EINVAL);
                    }
                    r
                };
                for w in writes {
                    // A failed write drops the rest of it; later writes go on.
                    let _ = buf.feed(w, &mut run);
                }
                let _ = buf.finish(&mut run);
                self.stats.commands += lines;
                Ok(())
            }
            Op::Sysctl(name, value) => {
                let kernel = self.kernel();
                let before = kernel.sysctl_read(name).ok();
                let r = kernel.write_sysctl(name, value);
                let key = (
                    "sysctl".to_string(),
                    r.as_ref().err().map(|e| e.errno()).unwrap_or(0),
                );
                *self.stats.outcomes.entry(key).or_default() += 1;
                if r.is_err() && self.kernel().sysctl_read(name).ok() != before {
                    return Err(format!(
                        "failed sysctl write {name} <- {value:?} changed the value"
                    ));
                }
                if r.is_ok() {
                    let now = self.kernel().sysctl_read(name).unwrap_or_default();
                    if now.trim().parse::<u64>().ok() != value.trim().parse::<u64>().ok() {
                        return Err(format!("sysctl {name} <- {value:?} reads back {now:?}"));
                    }
                }
                Ok(())
            }
            Op::ReadGlobal(file) => {
                let text = render_global(self.kernel(), *file);
                if *file != GlobalFile::Dmesg || !text.is_empty() {
                    checks::complete_lines(&format!("{file:?}"), &text)?;
                }
                Ok(())
            }
            Op::ReadPid(pid, index) => {
                let (name, _, file) = PID_FILES[*index];
                match render_pid(self.kernel(), *pid, file) {
                    Ok(text) => check_pid_file(*pid, name, &text),
                    Err(e) if e.errno() == libc::ESRCH => {
                        if self.kernel().pids().contains(pid) {
                            Err(format!("{pid}/{name}: ESRCH for a live process"))
                        } else {
                            Ok(())
                        }
                    }
                    Err(e) => Err(format!("{pid}/{name}: {e}")),
                }
            }
            Op::ReadAll => {
                self.stats.file_checks += 1;
                self.check_all_files()
            }
            Op::ReadMem(pid, addr, len) => {
                let r = self.kernel().read_mem(*pid, *addr, *len);
                let key = (
                    "read_mem".to_string(),
                    r.as_ref().err().map(|e| e.errno()).unwrap_or(0),
                );
                *self.stats.outcomes.entry(key).or_default() += 1;
                if let Ok(bytes) = r
                    && bytes.len() > *len
                {
                    return Err(format!("read_mem returned {} bytes for {len}", bytes.len()));
                }
                Ok(())
            }
            Op::WriteMem(pid, addr, data, verify) => {
                let r = self.kernel().write_mem(*pid, *addr, data);
                let key = (
                    "write_mem".to_string(),
                    r.as_ref().err().map(|e| e.errno()).unwrap_or(0),
                );
                *self.stats.outcomes.entry(key).or_default() += 1;
                match r {
                    Ok(n) if n > data.len() => {
                        Err(format!("write_mem wrote {n} of {} bytes", data.len()))
                    }
                    Ok(n) if n > 0 && *verify => {
                        // What was written reads back, unless the OOM killer took the process.
                        let k = self.kernel();
                        if let Ok(back) = k.read_mem(*pid, *addr, n)
                            && back.len() == n
                            && back[..] != data[..n]
                        {
                            return Err(format!(
                                "{pid}/mem at {addr:#x}: {n} bytes written do not read back"
                            ));
                        }
                        Ok(())
                    }
                    _ => Ok(()),
                }
            }
        }
    }

    fn execute_ctl(&mut self, scope: Scope, line: &str, sample: bool) -> Result<(), String> {
        self.stats.commands += 1;
        let word = line.split_whitespace().next().unwrap_or("<blank>");
        let known =
            ctl::SYSTEM_COMMANDS.contains(&word) || ctl::process::PROCESS_COMMANDS.contains(&word);
        let word = if known || word == "<blank>" {
            word
        } else {
            "<garbage>"
        };
        let verb = match scope {
            Scope::System => word.to_string(),
            Scope::Process(_) => format!("pid:{word}"),
        };
        let parsed = match scope {
            Scope::System => Some(ctl::parse_system(line)),
            Scope::Process(_) => None,
        };
        // Never let a generated line reach a host path outside the scratch
        // directory (the generator should not produce one; this is a guard).
        if let Some(Ok(cmd)) = &parsed
            && let Some(path) = swap_path_of(cmd)
            && !path.starts_with("/dev/")
            && !Path::new(path).starts_with(&self.cfg.swap_dir)
        {
            return Ok(());
        }
        let before = if sample {
            // Settle kswapd's deferred work first: it runs after every
            // command, failed or not, and is not the command's doing.
            let k = self.kernel();
            k.run_kswapd();
            Some(snapshot(k))
        } else {
            None
        };
        let result = self.kernel().execute_line(scope, line);
        let errno = result.as_ref().err().map(|e| e.errno()).unwrap_or(0);
        *self.stats.outcomes.entry((verb, errno)).or_default() += 1;
        // Contract checks that need no snapshot.
        if !ctl::is_blank(line) && line.len() > ctl::MAX_LINE && errno != libc::EINVAL {
            return Err(format!(
                "a {}-byte line gave errno {} instead of EINVAL",
                line.len(),
                errno_name(errno)
            ));
        }
        let rejected = match scope {
            Scope::System => matches!(parsed, Some(Err(_))),
            Scope::Process(_) => ctl::parse_process(line).is_err(),
        };
        if rejected && !ctl::is_blank(line) && errno == 0 {
            return Err("the parser rejects this line but it ran".into());
        }
        if errno != 0 {
            let last = self.kernel().dmesg.last().unwrap_or("").to_string();
            let quoted: String = line.trim().chars().take(40).collect();
            if !last.contains(quoted.as_str()) {
                return Err(format!(
                    "failed line not quoted in dmesg; last record: {last:?}"
                ));
            }
        }
        if let Some(before) = before
            && is_validation_errno(errno)
        {
            self.stats.validation_checks += 1;
            let after = snapshot(self.kernel());
            if let Some(diff) = first_difference(&before, &after) {
                return Err(format!(
                    "a command refused with {} changed {diff}",
                    errno_name(errno)
                ));
            }
        }
        Ok(())
    }

    fn check_all_files(&mut self) -> Result<(), String> {
        let k = self.kernel.as_ref().expect("booted");
        let mut texts = BTreeMap::new();
        for (name, _, file) in GLOBAL_FILES {
            let text = render_global(k, *file);
            if *file != GlobalFile::Dmesg || !text.is_empty() {
                checks::complete_lines(name, &text)?;
            }
            texts.insert(*name, text);
        }
        checks::check_vmstat(&texts["vmstat"])?;
        checks::cross_check(&texts["buddyinfo"], &texts["meminfo"], &texts["swaps"])?;
        for name in writable_sysctls() {
            let v = k
                .sysctl_read(name)
                .map_err(|e| format!("sys/{name}: {e}"))?;
            checks::complete_lines(name, &v)?;
        }
        for pid in k.pids() {
            for (name, _, file) in PID_FILES {
                let text = render_pid(k, pid, *file).map_err(|e| format!("{pid}/{name}: {e}"))?;
                check_pid_file(pid, name, &text)?;
            }
        }
        Ok(())
    }
}

/// A per-process file is empty or whole lines; `cmdline` is NUL-separated.
fn check_pid_file(pid: Pid, name: &str, text: &str) -> Result<(), String> {
    if text.is_empty() {
        return Ok(());
    }
    if name == "cmdline" {
        return if text.ends_with('\0') {
            Ok(())
        } else {
            Err(format!("{pid}/cmdline does not end with NUL: {text:?}"))
        };
    }
    checks::complete_lines(&format!("{pid}/{name}"), text)
}

/// Failures with the same kind and message up to numbers are one bug.
pub fn failure_key(kind: &str, message: &str) -> String {
    let mut out = format!("{kind}: ");
    let mut chars = message.chars().peekable();
    while let Some(c) = chars.next() {
        if out.len() > 140 {
            break;
        }
        if c == '(' {
            // Process names and other parenthesised details vary.
            for c in chars.by_ref() {
                if c == ')' {
                    break;
                }
            }
            out.push_str("(..)");
        } else if c.is_ascii_digit() {
            while chars.peek().is_some_and(|c| c.is_ascii_alphanumeric()) {
                chars.next();
            }
            out.push('N');
        } else {
            out.push(c);
        }
    }
    out
}

/// Shrink `trace` (a boot, then operations, the last one failing) to a
/// short sequence that fails with the same kind and key: delta debugging
/// (drop chunks, halving the chunk size), within the configured budget.
pub fn minimize(cfg: &FuzzConfig, trace: &[Op], kind: &str, message: &str) -> Option<Vec<Op>> {
    let Some(Op::Boot(config)) = trace.first() else {
        return None;
    };
    let target = failure_key(kind, message);
    let deadline = Instant::now() + cfg.minimize_budget;
    let mut replayer = Fuzzer::new(FuzzConfig {
        minimize_budget: Duration::ZERO,
        trace_from: None,
        ..cfg.clone()
    });
    // A broken invariant usually stays broken: replays then check the
    // invariants only at the end, which makes each replay many times faster.
    replayer.light = kind == "invariant";
    let mut fails = |ops: &[Op]| -> bool {
        if replayer.boot(*config).is_err() {
            return false;
        }
        for op in ops {
            PROGRESS.fetch_add(1, Ordering::SeqCst);
            if let Err((k, m)) = replayer.run_op(op) {
                return failure_key(k, &m) == target;
            }
            if replayer.kernel.is_none() {
                return false;
            }
        }
        match replayer.kernel.as_ref().map(|k| k.check_invariants()) {
            Some(Err(e)) => failure_key("invariant", &e) == target,
            _ => false,
        }
    };
    let mut ops: Vec<Op> = trace[1..].to_vec();
    if !fails(&ops) {
        return None;
    }
    // Reads rarely matter: try without all of them first.
    let no_reads: Vec<Op> = ops
        .iter()
        .filter(|op| {
            !matches!(
                op,
                Op::ReadGlobal(_) | Op::ReadPid(..) | Op::ReadAll | Op::ReadMem(..)
            )
        })
        .cloned()
        .collect();
    if no_reads.len() < ops.len() && fails(&no_reads) {
        ops = no_reads;
    }
    let mut chunk = ops.len().div_ceil(2).max(1);
    loop {
        let mut i = 0;
        let mut removed_any = false;
        while i < ops.len() {
            if Instant::now() > deadline {
                let mut out = vec![Op::Boot(*config)];
                out.extend(ops);
                return Some(out);
            }
            let end = (i + chunk).min(ops.len());
            // Never drop the failing operation itself.
            if end == ops.len() && i == 0 {
                i = end;
                continue;
            }
            let mut candidate = ops[..i].to_vec();
            candidate.extend_from_slice(&ops[end..]);
            if !candidate.is_empty() && fails(&candidate) {
                ops = candidate;
                removed_any = true;
            } else {
                i = end;
            }
        }
        if chunk == 1 && !removed_any {
            break;
        }
        if !removed_any || chunk > 1 {
            chunk = (chunk / 2).max(1);
        }
    }
    let mut out = vec![Op::Boot(*config)];
    out.extend(ops);
    Some(out)
}

fn rng_pick_string(rng: &mut Rng, items: &[&str]) -> String {
    rng.pick(items).to_string()
}

/// The path a swap command names.
pub fn swap_path_of(cmd: &Command) -> Option<&str> {
    match cmd {
        Command::Mkswap { path, .. } | Command::Swapon { path, .. } | Command::Swapoff { path } => {
            Some(path)
        }
        _ => None,
    }
}

/// Every rendered file whose content a refused command must not change:
/// all system files but dmesg (the refusal is logged) and the clock-derived
/// lines of stat (every command costs simulated time); the sysctls; every
/// file of every process.
pub fn snapshot(k: &Machine) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (name, _, file) in GLOBAL_FILES {
        match file {
            GlobalFile::Dmesg => {}
            GlobalFile::Stat => {
                let text: String = render_global(k, *file)
                    .lines()
                    .filter(|l| !l.starts_with("cpu") && !l.starts_with("intr"))
                    .map(|l| format!("{l}\n"))
                    .collect();
                out.push((name.to_string(), text));
            }
            _ => out.push((name.to_string(), render_global(k, *file))),
        }
    }
    for name in writable_sysctls() {
        out.push((
            format!("sys/{name}"),
            k.sysctl_read(name).unwrap_or_default(),
        ));
    }
    out.push(("pids".into(), format!("{:?}", k.pids())));
    for pid in k.pids() {
        for (name, _, file) in PID_FILES {
            let text = render_pid(k, pid, *file).unwrap_or_else(|e| format!("error {e}"));
            out.push((format!("{pid}/{name}"), text));
        }
    }
    out
}

/// The first file whose text differs, with the first differing line.
pub fn first_difference(a: &[(String, String)], b: &[(String, String)]) -> Option<String> {
    if a.len() != b.len() {
        return Some(format!("the set of files ({} → {})", a.len(), b.len()));
    }
    for ((name, x), (_, y)) in a.iter().zip(b) {
        if x != y {
            let line = x
                .lines()
                .zip(y.lines())
                .find(|(p, q)| p != q)
                .map(|(p, q)| format!("{p:?} → {q:?}"))
                .unwrap_or_else(|| "(line count)".into());
            return Some(format!("{name}: {line}"));
        }
    }
    None
}

/// A scratch directory for host swap files, unique to this process.
pub fn scratch_dir(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("mmfs-fuzz-{}-{tag}", std::process::id()))
}
