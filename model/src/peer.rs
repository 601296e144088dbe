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

use std::fmt::Write;
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

/// An address as `IpAddr`'s `Display` writes it, in one allocation of the right size: IPv4
/// digit by digit (the formatter grew the string at each octet and cost transform 1,600
/// instructions per event), IPv6 through the formatter into a string of its longest length.
pub fn ip_text(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let mut text = String::with_capacity(15);
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    text.push('.');
                }
                if octet >= 100 {
                    text.push(char::from(b'0' + octet / 100));
                }
                if octet >= 10 {
                    text.push(char::from(b'0' + octet / 10 % 10));
                }
                text.push(char::from(b'0' + octet % 10));
            }
            text
        }
        IpAddr::V6(v6) => {
            // `ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255`, the longest text of an address.
            let mut text = String::with_capacity(45);
            write!(text, "{v6}").expect("writing to a String does not fail");
            text
        }
    }
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
    fn ip_text_is_what_display_writes() {
        for a in 0..=255u8 {
            for ip in [[a, 0, 255, 7], [10, a, a, 100], [255, 255, a, 0], [0, 0, 0, a]] {
                let ip = IpAddr::from(ip);
                assert_eq!(ip_text(ip), ip.to_string());
            }
        }
        for v6 in [
            "::",
            "::1",
            "2001:db8::1",
            "fe80::1:2:3:4",
            "1:2:3:4:5:6:7:8",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "::ffff:10.1.2.3",
            "64:ff9b::10.0.0.1",
        ] {
            let ip: IpAddr = v6.parse().unwrap();
            let text = ip_text(ip);
            assert_eq!(text, ip.to_string());
            assert!(text.capacity() <= 45, "{v6}");
        }
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
