//! The CLI of the management API not yet over typed calls: `kiln team|workgroup|project|model|
//! deployment|target|env`, and `kiln image register`. Each command is one or two REST calls;
//! `--output json` prints the server's JSON as it is. (`commands/` has the typed ones.)

use crate::args::Output;
use crate::context::Session;
pub(crate) use crate::context::{Connection, runtime};
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};
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
    pub(crate) async fn put(&self, path: &str, body: Value) -> Result<Value> {
        self.call(reqwest::Method::PUT, path, Some(body)).await
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

/// `kiln deployment ...`.
#[derive(Subcommand)]
pub enum DeploymentCommand {
    /// Deploy an image of the work group; prints its keys once.
    Create {
        name: String,
        /// The image (as registered with `kiln image register`).
        #[arg(long)]
        image: String,
        /// Serve without keys.
        #[arg(long)]
        public: bool,
        #[arg(long)]
        memory_mb: Option<usize>,
        #[arg(long)]
        deadline_ms: Option<u64>,
        #[arg(long)]
        concurrency: Option<usize>,
        /// Instances kept warm (0: released when idle).
        #[arg(long)]
        min_instances: Option<usize>,
        #[arg(long)]
        max_instances: Option<usize>,
        /// Seconds idle before instances above the minimum go.
        #[arg(long)]
        idle_timeout_s: Option<u64>,
        /// Join this endpoint: at 100% when it routes nothing yet, else at 0%.
        #[arg(long)]
        endpoint: Option<String>,
    },
    /// Change a deployment's image, limits or scale: the new version loads and passes its
    /// sample check while the old one serves, then takes over.
    Update {
        name: String,
        /// The new image (as registered with `kiln image register`).
        #[arg(long)]
        image: Option<String>,
        #[arg(long)]
        memory_mb: Option<usize>,
        #[arg(long)]
        deadline_ms: Option<u64>,
        #[arg(long)]
        concurrency: Option<usize>,
        #[arg(long)]
        min_instances: Option<usize>,
        #[arg(long)]
        max_instances: Option<usize>,
        #[arg(long)]
        idle_timeout_s: Option<u64>,
    },
    /// List deployments.
    List,
    /// Show a deployment and its status.
    Show { name: String },
    /// Delete a deployment.
    Delete { name: String },
    /// Regenerate the primary or secondary key (printed once).
    RegenerateKey {
        name: String,
        #[arg(long, default_value = "primary")]
        key: String,
    },
    /// Choose the drift monitor, its window and the retraining policy; the model keeps serving.
    Monitor {
        name: String,
        /// The monitor component: `default` or an image (local store or registry); unset, the
        /// image's `[monitoring]` choice, else Kiln's default.
        #[arg(long)]
        component: Option<String>,
        /// The config string passed to the monitor (the default one takes thresholds such as
        /// `psi_alert=0.25,p_value=0.05,min_count=50`); unset, the image's.
        #[arg(long)]
        config: Option<String>,
        /// Window length in seconds.
        #[arg(long)]
        window: Option<u64>,
        /// Retrain with this experiment (`PROJECT/EXPERIMENT`) when an alert holds.
        #[arg(long, value_name = "PROJECT/EXPERIMENT")]
        retrain: Option<String>,
        /// Windows in a row with an alert before retraining.
        #[arg(long, default_value_t = 3, requires = "retrain")]
        retrain_windows: u32,
        /// Seconds after a retraining run during which no other is submitted.
        #[arg(long, default_value_t = 3600, requires = "retrain")]
        cooldown: u64,
        /// The target of retraining runs (default: the experiment's).
        #[arg(long, requires = "retrain")]
        retrain_target: Option<String>,
    },
    /// The drift report of a window: per feature, statistics, verdict and data quality.
    Drift {
        name: String,
        /// `latest`, `cumulative`, or how many windows back (0 = latest).
        #[arg(long, default_value = "latest")]
        window: String,
    },
    /// Events: drift state changes and retraining runs.
    Events { name: String },
}

/// One line per monitored feature of a drift report.
fn drift_lines(report: &Value) -> String {
    let mut out = format!(
        "  drift: {} ({} to {})",
        s(report, "state"),
        s(report, "start"),
        s(report, "end")
    );
    if let Some(reason) = report["reason"].as_str() {
        out.push_str(&format!("\n    {reason}"));
    }
    if let Some(error) = report["error"].as_str() {
        out.push_str(&format!("\n    monitor: {error}"));
    }
    for f in report["features"].as_array().into_iter().flatten() {
        let stats = &f["statistics"];
        let test = if stats["ks_pvalue"].is_number() {
            format!(
                "ks_p={:.3}",
                stats["ks_pvalue"].as_f64().unwrap_or(f64::NAN)
            )
        } else {
            format!(
                "chi2_p={:.3}",
                stats["chi2_pvalue"].as_f64().unwrap_or(f64::NAN)
            )
        };
        out.push_str(&format!(
            "\n    {:<6} {:<20} {:<17} psi={:<8.4} {test} values={} missing={} nan={} out_of_range={}",
            s(f, "role"),
            s(f, "name"),
            s(f, "severity"),
            stats["psi"].as_f64().unwrap_or(f64::NAN),
            f["values"],
            f["quality"]["missing"],
            f["quality"]["nan"],
            f["quality"]["out_of_range"],
        ));
    }
    out
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

/// Runs `kiln deployment ...`.
pub fn deployment(command: DeploymentCommand, connection: &Connection) -> Result<()> {
    let api = Api::new(connection)?;
    runtime()?.block_on(async {
        let base = format!("{}/deployments", api.workgroup_path()?);
        match command {
            DeploymentCommand::Create {
                name,
                image,
                public,
                memory_mb,
                deadline_ms,
                concurrency,
                min_instances,
                max_instances,
                idle_timeout_s,
                endpoint,
            } => {
                let scale = fields(&[("min_instances", min_instances.map(|v| json!(v))), ("max_instances", max_instances.map(|v| json!(v))), ("idle_timeout_s", idle_timeout_s.map(|v| json!(v)))]);
                let limits = fields(&[("memory_mb", memory_mb.map(|v| json!(v))), ("deadline_ms", deadline_ms.map(|v| json!(v))), ("concurrency", concurrency.map(|v| json!(v)))]);
                let v = api
                    .post(
                        &base,
                        json!({ "name": name, "image": image, "public": public, "limits": limits, "scale": scale, "endpoint": endpoint }),
                    )
                    .await?;
                api.show(&v, |v| {
                    format!(
                        "created deployment {} ({})\n  infer: {}\n  primary key (shown once): {}\n  secondary key (shown once): {}",
                        s(v, "name"),
                        s(v, "status"),
                        s(&v["urls"], "infer"),
                        s(&v["keys"], "primary"),
                        s(&v["keys"], "secondary")
                    )
                });
            }
            DeploymentCommand::Update { name, image, memory_mb, deadline_ms, concurrency, min_instances, max_instances, idle_timeout_s } => {
                let mut body = json!({ "image": image });
                let scale = fields(&[("min_instances", min_instances.map(|v| json!(v))), ("max_instances", max_instances.map(|v| json!(v))), ("idle_timeout_s", idle_timeout_s.map(|v| json!(v)))]);
                let limits = fields(&[("memory_mb", memory_mb.map(|v| json!(v))), ("deadline_ms", deadline_ms.map(|v| json!(v))), ("concurrency", concurrency.map(|v| json!(v)))]);
                if !scale.is_empty() {
                    body["scale"] = Value::Object(scale);
                }
                if !limits.is_empty() {
                    body["limits"] = Value::Object(limits);
                }
                let v = api.patch(&format!("{base}/{name}"), body).await?;
                api.show(&v, |v| format!("deployment {}: {} (generation {}), image {}", s(v, "name"), s(v, "status"), v["generation"], s(v, "image")));
            }
            DeploymentCommand::List => {
                let v = api.get(&base).await?;
                api.show_list(&v, |i| format!("{}  {}  {}", s(i, "name"), s(i, "status"), s(i, "image")));
            }
            DeploymentCommand::Show { name } => {
                let mut v = api.get(&format!("{base}/{name}")).await?;
                v["drift"] = api.get(&format!("{base}/{name}/drift")).await?;
                api.show(&v, |v| format!("{}: {} {}\n  image {} {}\n  infer: {}\n{}", s(v, "name"), s(v, "status"), s(v, "reason"), s(v, "image"), s(v, "digest"), s(&v["urls"], "infer"), drift_lines(&v["drift"])));
            }
            DeploymentCommand::Monitor { name, component, config, window, retrain, retrain_windows, cooldown, retrain_target } => {
                let retrain = match retrain {
                    None => Value::Null,
                    Some(text) => {
                        let (project, experiment) = text
                            .split_once('/')
                            .context("--retrain takes PROJECT/EXPERIMENT")?;
                        let mut policy = json!({ "project": project, "experiment": experiment, "windows": retrain_windows, "cooldown_s": cooldown });
                        if let Some(target) = retrain_target {
                            policy["target"] = json!(target);
                        }
                        policy
                    }
                };
                let mut body = json!({ "retrain": retrain });
                if let Some(c) = component {
                    body["component"] = json!(c);
                }
                if let Some(c) = config {
                    body["config"] = json!(c);
                }
                if let Some(w) = window {
                    body["window_s"] = json!(w);
                }
                let v = api.put(&format!("{base}/{name}/monitoring"), body).await?;
                api.show(&v, |v| format!("deployment {}: monitor {}{}", s(v, "name"), v["monitoring"]["component"].as_str().unwrap_or("(the image's, or Kiln's default)"), if v["retrain"].is_null() { String::new() } else { format!(", retraining {}/{} after {} alert windows", s(&v["retrain"], "project"), s(&v["retrain"], "experiment"), v["retrain"]["windows"]) }));
            }
            DeploymentCommand::Drift { name, window } => {
                let v = api.get(&format!("{base}/{name}/drift?window={window}")).await?;
                api.show(&v, drift_lines);
            }
            DeploymentCommand::Events { name } => {
                let v = api.get(&format!("{base}/{name}/events")).await?;
                api.show_list(&v, |i| format!("{}  {:<10} {}{}", s(i, "time"), s(i, "kind"), s(i, "message"), i["run"].as_str().map(|r| format!(" (run {r})")).unwrap_or_default()));
            }
            DeploymentCommand::Delete { name } => {
                let v = api.delete(&format!("{base}/{name}")).await?;
                api.show(&v, |_| format!("deleted deployment {name}"));
            }
            DeploymentCommand::RegenerateKey { name, key } => {
                let v = api.post(&format!("{base}/{name}/keys"), json!({ "key": key })).await?;
                api.show(&v, |v| format!("new {} key of {} (shown once): {}", s(v, "key"), s(v, "name"), s(v, "value")));
            }
        }
        Ok(())
    })
}
