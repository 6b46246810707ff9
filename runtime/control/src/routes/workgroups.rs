//! Work groups, their quotas and members.

use super::doc::Answer;
use super::{Route, WG};
use crate::api::{quotas, workgroups};
use crate::auth::{TeamRole as T, WorkgroupRole as W};

pub(super) fn routes() -> Vec<Route> {
    use crate::access::Access::{Admin, Team, Workgroup};
    vec![
        route!(
            GET,
            "/api/v1/teams/{team}/workgroups",
            "listWorkgroups",
            "Work groups the caller has a role in",
            Team(T::Member),
            Empty,
            get(workgroups::list)
        ),
        route!(
            POST,
            "/api/v1/teams/{team}/workgroups",
            "createWorkgroup",
            "A new work group",
            Team(T::Admin),
            Json,
            post(workgroups::create)
        )
        .answers(Answer::Created),
        route!(
            GET,
            WG,
            "getWorkgroup",
            "A work group",
            Workgroup(W::Reader),
            Empty,
            get(workgroups::get)
        ),
        route!(
            DELETE,
            WG,
            "deleteWorkgroup",
            "Delete a work group and its contents",
            Workgroup(W::Owner),
            Empty,
            delete(workgroups::delete)
        ),
        route!(
            GET,
            "/api/v1/teams/{team}/workgroups/{workgroup}/quota",
            "getWorkgroupQuota",
            "The work group's quota (deployments, instances, memory, longest deadline)",
            Workgroup(W::Reader),
            Empty,
            get(quotas::get)
        ),
        route!(
            PUT,
            "/api/v1/teams/{team}/workgroups/{workgroup}/quota",
            "putWorkgroupQuota",
            "Set the work group's quota (null: the installation's default)",
            Admin,
            Json,
            put(quotas::put)
        ),
        route!(
            GET,
            "/api/v1/teams/{team}/workgroups/{workgroup}/members",
            "listWorkgroupMembers",
            "Members of a work group",
            Workgroup(W::Reader),
            Empty,
            get(workgroups::members)
        ),
        route!(
            PUT,
            "/api/v1/teams/{team}/workgroups/{workgroup}/members/{user}",
            "putWorkgroupMember",
            "Give a team member a role",
            Workgroup(W::Owner),
            Json,
            put(workgroups::put_member)
        )
        .answers(Answer::Upsert),
        route!(
            DELETE,
            "/api/v1/teams/{team}/workgroups/{workgroup}/members/{user}",
            "deleteWorkgroupMember",
            "Remove a member",
            Workgroup(W::Owner),
            Empty,
            delete(workgroups::delete_member)
        ),
    ]
}
