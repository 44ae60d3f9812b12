//! Per-hook token buckets.

use std::{collections::HashMap, sync::Mutex};

use chorus_core::HookId;
use jiff::Timestamp;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Timestamp,
}

/// A token bucket per hook, refilled continuously at `per_minute`.
///
/// One short critical section per request; the map is pruned of full
/// buckets so it stays as small as the set of busy hooks.
#[derive(Debug, Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<HookId, Bucket>>,
}

impl RateLimiter {
    /// Take a token for `hook` from a bucket of a minute's worth (ingress:
    /// a sender may burst its whole budget); `Err(seconds)` to wait.
    pub fn check(&self, hook: &HookId, per_minute: u32, now: Timestamp) -> Result<(), u64> {
        self.take(hook, per_minute, f64::from(per_minute), now).map_err(|wait| wait.ceil() as u64)
    }

    /// Take a token for `hook` from a bucket of one second's worth (at least
    /// one): outgoing sends are spread evenly; `Err(seconds)` to wait.
    pub fn check_smooth(&self, hook: &HookId, per_minute: u32, now: Timestamp) -> Result<(), f64> {
        self.take(hook, per_minute, (f64::from(per_minute) / 60.0).max(1.0), now)
    }

    fn take(&self, hook: &HookId, per_minute: u32, capacity: f64, now: Timestamp) -> Result<(), f64> {
        if per_minute == 0 {
            return Err(60.0);
        }
        let rate = f64::from(per_minute) / 60.0;
        let mut buckets = self.buckets.lock().expect("rate limiter lock");
        if buckets.len() > 10_000 {
            buckets
                .retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64().max(0.0) * rate < capacity);
        }
        let bucket = buckets.entry(hook.clone()).or_insert(Bucket { tokens: capacity, at: now });
        let elapsed = now.duration_since(bucket.at).as_secs_f64().max(0.0);
        bucket.tokens = (bucket.tokens + elapsed * rate).min(capacity);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err((1.0 - bucket.tokens) / rate)
        }
    }
}

#[cfg(test)]
mod tests {
    use jiff::SignedDuration;

    use super::*;

    #[test]
    fn bucket_empties_and_refills() {
        let rl = RateLimiter::default();
        let hook = HookId::generate();
        let t0 = Timestamp::from_second(1_000).unwrap();
        for _ in 0..60 {
            rl.check(&hook, 60, t0).unwrap();
        }
        assert_eq!(rl.check(&hook, 60, t0), Err(1));
        rl.check(&hook, 60, t0 + SignedDuration::from_secs(1)).unwrap();
        assert!(rl.check(&hook, 60, t0 + SignedDuration::from_secs(1)).is_err());
        // Other hooks have their own budget.
        rl.check(&HookId::generate(), 60, t0).unwrap();
        // Slow limits give long waits.
        let slow = HookId::generate();
        rl.check(&slow, 2, t0).unwrap();
        rl.check(&slow, 2, t0).unwrap();
        assert_eq!(rl.check(&slow, 2, t0), Err(30));
    }

    #[test]
    fn smooth_buckets_spread_sends() {
        let rl = RateLimiter::default();
        let hook = HookId::generate();
        let t0 = Timestamp::from_second(1_000).unwrap();
        rl.check_smooth(&hook, 60, t0).unwrap();
        let wait = rl.check_smooth(&hook, 60, t0).unwrap_err();
        assert!((wait - 1.0).abs() < 1e-9);
        rl.check_smooth(&hook, 60, t0 + SignedDuration::from_secs(1)).unwrap();
    }
}
