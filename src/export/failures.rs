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
use crate::stats::{label, Label};

/// How often a persisting export failure is logged again at `warn`: an outage costs a line
/// every few minutes, not one per export.
pub const LOG_INTERVAL: Duration = Duration::from_secs(300);

label! {
    /// What kind of export failed: one of the object exports, or the SDK's export of the
    /// self-metrics (the `export` field of the log lines).
    Failing: "export" {
        Full = "full",
        Refresh = "refresh",
        Changes = "changes",
        Retire = "retire",
        SelfMetrics = "self",
    }
}

/// Failure bookkeeping for every kind of export, shared by every exporter of the process:
/// an outage is logged once, whichever kinds fail during it.
#[derive(Debug, Default)]
pub(crate) struct FailureLog {
    state: Mutex<Outages>,
}

#[derive(Debug, Default)]
struct Outages {
    /// Since when each kind has been failing.
    since: [Option<Instant>; Failing::ALL.len()],
    /// When the outage began: the first failure while no kind was failing.
    began: Option<Instant>,
    /// When the outage was last logged at `warn`.
    last_logged: Option<Instant>,
}

impl FailureLog {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Records a failure; returns whether it was logged.
    pub(crate) fn failed(&self, kind: Failing, error: &dyn std::fmt::Display) -> bool {
        let now = Instant::now();
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.began.get_or_insert(now);
        state.since[kind.position()].get_or_insert(now);
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
            export = kind.as_str(),
            "OTLP export to the collector failed{hint}: {text}; the watch continues and the next export retries"
        );
        true
    }

    /// Records a success of `kind`, which also stands for the kinds in `covers` (a full
    /// export delivers everything a change export would have); when no kind is failing
    /// any more, logs the recovery and returns how long the outage lasted (from its first
    /// failure).
    pub(crate) fn succeeded(&self, kind: Failing, covers: &[Failing]) -> Option<Duration> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut was_failing = false;
        for k in std::iter::once(kind).chain(covers.iter().copied()) {
            was_failing |= state.since[k.position()].take().is_some();
        }
        if !was_failing || state.since.iter().any(Option::is_some) {
            // Nothing was failing, or another kind still fails (a full export refused while
            // small ones get through): not recovered.
            return None;
        }
        state.last_logged = None;
        let failing_for = state.began.take().map_or(Duration::ZERO, |t| t.elapsed());
        info!(
            export = kind.as_str(),
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
        let log = FailureLog::new();
        assert!(log.failed(Failing::Full, &"ResourceExhausted"));
        assert!(
            !log.failed(Failing::Full, &"ResourceExhausted"),
            "rate-limited"
        );
        assert!(
            !log.failed(Failing::SelfMetrics, &"Unavailable"),
            "one line for the whole outage"
        );
        assert!(!log.failed(Failing::Changes, &"Unavailable"));
        assert_eq!(
            log.succeeded(Failing::Changes, &[]),
            None,
            "full and self still fail"
        );
        assert_eq!(
            log.succeeded(Failing::SelfMetrics, &[]),
            None,
            "full still fails"
        );
        assert!(
            log.succeeded(Failing::Full, &[]).is_some(),
            "now everything that failed succeeded"
        );
        assert_eq!(log.succeeded(Failing::Full, &[]), None, "recovered once");
        assert!(
            log.failed(Failing::Changes, &"again"),
            "a new outage logs again"
        );
        // No change export after the outage: the full export that got through covers it.
        assert!(log.succeeded(Failing::Full, &[Failing::Changes]).is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_kind_is_logged_again_once_per_period() {
        let log = FailureLog::new();
        let minute = Duration::from_secs(60);
        let mut logged = Vec::new();
        // One failure a minute for 12 minutes: lines at 0, 5 and 10 minutes.
        for at in 0..12 {
            if log.failed(Failing::Full, &"Unavailable") {
                logged.push(at);
            }
            assert!(!log.failed(Failing::Changes, &"Unavailable"), "same outage");
            tokio::time::advance(minute).await;
        }
        assert_eq!(logged, [0, 5, 10]);
        assert_eq!(
            log.succeeded(Failing::Changes, &[]),
            None,
            "full exports still fail"
        );
        assert_eq!(
            log.succeeded(Failing::Full, &[]),
            Some(12 * minute),
            "the outage's length counts from its first failure, not its last line"
        );
        assert!(
            log.failed(Failing::Full, &"Unavailable"),
            "a new outage, at once"
        );
    }
}
