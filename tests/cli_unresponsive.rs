//! An unresponsive mount never hangs the CLI: with the daemon stopped
//! (SIGSTOP), `mmfs umount`, `mmfs mount` over it and `mmfs exec` give up
//! within seconds with one line naming the fix (`umount -l DIR`).
//!
//! Timing is only bounded by a generous watchdog, never asserted tightly:
//! the suite must pass on a busy machine.

mod common;

use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::{MMFS, Mount, Scratch, mmfs, mounted, stderr};

/// A guard against a true hang only: a command gives up after about 5 s;
/// its time is printed, never asserted.
const WATCHDOG: Duration = Duration::from_secs(120);

/// A mount whose daemon is stopped. Dropping it continues the daemon, then
/// the inner [`Mount`] unmounts (lazily) and ends it, even after a failed
/// assertion.
struct Stopped {
    mount: Mount,
}

impl Stopped {
    fn new() -> Stopped {
        let mount = Mount::new();
        signal(mount.pid, libc::SIGSTOP);
        let stopped = Stopped { mount };
        let start = Instant::now();
        while state(stopped.mount.pid) != Some('T') {
            assert!(
                start.elapsed() < WATCHDOG,
                "daemon {} did not stop",
                stopped.mount.pid
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        stopped
    }

    fn dir(&self) -> &Path {
        &self.mount.dir
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        signal(self.mount.pid, libc::SIGCONT);
    }
}

fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: kill has no memory preconditions; the pid is our daemon's.
    unsafe {
        libc::kill(pid as i32, sig);
    }
}

/// The state letter of process `pid` (R, S, T, Z, ...).
fn state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.chars().next()
}

/// Run `mmfs ARGS...` under the watchdog: its status, its stderr and how
/// long it took. Stderr goes to a file, so that no pipe can keep this
/// waiting after the command has exited.
fn run_bounded(args: &[&std::ffi::OsStr]) -> (ExitStatus, String, Duration) {
    let scratch = Scratch::new("stderr");
    let err_path = scratch.path.join("stderr");
    let err_file = std::fs::File::create(&err_path).expect("create stderr file");
    let start = Instant::now();
    let mut child = Command::new(MMFS)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err_file)
        .spawn()
        .expect("run mmfs");
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for mmfs") {
            break status;
        }
        if start.elapsed() > WATCHDOG {
            let _ = child.kill();
            let _ = child.wait();
            panic!("mmfs {args:?} still running after {WATCHDOG:?}: it hangs");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = start.elapsed();
    let text = std::fs::read_to_string(&err_path).unwrap_or_default();
    eprintln!("mmfs {args:?}: {status} after {took:?}: {}", text.trim());
    (status, text, took)
}

/// The command failed with one line that names `umount -l MOUNTPOINT`.
fn assert_names_umount_l(args: &[&std::ffi::OsStr], mountpoint: &Path) {
    let (status, text, _) = run_bounded(args);
    assert_eq!(status.code(), Some(1), "mmfs {args:?}: {text}");
    assert_eq!(text.lines().count(), 1, "mmfs {args:?}: {text}");
    let fix = format!("umount -l {}", mountpoint.display());
    assert!(
        text.contains(&fix),
        "mmfs {args:?} does not name `{fix}`: {text}"
    );
}

fn os(s: &str) -> &std::ffi::OsStr {
    std::ffi::OsStr::new(s)
}

#[test]
fn umount_of_a_stopped_daemon_gives_up_naming_umount_l() {
    let m = Stopped::new();
    assert_names_umount_l(&[os("umount"), m.dir().as_os_str()], m.dir());
    // Nothing was detached behind the user's back.
    assert!(mounted(m.dir()));
    // Once the daemon runs again, mmfs umount does its job.
    signal(m.mount.pid, libc::SIGCONT);
    let out = mmfs([os("umount"), m.dir().as_os_str()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!mounted(m.dir()));
}

#[test]
fn mount_over_a_stopped_mount_gives_up_naming_umount_l() {
    let m = Stopped::new();
    assert_names_umount_l(&[os("mount"), m.dir().as_os_str()], m.dir());
    // A directory below it names the stuck mount on its path.
    let below = m.dir().join("sub");
    assert_names_umount_l(&[os("mount"), below.as_os_str()], m.dir());
    assert!(mounted(m.dir()));
}

#[test]
fn exec_over_a_stopped_mount_gives_up_naming_umount_l() {
    let m = Stopped::new();
    assert_names_umount_l(
        &[os("exec"), m.dir().as_os_str(), os("--"), os("true")],
        m.dir(),
    );
}

#[test]
fn exec_over_a_dead_mount_names_umount_l() {
    let m = Mount::new();
    signal(m.pid, libc::SIGKILL);
    assert!(mmfs::fs::mount::wait_for_exit(m.pid, WATCHDOG));
    assert_names_umount_l(
        &[os("exec"), m.dir.as_os_str(), os("--"), os("true")],
        &m.dir,
    );
}
