//! What a guest asks for in a WhatsApp text, read deterministically: two dates and a cabin
//! (by number or by name), and whether they want to book or just know. Spanish first, since
//! the guests are in Argentina: "disponibilidad cabaña 2 del 10/01 al 12/01", "reservar
//! cabaña Alerce 10/01/2027 al 12/01/2027 para 3 personas". Anything else is [`Help`].
//!
//! Pure: no clock, no database. Today's date and the catalog come in as arguments.
//!
//! [`Help`]: GuestRequest::Help

use chrono::{Datelike, NaiveDate};

/// The nights asked for: `[check_in, check_out)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stay {
    /// First night.
    pub check_in: NaiveDate,
    /// Departure day.
    pub check_out: NaiveDate,
}

/// What a message asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuestRequest {
    /// Is it free? For one cabin, or (`None`) for every cabin.
    Availability {
        /// The cabin named, if any.
        accommodation_id: Option<i64>,
        /// The dates.
        stay: Stay,
    },
    /// Hold these dates for me.
    Book {
        /// The cabin named.
        accommodation_id: i64,
        /// The dates.
        stay: Stay,
        /// How many guests, when the message says ("para 3 personas").
        guests: Option<i32>,
    },
    /// Anything else: the answer explains how to ask.
    Help,
}

/// Words that name a cabin before its number ("cabaña 2").
const CABIN_WORDS: [&str; 4] = ["cabana", "cabanas", "cabin", "cab"];
/// Words that may stand between the cabin word and its number ("cabaña nro 2").
const NUMBER_WORDS: [&str; 5] = ["n", "no", "nro", "numero", "num"];
/// Words that follow a number of guests.
const GUEST_WORDS: [&str; 7] = [
    "persona",
    "personas",
    "huesped",
    "huespedes",
    "pax",
    "adultos",
    "adulto",
];

/// Reads `text`. `catalog` is the active cabins as `(id, name)`; a cabin is named by its
/// number (the id: "cabaña 2") or by its name without the word "cabaña" ("Alerce",
/// "del Lago"). Day-first dates (`10/01`, `10-01-2027`, `10/01/27`); a date without a year
/// is the next one on or after `today`, and a departure without a year follows its arrival.
pub fn parse(text: &str, today: NaiveDate, catalog: &[(i64, &str)]) -> GuestRequest {
    let normalized = normalize(text);
    let words: Vec<&str> = normalized
        .split_whitespace()
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric() && c != '/'))
        .filter(|w| !w.is_empty())
        .collect();
    let dates: Vec<(u32, u32, Option<i32>)> = words.iter().filter_map(|w| day_month(w)).collect();
    let Some(stay) = stay(&dates, today) else {
        return GuestRequest::Help;
    };
    let accommodation_id = cabin_number(&words).or_else(|| cabin_by_name(&words, catalog));
    let wants_to_book = words.iter().any(|w| w.starts_with("reserv"));
    match (wants_to_book, accommodation_id) {
        (true, Some(accommodation_id)) => GuestRequest::Book {
            accommodation_id,
            stay,
            guests: guests(&words),
        },
        (true, None) => GuestRequest::Help,
        (false, accommodation_id) => GuestRequest::Availability {
            accommodation_id,
            stay,
        },
    }
}

/// Lower case without accents, so "Cabaña" and "cabana" read alike.
fn normalize(text: &str) -> String {
    text.to_lowercase()
        .chars()
        .map(|c| match c {
            'á' | 'à' | 'ä' => 'a',
            'é' | 'è' | 'ë' => 'e',
            'í' | 'ì' | 'ï' => 'i',
            'ó' | 'ò' | 'ö' => 'o',
            'ú' | 'ù' | 'ü' => 'u',
            'ñ' => 'n',
            '°' | 'º' | '#' | ',' | ';' => ' ',
            other => other,
        })
        .collect()
}

/// `d/m`, `d/m/yy` or `d/m/yyyy` (or with `-`), as written; `None` for anything else.
fn day_month(word: &str) -> Option<(u32, u32, Option<i32>)> {
    let parts: Vec<&str> = word.split(['/', '-']).collect();
    let number = |p: &str, max_len: usize| {
        (!p.is_empty() && p.len() <= max_len && p.chars().all(|c| c.is_ascii_digit()))
            .then(|| p.parse::<u32>().ok())
            .flatten()
    };
    let (day, month) = (number(parts.first()?, 2)?, number(parts.get(1)?, 2)?);
    let year = match parts.get(2) {
        None => None,
        Some(y) if y.len() == 2 => Some(2000 + i32::try_from(number(y, 2)?).ok()?),
        Some(y) if y.len() == 4 => Some(i32::try_from(number(y, 4)?).ok()?),
        Some(_) => return None,
    };
    (parts.len() <= 3).then_some((day, month, year))
}

/// The first two dates as a stay; `None` unless there are two real dates.
fn stay(dates: &[(u32, u32, Option<i32>)], today: NaiveDate) -> Option<Stay> {
    let [(d1, m1, y1), (d2, m2, y2), ..] = dates else {
        return None;
    };
    let check_in = match y1 {
        Some(year) => NaiveDate::from_ymd_opt(*year, *m1, *d1)?,
        None => next_on_or_after(*d1, *m1, today)?,
    };
    let check_out = match y2 {
        Some(year) => NaiveDate::from_ymd_opt(*year, *m2, *d2)?,
        None => next_on_or_after(*d2, *m2, check_in)?,
    };
    Some(Stay {
        check_in,
        check_out,
    })
}

/// The day `day/month` on or after `from` (this year or the next).
fn next_on_or_after(day: u32, month: u32, from: NaiveDate) -> Option<NaiveDate> {
    let this_year = NaiveDate::from_ymd_opt(from.year(), month, day);
    match this_year {
        Some(date) if date >= from => Some(date),
        _ => NaiveDate::from_ymd_opt(from.year() + 1, month, day),
    }
}

/// "cabaña 2", "cabaña nro 2": the number after a cabin word.
fn cabin_number(words: &[&str]) -> Option<i64> {
    let at = words.iter().position(|w| CABIN_WORDS.contains(w))?;
    words[at + 1..]
        .iter()
        .find(|w| !NUMBER_WORDS.contains(w))
        .filter(|w| w.len() <= 4 && w.chars().all(|c| c.is_ascii_digit()))
        .and_then(|w| w.parse().ok())
}

/// The cabin whose name (without "cabaña") appears as whole words; the longest wins.
fn cabin_by_name(words: &[&str], catalog: &[(i64, &str)]) -> Option<i64> {
    let text = format!(" {} ", words.join(" "));
    catalog
        .iter()
        .filter_map(|(id, name)| {
            let name = normalize(name);
            let key: Vec<&str> = name
                .split_whitespace()
                .filter(|w| !CABIN_WORDS.contains(w))
                .collect();
            let key = key.join(" ");
            (!key.is_empty() && text.contains(&format!(" {key} "))).then_some((key.len(), *id))
        })
        .max()
        .map(|(_, id)| id)
}

/// "para 3 personas": the number before a guest word.
fn guests(words: &[&str]) -> Option<i32> {
    words
        .windows(2)
        .find(|pair| GUEST_WORDS.contains(&pair[1]))
        .and_then(|pair| pair[0].parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CATALOG: [(i64, &str); 3] = [
        (1, "Cabaña del Lago"),
        (2, "Cabaña Alerce"),
        (3, "Lago Grande"),
    ];

    fn day(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    fn read(text: &str) -> GuestRequest {
        parse(text, day("2026-12-06"), &CATALOG)
    }

    fn stay(from: &str, to: &str) -> Stay {
        Stay {
            check_in: day(from),
            check_out: day(to),
        }
    }

    #[test]
    fn availability_for_a_numbered_cabin_with_dates_without_a_year() {
        assert_eq!(
            read("disponibilidad cabaña 2 del 10/01 al 12/01"),
            GuestRequest::Availability {
                accommodation_id: Some(2),
                stay: stay("2027-01-10", "2027-01-12"),
            }
        );
        assert_eq!(
            read("Hola! ¿Hay lugar en la CABANA Nº 3 del 20/12 al 02/01?"),
            GuestRequest::Availability {
                accommodation_id: Some(3),
                stay: stay("2026-12-20", "2027-01-02"),
            }
        );
    }

    #[test]
    fn a_booking_by_name_with_full_dates_and_guests() {
        assert_eq!(
            read("reservar cabaña Alerce 10/01/2027 al 12/01/2027 para 3 personas"),
            GuestRequest::Book {
                accommodation_id: 2,
                stay: stay("2027-01-10", "2027-01-12"),
                guests: Some(3),
            }
        );
        assert_eq!(
            read("Quiero reservar la Cabaña del Lago, 5-2-27 al 8-2-27."),
            GuestRequest::Book {
                accommodation_id: 1,
                stay: stay("2027-02-05", "2027-02-08"),
                guests: None,
            }
        );
    }

    #[test]
    fn the_longest_name_wins_and_a_number_beats_a_name() {
        assert_eq!(
            read("disponibilidad lago grande 10/01 12/01"),
            GuestRequest::Availability {
                accommodation_id: Some(3),
                stay: stay("2027-01-10", "2027-01-12"),
            }
        );
        assert_eq!(
            read("reservo cabaña 1 (alerce) 10/01 12/01"),
            GuestRequest::Book {
                accommodation_id: 1,
                stay: stay("2027-01-10", "2027-01-12"),
                guests: None,
            }
        );
    }

    #[test]
    fn dates_without_a_cabin_ask_about_every_cabin() {
        assert_eq!(
            read("qué tienen libre del 10/01 al 15/01"),
            GuestRequest::Availability {
                accommodation_id: None,
                stay: stay("2027-01-10", "2027-01-15"),
            }
        );
    }

    #[test]
    fn anything_else_is_help() {
        for text in [
            "hola",
            "",
            "reservar cabaña 2",
            "reservar del 10/01 al 12/01",
            "disponibilidad 31/02 al 02/03",
            "cabaña 2 del 10/01",
            "precio 10/01/20277 12/01",
            "1/2/3/4 5/6",
        ] {
            assert_eq!(read(text), GuestRequest::Help, "{text:?}");
        }
    }

    #[test]
    fn dates_keep_their_order_as_written() {
        // The service, not the reader, refuses a departure before the arrival.
        assert_eq!(
            read("disponibilidad cabaña 2 12/01/2027 10/01/2027"),
            GuestRequest::Availability {
                accommodation_id: Some(2),
                stay: stay("2027-01-12", "2027-01-10"),
            }
        );
    }
}
