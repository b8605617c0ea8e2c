//! Shrinking: cut a failing trace down to a short sequence that fails the
//! same way (delta debugging), by replaying candidates on a fresh
//! [`Executor`] within a time budget.

use std::sync::atomic::Ordering;
use std::time::Instant;

use super::exec::{Executor, PROGRESS};
use super::report::{Stats, failure_key};
use super::{FuzzConfig, Op};

/// Replays candidate sequences and says whether they still fail the same
/// way as the original trace.
struct Replayer {
    executor: Executor,
    config: mmfs::mm::MachineConfig,
    target: String,
}

impl Replayer {
    /// True when `ops` (after a boot) fail with the target's key.
    fn fails(&mut self, ops: &[Op]) -> bool {
        if self.executor.boot(self.config).is_err() {
            return false;
        }
        let mut stats = Stats::default();
        for op in ops {
            PROGRESS.fetch_add(1, Ordering::SeqCst);
            if let Err((k, m)) = self.executor.run_op(op, &mut stats) {
                return failure_key(k, &m) == self.target;
            }
            if self.executor.kernel.is_none() {
                return false;
            }
        }
        match self.executor.kernel.as_ref().map(|k| k.check_invariants()) {
            Some(Err(e)) => failure_key("invariant", &e) == self.target,
            _ => false,
        }
    }
}

/// Shrink `trace` (a boot, then operations, the last one failing) to a
/// short sequence that fails with the same kind and key: delta debugging
/// (drop chunks, halving the chunk size), within `cfg.minimize_budget`.
/// None when the trace does not fail again on replay.
pub fn minimize(cfg: &FuzzConfig, trace: &[Op], kind: &str, message: &str) -> Option<Vec<Op>> {
    let Some(Op::Boot(config)) = trace.first() else {
        return None;
    };
    let deadline = Instant::now() + cfg.minimize_budget;
    let mut executor = Executor::new(cfg.swap_dir.clone());
    // A broken invariant usually stays broken: replays then check the
    // invariants only at the end, which makes each replay many times faster.
    executor.light = kind == "invariant";
    let mut replayer = Replayer {
        executor,
        config: *config,
        target: failure_key(kind, message),
    };
    let mut ops: Vec<Op> = trace[1..].to_vec();
    if !replayer.fails(&ops) {
        return None;
    }
    // Reads rarely matter: try without all of them first.
    let no_reads: Vec<Op> = ops.iter().filter(|op| !op.is_read()).cloned().collect();
    if no_reads.len() < ops.len() && replayer.fails(&no_reads) {
        ops = no_reads;
    }
    let mut chunk = ops.len().div_ceil(2).max(1);
    'shrink: loop {
        let mut i = 0;
        let mut removed_any = false;
        while i < ops.len() {
            if Instant::now() > deadline {
                break 'shrink;
            }
            let end = (i + chunk).min(ops.len());
            // Never drop the failing operation itself.
            if end == ops.len() && i == 0 {
                i = end;
                continue;
            }
            let mut candidate = ops[..i].to_vec();
            candidate.extend_from_slice(&ops[end..]);
            if !candidate.is_empty() && replayer.fails(&candidate) {
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
    replayer.executor.shut_down();
    let mut out = vec![Op::Boot(*config)];
    out.extend(ops);
    Some(out)
}
