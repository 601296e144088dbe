//! The Kafka flags ingest and transform share, and how they layer over a service's config file
//! (a flag given wins; one left out keeps the file's value or the default).

use std::collections::BTreeMap;

use clap::Args;

#[derive(Debug, Clone, Default, Args)]
pub struct KafkaFlags {
    /// Kafka bootstrap servers, comma separated [default: 127.0.0.1:9092]
    #[arg(long, env = "CONNAUDIT_KAFKA_BROKERS", value_name = "HOSTS")]
    pub kafka_brokers: Option<String>,
    /// Topic of the events [default: mqtt.client-events]
    #[arg(long, env = "CONNAUDIT_KAFKA_TOPIC", value_name = "TOPIC")]
    pub kafka_topic: Option<String>,
    /// Dead-letter topic for payloads that are not events [default: mqtt.client-events.dlq]
    #[arg(long, env = "CONNAUDIT_KAFKA_DLQ_TOPIC", value_name = "TOPIC")]
    pub kafka_dlq_topic: Option<String>,
    /// Extra librdkafka setting, repeatable (e.g. security.protocol=SASL_SSL); values may hold
    /// commas, so the variable separates settings with `;`
    #[arg(
        long = "kafka-option",
        env = "CONNAUDIT_KAFKA_OPTIONS",
        value_delimiter = ';',
        value_name = "KEY=VALUE",
        hide_env_values = true
    )]
    pub kafka_options: Vec<String>,
}

impl KafkaFlags {
    /// Lays the flags given over a service's config: its brokers, topic, dead-letter topic and
    /// librdkafka options. An option not `KEY=VALUE` is an error that names the flag and the form.
    pub fn apply(
        self,
        brokers: &mut String,
        topic: &mut String,
        dlq_topic: &mut String,
        options: &mut BTreeMap<String, String>,
    ) -> Result<(), String> {
        for (slot, flag) in
            [(brokers, self.kafka_brokers), (topic, self.kafka_topic), (dlq_topic, self.kafka_dlq_topic)]
        {
            if let Some(value) = flag {
                *slot = value;
            }
        }
        for kv in self.kafka_options {
            let (k, v) = kafka_option(&kv)?;
            options.insert(k, v);
        }
        Ok(())
    }
}

/// Parses a `--kafka-option KEY=VALUE` entry; the error names the flag and the form.
pub fn kafka_option(kv: &str) -> Result<(String, String), String> {
    let (k, v) = kv.split_once('=').ok_or_else(|| format!("--kafka-option `{kv}` is not KEY=VALUE"))?;
    Ok((k.trim().to_string(), v.trim().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_given_win_and_a_bad_option_names_the_form() {
        let (mut brokers, mut topic, mut dlq, mut options) =
            ("file:9092".to_string(), "file-topic".to_string(), "dlq".to_string(), BTreeMap::new());
        let flags = KafkaFlags {
            kafka_topic: Some("flag-topic".into()),
            kafka_options: vec!["bootstrap.servers=a:1,b:2".into()],
            ..Default::default()
        };
        flags.apply(&mut brokers, &mut topic, &mut dlq, &mut options).unwrap();
        assert_eq!((brokers.as_str(), topic.as_str(), dlq.as_str()), ("file:9092", "flag-topic", "dlq"));
        assert_eq!(options["bootstrap.servers"], "a:1,b:2");
        let bad = KafkaFlags { kafka_options: vec!["nokey".into()], ..Default::default() };
        let (mut b, mut t, mut d, mut o) = (String::new(), String::new(), String::new(), BTreeMap::new());
        let err = bad.apply(&mut b, &mut t, &mut d, &mut o);
        assert_eq!(err.unwrap_err(), "--kafka-option `nokey` is not KEY=VALUE");
    }
}
