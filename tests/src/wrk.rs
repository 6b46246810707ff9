//! Runs `wrk` (Debian package `wrk`) for the benchmarks: POSTs one JSON body at a connection
//! count for some seconds and reads requests/s, p50, p99 and the failed answers.

use anyhow::{Context, Result};
use std::process::Command;

/// What one wrk run measured.
#[derive(Clone, Debug)]
pub struct Load {
    /// Requests per second.
    pub rps: f64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
    /// Answers that were not 2xx or 3xx.
    pub failed: u64,
    /// Requests answered.
    pub requests: u64,
}

fn parse_latency(text: &str) -> Option<f64> {
    let text = text.trim();
    let (number, scale) = if let Some(v) = text.strip_suffix("us") {
        (v, 1e-3)
    } else if let Some(v) = text.strip_suffix("ms") {
        (v, 1.0)
    } else if let Some(v) = text.strip_suffix('s') {
        (v, 1e3)
    } else {
        return None;
    };
    number.parse::<f64>().ok().map(|n| n * scale)
}

/// POSTs `body` (JSON) to `url` with two threads, `connections` connections, for `seconds`,
/// with extra `headers`.
pub fn post(
    url: &str,
    body: &str,
    headers: &[(&str, &str)],
    connections: u32,
    seconds: u32,
) -> Result<Load> {
    let dir = crate::temp_dir("wrk");
    let script = dir.join("post.lua");
    let mut lua = format!(
        "wrk.method = \"POST\"\nwrk.body = '{body}'\nwrk.headers[\"Content-Type\"] = \"application/json\"\n"
    );
    for (k, v) in headers {
        lua.push_str(&format!("wrk.headers[\"{k}\"] = \"{v}\"\n"));
    }
    std::fs::write(&script, lua)?;
    let output = Command::new("wrk")
        .args([
            "-t2",
            &format!("-c{connections}"),
            &format!("-d{seconds}s"),
            "--latency",
            "-s",
        ])
        .arg(&script)
        .arg(url)
        .output()
        .context("wrk is required (Debian package wrk)")?;
    let _ = std::fs::remove_dir_all(&dir);
    let text = String::from_utf8_lossy(&output.stdout);
    let field = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix).map(|v| v.trim().to_string()))
    };
    let rps = field("Requests/sec:")
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("no Requests/sec in wrk output:\n{text}"))?;
    let p50_ms = field("50%")
        .and_then(|v| parse_latency(&v))
        .context("no p50 in wrk output")?;
    let p99_ms = field("99%")
        .and_then(|v| parse_latency(&v))
        .context("no p99 in wrk output")?;
    let failed = field("Non-2xx or 3xx responses:")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let requests = text
        .lines()
        .find_map(|l| l.trim().split(" requests in ").next()?.trim().parse().ok())
        .unwrap_or(0);
    Ok(Load {
        rps,
        p50_ms,
        p99_ms,
        failed,
        requests,
    })
}
