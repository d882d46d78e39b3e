//! The last export before exiting ([`FinalExport`]): nothing (a standby, or a leader that
//! handed over), every value once more, or the troubled values once more and staleness
//! markers for every other delivered series, within a deadline; what did not get out is
//! said in one `warn` line.

use std::time::Duration;

use tracing::warn;

use super::objects::{ExportKind, ObjectExporter, Sink};

impl<S: Sink> ObjectExporter<S> {
    /// The last export before exiting, within `deadline`.
    pub async fn finish(&mut self, last: FinalExport, deadline: Duration) {
        let kind = match last {
            FinalExport::Nothing => return,
            FinalExport::Full => ExportKind::Full,
            FinalExport::Retire => ExportKind::Retire,
        };
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
            Ok(_) => {}
        }
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
    use crate::export::objects::{ExportKind, ObjectExporter, Sink};
    use crate::export::testkit::Harness;
    use crate::seinode::ConditionStatus::True;

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
