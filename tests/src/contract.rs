//! The API contract, checked on every call the tests make through [`Up::api`](crate::Up::api):
//! each answer of the management API must be one its operation declares in the served OpenAPI
//! document (its status among the operation's responses, its content type among that
//! response's), and a JSON body must match the declared schema, an error body the error
//! schema of its family. A handler whose body drifts from its declared type fails whichever
//! test calls it. Validation is by the `jsonschema` crate, JSON Schema 2020-12.

use crate::Reply;
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

/// The served document, and a validator per schema, compiled on first use.
pub struct Contract {
    components: Value,
    operations: Vec<Operation>,
    validators: Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
    checked: Mutex<BTreeSet<String>>,
}

struct Operation {
    method: String,
    segments: Vec<String>,
    id: String,
    responses: Value,
}

impl Contract {
    /// The contract of a served document.
    pub fn new(document: &Value) -> Contract {
        let mut operations = Vec::new();
        for (path, methods) in document["paths"].as_object().into_iter().flatten() {
            for (method, operation) in methods.as_object().into_iter().flatten() {
                operations.push(Operation {
                    method: method.to_uppercase(),
                    segments: path.split('/').map(str::to_string).collect(),
                    id: operation["operationId"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    responses: operation["responses"].clone(),
                });
            }
        }
        Contract {
            components: document["components"].clone(),
            operations,
            validators: Mutex::new(HashMap::new()),
            checked: Mutex::new(BTreeSet::new()),
        }
    }

    /// The operation a concrete call is: the template whose segments fit (a parameter matches
    /// one segment, a last parameter any rest), with most literal segments.
    fn operation(&self, method: &str, path: &str) -> Option<&Operation> {
        let path = path.split('?').next().unwrap_or(path);
        let concrete: Vec<&str> = path.split('/').collect();
        self.operations
            .iter()
            .filter(|o| o.method == method)
            .filter_map(|o| {
                let param = |s: &str| s.starts_with('{');
                let last_takes_rest = o.segments.last().is_some_and(|s| param(s));
                let fits = o.segments.len() == concrete.len()
                    || (last_takes_rest && concrete.len() > o.segments.len());
                if !fits {
                    return None;
                }
                let mut literal = 0;
                for (t, c) in o.segments.iter().zip(&concrete) {
                    if param(t) {
                        continue;
                    }
                    if t != c {
                        return None;
                    }
                    literal += 1;
                }
                Some((literal, o.segments.len() == concrete.len(), o))
            })
            .max_by_key(|(literal, exact, _)| (*literal, *exact))
            .map(|(_, _, o)| o)
    }

    fn validator(&self, key: &str, schema: &Value) -> Arc<jsonschema::Validator> {
        let mut validators = self.validators.lock().unwrap();
        validators
            .entry(key.to_string())
            .or_insert_with(|| {
                let schema = json!({
                    "$schema": "https://json-schema.org/draft/2020-12/schema",
                    "allOf": [schema],
                    "components": self.components,
                });
                Arc::new(jsonschema::validator_for(&schema).unwrap_or_else(|e| {
                    panic!("the API document's schema {key} does not compile: {e}")
                }))
            })
            .clone()
    }

    /// The response an operation declares for a status: `$ref`s to shared responses followed,
    /// `default` when the status has none of its own.
    fn declared<'a>(&'a self, operation: &'a Operation, status: u16) -> Option<&'a Value> {
        let response = operation
            .responses
            .get(status.to_string())
            .or_else(|| (status >= 400).then(|| operation.responses.get("default"))?)?;
        match response["$ref"].as_str() {
            Some(reference) => {
                let name = reference.trim_start_matches("#/components/responses/");
                self.components["responses"].get(name)
            }
            None => Some(response),
        }
    }

    /// Panics when `reply` to `method path` is not an answer its operation declares.
    pub fn check(&self, method: &str, path: &str, reply: &Reply) {
        if reply.status == 0 {
            return;
        }
        let Some(operation) = self.operation(method, path) else {
            return; // not a route: the fallback's 404
        };
        let id = &operation.id;
        let declared = self.declared(operation, reply.status).unwrap_or_else(|| {
            panic!(
                "{method} {path} ({id}) answered {}, which its operation does not declare: {}",
                reply.status,
                String::from_utf8_lossy(&reply.body)
            )
        });
        let content_type = reply.header("content-type").unwrap_or_default();
        let media = content_type.split(';').next().unwrap_or_default().trim();
        let Some(content) = declared["content"].as_object() else {
            return; // no body declared
        };
        let Some(schema) = content.get(media).map(|c| &c["schema"]) else {
            panic!(
                "{method} {path} ({id}) answered {} as {content_type}; declared {:?}",
                reply.status,
                content.keys().collect::<Vec<_>>()
            );
        };
        if media != "application/json" {
            return;
        }
        let body: Value = serde_json::from_slice(&reply.body).unwrap_or_else(|e| {
            panic!(
                "{method} {path} ({id}) answered {} with a body that is not JSON ({e}): {}",
                reply.status,
                String::from_utf8_lossy(&reply.body)
            )
        });
        // One validator per schema: the error schemas every operation shares compile once.
        let validator = self.validator(&schema.to_string(), schema);
        let errors: Vec<String> = validator
            .iter_errors(&body)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{method} {path} ({id}) answered {} outside its declared schema {schema}: \
             {errors:?}\n{body}",
            reply.status,
        );
        if (200..300).contains(&reply.status) {
            self.checked.lock().unwrap().insert(id.clone());
        }
    }

    /// The `GET` operations that declare a JSON success and whose success no call has
    /// checked yet.
    pub fn unchecked_reads(&self) -> Vec<String> {
        let checked = self.checked.lock().unwrap();
        self.operations
            .iter()
            .filter(|o| o.method == "GET" && !checked.contains(&o.id))
            .filter(|o| o.responses["200"]["content"]["application/json"].is_object())
            .map(|o| o.id.clone())
            .collect()
    }

    /// How many operations had a success checked.
    pub fn checked(&self) -> usize {
        self.checked.lock().unwrap().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contract() -> Contract {
        Contract::new(&json!({
            "paths": { "/api/v1/things/{thing}": { "get": {
                "operationId": "getThing",
                "responses": {
                    "200": { "content": { "application/json": {
                        "schema": { "$ref": "#/components/schemas/Thing" } } } },
                    "404": { "$ref": "#/components/responses/Error" },
                },
            } } },
            "components": {
                "schemas": {
                    "Thing": {
                        "type": "object",
                        "properties": { "size": { "type": "integer" } },
                        "required": ["size"],
                    },
                    "Error": {
                        "type": "object",
                        "properties": { "error": { "type": "string" } },
                        "required": ["error"],
                    },
                },
                "responses": { "Error": { "content": { "application/json": {
                    "schema": { "$ref": "#/components/schemas/Error" } } } } },
            },
        }))
    }

    fn reply(status: u16, body: &str) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn declared_answers_pass() {
        let contract = contract();
        contract.check("GET", "/api/v1/things/a", &reply(200, r#"{"size": 3}"#));
        contract.check("GET", "/api/v1/things/a", &reply(404, r#"{"error": "no"}"#));
        assert_eq!(contract.checked(), 1);
        assert!(contract.unchecked_reads().is_empty());
    }

    #[test]
    #[should_panic(expected = "outside its declared schema")]
    fn a_body_outside_its_schema_fails() {
        contract().check("GET", "/api/v1/things/a", &reply(200, r#"{"size": "3"}"#));
    }

    #[test]
    #[should_panic(expected = "does not declare")]
    fn an_undeclared_status_fails() {
        contract().check("GET", "/api/v1/things/a", &reply(201, r#"{"size": 3}"#));
    }

    #[test]
    #[should_panic(expected = "declared [\"application/json\"]")]
    fn an_undeclared_content_type_fails() {
        let mut text = reply(200, "3");
        text.headers = vec![("content-type".into(), "text/plain".into())];
        contract().check("GET", "/api/v1/things/a", &text);
    }
}
