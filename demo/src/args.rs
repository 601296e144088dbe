//! Command-line options of `connaudit simulate` and `connaudit demo`.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::fleet::Format;

/// What a simulated fleet looks like and how fast it talks.
#[derive(Debug, Clone, Args)]
pub struct FleetArgs {
    /// Devices in the fleet (plus a pair sharing a client id per 500)
    #[arg(long, env = "CONNAUDIT_SIM_DEVICES", default_value_t = 2000)]
    pub devices: usize,
    /// Events per second
    #[arg(long, env = "CONNAUDIT_SIM_RATE", default_value_t = 500)]
    pub rate: u64,
    /// How long to send: 60s, 5m, 1h
    #[arg(long, env = "CONNAUDIT_SIM_DURATION", value_parser = humantime::parse_duration, default_value = "60s")]
    pub duration: Duration,
    /// Seed of the fleet's randomness: the same seed sends the same events (timestamps aside)
    #[arg(long, env = "CONNAUDIT_SIM_SEED", default_value_t = 42)]
    pub seed: u64,
    /// Whose events the devices send: EMQX's, AWS IoT Core's lifecycle events, Azure Event
    /// Grid's, VerneMQ's webhook bodies, or a quarter each [default: emqx; the demo: mixed]
    #[arg(long, env = "CONNAUDIT_SIM_FORMAT", value_enum)]
    pub format: Option<Format>,
}

const SIMULATE_EXAMPLES: &str = "\
Examples:
  connaudit simulate --mqtt-url mqtt://127.0.0.1:1883 --devices 5000 --rate 1000 --duration 2m \\
    --regions-out regions.csv --truth-out truth.json
  connaudit simulate --http-url http://127.0.0.1:8080/events --duration 30s

The fleet: four regions with their own address ranges (regions.csv maps them back) and
troubles: eu-west is healthy, us-east gets a server_busy burst (30-45% of the run), ap-south
has a weak network (keepalive timeouts), sa-east has an outage (65-80%). Some devices have a
wrong password, a third speak MQTT 3.1.1, a fifth report reason codes as numbers (as VerneMQ
and HiveMQ do), and pairs of devices share a client id and take the session from each other.";

/// `connaudit simulate`: publish a simulated fleet's client events.
#[derive(Debug, Clone, Args)]
#[command(after_help = SIMULATE_EXAMPLES)]
pub struct SimulateArgs {
    /// The broker to publish to, as a republish rule would: mqtt://[user:pass@]host:port
    #[arg(
        long,
        env = "CONNAUDIT_SIM_MQTT_URL",
        default_value = "mqtt://127.0.0.1:1883",
        conflicts_with = "http_url",
        hide_env_values = true
    )]
    pub mqtt_url: String,
    /// Post the events to ingest's HTTP endpoint instead (as EMQX's HTTP action would)
    #[arg(long, env = "CONNAUDIT_SIM_HTTP_URL", value_name = "URL")]
    pub http_url: Option<String>,
    #[command(flatten)]
    pub fleet: FleetArgs,
    /// Write the `cidr,region` file for `connaudit transform --regions`
    #[arg(long, value_name = "FILE")]
    pub regions_out: Option<PathBuf>,
    /// Write the `node,region` file for `connaudit transform --node-regions` (Azure's events
    /// carry their namespace, not an address)
    #[arg(long, value_name = "FILE")]
    pub node_regions_out: Option<PathBuf>,
    /// Write the ground truth as JSON
    #[arg(long, value_name = "FILE")]
    pub truth_out: Option<PathBuf>,
}

const DEMO_EXAMPLES: &str = "\
Examples:
  connaudit demo
  connaudit demo --duration 5m --rate 2000 --keep-running
  connaudit demo --serve          # then point psql, Grafana or Superset at the warehouse

Runs an embedded MQTT broker (rumqttd) and an embedded Kafka (librdkafka's mock cluster) on
loopback ports, connaudit ingest and transform, and the fleet simulator; then answers from the
warehouse it wrote in --dir, next to the simulator's ground truth.";

/// `connaudit demo`: the whole pipeline on embedded brokers.
#[derive(Debug, Clone, Args)]
#[command(after_help = DEMO_EXAMPLES)]
pub struct DemoArgs {
    #[command(flatten)]
    pub fleet: FleetArgs,
    /// Where the warehouse goes (emptied first)
    #[arg(long, default_value = "./connaudit-demo", value_name = "DIR")]
    pub dir: PathBuf,
    /// After the report, keep the brokers, the pipeline and the fleet running until Ctrl-C
    #[arg(long)]
    pub keep_running: bool,
    /// After the report, serve the warehouse over the PostgreSQL protocol on loopback (a
    /// one-time password; psql, Grafana and Superset settings printed) until Ctrl-C
    #[arg(long)]
    pub serve: bool,
    /// Address of --serve's PostgreSQL endpoint [default: a free loopback port]
    #[arg(long, value_name = "ADDR", requires = "serve")]
    pub pg_listen: Option<std::net::SocketAddr>,
}
