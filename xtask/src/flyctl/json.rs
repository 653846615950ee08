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
    /// Whether `fly deploy` manages it: an Apps v2 machine (`fly_platform_version = v2` in
    /// its metadata) that is not a release-command or console machine. flyctl deploys and
    /// lists only those (fly-go `flaps/flaps_machines.go`, `ListFlyAppsMachines`); a leftover
    /// release-command machine, a `fly console` or a `fly machine run` machine is not part of
    /// the release and keeps whatever image it had.
    #[serde(default = "managed_by_default")]
    pub managed: bool,
    /// Its process group (`fly_process_group`: `app`, `fly_app_release_command`, ...).
    #[serde(default)]
    pub process_group: Option<String>,
}

fn managed_by_default() -> bool {
    true
}

/// fly-go `machine_types.go`: the metadata keys and values flyctl reads.
const PLATFORM_VERSION_KEY: &str = "fly_platform_version";
const PROCESS_GROUP_KEY: &str = "fly_process_group";
const PLATFORM_V2: &str = "v2";
const RELEASE_COMMAND_GROUP: &str = "fly_app_release_command";
const CONSOLE_GROUP: &str = "fly_app_console";

impl Machine {
    /// Whether it is started (serving, or able to).
    pub fn is_started(&self) -> bool {
        self.state == "started"
    }

    /// Whether Fly stopped or suspended it (auto-stop, or by hand): `fly deploy` updates
    /// such a machine's config and leaves it stopped (flyctl
    /// `internal/command/deploy/machines_launchinput.go`, `shouldSkipLaunch`).
    pub fn is_stopped(&self) -> bool {
        matches!(self.state.as_str(), "stopped" | "suspended")
    }
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
    #[serde(default)]
    metadata: Option<std::collections::BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize)]
struct RawImageRef {
    #[serde(default)]
    registry: Option<String>,
    #[serde(default)]
    repository: Option<String>,
    #[serde(default)]
    tag: Option<String>,
    #[serde(default)]
    digest: Option<String>,
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
            let digest = m
                .image_ref
                .as_ref()
                .and_then(|r| r.digest.clone())
                .filter(|d| !d.is_empty());
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
            let metadata = m
                .config
                .as_ref()
                .and_then(|c| c.metadata.clone())
                .unwrap_or_default();
            let process_group = metadata.get(PROCESS_GROUP_KEY).cloned();
            let managed = metadata.get(PLATFORM_VERSION_KEY).map(String::as_str)
                == Some(PLATFORM_V2)
                && !matches!(
                    process_group.as_deref(),
                    Some(RELEASE_COMMAND_GROUP | CONSOLE_GROUP)
                );
            // The digest goes with the reference, so a release named by digest alone still
            // compares equal to the tag the machine was deployed with. A config that names
            // the image by digest alone (`registry.fly.io/app@sha256:...`, as `fly deploy
            // --image <ref>@<digest>` leaves it) gets the tag the Machines API resolved, so
            // it compares equal to the tagged form too.
            let image = m
                .config
                .and_then(|c| c.image)
                .filter(|s| !s.is_empty())
                .map(|image| with_resolved_tag(image, from_ref.as_deref(), digest.as_deref()))
                .or(from_ref)
                .map(|image| match &digest {
                    Some(digest) if !image.contains('@') => format!("{image}@{digest}"),
                    _ => image,
                });
            Machine {
                id: m.id,
                state: m.state.unwrap_or_default().to_ascii_lowercase(),
                region: m.region.filter(|s| !s.is_empty()),
                image,
                managed,
                process_group,
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

/// `repo@digest` becomes `repo:tag@digest` when the resolved `image_ref` (`repo:tag`) is
/// of the same repository and reports the same digest; anything else is kept as it is.
fn with_resolved_tag(image: String, resolved: Option<&str>, digest: Option<&str>) -> String {
    let named = ImageName::parse(&image);
    let Some(resolved) = resolved.map(ImageName::parse) else {
        return image;
    };
    match (named.tag, named.digest, resolved.tag) {
        (None, Some(own), Some(tag))
            if resolved.repository == named.repository && Some(own) == digest =>
        {
            format!("{}:{tag}@{own}", named.repository)
        }
        _ => image,
    }
}

/// Whether two image references name the same image. flyctl prints the digest in some
/// places and not in others, and a release can name its image by digest alone
/// (`registry.fly.io/app@sha256:...`): the repositories must match, then the tags when both
/// have one, else the digests when both have one. A tag on one side and only a digest on the
/// other cannot be compared: not the same.
pub fn same_image(a: &str, b: &str) -> bool {
    let (a, b) = (ImageName::parse(a), ImageName::parse(b));
    if a.repository != b.repository {
        return false;
    }
    match ((a.tag, b.tag), (a.digest, b.digest)) {
        ((Some(x), Some(y)), _) => x == y,
        (_, (Some(x), Some(y))) => x == y,
        ((None, None), (None, None)) => true,
        _ => false,
    }
}

/// An image reference taken apart: `repository[:tag][@digest]`.
struct ImageName<'a> {
    repository: &'a str,
    tag: Option<&'a str>,
    digest: Option<&'a str>,
}

impl<'a> ImageName<'a> {
    fn parse(reference: &'a str) -> ImageName<'a> {
        let reference = reference.trim();
        let (name, digest) = match reference.split_once('@') {
            Some((name, digest)) => (name, Some(digest)),
            None => (reference, None),
        };
        // A colon after the last slash is a tag; one before it is a registry's port.
        let last_slash = name.rfind('/').map_or(0, |i| i + 1);
        let (repository, tag) = match name[last_slash..].rfind(':') {
            Some(i) => (&name[..last_slash + i], Some(&name[last_slash + i + 1..])),
            None => (name, None),
        };
        ImageName {
            repository,
            tag,
            digest,
        }
    }
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
           "config":{"image":"registry.fly.io/cabanas:abc1234","env":{},"metadata":{"fly_platform_version":"v2","fly_process_group":"app"}},
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
        // The digest travels with the reference.
        assert_eq!(
            machines[1].image.as_deref(),
            Some("registry.fly.io/cabanas:abc1234@sha256:00")
        );
        assert!(machines[1].managed && !machines[0].managed);
        assert!(parse_machines("null").unwrap().is_empty());
        assert!(parse_machines("{\"id\":1}").is_err());
    }

    #[test]
    fn only_apps_v2_machines_outside_release_command_and_console_are_managed() {
        let machine = |metadata: &str| {
            let json = format!(
                r#"[{{"id":"m","state":"stopped","config":{{"image":"i:1","metadata":{metadata}}}}}]"#
            );
            parse_machines(&json).unwrap().remove(0)
        };
        let app = machine(r#"{"fly_platform_version":"v2","fly_process_group":"app"}"#);
        assert!(app.managed);
        assert_eq!(app.process_group.as_deref(), Some("app"));
        let release_command = machine(
            r#"{"fly_platform_version":"v2","fly_process_group":"fly_app_release_command"}"#,
        );
        assert!(!release_command.managed);
        let console =
            machine(r#"{"fly_platform_version":"v2","fly_process_group":"fly_app_console"}"#);
        assert!(!console.managed);
        // `fly machine run`: no platform version.
        assert!(!machine(r#"{}"#).managed);
        assert!(app.is_stopped() && !app.is_started());
    }

    #[test]
    fn image_refs_compare_by_tag_else_by_digest() {
        let tagged = "registry.fly.io/a:deployment-01@sha256:abc";
        assert!(same_image(tagged, "registry.fly.io/a:deployment-01"));
        assert!(same_image("registry.fly.io/a@sha256:abc", tagged));
        assert!(!same_image("registry.fly.io/a@sha256:def", tagged));
        assert!(!same_image("registry.fly.io/a:deployment-02", tagged));
        assert!(!same_image("registry.fly.io/b:deployment-01", tagged));
        // A tag on one side and only a digest on the other cannot be compared.
        assert!(!same_image(
            "registry.fly.io/a@sha256:abc",
            "registry.fly.io/a:deployment-01"
        ));
        // A registry port is not a tag.
        assert!(same_image(
            "localhost:5000/a:1",
            "localhost:5000/a:1@sha256:x"
        ));
        assert!(!same_image("localhost:5000/a", "localhost:5000/a:1"));
    }

    #[test]
    fn images_compare_without_their_digest() {
        assert!(same_image(
            "registry.fly.io/a:t",
            "registry.fly.io/a:t@sha256:99"
        ));
        assert!(!same_image("registry.fly.io/a:t", "registry.fly.io/a:u"));
    }

    #[test]
    fn a_config_naming_the_image_by_digest_alone_takes_the_resolved_tag() {
        let listed = |config: &str, digest: &str| {
            let json = serde_json::json!([{"id": "m1", "state": "started",
                "config": {"image": config},
                "image_ref": {"registry": "registry.fly.io", "repository": "a",
                              "tag": "deployment-01", "digest": digest}}]);
            parse_machines(&json.to_string()).unwrap()[0]
                .image
                .clone()
                .unwrap()
        };
        let image = listed("registry.fly.io/a@sha256:abc", "sha256:abc");
        assert_eq!(image, "registry.fly.io/a:deployment-01@sha256:abc");
        assert!(same_image(&image, "registry.fly.io/a:deployment-01"));
        // Another digest than the one resolved: kept as it is, never given a tag.
        let image = listed("registry.fly.io/a@sha256:def", "sha256:abc");
        assert!(!same_image(&image, "registry.fly.io/a:deployment-01"));
    }
}
