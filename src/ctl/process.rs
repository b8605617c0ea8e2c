//! The commands of `MOUNT/PID/ctl`: one text line → one [`ProcessCommand`].
//!
//! Like the system commands, parsing never touches kernel state. Addresses
//! that name something (`buf+4K`, `heap`, `stack`) stay symbolic here and
//! are resolved by the kernel against the process's address space.

use super::{Words, invalid, name, number, size};
use crate::mm::error::MmResult;
pub use crate::mm::madvise::Advice;
pub use crate::mm::mprotect::Prot;

/// An address as written in a command: a number, or a name plus offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AddrSpec {
    /// A virtual address (decimal or 0x hex).
    Absolute(u64),
    /// `NAME[+OFF]`: the start of the mapping made with `name=NAME`.
    Mapping {
        /// The mapping's name.
        name: String,
        /// Bytes after (positive) or before (negative) its start.
        offset: i64,
    },
    /// `heap[+OFF]`: the start of the heap (`start_brk`).
    Heap(i64),
    /// `stack[+OFF]`: the start (lowest address) of the `[stack]` mapping.
    Stack(i64),
}

/// Parse `r`, `rw`, `rx`, `rwx` or `none`.
pub fn parse_prot(text: &str) -> MmResult<Prot> {
    let (read, write, exec) = match text {
        "r" => (true, false, false),
        "rw" => (true, true, false),
        "rx" => (true, false, true),
        "rwx" => (true, true, true),
        "none" => (false, false, false),
        _ => {
            return Err(invalid(format!(
                "bad protection '{text}': use r, rw, rx, rwx or none"
            )));
        }
    };
    Ok(Prot { read, write, exec })
}

/// The file part of `mmap ... file=PATH [offset=OFF] [shared]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MmapFile {
    /// Absolute path inside the machine.
    pub path: String,
    /// Byte offset into the file (page aligned, checked by the kernel).
    pub offset: u64,
    /// MAP_SHARED (writes reach the file) rather than MAP_PRIVATE.
    pub shared: bool,
}

/// How `brk` moves the program break.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BrkArg {
    /// `brk ADDR`: set the break.
    To(AddrSpec),
    /// `brk +SIZE`: grow it.
    Grow(u64),
    /// `brk -SIZE`: shrink it.
    Shrink(u64),
}

/// A parsed command of `MOUNT/PID/ctl`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProcessCommand {
    /// `mmap SIZE [name=NAME] [addr=ADDR] [prot=PROT]
    /// [file=PATH [offset=OFF] [shared]]`
    Mmap {
        /// Length in bytes (rounded up to pages by the kernel).
        bytes: u64,
        /// `[anon:NAME]`, also usable as an ADDR afterwards.
        name: Option<String>,
        /// Place the mapping exactly here (the range must be free).
        addr: Option<AddrSpec>,
        /// Protection (default `rw`).
        prot: Prot,
        /// A file mapping instead of anonymous memory.
        file: Option<MmapFile>,
        /// `shared` without `file=`: shared anonymous memory
        /// (`MAP_SHARED | MAP_ANONYMOUS`, a shmem object).
        shared_anon: bool,
    },
    /// `munmap ADDR SIZE`
    Munmap {
        /// Start (page aligned).
        addr: AddrSpec,
        /// Length in bytes.
        bytes: u64,
    },
    /// `mprotect ADDR SIZE PROT`
    Mprotect {
        /// Start (page aligned).
        addr: AddrSpec,
        /// Length in bytes.
        bytes: u64,
        /// New protection.
        prot: Prot,
    },
    /// `brk ADDR` / `brk +SIZE` / `brk -SIZE`
    Brk(BrkArg),
    /// `touch ADDR SIZE [read|write]`
    Touch {
        /// First byte.
        addr: AddrSpec,
        /// Bytes; every page they overlap is accessed.
        bytes: u64,
        /// Write access (default) or read access.
        write: bool,
    },
    /// `madvise ADDR SIZE pageout|cold|dontneed`
    Madvise {
        /// Start (page aligned).
        addr: AddrSpec,
        /// Length in bytes.
        bytes: u64,
        /// What to do.
        advice: Advice,
    },
    /// `read PATH OFF SIZE`: read a file of the simulated file system.
    Read {
        /// Absolute path inside the machine (`/data/x` is `MOUNT/fs/data/x`).
        path: String,
        /// Byte offset.
        off: u64,
        /// Bytes.
        bytes: u64,
    },
    /// `write PATH OFF SIZE [byte=B]`: write SIZE bytes of value B.
    Write {
        /// Absolute path inside the machine; created if missing.
        path: String,
        /// Byte offset.
        off: u64,
        /// Bytes.
        bytes: u64,
        /// The byte written (default 0x61, 'a').
        byte: u8,
    },
    /// `fsync PATH`
    Fsync {
        /// Absolute path inside the machine.
        path: String,
    },
}

/// The byte `write` writes unless told (`a`).
pub const DEFAULT_WRITE_BYTE: u8 = 0x61;

/// A path of the simulated file system: absolute, no NUL.
fn fs_path(text: &str) -> MmResult<String> {
    if !text.starts_with('/') {
        return Err(invalid(format!(
            "'{text}' is not an absolute path of the simulated file system (/data/x is MOUNT/fs/data/x)"
        )));
    }
    Ok(text.to_string())
}

/// Words that cannot name a mapping because ADDR gives them a meaning.
pub const RESERVED_NAMES: &[&str] = &["heap", "stack"];

/// The commands `PID/ctl` understands, for error messages.
pub const PROCESS_COMMANDS: &[&str] = &[
    "mmap", "munmap", "mprotect", "brk", "touch", "madvise", "read", "write", "fsync",
];

/// Parse an ADDR: a number, `heap[±OFF]`, `stack[±OFF]` or `NAME[±OFF]`.
/// OFF is a SIZE (`4K`, `0x1000`, …).
pub fn parse_addr(text: &str) -> MmResult<AddrSpec> {
    if text.is_empty() {
        return Err(invalid("empty address"));
    }
    if text.as_bytes()[0].is_ascii_digit() {
        return Ok(AddrSpec::Absolute(number(text, "address")?));
    }
    let (base, offset) = match text.find(['+', '-']) {
        Some(at) => {
            let magnitude = size(&text[at + 1..], "address offset")?;
            let magnitude = i64::try_from(magnitude)
                .map_err(|_| invalid(format!("address offset in '{text}' is too large")))?;
            let offset = if text.as_bytes()[at] == b'-' {
                -magnitude
            } else {
                magnitude
            };
            (&text[..at], offset)
        }
        None => (text, 0),
    };
    match base {
        "heap" => Ok(AddrSpec::Heap(offset)),
        "stack" => Ok(AddrSpec::Stack(offset)),
        _ => Ok(AddrSpec::Mapping {
            name: mapping_name(base)?,
            offset,
        }),
    }
}

/// A mapping name: what `prctl(PR_SET_VMA_ANON_NAME)` accepts (printable
/// ASCII except `[`, `]`, `\`, `` ` `` and `$`), not a reserved word, not
/// starting with a digit (that would read as an address), no `+`/`-`
/// (offsets), cut to 15 bytes like every name.
pub fn mapping_name(text: &str) -> MmResult<String> {
    let cut = name(text, "mapping name")?;
    if let Some(bad) = cut
        .chars()
        .find(|&c| !(' '..='~').contains(&c) || "[]\\`$+-=".contains(c))
    {
        return Err(invalid(format!(
            "mapping name '{text}' may not contain {bad:?} (printable ASCII without []\\`$+-=)"
        )));
    }
    if cut.as_bytes()[0].is_ascii_digit() {
        return Err(invalid(format!(
            "mapping name '{text}' may not start with a digit (it would read as an address)"
        )));
    }
    if RESERVED_NAMES.contains(&cut.as_str()) {
        return Err(invalid(format!(
            "mapping name '{cut}' is reserved: heap and stack name the process's own areas"
        )));
    }
    Ok(cut)
}

/// A non-zero SIZE (mmap, munmap, touch; mprotect and madvise take 0 and
/// do nothing, as Linux does).
fn length(text: &str, what: &str) -> MmResult<u64> {
    let bytes = size(text, what)?;
    if bytes == 0 {
        return Err(invalid(format!("{what} 0: nothing to do")));
    }
    Ok(bytes)
}

/// Parse one line written to `MOUNT/PID/ctl`. Blank lines and comments are
/// filtered out before (see [`super::is_blank`]).
pub fn parse_process(line: &str) -> MmResult<ProcessCommand> {
    let words = Words::split(line).ok_or_else(|| invalid("empty command"))?;
    let p = &words.positional;
    match words.verb {
        "mmap" => {
            const USAGE: &str = "mmap SIZE [shared] [name=NAME] [addr=ADDR] [prot=r|rw|rx|rwx|none] [file=PATH [offset=OFF]]";
            words.arity(1, 2, USAGE)?;
            words.allow_options(&["name", "addr", "prot", "file", "offset"])?;
            let shared = match p.get(1).copied() {
                None => false,
                Some("shared") => true,
                Some(other) => {
                    return Err(invalid(format!(
                        "mmap: unknown word '{other}'; usage: {USAGE}"
                    )));
                }
            };
            let file = match words.option("file") {
                Some(path) => Some(MmapFile {
                    path: fs_path(path)?,
                    offset: words
                        .option("offset")
                        .map(|o| size(o, "mmap offset"))
                        .transpose()?
                        .unwrap_or(0),
                    shared,
                }),
                None if words.option("offset").is_some() => {
                    return Err(invalid("mmap: offset= needs file=PATH"));
                }
                None => None,
            };
            Ok(ProcessCommand::Mmap {
                shared_anon: shared && file.is_none(),
                file,
                bytes: length(p[0], "mapping size")?,
                name: words.option("name").map(mapping_name).transpose()?,
                addr: words.option("addr").map(parse_addr).transpose()?,
                prot: words
                    .option("prot")
                    .map(parse_prot)
                    .transpose()?
                    .unwrap_or(Prot::RW),
            })
        }
        "munmap" => {
            words.arity(2, 2, "munmap ADDR SIZE")?;
            words.allow_options(&[])?;
            Ok(ProcessCommand::Munmap {
                addr: parse_addr(p[0])?,
                bytes: length(p[1], "munmap size")?,
            })
        }
        "mprotect" => {
            words.arity(3, 3, "mprotect ADDR SIZE r|rw|rx|rwx|none")?;
            words.allow_options(&[])?;
            Ok(ProcessCommand::Mprotect {
                addr: parse_addr(p[0])?,
                bytes: size(p[1], "mprotect size")?,
                prot: parse_prot(p[2])?,
            })
        }
        "brk" => {
            words.arity(1, 1, "brk ADDR | brk +SIZE | brk -SIZE")?;
            words.allow_options(&[])?;
            let arg = p[0];
            let brk = if let Some(grow) = arg.strip_prefix('+') {
                BrkArg::Grow(size(grow, "brk increment")?)
            } else if let Some(shrink) = arg.strip_prefix('-') {
                BrkArg::Shrink(size(shrink, "brk decrement")?)
            } else {
                BrkArg::To(parse_addr(arg)?)
            };
            Ok(ProcessCommand::Brk(brk))
        }
        "touch" => {
            words.arity(2, 3, "touch ADDR SIZE [read|write]")?;
            words.allow_options(&[])?;
            let write = match p.get(2).copied() {
                None | Some("write") => true,
                Some("read") => false,
                Some(other) => {
                    return Err(invalid(format!(
                        "touch: access '{other}' is neither read nor write"
                    )));
                }
            };
            Ok(ProcessCommand::Touch {
                addr: parse_addr(p[0])?,
                bytes: length(p[1], "touch size")?,
                write,
            })
        }
        "madvise" => {
            words.arity(3, 3, "madvise ADDR SIZE pageout|cold|dontneed")?;
            words.allow_options(&[])?;
            let advice = match p[2] {
                "dontneed" => Advice::DontNeed,
                "pageout" => Advice::PageOut,
                "cold" => Advice::Cold,
                other => {
                    return Err(invalid(format!(
                        "madvise: unknown advice '{other}' (pageout, cold, dontneed)"
                    )));
                }
            };
            Ok(ProcessCommand::Madvise {
                addr: parse_addr(p[0])?,
                bytes: size(p[1], "madvise size")?,
                advice,
            })
        }
        "read" => {
            words.arity(3, 3, "read PATH OFF SIZE")?;
            words.allow_options(&[])?;
            Ok(ProcessCommand::Read {
                path: fs_path(p[0])?,
                off: size(p[1], "read offset")?,
                bytes: size(p[2], "read size")?,
            })
        }
        "write" => {
            words.arity(3, 3, "write PATH OFF SIZE [byte=B]")?;
            words.allow_options(&["byte"])?;
            let byte = match words.option("byte") {
                Some(text) => {
                    let b = number(text, "byte")?;
                    u8::try_from(b).map_err(|_| invalid(format!("byte={b} is not 0..255")))?
                }
                None => DEFAULT_WRITE_BYTE,
            };
            Ok(ProcessCommand::Write {
                path: fs_path(p[0])?,
                off: size(p[1], "write offset")?,
                bytes: size(p[2], "write size")?,
                byte,
            })
        }
        "fsync" => {
            words.arity(1, 1, "fsync PATH")?;
            words.allow_options(&[])?;
            Ok(ProcessCommand::Fsync {
                path: fs_path(p[0])?,
            })
        }
        other => Err(invalid(format!(
            "unknown command '{other}' (PID/ctl commands: {})",
            PROCESS_COMMANDS.join(", ")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(
            parse_addr("0x7f0000000000").unwrap(),
            AddrSpec::Absolute(0x7f00_0000_0000)
        );
        assert_eq!(parse_addr("4096").unwrap(), AddrSpec::Absolute(4096));
        assert_eq!(parse_addr("heap").unwrap(), AddrSpec::Heap(0));
        assert_eq!(parse_addr("stack+8K").unwrap(), AddrSpec::Stack(8192));
        assert_eq!(parse_addr("stack-4K").unwrap(), AddrSpec::Stack(-4096));
        assert_eq!(
            parse_addr("buf+0x10").unwrap(),
            AddrSpec::Mapping {
                name: "buf".into(),
                offset: 16
            }
        );
        for bad in ["", "buf+", "heap+x", "0xg", "12abc", "a[b]"] {
            assert!(parse_addr(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn mmap_defaults_and_options() {
        assert_eq!(
            parse_process("mmap 1G").unwrap(),
            ProcessCommand::Mmap {
                bytes: 1 << 30,
                name: None,
                addr: None,
                prot: Prot::RW,
                file: None,
                shared_anon: false,
            }
        );
        assert_eq!(
            parse_process("mmap 64M file=/data/db offset=1M shared name=db").unwrap(),
            ProcessCommand::Mmap {
                bytes: 64 << 20,
                name: Some("db".into()),
                addr: None,
                prot: Prot::RW,
                file: Some(MmapFile {
                    path: "/data/db".into(),
                    offset: 1 << 20,
                    shared: true,
                }),
                shared_anon: false,
            }
        );
        assert_eq!(
            parse_process("mmap 64K name=buf prot=r addr=0x10000").unwrap(),
            ProcessCommand::Mmap {
                bytes: 65536,
                name: Some("buf".into()),
                addr: Some(AddrSpec::Absolute(0x10000)),
                prot: Prot {
                    read: true,
                    write: false,
                    exec: false
                },
                file: None,
                shared_anon: false,
            }
        );
    }

    #[test]
    fn brk_forms() {
        assert_eq!(
            parse_process("brk +1M").unwrap(),
            ProcessCommand::Brk(BrkArg::Grow(1 << 20))
        );
        assert_eq!(
            parse_process("brk -4K").unwrap(),
            ProcessCommand::Brk(BrkArg::Shrink(4096))
        );
        assert_eq!(
            parse_process("brk heap+8K").unwrap(),
            ProcessCommand::Brk(BrkArg::To(AddrSpec::Heap(8192)))
        );
    }

    #[test]
    fn rejects_bad_lines() {
        for line in [
            "mmap",
            "mmap 0",
            "mmap 4K prot=w",
            "mmap 4K name=heap",
            "mmap 4K name=9lives",
            "mmap 4K colour=red",
            "munmap heap",
            "mprotect heap 4K rwxs",
            "touch heap 4K sideways",
            "touch heap 0",
            "munmap heap 0",
            "mmap 0 addr=heap",
            "madvise heap 4K free",
            "fork",
        ] {
            let err = parse_process(line).unwrap_err();
            assert_eq!(err.errno(), libc::EINVAL, "{line}");
        }
    }

    #[test]
    fn touch_defaults_to_write() {
        assert_eq!(
            parse_process("touch buf 8K").unwrap(),
            ProcessCommand::Touch {
                addr: AddrSpec::Mapping {
                    name: "buf".into(),
                    offset: 0
                },
                bytes: 8192,
                write: true
            }
        );
    }

    #[test]
    fn mprotect_and_madvise_take_length_zero() {
        assert_eq!(
            parse_process("mprotect heap 0 r").unwrap(),
            ProcessCommand::Mprotect {
                addr: AddrSpec::Heap(0),
                bytes: 0,
                prot: Prot {
                    read: true,
                    write: false,
                    exec: false
                }
            }
        );
        assert_eq!(
            parse_process("madvise heap 0 cold").unwrap(),
            ProcessCommand::Madvise {
                addr: AddrSpec::Heap(0),
                bytes: 0,
                advice: Advice::Cold
            }
        );
    }
}
