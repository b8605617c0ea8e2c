//! What a run reports: the counters ([`Stats`]) and each failure with its
//! reproducer ([`Failure`]).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use super::Op;
use super::exec::SLOW_OP;

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
    /// (at most [`super::TRACE_KEEP`]).
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
    /// Failures seen (kept in full up to [`super::MAX_FAILURES`]).
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
