//! `mmfs exec MNT -- COMMAND`: run an unmodified tool in private mount and
//! pid namespaces where the simulated files stand over the real /proc ones.
//!
//! Steps, all inside the new namespaces (the host's /proc is never touched):
//! 1. `unshare(CLONE_NEWNS | CLONE_NEWPID)`, make every mount private;
//! 2. fork: the child is pid 1 of the new pid namespace; it mounts a fresh
//!    procfs on /proc and bind-mounts the simulated global files over
//!    /proc/{meminfo, vmstat, …} and /proc/sys/vm/*;
//! 3. for every simulated pid P it forks a placeholder at exactly P
//!    (clone3 `set_tid`) that just waits, so that /proc/P exists, then
//!    bind-mounts MNT/P over /proc/P; a watcher process keeps doing so for
//!    pids that come and go while COMMAND runs ([`crate::exec_machine`]);
//! 4. it binds the simulated CPUs and disks over /sys, makes the rest of
//!    /proc/sys and /sys read-only, binds MNT/tracing (writable) at
//!    /sys/kernel/tracing and /sys/kernel/debug/tracing, runs COMMAND without CAP_SYS_ADMIN,
//!    CAP_SYS_MODULE and CAP_SYS_RAWIO, as pid 100000 or above (never a
//!    simulated pid), reaps what ends while it runs and exits with
//!    COMMAND's status (the namespace ends with it, placeholders and all).

use std::ffi::CString;
use std::io;
use std::path::{Path, PathBuf};

use crate::exec_machine::{self, Placeholders};

/// /proc files replaced by the simulated ones (when the mount has them).
pub const GLOBAL_BINDS: &[&str] = &[
    "meminfo",
    "vmstat",
    "stat",
    "swaps",
    "slabinfo",
    "buddyinfo",
    "zoneinfo",
    "pagetypeinfo",
    "uptime",
    "loadavg",
    "pressure/memory",
    "partitions",
    "diskstats",
    "cpuinfo",
    "kpagecount",
    "kpageflags",
];

fn cstr(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path holds a NUL byte"))
}

fn check(ret: libc::c_int, what: &str) -> io::Result<()> {
    if ret < 0 {
        let err = io::Error::last_os_error();
        return Err(io::Error::new(err.kind(), format!("{what}: {err}")));
    }
    Ok(())
}

fn bind(source: &Path, target: &Path) -> io::Result<()> {
    exec_machine::bind(source, target)
}

/// The simulated pids: the numeric directories of the mount, ascending.
pub fn simulated_pids(mount: &Path) -> io::Result<Vec<u32>> {
    let mut pids: Vec<u32> = std::fs::read_dir(mount)?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
        .collect();
    pids.sort_unstable();
    Ok(pids)
}

/// Check the caller may create namespaces; a clear message otherwise.
pub fn check_privileges() -> Result<(), String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("mmfs exec needs root (CAP_SYS_ADMIN) to create private mount and pid namespaces: run it with sudo".into());
    }
    Ok(())
}

/// Run `command` with the simulated machine over /proc. Returns the exit
/// status to exit with (the command's, or 128 + signal).
pub fn run(mount: &Path, command: &[String]) -> Result<i32, String> {
    check_privileges()?;
    if command.is_empty() {
        return Err(
            "mmfs exec: no COMMAND given (usage: mmfs exec MOUNTPOINT -- COMMAND [ARGS...])".into(),
        );
    }
    let mount =
        std::fs::canonicalize(mount).map_err(|e| format!("mmfs exec: {}: {e}", mount.display()))?;
    if !mount.join("meminfo").exists() && !mount.join("buddyinfo").exists() {
        return Err(format!(
            "mmfs exec: {} is not an mmfs mount (mount one with: mmfs mount {})",
            mount.display(),
            mount.display()
        ));
    }
    let argv: Vec<CString> = command
        .iter()
        .map(|a| {
            CString::new(a.as_str()).map_err(|_| "mmfs exec: argument holds a NUL byte".to_string())
        })
        .collect::<Result<_, _>>()?;
    // SAFETY: plain syscalls on this single-threaded process.
    unsafe {
        check(
            libc::unshare(libc::CLONE_NEWNS | libc::CLONE_NEWPID),
            "unshare",
        )
        .map_err(|e| e.to_string())?;
        let root = CString::new("/").expect("static");
        check(
            libc::mount(
                std::ptr::null(),
                root.as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ),
            "make mounts private",
        )
        .map_err(|e| e.to_string())?;
        let mut fds = [0; 2];
        check(
            libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC),
            "pipe for the set-up watchdog",
        )
        .map_err(|e| e.to_string())?;
        let (progress_read, progress_write) = (fds[0], fds[1]);
        match libc::fork() {
            -1 => Err(format!("fork: {}", io::Error::last_os_error())),
            0 => {
                libc::close(progress_read);
                let code = match namespace_init(&mount, &argv, progress_write) {
                    Ok(code) => code,
                    Err(e) => {
                        eprintln!("mmfs exec: {e}");
                        127
                    }
                };
                libc::_exit(code)
            }
            child => {
                libc::close(progress_write);
                let set_up = watch_setup(progress_read);
                libc::close(progress_read);
                if !set_up {
                    // Pid 1 of the namespace: its death ends every process in it.
                    libc::kill(child, libc::SIGKILL);
                    libc::waitpid(child, std::ptr::null_mut(), libc::WNOHANG);
                    return Err(format!(
                        "mmfs exec: {} stopped answering while /proc was set up over it (its mmfs \
                         daemon is stopped or stuck; no progress within {}s); detach the mount \
                         with: umount -l {}",
                        mount.display(),
                        SETUP_STALL.as_secs(),
                        mount.display()
                    ));
                }
                Ok(wait_status(child))
            }
        }
    }
}

/// How long the set-up of /proc may go without progress (each step is a
/// look at the mount) before the mount is taken as stopped or stuck.
pub const SETUP_STALL: std::time::Duration = std::time::Duration::from_secs(5);

/// Byte the namespace's pid 1 writes after each set-up step.
const STEP: u8 = b'.';
/// Byte it writes when /proc is ready and COMMAND is about to run.
const READY: u8 = b'R';

/// Follow the set-up from the parent: false when it stalls for
/// [`SETUP_STALL`]; true when it is done or pid 1 has gone (its status
/// tells how).
fn watch_setup(fd: libc::c_int) -> bool {
    let mut deadline = std::time::Instant::now() + SETUP_STALL;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return false;
        }
        let mut poll = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = libc::c_int::try_from(left.as_millis().max(1)).unwrap_or(libc::c_int::MAX);
        // SAFETY: poll reads and writes the one pollfd it is given.
        if unsafe { libc::poll(&mut poll, 1, ms) } <= 0 {
            continue;
        }
        let mut buf = [0u8; 64];
        // SAFETY: buf is writable for its length.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        match n {
            0 => return true,
            n if n < 0 => {
                if io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                    return true;
                }
            }
            n => {
                if buf[..n as usize].contains(&READY) {
                    return true;
                }
                deadline = std::time::Instant::now() + SETUP_STALL;
            }
        }
    }
}

/// Tell the watching parent about a set-up step.
fn report_step(fd: libc::c_int, byte: u8) {
    // SAFETY: writes one byte from a live buffer; a failure only loses the report.
    unsafe {
        libc::write(fd, (&raw const byte).cast(), 1);
    }
}

/// Wait for a child and turn its status into an exit code.
fn wait_status(child: libc::pid_t) -> i32 {
    let mut status = 0;
    loop {
        // SAFETY: status is a valid out pointer.
        let ret = unsafe { libc::waitpid(child, &mut status, 0) };
        if ret == child {
            break;
        }
        if ret < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return 127;
        }
    }
    exit_code(status)
}

/// Pid 1 of the new namespace: set up /proc, placeholders, run the command.
/// `progress` is the write end of the parent's watchdog pipe: a byte per
/// look at the mount, and [`READY`] before COMMAND runs.
fn namespace_init(mount: &Path, argv: &[CString], progress: libc::c_int) -> io::Result<i32> {
    let proc_dir = PathBuf::from("/proc");
    let (source, target, fstype) = (
        CString::new("proc")?,
        cstr(&proc_dir)?,
        CString::new("proc")?,
    );
    // SAFETY: valid strings; mounting a new procfs for this pid namespace.
    check(
        unsafe {
            libc::mount(
                source.as_ptr(),
                target.as_ptr(),
                fstype.as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                std::ptr::null(),
            )
        },
        "mount a private /proc",
    )?;
    exec_machine::reserve_pid_range(&proc_dir)?;
    exec_machine::read_only_proc_sys(&proc_dir)?;
    // Before the simulated pid 1 is bound over our own /proc/1 (= /proc/self
    // here): read_only_sys reads /proc/self/mountinfo.
    exec_machine::bind_sys(mount)?;
    exec_machine::read_only_sys()?;
    exec_machine::bind_tracing(mount)?;
    report_step(progress, STEP);
    let mut placeholders = Placeholders::new(mount, &proc_dir)?;
    placeholders.sync(|| report_step(progress, STEP))?;
    for name in GLOBAL_BINDS {
        // Both sides must exist: a file of a later mmfs, or one the host
        // kernel lacks (/proc/pressure without PSI), is left alone.
        let (source, target) = (mount.join(name), proc_dir.join(name));
        if source.exists() && target.exists() {
            bind(&source, &target)?;
        }
        report_step(progress, STEP);
    }
    if let Ok(entries) = std::fs::read_dir(mount.join("sys/vm")) {
        let mut names: Vec<_> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.file_name())
            .collect();
        names.sort();
        for name in names {
            let target = proc_dir.join("sys/vm").join(&name);
            if target.exists() {
                bind(&mount.join("sys/vm").join(&name), &target)?;
            }
            report_step(progress, STEP);
        }
    }
    placeholders.spawn_watcher()?;
    report_step(progress, READY);
    // SAFETY: the placeholders hold copies; this one is ours to close.
    unsafe {
        libc::close(progress);
    }
    let sysinfo = crate::exec_sysinfo::prepare(mount);
    // SAFETY: fork + execvp with valid argv; the parent waits.
    let code = match unsafe { libc::fork() } {
        -1 => return Err(io::Error::last_os_error()),
        0 => unsafe {
            // sysinfo(2) from the simulation: first, while still privileged.
            sysinfo.install();
            let mut ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
            ptrs.push(std::ptr::null());
            if let Err(e) = exec_machine::drop_capabilities() {
                eprintln!("mmfs exec: {e}");
                libc::_exit(126);
            }
            libc::execvp(ptrs[0], ptrs.as_ptr());
            let err = io::Error::last_os_error();
            eprintln!("mmfs exec: {}: {err}", argv[0].to_string_lossy());
            libc::_exit(if err.kind() == io::ErrorKind::NotFound {
                127
            } else {
                126
            })
        },
        child => {
            sysinfo.supervise();
            reap_until(child)
        }
    };
    // Leaving ends the namespace: the kernel kills the watcher and the
    // placeholders.
    Ok(code)
}

/// The exit code a wait status stands for (128 + signal when killed).
fn exit_code(status: libc::c_int) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        127
    }
}

/// As the namespace's init, reap every child that ends (placeholders,
/// orphans of COMMAND) until `child` does; its exit code.
fn reap_until(child: libc::pid_t) -> i32 {
    let mut status = 0;
    loop {
        // SAFETY: status is a valid out pointer.
        let ret = unsafe { libc::waitpid(-1, &mut status, 0) };
        if ret == child {
            break;
        }
        if ret < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return 127;
        }
    }
    exit_code(status)
}
