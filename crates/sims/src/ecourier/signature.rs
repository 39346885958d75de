//! The proof-of-delivery signature. The reference (seed 001, GetJsonOrder) says
//! "signature information will be returned as base64 encoded objects"; the order's
//! `PodSign` carries it. We render a small valid PNG: a 1-bit grayscale scribble
//! drawn from the signer's name, so each signer gets a different, stable picture.
//! The encoder is a few lines (stored deflate blocks, CRC-32, Adler-32) rather than
//! an image crate: the picture is tiny and its bytes need not be compressed.

use base64::Engine;

const WIDTH: usize = 160;
const HEIGHT: usize = 48;

/// Base64 of a PNG signature for `name`.
pub(crate) fn pod_sign(name: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(png(&scribble(name)))
}

/// Pixels row by row, `true` = ink.
fn scribble(name: &str) -> Vec<bool> {
    let mut pixels = vec![false; WIDTH * HEIGHT];
    let mut seed: u32 = 0x811C_9DC5;
    for b in name.bytes() {
        seed = (seed ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    let mut y = HEIGHT / 2;
    for x in 8..WIDTH - 8 {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        // A step of -2..=2 rows per column, kept inside the margins.
        y = (y + (seed % 5) as usize).saturating_sub(2).clamp(8, HEIGHT - 10);
        pixels[y * WIDTH + x] = true;
        pixels[(y + 1) * WIDTH + x] = true;
    }
    pixels
}

fn png(pixels: &[bool]) -> Vec<u8> {
    let row_bytes = WIDTH.div_ceil(8);
    let mut raw = Vec::with_capacity(HEIGHT * (row_bytes + 1));
    for row in pixels.chunks(WIDTH) {
        raw.push(0); // filter: none
        for chunk in row.chunks(8) {
            let mut byte = 0u8;
            for (i, &ink) in chunk.iter().enumerate() {
                if !ink {
                    byte |= 0x80 >> i; // 1 = white in grayscale
                }
            }
            raw.push(byte);
        }
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&(WIDTH as u32).to_be_bytes());
    ihdr.extend_from_slice(&(HEIGHT as u32).to_be_bytes());
    ihdr.extend_from_slice(&[1, 0, 0, 0, 0]); // bit depth 1, grayscale, deflate, no filter, no interlace
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &zlib_stored(&raw));
    chunk(&mut out, b"IEND", &[]);
    out
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// A zlib stream of stored (uncompressed) deflate blocks.
fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = if data.is_empty() { vec![&[]] } else { data.chunks(0xFFFF).collect() };
    let last = blocks.len() - 1;
    for (i, block) in blocks.iter().enumerate() {
        out.push(u8::from(i == last));
        let len = block.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in data {
        a = (a + u32::from(byte)) % 65521;
        b = (b + a) % 65521;
    }
    out.extend_from_slice(&((b << 16) | a).to_be_bytes());
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    #[test]
    fn crc_of_iend_is_the_well_known_one() {
        assert_eq!(super::crc32(b"IEND"), 0xAE42_6082);
    }
}
