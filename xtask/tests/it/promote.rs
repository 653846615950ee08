//! `promote` against the local Fly: real `cabanas` machines for staging and production apps.
//! Staging's evidence comes from its rendered report over saved records (the report's own
//! fixtures), so "GO", "the 24-hour gate holds" and "the checklist is complete" mean what the
//! report means by them.

// Shared with the report tests, which use all of it.
#[allow(dead_code)]
use crate::report_fixtures;
use crate::webhook_support;

use std::path::Path;

use crate::support::service_binary;
use crate::support::workspace;
use report_fixtures::{Scenario, staging};
use xtask::flyctl::DeployCommand;
use xtask::localfly::LocalFly;
use xtask::promote::{Options, StagingEvidence, run_with};
use xtask::repo::Repo;
use xtask::verdict::Verdict;

const STAGING_APP: &str = "sist-cabanas-staging";
const PRODUCTION_APP: &str = "sist-cabanas";
const STAGING_COMMIT: &str = "5ta61n6c0mm17000000000000000000000000000";
const OLD_COMMIT: &str = "01dc0mm1700000000000000000000000000000000";

struct Gates;

impl xtask::release::gates::Gates for Gates {
    fn predeploy(&self, _repo: &Repo, _env: &str, _record: bool) -> anyhow::Result<Verdict> {
        Ok(Verdict::Pass)
    }
    fn smoke(&self, _repo: &Repo, _env: &str) -> anyhow::Result<Verdict> {
        Ok(Verdict::Pass)
    }
}

/// Both apps on the local Fly, each serving a build; staging's image is the one to promote.
struct Stand {
    fly: LocalFly,
    staging_image: String,
    production_url: String,
    data: tempfile::TempDir,
}

/// `broken_staging`: staging's image is built with checks that never pass (its own deploy
/// fails, but the image exists and can be promoted by mistake of the evidence).
fn stand(broken_staging: bool) -> Stand {
    let fly = LocalFly::new(env!("CARGO_BIN_EXE_localfly"), service_binary()).unwrap();
    let data = tempfile::tempdir().unwrap();
    let fly_toml = workspace().path("fly.toml");
    let mut images = Vec::new();
    let mut urls = Vec::new();
    // Production's build first: the image staging verified is the newer one.
    for (app, commit) in [(PRODUCTION_APP, OLD_COMMIT), (STAGING_APP, STAGING_COMMIT)] {
        urls.push(fly.create_app(app, 1).unwrap());
        let db = data.path().join(format!("{app}.db"));
        let payload = format!(
            "DATABASE_URL=sqlite:{}?mode=rwc\nJWT_SECRET=promote-test-secret-0123456789abcdefgh\n\
             ADMIN_ALLOWED_EMAILS=ops@example.org\n",
            db.display()
        );
        let keys = ["DATABASE_URL", "JWT_SECRET", "ADMIN_ALLOWED_EMAILS"].map(String::from);
        let broken = broken_staging && app == STAGING_APP;
        if broken {
            fly.fault(app, xtask::localfly::Fault::ChecksNeverPass)
                .unwrap();
        }
        let flyctl = fly.flyctl();
        flyctl
            .secrets_import(app, payload, keys.to_vec(), &mut std::io::sink())
            .unwrap();
        let label = &commit[..12];
        let deployed = flyctl.deploy(
            &DeployCommand {
                app: app.into(),
                config: fly_toml.clone(),
                image: None,
                strategy: None,
                wait_timeout: std::time::Duration::from_secs(if broken { 1 } else { 60 }),
                build_args: vec![("GIT_COMMIT".into(), commit.into())],
                image_label: Some(label.into()),
                time_limit: None,
            },
            &mut std::io::sink(),
        );
        assert_eq!(deployed.is_ok(), !broken, "{deployed:?}");
        images.push(format!("registry.fly.io/{app}:{label}"));
    }
    Stand {
        fly,
        staging_image: images.remove(1),
        production_url: urls.remove(0),
        data,
    }
}

impl Stand {
    /// Points the fixture repository's production at the local Fly and gives it the
    /// workspace's fly.toml (checks on readyz, no volume).
    fn configure(&self, root: &Path) {
        let toml = format!(
            "[environments.staging]\napp = \"{STAGING_APP}\"\nurl = \"http://127.0.0.1:9\"\n\
             env_file = \"env/.env.fly.staging\"\ntemplate = \"env/.env.fly.staging.template\"\n\n\
             [environments.production]\napp = \"{PRODUCTION_APP}\"\nurl = \"{}\"\n\
             env_file = \"env/.env.fly.production\"\n\
             template = \"env/.env.fly.production.template\"\n",
            self.production_url
        );
        std::fs::write(root.join("ops/deploy.toml"), toml).unwrap();
        std::fs::copy(workspace().path("fly.toml"), root.join("fly.toml")).unwrap();
    }

    fn promote(&self, repo: &Repo, evidence: &StagingEvidence) -> (Verdict, String) {
        self.promote_with(repo, evidence, &["--wait-timeout", "60s"])
    }

    fn promote_with(
        &self,
        repo: &Repo,
        evidence: &StagingEvidence,
        flags: &[&str],
    ) -> (Verdict, String) {
        let words = std::iter::once("promote").chain(flags.iter().copied());
        let args = match xtask::cli::Cli::try_parse_words(words).unwrap().command {
            xtask::cli::Command::Promote(args) => Options::from(args),
            other => panic!("parsed as {other:?}"),
        };
        let args: Options = args;
        let mut out = Vec::new();
        let (verdict, _) =
            run_with(repo, &args, evidence, self.fly.flyctl(), &Gates, &mut out).unwrap();
        (verdict, String::from_utf8(out).unwrap())
    }

    fn production_deploys(&self) -> Vec<Vec<String>> {
        self.fly
            .calls()
            .unwrap()
            .into_iter()
            .map(|call| call.argv)
            .filter(|argv| argv.first().is_some_and(|a| a == "deploy"))
            .filter(|argv| argv.iter().any(|a| a == PRODUCTION_APP))
            // `--build-only` only resolves the image: no release.
            .filter(|argv| !argv.iter().any(|a| a == "--build-only"))
            .collect()
    }

    fn production_releases(&self) -> usize {
        self.fly.app(PRODUCTION_APP).unwrap().releases.len()
    }

    fn production_commit(&self) -> String {
        let url = format!("{}/api/v1/version", self.production_url);
        let body = get_json(&url);
        body["commit"].as_str().unwrap_or_default().to_string()
    }
}

/// A GET of JSON on a fresh runtime (the tests are synchronous).
fn get_json(url: &str) -> serde_json::Value {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = xtask::http::client(std::time::Duration::from_secs(5)).unwrap();
        client.get(url).send().await.unwrap().json().await.unwrap()
    })
}

const COMPLETE_CHECKLIST: &str = "# Production readiness\n\n## Secrets\n\n- [x] JWT secret rotated\n- [x] Admin emails reviewed\n";

#[test]
fn promote_refuses_without_go_or_a_complete_checklist_then_deploys_the_staging_image() {
    let stand = stand(false);
    assert_eq!(stand.production_commit(), OLD_COMMIT);
    let before = stand.production_deploys().len();

    // Staging NO-GO (a threshold breach): refused, naming the verdict; nothing deployed.
    let no_go = staging(Scenario {
        breach: true,
        ..Default::default()
    });
    stand.configure(no_go.repo.root());
    let mut evidence = StagingEvidence::from_report(&no_go.render("staging"));
    evidence.image = Some(stand.staging_image.clone());
    let (verdict, out) = stand.promote(&no_go.repo, &evidence);
    assert_eq!(verdict, Verdict::Fail, "{out}");
    assert!(out.contains("refused: staging's verdict is NO-GO"), "{out}");
    assert_eq!(
        stand.production_deploys().len(),
        before,
        "nothing deployed: {out}"
    );

    // GO, but the checklist has an open item: refused, naming the checklist.
    let go = staging(Scenario::default());
    stand.configure(go.repo.root());
    let mut evidence = StagingEvidence::from_report(&go.render("staging"));
    evidence.image = Some(stand.staging_image.clone());
    let (verdict, out) = stand.promote(&go.repo, &evidence);
    assert_eq!(verdict, Verdict::Fail, "{out}");
    assert!(!out.contains("verdict is"), "staging is GO: {out}");
    assert!(
        out.contains(
            "refused: the production checklist (ops/PROD_READINESS_CHECKLIST.md) is not complete"
        ),
        "{out}"
    );
    assert_eq!(
        stand.production_deploys().len(),
        before,
        "nothing deployed: {out}"
    );

    // Everything holds: the staging image, unbuilt, blue-green, serves on production.
    std::fs::write(
        go.repo.path("ops/PROD_READINESS_CHECKLIST.md"),
        COMPLETE_CHECKLIST,
    )
    .unwrap();
    let mut evidence = StagingEvidence::from_report(&go.render("staging"));
    evidence.image = Some(stand.staging_image.clone());
    assert!(evidence.missing().is_empty(), "{:?}", evidence.missing());
    let (verdict, out) = stand.promote(&go.repo, &evidence);
    assert_eq!(verdict, Verdict::Pass, "{out}");
    let deploys = stand.production_deploys();
    assert_eq!(deploys.len(), before + 1, "{deploys:?}");
    let argv = deploys.last().unwrap().join(" ");
    assert!(
        argv.contains(&format!("--image {}", stand.staging_image)),
        "{argv}"
    );
    assert!(argv.contains("--strategy bluegreen"), "{argv}");
    assert!(!argv.contains("--build-arg"), "never a rebuild: {argv}");
    assert_eq!(stand.production_commit(), STAGING_COMMIT);
    let records = std::fs::read_dir(go.repo.path("target/xtask/runs"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .contains("-promote-production-")
        })
        .count();
    assert_eq!(
        records, 2,
        "the refusal and the promotion are both recorded"
    );
    drop(stand.data);
}

/// Staging evidence that holds, with the given image.
fn holding_evidence(image: &str) -> (report_fixtures::Fixture, StagingEvidence) {
    let go = staging(Scenario::default());
    std::fs::write(
        go.repo.path("ops/PROD_READINESS_CHECKLIST.md"),
        COMPLETE_CHECKLIST,
    )
    .unwrap();
    let mut evidence = StagingEvidence::from_report(&go.render("staging"));
    evidence.image = Some(image.to_string());
    (go, evidence)
}

#[test]
fn a_promoted_image_that_does_not_serve_is_rolled_back() {
    let stand = stand(true);
    let (go, evidence) = holding_evidence(&stand.staging_image);
    stand.configure(go.repo.root());
    let (webhook, posts) = webhook_support::receiver(200);
    std::fs::write(
        go.repo.path("env/.env.fly.production"),
        format!("ALERT_WEBHOOK_URL={webhook}\n"),
    )
    .unwrap();
    let (verdict, out) = stand.promote_with(&go.repo, &evidence, &["--wait-timeout", "5s"]);
    assert_eq!(verdict, Verdict::Fail, "{out}");
    assert!(out.contains("rolling back production to"), "{out}");
    // The channel heard it go live and come back.
    let said = webhook_support::texts(&posts);
    assert_eq!(said.len(), 2, "{said:?}\n{out}");
    assert!(said[0].starts_with("Going live at "), "{said:?}");
    assert!(
        said[1].starts_with("production: the promotion of ")
            && said[1].contains(" FAIL: ")
            && said[1].contains("; rolled back to "),
        "{said:?}"
    );
    assert!(!out.contains(webhook_support::HOOK_SECRET), "{out}");
    assert_eq!(
        stand.production_commit(),
        OLD_COMMIT,
        "the old build serves again"
    );
}

#[test]
fn a_dry_run_checks_everything_and_deploys_nothing() {
    let stand = stand(false);
    let (go, evidence) = holding_evidence(&stand.staging_image);
    stand.configure(go.repo.root());
    let before = stand.production_deploys().len();
    let (verdict, out) = stand.promote_with(&go.repo, &evidence, &["--dry-run"]);
    assert_eq!(verdict, Verdict::Pass, "{out}");
    assert!(
        out.contains("would run:") && out.contains("--image"),
        "{out}"
    );
    assert_eq!(stand.production_deploys().len(), before);
    assert!(
        !go.repo
            .path("target/xtask/runs")
            .read_dir()
            .unwrap()
            .any(|e| e.unwrap().file_name().to_string_lossy().contains("promote"))
    );
}

#[test]
fn blue_green_prerequisites_are_checked_before_flyctl_runs() {
    let stand = stand(false);
    let (go, evidence) = holding_evidence(&stand.staging_image);
    stand.configure(go.repo.root());
    let fly_toml = std::fs::read_to_string(go.repo.path("fly.toml")).unwrap();
    let without_checks = fly_toml.replace("[[http_service.checks]]", "[http_service.unused]");
    std::fs::write(
        go.repo.path("fly.toml"),
        format!("{without_checks}\n[mounts]\nsource = \"data\"\ndestination = \"/data\"\n"),
    )
    .unwrap();
    let before = stand.production_deploys().len();
    let (verdict, out) = stand.promote(&go.repo, &evidence);
    assert_eq!(verdict, Verdict::Fail, "{out}");
    assert!(out.contains("defines no health checks"), "{out}");
    assert!(out.contains("mounts a volume"), "{out}");
    assert_eq!(
        stand.production_deploys().len(),
        before,
        "nothing deployed: {out}"
    );
}

/// Production declares two machines and runs one: promote says to scale first, and deploys
/// nothing.
#[test]
fn promote_refuses_a_production_app_with_fewer_machines_than_declared() {
    let stand = stand(false);
    let (go, evidence) = holding_evidence(&stand.staging_image);
    stand.configure(go.repo.root());
    let config = go.repo.path("ops/deploy.toml");
    let mut toml = std::fs::read_to_string(&config).unwrap();
    toml.push_str("\n[environments.production.machines]\nmin_running = 2\nregions = { scl = 2 }\n");
    std::fs::write(&config, toml).unwrap();
    let before = stand.production_deploys().len();
    let (verdict, out) = stand.promote(&go.repo, &evidence);
    assert_eq!(verdict, Verdict::Fail, "{out}");
    assert!(
        out.contains("has 1 machine(s) but ops/deploy.toml declares 2"),
        "{out}"
    );
    assert!(out.contains("cargo xtask scale --env production"), "{out}");
    assert_eq!(
        stand.production_deploys().len(),
        before,
        "nothing deployed: {out}"
    );
}

/// A rolling deploy that failed half way leaves production on two images; flyctl's blue-green
/// refuses such an app, so promote says so (and what to do) before any release is made.
#[test]
fn promote_refuses_an_app_on_mixed_images_before_flyctl_runs() {
    let stand = stand(false);
    let (go, evidence) = holding_evidence(&stand.staging_image);
    stand.configure(go.repo.root());
    let left_behind = stand
        .fly
        .add_machine(
            PRODUCTION_APP,
            xtask::localfly::MachineKind::App,
            Some("registry.fly.io/cabanas-production:0ldhalfrolled"),
        )
        .unwrap();
    let before = stand.production_deploys().len();
    let (verdict, out) = stand.promote(&go.repo, &evidence);
    assert_eq!(verdict, Verdict::Fail, "{out}");
    assert!(
        out.contains("runs more than one image")
            && out.contains(&left_behind)
            && out.contains("cargo xtask rollback --env production"),
        "{out}"
    );
    assert_eq!(
        stand.production_deploys().len(),
        before,
        "nothing deployed: {out}"
    );
}

/// Production's deploy token is scoped to production (`fly tokens create deploy`), so it
/// cannot read staging's image: promote finds that out with `flyctl deploy --build-only`
/// before any release, and names the token to create.
#[test]
fn promote_refuses_an_image_production_cannot_read_and_names_the_token() {
    let stand = stand(false);
    let (go, evidence) = holding_evidence(&stand.staging_image);
    stand.configure(go.repo.root());
    stand.fly.token_scope(PRODUCTION_APP, &[]).unwrap();
    let releases = stand.production_releases();
    let (verdict, out) = stand.promote(&go.repo, &evidence);
    assert_eq!(verdict, Verdict::Fail, "{out}");
    assert!(
        out.contains("cannot read the staging image") && out.contains("fly tokens create org"),
        "{out}"
    );
    assert_eq!(stand.production_releases(), releases, "no release: {out}");
    // With a token that reads both apps, the same promotion goes through.
    stand
        .fly
        .token_scope(PRODUCTION_APP, &[STAGING_APP])
        .unwrap();
    let (verdict, out) = stand.promote(&go.repo, &evidence);
    assert_eq!(verdict, Verdict::Pass, "{out}");
    assert_eq!(stand.production_commit(), STAGING_COMMIT);
}

/// An image first released before the one production runs is a step back: refused unless
/// `--allow-older`.
#[test]
fn promote_refuses_an_older_image_unless_allowed() {
    let stand = stand(false);
    let newer = "0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e";
    stand
        .fly
        .flyctl()
        .deploy(
            &DeployCommand {
                app: PRODUCTION_APP.into(),
                config: workspace().path("fly.toml"),
                image: None,
                strategy: None,
                wait_timeout: std::time::Duration::from_secs(60),
                build_args: vec![("GIT_COMMIT".into(), newer.into())],
                image_label: Some(newer[..12].into()),
                time_limit: None,
            },
            &mut std::io::sink(),
        )
        .unwrap();
    let (go, evidence) = holding_evidence(&stand.staging_image);
    stand.configure(go.repo.root());
    let releases = stand.production_releases();
    let (verdict, out) = stand.promote(&go.repo, &evidence);
    assert_eq!(verdict, Verdict::Fail, "{out}");
    assert!(
        out.contains("is older than the image") && out.contains("--allow-older"),
        "{out}"
    );
    assert_eq!(stand.production_releases(), releases, "no release: {out}");
    let (verdict, out) = stand.promote_with(
        &go.repo,
        &evidence,
        &["--wait-timeout", "60s", "--allow-older"],
    );
    assert_eq!(verdict, Verdict::Pass, "{out}");
    assert_eq!(stand.production_commit(), STAGING_COMMIT);
}
