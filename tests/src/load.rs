//! A load generator for rollout tests: threads posting one request after another (keep-alive)
//! until stopped or a request budget is spent, recording each answer with the phase it was sent
//! in. Bounded in time and count, 127.0.0.1 only.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// One answer.
#[derive(Clone, Debug)]
pub struct Answer {
    /// The phase when it was sent.
    pub phase: usize,
    /// HTTP status (0 when the connection failed).
    pub status: u16,
    /// The `kiln-deployment` header.
    pub deployment: String,
    /// The body, kept for failures only.
    pub body: String,
}

/// A running load generator.
pub struct Load {
    stop: Arc<AtomicBool>,
    phase: Arc<AtomicUsize>,
    answers: Arc<Mutex<Vec<Answer>>>,
    threads: Vec<JoinHandle<()>>,
}

impl Load {
    /// Starts `threads` clients posting `body` to `url` with `headers`, at most `budget`
    /// requests in all.
    pub fn start(
        threads: usize,
        url: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
        budget: usize,
    ) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let phase = Arc::new(AtomicUsize::new(0));
        let answers = Arc::new(Mutex::new(Vec::new()));
        let sent = Arc::new(AtomicUsize::new(0));
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let threads = (0..threads)
            .map(|_| {
                let (stop, phase, answers, sent) =
                    (stop.clone(), phase.clone(), answers.clone(), sent.clone());
                let (url, headers, body) = (url.to_string(), headers.clone(), body.clone());
                std::thread::spawn(move || {
                    let agent = ureq::Agent::new_with_config(
                        ureq::config::Config::builder()
                            .http_status_as_error(false)
                            .timeout_global(Some(Duration::from_secs(30)))
                            .build(),
                    );
                    while !stop.load(Ordering::Relaxed)
                        && sent.fetch_add(1, Ordering::Relaxed) < budget
                    {
                        let now = phase.load(Ordering::Acquire);
                        let mut request = agent.post(&url);
                        for (k, v) in &headers {
                            request = request.header(k, v);
                        }
                        let answer = match request.send(&body[..]) {
                            Ok(mut response) => {
                                let status = response.status().as_u16();
                                let deployment = response
                                    .headers()
                                    .get("kiln-deployment")
                                    .and_then(|v| v.to_str().ok())
                                    .unwrap_or("")
                                    .to_string();
                                let text = response.body_mut().read_to_string().unwrap_or_default();
                                Answer {
                                    phase: now,
                                    status,
                                    deployment,
                                    body: if status == 200 { String::new() } else { text },
                                }
                            }
                            Err(e) => Answer {
                                phase: now,
                                status: 0,
                                deployment: String::new(),
                                body: e.to_string(),
                            },
                        };
                        answers.lock().unwrap().push(answer);
                    }
                })
            })
            .collect();
        Load {
            stop,
            phase,
            answers,
            threads,
        }
    }

    /// Requests sent from now on are counted in `phase`.
    pub fn set_phase(&self, phase: usize) {
        self.phase.store(phase, Ordering::Release);
    }

    /// Answers so far.
    pub fn count(&self) -> usize {
        self.answers.lock().unwrap().len()
    }

    /// Stops every client and returns every answer.
    pub fn stop(self) -> Vec<Answer> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().unwrap();
        }
        std::mem::take(&mut *self.answers.lock().unwrap())
    }
}

/// Whether `hits` of `n` answers fit the share `p` (`0..=1`): within four standard deviations of
/// a binomial draw, plus one answer of slack for the rotation's position.
pub fn fits_share(hits: usize, n: usize, p: f64) -> bool {
    if n == 0 {
        return false;
    }
    let expected = n as f64 * p;
    let sd = (n as f64 * p * (1.0 - p)).sqrt();
    (hits as f64 - expected).abs() <= 4.0 * sd + 1.0 + n as f64 * 0.01
}
