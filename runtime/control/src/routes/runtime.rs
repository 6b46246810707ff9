//! The runtime contract: what nodes serve, and what they report back.

use super::Route;
use crate::api::{endpoints, runtime};

pub(super) fn routes() -> Vec<Route> {
    use crate::access::Access::Runtime;
    vec![
        route!(
            GET,
            "/api/v1/runtime/deployments",
            "runtimeDesired",
            "Deployments runtimes should serve",
            Runtime,
            Empty,
            get(runtime::desired)
        ),
        route!(
            GET,
            "/api/v1/runtime/endpoints",
            "runtimeEndpoints",
            "Endpoints runtimes should route",
            Runtime,
            Empty,
            get(endpoints::desired)
        ),
        route!(
            POST,
            "/api/v1/runtime/endpoints/{endpoint}/rollback",
            "runtimeRollback",
            "A runtime's finding that a rollout breached its endpoint's policy",
            Runtime,
            Json,
            post(endpoints::rollback)
        ),
        route!(
            POST,
            "/api/v1/runtime/deployments/{deployment}/status",
            "runtimeReport",
            "A runtime's status report",
            Runtime,
            Json,
            post(runtime::report)
        ),
        route!(
            POST,
            "/api/v1/runtime/deployments/{deployment}/drift",
            "runtimeDrift",
            "A runtime's drift report on a closed window",
            Runtime,
            Json,
            post(runtime::upload)
        ),
    ]
}
