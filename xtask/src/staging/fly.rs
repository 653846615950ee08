//! The Fly step of `cargo xtask staging`: flyctl is logged in (`flyctl auth whoami`) and the
//! app exists (`flyctl status --json --app A`). When it does not, the commands that create it
//! are printed and the step fails. Both calls change nothing on Fly.

use std::io::Write;

use crate::flyctl::{Flyctl, Invocation, flyctl_failure};
use crate::verdict::Verdict;

use super::Outcome;

/// The commands that create `app` and its database on Fly, in order.
pub fn create_commands(app: &str) -> Vec<String> {
    vec![
        format!("fly apps create {app}"),
        format!("fly postgres create --name {app}-db"),
        format!("fly postgres attach {app}-db --app {app}"),
    ]
}

/// Checks the login and the app; a failure's notes say what to run.
pub fn check(flyctl: &Flyctl, app: &str, out: &mut dyn Write) -> anyhow::Result<Outcome> {
    let user = match flyctl.read(&Invocation::new(["auth", "whoami"]), out) {
        Ok(user) => user.map(|u| u.trim().to_string()),
        Err(error) => {
            let Some(failed) = flyctl_failure(&error) else {
                return Err(error);
            };
            return Ok(Outcome {
                verdict: Verdict::Fail,
                notes: vec![
                    format!("`{}` failed: {}", failed.command, failed.stderr_tail.trim()),
                    "log in with `fly auth login`, or set FLY_API_TOKEN to a deploy token \
                     (`fly tokens create deploy --app APP`)"
                        .to_string(),
                ],
                rollback: None,
                fix: vec!["fly auth login".to_string()],
            });
        }
    };
    if let Some(user) = &user {
        writeln!(out, "logged in to Fly as {user}")?;
    }
    let status = Invocation::new(["status", "--json", "--app", app]);
    match flyctl.read(&status, out) {
        Ok(_) => {
            writeln!(out, "the Fly app {app} exists")?;
            Ok(Outcome::of(Verdict::Pass))
        }
        Err(error) => {
            let Some(failed) = flyctl_failure(&error) else {
                return Err(error);
            };
            let mut notes = vec![
                format!("`{}` failed: {}", failed.command, failed.stderr_tail.trim()),
                format!(
                    "the app {app} (ops/deploy.toml) does not exist yet; create it and its database:"
                ),
            ];
            notes.extend(create_commands(app).into_iter().map(|c| format!("  {c}")));
            Ok(Outcome {
                verdict: Verdict::Fail,
                notes,
                rollback: None,
                fix: create_commands(app),
            })
        }
    }
}
