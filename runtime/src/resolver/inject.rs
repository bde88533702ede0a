//! Conflict injection: synthetic conflicts that prove, in a test suite, that
//! managed bodies are replay-safe.
//!
//! A managed body may run several times, so it must not touch anything
//! outside its transaction (except through
//! [`after_commit`](super::Txn::after_commit)) nor carry state from one run to
//! the next. Real conflicts are rare in tests, so such bugs hide. With
//! injection on, a share of the runs that still have a replay left fail with
//! a synthetic conflict after the body ran and before `COMMIT`: rolled back,
//! counted and replayed exactly like a real one. The last allowed run is
//! never injected, so injection alone never makes a call give up.
//!
//! Turn it on in code ([`ConflictResolverBuilder::inject_conflicts`]) or,
//! without touching code, for every resolver of a process with the
//! environment variable `CONFLICTKIT_INJECT_CONFLICTS` (a rate from 0 to 1,
//! optionally `rate:seed`, e.g. `0.3:42`).
//!
//! [`ConflictResolverBuilder::inject_conflicts`]: super::ConflictResolverBuilder::inject_conflicts

use std::sync::Mutex;

/// The environment variable that turns injection on for every resolver.
pub const INJECT_CONFLICTS_ENV: &str = "CONFLICTKIT_INJECT_CONFLICTS";

/// How often to inject synthetic conflicts: a share of the runs that still
/// have a replay left fail with a synthetic conflict after the body ran and
/// before `COMMIT`, and are replayed like a real one. Set it with
/// [`ConflictResolverBuilder::inject_conflicts`](super::ConflictResolverBuilder::inject_conflicts)
/// or, for every resolver of a process, with [`INJECT_CONFLICTS_ENV`].
///
/// ```
/// use conflictkit::resolver::InjectConflicts;
/// let every_third = InjectConflicts::rate(0.33).seed(7);
/// assert_eq!(every_third.share(), 0.33);
/// assert_eq!("0.5:42".parse::<InjectConflicts>().unwrap().share(), 0.5);
/// assert!("often".parse::<InjectConflicts>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InjectConflicts {
    rate: f64,
    seed: Option<u64>,
}

impl InjectConflicts {
    /// Inject into this share of the runs that have a replay left (clamped
    /// to 0..=1).
    pub fn rate(rate: f64) -> Self {
        let rate = if rate.is_nan() {
            0.0
        } else {
            rate.clamp(0.0, 1.0)
        };
        Self { rate, seed: None }
    }

    /// Make the sequence of injected runs the same on every test run.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// The share of runs injected.
    pub fn share(&self) -> f64 {
        self.rate
    }

    /// Injection as `CONFLICTKIT_INJECT_CONFLICTS` asks for it, if set.
    pub fn from_env() -> Result<Option<Self>, InvalidInjection> {
        match std::env::var(INJECT_CONFLICTS_ENV) {
            Ok(v) if !v.trim().is_empty() => v.parse().map(Some),
            _ => Ok(None),
        }
    }
}

/// A conflict-injection setting that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "conflict injection `{given}` is not understood: write a rate from 0 to 1, optionally with a \
     seed, e.g. `0.3` or `0.3:42`"
)]
pub struct InvalidInjection {
    given: String,
}

impl std::str::FromStr for InjectConflicts {
    type Err = InvalidInjection;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidInjection {
            given: s.to_owned(),
        };
        let (rate, seed) = match s.trim().split_once(':') {
            Some((r, seed)) => (r, Some(seed.trim().parse::<u64>().map_err(|_| invalid())?)),
            None => (s.trim(), None),
        };
        let rate: f64 = rate.trim().parse().map_err(|_| invalid())?;
        if !(0.0..=1.0).contains(&rate) {
            return Err(invalid());
        }
        let inject = Self::rate(rate);
        Ok(match seed {
            Some(seed) => inject.seed(seed),
            None => inject,
        })
    }
}

/// Draws which runs to inject into.
#[derive(Debug)]
pub(crate) struct Injector {
    rate: f64,
    rng: Mutex<fastrand::Rng>,
}

impl Injector {
    pub(crate) fn new(inject: InjectConflicts) -> Self {
        let rng = match inject.seed {
            Some(seed) => fastrand::Rng::with_seed(seed),
            None => fastrand::Rng::new(),
        };
        Self {
            rate: inject.rate,
            rng: Mutex::new(rng),
        }
    }

    /// The share of runs injected.
    pub(crate) fn rate(&self) -> f64 {
        self.rate
    }

    /// Whether to inject into this run.
    pub(crate) fn hit(&self) -> bool {
        let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        rng.f64() < self.rate
    }

    pub(crate) fn conflict(&self, label: &str) -> InjectedConflict {
        InjectedConflict {
            label: label.to_owned(),
            rate: self.rate,
        }
    }
}

/// The synthetic conflict a run gets when injection is on: classified as a
/// conflict ([`ConflictCode::Injected`](super::ConflictCode::Injected)) and
/// replayed like one.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "a conflict injected into `{label}` to test that it is replay-safe (conflict injection is on \
     at rate {rate})"
)]
pub struct InjectedConflict {
    label: String,
    rate: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse() {
        assert_eq!(
            "0.3".parse::<InjectConflicts>(),
            Ok(InjectConflicts::rate(0.3))
        );
        assert_eq!(
            " 1 : 9 ".parse::<InjectConflicts>(),
            Ok(InjectConflicts::rate(1.0).seed(9))
        );
        for bad in ["1.5", "-0.1", "x", "0.3:y", "0.3:"] {
            let err = bad.parse::<InjectConflicts>().unwrap_err();
            assert!(err.to_string().contains("from 0 to 1"), "{err}");
        }
        assert_eq!(InjectConflicts::rate(f64::NAN).share(), 0.0);
        assert_eq!(InjectConflicts::rate(3.0).share(), 1.0);
    }

    #[test]
    fn a_seed_repeats_the_sequence() {
        let draw = || {
            let i = Injector::new(InjectConflicts::rate(0.5).seed(42));
            (0..64).map(|_| i.hit()).collect::<Vec<_>>()
        };
        let a = draw();
        assert_eq!(a, draw());
        assert!(a.iter().any(|h| *h) && a.iter().any(|h| !*h), "{a:?}");
        let never = Injector::new(InjectConflicts::rate(0.0));
        assert!((0..64).all(|_| !never.hit()));
    }
}
