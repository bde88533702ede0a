//! [`CommitPosition`]: where a commit is in the primary's log, the token of
//! read-your-writes.

use std::fmt;
use std::str::FromStr;

/// A position in the primary's write-ahead log (PostgreSQL: an LSN), taken
/// after a commit with
/// [`ConflictResolver::commit_position`](crate::resolver::ConflictResolver::commit_position):
/// every commit that finished before it was taken lies at or before it.
///
/// The token of read-your-writes: carry it with the caller's session (a
/// cookie, a header: it prints as PostgreSQL prints an LSN, `16/B374D848`,
/// and parses back), and pass it to a later read-only call with
/// [`CallOptions::after`](crate::resolver::CallOptions::after); that call runs on
/// a replica only once the replica has replayed up to it.
///
/// ```
/// use conflictkit::resolver::CommitPosition;
/// let at: CommitPosition = "16/B374D848".parse()?;
/// assert_eq!(at.to_string(), "16/B374D848");
/// assert!(at < "17/0".parse()?);
/// assert!("B374D848".parse::<CommitPosition>().is_err());
/// # Ok::<(), conflictkit::resolver::InvalidCommitPosition>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CommitPosition(u64);

impl CommitPosition {
    /// The position as one 64-bit number (PostgreSQL: the LSN's bytes).
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for CommitPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xffff_ffff)
    }
}

/// A text that is no [`CommitPosition`] (`HI/LO`, two hexadecimal numbers of
/// at most 8 digits, as PostgreSQL prints an LSN).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is no commit position: expected two hexadecimal numbers of at most 8 digits, `HI/LO` \
     (as PostgreSQL prints an LSN, e.g. `16/B374D848`); pass on the text `CommitPosition` printed"
)]
pub struct InvalidCommitPosition(String);

impl FromStr for CommitPosition {
    type Err = InvalidCommitPosition;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidCommitPosition(s.to_owned());
        let (hi, lo) = s.trim().split_once('/').ok_or_else(invalid)?;
        let half = |h: &str| {
            if h.is_empty() || h.len() > 8 {
                return Err(invalid());
            }
            u32::from_str_radix(h, 16).map_err(|_| invalid())
        };
        Ok(Self((u64::from(half(hi)?) << 32) | u64::from(half(lo)?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_print_and_parse_as_postgres_lsns() {
        let p: CommitPosition = "0/16B3748".parse().unwrap();
        assert_eq!(p.as_u64(), 0x16B3748);
        assert_eq!(p.to_string(), "0/16B3748");
        let q: CommitPosition = "1/0".parse().unwrap();
        assert!(p < q);
        for bad in ["", "1", "1/", "/1", "x/1", "123456789/0", "1/2/3"] {
            assert!(bad.parse::<CommitPosition>().is_err(), "{bad}");
        }
    }
}
