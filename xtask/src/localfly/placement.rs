//! Where each machine runs: a leaf the app's state holds and a machine's environment reads
//! (see [`super::regions`] for the commands that change it).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Where each machine runs and what each region adds to its machines' environment.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RegionMap {
    /// Machine id → region; a machine not listed is in the app's primary region.
    #[serde(default)]
    pub placement: BTreeMap<String, String>,
    /// Region → variables its machines get on top of the app's.
    #[serde(default)]
    pub env: BTreeMap<String, BTreeMap<String, String>>,
}

impl RegionMap {
    /// The region machine `id` runs in, `primary` unless placed elsewhere.
    pub fn region_of<'a>(&'a self, primary: &'a str, id: &str) -> &'a str {
        self.placement.get(id).map_or(primary, String::as_str)
    }

    /// Sets `FLY_REGION`, `PRIMARY_REGION` and the region's variables in the environment of
    /// machine `id` of an app whose primary region is `primary`.
    pub fn apply(&self, primary: &str, id: &str, env: &mut BTreeMap<String, String>) {
        let region = self.region_of(primary, id);
        env.insert("FLY_REGION".into(), region.into());
        env.insert("PRIMARY_REGION".into(), primary.into());
        if let Some(extra) = self.env.get(region) {
            env.extend(extra.clone());
        }
    }
}
