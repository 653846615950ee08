//! Reading files that may not be what their name says: a FIFO where a record is expected
//! would block forever, an env file symlinked to `/dev/zero` would be read until memory runs
//! out, a record copied from elsewhere may be any size. Only regular files are opened, and
//! never read past a cap.

use std::io::{self, Read};
use std::path::Path;

/// The largest env file, template or config file read (they are a few KB).
pub const CONFIG_LIMIT: u64 = 1024 * 1024;
/// The largest result record read (the largest a task writes is well under 1 MB).
pub const RECORD_LIMIT: u64 = 16 * 1024 * 1024;

/// The bytes of `path`, which must be a regular file (symlinks followed) of at most
/// `limit` bytes. A missing file keeps its `NotFound` kind; anything else that is not a
/// regular file, or is larger, is an `InvalidInput` error saying so.
pub fn read_capped(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    // Checked before opening: opening a FIFO for reading blocks until a writer appears.
    let metadata = std::fs::metadata(path)?;
    if !metadata.is_file() {
        return Err(not_regular());
    }
    let file = std::fs::File::open(path)?;
    // And again on what was opened, in case the path was swapped in between.
    if !file.metadata()?.is_file() {
        return Err(not_regular());
    }
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("is larger than {limit} bytes, far more than it should hold"),
        ));
    }
    Ok(bytes)
}

/// [`read_capped`] as UTF-8 text.
pub fn read_text_capped(path: &Path, limit: u64) -> io::Result<String> {
    String::from_utf8(read_capped(path, limit)?)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "is not UTF-8 text"))
}

fn not_regular() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "is not a regular file (a FIFO, device or directory); replace it with a file",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_regular_files_within_the_cap_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.txt");
        std::fs::write(&path, "12345").unwrap();
        assert_eq!(read_text_capped(&path, 5).unwrap(), "12345");
        let err = read_capped(&path, 4).unwrap_err();
        assert!(err.to_string().contains("larger than 4 bytes"), "{err}");
        let err = read_capped(dir.path(), 4).unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
        let missing = read_capped(&dir.path().join("none"), 4).unwrap_err();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
    }
}
