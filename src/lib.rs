//! mmfs: a simulated Linux kernel memory manager, mounted as a FUSE
//! filesystem whose files read like the real `/proc`.
//!
//! Layers (data flows one way):
//! - [`ctl`]: control-language parser, text line → typed command.
//! - [`mm`]: the deterministic simulated kernel (no I/O but swap files).
//! - [`procfs`]: pure renderers, kernel state → file text.
//! - [`fs`]: the thin FUSE adapter.

pub mod ctl;
pub mod exec;
pub mod exec_machine;
pub mod exec_sysinfo;
pub mod fs;
pub mod mm;
pub mod procfs;
