//! Reading a config file: TOML syntax and types first (toml + serde), then cross-references.

use std::path::Path;

use super::{Config, ConfigError, validate};

/// Reads, deserializes and validates the config file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(path, "", format!("cannot read the config file: {e}")))?;
    parse(path, &text)
}

/// Deserializes and validates config `text`, reporting errors against `path`.
pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
    let deserializer =
        toml::Deserializer::parse(text).map_err(|e| toml_error(path, text, &e, ""))?;
    let mut config: Config = serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let key = match e.path().to_string() {
            root if root == "." => String::new(),
            key => key,
        };
        toml_error(path, text, e.inner(), &key)
    })?;
    config.path = path.to_path_buf();
    validate::validate(&config, text)?;
    Ok(config)
}

fn toml_error(path: &Path, text: &str, error: &toml::de::Error, key: &str) -> ConfigError {
    let message = error.message().trim_end().to_string();
    let e = ConfigError::new(path, key, message);
    match error.span() {
        Some(span) => e.at_offset(text, span.start),
        None => e,
    }
}
