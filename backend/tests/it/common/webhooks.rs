//! The webhook harness: a fake MercadoPago API on loopback, an app configured against it
//! with WhatsApp's secrets, and requests signed the way MercadoPago and Meta sign them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use axum::routing::{get, post};
use axum::{Json, Router};
use backend::config::{IntegrationsConfig, Secret};
use backend::http::webhooks::hmac_sha256_hex;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{Backend, TestApp, monday, plus, read};

/// The MercadoPago access token of the test apps.
pub const MP_TOKEN: &str = "APP_USR-test-token-7f3a9c1e5b";
/// MERCADOPAGO_WEBHOOK_SECRET of the test apps.
pub const MP_SECRET: &str = "mp-webhook-secret-4d8e2b6a0c";
/// WHATSAPP_APP_SECRET of the test apps.
pub const WA_SECRET: &str = "wa-app-secret-9b1d5f3e7a";
/// WHATSAPP_VERIFY_TOKEN of the test apps.
pub const WA_VERIFY: &str = "wa-verify-token-2c6e0a4f8b";

/// A fake MercadoPago API: records checkout requests, serves the payments a test puts in.
#[derive(Default)]
pub struct FakeMercadoPago {
    /// `(Authorization header, body)` of each `POST /checkout/preferences`.
    pub preferences: Mutex<Vec<(String, Value)>>,
    /// Payment bodies by id.
    pub payments: Mutex<HashMap<String, Value>>,
    /// How many times a payment was read.
    pub payment_reads: AtomicUsize,
    /// Authorization headers of payment reads.
    pub read_auth: Mutex<Vec<String>>,
}

impl FakeMercadoPago {
    /// Serves a payment in pesos, the currency the checkout charges: its status, the
    /// reservation code it pays and its amount.
    pub fn put_payment(&self, id: &str, status: &str, code: &str, amount: f64) {
        self.put_payment_in(id, status, code, amount, Some("ARS"));
    }

    /// A payment in `currency` (`None`: the field is absent).
    pub fn put_payment_in(
        &self,
        id: &str,
        status: &str,
        code: &str,
        amount: f64,
        currency: Option<&str>,
    ) {
        let mut body = json!({
            "id": id.parse::<u64>().map(Value::from).unwrap_or(Value::from(id)),
            "status": status,
            "external_reference": code,
            "transaction_amount": amount,
        });
        if let Some(currency) = currency {
            body["currency_id"] = Value::from(currency);
        }
        self.payments.lock().unwrap().insert(id.to_owned(), body);
    }
}

/// The `Authorization` header a fake API was sent (empty when none).
pub fn auth(headers: &HeaderMap) -> String {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

/// Starts the fake on loopback; returns its base URL.
pub async fn serve_fake() -> (String, Arc<FakeMercadoPago>) {
    let fake = Arc::new(FakeMercadoPago::default());
    let router = Router::new()
        .route(
            "/checkout/preferences",
            post(
                |State(fake): State<Arc<FakeMercadoPago>>,
                 headers: HeaderMap,
                 Json(body): Json<Value>| async move {
                    let code = body["external_reference"].as_str().unwrap_or("").to_owned();
                    fake.preferences
                        .lock()
                        .unwrap()
                        .push((auth(&headers), body));
                    (
                        AxumStatus::CREATED,
                        Json(json!({
                            "id": format!("pref-{code}"),
                            "init_point": format!("https://mp.example/checkout/{code}"),
                        })),
                    )
                },
            ),
        )
        .route(
            "/v1/payments/{id}",
            get(
                |State(fake): State<Arc<FakeMercadoPago>>,
                 headers: HeaderMap,
                 Path(id): Path<String>| async move {
                    fake.payment_reads.fetch_add(1, Ordering::SeqCst);
                    fake.read_auth.lock().unwrap().push(auth(&headers));
                    match fake.payments.lock().unwrap().get(&id) {
                        Some(body) => (AxumStatus::OK, Json(body.clone())),
                        None => (AxumStatus::NOT_FOUND, Json(json!({"message": "not found"}))),
                    }
                },
            ),
        )
        .with_state(fake.clone());
    (super::serve_on_loopback(router).await, fake)
}

/// An app and the fake MercadoPago it reads payments from.
pub struct Loop {
    /// The app, configured against the fake.
    pub app: TestApp,
    /// The fake MercadoPago.
    pub fake: Arc<FakeMercadoPago>,
}

/// Points `integrations` at a MercadoPago (API at `api_url`) with the test token and
/// webhook secret.
pub fn use_mercadopago(integrations: &mut IntegrationsConfig, api_url: String) {
    integrations.mercadopago_access_token = Some(Secret::new(MP_TOKEN));
    integrations.mercadopago_webhook_secret = Some(Secret::new(MP_SECRET));
    integrations.mercadopago_api_url = api_url;
}

/// An app with MercadoPago and WhatsApp configured against the fake.
pub async fn spawn(backend: Backend, test: &str, ttl_minutes: u32) -> Option<Loop> {
    let (mp_url, fake) = serve_fake().await;
    let app = TestApp::spawn_with(backend, test, |config| {
        config.pre_reservation_ttl_minutes = ttl_minutes;
        let integrations = &mut config.integrations;
        use_mercadopago(integrations, mp_url);
        integrations.whatsapp_app_secret = Some(Secret::new(WA_SECRET));
        integrations.whatsapp_verify_token = Some(Secret::new(WA_VERIFY));
    })
    .await?;
    Some(Loop { app, fake })
}

/// Now, in Unix seconds.
pub fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// `x-signature` for a notification about `data_id`, signed at `ts` with `secret`.
pub fn mp_signature(data_id: &str, request_id: &str, ts: i64, secret: &str) -> String {
    let manifest = format!("id:{data_id};request-id:{request_id};ts:{ts};");
    format!(
        "ts={ts},v1={}",
        hmac_sha256_hex(secret.as_bytes(), manifest.as_bytes())
    )
}

/// Sends a payment notification with optional `x-signature` and `x-request-id`.
pub async fn notify_raw(
    app: &TestApp,
    data_id: &str,
    signature: Option<String>,
    request_id: Option<&str>,
) -> (StatusCode, Value) {
    send_notification(&app.client, &app.base, data_id, signature, request_id).await
}

pub async fn send_notification(
    client: &reqwest::Client,
    base: &str,
    data_id: &str,
    signature: Option<String>,
    request_id: Option<&str>,
) -> (StatusCode, Value) {
    let mut request = client
        .post(format!(
            "{base}/api/v1/webhooks/mercadopago?data.id={data_id}&type=payment"
        ))
        .json(&json!({
            "action": "payment.updated",
            "type": "payment",
            "data": { "id": data_id },
        }));
    if let Some(signature) = signature {
        request = request.header("x-signature", signature);
    }
    if let Some(request_id) = request_id {
        request = request.header("x-request-id", request_id);
    }
    read(request.send().await.unwrap()).await
}

/// Sends a correctly signed payment notification.
pub async fn notify(app: &TestApp, data_id: &str) -> (StatusCode, Value) {
    signed_notification(&app.client, &app.base, data_id).await
}

pub async fn signed_notification(
    client: &reqwest::Client,
    base: &str,
    data_id: &str,
) -> (StatusCode, Value) {
    let request_id = uuid::Uuid::new_v4().to_string();
    let signature = mp_signature(data_id, &request_id, unix_now(), MP_SECRET);
    send_notification(client, base, data_id, Some(signature), Some(&request_id)).await
}

/// Pre-reserves a week from a Monday `weeks` ahead; returns the 201 body.
pub async fn pre_reserve(app: &TestApp, weeks: i64) -> Value {
    let day = monday(weeks);
    let (status, body) = app.pre_reserve(&app.booking(day, plus(day, 2))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

/// The deposit of a 201 pre-reserve body.
pub fn deposit(body: &Value) -> f64 {
    body["deposit_amount"].as_str().unwrap().parse().unwrap()
}

/// A WhatsApp Cloud API delivery carrying one text message.
pub fn wa_delivery(message_id: &str, text: &str) -> String {
    json!({
        "object": "whatsapp_business_account",
        "entry": [{
            "id": "102290129340398",
            "changes": [{
                "field": "messages",
                "value": {
                    "messaging_product": "whatsapp",
                    "contacts": [{"profile": {"name": "Ana Pérez"}, "wa_id": "5491177770000"}],
                    "messages": [{
                        "from": "5491177770000",
                        "id": message_id,
                        "timestamp": "1764640000",
                        "type": "text",
                        "text": {"body": text},
                    }],
                },
            }],
        }],
    })
    .to_string()
}

/// POSTs a delivery; `secret` signs it (`None`: no signature header).
pub async fn wa_post(app: &TestApp, body: &str, secret: Option<&str>) -> (StatusCode, Value) {
    let mut request = app
        .client
        .post(app.url("/api/v1/webhooks/whatsapp"))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(secret) = secret {
        request = request.header(
            "x-hub-signature-256",
            format!(
                "sha256={}",
                hmac_sha256_hex(secret.as_bytes(), body.as_bytes())
            ),
        );
    }
    read(request.send().await.unwrap()).await
}
