//! The one error type of the simulated kernel; each variant maps to one errno.

/// What went wrong. The message is the dmesg text: it says why, in words a
/// user can act on.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum MmError {
    /// Bad syntax, value, alignment or signature (EINVAL).
    #[error("{0}")]
    Invalid(String),
    /// No memory, no room in the address space, overcommit refusal (ENOMEM).
    #[error("{0}")]
    NoMemory(String),
    /// Access outside a mapping or against its protection (EFAULT).
    #[error("{0}")]
    Fault(String),
    /// No such process (ESRCH).
    #[error("{0}")]
    NoProcess(String),
    /// Resource in use (EBUSY).
    #[error("{0}")]
    Busy(String),
    /// Name already taken (EEXIST).
    #[error("{0}")]
    Exists(String),
    /// No such cache, tag or device (ENOENT).
    #[error("{0}")]
    NotFound(String),
    /// Host I/O failed (EIO).
    #[error("{0}")]
    Io(String),
    /// A limit such as pid_max was reached (EAGAIN).
    #[error("{0}")]
    Again(String),
    /// Not permitted (EPERM).
    #[error("{0}")]
    Permission(String),
    /// The disk or the inode table is full (ENOSPC).
    #[error("{0}")]
    NoSpace(String),
    /// A name longer than NAME_MAX (ENAMETOOLONG).
    #[error("{0}")]
    NameTooLong(String),
    /// A path component is not a directory (ENOTDIR).
    #[error("{0}")]
    NotDir(String),
    /// A directory where a file was expected (EISDIR).
    #[error("{0}")]
    IsDir(String),
    /// rmdir of a directory with entries (ENOTEMPTY).
    #[error("{0}")]
    NotEmpty(String),
    /// A file past the largest size (EFBIG).
    #[error("{0}")]
    TooBig(String),
    /// No such operation for this kind of file, e.g. mmap of a directory
    /// (ENODEV).
    #[error("{0}")]
    NoDevice(String),
    /// An offset past what the type can hold (EOVERFLOW).
    #[error("{0}")]
    Overflow(String),
    /// A write or truncation of an active swap file (ETXTBSY).
    #[error("{0}")]
    TextBusy(String),
}

impl MmError {
    /// The errno a write to a control file fails with.
    pub fn errno(&self) -> i32 {
        match self {
            MmError::Invalid(_) => libc::EINVAL,
            MmError::NoMemory(_) => libc::ENOMEM,
            MmError::Fault(_) => libc::EFAULT,
            MmError::NoProcess(_) => libc::ESRCH,
            MmError::Busy(_) => libc::EBUSY,
            MmError::Exists(_) => libc::EEXIST,
            MmError::NotFound(_) => libc::ENOENT,
            MmError::Io(_) => libc::EIO,
            MmError::Again(_) => libc::EAGAIN,
            MmError::Permission(_) => libc::EPERM,
            MmError::NoSpace(_) => libc::ENOSPC,
            MmError::NameTooLong(_) => libc::ENAMETOOLONG,
            MmError::NotDir(_) => libc::ENOTDIR,
            MmError::IsDir(_) => libc::EISDIR,
            MmError::NotEmpty(_) => libc::ENOTEMPTY,
            MmError::TooBig(_) => libc::EFBIG,
            MmError::NoDevice(_) => libc::ENODEV,
            MmError::Overflow(_) => libc::EOVERFLOW,
            MmError::TextBusy(_) => libc::ETXTBSY,
        }
    }
}

/// Shorthand for results of the simulated kernel.
pub type MmResult<T> = Result<T, MmError>;
