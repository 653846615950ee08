//! Asking each machine which build it serves: `GET /api/v1/version` through the app's URL,
//! routed to one machine at a time by `fly-force-instance-id` (Fly's proxy header), so each
//! answer is that machine's, not whichever one the proxy picked.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::super::{FORCE_INSTANCE_HEADER, VERSION_PATH};
use crate::flyctl::Machine;

/// Per-request bound of a version query.
const VERSION_TIMEOUT: Duration = Duration::from_secs(5);

/// The machines a verification asks for their version: the started ones deploy manages, and
/// with `wake` the stopped ones too.
pub fn machines_to_ask<'a>(
    machines: impl IntoIterator<Item = &'a Machine>,
    wake: bool,
) -> Vec<&'a Machine> {
    machines
        .into_iter()
        .filter(|m| m.managed && (m.is_started() || (wake && m.is_stopped())))
        .collect()
}

/// What one machine's version endpoint answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionAnswer {
    /// The machine the request was routed to (the header's value).
    pub machine_id: String,
    /// The HTTP status, when it answered.
    pub status: Option<u16>,
    /// The `commit` it reported.
    pub commit: Option<String>,
    /// The `machine` it reported (proves the request reached that machine).
    pub machine: Option<String>,
    /// Why there is no answer.
    pub error: Option<String>,
}

impl VersionAnswer {
    /// Machine `id` answering 200 with `commit` (test fixtures).
    #[cfg(test)]
    pub fn answered(id: &str, commit: &str) -> VersionAnswer {
        VersionAnswer {
            machine_id: id.to_string(),
            status: Some(200),
            commit: Some(commit.to_string()),
            machine: Some(id.to_string()),
            error: None,
        }
    }
}

#[derive(Debug, Deserialize)]
struct VersionBody {
    #[serde(default)]
    commit: Option<String>,
    #[serde(default)]
    machine: Option<String>,
}

/// Asks `GET <base_url>/api/v1/version` once per machine, routed to it by
/// `fly-force-instance-id`. Network errors become answers with an `error`.
pub fn ask_versions(base_url: &str, machines: &[&Machine]) -> anyhow::Result<Vec<VersionAnswer>> {
    if machines.is_empty() {
        return Ok(Vec::new());
    }
    let url = format!("{}{VERSION_PATH}", base_url.trim_end_matches('/'));
    let client = crate::http::client(VERSION_TIMEOUT)?;
    let runtime = crate::http::runtime()?;
    Ok(runtime.block_on(async {
        let mut answers = Vec::new();
        for machine in machines {
            let mut answer = VersionAnswer {
                machine_id: machine.id.clone(),
                status: None,
                commit: None,
                machine: None,
                error: None,
            };
            let sent = client
                .get(&url)
                .header(FORCE_INSTANCE_HEADER, &machine.id)
                .send()
                .await;
            match sent {
                Err(error) => answer.error = Some(format!("{url}: {error}")),
                Ok(response) => {
                    let status = response.status();
                    answer.status = Some(status.as_u16());
                    match response.json::<VersionBody>().await {
                        Ok(body) if status.is_success() => {
                            answer.commit = body.commit;
                            answer.machine = body.machine;
                        }
                        Ok(_) => answer.error = Some(format!("{url} answered {status}")),
                        Err(error) => {
                            answer.error = Some(format!(
                                "{url} answered {status} without version JSON: {error}"
                            ))
                        }
                    }
                }
            }
            answers.push(answer);
        }
        answers
    }))
}
