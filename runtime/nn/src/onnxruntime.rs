//! The ONNX Runtime backend: `ort` on the shared library of the `onnxruntime` PyPI wheel, loaded
//! at run time (`load-dynamic`), one session per graph shared by every instance.
//!
//! Calls on one session run concurrently. `ort` asks for `&mut Session` to run, because some
//! execution providers (CUDA, DirectML) keep per-session state that is not thread-safe; Kiln
//! uses only the CPU execution provider, whose `Run` ONNX Runtime documents as safe to call from
//! many threads at once on one session. So this module calls the C API's `Run` itself with a
//! shared session: the one place in Kiln's host that needs `unsafe`.
//!
//! Every call has its own run options, whose terminate flag the deadline watchdog sets: ONNX
//! Runtime checks it between kernels and returns, so a call ends soon after its deadline.
#![allow(unsafe_code)]

use crate::watchdog::{self, Cancel};
use crate::{BackendKind, Graph, NnData, NnError, NnSpec, NnTensor, NnType, order_inputs};
use ort::AsPointer;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::{RunOptions, Session};
use ort::value::{
    DynMapValueType, DynSequenceValueType, DynValue, Tensor, TensorElementType, ValueType,
};
use std::ffi::{CStr, CString, c_char};
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

/// ONNX Runtime, loaded once per process.
pub struct OnnxRuntime {
    environment: ort::environment::Environment,
    library: PathBuf,
    version: String,
}

impl OnnxRuntime {
    /// Loads the library at `path` (once per process: later calls get the first library).
    pub(crate) fn open(path: &Path) -> Result<Arc<OnnxRuntime>, String> {
        static OPENED: OnceLock<Result<Arc<OnnxRuntime>, String>> = OnceLock::new();
        OPENED
            .get_or_init(|| {
                let builder = ort::init_from(path).map_err(|e| {
                    format!("cannot load ONNX Runtime from {}: {e}", path.display())
                })?;
                let environment = builder
                    .with_name("kiln")
                    .with_telemetry(false)
                    .build()
                    .map_err(|e| format!("ONNX Runtime did not start: {e}"))?;
                let file = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                let version = file
                    .strip_prefix("libonnxruntime.so.")
                    .unwrap_or("unknown")
                    .to_string();
                Ok(Arc::new(OnnxRuntime {
                    environment,
                    library: path.to_path_buf(),
                    version,
                }))
            })
            .clone()
    }

    /// The shared library in use.
    pub fn library(&self) -> &Path {
        &self.library
    }

    /// Its version, from the library's file name.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Parses a graph into a session with `threads` intra-op threads.
    pub fn load(&self, bytes: &[u8], threads: usize) -> Result<OrtGraph, NnError> {
        let invalid =
            |e: String| NnError::InvalidGraph(format!("ONNX Runtime cannot load it: {e}"));
        let (session, memory) = crate::measured(bytes.len(), || {
            let text = |e: ort::Error<_>| e.to_string();
            Session::builder(&self.environment)
                .map_err(|e| e.to_string())
                .and_then(|b| b.with_intra_threads(threads).map_err(text))
                .and_then(|b| b.with_inter_threads(1).map_err(text))
                .and_then(|b| {
                    b.with_optimization_level(GraphOptimizationLevel::All)
                        .map_err(text)
                })
                .and_then(|mut b| b.commit_from_memory(bytes).map_err(|e| e.to_string()))
                .map_err(invalid)
        })?;
        let inputs = session
            .inputs()
            .iter()
            .map(|o| input_spec(o.name(), o.dtype()))
            .collect::<Result<Vec<_>, _>>()?;
        let mut outputs = Vec::new();
        let mut zipmaps = Vec::new();
        for outlet in session.outputs() {
            let (spec, zipmap) = output_spec(outlet.name(), outlet.dtype())?;
            outputs.push(spec);
            zipmaps.push(zipmap);
        }
        let names = |specs: &[NnSpec]| -> Result<Vec<CString>, NnError> {
            specs
                .iter()
                .map(|s| {
                    CString::new(s.name.as_str()).map_err(|_| {
                        NnError::InvalidGraph(format!("tensor name {:?} holds a NUL", s.name))
                    })
                })
                .collect()
        };
        Ok(OrtGraph {
            input_names: names(&inputs)?,
            output_names: names(&outputs)?,
            session,
            inputs,
            outputs,
            zipmaps,
            memory,
        })
    }
}

/// A graph in an ONNX Runtime session.
pub struct OrtGraph {
    session: Session,
    inputs: Vec<NnSpec>,
    outputs: Vec<NnSpec>,
    /// Per output: whether it is a ZipMap (a sequence of maps), returned as an FP32 matrix.
    zipmaps: Vec<bool>,
    input_names: Vec<CString>,
    output_names: Vec<CString>,
    memory: u64,
}

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

fn input_spec(name: &str, dtype: &ValueType) -> Result<NnSpec, NnError> {
    tensor_spec(name, dtype).ok_or_else(|| {
        NnError::Unsupported(format!(
            "input '{name}' is {dtype}: Kiln serves graphs whose inputs are tensors"
        ))
    })
}

/// An output's spec; a ZipMap (sequence of maps from class to probability) becomes an FP32
/// `[batch, classes]` matrix whose columns follow the classes in the map's (sorted) order.
fn output_spec(name: &str, dtype: &ValueType) -> Result<(NnSpec, bool), NnError> {
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

/// A call's run options, terminated by the watchdog at the deadline.
struct Terminate {
    options: RunOptions,
    fired: AtomicBool,
}

impl Cancel for Terminate {
    fn cancel(&self) {
        self.fired.store(true, Ordering::SeqCst);
        if let Err(e) = self.options.terminate() {
            tracing::warn!("cannot stop an ONNX Runtime call at its deadline: {e}");
        }
    }
}

fn runtime(e: impl std::fmt::Display) -> NnError {
    NnError::Runtime(format!("ONNX Runtime: {e}"))
}

fn to_value(tensor: NnTensor) -> Result<DynValue, NnError> {
    let shape = tensor.shape;
    let value = match tensor.data {
        NnData::Bool(v) => Tensor::from_array((shape, v)).map(Tensor::into_dyn),
        NnData::U8(v) => Tensor::from_array((shape, v)).map(Tensor::into_dyn),
        NnData::U16(v) => Tensor::from_array((shape, v)).map(Tensor::into_dyn),
        NnData::U32(v) => Tensor::from_array((shape, v)).map(Tensor::into_dyn),
        NnData::U64(v) => Tensor::from_array((shape, v)).map(Tensor::into_dyn),
        NnData::I8(v) => Tensor::from_array((shape, v)).map(Tensor::into_dyn),
        NnData::I16(v) => Tensor::from_array((shape, v)).map(Tensor::into_dyn),
        NnData::I32(v) => Tensor::from_array((shape, v)).map(Tensor::into_dyn),
        NnData::I64(v) => Tensor::from_array((shape, v)).map(Tensor::into_dyn),
        NnData::F16(v) => {
            let halves: Vec<half::f16> = v.into_iter().map(half::f16::from_bits).collect();
            Tensor::from_array((shape, halves)).map(Tensor::into_dyn)
        }
        NnData::F32(v) => Tensor::from_array((shape, v)).map(Tensor::into_dyn),
        NnData::F64(v) => Tensor::from_array((shape, v)).map(Tensor::into_dyn),
        NnData::Bytes(v) => {
            let strings: Vec<String> = v
                .into_iter()
                .map(|b| String::from_utf8(b).map_err(|_| ()))
                .collect::<Result<_, _>>()
                .map_err(|()| {
                    NnError::InvalidInput("ONNX string tensors hold UTF-8 text".into())
                })?;
            Tensor::from_string_array((shape, strings.as_slice())).map(Tensor::into_dyn)
        }
    };
    value.map_err(runtime)
}

fn from_value(spec: &NnSpec, zipmap: bool, value: DynValue) -> Result<NnTensor, NnError> {
    if zipmap {
        return from_zipmap(spec, value);
    }
    macro_rules! plain {
        ($ty:ty, $variant:ident) => {{
            let (shape, data) = value.try_extract_tensor::<$ty>().map_err(runtime)?;
            (shape.to_vec(), NnData::$variant(data.to_vec()))
        }};
    }
    let (shape, data) = match spec.ty {
        NnType::Bool => plain!(bool, Bool),
        NnType::U8 => plain!(u8, U8),
        NnType::U16 => plain!(u16, U16),
        NnType::U32 => plain!(u32, U32),
        NnType::U64 => plain!(u64, U64),
        NnType::I8 => plain!(i8, I8),
        NnType::I16 => plain!(i16, I16),
        NnType::I32 => plain!(i32, I32),
        NnType::I64 => plain!(i64, I64),
        NnType::F16 => {
            let (shape, data) = value.try_extract_tensor::<half::f16>().map_err(runtime)?;
            (
                shape.to_vec(),
                NnData::F16(data.iter().map(|h| h.to_bits()).collect()),
            )
        }
        NnType::F32 => plain!(f32, F32),
        NnType::F64 => plain!(f64, F64),
        NnType::Bytes => {
            let (shape, strings) = value.try_extract_strings().map_err(runtime)?;
            (
                shape.to_vec(),
                NnData::Bytes(strings.into_iter().map(String::into_bytes).collect()),
            )
        }
    };
    Ok(NnTensor {
        name: spec.name.clone(),
        shape,
        data,
    })
}

/// A ZipMap output, one map per row, as an FP32 `[rows, classes]` matrix.
fn from_zipmap(spec: &NnSpec, value: DynValue) -> Result<NnTensor, NnError> {
    let sequence = value.downcast::<DynSequenceValueType>().map_err(runtime)?;
    let maps = sequence
        .try_extract_sequence::<DynMapValueType>()
        .map_err(runtime)?;
    let mut data = Vec::new();
    let mut classes = None;
    for map in &maps {
        let row: Vec<f32> = match map.try_extract_key_values::<i64, f32>() {
            Ok(pairs) => pairs.into_iter().map(|(_, v)| v).collect(),
            Err(_) => map
                .try_extract_key_values::<String, f32>()
                .map_err(runtime)?
                .into_iter()
                .map(|(_, v)| v)
                .collect(),
        };
        if *classes.get_or_insert(row.len()) != row.len() {
            return Err(runtime("ZipMap rows differ in their number of classes"));
        }
        data.extend(row);
    }
    Ok(NnTensor {
        name: spec.name.clone(),
        shape: vec![maps.len() as i64, classes.unwrap_or(0) as i64],
        data: NnData::F32(data),
    })
}

impl OrtGraph {
    /// `Run` on the shared session.
    fn run_session(
        &self,
        inputs: &[DynValue],
        options: &RunOptions,
    ) -> Result<Vec<DynValue>, String> {
        let api = ort::api();
        let input_names: Vec<*const c_char> = self.input_names.iter().map(|n| n.as_ptr()).collect();
        let output_names: Vec<*const c_char> =
            self.output_names.iter().map(|n| n.as_ptr()).collect();
        let input_values: Vec<*const ort::sys::OrtValue> = inputs.iter().map(|v| v.ptr()).collect();
        let mut outputs: Vec<*mut ort::sys::OrtValue> =
            vec![std::ptr::null_mut(); output_names.len()];
        // SAFETY: the session, run options and input values are live ort objects borrowed for
        // the call; the name arrays point into CStrings owned by `self` and match the inputs
        // and outputs in number; `outputs` has one slot per output name. The session is shared
        // across threads, which ONNX Runtime allows for `Run` on the CPU execution provider
        // (the module documentation says why ort itself asks for `&mut`).
        let status = unsafe {
            (api.Run)(
                self.session.ptr().cast_mut(),
                options.ptr(),
                input_names.as_ptr(),
                input_values.as_ptr(),
                input_values.len(),
                output_names.as_ptr(),
                output_names.len(),
                outputs.as_mut_ptr(),
            )
        };
        if !status.0.is_null() {
            // SAFETY: a non-null status is an OrtStatus that we own and release once, after
            // copying its message.
            let message = unsafe {
                let text = CStr::from_ptr((api.GetErrorMessage)(status.0))
                    .to_string_lossy()
                    .into_owned();
                (api.ReleaseStatus)(status.0);
                text
            };
            for output in outputs.into_iter().filter_map(NonNull::new) {
                // SAFETY: a value Run produced before failing is ours to release; it came from
                // the session's allocator.
                drop(unsafe { DynValue::from_ptr(output, Some(self.session.allocator())) });
            }
            return Err(message);
        }
        outputs
            .into_iter()
            .map(|p| {
                // SAFETY: on success Run fills every slot with a value the caller owns, allocated
                // by the session's (CPU) allocator; `Value` releases it on drop.
                NonNull::new(p)
                    .map(|p| unsafe { DynValue::from_ptr(p, Some(self.session.allocator())) })
                    .ok_or_else(|| "ONNX Runtime returned no value for an output".to_string())
            })
            .collect()
    }
}

impl Graph for OrtGraph {
    fn backend(&self) -> BackendKind {
        BackendKind::OnnxRuntime
    }

    fn inputs(&self) -> &[NnSpec] {
        &self.inputs
    }

    fn outputs(&self) -> &[NnSpec] {
        &self.outputs
    }

    fn run(&self, inputs: Vec<NnTensor>, deadline: Instant) -> Result<Vec<NnTensor>, NnError> {
        let ordered = order_inputs(&self.inputs, inputs)?;
        let values = ordered
            .into_iter()
            .map(to_value)
            .collect::<Result<Vec<_>, _>>()?;
        let call = Arc::new(Terminate {
            options: RunOptions::new().map_err(runtime)?,
            fired: AtomicBool::new(false),
        });
        let watch = watchdog::watch(deadline, call.clone());
        let ran = self.run_session(&values, &call.options);
        drop(watch);
        let outputs = match ran {
            Ok(outputs) => outputs,
            Err(_) if call.fired.load(Ordering::SeqCst) => return Err(NnError::Deadline),
            Err(message) => return Err(runtime(message)),
        };
        outputs
            .into_iter()
            .zip(self.outputs.iter().zip(&self.zipmaps))
            .map(|(value, (spec, &zipmap))| from_value(spec, zipmap, value))
            .collect()
    }

    fn memory_bytes(&self) -> u64 {
        self.memory
    }
}
