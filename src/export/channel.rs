//! The gRPC channel to the collector (TLS and mTLS settings) and the plain-words hint for
//! an export error. One channel serves both the object exporter and the SDK's exporter.

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
    if has("InvalidContentType") || has("corrupt message") {
        Some("the collector does not speak TLS on this port: use an http:// endpoint, or enable TLS on its OTLP receiver")
    } else if has("UnknownIssuer") || has("invalid peer certificate") || has("certificate") {
        Some("the collector's certificate is not trusted or does not match: check --otlp-ca-file and the endpoint's host name")
    } else if has("Connection refused") || has("tcp connect error") || has("dns error") {
        Some("nothing answers at the OTLP endpoint: is the collector running and reachable?")
    } else if has("ResourceExhausted") || has("message larger than max") || has("too large") {
        Some("the collector refused the request as too large: lower --max-request-bytes, or raise the OTLP receiver's max_recv_msg_size_mib")
    } else if has("Unauthenticated") || has("PermissionDenied") {
        Some("the collector refused the watcher's credentials")
    } else if has("deadline") || has("Timeout") || has("timed out") || has("DeadlineExceeded") {
        Some("the collector did not answer within --export-timeout")
    } else {
        None
    }
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
            ("invalid peer certificate: UnknownIssuer", "not trusted"),
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
    fn credentials_in_the_endpoint_are_never_logged() {
        assert_eq!(redact("https://u:secret@c:4317/x"), "https://***@c:4317/x");
        assert_eq!(redact("http://c:4317"), "http://c:4317");
        assert_eq!(redact("c:4317"), "c:4317");
    }
}
