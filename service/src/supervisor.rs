//! One supervisor for the long-running tasks of a service. A task that ends on its own while
//! the service runs (an error, a panic, or simply returning) stops the whole service with one
//! clear log line, instead of leaving a process that answers probes but does no work.

use std::fmt::Display;
use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::error;

/// Spawns supervised tasks and remembers the first failure. `stop` is the service's shutdown
/// token: a failing task cancels it, so the service drains and exits as on SIGTERM.
#[derive(Clone)]
pub struct Supervisor {
    stop: CancellationToken,
    failure: Arc<Mutex<Option<String>>>,
}

impl Supervisor {
    pub fn new(stop: CancellationToken) -> Self {
        Supervisor { stop, failure: Arc::default() }
    }

    /// Runs `task` as `name`. The handle can be awaited or aborted (aborting it aborts the
    /// task). Returning `Ok` after the stop token fired is a normal end.
    pub fn spawn<F, E>(&self, name: &'static str, task: F) -> JoinHandle<()>
    where
        F: Future<Output = Result<(), E>> + Send + 'static,
        E: Display + Send + 'static,
    {
        let inner = tokio::spawn(task);
        let abort_inner = AbortOnDrop(inner.abort_handle());
        let this = self.clone();
        tokio::spawn(async move {
            let _abort_inner = abort_inner;
            let why = match inner.await {
                Ok(Ok(())) if this.stop.is_cancelled() => return,
                Ok(Ok(())) => "it ended while the service was running".to_string(),
                Ok(Err(e)) => e.to_string(),
                Err(e) if e.is_panic() => format!("it panicked: {}", panic_message(e.into_panic())),
                Err(_) => return,
            };
            this.fail(name, &why);
        })
    }

    /// Records a failure of `name` and stops the service.
    pub fn fail(&self, name: &str, why: &str) {
        error!(task = name, reason = %why, "A task of the service stopped; stopping the service.");
        let mut failure = self.failure.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        failure.get_or_insert_with(|| format!("{name}: {why}"));
        self.stop.cancel();
    }

    /// The first failure, if any: the service should exit non-zero with it.
    pub fn failure(&self) -> Option<String> {
        self.failure.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }
}

struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(payload) => payload.downcast_ref::<&str>().map_or("(no message)".to_string(), |s| s.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_panicking_task_stops_the_service_and_an_aborted_one_does_not() {
        let stop = CancellationToken::new();
        let sup = Supervisor::new(stop.clone());
        let quiet = sup.spawn("quiet", std::future::pending::<Result<(), String>>());
        quiet.abort();
        let _ = quiet.await;
        assert!(!stop.is_cancelled() && sup.failure().is_none());
        sup.spawn("worker", async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            if std::hint::black_box(true) {
                panic!("boom");
            }
            Ok::<(), String>(())
        });
        tokio::time::timeout(Duration::from_secs(5), stop.cancelled()).await.unwrap();
        assert_eq!(sup.failure().as_deref(), Some("worker: it panicked: boom"));
    }

    #[tokio::test]
    async fn a_task_returning_while_running_is_a_failure_but_not_after_stop() {
        let stop = CancellationToken::new();
        let sup = Supervisor::new(stop.clone());
        sup.spawn("early", async { Ok::<(), String>(()) }).await.unwrap();
        assert_eq!(sup.failure().as_deref(), Some("early: it ended while the service was running"));
        let sup = Supervisor::new(CancellationToken::new());
        sup.stop.cancel();
        sup.spawn("late", async { Ok::<(), String>(()) }).await.unwrap();
        assert!(sup.failure().is_none());
    }
}
