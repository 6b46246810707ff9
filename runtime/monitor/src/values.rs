//! A tensor's values as the monitor reads them: numbers, or labels for categories.

use kiln_engine::TensorData;

/// Numbers of a tensor, as f64 (BYTES as NaN).
pub fn numbers(data: &TensorData) -> Vec<f64> {
    fn map<T: Copy>(v: &[T], f: impl Fn(T) -> f64) -> Vec<f64> {
        v.iter().map(|x| f(*x)).collect()
    }
    match data {
        TensorData::Bool(v) => map(v, |b| f64::from(u8::from(b))),
        TensorData::Uint8(v) => map(v, f64::from),
        TensorData::Uint16(v) => map(v, f64::from),
        TensorData::Uint32(v) => map(v, f64::from),
        TensorData::Uint64(v) => map(v, |x| x as f64),
        TensorData::Int8(v) => map(v, f64::from),
        TensorData::Int16(v) => map(v, f64::from),
        TensorData::Int32(v) => map(v, f64::from),
        TensorData::Int64(v) => map(v, |x| x as f64),
        TensorData::Fp16(v) => map(v, f16_to_f64),
        TensorData::Fp32(v) => map(v, f64::from),
        TensorData::Fp64(v) => v.clone(),
        TensorData::Bytes(v) => vec![f64::NAN; v.len()],
    }
}

/// Labels of a tensor, as the baseline writes categories.
pub fn labels(data: &TensorData) -> Vec<String> {
    fn map<T: ToString>(v: &[T]) -> Vec<String> {
        v.iter().map(ToString::to_string).collect()
    }
    match data {
        TensorData::Bool(v) => map(v),
        TensorData::Uint8(v) => map(v),
        TensorData::Uint16(v) => map(v),
        TensorData::Uint32(v) => map(v),
        TensorData::Uint64(v) => map(v),
        TensorData::Int8(v) => map(v),
        TensorData::Int16(v) => map(v),
        TensorData::Int32(v) => map(v),
        TensorData::Int64(v) => map(v),
        TensorData::Bytes(v) => v
            .iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect(),
        other => numbers(other).iter().map(|f| f.to_string()).collect(),
    }
}

pub(crate) fn f16_to_f64(bits: u16) -> f64 {
    let sign = if bits & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exponent = i32::from((bits >> 10) & 0x1f);
    let fraction = f64::from(bits & 0x3ff);
    match exponent {
        0 => sign * fraction * 2f64.powi(-24),
        31 if fraction == 0.0 => sign * f64::INFINITY,
        31 => f64::NAN,
        e => sign * (1.0 + fraction / 1024.0) * 2f64.powi(e - 15),
    }
}
