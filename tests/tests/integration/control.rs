//! The control plane through `kiln up`: the authorization matrix (every route of the served API
//! document x every role), hostile paths, bad input, and many writers at once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kiln_tests::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;

const WG: &str = "/api/v1/teams/t/workgroups/w";

/// Every operation and the access it must declare. A route added without a line here fails
/// `authorization_matrix`, as does a changed access.
const EXPECTED_ACCESS: &[(&str, &str)] = &[
    ("health", "open"),
    ("openapi", "open"),
    ("whoami", "user"),
    ("listTokens", "user"),
    ("createToken", "user"),
    ("revokeToken", "user"),
    ("listUsers", "admin"),
    ("createUser", "admin"),
    ("updateUser", "admin"),
    ("listUserTokens", "admin"),
    ("revokeUserToken", "admin"),
    ("listTeams", "user"),
    ("createTeam", "user"),
    ("getTeam", "team:member"),
    ("deleteTeam", "team:owner"),
    ("listTeamMembers", "team:member"),
    ("putTeamMember", "team:admin"),
    ("deleteTeamMember", "team:admin"),
    ("listWorkgroups", "team:member"),
    ("createWorkgroup", "team:admin"),
    ("getWorkgroup", "workgroup:reader"),
    ("deleteWorkgroup", "workgroup:owner"),
    ("getWorkgroupQuota", "workgroup:reader"),
    ("putWorkgroupQuota", "admin"),
    ("listWorkgroupMembers", "workgroup:reader"),
    ("putWorkgroupMember", "workgroup:owner"),
    ("deleteWorkgroupMember", "workgroup:owner"),
    ("listProjects", "workgroup:reader"),
    ("createProject", "workgroup:contributor"),
    ("getProject", "workgroup:reader"),
    ("deleteProject", "workgroup:contributor"),
    ("pushProject", "workgroup:contributor"),
    ("listCommits", "workgroup:reader"),
    ("getCommit", "workgroup:reader"),
    ("listExperiments", "workgroup:reader"),
    ("createExperiment", "workgroup:contributor"),
    ("getExperiment", "workgroup:reader"),
    ("deleteExperiment", "workgroup:contributor"),
    ("listRuns", "workgroup:reader"),
    ("submitRun", "workgroup:contributor"),
    ("getRun", "workgroup:reader"),
    ("listModels", "workgroup:reader"),
    ("createModel", "workgroup:contributor"),
    ("getModel", "workgroup:reader"),
    ("deleteModel", "workgroup:contributor"),
    ("listModelVersions", "workgroup:reader"),
    ("createModelVersion", "workgroup:contributor"),
    ("getModelVersion", "workgroup:reader"),
    ("getModelFile", "workgroup:reader"),
    ("putModelAlias", "workgroup:contributor"),
    ("deleteModelAlias", "workgroup:contributor"),
    ("listManifests", "workgroup:reader"),
    ("createManifest", "workgroup:contributor"),
    ("getManifest", "workgroup:reader"),
    ("deleteManifest", "workgroup:contributor"),
    ("listImages", "workgroup:reader"),
    ("createImage", "workgroup:contributor"),
    ("getImage", "workgroup:reader"),
    ("deleteImage", "workgroup:contributor"),
    ("listDeployments", "workgroup:reader"),
    ("createDeployment", "workgroup:contributor"),
    ("getDeployment", "workgroup:reader"),
    ("deleteDeployment", "workgroup:contributor"),
    ("regenerateDeploymentKey", "workgroup:contributor"),
    ("updateDeployment", "workgroup:contributor"),
    ("listEndpoints", "workgroup:reader"),
    ("createEndpoint", "workgroup:contributor"),
    ("getEndpoint", "workgroup:reader"),
    ("updateEndpoint", "workgroup:contributor"),
    ("deleteEndpoint", "workgroup:contributor"),
    ("regenerateEndpointKey", "workgroup:contributor"),
    ("listEndpointEvents", "workgroup:reader"),
    ("runtimeEndpoints", "runtime"),
    ("runtimeRollback", "runtime"),
    ("setDeploymentMonitoring", "workgroup:contributor"),
    ("getDeploymentDrift", "workgroup:reader"),
    ("listDeploymentEvents", "workgroup:reader"),
    ("listTargets", "workgroup:reader"),
    ("createTarget", "workgroup:owner"),
    ("getTarget", "workgroup:reader"),
    ("deleteTarget", "workgroup:owner"),
    ("listEnvironments", "workgroup:reader"),
    ("createEnvironment", "workgroup:contributor"),
    ("getEnvironment", "workgroup:reader"),
    ("deleteEnvironment", "workgroup:contributor"),
    ("runtimeDesired", "runtime"),
    ("runtimeReport", "runtime"),
    ("runtimeDrift", "runtime"),
    ("listWorkgroupRuns", "workgroup:reader"),
    ("getRunById", "workgroup:reader"),
    ("cancelRun", "workgroup:contributor"),
    ("getRunLogs", "workgroup:reader"),
    ("logRunBatch", "workgroup:contributor"),
    ("getRunMetricHistory", "workgroup:reader"),
    ("listRunArtifacts", "workgroup:reader"),
    ("putRunArtifact", "workgroup:contributor"),
    ("getRunArtifact", "workgroup:reader"),
    ("createModelVersionFromRun", "workgroup:contributor"),
    ("testTarget", "workgroup:reader"),
    ("mlflowGet", "workgroup:reader"),
    ("mlflowPost", "workgroup:reader"),
    ("mlflowDelete", "workgroup:contributor"),
    ("mlflowListArtifacts", "workgroup:reader"),
    ("mlflowGetArtifact", "workgroup:reader"),
    ("mlflowPutArtifact", "workgroup:contributor"),
];

/// Writes that an empty body does not make invalid, and what they answer: a cancel (accepted,
/// then refused as the run already ended), an empty batch, a target check, an MLflow search,
/// an artifact upload.
const VALID_EMPTY_WRITES: &[(&str, &[u16])] = &[
    ("setDeploymentMonitoring", &[200]),
    ("updateDeployment", &[200]),
    ("updateEndpoint", &[200]),
    ("cancelRun", &[202, 409]),
    ("logRunBatch", &[200]),
    ("testTarget", &[200]),
    ("updateUser", &[200]),
    ("putWorkgroupQuota", &[200]),
    ("mlflowPost", &[200]),
    ("mlflowPutArtifact", &[200]),
];

/// The order in which the allowed administrator finally runs each delete, children first.
const DELETE_ORDER: &[&str] = &[
    "mlflowDelete",
    "deleteModelAlias",
    "deleteWorkgroupMember",
    "deleteTeamMember",
    "deleteExperiment",
    "deleteProject",
    "deleteEndpoint",
    "deleteDeployment",
    "deleteImage",
    "deleteManifest",
    "deleteModel",
    "revokeToken",
    "revokeUserToken",
    "deleteEnvironment",
    "deleteTarget",
    "deleteWorkgroup",
    "deleteTeam",
];

/// Roles, and what each may do: `Some(true)` allowed, `Some(false)` refused while the resource
/// stays visible (403), `None` invisible (404). Unauthenticated callers get 401 everywhere but
/// open routes.
fn verdict(role: &str, access: &str) -> Option<bool> {
    // A runtime node's token: the runtime routes and nothing else (403 everywhere else).
    if role == "runtime" {
        return Some(matches!(access, "open" | "runtime"));
    }
    let rank = |list: &[&str], r: &str| list.iter().position(|x| *x == r);
    let team_roles = ["member", "admin", "owner"];
    let wg_roles = ["reader", "contributor", "owner"];
    let (team_role, wg_role): (Option<&str>, Option<&str>) = match role {
        "outsider" | "otherteam" => (None, None),
        // A team member whose role is in another work group of the team.
        "member" | "otherwg" => (Some("member"), None),
        "reader" => (Some("member"), Some("reader")),
        "contributor" => (Some("member"), Some("contributor")),
        "wgowner" => (Some("member"), Some("owner")),
        "tadmin" => (Some("admin"), Some("owner")),
        "owner" => (Some("owner"), Some("owner")),
        "admin" => (Some("owner"), Some("owner")),
        other => panic!("unknown role {other}"),
    };
    match access.split_once(':') {
        None => Some(match access {
            "open" | "user" => true,
            "admin" | "runtime" => role == "admin",
            other => panic!("unknown access {other}"),
        }),
        Some(("team", need)) => {
            let have = team_role?;
            Some(rank(&team_roles, have) >= rank(&team_roles, need))
        }
        Some(("workgroup", need)) => {
            let have = wg_role?;
            Some(rank(&wg_roles, have) >= rank(&wg_roles, need))
        }
        other => panic!("unknown access {other:?}"),
    }
}

struct Fixture {
    up: Up,
    tokens: BTreeMap<&'static str, String>,
    ids: Ids,
}

/// Ids the routes' paths need beyond names.
struct Ids {
    admin_token: String,
    reader_token: String,
    run: String,
    experiment: String,
}

fn user(up: &Up, admin: &str, name: &str) -> String {
    let created = up.ok(
        "POST",
        "/api/v1/users",
        admin,
        Some(&json!({ "name": name })),
    );
    created["token"]["token"].as_str().unwrap().to_string()
}

/// Team `t` with work group `w` holding project `p`, model `m` (version 1, alias `prod`), image
/// `img` and deployment `d`; team `t2` with `w2`; one user per role.
fn fixture(db: Database) -> Fixture {
    let dir = temp_dir("control");
    let args = db.args("matrix");
    let up = Up::start(&dir, &args.iter().map(String::as_str).collect::<Vec<_>>());
    let admin = up.admin();
    build_iris_image(&up.store());
    let mut tokens = BTreeMap::new();
    for name in [
        "owner",
        "tadmin",
        "member",
        "reader",
        "contributor",
        "wgowner",
        "outsider",
        "otherteam",
        "otherwg",
    ] {
        tokens.insert(name, user(&up, &admin, name));
    }
    tokens.insert("admin", admin.clone());
    let node = up.ok(
        "POST",
        "/api/v1/users",
        &admin,
        Some(&json!({ "name": "node", "runtime": true })),
    );
    tokens.insert(
        "runtime",
        node["token"]["token"].as_str().unwrap().to_string(),
    );
    let owner = tokens["owner"].clone();
    up.ok(
        "POST",
        "/api/v1/teams",
        &owner,
        Some(&json!({ "name": "t" })),
    );
    for (name, role) in [
        ("tadmin", "admin"),
        ("member", "member"),
        ("reader", "member"),
        ("contributor", "member"),
        ("wgowner", "member"),
        ("otherwg", "member"),
    ] {
        up.ok(
            "PUT",
            &format!("/api/v1/teams/t/members/{name}"),
            &owner,
            Some(&json!({ "role": role })),
        );
    }
    up.ok(
        "POST",
        "/api/v1/teams/t/workgroups",
        &owner,
        Some(&json!({ "name": "w" })),
    );
    for (name, role) in [
        ("reader", "reader"),
        ("contributor", "contributor"),
        ("wgowner", "owner"),
    ] {
        up.ok(
            "PUT",
            &format!("{WG}/members/{name}"),
            &owner,
            Some(&json!({ "role": role })),
        );
    }
    up.ok(
        "POST",
        "/api/v1/teams/t/workgroups",
        &owner,
        Some(&json!({ "name": "w3" })),
    );
    up.ok(
        "PUT",
        "/api/v1/teams/t/workgroups/w3/members/otherwg",
        &owner,
        Some(&json!({ "role": "owner" })),
    );
    let other = tokens["otherteam"].clone();
    up.ok(
        "POST",
        "/api/v1/teams",
        &other,
        Some(&json!({ "name": "t2" })),
    );
    up.ok(
        "POST",
        "/api/v1/teams/t2/workgroups",
        &other,
        Some(&json!({ "name": "w2" })),
    );

    up.ok(
        "POST",
        &format!("{WG}/projects"),
        &owner,
        Some(&json!({ "name": "p" })),
    );
    let pushed = call(
        "POST",
        &format!("{}{WG}/projects/p/commits?message=first", up.api),
        &[
            ("Authorization", &format!("Bearer {owner}")),
            ("Content-Type", "application/x-tar"),
        ],
        Some(&tar_of(&[("train.py", b"print('hi')")])),
    );
    assert_eq!(
        pushed.status,
        201,
        "{}",
        String::from_utf8_lossy(&pushed.body)
    );
    up.ok(
        "POST",
        &format!("{WG}/projects/p/experiments"),
        &owner,
        Some(&json!({ "name": "e", "script": "train.py" })),
    );
    let run = up.ok(
        "POST",
        &format!("{WG}/projects/p/experiments/e/runs"),
        &owner,
        Some(&json!({})),
    )["id"]
        .as_str()
        .unwrap()
        .to_string();
    let artifact = call(
        "PUT",
        &format!("{}{WG}/runs/{run}/artifacts/weights.json", up.api),
        &[("Authorization", &format!("Bearer {owner}"))],
        Some(b"[1, 2]"),
    );
    assert_eq!(
        artifact.status,
        201,
        "{}",
        String::from_utf8_lossy(&artifact.body)
    );
    let experiment = up.ok(
        "GET",
        &format!("{WG}/projects/p/mlflow/api/2.0/mlflow/runs/get?run_id={run}"),
        &owner,
        None,
    )["run"]["info"]["experiment_id"]
        .as_str()
        .unwrap()
        .to_string();
    up.ok(
        "POST",
        &format!("{WG}/models"),
        &owner,
        Some(&json!({ "name": "m" })),
    );
    let weights = std::fs::read(repo().join("examples/iris/model/weights.json")).unwrap();
    let reply = call(
        "POST",
        &format!("{}{WG}/models/m/versions", up.api),
        &[
            ("Authorization", &format!("Bearer {owner}")),
            ("Content-Type", "application/x-tar"),
        ],
        Some(&tar_of(&[("weights.json", &weights)])),
    );
    assert_eq!(
        reply.status,
        201,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    up.ok(
        "PUT",
        &format!("{WG}/models/m/aliases/prod"),
        &owner,
        Some(&json!({ "version": 1 })),
    );
    up.ok(
        "PUT",
        &format!("{WG}/models/m/aliases/staging"),
        &owner,
        Some(&json!({ "version": 1 })),
    );
    up.ok(
        "POST",
        &format!("{WG}/images"),
        &owner,
        Some(&json!({ "name": "img", "reference": "iris:1" })),
    );
    up.ok(
        "POST",
        &format!("{WG}/manifests"),
        &owner,
        Some(&json!({
            "name": "mf",
            "model": "m",
            "version": "prod",
            "manifest": "name = \"iris\"\nversion = \"1\"\n[scorer]\ncomponent = \"iris:1\"\n[model]\nfiles = [\"weights.json\"]\n",
        })),
    );
    up.ok(
        "POST",
        &format!("{WG}/deployments"),
        &owner,
        Some(&json!({ "name": "d", "image": "img" })),
    );
    up.ok(
        "POST",
        &format!("{WG}/endpoints"),
        &owner,
        Some(&json!({ "name": "ep", "traffic": { "d": 100 } })),
    );
    up.ok(
        "POST",
        &format!("{WG}/targets"),
        &owner,
        Some(&json!({ "name": "tg", "kind": "local", "config": { "interpreter": "python3" } })),
    );
    up.ok(
        "POST",
        &format!("{WG}/environments"),
        &owner,
        Some(&json!({ "name": "env", "targets": ["tg"] })),
    );
    let token = up.ok(
        "POST",
        "/api/v1/tokens",
        &admin,
        Some(&json!({ "name": "spare" })),
    );
    let reader_token = up.ok(
        "POST",
        "/api/v1/tokens",
        &tokens["reader"],
        Some(&json!({ "name": "spare" })),
    );
    Fixture {
        up,
        tokens,
        ids: Ids {
            admin_token: token["id"].as_str().unwrap().to_string(),
            reader_token: reader_token["id"].as_str().unwrap().to_string(),
            run,
            experiment,
        },
    }
}

/// A route's path with real names and ids in its parameters.
fn concrete(path: &str, op: &str, ids: &Ids) -> String {
    let run_artifacts = format!("{}/{}/artifacts", ids.experiment, ids.run);
    let path = match op {
        "mlflowGet" | "mlflowPost" => path.replace("{op}", "experiments/search"),
        "mlflowDelete" => path.replace("{op}", "registered-models/alias?name=m&alias=staging"),
        "mlflowListArtifacts" => format!("{path}?path={run_artifacts}"),
        "mlflowGetArtifact" | "mlflowPutArtifact" => {
            path.replace("{path}", &format!("{run_artifacts}/weights.json"))
        }
        "getRunMetricHistory" => path.replace("{key}", "loss"),
        // A spare token of the reader's, revoked through the admin route.
        "revokeUserToken" => path.replace("{token}", &ids.reader_token),
        _ => path.to_string(),
    };
    // Runs are addressed by id at the work group, by number in their experiment.
    let path = if path.contains("/workgroups/{workgroup}/runs/{run}") {
        path.replace("{run}", &ids.run)
    } else {
        path
    };
    path.replace("{team}", "t")
        .replace("{workgroup}", "w")
        .replace("{user}", "reader")
        .replace("{token}", &ids.admin_token)
        .replace("{project}", "p")
        .replace("{commit}", "main")
        .replace("{experiment}", "e")
        .replace("{number}", "1")
        .replace("{model}", "m")
        .replace("{version}", "1")
        .replace("{path}", "weights.json")
        .replace("{alias}", "prod")
        .replace("{image}", "img")
        .replace("{manifest}", "mf")
        .replace("{target}", "tg")
        .replace("{environment}", "env")
        .replace("{deployment}", "d")
        .replace("{endpoint}", "ep")
}

#[test]
fn authorization_matrix_sqlite() {
    authorization_matrix(Database::Sqlite);
}

#[test]
fn authorization_matrix_postgres() {
    authorization_matrix(Database::Postgres);
}

fn authorization_matrix(db: Database) {
    let Fixture { up, tokens, ids } = fixture(db);
    let document = up.api("GET", "/api/v1/openapi.json", None, None).json();
    let mut operations = Vec::new();
    for (path, methods) in document["paths"].as_object().unwrap() {
        for (method, operation) in methods.as_object().unwrap() {
            operations.push((
                method.to_uppercase(),
                path.clone(),
                operation["operationId"].as_str().unwrap().to_string(),
                operation["x-kiln-access"].as_str().unwrap().to_string(),
            ));
        }
    }
    // The document and this test's table name the same routes with the same access.
    let served: BTreeMap<String, String> = operations
        .iter()
        .map(|(_, _, op, access)| (op.clone(), access.clone()))
        .collect();
    let expected: BTreeMap<String, String> = EXPECTED_ACCESS
        .iter()
        .map(|(op, access)| (op.to_string(), access.to_string()))
        .collect();
    assert_eq!(
        served, expected,
        "every route needs an entry in EXPECTED_ACCESS"
    );
    for (method, _, op, _) in &operations {
        if method == "DELETE" {
            assert!(
                DELETE_ORDER.contains(&op.as_str()),
                "{op} needs a place in DELETE_ORDER"
            );
        }
    }

    let (mut checked, mut deferred) = (0, 0);
    for (method, path, op, access) in &operations {
        let url_path = concrete(path, op, &ids);
        // No token at all.
        let reply = up.api(method, &url_path, None, None);
        if access == "open" {
            assert_eq!(reply.status, 200, "{op} open");
        } else {
            assert_eq!(
                reply.status,
                401,
                "{op} without a token: {}",
                String::from_utf8_lossy(&reply.body)
            );
            assert_eq!(reply.header("www-authenticate"), Some("Bearer"), "{op}");
        }
        for (role, token) in &tokens {
            let allowed = verdict(role, access);
            if method == "DELETE" && allowed == Some(true) {
                deferred += 1;
                continue; // run once, in order, below
            }
            let body = if ["POST", "PUT", "PATCH"].contains(&method.as_str()) {
                Some(json!({}))
            } else {
                None
            };
            let reply = up.api(method, &url_path, Some(token), body.as_ref());
            let text = String::from_utf8_lossy(&reply.body).to_string();
            match allowed {
                None => assert_eq!(reply.status, 404, "{op} as {role}: {text}"),
                Some(false) => assert_eq!(reply.status, 403, "{op} as {role}: {text}"),
                Some(true) if method == "GET" => {
                    assert_eq!(reply.status, 200, "{op} as {role}: {text}")
                }
                // Writes get an empty body: past authorization, it is refused as input (or,
                // where every field has a default, accepted).
                Some(true) => {
                    let valid = VALID_EMPTY_WRITES
                        .iter()
                        .find(|(o, _)| o == op)
                        .map_or(&[201, 400, 415][..], |(_, replies)| replies);
                    assert!(
                        valid.contains(&reply.status),
                        "{op} as {role}: {} {text}",
                        reply.status
                    )
                }
            }
            assert!(
                (200..300).contains(&reply.status) || reply.json()["error"].is_string(),
                "{op} as {role}: {text}"
            );
            checked += 1;
        }
    }
    for op in DELETE_ORDER {
        let (method, path, _, _) = operations.iter().find(|(_, _, o, _)| o == op).unwrap();
        let reply = up.api(
            method,
            &concrete(path, op, &ids),
            Some(&tokens["admin"]),
            None,
        );
        assert_eq!(
            reply.status,
            200,
            "{op} as admin: {}",
            String::from_utf8_lossy(&reply.body)
        );
        checked += 1;
    }
    // Every route was tried by every role (deletes by the allowed ones once, at the end).
    assert_eq!(
        checked + deferred,
        operations.len() * tokens.len() + DELETE_ORDER.len()
    );
    assert!(operations.len() >= 69 && tokens.len() == 11);
    // Every answer above was checked against the served document (`Up::api` does it), and
    // every read that answers JSON answered at least once, inside its schema.
    let contract = up.contract().expect("the served document");
    assert_eq!(contract.unchecked_reads(), Vec::<String>::new());
    assert!(contract.checked() >= 60, "{}", contract.checked());
}

#[test]
fn hostile_paths_and_bad_input_sqlite() {
    hostile_paths_and_bad_input(Database::Sqlite);
}

#[test]
fn hostile_paths_and_bad_input_postgres() {
    hostile_paths_and_bad_input(Database::Postgres);
}

/// Hostile paths and bad input are refused with clear errors, and nothing is written outside
/// the store.
fn hostile_paths_and_bad_input(db: Database) {
    let dir = temp_dir("control-hostile");
    let args = db.args("hostile");
    let up = Up::start(&dir, &args.iter().map(String::as_str).collect::<Vec<_>>());
    let admin = up.admin();
    up.ok(
        "POST",
        "/api/v1/teams",
        &admin,
        Some(&json!({ "name": "t" })),
    );
    up.ok(
        "POST",
        "/api/v1/teams/t/workgroups",
        &admin,
        Some(&json!({ "name": "w" })),
    );
    up.ok(
        "POST",
        &format!("{WG}/models"),
        &admin,
        Some(&json!({ "name": "m" })),
    );
    // A bad query string is refused with a JSON error, like a bad body.
    for (query, says) in [
        ("runs?status=bogus", "unknown variant `bogus`"),
        ("runs?limit=many", "limit"),
        ("models?colour=red", "unknown field `colour`"),
        ("runs/x/logs?offset=-1", "offset"),
    ] {
        let reply = up.api("GET", &format!("{WG}/{query}"), Some(&admin), None);
        assert_eq!(reply.status, 400, "{query}");
        assert!(reply.error().contains(says), "{query}: {}", reply.error());
    }
    let upload = |files: &[(&str, &[u8])]| {
        call(
            "POST",
            &format!("{}{WG}/models/m/versions", up.api),
            &[
                ("Authorization", &format!("Bearer {admin}")),
                ("Content-Type", "application/x-tar"),
            ],
            Some(&tar_of(files)),
        )
    };
    for path in kiln_control::names::HOSTILE_PATHS
        .iter()
        .filter(|p| !p.is_empty())
    {
        let reply = upload(&[("ok.txt", b"fine"), (path, b"escaped")]);
        assert_eq!(
            reply.status,
            400,
            "{path}: {}",
            String::from_utf8_lossy(&reply.body)
        );
        assert!(
            reply.error().contains("invalid path"),
            "{path}: {}",
            reply.error()
        );
    }
    // Nothing escaped, nothing was kept: no version, no artifact at all.
    let versions = up.ok("GET", &format!("{WG}/models/m/versions"), &admin, None);
    assert_eq!(versions["items"], json!([]));
    let mut found = Vec::new();
    fn walk(dir: &std::path::Path, found: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, found);
            } else {
                found.push(path.display().to_string());
            }
        }
    }
    walk(&dir.join("artifacts"), &mut found);
    assert_eq!(
        found,
        Vec::<String>::new(),
        "artifacts written by refused uploads"
    );
    for leaked in ["escape.txt", "escaped"] {
        assert!(!dir.join(leaked).exists() && !dir.parent().unwrap().join(leaked).exists());
    }

    // A good upload, then reads of hostile file paths.
    let reply = upload(&[("weights/w.bin", b"1234")]);
    assert_eq!(
        reply.status,
        201,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let bearer = format!("Bearer {admin}");
    let file = call(
        "GET",
        &format!("{}{WG}/models/m/versions/1/files/weights/w.bin", up.api),
        &[("Authorization", &bearer)],
        None,
    );
    assert_eq!(
        (file.status, file.body.as_slice()),
        (200, b"1234".as_slice())
    );
    for path in [
        "..%2f..%2fkiln.db",
        "%2e%2e/%2e%2e/kiln.db",
        "weights%5c..%5ckiln.db",
        "%252e%252e/kiln.db",
    ] {
        let reply = call(
            "GET",
            &format!("{}{WG}/models/m/versions/1/files/{path}", up.api),
            &[("Authorization", &bearer)],
            None,
        );
        assert!(
            [400, 404].contains(&reply.status),
            "{path}: {}",
            reply.status
        );
        assert!(
            !reply.body.starts_with(b"SQLite"),
            "{path} read the database"
        );
    }

    // Bad input: clear 4xx with a JSON error.
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, Vec<u8>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            "/api/v1/teams",
            vec![("Content-Type", "application/json")],
            b"{\"name\": \"t\"}".to_vec(),
            409,
            "team 't' already exists",
        ),
        (
            "/api/v1/teams",
            vec![("Content-Type", "application/json")],
            b"{\"name\": \"Bad Name\"}".to_vec(),
            400,
            "invalid team name",
        ),
        (
            "/api/v1/teams",
            vec![("Content-Type", "application/json")],
            b"{\"name\": \"x\", \"owner\": \"me\"}".to_vec(),
            400,
            "unknown field `owner`",
        ),
        (
            "/api/v1/teams",
            vec![("Content-Type", "application/json")],
            b"{\"name\": ".to_vec(),
            400,
            "EOF",
        ),
        (
            "/api/v1/teams",
            vec![("Content-Type", "text/plain")],
            b"{\"name\": \"y\"}".to_vec(),
            415,
            "application/json",
        ),
        (
            "/api/v1/teams",
            vec![("Content-Type", "application/json")],
            [
                b"{\"name\": \"z\", \"description\": \"".as_slice(),
                &vec![b'a'; 2 << 20],
                b"\"}",
            ]
            .concat(),
            413,
            "too large",
        ),
    ];
    for (path, mut headers, body, status, message) in cases {
        headers.push(("Authorization", &bearer));
        // A server that refuses an oversized body may close the connection while the client is
        // still sending it; the client then sees a broken pipe instead of the answer. Retry.
        let reply = (0..5)
            .find_map(|_| try_call("POST", &format!("{}{path}", up.api), &headers, Some(&body)))
            .expect("no answer in five tries");
        assert_eq!(
            reply.status,
            status,
            "{message}: {}",
            String::from_utf8_lossy(&reply.body)
        );
        assert!(
            reply.error().contains(message),
            "{message}: {}",
            reply.error()
        );
    }
    // Every other path-like field gets the same list: pushed project trees, experiment scripts,
    // manifest files.
    up.ok(
        "POST",
        &format!("{WG}/projects"),
        &admin,
        Some(&json!({ "name": "p" })),
    );
    for path in kiln_control::names::HOSTILE_PATHS
        .iter()
        .filter(|p| !p.is_empty())
    {
        let reply = call(
            "POST",
            &format!("{}{WG}/projects/p/commits", up.api),
            &[
                ("Authorization", &bearer),
                ("Content-Type", "application/x-tar"),
            ],
            Some(&tar_of(&[("ok.py", b"x"), (path, b"escaped")])),
        );
        assert_eq!(
            reply.status,
            400,
            "push {path}: {}",
            String::from_utf8_lossy(&reply.body)
        );
        let reply = up.api(
            "POST",
            &format!("{WG}/projects/p/experiments"),
            Some(&admin),
            Some(&json!({ "name": "e", "script": path })),
        );
        assert_eq!(reply.status, 400, "script {path}");
        let manifest = format!(
            "name = \"m\"\nversion = \"1\"\n[scorer]\ncomponent = \"iris:1\"\n[model]\nfiles = [\"{}\"]\n",
            path.replace('\\', "\\\\")
        );
        let reply = up.api(
            "POST",
            &format!("{WG}/manifests"),
            Some(&admin),
            Some(&json!({ "name": "mf", "model": "m", "version": "1", "manifest": manifest })),
        );
        assert_eq!(
            reply.status,
            400,
            "manifest {path}: {}",
            String::from_utf8_lossy(&reply.body)
        );
    }
    let log = up.ok("GET", &format!("{WG}/projects/p/commits"), &admin, None);
    assert_eq!(log["items"], json!([]), "no refused push left a commit");
    let reply = up.api(
        "POST",
        &format!("{WG}/deployments"),
        Some(&admin),
        Some(&json!({ "name": "d", "image": "x", "scale": { "min_instances": 3, "max_instances": 2 } })),
    );
    assert_eq!(reply.status, 400);
    assert!(
        reply
            .error()
            .contains("min_instances must not exceed max_instances"),
        "{}",
        reply.error()
    );

    // The Host check: a rebinding or cross-site request is refused.
    let reply = call(
        "GET",
        &format!("{}/api/v1/whoami", up.api),
        &[("Authorization", &bearer), ("Host", "evil.example")],
        None,
    );
    assert_eq!(reply.status, 403);
    let reply = call(
        "GET",
        &format!("{}/api/v1/whoami", up.api),
        &[
            ("Authorization", &bearer),
            ("Origin", "http://evil.example"),
        ],
        None,
    );
    assert_eq!(reply.status, 403);
    // Tokens: revoked and expired ones stop working.
    let spare = up.ok(
        "POST",
        "/api/v1/tokens",
        &admin,
        Some(&json!({ "name": "spare" })),
    );
    let spare_token = spare["token"].as_str().unwrap();
    assert_eq!(
        up.api("GET", "/api/v1/whoami", Some(spare_token), None)
            .status,
        200
    );
    up.ok(
        "DELETE",
        &format!("/api/v1/tokens/{}", spare["id"].as_str().unwrap()),
        &admin,
        None,
    );
    assert_eq!(
        up.api("GET", "/api/v1/whoami", Some(spare_token), None)
            .status,
        401
    );
    let listed = up.ok("GET", "/api/v1/tokens", &admin, None);
    assert!(
        !listed.to_string().contains(spare_token),
        "token values are never listed"
    );
}

#[test]
fn many_writers_sqlite() {
    many_writers(Database::Sqlite);
}

#[test]
fn many_writers_postgres() {
    many_writers(Database::Postgres);
}

/// Many writers at once: no "database is locked", no lost write, versions without gaps.
fn many_writers(db: Database) {
    let dir = temp_dir("control-writers");
    let args = db.args("writers");
    let up = Up::start(&dir, &args.iter().map(String::as_str).collect::<Vec<_>>());
    let admin = up.admin();
    up.ok(
        "POST",
        "/api/v1/teams",
        &admin,
        Some(&json!({ "name": "t" })),
    );
    up.ok(
        "POST",
        "/api/v1/teams/t/workgroups",
        &admin,
        Some(&json!({ "name": "w" })),
    );
    up.ok(
        "POST",
        &format!("{WG}/models"),
        &admin,
        Some(&json!({ "name": "m" })),
    );
    let (threads, each) = (8, 12);
    std::thread::scope(|s| {
        for t in 0..threads {
            let (up, admin) = (&up, &admin);
            s.spawn(move || {
                for i in 0..each {
                    up.ok(
                        "POST",
                        &format!("{WG}/projects"),
                        admin,
                        Some(&json!({ "name": format!("p{t}-{i}") })),
                    );
                    let reply = call(
                        "POST",
                        &format!("{}{WG}/models/m/versions", up.api),
                        &[
                            ("Authorization", &format!("Bearer {admin}")),
                            ("Content-Type", "application/x-tar"),
                        ],
                        Some(&tar_of(&[("f.txt", format!("{t}-{i}").as_bytes())])),
                    );
                    assert_eq!(
                        reply.status,
                        201,
                        "{}",
                        String::from_utf8_lossy(&reply.body)
                    );
                }
            });
        }
    });
    let projects = up.ok("GET", &format!("{WG}/projects?limit=1000"), &admin, None);
    assert_eq!(projects["items"].as_array().unwrap().len(), threads * each);
    let versions = up.ok("GET", &format!("{WG}/models/m/versions"), &admin, None);
    let numbers: Vec<i64> = versions["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    assert_eq!(
        numbers,
        (1..=(threads * each) as i64).collect::<Vec<_>>(),
        "versions are numbered without gaps or repeats"
    );
    assert!(!up.log().contains("database is locked"), "{}", up.log());
    // Pagination walks every project exactly once.
    let mut seen = Vec::new();
    let mut after = String::new();
    loop {
        let page = up.ok(
            "GET",
            &format!("{WG}/projects?limit=7&after={after}"),
            &admin,
            None,
        );
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["name"].as_str().unwrap().to_string()),
        );
        match page["next"].as_str() {
            Some(next) => after = next.to_string(),
            None => break,
        }
    }
    assert_eq!(seen.len(), threads * each);
    let _: Value = json!(seen);
}

#[test]
fn acknowledged_writes_survive_kill_9_sqlite() {
    acknowledged_writes_survive_kill_9(Database::Sqlite);
}

#[test]
fn acknowledged_writes_survive_kill_9_postgres() {
    acknowledged_writes_survive_kill_9(Database::Postgres);
}

/// `kill -9` in the middle of a stream of writes, then a restart on the same data: every
/// acknowledged write is there, and SQLite's integrity check passes.
fn acknowledged_writes_survive_kill_9(db: Database) {
    let dir = temp_dir("control-crash");
    let args = db.args("crash");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut up = Up::start(&dir, &args);
    let admin = up.admin();
    up.ok(
        "POST",
        "/api/v1/teams",
        &admin,
        Some(&json!({ "name": "t" })),
    );
    up.ok(
        "POST",
        "/api/v1/teams/t/workgroups",
        &admin,
        Some(&json!({ "name": "w" })),
    );
    let acknowledged = std::sync::Mutex::new(Vec::new());
    let api = up.api.clone();
    std::thread::scope(|s| {
        for writer in 0..4 {
            let (acknowledged, api, admin) = (&acknowledged, &api, &admin);
            s.spawn(move || {
                for i in 0.. {
                    let name = format!("p{writer}-{i}");
                    let body = serde_json::to_vec(&json!({ "name": name })).unwrap();
                    let reply = try_call(
                        "POST",
                        &format!("{api}{WG}/projects"),
                        &[
                            ("Authorization", &format!("Bearer {admin}")),
                            ("Content-Type", "application/json"),
                        ],
                        Some(&body),
                    );
                    match reply {
                        Some(reply) if reply.status == 201 => {
                            acknowledged.lock().unwrap().push(name)
                        }
                        _ => break, // the server is gone
                    }
                }
            });
        }
        while acknowledged.lock().unwrap().len() < 60 {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        up.kill();
    });
    let acknowledged = acknowledged.into_inner().unwrap();
    if matches!(db, Database::Sqlite) {
        let output = std::process::Command::new("python3")
            .args([
                "-c",
                "import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute('PRAGMA integrity_check').fetchone()[0])",
                dir.join("kiln.db").to_str().unwrap(),
            ])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&output.stdout).trim(),
            "ok",
            "{output:?}"
        );
    }
    let up = Up::start(&dir, &args);
    assert!(
        up.admin_token.is_none(),
        "the bootstrap token is printed on the first start only"
    );
    let listed = up.ok("GET", &format!("{WG}/projects?limit=1000"), &admin, None);
    let present: std::collections::BTreeSet<String> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    for name in &acknowledged {
        assert!(present.contains(name), "acknowledged write {name} was lost");
    }
    assert!(acknowledged.len() >= 60);
}

#[test]
fn environment_secrets_are_sealed_never_returned_and_used_for_pulls() {
    let registry = RegistryServer::start(Some(("kiln", "s3cret-pw")));
    let dir = temp_dir("control-secrets");
    let up = Up::start(&dir, &[]);
    let admin = up.admin();
    build_iris_image(&up.store());
    let remote = format!("{}/models/iris:1", registry.addr);
    let (status, output) = run_kiln(&[
        "push",
        "iris:1",
        &remote,
        "--store",
        up.store().to_str().unwrap(),
        "--username",
        "kiln",
        "--password",
        "s3cret-pw",
    ]);
    assert!(status.success(), "{output}");
    up.ok(
        "POST",
        "/api/v1/teams",
        &admin,
        Some(&json!({ "name": "t" })),
    );
    up.ok(
        "POST",
        "/api/v1/teams/t/workgroups",
        &admin,
        Some(&json!({ "name": "w" })),
    );

    let anonymous = up.api(
        "POST",
        &format!("{WG}/images"),
        Some(&admin),
        Some(&json!({ "name": "remote", "reference": remote })),
    );
    assert_eq!(anonymous.status, 400);
    assert!(
        anonymous.error().contains("not authorized"),
        "{}",
        anonymous.error()
    );

    let bad_target = up.api(
        "POST",
        &format!("{WG}/targets"),
        Some(&admin),
        Some(&json!({ "name": "d", "kind": "docker", "config": { "memory": "1g" } })),
    );
    assert_eq!(bad_target.status, 400);
    assert!(
        bad_target
            .error()
            .contains("unknown docker target setting 'memory'"),
        "{}",
        bad_target.error()
    );
    up.ok(
        "POST",
        &format!("{WG}/targets"),
        &admin,
        Some(&json!({ "name": "docker", "kind": "docker", "config": { "image": "python:3.11", "memory_mb": 2048 } })),
    );
    let created = up.ok(
        "POST",
        &format!("{WG}/environments"),
        &admin,
        Some(&json!({
            "name": "prod",
            "registry": { "host": registry.addr, "username": "kiln", "password": "s3cret-pw" },
            "targets": ["docker"],
            "artifact_store": "file:///srv/artifacts",
        })),
    );
    assert_eq!(created["registry"]["password"], "set");
    let shown = up.ok("GET", &format!("{WG}/environments/prod"), &admin, None);
    let listed = up.ok("GET", &format!("{WG}/environments"), &admin, None);
    for text in [created.to_string(), shown.to_string(), listed.to_string()] {
        assert!(!text.contains("s3cret-pw"), "a secret came back: {text}");
    }
    // At rest, only the sealed form exists.
    for file in ["kiln.db", "kiln.db-wal"] {
        if let Ok(bytes) = std::fs::read(dir.join(file)) {
            assert!(
                !bytes.windows(9).any(|w| w == b"s3cret-pw"),
                "{file} holds the password in the clear"
            );
        }
    }
    let image = up.ok(
        "POST",
        &format!("{WG}/images"),
        &admin,
        Some(&json!({ "name": "remote", "reference": remote, "environment": "prod" })),
    );
    assert_eq!(image["registry"], json!(registry.addr));
    up.ok(
        "POST",
        &format!("{WG}/deployments"),
        &admin,
        Some(&json!({ "name": "remote", "image": "remote", "public": true })),
    );
    let status = up.wait_deployment(&admin, &format!("{WG}/deployments/remote"));
    assert_eq!(status["status"], "ready", "{status}");
}

#[test]
fn a_runtime_node_serves_what_the_control_plane_wants() {
    let dir = temp_dir("control-node");
    let up = Up::start(&dir, &[]);
    let admin = up.admin();
    build_iris_image(&up.store());
    up.ok(
        "POST",
        "/api/v1/teams",
        &admin,
        Some(&json!({ "name": "t" })),
    );
    up.ok(
        "POST",
        "/api/v1/teams/t/workgroups",
        &admin,
        Some(&json!({ "name": "w" })),
    );
    up.ok(
        "POST",
        &format!("{WG}/images"),
        &admin,
        Some(&json!({ "name": "img", "reference": "iris:1" })),
    );
    let created = up.ok(
        "POST",
        &format!("{WG}/deployments"),
        &admin,
        Some(&json!({ "name": "node-iris", "image": "img" })),
    );
    let key = created["keys"]["secondary"].as_str().unwrap().to_string();
    // The node holds a runtime user's token, not an admin's: it can do what a node needs
    // (read desired state, report status and drift) and nothing else.
    let node_token = up.ok(
        "POST",
        "/api/v1/users",
        &admin,
        Some(&json!({ "name": "node-1", "runtime": true })),
    )["token"]["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        up.api("GET", "/api/v1/teams", Some(&node_token), None)
            .status,
        403
    );
    assert_eq!(
        up.api("GET", "/api/v1/users", Some(&node_token), None)
            .status,
        403
    );
    let node = Server::start(&[
        "--control",
        &up.api,
        "--token",
        &node_token,
        "--store",
        up.store().to_str().unwrap(),
    ]);
    let body = serde_json::to_vec(&v2_fp32("input", &[1, 4], &IRIS_ROWS[0])).unwrap();
    let bearer = format!("Bearer {key}");
    let infer = |headers: &[(&str, &str)]| node.post("/v2/models/node-iris/infer", headers, &body);
    let with_key = [
        ("Content-Type", "application/json"),
        ("Authorization", bearer.as_str()),
    ];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while infer(&with_key).status != 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "the node never served it:\n{}",
            node.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(infer(&[("Content-Type", "application/json")]).status, 401);

    // An endpoint routes on the node too, with its own key, to the deployment it weighs.
    let endpoint = up.ok(
        "POST",
        &format!("{WG}/endpoints"),
        &admin,
        Some(&json!({ "name": "node-flowers" })),
    );
    let endpoint_bearer = format!("Bearer {}", endpoint["keys"]["primary"].as_str().unwrap());
    up.ok(
        "PATCH",
        &format!("{WG}/endpoints/node-flowers"),
        &admin,
        Some(&json!({ "traffic": { "node-iris": 100 } })),
    );
    let through_endpoint = |bearer: &str| {
        node.post(
            "/v2/models/node-flowers/infer",
            &[
                ("Content-Type", "application/json"),
                ("Authorization", bearer),
            ],
            &body,
        )
    };
    let reply = loop {
        let reply = through_endpoint(&endpoint_bearer);
        if reply.status == 200 {
            break reply;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the node never routed the endpoint ({}):\n{}",
            reply.status,
            node.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(reply.header("kiln-deployment"), Some("node-iris"));
    assert_eq!(
        reply.json()["outputs"][0]["data"],
        json!([0]),
        "{}",
        reply.json()
    );
    // The deployment's key is not the endpoint's.
    assert_eq!(through_endpoint(&bearer).status, 401);
    up.ok(
        "DELETE",
        &format!("{WG}/endpoints/node-flowers"),
        &admin,
        None,
    );
    while through_endpoint(&endpoint_bearer).status != 404 {
        assert!(
            std::time::Instant::now() < deadline,
            "the node kept routing a deleted endpoint"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }

    up.ok(
        "DELETE",
        &format!("{WG}/deployments/node-iris"),
        &admin,
        None,
    );
    while infer(&with_key).status != 404 {
        assert!(
            std::time::Instant::now() < deadline,
            "the node kept serving a deleted deployment"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        node.log().contains("runtime node of the control plane"),
        "{}",
        node.log()
    );
}

#[test]
fn two_processes_starting_together_sqlite() {
    two_processes_starting_together(Database::Sqlite);
}

#[test]
fn two_processes_starting_together_postgres() {
    two_processes_starting_together(Database::Postgres);
}

/// Two control planes starting at once on one new database: both come up, the migrations and the
/// bootstrap happen once, and both serve the same data.
fn two_processes_starting_together(db: Database) {
    let dir = temp_dir("control-together");
    let args = db.args("together");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (a, b) = std::thread::scope(|s| {
        let first = s.spawn(|| Up::start(&dir, &args));
        let second = s.spawn(|| Up::start(&dir, &args));
        (first.join().unwrap(), second.join().unwrap())
    });
    let tokens: Vec<String> = [&a, &b]
        .iter()
        .filter_map(|up| up.admin_token.clone())
        .collect();
    assert_eq!(
        tokens.len(),
        1,
        "one bootstrap token:\n{}\n{}",
        a.log(),
        b.log()
    );
    let admin = &tokens[0];
    a.ok(
        "POST",
        "/api/v1/teams",
        admin,
        Some(&json!({ "name": "shared" })),
    );
    let listed = b.ok("GET", "/api/v1/teams", admin, None);
    assert_eq!(listed["items"][0]["name"], "shared");
    for up in [&a, &b] {
        assert!(!up.log().contains("migration failed"), "{}", up.log());
    }
}

#[test]
fn a_deployment_that_cannot_start_fails_alone_with_its_reason() {
    let dir = temp_dir("control-failing");
    let up = Up::start(&dir, &[]);
    let admin = up.admin();
    build_iris_image(&up.store());
    up.ok(
        "POST",
        "/api/v1/teams",
        &admin,
        Some(&json!({ "name": "t" })),
    );
    up.ok(
        "POST",
        "/api/v1/teams/t/workgroups",
        &admin,
        Some(&json!({ "name": "w" })),
    );
    up.ok(
        "POST",
        &format!("{WG}/images"),
        &admin,
        Some(&json!({ "name": "img", "reference": "iris:1" })),
    );
    // One MiB of linear memory is too little for the iris scorer to load.
    up.ok(
        "POST",
        &format!("{WG}/deployments"),
        &admin,
        Some(&json!({ "name": "starved", "image": "img", "public": true, "limits": { "memory_mb": 1 } })),
    );
    up.ok(
        "POST",
        &format!("{WG}/deployments"),
        &admin,
        Some(&json!({ "name": "healthy", "image": "img", "public": true })),
    );
    let starved = up.wait_deployment(&admin, &format!("{WG}/deployments/starved"));
    assert_eq!(starved["status"], "failed", "{starved}");
    let reason = starved["reason"].as_str().unwrap().to_string();
    assert!(!reason.is_empty());
    let healthy = up.wait_deployment(&admin, &format!("{WG}/deployments/healthy"));
    assert_eq!(healthy["status"], "ready", "{healthy}");
    let body = serde_json::to_vec(&v2_fp32("input", &[1, 4], &IRIS_ROWS[0])).unwrap();
    let headers = [("Content-Type", "application/json")];
    let ok = call(
        "POST",
        &format!("{}/v2/models/healthy/infer", up.base),
        &headers,
        Some(&body),
    );
    assert_eq!(ok.status, 200);
    let refused = call(
        "POST",
        &format!("{}/v2/models/starved/infer", up.base),
        &headers,
        Some(&body),
    );
    assert_eq!(refused.status, 503);
    assert!(refused.error().contains("not ready"), "{}", refused.error());

    // A deployment row whose settings are corrupt in the store fails alone too: the node
    // still learns every other deployment, new ones included (in another work group: the
    // corrupt row's own cannot have its quota counted).
    let corrupted = std::process::Command::new("python3")
        .args([
            "-c",
            "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); \
             c.execute(\"UPDATE deployments SET settings = 'not json', generation = generation + 1 WHERE name = 'starved'\"); \
             c.commit()",
            dir.join("kiln.db").to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(corrupted.success());
    let other = "/api/v1/teams/t/workgroups/w2";
    up.ok(
        "POST",
        "/api/v1/teams/t/workgroups",
        &admin,
        Some(&json!({ "name": "w2" })),
    );
    up.ok(
        "POST",
        &format!("{other}/images"),
        &admin,
        Some(&json!({ "name": "img", "reference": "iris:1" })),
    );
    up.ok(
        "POST",
        &format!("{other}/deployments"),
        &admin,
        Some(&json!({ "name": "late", "image": "img", "public": true })),
    );
    let late = up.wait_deployment(&admin, &format!("{other}/deployments/late"));
    assert_eq!(late["status"], "ready", "{late}");
    for name in ["healthy", "late"] {
        let answer = call(
            "POST",
            &format!("{}/v2/models/{name}/infer", up.base),
            &headers,
            Some(&body),
        );
        assert_eq!(answer.status, 200, "{name}: {}", answer.error());
    }
    let show = up.api(
        "GET",
        &format!("{WG}/deployments/starved"),
        Some(&admin),
        None,
    );
    // Its show is the store's corruption, logged on the server; the node stopped serving it.
    assert_eq!(show.status, 500);
    let gone = call(
        "POST",
        &format!("{}/v2/models/starved/infer", up.base),
        &headers,
        Some(&body),
    );
    assert_eq!(gone.status, 404, "{}", gone.error());
    let log = up.log_with("do not parse");
    assert!(log.contains("do not parse"), "the server logs why: {log}");
}

#[test]
fn artifacts_go_to_an_s3_compatible_store_and_other_clouds_are_accepted() {
    let s3 = S3Server::start("kiln-artifacts");
    let dir = temp_dir("control-s3");
    let env = s3.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let up = Up::start_with_env(&dir, &["--artifacts", "s3://kiln-artifacts/team-a"], &env);
    let admin = up.admin();
    up.ok(
        "POST",
        "/api/v1/teams",
        &admin,
        Some(&json!({ "name": "t" })),
    );
    up.ok(
        "POST",
        "/api/v1/teams/t/workgroups",
        &admin,
        Some(&json!({ "name": "w" })),
    );
    up.ok(
        "POST",
        &format!("{WG}/models"),
        &admin,
        Some(&json!({ "name": "m" })),
    );
    let weights = std::fs::read(repo().join("examples/iris/model/weights.json")).unwrap();
    let bearer = format!("Bearer {admin}");
    let reply = call(
        "POST",
        &format!("{}{WG}/models/m/versions", up.api),
        &[
            ("Authorization", &bearer),
            ("Content-Type", "application/x-tar"),
        ],
        Some(&tar_of(&[("weights.json", &weights)])),
    );
    assert_eq!(
        reply.status,
        201,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let file = call(
        "GET",
        &format!("{}{WG}/models/m/versions/1/files/weights.json", up.api),
        &[("Authorization", &bearer)],
        None,
    );
    assert_eq!((file.status, &file.body), (200, &weights));
    // The object is in the bucket, under the prefix; nothing went to a local directory.
    let mut objects = Vec::new();
    fn walk(dir: &std::path::Path, found: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if entry.path().is_dir() {
                walk(&entry.path(), found);
            } else {
                found.push(entry.path().display().to_string());
            }
        }
    }
    walk(&s3.dir.join("kiln-artifacts/team-a/models"), &mut objects);
    assert!(
        objects.iter().any(|o| o.contains("weights.json")),
        "{objects:?}"
    );
    assert!(!dir.join("artifacts").exists());

    // Azure Blob and GCS URLs are accepted by configuration (credentials from the environment).
    let azure = Up::start_with_env(
        &temp_dir("control-azure"),
        &["--artifacts", "az://models/prefix"],
        &[("AZURE_STORAGE_USE_EMULATOR", "true")],
    );
    assert_eq!(azure.api("GET", "/api/v1/health", None, None).status, 200);
    let (status, output) = run_kiln(&[
        "up",
        "--data-dir",
        temp_dir("control-ftp").to_str().unwrap(),
        "--artifacts",
        "ftp://example.com/x",
        "--api-addr",
        "127.0.0.1:0",
        "--addr",
        "127.0.0.1:0",
        "--metrics-addr",
        "127.0.0.1:0",
    ]);
    assert!(!status.success());
    assert!(output.contains("unknown scheme 'ftp'"), "{output}");
}

/// Admin-created team `t` with work groups `a` and `b` on a fresh `kiln up`.
fn two_workgroups(tag: &str) -> (Up, String) {
    with_two_workgroups(Up::start(&temp_dir(tag), &[]))
}

/// Team `t` with work groups `a` and `b` on `up`, and the admin's token.
fn with_two_workgroups(up: Up) -> (Up, String) {
    let admin = up.admin();
    up.ok(
        "POST",
        "/api/v1/teams",
        &admin,
        Some(&json!({ "name": "t" })),
    );
    for wg in ["a", "b"] {
        up.ok(
            "POST",
            "/api/v1/teams/t/workgroups",
            &admin,
            Some(&json!({ "name": wg })),
        );
    }
    (up, admin)
}

#[test]
fn stolen_tokens_are_contained_by_revoking_and_disabling() {
    let (up, admin) = two_workgroups("control-tokens");
    let created = up.ok(
        "POST",
        "/api/v1/users",
        &admin,
        Some(&json!({ "name": "eve" })),
    );
    let first = created["token"]["token"].as_str().unwrap().to_string();
    let whoami = |token: &str| up.api("GET", "/api/v1/whoami", Some(token), None);
    let mint =
        |token: &str, body: Value| up.api("POST", "/api/v1/tokens", Some(token), Some(&body));

    // A token that expires mints only tokens that expire no later than itself.
    let short = mint(
        &first,
        json!({ "name": "short", "expires_in_seconds": 3600 }),
    );
    assert_eq!(short.status, 201);
    let short = short.json();
    let short_token = short["token"].as_str().unwrap().to_string();
    let longer = mint(
        &short_token,
        json!({ "name": "longer", "expires_in_seconds": 7200 }),
    );
    assert_eq!(longer.status, 400);
    assert!(
        longer.error().contains("cannot outlive"),
        "{}",
        longer.error()
    );
    let forever = mint(&short_token, json!({ "name": "forever" }));
    assert_eq!(forever.status, 201);
    assert_eq!(forever.json()["expires"], short["expires"]);
    let shorter = mint(
        &short_token,
        json!({ "name": "shorter", "expires_in_seconds": 60 }),
    );
    assert_eq!(shorter.status, 201);

    // An admin sees eve's tokens (never their values) and revokes one.
    let listed = up.ok("GET", "/api/v1/users/eve/tokens", &admin, None);
    let items = listed["items"].as_array().unwrap();
    assert_eq!(items.len(), 4, "{listed}");
    assert!(items.iter().all(|t| t.get("token").is_none()), "{listed}");
    let revoked = up.api(
        "DELETE",
        &format!("/api/v1/users/eve/tokens/{}", short["id"].as_str().unwrap()),
        Some(&admin),
        None,
    );
    assert_eq!(revoked.status, 200);
    assert_eq!(whoami(&short_token).status, 401);
    assert_eq!(whoami(&first).status, 200);
    // Eve cannot reach the admin routes with her own tokens.
    assert_eq!(
        up.api("GET", "/api/v1/users/eve/tokens", Some(&first), None)
            .status,
        403
    );

    // Disabled: every token of hers answers 401, and says why.
    let disabled = up.ok(
        "PATCH",
        "/api/v1/users/eve",
        &admin,
        Some(&json!({ "disabled": true })),
    );
    assert!(disabled["disabled"].is_string(), "{disabled}");
    let refused = whoami(&first);
    assert_eq!(refused.status, 401);
    assert!(refused.error().contains("disabled"), "{}", refused.error());
    assert_eq!(
        up.api(
            "PATCH",
            "/api/v1/users/eve",
            Some(&first),
            Some(&json!({ "disabled": false }))
        )
        .status,
        401
    );
    let users = up.ok("GET", "/api/v1/users", &admin, None);
    let eve = users["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "eve")
        .unwrap()
        .clone();
    assert!(eve["disabled"].is_string(), "{users}");
    // An admin cannot lock themselves out.
    let selfish = up.api(
        "PATCH",
        "/api/v1/users/admin",
        Some(&admin),
        Some(&json!({ "disabled": true })),
    );
    assert_eq!(selfish.status, 400);
    // Enabled again, her untouched tokens work again; the revoked one does not.
    up.ok(
        "PATCH",
        "/api/v1/users/eve",
        &admin,
        Some(&json!({ "disabled": false })),
    );
    assert_eq!(whoami(&first).status, 200);
    assert_eq!(whoami(&short_token).status, 401);
}

#[test]
fn images_and_registry_passwords_stay_in_their_work_group() {
    let (up, admin) = two_workgroups("control-images");
    build_iris_image(&up.store());
    let a = "/api/v1/teams/t/workgroups/a";
    let b = "/api/v1/teams/t/workgroups/b";
    // Work group a builds an image from its own manifest.
    up.ok(
        "POST",
        &format!("{a}/models"),
        &admin,
        Some(&json!({ "name": "m" })),
    );
    let weights = std::fs::read(repo().join("examples/iris/model/weights.json")).unwrap();
    let reply = call(
        "POST",
        &format!("{}{a}/models/m/versions", up.api),
        &[
            ("Authorization", &format!("Bearer {admin}")),
            ("Content-Type", "application/x-tar"),
        ],
        Some(&tar_of(&[("weights.json", &weights)])),
    );
    assert_eq!(reply.status, 201, "{}", reply.error());
    up.ok(
        "POST",
        &format!("{a}/manifests"),
        &admin,
        Some(&json!({
            "name": "mf",
            "model": "m",
            "version": "1",
            "manifest": "name = \"secret-iris\"\nversion = \"1\"\n[scorer]\ncomponent = \"iris:1\"\n[model]\nfiles = [\"weights.json\"]\n",
        })),
    );
    let built = up.ok(
        "POST",
        &format!("{a}/images"),
        &admin,
        Some(&json!({ "name": "built", "manifest": "mf" })),
    );
    let (reference, digest) = (
        built["reference"].as_str().unwrap().to_string(),
        built["digest"].as_str().unwrap().to_string(),
    );
    let tag = format!("{}:1", reference.split('@').next().unwrap());
    // Work group b cannot name it, by digest under any name, by a's tag, or by a's pinned
    // reference: the answer is the one for an image that does not exist.
    for stolen in [format!("anything@{digest}"), tag.clone(), reference.clone()] {
        let refused = up.api(
            "POST",
            &format!("{b}/images"),
            Some(&admin),
            Some(&json!({ "name": "stolen", "reference": stolen })),
        );
        assert_eq!(refused.status, 400, "{stolen}: {}", refused.error());
        assert!(
            refused.error().contains("no image"),
            "{stolen}: {}",
            refused.error()
        );
    }
    assert_eq!(
        up.ok("GET", &format!("{b}/images"), &admin, None)["items"],
        json!([])
    );
    // Nor reuse its scorer through a manifest of its own.
    up.ok(
        "POST",
        &format!("{b}/models"),
        &admin,
        Some(&json!({ "name": "m" })),
    );
    let reply = call(
        "POST",
        &format!("{}{b}/models/m/versions", up.api),
        &[
            ("Authorization", &format!("Bearer {admin}")),
            ("Content-Type", "application/x-tar"),
        ],
        Some(&tar_of(&[("weights.json", &weights)])),
    );
    assert_eq!(reply.status, 201, "{}", reply.error());
    up.ok(
        "POST",
        &format!("{b}/manifests"),
        &admin,
        Some(&json!({
            "name": "copycat",
            "model": "m",
            "version": "1",
            "manifest": format!("name = \"copycat\"\nversion = \"1\"\n[scorer]\ncomponent = \"{tag}\"\n[model]\nfiles = [\"weights.json\"]\n"),
        })),
    );
    let refused = up.api(
        "POST",
        &format!("{b}/images"),
        Some(&admin),
        Some(&json!({ "name": "copycat", "manifest": "copycat" })),
    );
    assert_eq!(refused.status, 400, "{}", refused.error());
    assert!(
        refused.error().contains("nor an image of this work group"),
        "{}",
        refused.error()
    );
    // Work group a can; both can use what the installation put in the store.
    up.ok(
        "POST",
        &format!("{a}/images"),
        &admin,
        Some(&json!({ "name": "again", "reference": format!("anything@{digest}") })),
    );
    for wg in [a, b] {
        up.ok(
            "POST",
            &format!("{wg}/images"),
            &admin,
            Some(&json!({ "name": "shared", "reference": "iris:1" })),
        );
    }

    // An environment's password goes to its own registry and to no other host.
    let (own, other) = (Recorder::basic(), Recorder::basic());
    up.ok(
        "POST",
        &format!("{b}/environments"),
        &admin,
        Some(&json!({
            "name": "env",
            "registry": { "host": own.addr, "username": "bob", "password": "b0b-secret" },
        })),
    );
    let elsewhere = up.api(
        "POST",
        &format!("{b}/images"),
        Some(&admin),
        Some(&json!({
            "name": "elsewhere",
            "reference": format!("{}/models/iris:1", other.addr),
            "environment": "env",
        })),
    );
    assert_eq!(elsewhere.status, 400, "{}", elsewhere.error());
    assert!(
        elsewhere.error().contains(&own.addr),
        "{}",
        elsewhere.error()
    );
    // Without the environment, the other registry is asked anonymously.
    let anonymous = up.api(
        "POST",
        &format!("{b}/images"),
        Some(&admin),
        Some(&json!({ "name": "anon", "reference": format!("{}/models/iris:1", other.addr) })),
    );
    assert_eq!(anonymous.status, 400, "{}", anonymous.error());
    let own_pull = up.api(
        "POST",
        &format!("{b}/images"),
        Some(&admin),
        Some(&json!({
            "name": "own",
            "reference": format!("{}/models/iris:1", own.addr),
            "environment": "env",
        })),
    );
    assert_eq!(own_pull.status, 400, "{}", own_pull.error());
    let basic = format!(
        "basic {}",
        base64_encode(b"bob:b0b-secret").to_ascii_lowercase()
    );
    let carries = |heads: &[String]| {
        heads
            .iter()
            .any(|h| h.to_ascii_lowercase().contains(&basic))
    };
    assert!(
        !other.heads().is_empty(),
        "the other registry was never asked"
    );
    assert!(!carries(&other.heads()), "{:?}", other.heads());
    assert!(carries(&own.heads()), "{:?}", own.heads());
}

#[test]
fn pathological_searches_are_bounded_and_predictions_keep_answering() {
    let (up, admin) = two_workgroups("control-like");
    build_iris_image(&up.store());
    let a = "/api/v1/teams/t/workgroups/a";
    up.ok(
        "POST",
        &format!("{a}/images"),
        &admin,
        Some(&json!({ "name": "img", "reference": "iris:1" })),
    );
    let deployment = up.ok(
        "POST",
        &format!("{a}/deployments"),
        &admin,
        Some(&json!({ "name": "d", "image": "img" })),
    );
    let key = deployment["keys"]["primary"].as_str().unwrap().to_string();
    let infer = deployment["urls"]["infer"].as_str().unwrap().to_string();
    assert_eq!(
        up.wait_deployment(&admin, &format!("{a}/deployments/d"))["status"],
        "ready"
    );
    up.ok(
        "POST",
        &format!("{a}/projects"),
        &admin,
        Some(&json!({ "name": "p" })),
    );
    let mlflow = format!("{a}/projects/p/mlflow/api/2.0/mlflow");
    let experiment = up.ok(
        "POST",
        &format!("{mlflow}/experiments/create"),
        &admin,
        Some(&json!({ "name": "e" })),
    )["experiment_id"]
        .as_str()
        .unwrap()
        .to_string();
    for _ in 0..20 {
        up.ok(
            "POST",
            &format!("{mlflow}/runs/create"),
            &admin,
            Some(&json!({ "experiment_id": experiment })),
        );
    }
    let created = up.ok(
        "POST",
        "/api/v1/users",
        &admin,
        Some(&json!({ "name": "rita" })),
    );
    let reader = created["token"]["token"].as_str().unwrap().to_string();
    up.ok(
        "PUT",
        "/api/v1/teams/t/members/rita",
        &admin,
        Some(&json!({ "role": "member" })),
    );
    up.ok(
        "PUT",
        &format!("{a}/members/rita"),
        &admin,
        Some(&json!({ "role": "reader" })),
    );
    let search = |pattern: &str| {
        up.api(
            "POST",
            &format!("{mlflow}/runs/search"),
            Some(&reader),
            Some(&json!({
                "experiment_ids": [experiment],
                "filter": format!("attributes.run_id LIKE '{pattern}'"),
            })),
        )
    };
    // Past the caps: refused, with the limit named.
    let refused = search(&format!("{}!", "%_".repeat(17)));
    assert_eq!(refused.status, 400);
    assert!(
        refused.json()["message"]
            .as_str()
            .unwrap()
            .contains("at most 32 wildcards"),
        "{}",
        refused.json()["message"].as_str().unwrap()
    );
    let refused = search(&"a".repeat(300));
    assert_eq!(refused.status, 400);
    assert!(
        refused.json()["message"]
            .as_str()
            .unwrap()
            .contains("at most 256 characters"),
        "{}",
        refused.json()["message"].as_str().unwrap()
    );
    // At the caps: 16 pairs of `%_` against 32-character ids (seconds each for a backtracking
    // matcher), four at once, while predictions go on.
    let worst = format!("{}!", "%_".repeat(16));
    let body = serde_json::to_vec(&v2_fp32("input", &[1, 4], &[5.1, 3.5, 1.4, 0.2])).unwrap();
    let bearer = format!("Bearer {key}");
    std::thread::scope(|scope| {
        let searches: Vec<_> = (0..4).map(|_| scope.spawn(|| search(&worst))).collect();
        for _ in 0..50 {
            let answer = call(
                "POST",
                &infer,
                &[
                    ("Content-Type", "application/json"),
                    ("Authorization", &bearer),
                ],
                Some(&body),
            );
            assert_eq!(answer.status, 200, "{}", answer.error());
        }
        for searched in searches {
            let searched = searched.join().unwrap();
            assert_eq!(searched.status, 200, "{}", searched.error());
            assert_eq!(searched.json()["runs"], json!([]));
        }
    });
    // The matcher still matches.
    let all = search("%");
    assert_eq!(all.status, 200);
    assert_eq!(all.json()["runs"].as_array().unwrap().len(), 20);
}

#[test]
fn slow_clients_are_cut_off_and_others_keep_being_served() {
    use std::io::{Read, Write};
    let dir = temp_dir("control-slow");
    let up = Up::start(
        &dir,
        &["--header-timeout-s", "1", "--max-connections", "64"],
    );
    let admin = up.admin();
    let address = up.api.trim_start_matches("http://").to_string();
    // Slowloris: a request head that never ends, on many connections.
    let mut slow: Vec<std::net::TcpStream> = (0..8)
        .map(|_| {
            let mut stream = std::net::TcpStream::connect(&address).unwrap();
            write!(
                stream,
                "GET /api/v1/health HTTP/1.1\r\nHost: {address}\r\nX-Slow: "
            )
            .unwrap();
            stream
                .set_read_timeout(Some(std::time::Duration::from_secs(30)))
                .unwrap();
            stream
        })
        .collect();
    // An idle connection that never sends anything is cut off too.
    let idle = std::net::TcpStream::connect(&address).unwrap();
    idle.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    slow.push(idle.try_clone().unwrap());
    for stream in &mut slow {
        let mut buffer = [0u8; 1024];
        match stream.read(&mut buffer) {
            // Closed, perhaps after a 408 answer.
            Ok(n) => assert!(
                n == 0 || String::from_utf8_lossy(&buffer[..n]).starts_with("HTTP/1.1 408"),
                "{}",
                String::from_utf8_lossy(&buffer[..n])
            ),
            Err(e) => assert!(
                !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ),
                "the server kept a slow client: {e}"
            ),
        }
    }
    drop(idle);
    // Meanwhile, and after, everyone else is served.
    assert_eq!(
        up.api("GET", "/api/v1/whoami", Some(&admin), None).status,
        200
    );
    // More connections than the cap wait for a slot rather than fail, and all are answered.
    let waiting: Vec<std::net::TcpStream> = (0..100)
        .map(|_| std::net::TcpStream::connect(&address).unwrap())
        .collect();
    let answered = std::thread::scope(|scope| {
        let calls: Vec<_> = (0..8)
            .map(|_| scope.spawn(|| up.api("GET", "/api/v1/whoami", Some(&admin), None).status))
            .collect();
        calls
            .into_iter()
            .map(|c| c.join().unwrap())
            .collect::<Vec<_>>()
    });
    assert!(answered.iter().all(|s| *s == 200), "{answered:?}");
    drop(waiting);
}

#[test]
fn tar_uploads_with_links_are_refused_and_store_nothing() {
    let (up, admin) = two_workgroups("control-links");
    let a = "/api/v1/teams/t/workgroups/a";
    up.ok(
        "POST",
        &format!("{a}/models"),
        &admin,
        Some(&json!({ "name": "m" })),
    );
    up.ok(
        "POST",
        &format!("{a}/projects"),
        &admin,
        Some(&json!({ "name": "p" })),
    );
    let bearer = format!("Bearer {admin}");
    let headers = [
        ("Authorization", bearer.as_str()),
        ("Content-Type", "application/x-tar"),
    ];
    for (kind, what, target) in [
        (b'2', "Symlink", "/etc/passwd"),
        (b'2', "Symlink", "../../../../kiln.db"),
        (b'1', "Link", "weights.json"),
    ] {
        let archive = tar_entries(&[
            ("weights.json", b'0', "", b"[1, 2]"),
            ("escape", kind, target, b""),
        ]);
        for url in [
            format!("{}{a}/models/m/versions", up.api),
            format!("{}{a}/projects/p/commits", up.api),
        ] {
            let refused = call("POST", &url, &headers, Some(&archive));
            assert_eq!(refused.status, 400, "{url}: {}", refused.error());
            assert!(
                refused.error().contains(&format!("'escape' is a {what}")),
                "{url}: {}",
                refused.error()
            );
        }
    }
    let versions = up.ok("GET", &format!("{a}/models/m/versions"), &admin, None);
    assert_eq!(versions["items"], json!([]), "{versions}");
    let commits = up.api(
        "GET",
        &format!("{a}/projects/p/commits"),
        Some(&admin),
        None,
    );
    assert!(
        commits.status == 404 || commits.json()["items"] == json!([]),
        "{}",
        String::from_utf8_lossy(&commits.body)
    );
}

/// A loopback "registry" that asks for a bearer token from `realm`.
fn challenging_registry(realm: &'static str) -> String {
    Recorder::start(move |_| {
        format!(
            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"{realm}\",service=\"r\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
    })
    .addr
}

/// A loopback "registry" whose every manifest answers with a redirect to `location`.
fn redirecting_registry(location: &'static str) -> String {
    Recorder::start(move |head| {
        if head.starts_with("GET /v2/ ") {
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}".to_string()
        } else {
            format!(
                "HTTP/1.1 307 Temporary Redirect\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
        }
    })
    .addr
}

#[test]
fn targets_and_registries_on_internal_networks_are_refused_unless_allowed() {
    // This installation allows one internal address, and neither loopback nor link-local.
    let dir = temp_dir("control-ssrf");
    let up = Up::start(&dir, &["--allow-network", "10.255.255.254"]);
    let admin = up.admin();
    up.ok(
        "POST",
        "/api/v1/teams",
        &admin,
        Some(&json!({ "name": "t" })),
    );
    up.ok(
        "POST",
        "/api/v1/teams/t/workgroups",
        &admin,
        Some(&json!({ "name": "a" })),
    );
    let a = "/api/v1/teams/t/workgroups/a";
    let target = |name: &str, kind: &str, config: Value| {
        up.api(
            "POST",
            &format!("{a}/targets"),
            Some(&admin),
            Some(&json!({ "name": name, "kind": kind, "config": config })),
        )
    };
    for (name, kind, config, says) in [
        (
            "s1",
            "docker",
            json!({ "host": "unix:///run/other/docker.sock" }),
            "--allow-docker-host",
        ),
        (
            "s2",
            "docker",
            json!({ "host": "tcp://169.254.169.254:2375" }),
            "169.254.169.254",
        ),
        (
            "s3",
            "docker",
            json!({ "host": "tcp://127.0.0.1:2375" }),
            "127.0.0.1",
        ),
        (
            "s4",
            "docker",
            json!({ "network": "host" }),
            "--allow-docker-network host",
        ),
        (
            "s5",
            "docker",
            json!({ "network": "container:kiln-run-other" }),
            "another container",
        ),
        (
            "s6",
            "spark",
            json!({ "master": "spark://127.0.0.1:7077" }),
            "127.0.0.1",
        ),
        (
            "s7",
            "spark",
            json!({ "master": "spark://10.0.0.1:7077,169.254.169.254:7077" }),
            "10.0.0.1",
        ),
        (
            "s8",
            "spark",
            json!({ "master": "k8s://https://169.254.169.254:443" }),
            "169.254.169.254",
        ),
    ] {
        let refused = target(name, kind, config.clone());
        assert_eq!(refused.status, 403, "{config}: {}", refused.error());
        assert!(
            refused.error().contains(says),
            "{config}: {}",
            refused.error()
        );
    }
    for (name, kind, config) in [
        ("ok1", "docker", json!({ "network": "bridge" })),
        ("ok2", "spark", json!({ "master": "local[2]" })),
        (
            "ok3",
            "spark",
            json!({ "master": "spark://10.255.255.254:7077" }),
        ),
    ] {
        let created = target(name, kind, config.clone());
        assert_eq!(created.status, 201, "{config}: {}", created.error());
    }
    assert_eq!(
        up.ok("GET", &format!("{a}/targets"), &admin, None)["items"]
            .as_array()
            .unwrap()
            .len(),
        3
    );

    // A registry on loopback is not reached.
    let registry = RegistryServer::start(None);
    let refused = up.api(
        "POST",
        &format!("{a}/images"),
        Some(&admin),
        Some(&json!({ "name": "x", "reference": format!("{}/models/iris:1", registry.addr) })),
    );
    assert_eq!(refused.status, 400, "{}", refused.error());
    assert!(
        refused.error().contains("loopback, private or link-local"),
        "{}",
        refused.error()
    );

    // An installation that allows its loopback registry still refuses a redirect from it to
    // the link-local metadata address.
    let dir = temp_dir("control-redirect");
    let up = Up::start(&dir, &["--allow-network", "127.0.0.1"]);
    let admin = up.admin();
    up.ok(
        "POST",
        "/api/v1/teams",
        &admin,
        Some(&json!({ "name": "t" })),
    );
    up.ok(
        "POST",
        "/api/v1/teams/t/workgroups",
        &admin,
        Some(&json!({ "name": "a" })),
    );
    let evil = redirecting_registry("http://169.254.169.254/latest/meta-data/");
    let refused = up.api(
        "POST",
        &format!("{a}/images"),
        Some(&admin),
        Some(&json!({ "name": "x", "reference": format!("{evil}/models/iris:1") })),
    );
    assert_eq!(refused.status, 400, "{}", refused.error());
    assert!(
        refused.error().contains("redirect to 169.254.169.254")
            && refused.error().contains("refused"),
        "{}",
        refused.error()
    );
    // Nor does its token endpoint lead there.
    let evil = challenging_registry("http://169.254.169.254/latest/api/token");
    let refused = up.api(
        "POST",
        &format!("{a}/images"),
        Some(&admin),
        Some(&json!({ "name": "y", "reference": format!("{evil}/models/iris:1") })),
    );
    assert_eq!(refused.status, 400, "{}", refused.error());
    assert!(
        refused.error().contains("token realm") && refused.error().contains("refused"),
        "{}",
        refused.error()
    );
}

#[test]
fn a_work_group_past_its_quota_is_refused_with_the_limit_named_and_others_are_not() {
    let (up, admin) = two_workgroups("control-quota");
    build_iris_image(&up.store());
    let (a, b) = (
        "/api/v1/teams/t/workgroups/a",
        "/api/v1/teams/t/workgroups/b",
    );
    for wg in [a, b] {
        up.ok(
            "POST",
            &format!("{wg}/images"),
            &admin,
            Some(&json!({ "name": "img", "reference": "iris:1" })),
        );
    }
    let defaults = up.ok("GET", &format!("{a}/quota"), &admin, None);
    assert_eq!(defaults["deployments"], 50, "{defaults}");
    let set = up.ok(
        "PUT",
        &format!("{a}/quota"),
        &admin,
        Some(&json!({ "deployments": 2, "instances": 6, "deadline_ms": 5000 })),
    );
    assert_eq!(
        (set["deployments"].as_u64(), set["instances"].as_u64()),
        (Some(2), Some(6)),
        "{set}"
    );
    let deploy = |wg: &str, name: &str, extra: Value| {
        let mut body = json!({ "name": name, "image": "img" });
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        up.api(
            "POST",
            &format!("{wg}/deployments"),
            Some(&admin),
            Some(&body),
        )
    };
    // Each deployment is charged its own instances (4 by default).
    assert_eq!(
        deploy(a, "a1", json!({ "scale": { "max_instances": 2 } })).status,
        201
    );
    let refused = deploy(a, "a2", json!({ "limits": { "deadline_ms": 10000 } }));
    assert_eq!(refused.status, 403);
    assert!(
        refused.error().contains("limit of 5000 ms"),
        "{}",
        refused.error()
    );
    let refused = deploy(a, "a2", json!({ "scale": { "max_instances": 5 } }));
    assert_eq!(refused.status, 403);
    assert!(
        refused
            .error()
            .contains("7 instances, more than its limit of 6"),
        "{}",
        refused.error()
    );
    assert_eq!(deploy(a, "a2", json!({})).status, 201);
    let refused = deploy(a, "a3", json!({ "scale": { "max_instances": 1 } }));
    assert_eq!(refused.status, 403);
    assert!(
        refused.error().contains("at most 2 deployments"),
        "{}",
        refused.error()
    );
    // A change that would break it is refused too, and nothing changed.
    let grown = up.api(
        "PATCH",
        &format!("{a}/deployments/a1"),
        Some(&admin),
        Some(&json!({ "scale": { "max_instances": 3 } })),
    );
    assert_eq!(grown.status, 403, "{}", grown.error());
    let a1 = up.ok("GET", &format!("{a}/deployments/a1"), &admin, None);
    assert_eq!(a1["scale"]["max_instances"], 2, "{a1}");
    // The other work group keeps the defaults.
    for n in 0..3 {
        assert_eq!(deploy(b, &format!("b{n}"), json!({})).status, 201);
    }
    // Only an installation admin sets a quota; its members read it.
    let created = up.ok(
        "POST",
        "/api/v1/users",
        &admin,
        Some(&json!({ "name": "own" })),
    );
    let owner = created["token"]["token"].as_str().unwrap().to_string();
    up.ok(
        "PUT",
        "/api/v1/teams/t/members/own",
        &admin,
        Some(&json!({ "role": "admin" })),
    );
    assert_eq!(
        up.api("GET", &format!("{a}/quota"), Some(&owner), None)
            .status,
        200
    );
    let raised = up.api(
        "PUT",
        &format!("{a}/quota"),
        Some(&owner),
        Some(&json!({ "deployments": 100 })),
    );
    assert_eq!(raised.status, 403);
    // Back to the default: room again.
    up.ok(
        "PUT",
        &format!("{a}/quota"),
        &admin,
        Some(&json!({ "deployments": null, "instances": null })),
    );
    assert_eq!(
        deploy(a, "a3", json!({ "scale": { "max_instances": 1 } })).status,
        201
    );
}

/// `curl` (the real client) with `--cacert ca` when given: `(curl's exit code, HTTP status, body)`.
fn curl(
    ca: Option<&std::path::Path>,
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (i32, u16, String) {
    let mut command = std::process::Command::new("curl");
    command.args([
        "-s",
        "-X",
        method,
        "-w",
        "\n%{http_code}",
        "--max-time",
        "30",
    ]);
    if let Some(ca) = ca {
        command.arg("--cacert").arg(ca);
    }
    if let Some(token) = token {
        command.args(["-H", &format!("Authorization: Bearer {token}")]);
    }
    if let Some(body) = body {
        command.args([
            "-H",
            "Content-Type: application/json",
            "-d",
            &body.to_string(),
        ]);
    }
    let output = command.arg(url).output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
    (
        output.status.code().unwrap_or(-1),
        status.trim().parse().unwrap_or(0),
        body.to_string(),
    )
}

#[test]
fn every_listener_speaks_tls_and_a_node_verifies_the_control_planes_certificate() {
    let dir = temp_dir("control-tls");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
        ])
        .args([
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let data = dir.join("data");
    let up = Up::start(
        &data,
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    assert!(up.api.starts_with("https://"), "{}", up.api);
    let admin = up.admin();
    let ca = Some(cert.as_path());
    // The API, the predictions and the metrics answer over TLS with this certificate only.
    assert_eq!(
        curl(ca, "GET", &format!("{}/api/v1/health", up.api), None, None).1,
        200
    );
    let (code, _, _) = curl(
        None,
        "GET",
        &format!("{}/api/v1/health", up.api),
        None,
        None,
    );
    assert_eq!(code, 60, "curl trusted an unknown certificate");
    let plain = up.api.replace("https://", "http://");
    let (code, status, _) = curl(None, "GET", &format!("{plain}/api/v1/health"), None, None);
    assert!(
        code != 0 && status != 200,
        "plain HTTP answered: {code} {status}"
    );
    let (_, status, metrics) = curl(ca, "GET", &up.metrics, None, None);
    assert_eq!(status, 200);
    assert!(
        metrics.contains("# TYPE process_cpu_seconds_total counter"),
        "{metrics}"
    );

    build_iris_image(&up.store());
    let call = |method: &str, path: &str, body: Value| {
        let (_, status, text) = curl(
            ca,
            method,
            &format!("{}{path}", up.api),
            Some(&admin),
            Some(&body),
        );
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {text}"
        );
        serde_json::from_str::<Value>(&text).unwrap()
    };
    call("POST", "/api/v1/teams", json!({ "name": "t" }));
    call("POST", "/api/v1/teams/t/workgroups", json!({ "name": "w" }));
    call(
        "POST",
        &format!("{WG}/images"),
        json!({ "name": "img", "reference": "iris:1" }),
    );
    let deployment = call(
        "POST",
        &format!("{WG}/deployments"),
        json!({ "name": "tls-iris", "image": "img" }),
    );
    assert!(
        deployment["urls"]["infer"]
            .as_str()
            .unwrap()
            .starts_with("https://"),
        "{deployment}"
    );
    let key = deployment["keys"]["primary"].as_str().unwrap().to_string();
    let node = call(
        "POST",
        "/api/v1/users",
        json!({ "name": "node", "runtime": true }),
    );
    let node_token = node["token"]["token"].as_str().unwrap().to_string();
    let body = v2_fp32("input", &[1, 4], &IRIS_ROWS[0]);
    let infer = format!("{}/v2/models/tls-iris/infer", up.base);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while curl(ca, "POST", &infer, Some(&key), Some(&body)).1 != 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "never served over TLS:\n{}",
            up.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }

    // A runtime node trusts the control plane's certificate when told to...
    let node = Server::start(&[
        "--control",
        &up.api,
        "--token",
        &node_token,
        "--control-ca",
        cert.to_str().unwrap(),
        "--store",
        up.store().to_str().unwrap(),
    ]);
    let bearer = format!("Bearer {key}");
    let headers = [
        ("Content-Type", "application/json"),
        ("Authorization", bearer.as_str()),
    ];
    let request = serde_json::to_vec(&body).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while node
        .post("/v2/models/tls-iris/infer", &headers, &request)
        .status
        != 200
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the node never served it:\n{}",
            node.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // ... and refuses it otherwise.
    let doubting = Server::start(&[
        "--control",
        &up.api,
        "--token",
        &node_token,
        "--store",
        up.store().to_str().unwrap(),
    ]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !doubting.log().contains("certificate") {
        assert!(
            std::time::Instant::now() < deadline,
            "no certificate error:\n{}",
            doubting.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(
        doubting
            .post("/v2/models/tls-iris/infer", &headers, &request)
            .status,
        404
    );
}

#[test]
fn artifacts_stream_to_and_from_the_store_in_bounded_memory() {
    let dir = temp_dir("control-stream");
    let up = Up::start(&dir, &["--max-upload-mb", "300"]);
    let admin = up.admin();
    up.ok(
        "POST",
        "/api/v1/teams",
        &admin,
        Some(&json!({ "name": "t" })),
    );
    up.ok(
        "POST",
        "/api/v1/teams/t/workgroups",
        &admin,
        Some(&json!({ "name": "w" })),
    );
    up.ok(
        "POST",
        &format!("{WG}/projects"),
        &admin,
        Some(&json!({ "name": "p" })),
    );
    let mlflow = format!("{WG}/projects/p/mlflow/api/2.0/mlflow");
    let experiment = up.ok(
        "POST",
        &format!("{mlflow}/experiments/create"),
        &admin,
        Some(&json!({ "name": "e" })),
    )["experiment_id"]
        .as_str()
        .unwrap()
        .to_string();
    let run = up.ok(
        "POST",
        &format!("{mlflow}/runs/create"),
        &admin,
        Some(&json!({ "experiment_id": experiment })),
    )["run"]["info"]["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    let bearer = format!("Bearer {admin}");
    let url = |path: &str| format!("{}{WG}/runs/{run}/artifacts/{path}", up.api);
    // 256 MiB up and down: the server's peak memory grows by far less than the file.
    let size = 256usize << 20;
    let content: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    let before = up.memory_kib("VmHWM");
    let put = call(
        "PUT",
        &url("big.bin"),
        &[("Authorization", &bearer)],
        Some(&content),
    );
    assert_eq!(put.status, 201, "{}", String::from_utf8_lossy(&put.body));
    assert_eq!(put.json()["size"], size);
    let got = call("GET", &url("big.bin"), &[("Authorization", &bearer)], None);
    assert_eq!(got.status, 200);
    assert_eq!(got.body.len(), size);
    assert!(got.body == content, "the file came back different");
    let grown_mib = (up.memory_kib("VmHWM") - before) >> 10;
    assert!(
        grown_mib < 96,
        "peak memory grew by {grown_mib} MiB for a 256 MiB file"
    );
    // A model version's tar goes to disk, then each file to the store in parts.
    up.ok(
        "POST",
        &format!("{WG}/models"),
        &admin,
        Some(&json!({ "name": "big" })),
    );
    let archive = tar_of(&[("weights.bin", &content), ("small.json", b"[1]")]);
    let before = up.memory_kib("VmHWM");
    let created = call(
        "POST",
        &format!("{}{WG}/models/big/versions", up.api),
        &[
            ("Authorization", &bearer),
            ("Content-Type", "application/x-tar"),
        ],
        Some(&archive),
    );
    assert_eq!(
        created.status,
        201,
        "{}",
        String::from_utf8_lossy(&created.body)
    );
    let grown_mib = (up.memory_kib("VmHWM") - before) >> 10;
    assert!(
        grown_mib < 96,
        "peak memory grew by {grown_mib} MiB for a 256 MiB model file"
    );
    let files = created.json()["files"].clone();
    let weights = files
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "weights.bin")
        .unwrap();
    assert_eq!(weights["size"], size);
    let expected = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&content))
    };
    assert_eq!(weights["sha256"], expected.as_str());
    drop(archive);
    let small = call(
        "GET",
        &format!("{}{WG}/models/big/versions/1/files/small.json", up.api),
        &[("Authorization", &bearer)],
        None,
    );
    assert_eq!(small.body, b"[1]");
    // Down again, streamed and checked on the way.
    let file_url = |path: &str| format!("{}{WG}/models/big/versions/1/files/{path}", up.api);
    let before = up.memory_kib("VmHWM");
    let got = call(
        "GET",
        &file_url("weights.bin"),
        &[("Authorization", &bearer)],
        None,
    );
    assert_eq!(got.status, 200);
    assert!(got.body == content, "the model file came back different");
    drop(got);
    let grown_mib = (up.memory_kib("VmHWM") - before) >> 10;
    assert!(
        grown_mib < 96,
        "peak memory grew by {grown_mib} MiB sending a 256 MiB file"
    );
    // A file corrupted in the store is never handed out whole: a small one answers 500, a
    // large one's transfer breaks off before its end.
    let stored = |name: &str| {
        let mut found = None;
        let mut stack = vec![dir.join("artifacts/models")];
        while let Some(next) = stack.pop() {
            for entry in std::fs::read_dir(&next).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.file_name().unwrap() == name {
                    found = Some(path);
                }
            }
        }
        found.unwrap()
    };
    std::fs::write(stored("small.json"), b"[2]").unwrap();
    let corrupt = call(
        "GET",
        &file_url("small.json"),
        &[("Authorization", &bearer)],
        None,
    );
    assert_eq!(corrupt.status, 500);
    let log = up.log_with("does not match its recorded sha256");
    assert!(log.contains("does not match its recorded sha256"), "{log}");
    {
        use std::io::{Seek, Write};
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .open(stored("weights.bin"))
            .unwrap();
        file.seek(std::io::SeekFrom::Start(100 << 20)).unwrap();
        file.write_all(b"tampered").unwrap();
    }
    let broken = try_call(
        "GET",
        &file_url("weights.bin"),
        &[("Authorization", &bearer)],
        None,
    );
    assert!(
        broken.as_ref().is_none_or(|r| r.body.len() < size),
        "a corrupt file was sent whole"
    );
    // A project push goes to disk, then file by file into the tree git commits.
    let tree = tar_of(&[
        ("data/big.bin", &content[..128 << 20]),
        ("train.py", b"print(1)\n"),
    ]);
    let before = up.memory_kib("VmHWM");
    let pushed = call(
        "POST",
        &format!("{}{WG}/projects/p/commits?message=big", up.api),
        &[
            ("Authorization", &bearer),
            ("Content-Type", "application/x-tar"),
        ],
        Some(&tree),
    );
    assert_eq!(
        pushed.status,
        201,
        "{}",
        String::from_utf8_lossy(&pushed.body)
    );
    assert_eq!(
        pushed.json()["files"],
        2,
        "{}",
        String::from_utf8_lossy(&pushed.body)
    );
    let grown_mib = (up.memory_kib("VmHWM") - before) >> 10;
    assert!(
        grown_mib < 96,
        "peak memory grew by {grown_mib} MiB for a 128 MiB push"
    );
    drop(tree);
    // Over the limit: 413, and nothing stored. The server answers and closes as soon as the
    // limit is passed, so a client still sending may see its connection break instead of
    // reading the answer; when it reads one, it is the 413.
    let over = vec![7u8; 301 << 20];
    let refused = try_call(
        "PUT",
        &url("over.bin"),
        &[("Authorization", &bearer)],
        Some(&over),
    );
    if let Some(refused) = refused {
        assert_eq!(
            refused.status,
            413,
            "{}",
            String::from_utf8_lossy(&refused.body)
        );
    }
    let missing = call("GET", &url("over.bin"), &[("Authorization", &bearer)], None);
    assert_eq!(missing.status, 404);
}

#[test]
fn a_removed_deployment_leaves_no_metric_series() {
    let (up, admin) = two_workgroups("control-cardinality");
    build_iris_image(&up.store());
    let a = "/api/v1/teams/t/workgroups/a";
    up.ok(
        "POST",
        &format!("{a}/images"),
        &admin,
        Some(&json!({ "name": "img", "reference": "iris:1" })),
    );
    let body = serde_json::to_vec(&v2_fp32("input", &[1, 4], &IRIS_ROWS[0])).unwrap();
    for name in ["gone", "stays"] {
        let created = up.ok(
            "POST",
            &format!("{a}/deployments"),
            &admin,
            Some(&json!({ "name": name, "image": "img" })),
        );
        let key = format!("Bearer {}", created["keys"]["primary"].as_str().unwrap());
        assert_eq!(
            up.wait_deployment(&admin, &format!("{a}/deployments/{name}"))["status"],
            "ready"
        );
        let infer = created["urls"]["infer"].as_str().unwrap().to_string();
        let answer = call(
            "POST",
            &infer,
            &[
                ("Content-Type", "application/json"),
                ("Authorization", &key),
            ],
            Some(&body),
        );
        assert_eq!(answer.status, 200);
    }
    let series = |name: &str| {
        let text = get(&up.metrics);
        String::from_utf8_lossy(&text.body)
            .lines()
            .filter(|l| !l.starts_with('#') && l.contains(&format!("deployment=\"{name}\"")))
            .count()
    };
    assert!(series("gone") > 10);
    let stays = series("stays");
    up.ok("DELETE", &format!("{a}/deployments/gone"), &admin, None);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while series("gone") > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the removed deployment's series stayed"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(series("stays") >= stays, "the other deployment lost series");
}

/// `kiln up --data-dir data` (a relative path, as a new user types it) keeps working where the
/// server runs git in another directory: a project push commits, and the data is under the
/// directory `kiln up` was started from.
#[test]
fn a_relative_data_directory_serves_project_pushes() {
    let dir = temp_dir("control-relative");
    let (up, admin) = with_two_workgroups(Up::start_in(&dir, std::path::Path::new("data"), &[]));
    let projects = "/api/v1/teams/t/workgroups/a/projects";
    up.ok("POST", projects, &admin, Some(&json!({ "name": "p" })));
    let bearer = format!("Bearer {admin}");
    let pushed = call(
        "POST",
        &format!("{}{projects}/p/commits?message=relative", up.api),
        &[
            ("Authorization", &bearer),
            ("Content-Type", "application/x-tar"),
        ],
        Some(&tar_of(&[("train.py", b"print(1)\n")])),
    );
    assert_eq!(pushed.status, 201, "{}", pushed.error());
    assert_eq!(pushed.json()["files"], 1);
    let log = up.ok("GET", &format!("{projects}/p/commits"), &admin, None);
    assert_eq!(log["items"][0]["message"], "relative", "{log}");
    assert!(
        dir.join("data/kiln.db").exists(),
        "the data directory is under the start directory"
    );
}
