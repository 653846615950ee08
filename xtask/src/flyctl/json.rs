//! Typed readers for the JSON that `flyctl ... --json` prints. flyctl has changed these shapes
//! over the years; each reader accepts every shape seen so far, so an older or newer flyctl on
//! a developer's machine does not break a deploy.

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One secret as `flyctl secrets list --json` reports it: never the value, only its digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretInfo {
    /// The secret's name.
    pub name: String,
    /// Fly's digest of the value (lets a reviewer see that a value changed, not what it is).
    pub digest: Option<String>,
    /// `Deployed` / `Staged` in the newest shape; absent in the older ones.
    pub status: Option<String>,
    /// When the value was last set, as flyctl printed it (older shapes only).
    pub updated_at: Option<String>,
}

/// Every shape `secrets list --json` has had: `Name/Digest/CreatedAt`, then
/// `name/digest/updated_at/created_at`, now `name/digest/status`.
#[derive(Debug, Deserialize)]
struct RawSecret {
    #[serde(alias = "Name")]
    name: String,
    #[serde(default, alias = "Digest")]
    digest: Option<String>,
    #[serde(default, alias = "Status")]
    status: Option<String>,
    #[serde(default, alias = "UpdatedAt")]
    updated_at: Option<String>,
    #[serde(default, alias = "CreatedAt")]
    created_at: Option<String>,
}

/// Parses the output of `flyctl secrets list --json` in any of its historical shapes.
/// A `null` (an app without secrets, in some versions) is an empty list.
pub fn parse_secrets_list(json: &str) -> anyhow::Result<Vec<SecretInfo>> {
    let raw: Option<Vec<RawSecret>> = serde_json::from_str(json.trim())
        .context("`flyctl secrets list --json` printed something that is not a list of secrets")?;
    Ok(raw
        .unwrap_or_default()
        .into_iter()
        .map(|s| SecretInfo {
            name: s.name,
            digest: s.digest.filter(|d| !d.is_empty()),
            status: s.status.filter(|d| !d.is_empty()),
            updated_at: s.updated_at.or(s.created_at).filter(|d| !d.is_empty()),
        })
        .collect())
}

/// One release of a Fly app, from `flyctl releases --image --json` (Go-style keys).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    /// The release number, increasing.
    pub version: u64,
    /// Fly's status word (`complete`, `failed`, `running`, ...), lower-cased.
    pub status: String,
    /// The Docker image the release ran, e.g. `registry.fly.io/app:deployment-01J...`.
    pub image_ref: Option<String>,
    /// When the release was created.
    pub created_at: Option<DateTime<Utc>>,
    /// Fly's description (`Deploy image`, `Release`, ...).
    pub description: Option<String>,
    /// Who made it, when flyctl says.
    pub user: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RawRelease {
    #[serde(alias = "version")]
    #[serde(rename = "Version")]
    version: u64,
    #[serde(default, rename = "Status", alias = "status")]
    status: Option<String>,
    #[serde(default, rename = "ImageRef", alias = "image_ref", alias = "imageRef")]
    image_ref: Option<String>,
    #[serde(
        default,
        rename = "CreatedAt",
        alias = "created_at",
        alias = "createdAt"
    )]
    created_at: Option<DateTime<Utc>>,
    #[serde(default, rename = "Description", alias = "description")]
    description: Option<String>,
    #[serde(default, rename = "User", alias = "user")]
    user: Option<RawUser>,
}

#[derive(Debug, Deserialize)]
struct RawUser {
    #[serde(default, rename = "Email", alias = "email")]
    email: Option<String>,
}

/// Parses `flyctl releases --image --json`, newest (highest version) first.
pub fn parse_releases(json: &str) -> anyhow::Result<Vec<Release>> {
    let raw: Option<Vec<RawRelease>> = serde_json::from_str(json.trim()).context(
        "`flyctl releases --image --json` printed something that is not a list of releases",
    )?;
    let mut releases: Vec<Release> = raw
        .unwrap_or_default()
        .into_iter()
        .map(|r| Release {
            version: r.version,
            status: r.status.unwrap_or_default().to_ascii_lowercase(),
            image_ref: r.image_ref.filter(|i| !i.trim().is_empty()),
            created_at: r.created_at,
            description: r.description.filter(|d| !d.is_empty()),
            user: r.user.and_then(|u| u.email).filter(|e| !e.is_empty()),
        })
        .collect();
    releases.sort_by_key(|r| std::cmp::Reverse(r.version));
    Ok(releases)
}

impl Release {
    /// Whether the release finished well. Fly has used several words for it over time.
    pub fn is_good(&self) -> bool {
        matches!(
            self.status.as_str(),
            "complete" | "completed" | "succeeded" | "successful" | "success" | "deployed"
        )
    }
}

/// The release currently running: the newest one. (A failed newest release is still what Fly
/// tried last; rolling back from it means going to the last good one before it.)
pub fn current_release(releases: &[Release]) -> Option<&Release> {
    releases.iter().max_by_key(|r| r.version)
}

/// The newest good release older than `current` whose image differs from the current image
/// (a secrets change makes a new release with the same image; going back to it changes
/// nothing). `None` when there is nothing to roll back to.
pub fn previous_good_release<'a>(
    releases: &'a [Release],
    current: &Release,
) -> Option<&'a Release> {
    releases
        .iter()
        .filter(|r| r.version < current.version && r.is_good())
        .filter(|r| r.image_ref.is_some() && r.image_ref != current.image_ref)
        .max_by_key(|r| r.version)
}

/// One Fly machine, from `flyctl machines list --json` (the Machines API's snake_case keys).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Machine {
    /// The machine id (what `fly-force-instance-id` routes to).
    pub id: String,
    /// `started`, `stopped`, `replacing`, `destroyed`, ...
    pub state: String,
    /// The Fly region.
    pub region: Option<String>,
    /// The image it runs: `config.image`, else built from `image_ref`.
    pub image: Option<String>,
    /// Its health checks as Fly last saw them.
    pub checks: Vec<MachineCheck>,
}

/// One health check of a machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineCheck {
    /// The check's name (`servicecheck-00-http-8080`, ...).
    pub name: String,
    /// `passing`, `warning` or `critical`.
    pub status: String,
    /// Fly's last output of the check.
    pub output: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RawMachine {
    id: String,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    config: Option<RawMachineConfig>,
    #[serde(default)]
    image_ref: Option<RawImageRef>,
    #[serde(default)]
    checks: Option<Vec<RawCheck>>,
}

#[derive(Debug, Deserialize)]
struct RawMachineConfig {
    #[serde(default)]
    image: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RawImageRef {
    #[serde(default)]
    registry: Option<String>,
    #[serde(default)]
    repository: Option<String>,
    #[serde(default)]
    tag: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RawCheck {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    output: Option<String>,
}

/// Parses `flyctl machines list --json`. `null` (an app without machines) is an empty list;
/// destroyed machines are left out (they serve nothing).
pub fn parse_machines(json: &str) -> anyhow::Result<Vec<Machine>> {
    let raw: Option<Vec<RawMachine>> = serde_json::from_str(json.trim()).context(
        "`flyctl machines list --json` printed something that is not a list of machines",
    )?;
    let mut machines: Vec<Machine> = raw
        .unwrap_or_default()
        .into_iter()
        .map(|m| {
            let from_ref = m.image_ref.and_then(|r| {
                let repository = r.repository.filter(|s| !s.is_empty())?;
                let mut image = match r.registry.filter(|s| !s.is_empty()) {
                    Some(registry) => format!("{registry}/{repository}"),
                    None => repository,
                };
                if let Some(tag) = r.tag.filter(|s| !s.is_empty()) {
                    image = format!("{image}:{tag}");
                }
                Some(image)
            });
            Machine {
                id: m.id,
                state: m.state.unwrap_or_default().to_ascii_lowercase(),
                region: m.region.filter(|s| !s.is_empty()),
                image: m
                    .config
                    .and_then(|c| c.image)
                    .filter(|s| !s.is_empty())
                    .or(from_ref),
                checks: m
                    .checks
                    .unwrap_or_default()
                    .into_iter()
                    .map(|c| MachineCheck {
                        name: c.name.unwrap_or_default(),
                        status: c.status.unwrap_or_default().to_ascii_lowercase(),
                        output: c.output.filter(|s| !s.is_empty()),
                    })
                    .collect(),
            }
        })
        .filter(|m| m.state != "destroyed" && m.state != "destroying")
        .collect();
    machines.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(machines)
}

/// Whether two image references name the same image: equal once a trailing `@sha256:...`
/// digest is dropped (flyctl prints the digest in some places and not in others).
pub fn same_image(a: &str, b: &str) -> bool {
    let strip = |s: &str| s.split('@').next().unwrap_or(s).trim().to_string();
    strip(a) == strip(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_list_oldest_shape() {
        let json =
            r#"[{"Name":"DATABASE_URL","Digest":"b2f1","CreatedAt":"2023-04-01T10:00:00Z"}]"#;
        let list = parse_secrets_list(json).unwrap();
        assert_eq!(list[0].name, "DATABASE_URL");
        assert_eq!(list[0].digest.as_deref(), Some("b2f1"));
        assert_eq!(list[0].updated_at.as_deref(), Some("2023-04-01T10:00:00Z"));
        assert_eq!(list[0].status, None);
    }

    #[test]
    fn secrets_list_middle_shape() {
        let json = r#"[{"name":"JWT_SECRET","digest":"9a0c","updated_at":"2024-06-01T00:00:00Z",
                        "created_at":"2024-01-01T00:00:00Z"}]"#;
        let list = parse_secrets_list(json).unwrap();
        assert_eq!(list[0].name, "JWT_SECRET");
        assert_eq!(list[0].updated_at.as_deref(), Some("2024-06-01T00:00:00Z"));
    }

    #[test]
    fn secrets_list_newest_shape_and_null() {
        let json = r#"[{"name":"RUST_LOG","digest":"77de","status":"Staged"}]"#;
        let list = parse_secrets_list(json).unwrap();
        assert_eq!(list[0].status.as_deref(), Some("Staged"));
        assert!(parse_secrets_list("null").unwrap().is_empty());
        assert!(parse_secrets_list("{\"oops\":1}").is_err());
    }

    fn release(version: u64, status: &str, image: &str) -> Release {
        Release {
            version,
            status: status.into(),
            image_ref: (!image.is_empty()).then(|| image.to_string()),
            created_at: None,
            description: None,
            user: None,
        }
    }

    #[test]
    fn releases_with_go_keys_sorted_newest_first() {
        let json = r#"[
          {"ID":"a","Version":3,"Stable":true,"InProgress":false,"Reason":"","Description":"Deploy image",
           "Status":"complete","DeploymentStrategy":"rolling","User":{"Email":"ops@example.org"},
           "EvaluationID":"","CreatedAt":"2026-11-01T10:00:00Z","ImageRef":"registry.fly.io/app:deployment-3"},
          {"ID":"b","Version":4,"Status":"failed","ImageRef":"registry.fly.io/app:deployment-4",
           "CreatedAt":"2026-11-02T10:00:00Z","User":{"Email":""}}
        ]"#;
        let releases = parse_releases(json).unwrap();
        assert_eq!(releases[0].version, 4);
        assert!(!releases[0].is_good());
        assert_eq!(releases[1].user.as_deref(), Some("ops@example.org"));
        assert!(releases[1].is_good());
        assert_eq!(
            releases[1].image_ref.as_deref(),
            Some("registry.fly.io/app:deployment-3")
        );
    }

    #[test]
    fn previous_good_release_skips_failed_and_same_image() {
        let releases = vec![
            release(7, "complete", "img:7"),
            release(6, "complete", "img:7"), // secrets change: same image
            release(5, "failed", "img:5"),
            release(4, "successful", "img:4"),
            release(3, "complete", "img:3"),
        ];
        let current = current_release(&releases).unwrap();
        assert_eq!(current.version, 7);
        let previous = previous_good_release(&releases, current).unwrap();
        assert_eq!(previous.version, 4);
        assert!(previous_good_release(&releases[4..], &releases[4]).is_none());
        let no_image = vec![release(2, "complete", "img:2"), release(1, "complete", "")];
        assert!(previous_good_release(&no_image, &no_image[0]).is_none());
    }
    #[test]
    fn machines_with_config_image_or_image_ref() {
        let json = r#"[
          {"id":"148e","name":"a","state":"started","region":"gru","instance_id":"01J",
           "image_ref":{"registry":"registry.fly.io","repository":"cabanas","tag":"abc1234",
                        "digest":"sha256:00","labels":{}},
           "config":{"image":"registry.fly.io/cabanas:abc1234","env":{}},
           "checks":[{"name":"servicecheck-00-http-8080","status":"passing","output":"OK",
                      "updated_at":"2026-11-01T10:00:00Z"}]},
          {"id":"0a2b","state":"Stopped","region":"gru",
           "image_ref":{"registry":"registry.fly.io","repository":"cabanas","tag":"deployment-1"},
           "checks":null},
          {"id":"ffff","state":"destroyed","config":{"image":"old"}}
        ]"#;
        let machines = parse_machines(json).unwrap();
        assert_eq!(machines.len(), 2, "destroyed machines serve nothing");
        assert_eq!(machines[0].id, "0a2b");
        assert_eq!(machines[0].state, "stopped");
        assert_eq!(
            machines[0].image.as_deref(),
            Some("registry.fly.io/cabanas:deployment-1")
        );
        assert!(machines[0].checks.is_empty());
        assert_eq!(machines[1].checks[0].status, "passing");
        assert_eq!(
            machines[1].image.as_deref(),
            Some("registry.fly.io/cabanas:abc1234")
        );
        assert!(parse_machines("null").unwrap().is_empty());
        assert!(parse_machines("{\"id\":1}").is_err());
    }

    #[test]
    fn images_compare_without_their_digest() {
        assert!(same_image(
            "registry.fly.io/a:t",
            "registry.fly.io/a:t@sha256:99"
        ));
        assert!(!same_image("registry.fly.io/a:t", "registry.fly.io/a:u"));
    }
}
