//! The one place the minijinja environment is built: templates embedded from
//! `xtask/templates/`, each overridable by a file of the same name in `ops/templates/`,
//! strict about undefined values, Markdown never HTML-escaped, filters as plain functions.

use std::path::{Path, PathBuf};

use anyhow::Context;
use minijinja::syntax::SyntaxConfig;
use minijinja::{AutoEscape, Environment, Error, ErrorKind, UndefinedBehavior, Value};

/// Where a team puts templates that replace the embedded ones, relative to the repository.
pub const OVERRIDE_DIR: &str = "ops/templates";

/// The entry template of a report.
pub const REPORT_TEMPLATE: &str = "report.md.j2";

/// The embedded templates, by name.
pub const EMBEDDED: &[(&str, &str)] = &[
    ("report.md.j2", include_str!("../../templates/report.md.j2")),
    ("macros.md.j2", include_str!("../../templates/macros.md.j2")),
    ("header.md.j2", include_str!("../../templates/header.md.j2")),
    (
        "verdict.md.j2",
        include_str!("../../templates/verdict.md.j2"),
    ),
    (
        "decision_map.md.j2",
        include_str!("../../templates/decision_map.md.j2"),
    ),
    (
        "predeploy.md.j2",
        include_str!("../../templates/predeploy.md.j2"),
    ),
    ("smoke.md.j2", include_str!("../../templates/smoke.md.j2")),
    (
        "overlap.md.j2",
        include_str!("../../templates/overlap.md.j2"),
    ),
    (
        "history.md.j2",
        include_str!("../../templates/history.md.j2"),
    ),
    ("deploy.md.j2", include_str!("../../templates/deploy.md.j2")),
    (
        "readiness.md.j2",
        include_str!("../../templates/readiness.md.j2"),
    ),
];

/// Builds the environment. `overrides`: the directory searched first (`<repo>/ops/templates`).
pub fn environment(overrides: Option<PathBuf>) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    let syntax = SyntaxConfig::builder()
        .keep_trailing_newline(true)
        .trim_blocks(true)
        .lstrip_blocks(true)
        .build()
        .expect("the default delimiters are valid");
    env.set_syntax(syntax);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.set_loader(move |name| load(overrides.as_deref(), name));
    env.add_filter("cell", cell);
    env.add_filter("ms", ms);
    env.add_filter("pct", pct);
    env
}

fn load(overrides: Option<&Path>, name: &str) -> Result<Option<String>, Error> {
    if let Some(dir) = overrides
        && !name.contains(['/', '\\'])
    {
        let path = dir.join(name);
        match crate::files::read_text_capped(&path, crate::files::CONFIG_LIMIT) {
            Ok(text) => return Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(Error::new(
                    ErrorKind::TemplateNotFound,
                    format!("reading {}: {e}", path.display()),
                ));
            }
        }
    }
    Ok(EMBEDDED
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, text)| (*text).to_string()))
}

/// Renders `name` with `context`. Errors name the template and line.
pub fn render(env: &Environment<'_>, name: &str, context: Value) -> anyhow::Result<String> {
    let template = env
        .get_template(name)
        .map_err(describe)
        .with_context(|| format!("loading template {name} (embedded, or {OVERRIDE_DIR}/{name})"))?;
    template
        .render(context)
        .map_err(describe)
        .with_context(|| format!("rendering template {name}"))
}

/// The error with every template it passed through (an include names the outer template,
/// its source the inner one and line), then the innermost template's source excerpt.
fn describe(error: Error) -> anyhow::Error {
    let mut text = error.to_string();
    let mut innermost = &error;
    let mut source = std::error::Error::source(&error);
    while let Some(inner) = source {
        text.push_str(&format!(": {inner}"));
        if let Some(e) = inner.downcast_ref::<Error>() {
            innermost = e;
        }
        source = inner.source();
    }
    let excerpt = innermost.display_debug_info().to_string();
    if !excerpt.trim().is_empty() {
        text.push('\n');
        text.push_str(excerpt.trim_end());
    }
    anyhow::anyhow!(text)
}

/// Makes a value safe as inline Markdown, in a table cell or in a sentence (see
/// [`crate::escape::markdown_inline`]): every record-derived field goes through it.
pub fn cell(value: Value) -> String {
    if value.is_none() || value.is_undefined() {
        return String::new();
    }
    crate::escape::markdown_inline(&value.to_string())
}

/// `1234.5` → `1234.5 ms`; whole and small numbers keep a readable precision.
pub fn ms(value: f64) -> String {
    format!("{} ms", number(value))
}

/// `0.25` → `0.25 %`.
pub fn pct(value: f64) -> String {
    format!("{} %", number(value))
}

/// The figure as smoke prints it (a non-finite one reads `NaN`, `inf`).
fn number(value: f64) -> String {
    crate::smoke::stats::fmt_num(value)
}

/// Turns a serialisable context into a template value. minijinja 3 is built here without
/// its `serde` feature, so the context goes through `serde_json::Value`.
pub fn to_value(json: serde_json::Value) -> Value {
    match json {
        serde_json::Value::Null => Value::from(()),
        serde_json::Value::Bool(b) => Value::from(b),
        serde_json::Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Value::from(i),
            (None, Some(u)) => Value::from(u),
            _ => Value::from(n.as_f64().unwrap_or(f64::NAN)),
        },
        serde_json::Value::String(s) => Value::from(s),
        serde_json::Value::Array(items) => items.into_iter().map(to_value).collect(),
        serde_json::Value::Object(map) => Value::from_object(
            map.into_iter()
                .map(|(k, v)| (k, to_value(v)))
                .collect::<std::collections::BTreeMap<String, Value>>(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_escape_pipes_newlines_and_tags() {
        assert_eq!(cell(Value::from("a | b\nc")), "a \\| b<br>c");
        assert_eq!(
            cell(Value::from("p95 1.2 ms < 200 ms")),
            "p95 1.2 ms < 200 ms"
        );
        assert_eq!(
            cell(Value::from("<script>x</script>")),
            "&lt;script>x&lt;/script>"
        );
        assert_eq!(cell(Value::from(())), "");
    }

    #[test]
    fn numbers_keep_a_readable_precision() {
        assert_eq!(ms(1.234), "1.23 ms");
        assert_eq!(ms(12.34), "12.3 ms");
        assert_eq!(ms(3000.0), "3000 ms");
        assert_eq!(pct(0.5), "0.50 %");
    }

    #[test]
    fn an_unknown_variable_names_the_template_and_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("header.md.j2"), "line one\n{{ nope }}\n").unwrap();
        let env = environment(Some(dir.path().to_path_buf()));
        let error = format!(
            "{:#}",
            render(&env, "header.md.j2", to_value(serde_json::json!({}))).unwrap_err()
        );
        assert!(error.contains("header.md.j2:2"), "{error}");
        assert!(error.contains("undefined"), "{error}");
    }
}
