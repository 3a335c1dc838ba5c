//! A Slack-compatible incoming webhook played by axum on loopback: it records each POST
//! (path and JSON body) and answers with the status the test sets.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, Uri};

/// One POST the hook received.
#[derive(Debug, Clone)]
pub struct Post {
    pub path: String,
    pub body: serde_json::Value,
}

#[derive(Clone, Default)]
pub struct Hook {
    pub posts: Arc<Mutex<Vec<Post>>>,
    /// What it answers; 200 unless set.
    pub status: Arc<Mutex<Option<StatusCode>>>,
    /// While set, each post is recorded, then answered only once a permit is given.
    pub hold: Arc<Mutex<Option<Arc<tokio::sync::Semaphore>>>>,
}

impl Hook {
    pub fn posts(&self) -> Vec<Post> {
        self.posts.lock().unwrap().clone()
    }

    pub fn answer(&self, status: StatusCode) {
        *self.status.lock().unwrap() = Some(status);
    }

    /// Serves the hook on the current runtime; its base URL (`http://127.0.0.1:PORT`).
    pub async fn serve(&self) -> String {
        let router = Router::new().fallback(record).with_state(self.clone());
        crate::support::http::serve(router).await
    }
}

async fn record(State(hook): State<Hook>, uri: Uri, body: Bytes) -> StatusCode {
    let body = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    hook.posts.lock().unwrap().push(Post {
        path: uri.path().to_string(),
        body,
    });
    let hold = hook.hold.lock().unwrap().clone();
    if let Some(gate) = hold {
        gate.acquire().await.unwrap().forget();
    }
    hook.status.lock().unwrap().unwrap_or(StatusCode::OK)
}
