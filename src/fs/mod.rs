//! The FUSE adapter (filled in below).
