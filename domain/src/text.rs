//! Bounded text: printable ASCII (the shape EMV names, cities and references must have),
//! and plain text for people (names of keys, tokens and line items; local names).

use std::fmt;

/// 1..=MAX characters, each printable ASCII (0x20..=0x7E).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct AsciiText<const MAX: usize>(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TextError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {0} characters")]
    TooLong(usize),
    #[error("must be printable ASCII")]
    NotPrintableAscii,
    #[error("must not be only spaces")]
    Blank,
    #[error("must not hold control, invisible or direction-changing characters")]
    NotPlain,
}

impl<const MAX: usize> AsciiText<MAX> {
    pub fn parse(s: &str) -> Result<Self, TextError> {
        if s.is_empty() {
            return Err(TextError::Empty);
        }
        if !s.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
            return Err(TextError::NotPrintableAscii);
        }
        if s.len() > MAX {
            return Err(TextError::TooLong(MAX));
        }
        Ok(AsciiText(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<const MAX: usize> fmt::Debug for AsciiText<MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl<const MAX: usize> fmt::Display for AsciiText<MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// 1..=MAX characters of any script that a person can see: not blank, and no control
/// characters (C0, DEL, C1), invisible ones (soft hyphen, zero-width spaces and joiners,
/// word joiner, BOM) or ones that change the direction or lines of the text around them
/// (bidi marks, embeddings, overrides and isolates; line and paragraph separators).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PlainText<const MAX: usize>(String);

/// The characters `PlainText` refuses, as ranges.
const NOT_PLAIN: &[(char, char)] = &[
    ('\u{0}', '\u{1f}'),
    ('\u{7f}', '\u{9f}'),
    ('\u{ad}', '\u{ad}'),
    ('\u{61c}', '\u{61c}'),
    ('\u{180e}', '\u{180e}'),
    ('\u{200b}', '\u{200f}'),
    ('\u{2028}', '\u{202e}'),
    ('\u{2060}', '\u{206f}'),
    ('\u{feff}', '\u{feff}'),
    ('\u{fff9}', '\u{fffb}'),
];

/// `PlainText`'s rule as a JSON Schema (ECMA-262) pattern, for the API document: spaces
/// (no tabs or line breaks) before the first visible character, then no refused one.
pub const PLAIN_TEXT_PATTERN: &str = "^[ \\u00A0\\u1680\\u2000-\\u200A\\u202F\\u205F\\u3000]*[^\\s\\u0000-\\u001F\\u007F-\\u009F\\u00AD\\u061C\\u180E\\u200B-\\u200F\\u2028-\\u202E\\u2060-\\u206F\\uFEFF\\uFFF9-\\uFFFB][^\\u0000-\\u001F\\u007F-\\u009F\\u00AD\\u061C\\u180E\\u200B-\\u200F\\u2028-\\u202E\\u2060-\\u206F\\uFEFF\\uFFF9-\\uFFFB]*$";

impl<const MAX: usize> PlainText<MAX> {
    pub fn parse(s: &str) -> Result<Self, TextError> {
        if s.is_empty() {
            return Err(TextError::Empty);
        }
        if s.chars()
            .any(|c| NOT_PLAIN.iter().any(|(lo, hi)| (*lo..=*hi).contains(&c)))
        {
            return Err(TextError::NotPlain);
        }
        if s.chars().all(char::is_whitespace) {
            return Err(TextError::Blank);
        }
        if s.chars().count() > MAX {
            return Err(TextError::TooLong(MAX));
        }
        Ok(PlainText(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl<const MAX: usize> fmt::Debug for PlainText<MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_and_charset() {
        assert!(AsciiText::<5>::parse("Shop!").is_ok());
        assert_eq!(AsciiText::<5>::parse("Shops!"), Err(TextError::TooLong(5)));
        assert_eq!(AsciiText::<5>::parse(""), Err(TextError::Empty));
        assert_eq!(
            AsciiText::<9>::parse("咖啡"),
            Err(TextError::NotPrintableAscii)
        );
        assert_eq!(
            AsciiText::<9>::parse("a\tb"),
            Err(TextError::NotPrintableAscii)
        );
    }

    #[test]
    fn plain_text_is_what_people_see() {
        assert!(PlainText::<12>::parse("小王 · Till 2").is_ok());
        assert!(PlainText::<10>::parse(" Ana").is_ok());
        assert_eq!(PlainText::<3>::parse("Anna"), Err(TextError::TooLong(3)));
        assert_eq!(PlainText::<3>::parse(""), Err(TextError::Empty));
        assert_eq!(PlainText::<3>::parse("  "), Err(TextError::Blank));
        for bad in [
            "a\u{0}",
            "a\tb",
            "a\u{85}",
            "\u{200b}",
            "a\u{202e}b",
            "a\u{2028}",
            "\u{feff}x",
            "a\u{ad}",
        ] {
            assert_eq!(
                PlainText::<9>::parse(bad),
                Err(TextError::NotPlain),
                "{bad:?}"
            );
        }
    }
}
