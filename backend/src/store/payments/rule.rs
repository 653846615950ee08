//! The deposit rule as a pure function: what one payment notification does, given what the
//! store holds. [`super::record_payment`] reads the state, asks [`decide`], and carries out
//! the [`Action`] in the same transaction.

use chrono::{DateTime, Utc};

use super::outcome::{PaymentOutcome, ReportedPayment};
use crate::mercadopago::CURRENCY;
use crate::store::status::ReservationStatus::{self, Confirmed, Expired, PreReserved};

/// The reservation a payment names, as the store holds it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct HeldReservation {
    /// Primary key.
    pub id: i64,
    /// Where it is in its life.
    pub status: ReservationStatus,
    /// The deposit, in cents of [`CURRENCY`].
    pub deposit_cents: i64,
    /// When a pre-reservation stops holding the dates.
    pub expires_at: DateTime<Utc>,
    /// Set once the deposit that confirmed it was refunded or charged back.
    pub payment_flag: Option<String>,
}

/// What the store must write besides recording the payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Nothing.
    None,
    /// Confirm the pre-reservation (a conditional update: when it changes no row, another
    /// writer got there first and the outcome becomes `already_confirmed`).
    Confirm(i64),
    /// Mark the pre-reservation expired (its time ran out before the sweep saw it).
    Expire(i64),
    /// Flag the confirmed reservation for an admin: its deposit was refunded or charged
    /// back (`flag` is the provider status). Conditional too: set at most once.
    Flag {
        /// The reservation.
        id: i64,
        /// `refunded` or `charged_back`.
        flag: &'static str,
    },
}

/// MercadoPago's statuses for money that went back to the payer: refunded by the seller, or
/// charged back by the card issuer. The statuses a payment can take are listed at
/// <https://www.mercadopago.com.mx/developers/en/docs/checkout-api-payments/response-handling/query-results>
/// (`approved`, `pending`, `authorized`, `in_process`, `in_mediation`, `rejected`,
/// `cancelled`, `refunded`, `charged_back`).
pub const REVERSED_STATUSES: [&str; 2] = ["refunded", "charged_back"];

/// The rule. `previous_outcome` is the outcome stored for this payment before this
/// notification (`received` for a payment never seen).
///
/// A refund or chargeback of the deposit that confirmed a reservation does not cancel the
/// stay: it flags the reservation (`payment_flag`) and reports `refunded_after_confirm`, and
/// an admin decides. Why not cancel: a refund is most often the owner's own doing (the guest
/// paid the deposit another way, or the stay was moved), a chargeback can still be disputed
/// and won, and a cancelled reservation cannot be confirmed again, while its dates would be
/// free for someone else to book at once. Leaving the dates held costs at worst an empty
/// cabin an admin can release; cancelling by mistake costs a guest who arrives to a cabin
/// given to someone else.
///
/// The deposit is charged in [`CURRENCY`] (the checkout's `currency_id`), so only a payment
/// in that currency, of at least the deposit's amount, confirms: 222.00 USD is not 222.00 ARS,
/// and a payment with no currency says nothing about what was paid.
pub fn decide(
    payment: &ReportedPayment,
    previous_outcome: &str,
    reservation: Option<&HeldReservation>,
    now: DateTime<Utc>,
) -> (PaymentOutcome, Action) {
    let outcome = |o| (o, Action::None);
    let reversal = REVERSED_STATUSES
        .into_iter()
        .find(|status| payment.status == *status);
    if let (Some(flag), Some(held)) = (reversal, reservation) {
        // Only the payment that confirmed the stay paid for it; other payments' refunds
        // (a second payment, an underpayment) are settled money, not a lost deposit.
        if previous_outcome == PaymentOutcome::Confirmed.as_str() && held.status == Confirmed {
            return match held.payment_flag {
                Some(_) => outcome(PaymentOutcome::Duplicate),
                None => (
                    PaymentOutcome::RefundedAfterConfirm,
                    Action::Flag { id: held.id, flag },
                ),
            };
        }
    }
    if payment.status != "approved" {
        return outcome(PaymentOutcome::NotApproved);
    }
    let Some(held) = reservation else {
        return outcome(PaymentOutcome::UnknownReservation);
    };
    if held.status == Confirmed {
        let repeated = previous_outcome == PaymentOutcome::Confirmed.as_str()
            || previous_outcome == PaymentOutcome::Duplicate.as_str();
        return outcome(if repeated {
            PaymentOutcome::Duplicate
        } else {
            PaymentOutcome::AlreadyConfirmed
        });
    }
    if held.status == Expired {
        return outcome(PaymentOutcome::AfterExpiry);
    }
    if held.status != PreReserved {
        return outcome(PaymentOutcome::ReservationCancelled);
    }
    if held.expires_at <= now {
        // Expired by time, not yet by the sweep: record the expiry now.
        return (PaymentOutcome::AfterExpiry, Action::Expire(held.id));
    }
    if payment.currency.as_deref() != Some(CURRENCY) {
        return outcome(PaymentOutcome::WrongCurrency);
    }
    if payment.amount_cents < held.deposit_cents {
        return outcome(PaymentOutcome::Underpaid);
    }
    (PaymentOutcome::Confirmed, Action::Confirm(held.id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::status::ReservationStatus::Cancelled;

    const DEPOSIT: i64 = 22_200;

    fn at(ts: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(ts, 0).unwrap()
    }

    fn paid(status: &str, amount_cents: i64, currency: Option<&str>) -> ReportedPayment {
        ReportedPayment {
            provider_payment_id: "1001".into(),
            status: status.into(),
            reservation_code: Some("CB-TEST".into()),
            amount_cents,
            currency: currency.map(str::to_owned),
        }
    }

    fn held(status: ReservationStatus) -> HeldReservation {
        HeldReservation {
            id: 7,
            status,
            deposit_cents: DEPOSIT,
            expires_at: at(2_000),
            payment_flag: None,
        }
    }

    fn run(
        payment: &ReportedPayment,
        previous: &str,
        reservation: &HeldReservation,
    ) -> PaymentOutcome {
        decide(payment, previous, Some(reservation), at(1_000)).0
    }

    #[test]
    fn the_deposit_in_pesos_confirms() {
        let payment = paid("approved", DEPOSIT, Some("ARS"));
        assert_eq!(
            decide(&payment, "received", Some(&held(PreReserved)), at(1_000)),
            (PaymentOutcome::Confirmed, Action::Confirm(7))
        );
        let more = paid("approved", DEPOSIT + 1, Some("ARS"));
        assert_eq!(
            run(&more, "received", &held(PreReserved)),
            PaymentOutcome::Confirmed
        );
    }

    #[test]
    fn the_deposit_amount_in_another_currency_or_none_does_not_confirm() {
        for currency in [Some("USD"), Some("ars"), Some("XYZ"), Some(""), None] {
            let payment = paid("approved", DEPOSIT, currency);
            assert_eq!(
                decide(&payment, "received", Some(&held(PreReserved)), at(1_000)),
                (PaymentOutcome::WrongCurrency, Action::None),
                "{currency:?}"
            );
        }
    }

    #[test]
    fn short_payments_keep_the_hold() {
        let payment = paid("approved", DEPOSIT - 1, Some("ARS"));
        assert_eq!(
            run(&payment, "received", &held(PreReserved)),
            PaymentOutcome::Underpaid
        );
    }

    #[test]
    fn only_approved_payments_count() {
        for status in [
            "pending",
            "in_process",
            "rejected",
            "refunded",
            "charged_back",
        ] {
            let payment = paid(status, DEPOSIT, Some("ARS"));
            assert_eq!(
                run(&payment, "received", &held(PreReserved)),
                PaymentOutcome::NotApproved,
                "{status}"
            );
        }
    }

    #[test]
    fn the_reservations_state_decides_late_and_repeated_payments() {
        let payment = paid("approved", DEPOSIT, Some("ARS"));
        assert_eq!(
            decide(&payment, "received", None, at(1_000)).0,
            PaymentOutcome::UnknownReservation
        );
        assert_eq!(
            run(&payment, "confirmed", &held(Confirmed)),
            PaymentOutcome::Duplicate
        );
        assert_eq!(
            run(&payment, "received", &held(Confirmed)),
            PaymentOutcome::AlreadyConfirmed
        );
        assert_eq!(
            run(&payment, "received", &held(Expired)),
            PaymentOutcome::AfterExpiry
        );
        assert_eq!(
            run(&payment, "received", &held(Cancelled)),
            PaymentOutcome::ReservationCancelled
        );
        assert_eq!(
            decide(&payment, "received", Some(&held(PreReserved)), at(2_000)),
            (PaymentOutcome::AfterExpiry, Action::Expire(7))
        );
    }

    #[test]
    fn a_refund_or_chargeback_of_the_confirming_deposit_flags_the_stay_once() {
        for status in REVERSED_STATUSES {
            let payment = paid(status, DEPOSIT, Some("ARS"));
            assert_eq!(
                decide(&payment, "confirmed", Some(&held(Confirmed)), at(1_000)),
                (
                    PaymentOutcome::RefundedAfterConfirm,
                    Action::Flag {
                        id: 7,
                        flag: status
                    }
                ),
                "{status}"
            );
            let flagged = HeldReservation {
                payment_flag: Some(status.into()),
                ..held(Confirmed)
            };
            assert_eq!(
                run(&payment, "confirmed", &flagged),
                PaymentOutcome::Duplicate
            );
        }
    }

    #[test]
    fn refunds_of_payments_that_confirmed_nothing_are_not_approved() {
        let refunded = paid("refunded", DEPOSIT, Some("ARS"));
        // A second payment for a confirmed stay, an underpayment, a payment for a stay an
        // admin has since cancelled.
        for (previous, status) in [
            ("already_confirmed", Confirmed),
            ("underpaid", PreReserved),
            ("confirmed", Cancelled),
        ] {
            assert_eq!(
                run(&refunded, previous, &held(status)),
                PaymentOutcome::NotApproved,
                "{previous} {status}"
            );
        }
        assert_eq!(
            decide(&refunded, "confirmed", None, at(1_000)).0,
            PaymentOutcome::NotApproved
        );
    }
}
