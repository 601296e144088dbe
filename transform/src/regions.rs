//! Which region an event comes from: `client_attrs.region` in the payload, else the peer
//! address through a `cidr,region` table (longest prefix wins), else the broker node through a
//! `node,region` table, else `unknown`.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use foldhash::HashMap;
use ipnet::IpNet;

use crate::error::{Error, Result};

pub const UNKNOWN: &str = "unknown";

/// Prefix tables, one hash map per prefix length present, probed longest first: at most 33
/// (IPv4) or 129 (IPv6) probes, usually a handful.
#[derive(Debug, Default)]
pub struct RegionMap {
    v4: Vec<(u8, HashMap<u32, usize>)>,
    v6: Vec<(u8, HashMap<u128, usize>)>,
    nodes: HashMap<String, usize>,
    /// Shared with every row of the region (a row holds its region without a copy of it).
    names: Vec<Arc<str>>,
}

impl RegionMap {
    pub fn load(cidrs: Option<&Path>, nodes: Option<&Path>) -> Result<Self> {
        let mut map = RegionMap::default();
        if let Some(path) = cidrs {
            for (line, [cidr, region]) in read_pairs(path)? {
                let net: IpNet = cidr.parse().map_err(|e| Error::Regions {
                    path: path.display().to_string(),
                    message: format!(
                        "line {line}: `{cidr}` is not a CIDR ({e}); write e.g. 10.1.0.0/16 or 2001:db8::/32"
                    ),
                })?;
                map.insert(net, &region);
            }
        }
        if let Some(path) = nodes {
            for (_, [node, region]) in read_pairs(path)? {
                let id = map.intern(&region);
                map.nodes.insert(node, id);
            }
        }
        Ok(map)
    }

    fn intern(&mut self, region: &str) -> usize {
        match self.names.iter().position(|n| **n == *region) {
            Some(i) => i,
            None => {
                self.names.push(Arc::from(region));
                self.names.len() - 1
            }
        }
    }

    pub fn insert(&mut self, net: IpNet, region: &str) {
        let id = self.intern(region);
        let len = net.prefix_len();
        match net.trunc() {
            IpNet::V4(n) => slot(&mut self.v4, len).insert(u32::from(n.network()), id),
            IpNet::V6(n) => slot(&mut self.v6, len).insert(u128::from(n.network()), id),
        };
    }

    /// The region of a peer address, longest prefix first.
    pub fn by_ip(&self, ip: IpAddr) -> Option<&str> {
        self.ip_id(ip).map(|id| &*self.names[id])
    }

    fn ip_id(&self, ip: IpAddr) -> Option<usize> {
        match ip {
            IpAddr::V4(a) => probe(&self.v4, u32::from(a), 32),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(v4) => probe(&self.v4, u32::from(v4), 32),
                None => probe(&self.v6, u128::from(a), 128),
            },
        }
    }

    pub fn by_node(&self, node: &str) -> Option<&str> {
        self.nodes.get(node).map(|&id| &*self.names[id])
    }

    /// Explicit region, then peer address, then node, then `unknown`. A region of the tables
    /// is shared, not copied; only a payload's own region is.
    pub fn resolve(&self, explicit: Option<&str>, ip: Option<IpAddr>, node: Option<&str>) -> Arc<str> {
        if let Some(region) = explicit.filter(|r| !r.is_empty()) {
            return Arc::from(region);
        }
        let id = ip.and_then(|ip| self.ip_id(ip)).or_else(|| node.and_then(|n| self.nodes.get(n).copied()));
        match id {
            Some(id) => Arc::clone(&self.names[id]),
            None => Arc::clone(unknown()),
        }
    }
}

/// `unknown`, made once.
fn unknown() -> &'static Arc<str> {
    static UNKNOWN_REGION: std::sync::OnceLock<Arc<str>> = std::sync::OnceLock::new();
    UNKNOWN_REGION.get_or_init(|| Arc::from(UNKNOWN))
}

/// The table for one prefix length, kept sorted longest first.
fn slot<K>(tables: &mut Vec<(u8, HashMap<K, usize>)>, len: u8) -> &mut HashMap<K, usize> {
    let at = match tables.iter().position(|(l, _)| *l <= len) {
        Some(i) if tables[i].0 == len => i,
        Some(i) => {
            tables.insert(i, (len, HashMap::default()));
            i
        }
        None => {
            tables.push((len, HashMap::default()));
            tables.len() - 1
        }
    };
    &mut tables[at].1
}

fn probe<K>(tables: &[(u8, HashMap<K, usize>)], addr: K, bits: u32) -> Option<usize>
where
    K: Copy
        + Eq
        + std::hash::Hash
        + std::ops::Shl<u32, Output = K>
        + std::ops::BitAnd<Output = K>
        + std::ops::Not<Output = K>
        + From<u8>,
{
    let zero = K::from(0);
    tables.iter().find_map(|(len, table)| {
        let len = u32::from(*len);
        // A mask of `len` leading ones; shifting by the full width is not allowed.
        let mask = if len == 0 { zero } else { !zero << (bits - len) };
        table.get(&(addr & mask)).copied()
    })
}

/// `(line number, [first, second])` of each non-empty, non-comment line; a header line whose
/// first field is `cidr` or `node` is skipped.
fn read_pairs(path: &Path) -> Result<Vec<(u64, [String; 2])>> {
    let err = |message: String| Error::Regions { path: path.display().to_string(), message };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .comment(Some(b'#'))
        .trim(csv::Trim::All)
        .flexible(true)
        .from_path(path)
        .map_err(|e| err(e.to_string()))?;
    let mut out = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| err(e.to_string()))?;
        let line = record.position().map_or(0, |p| p.line());
        match (record.get(0), record.get(1), record.len()) {
            (Some(""), _, 1) => continue,
            (Some("cidr" | "node"), _, _) if line == 1 => continue,
            (Some(a), Some(b), 2) if !a.is_empty() && !b.is_empty() => out.push((line, [a.to_string(), b.to_string()])),
            _ => return Err(err(format!("line {line}: expected two fields, `cidr,region` or `node,region`"))),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_prefix_wins_for_v4_and_v6() {
        let mut map = RegionMap::default();
        map.insert("10.0.0.0/8".parse().unwrap(), "eu");
        map.insert("10.1.0.0/16".parse().unwrap(), "us");
        map.insert("10.1.2.3/32".parse().unwrap(), "lab");
        map.insert("0.0.0.0/0".parse().unwrap(), "world");
        map.insert("2001:db8::/32".parse().unwrap(), "ap");
        map.insert("2001:db8:1::/48".parse().unwrap(), "ap-south");
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(map.by_ip(ip("10.9.9.9")), Some("eu"));
        assert_eq!(map.by_ip(ip("10.1.9.9")), Some("us"));
        assert_eq!(map.by_ip(ip("10.1.2.3")), Some("lab"));
        assert_eq!(map.by_ip(ip("192.0.2.1")), Some("world"));
        assert_eq!(map.by_ip(ip("::ffff:10.1.0.1")), Some("us"));
        assert_eq!(map.by_ip(ip("2001:db8:1::5")), Some("ap-south"));
        assert_eq!(map.by_ip(ip("2001:db8:2::5")), Some("ap"));
        assert_eq!(map.by_ip(ip("2001:db9::1")), None);
    }

    #[test]
    fn payload_region_wins_then_ip_then_node() {
        let dir = tempfile::tempdir().unwrap();
        let cidrs = dir.path().join("regions.csv");
        let nodes = dir.path().join("nodes.csv");
        std::fs::write(&cidrs, "cidr,region\n# lab\n10.0.0.0/8, eu-west\n\n").unwrap();
        std::fs::write(&nodes, "emqx@n2,us-east\n").unwrap();
        let map = RegionMap::load(Some(&cidrs), Some(&nodes)).unwrap();
        let ip = Some("10.2.3.4".parse().unwrap());
        assert_eq!(&*map.resolve(Some("ap"), ip, Some("emqx@n2")), "ap");
        assert_eq!(&*map.resolve(None, ip, Some("emqx@n2")), "eu-west");
        assert_eq!(&*map.resolve(Some(""), None, Some("emqx@n2")), "us-east");
        assert_eq!(&*map.resolve(None, None, Some("emqx@n9")), UNKNOWN);
    }

    #[test]
    fn bad_lines_name_the_line_and_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("regions.csv");
        std::fs::write(&path, "10.0.0.0/8,eu\n10.0.0.300/8,us\n").unwrap();
        let err = RegionMap::load(Some(&path), None).unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("not a CIDR"), "{err}");
        std::fs::write(&path, "10.0.0.0/8\n").unwrap();
        let err = RegionMap::load(Some(&path), None).unwrap_err().to_string();
        assert!(err.contains("two fields"), "{err}");
    }
}
