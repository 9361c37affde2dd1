//! `[server.cookies]`: the secrets DNS server cookies are made with (RFC 7873, RFC 9018).
//!
//! A secret is read here once, as 32 hexadecimal characters, and is never written anywhere
//! again: not in `Debug`, not in an error (which names the key and line, never the value).

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};

/// `[server.cookies]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CookiesConfig {
    /// Server cookie secrets: the first makes new cookies, all are accepted, so that a secret
    /// can be rotated in; shared between instances so that each accepts the others' cookies.
    /// Empty (the default): a random secret of this process, made at start.
    #[serde(deserialize_with = "secrets")]
    pub secrets: Vec<CookieSecret>,
}

impl CookiesConfig {
    /// The secrets as keys, the signing one first.
    pub fn keys(&self) -> Vec<[u8; 16]> {
        self.secrets.iter().map(|s| s.0).collect()
    }
}

/// One 16-byte secret; shown as `CookieSecret(..)`.
#[derive(Clone, PartialEq, Eq)]
pub struct CookieSecret([u8; 16]);

impl fmt::Debug for CookieSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CookieSecret(..)")
    }
}

impl std::str::FromStr for CookieSecret {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const PROBLEM: &str =
            "must be 32 hexadecimal characters (16 bytes), such as `openssl rand -hex 16` prints";
        let bytes = s.as_bytes();
        if bytes.len() != 32 {
            return Err(PROBLEM);
        }
        let mut secret = [0u8; 16];
        for (byte, pair) in secret.iter_mut().zip(bytes.chunks_exact(2)) {
            let nibble = |c: u8| char::from(c).to_digit(16).ok_or(PROBLEM);
            *byte = ((nibble(pair[0])? << 4) | nibble(pair[1])?) as u8;
        }
        Ok(Self(secret))
    }
}

/// Reads a list of secrets; every error names the problem and never the text.
fn secrets<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<CookieSecret>, D::Error> {
    d.deserialize_seq(SecretsVisitor)
}

/// The visitors answer every kind of value without quoting it, as serde's defaults would.
struct SecretsVisitor;
struct SecretVisitor;

const NOT_A_LIST: &str = "must be a list of secrets: secrets = [\"<32 hexadecimal characters>\"]";
const NOT_A_STRING: &str = "each secret must be a string of 32 hexadecimal characters";

/// Refuses the scalar and table values a visitor does not take, with `$message` alone.
macro_rules! refuse_others {
    ($message:expr) => {
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Err(E::custom($message))
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Err(E::custom($message))
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Err(E::custom($message))
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Err(E::custom($message))
        }
        fn visit_map<A: de::MapAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
            Err(de::Error::custom($message))
        }
    };
}

impl<'de> Visitor<'de> for SecretsVisitor {
    type Value = Vec<CookieSecret>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(NOT_A_LIST)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(secret) = seq.next_element_seed(SecretVisitor)? {
            out.push(secret);
        }
        Ok(out)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Err(E::custom(NOT_A_LIST))
    }

    refuse_others!(NOT_A_LIST);
}

impl<'de> de::DeserializeSeed<'de> for SecretVisitor {
    type Value = CookieSecret;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for SecretVisitor {
    type Value = CookieSecret;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(NOT_A_STRING)
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        s.parse().map_err(E::custom)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        Err(de::Error::custom(NOT_A_STRING))
    }

    refuse_others!(NOT_A_STRING);
}

#[cfg(test)]
mod tests {
    const SITES: &str = "[zone]\norigin = \"smarthost.internal\"\nfile = \"z.zone\"\n\
        [sites.oxford]\nhosts = [{ name = \"mail1\", addresses = [\"192.0.2.1\"] }]\n";

    fn parse(cookies: &str) -> Result<crate::config::Config, crate::config::ConfigError> {
        let text =
            format!("[server]\nlisten = [\"127.0.0.1:0\"]\n\n[server.cookies]\n{cookies}\n{SITES}");
        crate::config::parse(
            std::path::Path::new("/etc/smarthostd/smarthost.toml"),
            &text,
        )
    }

    #[test]
    fn secrets_are_read_in_order_and_never_shown() {
        let config = parse(
            "secrets = [\"E5E973E5A6B2A43F48E7DC849E37BFCF\", \"dd3bdf9344b678b185a6f5cb60fca715\"]",
        )
        .unwrap();
        let keys = config.server.cookies.keys();
        assert_eq!(keys[0][..4], [0xe5, 0xe9, 0x73, 0xe5]);
        assert_eq!(keys[1][15], 0x15);
        let shown = format!("{config:?}");
        assert!(!shown.to_lowercase().contains("e5e973e5"), "{shown}");
        assert!(shown.contains("CookieSecret(..)"));
        assert!(parse("").unwrap().server.cookies.secrets.is_empty());
    }

    #[test]
    fn a_bad_secret_is_named_by_key_and_line_and_not_quoted() {
        let good = "00112233445566778899aabbccddeeff";
        for (value, key, problem) in [
            (
                format!("[\"{good}\", \"00112233445566778899aabbccddeeZZ\"]"),
                "secrets[1]",
                "32 hexadecimal",
            ),
            (
                "[\"00112233445566778899aabbccddee\"]".to_string(),
                "secrets[0]",
                "32 hexadecimal",
            ),
            (format!("[\"{good}00\"]"), "secrets[0]", "32 hexadecimal"),
            (format!("\"{good}\""), "secrets", "list of secrets"),
            (
                "[1234567890123456]".to_string(),
                "secrets[0]",
                "string of 32",
            ),
            (format!("[[\"{good}\"]]"), "secrets[0]", "string of 32"),
        ] {
            let e = parse(&format!("secrets = {value}")).unwrap_err();
            let text = e.to_string();
            assert!(
                text.starts_with("/etc/smarthostd/smarthost.toml:5:"),
                "{text}"
            );
            assert!(text.contains(&format!("server.cookies.{key}")), "{text}");
            assert!(text.contains(problem), "{text}");
            assert!(!text.contains("00112233"), "the secret is quoted: {text}");
            assert!(!text.contains("1234567890"), "the value is quoted: {text}");
        }
        let e = parse("secret = []").unwrap_err().to_string();
        assert!(e.contains("unknown field"), "{e}");
    }
}
