//! The parts of `mmfs exec` that make the namespace a complete, closed
//! machine (used by [`crate::exec`]):
//!
//! - [`Placeholders`]: a process at each simulated pid, made with clone3's
//!   `set_tid` (race-free: the pid is taken exactly or not at all) and, on
//!   x86_64, `CLONE_VM` (a few µs each, nothing copied), with
//!   `MNT/PID` bound over `/proc/PID`; a watcher process keeps them in step
//!   with the mount every [`POLL`], so processes the simulation creates
//!   while the command runs appear, and those that exit go.
//! - [`reserve_pid_range`]: the namespace's own processes (the watcher, the
//!   command and its children) take pids from [`COMMAND_PID_BASE`] up,
//!   above the simulated pid_max, so they never take a simulated pid.
//! - [`bind_sys`], [`read_only_proc_sys`], [`read_only_sys`]: the simulated
//!   CPUs and disks over `/sys`, and the rest of `/proc/sys` and `/sys`
//!   read-only (per-mount flags of this namespace's copies: the host's
//!   mounts are untouched).
//! - [`drop_capabilities`]: the command runs without CAP_SYS_ADMIN,
//!   CAP_SYS_MODULE and CAP_SYS_RAWIO, so it can neither undo the overlays
//!   nor reach the host's kernel around them.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How often the watcher looks at the mount for new and gone pids.
pub const POLL: Duration = Duration::from_millis(100);

/// First pid of the namespace's own processes: above the simulated
/// pid_max ([`crate::mm::process::PID_MAX`]) with room to spare.
pub const COMMAND_PID_BASE: u32 = 100_000;

// The command's pids must stay clear of the simulated ones.
const _: () = assert!(COMMAND_PID_BASE > crate::mm::process::PID_MAX);

/// Linux's PID_MAX_LIMIT on 64-bit: the most a pid namespace's pid_max takes.
const PID_MAX_LIMIT: u32 = 4 << 20;

/// Capabilities the command must not have: mount/umount/remount and
/// sysctl-like ioctls (SYS_ADMIN), module loading (SYS_MODULE), raw I/O
/// ports, /dev/mem and friends (SYS_RAWIO).
const DROPPED_CAPS: [u32; 3] = [CAP_SYS_ADMIN, CAP_SYS_MODULE, CAP_SYS_RAWIO];
const CAP_SYS_MODULE: u32 = 16;
const CAP_SYS_RAWIO: u32 = 17;
const CAP_SYS_ADMIN: u32 = 21;

fn cstr(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path holds a NUL byte"))
}

fn check(ret: libc::c_long, what: impl FnOnce() -> String) -> io::Result<libc::c_long> {
    if ret < 0 {
        let err = io::Error::last_os_error();
        return Err(io::Error::new(err.kind(), format!("{}: {err}", what())));
    }
    Ok(ret)
}

/// `mount(source, target, NULL, flags, NULL)`.
fn mount(source: &Path, target: &Path, flags: libc::c_ulong, what: &str) -> io::Result<()> {
    let (s, t) = (cstr(source)?, cstr(target)?);
    // SAFETY: valid NUL-terminated strings; bind and remount take no data.
    let ret = unsafe {
        libc::mount(
            s.as_ptr(),
            t.as_ptr(),
            std::ptr::null(),
            flags,
            std::ptr::null(),
        )
    };
    check(ret.into(), || format!("{what} {}", target.display())).map(|_| ())
}

/// Bind `source` over `target`.
pub fn bind(source: &Path, target: &Path) -> io::Result<()> {
    mount(
        source,
        target,
        libc::MS_BIND,
        &format!("bind {} over", source.display()),
    )
}

/// Make the mount at `target` read-only, keeping its other per-mount
/// flags (a bind remount sets exactly the flags it is given).
fn remount_read_only(target: &Path) -> io::Result<()> {
    let t = cstr(target)?;
    // SAFETY: statvfs fills the struct it is given.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    check(unsafe { libc::statvfs(t.as_ptr(), &mut st) }.into(), || {
        format!("statvfs {}", target.display())
    })?;
    // The ST_* bits of statvfs are the MS_* bits of mount.
    let keep = st.f_flag
        & (libc::ST_NOSUID
            | libc::ST_NODEV
            | libc::ST_NOEXEC
            | libc::ST_NOATIME
            | libc::ST_NODIRATIME
            | libc::ST_RELATIME);
    let flags = libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY | keep as libc::c_ulong;
    mount(Path::new("none"), target, flags, "remount read-only")
}

/// Give the namespace's own processes pids from [`COMMAND_PID_BASE`] up:
/// raise the namespace's pid_max if it is lower (a pid namespace has its
/// own since Linux 6.14) and set the last pid handed out.
pub fn reserve_pid_range(proc_dir: &Path) -> io::Result<()> {
    let pid_max_path = proc_dir.join("sys/kernel/pid_max");
    let pid_max: u32 = std::fs::read_to_string(&pid_max_path)
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0);
    if pid_max <= 2 * COMMAND_PID_BASE {
        std::fs::write(&pid_max_path, PID_MAX_LIMIT.to_string()).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "raise the namespace's pid_max ({pid_max}) above {}: {e}",
                    2 * COMMAND_PID_BASE
                ),
            )
        })?;
    }
    std::fs::write(
        proc_dir.join("sys/kernel/ns_last_pid"),
        (COMMAND_PID_BASE - 1).to_string(),
    )
}

/// Make `/proc/sys` read-only (the simulated `/proc/sys/vm` files bound
/// over it later stay writable: they are mounts of their own), and
/// `/proc/sysrq-trigger`, which root may write without any capability.
pub fn read_only_proc_sys(proc_dir: &Path) -> io::Result<()> {
    for name in ["sys", "sysrq-trigger"] {
        let path = proc_dir.join(name);
        if path.exists() {
            bind(&path, &path)?;
            remount_read_only(&path)?;
        }
    }
    Ok(())
}

/// Bind the simulated sysfs directories over the host's:
/// `MNT/devices/system/cpu` and `MNT/block`.
pub fn bind_sys(mount: &Path) -> io::Result<()> {
    for rel in ["devices/system/cpu", "block"] {
        let (source, target) = (mount.join(rel), Path::new("/sys").join(rel));
        if source.is_dir() && target.is_dir() {
            bind(&source, &target)?;
        }
    }
    Ok(())
}

/// Bind `MNT/tracing` at `/sys/kernel/tracing` and, where debugfs shows
/// one, `/sys/kernel/debug/tracing`, so scripts written for a real
/// machine read the simulated events. Done after [`read_only_sys`]: the
/// binds stay writable (`echo 1 > events/kmem/enable`).
pub fn bind_tracing(mount: &Path) -> io::Result<()> {
    let source = mount.join("tracing");
    if !source.is_dir() {
        return Ok(());
    }
    for target in ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"] {
        let target = Path::new(target);
        if target.is_dir() {
            bind(&source, target)?;
        }
    }
    Ok(())
}

/// A /proc/self/mountinfo path with its octal escapes (`\040` …) undone.
fn unescape(field: &str) -> String {
    String::from_utf8_lossy(&crate::fs::mount::unescape(field)).into_owned()
}

/// Every mount point at or below `top`, from /proc/self/mountinfo, parents
/// first.
fn mounts_below(top: &Path) -> io::Result<Vec<PathBuf>> {
    let info = std::fs::read_to_string("/proc/self/mountinfo")?;
    let mut points: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape(p)))
        .filter(|p| p.starts_with(top))
        .collect();
    points.sort();
    points.dedup();
    Ok(points)
}

/// Make `/sys` and every mount below it (cgroup, debugfs, tracefs, the
/// simulated binds …) read-only in this namespace.
pub fn read_only_sys() -> io::Result<()> {
    for point in mounts_below(Path::new("/sys"))? {
        // A mount hidden under another one cannot be reached by its path;
        // the one on top is what the path shows, and it is remounted.
        remount_read_only(&point)?;
    }
    Ok(())
}

/// `struct __user_cap_header_struct`.
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

/// `struct __user_cap_data_struct`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// _LINUX_CAPABILITY_VERSION_3: two 32-bit words per set.
const CAP_VERSION_3: u32 = 0x2008_0522;

/// Drop [`DROPPED_CAPS`] from the bounding, ambient, effective, permitted
/// and inheritable sets of the calling process, for good: what it execs
/// (even a setuid-root or file-capability program) cannot get them back.
/// Async-signal-safe (raw syscalls only), for use between fork and exec.
pub fn drop_capabilities() -> io::Result<()> {
    for cap in DROPPED_CAPS {
        // SAFETY: prctl with integer arguments.
        let ret = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
        check(ret.into(), || {
            format!("drop capability {cap} from the bounding set")
        })?;
    }
    // Ambient capabilities would survive exec: clear them (EINVAL on
    // kernels without them means there are none).
    // SAFETY: prctl with integer arguments.
    unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        );
    }
    let mut header = CapHeader {
        version: CAP_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: capget fills two data structs for version 3.
    let ret = unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) };
    check(ret, || "capget".into())?;
    for cap in DROPPED_CAPS {
        let (word, bit) = ((cap / 32) as usize, 1u32 << (cap % 32));
        data[word].effective &= !bit;
        data[word].permitted &= !bit;
        data[word].inheritable &= !bit;
    }
    // SAFETY: capset reads the header and two data structs.
    let ret = unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) };
    check(ret, || "capset".into()).map(|_| ())
}

/// `struct clone_args` of clone3(2), up to `set_tid_size`.
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
}

/// Fork a placeholder at exactly `pid` (in this pid namespace): a process
/// that only waits to be killed, its standard streams on /dev/null so it
/// never holds the command's pipes open. EEXIST when the pid is taken.
///
/// Every signal but SIGKILL and SIGSTOP stays blocked in it for good (the
/// mask is set around the clone, so there is no window): a `kill PID` from
/// the command never ends the stand-in of a simulated process, and no
/// handler ever runs in it (on x86_64 it has no stack of its own).
fn fork_at(pid: u32, devnull: libc::c_int) -> io::Result<libc::pid_t> {
    let tid = libc::pid_t::try_from(pid).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let args = CloneArgs {
        flags: PLACEHOLDER_CLONE_FLAGS,
        exit_signal: libc::SIGCHLD as u64,
        set_tid: (&raw const tid) as u64,
        set_tid_size: 1,
        ..CloneArgs::default()
    };
    // SAFETY: sigset_t is plain data, filled by sigfillset; the old mask is
    // restored in the parent right after the clone.
    let ret = unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        let ret = clone_placeholder(&args, devnull);
        // Only the parent gets here (the child never returns).
        let err = io::Error::last_os_error();
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        if ret < 0 {
            return Err(err);
        }
        ret
    };
    Ok(ret as libc::pid_t)
}

/// Placeholders share the memory of the process that makes them: no page
/// tables are copied and no page is shared copy-on-write, so making 10^4
/// of them and ending them costs a few microseconds each (a fork of the
/// namespace's init copies its page tables, and every page it shares
/// copy-on-write then has 10^4 mappings for rmap walks — reclaim, DAMON —
/// to visit). Safe because the child runs only the system calls of
/// [`clone_placeholder`] and never touches memory.
#[cfg(target_arch = "x86_64")]
const PLACEHOLDER_CLONE_FLAGS: u64 = libc::CLONE_VM as u64;

/// clone3 with `args`; the child redirects fds 0–2 to `devnull` and pauses
/// for ever, all in registers: it shares the parent's memory (CLONE_VM)
/// and stack pointer, and never pushes, calls or returns. Returns the
/// child's pid or -1 with errno set, in the parent only.
///
/// # Safety
/// `args` must be a valid `clone_args` whose flags are at most
/// [`PLACEHOLDER_CLONE_FLAGS`] (no CLONE_SETTLS, CLONE_VFORK, …).
#[cfg(target_arch = "x86_64")]
unsafe fn clone_placeholder(args: &CloneArgs, devnull: libc::c_int) -> libc::c_long {
    let ret: libc::c_long;
    // SAFETY: see the function's contract; the kernel preserves every
    // register but rax, rcx and r11 across `syscall`, so the parent sees
    // its inputs unchanged, and the child's loop needs nothing else.
    unsafe {
        std::arch::asm!(
            "syscall",
            "test rax, rax",
            "jnz 3f",
            // The child: dup2(devnull, 0), (…, 1), (…, 2).
            "mov edi, r8d",
            "xor esi, esi",
            "mov eax, {dup2}",
            "syscall",
            "mov edi, r8d",
            "mov esi, 1",
            "mov eax, {dup2}",
            "syscall",
            "mov edi, r8d",
            "mov esi, 2",
            "mov eax, {dup2}",
            "syscall",
            // pause() until killed.
            "2:",
            "mov eax, {pause}",
            "syscall",
            "jmp 2b",
            "3:",
            dup2 = const libc::SYS_dup2,
            pause = const libc::SYS_pause,
            inlateout("rax") libc::SYS_clone3 => ret,
            in("rdi") std::ptr::from_ref(args),
            in("rsi") std::mem::size_of::<CloneArgs>(),
            in("r8") devnull,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    if ret < 0 {
        // SAFETY: errno is this thread's.
        unsafe {
            *libc::__errno_location() = -ret as libc::c_int;
        }
        return -1;
    }
    ret
}

/// Elsewhere placeholders are plain forks.
#[cfg(not(target_arch = "x86_64"))]
const PLACEHOLDER_CLONE_FLAGS: u64 = 0;

/// clone3 with `args` as a fork; the child redirects fds 0–2 to `devnull`
/// and pauses for ever.
///
/// # Safety
/// `args` must be a valid `clone_args` without CLONE_VM.
#[cfg(not(target_arch = "x86_64"))]
unsafe fn clone_placeholder(args: &CloneArgs, devnull: libc::c_int) -> libc::c_long {
    // SAFETY: clone3 without CLONE_VM is a fork; the child only makes
    // async-signal-safe calls and never returns.
    unsafe {
        let ret = libc::syscall(
            libc::SYS_clone3,
            std::ptr::from_ref(args),
            std::mem::size_of::<CloneArgs>(),
        );
        if ret == 0 {
            for fd in 0..3 {
                libc::dup2(devnull, fd);
            }
            loop {
                libc::pause();
            }
        }
        ret
    }
}

/// The placeholder processes, by simulated pid.
pub struct Placeholders {
    /// The mount.
    mount: PathBuf,
    /// Where the namespace's procfs is.
    proc_dir: PathBuf,
    /// Simulated pid → the placeholder at it (`None` for pid 1: the
    /// namespace's init stands for it and only gets the bind).
    live: BTreeMap<u32, Option<libc::pid_t>>,
    /// /dev/null, for the placeholders' standard streams.
    devnull: libc::c_int,
    /// The mount's pid-set version at the last complete sync: a sync that
    /// finds it unchanged has nothing to do and skips listing the root.
    synced: Option<Vec<u8>>,
}

impl Placeholders {
    /// None yet.
    pub fn new(mount: &Path, proc_dir: &Path) -> io::Result<Placeholders> {
        let path = CString::new("/dev/null").expect("static");
        // SAFETY: a valid path; the descriptor is ours.
        let devnull = unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
        check(devnull.into(), || "open /dev/null".into())?;
        Ok(Placeholders {
            mount: mount.to_path_buf(),
            proc_dir: proc_dir.to_path_buf(),
            live: BTreeMap::new(),
            devnull,
            synced: None,
        })
    }

    /// Bring the placeholders in step with the mount: one (with its bind)
    /// for each new simulated pid, none for each pid gone. `step` is
    /// called after each look at the mount. A pid the namespace's own
    /// processes hold is skipped and tried again at the next sync.
    pub fn sync(&mut self, mut step: impl FnMut()) -> io::Result<()> {
        // Read before the listing: a change after it shows at the next sync.
        let version = crate::fs::mount::pid_set_version(&self.mount);
        if version.is_some() && version == self.synced {
            step();
            return Ok(());
        }
        self.synced = None;
        let mut complete = true;
        let pids = crate::exec::simulated_pids(&self.mount)?;
        step();
        let gone: Vec<u32> = self
            .live
            .keys()
            .copied()
            .filter(|p| pids.binary_search(p).is_err())
            .collect();
        for pid in gone {
            self.remove(pid);
        }
        for pid in pids {
            if self.live.contains_key(&pid) {
                continue;
            }
            let holder = if pid == 1 {
                None
            } else {
                match fork_at(pid, self.devnull) {
                    Ok(child) => Some(child),
                    Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                        complete = false;
                        continue;
                    }
                    Err(e) => {
                        return Err(io::Error::new(
                            e.kind(),
                            format!("a placeholder process at pid {pid}: {e}"),
                        ));
                    }
                }
            };
            self.live.insert(pid, holder);
            let target = self.proc_dir.join(pid.to_string());
            if let Err(e) = bind(&self.mount.join(pid.to_string()), &target) {
                // The simulated process may have exited meanwhile: the
                // next sync sees it gone; anything else is an error.
                if crate::exec::simulated_pids(&self.mount)?.contains(&pid) {
                    self.remove(pid);
                    return Err(e);
                }
            }
            step();
        }
        if complete {
            self.synced = version;
        }
        Ok(())
    }

    /// Unbind and kill the placeholder of a pid gone from the simulation.
    fn remove(&mut self, pid: u32) {
        let Some(holder) = self.live.remove(&pid) else {
            return;
        };
        if let Ok(target) = cstr(&self.proc_dir.join(pid.to_string())) {
            // SAFETY: a valid path; a detach of nothing is only EINVAL.
            unsafe {
                libc::umount2(target.as_ptr(), libc::MNT_DETACH);
            }
        }
        if let Some(child) = holder {
            // SAFETY: killing a placeholder; whoever forked it reaps it.
            unsafe {
                libc::kill(child, libc::SIGKILL);
            }
        }
    }

    /// Fork the watcher: a process that syncs every [`POLL`] and reaps the
    /// placeholders it forks, until the namespace ends. Its pid comes from
    /// the namespace's own range (call after [`reserve_pid_range`]).
    pub fn spawn_watcher(mut self) -> io::Result<libc::pid_t> {
        // SAFETY: the child only runs the loop below and never returns.
        match unsafe { libc::fork() } {
            -1 => Err(io::Error::last_os_error()),
            0 => {
                // SAFETY: replacing stdin/stdout with /dev/null; naming
                // the process so `ps` tells it from the namespace's init.
                unsafe {
                    libc::dup2(self.devnull, 0);
                    libc::dup2(self.devnull, 1);
                    libc::prctl(
                        libc::PR_SET_NAME,
                        c"mmfs-watch".as_ptr() as libc::c_ulong,
                        0,
                        0,
                        0,
                    );
                }
                // A failure that persists (a pid that cannot be bound) is
                // retried every poll but told once.
                let mut told = String::new();
                loop {
                    std::thread::sleep(POLL);
                    reap_any();
                    match self.sync(|| ()) {
                        Ok(()) => told.clear(),
                        Err(e) if e.to_string() != told => {
                            told = e.to_string();
                            eprintln!("mmfs exec: {told}");
                        }
                        Err(_) => {}
                    }
                }
            }
            child => Ok(child),
        }
    }
}

/// Reap every child that has exited, without waiting.
fn reap_any() {
    // SAFETY: waitpid with a null status pointer.
    while unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) } > 0 {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_paths_unescape() {
        assert_eq!(unescape("/sys/fs/cgroup"), "/sys/fs/cgroup");
        assert_eq!(unescape("/a\\040b\\134c"), "/a b\\c");
        assert_eq!(unescape("/x\\04"), "/x\\04");
    }
}
