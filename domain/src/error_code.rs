//! The public catalogue of error codes (docs/contract.md §6): one home for the gateway,
//! which answers with them, and the merchant SDK, which reads them. The string form and
//! the status are the wire contract; the SQL ledger functions answer with these strings
//! too (a test in the gateway holds them to this list).

/// The public catalogue of error codes. The string form is the wire contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    Unauthenticated,
    InvalidSignature,
    StaleTimestamp,
    Forbidden,
    SecondFactorRequired,
    SecondFactorInvalid,
    NotFound,
    OrderNotPayable,
    AlreadyPaid,
    OrderNotRefundable,
    IdempotencyConflict,
    IdempotencyInProgress,
    ReplayedMessage,
    DuplicateReference,
    SecondFactorEnrolled,
    CampaignEnded,
    MethodNotAllowed,
    RequestTimeout,
    PayloadTooLarge,
    UnsupportedMediaType,
    InvalidQr,
    StaticCodeRevoked,
    TipNotAllowed,
    TipExceedsCap,
    RewardOutOfStock,
    RewardUnavailable,
    VoucherInvalid,
    VoucherUsed,
    VoucherExpired,
    TransferNotAllowed,
    InsufficientFunds,
    AmountMismatch,
    CurrencyMismatch,
    OrderExpired,
    ChargeExceedsMax,
    LimitExceeded,
    QuoteExpired,
    MerchantInsufficientFunds,
    RiskDeclined,
    AuthenticationRequired,
    AccountBlocked,
    RefundExceedsPayment,
    TooManyRefunds,
    RateLimited,
    Unavailable,
    Internal,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 47] = [
        Self::InvalidRequest,
        Self::Unauthenticated,
        Self::InvalidSignature,
        Self::StaleTimestamp,
        Self::Forbidden,
        Self::SecondFactorRequired,
        Self::SecondFactorInvalid,
        Self::SecondFactorEnrolled,
        Self::CampaignEnded,
        Self::NotFound,
        Self::OrderNotPayable,
        Self::AlreadyPaid,
        Self::OrderNotRefundable,
        Self::IdempotencyConflict,
        Self::IdempotencyInProgress,
        Self::ReplayedMessage,
        Self::DuplicateReference,
        Self::MethodNotAllowed,
        Self::RequestTimeout,
        Self::PayloadTooLarge,
        Self::UnsupportedMediaType,
        Self::InvalidQr,
        Self::StaticCodeRevoked,
        Self::TipNotAllowed,
        Self::TipExceedsCap,
        Self::RewardOutOfStock,
        Self::RewardUnavailable,
        Self::VoucherInvalid,
        Self::VoucherUsed,
        Self::VoucherExpired,
        Self::TransferNotAllowed,
        Self::InsufficientFunds,
        Self::AmountMismatch,
        Self::CurrencyMismatch,
        Self::OrderExpired,
        Self::ChargeExceedsMax,
        Self::LimitExceeded,
        Self::QuoteExpired,
        Self::MerchantInsufficientFunds,
        Self::RiskDeclined,
        Self::AuthenticationRequired,
        Self::AccountBlocked,
        Self::RefundExceedsPayment,
        Self::TooManyRefunds,
        Self::RateLimited,
        Self::Unavailable,
        Self::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::Unauthenticated => "unauthenticated",
            Self::InvalidSignature => "invalid_signature",
            Self::StaleTimestamp => "stale_timestamp",
            Self::Forbidden => "forbidden",
            Self::SecondFactorRequired => "second_factor_required",
            Self::SecondFactorInvalid => "second_factor_invalid",
            Self::SecondFactorEnrolled => "second_factor_enrolled",
            Self::CampaignEnded => "campaign_ended",
            Self::NotFound => "not_found",
            Self::OrderNotPayable => "order_not_payable",
            Self::AlreadyPaid => "already_paid",
            Self::OrderNotRefundable => "order_not_refundable",
            Self::IdempotencyConflict => "idempotency_conflict",
            Self::IdempotencyInProgress => "idempotency_in_progress",
            Self::ReplayedMessage => "replayed_message",
            Self::DuplicateReference => "duplicate_reference",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::RequestTimeout => "request_timeout",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::InvalidQr => "invalid_qr",
            Self::StaticCodeRevoked => "static_code_revoked",
            Self::TipNotAllowed => "tip_not_allowed",
            Self::TipExceedsCap => "tip_exceeds_cap",
            Self::RewardOutOfStock => "reward_out_of_stock",
            Self::RewardUnavailable => "reward_unavailable",
            Self::VoucherInvalid => "voucher_invalid",
            Self::VoucherUsed => "voucher_used",
            Self::VoucherExpired => "voucher_expired",
            Self::TransferNotAllowed => "transfer_not_allowed",
            Self::InsufficientFunds => "insufficient_funds",
            Self::AmountMismatch => "amount_mismatch",
            Self::CurrencyMismatch => "currency_mismatch",
            Self::OrderExpired => "order_expired",
            Self::ChargeExceedsMax => "charge_exceeds_max",
            Self::LimitExceeded => "limit_exceeded",
            Self::QuoteExpired => "quote_expired",
            Self::MerchantInsufficientFunds => "merchant_insufficient_funds",
            Self::RiskDeclined => "risk_declined",
            Self::AuthenticationRequired => "authentication_required",
            Self::AccountBlocked => "account_blocked",
            Self::RefundExceedsPayment => "refund_exceeds_payment",
            Self::TooManyRefunds => "too_many_refunds",
            Self::RateLimited => "rate_limited",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal_error",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == code)
    }

    /// The HTTP status every answer with this code has.
    pub fn http_status(self) -> u16 {
        match self {
            Self::InvalidRequest => 400,
            Self::Unauthenticated | Self::InvalidSignature | Self::StaleTimestamp => 401,
            Self::Forbidden | Self::SecondFactorRequired | Self::SecondFactorInvalid => 403,
            Self::NotFound => 404,
            Self::OrderNotPayable
            | Self::AlreadyPaid
            | Self::OrderNotRefundable
            | Self::IdempotencyConflict
            | Self::IdempotencyInProgress
            | Self::ReplayedMessage
            | Self::DuplicateReference
            | Self::SecondFactorEnrolled
            | Self::CampaignEnded => 409,
            Self::MethodNotAllowed => 405,
            Self::RequestTimeout => 408,
            Self::PayloadTooLarge => 413,
            Self::UnsupportedMediaType => 415,
            Self::InvalidQr
            | Self::StaticCodeRevoked
            | Self::TipNotAllowed
            | Self::TipExceedsCap
            | Self::RewardOutOfStock
            | Self::RewardUnavailable
            | Self::VoucherInvalid
            | Self::VoucherUsed
            | Self::VoucherExpired
            | Self::TransferNotAllowed
            | Self::InsufficientFunds
            | Self::AmountMismatch
            | Self::CurrencyMismatch
            | Self::OrderExpired
            | Self::ChargeExceedsMax
            | Self::LimitExceeded
            | Self::QuoteExpired
            | Self::MerchantInsufficientFunds
            | Self::RiskDeclined
            | Self::AuthenticationRequired
            | Self::AccountBlocked
            | Self::RefundExceedsPayment
            | Self::TooManyRefunds => 422,
            Self::RateLimited => 429,
            Self::Unavailable => 503,
            Self::Internal => 500,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorCode;

    #[test]
    fn codes_round_trip_and_are_unique() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::parse(code.as_str()), Some(code));
            assert!((400..600).contains(&code.http_status()));
        }
        let mut names: Vec<_> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), ErrorCode::ALL.len());
    }
}
