//! `kongup init`: probe cluster X's Admin APIs and write a plan to start from.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::kong::client::{AdminClient, AdminClientOptions};
use crate::kong::discover::{self, InitOptions};
use crate::plan::load::parse_plan;
use crate::plan::model::{SecretRef, TlsOptions};
use crate::plan::version::KongVersion;
use crate::secrets::{has_userinfo, redact_url};

#[derive(Debug, Args)]
pub struct InitArgs {
    /// An Admin API of cluster X, e.g. https://10.0.1.11:8444. Repeat for every node;
    /// for hybrid mode the control planes are enough (they list their data planes).
    #[arg(long = "admin", value_name = "URL", required = true)]
    pub admin: Vec<String>,
    /// Write the plan to this file (refused if it exists, unless --force); default: stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Overwrite the output file.
    #[arg(long)]
    pub force: bool,
    /// The version to upgrade to; without it the next patch is written as a placeholder.
    #[arg(long, value_name = "VERSION")]
    pub to: Option<KongVersion>,
    /// A second cluster (and database) can run beside X: prefer dual-cluster.
    #[arg(long)]
    pub spare_capacity: bool,
    /// The plan's name.
    #[arg(long, value_name = "TEXT")]
    pub name: Option<String>,
    /// Environment variable holding the Admin token (sent as Kong-Admin-Token).
    #[arg(long, value_name = "VAR", conflicts_with = "token_file")]
    pub token_env: Option<String>,
    /// File holding the Admin token.
    #[arg(long, value_name = "PATH")]
    pub token_file: Option<PathBuf>,
    /// CA certificate (PEM) that signed the Admin API's certificate.
    #[arg(long, value_name = "PATH")]
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM) for Admin APIs that require mutual TLS.
    #[arg(long, value_name = "PATH", requires = "client_key")]
    pub client_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, value_name = "PATH", requires = "client_cert")]
    pub client_key: Option<PathBuf>,
    /// Do not verify the Admin API's certificate (a warning is printed every time).
    #[arg(long)]
    pub insecure: bool,
    /// Seconds to wait for each Admin API call.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub timeout: u64,
}

pub fn run(args: InitArgs) -> color_eyre::Result<i32> {
    // Before anything connects: a credential in a URL would be echoed in every message.
    if let Some(url) = args.admin.iter().find(|url| has_userinfo(url)) {
        eprintln!(
            "kongup init: --admin {} holds a user name or password; give the URL without \
             `user:password@`, and the Admin token with --token-env VAR or --token-file PATH \
             (sent as Kong-Admin-Token), never on the command line",
            redact_url(url)
        );
        return Ok(1);
    }
    let token = match (&args.token_env, &args.token_file) {
        (Some(var), _) => Some(SecretRef::Env(var.clone())),
        (None, Some(path)) => Some(SecretRef::File(path.clone())),
        (None, None) => None,
    };
    let tls = TlsOptions {
        ca_file: args.ca_file.clone(),
        client_cert: args.client_cert.clone(),
        client_key: args.client_key.clone(),
        insecure: args.insecure,
    };
    let options = AdminClientOptions {
        token: token.clone(),
        tls: tls.clone(),
        timeout: Duration::from_secs(args.timeout.max(1)),
        ..AdminClientOptions::default()
    };
    let (client, warnings) = match AdminClient::new(options) {
        Ok(built) => built,
        Err(e) => {
            eprintln!("kongup init: {e}");
            return Ok(1);
        }
    };
    for warning in &warnings {
        eprintln!("warning: {warning}");
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let discovery = match runtime.block_on(discover::discover(&client, &args.admin)) {
        Ok(discovery) => discovery,
        Err(e) => {
            eprintln!("kongup init: {e}");
            return Ok(1);
        }
    };
    let init = discover::render_plan(
        &discovery,
        &InitOptions {
            name: args.name.clone(),
            to: args.to,
            spare_capacity: args.spare_capacity,
            token,
            tls,
            written_at: Some(chrono::Utc::now()),
        },
    );
    let shown_name = args
        .output
        .as_ref()
        .map_or("the plan".to_string(), |p| p.display().to_string());
    // The plan must load as written; if it does not, that is kongup's bug, said plainly.
    if let Err(errors) = parse_plan(&init.yaml, &shown_name) {
        eprintln!(
            "kongup init wrote a plan that does not validate (a bug in kongup; please report it):\n{errors}"
        );
        return Ok(1);
    }
    match &args.output {
        Some(path) => {
            let mut open = std::fs::OpenOptions::new();
            open.write(true);
            if args.force {
                open.create(true).truncate(true);
            } else {
                open.create_new(true);
            }
            let written = open
                .open(path)
                .and_then(|mut file| file.write_all(init.yaml.as_bytes()));
            if let Err(e) = written {
                let hint = if e.kind() == std::io::ErrorKind::AlreadyExists {
                    " (it exists: pass --force to overwrite it)"
                } else {
                    ""
                };
                eprintln!("kongup init: cannot write {}: {e}{hint}", path.display());
                return Ok(1);
            }
        }
        None => print!("{}", init.yaml),
    }
    let data_planes: usize = discovery.nodes.iter().map(|n| n.data_planes.len()).sum();
    eprintln!(
        "{} node(s) probed, {data_planes} data plane(s) listed; mode {}, database {}, version {} ({}: {})",
        discovery.nodes.len(),
        discovery.mode.as_str(),
        discovery.database.as_str(),
        discovery.version,
        discovery.edition.as_str(),
        discovery.edition_evidence
    );
    eprintln!(
        "strategy {}: {}",
        init.pick.primary.as_str(),
        init.pick.reason
    );
    for warning in &discovery.warnings {
        eprintln!("warning: {warning}");
    }
    eprintln!(
        "{shown_name} validates; {} `# TODO` item(s) to fill in before running it",
        init.todos
    );
    Ok(0)
}
