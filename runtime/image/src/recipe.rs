//! The model manifest: the TOML file a user writes (or `kiln manifest create` writes) that says
//! what goes into an image. Paths are relative to the manifest file; unknown keys are errors.

use crate::{ImageError, Schema, check_title};
use kiln_api::{Limits, MonitoringSettings};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// A model manifest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelManifest {
    /// Model name (the default deployment and image name).
    pub name: String,
    /// Model version.
    pub version: String,
    /// What the model is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The scoring component.
    #[serde(deserialize_with = "scorer_spec", serialize_with = "scorer_short")]
    pub scorer: ScorerSection,
    /// The model's files.
    #[serde(default)]
    pub model: ModelSection,
    /// Inputs and outputs; checked against the component's metadata at build.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<Schema>,
    /// Sample rows run through the component at build as a smoke test.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample: Option<SampleSection>,
    /// The drift baseline: from the sample, or from a training data file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<BaselineSection>,
    /// Drift monitoring defaults of this image's deployments; needs a baseline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitoring: Option<MonitoringSettings>,
    /// Default limits of deployments.
    #[serde(default)]
    pub limits: Limits,
    /// Capabilities granted to the scorer beyond artifacts and logging: none by default.
    #[serde(default)]
    pub capabilities: Vec<String>,
}

/// `[scorer]`, or `scorer = "NAME"` when it takes no config.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScorerSection {
    /// A `.wasm` path relative to the manifest, a built-in scorer (`onnx`, `onnx@VERSION`),
    /// `python` (a script compiled at build, see `script`), an image in the local store (a
    /// plain component, or a Kiln model whose scorer is reused), or a registry reference.
    pub component: String,
    /// The string passed to the scorer's `load`.
    #[serde(default)]
    pub config: String,
    /// For `component = "python"`: the scoring script (`score.py`), relative to the manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
    /// For `component = "python"`: pure-Python modules bundled with the script, files (`.py`)
    /// or directories (packages), relative to the manifest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub modules: Vec<String>,
}

/// The scorer name of a manifest whose scorer is a Python script.
pub const PYTHON_SCORER: &str = "python";

impl ScorerSection {
    /// Whether the scorer is a Python script compiled at build.
    pub fn is_python(&self) -> bool {
        self.component == PYTHON_SCORER
    }
}

/// `scorer = "NAME"` or a `[scorer]` table.
fn scorer_spec<'de, D: serde::Deserializer<'de>>(d: D) -> Result<ScorerSection, D::Error> {
    use serde::de::{Error, IntoDeserializer};
    // Untagged enums lose the inner error; read the value once, then say what was wrong.
    let value = toml::Value::deserialize(d)?;
    match value {
        toml::Value::String(name) => Ok(ScorerSection {
            component: name,
            ..ScorerSection::default()
        }),
        toml::Value::Table(table) => {
            ScorerSection::deserialize(toml::Value::Table(table).into_deserializer())
                .map_err(|e| D::Error::custom(format!("[scorer] {e}")))
        }
        other => Err(D::Error::custom(format!(
            "scorer must be a name (\"onnx\") or a [scorer] table, not {}",
            other.type_str()
        ))),
    }
}

fn scorer_short<S: serde::Serializer>(scorer: &ScorerSection, s: S) -> Result<S::Ok, S::Error> {
    if scorer.config.is_empty() && scorer.script.is_none() && scorer.modules.is_empty() {
        s.serialize_str(&scorer.component)
    } else {
        scorer.serialize(s)
    }
}

/// `[model]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// Files or directories; a directory contributes every file below it, named relative to it.
    #[serde(default)]
    pub files: Vec<String>,
}

/// `[sample]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SampleSection {
    /// CSV with a header row, or JSON rows (`[{...}]` or `{"columns": [...], "data": [[...]]}`).
    pub file: String,
    /// Rows kept at most (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<usize>,
}

/// `[baseline]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineSection {
    /// Training data (CSV or JSON rows); the sample when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Quantile bins per feature (default 10).
    #[serde(default = "default_bins")]
    pub bins: usize,
}

fn default_bins() -> usize {
    10
}

/// Capabilities a manifest may grant: `nn`, model graphs run on the host through `wasi:nn`.
/// Every other capability is refused rather than silently ignored.
pub const KNOWN_CAPABILITIES: &[&str] = &["nn"];

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

impl ModelManifest {
    /// Reads and checks a manifest file; returns it with the directory its paths are relative to.
    pub fn read(path: &Path) -> Result<(ModelManifest, PathBuf), ImageError> {
        let text = std::fs::read_to_string(path)
            .map_err(ImageError::io(format!("cannot read {}", path.display())))?;
        let manifest: ModelManifest = toml::from_str(&text)
            .map_err(|e| ImageError::Manifest(format!("{}: {e}", path.display())))?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        manifest.validate(&base)?;
        Ok((manifest, base))
    }

    /// The manifest as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }

    /// Checks names, capabilities and that every named file exists.
    pub fn validate(&self, base: &Path) -> Result<(), ImageError> {
        let fail = |m: String| Err(ImageError::Manifest(m));
        if !valid_name(&self.name) {
            return fail(format!(
                "name '{}' must be 1-128 characters of a-z, A-Z, 0-9, '-', '_', '.'",
                self.name
            ));
        }
        if !valid_name(&self.version) {
            return fail(format!(
                "version '{}' must be 1-128 characters of a-z, A-Z, 0-9, '-', '_', '.'",
                self.version
            ));
        }
        if let Some(unknown) = self
            .capabilities
            .iter()
            .find(|c| !KNOWN_CAPABILITIES.contains(&c.as_str()))
        {
            return fail(format!(
                "capability '{unknown}' is not available: scorers get read-only artifacts and logging, and nn (model graphs on the host through wasi:nn) when granted"
            ));
        }
        let scorer = &self.scorer;
        if scorer.is_python() {
            let Some(script) = &scorer.script else {
                return fail(
                    "[scorer] component = \"python\" needs script = \"score.py\", the scoring script"
                        .into(),
                );
            };
            if !script.ends_with(".py") || !base.join(script).is_file() {
                return fail(format!(
                    "[scorer] script '{script}' must be an existing .py file"
                ));
            }
            for module in &scorer.modules {
                let path = base.join(module);
                if !(path.is_dir() || (module.ends_with(".py") && path.is_file())) {
                    return fail(format!(
                        "[scorer] module '{module}' must be an existing .py file or directory"
                    ));
                }
            }
        } else if scorer.script.is_some() || !scorer.modules.is_empty() {
            return fail(format!(
                "[scorer] script and modules are for component = \"python\", not '{}'",
                scorer.component
            ));
        }
        for file in &self.model.files {
            if !base.join(file).exists() {
                return fail(format!("model file '{file}' does not exist"));
            }
        }
        if let Some(sample) = &self.sample
            && !base.join(&sample.file).is_file()
        {
            return fail(format!("sample file '{}' does not exist", sample.file));
        }
        self.limits
            .check()
            .map_err(|e| ImageError::Manifest(format!("[limits] {e}")))?;
        if let Some(monitoring) = &self.monitoring {
            if self.baseline.is_none() {
                return fail("[monitoring] needs a [baseline] to compare live traffic with".into());
            }
            monitoring
                .check()
                .map_err(|e| ImageError::Manifest(format!("[monitoring] {e}")))?;
        }
        if let Some(baseline) = &self.baseline {
            match (&baseline.file, &self.sample) {
                (Some(file), _) if !base.join(file).is_file() => {
                    return fail(format!("baseline file '{file}' does not exist"));
                }
                (None, None) => {
                    return fail(
                        "[baseline] needs a file, or a [sample] to compute it from".into(),
                    );
                }
                _ => {}
            }
            if baseline.bins < 2 || baseline.bins > 1000 {
                return fail(format!(
                    "baseline bins must be 2 to 1000, got {}",
                    baseline.bins
                ));
            }
        }
        Ok(())
    }

    /// The model files' bytes, by the names the scorer will read them under.
    pub fn model_files(&self, base: &Path) -> Result<Vec<(String, Vec<u8>)>, ImageError> {
        let mut files = Vec::new();
        for entry in &self.model.files {
            let path = base.join(entry);
            if path.is_dir() {
                collect_dir(&path, &path, &mut files)?;
            } else {
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let bytes = std::fs::read(&path)
                    .map_err(ImageError::io(format!("cannot read {}", path.display())))?;
                files.push((name, bytes));
            }
        }
        files.sort_by(|a, b| a.0.cmp(&b.0));
        if let Some(pair) = files.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(ImageError::Manifest(format!(
                "two model files are named '{}'",
                pair[0].0
            )));
        }
        for (name, _) in &files {
            check_title(name)?;
        }
        Ok(files)
    }
}

fn collect_dir(
    root: &Path,
    dir: &Path,
    out: &mut Vec<(String, Vec<u8>)>,
) -> Result<(), ImageError> {
    let entries =
        std::fs::read_dir(dir).map_err(ImageError::io(format!("cannot read {}", dir.display())))?;
    for entry in entries {
        let entry = entry.map_err(ImageError::io(format!("cannot read {}", dir.display())))?;
        let kind = entry.file_type().map_err(ImageError::io("cannot stat"))?;
        let path = entry.path();
        if kind.is_dir() {
            collect_dir(root, &path, out)?;
        } else if kind.is_file() {
            let relative = path.strip_prefix(root).unwrap_or(&path);
            let name = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            let bytes = std::fs::read(&path)
                .map_err(ImageError::io(format!("cannot read {}", path.display())))?;
            out.push((name, bytes));
        }
    }
    Ok(())
}

/// Rows of a data file with column names: CSV with a header, or JSON rows.
#[derive(Clone, Debug, PartialEq)]
pub struct SampleTable {
    /// Column names.
    pub columns: Vec<String>,
    /// Rows of cells (numbers, strings, booleans, null).
    pub rows: Vec<Vec<Value>>,
}

impl SampleTable {
    /// Reads at most `max_rows` rows of a CSV (`.csv`) or JSON file.
    pub fn read(path: &Path, max_rows: usize) -> Result<SampleTable, ImageError> {
        let bytes = std::fs::read(path)
            .map_err(ImageError::io(format!("cannot read {}", path.display())))?;
        let fail = |m: String| ImageError::Manifest(format!("{}: {m}", path.display()));
        let table = if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
        {
            let mut reader = csv::ReaderBuilder::new().from_reader(bytes.as_slice());
            let columns = reader
                .headers()
                .map_err(|e| fail(e.to_string()))?
                .iter()
                .map(str::to_string)
                .collect();
            let mut rows = Vec::new();
            for record in reader.records().take(max_rows) {
                let record = record.map_err(|e| fail(e.to_string()))?;
                rows.push(record.iter().map(cell).collect());
            }
            SampleTable { columns, rows }
        } else {
            let value: Value =
                serde_json::from_slice(&bytes).map_err(|e| fail(format!("not JSON: {e}")))?;
            match value {
                Value::Array(records) => {
                    let columns: Vec<String> = match records.first() {
                        Some(Value::Object(first)) => first.keys().cloned().collect(),
                        _ => return Err(fail("JSON rows must be objects".into())),
                    };
                    let rows = records
                        .iter()
                        .take(max_rows)
                        .map(|r| {
                            columns
                                .iter()
                                .map(|c| r.get(c).cloned().unwrap_or(Value::Null))
                                .collect()
                        })
                        .collect();
                    SampleTable { columns, rows }
                }
                Value::Object(mut split) => {
                    let columns =
                        serde_json::from_value(split.remove("columns").unwrap_or_default())
                            .map_err(|_| fail("'columns' must be a list of names".into()))?;
                    let rows: Vec<Vec<Value>> =
                        serde_json::from_value(split.remove("data").unwrap_or_default())
                            .map_err(|_| fail("'data' must be a list of rows".into()))?;
                    SampleTable {
                        columns,
                        rows: rows.into_iter().take(max_rows).collect(),
                    }
                }
                _ => {
                    return Err(fail(
                        "expected a list of row objects or {\"columns\", \"data\"}".into(),
                    ));
                }
            }
        };
        if table.rows.is_empty() {
            return Err(fail("no rows".into()));
        }
        if let Some(row) = table.rows.iter().find(|r| r.len() != table.columns.len()) {
            return Err(fail(format!(
                "a row has {} cells for {} columns",
                row.len(),
                table.columns.len()
            )));
        }
        Ok(table)
    }

    /// The cells as numbers (`None` where missing or not a number).
    pub fn numeric(&self) -> Vec<Vec<Option<f64>>> {
        self.rows
            .iter()
            .map(|r| r.iter().map(Value::as_f64).collect())
            .collect()
    }

    /// The table as MLflow `dataframe_split` JSON (`{"columns": ..., "data": ...}`).
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({ "columns": self.columns, "data": self.rows }))
            .unwrap_or_default()
    }

    /// Reads what [`SampleTable::to_json`] wrote (an image's sample blob).
    pub fn from_json(bytes: &[u8]) -> Result<SampleTable, ImageError> {
        #[derive(Deserialize)]
        struct Split {
            columns: Vec<String>,
            data: Vec<Vec<Value>>,
        }
        let split: Split = serde_json::from_slice(bytes).map_err(|e| {
            ImageError::Invalid(format!("the image's sample rows are not readable: {e}"))
        })?;
        Ok(SampleTable {
            columns: split.columns,
            rows: split.data,
        })
    }
}

fn cell(text: &str) -> Value {
    let text = text.trim();
    if let Ok(i) = text.parse::<i64>() {
        return Value::from(i);
    }
    match text.parse::<f64>() {
        Ok(f) if f.is_finite() => Value::from(f),
        _ if text.is_empty() => Value::Null,
        _ => Value::String(text.to_string()),
    }
}

#[cfg(test)]
mod tests;
