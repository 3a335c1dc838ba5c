//! The validated plan: what the operator wrote, typed. Built only by `plan::load`,
//! which has already checked every rule, so the rest of the program can trust it.
//! The defaults of what a plan may leave out are in `defaults`, beside it.

pub mod defaults;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use super::version::KongVersion;

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub name: String,
    pub from: KongVersion,
    pub to: KongVersion,
    pub mode: Mode,
    pub database: DatabaseKind,
    /// X's edition (`edition:`), as `kongup init` detected it; `None` when the plan leaves
    /// it out, and kongup reads it from X's Admin API when it needs it.
    pub edition: Option<Edition>,
    pub strategy: StrategyChoice,
    pub clusters: Clusters,
    pub admin: AdminAccess,
    pub executors: BTreeMap<String, ExecutorSpec>,
    pub traffic: TrafficSpec,
    pub gates: GateSpec,
    pub smoke_tests: Vec<SmokeTest>,
    pub migrations: MigrationsSpec,
    pub backup: BackupSpec,
    pub steps: StepCustomisation,
    /// Timeout for a command that does not set its own.
    pub command_timeout: Duration,
    /// Who else hears when kongup needs the operator (`notify:`).
    pub notify: NotifySpec,
    /// `rolling:`: the data planes (hybrid) or the nodes (DB-less) roll in waves; `None`
    /// rolls them as one cluster.
    pub rolling: Option<RollingSpec>,
}

/// `rolling:`: waves of the rolling fleet (`plan::waves` resolves them to nodes).
#[derive(Debug, Clone, PartialEq)]
pub struct RollingSpec {
    /// Cumulative shares of Y's fleet up after each wave, rising, the last all of it.
    pub waves: Vec<Share>,
    /// How long each wave's traffic stage is watched with the gates before the next wave.
    pub between_waves: Duration,
    /// `drain:`: each of a wave's X nodes is drained before its stop commands run, for at
    /// most this long (`actions::kong::drain`); `None`: the plan's commands stop it as
    /// they are.
    pub drain: Option<Duration>,
    /// `max_unavailable:`: at most this many of the fleet's nodes out of service at once
    /// (`plan::waves::max_unavailable` resolves it); `None`: a wave's nodes all at once.
    pub max_unavailable: Option<Share>,
    /// Whether one confirm runs a wave's steps in turn (`engine::wave`), or each step is
    /// confirmed on its own.
    pub confirm: WaveConfirm,
}

/// `rolling.confirm:`: what one confirm of a wave's step runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WaveConfirm {
    /// The "each wave is a group of steps, confirmed as one": the confirm of a
    /// wave's step runs the rest of the wave, pausing on a failure, a breach or an unfit Y.
    #[default]
    Wave,
    /// Every step of a wave waits for its own confirm.
    EachStep,
}

impl WaveConfirm {
    /// Both, as the plan's documentation lists them.
    pub const ALL: [WaveConfirm; 2] = [WaveConfirm::Wave, WaveConfirm::EachStep];

    /// The word the plan writes (`rolling.confirm:`).
    pub const fn as_str(self) -> &'static str {
        match self {
            WaveConfirm::Wave => "wave",
            WaveConfirm::EachStep => "each-step",
        }
    }
}

impl FromStr for WaveConfirm {
    type Err = UnknownWord;

    fn from_str(word: &str) -> Result<Self, UnknownWord> {
        UnknownWord::find("wave confirm", word, &WaveConfirm::ALL, WaveConfirm::as_str)
    }
}

/// The first Kong with `kong drain` (kong/cmd/drain.lua, absent at 3.8.0, present at
/// 3.9.0; CHANGELOG.md@3.9.1 "Added the `kong drain` CLI command"). Kong Enterprise 3.9.0.x
/// is taken to have it too (unverified: its source is closed).
pub const KONG_DRAIN_SINCE: KongVersion = KongVersion::new(3, 9, 0);

/// A part of a fleet: a number of nodes, or a percentage of them (rounded up).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Share {
    Nodes(usize),
    Percent(u8),
}

impl Share {
    /// How many of `fleet` nodes this is: a percentage rounded up, so a wave of 1% of
    /// ten nodes is one node, not none.
    pub fn of(self, fleet: usize) -> usize {
        match self {
            Share::Nodes(n) => n,
            Share::Percent(p) => (fleet * usize::from(p)).div_ceil(100),
        }
    }
}

impl fmt::Display for Share {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Share::Nodes(n) => write!(f, "{n}"),
            Share::Percent(p) => write!(f, "{p}%"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    Traditional,
    Dbless,
    Hybrid,
}

impl Mode {
    /// Every mode, in the order the plan's documentation lists them.
    pub const ALL: [Mode; 3] = [Mode::Traditional, Mode::Dbless, Mode::Hybrid];

    /// The word the plan writes (`mode:`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Mode::Traditional => "traditional",
            Mode::Dbless => "dbless",
            Mode::Hybrid => "hybrid",
        }
    }
}

impl FromStr for Mode {
    type Err = UnknownWord;

    fn from_str(word: &str) -> Result<Self, UnknownWord> {
        UnknownWord::find("mode", word, &Mode::ALL, Mode::as_str)
    }
}

/// Kong's edition: the open-source gateway or Kong Enterprise, as `GET /` says it from
/// 3.6.0 (`edition`: `community` | `enterprise`, kong/api/routes/kong.lua:133@3.9.1).
/// Enterprise has workspaces besides `default`, so its backups cover every workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Edition {
    Community,
    Enterprise,
}

impl Edition {
    /// Every edition, in the order the plan's documentation lists them.
    pub const ALL: [Edition; 2] = [Edition::Community, Edition::Enterprise];

    /// The word the plan writes (`edition:`), as Kong's `GET /` spells it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Edition::Community => "community",
            Edition::Enterprise => "enterprise",
        }
    }
}

impl FromStr for Edition {
    type Err = UnknownWord;

    fn from_str(word: &str) -> Result<Self, UnknownWord> {
        UnknownWord::find("edition", word, &Edition::ALL, Edition::as_str)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DatabaseKind {
    Postgres,
    Cassandra,
    Off,
}

impl DatabaseKind {
    /// Every kind, in the order the plan's documentation lists them.
    pub const ALL: [DatabaseKind; 3] = [
        DatabaseKind::Postgres,
        DatabaseKind::Cassandra,
        DatabaseKind::Off,
    ];

    /// The word the plan writes (`database:`), as Kong's `database` setting spells it.
    pub const fn as_str(self) -> &'static str {
        match self {
            DatabaseKind::Postgres => "postgres",
            DatabaseKind::Cassandra => "cassandra",
            DatabaseKind::Off => "off",
        }
    }
}

impl FromStr for DatabaseKind {
    type Err = UnknownWord;

    fn from_str(word: &str) -> Result<Self, UnknownWord> {
        UnknownWord::find("database", word, &DatabaseKind::ALL, DatabaseKind::as_str)
    }
}

/// A strategy for a database-backed cluster (traditional mode, or hybrid control planes),
/// or `Rolling` for nodes without a database (DB-less, hybrid data planes).
///
/// What the rest of the program asks of a strategy is answered here, each question by
/// one method with a `match` that names every strategy, so a new strategy cannot be
/// forgotten by a test that compares with one of them (see "Adding a strategy" in
/// `plan::templates`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Strategy {
    DualCluster,
    InPlace,
    BlueGreen,
    Rolling,
}

impl Strategy {
    /// Every strategy, in the order the plan's documentation lists them.
    pub const ALL: [Strategy; 4] = [
        Strategy::DualCluster,
        Strategy::InPlace,
        Strategy::BlueGreen,
        Strategy::Rolling,
    ];

    /// The word the plan writes (`strategy:`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Strategy::DualCluster => "dual-cluster",
            Strategy::InPlace => "in-place",
            Strategy::BlueGreen => "blue-green",
            Strategy::Rolling => "rolling",
        }
    }

    /// Whether the strategy upgrades nodes that keep their configuration in a database
    /// (traditional nodes, hybrid control planes): it migrates, backs up and checks that
    /// database. Rolling is for nodes without one (DB-less, hybrid data planes).
    pub fn is_database_backed(self) -> bool {
        match self {
            Strategy::DualCluster | Strategy::InPlace | Strategy::BlueGreen => true,
            Strategy::Rolling => false,
        }
    }

    /// Whether the strategy can upgrade a plan of `mode`: DB-less nodes only roll, and
    /// rolling is only for them (hybrid data planes roll on their own, after the control
    /// planes' strategy).
    pub fn fits_mode(self, mode: Mode) -> bool {
        match mode {
            Mode::Dbless => !self.is_database_backed(),
            Mode::Traditional | Mode::Hybrid => self.is_database_backed(),
        }
    }

    /// Whether Y gets a database of its own (restored from X's backup) rather than
    /// sharing X's. Only then does X's database stay untouched by Y's migrations.
    pub fn y_has_own_database(self) -> bool {
        match self {
            Strategy::DualCluster => true,
            Strategy::InPlace | Strategy::BlueGreen | Strategy::Rolling => false,
        }
    }

    /// Whether Y reuses X's database (Y migrates the database X runs on), so the plan gives
    /// Y none of its own. Rolling nodes have no database to share.
    pub fn y_shares_x_database(self) -> bool {
        match self {
            Strategy::InPlace | Strategy::BlueGreen => true,
            Strategy::DualCluster | Strategy::Rolling => false,
        }
    }

    /// Whether Y is installed on X's own machines, replacing X there (in place), rather
    /// than on machines of its own.
    pub fn installs_y_on_x_machines(self) -> bool {
        match self {
            Strategy::InPlace => true,
            Strategy::DualCluster | Strategy::BlueGreen | Strategy::Rolling => false,
        }
    }

    /// Whether X still serves while Y takes traffic in a plan of `mode`, so Y can be
    /// compared with X (the relative gates). Traditional in place stops X before Y
    /// starts; hybrid in place stops only X's control planes, and X's data planes keep
    /// serving until they roll.
    pub fn x_serves_beside_y(self, mode: Mode) -> bool {
        match (self, mode) {
            (Strategy::InPlace, Mode::Traditional) => false,
            (Strategy::InPlace, Mode::Dbless | Mode::Hybrid)
            | (Strategy::DualCluster | Strategy::BlueGreen | Strategy::Rolling, _) => true,
        }
    }

    /// Whether traffic moves from X to Y in a plan of `mode`, so the plan needs a
    /// `traffic.driver`. Traditional in place has Y answer on X's addresses once X has
    /// stopped (a driver there is optional: Y on machines of its own); everything else
    /// shifts traffic, hybrid plans because their data planes roll.
    pub fn shifts_traffic(self, mode: Mode) -> bool {
        match (self, mode) {
            (Strategy::InPlace, Mode::Traditional) => false,
            (Strategy::InPlace, Mode::Dbless | Mode::Hybrid)
            | (Strategy::DualCluster | Strategy::BlueGreen | Strategy::Rolling, _) => true,
        }
    }
}

impl FromStr for Strategy {
    type Err = UnknownWord;

    fn from_str(word: &str) -> Result<Self, UnknownWord> {
        UnknownWord::find("strategy", word, &Strategy::ALL, Strategy::as_str)
    }
}

/// What the plan says about the strategy. `Auto` leaves it to the chooser, which
/// always explains its pick.
#[derive(Debug, Clone, PartialEq)]
pub enum StrategyChoice {
    /// `strategy: auto`; `spare_capacity` says whether a second cluster can run beside X.
    Auto { spare_capacity: bool },
    /// Traditional: the cluster strategy; DB-less: `Rolling`; hybrid: the control-plane
    /// strategy (data planes always roll).
    Fixed(Strategy),
}

impl StrategyChoice {
    /// The word that leaves the strategy to the chooser.
    pub const AUTO: &'static str = "auto";

    /// Every word `strategy:` takes: `auto`, then each strategy.
    pub const WORDS: [&'static str; 1 + Strategy::ALL.len()] = {
        let mut words = [StrategyChoice::AUTO; 1 + Strategy::ALL.len()];
        let mut i = 0;
        while i < Strategy::ALL.len() {
            words[i + 1] = Strategy::ALL[i].as_str();
            i += 1;
        }
        words
    };

    /// The word the plan writes (`strategy:`).
    pub fn as_str(&self) -> &'static str {
        match self {
            StrategyChoice::Auto { .. } => StrategyChoice::AUTO,
            StrategyChoice::Fixed(strategy) => strategy.as_str(),
        }
    }

    /// Reads the word of `strategy:`: `None` for `auto` (whose `spare_capacity` is a key
    /// of its own), else the strategy the plan fixes.
    pub fn parse_word(word: &str) -> Result<Option<Strategy>, UnknownWord> {
        if word == StrategyChoice::AUTO {
            return Ok(None);
        }
        word.parse::<Strategy>().map(Some).map_err(|_| UnknownWord {
            kind: "strategy",
            word: word.to_string(),
            known: StrategyChoice::WORDS.to_vec(),
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Clusters {
    pub x: Cluster,
    pub y: Cluster,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    pub nodes: Vec<Node>,
    /// Dual-cluster gives Y its own database; other strategies share X's.
    pub database: Option<DatabaseSpec>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Traditional,
    ControlPlane,
    DataPlane,
}

impl Role {
    /// Every role, in the order the plan's documentation lists them.
    pub const ALL: [Role; 3] = [Role::Traditional, Role::ControlPlane, Role::DataPlane];

    /// The spelling Kong uses in `configuration.role` (and the plan in `role:`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Traditional => "traditional",
            Role::ControlPlane => "control_plane",
            Role::DataPlane => "data_plane",
        }
    }
}

impl FromStr for Role {
    type Err = UnknownWord;

    fn from_str(word: &str) -> Result<Self, UnknownWord> {
        UnknownWord::find("role", word, &Role::ALL, Role::as_str)
    }
}

/// A word that names none of a kind's values (`mode: tradtional`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownWord {
    /// What the word should have named: `mode`, `strategy`, `role`, `database`.
    pub kind: &'static str,
    pub word: String,
    /// Every word of the kind, in order.
    pub known: Vec<&'static str>,
}

impl UnknownWord {
    /// The value of `all` whose word is `word`.
    fn find<T: Copy>(
        kind: &'static str,
        word: &str,
        all: &[T],
        as_str: fn(T) -> &'static str,
    ) -> Result<T, UnknownWord> {
        all.iter()
            .copied()
            .find(|value| as_str(*value) == word)
            .ok_or_else(|| UnknownWord {
                kind,
                word: word.to_string(),
                known: all.iter().map(|value| as_str(*value)).collect(),
            })
    }
}

impl fmt::Display for UnknownWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let known: Vec<String> = self.known.iter().map(|w| format!("`{w}`")).collect();
        write!(
            f,
            "`{}` is not a {}: the known words are {}",
            self.word,
            self.kind,
            known.join(", ")
        )
    }
}

impl std::error::Error for UnknownWord {}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub name: String,
    pub admin_url: Option<String>,
    pub status_url: Option<String>,
    pub proxy_url: Option<String>,
    pub role: Role,
    /// Name of an entry in `Plan::executors`.
    pub executor: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DatabaseSpec {
    pub host: String,
    pub port: u16,
    pub name: String,
    pub user: String,
    pub password: Option<SecretRef>,
    /// TLS to the database (`database.tls`; libpq's `sslmode` and `sslrootcert`).
    pub tls: DatabaseTls,
}

/// TLS to PostgreSQL, as libpq's `sslmode` and `sslrootcert` say it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DatabaseTls {
    /// `None`: not written, so libpq's default applies (`PGSSLMODE`, else `prefer`).
    pub mode: Option<SslMode>,
    /// The CA that signed the server's certificate. `None`: `PGSSLROOTCERT`, else libpq's
    /// `~/.postgresql/root.crt` when it exists, else the system's roots.
    pub ca_file: Option<PathBuf>,
    /// A client certificate (PEM) for a server that asks for one, with its key (PEM,
    /// unencrypted, readable only by its owner). Both or neither.
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
}

/// libpq's `sslmode` values kongup speaks (all but `allow`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum SslMode {
    /// No TLS.
    Disable,
    /// TLS when the server offers it; the certificate is checked only against a CA file.
    #[default]
    Prefer,
    /// TLS or nothing; the certificate is checked only against a CA file (libpq's rule).
    Require,
    /// TLS, and the certificate chains to a trusted CA; its names are not checked.
    VerifyCa,
    /// TLS, the certificate chains to a trusted CA and names the host connected to.
    VerifyFull,
}

impl SslMode {
    pub const WORDS: [&'static str; 5] =
        ["disable", "prefer", "require", "verify-ca", "verify-full"];

    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    pub fn from_word(word: &str) -> Option<SslMode> {
        Some(match word {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }
}

/// Where a secret lives. The plan never holds the value itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SecretRef {
    Env(String),
    File(PathBuf),
}

impl SecretRef {
    /// Names the source without revealing the value, for error messages.
    pub fn describe(&self) -> String {
        match self {
            SecretRef::Env(var) => format!("environment variable {var}"),
            SecretRef::File(path) => format!("file {}", path.display()),
        }
    }
}

/// `notify:`: where kongup tells the team that it needs the operator (and of every
/// confirmation), beside the terminal's bell.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NotifySpec {
    /// Slack-compatible incoming webhooks (`POST` JSON `{"text": …}`). A webhook's URL
    /// carries its token, so it is a secret: named by `env` or `file`, never written here.
    pub webhooks: Vec<SecretRef>,
    /// A program run for each message, which it gets in `KONGUP_NOTIFY_TEXT`.
    pub command: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct AdminAccess {
    /// Sent as `Kong-Admin-Token`.
    pub token: Option<SecretRef>,
    pub tls: TlsOptions,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct TlsOptions {
    pub ca_file: Option<PathBuf>,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    /// Skip certificate verification; kongup warns every time it is used.
    pub insecure: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExecutorSpec {
    Local,
    Ssh {
        host: String,
        user: Option<String>,
        port: Option<u16>,
        identity_file: Option<PathBuf>,
    },
    Kubectl {
        context: Option<String>,
        namespace: Option<String>,
        target: KubectlTarget,
        container: Option<String>,
    },
    /// Ansible on the plan's inventory: the hosts are the plan's node names.
    Ansible(AnsibleSpec),
    /// Acts on the simulated lab (demo and rehearsal only).
    Sim,
}

/// An `ansible` executor: one `ansible` (ad-hoc) or `ansible-playbook` invocation per
/// command, limited to the nodes it runs on (`--limit`), whose inventory hostnames are the
/// plan's node names.
#[derive(Debug, Clone, PartialEq)]
pub struct AnsibleSpec {
    pub inventory: PathBuf,
    pub run: AnsibleRun,
    /// `--forks`: how many hosts Ansible works on at once; Ansible's own default when unset.
    pub forks: Option<u32>,
    /// `--user`: the remote user.
    pub user: Option<String>,
    /// `--become`.
    pub become_root: bool,
    /// More arguments for `ansible`/`ansible-playbook`, after kongup's own.
    pub args: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum AnsibleRun {
    /// `ansible-playbook PATH`: the command reaches the play as variables.
    Playbook(PathBuf),
    /// `ansible -m MODULE -a COMMAND`.
    Module(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum KubectlTarget {
    Pod(String),
    /// A label selector; commands run in the first ready pod it matches.
    Selector(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct TrafficSpec {
    pub driver: TrafficDriverSpec,
    /// Whether the plan names `traffic.driver` (`driver` is `Manual` when it does not).
    /// Only a traditional in-place plan may leave it out: Y then answers on X's
    /// addresses and no traffic moves.
    pub driver_given: bool,
    /// Percentages of traffic to Y, one confirmed step each, ending at 100.
    pub schedule: Vec<u8>,
    /// How long each stage bakes while gates are evaluated.
    pub bake: Duration,
    /// Advance to the next stage without a confirm when the bake passes its gates.
    pub auto_advance: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TrafficDriverSpec {
    Haproxy(HaproxyDriver),
    Nginx(NginxDriver),
    Kubernetes(KubernetesDriver),
    Command(CommandDriver),
    Manual,
}

impl TrafficDriverSpec {
    pub fn kind(&self) -> &'static str {
        match self {
            TrafficDriverSpec::Haproxy(_) => "haproxy",
            TrafficDriverSpec::Nginx(_) => "nginx",
            TrafficDriverSpec::Kubernetes(_) => "kubernetes",
            TrafficDriverSpec::Command(_) => "command",
            TrafficDriverSpec::Manual => "manual",
        }
    }

    /// The load balancer in a few words, as the topology pane names it
    /// (e.g. `haproxy /run/haproxy/admin.sock backend kong_proxy`).
    pub fn describe(&self) -> String {
        match self {
            TrafficDriverSpec::Haproxy(h) => format!("haproxy {} backend {}", h.socket, h.backend),
            TrafficDriverSpec::Nginx(n) => format!(
                "nginx upstream {} in {}",
                n.upstream_name,
                n.upstream_file.display()
            ),
            TrafficDriverSpec::Kubernetes(k) => match &k.target {
                KubernetesTarget::HttpRoute { name, .. } => format!("HTTPRoute {name}"),
                KubernetesTarget::IngressCanary { name } => format!("canary Ingress {name}"),
            },
            TrafficDriverSpec::Command(c) => format!("command {}", c.set.join(" ")),
            TrafficDriverSpec::Manual => "manual: the operator moves traffic".to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct HaproxyDriver {
    /// The runtime API: a unix socket path, or `host:port` for a TCP stats socket.
    pub socket: String,
    pub backend: String,
    /// Server names (as in the backend) that belong to X and to Y.
    pub x_servers: Vec<String>,
    pub y_servers: Vec<String>,
    /// `node_servers`: which server of the backend each node is (node name → server
    /// name), for what acts on one node's server (the drain of an X before Kong 3.9, a Y
    /// node taken out of its wave). A node not listed is the server of its own name, when
    /// `x_servers`/`y_servers` have it.
    pub node_servers: BTreeMap<String, String>,
}

impl HaproxyDriver {
    /// The backend server that is `node`, if the plan says which.
    pub fn server_of(&self, node: &str) -> Option<&str> {
        match self.node_servers.get(node) {
            Some(server) => Some(server),
            None => self
                .x_servers
                .iter()
                .chain(&self.y_servers)
                .find(|s| *s == node)
                .map(String::as_str),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct NginxDriver {
    /// The file included inside `http {}` that kongup rewrites.
    pub upstream_file: PathBuf,
    pub upstream_name: String,
    /// `host:port` of each X and Y proxy.
    pub x_servers: Vec<String>,
    pub y_servers: Vec<String>,
    /// The nginx binary (default `nginx`).
    pub binary: String,
    /// Passed to `nginx -c` when set.
    pub config: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct KubernetesDriver {
    pub executor: Option<String>,
    pub context: Option<String>,
    pub namespace: Option<String>,
    pub target: KubernetesTarget,
}

#[derive(Debug, Clone, PartialEq)]
pub enum KubernetesTarget {
    /// A Gateway API HTTPRoute whose rule carries one backendRef for X and one for Y.
    HttpRoute {
        name: String,
        rule: usize,
        x_backend: String,
        y_backend: String,
    },
    /// An ingress-nginx canary Ingress: its `canary-weight` annotation is Y's share.
    IngressCanary { name: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct CommandDriver {
    /// Argument vector; `{x}` and `{y}` are replaced by the percentages.
    pub set: Vec<String>,
    /// Optional command that prints the applied split as `X Y`.
    pub get: Option<Vec<String>>,
    pub executor: Option<String>,
    pub timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailAction {
    Pause,
    Rollback,
}

impl FailAction {
    /// Both actions, as the plan's documentation lists them.
    pub const ALL: [FailAction; 2] = [FailAction::Pause, FailAction::Rollback];

    /// The word the plan writes (`gates.on_fail:`).
    pub const fn as_str(self) -> &'static str {
        match self {
            FailAction::Pause => "pause",
            FailAction::Rollback => "rollback",
        }
    }
}

impl FromStr for FailAction {
    type Err = UnknownWord;

    fn from_str(word: &str) -> Result<Self, UnknownWord> {
        UnknownWord::find("gate action", word, &FailAction::ALL, FailAction::as_str)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct GateSpec {
    /// The sliding window the figures are computed over.
    pub window: Duration,
    /// Y's 5xx ratio must stay at or below this (0.0–1.0).
    pub max_error_ratio: Option<f64>,
    /// Y's p99 latency must stay at or below this many milliseconds.
    pub max_p99_ms: Option<f64>,
    /// Y's 5xx ratio minus X's must stay at or below this.
    pub max_error_ratio_delta: Option<f64>,
    /// Y's p99 must stay at or below this multiple of X's.
    pub max_p99_ratio: Option<f64>,
    /// Fewer requests than this in the window give an inconclusive verdict.
    pub min_requests: u64,
    /// How many breaching evaluations in a row make a failure.
    pub consecutive_breaches: u32,
    pub on_fail: FailAction,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SmokeTest {
    pub name: String,
    pub method: String,
    /// Path (with query) sent to each Y proxy.
    pub path: String,
    pub headers: BTreeMap<String, String>,
    /// Headers whose values are credentials (e.g. key-auth's `apikey`), read from their
    /// source when the test runs and sent alongside `headers`.
    pub secret_headers: BTreeMap<String, SecretRef>,
    pub body: Option<String>,
    pub expect_status: u16,
    pub expect_headers: BTreeMap<String, String>,
    pub expect_body_contains: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MigrationsSpec {
    /// The `kong` binary on Y's executor (default `kong`).
    pub kong_binary: String,
    /// Extra arguments, e.g. `-c /etc/kong/kong.conf`.
    pub extra_args: Vec<String>,
    /// Seconds passed as `--db-timeout` when the command does not already set it.
    pub db_timeout: u32,
    /// Plugins were added to the installation: run `up`/`finish` with `-f`.
    pub force: bool,
    pub timeout: Duration,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct BackupSpec {
    /// DB-less: the declarative configuration to copy.
    pub declarative_config: Option<PathBuf>,
    /// `kong.conf` to fetch through the node's executor.
    pub kong_conf: Option<PathBuf>,
    /// Keyring material to fetch through the node's executor.
    pub keyring: Vec<PathBuf>,
}

/// The operator's changes to the template steps.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StepCustomisation {
    /// Commands (and timeouts) given to template steps, by step reference.
    pub overrides: Vec<StepOverride>,
    pub inserts: Vec<InsertedStep>,
    pub skips: Vec<SkippedStep>,
}

/// Names a step: `id` alone when only one phase has it, else `phase/id`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StepSelector {
    pub phase: Option<super::steps::PhaseName>,
    pub id: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StepOverride {
    pub step: StepSelector,
    pub commands: Vec<CommandSpec>,
    pub timeout: Option<Duration>,
    /// `builtin: false`: kongup's own automation for the step is off; only the commands
    /// run (none: the step is a checklist item).
    pub builtin: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum InsertPosition {
    Before(StepSelector),
    After(StepSelector),
}

#[derive(Debug, Clone, PartialEq)]
pub struct InsertedStep {
    pub position: InsertPosition,
    pub id: String,
    pub title: String,
    pub instruction: String,
    pub commands: Vec<CommandSpec>,
    pub changes: bool,
    pub irreversible: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SkippedStep {
    pub step: StepSelector,
    pub reason: String,
}

/// One command a step runs.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandSpec {
    pub program: CommandLine,
    /// Executor name; `None` runs the command on `local`. The templates fill it in for
    /// commands the plan left without one on steps that act on nodes (`plan::placement`).
    pub executor: Option<String>,
    pub timeout: Option<Duration>,
    /// The node this copy of the command acts on, when the templates placed a command
    /// without an executor on each node of the step: named in the preview and the log,
    /// and passed to the command as `KONGUP_NODE`.
    pub node: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CommandLine {
    /// An argument vector, run without a shell.
    Argv(Vec<String>),
    /// A shell string, only when the plan says `shell:` explicitly.
    Shell(String),
}

impl CommandLine {
    /// How the command is shown to the operator before it runs.
    pub fn display(&self) -> String {
        match self {
            CommandLine::Argv(argv) => argv
                .iter()
                .map(|a| {
                    if a.is_empty()
                        || a.contains(|c: char| c.is_whitespace() || "'\"$`\\".contains(c))
                    {
                        format!("'{}'", a.replace('\'', "'\\''"))
                    } else {
                        a.clone()
                    }
                })
                .collect::<Vec<_>>()
                .join(" "),
            CommandLine::Shell(script) => format!("sh -c '{}'", script.replace('\'', "'\\''")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_reads_back_as_its_value() {
        for mode in Mode::ALL {
            assert_eq!(mode.as_str().parse::<Mode>(), Ok(mode));
        }
        for kind in DatabaseKind::ALL {
            assert_eq!(kind.as_str().parse::<DatabaseKind>(), Ok(kind));
        }
        for strategy in Strategy::ALL {
            assert_eq!(strategy.as_str().parse::<Strategy>(), Ok(strategy));
            assert_eq!(
                StrategyChoice::parse_word(strategy.as_str()),
                Ok(Some(strategy))
            );
        }
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        for action in FailAction::ALL {
            assert_eq!(action.as_str().parse::<FailAction>(), Ok(action));
        }
        assert_eq!(StrategyChoice::parse_word("auto"), Ok(None));
        assert_eq!(
            StrategyChoice::WORDS,
            ["auto", "dual-cluster", "in-place", "blue-green", "rolling"]
        );
    }

    #[test]
    fn an_unknown_word_is_refused_with_the_known_ones() {
        let error = "canary".parse::<Strategy>().unwrap_err();
        assert_eq!(
            error.to_string(),
            "`canary` is not a strategy: the known words are `dual-cluster`, `in-place`, `blue-green`, `rolling`"
        );
        let error = StrategyChoice::parse_word("canary").unwrap_err();
        assert_eq!(error.known, StrategyChoice::WORDS);
        assert!("Hybrid".parse::<Mode>().is_err());
        assert!("".parse::<Role>().is_err());
    }

    #[test]
    fn each_strategy_fits_the_modes_of_docs_plan() {
        let fits = |mode| {
            Strategy::ALL
                .into_iter()
                .filter(|s| s.fits_mode(mode))
                .collect::<Vec<_>>()
        };
        let database_backed = vec![
            Strategy::DualCluster,
            Strategy::InPlace,
            Strategy::BlueGreen,
        ];
        assert_eq!(fits(Mode::Traditional), database_backed);
        assert_eq!(fits(Mode::Hybrid), database_backed);
        assert_eq!(fits(Mode::Dbless), vec![Strategy::Rolling]);
    }

    #[test]
    fn only_traditional_in_place_keeps_traffic_where_it_is() {
        for mode in Mode::ALL {
            for strategy in Strategy::ALL {
                let in_place = (mode, strategy) == (Mode::Traditional, Strategy::InPlace);
                assert_eq!(
                    strategy.shifts_traffic(mode),
                    !in_place,
                    "{mode:?} {strategy:?}"
                );
                assert_eq!(
                    strategy.x_serves_beside_y(mode),
                    !in_place,
                    "{mode:?} {strategy:?}"
                );
            }
        }
    }
}
