//! Per-process files: `MOUNT/PID/...` (Linux: fs/proc/base.c, array.c, task_mmu.c).

use crate::mm::Kernel;
use crate::mm::error::{MmError, MmResult};
use crate::mm::types::Pid;

/// The generated (read-only or read-write text) files of a process directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum PidFile {
    /// /proc/PID/comm
    Comm,
}

/// Name, mode and identity of every generated file in `PID/`. The special
/// files `ctl` (write-only commands) and `mem` (byte access at offset =
/// virtual address) are served by the FUSE adapter through
/// `Kernel::execute_line`, `Kernel::read_mem` and `Kernel::write_mem`.
pub const PID_FILES: &[(&str, u16, PidFile)] = &[("comm", 0o444, PidFile::Comm)];

/// Render one file of a process; ESRCH when the process does not exist.
pub fn render_pid(kernel: &Kernel, pid: Pid, file: PidFile) -> MmResult<String> {
    let _ = (kernel, file);
    Err(MmError::NoProcess(format!("no process {pid}")))
}
