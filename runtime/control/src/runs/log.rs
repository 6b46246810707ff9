//! A run's log in the artifact store: segments of at most [`SEGMENT`] bytes under
//! `runs/<id>/logs/`, each named by the byte offset it starts at, written as output arrives (at
//! the latest [`FLUSH_AFTER`] after its first unwritten byte). Memory stays bounded whatever the
//! volume: a writer holds one segment, a reader one segment at a time, and a producer that
//! outruns the store waits (the channels are bounded).
//!
//! `runs.log_bytes` records how much is written, so a reader knows where a finished log ends and
//! a control plane that adopts a run continues the log where it stopped.

use crate::store::runner as store;
use crate::{ControlError, ControlPlane};
use bytes::{Bytes, BytesMut};
use futures_util::stream::BoxStream;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Largest segment.
pub const SEGMENT: usize = 1 << 20;

/// Segments are written at most this often (unless full): output after a quiet spell is
/// written at once, output that keeps coming is gathered for this long.
pub const FLUSH_AFTER: Duration = Duration::from_millis(200);

/// How often a follower looks for more when nothing told it (another process writes the log).
/// A follower whose client left stops at once, whatever the run does.
const POLL: Duration = Duration::from_secs(1);

fn area(run_id: &str) -> [&str; 3] {
    ["runs", run_id, "logs"]
}

fn segment_name(offset: u64) -> String {
    format!("{offset:020}.log")
}

/// Writes one run's log from `offset` on.
pub struct LogWriter {
    control: ControlPlane,
    run_id: String,
    offset: u64,
    buffer: BytesMut,
    last_flush: Option<Instant>,
}

impl LogWriter {
    /// A writer continuing the run's log at `offset` (0 for a new run).
    pub fn new(control: ControlPlane, run_id: String, offset: u64) -> LogWriter {
        LogWriter {
            control,
            run_id,
            offset,
            buffer: BytesMut::new(),
            last_flush: None,
        }
    }

    /// Bytes of the log so far, written or not.
    pub fn len(&self) -> u64 {
        self.offset + self.buffer.len() as u64
    }

    /// Whether nothing was logged.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes everything `source` sends until it closes, writing as it goes; then writes what
    /// is left, so the log holds all of it.
    pub async fn drain(&mut self, source: &mut mpsc::Receiver<Bytes>) {
        loop {
            let due = (!self.buffer.is_empty()).then(|| {
                self.last_flush
                    .map_or_else(Instant::now, |t| t + FLUSH_AFTER)
            });
            if due.is_some_and(|due| due <= Instant::now()) {
                self.flush().await;
                continue;
            }
            let next = match due {
                Some(due) => tokio::select! {
                    next = source.recv() => next,
                    _ = tokio::time::sleep_until(due) => {
                        self.flush().await;
                        continue;
                    }
                },
                None => source.recv().await,
            };
            match next {
                Some(bytes) => self.append(&bytes).await,
                None => break,
            }
        }
        self.flush().await;
    }

    /// Appends a line of Kiln's own (a reason, a notice) and writes it at once.
    pub async fn note(&mut self, line: &str) {
        self.append(format!("kiln: {line}\n").as_bytes()).await;
        self.flush().await;
    }

    async fn append(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let room = SEGMENT - self.buffer.len();
            let take = room.min(bytes.len());
            self.buffer.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.buffer.len() >= SEGMENT {
                self.flush().await;
            }
        }
    }

    /// Writes the buffered output as one segment. A store that keeps failing loses that segment
    /// (said in the control plane's log) rather than the run.
    pub async fn flush(&mut self) {
        if self.buffer.is_empty() {
            return;
        }
        let segment = self.buffer.split().freeze();
        self.last_flush = Some(Instant::now());
        let name = segment_name(self.offset);
        let mut attempt = 0;
        loop {
            match self
                .control
                .artifacts()
                .put(&area(&self.run_id), &name, segment.clone())
                .await
            {
                Ok(()) => break,
                Err(e) if attempt < 5 => {
                    attempt += 1;
                    tracing::warn!(run = %self.run_id, "writing the log failed (attempt {attempt}): {e}");
                    tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
                }
                Err(e) => {
                    tracing::error!(run = %self.run_id, bytes = segment.len(), "a log segment was lost: {e}");
                    return;
                }
            }
        }
        self.offset += segment.len() as u64;
        let recorded =
            store::set_log_bytes(self.control.db(), &self.run_id, self.offset as i64).await;
        if let Err(e) = recorded {
            tracing::warn!(run = %self.run_id, "recording the log's length failed: {e}");
        }
        self.control.log_written(&self.run_id);
    }
}

/// The log's written bytes from `offset`: in one piece per segment; with `follow`, waiting for
/// more until the run has ended and all of its log was given.
pub fn read(
    control: ControlPlane,
    run_id: String,
    mut offset: u64,
    follow: Option<crate::FollowPermit>,
) -> BoxStream<'static, Result<Bytes, ControlError>> {
    Box::pin(async_stream(move |yielder| async move {
        // Held until the follower ends: its place among the user's followers.
        let permit = follow;
        let watch = permit.as_ref().map(|_| control.log_watch(&run_id));
        loop {
            let segments = control.artifacts().list(&area(&run_id)).await?;
            let mut gave = false;
            for (name, size) in segments {
                let Some(start) = name
                    .strip_suffix(".log")
                    .and_then(|n| n.parse::<u64>().ok())
                else {
                    continue;
                };
                if start + size <= offset || start > offset {
                    continue;
                }
                let skip = offset - start;
                let bytes = control
                    .artifacts()
                    .get_range(&area(&run_id), &name, skip, size - skip)
                    .await?;
                offset = start + size;
                gave = true;
                if yielder.send(Ok(bytes)).await.is_err() {
                    return Ok(());
                }
            }
            if gave {
                continue;
            }
            let Some(watch) = &watch else {
                return Ok(());
            };
            let woken = watch.notified();
            let (status, written) = store::progress(control.db(), &run_id).await?;
            if super::is_final(&status) && offset >= written as u64 {
                return Ok(());
            }
            tokio::select! {
                _ = tokio::time::timeout(POLL, woken) => {}
                // The client left: nobody reads what would come.
                () = yielder.closed() => return Ok(()),
            }
        }
    }))
}

/// A stream made by a task that sends its items through a bounded channel: the body of the
/// stream reads as plain async code.
fn async_stream<F, Fut>(body: F) -> BoxStream<'static, Result<Bytes, ControlError>>
where
    F: FnOnce(mpsc::Sender<Result<Bytes, ControlError>>) -> Fut,
    Fut: Future<Output = Result<(), ControlError>> + Send + 'static,
{
    let (sender, receiver) = mpsc::channel(1);
    let errors = sender.clone();
    let task = body(sender);
    tokio::spawn(async move {
        if let Err(e) = task.await {
            let _ = errors.send(Err(e)).await;
        }
    });
    Box::pin(futures_util::stream::unfold(
        receiver,
        |mut receiver| async move { receiver.recv().await.map(|item| (item, receiver)) },
    ))
}
