//! Peer addresses as brokers write them, and the client's IP address behind each.
//!
//! - EMQX's `peername`: `inet:ntoa(Ip) ++ ":" ++ Port`, so IPv6 comes without brackets:
//!   `10.1.2.3:52740`, `2001:db8::1:52740`; a dual-stack listener reports an IPv4 client as
//!   `::ffff:10.1.2.3:52740`.
//! - Bracketed, as Rust, Java's `InetSocketAddress` and most logs write it: `[2001:db8::1]:52740`.
//! - Bare addresses without a port, as VerneMQ's webhooks (`peer_addr`) and HiveMQ's extension
//!   SDK (`InetAddress.getHostAddress()`, the full form `2001:db8:0:0:0:0:0:1`) give them.
//!
//! The address is returned in its canonical form (IPv4-mapped IPv6 becomes IPv4, IPv6 is
//! compressed), so a client's region never depends on how its broker formatted it.

use std::net::{IpAddr, SocketAddr};

/// The IP address and, when one is written, the port of a peer address. `None` when the text
/// holds no IP address.
pub fn peer_address(raw: &str) -> Option<(IpAddr, Option<u16>)> {
    let raw = raw.trim();
    if let Ok(sock) = raw.parse::<SocketAddr>() {
        return Some((sock.ip().to_canonical(), Some(sock.port())));
    }
    if let Some(rest) = raw.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse().ok()?),
            None if after.is_empty() => None,
            None => return None,
        };
        return Some((ip_address(ip)?, port));
    }
    // Unbracketed IPv6 followed by `:port` (EMQX). A full-form or compressed address whose
    // last group is not a port fails this split and is read whole below.
    if raw.matches(':').count() > 1 {
        if let Some((ip, port)) = raw.rsplit_once(':') {
            if is_port(Some(port)) {
                if let (Some(ip), Ok(port)) = (ip_address(ip), port.parse::<u16>()) {
                    return Some((ip, Some(port)));
                }
            }
        }
    }
    Some((ip_address(raw)?, None))
}

/// A bare IP address (IPv4, IPv6 in any form, a `%zone` suffix ignored), canonical.
pub fn ip_address(raw: &str) -> Option<IpAddr> {
    let raw = raw.trim();
    let without_zone = raw.split_once('%').map_or(raw, |(ip, _)| ip);
    without_zone.parse::<IpAddr>().ok().map(|ip| ip.to_canonical())
}

/// Decimal digits only: a port as brokers print it.
fn is_port(s: Option<&str>) -> bool {
    s.is_some_and(|s| !s.is_empty() && s.len() <= 5 && s.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(raw: &str) -> Option<(String, Option<u16>)> {
        peer_address(raw).map(|(ip, port)| (ip.to_string(), port))
    }

    #[test]
    fn every_brokers_formatting_gives_the_same_address() {
        let v6 = Some(("2001:db8::1".to_string(), Some(52740)));
        assert_eq!(p("2001:db8::1:52740"), v6, "EMQX");
        assert_eq!(p("[2001:db8::1]:52740"), v6, "bracketed");
        assert_eq!(p("[2001:db8:0:0:0:0:0:1]:52740"), v6, "bracketed full form");
        assert_eq!(p("2001:db8:0:0:0:0:0:1"), Some(("2001:db8::1".into(), None)), "HiveMQ full form");
        assert_eq!(p("2001:DB8::1"), Some(("2001:db8::1".into(), None)), "upper case");
        assert_eq!(p("2001:db8::"), Some(("2001:db8::".into(), None)));
        assert_eq!(p("::1:1883"), Some(("::1".into(), Some(1883))), "EMQX loopback");
        assert_eq!(p("::1"), Some(("::1".into(), None)));
        assert_eq!(p("fe80::1%eth0"), Some(("fe80::1".into(), None)), "zone id");
        let v4 = Some(("10.1.2.3".to_string(), Some(4000)));
        assert_eq!(p("10.1.2.3:4000"), v4);
        assert_eq!(p(" 10.1.2.3:4000 "), v4);
        assert_eq!(p("::ffff:10.1.2.3:4000"), v4, "EMQX dual-stack listener");
        assert_eq!(p("[::ffff:10.1.2.3]:4000"), v4, "bracketed mapped");
        assert_eq!(p("10.1.2.3"), Some(("10.1.2.3".into(), None)), "VerneMQ peer_addr");
        for bad in ["", "bad", "10.1.2.3:port", "[::1", "[::1]x", "host.example:1883", "10.1.2.3:70000"] {
            assert_eq!(p(bad), None, "{bad}");
        }
    }
}
