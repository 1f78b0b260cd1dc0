//! What each operator may do. A named admin token carries one role, given when it is
//! made; the bootstrap token (`QRGATE_ADMIN_TOKEN`) is `admin`. Every role may read
//! (GET) the admin API but the audit log; changes are each role's own:
//!
//! | role | may change |
//! |---|---|
//! | `admin` | everything |
//! | `support` | nothing (the customer-service desk, when it comes, is read-only) |
//! | `risk` | blocks, risk limits, SCA rules, wallets' funding limits and transfers across providers |
//! | `finance` | FX rates, campaigns, platform rewards |
//!
//! One table decides, by the route's pattern as registered (never the raw path).

use actix_web::http::Method;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Admin,
    Support,
    Risk,
    Finance,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Admin, Role::Support, Role::Risk, Role::Finance];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Support => "support",
            Role::Risk => "risk",
            Role::Finance => "finance",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

/// Changes a role other than `admin` may make: (role, method, route pattern).
const CHANGES: &[(Role, &str, &str)] = &[
    (Role::Risk, "POST", "/v1/admin/accounts/{id}/block"),
    (Role::Risk, "POST", "/v1/admin/accounts/{id}/unblock"),
    (Role::Risk, "POST", "/v1/admin/merchants/{id}/block"),
    (Role::Risk, "POST", "/v1/admin/merchants/{id}/unblock"),
    (Role::Risk, "PUT", "/v1/admin/risk-limits/{currency}"),
    (Role::Risk, "PUT", "/v1/admin/wallets/{id}/sca/{currency}"),
    (
        Role::Risk,
        "DELETE",
        "/v1/admin/wallets/{id}/sca/{currency}",
    ),
    (Role::Risk, "POST", "/v1/admin/wallets/{id}/funding-limits"),
    (
        Role::Risk,
        "PUT",
        "/v1/admin/wallets/{id}/cross-provider-transfers/{currency}",
    ),
    (
        Role::Risk,
        "DELETE",
        "/v1/admin/wallets/{id}/cross-provider-transfers/{currency}",
    ),
    (Role::Finance, "POST", "/v1/admin/fx-rates"),
    (Role::Finance, "POST", "/v1/admin/campaigns"),
    (Role::Finance, "PATCH", "/v1/admin/campaigns/{id}"),
    (Role::Finance, "POST", "/v1/admin/campaigns/{id}/pause"),
    (Role::Finance, "POST", "/v1/admin/campaigns/{id}/resume"),
    (Role::Finance, "POST", "/v1/admin/campaigns/{id}/end"),
    (Role::Finance, "POST", "/v1/admin/rewards"),
    (Role::Finance, "POST", "/v1/admin/rewards/{id}/end"),
];

/// Changes every role may make: its own second factor.
const OWN_CHANGES: &[(&str, &str)] = &[
    ("POST", "/v1/admin/second-factor"),
    ("POST", "/v1/admin/second-factor/confirm"),
];

/// Changes that need the operator's second factor (`second_factor`): who may stop
/// money moving, change the limits on it, change who is trusted, or hand out access.
const SECOND_FACTOR_CHANGES: &[(&str, &str)] = &[
    ("POST", "/v1/admin/accounts/{id}/block"),
    ("POST", "/v1/admin/accounts/{id}/unblock"),
    ("POST", "/v1/admin/merchants/{id}/block"),
    ("POST", "/v1/admin/merchants/{id}/unblock"),
    ("PUT", "/v1/admin/risk-limits/{currency}"),
    ("PUT", "/v1/admin/wallets/{id}/sca/{currency}"),
    ("DELETE", "/v1/admin/wallets/{id}/sca/{currency}"),
    ("POST", "/v1/admin/wallets/{id}/funding-limits"),
    (
        "PUT",
        "/v1/admin/wallets/{id}/cross-provider-transfers/{currency}",
    ),
    (
        "DELETE",
        "/v1/admin/wallets/{id}/cross-provider-transfers/{currency}",
    ),
    ("POST", "/v1/admin/wallets/{id}/secrets"),
    ("DELETE", "/v1/admin/wallets/{id}/secrets/{secret_id}"),
    ("POST", "/v1/admin/merchants/{id}/webhook-secret"),
    ("PUT", "/v1/admin/wallets/{id}/webhook"),
    ("DELETE", "/v1/admin/wallets/{id}/webhook"),
    ("POST", "/v1/admin/wallets/{id}/webhook/secret"),
    ("POST", "/v1/admin/tokens"),
    ("DELETE", "/v1/admin/tokens/{id}"),
    ("DELETE", "/v1/admin/tokens/{id}/second-factor"),
];

/// Whether a named token calling `method` on `pattern` must give its second factor's code.
pub fn needs_second_factor(method: &str, pattern: &str) -> bool {
    SECOND_FACTOR_CHANGES
        .iter()
        .any(|(m, p)| m.eq_ignore_ascii_case(method) && *p == pattern)
}

/// Reads only `admin` may make.
const ADMIN_READS: &[&str] = &["/v1/admin/audit"];

/// POSTs that change nothing (a check with a list of ids in its body): reads.
const READ_ONLY_POSTS: &[&str] = &["/v1/admin/reconciliation/payments"];

/// Whether `role` may call `method` on the route registered as `pattern`.
pub fn allows(role: Role, method: &Method, pattern: &str) -> bool {
    let read = *method == Method::GET
        || *method == Method::HEAD
        || (*method == Method::POST && READ_ONLY_POSTS.contains(&pattern));
    match role {
        Role::Admin => true,
        _ if read => !ADMIN_READS.contains(&pattern),
        _ if OWN_CHANGES
            .iter()
            .any(|(m, p)| *m == method.as_str() && *p == pattern) =>
        {
            true
        }
        _ => CHANGES
            .iter()
            .any(|(r, m, p)| *r == role && *m == method.as_str() && *p == pattern),
    }
}

/// The roles that may make a change: for the `forbidden` message.
pub fn allowed_for(method: &Method, pattern: &str) -> Vec<&'static str> {
    Role::ALL
        .into_iter()
        .filter(|r| allows(*r, method, pattern))
        .map(Role::as_str)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_admin_issues_tokens_and_reads_the_audit_log() {
        for role in [Role::Support, Role::Risk, Role::Finance] {
            assert!(!allows(role, &Method::POST, "/v1/admin/tokens"));
            assert!(!allows(role, &Method::GET, "/v1/admin/audit"));
            assert!(allows(role, &Method::GET, "/v1/admin/risk-limits"));
            assert!(allows(
                role,
                &Method::POST,
                "/v1/admin/reconciliation/payments"
            ));
        }
        assert!(allows(
            Role::Risk,
            &Method::PUT,
            "/v1/admin/risk-limits/{currency}"
        ));
        assert!(!allows(
            Role::Finance,
            &Method::PUT,
            "/v1/admin/risk-limits/{currency}"
        ));
        assert!(allows(Role::Finance, &Method::POST, "/v1/admin/fx-rates"));
        assert_eq!(
            allowed_for(&Method::POST, "/v1/admin/fx-rates"),
            ["admin", "finance"]
        );
        assert_eq!(Role::parse("support"), Some(Role::Support));
        assert_eq!(Role::parse("root"), None);
    }
}
