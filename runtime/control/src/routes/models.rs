//! Models and their versions, manifests and images.

use super::Route;
use super::doc::Answer;
use crate::api::{images, manifests, models};
use crate::auth::WorkgroupRole as W;

pub(super) fn routes() -> Vec<Route> {
    use crate::access::Access::Workgroup;
    vec![
        route!(
            GET,
            "/api/v1/teams/{team}/workgroups/{workgroup}/models",
            "listModels",
            "Models",
            Workgroup(W::Reader),
            Empty,
            get(models::list)
        ),
        route!(
            POST,
            "/api/v1/teams/{team}/workgroups/{workgroup}/models",
            "createModel",
            "A new model",
            Workgroup(W::Contributor),
            Json,
            post(models::create)
        )
        .answers(Answer::Created),
        route!(
            GET,
            "/api/v1/teams/{team}/workgroups/{workgroup}/models/{model}",
            "getModel",
            "A model and its aliases",
            Workgroup(W::Reader),
            Empty,
            get(models::get)
        ),
        route!(
            DELETE,
            "/api/v1/teams/{team}/workgroups/{workgroup}/models/{model}",
            "deleteModel",
            "Delete a model, its versions and files",
            Workgroup(W::Contributor),
            Empty,
            delete(models::delete)
        ),
        route!(
            GET,
            "/api/v1/teams/{team}/workgroups/{workgroup}/models/{model}/versions",
            "listModelVersions",
            "Versions of a model",
            Workgroup(W::Reader),
            Empty,
            get(models::list_versions)
        ),
        route!(
            POST,
            "/api/v1/teams/{team}/workgroups/{workgroup}/models/{model}/versions",
            "createModelVersion",
            "Register the next version from a tar of its files",
            Workgroup(W::Contributor),
            Tar,
            post(models::create_version)
        )
        .answers(Answer::Created),
        route!(
            POST,
            "/api/v1/teams/{team}/workgroups/{workgroup}/models/{model}/versions/from-run",
            "createModelVersionFromRun",
            "Register the next version from a run's artifacts (lineage: the run and its commit)",
            Workgroup(W::Contributor),
            Json,
            post(models::create_version_from_run)
        )
        .answers(Answer::Created),
        route!(
            GET,
            "/api/v1/teams/{team}/workgroups/{workgroup}/models/{model}/versions/{version}",
            "getModelVersion",
            "A version (number or alias) and its files",
            Workgroup(W::Reader),
            Empty,
            get(models::get_version)
        ),
        route!(
            GET,
            "/api/v1/teams/{team}/workgroups/{workgroup}/models/{model}/versions/{version}/files/{*path}",
            "getModelFile",
            "A file of a version",
            Workgroup(W::Reader),
            Empty,
            get(models::get_file)
        )
        .answers(Answer::Bytes),
        route!(
            PUT,
            "/api/v1/teams/{team}/workgroups/{workgroup}/models/{model}/aliases/{alias}",
            "putModelAlias",
            "Point an alias at a version",
            Workgroup(W::Contributor),
            Json,
            put(models::put_alias)
        ),
        route!(
            DELETE,
            "/api/v1/teams/{team}/workgroups/{workgroup}/models/{model}/aliases/{alias}",
            "deleteModelAlias",
            "Remove an alias",
            Workgroup(W::Contributor),
            Empty,
            delete(models::delete_alias)
        ),
        route!(
            GET,
            "/api/v1/teams/{team}/workgroups/{workgroup}/manifests",
            "listManifests",
            "Manifests",
            Workgroup(W::Reader),
            Empty,
            get(manifests::list)
        ),
        route!(
            POST,
            "/api/v1/teams/{team}/workgroups/{workgroup}/manifests",
            "createManifest",
            "A manifest over a model version's files",
            Workgroup(W::Contributor),
            Json,
            post(manifests::create)
        )
        .answers(Answer::Created),
        route!(
            GET,
            "/api/v1/teams/{team}/workgroups/{workgroup}/manifests/{manifest}",
            "getManifest",
            "A manifest",
            Workgroup(W::Reader),
            Empty,
            get(manifests::get)
        ),
        route!(
            DELETE,
            "/api/v1/teams/{team}/workgroups/{workgroup}/manifests/{manifest}",
            "deleteManifest",
            "Delete a manifest no image records",
            Workgroup(W::Contributor),
            Empty,
            delete(manifests::delete)
        ),
        route!(
            GET,
            "/api/v1/teams/{team}/workgroups/{workgroup}/images",
            "listImages",
            "Images",
            Workgroup(W::Reader),
            Empty,
            get(images::list)
        ),
        route!(
            POST,
            "/api/v1/teams/{team}/workgroups/{workgroup}/images",
            "createImage",
            "Record an image (local store or registry) or build one from a manifest, pinned by digest",
            Workgroup(W::Contributor),
            Json,
            post(images::create)
        )
        .answers(Answer::Created),
        route!(
            GET,
            "/api/v1/teams/{team}/workgroups/{workgroup}/images/{image}",
            "getImage",
            "An image",
            Workgroup(W::Reader),
            Empty,
            get(images::get)
        ),
        route!(
            DELETE,
            "/api/v1/teams/{team}/workgroups/{workgroup}/images/{image}",
            "deleteImage",
            "Forget an image no deployment uses",
            Workgroup(W::Contributor),
            Empty,
            delete(images::delete)
        ),
    ]
}
