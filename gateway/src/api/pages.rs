//! The web pages the gateway serves itself: the cashier's till (`/cashier`) and the
//! hosted payment page of a checkout session (`/pay/{token}`). HTML, CSS and
//! JavaScript are compiled into the binary (`gateway/assets/web/`): no CDN, no fonts or
//! scripts from elsewhere, no build step. The pages talk only to this gateway's API;
//! the cashier's API key lives in the tab's `sessionStorage` and travels only in the
//! `Authorization` header, never in a URL.

use actix_web::{http::header, web, HttpResponse};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/cashier", crate::http::get().to(cashier))
        .route("/pay/{token}", crate::http::get().to(pay))
        .route("/assets/web/{name}", crate::http::get().to(asset));
}

/// Only this origin; blob: for the QR image the cashier page fetches with its key.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' blob:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

const ASSETS: &[(&str, &str, &str)] = &[
    (
        "qrgate.css",
        "text/css; charset=utf-8",
        include_str!("../../assets/web/qrgate.css"),
    ),
    (
        "i18n.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/web/i18n.js"),
    ),
    (
        "cashier.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/web/cashier.js"),
    ),
    (
        "pay.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/web/pay.js"),
    ),
];

fn page(html: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        // The payment page's address carries its token: never sent on to return_url.
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(html)
}

async fn cashier() -> HttpResponse {
    page(include_str!("../../assets/web/cashier.html"))
}

/// The same page for every token: it asks `/pay/{token}/session` what to show, and an
/// unknown token reads as "not found" there.
async fn pay() -> HttpResponse {
    page(include_str!("../../assets/web/pay.html"))
}

async fn asset(name: web::Path<String>) -> HttpResponse {
    match ASSETS.iter().find(|(n, _, _)| *n == name.as_str()) {
        Some((_, content_type, body)) => HttpResponse::Ok()
            .content_type(*content_type)
            .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
            .insert_header((header::CACHE_CONTROL, "no-cache"))
            .body(*body),
        None => {
            actix_web::ResponseError::error_response(&crate::error::ApiError::not_found("asset"))
        }
    }
}
