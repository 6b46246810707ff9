//! The CLI of the management API not yet over typed calls: `kiln team|workgroup|project|model|
//! deployment|target|env`, and `kiln image register`. Each command is one or two REST calls;
//! `--output json` prints the server's JSON as it is. (`commands/` has the typed ones.)

use crate::args::Output;
use crate::context::Session;
pub(crate) use crate::context::{Connection, runtime};
use anyhow::{Context, Result, bail};
use clap::Args;
use serde_json::Value;
use std::path::Path;

/// Untyped calls of the management API, for the commands not yet over `kiln-client`'s typed
/// methods (`commands/` has the typed ones).
pub(crate) struct Api {
    session: Session,
}

impl Api {
    pub(crate) fn new(connection: &Connection) -> Result<Api> {
        Ok(Api {
            session: Session::new(connection)?,
        })
    }

    pub(crate) fn workgroup_path(&self) -> Result<String> {
        self.session.workgroup_path()
    }

    pub(crate) async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        let mut request = self.session.client.request(method.clone(), path);
        if let Some(body) = body {
            request = request.json(&body);
        }
        self.finish(request, &method, path).await
    }

    /// Sends a request; the answer as JSON, or as a string when it is not JSON.
    pub(crate) async fn finish(
        &self,
        request: reqwest::RequestBuilder,
        method: &reqwest::Method,
        path: &str,
    ) -> Result<Value> {
        let response = self.session.client.send(request, method, path).await?;
        let text = response.text().await.unwrap_or_default();
        Ok(serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    pub(crate) async fn get(&self, path: &str) -> Result<Value> {
        self.call(reqwest::Method::GET, path, None).await
    }
    pub(crate) async fn post(&self, path: &str, body: Value) -> Result<Value> {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }
    pub(crate) async fn patch(&self, path: &str, body: Value) -> Result<Value> {
        self.call(reqwest::Method::PATCH, path, Some(body)).await
    }
    pub(crate) async fn delete(&self, path: &str) -> Result<Value> {
        self.call(reqwest::Method::DELETE, path, None).await
    }

    /// Prints a result: JSON as received, or the text a person wants.
    pub(crate) fn show(&self, value: &Value, text: impl FnOnce(&Value) -> String) {
        match self.session.output {
            Output::Json => println!("{value}"),
            Output::Text => println!("{}", text(value)),
        }
    }

    /// Prints a list: JSON as received, else one line per item.
    pub(crate) fn show_list(&self, value: &Value, line: impl Fn(&Value) -> String) {
        match self.session.output {
            Output::Json => println!("{value}"),
            Output::Text => {
                for item in value["items"].as_array().into_iter().flatten() {
                    println!("{}", line(item));
                }
            }
        }
    }
}

/// A JSON object of the fields that are set.
pub(crate) fn fields(pairs: &[(&str, Option<Value>)]) -> serde_json::Map<String, Value> {
    pairs
        .iter()
        .filter_map(|(k, v)| Some((k.to_string(), v.clone()?)))
        .collect()
}

pub(crate) fn s(value: &Value, key: &str) -> String {
    match &value[key] {
        Value::String(text) => text.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// The project for `kiln experiment` and `kiln run`.
#[derive(Args, Clone)]
pub struct ProjectArg {
    /// The project.
    #[arg(long, env = "KILN_PROJECT", global = true)]
    project: Option<String>,
}

impl ProjectArg {
    pub(crate) fn name(&self) -> Result<&str> {
        self.project
            .as_deref()
            .context("no project: give --project or set KILN_PROJECT")
    }
}

/// A tar of a working tree: every file `.gitignore` (and `.git/info/exclude`, `.ignore`) does not
/// ignore, `.git` left out, symlinks refused. Returns the archive and its file count.
pub(crate) fn tar_of_tree(dir: &Path) -> Result<(Vec<u8>, usize)> {
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    let walker = ignore::WalkBuilder::new(dir)
        .hidden(false)
        .require_git(false)
        .sort_by_file_name(|a, b| a.cmp(b))
        .filter_entry(|e| e.file_name() != ".git")
        .build();
    let mut count = 0;
    for entry in walker {
        let entry = entry.with_context(|| format!("cannot walk {}", dir.display()))?;
        let kind = entry.file_type().context("unknown file type")?;
        if kind.is_dir() {
            continue;
        }
        if !kind.is_file() {
            bail!(
                "{} is not a regular file: the project holds files only",
                entry.path().display()
            );
        }
        let relative = entry.path().strip_prefix(dir)?;
        builder.append_path_with_name(entry.path(), relative)?;
        count += 1;
    }
    if count == 0 {
        bail!("nothing to push in {}", dir.display());
    }
    Ok((builder.into_inner()?, count))
}
