//! A service's settings, layered the same way for every service: the built-in defaults, then
//! an optional TOML file of the same shape (`--config`; unknown keys refused), then the
//! `CONNAUDIT_*` variables and flags, each one given winning.

use std::path::Path;

use serde::de::DeserializeOwned;

/// A config file that cannot be read or does not fit the settings.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    /// The file's path, the key or value at fault, and where (TOML's own words).
    #[error("{0}")]
    Invalid(String),
}

/// The settings of `path`, or the defaults without one.
pub fn load<C: DeserializeOwned + Default>(path: Option<&Path>) -> Result<C, ConfigError> {
    let Some(path) = path else { return Ok(C::default()) };
    let text = std::fs::read_to_string(path)
        .map_err(|source| ConfigError::Read { path: path.display().to_string(), source })?;
    toml::from_str(&text).map_err(|e| ConfigError::Invalid(format!("{}: {e}", path.display())))
}

/// A flag (or its variable) given wins over the file's value or the default.
pub fn set<T>(slot: &mut T, flag: Option<T>) {
    if let Some(v) = flag {
        *slot = v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, PartialEq, serde::Deserialize)]
    #[serde(deny_unknown_fields, default)]
    struct Settings {
        size: u64,
        name: String,
    }

    #[test]
    fn a_file_layers_over_the_defaults_and_names_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.toml");
        std::fs::write(&good, "size = 3\n").unwrap();
        assert_eq!(load::<Settings>(Some(&good)).unwrap(), Settings { size: 3, name: String::new() });
        assert_eq!(load::<Settings>(None).unwrap(), Settings::default());
        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, "sise = 3\n").unwrap();
        let err = load::<Settings>(Some(&bad)).unwrap_err().to_string();
        assert!(err.contains("bad.toml") && err.contains("unknown field `sise`"), "{err}");
        let missing = load::<Settings>(Some(&dir.path().join("none.toml"))).unwrap_err();
        assert!(matches!(missing, ConfigError::Read { .. }));
        let mut slot = 1;
        set(&mut slot, None);
        set(&mut slot, Some(2));
        assert_eq!(slot, 2);
    }
}
