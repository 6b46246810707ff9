//! The sandbox of runs that execute on the control plane's host (the `local` target, and the
//! Spark driver that `spark-submit` holds), made with bubblewrap (`bwrap`).
//!
//! What a sandboxed process gets, and nothing else:
//! - the read-only system: `/usr` (and the `/bin`, `/lib`, `/sbin` links to it) and the few
//!   files of `/etc` that programs read to run (name resolution, certificates, the dynamic
//!   linker's cache, Java's configuration);
//! - the installations it runs from, read-only: the interpreter's prefix (and a virtual
//!   environment's base), a work group's cached environments, Spark's home;
//! - its checkout, writable, as its working directory; a private `/tmp`, `/dev` and `/proc`;
//! - new user, PID, IPC, UTS and cgroup namespaces: it runs as uid and gid 65534 with no
//!   capabilities, sees only its own processes (not the control plane's, not other runs'), and
//!   cannot signal anything outside;
//! - the host's network (a run reports to the API on loopback with its run token; installing
//!   requirements needs a package index), unless the caller asks for none.
//!
//! Nothing of Kiln's data directory is bound: not the database, the secret key, the compile
//! cache, other runs' directories or other work groups' environments. The paths Kiln holds
//! secret (its data directory, the key file) are also refused as installation roots, so no
//! target setting can bring them in.

use crate::ExecError;
use std::path::{Path, PathBuf};

/// The user and group a sandboxed process runs as (`nobody`).
pub const SANDBOX_UID: u32 = 65534;

/// Files and directories of `/etc` a sandboxed program may read, when they exist.
const ETC: &[&str] = &[
    "/etc/hosts",
    "/etc/resolv.conf",
    "/etc/nsswitch.conf",
    "/etc/host.conf",
    "/etc/gai.conf",
    "/etc/localtime",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/alternatives",
    "/etc/java-17-openjdk",
    "/etc/java-21-openjdk",
    "/etc/mime.types",
    "/etc/pip.conf",
    "/etc/xdg/pip",
];

/// The top-level links (or directories) of a merged-`/usr` system.
const TOP: &[&str] = &["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"];

/// How runs on the control plane's host (`local`, the Spark driver) are isolated from it.
#[derive(Clone, Debug)]
pub enum Isolation {
    /// In a bubblewrap sandbox.
    Sandboxed(Sandbox),
    /// As processes of the control plane's own user, seeing what it sees: an installation admin
    /// turned this on for a host without a sandbox, knowing what it means.
    Unsandboxed,
    /// Not at all: such targets are off, for this reason.
    Off(String),
}

impl Isolation {
    /// The sandbox and the Python `interpreter` as it sees it, `None` for unsandboxed runs, or
    /// why `kind` targets are off.
    pub async fn python(
        &self,
        kind: &str,
        interpreter: &str,
    ) -> Result<Option<(&Sandbox, Python)>, ExecError> {
        match self {
            Isolation::Sandboxed(sandbox) => {
                Ok(Some((sandbox, sandbox.python(interpreter).await?)))
            }
            Isolation::Unsandboxed => Ok(None),
            Isolation::Off(why) => Err(ExecError::Unreachable(format!(
                "{kind} targets are off on this control plane: {why}. Runs would execute as the \
                 control plane's own user; an installation admin who accepts that can start \
                 `kiln up --unsandboxed-local-runs`"
            ))),
        }
    }
}

/// What one sandboxed process may see.
#[derive(Clone, Debug, Default)]
pub struct Jail {
    /// Bound read-only, at the same path.
    pub read_only: Vec<PathBuf>,
    /// Bound writable, at the same path.
    pub writable: Vec<PathBuf>,
    /// Its working directory (one of the bound paths).
    pub dir: PathBuf,
    /// Whether it shares the host's network.
    pub network: bool,
}

/// The sandbox maker of this host.
#[derive(Clone, Debug)]
pub struct Sandbox {
    bwrap: PathBuf,
    /// Paths no jail may bind, at, above or below them (the data directory, the key file).
    secret: Vec<PathBuf>,
}

impl Sandbox {
    /// Finds `bwrap` and checks that it can make a sandbox on this host (user namespaces may be
    /// denied, inside a container for instance). `secret` lists the paths no jail may bind.
    pub fn detect(secret: Vec<PathBuf>) -> Result<Sandbox, String> {
        let bwrap = find_on_path("bwrap").ok_or_else(|| {
            "bubblewrap (bwrap) is not installed: install it (Debian: apt-get install bubblewrap)"
                .to_string()
        })?;
        let sandbox = Sandbox {
            bwrap,
            secret: secret.iter().map(|p| absolute(p)).collect(),
        };
        let jail = Jail {
            dir: PathBuf::from("/"),
            ..Jail::default()
        };
        let args = sandbox.arguments(&jail);
        let output = std::process::Command::new(&sandbox.bwrap)
            .args(&args)
            .arg("true")
            .env_clear()
            .output()
            .map_err(|e| format!("cannot run {}: {e}", sandbox.bwrap.display()))?;
        if !output.status.success() {
            return Err(format!(
                "bubblewrap cannot make a sandbox here: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        Ok(sandbox)
    }

    /// The `bwrap` program.
    pub fn program(&self) -> &Path {
        &self.bwrap
    }

    /// Refuses a path a jail would bind when it is, holds or lies inside one of the secret paths.
    pub fn check_bind(&self, path: &Path) -> Result<(), ExecError> {
        let path = absolute(path);
        if path == Path::new("/") {
            return Err(ExecError::Invalid(
                "the sandbox cannot bind the whole file system".into(),
            ));
        }
        for secret in &self.secret {
            if secret.starts_with(&path) || path.starts_with(secret) {
                return Err(ExecError::Invalid(format!(
                    "{} cannot be given to a run: it holds or lies inside Kiln's data",
                    path.display()
                )));
            }
        }
        Ok(())
    }

    /// `bwrap`'s arguments for `jail`, to be followed by the program and its arguments.
    pub fn arguments(&self, jail: &Jail) -> Vec<String> {
        let mut args: Vec<String> = Vec::new();
        let mut push = |items: &[&str]| args.extend(items.iter().map(|s| s.to_string()));
        push(&["--ro-bind", "/usr", "/usr"]);
        for top in TOP {
            let path = Path::new(top);
            match std::fs::read_link(path) {
                Ok(target) => push(&["--symlink", &target.to_string_lossy(), top]),
                Err(_) if path.is_dir() => push(&["--ro-bind", top, top]),
                Err(_) => {}
            }
        }
        for etc in ETC {
            push(&["--ro-bind-try", etc, etc]);
        }
        push(&["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]);
        for path in &jail.read_only {
            let path = path.to_string_lossy();
            push(&["--ro-bind", &path, &path]);
        }
        for path in &jail.writable {
            let path = path.to_string_lossy();
            push(&["--bind", &path, &path]);
        }
        push(&["--chdir", &jail.dir.to_string_lossy()]);
        push(&["--unshare-all"]);
        if jail.network {
            push(&["--share-net"]);
        }
        let id = SANDBOX_UID.to_string();
        push(&["--uid", &id, "--gid", &id]);
        push(&["--cap-drop", "ALL", "--new-session", "--die-with-parent"]);
        push(&["--setenv", "HOME", "/tmp", "--setenv", "USER", "nobody"]);
        push(&["--setenv", "LOGNAME", "nobody", "--unsetenv", "TMPDIR"]);
        push(&["--"]);
        args
    }

    /// `program` with `args`, run in `jail`: the program and arguments to start instead.
    pub fn wrap(&self, jail: &Jail, program: &str, args: &[String]) -> (String, Vec<String>) {
        let mut wrapped = self.arguments(jail);
        wrapped.push(program.to_string());
        wrapped.extend(args.iter().cloned());
        (self.bwrap.to_string_lossy().into_owned(), wrapped)
    }

    /// A command running `program` with `args` in `jail`, with the environment a run inherits
    /// ([`crate::process::inherited_env`]) and nothing else.
    pub fn command(&self, jail: &Jail, program: &str, args: &[String]) -> tokio::process::Command {
        let (program, args) = self.wrap(jail, program, args);
        let mut command = tokio::process::Command::new(program);
        command
            .args(args)
            .env_clear()
            .envs(crate::process::inherited_env());
        command
    }

    /// Where the Python `interpreter` (a name on `PATH` or a path) is installed: asked of the
    /// interpreter itself, run in a jail that sees the whole system read-only but for Kiln's
    /// data, without network. The roots are checked with [`Sandbox::check_bind`].
    pub async fn python(&self, interpreter: &str) -> Result<Python, ExecError> {
        const ASK: &str =
            "import json, sys; print(json.dumps([sys.executable, sys.prefix, sys.base_prefix]))";
        let mut args: Vec<String> = vec!["--ro-bind".into(), "/".into(), "/".into()];
        for secret in &self.secret {
            if secret.is_dir() {
                args.extend(["--tmpfs".into(), secret.to_string_lossy().into_owned()]);
            } else if secret.exists() {
                args.extend([
                    "--ro-bind".into(),
                    "/dev/null".into(),
                    secret.to_string_lossy().into_owned(),
                ]);
            }
        }
        args.extend(
            [
                "--proc",
                "/proc",
                "--dev",
                "/dev",
                "--unshare-all",
                "--cap-drop",
                "ALL",
                "--die-with-parent",
                "--",
            ]
            .map(String::from),
        );
        let mut command = tokio::process::Command::new(&self.bwrap);
        command.args(&args).arg(interpreter).args(["-c", ASK]);
        command.env_clear();
        for name in ["PATH", "HOME", "LANG"] {
            if let Some(value) = std::env::var_os(name) {
                command.env(name, value);
            }
        }
        let output = command.kill_on_drop(true).output().await.map_err(|e| {
            ExecError::Unreachable(format!("cannot run {}: {e}", self.bwrap.display()))
        })?;
        let text = String::from_utf8_lossy(&output.stdout);
        let found: Option<(String, String, String)> = text
            .lines()
            .last()
            .and_then(|line| serde_json::from_str(line).ok());
        let Some((executable, prefix, base)) = found.filter(|_| output.status.success()) else {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let stderr: String = stderr.trim().chars().take(400).collect();
            return Err(ExecError::Invalid(format!(
                "'{interpreter}' cannot run here as a Python interpreter: {stderr}"
            )));
        };
        let mut roots = vec![PathBuf::from(prefix)];
        if base != roots[0].to_string_lossy() {
            roots.push(PathBuf::from(base));
        }
        roots.retain(|root| !root.starts_with("/usr"));
        for root in &roots {
            self.check_bind(root)?;
        }
        Ok(Python {
            executable: PathBuf::from(executable),
            roots,
        })
    }
}

/// A Python installation as a sandbox sees it.
#[derive(Clone, Debug)]
pub struct Python {
    /// The interpreter itself (not a shim that finds it).
    pub executable: PathBuf,
    /// The directories it needs outside `/usr`: its prefix and, for a virtual environment, the
    /// base installation's.
    pub roots: Vec<PathBuf>,
}

fn absolute(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            std::env::current_dir()
                .map(|dir| dir.join(path))
                .unwrap_or_else(|_| path.to_path_buf())
        }
    })
}

/// `name` as found on `PATH`.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sandbox(secret: &Path) -> Option<Sandbox> {
        match Sandbox::detect(vec![secret.to_path_buf()]) {
            Ok(sandbox) => Some(sandbox),
            Err(why) => {
                eprintln!("no sandbox on this host, skipping: {why}");
                None
            }
        }
    }

    #[test]
    fn secret_paths_and_their_ancestors_cannot_be_bound() {
        let sandbox = Sandbox {
            bwrap: PathBuf::from("/usr/bin/bwrap"),
            secret: vec![PathBuf::from("/srv/kiln")],
        };
        for refused in ["/", "/srv", "/srv/kiln", "/srv/kiln/cache"] {
            assert!(sandbox.check_bind(Path::new(refused)).is_err(), "{refused}");
        }
        for allowed in ["/opt/python", "/srv/other", "/srv/kilnx"] {
            assert!(sandbox.check_bind(Path::new(allowed)).is_ok(), "{allowed}");
        }
    }

    #[tokio::test]
    async fn a_jailed_process_sees_only_what_it_was_given() {
        let root = std::env::temp_dir().join(format!("kiln-sandbox-{}", std::process::id()));
        let (data, code) = (root.join("data"), root.join("code"));
        std::fs::create_dir_all(&data).expect("data");
        std::fs::create_dir_all(&code).expect("code");
        std::fs::write(data.join("secret.key"), "secret").expect("key");
        let Some(sandbox) = sandbox(&data) else {
            return;
        };
        let jail = Jail {
            writable: vec![code.clone()],
            dir: code.clone(),
            ..Jail::default()
        };
        let script = format!(
            "id -u; cat {} 2>&1 || echo unreadable; echo made > out; ls /proc | grep -c '^[0-9]'",
            data.join("secret.key").display()
        );
        let output = tokio::process::Command::new(sandbox.program())
            .args(sandbox.arguments(&jail))
            .args(["sh", "-c", &script])
            .output()
            .await
            .expect("bwrap");
        let text = String::from_utf8_lossy(&output.stdout);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], SANDBOX_UID.to_string(), "{text}");
        assert!(lines[1].contains("No such file"), "{text}");
        assert_eq!(lines[2], "unreadable", "{text}");
        // Its own shell, ls and grep: no other process of the host is in view.
        assert!(lines[3].parse::<u32>().expect("count") <= 4, "{text}");
        assert_eq!(
            std::fs::read_to_string(code.join("out")).expect("out"),
            "made\n"
        );
        let _ = std::fs::remove_dir_all(&root);
    }
}
