//! The MQTT broker's URL (`--mqtt-url`): host, port, TLS and credentials, and the URL with its
//! password hidden for logs. A leaf: the settings check it, the MQTT client connects with it.

use url::Url;

use crate::error::{Error, Result};

/// Host, port and credentials from an `mqtt://` or `mqtts://` URL.
#[derive(Debug, PartialEq)]
pub struct BrokerUrl {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<String>,
}

pub fn parse_url(raw: &str) -> Result<BrokerUrl> {
    let bad = |why: &str| Error::Config(format!("--mqtt-url `{}`: {why}", redact(raw)));
    let url = Url::parse(raw).map_err(|e| bad(&format!("{e}; expected mqtt://host:port")))?;
    let tls = match url.scheme() {
        "mqtt" | "tcp" => false,
        "mqtts" | "ssl" => true,
        other => return Err(bad(&format!("scheme `{other}` is not mqtt:// or mqtts://"))),
    };
    let host = url.host_str().ok_or_else(|| bad("no host"))?.trim_matches(['[', ']']).to_string();
    let decode = |s: &str| url::form_urlencoded::parse(s.as_bytes()).map(|(k, v)| k + v).collect::<String>();
    Ok(BrokerUrl {
        tls,
        host,
        port: url.port().unwrap_or(if tls { 8883 } else { 1883 }),
        username: Some(url.username()).filter(|u| !u.is_empty()).map(decode),
        password: url.password().map(decode),
    })
}

/// The URL with its password replaced, for logs and errors. Text that is not a URL with a
/// password but holds an `@` loses everything before it after the scheme: it may be one.
pub fn redact(raw: &str) -> String {
    if let Ok(mut url) = Url::parse(raw) {
        if url.password().is_some() {
            let _ = url.set_password(Some("***"));
            return url.to_string();
        }
    }
    let scheme_end = raw.find("://").map_or(0, |i| i + 3);
    match raw.rfind('@') {
        Some(at) if at >= scheme_end => format!("{}***@{}", &raw[..scheme_end], &raw[at + 1..]),
        _ => raw.to_string(),
    }
}
