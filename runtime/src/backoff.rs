//! Exponential backoff with full jitter: the one schedule behind the
//! resolver's replays, the event poster's retries and the outbox relay's
//! delivery rounds.

use std::time::Duration;

/// Exponential backoff with full jitter: before retry `n` (1-based) the wait
/// is a uniformly random time in `[0, min(cap, base * 2^(n-1))]`.
///
/// The resolver sleeps it between replays
/// ([`ConflictResolverBuilder::backoff`](crate::resolver::ConflictResolverBuilder::backoff));
/// the event poster and the outbox relay use the same schedule between
/// their retries.
///
/// ```
/// use std::time::Duration;
/// use conflictkit::resolver::Backoff;
///
/// let b = Backoff::new(Duration::from_millis(10), Duration::from_secs(1));
/// assert!(b.delay(1) <= Duration::from_millis(10));
/// assert!(b.delay(30) <= Duration::from_secs(1));
/// assert_eq!(Backoff::none().delay(5), Duration::ZERO);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
}

impl Default for Backoff {
    /// Base 10 ms, cap 1 s (the resolver's default).
    fn default() -> Self {
        Self::new(Duration::from_millis(10), Duration::from_secs(1))
    }
}

impl Backoff {
    /// Backoff starting at `base`, doubling, never above `cap`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use conflictkit::resolver::Backoff;
    ///
    /// let b = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
    /// assert_eq!(b.ceiling(3), Duration::from_millis(400));
    /// ```
    pub fn new(base: Duration, cap: Duration) -> Self {
        Self { base, cap }
    }

    /// No waiting between retries (for tests).
    ///
    /// ```
    /// use std::time::Duration;
    /// use conflictkit::resolver::Backoff;
    ///
    /// assert_eq!(Backoff::none().ceiling(10), Duration::ZERO);
    /// ```
    pub fn none() -> Self {
        Self::new(Duration::ZERO, Duration::ZERO)
    }

    /// The longest wait, whatever the retry.
    ///
    /// ```
    /// use std::time::Duration;
    /// use conflictkit::resolver::Backoff;
    ///
    /// assert_eq!(Backoff::default().cap(), Duration::from_secs(1));
    /// ```
    pub fn cap(&self) -> Duration {
        self.cap
    }

    /// The ceiling of the wait before retry `retry` (1-based).
    ///
    /// ```
    /// use std::time::Duration;
    /// use conflictkit::resolver::Backoff;
    ///
    /// let b = Backoff::default();
    /// assert_eq!(b.ceiling(1), Duration::from_millis(10));
    /// assert_eq!(b.ceiling(2), Duration::from_millis(20));
    /// assert_eq!(b.ceiling(100), Duration::from_secs(1));
    /// ```
    pub fn ceiling(&self, retry: u32) -> Duration {
        let factor = 1u32
            .checked_shl(retry.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// A random wait before retry `retry` (1-based): full jitter under
    /// [`ceiling`](Self::ceiling).
    ///
    /// ```
    /// use std::time::Duration;
    /// use conflictkit::resolver::Backoff;
    ///
    /// let b = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
    /// assert!(b.delay(2) <= Duration::from_millis(200));
    /// ```
    pub fn delay(&self, retry: u32) -> Duration {
        let ceiling = self.ceiling(retry);
        if ceiling.is_zero() {
            return Duration::ZERO;
        }
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(fastrand::u64(0..=nanos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        let b = Backoff::new(Duration::from_millis(10), Duration::from_secs(1));
        assert_eq!(b.ceiling(0), Duration::from_millis(10));
        assert_eq!(b.ceiling(1), Duration::from_millis(10));
        assert_eq!(b.ceiling(2), Duration::from_millis(20));
        assert_eq!(b.ceiling(7), Duration::from_millis(640));
        assert_eq!(b.ceiling(8), Duration::from_secs(1));
        assert_eq!(b.ceiling(500), Duration::from_secs(1));
        for n in 1..40 {
            assert!(b.delay(n) <= b.ceiling(n));
        }
        // full jitter: not always the ceiling
        assert!((0..200).any(|_| b.delay(3) < Duration::from_millis(39)));
    }

    #[test]
    fn a_huge_base_saturates_instead_of_overflowing() {
        let b = Backoff::new(Duration::from_secs(u64::MAX / 2), Duration::MAX);
        assert_eq!(b.ceiling(40), Duration::MAX);
        assert!(b.delay(40) <= Duration::MAX);
    }
}
