//! What the provider reported about a payment, and what its notification did.

/// The provider name stored with MercadoPago payments.
pub const MERCADOPAGO: &str = "mercadopago";

/// A payment as the provider reported it.
#[derive(Debug, Clone)]
pub struct ReportedPayment {
    /// The provider's payment id.
    pub provider_payment_id: String,
    /// The provider's status (`approved`, `pending`, ...).
    pub status: String,
    /// The reservation code the payment is for, if it names one.
    pub reservation_code: Option<String>,
    /// The amount paid, in cents.
    pub amount_cents: i64,
    /// ISO currency code.
    pub currency: Option<String>,
}

/// What a payment notification did. Each is a metric label and the stored `outcome`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentOutcome {
    /// The payment confirmed its pre-reservation.
    Confirmed,
    /// This payment had already confirmed the reservation (a repeated notification).
    Duplicate,
    /// The reservation was already confirmed some other way (an admin, another payment).
    AlreadyConfirmed,
    /// Approved, but less than the deposit: the reservation stays pre-reserved.
    Underpaid,
    /// Approved, but not in the currency the deposit is charged in (or in none): the
    /// reservation stays pre-reserved and an admin settles the payment by hand.
    WrongCurrency,
    /// Approved after the pre-reservation expired: recorded, the reservation stays expired.
    AfterExpiry,
    /// Approved for a reservation that was cancelled: recorded only.
    ReservationCancelled,
    /// The external reference names no reservation.
    UnknownReservation,
    /// Not (yet) approved: pending, rejected, refunded, ...
    NotApproved,
    /// The deposit that confirmed the reservation was refunded or charged back: the stay
    /// stays confirmed and is flagged for an admin (see [`rule::decide`] for why).
    RefundedAfterConfirm,
}

impl PaymentOutcome {
    /// Every outcome, for registering metrics.
    pub const ALL: [PaymentOutcome; 10] = [
        Self::Confirmed,
        Self::Duplicate,
        Self::AlreadyConfirmed,
        Self::Underpaid,
        Self::WrongCurrency,
        Self::AfterExpiry,
        Self::ReservationCancelled,
        Self::UnknownReservation,
        Self::NotApproved,
        Self::RefundedAfterConfirm,
    ];

    /// The stable name: stored in `payments.outcome` and used as the metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Confirmed => "confirmed",
            Self::Duplicate => "duplicate",
            Self::AlreadyConfirmed => "already_confirmed",
            Self::Underpaid => "underpaid",
            Self::WrongCurrency => "wrong_currency",
            Self::AfterExpiry => "after_expiry",
            Self::ReservationCancelled => "reservation_cancelled",
            Self::UnknownReservation => "unknown_reservation",
            Self::NotApproved => "not_approved",
            Self::RefundedAfterConfirm => "refunded_after_confirm",
        }
    }
}
