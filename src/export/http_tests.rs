//! The OTLP/HTTP request as built (headers, compression, content type) and the answers'
//! mapping to the exporter's results, without a receiver; the real collector and
//! Prometheus are in tests/it/otlp_http.rs.

use super::*;
use crate::export::headers::Headers;
use std::io::Read;

fn headers() -> http::HeaderMap {
    Headers::parse(
        "OTEL_EXPORTER_OTLP_HEADERS",
        "Authorization=Bearer%20s3cr3t,x-tenant=a",
    )
    .unwrap()
    .metadata()
    .into_headers()
}

async fn body_of(request: http::Request<Full<Bytes>>) -> (http::request::Parts, Bytes) {
    let (parts, body) = request.into_parts();
    (parts, body.collect().await.unwrap().to_bytes())
}

#[tokio::test]
async fn a_large_request_is_compressed_and_carries_the_headers() {
    let uri: http::Uri = "http://collector:4318/v1/metrics".parse().unwrap();
    let payload: Bytes = (0..COMPRESS_FROM_BYTES * 2)
        .map(|i| (i % 7) as u8)
        .collect::<Vec<u8>>()
        .into();
    let request = build_request(&uri, &headers(), Compression::Gzip, payload.clone()).unwrap();
    let (parts, body) = body_of(request).await;
    assert_eq!(parts.method, http::Method::POST);
    assert_eq!(parts.uri, uri);
    assert_eq!(parts.headers["content-type"], "application/x-protobuf");
    assert_eq!(parts.headers["content-encoding"], "gzip");
    assert_eq!(parts.headers["authorization"], "Bearer s3cr3t");
    assert!(parts.headers["authorization"].is_sensitive());
    assert_eq!(parts.headers["x-tenant"], "a");
    let mut unzipped = Vec::new();
    flate2::read::GzDecoder::new(&body[..])
        .read_to_end(&mut unzipped)
        .unwrap();
    assert_eq!(unzipped, payload);
    assert!(body.len() < payload.len() / 4, "{} bytes", body.len());

    let request = build_request(&uri, &headers(), Compression::Zstd, payload.clone()).unwrap();
    let (parts, body) = body_of(request).await;
    assert_eq!(parts.headers["content-encoding"], "zstd");
    assert_eq!(zstd::decode_all(&body[..]).unwrap(), payload);

    let request = build_request(&uri, &headers(), Compression::None, payload.clone()).unwrap();
    let (parts, body) = body_of(request).await;
    assert!(!parts.headers.contains_key("content-encoding"));
    assert_eq!(body, payload);
}

#[tokio::test]
async fn a_small_request_goes_plain() {
    let uri: http::Uri = "http://collector:4318/v1/metrics".parse().unwrap();
    let payload = Bytes::from_static(b"\x0a\x00");
    let request = build_request(
        &uri,
        &http::HeaderMap::new(),
        Compression::Gzip,
        payload.clone(),
    )
    .unwrap();
    let (parts, body) = body_of(request).await;
    assert!(!parts.headers.contains_key("content-encoding"));
    assert_eq!(body, payload);
}

fn status(code: u16) -> http::StatusCode {
    http::StatusCode::from_u16(code).unwrap()
}

#[test]
fn answers_map_to_the_grpc_codes() {
    let text = http::HeaderMap::new();
    assert!(answer(status(200), &text, b"").is_ok());
    let cases = [
        (400, Code::InvalidArgument),
        (401, Code::Unauthenticated),
        (403, Code::PermissionDenied),
        (404, Code::Unimplemented),
        (413, Code::ResourceExhausted),
        (429, Code::Unavailable),
        (500, Code::Internal),
        (502, Code::Unavailable),
        (503, Code::Unavailable),
        (504, Code::Unavailable),
        (418, Code::Unknown),
    ];
    for (http_code, grpc) in cases {
        let err = answer(status(http_code), &text, b"why").unwrap_err();
        assert_eq!(err.code(), grpc, "{http_code}");
        assert!(
            err.message().contains(&format!("HTTP {http_code}")),
            "{}",
            err.message()
        );
        assert!(err.message().ends_with(": why"), "{}", err.message());
    }
    let mut retry = http::HeaderMap::new();
    retry.insert("retry-after", "7".parse().unwrap());
    let err = answer(status(503), &retry, b"").unwrap_err();
    assert!(
        err.message().contains("Retry-After: 7"),
        "{}",
        err.message()
    );
}

#[test]
fn a_protobuf_error_body_and_a_partial_success_are_read() {
    let mut proto = http::HeaderMap::new();
    proto.insert("content-type", "application/x-protobuf".parse().unwrap());
    let body = RpcStatus {
        code: 3,
        message: "request body too large".into(),
    }
    .encode_to_vec();
    let err = answer(status(400), &proto, &body).unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().ends_with("request body too large"),
        "{}",
        err.message()
    );

    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsPartialSuccess;
    let partial = ExportMetricsServiceResponse {
        partial_success: Some(ExportMetricsPartialSuccess {
            rejected_data_points: 3,
            error_message: "bad points".into(),
        }),
    }
    .encode_to_vec();
    let err = answer(status(200), &proto, &partial).unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("rejected 3 data points: bad points"));
    let nothing_rejected = ExportMetricsServiceResponse {
        partial_success: Some(ExportMetricsPartialSuccess {
            rejected_data_points: 0,
            error_message: "a warning".into(),
        }),
    }
    .encode_to_vec();
    assert!(answer(status(200), &proto, &nothing_rejected).is_ok());
}
