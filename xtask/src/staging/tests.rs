//! The staging walk against a scripted world: which steps run, skip, stop and resume.

use std::cell::RefCell;
use std::collections::HashMap;

use super::*;
use crate::report::Next;

const IDS: [&str; 10] = [
    "predeploy",
    "fly_login",
    "secrets_loaded",
    "deploy",
    "health",
    "smoke_thresholds",
    "overlap",
    "staging_validated",
    "stability_24h",
    "production_checklist",
];

/// The saved results, as the map reads them: a state per step; tasks update it like their
/// records would.
struct World {
    states: RefCell<HashMap<&'static str, State>>,
    verdicts: RefCell<HashMap<&'static str, Verdict>>,
    fixes: RefCell<HashMap<&'static str, Vec<String>>>,
    ran: RefCell<Vec<Task>>,
}

impl World {
    fn new() -> World {
        World {
            states: RefCell::new(IDS.iter().map(|id| (*id, State::Pending)).collect()),
            verdicts: RefCell::new(HashMap::new()),
            fixes: RefCell::new(HashMap::new()),
            ran: RefCell::new(Vec::new()),
        }
    }

    fn outcome_of(&self, task: Task, verdict: Verdict) {
        self.verdicts.borrow_mut().insert(task.name(), verdict);
    }

    fn fix_of(&self, task: Task, fix: &[&str]) {
        let fix = fix.iter().map(|c| c.to_string()).collect();
        self.fixes.borrow_mut().insert(task.name(), fix);
    }

    fn ran(&self) -> Vec<Task> {
        self.ran.take()
    }
}

impl Tasks for World {
    fn position(&self) -> anyhow::Result<DecisionMap> {
        let states = self.states.borrow();
        let steps: Vec<Step> = IDS
            .iter()
            .map(|id| Step {
                id: StepId::parse(id).expect("a step id of the map"),
                title: format!("title of {id}"),
                state: states[id],
                evidence: format!("{id} is {}", states[id].label()),
                command: Some(format!("cargo xtask {id} --env staging")),
            })
            .collect();
        let done = steps.iter().filter(|s| s.state == State::Done).count();
        let next = steps
            .iter()
            .find(|s| s.state != State::Done)
            .map(|s| s.id.as_str())
            .unwrap_or("all");
        Ok(DecisionMap {
            environment: ENVIRONMENT.into(),
            steps,
            done,
            next: Next {
                step: next.into(),
                command: None,
                action: format!("next is {next}"),
            },
        })
    }

    fn run(&self, task: Task) -> anyhow::Result<Outcome> {
        self.ran.borrow_mut().push(task);
        let verdict = self
            .verdicts
            .borrow()
            .get(task.name())
            .copied()
            .unwrap_or(Verdict::Pass);
        let state = if verdict == Verdict::Fail {
            State::Failed
        } else {
            State::Done
        };
        let mut states = self.states.borrow_mut();
        // The Fly check saves no record: a failure leaves the map as the older records say.
        let recorded = !(task == Task::Fly && verdict == Verdict::Fail);
        for id in IDS.into_iter().filter(|_| recorded) {
            if StepId::parse(id).and_then(Task::for_step) == Some(task) {
                states.insert(id, state);
            }
        }
        if task == Task::Overlap && state == State::Done {
            states.insert("staging_validated", State::Done);
        }
        Ok(Outcome {
            verdict,
            notes: vec![format!("{} said no", task.name())],
            rollback: (task == Task::Deploy).then(|| "cargo xtask rollback --env staging".into()),
            fix: self
                .fixes
                .borrow()
                .get(task.name())
                .cloned()
                .unwrap_or_default(),
        })
    }

    fn report(&self) -> anyhow::Result<Vec<PathBuf>> {
        Ok(vec![PathBuf::from("backend/docs/DEPLOYMENT_SUMMARY.md")])
    }
}

/// Answers as scripted and remembers the questions.
struct Answers {
    answers: Vec<bool>,
    asked: Vec<String>,
}

impl Confirm for Answers {
    fn confirm(&mut self, question: &str) -> anyhow::Result<bool> {
        self.asked.push(question.to_string());
        Ok(if self.answers.is_empty() {
            true
        } else {
            self.answers.remove(0)
        })
    }
}

fn walk_with(world: &World, args: &Options, confirm: &mut dyn Confirm) -> (RunSummary, String) {
    let mut out = Vec::new();
    let summary = walk(args, world, confirm, &mut out).unwrap();
    (summary, String::from_utf8(out).unwrap())
}

fn yes() -> Terminal {
    Terminal {
        yes: true,
        interactive: false,
    }
}

const ALL: [Task; 6] = [
    Task::Predeploy,
    Task::Fly,
    Task::Secrets,
    Task::Deploy,
    Task::Smoke,
    Task::Overlap,
];

#[test]
fn a_full_run_runs_each_task_once_in_order_and_ends_with_the_position_and_report() {
    let world = World::new();
    let (summary, out) = walk_with(&world, &Options::default(), &mut yes());
    assert_eq!(summary.verdict, Verdict::Pass, "{out}");
    assert_eq!(
        world.ran(),
        ALL,
        "smoke runs once for health and thresholds"
    );
    assert!(out.contains("8 of 10 steps done"), "{out}");
    assert!(out.contains("next is stability_24h"), "{out}");
    assert!(
        out.contains("report: backend/docs/DEPLOYMENT_SUMMARY.md"),
        "{out}"
    );
}

#[test]
fn a_second_full_run_skips_every_fresh_step_and_says_why() {
    let world = World::new();
    walk_with(&world, &Options::default(), &mut yes());
    world.ran();
    let (summary, out) = walk_with(&world, &Options::default(), &mut yes());
    assert_eq!(summary.verdict, Verdict::Pass);
    assert_eq!(world.ran(), [], "{out}");
    assert_eq!(summary.skipped.len(), 7, "{out}");
    assert!(out.contains("skip deploy: fresh: deploy is done"), "{out}");
}

#[test]
fn a_smoke_failure_stops_with_fix_evidence_rollback_and_the_next_run_resumes_at_smoke() {
    let world = World::new();
    world.outcome_of(Task::Smoke, Verdict::Fail);
    let (summary, out) = walk_with(&world, &Options::default(), &mut yes());
    assert_eq!(summary.verdict, Verdict::Fail);
    assert_eq!(&world.ran()[..], &ALL[..5], "overlap never runs: {out}");
    assert!(out.contains("STOPPED at health"), "{out}");
    assert!(out.contains("smoke said no"), "{out}");
    assert!(out.contains("evidence: health is FAILED"), "{out}");
    assert!(
        out.contains("fix, then run it alone: cargo xtask health"),
        "{out}"
    );

    world.outcome_of(Task::Smoke, Verdict::Pass);
    let (summary, out) = walk_with(&world, &Options::default(), &mut yes());
    assert_eq!(summary.verdict, Verdict::Pass, "{out}");
    assert_eq!(world.ran(), [Task::Smoke, Task::Overlap], "{out}");
    assert!(out.contains("skip deploy: fresh"), "{out}");
}

#[test]
fn a_failed_deploy_prints_the_rollback_command() {
    let world = World::new();
    world.outcome_of(Task::Deploy, Verdict::Fail);
    let (_, out) = walk_with(&world, &Options::default(), &mut yes());
    assert!(
        out.contains("roll back: cargo xtask rollback --env staging"),
        "{out}"
    );
    assert!(out.contains("resumes at deploy"), "{out}");
}

#[test]
fn without_a_terminal_or_yes_it_refuses_before_the_first_mutating_task() {
    let world = World::new();
    let mut nobody = Terminal {
        yes: false,
        interactive: false,
    };
    let error = walk(&Options::default(), &world, &mut nobody, &mut Vec::new()).unwrap_err();
    assert!(format!("{error:#}").contains("--yes"), "{error:#}");
    assert_eq!(world.ran(), [Task::Predeploy, Task::Fly]);
}

#[test]
fn each_mutating_step_is_asked_about_and_a_no_stops_the_run() {
    let world = World::new();
    let mut answers = Answers {
        answers: vec![true, false],
        asked: Vec::new(),
    };
    let (summary, out) = walk_with(&world, &Options::default(), &mut answers);
    assert_eq!(summary.verdict, Verdict::Fail);
    assert_eq!(answers.asked.len(), 2, "{:?}", answers.asked);
    assert!(answers.asked[0].starts_with("run secrets"));
    assert!(answers.asked[1].starts_with("run deploy"));
    assert_eq!(world.ran(), [Task::Predeploy, Task::Fly, Task::Secrets]);
    assert!(out.contains("deploy: declined"), "{out}");
}

#[test]
fn from_starts_at_the_step_and_reruns_it_even_when_fresh() {
    let world = World::new();
    walk_with(&world, &Options::default(), &mut yes());
    world.ran();
    let args = Options {
        from: Some("deploy".into()),
        ..Options::default()
    };
    let (_, out) = walk_with(&world, &args, &mut yes());
    assert_eq!(world.ran(), [Task::Deploy], "{out}");
    assert!(out.contains("skip predeploy: before --from"), "{out}");
    let bad = Options {
        from: Some("stability_24h".into()),
        ..Options::default()
    };
    let error = walk(&bad, &world, &mut yes(), &mut Vec::new()).unwrap_err();
    assert!(format!("{error}").contains("no such step"), "{error}");
}

#[test]
fn a_dry_run_calls_nothing_and_asks_nothing() {
    let world = World::new();
    let mut nobody = Terminal {
        yes: false,
        interactive: false,
    };
    let args = Options {
        dry_run: true,
        ..Options::default()
    };
    let mut out = Vec::new();
    walk(&args, &world, &mut nobody, &mut out).unwrap();
    let out = String::from_utf8(out).unwrap();
    assert_eq!(world.ran(), [], "{out}");
    assert!(out.contains("would run deploy (pending)"), "{out}");
    assert!(out.contains("would run health (pending)"), "{out}");
    assert!(
        !out.contains("would run smoke_thresholds"),
        "one smoke run: {out}"
    );
    assert!(!out.contains("report:"), "{out}");
}

#[test]
fn a_failed_fly_step_over_old_records_prints_its_own_fix_and_the_position_there() {
    let world = World::new();
    walk_with(&world, &Options::default(), &mut yes());
    for id in IDS {
        world.states.borrow_mut().insert(id, State::Done);
    }
    world.ran();
    world.outcome_of(Task::Fly, Verdict::Fail);
    world.fix_of(
        Task::Fly,
        &["fly apps create x", "fly postgres create --name x-db"],
    );
    let args = Options {
        from: Some("fly_login".into()),
        ..Options::default()
    };
    let (summary, out) = walk_with(&world, &args, &mut yes());
    assert_eq!(summary.verdict, Verdict::Fail);
    assert_eq!(world.ran(), [Task::Fly], "{out}");
    assert!(
        out.contains("  fix:\n    fly apps create x\n    fly postgres create --name x-db\n"),
        "{out}"
    );
    assert!(!out.contains("run it alone"), "{out}");
    assert!(!out.contains("evidence: fly_login is done"), "{out}");
    assert!(
        out.contains("position (staging): 1 of 10 steps done"),
        "{out}"
    );
    assert!(
        out.contains("next: title of fly_login (FAILED): failed in this run: fly said no\n"),
        "{out}"
    );
    assert!(
        out.contains("  fly apps create x && fly postgres create --name x-db\n"),
        "{out}"
    );
}
