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
use ort::memory::{AllocationDevice, AllocatorType, MemoryInfo, MemoryType};
use ort::session::builder::GraphOptimizationLevel;
use ort::session::{RunOptions, Session};
use ort::value::{DynMapValueType, DynSequenceValueType, DynValue, Tensor};
use std::ffi::{CStr, CString, c_char};
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

mod specs;

use specs::{input_spec, output_spec};

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
        let memory_info = MemoryInfo::new(
            AllocationDevice::CPU,
            0,
            AllocatorType::Device,
            MemoryType::Default,
        )
        .map_err(runtime)?;
        Ok(OrtGraph {
            memory_info,
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
    /// Where request tensors live (the CPU), for the values created over them.
    memory_info: MemoryInfo<'static>,
    memory: u64,
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

/// ONNX Runtime's element type for a Kiln type.
fn onnx_type(ty: NnType) -> ort::sys::ONNXTensorElementDataType {
    use ort::sys::ONNXTensorElementDataType as T;
    match ty {
        NnType::Bool => T::ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL,
        NnType::U8 => T::ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8,
        NnType::U16 => T::ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT16,
        NnType::U32 => T::ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT32,
        NnType::U64 => T::ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT64,
        NnType::I8 => T::ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8,
        NnType::I16 => T::ONNX_TENSOR_ELEMENT_DATA_TYPE_INT16,
        NnType::I32 => T::ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32,
        NnType::I64 => T::ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64,
        NnType::F16 => T::ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16,
        NnType::F32 => T::ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT,
        NnType::F64 => T::ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE,
        NnType::Bytes => T::ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING,
    }
}

/// A failed C API call's message; the status is released. `None` for success.
///
/// SAFETY: `status` is what a C API call just returned, not yet released.
unsafe fn failure(status: ort::sys::OrtStatusPtr) -> Option<String> {
    if status.0.is_null() {
        return None;
    }
    let api = ort::api();
    // SAFETY: a non-null status is an OrtStatus that we own and release once, after copying
    // its message.
    unsafe {
        let text = CStr::from_ptr((api.GetErrorMessage)(status.0))
            .to_string_lossy()
            .into_owned();
        (api.ReleaseStatus)(status.0);
        Some(text)
    }
}

/// An OrtValue Kiln owns, released on drop.
struct OwnedValue(NonNull<ort::sys::OrtValue>);

// SAFETY: an OrtValue is a plain heap object with no thread affinity; Kiln uses each from one
// thread at a time.
unsafe impl Send for OwnedValue {}

impl Drop for OwnedValue {
    fn drop(&mut self) {
        // SAFETY: the value is ours and released once.
        unsafe { (ort::api().ReleaseValue)(self.0.as_ptr()) }
    }
}

/// A request tensor as ONNX Runtime reads it: numbers in place in Kiln's buffer (no copy; the
/// buffer is kept alive beside the value), strings copied into a tensor of ONNX Runtime's own.
enum InputValue {
    InPlace { value: OwnedValue, _data: NnData },
    Strings(DynValue),
}

impl InputValue {
    fn ptr(&self) -> *const ort::sys::OrtValue {
        match self {
            InputValue::InPlace { value, .. } => value.0.as_ptr(),
            InputValue::Strings(value) => value.ptr(),
        }
    }
}

/// The start and length in bytes of a tensor's numbers, in the layout ONNX Runtime reads (bool
/// is one byte, FP16 its 16 bits); `None` for strings.
fn number_bytes(data: &mut NnData) -> Option<(*mut std::ffi::c_void, usize)> {
    fn parts<T>(v: &mut [T]) -> Option<(*mut std::ffi::c_void, usize)> {
        Some((v.as_mut_ptr().cast(), std::mem::size_of_val(v)))
    }
    match data {
        NnData::Bool(v) => parts(v),
        NnData::U8(v) => parts(v),
        NnData::U16(v) => parts(v),
        NnData::U32(v) => parts(v),
        NnData::U64(v) => parts(v),
        NnData::I8(v) => parts(v),
        NnData::I16(v) => parts(v),
        NnData::I32(v) => parts(v),
        NnData::I64(v) => parts(v),
        NnData::F16(v) => parts(v),
        NnData::F32(v) => parts(v),
        NnData::F64(v) => parts(v),
        NnData::Bytes(_) => None,
    }
}

impl OrtGraph {
    /// A request tensor as an ONNX Runtime value. Numbers go straight to the C API over the
    /// tensor's own buffer with the graph's memory info: `ort`'s `Tensor::from_array` creates
    /// a memory info and reads the value's type back on every call, which costs more than a
    /// small graph's run when called once per request.
    fn to_value(&self, tensor: NnTensor) -> Result<InputValue, NnError> {
        let NnTensor {
            shape, mut data, ..
        } = tensor;
        let ty = data.ty();
        let Some((ptr, bytes)) = number_bytes(&mut data) else {
            let NnData::Bytes(v) = data else {
                unreachable!("number_bytes is None only for strings")
            };
            let strings: Vec<String> = v
                .into_iter()
                .map(|b| String::from_utf8(b).map_err(|_| ()))
                .collect::<Result<_, _>>()
                .map_err(|()| {
                    NnError::InvalidInput("ONNX string tensors hold UTF-8 text".into())
                })?;
            return Tensor::from_string_array((shape, strings.as_slice()))
                .map(|t| InputValue::Strings(t.into_dyn()))
                .map_err(runtime);
        };
        let mut value = std::ptr::null_mut();
        // SAFETY: `ptr` and `bytes` describe the live buffer of `data`, which moves (without
        // its heap buffer moving) into the returned value and outlives the OrtValue that reads
        // it; `shape` is read during the call only; the memory info is the graph's, alive for
        // as long as it.
        let status = unsafe {
            (ort::api().CreateTensorWithDataAsOrtValue)(
                self.memory_info.ptr(),
                ptr,
                bytes,
                shape.as_ptr(),
                shape.len(),
                onnx_type(ty),
                &mut value,
            )
        };
        // SAFETY: the status was just returned.
        if let Some(message) = unsafe { failure(status) } {
            return Err(runtime(message));
        }
        let value = NonNull::new(value)
            .ok_or_else(|| runtime("ONNX Runtime created no value for an input"))?;
        Ok(InputValue::InPlace {
            value: OwnedValue(value),
            _data: data,
        })
    }

    /// An output as a Kiln tensor. Numbers are read with the C API (type, shape, data) and
    /// copied; strings and ZipMaps go through `ort`.
    fn read_output(
        &self,
        spec: &NnSpec,
        zipmap: bool,
        value: OwnedValue,
    ) -> Result<NnTensor, NnError> {
        if zipmap || spec.ty == NnType::Bytes {
            let ptr = value.0;
            std::mem::forget(value);
            // SAFETY: the value Run produced is ours, allocated by the session's allocator;
            // `DynValue` takes it over (the forgotten guard would have released it).
            let value = unsafe { DynValue::from_ptr(ptr, Some(self.session.allocator())) };
            return if zipmap {
                from_zipmap(spec, value)
            } else {
                from_strings(spec, value)
            };
        }
        let api = ort::api();
        let mut info = std::ptr::null_mut();
        let mut ty = ort::sys::ONNXTensorElementDataType::ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
        let mut rank = 0usize;
        let mut count = 0usize;
        let mut shape = Vec::new();
        // SAFETY: `value` is a live OrtValue; `info` is released once below, after the calls
        // that read it; `shape` has `rank` slots when GetDimensions fills it.
        let read = unsafe {
            failure((api.GetTensorTypeAndShape)(value.0.as_ptr(), &mut info)).or_else(|| {
                let failed = failure((api.GetTensorElementType)(info, &mut ty))
                    .or_else(|| failure((api.GetDimensionsCount)(info, &mut rank)))
                    .or_else(|| {
                        shape.resize(rank, 0i64);
                        failure((api.GetDimensions)(info, shape.as_mut_ptr(), rank))
                    })
                    .or_else(|| failure((api.GetTensorShapeElementCount)(info, &mut count)));
                (api.ReleaseTensorTypeAndShapeInfo)(info);
                failed
            })
        };
        if let Some(message) = read {
            return Err(runtime(message));
        }
        if ty != onnx_type(spec.ty) {
            return Err(runtime(format!(
                "output '{}' came out as {ty:?}, not the {:?} the graph declares",
                spec.name, spec.ty
            )));
        }
        let mut data = std::ptr::null_mut();
        if count > 0 {
            // SAFETY: a live tensor value; the pointer is valid while the value lives.
            if let Some(message) =
                unsafe { failure((api.GetTensorMutableData)(value.0.as_ptr(), &mut data)) }
            {
                return Err(runtime(message));
            }
        }
        macro_rules! copied {
            ($ty:ty, $variant:ident) => {{
                if count == 0 || data.is_null() {
                    NnData::$variant(Vec::new())
                } else {
                    // SAFETY: the tensor holds `count` elements of this type (checked above),
                    // at `data`, alive until `value` drops after the copy.
                    NnData::$variant(
                        unsafe {
                            std::slice::from_raw_parts(data.cast::<$ty>().cast_const(), count)
                        }
                        .to_vec(),
                    )
                }
            }};
        }
        let data = match spec.ty {
            NnType::Bool => copied!(bool, Bool),
            NnType::U8 => copied!(u8, U8),
            NnType::U16 => copied!(u16, U16),
            NnType::U32 => copied!(u32, U32),
            NnType::U64 => copied!(u64, U64),
            NnType::I8 => copied!(i8, I8),
            NnType::I16 => copied!(i16, I16),
            NnType::I32 => copied!(i32, I32),
            NnType::I64 => copied!(i64, I64),
            NnType::F16 => copied!(u16, F16),
            NnType::F32 => copied!(f32, F32),
            NnType::F64 => copied!(f64, F64),
            NnType::Bytes => unreachable!("strings are read through ort above"),
        };
        drop(value);
        Ok(NnTensor {
            name: spec.name.clone(),
            shape,
            data,
        })
    }
}

/// A string output.
fn from_strings(spec: &NnSpec, value: DynValue) -> Result<NnTensor, NnError> {
    let (shape, strings) = value.try_extract_strings().map_err(runtime)?;
    Ok(NnTensor {
        name: spec.name.clone(),
        shape: shape.to_vec(),
        data: NnData::Bytes(strings.into_iter().map(String::into_bytes).collect()),
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
    /// `Run` on the shared session; the outputs in the graph's order.
    fn run_session(
        &self,
        inputs: &[InputValue],
        options: &RunOptions,
    ) -> Result<Vec<OwnedValue>, String> {
        let api = ort::api();
        let input_names: Vec<*const c_char> = self.input_names.iter().map(|n| n.as_ptr()).collect();
        let output_names: Vec<*const c_char> =
            self.output_names.iter().map(|n| n.as_ptr()).collect();
        let input_values: Vec<*const ort::sys::OrtValue> = inputs.iter().map(|v| v.ptr()).collect();
        let mut outputs: Vec<*mut ort::sys::OrtValue> =
            vec![std::ptr::null_mut(); output_names.len()];
        // SAFETY: the session, run options and input values are live objects borrowed for
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
        // Whatever Run produced is ours to release, on failure too. On success it fills every
        // slot with a value allocated by the session's (CPU) allocator.
        let produced: Vec<Option<OwnedValue>> = outputs
            .into_iter()
            .map(|p| NonNull::new(p).map(OwnedValue))
            .collect();
        // SAFETY: the status Run just returned.
        if let Some(message) = unsafe { failure(status) } {
            return Err(message);
        }
        produced
            .into_iter()
            .map(|v| v.ok_or_else(|| "ONNX Runtime returned no value for an output".to_string()))
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
            .map(|t| self.to_value(t))
            .collect::<Result<Vec<_>, _>>()?;
        let call = Arc::new(Terminate {
            options: RunOptions::new().map_err(runtime)?,
            fired: AtomicBool::new(false),
        });
        let watch = watchdog::watch(deadline, call.clone());
        let ran = self.run_session(&values, &call.options);
        drop(watch);
        drop(values);
        let outputs = match ran {
            Ok(outputs) => outputs,
            Err(_) if call.fired.load(Ordering::SeqCst) => return Err(NnError::Deadline),
            Err(message) => return Err(runtime(message)),
        };
        outputs
            .into_iter()
            .zip(self.outputs.iter().zip(&self.zipmaps))
            .map(|(value, (spec, &zipmap))| self.read_output(spec, zipmap, value))
            .collect()
    }

    fn memory_bytes(&self) -> u64 {
        self.memory
    }
}
