use std::time::Duration;

use backon::{BackoffBuilder, ConstantBuilder, ExponentialBuilder};
use chorus_core::{RetryPolicy, RetryStrategy};

/// The delay before the next attempt, after `attempts` attempts have failed
/// (`attempts >= 1`), under `policy`; at least `retry_after` when the
/// destination asked for it, and at most the policy's cap otherwise.
pub fn next_delay(policy: &RetryPolicy, attempts: u32, retry_after: Option<Duration>) -> Duration {
    let initial = Duration::from_millis(policy.initial_delay_ms);
    let max = Duration::from_millis(policy.max_delay_ms.max(policy.initial_delay_ms));
    let n = attempts.max(1) as usize;
    let base = match policy.strategy {
        RetryStrategy::Exponential => {
            let mut b = ExponentialBuilder::new()
                .with_min_delay(initial)
                .with_max_delay(max)
                .with_factor(2.0)
                .without_max_times();
            if policy.jitter {
                b = b.with_jitter();
            }
            b.build().nth(n - 1)
        }
        RetryStrategy::Fixed => constant(initial, policy.jitter),
        RetryStrategy::Linear => constant(initial.saturating_mul(n as u32).min(max), policy.jitter),
    }
    .unwrap_or(max);
    let delay = base.min(max);
    match retry_after {
        Some(wait) => delay.max(wait),
        None => delay,
    }
}

fn constant(delay: Duration, jitter: bool) -> Option<Duration> {
    let b = ConstantBuilder::new().with_delay(delay).without_max_times();
    if jitter { b.with_jitter().build().next() } else { b.build().next() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(strategy: RetryStrategy, jitter: bool) -> RetryPolicy {
        RetryPolicy {
            strategy,
            max_attempts: Some(10),
            initial_delay_ms: 1_000,
            max_delay_ms: 60_000,
            jitter,
        }
    }

    fn secs(d: Duration) -> f64 {
        d.as_secs_f64()
    }

    #[test]
    #[allow(clippy::float_cmp)] // whole seconds, exactly representable
    fn exponential_doubles_to_the_cap() {
        let p = policy(RetryStrategy::Exponential, false);
        let seq: Vec<f64> = (1..=8).map(|n| secs(next_delay(&p, n, None))).collect();
        assert_eq!(seq, vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]);
    }

    #[test]
    #[allow(clippy::float_cmp)]
    fn linear_and_fixed() {
        let l = policy(RetryStrategy::Linear, false);
        assert_eq!((1..=3).map(|n| secs(next_delay(&l, n, None))).collect::<Vec<_>>(), vec![1.0, 2.0, 3.0]);
        assert_eq!(next_delay(&l, 100, None), Duration::from_secs(60));
        let f = policy(RetryStrategy::Fixed, false);
        assert_eq!(next_delay(&f, 7, None), Duration::from_secs(1));
    }

    #[test]
    fn jitter_stays_within_bounds_and_varies() {
        let p = policy(RetryStrategy::Exponential, true);
        let samples: Vec<Duration> = (0..50).map(|_| next_delay(&p, 3, None)).collect();
        assert!(samples.iter().all(|d| *d >= Duration::from_secs(4) && *d <= Duration::from_secs(8)));
        assert!(samples.iter().any(|d| *d != samples[0]), "no jitter");
    }

    #[test]
    fn retry_after_is_a_floor() {
        let p = policy(RetryStrategy::Fixed, false);
        assert_eq!(next_delay(&p, 1, Some(Duration::from_secs(30))), Duration::from_secs(30));
        assert_eq!(next_delay(&p, 1, Some(Duration::from_millis(10))), Duration::from_secs(1));
    }
}
