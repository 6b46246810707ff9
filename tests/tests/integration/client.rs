//! The typed client (`kiln-client`) against a real `kiln up`: pages followed to the end, the
//! runtime contract read and reported with a node's token, errors typed with what the API said.

use kiln_api::{ServingState, StatusReport};
use kiln_client::{Client, Error};
use kiln_tests::*;
use serde_json::{Value, json};

const WG: &str = "/api/v1/teams/t/workgroups/w";

fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

#[test]
fn the_typed_client_reads_pages_the_runtime_contract_and_typed_errors() {
    let dir = temp_dir("client");
    let up = Up::start(&dir, &[]);
    let admin = up.admin();
    build_iris_image(&up.store());
    let client = Client::new(&format!("{}/", up.api), &admin);
    block_on(async {
        // Seven teams read two at a time: every one, once, in name order.
        for n in 0..7 {
            let created: Value = client
                .post("/api/v1/teams", &json!({ "name": format!("team-{n}") }))
                .await
                .unwrap();
            assert_eq!(created["name"], format!("team-{n}"));
        }
        let paged: Vec<Value> = client.all("/api/v1/teams?limit=2").await.unwrap();
        let names: Vec<&str> = paged.iter().filter_map(|t| t["name"].as_str()).collect();
        let expected: Vec<String> = (0..7).map(|n| format!("team-{n}")).collect();
        assert_eq!(names, expected);
        let first = client
            .page::<Value>("/api/v1/teams?limit=2", None)
            .await
            .unwrap();
        assert_eq!(first.items.len(), 2);
        assert_eq!(first.next.as_deref(), Some("team-1"));

        // A deployment, then the runtime contract with a node's token.
        let _: Value = client
            .post("/api/v1/teams", &json!({ "name": "t" }))
            .await
            .unwrap();
        let _: Value = client
            .post("/api/v1/teams/t/workgroups", &json!({ "name": "w" }))
            .await
            .unwrap();
        let _: Value = client
            .post(
                &format!("{WG}/images"),
                &json!({ "name": "img", "reference": "iris:1" }),
            )
            .await
            .unwrap();
        let _: Value = client
            .post(
                &format!("{WG}/deployments"),
                &json!({ "name": "typed", "image": "img", "limits": { "concurrency": 2 } }),
            )
            .await
            .unwrap();
        let user: Value = client
            .post(
                "/api/v1/users",
                &json!({ "name": "node-typed", "runtime": true }),
            )
            .await
            .unwrap();
        let node = Client::new(&up.api, user["token"]["token"].as_str().unwrap());
        let desired = node.desired_deployments().await.unwrap();
        let typed = desired.iter().find(|d| d.name == "typed").expect("desired");
        assert_eq!(typed.limits.concurrency, Some(2));
        assert!(typed.digest.starts_with("sha256:"), "{}", typed.digest);
        assert_eq!(typed.key_digests.len(), 2);
        assert!(node.desired_endpoints().await.unwrap().is_empty());
        // The in-process node reports too; a report about a stale generation is accepted and
        // ignored, so the deployment's status stays what the node said.
        let shown = up.wait_deployment(&admin, &format!("{WG}/deployments/typed"));
        assert_eq!(shown["status"], "ready", "{shown}");
        node.report_status(
            "typed",
            &StatusReport {
                generation: typed.generation - 1,
                state: ServingState::Failed,
                reason: Some("stale".into()),
            },
        )
        .await
        .unwrap();
        let shown: Value = client
            .get(&format!("{WG}/deployments/typed"))
            .await
            .unwrap();
        assert_eq!(shown["status"], "ready", "{shown}");

        // Errors: the status and the API's own words; the route a node may not reach.
        let Err(refused) = node.get::<Value>("/api/v1/teams").await else {
            panic!("a node's token listed teams");
        };
        assert_eq!(refused.status().map(|s| s.as_u16()), Some(403));
        assert!(
            refused.to_string().contains("runtime routes only"),
            "{refused}"
        );
        let Err(missing) = client.get::<Value>("/api/v1/teams/nobody").await else {
            panic!("a team that does not exist");
        };
        assert_eq!(missing.status().map(|s| s.as_u16()), Some(404));
        let Err(unexpected) = client.get::<Vec<u32>>("/api/v1/whoami").await else {
            panic!("whoami read as numbers");
        };
        assert!(
            matches!(unexpected, Error::Unexpected { .. }),
            "{unexpected}"
        );
        let Err(nobody) = Client::new("http://127.0.0.1:9", &admin)
            .get::<Value>("/api/v1/whoami")
            .await
        else {
            panic!("a port nothing listens on answered");
        };
        assert!(matches!(nobody, Error::Unreachable { .. }), "{nobody}");
        assert!(
            nobody
                .to_string()
                .starts_with("cannot reach http://127.0.0.1:9")
        );
    });
}
