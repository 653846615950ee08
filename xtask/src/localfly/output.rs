//! What the read-only commands print, in flyctl's JSON shapes: Go-style keys for releases and
//! apps (`Version`, `ImageRef`, ...), the Machines API's snake_case for machines.

use serde_json::{Value, json};

use super::machine::{self, Prober};
use super::state::{App, Machine};

/// How many releases `releases` lists: flyctl asks for the newest 25
/// (`internal/command/apps/releases.go`, `GetAppReleasesMachines(ctx, appName, "", 25)`).
pub const RELEASE_WINDOW: usize = 25;

/// How many log lines one `logs --no-tail` prints: one page of the log API, as flyctl's
/// poll returns after the first non-empty page (`logs/polling.go`, `if opts.NoTail`).
pub const LOG_PAGE: usize = 100;

/// `releases --json [--image]`: the newest [`RELEASE_WINDOW`], newest first, like flyctl.
pub fn releases(app: &App, with_image: bool) -> Value {
    let list: Vec<Value> = app
        .releases
        .iter()
        .rev()
        .take(RELEASE_WINDOW)
        .map(|release| {
            let mut value = json!({
                "ID": format!("rel_{}_{}", app.name, release.version),
                "Version": release.version,
                "Stable": release.status == "complete",
                "InProgress": release.status == "running",
                "Reason": "",
                "Description": release.description,
                "Status": release.status,
                "DeploymentStrategy": release.strategy,
                "User": { "ID": "localfly", "Email": "localfly@example.com", "Name": "localfly" },
                "EvaluationID": "",
                "CreatedAt": release.created_at,
            });
            if with_image {
                value["ImageRef"] = json!(release.image_ref);
            }
            value
        })
        .collect();
    Value::Array(list)
}

/// One machine as `machines list --json` prints it, its state and checks as they are now.
pub fn machine(app: &App, machine: &Machine, prober: &Prober) -> Value {
    let image = app.image(&machine.image_ref);
    let broken = image.is_some_and(|i| i.checks_never_pass);
    let running = machine::alive(machine);
    let state = if running {
        machine.state.as_str()
    } else {
        "stopped"
    };
    let checks: Vec<Value> = app
        .checks
        .iter()
        .map(|check| {
            let (passing, output) = prober.probe(machine, check, broken);
            json!({
                "name": check.name,
                "status": if passing { "passing" } else { "critical" },
                "output": output,
                "updated_at": chrono::Utc::now(),
            })
        })
        .collect();
    // The Machines API reports the image it resolved (repository, tag, digest) beside the
    // config's ref, which stays as given: by tag, or by digest alone.
    let resolved = image.map_or(machine.image_ref.as_str(), |i| i.reference.as_str());
    let (repository, tag) = resolved
        .split('@')
        .next()
        .unwrap_or(resolved)
        .trim_start_matches("registry.fly.io/")
        .split_once(':')
        .unwrap_or((resolved, "latest"));
    let digest = image.map_or("", |i| i.digest.as_str());
    json!({
        "id": machine.id,
        "name": format!("{}-{}", app.name, &machine.id[..6.min(machine.id.len())]),
        "state": state,
        "region": app.regions.region_of(&app.region, &machine.id),
        "instance_id": format!("01LOCAL{}", machine.id.to_ascii_uppercase()),
        "private_ip": "127.0.0.1",
        "image_ref": {
            "registry": "registry.fly.io",
            "repository": repository,
            "tag": tag,
            "digest": digest,
            "labels": {},
        },
        "config": {
            "image": machine.image_ref,
            "metadata": machine.kind.metadata(),
        },
        "checks": checks,
        "created_at": machine.created_at,
        "updated_at": machine.updated_at,
    })
}

/// `machines list --json`.
pub fn machines(app: &App, prober: &Prober) -> Value {
    Value::Array(
        app.machines
            .values()
            .map(|m| machine(app, m, prober))
            .collect(),
    )
}

/// `status --json`: the app and its machines.
pub fn status(app: &App, prober: &Prober) -> Value {
    let mut value = app_summary(app);
    value["Machines"] = machines(app, prober);
    value
}

/// One app as `apps list --json` lists it.
pub fn app_summary(app: &App) -> Value {
    let deployed = app.releases.iter().any(|r| r.status == "complete");
    json!({
        "ID": app.name,
        "Name": app.name,
        "Status": if deployed { "deployed" } else { "pending" },
        "Deployed": deployed,
        "Hostname": format!("{}.fly.dev", app.name),
        "AppURL": format!("http://127.0.0.1:{}", app.port),
        "Version": app.current_release().map_or(0, |r| r.version),
        "Organization": { "Slug": "personal", "Name": "localfly" },
    })
}

/// `secrets list --json`: names, digests and status, never values.
pub fn secrets(app: &App) -> Value {
    Value::Array(
        app.secrets
            .iter()
            .map(|(name, secret)| {
                json!({ "name": name, "digest": secret.digest, "status": secret.status })
            })
            .collect(),
    )
}

/// `logs --no-tail`: one page (the newest [`LOG_PAGE`] lines) of every machine's output as
/// flyctl prints it (`<time> app[<machine>] <region> [info] <line>`), ordered by time across
/// machines. The time is the service's own JSON `timestamp` when the line has one.
pub fn logs(app: &App) -> Vec<String> {
    let mut lines: Vec<(String, String)> = Vec::new();
    for machine in app.machines.values() {
        let text = std::fs::read_to_string(&machine.log).unwrap_or_default();
        let mut time = machine.created_at.to_rfc3339();
        for line in text.lines() {
            if let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(line)
                && let Some(Value::String(stamp)) = fields.get("timestamp")
            {
                time = stamp.clone();
            }
            let shown = format!("{time} app[{}] {} [info] {line}", machine.id, app.region);
            lines.push((time.clone(), shown));
        }
    }
    lines.sort_by(|a, b| a.0.cmp(&b.0));
    let skip = lines.len().saturating_sub(LOG_PAGE);
    lines.into_iter().skip(skip).map(|(_, line)| line).collect()
}
