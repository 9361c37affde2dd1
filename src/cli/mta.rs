//! What each MTA does with a smart host given by name: the lookup it makes, the order it tries
//! addresses in, the limit that may hide a fallback, and the setting that selects it. Used by
//! `smarthostd explain --mta`; the deployment guide says the same in prose.

use clap::ValueEnum;

/// An MTA and the way it is pointed at the smart-host name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mta {
    /// Postfix, `relayhost = NAME`: MX lookup.
    Postfix,
    /// Postfix, `relayhost = [NAME]`: the name's own A/AAAA, no MX.
    PostfixBracket,
    /// Exim `manualroute` with `route_list = * NAME/MX`: MX lookup.
    EximMx,
    /// Exim `manualroute` with `route_list = * NAME byname`: the name's own addresses.
    Exim,
    /// OpenSMTPD `relay host smtp://NAME`: the name's own A/AAAA.
    Opensmtpd,
    /// Sendmail `SMART_HOST` `relay:NAME`: MX lookup.
    Sendmail,
    /// Exchange Server send connector with `-SmartHosts NAME`: MX first, then A.
    Exchange,
    /// Exchange Online outbound connector with a smart host FQDN: MX first, then A.
    ExchangeOnline,
}

/// What an MTA looks up for the name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// MX records, then each exchange's addresses; the name's own addresses only without MX.
    MxFirst,
    /// Only the name's own A/AAAA records.
    AddressesOnly,
}

/// The facts about one MTA.
#[derive(Debug, Clone, Copy)]
pub struct Profile {
    pub name: &'static str,
    pub lookup: Lookup,
    /// The setting that selects this behaviour; `{}` stands for the name.
    pub setting: &'static str,
    /// How it orders what it tries.
    pub order: &'static str,
    /// The limit on addresses tried per delivery attempt, with the setting that raises it.
    pub limit: Option<(usize, &'static str)>,
    /// What else bounds its failover.
    pub note: &'static str,
}

impl Mta {
    /// What this MTA does with a smart host given by name.
    pub fn profile(self) -> Profile {
        match self {
            Mta::Postfix => Profile {
                name: "Postfix",
                lookup: Lookup::MxFirst,
                setting: "relayhost = {}   (main.cf, no brackets)",
                order: "lowest preference first; equal preferences shuffled (smtp_randomize_addresses = yes)",
                limit: Some((5, "smtp_mx_address_limit")),
                note: "smtp_connect_timeout (30s by default) is paid per unreachable address before the next is tried",
            },
            Mta::PostfixBracket => Profile {
                name: "Postfix with brackets",
                lookup: Lookup::AddressesOnly,
                setting: "relayhost = [{}]   (main.cf)",
                order: "the addresses in random order (smtp_randomize_addresses = yes)",
                limit: None,
                note: "no MX lookup: the fallback site is reached only because smarthostd's A/AAAA answer names it once the local relays are down",
            },
            Mta::EximMx => Profile {
                name: "Exim, manualroute /MX",
                lookup: Lookup::MxFirst,
                setting: "route_list = * {}/MX   (manualroute router)",
                order: "lowest preference first; equal preferences in random order (hosts_randomize)",
                limit: Some((5, "hosts_max_try")),
                note: "a failed host is put on a retry hold by the retry rules; TCP Fast Open (hosts_try_fastopen) can bypass connect_timeout",
            },
            Mta::Exim => Profile {
                name: "Exim, manualroute byname",
                lookup: Lookup::AddressesOnly,
                setting: "route_list = * {} byname   (manualroute router)",
                order: "the addresses in the order the resolver gives them",
                limit: Some((5, "hosts_max_try")),
                note: "no MX lookup: failover follows smarthostd's A/AAAA answer",
            },
            Mta::Opensmtpd => Profile {
                name: "OpenSMTPD",
                lookup: Lookup::AddressesOnly,
                setting: "action \"relay\" relay host smtp://{}   (smtpd.conf)",
                order: "the addresses in the order the resolver gives them",
                limit: None,
                note: "a route that failed is disabled for about 15 s, and resolved addresses are reused while a session is open",
            },
            Mta::Sendmail => Profile {
                name: "Sendmail",
                lookup: Lookup::MxFirst,
                setting: "define(`SMART_HOST', `relay:{}')   (sendmail.mc; [{}] would skip MX)",
                order: "lowest preference first; equal preferences in random order",
                limit: None,
                note: "Timeout.connect and Timeout.iconnect bound each unreachable host",
            },
            Mta::Exchange => Profile {
                name: "Exchange Server send connector",
                lookup: Lookup::MxFirst,
                setting: "Set-SendConnector -SmartHosts {}",
                order: "MX first (lowest preference first), A record second, IP address last",
                limit: None,
                note: "a smart host that fails is retried per the connector's retry interval; equal-preference MX records are rotated",
            },
            Mta::ExchangeOnline => Profile {
                name: "Exchange Online outbound connector",
                lookup: Lookup::MxFirst,
                setting: "outbound connector, route via smart host: {}",
                order: "MX first (lowest preference first), then A",
                limit: None,
                note: "the name must resolve from the Internet, so the zone is delegated publicly: restrict who may ask with server.allow_query",
            },
        }
    }
}

impl Profile {
    /// The setting, with the name filled in.
    pub fn setting_for(&self, name: &str) -> String {
        self.setting.replace("{}", name.trim_end_matches('.'))
    }
}
