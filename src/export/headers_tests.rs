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
