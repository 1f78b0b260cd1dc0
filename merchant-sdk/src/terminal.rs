//! Draws a QR code in a terminal with Unicode half blocks (two modules per character
//! cell), black on white with a 4-module quiet zone, so a phone camera reads it from
//! the screen whatever the terminal's own colours are.

use qrcodegen::{QrCode, QrCodeEcc, QrSegment, Version};

const QUIET_ZONE_MODULES: i32 = 4;
/// ANSI: black foreground on a white background, and reset.
const BLACK_ON_WHITE: &str = "\x1b[30;47m";
const RESET: &str = "\x1b[0m";

/// Encodes like the gateway (byte mode, error correction Q, M when Q does not fit).
pub fn encode(payload: &str) -> Option<QrCode> {
    let segments = [QrSegment::make_bytes(payload.as_bytes())];
    [QrCodeEcc::Quartile, QrCodeEcc::Medium]
        .into_iter()
        .find_map(|ecc| {
            QrCode::encode_segments_advanced(
                &segments,
                ecc,
                Version::MIN,
                Version::MAX,
                None,
                false,
            )
            .ok()
        })
}

/// The code as lines of half blocks, each line wrapped in ANSI colours.
pub fn render(code: &QrCode) -> String {
    let dark = |x: i32, y: i32| code.get_module(x, y);
    let (min, max) = (-QUIET_ZONE_MODULES, code.size() + QUIET_ZONE_MODULES);
    let mut out = String::new();
    for y in (min..max).step_by(2) {
        out.push_str(BLACK_ON_WHITE);
        for x in min..max {
            out.push(match (dark(x, y), dark(x, y + 1)) {
                (true, true) => '█',
                (true, false) => '▀',
                (false, true) => '▄',
                (false, false) => ' ',
            });
        }
        out.push_str(RESET);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_every_module_with_a_quiet_zone() {
        let code = encode("000201010212").unwrap();
        let drawn = render(&code);
        let lines: Vec<&str> = drawn.lines().collect();
        let side = (code.size() + 2 * QUIET_ZONE_MODULES) as usize;
        assert_eq!(lines.len(), side.div_ceil(2));
        for line in &lines {
            let cells = line
                .trim_start_matches(BLACK_ON_WHITE)
                .trim_end_matches(RESET);
            assert_eq!(cells.chars().count(), side);
        }
        // The first two text rows are quiet zone: blank.
        assert!(lines[0]
            .trim_start_matches(BLACK_ON_WHITE)
            .trim_end_matches(RESET)
            .chars()
            .all(|c| c == ' '));
        // The finder pattern's top edge (row 0 of the code, cell row 2) starts dark.
        let row = lines[2]
            .trim_start_matches(BLACK_ON_WHITE)
            .chars()
            .nth(4)
            .unwrap();
        assert!(row == '█' || row == '▀', "{row}");
    }
}
