//! The OpenAPI document: served, OpenAPI 3.1, every `$ref` resolves, every documented route is
//! really routed, and no route is registered around the document.

use crate::common;

use std::path::Path;

use common::{Backend, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::Value;

async fn served_document(app: &TestApp) -> Value {
    let (status, doc) = app.get("/api/v1/openapi.json").await;
    assert_eq!(status, StatusCode::OK, "{doc}");
    doc
}

fn collect_refs(value: &Value, refs: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("$ref", Value::String(r)) => refs.push(r.clone()),
                    _ => collect_refs(v, refs),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, refs)),
        _ => {}
    }
}

#[tokio::test]
async fn the_document_is_openapi_3_1_and_every_ref_resolves() {
    let app = TestApp::spawn(Backend::Sqlite, "openapi_doc")
        .await
        .unwrap();
    let doc = served_document(&app).await;
    let version = doc["openapi"].as_str().expect("an `openapi` field");
    assert!(version.starts_with("3.1."), "version {version}");
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    let paths = doc["paths"].as_object().expect("paths");
    assert!(!paths.is_empty());

    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(refs.len() > 10, "schemas are shared by reference: {refs:?}");
    for r in &refs {
        let pointer = r
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("external $ref {r}"));
        assert!(doc.pointer(pointer).is_some(), "$ref {r} does not resolve");
    }

    // Every operation answers with documented statuses, each with a description.
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap_or_else(|| {
                panic!("{method} {path} documents no responses");
            });
            assert!(!responses.is_empty(), "{method} {path}");
            for (status, response) in responses {
                assert!(
                    response["description"].is_string(),
                    "{method} {path} {status}"
                );
            }
        }
    }

    // The admin routes require the bearer scheme, which is declared.
    let scheme = &doc["components"]["securitySchemes"]["admin_bearer"];
    assert_eq!(scheme["type"], "http");
    assert_eq!(scheme["scheme"], "bearer");
    for action in ["confirm", "cancel"] {
        let op = &doc["paths"][format!("/api/v1/reservations/{{code}}/{action}")]["post"];
        assert_eq!(
            op["security"][0]["admin_bearer"],
            Value::Array(vec![]),
            "{action}"
        );
        assert!(op["responses"]["401"].is_object() && op["responses"]["403"].is_object());
    }
    // The pre-reserve body and the error shape are described field by field.
    let schemas = &doc["components"]["schemas"];
    for field in [
        "accommodation_id",
        "check_in",
        "check_out",
        "guests",
        "channel",
    ] {
        assert!(
            schemas["PreReserveRequest"]["required"]
                .as_array()
                .unwrap()
                .contains(&Value::from(field)),
            "{field}"
        );
    }
    assert!(schemas["ErrorBody"]["properties"]["error"].is_object());
}

/// Every documented operation reaches a handler: neither the unknown-path fallback nor the
/// wrong-method one answers it.
#[tokio::test]
async fn every_documented_operation_is_routed() {
    let app = TestApp::spawn(Backend::Sqlite, "openapi_routed")
        .await
        .unwrap();
    let doc = served_document(&app).await;
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let concrete = path
            .replace("{id}", "1")
            .replace("{import_id}", "1")
            .replace("{code}", "CB-NOPE0000")
            .replace("{slug}", "overlap-check");
        for method in item.as_object().unwrap().keys() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let response = app
                .client
                .request(method.clone(), app.url(&concrete))
                .send()
                .await
                .unwrap();
            let status = response.status();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            assert_ne!(
                body["detail"], "no route matches this path",
                "{method} {path} is documented but not routed"
            );
            operations += 1;
        }
    }
    // healthz, readyz, metrics, openapi, version, accommodations, availability, pre-reserve,
    // show, confirm, cancel, the test-fixture PUT, the two webhooks (three operations), and
    // the calendar's export, admin view, feed added, feed removed and sync.
    assert_eq!(operations, 20, "{:#}", doc["paths"]);
}

/// A route added with axum's own `Router::route` would serve without being documented;
/// routes must go through utoipa-axum's `routes!`, which documents them.
#[test]
fn no_route_is_registered_around_the_document() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut offenders = Vec::new();
    let mut stack = vec![src];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for (n, line) in text.lines().enumerate() {
                    let code = line.trim_start();
                    if code.starts_with("//") {
                        continue;
                    }
                    for needle in ["Router::new()", ".route(", ".route_service(", ".nest("] {
                        if code.contains(needle) && !code.contains("OpenApiRouter::new()") {
                            offenders.push(format!("{}:{}: {code}", path.display(), n + 1));
                        }
                    }
                }
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "register routes with utoipa_axum::routes! so they are documented:\n{}",
        offenders.join("\n")
    );
}

/// The document the router serves is the one the code builds.
#[test]
fn the_library_document_lists_the_webhooks() {
    let doc = serde_json::to_value(backend::http::openapi::document_value()).unwrap();
    for path in [
        backend::http::webhooks::mercadopago::PATH,
        backend::http::webhooks::whatsapp::PATH,
    ] {
        assert!(doc["paths"][path]["post"].is_object(), "{path}");
    }
    assert!(doc["paths"][backend::http::webhooks::whatsapp::PATH]["get"].is_object());
}

/// The service contract the deploy tools call (`cabanas-contract`): every route it names is
/// a GET the service documents (the webhooks a POST), so a renamed route fails here, not in
/// a deploy's smoke.
#[test]
fn every_contract_route_is_served() {
    use cabanas_contract::routes;
    let doc = serde_json::to_value(backend::http::openapi::document_value()).unwrap();
    for path in [
        routes::HEALTHZ,
        routes::READYZ,
        routes::METRICS,
        routes::VERSION,
        routes::OPENAPI,
        routes::ACCOMMODATIONS,
    ] {
        assert!(
            doc["paths"][path]["get"].is_object(),
            "{path} is not served"
        );
    }
    for path in routes::WEBHOOKS {
        assert!(
            doc["paths"][path]["post"].is_object(),
            "{path} is not served"
        );
    }
}

/// Client generators name a function after each `operationId`, and validators refuse a
/// document where two operations share one: every operation has its own id, in snake_case,
/// saying what it does (not a handler's bare name such as `notify`, which both webhooks had).
#[test]
fn every_operation_has_a_unique_descriptive_id() {
    const BARE_HANDLER_NAMES: [&str; 10] = [
        "list",
        "show",
        "notify",
        "document",
        "handshake",
        "confirm",
        "cancel",
        "availability",
        "metrics",
        "version",
    ];
    let doc = serde_json::to_value(backend::http::openapi::document_value()).unwrap();
    let mut seen: std::collections::BTreeMap<String, String> = Default::default();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let operation = format!("{method} {path}");
            let id = op["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{operation} has no operationId"));
            assert!(
                !id.is_empty()
                    && id.starts_with(|c: char| c.is_ascii_lowercase())
                    && id
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{operation}: operationId {id:?} is not snake_case"
            );
            assert!(
                !BARE_HANDLER_NAMES.contains(&id),
                "{operation}: operationId {id:?} is a bare handler name; set \
                 `operation_id = \"...\"` in its #[utoipa::path]"
            );
            if let Some(other) = seen.insert(id.to_owned(), operation.clone()) {
                panic!("operationId {id:?} is used by both {other} and {operation}");
            }
        }
    }
    assert_eq!(seen.len(), 20, "{seen:?}");
}
