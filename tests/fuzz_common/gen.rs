//! Generation: the seeded stream of [`Op`]s.
//!
//! Well-formed control lines are built as typed values ([`Command`],
//! [`ProcessCommand`]) and printed with their `Display`, which the parsers
//! read back to the same value; so every such line is one the grammar
//! accepts, and its arguments (sizes, addresses, counts, names) are chosen
//! as numbers and names rather than as text. The malformed part of the
//! traffic stays text: garbage lines, and well-formed lines with one word
//! replaced by a bad token, dropped, duplicated or added ([`Generator::mutate`]).
//!
//! The generator reads the kernel (live pids, each process's `maps`) to aim
//! at existing processes and mappings, but never changes it.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;

use mmfs::ctl::Machine;
use mmfs::ctl::process::{MmapFile, parse_prot};
use mmfs::ctl::{self, AddrSpec, Advice, BrkArg, Command, MAX_COUNT, ProcessCommand, Prot, Scope};
use mmfs::mm::MachineConfig;
use mmfs::mm::sysctl::writable_sysctls;
use mmfs::mm::types::{Arch, Order, Pid};
use mmfs::procfs::GLOBAL_FILES;
use mmfs::procfs::pid::{PID_FILES, render_pid};

use super::rng::Rng;
use super::{FuzzConfig, Op};

const TAGS: &[&str] = &["t0", "t1", "t2", "t3", "slab", "pages", "default"];
const CACHES: &[&str] = &[
    "fz_a",
    "fz_b",
    "fz_c",
    "kmalloc-64",
    "kmalloc-8k",
    "task_struct",
    "vm_area_struct",
    "mm_struct",
    "kmem_cache",
    "dentry",
    "nosuchcache",
];
const MAPPING_NAMES: &[&str] = &["m0", "m1", "m2", "buf", "arena"];
const PROC_NAMES: &[&str] = &["bash", "worker", "db", "cc1", "a", "init"];
const ZONES: &[&str] = &[
    "DMA", "DMA32", "Normal", "HighMem", "Movable", "dma32", "normal", "Device", "",
];

/// Names the parser accepts as they are (at most 15 bytes, no `/`) but
/// that are odd: non-ASCII, punctuation, words with a meaning elsewhere.
const ODD_NAMES: &[&str] = &[
    "tâche-ünï",
    "名前",
    "\u{200b}zero\u{feff}w",
    "xxxxxxxxxxxxxxx",
    "-",
    "+",
    "#",
    "0x10",
    "heap",
    "stack",
    "[heap]",
    "nul\0byte",
];

/// Tokens that make an argument malformed, by what the argument is.
const BAD_SIZES: &[&str] = &[
    "",
    "K",
    "-4K",
    "1.5M",
    "4k4",
    "1KB",
    "0x",
    "+4096",
    "1e6",
    "٤٠٩٦",
    "4K\0",
    "4096\r",
    "0b101",
    "0o7",
    "0x1000K",
    "18446744073709551616",
    "99999999999999999999999",
    "8E",
    "16777216T",
    "0",
];
const BAD_NUMBERS: &[&str] = &[
    "",
    "x",
    "0x",
    "1.0",
    "+1",
    "1K",
    "١",
    "-1",
    "0",
    "4294967296",
    "18446744073709551616",
];
const BAD_PROTS: &[&str] = &[
    "w", "x", "wr", "RW", "rwxx", "", "---", "r-x", "rw-p", "NONE", "xwr", "wx",
];
const BAD_NAMES: &[&str] = &[
    "a/b",
    "",
    "heap",
    "stack",
    "9lives",
    "a[b]",
    "x=y",
    "t0_long_name_beyond_comm_len",
];
const BAD_ADDRS: &[&str] = &[
    "",
    "+4096",
    "heap+",
    "heap+-1",
    "stack+0xffffffffffffffff",
    "[heap]",
    "heap+4K+4K",
    "0x",
    "-1",
    "12abc",
];
const BAD_PATHS: &[&str] = &["swapfile", "dev/sda", "./swap", "~/swap", ""];
/// Words appended to a well-formed line.
const EXTRA_WORDS: &[&str] = &[
    "flags=fixed",
    "a",
    "count=0",
    "count=16777217",
    "tag=",
    "tag=a/b",
    "name=x",
    "exec",
    "read write",
    "pageout cold",
    "prio=40000",
    "=x",
    "zone=",
];

/// What the generator knows of one process's address space.
type Vmas = Vec<(u64, u64)>;

/// Most objects or blocks a tag may have been asked for before the
/// generator empties it.
const HELD_MAX: u64 = 50_000;

/// Most tagged blocks and objects the machine may hold before the
/// generator gives them all back.
const TAGGED_MAX: usize = 100_000;

/// Blocks and objects held by every tag of `k`.
fn tagged_items(k: &Machine) -> usize {
    let t = &k.tags;
    t.pages.iter().map(|(_, v)| v.len()).sum::<usize>()
        + t.objects.iter().map(|(_, v)| v.len()).sum::<usize>()
        + t.kmalloc.iter().map(|(_, v)| v.len()).sum::<usize>()
}

/// The seeded generator of operations.
pub struct Generator {
    rng: Rng,
    swap_dir: PathBuf,
    validation_sample: u64,
    file_check_sample: u64,
    /// Mappings of each process as its `maps` last listed them.
    spaces: BTreeMap<u32, Vmas>,
    /// Operations queued to run next (clean-ups).
    pending: VecDeque<Op>,
    /// Objects or blocks asked for per tag since its last clean-up (an
    /// upper bound: some allocations fail).
    held: BTreeMap<String, u64>,
    /// Ops until the next give-back triggered by the tagged-item count.
    purge_cooldown: u64,
}

impl Generator {
    /// The generator of `cfg`'s run (a function of `cfg.seed`).
    pub fn new(cfg: &FuzzConfig) -> Generator {
        Generator {
            rng: Rng::new(cfg.seed),
            swap_dir: cfg.swap_dir.clone(),
            validation_sample: cfg.validation_sample,
            file_check_sample: cfg.file_check_sample,
            spaces: BTreeMap::new(),
            pending: VecDeque::new(),
            held: BTreeMap::new(),
            purge_cooldown: 0,
        }
    }

    /// The next machine to boot and how many operations to run on it;
    /// forgets what it knew of the last machine.
    pub fn next_boot(&mut self) -> (MachineConfig, u64) {
        self.spaces.clear();
        self.pending.clear();
        let arch = if self.rng.chance(1, 4) {
            Arch::I386
        } else {
            Arch::X86_64
        };
        let mem_bytes = match self.rng.below(3) {
            0 => *self
                .rng
                .pick(&[64u64 << 20, 96 << 20, 128 << 20, 192 << 20, 256 << 20]),
            _ => self.rng.range((64 << 20) >> 12, (256 << 20) >> 12) << 12,
        };
        let ops = self.rng.range(300, 20_000);
        (MachineConfig { arch, mem_bytes }, ops)
    }

    /// The next operation against `k` (None: no machine booted).
    pub fn next_op(&mut self, k: Option<&Machine>) -> Op {
        if let Some(op) = self.pending.pop_front() {
            return op;
        }
        // Now and then, and whenever the machine holds more than
        // TAGGED_MAX tagged items (mutated lines can tag any name), give
        // back everything tagged: every invariant check walks them all.
        let periodic = self.rng.chance(1, 300);
        self.purge_cooldown = self.purge_cooldown.saturating_sub(1);
        if let Some(k) = k
            && (periodic || (self.purge_cooldown == 0 && tagged_items(k) > TAGGED_MAX))
        {
            if !periodic {
                // If something cannot be given back, do not retry every op.
                self.purge_cooldown = 1000;
            }
            let mut tags: std::collections::BTreeSet<String> =
                TAGS.iter().map(|t| t.to_string()).collect();
            tags.extend(k.tags.pages.iter().map(|(t, _)| t.to_string()));
            tags.extend(k.tags.objects.iter().map(|(t, _)| t.to_string()));
            tags.extend(k.tags.kmalloc.iter().map(|(t, _)| t.to_string()));
            for tag in tags {
                self.free_all(&tag);
            }
            if let Some(op) = self.pending.pop_front() {
                return op;
            }
        }
        let pids = k.map(|k| k.pids()).unwrap_or_default();
        let have_pids = !pids.is_empty();
        let w = [
            38,                             // system ctl
            if have_pids { 34 } else { 6 }, // process ctl
            3,                              // raw writes
            3,                              // sysctl
            5,                              // read a global file
            if have_pids { 5 } else { 1 },  // read a pid file
            1,                              // read all + cross check (sampled below)
            if have_pids { 4 } else { 1 },  // read mem
            if have_pids { 5 } else { 1 },  // write mem
            if have_pids { 2 } else { 1 },  // oom_score_adj / comm
        ];
        match self.rng.weighted(&w) {
            0 => {
                let line = self.system_line(k, &pids);
                self.ctl_op(Scope::System, line)
            }
            1 => {
                let pid = self.pid(k, &pids);
                let line = self.process_line(k, pid);
                self.ctl_op(Scope::Process(pid), line)
            }
            2 => self.raw_writes(k, &pids),
            3 => self.sysctl_write(),
            4 => Op::ReadGlobal(self.rng.pick(GLOBAL_FILES).2),
            5 => {
                let pid = self.pid(k, &pids);
                Op::ReadPid(pid, self.rng.below(PID_FILES.len() as u64) as usize)
            }
            6 if self.file_check_sample > 0 && self.rng.chance(1, self.file_check_sample) => {
                Op::ReadAll
            }
            6 => Op::ReadGlobal(self.rng.pick(GLOBAL_FILES).2),
            7 => {
                let pid = self.pid(k, &pids);
                let addr = self.mem_addr(k, pid);
                let len = match self.rng.below(10) {
                    0 => 0,
                    1 => self.rng.range(4096, 1 << 20) as usize,
                    _ => self.rng.small(8192) as usize,
                };
                Op::ReadMem(pid, addr, len)
            }
            9 => {
                let pid = self.pid(k, &pids);
                if self.rng.chance(1, 2) {
                    let text = self.pick(&[
                        "0\n",
                        "1000\n",
                        "-1000\n",
                        "500",
                        "-17\n",
                        "1001\n",
                        "-1001\n",
                        "x\n",
                        "",
                        " 5 \n",
                        "99999999999999999999\n",
                        "+3\n",
                    ]);
                    Op::PidWrite(pid, "oom_score_adj", text)
                } else {
                    let text = if self.rng.chance(9, 10) {
                        self.proc_name()
                    } else {
                        self.pick(BAD_NAMES)
                    };
                    Op::PidWrite(pid, "comm", text + "\n")
                }
            }
            _ => {
                let pid = self.pid(k, &pids);
                let addr = self.mem_addr(k, pid);
                let len = match self.rng.below(10) {
                    0 => 0,
                    1 => self.rng.range(4096, 64 << 10) as usize,
                    _ => self.rng.small(8192) as usize,
                };
                let fill = self.rng.next_u64() as u8;
                let data = (0..len).map(|i| fill.wrapping_add(i as u8)).collect();
                Op::WriteMem(pid, addr, data, self.rng.chance(1, 4))
            }
        }
    }

    fn pick(&mut self, items: &[&str]) -> String {
        self.rng.pick(items).to_string()
    }

    /// Queue the frees of everything held under `tag`.
    fn free_all(&mut self, tag: &str) {
        for cmd in [
            Command::Kfree {
                tag: tag.into(),
                count: None,
            },
            Command::KmemCacheFree {
                tag: tag.into(),
                count: None,
            },
            Command::FreePages {
                tag: tag.into(),
                count: None,
            },
        ] {
            self.pending
                .push_back(Op::Ctl(Scope::System, cmd.to_string()));
        }
    }

    /// A control-line operation, sampled for the no-change check.
    fn ctl_op(&mut self, scope: Scope, line: String) -> Op {
        if self.validation_sample > 0 && self.rng.chance(1, self.validation_sample) {
            Op::CtlChecked(scope, line)
        } else {
            Op::Ctl(scope, line)
        }
    }

    /// An existing pid mostly, else one that does not exist.
    fn pid(&mut self, k: Option<&Machine>, pids: &[Pid]) -> Pid {
        if !pids.is_empty() && self.rng.chance(9, 10) {
            *self.rng.pick(pids)
        } else {
            let last = k.map(|k| k.ns_last_pid).unwrap_or(1);
            Pid(*self
                .rng
                .pick(&[0, 1, 2, last, last.wrapping_add(1), 32768, 99999, u32::MAX]))
        }
    }

    // -----------------------------------------------------------------
    // Typed values
    // -----------------------------------------------------------------

    fn name_from(&mut self, pool: &[&str]) -> String {
        if self.rng.chance(9, 10) {
            self.pick(pool)
        } else {
            self.pick(ODD_NAMES)
        }
    }

    fn tag(&mut self) -> String {
        self.name_from(TAGS)
    }

    fn proc_name(&mut self) -> String {
        self.name_from(PROC_NAMES)
    }

    /// A cache name (printable ASCII: the odd names are not all).
    fn cache_name(&mut self) -> String {
        if self.rng.chance(9, 10) {
            self.pick(CACHES)
        } else {
            self.pick(&["xxxxxxxxxxxxxxx", "-", "+", "#", "0x10", "[heap]"])
        }
    }

    /// A mapping name `mapping_name` accepts.
    fn mapping_name(&mut self) -> String {
        if self.rng.chance(9, 10) {
            self.pick(MAPPING_NAMES)
        } else {
            self.pick(&["xxxxxxxxxxxxxxx", "#", "x0x10", "a.b", "_"])
        }
    }

    /// A byte count: mostly page multiples, with boundaries and huge values.
    fn size(&mut self, scale_pages: u64) -> u64 {
        match self.rng.weighted(&[48, 12, 8, 6, 8, 6, 6]) {
            0 => self.rng.small(scale_pages) * 4096,
            1 => self.rng.small(64) << *self.rng.pick(&[10, 20]),
            2 => *self.rng.pick(&[
                1,
                4095,
                4096,
                4097,
                40 << 10,
                39 << 10,
                8191,
                2 << 30,
                1 << 40,
            ]),
            3 => *self.rng.pick(&[
                u64::MAX,
                0xffff_ffff_ffff_f000,
                16_777_215 << 40,
                17_179_869_183 << 30,
                i64::MAX as u64,
                16 << 40,
                15 << 40,
            ]),
            4 => self.rng.range(1, 1 << 20),
            5 => self.rng.range(1, 4096) << 10,
            _ => (self.rng.next_u64() >> self.rng.below(64)).max(1),
        }
    }

    /// A range length for munmap/mprotect/touch/madvise: mostly small.
    fn range_size(&mut self) -> u64 {
        match self.rng.below(20) {
            0 => self.size(1 << 16),
            1 => *self.rng.pick(&[1 << 20, 16 << 20, 64 << 20, 128 << 20]),
            _ => self.rng.small(512) * 4096,
        }
    }

    /// `count=N` of an allocation (1: absent); rarely huge, held under
    /// `tag=huge` and given back right after (state with millions of
    /// objects makes every invariant check slow).
    fn alloc_count(&mut self, typical: u64, tag: &mut String) -> u64 {
        let count = match self.rng.below(100) {
            0..=49 => 1,
            50..=94 => self.rng.small(typical),
            95..=97 => self.rng.small(typical * 64),
            _ => {
                self.free_all("huge");
                *tag = "huge".into();
                return self.rng.small(MAX_COUNT);
            }
        };
        // A tag that may hold more than HELD_MAX objects is emptied after
        // this allocation: invariant checks walk every tagged object.
        let held = self.held.entry(tag.clone()).or_default();
        *held += count;
        if *held > HELD_MAX {
            *held = 0;
            let tag = tag.clone();
            self.free_all(&tag);
        }
        count
    }

    /// `count=N` of a free (None: all).
    fn free_count(&mut self, typical: u64) -> Option<u64> {
        match self.rng.below(100) {
            0..=49 => None,
            50..=94 => Some(self.rng.small(typical)),
            _ => Some(self.rng.small(MAX_COUNT)),
        }
    }

    /// A swap path: simulated partitions, files in the scratch directory
    /// (and the directory itself), odd device names. Always absolute.
    fn swap_path(&mut self) -> String {
        match self.rng.weighted(&[50, 25, 5, 5, 5, 5]) {
            0 => format!(
                "/dev/{}",
                self.rng
                    .pick(&["sda2", "sdb", "vdb1", "zram0", "nvme0n1p3"])
            ),
            1 => {
                // One file under several spellings: one area (EBUSY).
                let n = self.rng.below(3);
                let spelling = self.pick(&["/", "/", "/", "//", "/./", "/mnt/../"]);
                format!("{}{spelling}swap{n}", self.swap_dir.display())
            }
            2 => self.pick(&[
                "/dev/",
                "/dev//x",
                "/dev/a/b",
                "/dev/.",
                "/dev/\u{e9}t\u{e9}",
            ]),
            3 => format!("/dev/{}", "d".repeat(self.rng.range(20, 40) as usize)),
            // A directory, a non-swap file, and a path inside the
            // machine's "own mount" (EINVAL before anything is touched).
            4 => {
                let dir = self.swap_dir.display().to_string();
                match self.rng.below(3) {
                    0 => dir,
                    1 => format!("{dir}/notswap"),
                    _ => format!("{dir}/mnt/swap0"),
                }
            }
            _ => format!("/dev/{}", self.rng.range(0, 40)),
        }
    }

    /// A well-formed `MOUNT/ctl` command.
    fn system_command(&mut self, k: Option<&Machine>, pids: &[Pid]) -> Command {
        let verb = self.rng.weighted(&[
            8,  // spawn
            4,  // kill
            3,  // mkswap
            4,  // swapon
            3,  // swapoff
            3,  // reclaim
            10, // alloc_pages
            7,  // free_pages
            3,  // kmem_cache_create
            2,  // kmem_cache_destroy
            5,  // kmem_cache_alloc
            4,  // kmem_cache_free
            6,  // kmalloc
            5,  // kfree
            5,  // tick
            2,  // sync
            5,  // fork
        ]);
        match verb {
            0 => Command::Spawn {
                name: self.proc_name(),
            },
            1 => Command::Kill {
                pid: Pid(self.pid(k, pids).0.max(1)),
            },
            2 => {
                let path = self.swap_path();
                let bytes = match self.rng.below(20) {
                    // Areas over 64G are left to tests/bounds_core.rs
                    // (largest_swap_device) but for the largest, 16T.
                    0 => match self.size(1 << 20) {
                        b if b > 64 << 30 => 16 << 40,
                        b => b,
                    },
                    1 => 16 << 40,
                    _ => (self.rng.range(40, 128 << 10) & !3) << 10,
                };
                Command::Mkswap {
                    path,
                    bytes,
                    badpages: Vec::new(),
                    rotational: self.rng.below(4) == 0,
                }
            }
            3 => Command::Swapon {
                path: self.swap_path(),
                prio: match self.rng.below(4) {
                    0 | 1 => None,
                    2 => Some(self.rng.below(32768) as i32),
                    _ => Some(self.rng.below(5) as i32),
                },
            },
            4 => Command::Swapoff {
                path: self.swap_path(),
            },
            5 => Command::Reclaim {
                bytes: self.size(16384).max(1),
                // memory.reclaim's swappiness=: 0..=200, or 201 for max.
                swappiness: self
                    .rng
                    .chance(1, 4)
                    .then(|| self.rng.below(mmfs::mm::vmscan::SWAPPINESS_ANON_ONLY + 1)),
            },
            6 => {
                let order = Order(self.rng.below(11) as u8);
                let mut tag = self.tag();
                let count = self.alloc_count(64, &mut tag);
                let zone = self.rng.chance(1, 4).then(|| self.pick(ZONES));
                // Raw allocations of every migrate type fragment pageblocks
                // for compaction to work against.
                let gfp = match self.rng.below(6) {
                    0 => Some(ctl::RawGfp::Movable),
                    1 => Some(ctl::RawGfp::Reclaimable),
                    2 => Some(ctl::RawGfp::Atomic),
                    _ => None,
                };
                Command::AllocPages {
                    order,
                    count,
                    zone,
                    tag,
                    gfp,
                }
            }
            7 => Command::FreePages {
                tag: self.tag(),
                count: self.free_count(16),
            },
            8 => Command::KmemCacheCreate {
                name: self.cache_name(),
                size: if self.rng.chance(3, 4) {
                    self.rng.small(8192)
                } else {
                    self.size(2048)
                },
                align: if self.rng.chance(1, 3) {
                    *self.rng.pick(&[0, 1, 3, 8, 16, 64, 4096, 8192, 0x40])
                } else {
                    8
                },
            },
            9 => Command::KmemCacheDestroy {
                name: self.cache_name(),
            },
            10 => {
                let name = self.cache_name();
                let mut tag = self.tag();
                let count = self.alloc_count(32, &mut tag);
                Command::KmemCacheAlloc { name, count, tag }
            }
            11 => Command::KmemCacheFree {
                tag: self.tag(),
                count: self.free_count(64),
            },
            12 => {
                let size = if self.rng.chance(3, 4) {
                    self.rng.small(16384)
                } else {
                    self.size(1024)
                };
                let mut tag = self.tag();
                let count = self.alloc_count(32, &mut tag);
                Command::Kmalloc { size, count, tag }
            }
            13 => Command::Kfree {
                tag: self.tag(),
                count: self.free_count(64),
            },
            15 => Command::Sync,
            16 => Command::Fork {
                pid: Pid(self.pid(k, pids).0.max(1)),
            },
            _ => Command::Tick {
                ticks: match self.rng.below(10) {
                    0 => 1,
                    1 => self.rng.small(ctl::MAX_TICKS),
                    2 => ctl::MAX_TICKS,
                    _ => self.rng.small(200),
                },
            },
        }
    }

    /// An offset after a symbolic address.
    fn offset(&mut self) -> i64 {
        match self.rng.below(7) {
            0 | 1 => 0,
            2 | 3 => (self.rng.small(64) * 4096) as i64,
            4 => (self.size(64) >> 1) as i64,
            5 => self.rng.below(8192) as i64,
            _ => -((self.rng.small(64) * 4096) as i64),
        }
    }

    /// An address for `pid`: inside or near a known mapping, symbolic, or
    /// a raw number.
    fn addr(&mut self, k: Option<&Machine>, pid: Pid) -> AddrSpec {
        let vmas = self.address_space(k, pid);
        match self.rng.weighted(&[35, 10, 10, 10, 8, 8]) {
            0 if !vmas.is_empty() => {
                let &(start, end) = self.rng.pick(&vmas);
                let pages = ((end - start) >> 12).max(1);
                AddrSpec::Absolute(start + (self.rng.below(pages + 1) << 12))
            }
            1 => AddrSpec::Heap(self.offset()),
            2 => AddrSpec::Stack(self.offset()),
            3 => AddrSpec::Mapping {
                name: self.mapping_name(),
                offset: self.offset(),
            },
            4 => AddrSpec::Absolute(*self.rng.pick(&[
                0,
                0x1000,
                0x400000,
                0x10000,
                0x7fff_ffff_e000,
                0x7fff_ffff_f000,
                0x8000_0000_0000,
                u64::MAX,
                0xc000_0000,
                0xbfff_f000,
                0x1001,
                0xfff,
            ])),
            _ => AddrSpec::Absolute((self.rng.next_u64() >> self.rng.below(64)) & !0xfff),
        }
    }

    /// The mappings of `pid` as its `maps` file lists them (refreshed now
    /// and then).
    fn address_space(&mut self, k: Option<&Machine>, pid: Pid) -> Vmas {
        let refresh = !self.spaces.contains_key(&pid.0) || self.rng.chance(1, 4);
        if refresh {
            let mut vmas = Vmas::new();
            if let (Some(k), Some(maps)) = (k, PID_FILES.iter().find(|f| f.0 == "maps"))
                && let Ok(text) = render_pid(k, pid, maps.2)
            {
                for line in text.lines() {
                    let range = line.split_whitespace().next().unwrap_or("");
                    if let Some((a, b)) = range.split_once('-')
                        && let (Ok(a), Ok(b)) =
                            (u64::from_str_radix(a, 16), u64::from_str_radix(b, 16))
                    {
                        vmas.push((a, b));
                    }
                }
            }
            self.spaces.insert(pid.0, vmas);
        }
        self.spaces[&pid.0].clone()
    }

    fn mem_addr(&mut self, k: Option<&Machine>, pid: Pid) -> u64 {
        let vmas = self.address_space(k, pid);
        if !vmas.is_empty() && self.rng.chance(4, 5) {
            let &(start, end) = self.rng.pick(&vmas);
            let len = (end - start).max(1);
            // Near the end too, so accesses straddle the mapping's end.
            start + self.rng.below(len + 64)
        } else {
            *self.rng.pick(&[
                0,
                4096,
                0x400000,
                0x7fff_ffff_f000,
                u64::MAX - 10,
                u64::MAX,
                0xc000_0000,
            ])
        }
    }

    fn prot(&mut self) -> Prot {
        const PROTS: &[&str] = &["r", "rw", "rx", "rwx", "none"];
        let text: &&str = self.rng.pick(PROTS);
        parse_prot(text).expect("a valid prot")
    }

    /// A well-formed `MOUNT/PID/ctl` command for `pid`.
    fn process_command(&mut self, k: Option<&Machine>, pid: Pid) -> ProcessCommand {
        match self.rng.weighted(&[22, 8, 8, 8, 25, 14, 5, 6, 2]) {
            0 => {
                let bytes = if self.rng.chance(4, 5) {
                    self.rng.small(4096) * 4096
                } else {
                    self.size(1 << 20)
                };
                let name = self.rng.chance(1, 2).then(|| self.mapping_name());
                let addr = self.rng.chance(1, 5).then(|| self.addr(k, pid));
                let prot = if self.rng.chance(1, 3) {
                    self.prot()
                } else {
                    Prot::RW
                };
                // A file mapping now and then: faults through the page
                // cache, COW copies, shared dirtying, reverse-map reclaim.
                let file = self.rng.chance(1, 4).then(|| MmapFile {
                    path: self.file_path(),
                    offset: self.rng.small(8) * 4096,
                    shared: self.rng.chance(1, 2),
                });
                // Shared anonymous memory (shmem) as often: pages shared
                // across fork through the object's index, swapped through
                // the swap cache, freed with the last mapping.
                let shared_anon = file.is_none() && self.rng.chance(1, 4);
                ProcessCommand::Mmap {
                    bytes,
                    name,
                    addr,
                    prot,
                    file,
                    shared_anon,
                }
            }
            1 => ProcessCommand::Munmap {
                addr: self.addr(k, pid),
                bytes: self.range_size(),
            },
            2 => ProcessCommand::Mprotect {
                addr: self.addr(k, pid),
                bytes: self.range_size(),
                prot: self.prot(),
            },
            3 => ProcessCommand::Brk(match self.rng.below(4) {
                0 => BrkArg::To(self.addr(k, pid)),
                1 | 2 => BrkArg::Grow(self.size(256)),
                _ => BrkArg::Shrink(self.size(256)),
            }),
            4 => ProcessCommand::Touch {
                addr: self.addr(k, pid),
                bytes: self.range_size(),
                write: self.rng.chance(2, 3),
            },
            5 => ProcessCommand::Madvise {
                addr: self.addr(k, pid),
                bytes: self.range_size(),
                advice: *self.rng.pick(&[
                    Advice::PageOut,
                    Advice::PageOut,
                    Advice::Cold,
                    Advice::DontNeed,
                ]),
            },
            6 => ProcessCommand::Read {
                path: self.file_path(),
                off: self.rng.small(1 << 20),
                bytes: self.rng.small(1 << 20),
            },
            7 => ProcessCommand::Write {
                path: self.file_path(),
                off: self.rng.small(4 << 20),
                bytes: self.rng.small(1 << 20),
                byte: self.rng.below(256) as u8,
            },
            _ => ProcessCommand::Fsync {
                path: self.file_path(),
            },
        }
    }

    /// A path of the simulated file system: a few files, a missing
    /// directory (ENOENT) and the root (EISDIR).
    fn file_path(&mut self) -> String {
        self.rng
            .pick(&["/f0", "/f1", "/f2", "/f3", "/nodir/x", "/"])
            .to_string()
    }

    // -----------------------------------------------------------------
    // Lines: typed commands printed, and malformed text
    // -----------------------------------------------------------------

    /// A line for `MOUNT/ctl`: mostly a typed command, else malformed.
    fn system_line(&mut self, k: Option<&Machine>, pids: &[Pid]) -> String {
        match self.rng.below(100) {
            0..=79 => self.system_command(k, pids).to_string(),
            80..=84 => self.garbage_line(),
            _ => {
                let line = self.system_command(k, pids).to_string();
                self.mutate(&line)
            }
        }
    }

    /// A line for `MOUNT/PID/ctl`: mostly a typed command, else malformed
    /// (or a system command, in the wrong file).
    fn process_line(&mut self, k: Option<&Machine>, pid: Pid) -> String {
        match self.rng.below(100) {
            0..=79 => self.process_command(k, pid).to_string(),
            80..=84 => {
                let pids = k.map(|k| k.pids()).unwrap_or_default();
                self.system_command(k, &pids).to_string()
            }
            85..=87 => self.garbage_line(),
            _ => {
                let line = self.process_command(k, pid).to_string();
                self.mutate(&line)
            }
        }
    }

    /// A malformed (or oddly spelled) variant of a well-formed line: one
    /// word replaced by a bad token, dropped or doubled, a word added, a
    /// number spelled differently, a name made too long.
    pub fn mutate(&mut self, line: &str) -> String {
        let mut words: Vec<String> = line.split(' ').map(str::to_string).collect();
        let args = words.len() - 1;
        match self.rng.below(7) {
            0 | 1 if args > 0 => {
                // Replace an argument (or an option's value) with a bad token.
                let i = 1 + self.rng.below(args as u64) as usize;
                let bad = match self.rng.below(6) {
                    0 => self.pick(BAD_SIZES),
                    1 => self.pick(BAD_NUMBERS),
                    2 => self.pick(BAD_PROTS),
                    3 => self.pick(BAD_NAMES),
                    4 => self.pick(BAD_ADDRS),
                    _ => self.pick(BAD_PATHS),
                };
                words[i] = match words[i].split_once('=') {
                    Some((key, _)) => format!("{key}={bad}"),
                    None => bad,
                };
            }
            2 if args > 0 => {
                let i = 1 + self.rng.below(args as u64) as usize;
                words.remove(i);
            }
            3 if args > 0 => {
                let i = 1 + self.rng.below(args as u64) as usize;
                let w = words[i].clone();
                words.insert(i, w);
            }
            4 => {
                // Respell a number: hex, lower-case suffix, leading zeros.
                let i = self.rng.below(words.len() as u64) as usize;
                if let Some(n) = mmfs::mm::types::parse_size(&words[i])
                    && words[i].bytes().all(|b| b.is_ascii_alphanumeric())
                {
                    words[i] = match self.rng.below(3) {
                        0 => format!("{n:#x}"),
                        1 => format!("{n:08}"),
                        _ => words[i].to_lowercase(),
                    };
                } else {
                    words.push(self.pick(EXTRA_WORDS));
                }
            }
            5 => {
                // Names longer than 15 bytes are cut, and two may collide.
                let i = self.rng.below(words.len() as u64) as usize;
                if i > 0
                    && !words[i].starts_with([
                        '/', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '+', '-',
                    ])
                {
                    words[i] += "_long_name_beyond_comm_len";
                } else {
                    words.push(self.pick(EXTRA_WORDS));
                }
            }
            _ => words.push(self.pick(EXTRA_WORDS)),
        }
        words.join(" ")
    }

    /// Lines no grammar accepts, or that test the line rules.
    fn garbage_line(&mut self) -> String {
        match self.rng.below(14) {
            0 => String::new(),
            1 => "   \t  ".into(),
            2 => "# a comment alloc_pages 3".into(),
            3 => {
                // Just over the limit, with a valid command in front.
                let n = self.rng.range(4097, 9000) as usize;
                let mut s = "tick 1".to_string();
                while s.len() < n {
                    s.push(' ');
                }
                s
            }
            4 => {
                // Exactly at the limit: still a valid line.
                let mut s = "tick 1".to_string();
                while s.len() < ctl::MAX_LINE {
                    s.push(' ');
                }
                s
            }
            5 => {
                // Random characters, including NUL, controls and non-ASCII.
                let n = self.rng.small(200) as usize;
                (0..n)
                    .map(|_| match self.rng.below(6) {
                        0 => char::from_u32(self.rng.below(0x20) as u32).unwrap_or('?'),
                        1 => char::from_u32(self.rng.range(0x80, 0x2fff) as u32).unwrap_or('?'),
                        2 => ' ',
                        3 => '=',
                        _ => (b'a' + self.rng.below(26) as u8) as char,
                    })
                    .collect()
            }
            6 => "alloc_pages\0 1".into(),
            7 => "ALLOC_PAGES 1".into(),
            8 => "\u{feff}tick".into(),
            9 => "alloc_pages 1 count=1 count=2".into(),
            10 => "alloc_pages 1 =x".into(),
            11 => "alloc_pages 1 tag=".into(),
            12 => {
                // Over the limit and a comment: the limit still applies.
                format!("#{}", "c".repeat(self.rng.range(4097, 6000) as usize))
            }
            _ => "tick\r".into(),
        }
    }

    fn raw_writes(&mut self, k: Option<&Machine>, pids: &[Pid]) -> Op {
        let scope = if pids.is_empty() || self.rng.chance(1, 2) {
            Scope::System
        } else {
            Scope::Process(self.pid(k, pids))
        };
        // A small plan, cut at random places into writes.
        let mut plan = Vec::new();
        let lines = self.rng.range(1, 6);
        for _ in 0..lines {
            let line = match scope {
                Scope::System => self.system_line(k, pids),
                Scope::Process(p) => self.process_line(k, p),
            };
            plan.extend_from_slice(line.as_bytes());
            if self.rng.chance(9, 10) {
                plan.push(b'\n');
            }
        }
        match self.rng.below(8) {
            0 => plan.extend_from_slice(b"\xff\xfe tick\n"),
            1 => plan.extend(std::iter::repeat_n(
                b'x',
                self.rng.range(4000, 10000) as usize,
            )),
            _ => {}
        }
        let mut writes = Vec::new();
        let mut rest = &plan[..];
        while !rest.is_empty() {
            let cut = (self.rng.range(1, rest.len().max(1) as u64) as usize).min(rest.len());
            writes.push(rest[..cut].to_vec());
            rest = &rest[cut..];
        }
        Op::Writes(scope, writes)
    }

    fn sysctl_write(&mut self) -> Op {
        let name = if self.rng.chance(9, 10) {
            self.rng
                .pick(&writable_sysctls().collect::<Vec<_>>())
                .to_string()
        } else {
            // compact_memory is write-only, so not among the tunables
            // that read back: name it here (compaction moves pages under
            // every other subsystem).
            self.pick(&[
                "kernel/ns_last_pid",
                "vm/nope",
                "",
                "vm/../vm/swappiness",
                "vm/compact_memory",
                "vm/compact_memory",
            ])
        };
        let value = match self.rng.below(10) {
            0..=5 => match name.as_str() {
                "vm/swappiness" => format!("{}\n", self.rng.below(201)),
                "vm/overcommit_memory" => format!("{}\n", self.rng.below(3)),
                "vm/overcommit_ratio" => format!("{}\n", self.rng.below(150)),
                "vm/watermark_scale_factor" => format!("{}\n", self.rng.range(1, 3000)),
                // Keep min_free_kbytes mostly sane: huge values starve everything.
                "vm/min_free_kbytes" => format!("{}\n", self.rng.range(128, 16384)),
                "vm/compact_memory" => "1\n".to_string(),
                _ => format!("{}\n", self.rng.below(100)),
            },
            6 => format!("{}\n", self.number_text(100_000)),
            7 => self.pick(&[
                "-1\n", "", "\n", " 60 \n", "60 70\n", "0x10\n", "1e3\n", "201\n", "3\n", "0\n",
            ]),
            8 => format!(
                "{}\n",
                self.pick(&[
                    "1099511627776",
                    "1099511627777",
                    "2147483647",
                    "2147483648",
                    "18446744073709551615"
                ])
            ),
            _ => "60".into(),
        };
        Op::Sysctl(name, value)
    }

    /// A number for a sysctl: mostly plausible, sometimes not a number.
    fn number_text(&mut self, typical_max: u64) -> String {
        match self.rng.weighted(&[70, 8, 8, 7, 7]) {
            0 => format!("{}", self.rng.small(typical_max)),
            1 => format!("{:#x}", self.rng.small(typical_max)),
            2 => self.pick(&[
                "0",
                "1",
                "-1",
                "4294967295",
                "4294967296",
                "18446744073709551615",
                "18446744073709551616",
            ]),
            3 => self.pick(BAD_NUMBERS),
            _ => format!("{}", self.rng.next_u64() >> self.rng.below(64)),
        }
    }
}
