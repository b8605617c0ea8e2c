//! Execution: one [`Op`] on a simulated machine, under `catch_unwind`,
//! with the per-operation contract checks and the invariant check after
//! it; the panic hook that records panics instead of printing them; and
//! the hang watchdog.
//!
//! Nothing here measures speed against a limit: slow operations are only
//! counted ([`SLOW_OP`]); the watchdog aborts on a real hang.

use std::cell::{Cell, RefCell};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mmfs::ctl::Machine;
use mmfs::ctl::{self, Scope};
use mmfs::fs::linebuf::LineBuffer;
use mmfs::mm::MachineConfig;
use mmfs::mm::sysctl::writable_sysctls;
use mmfs::procfs::pid::{PID_FILES, render_pid};
use mmfs::procfs::render_global;

use super::checks;
use super::report::{Stats, errno_name};
use super::{Op, swap_path_of};

/// Operations that take longer than this are counted in the summary (a
/// hint of an unbounded loop on some input). Only counted, never a
/// failure: on a loaded machine any operation can be slow. Real hangs are
/// the watchdog's ([`start_watchdog`]).
pub const SLOW_OP: Duration = Duration::from_secs(2);

/// What failed: (kind, message).
pub type Outcome = Result<(), (&'static str, String)>;

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

/// A simulated machine the fuzzer drives: boots, runs operations with
/// every check, and drops the kernel when its state is undefined (after a
/// panic or a broken invariant).
pub struct Executor {
    /// The machine, while booted and sound.
    pub kernel: Option<Machine>,
    /// The only directory host swap files may be created in.
    swap_dir: PathBuf,
    /// Replay mode of the minimizer: no invariant check after each
    /// operation and no no-change snapshots.
    pub light: bool,
}

impl Executor {
    /// No machine yet; host swap files go to `swap_dir`.
    pub fn new(swap_dir: PathBuf) -> Executor {
        install_panic_hook();
        Executor {
            kernel: None,
            swap_dir,
            light: false,
        }
    }

    /// Boot a machine (emptying the scratch directory first).
    pub fn boot(&mut self, config: MachineConfig) -> Outcome {
        self.kernel = None;
        let _ = std::fs::remove_dir_all(&self.swap_dir);
        std::fs::create_dir_all(&self.swap_dir).expect("create the fuzzer's swap directory");
        let mut kernel =
            Machine::boot(config).map_err(|e| ("boot", format!("boot {config:?} failed: {e}")))?;
        // Paths under swap_dir/mnt stand for the daemon's own mount.
        kernel.swap.own_mount = Some(self.swap_dir.join("mnt"));
        kernel
            .check_invariants()
            .map_err(|e| ("invariant", format!("right after boot: {e}")))?;
        self.kernel = Some(kernel);
        Ok(())
    }

    /// Drop the machine and the scratch directory.
    pub fn shut_down(&mut self) {
        self.kernel = None;
        let _ = std::fs::remove_dir_all(&self.swap_dir);
    }

    fn kernel(&mut self) -> &mut Machine {
        self.kernel.as_mut().expect("a booted machine")
    }

    /// Run one operation with every check, counting into `stats`. After a
    /// panic or a broken invariant the machine is dropped.
    pub fn run_op(&mut self, op: &Op, stats: &mut Stats) -> Outcome {
        let started = Instant::now();
        IN_OP.with(|f| f.set(true));
        let result = {
            let this = &mut *self;
            let stats = &mut *stats;
            catch_unwind(AssertUnwindSafe(|| this.execute(op, stats)))
        };
        IN_OP.with(|f| f.set(false));
        let took = started.elapsed();
        if took > stats.slowest.0 {
            stats.slowest = (took, op.to_string());
        }
        if took > SLOW_OP {
            stats.slow_ops += 1;
        }
        let outcome = match result {
            Err(_) => {
                self.kernel = None;
                return Err(("panic", take_panic()));
            }
            Ok(Err(message)) => Err(("check", message)),
            Ok(Ok(())) => Ok(()),
        };
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

    fn execute(&mut self, op: &Op, stats: &mut Stats) -> Result<(), String> {
        match op {
            Op::Boot(_) => Ok(()),
            Op::Ctl(scope, line) => self.execute_ctl(*scope, line, false, stats),
            Op::CtlChecked(scope, line) if self.light => {
                settle_deferred_work(self.kernel());
                self.execute_ctl(*scope, line, false, stats)
            }
            Op::CtlChecked(scope, line) => self.execute_ctl(*scope, line, true, stats),
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
                *stats.outcomes.entry(key).or_default() += 1;
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
                stats.commands += lines;
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
                *stats.outcomes.entry(key).or_default() += 1;
                if r.is_err() && self.kernel().sysctl_read(name).ok() != before {
                    return Err(format!(
                        "failed sysctl write {name} <- {value:?} changed the value"
                    ));
                }
                // Write-only actions (compact_memory) read back empty.
                if r.is_ok() && writable_sysctls().any(|w| w == name) {
                    let now = self.kernel().sysctl_read(name).unwrap_or_default();
                    if now.trim().parse::<u64>().ok() != value.trim().parse::<u64>().ok() {
                        return Err(format!("sysctl {name} <- {value:?} reads back {now:?}"));
                    }
                }
                Ok(())
            }
            Op::ReadGlobal(file) => {
                let text = render_global(self.kernel(), *file);
                if !checks::may_be_empty(*file) || !text.is_empty() {
                    checks::complete_lines(&format!("{file:?}"), &text)?;
                }
                Ok(())
            }
            Op::ReadPid(pid, index) => {
                let (name, _, file) = PID_FILES[*index];
                match render_pid(self.kernel(), *pid, file) {
                    Ok(text) => checks::check_pid_file(*pid, name, &text),
                    Err(e) if e.errno() == libc::ESRCH => {
                        // A kernel thread's smaps_rollup is ESRCH, as on Linux.
                        if self.kernel().pids().contains(pid)
                            && self.kernel().kthreads.get(*pid).is_none()
                        {
                            Err(format!("{pid}/{name}: ESRCH for a live process"))
                        } else {
                            Ok(())
                        }
                    }
                    Err(e) => Err(format!("{pid}/{name}: {e}")),
                }
            }
            Op::ReadAll => {
                stats.file_checks += 1;
                checks::check_all_files(self.kernel())
            }
            Op::ReadMem(pid, addr, len) => {
                let r = self.kernel().read_mem(*pid, *addr, *len);
                let key = (
                    "read_mem".to_string(),
                    r.as_ref().err().map(|e| e.errno()).unwrap_or(0),
                );
                *stats.outcomes.entry(key).or_default() += 1;
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
                *stats.outcomes.entry(key).or_default() += 1;
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

    fn execute_ctl(
        &mut self,
        scope: Scope,
        line: &str,
        sample: bool,
        stats: &mut Stats,
    ) -> Result<(), String> {
        stats.commands += 1;
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
            && !Path::new(path).starts_with(&self.swap_dir)
        {
            return Ok(());
        }
        let before = if sample {
            let k = self.kernel();
            settle_deferred_work(k);
            Some(checks::snapshot(k))
        } else {
            None
        };
        let result = self.kernel().execute_line(scope, line);
        let errno = result.as_ref().err().map(|e| e.errno()).unwrap_or(0);
        *stats.outcomes.entry((verb, errno)).or_default() += 1;
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
            && checks::is_validation_errno(errno)
        {
            stats.validation_checks += 1;
            let after = checks::snapshot(self.kernel());
            if let Some(diff) = checks::first_difference(&before, &after) {
                return Err(format!(
                    "a command refused with {} changed {diff}",
                    errno_name(errno)
                ));
            }
        }
        Ok(())
    }
}

/// Settle the deferred work first: kswapd, then the flusher's background
/// writeback, run after every command, failed or not (in this order), and
/// are not the command's doing — kswapd's reclaim moves the dirty
/// thresholds, so a refused command may find the flusher with work.
fn settle_deferred_work(k: &mut mmfs::mm::Kernel) {
    k.run_kswapd();
    k.wb_background();
    // Swap writes in flight complete on the clock, which every command
    // moves a little: let them finish, so that a refused command's step
    // of the clock does not show as a change of Writeback.
    // (kswapd may start more; a few rounds settle it.)
    for _ in 0..8 {
        match k.swap.cache.last_writeback_end() {
            Some(end) if end > k.clock_ns => {
                k.advance_clock(end, u64::MAX);
                k.run_kswapd();
                k.wb_background();
            }
            _ => break,
        }
    }
}
