//! An EMV MPM linter: every problem with a payload, each explained, rather than the
//! first error a parser meets. For cashiers and wallet developers debugging a code.

use crate::emv::{
    crc16_ccitt_false, ADDITIONAL_DATA_CHARS_MAX, MERCHANT_CITY_CHARS_MAX, MERCHANT_NAME_CHARS_MAX,
    PAYLOAD_CHARS_MAX,
};
use std::fmt;

/// One thing wrong with a payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    TooLong {
        chars: usize,
    },
    /// A data object's header is not 4 digits, or its length runs past the end.
    Malformed {
        at: usize,
        reason: String,
    },
    FormatIndicatorNotFirst,
    CrcNotLast,
    CrcMismatch {
        stated: String,
        computed: String,
    },
    MissingTag {
        tag: &'static str,
        meaning: &'static str,
    },
    DuplicateTag {
        tag: String,
    },
    ValueTooLong {
        tag: String,
        chars: usize,
        max: usize,
    },
    NonAscii {
        tag: String,
    },
    BadValue {
        tag: String,
        reason: String,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::TooLong { chars } => write!(
                f,
                "payload is {chars} characters; at most {PAYLOAD_CHARS_MAX}"
            ),
            Problem::Malformed { at, reason } => write!(f, "at character {at}: {reason}"),
            Problem::FormatIndicatorNotFirst => {
                f.write_str("tag 00 (payload format indicator, \"01\") must come first")
            }
            Problem::CrcNotLast => f.write_str("tag 63 (CRC, 4 hex digits) must come last"),
            Problem::CrcMismatch { stated, computed } => {
                write!(f, "CRC says {stated} but the content gives {computed}: the payload was altered or mis-copied")
            }
            Problem::MissingTag { tag, meaning } => {
                write!(f, "mandatory tag {tag} ({meaning}) is missing")
            }
            Problem::DuplicateTag { tag } => write!(f, "tag {tag} appears more than once"),
            Problem::ValueTooLong { tag, chars, max } => {
                write!(f, "tag {tag} is {chars} characters; at most {max}")
            }
            Problem::NonAscii { tag } => write!(
                f,
                "tag {tag} has non-ASCII text; only tag 64 may carry local-language text"
            ),
            Problem::BadValue { tag, reason } => write!(f, "tag {tag}: {reason}"),
        }
    }
}

/// Mandatory in EMVCo MPM (01, the point of initiation method, is optional there;
/// qrgate always writes it).
const MANDATORY: [(&str, &str); 7] = [
    ("00", "payload format indicator"),
    ("52", "merchant category code"),
    ("53", "transaction currency"),
    ("58", "country code"),
    ("59", "merchant name"),
    ("60", "merchant city"),
    ("63", "CRC"),
];

/// Every problem found, in payload order; empty for a payload that is well-formed.
pub fn lint(payload: &str) -> Vec<Problem> {
    let mut problems = Vec::new();
    let chars: Vec<char> = payload.chars().collect();
    if chars.len() > PAYLOAD_CHARS_MAX {
        problems.push(Problem::TooLong { chars: chars.len() });
    }
    // Walk the data objects, stopping at the first structural break.
    let mut objects: Vec<(String, String, usize)> = Vec::new();
    let mut at = 0;
    while at < chars.len() {
        let header: String = chars.iter().skip(at).take(4).collect();
        if header.len() < 4 || !header.bytes().all(|b| b.is_ascii_digit()) {
            problems.push(Problem::Malformed {
                at,
                reason: format!("expected a 2-digit id and 2-digit length, found {header:?}"),
            });
            break;
        }
        let len: usize = header[2..].parse().expect("two digits");
        if at + 4 + len > chars.len() {
            let left = chars.len() - at - 4;
            problems.push(Problem::Malformed {
                at,
                reason: format!(
                    "tag {} says its value is {len} characters but only {left} remain",
                    &header[..2]
                ),
            });
            break;
        }
        let value: String = chars[at + 4..at + 4 + len].iter().collect();
        objects.push((header[..2].to_owned(), value, at));
        at += 4 + len;
    }
    if objects.first().is_some_and(|(id, _, _)| id != "00") {
        problems.push(Problem::FormatIndicatorNotFirst);
    }
    let last_is_crc = objects
        .last()
        .is_some_and(|(id, v, _)| id == "63" && v.len() == 4);
    if objects.iter().any(|(id, _, _)| id == "63") && !last_is_crc {
        problems.push(Problem::CrcNotLast);
    }
    if last_is_crc
        && problems
            .iter()
            .all(|p| !matches!(p, Problem::Malformed { .. }))
    {
        let stated = objects.last().expect("checked").1.to_uppercase();
        let signed: String = chars[..chars.len() - 4].iter().collect();
        let computed = format!("{:04X}", crc16_ccitt_false(signed.as_bytes()));
        if stated != computed {
            problems.push(Problem::CrcMismatch { stated, computed });
        }
    }
    for (tag, meaning) in MANDATORY {
        if !objects.iter().any(|(id, _, _)| id == tag) {
            problems.push(Problem::MissingTag { tag, meaning });
        }
    }
    for (i, (id, value, _)) in objects.iter().enumerate() {
        if objects[..i].iter().any(|(other, _, _)| other == id) {
            problems.push(Problem::DuplicateTag { tag: id.clone() });
        }
        problems.extend(check_value(id, value));
    }
    problems.extend(check_tip(&objects));
    problems
}

/// Tag 55's value tags: 56 with `02` only, 57 with `03` only, each present with its own.
fn check_tip(objects: &[(String, String, usize)]) -> Vec<Problem> {
    let has = |tag: &str| objects.iter().any(|(id, _, _)| id == tag);
    let indicator = objects
        .iter()
        .find(|(id, _, _)| id == "55")
        .map(|(_, v, _)| v.as_str());
    let mut problems = Vec::new();
    for (value_tag, wanted, meaning) in [
        ("56", "02", "value of the convenience fee, fixed"),
        ("57", "03", "value of the convenience fee, percentage"),
    ] {
        if indicator == Some(wanted) && !has(value_tag) {
            problems.push(Problem::MissingTag {
                tag: value_tag,
                meaning,
            });
        }
        if indicator != Some(wanted) && has(value_tag) {
            problems.push(Problem::BadValue {
                tag: value_tag.to_owned(),
                reason: format!("only allowed with tag 55 = {wanted}"),
            });
        }
    }
    problems
}

fn check_value(id: &str, value: &str) -> Vec<Problem> {
    let mut problems = Vec::new();
    let chars = value.chars().count();
    if id != "64" && !value.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        problems.push(Problem::NonAscii { tag: id.to_owned() });
    }
    let max = match id {
        "59" => Some(MERCHANT_NAME_CHARS_MAX),
        "60" => Some(MERCHANT_CITY_CHARS_MAX),
        "54" => Some(crate::money::AMOUNT_CHARS_MAX),
        _ => None,
    };
    if let Some(max) = max.filter(|max| chars > *max) {
        problems.push(Problem::ValueTooLong {
            tag: id.to_owned(),
            chars,
            max,
        });
    }
    let bad = |reason: &str| Problem::BadValue {
        tag: id.to_owned(),
        reason: reason.to_owned(),
    };
    match id {
        "00" if value != "01" => problems.push(bad("must be \"01\"")),
        "01" if value != "11" && value != "12" => {
            problems.push(bad("must be 11 (static) or 12 (dynamic)"))
        }
        "52" if value.len() != 4 || !value.bytes().all(|b| b.is_ascii_digit()) => {
            problems.push(bad("must be 4 digits"))
        }
        "53" if value.len() != 3 || !value.bytes().all(|b| b.is_ascii_digit()) => {
            problems.push(bad("must be a 3-digit ISO 4217 code"))
        }
        "55" if !["01", "02", "03"].contains(&value) => problems.push(bad(
            "must be 01 (tip), 02 (fixed fee) or 03 (percentage fee)",
        )),
        "56" if crate::money::parse_decimal(value).is_err() => {
            problems.push(bad("must be a decimal amount such as \"1.50\""))
        }
        "57" if crate::tips::FeePercent::parse(value).is_err() => {
            problems.push(bad("must be a percentage from 0.01 to 99.99"))
        }
        "58" if !crate::country::is_assigned(value) => {
            problems.push(bad("must be an assigned ISO 3166-1 alpha-2 code"))
        }
        "62" => {
            for sub in crate::emv::split_tlv(value).unwrap_or_default() {
                if sub.value.chars().count() > ADDITIONAL_DATA_CHARS_MAX {
                    problems.push(Problem::ValueTooLong {
                        tag: format!("62-{}", sub.id),
                        chars: sub.value.chars().count(),
                        max: ADDITIONAL_DATA_CHARS_MAX,
                    });
                }
            }
        }
        _ => {}
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emv::OrderQr;

    /// Banco Central do Brasil's static Pix example (see emv.rs tests for the source).
    const PIX: &str = "00020126580014br.gov.bcb.pix0136123e4567-e12b-12d1-a456-4266554400005204000053039865802BR5913Fulano de Tal6008BRASILIA62070503***63041D3D";

    #[test]
    fn a_good_payload_has_no_problems() {
        assert_eq!(lint(PIX), vec![]);
        assert_eq!(lint(&sample_payload()), vec![]);
    }

    #[test]
    fn explains_a_bad_crc() {
        let altered = PIX.replace("Fulano", "Fulanx");
        let problems = lint(&altered);
        assert!(
            matches!(&problems[..], [Problem::CrcMismatch { .. }]),
            "{problems:?}"
        );
        assert!(problems[0].to_string().contains("altered"));
    }

    #[test]
    fn explains_a_length_that_does_not_match_its_value() {
        let broken = PIX.replace("5802BR", "5809BR");
        let problems = lint(&broken);
        assert!(
            problems
                .iter()
                .any(|p| matches!(p, Problem::Malformed { .. })),
            "{problems:?}"
        );
    }

    #[test]
    fn explains_order_and_presence_problems() {
        let no_crc = &PIX[..PIX.len() - 8];
        assert!(lint(no_crc).contains(&Problem::MissingTag {
            tag: "63",
            meaning: "CRC"
        }));
        let reordered = format!("010212{}", &PIX[6..]);
        let problems = lint(&reordered);
        assert!(
            problems.contains(&Problem::FormatIndicatorNotFirst),
            "{problems:?}"
        );
        let missing_name = lint("000201010212");
        assert!(missing_name
            .iter()
            .any(|p| matches!(p, Problem::MissingTag { tag: "59", .. })));
    }

    #[test]
    fn explains_values_over_limits_and_non_ascii() {
        let qr = OrderQr::parse(&sample_payload()).unwrap();
        // Re-encode by hand with an over-long name and a non-ASCII city.
        let body = format!(
            "000201010212520458125303156540512.345802CN5930{}6006上海市区区62050501A",
            "N".repeat(30)
        );
        let payload = format!(
            "{body}6304{:04X}",
            crc16_ccitt_false(format!("{body}6304").as_bytes())
        );
        let problems = lint(&payload);
        assert!(
            problems.contains(&Problem::ValueTooLong {
                tag: "59".into(),
                chars: 30,
                max: 25
            }),
            "{problems:?}"
        );
        assert!(
            problems.contains(&Problem::NonAscii { tag: "60".into() }),
            "{problems:?}"
        );
        assert!(lint(&"0".repeat(600)).contains(&Problem::TooLong { chars: 600 }));
        assert_eq!(qr.merchant_city, "Shanghai");
    }

    #[test]
    fn explains_tip_and_fee_tags() {
        let seal = |body: &str| {
            format!(
                "{body}6304{:04X}",
                crc16_ccitt_false(format!("{body}6304").as_bytes())
            )
        };
        let body = |tags: &str| {
            format!("000201010212520458125303156540512.34{tags}5802CN5904Shop6008Shanghai62050501A")
        };
        assert_eq!(
            lint(&seal(&body("55020257032.5"))),
            vec![
                Problem::MissingTag {
                    tag: "56",
                    meaning: "value of the convenience fee, fixed"
                },
                Problem::BadValue {
                    tag: "57".into(),
                    reason: "only allowed with tag 55 = 03".into()
                },
            ]
        );
        let problems = lint(&seal(&body("5502095703100")));
        assert!(
            problems
                .iter()
                .any(|p| matches!(p, Problem::BadValue { tag, .. } if tag == "55")),
            "{problems:?}"
        );
        assert!(
            problems
                .iter()
                .any(|p| matches!(p, Problem::BadValue { tag, .. } if tag == "57")),
            "{problems:?}"
        );
        assert_eq!(lint(&seal(&body("55020357032.5"))), vec![]);
        assert_eq!(lint(&seal(&body("550201"))), vec![]);
    }

    fn sample_payload() -> String {
        OrderQr {
            gateway_guid: "com.qrgate".into(),
            merchant_id: "mch_a".into(),
            order_token: "token".into(),
            mcc: "5812".into(),
            amount: crate::Money::parse("1.00", crate::Currency::parse("CNY").unwrap()).unwrap(),
            tip: crate::tips::TipPolicy::None,
            country: "CN".into(),
            merchant_name: "Shop".into(),
            merchant_city: "Shanghai".into(),
            bill_number: "B1".into(),
            order_id: "ord_a".into(),
            terminal_id: None,
            local: None,
        }
        .encode()
        .unwrap()
    }
}
