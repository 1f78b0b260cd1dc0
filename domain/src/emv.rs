//! EMVCo Merchant-Presented Mode QR payloads (docs/contract.md §5).
//!
//! A payload is a flat list of TLV data objects — 2-digit id, 2-digit length counted
//! in characters, value — ending in tag 63, a CRC-16/CCITT-FALSE over the UTF-8 bytes
//! of everything before it including `6304`. This module is the one place that encodes
//! and parses them.

use crate::{
    ids,
    money::AMOUNT_CHARS_MAX,
    tips::{FeePercent, TipPolicy},
    Currency, Money,
};

/// The longest payload qrgate issues or accepts.
pub const PAYLOAD_CHARS_MAX: usize = 512;
/// The longest value of template 26 (merchant account information).
pub const TEMPLATE_26_CHARS_MAX: usize = 99;
/// The longest value of each sub-field of tag 62 (additional data).
pub const ADDITIONAL_DATA_CHARS_MAX: usize = 25;
pub const MERCHANT_NAME_CHARS_MAX: usize = 25;
pub const MERCHANT_CITY_CHARS_MAX: usize = 15;
/// The longest gateway GUID (template 26, sub-field 00) the configuration accepts.
pub const GATEWAY_GUID_CHARS_MAX: usize = 64;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EmvError {
    #[error("payload is longer than {PAYLOAD_CHARS_MAX} characters")]
    TooLong,
    #[error("data object at character {at} is truncated or has a non-numeric id or length")]
    Malformed { at: usize },
    #[error("payload must start with tag 00 = \"01\"")]
    FormatIndicator,
    #[error("payload must end with tag 63, a 4-digit uppercase hex CRC")]
    CrcMissing,
    #[error("CRC mismatch: payload says {stated}, content gives {computed}")]
    CrcMismatch { stated: String, computed: String },
    #[error("tag {0} appears more than once")]
    Duplicate(String),
    #[error("mandatory tag {0} is missing")]
    Missing(&'static str),
    #[error("tag {tag}: {reason}")]
    InvalidValue { tag: &'static str, reason: String },
}

/// CRC-16/CCITT-FALSE: polynomial 0x1021, initial value 0xFFFF, no reflection, no xor-out.
pub fn crc16_ccitt_false(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0xFFFF;
    for &byte in bytes {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// One data object as it stands in a payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataObject {
    pub id: String,
    pub value: String,
}

/// Splits a TLV string into its data objects (no CRC or presence checks).
pub fn split_tlv(s: &str) -> Result<Vec<DataObject>, EmvError> {
    let chars: Vec<char> = s.chars().collect();
    let mut objects = Vec::new();
    let mut at = 0;
    while at < chars.len() {
        let header: String = chars
            .get(at..at + 4)
            .ok_or(EmvError::Malformed { at })?
            .iter()
            .collect();
        if !header.bytes().all(|b| b.is_ascii_digit()) {
            return Err(EmvError::Malformed { at });
        }
        let len: usize = header[2..]
            .parse()
            .map_err(|_| EmvError::Malformed { at })?;
        let value: String = chars
            .get(at + 4..at + 4 + len)
            .ok_or(EmvError::Malformed { at })?
            .iter()
            .collect();
        objects.push(DataObject {
            id: header[..2].to_owned(),
            value,
        });
        at += 4 + len;
    }
    Ok(objects)
}

/// Parses a whole payload: length, TLV structure, 00 first, 63 last with a valid CRC,
/// no duplicate top-level tags. Returns the data objects before the CRC.
pub fn parse_payload(payload: &str) -> Result<Vec<DataObject>, EmvError> {
    if payload.chars().count() > PAYLOAD_CHARS_MAX {
        return Err(EmvError::TooLong);
    }
    let mut objects = split_tlv(payload)?;
    if objects
        .first()
        .is_none_or(|o| o.id != "00" || o.value != "01")
    {
        return Err(EmvError::FormatIndicator);
    }
    let crc = objects
        .pop()
        .filter(|o| o.id == "63" && is_crc_text(&o.value));
    let crc = crc.ok_or(EmvError::CrcMissing)?;
    let signed = &payload[..payload.len() - 4];
    let computed = format!("{:04X}", crc16_ccitt_false(signed.as_bytes()));
    if !computed.eq_ignore_ascii_case(&crc.value) {
        return Err(EmvError::CrcMismatch {
            stated: crc.value,
            computed,
        });
    }
    for (i, o) in objects.iter().enumerate() {
        if objects[..i].iter().any(|p| p.id == o.id) {
            return Err(EmvError::Duplicate(o.id.clone()));
        }
    }
    Ok(objects)
}

fn is_crc_text(s: &str) -> bool {
    s.len() == 4 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Appends `id`, the value's length in characters, and the value.
fn push_tlv(out: &mut String, id: &str, value: &str) {
    let len = value.chars().count();
    debug_assert!(len <= 99, "EMV value over 99 characters");
    out.push_str(id);
    out.push_str(&format!("{len:02}"));
    out.push_str(value);
}

/// Seals a payload body with tag 63.
fn with_crc(mut body: String) -> String {
    body.push_str("6304");
    let crc = crc16_ccitt_false(body.as_bytes());
    body.push_str(&format!("{crc:04X}"));
    body
}

/// A merchant's name in its local language (tag 64).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalName {
    /// ISO 639-1, upper case (`ZH`).
    pub language: String,
    pub name: String,
    pub city: Option<String>,
}

/// Everything a dynamic order QR states. Build it from checked parts; `encode`
/// enforces every length limit and `parse` is its exact inverse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderQr {
    pub gateway_guid: String,
    pub merchant_id: String,
    pub order_token: String,
    pub mcc: String,
    pub amount: Money,
    /// Tags 55–57: a tip the wallet asks for, or the shop's convenience fee.
    pub tip: TipPolicy,
    pub country: String,
    pub merchant_name: String,
    pub merchant_city: String,
    pub bill_number: String,
    pub order_id: String,
    pub terminal_id: Option<String>,
    pub local: Option<LocalName>,
}

fn invalid(tag: &'static str, reason: impl Into<String>) -> EmvError {
    EmvError::InvalidValue {
        tag,
        reason: reason.into(),
    }
}

fn check_ascii(tag: &'static str, value: &str, max: usize) -> Result<(), EmvError> {
    if value.is_empty() || value.len() > max || !value.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        return Err(invalid(
            tag,
            format!("must be 1 to {max} printable ASCII characters"),
        ));
    }
    Ok(())
}

impl OrderQr {
    /// The payload string, CRC included.
    pub fn encode(&self) -> Result<String, EmvError> {
        self.check()?;
        let mut body = head(
            DYNAMIC,
            &self.gateway_guid,
            &self.merchant_id,
            &self.order_token,
        )?;
        push_tlv(&mut body, "52", &self.mcc);
        push_tlv(&mut body, "53", self.amount.currency().numeric());
        push_tlv(&mut body, "54", &self.amount.to_string());
        push_tip(&mut body, self.tip);
        push_place(
            &mut body,
            &self.country,
            &self.merchant_name,
            &self.merchant_city,
        );
        let mut additional = String::new();
        push_tlv(&mut additional, "01", &self.bill_number);
        push_tlv(&mut additional, "05", &self.order_id);
        if let Some(terminal) = &self.terminal_id {
            push_tlv(&mut additional, "07", terminal);
        }
        push_tlv(&mut body, "62", &additional);
        push_local(&mut body, self.local.as_ref())?;
        seal(body)
    }

    fn check(&self) -> Result<(), EmvError> {
        check_shop(&Shop {
            gateway_guid: &self.gateway_guid,
            merchant_id: &self.merchant_id,
            token: &self.order_token,
            mcc: &self.mcc,
            country: &self.country,
            merchant_name: &self.merchant_name,
            merchant_city: &self.merchant_city,
            local: self.local.as_ref(),
        })?;
        check_id("62", &self.order_id)?;
        check_ascii("62", &self.bill_number, ADDITIONAL_DATA_CHARS_MAX)?;
        check_ascii("62", &self.order_id, ADDITIONAL_DATA_CHARS_MAX)?;
        if let Some(t) = &self.terminal_id {
            check_ascii("62", t, ADDITIONAL_DATA_CHARS_MAX)?;
        }
        Ok(())
    }

    /// Parses and CRC-checks a payload and reads the order fields qrgate puts in it.
    pub fn parse(payload: &str) -> Result<Self, EmvError> {
        match MerchantQr::parse(payload)? {
            MerchantQr::Dynamic(qr) => Ok(qr),
            MerchantQr::Static(_) => Err(invalid(
                "01",
                "a static code (11) names no order; the wallet pays it with an amount",
            )),
        }
    }
}

/// A shop's printed code (point of initiation `11`): no amount and no expiry — the
/// customer's wallet asks for the amount. Template 26 carries the code's token where
/// a dynamic code carries its order's; tag 62 names the code (05) and its till (07).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaticQr {
    pub gateway_guid: String,
    pub merchant_id: String,
    pub code_token: String,
    pub mcc: String,
    pub currency: Currency,
    pub country: String,
    pub merchant_name: String,
    pub merchant_city: String,
    pub code_id: String,
    pub terminal_id: Option<String>,
    pub local: Option<LocalName>,
}

impl StaticQr {
    /// The payload string, CRC included.
    pub fn encode(&self) -> Result<String, EmvError> {
        self.check()?;
        let mut body = head(
            STATIC,
            &self.gateway_guid,
            &self.merchant_id,
            &self.code_token,
        )?;
        push_tlv(&mut body, "52", &self.mcc);
        push_tlv(&mut body, "53", self.currency.numeric());
        push_place(
            &mut body,
            &self.country,
            &self.merchant_name,
            &self.merchant_city,
        );
        let mut additional = String::new();
        push_tlv(&mut additional, "05", &self.code_id);
        if let Some(terminal) = &self.terminal_id {
            push_tlv(&mut additional, "07", terminal);
        }
        push_tlv(&mut body, "62", &additional);
        push_local(&mut body, self.local.as_ref())?;
        seal(body)
    }

    fn check(&self) -> Result<(), EmvError> {
        check_shop(&Shop {
            gateway_guid: &self.gateway_guid,
            merchant_id: &self.merchant_id,
            token: &self.code_token,
            mcc: &self.mcc,
            country: &self.country,
            merchant_name: &self.merchant_name,
            merchant_city: &self.merchant_city,
            local: self.local.as_ref(),
        })?;
        check_id("62", &self.code_id)?;
        if let Some(t) = &self.terminal_id {
            check_ascii("62", t, ADDITIONAL_DATA_CHARS_MAX)?;
        }
        Ok(())
    }
}

/// Any code qrgate issues: an order's (dynamic) or a shop's printed one (static).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MerchantQr {
    Dynamic(OrderQr),
    Static(StaticQr),
}

impl MerchantQr {
    /// Parses and CRC-checks a payload and reads the fields qrgate puts in it.
    pub fn parse(payload: &str) -> Result<Self, EmvError> {
        let objects = parse_payload(payload)?;
        let get = |id: &'static str| -> Result<&str, EmvError> {
            objects
                .iter()
                .find(|o| o.id == id)
                .map(|o| o.value.as_str())
                .ok_or(EmvError::Missing(id))
        };
        let initiation = get("01")?;
        if initiation != STATIC && initiation != DYNAMIC {
            return Err(invalid("01", "must be 11 (static) or 12 (dynamic)"));
        }
        let template = split_tlv(get("26")?)?;
        let additional = split_tlv(get("62")?)?;
        let sub = |objs: &[DataObject], id: &str| {
            objs.iter().find(|o| o.id == id).map(|o| o.value.clone())
        };
        let currency =
            Currency::from_numeric(get("53")?).ok_or_else(|| invalid("53", "unknown currency"))?;
        let local = match objects.iter().find(|o| o.id == "64") {
            None => None,
            Some(o) => {
                let lang = split_tlv(&o.value)?;
                Some(LocalName {
                    language: sub(&lang, "00").ok_or(EmvError::Missing("64-00"))?,
                    name: sub(&lang, "01").ok_or(EmvError::Missing("64-01"))?,
                    city: sub(&lang, "02"),
                })
            }
        };
        let gateway_guid = sub(&template, "00").ok_or(EmvError::Missing("26-00"))?;
        let merchant_id = sub(&template, "01").ok_or(EmvError::Missing("26-01"))?;
        let token = sub(&template, "02").ok_or(EmvError::Missing("26-02"))?;
        let reference = sub(&additional, "05").ok_or(EmvError::Missing("62-05"))?;
        let terminal_id = sub(&additional, "07");
        if initiation == STATIC {
            if let Some(o) = objects
                .iter()
                .find(|o| ["54", "55", "56", "57"].contains(&o.id.as_str()))
            {
                let tag = if o.id == "54" { "54" } else { "55" };
                return Err(invalid(
                    tag,
                    "qrgate's static codes carry no amount, tip or fee",
                ));
            }
            let qr = StaticQr {
                gateway_guid,
                merchant_id,
                code_token: token,
                mcc: get("52")?.to_owned(),
                currency,
                country: get("58")?.to_owned(),
                merchant_name: get("59")?.to_owned(),
                merchant_city: get("60")?.to_owned(),
                code_id: reference,
                terminal_id,
                local,
            };
            qr.check()?;
            return Ok(MerchantQr::Static(qr));
        }
        let amount_text = get("54")?;
        if amount_text.len() > AMOUNT_CHARS_MAX {
            return Err(invalid("54", "amount over 13 characters"));
        }
        let amount =
            Money::parse(amount_text, currency).map_err(|e| invalid("54", e.to_string()))?;
        let tip = read_tip(&objects, currency)?;
        let qr = OrderQr {
            gateway_guid,
            merchant_id,
            order_token: token,
            mcc: get("52")?.to_owned(),
            amount,
            tip,
            country: get("58")?.to_owned(),
            merchant_name: get("59")?.to_owned(),
            merchant_city: get("60")?.to_owned(),
            bill_number: sub(&additional, "01").ok_or(EmvError::Missing("62-01"))?,
            order_id: reference,
            terminal_id,
            local,
        };
        qr.check()?;
        Ok(MerchantQr::Dynamic(qr))
    }

    /// The gateway that issued the code (template 26, sub-field 00).
    pub fn gateway_guid(&self) -> &str {
        match self {
            MerchantQr::Dynamic(qr) => &qr.gateway_guid,
            MerchantQr::Static(qr) => &qr.gateway_guid,
        }
    }
}

/// Tag 01: how the code is used.
const STATIC: &str = "11";
const DYNAMIC: &str = "12";

/// What every code says about its shop, checked alike.
struct Shop<'a> {
    gateway_guid: &'a str,
    merchant_id: &'a str,
    token: &'a str,
    mcc: &'a str,
    country: &'a str,
    merchant_name: &'a str,
    merchant_city: &'a str,
    local: Option<&'a LocalName>,
}

fn check_shop(shop: &Shop) -> Result<(), EmvError> {
    check_ascii("26", shop.gateway_guid, GATEWAY_GUID_CHARS_MAX)?;
    check_id("26", shop.merchant_id)?;
    let token = shop.token;
    if token.is_empty() || token.len() > 32 || !token.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(invalid("26", "token must be 1 to 32 letters or digits"));
    }
    if shop.mcc.len() != 4 || !shop.mcc.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid("52", "merchant category code must be 4 digits"));
    }
    if !crate::country::is_assigned(shop.country) {
        return Err(invalid(
            "58",
            "country must be an assigned ISO 3166-1 alpha-2 code",
        ));
    }
    check_ascii("59", shop.merchant_name, MERCHANT_NAME_CHARS_MAX)?;
    check_ascii("60", shop.merchant_city, MERCHANT_CITY_CHARS_MAX)?;
    if let Some(local) = shop.local {
        if local.language.len() != 2 || !local.language.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(invalid("64", "language must be ISO 639-1, e.g. ZH"));
        }
    }
    Ok(())
}

fn check_id(tag: &'static str, id: &str) -> Result<(), EmvError> {
    if ids::is_gateway_id(id) {
        Ok(())
    } else {
        Err(invalid(
            tag,
            "ids are at most 25 characters of [A-Za-z0-9_]",
        ))
    }
}

/// Tags 00, 01 and 26: the format, how the code is used, who issued it for whom.
fn head(initiation: &str, guid: &str, merchant_id: &str, token: &str) -> Result<String, EmvError> {
    let mut template = String::new();
    push_tlv(&mut template, "00", guid);
    push_tlv(&mut template, "01", merchant_id);
    push_tlv(&mut template, "02", token);
    if template.chars().count() > TEMPLATE_26_CHARS_MAX {
        return Err(invalid(
            "26",
            format!("template over {TEMPLATE_26_CHARS_MAX} characters"),
        ));
    }
    let mut body = String::new();
    push_tlv(&mut body, "00", "01");
    push_tlv(&mut body, "01", initiation);
    push_tlv(&mut body, "26", &template);
    Ok(body)
}

/// Tags 55–57: `01` the wallet asks for a tip; `02` a fixed fee (56); `03` a
/// percentage fee (57). Nothing for an order without either.
fn push_tip(body: &mut String, tip: TipPolicy) {
    match tip {
        TipPolicy::None => {}
        TipPolicy::Prompt => push_tlv(body, "55", "01"),
        TipPolicy::FixedFee(fee) => {
            push_tlv(body, "55", "02");
            push_tlv(body, "56", &fee.to_string());
        }
        TipPolicy::PercentageFee(percent) => {
            push_tlv(body, "55", "03");
            push_tlv(body, "57", &percent.to_string());
        }
    }
}

/// The inverse of `push_tip`: a value tag without its indicator, or an indicator
/// without its value, is refused.
fn read_tip(objects: &[DataObject], currency: Currency) -> Result<TipPolicy, EmvError> {
    let get = |id: &str| {
        objects
            .iter()
            .find(|o| o.id == id)
            .map(|o| o.value.as_str())
    };
    let (fixed, percent) = (get("56"), get("57"));
    let tip = match get("55") {
        None => TipPolicy::None,
        Some("01") => TipPolicy::Prompt,
        Some("02") => {
            let fee = fixed.ok_or(EmvError::Missing("56"))?;
            TipPolicy::FixedFee(
                Money::parse(fee, currency).map_err(|e| invalid("56", e.to_string()))?,
            )
        }
        Some("03") => {
            let percent = percent.ok_or(EmvError::Missing("57"))?;
            TipPolicy::PercentageFee(
                FeePercent::parse(percent).map_err(|e| invalid("57", e.to_string()))?,
            )
        }
        Some(_) => {
            return Err(invalid(
                "55",
                "must be 01 (tip), 02 (fixed fee) or 03 (percentage fee)",
            ))
        }
    };
    if fixed.is_some() && !matches!(tip, TipPolicy::FixedFee(_)) {
        return Err(invalid("56", "a fixed fee needs tag 55 = 02"));
    }
    if percent.is_some() && !matches!(tip, TipPolicy::PercentageFee(_)) {
        return Err(invalid("57", "a percentage fee needs tag 55 = 03"));
    }
    Ok(tip)
}

/// Tags 58–60: where the shop is and what it is called.
fn push_place(body: &mut String, country: &str, name: &str, city: &str) {
    push_tlv(body, "58", country);
    push_tlv(body, "59", name);
    push_tlv(body, "60", city);
}

/// Tag 64: the shop's name in its own language.
fn push_local(body: &mut String, local: Option<&LocalName>) -> Result<(), EmvError> {
    if let Some(local) = local {
        let mut lang = String::new();
        push_tlv(&mut lang, "00", &local.language);
        push_tlv(&mut lang, "01", &local.name);
        if let Some(city) = &local.city {
            push_tlv(&mut lang, "02", city);
        }
        if lang.chars().count() > 99 {
            return Err(invalid("64", "language template over 99 characters"));
        }
        push_tlv(body, "64", &lang);
    }
    Ok(())
}

/// Tag 63 and the length limit.
fn seal(body: String) -> Result<String, EmvError> {
    let payload = with_crc(body);
    if payload.chars().count() > PAYLOAD_CHARS_MAX {
        return Err(EmvError::TooLong);
    }
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> OrderQr {
        OrderQr {
            gateway_guid: "com.qrgate".into(),
            merchant_id: "mch_abcdefghijklmnopqrst".into(),
            order_token: "abcdefghijklmnopqrstuvwxyz".into(),
            mcc: "5812".into(),
            amount: Money::parse("12.34", Currency::parse("CNY").unwrap()).unwrap(),
            tip: TipPolicy::None,
            country: "CN".into(),
            merchant_name: "Lucky Noodle Bar".into(),
            merchant_city: "Shanghai".into(),
            bill_number: "INV-0001".into(),
            order_id: "ord_abcdefghijklmnopqrst".into(),
            terminal_id: Some("T1".into()),
            local: Some(LocalName {
                language: "ZH".into(),
                name: "幸运面馆".into(),
                city: Some("上海".into()),
            }),
        }
    }

    #[test]
    fn crc_check_value() {
        // The CRC-16/CCITT-FALSE catalogue check value.
        assert_eq!(crc16_ccitt_false(b"123456789"), 0x29B1);
    }

    #[test]
    fn golden_payload() {
        // Written out by hand from docs/contract.md §5; the CRC was computed independently.
        let expected = concat!(
            "000201",
            "010212",
            "2672",
            "0010com.qrgate",
            "0124mch_abcdefghijklmnopqrst",
            "0226abcdefghijklmnopqrstuvwxyz",
            "52045812",
            "5303156",
            "540512.34",
            "5802CN",
            "5916Lucky Noodle Bar",
            "6008Shanghai",
            "6246",
            "0108INV-0001",
            "0524ord_abcdefghijklmnopqrst",
            "0702T1",
            "6420",
            "0002ZH",
            "0104幸运面馆",
            "0202上海",
            "6304E876",
        );
        assert_eq!(sample().encode().unwrap(), expected);
    }

    #[test]
    fn round_trips() {
        let qr = sample();
        assert_eq!(OrderQr::parse(&qr.encode().unwrap()).unwrap(), qr);
        let plain = OrderQr {
            terminal_id: None,
            local: None,
            ..sample()
        };
        assert_eq!(OrderQr::parse(&plain.encode().unwrap()).unwrap(), plain);
    }

    #[test]
    fn tips_and_fees_are_tags_55_to_57() {
        let cny = Currency::parse("CNY").unwrap();
        for (tip, tags) in [
            (TipPolicy::Prompt, "550201"),
            (
                TipPolicy::FixedFee(Money::parse("1.5", cny).unwrap()),
                "55020256041.50",
            ),
            (
                TipPolicy::PercentageFee(FeePercent::parse("2.5").unwrap()),
                "55020357032.5",
            ),
        ] {
            let qr = OrderQr { tip, ..sample() };
            let payload = qr.encode().unwrap();
            assert!(payload.contains(&format!("540512.34{tags}")), "{payload}");
            assert_eq!(OrderQr::parse(&payload).unwrap(), qr);
        }
        // A value without its indicator, or the indicator without its value, is refused.
        let reseal = |body: &str| with_crc(body.to_owned());
        let body = |extra: &str| {
            let plain = OrderQr {
                tip: TipPolicy::None,
                ..sample()
            }
            .encode()
            .unwrap();
            plain[..plain.len() - 8].replace("540512.34", &format!("540512.34{extra}"))
        };
        for (extra, tag) in [
            ("55020156041.50", "56"),
            ("550202", "56"),
            ("550203", "57"),
            ("550204", "55"),
            ("57032.5", "57"),
        ] {
            let err = OrderQr::parse(&reseal(&body(extra))).unwrap_err();
            assert!(err.to_string().contains(tag), "{extra}: {err}");
        }
    }

    #[test]
    fn rejects_tampering() {
        let payload = sample().encode().unwrap();
        let tampered = payload.replace("12.34", "12.35");
        assert!(matches!(
            OrderQr::parse(&tampered),
            Err(EmvError::CrcMismatch { .. })
        ));
        assert!(parse_payload(&payload[..payload.len() - 8]).is_err());
        assert!(parse_payload(&payload[4..]).is_err());
        assert_eq!(OrderQr::parse(&"0".repeat(600)), Err(EmvError::TooLong));
    }

    #[test]
    fn rejects_over_long_and_non_ascii_values() {
        let long_name = OrderQr {
            merchant_name: "N".repeat(26),
            ..sample()
        };
        assert!(matches!(
            long_name.encode(),
            Err(EmvError::InvalidValue { tag: "59", .. })
        ));
        let non_ascii_city = OrderQr {
            merchant_city: "上海".into(),
            ..sample()
        };
        assert!(matches!(
            non_ascii_city.encode(),
            Err(EmvError::InvalidValue { tag: "60", .. })
        ));
        let long_ref = OrderQr {
            bill_number: "R".repeat(26),
            ..sample()
        };
        assert!(matches!(
            long_ref.encode(),
            Err(EmvError::InvalidValue { tag: "62", .. })
        ));
        let long_guid = OrderQr {
            gateway_guid: "g".repeat(40),
            merchant_id: "m".repeat(25),
            order_token: "t".repeat(26),
            ..sample()
        };
        assert!(matches!(
            long_guid.encode(),
            Err(EmvError::InvalidValue { tag: "26", .. })
        ));
    }

    #[test]
    fn parses_public_example_payloads() {
        // (source, payload, tag, expected value of that tag)
        let examples = [
            // dtinth/promptpay-qr, index.test.js, "Amount" (Thai PromptPay).
            (
                "promptpay-qr amount",
                "00020101021229370016A000000677010111011300660000000005802TH530376454044.226304E469",
                "54",
                "4.22",
            ),
            // dtinth/promptpay-qr, index.test.js, "National ID number" (static, no amount).
            (
                "promptpay-qr national id",
                "00020101021129370016A000000677010111021311111111111115802TH530376463047B5A",
                "53",
                "764",
            ),
            // Banco Central do Brasil, Manual de Padrões para Iniciação do Pix, static example
            // (quoted in many public Pix libraries' tests).
            (
                "BCB Pix static",
                "00020126580014br.gov.bcb.pix0136123e4567-e12b-12d1-a456-4266554400005204000053039865802BR5913Fulano de Tal6008BRASILIA62070503***63041D3D",
                "59",
                "Fulano de Tal",
            ),
            // npm package pixcode, README parser example (BCB BR Code manual, dynamic Pix).
            (
                "pixcode dynamic Pix",
                "00020101021226720014br.gov.bcb.pix2550bx.com.br/pix/8b3da2f3-9a41-40d1-a91a-bd93113bd4415204000053039865406123.455802BR5913Fulano de Tal6008BRASILIA62190515RP12345678-2019630445C8",
                "54",
                "123.45",
            ),
        ];
        for (source, payload, tag, value) in examples {
            let objects = parse_payload(payload).unwrap_or_else(|e| panic!("{source}: {e}"));
            let found = objects
                .iter()
                .find(|o| o.id == tag)
                .map(|o| o.value.as_str());
            assert_eq!(found, Some(value), "{source}");
            // One changed character breaks the CRC.
            let broken = payload.replacen("5802", "5803", 1);
            assert!(parse_payload(&broken).is_err(), "{source}");
            // They are well-formed EMV but not qrgate orders.
            assert!(OrderQr::parse(payload).is_err(), "{source}");
        }
    }

    fn static_sample() -> StaticQr {
        StaticQr {
            gateway_guid: "com.qrgate".into(),
            merchant_id: "mch_abcdefghijklmnopqrst".into(),
            code_token: "abcdefghijklmnopqrst".into(),
            mcc: "5812".into(),
            currency: Currency::parse("CNY").unwrap(),
            country: "CN".into(),
            merchant_name: "Lucky Noodle Bar".into(),
            merchant_city: "Shanghai".into(),
            code_id: "sqr_abcdefghijklmnopqrst".into(),
            terminal_id: Some("Counter".into()),
            local: None,
        }
    }

    #[test]
    fn static_code_golden_payload_and_round_trip() {
        let payload = static_sample().encode().unwrap();
        let expected_body = concat!(
            "000201",
            "010211",
            "2666",
            "0010com.qrgate",
            "0124mch_abcdefghijklmnopqrst",
            "0220abcdefghijklmnopqrst",
            "52045812",
            "5303156",
            "5802CN",
            "5916Lucky Noodle Bar",
            "6008Shanghai",
            "6239",
            "0524sqr_abcdefghijklmnopqrst",
            "0707Counter",
            "6304",
        );
        assert!(payload.starts_with(expected_body), "{payload}");
        assert_eq!(
            MerchantQr::parse(&payload).unwrap(),
            MerchantQr::Static(static_sample())
        );
        let with_local = StaticQr {
            terminal_id: None,
            local: sample().local,
            ..static_sample()
        };
        assert_eq!(
            MerchantQr::parse(&with_local.encode().unwrap()).unwrap(),
            MerchantQr::Static(with_local)
        );
        // An order's code parses as dynamic through the same door.
        let order = sample();
        assert_eq!(
            MerchantQr::parse(&order.encode().unwrap()).unwrap(),
            MerchantQr::Dynamic(order)
        );
    }

    #[test]
    fn a_static_code_is_not_an_order_and_carries_no_amount() {
        let payload = static_sample().encode().unwrap();
        assert!(matches!(
            OrderQr::parse(&payload),
            Err(EmvError::InvalidValue { tag: "01", .. })
        ));
        // The same code with an amount slipped in (CRC recomputed) is refused.
        let body = payload[..payload.len() - 8].replacen("5802CN", "540510.005802CN", 1);
        let with_amount = with_crc(body);
        assert!(matches!(
            MerchantQr::parse(&with_amount),
            Err(EmvError::InvalidValue { tag: "54", .. })
        ));
        // Other initiation methods are not ours.
        let body = payload[..payload.len() - 8].replacen("010211", "010213", 1);
        assert!(matches!(
            MerchantQr::parse(&with_crc(body)),
            Err(EmvError::InvalidValue { tag: "01", .. })
        ));
        // A public static code from another scheme is well-formed EMV but not qrgate's.
        let promptpay =
            "00020101021129370016A000000677010111021311111111111115802TH530376463047B5A";
        assert!(parse_payload(promptpay).is_ok());
        assert!(MerchantQr::parse(promptpay).is_err());
    }

    /// Deterministic pseudo-random generator so the property test needs no extra crate.
    fn lcg(state: &mut u64) -> u64 {
        *state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        *state >> 33
    }

    #[test]
    fn parse_inverts_encode_for_many_orders() {
        let currencies = ["CNY", "JPY", "KWD", "HKD", "USD"];
        let mut state = 7;
        for _ in 0..2000 {
            let currency = Currency::parse(currencies[lcg(&mut state) as usize % 5]).unwrap();
            let minor = 1 + (lcg(&mut state) as i64 % 999_999_999);
            let ascii = |state: &mut u64, max: u64| -> String {
                let len = 1 + lcg(state) % max;
                (0..len)
                    .map(|_| (0x20 + (lcg(state) % 95) as u8) as char)
                    .collect()
            };
            let qr = OrderQr {
                amount: Money::from_minor(minor, currency).unwrap(),
                tip: match lcg(&mut state) % 4 {
                    0 => TipPolicy::None,
                    1 => TipPolicy::Prompt,
                    2 => TipPolicy::FixedFee(Money::from_minor(1 + minor / 7, currency).unwrap()),
                    _ => TipPolicy::PercentageFee(
                        FeePercent::from_hundredths(1 + (lcg(&mut state) % 9999) as i32).unwrap(),
                    ),
                },
                merchant_name: ascii(&mut state, 25),
                merchant_city: ascii(&mut state, 15),
                bill_number: ascii(&mut state, 25),
                terminal_id: lcg(&mut state)
                    .is_multiple_of(2)
                    .then(|| ascii(&mut state, 25)),
                local: lcg(&mut state).is_multiple_of(2).then(|| LocalName {
                    language: "ZH".into(),
                    name: "店".repeat(1 + (lcg(&mut state) % 20) as usize),
                    city: None,
                }),
                ..sample()
            };
            let payload = qr.encode().unwrap();
            assert_eq!(OrderQr::parse(&payload).unwrap(), qr, "{payload}");
        }
    }
}
