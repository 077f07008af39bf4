//! Anti-fatigue: how many requests an agent may put to people. Beyond the
//! limit a request is never shown to anyone; it is denied (or the session
//! killed, per `[approval] on_limit`).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(60);

/// Why a request is over the limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Over {
    #[error("{0} requests are already waiting (max_pending = {0})")]
    Pending(u32),
    #[error("{0} requests in the last minute (max_per_minute = {0})")]
    PerMinute(u32),
}

/// A sliding one-minute window of admitted requests, plus a cap on
/// requests waiting at once.
#[derive(Debug)]
pub struct Limiter {
    max_pending: u32,
    per_minute: u32,
    admitted: VecDeque<Instant>,
}

impl Limiter {
    pub fn new(max_pending: u32, per_minute: u32) -> Limiter {
        Limiter {
            max_pending,
            per_minute,
            admitted: VecDeque::new(),
        }
    }

    /// Admits one more request at `now` with `waiting` already pending.
    /// A refused request does not count against the window: only the
    /// questions people actually see do.
    pub fn admit(&mut self, waiting: usize, now: Instant) -> Result<(), Over> {
        while self
            .admitted
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= WINDOW)
        {
            self.admitted.pop_front();
        }
        if waiting >= self.max_pending as usize {
            return Err(Over::Pending(self.max_pending));
        }
        if self.admitted.len() >= self.per_minute as usize {
            return Err(Over::PerMinute(self.per_minute));
        }
        self.admitted.push_back(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thousand_requests_admit_only_the_limit_per_minute() {
        let mut l = Limiter::new(4, 10);
        let t0 = Instant::now();
        let admitted = (0..1000)
            .filter(|i| l.admit(0, t0 + Duration::from_millis(*i)).is_ok())
            .count();
        assert_eq!(admitted, 10);
        assert_eq!(
            l.admit(0, t0 + Duration::from_secs(30)),
            Err(Over::PerMinute(10))
        );
        // A minute after the first ones, the window has room again.
        assert!(l.admit(0, t0 + Duration::from_secs(61)).is_ok());
    }

    #[test]
    fn waiting_requests_are_capped() {
        let mut l = Limiter::new(2, 100);
        let now = Instant::now();
        assert!(l.admit(1, now).is_ok());
        assert_eq!(l.admit(2, now), Err(Over::Pending(2)));
        assert_eq!(
            Over::Pending(2).to_string(),
            "2 requests are already waiting (max_pending = 2)"
        );
    }
}
