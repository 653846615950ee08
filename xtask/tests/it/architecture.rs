//! The house rules of the xtask crate, read from its source: the command line sits on top
//! (nothing below `cli/` imports it) and no module imports, directly or around a circle,
//! a module that imports it back.
//!
//! The graph is drawn from `crate::...` and `super::...` paths in every file under
//! `xtask/src/` (comments and `#[cfg(test)] mod tests` left out), each resolved to the file
//! of the longest module it names. `src/bin/` holds separate binaries and is left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One module of the crate: its path (`smoke::load`) and the file holding it.
struct Module {
    path: String,
    file: PathBuf,
}

fn source_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

/// `src/smoke/load.rs` → `smoke::load`; `src/bench/mod.rs` → `bench`; `lib.rs`/`main.rs` → ``.
fn module_path(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).expect("a file under src");
    let mut parts: Vec<String> = relative
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|last| last == "mod") {
        parts.pop();
    }
    if parts.len() == 1 && (parts[0] == "lib" || parts[0] == "main") {
        parts.clear();
    }
    parts.join("::")
}

/// The source that builds into the crate outside tests: comments dropped, and everything
/// from a `#[cfg(test)]` followed by `mod tests` on.
fn production_source(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut kept = String::new();
    for (index, line) in lines.iter().enumerate() {
        let trimmed = line.trim();
        if trimmed == "#[cfg(test)]"
            && lines.get(index + 1).is_some_and(|next| {
                next.trim().ends_with("mod tests {") || next.trim() == "mod tests;"
            })
        {
            break;
        }
        let code = match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        };
        kept.push_str(code);
        kept.push('\n');
    }
    kept
}

/// Files declared as test-only modules (`#[cfg(test)] mod tests;` in `staging.rs`).
fn is_test_module_file(file: &Path) -> bool {
    file.file_stem().is_some_and(|stem| stem == "tests")
}

/// Every path a use-tree starting at `text` (just after `crate::` or `super::`) names,
/// braces expanded: `{a, b::{c, d}}` → `a`, `b::c`, `b::d`.
fn use_tree(text: &str) -> (Vec<String>, usize) {
    let bytes = text.as_bytes();
    let mut at = 0;
    let mut prefix = String::new();
    loop {
        while at < bytes.len() && bytes[at].is_ascii_whitespace() {
            at += 1;
        }
        if at < bytes.len() && bytes[at] == b'{' {
            at += 1;
            let mut paths = Vec::new();
            loop {
                while at < bytes.len() && (bytes[at].is_ascii_whitespace() || bytes[at] == b',') {
                    at += 1;
                }
                if at >= bytes.len() || bytes[at] == b'}' {
                    at += 1;
                    break;
                }
                let (inner, used) = use_tree(&text[at..]);
                at += used.max(1);
                for path in inner {
                    paths.push(join(&prefix, &path));
                }
            }
            if paths.is_empty() {
                paths.push(prefix);
            }
            return (paths, at);
        }
        let start = at;
        while at < bytes.len() && (bytes[at].is_ascii_alphanumeric() || bytes[at] == b'_') {
            at += 1;
        }
        if at == start {
            return (vec![prefix], at);
        }
        prefix = join(&prefix, &text[start..at]);
        if text[at..].starts_with("::") {
            at += 2;
        } else {
            return (vec![prefix], at);
        }
    }
}

fn join(prefix: &str, rest: &str) -> String {
    match (prefix.is_empty(), rest.is_empty()) {
        (true, _) => rest.to_owned(),
        (_, true) => prefix.to_owned(),
        _ => format!("{prefix}::{rest}"),
    }
}

/// The module paths a file's source names through `crate::` and `super::` (the latter
/// resolved against the file's own module, `super::super::` included).
fn referenced_paths(own: &str, source: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(offset) = source[from..].find("crate::") {
        let at = from + offset;
        let preceded_by_ident = source[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
        let (paths, used) = use_tree(&source[at + "crate::".len()..]);
        if !preceded_by_ident {
            found.extend(paths);
        }
        from = at + "crate::".len() + used;
    }
    // `super` in `a/b.rs` and in `a/b/mod.rs` (both module `a::b`) is `a`.
    let mut from = 0;
    while let Some(offset) = source[from..].find("super::") {
        let at = from + offset;
        let preceded_by_path = source[..at].ends_with("::")
            || source[..at]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        let mut base: Vec<&str> = if own.is_empty() {
            Vec::new()
        } else {
            own.split("::").collect()
        };
        let mut rest = &source[at..];
        while let Some(after) = rest.strip_prefix("super::") {
            base.pop();
            rest = after;
        }
        let consumed = source[at..].len() - rest.len();
        let (paths, used) = use_tree(rest);
        if !preceded_by_path {
            for path in paths {
                found.push(join(&base.join("::"), &path));
            }
        }
        from = at + consumed + used;
    }
    found
}

/// The module of the crate a path lands in: its longest prefix that is a module.
fn resolve<'a>(path: &str, modules: &'a BTreeMap<String, Module>) -> Option<&'a Module> {
    let parts: Vec<&str> = path.split("::").collect();
    (1..=parts.len())
        .rev()
        .find_map(|len| modules.get(&parts[..len].join("::")))
}

struct Graph {
    modules: BTreeMap<String, Module>,
    edges: BTreeMap<String, BTreeSet<String>>,
}

fn graph() -> Graph {
    let src = source_dir();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut modules = BTreeMap::new();
    for file in files {
        if file.starts_with(src.join("bin")) || is_test_module_file(&file) {
            continue;
        }
        let path = module_path(&src, &file);
        if path.is_empty() && file.ends_with("main.rs") {
            continue;
        }
        modules.insert(path.clone(), Module { path, file });
    }
    let mut edges = BTreeMap::new();
    for module in modules.values() {
        let text = std::fs::read_to_string(&module.file).expect("a readable source file");
        let mut targets = BTreeSet::new();
        for path in referenced_paths(&module.path, &production_source(&text)) {
            if let Some(target) = resolve(&path, &modules)
                && target.path != module.path
            {
                targets.insert(target.path.clone());
            }
        }
        edges.insert(module.path.clone(), targets);
    }
    Graph { modules, edges }
}

/// The strongly connected components with more than one module (Tarjan's algorithm).
fn circles(graph: &Graph) -> Vec<Vec<String>> {
    struct State<'g> {
        edges: &'g BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        next: usize,
        found: Vec<Vec<String>>,
    }
    fn visit<'g>(state: &mut State<'g>, node: &'g str) {
        state.index.insert(node, state.next);
        state.low.insert(node, state.next);
        state.next += 1;
        state.stack.push(node);
        state.on_stack.insert(node);
        for target in &state.edges[node] {
            let target = target.as_str();
            if !state.index.contains_key(target) {
                visit(state, target);
                let low = state.low[node].min(state.low[target]);
                state.low.insert(node, low);
            } else if state.on_stack.contains(target) {
                let low = state.low[node].min(state.index[target]);
                state.low.insert(node, low);
            }
        }
        if state.low[node] == state.index[node] {
            let mut component = Vec::new();
            while let Some(member) = state.stack.pop() {
                state.on_stack.remove(member);
                component.push(member.to_owned());
                if member == node {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                state.found.push(component);
            }
        }
    }
    let mut state = State {
        edges: &graph.edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        found: Vec::new(),
    };
    for node in graph.edges.keys() {
        if !state.index.contains_key(node.as_str()) {
            visit(&mut state, node);
        }
    }
    state.found
}

fn file_of(graph: &Graph, module: &str) -> String {
    let file = &graph.modules[module].file;
    file.strip_prefix(source_dir().parent().expect("xtask/"))
        .unwrap_or(file)
        .display()
        .to_string()
}

#[test]
fn nothing_below_the_command_line_imports_it() {
    let graph = graph();
    let offenders: Vec<String> = graph
        .edges
        .iter()
        .filter(|(from, _)| !(from.is_empty() || *from == "cli" || from.starts_with("cli::")))
        .filter(|(_, targets)| {
            targets
                .iter()
                .any(|target| target == "cli" || target.starts_with("cli::"))
        })
        .map(|(from, _)| file_of(&graph, from))
        .collect();
    assert!(
        offenders.is_empty(),
        "these modules import `crate::cli`; take the values they need as parameters and \
         leave parsing to `xtask/src/cli/`: {offenders:#?}"
    );
}

#[test]
fn the_module_graph_has_no_circle() {
    let graph = graph();
    let found = circles(&graph);
    let described: Vec<String> = found
        .iter()
        .map(|component| {
            let files: Vec<String> = component.iter().map(|m| file_of(&graph, m)).collect();
            format!("{} files: {}", files.len(), files.join(", "))
        })
        .collect();
    assert!(
        found.is_empty(),
        "{} import circle(s) among xtask's modules; move the shared piece into a module both \
         sides import, or pass it as a parameter:\n{}",
        found.len(),
        described.join("\n")
    );
}

#[test]
fn the_reader_resolves_grouped_and_relative_imports() {
    // The check is only as good as its reading of paths: one example of each form.
    let source = "use crate::{a::B, c::{d, e::F}};\nuse super::sibling::G;\nlet x = crate::h::i();";
    let mut paths = referenced_paths("top::me", source);
    paths.sort();
    assert_eq!(
        paths,
        ["a::B", "c::d", "c::e::F", "h::i", "top::sibling::G"]
    );
    let skipped = production_source(
        "use crate::a;\n// crate::b\n#[cfg(test)]\nmod tests {\n use crate::c;\n}",
    );
    assert_eq!(skipped.trim(), "use crate::a;");
}
