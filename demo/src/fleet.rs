//! The simulated fleet: regions with their address ranges and troubles, and the devices in
//! them. Everything follows from the device count; randomness comes later, from the seed.

/// What goes wrong in a region, and when (as a fraction of the run).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Trouble {
    /// Nothing beyond the background: a few wrong passwords, occasional drops.
    None,
    /// The broker answers `server_busy` to most attempts during the window.
    ServerBusy { from: f64, to: f64 },
    /// A weak network: many sessions end in a keepalive timeout.
    BadNetwork,
    /// The region is cut off during the window: sessions drop, attempts find no server.
    Outage { from: f64, to: f64 },
}

#[derive(Debug, Clone)]
pub struct Region {
    pub name: &'static str,
    /// The CIDR its devices' addresses come from, for `--regions-out`.
    pub cidr: &'static str,
    pub node: &'static str,
    pub trouble: Trouble,
}

/// Four regions, one trouble each.
pub fn regions() -> Vec<Region> {
    vec![
        Region { name: "eu-west", cidr: "10.1.0.0/16", node: "emqx@eu-west-1", trouble: Trouble::None },
        Region {
            name: "us-east",
            cidr: "10.2.0.0/16",
            node: "emqx@us-east-1",
            trouble: Trouble::ServerBusy { from: 0.30, to: 0.45 },
        },
        Region { name: "ap-south", cidr: "2001:db8::/32", node: "emqx@ap-south-1", trouble: Trouble::BadNetwork },
        Region {
            name: "sa-east",
            cidr: "10.4.0.0/16",
            node: "emqx@sa-east-1",
            trouble: Trouble::Outage { from: 0.65, to: 0.80 },
        },
    ]
}

/// The `node,region` file for `--node-regions`: Azure's events carry no address, only their
/// namespace (the region's node here).
pub fn node_regions_csv(regions: &[Region]) -> String {
    let mut out = String::from("node,region\n");
    for r in regions {
        out.push_str(&format!("{},{}\n", r.node, r.name));
    }
    out
}

/// The `cidr,region` file that maps the simulated addresses back to their regions.
pub fn regions_csv(regions: &[Region]) -> String {
    let mut out = String::from("cidr,region\n");
    for r in regions {
        out.push_str(&format!("{},{}\n", r.cidr, r.name));
    }
    out
}

/// How a device's broker reports reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codes {
    /// EMQX: names (MQTT 5.0 names even for 3.1.1 clients).
    Names,
    /// Other brokers (VerneMQ, HiveMQ): numbers.
    Numbers,
}

#[derive(Debug, Clone)]
pub struct Device {
    pub clientid: String,
    pub username: String,
    pub region: usize,
    /// `ip:port` as brokers print it (`[v6]:port` for IPv6).
    pub peer: String,
    /// 4 (MQTT 3.1.1) or 5.
    pub proto_ver: u8,
    pub codes: Codes,
    /// Wrong credentials on the device: every attempt fails.
    pub bad_password: bool,
    /// Whose lifecycle events announce it.
    pub shape: Shape,
    /// Gets firmware 2.4.1 halfway through the run (an MQTT 5 User-Property `fw`), which
    /// then fails 30% of its connects with bad credentials.
    pub rollout: bool,
}

/// The firmware a device reports (MQTT 5 only: a User-Property of its CONNECT).
pub const FW_BEFORE: &str = "2.4.0";
pub const FW_ROLLED_OUT: &str = "2.4.1";

/// The broker whose events the simulator writes for a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Shape {
    Emqx,
    AwsIot,
    Azure,
    Hivemq,
    Vernemq,
}

/// What `--format` asks for: one shape, or a mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Emqx,
    AwsIot,
    Azure,
    Hivemq,
    Vernemq,
    /// A fifth of the devices each (the pairs sharing a client id stay EMQX).
    Mixed,
}

impl Format {
    fn shape(self, device: usize) -> Shape {
        match self {
            Format::Emqx => Shape::Emqx,
            Format::AwsIot => Shape::AwsIot,
            Format::Azure => Shape::Azure,
            Format::Hivemq => Shape::Hivemq,
            Format::Vernemq => Shape::Vernemq,
            // Not `device % 4`: that is the region.
            Format::Mixed => {
                [Shape::Emqx, Shape::AwsIot, Shape::Azure, Shape::Hivemq, Shape::Vernemq][(device / 4) % 5]
            }
        }
    }
}

/// `n` devices spread over the regions, plus `n / 500` (at least one) pairs of devices that
/// share a client id and keep taking the session over from each other.
pub fn devices(n: usize, regions: &[Region], format: Format) -> (Vec<Device>, Vec<[Device; 2]>) {
    let mut out = Vec::with_capacity(n);
    for d in 0..n {
        let region = d % regions.len();
        out.push(Device {
            clientid: format!("dev-{d:05}"),
            username: format!("user-{d:05}"),
            region,
            peer: address(&regions[region], d, 0),
            proto_ver: if d % 3 == 0 { 4 } else { 5 },
            codes: if d % 5 == 2 { Codes::Numbers } else { Codes::Names },
            // One in 199, not 200: `d % 200 == 7` put every one in sa-east (`d % 4 == 3`) and
            // made them all AWS IoT devices, so sa-east's baseline failed at 19 % and its
            // outage read as its node's, not its own (audit explain).
            bad_password: d % 199 == 7,
            shape: format.shape(d),
            rollout: d % 4 == 1,
        });
    }
    let pairs = (n / 500).max(1);
    let twins = (0..pairs)
        .map(|k| {
            let region = k % regions.len();
            let twin = |which: usize| Device {
                clientid: format!("shared-{k:03}"),
                username: format!("shared-{k:03}"),
                region,
                peer: address(&regions[region], 60_000 + k, which + 1),
                proto_ver: 5,
                codes: Codes::Names,
                bad_password: false,
                shape: Shape::Emqx,
                rollout: false,
            };
            [twin(0), twin(1)]
        })
        .collect();
    (out, twins)
}

/// A stable address for device `d` inside its region's range.
fn address(region: &Region, d: usize, salt: usize) -> String {
    let host = d * 7 + salt * 13 + 1;
    let port = 30_000 + (d * 31 + salt) % 30_000;
    if region.cidr.contains(':') {
        let prefix = region.cidr.split("::").next().unwrap_or("2001:db8");
        format!("[{prefix}::{:x}:{:x}]:{port}", host / 65_536 + 1, host % 65_536)
    } else {
        let mut octets = region.cidr.split('.');
        let (a, b) = (octets.next().unwrap_or("10"), octets.next().unwrap_or("0"));
        format!("{a}.{b}.{}.{}:{port}", (host / 250) % 250, host % 250 + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_fall_in_their_region() {
        let regions = regions();
        let (devices, twins) = devices(1000, &regions, Format::Emqx);
        for d in devices.iter().chain(twins.iter().flatten()) {
            let r = &regions[d.region];
            if r.cidr.contains(':') {
                assert!(d.peer.starts_with("[2001:db8::"), "{}", d.peer);
            } else {
                assert!(d.peer.starts_with(&r.cidr[..5]), "{} in {}", d.peer, r.cidr);
            }
        }
        assert_eq!(twins.len(), 2);
        assert_ne!(twins[0][0].peer, twins[0][1].peer);
        assert_eq!(twins[0][0].clientid, twins[0][1].clientid);
    }

    /// A trouble placed in one region stands out only against a baseline alike in every
    /// region: the devices that always fail are in each region, on more than one broker.
    #[test]
    fn devices_with_bad_passwords_are_in_every_region() {
        let regions = regions();
        let (devices, _) = devices(2000, &regions, Format::Mixed);
        let bad: Vec<&Device> = devices.iter().filter(|d| d.bad_password).collect();
        for r in 0..regions.len() {
            assert!(bad.iter().any(|d| d.region == r && d.shape == Shape::Emqx), "{}", regions[r].name);
            assert!(bad.iter().any(|d| d.region == r && d.shape == Shape::AwsIot), "{}", regions[r].name);
        }
    }
}
