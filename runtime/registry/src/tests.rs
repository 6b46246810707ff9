//! Unit tests of references, credentials and transfers.

use super::*;

#[test]
fn references_and_loopback() {
    assert!(is_registry_reference("127.0.0.1:5000/models/iris:1"));
    assert!(is_registry_reference("oci://ghcr.io/acme/iris@sha256:abc"));
    assert!(is_registry_reference("localhost/iris:1"));
    assert!(!is_registry_reference("iris:1"));
    assert!(!is_registry_reference("models/iris.wasm"));
    assert!(is_loopback("127.0.0.1:5055") && is_loopback("localhost") && !is_loopback("ghcr.io"));
    let r = parse_reference("oci://127.0.0.1:5055/models/iris:1").expect("parse");
    assert_eq!(r.resolve_registry(), "127.0.0.1:5055");
    assert_eq!(
        (r.registry(), r.repository(), r.tag()),
        ("127.0.0.1:5055", "models/iris", Some("1"))
    );
}

#[test]
fn credentials_go_to_their_host_and_no_other() {
    let options = RegistryOptions {
        credentials: Some(Credentials {
            host: "Registry.Example.com:5000".into(),
            username: "u".into(),
            password: "p".into(),
        }),
        docker_config: false,
        ..RegistryOptions::default()
    };
    let basic = RegistryAuth::Basic("u".into(), "p".into());
    for same in ["registry.example.com:5000", "REGISTRY.example.com:5000"] {
        assert_eq!(credentials(same, &options), basic, "{same}");
    }
    for other in [
        "registry.example.com",
        "registry.example.com:5001",
        "evil.example.com:5000",
        "127.0.0.1:5000",
        "registry.example.com:5000.evil.com",
    ] {
        assert_eq!(
            credentials(other, &options),
            RegistryAuth::Anonymous,
            "{other}"
        );
    }
    // Docker Hub's names are one host, as a reference resolves them.
    let hub = RegistryOptions {
        credentials: Some(Credentials {
            host: "docker.io".into(),
            username: "u".into(),
            password: "p".into(),
        }),
        docker_config: false,
        ..RegistryOptions::default()
    };
    let reference = parse_reference("docker.io/library/python:3").expect("parse");
    assert_eq!(credentials(reference.resolve_registry(), &hub), basic);
    assert!(!format!("{:?}", hub.credentials).contains("\"p\""));
}
