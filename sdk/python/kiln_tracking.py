"""Kiln's tracking helper: log a run's params, metrics, tags and artifacts to Kiln.

Standard library only. In a run that Kiln executes, it needs no set-up: Kiln puts this module on
the run's PYTHONPATH and sets KILN_RUN_URL and KILN_TOKEN. Elsewhere, set them yourself, or
pass them to `Run(url, token)`.

    import kiln_tracking as kiln
    kiln.log_params({"C": 0.5, "solver": "lbfgs"})
    for epoch in range(3):
        kiln.log_metric("loss", loss, step=epoch)
    kiln.set_tag("dataset", "iris")
    kiln.log_artifacts("model", "model")   # then: kiln model register NAME --run ID --path model

Scripts that already use the `mlflow` package need none of this: Kiln sets MLFLOW_TRACKING_URI,
MLFLOW_TRACKING_TOKEN and MLFLOW_RUN_ID for them.
"""

import json
import math
import os
import time
import urllib.error
import urllib.parse
import urllib.request

__all__ = [
    "Run",
    "KilnError",
    "current",
    "log_param",
    "log_params",
    "log_metric",
    "log_metrics",
    "set_tag",
    "set_tags",
    "log_artifact",
    "log_artifacts",
]

# A batch holds at most this many of each (the server's limits, as MLflow's).
MAX_METRICS, MAX_PARAMS, MAX_TAGS = 1000, 100, 100

# Attempts after the first when Kiln cannot be reached (0.5 s, 1 s, 2 s ... 16 s apart).
RETRIES = 8


class KilnError(Exception):
    """Kiln refused a request, or could not be reached; the message says why."""


def _number(value):
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


class Run:
    """A run to log to: its URL (`.../workgroups/W/runs/ID`) and a token."""

    def __init__(self, url=None, token=None, timeout=60):
        self.url = (url or os.environ.get("KILN_RUN_URL") or "").rstrip("/")
        self.token = token or os.environ.get("KILN_TOKEN") or ""
        if not self.url or not self.token:
            raise KilnError("no run: set KILN_RUN_URL and KILN_TOKEN, or pass Run(url, token)")
        self.timeout = timeout

    def _request(self, method, path, body=None, content_type="application/json"):
        data = body
        if content_type == "application/json" and body is not None:
            data = json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Authorization", "Bearer " + self.token)
        if data is not None:
            request.add_header("Content-Type", content_type)
        # A control plane that restarts, or is briefly overloaded, is waited for (about a
        # minute in all); any other answer is final.
        for attempt in range(RETRIES + 1):
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    text = response.read()
                return json.loads(text) if text else {}
            except urllib.error.HTTPError as e:
                detail = e.read().decode(errors="replace")
                if e.code in (502, 503, 504) and attempt < RETRIES:
                    time.sleep(min(0.5 * 2**attempt, 16))
                    continue
                try:
                    detail = json.loads(detail).get("error", detail)
                except ValueError:
                    pass
                raise KilnError(f"{method} {path}: {e.code}: {detail}") from None
            except urllib.error.URLError as e:
                if attempt < RETRIES:
                    time.sleep(min(0.5 * 2**attempt, 16))
                    continue
                raise KilnError(f"cannot reach Kiln at {self.url}: {e.reason}") from None

    def log_batch(self, params=None, metrics=None, tags=None):
        """Logs params ({key: value}), metrics ([(key, value, step)]) and tags at once,
        split into batches the server accepts."""
        params = [(k, str(v)) for k, v in (params or {}).items()]
        tags = [(k, str(v)) for k, v in (tags or {}).items()]
        now = int(time.time() * 1000)
        metrics = [
            {"key": k, "value": _number(v), "step": int(s), "timestamp": now}
            for k, v, s in (metrics or [])
        ]
        while params or metrics or tags:
            body = {
                "params": dict(params[:MAX_PARAMS]),
                "metrics": metrics[:MAX_METRICS],
                "tags": dict(tags[:MAX_TAGS]),
            }
            params, metrics, tags = params[MAX_PARAMS:], metrics[MAX_METRICS:], tags[MAX_TAGS:]
            self._request("POST", "/log-batch", body)

    def log_param(self, key, value):
        self.log_batch(params={key: value})

    def log_params(self, params):
        self.log_batch(params=params)

    def log_metric(self, key, value, step=0):
        self.log_batch(metrics=[(key, value, step)])

    def log_metrics(self, metrics, step=0):
        self.log_batch(metrics=[(k, v, step) for k, v in metrics.items()])

    def set_tag(self, key, value):
        self.log_batch(tags={key: value})

    def set_tags(self, tags):
        self.log_batch(tags=tags)

    def log_artifact(self, local_path, artifact_path=None):
        """Uploads one file, as `artifact_path/<its name>`."""
        name = os.path.basename(local_path)
        target = f"{artifact_path.strip('/')}/{name}" if artifact_path else name
        with open(local_path, "rb") as f:
            content = f.read()
        quoted = urllib.parse.quote(target)
        self._request("PUT", "/artifacts/" + quoted, content, "application/octet-stream")

    def log_artifacts(self, local_dir, artifact_path=None):
        """Uploads a directory's files, keeping their relative paths under `artifact_path`."""
        for root, _, files in os.walk(local_dir):
            relative = os.path.relpath(root, local_dir)
            for name in sorted(files):
                parts = [p for p in (artifact_path, relative if relative != "." else None) if p]
                self.log_artifact(os.path.join(root, name), "/".join(parts) or None)

    def info(self):
        """The run as Kiln shows it, with what it logged."""
        return self._request("GET", "")


_current = None


def current():
    """The run this process logs to (from KILN_RUN_URL and KILN_TOKEN)."""
    global _current
    if _current is None:
        _current = Run()
    return _current


def log_param(key, value):
    current().log_param(key, value)


def log_params(params):
    current().log_params(params)


def log_metric(key, value, step=0):
    current().log_metric(key, value, step)


def log_metrics(metrics, step=0):
    current().log_metrics(metrics, step)


def set_tag(key, value):
    current().set_tag(key, value)


def set_tags(tags):
    current().set_tags(tags)


def log_artifact(local_path, artifact_path=None):
    current().log_artifact(local_path, artifact_path)


def log_artifacts(local_dir, artifact_path=None):
    current().log_artifacts(local_dir, artifact_path)
