//! The layout docs/architecture.md describes, checked on the source: no module of the product
//! or the simulation imports one that (directly or through others) imports it back, and the
//! product's top-level modules import only along the data flow (the order in [`LAYERS`]).
//!
//! `cargo test --test architecture -- --nocapture` also prints the figures docs/architecture.md
//! quotes: lines per crate and top-level module, the arrows between top-level modules, the
//! largest files and functions of the product.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The product's top-level modules, lowest first: each may import only modules before it.
/// Leaves (shared types and helpers) come first, then the stages in data-flow order, then
/// what watches and serves them, and `app`, which wires everything.
const LAYERS: &[&str] = &[
    "util",
    "types",
    "xml",
    "room",
    "config",
    "metrics",
    "memory",
    "xmpp",
    "jingle",
    "media",
    "audio",
    "sink",
    "conference",
    "router",
    "load",
    "guard",
    "http",
    "app",
];

type Module = Vec<String>;

/// One source file of a crate: its module path and the code that is not a comment.
struct Source {
    module: Module,
    path: PathBuf,
    code: String,
    lines: usize,
    test: bool,
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn sources(src: &Path) -> Vec<Source> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files
        .into_iter()
        .map(|path| {
            let rel = path
                .strip_prefix(src)
                .expect("under src")
                .with_extension("");
            let mut module: Module = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if matches!(
                module.last().map(String::as_str),
                Some("mod" | "lib" | "main")
            ) {
                module.pop();
            }
            let text = fs::read_to_string(&path).expect("readable source");
            let test = module
                .iter()
                .any(|m| m == "tests" || m == "testutil" || m.ends_with("_tests"));
            let code = text
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            Source {
                module,
                path,
                lines: text.lines().count(),
                code,
                test,
            }
        })
        .collect()
}

/// The paths after `prefix` in `code` (`crate::a::b` gives `["a", "b"]`).
fn paths_after<'a>(code: &'a str, prefix: &str) -> Vec<Vec<&'a str>> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find(prefix) {
        let before = rest[..i].chars().next_back();
        rest = &rest[i + prefix.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(rest.len());
        let segs: Vec<&str> = rest[..end]
            .split("::")
            .take_while(|s| !s.is_empty())
            .collect();
        out.push(segs);
    }
    out
}

/// The longest prefix of `path` that is a module of the crate.
fn resolve(modules: &BTreeSet<Module>, path: &[String]) -> Option<Module> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|m| modules.contains(m))
}

/// Which modules each non-test module of the crate uses (not counting its own ancestors and
/// descendants: a module's parent declares it, and it may use its children).
fn imports(sources: &[Source]) -> BTreeMap<Module, BTreeSet<Module>> {
    let modules: BTreeSet<Module> = sources.iter().map(|s| s.module.clone()).collect();
    let mut graph: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for s in sources.iter().filter(|s| !s.test) {
        let mut targets = Vec::new();
        for p in paths_after(&s.code, "crate::") {
            targets.push(p.iter().map(|x| x.to_string()).collect::<Vec<_>>());
        }
        for p in paths_after(&s.code, "super::") {
            let mut full: Vec<String> = s.module[..s.module.len().saturating_sub(1)].to_vec();
            full.extend(p.iter().map(|x| x.to_string()));
            targets.push(full);
        }
        let entry = graph.entry(s.module.clone()).or_default();
        for t in targets {
            let Some(m) = resolve(&modules, &t) else {
                continue;
            };
            let related = s.module.starts_with(&m) || m.starts_with(&s.module);
            if !related {
                entry.insert(m);
            }
        }
    }
    graph
}

/// Every strongly connected group of more than one module (an import circle).
fn circles(graph: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<Module>> {
    let nodes: Vec<&Module> = graph.keys().collect();
    let reach = |from: &Module| {
        let mut seen: BTreeSet<Module> = BTreeSet::new();
        let mut stack = vec![from.clone()];
        while let Some(m) = stack.pop() {
            for n in graph.get(&m).into_iter().flatten() {
                if seen.insert(n.clone()) {
                    stack.push(n.clone());
                }
            }
        }
        seen
    };
    let reaches: BTreeMap<&Module, BTreeSet<Module>> =
        nodes.iter().map(|n| (*n, reach(n))).collect();
    let mut out: Vec<Vec<Module>> = Vec::new();
    for n in &nodes {
        let group: Vec<Module> = nodes
            .iter()
            .filter(|m| reaches[*n].contains(**m) && reaches[**m].contains(*n))
            .map(|m| (*m).clone())
            .collect();
        if group.len() > 1 && !out.contains(&group) {
            out.push(group);
        }
    }
    out
}

fn top_level(graph: &BTreeMap<Module, BTreeSet<Module>>) -> BTreeMap<String, BTreeSet<String>> {
    let mut top: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (from, tos) in graph {
        let Some(f) = from.first() else { continue };
        for t in tos {
            if let Some(t) = t.first()
                && t != f
            {
                top.entry(f.clone()).or_default().insert(t.clone());
            }
        }
    }
    top
}

fn show(m: &Module) -> String {
    if m.is_empty() {
        "(crate root)".into()
    } else {
        m.join("::")
    }
}

fn crate_src(name: &str) -> PathBuf {
    repo().join("crates").join(name).join("src")
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    for krate in ["jitape", "jitape-sim"] {
        let graph = imports(&sources(&crate_src(krate)));
        assert!(graph.len() > 20, "{krate}: the source was read");
        let found: Vec<String> = circles(&graph)
            .iter()
            .map(|c| c.iter().map(show).collect::<Vec<_>>().join(" <-> "))
            .collect();
        assert!(found.is_empty(), "{krate}: import circles: {found:#?}");
    }
}

#[test]
fn the_products_modules_import_only_along_the_data_flow() {
    let src = crate_src("jitape");
    let top = top_level(&imports(&sources(&src)));
    let mut declared: Vec<String> = fs::read_dir(&src)
        .expect("src")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs") || p.is_dir())
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .filter(|m| m != "lib")
        .collect();
    declared.sort();
    declared.dedup();
    let mut layered: Vec<String> = LAYERS.iter().map(|s| s.to_string()).collect();
    layered.sort();
    assert_eq!(
        declared, layered,
        "every top-level module has its place in LAYERS"
    );
    let rank = |m: &str| LAYERS.iter().position(|l| *l == m).expect("layered");
    let against: Vec<String> = top
        .iter()
        .flat_map(|(from, tos)| {
            tos.iter()
                .filter(|to| rank(to) >= rank(from))
                .map(move |to| format!("{from} -> {to}"))
        })
        .collect();
    assert!(
        against.is_empty(),
        "imports against the data flow: {against:?}"
    );
    // The link layer knows nothing of conferences.
    let xmpp = top.get("xmpp").cloned().unwrap_or_default();
    assert!(
        !xmpp.contains("conference") && !xmpp.contains("router"),
        "xmpp imports {xmpp:?}"
    );
}

/// The checker itself finds a circle and an arrow against the flow when there is one.
#[test]
fn the_checker_sees_a_circle() {
    let m = |s: &str| -> Module { s.split("::").map(String::from).collect() };
    let mut graph: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    graph
        .entry(m("sink::flac"))
        .or_default()
        .insert(m("sink::repair"));
    graph
        .entry(m("sink::repair"))
        .or_default()
        .insert(m("sink::flac"));
    graph
        .entry(m("xmpp"))
        .or_default()
        .insert(m("conference::machine"));
    assert_eq!(
        circles(&graph),
        vec![vec![m("sink::flac"), m("sink::repair")]]
    );
    assert!(top_level(&graph)["xmpp"].contains("conference"));
    let code = "use crate::sink::{flac, repair};\nlet x = super::model::owner_id(o); // crate::no";
    assert_eq!(
        paths_after(code, "crate::"),
        vec![vec!["sink"], vec!["no"]],
        "comment lines are dropped before this, not here"
    );
    assert_eq!(
        paths_after(code, "super::"),
        vec![vec!["model", "owner_id"]]
    );
}

/// Functions longer than `lines`, by length (a `fn` line to its closing brace at the same
/// indentation; the source is rustfmt-formatted).
fn long_functions(s: &Source, lines: usize) -> Vec<(usize, String)> {
    let text = fs::read_to_string(&s.path).expect("source");
    let all: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, l) in all.iter().enumerate() {
        let t = l.trim_start();
        let indent = l.len() - t.len();
        let head = [
            "pub ",
            "pub(crate) ",
            "pub(super) ",
            "async ",
            "const ",
            "unsafe ",
        ]
        .iter()
        .fold(t, |t, p| t.strip_prefix(p).unwrap_or(t));
        let head = head.strip_prefix("async ").unwrap_or(head);
        let Some(name) = head.strip_prefix("fn ") else {
            continue;
        };
        let declaration = all[i..]
            .iter()
            .find(|x| x.ends_with('{') || x.ends_with(';'))
            .is_some_and(|x| x.ends_with(';'));
        if declaration {
            continue;
        }
        let close = format!("{}}}", " ".repeat(indent));
        if let Some(end) = all[i..].iter().position(|x| *x == close)
            && end + 1 > lines
        {
            let name: String = name
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            out.push((end + 1, format!("{}::{name}", show(&s.module))));
        }
    }
    out
}

#[test]
fn figures_for_the_architecture_page() {
    let root = repo();
    println!("lines of Rust (code, comments and tests):");
    for (name, dir) in [
        ("jitape (product)", crate_src("jitape")),
        ("jitape-sim", crate_src("jitape-sim")),
        ("jitape-cli src/", root.join("src")),
    ] {
        let all = sources(&dir);
        let total: usize = all.iter().map(|s| s.lines).sum();
        let tests: usize = all.iter().filter(|s| s.test).map(|s| s.lines).sum();
        println!("  {name}: {total} ({tests} in unit tests)");
        assert!(total > 1000);
    }
    let product = sources(&crate_src("jitape"));
    let mut per_module: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for s in &product {
        let top = s.module.first().cloned().unwrap_or_else(|| "lib".into());
        let e = per_module.entry(top).or_default();
        if s.test {
            e.1 += s.lines;
        } else {
            e.0 += s.lines;
        }
    }
    println!("product modules (lines, then lines of unit tests):");
    for m in LAYERS {
        let (code, tests) = per_module.get(*m).copied().unwrap_or_default();
        println!("  {m}: {code} + {tests}");
    }
    println!("arrows between the product's top-level modules:");
    for (from, tos) in top_level(&imports(&product)) {
        println!(
            "  {from} -> {}",
            tos.into_iter().collect::<Vec<_>>().join(", ")
        );
    }
    let mut files: Vec<(usize, String)> = product
        .iter()
        .filter(|s| !s.test)
        .map(|s| {
            (
                s.lines,
                s.path
                    .strip_prefix(&root)
                    .expect("in repo")
                    .display()
                    .to_string(),
            )
        })
        .collect();
    files.sort_by(|a, b| b.cmp(a));
    println!("largest product files: {:?}", &files[..5]);
    let mut fns: Vec<(usize, String)> = product
        .iter()
        .filter(|s| !s.test)
        .flat_map(|s| long_functions(s, 60))
        .collect();
    fns.sort_by(|a, b| b.cmp(a));
    println!("product functions over 60 lines: {fns:?}");
}

/// The packages a build of `package` links (`cargo tree`, normal dependencies only, from the
/// lock file without the network).
fn linked(package: &str) -> BTreeSet<String> {
    let out = std::process::Command::new(env!("CARGO"))
        .args([
            "tree",
            "--locked",
            "--offline",
            "-e",
            "normal",
            "--prefix",
            "none",
            "-p",
            package,
        ])
        .current_dir(repo())
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

#[test]
fn the_product_links_no_test_support_and_the_binary_no_browser() {
    let product = linked("jitape");
    assert!(
        product.contains("tokio") && product.contains("axum"),
        "{product:?}"
    );
    for test_only in [
        "jitape-sim",
        "hound",
        "tokio-xmpp",
        "clap",
        "tracing-subscriber",
        "fantoccini",
        "prometheus-parse",
    ] {
        assert!(
            !product.contains(test_only),
            "the product crate links {test_only}"
        );
    }
    let binary = linked("jitape-cli");
    assert!(
        binary.contains("jitape-sim"),
        "the demo's simulation: {binary:?}"
    );
    for test_only in ["fantoccini", "webdriver"] {
        assert!(
            !binary.contains(test_only),
            "the jitape binary links {test_only}"
        );
    }
}

#[test]
fn no_source_file_is_included_by_path() {
    let mut files = Vec::new();
    for dir in ["crates", "src", "tests", "benches"] {
        rust_files(&repo().join(dir), &mut files);
    }
    assert!(files.len() > 100, "{} files", files.len());
    let marker = concat!("#[", "path");
    let by_path: Vec<&PathBuf> = files
        .iter()
        .filter(|f| fs::read_to_string(f).is_ok_and(|s| s.contains(marker)))
        .collect();
    assert!(by_path.is_empty(), "{by_path:?}");
}
