//! Broken and hostile components cannot take the server down: each fault gets its status, the
//! faulting instance is discarded, healthy deployments keep answering, memory stays bounded.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kiln_tests::*;

fn fault_server() -> Server {
    Server::start(&[
        "--deploy",
        &fault_deploy("echo", "echo"),
        "--deploy",
        &fault_deploy("trap", "trap"),
        "--deploy",
        &fault_deploy("spin", "loop"),
        "--deploy",
        &fault_deploy("hoard", "grow-memory"),
        "--deploy",
        &fault_deploy("deep", "recurse"),
        "--deploy",
        &fault_deploy("shape", "wrong-output-shape"),
        "--deploy",
        &fault_deploy("missing", "missing-output"),
        "--deadline-ms",
        "300",
        "--memory-mb",
        "16",
    ])
}

#[test]
fn each_fault_gets_its_status_and_the_instance_is_replaced() {
    let server = fault_server();
    let body = v2_fp32("x", &[3], &[1.0, 2.0, 3.0]);
    let cases = [
        ("trap", 500, "model trapped"),
        ("spin", 504, "exceeded its deadline"),
        ("hoard", 500, "model trapped"),
        ("deep", 500, "model trapped"),
        (
            "shape",
            500,
            "output 'y' has 3 elements, its shape [4] needs 4",
        ),
        ("missing", 500, "output 'y' is missing"),
    ];
    for (name, status, message) in cases {
        for _ in 0..2 {
            let reply = server.post_json(&format!("/v2/models/{name}/infer"), &body);
            assert_eq!(reply.status, status, "{name}: {}", reply.error());
            assert!(reply.error().contains(message), "{name}: {}", reply.error());
            let healthy = server.post_json("/v2/models/echo/infer", &body);
            assert_eq!(healthy.status, 200);
            assert_eq!(
                healthy.json()["outputs"][0]["data"],
                serde_json::json!([1.0, 2.0, 3.0])
            );
        }
    }
    let metric = |name: &str, deployment: &str| {
        server
            .metric(&format!(
                r#"{name}{{deployment="{deployment}",version="1"}}"#
            ))
            .unwrap()
    };
    for trapping in ["trap", "hoard", "deep"] {
        assert_eq!(
            metric("kiln_guest_traps_total", trapping),
            2.0,
            "{trapping}"
        );
        // One instance loaded at deploy and trapped; the second request started a new one,
        // which trapped too. Both were discarded and nothing has asked for a third yet.
        assert_eq!(
            metric("kiln_instance_starts_total", trapping),
            2.0,
            "{trapping}"
        );
        assert_eq!(metric("kiln_instances", trapping), 0.0, "{trapping}");
    }
    assert_eq!(metric("kiln_deadline_exceeded_total", "spin"), 2.0);
    // A model whose outputs are wrong did not trap: its instance is kept.
    assert_eq!(metric("kiln_instances", "shape"), 1.0);
}

#[test]
fn healthy_deployments_answer_while_others_loop() {
    let server = fault_server();
    let spin = server.url("/v2/models/spin/infer");
    let body = v2_fp32("x", &[1], &[1.0]);
    let loops: Vec<_> = (0..4)
        .map(|_| {
            let (url, body) = (spin.clone(), body.clone());
            std::thread::spawn(move || post_json(&url, &body).status)
        })
        .collect();
    server.wait_for_metric(
        r#"kiln_requests_in_flight{deployment="spin",version="1"}"#,
        |v| v >= 2.0,
    );
    // Both cores hold looping guests; the echo model still answers, and before they finish.
    let reply = server.post_json("/v2/models/echo/infer", &body);
    assert_eq!(reply.status, 200);
    assert!(
        server
            .metric(r#"kiln_requests_in_flight{deployment="spin",version="1"}"#)
            .unwrap()
            >= 1.0
    );
    for handle in loops {
        assert_eq!(handle.join().unwrap(), 504);
    }
}

#[test]
fn memory_does_not_grow_over_a_thousand_faulting_requests() {
    let server = fault_server();
    let body = v2_fp32("x", &[4], &[1.0, 2.0, 3.0, 4.0]);
    let faulting = ["trap", "hoard", "deep", "shape"];
    let round = |count: usize| {
        for i in 0..count {
            let name = faulting[i % faulting.len()];
            let status = server
                .post_json(&format!("/v2/models/{name}/infer"), &body)
                .status;
            assert_eq!(status, 500, "{name}");
        }
    };
    round(200);
    let warm = server.rss_kib();
    round(1000);
    let after = server.rss_kib();
    assert_eq!(server.post_json("/v2/models/echo/infer", &body).status, 200);
    // Discarded instances give their memory back: at most 24 MiB of drift over 1,000 faults
    // (one 16 MiB instance memory and allocator slack), where a leak would show hundreds.
    assert!(
        after < warm + 24 * 1024,
        "RSS grew from {warm} KiB to {after} KiB over 1,000 faulting requests"
    );
    let traps = server
        .metric(r#"kiln_guest_traps_total{deployment="hoard",version="1"}"#)
        .unwrap();
    assert_eq!(traps, 300.0);
}
