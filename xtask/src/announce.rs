//! Tells the people in the alert channel what a deploy, rollback or promote does to an
//! environment: "Going live at ..." before flyctl changes anything, the result after, and
//! "rolled back to ..." when a release was taken back.
//!
//! The channel is the one Alertmanager pages: the Slack-compatible incoming webhook in
//! `ALERT_WEBHOOK_URL` of the environment's env file (`ops/alertmanager.yml`). The body is
//! Slack's incoming-webhook JSON, `{"text": "..."}` (docs.slack.dev/messaging/sending-messages-using-incoming-webhooks),
//! which Mattermost and Rocket.Chat accept too. Whoever holds the URL can post to the
//! channel, so it is a secret: never printed, not even inside an error (reqwest's errors name
//! their URL; [`reqwest::Error::without_url`] drops it). Announcing is a courtesy, not a gate:
//! a failing post is a warning and the task goes on.

use std::io::Write;
use std::time::Duration;

use crate::config::Environment;
use crate::release::RolloutOutcome;
use crate::repo::Repo;
use crate::verdict::Verdict;

/// The env-file key holding the webhook (the one `ops/alertmanager.yml` posts alerts to).
pub const WEBHOOK_KEY: &str = "ALERT_WEBHOOK_URL";

/// How long one post may take; a deploy never waits longer on the channel.
const POST_LIMIT: Duration = Duration::from_secs(5);

/// Posts an environment's announcements, or nothing when its env file has no webhook.
pub struct Announcer {
    webhook: Option<String>,
    /// Where the URL came from, for warnings (`ALERT_WEBHOOK_URL in env/.env.fly.staging`).
    origin: String,
}

impl std::fmt::Debug for Announcer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = if self.webhook.is_some() {
            "set"
        } else {
            "unset"
        };
        write!(f, "Announcer({}: {state})", self.origin)
    }
}

impl Announcer {
    /// The announcer of `environment`: its env file's [`WEBHOOK_KEY`] when filled. An env file
    /// that is missing or does not parse announces nothing (predeploy reports those).
    pub fn for_environment(repo: &Repo, environment: &Environment) -> Announcer {
        let path = repo.path(&environment.env_file);
        let webhook = crate::files::read_text_capped(&path, crate::files::CONFIG_LIMIT)
            .ok()
            .and_then(|text| crate::predeploy::envfile::parse_env_file(&text).ok())
            .and_then(|entries| {
                entries
                    .into_iter()
                    .find(|e| e.key == WEBHOOK_KEY)
                    .map(|e| e.value.expose().trim().to_string())
            })
            .filter(|url| !url.is_empty());
        Announcer {
            webhook,
            origin: format!("{WEBHOOK_KEY} in {}", environment.env_file.display()),
        }
    }

    /// An announcer that posts nothing (dry runs).
    pub fn silent() -> Announcer {
        Announcer {
            webhook: None,
            origin: String::new(),
        }
    }

    /// Posts `text`; a failure is a warning on `out`, never an error.
    pub fn say(&self, text: &str, out: &mut dyn Write) {
        let Some(url) = &self.webhook else { return };
        let _ = match post(url, text) {
            Ok(()) => writeln!(out, "announced: {text}"),
            Err(problem) => writeln!(
                out,
                "WARN: could not announce to the channel ({}): {problem}; the task goes on. \
                 Check the webhook in the env file (Slack: Apps → Incoming Webhooks)",
                self.origin
            ),
        };
    }
}

/// POSTs `{"text": text}` to `url` on a thread of its own, so it works whether or not the
/// caller is inside an async runtime.
fn post(url: &str, text: &str) -> Result<(), String> {
    let body = serde_json::json!({ "text": text });
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| format!("starting the HTTP runtime: {e}"))?;
                runtime.block_on(async {
                    let client = crate::http::client(POST_LIMIT).map_err(|e| format!("{e:#}"))?;
                    let response = client
                        .post(url)
                        .json(&body)
                        .send()
                        .await
                        .map_err(|e| e.without_url().to_string())?;
                    let status = response.status();
                    if status.is_success() {
                        Ok(())
                    } else {
                        Err(format!("the webhook answered HTTP {status}"))
                    }
                })
            })
            .join()
            .unwrap_or_else(|_| Err("the post panicked".to_string()))
    })
}

/// The line after a rollout: `<env>: <what> PASS`, or FAIL with the first problem, and where
/// it was rolled back to when it was.
pub fn ending(
    env: &str,
    what: &str,
    verdict: Verdict,
    rollout: &RolloutOutcome,
    problems: &[String],
) -> String {
    let mut line = format!("{env}: {what} {}", verdict.label());
    if verdict == Verdict::Fail
        && let Some(problem) = problems.first()
    {
        line.push_str(&format!(": {problem}"));
    }
    if let Some(back) = &rollout.rolled_back {
        let to = back
            .to_image
            .clone()
            .or_else(|| back.to_version.map(|v| format!("v{v}")))
            .unwrap_or_else(|| "the release that served before".into());
        line.push_str(&format!("; rolled back to {to}"));
    }
    line
}
