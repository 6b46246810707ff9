"""The scoring component's export: Kiln's `kiln:scoring/model` over a user's script.

`kiln image build` writes an app module that sets `kiln_scoring._component.SCRIPT` (the
script's module name) and `SCHEMA` (the manifest's schema, or None), then re-exports `Model`.
componentize-py imports that module at build time, which imports the script: its top-level code
runs then and is part of the snapshot every instance starts from.
"""

import sys
import traceback

import kiln_scoring as kiln
from componentize_py_types import Err
from kiln_scoring import (
    InvalidInput,
    Metadata,
    Tensor,
    _from_wit,
    _spec_to_wit,
    _to_wit,
    _values_to_tensor,
)
from wit_world import exports
from wit_world.imports import types

# Build-time checks print this marker before the message, so Kiln can say it plainly.
MARKER = "kiln-scoring-build-error:"


def _build_error(message):
    print(f"{MARKER} {message}", file=sys.stderr)
    raise SystemExit(1)


def bind(module_name, schema, model_name):
    """Imports the script (at build time) and checks it has what a scorer needs."""
    global _script, _schema, _name
    try:
        _script = __import__(module_name)
    except SyntaxError as e:
        where = f"{(e.filename or module_name + '.py').rsplit('/', 1)[-1]}, line {e.lineno}"
        text = (e.text or "").strip()
        _build_error(f"syntax error in {where}: {e.msg}" + (f": {text}" if text else ""))
    except ModuleNotFoundError as e:
        missing = e.name or str(e)
        top = missing.split(".")[0]
        frame = traceback.extract_tb(e.__traceback__)[-1] if e.__traceback__ else None
        where = f" ({frame.filename.rsplit('/', 1)[-1]}, line {frame.lineno})" if frame else ""
        hint = _NATIVE_HINTS.get(top)
        if hint:
            _build_error(
                f"the script imports '{top}'{where}, a native extension that cannot run in "
                f"WebAssembly: {hint}"
            )
        _build_error(
            f"the script imports '{missing}'{where}, which is not bundled: add its pure-Python "
            f"source to the manifest's [scorer] modules, or drop the import"
        )
    except BaseException as e:  # noqa: BLE001 - any failure at import is the script's error
        frames = traceback.extract_tb(e.__traceback__)
        frame = next((f for f in reversed(frames) if f.filename.endswith(module_name + ".py")), None)
        where = f" ({frame.filename.rsplit('/', 1)[-1]}, line {frame.lineno})" if frame else ""
        _build_error(f"the script failed at import{where}: {type(e).__name__}: {e}")
    _schema = schema
    _name = model_name
    if not callable(getattr(_script, "predict", None)) and not callable(
        getattr(_script, "run", None)
    ):
        _build_error(
            f"{module_name}.py defines neither predict(inputs) nor run(data): a scorer needs one"
        )
    if _schema is None and not callable(getattr(_script, "metadata", None)):
        _build_error(
            f"{module_name}.py has no metadata() and the manifest has no [schema]: "
            "give one of them, so Kiln knows the model's inputs and outputs"
        )


_NATIVE_HINTS = {
    name: "move the math into the model's ONNX graph (export it with skl2onnx or "
    "torch.onnx, grant capabilities = [\"nn\"], and call kiln_scoring.graph(\"model.onnx\")), "
    "or write it in plain Python"
    for name in (
        "numpy",
        "scipy",
        "sklearn",
        "pandas",
        "torch",
        "tensorflow",
        "xgboost",
        "lightgbm",
        "onnxruntime",
        "cython",
        "pyarrow",
        "PIL",
    )
}

_script = None
_schema = None
_name = None


class _LogStream:
    """`sys.stdout`/`sys.stderr` of an instance: lines to the deployment's log."""

    def __init__(self, level):
        self.level = level
        self.pending = ""

    def write(self, text):
        self.pending += text
        while "\n" in self.pending:
            line, self.pending = self.pending.split("\n", 1)
            kiln.log(line, self.level)
        if len(self.pending) > 4096:
            kiln.log(self.pending, self.level)
            self.pending = ""
        return len(text)

    def flush(self):
        if self.pending:
            kiln.log(self.pending, self.level)
            self.pending = ""


def _describe(error):
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _log_traceback(error):
    lines = traceback.format_exception(type(error), error, error.__traceback__)
    kiln.log("".join(lines).rstrip(), "error")


_described = None


def _metadata():
    """The script's metadata (asked once per instance), else the manifest's schema."""
    global _described
    if _described is None:
        described = getattr(_script, "metadata", None)
        if described is not None:
            meta = described()
            if isinstance(meta, dict):
                meta = Metadata(
                    meta.get("name", _name),
                    meta["inputs"],
                    meta["outputs"],
                    meta.get("platform", "python"),
                )
        else:
            meta = Metadata(_name, _schema["inputs"], _schema["outputs"])
        _described = meta
    return _described


class Model(exports.Model):
    """The export: `load`, `metadata` and `predict` over the script."""

    def load(self, config):
        sys.stdout = _LogStream("info")
        sys.stderr = _LogStream("warn")
        loader = getattr(_script, "load", None) or getattr(_script, "init", None)
        if loader is None:
            return
        try:
            if loader.__code__.co_argcount == 0:
                loader()
            else:
                loader(config)
        except BaseException as e:  # noqa: BLE001 - a failed load is the script's error
            _log_traceback(e)
            raise Err(_describe(e)) from None

    def metadata(self):
        meta = _metadata()
        return types.ModelMetadata(
            meta.name,
            meta.platform,
            [_spec_to_wit(s) for s in meta.inputs],
            [_spec_to_wit(s) for s in meta.outputs],
        )

    def predict(self, inputs):
        try:
            tensors = {t.name: _from_wit(t) for t in inputs}
            scored = getattr(_script, "predict", None)
            if scored is not None:
                result = scored(tensors)
            else:
                result = self._run(tensors)
            return [_to_wit(t) for t in self._output_tensors(result)]
        except ValueError as e:
            raise Err(types.PredictError_InvalidInput(_describe(e))) from None
        except BaseException as e:  # noqa: BLE001 - every other failure is the model's
            _log_traceback(e)
            raise Err(types.PredictError_Internal(_describe(e))) from None

    def _run(self, tensors):
        """Azure ML's `run(data)`: the request's rows in, one answer per row out."""
        specs = _metadata().inputs
        if len(specs) == 1:
            rows = tensors[specs[0].name].rows()
        else:
            columns = [tensors[s.name].rows() for s in specs]
            names = [s.name for s in specs]
            rows = [dict(zip(names, values)) for values in zip(*columns)]
        answer = _script.run(rows)
        if isinstance(answer, str):
            import json

            answer = json.loads(answer)
        if isinstance(answer, dict):
            return answer
        answer = list(answer)
        if len(_metadata().outputs) == 1:
            return {_metadata().outputs[0].name: answer}
        if answer and not isinstance(answer[0], dict):
            raise TypeError(
                "run() returned a list of values, but the model has several outputs: return one "
                "dict of output name to value per row"
            )
        return {s.name: [row[s.name] for row in answer] for s in _metadata().outputs}

    def _output_tensors(self, result):
        if isinstance(result, Tensor):
            result = [result]
        if isinstance(result, dict):
            items = list(result.items())
        elif isinstance(result, (list, tuple)) and all(isinstance(t, Tensor) for t in result):
            items = [(t.name, t) for t in result]
        elif len(_metadata().outputs) == 1:
            items = [(_metadata().outputs[0].name, result)]
        else:
            raise TypeError(
                "predict() must return a dict of output name to values, or a list of Tensor"
            )
        out = []
        for name, value in items:
            spec = _metadata().by_name.get(name)
            if spec is None:
                raise TypeError(
                    f"predict() returned output {name!r}, which the metadata does not list "
                    f"(outputs: {', '.join(_metadata().by_name)})"
                )
            if isinstance(value, Tensor):
                if value.name != name or value.datatype != spec.datatype:
                    value = _values_to_tensor(spec, value.data) if value.datatype != spec.datatype else Tensor(name, value.datatype, value.shape, value.data)
                out.append(value)
            else:
                try:
                    out.append(_values_to_tensor(spec, value))
                except (TypeError, ValueError) as e:
                    raise TypeError(f"output {name!r}: {e}") from None
        return out
