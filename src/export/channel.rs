//! The gRPC channel to the collector: the endpoint's checks (shared with OTLP/HTTP,
//! `http.rs`), TLS and mTLS settings, and the endpoint as it may be logged. One channel
//! serves both the object exporter and the SDK's exporter; the headers sent on it are in
//! `headers.rs`.

use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use super::ExportConfig;
use crate::Error;

/// Builds the gRPC channel to the collector, shared by the SDK exporter and the staleness
/// sender so both use the same TLS settings. Must be called inside a tokio runtime.
pub fn build_channel(config: &ExportConfig) -> Result<Channel, Error> {
    let (uri, wants_tls) = checked_endpoint(config)?;
    let bad = |why: String| {
        Error::Config(format!(
            "OTLP endpoint {:?}: {why}",
            redact(&config.endpoint)
        ))
    };
    let mut endpoint = Endpoint::from_shared(config.endpoint.clone())
        .map_err(|e| bad(e.to_string()))?
        .timeout(config.timeout)
        .connect_timeout(config.timeout);
    if wants_tls {
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

/// The endpoint's checks, for gRPC and HTTP alike: a URL with http:// or https:// and a
/// host, and TLS options only with https://. Returns the URL and whether TLS is on.
pub(super) fn checked_endpoint(config: &ExportConfig) -> Result<(http::Uri, bool), Error> {
    let example = match config.protocol {
        super::Protocol::Grpc => "http://otel-collector:4317",
        super::Protocol::HttpProtobuf => "http://otel-collector:4318/v1/metrics",
    };
    let bad = |why: String| {
        Error::Config(format!(
            "OTLP endpoint {:?}: {why}",
            redact(&config.endpoint)
        ))
    };
    let uri: http::Uri = config
        .endpoint
        .parse()
        .map_err(|e| bad(format!("not a URL ({e}); use e.g. {example}")))?;
    let scheme = uri.scheme_str().unwrap_or("");
    if !matches!(scheme, "http" | "https") || uri.host().is_none() {
        return Err(bad(format!(
            "needs http:// or https:// and a host, e.g. {example}"
        )));
    }
    let wants_tls =
        scheme == "https" || config.ca_file.is_some() || config.client_cert_file.is_some();
    if wants_tls && scheme != "https" {
        return Err(bad(
            "TLS options are set but the endpoint is http://; use https://".into(),
        ));
    }
    Ok((uri, wants_tls))
}

pub(super) fn read_file(path: &std::path::Path, flag: &str) -> Result<Vec<u8>, Error> {
    std::fs::read(path)
        .map_err(|e| Error::Config(format!("{flag} {}: cannot read it: {e}", path.display())))
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
    fn credentials_in_the_endpoint_are_never_logged() {
        assert_eq!(redact("https://u:secret@c:4317/x"), "https://***@c:4317/x");
        assert_eq!(redact("http://c:4317"), "http://c:4317");
        assert_eq!(redact("c:4317"), "c:4317");
    }
}
