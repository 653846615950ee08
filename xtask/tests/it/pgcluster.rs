//! The throwaway PostgreSQL cluster starts on loopback, accepts connections, and leaves nothing
//! behind when dropped.

use std::net::TcpStream;
use std::time::Duration;

use xtask::pgcluster::{PgBinaries, PgCluster};

#[test]
fn cluster_starts_on_loopback_and_is_gone_after_drop() {
    let Some(binaries) = PgBinaries::find() else {
        crate::support::skip_or_fail_in_ci(
            "cluster_starts_on_loopback_and_is_gone_after_drop",
            "no PostgreSQL server binaries (apt-get install postgresql)",
        );
        return;
    };
    let cluster = PgCluster::start(&binaries).expect("cluster starts");
    let url = cluster.url().to_string();
    assert!(url.starts_with("postgres://postgres@127.0.0.1:"), "{url}");
    let port = crate::support::port_of(&url);
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect(address).expect("the server accepts connections");

    let psql = binaries.dir().join("psql");
    if psql.is_file() {
        let output = std::process::Command::new(psql)
            .args([
                url.as_str(),
                "-tAc",
                "CREATE EXTENSION btree_gist; SELECT 1",
            ])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    drop(cluster);
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        TcpStream::connect_timeout(&address, Duration::from_secs(1)).is_err(),
        "the server still listens after the cluster was dropped"
    );
}
