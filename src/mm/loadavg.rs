//! The load average (Linux: kernel/sched/loadavg.c): exponentially
//! decaying averages of the number of runnable and I/O-blocked tasks,
//! sampled every LOAD_FREQ in 11-bit fixed point, and the
//! `calc_load`/`calc_load_n` formulas PSI shares.
//!
//! The simulation is serial, so "tasks active at the sample" is the
//! time-weighted number over the period: the busy and iowait time
//! accounted in it divided by its length. Work longer than a period (one
//! command that swaps for seconds) spills into the next periods.

use super::TICK_NS;

/// FSHIFT: bits of precision.
pub const FSHIFT: u32 = 11;
/// FIXED_1: 1.0 in fixed point.
pub const FIXED_1: u64 = 1 << FSHIFT;
/// LOAD_FREQ: 5 s and one tick.
pub const LOAD_FREQ_NS: u64 = 5 * 100 * TICK_NS + TICK_NS;
/// EXP_1, EXP_5, EXP_15: 1/exp(5s/1min), … in fixed point.
pub const EXP_LOAD: [u64; 3] = [1884, 2014, 2037];

/// `calc_load`: `load * exp + active * (1 - exp)`, rounded up when rising.
pub fn calc_load(load: u64, exp: u64, active: u64) -> u64 {
    let mut newload = load * exp + active * (FIXED_1 - exp);
    if active >= load {
        newload += FIXED_1 - 1;
    }
    newload / FIXED_1
}

/// `fixed_power_int`: `x^n` in fixed point with `frac_bits` bits.
fn fixed_power_int(mut x: u64, frac_bits: u32, mut n: u64) -> u64 {
    let mut result = 1u64 << frac_bits;
    if n > 0 {
        loop {
            if n & 1 != 0 {
                result *= x;
                result += 1 << (frac_bits - 1);
                result >>= frac_bits;
            }
            n >>= 1;
            if n == 0 {
                break;
            }
            x *= x;
            x += 1 << (frac_bits - 1);
            x >>= frac_bits;
        }
    }
    result
}

/// `calc_load_n`: `n` periods of the same `active` at once.
pub fn calc_load_n(load: u64, exp: u64, active: u64, n: u64) -> u64 {
    calc_load(load, fixed_power_int(exp, FSHIFT, n), active)
}

/// `LOAD_INT` and `LOAD_FRAC`: "%lu.%02lu" of a fixed-point value.
pub fn load_int_frac(x: u64) -> (u64, u64) {
    (x >> FSHIFT, ((x & (FIXED_1 - 1)) * 100) >> FSHIFT)
}

/// Time-weighted work in fixed periods, with spill-over.
#[derive(Clone, Copy, Debug)]
pub struct Periods {
    /// Period length.
    pub period_ns: u64,
    /// End of the current period.
    pub next_ns: u64,
    /// Work (ns) not yet assigned to a closed period.
    pub backlog_ns: u64,
}

impl Periods {
    /// Periods of `period_ns`, the first ending `period_ns` after boot.
    pub const fn new(period_ns: u64) -> Periods {
        Periods {
            period_ns,
            next_ns: period_ns,
            backlog_ns: 0,
        }
    }

    /// Close every period that ended by `now`: `sample(used_ns, n)` gets
    /// the work in one period, `n` times in a row (runs of idle periods
    /// come at once).
    pub fn advance(&mut self, now: u64, mut sample: impl FnMut(u64, u64)) {
        while now >= self.next_ns {
            let ended = (now - self.next_ns) / self.period_ns + 1;
            if self.backlog_ns == 0 {
                sample(0, ended);
                self.next_ns += ended * self.period_ns;
                break;
            }
            let full = (self.backlog_ns / self.period_ns).min(ended);
            if full > 0 {
                sample(self.period_ns, full);
                self.backlog_ns -= full * self.period_ns;
                self.next_ns += full * self.period_ns;
            } else {
                sample(self.backlog_ns, 1);
                self.backlog_ns = 0;
                self.next_ns += self.period_ns;
            }
        }
    }
}

/// `avenrun`: the 1, 5 and 15 minute load averages.
#[derive(Clone, Debug)]
pub struct LoadAvg {
    /// Fixed-point averages.
    pub avenrun: [u64; 3],
    periods: Periods,
}

impl Default for LoadAvg {
    fn default() -> Self {
        LoadAvg {
            avenrun: [0; 3],
            periods: Periods::new(LOAD_FREQ_NS),
        }
    }
}

impl LoadAvg {
    /// Task time (running or blocked on I/O) accounted now.
    pub fn add_active(&mut self, ns: u64) {
        self.periods.backlog_ns += ns;
    }

    /// `calc_global_load` for every LOAD_FREQ that ended by `now`.
    pub fn advance(&mut self, now: u64) {
        let Self { avenrun, periods } = self;
        let period = periods.period_ns;
        periods.advance(now, |used, n| {
            let active = used * FIXED_1 / period;
            for (avg, exp) in avenrun.iter_mut().zip(EXP_LOAD) {
                *avg = calc_load_n(*avg, exp, active, n);
            }
        });
    }

    /// The three averages as /proc/loadavg prints them (rounded: `+
    /// FIXED_1/200`).
    pub fn show(&self) -> [(u64, u64); 3] {
        self.avenrun.map(|a| load_int_frac(a + FIXED_1 / 200))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_busy_task_converges_to_one() {
        let mut l = LoadAvg::default();
        let mut now = 0;
        for _ in 0..200 {
            now += LOAD_FREQ_NS;
            l.add_active(LOAD_FREQ_NS);
            l.advance(now);
        }
        assert_eq!(l.show()[0], (1, 0));
        // Then a long idle stretch decays it to nothing in one step.
        l.advance(now + 4 * 3600 * 1_000_000_000);
        assert_eq!(l.show(), [(0, 0); 3]);
    }

    #[test]
    fn calc_load_n_matches_repeated_calc_load() {
        let mut a = 5000;
        for _ in 0..7 {
            a = calc_load(a, EXP_LOAD[0], 0);
        }
        let b = calc_load_n(5000, EXP_LOAD[0], 0, 7);
        assert!(a.abs_diff(b) <= 2, "{a} {b}");
    }

    #[test]
    fn work_spills_over_into_later_periods() {
        let mut p = Periods::new(10);
        p.backlog_ns = 25;
        let mut seen = Vec::new();
        p.advance(40, |used, n| seen.push((used, n)));
        assert_eq!(seen, [(10, 2), (5, 1), (0, 1)]);
    }
}
