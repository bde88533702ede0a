//! [`CommitPosition`]: where a commit is in the primary's log, the token of
//! read-your-writes.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use super::gtid::Gtid;

/// A position in the primary's log, taken after a commit with
/// [`ConflictResolver::commit_position`](crate::resolver::ConflictResolver::commit_position):
/// every commit that finished before it was taken lies at or before it.
/// PostgreSQL: an LSN of the write-ahead log, printed as PostgreSQL prints
/// one (`16/B374D848`); MariaDB: the GTID of the primary's last commit in
/// its replication domain (`@@gtid_domain_id`), printed
/// `domain-server-sequence` (`0-1-42`).
///
/// The token of read-your-writes: carry it with the caller's session (a
/// cookie, a header: it prints as text and parses back), and pass it to a
/// later read-only call with
/// [`CallOptions::after`](crate::resolver::CallOptions::after); that call runs on
/// a replica only once the replica has replayed up to it.
///
/// Positions of one primary order as its commits did (MariaDB: by sequence
/// number within a domain).
///
/// ```
/// use conflictkit::resolver::CommitPosition;
/// let at: CommitPosition = "16/B374D848".parse()?;
/// assert_eq!(at.to_string(), "16/B374D848");
/// assert!(at < "17/0".parse()?);
/// let gtid: CommitPosition = "0-1-42".parse()?;
/// assert_eq!(gtid.to_string(), "0-1-42");
/// assert!(gtid < "0-2-43".parse()?);
/// assert!("B374D848".parse::<CommitPosition>().is_err());
/// # Ok::<(), conflictkit::resolver::InvalidCommitPosition>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CommitPosition(Position);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Position {
    /// PostgreSQL: the LSN's bytes.
    Lsn(u64),
    /// MariaDB: one GTID.
    Gtid(Gtid),
}

impl CommitPosition {
    /// The position as one 64-bit number: PostgreSQL, the LSN's bytes;
    /// MariaDB, the GTID's sequence number.
    pub fn as_u64(self) -> u64 {
        match self.0 {
            Position::Lsn(lsn) => lsn,
            Position::Gtid(g) => g.seq,
        }
    }

    pub(crate) fn lsn(lsn: u64) -> Self {
        Self(Position::Lsn(lsn))
    }

    pub(crate) fn gtid(gtid: Gtid) -> Self {
        Self(Position::Gtid(gtid))
    }

    /// The GTID, on MariaDB.
    pub(crate) fn as_gtid(self) -> Option<Gtid> {
        match self.0 {
            Position::Gtid(g) => Some(g),
            Position::Lsn(_) => None,
        }
    }

    /// Whether a replica that replayed up to `self` has every commit up to
    /// `token` (positions of different engines or GTID domains: no).
    pub(crate) fn covers(self, token: CommitPosition) -> bool {
        match (self.0, token.0) {
            (Position::Lsn(r), Position::Lsn(t)) => r >= t,
            (Position::Gtid(r), Position::Gtid(t)) => r.domain == t.domain && r.seq >= t.seq,
            _ => false,
        }
    }
}

impl Ord for CommitPosition {
    /// LSNs by value; GTIDs by domain, then sequence number (then server,
    /// so that the order is total); every LSN before every GTID.
    fn cmp(&self, other: &Self) -> Ordering {
        match (self.0, other.0) {
            (Position::Lsn(a), Position::Lsn(b)) => a.cmp(&b),
            (Position::Gtid(a), Position::Gtid(b)) => {
                (a.domain, a.seq, a.server).cmp(&(b.domain, b.seq, b.server))
            }
            (Position::Lsn(_), Position::Gtid(_)) => Ordering::Less,
            (Position::Gtid(_), Position::Lsn(_)) => Ordering::Greater,
        }
    }
}

impl PartialOrd for CommitPosition {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for CommitPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Position::Lsn(lsn) => write!(f, "{:X}/{:X}", lsn >> 32, lsn & 0xffff_ffff),
            Position::Gtid(g) => g.fmt(f),
        }
    }
}

/// A text that is no [`CommitPosition`]: neither `HI/LO`, two hexadecimal
/// numbers of at most 8 digits (as PostgreSQL prints an LSN), nor
/// `domain-server-sequence`, three decimal numbers (a MariaDB GTID).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is no commit position: expected two hexadecimal numbers of at most 8 digits, `HI/LO` \
     (as PostgreSQL prints an LSN, e.g. `16/B374D848`), or three decimal numbers \
     `domain-server-sequence` (a MariaDB GTID, e.g. `0-1-42`); pass on the text \
     `CommitPosition` printed"
)]
pub struct InvalidCommitPosition(String);

impl FromStr for CommitPosition {
    type Err = InvalidCommitPosition;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidCommitPosition(s.to_owned());
        let Some((hi, lo)) = s.trim().split_once('/') else {
            return s.parse::<Gtid>().map(Self::gtid).map_err(|()| invalid());
        };
        let half = |h: &str| {
            if h.is_empty() || h.len() > 8 {
                return Err(invalid());
            }
            u32::from_str_radix(h, 16).map_err(|_| invalid())
        };
        Ok(Self::lsn(
            (u64::from(half(hi)?) << 32) | u64::from(half(lo)?),
        ))
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
        assert!(q.covers(p) && !p.covers(q));
        for bad in ["", "1", "1/", "/1", "x/1", "123456789/0", "1/2/3"] {
            assert!(bad.parse::<CommitPosition>().is_err(), "{bad}");
        }
    }

    #[test]
    fn positions_print_and_parse_as_mariadb_gtids() {
        let p: CommitPosition = "0-1-42".parse().unwrap();
        assert_eq!((p.to_string(), p.as_u64()), ("0-1-42".to_owned(), 42));
        let later: CommitPosition = "0-2-43".parse().unwrap();
        assert!(p < later && later.covers(p) && !p.covers(later));
        let other_domain: CommitPosition = "1-1-99".parse().unwrap();
        assert!(!other_domain.covers(p), "another domain says nothing");
        let lsn: CommitPosition = "0/1".parse().unwrap();
        assert!(!lsn.covers(p) && !p.covers(lsn));
        for bad in ["0-1", "0-1-x", "0-1-2-3", "-1-2"] {
            assert!(bad.parse::<CommitPosition>().is_err(), "{bad}");
        }
    }
}
