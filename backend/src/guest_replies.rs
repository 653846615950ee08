//! The texts the service sends guests on WhatsApp, in Spanish (the cabins are in Argentina).
//! Pure: each reply is built from the facts it states, so a test can read it whole.

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};

use crate::guest_request::Stay;

/// The longest text the Cloud API accepts in a text message is 4096 characters
/// (https://dualhook.com/docs/messaging-overview, "Message body maximum length"); replies
/// stay far below it, and a cabin list is cut before it.
pub const MAX_BODY_CHARS: usize = 4096;

/// Argentina's time (UTC-3, no daylight saving since 2009), for the hold's end.
fn argentina() -> FixedOffset {
    FixedOffset::west_opt(3 * 3600).expect("a valid offset")
}

fn date(day: NaiveDate) -> String {
    day.format("%d/%m/%Y").to_string()
}

/// Pesos as written in Argentina: `$ 1.234,50`.
pub fn pesos(cents: i64) -> String {
    let whole = cents.unsigned_abs() / 100;
    let digits = whole.to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push('.');
        }
        grouped.push(c);
    }
    let sign = if cents < 0 { "-" } else { "" };
    format!("{sign}$ {grouped},{:02}", cents.unsigned_abs() % 100)
}

/// How to ask, for a message the service cannot read.
pub fn help() -> String {
    "¡Hola! Para consultar disponibilidad escribí las fechas y la cabaña, por ejemplo: \
     \"disponibilidad cabaña 2 del 10/01 al 12/01\". Para reservar: \"reservar cabaña 2 \
     del 10/01 al 12/01 para 2 personas\". Sin cabaña te decimos cuáles están libres."
        .to_owned()
}

/// The dates are unusable (`why` says how, in Spanish).
pub fn invalid_stay(why: &str) -> String {
    format!("No pudimos leer esas fechas: {why}. {}", help())
}

/// No active cabin has that number.
pub fn unknown_cabin(number: i64) -> String {
    format!(
        "No encontramos la cabaña {number}. Escribí \"disponibilidad del 10/01 al 12/01\" \
         para ver las cabañas libres."
    )
}

/// Availability of each cabin asked about: `(name, free)`.
pub fn availability(stay: Stay, cabins: &[(String, bool)]) -> String {
    let period = format!("del {} al {}", date(stay.check_in), date(stay.check_out));
    if cabins.is_empty() {
        return format!("No hay cabañas disponibles {period}.");
    }
    let mut text = format!("Disponibilidad {period}:");
    for (name, free) in cabins {
        let line = format!(
            "\n- {name}: {}",
            if *free { "disponible" } else { "ocupada" }
        );
        if text.chars().count() + line.chars().count() > MAX_BODY_CHARS - 200 {
            break;
        }
        text.push_str(&line);
    }
    if cabins.iter().any(|(_, free)| *free) {
        text.push_str("\nPara reservar escribí \"reservar\", la cabaña y las fechas.");
    }
    text
}

/// The dates of `name` are taken.
pub fn not_available(name: &str, stay: Stay) -> String {
    format!(
        "{name} no está disponible del {} al {}. Probá con otras fechas u otra cabaña.",
        date(stay.check_in),
        date(stay.check_out)
    )
}

/// What a new pre-reservation says to its guest.
#[derive(Debug, Clone)]
pub struct PreReservationNotice<'a> {
    /// The cabin's name.
    pub cabin: &'a str,
    /// The dates.
    pub stay: Stay,
    /// The reservation code.
    pub code: &'a str,
    /// Total price in cents.
    pub total_cents: i64,
    /// Deposit in cents.
    pub deposit_cents: i64,
    /// End of the hold.
    pub expires_at: DateTime<Utc>,
    /// Where to pay the deposit, when MercadoPago gave one.
    pub payment_url: Option<&'a str>,
}

/// The pre-reservation with its code and payment link.
pub fn pre_reserved(notice: &PreReservationNotice<'_>) -> String {
    let until = notice
        .expires_at
        .with_timezone(&argentina())
        .format("%d/%m %H:%M");
    let pay = match notice.payment_url {
        Some(url) => format!("Pagá la seña acá: {url}"),
        None => "Te contactamos para el pago de la seña.".to_owned(),
    };
    format!(
        "¡Listo! Pre-reservamos {} del {} al {}. Código: {}. Total: {}. Seña: {}. {pay} \
         Guardamos las fechas hasta el {until} (hora de Argentina).",
        notice.cabin,
        date(notice.stay.check_in),
        date(notice.stay.check_out),
        notice.code,
        pesos(notice.total_cents),
        pesos(notice.deposit_cents),
    )
}

/// The deposit of `code` was paid: the stay is confirmed.
pub fn payment_confirmed(code: &str) -> String {
    format!("¡Recibimos el pago de la seña! Tu reserva {code} está confirmada. ¡Te esperamos!")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stay() -> Stay {
        Stay {
            check_in: "2027-01-10".parse().unwrap(),
            check_out: "2027-01-12".parse().unwrap(),
        }
    }

    #[test]
    fn pesos_are_grouped_the_argentine_way() {
        assert_eq!(pesos(0), "$ 0,00");
        assert_eq!(pesos(6_000), "$ 60,00");
        assert_eq!(pesos(12_345_678), "$ 123.456,78");
        assert_eq!(pesos(100_000_000), "$ 1.000.000,00");
    }

    #[test]
    fn a_pre_reservation_states_code_amounts_link_and_hold_in_argentine_time() {
        let text = pre_reserved(&PreReservationNotice {
            cabin: "Cabaña Alerce",
            stay: stay(),
            code: "CB-ABCD2345",
            total_cents: 20_000,
            deposit_cents: 6_000,
            expires_at: "2027-01-01T15:30:00Z".parse().unwrap(),
            payment_url: Some("https://mp.example/checkout/CB-ABCD2345"),
        });
        assert_eq!(
            text,
            "¡Listo! Pre-reservamos Cabaña Alerce del 10/01/2027 al 12/01/2027. Código: \
             CB-ABCD2345. Total: $ 200,00. Seña: $ 60,00. Pagá la seña acá: \
             https://mp.example/checkout/CB-ABCD2345 Guardamos las fechas hasta el 01/01 12:30 \
             (hora de Argentina)."
        );
    }

    #[test]
    fn availability_lists_each_cabin() {
        let cabins = [("Alerce".to_owned(), true), ("Lago".to_owned(), false)];
        assert_eq!(
            availability(stay(), &cabins),
            "Disponibilidad del 10/01/2027 al 12/01/2027:\n- Alerce: disponible\n- Lago: \
             ocupada\nPara reservar escribí \"reservar\", la cabaña y las fechas."
        );
        let many: Vec<(String, bool)> = (0..1000).map(|i| (format!("Cabaña {i}"), true)).collect();
        assert!(availability(stay(), &many).chars().count() <= MAX_BODY_CHARS);
    }
}
