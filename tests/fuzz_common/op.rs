//! One fuzzer step ([`Op`]) and how a reproducer prints it.

use std::fmt;

use mmfs::ctl::Scope;
use mmfs::mm::MachineConfig;
use mmfs::mm::types::Pid;
use mmfs::procfs::GlobalFile;
use mmfs::procfs::pid::PID_FILES;

/// One fuzzer step.
#[derive(Clone, Debug)]
pub enum Op {
    /// Boot a fresh machine.
    Boot(MachineConfig),
    /// One line to a control file through `Machine::execute_line`.
    Ctl(Scope, String),
    /// The same, and if the line is refused with a validation errno, check
    /// that every rendered file is unchanged.
    CtlChecked(Scope, String),
    /// Raw `write()`s to one open control file, then close, through the
    /// FUSE adapter's [`LineBuffer`] (lines split across writes, not UTF-8).
    Writes(Scope, Vec<Vec<u8>>),
    /// Write a sysctl file.
    Sysctl(String, String),
    /// Render one system-wide file.
    ReadGlobal(GlobalFile),
    /// Render one per-process file (by index into `PID_FILES`).
    ReadPid(Pid, usize),
    /// Render everything and check the cross-file identities.
    ReadAll,
    /// `PID/mem` read.
    ReadMem(Pid, u64, usize),
    /// `PID/mem` write; with `true`, read the bytes back.
    WriteMem(Pid, u64, Vec<u8>, bool),
    /// Write a writable per-process file (`oom_score_adj`, `comm`).
    PidWrite(Pid, &'static str, String),
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scope = |s: &Scope| match s {
            Scope::System => "ctl".to_string(),
            Scope::Process(p) => format!("{p}/ctl"),
        };
        match self {
            Op::Boot(c) => write!(
                f,
                "boot --arch {} --mem {}K",
                c.arch.name(),
                c.mem_bytes >> 10
            ),
            Op::Ctl(s, line) => write!(f, "{} <- {:?}", scope(s), line),
            Op::CtlChecked(s, line) => write!(f, "{} <- {:?}  (no-change check)", scope(s), line),
            Op::Writes(s, writes) => {
                write!(f, "{} <- writes[", scope(s))?;
                for (i, w) in writes.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    if w.len() > 300 {
                        write!(
                            f,
                            "{:?}..({} bytes)",
                            String::from_utf8_lossy(&w[..300]),
                            w.len()
                        )?;
                    } else {
                        write!(f, "{:?}", String::from_utf8_lossy(w))?;
                    }
                }
                write!(f, "] close")
            }
            Op::Sysctl(n, v) => write!(f, "sys/{n} <- {v:?}"),
            Op::ReadGlobal(g) => write!(f, "read {g:?}"),
            Op::ReadPid(p, i) => write!(f, "read {p}/{}", PID_FILES[*i].0),
            Op::ReadAll => write!(f, "read all + cross-check"),
            Op::ReadMem(p, a, n) => write!(f, "read {p}/mem at {a:#x} len {n}"),
            Op::WriteMem(p, a, d, _) => write!(f, "write {p}/mem at {a:#x} len {}", d.len()),
            Op::PidWrite(p, file, text) => write!(f, "{p}/{file} <- {text:?}"),
        }
    }
}

impl Op {
    /// Operations that only read (the minimizer tries without them first).
    pub fn is_read(&self) -> bool {
        matches!(
            self,
            Op::ReadGlobal(_) | Op::ReadPid(..) | Op::ReadAll | Op::ReadMem(..)
        )
    }
}
