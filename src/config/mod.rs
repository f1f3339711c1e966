//! Server configuration: Apache ZooKeeper's `zoo.cfg` format, so an operator
//! can swap the binary and keep the file.
//!
//! Every key ZooKeeper documents is either honoured or reported, by name, in
//! one warning at start-up. A value that does not parse stops start-up with a
//! message naming the key and its line. Keys may carry ZooKeeper's
//! `zookeeper.` system-property prefix.

pub mod ensemble;
pub mod jaas;

pub use ensemble::{Role, ServerSpec};

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Raft entries an ensemble's member keeps in memory behind the last it
/// applied, for followers that fall behind, unless `keeper.retainedEntries`
/// says otherwise (a server that is the only voter keeps none); further
/// behind, a follower gets a snapshot.
pub const RETAINED_ENTRIES_DEFAULT: u64 = 10_000;

/// Default jute.maxbuffer: the largest frame a client may send (1 MiB - 1).
pub const MAX_FRAME_BYTES_DEFAULT: usize = 0xfffff;

/// Which four-letter words are allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Whitelist {
    All,
    Only(Vec<String>),
}

impl Whitelist {
    /// Whether `word` may run.
    pub fn allows(&self, word: &str) -> bool {
        match self {
            Whitelist::All => true,
            Whitelist::Only(words) => words.iter().any(|w| w == word),
        }
    }
}

/// Everything the server is configured with.
#[derive(Debug, Clone)]
pub struct Config {
    pub tick_ms: u32,
    pub init_limit: u32,
    pub sync_limit: u32,
    pub data_dir: PathBuf,
    pub data_log_dir: PathBuf,
    pub client_addr: SocketAddr,
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    /// Connections allowed from one IP address; 0 means unlimited.
    pub max_client_cnxns: u32,
    /// The `server.N` lines; empty for a standalone server.
    pub servers: Vec<ServerSpec>,
    /// This server's id (`myid` in dataDir when servers are listed, else 1).
    pub my_id: u8,
    /// `peerType`, and its line: this server's role, which must match its server line.
    pub peer_type: Option<(Role, usize)>,
    /// `readonlymode.enabled`: serve reads while cut off from the quorum.
    pub read_only_mode: bool,
    /// `electionPortBindRetry`: attempts to bind the peer port (0: keep trying).
    pub election_port_bind_retry: u32,
    /// `keeper.retainedEntries`: raft entries an ensemble's member keeps in
    /// memory behind the last it applied, for followers that fall behind
    /// (further behind, they get a snapshot).
    pub retained_entries: u64,
    /// Not a zoo.cfg key: the simulator's fixed election timeout in raft
    /// ticks, so that a run is a function of its seed. None (always, in a
    /// server): raft draws each timeout at random.
    pub fixed_election_ticks: Option<usize>,
    pub four_letter_words: Whitelist,
    pub extended_types: bool,
    /// `enforceQuota` (ZooKeeper 3.7+): hard quota limits refuse writes.
    pub enforce_quota: bool,
    /// Overload protection: `globalOutstandingLimit` and the connection throttle.
    pub throttle: Throttle,
    /// Where the Prometheus endpoint listens (`metricsProvider.className`
    /// naming ZooKeeper's PrometheusMetricsProvider, `metricsProvider.httpHost`
    /// and `.httpPort`); none without it.
    pub metrics_addr: Option<SocketAddr>,
    /// The AdminServer (`admin.*`), if asked for.
    pub admin: Option<AdminServer>,
    /// Where TLS clients connect (`secureClientPort`, `secureClientPortAddress`), if anywhere.
    pub secure_client_addr: Option<SocketAddr>,
    /// Whether plaintext clients have a port (`clientPort` given, or no secure port).
    pub plain_clients: bool,
    /// The client port's TLS settings (`ssl.*`).
    pub ssl: Ssl,
    /// TLS on the peer links (`sslQuorum=true` with `ssl.quorum.*`).
    pub ssl_quorum: Option<Ssl>,
    /// `keeper.logLevel`: the log filter (`info`, `debug`,
    /// `info,keeper::runtime::peer=debug`...); `KEEPER_LOG` overrides it.
    pub log_level: Option<String>,
    /// SASL: the JAAS file (`java.security.auth.login.config`, in zoo.cfg
    /// or as `-D` in SERVER_JVMFLAGS or JVMFLAGS) and its section
    /// (`sasl.serverconfig`, default `Server`).
    pub jaas: Option<(PathBuf, String)>,
    /// The users the JAAS section names, read at start-up ([`Config::load_sasl`]).
    pub sasl_users: Option<Arc<jaas::SaslUsers>>,
    /// `superUser`: a SASL identity that may do anything.
    pub sasl_super_user: Option<String>,
    /// Schemes a connection must have authenticated with before any request
    /// (`enforce.auth.enabled` with `enforce.auth.schemes`,
    /// `sessionRequireClientSASLAuth`, `requireClientAuthScheme`).
    pub enforce_auth_schemes: Vec<String>,
    /// Schemes `authProvider.N` registers (x509, sasl) beyond those TLS and a JAAS file bring.
    pub auth_providers: Vec<&'static str>,
    pub snap_retain_count: u32,
    pub purge_interval_hours: u32,
    pub max_frame_bytes: usize,
    pub snap_count: u64,
    pub segment_bytes: usize,
    pub force_sync: bool,
    /// The super user's digest id (`user:base64hash`).
    pub super_digest: Option<String>,
    pub container_check_interval_ms: u64,
    pub container_max_per_minute: u32,
    /// Shard cores (client connections and reads); the broadcast core is extra.
    pub shards: usize,
    /// The broadcast loop runs on shard 0's core instead of a core of its own.
    pub shared_broadcast: bool,
    /// Recognised ZooKeeper keys keeper does not act on, for the start-up warning.
    pub unsupported: Vec<String>,
    /// Keys neither keeper nor ZooKeeper knows (a typo, most likely).
    pub unknown: Vec<UnknownKey>,
    /// Where the config came from (for `conf`), if a file.
    pub source: Option<PathBuf>,
}

/// A configuration problem that stops start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Shards to run by default: one per core, less the broadcast core, at least one.
pub fn default_shards() -> usize {
    available_cores().saturating_sub(1).max(1)
}

/// Whether the broadcast loop shares shard 0's core by default: on one or
/// two cores, where a core of its own would leave it mostly waking and
/// sleeping (measured in PERF.md).
pub fn default_shared_broadcast() -> bool {
    available_cores() <= 2
}

impl Default for Config {
    /// The embedded default: standalone on 127.0.0.1:2181, data in ./keeper-data.
    fn default() -> Self {
        let tick_ms = 2000;
        Config {
            tick_ms,
            init_limit: 10,
            sync_limit: 5,
            data_dir: PathBuf::from("keeper-data"),
            data_log_dir: PathBuf::from("keeper-data"),
            client_addr: SocketAddr::from(([127, 0, 0, 1], 2181)),
            min_session_timeout_ms: 2 * tick_ms as i32,
            max_session_timeout_ms: 20 * tick_ms as i32,
            max_client_cnxns: 60,
            servers: Vec::new(),
            my_id: 1,
            peer_type: None,
            read_only_mode: false,
            election_port_bind_retry: 3,
            retained_entries: RETAINED_ENTRIES_DEFAULT,
            fixed_election_ticks: None,
            four_letter_words: Whitelist::Only(vec!["srvr".into()]),
            extended_types: false,
            enforce_quota: false,
            throttle: Throttle::default(),
            metrics_addr: None,
            admin: None,
            secure_client_addr: None,
            plain_clients: true,
            ssl: Ssl::default(),
            ssl_quorum: None,
            log_level: None,
            jaas: None,
            sasl_users: None,
            sasl_super_user: None,
            enforce_auth_schemes: Vec::new(),
            auth_providers: Vec::new(),
            snap_retain_count: 3,
            purge_interval_hours: 0,
            max_frame_bytes: MAX_FRAME_BYTES_DEFAULT,
            snap_count: 100_000,
            segment_bytes: 64 << 20,
            force_sync: true,
            super_digest: None,
            container_check_interval_ms: 60_000,
            container_max_per_minute: 10_000,
            shards: default_shards(),
            shared_broadcast: default_shared_broadcast(),
            unsupported: Vec::new(),
            unknown: Vec::new(),
            source: None,
        }
    }
}

/// `shared` or `dedicated` (`keeper.broadcastCore`, `--broadcast-core`):
/// whether the broadcast loop shares shard 0's core.
pub fn parse_broadcast_core(value: &str) -> Option<bool> {
    match value {
        "shared" => Some(true),
        "dedicated" => Some(false),
        _ => None,
    }
}

/// Keys ZooKeeper knows that keeper accepts but does not act on.
/// A key in zoo.cfg that neither keeper nor ZooKeeper knows, and the
/// known key closest to it, if one is close.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownKey {
    pub key: String,
    pub line: usize,
    pub suggestion: Option<&'static str>,
}

impl std::fmt::Display for UnknownKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: unknown key {}", self.line, self.key)?;
        match self.suggestion {
            Some(s) => write!(f, " (did you mean {s}?)"),
            None => Ok(()),
        }
    }
}

/// Where the AdminServer listens and the URL its commands hang under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminServer {
    /// `admin.serverAddress` (default 0.0.0.0) and `admin.serverPort` (default 8080).
    pub addr: SocketAddr,
    /// `admin.commandURL` (default `/commands`).
    pub command_url: String,
}

/// A key or trust store (`ssl.keyStore.*`, `ssl.trustStore.*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Store {
    pub location: PathBuf,
    pub password: Option<String>,
    /// `PEM`, `PKCS12` or `JKS`: as given, else from the file's extension
    /// (`.pem`, `.p12`/`.pfx`, `.jks`), as ZooKeeper infers it.
    pub kind: String,
}

/// The schemes beyond world, digest and ip that ACLs may name: as in
/// ZooKeeper, only where their authentication provider exists (x509 with
/// TLS for clients, sasl with a JAAS file, either with an `authProvider.N`
/// naming it). See [`Config::acl_schemes`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AclSchemes {
    pub x509: bool,
    pub sasl: bool,
}

/// A store's keys as zoo.cfg gave them (each may be missing).
#[derive(Debug, Default)]
struct StoreKeys {
    location: Option<PathBuf>,
    password: Option<String>,
    kind: Option<String>,
}

/// Whether TLS clients must present a certificate (`ssl.clientAuth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuth {
    None,
    Want,
    /// ZooKeeper's default.
    #[default]
    Need,
}

/// The client port's TLS settings, as ZooKeeper's `ssl.*` keys give them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ssl {
    pub key_store: Option<Store>,
    pub trust_store: Option<Store>,
    pub client_auth: ClientAuth,
    /// `ssl.protocol` (`TLSv1.2`, `TLSv1.3`, `TLS`), and `ssl.enabledProtocols`.
    pub protocol: Option<String>,
    pub enabled_protocols: Vec<String>,
    /// `ssl.ciphersuites`, by their Java (IANA) names; empty: rustls's defaults.
    pub ciphersuites: Vec<String>,
    /// `ssl.quorum.hostnameVerification` (default true): a server's
    /// certificate must name the host its peer dialed.
    pub hostname_verification: bool,
}

impl Default for Ssl {
    fn default() -> Ssl {
        Ssl {
            key_store: None,
            trust_store: None,
            client_auth: ClientAuth::default(),
            protocol: None,
            enabled_protocols: Vec::new(),
            ciphersuites: Vec::new(),
            hostname_verification: true,
        }
    }
}

/// `admin.serverPort`'s default, as ZooKeeper's.
const ADMIN_PORT_DEFAULT: u16 = 8080;

/// `metricsProvider.httpPort`'s default, as ZooKeeper's.
const METRICS_PORT_DEFAULT: u16 = 7000;

/// Overload protection, as ZooKeeper operators configure it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Throttle {
    /// `globalOutstandingLimit` (default 1000): requests a server holds
    /// unanswered at once; past it, it stops reading from clients.
    pub outstanding_limit: usize,
    /// `request_throttle_max_requests` (3.6+; 0, the default, is off): a
    /// second cap on the same count, the lower of the two applies.
    pub request_max: usize,
    /// `connection_throttle_tokens` (3.6+; 0, the default, is off): new
    /// connections accepted in a burst; each takes a token.
    pub connection_tokens: u32,
    /// `connection_throttle_fill_time` (ms, default 1) and
    /// `connection_throttle_fill_count` (default 1): tokens come back at
    /// this rate. A connection that finds no token is closed at once.
    pub connection_fill_ms: u64,
    pub connection_fill_count: u32,
}

impl Default for Throttle {
    fn default() -> Throttle {
        Throttle { outstanding_limit: 1000, request_max: 0, connection_tokens: 0, connection_fill_ms: 1, connection_fill_count: 1 }
    }
}

impl Throttle {
    /// Requests held unanswered at once, server-wide.
    pub fn outstanding_max(&self) -> usize {
        if self.request_max > 0 { self.outstanding_limit.min(self.request_max) } else { self.outstanding_limit }
    }
}

/// The largest tickTime: 20 ticks (the default maxSessionTimeout) still fit
/// in the protocol's 32-bit timeout.
const TICK_MS_MAX: u32 = i32::MAX as u32 / 20;

/// The keys keeper acts on.
const KNOWN_KEYS: &[&str] = &[
    "tickTime",
    "initLimit",
    "syncLimit",
    "dataDir",
    "dataLogDir",
    "clientPort",
    "clientPortAddress",
    "minSessionTimeout",
    "maxSessionTimeout",
    "maxClientCnxns",
    "4lw.commands.whitelist",
    "extendedTypesEnabled",
    "enforceQuota",
    "metricsProvider.className",
    "metricsProvider.httpHost",
    "metricsProvider.httpPort",
    "admin.enableServer",
    "admin.serverAddress",
    "admin.serverPort",
    "admin.commandURL",
    "secureClientPort",
    "secureClientPortAddress",
    "ssl.keyStore.location",
    "ssl.keyStore.password",
    "ssl.keyStore.type",
    "ssl.trustStore.location",
    "ssl.trustStore.password",
    "ssl.trustStore.type",
    "ssl.clientAuth",
    "ssl.protocol",
    "ssl.enabledProtocols",
    "ssl.ciphersuites",
    "sslQuorum",
    "ssl.quorum.keyStore.location",
    "ssl.quorum.keyStore.password",
    "ssl.quorum.keyStore.type",
    "ssl.quorum.trustStore.location",
    "ssl.quorum.trustStore.password",
    "ssl.quorum.trustStore.type",
    "ssl.quorum.protocol",
    "ssl.quorum.enabledProtocols",
    "ssl.quorum.ciphersuites",
    "ssl.quorum.hostnameVerification",
    "java.security.auth.login.config",
    "sasl.serverconfig",
    "superUser",
    "sessionRequireClientSASLAuth",
    "enforce.auth.enabled",
    "enforce.auth.schemes",
    "requireClientAuthScheme",
    "globalOutstandingLimit",
    "request_throttle_max_requests",
    "connection_throttle_tokens",
    "connection_throttle_fill_time",
    "connection_throttle_fill_count",
    "autopurge.snapRetainCount",
    "autopurge.purgeInterval",
    "jute.maxbuffer",
    "snapCount",
    "preAllocSize",
    "forceSync",
    "DigestAuthenticationProvider.superDigest",
    "znode.container.checkIntervalMs",
    "znode.container.maxPerMinute",
    "keeper.shards",
    "keeper.broadcastCore",
    "keeper.retainedEntries",
    "keeper.logLevel",
    "peerType",
    "readonlymode.enabled",
    "electionPortBindRetry",
];

/// The known key (keeper's or ZooKeeper's) closest to `key`: the same but
/// for case, or within a few edits.
fn closest_key(key: &str) -> Option<&'static str> {
    let lower = key.to_ascii_lowercase();
    let candidates = KNOWN_KEYS.iter().chain(IGNORED_KEYS).copied();
    if let Some(same) = candidates.clone().find(|k| k.to_ascii_lowercase() == lower) {
        return Some(same);
    }
    let (best, distance) = candidates.map(|k| (k, strsim::levenshtein(&k.to_ascii_lowercase(), &lower))).min_by_key(|(_, d)| *d)?;
    (distance <= (key.len() / 4).max(2)).then_some(best)
}

const IGNORED_KEYS: &[&str] = &[
    "admin.idleTimeout",
    "admin.httpVersion",
    "admin.portUnification",
    "admin.forceHttps",
    "admin.needClientAuth",
    "standaloneEnabled",
    "reconfigEnabled",
    "dynamicConfigFile",
    "quorumListenOnAllIPs",
    "syncEnabled",
    "localSessionsEnabled",
    "localSessionsUpgradingEnabled",
    "serverCnxnFactory",
    "portUnification",
    "electionAlg",
    "leaderServes",
    "cnxTimeout",
    "snapSizeLimitInKb",
    "txnLogSizeLimitInKb",
    "fsync.warningthresholdms",
    "maxResponseCacheSize",
    "audit.enable",
];

impl Config {
    /// Reads a zoo.cfg file (and `myid` from its dataDir when servers are listed).
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError(format!("cannot read config {}: {e}", path.display())))?;
        let mut cfg = Config::parse(&text)?;
        cfg.source = Some(path.to_path_buf());
        Ok(cfg)
    }

    /// Parses zoo.cfg text.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let mut cfg = Config::default();
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        let mut client_port: Option<u16> = None;
        let mut client_ip: Option<IpAddr> = None;
        let (mut min_set, mut max_set, mut log_dir_set, mut data_dir_set) = (false, false, false, false);
        let (mut prometheus, mut metrics_host, mut metrics_port) = (false, IpAddr::from([0, 0, 0, 0]), METRICS_PORT_DEFAULT);
        // None: admin.enableServer not given (the server runs if an address or port is).
        let (mut admin_enabled, mut admin_placed) = (None, false);
        let (mut secure_port, mut secure_ip): (Option<u16>, Option<IpAddr>) = (None, None);
        // ssl.keyStore.* and ssl.trustStore.* (and ssl.quorum.'s), by "key" and "trust".
        let (mut stores, mut quorum_stores): (BTreeMap<&str, StoreKeys>, BTreeMap<&str, StoreKeys>) = Default::default();
        let (mut ssl_quorum, mut quorum_tls) = (false, Ssl::default());
        let (mut jaas_path, mut jaas_section) = (None, "Server".to_string());
        let (mut enforce_enabled, mut enforce_schemes, mut sasl_required) = (false, Vec::new(), false);
        let mut admin = AdminServer { addr: SocketAddr::from(([0, 0, 0, 0], ADMIN_PORT_DEFAULT)), command_url: "/commands".into() };
        for (index, raw) in text.lines().enumerate() {
            let line_no = index + 1;
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                return Err(ConfigError(format!("line {line_no}: expected key=value, found {line:?}")));
            };
            let key = key.trim().strip_prefix("zookeeper.").unwrap_or(key.trim());
            let value = value.trim();
            seen.insert(key.to_string(), line_no);
            let bad = |what: &str| ConfigError(format!("line {line_no}: invalid value {value:?} for {key}: expected {what}"));
            let num = |what: &str| value.parse::<u64>().map_err(|_| bad(what));
            let above_zero = |what: &str| num(what).ok().filter(|v| *v > 0).ok_or_else(|| bad(what));
            match key {
                "tickTime" => {
                    // The default session timeouts (2 and 20 ticks) must fit ZooKeeper's int.
                    let what = format!("a positive number of milliseconds, at most {TICK_MS_MAX}");
                    cfg.tick_ms = num(&what).ok().filter(|v| *v > 0 && *v <= TICK_MS_MAX as u64).ok_or_else(|| bad(&what))? as u32
                }
                "initLimit" => cfg.init_limit = num("a number of ticks")? as u32,
                "syncLimit" => cfg.sync_limit = num("a number of ticks")? as u32,
                "dataDir" => {
                    cfg.data_dir = PathBuf::from(value);
                    data_dir_set = true;
                }
                "dataLogDir" => {
                    cfg.data_log_dir = PathBuf::from(value);
                    log_dir_set = true;
                }
                "clientPort" => client_port = Some(value.parse::<u16>().map_err(|_| bad("a port number"))?),
                "clientPortAddress" => client_ip = Some(value.parse::<IpAddr>().map_err(|_| bad("an IP address"))?),
                "minSessionTimeout" => {
                    cfg.min_session_timeout_ms = parse_timeout(value).ok_or_else(|| bad("milliseconds, or -1 for the default"))?;
                    min_set = cfg.min_session_timeout_ms >= 0;
                }
                "maxSessionTimeout" => {
                    cfg.max_session_timeout_ms = parse_timeout(value).ok_or_else(|| bad("milliseconds, or -1 for the default"))?;
                    max_set = cfg.max_session_timeout_ms >= 0;
                }
                "maxClientCnxns" => cfg.max_client_cnxns = num("a number of connections (0 for no limit)")? as u32,
                "4lw.commands.whitelist" => cfg.four_letter_words = parse_whitelist(value),
                "extendedTypesEnabled" => cfg.extended_types = parse_bool(value).ok_or_else(|| bad("true or false"))?,
                "enforceQuota" => cfg.enforce_quota = parse_bool(value).ok_or_else(|| bad("true or false"))?,
                "metricsProvider.className" => {
                    prometheus = value.ends_with("PrometheusMetricsProvider");
                    if !prometheus && !value.ends_with("DefaultMetricsProvider") {
                        return Err(bad("org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider (or the default provider)"));
                    }
                }
                "metricsProvider.httpHost" => metrics_host = value.parse::<IpAddr>().map_err(|_| bad("an IP address"))?,
                "metricsProvider.httpPort" => metrics_port = value.parse::<u16>().map_err(|_| bad("a port number"))?,
                "admin.enableServer" => admin_enabled = Some(parse_bool(value).ok_or_else(|| bad("true or false"))?),
                "admin.serverAddress" => {
                    admin.addr.set_ip(value.parse::<IpAddr>().map_err(|_| bad("an IP address"))?);
                    admin_placed = true;
                }
                "admin.serverPort" => {
                    admin.addr.set_port(value.parse::<u16>().map_err(|_| bad("a port number"))?);
                    admin_placed = true;
                }
                "admin.commandURL" => {
                    let url = value.trim_end_matches('/');
                    if !url.starts_with('/') || url.contains(['?', '#', ' ']) {
                        return Err(bad("a URL path such as /commands"));
                    }
                    admin.command_url = url.to_string();
                }
                "secureClientPort" => secure_port = Some(value.parse::<u16>().map_err(|_| bad("a port number"))?),
                "secureClientPortAddress" => secure_ip = Some(value.parse::<IpAddr>().map_err(|_| bad("an IP address"))?),
                "sslQuorum" => ssl_quorum = parse_bool(value).ok_or_else(|| bad("true or false"))?,
                k if TLS_KEYS.iter().any(|t| k.strip_prefix("ssl.quorum.").or_else(|| k.strip_prefix("ssl.")) == Some(t)) => {
                    let (quorum, rest) = match k.strip_prefix("ssl.quorum.") {
                        Some(rest) => (true, rest),
                        None => (false, &k["ssl.".len()..]),
                    };
                    let (ssl, stores) = if quorum { (&mut quorum_tls, &mut quorum_stores) } else { (&mut cfg.ssl, &mut stores) };
                    tls_key(ssl, stores, rest, value).map_err(|what| bad(&what))?;
                }
                "java.security.auth.login.config" => jaas_path = Some(PathBuf::from(value)),
                "sasl.serverconfig" => jaas_section = value.to_string(),
                "superUser" => cfg.sasl_super_user = Some(value.to_string()),
                "sessionRequireClientSASLAuth" => sasl_required = parse_bool(value).ok_or_else(|| bad("true or false"))?,
                "requireClientAuthScheme" => {
                    if value != "sasl" {
                        return Err(bad("sasl"));
                    }
                    sasl_required = true;
                }
                "enforce.auth.enabled" => enforce_enabled = parse_bool(value).ok_or_else(|| bad("true or false"))?,
                "enforce.auth.schemes" => enforce_schemes = split_list(value),
                k if k.starts_with("authProvider.") => {
                    // keeper knows its schemes (digest, ip, x509, sasl) without being told;
                    // another provider class is one it does not have.
                    let known = ["DigestAuthenticationProvider", "IPAuthenticationProvider", "X509AuthenticationProvider", "SASLAuthenticationProvider"];
                    match known.iter().find(|p| value.ends_with(*p)) {
                        Some(&"X509AuthenticationProvider") => cfg.auth_providers.push("x509"),
                        Some(&"SASLAuthenticationProvider") => cfg.auth_providers.push("sasl"),
                        Some(_) => {}
                        None => cfg.unsupported.push(format!("{k}={value}")),
                    }
                }
                "globalOutstandingLimit" => cfg.throttle.outstanding_limit = above_zero("a positive number of requests")? as usize,
                "request_throttle_max_requests" => cfg.throttle.request_max = num("a number of requests (0: off)")? as usize,
                "connection_throttle_tokens" => cfg.throttle.connection_tokens = num("a number of connections (0: off)")? as u32,
                "connection_throttle_fill_time" => cfg.throttle.connection_fill_ms = above_zero("a positive number of milliseconds")?,
                "connection_throttle_fill_count" => cfg.throttle.connection_fill_count = above_zero("a positive number of connections")? as u32,
                "autopurge.snapRetainCount" => cfg.snap_retain_count = (num("a count of at least 3")? as u32).max(3),
                "autopurge.purgeInterval" => cfg.purge_interval_hours = num("a number of hours")? as u32,
                "jute.maxbuffer" => {
                    cfg.max_frame_bytes =
                        num("a number of bytes").ok().filter(|v| *v > 0 && *v < i32::MAX as u64).ok_or_else(|| bad("a number of bytes"))? as usize
                }
                "snapCount" => {
                    cfg.snap_count = num("a number of transactions").ok().filter(|v| *v >= 2).ok_or_else(|| bad("a number of transactions, at least 2"))?
                }
                "preAllocSize" => {
                    let kib = num("a size in KiB").ok().filter(|v| *v > 0 && *v <= 1 << 24).ok_or_else(|| bad("a size in KiB, at most 16 GiB"))?;
                    cfg.segment_bytes = kib as usize * 1024
                }
                "forceSync" => cfg.force_sync = parse_yes_no(value).ok_or_else(|| bad("yes or no"))?,
                "DigestAuthenticationProvider.superDigest" => {
                    if value.split(':').count() != 2 {
                        return Err(bad("user:base64digest"));
                    }
                    cfg.super_digest = Some(value.to_string());
                }
                "znode.container.checkIntervalMs" => cfg.container_check_interval_ms = above_zero("milliseconds")?,
                "znode.container.maxPerMinute" => {
                    cfg.container_max_per_minute = num("a count").ok().filter(|v| *v > 0).ok_or_else(|| bad("a positive count"))? as u32
                }
                "keeper.shards" => {
                    cfg.shards =
                        num("a number of shard cores").ok().filter(|v| (1..=256).contains(v)).ok_or_else(|| bad("a number of shard cores (1-256)"))? as usize
                }
                "keeper.broadcastCore" => cfg.shared_broadcast = parse_broadcast_core(value).ok_or_else(|| bad("shared or dedicated"))?,
                "keeper.retainedEntries" => cfg.retained_entries = num("a number of raft entries")?,
                "keeper.logLevel" => cfg.log_level = Some(value.to_string()),
                k if k.starts_with("server.") => {
                    let spec = ensemble::parse_server(k, value, line_no).map_err(|why| ConfigError(format!("line {line_no}: invalid {key}: {why}")))?;
                    ensemble::add_server(&mut cfg.servers, spec)?;
                }
                "peerType" => cfg.peer_type = Some((Role::parse(value).ok_or_else(|| bad("participant or observer"))?, line_no)),
                "readonlymode.enabled" => cfg.read_only_mode = parse_bool(value).ok_or_else(|| bad("true or false"))?,
                "electionPortBindRetry" => cfg.election_port_bind_retry = num("a number of attempts (0: no limit)")? as u32,
                k if IGNORED_KEYS.contains(&k)
                    || ["ssl.", "quorum.", "group.", "weight.", "connection_throttle_", "request_throttle_", "metricsProvider."]
                        .iter()
                        .any(|p| k.starts_with(p)) =>
                {
                    cfg.unsupported.push(k.to_string())
                }
                other => cfg.unknown.push(UnknownKey { key: other.to_string(), line: line_no, suggestion: closest_key(other) }),
            }
        }
        cfg.metrics_addr = prometheus.then(|| SocketAddr::new(metrics_host, metrics_port));
        cfg.admin = admin_enabled.unwrap_or(admin_placed).then_some(admin);
        cfg.jaas = jaas_path.map(|p| (p, jaas_section));
        // As ZooKeeper's AuthenticationHelper: sessionRequireClientSASLAuth wins over enforce.auth.*.
        cfg.enforce_auth_schemes = if sasl_required {
            vec!["sasl".to_string()]
        } else if enforce_enabled {
            enforce_schemes
        } else {
            Vec::new()
        };
        if enforce_enabled && !sasl_required && cfg.enforce_auth_schemes.is_empty() {
            return Err(ConfigError("enforce.auth.enabled is true but enforce.auth.schemes names no scheme".into()));
        }
        if let Some(unknown) = cfg.enforce_auth_schemes.iter().find(|s| !["sasl", "digest", "ip", "x509"].contains(&s.as_str())) {
            return Err(ConfigError(format!("authentication scheme {unknown} (enforce.auth.schemes) is not available: keeper has digest, ip, x509 and sasl")));
        }
        set_stores(&mut cfg.ssl, stores, "ssl.")?;
        set_stores(&mut quorum_tls, quorum_stores, "ssl.quorum.")?;
        if ssl_quorum {
            if quorum_tls.key_store.is_none() || quorum_tls.trust_store.is_none() {
                return Err(ConfigError(
                    "sslQuorum=true needs ssl.quorum.keyStore.location and ssl.quorum.trustStore.location: every server proves itself to the others".into(),
                ));
            }
            // Servers always prove themselves to each other, as in ZooKeeper.
            quorum_tls.client_auth = ClientAuth::Need;
            cfg.ssl_quorum = Some(quorum_tls);
        }
        if let Some(port) = secure_port {
            if cfg.ssl.key_store.is_none() {
                return Err(ConfigError("secureClientPort is set but ssl.keyStore.location is not: TLS needs the server's certificate and key".into()));
            }
            cfg.secure_client_addr = Some(SocketAddr::new(secure_ip.or(client_ip).unwrap_or(IpAddr::from([0, 0, 0, 0])), port));
            // As in ZooKeeper, a secure port alone serves no plaintext clients.
            cfg.plain_clients = client_port.is_some();
        }
        if !data_dir_set && seen.contains_key("dataLogDir") {
            return Err(ConfigError("dataDir is not set".into()));
        }
        if data_dir_set && !log_dir_set {
            cfg.data_log_dir = cfg.data_dir.clone();
        }
        if !min_set {
            cfg.min_session_timeout_ms = 2 * cfg.tick_ms as i32;
        }
        if !max_set {
            cfg.max_session_timeout_ms = 20 * cfg.tick_ms as i32;
        }
        if cfg.min_session_timeout_ms > cfg.max_session_timeout_ms {
            return Err(ConfigError(format!(
                "minSessionTimeout ({}) must not be larger than maxSessionTimeout ({})",
                cfg.min_session_timeout_ms, cfg.max_session_timeout_ms
            )));
        }
        let port = client_port.unwrap_or(cfg.client_addr.port());
        let ip = client_ip.unwrap_or_else(|| if client_port.is_some() { IpAddr::from([0, 0, 0, 0]) } else { cfg.client_addr.ip() });
        cfg.client_addr = SocketAddr::new(ip, port);
        Ok(cfg)
    }

    /// The ACL schemes this server has providers for, beyond world,
    /// digest and ip: x509 with TLS for clients, sasl with a JAAS file, and
    /// either when an `authProvider.N` names it (as in ZooKeeper).
    pub fn acl_schemes(&self) -> AclSchemes {
        AclSchemes {
            x509: self.secure_client_addr.is_some() || self.auth_providers.contains(&"x509"),
            sasl: self.jaas.is_some() || self.auth_providers.contains(&"sasl"),
        }
    }

    /// Reads the JAAS file's users for SASL, if a JAAS file is named (in
    /// zoo.cfg, or as ZooKeeper operators name it, with
    /// `-Djava.security.auth.login.config=...` in SERVER_JVMFLAGS or
    /// JVMFLAGS); SASL needs it when sessions must authenticate with it.
    pub fn load_sasl(&mut self) -> Result<(), ConfigError> {
        if self.jaas.is_none() {
            let flags = ["SERVER_JVMFLAGS", "JVMFLAGS"].iter().filter_map(|v| std::env::var(v).ok()).collect::<Vec<_>>().join(" ");
            let named = flags.split_whitespace().find_map(|f| f.strip_prefix("-Djava.security.auth.login.config="));
            let section = flags.split_whitespace().find_map(|f| f.strip_prefix("-Dzookeeper.sasl.serverconfig=")).unwrap_or("Server");
            self.jaas = named.map(|p| (PathBuf::from(p), section.to_string()));
        }
        if let Some((path, section)) = &self.jaas {
            let text = std::fs::read_to_string(path)
                .map_err(|e| ConfigError(format!("cannot read the JAAS file {} (java.security.auth.login.config): {e}", path.display())))?;
            let users = jaas::server_users(&text, section).map_err(|e| ConfigError(format!("the JAAS file {}: {e}", path.display())))?;
            self.sasl_users = Some(Arc::new(users));
        }
        if self.enforce_auth_schemes.iter().any(|s| s == "sasl") && self.sasl_users.is_none() {
            return Err(ConfigError("SASL authentication is required (sessionRequireClientSASLAuth, requireClientAuthScheme or enforce.auth.schemes), but no JAAS file names its users (java.security.auth.login.config)".into()));
        }
        Ok(())
    }

    /// Reads `myid` from dataDir when the config lists servers, and checks
    /// the ensemble (see [`ensemble::validate`]).
    pub fn load_my_id(&mut self) -> Result<(), ConfigError> {
        if self.servers.is_empty() {
            return match self.peer_type {
                Some((Role::Observer, line)) => Err(ConfigError(format!("line {line}: peerType=observer needs server.N lines naming the ensemble to observe"))),
                _ => Ok(()),
            };
        }
        self.my_id = ensemble::read_my_id(&self.data_dir, &self.servers)?;
        ensemble::validate(&self.servers, self.my_id, self.peer_type)?;
        // A client address on this server's line is where it serves clients.
        let me = self.servers.iter().find(|s| s.id == self.my_id).expect("validated above");
        if let Some(port) = me.client_port {
            let ip = me.client_host.as_deref().and_then(|h| h.parse::<IpAddr>().ok()).unwrap_or(self.client_addr.ip());
            self.client_addr = SocketAddr::new(ip, port);
        }
        Ok(())
    }
}

fn parse_timeout(v: &str) -> Option<i32> {
    v.parse::<i32>().ok().filter(|t| *t >= -1)
}

/// The TLS keys keeper reads, after `ssl.` (the client port) or `ssl.quorum.` (peer links).
const TLS_KEYS: &[&str] = &[
    "keyStore.location",
    "keyStore.password",
    "keyStore.type",
    "trustStore.location",
    "trustStore.password",
    "trustStore.type",
    "clientAuth",
    "protocol",
    "enabledProtocols",
    "ciphersuites",
    "hostnameVerification",
];

/// Sets one of [`TLS_KEYS`] (`rest`, after its prefix); `Err` names what the value should be.
fn tls_key<'a>(ssl: &mut Ssl, stores: &mut BTreeMap<&'a str, StoreKeys>, rest: &'a str, value: &str) -> Result<(), String> {
    match rest.split_once('.') {
        Some((store @ ("keyStore" | "trustStore"), field)) => {
            let entry = stores.entry(if store == "keyStore" { "key" } else { "trust" }).or_default();
            match field {
                "location" => entry.location = Some(PathBuf::from(value)),
                "password" => entry.password = Some(value.to_string()),
                _ => entry.kind = Some(value.to_ascii_uppercase()),
            }
        }
        _ => match rest {
            "clientAuth" => {
                ssl.client_auth = match value.to_ascii_lowercase().as_str() {
                    "none" => ClientAuth::None,
                    "want" => ClientAuth::Want,
                    "need" => ClientAuth::Need,
                    _ => return Err("none, want or need".into()),
                }
            }
            "protocol" => ssl.protocol = Some(value.to_string()),
            "enabledProtocols" => ssl.enabled_protocols = split_list(value),
            "ciphersuites" => ssl.ciphersuites = split_list(value),
            _ => ssl.hostname_verification = parse_bool(value).ok_or("true or false")?,
        },
    }
    Ok(())
}

/// Puts the stores `stores` gathered into `ssl`; `prefix` names their keys in errors.
fn set_stores(ssl: &mut Ssl, stores: BTreeMap<&str, StoreKeys>, prefix: &str) -> Result<(), ConfigError> {
    for (which, StoreKeys { location, password, kind }) in stores {
        let key = if which == "key" { format!("{prefix}keyStore") } else { format!("{prefix}trustStore") };
        let Some(location) = location else {
            return Err(ConfigError(format!("{key}.password or .type is set but {key}.location is not")));
        };
        let kind = kind.unwrap_or_else(|| store_kind_of(&location));
        let store = Store { location, password, kind };
        if which == "key" { ssl.key_store = Some(store) } else { ssl.trust_store = Some(store) }
    }
    Ok(())
}

/// A comma-separated list, trimmed, without empty items.
fn split_list(value: &str) -> Vec<String> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

/// A store's type from its file's extension, as ZooKeeper's `KeyStoreFileType.fromFilename`.
fn store_kind_of(path: &std::path::Path) -> String {
    match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("jks") => "JKS",
        Some("p12" | "pfx") => "PKCS12",
        Some("bcfks") => "BCFKS",
        _ => "PEM",
    }
    .to_string()
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

fn parse_yes_no(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "yes" | "true" => Some(true),
        "no" | "false" => Some(false),
        _ => None,
    }
}

fn parse_whitelist(v: &str) -> Whitelist {
    let words: Vec<String> = v.split(',').map(|w| w.trim().to_string()).filter(|w| !w.is_empty()).collect();
    if words.iter().any(|w| w == "*") { Whitelist::All } else { Whitelist::Only(words) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_typical_zoo_cfg() {
        let cfg = Config::parse("# comment\ntickTime=2000\ndataDir=/tmp/zk\nclientPort=2191\nclientPortAddress=127.0.0.1\nmaxClientCnxns=0\n4lw.commands.whitelist=*\nadmin.enableServer=false\nextendedTypesEnabled=true\nfoo.bar=1\n").unwrap();
        assert_eq!(cfg.client_addr, "127.0.0.1:2191".parse::<SocketAddr>().unwrap());
        assert_eq!(cfg.data_log_dir, PathBuf::from("/tmp/zk"));
        assert_eq!(cfg.max_session_timeout_ms, 40_000);
        assert!(cfg.extended_types);
        assert_eq!(cfg.four_letter_words, Whitelist::All);
        assert_eq!(cfg.unsupported, Vec::<String>::new());
        assert_eq!(cfg.admin, None);
        assert_eq!(cfg.unknown, vec![UnknownKey { key: "foo.bar".into(), line: 10, suggestion: None }]);
    }

    /// Found by the zoo.cfg fuzzer (case seed 4294971095726): a tickTime
    /// whose 20 ticks overflow the session timeout panicked.
    #[test]
    fn a_tick_time_too_large_for_the_session_timeouts_is_refused() {
        let err = Config::parse("tickTime=200092181\n").unwrap_err().to_string();
        assert!(err.contains("at most 107374182"), "{err}");
        assert_eq!(Config::parse("tickTime=107374182\n").unwrap().max_session_timeout_ms, 2_147_483_640);
        assert!(Config::parse("preAllocSize=18446744073709551\n").is_err(), "a segment size that overflows is refused");
    }

    #[test]
    fn misspelled_keys_get_a_suggestion() {
        let cfg = Config::parse(
            "tickTme=2000
clientport=2181
snapcount=5
maxClientCnxn=10
zzz=1
",
        )
        .unwrap();
        let said: Vec<String> = cfg.unknown.iter().map(ToString::to_string).collect();
        assert_eq!(
            said,
            [
                "line 1: unknown key tickTme (did you mean tickTime?)",
                "line 2: unknown key clientport (did you mean clientPort?)",
                "line 3: unknown key snapcount (did you mean snapCount?)",
                "line 4: unknown key maxClientCnxn (did you mean maxClientCnxns?)",
                "line 5: unknown key zzz",
            ]
        );
    }

    #[test]
    fn bad_values_name_key_and_line() {
        let err = Config::parse("dataDir=/x\n\ntickTime=fast\n").unwrap_err().0;
        assert!(err.contains("line 3") && err.contains("tickTime"), "{err}");
        let err = Config::parse("server.1=host:1\n").unwrap_err().0;
        assert!(err.contains("line 1") && err.contains("server.1"), "{err}");
        assert!(Config::parse("minSessionTimeout=9000\nmaxSessionTimeout=4000\n").is_err());
        let err = Config::parse("dataDir=/x\nkeeper.broadcastCore=own\n").unwrap_err().0;
        assert!(err.contains("line 2") && err.contains("keeper.broadcastCore") && err.contains("shared or dedicated"), "{err}");
    }

    #[test]
    fn broadcast_core_is_chosen_by_key() {
        assert!(Config::parse("dataDir=/x\nkeeper.broadcastCore=shared\n").unwrap().shared_broadcast);
        assert!(!Config::parse("dataDir=/x\nzookeeper.keeper.broadcastCore=dedicated\n").unwrap().shared_broadcast);
    }

    #[test]
    fn ensemble_keys_parse() {
        let cfg = Config::parse(
            "server.2=10.0.0.2:2888:3888\nserver.3=h:1:2:observer;0.0.0.0:2181\npeerType=observer\nreadonlymode.enabled=true\nelectionPortBindRetry=0\n",
        )
        .unwrap();
        assert_eq!((cfg.servers[0].id, cfg.servers[0].role, cfg.servers[1].role), (2, Role::Participant, Role::Observer));
        assert_eq!(cfg.peer_type, Some((Role::Observer, 3)));
        assert!(cfg.read_only_mode);
        assert_eq!(cfg.election_port_bind_retry, 0);
        let twice = Config::parse("server.1=a:1:2\nserver.1=b:1:2\n").unwrap_err().0;
        assert!(twice.contains("line 2") && twice.contains("listed twice"), "{twice}");
    }
    #[test]
    fn authentication_keys_are_read_as_zookeeper_reads_them() {
        let cfg = Config::parse("requireClientAuthScheme=sasl\njava.security.auth.login.config=/etc/jaas.conf\nsuperUser=admin\n").unwrap();
        assert_eq!(cfg.enforce_auth_schemes, vec!["sasl"]);
        assert_eq!(cfg.jaas, Some((PathBuf::from("/etc/jaas.conf"), "Server".to_string())));
        assert_eq!(cfg.sasl_super_user.as_deref(), Some("admin"));
        assert_eq!(cfg.acl_schemes(), AclSchemes { x509: false, sasl: true });
        let cfg = Config::parse(
            "enforce.auth.enabled=true\nenforce.auth.schemes=digest, sasl\nauthProvider.1=org.apache.zookeeper.server.auth.X509AuthenticationProvider\n",
        )
        .unwrap();
        assert_eq!(cfg.enforce_auth_schemes, vec!["digest", "sasl"]);
        assert!(cfg.acl_schemes().x509 && cfg.unsupported.is_empty());
        assert!(Config::parse("enforce.auth.enabled=true\n").unwrap_err().0.contains("names no scheme"));
        assert!(Config::parse("enforce.auth.enabled=true\nenforce.auth.schemes=kerberos\n").unwrap_err().0.contains("kerberos"));
        let mut cfg = Config::parse("sessionRequireClientSASLAuth=true\n").unwrap();
        assert!(cfg.load_sasl().unwrap_err().0.contains("no JAAS file"), "required SASL needs its users");
    }
    #[test]
    fn tls_keys_for_clients_and_for_peer_links() {
        let cfg = Config::parse(
            "secureClientPort=2281\nssl.keyStore.location=/k.p12\nssl.keyStore.password=pw\nssl.clientAuth=want\nsslQuorum=true\nssl.quorum.keyStore.location=/q.pem\nssl.quorum.trustStore.location=/t.pem\nssl.quorum.hostnameVerification=false\nssl.quorum.enabledProtocols=TLSv1.3\n",
        )
        .unwrap();
        let key = cfg.ssl.key_store.as_ref().unwrap();
        assert_eq!((key.kind.as_str(), key.password.as_deref(), cfg.ssl.client_auth), ("PKCS12", Some("pw"), ClientAuth::Want));
        assert_eq!(cfg.secure_client_addr.map(|a| a.port()), Some(2281));
        assert!(!cfg.plain_clients && cfg.unsupported.is_empty(), "{:?}", cfg.unsupported);
        let quorum = cfg.ssl_quorum.as_ref().expect("sslQuorum");
        assert_eq!((quorum.key_store.as_ref().unwrap().kind.as_str(), quorum.client_auth, quorum.hostname_verification), ("PEM", ClientAuth::Need, false));
        assert_eq!(quorum.enabled_protocols, vec!["TLSv1.3"]);
        assert!(Config::parse("sslQuorum=true\n").unwrap_err().0.contains("ssl.quorum.keyStore.location"));
        assert!(Config::parse("ssl.quorum.keyStore.password=x\n").unwrap_err().0.contains("ssl.quorum.keyStore.location is not"));
    }
}
