//! Event times as RFC 3339 text, to the millisecond, for serde: the same form in
//! `events.jsonl`, `GET /events` and the history's figures.

/// Times as RFC 3339 text, to the millisecond.
pub(crate) mod rfc3339 {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes `t` as RFC 3339 in UTC, to the millisecond.
    pub(crate) fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_rfc3339_millis(*t))
    }

    /// Reads an RFC 3339 time, in UTC or with a numeric offset.
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let text = String::deserialize(d)?;
        super::super::filter::parse_time(&text).map_err(serde::de::Error::custom)
    }
}

/// Optional times as RFC 3339 text, to the millisecond.
pub(crate) mod rfc3339_option {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes a time as [`rfc3339::serialize`](super::rfc3339::serialize) does, and `None` as null.
    pub(crate) fn serialize<S: Serializer>(
        t: &Option<SystemTime>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => super::rfc3339::serialize(t, s),
            None => s.serialize_none(),
        }
    }

    /// Reads an RFC 3339 time (in UTC or with a numeric offset), or null.
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<SystemTime>, D::Error> {
        let text = Option::<String>::deserialize(d)?;
        text.map(|t| super::super::filter::parse_time(&t).map_err(serde::de::Error::custom))
            .transpose()
    }
}
