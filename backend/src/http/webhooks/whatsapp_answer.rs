//! What the service answers a guest's WhatsApp message: the availability asked about, the
//! pre-reservation asked for (with its code and payment link), or how to ask
//! ([`crate::guest_request`] reads the text, [`crate::guest_replies`] words the answer).
//!
//! The answer is computed before the message is stored, and stored with it as an outbox
//! row in one transaction (`store::messages::store_inbound`). A booking is keyed by the
//! message id (`whatsapp:<wamid>`), so a message Meta delivers again after a failure in
//! between books nothing new: it gets the first booking's answer back.

use chrono::NaiveDate;

use crate::error::ApiError;
use crate::guest_replies::{self, PreReservationNotice};
use crate::guest_request::{self, GuestRequest, Stay};
use crate::http::pre_reserve::{self, MAX_NIGHTS, PreReserveRequest};
use crate::http::state::AppState;
use crate::store::accommodations::{Accommodation, Audience, CatalogSnapshot};
use crate::store::idempotency::KeyedOutcome;
use crate::store::messages::InboundMessage;
use crate::store::outbox::OutboundMessage;
use crate::store::{now, reservations};

/// Guests assumed when a booking does not say how many (a couple), within the capacity.
const DEFAULT_GUESTS: i32 = 2;
/// The name a booking gets when WhatsApp sent no profile name.
const UNNAMED_GUEST: &str = "Huésped de WhatsApp";

/// The reply to `message`, to queue with it. `Err` only for a failure worth a redelivery
/// (the database is down): nothing is stored then, and Meta delivers the message again.
pub(super) async fn reply_to(
    state: &AppState,
    message: &InboundMessage,
    guest_name: Option<&str>,
) -> Result<OutboundMessage, ApiError> {
    let body = match message.body.as_deref() {
        Some(text) => answer(state, message, text, guest_name).await?,
        None => guest_replies::help(),
    };
    Ok(OutboundMessage {
        dedupe_key: format!("whatsapp-reply:{}", message.message_id),
        recipient: message.sender.clone(),
        body,
    })
}

async fn answer(
    state: &AppState,
    message: &InboundMessage,
    text: &str,
    guest_name: Option<&str>,
) -> Result<String, ApiError> {
    let today = now().date_naive();
    let catalog = state.accommodations.snapshot(&state.db).await?;
    let names: Vec<(i64, &str)> = catalog
        .active
        .iter()
        .filter(|a| a.visible_to(Audience::Guest))
        .map(|a| (a.id, a.name.as_str()))
        .collect();
    let (cabin, stay) = match guest_request::parse(text, today, &names) {
        GuestRequest::Help => return Ok(guest_replies::help()),
        GuestRequest::Availability {
            accommodation_id,
            stay,
        } => (accommodation_id, stay),
        GuestRequest::Book {
            accommodation_id,
            stay,
            guests,
        } => {
            if let Some(problem) = stay_problem(stay, today, state) {
                return Ok(guest_replies::invalid_stay(problem));
            }
            let Some(cabin) = catalog.find(accommodation_id, Audience::Guest) else {
                return Ok(guest_replies::unknown_cabin(accommodation_id));
            };
            return book(state, message, guest_name, cabin, stay, guests).await;
        }
    };
    if let Some(problem) = stay_problem(stay, today, state) {
        return Ok(guest_replies::invalid_stay(problem));
    }
    availability(state, &catalog, cabin, stay).await
}

/// Why the service cannot take these dates, in Spanish; `None` when it can.
fn stay_problem(stay: Stay, today: NaiveDate, state: &AppState) -> Option<&'static str> {
    if stay.check_out <= stay.check_in {
        Some("la salida tiene que ser después de la llegada")
    } else if stay.check_in < today {
        Some("la llegada ya pasó")
    } else if (stay.check_out - stay.check_in).num_days() > MAX_NIGHTS {
        Some("una estadía puede durar hasta 30 noches")
    } else if stay.check_out > state.horizon.latest(today) {
        Some("todavía no tomamos reservas para esas fechas")
    } else {
        None
    }
}

async fn availability(
    state: &AppState,
    catalog: &CatalogSnapshot,
    cabin: Option<i64>,
    stay: Stay,
) -> Result<String, ApiError> {
    let cabins: Vec<&Accommodation> = match cabin {
        Some(id) => match catalog.find(id, Audience::Guest) {
            Some(cabin) => vec![cabin],
            None => return Ok(guest_replies::unknown_cabin(id)),
        },
        // Test fixtures (the overlap check's cabin) are no guest's to book or see.
        None => catalog
            .active
            .iter()
            .filter(|a| a.visible_to(Audience::Guest))
            .collect(),
    };
    let mut free = Vec::with_capacity(cabins.len());
    for cabin in cabins {
        let bookings =
            reservations::bookings_between(&state.db, cabin.id, stay.check_in, stay.check_out)
                .await?;
        free.push((cabin.name.clone(), bookings.is_empty()));
    }
    Ok(guest_replies::availability(stay, &free))
}

async fn book(
    state: &AppState,
    message: &InboundMessage,
    guest_name: Option<&str>,
    cabin: &Accommodation,
    stay: Stay,
    guests: Option<i32>,
) -> Result<String, ApiError> {
    // WhatsApp's profile name is whatever the guest typed there: keep it printable and short.
    let name: String = guest_name
        .unwrap_or(UNNAMED_GUEST)
        .chars()
        .filter(|c| !c.is_control())
        .take(120)
        .collect();
    let request = PreReserveRequest {
        accommodation_id: cabin.id,
        check_in: stay.check_in,
        check_out: stay.check_out,
        guests: guests.unwrap_or(DEFAULT_GUESTS.min(cabin.capacity)),
        channel: "whatsapp".into(),
        contact_name: if name.trim().is_empty() {
            UNNAMED_GUEST.into()
        } else {
            name
        },
        contact_phone: message.sender.clone(),
        contact_email: None,
    };
    let key = format!("whatsapp:{}", message.message_id);
    let booked = match pre_reserve::book_keyed(state, Audience::Guest, request, key).await {
        Ok(KeyedOutcome::Created(view)) => Some((view.code, view.payment_url)),
        Ok(KeyedOutcome::Replayed(201, body)) => serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["code"].as_str().map(|code| (code.to_owned(), None))),
        Ok(KeyedOutcome::Replayed(409, _)) | Err(ApiError::DateOverlap) => {
            return Ok(guest_replies::not_available(&cabin.name, stay));
        }
        Ok(KeyedOutcome::Replayed(..))
        | Err(ApiError::Validation { .. } | ApiError::NotFound(_)) => {
            return Ok(format!(
                "No pudimos pre-reservar {}: es para hasta {} personas. {}",
                cabin.name,
                cabin.capacity,
                guest_replies::help()
            ));
        }
        Err(err) => return Err(err),
    };
    let Some((code, payment_url)) = booked else {
        return Err(ApiError::Internal(anyhow::anyhow!(
            "a stored booking answer has no code"
        )));
    };
    let reservation = reservations::find_by_code(&state.db, &code)
        .await?
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("a booked code is not stored")))?;
    Ok(guest_replies::pre_reserved(&PreReservationNotice {
        cabin: &cabin.name,
        stay,
        code: &code,
        total_cents: reservation.total_price_cents,
        deposit_cents: reservation.deposit_cents,
        expires_at: reservation.expires_at,
        payment_url: payment_url.as_deref(),
    }))
}
