//! Shared harness of the integration tests: a real `mmfs mount` in a
//! temporary directory, behind a guard that always unmounts and ends the
//! daemon (also when the test panics).
//!
//! The tests need root and /dev/fuse (CI has both); without them they fail
//! loudly rather than pass without testing anything.

// Each test binary uses a different part of the harness.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use mmfs::fs::mount as mnt;

/// The mmfs binary under test.
pub const MMFS: &str = env!("CARGO_BIN_EXE_mmfs");

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A fresh, empty scratch directory, removed by [`Scratch::drop`].
pub struct Scratch {
    pub path: PathBuf,
}

impl Scratch {
    /// A new directory under the system temp dir, unique to this process.
    pub fn new(tag: &str) -> Scratch {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let path = std::env::temp_dir().join(format!("mmfs-test-{}-{n}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create scratch dir");
        Scratch { path }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // Never recurse into something still mounted.
        let _ = mnt::unmount(&self.path.join("mnt"), true);
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Fail the test with a clear message when the machine cannot mount.
pub fn require_fuse() {
    assert!(
        Path::new("/dev/fuse").exists(),
        "integration tests need /dev/fuse (modprobe fuse)"
    );
    assert!(
        mnt::is_root(),
        "integration tests mount FUSE file systems: run them as root"
    );
}

/// A mounted simulated machine. Dropping it unmounts (lazily, so a busy
/// mount cannot keep it) and kills the daemon if it is still there.
pub struct Mount {
    /// The mount point.
    pub dir: PathBuf,
    /// The daemon's pid.
    pub pid: u32,
    /// The daemon's log file.
    pub log: PathBuf,
    scratch: Scratch,
}

impl Mount {
    /// `mmfs mount` with the default machine.
    pub fn new() -> Mount {
        Mount::with_args(&[])
    }

    /// `mmfs mount DIR ARGS...`; panics with the daemon's message on failure.
    pub fn with_args(args: &[&str]) -> Mount {
        require_fuse();
        let scratch = Scratch::new("mount");
        let dir = scratch.path.join("mnt");
        std::fs::create_dir(&dir).expect("create mount point");
        let dir = dir.canonicalize().expect("canonical mount point");
        let log = scratch.path.join("mmfs.log");
        let out = Command::new(MMFS)
            .arg("mount")
            .arg(&dir)
            .arg("--log")
            .arg(&log)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run mmfs mount");
        assert!(
            out.status.success(),
            "mmfs mount {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let pid = mnt::daemon_pid(&dir).expect("daemon pid from the mount's xattr");
        Mount {
            dir,
            pid,
            log,
            scratch,
        }
    }

    /// A path inside the mount.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    /// Read a file of the mount as text.
    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }

    /// Write `text` to a control file in one write() and close it; the
    /// error of the write (or of the close) comes back.
    pub fn write(&self, rel: &str, text: &str) -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_TRUNC)
            .open(self.path(rel))?;
        file.write_all(text.as_bytes())?;
        close(file)
    }

    /// Run a line on `MOUNT/ctl`, panicking if it fails.
    pub fn ctl(&self, line: &str) {
        self.write("ctl", &format!("{line}\n"))
            .unwrap_or_else(|e| panic!("ctl {line:?}: {e}"));
    }

    /// Run a line on `MOUNT/ctl` and read back, on the same descriptor,
    /// the pid it created (the transaction-file protocol of `spawn` and
    /// `fork`).
    pub fn created(&self, line: &str) -> u32 {
        use std::io::Read;
        let mut ctl = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(self.path("ctl"))
            .expect("open ctl");
        ctl.write_all(format!("{line}\n").as_bytes())
            .unwrap_or_else(|e| panic!("{line}: {e}"));
        let mut back = String::new();
        ctl.read_to_string(&mut back).expect("read the pid back");
        back.trim().parse().expect("a pid")
    }

    /// A `meminfo` value in kB.
    pub fn meminfo_kb(&self, key: &str) -> u64 {
        self.read("meminfo")
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}:")))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {key}"))
    }

    /// `mmfs exec MNT -- CMD...`, its output.
    pub fn exec(&self, cmd: &[&str]) -> Output {
        Command::new(MMFS)
            .arg("exec")
            .arg(&self.dir)
            .arg("--")
            .args(cmd)
            .stdin(Stdio::null())
            .output()
            .expect("run mmfs exec")
    }

    /// `mmfs exec MNT -- CMD...`: exit code and stdout + stderr.
    pub fn exec_text(&self, cmd: &[&str]) -> (i32, String) {
        let out = self.exec(cmd);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    }

    /// Run `bash -c SCRIPT` with `$M` set to the mount point.
    pub fn bash(&self, script: &str) -> Output {
        bash_in(&self.dir, script)
    }

    /// The daemon log so far (for failure messages).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `mmfs umount`, checked; consumes the guard.
    pub fn umount(self) -> Output {
        Command::new(MMFS)
            .arg("umount")
            .arg(&self.dir)
            .output()
            .expect("run mmfs umount")
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if mnt::find_mount(&self.dir).is_some() {
            let _ = mnt::unmount(&self.dir, true);
        }
        if !mnt::wait_for_exit(self.pid, Duration::from_secs(5)) {
            // SAFETY: kill has no memory preconditions; the pid is our daemon's.
            unsafe {
                libc::kill(self.pid as i32, libc::SIGKILL);
            }
        }
        let _ = &self.scratch;
    }
}

/// close(2) a file and return its error (Rust's drop ignores it; FUSE
/// reports a partial control line's failure there).
pub fn close(file: std::fs::File) -> std::io::Result<()> {
    use std::os::fd::IntoRawFd;
    let fd = file.into_raw_fd();
    // SAFETY: fd was just released by the File, so it is closed exactly once.
    if unsafe { libc::close(fd) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Run `bash -c SCRIPT` with `$M` = `dir`.
pub fn bash_in(dir: &Path, script: &str) -> Output {
    Command::new("bash")
        .arg("-c")
        .arg(script)
        .env("M", dir)
        .stdin(Stdio::null())
        .output()
        .expect("run bash")
}

/// Stdout of an output as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Stderr of an output as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Run the mmfs binary with `args`.
pub fn mmfs<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Command::new(MMFS)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run mmfs")
}

/// True when /proc/mounts lists `dir`.
pub fn mounted(dir: &Path) -> bool {
    mnt::find_mount(dir).is_some()
}

/// Free pages from buddyinfo text (Σ count × 2^order).
pub fn buddy_free_pages(text: &str) -> u64 {
    mmfs::procfs::buddyinfo_pages(text)
}
