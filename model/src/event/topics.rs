//! Which MQTT topic carries which event, for payloads that do not say.

use super::EventType;

/// Which MQTT topic carries which event, for payloads without an `event` field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMap(Vec<(String, EventType)>);

/// VerneMQ's webhooks, by the hook's name (as a topic's last level, or its `vernemq-hook` header).
const VERNEMQ_HOOKS: [(&str, EventType); 3] = [
    ("on_register", EventType::Connected),
    ("on_client_offline", EventType::Disconnected),
    ("on_client_gone", EventType::Disconnected),
];

impl Default for TopicMap {
    fn default() -> Self {
        let emqx = EventType::ALL.iter().map(|t| (t.default_topic().to_string(), *t));
        TopicMap(emqx.chain(VERNEMQ_HOOKS.iter().map(|(hook, t)| (hook.to_string(), *t))).collect())
    }
}

impl TopicMap {
    pub fn new(entries: Vec<(String, EventType)>) -> Self {
        TopicMap(entries)
    }

    /// `entries` (`--topic-event`), then the defaults.
    pub fn with_defaults(mut entries: Vec<(String, EventType)>) -> Self {
        entries.extend(TopicMap::default().0);
        TopicMap(entries)
    }

    /// Parses `TOPIC=EVENT`, as given on the command line.
    pub fn parse_entry(s: &str) -> std::result::Result<(String, EventType), String> {
        let (topic, event) = s
            .split_once('=')
            .ok_or_else(|| format!("`{s}` is not TOPIC=EVENT (e.g. client_connack=client.connack)"))?;
        Ok((topic.to_string(), event.parse()?))
    }

    /// An exact topic match wins; otherwise the topic's last level is matched, so
    /// `site-a/client_connack` resolves like `client_connack`.
    pub fn lookup(&self, topic: &str) -> Option<EventType> {
        let exact = self.0.iter().find(|(t, _)| t == topic);
        let last = topic.rsplit('/').next().unwrap_or(topic);
        exact.or_else(|| self.0.iter().find(|(t, _)| t == last)).map(|(_, e)| *e)
    }
}
