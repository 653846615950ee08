//! Loopback ports for servers this tool starts as child processes (PostgreSQL, the service,
//! the local Fly's machines and API, containers), which bind the port themselves a moment
//! after it is chosen.
//!
//! Binding port 0 and letting it go, the usual way, hands out a port from the kernel's
//! ephemeral range: the same range every outgoing connection's source port and every other
//! `bind(0)` draws from, so between the choice and the child's bind another socket can take
//! it ("Address already in use"; seen when many tests start servers at once). The ports here
//! come from below that range, where only an explicit bind lands, each checked bindable and
//! never handed out twice by one process.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::sync::{Mutex, PoisonError};

use anyhow::Context;
use rand::Rng;

/// The lowest port handed out: above the registered ports most services listen on.
const LOWEST: u16 = 10_000;
/// The kernel's default ephemeral range starts here (Linux `ip_local_port_range`).
const EPHEMERAL_DEFAULT: u16 = 32_768;
/// Random ports tried before falling back to one the kernel picks.
const ATTEMPTS: usize = 64;

static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// A loopback port nothing is bound to right now, below the ephemeral range, not handed out
/// before by this process. Falls back to a kernel-chosen port when no such port is found.
pub fn free_port() -> anyhow::Result<u16> {
    let below = ephemeral_start().unwrap_or(EPHEMERAL_DEFAULT);
    if below > LOWEST + 1_000 {
        let mut rng = rand::rng();
        let mut handed_out = HANDED_OUT.lock().unwrap_or_else(PoisonError::into_inner);
        for _ in 0..ATTEMPTS {
            let port = rng.random_range(LOWEST..below);
            if !handed_out.contains(&port) && TcpListener::bind(("127.0.0.1", port)).is_ok() {
                handed_out.insert(port);
                return Ok(port);
            }
        }
    }
    Ok(TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .context("finding a free loopback port")?
        .port())
}

/// The first port of the kernel's ephemeral range, from `/proc/sys/net/ipv4/ip_local_port_range`.
fn ephemeral_start() -> Option<u16> {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    parse_range_start(&range)
}

/// `"32768\t60999\n"` → 32768.
fn parse_range_start(range: &str) -> Option<u16> {
    range.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_range_start_is_the_first_number() {
        assert_eq!(parse_range_start("32768\t60999\n"), Some(32768));
        assert_eq!(parse_range_start("1024 65535"), Some(1024));
        assert_eq!(parse_range_start(""), None);
        assert_eq!(parse_range_start("many ports"), None);
    }

    #[test]
    fn ports_are_bindable_below_the_ephemeral_range_and_never_repeated() {
        let below = ephemeral_start().unwrap_or(EPHEMERAL_DEFAULT);
        let ports: Vec<u16> = (0..200).map(|_| free_port().unwrap()).collect();
        let distinct: BTreeSet<u16> = ports.iter().copied().collect();
        assert_eq!(distinct.len(), ports.len(), "a port handed out twice");
        if below > LOWEST + 1_000 {
            assert!(
                ports.iter().all(|p| (LOWEST..below).contains(p)),
                "{ports:?} not all in {LOWEST}..{below}"
            );
        }
        for port in ports.iter().take(20) {
            TcpListener::bind(("127.0.0.1", *port)).unwrap();
        }
    }
}
