//! Experiments: what a valid entry point, argument list and target are.

use super::time;
use crate::ControlError;
use crate::db::{Db, new_id, now_ms};
use crate::names::{check_artifact_path, check_name};
use crate::runs::targets::BUILT_IN_TARGETS;
use crate::store::experiments::{self as store, ExperimentRow};
use kiln_api::manage::experiments::{Experiment, NewExperiment};

/// Checks the name of a target a run or an experiment names.
pub fn check_target(target: &str) -> Result<(), ControlError> {
    if BUILT_IN_TARGETS.contains(&target) || check_name("target", target).is_ok() {
        Ok(())
    } else {
        Err(ControlError::Invalid(format!("invalid target '{target}'")))
    }
}

/// Checks a run's or an experiment's arguments: at most 256, each at most 4096 bytes, no NUL.
pub fn check_args(args: &[String]) -> Result<(), ControlError> {
    if args.len() > 256 || args.iter().any(|a| a.len() > 4096 || a.contains('\0')) {
        return Err(ControlError::Invalid(
            "args: at most 256 arguments of at most 4096 bytes, no NUL".into(),
        ));
    }
    Ok(())
}

/// Checks a new experiment: its name, its script (a path in the project, or none), its
/// arguments and its target.
pub fn check_new(new: &NewExperiment) -> Result<(), ControlError> {
    check_name("experiment", &new.name)?;
    if !new.script.is_empty() {
        check_artifact_path(&new.script)?;
    }
    check_args(&new.args)?;
    check_target(&new.target)
}

/// An experiment of `project` as the API shows it. Arguments that do not parse (Kiln never
/// writes such) show as none.
pub fn experiment(project: &str, row: ExperimentRow) -> Experiment {
    Experiment {
        project: project.to_string(),
        name: row.name,
        script: row.script,
        args: serde_json::from_str(&row.args).unwrap_or_default(),
        target: row.target,
        created: time(row.created_at),
    }
}

/// Creates an experiment in the project `project_id` (named `project`).
pub async fn create(
    db: &Db,
    (project_id, project): (&str, &str),
    new: NewExperiment,
) -> Result<Experiment, ControlError> {
    check_new(&new)?;
    let row = ExperimentRow {
        id: new_id(),
        name: new.name,
        script: new.script,
        args: serde_json::to_string(&new.args)
            .map_err(|e| ControlError::Internal(e.to_string()))?,
        target: new.target,
        created_at: now_ms(),
    };
    store::insert(db, project_id, &row).await?;
    Ok(experiment(project, row))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(name: &str, script: &str, args: &[&str], target: &str) -> NewExperiment {
        NewExperiment {
            name: name.into(),
            script: script.into(),
            args: args.iter().map(|a| a.to_string()).collect(),
            target: target.into(),
        }
    }

    #[test]
    fn scripts_args_and_targets_are_checked() {
        assert!(check_new(&new("train", "train.py", &["--c", "1"], "local")).is_ok());
        // Tracking only: no script.
        assert!(check_new(&new("tracked", "", &[], "docker")).is_ok());
        assert!(check_new(&new("train", "src/train.py", &[], "my-cluster")).is_ok());
        let long = "x".repeat(4097);
        let many: Vec<&str> = vec!["a"; 257];
        for bad in [
            new("Train", "train.py", &[], "local"),
            new("train", "../train.py", &[], "local"),
            new("train", "/etc/passwd", &[], "local"),
            new("train", "train.py", &["a\0b"], "local"),
            new("train", "train.py", &[long.as_str()], "local"),
            new("train", "train.py", &many, "local"),
            new("train", "train.py", &[], "../local"),
        ] {
            let error = check_new(&bad).unwrap_err();
            assert!(matches!(error, ControlError::Invalid(_)), "{error}");
        }
    }

    #[tokio::test]
    async fn experiments_round_trip_their_arguments() {
        let db = crate::store::fixture().await;
        let args = ["--c", "a b", "ü"];
        let created = create(
            &db,
            ("p1", "iris"),
            new("train", "train.py", &args, "local"),
        )
        .await
        .unwrap();
        assert_eq!(created.args, args);
        let again = create(&db, ("p1", "iris"), new("train", "", &[], "local"))
            .await
            .unwrap_err();
        assert_eq!(again.to_string(), "experiment 'train' already exists");
        let stored = experiment("iris", store::named(&db, "p1", "train").await.unwrap());
        assert_eq!(stored, created);
        let id = store::experiment_id(&db, "p1", "train").await.unwrap();
        store::delete(&db, &id).await.unwrap();
        let gone = store::named(&db, "p1", "train").await.unwrap_err();
        assert!(matches!(gone, ControlError::NotFound(_)), "{gone}");
    }
}
