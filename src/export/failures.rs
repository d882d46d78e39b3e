//! Export failures in the log: one `warn` line when a kind of export starts failing (and
//! again every [`LOG_INTERVAL`] while it keeps failing), one `info` line with the outage's
//! length when that same kind of export succeeds again. Every failure is also counted in
//! `export_errors_total{stage}`.
//!
//! One outage is one line, whichever kinds fail in it. Kinds are tracked apart so that a
//! small change-only export that gets through while full exports are refused (too large,
//! say) does not announce a recovery that did not happen.

use std::sync::Mutex;
use std::time::Duration;

// tokio's clock (the std one outside a runtime, or without tokio's test-util), so that the
// rate limit can be tested under `tokio::time::pause()`.
use tokio::time::Instant;
use tracing::{info, warn};

use super::hint::export_hint;

/// How often a persisting export failure is logged again at `warn`: an outage costs a line
/// every few minutes, not one per export.
pub const LOG_INTERVAL: Duration = Duration::from_secs(300);

/// Failure bookkeeping for `N` kinds of export (named by the caller), shared by every
/// exporter of the process: an outage is logged once, whichever kinds fail during it.
#[derive(Debug)]
pub struct FailureLog<const N: usize> {
    kinds: [&'static str; N],
    state: Mutex<Outages<N>>,
}

#[derive(Debug)]
struct Outages<const N: usize> {
    /// Since when each kind has been failing.
    since: [Option<Instant>; N],
    /// When the outage was last logged at `warn`.
    last_logged: Option<Instant>,
}

impl<const N: usize> FailureLog<N> {
    pub fn new(kinds: [&'static str; N]) -> Self {
        Self {
            kinds,
            state: Mutex::new(Outages {
                since: [None; N],
                last_logged: None,
            }),
        }
    }

    fn at(&self, kind: &str) -> usize {
        // Callers pass one of their own constant kinds; an unknown one shares the first slot.
        self.kinds.iter().position(|k| *k == kind).unwrap_or(0)
    }

    /// Records a failure; returns whether it was logged.
    pub fn failed(&self, kind: &'static str, error: &dyn std::fmt::Display) -> bool {
        let now = Instant::now();
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let at = self.at(kind);
        state.since[at].get_or_insert(now);
        if state
            .last_logged
            .is_some_and(|at| now.duration_since(at) < LOG_INTERVAL)
        {
            return false;
        }
        state.last_logged = Some(now);
        let text = error.to_string();
        let hint = export_hint(&text)
            .map(|h| format!(" ({h})"))
            .unwrap_or_default();
        warn!(
            export = kind,
            "OTLP export to the collector failed{hint}: {text}; the watch continues and the next export retries"
        );
        true
    }

    /// Records a success of `kind`, which also stands for the kinds in `covers` (a full
    /// export delivers everything a change export would have); when no kind is failing
    /// any more, logs the recovery and returns how long the outage lasted.
    pub fn succeeded(&self, kind: &'static str, covers: &[&'static str]) -> Option<Duration> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut was_failing = false;
        for k in std::iter::once(kind).chain(covers.iter().copied()) {
            let at = self.at(k);
            was_failing |= state.since[at].take().is_some();
        }
        if !was_failing || state.since.iter().any(Option::is_some) {
            // Nothing was failing, or another kind still fails (a full export refused while
            // small ones get through): not recovered.
            return None;
        }
        let failing_for = state
            .last_logged
            .take()
            .map_or(Duration::ZERO, |t| t.elapsed());
        info!(
            export = kind,
            ?failing_for,
            "OTLP export to the collector recovered"
        );
        Some(failing_for)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_outage_and_recovery_only_when_what_failed_succeeds() {
        let log = FailureLog::new(["full", "changes", "self"]);
        assert!(log.failed("full", &"ResourceExhausted"));
        assert!(!log.failed("full", &"ResourceExhausted"), "rate-limited");
        assert!(
            !log.failed("self", &"Unavailable"),
            "one line for the whole outage"
        );
        assert!(!log.failed("changes", &"Unavailable"));
        assert_eq!(
            log.succeeded("changes", &[]),
            None,
            "full and self still fail"
        );
        assert_eq!(log.succeeded("self", &[]), None, "full still fails");
        assert!(
            log.succeeded("full", &[]).is_some(),
            "now everything that failed succeeded"
        );
        assert_eq!(log.succeeded("full", &[]), None, "recovered once");
        assert!(log.failed("changes", &"again"), "a new outage logs again");
        // No change export after the outage: the full export that got through covers it.
        assert!(log.succeeded("full", &["changes"]).is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_kind_is_logged_again_once_per_period() {
        let log = FailureLog::new(["full", "changes"]);
        let minute = Duration::from_secs(60);
        let mut logged = Vec::new();
        // One failure a minute for 12 minutes: lines at 0, 5 and 10 minutes.
        for at in 0..12 {
            if log.failed("full", &"Unavailable") {
                logged.push(at);
            }
            assert!(!log.failed("changes", &"Unavailable"), "same outage");
            tokio::time::advance(minute).await;
        }
        assert_eq!(logged, [0, 5, 10]);
        assert_eq!(
            log.succeeded("changes", &[]),
            None,
            "full exports still fail"
        );
        assert!(log.succeeded("full", &[]).is_some());
        assert!(log.failed("full", &"Unavailable"), "a new outage, at once");
    }
}
