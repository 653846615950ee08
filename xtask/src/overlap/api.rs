//! The service routes overlap uses, one request each: list accommodations, read
//! availability, pre-reserve once, cancel. The concurrent race lives in `race.rs`.

use anyhow::{Context, bail};
use chrono::{Days, NaiveDate};
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::judge::{Outcome, truncate};
use crate::config::Target;

/// Nearest start of a random window, in days from today: far enough ahead that real guests
/// have not booked it yet.
pub const MIN_DAYS_AHEAD: u64 = 180;
/// Width of the range the random start is drawn from, in days.
pub const SPREAD_DAYS: u64 = 365;
/// How many random windows are tried before giving up.
pub const WINDOW_ATTEMPTS: u32 = 20;

/// A half-open stay `[check_in, check_out)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stay {
    /// First night.
    pub check_in: NaiveDate,
    /// Departure day (not a night of the stay).
    pub check_out: NaiveDate,
}

impl Stay {
    /// `[check_in, check_out)`; `None` unless `check_out` is after `check_in`.
    pub fn new(check_in: NaiveDate, check_out: NaiveDate) -> Option<Stay> {
        (check_out > check_in).then_some(Stay {
            check_in,
            check_out,
        })
    }

    /// The stay widened by one night on each side: what must be free for the race and the
    /// boundary probes.
    pub fn with_margin(self) -> Stay {
        Stay {
            check_in: self.check_in - Days::new(1),
            check_out: self.check_out + Days::new(1),
        }
    }

    /// The one-night stay starting on this one's departure day (back-to-back: allowed).
    pub fn back_to_back(self) -> Stay {
        Stay {
            check_in: self.check_out,
            check_out: self.check_out + Days::new(1),
        }
    }

    /// The two-night stay over this one's last night (overlapping: refused).
    pub fn overlapping_last_night(self) -> Stay {
        Stay {
            check_in: self.check_out - Days::new(1),
            check_out: self.check_out + Days::new(1),
        }
    }
}

impl std::fmt::Display for Stay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}, {})", self.check_in, self.check_out)
    }
}

/// An accommodation as listed (only the fields overlap needs).
#[derive(Debug, Clone, Deserialize)]
pub struct Accommodation {
    /// Its id.
    pub id: i64,
    /// Maximum number of guests.
    #[serde(default)]
    pub capacity: Option<i64>,
}

/// One active booking as availability shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Booking {
    /// First night.
    pub check_in: NaiveDate,
    /// Departure day.
    pub check_out: NaiveDate,
    /// `pre_reserved` or `confirmed`.
    pub status: String,
}

#[derive(Debug, Deserialize)]
struct Availability {
    bookings: Vec<Booking>,
}

/// The pre-reserve body: a synthetic guest recognisable as this check's.
#[derive(Debug, Clone, Serialize)]
pub struct PreReserve {
    /// The accommodation to book.
    pub accommodation_id: i64,
    /// First night.
    pub check_in: NaiveDate,
    /// Departure day.
    pub check_out: NaiveDate,
    /// Always 1.
    pub guests: u32,
    /// `web`.
    pub channel: &'static str,
    /// `overlap-check <run id>`.
    pub contact_name: String,
    /// A fixed synthetic number.
    pub contact_phone: &'static str,
}

impl PreReserve {
    /// The request body for `stay`, tagged with the run id.
    pub fn new(accommodation_id: i64, stay: Stay, run_id: &str) -> PreReserve {
        PreReserve {
            accommodation_id,
            check_in: stay.check_in,
            check_out: stay.check_out,
            guests: 1,
            channel: "web",
            contact_name: format!("overlap-check {run_id}"),
            contact_phone: "+56900000000",
        }
    }
}

/// Path of the pre-reserve route.
pub const PRE_RESERVE_PATH: &str = "/api/v1/reservations/pre-reserve";
/// Path of the cheap route used to open connections before the race.
pub const HEALTHZ_PATH: &str = cabanas_contract::routes::HEALTHZ;

/// The slug of the cabin overlap books by default: a test fixture of its own (never listed,
/// never bookable by a guest, see `backend/src/http/test_fixtures.rs`), so the race needs no
/// seeded cabin and never holds a real guest's dates.
pub const FIXTURE_SLUG: &str = "overlap-check";

/// The id of the test-fixture cabin [`FIXTURE_SLUG`], found or created with the admin token
/// (`PUT /api/v1/admin/test-fixtures/{slug}`, idempotent: 201 the first time, 200 after).
pub async fn fixture_accommodation(
    client: &reqwest::Client,
    target: &Target,
    token: &str,
) -> anyhow::Result<i64> {
    let url = target.endpoint(&format!("/api/v1/admin/test-fixtures/{FIXTURE_SLUG}"));
    let response = client
        .put(&url)
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("PUT {url}: {}", error_chain(&e)))?;
    let status = response.status();
    let body = response
        .text()
        .await
        .with_context(|| format!("reading the answer of PUT {url}"))?;
    if !status.is_success() {
        bail!(
            "PUT {url} answered {status}, so overlap has no cabin of its own to book: {} (a \
             service older than test fixtures answers 404 or 405: deploy this commit first, \
             or pass --accommodation-id)",
            truncate(&body)
        );
    }
    let fixture: Accommodation = serde_json::from_str(&body).with_context(|| {
        format!(
            "PUT {url} answered JSON of an unexpected shape: {}",
            truncate(&body)
        )
    })?;
    Ok(fixture.id)
}

/// The first active accommodation listed.
pub async fn first_accommodation(client: &reqwest::Client, target: &Target) -> anyhow::Result<i64> {
    let url = target.endpoint("/api/v1/reservations/accommodations");
    let list: Vec<Accommodation> = get_json(client, &url, None).await?;
    match list.iter().find(|a| a.capacity.is_none_or(|c| c >= 1)) {
        Some(accommodation) => Ok(accommodation.id),
        None => bail!("{url} lists no accommodation: seed one, or pass --accommodation-id"),
    }
}

/// Active bookings of `accommodation_id` intersecting `window`. With the admin `token`,
/// which a test fixture's availability requires (a guest gets 404).
pub async fn bookings(
    client: &reqwest::Client,
    target: &Target,
    accommodation_id: i64,
    window: Stay,
    token: Option<&str>,
) -> anyhow::Result<Vec<Booking>> {
    let url = target.endpoint(&format!(
        "/api/v1/accommodations/{accommodation_id}/availability?from={}&to={}",
        window.check_in, window.check_out
    ));
    let availability: Availability = get_json(client, &url, token).await?;
    Ok(availability.bookings)
}

async fn get_json<T: serde::de::DeserializeOwned>(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
) -> anyhow::Result<T> {
    let mut request = client.get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.with_context(|| format!("GET {url}"))?;
    let status = response.status();
    let body = response
        .text()
        .await
        .with_context(|| format!("reading the answer of GET {url}"))?;
    if !status.is_success() {
        bail!("GET {url} answered {status}: {}", truncate(&body));
    }
    serde_json::from_str(&body).with_context(|| {
        format!(
            "GET {url} answered JSON of an unexpected shape: {}",
            truncate(&body)
        )
    })
}

/// A free window for the race: `nights` nights (random 2-4 when `None`) starting a random
/// 180-545 days from `today`, with one free night on each side. Tries [`WINDOW_ATTEMPTS`]
/// offsets, then gives up.
pub async fn find_free_window(
    client: &reqwest::Client,
    target: &Target,
    accommodation_id: i64,
    nights: Option<u32>,
    today: NaiveDate,
    token: Option<&str>,
) -> anyhow::Result<Stay> {
    let mut taken = Vec::new();
    for _ in 0..WINDOW_ATTEMPTS {
        let (offset, length) = {
            let mut rng = rand::rng();
            let offset = MIN_DAYS_AHEAD + rng.random_range(0..SPREAD_DAYS);
            (
                offset,
                nights.map_or_else(|| rng.random_range(2..=4), u64::from),
            )
        };
        let check_in = today + Days::new(offset);
        let stay = Stay::new(check_in, check_in + Days::new(length))
            .context("a stay needs at least one night")?;
        let found = bookings(client, target, accommodation_id, stay.with_margin(), token).await?;
        if found.is_empty() {
            return Ok(stay);
        }
        taken.push(stay.to_string());
    }
    bail!(
        "no free window found for accommodation {accommodation_id} after {WINDOW_ATTEMPTS} tries \
         (all of {} had bookings): pass --check-in/--check-out, or another --accommodation-id",
        taken.join(", ")
    )
}

/// Sends one pre-reserve with its own `Idempotency-Key` and classifies the answer. With the
/// admin token, the service's per-client rate limit does not apply, so a race of N requests
/// from one machine is judged on 201/409 only.
pub async fn pre_reserve(
    client: &reqwest::Client,
    target: &Target,
    body: &PreReserve,
    token: Option<&str>,
    region: Option<&str>,
) -> Outcome {
    let mut request = client
        .post(target.endpoint(PRE_RESERVE_PATH))
        .header("Idempotency-Key", uuid::Uuid::new_v4().to_string())
        .json(body);
    if let Some(region) = region {
        // Fly's proxy sends the request to a machine of this region when one serves there
        // (https://fly.io/docs/networking/dynamic-request-routing/, `fly-prefer-region`).
        request = request.header("fly-prefer-region", region);
    }
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await;
    read_outcome(response).await
}

/// Turns a response (or the failure to get one) into an [`Outcome`].
pub async fn read_outcome(response: reqwest::Result<reqwest::Response>) -> Outcome {
    match response {
        Ok(response) => {
            let status = response.status().as_u16();
            match response.text().await {
                Ok(body) => Outcome::from_response(status, &body),
                Err(error) => {
                    Outcome::transport(&format!("{status} with an unreadable body: {error}"))
                }
            }
        }
        Err(error) => Outcome::transport(&error_chain(&error)),
    }
}

/// An error with its sources, on one line (reqwest hides the cause in `source()`).
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Cancels reservation `code` with the admin token. `Ok(())` when it was cancelled now or
/// already inactive; the error says what the server answered.
pub async fn cancel(
    client: &reqwest::Client,
    target: &Target,
    code: &str,
    token: &str,
) -> Result<(), String> {
    let url = target.endpoint(&format!("/api/v1/reservations/{code}/cancel"));
    let response = client
        .post(&url)
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| format!("POST {url}: {}", error_chain(&e)))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let body = response.text().await.unwrap_or_default();
    // Already cancelled or expired: the dates are free, which is all cleanup wants.
    if status == reqwest::StatusCode::CONFLICT
        && serde_json::from_str::<serde_json::Value>(&body)
            .is_ok_and(|v| v.get("error").and_then(|e| e.as_str()) == Some("invalid_state"))
    {
        return Ok(());
    }
    Err(format!("POST {url} answered {status}: {}", truncate(&body)))
}

/// Checks, before anything is booked, that the service accepts the admin token: cancelling a
/// code that cannot exist must answer 404 (authorized, nothing there), not 401 or 403.
/// Without this a bad token would only show after the run, with its bookings left active.
pub async fn verify_admin_token(
    client: &reqwest::Client,
    target: &Target,
    token: &str,
) -> anyhow::Result<()> {
    let url = target.endpoint("/api/v1/reservations/CB-TOKENCHECK/cancel");
    let response = client
        .post(&url)
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("POST {url}: {}", error_chain(&e)))?;
    match response.status() {
        reqwest::StatusCode::NOT_FOUND => Ok(()),
        status @ (reqwest::StatusCode::UNAUTHORIZED | reqwest::StatusCode::FORBIDDEN) => {
            anyhow::bail!(
                "the service refused the admin token ({status}), so nothing this run books could \
                 be cancelled: check JWT_SECRET and ADMIN_ALLOWED_EMAILS in the env file (or \
                 CABANAS_ADMIN_TOKEN); nothing was booked"
            )
        }
        status => {
            let body = response.text().await.unwrap_or_default();
            anyhow::bail!(
                "checking the admin token: POST {url} answered {status}, expected 404: {}",
                truncate(&body)
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    #[test]
    fn boundary_stays_touch_and_overlap_the_last_night() {
        let stay = Stay::new(day("2027-03-10"), day("2027-03-13")).unwrap();
        assert_eq!(
            stay.back_to_back(),
            Stay::new(day("2027-03-13"), day("2027-03-14")).unwrap()
        );
        assert_eq!(
            stay.overlapping_last_night(),
            Stay::new(day("2027-03-12"), day("2027-03-14")).unwrap()
        );
        assert_eq!(
            stay.with_margin(),
            Stay::new(day("2027-03-09"), day("2027-03-14")).unwrap()
        );
        assert!(Stay::new(day("2027-03-10"), day("2027-03-10")).is_none());
        assert_eq!(stay.to_string(), "[2027-03-10, 2027-03-13)");
    }

    #[test]
    fn the_body_names_the_run() {
        let stay = Stay::new(day("2027-03-10"), day("2027-03-13")).unwrap();
        let body = serde_json::to_value(PreReserve::new(3, stay, "run-1")).unwrap();
        assert_eq!(body["contact_name"], "overlap-check run-1");
        assert_eq!(body["check_in"], "2027-03-10");
        assert_eq!(body["guests"], 1);
    }
}
