//! `--clock wall`: simulated time follows real time. A ticker thread lets
//! time pass one jiffy at a time (LRU ageing, kswapd), and a write whose
//! work took the simulated clock ahead of real time is answered only when
//! real time has caught up (at most [`MAX_PACE`] later), so a workload
//! runs at the simulated machine's speed and `vmstat 1`, which divides by
//! its own sleep, shows rates per simulated second. The reply waits on a
//! thread of its own: no request thread and no lock is held meanwhile.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::RwLock;

use crate::ctl::Machine;
use crate::mm::TICK_NS;
use crate::mm::cputime::ClockMode;

/// Longest a write waits for real time: a `tick 1000000` (10^4 s) does not
/// hang its shell for hours; the clock then stays ahead.
pub const MAX_PACE: Duration = Duration::from_secs(60);

/// Real time since the mount, mapped onto the simulated clock.
#[derive(Clone, Copy, Debug)]
pub struct WallClock {
    start: Instant,
    base_ns: u64,
}

impl WallClock {
    /// Put `machine` on the wall clock and start its ticker.
    pub fn start(machine: Arc<RwLock<Machine>>) -> io::Result<WallClock> {
        let clock = {
            let mut m = machine.write();
            m.clock_mode = ClockMode::Wall;
            WallClock {
                start: Instant::now(),
                base_ns: m.clock_ns,
            }
        };
        std::thread::Builder::new()
            .name("mmfs-clock".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(Duration::from_nanos(TICK_NS));
                    machine.write().wall_tick(clock.now_ns());
                }
            })?;
        Ok(clock)
    }

    /// Real time now, as simulated ns since boot.
    pub fn now_ns(&self) -> u64 {
        let real = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.base_ns.saturating_add(real)
    }

    /// How long a write that left the simulated clock at `clock_ns` waits
    /// before its reply.
    pub fn pace(&self, clock_ns: u64) -> Duration {
        Duration::from_nanos(clock_ns.saturating_sub(self.now_ns())).min(MAX_PACE)
    }
}
