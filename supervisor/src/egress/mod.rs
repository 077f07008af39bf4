//! Egress: the network a profile with host rules gets.
//!
//! Landlock rules TCP ports, not hosts. A process whose profile has
//! `allow_hosts`/`deny_hosts` therefore runs in its own network namespace
//! with only loopback, where the one way out is cordon's HTTP proxy:
//! init listens on 127.0.0.1:[`PROXY_PORT`] inside that namespace and
//! hands the listener to the supervisor, which serves it from the host's
//! network. Each connection (`CONNECT host:port`, or a plain-HTTP request
//! with an absolute URL) is decided on its host and port, resolved by the
//! proxy itself, checked again on the addresses (internal ones only when a
//! rule names them), recorded, and counted toward `max_denials` when
//! refused.
//!
//! - [`rules`]: the rule language and the decision (pure).
//! - [`address`]: which addresses are internal (pure).
//! - [`http`]: request heads (pure).
//! - [`proxy`]: the server.
//!
//! Proxy-delivered secrets (`deliver = "proxy"`): for a CONNECT to a host
//! such a secret names, the proxy terminates TLS with a per-session CA
//! ([`tls`]), reads each HTTP/1.1 request ([`h1`]) and swaps the
//! secret's placeholder for its value ([`inject`]); every other host
//! stays a plain tunnel.

pub mod address;
pub mod h1;
pub mod http;
pub mod inject;
pub mod proxy;
pub mod rules;
pub mod tls;

#[cfg(test)]
mod proxy_tests;

pub use inject::{Fetched, InjectSecret, Injector, Supplier, Supply};
pub use proxy::{Context, Proxy};
pub use rules::Rules;
pub use tls::Tls;

pub use crate::profile::hosts::PROXY_PORT;

/// Sends `env`'s HTTP clients through the proxy: the proxy variables are
/// set (a value passed in for one is replaced, not shadowed) and the
/// variables that would send traffic around it are removed.
pub fn route_through_proxy(env: &mut Vec<(String, String)>) {
    let proxy = proxy_environment();
    env.retain(|(k, _)| {
        !BYPASS_VARIABLES.contains(&k.as_str()) && !proxy.iter().any(|(p, _)| p == k)
    });
    env.extend(proxy);
}

/// The proxy variables a sandbox with host rules gets, both cases: curl
/// reads `http_proxy` only in lower case, most others either.
fn proxy_environment() -> Vec<(String, String)> {
    let url = format!("http://127.0.0.1:{PROXY_PORT}");
    ["HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY"]
        .into_iter()
        .flat_map(|v| [v.to_string(), v.to_ascii_lowercase()])
        .map(|v| (v, url.clone()))
        .collect()
}

/// Variables that would send some traffic around the proxy (there is no
/// route around it, so they would only turn into failures).
const BYPASS_VARIABLES: [&str; 2] = ["NO_PROXY", "no_proxy"];

#[cfg(test)]
mod env_tests {
    use super::*;

    #[test]
    fn the_proxy_replaces_passed_values_and_bypasses_are_dropped() {
        let mut env = vec![
            ("PATH".to_string(), "/usr/bin".to_string()),
            ("https_proxy".to_string(), "http://evil:1".to_string()),
            ("NO_PROXY".to_string(), "*".to_string()),
        ];
        route_through_proxy(&mut env);
        assert_eq!(env[0].0, "PATH");
        assert!(!env
            .iter()
            .any(|(k, v)| k == "NO_PROXY" || v.contains("evil")));
        let https: Vec<&str> = env
            .iter()
            .filter(|(k, _)| k == "https_proxy")
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(https, ["http://127.0.0.1:3128"]);
        assert_eq!(env.len(), 1 + 6);
    }
}
