//! Run targets and environments.

use super::Route;
use super::doc::Answer;
use crate::api::environments;
use crate::auth::WorkgroupRole as W;

pub(super) fn routes() -> Vec<Route> {
    use crate::access::Access::Workgroup;
    vec![
        route!(
            GET,
            "/api/v1/teams/{team}/workgroups/{workgroup}/targets",
            "listTargets",
            "Execution targets",
            Workgroup(W::Reader),
            Empty,
            get(environments::list_targets)
        ),
        route!(
            POST,
            "/api/v1/teams/{team}/workgroups/{workgroup}/targets",
            "createTarget",
            "A new execution target (local, docker, spark)",
            Workgroup(W::Owner),
            Json,
            post(environments::create_target)
        )
        .answers(Answer::Created),
        route!(
            GET,
            "/api/v1/teams/{team}/workgroups/{workgroup}/targets/{target}",
            "getTarget",
            "An execution target",
            Workgroup(W::Reader),
            Empty,
            get(environments::get_target)
        ),
        route!(
            DELETE,
            "/api/v1/teams/{team}/workgroups/{workgroup}/targets/{target}",
            "deleteTarget",
            "Delete an execution target",
            Workgroup(W::Owner),
            Empty,
            delete(environments::delete_target)
        ),
        route!(
            POST,
            "/api/v1/teams/{team}/workgroups/{workgroup}/targets/{target}/test",
            "testTarget",
            "Check the target is reachable (Docker API, Spark master, interpreter)",
            Workgroup(W::Reader),
            Empty,
            post(environments::test_target)
        ),
        route!(
            GET,
            "/api/v1/teams/{team}/workgroups/{workgroup}/environments",
            "listEnvironments",
            "Environments",
            Workgroup(W::Reader),
            Empty,
            get(environments::list)
        ),
        route!(
            POST,
            "/api/v1/teams/{team}/workgroups/{workgroup}/environments",
            "createEnvironment",
            "A new environment (secrets sealed, never returned)",
            Workgroup(W::Contributor),
            Json,
            post(environments::create)
        )
        .answers(Answer::Created),
        route!(
            GET,
            "/api/v1/teams/{team}/workgroups/{workgroup}/environments/{environment}",
            "getEnvironment",
            "An environment, without its secrets",
            Workgroup(W::Reader),
            Empty,
            get(environments::get)
        ),
        route!(
            DELETE,
            "/api/v1/teams/{team}/workgroups/{workgroup}/environments/{environment}",
            "deleteEnvironment",
            "Delete an environment",
            Workgroup(W::Contributor),
            Empty,
            delete(environments::delete)
        ),
    ]
}
