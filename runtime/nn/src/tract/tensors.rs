//! Tensors between Kiln's (Open Inference Protocol datatypes) and tract's.

use super::Spec;
use crate::{NnData, NnError, NnTensor, NnType};
use tract_onnx::prelude::{DatumType, TValue, Tensor as TractTensor, tract_ndarray};

/// The element type of a tract datum type, if Kiln has one.
pub fn datatype_of(datum: DatumType) -> Option<NnType> {
    Some(match datum {
        DatumType::Bool => NnType::Bool,
        DatumType::U8 => NnType::U8,
        DatumType::U16 => NnType::U16,
        DatumType::U32 => NnType::U32,
        DatumType::U64 => NnType::U64,
        DatumType::I8 => NnType::I8,
        DatumType::I16 => NnType::I16,
        DatumType::I32 => NnType::I32,
        // tract computes ONNX int64 values (argmax labels cast to int64) as TDim.
        DatumType::I64 | DatumType::TDim => NnType::I64,
        DatumType::F16 => NnType::F16,
        DatumType::F32 => NnType::F32,
        DatumType::F64 => NnType::F64,
        DatumType::String => NnType::Bytes,
        _ => return None,
    })
}

fn invalid(message: String) -> NnError {
    NnError::InvalidInput(message)
}

/// A request tensor as the tract tensor of `spec` (already checked against it).
pub fn to_tract(spec: &Spec, tensor: NnTensor) -> Result<TractTensor, NnError> {
    let name = &spec.nn.name;
    let shape: Vec<usize> = tensor.shape.iter().map(|&d| d.max(0) as usize).collect();
    let fail = |e: String| invalid(format!("input '{name}': {e}"));
    let plain =
        |r: tract_onnx::prelude::TractResult<TractTensor>| r.map_err(|e| fail(format!("{e:#}")));
    let built = match tensor.data {
        NnData::Bool(v) => plain(TractTensor::from_shape(&shape, &v))?,
        NnData::U8(v) => plain(TractTensor::from_shape(&shape, &v))?,
        NnData::U16(v) => plain(TractTensor::from_shape(&shape, &v))?,
        NnData::U32(v) => plain(TractTensor::from_shape(&shape, &v))?,
        NnData::U64(v) => plain(TractTensor::from_shape(&shape, &v))?,
        NnData::I8(v) => plain(TractTensor::from_shape(&shape, &v))?,
        NnData::I16(v) => plain(TractTensor::from_shape(&shape, &v))?,
        NnData::I32(v) => plain(TractTensor::from_shape(&shape, &v))?,
        NnData::I64(v) => plain(TractTensor::from_shape(&shape, &v))?,
        NnData::F16(bits) => {
            let halves: Vec<tract_onnx::prelude::f16> = bits
                .iter()
                .map(|&b| tract_onnx::prelude::f16::from_bits(b))
                .collect();
            plain(TractTensor::from_shape(&shape, &halves))?
        }
        NnData::F32(v) => plain(TractTensor::from_shape(&shape, &v))?,
        NnData::F64(v) => plain(TractTensor::from_shape(&shape, &v))?,
        NnData::Bytes(v) => {
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
            "input '{name}' must be {:?}, got {:?}",
            spec.datum,
            built.datum_type()
        )));
    }
    Ok(built)
}

/// A tract output as the response tensor of `spec`.
pub fn from_tract(spec: &Spec, value: &TValue) -> Result<NnTensor, NnError> {
    let name = &spec.nn.name;
    let internal =
        |e: tract_onnx::prelude::TractError| NnError::Runtime(format!("output '{name}': {e:#}"));
    let shape: Vec<i64> = value.shape().iter().map(|&d| d as i64).collect();
    macro_rules! collect {
        ($ty:ty, $variant:ident) => {
            NnData::$variant(
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
        DatumType::U8 => collect!(u8, U8),
        DatumType::U16 => collect!(u16, U16),
        DatumType::U32 => collect!(u32, U32),
        DatumType::U64 => collect!(u64, U64),
        DatumType::I8 => collect!(i8, I8),
        DatumType::I16 => collect!(i16, I16),
        DatumType::I32 => collect!(i32, I32),
        DatumType::I64 => collect!(i64, I64),
        DatumType::TDim => NnData::I64(
            value
                .cast_to::<i64>()
                .map_err(internal)?
                .to_plain_array_view::<i64>()
                .map_err(internal)?
                .iter()
                .cloned()
                .collect(),
        ),
        DatumType::F16 => NnData::F16(
            value
                .to_plain_array_view::<tract_onnx::prelude::f16>()
                .map_err(internal)?
                .iter()
                .map(|h| h.to_bits())
                .collect(),
        ),
        DatumType::F32 => collect!(f32, F32),
        DatumType::F64 => collect!(f64, F64),
        DatumType::String => NnData::Bytes(
            value
                .to_plain_array_view::<String>()
                .map_err(internal)?
                .iter()
                .map(|s| s.as_bytes().to_vec())
                .collect(),
        ),
        other => {
            return Err(NnError::Runtime(format!(
                "output '{name}' has type {other:?}"
            )));
        }
    };
    Ok(NnTensor {
        name: name.clone(),
        shape,
        data,
    })
}
