//! Pressure stall information for memory (Linux: kernel/sched/psi.c,
//! /proc/pressure/memory): the time tasks spent stalled in reclaim,
//! swap-in and compaction, as running totals (µs) and as 10 s, 60 s and
//! 300 s decaying averages of the stalled share of every PSI_FREQ period.
//!
//! `some`: at least one task stalled; `full`: no task could make progress.
//! In the serial simulation a user task stalled in direct reclaim or a
//! swap-in is the only one with work (some and full); kswapd's reclaim
//! stalls itself only, as the workload runs beside it (some).

use super::TICK_NS;
use super::loadavg::{FIXED_1, Periods, calc_load, calc_load_n, load_int_frac};

/// PSI_FREQ: 2 s and one tick.
pub const PSI_FREQ_NS: u64 = 2 * 100 * TICK_NS + TICK_NS;
/// EXP_10s, EXP_60s, EXP_300s: 1/exp(2s/10s), … in fixed point.
pub const EXP_PSI: [u64; 3] = [1677, 1981, 2034];

/// One state (`some` or `full`) of one resource.
#[derive(Clone, Debug)]
pub struct PsiState {
    /// Stalled time since boot, ns.
    pub total_ns: u64,
    /// avg10, avg60, avg300 in fixed point (percent).
    pub avg: [u64; 3],
    periods: Periods,
}

impl Default for PsiState {
    fn default() -> Self {
        PsiState {
            total_ns: 0,
            avg: [0; 3],
            periods: Periods::new(PSI_FREQ_NS),
        }
    }
}

impl PsiState {
    fn add(&mut self, ns: u64) {
        self.total_ns += ns;
        self.periods.backlog_ns += ns;
    }

    /// `calc_avgs` for every period that ended by `now`.
    fn advance(&mut self, now: u64) {
        let Self { avg, periods, .. } = self;
        let period = periods.period_ns;
        periods.advance(now, |stalled, n| {
            let pct = stalled * 100 / period * FIXED_1;
            for (a, exp) in avg.iter_mut().zip(EXP_PSI) {
                // n - 1 periods of the same share, then the sample itself.
                let before = if n > 1 {
                    calc_load_n(*a, exp, pct, n - 1)
                } else {
                    *a
                };
                *a = calc_load(before, exp, pct);
            }
        });
    }

    /// One line of /proc/pressure/memory without its `some`/`full` word.
    pub fn show(&self) -> String {
        let [a10, a60, a300] = self.avg.map(load_int_frac);
        format!(
            "avg10={}.{:02} avg60={}.{:02} avg300={}.{:02} total={}",
            a10.0,
            a10.1,
            a60.0,
            a60.1,
            a300.0,
            a300.1,
            self.total_ns / 1000
        )
    }
}

/// The memory resource's two states.
#[derive(Clone, Debug, Default)]
pub struct Psi {
    /// At least one task stalled.
    pub some: PsiState,
    /// Every task with work stalled.
    pub full: PsiState,
}

impl Psi {
    /// Stall time accounted now.
    pub fn add(&mut self, some_ns: u64, full_ns: u64) {
        self.some.add(some_ns);
        self.full.add(full_ns);
    }

    /// Bring the averages up to `now`.
    pub fn advance(&mut self, now: u64) {
        self.some.advance(now);
        self.full.advance(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fully_stalled_minute_reads_near_100_then_decays() {
        let mut p = Psi::default();
        p.add(60_000_000_000, 30_000_000_000);
        p.advance(60_000_000_000);
        let line = p.some.show();
        assert!(line.starts_with("avg10=99."), "{line}");
        assert!(line.ends_with("total=60000000"), "{line}");
        assert!(p.full.avg[0] < p.some.avg[0]);
        p.advance(3_600_000_000_000);
        assert!(
            p.some
                .show()
                .starts_with("avg10=0.00 avg60=0.00 avg300=0.00")
        );
    }
}
