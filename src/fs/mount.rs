//! Mounting and unmounting: the system calls and the /proc/self/mountinfo
//! look-ups behind `mmfs mount` and `mmfs umount`.
//!
//! As root the daemon mounts with mount(2) itself, with the file system
//! type `fuse.mmfs` (the kernel's `fuse` type with subtype `mmfs`), so
//! /proc/mounts names it. Without the privilege it falls back to the
//! setuid `fusermount3` helper through fuser.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{PID_XATTR, PIDS_XATTR};

/// File system type as /proc/mounts shows it.
pub const FSTYPE: &str = "fuse.mmfs";
/// The mount's source ("device") name.
pub const FSNAME: &str = "mmfs";
/// The FUSE device.
pub const DEV_FUSE: &str = "/dev/fuse";
/// The unprivileged mount helper of fuse3.
pub const FUSERMOUNT: &str = "fusermount3";

/// One line of /proc/self/mountinfo.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountEntry {
    /// Where it is mounted.
    pub mountpoint: PathBuf,
    /// File system type (`fuse.mmfs`).
    pub fstype: String,
    /// Source field (`mmfs`).
    pub source: String,
}

/// Undo the octal escapes (`\040` for a space) of mountinfo fields.
pub fn unescape(field: &str) -> Vec<u8> {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let value = bytes[i + 1..i + 4]
                .iter()
                .fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0'));
            out.push(u8::try_from(value).unwrap_or(b'?'));
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

/// Parse the text of /proc/self/mountinfo.
pub fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let mountpoint = left.split(' ').nth(4)?;
            let mut right = right.split(' ');
            let fstype = right.next()?;
            let source = right.next().unwrap_or("");
            Some(MountEntry {
                mountpoint: PathBuf::from(std::ffi::OsStr::from_bytes(&unescape(mountpoint))),
                fstype: fstype.to_string(),
                source: String::from_utf8_lossy(&unescape(source)).into_owned(),
            })
        })
        .collect()
}

/// The topmost mount at exactly `mountpoint` (a canonical path), if any.
pub fn find_mount(mountpoint: &Path) -> Option<MountEntry> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    parse_mountinfo(&text)
        .into_iter()
        .rev()
        .find(|m| m.mountpoint == mountpoint)
}

/// The absolute path of `dir` with symlinks resolved, even when `dir`
/// itself is a dead FUSE mount that cannot be stat'ed (its parent is
/// resolved and its name appended).
pub fn canonical(dir: &Path) -> io::Result<PathBuf> {
    match dir.canonicalize() {
        Ok(path) => Ok(path),
        Err(err) if is_dead_mount_error(&err) => {
            let name = dir.file_name().ok_or(err)?;
            let parent = match dir.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.canonicalize()?,
                _ => std::env::current_dir()?,
            };
            Ok(parent.join(name))
        }
        Err(err) => Err(err),
    }
}

/// True for the errors a FUSE mount whose daemon is gone answers with:
/// ENOTCONN ("Transport endpoint is not connected"), or ECONNABORTED while
/// the kernel is still failing the requests that were in flight.
pub fn is_dead_mount_error(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::ENOTCONN | libc::ECONNABORTED)
    )
}

/// True when the effective user is root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// True when `fusermount3` can be found on PATH.
pub fn have_fusermount() -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| dir.join(FUSERMOUNT).is_file())
    })
}

fn cstring(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

/// The outcome of a direct mount attempt.
#[derive(Debug)]
pub enum Mounted {
    /// Mounted with mount(2); serve requests from this /dev/fuse descriptor.
    Fd(OwnedFd),
    /// /dev/fuse or mount(2) was not permitted: go through fusermount3.
    NeedsFusermount,
}

/// Mount a FUSE file system of type `fuse.mmfs` at `mountpoint` with
/// mount(2): `default_permissions`, owned by the calling user, `allow_other`
/// when asked, and nosuid/nodev/noexec like /proc.
pub fn mount_fuse(mountpoint: &Path, allow_other: bool, read_only: bool) -> io::Result<Mounted> {
    let dev = match File::options().read(true).write(true).open(DEV_FUSE) {
        Ok(dev) => dev,
        // Unprivileged users may not open /dev/fuse; the setuid helper can.
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            return Ok(Mounted::NeedsFusermount);
        }
        Err(e) => {
            return Err(io::Error::new(
                e.kind(),
                format!("cannot open {DEV_FUSE}: {e}"),
            ));
        }
    };
    let fd = OwnedFd::from(dev);
    // SAFETY: getuid/getgid have no preconditions.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let mut data = format!(
        "fd={},rootmode={:o},user_id={uid},group_id={gid},default_permissions",
        fd.as_raw_fd(),
        libc::S_IFDIR | 0o555
    );
    if allow_other {
        data.push_str(",allow_other");
    }
    let source = CString::new(FSNAME).map_err(io::Error::other)?;
    let fstype = CString::new(FSTYPE).map_err(io::Error::other)?;
    let target = cstring(mountpoint)?;
    let data = CString::new(data).map_err(io::Error::other)?;
    let mut flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    if read_only {
        // MS_RDONLY: the kernel answers every write with EROFS itself.
        flags |= libc::MS_RDONLY;
    }
    // SAFETY: every pointer is a valid NUL-terminated string that outlives
    // the call.
    let rc = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            flags,
            data.as_ptr().cast(),
        )
    };
    if rc == 0 {
        return Ok(Mounted::Fd(fd));
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::EPERM) {
        return Ok(Mounted::NeedsFusermount);
    }
    Err(err)
}

/// Mount through the setuid `fusermount3` helper (for users who may not
/// call mount(2) or open /dev/fuse): it mounts `fuse.mmfs` at `mountpoint`
/// and hands the /dev/fuse descriptor back over a socket (`_FUSE_COMMFD`),
/// as libfuse does.
pub fn mount_fusermount(
    mountpoint: &Path,
    allow_other: bool,
    read_only: bool,
) -> io::Result<OwnedFd> {
    use std::os::unix::net::UnixStream;
    use std::os::unix::process::CommandExt;
    let (ours, theirs) = UnixStream::pair()?;
    let mut options =
        format!("fsname={FSNAME},subtype=mmfs,default_permissions,nosuid,nodev,noexec");
    if allow_other {
        options.push_str(",allow_other");
    }
    if read_only {
        options.push_str(",ro");
    }
    let their_fd = theirs.as_raw_fd();
    let mut cmd = Command::new(FUSERMOUNT);
    cmd.arg("-o")
        .arg(options)
        .arg("--")
        .arg(mountpoint)
        .env("_FUSE_COMMFD", their_fd.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: the closure only calls fcntl, which is async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            // The helper must inherit its end of the socket across exec.
            let flags = libc::fcntl(their_fd, libc::F_GETFD);
            if flags < 0 || libc::fcntl(their_fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn()?;
    drop(theirs);
    let received = receive_fd(&ours);
    drop(ours);
    let out = child.wait_with_output()?;
    match received {
        Some(fd) => Ok(fd),
        None => {
            let text = String::from_utf8_lossy(&out.stderr).trim().to_string();
            Err(io::Error::other(if text.is_empty() {
                format!("{FUSERMOUNT} failed ({})", out.status)
            } else {
                text
            }))
        }
    }
}

/// Receive one descriptor sent with SCM_RIGHTS on `socket`.
fn receive_fd(socket: &std::os::unix::net::UnixStream) -> Option<OwnedFd> {
    use std::os::fd::FromRawFd;
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: byte.len(),
    };
    // u64 elements keep the control buffer aligned for cmsghdr.
    let mut control = [0u64; 8];
    // SAFETY: an all-zero msghdr is a valid empty message header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    let n = loop {
        // SAFETY: msg points at live buffers of the lengths it states.
        let n = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        break n;
    };
    if n <= 0 {
        return None;
    }
    // SAFETY: the kernel filled msg; the CMSG macros walk the buffer it set.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        if cmsg.is_null()
            || (*cmsg).cmsg_level != libc::SOL_SOCKET
            || (*cmsg).cmsg_type != libc::SCM_RIGHTS
        {
            return None;
        }
        let fd = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>());
        (fd >= 0).then(|| OwnedFd::from_raw_fd(fd))
    }
}

/// Unmount `mountpoint`: umount2(2), or `fusermount3 -u` for a user who
/// may not call it. `lazy` detaches a busy mount (MNT_DETACH).
pub fn unmount(mountpoint: &Path, lazy: bool) -> io::Result<()> {
    let target = cstring(mountpoint)?;
    let flags = if lazy { libc::MNT_DETACH } else { 0 };
    // SAFETY: target is a valid NUL-terminated path.
    let rc = unsafe { libc::umount2(target.as_ptr(), flags) };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() != Some(libc::EPERM) || !have_fusermount() {
        return Err(err);
    }
    let mut cmd = Command::new(FUSERMOUNT);
    cmd.arg("-u").arg("-q");
    if lazy {
        cmd.arg("-z");
    }
    let out = cmd
        .arg("--")
        .arg(mountpoint)
        .stdin(Stdio::null())
        .output()?;
    if out.status.success() {
        Ok(())
    } else {
        let text = String::from_utf8_lossy(&out.stderr);
        let busy = text.contains("busy");
        Err(io::Error::new(
            if busy {
                io::ErrorKind::ResourceBusy
            } else {
                io::ErrorKind::Other
            },
            text.trim().to_string(),
        ))
    }
}

/// The value of the root's extended attribute `name` of the mount at
/// `mountpoint`, up to `N` bytes.
fn root_xattr<const N: usize>(mountpoint: &Path, name: &str) -> Option<Vec<u8>> {
    let path = cstring(mountpoint).ok()?;
    let name = CString::new(name).ok()?;
    let mut buf = [0u8; N];
    // SAFETY: path and name are valid C strings; buf is writable for its length.
    let n = unsafe {
        libc::getxattr(
            path.as_ptr(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    let n = usize::try_from(n).ok()?;
    Some(buf.get(..n)?.to_vec())
}

/// The pid of the daemon serving the mmfs mount at `mountpoint`, read from
/// the root's [`PID_XATTR`] attribute.
pub fn daemon_pid(mountpoint: &Path) -> Option<u32> {
    let value = root_xattr::<32>(mountpoint, PID_XATTR)?;
    std::str::from_utf8(&value).ok()?.trim().parse().ok()
}

/// The root's [`PIDS_XATTR`] attribute of the mmfs mount at `mountpoint`:
/// it changes whenever the set of process directories does. `None` when
/// it cannot be read (an older daemon).
pub fn pid_set_version(mountpoint: &Path) -> Option<Vec<u8>> {
    root_xattr::<64>(mountpoint, PIDS_XATTR)
}

/// True while process `pid` exists and is not a zombie.
pub fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_none_or(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X')),
        Err(_) => false,
    }
}

/// Wait up to `timeout` for process `pid` to be gone; true if it is.
pub fn wait_for_exit(pid: u32, timeout: Duration) -> bool {
    let start = Instant::now();
    while process_alive(pid) {
        if start.elapsed() > timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_lines_parse() {
        let text = "22 1 0:21 / /proc rw,nosuid - proc proc rw\n\
                    97 22 0:50 / /tmp/a\\040b rw,nosuid,nodev - fuse.mmfs mmfs rw,user_id=0\n\
                    garbage line\n";
        let entries = parse_mountinfo(text);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1].mountpoint, PathBuf::from("/tmp/a b"));
        assert_eq!(entries[1].fstype, FSTYPE);
        assert_eq!(entries[1].source, "mmfs");
    }

    #[test]
    fn unescape_handles_edges() {
        assert_eq!(unescape("a\\134b"), b"a\\b");
        assert_eq!(unescape("tail\\04"), b"tail\\04");
        assert_eq!(unescape("\\777"), b"?");
    }

    #[test]
    fn self_is_alive() {
        assert!(process_alive(std::process::id()));
        assert!(!process_alive(u32::MAX));
    }
}
