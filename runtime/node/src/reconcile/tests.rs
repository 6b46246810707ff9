//! Unit tests of the reconcile step: the plan, the reports, and a pass over an in-memory source.

use super::*;
use crate::source::InMemory;
use kiln_api::{Limits, ScaleSettings};

fn desired(name: &str, generation: i64, digest: &str) -> DesiredDeployment {
    DesiredDeployment {
        name: name.into(),
        generation,
        reference: format!("{name}:1@{digest}"),
        digest: digest.into(),
        limits: Limits::default(),
        public: false,
        key_digests: vec![],
        monitoring: MonitoringSettings::default(),
        scale: ScaleSettings::default(),
    }
}

fn seen_of(d: &DesiredDeployment, serving: bool) -> Seen {
    Seen {
        generation: d.generation,
        image_key: image_key(d),
        serving,
    }
}

fn names(steps: &[Step<'_>]) -> Vec<String> {
    steps
        .iter()
        .map(|s| match s {
            Step::Remove(n) => format!("remove {n}"),
            Step::Load(d) => format!("load {}@{}", d.name, d.generation),
            Step::Update(d) => format!("update {}@{}", d.name, d.generation),
        })
        .collect()
}

#[test]
fn new_deployments_load_and_unchanged_ones_are_left_alone() {
    let a = desired("a", 1, "sha256:aa");
    let b = desired("b", 3, "sha256:bb");
    let seen = HashMap::from([("b".to_string(), seen_of(&b, true))]);
    let wanted = vec![a, b];
    assert_eq!(names(&plan(&seen, &wanted)), ["load a@1"]);
    assert!(plan(&HashMap::new(), &[]).is_empty());
}

#[test]
fn a_changed_image_or_limits_reloads_and_new_keys_do_not() {
    let old = desired("m", 1, "sha256:aa");
    let seen = HashMap::from([("m".to_string(), seen_of(&old, true))]);
    let image = desired("m", 2, "sha256:bb");
    assert_eq!(
        names(&plan(&seen, std::slice::from_ref(&image))),
        ["load m@2"]
    );
    let mut limits = desired("m", 2, "sha256:aa");
    limits.limits.memory_mb = Some(64);
    assert_eq!(
        names(&plan(&seen, std::slice::from_ref(&limits))),
        ["load m@2"]
    );
    let mut scale = desired("m", 2, "sha256:aa");
    scale.scale.max_instances = Some(8);
    assert_eq!(
        names(&plan(&seen, std::slice::from_ref(&scale))),
        ["load m@2"]
    );
    let mut keys = desired("m", 2, "sha256:aa");
    keys.key_digests = vec!["ab".repeat(32)];
    keys.public = true;
    keys.monitoring.window_s = Some(30);
    keys.scale.min_instances = Some(1);
    assert_eq!(
        names(&plan(&seen, std::slice::from_ref(&keys))),
        ["update m@2"]
    );
}

#[test]
fn removed_deployments_go_first_in_name_order() {
    let kept = desired("kept", 1, "sha256:aa");
    let seen = HashMap::from([
        (
            "zeta".to_string(),
            seen_of(&desired("zeta", 1, "sha256:cc"), true),
        ),
        (
            "alpha".to_string(),
            seen_of(&desired("alpha", 4, "sha256:dd"), false),
        ),
        ("kept".to_string(), seen_of(&kept, true)),
    ]);
    let fresh = desired("fresh", 1, "sha256:ee");
    assert_eq!(
        names(&plan(&seen, &[fresh, kept])),
        ["remove alpha", "remove zeta", "load fresh@1"]
    );
}

#[test]
fn a_failed_generation_is_not_retried_until_the_next_one() {
    let failed = desired("m", 2, "sha256:aa");
    let seen = HashMap::from([("m".to_string(), seen_of(&failed, false))]);
    assert!(plan(&seen, std::slice::from_ref(&failed)).is_empty());
    // Same image, new keys, but nothing serves: it must load, not update.
    let mut next = desired("m", 3, "sha256:aa");
    next.key_digests = vec!["cd".repeat(32)];
    assert_eq!(names(&plan(&seen, &[next])), ["load m@3"]);
}

#[test]
fn generations_race_by_equality_not_order() {
    // Deleted and created again with the same name: generation 1 after generation 7.
    let before = desired("m", 7, "sha256:aa");
    let seen = HashMap::from([("m".to_string(), seen_of(&before, true))]);
    let recreated = desired("m", 1, "sha256:bb");
    assert_eq!(names(&plan(&seen, &[recreated])), ["load m@1"]);
    // A generation that moved on while the pass ran is seen at the next pass.
    let moved = desired("m", 8, "sha256:aa");
    assert_eq!(names(&plan(&seen, &[moved])), ["update m@8"]);
}

#[test]
fn a_failure_says_which_version_still_serves() {
    let alone = failure(4, "no image 'm:2'", None);
    assert_eq!(alone.state, ServingState::Failed);
    assert_eq!(alone.reason.as_deref(), Some("no image 'm:2'"));
    let replaced = failure(5, "sample check failed: x", Some("3"));
    assert_eq!(
        replaced.reason.as_deref(),
        Some("sample check failed: x (version 3 of the previous generation still serves)")
    );
    assert_eq!(ready(6).state, ServingState::Ready);
    assert_eq!(ready(6).reason, None);
}

fn node(store: &std::path::Path) -> Node {
    let engine = Arc::new(
        kiln_engine::ScoringEngine::new(&kiln_engine::EngineConfig {
            allocation: kiln_engine::Allocation::OnDemand,
            ..kiln_engine::EngineConfig::default()
        })
        .expect("engine"),
    );
    let metrics = Arc::new(kiln_metrics::Metrics::new());
    Node {
        monitoring: crate::Monitoring::new(
            crate::MonitoringConfig::default(),
            engine.clone(),
            metrics.clone(),
            Some(store.to_path_buf()),
            kiln_registry::RegistryOptions::default(),
        ),
        engine,
        metrics,
        dataplane: Arc::new(kiln_dataplane::Dataplane::new(
            kiln_dataplane::ServerLimits::default(),
        )),
        store_dir: Some(store.to_path_buf()),
        registry: kiln_registry::RegistryOptions::default(),
        defaults: Limits::default(),
    }
}

#[tokio::test]
async fn a_pass_reports_failures_and_removals_and_survives_a_source_that_is_down() {
    let store = std::env::temp_dir().join(format!("kiln-node-pass-{}", std::process::id()));
    let node = node(&store);
    let dataplane = node.dataplane.clone();
    let source = Arc::new(InMemory::default());
    let digest = format!("sha256:{}", "0".repeat(64));
    source.update(|m| m.deployments = vec![desired("ghost", 2, &digest)]);
    let mut reconciler = Reconciler::new(node, source.clone());
    assert!(reconciler.pass().await);
    let reports = source.snapshot().statuses;
    assert_eq!(reports.len(), 1, "{reports:?}");
    let (name, report) = &reports[0];
    assert_eq!((name.as_str(), report.generation), ("ghost", 2));
    assert_eq!(report.state, ServingState::Failed);
    let reason = report.reason.clone().unwrap_or_default();
    assert!(
        reason.contains(&format!("no image 'ghost:1@{digest}'")),
        "{reason}"
    );
    let answer = dataplane.registry.get("ghost", None).err().expect("503");
    assert!(
        answer.message.contains("is not ready"),
        "{}",
        answer.message
    );

    // The same generation is not tried again, and nothing more is reported.
    assert!(reconciler.pass().await);
    assert_eq!(source.snapshot().statuses.len(), 1);

    // A source that cannot be read changes nothing.
    source.update(|m| m.unavailable = Some("control plane down".into()));
    assert!(!reconciler.pass().await);
    assert_eq!(reconciler.seen().len(), 1);

    // Removed from the desired state, it goes from the dataplane.
    source.update(|m| {
        m.unavailable = None;
        m.deployments.clear();
    });
    assert!(reconciler.pass().await);
    assert!(reconciler.seen().is_empty());
    let answer = dataplane.registry.get("ghost", None).err().expect("gone");
    assert!(answer.message.contains("not found"), "{}", answer.message);
    let _ = std::fs::remove_dir_all(&store);
}
