//! The API reference (`docs/api.md`), written from the OpenAPI document: each operation by tag
//! with its access, parameters, body and answers, then each shared schema with its fields.

use serde_json::{Map, Value};
use std::fmt::Write;

/// A schema as a short type: a link for a named schema, `[T]` for an array, `T or null`, the
/// values of an enumeration.
fn shown(schema: &Value) -> String {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.rsplit('/').next().unwrap_or(reference);
        return format!("[{name}](#{})", name.to_lowercase());
    }
    if let Some(value) = schema.get("const") {
        return format!("`{value}`");
    }
    if let Some(values) = schema["enum"].as_array() {
        let values: Vec<String> = values.iter().map(|v| format!("`{v}`")).collect();
        return values.join(" \\| ");
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(choices) = schema[key].as_array() {
            let choices: Vec<String> = choices.iter().map(shown).collect();
            return choices.join(" \\| ");
        }
    }
    if let Some(all) = schema["allOf"].as_array()
        && let [one] = all.as_slice()
    {
        return shown(one);
    }
    let one = |kind: &str| match kind {
        "array" => format!("[{}]", shown(&schema["items"])),
        "object" => match schema.get("additionalProperties") {
            Some(values) if values.is_object() => format!("map of {}", shown(values)),
            _ => "object".to_string(),
        },
        "string" if schema["format"] == "binary" => "bytes".to_string(),
        other => other.to_string(),
    };
    match &schema["type"] {
        Value::String(kind) => one(kind),
        Value::Array(kinds) => {
            let kinds: Vec<String> = kinds
                .iter()
                .filter_map(Value::as_str)
                .filter(|k| *k != "null")
                .map(one)
                .collect();
            format!("{} or null", kinds.join(" or "))
        }
        _ => "any".to_string(),
    }
}

/// Text for a table cell: one line, pipes escaped.
fn cell(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

fn fields(out: &mut String, schema: &Value) {
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(properties) = schema["properties"].as_object() else {
        return;
    };
    out.push_str("| field | type | required | description |\n|---|---|---|---|\n");
    for (name, property) in properties {
        let _ = writeln!(
            out,
            "| `{name}` | {} | {} | {} |",
            shown(property),
            if required.contains(&name.as_str()) {
                "yes"
            } else {
                "no"
            },
            cell(property["description"].as_str().unwrap_or_default())
        );
    }
}

fn operation(out: &mut String, method: &str, path: &str, op: &Value) {
    let _ = writeln!(out, "### `{} {path}`\n", method.to_uppercase());
    let _ = writeln!(
        out,
        "{}\n",
        op["summary"].as_str().unwrap_or_default().trim()
    );
    let _ = writeln!(
        out,
        "`{}` · access: {}{}\n",
        op["operationId"].as_str().unwrap_or_default(),
        op["x-kiln-access"].as_str().unwrap_or_default(),
        if op["x-internal"] == true {
            " · internal"
        } else {
            ""
        }
    );
    let parameters = op["parameters"].as_array().cloned().unwrap_or_default();
    if !parameters.is_empty() {
        out.push_str("| parameter | in | type | required | description |\n");
        out.push_str("|---|---|---|---|---|\n");
        for p in &parameters {
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} | {} |",
                p["name"].as_str().unwrap_or_default(),
                p["in"].as_str().unwrap_or_default(),
                shown(&p["schema"]),
                if p["required"] == true { "yes" } else { "no" },
                cell(p["description"].as_str().unwrap_or_default())
            );
        }
        out.push('\n');
    }
    if let Some(content) = op["requestBody"]["content"].as_object() {
        for (media, body) in content {
            let schema = &body["schema"];
            if schema["properties"].is_object() {
                let _ = writeln!(out, "Body (`{media}`):\n");
                fields(out, schema);
                out.push('\n');
            } else {
                let _ = writeln!(out, "Body (`{media}`): {}\n", shown(schema));
            }
        }
    }
    let mut answers = Vec::new();
    let mut errors: Vec<(String, Vec<String>)> = Vec::new();
    for (status, answer) in op["responses"].as_object().into_iter().flatten() {
        match answer["$ref"].as_str() {
            Some(reference) => {
                let name = reference
                    .rsplit('/')
                    .next()
                    .unwrap_or(reference)
                    .to_string();
                match errors.iter_mut().find(|(n, _)| *n == name) {
                    Some((_, statuses)) => statuses.push(format!("`{status}`")),
                    None => errors.push((name, vec![format!("`{status}`")])),
                }
            }
            None => {
                let content: Vec<String> = answer["content"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(media, c)| format!("{} (`{media}`)", shown(&c["schema"])))
                    .collect();
                answers.push(format!("`{status}` {}", content.join(", ")));
            }
        }
    }
    let errors: Vec<String> = errors
        .iter()
        .map(|(name, statuses)| {
            format!("{} [{name}](#{})", statuses.join(" "), name.to_lowercase())
        })
        .collect();
    let _ = writeln!(
        out,
        "Answers: {}; errors: {}\n",
        answers.join(" · "),
        errors.join(" · ")
    );
}

/// The reference of an OpenAPI document, as Markdown.
pub fn reference(document: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# API reference\n\n\
         Every operation of `{}` {}, written from the OpenAPI document that `kiln up` serves at \
         `/api/v1/openapi.json` (`KILN_WRITE_DOCS=1 cargo test -p kiln-control` writes this file \
         again; a test fails when it no longer matches). {}\n\n\
         The access of an operation: `open` needs no token, `user` any user's token, `admin` an \
         administrator's, `team:ROLE` and `workgroup:ROLE` that role or a higher one in the team \
         or work group of the path, `runtime` a runtime node's token. Errors answer \
         [Error](#error), or [MlflowError](#mlflowerror) on the MLflow-compatible routes. See \
         [the control plane](control-plane.md) for what the document promises and how it is \
         tested.\n",
        document["info"]["title"].as_str().unwrap_or_default(),
        document["info"]["version"].as_str().unwrap_or_default(),
        document["info"]["description"].as_str().unwrap_or_default(),
    );
    let empty = Map::new();
    let paths = document["paths"].as_object().unwrap_or(&empty);
    for tag in document["tags"].as_array().into_iter().flatten() {
        let name = tag["name"].as_str().unwrap_or_default();
        let _ = writeln!(
            out,
            "## {name}\n\n{}\n",
            tag["description"].as_str().unwrap_or_default()
        );
        for (path, methods) in paths {
            for (method, op) in methods.as_object().into_iter().flatten() {
                if op["tags"][0] == name {
                    operation(&mut out, method, path, op);
                }
            }
        }
    }
    out.push_str("## Schemas\n\n");
    let schemas = document["components"]["schemas"]
        .as_object()
        .unwrap_or(&empty);
    for (name, schema) in schemas {
        let _ = writeln!(out, "### {name}\n");
        if let Some(description) = schema["description"].as_str() {
            let _ = writeln!(out, "{}\n", description.trim());
        }
        if schema["properties"].is_object() {
            fields(&mut out, schema);
        } else {
            let _ = writeln!(out, "One of: {}", shown(schema));
        }
        out.push('\n');
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_reference_is_the_document() {
        let written = reference(&super::super::openapi());
        let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/api.md");
        if std::env::var_os("KILN_WRITE_DOCS").is_some() {
            std::fs::write(&file, &written).expect("docs/api.md written");
        }
        let on_disk = std::fs::read_to_string(&file).unwrap_or_default();
        assert!(
            on_disk == written,
            "docs/api.md is not the API document any more: run \
             KILN_WRITE_DOCS=1 cargo test -p kiln-control the_api_reference"
        );
        // What a reader looks for is there.
        assert!(written.contains("### `POST /api/v1/teams`"));
        assert!(written.contains("`201` [Team](#team) (`application/json`)"));
        assert!(written.contains("### RunPage"));
        assert!(written.contains("| `limit` | query | integer | no |"));
    }

    #[test]
    fn types_read_as_types() {
        let schema = serde_json::json!({ "type": ["integer", "null"] });
        assert_eq!(shown(&schema), "integer or null");
        let schema =
            serde_json::json!({ "type": "array", "items": { "$ref": "#/components/schemas/Run" } });
        assert_eq!(shown(&schema), "[[Run](#run)]");
        let schema = serde_json::json!({ "oneOf": [{ "const": "a" }, { "const": "b" }] });
        assert_eq!(shown(&schema), "`\"a\"` \\| `\"b\"`");
        let schema =
            serde_json::json!({ "type": "object", "additionalProperties": { "type": "string" } });
        assert_eq!(shown(&schema), "map of string");
    }
}
