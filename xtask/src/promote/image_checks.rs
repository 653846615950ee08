//! What promote checks about the image itself before any release is made on production:
//! that production's credentials can pull it, and that it is not older than what production
//! runs.
//!
//! # Reading staging's image from production
//!
//! Promote deploys `registry.fly.io/<staging app>:<tag>` into the production app. flyctl
//! resolves such an `--image` through Fly's API with the caller's token, for the app being
//! deployed (flyctl `internal/build/imgsrc/remote_image_resolver.go`, `ResolveImageForApp`).
//! A deploy token (`fly tokens create deploy`) is limited to a single app
//! (https://fly.io/docs/reference/deploy-tokens/), so production's deploy token cannot read
//! staging's image; an org deploy token (`fly tokens create org`,
//! https://fly.io/docs/flyctl/tokens-create-org/) can. The check is flyctl's own:
//! `flyctl deploy --image <ref> --app <production> --build-only` resolves the image and returns
//! before any release (flyctl `internal/command/deploy/deploy.go`: `determineImage`, then
//! `if flag.GetBuildOnly(ctx) { return nil }` before `deployToMachines`).
//!
//! # "Older"
//!
//! An image's age is when a release first ran it: the `CreatedAt` of the oldest release on
//! staging or production whose `ImageRef` is that image (`flyctl releases --image --json`;
//! images are built by staging's deploy, so its first release is its build, to the minute).
//! The image to promote is older than production's when its first release came before the
//! first release of the image production runs now. When either is outside the 25 releases
//! flyctl lists, age cannot be told and promote says so without refusing.

use std::io::Write;

use chrono::{DateTime, Utc};

use super::TO;
use crate::config::Environment;
use crate::flyctl::{Flyctl, Invocation, Release, failure_or_error, same_image};

/// The image checks before any release: production can read it, and it is not older than
/// what production runs (the module doc).
pub struct ImageChecks<'a> {
    /// The flyctl of production.
    pub flyctl: &'a Flyctl,
    /// Production's environment.
    pub production: &'a Environment,
    /// Staging's app (`None`: not configured; its releases are then not compared).
    pub staging_app: Option<&'a str>,
    /// What serves on production now.
    pub serving: Option<&'a crate::release::Serving>,
    /// `--allow-older`.
    pub allow_older: bool,
}

impl ImageChecks<'_> {
    /// The refusals, each naming the fix.
    pub fn run(&self, image: &str, out: &mut dyn Write) -> anyhow::Result<Vec<String>> {
        let staging_app = self.staging_app.unwrap_or("the staging app");
        if let Some(refusal) = unreadable(self.flyctl, self.production, staging_app, image, out)? {
            return Ok(vec![refusal]);
        }
        let Some(serving) = self.serving.filter(|_| !self.allow_older) else {
            return Ok(Vec::new());
        };
        let running = serving
            .machines
            .iter()
            .filter(|m| m.managed)
            .find_map(|m| m.image.clone())
            .or_else(|| serving.releases.first().and_then(|r| r.image_ref.clone()));
        let staging_releases = match self.staging_app {
            Some(app) => match self.flyctl.releases(app, out) {
                Ok(list) => list.unwrap_or_default(),
                Err(error) => {
                    let failure = failure_or_error(error)?;
                    writeln!(
                        out,
                        "note: cannot read {app}'s releases to compare image ages: {failure}"
                    )?;
                    Vec::new()
                }
            },
            None => Vec::new(),
        };
        let lists: [&[Release]; 2] = [&staging_releases, &serving.releases];
        Ok(match age(image, running.as_deref(), &lists) {
            Age::Older {
                promoted,
                running: at,
            } => vec![format!(
                "{image} is older than the image {} runs ({}): it was first released {} and \
                 that one {}. Promote a newer staging build, or pass --allow-older to step back \
                 on purpose (`cargo xtask rollback --env {TO}` is the usual way back)",
                self.production.app,
                running.as_deref().unwrap_or("-"),
                promoted.to_rfc3339(),
                at.to_rfc3339()
            )],
            Age::Unknown(why) => {
                writeln!(out, "note: {why}; promoting anyway")?;
                Vec::new()
            }
            Age::NotOlder => Vec::new(),
        })
    }
}

/// `None` when production's flyctl can pull `image`; else the refusal, naming the token to
/// create. An error only when flyctl cannot run.
pub fn unreadable(
    flyctl: &Flyctl,
    production: &Environment,
    staging_app: &str,
    image: &str,
    out: &mut dyn Write,
) -> anyhow::Result<Option<String>> {
    let config = production.fly_config.display().to_string();
    let invocation = Invocation::new([
        "deploy",
        "--app",
        &production.app,
        "--config",
        &config,
        "--image",
        image,
        "--build-only",
    ]);
    let failure = match flyctl.read(&invocation, out) {
        Ok(_) => return Ok(None),
        Err(error) => failure_or_error(error)?,
    };
    Ok(Some(format!(
        "production's flyctl cannot read the staging image {image} ({failure}). A deploy token \
         is limited to one app: give the workflow a token that reads both apps, an org deploy \
         token (`fly tokens create org --org <your org>`) stored as the FLY_API_TOKEN secret of \
         the production environment, or run promote with a token that can deploy {staging_app} \
         and {} (`fly auth login`)",
        production.app
    )))
}

/// When a release first ran `image`: the oldest `CreatedAt` among `releases` (any app's)
/// whose image is it.
pub fn first_released<'a>(
    releases: impl IntoIterator<Item = &'a Release>,
    image: &str,
) -> Option<DateTime<Utc>> {
    releases
        .into_iter()
        .filter(|r| r.image_ref.as_deref().is_some_and(|i| same_image(i, image)))
        .filter_map(|r| r.created_at)
        .min()
}

/// What the age comparison found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Age {
    /// The image is as new as production's, or newer (or the same image).
    NotOlder,
    /// The image to promote was first released before the one production runs.
    Older {
        /// The image's first release.
        promoted: DateTime<Utc>,
        /// The first release of production's image.
        running: DateTime<Utc>,
    },
    /// One of the two is outside the releases flyctl lists.
    Unknown(String),
}

/// Compares the image to promote with the one production runs, by first release over
/// staging's and production's releases.
pub fn age(image: &str, running: Option<&str>, releases: &[&[Release]]) -> Age {
    let Some(running) = running else {
        return Age::NotOlder;
    };
    if same_image(image, running) {
        return Age::NotOlder;
    }
    let all = || releases.iter().flat_map(|list| list.iter());
    match (first_released(all(), image), first_released(all(), running)) {
        (Some(promoted), Some(running_at)) if promoted < running_at => Age::Older {
            promoted,
            running: running_at,
        },
        (Some(_), Some(_)) => Age::NotOlder,
        (promoted, _) => Age::Unknown(format!(
            "no release among the 25 newest of staging and production ran {}: cannot tell \
             whether {image} is older than {running}",
            if promoted.is_none() { image } else { running }
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flyctl::parse_releases;

    fn releases(list: &[(u64, &str, &str)]) -> Vec<Release> {
        let json: Vec<serde_json::Value> = list
            .iter()
            .map(|(v, image, at)| {
                serde_json::json!({"Version": v, "Status": "complete", "ImageRef": image,
                                   "CreatedAt": at})
            })
            .collect();
        parse_releases(&serde_json::to_string(&json).unwrap()).unwrap()
    }

    const OLD: &str = "registry.fly.io/s:aaaaaaa";
    const NEW: &str = "registry.fly.io/s:bbbbbbb";

    #[test]
    fn an_image_first_released_before_productions_is_older() {
        let staging = releases(&[
            (1, OLD, "2026-11-01T10:00:00Z"),
            (2, NEW, "2026-11-02T10:00:00Z"),
            // A staging rollback runs the old image again later: its first release counts.
            (3, OLD, "2026-11-03T10:00:00Z"),
        ]);
        let production = releases(&[(7, NEW, "2026-11-04T10:00:00Z")]);
        let lists: [&[Release]; 2] = [&staging, &production];
        assert!(matches!(age(OLD, Some(NEW), &lists), Age::Older { .. }));
        assert_eq!(age(NEW, Some(OLD), &lists), Age::NotOlder);
        assert_eq!(age(NEW, Some(NEW), &lists), Age::NotOlder);
        assert_eq!(age(OLD, None, &lists), Age::NotOlder);
        let unknown = age("registry.fly.io/s:ccccccc", Some(NEW), &lists);
        assert!(
            matches!(&unknown, Age::Unknown(text) if text.contains("ccccccc")),
            "{unknown:?}"
        );
    }
}
