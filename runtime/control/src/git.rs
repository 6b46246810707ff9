//! Project repositories: one bare git repository per project, kept by the control plane and
//! driven with the `git` command. A push is a tar of the working tree (the CLI leaves out what
//! `.gitignore` ignores); it becomes one commit on `main`, made with plumbing commands and a
//! compare-and-swap of the ref, so concurrent pushes never lose one another.

use crate::ControlError;
use crate::names::check_artifact_path;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A commit as the API shows it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CommitInfo {
    /// Full SHA-1.
    pub sha: String,
    /// Author (the pushing user).
    pub author: String,
    /// Seconds since the epoch.
    pub time: i64,
    /// The message.
    pub message: String,
}

/// The bare repository of a project.
pub struct Repository {
    dir: PathBuf,
}

fn git_error(what: &str, output: &std::process::Output) -> ControlError {
    ControlError::Internal(format!(
        "git {what}: {}",
        String::from_utf8_lossy(&output.stderr).trim()
    ))
}

impl Repository {
    /// The repository at `dir` (created by [`Repository::init`]).
    pub fn open(dir: PathBuf) -> Repository {
        Repository { dir }
    }

    /// Creates an empty bare repository whose default branch is `main`.
    pub fn init(dir: PathBuf) -> Result<Repository, ControlError> {
        if let Some(parent) = dir.parent() {
            std::fs::create_dir_all(parent).map_err(|e| {
                ControlError::Unavailable(format!("cannot create {}: {e}", parent.display()))
            })?;
        }
        let output = Command::new("git")
            .args(["init", "--quiet", "--bare", "--initial-branch=main"])
            .arg(&dir)
            .output()
            .map_err(|e| ControlError::Unavailable(format!("git is needed for projects: {e}")))?;
        if !output.status.success() {
            return Err(git_error("init", &output));
        }
        Ok(Repository { dir })
    }

    fn git(&self) -> Command {
        let mut command = Command::new("git");
        command
            .env("GIT_DIR", &self.dir)
            .env_remove("GIT_WORK_TREE")
            .env_remove("GIT_INDEX_FILE")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", &self.dir);
        command
    }

    fn run(&self, what: &str, command: &mut Command) -> Result<String, ControlError> {
        let output = command
            .output()
            .map_err(|e| ControlError::Unavailable(format!("git: {e}")))?;
        if !output.status.success() {
            return Err(git_error(what, &output));
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
    }

    /// The commit `main` points at, if any.
    pub fn head(&self) -> Result<Option<String>, ControlError> {
        let output = self
            .git()
            .args(["rev-parse", "--quiet", "--verify", "refs/heads/main"])
            .output()
            .map_err(|e| ControlError::Unavailable(format!("git: {e}")))?;
        Ok(output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string()))
    }

    /// Commits `files` (a whole working tree) on `main`; returns the new commit.
    pub fn commit_tree(
        &self,
        files: &[(String, Vec<u8>)],
        author: &str,
        message: &str,
        scratch: &Path,
    ) -> Result<String, ControlError> {
        let work = scratch.join("tree");
        for (path, bytes) in files {
            check_artifact_path(path)?;
            let target = work.join(path);
            if let Some(dir) = target.parent() {
                std::fs::create_dir_all(dir).map_err(|e| ControlError::Internal(e.to_string()))?;
            }
            std::fs::write(&target, bytes).map_err(|e| ControlError::Internal(e.to_string()))?;
        }
        self.commit_work_tree(author, message, scratch)
    }

    /// The tree under `scratch/tree` (written there by the caller, every path checked) as one
    /// commit on `main`; returns its sha.
    pub fn commit_work_tree(
        &self,
        author: &str,
        message: &str,
        scratch: &Path,
    ) -> Result<String, ControlError> {
        let work = scratch.join("tree");
        std::fs::create_dir_all(&work).map_err(|e| ControlError::Internal(e.to_string()))?;
        let index = scratch.join("index");
        // The tree as pushed: a fresh index, every file added, nothing ignored on this side.
        self.run(
            "add",
            self.git()
                .env("GIT_WORK_TREE", &work)
                .env("GIT_INDEX_FILE", &index)
                .args(["add", "--all", "--force", "."])
                .current_dir(&work),
        )?;
        let tree = self.run(
            "write-tree",
            self.git().env("GIT_INDEX_FILE", &index).arg("write-tree"),
        )?;
        for _ in 0..8 {
            let parent = self.head()?;
            let mut commit = self.git();
            commit
                .env("GIT_AUTHOR_NAME", author)
                .env("GIT_AUTHOR_EMAIL", format!("{author}@kiln"))
                .env("GIT_COMMITTER_NAME", "kiln")
                .env("GIT_COMMITTER_EMAIL", "kiln@kiln")
                .args(["commit-tree", &tree, "-m", message]);
            if let Some(parent) = &parent {
                commit.args(["-p", parent]);
            }
            let sha = self.run("commit-tree", &mut commit)?;
            // Moves main only if it is still where this commit's parent says.
            let old = parent.unwrap_or_else(|| "0".repeat(40));
            let moved = self
                .git()
                .args(["update-ref", "refs/heads/main", &sha, &old])
                .output()
                .map_err(|e| ControlError::Unavailable(format!("git: {e}")))?;
            if moved.status.success() {
                return Ok(sha);
            }
        }
        Err(ControlError::Conflict(
            "main kept moving: push again".into(),
        ))
    }

    /// Commits on `main`, newest first, at most `limit`.
    pub fn log(&self, limit: usize) -> Result<Vec<CommitInfo>, ControlError> {
        if self.head()?.is_none() {
            return Ok(vec![]);
        }
        let out = self.run(
            "log",
            self.git().args([
                "log",
                &format!("--max-count={limit}"),
                "--format=%H%x1f%an%x1f%at%x1f%s%x1e",
                "refs/heads/main",
            ]),
        )?;
        Ok(out
            .split('\u{1e}')
            .filter_map(|record| {
                let mut fields = record.trim().split('\u{1f}');
                Some(CommitInfo {
                    sha: fields.next()?.to_string(),
                    author: fields.next()?.to_string(),
                    time: fields.next()?.parse().ok()?,
                    message: fields.next().unwrap_or("").to_string(),
                })
            })
            .collect())
    }

    /// The files of a commit (a full or abbreviated SHA, or `main`).
    pub fn files(&self, commit: &str) -> Result<(String, Vec<String>), ControlError> {
        let sha = self.resolve(commit)?;
        let out = self.run(
            "ls-tree",
            self.git()
                .args(["ls-tree", "-r", "--name-only", "-z", &sha]),
        )?;
        let files = out
            .split('\0')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        Ok((sha, files))
    }

    /// Writes the tree of `commit` into `dir` (created), with a private index so concurrent
    /// checkouts never meet.
    pub fn checkout(&self, commit: &str, dir: &Path) -> Result<(), ControlError> {
        let sha = self.resolve(commit)?;
        std::fs::create_dir_all(dir).map_err(|e| {
            ControlError::Unavailable(format!("cannot create {}: {e}", dir.display()))
        })?;
        let index = dir.with_extension("index");
        self.run(
            "read-tree",
            self.git()
                .env("GIT_INDEX_FILE", &index)
                .args(["read-tree", &sha]),
        )?;
        let mut checkout = self.git();
        checkout
            .env("GIT_INDEX_FILE", &index)
            .env("GIT_WORK_TREE", dir)
            .current_dir(dir)
            .args(["checkout-index", "--all", "--force"]);
        let done = self.run("checkout-index", &mut checkout);
        let _ = std::fs::remove_file(&index);
        done.map(|_| ())
    }

    /// Resolves a commit-ish to a full SHA.
    pub fn resolve(&self, commit: &str) -> Result<String, ControlError> {
        let hex = (4..=64).contains(&commit.len()) && commit.chars().all(|c| c.is_ascii_hexdigit());
        if commit != "main" && !hex {
            return Err(ControlError::Invalid(format!("invalid commit '{commit}'")));
        }
        let resolved = self
            .git()
            .args([
                "rev-parse",
                "--quiet",
                "--verify",
                &format!("{commit}^{{commit}}"),
            ])
            .output()
            .map_err(|e| ControlError::Unavailable(format!("git: {e}")))?;
        if !resolved.status.success() {
            return Err(ControlError::NotFound(format!(
                "commit '{commit}' not found"
            )));
        }
        Ok(String::from_utf8_lossy(&resolved.stdout).trim().to_string())
    }
}
