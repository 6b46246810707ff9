//! Tensor helpers: typed views with shape checks on the way in, builders on the way out.

use crate::{Datatype, Metadata, PredictError, Tensor, TensorData, TensorSpec};

/// The request's input tensors, looked up by name.
pub struct Inputs {
    tensors: Vec<Tensor>,
}

impl Inputs {
    #[doc(hidden)]
    pub fn new(tensors: Vec<Tensor>) -> Self {
        Self { tensors }
    }

    /// The input called `name`, or an invalid-input error naming it.
    pub fn get(&self, name: &str) -> Result<&Tensor, PredictError> {
        self.tensors
            .iter()
            .find(|t| t.name == name)
            .ok_or_else(|| PredictError::InvalidInput(format!("missing input tensor '{name}'")))
    }

    /// Every input, in request order.
    pub fn all(&self) -> &[Tensor] {
        &self.tensors
    }

    /// Every input, owned (to hand them to a graph without a copy).
    pub fn into_vec(self) -> Vec<Tensor> {
        self.tensors
    }
}

macro_rules! typed_view {
    ($view:ident, $build:ident, $variant:ident, $ty:ty, $label:literal) => {
        /// The elements, if this tensor holds this datatype.
        pub fn $view(&self) -> Result<&[$ty], PredictError> {
            match &self.data {
                TensorData::$variant(values) => Ok(values),
                _ => Err(PredictError::InvalidInput(format!(
                    "tensor '{}' must be {}, got {}",
                    self.name,
                    $label,
                    self.data.datatype_name()
                ))),
            }
        }

        /// Builds a tensor of this datatype.
        pub fn $build(name: impl Into<String>, shape: Vec<i64>, values: Vec<$ty>) -> Self {
            Tensor {
                name: name.into(),
                shape,
                data: TensorData::$variant(values),
            }
        }
    };
}

impl Tensor {
    typed_view!(as_bool, bool, Bool, bool, "BOOL");
    typed_view!(as_u8, uint8, Uint8, u8, "UINT8");
    typed_view!(as_u16, uint16, Uint16, u16, "UINT16");
    typed_view!(as_u32, uint32, Uint32, u32, "UINT32");
    typed_view!(as_u64, uint64, Uint64, u64, "UINT64");
    typed_view!(as_i8, int8, Int8, i8, "INT8");
    typed_view!(as_i16, int16, Int16, i16, "INT16");
    typed_view!(as_i32, int32, Int32, i32, "INT32");
    typed_view!(as_i64, int64, Int64, i64, "INT64");
    typed_view!(as_f16_bits, fp16, Fp16, u16, "FP16");
    typed_view!(as_f32, fp32, Fp32, f32, "FP32");
    typed_view!(as_f64, fp64, Fp64, f64, "FP64");
    typed_view!(as_bytes, bytes, Bytes, Vec<u8>, "BYTES");

    /// A row-major FP32 matrix with exactly `cols` columns: `(rows, elements)`.
    ///
    /// Accepts shape `[rows, cols]`, and `[cols]` as a single row.
    pub fn as_f32_matrix(&self, cols: usize) -> Result<(usize, &[f32]), PredictError> {
        let values = self.as_f32()?;
        let rows = match self.shape.as_slice() {
            [r, c] if *c as usize == cols && *r >= 0 => *r as usize,
            [c] if *c as usize == cols => 1,
            _ => {
                return Err(PredictError::InvalidInput(format!(
                    "tensor '{}' must have shape [N, {cols}], got {:?}",
                    self.name, self.shape
                )));
            }
        };
        if values.len() != rows * cols {
            return Err(PredictError::InvalidInput(format!(
                "tensor '{}' has {} elements for shape {:?}",
                self.name,
                values.len(),
                self.shape
            )));
        }
        Ok((rows, values))
    }
}

impl TensorData {
    /// The Open Inference Protocol name of this data's datatype.
    pub fn datatype_name(&self) -> &'static str {
        match self {
            TensorData::Bool(_) => "BOOL",
            TensorData::Uint8(_) => "UINT8",
            TensorData::Uint16(_) => "UINT16",
            TensorData::Uint32(_) => "UINT32",
            TensorData::Uint64(_) => "UINT64",
            TensorData::Int8(_) => "INT8",
            TensorData::Int16(_) => "INT16",
            TensorData::Int32(_) => "INT32",
            TensorData::Int64(_) => "INT64",
            TensorData::Fp16(_) => "FP16",
            TensorData::Fp32(_) => "FP32",
            TensorData::Fp64(_) => "FP64",
            TensorData::Bytes(_) => "BYTES",
        }
    }
}

impl TensorSpec {
    /// A spec: name, datatype and shape (-1 for a variable dimension).
    pub fn new(name: impl Into<String>, datatype: Datatype, shape: &[i64]) -> Self {
        TensorSpec {
            name: name.into(),
            datatype,
            shape: shape.to_vec(),
        }
    }
}

impl Metadata {
    /// Metadata for a model called `name`, with no tensors yet.
    pub fn new(name: impl Into<String>) -> Self {
        Metadata {
            name: name.into(),
            platform: "kiln_wasm".into(),
            inputs: vec![],
            outputs: vec![],
        }
    }

    /// Sets the platform string served in model metadata (default `kiln_wasm`).
    pub fn platform(mut self, platform: impl Into<String>) -> Self {
        self.platform = platform.into();
        self
    }

    /// Adds an input tensor spec.
    pub fn input(mut self, spec: TensorSpec) -> Self {
        self.inputs.push(spec);
        self
    }

    /// Adds an output tensor spec.
    pub fn output(mut self, spec: TensorSpec) -> Self {
        self.outputs.push(spec);
        self
    }
}
