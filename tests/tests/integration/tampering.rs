//! Corrupt registry content: a proxy in front of a real registry flips a byte in a blob, serves
//! a blob longer than its declared size, serves an oversized manifest, one whose Content-Type
//! disagrees with its mediaType, one that mixes `manifests` and `layers`, or answers 404 for a
//! layer. Images Kiln cannot deploy (wrong media types, two components) are refused before any
//! blob is fetched. Each pull is rejected with a message naming the digest, nothing is written to
//! the store, and nothing is deployed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kiln_tests::*;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};

#[derive(Clone)]
enum Tamper {
    FlipBlobByte,
    LongBlob,
    HugeManifest,
    /// The manifest served as an image index.
    IndexContentType,
    /// `"manifests": []` added beside `layers`.
    MixedManifest,
    /// 404 for this blob.
    MissingBlob(String),
}

/// An HTTP/1.1 proxy (one request per connection) that tampers with registry answers.
fn start_proxy(upstream: String, tamper: Tamper) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (upstream, tamper) = (upstream.clone(), tamper.clone());
            std::thread::spawn(move || {
                let _ = serve(stream, &upstream, &tamper);
            });
        }
    });
    addr
}

fn serve(stream: TcpStream, upstream: &str, tamper: &Tamper) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut parts = request_line.split_whitespace();
    let (method, path) = (
        parts.next().unwrap_or("GET").to_string(),
        parts.next().unwrap_or("/").to_string(),
    );
    let mut headers = Vec::new();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap_or(0);
            }
            if ["accept", "authorization", "content-type"]
                .iter()
                .any(|h| k.eq_ignore_ascii_case(h))
            {
                headers.push((k.to_string(), v.trim().to_string()));
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;

    let agent = ureq::Agent::new_with_config(
        ureq::config::Config::builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .build(),
    );
    let url = format!("http://{upstream}{path}");
    let mut request = ureq::http::Request::builder()
        .method(method.as_str())
        .uri(&url);
    for (k, v) in &headers {
        request = request.header(k, v);
    }
    let mut response = agent.run(request.body(body).unwrap()).expect("upstream");
    let mut status = response.status();
    let mut out_headers: Vec<(String, String)> = response
        .headers()
        .iter()
        .filter(|(k, _)| {
            !["content-length", "connection", "transfer-encoding"].contains(&k.as_str())
        })
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let mut content = if method == "HEAD" {
        vec![]
    } else {
        response
            .body_mut()
            .with_config()
            .limit(1 << 30)
            .read_to_vec()
            .unwrap()
    };
    let is_blob = path.contains("/blobs/sha256:") && method == "GET" && status == 200;
    let is_manifest = path.contains("/manifests/") && method == "GET" && status == 200;
    match tamper {
        Tamper::FlipBlobByte if is_blob => {
            if let Some(last) = content.last_mut() {
                *last ^= 0x01;
            }
        }
        Tamper::LongBlob if is_blob => {
            content.extend_from_slice(b"extra bytes the manifest never declared")
        }
        Tamper::HugeManifest if is_manifest => {
            // Valid JSON, padded past the limit; no digest header to contradict it.
            let mut padded = content.clone();
            padded.pop();
            padded.extend(std::iter::repeat_n(b' ', 5 << 20));
            padded.push(b'}');
            content = padded;
            out_headers.retain(|(k, _)| !k.eq_ignore_ascii_case("docker-content-digest"));
        }
        Tamper::IndexContentType if is_manifest => {
            for (k, v) in &mut out_headers {
                if k.eq_ignore_ascii_case("content-type") {
                    *v = "application/vnd.oci.image.index.v1+json".to_string();
                }
            }
        }
        Tamper::MixedManifest if is_manifest => {
            let mut manifest: Value = serde_json::from_slice(&content).unwrap();
            manifest["manifests"] = json!([]);
            content = serde_json::to_vec(&manifest).unwrap();
            out_headers.retain(|(k, _)| !k.eq_ignore_ascii_case("docker-content-digest"));
        }
        Tamper::MissingBlob(digest) if is_blob && path.ends_with(digest.as_str()) => {
            status = ureq::http::StatusCode::NOT_FOUND;
            content =
                br#"{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry"}]}"#
                    .to_vec();
        }
        _ => {}
    }
    let mut writer = stream;
    write!(
        writer,
        "HTTP/1.1 {} {}\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    )?;
    for (k, v) in &out_headers {
        write!(writer, "{k}: {v}\r\n")?;
    }
    let declared = if method == "HEAD" {
        response
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("0")
            .to_string()
    } else {
        content.len().to_string()
    };
    write!(
        writer,
        "Content-Length: {declared}\r\nConnection: close\r\n\r\n"
    )?;
    writer.write_all(&content)?;
    writer.flush()
}

#[test]
fn tampered_content_is_rejected_and_nothing_is_stored_or_deployed() {
    let registry = RegistryServer::start(None);
    let dir = temp_dir("tamper");
    let store = dir.join("store");
    build_iris_image(&store);
    let (status, output) = run_kiln(&[
        "push",
        "iris:1",
        &format!("{}/models/iris:1", registry.addr),
        "--store",
        store.to_str().unwrap(),
        "--output",
        "json",
    ]);
    assert!(status.success(), "{output}");
    let pushed: Value = serde_json::from_str(output.lines().last().unwrap()).unwrap();
    let manifest_digest = pushed["digest"].as_str().unwrap().to_string();
    let local = kiln_image::OciStore::open(&store).unwrap();
    let (_, manifest) = local.resolve("iris:1").unwrap();
    let config_digest = manifest.config.digest.to_string();
    let component_digest = manifest
        .layers
        .iter()
        .find(|l| l.media_type == "application/wasm")
        .unwrap()
        .digest
        .to_string();

    // The config blob is fetched first, so it is the one tampered with.
    let cases = [
        (Tamper::FlipBlobByte, config_digest.clone()),
        (Tamper::LongBlob, config_digest.clone()),
        (
            Tamper::HugeManifest,
            "over the 4194304-byte limit".to_string(),
        ),
        (
            Tamper::IndexContentType,
            format!(
                "manifest {manifest_digest}: mediaType 'application/vnd.oci.image.manifest.v1+json' disagrees with its Content-Type 'application/vnd.oci.image.index.v1+json'"
            ),
        ),
        (
            Tamper::MixedManifest,
            "manifest has 'manifests' (an index) where an image manifest was expected".to_string(),
        ),
        (
            Tamper::MissingBlob(component_digest.clone()),
            component_digest.clone(),
        ),
    ];
    for (i, (tamper, message)) in cases.into_iter().enumerate() {
        let proxy = start_proxy(registry.addr.clone(), tamper);
        let remote = format!("{proxy}/models/iris:1");
        let fresh = dir.join(format!("fresh{i}"));
        let fresh_arg = fresh.to_str().unwrap();
        let (status, output) = run_kiln(&["pull", &remote, "--store", fresh_arg]);
        assert!(!status.success(), "case {i} pulled");
        assert!(output.contains(&message), "case {i}: {output}");
        let blobs = std::fs::read_dir(fresh.join("blobs/sha256"))
            .unwrap()
            .count();
        assert_eq!(blobs, 0, "case {i}: nothing may be written to the store");
        let (status, output) = run_kiln(&[
            "serve",
            "--store",
            fresh_arg,
            "--deploy",
            &format!("iris={remote}"),
        ]);
        assert!(!status.success(), "case {i} deployed");
        assert!(output.contains(&message), "case {i}: {output}");
    }
    // The same image through an honest path still pulls, at the digest that was pushed.
    let (status, output) = run_kiln(&[
        "pull",
        &format!("{}/models/iris:1", registry.addr),
        "--store",
        dir.join("honest").to_str().unwrap(),
        "--output",
        "json",
    ]);
    assert!(status.success(), "{output}");
    assert_eq!(
        serde_json::from_str::<Value>(output.trim()).unwrap()["digest"],
        json!(manifest_digest)
    );
}

#[test]
fn images_kiln_cannot_deploy_are_refused_before_any_blob_is_fetched() {
    use kiln_image::media::{KILN_ARTIFACT, KILN_CONFIG, OCI_MANIFEST, WASM_CONFIG, WASM_LAYER};
    use kiln_image::{ImageManifest, OciStore};

    let registry = RegistryServer::start(None);
    let dir = temp_dir("undeployable");
    let store_dir = dir.join("store");
    let store = OciStore::open(&store_dir).unwrap();
    let faults = std::fs::read(component("faults")).unwrap();
    let twice = ImageManifest {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST.into()),
        artifact_type: None,
        config: store
            .put_blob(
                WASM_CONFIG,
                b"{\"architecture\":\"wasm\",\"os\":\"wasip2\"}",
            )
            .unwrap(),
        layers: vec![
            store.put_blob(WASM_LAYER, &faults).unwrap(),
            store.put_blob(WASM_LAYER, b"\0asm second").unwrap(),
        ],
        annotations: Default::default(),
    };
    let container = ImageManifest {
        config: store
            .put_blob("application/vnd.oci.image.config.v1+json", b"{}")
            .unwrap(),
        layers: vec![
            store
                .put_blob("application/vnd.oci.image.layer.v1.tar+gzip", b"not a tar")
                .unwrap(),
        ],
        ..twice.clone()
    };
    let odd_layer = ImageManifest {
        artifact_type: Some(KILN_ARTIFACT.into()),
        config: store.put_blob(KILN_CONFIG, b"{}").unwrap(),
        layers: vec![
            store.put_blob(WASM_LAYER, &faults).unwrap(),
            store
                .put_blob("application/x-shellscript", b"#!/bin/sh\nrm -rf /\n")
                .unwrap(),
        ],
        ..twice.clone()
    };
    let cases = [
        (twice, "has 2 components where one is expected"),
        (container, "has no application/wasm layer"),
        (
            odd_layer,
            "has unknown media type 'application/x-shellscript'",
        ),
    ];
    for (i, (manifest, message)) in cases.into_iter().enumerate() {
        let tag = format!("bad{i}:1");
        let digest = store.put_manifest(&manifest, &tag).unwrap().digest;
        let remote = format!("{}/models/bad{i}:1", registry.addr);
        let (status, output) = run_kiln(&[
            "push",
            &tag,
            &remote,
            "--store",
            store_dir.to_str().unwrap(),
        ]);
        assert!(status.success(), "case {i}: {output}");
        let fresh = dir.join(format!("fresh{i}"));
        let fresh_arg = fresh.to_str().unwrap();
        let (status, output) = run_kiln(&["pull", &remote, "--store", fresh_arg]);
        assert!(!status.success(), "case {i} pulled");
        assert!(output.contains(message), "case {i}: {output}");
        assert!(output.contains(digest.as_str()), "case {i}: {output}");
        let blobs = std::fs::read_dir(fresh.join("blobs/sha256"))
            .unwrap()
            .count();
        assert_eq!(blobs, 0, "case {i}: nothing may be written to the store");
        let (status, output) = run_kiln(&[
            "serve",
            "--store",
            fresh_arg,
            "--deploy",
            &format!("bad={remote}"),
        ]);
        assert!(!status.success(), "case {i} deployed");
        assert!(output.contains(message), "case {i}: {output}");
    }
}
