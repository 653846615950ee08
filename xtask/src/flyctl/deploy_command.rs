//! The argv of `flyctl deploy`, for a build (`deploy`) or an image (`rollback`).

use std::path::PathBuf;
use std::time::Duration;

/// A `flyctl deploy`: building from source (`deploy`) or redeploying an image (`rollback`).
/// Never `--detach`: that skips the health checks this workflow depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployCommand {
    /// The Fly app.
    pub app: String,
    /// The Fly config, relative to the repository root.
    pub config: PathBuf,
    /// `--image REF` (a rollback) instead of building with `--remote-only`.
    pub image: Option<String>,
    /// `--strategy` (rolling, immediate, canary, bluegreen); `None` keeps fly.toml's.
    pub strategy: Option<String>,
    /// `--wait-timeout`: whole seconds as `30s`, else milliseconds as `500ms` (flyctl reads it
    /// with Go's `time.ParseDuration`, `internal/command/deploy/deploy.go` `parseDurationFlag`).
    pub wait_timeout: Duration,
    /// `--build-arg K=V` pairs (a build only; never a secret: they end up in the image).
    pub build_args: Vec<(String, String)>,
    /// `--image-label`: the tag the built image gets (a build only).
    pub image_label: Option<String>,
    /// How long the whole flyctl call may run (build and rollout) before it is stopped and
    /// counted as failed; not part of the argv.
    pub time_limit: Option<std::time::Duration>,
}

impl DeployCommand {
    /// The argv after `flyctl`.
    pub fn args(&self) -> Vec<String> {
        let mut args = vec!["deploy".to_string()];
        match &self.image {
            Some(image) => args.extend(["--image".to_string(), image.clone()]),
            None => {
                args.push("--remote-only".to_string());
                for (key, value) in &self.build_args {
                    args.extend(["--build-arg".to_string(), format!("{key}={value}")]);
                }
                if let Some(label) = &self.image_label {
                    args.extend(["--image-label".to_string(), label.clone()]);
                }
            }
        }
        args.extend(["--app".to_string(), self.app.clone()]);
        args.extend(["--config".to_string(), self.config.display().to_string()]);
        if let Some(strategy) = &self.strategy {
            args.extend(["--strategy".to_string(), strategy.clone()]);
        }
        args.extend(["--wait-timeout".to_string(), go_duration(self.wait_timeout)]);
        args
    }
}

/// `d` as Go's `time.ParseDuration` reads it: `30s` when whole seconds, else `1500ms`.
fn go_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis().max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deploy_argv_builds_or_redeploys_and_never_detaches() {
        let mut deploy = DeployCommand {
            app: "sist-cabanas-staging".into(),
            config: "fly.toml".into(),
            image: None,
            strategy: Some("rolling".into()),
            wait_timeout: Duration::from_secs(300),
            build_args: vec![("GIT_COMMIT".into(), "0123abc".into())],
            image_label: Some("0123abc".into()),
            time_limit: None,
        };
        assert_eq!(
            deploy.args().join(" "),
            "deploy --remote-only --build-arg GIT_COMMIT=0123abc --image-label 0123abc --app sist-cabanas-staging --config fly.toml --strategy rolling --wait-timeout 300s"
        );
        deploy.image = Some("registry.fly.io/x:1".into());
        deploy.strategy = None;
        assert_eq!(
            deploy.args().join(" "),
            "deploy --image registry.fly.io/x:1 --app sist-cabanas-staging --config fly.toml --wait-timeout 300s"
        );
        assert!(!deploy.args().iter().any(|a| a == "--detach"));
    }

    #[test]
    fn the_wait_timeout_is_written_as_go_reads_durations() {
        assert_eq!(go_duration(Duration::from_secs(300)), "300s");
        assert_eq!(go_duration(Duration::from_millis(300)), "300ms");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1500ms");
        // Below a millisecond flyctl would read 0 (no wait): never write that.
        assert_eq!(go_duration(Duration::from_micros(10)), "1ms");
    }
}
