//! Bounded concurrency over tenants: N connections, N workers pulling from one queue, and a
//! callback per finished job (for progress output). One job's failure does not stop the rest.

use super::connect::Resolved;
use super::Result;
use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex};
use tokio_postgres::Client;

/// Run `work` for every job with at most `concurrency` connections at once. The results come
/// back in job order; `on_done` sees each as it finishes. Fails only if no connection could
/// be opened at all.
pub async fn for_each<J, R, F, Fut>(
    conn: &Resolved,
    jobs: Vec<J>,
    concurrency: usize,
    work: F,
    mut on_done: impl FnMut(&J, &Result<R>),
) -> Result<Vec<(J, Result<R>)>>
where
    J: Clone + Send + 'static,
    R: Send + 'static,
    F: Fn(Arc<Client>, J) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<R>> + Send + 'static,
{
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    let n = concurrency.clamp(1, jobs.len());
    // The first connection alone, so that an unreachable server is one clear error.
    let mut clients = vec![Arc::new(conn.connect().await?)];
    let more = futures::future::try_join_all((1..n).map(|_| conn.connect())).await?;
    clients.extend(more.into_iter().map(Arc::new));

    let queue: Arc<Mutex<VecDeque<(usize, J)>>> = Arc::new(Mutex::new(jobs.iter().cloned().enumerate().collect()));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, Result<R>)>();
    let work = Arc::new(work);
    let mut handles = Vec::with_capacity(n);
    for client in clients {
        let queue = queue.clone();
        let tx = tx.clone();
        let work = work.clone();
        handles.push(tokio::spawn(async move {
            loop {
                let next = queue.lock().expect("queue lock").pop_front();
                let Some((i, job)) = next else { break };
                let result = work(client.clone(), job).await;
                if tx.send((i, result)).is_err() {
                    break;
                }
            }
        }));
    }
    drop(tx);
    let mut results: Vec<Option<Result<R>>> = (0..jobs.len()).map(|_| None).collect();
    while let Some((i, r)) = rx.recv().await {
        on_done(&jobs[i], &r);
        results[i] = Some(r);
    }
    for h in handles {
        let _ = h.await;
    }
    Ok(jobs
        .into_iter()
        .zip(results)
        .map(|(j, r)| {
            let r = r.unwrap_or_else(|| Err(super::Error::Refused("the worker running this job stopped".into())));
            (j, r)
        })
        .collect())
}
