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
mod tests {
    //! Headers from the environment: the format, which variable wins, errors that never show
    //! a value, and `Debug` output without secrets.

    use tonic::metadata::MetadataMap;

    use super::*;
    use crate::export::ExportConfig;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn pairs(headers: &Headers) -> Vec<(String, String)> {
        headers
            .0
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
            .collect()
    }

    #[test]
    fn headers_in_the_specification_format() {
        let headers = Headers::parse(
            "V",
            " Authorization = Bearer%20s3cr%3Dt , x-tenant=a%2Cb,,API-Key=k==",
        )
        .unwrap();
        assert_eq!(
            pairs(&headers),
            [
                ("authorization".into(), "Bearer s3cr=t".into()),
                ("x-tenant".into(), "a,b".into()),
                ("api-key".into(), "k==".into()),
            ]
        );
        assert!(headers.0.iter().all(|(_, v)| v.is_sensitive()));
        let mut metadata = MetadataMap::new();
        headers.apply(&mut metadata);
        assert_eq!(metadata.get("authorization").unwrap(), "Bearer s3cr=t");
        assert_eq!(headers.metadata().len(), 3);
        assert_eq!(
            headers.keys().collect::<Vec<_>>(),
            ["authorization", "x-tenant", "api-key"]
        );
    }

    #[test]
    fn the_metrics_variable_wins_as_a_whole() {
        let env = env_of(&[
            ("OTEL_EXPORTER_OTLP_HEADERS", "a=1,b=2"),
            ("OTEL_EXPORTER_OTLP_METRICS_HEADERS", "b=3"),
        ]);
        assert_eq!(
            pairs(&Headers::from_env(&env).unwrap()),
            [("b".into(), "3".into())]
        );
        let env = env_of(&[
            ("OTEL_EXPORTER_OTLP_HEADERS", "a=1"),
            ("OTEL_EXPORTER_OTLP_METRICS_HEADERS", " "),
        ]);
        assert_eq!(
            pairs(&Headers::from_env(&env).unwrap()),
            [("a".into(), "1".into())],
            "an empty variable is unset"
        );
        assert!(Headers::from_env(&env_of(&[])).unwrap().is_empty());
    }

    #[test]
    fn a_malformed_header_is_one_line_that_never_shows_the_value() {
        let secret = "s3cr3t";
        let cases = [
            (format!("Authorization: Bearer {secret}"), "has no '='"),
            (format!("=Bearer%20{secret}"), "has no key"),
            (format!("bad key=Bearer%20{secret}"), "not a header name"),
            (format!("x-token-bin={secret}"), "binary header"),
            (
                "authorization=".into(),
                "(authorization) has an empty value",
            ),
            (
                format!("authorization=Bearer%2{secret}"),
                "'%' not followed by two hex digits",
            ),
            (
                format!("authorization=Bearer%0A{secret}"),
                "only printable ASCII",
            ),
            (
                format!("authorization=Bearer\u{e9}{secret}"),
                "only printable ASCII",
            ),
        ];
        for (text, what) in cases {
            let err = Headers::from_env(&env_of(&[("OTEL_EXPORTER_OTLP_HEADERS", &text)]))
                .unwrap_err()
                .to_string();
            assert!(err.contains(what), "{text:?}: {err}");
            assert!(
                err.contains("OTEL_EXPORTER_OTLP_HEADERS: entry 1 of 1"),
                "{err}"
            );
            assert!(
                err.contains("Authorization=Bearer%20<token>"),
                "says what to do: {err}"
            );
            assert!(!err.contains(secret), "the value leaked: {err}");
            assert!(!err.contains('\n'), "one line: {err}");
        }
        let err = Headers::parse("OTEL_EXPORTER_OTLP_METRICS_HEADERS", "a=1,b").unwrap_err();
        assert!(
            err.starts_with("OTEL_EXPORTER_OTLP_METRICS_HEADERS: entry 2 of 2 has no '='"),
            "{err}"
        );
    }

    #[test]
    fn export_config_takes_the_headers_and_the_last_endpoint() {
        use clap::Parser;
        let cli = crate::config::Cli::try_parse_from([
            "x",
            "--otlp-endpoint",
            "http://otel-collector:4317",
            "--otlp-endpoint=https://otel-collector:4317",
        ])
        .unwrap();
        let env = env_of(&[("OTEL_EXPORTER_OTLP_HEADERS", "Authorization=Bearer%20t")]);
        let config = cli.run.export_flags().resolve(&env).unwrap();
        assert_eq!(config.endpoint, "https://otel-collector:4317");
        assert_eq!(
            pairs(&config.headers),
            [("authorization".into(), "Bearer t".into())]
        );
        let env = env_of(&[("OTEL_EXPORTER_OTLP_HEADERS", "Bearer t")]);
        let err = cli
            .run
            .export_flags()
            .resolve(&env)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("configuration: OTEL_EXPORTER_OTLP_HEADERS: entry 1 of 1 has no '='"),
            "{err}"
        );
    }

    #[test]
    fn debug_shows_header_keys_and_no_secrets() {
        let headers = Headers::parse("V", "Authorization=Bearer%20s3cr3t").unwrap();
        assert_eq!(format!("{headers:?}"), r#"{"authorization": "***"}"#);
        assert!(!format!("{:?}", headers.metadata()).contains("s3cr3t"));
        let config = ExportConfig {
            endpoint: "https://user:hunter2@collector:4317".into(),
            protocol: crate::export::Protocol::Grpc,
            receiver: crate::export::Receiver::Collector,
            headers,
            interval: std::time::Duration::from_secs(15),
            refresh: std::time::Duration::from_secs(60),
            timeout: std::time::Duration::from_secs(10),
            ca_file: None,
            client_cert_file: None,
            client_key_file: None,
            compression: crate::export::Compression::Gzip,
            max_request_bytes: 1 << 20,
            stale_on_shutdown: true,
        };
        let text = format!("{config:?} {config:#?}");
        assert!(
            !text.contains("s3cr3t") && !text.contains("hunter2"),
            "{text}"
        );
        assert!(text.contains("https://***@collector:4317"), "{text}");
        assert!(text.contains("authorization"), "{text}");
    }
}
