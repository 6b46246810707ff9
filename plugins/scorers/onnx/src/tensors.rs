//! Tensors between Kiln's (Open Inference Protocol datatypes) and tract's.

use crate::Spec;
use kiln_sdk::{Datatype, PredictError, Tensor, TensorData};
use tract_onnx::prelude::{DatumType, TValue, Tensor as TractTensor, tract_ndarray};

/// The Open Inference Protocol datatype of a tract datum type, if one holds it.
pub fn datatype_of(datum: DatumType) -> Option<Datatype> {
    Some(match datum {
        DatumType::Bool => Datatype::Bool,
        DatumType::U8 => Datatype::Uint8,
        DatumType::U16 => Datatype::Uint16,
        DatumType::U32 => Datatype::Uint32,
        DatumType::U64 => Datatype::Uint64,
        DatumType::I8 => Datatype::Int8,
        DatumType::I16 => Datatype::Int16,
        DatumType::I32 => Datatype::Int32,
        // tract computes ONNX int64 values (argmax labels cast to int64) as TDim.
        DatumType::I64 | DatumType::TDim => Datatype::Int64,
        DatumType::F16 => Datatype::Fp16,
        DatumType::F32 => Datatype::Fp32,
        DatumType::F64 => Datatype::Fp64,
        DatumType::String => Datatype::Bytes,
        _ => return None,
    })
}

fn invalid(message: String) -> PredictError {
    PredictError::InvalidInput(message)
}

/// A request tensor as the tract tensor of `spec` (the host has checked datatype and shape).
pub fn to_tract(spec: &Spec, tensor: &Tensor) -> Result<TractTensor, PredictError> {
    let shape: Vec<usize> = tensor
        .shape
        .iter()
        .map(|&d| usize::try_from(d))
        .collect::<Result<_, _>>()
        .map_err(|_| invalid(format!("input '{}' has a negative dimension", spec.name)))?;
    let fail = |e: String| invalid(format!("input '{}': {e}", spec.name));
    let plain =
        |r: tract_onnx::prelude::TractResult<TractTensor>| r.map_err(|e| fail(format!("{e:#}")));
    let built = match &tensor.data {
        TensorData::Bool(v) => plain(TractTensor::from_shape(&shape, v))?,
        TensorData::Uint8(v) => plain(TractTensor::from_shape(&shape, v))?,
        TensorData::Uint16(v) => plain(TractTensor::from_shape(&shape, v))?,
        TensorData::Uint32(v) => plain(TractTensor::from_shape(&shape, v))?,
        TensorData::Uint64(v) => plain(TractTensor::from_shape(&shape, v))?,
        TensorData::Int8(v) => plain(TractTensor::from_shape(&shape, v))?,
        TensorData::Int16(v) => plain(TractTensor::from_shape(&shape, v))?,
        TensorData::Int32(v) => plain(TractTensor::from_shape(&shape, v))?,
        TensorData::Int64(v) => plain(TractTensor::from_shape(&shape, v))?,
        TensorData::Fp16(bits) => {
            let halves: Vec<tract_onnx::prelude::f16> = bits
                .iter()
                .map(|&b| tract_onnx::prelude::f16::from_bits(b))
                .collect();
            plain(TractTensor::from_shape(&shape, &halves))?
        }
        TensorData::Fp32(v) => plain(TractTensor::from_shape(&shape, v))?,
        TensorData::Fp64(v) => plain(TractTensor::from_shape(&shape, v))?,
        TensorData::Bytes(v) => {
            let strings: Vec<String> = v
                .iter()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .collect();
            tract_ndarray::ArrayD::from_shape_vec(tract_ndarray::IxDyn(&shape), strings)
                .map(TractTensor::from)
                .map_err(|e| fail(e.to_string()))?
        }
    };
    if built.datum_type() != spec.datum {
        return Err(invalid(format!(
            "input '{}' must be {:?}, got {:?}",
            spec.name,
            spec.datum,
            built.datum_type()
        )));
    }
    Ok(built)
}

/// A tract output as the response tensor of `spec`.
pub fn from_tract(spec: &Spec, value: &TValue) -> Result<Tensor, PredictError> {
    let internal = |e: tract_onnx::prelude::TractError| {
        PredictError::Internal(format!("output '{}': {e:#}", spec.name))
    };
    let shape: Vec<i64> = value.shape().iter().map(|&d| d as i64).collect();
    macro_rules! collect {
        ($ty:ty, $variant:ident) => {
            TensorData::$variant(
                value
                    .to_plain_array_view::<$ty>()
                    .map_err(internal)?
                    .iter()
                    .cloned()
                    .collect(),
            )
        };
    }
    let data = match value.datum_type() {
        DatumType::Bool => collect!(bool, Bool),
        DatumType::U8 => collect!(u8, Uint8),
        DatumType::U16 => collect!(u16, Uint16),
        DatumType::U32 => collect!(u32, Uint32),
        DatumType::U64 => collect!(u64, Uint64),
        DatumType::I8 => collect!(i8, Int8),
        DatumType::I16 => collect!(i16, Int16),
        DatumType::I32 => collect!(i32, Int32),
        DatumType::I64 => collect!(i64, Int64),
        DatumType::TDim => TensorData::Int64(
            value
                .cast_to::<i64>()
                .map_err(internal)?
                .to_plain_array_view::<i64>()
                .map_err(internal)?
                .iter()
                .cloned()
                .collect(),
        ),
        DatumType::F16 => TensorData::Fp16(
            value
                .to_plain_array_view::<tract_onnx::prelude::f16>()
                .map_err(internal)?
                .iter()
                .map(|h| h.to_bits())
                .collect(),
        ),
        DatumType::F32 => collect!(f32, Fp32),
        DatumType::F64 => collect!(f64, Fp64),
        DatumType::String => TensorData::Bytes(
            value
                .to_plain_array_view::<String>()
                .map_err(internal)?
                .iter()
                .map(|s| s.as_bytes().to_vec())
                .collect(),
        ),
        other => {
            return Err(PredictError::Internal(format!(
                "output '{}' has type {other:?}",
                spec.name
            )));
        }
    };
    Ok(Tensor {
        name: spec.name.clone(),
        shape,
        data,
    })
}
