//! A shop's tipping (`PUT /v1/me/tip-policy`, a manager key: scope `keys`): the tip
//! policy an order takes when it names none, and the largest tip the shop accepts, in
//! percent of the order's amount. Each order's QR states its own policy (EMV tags
//! 55–57); the wallet's payment carries the tip, which `pay_order` checks against the
//! order's policy and this cap.

use crate::{
    api::orders::tip_policy_error,
    auth::{Merchant, Scope},
    error::{ApiError, ApiResult},
    http::json_body,
    state::AppState,
};
use actix_web::{web, HttpRequest, HttpResponse};
use qrgate_domain::{
    money::format_minor,
    tips::{TipPolicy, TIP_MAX_PERCENT_LIMIT},
    Currency,
};
use serde::Deserialize;
use serde_json::{json, Value};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/me/tip-policy", web::put().to(set_tip_policy));
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TipPolicyRequest {
    tip_policy: String,
    convenience_fee: Option<String>,
    convenience_fee_percent: Option<String>,
    /// Absent: unchanged.
    tip_max_percent: Option<i32>,
}

async fn set_tip_policy(
    merchant: Merchant,
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    merchant.require(Scope::Keys)?;
    let body: TipPolicyRequest =
        json_body(payload, &req, state.settings.limits.body_bytes_max).await?;
    let currency = Currency::parse(&merchant.profile.currency).map_err(ApiError::internal_from)?;
    let policy = TipPolicy::parse(
        &body.tip_policy,
        body.convenience_fee.as_deref(),
        body.convenience_fee_percent.as_deref(),
        currency,
    )
    .map_err(tip_policy_error)?;
    if body
        .tip_max_percent
        .is_some_and(|p| !(0..=TIP_MAX_PERCENT_LIMIT).contains(&p))
    {
        return Err(ApiError::invalid(
            "tip_max_percent",
            format!("must be a whole percentage from 0 to {TIP_MAX_PERCENT_LIMIT}"),
        ));
    }
    let client = state.pool.get().await?;
    let row = client
        .query_one(
            "UPDATE merchants SET tip_policy = $2, convenience_fee_minor = $3,
                    convenience_fee_percent_hundredths = $4, tip_max_percent = coalesce($5, tip_max_percent)
             WHERE id = $1 RETURNING tip_max_percent",
            &[
                &merchant.merchant_id,
                &policy.name(),
                &policy.fixed_fee_minor(),
                &policy.percent_hundredths(),
                &body.tip_max_percent,
            ],
        )
        .await?;
    let tip_max_percent: i32 = row.get(0);
    // This replica's cached profile goes at once (the shop's next order takes the new
    // policy); other replicas drop theirs when the change's notification reaches them.
    state.credentials.forget_merchant(&merchant.merchant_id);
    tracing::info!(merchant_id = %merchant.merchant_id, key_id = %merchant.key_id,
                   tip_policy = policy.name(), tip_max_percent, "shop tip policy set");
    Ok(HttpResponse::Ok().json(tip_settings_json(policy, tip_max_percent, currency)))
}

/// A shop's tipping as `/v1/me` and `PUT /v1/me/tip-policy` show it.
pub fn tip_settings_json(policy: TipPolicy, tip_max_percent: i32, currency: Currency) -> Value {
    json!({
        "tip_policy": policy.name(),
        "convenience_fee": policy.fixed_fee_minor().map(|f| format_minor(f, currency)),
        "convenience_fee_percent": match policy {
            TipPolicy::PercentageFee(p) => Some(p.to_string()),
            _ => None,
        },
        "tip_max_percent": tip_max_percent,
    })
}
