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
//! - `Machine::check_invariants` is Ok;
//! - on a sample of failing commands whose errno means "rejected before
//!   doing anything" (EINVAL, ENOENT, EEXIST, EBUSY, ESRCH, EPERM), every
//!   rendered file is byte-identical to before (dmesg and the clock-derived
//!   lines of stat excepted);
//! - on a sample of states, every file renders as whole lines and the
//!   cross-file identities hold (buddyinfo × 4 = MemFree, swaps vs meminfo).
//!
//! The parts, each with one concern: [`gen`] makes operations (typed
//! commands printed with `Display`, and malformed text), [`exec`] runs one
//! on a machine under `catch_unwind` with the per-operation checks,
//! [`checks`] holds the checks on rendered files, [`shrink`] cuts a failing
//! trace to a short reproducer and [`report`] counts and reports. [`Fuzzer`]
//! only strings them together.
//!
//! Everything is a function of the seed, so a failure report (seed, boot
//! number, operation index and the operations since that boot) is an exact
//! reproducer. Host swap files are only ever created inside a scratch
//! directory the fuzzer owns; every other swap path is under `/dev/`
//! (simulated partitions) or relative (refused).

#![allow(dead_code)]

pub mod checks;
pub mod exec;
pub mod r#gen;
pub mod op;
pub mod report;
pub mod rng;
pub mod shrink;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use mmfs::ctl::Command;
use mmfs::procfs::{GlobalFile, render_global};

pub use exec::{CURRENT, Executor, PROGRESS, start_watchdog};
pub use r#gen::Generator;
pub use op::Op;
pub use report::{Failure, Stats, failure_key};
pub use shrink::minimize;

/// Failures kept in full (the rest are only counted).
const MAX_FAILURES: usize = 20;
/// Operations of the current boot kept for a reproducer.
const TRACE_KEEP: usize = 100_000;

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

/// The fuzzer: a generator, a machine, and the report of the run.
pub struct Fuzzer {
    cfg: FuzzConfig,
    generator: Generator,
    executor: Executor,
    /// The boot and the operations since, for a reproducer.
    trace: Vec<Op>,
    ops_left_in_boot: u64,
    /// The statistics of the run.
    pub stats: Stats,
}

impl Fuzzer {
    /// A fuzzer for `cfg`; the first operation boots a machine.
    pub fn new(cfg: FuzzConfig) -> Fuzzer {
        Fuzzer {
            generator: Generator::new(&cfg),
            executor: Executor::new(cfg.swap_dir.clone()),
            cfg,
            trace: Vec::new(),
            ops_left_in_boot: 0,
            stats: Stats::default(),
        }
    }

    /// Run the configured operations, then shrink each kept failure's
    /// reproducer; returns the statistics and removes the scratch directory.
    pub fn run(mut self) -> Stats {
        self.run_ops();
        // Shrink once the run's own machine is gone (the replays reuse its
        // scratch directory).
        self.executor.shut_down();
        if !self.cfg.minimize_budget.is_zero() {
            for f in &mut self.stats.failures {
                f.minimized = minimize(&self.cfg, &f.trace, f.kind, &f.message);
            }
        }
        self.executor.shut_down();
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
        let Some(k) = &self.executor.kernel else {
            return Vec::new();
        };
        let mut out = checks::snapshot(k);
        out.push(("dmesg".into(), render_global(k, GlobalFile::Dmesg)));
        out
    }

    /// Generate `n` operations without running them (no machine booted).
    pub fn sample_ops(&mut self, n: usize) -> Vec<Op> {
        (0..n).map(|_| self.generator.next_op(None)).collect()
    }

    /// One operation: boot when due, generate, run with every check.
    fn step(&mut self, index: u64) {
        if self.executor.kernel.is_none() || self.ops_left_in_boot == 0 {
            let (config, ops) = self.generator.next_boot();
            self.ops_left_in_boot = ops;
            self.stats.boots += 1;
            self.trace.clear();
            self.trace.push(Op::Boot(config));
            if let Err((kind, message)) = self.executor.boot(config) {
                self.fail(index, kind, message);
                return;
            }
        }
        self.ops_left_in_boot -= 1;
        let op = self.generator.next_op(self.executor.kernel.as_ref());
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
        if let Err((kind, message)) = self.executor.run_op(&op, &mut self.stats) {
            self.fail(index, kind, message);
        }
        if let Some(k) = &self.executor.kernel {
            self.stats.max_pids = self.stats.max_pids.max(k.pids().len());
        }
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

/// A scratch directory for host swap files, unique to this process.
pub fn scratch_dir(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("mmfs-fuzz-{}-{tag}", std::process::id()))
}
