//! The hot path: each request's monitored values fold into per-feature histograms of relaxed
//! atomic counters, sharded so that threads on different cores never write the same cache line.

use crate::plan::{MISSING, NAN, OUT_OF_RANGE, Plan, Slot};
use crate::values::{f16_to_f64, labels, numbers};
use kiln_engine::{Tensor, TensorData};
use kiln_image::{FeatureKind, bin_of};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// The bits of an FP32 "missing" value: a quiet NaN with payload 1954, as R's `NA`. Protocol
/// adapters write it for JSON `null`; the model sees a NaN, the monitor counts it as missing.
pub const NA_F32: u32 = 0x7fc0_07a2;
/// The bits of an FP64 "missing" value (R's `NA_real_`).
pub const NA_F64: u64 = 0x7ff8_0000_0000_07a2;
/// The bits of an FP16 "missing" value.
pub const NA_F16: u16 = 0x7fa2;

/// Counters per shard: one cache line of padding on each side keeps shards apart.
const PAD: usize = 16;

/// Histograms and data-quality counters of one deployment version since it started.
pub struct Sketch {
    shards: Vec<Box<[AtomicU64]>>,
    counters: usize,
    summaries: usize,
}

/// Per wide tensor: elements, NaN elements, sum and sum of squares (f64 bits).
const SUMMARY: usize = 4;

fn shard_index(shards: usize) -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static INDEX: usize = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    INDEX.with(|i| *i) % shards
}

/// What a value is, for the quality counters.
enum Quality {
    Missing,
    Nan,
    Value(f64),
}

impl Sketch {
    /// Zeroed counters for `plan`, in `shards` shards.
    pub fn new(plan: &Plan, shards: usize) -> Sketch {
        let counters = plan.counters + plan.summaries.len() * SUMMARY;
        let shards = (0..shards.max(1))
            .map(|_| (0..counters + 2 * PAD).map(|_| AtomicU64::new(0)).collect())
            .collect();
        Sketch {
            shards,
            counters,
            summaries: plan.summaries.len(),
        }
    }

    /// Shards for this machine: a power of two at least the number of cores.
    pub fn default_shards() -> usize {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(4)
            .next_power_of_two()
            .max(2)
    }

    /// Folds one request into the histograms: `inputs` and `outputs` in metadata order.
    pub fn observe(&self, plan: &Plan, inputs: &[Tensor], outputs: &[Tensor]) {
        let shard = &self.shards[shard_index(self.shards.len())][PAD..PAD + self.counters];
        let add = |i: usize| {
            shard[i].fetch_add(1, Ordering::Relaxed);
        };
        for slot in &plan.slots {
            let tensors = match slot.role {
                crate::plan::Role::Input => inputs,
                crate::plan::Role::Output => outputs,
            };
            let Some(tensor) = tensors.get(slot.tensor) else {
                continue;
            };
            let bins = slot.bins();
            match slot.baseline.kind {
                FeatureKind::Numeric => numeric(slot, &tensor.data, |q| match q {
                    Quality::Missing => add(slot.offset + bins + MISSING),
                    Quality::Nan => add(slot.offset + bins + NAN),
                    Quality::Value(v) => {
                        add(slot.offset + bin_of(&slot.baseline.edges, v));
                        let below = slot.baseline.min.is_some_and(|m| v < m);
                        let above = slot.baseline.max.is_some_and(|m| v > m);
                        if below || above {
                            add(slot.offset + bins + OUT_OF_RANGE);
                        }
                    }
                }),
                FeatureKind::Categorical => categorical(slot, &tensor.data, |bin, listed| {
                    add(slot.offset + bin);
                    if !listed {
                        add(slot.offset + bins + OUT_OF_RANGE);
                    }
                }),
            }
        }
        for (k, summary) in plan.summaries.iter().enumerate() {
            let Some(tensor) = inputs.get(summary.tensor) else {
                continue;
            };
            let (mut n, mut nan, mut sum, mut sq) = (0u64, 0u64, 0.0f64, 0.0f64);
            for v in numbers(&tensor.data) {
                n += 1;
                if v.is_finite() {
                    sum += v;
                    sq += v * v;
                } else {
                    nan += 1;
                }
            }
            let base = plan.counters + k * SUMMARY;
            shard[base].fetch_add(n, Ordering::Relaxed);
            shard[base + 1].fetch_add(nan, Ordering::Relaxed);
            for (i, value) in [(base + 2, sum), (base + 3, sq)] {
                let _ = shard[i].fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                    Some((f64::from_bits(bits) + value).to_bits())
                });
            }
        }
    }

    /// Every counter summed over the shards (summary sums as f64 bits, summed as floats).
    pub fn snapshot(&self) -> Vec<u64> {
        let mut total = vec![0u64; self.counters];
        let float_start = self.counters - self.summaries * SUMMARY;
        for shard in &self.shards {
            for (i, value) in shard[PAD..PAD + self.counters].iter().enumerate() {
                let v = value.load(Ordering::Relaxed);
                let is_float = i >= float_start && (i - float_start) % SUMMARY >= 2;
                total[i] = if is_float {
                    (f64::from_bits(total[i]) + f64::from_bits(v)).to_bits()
                } else {
                    total[i] + v
                };
            }
        }
        total
    }
}

fn numeric(slot: &Slot, data: &TensorData, mut each: impl FnMut(Quality)) {
    let (column, width) = (slot.column, slot.width);
    macro_rules! ints {
        ($v:expr) => {
            for x in $v.iter().skip(column).step_by(width) {
                each(Quality::Value(*x as f64));
            }
        };
    }
    match data {
        TensorData::Fp32(v) => {
            for x in v.iter().skip(column).step_by(width) {
                each(if x.is_finite() {
                    Quality::Value(f64::from(*x))
                } else if x.to_bits() == NA_F32 {
                    Quality::Missing
                } else {
                    Quality::Nan
                });
            }
        }
        TensorData::Fp64(v) => {
            for x in v.iter().skip(column).step_by(width) {
                each(if x.is_finite() {
                    Quality::Value(*x)
                } else if x.to_bits() == NA_F64 {
                    Quality::Missing
                } else {
                    Quality::Nan
                });
            }
        }
        TensorData::Fp16(v) => {
            for x in v.iter().skip(column).step_by(width) {
                let f = f16_to_f64(*x);
                each(if f.is_finite() {
                    Quality::Value(f)
                } else if *x == NA_F16 {
                    Quality::Missing
                } else {
                    Quality::Nan
                });
            }
        }
        TensorData::Bool(v) => {
            for x in v.iter().skip(column).step_by(width) {
                each(Quality::Value(f64::from(u8::from(*x))));
            }
        }
        TensorData::Uint8(v) => ints!(v),
        TensorData::Uint16(v) => ints!(v),
        TensorData::Uint32(v) => ints!(v),
        TensorData::Uint64(v) => ints!(v),
        TensorData::Int8(v) => ints!(v),
        TensorData::Int16(v) => ints!(v),
        TensorData::Int32(v) => ints!(v),
        TensorData::Int64(v) => ints!(v),
        TensorData::Bytes(v) => {
            for _ in v.iter().skip(column).step_by(width) {
                each(Quality::Nan);
            }
        }
    }
}

fn categorical(slot: &Slot, data: &TensorData, mut each: impl FnMut(usize, bool)) {
    let (column, width, c) = (slot.column, slot.width, &slot.categories);
    macro_rules! ints {
        ($v:expr) => {
            for x in $v.iter().skip(column).step_by(width) {
                let (bin, listed) = i64::try_from(*x)
                    .map(|x| c.of_int(x))
                    .unwrap_or((c.other, false));
                each(bin, listed);
            }
        };
    }
    match data {
        TensorData::Bytes(v) => {
            for x in v.iter().skip(column).step_by(width) {
                let (bin, listed) = c.of_bytes(x);
                each(bin, listed);
            }
        }
        TensorData::Bool(v) => {
            for x in v.iter().skip(column).step_by(width) {
                let (bin, listed) = c.of_int(i64::from(*x));
                each(bin, listed);
            }
        }
        TensorData::Uint8(v) => ints!(v),
        TensorData::Uint16(v) => ints!(v),
        TensorData::Uint32(v) => ints!(v),
        TensorData::Uint64(v) => ints!(v),
        TensorData::Int8(v) => ints!(v),
        TensorData::Int16(v) => ints!(v),
        TensorData::Int32(v) => ints!(v),
        TensorData::Int64(v) => ints!(v),
        other => {
            for label in labels(other).iter().skip(column).step_by(width) {
                let (bin, listed) = c.of_bytes(label.as_bytes());
                each(bin, listed);
            }
        }
    }
}
