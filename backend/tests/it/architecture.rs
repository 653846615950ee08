//! The backend's modules import each other one way: `http` over `store` over `db` over the
//! leaves (`config`, `error`). A circle of imports means no layer can be read, tested or
//! replaced without the others; this test finds any.
//!
//! It reads every file under `backend/src` (leaving out `#[cfg(test)]` items, which may look
//! anywhere), collects the paths it names in code (`use` lines and `crate::a::b` paths; never
//! comments or strings), resolves each to the file of the deepest module it names, and looks
//! for strongly connected components of that file graph with more than one file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A token of Rust source, as far as paths are concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Ident(String),
    PathSep,
    Punct(char),
}

/// `source` with comments, strings and character literals blanked out (line breaks kept,
/// so line numbers still hold).
fn code_only(source: &str) -> Vec<char> {
    let chars: Vec<char> = source.chars().collect();
    let mut out = chars.clone();
    let blank = |out: &mut Vec<char>, from: usize, to: usize| {
        for c in &mut out[from..to.min(chars.len())] {
            if *c != '\n' {
                *c = ' ';
            }
        }
    };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let start = i;
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == 'r' && (next == Some('#') || next == Some('"')) && raw_string_at(&chars, i) {
            i = skip_raw_string(&chars, i + 1);
        } else if c == 'b' && next == Some('"') && (i == 0 || !chars[i - 1].is_alphanumeric()) {
            i = skip_string(&chars, i + 1);
        } else if c == '"' {
            i = skip_string(&chars, i);
        } else if c == '\'' {
            i = skip_quote(&chars, i);
            if i == start + 1 {
                // A lifetime: only its quote goes.
                out[start] = ' ';
            }
            if i > start + 1 {
                blank(&mut out, start, i);
            }
            continue;
        } else {
            i += 1;
            continue;
        }
        blank(&mut out, start, i);
    }
    out
}

/// Tokens of `source` with comments, strings and character literals left out.
fn tokens(source: &str) -> Vec<Token> {
    let chars = code_only(source);
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(Token::Ident(chars[start..i].iter().collect()));
        } else if c == ':' && chars.get(i + 1) == Some(&':') {
            out.push(Token::PathSep);
            i += 2;
        } else {
            if !c.is_whitespace() {
                out.push(Token::Punct(c));
            }
            i += 1;
        }
    }
    out
}

/// Every function with a body in `source`: its name, first line and length in lines.
fn function_lengths(source: &str) -> Vec<(String, usize, usize)> {
    let chars = code_only(source);
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    let line_of = |at: usize| chars[..at].iter().filter(|c| **c == '\n').count() + 1;
    let mut found = Vec::new();
    let mut i = 0;
    while i + 2 < chars.len() {
        let keyword = chars[i] == 'f'
            && chars[i + 1] == 'n'
            && chars[i + 2].is_whitespace()
            && (i == 0 || !is_ident(chars[i - 1]));
        if !keyword {
            i += 1;
            continue;
        }
        let mut j = i + 2;
        while j < chars.len() && chars[j].is_whitespace() {
            j += 1;
        }
        let name: String = chars[j..].iter().take_while(|c| is_ident(**c)).collect();
        while j < chars.len() && chars[j] != '{' && chars[j] != ';' {
            j += 1;
        }
        if j < chars.len() && chars[j] == '{' {
            let mut depth = 0;
            let mut end = j;
            while end < chars.len() {
                match chars[end] {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    _ => {}
                }
                end += 1;
            }
            let first = line_of(i);
            found.push((name, first, line_of(end.min(chars.len() - 1)) - first + 1));
        }
        i = j.max(i + 1);
    }
    found
}

fn raw_string_at(chars: &[char], at: usize) -> bool {
    let mut i = at + 1;
    while chars.get(i) == Some(&'#') {
        i += 1;
    }
    chars.get(i) == Some(&'"') && (at == 0 || !(chars[at - 1].is_alphanumeric()))
}

/// Skips `#*"..."#*` starting at the first `#` or `"`; returns the index after it.
fn skip_raw_string(chars: &[char], mut i: usize) -> usize {
    let mut hashes = 0;
    while chars[i] == '#' {
        hashes += 1;
        i += 1;
    }
    i += 1;
    while i < chars.len() {
        if chars[i] == '"' && (0..hashes).all(|h| chars.get(i + 1 + h) == Some(&'#')) {
            return i + 1 + hashes;
        }
        i += 1;
    }
    i
}

/// Skips `"..."` starting at the quote; returns the index after it.
fn skip_string(chars: &[char], mut i: usize) -> usize {
    i += 1;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            '"' => return i + 1,
            _ => i += 1,
        }
    }
    i
}

/// Skips a character literal, or only the quote of a lifetime (`'a`).
fn skip_quote(chars: &[char], i: usize) -> usize {
    if chars.get(i + 1) == Some(&'\\') {
        let mut j = i + 2;
        while j < chars.len() && chars[j] != '\'' {
            j += 1;
        }
        return j + 1;
    }
    if chars.get(i + 2) == Some(&'\'') {
        return i + 3;
    }
    i + 1
}

/// Leaves out every item marked `#[cfg(test)]` (the item after the attribute, up to its `;`
/// or its matching `}`).
fn without_test_items(tokens: Vec<Token>) -> Vec<Token> {
    let marker: Vec<Token> = ["#", "[", "cfg", "(", "test", ")", "]"]
        .iter()
        .map(|t| match *t {
            "cfg" | "test" => Token::Ident((*t).to_owned()),
            p => Token::Punct(p.chars().next().unwrap()),
        })
        .collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        if tokens[i..].starts_with(&marker) {
            i += marker.len();
            let mut depth = 0;
            while i < tokens.len() {
                match tokens[i] {
                    Token::Punct('{') => depth += 1,
                    Token::Punct('}') => {
                        depth -= 1;
                        if depth == 0 {
                            i += 1;
                            break;
                        }
                    }
                    Token::Punct(';') if depth == 0 => {
                        i += 1;
                        break;
                    }
                    _ => {}
                }
                i += 1;
            }
        } else {
            out.push(tokens[i].clone());
            i += 1;
        }
    }
    out
}

/// The paths a `use` tree names, from `tokens[*i]` (just after `use`) to its `;`.
fn use_paths(tokens: &[Token], i: &mut usize, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    let mut path = prefix;
    while *i < tokens.len() {
        match &tokens[*i] {
            Token::Ident(name) if name == "as" => {
                *i += 2;
            }
            Token::Ident(name) => {
                path.push(name.clone());
                *i += 1;
            }
            Token::PathSep => *i += 1,
            Token::Punct('{') => {
                *i += 1;
                loop {
                    use_paths(tokens, i, path.clone(), out);
                    match tokens.get(*i) {
                        Some(Token::Punct(',')) => *i += 1,
                        Some(Token::Punct('}')) => {
                            *i += 1;
                            break;
                        }
                        _ => break,
                    }
                    if tokens.get(*i) == Some(&Token::Punct('}')) {
                        *i += 1;
                        break;
                    }
                }
                return;
            }
            Token::Punct('*') => {
                *i += 1;
            }
            _ => {
                if !path.is_empty() {
                    out.push(path);
                }
                return;
            }
        }
    }
}

/// Every path the tokens name: `use` trees in full, and `a::b::c` chains elsewhere.
fn named_paths(tokens: &[Token]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        match &tokens[i] {
            Token::Ident(word) if word == "use" => {
                i += 1;
                use_paths(tokens, &mut i, Vec::new(), &mut out);
            }
            Token::Ident(first) if tokens.get(i + 1) == Some(&Token::PathSep) => {
                let preceded_by_sep = i > 0 && tokens[i - 1] == Token::PathSep;
                let mut path = vec![first.clone()];
                i += 1;
                while tokens.get(i) == Some(&Token::PathSep) {
                    match tokens.get(i + 1) {
                        Some(Token::Ident(name)) => {
                            path.push(name.clone());
                            i += 2;
                        }
                        _ => {
                            i += 1;
                            break;
                        }
                    }
                }
                if !preceded_by_sep {
                    out.push(path);
                }
            }
            _ => i += 1,
        }
    }
    out
}

/// The module path of a source file: `src/lib.rs` is `[]`, `src/http/mod.rs` and
/// `src/http.rs` are `["http"]`.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

/// The macros a file exports at the crate root (`#[macro_export] macro_rules! name`): a
/// path `crate::name` names the file that defines them, not `lib.rs`.
fn exported_macros(tokens: &[Token]) -> Vec<String> {
    let marker = [
        Token::Punct('#'),
        Token::Punct('['),
        Token::Ident("macro_export".to_owned()),
        Token::Punct(']'),
        Token::Ident("macro_rules".to_owned()),
        Token::Punct('!'),
    ];
    tokens
        .windows(marker.len() + 1)
        .filter(|w| w[..marker.len()] == marker)
        .filter_map(|w| match &w[marker.len()] {
            Token::Ident(name) => Some(name.clone()),
            _ => None,
        })
        .collect()
}

/// The file of the deepest module `path` names, seen from module `from`, if it is this
/// crate's.
fn resolve(
    modules: &BTreeMap<Vec<String>, PathBuf>,
    from: &[String],
    path: &[String],
) -> Option<PathBuf> {
    let mut absolute: Vec<String> = Vec::new();
    let mut rest = path;
    match path.first().map(String::as_str) {
        Some("crate") => rest = &path[1..],
        Some("self") => {
            absolute = from.to_vec();
            rest = &path[1..];
        }
        Some("super") => {
            absolute = from.to_vec();
            while rest.first().map(String::as_str) == Some("super") {
                absolute.pop();
                rest = &rest[1..];
            }
        }
        Some(first) => {
            // A child module named without `crate::` (`http::server::serve` in lib.rs).
            let mut child = from.to_vec();
            child.push(first.to_owned());
            if !modules.contains_key(&child) {
                return None;
            }
            absolute = from.to_vec();
        }
        None => return None,
    }
    absolute.extend(rest.iter().cloned());
    if let Some(first) = absolute.first()
        && let Some(file) = modules.get(&vec![format!("macro!{first}")])
    {
        return Some(file.clone());
    }
    while !absolute.is_empty() && !modules.contains_key(&absolute) {
        absolute.pop();
    }
    modules.get(&absolute).cloned()
}

fn source_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            source_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The import graph of the library under `src`: file -> files it imports (itself left out).
/// `main.rs` is the binary, which reaches the library by its name, so it is left out.
fn import_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    source_files(src, &mut files);
    files.retain(|f| {
        f.file_name()
            .is_some_and(|n| n != "main.rs" && n != "build.rs")
    });
    let mut modules: BTreeMap<Vec<String>, PathBuf> = files
        .iter()
        .map(|f| (module_of(src, f), f.clone()))
        .collect();
    for file in &files {
        let source = std::fs::read_to_string(file).unwrap();
        for name in exported_macros(&tokens(&source)) {
            modules.insert(vec![format!("macro!{name}")], file.clone());
        }
    }
    let name = |f: &Path| f.strip_prefix(src).unwrap().display().to_string();
    let mut graph = BTreeMap::new();
    for file in &files {
        let source = std::fs::read_to_string(file).unwrap();
        let from = module_of(src, file);
        let imports: BTreeSet<String> = named_paths(&without_test_items(tokens(&source)))
            .iter()
            .filter_map(|path| resolve(&modules, &from, path))
            .filter(|target| target != file)
            .map(|target| name(&target))
            .collect();
        graph.insert(name(file), imports);
    }
    graph
}

/// The strongly connected components with more than one file (Tarjan's algorithm).
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct Walk<'g> {
        graph: &'g BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        found: Vec<Vec<String>>,
    }
    impl<'g> Walk<'g> {
        fn visit(&mut self, node: &'g str) {
            let n = self.index.len();
            self.index.insert(node, n);
            self.low.insert(node, n);
            self.stack.push(node);
            self.on_stack.insert(node);
            for next in self.graph.get(node).into_iter().flatten() {
                let next = next.as_str();
                if !self.index.contains_key(next) {
                    self.visit(next);
                    let low = self.low[node].min(self.low[next]);
                    self.low.insert(node, low);
                } else if self.on_stack.contains(next) {
                    let low = self.low[node].min(self.index[next]);
                    self.low.insert(node, low);
                }
            }
            if self.low[node] == self.index[node] {
                let mut component = Vec::new();
                loop {
                    let member = self.stack.pop().unwrap();
                    self.on_stack.remove(member);
                    component.push(member.to_owned());
                    if member == node {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.found.push(component);
                }
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for node in graph.keys() {
        if !walk.index.contains_key(node.as_str()) {
            walk.visit(node);
        }
    }
    walk.found
}

/// Describes a circle: its files and, for each, what it imports inside the circle.
fn describe(graph: &BTreeMap<String, BTreeSet<String>>, component: &[String]) -> String {
    let members: BTreeSet<&String> = component.iter().collect();
    let mut text = format!("a circle of {} files:\n", component.len());
    for file in component {
        let inside: Vec<&str> = graph[file]
            .iter()
            .filter(|t| members.contains(t))
            .map(String::as_str)
            .collect();
        text.push_str(&format!("  {file} -> {}\n", inside.join(", ")));
    }
    text
}

#[test]
fn the_backend_has_no_import_circle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = import_graph(&src);
    assert!(graph.len() > 20, "read only {} files", graph.len());
    let found = cycles(&graph);
    let text: String = found.iter().map(|c| describe(&graph, c)).collect();
    assert!(
        found.is_empty(),
        "the backend's modules import each other in a circle; move the shared type into the \
         lower module (docs/architecture.md: \"Layers import one way\"):\n{text}"
    );
}

/// The longest function allowed in `src/`, in lines: past it, a function does several things.
const MAX_FUNCTION_LINES: usize = 100;

#[test]
fn no_function_is_longer_than_a_hundred_lines() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    source_files(&src, &mut files);
    let mut long = Vec::new();
    for file in &files {
        let source = std::fs::read_to_string(file).unwrap();
        for (name, line, length) in function_lengths(&source) {
            if length > MAX_FUNCTION_LINES {
                let place = file.strip_prefix(&src).unwrap().display();
                long.push(format!("{place}:{line} fn {name}: {length} lines"));
            }
        }
    }
    assert!(
        long.is_empty(),
        "split these functions (at most {MAX_FUNCTION_LINES} lines each):\n{}",
        long.join("\n")
    );
}

/// The layers below HTTP: what they may not import.
const BELOW_HTTP: [(&str, &[&str]); 3] = [
    ("store/", &["http/", "error.rs", "lib.rs"]),
    ("db", &["http/", "error.rs", "store/", "lib.rs"]),
    ("config", &["http/", "error.rs", "store/", "db", "lib.rs"]),
];

#[test]
fn the_store_and_below_speak_no_http() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = import_graph(&src);
    let mut problems = Vec::new();
    for (file, imports) in &graph {
        for (layer, forbidden) in BELOW_HTTP {
            if !file.starts_with(layer) {
                continue;
            }
            for import in imports {
                if forbidden.iter().any(|f| import.starts_with(f)) {
                    problems.push(format!("{file} imports {import}"));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "a lower layer imports a higher one (the store returns StoreError, which \
         the HTTP layer maps to ApiError):\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_reader_sees_paths_in_code_only() {
    let source = r#"
        use crate::config::{Secret, edge::{EdgeConfig}};
        use super::rate_limit::*;
        // use crate::nothing;
        /// [`crate::doc_only`]
        const SQL: &str = "SELECT 1::int, crate::text";
        fn f<'a>(x: &'a str) -> char { let _ = crate::error::ApiError::Expired; 'x' }
        #[cfg(test)]
        mod tests { use crate::http::app; }
    "#;
    let paths = named_paths(&without_test_items(tokens(source)));
    let shown: Vec<String> = paths.iter().map(|p| p.join("::")).collect();
    assert_eq!(
        shown,
        [
            "crate::config::Secret",
            "crate::config::edge::EdgeConfig",
            "super::rate_limit",
            "crate::error::ApiError::Expired",
        ]
    );
}

#[test]
fn function_lengths_count_lines_of_code_bodies() {
    let source = "fn short() { let s = \"}\"; }\n\nfn long<'a>(x: &'a str) {\n    // }\n    let c = '}';\n}\nfn declared();\n";
    assert_eq!(
        function_lengths(source),
        [("short".to_owned(), 1, 1), ("long".to_owned(), 3, 4)]
    );
}

#[test]
fn a_circle_is_found_and_named() {
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("config.rs", vec!["http/edge.rs"]),
        ("http/edge.rs", vec!["error.rs", "config.rs"]),
        ("error.rs", vec![]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.into_iter().map(str::to_owned).collect()))
    .collect();
    let found = cycles(&graph);
    assert_eq!(
        found,
        [vec!["config.rs".to_owned(), "http/edge.rs".to_owned()]]
    );
    assert!(describe(&graph, &found[0]).contains("http/edge.rs -> config.rs"));
}
