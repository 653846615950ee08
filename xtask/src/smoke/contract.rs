//! The bodies smoke checks, held to the service's own OpenAPI document: each answer's status
//! must be documented for its operation and its JSON body must match the documented schema.
//!
//! The validator covers the JSON Schema subset the service's document uses (utoipa's output):
//! `$ref` within the document, `type` (one or a list), `enum`, `const`, `required`,
//! `properties`, `additionalProperties`, `items`, `oneOf` / `anyOf` / `allOf`, `minimum` /
//! `maximum`, `minLength` / `maxLength`, and the `date` and `date-time` formats. `pattern` and
//! other formats are not checked (the service's patterns describe requests, not answers).

use serde_json::Value;

/// The most problems reported for one body.
const MAX_PROBLEMS: usize = 5;

/// Validates `value` against `schema`, resolving `$ref`s in `document`; the problems, each
/// with its JSON path.
pub fn validate(document: &Value, schema: &Value, value: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    check(document, schema, value, "$", &mut problems, 0);
    problems.truncate(MAX_PROBLEMS);
    problems
}

/// The schema of the JSON body `document` gives for `method path` answering `status`:
/// `Ok(None)` when the answer is documented without a JSON body, `Err` when the operation or
/// the status is not documented.
pub fn response_schema<'a>(
    document: &'a Value,
    method: &str,
    path: &str,
    status: u16,
) -> Result<Option<&'a Value>, String> {
    let operation = document
        .get("paths")
        .and_then(|p| p.get(path))
        .and_then(|p| p.get(method.to_ascii_lowercase()))
        .ok_or_else(|| format!("{method} {path} is not in the document"))?;
    let responses = &operation["responses"];
    let response = responses
        .get(status.to_string())
        .or_else(|| responses.get(format!("{}XX", status / 100)))
        .or_else(|| responses.get("default"))
        .ok_or_else(|| format!("{method} {path} answered {status}, which is not documented"))?;
    let response = resolve(document, response).unwrap_or(response);
    Ok(response
        .get("content")
        .and_then(|c| c.get("application/json"))
        .and_then(|c| c.get("schema")))
}

fn resolve<'a>(document: &'a Value, schema: &'a Value) -> Option<&'a Value> {
    let reference = schema.get("$ref")?.as_str()?;
    document.pointer(reference.strip_prefix('#')?)
}

fn check(
    document: &Value,
    schema: &Value,
    value: &Value,
    at: &str,
    problems: &mut Vec<String>,
    depth: usize,
) {
    if depth > 32 || problems.len() >= MAX_PROBLEMS {
        return;
    }
    let Some(schema) = schema.as_object() else {
        // `true` accepts everything, `false` nothing.
        if schema == &Value::Bool(false) {
            problems.push(format!("{at}: no value is allowed here"));
        }
        return;
    };
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        match reference
            .strip_prefix('#')
            .and_then(|pointer| document.pointer(pointer))
        {
            Some(target) => check(document, target, value, at, problems, depth + 1),
            None => problems.push(format!("{at}: $ref {reference} does not resolve")),
        }
    }
    if let Some(Value::Array(all)) = schema.get("allOf") {
        for sub in all {
            check(document, sub, value, at, problems, depth + 1);
        }
    }
    for (keyword, exactly_one) in [("oneOf", true), ("anyOf", false)] {
        if let Some(Value::Array(options)) = schema.get(keyword) {
            let matching = options
                .iter()
                .filter(|sub| {
                    let mut scratch = Vec::new();
                    check(document, sub, value, at, &mut scratch, depth + 1);
                    scratch.is_empty()
                })
                .count();
            if matching == 0 || (exactly_one && matching > 1) {
                problems.push(format!(
                    "{at}: matches {matching} of the {} schemas of {keyword}",
                    options.len()
                ));
            }
        }
    }
    if let Some(types) = schema.get("type") {
        let allowed: Vec<&str> = match types {
            Value::String(t) => vec![t.as_str()],
            Value::Array(list) => list.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !allowed.iter().any(|t| has_type(value, t)) {
            problems.push(format!(
                "{at}: expected {}, found {}",
                allowed.join(" or "),
                type_name(value)
            ));
            return;
        }
    }
    if let Some(Value::Array(options)) = schema.get("enum")
        && !options.contains(value)
    {
        problems.push(format!(
            "{at}: {value} is not one of {}",
            Value::Array(options.clone())
        ));
    }
    if let Some(constant) = schema.get("const")
        && constant != value
    {
        problems.push(format!("{at}: expected {constant}, found {value}"));
    }
    match value {
        Value::Object(map) => {
            if let Some(Value::Array(required)) = schema.get("required") {
                for name in required.iter().filter_map(Value::as_str) {
                    if !map.contains_key(name) {
                        problems.push(format!("{at}: the required field `{name}` is missing"));
                    }
                }
            }
            let properties = schema.get("properties").and_then(Value::as_object);
            for (name, field) in map {
                let field_at = format!("{at}.{name}");
                match properties.and_then(|p| p.get(name)) {
                    Some(sub) => check(document, sub, field, &field_at, problems, depth + 1),
                    None => match schema.get("additionalProperties") {
                        Some(Value::Bool(false)) => {
                            problems.push(format!("{field_at}: not a documented field"));
                        }
                        Some(sub @ Value::Object(_)) => {
                            check(document, sub, field, &field_at, problems, depth + 1);
                        }
                        _ => {}
                    },
                }
            }
        }
        Value::Array(items) => {
            if let Some(sub) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    check(
                        document,
                        sub,
                        item,
                        &format!("{at}[{i}]"),
                        problems,
                        depth + 1,
                    );
                }
            }
        }
        Value::Number(n) => {
            let n = n.as_f64().unwrap_or(f64::NAN);
            if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
                && n < min
            {
                problems.push(format!("{at}: {n} is below the minimum {min}"));
            }
            if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
                && n > max
            {
                problems.push(format!("{at}: {n} is above the maximum {max}"));
            }
        }
        Value::String(s) => {
            let chars = s.chars().count() as u64;
            if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
                && chars < min
            {
                problems.push(format!("{at}: shorter than {min} characters"));
            }
            if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
                && chars > max
            {
                problems.push(format!("{at}: longer than {max} characters"));
            }
            let format_ok = match schema.get("format").and_then(Value::as_str) {
                Some("date") => chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok(),
                Some("date-time") => chrono::DateTime::parse_from_rfc3339(s).is_ok(),
                _ => true,
            };
            if !format_ok {
                problems.push(format!("{at}: `{s}` is not a {}", schema["format"]));
            }
        }
        _ => {}
    }
}

fn has_type(value: &Value, name: &str) -> bool {
    match name {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "string" => value.is_string(),
        "object" => value.is_object(),
        "array" => value.is_array(),
        "number" => value.is_number(),
        "integer" => {
            value.is_i64() || value.is_u64() || value.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        _ => false,
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn document() -> Value {
        json!({
            "openapi": "3.1.0",
            "paths": { "/things": { "get": { "responses": {
                "200": { "description": "ok", "content": { "application/json": {
                    "schema": { "type": "array", "items": { "$ref": "#/components/schemas/Thing" } }
                } } },
                "503": { "description": "down" }
            } } } },
            "components": { "schemas": {
                "Thing": {
                    "type": "object",
                    "required": ["id", "status", "day"],
                    "properties": {
                        "id": { "type": "integer", "format": "int64", "minimum": 1 },
                        "status": { "type": "string", "enum": ["on", "off"] },
                        "day": { "type": "string", "format": "date" },
                        "note": { "type": ["string", "null"], "maxLength": 5 },
                        "parent": { "oneOf": [{ "type": "null" }, { "$ref": "#/components/schemas/Thing" }] }
                    },
                    "additionalProperties": false
                }
            } }
        })
    }

    fn problems(value: Value) -> Vec<String> {
        let doc = document();
        let schema = response_schema(&doc, "GET", "/things", 200)
            .unwrap()
            .unwrap();
        validate(&doc, schema, &value)
    }

    #[test]
    fn a_conforming_body_has_no_problems() {
        let ok = json!([
            { "id": 1, "status": "on", "day": "2026-12-01", "note": null, "parent": null },
            { "id": 2, "status": "off", "day": "2026-12-02",
              "parent": { "id": 1, "status": "on", "day": "2026-12-01" } }
        ]);
        assert_eq!(problems(ok), Vec::<String>::new());
    }

    #[test]
    fn each_rule_reports_its_path() {
        let cases = [
            (json!({}), "$: expected array, found object"),
            (
                json!([{ "id": 1, "status": "on" }]),
                "$[0]: the required field `day` is missing",
            ),
            (
                json!([{ "id": "1", "status": "on", "day": "2026-12-01" }]),
                "$[0].id: expected integer, found string",
            ),
            (
                json!([{ "id": 0, "status": "on", "day": "2026-12-01" }]),
                "$[0].id: 0 is below the minimum 1",
            ),
            (
                json!([{ "id": 1, "status": "maybe", "day": "2026-12-01" }]),
                "$[0].status: \"maybe\" is not one of",
            ),
            (
                json!([{ "id": 1, "status": "on", "day": "01/12/2026" }]),
                "$[0].day: `01/12/2026` is not a \"date\"",
            ),
            (
                json!([{ "id": 1, "status": "on", "day": "2026-12-01", "note": "too long" }]),
                "$[0].note: longer than 5",
            ),
            (
                json!([{ "id": 1, "status": "on", "day": "2026-12-01", "extra": 1 }]),
                "$[0].extra: not a documented field",
            ),
            (
                json!([{ "id": 1, "status": "on", "day": "2026-12-01", "parent": 3 }]),
                "$[0].parent: matches 0 of the 2 schemas of oneOf",
            ),
        ];
        for (value, expected) in cases {
            let found = problems(value.clone());
            assert!(
                found.iter().any(|p| p.starts_with(expected)),
                "{value}: expected `{expected}`, got {found:?}"
            );
        }
    }

    #[test]
    fn statuses_and_refs_must_be_documented() {
        let doc = document();
        assert_eq!(response_schema(&doc, "GET", "/things", 503), Ok(None));
        let error = response_schema(&doc, "GET", "/things", 404).unwrap_err();
        assert!(error.contains("404, which is not documented"), "{error}");
        assert!(response_schema(&doc, "POST", "/things", 200).is_err());
        let dangling = json!({ "$ref": "#/components/schemas/Nope" });
        let found = validate(&doc, &dangling, &json!(1));
        assert_eq!(
            found,
            ["$: $ref #/components/schemas/Nope does not resolve"]
        );
    }
}
