//! What a deploy reads from fly.toml: the release command, the strategy, `[env]` and the HTTP
//! checks of `[http_service]` (and top-level `[checks]` of type http).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;

use super::state::{AutoStop, HttpCheck};

/// The deploy-relevant part of a fly.toml.
#[derive(Debug, Clone, Default)]
pub struct FlyToml {
    /// `[deploy] release_command`, split on whitespace as Fly runs it.
    pub release_command: Option<Vec<String>>,
    /// `[deploy] strategy`.
    pub strategy: Option<String>,
    /// `[env]`.
    pub env: BTreeMap<String, String>,
    /// The HTTP checks every machine must pass.
    pub checks: Vec<HttpCheck>,
    /// `[http_service]`'s auto-stop and auto-start.
    pub auto_stop: AutoStop,
}

/// `[http_service]`'s `auto_stop_machines` (`"stop"`, `"suspend"`, `true`; `"off"`, `false`),
/// `auto_start_machines` and `min_machines_running`, as
/// https://fly.io/docs/reference/configuration/#the-http_service-section describes them
/// (a suspended machine is modelled as a stopped one).
fn auto_stop(service: Option<&toml::Value>) -> AutoStop {
    let get = |key: &str| service.and_then(|s| s.get(key));
    let stop = match get("auto_stop_machines") {
        Some(toml::Value::String(mode)) => matches!(mode.as_str(), "stop" | "suspend"),
        Some(toml::Value::Boolean(on)) => *on,
        _ => false,
    };
    AutoStop {
        stop,
        start: get("auto_start_machines")
            .and_then(toml::Value::as_bool)
            .unwrap_or(false),
        min_running: get("min_machines_running")
            .and_then(toml::Value::as_integer)
            .map_or(0, |n| usize::try_from(n).unwrap_or(0)),
    }
}

/// Reads `path`.
pub fn read(path: &Path) -> anyhow::Result<FlyToml> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("failed loading app config from {}", path.display()))?;
    let value: toml::Table =
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let deploy = value.get("deploy").and_then(|d| d.as_table());
    let release_command = deploy
        .and_then(|d| d.get("release_command"))
        .and_then(|c| c.as_str())
        .map(|c| c.split_whitespace().map(String::from).collect::<Vec<_>>())
        .filter(|c| !c.is_empty());
    let strategy = deploy
        .and_then(|d| d.get("strategy"))
        .and_then(|s| s.as_str())
        .map(String::from);
    let env = value
        .get("env")
        .and_then(|e| e.as_table())
        .map(|table| {
            table
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str().map_or_else(|| v.to_string(), String::from),
                    )
                })
                .collect()
        })
        .unwrap_or_default();

    let mut checks = Vec::new();
    let service = value.get("http_service");
    let port = service
        .and_then(|s| s.get("internal_port"))
        .and_then(|p| p.as_integer())
        .unwrap_or(8080);
    let service_checks = service
        .and_then(|s| s.get("checks"))
        .and_then(|c| c.as_array());
    for (index, check) in service_checks.into_iter().flatten().enumerate() {
        let path = check.get("path").and_then(|p| p.as_str()).unwrap_or("/");
        checks.push(HttpCheck {
            path: path.into(),
            // Fly's name for a service check.
            name: format!("servicecheck-{index:02}-http-{port}"),
        });
    }
    if let Some(named) = value.get("checks").and_then(|c| c.as_table()) {
        for (name, check) in named {
            if check.get("type").and_then(|t| t.as_str()) == Some("http") {
                let path = check.get("path").and_then(|p| p.as_str()).unwrap_or("/");
                checks.push(HttpCheck {
                    path: path.into(),
                    name: name.clone(),
                });
            }
        }
    }
    Ok(FlyToml {
        release_command,
        strategy,
        env,
        checks,
        auto_stop: auto_stop(service),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_projects_fly_toml() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fly.toml");
        let fly = read(&path).unwrap();
        assert_eq!(
            fly.release_command,
            Some(vec!["cabanas".to_string(), "migrate".to_string()])
        );
        assert_eq!(fly.strategy.as_deref(), Some("rolling"));
        assert_eq!(fly.checks.len(), 1);
        assert_eq!(fly.checks[0].path, "/api/v1/readyz");
        assert_eq!(fly.checks[0].name, "servicecheck-00-http-8080");
        assert_eq!(fly.env.get("PORT").map(String::as_str), Some("8080"));
        assert_eq!(
            fly.auto_stop,
            AutoStop {
                stop: true,
                start: true,
                min_running: 1
            }
        );
    }
}
