//! Tensor conversions shared by every protocol: JSON and Triton binary to and from typed data,
//! and the checks of a tensor against the model's metadata.

use kiln_engine::{Datatype, Tensor, TensorData, TensorSpec};
use serde_json::Value;

/// The Open Inference Protocol name of a datatype.
pub fn datatype_name(datatype: Datatype) -> &'static str {
    match datatype {
        Datatype::Bool => "BOOL",
        Datatype::Uint8 => "UINT8",
        Datatype::Uint16 => "UINT16",
        Datatype::Uint32 => "UINT32",
        Datatype::Uint64 => "UINT64",
        Datatype::Int8 => "INT8",
        Datatype::Int16 => "INT16",
        Datatype::Int32 => "INT32",
        Datatype::Int64 => "INT64",
        Datatype::Fp16 => "FP16",
        Datatype::Fp32 => "FP32",
        Datatype::Fp64 => "FP64",
        Datatype::Bytes => "BYTES",
    }
}

/// Parses an Open Inference Protocol datatype name.
pub fn parse_datatype(name: &str) -> Option<Datatype> {
    Some(match name {
        "BOOL" => Datatype::Bool,
        "UINT8" => Datatype::Uint8,
        "UINT16" => Datatype::Uint16,
        "UINT32" => Datatype::Uint32,
        "UINT64" => Datatype::Uint64,
        "INT8" => Datatype::Int8,
        "INT16" => Datatype::Int16,
        "INT32" => Datatype::Int32,
        "INT64" => Datatype::Int64,
        "FP16" => Datatype::Fp16,
        "FP32" => Datatype::Fp32,
        "FP64" => Datatype::Fp64,
        "BYTES" => Datatype::Bytes,
        _ => return None,
    })
}

/// The datatype of some tensor data.
pub fn datatype_of(data: &TensorData) -> Datatype {
    match data {
        TensorData::Bool(_) => Datatype::Bool,
        TensorData::Uint8(_) => Datatype::Uint8,
        TensorData::Uint16(_) => Datatype::Uint16,
        TensorData::Uint32(_) => Datatype::Uint32,
        TensorData::Uint64(_) => Datatype::Uint64,
        TensorData::Int8(_) => Datatype::Int8,
        TensorData::Int16(_) => Datatype::Int16,
        TensorData::Int32(_) => Datatype::Int32,
        TensorData::Int64(_) => Datatype::Int64,
        TensorData::Fp16(_) => Datatype::Fp16,
        TensorData::Fp32(_) => Datatype::Fp32,
        TensorData::Fp64(_) => Datatype::Fp64,
        TensorData::Bytes(_) => Datatype::Bytes,
    }
}

/// How many elements the data holds.
pub fn element_len(data: &TensorData) -> usize {
    match data {
        TensorData::Bool(v) => v.len(),
        TensorData::Uint8(v) => v.len(),
        TensorData::Uint16(v) | TensorData::Fp16(v) => v.len(),
        TensorData::Uint32(v) => v.len(),
        TensorData::Uint64(v) => v.len(),
        TensorData::Int8(v) => v.len(),
        TensorData::Int16(v) => v.len(),
        TensorData::Int32(v) => v.len(),
        TensorData::Int64(v) => v.len(),
        TensorData::Fp32(v) => v.len(),
        TensorData::Fp64(v) => v.len(),
        TensorData::Bytes(v) => v.len(),
    }
}

/// Elements a shape holds, or `None` for negative dimensions or overflow.
pub fn shape_elements(shape: &[i64]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &d| {
        usize::try_from(d).ok().and_then(|d| acc.checked_mul(d))
    })
}

/// Collects the leaves of a (possibly nested) JSON array, row-major.
fn flatten<T>(
    value: &Value,
    max: usize,
    out: &mut Vec<T>,
    leaf: &impl Fn(&Value) -> Option<T>,
    expected: &str,
) -> Result<(), String> {
    match value {
        Value::Array(items) => {
            for item in items {
                flatten(item, max, out, leaf, expected)?;
            }
            Ok(())
        }
        other => {
            if out.len() >= max {
                return Err(format!("more than {max} elements"));
            }
            let parsed = leaf(other).ok_or_else(|| format!("element {other} is not {expected}"))?;
            out.push(parsed);
            Ok(())
        }
    }
}

fn collect<T>(
    value: &Value,
    max: usize,
    expected: &str,
    leaf: impl Fn(&Value) -> Option<T>,
) -> Result<Vec<T>, String> {
    let mut out = Vec::new();
    flatten(value, max, &mut out, &leaf, expected)?;
    Ok(out)
}

fn int<T: TryFrom<i64> + TryFrom<u64>>(v: &Value) -> Option<T> {
    match v {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                T::try_from(i).ok()
            } else {
                n.as_u64().and_then(|u| T::try_from(u).ok())
            }
        }
        _ => None,
    }
}

/// Typed data from JSON elements (flat or nested arrays, or one scalar), per the datatype.
pub fn from_json(datatype: Datatype, value: &Value, max: usize) -> Result<TensorData, String> {
    Ok(match datatype {
        Datatype::Bool => TensorData::Bool(collect(value, max, "a boolean", Value::as_bool)?),
        Datatype::Uint8 => TensorData::Uint8(collect(value, max, "a UINT8", int)?),
        Datatype::Uint16 => TensorData::Uint16(collect(value, max, "a UINT16", int)?),
        Datatype::Uint32 => TensorData::Uint32(collect(value, max, "a UINT32", int)?),
        Datatype::Uint64 => TensorData::Uint64(collect(value, max, "a UINT64", int)?),
        Datatype::Int8 => TensorData::Int8(collect(value, max, "an INT8", int)?),
        Datatype::Int16 => TensorData::Int16(collect(value, max, "an INT16", int)?),
        Datatype::Int32 => TensorData::Int32(collect(value, max, "an INT32", int)?),
        Datatype::Int64 => TensorData::Int64(collect(value, max, "an INT64", int)?),
        // JSON null is a missing value: a NaN whose payload the drift monitor counts as missing.
        Datatype::Fp16 => TensorData::Fp16(collect(value, max, "a number or null", |v| match v {
            Value::Null => Some(kiln_monitor::NA_F16),
            v => v.as_f64().map(|f| half::f16::from_f64(f).to_bits()),
        })?),
        Datatype::Fp32 => TensorData::Fp32(collect(value, max, "a number or null", |v| match v {
            Value::Null => Some(f32::from_bits(kiln_monitor::NA_F32)),
            v => v.as_f64().map(|f| f as f32),
        })?),
        Datatype::Fp64 => TensorData::Fp64(collect(value, max, "a number or null", |v| match v {
            Value::Null => Some(f64::from_bits(kiln_monitor::NA_F64)),
            v => v.as_f64(),
        })?),
        Datatype::Bytes => TensorData::Bytes(collect(value, max, "a string", |v| {
            v.as_str().map(|s| s.as_bytes().to_vec())
        })?),
    })
}

/// The elements as one flat JSON array (BYTES as strings, lossy where not UTF-8).
pub fn to_json(data: &TensorData) -> Vec<Value> {
    fn map<T: Copy>(v: &[T], f: impl Fn(T) -> Value) -> Vec<Value> {
        v.iter().map(|x| f(*x)).collect()
    }
    match data {
        TensorData::Bool(v) => map(v, Value::from),
        TensorData::Uint8(v) => map(v, Value::from),
        TensorData::Uint16(v) => map(v, Value::from),
        TensorData::Uint32(v) => map(v, Value::from),
        TensorData::Uint64(v) => map(v, Value::from),
        TensorData::Int8(v) => map(v, Value::from),
        TensorData::Int16(v) => map(v, Value::from),
        TensorData::Int32(v) => map(v, Value::from),
        TensorData::Int64(v) => map(v, Value::from),
        TensorData::Fp16(v) => map(v, |b| Value::from(half::f16::from_bits(b).to_f64())),
        TensorData::Fp32(v) => map(v, |f| Value::from(f64::from(f))),
        TensorData::Fp64(v) => map(v, Value::from),
        TensorData::Bytes(v) => v
            .iter()
            .map(|b| Value::from(String::from_utf8_lossy(b).into_owned()))
            .collect(),
    }
}

/// Splits flat elements into nested arrays by `shape[1..]`, one value per row of `shape[0]`.
/// A rank-1 tensor gives its elements as rows.
pub fn rows(tensor: &Tensor) -> Vec<Value> {
    let flat = to_json(&tensor.data);
    let inner: Vec<usize> = tensor
        .shape
        .iter()
        .skip(1)
        .map(|&d| usize::try_from(d).unwrap_or(0))
        .collect();
    let row_len: usize = inner.iter().product();
    if tensor.shape.len() <= 1 || row_len == 0 {
        return flat;
    }
    flat.chunks(row_len)
        .map(|chunk| nest(chunk, &inner))
        .collect()
}

fn nest(flat: &[Value], shape: &[usize]) -> Value {
    match shape {
        [] | [_] => Value::Array(flat.to_vec()),
        [_, rest @ ..] => {
            let step: usize = rest.iter().product();
            if step == 0 {
                return Value::Array(vec![]);
            }
            Value::Array(flat.chunks(step).map(|c| nest(c, rest)).collect())
        }
    }
}

/// The shape of a nested JSON array (its first element's at each depth); `[]` for a scalar.
pub fn json_shape(value: &Value) -> Vec<i64> {
    let mut shape = Vec::new();
    let mut current = value;
    while let Value::Array(items) = current {
        shape.push(items.len() as i64);
        match items.first() {
            Some(first) => current = first,
            None => break,
        }
    }
    shape
}

fn take<const N: usize>(bytes: &[u8]) -> impl Iterator<Item = [u8; N]> + '_ {
    bytes.chunks_exact(N).map(|c| {
        let mut a = [0u8; N];
        a.copy_from_slice(c);
        a
    })
}

/// Typed data from Triton's binary tensor encoding: little-endian fixed-size elements, BOOL as
/// one byte, BYTES as a 4-byte little-endian length before each element.
pub fn from_binary(datatype: Datatype, bytes: &[u8], max: usize) -> Result<TensorData, String> {
    let width = match datatype {
        Datatype::Bool | Datatype::Uint8 | Datatype::Int8 => 1,
        Datatype::Uint16 | Datatype::Int16 | Datatype::Fp16 => 2,
        Datatype::Uint32 | Datatype::Int32 | Datatype::Fp32 => 4,
        Datatype::Uint64 | Datatype::Int64 | Datatype::Fp64 => 8,
        Datatype::Bytes => 0,
    };
    if width > 0 {
        if !bytes.len().is_multiple_of(width) {
            return Err(format!(
                "{} bytes of binary data is not a whole number of {}-byte {} elements",
                bytes.len(),
                width,
                datatype_name(datatype)
            ));
        }
        if bytes.len() / width > max {
            return Err(format!("more than {max} elements"));
        }
    }
    Ok(match datatype {
        Datatype::Bool => TensorData::Bool(bytes.iter().map(|&b| b != 0).collect()),
        Datatype::Uint8 => TensorData::Uint8(bytes.to_vec()),
        Datatype::Int8 => TensorData::Int8(bytes.iter().map(|&b| b as i8).collect()),
        Datatype::Uint16 => TensorData::Uint16(take::<2>(bytes).map(u16::from_le_bytes).collect()),
        Datatype::Fp16 => TensorData::Fp16(take::<2>(bytes).map(u16::from_le_bytes).collect()),
        Datatype::Int16 => TensorData::Int16(take::<2>(bytes).map(i16::from_le_bytes).collect()),
        Datatype::Uint32 => TensorData::Uint32(take::<4>(bytes).map(u32::from_le_bytes).collect()),
        Datatype::Int32 => TensorData::Int32(take::<4>(bytes).map(i32::from_le_bytes).collect()),
        Datatype::Fp32 => TensorData::Fp32(take::<4>(bytes).map(f32::from_le_bytes).collect()),
        Datatype::Uint64 => TensorData::Uint64(take::<8>(bytes).map(u64::from_le_bytes).collect()),
        Datatype::Int64 => TensorData::Int64(take::<8>(bytes).map(i64::from_le_bytes).collect()),
        Datatype::Fp64 => TensorData::Fp64(take::<8>(bytes).map(f64::from_le_bytes).collect()),
        Datatype::Bytes => {
            let mut items = Vec::new();
            let mut rest = bytes;
            while !rest.is_empty() {
                if items.len() >= max {
                    return Err(format!("more than {max} elements"));
                }
                let Some((len, tail)) = rest.split_first_chunk::<4>() else {
                    return Err("truncated BYTES element length".into());
                };
                let len = u32::from_le_bytes(*len) as usize;
                if tail.len() < len {
                    return Err("BYTES element longer than the binary data".into());
                }
                items.push(tail[..len].to_vec());
                rest = &tail[len..];
            }
            TensorData::Bytes(items)
        }
    })
}

/// Triton's binary tensor encoding of the data.
pub fn to_binary(data: &TensorData) -> Vec<u8> {
    fn le<T: Copy, const N: usize>(v: &[T], f: impl Fn(T) -> [u8; N]) -> Vec<u8> {
        v.iter().flat_map(|x| f(*x)).collect()
    }
    match data {
        TensorData::Bool(v) => v.iter().map(|&b| u8::from(b)).collect(),
        TensorData::Uint8(v) => v.clone(),
        TensorData::Int8(v) => v.iter().map(|&b| b as u8).collect(),
        TensorData::Uint16(v) | TensorData::Fp16(v) => le(v, u16::to_le_bytes),
        TensorData::Int16(v) => le(v, i16::to_le_bytes),
        TensorData::Uint32(v) => le(v, u32::to_le_bytes),
        TensorData::Int32(v) => le(v, i32::to_le_bytes),
        TensorData::Fp32(v) => le(v, f32::to_le_bytes),
        TensorData::Uint64(v) => le(v, u64::to_le_bytes),
        TensorData::Int64(v) => le(v, i64::to_le_bytes),
        TensorData::Fp64(v) => le(v, f64::to_le_bytes),
        TensorData::Bytes(v) => {
            let mut out = Vec::with_capacity(v.iter().map(|b| b.len() + 4).sum());
            for item in v {
                out.extend_from_slice(&(item.len() as u32).to_le_bytes());
                out.extend_from_slice(item);
            }
            out
        }
    }
}

/// Checks a tensor against its spec: datatype, rank, fixed dimensions, and element count.
pub fn check(spec: &TensorSpec, tensor: &Tensor, role: &str) -> Result<(), String> {
    let name = &tensor.name;
    let got = datatype_of(&tensor.data);
    if got != spec.datatype {
        return Err(format!(
            "{role} '{name}' must be {}, got {}",
            datatype_name(spec.datatype),
            datatype_name(got)
        ));
    }
    let fits = tensor.shape.len() == spec.shape.len()
        && tensor
            .shape
            .iter()
            .zip(&spec.shape)
            .all(|(&d, &s)| d >= 0 && (s == -1 || s == d));
    if !fits {
        return Err(format!(
            "{role} '{name}' has shape {:?}, the model expects {:?} (-1: any size)",
            tensor.shape, spec.shape
        ));
    }
    let len = element_len(&tensor.data);
    if shape_elements(&tensor.shape) != Some(len) {
        return Err(format!(
            "{role} '{name}' has {len} elements, its shape {:?} needs {}",
            tensor.shape,
            shape_elements(&tensor.shape)
                .map_or("an impossible number".to_string(), |n| n.to_string())
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_nested_and_flat_give_the_same_elements() {
        let nested = from_json(Datatype::Fp32, &json!([[1, 2.5], [3, 4]]), 100).expect("nested");
        let flat = from_json(Datatype::Fp32, &json!([1, 2.5, 3, 4]), 100).expect("flat");
        assert_eq!(nested, flat);
        assert_eq!(json_shape(&json!([[1, 2.5], [3, 4]])), vec![2, 2]);
    }

    #[test]
    fn json_rejects_wrong_types_and_ranges() {
        assert!(from_json(Datatype::Int8, &json!([1, 300]), 100).is_err());
        assert!(from_json(Datatype::Fp32, &json!(["a"]), 100).is_err());
        assert!(from_json(Datatype::Bool, &json!([1]), 100).is_err());
        assert!(from_json(Datatype::Fp32, &json!([1, 2, 3]), 2).is_err());
    }

    #[test]
    fn binary_round_trips_every_datatype() {
        let cases = [
            TensorData::Bool(vec![true, false]),
            TensorData::Int8(vec![-1, 2]),
            TensorData::Uint16(vec![1, 65535]),
            TensorData::Int32(vec![-5, 7]),
            TensorData::Fp32(vec![1.5, -2.25]),
            TensorData::Int64(vec![i64::MIN, i64::MAX]),
            TensorData::Fp64(vec![0.1, 1e300]),
            TensorData::Bytes(vec![b"abc".to_vec(), vec![], vec![0, 255]]),
        ];
        for data in cases {
            let bytes = to_binary(&data);
            assert_eq!(
                from_binary(datatype_of(&data), &bytes, 100).expect("decode"),
                data
            );
        }
        assert!(from_binary(Datatype::Fp32, &[0, 0, 0], 100).is_err());
        assert!(from_binary(Datatype::Bytes, &[9, 0, 0, 0, 1], 100).is_err());
    }

    #[test]
    fn rows_nest_by_shape() {
        let t = Tensor {
            name: "p".into(),
            shape: vec![2, 3],
            data: TensorData::Int32(vec![1, 2, 3, 4, 5, 6]),
        };
        assert_eq!(rows(&t), vec![json!([1, 2, 3]), json!([4, 5, 6])]);
        let t = Tensor {
            name: "l".into(),
            shape: vec![2],
            data: TensorData::Int64(vec![7, 8]),
        };
        assert_eq!(rows(&t), vec![json!(7), json!(8)]);
    }

    #[test]
    fn check_names_the_mismatch() {
        let spec = TensorSpec {
            name: "x".into(),
            datatype: Datatype::Fp32,
            shape: vec![-1, 4],
        };
        let ok = Tensor {
            name: "x".into(),
            shape: vec![2, 4],
            data: TensorData::Fp32(vec![0.0; 8]),
        };
        assert!(check(&spec, &ok, "input").is_ok());
        let wrong_shape = Tensor {
            shape: vec![2, 3],
            data: TensorData::Fp32(vec![0.0; 6]),
            ..ok.clone()
        };
        assert!(
            check(&spec, &wrong_shape, "input")
                .unwrap_err()
                .contains("shape [2, 3]")
        );
        let wrong_count = Tensor {
            data: TensorData::Fp32(vec![0.0; 7]),
            ..ok.clone()
        };
        assert!(
            check(&spec, &wrong_count, "input")
                .unwrap_err()
                .contains("7 elements")
        );
        let wrong_type = Tensor {
            data: TensorData::Int32(vec![0; 8]),
            ..ok
        };
        assert!(
            check(&spec, &wrong_type, "input")
                .unwrap_err()
                .contains("must be FP32, got INT32")
        );
    }
}
