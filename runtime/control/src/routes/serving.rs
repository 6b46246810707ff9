//! Deployments and endpoints: keys, monitoring, drift and events.

use super::Route;
use super::doc::Answer;
use crate::api::{deployments, endpoints, monitoring};
use crate::auth::WorkgroupRole as W;

pub(super) fn routes() -> Vec<Route> {
    use crate::access::Access::Workgroup;
    vec![
        route!(
            GET,
            "/api/v1/teams/{team}/workgroups/{workgroup}/deployments",
            "listDeployments",
            "Deployments",
            Workgroup(W::Reader),
            Empty,
            get(deployments::list)
        ),
        route!(
            POST,
            "/api/v1/teams/{team}/workgroups/{workgroup}/deployments",
            "createDeployment",
            "Deploy an image (returns its keys once)",
            Workgroup(W::Contributor),
            Json,
            post(deployments::create)
        )
        .answers(Answer::Created),
        route!(
            GET,
            "/api/v1/teams/{team}/workgroups/{workgroup}/deployments/{deployment}",
            "getDeployment",
            "A deployment and its status",
            Workgroup(W::Reader),
            Empty,
            get(deployments::get)
        ),
        route!(
            DELETE,
            "/api/v1/teams/{team}/workgroups/{workgroup}/deployments/{deployment}",
            "deleteDeployment",
            "Stop and delete a deployment",
            Workgroup(W::Contributor),
            Empty,
            delete(deployments::delete)
        ),
        route!(
            PATCH,
            "/api/v1/teams/{team}/workgroups/{workgroup}/deployments/{deployment}",
            "updateDeployment",
            "Change a deployment's image, limits, scale or public flag (the old version serves until the new one is ready)",
            Workgroup(W::Contributor),
            Json,
            patch(deployments::update)
        ),
        route!(
            GET,
            "/api/v1/teams/{team}/workgroups/{workgroup}/endpoints",
            "listEndpoints",
            "Endpoints and their traffic",
            Workgroup(W::Reader),
            Empty,
            get(endpoints::list)
        ),
        route!(
            POST,
            "/api/v1/teams/{team}/workgroups/{workgroup}/endpoints",
            "createEndpoint",
            "A stable prediction URL routing to deployments by weight (returns its keys once)",
            Workgroup(W::Contributor),
            Json,
            post(endpoints::create)
        )
        .answers(Answer::Created),
        route!(
            GET,
            "/api/v1/teams/{team}/workgroups/{workgroup}/endpoints/{endpoint}",
            "getEndpoint",
            "An endpoint, its split and each deployment's state",
            Workgroup(W::Reader),
            Empty,
            get(endpoints::get)
        ),
        route!(
            PATCH,
            "/api/v1/teams/{team}/workgroups/{workgroup}/endpoints/{endpoint}",
            "updateEndpoint",
            "Change an endpoint's traffic, mirror, rollback policy or public flag",
            Workgroup(W::Contributor),
            Json,
            patch(endpoints::update)
        ),
        route!(
            DELETE,
            "/api/v1/teams/{team}/workgroups/{workgroup}/endpoints/{endpoint}",
            "deleteEndpoint",
            "Delete an endpoint (its deployments stay)",
            Workgroup(W::Contributor),
            Empty,
            delete(endpoints::delete)
        ),
        route!(
            POST,
            "/api/v1/teams/{team}/workgroups/{workgroup}/endpoints/{endpoint}/keys",
            "regenerateEndpointKey",
            "A new primary or secondary endpoint key (shown once)",
            Workgroup(W::Contributor),
            Json,
            post(endpoints::regenerate_key)
        ),
        route!(
            GET,
            "/api/v1/teams/{team}/workgroups/{workgroup}/endpoints/{endpoint}/events",
            "listEndpointEvents",
            "Traffic changes, mirror and policy changes, rollbacks",
            Workgroup(W::Reader),
            Empty,
            get(endpoints::events)
        ),
        route!(
            POST,
            "/api/v1/teams/{team}/workgroups/{workgroup}/deployments/{deployment}/keys",
            "regenerateDeploymentKey",
            "A new primary or secondary key (shown once)",
            Workgroup(W::Contributor),
            Json,
            post(deployments::regenerate_key)
        ),
        route!(
            PUT,
            "/api/v1/teams/{team}/workgroups/{workgroup}/deployments/{deployment}/monitoring",
            "setDeploymentMonitoring",
            "The monitor component, its config and window, and the retraining policy",
            Workgroup(W::Contributor),
            Json,
            put(monitoring::put)
        ),
        route!(
            GET,
            "/api/v1/teams/{team}/workgroups/{workgroup}/deployments/{deployment}/drift",
            "getDeploymentDrift",
            "The drift report of a window (latest, cumulative, or N back)",
            Workgroup(W::Reader),
            Empty,
            get(monitoring::drift)
        ),
        route!(
            GET,
            "/api/v1/teams/{team}/workgroups/{workgroup}/deployments/{deployment}/events",
            "listDeploymentEvents",
            "Drift state changes and retraining runs",
            Workgroup(W::Reader),
            Empty,
            get(monitoring::events)
        ),
    ]
}
