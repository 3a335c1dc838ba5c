//! `pg_dump` and `pg_restore` on the lab's databases.

use std::time::Duration;

use super::shell::{has_flag, option_value, positionals};
use super::{Session, SimExecutor, Stop};
use crate::plan::steps::ClusterSide;
use crate::sim::lab::Artifact;

impl SimExecutor {
    /// The database a `pg_dump`/`pg_restore` names (`-d`, `--dbname`, or the positional),
    /// else the node's, else X's.
    fn database_named(&self, explicit: Option<&str>) -> Option<String> {
        if let Some(name) = explicit {
            return Some(name.to_string());
        }
        let shared = self.shared();
        self.node_name()
            .and_then(|n| shared.node(n).ok())
            .and_then(|n| n.spec.database.clone())
            .or_else(|| shared.database_of(ClusterSide::X))
    }

    pub(super) async fn pg_dump(&self, args: &[String], s: &Session<'_>) -> Result<i32, Stop> {
        let valued = [
            "-f",
            "--file",
            "-h",
            "--host",
            "-p",
            "--port",
            "-U",
            "--username",
            "-d",
            "--dbname",
            "-F",
            "--format",
        ];
        let explicit = option_value(args, Some("-d"), "--dbname")
            .or_else(|| positionals(args, &valued).first().copied());
        let Some(file) = option_value(args, Some("-f"), "--file") else {
            s.err("pg_dump: error: the lab keeps dumps in files only: add -f FILE")
                .await;
            return Ok(1);
        };
        let Some(db_name) = self.database_named(explicit) else {
            s.err("pg_dump: error: this lab has no database (DB-less)")
                .await;
            return Ok(1);
        };
        s.pause(Duration::from_secs(2)).await?;
        let Some(snapshot) = self.with_db(&db_name, |db| db.snapshot()) else {
            s.err(format!(
                "pg_dump: error: connection to server failed: FATAL:  database \"{db_name}\" does not exist"
            ))
            .await;
            return Ok(1);
        };
        self.shared()
            .files()
            .insert(file.to_string(), Artifact::DatabaseDump(snapshot));
        if has_flag(args, Some("-v"), "--verbose") {
            s.err(format!(
                "pg_dump: saving database definition of \"{db_name}\" to {file}"
            ))
            .await;
        }
        Ok(0)
    }

    pub(super) async fn pg_restore(&self, args: &[String], s: &Session<'_>) -> Result<i32, Stop> {
        let valued = [
            "-h",
            "--host",
            "-p",
            "--port",
            "-U",
            "--username",
            "-d",
            "--dbname",
            "-j",
            "--jobs",
        ];
        let Some(db_name) = option_value(args, Some("-d"), "--dbname") else {
            s.err("pg_restore: error: the lab restores into a database only: add -d DBNAME")
                .await;
            return Ok(1);
        };
        let Some(file) = positionals(args, &valued).last().map(|f| f.to_string()) else {
            s.err("pg_restore: error: no input file named").await;
            return Ok(1);
        };
        let artifact = self.shared().files().get(&file).cloned();
        let snapshot = match artifact {
            Some(Artifact::DatabaseDump(snapshot)) => snapshot,
            Some(_) => {
                s.err("pg_restore: error: input file does not appear to be a valid archive")
                    .await;
                return Ok(1);
            }
            None => {
                s.err(format!(
                    "pg_restore: error: could not open input file \"{file}\": No such file or directory"
                ))
                .await;
                return Ok(1);
            }
        };
        s.pause(Duration::from_secs(3)).await?;
        match self.with_db(db_name, |db| db.restore(&snapshot)) {
            Some(()) => Ok(0),
            None => {
                s.err(format!(
                    "pg_restore: error: connection to server failed: FATAL:  database \"{db_name}\" does not exist"
                ))
                .await;
                Ok(1)
            }
        }
    }
}
