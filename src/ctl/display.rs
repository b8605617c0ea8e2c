//! The control language printed back: `Display` for [`Command`] and
//! [`ProcessCommand`] (and the values inside them) writes one line that
//! [`parse_system`](super::parse_system) / [`parse_process`] parse back to
//! the same value. Defaults are left out (`count=1`, `tag=default`,
//! `prot=rw`, `align=8`, `write`), sizes use the largest exact K/M/G/T
//! suffix, addresses are hex.
//!
//! Every value the parsers produce prints back to itself. Values they
//! cannot produce have no line to print as; they print the closest line,
//! which the parser refuses (a `Prot` with write but not read prints `w`,
//! a name longer than 15 bytes prints whole and parses back cut).

use std::fmt;

use super::process::{AddrSpec, Advice, BrkArg, ProcessCommand, Prot};
use super::{Command, DEFAULT_TAG};

/// A byte count with the largest suffix that divides it exactly.
struct Size(u64);

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (shift, suffix) in [(40, 'T'), (30, 'G'), (20, 'M'), (10, 'K')] {
            if self.0 != 0 && self.0.trailing_zeros() >= shift {
                return write!(f, "{}{suffix}", self.0 >> shift);
            }
        }
        write!(f, "{}", self.0)
    }
}

/// ` count=N` unless it is the default of 1.
struct CountOpt(u64);

impl fmt::Display for CountOpt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 != 1 {
            write!(f, " count={}", self.0)?;
        }
        Ok(())
    }
}

/// ` count=N` when given.
struct MaybeCount(Option<u64>);

impl fmt::Display for MaybeCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(n) => write!(f, " count={n}"),
            None => Ok(()),
        }
    }
}

/// ` tag=T` unless it is the default tag.
struct TagOpt<'a>(&'a str);

impl fmt::Display for TagOpt<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 != DEFAULT_TAG {
            write!(f, " tag={}", self.0)?;
        }
        Ok(())
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::AllocPages {
                order,
                count,
                zone,
                tag,
                gfp,
            } => {
                write!(f, "alloc_pages {}", order.0)?;
                if let Some(gfp) = gfp {
                    write!(f, " {}", gfp.word())?;
                }
                write!(f, "{}", CountOpt(*count))?;
                if let Some(zone) = zone {
                    write!(f, " zone={zone}")?;
                }
                write!(f, "{}", TagOpt(tag))
            }
            Command::FreePages { tag, count } => {
                write!(f, "free_pages tag={tag}{}", MaybeCount(*count))
            }
            Command::Tick { ticks } => write!(f, "tick {ticks}"),
            Command::Mkswap {
                path,
                bytes,
                badpages,
                rotational,
            } => {
                write!(f, "mkswap {path} {}", Size(*bytes))?;
                if *rotational {
                    write!(f, " rotational")?;
                }
                for (i, page) in badpages.iter().enumerate() {
                    write!(f, "{}{page}", if i == 0 { " badpages=" } else { "," })?;
                }
                Ok(())
            }
            Command::Swapon { path, prio } => {
                write!(f, "swapon {path}")?;
                if let Some(prio) = prio {
                    write!(f, " prio={prio}")?;
                }
                Ok(())
            }
            Command::Swapoff { path } => write!(f, "swapoff {path}"),
            Command::Reclaim { bytes, swappiness } => {
                write!(f, "reclaim {}", Size(*bytes))?;
                match swappiness {
                    None => Ok(()),
                    Some(crate::mm::vmscan::SWAPPINESS_ANON_ONLY) => write!(f, " swappiness=max"),
                    Some(n) => write!(f, " swappiness={n}"),
                }
            }
            Command::Sync => write!(f, "sync"),
            Command::Spawn { name } => write!(f, "spawn {name}"),
            Command::Kill { pid } => write!(f, "kill {pid}"),
            Command::Fork { pid } => write!(f, "fork {pid}"),
            Command::KmemCacheCreate { name, size, align } => {
                write!(f, "kmem_cache_create {name} {}", Size(*size))?;
                if *align != 8 {
                    write!(f, " align={align}")?;
                }
                Ok(())
            }
            Command::KmemCacheDestroy { name } => write!(f, "kmem_cache_destroy {name}"),
            Command::KmemCacheAlloc { name, count, tag } => write!(
                f,
                "kmem_cache_alloc {name}{}{}",
                CountOpt(*count),
                TagOpt(tag)
            ),
            Command::KmemCacheFree { tag, count } => {
                write!(f, "kmem_cache_free tag={tag}{}", MaybeCount(*count))
            }
            Command::Kmalloc { size, count, tag } => write!(
                f,
                "kmalloc {}{}{}",
                Size(*size),
                CountOpt(*count),
                TagOpt(tag)
            ),
            Command::Kfree { tag, count } => {
                write!(f, "kfree tag={tag}{}", MaybeCount(*count))
            }
        }
    }
}

/// `+N` / `-N` after a symbolic address; nothing for 0.
struct Offset(i64);

impl fmt::Display for Offset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 => Ok(()),
            n if n > 0 => write!(f, "+{}", Size(n as u64)),
            n => write!(f, "-{}", Size(n.unsigned_abs())),
        }
    }
}

impl fmt::Display for AddrSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddrSpec::Absolute(addr) => write!(f, "{addr:#x}"),
            AddrSpec::Mapping { name, offset } => write!(f, "{name}{}", Offset(*offset)),
            AddrSpec::Heap(offset) => write!(f, "heap{}", Offset(*offset)),
            AddrSpec::Stack(offset) => write!(f, "stack{}", Offset(*offset)),
        }
    }
}

impl fmt::Display for Prot {
    /// `r`, `rw`, `rx`, `rwx` or `none` (what `parse_prot` accepts).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !(self.read || self.write || self.exec) {
            return f.write_str("none");
        }
        for (on, c) in [(self.read, "r"), (self.write, "w"), (self.exec, "x")] {
            if on {
                f.write_str(c)?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for Advice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Advice::DontNeed => "dontneed",
            Advice::PageOut => "pageout",
            Advice::Cold => "cold",
        })
    }
}

impl fmt::Display for BrkArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BrkArg::To(addr) => write!(f, "{addr}"),
            BrkArg::Grow(bytes) => write!(f, "+{}", Size(*bytes)),
            BrkArg::Shrink(bytes) => write!(f, "-{}", Size(*bytes)),
        }
    }
}

impl fmt::Display for ProcessCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProcessCommand::Mmap {
                bytes,
                name,
                addr,
                prot,
                file,
                shared_anon,
            } => {
                write!(f, "mmap {}", Size(*bytes))?;
                if *shared_anon {
                    f.write_str(" shared")?;
                }
                if let Some(name) = name {
                    write!(f, " name={name}")?;
                }
                if let Some(addr) = addr {
                    write!(f, " addr={addr}")?;
                }
                if *prot != Prot::RW {
                    write!(f, " prot={prot}")?;
                }
                if let Some(file) = file {
                    write!(f, " file={}", file.path)?;
                    if file.offset != 0 {
                        write!(f, " offset={}", Size(file.offset))?;
                    }
                    if file.shared {
                        f.write_str(" shared")?;
                    }
                }
                Ok(())
            }
            ProcessCommand::Munmap { addr, bytes } => {
                write!(f, "munmap {addr} {}", Size(*bytes))
            }
            ProcessCommand::Mprotect { addr, bytes, prot } => {
                write!(f, "mprotect {addr} {} {prot}", Size(*bytes))
            }
            ProcessCommand::Brk(arg) => write!(f, "brk {arg}"),
            ProcessCommand::Touch { addr, bytes, write } => {
                write!(f, "touch {addr} {}", Size(*bytes))?;
                if !write {
                    f.write_str(" read")?;
                }
                Ok(())
            }
            ProcessCommand::Madvise {
                addr,
                bytes,
                advice,
            } => write!(f, "madvise {addr} {} {advice}", Size(*bytes)),
            ProcessCommand::Read { path, off, bytes } => {
                write!(f, "read {path} {} {}", Size(*off), Size(*bytes))
            }
            ProcessCommand::Write {
                path,
                off,
                bytes,
                byte,
            } => {
                write!(f, "write {path} {} {}", Size(*off), Size(*bytes))?;
                if *byte != super::process::DEFAULT_WRITE_BYTE {
                    write!(f, " byte={byte}")?;
                }
                Ok(())
            }
            ProcessCommand::Fsync { path } => write!(f, "fsync {path}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{MAX_COUNT, MAX_TICKS, parse_process, parse_system};
    use super::*;
    use crate::mm::types::{Order, Pid};

    /// A small deterministic generator (SplitMix64).
    struct Gen(u64);

    impl Gen {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[self.below(items.len() as u64) as usize]
        }
        /// Sizes: small, page multiples, suffix multiples, odd, huge.
        fn size(&mut self) -> u64 {
            match self.below(6) {
                0 => self.below(10_000) + 1,
                1 => (self.below(1 << 20) + 1) << 12,
                2 => (self.below(64) + 1) << (10 * (self.below(4) + 1)),
                3 => u64::MAX - self.below(3),
                4 => (self.next() >> self.below(64)).max(1),
                _ => 1 << self.below(64),
            }
        }
        fn count(&mut self) -> u64 {
            match self.below(4) {
                0 => 1,
                1 => MAX_COUNT,
                _ => self.below(MAX_COUNT) + 1,
            }
        }
        fn maybe_count(&mut self) -> Option<u64> {
            if self.below(2) == 0 {
                None
            } else {
                Some(self.count())
            }
        }
        /// Names as the parser leaves them (at most 15 bytes, no `/`).
        fn tag(&mut self) -> String {
            self.pick(&[
                "default",
                "t0",
                "x",
                "a=b",
                "tâche-ünï",
                "abcdefghijklmno",
                "0x10",
                "#",
            ])
            .to_string()
        }
        fn name(&mut self) -> String {
            self.pick(&["bash", "a", "abcdefghijklmno", "名前", "0", "heap", "x.y"])
                .to_string()
        }
        fn cache(&mut self) -> String {
            self.pick(&["fz_a", "kmalloc-64", "kernfs_node_cache", "a:b", "X"])
                .to_string()
        }
        fn path(&mut self) -> String {
            self.pick(&["/dev/sdb", "/dev/zram0", "/tmp/swap file0", "/x/y/swap"])
                .replace(' ', "_")
        }
        fn offset(&mut self) -> i64 {
            match self.below(4) {
                0 => 0,
                1 => (self.below(1 << 20) as i64) << 12,
                2 => -((self.below(1 << 20) as i64) << 12),
                _ => (self.next() >> 1) as i64 * if self.below(2) == 0 { 1 } else { -1 },
            }
        }
        fn addr(&mut self) -> AddrSpec {
            match self.below(4) {
                0 => AddrSpec::Absolute(self.next() >> self.below(64)),
                1 => AddrSpec::Heap(self.offset()),
                2 => AddrSpec::Stack(self.offset()),
                _ => AddrSpec::Mapping {
                    name: self
                        .pick(&["buf", "m0", "arena", "x.y_z", "abcdefghijklmno"])
                        .to_string(),
                    offset: self.offset(),
                },
            }
        }
        fn prot(&mut self) -> Prot {
            super::super::process::parse_prot(self.pick(&["r", "rw", "rx", "rwx", "none"])).unwrap()
        }
    }

    /// One system command of variant `v` (0..17).
    fn system(g: &mut Gen, v: u64) -> Command {
        match v {
            0 => Command::AllocPages {
                order: Order(g.below(11) as u8),
                count: g.count(),
                zone: match g.below(3) {
                    0 => None,
                    1 => Some(String::new()),
                    _ => Some(g.pick(&["DMA", "DMA32", "Normal", "nosuch"]).into()),
                },
                tag: g.tag(),
                gfp: match g.below(4) {
                    0 => Some(super::super::RawGfp::Movable),
                    1 => Some(super::super::RawGfp::Reclaimable),
                    2 => Some(super::super::RawGfp::Atomic),
                    _ => None,
                },
            },
            1 => Command::FreePages {
                tag: g.tag(),
                count: g.maybe_count(),
            },
            2 => Command::Tick {
                ticks: g.below(MAX_TICKS) + 1,
            },
            3 => Command::Mkswap {
                path: g.path(),
                bytes: g.size(),
                badpages: (0..g.below(4)).map(|_| g.next() as u32).collect(),
                rotational: g.below(4) == 0,
            },
            4 => Command::Swapon {
                path: g.path(),
                prio: match g.below(3) {
                    0 => None,
                    _ => Some(g.below(32768) as i32),
                },
            },
            5 => Command::Swapoff { path: g.path() },
            6 => Command::Reclaim {
                bytes: g.size(),
                swappiness: match g.below(4) {
                    0 => Some(g.below(202)),
                    _ => None,
                },
            },
            7 => Command::Spawn { name: g.name() },
            8 => Command::Kill {
                pid: Pid((g.next() as u32).max(1)),
            },
            9 => Command::KmemCacheCreate {
                name: g.cache(),
                size: g.size(),
                align: 1 << g.below(13),
            },
            10 => Command::KmemCacheDestroy { name: g.cache() },
            11 => Command::KmemCacheAlloc {
                name: g.cache(),
                count: g.count(),
                tag: g.tag(),
            },
            12 => Command::KmemCacheFree {
                tag: g.tag(),
                count: g.maybe_count(),
            },
            13 => Command::Kmalloc {
                size: g.size(),
                count: g.count(),
                tag: g.tag(),
            },
            14 => Command::Kfree {
                tag: g.tag(),
                count: g.maybe_count(),
            },
            15 => Command::Sync,
            _ => Command::Fork {
                pid: Pid((g.next() as u32).max(1)),
            },
        }
    }

    /// One process command of variant `v` (0..9).
    fn process(g: &mut Gen, v: u64) -> ProcessCommand {
        match v {
            0 => {
                let file = (g.below(2) == 0).then(|| crate::ctl::process::MmapFile {
                    path: g.pick(&["/data.db", "/d/x"]).to_string(),
                    offset: g.below(3) << 12,
                    shared: g.below(2) == 0,
                });
                ProcessCommand::Mmap {
                    bytes: g.size(),
                    name: (g.below(2) == 0).then(|| g.pick(&["buf", "m0", "a.b"]).to_string()),
                    addr: (g.below(2) == 0).then(|| g.addr()),
                    prot: g.prot(),
                    shared_anon: file.is_none() && g.below(2) == 0,
                    file,
                }
            }
            1 => ProcessCommand::Munmap {
                addr: g.addr(),
                bytes: g.size(),
            },
            2 => ProcessCommand::Mprotect {
                addr: g.addr(),
                bytes: g.size(),
                prot: g.prot(),
            },
            3 => ProcessCommand::Brk(match g.below(3) {
                0 => BrkArg::To(g.addr()),
                1 => BrkArg::Grow(g.size() * g.below(2)),
                _ => BrkArg::Shrink(g.size() * g.below(2)),
            }),
            4 => ProcessCommand::Touch {
                addr: g.addr(),
                bytes: g.size(),
                write: g.below(2) == 0,
            },
            5 => ProcessCommand::Madvise {
                addr: g.addr(),
                bytes: g.size(),
                advice: [Advice::DontNeed, Advice::PageOut, Advice::Cold][g.below(3) as usize],
            },
            6 => ProcessCommand::Read {
                path: g.pick(&["/a", "/data/x", "/d/e/f"]).to_string(),
                off: g.size(),
                bytes: g.size(),
            },
            7 => ProcessCommand::Write {
                path: g.pick(&["/a", "/data/x", "/d/e/f"]).to_string(),
                off: g.size(),
                bytes: g.size(),
                byte: g.below(256) as u8,
            },
            _ => ProcessCommand::Fsync {
                path: g.pick(&["/a", "/data/x"]).to_string(),
            },
        }
    }

    /// The variant's index, by an exhaustive match: a new variant fails to
    /// compile here until the generators above make it.
    fn system_variant(c: &Command) -> u64 {
        match c {
            Command::AllocPages { .. } => 0,
            Command::FreePages { .. } => 1,
            Command::Tick { .. } => 2,
            Command::Mkswap { .. } => 3,
            Command::Swapon { .. } => 4,
            Command::Swapoff { .. } => 5,
            Command::Reclaim { .. } => 6,
            Command::Spawn { .. } => 7,
            Command::Kill { .. } => 8,
            Command::KmemCacheCreate { .. } => 9,
            Command::KmemCacheDestroy { .. } => 10,
            Command::KmemCacheAlloc { .. } => 11,
            Command::KmemCacheFree { .. } => 12,
            Command::Kmalloc { .. } => 13,
            Command::Kfree { .. } => 14,
            Command::Sync => 15,
            Command::Fork { .. } => 16,
        }
    }

    fn process_variant(c: &ProcessCommand) -> u64 {
        match c {
            ProcessCommand::Mmap { .. } => 0,
            ProcessCommand::Munmap { .. } => 1,
            ProcessCommand::Mprotect { .. } => 2,
            ProcessCommand::Brk(_) => 3,
            ProcessCommand::Touch { .. } => 4,
            ProcessCommand::Madvise { .. } => 5,
            ProcessCommand::Read { .. } => 6,
            ProcessCommand::Write { .. } => 7,
            ProcessCommand::Fsync { .. } => 8,
        }
    }

    #[test]
    fn system_commands_round_trip() {
        let mut g = Gen(1);
        for i in 0..17_000 {
            let v = i % 17;
            let cmd = system(&mut g, v);
            assert_eq!(system_variant(&cmd), v);
            let line = cmd.to_string();
            assert_eq!(
                parse_system(&line).unwrap_or_else(|e| panic!("{line:?}: {e}")),
                cmd,
                "{line:?}"
            );
        }
    }

    #[test]
    fn process_commands_round_trip() {
        let mut g = Gen(2);
        for i in 0..9_000 {
            let v = i % 9;
            let cmd = process(&mut g, v);
            assert_eq!(process_variant(&cmd), v);
            let line = cmd.to_string();
            assert_eq!(
                parse_process(&line).unwrap_or_else(|e| panic!("{line:?}: {e}")),
                cmd,
                "{line:?}"
            );
        }
    }

    #[test]
    fn printed_lines_are_short_and_plain() {
        assert_eq!(
            parse_system("alloc_pages 3 count=1 tag=default")
                .unwrap()
                .to_string(),
            "alloc_pages 3"
        );
        assert_eq!(
            parse_process("mmap 65536 name=buf prot=r addr=65536")
                .unwrap()
                .to_string(),
            "mmap 64K name=buf addr=0x10000 prot=r"
        );
        assert_eq!(
            parse_process("touch stack-8192 4097 read")
                .unwrap()
                .to_string(),
            "touch stack-8K 4097 read"
        );
        assert_eq!(
            parse_system("mkswap /dev/sdb 1048576 badpages=1,0x10")
                .unwrap()
                .to_string(),
            "mkswap /dev/sdb 1M badpages=1,16"
        );
    }
}
