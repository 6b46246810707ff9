//! Unit tests of the monitor.

#![allow(clippy::unwrap_used)]
use super::*;
use kiln_engine::{Datatype, TensorData, TensorSpec};
use serde_json::Value;

fn metadata() -> ModelMetadata {
    ModelMetadata {
        name: "m".into(),
        platform: "test".into(),
        inputs: vec![
            TensorSpec {
                name: "x".into(),
                datatype: Datatype::Fp32,
                shape: vec![-1, 2],
            },
            TensorSpec {
                name: "image".into(),
                datatype: Datatype::Fp32,
                shape: vec![-1, 784],
            },
        ],
        outputs: vec![TensorSpec {
            name: "label".into(),
            datatype: Datatype::Int64,
            shape: vec![-1],
        }],
    }
}

fn baseline() -> Baseline {
    let rows: Vec<Vec<Value>> = (0..100)
        .map(|i| vec![Value::from(i), Value::from(i % 2)])
        .collect();
    let mut b = Baseline::from_table(&["a".into(), "b".into()], &rows, 4, "sample");
    b.predictions = vec![kiln_image::FeatureBaseline::categorical(
        "label",
        (0..100).map(|i| Some((i % 3).to_string())),
    )];
    b
}

fn monitor() -> Monitor {
    let metrics = kiln_metrics::Metrics::new();
    let meta = metadata();
    let b = baseline();
    Monitor::new(
        "d",
        "1",
        &meta,
        Some(&b),
        MonitorSettings {
            window: Duration::from_millis(1),
            ..MonitorSettings::default()
        },
        metrics.monitor("d", "1"),
    )
}

fn request(rows: &[[f32; 2]], labels: &[i64]) -> (Vec<Tensor>, Vec<Tensor>) {
    let x = Tensor {
        name: "x".into(),
        shape: vec![rows.len() as i64, 2],
        data: TensorData::Fp32(rows.iter().flatten().copied().collect()),
    };
    let image = Tensor {
        name: "image".into(),
        shape: vec![1, 784],
        data: TensorData::Fp32(vec![0.5; 784]),
    };
    let label = Tensor {
        name: "label".into(),
        shape: vec![labels.len() as i64],
        data: TensorData::Int64(labels.to_vec()),
    };
    (vec![x, image], vec![label])
}

#[test]
fn the_baseline_maps_onto_tabular_columns_and_wide_tensors_get_summaries() {
    let m = monitor();
    let names: Vec<_> = m
        .plan()
        .slots
        .iter()
        .map(|s| (s.baseline.name.as_str(), s.role, s.column))
        .collect();
    assert_eq!(
        names,
        vec![
            ("a", Role::Input, 0),
            ("b", Role::Input, 1),
            ("label", Role::Output, 0)
        ]
    );
    assert_eq!(m.plan().summaries.len(), 1);
    assert_eq!(m.plan().summaries[0].name, "image");
}

#[test]
fn values_fold_into_bins_and_quality_counters_and_windows_are_differences() {
    let m = monitor();
    let na = f32::from_bits(NA_F32);
    let (inputs, outputs) = request(
        &[
            [10.0, 0.0],
            [60.0, 1.0],
            [na, 1.0],
            [f32::NAN, 500.0],
            [-3.0, 1.0],
        ],
        &[0, 1, 2, 7, 0],
    );
    m.observe(&inputs, &outputs);
    std::thread::sleep(Duration::from_millis(2));
    let window = m.tick().unwrap();
    let f = m.features(&window.counts);
    assert_eq!(f[0].reference, vec![25, 25, 25, 25]);
    // 10 and -3 in the first bin, 60 in the third; NA missing, NaN not a number.
    assert_eq!(f[0].current, vec![2, 0, 1, 0]);
    let a = &m.plan().slots[0];
    let quality = &window.counts[a.offset + 4..a.offset + 7];
    assert_eq!(quality, &[1, 1, 1], "missing, nan, out of range (-3)");
    // Categories of the label: 7 is unlisted (other bin, out of range).
    let label = &m.plan().slots[2];
    let cats = &label.baseline.categories;
    let bin = |v: &str| cats.iter().position(|c| c == v).unwrap();
    assert_eq!(f[2].current[bin("0")], 2);
    assert_eq!(f[2].current[bin(kiln_image::OTHER)], 1);
    assert_eq!(window.counts[label.offset + label.bins() + 2], 1);
    // The next window holds only what came after.
    m.observe(&inputs, &outputs);
    std::thread::sleep(Duration::from_millis(2));
    let next = m.tick().unwrap();
    assert_eq!(m.features(&next.counts)[0].current, vec![2, 0, 1, 0]);
    assert_eq!(m.cumulative().counts[a.offset], 4);
    assert_eq!(m.windows().len(), 2);
}

#[test]
fn features_past_the_cap_are_not_monitored_and_say_why() {
    let plan = Plan::new(&metadata(), &baseline(), 2);
    assert_eq!(plan.slots.len(), 2);
    assert_eq!(plan.unmonitored.len(), 1);
    assert_eq!(plan.unmonitored[0].0, "label");
    assert!(
        plan.unmonitored[0].1.contains("limit of 2"),
        "{:?}",
        plan.unmonitored
    );
}

#[test]
fn updates_from_many_threads_are_all_counted() {
    let m = Arc::new(monitor());
    let (inputs, outputs) = request(&[[10.0, 0.0]; 8], &[0; 8]);
    std::thread::scope(|scope| {
        for _ in 0..4 {
            let (m, inputs, outputs) = (m.clone(), inputs.clone(), outputs.clone());
            scope.spawn(move || {
                for _ in 0..1000 {
                    m.observe(&inputs, &outputs);
                }
            });
        }
    });
    let counts = m.cumulative().counts;
    assert_eq!(m.features(&counts)[0].current[0], 32_000);
}
