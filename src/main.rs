//! `mmfs`: mount a simulated Linux memory manager as a FUSE file system.
//!
//! ```text
//! mmfs mount MOUNTPOINT [--mem SIZE] [--arch x86_64|i386] [--foreground] [--log FILE] [-o OPTS]
//! mmfs umount MOUNTPOINT
//! mmfs exec MOUNTPOINT -- COMMAND [ARGS...]
//! mount.mmfs SOURCE DIR [-o OPTS] [-n] [-s] [-f] [-v]     (as mount(8)'s helper)
//! ```

mod cli;
mod cli_daemon;

use std::path::Path;

fn main() {
    let args: Vec<_> = std::env::args_os().collect();
    // Installed as /sbin/mount.mmfs, mount(8) runs us with its own protocol.
    let as_helper = args
        .first()
        .and_then(|argv0| Path::new(argv0).file_name())
        .is_some_and(|name| name.to_string_lossy().ends_with("mount.mmfs"));
    let parsed = if as_helper {
        cli::parse_helper(args)
    } else {
        cli::parse(args)
    };
    let code = match parsed {
        Ok(action) => cli_daemon::run(action),
        Err(err) => {
            eprintln!("mmfs: {}", err.message);
            err.code
        }
    };
    std::process::exit(code);
}
