//! Renders a QR payload as SVG or PNG (docs/contract.md §5): byte mode, error correction Q
//! (M where Q would not fit), a quiet zone of 4 modules, dark on light.

use qrcodegen::{QrCode, QrCodeEcc, QrSegment, Version};

const QUIET_ZONE_MODULES: i32 = 4;
/// PNG pixels per module: about 300–500 px for our payload sizes, easy to scan.
const PNG_PIXELS_PER_MODULE: u32 = 8;

pub fn encode(payload: &str) -> anyhow::Result<QrCode> {
    let segments = [QrSegment::make_bytes(payload.as_bytes())];
    QrCode::encode_segments_advanced(
        &segments,
        QrCodeEcc::Quartile,
        Version::MIN,
        Version::MAX,
        None,
        false,
    )
    .or_else(|_| {
        QrCode::encode_segments_advanced(
            &segments,
            QrCodeEcc::Medium,
            Version::MIN,
            Version::MAX,
            None,
            false,
        )
    })
    .map_err(|e| anyhow::anyhow!("payload does not fit a QR code: {e:?}"))
}

pub fn svg(code: &QrCode) -> String {
    let size = code.size() + 2 * QUIET_ZONE_MODULES;
    let mut path = String::new();
    for y in 0..code.size() {
        for x in 0..code.size() {
            if code.get_module(x, y) {
                path.push_str(&format!(
                    "M{},{}h1v1h-1z",
                    x + QUIET_ZONE_MODULES,
                    y + QUIET_ZONE_MODULES
                ));
            }
        }
    }
    format!(
        concat!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
            "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" viewBox=\"0 0 {0} {0}\" ",
            "shape-rendering=\"crispEdges\">",
            "<rect width=\"100%\" height=\"100%\" fill=\"#FFFFFF\"/>",
            "<path d=\"{1}\" fill=\"#000000\"/></svg>\n"
        ),
        size, path
    )
}

pub fn png(code: &QrCode) -> anyhow::Result<Vec<u8>> {
    let modules = (code.size() + 2 * QUIET_ZONE_MODULES) as u32;
    let side = modules * PNG_PIXELS_PER_MODULE;
    let mut pixels = vec![0xFFu8; (side * side) as usize];
    for py in 0..side {
        for px in 0..side {
            let x = (px / PNG_PIXELS_PER_MODULE) as i32 - QUIET_ZONE_MODULES;
            let y = (py / PNG_PIXELS_PER_MODULE) as i32 - QUIET_ZONE_MODULES;
            if code.get_module(x, y) {
                pixels[(py * side + px) as usize] = 0;
            }
        }
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, side, side);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.write_header()?.write_image_data(&pixels)?;
    Ok(out)
}

/// A code as the answer to `…/qr.svg`.
pub fn svg_response(code: &QrCode) -> actix_web::HttpResponse {
    actix_web::HttpResponse::Ok()
        .content_type("image/svg+xml")
        .body(svg(code))
}

/// A code as the answer to `…/qr.png`.
pub fn png_response(code: &QrCode) -> crate::error::ApiResult<actix_web::HttpResponse> {
    let png = png(code).map_err(crate::error::ApiError::internal)?;
    Ok(actix_web::HttpResponse::Ok()
        .content_type("image/png")
        .body(png))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uses_quartile_and_renders_both_formats() {
        let code = encode("000201010212").unwrap();
        assert_eq!(code.error_correction_level(), QrCodeEcc::Quartile);
        assert!(svg(&code).contains("<path"));
        let png = png(&code).unwrap();
        assert_eq!(&png[1..4], b"PNG");
    }

    #[test]
    fn falls_back_to_medium_when_quartile_does_not_fit() {
        // Version 40-Q holds 1663 bytes, 40-M holds 2331.
        let code = encode(&"A".repeat(2000)).unwrap();
        assert_eq!(code.error_correction_level(), QrCodeEcc::Medium);
    }
}
