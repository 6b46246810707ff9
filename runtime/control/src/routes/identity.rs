//! Health, the API document, who am I, tokens, users, teams and their members.

use super::doc::Answer;
use super::{Route, TEAM, health, openapi_route};
use crate::api::{teams, users};
use crate::auth::TeamRole as T;

pub(super) fn routes() -> Vec<Route> {
    use crate::access::Access::{Admin, Open, Team, User};
    vec![
        route!(
            GET,
            "/api/v1/health",
            "health",
            "Liveness of the control plane",
            Open,
            Empty,
            get(health)
        ),
        route!(
            GET,
            "/api/v1/openapi.json",
            "openapi",
            "This document",
            Open,
            Empty,
            get(openapi_route)
        ),
        route!(
            GET,
            "/api/v1/whoami",
            "whoami",
            "The caller",
            User,
            Empty,
            get(users::whoami)
        ),
        route!(
            GET,
            "/api/v1/tokens",
            "listTokens",
            "The caller's tokens",
            User,
            Empty,
            get(users::list_tokens)
        ),
        route!(
            POST,
            "/api/v1/tokens",
            "createToken",
            "A new token for the caller (shown once)",
            User,
            Json,
            post(users::create_token)
        )
        .answers(Answer::Created),
        route!(
            DELETE,
            "/api/v1/tokens/{token}",
            "revokeToken",
            "Revoke one of the caller's tokens",
            User,
            Empty,
            delete(users::revoke_token)
        ),
        route!(
            GET,
            "/api/v1/users",
            "listUsers",
            "Users",
            Admin,
            Empty,
            get(users::list)
        ),
        route!(
            POST,
            "/api/v1/users",
            "createUser",
            "A new user and its first token",
            Admin,
            Json,
            post(users::create)
        )
        .answers(Answer::Created),
        route!(
            PATCH,
            "/api/v1/users/{user}",
            "updateUser",
            "Disable or enable a user (a disabled user's tokens answer 401)",
            Admin,
            Json,
            patch(users::update)
        ),
        route!(
            GET,
            "/api/v1/users/{user}/tokens",
            "listUserTokens",
            "A user's tokens (never their values)",
            Admin,
            Empty,
            get(users::list_user_tokens)
        ),
        route!(
            DELETE,
            "/api/v1/users/{user}/tokens/{token}",
            "revokeUserToken",
            "Revoke any user's token",
            Admin,
            Empty,
            delete(users::revoke_user_token)
        ),
        route!(
            GET,
            "/api/v1/teams",
            "listTeams",
            "The caller's teams",
            User,
            Empty,
            get(teams::list)
        ),
        route!(
            POST,
            "/api/v1/teams",
            "createTeam",
            "A new team, owned by the caller",
            User,
            Json,
            post(teams::create)
        )
        .answers(Answer::Created),
        route!(
            GET,
            TEAM,
            "getTeam",
            "A team",
            Team(T::Member),
            Empty,
            get(teams::get)
        ),
        route!(
            DELETE,
            TEAM,
            "deleteTeam",
            "Delete a team and its work groups",
            Team(T::Owner),
            Empty,
            delete(teams::delete)
        ),
        route!(
            GET,
            "/api/v1/teams/{team}/members",
            "listTeamMembers",
            "Members of a team",
            Team(T::Member),
            Empty,
            get(teams::members)
        ),
        route!(
            PUT,
            "/api/v1/teams/{team}/members/{user}",
            "putTeamMember",
            "Add a member or change a role",
            Team(T::Admin),
            Json,
            put(teams::put_member)
        )
        .answers(Answer::Upsert),
        route!(
            DELETE,
            "/api/v1/teams/{team}/members/{user}",
            "deleteTeamMember",
            "Remove a member",
            Team(T::Admin),
            Empty,
            delete(teams::delete_member)
        ),
    ]
}
