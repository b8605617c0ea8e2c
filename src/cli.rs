//! The command line: `mmfs mount`, `mmfs umount`, and the mount(8) helper
//! protocol when installed as `mount.mmfs`. Parsing only; the work is in
//! `cli_daemon`.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use mmfs::mm::MachineConfig;
use mmfs::mm::cputime::ClockMode;
use mmfs::mm::types::{Arch, parse_size};

/// Exit status for bad usage (arguments, options, sizes).
pub const EXIT_USAGE: i32 = 2;
/// Exit status for a failure to do what was asked.
pub const EXIT_FAILURE: i32 = 1;

/// A one-line error and the exit status it ends the program with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    /// Exit status.
    pub code: i32,
    /// The line printed (without the `mmfs: ` prefix).
    pub message: String,
}

impl CliError {
    /// A usage error (exit status 2).
    pub fn usage(message: impl Into<String>) -> CliError {
        CliError {
            code: EXIT_USAGE,
            message: message.into(),
        }
    }

    /// A failure (exit status 1).
    pub fn failure(message: impl Into<String>) -> CliError {
        CliError {
            code: EXIT_FAILURE,
            message: message.into(),
        }
    }
}

/// mmfs: a simulated Linux memory manager mounted as a FUSE file system
/// whose files read like /proc.
#[derive(Parser, Debug)]
#[command(name = "mmfs", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Boot a simulated machine and mount it at MOUNTPOINT.
    Mount(MountArgs),
    /// Unmount MOUNTPOINT and wait until its daemon has exited.
    Umount {
        /// The mount point of an mmfs mount.
        mountpoint: PathBuf,
    },
    /// Run COMMAND in private mount and pid namespaces where the simulated
    /// files stand over /proc (free, vmstat, swapon, slabtop, ps, pmap, top).
    ///
    /// sysinfo(2) answers from the simulation too (seccomp user
    /// notification), so sysconf(_SC_PHYS_PAGES) is the simulated RAM;
    /// MMFS_EXEC_NO_SECCOMP=1 leaves it to the host.
    Exec {
        /// The mount point of an mmfs mount.
        mountpoint: PathBuf,
        /// The command and its arguments (after `--`).
        #[arg(last = true, required = true, value_name = "COMMAND")]
        command: Vec<String>,
    },
}

#[derive(clap::Args, Debug)]
struct MountArgs {
    /// An empty directory to mount on.
    mountpoint: PathBuf,
    /// RAM of the simulated machine, with a K/M/G/T suffix [default: 1G].
    #[arg(long, value_name = "SIZE")]
    mem: Option<String>,
    /// Architecture of the simulated machine: x86_64 or i386 [default: x86_64].
    #[arg(long, value_name = "ARCH")]
    arch: Option<String>,
    /// Stay in the foreground and log to stderr.
    #[arg(long, short = 'f')]
    foreground: bool,
    /// Log file of the daemon (instead of /dev/null, or of stderr in the foreground).
    #[arg(long, value_name = "FILE")]
    log: Option<PathBuf>,
    /// Directory for the sparse file that holds simulated partitions' page
    /// bytes [default: /var/tmp].
    #[arg(long, value_name = "DIR")]
    swapdir: Option<PathBuf>,
    /// What drives the simulated clock: `sim` (work and `tick` only,
    /// deterministic) or `wall` (real time too; kswapd and LRU ageing run
    /// by themselves) [default: sim].
    #[arg(long, value_name = "sim|wall")]
    clock: Option<String>,
    /// Size of the simulated disk /dev/sda1 holding the root file system
    /// served at MOUNTPOINT/fs/, 16M to 16T [default: 4G].
    #[arg(long, value_name = "SIZE")]
    disk: Option<String>,
    /// Mount options, comma-separated: mem=SIZE, arch=ARCH, allow_other, log=FILE,
    /// swapdir=DIR, clock=sim|wall, disk=SIZE, and the generic mount(8) options (ignored).
    #[arg(short = 'o', value_name = "OPTS")]
    options: Vec<String>,
}

/// What `mmfs mount` was asked to do, fully resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountPlan {
    /// The mount point as given.
    pub mountpoint: PathBuf,
    /// The machine to boot.
    pub machine: MachineConfig,
    /// Stay in the foreground.
    pub foreground: bool,
    /// Log file.
    pub log: Option<PathBuf>,
    /// Let other users in (`-o allow_other`).
    pub allow_other: bool,
    /// Where simulated partitions keep page bytes (`-o swapdir=DIR`).
    pub swapdir: Option<PathBuf>,
    /// `-o ro`: every write is EROFS.
    pub read_only: bool,
    /// `--clock` / `-o clock=`.
    pub clock: ClockMode,
    /// `--disk` / `-o disk=`: bytes of the simulated root disk.
    pub disk_bytes: u64,
    /// mount(8) `-f`: check everything, mount nothing.
    pub fake: bool,
    /// mount(8) `-v`: say what is done.
    pub verbose: bool,
}

/// A parsed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Mount.
    Mount(MountPlan),
    /// Unmount.
    Umount(PathBuf),
    /// Run a command over the simulated /proc.
    Exec(PathBuf, Vec<String>),
    /// Print this text to stdout and exit 0 (help, version).
    Print(String),
}

/// Options collected from `-o` lists.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct MountOpts {
    mem: Option<String>,
    arch: Option<String>,
    log: Option<PathBuf>,
    allow_other: bool,
    swapdir: Option<PathBuf>,
    read_only: bool,
    clock: Option<String>,
    disk: Option<String>,
}

/// The generic mount(8) options mmfs accepts and ignores.
const IGNORED_OPTIONS: &[&str] = &[
    "rw",
    "defaults",
    "nosuid",
    "suid",
    "nodev",
    "dev",
    "noexec",
    "exec",
    "auto",
    "noauto",
    "nofail",
    "_netdev",
    "user",
    "nouser",
    "users",
    "owner",
    "group",
    "sync",
    "async",
    "atime",
    "noatime",
    "relatime",
    "norelatime",
    "strictatime",
    "nodiratime",
    "lazytime",
    "silent",
    "loud",
    "default_permissions",
];

/// `--clock` / `-o clock=`: `sim` (the default) or `wall`.
fn clock_mode(value: Option<&str>) -> Result<ClockMode, CliError> {
    match value {
        None | Some("sim") => Ok(ClockMode::Sim),
        Some("wall") => Ok(ClockMode::Wall),
        Some(other) => Err(CliError::usage(format!(
            "--clock {other}: the clock is 'sim' (deterministic) or 'wall' (follows real time)"
        ))),
    }
}

/// Parse one `-o` list into `opts`. Unknown options are an error unless
/// `sloppy` (mount -s).
fn parse_options(list: &str, sloppy: bool, opts: &mut MountOpts) -> Result<(), CliError> {
    for option in list.split(',').map(str::trim).filter(|o| !o.is_empty()) {
        match option.split_once('=') {
            Some(("mem", value)) => opts.mem = Some(value.to_string()),
            Some(("arch", value)) => opts.arch = Some(value.to_string()),
            Some(("log", value)) => opts.log = Some(PathBuf::from(value)),
            Some(("swapdir", value)) => opts.swapdir = Some(PathBuf::from(value)),
            Some(("clock", value)) => opts.clock = Some(value.to_string()),
            Some(("disk", value)) => opts.disk = Some(value.to_string()),
            Some(("comment" | "fsname" | "subtype", _)) => {}
            _ if option == "allow_other" => opts.allow_other = true,
            _ if option == "ro" => opts.read_only = true,
            _ if option == "rw" => opts.read_only = false,
            _ if option == "remount" => {
                return Err(CliError::usage(
                    "mmfs cannot be remounted (its options are fixed at boot): unmount it and mount again"
                        .to_string(),
                ));
            }
            _ if IGNORED_OPTIONS.contains(&option) || option.starts_with("x-") => {}
            _ if sloppy => {}
            _ => {
                return Err(CliError::usage(format!(
                    "unknown mount option '{option}'; mmfs takes mem=SIZE, arch=x86_64|i386, \
                     allow_other, log=FILE, swapdir=DIR, clock=sim|wall, disk=SIZE and the generic \
                     mount(8) options"
                )));
            }
        }
    }
    Ok(())
}

/// Parse `--arch` / `arch=`.
pub fn parse_arch(text: &str) -> Result<Arch, CliError> {
    match text.to_ascii_lowercase().as_str() {
        "x86_64" | "amd64" | "x86-64" => Ok(Arch::X86_64),
        "i386" | "i686" | "x86" => Ok(Arch::I386),
        _ => Err(CliError::usage(format!(
            "unknown architecture '{text}'; use --arch x86_64 or --arch i386"
        ))),
    }
}

/// Smallest simulated disk (`--disk`).
pub const DISK_MIN: u64 = 16 << 20;
/// Largest simulated disk (`--disk`).
pub const DISK_MAX: u64 = 16 << 40;

/// `--disk` / `-o disk=`: the size of the simulated root disk, whole
/// pages, 16M..=16T; the default is `namei::DEFAULT_DISK`.
fn disk_size(value: Option<&str>) -> Result<u64, CliError> {
    let Some(text) = value else {
        return Ok(mmfs::mm::namei::DEFAULT_DISK);
    };
    match parse_size(text) {
        Some(bytes) if (DISK_MIN..=DISK_MAX).contains(&bytes) => Ok(bytes),
        _ => Err(CliError::usage(format!(
            "bad size '{text}' for --disk; give 16M to 16T with a K/M/G/T suffix, e.g. --disk 8G"
        ))),
    }
}

/// Resolve the machine from the flag and option values (flags win).
fn machine(mem: Option<&str>, arch: Option<&str>) -> Result<MachineConfig, CliError> {
    let mut config = MachineConfig::default();
    if let Some(arch) = arch {
        config.arch = parse_arch(arch)?;
    }
    if let Some(mem) = mem {
        config.mem_bytes = parse_size(mem).ok_or_else(|| {
            CliError::usage(format!(
                "bad size '{mem}' for --mem; give a number with an optional K/M/G/T suffix, e.g. --mem 2G"
            ))
        })?;
    }
    config
        .validate()
        .map_err(|e| CliError::usage(format!("{e}")))?;
    Ok(config)
}

/// The synopsis quoted by usage errors.
const USAGE: &str = "usage: mmfs mount MOUNTPOINT [--mem SIZE] [--arch x86_64|i386] [--foreground] \
                     [--log FILE] [-o OPTS] | mmfs umount MOUNTPOINT";

/// Turn a clap error into one line (clap prints several).
fn clap_error(err: clap::Error) -> CliError {
    use clap::error::ErrorKind;
    let rendered = err.to_string();
    // The error proper is everything before clap's tips and usage block.
    let first = rendered
        .lines()
        .map(str::trim)
        .take_while(|l| !l.starts_with("tip:") && !l.starts_with("Usage:"))
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let first = first.trim_start_matches("error: ");
    let first = if first.is_empty() { "bad usage" } else { first };
    let hint = match err.kind() {
        ErrorKind::MissingRequiredArgument | ErrorKind::MissingSubcommand => USAGE,
        _ => "see mmfs --help",
    };
    CliError::usage(format!("{first}; {hint}"))
}

/// Parse `mmfs ARGS...` (argv including argv[0]).
pub fn parse(args: Vec<OsString>) -> Result<Action, CliError> {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(err) => {
            use clap::error::ErrorKind;
            return match err.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                    Ok(Action::Print(err.to_string()))
                }
                ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    Err(CliError::usage(format!("no command given; {USAGE}")))
                }
                _ => Err(clap_error(err)),
            };
        }
    };
    match cli.command {
        Cmd::Umount { mountpoint } => Ok(Action::Umount(mountpoint)),
        Cmd::Exec {
            mountpoint,
            command,
        } => Ok(Action::Exec(mountpoint, command)),
        Cmd::Mount(args) => {
            let mut opts = MountOpts::default();
            for list in &args.options {
                parse_options(list, false, &mut opts)?;
            }
            let machine = machine(
                args.mem.as_deref().or(opts.mem.as_deref()),
                args.arch.as_deref().or(opts.arch.as_deref()),
            )?;
            Ok(Action::Mount(MountPlan {
                mountpoint: args.mountpoint,
                machine,
                foreground: args.foreground,
                log: args.log.or(opts.log),
                allow_other: opts.allow_other,
                swapdir: args.swapdir.or(opts.swapdir),
                read_only: opts.read_only,
                clock: clock_mode(args.clock.as_deref().or(opts.clock.as_deref()))?,
                disk_bytes: disk_size(args.disk.as_deref().or(opts.disk.as_deref()))?,
                fake: false,
                verbose: false,
            }))
        }
    }
}

/// Parse the mount(8) helper protocol:
/// `mount.mmfs SOURCE DIR [-o OPTS] [-n] [-s] [-f] [-v] [-t TYPE]`.
/// The source is a free label ("mmfs"); the daemon always detaches.
pub fn parse_helper(args: Vec<OsString>) -> Result<Action, CliError> {
    const USAGE: &str = "usage: mount.mmfs SOURCE DIR [-o mem=SIZE,arch=ARCH,...] [-n] [-s] [-f] [-v], \
                         or: mount -t mmfs mmfs DIR -o mem=2G";
    let mut positional: Vec<OsString> = Vec::new();
    let mut lists: Vec<String> = Vec::new();
    let (mut sloppy, mut fake, mut verbose) = (false, false, false);
    let mut iter = args.into_iter().skip(1);
    while let Some(arg) = iter.next() {
        let text = arg.to_string_lossy().into_owned();
        if text == "-h" || text == "--help" {
            return Ok(Action::Print(format!("{USAGE}\n")));
        }
        if let Some(flags) = text.strip_prefix('-').filter(|f| !f.is_empty()) {
            for (i, c) in flags.char_indices() {
                match c {
                    's' => sloppy = true,
                    'f' => fake = true,
                    'v' => verbose = true,
                    'n' => {}
                    'o' | 't' => {
                        let rest = &flags[i + 1..];
                        let value = if rest.is_empty() {
                            iter.next()
                                .map(|v| v.to_string_lossy().into_owned())
                                .ok_or_else(|| {
                                    CliError::usage(format!("-{c} needs a value; {USAGE}"))
                                })?
                        } else {
                            rest.to_string()
                        };
                        if c == 'o' {
                            lists.push(value);
                        }
                        break;
                    }
                    other => {
                        return Err(CliError::usage(format!("unknown flag -{other}; {USAGE}")));
                    }
                }
            }
        } else {
            positional.push(arg);
        }
    }
    if positional.len() != 2 {
        return Err(CliError::usage(format!(
            "expected SOURCE and DIR, got {} arguments; {USAGE}",
            positional.len()
        )));
    }
    let mut opts = MountOpts::default();
    for list in &lists {
        parse_options(list, sloppy, &mut opts)?;
    }
    let machine = machine(opts.mem.as_deref(), opts.arch.as_deref())?;
    Ok(Action::Mount(MountPlan {
        mountpoint: PathBuf::from(positional.remove(1)),
        machine,
        foreground: false,
        log: opts.log,
        allow_other: opts.allow_other,
        swapdir: opts.swapdir,
        read_only: opts.read_only,
        clock: clock_mode(opts.clock.as_deref())?,
        disk_bytes: disk_size(opts.disk.as_deref())?,
        fake,
        verbose,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    fn plan(action: Action) -> MountPlan {
        match action {
            Action::Mount(plan) => plan,
            other => panic!("not a mount: {other:?}"),
        }
    }

    #[test]
    fn defaults() {
        let p = plan(parse(args(&["mmfs", "mount", "/mnt"])).unwrap());
        assert_eq!(p.machine, MachineConfig::default());
        assert!(!p.foreground && !p.allow_other && p.log.is_none());
    }

    #[test]
    fn flags_and_options() {
        let p = plan(
            parse(args(&[
                "mmfs",
                "mount",
                "d",
                "-o",
                "mem=2G,arch=i386,allow_other,nosuid,x-systemd.automount",
                "--foreground",
            ]))
            .unwrap(),
        );
        assert_eq!(p.machine.arch, Arch::I386);
        assert_eq!(p.machine.mem_bytes, 2 << 30);
        assert!(p.allow_other && p.foreground);
        // A flag wins over the same option.
        let p = plan(
            parse(args(&[
                "mmfs", "mount", "d", "-o", "mem=2G", "--mem", "128M",
            ]))
            .unwrap(),
        );
        assert_eq!(p.machine.mem_bytes, 128 << 20);
        // The disk: 4G by default, a flag or an option.
        let p = plan(parse(args(&["mmfs", "mount", "d"])).unwrap());
        assert_eq!(p.disk_bytes, 4 << 30);
        let p = plan(parse(args(&["mmfs", "mount", "d", "--disk", "16M"])).unwrap());
        assert_eq!(p.disk_bytes, 16 << 20);
        let p = plan(parse(args(&["mmfs", "mount", "d", "-o", "disk=16T"])).unwrap());
        assert_eq!(p.disk_bytes, 16 << 40);
        let p = plan(parse_helper(args(&["mount.mmfs", "m", "/m", "-o", "disk=1G"])).unwrap());
        assert_eq!(p.disk_bytes, 1 << 30);
    }

    #[test]
    fn bad_usage_is_one_line_with_status_2() {
        for bad in [
            &["mmfs", "mount"][..],
            &["mmfs", "mount", "d", "--mem", "12Q"],
            &["mmfs", "mount", "d", "--mem", "16M"],
            &["mmfs", "mount", "d", "--arch", "arm64"],
            &["mmfs", "mount", "d", "--arch", "i386", "--mem", "8G"],
            &["mmfs", "mount", "d", "-o", "bogus"],
            &["mmfs", "mount", "d", "--disk", "15M"],
            &["mmfs", "mount", "d", "--disk", "17T"],
            &["mmfs", "mount", "d", "-o", "disk=lots"],
            &["mmfs", "frobnicate"],
            &["mmfs"],
        ] {
            let err = parse(args(bad)).unwrap_err();
            assert_eq!(err.code, EXIT_USAGE, "{bad:?}");
            assert_eq!(err.message.lines().count(), 1, "{bad:?}: {}", err.message);
        }
    }

    #[test]
    fn help_is_printed() {
        assert!(matches!(
            parse(args(&["mmfs", "--help"])),
            Ok(Action::Print(_))
        ));
    }

    #[test]
    fn helper_protocol() {
        let p = plan(
            parse_helper(args(&[
                "/sbin/mount.mmfs",
                "mmfs",
                "/mnt/x",
                "-o",
                "rw,mem=2G,arch=i386",
                "-n",
            ]))
            .unwrap(),
        );
        assert_eq!(p.mountpoint, PathBuf::from("/mnt/x"));
        assert_eq!(p.machine.arch, Arch::I386);
        assert!(!p.foreground && !p.fake);
        let p = plan(parse_helper(args(&["mount.mmfs", "mmfs", "/m", "-sfv", "-ofoo=1"])).unwrap());
        assert!(p.fake && p.verbose);
        assert!(parse_helper(args(&["mount.mmfs", "mmfs", "/m", "-o", "foo"])).is_err());
        assert!(parse_helper(args(&["mount.mmfs", "/m"])).is_err());
        assert!(parse_helper(args(&["mount.mmfs", "mmfs", "/m", "-o"])).is_err());
    }
}
