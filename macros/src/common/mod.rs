//! Pieces every conflictkit macro shares: one error accumulator, one way to
//! read options, and the `crate = "path"` option.

pub(crate) mod crate_path;
pub(crate) mod errors;
pub(crate) mod options;
