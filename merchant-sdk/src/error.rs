//! One error type for every call: the gateway's stable codes as variants of
//! [`ErrorKind`], plus what can go wrong on the way.

use qrgate_domain::error_code::ErrorCode;
use std::fmt;

/// The gateway's error codes (docs/contract.md §6). Codes added later arrive as `Other`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// `invalid_request` (400): a field is missing or malformed; the message names it.
    InvalidRequest,
    /// `unauthenticated` (401): the API key is missing, wrong or revoked.
    Unauthenticated,
    /// `invalid_signature` (401): a signed request did not verify.
    InvalidSignature,
    /// `stale_timestamp` (401): a signed request's timestamp is over 300 s off.
    StaleTimestamp,
    /// `forbidden` (403): the API key lacks the scope.
    Forbidden,
    /// `second_factor_required` (403): the call needs this key's second-factor code.
    SecondFactorRequired,
    /// `second_factor_invalid` (403): the code was wrong, stale or already used.
    SecondFactorInvalid,
    /// `second_factor_enrolled` (409): this key already has a confirmed second factor.
    SecondFactorEnrolled,
    /// `campaign_ended` (409): the campaign has ended (an operator's call).
    CampaignEnded,
    /// `not_found` (404): no such object (or another merchant's).
    NotFound,
    /// `order_not_payable` (409): the order was closed.
    OrderNotPayable,
    /// `already_paid` (409): the order is paid or refunded.
    AlreadyPaid,
    /// `order_not_refundable` (409): the order was never paid.
    OrderNotRefundable,
    /// `idempotency_conflict` (409): the key was used for another request.
    IdempotencyConflict,
    /// `idempotency_in_progress` (409): the same request is still running.
    IdempotencyInProgress,
    /// `replayed_message` (409): a signed message id was reused.
    ReplayedMessage,
    /// `duplicate_reference` (409): the reference is held by a live order.
    DuplicateReference,
    /// `method_not_allowed` (405): the path exists, not with this method (`Allow` lists them).
    MethodNotAllowed,
    /// `request_timeout` (408): the request head did not arrive in time.
    RequestTimeout,
    /// `payload_too_large` (413).
    PayloadTooLarge,
    /// `unsupported_media_type` (415).
    UnsupportedMediaType,
    /// `invalid_qr` (422): the payload is not one the gateway issued.
    InvalidQr,
    /// `static_code_revoked` (422): the shop revoked the static code that was scanned.
    StaticCodeRevoked,
    /// `tip_not_allowed` (422): the order's QR does not ask for a tip.
    TipNotAllowed,
    /// `tip_exceeds_cap` (422): the tip is above the shop's cap (`tip_max_percent`).
    TipExceedsCap,
    /// `reward_out_of_stock` (422): the reward has no stock left.
    RewardOutOfStock,
    /// `reward_unavailable` (422): the reward was ended by whoever listed it.
    RewardUnavailable,
    /// `voucher_invalid` (422): no such voucher for this customer, or it is for another shop or currency.
    VoucherInvalid,
    /// `voucher_used` (422): the voucher was already used by a payment.
    VoucherUsed,
    /// `voucher_expired` (422): the voucher is past its expiry.
    VoucherExpired,
    /// `transfer_not_allowed` (422): a transfer between customers of two wallets that do not both take part.
    TransferNotAllowed,
    /// `insufficient_funds` (422): the customer cannot pay.
    InsufficientFunds,
    /// `merchant_insufficient_funds` (422): the merchant balance is too low (refunds, payouts).
    MerchantInsufficientFunds,
    /// `amount_mismatch` (422).
    AmountMismatch,
    /// `currency_mismatch` (422): not the merchant's or the order's currency.
    CurrencyMismatch,
    /// `order_expired` (422).
    OrderExpired,
    /// `quote_expired` (422).
    QuoteExpired,
    /// `charge_exceeds_max` (422).
    ChargeExceedsMax,
    /// `limit_exceeded` (422): a risk or funding limit.
    LimitExceeded,
    /// `risk_declined` (422).
    RiskDeclined,
    /// `authentication_required` (422): strong customer authentication needed.
    AuthenticationRequired,
    /// `account_blocked` (422).
    AccountBlocked,
    /// `refund_exceeds_payment` (422).
    RefundExceedsPayment,
    /// `too_many_refunds` (422).
    TooManyRefunds,
    /// `rate_limited` (429): slow down (`Retry-After`).
    RateLimited,
    /// `unavailable` (503): retry later.
    Unavailable,
    /// `internal_error` (500): the gateway failed; the request id helps support.
    Internal,
    /// A code this SDK version does not know yet.
    Other(String),
}

impl From<ErrorCode> for ErrorKind {
    fn from(code: ErrorCode) -> Self {
        // Exhaustive both ways: a code added to the catalogue does not compile here
        // until the SDK knows it.
        match code {
            ErrorCode::InvalidRequest => ErrorKind::InvalidRequest,
            ErrorCode::Unauthenticated => ErrorKind::Unauthenticated,
            ErrorCode::InvalidSignature => ErrorKind::InvalidSignature,
            ErrorCode::StaleTimestamp => ErrorKind::StaleTimestamp,
            ErrorCode::Forbidden => ErrorKind::Forbidden,
            ErrorCode::SecondFactorRequired => ErrorKind::SecondFactorRequired,
            ErrorCode::SecondFactorInvalid => ErrorKind::SecondFactorInvalid,
            ErrorCode::SecondFactorEnrolled => ErrorKind::SecondFactorEnrolled,
            ErrorCode::CampaignEnded => ErrorKind::CampaignEnded,
            ErrorCode::NotFound => ErrorKind::NotFound,
            ErrorCode::OrderNotPayable => ErrorKind::OrderNotPayable,
            ErrorCode::AlreadyPaid => ErrorKind::AlreadyPaid,
            ErrorCode::OrderNotRefundable => ErrorKind::OrderNotRefundable,
            ErrorCode::IdempotencyConflict => ErrorKind::IdempotencyConflict,
            ErrorCode::IdempotencyInProgress => ErrorKind::IdempotencyInProgress,
            ErrorCode::ReplayedMessage => ErrorKind::ReplayedMessage,
            ErrorCode::DuplicateReference => ErrorKind::DuplicateReference,
            ErrorCode::MethodNotAllowed => ErrorKind::MethodNotAllowed,
            ErrorCode::RequestTimeout => ErrorKind::RequestTimeout,
            ErrorCode::PayloadTooLarge => ErrorKind::PayloadTooLarge,
            ErrorCode::UnsupportedMediaType => ErrorKind::UnsupportedMediaType,
            ErrorCode::InvalidQr => ErrorKind::InvalidQr,
            ErrorCode::StaticCodeRevoked => ErrorKind::StaticCodeRevoked,
            ErrorCode::TipNotAllowed => ErrorKind::TipNotAllowed,
            ErrorCode::TipExceedsCap => ErrorKind::TipExceedsCap,
            ErrorCode::RewardOutOfStock => ErrorKind::RewardOutOfStock,
            ErrorCode::RewardUnavailable => ErrorKind::RewardUnavailable,
            ErrorCode::VoucherInvalid => ErrorKind::VoucherInvalid,
            ErrorCode::VoucherUsed => ErrorKind::VoucherUsed,
            ErrorCode::VoucherExpired => ErrorKind::VoucherExpired,
            ErrorCode::TransferNotAllowed => ErrorKind::TransferNotAllowed,
            ErrorCode::InsufficientFunds => ErrorKind::InsufficientFunds,
            ErrorCode::MerchantInsufficientFunds => ErrorKind::MerchantInsufficientFunds,
            ErrorCode::AmountMismatch => ErrorKind::AmountMismatch,
            ErrorCode::CurrencyMismatch => ErrorKind::CurrencyMismatch,
            ErrorCode::OrderExpired => ErrorKind::OrderExpired,
            ErrorCode::QuoteExpired => ErrorKind::QuoteExpired,
            ErrorCode::ChargeExceedsMax => ErrorKind::ChargeExceedsMax,
            ErrorCode::LimitExceeded => ErrorKind::LimitExceeded,
            ErrorCode::RiskDeclined => ErrorKind::RiskDeclined,
            ErrorCode::AuthenticationRequired => ErrorKind::AuthenticationRequired,
            ErrorCode::AccountBlocked => ErrorKind::AccountBlocked,
            ErrorCode::RefundExceedsPayment => ErrorKind::RefundExceedsPayment,
            ErrorCode::TooManyRefunds => ErrorKind::TooManyRefunds,
            ErrorCode::RateLimited => ErrorKind::RateLimited,
            ErrorCode::Unavailable => ErrorKind::Unavailable,
            ErrorCode::Internal => ErrorKind::Internal,
        }
    }
}

impl ErrorKind {
    /// The kind for a gateway error code.
    pub fn from_code(code: &str) -> Self {
        ErrorCode::parse(code).map_or_else(|| ErrorKind::Other(code.to_owned()), ErrorKind::from)
    }

    /// The catalogue's code for this kind; `None` for one this SDK does not know.
    pub fn error_code(&self) -> Option<ErrorCode> {
        match self {
            ErrorKind::InvalidRequest => Some(ErrorCode::InvalidRequest),
            ErrorKind::Unauthenticated => Some(ErrorCode::Unauthenticated),
            ErrorKind::InvalidSignature => Some(ErrorCode::InvalidSignature),
            ErrorKind::StaleTimestamp => Some(ErrorCode::StaleTimestamp),
            ErrorKind::Forbidden => Some(ErrorCode::Forbidden),
            ErrorKind::SecondFactorRequired => Some(ErrorCode::SecondFactorRequired),
            ErrorKind::SecondFactorInvalid => Some(ErrorCode::SecondFactorInvalid),
            ErrorKind::SecondFactorEnrolled => Some(ErrorCode::SecondFactorEnrolled),
            ErrorKind::CampaignEnded => Some(ErrorCode::CampaignEnded),
            ErrorKind::NotFound => Some(ErrorCode::NotFound),
            ErrorKind::OrderNotPayable => Some(ErrorCode::OrderNotPayable),
            ErrorKind::AlreadyPaid => Some(ErrorCode::AlreadyPaid),
            ErrorKind::OrderNotRefundable => Some(ErrorCode::OrderNotRefundable),
            ErrorKind::IdempotencyConflict => Some(ErrorCode::IdempotencyConflict),
            ErrorKind::IdempotencyInProgress => Some(ErrorCode::IdempotencyInProgress),
            ErrorKind::ReplayedMessage => Some(ErrorCode::ReplayedMessage),
            ErrorKind::DuplicateReference => Some(ErrorCode::DuplicateReference),
            ErrorKind::MethodNotAllowed => Some(ErrorCode::MethodNotAllowed),
            ErrorKind::RequestTimeout => Some(ErrorCode::RequestTimeout),
            ErrorKind::PayloadTooLarge => Some(ErrorCode::PayloadTooLarge),
            ErrorKind::UnsupportedMediaType => Some(ErrorCode::UnsupportedMediaType),
            ErrorKind::InvalidQr => Some(ErrorCode::InvalidQr),
            ErrorKind::StaticCodeRevoked => Some(ErrorCode::StaticCodeRevoked),
            ErrorKind::TipNotAllowed => Some(ErrorCode::TipNotAllowed),
            ErrorKind::TipExceedsCap => Some(ErrorCode::TipExceedsCap),
            ErrorKind::RewardOutOfStock => Some(ErrorCode::RewardOutOfStock),
            ErrorKind::RewardUnavailable => Some(ErrorCode::RewardUnavailable),
            ErrorKind::VoucherInvalid => Some(ErrorCode::VoucherInvalid),
            ErrorKind::VoucherUsed => Some(ErrorCode::VoucherUsed),
            ErrorKind::VoucherExpired => Some(ErrorCode::VoucherExpired),
            ErrorKind::TransferNotAllowed => Some(ErrorCode::TransferNotAllowed),
            ErrorKind::InsufficientFunds => Some(ErrorCode::InsufficientFunds),
            ErrorKind::MerchantInsufficientFunds => Some(ErrorCode::MerchantInsufficientFunds),
            ErrorKind::AmountMismatch => Some(ErrorCode::AmountMismatch),
            ErrorKind::CurrencyMismatch => Some(ErrorCode::CurrencyMismatch),
            ErrorKind::OrderExpired => Some(ErrorCode::OrderExpired),
            ErrorKind::QuoteExpired => Some(ErrorCode::QuoteExpired),
            ErrorKind::ChargeExceedsMax => Some(ErrorCode::ChargeExceedsMax),
            ErrorKind::LimitExceeded => Some(ErrorCode::LimitExceeded),
            ErrorKind::RiskDeclined => Some(ErrorCode::RiskDeclined),
            ErrorKind::AuthenticationRequired => Some(ErrorCode::AuthenticationRequired),
            ErrorKind::AccountBlocked => Some(ErrorCode::AccountBlocked),
            ErrorKind::RefundExceedsPayment => Some(ErrorCode::RefundExceedsPayment),
            ErrorKind::TooManyRefunds => Some(ErrorCode::TooManyRefunds),
            ErrorKind::RateLimited => Some(ErrorCode::RateLimited),
            ErrorKind::Unavailable => Some(ErrorCode::Unavailable),
            ErrorKind::Internal => Some(ErrorCode::Internal),
            ErrorKind::Other(_) => None,
        }
    }

    /// The gateway's code for this kind.
    pub fn code(&self) -> &str {
        match self {
            ErrorKind::Other(code) => code,
            kind => kind.error_code().expect("a known kind").as_str(),
        }
    }

    /// What the caller should do about it.
    pub fn advice(&self) -> &'static str {
        match self {
            ErrorKind::InvalidRequest => "fix the request; the message names the field",
            ErrorKind::Unauthenticated => "check the API key (QRGATE_API_KEY): it is missing, mistyped or revoked",
            ErrorKind::Forbidden => "this API key lacks the scope for this call; ask the shop owner for a key that has it",
            ErrorKind::NotFound => "check the id; objects of other merchants are not visible",
            ErrorKind::SecondFactorRequired => "this refund needs the key's second-factor code (enroll one first if it has none)",
            ErrorKind::SecondFactorInvalid => "enter the authenticator app's current code; each code works once",
            ErrorKind::OrderNotPayable => "the order was closed; create a new one",
            ErrorKind::AlreadyPaid => "the order is already paid; nothing more to do",
            ErrorKind::OrderExpired => "the order expired; create a new one",
            ErrorKind::StaticCodeRevoked => "this printed code was revoked; take it down and print the shop's current one",
            ErrorKind::TipNotAllowed => "this order takes no tip; pay it without one",
            ErrorKind::TipExceedsCap => "the tip is above what the shop accepts; offer a smaller one",
            ErrorKind::RewardOutOfStock => "this reward has none left; choose another",
            ErrorKind::RewardUnavailable => "this reward is no longer offered",
            ErrorKind::VoucherInvalid => "this voucher is not this customer's or not for this shop",
            ErrorKind::VoucherUsed => "this voucher was already used",
            ErrorKind::VoucherExpired => "this voucher has expired",
            ErrorKind::DuplicateReference => "that reference belongs to another order: use a new one (a pending order holding it can be closed first)",
            ErrorKind::IdempotencyConflict => "this Idempotency-Key was used for a different request; use a new key",
            ErrorKind::IdempotencyInProgress => "the same request is still being processed; retry shortly",
            ErrorKind::CurrencyMismatch => "use the merchant's own currency",
            ErrorKind::RateLimited => "slow down and retry after the indicated time",
            ErrorKind::Unavailable | ErrorKind::Internal => "the gateway is having trouble; retry later (the request id helps support)",
            ErrorKind::MethodNotAllowed => "use one of the methods the Allow header lists",
            ErrorKind::RequestTimeout => "the network was too slow; retry",
            ErrorKind::PayloadTooLarge => "send a smaller request",
            _ => "see the message; docs/api.md lists every code",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Everything a call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The gateway answered with an error.
    #[error("{message} [{kind}; request {request_id}] — {}", kind.advice())]
    Api {
        /// Which error, by the gateway's stable code.
        kind: ErrorKind,
        /// The HTTP status.
        status: u16,
        /// For a person.
        message: String,
        /// Identifies the request in the gateway's logs.
        request_id: String,
    },
    /// The gateway could not be reached (after the retries the policy allows).
    #[error("could not reach the gateway: {0} — check QRGATE_URL and the network, then retry")]
    Transport(String),
    /// The gateway answered something this SDK does not understand.
    #[error("unexpected answer from the gateway: {0} — is QRGATE_URL a qrgate gateway?")]
    UnexpectedResponse(String),
    /// The input was refused before anything was sent.
    #[error("{0}")]
    InvalidInput(String),
}

impl Error {
    /// The gateway's error kind, if the gateway answered with one.
    pub fn kind(&self) -> Option<&ErrorKind> {
        match self {
            Error::Api { kind, .. } => Some(kind),
            _ => None,
        }
    }
}

impl From<qrgate_domain::currency::UnknownCurrency> for Error {
    fn from(e: qrgate_domain::currency::UnknownCurrency) -> Self {
        Error::InvalidInput(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_both_ways() {
        for code in ErrorCode::ALL {
            let kind = ErrorKind::from_code(code.as_str());
            assert_eq!(kind.error_code(), Some(code));
            assert_eq!(kind.code(), code.as_str());
        }
        assert_eq!(
            ErrorKind::from_code("brand_new"),
            ErrorKind::Other("brand_new".into())
        );
        assert_eq!(ErrorKind::from_code("brand_new").code(), "brand_new");
    }

    #[test]
    fn display_says_what_to_do() {
        let e = Error::Api {
            kind: ErrorKind::Forbidden,
            status: 403,
            message: "this API key lacks the `reports` scope".into(),
            request_id: "req_1".into(),
        };
        let text = e.to_string();
        assert!(
            text.contains("reports")
                && text.contains("ask the shop owner")
                && text.contains("req_1"),
            "{text}"
        );
    }
}
