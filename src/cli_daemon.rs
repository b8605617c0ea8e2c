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
//!
//! The commands never look at a mount point themselves: a stat or
//! getxattr in a mount whose daemon is stopped or stuck blocks in the
//! kernel. Each look is a [`probe`] in a forked child with a timeout, and
//! a mount that does not answer is reported with the fix, `umount -l DIR`.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fuser::{Config, Session, SessionACL};

use mmfs::fs::MmFs;
use mmfs::fs::mount::{self, DEV_FUSE, FSTYPE, Mounted};
use mmfs::mm::Kernel;
use mmfs::mm::cputime::ClockMode;
use mmfs::procfs::GLOBAL_FILES;

use crate::cli::{Action, CliError, MountPlan};

/// How long the parent waits for the mount to answer.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a probe of a mount point (a stat, a getxattr, an unmount)
/// may take before the mount is reported as not answering. A healthy mount
/// answers in microseconds; this leaves room for a very busy machine.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `mmfs umount` waits for the daemon to exit.
const EXIT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the daemon waits for its session to end after unmounting on a
/// signal before it exits anyway (a lazily detached mount still in use).
const SIGNAL_GRACE: Duration = Duration::from_secs(3);
/// FUSE worker threads, each on its own clone of the /dev/fuse
/// descriptor. Renders take the machine's lock shared, so two readers are
/// served at once (×1.57 one reader's rate, bench scale); with one thread
/// they queued behind each other (×0.66). Writes still serialise.
const WORKER_THREADS: usize = 2;

/// Run a parsed command; returns the exit status.
pub fn run(action: Action) -> i32 {
    let result = match action {
        Action::Print(text) => {
            print!("{text}");
            Ok(0)
        }
        Action::Mount(plan) => mount_command(&plan),
        Action::Umount(dir) => umount_command(&dir),
        Action::Exec(dir, command) => exec_preflight(&dir)
            .and_then(|()| mmfs::exec::run(&dir, &command).map_err(CliError::failure)),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("mmfs: {}", err.message);
            err.code
        }
    }
}

/// stat(2) of `path`, then statfs(2): an mmfs mount serves attributes
/// that never change from the kernel's cache, so only the statfs (never
/// cached) tells whether the daemon behind it still answers.
fn live_metadata(path: &Path) -> io::Result<std::fs::Metadata> {
    use std::os::unix::ffi::OsStrExt;
    let meta = std::fs::metadata(path)?;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path holds a NUL byte"))?;
    // SAFETY: an all-zero statfs is a valid output buffer.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: c is a valid NUL-terminated path; st is writable.
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(meta)
}

/// Check that `dir` can take a new mount; returns its canonical path.
/// Every look at `dir` is a timed [`probe`]: over a stuck mount it gives
/// up with a message instead of hanging.
fn preflight(dir: &Path) -> Result<PathBuf, CliError> {
    let shown = dir.display();
    let canonical = resolve(dir, &format!("; create it with: mkdir -p {shown}"))?;
    let job_dir = dir.to_path_buf();
    match probe(move || live_metadata(&job_dir).map(|m| vec![u8::from(m.is_dir())])) {
        Probed::TimedOut => return Err(not_answering(dir, &canonical)),
        Probed::Answered(Err(e)) if e.kind() == io::ErrorKind::NotFound => {
            return Err(CliError::failure(format!(
                "mount point {shown} does not exist; create it with: mkdir -p {shown}"
            )));
        }
        Probed::Answered(Err(e)) if mount::is_dead_mount_error(&e) => {
            return Err(dead_mount(dir));
        }
        Probed::Answered(Err(e)) => {
            return Err(CliError::failure(format!(
                "cannot use mount point {shown}: {e}"
            )));
        }
        Probed::Answered(Ok(is_dir)) if is_dir != [1] => {
            return Err(CliError::failure(format!(
                "mount point {shown} is not a directory; give an empty directory"
            )));
        }
        Probed::Answered(Ok(_)) => {}
    }
    if mount::find_mount(&canonical).is_some_and(|m| m.fstype == FSTYPE) {
        return Err(CliError::failure(format!(
            "{shown} is already an mmfs mount; unmount it first: mmfs umount {shown}"
        )));
    }
    let job_dir = dir.to_path_buf();
    let empty = match probe(move || {
        let mut entries = std::fs::read_dir(&job_dir)?;
        Ok(vec![u8::from(entries.next().is_none())])
    }) {
        Probed::TimedOut => return Err(not_answering(dir, &canonical)),
        Probed::Answered(Err(e)) => {
            return Err(CliError::failure(format!(
                "cannot read mount point {shown}: {e}"
            )));
        }
        Probed::Answered(Ok(empty)) => empty == [1],
    };
    if !empty {
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

/// What a [`probe`] found: the job's answer, or nothing in time.
enum Probed<T> {
    /// The job finished (successfully or not).
    Answered(io::Result<T>),
    /// No answer within [`PROBE_TIMEOUT`]: something on the path is stuck.
    TimedOut,
}

/// Run `job`, which may touch a path inside a FUSE mount, in a forked
/// child and wait at most [`PROBE_TIMEOUT`] for its answer.
///
/// Any stat, open or getxattr in a mount whose daemon is stopped or stuck
/// blocks in the kernel, and a thread blocked there can neither be
/// cancelled nor (once the daemon holds the request) be killed, so it
/// could keep this process from exiting. A child can be left behind: on a
/// timeout it is sent SIGKILL (which ends a request the daemon has not
/// taken yet, the SIGSTOP case) and not waited for. Its stdio points at
/// /dev/null so that it never holds the caller's pipes open.
///
/// Called only while this process has a single thread (before the mount
/// daemon forks, and in `umount` and `exec`), so the child may allocate.
fn probe<F>(job: F) -> Probed<Vec<u8>>
where
    F: FnOnce() -> io::Result<Vec<u8>>,
{
    probe_within(PROBE_TIMEOUT, job)
}

fn probe_within<F>(timeout: Duration, job: F) -> Probed<Vec<u8>>
where
    F: FnOnce() -> io::Result<Vec<u8>>,
{
    use std::os::fd::AsRawFd;
    let (read_end, write_end) = match pipe() {
        Ok(ends) => ends,
        Err(e) => return Probed::Answered(Err(io::Error::other(e.message))),
    };
    // SAFETY: the process is single-threaded here (see above), so the
    // child is a faithful copy; it ends with _exit and never returns.
    let child = unsafe { libc::fork() };
    if child < 0 {
        return Probed::Answered(Err(io::Error::last_os_error()));
    }
    if child == 0 {
        drop(read_end);
        // SAFETY: plain system calls on descriptors this process owns.
        unsafe {
            let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
            if null >= 0 {
                libc::dup2(null, 0);
                libc::dup2(null, 1);
                libc::dup2(null, 2);
            }
        }
        let answer = match job() {
            Ok(bytes) => [b"O".as_slice(), &bytes].concat(),
            Err(e) => match e.raw_os_error() {
                Some(errno) => [b"E".as_slice(), &errno.to_le_bytes()].concat(),
                None => [b"M".as_slice(), e.to_string().as_bytes()].concat(),
            },
        };
        let _ = File::from(write_end).write_all(&answer);
        // SAFETY: _exit skips the parent's atexit handlers and buffers.
        unsafe { libc::_exit(0) };
    }
    drop(write_end);
    let deadline = Instant::now() + timeout;
    let mut pipe = File::from(read_end);
    let mut answer = Vec::new();
    let finished = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break false;
        }
        let mut poll = libc::pollfd {
            fd: pipe.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = libc::c_int::try_from(left.as_millis().max(1)).unwrap_or(libc::c_int::MAX);
        // SAFETY: poll reads and writes the one pollfd it is given.
        if unsafe { libc::poll(&mut poll, 1, ms) } <= 0 {
            continue;
        }
        let mut buf = [0u8; 4096];
        match pipe.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break true,
        }
    };
    if !finished {
        // SAFETY: kill on our own child.
        unsafe {
            libc::kill(child, libc::SIGKILL);
        }
        // A request the daemon has not taken yet ends at once: reap the
        // child then, but never wait long for one it holds.
        let reap_by = Instant::now() + Duration::from_millis(200);
        // SAFETY: waitpid on our own child, without blocking.
        while unsafe { libc::waitpid(child, std::ptr::null_mut(), libc::WNOHANG) } == 0
            && Instant::now() < reap_by
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        return Probed::TimedOut;
    }
    // SAFETY: the child closed the pipe on its way out; reap it.
    unsafe {
        libc::waitpid(child, std::ptr::null_mut(), 0);
    }
    Probed::Answered(match answer.split_first() {
        Some((b'O', bytes)) => Ok(bytes.to_vec()),
        Some((b'E', errno)) => Err(io::Error::from_raw_os_error(i32::from_le_bytes(
            errno.try_into().unwrap_or([0; 4]),
        ))),
        Some((b'M', text)) => Err(io::Error::other(String::from_utf8_lossy(text).into_owned())),
        _ => Err(io::Error::other("the probe process died")),
    })
}

/// The canonical path of `dir` (symlinks resolved), from a timed probe.
/// realpath(3) only reads links, so it does not ask a mount's daemon at
/// `dir` itself, but it does ask every mount it walks through.
fn resolve(dir: &Path, missing: &str) -> Result<PathBuf, CliError> {
    use std::os::unix::ffi::OsStringExt;
    let shown = dir.display();
    let job_dir = dir.to_path_buf();
    match probe(move || mount::canonical(&job_dir).map(|p| p.into_os_string().into_vec())) {
        Probed::Answered(Ok(bytes)) => Ok(PathBuf::from(std::ffi::OsString::from_vec(bytes))),
        Probed::Answered(Err(e)) if e.kind() == io::ErrorKind::NotFound => Err(CliError::failure(
            format!("{shown} does not exist{missing}"),
        )),
        Probed::Answered(Err(e)) if mount::is_dead_mount_error(&e) => Err(dead_mount(dir)),
        Probed::Answered(Err(e)) => Err(CliError::failure(format!("cannot resolve {shown}: {e}"))),
        Probed::TimedOut => {
            let guess = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
            Err(not_answering(dir, &guess))
        }
    }
}

/// The innermost mount holding `path` (from /proc/self/mountinfo, which
/// never touches the mounts), unless that is the root file system.
fn enclosing_mount(path: &Path) -> Option<mount::MountEntry> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    mount::parse_mountinfo(&text)
        .into_iter()
        .filter(|m| path.starts_with(&m.mountpoint))
        // The longest wins; among equals the last (topmost) one.
        .max_by_key(|m| m.mountpoint.components().count())
        .filter(|m| m.mountpoint != Path::new("/"))
}

/// The message for a dead mount (its daemon is gone).
fn dead_mount(dir: &Path) -> CliError {
    let shown = dir.display();
    CliError::failure(format!(
        "{shown} is a dead mount (Transport endpoint is not connected): its daemon is gone; \
         clear it with: umount -l {shown}"
    ))
}

/// The message for a path that did not answer a probe in time: names the
/// mount that is stuck (`dir` itself, or one on its way) and the fix.
fn not_answering(dir: &Path, canonical: &Path) -> CliError {
    let shown = dir.display();
    let secs = PROBE_TIMEOUT.as_secs();
    let Some(entry) = enclosing_mount(canonical) else {
        return CliError::failure(format!(
            "{shown} did not answer within {secs}s; if a FUSE mount on its path is stuck, \
             detach it with: umount -l MOUNTPOINT"
        ));
    };
    let what = if entry.fstype == FSTYPE {
        "its mmfs daemon is stopped or stuck".to_string()
    } else {
        format!("its {} file system is stuck", entry.fstype)
    };
    if entry.mountpoint == canonical {
        CliError::failure(format!(
            "{shown} does not answer ({what}; no reply within {secs}s); \
             detach the mount with: umount -l {shown}"
        ))
    } else {
        CliError::failure(format!(
            "{shown} does not answer: the mount {} on its path does not ({what}; no reply within \
             {secs}s); detach it with: umount -l {}",
            entry.mountpoint.display(),
            entry.mountpoint.display()
        ))
    }
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
    // The root file system's disk (`--disk`), empty until mounted, so it
    // may take its size now. Its bytes go to the swapdir set below.
    kernel.vfs.disk_pages = plan.disk_bytes / mmfs::mm::types::PAGE_SIZE;
    // Host paths inside the mount are refused before they are touched.
    kernel.swap.own_mount = Some(dir.to_path_buf());
    if let Some(swapdir) = &plan.swapdir {
        match std::fs::canonicalize(swapdir) {
            Ok(canonical) if canonical.is_dir() && !canonical.starts_with(dir) => {
                kernel.swap.swapdir = canonical;
            }
            _ => {
                report(
                    &mut ready,
                    &format!(
                        "swapdir={}: not a directory outside the mount point",
                        swapdir.display()
                    ),
                );
                return 1;
            }
        }
    }
    // SAFETY: getuid/getgid have no preconditions.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let mut fs = MmFs::new(kernel.into(), uid, gid);
    fs.set_read_only(plan.read_only);
    if plan.clock == ClockMode::Wall
        && let Err(e) = fs.start_wall_clock()
    {
        report(&mut ready, &format!("cannot start the clock thread: {e}"));
        return 1;
    }
    let acl = if plan.allow_other {
        SessionACL::All
    } else {
        SessionACL::Owner
    };
    let mut config = Config::default();
    config.n_threads = Some(WORKER_THREADS);
    // Each worker reads its own clone of the /dev/fuse descriptor.
    config.clone_fd = true;
    config.acl = acl;
    // As root mount(2) gives the /dev/fuse descriptor; otherwise
    // fusermount3 mounts and passes it over a socket.
    let fd = match mount::mount_fuse(dir, plan.allow_other, plan.read_only) {
        Ok(Mounted::Fd(fd)) => fd,
        Ok(Mounted::NeedsFusermount) => {
            match mount::mount_fusermount(dir, plan.allow_other, plan.read_only) {
                Ok(fd) => fd,
                Err(e) => {
                    report(
                        &mut ready,
                        &format!("cannot mount {shown} through fusermount3: {e}"),
                    );
                    return 1;
                }
            }
        }
        Err(e) => {
            report(&mut ready, &format!("cannot mount {shown}: {e}"));
            return 1;
        }
    };
    let invalidator = fs.invalidator();
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
    if let Err(e) = invalidator.start(session.notifier()) {
        let _ = mount::unmount(dir, true);
        report(
            &mut ready,
            &format!("cannot start the invalidation thread: {e}"),
        );
        return 1;
    }
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
    let canonical = resolve(dir, ", so it is not mounted")?;
    let Some(entry) = mount::find_mount(&canonical) else {
        return Err(CliError::failure(format!("{shown} is not mounted")));
    };
    if entry.fstype != FSTYPE {
        return Err(CliError::failure(format!(
            "{shown} is a {} mount, not mmfs; use: umount {shown}",
            entry.fstype
        )));
    }
    // The daemon's pid is an attribute of the mount's root: asking for it
    // is the first request a stopped or stuck daemon would leave hanging.
    let job_dir = canonical.clone();
    let pid = match probe(move || {
        Ok(mount::daemon_pid(&job_dir)
            .map(|pid| pid.to_le_bytes().to_vec())
            .unwrap_or_default())
    }) {
        Probed::TimedOut => return Err(not_answering(dir, &canonical)),
        Probed::Answered(answer) => answer
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .map(u32::from_le_bytes),
    };
    // umount2(2) does not wait for the daemon, but the fusermount3 route
    // looks at the mount point: time it too.
    let job_dir = canonical.clone();
    let unmounted = match probe(move || mount::unmount(&job_dir, false).map(|()| Vec::new())) {
        Probed::TimedOut => return Err(not_answering(dir, &canonical)),
        Probed::Answered(result) => result,
    };
    if let Err(e) = unmounted {
        let busy = e.raw_os_error() == Some(libc::EBUSY)
            || e.kind() == io::ErrorKind::ResourceBusy
            || e.to_string().contains("busy");
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

/// Before `mmfs exec` enters its namespaces: `dir` must answer, within
/// [`PROBE_TIMEOUT`], a look at one of its files.
fn exec_preflight(dir: &Path) -> Result<(), CliError> {
    mmfs::exec::check_privileges().map_err(CliError::failure)?;
    let canonical = resolve(dir, "")?;
    let job_dir = canonical.clone();
    match probe(move || live_metadata(&job_dir.join(probe_file())).map(|_| Vec::new())) {
        Probed::TimedOut => Err(not_answering(dir, &canonical)),
        Probed::Answered(Err(e)) if mount::is_dead_mount_error(&e) => Err(dead_mount(dir)),
        // Anything else (not a mount, missing file) exec::run explains.
        Probed::Answered(_) => Ok(()),
    }
}
