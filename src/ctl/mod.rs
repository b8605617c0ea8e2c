//! The control language: one text line → one typed [`Command`]
//! (this file and [`process`]), run against the kernel by [`exec`].
//!
//! Parsing never touches kernel state; a line that fails here is EINVAL and
//! changes nothing. Names (tags, caches, process names) are cut to 15 bytes
//! as Linux cuts a task's comm.

mod display;
pub mod exec;
pub mod process;
pub mod tags;
pub mod trace;

pub use exec::{Machine, PidWrite};
pub use process::{AddrSpec, Advice, BrkArg, ProcessCommand, Prot, parse_process};

use crate::mm::error::{MmError, MmResult};
use crate::mm::types::{Order, parse_number, parse_size};

/// Longest accepted line, in bytes.
pub const MAX_LINE: usize = 4096;
/// Largest `tick` count.
pub const MAX_TICKS: u64 = 1_000_000;
/// Largest `count=` of one command.
pub const MAX_COUNT: u64 = 1 << 24;
/// Tag used when a command names none.
pub const DEFAULT_TAG: &str = "default";

/// Which control file a line was written to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// `MOUNT/ctl`.
    System,
    /// `MOUNT/PID/ctl`.
    Process(crate::mm::types::Pid),
}

/// The GFP choice of a raw `alloc_pages`: which migrate type it asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RawGfp {
    /// __GFP_MOVABLE: a movable pageblock's page.
    Movable,
    /// __GFP_RECLAIMABLE: a reclaimable pageblock's page.
    Reclaimable,
    /// GFP_ATOMIC: no reclaim, may use and grow the HighAtomic reserve.
    Atomic,
}

impl RawGfp {
    /// The word of the command line.
    pub fn word(self) -> &'static str {
        match self {
            RawGfp::Movable => "movable",
            RawGfp::Reclaimable => "reclaimable",
            RawGfp::Atomic => "atomic",
        }
    }
}

/// A parsed command of `MOUNT/ctl`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// `alloc_pages ORDER [movable|reclaimable|atomic] [count=N] [zone=NAME] [tag=T]`
    AllocPages {
        /// Block order.
        order: Order,
        /// Blocks to take.
        count: u64,
        /// Highest zone the request may use (None: the kernel's default, Normal).
        zone: Option<String>,
        /// Tag to free them by.
        tag: String,
        /// `movable`, `reclaimable` or `atomic` (None: unmovable GFP_KERNEL).
        gfp: Option<RawGfp>,
    },
    /// `free_pages tag=T [count=N]`
    FreePages {
        /// Which tag.
        tag: String,
        /// How many blocks, newest first (None: all).
        count: Option<u64>,
    },
    /// `sync`: write back every dirty page of the file system.
    Sync,
    /// `tick [N]`
    Tick {
        /// Ticks to advance.
        ticks: u64,
    },
    /// `mkswap PATH SIZE`
    Mkswap {
        /// `/dev/NAME` (simulated partition) or an absolute host path.
        path: String,
        /// Size in bytes.
        bytes: u64,
        /// Page numbers to list as bad in the header (`badpages=N,N,...`,
        /// like `mkswap -c` finding bad blocks).
        badpages: Vec<u32>,
        /// `rotational`: a simulated partition on a spinning disk (swap-in
        /// then reads ahead by slot clusters, not by virtual address).
        rotational: bool,
    },
    /// `swapon PATH [prio=N]`
    Swapon {
        /// Device or file.
        path: String,
        /// Explicit priority 0..=32767; None lets the kernel choose.
        prio: Option<i32>,
    },
    /// `swapoff PATH`
    Swapoff {
        /// Device or file.
        path: String,
    },
    /// `reclaim SIZE [swappiness=N|max]` (memory.reclaim)
    Reclaim {
        /// Bytes to reclaim.
        bytes: u64,
        /// `swappiness=` for this reclaim (0..=200, or SWAPPINESS_ANON_ONLY
        /// for `max`); None: vm.swappiness.
        swappiness: Option<u64>,
    },
    /// `spawn NAME`: a new process.
    Spawn {
        /// Its comm (cut to 15 bytes).
        name: String,
    },
    /// `fork PID`: a child of the process, sharing its pages copy-on-write.
    Fork {
        /// The parent.
        pid: crate::mm::types::Pid,
    },
    /// `kill PID`: the process exits and everything it held is freed.
    Kill {
        /// Which process.
        pid: crate::mm::types::Pid,
    },
    /// `kmem_cache_create NAME SIZE [align=N]`
    KmemCacheCreate {
        /// Cache name as written (the kernel cuts it to 15 bytes).
        name: String,
        /// Object size in bytes.
        size: u64,
        /// Object alignment in bytes (a power of two; default 8).
        align: u64,
    },
    /// `kmem_cache_destroy NAME`
    KmemCacheDestroy {
        /// Cache name.
        name: String,
    },
    /// `kmem_cache_alloc NAME [count=N] [tag=T]`
    KmemCacheAlloc {
        /// Cache name.
        name: String,
        /// Objects to allocate.
        count: u64,
        /// Tag to free them by.
        tag: String,
    },
    /// `kmem_cache_free tag=T [count=N]`
    KmemCacheFree {
        /// Which tag.
        tag: String,
        /// How many objects, newest first (None: all).
        count: Option<u64>,
    },
    /// `kmalloc SIZE [count=N] [tag=T]`
    Kmalloc {
        /// Bytes per object.
        size: u64,
        /// Objects to allocate.
        count: u64,
        /// Tag to free them by.
        tag: String,
    },
    /// `kfree tag=T [count=N]`
    Kfree {
        /// Which tag.
        tag: String,
        /// How many objects, newest first (None: all).
        count: Option<u64>,
    },
}

/// Split a line into the command word, positional words and `key=value` options.
pub struct Words<'a> {
    /// The command word.
    pub verb: &'a str,
    /// Positional arguments, in order.
    pub positional: Vec<&'a str>,
    /// `key=value` options, in order.
    pub options: Vec<(&'a str, &'a str)>,
}

impl<'a> Words<'a> {
    /// Tokenize on whitespace.
    pub fn split(line: &'a str) -> Option<Words<'a>> {
        let mut tokens = line.split_whitespace();
        let verb = tokens.next()?;
        let mut positional = Vec::new();
        let mut options = Vec::new();
        for token in tokens {
            match token.split_once('=') {
                Some((key, value)) => options.push((key, value)),
                None => positional.push(token),
            }
        }
        Some(Words {
            verb,
            positional,
            options,
        })
    }

    /// Refuse options other than `allowed`, and repeated ones.
    pub fn allow_options(&self, allowed: &[&str]) -> MmResult<()> {
        for (i, (key, _)) in self.options.iter().enumerate() {
            if !allowed.contains(key) {
                return Err(invalid(format!(
                    "{}: unknown option '{key}' (allowed: {})",
                    self.verb,
                    if allowed.is_empty() {
                        "none".to_string()
                    } else {
                        allowed.join(", ")
                    }
                )));
            }
            if self.options[..i].iter().any(|(k, _)| k == key) {
                return Err(invalid(format!(
                    "{}: option '{key}' given twice",
                    self.verb
                )));
            }
        }
        Ok(())
    }

    /// Value of an option.
    pub fn option(&self, key: &str) -> Option<&'a str> {
        self.options
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
    }

    /// Require between `min` and `max` positional arguments.
    pub fn arity(&self, min: usize, max: usize, usage: &str) -> MmResult<()> {
        let n = self.positional.len();
        if n < min || n > max {
            return Err(invalid(format!("{}: expected {usage}", self.verb)));
        }
        Ok(())
    }
}

/// An EINVAL error.
pub fn invalid(message: impl Into<String>) -> MmError {
    MmError::Invalid(message.into())
}

/// Parse a number (decimal or 0x hex) naming what it is for errors.
pub fn number(text: &str, what: &str) -> MmResult<u64> {
    parse_number(text).ok_or_else(|| {
        invalid(format!(
            "bad {what} '{text}': expected a decimal or 0x hex number"
        ))
    })
}

/// Parse a SIZE with an optional K/M/G/T suffix.
pub fn size(text: &str, what: &str) -> MmResult<u64> {
    parse_size(text).ok_or_else(|| {
        invalid(format!(
            "bad {what} '{text}': expected a size like 4096, 64K, 16M, 1G"
        ))
    })
}

/// Parse `count=N` (1..=MAX_COUNT), defaulting to `default`.
pub fn count(words: &Words, default: u64) -> MmResult<u64> {
    match words.option("count") {
        None => Ok(default),
        Some(text) => {
            let n = number(text, "count")?;
            if n == 0 || n > MAX_COUNT {
                return Err(invalid(format!("count={n} out of range 1..{MAX_COUNT}")));
            }
            Ok(n)
        }
    }
}

/// Cut a name as a task's comm is cut (15 bytes, on a character
/// boundary) and refuse empty names or names with `/`.
pub fn name(text: &str, what: &str) -> MmResult<String> {
    if text.is_empty() {
        return Err(invalid(format!("empty {what}")));
    }
    if text.contains('/') {
        return Err(invalid(format!("{what} '{text}' may not contain '/'")));
    }
    if text.contains('\0') {
        return Err(invalid(format!(
            "{what} '{}' contains a NUL byte",
            text.escape_default()
        )));
    }
    Ok(crate::mm::process::comm_cut(text).to_string())
}

/// Parse one line written to `MOUNT/ctl`. Blank lines and comments are
/// filtered out before (see [`is_blank`]).
pub fn parse_system(line: &str) -> MmResult<Command> {
    let words = Words::split(line).ok_or_else(|| invalid("empty command"))?;
    match words.verb {
        "alloc_pages" => {
            const USAGE: &str =
                "alloc_pages ORDER [movable|reclaimable|atomic] [count=N] [zone=NAME] [tag=T]";
            words.arity(1, 2, USAGE)?;
            words.allow_options(&["count", "zone", "tag"])?;
            let order = number(words.positional[0], "order")?;
            if order > crate::mm::types::MAX_PAGE_ORDER as u64 {
                return Err(invalid(format!(
                    "order {order} out of range 0..10 (MAX_PAGE_ORDER)"
                )));
            }
            Ok(Command::AllocPages {
                order: Order(order as u8),
                count: count(&words, 1)?,
                zone: words.option("zone").map(str::to_string),
                tag: name(words.option("tag").unwrap_or(DEFAULT_TAG), "tag")?,
                gfp: match words.positional.get(1).copied() {
                    None => None,
                    Some("movable") => Some(RawGfp::Movable),
                    Some("reclaimable") => Some(RawGfp::Reclaimable),
                    Some("atomic") => Some(RawGfp::Atomic),
                    Some(other) => {
                        return Err(invalid(format!(
                            "alloc_pages: '{other}' is not movable, reclaimable or atomic ({USAGE})"
                        )));
                    }
                },
            })
        }
        "free_pages" => {
            words.arity(0, 0, "free_pages tag=T [count=N]")?;
            words.allow_options(&["tag", "count"])?;
            let tag = words
                .option("tag")
                .ok_or_else(|| invalid("free_pages: tag=T is required"))?;
            Ok(Command::FreePages {
                tag: name(tag, "tag")?,
                count: words
                    .option("count")
                    .map(|_| count(&words, 1))
                    .transpose()?,
            })
        }
        "sync" => {
            words.arity(0, 0, "sync")?;
            words.allow_options(&[])?;
            Ok(Command::Sync)
        }
        "tick" => {
            words.arity(0, 1, "tick [N]")?;
            words.allow_options(&[])?;
            let ticks = match words.positional.first() {
                Some(text) => number(text, "tick count")?,
                None => 1,
            };
            if ticks == 0 || ticks > MAX_TICKS {
                return Err(invalid(format!("tick {ticks} out of range 1..{MAX_TICKS}")));
            }
            Ok(Command::Tick { ticks })
        }
        "mkswap" => {
            words.arity(2, 3, "mkswap PATH SIZE [rotational] [badpages=N,N,...]")?;
            let rotational = match words.positional.get(2) {
                None => false,
                Some(&"rotational") => true,
                Some(other) => {
                    return Err(invalid(format!(
                        "mkswap: unknown flag '{other}' (expected 'rotational')"
                    )));
                }
            };
            words.allow_options(&["badpages"])?;
            let badpages = match words.option("badpages") {
                None => Vec::new(),
                Some(list) => list
                    .split(',')
                    .map(|n| {
                        let page = number(n, "bad page")?;
                        u32::try_from(page)
                            .map_err(|_| invalid(format!("bad page {page} beyond 2^32")))
                    })
                    .collect::<MmResult<Vec<u32>>>()?,
            };
            if badpages.len() > crate::mm::swapfile::MAX_BADPAGES {
                return Err(invalid(format!(
                    "at most {} bad pages fit in a swap header",
                    crate::mm::swapfile::MAX_BADPAGES
                )));
            }
            Ok(Command::Mkswap {
                path: swap_path(words.positional[0])?,
                bytes: size(words.positional[1], "swap size")?,
                badpages,
                rotational,
            })
        }
        "swapon" => {
            words.arity(1, 1, "swapon PATH [prio=N]")?;
            words.allow_options(&["prio"])?;
            let prio = match words.option("prio") {
                None | Some("-1") => None,
                Some(text) => {
                    let p = number(text, "priority")?;
                    if p > crate::mm::swapfile::MAX_PRIORITY as u64 {
                        return Err(invalid(format!(
                            "priority {p} out of range: use 0..32767, or -1 to let the kernel choose"
                        )));
                    }
                    Some(p as i32)
                }
            };
            Ok(Command::Swapon {
                path: swap_path(words.positional[0])?,
                prio,
            })
        }
        "swapoff" => {
            words.arity(1, 1, "swapoff PATH")?;
            words.allow_options(&[])?;
            Ok(Command::Swapoff {
                path: swap_path(words.positional[0])?,
            })
        }
        "spawn" => {
            words.arity(1, 1, "spawn NAME")?;
            words.allow_options(&[])?;
            Ok(Command::Spawn {
                name: name(words.positional[0], "process name")?,
            })
        }
        "fork" => {
            words.arity(1, 1, "fork PID")?;
            words.allow_options(&[])?;
            let pid = number(words.positional[0], "pid")?;
            let pid = u32::try_from(pid)
                .ok()
                .filter(|&p| p > 0)
                .ok_or_else(|| invalid(format!("fork: pid {pid} out of range")))?;
            Ok(Command::Fork {
                pid: crate::mm::types::Pid(pid),
            })
        }
        "kill" => {
            words.arity(1, 1, "kill PID")?;
            words.allow_options(&[])?;
            let pid = number(words.positional[0], "pid")?;
            let pid = u32::try_from(pid)
                .ok()
                .filter(|&p| p > 0)
                .ok_or_else(|| invalid(format!("kill: pid {pid} out of range")))?;
            Ok(Command::Kill {
                pid: crate::mm::types::Pid(pid),
            })
        }
        "reclaim" => {
            words.arity(1, 1, "reclaim SIZE [swappiness=N|max]")?;
            words.allow_options(&["swappiness"])?;
            let bytes = size(words.positional[0], "reclaim size")?;
            if bytes == 0 {
                return Err(invalid("reclaim 0: nothing to reclaim"));
            }
            // memory.reclaim: swappiness=%d within 0..=200, or max.
            let swappiness = match words.option("swappiness") {
                None => None,
                Some("max") => Some(crate::mm::vmscan::SWAPPINESS_ANON_ONLY),
                Some(text) => Some(
                    number(text, "swappiness")
                        .ok()
                        .filter(|&n| n <= crate::mm::vmscan::MAX_SWAPPINESS)
                        .ok_or_else(|| {
                            invalid(format!("reclaim: swappiness={text} is not 0..200 or max"))
                        })?,
                ),
            };
            Ok(Command::Reclaim { bytes, swappiness })
        }
        "kmem_cache_create" => {
            words.arity(2, 2, "kmem_cache_create NAME SIZE [align=N]")?;
            words.allow_options(&["align"])?;
            let align = match words.option("align") {
                Some(text) => number(text, "align")?,
                None => 8,
            };
            Ok(Command::KmemCacheCreate {
                name: cache_name(words.positional[0])?,
                size: size(words.positional[1], "object size")?,
                align,
            })
        }
        "kmem_cache_destroy" => {
            words.arity(1, 1, "kmem_cache_destroy NAME")?;
            words.allow_options(&[])?;
            Ok(Command::KmemCacheDestroy {
                name: cache_name(words.positional[0])?,
            })
        }
        "kmem_cache_alloc" => {
            words.arity(1, 1, "kmem_cache_alloc NAME [count=N] [tag=T]")?;
            words.allow_options(&["count", "tag"])?;
            Ok(Command::KmemCacheAlloc {
                name: cache_name(words.positional[0])?,
                count: count(&words, 1)?,
                tag: name(words.option("tag").unwrap_or(DEFAULT_TAG), "tag")?,
            })
        }
        "kmalloc" => {
            words.arity(1, 1, "kmalloc SIZE [count=N] [tag=T]")?;
            words.allow_options(&["count", "tag"])?;
            Ok(Command::Kmalloc {
                size: size(words.positional[0], "kmalloc size")?,
                count: count(&words, 1)?,
                tag: name(words.option("tag").unwrap_or(DEFAULT_TAG), "tag")?,
            })
        }
        "kmem_cache_free" | "kfree" => {
            words.arity(0, 0, &format!("{} tag=T [count=N]", words.verb))?;
            words.allow_options(&["tag", "count"])?;
            let tag = words
                .option("tag")
                .ok_or_else(|| invalid(format!("{}: tag=T is required", words.verb)))?;
            let tag = name(tag, "tag")?;
            let count = words
                .option("count")
                .map(|_| count(&words, 1))
                .transpose()?;
            Ok(if words.verb == "kfree" {
                Command::Kfree { tag, count }
            } else {
                Command::KmemCacheFree { tag, count }
            })
        }
        other => Err(invalid(format!(
            "unknown command '{other}' (commands: {})",
            SYSTEM_COMMANDS.join(", ")
        ))),
    }
}

/// The commands `MOUNT/ctl` understands, for error messages.
pub const SYSTEM_COMMANDS: &[&str] = &[
    "alloc_pages",
    "free_pages",
    "tick",
    "sync",
    "mkswap",
    "swapon",
    "swapoff",
    "reclaim",
    "spawn",
    "fork",
    "kill",
    "kmem_cache_create",
    "kmem_cache_destroy",
    "kmem_cache_alloc",
    "kmem_cache_free",
    "kmalloc",
    "kfree",
];

/// A slab cache name: printable ASCII without `/` (slabinfo columns are
/// counted in bytes). Not cut here: the kernel's own caches have longer
/// names (`kernfs_node_cache`), and the kernel finds a cache made from a
/// long name by the name or its 15-byte cut; `kmem_cache_create` cuts.
pub fn cache_name(text: &str) -> MmResult<String> {
    if let Some(bad) = text.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(invalid(format!(
            "cache name '{text}' has {bad:?}: use printable ASCII"
        )));
    }
    if text.contains('/') {
        return Err(invalid(format!("cache name '{text}' may not contain '/'")));
    }
    Ok(text.to_string())
}

/// A swap path: `/dev/NAME` or an absolute host path, at most PATH_MAX.
fn swap_path(text: &str) -> MmResult<String> {
    if !text.starts_with('/') {
        return Err(invalid(format!(
            "swap path '{text}' must be absolute (/dev/NAME or /path/to/file)"
        )));
    }
    if text.len() >= 4096 {
        return Err(invalid("swap path longer than PATH_MAX"));
    }
    Ok(text.to_string())
}

/// True for lines that carry no command: blank or `#` comments.
pub fn is_blank(line: &str) -> bool {
    let t = line.trim();
    t.is_empty() || t.starts_with('#')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_alloc_pages() {
        assert_eq!(
            parse_system("alloc_pages 3 count=10 tag=x").unwrap(),
            Command::AllocPages {
                order: Order(3),
                count: 10,
                zone: None,
                tag: "x".into(),
                gfp: None,
            }
        );
        assert_eq!(
            parse_system("alloc_pages 2 movable").unwrap(),
            Command::AllocPages {
                order: Order(2),
                count: 1,
                zone: None,
                tag: DEFAULT_TAG.into(),
                gfp: Some(RawGfp::Movable),
            }
        );
        assert_eq!(
            parse_system("alloc_pages 2 sideways").unwrap_err().errno(),
            libc::EINVAL
        );
    }

    #[test]
    fn rejects_bad_lines() {
        for line in [
            "bogus",
            "alloc_pages",
            "alloc_pages 11",
            "alloc_pages 3 count=0",
            "alloc_pages 3 colour=red",
            "alloc_pages 3 tag=a tag=b",
            "free_pages",
            "tick 0",
            "tick 1000001",
            "tick x",
        ] {
            let err = parse_system(line).unwrap_err();
            assert_eq!(err.errno(), libc::EINVAL, "{line}");
        }
    }

    #[test]
    fn names_are_cut_to_15_bytes() {
        assert_eq!(
            name("abcdefghijklmnopqrstuvwxyz", "tag").unwrap(),
            "abcdefghijklmno"
        );
    }

    #[test]
    fn blank_and_comment_lines() {
        assert!(is_blank("   "));
        assert!(is_blank("# a plan"));
        assert!(!is_blank("tick"));
    }
}
