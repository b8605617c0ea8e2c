//! Running the commands: checking the mount point, detaching into the
//! background, serving the mount until unmounted or signalled, and
//! `mmfs umount`.
//!
//! Start-up order matters. The process forks before any thread exists; the
//! child starts a session, detaches from the terminal, blocks SIGTERM,
//! SIGINT and SIGHUP (so every thread inherits the mask and one thread
//! takes them with sigwait), boots the machine, mounts, and only when a
//! read of the mount answers does it tell the waiting parent, which then
//! exits 0. Any failure on the way travels back over the same pipe as one
//! line for the parent to print.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fuser::{Config, Session, SessionACL};

use mmfs::fs::MmFs;
use mmfs::fs::mount::{self, DEV_FUSE, FSTYPE, Mounted};
use mmfs::mm::Kernel;
use mmfs::procfs::GLOBAL_FILES;

use crate::cli::{Action, CliError, MountPlan};

/// How long the parent waits for the mount to answer.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long `mmfs umount` waits for the daemon to exit.
const EXIT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the daemon waits for its session to end after unmounting on a
/// signal before it exits anyway (a lazily detached mount still in use).
const SIGNAL_GRACE: Duration = Duration::from_secs(3);
/// FUSE worker threads. Requests serialise on the kernel lock anyway, and
/// measured here a second thread reading the same /dev/fuse descriptor
/// more than doubled the latency of open+read+close (58 µs → 144 µs; 70 µs
/// with a cloned descriptor per thread), so one thread serves them all.
const WORKER_THREADS: usize = 1;

/// Run a parsed command; returns the exit status.
pub fn run(action: Action) -> i32 {
    let result = match action {
        Action::Print(text) => {
            print!("{text}");
            Ok(0)
        }
        Action::Mount(plan) => mount_command(&plan),
        Action::Umount(dir) => umount_command(&dir),
        Action::Exec(dir, command) => {
            mmfs::exec::run(&dir, &command).map_err(crate::cli::CliError::failure)
        }
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("mmfs: {}", err.message);
            err.code
        }
    }
}

/// Check that `dir` can take a new mount; returns its canonical path.
fn preflight(dir: &Path) -> Result<PathBuf, CliError> {
    let shown = dir.display();
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(CliError::failure(format!(
                "mount point {shown} does not exist; create it with: mkdir -p {shown}"
            )));
        }
        Err(e) if mount::is_dead_mount_error(&e) => {
            return Err(CliError::failure(format!(
                "{shown} is a dead mount (Transport endpoint is not connected): its daemon is gone; \
                 clear it with: umount -l {shown}"
            )));
        }
        Err(e) => {
            return Err(CliError::failure(format!(
                "cannot use mount point {shown}: {e}"
            )));
        }
        Ok(meta) if !meta.is_dir() => {
            return Err(CliError::failure(format!(
                "mount point {shown} is not a directory; give an empty directory"
            )));
        }
        Ok(_) => {}
    }
    let canonical = mount::canonical(dir)
        .map_err(|e| CliError::failure(format!("cannot resolve {shown}: {e}")))?;
    if mount::find_mount(&canonical).is_some_and(|m| m.fstype == FSTYPE) {
        return Err(CliError::failure(format!(
            "{shown} is already an mmfs mount; unmount it first: mmfs umount {shown}"
        )));
    }
    let mut entries = std::fs::read_dir(dir)
        .map_err(|e| CliError::failure(format!("cannot read mount point {shown}: {e}")))?;
    if entries.next().is_some() {
        return Err(CliError::failure(format!(
            "mount point {shown} is not empty; mount on an empty directory (mkdir a new one)"
        )));
    }
    if !Path::new(DEV_FUSE).exists() {
        return Err(CliError::failure(format!(
            "{DEV_FUSE} not found; load the FUSE module with: modprobe fuse"
        )));
    }
    if !mount::is_root() && !mount::have_fusermount() {
        return Err(CliError::failure(
            "not root and no fusermount3 on PATH; run as root or install fuse3 (apt-get install fuse3)",
        ));
    }
    Ok(canonical)
}

fn open_log(path: &Path) -> Result<File, CliError> {
    File::options()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| {
            CliError::failure(format!(
                "cannot open log file {}: {e}; give a writable path to --log",
                path.display()
            ))
        })
}

fn init_logger(to: Option<File>) {
    let mut builder =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    if let Some(file) = to {
        builder.target(env_logger::Target::Pipe(Box::new(file)));
    }
    // A second init (never expected) is harmless: keep the first logger.
    let _ = builder.try_init();
}

fn describe(plan: &MountPlan, dir: &Path) -> String {
    format!(
        "{} ({} {}M)",
        dir.display(),
        plan.machine.arch.name(),
        plan.machine.mem_bytes >> 20
    )
}

fn mount_command(plan: &MountPlan) -> Result<i32, CliError> {
    let dir = preflight(&plan.mountpoint)?;
    if plan.fake {
        if plan.verbose {
            println!("mmfs: would mount {}", describe(plan, &dir));
        }
        return Ok(0);
    }
    let log = plan.log.as_deref().map(open_log).transpose()?;
    if plan.foreground {
        init_logger(log);
        return Ok(serve(plan, &dir, None));
    }
    let (read_end, write_end) = pipe()?;
    // SAFETY: no thread has been started yet, so the child is a faithful
    // single-threaded copy.
    match unsafe { libc::fork() } {
        -1 => Err(CliError::failure(format!(
            "cannot fork the daemon: {}",
            io::Error::last_os_error()
        ))),
        0 => {
            drop(read_end);
            detach(log.as_ref());
            init_logger(None);
            let code = serve(plan, &dir, Some(File::from(write_end)));
            std::process::exit(code);
        }
        _child => {
            drop(write_end);
            let code = wait_ready(File::from(read_end), &plan.mountpoint)?;
            if plan.verbose {
                println!("mmfs: mounted {}", describe(plan, &dir));
            }
            Ok(code)
        }
    }
}

fn pipe() -> Result<(OwnedFd, OwnedFd), CliError> {
    let mut fds = [0; 2];
    // SAFETY: fds has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(CliError::failure(format!(
            "cannot create a pipe: {}",
            io::Error::last_os_error()
        )));
    }
    // SAFETY: pipe2 succeeded, so both descriptors are open and ours.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// In the forked child: leave the terminal's session, stop holding the
/// caller's working directory, and point stdin at /dev/null and
/// stdout/stderr at the log file (or /dev/null).
fn detach(log: Option<&File>) {
    use std::os::fd::AsRawFd;
    // SAFETY: plain system calls on descriptors this process owns.
    unsafe {
        libc::setsid();
        let _ = libc::chdir(c"/".as_ptr());
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if null >= 0 {
            libc::dup2(null, 0);
            let out = log.map_or(null, |f| f.as_raw_fd());
            libc::dup2(out, 1);
            libc::dup2(out, 2);
            if null > 2 {
                libc::close(null);
            }
        }
    }
}

/// The parent's side of the start-up pipe: `R` means ready; `E` and a line
/// is the daemon's error; nothing means it died.
fn wait_ready(mut pipe: File, dir: &Path) -> Result<i32, CliError> {
    let mut buf = Vec::new();
    let _ = pipe.read_to_end(&mut buf);
    match buf.split_first() {
        Some((b'R', _)) => Ok(0),
        Some((b'E', message)) => Err(CliError::failure(
            String::from_utf8_lossy(message).trim().to_string(),
        )),
        _ => Err(CliError::failure(format!(
            "the daemon exited before {} was ready; run with --foreground (or --log FILE) to see why",
            dir.display()
        ))),
    }
}

/// Report a start-up failure: over the pipe to the waiting parent, or to
/// stderr in the foreground; always to the log.
fn report(ready: &mut Option<File>, message: &str) {
    log::error!("{message}");
    match ready.take() {
        Some(mut pipe) => {
            let _ = pipe.write_all(format!("E{message}").as_bytes());
        }
        None => eprintln!("mmfs: {message}"),
    }
}

fn signal_set() -> libc::sigset_t {
    // SAFETY: sigemptyset initialises the set before sigaddset reads it.
    unsafe {
        let mut set = std::mem::zeroed::<libc::sigset_t>();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGHUP);
        set
    }
}

/// Block the termination signals in the calling thread (and so in every
/// thread it starts afterwards).
fn block_signals() {
    let set = signal_set();
    // SAFETY: set is initialised; the old mask is not wanted.
    unsafe {
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// Wait for one of the blocked termination signals.
fn wait_signal() -> i32 {
    let set = signal_set();
    let mut sig = 0;
    // SAFETY: set is initialised and sig is writable.
    unsafe {
        libc::sigwait(&set, &mut sig);
    }
    sig
}

/// Unmount on the daemon's own behalf: plainly, or detached when busy.
fn unmount_for_exit(dir: &Path) {
    match mount::unmount(dir, false) {
        Ok(()) => log::info!("unmounted {}", dir.display()),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            log::info!("{} was already unmounted", dir.display());
        }
        Err(e) => {
            log::warn!("unmount {}: {e}; detaching it", dir.display());
            if let Err(e) = mount::unmount(dir, true) {
                log::error!("detach {}: {e}", dir.display());
            }
        }
    }
}

/// The file the readiness probe reads: buddyinfo (it takes the kernel
/// lock, so the whole request path is proven), else the first table entry.
fn probe_file() -> &'static str {
    GLOBAL_FILES
        .iter()
        .map(|&(name, _, _)| name)
        .find(|&name| name == "buddyinfo")
        .or_else(|| GLOBAL_FILES.first().map(|&(name, _, _)| name))
        .unwrap_or("version")
}

/// Boot, mount and serve until unmounted; returns the exit status.
fn serve(plan: &MountPlan, dir: &Path, ready: Option<File>) -> i32 {
    let mut ready = ready;
    block_signals();
    let shown = plan.mountpoint.display().to_string();
    let mut kernel = match Kernel::boot(plan.machine) {
        Ok(kernel) => kernel,
        Err(e) => {
            report(
                &mut ready,
                &format!("cannot boot the simulated machine: {e}"),
            );
            return 1;
        }
    };
    // Host paths inside the mount are refused before they are touched.
    kernel.swap.own_mount = Some(dir.to_path_buf());
    // SAFETY: getuid/getgid have no preconditions.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let fs = MmFs::new(kernel.into(), uid, gid);
    let acl = if plan.allow_other {
        SessionACL::All
    } else {
        SessionACL::Owner
    };
    let mut config = Config::default();
    config.n_threads = Some(WORKER_THREADS);
    config.acl = acl;
    // As root mount(2) gives the /dev/fuse descriptor; otherwise
    // fusermount3 mounts and passes it over a socket.
    let fd = match mount::mount_fuse(dir, plan.allow_other) {
        Ok(Mounted::Fd(fd)) => fd,
        Ok(Mounted::NeedsFusermount) => match mount::mount_fusermount(dir, plan.allow_other) {
            Ok(fd) => fd,
            Err(e) => {
                report(
                    &mut ready,
                    &format!("cannot mount {shown} through fusermount3: {e}"),
                );
                return 1;
            }
        },
        Err(e) => {
            report(&mut ready, &format!("cannot mount {shown}: {e}"));
            return 1;
        }
    };
    let session = match Session::from_fd(fs, fd, acl, config) {
        Ok(session) => session,
        Err(e) => {
            let _ = mount::unmount(dir, true);
            report(
                &mut ready,
                &format!("FUSE handshake on {shown} failed: {e}"),
            );
            return 1;
        }
    };
    log::info!(
        "mounted {} (pid {})",
        describe(plan, dir),
        std::process::id()
    );

    let signal_dir = dir.to_path_buf();
    let spawned = std::thread::Builder::new()
        .name("mmfs-signals".into())
        .spawn(move || {
            let sig = wait_signal();
            log::info!("signal {sig}: unmounting {}", signal_dir.display());
            unmount_for_exit(&signal_dir);
            std::thread::sleep(SIGNAL_GRACE);
            log::warn!("session still open after unmount; exiting");
            std::process::exit(0);
        });
    if let Err(e) = spawned {
        let _ = mount::unmount(dir, true);
        report(&mut ready, &format!("cannot start the signal thread: {e}"));
        return 1;
    }

    let probe_dir = dir.to_path_buf();
    let spawned = std::thread::Builder::new()
        .name("mmfs-ready".into())
        .spawn(move || {
            let probe = probe_dir.join(probe_file());
            let start = Instant::now();
            let outcome = loop {
                match std::fs::read(&probe) {
                    Ok(text) if !text.is_empty() => break Ok(()),
                    Ok(_) => {}
                    Err(e) if start.elapsed() > READY_TIMEOUT => break Err(e),
                    Err(_) => {}
                }
                if start.elapsed() > READY_TIMEOUT {
                    break Err(io::Error::other("it read empty"));
                }
                std::thread::sleep(Duration::from_millis(2));
            };
            match outcome {
                Ok(()) => {
                    log::info!("ready: {} answers", probe.display());
                    if let Some(mut pipe) = ready {
                        let _ = pipe.write_all(b"R");
                    }
                }
                Err(e) => {
                    let mut ready = ready;
                    report(
                        &mut ready,
                        &format!("the mount did not answer ({}: {e})", probe.display()),
                    );
                    unmount_for_exit(&probe_dir);
                    std::process::exit(1);
                }
            }
        });
    if let Err(e) = spawned {
        log::error!("cannot start the readiness probe: {e}");
        unmount_for_exit(dir);
        return 1;
    }

    match session.run() {
        Ok(()) => {
            log::info!("session on {} ended; exiting", dir.display());
            0
        }
        Err(e) => {
            log::error!("session on {} failed: {e}", dir.display());
            unmount_for_exit(dir);
            1
        }
    }
}

fn umount_command(dir: &Path) -> Result<i32, CliError> {
    let shown = dir.display();
    let canonical = mount::canonical(dir).map_err(|e| {
        CliError::failure(if e.kind() == io::ErrorKind::NotFound {
            format!("{shown} does not exist, so it is not mounted")
        } else {
            format!("cannot resolve {shown}: {e}")
        })
    })?;
    let Some(entry) = mount::find_mount(&canonical) else {
        return Err(CliError::failure(format!("{shown} is not mounted")));
    };
    if entry.fstype != FSTYPE {
        return Err(CliError::failure(format!(
            "{shown} is a {} mount, not mmfs; use: umount {shown}",
            entry.fstype
        )));
    }
    let pid = mount::daemon_pid(&canonical);
    if let Err(e) = mount::unmount(&canonical, false) {
        let busy = e.raw_os_error() == Some(libc::EBUSY) || e.kind() == io::ErrorKind::ResourceBusy;
        return Err(CliError::failure(if busy {
            format!(
                "{shown} is busy: a process has a file or its working directory there; \
                 close it, or detach the mount now with: umount -l {shown}"
            )
        } else {
            format!("cannot unmount {shown}: {e}")
        }));
    }
    if let Some(pid) = pid
        && !mount::wait_for_exit(pid, EXIT_TIMEOUT)
    {
        return Err(CliError::failure(format!(
            "{shown} is unmounted but its daemon (pid {pid}) has not exited; end it with: kill {pid}"
        )));
    }
    Ok(0)
}
