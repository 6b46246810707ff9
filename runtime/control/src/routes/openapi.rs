//! The OpenAPI 3.1 document of the management API, made from the route table.
//!
//! Each operation carries `x-kiln-access`, the access it needs. Response schemas are shared
//! under `components.schemas`; request and query schemas are written in place, since a
//! request type is read by one route and its deserialize schema differs from a response's (a
//! field with a default is optional).

use super::doc::Answer;
use super::{Body, Route, table};
use crate::access::Access;
use schemars::generate::SchemaSettings;
use schemars::transform::RecursiveTransform;
use schemars::{Schema, SchemaGenerator};
use serde_json::{Map, Value, json};

/// The tags of the document, in the order of the table, with what each holds.
pub const TAGS: [(&str, &str); 8] = [
    ("identity", "Users, tokens, teams and their members"),
    ("workgroups", "Work groups, their members and quotas"),
    ("projects", "Projects, their commits, and experiments"),
    (
        "runs",
        "Runs, their logs, tracking and artifacts, and the MLflow-compatible API",
    ),
    (
        "models",
        "Models, their versions and files, images and manifests",
    ),
    ("serving", "Deployments, endpoints, keys and monitoring"),
    ("targets", "Compute targets and environments"),
    (
        "runtime",
        "Internal: the runtime contract between the control plane and its nodes, reachable \
         only with a runtime node's token. Not for clients.",
    ),
];

/// A `oneOf` of string constants (what schemars writes for an enum whose variants carry doc
/// comments) as a plain `enum`, the form every generator reads, the variants' comments kept in
/// the description.
fn plain_enum(schema: &mut Schema) {
    let Some(choices) = schema.get("oneOf").and_then(Value::as_array) else {
        return;
    };
    let values: Option<Vec<(Value, Option<String>)>> = choices
        .iter()
        .map(|choice| {
            if choice["type"] != "string" {
                return None;
            }
            let value = choice.get("const").cloned()?;
            let said = choice["description"].as_str().map(str::to_string);
            Some((value, said))
        })
        .collect();
    let Some(values) = values else {
        return;
    };
    let said: Vec<String> = values
        .iter()
        .filter_map(|(value, said)| {
            let said = said.as_ref()?.trim_end_matches('.');
            Some(format!("`{}`: {said}", value.as_str()?))
        })
        .collect();
    let mut description = schema
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if !said.is_empty() {
        if !description.is_empty() {
            description.push_str(if description.ends_with('.') {
                " "
            } else {
                ". "
            });
        }
        description.push_str(&said.join("; "));
        description.push('.');
    }
    schema.remove("oneOf");
    schema.insert("type".into(), json!("string"));
    schema.insert(
        "enum".into(),
        Value::Array(values.into_iter().map(|(value, _)| value).collect()),
    );
    if !description.is_empty() {
        schema.insert("description".into(), json!(description));
    }
}

fn binary(content_type: &str) -> Value {
    json!({ content_type: { "schema": { "type": "string", "format": "binary" } } })
}

/// A parameter's schema without `null`: a query parameter is present or absent, never null.
fn not_null(mut schema: Value) -> Value {
    if let Some(types) = schema.get("type").and_then(Value::as_array) {
        let types: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
        schema["type"] = match types.as_slice() {
            [one] => one.clone(),
            _ => Value::Array(types),
        };
    }
    if let Some(any) = schema.get("anyOf").and_then(Value::as_array) {
        let any: Vec<Value> = any
            .iter()
            .filter(|s| s.get("type") != Some(&json!("null")))
            .cloned()
            .collect();
        if let [one] = any.as_slice() {
            let mut one = one.clone();
            if let (Some(one), Some(description)) = (one.as_object_mut(), schema.get("description"))
            {
                one.insert("description".into(), description.clone());
            }
            return one;
        }
    }
    schema
}

/// What a path parameter names.
fn described(name: &str) -> String {
    match name {
        "run" => "The run's id (32 hex digits)".into(),
        "number" => "The run's number in its experiment, from 1".into(),
        "version" => "A version number, or an alias".into(),
        "commit" => "A commit id, or a branch such as main".into(),
        "token" => "The token's id".into(),
        "key" => "The metric's key".into(),
        "alias" => "The alias".into(),
        "workgroup" => "The work group's name".into(),
        other => format!("The {other}'s name"),
    }
}

fn parameters(route: &Route, requests: &mut SchemaGenerator) -> Vec<Value> {
    let mut parameters: Vec<Value> = route
        .path
        .split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| match name.strip_prefix('*') {
            Some(rest) => json!({
                "name": rest,
                "in": "path",
                "required": true,
                "description": if rest == "op" {
                    "MLflow's operation, such as runs/create: it may hold '/', as it is or as %2F"
                } else {
                    "The rest of the path: it may hold '/', as it is or as %2F"
                },
                "schema": { "type": "string" },
            }),
            None => json!({
                "name": name,
                "in": "path",
                "required": true,
                "description": described(name),
                "schema": { "type": "string" },
            }),
        })
        .collect();
    if let Some(query) = route.doc.query {
        let schema = query(requests).to_value();
        let required = schema["required"].as_array().cloned().unwrap_or_default();
        for (name, property) in schema["properties"].as_object().into_iter().flatten() {
            let mut parameter = json!({
                "name": name,
                "in": "query",
                "required": required.contains(&json!(name)),
                "schema": not_null(property.clone()),
            });
            if let Some(description) = property.get("description") {
                parameter["description"] = description.clone();
            }
            parameters.push(parameter);
        }
    }
    parameters
}

fn error(name: &str) -> Value {
    json!({ "$ref": format!("#/components/responses/{name}") })
}

fn operation(
    route: &Route,
    responses: &mut SchemaGenerator,
    requests: &mut SchemaGenerator,
) -> Value {
    let json_answer = |description: &str, responses: &mut SchemaGenerator| match route.doc.response
    {
        Some(schema) => {
            let schema = schema(responses).to_value();
            // Any JSON (`true`) is, for this API, always an object.
            let schema = match schema {
                Value::Bool(true) => json!({ "type": "object" }),
                schema => schema,
            };
            json!({
                "description": description,
                "content": { "application/json": { "schema": schema } },
            })
        }
        None => json!({ "description": description }),
    };
    let (status, success) = match route.doc.answer {
        Answer::Ok => ("200", json_answer("OK", responses)),
        Answer::Created | Answer::Upsert => ("201", json_answer("Created", responses)),
        Answer::Accepted => ("202", json_answer("Accepted", responses)),
        Answer::Text => (
            "200",
            json!({
                "description": "The text, streamed",
                "content": { "text/plain": { "schema": { "type": "string" } } },
            }),
        ),
        Answer::Bytes => (
            "200",
            json!({ "description": "The file", "content": binary("application/octet-stream") }),
        ),
        Answer::Mlflow => (
            "200",
            json!({
                "description": "MLflow's answer to the operation, as MLflow's REST API documents it",
                "content": { "application/json": { "schema": { "type": "object" } } },
            }),
        ),
    };
    let failure = if route.path.contains("/mlflow") {
        "MlflowError"
    } else {
        "Error"
    };
    let mut answers = Map::new();
    if route.doc.answer == Answer::Upsert {
        answers.insert("200".into(), json_answer("Changed", responses));
    }
    answers.insert(status.into(), success);
    // Refusals of the access layer are the control plane's own errors on every route.
    for code in ["400", "401", "403", "404", "default"] {
        let family = if ["401", "403"].contains(&code) {
            "Error"
        } else {
            failure
        };
        answers.insert(code.into(), error(family));
    }
    let mut operation = json!({
        "operationId": route.operation,
        "summary": route.summary,
        "tags": [route.tag],
        "parameters": parameters(route, requests),
        "x-kiln-access": route.access.label(),
        "responses": answers,
    });
    if route.access == Access::Open {
        operation["security"] = json!([]);
    }
    if route.access == Access::Runtime {
        operation["x-internal"] = json!(true);
    }
    if route.doc.answer == Answer::Mlflow {
        operation["externalDocs"] = json!({
            "description": "MLflow's REST API",
            "url": "https://mlflow.org/docs/latest/api_reference/rest-api.html",
        });
    }
    let content = match route.body {
        Body::Empty => None,
        Body::Json => {
            let schema = match route.doc.request {
                Some(schema) => schema(requests).to_value(),
                None => json!({ "type": "object" }),
            };
            Some(json!({ "application/json": { "schema": schema } }))
        }
        Body::Tar => Some(binary("application/x-tar")),
        Body::Bytes => Some(binary("application/octet-stream")),
    };
    if let Some(content) = content {
        operation["requestBody"] = json!({ "required": true, "content": content });
    }
    operation
}

/// The OpenAPI 3.1 document of the management API, made from the route table.
pub fn openapi() -> Value {
    let mut responses = SchemaSettings::draft2020_12()
        .for_serialize()
        .with(|s| {
            s.definitions_path = "/components/schemas".into();
            s.meta_schema = None;
        })
        .with_transform(RecursiveTransform(plain_enum))
        .into_generator();
    let mut requests = SchemaSettings::draft2020_12()
        .for_deserialize()
        .with(|s| {
            s.inline_subschemas = true;
            s.meta_schema = None;
        })
        .with_transform(RecursiveTransform(plain_enum))
        .into_generator();
    let mut paths = Map::new();
    for route in table() {
        let operation = operation(&route, &mut responses, &mut requests);
        let entry = paths
            .entry(route.path.replace("{*", "{"))
            .or_insert_with(|| json!({}));
        entry[route.method.as_str().to_lowercase()] = operation;
    }
    let mut schemas = responses.take_definitions(true);
    schemas.insert(
        "Error".into(),
        json!({
            "description": "An error of the management API",
            "type": "object",
            "properties": { "error": { "type": "string", "description": "What went wrong" } },
            "required": ["error"],
        }),
    );
    schemas.insert(
        "MlflowError".into(),
        json!({
            "description": "An error of the MLflow-compatible API, in MLflow's shape",
            "type": "object",
            "properties": {
                "error_code": {
                    "type": "string",
                    "description": "MLflow's error code, such as RESOURCE_DOES_NOT_EXIST",
                },
                "message": { "type": "string" },
            },
            "required": ["error_code", "message"],
        }),
    );
    let tags: Vec<Value> = TAGS
        .iter()
        .map(|(name, description)| json!({ "name": name, "description": description }))
        .collect();
    json!({
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": "Kiln control plane",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Teams, work groups, projects, models, images and deployments. Authenticate with `Authorization: Bearer <token>`.",
        },
        "tags": tags,
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": { "token": { "type": "http", "scheme": "bearer" } },
            "responses": {
                "Error": {
                    "description": "An error",
                    "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } },
                },
                "MlflowError": {
                    "description": "An error of the operation, in MLflow's shape; a refusal of access (a work group the caller cannot see answers 404) is an Error",
                    "content": { "application/json": { "schema": { "anyOf": [
                        { "$ref": "#/components/schemas/MlflowError" },
                        { "$ref": "#/components/schemas/Error" },
                    ] } } },
                },
            },
        },
        "security": [{ "token": [] }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::doc::Answer;

    fn component<'a>(doc: &'a Value, schema: &Value) -> Option<&'a Value> {
        let name = schema["$ref"].as_str()?;
        doc.pointer(name.trim_start_matches('#'))
    }

    #[test]
    fn every_json_body_and_answer_has_a_schema() {
        if let Ok(path) = std::env::var("KILN_DUMP_OPENAPI") {
            let text = serde_json::to_string_pretty(&openapi()).expect("document");
            std::fs::write(path, text).expect("dump");
        }
        let doc = openapi();
        for route in table() {
            let path = route.path.replace("{*", "{");
            let op = &doc["paths"][&path][route.method.as_str().to_lowercase()];
            let id = route.operation;
            if route.body == Body::Json && route.doc.answer != Answer::Mlflow {
                let schema = &op["requestBody"]["content"]["application/json"]["schema"];
                assert!(
                    schema["properties"].is_object() || schema["oneOf"].is_array(),
                    "{id}: request schema {schema}"
                );
            }
            let success = match route.doc.answer {
                Answer::Ok | Answer::Text | Answer::Bytes | Answer::Mlflow => "200",
                Answer::Created | Answer::Upsert => "201",
                Answer::Accepted => "202",
            };
            let content = &op["responses"][success]["content"];
            assert!(content.is_object(), "{id}: no content for {success}");
            if matches!(
                route.doc.answer,
                Answer::Ok | Answer::Created | Answer::Upsert | Answer::Accepted
            ) && id != "openapi"
            {
                let schema = &content["application/json"]["schema"];
                let shown = component(&doc, schema)
                    .unwrap_or_else(|| panic!("{id}: answer {schema} is not a named type"));
                assert!(
                    shown["properties"].is_object() || shown["oneOf"].is_array(),
                    "{id}: answer {schema} is {shown}"
                );
            }
        }
    }

    #[test]
    fn names_and_references_hold() {
        let doc = openapi();
        let schemas = doc["components"]["schemas"].as_object().expect("schemas");
        assert!(schemas.len() > 40, "{} schemas", schemas.len());
        for name in schemas.keys() {
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-_".contains(c)),
                "{name} is not a component name"
            );
        }
        let text = doc.to_string();
        for piece in text.split("\"$ref\":\"").skip(1) {
            let target = &piece[..piece.find('"').expect("end")];
            assert!(
                doc.pointer(target.trim_start_matches('#')).is_some(),
                "dangling {target}"
            );
        }
        let mut ids: Vec<&str> = table().iter().map(|r| r.operation).collect();
        let all = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), all, "operation ids are unique");
    }

    #[test]
    fn what_a_client_author_reads() {
        let doc = openapi();
        let wg = "/api/v1/teams/{team}/workgroups/{workgroup}";
        // A listing says what it lists, and how to page it.
        let list = &doc["paths"][format!("{wg}/models")]["get"];
        let page = component(
            &doc,
            &list["responses"]["200"]["content"]["application/json"]["schema"],
        )
        .expect("a page");
        assert_eq!(page["required"], json!(["items", "next"]));
        let item = component(&doc, &page["properties"]["items"]["items"]).expect("a model");
        assert!(item["properties"]["name"].is_object(), "{item}");
        let query: Vec<&Value> = list["parameters"]
            .as_array()
            .expect("parameters")
            .iter()
            .filter(|p| p["in"] == "query")
            .collect();
        assert_eq!(query.len(), 2, "{query:?}");
        assert_eq!(query[0]["name"], "limit");
        assert_eq!(query[0]["schema"]["type"], "integer");
        assert_eq!(query[1]["name"], "after");
        // Creates answer 201; a cancel 202; logs are text; files are bytes.
        let create = &doc["paths"][format!("{wg}/models")]["post"];
        assert!(create["responses"]["201"].is_object(), "{create}");
        assert!(create["responses"].get("200").is_none());
        let run = format!("{wg}/runs/{{run}}");
        assert!(doc["paths"][format!("{run}/cancel")]["post"]["responses"]["202"].is_object());
        assert_eq!(
            doc["paths"][format!("{run}/logs")]["get"]["responses"]["200"]["content"]["text/plain"]
                ["schema"]["type"],
            "string"
        );
        let logs = doc["paths"][format!("{run}/logs")]["get"]["parameters"].to_string();
        assert!(logs.contains("\"follow\""), "{logs}");
        let file = &doc["paths"][format!("{run}/artifacts/{{path}}")]["get"];
        assert!(file["responses"]["200"]["content"]["application/octet-stream"].is_object());
        let rest = &file["parameters"][3];
        assert_eq!(rest["name"], "path");
        assert!(rest["description"].as_str().expect("said").contains('/'));
        // A run by number is named apart from a run by id.
        let by_number =
            format!("{wg}/projects/{{project}}/experiments/{{experiment}}/runs/{{number}}");
        assert!(doc["paths"][&by_number]["get"].is_object());
        // MLflow's routes answer MLflow's errors; the artifact listing needs its path.
        let mlflow = format!("{wg}/projects/{{project}}/mlflow/api/2.0");
        let listing = &doc["paths"][format!("{mlflow}/mlflow-artifacts/artifacts")]["get"];
        assert_eq!(
            listing["responses"]["404"]["$ref"],
            "#/components/responses/MlflowError"
        );
        assert_eq!(listing["parameters"][3]["name"], "path");
        assert_eq!(listing["parameters"][3]["required"], true);
        // The runtime contract is internal.
        let desired = &doc["paths"]["/api/v1/runtime/deployments"]["get"];
        assert_eq!(desired["tags"], json!(["runtime"]));
        assert_eq!(desired["x-internal"], true);
    }
}
