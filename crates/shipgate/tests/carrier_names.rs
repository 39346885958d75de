//! Outside its own folder, no code names a carrier (docs/architecture.md: "no module outside
//! `carriers/<name>/` names a carrier: they ask the registry"; `docs/adding-a-carrier.md`).
//!
//! Reads the gateway's source tree and looks, for every carrier of the registry, for an
//! identifier or a string literal that holds its slug as a word: `"ecomdash"`,
//! `ecomdash::`, `EcomdashChannel`, `c.ecomdash`, `"ecomexpress_push"`,
//! `"/v1/inbound/aftership/{id}"`. Words are split at `_`, at any character that is not
//! a letter or digit, and at a lower-to-upper case change, and compared in lower case.
//!
//! Allowed, and not read:
//! - `carriers/<slug>/`, for that carrier;
//! - the registry, `carriers/mod.rs`: one line per carrier (its module and its entry),
//!   plus the `Channel` fields of the sink carriers;
//! - `sandbox/`: the demo wires each simulator to a connection of its carrier by name;
//! - tests: `#[cfg(test)]` items (and the files of `#[cfg(test)] mod x;`), and the test
//!   crates under `tests/`, which are not read;
//! - comments, doc comments, `#[doc]` and `#[schema(...)]` attributes (examples and
//!   descriptions in the OpenAPI document, not code).
//!
//! A lexer rather than a regular expression: strings, raw strings, char literals,
//! lifetimes and nested comments must not be confused with code.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Punct(char),
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    line: usize,
}

/// Rust source into identifiers, string literals and punctuation; comments, numbers,
/// char literals and lifetimes are dropped.
fn lex(src: &str) -> Vec<Token> {
    let s: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line) = (0usize, 1usize);
    let at = |i: usize| s.get(i).copied().unwrap_or('\0');
    while i < s.len() {
        let c = s[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '/' && at(i + 1) == '/' {
            while i < s.len() && s[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            while i < s.len() {
                if s[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if s[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if s[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
        } else if let Some((len, hashes)) = raw_string_start(&s, i) {
            // r"..", r#".."#, br#".."#, cr".."
            let start_line = line;
            let mut j = i + len;
            let mut text = String::new();
            loop {
                if j >= s.len() {
                    break;
                }
                if s[j] == '"' && (0..hashes).all(|k| at(j + 1 + k) == '#') {
                    j += 1 + hashes;
                    break;
                }
                if s[j] == '\n' {
                    line += 1;
                }
                text.push(s[j]);
                j += 1;
            }
            out.push(Token { tok: Tok::Str(text), line: start_line });
            i = j;
        } else if c == '"' || ((c == 'b' || c == 'c') && at(i + 1) == '"') {
            let start_line = line;
            let mut j = if c == '"' { i + 1 } else { i + 2 };
            let mut text = String::new();
            while j < s.len() && s[j] != '"' {
                if s[j] == '\\' {
                    text.push(s[j]);
                    j += 1;
                }
                if j < s.len() {
                    if s[j] == '\n' {
                        line += 1;
                    }
                    text.push(s[j]);
                    j += 1;
                }
            }
            out.push(Token { tok: Tok::Str(text), line: start_line });
            i = j + 1;
        } else if c == '\'' || (c == 'b' && at(i + 1) == '\'') {
            // A char literal ('x', '\n', '\u{1F600}', b'x') or a lifetime / label ('a).
            let q = if c == 'b' { i + 1 } else { i };
            if at(q + 1) == '\\' {
                let mut j = q + 2;
                while j < s.len() && s[j] != '\'' {
                    j += 1;
                }
                i = j + 1;
            } else if at(q + 2) == '\'' {
                i = q + 3;
            } else {
                i = q + 1;
                while i < s.len() && (s[i].is_alphanumeric() || s[i] == '_') {
                    i += 1;
                }
            }
        } else if c.is_alphabetic() || c == '_' {
            let mut j = i;
            if c == 'r' && at(i + 1) == '#' && (at(i + 2).is_alphabetic() || at(i + 2) == '_') {
                j += 2; // a raw identifier, r#type
            }
            let begin = j;
            while j < s.len() && (s[j].is_alphanumeric() || s[j] == '_') {
                j += 1;
            }
            out.push(Token { tok: Tok::Ident(s[begin..j].iter().collect()), line });
            i = j;
        } else if c.is_ascii_digit() {
            while i < s.len() && (s[i].is_alphanumeric() || s[i] == '_' || (s[i] == '.' && at(i + 1).is_ascii_digit()))
            {
                i += 1;
            }
        } else {
            out.push(Token { tok: Tok::Punct(c), line });
            i += 1;
        }
    }
    out
}

/// Length of a raw string's opening (`r#"` = 3) and its number of `#`, if one starts here.
fn raw_string_start(s: &[char], i: usize) -> Option<(usize, usize)> {
    let mut j = i;
    if matches!(s.get(j), Some('b') | Some('c')) {
        j += 1;
    }
    if s.get(j) != Some(&'r') {
        return None;
    }
    j += 1;
    let mut hashes = 0;
    while s.get(j) == Some(&'#') {
        hashes += 1;
        j += 1;
    }
    (s.get(j) == Some(&'"')).then_some((j + 1 - i, hashes))
}

/// The index just past the group opened at `open` (`[`, `(` or `{`).
fn close_of(t: &[Token], open: usize) -> usize {
    let mut depth = 0i32;
    let mut k = open;
    while k < t.len() {
        match t[k].tok {
            Tok::Punct('[' | '(' | '{') => depth += 1,
            Tok::Punct(']' | ')' | '}') => {
                depth -= 1;
                if depth == 0 {
                    return k + 1;
                }
            }
            _ => {}
        }
        k += 1;
    }
    t.len()
}

/// The index just past the item starting at `k`: its `;` or its closing brace.
fn item_end(t: &[Token], mut k: usize) -> usize {
    while k < t.len() {
        match t[k].tok {
            Tok::Punct(';') => return k + 1,
            Tok::Punct('{') => return close_of(t, k),
            Tok::Punct('[' | '(') => k = close_of(t, k),
            _ => k += 1,
        }
    }
    t.len()
}

/// The tokens that are code (not tests, docs or schema examples), and the files of
/// `#[cfg(test)] mod x;` declarations.
fn code_tokens(t: &[Token]) -> (Vec<Token>, Vec<String>) {
    let mut out = Vec::new();
    let mut test_mods = Vec::new();
    let mut k = 0;
    while k < t.len() {
        let is_attr = t[k].tok == Tok::Punct('#')
            && (t.get(k + 1).map(|x| &x.tok) == Some(&Tok::Punct('['))
                || (t.get(k + 1).map(|x| &x.tok) == Some(&Tok::Punct('!'))
                    && t.get(k + 2).map(|x| &x.tok) == Some(&Tok::Punct('['))));
        if !is_attr {
            out.push(t[k].clone());
            k += 1;
            continue;
        }
        let open = if t[k + 1].tok == Tok::Punct('!') { k + 2 } else { k + 1 };
        let end = close_of(t, open);
        let body = &t[open + 1..end.saturating_sub(1)];
        let name = match body.first().map(|x| &x.tok) {
            Some(Tok::Ident(n)) => n.as_str(),
            _ => "",
        };
        let cfg_test = name == "cfg" && body.iter().any(|x| x.tok == Tok::Ident("test".into()));
        if cfg_test {
            // Skip any further attributes, then the item.
            let mut j = end;
            while t.get(j).map(|x| &x.tok) == Some(&Tok::Punct('#')) {
                j = close_of(t, j + 1);
            }
            let stop = item_end(t, j);
            let item: Vec<&Tok> = t[j..stop].iter().map(|x| &x.tok).collect();
            if let [.., Tok::Ident(m), Tok::Ident(name), Tok::Punct(';')] = item.as_slice()
                && m == "mod"
            {
                test_mods.push(name.clone());
            }
            k = stop;
        } else if name == "doc" || name == "schema" {
            k = end;
        } else {
            // Other attributes are code (`#[serde(rename = "x")]`, `#[utoipa::path(...)]`).
            out.extend(t[k..end].iter().cloned());
            k = end;
        }
    }
    (out, test_mods)
}

/// `EcomdashChannel` → ecomdash, channel; `/v1/inbound/aftership/{id}` → v1, inbound, aftership, id.
fn words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for ch in text.chars() {
        if !ch.is_alphanumeric() {
            if !cur.is_empty() {
                words.push(std::mem::take(&mut cur));
            }
            prev_lower = false;
            continue;
        }
        if ch.is_uppercase() && prev_lower && !cur.is_empty() {
            words.push(std::mem::take(&mut cur));
        }
        prev_lower = ch.is_lowercase() || ch.is_ascii_digit();
        cur.extend(ch.to_lowercase());
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).expect("read src").filter_map(Result::ok).collect();
    entries.sort_by_key(|e| e.path());
    for e in entries {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Where `file`'s child module `name` lives (`a/mod.rs` → `a/name.rs`; `a/b.rs` → `a/b/name.rs`).
fn child_module(file: &Path, name: &str) -> Vec<PathBuf> {
    let dir = match file.file_name().and_then(|n| n.to_str()) {
        Some("mod.rs" | "lib.rs" | "main.rs") => file.parent().map(Path::to_path_buf),
        _ => file.parent().map(|p| p.join(file.file_stem().unwrap_or_default())),
    }
    .unwrap_or_default();
    vec![dir.join(format!("{name}.rs")), dir.join(name).join("mod.rs")]
}

/// Per carrier slug: the files outside its folder that name it, with `line: token`.
fn naming_sites(src: &Path, slugs: &[&str]) -> BTreeMap<String, BTreeMap<String, Vec<String>>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut excluded: BTreeSet<PathBuf> = BTreeSet::new();
    let mut found: BTreeMap<String, BTreeMap<String, Vec<String>>> =
        slugs.iter().map(|s| (s.to_string(), BTreeMap::new())).collect();
    let mut parsed = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).expect("read file");
        let (code, test_mods) = code_tokens(&lex(&text));
        for m in test_mods {
            excluded.extend(child_module(f, &m));
        }
        parsed.push((f.clone(), code));
    }
    for (f, code) in parsed {
        if excluded.contains(&f) {
            continue;
        }
        let rel = f.strip_prefix(src).expect("under src").to_string_lossy().replace('\\', "/");
        if rel.starts_with("sandbox/") || rel == "carriers/mod.rs" {
            continue;
        }
        for slug in slugs {
            if rel.starts_with(&format!("carriers/{slug}/")) {
                continue;
            }
            for t in &code {
                let (text, shown) = match &t.tok {
                    Tok::Ident(s) => (s.as_str(), s.clone()),
                    Tok::Str(s) => (s.as_str(), format!("{s:?}")),
                    Tok::Punct(_) => continue,
                };
                if words(text).iter().any(|w| w == slug) {
                    found
                        .get_mut(*slug)
                        .expect("slug")
                        .entry(rel.clone())
                        .or_default()
                        .push(format!("{}: {shown}", t.line));
                }
            }
        }
    }
    found
}

#[test]
fn the_lexer_keeps_code_and_drops_comments_tests_and_examples() {
    let src = r####"
        // "ecomdash" in a comment
        /* nested /* "ecomdash" */ still a comment */
        /// doc "ecomdash"
        #[schema(example = "ecomdash")]
        #[serde(rename = "kept")]
        fn f<'a>(x: &'a str) -> char { let _ = r#"raw "with" quotes"#; let _ = '"'; 'x' }
        #[cfg(test)]
        mod tests { fn g() { let _ = "ecomdash"; } }
        #[cfg(test)]
        mod contract_tests;
        struct S { ecomdash: u8 }
    "####;
    let (code, test_mods) = code_tokens(&lex(src));
    let strings: Vec<&str> = code
        .iter()
        .filter_map(|t| match &t.tok {
            Tok::Str(s) => Some(s.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(strings, ["kept", "raw \"with\" quotes"]);
    assert_eq!(test_mods, ["contract_tests"]);
    let idents: Vec<&str> = code
        .iter()
        .filter_map(|t| match &t.tok {
            Tok::Ident(s) => Some(s.as_str()),
            _ => None,
        })
        .collect();
    assert!(idents.contains(&"ecomdash") && !idents.contains(&"g") && !idents.contains(&"a"), "{idents:?}");
    assert_eq!(words("EcomdashChannel"), ["ecomdash", "channel"]);
    assert_eq!(words("/v1/inbound/aftership/{id}"), ["v1", "inbound", "aftership", "id"]);
    assert_eq!(words("ecomexpress_push"), ["ecomexpress", "push"]);
    assert_eq!(words("ECOM_BODY_LIMIT"), ["ecom", "body", "limit"]);
}

#[test]
fn no_code_outside_a_carriers_folder_names_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let slugs: Vec<&str> = shipgate::carriers::catalog().iter().map(|c| c.slug).collect();
    assert!(slugs.len() >= 5, "the registry lists the carriers: {slugs:?}");
    let found = naming_sites(&src, &slugs);
    let mut report = String::new();
    for (slug, files) in &found {
        report.push_str(&format!("{slug}: {} file(s) outside carriers/{slug}/\n", files.len()));
        for (file, sites) in files {
            report.push_str(&format!("  {file}: {}\n", sites.join(", ")));
        }
    }
    println!("{report}");
    assert!(found.values().all(BTreeMap::is_empty), "code names a carrier outside its folder:\n{report}");
}
