//! Python scorers: a manifest with `scorer = "python"` names a script (`score.py`) and its
//! pure-Python modules, which [`build`] compiles into a `kiln:scoring` component with
//! componentize-py, at the one version Kiln pins, together with Kiln's Python SDK
//! (`sdk/python/kiln_scoring`, built into this binary) and the scoring WIT.
//!
//! componentize-py imports the script while it builds (its top-level code runs then, confined
//! to the bundled files, with no network and no environment) and snapshots the interpreter, so
//! an instance starts from that state and only calls `load`. The component imports WASI, which
//! the engine links with an empty context (`kiln_engine::empty_wasi`). The same script, modules,
//! schema, SDK, WIT and componentize-py give the same component by digest, from a build cache
//! keyed by their digest ([`cache_dir`]): CPython's snapshot is not byte-reproducible.
//!
//! Where a sandbox is given (the control plane's), componentize-py itself runs in it too: it
//! sees its own installation and the build directory, and no network.

use crate::BuildError;
use kiln_executor::sandbox::{Jail, Sandbox};
use kiln_image::{PythonBuild, Schema};
use sha2::{Digest as _, Sha256};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The componentize-py version Kiln builds with (`sdk/install-componentize-py` installs it).
pub const COMPONENTIZE_PY_VERSION: &str = "0.25.1";

/// How long one componentize-py build may take.
const BUILD_LIMIT: Duration = Duration::from_secs(300);

/// The app module Kiln writes: it binds the SDK's export to the script.
const APP_MODULE: &str = "_kiln_scorer_app";

/// What the SDK prints before a build error it found in the script.
const MARKER: &str = "kiln-scoring-build-error:";

/// Kiln's Python SDK and the WIT it is generated from, as files of a build directory.
const EMBEDDED: &[(&str, &str)] = &[
    (
        "sdk/kiln_scoring/__init__.py",
        include_str!("../../../sdk/python/kiln_scoring/__init__.py"),
    ),
    (
        "sdk/kiln_scoring/_component.py",
        include_str!("../../../sdk/python/kiln_scoring/_component.py"),
    ),
    (
        "wit/scoring.wit",
        include_str!("../../../sdk/wit/scoring.wit"),
    ),
    (
        "wit/deps/wasi-nn/wasi-nn.wit",
        include_str!("../../../sdk/wit/deps/wasi-nn/wasi-nn.wit"),
    ),
];

/// Module names a script or a bundled module may not take: the SDK's, the generated bindings'
/// and the app module's.
const RESERVED: &[&str] = &[
    "kiln_scoring",
    "wit_world",
    "componentize_py_types",
    "componentize_py_runtime",
    "componentize_py_async_support",
    "poll_loop",
    APP_MODULE,
];

/// A Python scorer to build.
pub struct Script<'a> {
    /// The script.
    pub script: &'a Path,
    /// Pure-Python modules: `.py` files or package directories.
    pub modules: &'a [PathBuf],
    /// Whether the manifest grants `nn` (the component then imports `wasi:nn` and `graphs`).
    pub nn: bool,
    /// The manifest's schema, which serves as the metadata when the script has no `metadata()`.
    pub schema: Option<&'a Schema>,
    /// The model name the schema's metadata gives.
    pub name: &'a str,
}

/// A built Python scorer.
pub struct Built {
    /// The component's bytes.
    pub bytes: Vec<u8>,
    /// What it was built from (the image config records it).
    pub record: PythonBuild,
}

/// componentize-py: `$KILN_COMPONENTIZE_PY`, else `componentize-py` on `PATH`, else where
/// `sdk/install-componentize-py` puts it (`target/componentize-py` for `target/*/kiln`). It must
/// be [`COMPONENTIZE_PY_VERSION`].
pub fn componentize_py() -> Result<PathBuf, BuildError> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(path) = std::env::var_os("KILN_COMPONENTIZE_PY") {
        candidates.push(PathBuf::from(path));
    } else {
        candidates.extend(kiln_executor::sandbox::find_on_path("componentize-py"));
        if let Some(dir) = std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(PathBuf::from))
        {
            for up in ["..", "../.."] {
                candidates.push(dir.join(up).join("componentize-py/bin/componentize-py"));
            }
        }
    }
    let install = format!(
        "install it with sdk/install-componentize-py (or pip install componentize-py=={COMPONENTIZE_PY_VERSION}), \
         or point KILN_COMPONENTIZE_PY at it"
    );
    let mut found_other = None;
    for candidate in candidates.into_iter().filter(|c| c.is_file()) {
        let version = std::process::Command::new(&candidate)
            .arg("--version")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .output();
        let Ok(version) = version else { continue };
        let text = String::from_utf8_lossy(&version.stdout).trim().to_string();
        if text == format!("componentize-py {COMPONENTIZE_PY_VERSION}") {
            return Ok(std::fs::canonicalize(&candidate).unwrap_or(candidate));
        }
        found_other = Some(format!("{} is {text}", candidate.display()));
    }
    Err(BuildError::Component(match found_other {
        Some(other) => format!(
            "Python scorers build with componentize-py {COMPONENTIZE_PY_VERSION}, but {other}: {install}"
        ),
        None => format!(
            "Python scorers build with componentize-py {COMPONENTIZE_PY_VERSION}, which is not installed: {install}"
        ),
    }))
}

/// A directory removed on drop.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scratch() -> Result<Scratch, BuildError> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "kiln-python-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(io("cannot make a build directory"))?;
    Ok(Scratch(dir))
}

fn io(what: &'static str) -> impl Fn(std::io::Error) -> BuildError {
    move |e| BuildError::Component(format!("{what}: {e}"))
}

/// The module name of a `.py` file, if it is a valid one.
fn module_name(path: &Path) -> Result<String, BuildError> {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let valid = !stem.is_empty()
        && !stem.starts_with(|c: char| c.is_ascii_digit())
        && stem.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(BuildError::Invalid(format!(
            "'{}' is not a Python module name: use letters, digits and '_', not starting with a digit",
            path.display()
        )));
    }
    if RESERVED.contains(&stem.as_str()) {
        return Err(BuildError::Invalid(format!(
            "'{}' takes the name of a module Kiln's SDK uses ({stem}): rename it",
            path.display()
        )));
    }
    Ok(stem)
}

/// Copies a module file or package directory into `app`, adding each file to `digest`.
fn bundle(source: &Path, app: &Path, digest: &mut Sha256) -> Result<usize, BuildError> {
    let name = source.file_name().map(PathBuf::from).unwrap_or_default();
    if source.is_file() {
        module_name(source)?;
        let bytes = std::fs::read(source).map_err(io("cannot read a module"))?;
        digest.update(name.to_string_lossy().as_bytes());
        digest.update([0]);
        digest.update(&bytes);
        std::fs::write(app.join(&name), bytes).map_err(io("cannot write a module"))?;
        return Ok(1);
    }
    module_name(&name)?;
    let mut files = Vec::new();
    walk(source, &mut files).map_err(io("cannot read a module directory"))?;
    files.sort();
    for file in &files {
        let relative = file.strip_prefix(source).unwrap_or(file);
        let target = app.join(&name).join(relative);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(io("cannot write a module"))?;
        }
        let bytes = std::fs::read(file).map_err(io("cannot read a module"))?;
        digest.update(Path::new(&name).join(relative).to_string_lossy().as_bytes());
        digest.update([0]);
        digest.update(&bytes);
        std::fs::write(target, bytes).map_err(io("cannot write a module"))?;
    }
    Ok(files.len())
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            if entry.file_name() != "__pycache__" {
                walk(&entry.path(), out)?;
            }
        } else if kind.is_file() {
            out.push(entry.path());
        }
    }
    Ok(())
}

/// A JSON value as a Python expression (`json.loads` of a string literal).
fn python_json(value: &serde_json::Value) -> String {
    let text = serde_json::to_string(value).unwrap_or_else(|_| "null".into());
    // A JSON string is a valid Python string literal once non-ASCII is escaped the same way.
    let literal = serde_json::to_string(&text).unwrap_or_default();
    format!("__import__('json').loads({literal})")
}

/// Compiles a Python scorer. `sandbox` (the control plane's) confines componentize-py.
pub async fn build(script: &Script<'_>, sandbox: Option<&Sandbox>) -> Result<Built, BuildError> {
    let program = componentize_py()?;
    let scratch = scratch()?;
    let dir = &scratch.0;
    for (path, text) in EMBEDDED {
        let target = dir.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(io("cannot write the SDK"))?;
        }
        std::fs::write(target, text).map_err(io("cannot write the SDK"))?;
    }
    let app = dir.join("app");
    std::fs::create_dir_all(&app).map_err(io("cannot write the script"))?;
    let module = module_name(script.script)?;
    let source = std::fs::read(script.script).map_err(|e| {
        BuildError::Invalid(format!("cannot read {}: {e}", script.script.display()))
    })?;
    std::fs::write(app.join(format!("{module}.py")), &source)
        .map_err(io("cannot write the script"))?;
    let mut modules = Sha256::new();
    let mut bundled = 0;
    for path in script.modules {
        bundled += bundle(path, &app, &mut modules)?;
    }
    let schema = match script.schema {
        Some(schema) => serde_json::to_value(schema).unwrap_or_default(),
        None => serde_json::Value::Null,
    };
    let app_module = format!(
        "# Written by kiln image build: binds Kiln's scoring export to {module}.py.\n\
         import kiln_scoring._component as _component\n\n\
         _component.bind({module:?}, {schema}, {name})\n\
         Model = _component.Model\n",
        schema = python_json(&schema),
        name = python_json(&serde_json::Value::String(script.name.to_string())),
    );
    std::fs::write(app.join(format!("{APP_MODULE}.py")), app_module)
        .map_err(io("cannot write the app module"))?;

    let world = if script.nn { "scorer-nn" } else { "scorer" };
    // Everything componentize-py compiles, digested: the key of the build cache.
    let mut inputs = Vec::new();
    walk(dir, &mut inputs).map_err(io("cannot read the build directory"))?;
    inputs.sort();
    let mut digest = Sha256::new();
    digest.update(format!("componentize-py {COMPONENTIZE_PY_VERSION} {world}\n").as_bytes());
    for file in &inputs {
        let relative = file.strip_prefix(dir).unwrap_or(file);
        digest.update(relative.to_string_lossy().as_bytes());
        digest.update([0]);
        digest.update(std::fs::read(file).map_err(io("cannot read the build directory"))?);
        digest.update([0]);
    }
    let source_digest = hex::encode(digest.finalize());
    let script_name = script.script.display().to_string();
    let record = PythonBuild {
        script: script_name.clone(),
        script_digest: format!("sha256:{}", hex::encode(Sha256::digest(&source))),
        modules_digest: (bundled > 0)
            .then(|| format!("sha256:{}", hex::encode(modules.finalize()))),
        source_digest: format!("sha256:{source_digest}"),
        componentize_py: COMPONENTIZE_PY_VERSION.to_string(),
    };
    let cached = cache_dir().map(|d| d.join(format!("{source_digest}.wasm")));
    if let Some(bytes) = cached.as_ref().and_then(|path| std::fs::read(path).ok())
        && !bytes.is_empty()
    {
        tracing::debug!(script = %script_name, "Python scorer from the build cache");
        return Ok(Built { bytes, record });
    }
    let args: Vec<String> = [
        "-d",
        "wit",
        "-w",
        world,
        "componentize",
        "-p",
        "app",
        "-p",
        "sdk",
        APP_MODULE,
        "-o",
        "scorer.wasm",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut command = match sandbox {
        Some(sandbox) => {
            let python = program.parent().map(|bin| bin.join("python"));
            let python = match python.filter(|p| p.exists()) {
                Some(python) => sandbox
                    .python(&python.to_string_lossy())
                    .await
                    .map_err(|e| BuildError::Component(e.to_string()))?,
                None => {
                    return Err(BuildError::Component(format!(
                        "{} is not in a Python environment the sandbox can bind",
                        program.display()
                    )));
                }
            };
            let mut read_only = python.roots.clone();
            if !read_only.iter().any(|root| program.starts_with(root)) {
                read_only.push(program.parent().map(PathBuf::from).unwrap_or_default());
            }
            let jail = Jail {
                read_only,
                writable: vec![dir.clone()],
                dir: dir.clone(),
                network: false,
            };
            sandbox.command(&jail, &program.to_string_lossy(), &args)
        }
        None => {
            let mut command = tokio::process::Command::new(&program);
            command
                .args(&args)
                .current_dir(dir)
                .env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .env("HOME", dir);
            command
        }
    };
    command
        .kill_on_drop(true)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = command
        .spawn()
        .map_err(|e| BuildError::Component(format!("cannot run {}: {e}", program.display())))?;
    let output = tokio::time::timeout(BUILD_LIMIT, child.wait_with_output())
        .await
        .map_err(|_| {
            BuildError::Invalid(format!(
                "compiling the Python scorer took longer than {} s (does its top-level code loop?)",
                BUILD_LIMIT.as_secs()
            ))
        })?
        .map_err(|e| BuildError::Component(format!("componentize-py failed: {e}")))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(BuildError::Invalid(explain(&stderr, &script_name)));
    }
    let bytes =
        std::fs::read(dir.join("scorer.wasm")).map_err(io("componentize-py wrote no component"))?;
    if let Some(path) = &cached {
        // Written whole under a temporary name, then renamed: a reader never sees a part.
        let partial = path.with_extension(format!("{}.partial", std::process::id()));
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&partial, &bytes))
            .and_then(|()| std::fs::rename(&partial, path));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&partial);
            tracing::warn!(
                "cannot write the Python build cache {}: {e}",
                path.display()
            );
        }
    }
    Ok(Built { bytes, record })
}

/// The build cache of Python scorers: `$KILN_PYTHON_CACHE`, else `python/` beside the compile
/// cache (`~/.cache/kiln/python`). CPython's snapshot holds the hash seed and `random` state
/// drawn at build, so two componentize-py runs of the same sources differ in bytes; the cache
/// makes the same sources give the same component, by digest, on this machine.
fn cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("KILN_PYTHON_CACHE") {
        return Some(PathBuf::from(dir));
    }
    kiln_engine::default_cache_dir()
        .and_then(|compiled| compiled.parent().map(|kiln| kiln.join("python")))
}

/// What a failed componentize-py build says, for the user: the SDK's own message about the
/// script when there is one, else the end of componentize-py's.
fn explain(stderr: &str, script: &str) -> String {
    if let Some(at) = stderr.find(MARKER) {
        let message = stderr[at + MARKER.len()..]
            .lines()
            .next()
            .unwrap_or("")
            .trim();
        return format!("Python scorer {script}: {message}");
    }
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
        .take_while(|l| !l.starts_with("Stack backtrace"))
        .collect();
    let tail = lines[lines.len().saturating_sub(12)..].join("\n");
    format!("Python scorer {script}: componentize-py failed:\n{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_errors_say_what_the_sdk_found() {
        let stderr = "Traceback (most recent call last):\n  File \"x\", line 8\nAssertionError: \
             kiln-scoring-build-error: the script imports 'numpy' (score.py, line 1), a native extension\n\nCaused by:\n 0: boom";
        assert_eq!(
            explain(stderr, "score.py"),
            "Python scorer score.py: the script imports 'numpy' (score.py, line 1), a native extension"
        );
        let other = explain("error: something\nStack backtrace:\n 0: frames", "s.py");
        assert!(other.ends_with("error: something"), "{other}");
    }

    #[test]
    fn module_names_are_python_identifiers_not_the_sdks() {
        assert_eq!(
            module_name(Path::new("a/score.py")).expect("valid"),
            "score"
        );
        for bad in [
            "1score.py",
            "my-score.py",
            "kiln_scoring",
            "wit_world.py",
            ".py",
        ] {
            assert!(module_name(Path::new(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn json_becomes_a_python_expression() {
        let value = serde_json::json!({"name": "é\"x'\n", "n": [1, -1]});
        let text = python_json(&value);
        assert_eq!(
            text,
            r#"__import__('json').loads("{\"name\":\"é\\\"x'\\n\",\"n\":[1,-1]}")"#
        );
    }

    /// The control plane's path: componentize-py run in the sandbox, with no network. Skipped
    /// where bubblewrap cannot make a sandbox or componentize-py is not installed.
    #[test]
    fn a_script_builds_inside_the_sandbox() {
        let Ok(sandbox) = Sandbox::detect(vec![]) else {
            eprintln!("no sandbox here, skipping");
            return;
        };
        if componentize_py().is_err() {
            eprintln!("componentize-py is not installed, skipping");
            return;
        }
        let dir =
            std::env::temp_dir().join(format!("kiln-python-sandboxed-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        // A script of its own, so the build cache cannot answer for componentize-py.
        let text = format!(
            "# build {:?}\nimport kiln_scoring as kiln\n\ndef metadata():\n    return \
             kiln.Metadata('s', [kiln.spec('x', 'FP32', [-1])], [kiln.spec('y', 'FP32', [-1])])\n\n\
             def predict(inputs):\n    return {{'y': inputs['x'].data}}\n",
            std::time::SystemTime::now()
        );
        std::fs::write(dir.join("score.py"), text).expect("script");
        let script = Script {
            script: &dir.join("score.py"),
            modules: &[],
            nn: false,
            schema: None,
            name: "s",
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let built = runtime
            .block_on(build(&script, Some(&sandbox)))
            .map_err(|e| e.to_string())
            .expect("built in the sandbox");
        assert_eq!(&built.bytes[..4], b"\0asm");
        assert!(built.record.source_digest.starts_with("sha256:"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
