//! Retries with exponential backoff and full jitter for what a busy or flaky API server
//! answers: 429, 5xx, timeouts and broken connections.

use std::future::Future;
use std::time::Duration;

/// How often and how patiently to retry one request.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in total (1 = no retry).
    pub attempts: u32,
    /// Delay before the first retry; doubled each time, up to `max_delay`, jittered.
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { attempts: 6, base_delay: Duration::from_millis(100), max_delay: Duration::from_secs(5) }
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
        let mut n = 0;
        loop {
            match f().await {
                Ok(v) => return Ok(v),
                Err(e) if n + 1 < self.attempts.max(1) && is_retryable(&e) => {
                    let ceiling = self.ceiling(n);
                    let jittered = ceiling.mul_f64(rand::random::<f64>());
                    tracing::debug!(attempt = n + 1, delay_ms = jittered.as_millis() as u64, "retrying: {e}");
                    tokio::time::sleep(jittered).await;
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
        let p = RetryPolicy { attempts: 10, base_delay: Duration::from_millis(100), max_delay: Duration::from_secs(1) };
        assert_eq!(p.ceiling(0), Duration::from_millis(100));
        assert_eq!(p.ceiling(2), Duration::from_millis(400));
        assert_eq!(p.ceiling(9), Duration::from_secs(1));
    }

    #[tokio::test]
    async fn retries_429_and_5xx_but_not_404() {
        let p = RetryPolicy { attempts: 4, base_delay: Duration::from_millis(1), max_delay: Duration::from_millis(2) };
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
}
