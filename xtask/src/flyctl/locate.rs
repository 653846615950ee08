//! Finding the flyctl binary: `$FLYCTL`, else `flyctl`, else `fly` on `PATH`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::bail;

use super::INSTALL_HINT;

/// Finds flyctl: `$FLYCTL` (a path, or a name looked up on `PATH`), else `flyctl`, else `fly`
/// on `PATH`. Returns the program and how to show it in commands.
pub fn locate(
    flyctl_var: Option<OsString>,
    path_var: Option<OsString>,
) -> anyhow::Result<(PathBuf, String)> {
    let search = |name: &str| -> Option<PathBuf> {
        let path_var = path_var.as_ref()?;
        std::env::split_paths(path_var)
            .map(|dir| dir.join(name))
            .find(|candidate| is_executable(candidate))
    };
    if let Some(value) = flyctl_var.filter(|v| !v.is_empty()) {
        let value = PathBuf::from(value);
        let shown = value.display().to_string();
        if value.components().count() > 1 {
            if is_executable(&value) {
                return Ok((value, shown));
            }
            bail!("FLYCTL is set to {shown}, which is not an executable file; {INSTALL_HINT}");
        }
        return match search(&shown) {
            Some(path) => Ok((path, shown)),
            None => bail!("FLYCTL is set to `{shown}`, which is not on PATH; {INSTALL_HINT}"),
        };
    }
    for name in ["flyctl", "fly"] {
        if let Some(path) = search(name) {
            return Ok((path, name.to_string()));
        }
    }
    bail!("flyctl is not on PATH; {INSTALL_HINT}")
}

fn is_executable(path: &Path) -> bool {
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.is_file() && meta.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        meta.is_file()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locate_prefers_flyctl_var_then_path() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("fly");
        std::fs::write(&bin, "#!/bin/sh\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let path = Some(dir.path().as_os_str().to_owned());
        let (found, shown) = locate(None, path.clone()).unwrap();
        assert_eq!((found, shown.as_str()), (bin.clone(), "fly"));
        let (found, _) = locate(Some(bin.clone().into()), None).unwrap();
        assert_eq!(found, bin);
        let missing = locate(None, Some(OsString::from("/nonexistent")))
            .unwrap_err()
            .to_string();
        assert!(missing.contains("fly.io/install.sh"), "{missing}");
        let bad = locate(Some("/nope/flyctl".into()), path)
            .unwrap_err()
            .to_string();
        assert!(bad.contains("FLYCTL is set to /nope/flyctl"), "{bad}");
    }
}
