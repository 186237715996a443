//! Retries with exponential backoff and full jitter for what a busy or flaky API server
//! answers: 429, 5xx, timeouts and broken connections. A server's `Retry-After` (the header, which
//! [`retry_after`] turns into the Status' `details.retryAfterSeconds` that kube hands on) is a floor
//! for the delay; every request's retries end at a deadline, also when the server asks for more patience.

use std::future::Future;
use std::time::{Duration, Instant};

/// How often and how patiently to retry one request.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in total (1 = no retry).
    pub attempts: u32,
    /// Delay before the first retry; doubled each time, up to `max_delay`, jittered.
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// No retry starts later than this after the first attempt started; a `Retry-After` that reaches past it
    /// ends the retries at once with the server's answer.
    pub deadline: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 6,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
            deadline: Duration::from_secs(60),
        }
    }
}

/// The delay the server asked for (`Retry-After`, carried in the Status details), if any.
pub fn server_delay(err: &kube::Error) -> Option<Duration> {
    match err {
        kube::Error::Api(s) => s
            .details
            .as_ref()
            .map(|d| d.retry_after_seconds)
            .filter(|secs| *secs > 0)
            .map(|secs| Duration::from_secs(u64::from(secs))),
        _ => None,
    }
}

/// Whether an error is worth another attempt.
pub fn is_retryable(err: &kube::Error) -> bool {
    match err {
        kube::Error::Api(s) => s.code == 429 || s.code >= 500,
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_) => true,
        _ => false,
    }
}

impl RetryPolicy {
    /// The upper bound of the delay before retry number `n` (0-based).
    pub fn ceiling(&self, n: u32) -> Duration {
        let factor = 1u32.checked_shl(n.min(20)).unwrap_or(u32::MAX);
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }

    /// Run `f` until it succeeds, fails with a permanent error, or attempts run out.
    pub async fn run<T, F, Fut>(&self, mut f: F) -> Result<T, kube::Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, kube::Error>>,
    {
        let started = Instant::now();
        let mut n = 0;
        loop {
            match f().await {
                Ok(v) => return Ok(v),
                Err(e) if n + 1 < self.attempts.max(1) && is_retryable(&e) => {
                    let jittered = self.ceiling(n).mul_f64(rand::random::<f64>());
                    let delay = server_delay(&e).map_or(jittered, |asked| asked.max(jittered));
                    if started.elapsed() + delay > self.deadline {
                        tracing::debug!(delay_ms = delay.as_millis() as u64, "not retrying past the deadline: {e}");
                        return Err(e);
                    }
                    tracing::debug!(attempt = n + 1, delay_ms = delay.as_millis() as u64, "retrying: {e}");
                    tokio::time::sleep(delay).await;
                    n += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn status(code: u16) -> kube::Error {
        kube::Error::Api(Box::new(kube::core::Status::failure("injected", "TooManyRequests").with_code(code)))
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy {
            attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            ..Default::default()
        };
        assert_eq!(p.ceiling(0), Duration::from_millis(100));
        assert_eq!(p.ceiling(2), Duration::from_millis(400));
        assert_eq!(p.ceiling(9), Duration::from_secs(1));
    }

    #[tokio::test]
    async fn retries_429_and_5xx_but_not_404() {
        let p = RetryPolicy {
            attempts: 4,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
            ..Default::default()
        };
        let calls = AtomicU32::new(0);
        let r = p
            .run(|| async {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                if n < 2 {
                    Err(status(if n == 0 { 429 } else { 503 }))
                } else {
                    Ok(n)
                }
            })
            .await;
        assert_eq!(r.unwrap(), 2);
        assert_eq!(calls.load(Ordering::SeqCst), 3);

        let calls = AtomicU32::new(0);
        let r: Result<(), _> = p
            .run(|| async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(status(404))
            })
            .await;
        assert!(r.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1, "a 404 is not retried");

        let calls = AtomicU32::new(0);
        let r: Result<(), _> = p
            .run(|| async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(status(500))
            })
            .await;
        assert!(r.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 4, "gives up after the configured attempts");
    }

    fn asked_to_wait(secs: u32) -> kube::Error {
        let s = serde_json::json!({"status": "Failure", "reason": "TooManyRequests", "code": 429,
                                   "details": {"retryAfterSeconds": secs}});
        kube::Error::Api(Box::new(serde_json::from_value(s).unwrap()))
    }

    #[tokio::test]
    async fn retry_after_is_a_floor_for_the_delay() {
        let p = RetryPolicy { attempts: 3, base_delay: Duration::from_millis(1), ..Default::default() };
        let calls = AtomicU32::new(0);
        let started = Instant::now();
        let r = p
            .run(|| async {
                if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                    Err(asked_to_wait(1))
                } else {
                    Ok(())
                }
            })
            .await;
        assert!(r.is_ok());
        assert!(started.elapsed() >= Duration::from_secs(1), "waited {:?}", started.elapsed());
    }

    #[tokio::test]
    async fn retries_end_at_the_deadline() {
        let p = RetryPolicy { attempts: 100, deadline: Duration::from_millis(2500), ..Default::default() };
        let calls = AtomicU32::new(0);
        let started = Instant::now();
        let r: Result<(), _> = p
            .run(|| async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(asked_to_wait(3600))
            })
            .await;
        assert!(r.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1, "an hour's Retry-After is past the deadline: no retry");
        assert!(started.elapsed() < Duration::from_secs(1));

        let calls = AtomicU32::new(0);
        let r: Result<(), _> = p
            .run(|| async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(asked_to_wait(1))
            })
            .await;
        assert!(r.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 3, "retries after 1 s and 2 s; the next would pass 2.5 s");
    }
}
