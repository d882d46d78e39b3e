//! The gRPC channel to the collector (TLS and mTLS settings), the headers sent with every
//! export (`OTEL_EXPORTER_OTLP_HEADERS`), and the plain-words hint for an export error. One
//! channel serves both the object exporter and the SDK's exporter.

use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue, MetadataMap};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use super::ExportConfig;
use crate::Error;

/// Builds the gRPC channel to the collector, shared by the SDK exporter and the staleness
/// sender so both use the same TLS settings. Must be called inside a tokio runtime.
pub fn build_channel(config: &ExportConfig) -> Result<Channel, Error> {
    let bad = |why: String| {
        Error::Config(format!(
            "OTLP endpoint {:?}: {why}",
            redact(&config.endpoint)
        ))
    };
    let uri: http::Uri = config.endpoint.parse().map_err(|e| {
        bad(format!(
            "not a URL ({e}); use e.g. http://otel-collector:4317"
        ))
    })?;
    let scheme = uri.scheme_str().unwrap_or("");
    if !matches!(scheme, "http" | "https") || uri.host().is_none() {
        return Err(bad(
            "needs http:// or https:// and a host, e.g. http://otel-collector:4317".into(),
        ));
    }
    let mut endpoint = Endpoint::from_shared(config.endpoint.clone())
        .map_err(|e| bad(e.to_string()))?
        .timeout(config.timeout)
        .connect_timeout(config.timeout);
    let wants_tls =
        scheme == "https" || config.ca_file.is_some() || config.client_cert_file.is_some();
    if wants_tls {
        if scheme != "https" {
            return Err(bad(
                "TLS options are set but the endpoint is http://; use https://".into(),
            ));
        }
        let mut tls = ClientTlsConfig::new().with_native_roots();
        if let Some(host) = uri.host() {
            tls = tls.domain_name(host.to_owned());
        }
        if let Some(ca) = &config.ca_file {
            tls = tls.ca_certificate(Certificate::from_pem(read_file(ca, "--otlp-ca-file")?));
        }
        match (&config.client_cert_file, &config.client_key_file) {
            (Some(cert), Some(key)) => {
                tls = tls.identity(Identity::from_pem(
                    read_file(cert, "--otlp-client-cert-file")?,
                    read_file(key, "--otlp-client-key-file")?,
                ));
            }
            (None, None) => {}
            _ => {
                return Err(Error::Config(
                    "mTLS needs both --otlp-client-cert-file and --otlp-client-key-file".into(),
                ))
            }
        }
        endpoint = endpoint.tls_config(tls).map_err(|e| bad(e.to_string()))?;
    }
    Ok(endpoint.connect_lazy())
}

fn read_file(path: &std::path::Path, flag: &str) -> Result<Vec<u8>, Error> {
    std::fs::read(path)
        .map_err(|e| Error::Config(format!("{flag} {}: cannot read it: {e}", path.display())))
}

/// What an operator should check, from the text of a gRPC/transport error. The raw text
/// stays in the line; the hint names the likely cause in plain words.
pub fn export_hint(error: &str) -> Option<&'static str> {
    let has = |needle: &str| error.contains(needle);
    if has("Unauthenticated") {
        Some("the collector refused the credentials: check the token in OTEL_EXPORTER_OTLP_HEADERS (Authorization=Bearer%20<token>) against the collector's bearertokenauth token file")
    } else if has("PermissionDenied") {
        Some("the collector refused the watcher's credentials: check OTEL_EXPORTER_OTLP_HEADERS and the collector's authenticator")
    } else if has("InvalidContentType") || has("corrupt message") {
        Some("the collector does not speak TLS on this port: use an http:// endpoint, or enable TLS on its OTLP receiver")
    } else if has("CertificateRequired") || has("BadCertificate") || has("UnknownCA") {
        Some("the collector refused the watcher's client certificate (or got none): check --otlp-client-cert-file and --otlp-client-key-file against the collector's client_ca_file")
    } else if has("NotValidForName") || has("not valid for name") {
        Some("the collector's certificate is not valid for the endpoint's host name: use a host name from its subjectAltName in --otlp-endpoint, or reissue the certificate")
    } else if has("certificate expired") || has("certificate not valid yet") || has("Expired") {
        Some("the collector's certificate has expired or is not valid yet: reissue it (or check the clocks)")
    } else if has("UnknownIssuer") || has("invalid peer certificate") || has("certificate") {
        Some("the collector's certificate is not signed by a CA the watcher trusts: check --otlp-ca-file")
    } else if has("broken pipe")
        || has("Connection reset")
        || has("connection reset")
        || has("connection closed")
    {
        Some("the collector closed the connection: it restarted, or (with TLS) it refused the watcher's client certificate: check --otlp-client-cert-file against its client_ca_file")
    } else if has("Connection refused") || has("tcp connect error") || has("dns error") {
        Some("nothing answers at the OTLP endpoint: is the collector running and reachable?")
    } else if has("ResourceExhausted") || has("message larger than max") || has("too large") {
        Some("the collector refused the request as too large: lower --max-request-bytes, or raise the OTLP receiver's max_recv_msg_size_mib")
    } else if has("deadline") || has("Timeout") || has("timed out") || has("DeadlineExceeded") {
        Some("the collector did not answer within --export-timeout")
    } else {
        None
    }
}

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
    /// Reads the first of [`HEADERS_VARS`] that is set and not empty.
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

/// The endpoint as it may be logged: credentials in its URL (`https://user:pass@host`) are
/// replaced by `***`.
pub fn redact(endpoint: &str) -> String {
    match endpoint.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find('/').unwrap_or(rest.len());
            match rest[..authority_end].rfind('@') {
                Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
                None => endpoint.to_owned(),
            }
        }
        None => endpoint.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_errors_get_a_plain_hint() {
        let cases = [
            (
                "transport error: received corrupt message of type InvalidContentType",
                "does not speak TLS",
            ),
            (
                "invalid peer certificate: UnknownIssuer",
                "not signed by a CA",
            ),
            (
                "tcp connect error: Connection refused (os error 111)",
                "nothing answers",
            ),
            ("Timeout expired", "within --export-timeout"),
            (
                "ResourceExhausted: grpc: received message larger than max",
                "too large",
            ),
        ];
        for (error, hint) in cases {
            assert!(
                export_hint(error).is_some_and(|h| h.contains(hint)),
                "{error}"
            );
        }
        assert_eq!(export_hint("something else"), None);
    }

    #[test]
    fn refused_credentials_and_certificates_get_their_own_hint() {
        // Object series (status_text) and the SDK's exporter word a refusal differently.
        for error in [
            "Unauthenticated: missing or empty authorization header: Authorization (123 bytes)",
            "TonicMetricsClient export failed with gRPC code: Unauthenticated",
        ] {
            let hint = export_hint(error).unwrap();
            assert!(hint.contains("refused the credentials"), "{hint}");
            assert!(hint.contains("OTEL_EXPORTER_OTLP_HEADERS"), "{hint}");
        }
        let cases = [
            (
                "Unavailable: transport error: invalid peer certificate: UnknownIssuer",
                "not signed by a CA the watcher trusts",
            ),
            (
                "Unavailable: transport error: invalid peer certificate: certificate not valid for name \"localhost\"; certificate is only valid for DnsName(\"wrong.example\")",
                "not valid for the endpoint's host name",
            ),
            (
                "Unknown: transport error: connection error: stream closed because of a broken pipe",
                "client certificate",
            ),
            (
                "Cancelled: operation was canceled: connection closed (1007 bytes)",
                "client certificate",
            ),
            (
                "invalid peer certificate: NotValidForName",
                "not valid for the endpoint's host name",
            ),
            (
                "invalid peer certificate: certificate expired: verification time 2 (UNIX), but certificate is not valid after 1 (1 seconds ago)",
                "has expired",
            ),
            (
                "Unavailable: transport error: received fatal alert: CertificateRequired",
                "client certificate",
            ),
        ];
        for (error, hint) in cases {
            assert!(
                export_hint(error).is_some_and(|h| h.contains(hint)),
                "{error}: {:?}",
                export_hint(error)
            );
        }
    }

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
        let config = cli.run.export_config(&env).unwrap();
        assert_eq!(config.endpoint, "https://otel-collector:4317");
        assert_eq!(
            pairs(&config.headers),
            [("authorization".into(), "Bearer t".into())]
        );
        let env = env_of(&[("OTEL_EXPORTER_OTLP_HEADERS", "Bearer t")]);
        let err = cli.run.export_config(&env).unwrap_err().to_string();
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
            headers,
            interval: std::time::Duration::from_secs(15),
            timeout: std::time::Duration::from_secs(10),
            ca_file: None,
            client_cert_file: None,
            client_key_file: None,
            gzip: true,
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

    #[test]
    fn credentials_in_the_endpoint_are_never_logged() {
        assert_eq!(redact("https://u:secret@c:4317/x"), "https://***@c:4317/x");
        assert_eq!(redact("http://c:4317"), "http://c:4317");
        assert_eq!(redact("c:4317"), "c:4317");
    }
}
