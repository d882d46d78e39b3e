//! The plain-words hint for an export error: what an operator should check, from the text
//! of a gRPC or transport error, for the one log line an outage costs (`failures.rs`).

/// What an operator should check, from the text of a gRPC/transport error. The raw text
/// stays in the line; the hint names the likely cause in plain words.
pub fn export_hint(error: &str) -> Option<&'static str> {
    let has = |needle: &str| error.contains(needle);
    if has("no OTLP receiver at this path") {
        Some("nothing takes OTLP at the endpoint's path: with --otlp-protocol http/protobuf the watcher posts to the whole URL of --otlp-endpoint or $OTEL_EXPORTER_OTLP_METRICS_ENDPOINT (a collector: http://<host>:4318/v1/metrics; Prometheus: http://<host>:9090/api/v1/otlp/v1/metrics, started with --web.enable-otlp-receiver); only $OTEL_EXPORTER_OTLP_ENDPOINT gets /v1/metrics appended")
    } else if has("unsupported compression") {
        Some("the receiver does not take this compression (Prometheus' OTLP receiver takes gzip or none): use --otlp-compression gzip")
    } else if has("Unauthenticated") {
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
        let hint = export_hint("Unimplemented: HTTP 404 Not Found: no OTLP receiver at this path")
            .unwrap();
        assert!(hint.contains("/api/v1/otlp/v1/metrics"), "{hint}");
        let hint = export_hint(
            "InvalidArgument: HTTP 400 Bad Request: unsupported compression: zstd. Only \"gzip\" or no compression supported",
        )
        .unwrap();
        assert!(hint.contains("--otlp-compression gzip"), "{hint}");
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
}
