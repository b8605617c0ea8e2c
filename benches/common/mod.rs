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
