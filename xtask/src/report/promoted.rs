//! What a promote proved, as production's deploy step shows it: a leaf the record views and
//! [`promotes`](super::promotes) (which reads promote records as deploys) both use.

use crate::verdict::Verdict;

/// What a promote proved, shown on production's deploy step.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PromotedView {
    /// The image promoted (staging's).
    pub image: Option<String>,
    /// Whether the image was proven to serve on production.
    pub proof: Option<Verdict>,
    /// Smoke against production after the deploy.
    pub smoke: Option<Verdict>,
}

impl PromotedView {
    /// `image registry.fly.io/app:tag, proven to serve: PASS, smoke: PASS`.
    pub fn line(&self) -> String {
        let shown = |v: Option<Verdict>| v.map_or_else(|| "not reached".into(), |v| v.to_string());
        let mut parts = Vec::new();
        if let Some(image) = &self.image {
            parts.push(format!("image {image}"));
        }
        parts.push(format!("proven to serve: {}", shown(self.proof)));
        parts.push(format!("smoke: {}", shown(self.smoke)));
        parts.join(", ")
    }
}
