//! Unit tests of the instruments.

use super::*;

#[test]
fn a_forgotten_version_leaves_no_series_and_the_others_stay() {
    let metrics = Metrics::new();
    let (old, new) = (
        metrics.deployment("iris", "1"),
        metrics.deployment("iris", "2"),
    );
    for version in [&old, &new] {
        version.record_request(Protocol::V2, 200, 0.001);
        version.record_request(Protocol::V2, 503, 0.001);
        version.record_compile(0.5, false);
        version.instances.inc();
    }
    let series = |text: &str, version: &str| {
        text.lines()
            .filter(|l| !l.starts_with('#') && l.contains(&format!("version=\"{version}\"")))
            .count()
    };
    let before = metrics.encode();
    assert!(series(&before, "1") > 10, "{before}");
    metrics.forget_deployment("iris", "1");
    let after = metrics.encode();
    assert_eq!(series(&after, "1"), 0, "{after}");
    assert_eq!(series(&after, "2"), series(&before, "2"), "{after}");
}

#[test]
fn request_counter_reads_what_was_recorded() {
    let metrics = Metrics::new();
    let iris = metrics.deployment("iris", "1");
    for _ in 0..3 {
        iris.record_request(Protocol::V2, 200, 0.001);
    }
    iris.record_request(Protocol::Mlflow, 400, 0.001);
    let text = metrics.encode();
    assert!(text.contains(
        r#"kiln_requests_total{code="200",deployment="iris",protocol="v2",version="1"} 3"#
    ));
    assert!(text.contains(
        r#"kiln_requests_total{code="400",deployment="iris",protocol="mlflow",version="1"} 1"#
    ));
    assert!(text.contains(
        r#"kiln_request_duration_seconds_count{deployment="iris",protocol="v2",version="1"} 3"#
    ));
}

#[test]
fn a_route_window_reads_errors_and_p99() {
    let metrics = Metrics::new();
    let route = metrics.route("e", "green");
    let start = route.snapshot();
    for _ in 0..98 {
        route.record(false, 200, 0.002);
    }
    route.record(false, 500, 0.3);
    route.record(false, 503, 0.3);
    route.record(true, 500, 9.0);
    let (requests, errors, p99) = route.snapshot().since(&start);
    assert_eq!((requests, errors), (100, 2));
    assert_eq!(p99, 0.5, "the 99th answer is in the 0.25-0.5 s bucket");
    assert!(metrics.encode().contains(
        r#"kiln_endpoint_requests_total{code="500",deployment="green",endpoint="e",traffic="mirror"} 1"#
    ));
}

#[test]
fn unknown_status_codes_share_one_series() {
    let metrics = Metrics::new();
    let d = metrics.deployment("d", "1");
    d.record_request(Protocol::V1, 418, 0.0);
    d.record_request(Protocol::V1, 451, 0.0);
    assert!(
        metrics
            .encode()
            .contains(r#"code="other",deployment="d",protocol="v1",version="1"} 2"#)
    );
}
