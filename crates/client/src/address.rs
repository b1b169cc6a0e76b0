//! Server addresses as users type them: `HOST:PORT`.
//!
//! One canonical spelling matters because the address is the key of the
//! `known_hosts` file: `Example.org:8443` and `example.org:8443` must find the same
//! pinned certificate.

use std::{fmt, net::Ipv6Addr, str::FromStr};

/// A server's host and port.
///
/// Parsed from `HOST:PORT`, where HOST is a DNS name, an IPv4 address or an IPv6
/// address in brackets (`[::1]:8443`). DNS names are folded to lower case. The
/// port is required: there is no registered default port to fall back on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServerAddress {
    /// Host name or IP address, without brackets.
    host: String,
    /// TCP port.
    port: u16,
}

/// Why a server address could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid server address {input:?}: {reason} (expected HOST:PORT, e.g. chat.example.org:8443 or [::1]:8443)"
)]
pub struct AddressError {
    /// What was given.
    pub input: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl ServerAddress {
    /// The host part (an IPv6 address comes without brackets).
    #[must_use]
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The TCP port.
    #[must_use]
    pub const fn port(&self) -> u16 {
        self.port
    }
}

impl FromStr for ServerAddress {
    type Err = AddressError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let fail = |reason| AddressError { input: input.to_owned(), reason };
        let trimmed = input.trim();
        let (host, port) = if let Some(rest) = trimmed.strip_prefix('[') {
            let (host, port) =
                rest.split_once("]:").ok_or_else(|| fail("missing ]:PORT after an IPv6 address"))?;
            host.parse::<Ipv6Addr>().map_err(|_| fail("not an IPv6 address inside [ ]"))?;
            (host, port)
        } else {
            let (host, port) = trimmed.rsplit_once(':').ok_or_else(|| fail("missing :PORT"))?;
            if host.contains(':') {
                return Err(fail("an IPv6 address must be written in brackets"));
            }
            (host, port)
        };
        if host.is_empty() {
            return Err(fail("empty host"));
        }
        let valid_host = host.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._:".contains(&b));
        if !valid_host || host.len() > 253 {
            return Err(fail("the host may contain only letters, digits, '-' and '.'"));
        }
        let port: u16 = port.parse().map_err(|_| fail("the port is not a number from 1 to 65535"))?;
        if port == 0 {
            return Err(fail("the port is not a number from 1 to 65535"));
        }
        Ok(Self { host: host.to_ascii_lowercase(), port })
    }
}

impl fmt::Display for ServerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_ipv4_and_bracketed_ipv6() {
        let a: ServerAddress = "Chat.Example.org:8443".parse().unwrap();
        assert_eq!((a.host(), a.port()), ("chat.example.org", 8443));
        assert_eq!(a.to_string(), "chat.example.org:8443");
        let b: ServerAddress = "127.0.0.1:1".parse().unwrap();
        assert_eq!(b.to_string(), "127.0.0.1:1");
        let c: ServerAddress = "[::1]:8443".parse().unwrap();
        assert_eq!((c.host(), c.to_string().as_str()), ("::1", "[::1]:8443"));
    }

    #[test]
    fn refuses_malformed_addresses() {
        for bad in ["example.org", "example.org:", ":8443", "example.org:0", "example.org:70000", "::1:8443"]
        {
            assert!(bad.parse::<ServerAddress>().is_err(), "{bad}");
        }
        for bad in ["[::1]8443", "[nope]:1", "exa mple.org:1", "exa\u{1b}mple:1"] {
            assert!(bad.parse::<ServerAddress>().is_err(), "{bad}");
        }
    }
}
