//! The layers import one way (docs/architecture.md: "Data flows one way: http → service →
//! (carriers, store) → domain"; `app.rs` holds state only), and no two modules import
//! each other, directly or through others. Reads the gateway's source
//! tree and lists, per layer, every `crate::<module>` path its code names (comments and
//! doc comments are not code), then checks none of them is one the layer may not use.
//!
//! The HTTP layer talks to the service layer only: it parses a request into a service
//! input, calls one service function and maps the answer (issue 11); the console of
//! issue 14 is a second front end on the same service functions, and names neither the
//! layers below the service nor `http`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules `src` names as `crate::<module>` in code, with where.
fn crate_paths(src: &str) -> Vec<(String, usize)> {
    let mut found = Vec::new();
    for (n, line) in src.lines().enumerate() {
        // Comments (and doc comments) end the code of a line; a `//` inside a string
        // literal cuts the line short, which can only hide a path, never invent one.
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            let after = &rest[i + "crate::".len()..];
            // `$crate::` in a macro is not a module of ours.
            let macro_crate = rest[..i].ends_with('$');
            if let Some(group) = after.strip_prefix('{') {
                // `use crate::{a, b::c};`: every top-level name in the group.
                let end = group.find('}').unwrap_or_else(|| panic!("line {}: a `crate::{{` group spans lines", n + 1));
                for item in group[..end].split(',') {
                    let name: String =
                        item.trim().chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                    if !name.is_empty() && !macro_crate {
                        found.push((name, n + 1));
                    }
                }
            } else {
                let name: String = after.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                if !name.is_empty() && !macro_crate {
                    found.push((name, n + 1));
                }
            }
            rest = after;
        }
    }
    found
}

/// For each file under `dir` (a file or a folder of `src/`), the forbidden modules it names.
fn violations(dir: &str, forbidden: &[&str]) -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let root = src.join(dir);
    let mut files = Vec::new();
    if root.is_dir() {
        rust_files(&root, &mut files);
    } else {
        files.push(root);
    }
    let mut bad: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        for (module, line) in crate_paths(&text) {
            if forbidden.contains(&module.as_str()) {
                let at = format!("{}:{line}", f.strip_prefix(&src).unwrap_or(&f).display());
                bad.entry(at).or_default().insert(format!("crate::{module}"));
            }
        }
    }
    bad
}

const ALL: &[&str] = &[
    "app",
    "cache",
    "carriers",
    "cli",
    "config",
    "console",
    "crypto",
    "domain",
    "error",
    "http",
    "ids",
    "jobs",
    "queue",
    "runtime",
    "sandbox",
    "server",
    "service",
    "store",
    "telemetry",
    "tracking",
    "webhooks",
];

/// Every module but these.
fn all_but(allowed: &[&str]) -> Vec<&'static str> {
    ALL.iter().copied().filter(|m| !allowed.contains(m)).collect()
}

#[test]
fn http_talks_to_the_service_layer_only() {
    let bad = violations("http", &all_but(&["app", "domain", "error", "http", "service"]));
    assert!(bad.is_empty(), "http/ names modules below the service layer: {bad:#?}");
}

#[test]
fn nothing_below_http_imports_it() {
    for layer in ["service", "store", "carriers", "domain", "app.rs", "cache.rs"] {
        let bad = violations(layer, &["http"]);
        assert!(bad.is_empty(), "{layer} imports http: {bad:#?}");
    }
}

#[test]
fn the_console_talks_to_the_service_layer_only() {
    let bad = violations("console", &all_but(&["app", "config", "console", "domain", "error", "service"]));
    assert!(bad.is_empty(), "console/ names a module below the service layer or http: {bad:#?}");
    for layer in ["http", "service", "store", "carriers", "domain", "app.rs", "cache.rs"] {
        let bad = violations(layer, &["console"]);
        assert!(bad.is_empty(), "{layer} imports the console: {bad:#?}");
    }
}

#[test]
fn store_and_carriers_meet_in_the_domain_only() {
    let bad = violations("store", &["carriers", "service", "http", "app", "cache"]);
    assert!(bad.is_empty(), "store/ names a layer above it or the carriers: {bad:#?}");
    let bad = violations("carriers", &["store", "service", "http", "jobs", "tracking", "webhooks"]);
    assert!(bad.is_empty(), "carriers/ names the store or a layer above it: {bad:#?}");
}

#[test]
fn the_domain_knows_no_other_layer() {
    let bad = violations("domain", &all_but(&["domain"]));
    assert!(bad.is_empty(), "domain/ names another layer: {bad:#?}");
}

#[test]
fn the_service_layer_never_imports_the_worker_that_runs_it() {
    let bad = violations("service", &["jobs", "tracking", "runtime", "server", "cli", "sandbox", "http"]);
    assert!(bad.is_empty(), "service/ names a worker or a command above it: {bad:#?}");
}

#[test]
fn the_state_imports_nothing_above_it() {
    let bad = violations("app.rs", &["http", "service", "jobs", "webhooks", "tracking", "runtime", "server", "cli"]);
    assert!(bad.is_empty(), "app.rs imports a layer above it: {bad:#?}");
}

/// The top-level module a source file belongs to (`service/x.rs` → `service`).
fn module_of(file: &Path, src: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (!matches!(name, "lib" | "main")).then(|| name.to_owned())
}

/// The first import circle between top-level modules, if any, as the path that closes it.
fn first_circle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut circle = path[at..].to_vec();
            circle.push(node.to_owned());
            return Some(circle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph.keys().find_map(|start| visit(start, graph, &mut Vec::new(), &mut done))
}

#[test]
fn no_two_modules_import_each_other_even_through_others() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in files {
        let Some(module) = module_of(&f, &src) else { continue };
        let text = std::fs::read_to_string(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        for (to, _) in crate_paths(&text) {
            if to != module {
                graph.entry(module.clone()).or_default().insert(to);
            }
        }
    }
    assert!(graph.contains_key("http") && graph.contains_key("service"), "the scan found the layers: {graph:?}");
    assert_eq!(first_circle(&graph), None, "an import circle between modules; the graph: {graph:#?}");
}

#[test]
fn the_circle_finder_finds_a_circle_through_a_third_module() {
    let graph: BTreeMap<String, BTreeSet<String>> = [("a", "b"), ("b", "c"), ("c", "a"), ("d", "a")]
        .iter()
        .map(|(f, t)| (f.to_string(), BTreeSet::from([t.to_string()])))
        .collect();
    assert_eq!(first_circle(&graph), Some(vec!["a".into(), "b".into(), "c".into(), "a".into()]));
    let line: BTreeMap<String, BTreeSet<String>> =
        [("a", "b"), ("b", "c")].iter().map(|(f, t)| (f.to_string(), BTreeSet::from([t.to_string()]))).collect();
    assert_eq!(first_circle(&line), None);
}

#[test]
fn the_scanner_finds_paths_in_code_and_not_in_comments() {
    let src = "use crate::store::x;\n// crate::http in a comment\n/// crate::http in a doc\nlet a = crate::service::f(); // crate::jobs\n$crate::macros\nuse crate::{ids, jobs::kinds, store};";
    let names: Vec<String> = crate_paths(src).into_iter().map(|(m, _)| m).collect();
    assert_eq!(names, ["store", "service", "ids", "jobs", "store"]);
}
