//! TSIG (RFC 8945) on the wire: a request's signature checked with hickory-proto's `TSigner`,
//! and each response message signed, the first with the request's MAC and the full TSIG
//! variables, every later one of a transfer with the previous message's MAC and the timers only
//! (section 5.3.1).

use hickory_proto::op::Message;
use hickory_proto::rr::rdata::tsig::make_tsig_record;
use hickory_proto::rr::rdata::tsig::{TSIG, TsigAlgorithm as MacAlgorithm, TsigError};
use hickory_proto::rr::{Name, TSigner};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};

use crate::config::{TsigAlgorithm, TsigKeyConfig};

/// How far a request's time may be from ours, either way (RFC 8945 recommends 300 s).
pub const FUDGE: u16 = 300;
/// RCODE NOTAUTH: a TSIG that does not verify (RFC 8945 section 5.2).
pub const NOTAUTH: u8 = 9;

/// The configured keys, by name.
#[derive(Clone, Default)]
pub struct Keys(Vec<TSigner>);

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|k| k.signer_name().to_string()))
            .finish()
    }
}

impl Keys {
    /// Signers for the keys of `[transfer]`.
    pub fn new(keys: &[TsigKeyConfig]) -> Self {
        Self(
            keys.iter()
                .filter_map(|k| {
                    let algorithm = match k.algorithm {
                        TsigAlgorithm::HmacSha256 => MacAlgorithm::HmacSha256,
                        TsigAlgorithm::HmacSha512 => MacAlgorithm::HmacSha512,
                    };
                    TSigner::new(k.secret.bytes().to_vec(), algorithm, k.key_name(), FUDGE).ok()
                })
                .collect(),
        )
    }

    /// The key NOTIFY is signed with: the first.
    pub fn first(&self) -> Option<&TSigner> {
        self.0.first()
    }

    /// Whether there is no key.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn find(&self, name: &Name, algorithm: &MacAlgorithm) -> Option<&TSigner> {
        self.0
            .iter()
            .find(|k| k.signer_name() == name && k.algorithm() == algorithm)
    }

    /// Checks the TSIG of `request` (its bytes `raw`) at `now` (seconds since the epoch).
    pub fn check(&self, request: &Message, raw: &[u8], now: u64) -> Checked {
        let Some(record) = request.signature() else {
            return Checked::Unsigned;
        };
        let key = record.name.clone();
        let tsig = &record.data;
        let Some(signer) = self.find(&key, &tsig.algorithm) else {
            return Checked::Bad(Bad::unsigned(key, tsig, TsigError::BadKey, "unknown key"));
        };
        let (mac, _, window) = match signer.verify_message_byte(raw, None, true) {
            Ok(v) => v,
            Err(_) => {
                return Checked::Bad(Bad::unsigned(key, tsig, TsigError::BadSig, "bad signature"));
            }
        };
        let mut session = Session {
            signer: signer.clone(),
            previous_mac: mac,
            original_id: tsig.oid,
            first: true,
            time: now,
            error: None,
        };
        if !window.contains(&now) {
            session.error = Some(TsigError::BadTime);
            return Checked::Bad(Bad {
                key,
                reply: Reply::Signed(session),
                reason: "time outside the fudge",
            });
        }
        Checked::Valid(session)
    }
}

/// What a request's TSIG says.
pub enum Checked {
    /// None: the request is unsigned.
    Unsigned,
    /// It verifies: the response is signed in this session.
    Valid(Session),
    /// It does not: NOTAUTH with the TSIG error.
    Bad(Bad),
}

/// A TSIG that does not verify, and how to answer it.
pub struct Bad {
    /// The request's key name (from the network: escape before logging).
    pub key: Name,
    /// The TSIG record the NOTAUTH answer carries.
    pub reply: Reply,
    /// For the log.
    pub reason: &'static str,
}

/// The TSIG of a NOTAUTH answer.
pub enum Reply {
    /// BADKEY and BADSIG answers carry an unsigned TSIG (RFC 8945 section 5.2).
    Unsigned(Box<TSIG>),
    /// A BADTIME answer is signed.
    Signed(Session),
}

impl Bad {
    fn unsigned(key: Name, request: &TSIG, error: TsigError, reason: &'static str) -> Self {
        let tsig = TSIG::new(
            request.algorithm.clone(),
            request.time,
            request.fudge,
            Vec::new(),
            request.oid,
            Some(error),
            Vec::new(),
        );
        Self {
            key,
            reply: Reply::Unsigned(Box::new(tsig)),
            reason,
        }
    }

    /// The TSIG error of the answer.
    pub fn error(&self) -> TsigError {
        match &self.reply {
            Reply::Unsigned(t) => t.error.unwrap_or(TsigError::BadSig),
            Reply::Signed(s) => s.error.unwrap_or(TsigError::BadTime),
        }
    }

    /// Appends the answer's TSIG record to `message`.
    pub fn append(self, message: &mut Vec<u8>) {
        match self.reply {
            Reply::Unsigned(tsig) => append_record(message, &self.key, *tsig),
            Reply::Signed(mut session) => session.sign(message),
        }
    }
}

/// The signing of one response, or of the messages of one transfer in order.
pub struct Session {
    signer: TSigner,
    previous_mac: Vec<u8>,
    original_id: u16,
    first: bool,
    time: u64,
    error: Option<TsigError>,
}

impl Session {
    /// A session for messages smarthostd starts (NOTIFY): nothing before them.
    pub fn start(signer: &TSigner, id: u16, now: u64) -> Self {
        Self {
            signer: signer.clone(),
            previous_mac: Vec::new(),
            original_id: id,
            first: true,
            time: now,
            error: None,
        }
    }

    /// The key's name.
    pub fn key(&self) -> &Name {
        self.signer.signer_name()
    }

    /// Signs `message` (a whole DNS message without TSIG) by appending its TSIG record.
    pub fn sign(&mut self, message: &mut Vec<u8>) {
        let other = match self.error {
            // BADTIME carries our time (section 5.2.3).
            Some(TsigError::BadTime) => self.time.to_be_bytes()[2..].to_vec(),
            _ => Vec::new(),
        };
        let stub = TSIG::new(
            self.signer.algorithm().clone(),
            self.time,
            self.signer.fudge(),
            Vec::new(),
            self.original_id,
            self.error,
            other,
        );
        let tbs = if self.first {
            // A request (no previous MAC) is signed over itself and the variables alone.
            let previous = &self.previous_mac;
            match self.signer.encode_response_tbs(previous, message, &stub) {
                Ok(mut tbs) if previous.is_empty() => tbs.split_off(2),
                Ok(tbs) => tbs,
                Err(_) => return,
            }
        } else {
            let mut tbs = Vec::with_capacity(self.previous_mac.len() + message.len() + 10);
            tbs.extend_from_slice(&(self.previous_mac.len() as u16).to_be_bytes());
            tbs.extend_from_slice(&self.previous_mac);
            tbs.extend_from_slice(message);
            tbs.extend_from_slice(&self.time.to_be_bytes()[2..]);
            tbs.extend_from_slice(&self.signer.fudge().to_be_bytes());
            tbs
        };
        let Ok(mac) = self.signer.sign(&tbs) else {
            return;
        };
        self.previous_mac.clone_from(&mac);
        self.first = false;
        let key = self.signer.signer_name().clone();
        append_record(message, &key, stub.set_mac(mac));
    }

    /// The MAC of the last message signed: an answer to it is checked against it.
    pub fn mac(&self) -> &[u8] {
        &self.previous_mac
    }
}

/// Appends a TSIG record to `message` and counts it in ARCOUNT.
fn append_record(message: &mut Vec<u8>, key: &Name, tsig: TSIG) {
    if message.len() < 12 {
        return;
    }
    let record = make_tsig_record(key.clone(), tsig);
    let mut bytes = Vec::with_capacity(128);
    if record.emit(&mut BinEncoder::new(&mut bytes)).is_err() {
        return;
    }
    let count = u16::from_be_bytes([message[10], message[11]]).saturating_add(1);
    message[10..12].copy_from_slice(&count.to_be_bytes());
    message.extend_from_slice(&bytes);
}

/// The RFC 8945 name of a TSIG error, for logs.
pub fn error_name(error: TsigError) -> &'static str {
    match error {
        TsigError::BadSig => "BADSIG",
        TsigError::BadKey => "BADKEY",
        TsigError::BadTime => "BADTIME",
        TsigError::BadTrunc => "BADTRUNC",
        TsigError::Unknown(_) => "unknown",
    }
}
