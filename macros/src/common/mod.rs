//! Pieces every conflictkit macro shares: the `crate = "path"` option and
//! error accumulation.

pub(crate) mod crate_path;
pub(crate) mod errors;
