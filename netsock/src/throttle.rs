//! Rate-limited warnings: a peer that sends 10,000 bad frames must not
//! write 10,000 log lines.
//!
//! Each kind of warning is logged the first time, then at most once per
//! [`INTERVAL`], with the count of the ones left out since the last line
//! (`suppressed = N`). Every case is still counted in the metrics; the log
//! only samples them.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The least time between two lines of one kind.
pub(crate) const INTERVAL: Duration = Duration::from_secs(10);

/// A kind of warning, and what it is about (a variant's name, say; empty
/// when the kind alone counts).
type Kind = (&'static str, &'static str);

/// Per kind: when its last line was written, and how many were left out
/// since.
type Seen = HashMap<Kind, (Instant, u64)>;

fn seen() -> &'static Mutex<Seen> {
    static SEEN: OnceLock<Mutex<Seen>> = OnceLock::new();
    SEEN.get_or_init(Default::default)
}

/// Whether a warning of `kind` may be written now: `Some(n)` with the number
/// left out since the last one, or `None` to leave this one out.
pub(crate) fn admit(kind: &'static str) -> Option<u64> {
    admit_about(kind, "")
}

/// [`admit`], for a kind of warning about one thing (each variant without a
/// handler is logged the first time, say).
pub(crate) fn admit_about(kind: &'static str, about: &'static str) -> Option<u64> {
    admit_at(
        &mut crate::sync::lock(seen()),
        (kind, about),
        Instant::now(),
    )
}

fn admit_at(seen: &mut Seen, kind: Kind, now: Instant) -> Option<u64> {
    match seen.get_mut(&kind) {
        Some((last, left_out)) if now.duration_since(*last) < INTERVAL => {
            *left_out += 1;
            None
        }
        Some((last, left_out)) => {
            *last = now;
            Some(std::mem::take(left_out))
        }
        None => {
            seen.insert(kind, (now, 0));
            Some(0)
        }
    }
}

/// `tracing::warn!`, rate-limited per kind (see the [module](self)): the
/// line carries `suppressed`, the number of warnings of that kind left out
/// since the previous line.
macro_rules! warn_throttled {
    (($kind:expr, $about:expr), $($rest:tt)+) => {
        if let Some(suppressed) = $crate::throttle::admit_about($kind, $about) {
            tracing::warn!(suppressed, $($rest)+);
        }
    };
    ($kind:expr, $($rest:tt)+) => {
        if let Some(suppressed) = $crate::throttle::admit($kind) {
            tracing::warn!(suppressed, $($rest)+);
        }
    };
}
pub(crate) use warn_throttled;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_then_one_per_interval_with_the_count() {
        let mut seen = Seen::new();
        let t0 = Instant::now();
        assert_eq!(admit_at(&mut seen, ("a", ""), t0), Some(0));
        for _ in 0..9_999 {
            assert_eq!(admit_at(&mut seen, ("a", ""), t0 + INTERVAL / 2), None);
        }
        // Another kind has its own budget.
        assert_eq!(admit_at(&mut seen, ("b", ""), t0), Some(0));
        assert_eq!(admit_at(&mut seen, ("a", ""), t0 + INTERVAL), Some(9_999));
        assert_eq!(admit_at(&mut seen, ("a", ""), t0 + INTERVAL), None);
        assert_eq!(admit_at(&mut seen, ("a", ""), t0 + 2 * INTERVAL), Some(1));
        // The same kind about two things: two first lines.
        assert_eq!(admit_at(&mut seen, ("c", "Join"), t0), Some(0));
        assert_eq!(admit_at(&mut seen, ("c", "Leave"), t0), Some(0));
        assert_eq!(admit_at(&mut seen, ("c", "Join"), t0), None);
    }
}
