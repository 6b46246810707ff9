//! Times `Graph::run` in a tight loop on one thread: what Kiln's backend adds around ONNX Runtime
//! or tract, without a server, a guest or a network in between (tests/bench_onnx.py prints it
//! beside onnxruntime's own `run` from Python).
//!
//! Usage: graph_time MODEL.onnx INPUT.f32 ROWS COLUMNS CALLS [onnxruntime|tract]
//! where INPUT.f32 holds ROWS x COLUMNS little-endian f32 values for the graph's first input.
//! Prints the microseconds per call. With `GAP_US=N` it sleeps N µs before each call (and times
//! the calls alone), to see what a call costs when it comes once per request instead.

use kiln_nn::{BackendChoice, Backends, NnConfig, NnData, NnTensor};
use std::time::{Duration, Instant};

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model, input, rows, columns, calls, rest @ ..] = args.as_slice() else {
        return Err("usage: graph_time MODEL.onnx INPUT.f32 ROWS COLUMNS CALLS [backend]".into());
    };
    let number = |s: &str| s.parse::<usize>().map_err(|e| format!("{s}: {e}"));
    let (rows, columns, calls) = (number(rows)?, number(columns)?, number(calls)?);
    let mut config = NnConfig::from_env();
    if let Some(backend) = rest.first() {
        config.backend = match backend.as_str() {
            "tract" => BackendChoice::Tract,
            "onnxruntime" => BackendChoice::OnnxRuntime,
            other => return Err(format!("unknown backend {other}")),
        };
    }
    let bytes = std::fs::read(model).map_err(|e| format!("{model}: {e}"))?;
    let graph = Backends::new(config)
        .load(&bytes)
        .map_err(|e| e.to_string())?;
    let raw = std::fs::read(input).map_err(|e| format!("{input}: {e}"))?;
    let values: Vec<f32> = raw
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    if values.len() != rows * columns {
        return Err(format!(
            "{input} holds {} values, not {rows} x {columns}",
            values.len()
        ));
    }
    let name = graph.inputs()[0].name.clone();
    let tensor = || NnTensor {
        name: name.clone(),
        shape: vec![rows as i64, columns as i64],
        data: NnData::F32(values.clone()),
    };
    let deadline = || Instant::now() + Duration::from_secs(10);
    let gap = std::env::var("GAP_US")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map(Duration::from_micros);
    // Time in the calls alone, a sleep of `gap` before each.
    let timed = |calls: usize| -> Result<Duration, String> {
        let mut total = Duration::ZERO;
        for _ in 0..calls {
            if let Some(gap) = gap {
                std::thread::sleep(gap);
            }
            let started = Instant::now();
            graph
                .run(vec![tensor()], deadline())
                .map_err(|e| e.to_string())?;
            total += started.elapsed();
        }
        Ok(total)
    };
    timed(calls.div_ceil(10))?;
    println!("{:.2}", timed(calls)?.as_secs_f64() / calls as f64 * 1e6);
    Ok(())
}
