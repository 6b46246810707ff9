//! Unit tests of manifests: reading, checking, scorers, samples and monitoring sections.

use super::*;

fn dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("kiln-recipe-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(d.join("model/sub")).expect("mkdir");
    d
}

#[test]
fn manifests_round_trip_and_reject_unknown_keys_and_capabilities() {
    let d = dir("keys");
    std::fs::write(d.join("model/w.json"), "{}").expect("write");
    std::fs::write(d.join("model/sub/v.txt"), "v").expect("write");
    let text = "name = \"iris\"\nversion = \"1\"\n[scorer]\ncomponent = \"iris.wasm\"\n[model]\nfiles = [\"model\"]\n";
    std::fs::write(d.join("kiln.toml"), text).expect("write");
    let (manifest, base) = ModelManifest::read(&d.join("kiln.toml")).expect("read");
    let names: Vec<String> = manifest
        .model_files(&base)
        .expect("files")
        .into_iter()
        .map(|f| f.0)
        .collect();
    assert_eq!(names, vec!["sub/v.txt", "w.json"]);
    assert_eq!(
        toml::from_str::<ModelManifest>(&manifest.to_toml()).expect("round trip"),
        manifest
    );

    std::fs::write(d.join("bad.toml"), format!("{text}colour = \"red\"\n")).expect("write");
    let err = ModelManifest::read(&d.join("bad.toml"))
        .expect_err("unknown key")
        .to_string();
    assert!(err.contains("unknown field `colour`"), "{err}");
    std::fs::write(
        d.join("net.toml"),
        format!("capabilities = [\"network\"]\n{text}"),
    )
    .expect("write");
    let err = ModelManifest::read(&d.join("net.toml"))
        .expect_err("capability")
        .to_string();
    assert!(
        err.contains("capability 'network' is not available"),
        "{err}"
    );
    std::fs::write(
        d.join("gone.toml"),
        text.replace("\"model\"", "\"nothing\""),
    )
    .expect("write");
    assert!(ModelManifest::read(&d.join("gone.toml")).is_err());
    std::fs::write(
        d.join("nobase.toml"),
        format!("{text}[baseline]\nbins = 5\n"),
    )
    .expect("write");
    let err = ModelManifest::read(&d.join("nobase.toml"))
        .expect_err("baseline")
        .to_string();
    assert!(err.contains("[baseline] needs a file"), "{err}");
    std::fs::write(
        d.join("nomon.toml"),
        format!("{text}[monitoring]\nwindow_s = 60\n"),
    )
    .expect("write");
    let err = ModelManifest::read(&d.join("nomon.toml"))
        .expect_err("monitoring without a baseline")
        .to_string();
    assert!(err.contains("[monitoring] needs a [baseline]"), "{err}");
    std::fs::write(d.join("s.csv"), "a\n1\n").expect("write");
    std::fs::write(
        d.join("filemon.toml"),
        format!("{text}[sample]\nfile = \"s.csv\"\n[baseline]\n[monitoring]\ncomponent = \"/tmp/m.wasm\"\n"),
    )
    .expect("write");
    let err = ModelManifest::read(&d.join("filemon.toml"))
        .expect_err("a file as monitor")
        .to_string();
    assert!(err.contains("not a file"), "{err}");
    std::fs::write(
        d.join("mon.toml"),
        format!("{text}[sample]\nfile = \"s.csv\"\n[baseline]\n[monitoring]\nconfig = \"psi_alert=0.3\"\nwindow_s = 60\n"),
    )
    .expect("write");
    let (m, _) = ModelManifest::read(&d.join("mon.toml")).expect("monitoring with a baseline");
    let image = m.monitoring.expect("section");
    let deployment = MonitoringSettings {
        component: Some("reg.example/m:1".into()),
        ..Default::default()
    };
    let merged = deployment.or(&image);
    assert_eq!(merged.component.as_deref(), Some("reg.example/m:1"));
    assert_eq!(
        (merged.config.as_str(), merged.window_s),
        ("psi_alert=0.3", Some(60))
    );
}

#[test]
fn a_scorer_is_a_name_or_a_table() {
    let d = dir("scorer");
    let short = "name = \"m\"\nversion = \"1\"\nscorer = \"onnx\"\n[model]\nfiles = [\"model\"]\n";
    std::fs::write(d.join("short.toml"), short).expect("write");
    let (manifest, _) = ModelManifest::read(&d.join("short.toml")).expect("a name");
    assert_eq!(manifest.scorer.component, "onnx");
    assert_eq!(manifest.scorer.config, "");
    let text = manifest.to_toml();
    assert!(text.contains("scorer = \"onnx\""), "{text}");
    assert_eq!(
        toml::from_str::<ModelManifest>(&text).expect("round trip"),
        manifest
    );

    let configured = ModelManifest {
        scorer: ScorerSection {
            component: "onnx".into(),
            config: "model=a.onnx".into(),
            ..ScorerSection::default()
        },
        ..manifest
    };
    let text = configured.to_toml();
    assert!(text.contains("[scorer]"), "{text}");
    assert_eq!(
        toml::from_str::<ModelManifest>(&text).expect("round trip"),
        configured
    );

    for (bad, says) in [
        ("scorer = 3", "scorer must be a name"),
        (
            "[scorer]\ncomponent = \"onnx\"\ncolour = 1",
            "[scorer] unknown field `colour`",
        ),
    ] {
        let text = format!("name = \"m\"\nversion = \"1\"\n{bad}\n");
        let err = toml::from_str::<ModelManifest>(&text)
            .expect_err(bad)
            .to_string();
        assert!(err.contains(says), "{bad}: {err}");
    }
}

#[test]
fn samples_read_from_csv_and_json() {
    let d = dir("sample");
    std::fs::write(d.join("s.csv"), "a,b\n1,2.5\n3,\n5,6\n").expect("write");
    let t = SampleTable::read(&d.join("s.csv"), 2).expect("csv");
    assert_eq!(t.columns, vec!["a", "b"]);
    assert_eq!(
        t.rows,
        vec![
            vec![Value::from(1), Value::from(2.5)],
            vec![Value::from(3), Value::Null]
        ]
    );
    assert_eq!(t.numeric()[1], vec![Some(3.0), None]);
    std::fs::write(d.join("s.json"), r#"[{"a": 1, "b": 2}, {"a": 3, "b": 4}]"#).expect("write");
    assert_eq!(
        SampleTable::read(&d.join("s.json"), 10)
            .expect("json")
            .rows
            .len(),
        2
    );
    std::fs::write(d.join("e.csv"), "a,b\n").expect("write");
    assert!(SampleTable::read(&d.join("e.csv"), 10).is_err());
    // The image's sample blob reads back as it was written.
    let back = SampleTable::from_json(&t.to_json()).expect("round trip");
    assert_eq!((back.columns, back.rows), (t.columns, t.rows));
    let bad = SampleTable::from_json(b"[1, 2]").expect_err("not a split table");
    assert!(
        bad.to_string().contains("sample rows are not readable"),
        "{bad}"
    );
}
