//! The pre-reserve request and the rules it must meet before any database work: dates,
//! stay length, guests, and the text fields (trimmed, bounded, no control characters).

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::config::BookingHorizon;
use crate::error::ApiError;

/// The longest stay accepted, in nights.
pub const MAX_NIGHTS: i64 = 30;
/// The pre-reserve request body. Unknown fields are rejected.
///
/// The schema's patterns only describe what the service refuses for sure (a request that breaks
/// them is always rejected); the service checks more (lengths after trimming, the capacity,
/// dates in the past).
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreReserveRequest {
    /// The accommodation to book.
    pub accommodation_id: i64,
    /// First night, `YYYY-MM-DD`.
    pub check_in: NaiveDate,
    /// Departure day, `YYYY-MM-DD`.
    pub check_out: NaiveDate,
    /// Number of guests, 1 to the accommodation's capacity.
    #[schema(minimum = 1)]
    pub guests: i32,
    /// Booking channel, e.g. `web` or `whatsapp` (letters, digits, `_`, `-`; case-insensitive).
    #[schema(pattern = "^\\s*[A-Za-z0-9_-]{1,32}\\s*$")]
    pub channel: String,
    /// Guest name.
    #[schema(min_length = 1, pattern = "\\S")]
    pub contact_name: String,
    /// Guest phone: at least 6 digits; spaces, `+`, `-`, `(`, `)` and `.` allowed.
    #[schema(pattern = "^\\s*[ +().-]*([0-9][ +().-]*){6,}\\s*$")]
    pub contact_phone: String,
    /// Guest email.
    #[serde(default)]
    #[schema(pattern = "^\\s*[^@\\s]+@[^@\\s]*\\.[^@\\s]*\\s*$")]
    pub contact_email: Option<String>,
}

/// Checks the rules that need no database; trims and normalises text fields.
/// "The past" and the horizon are judged in UTC.
pub fn validate(
    mut req: PreReserveRequest,
    today: NaiveDate,
    horizon: BookingHorizon,
) -> Result<PreReserveRequest, ApiError> {
    if req.check_out <= req.check_in {
        return Err(ApiError::validation(
            "check_out",
            "check_out must be after check_in",
        ));
    }
    if req.check_in < today {
        return Err(ApiError::validation(
            "check_in",
            "check_in must not be in the past",
        ));
    }
    if req.check_out > horizon.latest(today) {
        return Err(ApiError::validation(
            "check_out",
            format!(
                "stays must end within {} days from today",
                horizon.future_days
            ),
        ));
    }
    if (req.check_out - req.check_in).num_days() > MAX_NIGHTS {
        return Err(ApiError::validation(
            "check_out",
            format!("a stay may last at most {MAX_NIGHTS} nights"),
        ));
    }
    if req.guests < 1 {
        return Err(ApiError::validation("guests", "guests must be at least 1"));
    }
    reject_control_characters("channel", &req.channel)?;
    req.channel = req.channel.trim().to_ascii_lowercase();
    let channel_ok = !req.channel.is_empty()
        && req.channel.len() <= 32
        && req
            .channel
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !channel_ok {
        return Err(ApiError::validation(
            "channel",
            "channel must be 1-32 characters of letters, digits, '_' or '-'",
        ));
    }
    req.contact_name = bounded("contact_name", &req.contact_name, 120)?;
    req.contact_phone = bounded("contact_phone", &req.contact_phone, 32)?;
    let digits = req
        .contact_phone
        .chars()
        .filter(char::is_ascii_digit)
        .count();
    let phone_chars_ok = req
        .contact_phone
        .chars()
        .all(|c| c.is_ascii_digit() || " +-().".contains(c));
    if digits < 6 || !phone_chars_ok {
        return Err(ApiError::validation(
            "contact_phone",
            "contact_phone must be a phone number with at least 6 digits",
        ));
    }
    if let Some(email) = req.contact_email.take() {
        let email = bounded("contact_email", &email, 254)?;
        let valid = email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.contains('@')
        }) && !email.chars().any(char::is_whitespace);
        if !valid {
            return Err(ApiError::validation(
                "contact_email",
                "contact_email must be an email address",
            ));
        }
        req.contact_email = Some(email);
    }
    Ok(req)
}

/// Refuses text holding control characters (NUL, escapes, line breaks): PostgreSQL cannot
/// store NUL at all, and none of them belong in a name, phone, email or code.
pub fn reject_control_characters(field: &'static str, value: &str) -> Result<(), ApiError> {
    if value.chars().any(char::is_control) {
        return Err(ApiError::validation(
            field,
            format!("{field} must not contain control characters"),
        ));
    }
    Ok(())
}

fn bounded(field: &'static str, value: &str, max_chars: usize) -> Result<String, ApiError> {
    reject_control_characters(field, value)?;
    let value = value.trim();
    if value.is_empty() {
        return Err(ApiError::validation(
            field,
            format!("{field} must not be empty"),
        ));
    }
    if value.chars().count() > max_chars {
        return Err(ApiError::validation(
            field,
            format!("{field} must be at most {max_chars} characters"),
        ));
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HORIZON: BookingHorizon = BookingHorizon {
        past_days: 365,
        future_days: 730,
    };

    fn request() -> PreReserveRequest {
        PreReserveRequest {
            accommodation_id: 1,
            check_in: "2030-01-10".parse().unwrap(),
            check_out: "2030-01-12".parse().unwrap(),
            guests: 2,
            channel: " Web ".into(),
            contact_name: " Ana ".into(),
            contact_phone: "+54 9 11 5555-0000".into(),
            contact_email: Some("ana@example.com".into()),
        }
    }

    #[test]
    fn a_good_request_is_normalised() {
        let req = validate(request(), "2030-01-01".parse().unwrap(), HORIZON).unwrap();
        assert_eq!(req.channel, "web");
        assert_eq!(req.contact_name, "Ana");
    }

    #[test]
    fn check_in_today_is_allowed_but_yesterday_is_not() {
        assert!(validate(request(), "2030-01-10".parse().unwrap(), HORIZON).is_ok());
        let err = validate(request(), "2030-01-11".parse().unwrap(), HORIZON).unwrap_err();
        assert!(matches!(
            err,
            ApiError::Validation {
                field: "check_in",
                ..
            }
        ));
    }
}
