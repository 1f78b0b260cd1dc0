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

/// The subset of JSON Schema (2020-12, as OpenAPI 3.1 uses it) the document is written
/// in: `$ref`, `type` (one or several), `enum`, `pattern`, `minimum`, `maximum`,
/// `properties`, `required`, `additionalProperties`, `items`, `oneOf`.
pub fn validate(
    document: &Value,
    schema: &Value,
    value: &Value,
    at: &str,
    problems: &mut Vec<String>,
) {
    let schema = resolve(document, schema);
    if let Some(options) = schema.get("oneOf").and_then(Value::as_array) {
        let matching = options
            .iter()
            .filter(|option| {
                let mut p = Vec::new();
                validate(document, option, value, at, &mut p);
                p.is_empty()
            })
            .count();
        if matching != 1 {
            problems.push(format!(
                "{at}: matches {matching} of the oneOf schemas, not one: {value}"
            ));
        }
        return;
    }
    if let Some(types) = schema.get("type") {
        let allowed: Vec<&str> = match types {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        if !allowed.iter().any(|t| type_matches(t, value)) {
            problems.push(format!("{at}: expected {allowed:?}, got {value}"));
            return;
        }
    }
    if let Some(choices) = schema.get("enum").and_then(Value::as_array) {
        if !choices.contains(value) {
            problems.push(format!(
                "{at}: {value} is not one of {}",
                Value::Array(choices.clone())
            ));
        }
    }
    match value {
        Value::String(s) => {
            if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
                let matches = regex_lite::Regex::new(pattern).is_ok_and(|re| re.is_match(s));
                if !matches {
                    problems.push(format!("{at}: {s:?} does not match {pattern}"));
                }
            }
        }
        Value::Number(n) => {
            let n = n.as_f64().unwrap_or(f64::NAN);
            if schema
                .get("minimum")
                .and_then(Value::as_f64)
                .is_some_and(|min| n < min)
            {
                problems.push(format!("{at}: {n} is below the minimum"));
            }
            if schema
                .get("maximum")
                .and_then(Value::as_f64)
                .is_some_and(|max| n > max)
            {
                problems.push(format!("{at}: {n} is above the maximum"));
            }
        }
        Value::Object(fields) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            for required in schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(name) = required.as_str().filter(|n| !fields.contains_key(*n)) {
                    problems.push(format!("{at}: the required field {name} is missing"));
                }
            }
            for (name, field) in fields {
                let path = format!("{at}.{name}");
                match (
                    properties.and_then(|p| p.get(name)),
                    schema.get("additionalProperties"),
                ) {
                    (Some(field_schema), _) => {
                        validate(document, field_schema, field, &path, problems)
                    }
                    (None, Some(Value::Bool(false))) => {
                        problems.push(format!("{path}: a field the document does not describe"))
                    }
                    (None, Some(extra)) if extra.is_object() => {
                        validate(document, extra, field, &path, problems)
                    }
                    (None, _) => {}
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    validate(document, item_schema, item, &format!("{at}[{i}]"), problems);
                }
            }
        }
        _ => {}
    }
}

fn type_matches(t: &str, value: &Value) -> bool {
    match t {
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "object" => value.is_object(),
        "array" => value.is_array(),
        "null" => value.is_null(),
        _ => false,
    }
}

#[cfg(test)]
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
    fn the_subset_catches_what_the_document_forbids() {
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
            (json!({"id": "o"}), "required field amount"),
            (json!({"id": "o", "amount": "1.5"}), "does not match"),
            (
                json!({"id": "o", "amount": "1", "status": "lost"}),
                "not one of",
            ),
            (
                json!({"id": "o", "amount": "1", "extra": 1}),
                "does not describe",
            ),
            (json!({"id": 7, "amount": "1"}), "expected"),
            (
                json!({"id": "o", "amount": "1", "items": [0]}),
                "below the minimum",
            ),
        ] {
            let found = problems(order.clone(), bad.clone());
            assert!(found.iter().any(|p| p.contains(why)), "{bad}: {found:?}");
        }
    }
}
