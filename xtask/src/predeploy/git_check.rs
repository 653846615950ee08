//! `git`: the working tree is clean (a warning, a failure with `--strict`), so the deployed
//! image is a commit someone can check out; the commit goes into the record.

use super::Context;
use super::outcome::{At, Check, CheckResult};

/// Dirty paths listed in the evidence; the rest are counted.
const SHOWN: usize = 5;

pub(crate) fn check(cx: &Context) -> CheckResult {
    let mut check = Check::new("git", "the working tree is clean and HEAD is recorded");
    let strict = cx.options.strict;
    let state = cx.repo.git_snapshot();
    let Some(snapshot) = state else {
        check.fail_if(
            strict,
            At::none(),
            "not a git checkout (or no commit yet): the deploy cannot be traced to a commit",
            "run from a git checkout with at least one commit",
        );
        return check.finish();
    };
    let head = &snapshot.commit;
    let short = &head[..head.len().min(12)];
    let dirty: Vec<&str> = snapshot.changed.iter().map(String::as_str).collect();
    if dirty.is_empty() {
        check.pass(At::none(), format!("clean at {short}"));
    } else {
        let mut shown = dirty
            .iter()
            .take(SHOWN)
            .copied()
            .collect::<Vec<_>>()
            .join(", ");
        if dirty.len() > SHOWN {
            shown.push_str(&format!(" and {} more", dirty.len() - SHOWN));
        }
        check.fail_if(
            strict,
            At::none(),
            format!("{} uncommitted changes at {short}: {shown}", dirty.len()),
            "commit or stash them, so the deploy is a commit (fails with --strict)",
        );
    }
    check.finish()
}
