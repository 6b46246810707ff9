//! The tensors a graph takes and returns: every datatype of the Open Inference Protocol that ONNX
//! also has, in row-major order, and the check of a tensor against a graph's input spec.

use crate::NnError;

/// An element type, named as in the Open Inference Protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NnType {
    /// `BOOL`.
    Bool,
    /// `UINT8`.
    U8,
    /// `UINT16`.
    U16,
    /// `UINT32`.
    U32,
    /// `UINT64`.
    U64,
    /// `INT8`.
    I8,
    /// `INT16`.
    I16,
    /// `INT32`.
    I32,
    /// `INT64`.
    I64,
    /// `FP16`, carried as raw bits.
    F16,
    /// `FP32`.
    F32,
    /// `FP64`.
    F64,
    /// `BYTES`: ONNX strings.
    Bytes,
}

impl NnType {
    /// The Open Inference Protocol name.
    pub fn name(self) -> &'static str {
        match self {
            NnType::Bool => "BOOL",
            NnType::U8 => "UINT8",
            NnType::U16 => "UINT16",
            NnType::U32 => "UINT32",
            NnType::U64 => "UINT64",
            NnType::I8 => "INT8",
            NnType::I16 => "INT16",
            NnType::I32 => "INT32",
            NnType::I64 => "INT64",
            NnType::F16 => "FP16",
            NnType::F32 => "FP32",
            NnType::F64 => "FP64",
            NnType::Bytes => "BYTES",
        }
    }
}

/// A tensor's elements, typed.
#[derive(Clone, Debug, PartialEq)]
pub enum NnData {
    /// `BOOL`.
    Bool(Vec<bool>),
    /// `UINT8`.
    U8(Vec<u8>),
    /// `UINT16`.
    U16(Vec<u16>),
    /// `UINT32`.
    U32(Vec<u32>),
    /// `UINT64`.
    U64(Vec<u64>),
    /// `INT8`.
    I8(Vec<i8>),
    /// `INT16`.
    I16(Vec<i16>),
    /// `INT32`.
    I32(Vec<i32>),
    /// `INT64`.
    I64(Vec<i64>),
    /// `FP16` as raw bits.
    F16(Vec<u16>),
    /// `FP32`.
    F32(Vec<f32>),
    /// `FP64`.
    F64(Vec<f64>),
    /// `BYTES`.
    Bytes(Vec<Vec<u8>>),
}

impl NnData {
    /// The element type.
    pub fn ty(&self) -> NnType {
        match self {
            NnData::Bool(_) => NnType::Bool,
            NnData::U8(_) => NnType::U8,
            NnData::U16(_) => NnType::U16,
            NnData::U32(_) => NnType::U32,
            NnData::U64(_) => NnType::U64,
            NnData::I8(_) => NnType::I8,
            NnData::I16(_) => NnType::I16,
            NnData::I32(_) => NnType::I32,
            NnData::I64(_) => NnType::I64,
            NnData::F16(_) => NnType::F16,
            NnData::F32(_) => NnType::F32,
            NnData::F64(_) => NnType::F64,
            NnData::Bytes(_) => NnType::Bytes,
        }
    }

    /// How many elements.
    pub fn len(&self) -> usize {
        match self {
            NnData::Bool(v) => v.len(),
            NnData::U8(v) => v.len(),
            NnData::U16(v) | NnData::F16(v) => v.len(),
            NnData::U32(v) => v.len(),
            NnData::U64(v) => v.len(),
            NnData::I8(v) => v.len(),
            NnData::I16(v) => v.len(),
            NnData::I32(v) => v.len(),
            NnData::I64(v) => v.len(),
            NnData::F32(v) => v.len(),
            NnData::F64(v) => v.len(),
            NnData::Bytes(v) => v.len(),
        }
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A named tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct NnTensor {
    /// The graph input or output it is.
    pub name: String,
    /// Dimensions, row-major.
    pub shape: Vec<i64>,
    /// The elements.
    pub data: NnData,
}

/// What a graph takes or returns: name, element type, and shape with -1 where it varies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NnSpec {
    /// The tensor's name in the graph.
    pub name: String,
    /// Its element type.
    pub ty: NnType,
    /// Its dimensions, -1 where variable.
    pub shape: Vec<i64>,
}

impl NnSpec {
    /// Checks a request tensor against this input: element type, rank, fixed dimensions and the
    /// element count. The error names what the graph expects.
    pub fn check(&self, tensor: &NnTensor) -> Result<(), NnError> {
        let shape_text = |s: &[i64]| {
            let dims: Vec<String> = s.iter().map(i64::to_string).collect();
            format!("[{}]", dims.join(", "))
        };
        if tensor.data.ty() != self.ty {
            return Err(NnError::InvalidInput(format!(
                "input '{}' must be {}, got {}",
                self.name,
                self.ty.name(),
                tensor.data.ty().name()
            )));
        }
        let fits = tensor.shape.len() == self.shape.len()
            && tensor
                .shape
                .iter()
                .zip(&self.shape)
                .all(|(&got, &want)| got >= 0 && (want < 0 || got == want));
        if !fits {
            return Err(NnError::InvalidInput(format!(
                "input '{}' must have shape {}, got {}",
                self.name,
                shape_text(&self.shape),
                shape_text(&tensor.shape)
            )));
        }
        let elements = tensor
            .shape
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d as usize));
        if elements != Some(tensor.data.len()) {
            return Err(NnError::InvalidInput(format!(
                "input '{}' of shape {} holds {} elements",
                self.name,
                shape_text(&tensor.shape),
                tensor.data.len()
            )));
        }
        Ok(())
    }
}

/// Puts `inputs` in the order of `specs`, checking each; every input must be given once.
pub fn order_inputs(specs: &[NnSpec], inputs: Vec<NnTensor>) -> Result<Vec<NnTensor>, NnError> {
    let mut slots: Vec<Option<NnTensor>> = specs.iter().map(|_| None).collect();
    for tensor in inputs {
        let Some(ix) = specs.iter().position(|s| s.name == tensor.name) else {
            let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
            return Err(NnError::InvalidInput(format!(
                "the graph has no input '{}' (its inputs: {})",
                tensor.name,
                names.join(", ")
            )));
        };
        specs[ix].check(&tensor)?;
        if slots[ix].replace(tensor).is_some() {
            return Err(NnError::InvalidInput(format!(
                "input '{}' given twice",
                specs[ix].name
            )));
        }
    }
    slots
        .into_iter()
        .zip(specs)
        .map(|(slot, spec)| {
            slot.ok_or_else(|| NnError::InvalidInput(format!("missing input '{}'", spec.name)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> NnSpec {
        NnSpec {
            name: "X".into(),
            ty: NnType::F32,
            shape: vec![-1, 4],
        }
    }

    fn tensor(shape: Vec<i64>, data: NnData) -> NnTensor {
        NnTensor {
            name: "X".into(),
            shape,
            data,
        }
    }

    #[test]
    fn checks_type_shape_and_count_and_names_what_is_expected() {
        let spec = spec();
        assert!(
            spec.check(&tensor(vec![2, 4], NnData::F32(vec![0.0; 8])))
                .is_ok()
        );
        let wrong_type = spec
            .check(&tensor(vec![1, 4], NnData::F64(vec![0.0; 4])))
            .expect_err("type");
        assert!(wrong_type.to_string().contains("must be FP32, got FP64"));
        let wrong_shape = spec
            .check(&tensor(vec![2, 3], NnData::F32(vec![0.0; 6])))
            .expect_err("shape");
        assert!(
            wrong_shape
                .to_string()
                .contains("must have shape [-1, 4], got [2, 3]")
        );
        let wrong_count = spec
            .check(&tensor(vec![2, 4], NnData::F32(vec![0.0; 7])))
            .expect_err("count");
        assert!(wrong_count.to_string().contains("holds 7 elements"));
    }

    #[test]
    fn orders_inputs_and_refuses_unknown_missing_and_repeated_ones() {
        let specs = vec![
            spec(),
            NnSpec {
                name: "Y".into(),
                ty: NnType::I64,
                shape: vec![-1],
            },
        ];
        let y = NnTensor {
            name: "Y".into(),
            shape: vec![1],
            data: NnData::I64(vec![3]),
        };
        let x = tensor(vec![1, 4], NnData::F32(vec![0.0; 4]));
        let ordered = order_inputs(&specs, vec![y.clone(), x.clone()]).expect("ordered");
        assert_eq!(ordered, vec![x.clone(), y.clone()]);
        let missing = order_inputs(&specs, vec![x.clone()]).expect_err("missing");
        assert!(missing.to_string().contains("missing input 'Y'"));
        let twice = order_inputs(&specs, vec![x.clone(), x.clone(), y]).expect_err("twice");
        assert!(twice.to_string().contains("given twice"));
        let unknown = NnTensor {
            name: "Z".into(),
            ..x
        };
        let err = order_inputs(&specs, vec![unknown]).expect_err("unknown");
        assert!(err.to_string().contains("no input 'Z' (its inputs: X, Y)"));
    }
}
