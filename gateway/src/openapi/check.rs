//! Holds the running gateway to its OpenAPI document: with `QRGATE_OPENAPI_CHECK=1`
//! (the integration tests set it) every JSON request the gateway accepted and every
//! JSON response it sent is validated against the document's schema for its route,
//! method and status, and each mismatch is kept for the test to fail on. Off by
//! default: it buffers whole bodies.

use actix_web::{
    body::{BoxBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    middleware::Next,
    web, HttpMessage,
};
use futures_util::StreamExt;
use serde_json::Value;
use std::sync::Mutex;

/// The document and what did not match it.
pub struct Checker {
    document: Value,
    violations: Mutex<Vec<String>>,
}

impl Checker {
    pub fn new(document: Value) -> Self {
        Checker {
            document,
            violations: Mutex::new(Vec::new()),
        }
    }

    /// Every mismatch seen so far, each naming the operation and the JSON path.
    pub fn violations(&self) -> Vec<String> {
        self.violations.lock().expect("violations poisoned").clone()
    }

    fn record(&self, problems: Vec<String>) {
        if !problems.is_empty() {
            for p in &problems {
                tracing::error!(problem = %p, "response or request does not match openapi.json");
            }
            self.violations
                .lock()
                .expect("violations poisoned")
                .extend(problems);
        }
    }

    /// Checks one exchange; `request` only when the gateway accepted it (2xx).
    fn check(
        &self,
        method: &str,
        route: &str,
        status: u16,
        request: Option<&Value>,
        response: &Value,
    ) {
        let op = format!("{} {route} → {status}", method.to_uppercase());
        // HEAD is GET without the body (RFC 9110 §9.3.2): held to the GET operation.
        let documented = if method == "head" { "get" } else { method };
        // A method the path does not serve is answered 405 (with Allow), as HTTP says.
        if status == 405 && self.document["paths"][route].get(documented).is_none() {
            return;
        }
        let Some(operation) = self.document["paths"][route].get(documented) else {
            return self.record(vec![format!("{op}: the route is not in the document")]);
        };
        let mut problems = Vec::new();
        if let Some(body) = request {
            match operation.pointer("/requestBody/content/application~1json/schema") {
                Some(schema) => validate(&self.document, schema, body, "request", &mut problems),
                None => problems.push("request: a body the document does not describe".into()),
            }
        }
        match operation
            .get("responses")
            .and_then(|r| r.get(status.to_string()))
            .map(|r| resolve(&self.document, r))
            .and_then(|r| r.pointer("/content/application~1json/schema"))
        {
            Some(schema) => validate(&self.document, schema, response, "response", &mut problems),
            None => problems.push("the status is not among the documented responses".into()),
        }
        self.record(problems.into_iter().map(|p| format!("{op}: {p}")).collect());
    }
}

/// The middleware: keeps a copy of the request body as the handler reads it, buffers
/// the response, and checks both.
pub async fn check_middleware(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(checker) = req.app_data::<web::Data<Checker>>().cloned() else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    };
    let method = req.method().as_str().to_lowercase();
    let route = req.match_pattern();
    // The handler reads the body as it always does (with its limits and timeout);
    // a copy of what it read is kept for the check.
    let read = std::sync::Arc::new(Mutex::new(Vec::new()));
    let copy = read.clone();
    let teed = req.take_payload().map(move |chunk| {
        if let Ok(bytes) = &chunk {
            copy.lock()
                .expect("request copy poisoned")
                .extend_from_slice(bytes);
        }
        chunk
    });
    req.set_payload(actix_web::dev::Payload::Stream {
        payload: Box::pin(teed),
    });

    let response = next.call(req).await?;
    let status = response.status().as_u16();
    let is_json = response
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !is_json {
        // Pages, images, CSV and event streams are not checked, and an event stream
        // must not be held back until it ends.
        return Ok(response.map_into_boxed_body());
    }
    let (http_req, http_res) = response.into_parts();
    let (http_res, body) = http_res.into_parts();
    let response_bytes = actix_web::body::to_bytes(body)
        .await
        .map_err(|e| actix_web::error::ErrorInternalServerError(e.into().to_string()))?;
    let request_body =
        serde_json::from_slice::<Value>(&read.lock().expect("request copy poisoned")).ok();
    if let (Some(route), true) = (route, is_json) {
        match serde_json::from_slice::<Value>(&response_bytes) {
            Ok(body) => {
                let accepted = request_body
                    .as_ref()
                    .filter(|_| (200..300).contains(&status));
                checker.check(&method, &route, status, accepted, &body);
            }
            Err(e) => checker.record(vec![format!(
                "{method} {route}: a JSON response that does not parse: {e}"
            )]),
        }
    }
    let http_res = http_res.set_body(BoxBody::new(response_bytes));
    Ok(ServiceResponse::new(http_req, http_res))
}

fn resolve<'a>(document: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(reference) => reference
            .strip_prefix('#')
            .and_then(|pointer| document.pointer(pointer))
            .map_or(schema, |target| resolve(document, target)),
        None => schema,
    }
}

/// Validates `value` against `schema` (which may `$ref` the document's components) with
/// a complete JSON Schema 2020-12 implementation, as OpenAPI 3.1 specifies; each
/// problem names `at` and the JSON path inside the value.
#[cfg(feature = "openapi-check")]
pub fn validate(
    document: &Value,
    schema: &Value,
    value: &Value,
    at: &str,
    problems: &mut Vec<String>,
) {
    let validator = match compiled(document, schema) {
        Ok(v) => v,
        Err(e) => {
            return problems.push(format!("{at}: the document's schema does not compile: {e}"))
        }
    };
    for error in validator.iter_errors(value) {
        problems.push(format!("{at}{}: {error}", error.instance_path()));
    }
}

/// Without the `openapi-check` feature there is no validator: `startup` refuses
/// `QRGATE_OPENAPI_CHECK=1`, so this is never reached.
#[cfg(not(feature = "openapi-check"))]
pub fn validate(_: &Value, _: &Value, _: &Value, at: &str, problems: &mut Vec<String>) {
    problems.push(format!("{at}: built without the openapi-check feature"));
}

/// One compiled validator per distinct schema, kept for the life of the process.
#[cfg(feature = "openapi-check")]
fn compiled(
    document: &Value,
    schema: &Value,
) -> Result<std::sync::Arc<jsonschema::Validator>, String> {
    use serde_json::json;
    use std::{
        collections::HashMap,
        sync::{Arc, OnceLock},
    };
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<jsonschema::Validator>>>> = OnceLock::new();
    let key = schema.to_string();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(v) = cache.lock().expect("validator cache poisoned").get(&key) {
        return Ok(v.clone());
    }
    // The schema as a root resource that also holds the components its $refs name.
    let mut root = match schema {
        Value::Object(fields) => Value::Object(fields.clone()),
        other => json!({"allOf": [other]}),
    };
    root["components"] = document["components"].clone();
    let validator = Arc::new(
        jsonschema::draft202012::options()
            .should_validate_formats(true)
            .build(&root)
            .map_err(|e| e.to_string())?,
    );
    cache
        .lock()
        .expect("validator cache poisoned")
        .insert(key, validator.clone());
    Ok(validator)
}

#[cfg(all(test, feature = "openapi-check"))]
mod tests {
    use super::validate;
    use serde_json::{json, Value};

    fn problems(schema: Value, value: Value) -> Vec<String> {
        let document = json!({"components": {"schemas": {"Amount": {"type": "string", "pattern": "^[0-9]+$"}}}});
        let mut p = Vec::new();
        validate(&document, &schema, &value, "body", &mut p);
        p
    }

    #[test]
    fn the_validator_catches_what_the_document_forbids() {
        let order = json!({
            "type": "object", "required": ["id", "amount"], "additionalProperties": false,
            "properties": {
                "id": {"type": "string"},
                "amount": {"$ref": "#/components/schemas/Amount"},
                "status": {"enum": ["pending", "paid"]},
                "note": {"type": ["string", "null"]},
                "items": {"type": "array", "items": {"type": "integer", "minimum": 1}},
            }
        });
        assert!(problems(
            order.clone(),
            json!({"id": "o", "amount": "12", "note": null, "items": [1, 2]})
        )
        .is_empty());
        for (bad, why) in [
            (json!({"id": "o"}), "\"amount\" is a required property"),
            (json!({"id": "o", "amount": "1.5"}), "does not match"),
            (
                json!({"id": "o", "amount": "1", "status": "lost"}),
                "is not one of",
            ),
            (json!({"id": "o", "amount": "1", "extra": 1}), "not allowed"),
            (json!({"id": 7, "amount": "1"}), "is not of type"),
            (json!({"id": "o", "amount": "1", "items": [0]}), "minimum"),
        ] {
            let found = problems(order.clone(), bad.clone());
            assert!(found.iter().any(|p| p.contains(why)), "{bad}: {found:?}");
        }
    }
}
