//! `/proc/version` (fs/proc/version.c): the kernel's banner, the same
//! `linux_banner` the first line of the boot log prints.

use crate::mm::Kernel;
use crate::mm::mm_init::linux_banner;

/// The text of `MOUNT/version`.
pub fn version(kernel: &Kernel) -> String {
    format!("{}\n", linux_banner(kernel.config.arch))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mm::MachineConfig;

    #[test]
    fn version_is_the_first_boot_line() {
        let k = Kernel::boot(MachineConfig::default()).unwrap();
        let first = k.dmesg.records().next().unwrap().text.clone();
        assert_eq!(version(&k), format!("{first}\n"));
        assert!(version(&k).starts_with("Linux version 6.18"));
    }
}
