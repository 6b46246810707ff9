//! Kiln's specs of a graph's inputs and outputs, from ONNX Runtime's value types.

use crate::{NnError, NnSpec, NnType};
use ort::value::{TensorElementType, ValueType};

/// Kiln's element type of an ONNX tensor's, if it has one.
fn element_type(ty: TensorElementType) -> Option<NnType> {
    Some(match ty {
        TensorElementType::Bool => NnType::Bool,
        TensorElementType::Uint8 => NnType::U8,
        TensorElementType::Uint16 => NnType::U16,
        TensorElementType::Uint32 => NnType::U32,
        TensorElementType::Uint64 => NnType::U64,
        TensorElementType::Int8 => NnType::I8,
        TensorElementType::Int16 => NnType::I16,
        TensorElementType::Int32 => NnType::I32,
        TensorElementType::Int64 => NnType::I64,
        TensorElementType::Float16 => NnType::F16,
        TensorElementType::Float32 => NnType::F32,
        TensorElementType::Float64 => NnType::F64,
        TensorElementType::String => NnType::Bytes,
        _ => return None,
    })
}

/// The spec of a tensor input or output.
fn tensor_spec(name: &str, dtype: &ValueType) -> Option<NnSpec> {
    match dtype {
        ValueType::Tensor { ty, shape, .. } => Some(NnSpec {
            name: name.to_string(),
            ty: element_type(*ty)?,
            shape: shape.iter().map(|&d| if d < 0 { -1 } else { d }).collect(),
        }),
        _ => None,
    }
}

/// An input's spec: a tensor, or a clear error.
pub(super) fn input_spec(name: &str, dtype: &ValueType) -> Result<NnSpec, NnError> {
    tensor_spec(name, dtype).ok_or_else(|| {
        NnError::Unsupported(format!(
            "input '{name}' is {dtype}: Kiln serves graphs whose inputs are tensors"
        ))
    })
}

/// An output's spec; a ZipMap (sequence of maps from class to probability) becomes an FP32
/// `[batch, classes]` matrix whose columns follow the classes in the map's (sorted) order.
pub(super) fn output_spec(name: &str, dtype: &ValueType) -> Result<(NnSpec, bool), NnError> {
    if let Some(spec) = tensor_spec(name, dtype) {
        return Ok((spec, false));
    }
    match dtype {
        ValueType::Sequence(inner)
            if matches!(
                **inner,
                ValueType::Map {
                    value: TensorElementType::Float32,
                    ..
                }
            ) =>
        {
            Ok((
                NnSpec {
                    name: name.to_string(),
                    ty: NnType::F32,
                    shape: vec![-1, -1],
                },
                true,
            ))
        }
        other => Err(NnError::Unsupported(format!(
            "output '{name}' is {other}, which no Open Inference Protocol tensor holds"
        ))),
    }
}
