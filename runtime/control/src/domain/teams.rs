//! Teams and their members: who may grant, change and remove which role, and the rule that a
//! team keeps an owner.

use super::time;
use crate::ControlError;
use crate::access::TeamScope;
use crate::db::{Db, new_id, now_ms};
use crate::names::check_name;
use crate::store::{teams as store, users};
use kiln_api::manage::TeamRole;
use kiln_api::manage::teams::{NewTeam, Team, TeamMember};

/// A stored role, or the store's corruption named.
fn role(stored: &str) -> Result<TeamRole, ControlError> {
    TeamRole::parse(stored)
        .ok_or_else(|| ControlError::Internal(format!("stored team role '{stored}' is unknown")))
}

/// Creates a team owned by `owner` (a user id).
pub async fn create(db: &Db, team: NewTeam, owner: &str) -> Result<Team, ControlError> {
    check_name("team", &team.name)?;
    let created = now_ms();
    store::insert(db, &new_id(), &team.name, &team.description, created, owner).await?;
    Ok(Team {
        name: team.name,
        description: team.description,
        role: TeamRole::Owner,
        created: time(created),
    })
}

/// A listed team: an administrator who is not a member sees it as its owner.
pub fn listed(row: store::TeamRow) -> Result<Team, ControlError> {
    Ok(Team {
        name: row.name,
        description: row.description,
        role: row.role.as_deref().map_or(Ok(TeamRole::Owner), role)?,
        created: time(row.created_at),
    })
}

/// The team the caller is in.
pub async fn show(db: &Db, team: &TeamScope) -> Result<Team, ControlError> {
    let (description, created) = store::details(db, &team.id).await?;
    Ok(Team {
        name: team.name.clone(),
        description,
        role: team.role,
        created: time(created),
    })
}

/// Deletes a team, refused while any of its work groups has a deployment.
pub async fn delete(db: &Db, team: &TeamScope) -> Result<(), ControlError> {
    let deployments = store::deployments(db, &team.id).await?;
    if deployments > 0 {
        return Err(ControlError::Conflict(format!(
            "team '{}' still has {deployments} deployment(s): delete them first",
            team.name
        )));
    }
    store::delete(db, &team.id).await
}

/// A listed member.
pub fn member(row: store::MemberRow) -> Result<TeamMember, ControlError> {
    Ok(TeamMember {
        user: row.name,
        role: role(&row.role)?,
    })
}

/// Whether a caller with role `caller` may give `user` (whose role is `current`, if a member)
/// the role `new`: only owners make owners or change an owner.
pub fn may_grant(
    caller: TeamRole,
    current: Option<TeamRole>,
    new: TeamRole,
) -> Result<(), ControlError> {
    if new == TeamRole::Owner && caller < TeamRole::Owner {
        return Err(ControlError::Forbidden(
            "only team owners may make owners".into(),
        ));
    }
    if current == Some(TeamRole::Owner) && caller < TeamRole::Owner {
        return Err(ControlError::Forbidden(
            "only team owners may change an owner".into(),
        ));
    }
    Ok(())
}

/// Whether a caller with role `caller` may remove a member whose role is `current`.
pub fn may_remove(caller: TeamRole, current: TeamRole) -> Result<(), ControlError> {
    if current == TeamRole::Owner && caller < TeamRole::Owner {
        return Err(ControlError::Forbidden(
            "only team owners may remove an owner".into(),
        ));
    }
    Ok(())
}

/// A team keeps at least one owner.
pub fn keeps_an_owner(owners: i64) -> Result<(), ControlError> {
    if owners == 0 {
        return Err(ControlError::Conflict(
            "a team keeps at least one owner".into(),
        ));
    }
    Ok(())
}

/// Gives the user named `user` the role `new` in the team; true when they were added (not a
/// member before).
pub async fn put_member(
    db: &Db,
    team: &TeamScope,
    user: &str,
    new: TeamRole,
) -> Result<bool, ControlError> {
    // Refused before the user is looked up: making an owner takes one, whoever the user is.
    may_grant(team.role, None, new)?;
    let user_id = users::user_named(db, user).await?.id;
    let mut tx = db.begin().await?;
    let current = store::role_of(&mut tx, &team.id, &user_id)
        .await?
        .map(|r| role(&r))
        .transpose()?;
    may_grant(team.role, current, new)?;
    store::set_role(&mut tx, &team.id, &user_id, new.as_str(), current.is_some()).await?;
    if current == Some(TeamRole::Owner) && new != TeamRole::Owner {
        keeps_an_owner(store::owners(&mut tx, &team.id).await?)?;
    }
    tx.commit().await?;
    Ok(current.is_none())
}

/// Removes the user named `user` from the team and from every work group of it.
pub async fn remove_member(db: &Db, team: &TeamScope, user: &str) -> Result<(), ControlError> {
    let user_id = users::user_named(db, user).await?.id;
    let mut tx = db.begin().await?;
    let Some(current) = store::role_of(&mut tx, &team.id, &user_id).await? else {
        return Err(ControlError::NotFound(format!(
            "'{user}' is not a member of team '{}'",
            team.name
        )));
    };
    may_remove(team.role, role(&current)?)?;
    store::remove_member(&mut tx, &team.id, &user_id).await?;
    keeps_an_owner(store::owners(&mut tx, &team.id).await?)?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use TeamRole::{Admin, Member, Owner};

    fn scope(id: &str, role: TeamRole) -> TeamScope {
        TeamScope {
            id: id.into(),
            name: "acme".into(),
            role,
        }
    }

    #[test]
    fn only_owners_make_change_or_remove_owners() {
        assert!(may_grant(Owner, None, Owner).is_ok());
        assert!(may_grant(Admin, None, Owner).is_err());
        assert!(may_grant(Admin, Some(Member), Admin).is_ok());
        assert!(may_grant(Admin, Some(Owner), Member).is_err());
        assert!(may_grant(Owner, Some(Owner), Member).is_ok());
        assert!(may_remove(Admin, Member).is_ok());
        assert!(may_remove(Admin, Owner).is_err());
        assert!(may_remove(Owner, Owner).is_ok());
        assert!(keeps_an_owner(0).is_err() && keeps_an_owner(1).is_ok());
    }

    #[tokio::test]
    async fn a_team_keeps_an_owner_and_leaving_it_leaves_its_work_groups() {
        let db = Db::memory().await.unwrap();
        for (id, name) in [("u1", "ada"), ("u2", "bob")] {
            users::insert_user(&db, id, name, false, false)
                .await
                .unwrap();
        }
        let team = create(
            &db,
            NewTeam {
                name: "acme".into(),
                description: "the team".into(),
            },
            "u1",
        )
        .await
        .unwrap();
        assert_eq!(team.role, Owner);
        let again = create(
            &db,
            NewTeam {
                name: "acme".into(),
                ..NewTeam::default()
            },
            "u2",
        )
        .await
        .unwrap_err();
        assert!(matches!(again, ControlError::Conflict(_)), "{again}");
        let id: String = sqlx::query_scalar("SELECT id FROM teams WHERE name = 'acme'")
            .fetch_one(db.pool())
            .await
            .unwrap();
        let owner = scope(&id, Owner);
        assert_eq!(show(&db, &owner).await.unwrap().description, "the team");
        // Bob joins (added: true), then becomes an admin (added: false).
        assert!(put_member(&db, &owner, "bob", Member).await.unwrap());
        assert!(!put_member(&db, &owner, "bob", Admin).await.unwrap());
        // Bob, an admin, may not make himself an owner nor demote the owner.
        let bob = scope(&id, Admin);
        assert!(matches!(
            put_member(&db, &bob, "bob", Owner).await.unwrap_err(),
            ControlError::Forbidden(_)
        ));
        assert!(matches!(
            put_member(&db, &bob, "ada", Member).await.unwrap_err(),
            ControlError::Forbidden(_)
        ));
        // The last owner can neither step down nor leave; the refusal changes nothing.
        let last = put_member(&db, &owner, "ada", Admin).await.unwrap_err();
        assert_eq!(last.to_string(), "a team keeps at least one owner");
        let left = remove_member(&db, &owner, "ada").await.unwrap_err();
        assert!(matches!(left, ControlError::Conflict(_)), "{left}");
        let listed: Vec<(String, TeamRole)> = store::members(&db, &id, "", 10)
            .await
            .unwrap()
            .into_iter()
            .map(|m| member(m).map(|m| (m.user, m.role)).unwrap())
            .collect();
        assert_eq!(listed, [("ada".into(), Owner), ("bob".into(), Admin)]);
        // Bob leaves the team, and with it its work groups.
        sqlx::query(
            "INSERT INTO workgroups (id, team_id, name, description, created_at) \
             VALUES ('w1', $1, 'lab', '', 0)",
        )
        .bind(&id)
        .execute(db.pool())
        .await
        .unwrap();
        sqlx::query("INSERT INTO workgroup_members (workgroup_id, user_id, role) VALUES ('w1', 'u2', 'reader')")
            .execute(db.pool())
            .await
            .unwrap();
        remove_member(&db, &owner, "bob").await.unwrap();
        let left: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM workgroup_members WHERE user_id = 'u2'")
                .fetch_one(db.pool())
                .await
                .unwrap();
        assert_eq!(left, 0);
        let gone = remove_member(&db, &owner, "bob").await.unwrap_err();
        assert_eq!(gone.to_string(), "'bob' is not a member of team 'acme'");
        // A stored role Kiln never writes is the store's corruption, named.
        let bad = member(store::MemberRow {
            name: "x".into(),
            role: "root".into(),
        })
        .unwrap_err();
        assert!(matches!(bad, ControlError::Internal(_)), "{bad}");
    }
}
