//! Protobuf wire format, written by hand for the one message shape the object exporter
//! sends: an `ExportMetricsServiceRequest` of gauges with string attributes.
//!
//! ```text
//!   request        1: ResourceMetrics { 1: Resource, 2: ScopeMetrics { 1: scope, 2: Metric* } }
//!   Metric         1: name, 3: unit, 5: Gauge { 1: NumberDataPoint* }
//!   NumberDataPoint 3: time (fixed64), 6: as_int (sfixed64), 7: KeyValue*, 8: flags
//!   KeyValue       1: key, 2: AnyValue { 1: string_value }
//! ```
//!
//! Building prost structs for a full export meant a `String` per label per point and the
//! nested `encoded_len` walked again at every level; the profile put that, with the
//! allocator, at half of a full export's instructions. Points are written straight into
//! bytes here, in the field order prost uses, so the bytes are the same as prost's (the
//! tests compare them).

use std::sync::Arc;

/// A field of wire type 2 (length-delimited), for field numbers below 16: one tag byte.
const fn len_tag(field: u8) -> u8 {
    (field << 3) | 2
}

pub(super) const TIME: u8 = (3 << 3) | 1; // fixed64
pub(super) const AS_INT: u8 = (6 << 3) | 1; // sfixed64
pub(super) const FLAGS: u8 = 8 << 3; // varint
/// Field 1 of a message, length-delimited: `resource_metrics`, `resource`, `scope`,
/// `Metric.name`, `Gauge.data_points`, `KeyValue.key`, `AnyValue.string_value`.
pub(super) const FIRST: u8 = len_tag(1);
/// Field 2, length-delimited: `scope_metrics`, `metrics`, `KeyValue.value`.
pub(super) const SECOND: u8 = len_tag(2);
pub(super) const UNIT: u8 = len_tag(3);
pub(super) const GAUGE: u8 = len_tag(5);
pub(super) const ATTRIBUTE: u8 = len_tag(7);

pub(super) fn varint_len(v: u64) -> usize {
    // 1 byte per 7 bits, at least one.
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

pub(super) fn varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

/// Size of a length-delimited field with a one-byte tag and `len` bytes of content.
pub(super) fn field_len(len: usize) -> usize {
    1 + varint_len(len as u64) + len
}

/// Tag and length of a length-delimited field; its content follows.
pub(super) fn open(buf: &mut Vec<u8>, tag: u8, len: usize) {
    buf.push(tag);
    varint(buf, len as u64);
}

pub(super) fn bytes_field(buf: &mut Vec<u8>, tag: u8, data: &[u8]) {
    open(buf, tag, data.len());
    buf.extend_from_slice(data);
}

/// Size of a `KeyValue` with a string value.
fn attribute_body_len(key: &str, value: &str) -> usize {
    field_len(key.len()) + field_len(field_len(value.len()))
}

/// Size of a `NumberDataPoint` with these labels: a value if `Some`, else a staleness
/// marker (no value, flags = no recorded value).
pub(super) fn point_len(
    labels: &[(&str, &str)],
    extra: &[(Arc<str>, Arc<str>)],
    value: Option<i64>,
) -> usize {
    let attributes: usize = labels
        .iter()
        .copied()
        .chain(extra.iter().map(|(k, v)| (&**k, &**v)))
        .map(|(k, v)| field_len(attribute_body_len(k, v)))
        .sum();
    9 + if value.is_some() { 9 } else { 2 } + attributes
}

/// Writes one `data_points` entry of a `Gauge`: tag, length and the point; its attributes
/// are `labels`, then `extra` (the info series' copied labels).
pub(super) fn point(
    buf: &mut Vec<u8>,
    labels: &[(&str, &str)],
    extra: &[(Arc<str>, Arc<str>)],
    time: u64,
    value: Option<i64>,
) {
    open(buf, FIRST, point_len(labels, extra, value));
    buf.push(TIME);
    buf.extend_from_slice(&time.to_le_bytes());
    if let Some(v) = value {
        buf.push(AS_INT);
        buf.extend_from_slice(&v.to_le_bytes());
    }
    let extra = extra.iter().map(|(k, v)| (&**k, &**v));
    for (key, value) in labels.iter().copied().chain(extra) {
        open(buf, ATTRIBUTE, attribute_body_len(key, value));
        bytes_field(buf, FIRST, key.as_bytes());
        open(buf, SECOND, field_len(value.len()));
        bytes_field(buf, FIRST, value.as_bytes());
    }
    if value.is_none() {
        buf.push(FLAGS);
        // DataPointFlags::NoRecordedValueMask
        buf.push(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_as_prost_writes_them() {
        for v in [
            0u64,
            1,
            127,
            128,
            300,
            16_383,
            16_384,
            u32::MAX as u64,
            u64::MAX,
        ] {
            let mut ours = Vec::new();
            varint(&mut ours, v);
            let mut theirs = Vec::new();
            prost::encoding::encode_varint(v, &mut theirs);
            assert_eq!(ours, theirs, "{v}");
            assert_eq!(varint_len(v), theirs.len(), "{v}");
        }
    }
}
