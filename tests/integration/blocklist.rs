//! A DNS blocklist on loopback that a test can change as it goes: an authoritative UDP
//! responder (hickory-proto) that answers from a table of names (and aliases), or fails every
//! query with SERVFAIL, or falls silent so that lookups time out. It also serves as a hostile
//! name server.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, CNAME, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

/// How the blocklist answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// From its table: A and TXT records, NXDOMAIN for a name it does not hold.
    Answer,
    /// SERVFAIL to everything.
    ServFail,
    /// Nothing at all.
    Silent,
}

#[derive(Default)]
struct Table {
    mode: Option<Mode>,
    /// Lower-case names with their A records and TXT reason.
    names: HashMap<String, (Vec<Ipv4Addr>, Option<String>)>,
    /// Lower-case names that are aliases, and their targets.
    aliases: HashMap<String, Name>,
}

/// The blocklist, serving until dropped.
pub(crate) struct Blocklist {
    pub addr: SocketAddr,
    table: Arc<Mutex<Table>>,
    task: JoinHandle<()>,
}

impl Blocklist {
    pub(crate) async fn start() -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let table = Arc::new(Mutex::new(Table::default()));
        let shared = table.clone();
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            while let Ok((n, from)) = socket.recv_from(&mut buf).await {
                let Ok(query) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                let Some(reply) = answer(&shared.lock().unwrap(), &query) else {
                    continue;
                };
                let _ = socket.send_to(&reply.to_vec().unwrap(), from).await;
            }
        });
        Self { addr, table, task }
    }

    /// Lists `name` (fully qualified) with `code` and a TXT `reason`.
    pub(crate) fn set(&self, name: &str, code: &str, reason: Option<&str>) {
        self.table.lock().unwrap().names.insert(
            name.to_ascii_lowercase(),
            (vec![code.parse().unwrap()], reason.map(str::to_string)),
        );
    }

    /// Answers `name` (fully qualified), of any type, with a CNAME to `target`.
    pub(crate) fn alias(&self, name: &str, target: Name) {
        self.table
            .lock()
            .unwrap()
            .aliases
            .insert(name.to_ascii_lowercase(), target);
    }

    /// Takes `name` off the list: NXDOMAIN from now on.
    pub(crate) fn remove(&self, name: &str) {
        self.table
            .lock()
            .unwrap()
            .names
            .remove(&name.to_ascii_lowercase());
    }

    pub(crate) fn mode(&self, mode: Mode) {
        self.table.lock().unwrap().mode = Some(mode);
    }
}

impl Drop for Blocklist {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn answer(table: &Table, query: &Message) -> Option<Message> {
    let mode = table.mode.unwrap_or(Mode::Answer);
    if mode == Mode::Silent {
        return None;
    }
    let q = query.queries.first()?.clone();
    let mut reply = Message::new(query.metadata.id, MessageType::Response, OpCode::Query);
    reply.metadata.authoritative = true;
    reply.metadata.recursion_desired = query.metadata.recursion_desired;
    reply.add_query(q.clone());
    if mode == Mode::ServFail {
        reply.metadata.response_code = ResponseCode::ServFail;
        return Some(reply);
    }
    let name = q.name().to_ascii().to_ascii_lowercase();
    if let Some(target) = table.aliases.get(&name) {
        let cname = RData::CNAME(CNAME(target.clone()));
        reply.add_answer(Record::from_rdata(q.name().clone(), 1, cname));
        return Some(reply);
    }
    match table.names.get(&name) {
        None => reply.metadata.response_code = ResponseCode::NXDomain,
        Some((codes, reason)) => match q.query_type() {
            RecordType::A => {
                for code in codes {
                    reply.add_answer(Record::from_rdata(q.name().clone(), 1, RData::A(A(*code))));
                }
            }
            RecordType::TXT => {
                if let Some(reason) = reason {
                    let txt = TXT::new(vec![reason.clone()]);
                    reply.add_answer(Record::from_rdata(q.name().clone(), 1, RData::TXT(txt)));
                }
            }
            _ => {}
        },
    }
    Some(reply)
}
