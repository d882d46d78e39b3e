//! Cuts encoded object series into requests no larger than a byte budget, one request at a
//! time, so that only the request being sent is held in memory.
//!
//! ```text
//!   [ObjectUpdate { key, values, stale }] ──Chunker──▶ [Chunk { request, objects: 0..k }]
//!        one object's points never span two requests, so a reason change (the new pair's
//!        value and the old pair's marker) always lands in Prometheus at one timestamp
//! ```

use super::encode::{points_of, Builder, Encoder, ObjectUpdate};

/// One request and which updates (by position in the input) it carries. Updates with no
/// point may fall outside every chunk: they need no delivery.
#[derive(Debug)]
pub struct Chunk {
    /// An `ExportMetricsServiceRequest`, encoded.
    pub request: bytes::Bytes,
    pub objects: std::ops::Range<usize>,
    /// Staleness markers in this request.
    pub markers: usize,
    /// Uncompressed size, as the collector's receive limit counts it.
    pub bytes: usize,
}

/// Room kept for the request's envelope (resource, scope, metric names and descriptions):
/// the budget is checked on points, this keeps the whole request below it.
const ENVELOPE_BYTES: usize = 16 * 1024;

impl Encoder {
    /// Encodes `updates` at time `now_nanos` into as few requests as the budget allows
    /// (all at once, for the tests; the exporter streams with [`Chunker`]).
    #[cfg(test)]
    pub fn encode(&self, updates: &[ObjectUpdate<'_>], now_nanos: u64) -> Vec<Chunk> {
        let mut chunker = self.chunker(now_nanos);
        let mut chunks: Vec<Chunk> = updates
            .iter()
            .filter_map(|update| chunker.push(update))
            .collect();
        chunks.extend(chunker.finish());
        chunks
    }

    /// A chunker that cuts requests one at a time, so that only one request is held in
    /// memory while it is sent: a full export of 200,000 series would otherwise hold every
    /// request's structures at once (about 90 MB).
    pub fn chunker(&self, now_nanos: u64) -> Chunker<'_> {
        Chunker {
            encoder: self,
            now_nanos,
            budget: self.max_request_bytes.saturating_sub(ENVELOPE_BYTES).max(1),
            builder: Builder::default(),
            first: 0,
            next: 0,
        }
    }

    fn finish(&self, builder: Builder, objects: std::ops::Range<usize>) -> Chunk {
        let markers = builder.markers;
        let request = self.request(builder);
        Chunk {
            bytes: request.len(),
            request: request.into(),
            objects,
            markers,
        }
    }
}

/// Takes updates one by one (numbered in the order pushed) and hands back a request each
/// time the next update would not fit in the budget.
pub struct Chunker<'e> {
    encoder: &'e Encoder,
    now_nanos: u64,
    budget: usize,
    builder: Builder,
    /// Number of the first update in the request being built.
    first: usize,
    /// Number of the next update pushed.
    next: usize,
}

impl Chunker<'_> {
    /// Adds one object's points; returns the finished previous request if they did not fit.
    pub fn push(&mut self, update: &ObjectUpdate<'_>) -> Option<Chunk> {
        let i = self.next;
        self.next += 1;
        let size: usize = points_of(update, self.encoder.cluster_label.as_deref())
            .map(|p| p.encoded_len())
            .sum();
        let mut done = None;
        if self.builder.bytes > 0 && self.builder.bytes + size > self.budget {
            let builder = std::mem::take(&mut self.builder);
            done = Some(self.encoder.finish(builder, self.first..i));
            self.first = i;
        }
        self.builder.bytes += size;
        for point in points_of(update, self.encoder.cluster_label.as_deref()) {
            self.builder.push(&point, self.now_nanos);
        }
        done
    }

    /// The last request, if it has any point. Updates without any point (an object with no
    /// conditions) need no request; the last chunk's range covers trailing ones.
    pub fn finish(self) -> Option<Chunk> {
        (self.builder.bytes > 0).then(|| self.encoder.finish(self.builder, self.first..self.next))
    }
}

#[cfg(test)]
mod tests {
    use crate::conditions::ConditionStatus;
    use crate::export::objects::encode::tests::{encoder, gauge, key, metrics};
    use crate::export::objects::encode::ObjectUpdate;
    use crate::export::objects::series::Series;
    use crate::index::ObjectKey;
    use crate::resource::ResourceSpec;

    #[test]
    fn requests_stay_under_the_budget_and_objects_are_not_split() {
        let seinode = ResourceSpec::defaults()[0].known().unwrap();
        let keys: Vec<ObjectKey> = (0..10_000).map(|i| key(&format!("node-{i:05}"))).collect();
        let types: Vec<Series> = (0..9)
            .map(|t| Series::Condition {
                type_: format!("Type{t}Ready").into(),
                status: ConditionStatus::True,
                reason: "Validated".into(),
            })
            .collect();
        let updates: Vec<ObjectUpdate> = keys
            .iter()
            .map(|k| ObjectUpdate {
                key: k,
                resource: &seinode,
                values: types.iter().map(|s| (s.clone(), 1)).collect(),
                stale: vec![],
            })
            .collect();
        let max = 1 << 20;
        let chunks = encoder(max).encode(&updates, 1);
        assert!(chunks.len() > 5, "{} chunks", chunks.len());
        let mut next = 0;
        let mut points = 0;
        for c in &chunks {
            assert!(c.bytes <= max, "{} > {max}", c.bytes);
            assert_eq!(c.bytes, c.request.len());
            assert_eq!(c.objects.start, next, "contiguous, every object once");
            next = c.objects.end;
            points += metrics(c).iter().map(|m| gauge(m).len()).sum::<usize>();
            assert_eq!(
                metrics(c).iter().map(|m| gauge(m).len()).sum::<usize>(),
                c.objects.len() * 9,
                "whole objects"
            );
        }
        assert_eq!(next, 10_000);
        assert_eq!(points, 90_000, "nothing folded, nothing lost");
    }

    #[test]
    fn nothing_to_say_is_no_request() {
        assert!(encoder(1 << 20).encode(&[], 1).is_empty());
    }
}
