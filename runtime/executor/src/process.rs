//! A supervised process, for the executors that run a command on the control plane's host
//! (`local`, and `spark`, whose `spark-submit` holds the driver).
//!
//! The command runs in its own process group under a small `sh` wrapper that appends its
//! standard output and error to a file and, when it ends, writes its exit status to another
//! (atomically, by rename). Nothing ties it to the control plane's process: a restarted control
//! plane finds it again from its [`ProcessHandle`] (the process id plus its start time, so that a
//! reused id is never mistaken for it), follows the output file from where its log stopped, and
//! reads the exit status once it is written.

use crate::{ExecError, Job, Output, Status};
use bytes::Bytes;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// Appends the command's output to `$1`, then writes its exit status to `$2` by rename.
const WRAPPER: &str = r#"out=$1; status=$2; shift 2
"$@" >>"$out" 2>&1 </dev/null
code=$?
echo "$code" >"$status.tmp" && mv "$status.tmp" "$status""#;

/// Variables of the control plane's environment that a run inherits; nothing else (the control
/// plane's own credentials stay with it).
const INHERITED: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LC_ALL",
    "TZ",
    "TMPDIR",
    "JAVA_HOME",
    // How this host reaches package indexes: proxies and the certificates to trust.
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "PIP_CERT",
    "PIP_INDEX_URL",
    "PIP_EXTRA_INDEX_URL",
    "PIP_DEFAULT_TIMEOUT",
];

/// The variables of the control plane's environment a run or its preparation inherits.
pub fn inherited_env() -> Vec<(String, std::ffi::OsString)> {
    INHERITED
        .iter()
        .filter_map(|name| std::env::var_os(name).map(|value| (name.to_string(), value)))
        .collect()
}

/// Output is read and handed on in pieces of at most this many bytes.
const CHUNK: usize = 64 << 10;

/// How often a follower looks for new output.
const POLL: Duration = Duration::from_millis(50);

/// What to run.
#[derive(Clone, Debug)]
pub struct Spec {
    /// The program (a path or a name on `PATH`).
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Its working directory.
    pub dir: PathBuf,
    /// Variables added to the inherited ones.
    pub env: Vec<(String, String)>,
    /// The file its output is appended to.
    pub output: PathBuf,
    /// The file its exit status is written to.
    pub exit: PathBuf,
}

/// How to find a supervised process again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessHandle {
    /// Process id (and process group id).
    pub pid: i32,
    /// Its start time in clock ticks since boot (`/proc/PID/stat`), to tell it from a later
    /// process that got the same id.
    pub start: u64,
    /// Its output file.
    pub output: PathBuf,
    /// Its exit status file.
    pub exit: PathBuf,
}

impl ProcessHandle {
    /// The handle as the text an executor returns.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A handle from [`ProcessHandle::encode`]'s text.
    pub fn decode(text: &str) -> Result<ProcessHandle, ExecError> {
        serde_json::from_str(text)
            .map_err(|e| ExecError::Failed(format!("not a process handle ({e}): {text}")))
    }
}

/// Starts `spec` in a new process group.
pub async fn spawn(spec: &Spec) -> Result<ProcessHandle, ExecError> {
    for file in [&spec.output, &spec.exit] {
        if let Some(parent) = file.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(|e| {
                ExecError::Failed(format!("cannot create {}: {e}", parent.display()))
            })?;
        }
    }
    let mut command = tokio::process::Command::new("sh");
    command
        .arg("-c")
        .arg(WRAPPER)
        .arg("kiln-run")
        .arg(&spec.output)
        .arg(&spec.exit)
        .arg(&spec.program)
        .args(&spec.args)
        .current_dir(&spec.dir)
        .env_clear()
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0);
    for name in INHERITED {
        if let Some(value) = std::env::var_os(name) {
            command.env(name, value);
        }
    }
    command.envs(spec.env.iter().map(|(k, v)| (k, v)));
    let mut child = command
        .spawn()
        .map_err(|e| ExecError::Failed(format!("cannot start sh: {e}")))?;
    let pid = child
        .id()
        .ok_or_else(|| ExecError::Failed("the process ended before it started".into()))?;
    let pid = i32::try_from(pid).map_err(|_| ExecError::Failed(format!("process id {pid}")))?;
    // Reap it when it ends (a process found again after a restart is reaped by init).
    tokio::spawn(async move {
        let _ = child.wait().await;
    });
    let start = proc_stat(pid)
        .map(|(_, start)| start)
        .ok_or_else(|| ExecError::Failed(format!("process {pid} vanished at start")))?;
    Ok(ProcessHandle {
        pid,
        start,
        output: spec.output.clone(),
        exit: spec.exit.clone(),
    })
}

/// Runs a preparation command to its end, its output (standard output and error as they come)
/// sent to `log`; returns its exit code.
pub async fn run_logged(
    mut command: tokio::process::Command,
    log: &crate::PrepareLog,
) -> Result<i32, ExecError> {
    let what = format!("{:?}", command.as_std().get_program());
    let mut child = command
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| ExecError::Invalid(format!("cannot run {what}: {e}")))?;
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let mut out_buffer = vec![0u8; CHUNK];
    let mut err_buffer = vec![0u8; CHUNK];
    while stdout.is_some() || stderr.is_some() {
        tokio::select! {
            read = async { stdout.as_mut().expect("open").read(&mut out_buffer).await }, if stdout.is_some() => {
                match read {
                    Ok(n) if n > 0 => { let _ = log.send(Bytes::copy_from_slice(&out_buffer[..n])).await; }
                    _ => stdout = None,
                }
            }
            read = async { stderr.as_mut().expect("open").read(&mut err_buffer).await }, if stderr.is_some() => {
                match read {
                    Ok(n) if n > 0 => { let _ = log.send(Bytes::copy_from_slice(&err_buffer[..n])).await; }
                    _ => stderr = None,
                }
            }
        }
    }
    let status = child
        .wait()
        .await
        .map_err(|e| ExecError::Failed(format!("{what}: {e}")))?;
    Ok(status.code().unwrap_or(-1))
}

/// Starts a run's command as a supervised process: in the run's code, its output and exit status
/// in the run's work directory, with the run's variables plus unbuffered Python output and Kiln's
/// helpers on `PYTHONPATH` (`extra_env` adds to them). Returns the handle as text.
pub async fn start_job(
    job: &Job,
    program: String,
    args: Vec<String>,
    extra_env: Vec<(String, String)>,
) -> Result<String, ExecError> {
    let mut env = job.env.clone();
    env.extend(extra_env);
    env.push(("PYTHONUNBUFFERED".into(), "1".into()));
    env.push((
        "PYTHONPATH".into(),
        job.helpers.to_string_lossy().into_owned(),
    ));
    let handle = spawn(&Spec {
        program,
        args,
        dir: job.code.clone(),
        env,
        output: job.work.join("output.log"),
        exit: job.work.join("exit-status"),
    })
    .await?;
    Ok(handle.encode())
}

/// [`follow`] for a handle given as text (a bad handle is the stream's one error).
pub fn follow_handle(handle: &str, offset: u64) -> Output {
    match ProcessHandle::decode(handle) {
        Ok(handle) => follow(handle, offset),
        Err(e) => Box::pin(futures_util::stream::once(async move { Err(e) })),
    }
}

/// [`status`] for a handle given as text.
pub fn status_of(handle: &str) -> Result<Status, ExecError> {
    Ok(status(&ProcessHandle::decode(handle)?))
}

/// [`cancel`] for a handle given as text.
pub async fn cancel_handle(handle: &str, grace: Duration) -> Result<(), ExecError> {
    cancel(&ProcessHandle::decode(handle)?, grace).await;
    Ok(())
}

/// `(state, start time)` of a process from `/proc/PID/stat`.
fn proc_stat(pid: i32) -> Option<(char, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: split after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    // Field 22 of the whole line; the rest starts at field 3.
    let start = fields.get(19)?.parse().ok()?;
    Some((state, start))
}

/// Whether the handle's process still runs (not a zombie, not a later process with its id).
pub fn alive(handle: &ProcessHandle) -> bool {
    match proc_stat(handle.pid) {
        Some((state, start)) => start == handle.start && state != 'Z' && state != 'X',
        None => false,
    }
}

fn exit_code(handle: &ProcessHandle) -> Option<i64> {
    std::fs::read_to_string(&handle.exit)
        .ok()
        .and_then(|text| text.trim().parse().ok())
}

/// Where the process is.
pub fn status(handle: &ProcessHandle) -> Status {
    if let Some(code) = exit_code(handle) {
        return Status::Exited(code);
    }
    if alive(handle) {
        return Status::Running;
    }
    // It may have ended between the two looks.
    match exit_code(handle) {
        Some(code) => Status::Exited(code),
        None => Status::Gone("the process ended without an exit status (it was killed)".into()),
    }
}

/// Stops the process group: `SIGTERM`, then `SIGKILL` after `grace`.
pub async fn cancel(handle: &ProcessHandle, grace: Duration) {
    if !alive(handle) {
        return;
    }
    let group = Pid::from_raw(handle.pid);
    let _ = killpg(group, Signal::SIGTERM);
    let deadline = tokio::time::Instant::now() + grace;
    while alive(handle) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(POLL).await;
    }
    if alive(handle) {
        let _ = killpg(group, Signal::SIGKILL);
    }
}

/// Follows the output file from `offset` until the process has ended and all of it was read.
pub fn follow(handle: ProcessHandle, offset: u64) -> Output {
    struct Reader {
        handle: ProcessHandle,
        offset: u64,
        file: Option<tokio::fs::File>,
        ended: bool,
    }
    let reader = Reader {
        handle,
        offset,
        file: None,
        ended: false,
    };
    Box::pin(futures_util::stream::unfold(
        Some(reader),
        |state| async move {
            let mut reader = state?;
            loop {
                if reader.file.is_none() {
                    match open_at(&reader.handle.output, reader.offset).await {
                        Ok(Some(file)) => reader.file = Some(file),
                        Ok(None) => {}
                        Err(e) => return Some((Err(e), None)),
                    }
                }
                if let Some(file) = reader.file.as_mut() {
                    let mut buffer = vec![0u8; CHUNK];
                    match file.read(&mut buffer).await {
                        Ok(0) => {}
                        Ok(n) => {
                            buffer.truncate(n);
                            reader.offset += n as u64;
                            return Some((Ok(Bytes::from(buffer)), Some(reader)));
                        }
                        Err(e) => {
                            let message =
                                format!("cannot read {}: {e}", reader.handle.output.display());
                            return Some((Err(ExecError::Failed(message)), None));
                        }
                    }
                }
                // At the end of what was written: done if the process has ended (its output
                // is complete once its status is), else wait for more.
                if reader.ended {
                    return None;
                }
                if status(&reader.handle) != Status::Running {
                    reader.ended = true;
                    continue;
                }
                tokio::time::sleep(POLL).await;
            }
        },
    ))
}

async fn open_at(path: &Path, offset: u64) -> Result<Option<tokio::fs::File>, ExecError> {
    match tokio::fs::File::open(path).await {
        Ok(mut file) => {
            file.seek(std::io::SeekFrom::Start(offset))
                .await
                .map_err(|e| ExecError::Failed(format!("cannot seek {}: {e}", path.display())))?;
            Ok(Some(file))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ExecError::Failed(format!(
            "cannot open {}: {e}",
            path.display()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    fn spec(dir: &Path, script: &str) -> Spec {
        Spec {
            program: "sh".into(),
            args: vec!["-c".into(), script.into()],
            dir: dir.to_path_buf(),
            env: vec![("KILN_TEST".into(), "yes".into())],
            output: dir.join("output.log"),
            exit: dir.join("exit"),
        }
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("kiln-process-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        dir
    }

    async fn collect(output: Output) -> Vec<u8> {
        let chunks: Vec<_> = output.collect().await;
        chunks
            .into_iter()
            .flat_map(|c| c.expect("chunk").to_vec())
            .collect()
    }

    #[tokio::test]
    async fn output_and_exit_code_arrive_and_resume_at_an_offset() {
        let dir = scratch("exit");
        let handle = spawn(&spec(
            &dir,
            "echo one; echo two >&2; echo $KILN_TEST; exit 3",
        ))
        .await
        .expect("spawn");
        let all = collect(follow(handle.clone(), 0)).await;
        assert_eq!(String::from_utf8_lossy(&all), "one\ntwo\nyes\n");
        assert_eq!(status(&handle), Status::Exited(3));
        // A follower that already has 4 bytes gets the rest only.
        let rest = collect(follow(handle.clone(), 4)).await;
        assert_eq!(String::from_utf8_lossy(&rest), "two\nyes\n");
    }

    #[tokio::test]
    async fn the_environment_is_not_inherited() {
        let dir = scratch("env");
        // cargo sets CARGO_MANIFEST_DIR for the test process; the run must not see it.
        assert!(std::env::var_os("CARGO_MANIFEST_DIR").is_some());
        let handle = spawn(&spec(&dir, "echo \"[${CARGO_MANIFEST_DIR:-unset}]\""))
            .await
            .expect("spawn");
        let all = collect(follow(handle, 0)).await;
        assert_eq!(String::from_utf8_lossy(&all), "[unset]\n");
    }

    #[tokio::test]
    async fn cancel_stops_the_whole_group() {
        let dir = scratch("cancel");
        let handle = spawn(&spec(&dir, "sleep 60 & echo started; wait"))
            .await
            .expect("spawn");
        assert_eq!(status(&handle), Status::Running);
        cancel(&handle, Duration::from_secs(5)).await;
        assert!(!alive(&handle));
        assert!(matches!(status(&handle), Status::Gone(_)));
        // The output ends rather than waiting forever.
        let all = collect(follow(handle, 0)).await;
        assert!(String::from_utf8_lossy(&all).len() <= "started\n".len());
    }

    #[tokio::test]
    async fn a_reused_process_id_is_not_the_process() {
        let dir = scratch("reuse");
        let handle = spawn(&spec(&dir, "sleep 30")).await.expect("spawn");
        let mut other = handle.clone();
        other.start += 1;
        assert!(!alive(&other));
        cancel(&handle, Duration::from_secs(5)).await;
    }
}
