//! Work groups and their members: who sees which work group as what, and who may join one.

use super::time;
use crate::ControlError;
use crate::access::{TeamScope, WorkgroupScope};
use crate::db::{Db, new_id, now_ms};
use crate::names::check_name;
use crate::store::{teams, users, workgroups as store};
use kiln_api::manage::workgroups::{NewWorkgroup, Workgroup, WorkgroupMember};
use kiln_api::manage::{TeamRole, WorkgroupRole};

/// A stored role, or the store's corruption named.
fn role(stored: &str) -> Result<WorkgroupRole, ControlError> {
    WorkgroupRole::parse(stored).ok_or_else(|| {
        ControlError::Internal(format!("stored work group role '{stored}' is unknown"))
    })
}

/// Whether a team role sees every work group of the team, as their owner.
pub fn sees_everything(team_role: TeamRole) -> bool {
    team_role >= TeamRole::Admin
}

/// Creates a work group in the team; its creator sees it as its owner (creating one takes a
/// team admin).
pub async fn create(
    db: &Db,
    team: &TeamScope,
    workgroup: NewWorkgroup,
) -> Result<Workgroup, ControlError> {
    check_name("work group", &workgroup.name)?;
    let created = now_ms();
    store::insert(
        db,
        &new_id(),
        &team.id,
        &workgroup.name,
        &workgroup.description,
        created,
    )
    .await?;
    Ok(Workgroup {
        team: team.name.clone(),
        name: workgroup.name,
        description: workgroup.description,
        role: WorkgroupRole::Owner,
        created: time(created),
    })
}

/// The work groups of the team the caller has a role in (all of them, as owner, for team
/// admins and owners).
pub async fn list(
    db: &Db,
    team: &TeamScope,
    user_id: &str,
    after: &str,
    fetch: i64,
) -> Result<Vec<Workgroup>, ControlError> {
    let everything = sees_everything(team.role);
    store::list_for(db, &team.id, user_id, everything, after, fetch)
        .await?
        .into_iter()
        .map(|row| {
            Ok(Workgroup {
                team: team.name.clone(),
                name: row.name,
                description: row.description,
                role: match (everything, row.role) {
                    (true, _) => WorkgroupRole::Owner,
                    (false, Some(stored)) => role(&stored)?,
                    (false, None) => {
                        return Err(ControlError::Internal(
                            "a work group was listed without the caller's role".into(),
                        ));
                    }
                },
                created: time(row.created_at),
            })
        })
        .collect()
}

/// The work group the caller is in.
pub async fn show(
    db: &Db,
    team: &TeamScope,
    workgroup: &WorkgroupScope,
) -> Result<Workgroup, ControlError> {
    let (description, created) = store::details(db, &workgroup.id).await?;
    Ok(Workgroup {
        team: team.name.clone(),
        name: workgroup.name.clone(),
        description,
        role: workgroup.role,
        created: time(created),
    })
}

/// Deletes a work group, refused while it has a deployment; returns the ids of its models,
/// whose files the caller removes from the artifact store.
pub async fn delete(db: &Db, workgroup: &WorkgroupScope) -> Result<Vec<String>, ControlError> {
    let deployments = store::deployments(db, &workgroup.id).await?;
    if deployments > 0 {
        return Err(ControlError::Conflict(format!(
            "work group '{}' still has {deployments} deployment(s): delete them first",
            workgroup.name
        )));
    }
    let models = store::models(db, &workgroup.id).await?;
    store::delete(db, &workgroup.id).await?;
    Ok(models)
}

/// A listed member.
pub fn member(row: store::MemberRow) -> Result<WorkgroupMember, ControlError> {
    Ok(WorkgroupMember {
        user: row.name,
        role: role(&row.role)?,
    })
}

/// Gives the user named `user`, a member of the team, the role `new` in the work group; true
/// when they were added (not a member before).
pub async fn put_member(
    db: &Db,
    team: &TeamScope,
    workgroup: &WorkgroupScope,
    user: &str,
    new: WorkgroupRole,
) -> Result<bool, ControlError> {
    let user_id = users::user_id(db, user).await?;
    let mut tx = db.begin().await?;
    if teams::role_of(&mut tx, &team.id, &user_id).await?.is_none() {
        return Err(ControlError::Invalid(format!(
            "'{user}' is not a member of team '{}': add them to the team first",
            team.name
        )));
    }
    let current = store::role_of(&mut tx, &workgroup.id, &user_id).await?;
    store::set_role(
        &mut tx,
        &workgroup.id,
        &user_id,
        new.as_str(),
        current.is_some(),
    )
    .await?;
    tx.commit().await?;
    Ok(current.is_none())
}

/// Removes the user named `user` from the work group.
pub async fn remove_member(
    db: &Db,
    workgroup: &WorkgroupScope,
    user: &str,
) -> Result<(), ControlError> {
    let user_id = users::user_id(db, user).await?;
    if !store::remove_member(db, &workgroup.id, &user_id).await? {
        return Err(ControlError::NotFound(format!(
            "'{user}' is not a member of work group '{}'",
            workgroup.name
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::teams as team_domain;
    use kiln_api::manage::teams::NewTeam;

    async fn scope_of(db: &Db, name: &str) -> WorkgroupScope {
        let id: String = sqlx::query_scalar("SELECT id FROM workgroups WHERE name = $1")
            .bind(name)
            .fetch_one(db.pool())
            .await
            .unwrap();
        WorkgroupScope {
            id,
            name: name.into(),
            role: WorkgroupRole::Owner,
        }
    }

    #[tokio::test]
    async fn members_see_their_work_groups_admins_see_all_and_joining_takes_the_team() {
        let db = Db::memory().await.unwrap();
        for (id, name) in [("u1", "ada"), ("u2", "bob"), ("u3", "eve")] {
            users::insert_user(&db, id, name, false, false)
                .await
                .unwrap();
        }
        team_domain::create(
            &db,
            NewTeam {
                name: "acme".into(),
                ..NewTeam::default()
            },
            "u1",
        )
        .await
        .unwrap();
        let id: String = sqlx::query_scalar("SELECT id FROM teams WHERE name = 'acme'")
            .fetch_one(db.pool())
            .await
            .unwrap();
        let owner = TeamScope {
            id: id.clone(),
            name: "acme".into(),
            role: TeamRole::Owner,
        };
        for name in ["lab", "prod", "zoo"] {
            let created = create(
                &db,
                &owner,
                NewWorkgroup {
                    name: name.into(),
                    description: format!("{name}!"),
                },
            )
            .await
            .unwrap();
            assert_eq!(
                (created.team.as_str(), created.role),
                ("acme", WorkgroupRole::Owner)
            );
        }
        let twice = create(
            &db,
            &owner,
            NewWorkgroup {
                name: "lab".into(),
                ..NewWorkgroup::default()
            },
        )
        .await
        .unwrap_err();
        assert_eq!(twice.to_string(), "work group 'lab' already exists");
        let lab = scope_of(&db, "lab").await;
        // Eve is not in the team: she cannot join one of its work groups.
        let outsider = put_member(&db, &owner, &lab, "eve", WorkgroupRole::Reader)
            .await
            .unwrap_err();
        assert!(matches!(outsider, ControlError::Invalid(_)), "{outsider}");
        // Bob, a team member, joins lab as a reader, then becomes a contributor.
        team_domain::put_member(&db, &owner, "bob", TeamRole::Member)
            .await
            .unwrap();
        assert!(
            put_member(&db, &owner, &lab, "bob", WorkgroupRole::Reader)
                .await
                .unwrap()
        );
        assert!(
            !put_member(&db, &owner, &lab, "bob", WorkgroupRole::Contributor)
                .await
                .unwrap()
        );
        // Bob sees lab alone, with his role; the team's owner sees all three as owner.
        let member = TeamScope {
            role: TeamRole::Member,
            ..owner.clone()
        };
        let seen: Vec<(String, WorkgroupRole)> = list(&db, &member, "u2", "", 10)
            .await
            .unwrap()
            .into_iter()
            .map(|w| (w.name, w.role))
            .collect();
        assert_eq!(seen, [("lab".to_string(), WorkgroupRole::Contributor)]);
        let all: Vec<String> = list(&db, &owner, "u1", "", 10)
            .await
            .unwrap()
            .into_iter()
            .map(|w| w.name)
            .collect();
        assert_eq!(all, ["lab", "prod", "zoo"]);
        let page: Vec<String> = list(&db, &owner, "u1", "lab", 1)
            .await
            .unwrap()
            .into_iter()
            .map(|w| w.name)
            .collect();
        assert_eq!(page, ["prod"]);
        assert_eq!(show(&db, &owner, &lab).await.unwrap().description, "lab!");
        // Removing twice: the second time says he is not a member.
        remove_member(&db, &lab, "bob").await.unwrap();
        let again = remove_member(&db, &lab, "bob").await.unwrap_err();
        assert_eq!(
            again.to_string(),
            "'bob' is not a member of work group 'lab'"
        );
        // A deleted work group names its models, whose files go from the artifact store.
        let prod = scope_of(&db, "prod").await;
        sqlx::query(
            "INSERT INTO models (id, workgroup_id, name, description, created_at) \
             VALUES ('m1', $1, 'iris', '', 0)",
        )
        .bind(&prod.id)
        .execute(db.pool())
        .await
        .unwrap();
        assert_eq!(delete(&db, &prod).await.unwrap(), ["m1"]);
        let left: Vec<String> = list(&db, &owner, "u1", "", 10)
            .await
            .unwrap()
            .into_iter()
            .map(|w| w.name)
            .collect();
        assert_eq!(left, ["lab", "zoo"]);
    }
}
