//! The last export before exiting ([`FinalExport`]): nothing (a standby, or a leader that
//! handed over), every value once more, or the troubled values once more and staleness
//! markers for every other delivered series, within a deadline; what did not get out is
//! said in one `warn` line.
//!
//! Nothing later retries the final export, so a request refused for a reason the collector
//! may recover from (its memory limiter's "high memory usage" or a full queue, both
//! `Unavailable`; `ResourceExhausted`, but not for a request too large; a timeout) is sent
//! again after a pause that doubles from 100 ms to 1 s, until it is accepted or the
//! deadline ends the export. A burst of markers (one per healthy series: 549,000 at 30,000
//! SeiNodes) fills the collector's queue faster than Prometheus drains it; the pauses let it
//! drain.

use std::time::Duration;

use tracing::{info, warn};

use super::{ExportKind, ObjectExporter, Sink};

impl<S: Sink> ObjectExporter<S> {
    /// The last export before exiting, within `deadline`.
    pub async fn finish(&mut self, last: FinalExport, deadline: Duration) {
        let kind = match last {
            FinalExport::Nothing => return,
            FinalExport::Full => ExportKind::Full,
            FinalExport::Retire => ExportKind::Retire,
        };
        self.finishing = true;
        let objects = self.delivered.len();
        let what = match kind {
            ExportKind::Retire => "the staleness markers (and troubled values)",
            _ => "the last values",
        };
        match tokio::time::timeout(deadline, self.export(kind)).await {
            Err(_) => warn!(
                ?deadline,
                kind = kind.as_str(),
                objects,
                "the final export did not finish in time: {what} of up to {objects} objects were \
                 not sent; exiting without them (series not marked stale go stale in \
                 Prometheus after its 5-minute lookback)"
            ),
            Ok(report) if report.failed_requests > 0 => warn!(
                kind = kind.as_str(),
                failed_requests = report.failed_requests,
                objects,
                "the final export failed: {what} of some of {objects} objects were not sent \
                 ({} of {} requests refused or timed out); exiting without them (series not \
                 marked stale go stale in Prometheus after its 5-minute lookback)",
                report.failed_requests,
                report.requests
            ),
            Ok(report) if report.resent_requests > 0 => info!(
                kind = kind.as_str(),
                requests = report.requests,
                resent = report.resent_requests,
                "the final export was delivered whole; the collector refused {} of its \
                 requests at first (sent again after a pause)",
                report.resent_requests
            ),
            Ok(_) => {}
        }
    }
}

/// The first pause before a refused request of the final export is sent again; it doubles
/// up to [`RESEND_MAX_PAUSE`].
pub(super) const RESEND_FIRST_PAUSE: Duration = Duration::from_millis(100);
pub(super) const RESEND_MAX_PAUSE: Duration = Duration::from_secs(1);

/// Whether a refusal may pass if the same request is sent again (the OTLP specification's
/// retryable codes); a request too large for the collector never will.
pub(super) fn may_recover(status: &tonic::Status) -> bool {
    use tonic::Code::*;
    match status.code() {
        Unavailable | DeadlineExceeded | Aborted | Cancelled => true,
        ResourceExhausted => !status.message().contains("larger than max"),
        _ => false,
    }
}

/// What the last export before exiting sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinalExport {
    /// Nothing: a standby, or a leader that handed the series over to a successor.
    Nothing,
    /// Every value once more; the series linger in Prometheus for its lookback.
    Full,
    /// No successor: the series of conditions that need attention once more (left to
    /// linger, so that their alerts are held until SeiConditionWatcherAbsent takes over),
    /// staleness markers for every other delivered series (a stopped watcher vouches for
    /// no healthy value).
    Retire,
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::FinalExport;
    use crate::conditions::ConditionStatus::True;
    use crate::export::objects::testkit::Harness;
    use crate::export::objects::{ExportKind, ObjectExporter, Sink};

    #[tokio::test]
    async fn the_final_export_sends_what_it_is_told() {
        let mut h = Harness::new(1 << 20);
        h.set(0, "v", &[("Ready", True, "A")], None);
        h.exporter.export(ExportKind::Full).await;
        h.recorder.take();
        h.exporter
            .finish(FinalExport::Nothing, Duration::from_secs(5))
            .await;
        assert!(h.recorder.take().is_empty(), "nothing");
        h.exporter
            .finish(FinalExport::Full, Duration::from_secs(5))
            .await;
        let points = h.recorder.take().concat();
        assert!(!points.is_empty() && points.iter().all(|p| p.value.is_some()));
        h.exporter
            .finish(FinalExport::Retire, Duration::from_secs(5))
            .await;
        let points = h.recorder.take().concat();
        assert_eq!(points.len(), 2, "v's Ready pair and its since: {points:?}");
        assert!(points.iter().all(|p| p.value.is_none()));
        assert_eq!(h.exporter.delivered(), 0);
    }

    /// A collector that never answers.
    struct Silent;

    impl Sink for Silent {
        async fn send(&mut self, _: bytes::Bytes) -> Result<(), tonic::Status> {
            std::future::pending().await
        }
    }

    /// A collector whose memory limiter refuses the first `refusals` requests, with the
    /// collector's own status and message, then accepts into `recorder`.
    struct Limited {
        refusals: usize,
        status: fn() -> tonic::Status,
        recorder: crate::export::objects::testkit::Recorder,
    }

    impl Sink for Limited {
        async fn send(&mut self, request: bytes::Bytes) -> Result<(), tonic::Status> {
            if self.refusals > 0 {
                self.refusals -= 1;
                return Err((self.status)());
            }
            self.recorder.send(request).await
        }
    }

    fn high_memory() -> tonic::Status {
        tonic::Status::unavailable("data refused due to high memory usage")
    }

    fn too_large() -> tonic::Status {
        tonic::Status::resource_exhausted("grpc: received message larger than max (5 vs. 4)")
    }

    fn limited(
        h: &Harness,
        refusals: usize,
        status: fn() -> tonic::Status,
    ) -> ObjectExporter<Limited> {
        ObjectExporter::new(
            h.shared.clone(),
            Limited {
                refusals,
                status,
                recorder: h.recorder.clone(),
            },
            h.exporter.encoder.clone(),
            Arc::new(crate::export::failure_log()),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn a_final_export_refused_for_memory_is_sent_again_until_accepted() {
        let h = Harness::new(1 << 20);
        h.set(0, "v", &[("Ready", True, "A")], None);
        let mut exporter = limited(&h, 0, high_memory);
        exporter.export(ExportKind::Full).await;
        h.recorder.take();
        exporter.sink.refusals = 4;
        let start = tokio::time::Instant::now();
        exporter
            .finish(FinalExport::Retire, Duration::from_secs(15))
            .await;
        let points = h.recorder.take().concat();
        assert_eq!(points.len(), 2, "the markers got through: {points:?}");
        assert!(points.iter().all(|p| p.value.is_none()));
        assert_eq!(exporter.delivered(), 0);
        // 0.1 + 0.2 + 0.4 + 0.8 s of pauses.
        assert_eq!(start.elapsed(), Duration::from_millis(1_500));
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_too_large_is_not_sent_again_and_other_exports_never_wait() {
        let h = Harness::new(1 << 20);
        h.set(0, "v", &[("Ready", True, "A")], None);
        let mut exporter = limited(&h, 1, too_large);
        let start = tokio::time::Instant::now();
        exporter
            .finish(FinalExport::Full, Duration::from_secs(15))
            .await;
        assert!(
            h.recorder.take().is_empty(),
            "refused once, never sent again"
        );
        assert_eq!(start.elapsed(), Duration::ZERO);

        // Before the final export, a refusal waits for the next export.
        let mut exporter = limited(&h, 1, high_memory);
        let report = exporter.export(ExportKind::Full).await;
        assert_eq!((report.failed_requests, report.resent_requests), (1, 0));
        assert_eq!(start.elapsed(), Duration::ZERO);
    }

    /// Issue 19 item 9: at 30,000 SeiNodes a collector out of memory was sent every refused
    /// key again each second (14 requests of 2 MiB, all decoded, all refused: 4.1 million
    /// points refused in 79 s). The first refusal it may recover from holds the rest of the
    /// export, and the tick sends the refused keys again only after a pause that doubles.
    #[tokio::test(start_paused = true)]
    async fn a_refusal_for_memory_holds_the_rest_and_the_retries_pause() {
        // One object per request.
        let h = Harness::new(1);
        for i in 0..10 {
            h.set(0, &format!("v{i}"), &[("Ready", True, "A")], None);
        }
        let mut exporter = limited(&h, usize::MAX, high_memory);
        let report = exporter.export(ExportKind::Changes).await;
        assert_eq!(
            (
                report.requests,
                report.failed_requests,
                report.held_requests
            ),
            (1, 1, 9)
        );
        assert_eq!(exporter.retry.len(), 10, "every key waits for a retry");
        let (shared, recorder) = (h.shared.clone(), h.recorder.clone());
        let task = tokio::spawn(async move {
            exporter
                .run(Duration::from_secs(3600), std::future::pending())
                .await;
        });
        // Ticks every second for a minute: the refused keys go again after pauses of
        // 1, 2, 4, 8, 16, 16 s (the first 60 slices of an hour-long cycle of 10 objects
        // are empty, so every request is a retry).
        let objects = crate::stats::ExportStage::Objects;
        let before = shared.stats.export_errors.get(objects);
        tokio::time::sleep(Duration::from_millis(60_500)).await;
        let refused = shared.stats.export_errors.get(objects) - before;
        task.abort();
        assert_eq!(
            refused, 6,
            "refused requests in 60 s of ticks: the retries at 1, 3, 7, 15, 31 and 47 s, one \
             request each, not one retry a second"
        );
        assert!(recorder.take().is_empty());
    }

    /// Once any export is taken whole, the collector is back: the refused changes go at the
    /// next tick, not after the rest of the pause (up to 16 s).
    #[tokio::test(start_paused = true)]
    async fn an_accepted_export_ends_the_retry_pause() {
        let h = Harness::new(1);
        for i in 0..10 {
            h.set(0, &format!("v{i}"), &[("Ready", True, "A")], None);
        }
        let mut exporter = limited(&h, 1, high_memory);
        exporter.export(ExportKind::Changes).await;
        assert!(exporter.retry_after.is_some(), "refused: a pause");
        let report = exporter
            .export(ExportKind::Refresh {
                slice: 0,
                slices: 1,
            })
            .await;
        assert_eq!((report.requests, report.failed_requests), (10, 0));
        assert!(exporter.retry_after.is_none(), "accepted: no pause");
        assert_eq!(
            exporter.retry.len(),
            10,
            "still to be sent, at the next tick"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_final_export_that_gets_no_answer_gives_up_at_the_deadline() {
        let h = Harness::new(1 << 20);
        h.set(0, "v", &[("Ready", True, "A")], None);
        let mut exporter = ObjectExporter::new(
            h.shared.clone(),
            Silent,
            h.exporter.encoder.clone(),
            Arc::new(crate::export::failure_log()),
        );
        let start = tokio::time::Instant::now();
        exporter
            .finish(FinalExport::Full, Duration::from_secs(3))
            .await;
        assert_eq!(start.elapsed(), Duration::from_secs(3));
        assert_eq!(exporter.delivered(), 0, "nothing was accepted");
    }
}
