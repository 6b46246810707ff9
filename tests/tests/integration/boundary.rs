//! The work-group boundary from the attacker's side: what a contributor of one work group can
//! make Kiln send, reach or confirm on its behalf. A loopback [`Recorder`] stands for the
//! attacker's host and keeps every request it receives.

use kiln_tests::*;
use serde_json::{Value, json};

const A: &str = "/api/v1/teams/t/workgroups/a";
const B: &str = "/api/v1/teams/t/workgroups/b";

/// Team `t` (the admin's) with work groups `a` and `b`, and a contributor in each: `ann` in a,
/// `bob` in b. Returns their tokens.
fn contributors(up: &Up, admin: &str) -> (String, String) {
    up.ok(
        "POST",
        "/api/v1/teams",
        admin,
        Some(&json!({ "name": "t" })),
    );
    let mut tokens = Vec::new();
    for (wg, name) in [("a", "ann"), ("b", "bob")] {
        up.ok(
            "POST",
            "/api/v1/teams/t/workgroups",
            admin,
            Some(&json!({ "name": wg })),
        );
        let created = up.ok(
            "POST",
            "/api/v1/users",
            admin,
            Some(&json!({ "name": name })),
        );
        tokens.push(created["token"]["token"].as_str().unwrap().to_string());
        up.ok(
            "PUT",
            &format!("/api/v1/teams/t/members/{name}"),
            admin,
            Some(&json!({ "role": "member" })),
        );
        up.ok(
            "PUT",
            &format!("/api/v1/teams/t/workgroups/{wg}/members/{name}"),
            admin,
            Some(&json!({ "role": "contributor" })),
        );
    }
    (tokens.remove(0), tokens.remove(0))
}

/// Model `m` version 1 (the iris weights) in work group `wg`, and a manifest `name` over it
/// whose scorer component is `component`.
fn manifest(up: &Up, token: &str, wg: &str, name: &str, component: &str) {
    if up
        .api("GET", &format!("{wg}/models/m"), Some(token), None)
        .status
        == 404
    {
        up.ok(
            "POST",
            &format!("{wg}/models"),
            token,
            Some(&json!({ "name": "m" })),
        );
        let weights = std::fs::read(repo().join("examples/iris/model/weights.json")).unwrap();
        let reply = call(
            "POST",
            &format!("{}{wg}/models/m/versions", up.api),
            &[
                ("Authorization", &format!("Bearer {token}")),
                ("Content-Type", "application/x-tar"),
            ],
            Some(&tar_of(&[("weights.json", &weights)])),
        );
        assert_eq!(reply.status, 201, "{}", reply.error());
    }
    up.ok(
        "POST",
        &format!("{wg}/manifests"),
        token,
        Some(&json!({
            "name": name,
            "model": "m",
            "version": "1",
            "manifest": format!("name = \"{name}\"\nversion = \"1\"\n[scorer]\ncomponent = \"{component}\"\n[model]\nfiles = [\"weights.json\"]\n"),
        })),
    );
}

fn carries_authorization(heads: &[String]) -> bool {
    heads
        .iter()
        .any(|h| h.to_ascii_lowercase().contains("\nauthorization:"))
}

#[test]
fn the_installations_registry_password_goes_to_its_registry_host_alone() {
    // Without the host they are for, a user name and password are refused at start.
    let dir = temp_dir("boundary-credentials");
    for command in [
        &[
            "up",
            "--data-dir",
            dir.join("refused").to_str().unwrap(),
            "--username",
            "kiln",
            "--password",
            "install-pw",
        ][..],
        &[
            "serve",
            "--deploy",
            "x=127.0.0.1:9/models/x:1",
            "--username",
            "kiln",
            "--password",
            "install-pw",
        ][..],
    ] {
        let (status, output) = run_kiln(command);
        assert!(!status.success(), "{command:?} started: {output}");
        assert!(
            output.contains("need --registry-host HOST[:PORT]"),
            "{command:?}: {output}"
        );
    }

    let own = Recorder::basic();
    let evil = Recorder::basic();
    // The attacker's registry asks for a bearer token from a realm of the attacker's too.
    let realm = Recorder::basic();
    let challenging = {
        let realm = realm.addr.clone();
        Recorder::start(move |_| {
            format!(
                "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"http://{realm}/token\",service=\"evil\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
        })
    };
    let up = Up::start(
        &dir,
        &[
            "--registry-host",
            &own.addr,
            "--username",
            "kiln",
            "--password",
            "install-pw",
        ],
    );
    let admin = up.admin();
    let (ann, _) = contributors(&up, &admin);

    // A contributor of a work group without an environment names the attacker's registries:
    // as an image, and as a manifest's scorer component.
    for (name, host) in [("x", &evil.addr), ("y", &challenging.addr)] {
        let refused = up.api(
            "POST",
            &format!("{A}/images"),
            Some(&ann),
            Some(&json!({ "name": name, "reference": format!("{host}/evil/x:1") })),
        );
        assert_eq!(refused.status, 400, "{}", refused.error());
    }
    manifest(&up, &ann, A, "evil", &format!("{}/evil/c:1", evil.addr));
    let refused = up.api(
        "POST",
        &format!("{A}/images"),
        Some(&ann),
        Some(&json!({ "name": "z", "manifest": "evil" })),
    );
    assert_eq!(refused.status, 400, "{}", refused.error());
    // The CLI's pull with credentials for another host sends them to that host alone.
    let (status, output) = run_kiln(&[
        "pull",
        &format!("{}/evil/cli:1", evil.addr),
        "--store",
        dir.join("cli-store").to_str().unwrap(),
        "--registry-host",
        &own.addr,
        "--username",
        "kiln",
        "--password",
        "install-pw",
    ]);
    assert!(!status.success(), "{output}");

    // The attacker's hosts were asked, and no credentials reached any of them.
    let asked = evil.heads();
    assert!(
        asked.len() >= 3,
        "the attacker's registry was asked {} times",
        asked.len()
    );
    assert!(!challenging.heads().is_empty());
    for (host, heads) in [
        ("registry", evil.heads()),
        ("challenging registry", challenging.heads()),
        ("token realm", realm.heads()),
    ] {
        assert!(!carries_authorization(&heads), "{host}: {heads:?}");
    }
    // The installation's own registry gets them.
    let own_pull = up.api(
        "POST",
        &format!("{A}/images"),
        Some(&ann),
        Some(&json!({ "name": "own", "reference": format!("{}/models/iris:1", own.addr) })),
    );
    assert_eq!(own_pull.status, 400, "{}", own_pull.error());
    let basic = format!("basic {}", base64_encode(b"kiln:install-pw")).to_ascii_lowercase();
    assert!(
        own.heads()
            .iter()
            .any(|h| h.to_ascii_lowercase().contains(&basic)),
        "{:?}",
        own.heads()
    );
}

/// The status and the body of an answer, with `digest` replaced by `D`.
fn answer(reply: &Reply, digest: &str) -> (u16, String) {
    (
        reply.status,
        String::from_utf8_lossy(&reply.body).replace(digest, "D"),
    )
}

#[test]
fn another_work_groups_files_cannot_be_confirmed_through_the_shared_store() {
    let dir = temp_dir("boundary-store");
    let up = Up::start(&dir, &[]);
    let admin = up.admin();
    let (ann, bob) = contributors(&up, &admin);
    build_iris_image(&up.store());
    // Work group a builds an image: its manifest, config and layers (the model file among
    // them, whose digest is the file's) are in the shared store.
    manifest(&up, &ann, A, "mf", "iris:1");
    let built = up.ok(
        "POST",
        &format!("{A}/images"),
        &ann,
        Some(&json!({ "name": "built", "manifest": "mf" })),
    );
    let reference = built["reference"].as_str().unwrap();
    let store = kiln_image::OciStore::open(up.store()).unwrap();
    let (descriptor, image) = store.resolve(reference).unwrap();
    let mut forbidden: Vec<String> = image.layers.iter().map(|l| l.digest.to_string()).collect();
    forbidden.push(image.config.digest.to_string());
    forbidden.push(descriptor.digest.to_string());
    assert!(forbidden.len() >= 4, "{forbidden:?}");
    let missing = format!("sha256:{}", "5a".repeat(32));

    // Registration by digest: every one of a's blobs answers as the missing digest does.
    let register = |digest: &str| {
        up.api(
            "POST",
            &format!("{B}/images"),
            Some(&bob),
            Some(&json!({ "name": "probe", "reference": format!("anything@{digest}") })),
        )
    };
    let expected = answer(&register(&missing), &missing);
    assert_eq!(expected.0, 400, "{}", expected.1);
    assert!(expected.1.contains("no image"), "{}", expected.1);
    for digest in &forbidden {
        assert_eq!(answer(&register(digest), digest), expected, "{digest}");
    }

    // A manifest's scorer component by digest: the same.
    let build = |i: usize, digest: &str| {
        let name = format!("probe{i}");
        manifest(&up, &bob, B, &name, &format!("anything@{digest}"));
        up.api(
            "POST",
            &format!("{B}/images"),
            Some(&bob),
            Some(&json!({ "name": name, "manifest": name })),
        )
    };
    let expected = answer(&build(0, &missing), &missing);
    assert_eq!(expected.0, 400, "{}", expected.1);
    assert!(
        expected.1.contains("nor an image of this work group"),
        "{}",
        expected.1
    );
    for (i, digest) in forbidden.iter().enumerate() {
        let got = answer(&build(i + 1, digest), digest);
        assert_eq!(got.0, expected.0, "{digest}: {}", got.1);
        assert_eq!(
            got.1.replace(&format!("probe{}", i + 1), "P"),
            expected.1.replace("probe0", "P"),
            "{digest}"
        );
    }
    assert_eq!(
        up.ok("GET", &format!("{B}/images"), &bob, None)["items"],
        json!([])
    );
    // Work group a still uses its own image by digest, and both use the installation's.
    up.ok(
        "POST",
        &format!("{A}/images"),
        &ann,
        Some(&json!({ "name": "again", "reference": format!("anything@{}", descriptor.digest) })),
    );
    let shared: Value = up.ok(
        "POST",
        &format!("{B}/images"),
        &bob,
        Some(&json!({ "name": "shared", "reference": "iris:1" })),
    );
    assert_eq!(shared["name"], "shared");
}

#[test]
fn a_docker_host_is_one_host_and_port_checked_and_connected_to_as_checked() {
    // Loopback is internal on this installation: only 10.255.255.254 is allowed.
    let dir = temp_dir("boundary-docker");
    let up = Up::start(&dir, &["--allow-network", "10.255.255.254"]);
    let admin = up.admin();
    contributors(&up, &admin);
    // A stand-in Docker API: it answers `GET /version`.
    let listener = Recorder::start(|_| {
        let body = r#"{"ApiVersion":"1.41","Version":"24.0.0"}"#;
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    });
    let port = listener.addr.rsplit(':').next().unwrap().to_string();
    let target = |name: &str, config: Value| {
        up.api(
            "POST",
            &format!("{A}/targets"),
            Some(&admin),
            Some(&json!({ "name": name, "kind": "docker", "config": config })),
        )
    };
    // Text another parser would read as another host: refused as it is, 400.
    for (i, host) in [
        format!("tcp://127.0.0.1:{port}#@1.1.1.1:2375"),
        format!("tcp://127.0.0.1:{port}\\@1.1.1.1:2375"),
        format!("tcp://127.0.0.1:{port}?@1.1.1.1:2375"),
        format!("tcp://127.0.0.1:{port}/@1.1.1.1:2375"),
        format!("tcp://1.1.1.1:2375@127.0.0.1:{port}"),
        format!("http://x:y@127.0.0.1:{port}"),
    ]
    .iter()
    .enumerate()
    {
        let refused = target(&format!("h{i}"), json!({ "host": host }));
        assert_eq!(refused.status, 400, "{host}: {}", refused.error());
        assert!(
            refused.error().contains("only a host and a port"),
            "{host}: {}",
            refused.error()
        );
    }
    // Every form of an internal address, IPv6 ones carrying an internal IPv4 address included:
    // 403 with the address named.
    for (i, host) in [
        format!("tcp://127.0.0.1:{port}"),
        format!("tcp://localhost:{port}"),
        format!("tcp://[::1]:{port}"),
        format!("tcp://[::127.0.0.1]:{port}"),
        format!("tcp://[::ffff:127.0.0.1]:{port}"),
        format!("tcp://[64:ff9b::127.0.0.1]:{port}"),
        format!("tcp://[2002:7f00:1::]:{port}"),
        "tcp://[::169.254.169.254]:2375".to_string(),
        "tcp://[64:ff9b::a9fe:a9fe]:2375".to_string(),
        "tcp://[2002:a9fe:a9fe::]:2375".to_string(),
        "tcp://[2002:a00:1::]:2375".to_string(),
        "http://[fd00::1]:2375".to_string(),
    ]
    .iter()
    .enumerate()
    {
        let refused = target(&format!("v{i}"), json!({ "host": host }));
        assert_eq!(refused.status, 403, "{host}: {}", refused.error());
        assert!(
            refused
                .error()
                .contains("a loopback, private or link-local address"),
            "{host}: {}",
            refused.error()
        );
    }
    // Nothing reached the listener.
    assert_eq!(listener.heads(), Vec::<String>::new());
    assert_eq!(
        up.ok("GET", &format!("{A}/targets"), &admin, None)["items"],
        json!([])
    );

    // Where loopback is allowed, a Docker host given as a name (here 127.0.0.1 in the decimal
    // form the system's resolver reads) is resolved once, and the client is handed the checked
    // address: the test reaches the listener at tcp://127.0.0.1:PORT.
    let dir = temp_dir("boundary-docker-pinned");
    let up = Up::start(&dir, &[]);
    let admin = up.admin();
    contributors(&up, &admin);
    up.ok(
        "POST",
        &format!("{A}/targets"),
        &admin,
        Some(&json!({ "name": "named", "kind": "docker", "config": { "host": format!("tcp://2130706433:{port}") } })),
    );
    let tested = up.ok("POST", &format!("{A}/targets/named/test"), &admin, None);
    assert_eq!(tested["reachable"], true, "{tested}");
    assert_eq!(
        tested["message"],
        format!("Docker API 1.41 at tcp://127.0.0.1:{port}"),
        "{tested}"
    );
    assert!(
        listener.heads().iter().any(|h| h.contains("/version")),
        "{:?}",
        listener.heads()
    );
}
