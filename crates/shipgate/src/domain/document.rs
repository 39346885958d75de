//! Proof of delivery and the files a carrier hands over with it (a signature image), in
//! the gateway's vocabulary: what a carrier adapter reports ([`ProofReport`],
//! [`Attachment`]), what the shipment keeps ([`ProofOfDelivery`]), and the content check
//! every file passes before it is stored (docs/product.md "Documents").
//!
//! The content check is ours and deliberately small: a file whose type is declared (or
//! recognised by its magic bytes) as an image or a PDF must have that format's
//! structure — for PNG every chunk's length and CRC, IHDR first and IEND last; for JPEG
//! the marker segments up to the scan and the end marker; for GIF the header, screen
//! descriptor and trailer; for PDF the header and the end-of-file marker. It proves the
//! bytes are what they claim to be without decoding pixels, so no image crate (and its
//! decoder's attack surface) is needed.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A file as a carrier sent it: the declared media type (None when the carrier states
/// none) and the bytes, already decoded from the carrier's transfer encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub declared_type: Option<String>,
    pub bytes: Vec<u8>,
}

/// Proof of delivery as a carrier reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProofReport {
    /// Who signed or received.
    pub name: Option<String>,
    pub at: Option<DateTime<Utc>>,
    pub signature: Option<Attachment>,
}

/// The stored signature as the shipment names it (the bytes are a document of the
/// shipment, `GET /v1/shipments/{id}/documents/{document_id}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SignatureRef {
    #[schema(example = "doc_01936f0c7a2b7c3d9e8f001122334455")]
    pub document_id: String,
    #[schema(example = "image/png")]
    pub content_type: String,
    /// Bytes.
    #[schema(example = 1234)]
    pub size: i64,
}

/// Proof of delivery as the shipment keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProofOfDelivery {
    /// Who signed or received, as the carrier reported it.
    #[schema(example = "J. DOE")]
    pub name: Option<String>,
    /// When, as the carrier reported it.
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(serialize_with = "super::time::micros_opt")]
    pub at: Option<DateTime<Utc>>,
    /// The signature image, when the carrier sent one that passed the content check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<SignatureRef>,
}

/// Why a file was not stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    TooLarge {
        size: usize,
        limit: usize,
    },
    Empty,
    /// The declared (or recognised) type's structure is not there.
    NotA {
        content_type: String,
        reason: String,
    },
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::TooLarge { size, limit } => write!(f, "{size} bytes is over the {limit}-byte limit"),
            Refused::Empty => write!(f, "the file is empty"),
            Refused::NotA { content_type, reason } => write!(f, "not a valid {content_type}: {reason}"),
        }
    }
}

const PNG_MAGIC: &[u8] = b"\x89PNG\r\n\x1a\n";

/// The media type the bytes' magic number says, for the formats we check.
pub fn sniff(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(PNG_MAGIC) {
        Some("image/png")
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some("image/gif")
    } else if bytes.starts_with(b"%PDF-") {
        Some("application/pdf")
    } else {
        None
    }
}

/// The media type a file is stored under, after its content check: the declared type
/// (lower-cased, parameters dropped), else the one its magic number says, else
/// `application/octet-stream`. A declared type we check must match the content; a file
/// that declares none but starts like a checked format must be one.
pub fn check(a: &Attachment, limit: usize) -> Result<String, Refused> {
    if a.bytes.is_empty() {
        return Err(Refused::Empty);
    }
    if a.bytes.len() > limit {
        return Err(Refused::TooLarge { size: a.bytes.len(), limit });
    }
    let declared = a
        .declared_type
        .as_deref()
        .map(|t| t.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty());
    let content_type = declared.or_else(|| sniff(&a.bytes).map(str::to_owned));
    let Some(content_type) = content_type else { return Ok("application/octet-stream".to_owned()) };
    let verdict = match content_type.as_str() {
        "image/png" => png(&a.bytes),
        "image/jpeg" | "image/jpg" => jpeg(&a.bytes),
        "image/gif" => gif(&a.bytes),
        "application/pdf" => pdf(&a.bytes),
        // Another image type we cannot check is not taken on trust.
        t if t.starts_with("image/") => Err("this image type is not accepted".to_owned()),
        _ => Ok(()),
    };
    match verdict {
        Ok(()) => Ok(if content_type == "image/jpg" { "image/jpeg".to_owned() } else { content_type }),
        Err(reason) => Err(Refused::NotA { content_type, reason }),
    }
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4).map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// PNG (ISO/IEC 15948): the signature, then chunks of length, type, data and a CRC-32
/// over type and data; IHDR first (13 bytes, non-zero size), at least one IDAT, IEND last.
fn png(b: &[u8]) -> Result<(), String> {
    if !b.starts_with(PNG_MAGIC) {
        return Err("no PNG signature".into());
    }
    let mut at = PNG_MAGIC.len();
    let mut first = true;
    let mut idat = false;
    loop {
        let len = be32(b, at).ok_or("a chunk is cut short")? as usize;
        let kind = b.get(at + 4..at + 8).ok_or("a chunk is cut short")?;
        let end = (at + 8).checked_add(len).filter(|e| e + 4 <= b.len()).ok_or("a chunk runs past the end")?;
        let data = &b[at + 8..end];
        let crc = be32(b, end).ok_or("a chunk is cut short")?;
        if crc32fast::hash(&b[at + 4..end]) != crc {
            return Err(format!("chunk {} fails its CRC", String::from_utf8_lossy(kind)));
        }
        if first {
            if kind != b"IHDR" || len != 13 {
                return Err("the first chunk is not a 13-byte IHDR".into());
            }
            if be32(data, 0) == Some(0) || be32(data, 4) == Some(0) {
                return Err("the image has no pixels".into());
            }
            first = false;
        }
        idat |= kind == b"IDAT";
        at = end + 4;
        if kind == b"IEND" {
            return match (idat, at == b.len()) {
                (false, _) => Err("no image data (IDAT)".into()),
                (true, false) => Err("bytes after IEND".into()),
                (true, true) => Ok(()),
            };
        }
    }
}

/// JPEG (ITU T.81): SOI, marker segments with their lengths up to a frame and the start
/// of scan, and EOI at the end.
fn jpeg(b: &[u8]) -> Result<(), String> {
    if !b.starts_with(&[0xFF, 0xD8]) {
        return Err("no start-of-image marker".into());
    }
    if !b.ends_with(&[0xFF, 0xD9]) {
        return Err("no end-of-image marker".into());
    }
    let mut at = 2;
    let mut frame = false;
    loop {
        if b.get(at) != Some(&0xFF) {
            return Err("a marker segment is malformed".into());
        }
        let marker = *b.get(at + 1).ok_or("cut short")?;
        if marker == 0xFF {
            at += 1; // fill byte
            continue;
        }
        let len = b.get(at + 2..at + 4).map(|s| usize::from(u16::from_be_bytes([s[0], s[1]]))).ok_or("cut short")?;
        if len < 2 || at + 2 + len > b.len() {
            return Err("a segment runs past the end".into());
        }
        frame |= matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
        if marker == 0xDA {
            return if frame { Ok(()) } else { Err("a scan without a frame header".into()) };
        }
        at += 2 + len;
    }
}

/// GIF89a/87a: header, logical screen descriptor with a non-zero size, trailer byte.
fn gif(b: &[u8]) -> Result<(), String> {
    if b.len() < 14 || !(b.starts_with(b"GIF87a") || b.starts_with(b"GIF89a")) {
        return Err("no GIF header".into());
    }
    if u16::from_le_bytes([b[6], b[7]]) == 0 || u16::from_le_bytes([b[8], b[9]]) == 0 {
        return Err("the image has no pixels".into());
    }
    if b.last() != Some(&0x3B) {
        return Err("no trailer".into());
    }
    Ok(())
}

/// PDF: the `%PDF-` header and an `%%EOF` marker in the last kilobyte.
fn pdf(b: &[u8]) -> Result<(), String> {
    if !b.starts_with(b"%PDF-") {
        return Err("no %PDF- header".into());
    }
    let tail = &b[b.len().saturating_sub(1024)..];
    if !tail.windows(5).any(|w| w == b"%%EOF") {
        return Err("no %%EOF marker".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 1×1 grey PNG built here: signature, IHDR, IDAT (zlib, stored), IEND.
    pub(crate) fn tiny_png() -> Vec<u8> {
        fn chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
            out.extend_from_slice(&(data.len() as u32).to_be_bytes());
            let start = out.len();
            out.extend_from_slice(kind);
            out.extend_from_slice(data);
            let crc = crc32fast::hash(&out[start..]);
            out.extend_from_slice(&crc.to_be_bytes());
        }
        let mut out = PNG_MAGIC.to_vec();
        chunk(&mut out, b"IHDR", &[0, 0, 0, 1, 0, 0, 0, 1, 8, 0, 0, 0, 0]);
        // zlib: header, one stored block of [filter 0, pixel 0x80], Adler-32.
        let raw = [0u8, 0x80];
        let mut z = vec![0x78, 0x01, 1, 2, 0, 0xFD, 0xFF];
        z.extend_from_slice(&raw);
        let (a, b) =
            raw.iter().fold((1u32, 0u32), |(a, b), &x| ((a + u32::from(x)) % 65521, (b + a + u32::from(x)) % 65521));
        z.extend_from_slice(&((b << 16) | a).to_be_bytes());
        chunk(&mut out, b"IDAT", &z);
        chunk(&mut out, b"IEND", &[]);
        out
    }

    fn att(t: Option<&str>, bytes: Vec<u8>) -> Attachment {
        Attachment { declared_type: t.map(str::to_owned), bytes }
    }

    #[test]
    fn a_png_passes_declared_or_recognised() {
        assert_eq!(check(&att(None, tiny_png()), 1000), Ok("image/png".to_owned()));
        assert_eq!(check(&att(Some("image/PNG; q=1"), tiny_png()), 1000), Ok("image/png".to_owned()));
    }

    #[test]
    fn a_declared_png_that_is_not_one_is_refused() {
        let text = att(Some("image/png"), b"hello, not an image".to_vec());
        assert!(matches!(check(&text, 1000), Err(Refused::NotA { .. })));
        // The magic number alone is not enough.
        let mut fake = PNG_MAGIC.to_vec();
        fake.extend_from_slice(b"garbage garbage garbage");
        assert!(matches!(check(&att(None, fake), 1000), Err(Refused::NotA { .. })));
        // One flipped bit fails the CRC.
        let mut flipped = tiny_png();
        flipped[20] ^= 1;
        assert!(matches!(check(&att(None, flipped), 1000), Err(Refused::NotA { .. })));
        // Cut short.
        let png = tiny_png();
        assert!(check(&att(None, png[..png.len() - 6].to_vec()), 1000).is_err());
        // A PNG declared as a JPEG.
        assert!(check(&att(Some("image/jpeg"), tiny_png()), 1000).is_err());
    }

    #[test]
    fn limits_and_other_types() {
        assert_eq!(check(&att(None, tiny_png()), 10), Err(Refused::TooLarge { size: tiny_png().len(), limit: 10 }));
        assert_eq!(check(&att(None, Vec::new()), 10), Err(Refused::Empty));
        assert_eq!(check(&att(None, b"plain".to_vec()), 10), Ok("application/octet-stream".to_owned()));
        assert!(check(&att(Some("image/webp"), b"RIFF....WEBP".to_vec()), 100).is_err());
        assert!(check(&att(None, b"%PDF-1.4\n...\n%%EOF\n".to_vec()), 100).is_ok());
        assert!(check(&att(None, b"GIF89a\x01\x00\x01\x00\x00\x00\x00;".to_vec()), 100).is_ok());
        let jpeg = [0xFF, 0xD8, 0xFF, 0xC0, 0, 4, 0, 0, 0xFF, 0xDA, 0, 2, 0xFF, 0xD9];
        assert!(check(&att(None, jpeg.to_vec()), 100).is_ok());
        assert!(check(&att(None, vec![0xFF, 0xD8, 0xFF, 0xD9]), 100).is_err());
    }
}
