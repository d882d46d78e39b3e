//! The headers sent with every export request (`OTEL_EXPORTER_OTLP_HEADERS`, or its
//! metrics-specific variant): parsing in the specification's format, and values kept secret
//! (never in `Debug`, never in an error, marked sensitive on the wire).

use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue, MetadataMap};

/// The standard variables of the headers sent with every export; the metrics-specific one
/// wins (as a whole, as the OpenTelemetry SDKs read it).
pub const HEADERS_VARS: [&str; 2] = [
    "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
    "OTEL_EXPORTER_OTLP_HEADERS",
];

/// The gRPC metadata sent with every export request (object series and self-metrics), from
/// `OTEL_EXPORTER_OTLP_HEADERS`: typically `Authorization=Bearer%20<token>`. Values are
/// secrets: `Debug` shows the keys only, and each value is marked sensitive (never indexed
/// by HPACK, hidden from `Debug` of the metadata).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Headers(Vec<(AsciiMetadataKey, AsciiMetadataValue)>);

impl std::fmt::Debug for Headers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(k, _)| (k.as_str(), "***")))
            .finish()
    }
}

impl Headers {
    /// Reads the first of `OTEL_EXPORTER_OTLP_METRICS_HEADERS` and `OTEL_EXPORTER_OTLP_HEADERS`
    /// that is set and not empty.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Self, crate::Error> {
        for var in HEADERS_VARS {
            if let Some(text) = env(var).filter(|t| !t.trim().is_empty()) {
                return Self::parse(var, &text).map_err(crate::Error::Config);
            }
        }
        Ok(Self::default())
    }

    /// Parses the specification's format: `key=value` pairs separated by commas, values
    /// percent-decoded, blanks around keys and values ignored. The error names the variable,
    /// the entry and (once it is known to be a valid name) the key, never a value: a
    /// malformed entry may well be the token itself.
    pub fn parse(var: &str, text: &str) -> Result<Self, String> {
        let entries: Vec<&str> = text
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .collect();
        let total = entries.len();
        let mut headers = Vec::with_capacity(total);
        for (i, entry) in entries.into_iter().enumerate() {
            let n = i + 1;
            let bad = |what: &str| {
                format!(
                    "{var}: entry {n} of {total} {what}; write comma-separated key=value pairs \
                     with percent-encoded values, e.g. {var}=Authorization=Bearer%20<token> \
                     (values are not shown)"
                )
            };
            let Some((key, value)) = entry.split_once('=') else {
                return Err(bad("has no '='"));
            };
            let key = key.trim();
            if key.is_empty() {
                return Err(bad("has no key before '='"));
            }
            if key.to_ascii_lowercase().ends_with("-bin") {
                return Err(bad(
                    "is a binary header (key ending in -bin), which is not supported",
                ));
            }
            let name = AsciiMetadataKey::from_bytes(key.as_bytes()).map_err(|_| {
                bad("has a key that is not a header name (letters, digits, '-', '_', '.')")
            })?;
            let value = value.trim();
            if value.is_empty() {
                return Err(bad(&format!("({name}) has an empty value")));
            }
            let decoded = percent_decode(value).ok_or_else(|| {
                bad(&format!(
                    "({name}) has a '%' not followed by two hex digits"
                ))
            })?;
            if !decoded.iter().all(|b| (0x20..0x7f).contains(b)) {
                return Err(bad(&format!(
                    "({name}) decodes to characters a header cannot carry (only printable ASCII)"
                )));
            }
            let mut value = AsciiMetadataValue::try_from(decoded.as_slice())
                .map_err(|_| bad(&format!("({name}) is not a valid header value")))?;
            value.set_sensitive(true);
            headers.push((name, value));
        }
        Ok(Self(headers))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The keys, lower-cased (for logs).
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_str())
    }

    /// Appends the headers to a request's metadata.
    pub fn apply(&self, metadata: &mut MetadataMap) {
        for (key, value) in &self.0 {
            metadata.append(key.clone(), value.clone());
        }
    }

    /// The headers as metadata, for the SDK exporter's `with_metadata`.
    pub fn metadata(&self) -> MetadataMap {
        let mut metadata = MetadataMap::new();
        self.apply(&mut metadata);
        metadata
    }
}

/// Decodes `%XX` escapes; None for a `%` without two hex digits after it.
fn percent_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

#[cfg(test)]
#[path = "headers_tests.rs"]
mod tests;
