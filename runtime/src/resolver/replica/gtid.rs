//! MariaDB global transaction ids: one GTID (`domain-server-sequence`, what
//! a commit gets) and a GTID position (one GTID per replication domain, as
//! `@@gtid_binlog_pos` and `@@gtid_slave_pos` print it: `0-1-42,1-2-7`).
//!
//! Within a domain the sequence numbers grow with every commit, whichever
//! server made it (`gtid_strict_mode` refuses anything else), so a position
//! covers a GTID when its sequence number in the GTID's domain is at least
//! the GTID's. Written by hand: parsing three numbers needs no crate.

use std::fmt;
use std::str::FromStr;

/// One MariaDB GTID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Gtid {
    pub(crate) domain: u32,
    pub(crate) server: u32,
    pub(crate) seq: u64,
}

impl fmt::Display for Gtid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.domain, self.server, self.seq)
    }
}

impl FromStr for Gtid {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        let mut parts = s.trim().split('-');
        let (Some(domain), Some(server), Some(seq), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(());
        };
        let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
        if !(digits(domain) && digits(server) && digits(seq)) {
            return Err(());
        }
        Ok(Gtid {
            domain: domain.parse().map_err(|_| ())?,
            server: server.parse().map_err(|_| ())?,
            seq: seq.parse().map_err(|_| ())?,
        })
    }
}

/// A GTID position: the last GTID of each domain (empty: nothing yet).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct GtidSet(Vec<Gtid>);

impl GtidSet {
    /// The GTID of `domain`, if the position has one.
    pub(crate) fn in_domain(&self, domain: u32) -> Option<Gtid> {
        self.0.iter().copied().find(|g| g.domain == domain)
    }

    /// Its GTID, when it has exactly one domain.
    pub(crate) fn only(&self) -> Option<Gtid> {
        match self.0.as_slice() {
            [one] => Some(*one),
            _ => None,
        }
    }

    /// Whether this position includes `gtid`.
    pub(crate) fn covers_gtid(&self, gtid: Gtid) -> bool {
        gtid.seq == 0
            || self
                .in_domain(gtid.domain)
                .is_some_and(|g| g.seq >= gtid.seq)
    }

    /// Whether this position includes every commit of `other`.
    pub(crate) fn covers(&self, other: &GtidSet) -> bool {
        other.0.iter().all(|g| self.covers_gtid(*g))
    }
}

impl FromStr for GtidSet {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        s.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::parse)
            .collect::<Result<Vec<Gtid>, ()>>()
            .map(GtidSet)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_cover_per_domain() {
        let set = |s: &str| s.parse::<GtidSet>().unwrap();
        let gtid = |s: &str| s.parse::<Gtid>().unwrap();
        assert_eq!(set(""), GtidSet::default());
        assert_eq!(gtid("0-1-42").to_string(), "0-1-42");
        let replica = set("0-1-42, 1-2-7");
        assert!(replica.covers_gtid(gtid("0-1-42")));
        assert!(
            replica.covers_gtid(gtid("0-3-40")),
            "any server, same domain"
        );
        assert!(!replica.covers_gtid(gtid("0-1-43")));
        assert!(!replica.covers_gtid(gtid("2-1-1")), "a domain it never saw");
        assert!(replica.covers_gtid(gtid("2-1-0")), "nothing to wait for");
        assert!(replica.covers(&set("0-1-41,1-2-7")));
        assert!(!replica.covers(&set("0-1-41,1-2-8")));
        assert!(replica.covers(&set("")));
        for bad in ["0-1", "0-1-2-3", "a-1-2", "0--2", "-0-1-2", "0-1-2,x"] {
            assert!(bad.parse::<GtidSet>().is_err(), "{bad}");
        }
    }
}
