//! A small, valid one-page PDF standing in for the CMR document the details link to (the
//! seed: the details "include the links to your CMR"). Built by hand (PDF 1.4, one Helvetica
//! text stream, an exact cross-reference table) so that any PDF reader opens it.

use serde_json::{Map, Value};

use super::state::Shipment;

/// The CMR of `s`, with the boxes a CMR note numbers (sender, consignee, places, goods).
pub(crate) fn cmr(s: &Shipment) -> Vec<u8> {
    let d = &s.data;
    let mut lines = vec![
        "CMR - International consignment note (simulated eCMR.services document)".to_owned(),
        format!("Tracking number: {}   Reference: {}   Status: {}", s.tracking_number, s.reference, s.status.as_str()),
        String::new(),
        format!("1. Sender: {}", party(d.get("consignor"))),
        format!("2. Consignee: {}", party(d.get("consignee"))),
        format!("3. Place of delivery: {}", place(d.get("delivery"))),
        format!(
            "4. Place and date of taking over: {}, {}",
            place(d.get("taking_over")),
            d.get("taking_over").and_then(|t| t.get("date")).and_then(Value::as_str).unwrap_or("")
        ),
    ];
    for (i, g) in d.get("goods").and_then(Value::as_array).into_iter().flatten().enumerate() {
        let text = |k: &str| g.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        let packages = g.get("packages").map(Value::to_string).unwrap_or_default();
        let weight = g.get("gross_weight_kg").filter(|v| !v.is_null()).map(|w| format!(", {w} kg")).unwrap_or_default();
        lines.push(format!(
            "6-11. Goods line {}: {} {} x {} {}{}",
            i + 1,
            text("marks"),
            packages,
            text("packing"),
            text("description"),
            weight
        ));
    }
    if let Some(instr) = d.get("instructions").and_then(Value::as_str) {
        lines.push(format!("13. Sender's instructions: {instr}"));
    }
    render(&lines)
}

fn party(v: Option<&Value>) -> String {
    let Some(m) = v.and_then(Value::as_object) else { return String::new() };
    format!("{}, {}", field(m, "name"), address(m))
}

fn place(v: Option<&Value>) -> String {
    v.and_then(|v| v.get("place")).and_then(Value::as_object).map(address).unwrap_or_default()
}

fn address(m: &Map<String, Value>) -> String {
    format!("{}, {} {}, {}", field(m, "address"), field(m, "postal_code"), field(m, "city"), field(m, "country"))
}

fn field<'a>(m: &'a Map<String, Value>, k: &str) -> &'a str {
    m.get(k).and_then(Value::as_str).unwrap_or("")
}

/// A PDF string literal: Latin-1-safe ASCII only, with `\`, `(` and `)` escaped.
fn literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('(');
    for c in s.chars().take(110) {
        match c {
            '\\' | '(' | ')' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => out.push('?'),
        }
    }
    out.push(')');
    out
}

pub(crate) fn render(lines: &[String]) -> Vec<u8> {
    let mut content = String::from("BT\n/F1 10 Tf\n14 TL\n50 800 Td\n");
    for line in lines {
        content.push_str(&literal(line));
        content.push_str(" Tj T*\n");
    }
    content.push_str("ET\n");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>"
            .to_owned(),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>".to_owned(),
        format!("<< /Length {} >>\nstream\n{content}endstream", content.len()),
    ];
    let mut out = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::with_capacity(objects.len());
    for (i, obj) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{obj}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    // PDF 1.4 section 3.4.3: each cross-reference entry is exactly 20 bytes, ending in space + LF.
    let mut table = format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1);
    for off in offsets {
        table.push_str(&format!("{off:010} 00000 n \n"));
    }
    table.push_str(&format!("trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n", objects.len() + 1));
    out.extend_from_slice(table.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cross_reference_offsets_point_at_their_objects() {
        let pdf = render(&["Hello (world) \\ ünïcode".to_owned()]);
        let text = String::from_utf8_lossy(&pdf).into_owned();
        let startxref: usize = text.rsplit("startxref\n").next().unwrap().lines().next().unwrap().parse().unwrap();
        assert!(pdf[startxref..].starts_with(b"xref\n0 6\n"));
        let table = &text[text.find("xref\n0 6\n").unwrap() + 9..];
        for (i, line) in table.lines().skip(1).take(5).enumerate() {
            let off: usize = line[..10].parse().unwrap();
            assert!(pdf[off..].starts_with(format!("{} 0 obj", i + 1).as_bytes()), "object {}", i + 1);
        }
        assert!(text.contains("(Hello \\(world\\) \\\\ ?n?code) Tj"));
        assert!(pdf.ends_with(b"%%EOF\n"));
    }
}
