//! sysinfo(2) under `mmfs exec`, answered from the simulation.
//!
//! glibc's `sysconf(_SC_PHYS_PAGES)` / `_SC_AVPHYS_PAGES`, psutil and every
//! program that sizes itself from RAM call sysinfo(2), and no bind mount can
//! change what a system call returns. So the process that execs COMMAND
//! first installs a seccomp filter that turns sysinfo(2) into a user
//! notification (`SECCOMP_RET_USER_NOTIF`); COMMAND and all its descendants
//! inherit it. The filter's listener goes over a socketpair (`SCM_RIGHTS`)
//! to a thread of the namespace's pid 1, which is not filtered and is
//! already waiting for COMMAND. For each call the thread builds the
//! `struct sysinfo` that Linux's `do_sysinfo` would give from the mount's
//! files, writes it into the caller's buffer and lets the call return 0.
//!
//! Where seccomp user notification is unavailable (an architecture other
//! than x86_64, a kernel before 5.0), or when `MMFS_EXEC_NO_SECCOMP=1` is
//! set, one warning line goes to stderr and COMMAND runs with the host's
//! sysinfo(2). In a nested `mmfs exec` the outer filter already has a
//! listener (one per chain): the inner one warns and the outer answers.

use std::io;
use std::mem::{offset_of, size_of};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Environment variable that turns the simulated sysinfo(2) off (any value
/// but empty or `0`): COMMAND then sees the host's, after a warning.
pub const NO_SECCOMP_ENV: &str = "MMFS_EXEC_NO_SECCOMP";

/// `AUDIT_ARCH_X86_64` (EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE):
/// the filter must check the architecture, or an i386 `int 0x80` call with
/// the same number would be taken for sysinfo (seccomp(2)).
#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: Option<u32> = Some(0xC000_003E);
/// Other architectures: not built or tested, so they take the fallback.
#[cfg(not(target_arch = "x86_64"))]
const AUDIT_ARCH: Option<u32> = None;

/// The kernel copies exactly this many bytes to the caller.
const SYSINFO_SIZE: usize = size_of::<libc::sysinfo>();

/// Linux's `FSHIFT`: bits of fraction in the kernel's `avenrun[]`.
const FSHIFT: u32 = 11;
/// Linux's `SI_LOAD_SHIFT`: bits of fraction in `sysinfo.loads[]`.
const SI_LOAD_SHIFT: u32 = 16;

/// The fields of Linux's `struct sysinfo` as `do_sysinfo` fills them on a
/// 64-bit kernel: memory in bytes with `mem_unit` 1, loads in 1/65536ths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sysinfo {
    /// Seconds since boot, rounded up (`tv_sec + (tv_nsec ? 1 : 0)`).
    pub uptime: i64,
    /// 1, 5 and 15 minute load averages scaled by `1 << SI_LOAD_SHIFT`.
    pub loads: [u64; 3],
    /// MemTotal.
    pub totalram: u64,
    /// MemFree.
    pub freeram: u64,
    /// Shmem.
    pub sharedram: u64,
    /// Buffers.
    pub bufferram: u64,
    /// SwapTotal.
    pub totalswap: u64,
    /// SwapFree.
    pub freeswap: u64,
    /// Number of tasks, truncated to 16 bits as the kernel's assignment does.
    pub procs: u16,
    /// HighTotal (0 without highmem).
    pub totalhigh: u64,
    /// HighFree (0 without highmem).
    pub freehigh: u64,
    /// Size of the memory unit in bytes.
    pub mem_unit: u32,
}

impl Sysinfo {
    /// Build from the texts of MNT/meminfo, MNT/uptime and MNT/loadavg (in
    /// Linux's /proc formats; an empty or unparsable field reads as 0) and
    /// the number of tasks. Every memory figure of /proc/meminfo comes from
    /// the same counters `si_meminfo`/`si_swapinfo` read, so kB × 1024 is
    /// exactly what the kernel would return.
    pub fn from_files(meminfo: &str, uptime: &str, loadavg: &str, tasks: usize) -> Sysinfo {
        let bytes = |key: &str| meminfo_kb(meminfo, key).saturating_mul(1024);
        let mut loads = [0; 3];
        for (load, field) in loads.iter_mut().zip(loadavg.split_whitespace()) {
            *load = avenrun_of(field) << (SI_LOAD_SHIFT - FSHIFT);
        }
        Sysinfo {
            uptime: uptime_secs(uptime.split_whitespace().next().unwrap_or("")),
            loads,
            totalram: bytes("MemTotal"),
            freeram: bytes("MemFree"),
            sharedram: bytes("Shmem"),
            bufferram: bytes("Buffers"),
            totalswap: bytes("SwapTotal"),
            freeswap: bytes("SwapFree"),
            procs: tasks as u16,
            totalhigh: bytes("HighTotal"),
            freehigh: bytes("HighFree"),
            mem_unit: 1,
        }
    }

    /// Read the simulated machine at `mount`; a missing file reads as empty
    /// (so its fields are 0), the tasks are the numeric directories.
    pub fn of_mount(mount: &Path) -> Sysinfo {
        let read = |name: &str| std::fs::read_to_string(mount.join(name)).unwrap_or_default();
        let tasks = crate::exec::simulated_pids(mount).map_or(0, |pids| pids.len());
        Sysinfo::from_files(&read("meminfo"), &read("uptime"), &read("loadavg"), tasks)
    }

    /// The bytes of `struct sysinfo` in the C layout (libc's, which is the
    /// kernel's uapi one), padding zeroed as the kernel's memset leaves it.
    pub fn to_bytes(&self) -> [u8; SYSINFO_SIZE] {
        let mut out = [0u8; SYSINFO_SIZE];
        let mut put = |offset: usize, bytes: &[u8]| {
            out[offset..offset + bytes.len()].copy_from_slice(bytes);
        };
        put(
            offset_of!(libc::sysinfo, uptime),
            &self.uptime.to_ne_bytes(),
        );
        let loads = offset_of!(libc::sysinfo, loads);
        for (i, load) in self.loads.iter().enumerate() {
            put(loads + 8 * i, &load.to_ne_bytes());
        }
        put(
            offset_of!(libc::sysinfo, totalram),
            &self.totalram.to_ne_bytes(),
        );
        put(
            offset_of!(libc::sysinfo, freeram),
            &self.freeram.to_ne_bytes(),
        );
        put(
            offset_of!(libc::sysinfo, sharedram),
            &self.sharedram.to_ne_bytes(),
        );
        put(
            offset_of!(libc::sysinfo, bufferram),
            &self.bufferram.to_ne_bytes(),
        );
        put(
            offset_of!(libc::sysinfo, totalswap),
            &self.totalswap.to_ne_bytes(),
        );
        put(
            offset_of!(libc::sysinfo, freeswap),
            &self.freeswap.to_ne_bytes(),
        );
        put(offset_of!(libc::sysinfo, procs), &self.procs.to_ne_bytes());
        put(
            offset_of!(libc::sysinfo, totalhigh),
            &self.totalhigh.to_ne_bytes(),
        );
        put(
            offset_of!(libc::sysinfo, freehigh),
            &self.freehigh.to_ne_bytes(),
        );
        put(
            offset_of!(libc::sysinfo, mem_unit),
            &self.mem_unit.to_ne_bytes(),
        );
        out
    }
}

// The encoding above writes 8-byte fields: true of the 64-bit layout only.
#[cfg(target_arch = "x86_64")]
const _: () = assert!(SYSINFO_SIZE == 112 && size_of::<libc::c_ulong>() == 8);

/// A `Key:   N kB` value of /proc/meminfo, 0 when absent.
fn meminfo_kb(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// /proc/uptime's first field ("SECS.CC") as sysinfo's whole seconds. The
/// kernel rounds up any fraction; only hundredths survive in the file, so a
/// fraction under 10 ms (printed .00) rounds down here.
fn uptime_secs(field: &str) -> i64 {
    let (secs, frac) = field.split_once('.').unwrap_or((field, ""));
    let Ok(secs) = secs.parse::<i64>() else {
        return 0;
    };
    secs + i64::from(frac.bytes().any(|b| (b'1'..=b'9').contains(&b)))
}

/// The kernel's fixed-point `avenrun` (FSHIFT bits of fraction) behind one
/// /proc/loadavg field. fs/proc/loadavg.c prints `a = avenrun + FIXED_1/200`
/// as `a >> 11` "." `((a & 2047) * 100) >> 11`; this is the smallest
/// avenrun printed as `field`, so the loads re-print as the file's text.
fn avenrun_of(field: &str) -> u64 {
    let (int, frac) = field.split_once('.').unwrap_or((field, "0"));
    let (Ok(int), Ok(frac)) = (int.parse::<u64>(), frac.parse::<u64>()) else {
        return 0;
    };
    let fixed_1 = 1u64 << FSHIFT;
    let printed = int
        .saturating_mul(fixed_1)
        .saturating_add((frac.min(99) * fixed_1).div_ceil(100));
    printed.saturating_sub(fixed_1 / 200)
}

/// What `mmfs exec` needs to answer sysinfo(2). Made by [`prepare`] in the
/// namespace's pid 1 before it forks COMMAND's process; that process calls
/// [`Hook::install`] before exec, pid 1 [`Hook::supervise`] after the fork.
pub struct Hook {
    mount: PathBuf,
    /// (pid 1's end, COMMAND's end) of the socketpair that carries the
    /// listener; None when sysinfo(2) is left to the host.
    channel: Option<(OwnedFd, OwnedFd)>,
}

/// Get ready to answer COMMAND's sysinfo(2) from the simulation at `mount`,
/// or warn (one line on stderr) that it will show the host's.
pub fn prepare(mount: &Path) -> Hook {
    let host = |why: &str| {
        eprintln!(
            "mmfs exec: warning: sysinfo(2) shows the host's memory, not the simulation's ({why})"
        );
        Hook {
            mount: mount.to_path_buf(),
            channel: None,
        }
    };
    if std::env::var_os(NO_SECCOMP_ENV).is_some_and(|v| !v.is_empty() && v != "0") {
        return host(&format!("{NO_SECCOMP_ENV} is set"));
    }
    if AUDIT_ARCH.is_none() {
        return host("seccomp user notification is only set up on x86_64");
    }
    let mut fds = [0; 2];
    // SAFETY: socketpair writes two descriptors into the array it is given.
    // SEQPACKET: recvmsg sees end-of-file once COMMAND's process has gone
    // without sending; CLOEXEC: COMMAND itself never holds either end.
    let ret = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if ret < 0 {
        return host(&format!("socketpair: {}", io::Error::last_os_error()));
    }
    // SAFETY: both descriptors were just created and are owned by nobody else.
    let channel = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    Hook {
        mount: mount.to_path_buf(),
        channel: Some(channel),
    }
}

impl Hook {
    /// In COMMAND's process, just before exec (and before any capability is
    /// dropped: without CAP_SYS_ADMIN the kernel takes a filter only under
    /// no_new_privs, which is then set). Installs the filter and hands its
    /// listener to pid 1. If the filter cannot be installed, warns and
    /// returns (COMMAND sees the host's sysinfo); if it is installed but the
    /// listener cannot be handed over, every sysinfo(2) would fail with
    /// ENOSYS, so the process exits with 126 instead of running COMMAND so.
    pub fn install(&self) {
        let Some((_, command_end)) = &self.channel else {
            return;
        };
        let listener = match install_filter() {
            Ok(listener) => listener,
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                // A filter of ours already has a listener (one per chain):
                // an enclosing `mmfs exec`, or another supervisor, answers.
                eprintln!(
                    "mmfs exec: warning: sysinfo(2) is left to an enclosing seccomp supervisor (an outer mmfs exec?), not answered from this mount"
                );
                return;
            }
            Err(e) => {
                eprintln!(
                    "mmfs exec: warning: sysinfo(2) shows the host's memory, not the simulation's (seccomp user notification: {e})"
                );
                return;
            }
        };
        if let Err(e) = send_fd(command_end.as_raw_fd(), listener.as_raw_fd()) {
            eprintln!("mmfs exec: cannot hand sysinfo(2) to its supervisor: {e}");
            // SAFETY: leaving a forked child without running its parent's exit handlers.
            unsafe { libc::_exit(126) };
        }
        // `listener` closes here: only the supervisor holds it from now on,
        // so COMMAND cannot answer (or block) its own calls.
    }

    /// In pid 1, after forking COMMAND's process: start the thread that
    /// answers. It ends when COMMAND and all its descendants are gone (the
    /// listener hangs up) or, at the latest, with pid 1, which does not wait
    /// for it: the supervisor can never hold up COMMAND's exit.
    pub fn supervise(self) {
        let Some((pid1_end, command_end)) = self.channel else {
            return;
        };
        // Only COMMAND's process may hold the sending end, so that a
        // process that never sends (no filter, failed exec) reads as EOF.
        drop(command_end);
        let mount = self.mount;
        let spawned = std::thread::Builder::new()
            .name("mmfs-sysinfo".into())
            .spawn(move || {
                let Ok(Some(listener)) = recv_fd(pid1_end.as_raw_fd()) else {
                    return;
                };
                drop(pid1_end);
                serve(&listener, &mount);
            });
        if let Err(e) = spawned {
            // The closure, and with it the socket and any listener in flight,
            // is gone: COMMAND's sysinfo(2) fails with ENOSYS rather than hang.
            eprintln!("mmfs exec: warning: cannot start the sysinfo(2) supervisor: {e}");
        }
    }
}

/// One classic-BPF instruction without jumps.
const fn stmt(code: u32, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    }
}

/// One classic-BPF conditional jump (offsets count from the next one).
const fn jump(code: u32, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    }
}

/// Install the filter on the calling thread (COMMAND's process is
/// single-threaded here) and return its listener.
fn install_filter() -> io::Result<OwnedFd> {
    let arch = AUDIT_ARCH.ok_or_else(|| io::Error::from_raw_os_error(libc::ENOSYS))?;
    let ld_abs = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
    let jeq = libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K;
    let ret = libc::BPF_RET | libc::BPF_K;
    let mut program = [
        stmt(ld_abs, offset_of!(libc::seccomp_data, arch) as u32),
        // Another architecture (i386 via int 0x80): its numbers mean other calls.
        jump(jeq, arch, 0, 3),
        stmt(ld_abs, offset_of!(libc::seccomp_data, nr) as u32),
        jump(jeq, libc::SYS_sysinfo as u32, 0, 1),
        stmt(ret, libc::SECCOMP_RET_USER_NOTIF),
        stmt(ret, libc::SECCOMP_RET_ALLOW),
    ];
    let prog = libc::sock_fprog {
        len: program.len() as libc::c_ushort,
        filter: program.as_mut_ptr(),
    };
    // WAIT_KILLABLE_RECV (Linux 5.19): once the supervisor has a call, only
    // a fatal signal interrupts it, so an answer is never written into a
    // buffer a signal handler has meanwhile reused.
    let mut flags =
        libc::SECCOMP_FILTER_FLAG_NEW_LISTENER | libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
    let mut no_new_privs = false;
    loop {
        // SAFETY: prog points to a live, well-formed filter for the call.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                flags,
                &raw const prog,
            )
        };
        if fd >= 0 {
            // SAFETY: NEW_LISTENER returns a fresh descriptor (close-on-exec).
            return Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) });
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINVAL) if flags & libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV != 0 => {
                flags &= !libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
            }
            Some(libc::EACCES) if !no_new_privs => {
                // No CAP_SYS_ADMIN any more: the kernel then requires
                // no_new_privs, which also keeps a set-user-ID exec from
                // handing dropped privileges back.
                // SAFETY: prctl with plain integer arguments.
                if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } < 0 {
                    return Err(err);
                }
                no_new_privs = true;
            }
            _ => return Err(err),
        }
    }
}

/// Send one descriptor over a unix socket (SCM_RIGHTS, one data byte).
fn send_fd(socket: RawFd, fd: RawFd) -> io::Result<()> {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    // u64 elements keep the control buffer aligned for cmsghdr.
    let mut control = [0u64; 4];
    // SAFETY: CMSG_SPACE is a pure size computation.
    let space = unsafe { libc::CMSG_SPACE(size_of::<RawFd>() as u32) } as usize;
    assert!(space <= size_of::<[u64; 4]>());
    // SAFETY: msghdr is plain data; all-zero is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    // SAFETY: the control buffer holds one cmsghdr with room for one fd.
    let sent = unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(size_of::<RawFd>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>(), fd);
        loop {
            let sent = libc::sendmsg(socket, &msg, libc::MSG_NOSIGNAL);
            if sent >= 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                break sent;
            }
        }
    };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Receive one descriptor sent by [`send_fd`]; None at end-of-file.
fn recv_fd(socket: RawFd) -> io::Result<Option<OwnedFd>> {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let mut control = [0u64; 4];
    // SAFETY: msghdr is plain data; all-zero is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = size_of::<[u64; 4]>() as _;
    let received = loop {
        // SAFETY: msg points to live buffers of the sizes it states.
        let n = unsafe { libc::recvmsg(socket, &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n >= 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            break n;
        }
    };
    if received < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel filled msg_control with msg_controllen bytes of
    // well-formed cmsghdrs; CMSG_* walk only inside them.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let fd = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>());
                return Ok(Some(OwnedFd::from_raw_fd(fd)));
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Ok(None)
}

/// How one notification is answered.
enum Answer {
    /// The struct is written: return 0.
    Done,
    /// Fail the call with this errno.
    Error(i32),
    /// Not ours (cannot happen with this filter): let the kernel run it.
    Continue,
    /// The caller is gone: nothing to answer.
    Gone,
}

/// Answer the listener's notifications until every process that holds the
/// filter is gone, or the listener fails.
fn serve(listener: &OwnedFd, mount: &Path) {
    let fd = listener.as_raw_fd();
    loop {
        let mut poll = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll reads and writes the one pollfd it is given.
        if unsafe { libc::poll(&mut poll, 1, -1) } < 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        if poll.revents & libc::POLLIN == 0 {
            // POLLHUP (Linux 5.8): no process uses the filter any more.
            return;
        }
        // SAFETY: seccomp_notif is plain data; RECV requires it zeroed.
        let mut request: libc::seccomp_notif = unsafe { std::mem::zeroed() };
        // SAFETY: RECV fills the seccomp_notif it is given.
        if unsafe { libc::ioctl(fd, libc::SECCOMP_IOCTL_NOTIF_RECV, &mut request) } < 0 {
            match io::Error::last_os_error().raw_os_error() {
                // Interrupted, or the caller died between poll and recv.
                Some(libc::EINTR | libc::ENOENT) => continue,
                _ => return,
            }
        }
        let mut response = libc::seccomp_notif_resp {
            id: request.id,
            val: 0,
            error: 0,
            flags: 0,
        };
        match answer(fd, &request, mount) {
            Answer::Done => {}
            Answer::Error(errno) => response.error = -errno,
            Answer::Continue => response.flags = libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32,
            Answer::Gone => continue,
        }
        // SAFETY: SEND reads the response it is given. ENOENT (the caller
        // was killed meanwhile) needs nothing more.
        unsafe {
            libc::ioctl(fd, libc::SECCOMP_IOCTL_NOTIF_SEND, &response);
        }
    }
}

/// Build the simulated struct and write it at the caller's `args[0]`.
fn answer(listener: RawFd, request: &libc::seccomp_notif, mount: &Path) -> Answer {
    if i64::from(request.data.nr) != libc::SYS_sysinfo || Some(request.data.arch) != AUDIT_ARCH {
        return Answer::Continue;
    }
    let bytes = Sysinfo::of_mount(mount).to_bytes();
    // Open the caller's memory first, then check the notification is still
    // pending: then the descriptor is the caller's and not that of a process
    // that took over its pid (seccomp_unotify(2)). /proc here is pid 1's,
    // the namespace in which the kernel gave `pid`.
    let mem = std::fs::OpenOptions::new()
        .write(true)
        .open(format!("/proc/{}/mem", request.pid));
    let valid = id_valid(listener, request.id);
    let (Ok(mem), true) = (mem, valid) else {
        return if valid {
            Answer::Error(libc::EFAULT)
        } else {
            Answer::Gone
        };
    };
    // A bad pointer (unmapped, kernel) fails the write: EFAULT, as
    // copy_to_user gives.
    match mem.write_at(&bytes, request.data.args[0]) {
        Ok(n) if n == bytes.len() => Answer::Done,
        _ => Answer::Error(libc::EFAULT),
    }
}

/// True while the notification `id` still waits for its answer.
fn id_valid(listener: RawFd, id: u64) -> bool {
    // SAFETY: ID_VALID reads the u64 it is given.
    unsafe { libc::ioctl(listener, libc::SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// fs/proc/loadavg.c's rendering of one avenrun value.
    fn render_load(avenrun: u64) -> String {
        let a = avenrun + (1 << FSHIFT) / 200;
        format!("{}.{:02}", a >> FSHIFT, ((a & 2047) * 100) >> FSHIFT)
    }

    #[test]
    fn loads_print_back_as_the_file_shows_them() {
        for avenrun in 0..(1 << FSHIFT) * 5 {
            let text = render_load(avenrun);
            assert_eq!(render_load(avenrun_of(&text)), text, "avenrun {avenrun}");
        }
        assert_eq!(avenrun_of("0.00"), 0);
        assert_eq!(avenrun_of("1.00"), 2048 - 10);
        assert_eq!(avenrun_of("junk"), 0);
    }

    #[test]
    fn fields_come_from_meminfo_uptime_and_loadavg() {
        let meminfo = "MemTotal:        2097152 kB\nMemFree:         1000000 kB\n\
                       Buffers:              12 kB\nShmem:               34 kB\n\
                       SwapTotal:        131068 kB\nSwapFree:         126972 kB\n\
                       HighTotal:             0 kB\n";
        let info = Sysinfo::from_files(meminfo, "351.20 700.11\n", "1.00 0.50 0.00 2/9 42\n", 9);
        assert_eq!(info.uptime, 352);
        assert_eq!(info.loads, [(2048 - 10) << 5, (1024 - 10) << 5, 0]);
        assert_eq!(info.totalram, 2097152 * 1024);
        assert_eq!(info.freeram, 1000000 * 1024);
        assert_eq!(info.bufferram, 12 * 1024);
        assert_eq!(info.sharedram, 34 * 1024);
        assert_eq!(info.totalswap, 131068 * 1024);
        assert_eq!(info.freeswap, 126972 * 1024);
        assert_eq!((info.totalhigh, info.freehigh), (0, 0));
        assert_eq!((info.procs, info.mem_unit), (9, 1));
        assert_eq!(Sysinfo::from_files("", "", "", 0).uptime, 0);
        assert_eq!(Sysinfo::from_files("", "12.00 1.00", "", 0).uptime, 12);
        assert_eq!(Sysinfo::from_files("", "", "", 65537).procs, 1);
    }

    #[test]
    fn bytes_lay_out_as_libc_struct_sysinfo() {
        let info = Sysinfo {
            uptime: 7,
            loads: [1, 2, 3],
            totalram: 4,
            freeram: 5,
            sharedram: 6,
            bufferram: 8,
            totalswap: 9,
            freeswap: 10,
            procs: 11,
            totalhigh: 12,
            freehigh: 13,
            mem_unit: 1,
        };
        let bytes = info.to_bytes();
        // SAFETY: libc::sysinfo is plain integers; every bit pattern is valid.
        let c: libc::sysinfo = unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast()) };
        assert_eq!((c.uptime, c.loads), (7, [1, 2, 3]));
        assert_eq!(
            (c.totalram, c.freeram, c.sharedram, c.bufferram),
            (4, 5, 6, 8)
        );
        assert_eq!((c.totalswap, c.freeswap, c.procs, c.pad), (9, 10, 11, 0));
        assert_eq!((c.totalhigh, c.freehigh, c.mem_unit), (12, 13, 1));
    }
}
