//! A streaming replica of a throwaway cluster, as a second region's read replica: a base
//! backup taken with `pg_basebackup -R` (which writes `primary_conninfo` and
//! `standby.signal`, so the copy starts as a hot standby streaming from the primary), served
//! on its own loopback port. Used by the local Fly's region tests and `rehearse`.

use anyhow::Context;
use xshell::{Shell, cmd};

use super::{Durability, Launcher, PgBinaries, PgCluster, hand_over, serve};

impl PgCluster {
    /// Starts a hot standby of this cluster, streaming from it. Dropping it stops it.
    pub fn start_replica(&self, binaries: &PgBinaries) -> anyhow::Result<PgCluster> {
        let sh = Shell::new()?;
        let dir = tempfile::Builder::new()
            .prefix("cabanas-pg-replica-")
            .tempdir()
            .context("creating a temporary directory for the PostgreSQL replica")?;
        let launcher = Launcher {
            as_user: self.control.launcher.as_user,
        };
        if launcher.as_user.is_some() {
            hand_over(&sh, dir.path())?;
        }
        let port = self
            .url
            .rsplit_once(':')
            .and_then(|(_, rest)| rest.split('/').next())
            .context("the primary's URL has no port")?
            .to_string();
        let data = dir.path().join("data");
        let basebackup = binaries.dir().join("pg_basebackup");
        let (program, prefix) = launcher.invoke(&basebackup);
        cmd!(
            sh,
            "{program} {prefix...} -h 127.0.0.1 -p {port} -U postgres -D {data} -R -X stream --no-sync"
        )
        .quiet()
        .ignore_stdout()
        .output()
        .with_context(|| format!("pg_basebackup failed ({})", basebackup.display()))?;
        serve(
            &sh,
            &binaries.dir().join("pg_ctl"),
            launcher,
            dir,
            Durability::Off,
        )
    }
}
