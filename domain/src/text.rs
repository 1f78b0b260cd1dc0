//! Bounded printable-ASCII text, the shape EMV names, cities and references must have.

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
}
