//! Shared by the bench binaries.

/// CPU time of this thread, in seconds: unlike the wall clock it does not
/// count the time other jobs on a shared machine take the CPU away.
pub fn cpu_now() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// The sections named on the command line (`cargo bench --bench X -- a
/// b`): a test for whether to run one; every section when none is named.
#[allow(dead_code)]
pub fn sections() -> impl Fn(&str) -> bool {
    let named: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    move |name: &str| named.is_empty() || named.iter().any(|n| n == name)
}

/// A system command (`MOUNT/ctl`); a failure ends the bench.
#[allow(dead_code)]
pub fn sys(k: &mut mmfs::ctl::Machine, line: &str) {
    k.execute_line(mmfs::ctl::Scope::System, line)
        .unwrap_or_else(|e| panic!("{line}: {e}"));
}

/// A command of process `pid` (`MOUNT/PID/ctl`); a failure ends the bench.
#[allow(dead_code)]
pub fn run(k: &mut mmfs::ctl::Machine, pid: mmfs::mm::types::Pid, line: &str) {
    k.execute_line(mmfs::ctl::Scope::Process(pid), line)
        .unwrap_or_else(|e| panic!("{line}: {e}"));
}

/// A simulated x86-64 machine with `mem_bytes` of memory; a failure ends
/// the bench.
#[allow(dead_code)]
pub fn boot(mem_bytes: u64) -> mmfs::ctl::Machine {
    mmfs::ctl::Machine::boot(mmfs::mm::MachineConfig {
        arch: mmfs::mm::types::Arch::X86_64,
        mem_bytes,
    })
    .expect("boot")
}

/// A line written to the ctl file of `scope`; a failure ends the bench.
#[allow(dead_code)]
pub fn exec(k: &mut mmfs::ctl::Machine, scope: mmfs::ctl::Scope, line: &str) {
    k.execute_line(scope, line)
        .unwrap_or_else(|e| panic!("{line}: {e}"));
}

/// `spawn NAME`: the new process's pid.
#[allow(dead_code)]
pub fn spawn(k: &mut mmfs::ctl::Machine, name: &str) -> mmfs::mm::types::Pid {
    k.execute_line(mmfs::ctl::Scope::System, format!("spawn {name}"))
        .expect("spawn")
        .expect("a pid")
}

/// The fastest of `rounds` runs of `f`, which returns its own time in
/// seconds and a value (kept from the fastest run): a busy neighbour only
/// ever makes a run slower.
#[allow(dead_code)]
pub fn best_of<T>(rounds: usize, mut f: impl FnMut() -> (f64, T)) -> (f64, T) {
    let mut best: Option<(f64, T)> = None;
    for _ in 0..rounds {
        let r = f();
        if best.as_ref().is_none_or(|b| r.0 < b.0) {
            best = Some(r);
        }
    }
    best.expect("at least one round")
}

/// A stopwatch of this thread's CPU time ([`cpu_now`]).
#[allow(dead_code)]
pub struct Cpu(f64);

#[allow(dead_code)]
impl Cpu {
    /// Start counting.
    pub fn start() -> Cpu {
        Cpu(cpu_now())
    }
    /// Seconds of CPU time since the start.
    pub fn elapsed(&self) -> f64 {
        cpu_now() - self.0
    }
}

/// The fastest of `rounds` runs of `f`, which returns its own time.
#[allow(dead_code)]
pub fn fastest(rounds: usize, mut f: impl FnMut() -> f64) -> f64 {
    (0..rounds).map(|_| f()).fold(f64::MAX, f64::min)
}
