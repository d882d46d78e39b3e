//! One export: for each target, the values of its current state and staleness markers for
//! the series its last delivered state had that are gone, encoded and sent chunk by chunk.
//!
//! ```text
//!   targets (targets.rs) ──▶ values = series_of(now)
//!                            stale  = series_of(delivered) - values (+ recent: standby.rs)
//!                        ──▶ Chunker (chunk.rs) ──▶ Sink ──▶ accepted: delivered[key] = now
//!                                                         └▶ refused: delivered unchanged
//! ```
//!
//! A chunk the collector refused changes nothing in `delivered`, so the next export
//! computes the same markers again; keys of a refused change export are retried with the
//! next one. Only the leader sends; a standby's export is dry (standby.rs).

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::debug;

use super::encode::{Chunk, ObjectUpdate};
use super::series::{series_of, troubled_series_of, vanished};
use super::{ExportKind, ObjectExporter, Report, Sink, RETRY_FIRST_PAUSE, RETRY_MAX_PAUSE};
use crate::export::failures::Failing;
use crate::index::ObjectState;

impl<S: Sink> ObjectExporter<S> {
    /// One export of `kind`; never fails: refused requests are counted, logged and retried
    /// by later exports.
    pub async fn export(&mut self, kind: ExportKind) -> Report {
        let targets = self.targets(kind);
        if kind != ExportKind::Retire && !self.shared.is_leader() {
            self.shadow(targets);
            return Report::default();
        }
        let resources = self.shared.resources();
        // Per target: the state to remember once delivered, and how many values it sends.
        let mut outcomes: Vec<(Option<Arc<ObjectState>>, usize)> =
            Vec::with_capacity(targets.len());
        let mut refused = vec![false; targets.len()];
        let mut report = Report::default();
        // A copy (a few strings), so that sending can borrow the exporter mutably.
        let encoder = self.encoder.clone();
        let mut chunker = encoder.chunker(unix_nanos(SystemTime::now()));
        let mut pending = Vec::new();
        // Requests are cut and sent one at a time (see `Encoder::chunker`); a target whose
        // resource is not resolved (cannot happen once indexed) is skipped as delivered.
        for (key, now) in &targets {
            let Some(Some(resource)) = resources.get(key.resource.0 as usize) else {
                outcomes.push((now.clone(), 0));
                continue;
            };
            let values = match (kind, now) {
                (_, None) => Vec::new(),
                (ExportKind::Retire, Some(state)) => troubled_series_of(state, resource.is_seinode),
                (_, Some(state)) => series_of(state, resource.is_seinode),
            };
            let mut stale = match self.delivered.get(key) {
                Some(old)
                    if now.as_ref().is_some_and(|n| Arc::ptr_eq(n, old))
                        && kind != ExportKind::Retire =>
                {
                    Vec::new()
                }
                Some(old) => vanished(&series_of(old, resource.is_seinode), &values),
                None => Vec::new(),
            };
            // After a takeover: whatever the old leader may have sent and is not current.
            self.mark_recent(key, resource.is_seinode, &values, &mut stale);
            let remember = if kind == ExportKind::Retire {
                None
            } else {
                now.clone()
            };
            outcomes.push((remember, values.len()));
            let update = ObjectUpdate {
                key,
                resource,
                values,
                stale,
            };
            if let Some(chunk) = chunker.push(&update) {
                pending.push(chunk);
            }
            for chunk in pending.drain(..) {
                self.send_chunk(kind, chunk, &outcomes, &mut refused, &mut report)
                    .await;
            }
        }
        if let Some(chunk) = chunker.finish() {
            self.send_chunk(kind, chunk, &outcomes, &mut refused, &mut report)
                .await;
        }
        let updates = targets.iter().zip(outcomes);
        for (((key, _), (state, _)), refused) in updates.zip(refused) {
            if refused {
                if kind == ExportKind::Changes {
                    self.retry.insert(key.clone());
                }
                continue;
            }
            self.recent.remove(key);
            match state {
                Some(state) => {
                    self.delivered.insert(key.clone(), state);
                }
                None => {
                    self.delivered.remove(key);
                }
            }
        }
        // The pause before refused changes go again: set or doubled by a refused change
        // export, ended by any export the collector took whole (it is back: the refused
        // changes go at the next tick, as before the pause existed).
        let accepted = report.requests > 0 && report.failed_requests == 0;
        if kind == ExportKind::Changes || accepted {
            self.retry_after = match (
                report.failed_requests + report.held_requests,
                self.retry_after,
            ) {
                (0, _) => None,
                (_, None) => Some((
                    tokio::time::Instant::now() + RETRY_FIRST_PAUSE,
                    RETRY_FIRST_PAUSE,
                )),
                (_, Some((_, pause))) => {
                    let pause = (pause * 2).min(RETRY_MAX_PAUSE);
                    Some((tokio::time::Instant::now() + pause, pause))
                }
            };
        }
        if report.failed_requests == 0 {
            // A full export delivers everything a change export would have.
            let covers: &[Failing] = match kind {
                ExportKind::Full => &[Failing::Changes],
                _ => &[],
            };
            self.failures.succeeded(kind.failing(), covers);
            if report.requests > 0 {
                self.shared
                    .stats
                    .exports
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
        self.shared
            .stats
            .staleness_markers
            .fetch_add(report.markers as u64, std::sync::atomic::Ordering::Relaxed);
        debug!(kind = kind.as_str(), ?report, "exported object series");
        report
    }

    /// Sends one request and accounts for it: delivered values and markers, or a refusal
    /// that marks its objects as not delivered.
    async fn send_chunk(
        &mut self,
        kind: ExportKind,
        chunk: Chunk,
        outcomes: &[(Option<Arc<ObjectState>>, usize)],
        refused: &mut [bool],
        report: &mut Report,
    ) {
        let range = chunk.objects.clone();
        if report.holding {
            report.held_requests += 1;
            refused[range].iter_mut().for_each(|r| *r = true);
            return;
        }
        report.requests += 1;
        let (markers, bytes) = (chunk.markers, chunk.bytes);
        let mut pause = super::finish::RESEND_FIRST_PAUSE;
        let sent = loop {
            match self.sink.send(chunk.request.clone()).await {
                Err(status) if self.finishing && super::finish::may_recover(&status) => {
                    report.resent_requests += 1;
                    debug!(status = %status_text(&status), ?pause, "final export: request refused, sending it again");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(super::finish::RESEND_MAX_PAUSE);
                }
                sent => break sent,
            }
        };
        match sent {
            Ok(()) => {
                report.markers += markers;
                report.bytes += bytes;
                report.values += outcomes[range].iter().map(|(_, n)| n).sum::<usize>();
            }
            Err(status) => {
                report.failed_requests += 1;
                // The rest of this export waits for a later one (never the final export:
                // it resends above until its deadline).
                report.holding |= super::finish::may_recover(&status);
                self.shared
                    .stats
                    .export_errors
                    .inc(crate::stats::ExportStage::Objects);
                self.failures.failed(
                    kind.failing(),
                    &format_args!("{} ({bytes} bytes)", status_text(&status)),
                );
                refused[range].iter_mut().for_each(|r| *r = true);
            }
        }
    }
}

fn status_text(status: &tonic::Status) -> String {
    format!("{:?}: {}", status.code(), status.message())
}

fn unix_nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

#[cfg(test)]
mod tests;
