"""Kiln's Python scoring SDK: write a model's `score.py` in plain Python.

`kiln image build` compiles a manifest with `scorer = "python"` into a WebAssembly scoring
component (with componentize-py, at the version Kiln pins): the script, its bundled pure-Python
modules and this SDK, over CPython. The script's top-level code runs at build time and is
snapshotted, so each instance only calls `load`. A script defines:

    import kiln_scoring as kiln

    def load(config):                 # once per instance (optional); `init()` also works
        global weights
        weights = kiln.read_json("weights.json")   # the image's files

    def metadata():                   # optional when the manifest has a [schema]
        return kiln.Metadata("iris",
            inputs=[kiln.spec("input", "FP32", [-1, 4])],
            outputs=[kiln.spec("label", "INT64", [-1])])

    def predict(inputs):              # inputs: {name: kiln.Tensor}
        rows = inputs["input"].rows() # [[5.1, 3.5, 1.4, 0.2], ...]
        return {"label": [classify(r) for r in rows]}

or, Azure ML's shape, `init()` and `run(data)`, where `data` is the request's rows (one list per
row for a single input, one dict of input name to value per row for several) and the answer
holds one item per row (a value, or a dict of output name to value).

Outputs are a dict of output name to values (a `Tensor`, a flat list, a nested list per row, an
`array.array` or a `memoryview`), or a list of `Tensor`; datatypes and shapes come from the
metadata. Raise `ValueError` (or `kiln.InvalidInput`) for a request the model cannot take: the
caller gets 400 with the message. Any other exception is a 500 with its type and message.

Graphs (ONNX) run natively on the host through `wasi:nn` when the manifest grants `nn`:
`kiln.graph("model.onnx").compute({"input": tensor})`.

Scorers get no files, network, environment or clock: `open()` and sockets raise `OSError`, the
clocks stand still at the Unix epoch, and `print` goes to the deployment's log. The same script
runs natively too (for tests, or beside a web server): `kiln.use_files(directory)` points the
file functions at a directory, and graphs then run on the `onnxruntime` package.
"""

import json
import sys
from array import array

__all__ = [
    "Tensor",
    "TensorSpec",
    "Metadata",
    "InvalidInput",
    "DATATYPES",
    "spec",
    "tensor",
    "files",
    "read_file",
    "read_text",
    "read_json",
    "log",
    "graph",
    "Graph",
    "use_files",
    "in_component",
]

#: Open Inference Protocol datatypes, as Kiln names them.
DATATYPES = (
    "BOOL",
    "UINT8",
    "UINT16",
    "UINT32",
    "UINT64",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "FP16",
    "FP32",
    "FP64",
    "BYTES",
)

_FLOATS = ("FP16", "FP32", "FP64")


class InvalidInput(ValueError):
    """The request does not fit the model: the caller gets HTTP 400 with this message."""


class TensorSpec:
    """What a model accepts or returns: name, datatype and shape (-1 for a variable dimension)."""

    __slots__ = ("name", "datatype", "shape")

    def __init__(self, name, datatype, shape):
        datatype = str(datatype).upper()
        if datatype not in DATATYPES:
            raise ValueError(f"datatype {datatype!r} is not one of {', '.join(DATATYPES)}")
        self.name = str(name)
        self.datatype = datatype
        self.shape = [int(d) for d in shape]

    def __repr__(self):
        return f"TensorSpec({self.name!r}, {self.datatype!r}, {self.shape!r})"

    def __eq__(self, other):
        return isinstance(other, TensorSpec) and (self.name, self.datatype, self.shape) == (
            other.name,
            other.datatype,
            other.shape,
        )


def spec(name, datatype, shape):
    """A `TensorSpec`: `kiln.spec("input", "FP32", [-1, 4])`."""
    return TensorSpec(name, datatype, shape)


class Metadata:
    """A model's self-description: its name, inputs and outputs."""

    __slots__ = ("name", "platform", "inputs", "outputs", "by_name")

    def __init__(self, name, inputs, outputs, platform="python"):
        self.name = str(name)
        self.platform = str(platform)
        self.inputs = [_as_spec(s) for s in inputs]
        self.outputs = [_as_spec(s) for s in outputs]
        self.by_name = {s.name: s for s in self.outputs}

    def __repr__(self):
        return f"Metadata({self.name!r}, inputs={self.inputs!r}, outputs={self.outputs!r})"


def _as_spec(value):
    if isinstance(value, TensorSpec):
        return value
    if isinstance(value, dict):
        return TensorSpec(value["name"], value["datatype"], value["shape"])
    name, datatype, shape = value
    return TensorSpec(name, datatype, shape)


class Tensor:
    """A named tensor: its datatype, its shape, and its elements flat in row-major order
    (`data`, a list; bytes for BYTES elements)."""

    __slots__ = ("name", "datatype", "shape", "data")

    def __init__(self, name, datatype, shape, data):
        self.name = name
        self.datatype = datatype
        self.shape = list(shape)
        self.data = data

    def __repr__(self):
        return f"Tensor({self.name!r}, {self.datatype!r}, {self.shape!r}, {self.data!r})"

    def __len__(self):
        """Its first dimension (the batch)."""
        return self.shape[0] if self.shape else 1

    @property
    def batch(self):
        """Its first dimension: the number of rows."""
        return len(self)

    def rows(self):
        """The elements row by row: a list of lists for a 2-d (or deeper, flattened per row)
        tensor, the elements themselves for a 1-d one."""
        if len(self.shape) <= 1:
            return list(self.data)
        width = 1
        for d in self.shape[1:]:
            width *= d
        data = self.data
        return [list(data[i : i + width]) for i in range(0, len(data), width)]

    def column(self, index):
        """One column of a 2-d tensor, as a list."""
        if len(self.shape) != 2:
            raise InvalidInput(f"{self.name}: column() needs a 2-d tensor, not {self.shape}")
        width = self.shape[1]
        if not 0 <= index < width:
            raise InvalidInput(f"{self.name}: no column {index} in {width}")
        return list(self.data[index::width])

    def scalar(self):
        """The one element of a tensor that holds one."""
        if len(self.data) != 1:
            raise InvalidInput(f"{self.name}: expected one element, got {len(self.data)}")
        return self.data[0]

    def text(self):
        """BYTES elements as str (UTF-8)."""
        return [b.decode("utf-8") if isinstance(b, (bytes, bytearray)) else str(b) for b in self.data]

    def reshape(self, shape):
        """The same elements under another shape (one dimension may be -1)."""
        return Tensor(self.name, self.datatype, _resolve_shape(shape, len(self.data), self.name), self.data)


def tensor(name, values, datatype="FP32", shape=None):
    """A `Tensor` from values: a flat list (give `shape` for more than one dimension), a nested
    list (its shape is read off it), an `array.array` or a `memoryview`."""
    datatype = str(datatype).upper()
    if datatype not in DATATYPES:
        raise ValueError(f"datatype {datatype!r} is not one of {', '.join(DATATYPES)}")
    data, found = _flatten(values, datatype)
    if shape is None:
        shape = found
    else:
        shape = _resolve_shape(shape, len(data), name)
    return Tensor(name, datatype, shape, data)


def _resolve_shape(shape, count, name):
    shape = [int(d) for d in shape]
    known = 1
    unknown = [i for i, d in enumerate(shape) if d < 0]
    for d in shape:
        if d >= 0:
            known *= d
    if len(unknown) > 1:
        raise ValueError(f"{name}: shape {shape} has more than one variable dimension")
    if unknown:
        if known == 0 or count % known:
            raise ValueError(f"{name}: {count} elements do not fit shape {shape}")
        shape[unknown[0]] = count // known
    elif known != count:
        raise ValueError(f"{name}: {count} elements do not fit shape {shape}")
    return shape


def _flatten(values, datatype):
    """Flat elements and the shape of `values`."""
    if isinstance(values, Tensor):
        return list(values.data), list(values.shape)
    if isinstance(values, memoryview):
        return values.tolist() if values.ndim <= 1 else _flatten(values.tolist(), datatype), [len(values)]
    if isinstance(values, array):
        return values.tolist(), [len(values)]
    if isinstance(values, (bytes, bytearray)) and datatype != "BYTES":
        return list(values), [len(values)]
    if isinstance(values, (str, bytes, bytearray, int, float, bool)):
        return [values], []
    values = list(values)
    if not values or not isinstance(values[0], (list, tuple, array, memoryview)):
        return values, [len(values)]
    flat = []
    inner = None
    for row in values:
        data, shape = _flatten(row, datatype)
        if inner is None:
            inner = shape
        elif shape != inner:
            raise ValueError(f"rows of different shapes: {inner} and {shape}")
        flat.extend(data)
    return flat, [len(values)] + (inner or [])


# -- The image's files, the log and graphs: through the component's imports, or natively. --

_files_dir = None


def in_component():
    """Whether this runs inside Kiln's scoring component (else natively)."""
    return _host is not None


try:  # Inside the component, componentize-py generated these from Kiln's WIT.
    from wit_world.imports import artifacts as _artifacts
    from wit_world.imports import logging as _logging

    _host = True
except ImportError:
    _artifacts = _logging = None
    _host = None

# Modules load at build time only (an instance has no files to import from), so the graph
# bindings are imported here, when the world has them (a manifest granting `nn`).
try:
    from wit_world.imports import graph as _nn_graph
    from wit_world.imports import graphs as _nn_graphs
except ImportError:
    _nn_graph = _nn_graphs = None


def use_files(directory):
    """Natively: read the image's files from `directory` (a model's files, as its manifest
    lists them). Inside a component it does nothing: the files are the image's."""
    global _files_dir
    _files_dir = str(directory)


def files():
    """Relative paths of the image's files, `/`-separated."""
    if _artifacts is not None:
        return list(_artifacts.list_files())
    import os

    base = _native_dir()
    found = []
    for root, _, names in os.walk(base):
        for name in names:
            found.append(os.path.relpath(os.path.join(root, name), base).replace(os.sep, "/"))
    return sorted(found)


def read_file(path):
    """The bytes of one of the image's files; `FileNotFoundError` when it has none by that name."""
    if _artifacts is not None:
        from componentize_py_types import Err

        try:
            return bytes(_artifacts.read_file(path))
        except Err as e:
            raise FileNotFoundError(str(e.value)) from None
    import os

    with open(os.path.join(_native_dir(), path), "rb") as f:
        return f.read()


def read_text(path, encoding="utf-8"):
    """One of the image's files as text."""
    return read_file(path).decode(encoding)


def read_json(path):
    """One of the image's files, parsed as JSON."""
    return json.loads(read_file(path))


def _native_dir():
    import os

    if _files_dir is None:
        return os.environ.get("KILN_SCORING_FILES", ".")
    return _files_dir


_LEVELS = ("trace", "debug", "info", "warn", "error")


def log(message, level="info"):
    """A line in the deployment's log, tagged with the deployment (`print` goes there too)."""
    level = str(level).lower()
    if level == "warning":
        level = "warn"
    if level not in _LEVELS:
        raise ValueError(f"log level {level!r} is not one of {', '.join(_LEVELS)}")
    if _logging is not None:
        _logging.log(getattr(_logging.Level, level.upper()), str(message))
    else:
        print(f"[{level}] {message}", file=sys.stderr)


_graphs = {}


def graph(name="model.onnx"):
    """The image's graph `name` (its model file), parsed once by the host and shared by every
    instance. Needs `capabilities = ["nn"]` in the manifest."""
    found = _graphs.get(name)
    if found is None:
        found = _graphs[name] = Graph(name)
    return found


class Graph:
    """A model graph run natively on the host through `wasi:nn` (ONNX Runtime or tract)."""

    def __init__(self, name):
        self.name = name
        if _host is not None:
            nn_graph, graphs = _nn_graph, _nn_graphs
            if graphs is None:
                raise PermissionError(
                    f"graph {name!r}: this scorer is not granted nn; add capabilities = [\"nn\"] "
                    "to its manifest"
                )
            from componentize_py_types import Err

            try:
                self._handle = nn_graph.load_by_name(name)
            except Err as e:
                raise RuntimeError(f"graph {name!r}: {_nn_error(e.value)}") from None
            self._graphs = graphs
            self.inputs = [_spec_from_wit(s) for s in graphs.inputs(self._handle)]
            self.outputs = [_spec_from_wit(s) for s in graphs.outputs(self._handle)]
            self.backend = graphs.backend(self._handle)
        else:
            import onnxruntime

            session = onnxruntime.InferenceSession(
                read_file(name), providers=["CPUExecutionProvider"]
            )
            self._session = session
            self.inputs = [_spec_from_ort(i) for i in session.get_inputs()]
            self.outputs = [_spec_from_ort(o) for o in session.get_outputs()]
            self.backend = "onnxruntime (python)"

    def compute(self, inputs):
        """Runs the graph on `inputs` (a dict of input name to a `Tensor` or values, whose
        datatype and shape come from the graph's inputs), and returns a dict of output name to
        `Tensor`, in the graph's order."""
        if isinstance(inputs, (list, tuple)):
            inputs = {t.name: t for t in inputs}
        tensors = []
        for s in self.inputs:
            if s.name not in inputs:
                raise InvalidInput(f"graph {self.name!r} needs input {s.name!r}")
            value = inputs[s.name]
            if not isinstance(value, Tensor):
                value = _values_to_tensor(s, value)
            elif value.name != s.name:
                value = Tensor(s.name, value.datatype, value.shape, value.data)
            tensors.append(value)
        if _host is not None:
            from componentize_py_types import Err

            try:
                out = self._graphs.compute(self._handle, [_to_wit(t) for t in tensors])
            except Err as e:
                raise RuntimeError(f"graph {self.name!r}: {_nn_error(e.value)}") from None
            return {t.name: _from_wit(t) for t in out}
        return self._compute_native(tensors)

    def _compute_native(self, tensors):
        import numpy

        feeds = {}
        for t in tensors:
            kind = _NUMPY[t.datatype]
            values = t.data if t.datatype != "BYTES" else [b.decode() for b in t.data]
            feeds[t.name] = numpy.array(values, dtype=kind).reshape(t.shape)
        results = self._session.run(None, feeds)
        out = {}
        for s, value in zip(self.outputs, results):
            if isinstance(value, list):  # a ZipMap: one map per row, columns in class order
                keys = sorted(value[0]) if value else []
                value = numpy.array([[row[k] for k in keys] for row in value], dtype="float32")
            value = numpy.asarray(value)
            datatype = _DATATYPE_OF.get(value.dtype.kind + str(value.dtype.itemsize), "BYTES")
            data = value.reshape(-1).tolist()
            if datatype == "BYTES":
                data = [str(v).encode() for v in data]
            out[s.name] = Tensor(s.name, datatype, list(value.shape), data)
        return out


_NUMPY = {
    "BOOL": "bool",
    "UINT8": "uint8",
    "UINT16": "uint16",
    "UINT32": "uint32",
    "UINT64": "uint64",
    "INT8": "int8",
    "INT16": "int16",
    "INT32": "int32",
    "INT64": "int64",
    "FP16": "float16",
    "FP32": "float32",
    "FP64": "float64",
    "BYTES": "object",
}
_DATATYPE_OF = {
    "b1": "BOOL",
    "u1": "UINT8",
    "u2": "UINT16",
    "u4": "UINT32",
    "u8": "UINT64",
    "i1": "INT8",
    "i2": "INT16",
    "i4": "INT32",
    "i8": "INT64",
    "f2": "FP16",
    "f4": "FP32",
    "f8": "FP64",
}
_ORT_TYPES = {
    "tensor(bool)": "BOOL",
    "tensor(uint8)": "UINT8",
    "tensor(uint16)": "UINT16",
    "tensor(uint32)": "UINT32",
    "tensor(uint64)": "UINT64",
    "tensor(int8)": "INT8",
    "tensor(int16)": "INT16",
    "tensor(int32)": "INT32",
    "tensor(int64)": "INT64",
    "tensor(float16)": "FP16",
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(string)": "BYTES",
}


def _spec_from_ort(node):
    shape = [d if isinstance(d, int) else -1 for d in (node.shape or [])]
    return TensorSpec(node.name, _ORT_TYPES.get(node.type, "FP32"), shape)


def _nn_error(error):
    try:
        return f"{error.code().name.lower()}: {error.data()}"
    except Exception:  # noqa: BLE001 - the error resource may be gone; say what we can
        return str(error)


def _values_to_tensor(s, values):
    """Values for the spec `s`: its datatype, its shape with the batch read off the values."""
    data, found = _flatten(values, s.datatype)
    if len(found) == len(s.shape) and all(d < 0 or d == f for d, f in zip(s.shape, found)):
        shape = found
    else:
        shape = _resolve_shape(s.shape, len(data), s.name)
    return Tensor(s.name, s.datatype, shape, _coerce(data, s.datatype))


def _coerce(data, datatype):
    if datatype in _FLOATS:
        return [float(v) for v in data] if data and not isinstance(data[0], float) else data
    if datatype == "BOOL":
        return [bool(v) for v in data]
    if datatype == "BYTES":
        return [v.encode("utf-8") if isinstance(v, str) else bytes(v) for v in data]
    return [int(v) for v in data] if data and not isinstance(data[0], int) else data


# -- Conversions to and from the component's own types (inside a component only). --

if _host is not None:
    from wit_world.imports import types as _types

    _WIT_DATA = {
        "BOOL": _types.TensorData_Bool,
        "UINT8": _types.TensorData_Uint8,
        "UINT16": _types.TensorData_Uint16,
        "UINT32": _types.TensorData_Uint32,
        "UINT64": _types.TensorData_Uint64,
        "INT8": _types.TensorData_Int8,
        "INT16": _types.TensorData_Int16,
        "INT32": _types.TensorData_Int32,
        "INT64": _types.TensorData_Int64,
        "FP16": _types.TensorData_Fp16,
        "FP32": _types.TensorData_Fp32,
        "FP64": _types.TensorData_Fp64,
        "BYTES": _types.TensorData_Bytes,
    }
    _DATATYPE_OF_WIT = {cls: name for name, cls in _WIT_DATA.items()}


def _to_wit(t):
    data = t.data
    if t.datatype == "UINT8":
        data = bytes(data)
    elif t.datatype == "INT8":
        data = array("b", data).tobytes()
    elif not isinstance(data, list):
        data = list(data)
    return _types.Tensor(t.name, list(t.shape), _WIT_DATA[t.datatype](data))


def _from_wit(t):
    datatype = _DATATYPE_OF_WIT[type(t.data)]
    data = t.data.value
    if datatype == "UINT8":
        data = list(data)
    elif datatype == "INT8":
        data = array("b", data).tolist()
    return Tensor(t.name, datatype, t.shape, data)


def _spec_from_wit(s):
    return TensorSpec(s.name, s.datatype.name, s.shape)


def _spec_to_wit(s):
    return _types.TensorSpec(s.name, getattr(_types.Datatype, s.datatype), list(s.shape))
