//! How kongup reaches the clusters: a cluster's `database` (and its TLS), the Admin API's
//! token and TLS (`admin`), and the `executors` that run commands; each executor a plan
//! names is remembered here, to be checked against `executors` once all is read.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::diagnostics::Diagnostics;
use super::read::{
    Fields, boolean, choice, file_path, integer, mapping, secret, string_list, text,
};
use super::yaml::{Node, Value};
use super::{Loader, optional};
use crate::plan::model::defaults;
use crate::plan::model::{
    AdminAccess, AnsibleRun, AnsibleSpec, DatabaseKind, DatabaseSpec, DatabaseTls, ExecutorSpec,
    KubectlTarget, SslMode, TlsOptions,
};

impl Loader {
    pub(super) fn database_spec(
        &mut self,
        node: &Node,
        path: &str,
        kind: Option<DatabaseKind>,
    ) -> Option<DatabaseSpec> {
        let d = &mut self.d;
        let f = mapping(
            d,
            node,
            path,
            Some(&["host", "port", "name", "user", "password", "tls"]),
        )?;
        let host = f
            .required(d, "host")
            .and_then(|n| text(d, n, &f.path_of("host")));
        let default_port = kind.unwrap_or(DatabaseKind::Postgres).default_port();
        let port = optional(f.get("port"), default_port, |n| {
            integer(d, n, &f.path_of("port"), 1..=65535)
        });
        let name = optional(f.get("name"), defaults::DATABASE_NAME.to_string(), |n| {
            text(d, n, &f.path_of("name"))
        });
        let user = optional(f.get("user"), defaults::DATABASE_USER.to_string(), |n| {
            text(d, n, &f.path_of("user"))
        });
        let password = f
            .get("password")
            .map(|n| secret(d, n, &f.path_of("password")));
        let tls = match f.get("tls") {
            Some(n) => self.database_tls(n, &f.path_of("tls")),
            None => Some(DatabaseTls::default()),
        };
        Some(DatabaseSpec {
            host: host?,
            port: port?,
            name: name?,
            user: user?,
            password: match password {
                Some(secret) => Some(secret?),
                None => None,
            },
            tls: tls?,
        })
    }

    fn database_tls(&mut self, node: &Node, path: &str) -> Option<DatabaseTls> {
        let d = &mut self.d;
        let f = mapping(
            d,
            node,
            path,
            Some(&["mode", "ca_file", "client_cert", "client_key"]),
        )?;
        // Each key is read (and its errors reported) before any is given up on.
        let mode = f.get("mode").map(|n| {
            choice(d, n, &f.path_of("mode"), &SslMode::WORDS).and_then(SslMode::from_word)
        });
        let (mut ok, files) = tls_files(d, &f, path);
        if matches!(mode, Some(Some(SslMode::Disable))) {
            for key in ["ca_file", "client_cert"]
                .into_iter()
                .filter(|key| f.has(key))
            {
                d.error_with_hint(
                    f.key_pos(key).unwrap_or(f.pos),
                    format!("`{path}.{key}` has no use with `mode: disable` (no TLS at all)"),
                    format!("remove {key}, or use `mode: verify-full`"),
                );
                ok = false;
            }
        }
        let mode = match mode {
            Some(mode) => Some(mode?),
            None => None,
        };
        let [ca_file, client_cert, client_key] = files;
        ok.then_some(DatabaseTls {
            mode,
            ca_file,
            client_cert,
            client_key,
        })
    }

    pub(super) fn admin(&mut self, node: &Node) -> Option<AdminAccess> {
        let d = &mut self.d;
        let f = mapping(d, node, "admin", Some(&["token", "tls"]))?;
        let token = f.get("token").map(|n| secret(d, n, "admin.token"));
        let tls = match f.get("tls") {
            Some(n) => self.tls(n),
            None => Some(TlsOptions::default()),
        };
        Some(AdminAccess {
            token: match token {
                Some(token) => Some(token?),
                None => None,
            },
            tls: tls?,
        })
    }

    fn tls(&mut self, node: &Node) -> Option<TlsOptions> {
        let d = &mut self.d;
        let f = mapping(
            d,
            node,
            "admin.tls",
            Some(&["ca_file", "client_cert", "client_key", "insecure"]),
        )?;
        let (ok, files) = tls_files(d, &f, "admin.tls");
        let insecure = optional(f.get("insecure"), false, |n| {
            boolean(d, n, "admin.tls.insecure")
        });
        let [ca_file, client_cert, client_key] = files;
        ok.then_some(TlsOptions {
            ca_file,
            client_cert,
            client_key,
            insecure: insecure?,
        })
    }

    pub(super) fn executors(&mut self, node: &Node) -> Option<BTreeMap<String, ExecutorSpec>> {
        let f = mapping(&mut self.d, node, "executors", None)?;
        let mut executors = BTreeMap::new();
        let mut ok = true;
        for (name, key, value) in f.entries() {
            // `local` is this machine for every node and command that names no executor:
            // another type under that name would silently send them elsewhere.
            if name == defaults::LOCAL_EXECUTOR
                && let Some(kind) = declared_type(value)
                && kind != defaults::LOCAL_EXECUTOR
            {
                self.d.error_with_hint(
                    key.pos,
                    format!(
                        "`executors.local` redefines kongup's own executor `local` (this machine) as type `{kind}`: every node and command that names no executor would run there"
                    ),
                    "name it differently (e.g. `kong-host`) and set that name as `executor` on the nodes and commands that should run there; `local` needs no line",
                );
                ok = false;
            }
            match self.executor(value, &f.path_of(name)) {
                Some(spec) => {
                    executors.insert(name.to_string(), spec);
                }
                None => ok = false,
            }
        }
        ok.then_some(executors)
    }

    fn executor(&mut self, node: &Node, path: &str) -> Option<ExecutorSpec> {
        let d = &mut self.d;
        let mut f = mapping(d, node, path, None)?;
        let kind = f.required(d, "type").and_then(|n| {
            choice(
                d,
                n,
                &f.path_of("type"),
                &["local", "ssh", "kubectl", "ansible", "sim"],
            )
        });
        let allowed: &[&str] = match kind {
            Some("ssh") => &["type", "host", "user", "port", "identity_file"],
            Some("kubectl") => &[
                "type",
                "context",
                "namespace",
                "pod",
                "selector",
                "container",
            ],
            Some("ansible") => &[
                "type",
                "inventory",
                "playbook",
                "module",
                "forks",
                "user",
                "become",
                "args",
            ],
            Some(_) => &["type"],
            None => return None,
        };
        f.restrict(d, allowed);
        let opt_text = |d: &mut Diagnostics, key: &str| -> Option<Option<String>> {
            match f.get(key) {
                Some(n) => text(d, n, &f.path_of(key)).map(Some),
                None => Some(None),
            }
        };
        match kind? {
            "local" => Some(ExecutorSpec::Local),
            "sim" => Some(ExecutorSpec::Sim),
            "ssh" => {
                let host = f
                    .required(d, "host")
                    .and_then(|n| text(d, n, &f.path_of("host")));
                let user = opt_text(d, "user");
                let port = match f.get("port") {
                    Some(n) => integer(d, n, &f.path_of("port"), 1..=65535).map(Some),
                    None => Some(None),
                };
                let identity_file = match f.get("identity_file") {
                    Some(n) => file_path(d, n, &f.path_of("identity_file")).map(Some),
                    None => Some(None),
                };
                Some(ExecutorSpec::Ssh {
                    host: host?,
                    user: user?,
                    port: port?,
                    identity_file: identity_file?,
                })
            }
            "ansible" => ansible(d, &f, path).map(ExecutorSpec::Ansible),
            _kubectl => {
                let context = opt_text(d, "context");
                let namespace = opt_text(d, "namespace");
                let container = opt_text(d, "container");
                let target = match (f.get("pod"), f.get("selector")) {
                    (Some(n), None) => text(d, n, &f.path_of("pod")).map(KubectlTarget::Pod),
                    (None, Some(n)) => {
                        text(d, n, &f.path_of("selector")).map(KubectlTarget::Selector)
                    }
                    (Some(_), Some(_)) => {
                        d.error(
                            f.pos,
                            format!("`{path}` gives both `pod` and `selector`; keep one"),
                        );
                        None
                    }
                    (None, None) => {
                        d.error_with_hint(
                            f.pos,
                            format!("`{path}` needs `pod` or `selector`"),
                            "name the pod (`pod: kong-0`) or a label selector (`selector: app=kong`)",
                        );
                        None
                    }
                };
                Some(ExecutorSpec::Kubectl {
                    context: context?,
                    namespace: namespace?,
                    target: target?,
                    container: container?,
                })
            }
        }
    }

    /// An optional executor name at `key`, remembered so its existence is checked later.
    pub(super) fn executor_ref(&mut self, f: &Fields, key: &str) -> Option<Option<String>> {
        match f.get(key) {
            Some(n) => {
                let name = text(&mut self.d, n, &f.path_of(key))?;
                self.at
                    .executor_refs
                    .push((name.clone(), n.pos, f.path_of(key)));
                Some(Some(name))
            }
            None => Some(None),
        }
    }
}

/// Arguments of `ansible`/`ansible-playbook` that kongup sets itself: given again in `args`
/// they would run the command on other hosts than the step's.
const ANSIBLE_OWN_ARGS: &[&str] = &[
    "-i",
    "--inventory",
    "--inventory-file",
    "-l",
    "--limit",
    "-m",
    "--module-name",
    "-a",
    "--args",
    "-t",
    "--tree",
];

/// An `ansible` executor's keys (the `type` already read): `inventory`, one of `playbook`
/// and `module`, and `forks`, `user`, `become`, `args`.
fn ansible(d: &mut Diagnostics, f: &Fields, path: &str) -> Option<AnsibleSpec> {
    let inventory = f
        .required(d, "inventory")
        .and_then(|n| file_path(d, n, &f.path_of("inventory")));
    let run = match (f.get("playbook"), f.get("module")) {
        (Some(n), None) => file_path(d, n, &f.path_of("playbook")).map(AnsibleRun::Playbook),
        (None, Some(n)) => text(d, n, &f.path_of("module")).map(AnsibleRun::Module),
        (Some(_), Some(_)) => {
            d.error(
                f.pos,
                format!("`{path}` gives both `playbook` and `module`; keep one"),
            );
            None
        }
        (None, None) => {
            d.error_with_hint(
                f.pos,
                format!("`{path}` needs `playbook` or `module`"),
                "name a playbook (`playbook: deploy/kong.yml`, run with `ansible-playbook`) or a module for ad-hoc commands (`module: shell`, run with `ansible -m shell -a COMMAND`)",
            );
            None
        }
    };
    let forks = optional(f.get("forks"), None, |n| {
        integer(d, n, &f.path_of("forks"), 1..=10_000).map(Some)
    });
    let user = optional(f.get("user"), None, |n| {
        text(d, n, &f.path_of("user")).map(Some)
    });
    let become_root = optional(f.get("become"), false, |n| {
        boolean(d, n, &f.path_of("become"))
    });
    let args = match f.get("args") {
        Some(n) => string_list(d, n, &f.path_of("args")).and_then(|args| {
            let own = args.iter().find(|arg| {
                ANSIBLE_OWN_ARGS
                    .iter()
                    .any(|own| arg == own || arg.starts_with(&format!("{own}=")))
            });
            match own {
                Some(arg) => {
                    d.error_with_hint(
                        n.pos,
                        format!(
                            "`{}` gives `{arg}`, which kongup sets itself",
                            f.path_of("args")
                        ),
                        "kongup names the inventory, the module and its arguments, and limits each command to the hosts of its nodes; set `inventory`/`module` here instead and leave the hosts to the plan's nodes",
                    );
                    None
                }
                None => Some(args),
            }
        }),
        None => Some(Vec::new()),
    };
    Some(AnsibleSpec {
        inventory: inventory?,
        run: run?,
        forks: forks?,
        user: user?,
        become_root: become_root?,
        args: args?,
    })
}

/// The `type` an executor's mapping declares, as written.
fn declared_type(node: &Node) -> Option<&str> {
    let Value::Mapping(entries) = &node.value else {
        return None;
    };
    entries
        .iter()
        .find_map(|(key, value)| match (&key.value, &value.value) {
            (Value::Scalar { text: key, .. }, Value::Scalar { text, .. }) if key == "type" => {
                Some(text.as_str())
            }
            _ => None,
        })
}

/// `ca_file`, `client_cert` and `client_key` of the TLS block at `path` (the Admin API's
/// or a database's), the certificate and its key together or not at all; `false` when any
/// is wrong, each error reported.
fn tls_files(d: &mut Diagnostics, f: &Fields, path: &str) -> (bool, [Option<PathBuf>; 3]) {
    let mut ok = true;
    let mut files = [None, None, None];
    for (slot, key) in files
        .iter_mut()
        .zip(["ca_file", "client_cert", "client_key"])
    {
        if let Some(n) = f.get(key) {
            *slot = file_path(d, n, &f.path_of(key));
            ok &= slot.is_some();
        }
    }
    if f.has("client_cert") != f.has("client_key") {
        let (given, missing) = if f.has("client_cert") {
            ("client_cert", "client_key")
        } else {
            ("client_key", "client_cert")
        };
        d.error_with_hint(
            f.key_pos(given).unwrap_or(f.pos),
            format!("`{path}.{given}` needs `{path}.{missing}` beside it"),
            "a client certificate is presented with its key: name both, or neither",
        );
        ok = false;
    }
    (ok, files)
}
