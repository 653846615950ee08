//! Every `flyctl` call of the workspace goes through this module: it finds the binary, builds
//! the argv of each command flyctl really has, feeds secrets on stdin (never argv), hides
//! secret values in anything it prints, and turns a failing call into a [`FlyctlFailed`] that
//! the tasks report as exit 1.
//!
//! The binary is `$FLYCTL` when set, else `flyctl` (then `fly`) on `PATH`, so tests can put a
//! recording fake in its place. `FLY_API_TOKEN` reaches flyctl through the environment.

mod deploy_command;
mod json;
mod locate;

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use xshell::{Shell, cmd};

pub use deploy_command::DeployCommand;
pub use json::{
    Machine, MachineCheck, Release, SecretInfo, current_release, parse_machines, parse_releases,
    parse_secrets_list, previous_good_release, same_image,
};
pub use locate::locate;

/// How to get flyctl, shown when it is missing.
pub const INSTALL_HINT: &str = "install flyctl with `curl -L https://fly.io/install.sh | sh` \
     (or `brew install flyctl`), or set FLYCTL to the path of the binary";

/// Lines of flyctl's stderr shown when a call fails.
const STDERR_TAIL_LINES: usize = 20;

/// A flyctl binary and how to call it.
#[derive(Debug, Clone)]
pub struct Flyctl {
    program: PathBuf,
    shown_as: String,
    dry_run: bool,
    /// Whether the binary was found (a dry run without flyctl cannot make read-only calls).
    present: bool,
    workdir: Option<PathBuf>,
    hidden: crate::masking::Masker,
    envs: Vec<(OsString, OsString)>,
}

/// One flyctl command: its arguments and, for `secrets import`, the stdin payload.
#[derive(Clone)]
pub struct Invocation {
    /// The arguments after the program name.
    pub args: Vec<String>,
    stdin: Option<(String, Vec<String>)>,
    time_limit: Option<Duration>,
}

impl std::fmt::Debug for Invocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The payload holds secret values: show only which keys it carries.
        f.debug_struct("Invocation")
            .field("args", &self.args)
            .field("stdin_keys", &self.stdin.as_ref().map(|(_, keys)| keys))
            .finish()
    }
}

impl Invocation {
    /// A command without stdin.
    pub fn new<S: Into<String>>(args: impl IntoIterator<Item = S>) -> Invocation {
        Invocation {
            args: args.into_iter().map(Into::into).collect(),
            stdin: None,
            time_limit: None,
        }
    }

    /// Stops the command (its whole process group) when it runs longer than `limit`; the
    /// call then fails like a non-zero exit. Only for commands without stdin.
    pub fn with_time_limit(mut self, limit: Option<Duration>) -> Invocation {
        self.time_limit = limit;
        self
    }

    /// Adds a stdin payload carrying the values of `keys` (only the names are ever shown).
    pub fn with_secret_stdin(mut self, payload: String, keys: Vec<String>) -> Invocation {
        self.stdin = Some((payload, keys));
        self
    }
}

/// A flyctl call that ran and failed: the task reports it and exits 1.
#[derive(Debug, Clone)]
pub struct FlyctlFailed {
    /// The command as a shell line (no secret in it: secrets only travel on stdin).
    pub command: String,
    /// The exit status as the OS reported it.
    pub status: String,
    /// The last lines of its stderr, with every known secret value masked.
    pub stderr_tail: String,
}

impl std::fmt::Display for FlyctlFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}` failed ({})", self.command, self.status)?;
        if !self.stderr_tail.is_empty() {
            write!(f, "; its stderr ended with:\n{}", self.stderr_tail)?;
        }
        Ok(())
    }
}

impl std::error::Error for FlyctlFailed {}

/// The [`FlyctlFailed`] inside an error chain, if that is what the error is.
pub fn flyctl_failure(error: &anyhow::Error) -> Option<&FlyctlFailed> {
    error.chain().find_map(|e| e.downcast_ref::<FlyctlFailed>())
}

/// Splits errors: a failing flyctl call (a failed check, exit 1) comes back as `Ok`, anything
/// else (the task could not run, exit 2) stays an error.
pub fn failure_or_error(error: anyhow::Error) -> anyhow::Result<FlyctlFailed> {
    match flyctl_failure(&error) {
        Some(failure) => Ok(failure.clone()),
        None => Err(error),
    }
}

impl Flyctl {
    /// The flyctl of this process's environment (`$FLYCTL`, else `PATH`). A dry run never
    /// calls flyctl, so it does not need the binary and shows it as `flyctl` when missing.
    pub fn from_env(dry_run: bool) -> anyhow::Result<Flyctl> {
        let located = locate(std::env::var_os("FLYCTL"), std::env::var_os("PATH"));
        match located {
            Ok((program, shown_as)) => Ok(Flyctl::new(program, shown_as, dry_run)),
            Err(_) if dry_run => {
                let mut flyctl = Flyctl::new("flyctl".into(), "flyctl".into(), true);
                flyctl.present = false;
                Ok(flyctl)
            }
            Err(error) => Err(error),
        }
    }

    /// A flyctl at a known path (tests point this at the fake).
    pub fn at(program: impl Into<PathBuf>, dry_run: bool) -> Flyctl {
        let program = program.into();
        let shown_as = program.display().to_string();
        Flyctl::new(program, shown_as, dry_run)
    }

    fn new(program: PathBuf, shown_as: String, dry_run: bool) -> Flyctl {
        Flyctl {
            program,
            shown_as,
            dry_run,
            present: true,
            workdir: None,
            hidden: crate::masking::Masker::default(),
            envs: Vec::new(),
        }
    }

    /// Runs flyctl from `dir` (the repository root, so `--config fly.toml` resolves).
    pub fn in_dir(mut self, dir: &Path) -> Flyctl {
        self.workdir = Some(dir.to_path_buf());
        self
    }

    /// Sets an environment variable for every call (on top of this process's environment,
    /// which already carries `FLY_API_TOKEN`). Tests use it to point the fake at its directory.
    pub fn with_env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Flyctl {
        self.envs.push((key.into(), value.into()));
        self
    }

    /// Makes this a dry run when `dry_run` is set (a task's `--dry-run` always wins).
    pub fn with_dry_run(mut self, dry_run: bool) -> Flyctl {
        self.dry_run |= dry_run;
        self
    }

    /// Whether this is a dry run: commands are printed, none is run.
    pub fn dry_run(&self) -> bool {
        self.dry_run
    }

    /// Masks these values (and each of their lines) wherever flyctl output is shown, in
    /// every form an error message may echo them: raw, JSON-escaped, Go-quoted, shell-quoted
    /// and bash `printf %q` (see [`crate::masking::forms`]).
    pub fn hide_values<'a>(&mut self, values: impl IntoIterator<Item = &'a str>) {
        for value in values {
            // Very short values would mask ordinary words; they cannot be told apart anyway.
            self.hidden.add(value, "a secret given to flyctl", 4);
        }
    }

    /// `text` with every hidden value replaced by `****`.
    pub fn mask(&self, text: &str) -> String {
        self.hidden.mask(text).0
    }

    /// The command as a copy-pasteable shell line; stdin shows key names only.
    pub fn display(&self, invocation: &Invocation) -> String {
        let mut line = std::iter::once(self.shown_as.as_str())
            .chain(invocation.args.iter().map(String::as_str))
            .map(shell_quote)
            .collect::<Vec<_>>()
            .join(" ");
        if let Some((_, keys)) = &invocation.stdin {
            line.push_str(&format!(" <stdin: {} (values hidden)>", keys.join(", ")));
        }
        line
    }

    /// Runs `invocation` and returns its stdout; `None` in a dry run, which only prints the
    /// command. A non-zero exit is a [`FlyctlFailed`] error.
    pub fn call(
        &self,
        invocation: &Invocation,
        out: &mut dyn Write,
    ) -> anyhow::Result<Option<String>> {
        if self.dry_run {
            writeln!(out, "would run: {}", self.display(invocation))?;
            return Ok(None);
        }
        self.run(invocation, out).map(Some)
    }

    /// Runs a command that changes nothing on Fly (releases, machines), in a dry run too:
    /// a dry run shows what it would act on. `None` only in a dry run without flyctl.
    pub fn read(
        &self,
        invocation: &Invocation,
        out: &mut dyn Write,
    ) -> anyhow::Result<Option<String>> {
        if self.dry_run && !self.present {
            writeln!(
                out,
                "would run: {} (flyctl not found)",
                self.display(invocation)
            )?;
            return Ok(None);
        }
        self.run(invocation, out).map(Some)
    }

    fn run(&self, invocation: &Invocation, out: &mut dyn Write) -> anyhow::Result<String> {
        let shown = self.display(invocation);
        writeln!(out, "running: {shown}")?;
        let sh = Shell::new().context("starting a shell for flyctl")?;
        if let Some(dir) = &self.workdir {
            sh.change_dir(dir);
        }
        let program = &self.program;
        let args = &invocation.args;
        let mut command = cmd!(sh, "{program} {args...}")
            .quiet()
            .ignore_status()
            .envs(self.envs.iter().map(|(k, v)| (k, v)));
        if let Some((payload, _)) = &invocation.stdin {
            command = command.stdin(payload.as_bytes());
        }
        let output = match invocation.time_limit.filter(|_| invocation.stdin.is_none()) {
            None => command.output().map_err(anyhow::Error::from),
            Some(limit) => match run_bounded(std::process::Command::from(command), limit) {
                Ok(Some(output)) => Ok(output),
                Ok(None) => {
                    return Err(FlyctlFailed {
                        command: shown,
                        status: format!("stopped: it did not finish within {}s", limit.as_secs()),
                        stderr_tail: String::new(),
                    }
                    .into());
                }
                Err(error) => Err(anyhow::Error::from(error)),
            },
        }
        .with_context(|| format!("starting `{shown}`; {INSTALL_HINT}"))?;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if output.status.success() {
            return Ok(stdout);
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        let source = if stderr.trim().is_empty() {
            stdout.as_str()
        } else {
            &stderr
        };
        Err(FlyctlFailed {
            command: shown,
            status: output.status.to_string(),
            stderr_tail: self.mask(&tail(source, STDERR_TAIL_LINES)),
        }
        .into())
    }

    /// `flyctl auth whoami`: who flyctl is logged in as (`None` in a dry run).
    pub fn whoami(&self, out: &mut dyn Write) -> anyhow::Result<Option<String>> {
        let stdout = self.call(&Invocation::new(["auth", "whoami"]), out)?;
        Ok(stdout.map(|s| s.trim().to_string()))
    }

    /// `flyctl releases --app APP --image --json`, newest first. Read-only: it runs in a
    /// dry run too (`None` only when a dry run has no flyctl).
    pub fn releases(&self, app: &str, out: &mut dyn Write) -> anyhow::Result<Option<Vec<Release>>> {
        let invocation = Invocation::new(["releases", "--app", app, "--image", "--json"]);
        match self.read(&invocation, out)? {
            Some(stdout) => Ok(Some(parse_releases(&stdout)?)),
            None => Ok(None),
        }
    }

    /// `flyctl machines list --app APP --json`, destroyed machines left out. Read-only like
    /// [`Flyctl::releases`].
    pub fn machines(&self, app: &str, out: &mut dyn Write) -> anyhow::Result<Option<Vec<Machine>>> {
        let invocation = Invocation::new(["machines", "list", "--app", app, "--json"]);
        match self.read(&invocation, out)? {
            Some(stdout) => Ok(Some(parse_machines(&stdout)?)),
            None => Ok(None),
        }
    }

    /// `flyctl secrets list --app APP --json` (`None` in a dry run).
    pub fn secrets_list(
        &self,
        app: &str,
        out: &mut dyn Write,
    ) -> anyhow::Result<Option<Vec<SecretInfo>>> {
        let invocation = Invocation::new(["secrets", "list", "--app", app, "--json"]);
        match self.call(&invocation, out)? {
            Some(stdout) => Ok(Some(parse_secrets_list(&stdout)?)),
            None => Ok(None),
        }
    }

    /// `flyctl secrets import --app APP --stage` with `payload` (already encoded for fly's
    /// import parser) on stdin. Staged: the values apply at the next deploy, no restart now.
    pub fn secrets_import(
        &self,
        app: &str,
        payload: String,
        keys: Vec<String>,
        out: &mut dyn Write,
    ) -> anyhow::Result<()> {
        let invocation = Invocation::new(["secrets", "import", "--app", app, "--stage"])
            .with_secret_stdin(payload, keys);
        self.call(&invocation, out).map(drop)
    }

    /// `flyctl deploy ...` as described by `deploy` (always waits for health checks), stopped
    /// when it outlives the command's time limit.
    pub fn deploy(
        &self,
        deploy: &DeployCommand,
        out: &mut dyn Write,
    ) -> anyhow::Result<Option<String>> {
        let invocation = Invocation::new(deploy.args()).with_time_limit(deploy.time_limit);
        self.call(&invocation, out)
    }
}

/// Runs `command` in its own process group with stdin closed; `None` (after stopping the
/// whole group) when it outlives `limit`. Ctrl-C stops the group too: it is not in the
/// terminal's foreground group, so it would not get the signal itself.
fn run_bounded(
    mut command: std::process::Command,
    limit: Duration,
) -> std::io::Result<Option<std::process::Output>> {
    use std::io::Read;
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        command.process_group(0);
    }
    let mut child = command
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let pid = child.id();
    let _guard = crate::interrupt::on_interrupt(move || crate::interrupt::terminate_group(pid));
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if started.elapsed() >= limit {
            crate::interrupt::terminate_group(pid);
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    Ok(status.map(|status| std::process::Output {
        status,
        stdout,
        stderr,
    }))
}

/// The last `lines` lines of `text`.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.trim_end().lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Quotes `word` for a POSIX shell when it needs it.
pub fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./:=@%+,".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_quotes_and_hides_stdin_values() {
        let fly = Flyctl::at("flyctl", true);
        let invocation = Invocation::new(["secrets", "import", "--app", "my app"])
            .with_secret_stdin("A=hunter22\n".into(), vec!["A".into()]);
        let shown = fly.display(&invocation);
        assert_eq!(
            shown,
            "flyctl secrets import --app 'my app' <stdin: A (values hidden)>"
        );
        assert!(!format!("{invocation:?}").contains("hunter22"));
    }

    #[test]
    fn masking_hides_whole_values_and_their_lines() {
        let mut fly = Flyctl::at("flyctl", false);
        fly.hide_values(["s3cr3t-value", "line one\nline two", "ab"]);
        assert_eq!(fly.mask("bad s3cr3t-value here"), "bad **** here");
        assert_eq!(fly.mask("invalid: line two"), "invalid: ****");
        assert_eq!(fly.mask("ab stays"), "ab stays");
    }

    /// Issue #17 item 10: flyctl (written in Go) may echo a payload JSON-escaped (with or
    /// without Go's HTML escaping), Go-quoted (`%q`) or shell-quoted; each form is masked.
    #[test]
    fn masking_hides_escaped_echoes_of_a_value() {
        let mut fly = Flyctl::at("flyctl", false);
        let value = "pa\"ss\\wo'rd\n<&>$x\ttail";
        fly.hide_values([value]);
        let echoes = [
            // JSON (serde, Go's encoding/json without and with HTML escaping).
            r#"{"value":"pa\"ss\\wo'rd\n<&>$x\ttail"}"#,
            r#"{"value":"pa\"ss\\wo'rd\n\u003c\u0026\u003e$x\ttail"}"#,
            // Go's strconv.Quote / %q.
            r#"invalid value "pa\"ss\\wo'rd\n<&>$x\ttail""#,
            // POSIX shell, single and double quotes.
            r#"run: X='pa"ss\wo'\''rd
<&>$x	tail'"#,
            r#"run: X="pa\"ss\\wo'rd
<&>\$x	tail""#,
        ];
        for echo in echoes {
            let masked = fly.mask(echo);
            for fragment in ["ss\\wo", "ss\\\\wo", "$x", "tail", "rd\\n"] {
                assert!(
                    !masked.contains(fragment),
                    "{fragment:?} left in {masked:?} (from {echo:?})"
                );
            }
        }
    }

    /// bash's `printf %q`, Go's `%q` of control characters and `\uXXXX` escapes of a value.
    #[test]
    fn masking_hides_printf_q_go_controls_and_u_escapes() {
        let mut fly = Flyctl::at("flyctl", false);
        fly.hide_values(["tok en\x01$end"]);
        for echo in [
            r"retry with $'tok en\001$end'",
            r#"invalid "tok en\x01$end""#,
            r#"{"v":"\u0074\u006f\u006b\u0020\u0065\u006e\u0001\u0024\u0065\u006e\u0064"}"#,
            r#"{"v":"tok en\u0001$end"}"#,
        ] {
            let masked = fly.mask(echo);
            assert!(!masked.contains("en\\"), "{masked} (from {echo})");
            assert!(!masked.contains("\\u0065\\u006e"), "{masked} (from {echo})");
        }
        let mut fly = Flyctl::at("flyctl", false);
        fly.hide_values(["a b$c;d"]);
        assert_eq!(fly.mask(r"set a\ b\$c\;d"), "set ****");
        assert!(!format!("{fly:?}").contains("b$c"), "Debug shows no secret");
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(tail("a\nb\nc\n", 2), "b\nc");
        assert_eq!(tail("", 2), "");
    }
}
